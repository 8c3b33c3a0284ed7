//! Helpers of the end-to-end suites that only they need: the crash-at-scale and concurrency
//! suites' exactly-once comparison and the journal a killed child leaves (see [`stress`]).
//!
//! Sheets, vaults, the dispatch server, the operator client and the file scans shared with the
//! other crates' tests are in `jobseal-testkit`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test tooling: a failed fixture step is a failed run, not a crash in an app"
)]

pub mod stress;

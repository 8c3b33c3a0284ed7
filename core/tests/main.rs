//! The core's integration tests: the vault, its events, sealed delivery, the sync engine and the
//! documented sheet format, seen from outside the crate.
//!
//! One binary instead of one per file: each binary links the whole core and its dependencies,
//! which took longer than running the tests on a two-core machine. Each suite is a module here;
//! fixtures come from `jobseal-testkit`.

mod events;
mod sealed;
mod sheet_format;
mod sync_engine;
mod tamper;
mod vault;

#[test]
fn every_test_file_is_compiled() {
    jobseal_testkit::suite::assert_every_test_file_is_compiled(env!("CARGO_MANIFEST_DIR"));
}

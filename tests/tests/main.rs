//! The end-to-end suites, in one binary: forensics, crash injection at named points, device and
//! dispatch over HTTP, concurrency stress, Wycheproof vectors, and checks of the testkit itself.
//!
//! One binary instead of one per file, because linking each took longer than running it on a
//! two-core machine. The crash suites re-run their own ignored child test in a new process of this
//! binary (`jobseal_testkit::child::rerun_test`), which works the same with the module in the
//! test's name. The crash-at-scale suite stays a binary of its own (see Cargo.toml).

mod concurrency;
mod crash;
mod forensics;
mod sync_e2e;
mod testkit;
mod wycheproof;

#[test]
fn every_test_file_is_compiled() {
    jobseal_testkit::suite::assert_every_test_file_is_compiled(env!("CARGO_MANIFEST_DIR"));
}

//! The `jobseal` command's end-to-end tests, run as a user or a script would run it: the vault
//! and job commands, sealed delivery, and the demo.
//!
//! One binary instead of one per file: each binary is linked on its own, which took longer than
//! running the tests on a two-core machine. Each suite is a module here; `common` holds what they
//! share.

mod cli;
mod common;
mod demo;
mod sealed;
mod sync;

#[test]
fn every_test_file_is_compiled() {
    jobseal_testkit::suite::assert_every_test_file_is_compiled(env!("CARGO_MANIFEST_DIR"));
}

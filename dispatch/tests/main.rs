//! The dispatch server's integration tests: its HTTP API from outside, the core's real sync
//! engine against it, and the worked examples of docs/sync.md.
//!
//! One binary instead of one per file: each binary links the server, the core and their
//! dependencies, which took longer than running the tests on a two-core machine. Each suite is a
//! module here; the loopback server, the operator client and the sheets come from
//! `jobseal-testkit`.

mod api;
mod console;
mod engine;
mod instances;
mod limits;
mod operations;
mod openapi;
mod vectors;

#[test]
fn every_test_file_is_compiled() {
    jobseal_testkit::suite::assert_every_test_file_is_compiled(env!("CARGO_MANIFEST_DIR"));
}

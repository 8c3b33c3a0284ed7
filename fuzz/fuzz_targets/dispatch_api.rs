//! libFuzzer entry point of the `dispatch_api` target; the target itself, its input format and its
//! invariants are `jobseal_fuzz::Target::DispatchApi` in the library, which
//! tests/replay.rs also runs on the committed corpus.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobseal_fuzz::Target::DispatchApi.run(data);
});

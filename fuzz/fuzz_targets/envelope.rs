//! libFuzzer entry point of the `envelope` target; the target itself, its input format and its
//! invariants are `jobseal_fuzz::Target::Envelope` in the library, which
//! tests/replay.rs also runs on the committed corpus.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobseal_fuzz::Target::Envelope.run(data);
});

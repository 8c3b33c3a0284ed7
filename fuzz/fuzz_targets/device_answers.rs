//! libFuzzer entry point of the `device_answers` target; the target itself, its input format and its
//! invariants are `jobseal_fuzz::Target::DeviceAnswers` in the library, which
//! tests/replay.rs also runs on the committed corpus.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobseal_fuzz::Target::DeviceAnswers.run(data);
});

//! libFuzzer entry point of the `enrolment` target; the target itself, its input format and its
//! invariants are `jobseal_fuzz::Target::Enrolment` in the library, which
//! tests/replay.rs also runs on the committed corpus.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobseal_fuzz::Target::Enrolment.run(data);
});

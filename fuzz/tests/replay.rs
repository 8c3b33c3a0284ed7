//! Replays the committed corpus of every fuzz target on the stable toolchain (G8).
//!
//! libFuzzer needs nightly, but the inputs it found are worth running on every test run: this
//! test feeds each file of `fuzz/corpus/<target>/` (including the `regression-*` files of fixed
//! defects) to the same target function the fuzzer calls. Nothing is caught: a panic fails the
//! test, and the file's name (never its bytes, which may hold fake customer data) is printed
//! just before it runs, so the failing input is the last one named.

use jobseal_fuzz::{corpus_dir, corpus_files, Target};

fn replay(target: Target) {
    let files = corpus_files(&corpus_dir(target));
    assert!(!files.is_empty(), "{}: the corpus is empty", target.name());
    for path in &files {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let data = std::fs::read(path).unwrap_or_else(|_| panic!("{}: cannot read corpus file {name}", target.name()));
        eprintln!("replay {}/{name}", target.name());
        target.run(&data);
    }
    eprintln!("replay {}: {} files ran clean", target.name(), files.len());
}

#[test]
fn envelope_corpus_replays_clean() {
    replay(Target::Envelope);
}

#[test]
fn sheet_corpus_replays_clean() {
    replay(Target::Sheet);
}

#[test]
fn sync_response_corpus_replays_clean() {
    replay(Target::SyncResponse);
}

#[test]
fn ffi_inputs_corpus_replays_clean() {
    replay(Target::FfiInputs);
}

#[test]
fn device_answers_corpus_replays_clean() {
    replay(Target::DeviceAnswers);
}

#[test]
fn dispatch_api_corpus_replays_clean() {
    replay(Target::DispatchApi);
}

#[test]
fn enrolment_corpus_replays_clean() {
    replay(Target::Enrolment);
}

#[test]
fn vault_ops_corpus_replays_clean() {
    replay(Target::VaultOps);
}

#[test]
fn every_target_has_a_corpus_folder_and_a_libfuzzer_entry_point() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for t in Target::ALL {
        assert!(corpus_dir(t).is_dir(), "{}: no corpus folder", t.name());
        assert!(root.join("fuzz_targets").join(format!("{}.rs", t.name())).is_file(), "{}: no fuzz target", t.name());
        assert_eq!(Target::from_name(t.name()), Some(t));
    }
}

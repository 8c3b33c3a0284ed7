//! Fuzz targets for jobseal's untrusted inputs (G8), driven by libFuzzer and replayed on stable.
//!
//! Bad input must get a typed error and change nothing; nothing may panic across the FFI, and no
//! error may quote a customer value. Each target here is a plain function of the input bytes
//! that panics when an invariant breaks. `cargo +nightly fuzz run <target> --features libfuzzer`
//! runs one under libFuzzer (coverage-guided; the entry points are `fuzz_targets/*.rs`), and the
//! stable test `tests/replay.rs` runs every committed corpus file of every target through the
//! same function, so the normal test command exercises the whole corpus without nightly.
//! `fuzz/run-long.sh` runs the long campaigns; docs/security.md ("Fuzzing") has their figures.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "test tooling: a failed fixture step is a failed fuzz run (libFuzzer records it as a crash), not a crash in an app"
)]

pub mod device_answers;
pub mod dispatch_api;
pub mod enrolment;
pub mod targets;
pub mod vault_ops;

use std::path::{Path, PathBuf};

/// A named fuzz target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// [`targets::fuzz_envelope`]: envelope parsing and opening, and sheets sealed authentically.
    Envelope,
    /// [`targets::fuzz_sheet`]: job sheet parsing, validation, ingest and reveal.
    Sheet,
    /// [`targets::fuzz_sync_response`]: a sync answer applied by the device (MAC-wrapped or not).
    SyncResponse,
    /// [`targets::fuzz_ffi_inputs`]: the strings and numbers the bindings accept.
    FfiInputs,
    /// [`device_answers::fuzz_device_answers`]: every dispatch answer the device parses (sync,
    /// prekey upload, enrolment, dispatch key), through the device's own calls.
    DeviceAnswers,
    /// [`dispatch_api::fuzz_dispatch_api`]: HTTP requests to dispatch's real router.
    DispatchApi,
    /// [`enrolment::fuzz_enrolment`]: bundles, enrolment codes, requests and answers.
    Enrolment,
    /// [`vault_ops::fuzz_vault_ops`]: a sequence of vault operations with invariants after each.
    VaultOps,
}

impl Target {
    /// Every target.
    pub const ALL: [Target; 8] = [
        Target::Envelope,
        Target::Sheet,
        Target::SyncResponse,
        Target::FfiInputs,
        Target::DeviceAnswers,
        Target::DispatchApi,
        Target::Enrolment,
        Target::VaultOps,
    ];

    /// The name used by `cargo fuzz` (the `[[bin]]`) and as the corpus folder.
    pub fn name(self) -> &'static str {
        match self {
            Target::Envelope => "envelope",
            Target::Sheet => "sheet",
            Target::SyncResponse => "sync_response",
            Target::FfiInputs => "ffi_inputs",
            Target::DeviceAnswers => "device_answers",
            Target::DispatchApi => "dispatch_api",
            Target::Enrolment => "enrolment",
            Target::VaultOps => "vault_ops",
        }
    }

    /// Looks a target up by name.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs the target on one input; panics when an invariant breaks.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Envelope => drop(targets::fuzz_envelope(data)),
            Target::Sheet => drop(targets::fuzz_sheet(data)),
            Target::SyncResponse => drop(targets::fuzz_sync_response(data)),
            Target::FfiInputs => drop(targets::fuzz_ffi_inputs(data)),
            Target::DeviceAnswers => device_answers::fuzz_device_answers(data),
            Target::DispatchApi => dispatch_api::fuzz_dispatch_api(data),
            Target::Enrolment => enrolment::fuzz_enrolment(data),
            Target::VaultOps => vault_ops::fuzz_vault_ops(data),
        }
    }
}

/// The repository's corpus folder of `target` (`fuzz/corpus/<name>`).
pub fn corpus_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target.name())
}

/// The files of a corpus folder, sorted by name.
pub fn corpus_files(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    paths.sort();
    paths
}

//! Fuzzing for jobseal's untrusted inputs on the stable toolchain (G8).
//!
//! Bad input must get a typed error and change nothing; nothing may panic across the FFI. This
//! crate holds the fuzz targets ([`targets`]), a deterministic mutator ([`mutate`]) and a runner
//! ([`run`]) that feeds mutated corpus entries to a target and catches panics. It is guided by
//! outcomes rather than by coverage: an input whose outcome label (the deepest stage it reached
//! and the error class there) was not seen before joins the working pool. `cargo test -p
//! jobseal-fuzz` runs a bounded smoke run of every target; `cargo run -p jobseal-fuzz
//! -- --seconds 600` runs longer (see docs/security.md).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "test tooling: a failed fixture step is a failed run, not a crash in an app; the PRNG's bits are cut on purpose"
)]

pub mod mutate;
pub mod targets;

use mutate::Rng;
use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
pub use targets::Target;

/// How long and how hard to fuzz one target.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Stop after this many executions (including the seeds).
    pub iterations: u64,
    /// Stop after this much time, whatever the iterations.
    pub max_time: Option<Duration>,
    /// PRNG seed: the same seed, corpus and code give the same run.
    pub seed: u64,
    /// The target's seed corpus folder.
    pub corpus_dir: PathBuf,
    /// Where inputs that made the target panic are written.
    pub artifacts_dir: PathBuf,
}

/// What a run did.
#[derive(Clone, Debug, Default)]
pub struct RunStats {
    /// Inputs executed.
    pub executions: u64,
    /// Seed files read.
    pub seeds: usize,
    /// Distinct outcome labels seen.
    pub outcomes: usize,
    /// Inputs kept in the working pool.
    pub pool: usize,
    /// Panics: the artifact file and the panic message.
    pub failures: Vec<(PathBuf, String)>,
    /// Wall time.
    pub elapsed: Duration,
}

/// The repository's corpus folder of `target`.
pub fn corpus_dir(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus").join(target.name())
}

/// Reads every file of a corpus folder, sorted by name.
pub fn read_corpus(dir: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).filter(|p| p.is_file()).collect())
        .unwrap_or_default();
    paths.sort();
    paths.iter().filter_map(|p| std::fs::read(p).ok()).collect()
}

/// Fuzzes `target` from its corpus until the iteration or time bound. A panic is recorded (its
/// input saved to the artifacts folder) and the run goes on.
pub fn run(target: Target, opts: &RunOptions) -> RunStats {
    let started = Instant::now();
    let seeds = read_corpus(&opts.corpus_dir);
    let mut stats = RunStats { seeds: seeds.len(), ..RunStats::default() };
    let mut pool: Vec<Vec<u8>> = if seeds.is_empty() { vec![Vec::new()] } else { seeds.clone() };
    let mut seen: HashSet<String> = HashSet::new();
    let mut rng = Rng::new(opts.seed);

    // Capture panic messages instead of printing a backtrace per failing input.
    let last_panic: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let prev_hook = panic::take_hook();
    {
        let last_panic = last_panic.clone();
        panic::set_hook(Box::new(move |info| {
            let msg = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic".into());
            let loc = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            *last_panic.lock().unwrap_or_else(|p| p.into_inner()) = Some(format!("{msg}{loc}"));
        }));
    }

    let mut i: u64 = 0;
    while i < opts.iterations && opts.max_time.is_none_or(|t| started.elapsed() < t) {
        let input = if (i as usize) < seeds.len() {
            seeds[i as usize].clone()
        } else {
            let a = rng.below(pool.len());
            let b = rng.below(pool.len());
            mutate::mutate(&mut rng, &pool[a], &pool[b])
        };
        i += 1;
        match panic::catch_unwind(AssertUnwindSafe(|| target.run(&input))) {
            Ok(outcome) => {
                if seen.insert(outcome) && pool.len() < 4096 {
                    pool.push(input);
                }
            }
            Err(_) => {
                targets::reset_fixture();
                let msg = last_panic.lock().unwrap_or_else(|p| p.into_inner()).take().unwrap_or_default();
                let path = save_artifact(&opts.artifacts_dir, target, &input);
                if stats.failures.len() < 20 {
                    stats.failures.push((path, msg));
                }
            }
        }
    }
    panic::set_hook(prev_hook);
    targets::reset_fixture();
    stats.executions = i;
    stats.outcomes = seen.len();
    stats.pool = pool.len();
    stats.elapsed = started.elapsed();
    stats
}

fn save_artifact(dir: &Path, target: Target, input: &[u8]) -> PathBuf {
    // FNV-1a names the file by content, so the same crash is saved once.
    let h = input.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3));
    let path = dir.join(format!("{}-{h:016x}", target.name()));
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(&path, input);
    path
}

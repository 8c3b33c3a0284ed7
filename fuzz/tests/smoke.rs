//! The bounded fuzz smoke run of the normal test suite: every target, a fixed seed, a few thousand
//! mutated inputs each, from the committed corpus. Deterministic, so a failure here reproduces.
//! The longer run is `cargo run -p jobseal-fuzz -- --seconds 600` (docs/security.md).

use jobseal_fuzz::{corpus_dir, read_corpus, run, RunOptions, Target};

/// Iterations per target; `JOBSEAL_FUZZ_ITERATIONS` overrides.
const SMOKE_ITERATIONS: u64 = 4000;

#[test]
fn every_seed_of_the_committed_corpus_runs_clean() {
    for t in Target::ALL {
        let seeds = read_corpus(&corpus_dir(t));
        assert!(seeds.len() >= 3, "{}: the seed corpus is missing", t.name());
    }
}

// One test for all targets: the runner installs a process-wide panic hook while it runs.
#[test]
fn fuzz_smoke_run_finds_no_panic() {
    let iterations =
        std::env::var("JOBSEAL_FUZZ_ITERATIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(SMOKE_ITERATIONS);
    let mut failures = Vec::new();
    for t in Target::ALL {
        let opts = RunOptions {
            iterations,
            max_time: None,
            seed: 0x5eed_0001,
            corpus_dir: corpus_dir(t),
            artifacts_dir: std::env::temp_dir().join("jobseal-fuzz-artifacts"),
        };
        let s = run(t, &opts);
        eprintln!(
            "fuzz smoke {}: {} executions, {} outcomes, {:.1} s",
            t.name(),
            s.executions,
            s.outcomes,
            s.elapsed.as_secs_f64()
        );
        assert_eq!(s.executions, iterations);
        assert!(s.outcomes >= 3, "{}: the target reached too few outcomes", t.name());
        for (path, msg) in s.failures {
            failures.push(format!("{}: {msg} (input saved to {})", t.name(), path.display()));
        }
    }
    assert!(failures.is_empty(), "fuzz targets panicked:\n{}", failures.join("\n"));
}

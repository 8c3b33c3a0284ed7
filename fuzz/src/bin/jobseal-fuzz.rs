//! `jobseal-fuzz`: runs the stable-toolchain fuzzer for a longer time than the test suite's smoke
//! run, on one target or all of them, and exits non-zero if any input made a target panic.
//!
//! Usage: `jobseal-fuzz [--target NAME|all] [--iterations N] [--seconds S] [--seed N]`.
//! Targets: envelope, sheet, sync_response, ffi_inputs. Panicking inputs are saved under
//! `fuzz/artifacts/`; replay one with `--replay FILE --target NAME`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "test tooling: a failed fixture step is a failed run, not a crash in an app; the PRNG's bits are cut on purpose"
)]

use jobseal_fuzz::{corpus_dir, run, RunOptions, Target};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (mut target, mut iterations, mut seconds, mut seed, mut replay) =
        ("all".to_owned(), u64::MAX, None::<u64>, 1u64, None::<PathBuf>);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| usage(&format!("{a} needs a value")));
        match a.as_str() {
            "--target" => target = val(),
            "--iterations" => iterations = val().parse().unwrap_or_else(|_| usage("--iterations takes a number")),
            "--seconds" => seconds = Some(val().parse().unwrap_or_else(|_| usage("--seconds takes a number"))),
            "--seed" => seed = val().parse().unwrap_or_else(|_| usage("--seed takes a number")),
            "--replay" => replay = Some(PathBuf::from(val())),
            _ => usage(&format!("unknown argument {a}")),
        }
    }
    let targets: Vec<Target> = if target == "all" {
        Target::ALL.to_vec()
    } else {
        vec![Target::from_name(&target).unwrap_or_else(|| usage("unknown target"))]
    };
    if let Some(file) = replay {
        let data = std::fs::read(&file).unwrap_or_else(|_| usage("cannot read the replay file"));
        for t in &targets {
            println!("{}: {}", t.name(), t.run(&data));
        }
        return ExitCode::SUCCESS;
    }
    if iterations == u64::MAX && seconds.is_none() {
        seconds = Some(60);
    }
    let per_target = seconds.map(|s| Duration::from_secs(s) / targets.len() as u32);
    let mut failed = false;
    for t in targets {
        let opts = RunOptions {
            iterations,
            max_time: per_target,
            seed,
            corpus_dir: corpus_dir(t),
            artifacts_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("artifacts"),
        };
        let s = run(t, &opts);
        println!(
            "{:<14} executions {:>9}  seeds {:>3}  outcomes {:>4}  pool {:>4}  failures {}  {:.1} s",
            t.name(),
            s.executions,
            s.seeds,
            s.outcomes,
            s.pool,
            s.failures.len(),
            s.elapsed.as_secs_f64()
        );
        for (path, msg) in &s.failures {
            failed = true;
            println!("  PANIC {msg}\n    input: {}", path.display());
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn usage(msg: &str) -> ! {
    eprintln!("jobseal-fuzz: {msg}\nusage: jobseal-fuzz [--target envelope|sheet|sync_response|ffi_inputs|all] [--iterations N] [--seconds S] [--seed N] [--replay FILE]");
    std::process::exit(2)
}

//! `jobseal demo` is the README's main command: it must run end to end and every proof must hold.

use std::process::Command;

#[test]
fn the_demo_day_runs_and_every_proof_holds() {
    let output = Command::new(env!("CARGO_BIN_EXE_jobseal")).arg("demo").output().expect("run jobseal demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "demo failed ({:?}); stderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("18 proofs, 0 failed."), "unexpected demo summary");
    assert!(!stdout.contains("FAILED"));
    // The demo masks values: none of the fake customers' names may appear in its output.
    assert!(!stdout.contains("Test Customer"), "the demo printed a customer value");
}

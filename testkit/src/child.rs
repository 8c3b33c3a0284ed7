//! Running one test of the current test binary in a child process, to kill it or let it abort.
//!
//! The crash suites prove that a vault survives a process dying mid-write. The only process a
//! test can kill without hurting the others is a child, so they start their own binary again
//! with a filter naming one ignored test, which does the work and dies (at a named crash point,
//! or by SIGKILL). Several suites now share one test binary, so a test's name includes its
//! module (`crash::crash_child`); [`rerun_test`] works the name out from `module_path!()`.

use std::process::Command;

/// A command that runs exactly the ignored test `test`, defined in the module whose
/// `module_path!()` is `module_path`, in a new process of the current test binary (one thread,
/// output not captured). The caller adds environment variables and output redirections.
///
/// ```ignore
/// let out = rerun_test(module_path!(), "crash_child").env("JOBSEAL_CRASH_POINT", point).output();
/// ```
pub fn rerun_test(module_path: &str, test: &str) -> Command {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary's path"));
    cmd.args(["--exact", &test_name(module_path, test), "--ignored", "--nocapture", "--test-threads=1"]);
    cmd
}

/// The harness's name of `test` in `module_path`: the path without the crate's own name.
fn test_name(module_path: &str, test: &str) -> String {
    match module_path.split_once("::") {
        Some((_crate, module)) => format!("{module}::{test}"),
        None => test.to_owned(),
    }
}

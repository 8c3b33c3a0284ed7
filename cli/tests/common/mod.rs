//! Fixtures shared by the CLI's suites: the fake customer data, a sheet holding it, and a way to
//! run the `jobseal` binary in a temporary data directory and look at what it printed.
//!
//! The sheet is the testkit's builder with this file's customer and timeline, which the
//! assertions of the suites (byte counts of a scan, times in the output) are written against.
//! Running the binary is the CLI's own business and stays here.

use chrono::{DateTime, Utc};
use jobseal_testkit::Sheet;
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use tempfile::TempDir;

pub const JOB: &str = "7b0c6f0e-3f5a-4d6b-9a7e-2c1d0e9f8a01";
pub const JOB2: &str = "7b0c6f0e-3f5a-4d6b-9a7e-2c1d0e9f8a02";
pub const UNKNOWN_JOB: &str = "7b0c6f0e-3f5a-4d6b-9a7e-2c1d0e9f8aff";

pub const NAME: &str = "Test Customer";
pub const PHONE: &str = "+33 6 00 00 00 00";
pub const ADDRESS: &str = "1 rue de l'Exemple";
pub const DOOR: &str = "0000A";
/// Every customer value with a description that is safe to print.
pub const VALUES: [(&str, &str); 4] =
    [("customer name", NAME), ("customer phone", PHONE), ("customer address", ADDRESS), ("door code", DOOR)];

// The slot is 09:00-11:00 with an hour either side, so the access window is 08:00-12:00; the job
// shreds itself at 18:00.
pub const EARLY: &str = "2030-01-10T06:00:00Z";
pub const BEFORE: &str = "2030-01-10T07:00:00Z";
pub const INSIDE: &str = "2030-01-10T09:30:00Z";
pub const LATER_INSIDE: &str = "2030-01-10T10:00:00Z";
pub const AFTER_WINDOW: &str = "2030-01-10T13:00:00Z";
pub const PAST_EXPIRY: &str = "2030-01-10T19:00:00Z";

/// A valid sheet (version 1) for `job_id`, holding every customer value: the testkit's default
/// sheet on this file's timeline, without the note, the phone of kind `phone`.
pub fn sheet(job_id: &str) -> String {
    let utc = |t: &str| t.parse::<DateTime<Utc>>().expect("a test timestamp");
    Sheet::new(job_id.parse().expect("a test job id"))
        .window(utc("2030-01-10T09:00:00Z"), utc("2030-01-10T11:00:00Z"))
        .access(60, 60)
        .expiry(utc("2030-01-10T18:00:00Z"))
        .work("Test fibre installation", &["Fit the test outlet"], &["Test cable, 10 m"])
        .site_area("Testville")
        .only(&["customer_name", "phone", "address", "door_code"])
        .kind("phone", "phone")
        .values([NAME, PHONE, ADDRESS, DOOR])
        .json_string()
}

/// Replaces every customer value, so that output can be shown when a test fails.
pub fn redact(text: &str) -> String {
    VALUES.iter().fold(text.to_owned(), |t, (what, v)| t.replace(v, &format!("<{what}>")))
}

pub fn assert_no_customer_value(text: &str, context: &str) {
    for (what, value) in VALUES {
        assert!(!text.contains(value), "{what} found in {context}");
    }
}

/// One finished run of the binary.
pub struct Run {
    pub code: i32,
    /// Stdout as text (lossily, for the binary envelope of `dispatch seal`).
    pub stdout: String,
    pub stderr: String,
    /// Stdout as bytes.
    pub raw: Vec<u8>,
}

impl Run {
    pub fn expect(self, code: i32, what: &str) -> Run {
        assert_eq!(
            self.code,
            code,
            "{what}: unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            redact(&self.stdout),
            redact(&self.stderr)
        );
        self
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{}", redact(&self.stdout)))
    }

    /// The `kind` of a `--json` error document, after checking the stderr line.
    pub fn error_kind(&self) -> String {
        assert!(self.stderr.starts_with("jobseal: "), "stderr should start with `jobseal: `: {}", redact(&self.stderr));
        self.json()["error"]["kind"].as_str().unwrap_or_default().to_owned()
    }

    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// A data directory and a separate folder for fixtures (plaintext sheets must not sit in the
/// directory whose cleanliness the forensic tests check).
pub struct Env {
    pub data: TempDir,
    pub fixtures: TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env { data: tempfile::tempdir().unwrap(), fixtures: tempfile::tempdir().unwrap() }
    }

    /// A data directory holding an initialised vault with the test job added at `EARLY`.
    pub fn with_job() -> Env {
        let env = Env::new();
        env.run(&["init", "--now", EARLY]).expect(0, "init");
        env.add(JOB, EARLY);
        env
    }

    pub fn dir(&self) -> &Path {
        self.data.path()
    }

    pub fn fixture(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.fixtures.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    pub fn add(&self, job: &str, now: &str) {
        let file = self.fixture(&format!("{job}.json"), sheet(job).as_bytes());
        self.run(&["job", "add", file.to_str().unwrap(), "--now", now]).expect(0, "job add");
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&[u8]>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobseal"));
        cmd.arg("--data-dir").arg(self.dir()).args(args).env_remove("JOBSEAL_DATA_DIR");
        run_command(cmd, stdin)
    }

    pub fn list_json(&self) -> Value {
        self.run(&["job", "list", "--json", "--now", EARLY]).expect(0, "job list").json()
    }

    pub fn state(&self, job: &str) -> String {
        let info = self.run(&["job", "show", job, "--json", "--now", EARLY]).expect(0, "job show").json();
        info["state"].as_str().unwrap_or_default().to_owned()
    }
}

pub fn run_command(mut cmd: Command, stdin: Option<&[u8]>) -> Run {
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("the jobseal binary starts");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().expect("exited, not killed by a signal"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        raw: out.stdout,
    }
}

/// Runs `jobseal` without a data directory, as the commands that open no vault are run.
pub fn bare(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobseal"));
    cmd.args(args).env_remove("JOBSEAL_DATA_DIR");
    run_command(cmd, stdin)
}

/// `jobseal scan` does not need a data directory; run it bare.
pub fn scan(args: &[&str]) -> Run {
    let mut all = vec!["scan"];
    all.extend(args);
    bare(&all, None)
}

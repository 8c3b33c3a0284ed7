//! The CLI as a real device of a dispatch server (issue 12, item 8): the operator's enrolment code,
//! `device enrol`, `sync` and `sync status`, against the reference server on loopback, and the
//! refusals an attacker or a mistyping support agent meets.

use crate::common::{bare, run_command, sheet, Env, Run, JOB};
use jobseal_testkit::server::{TestDispatch, OPERATOR_TOKEN};
use std::path::PathBuf;
use std::process::Command;

/// The operator token in an owner-only file, as an operator keeps it.
fn token_file(env: &Env) -> PathBuf {
    let f = env.fixture("operator-token", format!("{OPERATOR_TOKEN}\n").as_bytes());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    f
}

/// `jobseal dispatch enrolment-code` with the token in a file; the code it printed.
fn issue_code(env: &Env, dispatch: &TestDispatch) -> String {
    let file = token_file(env);
    let run = bare(
        &[
            "dispatch",
            "enrolment-code",
            "--dispatch",
            &dispatch.base_url(),
            "--operator-token-file",
            file.to_str().unwrap(),
        ],
        None,
    )
    .expect(0, "enrolment-code");
    assert!(!run.all().contains(OPERATOR_TOKEN), "the operator token was printed");
    run.stdout.trim().to_owned()
}

fn enrol(env: &Env, dispatch: &TestDispatch, code: Option<&str>) -> Run {
    let key = dispatch.key().to_string();
    let url = dispatch.base_url();
    let mut args = vec!["device", "enrol", "--dispatch", &url, "--dispatch-key", &key, "--prekeys", "5", "--json"];
    if let Some(c) = code {
        args.extend(["--code", c]);
    }
    env.run(&args)
}

#[test]
fn a_device_enrols_with_the_operators_code_and_syncs_from_the_cli() {
    let dispatch = TestDispatch::start();
    let env = Env::new();
    let code = issue_code(&env, &dispatch);
    assert_eq!(code.len(), 23, "{code}");

    let enrolled = enrol(&env, &dispatch, Some(&code.to_lowercase())).expect(0, "device enrol").json();
    let device: uuid::Uuid = enrolled["device_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(enrolled["dispatch_key"], dispatch.key().to_string());
    assert_eq!(enrolled["unused_prekeys"], 5);

    let status = env.run(&["sync", "status", "--json"]).expect(0, "sync status").json();
    assert_eq!(status["enrolled"], true);

    // The operator assigns a job; `jobseal sync` (the URL saved at enrolment) receives it.
    let op = dispatch.operator();
    let job_sheet: serde_json::Value = serde_json::from_str(&sheet(JOB)).unwrap();
    op.create_job(device, &job_sheet);
    let synced = env.run(&["sync", "--json"]).expect(0, "sync").json();
    assert_eq!(synced["received"], serde_json::json!([JOB]));
    crate::common::assert_no_customer_value(&env.run(&["sync"]).expect(0, "sync").all(), "sync output");
    let list = env.run(&["job", "list", "--json"]).expect(0, "job list").json();
    assert_eq!(list["jobs"][0]["job_id"], JOB, "{list}");

    let status = env.run(&["sync", "status"]).expect(0, "sync status");
    assert!(status.stdout.contains("pending events        0"), "{}", status.stdout);
    assert!(op.device(device).last_sync_at.is_some());

    // Enrolling again, with a code or without, is refused: the device holds its token.
    let again = enrol(&env, &dispatch, Some(&issue_code(&env, &dispatch)));
    assert_eq!(again.code, 6, "{}", again.stderr);
}

#[test]
fn enrolment_without_a_valid_code_is_refused_from_the_cli() {
    let dispatch = TestDispatch::start();
    let env = Env::new();
    // A mistyped code: refused before anything is created or sent.
    let typo = enrol(&env, &dispatch, Some("ABCDE-FGHJK"));
    assert_eq!(typo.code, 2, "{}", typo.stderr);
    assert!(!env.dir().join(jobseal::store::DB_FILE).exists(), "a vault was created for a mistyped code");
    // An https:// URL the plain-HTTP transport cannot reach: refused up front too.
    assert_eq!(env.run(&["device", "enrol", "--dispatch", "https://dispatch.example"]).code, 2);
    assert!(!env.dir().join(jobseal::store::DB_FILE).exists());
    // No code: dispatch refuses (401).
    let none = enrol(&env, &dispatch, None);
    assert_eq!(none.code, 8, "{}", none.stderr);
    assert!(none.stderr.contains("401") && none.stderr.contains("enrolment code"), "{}", none.stderr);
    // A code already used by another device: 403.
    let code = issue_code(&env, &dispatch);
    let other = Env::new();
    enrol(&other, &dispatch, Some(&code)).expect(0, "the other device enrols");
    let reused = enrol(&env, &dispatch, Some(&code));
    assert_eq!(reused.code, 8, "{}", reused.stderr);
    assert!(reused.stderr.contains("403"), "{}", reused.stderr);
    // A fresh code then works (the keys made by the refused attempts are reused).
    enrol(&env, &dispatch, Some(&issue_code(&env, &dispatch))).expect(0, "device enrol");
    // `sync` needs a device and a dispatch URL.
    let lost = Env::new();
    lost.run(&["init"]).expect(0, "init");
    assert_eq!(lost.run(&["sync"]).code, 2);
}

#[test]
fn the_operator_token_is_never_taken_from_the_command_line_or_a_loose_file() {
    let dispatch = TestDispatch::start();
    let env = Env::new();
    let url = dispatch.base_url();
    let file = token_file(&env);
    let code = |extra: &[&str], token_env: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobseal"));
        cmd.args(["dispatch", "enrolment-code", "--dispatch", &url]).args(extra).env_remove("JOBSEAL_OPERATOR_TOKEN");
        if let Some(t) = token_env {
            cmd.env("JOBSEAL_OPERATOR_TOKEN", t);
        }
        run_command(cmd, None)
    };
    // From the environment.
    let run = code(&["--json"], Some(OPERATOR_TOKEN)).expect(0, "token from the environment");
    assert_eq!(run.json()["code"].as_str().map(str::len), Some(23));
    // Bound to a device, with a validity.
    let device = uuid::Uuid::new_v4().to_string();
    let run = code(&["--device", &device, "--valid-for-hours", "2", "--json"], Some(OPERATOR_TOKEN)).expect(0, "bound");
    assert_eq!(run.json()["device_id"], device.as_str());
    // Neither file nor environment: usage error. A wrong token: dispatch's 401.
    assert_eq!(code(&[], None).code, 2);
    let wrong = code(&[], Some("not-the-operator-token"));
    assert_eq!(wrong.code, 8);
    assert!(wrong.stderr.contains("401"), "{}", wrong.stderr);
    // A token file others can read is refused, and there is no flag taking the token itself.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let loose = code(&["--operator-token-file", file.to_str().unwrap()], None);
        assert_eq!(loose.code, 2);
        assert!(loose.stderr.contains("chmod 600") && !loose.all().contains(OPERATOR_TOKEN), "{}", loose.stderr);
    }
    assert_eq!(code(&["--operator-token", OPERATOR_TOKEN], None).code, 2);
    assert_eq!(dispatch.operator().codes().codes.len(), 2);
}

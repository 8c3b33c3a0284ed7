//! End-to-end tests of the `jobseal` binary, run as a user or a script would run it.
//!
//! Each test works in its own temporary data directory and passes `--now`, so time is under the
//! test's control. The customer data is obviously fake; even so, failure messages describe what
//! leaked ("customer phone found in show output") and diagnostic dumps are redacted, because a
//! test log is just another place where a value must not land. The fixtures are in `common`,
//! shared with `sealed.rs`.

use crate::common::*;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn init_creates_a_vault_and_reports_its_key_epoch() {
    let env = Env::new();
    let r = env.run(&["init", "--now", EARLY]).expect(0, "init");
    assert!(r.stdout.contains("key epoch  1"), "init should report epoch 1: {}", r.stdout);
    assert!(r.stdout.contains("software"), "init should say the keystore is software");
    assert!(env.dir().join("keystore").is_dir(), "the keystore folder lives in the data dir");

    // Opening again keeps the vault and its epoch.
    let doc = env.run(&["init", "--json", "--now", EARLY]).expect(0, "second init").json();
    assert_eq!(doc["epoch"], 1);
    assert_eq!(doc["keystore"], "software");
    assert_eq!(doc["data_dir"].as_str().map(PathBuf::from), Some(env.dir().to_path_buf()));

    // The data dir may come from the environment instead.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobseal"));
    cmd.args(["job", "list", "--json"]).env("JOBSEAL_DATA_DIR", env.dir());
    let r = run_command(cmd, None).expect(0, "job list with JOBSEAL_DATA_DIR");
    assert_eq!(r.json()["jobs"], serde_json::json!([]));
}

#[test]
fn vault_commands_need_an_existing_vault() {
    let env = Env::new();
    let r = env.run(&["job", "list", "--json"]).expect(2, "job list before init");
    assert_eq!(r.error_kind(), "usage");
    assert!(r.stderr.contains("jobseal init"), "the error should say to run init: {}", r.stderr);
    assert!(!env.dir().join("vault.db").exists(), "a command other than init must not create a vault");

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobseal"));
    cmd.args(["job", "list"]).env_remove("JOBSEAL_DATA_DIR");
    let r = run_command(cmd, None).expect(2, "job list without a data dir");
    assert!(r.stderr.contains("--data-dir"), "the error should name --data-dir: {}", r.stderr);
}

#[test]
fn add_list_and_show_never_print_customer_values() {
    let env = Env::new();
    env.run(&["init", "--now", EARLY]).expect(0, "init");

    let file = env.fixture("sheet.json", sheet(JOB).as_bytes());
    let r = env.run(&["job", "add", file.to_str().unwrap(), "--now", EARLY]).expect(0, "job add");
    assert!(r.stdout.contains(JOB) && r.stdout.contains("assigned"), "add prints the job: {}", r.stdout);
    assert!(r.stderr.contains("plaintext"), "add warns that the sheet file is still plaintext");
    assert_no_customer_value(&r.all(), "add output");

    // From stdin, as JSON.
    let r = env
        .run_with_stdin(&["job", "add", "-", "--json", "--now", EARLY], Some(sheet(JOB2).as_bytes()))
        .expect(0, "job add from stdin");
    assert_no_customer_value(&r.all(), "add --json output");
    let info = r.json();
    assert_eq!(info["job_id"], JOB2);
    assert_eq!(info["state"], "assigned");
    assert_eq!(info["fields"].as_array().map(Vec::len), Some(4));

    let r = env.run(&["job", "list", "--now", EARLY]).expect(0, "job list");
    assert_no_customer_value(&r.all(), "list output");
    for needle in [JOB, JOB2, "WO-TEST-0001", "assigned", "Testville", "2030-01-10T09:00:00Z", "SHREDDED AT"] {
        assert!(r.stdout.contains(needle), "list output lacks {needle}:\n{}", r.stdout);
    }
    let header = r.stdout.lines().next().unwrap_or_default();
    let first = r.stdout.lines().nth(1).unwrap_or_default();
    assert_eq!(header.find("STATE"), first.find("assigned"), "list columns are aligned:\n{}", r.stdout);

    let r = env.run(&["job", "list", "--json", "--now", EARLY]).expect(0, "job list --json");
    assert_no_customer_value(&r.all(), "list --json output");
    assert_eq!(r.json()["jobs"].as_array().map(Vec::len), Some(2));

    let r = env.run(&["job", "show", JOB, "--now", EARLY]).expect(0, "job show");
    assert_no_customer_value(&r.all(), "show output");
    for needle in ["customer_name", "phone", "address", "door_code", "door-code", "Test fibre installation", "on-site"]
    {
        assert!(r.stdout.contains(needle), "show output lacks {needle}:\n{}", r.stdout);
    }
    let r = env.run(&["job", "show", JOB, "--json", "--now", EARLY]).expect(0, "job show --json");
    assert_no_customer_value(&r.all(), "show --json output");
    let info = r.json();
    assert_eq!(info["fields"][3]["name"], "door_code");
    assert_eq!(info["fields"][3]["reveal_in"], serde_json::json!(["on-site"]));
    assert_eq!(info["access"]["opens_at"], "2030-01-10T08:00:00Z");
}

#[test]
fn advance_takes_kebab_case_states_and_refuses_illegal_moves() {
    let env = Env::with_job();
    let r = env.run(&["job", "advance", JOB, "en-route", "--now", EARLY]).expect(0, "advance en-route");
    assert!(r.stdout.contains("en-route"), "advance prints the new state: {}", r.stdout);
    let r = env.run(&["job", "advance", JOB, "on-site", "--json", "--now", EARLY]).expect(0, "advance on-site");
    assert_eq!(r.json()["state"], "on-site");

    let before = env.list_json();
    let r = env.run(&["job", "advance", JOB, "en-route", "--json", "--now", EARLY]).expect(6, "advance backwards");
    assert_eq!(r.error_kind(), "illegal-transition");
    assert!(r.stderr.contains("on-site") && r.stderr.contains("en-route"), "the error names both states");
    let r = env.run(&["job", "advance", JOB, "completed", "--json", "--now", EARLY]).expect(6, "advance to completed");
    assert_eq!(r.error_kind(), "illegal-transition");
    let r = env.run(&["job", "advance", JOB, "EnRoute", "--json", "--now", EARLY]).expect(2, "advance to EnRoute");
    assert_eq!(r.error_kind(), "invalid-input");
    assert!(r.stderr.contains("en-route, on-site"), "the error lists the state names: {}", r.stderr);
    assert_eq!(env.list_json(), before, "refused moves change nothing");
    assert_eq!(env.state(JOB), "on-site");
}

#[test]
fn reveal_follows_the_state_and_the_access_window() {
    let env = Env::with_job();

    // Assigned: no field may be shown. (Every reveal moves trusted time up to its `--now`, so
    // the test walks forward in time.)
    let r = env.run(&["job", "reveal", JOB, "--now", EARLY]).expect(5, "reveal while assigned");
    assert_no_customer_value(&r.all(), "reveal output while assigned");
    assert!(r.stdout.contains("hidden: not shown while assigned"), "reveal says why:\n{}", r.stdout);

    // En route but before the window opens.
    env.run(&["job", "advance", JOB, "en-route", "--now", BEFORE]).expect(0, "advance en-route");
    let r = env.run(&["job", "reveal", JOB, "--json", "--now", BEFORE]).expect(5, "reveal before the window");
    assert_no_customer_value(&r.all(), "reveal output before the window");
    let doc = r.json();
    assert_eq!(doc["job_id"], JOB);
    assert_eq!(doc["state"], "en-route");
    for f in doc["fields"].as_array().unwrap() {
        assert_eq!(f["visible"], false, "field {} is hidden before the window", f["name"]);
        assert!(f.get("value").is_none(), "a hidden field carries no value");
    }
    assert_eq!(doc["fields"][0]["denial"]["reason"], "not-yet-open");
    assert_eq!(doc["fields"][0]["denial"]["opens_at"], "2030-01-10T08:00:00Z");
    assert_eq!(doc["fields"][3]["denial"]["reason"], "wrong-state");
    let r = env.run(&["job", "reveal", JOB, "--now", BEFORE]).expect(5, "reveal before the window (text)");
    assert!(
        r.stdout.contains("hidden: access window opens at 2030-01-10T08:00:00"),
        "reveal says when:\n{}",
        redact(&r.stdout)
    );
    assert!(r.stderr.contains("access denied"), "stderr says access was denied");

    // Inside the window, en route: everything but the door code.
    let r = env.run(&["job", "reveal", JOB, "--json", "--now", INSIDE]).expect(0, "reveal en route");
    let doc = r.json();
    assert_eq!(doc["at"], INSIDE);
    let fields = doc["fields"].as_array().unwrap();
    for (f, (what, value)) in fields.iter().zip(VALUES) {
        if f["name"] == "door_code" {
            assert_eq!(f["visible"], false, "door code hidden en route");
            assert_eq!(f["denial"]["reason"], "wrong-state");
            assert!(f.get("value").is_none(), "door code value present en route");
        } else {
            assert_eq!(f["visible"], true, "{what} visible en route");
            assert!(f["value"] == value, "{what} is not the sheet's value");
            assert_eq!(f["until"], "2030-01-10T12:00:00Z");
        }
    }
    assert!(!r.stdout.contains(DOOR), "door code found in en-route reveal output");

    // On site: the door code too, in the text output.
    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    let r = env.run(&["job", "reveal", JOB, "--now", LATER_INSIDE]).expect(0, "reveal on site");
    for (what, value) in VALUES {
        assert!(r.stdout.contains(value), "{what} missing from on-site reveal output");
    }
    assert!(r.stdout.contains("visible until 2030-01-10T12:00:00Z"), "reveal says until when");
    let until_columns: Vec<Option<usize>> = r.stdout.lines().skip(1).map(|l| l.find("visible until")).collect();
    assert!(until_columns.windows(2).all(|w| w[0] == w[1]), "the until column is aligned");
    assert_no_customer_value(&r.stderr, "reveal stderr");
}

#[test]
fn an_earlier_now_cannot_reopen_a_closed_window() {
    let env = Env::with_job();
    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    let r = env.run(&["job", "reveal", JOB, "--json", "--now", AFTER_WINDOW]).expect(5, "reveal after the window");
    assert_eq!(r.json()["fields"][0]["denial"]["reason"], "window-closed");

    // Setting the clock back to inside the window: trusted time stays at its high-water mark.
    let r = env.run(&["job", "reveal", JOB, "--json", "--now", INSIDE]).expect(5, "reveal with the clock set back");
    assert_no_customer_value(&r.all(), "reveal output after a clock rollback");
    let doc = r.json();
    assert_eq!(doc["at"], AFTER_WINDOW, "trusted time did not move back");
    assert_eq!(doc["fields"][0]["denial"]["reason"], "window-closed");

    // The system clock (years before 2030) does not help either.
    let r = env.run(&["job", "reveal", JOB]).expect(5, "reveal with the system clock");
    assert_no_customer_value(&r.all(), "reveal output with the system clock");
}

#[test]
fn close_shreds_with_a_report_and_cannot_happen_twice() {
    let env = Env::with_job();
    let r = env
        .run(&["job", "close", JOB, "--report", "Outlet fitted.", "--json", "--now", INSIDE])
        .expect(6, "close while assigned");
    assert_eq!(r.error_kind(), "illegal-transition");

    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    env.run(&["job", "reveal", JOB, "--now", INSIDE]).expect(0, "reveal on site");
    let r = env
        .run(&["job", "close", JOB, "--report", "Outlet fitted.\nLine tested.", "--json", "--now", LATER_INSIDE])
        .expect(0, "close");
    let outcome = r.json();
    assert_eq!(outcome["job_id"], JOB);
    assert_eq!(outcome["state"], "completed");
    assert_eq!(outcome["fields_destroyed"], 4);
    assert_eq!(outcome["epoch"], 2, "the shred rotated the key epoch");
    assert_eq!(outcome["shredded_at"], LATER_INSIDE);

    let r = env
        .run(&["job", "close", JOB, "--report", "Again.", "--json", "--now", LATER_INSIDE])
        .expect(6, "second close");
    assert_eq!(r.error_kind(), "job-closed");
    let r = env.run(&["job", "cancel", JOB, "--json", "--now", LATER_INSIDE]).expect(6, "cancel after close");
    assert_eq!(r.error_kind(), "job-closed");
    let r = env.run(&["job", "reveal", JOB, "--json", "--now", LATER_INSIDE]).expect(5, "reveal after close");
    assert_eq!(r.error_kind(), "access-denied");
    assert!(r.stderr.contains("shredded"), "the error says the data was shredded: {}", r.stderr);

    let r = env.run(&["job", "show", JOB, "--now", LATER_INSIDE]).expect(0, "show after close");
    assert_no_customer_value(&r.all(), "show output after close");
    assert!(
        r.stdout.contains("Outlet fitted.") && r.stdout.contains("Line tested."),
        "the report survives:\n{}",
        r.stdout
    );
    assert!(r.stdout.contains("customer fields: none held"), "no field is left:\n{}", r.stdout);
    let info = env.run(&["job", "show", JOB, "--json", "--now", LATER_INSIDE]).expect(0, "show --json").json();
    assert_eq!(info["state"], "completed");
    assert_eq!(info["shredded_at"], LATER_INSIDE);
    assert_eq!(info["fields"], serde_json::json!([]));
}

#[test]
fn cancel_shreds_the_job() {
    let env = Env::with_job();
    let r = env.run(&["job", "cancel", JOB, "--now", BEFORE]).expect(0, "cancel");
    assert!(r.stdout.contains("cancelled") && r.stdout.contains("4 customer field(s) destroyed"), "{}", r.stdout);
    let r = env.run(&["job", "list", "--now", BEFORE]).expect(0, "list after cancel");
    let row = r.stdout.lines().find(|l| l.contains(JOB)).unwrap_or_default();
    assert!(row.contains("cancelled") && row.contains(BEFORE), "list shows the job cancelled and when:\n{}", r.stdout);
    let r = env.run(&["job", "reveal", JOB, "--now", INSIDE]).expect(5, "reveal after cancel");
    assert_no_customer_value(&r.all(), "reveal output after cancel");
}

#[test]
fn sweep_past_the_hard_expiry_shreds() {
    let env = Env::with_job();
    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    let r = env.run(&["sweep", "--json", "--now", AFTER_WINDOW]).expect(0, "sweep before expiry");
    assert_eq!(r.json()["shredded"], serde_json::json!([]));
    assert_eq!(env.state(JOB), "on-site", "nothing is shredded before the hard expiry");

    env.run(&["sweep", "--now", PAST_EXPIRY]).expect(0, "sweep past expiry");
    let info = env.run(&["job", "show", JOB, "--json", "--now", PAST_EXPIRY]).expect(0, "show").json();
    assert_eq!(info["state"], "expired");
    assert_eq!(info["shredded_at"], PAST_EXPIRY);
    assert_eq!(info["fields"], serde_json::json!([]));
    let r = env.run(&["job", "reveal", JOB, "--json"]).expect(5, "reveal after expiry");
    assert_eq!(r.error_kind(), "access-denied");
}

#[test]
fn the_audit_log_records_reveals_without_values_and_verifies() {
    let env = Env::with_job();
    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    env.run(&["job", "reveal", JOB, "--now", INSIDE]).expect(0, "reveal");
    env.run(&["job", "close", JOB, "--report", "Done.", "--now", INSIDE]).expect(0, "close");

    let r = env.run(&["audit", "--now", INSIDE]).expect(0, "audit");
    assert_no_customer_value(&r.all(), "audit output");
    for needle in ["vault-created", "ingested", "transition", "reveal", "door_code", "shredded"] {
        assert!(r.stdout.contains(needle), "audit output lacks {needle}:\n{}", r.stdout);
    }
    let r = env.run(&["audit", "--job", JOB, "--json", "--now", INSIDE]).expect(0, "audit --job");
    assert_no_customer_value(&r.all(), "audit --json output");
    let events = r.json()["events"].as_array().cloned().unwrap_or_default();
    assert!(events.iter().all(|e| e["job_id"] == JOB), "--job filters events");
    let reveals: Vec<_> = events.iter().filter(|e| e["kind"] == "reveal").collect();
    assert_eq!(reveals.len(), 1, "one audit event per reveal");
    let summary = jobseal::RevealSummary::parse(reveals[0]["detail"].as_str().unwrap_or_default())
        .expect("the reveal event names its fields");
    assert_eq!(summary.shown.len(), 4, "the reveal event names each field shown: {summary:?}");

    let r = env.run(&["audit", "--verify", "--now", INSIDE]).expect(0, "audit --verify");
    assert!(r.stdout.starts_with("audit chain valid"), "{}", r.stdout);
    let v = env.run(&["audit", "--verify", "--json"]).expect(0, "audit --verify --json").json();
    assert_eq!(v["valid"], true);
    // Created, ingested, one or more transitions, the reveal (one event), the shred.
    assert!(v["events"].as_u64().unwrap_or(0) >= 5);

    let r = env.run(&["audit", "--verify", "--job", JOB]).expect(2, "--verify with --job");
    assert!(r.stderr.starts_with("jobseal: "), "usage errors are worded like the others: {}", r.stderr);

    // Someone edits an event in the database: the chain no longer verifies, and scripts see it.
    let db = rusqlite::Connection::open(env.dir().join("vault.db")).unwrap();
    db.execute("UPDATE audit SET field = 'door_code' WHERE seq = 5", []).unwrap();
    drop(db);
    let r = env.run(&["audit", "--verify", "--json"]).expect(3, "audit --verify after an edit");
    let v = r.json();
    assert_eq!(v["valid"], false);
    assert_eq!(v["broken_at"], 5);
    let r = env.run(&["audit", "--verify"]).expect(3, "audit --verify after an edit (text)");
    assert!(r.stdout.starts_with("audit chain INVALID at event 5"), "{}", r.stdout);
    assert!(r.stderr.contains("broken"), "stderr says the chain is broken: {}", r.stderr);
}

#[test]
fn scan_finds_a_planted_needle_and_names_it_by_number_only() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("a/b")).unwrap();
    std::fs::write(root.path().join("a/b/plain.txt"), format!("header {DOOR} and {DOOR}")).unwrap();
    std::fs::write(root.path().join("clean.bin"), [0u8, 1, 2, 3]).unwrap();
    // A needle straddling the first 64 KiB read boundary of a larger file.
    let mut big = vec![b'.'; 200_000];
    big[65_534..65_534 + PHONE.len()].copy_from_slice(PHONE.as_bytes());
    std::fs::write(root.path().join("big.dat"), &big).unwrap();
    // A symlink to a file holding a needle is not followed.
    std::fs::write(outside.path().join("elsewhere.txt"), NAME).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.path().join("elsewhere.txt"), root.path().join("link.txt")).unwrap();

    let dir = root.path().to_str().unwrap();
    let r = scan(&[dir, NAME, DOOR, "--hex", "2b3333"]).expect(1, "scan with planted needles");
    assert_no_customer_value(&r.all(), "scan output");
    let plain = root.path().join("a/b/plain.txt");
    let plain = plain.display();
    assert!(r.stdout.contains(&format!("{plain}: needle #2 at byte 7\n")), "first door code:\n{}", r.stdout);
    assert!(r.stdout.contains(&format!("{plain}: needle #2 at byte 17\n")), "second door code:\n{}", r.stdout);
    let big_path = root.path().join("big.dat");
    assert!(
        r.stdout.contains(&format!("{}: needle #3 at byte 65534\n", big_path.display())),
        "hex needle:\n{}",
        r.stdout
    );
    assert!(!r.stdout.contains("needle #1"), "the symlinked file was followed:\n{}", redact(&r.stdout));
    assert!(r.stdout.ends_with("scanned 3 files, 200026 bytes: 3 findings\n"), "summary:\n{}", r.stdout);

    let doc = scan(&[dir, NAME, DOOR, "--json"]).expect(1, "scan --json").json();
    assert_eq!(doc["files"], 3);
    assert_eq!(doc["findings"].as_array().map(Vec::len), Some(2));
    assert_eq!(doc["findings"][0]["needle"], 2);
    assert_eq!(doc["findings"][0]["offset"], 7);

    // Needles from a file, off the command line.
    let needles = outside.path().join("needles.txt");
    std::fs::write(&needles, format!("{PHONE}\n\n{ADDRESS}\n")).unwrap();
    let r = scan(&[dir, "--needles-file", needles.to_str().unwrap()]).expect(1, "scan --needles-file");
    assert!(r.stdout.contains(&format!("{}: needle #1 at byte 65534", big_path.display())), "{}", redact(&r.stdout));

    let r = scan(&[dir, ADDRESS]).expect(0, "scan for an absent needle");
    assert!(r.stdout.ends_with("0 findings\n"), "{}", r.stdout);

    // Errors: no needle, an empty or bad hex needle (never echoed), a missing path.
    scan(&[dir]).expect(2, "scan without needles");
    let r = scan(&[dir, "--hex", "+33"]).expect(2, "scan with bad hex");
    assert!(r.stderr.contains("needle #1") && !r.stderr.contains("+33"), "bad hex is named, not echoed: {}", r.stderr);
    scan(&[dir, ""]).expect(2, "scan with an empty needle");
    let missing = root.path().join("missing");
    let r = scan(&[missing.to_str().unwrap(), DOOR, "--json"]).expect(2, "scan of a missing path");
    assert_eq!(r.error_kind(), "invalid-input");
    assert_no_customer_value(&r.all(), "scan error output");
}

#[test]
fn no_customer_value_is_left_in_the_data_dir_after_close() {
    let env = Env::with_job();
    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    env.run(&["job", "reveal", JOB, "--now", INSIDE]).expect(0, "reveal on site");
    let data = env.dir().to_str().unwrap().to_owned();
    let needles: Vec<&str> = VALUES.iter().map(|(_, v)| *v).collect();
    fn with_needles<'a>(dir: &'a str, needles: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![dir];
        args.extend(needles);
        args
    }

    // The scan sees these needles where they are: in the plaintext sheet fixture.
    let r =
        scan(&with_needles(env.fixtures.path().to_str().unwrap(), &needles)).expect(1, "scan of the fixture folder");
    assert!(r.stdout.contains("needle #4"), "the scan finds the door code in the plaintext sheet");

    // G1: only ciphertext at rest, even while the job is open and was just revealed.
    scan(&with_needles(&data, &needles)).expect(0, "scan of the data dir while the job is open");

    env.run(&["job", "close", JOB, "--report", "Done.", "--now", LATER_INSIDE]).expect(0, "close");
    let r = scan(&with_needles(&data, &needles)).expect(0, "scan of the data dir after close");
    let summary = r.stdout.lines().last().unwrap_or_default();
    assert!(
        summary.starts_with("scanned ") && !summary.starts_with("scanned 0 files"),
        "the scan read files: {summary}"
    );
    assert!(summary.ends_with(": 0 findings"), "{summary}");
}

#[test]
fn bad_input_gets_a_typed_error_and_changes_nothing() {
    let env = Env::with_job();
    let before = env.list_json();

    // Malformed JSON, holding a customer value that must not be quoted back.
    let broken =
        env.fixture("broken.json", format!("{{\"format\": \"jobseal.sheet.v1\", \"phone\": \"{PHONE}\"").as_bytes());
    let r = env.run(&["job", "add", broken.to_str().unwrap(), "--json", "--now", EARLY]).expect(2, "malformed sheet");
    assert_eq!(r.error_kind(), "invalid-sheet");
    assert_no_customer_value(&r.all(), "malformed sheet error");
    // Well-formed JSON that breaks the sheet rules.
    let bad = sheet(JOB2).replace("\"door_code\"", "\"Door Code\"");
    let r = env
        .run_with_stdin(&["job", "add", "-", "--json", "--now", EARLY], Some(bad.as_bytes()))
        .expect(2, "invalid sheet");
    assert_eq!(r.error_kind(), "invalid-sheet");
    assert_no_customer_value(&r.all(), "invalid sheet error");
    // A sheet whose hard expiry has passed (ten years before `EARLY`).
    let stale = sheet(JOB2).replace("2030-01-10", "2020-01-10");
    let r = env
        .run_with_stdin(&["job", "add", "-", "--json", "--now", EARLY], Some(stale.as_bytes()))
        .expect(2, "expired sheet");
    assert_eq!(r.error_kind(), "invalid-sheet");
    let missing = env.fixtures.path().join("missing.json");
    let r = env.run(&["job", "add", missing.to_str().unwrap(), "--json", "--now", EARLY]).expect(2, "missing sheet");
    assert_eq!(r.error_kind(), "invalid-input");

    let r = env.run(&["job", "show", UNKNOWN_JOB, "--json", "--now", EARLY]).expect(4, "unknown job");
    assert_eq!(r.error_kind(), "job-not-found");
    assert!(r.stderr.contains(UNKNOWN_JOB), "the error names the job id: {}", r.stderr);
    let r =
        env.run(&["job", "advance", UNKNOWN_JOB, "en-route", "--json", "--now", EARLY]).expect(4, "advance unknown");
    assert_eq!(r.error_kind(), "job-not-found");
    let r = env.run(&["job", "advance", JOB, "arrived", "--json", "--now", EARLY]).expect(2, "bad state");
    assert_eq!(r.error_kind(), "invalid-input");
    let r = env.run(&["job", "reveal", "not-a-uuid", "--json", "--now", EARLY]).expect(2, "bad UUID");
    assert_eq!(r.error_kind(), "invalid-input");
    assert!(r.stderr.contains("UUID") && !r.stderr.contains("not-a-uuid"), "bad id is described: {}", r.stderr);
    let r = env.run(&["job", "list", "--json", "--now", "yesterday"]).expect(2, "bad --now");
    assert_eq!(r.error_kind(), "invalid-input");
    let r = env.run(&["job", "close", JOB, "--json", "--now", EARLY]).expect(2, "close without --report");
    assert_eq!(r.error_kind(), "usage");
    let r = env.run(&["job", "frobnicate", "--json"]).expect(2, "unknown subcommand");
    assert_eq!(r.error_kind(), "usage");

    assert_eq!(env.list_json(), before, "bad input changed the job list");
}

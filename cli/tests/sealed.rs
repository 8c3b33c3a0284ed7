//! End-to-end tests of sealed job sheets: `dispatch keygen` and `dispatch seal` on the dispatch
//! side, `device init`, `device bundle`, `device top-up` and `job receive` on the device.
//!
//! Dispatch's files (key, bundle, plaintext sheets, envelopes) live in the fixtures folder, away
//! from the data directory whose cleanliness the forensic check scans. The fixtures are in
//! `common`, shared with `cli.rs`.

use crate::common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// 64 zeros: the all-zero X25519 key, the weakest of the low-order keys.
const ZERO_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// A device enrolled with a dispatch key made by `dispatch keygen --out`, and the files dispatch
/// seals from: its key file, the device's bundle and the plaintext sheet of `JOB`.
struct Sealed {
    env: Env,
    key_file: PathBuf,
    bundle: PathBuf,
    sheet: PathBuf,
}

impl Sealed {
    fn new() -> Sealed {
        let env = Env::new();
        let key_file = env.fixtures.path().join("dispatch-key.json");
        let public = keygen(&key_file);
        env.run(&["device", "init", "--dispatch-key", &public, "--now", EARLY]).expect(0, "device init");
        let bundle = env.fixtures.path().join("bundle.json");
        env.run(&["device", "bundle", "--out", path(&bundle)]).expect(0, "device bundle --out");
        let sheet = env.fixture("sheet.json", sheet(JOB).as_bytes());
        Sealed { env, key_file, bundle, sheet }
    }

    /// Seals `sheet` with the key file to the bundle, into the fixture file `name`, with `extra`
    /// options; expects success.
    fn seal_file(&self, sheet: &Path, name: &str, extra: &[&str]) -> (PathBuf, Run) {
        let out = self.env.fixtures.path().join(name);
        let mut args =
            vec!["dispatch", "seal", "--key-file", path(&self.key_file), "--bundle", path(&self.bundle), "--sheet"];
        args.extend([path(sheet), "--out", path(&out)]);
        args.extend(extra);
        let r = bare(&args, None).expect(0, "dispatch seal");
        assert_no_customer_value(&r.all(), "seal output");
        (out, r)
    }

    /// Seals the sheet of `JOB` to the bundle's default key.
    fn seal(&self, name: &str) -> PathBuf {
        self.seal_file(&self.sheet, name, &[]).0
    }

    fn receive(&self, envelope: &Path, json: bool) -> Run {
        let mut args = vec!["job", "receive", path(envelope), "--now", EARLY];
        if json {
            args.push("--json");
        }
        let r = self.env.run(&args);
        assert_no_customer_value(&r.all(), "receive output");
        r
    }

    fn bundle_json(&self) -> Value {
        let r = self.env.run(&["device", "bundle"]).expect(0, "device bundle");
        serde_json::from_str(&r.stdout).expect("the bundle is JSON")
    }

    fn prekey_ids(&self) -> Vec<u64> {
        self.bundle_json()["prekeys"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect()
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `dispatch keygen --out FILE`; returns the public key it printed.
fn keygen(file: &Path) -> String {
    let r = bare(&["dispatch", "keygen", "--out", path(file)], None).expect(0, "dispatch keygen --out");
    let public = r.stdout.strip_prefix("public key  ").unwrap_or_default().trim_end().to_owned();
    assert_eq!(public.len(), 64, "keygen --out prints the public key: {}", r.stdout);
    public
}

fn sheet_version(job: &str, version: u64) -> String {
    let mut doc: Value = serde_json::from_str(&sheet(job)).unwrap();
    doc["version"] = version.into();
    doc.to_string()
}

#[test]
fn a_sealed_sheet_goes_from_keygen_to_reveal_and_leaves_nothing_after_close() {
    let env = Env::new();

    // Dispatch makes its key pair; the secret goes to a 0600 file only.
    let key_file = env.fixtures.path().join("dispatch-key.json");
    let r = bare(&["dispatch", "keygen", "--out", path(&key_file)], None).expect(0, "dispatch keygen --out");
    let key: Value = serde_json::from_slice(&std::fs::read(&key_file).unwrap()).unwrap();
    let (secret, public) = (key["secret_key"].as_str().unwrap(), key["public_key"].as_str().unwrap());
    assert_eq!((secret.len(), public.len()), (64, 64), "the key file holds both halves as hex");
    assert_eq!(r.stdout, format!("public key  {public}\n"), "only the public key is printed");
    assert!(!r.all().contains(secret), "the secret key was printed");
    assert!(r.stderr.contains("mode 0600"), "keygen says where the secret went: {}", r.stderr);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the key file is readable by its owner only");
    }

    // The device enrols with dispatch's public key.
    let r = env.run(&["device", "init", "--dispatch-key", public, "--now", EARLY]).expect(0, "device init");
    for needle in ["device", "identity key", public, "unused prekeys  20"] {
        assert!(r.stdout.contains(needle), "device init output lacks {needle}:\n{}", r.stdout);
    }
    assert!(env.dir().join("vault.db").is_file(), "device init creates the vault");

    // Its bundle, on stdout and in a file.
    let r = env.run(&["device", "bundle"]).expect(0, "device bundle");
    let bundle: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(bundle["format"], "jobseal.bundle.v1");
    assert!(r.stdout.contains("\n  \"device_id\""), "the bundle is pretty-printed:\n{}", r.stdout);
    assert!(r.stdout.contains(bundle["identity_key"].as_str().unwrap()));
    let ids: Vec<u64> = bundle["prekeys"].as_array().unwrap().iter().map(|p| p["id"].as_u64().unwrap()).collect();
    assert_eq!(ids, (1..=20).collect::<Vec<u64>>());
    let bundle_file = env.fixtures.path().join("bundle.json");
    let r = env.run(&["device", "bundle", "--out", path(&bundle_file), "--json"]).expect(0, "device bundle --out");
    assert_eq!(r.json()["unused_prekeys"], 20);
    let from_file: Value = serde_json::from_slice(&std::fs::read(&bundle_file).unwrap()).unwrap();
    assert_eq!(from_file, bundle, "--out writes the same bundle");

    // Dispatch seals the sheet: to prekey 1, the lowest.
    let sheet_file = env.fixture("sheet.json", sheet(JOB).as_bytes());
    let envelope = env.fixtures.path().join("job.jsel");
    let r = bare(
        &["dispatch", "seal", "--key-file", path(&key_file), "--bundle", path(&bundle_file)]
            .into_iter()
            .chain(["--sheet", path(&sheet_file), "--out", path(&envelope)])
            .collect::<Vec<_>>(),
        None,
    )
    .expect(0, "dispatch seal");
    assert_no_customer_value(&r.all(), "seal output");
    assert!(r.stdout.is_empty(), "seal --out prints nothing on stdout: {}", r.stdout);
    assert!(r.stderr.contains(&format!("sealed job {JOB} version 1")) && r.stderr.contains("to prekey 1 "));
    let bytes = std::fs::read(&envelope).unwrap();
    assert_eq!(&bytes[..4], b"JSEL", "the envelope is the binary format");
    for (_, value) in VALUES {
        assert!(!bytes.windows(value.len()).any(|w| w == value.as_bytes()), "a customer value is in the envelope");
    }

    // The device receives it and spends prekey 1.
    let r = env.run(&["job", "receive", path(&envelope), "--now", EARLY]).expect(0, "job receive");
    assert_no_customer_value(&r.all(), "receive output");
    assert!(r.stdout.contains(JOB) && r.stdout.contains("assigned") && r.stdout.contains("4 customer field(s)"));
    assert!(r.stdout.contains("delivered: sealed to prekey 1,"), "receive says how it came:\n{}", r.stdout);
    let r = env.run(&["job", "show", JOB, "--now", EARLY]).expect(0, "job show");
    assert_no_customer_value(&r.all(), "show output");
    assert!(r.stdout.contains("delivered      sealed to prekey 1"), "show says how it came:\n{}", r.stdout);
    let info = env.run(&["job", "show", JOB, "--json", "--now", EARLY]).expect(0, "job show --json").json();
    assert_eq!(info["delivered_via"], serde_json::json!({ "prekey": 1 }));
    let bundle: Value = serde_json::from_str(&env.run(&["device", "bundle"]).expect(0, "bundle").stdout).unwrap();
    assert_eq!(bundle["prekeys"].as_array().map(Vec::len), Some(19), "prekey 1 is spent");
    assert_ne!(bundle["prekeys"][0]["id"], 1);

    // The technician works the job: the values are there, then gone.
    env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    let r = env.run(&["job", "reveal", JOB, "--now", INSIDE]).expect(0, "reveal on site");
    for (what, value) in VALUES {
        assert!(r.stdout.contains(value), "{what} is not revealed on site");
    }
    env.run(&["job", "close", JOB, "--report", "Done.", "--now", LATER_INSIDE]).expect(0, "close");

    let mut args = vec![path(env.dir())];
    args.extend(VALUES.iter().map(|(_, v)| *v));
    let r = scan(&args).expect(0, "scan of the data dir after close");
    assert!(r.stdout.ends_with(": 0 findings\n") && !r.stdout.contains("scanned 0 files"), "{}", r.stdout);
}

#[test]
fn a_received_envelope_is_stale_the_second_time_and_a_closed_job_takes_none() {
    let s = Sealed::new();
    let envelope = s.seal("v1.jsel");
    s.receive(&envelope, false).expect(0, "first receive");
    let before = s.env.list_json();
    let ids = s.prekey_ids();

    let r = s.receive(&envelope, true).expect(6, "second receive of the same envelope");
    assert_eq!(r.error_kind(), "stale-version");
    assert!(r.stderr.contains("not newer"), "the error says why: {}", r.stderr);

    // A newer version to the spent prekey 1 cannot be opened: its secret half is gone.
    let v2 = s.env.fixture("v2.json", sheet_version(JOB, 2).as_bytes());
    let (to_spent, r) = s.seal_file(&v2, "v2-spent.jsel", &["--prekey", "1"]);
    assert!(r.stderr.contains("to prekey 1 "), "{}", r.stderr);
    // Exit 6 (conflict), as the bindings classify it; it was 7 (tampered) before the CLI and the
    // bindings shared the core's ErrorKind: a spent prekey is state, not evidence of tampering.
    let r = s.receive(&to_spent, true).expect(6, "receive to a spent prekey");
    assert_eq!(r.error_kind(), "prekey-unavailable");
    assert_eq!(s.env.list_json(), before, "refused envelopes change nothing");
    assert_eq!(s.prekey_ids(), ids, "refused envelopes spend no prekey");

    s.env.run(&["job", "advance", JOB, "on-site", "--now", INSIDE]).expect(0, "advance on-site");
    s.env.run(&["job", "close", JOB, "--report", "Done.", "--now", LATER_INSIDE]).expect(0, "close");
    let closed = s.env.list_json();

    for (envelope, what) in
        [(envelope, "the first envelope"), (s.seal_file(&v2, "v2.jsel", &["--prekey", "2"]).0, "v2")]
    {
        let r = s.receive(&envelope, true).expect(6, &format!("receive of {what} after close"));
        assert_eq!(r.error_kind(), "job-closed", "{what}");
        assert!(r.stderr.contains("closed (completed)"), "{what}: {}", r.stderr);
    }
    assert_eq!(s.env.list_json(), closed, "a closed job takes no sheet");
    // The authentic v2 envelope was refused, but it used up prekey 2 all the same: kept by anyone
    // who saw it, it can never be opened (issue 12).
    let left: Vec<_> = ids.iter().copied().filter(|id| *id != 2).collect();
    assert_eq!(s.prekey_ids(), left, "a refused authentic envelope must use up its prekey");
}

#[test]
fn a_modified_envelope_is_refused_and_changes_nothing() {
    let s = Sealed::new();
    let envelope = s.seal("job.jsel");
    let bytes = std::fs::read(&envelope).unwrap();
    let before = s.env.list_json();
    let ids = s.prekey_ids();

    // Offsets: the device id in the header, the sheet version, `enc`, the ciphertext, the tag.
    for (offset, kind) in
        [(10, "misaddressed"), (44, "tampered"), (60, "tampered"), (200, "tampered"), (bytes.len() - 1, "tampered")]
    {
        let mut changed = bytes.clone();
        changed[offset] ^= 0x01;
        let file = s.env.fixture("changed.jsel", &changed);
        let r = s.receive(&file, true).expect(7, &format!("receive with byte {offset} changed"));
        assert_eq!(r.error_kind(), kind, "byte {offset}");
    }
    // Truncated, and from stdin.
    let r = s
        .env
        .run_with_stdin(&["job", "receive", "-", "--json", "--now", EARLY], Some(&bytes[..bytes.len() - 10]))
        .expect(7, "receive of a truncated envelope");
    assert_eq!(r.error_kind(), "tampered");

    assert_eq!(s.env.list_json(), before, "job list changed");
    assert_eq!(s.prekey_ids(), ids, "a refused envelope spent a prekey");
    s.receive(&envelope, false).expect(0, "the original still opens");
}

#[test]
fn an_envelope_sealed_with_another_dispatch_key_is_refused() {
    let s = Sealed::new();
    // Another key pair, printed rather than filed, and given with --key.
    let r = bare(&["dispatch", "keygen", "--json"], None).expect(0, "dispatch keygen");
    assert!(r.stderr.contains("warning") && r.stderr.contains("secret key"), "keygen warns: {}", r.stderr);
    let other = r.json();
    let secret = other["secret_key"].as_str().unwrap();
    assert_eq!(secret.len(), 64);
    let r = bare(&["dispatch", "keygen"], None).expect(0, "dispatch keygen (text)");
    assert!(r.stdout.starts_with("public key  ") && r.stdout.contains("\nsecret key  "), "{}", r.stdout);

    let forged = s.env.fixtures.path().join("forged.jsel");
    let r = bare(
        &["dispatch", "seal", "--key", secret, "--bundle", path(&s.bundle), "--sheet", path(&s.sheet)]
            .into_iter()
            .chain(["--out", path(&forged), "--json"])
            .collect::<Vec<_>>(),
        None,
    )
    .expect(0, "seal with another key");
    assert!(!r.all().contains(secret), "seal printed the secret key");
    let report = r.json();
    assert_eq!(report["job_id"], JOB);
    assert_eq!(report["sealed_to"], serde_json::json!({ "prekey": 1 }));

    let r = s.receive(&forged, true).expect(7, "receive of a forged envelope");
    assert_eq!(r.error_kind(), "tampered");
    assert_eq!(s.env.list_json()["jobs"], serde_json::json!([]), "the forged sheet was stored");
    assert_eq!(s.prekey_ids().len(), 20, "the forged envelope spent a prekey");
}

#[test]
fn keygen_never_overwrites_a_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dispatch-key.json");
    let public = keygen(&file);
    let kept = std::fs::read(&file).unwrap();

    let r = bare(&["dispatch", "keygen", "--out", path(&file), "--json"], None).expect(2, "keygen over a key file");
    assert_eq!(r.error_kind(), "invalid-input");
    assert!(r.stderr.contains("already exists"), "the error says why: {}", r.stderr);
    assert_eq!(std::fs::read(&file).unwrap(), kept, "the key file was changed");
    assert!(String::from_utf8(kept).unwrap().contains(&public));

    // A key file whose halves do not match is refused when sealing.
    let s = Sealed::new();
    let mut doc: Value = serde_json::from_slice(&std::fs::read(&s.key_file).unwrap()).unwrap();
    doc["public_key"] = public.into();
    let bad = s.env.fixture("mismatched-key.json", doc.to_string().as_bytes());
    let r = bare(
        &["dispatch", "seal", "--key-file", path(&bad), "--bundle", path(&s.bundle), "--sheet", path(&s.sheet)]
            .into_iter()
            .chain(["--out", path(&dir.path().join("x.jsel")), "--json"])
            .collect::<Vec<_>>(),
        None,
    )
    .expect(2, "seal with a mismatched key file");
    assert!(r.stderr.contains("not the public half"), "{}", r.stderr);
    assert!(!r.all().contains(doc["secret_key"].as_str().unwrap()), "the secret key was echoed");
}

#[test]
fn device_init_refuses_weak_or_malformed_dispatch_keys() {
    let env = Env::new();
    let low_order = "0100000000000000000000000000000000000000000000000000000000000000";
    let non_canonical = "efffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
    for (key, what) in [
        (ZERO_KEY, "all-zero key"),
        (low_order, "low-order key"),
        (non_canonical, "non-canonical key"),
        ("abc", "short"),
    ] {
        let r = env.run(&["device", "init", "--dispatch-key", key, "--json", "--now", EARLY]).expect(2, what);
        assert_eq!(r.error_kind(), "invalid-input", "{what}");
        assert!(r.stderr.contains("--dispatch-key is not a usable X25519 public key"), "{what}: {}", r.stderr);
    }
    let r = env.run(&["device", "init", "--dispatch-key", ZERO_KEY, "--now", EARLY]).expect(2, "all-zero key");
    assert!(r.stderr.contains("weak"), "the error says the key is weak: {}", r.stderr);
    assert!(!env.dir().join("vault.db").exists(), "a refused key created a vault");

    // A good key enrols once.
    let public = keygen(&env.fixtures.path().join("k.json"));
    env.run(&["device", "init", "--dispatch-key", &public, "--prekeys", "3", "--now", EARLY]).expect(0, "device init");
    let r = env.run(&["device", "init", "--dispatch-key", &public, "--json", "--now", EARLY]).expect(6, "second init");
    assert_eq!(r.error_kind(), "enrolment");
    let r = env.run(&["device", "bundle"]).expect(0, "device bundle");
    assert_eq!(r.stdout.matches("\"public_key\"").count(), 3, "--prekeys 3 made three prekeys");

    // A vault that was never enrolled has no bundle and takes no envelope.
    let plain = Env::new();
    plain.run(&["init", "--now", EARLY]).expect(0, "init");
    let r = plain.run(&["device", "bundle", "--json"]).expect(6, "bundle before enrolment");
    assert_eq!(r.error_kind(), "enrolment");
    let junk = plain.fixture("junk.jsel", b"JSEL");
    let r = plain.run(&["job", "receive", path(&junk), "--json", "--now", EARLY]).expect(7, "receive of junk");
    assert_eq!(r.error_kind(), "tampered");
}

#[test]
fn a_bundle_without_prekeys_falls_back_to_the_identity_key() {
    let s = Sealed::new();
    let mut bundle = s.bundle_json();
    bundle["prekeys"] = serde_json::json!([]);
    let empty = s.env.fixture("empty-bundle.json", bundle.to_string().as_bytes());

    let envelope = s.env.fixtures.path().join("identity.jsel");
    let r = bare(
        &["dispatch", "seal", "--key-file", path(&s.key_file), "--bundle", path(&empty), "--sheet", path(&s.sheet)]
            .into_iter()
            .chain(["--out", path(&envelope)])
            .collect::<Vec<_>>(),
        None,
    )
    .expect(0, "seal to an empty bundle");
    assert!(r.stderr.contains("no prekey left"), "seal notes the fallback: {}", r.stderr);
    assert!(r.stderr.contains("to the identity key"), "seal says the key: {}", r.stderr);

    let r = s.receive(&envelope, false).expect(0, "receive via the identity key");
    assert!(r.stdout.contains("delivered: sealed to the identity key (fallback"), "{}", r.stdout);
    assert!(r.stderr.contains("top-up"), "receive suggests a top-up: {}", r.stderr);
    let info = s.env.run(&["job", "show", JOB, "--json", "--now", EARLY]).expect(0, "job show").json();
    assert_eq!(info["delivered_via"], "identity");
    assert_eq!(s.prekey_ids().len(), 20, "the identity fallback spends no prekey");

    // --identity forces the fallback even with prekeys in the bundle.
    let sheet2 = s.env.fixture("sheet2.json", sheet(JOB2).as_bytes());
    let (forced, r) = s.seal_file(&sheet2, "forced.jsel", &["--identity", "--json"]);
    assert_eq!(r.json()["sealed_to"], "identity");
    let info = s.receive(&forced, true).expect(0, "receive of --identity").json();
    assert_eq!(info["delivered_via"], "identity");

    // A prekey that is not in the bundle is an input error.
    let args = ["dispatch", "seal", "--key-file", path(&s.key_file), "--bundle", path(&empty), "--sheet"];
    let r = bare(&[&args[..], &[path(&s.sheet), "--prekey", "1", "--out", path(&envelope), "--json"]].concat(), None)
        .expect(2, "seal to a prekey not in the bundle");
    assert_eq!(r.error_kind(), "invalid-input");
}

#[test]
fn top_up_adds_prekeys_to_the_bundle() {
    let s = Sealed::new();
    assert_eq!(s.prekey_ids().len(), 20);
    let r = s.env.run(&["device", "top-up", "5", "--now", EARLY]).expect(0, "device top-up 5");
    assert!(r.stdout.contains("prekeys added   5") && r.stdout.contains("unused prekeys  25"), "{}", r.stdout);
    assert_eq!(s.prekey_ids(), (1..=25).collect::<Vec<u64>>());

    let doc = s.env.run(&["device", "top-up", "1", "--json", "--now", EARLY]).expect(0, "top-up --json").json();
    assert_eq!((doc["added"].as_u64(), doc["unused_prekeys"].as_u64()), (Some(1), Some(26)));
    for bad in ["0", "501"] {
        let r = s.env.run(&["device", "top-up", bad, "--json", "--now", EARLY]).expect(2, &format!("top-up {bad}"));
        assert_eq!(r.error_kind(), "invalid-input");
    }
    assert_eq!(s.prekey_ids().len(), 26);
}

#[test]
fn seal_writes_to_a_pipe_and_receive_reads_stdin() {
    let s = Sealed::new();
    let base = ["dispatch", "seal", "--key-file", path(&s.key_file), "--bundle", path(&s.bundle), "--sheet"];
    let r = bare(&[&base[..], &["-"]].concat(), Some(sheet(JOB).as_bytes())).expect(0, "seal to stdout");
    assert_eq!(&r.raw[..4], b"JSEL", "the envelope is on stdout");
    assert!(r.stderr.contains("bytes to stdout"), "{}", r.stderr);
    let r = s
        .env
        .run_with_stdin(&["job", "receive", "-", "--json", "--now", EARLY], Some(&r.raw))
        .expect(0, "receive from stdin");
    assert_eq!(r.json()["job_id"], JOB);

    // With --json, stdout is for the report: --out is required.
    let r = bare(&[&base[..], &[path(&s.sheet), "--json"]].concat(), None).expect(2, "seal --json to stdout");
    assert_eq!(r.error_kind(), "usage");
    // One key source is required, and the key file and the sheet cannot both come from stdin.
    let out = s.env.fixtures.path().join("never-written.jsel");
    let r = bare(
        &["dispatch", "seal", "--bundle", path(&s.bundle), "--sheet", path(&s.sheet), "--out", path(&out), "--json"],
        None,
    )
    .expect(2, "seal without a key");
    assert_eq!(r.error_kind(), "usage");
    assert!(r.stderr.contains("--key-file"), "the error names both key options: {}", r.stderr);
    let r = bare(
        &["dispatch", "seal", "--key-file", "-", "--bundle", path(&s.bundle), "--sheet", "-", "--out", path(&out)]
            .into_iter()
            .chain(["--json"])
            .collect::<Vec<_>>(),
        None,
    )
    .expect(2, "seal with two stdins");
    assert_eq!(r.error_kind(), "usage");
    let r = bare(
        &["dispatch", "seal", "--key", ZERO_KEY, "--bundle", path(&s.bundle), "--sheet", path(&s.sheet), "--out"]
            .into_iter()
            .chain([path(&out)])
            .collect::<Vec<_>>(),
        None,
    )
    .expect(2, "seal with an all-zero secret key");
    assert!(r.stderr.contains("not a usable X25519 secret key"), "{}", r.stderr);
    assert!(!out.exists(), "a refused seal wrote an envelope");
}

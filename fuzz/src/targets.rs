//! The byte-level targets of the device's inputs (envelope, sheet, sync response, FFI inputs) and
//! the shared fixture and checks every target uses (G8).
//!
//! Every target has the libFuzzer shape `fn(&[u8])` (wrapped by `fuzz_targets/*.rs`) and returns
//! a short label of the outcome, which the tests use to see that inputs reach where they should.
//! A target fails by panicking: either the code under test
//! panicked (a bug: nothing may panic across the FFI), or it returned an error of a class that bad
//! input must never cause (storage, integrity, keystore), or an error message quoted a customer
//! value. Targets that need a device share one enrolled vault on a fixed clock in a temporary
//! directory, rebuilt every [`RESET_EVERY`] calls so that state drift (shredded jobs, a trusted
//! clock moved to the far future by a fuzzed server time) does not starve later inputs.

use chrono::{DateTime, TimeZone, Utc};
use jobseal::answer::{AnswerKey, AnsweredCall};
use jobseal::envelope::{self, EnvelopeHeader, PublicKey, RecipientKeyId, SecretKey};
use jobseal::sync::SyncReport;
use jobseal::{DeviceBundle, Error, FileKeyStore, HttpResponse, JobSheet, JobState, ManualClock, PendingCall, Vault};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Calls served by one fixture vault before it is rebuilt.
pub const RESET_EVERY: u32 = 200;

/// The example sheet of `docs/examples/job-sheet.json` (fake customer data): the fixture holds it.
pub const EXAMPLE_SHEET: &str = include_str!("../../docs/examples/job-sheet.json");
/// The envelope test vectors of `docs/vectors/envelope-v1.json`.
pub const ENVELOPE_VECTORS: &str = include_str!("../../docs/vectors/envelope-v1.json");

/// Substrings that appear only as customer values in the seeds; no error message may contain one.
pub const CUSTOMER_CANARIES: &[&str] =
    &["Test Customer", "+33 6 00 00 00 00", "+33 1 00 00 00 01", "rue de l'Exemple", "ring twice"];

/// In a sync-response body, this JSON string is replaced by the hex of a fresh, authentic
/// envelope sealed to the fixture device (the example sheet at a new version).
pub const SEALED_PLACEHOLDER: &str = "\"@sealed\"";
/// In FFI inputs, replaced by the fixture device's bundle JSON.
pub const BUNDLE_PLACEHOLDER: &str = "@bundle";
/// In FFI inputs, replaced by the fixture dispatch secret key in hex.
pub const SECRET_PLACEHOLDER: &str = "@dispatch-secret";
/// Separates the fields of an FFI input (ASCII record separator).
pub const FIELD_SEP: u8 = 0x1e;

/// The instant the fixture's clock shows: inside the example sheet's access window.
pub fn fixture_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 6, 12, 9, 0, 0).single().expect("valid instant")
}

/// The example sheet's job id.
pub fn example_job() -> Uuid {
    Uuid::parse_str("4f1c2b8e-7d3a-4c59-9e21-6a0b5d8f3c17").expect("uuid")
}

/// An enrolled device vault holding the example job (en-route, so reveals show fields).
pub struct Fixture {
    /// The device's vault.
    pub vault: Vault,
    /// The dispatch secret key the device pinned.
    pub dispatch_sk: SecretKey,
    /// The device's public bundle.
    pub bundle: DeviceBundle,
    next_version: u64,
    uses: u32,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = scratch_dir();
        let ks = FileKeyStore::open(dir.path().join(jobseal::KEYSTORE_DIR)).expect("keystore");
        let vault =
            Vault::open(dir.path(), Arc::new(ks), Arc::new(ManualClock::new(fixture_now()))).expect("fixture vault");
        let (dispatch_sk, dispatch_pk) = envelope::generate_keypair().expect("keypair");
        let bundle = vault.enrol(dispatch_pk, 16).expect("enrol");
        let sheet = JobSheet::from_json(EXAMPLE_SHEET.as_bytes()).expect("example sheet is valid");
        vault.ingest(&sheet).expect("ingest example");
        vault.advance(example_job(), JobState::EnRoute).expect("advance");
        Fixture { vault, dispatch_sk, bundle, next_version: 2, uses: 0, _dir: dir }
    }

    /// An authentic envelope of the example sheet at the next version, sealed to the identity key.
    pub(crate) fn fresh_envelope(&mut self) -> Vec<u8> {
        let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_SHEET).expect("json");
        v["version"] = self.next_version.into();
        self.next_version += 1;
        jobseal::seal_job_sheet(&self.dispatch_sk, &self.bundle, None, v.to_string().as_bytes()).expect("seal")
    }
}

/// A temporary directory for a fixture: in `/dev/shm` where it exists (a fuzz run opens thousands
/// of vaults, and their fsyncs need not reach a disk), else in the system's temporary folder.
pub(crate) fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(d) = tempfile::Builder::new().prefix("jobseal-fuzz-").tempdir_in(shm) {
            return d;
        }
    }
    tempfile::tempdir().expect("temporary directory")
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

pub(crate) fn with_fixture<R>(f: impl FnOnce(&mut Fixture) -> R) -> R {
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|fx| fx.uses >= RESET_EVERY) {
        *guard = None; // release the old vault's directory lock before opening a new one
        *guard = Some(Fixture::new());
    }
    let fx = guard.as_mut().expect("fixture");
    fx.uses += 1;
    f(fx)
}

/// Drops the shared fixture; the next call builds a fresh one (after a caught panic, say, since
/// the vault's state is then unknown).
pub fn reset_fixture() {
    *FIXTURE.lock().unwrap_or_else(|p| p.into_inner()) = None;
}

/// Checks that an error is one bad input may cause, and that its message is value-free; returns
/// a short label of the error class for outcome tracking.
pub(crate) fn check_error(stage: &str, e: &Error) -> String {
    let msg = e.to_string();
    // A dispatch error relays the message of an error answer, which is not authenticated and
    // may say anything (a proxy can write it); the device adds no customer value to it.
    if !matches!(e, Error::Dispatch { .. }) {
        for c in CUSTOMER_CANARIES {
            assert!(!msg.contains(c), "{stage}: an error message quotes a customer value");
        }
    }
    use jobseal::ErrorKind as K;
    match e.kind() {
        K::Storage | K::Integrity | K::KeyStore | K::Locked | K::Internal => {
            panic!("{stage}: bad input caused an internal error: {msg}")
        }
        K::InvalidInput
        | K::NotFound
        | K::AccessDenied
        | K::Conflict
        | K::Tampered
        | K::Enrolment
        | K::Network
        | K::Dispatch => {}
    }
    // The message without digits (line and column numbers, ids) tells validation paths apart.
    let msg: String = msg.chars().filter(|c| !c.is_ascii_digit()).take(120).collect();
    format!("{stage}:{msg}")
}

pub(crate) fn label<T>(stage: &str, r: &jobseal::Result<T>) -> String {
    match r {
        Ok(_) => format!("{stage}:ok"),
        Err(e) => check_error(stage, e),
    }
}

/// Envelope parsing and opening.
///
/// Input: one selector byte, then the payload. Even selector: the payload is an envelope; it is
/// parsed, opened with the `to_prekey` test-vector keys, and offered to the fixture vault's
/// `receive`. Odd selector: the payload is a plaintext sheet; it is sealed authentically to the
/// fixture device (bit 1: to a prekey instead of the identity key; bit 2: with a header whose job
/// id or version disagrees with the sheet) and offered to `receive`, which reaches the code
/// after authentication with fuzzed plaintext.
pub fn fuzz_envelope(data: &[u8]) -> String {
    let Some((&sel, payload)) = data.split_first() else { return "empty".into() };
    if sel % 2 == 0 {
        let mut out = match envelope::parse(payload) {
            Ok(parsed) => {
                let (sk, pk, device) = vector_keys();
                match envelope::open_sheet(&parsed, &sk, &pk, device) {
                    Ok(plain) => format!("open:ok:{}", JobSheet::from_json(&plain).is_ok()),
                    Err(e) => format!("open:{e:?}"),
                }
            }
            Err(e) => format!("parse:{e:?}"),
        };
        out.push('|');
        out.push_str(&with_fixture(|fx| label("receive", &fx.vault.receive(payload))));
        out
    } else {
        with_fixture(|fx| {
            let loose: Option<serde_json::Value> = serde_json::from_slice(payload).ok();
            let field = |k: &str| loose.as_ref().and_then(|v| v.get(k).cloned());
            let job_id =
                field("job_id").and_then(|v| serde_json::from_value::<Uuid>(v).ok()).unwrap_or_else(example_job);
            let version = field("version").and_then(|v| v.as_u64()).unwrap_or(1);
            let (job_id, version) = if sel & 4 != 0 { (job_id, version.wrapping_add(1)) } else { (job_id, version) };
            let (recipient, key) = match fx.bundle.prekeys.first() {
                Some(p) if sel & 2 != 0 => (RecipientKeyId::Prekey(p.id), p.public_key),
                _ => (RecipientKeyId::Identity, fx.bundle.identity_key),
            };
            let header = EnvelopeHeader::new(fx.bundle.device_id, job_id, version, recipient);
            match envelope::seal_sheet(&fx.dispatch_sk, &key, &header, payload) {
                Ok(env) => label("sealed-receive", &fx.vault.receive(&env)),
                Err(e) => format!("seal:{e:?}"),
            }
        })
    }
}

fn vector_keys() -> (SecretKey, PublicKey, Uuid) {
    let v: serde_json::Value = serde_json::from_str(ENVELOPE_VECTORS).expect("vectors");
    let t = &v["vectors"][0];
    let hex32 = |k: &str| -> [u8; 32] {
        jobseal::hex::decode(t[k].as_str().expect("hex")).expect("hex").try_into().expect("32 bytes")
    };
    let sk = SecretKey::from_bytes(&hex32("skR")).expect("skR");
    let pk = PublicKey::from_bytes(&hex32("pkS")).expect("pkS");
    let device = Uuid::parse_str(t["header"]["device_id"].as_str().expect("id")).expect("uuid");
    (sk, pk, device)
}

/// Job sheet parsing and validation, then ingest into the fixture vault and a reveal.
pub fn fuzz_sheet(data: &[u8]) -> String {
    let sheet = match JobSheet::from_json(data) {
        Ok(s) => s,
        Err(e) => return check_error("parse", &e.into()),
    };
    // Every computation on a validated sheet must be total.
    let w = sheet.access_window();
    let _ =
        (jobseal::clock::to_ms(w.opens_at), jobseal::clock::to_ms(w.closes_at), jobseal::clock::to_ms(w.hard_expiry));
    let _ = format!("{sheet:?}");
    for f in &sheet.customer {
        // A field's Debug may show its name, kind and states; a value equal to one of those is
        // a coincidence, anything else showing the value is a leak.
        let dbg = format!("{f:?}");
        let public = format!("CustomerField <redacted> {:?} {:?} {:?}", f.name, f.kind, f.reveal_in);
        let v = f.value.expose();
        assert!(public.contains(v) || !dbg.contains(v), "Debug output shows a customer value");
    }
    let job_id = sheet.job_id;
    with_fixture(|fx| {
        let mut out = label("ingest", &fx.vault.ingest(&sheet));
        out.push('|');
        out.push_str(&label("reveal", &fx.vault.reveal(job_id).map(|r| r.fields.len())));
        out
    })
}

const STATUSES: [u16; 10] = [200, 200, 201, 204, 400, 401, 404, 409, 413, 503];

/// Sync responses: dispatch's answer applied to the fixture vault.
///
/// Input: one byte choosing the HTTP status and the wrapping, then the answer. Each `"@sealed"`
/// string in the answer becomes an authentic envelope for the fixture device. Unless the
/// selector's high bit is set, a 2xx answer is wrapped as dispatch wraps it, with a valid MAC for
/// the fixture device over the pending request's nonce, so acknowledgements, deliveries and
/// revocations are all reachable; with it set, the bytes are the whole body, unauthenticated
/// (the device must refuse them, whatever they hold). Error statuses are never wrapped.
pub fn fuzz_sync_response(data: &[u8]) -> String {
    let Some((&sel, body)) = data.split_first() else { return "empty".into() };
    let status = STATUSES[usize::from(sel & 0x7f) % STATUSES.len()];
    with_fixture(|fx| {
        let answer = substitute(body, SEALED_PLACEHOLDER.as_bytes(), || {
            format!("\"{}\"", jobseal::hex::encode(&fx.fresh_envelope())).into_bytes()
        });
        let pending = match PendingCall::new(AnsweredCall::Sync, 0) {
            Ok(p) => p,
            Err(e) => return check_error("nonce", &e),
        };
        let body = if sel & 0x80 == 0 && (200..300).contains(&status) {
            let key =
                AnswerKey::derive(&fx.dispatch_sk, &fx.bundle.identity_key, fx.bundle.device_id).expect("answer key");
            let mac = key.mac(AnsweredCall::Sync, pending.nonce(), &answer);
            let mut b = b"{\"answer\":".to_vec();
            b.extend_from_slice(&answer);
            b.extend_from_slice(format!(",\"mac\":\"{}\"}}", jobseal::hex::encode(&mac)).as_bytes());
            b
        } else {
            answer
        };
        let mut report = SyncReport::default();
        let applied = fx.vault.apply_sync_response(&pending, &HttpResponse { status, body }, &mut report);
        if sel & 0x80 != 0 && (200..300).contains(&status) {
            assert!(matches!(applied, Err(Error::Tampered(_))), "an unauthenticated answer was not refused");
        }
        let r = applied;
        let mut out = label("apply", &r.map(|a| (a.envelopes.len(), a.revocations.len())));
        out.push_str(&format!(
            "|rx{}rj{}rv{}",
            report.received.len().min(2),
            report.rejected.len().min(2),
            report.revoked.len().min(2)
        ));
        for (_, reason) in &report.rejected {
            for c in CUSTOMER_CANARIES {
                assert!(!reason.contains(c), "a rejection reason quotes a customer value");
            }
        }
        // The vault must stay consistent whatever dispatch said.
        let v = fx.vault.verify_audit().expect("audit readable");
        assert!(v.valid, "the audit chain broke after a sync response");
        out
    })
}

pub(crate) fn substitute(body: &[u8], needle: &[u8], mut make: impl FnMut() -> Vec<u8>) -> Vec<u8> {
    if needle.is_empty() || body.len() < needle.len() {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    let mut made = 0;
    while i < body.len() {
        if made < 8 && body[i..].starts_with(needle) {
            out.extend_from_slice(&make());
            made += 1;
            i += needle.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// The inputs the FFI accepts, passed to the core functions the bindings call with them.
///
/// Input: fields separated by 0x1e, in order: job id, state, report (also parsed as an enrolment
/// code), dispatch public key (hex), dispatch secret key (hex, or `@dispatch-secret`), device
/// bundle JSON (or `@bundle`), prekey id, sheet JSON, count. Missing fields are empty. Strings are taken as the bindings take them
/// (UTF-8, lossily here, trimmed where the bindings trim).
pub fn fuzz_ffi_inputs(data: &[u8]) -> String {
    let fields: Vec<String> =
        data.split(|b| *b == FIELD_SEP).map(|f| String::from_utf8_lossy(f).into_owned()).collect();
    let get = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
    with_fixture(|fx| {
        let mut out = Vec::new();
        let vault = &fx.vault;
        // Job id: JobVault.job / advance / reveal / close_job / cancel_job / audit_log.
        match Uuid::parse_str(get(0).trim()) {
            Ok(id) => {
                out.push(label("job", &vault.job(id)));
                out.push(label("audit", &vault.audit_log(Some(id))));
                if let Ok(to) = JobState::from_str(get(1).trim()) {
                    out.push(label("advance", &vault.advance(id, to)));
                }
                out.push(label("reveal", &vault.reveal(id).map(|r| r.fields.len())));
                match get(2) {
                    "" => {}
                    "!cancel" => out.push(label("cancel", &vault.cancel(id))),
                    report => out.push(label("close", &vault.close(id, report))),
                }
            }
            Err(_) => out.push("job-id:invalid".into()),
        }
        // Dispatch key: JobVault.enrol / enrol_with_dispatch.
        if let Ok(key) = PublicKey::from_str(get(3).trim()) {
            let count = get(8).trim().parse::<u32>().unwrap_or(1);
            out.push(label("enrol", &vault.enrol(key, count)));
        } else if !get(3).is_empty() {
            out.push("dispatch-key:invalid".into());
        }
        // Enrolment code: JobVault.enrol_with_dispatch parses it before anything is created or
        // sent (the report field doubles as the typed code).
        if !get(2).is_empty() {
            let parsed = jobseal::enrolment::EnrolmentCode::parse(get(2)).map(|_| ()).map_err(jobseal::Error::from);
            out.push(label("enrolment-code", &parsed));
        }
        // seal_job_sheet(dispatch_secret_hex, bundle_json, prekey_id, sheet_json), then receive.
        let secret = get(4).replace(SECRET_PLACEHOLDER, &jobseal::hex::encode(fx.dispatch_sk.to_bytes().as_ref()));
        let bundle = get(5).replace(BUNDLE_PLACEHOLDER, &serde_json::to_string(&fx.bundle).expect("bundle json"));
        let prekey = get(6).trim().parse::<u32>().ok();
        let sealed = jobseal::hex::decode(secret.trim())
            .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
            .map(|b| SecretKey::from_bytes(&b));
        match sealed {
            Some(Ok(key)) => {
                let env = DeviceBundle::from_json(bundle.as_bytes())
                    .and_then(|b| jobseal::seal_job_sheet(&key, &b, prekey, get(7).as_bytes()))
                    .map_err(jobseal::Error::from);
                out.push(label("seal", &env));
                if let Ok(env) = env {
                    out.push(label("receive", &vault.receive(&env)));
                }
            }
            Some(Err(e)) => out.push(format!("secret:{e:?}")),
            None => out.push("secret:invalid".into()),
        }
        // JobVault.ingest_sheet_json.
        if !get(7).is_empty() {
            out.push(label(
                "ingest",
                &JobSheet::from_json(get(7).as_bytes()).map_err(jobseal::Error::from).and_then(|s| vault.ingest(&s)),
            ));
        }
        // JobVault.add_prekeys(count): any u32 crosses the FFI.
        if let Ok(count) = get(8).trim().parse::<u32>() {
            out.push(label("prekeys", &vault.add_prekeys(count)));
        }
        out.join("|")
    })
}

//! Every dispatch answer the device parses, reached through the device's own calls (G5, G7, G8).
//!
//! The sync answer is not the only thing a device takes from dispatch: a sync may go on to a
//! prekey upload whose answer is authenticated the same way, enrolment parses dispatch's
//! enrolment answer and opens the device token sealed in it, and a trust-on-first-use
//! enrolment first parses the announced dispatch key. This target drives the real calls
//! (`Vault::sync`, `Vault::apply_sync_response`, `Vault::enrol_with_dispatch`) over a scripted
//! [`Transport`] whose replies the fuzz input chooses. A reply can be raw bytes, or be built the
//! way dispatch builds it (a MAC over the request's nonce, a token sealed for the request): the
//! harness plays dispatch with the fixture's keys, so structured replies reach the code after
//! authentication, and optional byte flips check that the authentication holds.
//!
//! Invariants after each call: no panic; errors of an input class, quoting no customer value; a
//! 2xx answer that is not authenticated is refused as tampered; the audit chain still verifies.

use crate::targets::{check_error, example_job, fixture_now, CUSTOMER_CANARIES, EXAMPLE_SHEET};
use arbitrary::{Arbitrary, Unstructured};
use chrono::Duration;
use jobseal::answer::{AnswerKey, AnsweredCall};
use jobseal::envelope::{self, PublicKey, SecretKey};
use jobseal::sync::SyncReport;
use jobseal::{
    DeviceBundle, Error, FileKeyStore, HttpRequest, HttpResponse, JobSheet, JobState, ManualClock, PendingCall,
    Transport, TransportError, Vault,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Calls served by one fixture before it is rebuilt.
const RESET_EVERY: u32 = 100;

/// One fuzz input: a device call and the replies its requests get, in order.
#[derive(Arbitrary, Debug)]
pub struct AnswersInput {
    call: Call,
    replies: Vec<Reply>,
}

/// The device call that reads the replies.
#[derive(Arbitrary, Debug)]
enum Call {
    /// `Vault::sync`: up to four sync rounds, and a prekey upload when an answer asks for one.
    Sync,
    /// `Vault::apply_sync_response` with the first reply, for a fresh pending sync call.
    Apply,
    /// `Vault::enrol_with_dispatch` on a device enrolled locally but without a token: with the
    /// pinned key, or (when `announce`) trusting the key `GET /v1/dispatch-key` announces.
    Enrol { announce: bool, code: Option<String> },
}

/// A reply of the scripted transport.
#[derive(Arbitrary, Debug)]
enum Reply {
    /// No answer at all (a network failure).
    NoAnswer,
    /// `body` as the whole body, with the status.
    Raw { status: Status, body: Vec<u8> },
    /// `answer` MAC-wrapped for the request it answers, as dispatch wraps an answer. Each
    /// `"@sealed"` string in it becomes an authentic envelope of the example sheet.
    Authentic { answer: Vec<u8>, flip: Option<u16> },
    /// A sync answer built from parts, MAC-wrapped for the request it answers.
    Sync { parts: SyncParts, flip: Option<u16> },
    /// A prekey upload answer, MAC-wrapped for the request it answers.
    Prekeys { accepted: u32, available: u32, flip: Option<u16> },
    /// An enrolment answer with a device token sealed as dispatch seals it.
    Enrol { server_time_min: i32, token: String, other_nonce: bool, other_device: bool, other_key: bool },
    /// A dispatch key announcement: the fixture's key, or the given text as the key.
    DispatchKey { own: bool, raw: String },
}

/// An HTTP status: usually a common one, sometimes any.
#[derive(Arbitrary, Debug)]
enum Status {
    Common(u8),
    Any(u16),
}

impl Status {
    fn code(&self) -> u16 {
        const COMMON: [u16; 10] = [200, 200, 201, 204, 400, 401, 404, 409, 413, 503];
        match self {
            Status::Common(i) => COMMON[usize::from(*i) % COMMON.len()],
            Status::Any(c) => *c,
        }
    }
}

/// The parts of a sync answer.
#[derive(Arbitrary, Debug)]
struct SyncParts {
    server_time_min: i32,
    /// Indexes into the request's events; each acknowledges that event.
    acked: Vec<u8>,
    /// Acknowledge keys the request did not carry.
    acked_unknown: u8,
    envelopes: Vec<Delivery>,
    revocations: Vec<(u8, u8)>,
    prekeys_available: u32,
    prekeys_wanted: u16,
    prekey_floor: Option<u32>,
}

/// One offered envelope.
#[derive(Arbitrary, Debug)]
struct Delivery {
    job: u8,
    version: u8,
    /// The delivery's declared version differs from the envelope's.
    declared_other: bool,
    /// Sealed to this prekey of the bundle (by index), or to the identity key.
    prekey: Option<u8>,
    /// Replace the envelope with these bytes.
    garbage: Option<Vec<u8>>,
}

/// The jobs a sync answer can name: the example job and two others.
fn job_id(i: u8) -> Uuid {
    match i % 4 {
        0 | 1 => example_job(),
        2 => Uuid::from_u128(0x10b0_0000_0000_4000_8000_0000_0000_0042),
        _ => Uuid::from_u128(0x10b0_0000_0000_4000_8000_0000_0000_0043),
    }
}

/// What the harness knows as dispatch: its keys and, once enrolled, the device's bundle.
struct Dispatch {
    sk: SecretKey,
    pk: PublicKey,
    device: Mutex<Option<DeviceBundle>>,
}

impl Dispatch {
    fn device(&self) -> Option<DeviceBundle> {
        self.device.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

struct Fixture {
    /// Enrolled with the harness's dispatch, token held: syncs.
    enrolled: Vault,
    /// Enrolled locally only (keys, no token): enrolment answers.
    unenrolled: Vault,
    dispatch: Arc<Dispatch>,
    uses: u32,
    _dirs: (tempfile::TempDir, tempfile::TempDir),
}

fn open_vault(dir: &tempfile::TempDir) -> Vault {
    let ks = FileKeyStore::open(dir.path().join(jobseal::KEYSTORE_DIR)).expect("keystore");
    Vault::open(dir.path(), Arc::new(ks), Arc::new(ManualClock::new(fixture_now()))).expect("fixture vault")
}

impl Fixture {
    fn new() -> Fixture {
        let (sk, pk) = envelope::generate_keypair().expect("keypair");
        let dispatch = Arc::new(Dispatch { sk, pk, device: Mutex::new(None) });
        let (d1, d2) = (crate::targets::scratch_dir(), crate::targets::scratch_dir());
        let enrolled = open_vault(&d1);
        let script = Scripted::new(
            dispatch.clone(),
            vec![Reply::Enrol {
                server_time_min: 0,
                token: "fixture-device-token".into(),
                other_nonce: false,
                other_device: false,
                other_key: false,
            }],
        );
        let bundle = enrolled.enrol_with_dispatch(&script, Some(dispatch.pk), 8, None).expect("fixture enrols");
        *dispatch.device.lock().unwrap_or_else(|p| p.into_inner()) = Some(bundle);
        let sheet = JobSheet::from_json(EXAMPLE_SHEET.as_bytes()).expect("example sheet");
        enrolled.ingest(&sheet).expect("ingest");
        enrolled.advance(example_job(), JobState::EnRoute).expect("advance");
        let unenrolled = open_vault(&d2);
        unenrolled.enrol(dispatch.pk, 4).expect("local enrolment");
        Fixture { enrolled, unenrolled, dispatch, uses: 0, _dirs: (d1, d2) }
    }
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

/// A transport that answers each request with the next scripted reply, built for that request.
struct Scripted {
    dispatch: Arc<Dispatch>,
    replies: Mutex<VecDeque<Reply>>,
}

impl Scripted {
    fn new(dispatch: Arc<Dispatch>, replies: Vec<Reply>) -> Scripted {
        Scripted { dispatch, replies: Mutex::new(replies.into()) }
    }

    fn reply(&self, req: &HttpRequest, reply: Reply) -> Option<HttpResponse> {
        let request: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or(serde_json::Value::Null);
        let nonce = request["nonce"].as_str().and_then(jobseal::hex::decode).unwrap_or_default();
        let call = if req.path.ends_with("/prekeys") { AnsweredCall::Prekeys } else { AnsweredCall::Sync };
        let device_id = request["bundle"]["device_id"].as_str().and_then(|s| Uuid::parse_str(s).ok());
        let identity = request["bundle"]["identity_key"].as_str().and_then(|s| s.parse::<PublicKey>().ok());
        let d = &self.dispatch;
        let wrap = |answer: &[u8], flip: Option<u16>| -> Option<HttpResponse> {
            let device = d.device()?;
            let key = AnswerKey::derive(&d.sk, &device.identity_key, device.device_id).ok()?;
            let mac = key.mac(call, &nonce, answer);
            let mut body = b"{\"answer\":".to_vec();
            body.extend_from_slice(answer);
            body.extend_from_slice(format!(",\"mac\":\"{}\"}}", jobseal::hex::encode(&mac)).as_bytes());
            Some(HttpResponse { status: 200, body: flipped(body, flip) })
        };
        match reply {
            Reply::NoAnswer => None,
            Reply::Raw { status, body } => Some(HttpResponse { status: status.code(), body }),
            Reply::Authentic { answer, flip } => {
                let answer = crate::targets::substitute(&answer, b"\"@sealed\"", || {
                    let env = seal(d, 0, 2, None).unwrap_or_default();
                    format!("\"{}\"", jobseal::hex::encode(&env)).into_bytes()
                });
                wrap(&answer, flip)
            }
            Reply::Sync { parts, flip } => {
                let answer = sync_answer(d, &request, &parts);
                wrap(answer.to_string().as_bytes(), flip)
            }
            Reply::Prekeys { accepted, available, flip } => {
                wrap(serde_json::json!({"accepted": accepted, "available": available}).to_string().as_bytes(), flip)
            }
            Reply::Enrol { server_time_min, token, other_nonce, other_device, other_key } => {
                let (device_id, identity) = (device_id?, identity?);
                let time = fixture_now() + Duration::minutes(i64::from(server_time_min));
                let nonce = if other_nonce { vec![0u8; nonce.len()] } else { nonce };
                let sealed = jobseal::enrolment::seal_answer_token(
                    &d.sk,
                    &identity,
                    device_id,
                    &nonce,
                    time.timestamp_millis(),
                    &token,
                )
                .ok()?;
                let key = if other_key { envelope::generate_keypair().ok()?.1 } else { d.pk };
                let device = if other_device { Uuid::from_u128(7) } else { device_id };
                let body = serde_json::json!({
                    "device_id": device,
                    "sealed_device_token": jobseal::hex::encode(&sealed),
                    "dispatch_key": key.to_string(),
                    "server_time": time.to_rfc3339(),
                });
                Some(HttpResponse { status: 200, body: body.to_string().into_bytes() })
            }
            Reply::DispatchKey { own, raw } => {
                let key = if own { d.pk.to_string() } else { raw };
                Some(HttpResponse {
                    status: 200,
                    body: serde_json::json!({ "dispatch_key": key }).to_string().into_bytes(),
                })
            }
        }
    }
}

impl Transport for Scripted {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let next = self.replies.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
        let resp = next.and_then(|r| self.reply(&request, r));
        match resp {
            Some(r) => Ok(r),
            None => Err(TransportError { message: "no answer (scripted)".into() }),
        }
    }
}

fn flipped(mut body: Vec<u8>, flip: Option<u16>) -> Vec<u8> {
    if let Some(f) = flip {
        if !body.is_empty() {
            let i = usize::from(f) % body.len();
            body[i] ^= 1 << (f >> 13);
        }
    }
    body
}

/// An authentic envelope of the example sheet as job `job` at `version`, sealed to the device.
fn seal(d: &Dispatch, job: u8, version: u64, prekey: Option<u8>) -> Option<Vec<u8>> {
    let bundle = d.device()?;
    let mut v: serde_json::Value = serde_json::from_str(EXAMPLE_SHEET).ok()?;
    v["version"] = version.into();
    v["job_id"] = job_id(job).to_string().into();
    let prekey = prekey.and_then(|i| bundle.prekeys.get(usize::from(i) % bundle.prekeys.len().max(1)).map(|p| p.id));
    jobseal::seal_job_sheet(&d.sk, &bundle, prekey, v.to_string().as_bytes()).ok()
}

fn sync_answer(d: &Dispatch, request: &serde_json::Value, p: &SyncParts) -> serde_json::Value {
    let events: Vec<&str> =
        request["events"].as_array().map(|a| a.iter().filter_map(|e| e["key"].as_str()).collect()).unwrap_or_default();
    let mut acked: Vec<String> = p
        .acked
        .iter()
        .filter_map(|i| events.get(usize::from(*i) % events.len().max(1)))
        .map(|s| (*s).to_owned())
        .collect();
    acked.extend((0..p.acked_unknown % 4).map(|i| Uuid::from_u128(u128::from(i) + 99).to_string()));
    let envelopes: Vec<serde_json::Value> = p
        .envelopes
        .iter()
        .take(4)
        .map(|e| {
            let version = u64::from(e.version);
            let env = match &e.garbage {
                Some(g) => g.clone(),
                None => seal(d, e.job, version, e.prekey).unwrap_or_default(),
            };
            serde_json::json!({
                "job_id": job_id(e.job),
                "version": if e.declared_other { version + 1 } else { version },
                "envelope": jobseal::hex::encode(&env),
            })
        })
        .collect();
    const REASONS: [&str; 3] = ["cancelled", "reassigned", "device-wiped"];
    let revocations: Vec<serde_json::Value> = p
        .revocations
        .iter()
        .take(4)
        .map(|(j, r)| serde_json::json!({"job_id": job_id(*j), "reason": REASONS[usize::from(*r) % 3]}))
        .collect();
    let time = fixture_now() + Duration::minutes(i64::from(p.server_time_min));
    serde_json::json!({
        "server_time": time.to_rfc3339(),
        "acked": acked,
        "envelopes": envelopes,
        "revocations": revocations,
        "prekeys_available": p.prekeys_available,
        "prekeys_wanted": p.prekeys_wanted % 40,
        "prekey_floor": p.prekey_floor,
    })
}

fn check(stage: &str, r: &jobseal::Result<impl Sized>) {
    if let Err(e) = r {
        check_error(stage, e);
    }
}

fn check_report(report: &SyncReport) {
    for (_, reason) in &report.rejected {
        for c in CUSTOMER_CANARIES {
            assert!(!reason.contains(c), "a rejection reason quotes a customer value");
        }
    }
}

/// Runs one call of the device against the scripted replies of the input (an [`AnswersInput`]
/// read with `arbitrary`); panics when an invariant breaks.
pub fn fuzz_device_answers(data: &[u8]) {
    let Ok(input) = AnswersInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|fx| fx.uses >= RESET_EVERY) {
        *guard = None; // release the old vaults' directory locks first
        *guard = Some(Fixture::new());
    }
    let fx = guard.as_mut().expect("fixture");
    fx.uses += 1;
    let script = Scripted::new(fx.dispatch.clone(), input.replies);
    match input.call {
        Call::Sync => {
            let r = fx.enrolled.sync(&script);
            check("sync", &r);
            if let Ok(report) = &r {
                check_report(report);
            }
        }
        Call::Apply => {
            let pending = PendingCall::new(AnsweredCall::Sync, 0).expect("nonce");
            let reply = script.replies.lock().unwrap_or_else(|p| p.into_inner()).pop_front();
            let (req, _) = fx.enrolled.sync_request().expect("sync request of an enrolled device");
            let authentic = matches!(reply, Some(Reply::Authentic { .. } | Reply::Sync { .. } | Reply::Prekeys { .. }));
            // The pending call here is a fresh one: the harness MACs over the request's nonce,
            // so only a MAC over `pending`'s nonce could be accepted. Build the reply for a
            // request carrying it.
            let mut req = req;
            let mut body: serde_json::Value = serde_json::from_slice(&req.body).expect("request json");
            body["nonce"] = jobseal::hex::encode(pending.nonce()).into();
            req.body = body.to_string().into_bytes();
            let Some(resp) = reply.and_then(|r| script.reply(&req, r)) else { return };
            let mut report = SyncReport::default();
            let r = fx.enrolled.apply_sync_response(&pending, &resp, &mut report);
            check("apply", &r);
            check_report(&report);
            if !authentic && (200..300).contains(&resp.status) {
                assert!(matches!(r, Err(Error::Tampered(_))), "an unauthenticated 2xx answer was not refused");
            }
        }
        Call::Enrol { announce, code } => {
            let key = (!announce).then_some(fx.dispatch.pk);
            let r = fx.unenrolled.enrol_with_dispatch(&script, key, 4, code.as_deref());
            check("enrol", &r);
            if r.is_ok() {
                // It now holds a token: later enrolment answers would not be read.
                fx.uses = RESET_EVERY;
            }
            let v = fx.unenrolled.verify_audit().expect("audit readable");
            assert!(v.valid, "the audit chain broke after an enrolment answer");
        }
    }
    let v = fx.enrolled.verify_audit().expect("audit readable");
    assert!(v.valid, "the audit chain broke after a dispatch answer");
    // Whatever happened, the enrolled device still builds its next request.
    check("next-request", &fx.enrolled.sync_request().map(|_| ()));
}

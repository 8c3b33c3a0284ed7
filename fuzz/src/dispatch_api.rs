//! Dispatch's request parsers, through its real HTTP router in process (G4, G6, G8).
//!
//! Dispatch is the other half of the protocol and takes requests from anyone who can reach it:
//! devices (enrolment, prekeys, sync) and operator consoles. This target sends fuzzed requests to
//! the router `jobseal_dispatch::router` returns, with `tower::ServiceExt::oneshot`, against a
//! fixture dispatch on a temporary database that holds an enrolled device (a real vault, which
//! enrolled with an operator-issued code and synced once), a job sealed to it, and an issued
//! enrolment code. The input picks the endpoint (or any path), the method, the credentials
//! (none, the device's token, the operator's, or any text), the id in the path, the
//! `Content-Length` header and the body: raw bytes, or a valid request of the endpoint's kind
//! (taken from the real device and operator calls) with JSON edits, so the fuzzer reaches the
//! checks behind the parser.
//!
//! Invariants: no panic; never a 5xx; only the statuses docs/sync.md documents; every error is
//! the one documented error shape (`{"error": {"code", "message"}}`) and quotes no customer
//! value; every 2xx body is JSON.

use crate::targets::{example_job, CUSTOMER_CANARIES, EXAMPLE_SHEET};
use arbitrary::{Arbitrary, Unstructured};
use axum::body::Body;
use axum::http::{Request, StatusCode};
use jobseal::sync::wire::ErrorBody;
use jobseal::{DeviceBundle, FileKeyStore, HttpRequest, HttpResponse, ManualClock, Transport, TransportError, Vault};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use uuid::Uuid;

/// Requests served by one fixture before it is rebuilt (dispatch's state drifts: wiped devices,
/// used codes, cancelled jobs).
const RESET_EVERY: u32 = 300;
/// The fixture's operator token (fake).
const OPERATOR_TOKEN: &str = "fuzz-operator-token-0000000000000000";
/// The statuses docs/sync.md documents, except 500 (a server failure: never for bad input).
const DOCUMENTED: [u16; 10] = [200, 400, 401, 403, 404, 405, 409, 413, 415, 429];

/// One fuzz input: up to four requests, sent in order.
#[derive(Arbitrary, Debug)]
pub struct ApiInput {
    requests: Vec<ApiRequest>,
}

/// One request.
#[derive(Arbitrary, Debug)]
struct ApiRequest {
    endpoint: Endpoint,
    method: Method,
    auth: Auth,
    id: Id,
    body: BodyKind,
    content_length: Option<ContentLength>,
    content_type: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Endpoint {
    DispatchKey,
    Enrol,
    Prekeys,
    Sync,
    CreateJob,
    JobView,
    CancelJob,
    ReassignJob,
    DeviceView,
    WipeDevice,
    IssueCode,
    ListCodes,
    RevokeCode,
}

#[derive(Arbitrary, Debug)]
enum Method {
    /// The endpoint's own method.
    Right,
    Get,
    Post,
    Put,
    Delete,
}

#[derive(Arbitrary, Debug)]
enum Auth {
    None,
    Device,
    Operator,
    /// `Authorization: <text>` as given.
    Raw(String),
}

#[derive(Arbitrary, Debug)]
enum Id {
    /// The fixture's job, device or code, as fits the endpoint.
    Fixture,
    Uuid(u128),
    /// Any bytes, percent-encoded into the path (so not always UTF-8 once decoded).
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum BodyKind {
    Empty,
    Raw(Vec<u8>),
    /// A valid request of the endpoint's kind with the edits applied.
    Valid(Vec<Edit>),
}

#[derive(Arbitrary, Debug)]
enum ContentLength {
    Actual,
    Any(u64),
    Text(String),
}

/// A JSON edit of a valid request: the path is a list of key or index picks.
#[derive(Arbitrary, Debug)]
struct Edit {
    path: Vec<u8>,
    value: Option<JsonValue>,
}

/// A replacement value (`None` in [`Edit`]: remove the key).
#[derive(Arbitrary, Debug)]
enum JsonValue {
    Null,
    Bool(bool),
    Int(i64),
    Big(u64),
    Float(f64),
    Str(String),
    EmptyArray,
    EmptyObject,
    /// The value somewhere else in the request (a key, a nonce, a sheet).
    Copy(Vec<u8>),
    /// The current value repeated in an array.
    Repeat(u8),
}

/// The fixture dispatch and what it holds.
struct Fixture {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    device_token: String,
    device_id: Uuid,
    job_id: Uuid,
    code_id: String,
    /// Valid bodies, taken from real calls.
    sync_body: Value,
    prekeys_body: Value,
    enrol_body: Value,
    uses: u32,
    _vault: Vault,
    _dir: tempfile::TempDir,
}

/// The vault's transport into the in-process router.
struct InProcess<'a> {
    runtime: &'a tokio::runtime::Runtime,
    router: &'a axum::Router,
    /// Every request body sent, by path, so the fixture can keep valid ones.
    seen: Mutex<Vec<(String, Vec<u8>)>>,
}

impl Transport for InProcess<'_> {
    fn send(&self, req: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).push((req.path.clone(), req.body.clone()));
        let mut b = Request::builder().method(req.method.as_str()).uri(req.path.as_str());
        for (k, v) in &req.headers {
            b = b.header(k, v);
        }
        let request = b.body(Body::from(req.body)).map_err(|_| TransportError { message: "bad request".into() })?;
        let (status, body) = send(self.runtime, self.router, request);
        Ok(HttpResponse { status: status.as_u16(), body })
    }
}

fn send(runtime: &tokio::runtime::Runtime, router: &axum::Router, request: Request<Body>) -> (StatusCode, Vec<u8>) {
    runtime.block_on(async {
        let resp = router.clone().oneshot(request).await.expect("the router is infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("a response body reads");
        (status, body.to_vec())
    })
}

fn operator(runtime: &tokio::runtime::Runtime, router: &axum::Router, method: &str, path: &str, body: &Value) -> Value {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {OPERATOR_TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .expect("request");
    let (status, body) = send(runtime, router, request);
    assert_eq!(status, StatusCode::OK, "fixture operator call {path} failed");
    serde_json::from_slice(&body).expect("operator answer is JSON")
}

impl Fixture {
    fn new() -> Fixture {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let dir = crate::targets::scratch_dir();
        let (router, dispatch_key) =
            jobseal_dispatch::router(&dir.path().join("dispatch.db"), OPERATOR_TOKEN).expect("dispatch opens");
        let code = operator(&runtime, &router, "POST", "/v1/operator/enrolment-codes", &json!({}));
        let code_text = code["code"].as_str().expect("code").to_owned();
        let code_id = code["code_id"].as_str().expect("code id").to_owned();
        let vault_dir = dir.path().join("device");
        let ks = FileKeyStore::open(vault_dir.join(jobseal::KEYSTORE_DIR)).expect("keystore");
        let vault = Vault::open(&vault_dir, Arc::new(ks), Arc::new(ManualClock::new(chrono::Utc::now())))
            .expect("device vault");
        let transport = InProcess { runtime: &runtime, router: &router, seen: Mutex::new(Vec::new()) };
        let bundle: DeviceBundle =
            vault.enrol_with_dispatch(&transport, Some(dispatch_key), 4, Some(&code_text)).expect("device enrols");
        // A job for the device: the example sheet, whose window is years ahead.
        let sheet: Value = serde_json::from_str(EXAMPLE_SHEET).expect("sheet");
        operator(
            &runtime,
            &router,
            "POST",
            "/v1/operator/jobs",
            &json!({"device_id": bundle.device_id, "sheet": sheet}),
        );
        vault.sync(&transport).expect("device syncs");
        // Another code for the code endpoints and enrolment requests.
        let code =
            operator(&runtime, &router, "POST", "/v1/operator/enrolment-codes", &json!({"valid_for_seconds": 600}));
        let (req, _) = vault.sync_request().expect("sync request");
        let device_token = req
            .headers
            .iter()
            .find(|(k, _)| k == "authorization")
            .map(|(_, v)| v.trim_start_matches("Bearer ").to_owned())
            .expect("a sync request carries the device token");
        let seen = transport.seen.into_inner().unwrap_or_else(|p| p.into_inner());
        let body_of = |suffix: &str| -> Value {
            seen.iter()
                .filter(|(p, _)| p.ends_with(suffix))
                .max_by_key(|(_, b)| b.len())
                .and_then(|(_, b)| serde_json::from_slice(b).ok())
                .unwrap_or(Value::Null)
        };
        let mut sync_body = body_of("/sync");
        if sync_body.is_null() {
            sync_body = serde_json::from_slice(&req.body).expect("sync body");
        }
        let mut enrol_body = body_of("/enrol");
        // An enrolment request of a new device, with the second code's id (its proof will not
        // verify: the code itself stays with the harness).
        enrol_body["bundle"]["device_id"] = json!(Uuid::from_u128(0x0e17_0000_0000_4000_8000_0000_0000_0001));
        if let Some(c) = enrol_body.get_mut("code").filter(|c| c.is_object()) {
            c["code_id"] = code["code_id"].clone();
        }
        let prekeys_body = json!({
            "prekeys": bundle.prekeys.iter().map(|p| json!({"id": p.id + 1000, "public_key": p.public_key})).collect::<Vec<_>>(),
            "nonce": jobseal::hex::encode(&[3u8; 32]),
        });
        Fixture {
            runtime,
            router,
            device_token,
            device_id: bundle.device_id,
            job_id: example_job(),
            code_id,
            sync_body,
            prekeys_body,
            enrol_body,
            uses: 0,
            _vault: vault,
            _dir: dir,
        }
    }

    fn valid_body(&self, e: Endpoint) -> Value {
        match e {
            Endpoint::Enrol => self.enrol_body.clone(),
            Endpoint::Prekeys => self.prekeys_body.clone(),
            Endpoint::Sync => self.sync_body.clone(),
            Endpoint::CreateJob => {
                let mut sheet: Value = serde_json::from_str(EXAMPLE_SHEET).expect("sheet");
                sheet["version"] = json!(2);
                json!({"device_id": self.device_id, "sheet": sheet})
            }
            Endpoint::ReassignJob => json!({"device_id": self.device_id}),
            Endpoint::IssueCode => json!({"device_id": self.device_id, "valid_for_seconds": 600}),
            _ => json!({}),
        }
    }
}

fn path_of(e: Endpoint, id: &str) -> (&'static str, String) {
    match e {
        Endpoint::DispatchKey => ("GET", "/v1/dispatch-key".into()),
        Endpoint::Enrol => ("POST", "/v1/enrol".into()),
        Endpoint::Prekeys => ("POST", "/v1/prekeys".into()),
        Endpoint::Sync => ("POST", "/v1/sync".into()),
        Endpoint::CreateJob => ("POST", "/v1/operator/jobs".into()),
        Endpoint::JobView => ("GET", format!("/v1/operator/jobs/{id}")),
        Endpoint::CancelJob => ("POST", format!("/v1/operator/jobs/{id}/cancel")),
        Endpoint::ReassignJob => ("POST", format!("/v1/operator/jobs/{id}/reassign")),
        Endpoint::DeviceView => ("GET", format!("/v1/operator/devices/{id}")),
        Endpoint::WipeDevice => ("POST", format!("/v1/operator/devices/{id}/wipe")),
        Endpoint::IssueCode => ("POST", "/v1/operator/enrolment-codes".into()),
        Endpoint::ListCodes => ("GET", "/v1/operator/enrolment-codes".into()),
        Endpoint::RevokeCode => ("POST", format!("/v1/operator/enrolment-codes/{id}/revoke")),
    }
}

/// Percent-encodes everything but unreserved characters, so any bytes are a valid path segment.
fn percent_encode(s: &[u8]) -> String {
    s.iter()
        .copied()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Follows an edit path through `v`: each pick chooses a key (objects) or an index (arrays),
/// at most six deep; a pick past a scalar or an empty container stops there.
fn pick<'a>(v: &'a mut Value, path: &[u8]) -> &'a mut Value {
    let path = &path[..path.len().min(6)];
    let Some((p, rest)) = path.split_first() else { return v };
    let p = usize::from(*p);
    let descend = match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    };
    if !descend {
        return v;
    }
    match v {
        Value::Object(m) => {
            let n = p % m.len();
            match m.values_mut().nth(n) {
                Some(child) => pick(child, rest),
                None => unreachable!("n is below the map's length"),
            }
        }
        Value::Array(a) => {
            let n = p % a.len();
            pick(&mut a[n], rest)
        }
        other => other,
    }
}

fn apply_edit(root: &mut Value, edit: &Edit) {
    let copied = match &edit.value {
        Some(JsonValue::Copy(from)) => Some(pick(&mut root.clone(), from).clone()),
        _ => None,
    };
    let target = pick(root, &edit.path);
    *target = match &edit.value {
        None => Value::Null,
        Some(JsonValue::Null) => Value::Null,
        Some(JsonValue::Bool(b)) => json!(b),
        Some(JsonValue::Int(i)) => json!(i),
        Some(JsonValue::Big(u)) => json!(u),
        Some(JsonValue::Float(f)) => json!(f),
        Some(JsonValue::Str(s)) => json!(s),
        Some(JsonValue::EmptyArray) => json!([]),
        Some(JsonValue::EmptyObject) => json!({}),
        Some(JsonValue::Copy(_)) => copied.unwrap_or(Value::Null),
        Some(JsonValue::Repeat(n)) => Value::Array(vec![target.clone(); usize::from(*n % 8)]),
    };
    if edit.value.is_none() {
        // Removal: drop null members of objects (a missing key, not a null one).
        if let Value::Object(m) = root {
            m.retain(|_, v| !v.is_null());
        }
    }
}

static FIXTURE: Mutex<Option<Fixture>> = Mutex::new(None);

/// Sends the requests of one input (an [`ApiInput`] read with `arbitrary`) to the fixture
/// dispatch's router; panics when an invariant breaks.
pub fn fuzz_dispatch_api(data: &[u8]) {
    let Ok(input) = ApiInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    let mut guard = FIXTURE.lock().unwrap_or_else(|p| p.into_inner());
    if guard.as_ref().is_none_or(|fx| fx.uses >= RESET_EVERY) {
        *guard = None;
        *guard = Some(Fixture::new());
    }
    let fx = guard.as_mut().expect("fixture");
    for r in input.requests.iter().take(4) {
        fx.uses += 1;
        let fixture_id = match r.endpoint {
            Endpoint::DeviceView | Endpoint::WipeDevice => fx.device_id.to_string(),
            Endpoint::RevokeCode => fx.code_id.clone(),
            _ => fx.job_id.to_string(),
        };
        let id = match &r.id {
            Id::Fixture => fixture_id,
            Id::Uuid(u) => Uuid::from_u128(*u).to_string(),
            Id::Raw(s) => percent_encode(s),
        };
        let (right, path) = path_of(r.endpoint, &id);
        let method = match r.method {
            Method::Right => right,
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        };
        let body: Vec<u8> = match &r.body {
            BodyKind::Empty => Vec::new(),
            BodyKind::Raw(b) => b.clone(),
            BodyKind::Valid(edits) => {
                let mut v = fx.valid_body(r.endpoint);
                for e in edits.iter().take(4) {
                    apply_edit(&mut v, e);
                }
                v.to_string().into_bytes()
            }
        };
        let mut b = Request::builder().method(method).uri(path.as_str());
        match &r.auth {
            Auth::None => {}
            Auth::Device => b = b.header("authorization", format!("Bearer {}", fx.device_token)),
            Auth::Operator => b = b.header("authorization", format!("Bearer {OPERATOR_TOKEN}")),
            Auth::Raw(s) => b = b.header("authorization", s.as_str()),
        }
        if r.content_type {
            b = b.header("content-type", "application/json");
        }
        match &r.content_length {
            None => {}
            Some(ContentLength::Actual) => b = b.header("content-length", body.len().to_string()),
            Some(ContentLength::Any(n)) => b = b.header("content-length", n.to_string()),
            Some(ContentLength::Text(s)) => b = b.header("content-length", s.as_str()),
        }
        // A header value the HTTP library itself refuses never reaches dispatch.
        let Ok(request) = b.body(Body::from(body)) else { continue };
        let (status, answer) = send(&fx.runtime, &fx.router, request);
        check_answer(status, &answer);
    }
}

fn check_answer(status: StatusCode, answer: &[u8]) {
    assert!(!status.is_server_error(), "dispatch answered {status} to a request");
    assert!(DOCUMENTED.contains(&status.as_u16()), "dispatch answered an undocumented status {status}");
    if status.is_success() {
        assert!(serde_json::from_slice::<Value>(answer).is_ok(), "a 2xx answer is not JSON");
    } else {
        let err: ErrorBody = match serde_json::from_slice(answer) {
            Ok(e) => e,
            Err(_) => panic!("a {status} answer is not the documented error shape"),
        };
        for c in CUSTOMER_CANARIES {
            assert!(!err.error.message.contains(c), "an error message quotes a customer value");
        }
    }
}

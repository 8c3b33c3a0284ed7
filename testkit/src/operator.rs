//! Talking to dispatch over HTTP as a test does: a plain client that returns whatever the server
//! answered, and on top of it the operator's console (create, view, cancel, reassign, wipe).
//!
//! The stress suites, the device-and-dispatch suite, the sync-engine suite and the API suite each
//! had their own copy of these calls, differing only in which HTTP client they used. This is one
//! copy on `ureq` with HTTP errors turned off, so that a test sees a 401 or a 409 as an answer to
//! assert on, not as a failure; the helpers that expect success ([`ok`], the `Operator` views,
//! [`Operator::create_job`]) assert the 200 themselves and show the body when it is not.

use jobseal_dispatch::{CreateJobResponse, DeviceView, EnrolmentCodesView, IssuedCode, JobView};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

/// An HTTP status and the body: parsed JSON, the text as a JSON string if it is not JSON, or
/// `Null` if it is empty.
pub type Answer = (u16, Value);

/// Asserts that `answer` is a 200 and deserializes its body; panics with the body otherwise.
pub fn ok<T: DeserializeOwned>((status, body): Answer) -> T {
    assert_eq!(status, 200, "unexpected answer: {body}");
    serde_json::from_value(body).expect("the answer has the expected shape")
}

/// A plain HTTP client to one dispatch base URL. Clones share connections.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client to `base_url` (such as `http://127.0.0.1:8787`) that never treats an HTTP status
    /// as an error and gives up on a request after a minute.
    pub fn new(base_url: &str) -> Client {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Client { base: base_url.trim_end_matches('/').to_owned(), agent }
    }

    /// The base URL.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// Sends `method` to `path` with `token` as the bearer token, if any, and `body` as the
    /// request body, if any (`Content-Type: application/json` for methods with a body). Panics
    /// only if no answer comes back.
    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<Vec<u8>>) -> Answer {
        let url = format!("{}{path}", self.base);
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = match method {
            "GET" | "DELETE" => {
                let mut req = if method == "GET" { self.agent.get(&url) } else { self.agent.delete(&url) };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.call()
            }
            "POST" | "PUT" => {
                let mut req = if method == "POST" { self.agent.post(&url) } else { self.agent.put(&url) };
                if let Some(a) = &auth {
                    req = req.header("Authorization", a);
                }
                req.header("Content-Type", "application/json").send(body.unwrap_or_default())
            }
            other => panic!("the test client does not send {other}"),
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: no answer from dispatch: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().expect("the answer's body is text");
        let value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(_) if text.is_empty() => Value::Null,
            Err(_) => Value::String(text),
        };
        (status, value)
    }

    /// `GET path`.
    pub fn get(&self, path: &str, token: Option<&str>) -> Answer {
        self.send("GET", path, token, None)
    }

    /// `POST path` with a JSON body.
    pub fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Answer {
        self.send("POST", path, token, Some(body.to_string().into_bytes()))
    }
}

/// A dispatcher's console: the operator API with the operator's bearer token. Cheap to clone
/// and safe to send to another thread.
#[derive(Clone, Debug)]
pub struct Operator {
    client: Client,
    token: String,
}

impl Operator {
    /// The operator of the dispatch server at `base_url`, authenticating with `token`.
    pub fn new(base_url: &str, token: &str) -> Operator {
        Operator { client: Client::new(base_url), token: token.to_owned() }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        self.client.base_url()
    }

    /// The operator token.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Calls the operator API: `method` on `path` with `body` (a POST without one sends `{}`).
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = match (method, body) {
            (_, Some(b)) => Some(b),
            ("POST" | "PUT", None) => Some(json!({})),
            (_, None) => None,
        };
        self.client.send(method, path, Some(&self.token), body.map(|b| b.to_string().into_bytes()))
    }

    /// Creates (or updates, for a newer version) a job for `device` from `sheet`; the raw answer.
    pub fn post_job(&self, device: Uuid, sheet: &Value) -> Answer {
        self.call("POST", "/v1/operator/jobs", Some(json!({"device_id": device, "sheet": sheet})))
    }

    /// Creates (or updates) a job for `device` from `sheet`; panics unless dispatch accepts it.
    pub fn create_job(&self, device: Uuid, sheet: &Value) -> CreateJobResponse {
        ok(self.post_job(device, sheet))
    }

    /// Everything dispatch knows about `job`; panics unless the answer is a 200.
    pub fn job(&self, job: Uuid) -> JobView {
        ok(self.call("GET", &format!("/v1/operator/jobs/{job}"), None))
    }

    /// Everything dispatch knows about `device`; panics unless the answer is a 200.
    pub fn device(&self, device: Uuid) -> DeviceView {
        ok(self.call("GET", &format!("/v1/operator/devices/{device}"), None))
    }

    /// Cancels `job`; the raw answer (a `JobView` on success).
    pub fn cancel(&self, job: Uuid) -> Answer {
        self.call("POST", &format!("/v1/operator/jobs/{job}/cancel"), None)
    }

    /// Gives `job` to `device`; the raw answer (a `JobView` on success).
    pub fn reassign(&self, job: Uuid, device: Uuid) -> Answer {
        self.call("POST", &format!("/v1/operator/jobs/{job}/reassign"), Some(json!({"device_id": device})))
    }

    /// Issues a one-time enrolment code (for `device` only, when given); the raw answer (an
    /// `IssuedCode` on success).
    pub fn post_code(&self, device: Option<Uuid>, valid_for_seconds: Option<u64>) -> Answer {
        let body = json!({"device_id": device, "valid_for_seconds": valid_for_seconds});
        self.call("POST", "/v1/operator/enrolment-codes", Some(body))
    }

    /// Issues a one-time enrolment code valid for any new device; panics unless dispatch does.
    pub fn issue_code(&self) -> IssuedCode {
        ok(self.post_code(None, None))
    }

    /// Every enrolment code issued; panics unless the answer is a 200.
    pub fn codes(&self) -> EnrolmentCodesView {
        ok(self.call("GET", "/v1/operator/enrolment-codes", None))
    }

    /// Wipes `device`; the raw answer (a `WipeResponse` on success).
    pub fn wipe(&self, device: Uuid) -> Answer {
        self.call("POST", &format!("/v1/operator/devices/{device}/wipe"), None)
    }
}

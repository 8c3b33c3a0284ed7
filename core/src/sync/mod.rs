//! Offline-first sync with dispatch (G5, G6, G7).
//!
//! Sans-IO: [`crate::Vault::sync_request`] builds the HTTP request from the outbox and
//! [`crate::Vault::apply_sync_response`] applies dispatch's answer (acknowledgements, sealed sheets,
//! revocations, server time); a [`Transport`] moves the bytes in between. The vault lock is not
//! held while bytes are on the network, so the technician's app keeps working during a slow sync,
//! and whatever happens meanwhile simply waits in the outbox for the next push. Nothing is lost
//! if the answer never comes: events leave the outbox only when dispatch acknowledges them, and
//! dispatch applies each idempotency key once.
//!
//! TLS is not what the device trusts an answer on: each request carries a fresh random nonce
//! ([`PendingCall`]), and an answer is applied only if it authenticates, under a key only this
//! device and dispatch hold, as the answer to that very request (`jobseal_protocol::answer`,
//! docs/sync.md section 4.5). A forged, replayed or truncated answer changes nothing.
//!
//! A platform implements [`Transport`] on OkHttp or URLSession; [`http::HttpTransport`] is the
//! built-in plain-HTTP one for the CLI, desktop tools and tests.

#[cfg(feature = "http-transport")]
pub mod http;
pub use jobseal_protocol::wire;

use crate::model::ShredOutcome;
pub use jobseal_protocol::answer::{AnsweredCall, NONCE_LEN};
use crate::{crypto, Error, Result};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;

/// An HTTP request for the platform to send. `path` is relative to the dispatch base URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// "GET" or "POST".
    pub method: String,
    /// Path and query, starting with `/v1/`.
    pub path: String,
    /// Headers to send (content type, authorization).
    pub headers: Vec<(String, String)>,
    /// The body (JSON), empty for GET.
    pub body: Vec<u8>,
}

/// What came back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A failure to exchange bytes at all (no network, timeout, connection refused).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TransportError {
    /// What failed, for logs; must not contain request bodies.
    pub message: String,
}

/// What the platform provides to reach dispatch.
///
/// Implementations send the request to the configured dispatch base URL over TLS, return any HTTP
/// status as a response (not an error), reserve errors for when no answer came, and must never
/// call back into the vault. They may block; call [`crate::Vault::sync`] off the UI thread.
pub trait Transport: Send + Sync {
    /// Sends one request and returns dispatch's answer.
    fn send(&self, request: HttpRequest) -> std::result::Result<HttpResponse, TransportError>;
}

/// What one [`crate::Vault::sync`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Request/response rounds made.
    pub rounds: u32,
    /// Events pushed (counting repeats of unacknowledged ones).
    pub pushed: u32,
    /// Events dispatch acknowledged and the outbox dropped.
    pub acknowledged: u32,
    /// Jobs whose sealed sheet was received and stored.
    pub received: Vec<Uuid>,
    /// Sealed sheets refused, with the reason (value-free).
    pub rejected: Vec<(Uuid, String)>,
    /// Jobs shredded because dispatch withdrew them.
    pub revoked: Vec<ShredOutcome>,
    /// Prekeys uploaded because dispatch ran low.
    pub prekeys_uploaded: u32,
    /// Dispatch's clock at the last answer.
    pub server_time: Option<DateTime<Utc>>,
    /// Events still waiting in the outbox.
    pub pending: u64,
}

/// The outbox and the health of sync, for a status screen and for scheduling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// Whether the device is enrolled with dispatch.
    pub enrolled: bool,
    /// Events waiting for dispatch.
    pub pending_events: u64,
    /// Last sync that reached dispatch.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Failed syncs since the last success.
    pub consecutive_failures: u32,
    /// When the next automatic attempt is due (backoff after failures); `None` when due now.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// Delay before retry number `failures` (1-based): 5 s doubling, capped at 15 minutes, with up to
/// 20 % random jitter so that a fleet coming back online does not retry in step. Fails only when
/// the operating system's random number generator does ([`Error::Randomness`]).
pub fn backoff_ms(failures: u32) -> Result<i64> {
    let base = 5_000i64.saturating_mul(1i64 << failures.saturating_sub(1).min(20)).min(15 * 60 * 1000);
    let jitter = i64::from(u16::from_le_bytes(crypto::random_bytes::<2>()?)) % (base / 5 + 1);
    Ok(base + jitter)
}

/// A JSON request to dispatch, with the device token when there is one.
pub(crate) fn json_request<T: Serialize>(method: &str, path: &str, token: Option<&str>, body: &T) -> Result<HttpRequest> {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {t}")));
    }
    let body = serde_json::to_vec(body).map_err(|_| Error::integrity("request does not serialize"))?;
    Ok(HttpRequest { method: method.to_owned(), path: format!("{}{path}", wire::API_PREFIX), headers, body })
}

/// Dispatch's answer as `T`, or its error status as [`Error::Dispatch`].
pub(crate) fn parse_answer<T: DeserializeOwned>(resp: &HttpResponse) -> Result<T> {
    if !(200..300).contains(&resp.status) {
        return Err(error_answer(resp));
    }
    parse_body(resp.status, &resp.body)
}

/// A non-2xx answer as [`Error::Dispatch`]. Error answers are not authenticated (a proxy in
/// front of dispatch can produce them too), so all the device does with one is report it and
/// count a failed sync: it changes nothing else.
pub(crate) fn error_answer(resp: &HttpResponse) -> Error {
    let message = serde_json::from_slice::<wire::ErrorBody>(&resp.body)
        .map(|e| format!("{}: {}", e.error.code, e.error.message))
        .unwrap_or_else(|_| "no error details".to_owned());
    Error::Dispatch { status: resp.status, message }
}

/// A protocol message of dispatch's as `T`.
pub(crate) fn parse_body<T: DeserializeOwned>(status: u16, body: &[u8]) -> Result<T> {
    serde_json::from_slice(body)
        .map_err(|_| Error::Dispatch { status, message: "the answer is not a valid protocol message".to_owned() })
}

/// A request on its way to dispatch, as the device remembers it until the answer comes: which
/// call it is and the fresh random nonce it carries, over which dispatch's answer must be
/// authenticated (`jobseal_protocol::answer`). An answer to any other request fails.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingCall {
    call: AnsweredCall,
    nonce: [u8; NONCE_LEN],
    /// Outbox events the request carries.
    pub events: usize,
}

impl PendingCall {
    /// A call with a fresh nonce from the operating system's generator ([`Error::Randomness`]
    /// when it fails). The nonce cannot be chosen: that is what makes an old answer useless.
    pub fn new(call: AnsweredCall, events: usize) -> Result<PendingCall> {
        Ok(PendingCall { call, nonce: crypto::random_bytes()?, events })
    }

    /// The call.
    pub fn call(&self) -> AnsweredCall {
        self.call
    }

    /// The nonce the request carries (no secret: it travels in the request).
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }
}

/// Sends a request; a failure to get any answer is [`Error::Network`].
pub(crate) fn send(transport: &dyn Transport, req: HttpRequest) -> Result<HttpResponse> {
    transport.send(req).map_err(|e| Error::Network(e.message))
}

/// The value-free reason to report to dispatch when an offered envelope is refused, or `None`
/// when the error is not a refusal of the envelope (storage, keystore...) and must be returned.
/// Decided by the error's kind, like the bindings' errors and the CLI's exit codes.
pub(crate) fn refusal_code(e: &Error) -> Option<&'static str> {
    e.refusal_code()
}


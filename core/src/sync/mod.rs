//! Offline-first sync with dispatch (G5, G6, G7).
//!
//! Sans-IO: [`Vault::sync_request`] builds the HTTP request from the outbox and
//! [`Vault::apply_sync_response`] applies dispatch's answer (acknowledgements, sealed sheets,
//! revocations, server time); a [`Transport`] moves the bytes in between. The vault lock is not
//! held while bytes are on the network, so the technician's app keeps working during a slow sync,
//! and whatever happens meanwhile simply waits in the outbox for the next push. Nothing is lost
//! if the answer never comes: events leave the outbox only when dispatch acknowledges them, and
//! dispatch applies each idempotency key once.
//!
//! A platform implements [`Transport`] on OkHttp or URLSession; [`http::HttpTransport`] is the
//! built-in plain-HTTP one for the CLI, desktop tools and tests.

#[cfg(feature = "http-transport")]
pub mod http;
pub(crate) mod outbox;
pub mod wire;

use crate::delivery::DeviceBundle;
use crate::envelope::PublicKey;
use crate::policy::JobState;
use crate::vault::{Inner, ShredOutcome, Vault};
use crate::{clock, crypto, store, Error, Result};
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use uuid::Uuid;
use wire::EventBody;

const TOKEN_SECRET: &str = "device:token";
const FAILURES: &str = "sync_failures";
const NEXT_ATTEMPT: &str = "sync_next_attempt_ms";
const LAST_SUCCESS: &str = "sync_last_success_ms";
/// Most request/response rounds in one [`Vault::sync`]: a round's answer can create events (a
/// receipt for a revoked job, a "received" for a new sheet) that the next round delivers.
const MAX_ROUNDS: usize = 4;

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
/// call back into the vault. They may block; call [`Vault::sync`] off the UI thread.
pub trait Transport: Send + Sync {
    /// Sends one request and returns dispatch's answer.
    fn send(&self, request: HttpRequest) -> std::result::Result<HttpResponse, TransportError>;
}

/// What one [`Vault::sync`] did.
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
/// 20 % random jitter so that a fleet coming back online does not retry in step.
pub fn backoff_ms(failures: u32) -> i64 {
    let base = 5_000i64.saturating_mul(1i64 << failures.saturating_sub(1).min(20)).min(15 * 60 * 1000);
    let jitter = i64::from(u16::from_le_bytes(crypto::random_bytes::<2>())) % (base / 5 + 1);
    base + jitter
}

fn json_request<T: Serialize>(method: &str, path: &str, token: Option<&str>, body: &T) -> Result<HttpRequest> {
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(t) = token {
        headers.push(("authorization".to_owned(), format!("Bearer {t}")));
    }
    let body = serde_json::to_vec(body).map_err(|_| Error::integrity("request does not serialize"))?;
    Ok(HttpRequest { method: method.to_owned(), path: format!("{}{path}", wire::API_PREFIX), headers, body })
}

fn parse_answer<T: DeserializeOwned>(resp: &HttpResponse) -> Result<T> {
    if !(200..300).contains(&resp.status) {
        let message = serde_json::from_slice::<wire::ErrorBody>(&resp.body)
            .map(|e| format!("{}: {}", e.error.code, e.error.message))
            .unwrap_or_else(|_| "no error details".to_owned());
        return Err(Error::Dispatch { status: resp.status, message });
    }
    serde_json::from_slice(&resp.body).map_err(|_| Error::Dispatch {
        status: resp.status,
        message: "the answer is not a valid protocol message".to_owned(),
    })
}

fn send(transport: &dyn Transport, req: HttpRequest) -> Result<HttpResponse> {
    transport.send(req).map_err(|e| Error::Network(e.message))
}

impl Vault {
    /// Enrols this device with dispatch over `transport`: creates the device keys (pinning
    /// `dispatch_key`, or, when `None`, the key dispatch announces: trust on first use), registers
    /// the public bundle, and keeps the device token (wrapped under the epoch key).
    pub fn enrol_with_dispatch(
        &self,
        transport: &dyn Transport,
        dispatch_key: Option<PublicKey>,
        prekeys: u32,
    ) -> Result<DeviceBundle> {
        let key = match dispatch_key {
            Some(k) => k,
            None => {
                let req = HttpRequest {
                    method: "GET".into(),
                    path: format!("{}/dispatch-key", wire::API_PREFIX),
                    headers: Vec::new(),
                    body: Vec::new(),
                };
                parse_answer::<wire::DispatchKeyResponse>(&send(transport, req)?)?.dispatch_key
            }
        };
        let bundle = match self.device_bundle() {
            // Enrolled here but the answer was lost: enrol again; dispatch issues a new token.
            Ok(b) if self.dispatch_key()? == key && self.lock().device_token()?.is_none() => b,
            Ok(_) => return Err(Error::Enrolment("this device is already enrolled")),
            Err(Error::Enrolment(_)) => self.enrol(key, prekeys)?,
            Err(e) => return Err(e),
        };
        let req = json_request("POST", "/enrol", None, &wire::EnrolRequest { bundle: bundle.clone() })?;
        let answer: wire::EnrolResponse = parse_answer(&send(transport, req)?)?;
        if answer.dispatch_key != key || answer.device_id != bundle.device_id {
            return Err(Error::Enrolment("dispatch answered with another key or device"));
        }
        let mut inner = self.lock();
        let identity = crate::delivery::identity_secret(&inner)?;
        let token = crate::pairing::open_device_token(&identity, &key, bundle.device_id, &answer.sealed_device_token)?;
        inner.store_device_token(&token)?;
        drop(inner);
        self.anchor_server_time(answer.server_time)?;
        Ok(bundle)
    }

    /// Test-only: the device token, so API tests can craft requests.
    #[cfg(feature = "insecure-test-hooks")]
    pub fn device_token_insecure_for_testing(&self) -> Result<Option<String>> {
        self.lock().device_token()
    }

    /// The outbox and sync health.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let inner = self.lock();
        let now = inner.trusted_now()?;
        let next = store::meta_i64(&inner.conn, NEXT_ATTEMPT)?.filter(|n| *n > now);
        Ok(SyncStatus {
            enrolled: outbox::enrolled(&inner.conn)?,
            pending_events: outbox::count(&inner.conn)?,
            last_success_at: store::meta_i64(&inner.conn, LAST_SUCCESS)?.map(clock::from_ms),
            consecutive_failures: store::meta_i64(&inner.conn, FAILURES)?.unwrap_or(0) as u32,
            next_attempt_at: next.map(clock::from_ms),
        })
    }

    /// Builds the next `POST /v1/sync` request: the oldest unacknowledged events, at most
    /// [`wire::MAX_EVENTS_PER_PUSH`]. Returns the request and the number of events in it.
    pub fn sync_request(&self) -> Result<(HttpRequest, usize)> {
        let mut inner = self.lock();
        inner.begin()?;
        let token = inner.device_token()?.ok_or(Error::Enrolment("this device is not enrolled with dispatch"))?;
        let device_id = crate::delivery::device_id(&inner.conn)?
            .ok_or(Error::Enrolment("this device is not enrolled with dispatch"))?;
        let mut events = outbox::pending(&inner.conn, wire::MAX_EVENTS_PER_PUSH)?;
        let mut req =
            json_request("POST", "/sync", Some(&token), &wire::SyncRequest { device_id, events: events.clone() })?;
        // Keep well inside dispatch's body limit even when events are large (long reports).
        while req.body.len() > wire::MAX_BODY_BYTES / 2 && events.len() > 1 {
            events.truncate(events.len() / 2);
            req =
                json_request("POST", "/sync", Some(&token), &wire::SyncRequest { device_id, events: events.clone() })?;
        }
        if let Some(last) = events.last() {
            outbox::attempted(&inner.conn, last.seq)?;
        }
        Ok((req, events.len()))
    }

    /// Applies dispatch's answer to a sync request: drops acknowledged events, anchors trusted
    /// time, stores sealed sheets, shreds revoked jobs. Each sheet and each revocation is applied
    /// in its own transaction, so a crash part-way leaves a consistent vault and the rest is
    /// simply offered again by dispatch.
    pub fn apply_sync_response(&self, response: &HttpResponse, report: &mut SyncReport) -> Result<wire::SyncResponse> {
        let answer: wire::SyncResponse = parse_answer(response)?;
        self.anchor_server_time(answer.server_time)?;
        report.server_time = Some(answer.server_time);
        {
            let mut inner = self.lock();
            let tx = store::write_tx(&mut inner.conn)?;
            report.acknowledged += outbox::acknowledge(&tx, &answer.acked)? as u32;
            tx.commit()?;
        }
        crate::crash_point("sync:acked");
        for delivery in &answer.envelopes {
            match self.receive(&delivery.envelope) {
                Ok(info) => report.received.push(info.job_id),
                // Already stored (our "received" event is still on its way): not a rejection.
                Err(Error::StaleVersion { held, offered, .. }) if held == offered => {}
                Err(e) => {
                    let Some(reason) = refusal_code(&e) else { return Err(e) };
                    self.lock().record_rejection(delivery.job_id, delivery.version, reason)?;
                    report.rejected.push((delivery.job_id, reason.to_owned()));
                }
            }
        }
        for revocation in &answer.revocations {
            if let Some(outcome) = self.lock().revoke_for_dispatch(revocation.job_id)? {
                report.revoked.push(outcome);
            }
        }
        Ok(answer)
    }

    /// Pushes the outbox and pulls from dispatch until there is nothing left to exchange (at most
    /// a few rounds). On a network failure the error is returned and the backoff advanced; nothing
    /// is lost. Runs on the calling thread; the vault stays usable from others meanwhile.
    pub fn sync(&self, transport: &dyn Transport) -> Result<SyncReport> {
        let result = self.sync_rounds(transport);
        let mut inner = self.lock();
        let now = inner.trusted_now()?;
        let tx = store::write_tx(&mut inner.conn)?;
        match &result {
            Ok(_) => {
                store::set_meta_i64(&tx, FAILURES, 0)?;
                store::set_meta_i64(&tx, LAST_SUCCESS, now)?;
                tx.execute("DELETE FROM meta WHERE key = ?1", [NEXT_ATTEMPT])?;
            }
            Err(_) => {
                let failures = store::meta_i64(&tx, FAILURES)?.unwrap_or(0) as u32 + 1;
                store::set_meta_i64(&tx, FAILURES, failures.into())?;
                store::set_meta_i64(&tx, NEXT_ATTEMPT, now.saturating_add(backoff_ms(failures)))?;
            }
        }
        tx.commit()?;
        drop(inner);
        let mut report = result?;
        report.pending = self.sync_status()?.pending_events;
        Ok(report)
    }

    fn sync_rounds(&self, transport: &dyn Transport) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        for _ in 0..MAX_ROUNDS {
            let (req, count) = self.sync_request()?;
            report.rounds += 1;
            report.pushed += count as u32;
            let resp = send(transport, req)?;
            crate::crash_point("sync:answer-received");
            let answer = self.apply_sync_response(&resp, &mut report)?;
            if answer.prekeys_wanted > 0 {
                report.prekeys_uploaded += self.upload_prekeys(transport, answer.prekeys_wanted)?;
            }
            // Events this round created (received, rejected, receipts) go out in the next one.
            if self.lock().pending_count()? == 0 {
                break;
            }
        }
        Ok(report)
    }

    fn upload_prekeys(&self, transport: &dyn Transport, wanted: u32) -> Result<u32> {
        let count = wanted.min(crate::delivery::MAX_PREKEYS_PER_CALL);
        let bundle = self.add_prekeys(count)?;
        let token = self.lock().device_token()?.ok_or(Error::Enrolment("this device is not enrolled with dispatch"))?;
        let req = json_request("POST", "/prekeys", Some(&token), &wire::PrekeysRequest { prekeys: bundle.prekeys })?;
        let answer: wire::PrekeysResponse = parse_answer(&send(transport, req)?)?;
        Ok(answer.accepted)
    }
}

/// The value-free reason to report to dispatch when an offered envelope is refused, or `None`
/// when the error is not a refusal of the envelope (storage, keystore...) and must be returned.
fn refusal_code(e: &Error) -> Option<&'static str> {
    Some(match e {
        Error::Tampered(_) => "tampered",
        Error::Misaddressed => "misaddressed",
        Error::PrekeyUnavailable(_) => "prekey-unavailable",
        Error::StaleVersion { .. } => "stale-version",
        Error::JobClosed { .. } => "job-closed",
        Error::InvalidSheet(_) => "invalid-sheet",
        _ => return None,
    })
}

impl Inner {
    fn device_token(&self) -> Result<Option<String>> {
        let Some(raw) = self.unwrap_secret_bytes(TOKEN_SECRET)? else { return Ok(None) };
        String::from_utf8(raw.to_vec()).map(Some).map_err(|_| Error::integrity("stored device token is unreadable"))
    }

    fn store_device_token(&mut self, token: &str) -> Result<()> {
        let wrapped = self.emk.seal(token.as_bytes(), crate::vault::wrap_aad(TOKEN_SECRET, self.epoch).bytes())?;
        self.conn.execute(
            "INSERT INTO secrets (id, epoch, wrapped) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, wrapped = excluded.wrapped",
            rusqlite::params![TOKEN_SECRET, self.epoch as i64, wrapped],
        )?;
        Ok(())
    }

    fn pending_count(&self) -> Result<u64> {
        outbox::count(&self.conn)
    }

    fn record_rejection(&mut self, job_id: Uuid, version: u64, reason: &str) -> Result<()> {
        let now = self.trusted_now()?;
        let tx = store::write_tx(&mut self.conn)?;
        outbox::enqueue(&tx, Some(job_id), now, &EventBody::Rejected { version, reason: reason.to_owned() })?;
        tx.commit()?;
        Ok(())
    }

    /// Shreds a job dispatch withdrew. A job this device never held gets a tombstone and a receipt
    /// all the same, so that its sheet can never arrive later and dispatch can close its books.
    /// The revocation's reason stays in dispatch's records; on the device the shred says "revoked".
    fn revoke_for_dispatch(&mut self, job_id: Uuid) -> Result<Option<ShredOutcome>> {
        let now = self.begin()?;
        match self.start_shred(job_id, JobState::Revoked, None, now) {
            Ok(()) => {}
            Err(Error::JobClosed { .. }) => return Ok(None),
            Err(Error::JobNotFound(_)) => return self.tombstone_unknown(job_id, now).map(Some),
            Err(e) => return Err(e),
        }
        let outcomes = self.shred_pending(now)?;
        Ok(outcomes.into_iter().find(|o| o.job_id == job_id))
    }
}

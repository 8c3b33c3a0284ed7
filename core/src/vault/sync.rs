//! The vault's side of sync with dispatch: enrolment, push, pull, backoff (G5, G6, G7).
//!
//! The request is built and the answer applied under the vault lock; the bytes travel in between
//! without it, so the technician's app keeps working during a slow sync, and whatever happens
//! meanwhile simply waits in the outbox for the next push. Events leave the outbox only when
//! dispatch acknowledges them, in an answer authenticated for this request (its nonce) and this
//! device, and dispatch applies each idempotency key once.

use super::{Inner, Vault, VaultEvent};
use crate::bundle::DeviceBundle;
use crate::enrolment::{self, EnrolmentCode};
use crate::envelope::PublicKey;
use crate::keyring::SecretId;
use crate::store::{self, device, meta};
use crate::sync::wire::{self, EventBody};
use crate::sync::{backoff_ms, json_request, parse_answer, refusal_code, send};
use crate::sync::{error_answer, parse_body, AnsweredCall, PendingCall};
use crate::sync::{HttpRequest, HttpResponse, SyncReport, SyncStatus, Transport};
use crate::{clock, crash_point, journal, Error, Result};
use jobseal_protocol::answer::AnswerKey;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Most request/response rounds in one [`Vault::sync`]: a round's answer can create events (a
/// receipt for a revoked job, a "received" for a new sheet) that the next round delivers.
const MAX_ROUNDS: usize = 4;

const NOT_ENROLLED: Error = Error::Enrolment("this device is not enrolled with dispatch");

impl Vault {
    /// Enrols this device with dispatch over `transport`: creates the device keys (pinning
    /// `dispatch_key`, or, when `None`, the key dispatch announces: trust on first use), registers
    /// the public bundle, and keeps the device token (wrapped under the epoch key).
    ///
    /// `code` is the one-time enrolment code the operator issued (4 groups of 5 characters; case,
    /// spaces and dashes do not matter). Dispatch needs it for the first enrolment of this
    /// device; the code itself is never sent, only a proof made with it over this request. After
    /// a lost answer, calling again enrols again: if dispatch did register the device, the proof
    /// of the device's identity key is enough and `code` may be `None`. A mistyped code is an
    /// [`Error::InvalidInput`] before anything is created or sent.
    pub fn enrol_with_dispatch(
        &self,
        transport: &dyn Transport,
        dispatch_key: Option<PublicKey>,
        prekeys: u32,
        code: Option<&str>,
    ) -> Result<DeviceBundle> {
        let code = code.map(EnrolmentCode::parse).transpose()?;
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
        let request = {
            let identity = self.lock().identity_secret()?;
            enrolment::build_request(bundle.clone(), &identity, &key, code.as_ref())?
        };
        let req = json_request("POST", "/enrol", None, &request)?;
        let answer: wire::EnrolResponse = parse_answer(&send(transport, req)?)?;
        if answer.dispatch_key != key || answer.device_id != bundle.device_id {
            return Err(Error::Enrolment("dispatch answered with another key or device"));
        }
        let mut inner = self.lock();
        let identity = inner.identity_secret()?;
        // Opens only for an answer to this very request (its nonce) with this server time: a
        // replayed or forged answer is refused here and nothing is stored.
        let token = enrolment::open_answer_token(
            &identity,
            &key,
            bundle.device_id,
            &request.nonce,
            answer.server_time.timestamp_millis(),
            &answer.sealed_device_token,
        )?;
        inner.store_device_token(&token)?;
        drop(inner);
        // Enrolled from now on, whatever anchoring the time does.
        if let Ok(status) = self.sync_status() {
            self.notify(VaultEvent::SyncStatusChanged(status));
        }
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
        let mut inner = self.lock();
        let now = inner.begin_stamp()?.ms;
        let health = meta::sync_health(&inner.conn)?;
        Ok(SyncStatus {
            enrolled: device::enrolled(&inner.conn)?,
            pending_events: journal::pending_count(&inner.conn)?,
            last_success_at: health.last_success_ms.map(clock::from_ms),
            consecutive_failures: health.failures,
            next_attempt_at: health.next_attempt_ms.filter(|n| *n > now).map(clock::from_ms),
        })
    }

    /// Builds the next `POST /v1/sync` request: the oldest unacknowledged events, at most
    /// [`wire::MAX_EVENTS_PER_PUSH`], and a fresh random nonce. Returns the request and what the
    /// device needs to check the answer to it ([`PendingCall`], which also counts the events).
    pub fn sync_request(&self) -> Result<(HttpRequest, PendingCall)> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        let token = inner.device_token()?.ok_or(NOT_ENROLLED)?;
        let device_id = inner.device_id()?.ok_or(NOT_ENROLLED)?;
        let mut events = journal::pending(&inner.conn, wire::MAX_EVENTS_PER_PUSH)?;
        let mut pending = PendingCall::new(AnsweredCall::Sync, 0)?;
        let nonce = pending.nonce().to_vec();
        let body = |events: &[wire::OutboxEvent]| wire::SyncRequest {
            device_id,
            events: events.to_vec(),
            nonce: nonce.clone(),
        };
        let mut req = json_request("POST", "/sync", Some(&token), &body(&events))?;
        // Keep well inside dispatch's body limit even when events are large (long reports).
        while req.body.len() > wire::MAX_BODY_BYTES / 2 && events.len() > 1 {
            events.truncate(events.len() / 2);
            req = json_request("POST", "/sync", Some(&token), &body(&events))?;
        }
        if let Some(last) = events.last() {
            let tx = store::write(&mut inner.conn, &now)?;
            journal::attempted(&tx, last.seq)?;
            tx.commit()?;
        }
        pending.events = events.len();
        Ok((req, pending))
    }

    /// Applies dispatch's answer to the sync request `pending` was made with: drops acknowledged
    /// events, anchors trusted time, stores sealed sheets, shreds revoked jobs. Each sheet and
    /// each revocation is applied in its own transaction, so a crash part-way leaves a consistent
    /// vault and the rest is simply offered again by dispatch.
    ///
    /// Nothing of the answer is applied unless it is authenticated for this device and this very
    /// request (its MAC, over `pending`'s nonce, checked in constant time before the answer is
    /// parsed): a forged, altered, truncated or replayed answer, or one for another device, is
    /// [`Error::Tampered`] and changes nothing. An error status is [`Error::Dispatch`] and changes
    /// nothing either.
    pub fn apply_sync_response(
        &self,
        pending: &PendingCall,
        response: &HttpResponse,
        report: &mut SyncReport,
    ) -> Result<wire::SyncResponse> {
        let answer: wire::SyncResponse = self.open_answer(pending, AnsweredCall::Sync, response)?;
        self.anchor_server_time(answer.server_time)?;
        report.server_time = Some(answer.server_time);
        {
            let mut inner = self.lock();
            let now = inner.begin_stamp()?;
            let tx = store::write(&mut inner.conn, &now)?;
            report.acknowledged = report
                .acknowledged
                .saturating_add(u32::try_from(journal::acknowledge(&tx, &answer.acked)?).unwrap_or(u32::MAX));
            tx.commit()?;
        }
        crash_point("sync:acked");
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
        // After the envelopes: none of those dispatch still offers is sealed below the floor.
        if let Some(floor) = answer.prekey_floor {
            self.lock().burn_prekeys_below(floor)?;
        }
        Ok(answer)
    }

    /// Pushes the outbox and pulls from dispatch until there is nothing left to exchange (at most
    /// a few rounds). On a network failure the error is returned and the backoff advanced; nothing
    /// is lost. Runs on the calling thread; the vault stays usable from others meanwhile.
    pub fn sync(&self, transport: &dyn Transport) -> Result<SyncReport> {
        let result = self.sync_rounds(transport);
        let mut inner = self.lock();
        let stamp = inner.begin_stamp()?;
        let now = stamp.ms;
        let tx = store::write(&mut inner.conn, &stamp)?;
        let mut health = meta::sync_health(&tx)?;
        match &result {
            Ok(_) => {
                health.failures = 0;
                health.last_success_ms = Some(now);
                health.next_attempt_ms = None;
            }
            Err(_) => {
                health.failures = health.failures.saturating_add(1);
                health.next_attempt_ms = Some(now.saturating_add(backoff_ms(health.failures)?));
            }
        }
        meta::set_sync_health(&tx, &health)?;
        tx.commit()?;
        drop(inner);
        let status = self.sync_status();
        if let Ok(status) = &status {
            self.notify(VaultEvent::SyncStatusChanged(status.clone()));
        }
        let mut report = result?;
        report.pending = status?.pending_events;
        Ok(report)
    }

    fn sync_rounds(&self, transport: &dyn Transport) -> Result<SyncReport> {
        let mut report = SyncReport::default();
        for _ in 0..MAX_ROUNDS {
            let (req, pending) = self.sync_request()?;
            report.rounds += 1;
            report.pushed = report.pushed.saturating_add(u32::try_from(pending.events).unwrap_or(u32::MAX));
            let resp = send(transport, req)?;
            crash_point("sync:answer-received");
            let answer = self.apply_sync_response(&pending, &resp, &mut report)?;
            if answer.prekeys_wanted > 0 {
                let uploaded = self.upload_prekeys(transport, answer.prekeys_wanted)?;
                report.prekeys_uploaded = report.prekeys_uploaded.saturating_add(uploaded);
            }
            // Events this round created (received, rejected, receipts) go out in the next one.
            if journal::pending_count(&self.lock().conn)? == 0 {
                break;
            }
        }
        Ok(report)
    }

    fn upload_prekeys(&self, transport: &dyn Transport, wanted: u32) -> Result<u32> {
        // Only the newly minted prekeys go up: dispatch has the others.
        let prekeys = self.mint_prekeys_for_top_up(wanted)?;
        if prekeys.is_empty() {
            return Ok(0);
        }
        let token = self.lock().device_token()?.ok_or(NOT_ENROLLED)?;
        let pending = PendingCall::new(AnsweredCall::Prekeys, 0)?;
        let sent = u32::try_from(prekeys.len()).unwrap_or(u32::MAX);
        let body = wire::PrekeysRequest { prekeys, nonce: pending.nonce().to_vec() };
        let req = json_request("POST", "/prekeys", Some(&token), &body)?;
        let answer: wire::PrekeysResponse =
            self.open_answer(&pending, AnsweredCall::Prekeys, &send(transport, req)?)?;
        // Dispatch cannot have stored more than it was sent; a larger count (a faulty dispatch)
        // must not overflow the report's total over several rounds (found by the
        // `device_answers` fuzz target: an add overflow panic).
        Ok(answer.accepted.min(sent))
    }

    /// Dispatch's answer to the request `pending` was made with, as `T`, once authenticated: the
    /// MAC under this device's answer key, over the call, the device id, the request's nonce and
    /// the answer's exact bytes, is checked before the answer is deserialized. An error
    /// status is [`Error::Dispatch`]; anything else that does not authenticate is
    /// [`Error::Tampered`].
    fn open_answer<T: DeserializeOwned>(
        &self,
        pending: &PendingCall,
        call: AnsweredCall,
        resp: &HttpResponse,
    ) -> Result<T> {
        if !(200..300).contains(&resp.status) {
            return Err(error_answer(resp));
        }
        if pending.call() != call {
            return Err(Error::InvalidInput("the pending call is not this endpoint's".into()));
        }
        let key = {
            let inner = self.lock();
            let device = device::get(&inner.conn)?.ok_or(NOT_ENROLLED)?;
            AnswerKey::derive(&inner.identity_secret()?, &device.dispatch_key, device.device_id)?
        };
        let text = key.open(call, pending.nonce(), &resp.body)?;
        parse_body(resp.status, text.as_bytes())
    }
}

impl Inner {
    fn device_token(&self) -> Result<Option<String>> {
        let Some(raw) = self.keyring.get(&self.conn, SecretId::DeviceToken)? else { return Ok(None) };
        String::from_utf8(raw.to_vec()).map(Some).map_err(|_| Error::integrity("stored device token is unreadable"))
    }

    fn store_device_token(&mut self, token: &str) -> Result<()> {
        let now = self.begin_stamp()?;
        let tx = store::write(&mut self.conn, &now)?;
        self.keyring.put(&tx, SecretId::DeviceToken, token.as_bytes())?;
        tx.commit()
    }

    fn record_rejection(&mut self, job_id: Uuid, version: u64, reason: &str) -> Result<()> {
        let now = self.begin_stamp()?;
        let tx = store::write(&mut self.conn, &now)?;
        journal::send(&tx, Some(job_id), now.ms, &EventBody::Rejected { version, reason: reason.to_owned() })?;
        tx.commit()
    }
}

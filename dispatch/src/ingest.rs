//! `POST /v1/sync`: applying a device's outbox exactly once, and answering with what it should
//! pull (G5, G6, G7).
//!
//! Exactly once in effect: every event carries an idempotency key, and the key is recorded in
//! `applied_events` in the same transaction that applies the event. A key seen before is
//! acknowledged again and not applied again, whether it comes twice in one request, again in a
//! retry after a lost answer, or out of order. The device removes an event from its outbox only
//! once it is acknowledged, so nothing it wrote is lost either.
//!
//! Nothing a device pushes is refused for its content once the request itself is well formed:
//! the device cannot change its past, so an event naming a job dispatch does not hold is
//! acknowledged and recorded as ignored, an audit event that does not fit the hash chain is kept
//! and flagged, and a receipt whose MAC fails is kept as unverified. The operator sees all of it.

use crate::devices::{prekeys_available, prekeys_wanted};
use crate::telemetry::SyncTally;
use crate::error::ApiError;
use crate::jobs::{job_row, withdraw_pending};
use crate::service::{
    device_by_token, enum_text, now, parse_device_call, parse_uuid_column, recipient_text, sql_u64, DeviceRow, Service,
};
use crate::store::time;
use axum::http::HeaderMap;
use jobseal_protocol::answer::AnsweredCall;
use jobseal_protocol::audit::AuditKey;
use jobseal_protocol::receipt::{ReceiptKey, ShredReceipt};
use jobseal_protocol::wire::{
    AuditRecord, EventBody, OutboxEvent, Revocation, SealedDelivery, SyncRequest, SyncResponse, MAX_BODY_BYTES,
    MAX_EVENTS_PER_PUSH,
};
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::HashSet;
use uuid::Uuid;

/// Envelope bytes offered in one sync answer. Envelopes travel as hex, twice their size, so this
/// keeps an answer within [`MAX_BODY_BYTES`]; the rest waits for the next sync. At least one
/// envelope is always offered, so a large one cannot block the queue.
const ENVELOPE_BUDGET: usize = MAX_BODY_BYTES / 2 - 64 * 1024;

/// Longest rejection reason kept (the device's reasons are short, fixed phrases).
const MAX_REASON_CHARS: usize = 200;

/// What applying one event did.
enum Outcome {
    Applied,
    /// Acknowledged but without effect; the note says why (value-free).
    Ignored(&'static str),
}

impl Outcome {
    /// The outcome's name, as stored with the event's key and counted in the metrics.
    fn name(&self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Ignored(_) => "ignored",
        }
    }
}

impl Service {
    /// `POST /v1/sync`. Returns the answer's body: the [`SyncResponse`] authenticated for the
    /// device over the request's nonce (`jobseal_protocol::answer`).
    pub(crate) fn sync(&self, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        let mut tally = SyncTally::default();
        let answer = self.store.write(|tx| {
            let device = device_by_token(tx, headers)?;
            let req: SyncRequest = parse_device_call(body, |r: &SyncRequest| &r.nonce)?;
            if req.device_id != device.device_id {
                return Err(ApiError::forbidden("the token does not belong to this device_id"));
            }
            if req.events.len() > MAX_EVENTS_PER_PUSH {
                return Err(ApiError::bad_request(format!("at most {MAX_EVENTS_PER_PUSH} events per sync")));
            }
            let now = now();
            // The device's audit chain key, derived once per request (one X25519).
            let audit_key = AuditKey::derive(self.secret(), &device.identity_key, device.device_id)
                .map_err(|e| ApiError::internal(&e))?;
            let mut acked = Vec::with_capacity(req.events.len());
            let mut seen = HashSet::new();
            for event in &req.events {
                // The nil UUID is not a key a device can mint; acknowledging it would let a broken
                // outbox believe it had been heard.
                if event.key.is_nil() {
                    continue;
                }
                if already_applied(tx, device.device_id, event.key)? {
                    tally.event(event.body.type_name(), "duplicate");
                } else {
                    let outcome = self.apply(tx, &device, &audit_key, event, now)?;
                    tally.event(event.body.type_name(), outcome.name());
                    record_key(tx, device.device_id, event, &outcome, now)?;
                }
                if seen.insert(event.key) {
                    acked.push(event.key);
                }
            }
            tx.execute(
                "UPDATE devices SET last_sync_ms = ?1 WHERE device_id = ?2",
                params![now, device.device_id.to_string()],
            )?;
            self.seal_waiting(tx, &device, now)?;
            let answer = pull(tx, device.device_id, acked, now)?;
            // Sealed inside the transaction: if sealing fails, nothing of the push is kept.
            self.seal_answer(&device, AnsweredCall::Sync, &req.nonce, &answer)
        })?;
        self.metrics.record_sync(tally);
        Ok(answer)
    }

    fn apply(
        &self,
        tx: &Transaction<'_>,
        device: &DeviceRow,
        audit_key: &AuditKey,
        e: &OutboxEvent,
        now: i64,
    ) -> Result<Outcome, ApiError> {
        let dev = device.device_id.to_string();
        match &e.body {
            EventBody::Received { version, via } => {
                let Some(job) = e.job_id else { return Ok(Outcome::Ignored("no job_id")) };
                // Where the device's chain stood when it took the sheet: what it recorded about the
                // job before (an intruder's records written ahead of a reassignment) is not the
                // job's history (`job_view`).
                let n = tx.execute(
                    "UPDATE deliveries SET status = 'received', via = ?1, reason = NULL, updated_ms = ?2,
                         received_after_seq = coalesce(received_after_seq,
                             (SELECT coalesce(max(seq), 0) FROM audit_records WHERE device_id = ?4))
                     WHERE job_id = ?3 AND device_id = ?4 AND version = ?5",
                    params![recipient_text(*via), now, job.to_string(), dev, sql_u64(*version)?],
                )?;
                if n == 0 {
                    return Ok(Outcome::Ignored("no such delivery"));
                }
                // An older version still queued is now stale for the device.
                tx.execute(
                    "UPDATE deliveries SET status = 'superseded', envelope = x'', updated_ms = ?1
                     WHERE job_id = ?2 AND device_id = ?3 AND version < ?4 AND status = 'pending'",
                    params![now, job.to_string(), dev, sql_u64(*version)?],
                )?;
                Ok(Outcome::Applied)
            }
            EventBody::Rejected { version, reason } => {
                let Some(job) = e.job_id else { return Ok(Outcome::Ignored("no job_id")) };
                let reason: String = reason.chars().take(MAX_REASON_CHARS).collect();
                // "Received" wins: a device that refuses a second copy of a sheet it already holds
                // (offered again before its Received arrived) still holds it.
                let n = tx.execute(
                    "UPDATE deliveries SET status = 'rejected', reason = ?1, updated_ms = ?2
                     WHERE job_id = ?3 AND device_id = ?4 AND version = ?5 AND status <> 'received'",
                    params![reason, now, job.to_string(), dev, sql_u64(*version)?],
                )?;
                Ok(if n == 0 { Outcome::Ignored("no such delivery, or already received") } else { Outcome::Applied })
            }
            EventBody::State { from, to } => {
                let Some(job_id) = e.job_id else { return Ok(Outcome::Ignored("no job_id")) };
                if !held(tx, job_id, device.device_id)? {
                    return Ok(Outcome::Ignored("job not sealed for this device"));
                }
                let seq = sql_u64(e.seq)?;
                tx.execute(
                    "INSERT INTO state_changes (job_id, device_id, from_state, to_state, at_ms, seq, event_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![
                        job_id.to_string(),
                        dev,
                        from.as_str(),
                        to.as_str(),
                        e.at.timestamp_millis(),
                        seq,
                        e.key.to_string()
                    ],
                )?;
                // Only the assigned device speaks for the job's state, and only its newest word
                // counts: an older event that arrives late goes to the history only.
                tx.execute(
                    "UPDATE jobs SET state = ?1, state_seq = ?2, state_ms = ?3
                     WHERE job_id = ?4 AND device_id = ?5 AND (state_seq IS NULL OR state_seq < ?2)",
                    params![to.as_str(), seq, e.at.timestamp_millis(), job_id.to_string(), dev],
                )?;
                if to.is_terminal() {
                    // The device shredded and tombstoned the job: it would refuse any copy.
                    withdraw_pending(tx, job_id, Some(device.device_id), now)?;
                }
                Ok(Outcome::Applied)
            }
            EventBody::Report { text } => {
                let Some(job_id) = e.job_id else { return Ok(Outcome::Ignored("no job_id")) };
                if !held(tx, job_id, device.device_id)? {
                    return Ok(Outcome::Ignored("job not sealed for this device"));
                }
                tx.execute(
                    "INSERT INTO reports (job_id, device_id, text, at_ms, seq, event_key, received_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (job_id, device_id) DO UPDATE SET
                        text = excluded.text, at_ms = excluded.at_ms, seq = excluded.seq,
                        event_key = excluded.event_key, received_ms = excluded.received_ms
                     WHERE excluded.seq > reports.seq",
                    params![
                        job_id.to_string(),
                        dev,
                        text,
                        e.at.timestamp_millis(),
                        sql_u64(e.seq)?,
                        e.key.to_string(),
                        now
                    ],
                )?;
                Ok(Outcome::Applied)
            }
            EventBody::Audit(record) => ingest_audit(tx, device.device_id, audit_key, e.job_id, record, e.key, now),
            EventBody::Receipt(receipt) => self.ingest_receipt(tx, device, e.job_id, receipt, e.key, now),
        }
    }

    fn ingest_receipt(
        &self,
        tx: &Transaction<'_>,
        device: &DeviceRow,
        event_job: Option<Uuid>,
        r: &ShredReceipt,
        key: Uuid,
        now: i64,
    ) -> Result<Outcome, ApiError> {
        // A receipt about a job dispatch never sealed for this device says nothing dispatch can
        // act on; stored, it would show a job closed that its device still holds (issue 12).
        if !held(tx, r.job_id, device.device_id)? {
            return Ok(Outcome::Ignored("job not sealed for this device"));
        }
        // The MAC key is bound to the sending device (its identity key and its id), so a receipt
        // verifies only if that device made it; it must also name that device and the job of the
        // event that carried it. A key-agreement failure (impossible with a validated identity
        // key) counts as "not verified" rather than failing the whole push.
        let mac_ok = ReceiptKey::derive(self.secret(), &device.identity_key, device.device_id)
            .map(|k| k.verify(r))
            .unwrap_or(false);
        let verified = mac_ok && r.device_id == device.device_id && event_job.is_none_or(|j| j == r.job_id);
        let json = serde_json::to_string(r).map_err(|e| ApiError::internal(&e))?;
        tx.execute(
            "INSERT INTO receipts (job_id, device_id, receipt, verified, event_key, received_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.job_id.to_string(), device.device_id.to_string(), json, verified, key.to_string(), now],
        )?;
        if verified {
            withdraw_pending(tx, r.job_id, Some(device.device_id), now)?;
            tx.execute(
                "UPDATE revocations SET confirmed_ms = ?1 WHERE job_id = ?2 AND device_id = ?3 AND confirmed_ms IS NULL",
                params![now, r.job_id.to_string(), device.device_id.to_string()],
            )?;
        }
        Ok(Outcome::Applied)
    }
}

fn already_applied(tx: &Transaction<'_>, device: Uuid, key: Uuid) -> Result<bool, ApiError> {
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM applied_events WHERE device_id = ?1 AND event_key = ?2)",
        params![device.to_string(), key.to_string()],
        |r| r.get(0),
    )?)
}

fn record_key(
    tx: &Transaction<'_>,
    device: Uuid,
    e: &OutboxEvent,
    outcome: &Outcome,
    now: i64,
) -> Result<(), ApiError> {
    let kind = e.body.type_name();
    let note = match outcome {
        Outcome::Applied => None,
        Outcome::Ignored(why) => Some(*why),
    };
    let outcome = outcome.name();
    tx.execute(
        "INSERT INTO applied_events (device_id, event_key, seq, job_id, kind, outcome, note, applied_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            device.to_string(),
            e.key.to_string(),
            sql_u64(e.seq)?,
            e.job_id.map(|j| j.to_string()),
            kind,
            outcome,
            note,
            now
        ],
    )?;
    Ok(())
}

/// True if the job exists and dispatch ever sealed it for this device.
fn held(tx: &Transaction<'_>, job_id: Uuid, device: Uuid) -> Result<bool, ApiError> {
    if job_row(tx, job_id)?.is_none() {
        return Ok(false);
    }
    Ok(tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM deliveries WHERE job_id = ?1 AND device_id = ?2)",
        params![job_id.to_string(), device.to_string()],
        |r| r.get(0),
    )?)
}

/// Stores one audit record and extends the device's verified chain as far as it now reaches.
///
/// Records may arrive out of order (a lost answer, a per-job outbox), so a record is first kept
/// as `pending`; then the chain advances from the last verified (seq, hash) through consecutive
/// pending records, each checked by `jobseal_protocol::audit::verify_records`. The first record that does
/// not fit marks the chain broken at its seq; later records stay pending, visible but unverified.
fn ingest_audit(
    tx: &Transaction<'_>,
    device: Uuid,
    audit_key: &AuditKey,
    job_id: Option<Uuid>,
    r: &AuditRecord,
    key: Uuid,
    now: i64,
) -> Result<Outcome, ApiError> {
    let dev = device.to_string();
    if r.seq == 0 || i64::try_from(r.seq).is_err() {
        return Ok(Outcome::Ignored("audit seq out of range"));
    }
    let seq = r.seq as i64;
    let job_text = job_id.map(|j| j.to_string());
    let kind = enum_text(&r.kind)?;
    let state = r.state.map(|s| s.as_str());
    // The same record sent again under another key (a device that re-queued it) is a duplicate;
    // a different record at a seq already held means the chain forked: broken at that seq.
    let mut same = false;
    let mut conflict = false;
    {
        let mut stmt = tx.prepare_cached(
            "SELECT job_id, at_ms, kind, field, state, detail, prev_hash, hash FROM audit_records
             WHERE device_id = ?1 AND seq = ?2",
        )?;
        let mut rows = stmt.query(params![dev, seq])?;
        while let Some(row) = rows.next()? {
            let identical = row.get::<_, Option<String>>(0)? == job_text
                && row.get::<_, i64>(1)? == r.at_ms
                && row.get::<_, String>(2)? == kind
                && row.get::<_, Option<String>>(3)? == r.field
                && row.get::<_, Option<String>>(4)?.as_deref() == state
                && row.get::<_, Option<String>>(5)? == r.detail
                && row.get::<_, Vec<u8>>(6)? == r.prev_hash
                && row.get::<_, Vec<u8>>(7)? == r.hash;
            if identical {
                same = true;
            } else {
                conflict = true;
            }
        }
    }
    if same && !conflict {
        return Ok(Outcome::Ignored("duplicate audit record"));
    }
    tx.execute(
        "INSERT INTO audit_records (device_id, seq, job_id, at_ms, kind, field, state, detail, prev_hash, hash, chain, event_key, received_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        params![
            dev,
            seq,
            job_text,
            r.at_ms,
            kind,
            r.field,
            state,
            r.detail,
            r.prev_hash,
            r.hash,
            if conflict { "broken" } else { "pending" },
            key.to_string(),
            now
        ],
    )?;
    if conflict {
        tx.execute(
            "UPDATE devices SET audit_broken_at = min(coalesce(audit_broken_at, ?1), ?1) WHERE device_id = ?2",
            params![seq, dev],
        )?;
    }
    advance_chain(tx, device, audit_key)?;
    Ok(Outcome::Applied)
}

/// Moves the device's verified chain head forward through consecutive pending records.
///
/// A device enrolled by this release keys its chain from its first event (`audit_keyed_from` is
/// 1 from enrolment); one enrolled before keeps an unkeyed chain until a record verifies under
/// the key, and from that record on only keyed records are accepted, so a rewritten tail cannot
/// fall back to plain SHA-256.
fn advance_chain(tx: &Transaction<'_>, device: Uuid, audit_key: &AuditKey) -> Result<(), ApiError> {
    let dev = device.to_string();
    loop {
        let (verified_seq, verified_hash, broken_at, keyed_from): (i64, Option<Vec<u8>>, Option<i64>, Option<i64>) = tx
            .query_row(
                "SELECT audit_verified_seq, audit_verified_hash, audit_broken_at, audit_keyed_from
                 FROM devices WHERE device_id = ?1",
                [&dev],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
        if broken_at.is_some() {
            return Ok(());
        }
        let next = verified_seq + 1;
        let row = tx
            .query_row(
                "SELECT record_id, job_id, at_ms, kind, field, state, detail, prev_hash, hash FROM audit_records
                 WHERE device_id = ?1 AND seq = ?2 AND chain = 'pending' ORDER BY record_id LIMIT 1",
                params![dev, next],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, Option<String>>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<String>>(4)?,
                        r.get::<_, Option<String>>(5)?,
                        r.get::<_, Option<String>>(6)?,
                        r.get::<_, Vec<u8>>(7)?,
                        r.get::<_, Vec<u8>>(8)?,
                    ))
                },
            )
            .optional()?;
        let Some((record_id, job, at_ms, kind, field, state, detail, prev_hash, hash)) = row else {
            return Ok(());
        };
        let record = AuditRecord {
            seq: next as u64,
            at_ms,
            kind: crate::service::enum_parse(&kind)?,
            field,
            state: state.map(|s| crate::service::enum_parse(&s)).transpose()?,
            detail,
            prev_hash,
            hash: hash.clone(),
        };
        let job = job.map(|j| parse_uuid_column(&j)).transpose()?;
        let previous = match (&verified_hash, verified_seq) {
            (Some(h), s) if s > 0 => Some((s as u64, h.as_slice())),
            _ => None,
        };
        let records = [(job, record)];
        let keyed = jobseal_protocol::audit::verify_records(Some(audit_key), previous, &records);
        let verdict = match keyed_from {
            Some(k) if next >= k => keyed,
            Some(_) => jobseal_protocol::audit::verify_records(None, previous, &records),
            None if keyed.is_ok() => {
                tx.execute("UPDATE devices SET audit_keyed_from = ?1 WHERE device_id = ?2", params![next, dev])?;
                keyed
            }
            None => jobseal_protocol::audit::verify_records(None, previous, &records),
        };
        match verdict {
            Ok(()) => {
                tx.execute("UPDATE audit_records SET chain = 'verified' WHERE record_id = ?1", [record_id])?;
                tx.execute(
                    "UPDATE devices SET audit_verified_seq = ?1, audit_verified_hash = ?2 WHERE device_id = ?3",
                    params![next, hash, dev],
                )?;
            }
            Err(at) => {
                tx.execute("UPDATE audit_records SET chain = 'broken' WHERE record_id = ?1", [record_id])?;
                tx.execute(
                    "UPDATE devices SET audit_broken_at = ?1 WHERE device_id = ?2",
                    params![i64::try_from(at).unwrap_or(next), dev],
                )?;
                return Ok(());
            }
        }
    }
}

/// The pull half of a sync answer.
/// How long dispatch keeps an unused prekey before retiring it: 30 days.
pub const MAX_PREKEY_AGE_MS: i64 = 30 * 24 * 60 * 60 * 1000;

/// The lowest prekey id the device may still need: the lowest one dispatch holds unused, or one
/// a pending envelope is sealed to, whichever is lower; past every id dispatch knows when there is
/// neither. Dispatch always seals to its lowest unused prekey, so everything below is spent.
fn prekey_floor(tx: &Transaction<'_>, device: Uuid) -> Result<Option<u32>, ApiError> {
    let floor: Option<i64> = tx.query_row(
        "SELECT min(x) FROM (
             SELECT min(prekey_id) AS x FROM prekeys WHERE device_id = ?1 AND used_ms IS NULL
             UNION ALL
             SELECT min(CAST(substr(sealed_to, 8) AS INTEGER)) FROM deliveries
                 WHERE device_id = ?1 AND status = 'pending' AND sealed_to LIKE 'prekey:%'
             UNION ALL
             SELECT max(prekey_id) + 1 FROM prekeys WHERE device_id = ?1)",
        [device.to_string()],
        |r| r.get(0),
    )?;
    Ok(floor.and_then(|f| u32::try_from(f).ok()))
}

fn pull(tx: &Transaction<'_>, device: Uuid, acked: Vec<Uuid>, now: i64) -> Result<SyncResponse, ApiError> {
    let dev = device.to_string();
    let mut envelopes = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT job_id, version, envelope FROM deliveries WHERE device_id = ?1 AND status = 'pending'
             ORDER BY delivery_id",
        )?;
        let mut rows = stmt.query([&dev])?;
        let mut budget = 0usize;
        while let Some(r) = rows.next()? {
            let envelope: Vec<u8> = r.get(2)?;
            budget += envelope.len();
            if budget > ENVELOPE_BUDGET && !envelopes.is_empty() {
                break;
            }
            envelopes.push(SealedDelivery {
                job_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                version: crate::service::col_u64(r.get(1)?),
                envelope,
            });
        }
    }
    let mut revocations = Vec::new();
    {
        let mut stmt = tx.prepare_cached(
            "SELECT job_id, reason FROM revocations WHERE device_id = ?1 AND confirmed_ms IS NULL
             ORDER BY queued_ms, job_id",
        )?;
        let mut rows = stmt.query([&dev])?;
        while let Some(r) = rows.next()? {
            revocations.push(Revocation {
                job_id: parse_uuid_column(&r.get::<_, String>(0)?)?,
                reason: crate::service::enum_parse(&r.get::<_, String>(1)?)?,
            });
        }
    }
    // Prekeys unused for too long are retired (never sealed to), so that the device can let
    // them go: a private key kept for months is one more thing a copy of the phone could open.
    tx.execute(
        "UPDATE prekeys SET used_ms = ?1 WHERE device_id = ?2 AND used_ms IS NULL AND added_ms < ?3",
        params![now, dev, now.saturating_sub(MAX_PREKEY_AGE_MS)],
    )?;
    let available = prekeys_available(tx, device)?;
    // Remember when dispatch first asked for prekeys it still lacks (see
    // `identity_sealing_allowed`); forget it once it has enough.
    tx.execute(
        "UPDATE devices SET prekeys_asked_ms = CASE WHEN ?1 THEN coalesce(prekeys_asked_ms, ?2) ELSE NULL END
         WHERE device_id = ?3",
        params![prekeys_wanted(available) > 0, now, dev],
    )?;
    Ok(SyncResponse {
        server_time: time(now),
        acked,
        envelopes,
        revocations,
        prekeys_available: available,
        prekeys_wanted: prekeys_wanted(available),
        prekey_floor: prekey_floor(tx, device)?,
    })
}

//! Device enrolment, prekey top-ups and the operator's device summary (G4).
//!
//! Enrolment is where dispatch learns the keys it will seal to, so it is authenticated (issue
//! 12): a first enrolment proves a one-time code an operator issued ([`crate::enrolment`]), a
//! repeated one proves the identity key dispatch already holds, and neither can be replayed. Every public key arrives through
//! `jobseal_protocol::envelope::PublicKey`'s deserializer, which refuses all-zero, low-order and non-canonical keys,
//! so no weak key can reach the database. Dispatch keeps prekeys' public halves and uses each for
//! at most one envelope, ever (docs/protocol.md section 7.1); a prekey id dispatch has seen is
//! never accepted again, used or not, so a device cannot be made to reuse one.

use crate::enrolment::consume_code;
use crate::error::ApiError;
use crate::operator::{ChainStatus, DeviceJobView, DeviceView, RevocationStatus};
use crate::service::{
    col_u64, delivery_status, device_by_id, device_by_token, new_device_token, now, parse_json, parse_uuid_column,
    token_hash, Service,
};
use crate::store::{found, time};
use axum::http::HeaderMap;
use jobseal_protocol::bundle::BUNDLE_FORMAT;
use jobseal_protocol::enrolment::{seal_answer_token, verify_identity_proof, ENROL_REQUEST_FORMAT, NONCE_LEN};
use jobseal_protocol::wire::{EnrolRequest, EnrolResponse, PrekeysRequest, PrekeysResponse};
use crate::db::{params, OptionalExtension, Tx};
use std::collections::HashSet;
use uuid::Uuid;

/// Most prekeys accepted in one top-up (the core mints at most this many per call).
pub const MAX_PREKEYS_PER_CALL: usize = 500;
/// Most unused prekeys dispatch holds for one device (the core holds at most this many).
pub const MAX_PREKEYS_HELD: u32 = 2000;
/// Below this many unused prekeys, a sync answer asks the device for more.
pub const PREKEY_LOW_WATER: u32 = 5;
/// How many unused prekeys dispatch asks a device to bring it back up to.
pub const PREKEY_TARGET: u32 = 20;

/// How many prekeys to ask a device for, given how many dispatch holds.
pub(crate) fn prekeys_wanted(available: u32) -> u32 {
    if available < PREKEY_LOW_WATER {
        PREKEY_TARGET - available
    } else {
        0
    }
}

/// Records an accepted enrolment request's nonce; 409 if the device used it before (a replay).
/// Every accepted nonce is kept rather than a counter, because the device keeps no enrolment
/// state to count with (its request must be repeatable after a crash or a lost answer); only
/// requests with a valid proof add one, so the list grows only by the device's own enrolments.
fn remember_nonce(tx: &Tx<'_>, device_id: &str, nonce: &[u8], now: i64) -> Result<(), ApiError> {
    let inserted = tx.execute(
        "INSERT INTO enrolment_nonces (device_id, nonce, accepted_ms) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
        params![device_id, nonce, now],
    )?;
    if inserted == 0 {
        return Err(ApiError::conflict("this enrolment request was accepted before; a replay changes nothing"));
    }
    Ok(())
}

/// Unused prekeys held for a device.
pub(crate) fn prekeys_available(tx: &Tx<'_>, device_id: Uuid) -> Result<u32, ApiError> {
    Ok(tx.query_row(
        "SELECT count(*) FROM prekeys WHERE device_id = ?1 AND used_ms IS NULL",
        [device_id.to_string()],
        |r| r.get(0),
    )?)
}

impl Service {
    /// `POST /v1/enrol`.
    ///
    /// The first enrolment of a device id needs a one-time enrolment code's proof
    /// ([`crate::enrolment::consume_code`]) and the identity proof under the bundle's identity
    /// key. Enrolling a known device id again (its answer was lost) needs the identity proof under
    /// the identity key dispatch holds and a nonce dispatch has not seen for the device; it issues
    /// a new token and changes nothing else (prekeys in the request are ignored). Every refusal
    /// changes nothing (the device's token, prekeys and the code stay as they were) except that a
    /// wrong proof for an issued code is counted against it
    /// ([`crate::enrolment::MAX_CODE_FAILURES`]).
    pub(crate) fn enrol(&self, body: &[u8]) -> Result<EnrolResponse, ApiError> {
        let req: EnrolRequest = parse_json(body)?;
        if req.format != ENROL_REQUEST_FORMAT {
            return Err(ApiError::bad_request(format!(
                "format must be {ENROL_REQUEST_FORMAT:?} (this dispatch refuses unauthenticated enrolment; update the app)"
            )));
        }
        let bundle = &req.bundle;
        if bundle.format != BUNDLE_FORMAT {
            return Err(ApiError::bad_request(format!("bundle.format must be {BUNDLE_FORMAT:?}")));
        }
        if bundle.device_id.is_nil() {
            return Err(ApiError::bad_request("bundle.device_id must not be the nil UUID"));
        }
        if bundle.prekeys.len() > MAX_PREKEYS_HELD as usize {
            return Err(ApiError::bad_request(format!("a bundle holds at most {MAX_PREKEYS_HELD} prekeys")));
        }
        let mut ids = HashSet::new();
        if !bundle.prekeys.iter().all(|p| ids.insert(p.id)) {
            return Err(ApiError::bad_request("bundle.prekeys has a repeated id"));
        }
        if req.nonce.len() != NONCE_LEN {
            return Err(ApiError::bad_request(format!("nonce must be {NONCE_LEN} bytes")));
        }
        let proven = |identity: &jobseal_protocol::crypto::PublicKey| {
            verify_identity_proof(self.secret(), identity, &req)
                .map_err(|_| ApiError::bad_request("bundle.identity_key cannot be used"))
        };
        let token = new_device_token()?;
        let now = now();
        // Sealed before the transaction: a failure here leaves nothing to roll back. Bound to
        // the request's nonce and the answer's time, so the device refuses any other answer.
        let sealed_device_token =
            seal_answer_token(self.secret(), &bundle.identity_key, bundle.device_id, &req.nonce, now, &token).map_err(
                |e| match e {
                    // The server's own failure, not the bundle's: a 500, so the device retries.
                    jobseal_protocol::Error::Randomness => ApiError::internal(&e),
                    _ => ApiError::bad_request("bundle.identity_key cannot be used"),
                },
            )?;
        // The inner result is a refusal whose one write (a wrong code counted) must be kept.
        let verdict = self.store.write_serialized(Some(crate::store::ENROLMENT_LOCK), |tx| -> Result<Result<(), ApiError>, ApiError> {
            let id = bundle.device_id.to_string();
            match device_by_id(tx, bundle.device_id)? {
                // The same device enrolling again (its answer was lost). The public bundle is no
                // secret, so only the identity proof counts: without it anyone could rotate the
                // token and lock the device out (issue 12).
                Some(known) => {
                    if known.identity_key != bundle.identity_key {
                        return Err(ApiError::conflict(format!(
                            "device {} is already enrolled with another identity key",
                            bundle.device_id
                        )));
                    }
                    if !proven(&known.identity_key)? {
                        return Err(ApiError::unauthorized(format!(
                            "device {} is already enrolled; enrolling again needs proof of its identity key",
                            bundle.device_id
                        )));
                    }
                    remember_nonce(tx, &id, &req.nonce, now)?;
                    tx.execute(
                        "UPDATE devices SET token_hash = ?2 WHERE device_id = ?1",
                        params![id, token_hash(&token).as_slice()],
                    )?;
                    // No prekey is taken from a repeated enrolment: later prekeys come through
                    // `POST /v1/prekeys`, which needs the device's token, and are capped there.
                }
                None => {
                    if let Err(refused) = consume_code(tx, &req, now)? {
                        return Ok(Err(refused));
                    }
                    if !proven(&bundle.identity_key)? {
                        return Err(ApiError::unauthorized(
                            "the identity proof does not verify (does the device pin another dispatch key?)",
                        ));
                    }
                    tx.execute(
                        // A device enrolled by this protocol keys its audit chain from event 1.
                        "INSERT INTO devices (device_id, identity_key, token_hash, enrolled_ms, audit_keyed_from)
                         VALUES (?1, ?2, ?3, ?4, 1)",
                        params![id, bundle.identity_key.as_bytes().as_slice(), token_hash(&token).as_slice(), now],
                    )?;
                    remember_nonce(tx, &id, &req.nonce, now)?;
                    for p in &bundle.prekeys {
                        tx.execute(
                            "INSERT INTO prekeys (device_id, prekey_id, public_key, added_ms) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT DO NOTHING",
                            params![id, p.id, p.public_key.as_bytes().as_slice(), now],
                        )?;
                    }
                }
            }
            Ok(Ok(()))
        })?;
        verdict?;
        Ok(EnrolResponse {
            device_id: bundle.device_id,
            sealed_device_token,
            dispatch_key: self.public,
            server_time: time(now),
        })
    }

    /// `POST /v1/prekeys`. Returns the answer's body: the [`PrekeysResponse`] authenticated for
    /// the device over the request's nonce (`jobseal_protocol::answer`).
    pub(crate) fn add_prekeys(&self, headers: &HeaderMap, body: &[u8]) -> Result<Vec<u8>, ApiError> {
        self.store.write_serialized(crate::service::device_lock_key(headers), |tx| {
            let device = device_by_token(tx, headers)?;
            let req: PrekeysRequest = crate::service::parse_device_call(body, |r: &PrekeysRequest| &r.nonce)?;
            if req.prekeys.len() > MAX_PREKEYS_PER_CALL {
                return Err(ApiError::bad_request(format!("at most {MAX_PREKEYS_PER_CALL} prekeys per call")));
            }
            let id = device.device_id.to_string();
            let now = now();
            let mut accepted = 0u32;
            for p in &req.prekeys {
                // ON CONFLICT DO NOTHING: an id dispatch already knows, used or not, is never taken again.
                let inserted = tx.execute(
                    "INSERT INTO prekeys (device_id, prekey_id, public_key, added_ms) VALUES (?1, ?2, ?3, ?4)
                             ON CONFLICT DO NOTHING",
                    params![id, p.id, p.public_key.as_bytes().as_slice(), now],
                )?;
                if inserted > 0 {
                    accepted += 1;
                }
            }
            let available = prekeys_available(tx, device.device_id)?;
            if available > MAX_PREKEYS_HELD {
                // Returning the error drops the transaction: nothing of this call is kept.
                return Err(ApiError::bad_request(format!("dispatch holds at most {MAX_PREKEYS_HELD} unused prekeys per device")));
            }
            if accepted > 0 {
                // The device answered dispatch's request: a later shortage asks again before any
                // sheet goes to its identity key.
                tx.execute("UPDATE devices SET prekeys_asked_ms = NULL WHERE device_id = ?1", [&id])?;
            }
            let answer = PrekeysResponse { accepted, available };
            self.seal_answer(&device, jobseal_protocol::answer::AnsweredCall::Prekeys, &req.nonce, &answer)
        })
    }

    /// `GET /v1/operator/devices/{id}`.
    pub(crate) fn device_view(&self, device_id: Uuid) -> Result<DeviceView, ApiError> {
        self.store.read(|tx| device_view(tx, device_id))
    }

    /// The newest `limit` enrolled devices (by enrolment), newest first, each as [`device_view`]
    /// gives it: the console's page of audit chains. One read snapshot.
    pub(crate) fn device_views(&self, limit: u32) -> Result<Vec<DeviceView>, ApiError> {
        self.store.read(|tx| {
            let ids: Vec<String> = {
                let mut stmt =
                    tx.prepare_cached("SELECT device_id FROM devices ORDER BY enrolled_ms DESC, device_id LIMIT ?1")?;
                let rows = stmt.query_map([limit], |r| r.get(0))?;
                rows.collect::<crate::db::Result<_>>()?
            };
            ids.iter().map(|id| device_view(tx, parse_uuid_column(id)?)).collect()
        })
    }
}

/// A device's summary, read inside a transaction.
pub(crate) fn device_view(tx: &Tx<'_>, device_id: Uuid) -> Result<DeviceView, ApiError> {
    let device = found(device_by_id(tx, device_id)?, || format!("device {device_id} is not enrolled"))?;
    let id = device_id.to_string();
    let (enrolled_ms, last_sync_ms, wiped_ms): (i64, Option<i64>, Option<i64>) =
        tx.query_row("SELECT enrolled_ms, last_sync_ms, wiped_ms FROM devices WHERE device_id = ?1", [&id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    let prekeys_used: u32 =
        tx.query_row("SELECT count(*) FROM prekeys WHERE device_id = ?1 AND used_ms IS NOT NULL", [&id], |r| r.get(0))?;
    let sealed_to_identity: u32 = tx.query_row(
        "SELECT count(*) FROM deliveries WHERE device_id = ?1 AND sealed_to = 'identity'",
        [&id],
        |r| r.get(0),
    )?;
    let events_applied: i64 =
        // Keys pruned once they could no longer be replayed still count (`crate::ingest`).
        tx.query_row(
            "SELECT (SELECT count(*) FROM applied_events WHERE device_id = ?1)
                  + (SELECT applied_pruned FROM devices WHERE device_id = ?1)",
            [&id],
            |r| r.get(0),
        )?;

    // The newest delivery of each job ever sealed for the device.
    let mut stmt = tx.prepare_cached(
        "SELECT d.job_id, d.version, d.status, j.device_id = d.device_id,
                (SELECT confirmed_ms IS NOT NULL FROM revocations r WHERE r.job_id = d.job_id AND r.device_id = d.device_id),
                EXISTS (SELECT 1 FROM receipts c WHERE c.job_id = d.job_id AND c.device_id = d.device_id AND c.verified = 1)
         FROM deliveries d JOIN jobs j ON j.job_id = d.job_id
         WHERE d.device_id = ?1
           AND d.version = (SELECT max(version) FROM deliveries e WHERE e.job_id = d.job_id AND e.device_id = d.device_id)
         ORDER BY d.delivery_id",
    )?;
    let rows = stmt.query_map([&id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, Option<bool>>(4)?,
            r.get::<_, bool>(5)?,
        ))
    })?;
    let mut jobs = Vec::new();
    for row in rows {
        let (job, version, status, assigned, confirmed, shred_confirmed) = row?;
        jobs.push(DeviceJobView {
            job_id: parse_uuid_column(&job)?,
            version: col_u64(version),
            assigned,
            delivery: delivery_status(&status)?,
            revocation: confirmed.map(|c| if c { RevocationStatus::Confirmed } else { RevocationStatus::Pending }),
            shred_confirmed,
        });
    }
    Ok(DeviceView {
        device_id,
        identity_key: device.identity_key,
        enrolled_at: time(enrolled_ms),
        last_sync_at: last_sync_ms.map(time),
        wiped_at: wiped_ms.map(time),
        prekeys_available: prekeys_available(tx, device_id)?,
        prekeys_used,
        sealed_to_identity,
        events_applied: col_u64(events_applied),
        jobs,
        audit_chain: chain_status(tx, device_id)?,
    })
}

/// The state of a device's audit chain.
pub(crate) fn chain_status(tx: &Tx<'_>, device_id: Uuid) -> Result<ChainStatus, ApiError> {
    let id = device_id.to_string();
    let row: Option<(i64, Option<i64>)> = tx
        .query_row("SELECT audit_verified_seq, audit_broken_at FROM devices WHERE device_id = ?1", [&id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    let (verified, broken_at) = row.unwrap_or((0, None));
    let (received, pending): (i64, i64) = tx.query_row(
        "SELECT count(*), coalesce(sum(CASE WHEN chain = 'pending' THEN 1 ELSE 0 END), 0) FROM audit_records WHERE device_id = ?1",
        [&id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(ChainStatus {
        device_id,
        events_received: col_u64(received),
        verified_up_to: col_u64(verified),
        pending: col_u64(pending),
        broken_at: broken_at.map(col_u64),
        intact: broken_at.is_none(),
    })
}

//! One-time enrolment codes: issued by an operator, consumed by a device's first enrolment
//! (G4; issue 12).
//!
//! A device's first enrolment must prove it holds a code an operator issued, so that nobody can
//! claim a device id with a bundle of their own. Each code is random (100 bits, in Crockford
//! base32), single use, expires (24 hours by default) and may be bound to one device id. Dispatch
//! keeps only the key derived from the code (`EnrolmentCode::proof_key`), never the code; the
//! code's first group is its public id, which the device sends in clear so that dispatch checks
//! exactly one code rather than trying every live one (which would cost work per live code on
//! every request and make a proof's meaning depend on which codes happen to be live). The proof
//! is compared in constant time, and the code is marked used in the enrolment's own transaction:
//! a failed enrolment leaves it unused, and two enrolments cannot both use it.

use crate::db::{params, OptionalExtension, Tx};
use crate::error::ApiError;
use crate::operator::{CodeStatus, EnrolmentCodeView, EnrolmentCodesView, IssueCodeRequest, IssuedCode};
use crate::service::{now, parse_json, parse_uuid_column, Service};
use crate::store::time;
use jobseal_protocol::enrolment::{verify_code_proof, EnrolmentCode};
use jobseal_protocol::wire::EnrolRequest;

/// How long a code stays usable when the operator does not say.
pub const DEFAULT_CODE_VALIDITY_SECS: u64 = 24 * 60 * 60;
/// The longest validity an operator may ask for.
pub const MAX_CODE_VALIDITY_SECS: u64 = 30 * 24 * 60 * 60;
/// Wrong proofs a code takes before it is locked (revoked) for good: 5. A technician who mistypes
/// the code a few times still enrols; someone guessing gets five tries, not millions (issue 14).
/// The operator issues a new code for a locked one.
pub const MAX_CODE_FAILURES: u32 = 5;

/// What [`consume_code`] decided. The outer `Result` of its return rolls the enrolment back; a
/// refusal inside it is answered after the transaction commits, because a wrong proof is
/// counted against its code ([`MAX_CODE_FAILURES`]) and that count must be kept.
pub(crate) type CodeVerdict = Result<(), ApiError>;

impl Service {
    /// `POST /v1/operator/enrolment-codes`.
    pub(crate) fn issue_code(&self, body: &[u8]) -> Result<IssuedCode, ApiError> {
        let req: IssueCodeRequest = if body.is_empty() { IssueCodeRequest::default() } else { parse_json(body)? };
        let secs = req.valid_for_seconds.unwrap_or(DEFAULT_CODE_VALIDITY_SECS);
        if secs == 0 || secs > MAX_CODE_VALIDITY_SECS {
            return Err(ApiError::bad_request(format!("valid_for_seconds must be 1 to {MAX_CODE_VALIDITY_SECS}")));
        }
        if req.device_id.is_some_and(|d| d.is_nil()) {
            return Err(ApiError::bad_request("device_id must not be the nil UUID"));
        }
        let now = now();
        // secs <= 30 days: the product fits an i64 with room to spare.
        let expires = now.saturating_add(i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX));
        self.store.write_serialized(Some(crate::store::ENROLMENT_LOCK), |tx| {
            // A fresh id may collide with a code already issued (25 bits): draw again.
            for _ in 0..16 {
                let code = EnrolmentCode::generate().map_err(|e| ApiError::internal(&e))?;
                let key = code.proof_key().map_err(|e| ApiError::internal(&e))?;
                let inserted = tx.execute(
                    "INSERT INTO enrolment_codes (code_id, proof_key, device_id, created_ms, expires_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
                    params![code.id(), key.as_slice(), req.device_id.map(|d| d.to_string()), now, expires],
                )?;
                if inserted == 1 {
                    return Ok(IssuedCode {
                        code: code.display().to_string(),
                        code_id: code.id().to_owned(),
                        device_id: req.device_id,
                        expires_at: time(expires),
                    });
                }
            }
            Err(ApiError::internal(&"no free enrolment code id after 16 draws"))
        })
    }

    /// `GET /v1/operator/enrolment-codes`.
    pub(crate) fn list_codes(&self) -> Result<EnrolmentCodesView, ApiError> {
        let now = now();
        self.store.read(|tx| {
            let mut stmt =
                tx.prepare_cached("SELECT code_id FROM enrolment_codes ORDER BY created_ms DESC, code_id")?;
            let ids = stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>, _>>()?;
            let mut codes = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(view) = code_view(tx, &id, now)? {
                    codes.push(view);
                }
            }
            Ok(EnrolmentCodesView { codes })
        })
    }

    /// `POST /v1/operator/enrolment-codes/{code_id}/revoke`: an unused code stops being usable.
    /// Revoking a code already used or revoked changes nothing (the answer shows its state).
    pub(crate) fn revoke_code(&self, code_id: &str) -> Result<EnrolmentCodeView, ApiError> {
        if !EnrolmentCode::is_code_id(code_id) {
            return Err(ApiError::bad_request("a code id is one group of 5 characters (0-9, A-Z without I, L, O, U)"));
        }
        let now = now();
        self.store.write(|tx| {
            tx.execute(
                "UPDATE enrolment_codes SET revoked_ms = ?2 WHERE code_id = ?1 AND used_ms IS NULL AND revoked_ms IS NULL",
                params![code_id, now],
            )?;
            code_view(tx, code_id, now)?.ok_or_else(|| ApiError::not_found(format!("no enrolment code {code_id}")))
        })
    }
}

fn code_view(tx: &Tx<'_>, code_id: &str, now: i64) -> Result<Option<EnrolmentCodeView>, ApiError> {
    type Row = (Option<String>, i64, i64, Option<i64>, Option<String>, Option<i64>);
    let row: Option<Row> = tx
        .query_row(
            "SELECT device_id, created_ms, expires_ms, used_ms, used_by, revoked_ms FROM enrolment_codes
             WHERE code_id = ?1",
            [code_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((device, created, expires, used, used_by, revoked)) = row else { return Ok(None) };
    let status = if used.is_some() {
        CodeStatus::Used
    } else if revoked.is_some() {
        CodeStatus::Revoked
    } else if now >= expires {
        CodeStatus::Expired
    } else {
        CodeStatus::Unused
    };
    Ok(Some(EnrolmentCodeView {
        code_id: code_id.to_owned(),
        status,
        device_id: device.as_deref().map(parse_uuid_column).transpose()?,
        created_at: time(created),
        expires_at: time(expires),
        used_at: used.map(time),
        used_by: used_by.as_deref().map(parse_uuid_column).transpose()?,
        revoked_at: revoked.map(time),
    }))
}

/// Checks the request's code proof and marks the code used by the request's device, inside the
/// enrolment's transaction (an error rolls the mark back with everything else).
///
/// 401 when the request carries no code proof, names no code dispatch issued, or its proof does
/// not verify (a wrong code). 403 when the proof verifies but the code is used, revoked, locked,
/// expired or bound to another device: only the code's holder learns its state.
///
/// A wrong proof for a code dispatch issued is counted against the code, and the code is locked
/// (marked revoked) at [`MAX_CODE_FAILURES`]; that count is the only write of a refused
/// enrolment, which is why the refusal comes back as the inner [`CodeVerdict`] for the caller
/// to answer after committing.
pub(crate) fn consume_code(tx: &Tx<'_>, req: &EnrolRequest, now: i64) -> Result<CodeVerdict, ApiError> {
    let Some(proof) = &req.code else {
        return Err(ApiError::unauthorized(
            "the first enrolment of a device needs an enrolment code from the operator",
        ));
    };
    let wrong = || ApiError::unauthorized("the enrolment code does not match (mistyped, or not issued here)");
    if !EnrolmentCode::is_code_id(&proof.code_id) {
        return Err(wrong());
    }
    type Row = (Vec<u8>, Option<String>, i64, Option<i64>, Option<i64>, i64);
    let row: Option<Row> = tx
        .query_row(
            "SELECT proof_key, device_id, expires_ms, used_ms, revoked_ms, failed_attempts FROM enrolment_codes
             WHERE code_id = ?1",
            [&proof.code_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )
        .optional()?;
    let Some((key, bound, expires, used, revoked, failures)) = row else { return Err(wrong()) };
    let key: [u8; 32] =
        key.as_slice().try_into().map_err(|_| ApiError::internal(&"a stored enrolment code key is unreadable"))?;
    if !verify_code_proof(&key, req) {
        tx.execute(
            "UPDATE enrolment_codes SET failed_attempts = CASE WHEN failed_attempts + 1 < ?2 THEN failed_attempts + 1 ELSE ?2 END,
                 revoked_ms = CASE WHEN failed_attempts + 1 >= ?2 AND used_ms IS NULL
                                   THEN coalesce(revoked_ms, ?3) ELSE revoked_ms END
             WHERE code_id = ?1",
            params![proof.code_id, MAX_CODE_FAILURES, now],
        )?;
        return Ok(Err(wrong()));
    }
    if failures >= i64::from(MAX_CODE_FAILURES) && used.is_none() {
        return Err(ApiError::forbidden(
            "this enrolment code was locked after too many wrong attempts; ask the operator for a new one",
        ));
    }
    if used.is_some() {
        return Err(ApiError::forbidden("this enrolment code was already used"));
    }
    if revoked.is_some() {
        return Err(ApiError::forbidden("this enrolment code was revoked"));
    }
    if now >= expires {
        return Err(ApiError::forbidden("this enrolment code has expired; ask the operator for a new one"));
    }
    let device = req.bundle.device_id.to_string();
    if bound.is_some_and(|b| b != device) {
        return Err(ApiError::forbidden("this enrolment code is for another device"));
    }
    let marked = tx.execute(
        "UPDATE enrolment_codes SET used_ms = ?2, used_by = ?3 WHERE code_id = ?1 AND used_ms IS NULL",
        params![proof.code_id, now, device],
    )?;
    if marked != 1 {
        return Err(ApiError::forbidden("this enrolment code was already used"));
    }
    Ok(Ok(()))
}

//! The sync protocol's messages, shared by the device engine and the reference dispatch server
//! (G5, G6, G7).
//!
//! Plain JSON over HTTP; bytes are hex. Nothing in any device-to-dispatch message carries a
//! customer value: events name jobs, fields and states, reports are the technician's own text,
//! and envelopes only travel the other way. `docs/sync.md` specifies the endpoints.

pub use crate::audit::AuditRecord;
use crate::bundle::{DeviceBundle, Prekey};
use crate::crypto::PublicKey;
use crate::envelope::RecipientKeyId;
use crate::policy::JobState;
use crate::receipt::ShredReceipt;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Path prefix of every endpoint of this protocol version.
pub const API_PREFIX: &str = "/v1";
/// Largest request body dispatch accepts, and the most a device pushes in one request.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Most events a device pushes in one request.
pub const MAX_EVENTS_PER_PUSH: usize = 500;

/// `GET /v1/dispatch-key`: the key devices pin (trust on first use; see docs/sync.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DispatchKeyResponse {
    /// Dispatch's X25519 public key.
    pub dispatch_key: PublicKey,
}

/// `POST /v1/enrol`: a device's public bundle with proofs over it
/// ([`crate::enrolment::build_request`]). The first enrolment of a device id needs a one-time
/// enrolment code's proof; enrolling again (after a lost answer) needs the identity proof under
/// the identity key dispatch already holds, a nonce never used before, and issues a new token
/// that revokes the old one, changing nothing else.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolRequest {
    /// Always [`crate::enrolment::ENROL_REQUEST_FORMAT`]; a request without it (protocol v1, a
    /// bare bundle) is refused.
    #[cfg_attr(feature = "openapi", schema(pattern = "^jobseal\\.enrol\\.v2$"))]
    pub format: String,
    /// The bundle from `jobseal::Vault::enrol` (the core).
    pub bundle: DeviceBundle,
    /// A fresh random nonce ([`crate::enrolment::NONCE_LEN`] bytes), hex: makes each request
    /// unique, so dispatch can refuse a replayed one, and binds the answer to this request.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    pub nonce: Vec<u8>,
    /// Proof of a one-time enrolment code (needed for the first enrolment of a device id).
    pub code: Option<CodeProof>,
    /// HMAC over the request under the identity-proof key (proof of the identity secret), hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    pub identity_proof: Vec<u8>,
}

/// Proof that an enrolment request was made by someone holding an enrolment code. The code
/// itself is never sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CodeProof {
    /// The code's public id (its first group), so dispatch knows which code to check.
    pub code_id: String,
    /// HMAC over the request under the key derived from the code, hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    pub proof: Vec<u8>,
}

/// The answer to an enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EnrolResponse {
    /// The device, as dispatch now knows it.
    pub device_id: Uuid,
    /// Bearer token for every later call, sealed to the device's identity key
    /// ([`crate::enrolment::seal_answer_token`], bound to the request's nonce and `server_time`);
    /// dispatch keeps only its hash. Hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(?:[0-9a-fA-F]{2})*$"))]
    pub sealed_device_token: Vec<u8>,
    /// Dispatch's public key; must equal the one the device pinned.
    pub dispatch_key: PublicKey,
    /// Dispatch's clock.
    pub server_time: DateTime<Utc>,
}

/// `POST /v1/prekeys`: fresh one-time prekeys (ids dispatch already has are ignored).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrekeysRequest {
    /// Public halves.
    pub prekeys: Vec<Prekey>,
    /// A fresh random nonce of [`crate::answer::NONCE_LEN`] bytes, hex: dispatch's answer is
    /// authenticated over it ([`crate::answer`]). Sync protocol 2.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    pub nonce: Vec<u8>,
}

/// The answer to a prekey top-up: the `answer` of a [`crate::answer::AuthenticatedAnswer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrekeysResponse {
    /// Prekeys newly stored.
    pub accepted: u32,
    /// Unused prekeys dispatch now holds for the device.
    pub available: u32,
}

/// `POST /v1/sync`: events the device pushes; the response is the pull.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncRequest {
    /// The device (must match the token).
    pub device_id: Uuid,
    /// Outbox events, oldest first; at most [`MAX_EVENTS_PER_PUSH`].
    pub events: Vec<OutboxEvent>,
    /// A fresh random nonce of [`crate::answer::NONCE_LEN`] bytes, hex: dispatch's answer is
    /// authenticated over it ([`crate::answer`]). Sync protocol 2.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^[0-9a-fA-F]{64}$"))]
    pub nonce: Vec<u8>,
}

/// One outbox event. Dispatch applies each `key` at most once and acknowledges it every time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OutboxEvent {
    /// Idempotency key, a UUID v7 (time-ordered).
    pub key: Uuid,
    /// The device's own order of events (increasing; gaps are normal).
    pub seq: u64,
    /// The job it concerns, if any.
    pub job_id: Option<Uuid>,
    /// Trusted time on the device when the event happened.
    pub at: DateTime<Utc>,
    /// What happened.
    pub body: EventBody,
}

/// What an outbox event says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, strum::IntoStaticStr)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
#[strum(serialize_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventBody {
    /// A sealed sheet was opened and stored.
    Received {
        /// Sheet version.
        version: u64,
        /// The key it was sealed to.
        via: RecipientKeyId,
    },
    /// A sealed sheet was refused; dispatch should stop offering it.
    Rejected {
        /// Sheet version.
        version: u64,
        /// Why, value-free.
        reason: String,
    },
    /// The job changed state.
    State {
        /// Previous state.
        from: JobState,
        /// New state.
        to: JobState,
    },
    /// The technician's completion report.
    Report {
        /// The report text.
        text: String,
    },
    /// One audit event, with its chain hashes so dispatch can verify the chain.
    Audit(AuditRecord),
    /// The shred receipt.
    Receipt(ShredReceipt),
}

impl EventBody {
    /// The event's type, as in its JSON `type` tag (`"received"`, `"rejected"`, `"state"`,
    /// `"report"`, `"audit"`, `"receipt"`).
    pub fn type_name(&self) -> &'static str {
        self.into()
    }
}

/// What dispatch answers to a sync: the `answer` of a [`crate::answer::AuthenticatedAnswer`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    /// Dispatch's clock: the device's trusted-time anchor.
    pub server_time: DateTime<Utc>,
    /// Keys of the pushed events now applied (or applied before).
    pub acked: Vec<Uuid>,
    /// Sealed sheets waiting for the device, offered until it reports them received or rejected.
    pub envelopes: Vec<SealedDelivery>,
    /// Jobs to shred, offered until dispatch has a shred receipt for them.
    pub revocations: Vec<Revocation>,
    /// How many unused prekeys dispatch holds for this device.
    pub prekeys_available: u32,
    /// How many more prekeys dispatch would like (0 when it has enough).
    pub prekeys_wanted: u32,
    /// Every prekey id below this one is spent at dispatch: sealed to (and delivered, refused or
    /// withdrawn) or retired for age, and no envelope still waiting for the device uses one. The
    /// device deletes the private halves it still holds below it, so that an envelope withdrawn
    /// before it arrived can never be opened. `None` before dispatch holds any prekey.
    #[serde(default)]
    pub prekey_floor: Option<u32>,
}

/// One sealed sheet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedDelivery {
    /// The job (also bound inside the envelope).
    pub job_id: Uuid,
    /// The sheet version (also bound inside the envelope).
    pub version: u64,
    /// The envelope bytes, hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(?:[0-9a-fA-F]{2})*$"))]
    pub envelope: Vec<u8>,
}

/// One job dispatch withdraws from the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revocation {
    /// The job.
    pub job_id: Uuid,
    /// Why.
    pub reason: RevocationReason,
}

/// Why a job is withdrawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RevocationReason {
    /// Cancelled by dispatch.
    Cancelled,
    /// Given to another technician.
    Reassigned,
    /// The whole device is being wiped.
    DeviceWiped,
}

/// The body of every 4xx/5xx answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A machine-readable code and a human-readable message (never customer data).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable code, e.g. `unauthorized`, `bad_request`, `not_found`, `too_large`.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;

    /// `type_name` is what dispatch records for each applied event; it must be the JSON tag.
    #[test]
    fn event_type_names_are_the_json_tags() {
        let receipt = ShredReceipt {
            device_id: Uuid::nil(),
            job_id: Uuid::nil(),
            version: 1,
            state: JobState::Completed,
            shredded_at: crate::time::from_ms(0),
            epoch: 2,
            fields_destroyed: 3,
            mac: vec![0; 32],
        };
        let audit = AuditRecord {
            seq: 1,
            at_ms: 0,
            kind: AuditKind::Reveal,
            field: Some("phone".into()),
            state: Some(JobState::OnSite),
            detail: None,
            prev_hash: vec![0; 32],
            hash: vec![1; 32],
        };
        let all = [
            (EventBody::Received { version: 1, via: RecipientKeyId::Identity }, "received"),
            (EventBody::Rejected { version: 1, reason: "stale-version".into() }, "rejected"),
            (EventBody::State { from: JobState::Assigned, to: JobState::EnRoute }, "state"),
            (EventBody::Report { text: "Done.".into() }, "report"),
            (EventBody::Audit(audit), "audit"),
            (EventBody::Receipt(receipt), "receipt"),
        ];
        for (body, name) in all {
            assert_eq!(body.type_name(), name);
            assert_eq!(serde_json::to_value(&body).unwrap()["type"], name);
        }
    }

    /// Audit kinds travel in audit records (and are stored in SQLite and hashed into the chain):
    /// their names must never change, and must be the ones serde writes in JSON.
    #[test]
    fn audit_kind_names_are_the_published_ones() {
        use strum::IntoEnumIterator;
        let names: Vec<&str> = AuditKind::iter().map(AuditKind::as_str).collect();
        assert_eq!(names, ["vault-created", "ingested", "updated", "transition", "reveal", "reveal-denied", "shredded"]);
        for kind in AuditKind::iter() {
            assert_eq!(AuditKind::parse(kind.as_str()), Some(kind));
            assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
        }
        assert_eq!(AuditKind::parse("Reveal"), None);
        assert!(matches!("reveal_denied".parse::<AuditKind>(), Err(crate::Error::InvalidInput(_))));
    }
}

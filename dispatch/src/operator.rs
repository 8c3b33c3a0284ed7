//! The operator API's messages: what a dispatcher's console sends and sees (G7).
//!
//! Device messages are defined once in `jobseal_protocol::wire`; these are dispatch's own. The
//! views exist so that an operator can answer "what happened to this job?" from facts: which key
//! the sheet was sealed to, whether and how the device received it, every state it reported, the
//! audit events it sent and whether its hash chain holds, and whether a verified shred receipt
//! proves the customer data is gone. Views name jobs, devices, fields and states; they do not
//! repeat the customer fields of the sheet, so a view can be shown or logged without exposing
//! them. Every type is plain serde, for Rust callers (the CLI demo, the tests) and JSON alike.

use chrono::{DateTime, Utc};
use jobseal_protocol::audit::{AuditKind, RevealSummary};
use jobseal_protocol::envelope::{PublicKey, RecipientKeyId};
use jobseal_protocol::policy::JobState;
use jobseal_protocol::receipt::ShredReceipt;
use jobseal_protocol::wire::RevocationReason;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /v1/operator/jobs`: assign a job (or a newer version of it) to a device.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobRequest {
    /// The technician's device.
    pub device_id: Uuid,
    /// The job sheet, a JSON object in the `jobseal.sheet.v1` format (docs/job-sheet.md). Its
    /// `job_id` and `version` say which job and which version this is.
    #[schema(value_type = Object)]
    pub sheet: serde_json::Value,
}

/// The answer to a job creation or update.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateJobResponse {
    /// The job.
    pub job_id: Uuid,
    /// The sheet version now queued.
    pub version: u64,
    /// The device it is queued for.
    pub device_id: Uuid,
    /// The device key the envelope is sealed to: a one-time prekey, or the identity key when
    /// dispatch had no prekey left for the device and a sync since it asked for more brought
    /// none. `None`: no prekey is left and the device has not had that chance yet; the sheet is
    /// sealed at its next sync (to a prekey it brings, or else to its identity key).
    pub sealed_to: Option<RecipientKeyId>,
}

/// `POST /v1/operator/jobs/{id}/reassign`: give the job to another device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReassignRequest {
    /// The new device.
    pub device_id: Uuid,
}

/// The answer to a device wipe.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WipeResponse {
    /// The device.
    pub device_id: Uuid,
    /// Jobs newly revoked on it (those without a shred receipt and not already revoked).
    pub revoked_jobs: Vec<Uuid>,
}

/// Where a job stands from dispatch's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Assigned and not finished.
    Open,
    /// Cancelled by the operator.
    Cancelled,
    /// Finished on the device: it reported a terminal state or sent a verified shred receipt.
    Closed,
}

/// Whether a sealed sheet reached the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryStatus {
    /// Queued; offered at every sync.
    Pending,
    /// The device opened and stored it.
    Received,
    /// The device refused it (see `reason`).
    Rejected,
    /// Dispatch stopped offering it before it was received (cancel, reassign, wipe).
    Withdrawn,
    /// A newer version replaced it before it was received.
    Superseded,
}

/// One sealed sheet and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryView {
    /// The device it was sealed for.
    pub device_id: Uuid,
    /// The sheet version.
    pub version: u64,
    /// The key it was sealed to.
    pub sealed_to: RecipientKeyId,
    /// What became of it.
    pub status: DeliveryStatus,
    /// The key the device says it opened it with (when received).
    pub via: Option<RecipientKeyId>,
    /// The device's value-free reason (when rejected).
    pub reason: Option<String>,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When its status last changed.
    pub updated_at: DateTime<Utc>,
}

/// One state change as a device reported it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StateChangeView {
    /// The reporting device.
    pub device_id: Uuid,
    /// Previous state.
    pub from: JobState,
    /// New state.
    pub to: JobState,
    /// Trusted device time of the change.
    pub at: DateTime<Utc>,
    /// The device's event sequence number.
    pub seq: u64,
}

/// The technician's completion report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportView {
    /// The reporting device.
    pub device_id: Uuid,
    /// The report text.
    pub text: String,
    /// Trusted device time of the report.
    pub at: DateTime<Utc>,
}

/// How an audit record fits the device's hash chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChainMark {
    /// Links to the verified chain from the device's first event.
    Verified,
    /// Not verified yet: an earlier event is missing, or the chain broke before it.
    Pending,
    /// Does not fit the chain: altered, reordered, or conflicting with an event already held.
    Broken,
}

/// One audit event a device sent about a job (names and states, never values).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditEntryView {
    /// The device.
    pub device_id: Uuid,
    /// Position in the device's chain.
    pub seq: u64,
    /// What happened.
    pub kind: AuditKind,
    /// The customer field's name, for reveals.
    pub field: Option<String>,
    /// The job's state.
    pub state: Option<JobState>,
    /// A value-free detail.
    pub detail: Option<String>,
    /// For a reveal: the fields it showed and refused (absent for other events and for a reveal
    /// whose detail does not parse; a device before version 0.2 sent one event per field, read
    /// here as a summary of that field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reveal: Option<RevealSummary>,
    /// Trusted device time.
    pub at: DateTime<Utc>,
    /// How it fits the chain.
    pub chain: ChainMark,
}

/// The state of a device's audit hash chain as dispatch has verified it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChainStatus {
    /// The device.
    pub device_id: Uuid,
    /// Audit events received (distinct records).
    pub events_received: u64,
    /// Every event from 1 to this seq is present and linked (0: none yet).
    pub verified_up_to: u64,
    /// Events held but not yet verified (waiting for a missing earlier one, or after a break).
    pub pending: u64,
    /// The seq of the first event that does not fit, if the chain is broken.
    pub broken_at: Option<u64>,
    /// True when nothing received contradicts the chain (`broken_at` is `None`).
    pub intact: bool,
}

/// Whether a revocation has been confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RevocationStatus {
    /// Offered at every sync of the device until a verified receipt arrives.
    Pending,
    /// A verified shred receipt from the device confirmed it.
    Confirmed,
}

/// A job withdrawn from one device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevocationView {
    /// The device the job is withdrawn from.
    pub device_id: Uuid,
    /// Why.
    pub reason: RevocationReason,
    /// Pending or confirmed.
    pub status: RevocationStatus,
    /// When it was queued.
    pub queued_at: DateTime<Utc>,
    /// When a verified receipt confirmed it.
    pub confirmed_at: Option<DateTime<Utc>>,
}

/// A shred receipt as received, with the outcome of its MAC check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptView {
    /// The device that sent it.
    pub device_id: Uuid,
    /// The receipt exactly as received.
    pub receipt: ShredReceipt,
    /// True only if the MAC checks under the key dispatch derives for the sending device, and
    /// the receipt names that device (and the job of the event that carried it).
    pub verified: bool,
    /// When dispatch received it.
    pub received_at: DateTime<Utc>,
}

/// `GET /v1/operator/jobs/{id}`: everything dispatch knows happened to a job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JobView {
    /// The job.
    pub job_id: Uuid,
    /// The current sheet version.
    pub version: u64,
    /// The device the job is assigned to now.
    pub device_id: Uuid,
    /// Dispatch's view of the job.
    pub status: JobStatus,
    /// The state last reported by the assigned device (`None` until it reports one).
    pub state: Option<JobState>,
    /// Every state change reported for the job, by any device that held it, in device order.
    pub history: Vec<StateChangeView>,
    /// The assigned device's completion report.
    pub report: Option<ReportView>,
    /// The newest envelope for the assigned device.
    pub delivery: Option<DeliveryView>,
    /// Every envelope ever sealed for the job, oldest first.
    pub deliveries: Vec<DeliveryView>,
    /// Audit events received about the job, by device and seq.
    pub audit_events: Vec<AuditEntryView>,
    /// The chain status of the assigned device's audit log.
    pub audit_chain: ChainStatus,
    /// The job's latest revocation (the one an operator asks about: after a cancel, the
    /// assigned device's; after a reassign, the previous device's).
    pub revocation: Option<RevocationView>,
    /// Every revocation of the job, one per device it was withdrawn from, oldest first.
    pub revocations: Vec<RevocationView>,
    /// The receipt that settles the job: the assigned device's latest verified one, else the
    /// latest received from any device (check `verified`).
    pub receipt: Option<ReceiptView>,
    /// Every shred receipt received for the job, verified or not, oldest first.
    pub receipts: Vec<ReceiptView>,
    /// When the job was first created.
    pub created_at: DateTime<Utc>,
    /// When the operator last changed it.
    pub updated_at: DateTime<Utc>,
}

/// One job as seen from a device's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceJobView {
    /// The job.
    pub job_id: Uuid,
    /// The newest version sealed for this device.
    pub version: u64,
    /// True if the job is assigned to this device now.
    pub assigned: bool,
    /// What became of the newest envelope for this device.
    pub delivery: DeliveryStatus,
    /// The job's revocation on this device, if any.
    pub revocation: Option<RevocationStatus>,
    /// True if a verified shred receipt for the job came from this device.
    pub shred_confirmed: bool,
}

/// `GET /v1/operator/devices/{id}`: a device's summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceView {
    /// The device.
    pub device_id: Uuid,
    /// Its identity key, as enrolled.
    pub identity_key: PublicKey,
    /// When it enrolled.
    pub enrolled_at: DateTime<Utc>,
    /// When it last synced.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the operator wiped it (no new job is given to a wiped device).
    pub wiped_at: Option<DateTime<Utc>>,
    /// Unused one-time prekeys dispatch holds for it.
    pub prekeys_available: u32,
    /// Prekeys already used for an envelope.
    pub prekeys_used: u32,
    /// Sheets sealed to its identity key because no prekey was left: they have no forward
    /// secrecy (a later theft of the identity key opens them). Non-zero means the device is not
    /// topping up its prekeys; the operator should look at it.
    pub sealed_to_identity: u32,
    /// Outbox events applied from it (idempotency keys recorded).
    pub events_applied: u64,
    /// Every job ever sealed for it.
    pub jobs: Vec<DeviceJobView>,
    /// Its audit chain.
    pub audit_chain: ChainStatus,
}

/// `POST /v1/operator/enrolment-codes`: issue a one-time enrolment code (issue 12).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssueCodeRequest {
    /// The only device the code may enrol; `None`: any device id not enrolled yet.
    #[serde(default)]
    pub device_id: Option<Uuid>,
    /// How long the code stays usable, in seconds (default 24 hours, at most 30 days).
    #[serde(default)]
    pub valid_for_seconds: Option<u64>,
}

/// A freshly issued enrolment code. The code is shown this once: dispatch keeps only a key
/// derived from it. `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuedCode {
    /// The code to give the technician, e.g. `7K2QD-...` (4 groups of 5 characters).
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{5}(-[0-9A-HJKMNP-TV-Z]{5}){3}$")]
    pub code: String,
    /// Its public id (the first group), as listed and revoked.
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{5}$")]
    pub code_id: String,
    /// The only device it may enrol, if bound to one.
    pub device_id: Option<Uuid>,
    /// When it stops being usable.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCode")
            .field("code", &"<redacted>")
            .field("code_id", &self.code_id)
            .field("device_id", &self.device_id)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Where an enrolment code stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CodeStatus {
    /// Usable until it expires.
    Unused,
    /// A device enrolled with it.
    Used,
    /// Not used before its expiry.
    Expired,
    /// Revoked by the operator.
    Revoked,
}

/// One enrolment code as the operator sees it (never the code itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentCodeView {
    /// The code's public id.
    #[schema(pattern = "^[0-9A-HJKMNP-TV-Z]{5}$")]
    pub code_id: String,
    /// Where it stands.
    pub status: CodeStatus,
    /// The only device it may enrol, if bound to one.
    pub device_id: Option<Uuid>,
    /// When it was issued.
    pub created_at: DateTime<Utc>,
    /// When it stops (or stopped) being usable.
    pub expires_at: DateTime<Utc>,
    /// When a device enrolled with it.
    pub used_at: Option<DateTime<Utc>>,
    /// The device that enrolled with it.
    pub used_by: Option<Uuid>,
    /// When the operator revoked it.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// `GET /v1/operator/enrolment-codes`: every code issued, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrolmentCodesView {
    /// The codes.
    pub codes: Vec<EnrolmentCodeView>,
}

//! Records and enums that cross the boundary, and their conversions from the core's types.
//!
//! Conversions only: every decision (policy, lifecycle, trusted time) stays in the core. Times are
//! `i64` milliseconds since the Unix epoch (UTC), named `..._ms`; job and device ids are UUID
//! strings. Nothing here carries a customer value except [`FieldAccess::Visible`], whose
//! `toString()` / `description` is redacted.

use crate::error::JobsealError;
use chrono::{DateTime, Utc};
use std::fmt;
use uuid::Uuid;

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

/// Parses a job id, without echoing the input in the error.
pub(crate) fn parse_job_id(s: &str) -> Result<Uuid, JobsealError> {
    Uuid::parse_str(s.trim()).map_err(|_| JobsealError::invalid("job id must be a UUID"))
}

/// Where a job is in its life. The last four are terminal: entering any of them shreds the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum JobState {
    /// Received and waiting; the technician has not set out.
    Assigned,
    /// The technician is on the way.
    EnRoute,
    /// The technician is at the customer's site.
    OnSite,
    /// Closed by the technician with a completion report.
    Completed,
    /// Cancelled by the technician.
    Cancelled,
    /// Withdrawn by dispatch (cancelled upstream, reassigned, or the device wiped).
    Revoked,
    /// The hard expiry passed while the job was still open.
    Expired,
}

impl From<jobseal::JobState> for JobState {
    fn from(s: jobseal::JobState) -> Self {
        use jobseal::JobState as S;
        match s {
            S::Assigned => JobState::Assigned,
            S::EnRoute => JobState::EnRoute,
            S::OnSite => JobState::OnSite,
            S::Completed => JobState::Completed,
            S::Cancelled => JobState::Cancelled,
            S::Revoked => JobState::Revoked,
            S::Expired => JobState::Expired,
        }
    }
}

impl From<JobState> for jobseal::JobState {
    fn from(s: JobState) -> Self {
        use jobseal::JobState as S;
        match s {
            JobState::Assigned => S::Assigned,
            JobState::EnRoute => S::EnRoute,
            JobState::OnSite => S::OnSite,
            JobState::Completed => S::Completed,
            JobState::Cancelled => S::Cancelled,
            JobState::Revoked => S::Revoked,
            JobState::Expired => S::Expired,
        }
    }
}

fn states(v: Vec<jobseal::JobState>) -> Vec<JobState> {
    v.into_iter().map(Into::into).collect()
}

/// What a customer field holds; lets the app choose how to present it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, uniffi::Enum)]
pub enum FieldKind {
    /// A person's name.
    Name,
    /// A direct phone number; prefer a relay number.
    Phone,
    /// A masked relay number that dispatch can turn off after the job.
    RelayPhone,
    /// An email address.
    Email,
    /// A postal address.
    Address,
    /// Floor, staircase, flat.
    Floor,
    /// A door or gate code.
    DoorCode,
    /// Free-text note about the customer or the site.
    Note,
    /// Any other text.
    Text,
}

impl From<jobseal::FieldKind> for FieldKind {
    fn from(k: jobseal::FieldKind) -> Self {
        use jobseal::FieldKind as K;
        match k {
            K::Name => FieldKind::Name,
            K::Phone => FieldKind::Phone,
            K::RelayPhone => FieldKind::RelayPhone,
            K::Email => FieldKind::Email,
            K::Address => FieldKind::Address,
            K::Floor => FieldKind::Floor,
            K::DoorCode => FieldKind::DoorCode,
            K::Note => FieldKind::Note,
            K::Text => FieldKind::Text,
        }
    }
}

/// Why a customer field is not shown.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum DenialReason {
    /// The access window has not opened yet.
    NotYetOpen {
        /// When it opens.
        opens_at_ms: i64,
    },
    /// The access window has closed.
    WindowClosed {
        /// When it closed.
        closed_at_ms: i64,
    },
    /// The job is not in a state this field may be shown in.
    WrongState {
        /// The job's state.
        state: JobState,
        /// The states the field's policy allows.
        allowed: Vec<JobState>,
    },
    /// The job ended and its customer data was destroyed.
    Shredded {
        /// The terminal state.
        state: JobState,
    },
}

impl From<jobseal::Denial> for DenialReason {
    fn from(d: jobseal::Denial) -> Self {
        use jobseal::Denial as D;
        match d {
            D::NotYetOpen { opens_at } => DenialReason::NotYetOpen { opens_at_ms: ms(opens_at) },
            D::WindowClosed { closed_at } => DenialReason::WindowClosed { closed_at_ms: ms(closed_at) },
            D::WrongState { state, allowed } => {
                DenialReason::WrongState { state: state.into(), allowed: states(allowed) }
            }
            D::Shredded { state } => DenialReason::Shredded { state: state.into() },
        }
    }
}

impl From<DenialReason> for jobseal::Denial {
    fn from(d: DenialReason) -> Self {
        use jobseal::Denial as D;
        let at = jobseal::clock::from_ms;
        match d {
            DenialReason::NotYetOpen { opens_at_ms } => D::NotYetOpen { opens_at: at(opens_at_ms) },
            DenialReason::WindowClosed { closed_at_ms } => D::WindowClosed { closed_at: at(closed_at_ms) },
            DenialReason::WrongState { state, allowed } => {
                D::WrongState { state: state.into(), allowed: allowed.into_iter().map(Into::into).collect() }
            }
            DenialReason::Shredded { state } => D::Shredded { state: state.into() },
        }
    }
}

impl fmt::Display for DenialReason {
    /// The core's wording, so that logs read the same on every platform.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        jobseal::Denial::from(self.clone()).fmt(f)
    }
}

/// The appointment slot.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ScheduledWindow {
    /// Start of the slot.
    pub start_ms: i64,
    /// End of the slot.
    pub end_ms: i64,
}

/// The times that bound a job's access to its customer data.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AccessWindow {
    /// First instant a field may be shown: the scheduled start less the opening margin.
    pub opens_at_ms: i64,
    /// First instant no field may be shown: the scheduled end plus the closing margin.
    pub closes_at_ms: i64,
    /// The job shreds itself at or after this instant, whatever its state.
    pub hard_expiry_ms: i64,
}

/// What is to be done on site (no customer data).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct WorkDetails {
    /// One-line description.
    pub summary: String,
    /// Steps.
    pub tasks: Vec<String>,
    /// Equipment to bring.
    pub equipment: Vec<String>,
}

/// A customer field described without its value.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct FieldInfo {
    /// The field's machine name (e.g. `door_code`).
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// States in which it may be shown.
    pub reveal_in: Vec<JobState>,
}

/// Which device key a sealed sheet came to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum Delivery {
    /// A one-time prekey, deleted once the sheet was opened (forward secrecy).
    Prekey {
        /// The prekey's id.
        id: u32,
    },
    /// The long-term identity key: dispatch had no prekey left (no forward secrecy).
    Identity,
}

/// A job without its customer values: safe to list, show, log and keep after the close.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct JobInfo {
    /// The job's id (UUID).
    pub job_id: String,
    /// Sheet version held.
    pub version: u64,
    /// Dispatch's work-order reference.
    pub work_order: String,
    /// Current state.
    pub state: JobState,
    /// The appointment slot.
    pub window: ScheduledWindow,
    /// The access window and hard expiry.
    pub access: AccessWindow,
    /// What is to be done (absent once the job is shredded).
    pub work: Option<WorkDetails>,
    /// Coarse site area, e.g. a district (absent once the job is shredded).
    pub site_area: Option<String>,
    /// The customer fields' names, kinds and policies (empty once the job is shredded).
    pub fields: Vec<FieldInfo>,
    /// When the sheet was first stored.
    pub received_at_ms: i64,
    /// When the job last changed.
    pub updated_at_ms: i64,
    /// The technician's completion report, kept after the close.
    pub report: Option<String>,
    /// When the customer data was destroyed; absent while the job is live.
    pub shredded_at_ms: Option<i64>,
    /// Which device key the sealed sheet came to; absent for a sheet ingested in plaintext.
    pub delivered_via: Option<Delivery>,
}

impl From<jobseal::JobInfo> for JobInfo {
    fn from(j: jobseal::JobInfo) -> Self {
        JobInfo {
            job_id: j.job_id.to_string(),
            version: j.version,
            work_order: j.work_order,
            state: j.state.into(),
            window: ScheduledWindow { start_ms: ms(j.window.start), end_ms: ms(j.window.end) },
            access: AccessWindow {
                opens_at_ms: ms(j.access.opens_at),
                closes_at_ms: ms(j.access.closes_at),
                hard_expiry_ms: ms(j.access.hard_expiry),
            },
            work: j.work.map(|w| WorkDetails { summary: w.summary, tasks: w.tasks, equipment: w.equipment }),
            site_area: j.site_area,
            fields: j
                .fields
                .into_iter()
                .map(|f| FieldInfo { name: f.name, kind: f.kind.into(), reveal_in: states(f.reveal_in) })
                .collect(),
            received_at_ms: ms(j.received_at),
            updated_at_ms: ms(j.updated_at),
            report: j.report,
            shredded_at_ms: j.shredded_at.map(ms),
            delivered_via: j.delivered_via.map(|v| match v {
                jobseal::RecipientKeyId::Prekey(id) => Delivery::Prekey { id },
                jobseal::RecipientKeyId::Identity => Delivery::Identity,
            }),
        }
    }
}

/// Whether a field is shown, and for how long.
///
/// `toString()` (Kotlin) and `description` (Swift) never print the value.
#[derive(Clone, PartialEq, Eq, uniffi::Enum)]
#[uniffi::export(Display)]
pub enum FieldAccess {
    /// Shown. Display it, then drop the reference quickly; never copy it to the clipboard,
    /// logs, analytics or crash reports.
    Visible {
        /// The customer value.
        value: String,
        /// When it stops being visible: hide it at this instant even if the screen stays open.
        until_ms: i64,
    },
    /// Not shown, and why.
    Hidden {
        /// Why.
        reason: DenialReason,
    },
}

impl fmt::Display for FieldAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldAccess::Visible { until_ms, .. } => write!(f, "Visible(value=<redacted>, untilMs={until_ms})"),
            FieldAccess::Hidden { reason } => write!(f, "Hidden({reason})"),
        }
    }
}

impl fmt::Debug for FieldAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// One customer field of a [`Reveal`].
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RevealedField {
    /// The field's machine name.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// The value and until when it is visible, or why it is hidden.
    pub access: FieldAccess,
}

/// Everything a job screen needs, from one call: every customer field of the job, each shown or
/// refused with the reason. Every field shown and refused was recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Reveal {
    /// The job's id.
    pub job_id: String,
    /// Its state at the reveal.
    pub state: JobState,
    /// Trusted time of the reveal.
    pub at_ms: i64,
    /// One entry per customer field, in sheet order.
    pub fields: Vec<RevealedField>,
}

impl From<jobseal::Reveal> for Reveal {
    fn from(r: jobseal::Reveal) -> Self {
        Reveal {
            job_id: r.job_id.to_string(),
            state: r.state.into(),
            at_ms: ms(r.at),
            fields: r
                .fields
                .into_iter()
                .map(|f| RevealedField {
                    name: f.name,
                    kind: f.kind.into(),
                    access: match f.access {
                        jobseal::FieldAccess::Visible { value, until } => {
                            FieldAccess::Visible { value: value.into_inner(), until_ms: ms(until) }
                        }
                        jobseal::FieldAccess::Hidden(denial) => FieldAccess::Hidden { reason: denial.into() },
                    },
                })
                .collect(),
        }
    }
}

/// What a shred destroyed. Dispatch receives a signed receipt made from the same facts.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ShredOutcome {
    /// The job's id.
    pub job_id: String,
    /// The sheet version whose data was destroyed.
    pub version: u64,
    /// The terminal state.
    pub state: JobState,
    /// Trusted time of the shred.
    pub shredded_at_ms: i64,
    /// The key epoch in force after the shred; the previous epoch's key is deleted.
    pub epoch: u64,
    /// Number of sealed customer fields deleted.
    pub fields_destroyed: u32,
}

impl From<jobseal::ShredOutcome> for ShredOutcome {
    fn from(o: jobseal::ShredOutcome) -> Self {
        ShredOutcome {
            job_id: o.job_id.to_string(),
            version: o.version,
            state: o.state.into(),
            shredded_at_ms: ms(o.shredded_at),
            epoch: o.epoch,
            fields_destroyed: o.fields_destroyed,
        }
    }
}

/// The device's public bundle: who it is and the keys dispatch may seal sheets to.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DeviceBundle {
    /// The device's id (UUID).
    pub device_id: String,
    /// The identity public key, 64 hex characters.
    pub identity_key_hex: String,
    /// Ids of the unused one-time prekeys.
    pub prekey_ids: Vec<u32>,
    /// The whole bundle as the JSON document dispatch takes (`jobseal.bundle.v1`).
    pub json: String,
}

impl TryFrom<jobseal::DeviceBundle> for DeviceBundle {
    type Error = JobsealError;

    fn try_from(b: jobseal::DeviceBundle) -> Result<Self, JobsealError> {
        let json = serde_json::to_string(&b)
            .map_err(|_| JobsealError::Internal { detail: "device bundle does not serialize".into() })?;
        Ok(DeviceBundle {
            device_id: b.device_id.to_string(),
            identity_key_hex: b.identity_key.to_string(),
            prekey_ids: b.prekeys.iter().map(|p| p.id).collect(),
            json,
        })
    }
}

/// A dispatch key pair, for tests and for backends that seal with this library.
/// `toString()` / `description` shows the public key only.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Display)]
pub struct DispatchKeyPair {
    /// The secret key, 64 hex characters. Whoever holds it can seal sheets as dispatch.
    pub secret_key_hex: String,
    /// The public key devices pin, 64 hex characters.
    pub public_key_hex: String,
}

impl fmt::Display for DispatchKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DispatchKeyPair(publicKeyHex={}, secretKeyHex=<redacted>)", self.public_key_hex)
    }
}

impl fmt::Debug for DispatchKeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// What an audit event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum AuditKind {
    /// The vault was created.
    VaultCreated,
    /// A job sheet was stored.
    Ingested,
    /// A newer version of a live job's sheet replaced the old one.
    Updated,
    /// The job changed state.
    Transition,
    /// A customer field was shown.
    Reveal,
    /// A customer field was asked for and refused.
    RevealDenied,
    /// The job's customer data was destroyed.
    Shredded,
}

impl From<jobseal::AuditKind> for AuditKind {
    fn from(k: jobseal::AuditKind) -> Self {
        use jobseal::AuditKind as K;
        match k {
            K::VaultCreated => AuditKind::VaultCreated,
            K::Ingested => AuditKind::Ingested,
            K::Updated => AuditKind::Updated,
            K::Transition => AuditKind::Transition,
            K::Reveal => AuditKind::Reveal,
            K::RevealDenied => AuditKind::RevealDenied,
            K::Shredded => AuditKind::Shredded,
        }
    }
}

/// One event of the hash-chained audit log. Names fields and states, never values.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditEvent {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Trusted time of the event.
    pub at_ms: i64,
    /// The job it concerns, if any.
    pub job_id: Option<String>,
    /// What happened.
    pub kind: AuditKind,
    /// The customer field's name, for the per-field reveal events of vaults before version 0.2
    /// (whose one field is also given in `fields_shown` or `fields_refused`).
    pub field: Option<String>,
    /// The job's state.
    pub state: Option<JobState>,
    /// A value-free detail such as "assigned -> en-route"; for a reveal, the fields shown and
    /// refused in one line (also given typed in `fields_shown` and `fields_refused`).
    pub detail: Option<String>,
    /// For a reveal: the names of the fields it showed, in sheet order. Empty for other events.
    pub fields_shown: Vec<String>,
    /// For a reveal: the fields it refused and why, in sheet order. Empty for other events.
    pub fields_refused: Vec<RefusedField>,
    /// This event's chain hash, hex.
    pub hash: String,
}

/// A field a reveal refused, and the refusal's code (`not-yet-open`, `window-closed`,
/// `wrong-state`, `shredded`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RefusedField {
    /// The field's name.
    pub name: String,
    /// Why it was not shown.
    pub reason: String,
}

impl From<jobseal::AuditEvent> for AuditEvent {
    fn from(e: jobseal::AuditEvent) -> Self {
        let summary = e.reveal_summary().unwrap_or_default();
        AuditEvent {
            fields_shown: summary.shown,
            fields_refused: summary.refused.into_iter().map(|(name, reason)| RefusedField { name, reason }).collect(),
            seq: e.seq,
            at_ms: ms(e.at),
            job_id: e.job_id.map(|j| j.to_string()),
            kind: e.kind.into(),
            field: e.field,
            state: e.state.map(Into::into),
            detail: e.detail,
            hash: e.hash,
        }
    }
}

/// The outcome of checking the audit chain end to end.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AuditVerification {
    /// Number of events checked.
    pub events: u64,
    /// True when every event and the chain head agree.
    pub valid: bool,
    /// The first event found wrong (0 when the head itself is wrong).
    pub broken_at: Option<u64>,
    /// What was wrong, when something was.
    pub problem: Option<String>,
    /// The chain head's hash, hex.
    pub head: String,
}

impl From<jobseal::AuditVerification> for AuditVerification {
    fn from(v: jobseal::AuditVerification) -> Self {
        AuditVerification { events: v.events, valid: v.valid, broken_at: v.broken_at, problem: v.problem, head: v.head }
    }
}

/// A sealed sheet that a sync refused.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RejectedSheet {
    /// The job's id.
    pub job_id: String,
    /// Why (a code such as `tampered` or `stale-version`).
    pub reason: String,
}

/// What one sync did.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Request/response rounds made.
    pub rounds: u32,
    /// Events pushed (counting repeats of unacknowledged ones).
    pub pushed: u32,
    /// Events dispatch acknowledged and the outbox dropped.
    pub acknowledged: u32,
    /// Jobs whose sealed sheet was received and stored.
    pub received: Vec<String>,
    /// Sealed sheets refused, with the reason.
    pub rejected: Vec<RejectedSheet>,
    /// Jobs shredded because dispatch withdrew them.
    pub revoked: Vec<ShredOutcome>,
    /// Prekeys uploaded because dispatch ran low.
    pub prekeys_uploaded: u32,
    /// Dispatch's clock at the last answer.
    pub server_time_ms: Option<i64>,
    /// Events still waiting in the outbox.
    pub pending: u64,
}

impl From<jobseal::SyncReport> for SyncReport {
    fn from(r: jobseal::SyncReport) -> Self {
        SyncReport {
            rounds: r.rounds,
            pushed: r.pushed,
            acknowledged: r.acknowledged,
            received: r.received.iter().map(Uuid::to_string).collect(),
            rejected: r
                .rejected
                .into_iter()
                .map(|(id, reason)| RejectedSheet { job_id: id.to_string(), reason })
                .collect(),
            revoked: r.revoked.into_iter().map(Into::into).collect(),
            prekeys_uploaded: r.prekeys_uploaded,
            server_time_ms: r.server_time.map(ms),
            pending: r.pending,
        }
    }
}

/// The outbox and the health of sync, for a status screen and for scheduling.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncStatus {
    /// Whether the device is enrolled with dispatch.
    pub enrolled: bool,
    /// Events waiting for dispatch.
    pub pending_events: u64,
    /// Last sync that reached dispatch.
    pub last_success_at_ms: Option<i64>,
    /// Failed syncs since the last success.
    pub consecutive_failures: u32,
    /// When the next automatic attempt is due (backoff after failures); absent when due now.
    pub next_attempt_at_ms: Option<i64>,
}

impl From<jobseal::SyncStatus> for SyncStatus {
    fn from(s: jobseal::SyncStatus) -> Self {
        SyncStatus {
            enrolled: s.enrolled,
            pending_events: s.pending_events,
            last_success_at_ms: s.last_success_at.map(ms),
            consecutive_failures: s.consecutive_failures,
            next_attempt_at_ms: s.next_attempt_at.map(ms),
        }
    }
}

/// A header of an [`HttpRequest`]. `toString()` / `description` hides the value.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Display)]
pub struct HttpHeader {
    /// Lowercase name.
    pub name: String,
    /// Value. The `authorization` header carries the device token: never log it.
    pub value: String,
}

/// An HTTP request for the platform transport to send to dispatch. `toString()` /
/// `description` shows the method and path only.
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Display)]
pub struct HttpRequest {
    /// "GET" or "POST".
    pub method: String,
    /// Path and query, starting with `/v1/`, relative to the dispatch base URL.
    pub path: String,
    /// Headers to send (content type, authorization).
    pub headers: Vec<HttpHeader>,
    /// The body (JSON), empty for GET. Never log it: it holds completion reports.
    pub body: Vec<u8>,
}

impl fmt::Display for HttpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: <redacted>", self.name)
    }
}

impl fmt::Debug for HttpHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpRequest({} {}, {} body bytes)", self.method, self.path, self.body.len())
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<jobseal::HttpRequest> for HttpRequest {
    fn from(r: jobseal::HttpRequest) -> Self {
        HttpRequest {
            method: r.method,
            path: r.path,
            headers: r.headers.into_iter().map(|(name, value)| HttpHeader { name, value }).collect(),
            body: r.body,
        }
    }
}

/// Dispatch's answer, whatever its status. `toString()` / `description` shows the status only
/// (an enrolment answer's body holds the device token).
#[derive(Clone, PartialEq, Eq, uniffi::Record)]
#[uniffi::export(Display)]
pub struct HttpResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

impl fmt::Display for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HttpResponse({}, {} body bytes)", self.status, self.body.len())
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl From<HttpResponse> for jobseal::HttpResponse {
    fn from(r: HttpResponse) -> Self {
        jobseal::HttpResponse { status: r.status, body: r.body }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_states_round_trip_through_the_core() {
        for s in jobseal::JobState::ALL {
            assert_eq!(jobseal::JobState::from(JobState::from(s)), s);
        }
    }

    #[test]
    fn denial_reasons_round_trip_and_read_like_the_core() {
        let t = jobseal::clock::from_ms(1_900_000_000_000);
        let denials = [
            jobseal::Denial::NotYetOpen { opens_at: t },
            jobseal::Denial::WindowClosed { closed_at: t },
            jobseal::Denial::WrongState { state: jobseal::JobState::EnRoute, allowed: vec![jobseal::JobState::OnSite] },
            jobseal::Denial::Shredded { state: jobseal::JobState::Completed },
        ];
        for d in denials {
            let ours = DenialReason::from(d.clone());
            assert_eq!(ours.to_string(), d.to_string());
            assert_eq!(jobseal::Denial::from(ours), d);
        }
    }

    #[test]
    fn a_visible_value_never_prints() {
        let a = FieldAccess::Visible { value: "CANARY-VALUE".into(), until_ms: 5 };
        let f = RevealedField { name: "phone".into(), kind: FieldKind::Phone, access: a.clone() };
        for shown in [a.to_string(), format!("{a:?}"), format!("{f:?}")] {
            assert!(!shown.contains("CANARY"), "{shown}");
        }
    }

    #[test]
    fn bad_job_ids_are_refused_without_echo() {
        let e = parse_job_id("not-a-uuid-CANARY").unwrap_err();
        assert!(matches!(e, JobsealError::InvalidInput { .. }));
        assert!(!e.to_string().contains("CANARY"));
        assert!(parse_job_id("4f1c2b8e-7d3a-4c59-9e21-6a0b5d8f3c17").is_ok());
    }
}

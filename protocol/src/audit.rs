//! The append-only, hash-chained audit log (G2, G7).
//!
//! Every reveal, state change and shred appends one event. A reveal is one event whatever the
//! number of fields: its detail is a [`RevealSummary`] naming the fields shown and the fields
//! refused, with the refusal's code. Each event's hash
//! covers its content and the previous event's hash, and the head of the chain is kept apart in
//! `meta`, so editing, removing or reordering any event, or cutting the tail, is found by
//! [`verify_records`] (and the device's own check). Events name fields and states, never values: the log is meant to leave the phone
//! (it is synced to dispatch) and to outlive the job.
//!
//! This module is the chain's pure logic (what an event is, how it is hashed, how a run of events
//! is checked), shared by the device and dispatch. The journal stores events; dispatch verifies
//! what devices push with [`verify_records`].
//!
//! Once a device is enrolled its chain is keyed: each link is an HMAC-SHA256 under an
//! [`AuditKey`] that only the device (from its identity key) and dispatch (from its own key) can
//! derive. A rooted technician who rewrites events not yet synced and recomputes the links with
//! plain SHA-256, as the unkeyed chain would allow, produces links dispatch refuses.

use crate::crypto::Aad;
use crate::crypto::{PublicKey, SecretKey};
use hmac::{Hmac, Mac};
use zeroize::Zeroizing;
use crate::policy::JobState;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev_hash` of the first event of a chain.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// What an audit event records. Its kebab-case names are stored in SQLite, hashed into the chain
/// and sent on the wire; serde and strum derive the same ones.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::EnumIter,
)]
#[serde(rename_all = "kebab-case")]
#[strum(serialize_all = "kebab-case", parse_err_ty = crate::Error, parse_err_fn = unknown_audit_kind)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditKind {
    /// The vault was created.
    VaultCreated,
    /// A job sheet was stored.
    Ingested,
    /// A newer version of a live job's sheet replaced the old one.
    Updated,
    /// The job changed state.
    Transition,
    /// A reveal showed at least one customer field (its detail is a [`RevealSummary`]). Chains
    /// written before version 0.2 hold one such event per field shown, naming it in `field`.
    Reveal,
    /// A reveal showed no customer field (its detail is a [`RevealSummary`] of the refusals).
    /// Chains written before version 0.2 hold one such event per field refused.
    RevealDenied,
    /// The job's customer data was destroyed.
    Shredded,
}

impl AuditKind {
    /// The stable name stored in the database and hashed into the chain.
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// The kind named `s`, if any.
    pub fn parse(s: &str) -> Option<Self> {
        s.parse().ok()
    }
}

/// The error of parsing a kind name that is none of the kebab-case names (`FromStr`, derived).
fn unknown_audit_kind(_: &str) -> crate::Error {
    crate::Error::InvalidInput("unknown audit event kind".into())
}

/// One event to append; the log assigns its sequence number and hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Trusted time of the event.
    pub at_ms: i64,
    /// The job it concerns, if any.
    pub job_id: Option<Uuid>,
    /// What happened.
    pub kind: AuditKind,
    /// The customer field's name, for reveals.
    pub field: Option<String>,
    /// The job's state when it happened (after it, for transitions and shreds).
    pub state: Option<JobState>,
    /// A value-free detail such as "assigned -> en-route" or a refusal reason.
    pub detail: Option<String>,
}

impl NewEvent {
    /// An event of `kind` about `job` at `at_ms`.
    pub fn job(at_ms: i64, job: Uuid, kind: AuditKind, state: JobState) -> Self {
        NewEvent { at_ms, job_id: Some(job), kind, field: None, state: Some(state), detail: None }
    }

    /// The one event of a reveal of `job` in `state`: [`AuditKind::Reveal`] when a field was
    /// shown, [`AuditKind::RevealDenied`] when none was.
    pub fn reveal(at_ms: i64, job: Uuid, state: JobState, summary: &RevealSummary) -> Self {
        let kind = if summary.shown.is_empty() { AuditKind::RevealDenied } else { AuditKind::Reveal };
        NewEvent::job(at_ms, job, kind, state).detail(summary.to_detail())
    }

    /// Adds a field name.
    pub fn field(mut self, name: &str) -> Self {
        self.field = Some(name.to_owned());
        self
    }

    /// Adds a detail.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// What one reveal decided, field by field: the names shown and the names refused with the
/// refusal's code (`not-yet-open`, `window-closed`, `wrong-state`, `shredded`). Names and codes,
/// never values. Stored as a reveal event's detail in one line that people and programs both read:
/// `shown: name, phone; refused: door_code (not-yet-open)`, with `-` for an empty list. Field
/// names have the sheet format's shape (`sheet::is_field_name`), so the line is unambiguous.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RevealSummary {
    /// Fields shown, in sheet order.
    pub shown: Vec<String>,
    /// Fields refused and why, in sheet order.
    pub refused: Vec<(String, String)>,
}

impl RevealSummary {
    /// The event detail line.
    pub fn to_detail(&self) -> String {
        let list = |items: Vec<String>| if items.is_empty() { "-".to_owned() } else { items.join(", ") };
        format!(
            "shown: {}; refused: {}",
            list(self.shown.clone()),
            list(self.refused.iter().map(|(n, why)| format!("{n} ({why})")).collect())
        )
    }

    /// Reads a detail line written by [`RevealSummary::to_detail`]; `None` for anything else
    /// (including the per-field reveal events of older chains).
    pub fn parse(detail: &str) -> Option<Self> {
        let rest = detail.strip_prefix("shown: ")?;
        let (shown, refused) = rest.split_once("; refused: ")?;
        let items = |s: &str| -> Vec<String> {
            if s == "-" {
                Vec::new()
            } else {
                s.split(", ").map(str::to_owned).collect()
            }
        };
        let name_ok = crate::sheet::is_field_name;
        let shown = items(shown);
        let mut out = Vec::new();
        for item in items(refused) {
            let (name, why) = item.split_once(" (")?;
            let why = why.strip_suffix(')')?;
            if !name_ok(name) || why.is_empty() || !why.bytes().all(|c| c.is_ascii_lowercase() || c == b'-') {
                return None;
            }
            out.push((name.to_owned(), why.to_owned()));
        }
        if !shown.iter().all(|n| name_ok(n)) {
            return None;
        }
        Some(RevealSummary { shown, refused: out })
    }
}

/// An event as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Position in the chain, from 1.
    pub seq: u64,
    /// Trusted time of the event.
    pub at: DateTime<Utc>,
    /// The job it concerns, if any.
    pub job_id: Option<Uuid>,
    /// What happened.
    pub kind: AuditKind,
    /// The customer field's name, for reveals.
    pub field: Option<String>,
    /// The job's state.
    pub state: Option<JobState>,
    /// A value-free detail.
    pub detail: Option<String>,
    /// This event's chain hash, hex.
    pub hash: String,
}

impl AuditEvent {
    /// The fields a reveal event showed and refused; `None` for other events and for a reveal
    /// whose detail does not parse. A per-field reveal event of a chain written before version
    /// 0.2 reads as a summary of its one field.
    pub fn reveal_summary(&self) -> Option<RevealSummary> {
        reveal_summary(self.kind, self.field.as_deref(), self.detail.as_deref())
    }
}

impl AuditRecord {
    /// The fields a reveal record showed and refused, as [`AuditEvent::reveal_summary`].
    pub fn reveal_summary(&self) -> Option<RevealSummary> {
        reveal_summary(self.kind, self.field.as_deref(), self.detail.as_deref())
    }
}

/// What a reveal event (new or pre-0.2 form) showed and refused, from its kind, field and detail;
/// `None` for other events and for a detail that does not parse.
pub fn reveal_summary(kind: AuditKind, field: Option<&str>, detail: Option<&str>) -> Option<RevealSummary> {
    match (kind, field) {
        // Before 0.2: one event per field, its name in `field`, a refusal's code in `detail`.
        (AuditKind::Reveal, Some(name)) => Some(RevealSummary { shown: vec![name.to_owned()], refused: vec![] }),
        (AuditKind::RevealDenied, Some(name)) => {
            Some(RevealSummary { shown: vec![], refused: vec![(name.to_owned(), detail.unwrap_or_default().to_owned())] })
        }
        (AuditKind::Reveal | AuditKind::RevealDenied, None) => RevealSummary::parse(detail?),
        _ => None,
    }
}

/// The outcome of checking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditVerification {
    /// Number of events checked.
    pub events: u64,
    /// True when every event and the head agree.
    pub valid: bool,
    /// The first event found wrong (0 when the head itself is wrong).
    pub broken_at: Option<u64>,
    /// What was wrong, when something was.
    pub problem: Option<String>,
    /// The chain head's hash, hex.
    pub head: String,
}

/// HKDF salt of the audit chain key (see [`crate::pairing::shared_key`]).
pub const AUDIT_KEY_SALT: &[u8] = b"jobseal/v1/audit-chain-key";

/// The key of one device's keyed audit chain, derived by either side of the identity/dispatch
/// key pair.
pub struct AuditKey(Zeroizing<[u8; 32]>);

impl AuditKey {
    /// Derives the key from one side's secret key and the other side's public key (the device:
    /// its identity secret and the pinned dispatch key; dispatch: its secret and the device's
    /// identity key).
    pub fn derive(own: &SecretKey, peer: &PublicKey, device_id: Uuid) -> crate::Result<AuditKey> {
        Ok(AuditKey(crate::pairing::shared_key(own, peer, device_id, AUDIT_KEY_SALT)?))
    }

    /// A key from its stored bytes.
    pub fn from_bytes(raw: &[u8]) -> crate::Result<AuditKey> {
        let bytes: [u8; 32] = raw.try_into().map_err(|_| crate::Error::Tampered("audit key has the wrong length"))?;
        Ok(AuditKey(Zeroizing::new(bytes)))
    }

    /// The raw bytes, for wrapping.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

/// The chain hash of event number `seq` following `prev`: keyed (HMAC-SHA256 under `key`) once
/// the device is enrolled, plain SHA-256 ([`event_hash`]) before.
#[expect(clippy::expect_used, reason = "HMAC accepts keys of any length, so this cannot fail")]
pub fn chain_hash(key: Option<&AuditKey>, seq: u64, e: &NewEvent, prev: &[u8]) -> [u8; 32] {
    match key {
        None => event_hash(seq, e, prev),
        Some(k) => {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(k.as_bytes()).expect("HMAC takes any key length");
            m.update(event_content("jobseal/audit/v2", seq, e, prev).bytes());
            m.finalize().into_bytes().into()
        }
    }
}

/// The unkeyed chain hash of event number `seq` following `prev` (SHA-256), used before
/// enrolment and by chains enrolled before keyed chains existed.
pub fn event_hash(seq: u64, e: &NewEvent, prev: &[u8]) -> [u8; 32] {
    Sha256::digest(event_content("jobseal/audit/v1", seq, e, prev).bytes()).into()
}

/// What a link covers, each part length-prefixed under a domain label.
fn event_content(label: &str, seq: u64, e: &NewEvent, prev: &[u8]) -> Aad {
    let job = e.job_id.map(|j| *j.as_bytes()).unwrap_or([0u8; 16]);
    let opt = |s: &Option<String>| s.as_deref().unwrap_or("\u{0}").to_owned();
    Aad::new(label)
        .u64(seq)
        .part(&e.at_ms.to_be_bytes())
        .part(&job)
        .part(e.kind.as_str().as_bytes())
        .part(opt(&e.field).as_bytes())
        .part(e.state.map(|s| s.as_str()).unwrap_or("\u{0}").as_bytes())
        .part(opt(&e.detail).as_bytes())
        .part(prev)
}

/// Checks a run of audit events as received from a device, in order, against each other: every
/// hash recomputed, every link to the previous event, no gaps. `previous` is the last event
/// already verified (its seq and hash), or `None` when the run starts the chain. Returns the seq of
/// the first event that does not fit. Dispatch uses this on what devices push, with the device's
/// [`AuditKey`] for a keyed chain, `None` for an unkeyed one.
pub fn verify_records(
    key: Option<&AuditKey>,
    previous: Option<(u64, &[u8])>,
    records: &[(Option<Uuid>, AuditRecord)],
) -> std::result::Result<(), u64> {
    let (mut seq, mut prev) = match previous {
        Some((s, h)) => (s, h.to_vec()),
        None => (0, GENESIS.to_vec()),
    };
    for (job_id, r) in records {
        let event = NewEvent {
            at_ms: r.at_ms,
            job_id: *job_id,
            kind: r.kind,
            field: r.field.clone(),
            state: r.state,
            detail: r.detail.clone(),
        };
        if r.seq != seq + 1 || r.prev_hash != prev || chain_hash(key, r.seq, &event, &prev).as_slice() != r.hash.as_slice()
        {
            return Err(seq + 1);
        }
        seq = r.seq;
        prev = r.hash.clone();
    }
    Ok(())
}

/// The wire form of a stored event.
pub fn record_of(seq: u64, e: &NewEvent, prev: &[u8], hash: &[u8]) -> AuditRecord {
    AuditRecord {
        seq,
        at_ms: e.at_ms,
        kind: e.kind,
        field: e.field.clone(),
        state: e.state,
        detail: e.detail.clone(),
        prev_hash: prev.to_vec(),
        hash: hash.to_vec(),
    }
}

/// An audit event as it travels to dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Position in the device's chain.
    pub seq: u64,
    /// Trusted time, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// What happened.
    pub kind: AuditKind,
    /// The customer field's name, for reveals.
    pub field: Option<String>,
    /// The job's state.
    pub state: Option<JobState>,
    /// A value-free detail.
    pub detail: Option<String>,
    /// Previous event's hash, hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(?:[0-9a-fA-F]{2})*$"))]
    pub prev_hash: Vec<u8>,
    /// This event's hash, hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(?:[0-9a-fA-F]{2})*$"))]
    pub hash: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reveal_summary_reads_back_what_it_wrote() {
        let cases = [
            RevealSummary { shown: vec!["name".into(), "phone".into()], refused: vec![] },
            RevealSummary { shown: vec![], refused: vec![("door_code".into(), "not-yet-open".into())] },
            RevealSummary {
                shown: vec!["address".into()],
                refused: vec![("door_code".into(), "window-closed".into()), ("note2".into(), "wrong-state".into())],
            },
            RevealSummary::default(),
        ];
        for summary in cases {
            let line = summary.to_detail();
            assert_eq!(RevealSummary::parse(&line).as_ref(), Some(&summary), "{line}");
        }
        assert_eq!(
            RevealSummary { shown: vec!["name".into()], refused: vec![("door_code".into(), "not-yet-open".into())] }
                .to_detail(),
            "shown: name; refused: door_code (not-yet-open)"
        );
    }

    #[test]
    fn anything_else_is_not_a_reveal_summary() {
        for line in [
            "",
            "assigned -> en-route",
            "shown: name",
            "shown: Name; refused: -",
            "shown: name; refused: door_code",
            "shown: name; refused: door_code (Not Open)",
            "shown: ; refused: -",
            "shown: a,b; refused: -",
        ] {
            assert_eq!(RevealSummary::parse(line), None, "{line:?}");
        }
    }

    #[test]
    fn a_per_field_reveal_event_of_an_older_chain_reads_as_a_summary_of_its_field() {
        let record = |kind, field: Option<&str>, detail: Option<&str>| AuditRecord {
            seq: 1,
            at_ms: 0,
            kind,
            field: field.map(str::to_owned),
            state: None,
            detail: detail.map(str::to_owned),
            prev_hash: vec![],
            hash: vec![],
        };
        assert_eq!(
            record(AuditKind::Reveal, Some("phone"), None).reveal_summary(),
            Some(RevealSummary { shown: vec!["phone".into()], refused: vec![] })
        );
        assert_eq!(
            record(AuditKind::RevealDenied, Some("door_code"), Some("window-closed")).reveal_summary(),
            Some(RevealSummary { shown: vec![], refused: vec![("door_code".into(), "window-closed".into())] })
        );
        assert_eq!(record(AuditKind::Reveal, None, Some("not a summary")).reveal_summary(), None);
        assert_eq!(record(AuditKind::Shredded, None, Some("shown: a; refused: -")).reveal_summary(), None);
    }

    #[test]
    fn a_reveal_is_denied_only_when_nothing_was_shown() {
        let job = Uuid::nil();
        let none = RevealSummary { shown: vec![], refused: vec![("phone".into(), "wrong-state".into())] };
        let some = RevealSummary { shown: vec!["name".into()], ..none.clone() };
        assert_eq!(NewEvent::reveal(1, job, JobState::Assigned, &none).kind, AuditKind::RevealDenied);
        assert_eq!(NewEvent::reveal(1, job, JobState::Assigned, &some).kind, AuditKind::Reveal);
    }
}

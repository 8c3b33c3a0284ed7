//! The append-only, hash-chained audit log (G2, G7).
//!
//! Every reveal, refused reveal, state change and shred appends one event. Each event's hash
//! covers its content and the previous event's hash, and the head of the chain is kept apart in
//! `meta`, so editing, removing or reordering any event, or cutting the tail, is found by
//! [`verify`]. Events name fields and states, never values: the log is meant to leave the phone
//! (it is synced to dispatch) and to outlive the job.

use crate::crypto::Aad;
use crate::policy::JobState;
use crate::{clock, Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

const GENESIS: [u8; 32] = [0u8; 32];
const HEAD_SEQ: &str = "audit_head_seq";
const HEAD_HASH: &str = "audit_head_hash";

/// What an audit event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
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

impl AuditKind {
    fn as_str(self) -> &'static str {
        match self {
            AuditKind::VaultCreated => "vault-created",
            AuditKind::Ingested => "ingested",
            AuditKind::Updated => "updated",
            AuditKind::Transition => "transition",
            AuditKind::Reveal => "reveal",
            AuditKind::RevealDenied => "reveal-denied",
            AuditKind::Shredded => "shredded",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            AuditKind::VaultCreated,
            AuditKind::Ingested,
            AuditKind::Updated,
            AuditKind::Transition,
            AuditKind::Reveal,
            AuditKind::RevealDenied,
            AuditKind::Shredded,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
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

fn event_hash(seq: u64, e: &NewEvent, prev: &[u8]) -> [u8; 32] {
    let job = e.job_id.map(|j| *j.as_bytes()).unwrap_or([0u8; 16]);
    let opt = |s: &Option<String>| s.as_deref().unwrap_or("\u{0}").to_owned();
    let aad = Aad::new("jobseal/audit/v1")
        .u64(seq)
        .part(&e.at_ms.to_be_bytes())
        .part(&job)
        .part(e.kind.as_str().as_bytes())
        .part(opt(&e.field).as_bytes())
        .part(e.state.map(|s| s.as_str()).unwrap_or("\u{0}").as_bytes())
        .part(opt(&e.detail).as_bytes())
        .part(prev);
    Sha256::digest(aad.bytes()).into()
}

/// Checks a run of audit events as received from a device, in order, against each other: every
/// hash recomputed, every link to the previous event, no gaps. `previous` is the last event
/// already verified (its seq and hash), or `None` when the run starts the chain. Returns the seq of
/// the first event that does not fit. Dispatch uses this on what devices push.
pub fn verify_records(
    previous: Option<(u64, &[u8])>,
    records: &[(Option<Uuid>, crate::sync::wire::AuditRecord)],
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
        if r.seq != seq + 1 || r.prev_hash != prev || event_hash(r.seq, &event, &prev).as_slice() != r.hash.as_slice() {
            return Err(seq + 1);
        }
        seq = r.seq;
        prev = r.hash.clone();
    }
    Ok(())
}

/// Queues every event already in the chain for dispatch. Called once, in the enrolment
/// transaction: events appended before enrolment (vault creation, plaintext ingests) were not
/// queued, and dispatch verifies the chain from its first event.
pub(crate) fn enqueue_existing(conn: &Connection) -> Result<()> {
    let mut rows = Vec::new();
    read_rows(conn, None, |row| {
        rows.push(row);
        Ok(true)
    })?;
    for row in rows {
        let record = record_of(row.seq as u64, &row.event, &row.prev, &row.hash);
        crate::sync::outbox::enqueue(
            conn,
            row.event.job_id,
            row.event.at_ms,
            &crate::sync::wire::EventBody::Audit(record),
        )?;
    }
    Ok(())
}

/// The wire form of a stored event.
pub(crate) fn record_of(seq: u64, e: &NewEvent, prev: &[u8], hash: &[u8]) -> crate::sync::wire::AuditRecord {
    crate::sync::wire::AuditRecord {
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

fn head(conn: &Connection) -> Result<(u64, Vec<u8>)> {
    let seq = crate::store::meta_i64(conn, HEAD_SEQ)?.unwrap_or(0);
    let hash: Option<Vec<u8>> = conn
        .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row([HEAD_HASH], |r| r.get(0))
        .optional()?;
    Ok((seq as u64, hash.unwrap_or_else(|| GENESIS.to_vec())))
}

/// Appends `event` to the chain. Call inside the transaction that makes the change it records,
/// so that the change and its record commit together.
pub fn append(conn: &Connection, event: &NewEvent) -> Result<u64> {
    let (seq, prev) = head(conn)?;
    let seq = seq + 1;
    let hash = event_hash(seq, event, &prev);
    conn.prepare_cached(
        "INSERT INTO audit (seq, at_ms, job_id, kind, field, state, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        seq as i64,
        event.at_ms,
        event.job_id.map(|j| j.to_string()),
        event.kind.as_str(),
        event.field,
        event.state.map(|s| s.as_str()),
        event.detail,
        prev,
        hash.as_slice(),
    ])?;
    let record = record_of(seq, event, &prev, &hash);
    crate::sync::outbox::enqueue(conn, event.job_id, event.at_ms, &crate::sync::wire::EventBody::Audit(record))?;
    crate::store::set_meta_i64(conn, HEAD_SEQ, seq as i64)?;
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![HEAD_HASH, hash.as_slice()])?;
    Ok(seq)
}

struct Row {
    seq: i64,
    event: NewEvent,
    prev: Vec<u8>,
    hash: Vec<u8>,
}

fn read_rows(conn: &Connection, job: Option<Uuid>, mut f: impl FnMut(Row) -> Result<bool>) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, job_id, kind, field, state, detail, prev_hash, hash FROM audit
         WHERE ?1 IS NULL OR job_id = ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([job.map(|j| j.to_string())])?;
    while let Some(r) = rows.next()? {
        let job_id: Option<String> = r.get(2)?;
        let kind: String = r.get(3)?;
        let state: Option<String> = r.get(5)?;
        let bad = || Error::integrity("audit event has an unreadable column");
        let event = NewEvent {
            at_ms: r.get(1)?,
            job_id: job_id.map(|j| Uuid::parse_str(&j).map_err(|_| bad())).transpose()?,
            kind: AuditKind::parse(&kind).ok_or_else(bad)?,
            field: r.get(4)?,
            state: state.map(|s| s.parse::<JobState>().map_err(|_| bad())).transpose()?,
            detail: r.get(6)?,
        };
        if !f(Row { seq: r.get(0)?, event, prev: r.get(7)?, hash: r.get(8)? })? {
            break;
        }
    }
    Ok(())
}

/// The events in order, all of them or those of one job.
pub fn list(conn: &Connection, job: Option<Uuid>) -> Result<Vec<AuditEvent>> {
    let mut out = Vec::new();
    read_rows(conn, job, |row| {
        out.push(AuditEvent {
            seq: row.seq as u64,
            at: clock::from_ms(row.event.at_ms),
            job_id: row.event.job_id,
            kind: row.event.kind,
            field: row.event.field,
            state: row.event.state,
            detail: row.event.detail,
            hash: hex(&row.hash),
        });
        Ok(true)
    })?;
    Ok(out)
}

/// Walks the whole chain and reports the first event that does not fit.
pub fn verify(conn: &Connection) -> Result<AuditVerification> {
    let (head_seq, head_hash) = head(conn)?;
    let mut expected_seq: i64 = 1;
    let mut prev = GENESIS.to_vec();
    let mut problem: Option<(u64, String)> = None;
    read_rows(conn, None, |row| {
        let seq = row.seq as u64;
        if row.seq != expected_seq {
            problem = Some((expected_seq as u64, format!("event {expected_seq} is missing")));
        } else if row.prev != prev {
            problem = Some((seq, format!("event {seq} does not follow event {}", seq - 1)));
        } else if event_hash(seq, &row.event, &row.prev).as_slice() != row.hash.as_slice() {
            problem = Some((seq, format!("event {seq} was altered")));
        }
        prev = row.hash;
        expected_seq += 1;
        Ok(problem.is_none())
    })?;
    let events = (expected_seq - 1) as u64;
    if problem.is_none() && (events != head_seq || prev != head_hash) {
        problem = Some((0, format!("the chain ends at event {events} but its head says {head_seq}")));
    }
    Ok(AuditVerification {
        events,
        valid: problem.is_none(),
        broken_at: problem.as_ref().map(|p| p.0),
        problem: problem.map(|p| p.1),
        head: hex(&head_hash),
    })
}

fn hex(b: &[u8]) -> String {
    crate::hex::encode(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        let tx = c.transaction().unwrap();
        crate::store::schema::upgrade_from(&tx, 0).unwrap();
        tx.commit().unwrap();
        c
    }

    fn fill(c: &Connection, n: i64) {
        let job = Uuid::new_v4();
        for i in 0..n {
            append(c, &NewEvent::job(1000 + i, job, AuditKind::Reveal, JobState::OnSite).field("phone")).unwrap();
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = db();
        fill(&c, 5);
        let v = verify(&c).unwrap();
        assert!(v.valid, "{v:?}");
        assert_eq!(v.events, 5);
        assert_eq!(list(&c, None).unwrap().len(), 5);
    }

    #[test]
    fn edits_removals_and_truncation_are_found() {
        let c = db();
        fill(&c, 5);
        c.execute("UPDATE audit SET field = 'door_code' WHERE seq = 3", []).unwrap();
        assert_eq!(verify(&c).unwrap().broken_at, Some(3));

        let c = db();
        fill(&c, 5);
        c.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        assert_eq!(verify(&c).unwrap().broken_at, Some(2));

        let c = db();
        fill(&c, 5);
        c.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
        let v = verify(&c).unwrap();
        assert!(!v.valid);
        assert_eq!(v.broken_at, Some(0));

        let c = db();
        fill(&c, 5);
        c.execute("UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 4", []).unwrap();
        assert_eq!(verify(&c).unwrap().broken_at, Some(4));
    }
}

//! The `audit` table: the rows of the hash-chained audit log (G2, G7).
//!
//! Rows are only ever inserted, through the journal, which computes each row's chain hash (and
//! once, at enrolment, re-links them under the chain key); this module stores and reads them. Reading checks every column so that a row edited into something
//! unparseable is reported as an integrity failure, not skipped.

use crate::audit::{AuditKind, NewEvent};
use crate::policy::JobState;
use crate::{Error, Result};
use rusqlite::{params, Connection};
use uuid::Uuid;

/// An audit row as stored.
pub(crate) struct StoredEvent {
    /// Position in the chain, from 1.
    pub(crate) seq: u64,
    /// What was recorded.
    pub(crate) event: NewEvent,
    /// The previous row's hash.
    pub(crate) prev: Vec<u8>,
    /// This row's hash.
    pub(crate) hash: Vec<u8>,
}

/// Inserts a row.
pub(crate) fn insert(conn: &Connection, seq: u64, event: &NewEvent, prev: &[u8], hash: &[u8]) -> Result<()> {
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
        hash,
    ])?;
    Ok(())
}

/// Replaces a row's links (the enrolment that keys the chain recomputes every link).
pub(crate) fn set_links(conn: &Connection, seq: u64, prev: &[u8], hash: &[u8]) -> Result<()> {
    conn.prepare_cached("UPDATE audit SET prev_hash = ?2, hash = ?3 WHERE seq = ?1")?
        .execute(params![seq as i64, prev, hash])?;
    Ok(())
}

fn row_of(r: &rusqlite::Row<'_>) -> Result<StoredEvent> {
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
    Ok(StoredEvent { seq: r.get::<_, i64>(0)? as u64, event, prev: r.get(7)?, hash: r.get(8)? })
}

/// Calls `f` on each row in order (all, or one job's) until it returns false.
pub(crate) fn for_each(
    conn: &Connection,
    job: Option<Uuid>,
    mut f: impl FnMut(StoredEvent) -> Result<bool>,
) -> Result<()> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, job_id, kind, field, state, detail, prev_hash, hash FROM audit
         WHERE ?1 IS NULL OR job_id = ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([job.map(|j| j.to_string())])?;
    while let Some(r) = rows.next()? {
        if !f(row_of(r)?)? {
            break;
        }
    }
    Ok(())
}

/// The row at `seq`, if any.
pub(crate) fn get(conn: &Connection, seq: u64) -> Result<Option<StoredEvent>> {
    let seq = i64::try_from(seq).map_err(|_| Error::integrity("audit seq out of range"))?;
    let mut stmt = conn.prepare_cached(
        "SELECT seq, at_ms, job_id, kind, field, state, detail, prev_hash, hash FROM audit WHERE seq = ?1",
    )?;
    let mut rows = stmt.query([seq])?;
    rows.next()?.map(row_of).transpose()
}

//! The `outbox` table: events waiting for dispatch's acknowledgement (G6).
//!
//! Rows are written only by the journal, in the transaction of the action they record, and
//! deleted only when dispatch acknowledges their key. `seq` orders them for the whole life of the
//! vault (see [`next_seq`]).

use crate::store::meta;
use crate::{Error, Result};
use rusqlite::{params, Connection};
use uuid::Uuid;

/// What an outbox row carries.
pub(crate) enum Payload {
    /// An audit event, by its `seq` in the `audit` table: the record is not copied.
    Audit(u64),
    /// Any other event, as the JSON of its body.
    Body(String),
}

/// An outbox row.
pub(crate) struct OutboxRow {
    /// Order of the event on this device.
    pub(crate) seq: u64,
    /// The idempotency key.
    pub(crate) key: Uuid,
    /// The job it concerns, if any.
    pub(crate) job_id: Option<Uuid>,
    /// Trusted time of the event.
    pub(crate) at_ms: i64,
    /// The event.
    pub(crate) payload: Payload,
}

/// The next event's `seq`. Dispatch orders a device's events by it (the newest state wins), so it
/// must grow for the vault's whole life. The rowid alone does not: SQLite reuses numbers from 1
/// once the outbox has drained, which made a state change made after a sync look older than the
/// ones before it. Found by the crash-at-scale suite (tests/tests/crash_scale.rs). The stored
/// floor is raised by [`acknowledge`], the only place rows leave, so an insert writes no `meta`.
fn next_seq(conn: &Connection) -> Result<i64> {
    next_seq_above(conn, meta::outbox_next_seq(conn)?)
}

/// [`next_seq`] given the stored floor, already read.
fn next_seq_above(conn: &Connection, stored: Option<i64>) -> Result<i64> {
    let in_table: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox")?.query_row([], |r| r.get(0))?;
    Ok(stored.unwrap_or(1).max(in_table))
}

/// Appends an event with a fresh UUID v7 key (timestamped with the event's trusted time).
pub(crate) fn insert(conn: &Connection, job_id: Option<Uuid>, at_ms: i64, payload: &Payload) -> Result<()> {
    let seq = next_seq(conn)?;
    let key = crate::crypto::time_ordered_uuid(u64::try_from(at_ms).unwrap_or(0))?;
    let (audit_seq, body) = match payload {
        Payload::Audit(s) => (Some(i64::try_from(*s).map_err(|_| Error::integrity("audit seq out of range"))?), None),
        Payload::Body(b) => (None, Some(b.as_str())),
    };
    conn.prepare_cached(
        "INSERT INTO outbox (seq, key, job_id, at_ms, audit_seq, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![seq, key.to_string(), job_id.map(|j| j.to_string()), at_ms, audit_seq, body])?;
    Ok(())
}

/// The oldest `limit` events, in order.
pub(crate) fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxRow>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, key, job_id, at_ms, audit_seq, body FROM outbox ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<i64>>(4)?,
            r.get::<_, Option<String>>(5)?,
        ))
    })?;
    let bad = || Error::integrity("an outbox event is unreadable");
    let mut out = Vec::new();
    for row in rows {
        let (seq, key, job, at_ms, audit_seq, body) = row?;
        let payload = match (audit_seq, body) {
            (Some(s), None) => Payload::Audit(u64::try_from(s).map_err(|_| bad())?),
            (None, Some(b)) => Payload::Body(b),
            _ => return Err(bad()),
        };
        out.push(OutboxRow {
            seq: u64::try_from(seq).map_err(|_| bad())?,
            key: Uuid::parse_str(&key).map_err(|_| bad())?,
            job_id: job.map(|j| Uuid::parse_str(&j).map_err(|_| bad())).transpose()?,
            at_ms,
            payload,
        });
    }
    Ok(out)
}

/// Counts the events not yet acknowledged.
pub(crate) fn count(conn: &Connection) -> Result<u64> {
    Ok(conn.prepare_cached("SELECT count(*) FROM outbox")?.query_row([], |r| r.get::<_, i64>(0))? as u64)
}

/// Records a push attempt of the events up to `last_seq`.
pub(crate) fn attempted(conn: &Connection, last_seq: u64) -> Result<()> {
    conn.prepare_cached("UPDATE outbox SET attempts = attempts + 1 WHERE seq <= ?1")?.execute([last_seq as i64])?;
    Ok(())
}

/// Deletes the acknowledged events; returns how many were deleted. Raises the stored floor of
/// [`next_seq`] first, so numbering goes on past the deleted rows.
pub(crate) fn acknowledge(conn: &Connection, keys: &[Uuid]) -> Result<u64> {
    let stored = meta::outbox_next_seq(conn)?;
    let next = next_seq_above(conn, stored)?;
    if stored != Some(next) {
        meta::set_outbox_next_seq(conn, next)?;
    }
    // One scan of the outbox for the whole batch (`key` has no index: see the schema's V2).
    let list = serde_json::to_string(&keys.iter().map(Uuid::to_string).collect::<Vec<_>>())
        .map_err(|_| Error::integrity("acknowledged keys do not serialize"))?;
    let n = conn
        .prepare_cached("DELETE FROM outbox WHERE key IN (SELECT value FROM json_each(?1))")?
        .execute([list])?;
    Ok(n as u64)
}

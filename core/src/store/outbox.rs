//! The `outbox` table: events waiting for dispatch's acknowledgement (G6).
//!
//! Rows are written only by the journal, in the transaction of the action they record, and
//! deleted only when dispatch acknowledges their key. `seq` orders them for the whole life of the
//! vault (see [`next_seq`]).

use crate::store::meta;
use crate::{Error, Result};
use rusqlite::{params, Connection};
use uuid::Uuid;

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
    /// The event body as JSON.
    pub(crate) body: String,
}

/// The next event's `seq`. Dispatch orders a device's events by it (the newest state wins), so it
/// must grow for the vault's whole life. The rowid alone does not: SQLite reuses numbers from 1
/// once the outbox has drained, which made a state change made after a sync look older than the
/// ones before it. Found by the crash-at-scale suite (tests/tests/crash_scale.rs).
fn next_seq(conn: &Connection) -> Result<i64> {
    let stored = meta::outbox_next_seq(conn)?.unwrap_or(1);
    let in_table: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox")?.query_row([], |r| r.get(0))?;
    Ok(stored.max(in_table))
}

/// Appends an event with a fresh UUID v7 key.
pub(crate) fn insert(conn: &Connection, job_id: Option<Uuid>, at_ms: i64, body: &str) -> Result<()> {
    let seq = next_seq(conn)?;
    conn.prepare_cached("INSERT INTO outbox (seq, key, job_id, at_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![seq, Uuid::now_v7().to_string(), job_id.map(|j| j.to_string()), at_ms, body])?;
    meta::set_outbox_next_seq(conn, seq + 1)
}

/// The oldest `limit` events, in order.
pub(crate) fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxRow>> {
    let mut stmt = conn.prepare_cached("SELECT seq, key, job_id, at_ms, body FROM outbox ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, Option<String>>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let bad = || Error::integrity("an outbox event is unreadable");
    let mut out = Vec::new();
    for row in rows {
        let (seq, key, job, at_ms, body) = row?;
        out.push(OutboxRow {
            seq: seq as u64,
            key: Uuid::parse_str(&key).map_err(|_| bad())?,
            job_id: job.map(|j| Uuid::parse_str(&j).map_err(|_| bad())).transpose()?,
            at_ms,
            body,
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

/// Deletes the acknowledged events; returns how many were deleted.
pub(crate) fn acknowledge(conn: &Connection, keys: &[Uuid]) -> Result<u64> {
    let mut stmt = conn.prepare_cached("DELETE FROM outbox WHERE key = ?1")?;
    let mut n = 0;
    for k in keys {
        n += stmt.execute([k.to_string()])? as u64;
    }
    Ok(n)
}

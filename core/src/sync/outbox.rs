//! The outbox: what the technician did, kept until dispatch has it (G6).
//!
//! Every event is written in the same transaction as the action it records, so it is durable
//! before the call returns and exists exactly when the action happened. Events carry a UUID v7
//! idempotency key, go out oldest first, and are deleted only when dispatch acknowledges their key;
//! a push that dispatch applied but whose answer was lost is pushed again and acknowledged again
//! without being applied twice. A vault not enrolled with dispatch keeps no outbox.

use crate::sync::wire::{EventBody, OutboxEvent};
use crate::{clock, Error, Result};
use rusqlite::{params, Connection};
use uuid::Uuid;

/// Whether this vault is enrolled with dispatch (and so keeps an outbox).
pub(crate) fn enrolled(conn: &Connection) -> Result<bool> {
    Ok(conn.prepare_cached("SELECT 1 FROM device WHERE singleton = 1")?.exists([])?)
}

/// Adds an event. Call inside the transaction of the action it records.
pub(crate) fn enqueue(conn: &Connection, job_id: Option<Uuid>, at_ms: i64, body: &EventBody) -> Result<()> {
    if !enrolled(conn)? {
        return Ok(());
    }
    let json = serde_json::to_string(body).map_err(|_| Error::integrity("outbox event does not serialize"))?;
    let seq = next_seq(conn)?;
    conn.prepare_cached("INSERT INTO outbox (seq, key, job_id, at_ms, body) VALUES (?1, ?2, ?3, ?4, ?5)")?
        .execute(params![seq, Uuid::now_v7().to_string(), job_id.map(|j| j.to_string()), at_ms, json])?;
    crate::store::set_meta_i64(conn, NEXT_SEQ, seq + 1)?;
    Ok(())
}

/// The persisted next event sequence number.
const NEXT_SEQ: &str = "outbox_next_seq";

/// The next event's `seq`. Dispatch orders a device's events by it (the newest state wins), so it
/// must grow for the vault's whole life. The rowid alone does not: SQLite reuses numbers from 1
/// once the outbox has drained, which made a state change made after a sync look older than the
/// ones before it. Found by the crash-at-scale suite (tests/tests/crash_scale.rs).
fn next_seq(conn: &Connection) -> Result<i64> {
    let stored = crate::store::meta_i64(conn, NEXT_SEQ)?.unwrap_or(1);
    let in_table: i64 =
        conn.prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox")?.query_row([], |r| r.get(0))?;
    Ok(stored.max(in_table))
}

/// The oldest `limit` events, in order.
pub(crate) fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxEvent>> {
    let mut stmt = conn.prepare_cached("SELECT seq, key, job_id, at_ms, body FROM outbox ORDER BY seq LIMIT ?1")?;
    let rows = stmt.query_map([limit as i64], |r| {
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
        out.push(OutboxEvent {
            key: Uuid::parse_str(&key).map_err(|_| bad())?,
            seq: seq as u64,
            job_id: job.map(|j| Uuid::parse_str(&j).map_err(|_| bad())).transpose()?,
            at: clock::from_ms(at_ms),
            body: serde_json::from_str(&body).map_err(|_| bad())?,
        });
    }
    Ok(out)
}

/// Counts the events not yet acknowledged.
pub(crate) fn count(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get::<_, i64>(0))? as u64)
}

/// Records a push attempt of the events up to `last_seq`.
pub(crate) fn attempted(conn: &Connection, last_seq: u64) -> Result<()> {
    conn.execute("UPDATE outbox SET attempts = attempts + 1 WHERE seq <= ?1", [last_seq as i64])?;
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

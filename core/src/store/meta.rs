//! The `meta` table: the vault's small named values (trusted time, chain head, counters).
//!
//! Each value has one typed accessor here, so the key names live in one place and no other module
//! can misspell one. The trusted-time values decide what the technician may see (G2), so only
//! [`raise_high_water`] and [`set_anchor`] write them, and the high-water mark only ever rises.

use crate::clock::{TimeAnchor, TimeState};
use crate::Result;
use rusqlite::{params, Connection, OptionalExtension};

const HIGH_WATER: &str = "high_water_ms";
const ANCHOR_SERVER: &str = "anchor_server_ms";
const ANCHOR_BOOT: &str = "anchor_boot_ms";
const AUDIT_HEAD_SEQ: &str = "audit_head_seq";
const AUDIT_HEAD_HASH: &str = "audit_head_hash";
const OUTBOX_NEXT_SEQ: &str = "outbox_next_seq";
const SYNC_FAILURES: &str = "sync_failures";
const SYNC_NEXT_ATTEMPT: &str = "sync_next_attempt_ms";
const SYNC_LAST_SUCCESS: &str = "sync_last_success_ms";

fn get_i64(conn: &Connection, key: &str) -> Result<Option<i64>> {
    Ok(conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?)
}

fn get_blob(conn: &Connection, key: &str) -> Result<Option<Vec<u8>>> {
    Ok(conn.prepare_cached("SELECT value FROM meta WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?)
}

fn set<T: rusqlite::ToSql>(conn: &Connection, key: &str, value: T) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![key, value])?;
    Ok(())
}

fn delete(conn: &Connection, key: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM meta WHERE key = ?1")?.execute([key])?;
    Ok(())
}

/// The persisted trusted-time state: high-water mark and server anchor.
pub(crate) fn time_state(conn: &Connection) -> Result<TimeState> {
    Ok(TimeState {
        high_water_ms: get_i64(conn, HIGH_WATER)?.unwrap_or(i64::MIN),
        anchor: match (get_i64(conn, ANCHOR_SERVER)?, get_i64(conn, ANCHOR_BOOT)?) {
            (Some(server_ms), Some(boot_ms)) => Some(TimeAnchor { server_ms, boot_ms }),
            _ => None,
        },
    })
}

/// Raises the high-water mark to `now` if it is below; never lowers it.
pub(crate) fn raise_high_water(conn: &Connection, now: i64) -> Result<()> {
    let hwm = get_i64(conn, HIGH_WATER)?.unwrap_or(i64::MIN);
    if now > hwm {
        set(conn, HIGH_WATER, now)?;
    }
    Ok(())
}

/// Records a server-time anchor taken at a boot-clock reading.
pub(crate) fn set_anchor(conn: &Connection, anchor: TimeAnchor) -> Result<()> {
    set(conn, ANCHOR_SERVER, anchor.server_ms)?;
    set(conn, ANCHOR_BOOT, anchor.boot_ms)
}

/// The audit chain's head: the last sequence number and hash, or `None` for an empty chain.
pub(crate) fn audit_head(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    match (get_i64(conn, AUDIT_HEAD_SEQ)?, get_blob(conn, AUDIT_HEAD_HASH)?) {
        (Some(seq), Some(hash)) => Ok(Some((seq as u64, hash))),
        _ => Ok(None),
    }
}

/// Moves the audit chain's head.
pub(crate) fn set_audit_head(conn: &Connection, seq: u64, hash: &[u8]) -> Result<()> {
    set(conn, AUDIT_HEAD_SEQ, seq as i64)?;
    set(conn, AUDIT_HEAD_HASH, hash)
}

/// The persisted next outbox sequence number, if any was stored.
pub(crate) fn outbox_next_seq(conn: &Connection) -> Result<Option<i64>> {
    get_i64(conn, OUTBOX_NEXT_SEQ)
}

/// Stores the next outbox sequence number.
pub(crate) fn set_outbox_next_seq(conn: &Connection, seq: i64) -> Result<()> {
    set(conn, OUTBOX_NEXT_SEQ, seq)
}

/// The health of sync as persisted between runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SyncHealth {
    /// Failed syncs since the last success.
    pub(crate) failures: u32,
    /// When the next automatic attempt is due, if backing off.
    pub(crate) next_attempt_ms: Option<i64>,
    /// The last sync that reached dispatch.
    pub(crate) last_success_ms: Option<i64>,
}

/// Reads the sync health.
pub(crate) fn sync_health(conn: &Connection) -> Result<SyncHealth> {
    Ok(SyncHealth {
        failures: u32::try_from(get_i64(conn, SYNC_FAILURES)?.unwrap_or(0)).unwrap_or(u32::MAX),
        next_attempt_ms: get_i64(conn, SYNC_NEXT_ATTEMPT)?,
        last_success_ms: get_i64(conn, SYNC_LAST_SUCCESS)?,
    })
}

/// Writes the sync health.
pub(crate) fn set_sync_health(conn: &Connection, h: &SyncHealth) -> Result<()> {
    set(conn, SYNC_FAILURES, i64::from(h.failures))?;
    match h.next_attempt_ms {
        Some(t) => set(conn, SYNC_NEXT_ATTEMPT, t)?,
        None => delete(conn, SYNC_NEXT_ATTEMPT)?,
    }
    match h.last_success_ms {
        Some(t) => set(conn, SYNC_LAST_SUCCESS, t),
        None => delete(conn, SYNC_LAST_SUCCESS),
    }
}

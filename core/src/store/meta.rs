//! The `meta` table: the vault's small named values (trusted time, chain head, counters).
//!
//! Each value has one typed accessor here, so the key names live in one place and no other module
//! can misspell one. The trusted-time state decides what the technician may see (G2): it is one
//! record with an integrity tag ([`time_state`], [`set_time_state`]), so an edit made with
//! `sqlite3` is detected instead of obeyed.

use crate::clock::TimeState;
use crate::crypto::Aad;
use crate::integrity::{IntegrityKey, TAG_LEN};
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};

const TIME_STATE: &str = "time_state";
/// Written by schema versions 1 and 2, read once by the upgrade ([`take_legacy_high_water`]).
const LEGACY_HIGH_WATER: &str = "high_water_ms";
const LEGACY_KEYS: [&str; 3] = ["high_water_ms", "anchor_server_ms", "anchor_boot_ms"];
const AUDIT_HEAD_SEQ: &str = "audit_head_seq";
const AUDIT_HEAD_HASH: &str = "audit_head_hash";
const AUDIT_KEYED_FROM: &str = "audit_keyed_from";
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

/// Length of the encoded time state, without its tag.
const TIME_STATE_LEN: usize = 8 + 8 + 9 + 17 + 1;

/// The tagged record binds the key epoch: a state copied aside and written back after a shred's
/// rotation no longer checks, so it cannot set trusted time back to when it was copied.
fn time_record(epoch: u64, bytes: &[u8]) -> Aad {
    Aad::new("jobseal/v1/time-state").u64(epoch).part(bytes)
}

fn encode_time(st: &TimeState) -> Vec<u8> {
    let mut out = Vec::with_capacity(TIME_STATE_LEN + TAG_LEN);
    out.extend_from_slice(&st.high_water_ms.to_be_bytes());
    out.extend_from_slice(&st.proven_ms.to_be_bytes());
    out.push(u8::from(st.proven_boot_ms.is_some()));
    out.extend_from_slice(&st.proven_boot_ms.unwrap_or(0).to_be_bytes());
    out.push(u8::from(st.boot_id.is_some()));
    out.extend_from_slice(&st.boot_id.unwrap_or([0; 16]));
    out.push(u8::from(st.anchored));
    out
}

fn decode_time(b: &[u8]) -> Option<TimeState> {
    let i64_at = |at: usize| b.get(at..at + 8).and_then(|s| s.try_into().ok()).map(i64::from_be_bytes);
    let flag = |at: usize| match b.get(at) {
        Some(0) => Some(false),
        Some(1) => Some(true),
        _ => None,
    };
    if b.len() != TIME_STATE_LEN {
        return None;
    }
    let boot_id: [u8; 16] = b.get(26..42)?.try_into().ok()?;
    Some(TimeState {
        high_water_ms: i64_at(0)?,
        proven_ms: i64_at(8)?,
        proven_boot_ms: flag(16)?.then_some(i64_at(17)?),
        boot_id: flag(25)?.then_some(boot_id),
        anchored: flag(42)?,
    })
}

/// The persisted trusted-time state of key epoch `epoch`, checked against its tag. A missing, edited or malformed
/// record is `Tampered`: trusted time is then unknown until dispatch's time arrives.
pub(crate) fn time_state(conn: &Connection, key: &IntegrityKey, epoch: u64) -> Result<TimeState> {
    const WHAT: &str = "the trusted-time state was edited";
    let stored = get_blob(conn, TIME_STATE)?.ok_or(Error::Tampered(WHAT))?;
    let (record, tag) = stored.split_at(stored.len().saturating_sub(TAG_LEN));
    key.check(&time_record(epoch, record), Some(tag), WHAT)?;
    decode_time(record).ok_or(Error::Tampered(WHAT))
}

/// The trusted-time state encoded with its tag, ready for [`store_sealed_time`].
pub(crate) fn seal_time_state(key: &IntegrityKey, epoch: u64, st: &TimeState) -> Result<Vec<u8>> {
    let mut bytes = encode_time(st);
    let tag = key.tag(&time_record(epoch, &bytes))?;
    bytes.extend_from_slice(&tag);
    Ok(bytes)
}

/// Stores a trusted-time state sealed by [`seal_time_state`].
pub(crate) fn store_sealed_time(conn: &Connection, sealed: &[u8]) -> Result<()> {
    set(conn, TIME_STATE, sealed)
}

/// The untagged high-water mark a schema 1 or 2 vault kept, and deletes those keys.
pub(crate) fn take_legacy_high_water(conn: &Connection) -> Result<Option<i64>> {
    let hwm = get_i64(conn, LEGACY_HIGH_WATER)?;
    for k in LEGACY_KEYS {
        delete(conn, k)?;
    }
    Ok(hwm)
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

/// The first event of the chain that is keyed (`None`: the chain is unkeyed throughout).
pub(crate) fn audit_keyed_from(conn: &Connection) -> Result<Option<u64>> {
    Ok(get_i64(conn, AUDIT_KEYED_FROM)?.map(|s| s as u64))
}

/// Records where the keyed part of the chain starts.
pub(crate) fn set_audit_keyed_from(conn: &Connection, seq: u64) -> Result<()> {
    set(conn, AUDIT_KEYED_FROM, seq as i64)
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

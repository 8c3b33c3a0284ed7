//! The key tables: `epochs`, `pending_epochs`, `retired_keks` and `secrets` (G3).
//!
//! Only the keyring calls this module: it is the single owner of the epoch master key and of
//! every wrapped secret, and the rule that a rotation re-wraps every row of `secrets` in the
//! transaction that changes the epoch is enforced there. This module only moves rows.

use crate::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// The newest epoch and its wrapped master key, if the vault has one.
pub(crate) fn current_epoch(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT epoch, wrapped_emk FROM epochs ORDER BY epoch DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .optional()?)
}

/// Stores an epoch's wrapped master key.
pub(crate) fn insert_epoch(conn: &Connection, epoch: u64, wrapped_emk: &[u8], created_ms: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO epochs (epoch, wrapped_emk, created_ms) VALUES (?1, ?2, ?3)")?.execute(params![
        epoch as i64,
        wrapped_emk,
        created_ms
    ])?;
    Ok(())
}

/// Deletes every epoch row but `keep`.
pub(crate) fn delete_epochs_except(conn: &Connection, keep: u64) -> Result<()> {
    conn.prepare_cached("DELETE FROM epochs WHERE epoch <> ?1")?.execute([keep as i64])?;
    Ok(())
}

/// Epochs whose KEK was generated for a rotation that has not committed.
pub(crate) fn pending_epochs(conn: &Connection) -> Result<Vec<u64>> {
    let mut stmt = conn.prepare_cached("SELECT epoch FROM pending_epochs")?;
    let rows = stmt.query_map([], |r| r.get::<_, i64>(0))?;
    Ok(rows.map(|r| r.map(|e| e as u64)).collect::<rusqlite::Result<_>>()?)
}

/// Records that a KEK is about to be generated for `epoch`.
pub(crate) fn add_pending(conn: &Connection, epoch: u64) -> Result<()> {
    conn.prepare_cached("INSERT INTO pending_epochs (epoch) VALUES (?1)")?.execute([epoch as i64])?;
    Ok(())
}

/// Forgets a pending epoch.
pub(crate) fn remove_pending(conn: &Connection, epoch: u64) -> Result<()> {
    conn.prepare_cached("DELETE FROM pending_epochs WHERE epoch = ?1")?.execute([epoch as i64])?;
    Ok(())
}

/// KEK aliases retired by a committed rotation and not yet deleted from the keystore.
pub(crate) fn retired_aliases(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT alias FROM retired_keks")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a KEK alias to delete from the keystore once the rotation has committed.
pub(crate) fn retire(conn: &Connection, alias: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO retired_keks (alias) VALUES (?1)")?.execute([alias])?;
    Ok(())
}

/// Forgets a retired alias once its KEK is deleted.
pub(crate) fn forget_retired(conn: &Connection, alias: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM retired_keks WHERE alias = ?1")?.execute([alias])?;
    Ok(())
}

/// One wrapped secret: its epoch and ciphertext.
pub(crate) fn get(conn: &Connection, id: &str) -> Result<Option<(u64, Vec<u8>)>> {
    Ok(conn
        .prepare_cached("SELECT epoch, wrapped FROM secrets WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
        .optional()?)
}

/// Stores (or replaces) a wrapped secret.
pub(crate) fn put(conn: &Connection, id: &str, epoch: u64, wrapped: &[u8]) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO secrets (id, epoch, wrapped) VALUES (?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, wrapped = excluded.wrapped",
    )?
    .execute(params![id, epoch as i64, wrapped])?;
    Ok(())
}

/// Deletes a wrapped secret; true when one was there.
pub(crate) fn delete(conn: &Connection, id: &str) -> Result<bool> {
    Ok(conn.prepare_cached("DELETE FROM secrets WHERE id = ?1")?.execute([id])? == 1)
}

/// Every wrapped secret: id, epoch, ciphertext.
pub(crate) fn all(conn: &Connection) -> Result<Vec<(String, u64, Vec<u8>)>> {
    let mut stmt = conn.prepare_cached("SELECT id, epoch, wrapped FROM secrets")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

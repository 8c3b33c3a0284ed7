//! The `device` and `prekeys` tables: this device's enrolment and its unused prekeys' public
//! halves (G4).
//!
//! The private halves are secrets like any other and live in the keyring; what is here is public
//! and can be handed to dispatch as it is.

use crate::envelope::PublicKey;
use crate::{Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use uuid::Uuid;

/// The enrolled device.
pub(crate) struct Device {
    /// The device's id.
    pub(crate) device_id: Uuid,
    /// The pinned dispatch public key.
    pub(crate) dispatch_key: PublicKey,
    /// The identity key's public half.
    pub(crate) identity_key: PublicKey,
    /// The id the next minted prekey gets.
    pub(crate) next_prekey_id: u32,
}

/// The enrolled device, if any.
pub(crate) fn get(conn: &Connection) -> Result<Option<Device>> {
    let row: Option<(String, Vec<u8>, Vec<u8>, i64)> = conn
        .prepare_cached("SELECT device_id, dispatch_key, identity_key, next_prekey_id FROM device WHERE singleton = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((id, dispatch, identity, next)) = row else {
        return Ok(None);
    };
    let bad = |_| Error::integrity("stored device identity is unreadable");
    Ok(Some(Device {
        device_id: Uuid::parse_str(&id).map_err(|_| Error::integrity("stored device id is unreadable"))?,
        dispatch_key: PublicKey::from_bytes(&dispatch).map_err(bad)?,
        identity_key: PublicKey::from_bytes(&identity).map_err(bad)?,
        next_prekey_id: u32::try_from(next).map_err(|_| Error::integrity("prekey ids are exhausted"))?,
    }))
}

/// Whether the device is enrolled (and so keeps an outbox).
pub(crate) fn enrolled(conn: &Connection) -> Result<bool> {
    Ok(conn.prepare_cached("SELECT 1 FROM device WHERE singleton = 1")?.exists([])?)
}

/// Stores the device's enrolment.
pub(crate) fn insert(
    conn: &Connection,
    device_id: Uuid,
    dispatch_key: &PublicKey,
    identity_key: &PublicKey,
    now_ms: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO device (singleton, device_id, dispatch_key, identity_key, next_prekey_id, enrolled_ms)
         VALUES (1, ?1, ?2, ?3, 1, ?4)",
    )?
    .execute(params![
        device_id.to_string(),
        dispatch_key.as_bytes().as_slice(),
        identity_key.as_bytes().as_slice(),
        now_ms
    ])?;
    Ok(())
}

/// Stores the id the next minted prekey gets.
pub(crate) fn set_next_prekey_id(conn: &Connection, next: u32) -> Result<()> {
    conn.prepare_cached("UPDATE device SET next_prekey_id = ?1 WHERE singleton = 1")?.execute([next])?;
    Ok(())
}

/// Stores an unused prekey's public half.
pub(crate) fn insert_prekey(conn: &Connection, id: u32, public: &PublicKey, now_ms: i64) -> Result<()> {
    conn.prepare_cached("INSERT INTO prekeys (id, public_key, created_ms) VALUES (?1, ?2, ?3)")?.execute(params![
        id,
        public.as_bytes().as_slice(),
        now_ms
    ])?;
    Ok(())
}

/// Forgets a prekey's public half.
pub(crate) fn delete_prekey(conn: &Connection, id: u32) -> Result<()> {
    conn.prepare_cached("DELETE FROM prekeys WHERE id = ?1")?.execute([id])?;
    Ok(())
}

/// Every unused prekey: id and public half, by id.
pub(crate) fn prekeys(conn: &Connection) -> Result<Vec<(u32, PublicKey)>> {
    let mut stmt = conn.prepare_cached("SELECT id, public_key FROM prekeys ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, pk) = row?;
        out.push((id, PublicKey::from_bytes(&pk).map_err(|_| Error::integrity("stored prekey is unreadable"))?));
    }
    Ok(out)
}

/// The ids of the unused prekeys below `floor`.
pub(crate) fn prekey_ids_below(conn: &Connection, floor: u32) -> Result<Vec<u32>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM prekeys WHERE id < ?1 ORDER BY id")?;
    let rows = stmt.query_map([i64::from(floor)], |r| r.get::<_, i64>(0))?;
    let mut ids = Vec::new();
    for id in rows {
        ids.push(u32::try_from(id?).map_err(|_| Error::integrity("stored prekey id out of range"))?);
    }
    Ok(ids)
}

/// How many unused prekeys the device holds.
pub(crate) fn prekey_count(conn: &Connection) -> Result<u32> {
    Ok(conn.prepare_cached("SELECT count(*) FROM prekeys")?.query_row([], |r| r.get(0))?)
}

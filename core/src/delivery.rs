//! Sealed delivery of job sheets: device identity, one-time prekeys, receiving envelopes (G4, G5).
//!
//! Enrolment gives the device an X25519 identity key and a batch of one-time prekeys, and pins the
//! dispatch public key. Their private halves are secrets like any other in the vault: wrapped
//! under the epoch master key, so every shred's rotation re-wraps them and no old copy of the
//! database can unwrap them. Dispatch seals each sheet to one prekey; opening it deletes that
//! prekey's private half in the same transaction that stores the sheet, so an envelope captured on
//! the way can never be opened again. Only when dispatch has no prekey left does it seal to the
//! identity key, and the job and the audit log say so.
//!
//! [`seal_job_sheet`] is the dispatch side, for backends written in Rust and for the CLI.

use crate::crypto::Key32;
use crate::envelope::{self, EnvelopeHeader, PublicKey, RecipientKeyId, SecretKey};
use crate::receipt::ReceiptKey;
use crate::sheet::JobSheet;
use crate::vault::{load_live, wrap_aad, Inner, JobInfo, Vault};
use crate::{store, Error, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

/// The format tag of a device bundle.
pub const BUNDLE_FORMAT: &str = "jobseal.bundle.v1";
/// Most prekeys minted in one call.
pub const MAX_PREKEYS_PER_CALL: u32 = 500;
/// Most unused prekeys a device holds at once.
pub const MAX_PREKEYS_HELD: u32 = 2000;
const IDENTITY_SECRET: &str = "device:identity";

/// What the device publishes to dispatch: who it is and the keys sheets may be sealed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceBundle {
    /// Always [`BUNDLE_FORMAT`].
    pub format: String,
    /// The device's identity, bound into every envelope sealed to it.
    pub device_id: Uuid,
    /// The long-term identity key, for the fallback when no prekey is left.
    pub identity_key: PublicKey,
    /// Unused one-time prekeys.
    pub prekeys: Vec<Prekey>,
}

/// A one-time prekey's public half.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prekey {
    /// The id the envelope names it by.
    pub id: u32,
    /// The X25519 public key.
    pub public_key: PublicKey,
}

impl DeviceBundle {
    /// Parses a bundle from JSON. Low-order, all-zero and non-canonical keys are refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // Serde's messages quote the input (an unknown key, a bad string), and a bundle passed
        // where a sheet belongs would put a customer value in the error: say where, not what.
        // Found by the `ffi_inputs` fuzz target.
        let b: DeviceBundle = serde_json::from_slice(bytes).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "could not be read",
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "is truncated",
                serde_json::error::Category::Data if is_key_error(&e) => "holds a weak or malformed X25519 key",
                serde_json::error::Category::Data => "does not match the bundle format",
            };
            Error::InvalidInput(format!("device bundle {what} (line {}, column {})", e.line(), e.column()))
        })?;
        if b.format != BUNDLE_FORMAT {
            return Err(Error::InvalidInput(format!("device bundle format must be {BUNDLE_FORMAT:?}")));
        }
        Ok(b)
    }
}

/// Whether a bundle failed to parse because of a key check (the only custom errors it raises).
fn is_key_error(e: &serde_json::Error) -> bool {
    let text = e.to_string();
    ["weak X25519 key", "malformed envelope or key"].iter().any(|m| text.starts_with(m))
}

/// Seals a job sheet (JSON) for a device, from dispatch's secret key. Sealed to the prekey `prekey`
/// of the bundle, or to the identity key when `prekey` is `None` (only when no prekey is left).
/// The sheet is validated first, and its job id and version are bound into the envelope.
pub fn seal_job_sheet(
    dispatch_key: &SecretKey,
    bundle: &DeviceBundle,
    prekey: Option<u32>,
    sheet_json: &[u8],
) -> Result<Vec<u8>> {
    let sheet = JobSheet::from_json(sheet_json)?;
    let (recipient, public) = match prekey {
        Some(id) => {
            let p = bundle
                .prekeys
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| Error::InvalidInput(format!("prekey {id} is not in the bundle")))?;
            (RecipientKeyId::Prekey(id), p.public_key)
        }
        None => (RecipientKeyId::Identity, bundle.identity_key),
    };
    let header = EnvelopeHeader::new(bundle.device_id, sheet.job_id, sheet.version, recipient);
    Ok(envelope::seal_sheet(dispatch_key, &public, &header, sheet_json)?)
}

/// Deletes a used prekey, private and public halves. Called inside the ingest transaction.
pub(crate) fn consume_prekey(conn: &Connection, id: u32) -> Result<()> {
    let gone = conn.prepare_cached("DELETE FROM secrets WHERE id = ?1")?.execute([prekey_secret(id)])?;
    conn.prepare_cached("DELETE FROM prekeys WHERE id = ?1")?.execute([id])?;
    if gone != 1 {
        return Err(Error::PrekeyUnavailable(id));
    }
    Ok(())
}

fn prekey_secret(id: u32) -> String {
    format!("prekey:{id}")
}

struct Device {
    device_id: Uuid,
    dispatch_key: PublicKey,
    identity_key: PublicKey,
    next_prekey_id: u32,
}

fn device(conn: &Connection) -> Result<Option<Device>> {
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

/// The epoch master key and epoch, borrowed apart from the connection so that secrets can be
/// wrapped inside a transaction on it.
struct Wrapper<'a> {
    emk: &'a Key32,
    epoch: u64,
}

impl Wrapper<'_> {
    fn wrap_secret(&self, conn: &Connection, id: &str, secret: &SecretKey) -> Result<()> {
        let wrapped = self.emk.seal(secret.to_bytes().as_ref(), wrap_aad(id, self.epoch).bytes())?;
        conn.execute(
            "INSERT INTO secrets (id, epoch, wrapped) VALUES (?1, ?2, ?3)",
            params![id, self.epoch as i64, wrapped],
        )?;
        Ok(())
    }

    fn mint_prekeys(&self, conn: &Connection, first: u32, count: u32, now: i64) -> Result<u32> {
        let next = first.checked_add(count).ok_or_else(|| Error::integrity("prekey ids are exhausted"))?;
        for id in first..next {
            let (secret, public) = envelope::generate_keypair()?;
            self.wrap_secret(conn, &prekey_secret(id), &secret)?;
            conn.execute(
                "INSERT INTO prekeys (id, public_key, created_ms) VALUES (?1, ?2, ?3)",
                params![id, public.as_bytes().as_slice(), now],
            )?;
        }
        conn.execute("UPDATE device SET next_prekey_id = ?1 WHERE singleton = 1", [next])?;
        Ok(next)
    }
}

impl Inner {
    pub(crate) fn unwrap_secret(&self, id: &str) -> Result<Option<SecretKey>> {
        unwrap_secret(&self.conn, &self.emk, self.epoch, id)
    }
}

/// The device identity secret key (the device must be enrolled).
pub(crate) fn identity_secret(inner: &Inner) -> Result<SecretKey> {
    inner.unwrap_secret(IDENTITY_SECRET)?.ok_or(Error::Enrolment("this device is not enrolled"))
}

/// The enrolled device's id, if any.
pub(crate) fn device_id(conn: &Connection) -> Result<Option<Uuid>> {
    Ok(device(conn)?.map(|d| d.device_id))
}

fn bundle(conn: &Connection) -> Result<DeviceBundle> {
    let dev = device(conn)?.ok_or(Error::Enrolment("this device is not enrolled"))?;
    let mut stmt = conn.prepare_cached("SELECT id, public_key FROM prekeys ORDER BY id")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)))?;
    let mut prekeys = Vec::new();
    for row in rows {
        let (id, pk) = row?;
        let public_key = PublicKey::from_bytes(&pk).map_err(|_| Error::integrity("stored prekey is unreadable"))?;
        prekeys.push(Prekey { id, public_key });
    }
    Ok(DeviceBundle {
        format: BUNDLE_FORMAT.to_owned(),
        device_id: dev.device_id,
        identity_key: dev.identity_key,
        prekeys,
    })
}

/// The device id and shred-receipt key, when the device is enrolled. Reads the identity key under
/// `emk` of `epoch`, so a shred calls it before its rotation.
pub(crate) fn receipt_signer(conn: &Connection, emk: &Key32, epoch: u64) -> Result<Option<(Uuid, ReceiptKey)>> {
    let Some(dev) = device(conn)? else { return Ok(None) };
    let identity =
        unwrap_secret(conn, emk, epoch, IDENTITY_SECRET)?.ok_or_else(|| Error::integrity("identity key is missing"))?;
    Ok(Some((dev.device_id, ReceiptKey::derive(&identity, &dev.dispatch_key, dev.device_id)?)))
}

fn unwrap_secret(conn: &Connection, emk: &Key32, epoch: u64, id: &str) -> Result<Option<SecretKey>> {
    let Some(raw) = crate::vault::unwrap_stored(conn, emk, epoch, id)? else { return Ok(None) };
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(raw.as_slice().try_into().map_err(|_| Error::Tampered("stored key has the wrong length"))?);
    Ok(Some(SecretKey::from_bytes(&bytes).map_err(|_| Error::Tampered("stored key is not usable"))?))
}

fn check_count(count: u32) -> Result<()> {
    if count == 0 || count > MAX_PREKEYS_PER_CALL {
        return Err(Error::InvalidInput(format!("prekey count must be 1 to {MAX_PREKEYS_PER_CALL}")));
    }
    Ok(())
}

impl Vault {
    /// Enrols this device: creates its identity key and `prekeys` one-time prekeys, pins the
    /// dispatch public key, and returns the public bundle to send to dispatch. A device enrols
    /// once; a second call is refused.
    pub fn enrol(&self, dispatch_key: PublicKey, prekeys: u32) -> Result<DeviceBundle> {
        check_count(prekeys)?;
        let mut inner = self.lock();
        let now = inner.begin()?;
        let (identity, identity_pub) = envelope::generate_keypair()?;
        let Inner { conn, emk, epoch, .. } = &mut *inner;
        let keys = Wrapper { emk, epoch: *epoch };
        let tx = store::write_tx(conn)?;
        if device(&tx)?.is_some() {
            return Err(Error::Enrolment("this device is already enrolled"));
        }
        tx.prepare_cached(
            "INSERT INTO device (singleton, device_id, dispatch_key, identity_key, next_prekey_id, enrolled_ms)
             VALUES (1, ?1, ?2, ?3, 1, ?4)",
        )?
        .execute(params![
            Uuid::new_v4().to_string(),
            dispatch_key.as_bytes().as_slice(),
            identity_pub.as_bytes().as_slice(),
            now
        ])?;
        crate::audit::enqueue_existing(&tx)?;
        keys.wrap_secret(&tx, IDENTITY_SECRET, &identity)?;
        keys.mint_prekeys(&tx, 1, prekeys, now)?;
        let bundle = bundle(&tx)?;
        tx.commit()?;
        Ok(bundle)
    }

    /// The public bundle with every unused prekey.
    pub fn device_bundle(&self) -> Result<DeviceBundle> {
        bundle(&self.lock().conn)
    }

    /// The pinned dispatch public key.
    pub fn dispatch_key(&self) -> Result<PublicKey> {
        let inner = self.lock();
        Ok(device(&inner.conn)?.ok_or(Error::Enrolment("this device is not enrolled"))?.dispatch_key)
    }

    /// Mints `count` more prekeys when dispatch runs low, and returns the bundle of all unused ones.
    pub fn add_prekeys(&self, count: u32) -> Result<DeviceBundle> {
        check_count(count)?;
        let mut inner = self.lock();
        let now = inner.begin()?;
        let Inner { conn, emk, epoch, .. } = &mut *inner;
        let keys = Wrapper { emk, epoch: *epoch };
        let tx = store::write_tx(conn)?;
        let dev = device(&tx)?.ok_or(Error::Enrolment("this device is not enrolled"))?;
        let held: u32 = tx.prepare_cached("SELECT count(*) FROM prekeys")?.query_row([], |r| r.get(0))?;
        if held + count > MAX_PREKEYS_HELD {
            return Err(Error::InvalidInput(format!("a device holds at most {MAX_PREKEYS_HELD} unused prekeys")));
        }
        keys.mint_prekeys(&tx, dev.next_prekey_id, count, now)?;
        let bundle = bundle(&tx)?;
        tx.commit()?;
        Ok(bundle)
    }

    /// Opens a sealed job sheet and stores it, deleting the prekey it was sealed to in the same
    /// transaction. Envelopes for closed jobs (tombstones) and for versions not newer than the
    /// one held are refused before any key is touched; forged, altered or misaddressed envelopes
    /// are refused after authentication fails. A refused envelope changes nothing.
    pub fn receive(&self, envelope_bytes: &[u8]) -> Result<JobInfo> {
        let parsed = envelope::parse(envelope_bytes)?;
        let header = *parsed.header();
        let mut inner = self.lock();
        let now = inner.begin()?;
        let dev = device(&inner.conn)?.ok_or(Error::Enrolment("this device is not enrolled"))?;
        if header.device_id != dev.device_id {
            return Err(Error::Misaddressed);
        }
        // Replay and rollback checks on the (still unauthenticated) header: they can only refuse.
        match load_live(&inner.conn, header.job_id) {
            Ok(held) if header.sheet_version <= held.version => {
                return Err(Error::StaleVersion {
                    job_id: header.job_id,
                    held: held.version,
                    offered: header.sheet_version,
                })
            }
            Ok(_) | Err(Error::JobNotFound(_)) => {}
            Err(e) => return Err(e),
        }
        let key = match header.recipient {
            RecipientKeyId::Prekey(id) => {
                inner.unwrap_secret(&prekey_secret(id))?.ok_or(Error::PrekeyUnavailable(id))?
            }
            RecipientKeyId::Identity => {
                inner.unwrap_secret(IDENTITY_SECRET)?.ok_or_else(|| Error::integrity("identity key is missing"))?
            }
        };
        let plaintext = envelope::open_sheet(&parsed, &key, &dev.dispatch_key, dev.device_id)?;
        let sheet = JobSheet::from_json(&plaintext)?;
        if sheet.job_id != header.job_id || sheet.version != header.sheet_version {
            return Err(Error::Tampered("the sheet inside does not match its envelope"));
        }
        inner.ingest(&sheet, now, Some(header.recipient))
    }
}

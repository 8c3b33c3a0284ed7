//! Enrolment, prekeys and receiving sealed job sheets (G4, G5).
//!
//! Enrolment gives the device an X25519 identity key and a batch of one-time prekeys, and pins the
//! dispatch public key. Their private halves are keyring secrets like any other: wrapped under the
//! epoch master key, so every shred's rotation re-wraps them and no old copy of the database can
//! unwrap them. Dispatch seals each sheet to one prekey; opening it deletes that prekey's private
//! half in the same transaction that stores the sheet, so an envelope captured on the way can
//! never be opened again. Only when dispatch has no prekey left does it seal to the identity key,
//! and the job and the audit log say so.

use super::{Inner, Vault};
use crate::audit::AuditKey;
use crate::bundle::{check_count, DeviceBundle, Prekey, BUNDLE_FORMAT, MAX_PREKEYS_HELD};
use crate::envelope::{self, PublicKey, RecipientKeyId, SecretKey};
use crate::keyring::{Keyring, SecretId};
use crate::model::JobInfo;
use crate::receipt::ReceiptKey;
use crate::sheet::JobSheet;
use crate::store::{self, device, meta};
use crate::{journal, Error, Result};
use rusqlite::Connection;
use uuid::Uuid;

const NOT_ENROLLED: Error = Error::Enrolment("this device is not enrolled");

/// Deletes a prekey, private and public halves; true when the private half was there.
fn delete_prekey(keyring: &Keyring, tx: &Connection, id: u32) -> Result<bool> {
    let gone = keyring.delete(tx, SecretId::Prekey(id))?;
    device::delete_prekey(tx, id)?;
    Ok(gone)
}

/// Deletes a used prekey, private and public halves. Called inside the ingest transaction.
pub(super) fn consume_prekey(keyring: &Keyring, tx: &Connection, id: u32) -> Result<()> {
    if !delete_prekey(keyring, tx, id)? {
        return Err(Error::PrekeyUnavailable(id));
    }
    Ok(())
}

/// Mints `count` prekeys from id `first`: private halves into the keyring, public halves into
/// `prekeys`.
fn mint_prekeys(keyring: &Keyring, tx: &Connection, first: u32, count: u32, now: i64) -> Result<()> {
    let next = first.checked_add(count).ok_or_else(|| Error::integrity("prekey ids are exhausted"))?;
    for id in first..next {
        let (secret, public) = envelope::generate_keypair()?;
        keyring.put(tx, SecretId::Prekey(id), secret.to_bytes().as_ref())?;
        device::insert_prekey(tx, id, &public, now)?;
    }
    device::set_next_prekey_id(tx, next)
}

fn bundle(conn: &Connection) -> Result<DeviceBundle> {
    let dev = device::get(conn)?.ok_or(NOT_ENROLLED)?;
    let prekeys = device::prekeys(conn)?.into_iter().map(|(id, public_key)| Prekey { id, public_key }).collect();
    Ok(DeviceBundle {
        format: BUNDLE_FORMAT.to_owned(),
        device_id: dev.device_id,
        identity_key: dev.identity_key,
        prekeys,
    })
}

impl Inner {
    /// The device identity secret key (the device must be enrolled).
    pub(super) fn identity_secret(&self) -> Result<SecretKey> {
        self.keyring.secret_key(&self.conn, SecretId::Identity)?.ok_or(NOT_ENROLLED)
    }

    /// The identity secret key of a device known to be enrolled: its absence is an integrity
    /// failure, not "not enrolled".
    fn enrolled_identity(&self) -> Result<SecretKey> {
        self.keyring
            .secret_key(&self.conn, SecretId::Identity)?
            .ok_or_else(|| Error::integrity("identity key is missing"))
    }

    /// A device enrolled before keyed audit chains has no chain key: derives it (from the
    /// identity key and the pinned dispatch key, as at enrolment) and keys the chain from its next
    /// event on; dispatch switches when the first keyed link arrives. Does nothing otherwise.
    pub(super) fn key_audit_chain_of_older_enrolment(&mut self) -> Result<()> {
        let Some(dev) = device::get(&self.conn)? else { return Ok(()) };
        if self.keyring.audit_key(&self.conn)?.is_some() {
            return Ok(());
        }
        let key = AuditKey::derive(&self.enrolled_identity()?, &dev.dispatch_key, dev.device_id)?;
        let tx = store::write_untimed(&mut self.conn)?;
        self.keyring.put(&tx, SecretId::AuditKey, key.as_bytes())?;
        if meta::audit_keyed_from(&tx)?.is_none() {
            let next = meta::audit_head(&tx)?.map_or(1, |(seq, _)| seq + 1);
            meta::set_audit_keyed_from(&tx, next)?;
        }
        tx.commit()
    }

    /// The enrolled device's id, if any.
    pub(super) fn device_id(&self) -> Result<Option<Uuid>> {
        Ok(device::get(&self.conn)?.map(|d| d.device_id))
    }

    /// Deletes every prekey below `floor` (see `wire::SyncResponse::prekey_floor`): dispatch has
    /// spent them, and no envelope waiting for the device is sealed to one. Returns how many.
    pub(super) fn burn_prekeys_below(&mut self, floor: u32) -> Result<u32> {
        let ids = device::prekey_ids_below(&self.conn, floor)?;
        if ids.is_empty() {
            return Ok(0);
        }
        let stamp = self.begin_stamp()?;
        let Inner { conn, keyring, .. } = self;
        let tx = store::write(conn, &stamp)?;
        for &id in &ids {
            delete_prekey(keyring, &tx, id)?;
        }
        tx.commit()?;
        Ok(u32::try_from(ids.len()).unwrap_or(u32::MAX))
    }

    /// The device id and shred-receipt key, when the device is enrolled. Reads the identity key
    /// under the current epoch, so a shred calls it before its rotation.
    pub(super) fn receipt_signer(&self) -> Result<Option<(Uuid, ReceiptKey)>> {
        let Some(dev) = device::get(&self.conn)? else { return Ok(None) };
        let identity = self.enrolled_identity()?;
        Ok(Some((dev.device_id, ReceiptKey::derive(&identity, &dev.dispatch_key, dev.device_id)?)))
    }
}

impl Vault {
    /// Enrols this device: creates its identity key and `prekeys` one-time prekeys, pins the
    /// dispatch public key, and returns the public bundle to send to dispatch. A device enrols
    /// once; a second call is refused.
    pub fn enrol(&self, dispatch_key: PublicKey, prekeys: u32) -> Result<DeviceBundle> {
        check_count(prekeys)?;
        let mut inner = self.lock();
        let stamp = inner.begin()?;
        let now = stamp.ms;
        let (identity, identity_pub) = envelope::generate_keypair()?;
        let Inner { conn, keyring, .. } = &mut *inner;
        let tx = store::write(conn, &stamp)?;
        if device::get(&tx)?.is_some() {
            return Err(Error::Enrolment("this device is already enrolled"));
        }
        let device_id = crate::crypto::random_uuid()?;
        device::insert(&tx, device_id, &dispatch_key, &identity_pub, now)?;
        // From enrolment on, the audit chain is keyed with a key dispatch can derive too; the
        // events so far are re-linked under it before any of them leaves the device.
        let audit_key = AuditKey::derive(&identity, &dispatch_key, device_id)?;
        keyring.put(&tx, SecretId::AuditKey, audit_key.as_bytes())?;
        journal::key_existing(&tx, &audit_key)?;
        journal::enqueue_existing(&tx)?;
        keyring.put(&tx, SecretId::Identity, identity.to_bytes().as_ref())?;
        mint_prekeys(keyring, &tx, 1, prekeys, now)?;
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
        Ok(device::get(&inner.conn)?.ok_or(NOT_ENROLLED)?.dispatch_key)
    }

    /// Mints prekeys for a top-up dispatch asked for: `wanted` of them, or fewer so that the
    /// device never holds more than [`MAX_PREKEYS_HELD`], and returns only the new ones (at most
    /// [`crate::MAX_PREKEYS_PER_CALL`]): dispatch already has the others, and a top-up must never
    /// fail on the per-call limit however many the device holds.
    pub(crate) fn mint_prekeys_for_top_up(&self, wanted: u32) -> Result<Vec<Prekey>> {
        let mut inner = self.lock();
        let stamp = inner.begin()?;
        let Inner { conn, keyring, .. } = &mut *inner;
        let tx = store::write(conn, &stamp)?;
        let dev = device::get(&tx)?.ok_or(NOT_ENROLLED)?;
        let room = MAX_PREKEYS_HELD.saturating_sub(device::prekey_count(&tx)?);
        let count = wanted.min(room).min(crate::MAX_PREKEYS_PER_CALL);
        if count == 0 {
            return Ok(Vec::new());
        }
        let first = dev.next_prekey_id;
        mint_prekeys(keyring, &tx, first, count, stamp.ms)?;
        let fresh = bundle(&tx)?.prekeys.into_iter().filter(|p| p.id >= first).collect();
        tx.commit()?;
        Ok(fresh)
    }

    /// Mints `count` more prekeys when dispatch runs low, and returns the bundle of all unused ones.
    pub fn add_prekeys(&self, count: u32) -> Result<DeviceBundle> {
        check_count(count)?;
        let mut inner = self.lock();
        let stamp = inner.begin()?;
        let now = stamp.ms;
        let Inner { conn, keyring, .. } = &mut *inner;
        let tx = store::write(conn, &stamp)?;
        let dev = device::get(&tx)?.ok_or(NOT_ENROLLED)?;
        let held = device::prekey_count(&tx)?;
        if held + count > MAX_PREKEYS_HELD {
            return Err(Error::InvalidInput(format!("a device holds at most {MAX_PREKEYS_HELD} unused prekeys")));
        }
        mint_prekeys(keyring, &tx, dev.next_prekey_id, count, now)?;
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
        let dev = device::get(&inner.conn)?.ok_or(NOT_ENROLLED)?;
        if header.device_id != dev.device_id {
            return Err(Error::Misaddressed);
        }
        // Replay and rollback checks on the (still unauthenticated) header: they can only refuse.
        let (held, refusal) = match inner.held(header.job_id) {
            Ok(Some(held)) if header.sheet_version <= held.version => (
                None,
                Some(Error::StaleVersion { job_id: header.job_id, held: held.version, offered: header.sheet_version }),
            ),
            Ok(held) => (held, None),
            Err(e) => (None, Some(e)),
        };
        if let Some(refusal) = refusal {
            // An authentic envelope refused all the same (a closed job, a stale version) still
            // uses up its prekey: otherwise the envelope, kept by anyone who saw it, stays
            // openable for as long as the prekey lives. A forged one burns nothing.
            if let RecipientKeyId::Prekey(id) = header.recipient {
                if let Some(key) = inner.keyring.secret_key(&inner.conn, SecretId::Prekey(id))? {
                    if envelope::open_sheet(&parsed, &key, &dev.dispatch_key, dev.device_id).is_ok() {
                        let Inner { conn, keyring, .. } = &mut *inner;
                        let tx = store::write(conn, &now)?;
                        consume_prekey(keyring, &tx, id)?;
                        tx.commit()?;
                    }
                }
            }
            return Err(refusal);
        }
        let key = match header.recipient {
            RecipientKeyId::Prekey(id) => {
                inner.keyring.secret_key(&inner.conn, SecretId::Prekey(id))?.ok_or(Error::PrekeyUnavailable(id))?
            }
            RecipientKeyId::Identity => inner.enrolled_identity()?,
        };
        let plaintext = envelope::open_sheet(&parsed, &key, &dev.dispatch_key, dev.device_id)?;
        let sheet = JobSheet::from_json(&plaintext)?;
        if sheet.job_id != header.job_id || sheet.version != header.sheet_version {
            return Err(Error::Tampered("the sheet inside does not match its envelope"));
        }
        super::lifecycle::refuse_expired(&sheet, &now)?;
        inner.store_sheet(&sheet, &now, Some(header.recipient), held)
    }
}

//! The keyring: the single owner of the epoch master key and of every wrapped secret (G1, G3, G4).
//!
//! The key hierarchy is KEK (platform keystore, one per epoch) -> epoch master key (EMK, wrapped by
//! the KEK in `epochs`) -> every other secret (wrapped by the EMK in `secrets`): each job's data
//! key, each one-time prekey, the device identity key and the device token. Every secret is
//! addressed by a typed [`SecretId`] and wrapped with an AAD that binds its id and epoch, so a
//! wrapped secret moved to another row or carried over from another epoch fails to open.
//!
//! Rotation lives here and nowhere else: [`Keyring::prepare_rotation`] creates the next KEK and
//! EMK, [`Keyring::rewrap_all`] re-wraps every surviving secret inside the caller's shred
//! transaction, and [`Keyring::complete_rotation`] switches to the new key and deletes the old KEK
//! once that transaction has committed. A crash at any point is finished by
//! [`Keyring::finish_interrupted`] at the next open, which deletes orphan and retired KEKs
//! idempotently. Once the old KEK is gone, no copy of the old database can unwrap anything.
//!
//! The keyring also holds the vault's integrity key (`crate::integrity`), a secret like the others
//! (re-wrapped by every rotation), unwrapped once at open. The epoch master key is wrapped together
//! with a format byte: a vault whose master key lacks it was written before integrity tags
//! existed, and is upgraded once, at open ([`Keyring::open`]'s `on_upgrade`), by a key rotation.
//! Editing the database cannot make a tagged vault look untagged again: the format byte is inside
//! the KEK's wrap, which only the keystore can produce, and the pre-upgrade wrap's KEK is deleted
//! by the upgrade.
//!
//! A rotation writes nothing durable of its own outside the shred transaction (G3 at the fewest
//! fsyncs): epochs only ever grow by one, so the only KEK an uncommitted rotation can leave behind
//! is the one of `current + 1`, which the next attempt and the next open delete by name, and the
//! retired KEK's row is forgotten by the next rotation's transaction, after deleting it again.

use crate::audit::AuditKey;
use crate::crypto::{Aad, Key32};
use crate::envelope::SecretKey;
use crate::integrity::IntegrityKey;
use crate::keys::{kek_alias, KeyStore};
use crate::store::{self, secrets, WriteTx};
use crate::{crash_point, Error, Result};
use rusqlite::Connection;
use std::sync::Arc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// What a wrapped secret is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SecretId {
    /// A job's data key, which seals its customer fields.
    JobKey(Uuid),
    /// A one-time prekey's private half.
    Prekey(u32),
    /// The device identity key's private half.
    Identity,
    /// The bearer token dispatch issued at enrolment.
    DeviceToken,
    /// The key of the integrity tags on job rows and the trusted-time state.
    Integrity,
    /// The audit chain key shared with dispatch, stored at enrolment.
    AuditKey,
}

impl SecretId {
    /// The row id in `secrets`, also bound into the wrap AAD.
    fn name(self) -> String {
        match self {
            SecretId::JobKey(job) => format!("dek:{job}"),
            SecretId::Prekey(id) => format!("prekey:{id}"),
            SecretId::Identity => "device:identity".to_owned(),
            SecretId::DeviceToken => "device:token".to_owned(),
            SecretId::Integrity => "vault:integrity".to_owned(),
            SecretId::AuditKey => "device:audit-key".to_owned(),
        }
    }
}

/// AAD of a secret wrapped under an epoch master key: its id and the epoch.
fn wrap_aad(name: &str, epoch: u64) -> Aad {
    Aad::new("jobseal/v1/wrap").part(name.as_bytes()).u64(epoch)
}

/// The format byte wrapped with the epoch master key by vaults with integrity tags (schema 3).
const EMK_FORMAT_TAGGED: u8 = 3;

/// Wraps an epoch master key, with the format byte, under the KEK `alias`.
fn wrap_emk(keystore: &dyn KeyStore, alias: &str, emk: &Key32) -> Result<Vec<u8>> {
    let mut plain = Zeroizing::new(Vec::with_capacity(33));
    plain.extend_from_slice(emk.as_bytes());
    plain.push(EMK_FORMAT_TAGGED);
    Ok(keystore.wrap(alias, &plain)?)
}

/// Unwraps an epoch master key; true when it carried the format byte of a tagged vault.
fn unwrap_emk(keystore: &dyn KeyStore, alias: &str, wrapped: &[u8]) -> Result<(Key32, bool)> {
    let raw = keystore.unwrap(alias, wrapped)?;
    match raw.len() {
        32 => Ok((Key32::from_slice(&raw)?, false)),
        33 if raw[32] == EMK_FORMAT_TAGGED => Ok((Key32::from_slice(&raw[..32])?, true)),
        _ => Err(Error::Tampered("the epoch master key has an unknown format")),
    }
}

/// Stores the integrity key wrapped under an epoch's master key.
fn put_integrity(conn: &Connection, emk: &Key32, epoch: u64, key: &IntegrityKey) -> Result<()> {
    let name = SecretId::Integrity.name();
    secrets::put(conn, &name, epoch, &emk.seal(key.as_bytes(), wrap_aad(&name, epoch).bytes())?)
}

/// Deletes the KEK of every epoch marked pending (a rotation, or the first epoch, that never
/// committed) and forgets the mark. `current` is the committed epoch, if any: finding it marked
/// pending means the key tables were tampered with.
fn delete_orphans(keystore: &dyn KeyStore, conn: &Connection, current: Option<u64>) -> Result<()> {
    for p in secrets::pending_epochs(conn)? {
        if Some(p) == current {
            return Err(Error::integrity("the current epoch is still marked pending"));
        }
        keystore.delete(&kek_alias(p))?;
        secrets::remove_pending(conn, p)?;
    }
    Ok(())
}

/// The next epoch's keys, made before the shred transaction that switches to them.
pub(crate) struct Rotation {
    next: u64,
    emk: Key32,
    wrapped_emk: Vec<u8>,
}

impl Rotation {
    /// The epoch the rotation moves to.
    pub(crate) fn epoch(&self) -> u64 {
        self.next
    }
}

/// The current epoch's master key and the keystore holding its KEK.
pub(crate) struct Keyring {
    keystore: Arc<dyn KeyStore>,
    epoch: u64,
    emk: Key32,
    integrity: IntegrityKey,
}

impl Keyring {
    /// Loads the current epoch's master key and the integrity key, or creates epoch 1 for a new
    /// vault. `on_create` runs inside the transaction that stores epoch 1 (the vault records its
    /// creation there); `on_upgrade` inside the one that gives a vault written before integrity
    /// tags its integrity key (the vault tags what it holds there). Both get the integrity key;
    /// `on_upgrade` also the current epoch.
    pub(crate) fn open(
        conn: &mut Connection,
        keystore: Arc<dyn KeyStore>,
        created_ms: i64,
        on_create: impl FnOnce(&WriteTx<'_>, &IntegrityKey) -> Result<()>,
        on_upgrade: impl FnOnce(&WriteTx<'_>, &IntegrityKey, u64) -> Result<()>,
    ) -> Result<Keyring> {
        if let Some((epoch, wrapped)) = secrets::current_epoch(conn)? {
            let alias = kek_alias(epoch);
            let (emk, tagged) = unwrap_emk(keystore.as_ref(), &alias, &wrapped)?;
            let name = SecretId::Integrity.name();
            let integrity = if tagged {
                // A tagged vault always has its integrity key. Without it (deleted with sqlite3) a
                // fresh key is stored: every existing tag then fails, which is what an edit must
                // cause, and the vault still opens, so its jobs can still be shredded.
                match secrets::get(conn, &name)? {
                    Some((e, w)) if e == epoch => {
                        IntegrityKey::from_slice(&emk.open(&w, wrap_aad(&name, epoch).bytes())?)?
                    }
                    _ => {
                        let key = IntegrityKey::random()?;
                        let tx = store::write_untimed(conn)?;
                        put_integrity(&tx, &emk, epoch, &key)?;
                        tx.commit()?;
                        key
                    }
                }
            } else {
                // The upgrade is a key rotation: a new KEK and master key (wrapped with the
                // format byte), every secret re-wrapped, the old KEK deleted after the commit. A
                // copy of the pre-upgrade wrap, written back to pass the vault off as untagged
                // again, then opens nothing.
                let mut ring = Keyring { keystore, epoch, emk, integrity: IntegrityKey::random()? };
                let rotation = ring.prepare_rotation()?;
                let next = rotation.epoch();
                let tx = store::write_untimed(conn)?;
                put_integrity(&tx, &ring.emk, epoch, &ring.integrity)?;
                ring.rewrap_all(&tx, &rotation, created_ms)?;
                on_upgrade(&tx, &ring.integrity, next)?;
                tx.commit()?;
                ring.complete_rotation(conn, rotation)?;
                return Ok(ring);
            };
            return Ok(Keyring { keystore, epoch, emk, integrity });
        }
        // The pending row is committed before the KEK is generated, so that a crash in between
        // leaves a record of the orphan key for the next open to delete.
        let epoch = 1u64;
        let alias = kek_alias(epoch);
        let tx = store::write_untimed(conn)?;
        delete_orphans(keystore.as_ref(), &tx, None)?;
        secrets::add_pending(&tx, epoch)?;
        tx.commit()?;
        // No epoch exists yet, so nothing can depend on a key under this alias: one left by an
        // earlier vault in this folder (whose database was removed) is stale and goes first.
        keystore.delete(&alias)?;
        keystore.generate(&alias)?;
        let emk = Key32::random()?;
        let wrapped = wrap_emk(keystore.as_ref(), &alias, &emk)?;
        let integrity = IntegrityKey::random()?;
        let tx = store::write_untimed(conn)?;
        secrets::insert_epoch(&tx, epoch, &wrapped, created_ms)?;
        secrets::remove_pending(&tx, epoch)?;
        put_integrity(&tx, &emk, epoch, &integrity)?;
        on_create(&tx, &integrity)?;
        tx.commit()?;
        Ok(Keyring { keystore, epoch, emk, integrity })
    }

    /// The integrity key (see `crate::integrity`).
    pub(crate) fn integrity(&self) -> &IntegrityKey {
        &self.integrity
    }

    /// The current key epoch.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Wraps and stores `secret` under `id`, replacing any earlier value.
    pub(crate) fn put(&self, conn: &Connection, id: SecretId, secret: &[u8]) -> Result<()> {
        let name = id.name();
        let wrapped = self.emk.seal(secret, wrap_aad(&name, self.epoch).bytes())?;
        secrets::put(conn, &name, self.epoch, &wrapped)
    }

    /// Reads and unwraps the secret `id`, if it exists.
    pub(crate) fn get(&self, conn: &Connection, id: SecretId) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let name = id.name();
        let Some((stored_epoch, wrapped)) = secrets::get(conn, &name)? else { return Ok(None) };
        if stored_epoch != self.epoch {
            return Err(Error::integrity("a secret is wrapped under a retired epoch"));
        }
        Ok(Some(self.emk.open(&wrapped, wrap_aad(&name, self.epoch).bytes())?))
    }

    /// A job's data key, if the job has one.
    pub(crate) fn data_key(&self, conn: &Connection, job_id: Uuid) -> Result<Option<Key32>> {
        Ok(self.get(conn, SecretId::JobKey(job_id))?.map(|raw| Key32::from_slice(&raw)).transpose()?)
    }

    /// The audit chain key, once the device is enrolled.
    pub(crate) fn audit_key(&self, conn: &Connection) -> Result<Option<AuditKey>> {
        Ok(self.get(conn, SecretId::AuditKey)?.map(|raw| AuditKey::from_bytes(&raw)).transpose()?)
    }

    /// An X25519 private key (prekey or identity key), if it exists.
    pub(crate) fn secret_key(&self, conn: &Connection, id: SecretId) -> Result<Option<SecretKey>> {
        let Some(raw) = self.get(conn, id)? else { return Ok(None) };
        let bytes: Zeroizing<[u8; 32]> =
            Zeroizing::new(raw.as_slice().try_into().map_err(|_| Error::Tampered("stored key has the wrong length"))?);
        Ok(Some(SecretKey::from_bytes(&bytes).map_err(|_| Error::Tampered("stored key is not usable"))?))
    }

    /// Deletes the secret `id`; true when it existed.
    pub(crate) fn delete(&self, conn: &Connection, id: SecretId) -> Result<bool> {
        secrets::delete(conn, &id.name())
    }

    /// Deletes KEKs that a committed rotation retired and KEKs generated for rotations that never
    /// committed, and forgets every epoch row but the current one. Safe to run any number of times.
    pub(crate) fn finish_interrupted(&self, conn: &Connection) -> Result<()> {
        self.forget_retired_keys(conn)?;
        self.delete_orphan_keys(conn)?;
        secrets::delete_epochs_except(conn, self.epoch)
    }

    /// Deletes every retired KEK from the keystore (again: deleting is idempotent, and a delete
    /// that failed after an earlier commit is retried here) and forgets it.
    fn forget_retired_keys(&self, conn: &Connection) -> Result<()> {
        for alias in secrets::retired_aliases(conn)? {
            self.keystore.delete(&alias)?;
            secrets::forget_retired(conn, &alias)?;
        }
        Ok(())
    }

    /// Inside a shred transaction: deletes every retired KEK again and forgets those whose delete
    /// succeeded. One that will not delete stays listed (for the next shred or open) and does not
    /// stop this shred: the job being shredded must not stay readable because an older key is
    /// stuck.
    fn forget_deleted_retired_keys(&self, conn: &Connection) -> Result<()> {
        for alias in secrets::retired_aliases(conn)? {
            if self.keystore.delete(&alias).is_ok() {
                secrets::forget_retired(conn, &alias)?;
            }
        }
        Ok(())
    }

    /// Deletes KEKs generated for rotations that never committed (a crash, or a keystore error
    /// earlier in this process): the next epoch's, which is the only one a rotation makes, and
    /// any that an older release recorded as pending.
    fn delete_orphan_keys(&self, conn: &Connection) -> Result<()> {
        delete_orphans(self.keystore.as_ref(), conn, Some(self.epoch))?;
        Ok(self.keystore.delete(&kek_alias(self.epoch + 1))?)
    }

    /// Makes the next epoch's KEK and master key. Nothing is written to the database: a crash
    /// after the KEK exists leaves the KEK of `current + 1`, which [`Keyring::finish_interrupted`]
    /// deletes by name at the next open, and a failed attempt's KEK is deleted here before the
    /// next one is generated.
    pub(crate) fn prepare_rotation(&self) -> Result<Rotation> {
        let next = self.epoch + 1;
        let alias = kek_alias(next);
        self.keystore.delete(&alias)?;
        crash_point("shred:before-kek");
        self.keystore.generate(&alias)?;
        let emk = Key32::random()?;
        let wrapped_emk = wrap_emk(self.keystore.as_ref(), &alias, &emk)?;
        crash_point("shred:kek-generated");
        Ok(Rotation { next, emk, wrapped_emk })
    }

    /// Inside the shred transaction: re-wraps every surviving secret under the rotation's master
    /// key, stores the new epoch, drops the old one and marks the old KEK for deletion (forgetting
    /// the KEKs earlier rotations retired, deleted again first). Every secret must be under the
    /// current epoch; one that is not means the tables were tampered with.
    pub(crate) fn rewrap_all(&self, tx: &WriteTx<'_>, rotation: &Rotation, now_ms: i64) -> Result<()> {
        for (name, epoch, wrapped) in secrets::all(tx)? {
            if epoch != self.epoch {
                return Err(Error::integrity("a secret is wrapped under a retired epoch"));
            }
            let raw = self.emk.open(&wrapped, wrap_aad(&name, self.epoch).bytes())?;
            let rewrapped = rotation.emk.seal(&raw, wrap_aad(&name, rotation.next).bytes())?;
            secrets::put(tx, &name, rotation.next, &rewrapped)?;
        }
        secrets::insert_epoch(tx, rotation.next, &rotation.wrapped_emk, now_ms)?;
        secrets::delete_epochs_except(tx, rotation.next)?;
        self.forget_deleted_retired_keys(tx)?;
        secrets::retire(tx, &kek_alias(self.epoch))?;
        secrets::remove_pending(tx, rotation.next)
    }

    /// After the shred transaction committed: switches to the new master key (the old one is
    /// zeroized as it drops) and deletes the retired KEK from the keystore. Its row stays until
    /// the next rotation's transaction or the next open forgets it, which saves the commit (and
    /// its fsync) that forgetting it here would cost.
    pub(crate) fn complete_rotation(&mut self, conn: &Connection, rotation: Rotation) -> Result<()> {
        self.emk = rotation.emk;
        self.epoch = rotation.next;
        for alias in secrets::retired_aliases(conn)? {
            self.keystore.delete(&alias)?;
            crash_point("shred:kek-deleted");
        }
        Ok(())
    }
}

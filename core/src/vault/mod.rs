//! The vault: one job sheet store per device, and the core's public API (G1, G2, G3, G5, G8).
//!
//! Every public call runs under one lock and, where it writes, in one SQLite transaction, so a call
//! either happens entirely or not at all and concurrent callers see each other's effects whole.
//! Each call first enforces hard expiry against trusted time, so an expired job shreds at the next
//! touch of the vault with no network and no sweep scheduled. Lock order: the vault mutex, then
//! SQLite's write lock; the keystore and clock are called with the mutex held and must not call back.
//!
//! The API is split by operation group: [`lifecycle`] (store, list, advance, reveal, audit),
//! [`delivery`] (enrolment, prekeys, sealed sheets), [`shred`] (close, cancel, revoke, expiry) and
//! [`sync`] (the exchange with dispatch). They call the layers below (store, keyring, journal)
//! and are never called back by them.

mod delivery;
mod events;
mod lifecycle;
mod shred;
mod sync;

use crate::audit::{AuditKind, NewEvent};
use crate::clock::{self, Clock, TimeState};
use crate::crypto::Aad;
use crate::keyring::Keyring;
use crate::keys::KeyStore;
use crate::model::{ShredOutcome, MAX_REPORT_CHARS};
use crate::store::{self, jobs, meta, Stamp, DB_FILE};
use crate::{journal, Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub use events::{VaultEvent, VaultObserver};

/// The device's job sheet vault.
pub struct Vault {
    inner: Mutex<Inner>,
    observers: events::Observers,
}

/// The vault's state behind its lock.
pub(crate) struct Inner {
    conn: Connection,
    keyring: Keyring,
    clock: Arc<dyn Clock>,
    dir: PathBuf,
    /// Shreds done while opening (expired jobs), kept for the first [`Vault::sweep`] to report.
    opened_with: Vec<ShredOutcome>,
    /// False only when no job is marked `closing`. Whatever marks a job sets it (before its
    /// write); [`Inner::shred_pending`] clears it once a rotation has shredded every marked job.
    /// Saves every call a scan of all live jobs (the `closing` column has no index).
    shreds_pending: bool,
    /// Changes committed by the call holding the lock, told to the observers when it unlocks.
    events: Vec<VaultEvent>,
    _lock: File,
}

impl Vault {
    /// Opens the vault in `dir`, creating it on first use. Finishes any shred or key rotation a
    /// crash interrupted, then shreds jobs whose hard expiry has passed.
    pub fn open(dir: impl AsRef<Path>, keystore: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Result<Vault> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        let lock = File::create(dir.join("vault.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
        let mut conn = store::open(&dir.join(DB_FILE))?;
        let reading = clock::read(clock.as_ref());
        let wall = reading.wall_ms;
        let on_create = |tx: &store::WriteTx<'_>, key: &crate::integrity::IntegrityKey| {
            meta::store_sealed_time(tx, &meta::seal_time_state(key, 1, &TimeState::initial(&reading))?)?;
            journal::record(
                tx,
                None,
                &NewEvent {
                    at_ms: wall,
                    job_id: None,
                    kind: AuditKind::VaultCreated,
                    field: None,
                    state: None,
                    detail: None,
                },
            )
            .map(|_| ())
        };
        // A vault written before integrity tags: its rows and its time are taken as found, once.
        let on_upgrade = |tx: &store::WriteTx<'_>, key: &crate::integrity::IntegrityKey, epoch: u64| {
            let state = match meta::take_legacy_high_water(tx)? {
                Some(hwm) => TimeState::from_high_water(hwm),
                None => TimeState::initial(&reading),
            };
            meta::store_sealed_time(tx, &meta::seal_time_state(key, epoch, &state)?)?;
            jobs::retag_all(tx, key)
        };
        let keyring = Keyring::open(&mut conn, keystore, wall, on_create, on_upgrade)?;
        let mut inner = Inner {
            conn,
            keyring,
            clock,
            dir,
            opened_with: Vec::new(),
            // A job marked before a crash or by an earlier process: the first call looks.
            shreds_pending: true,
            events: Vec::new(),
            _lock: lock,
        };
        inner.keyring.finish_interrupted(&inner.conn)?;
        inner.key_audit_chain_of_older_enrolment()?;
        store::checkpoint_truncate(&inner.conn)?;
        let now = inner.begin_stamp()?;
        inner.opened_with = inner.expire(&now)?;
        // Nobody can have subscribed yet; the first sweep reports these shreds.
        inner.events.clear();
        Ok(Vault { inner: Mutex::new(inner), observers: events::Observers::default() })
    }

    fn lock(&self) -> events::Locked<'_> {
        // A panic under the lock cannot leave a half-made change: every change is one SQLite
        // transaction and the in-memory key moves only after its commit.
        events::Locked::new(self.inner.lock().unwrap_or_else(|p| p.into_inner()), &self.observers)
    }

    /// The vault's directory.
    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }

    /// Trusted time now (see [`crate::clock`]). `Tampered` when the persisted trusted-time state
    /// was edited; dispatch's time (the next sync) repairs it.
    pub fn trusted_now(&self) -> Result<DateTime<Utc>> {
        Ok(clock::from_ms(self.lock().trusted_now()?))
    }

    /// Records server time from an authenticated sync answer as the trusted-time anchor. It never
    /// lowers trusted time (the high-water mark stays) nor the proven lower bound (an answer that
    /// arrives late carries an old time), and it replaces a trusted-time state that was edited.
    pub fn anchor_server_time(&self, server_time: DateTime<Utc>) -> Result<()> {
        let mut inner = self.lock();
        let reading = clock::read(inner.clock.as_ref());
        let server_ms = clock::to_ms(server_time);
        let (key, epoch) = (inner.keyring.integrity(), inner.keyring.epoch());
        let current = match meta::time_state(&inner.conn, key, epoch) {
            // Advanced to now first: an answer held back on the way (authentic, but late) must
            // not pull the proven bound back to when dispatch wrote it.
            Ok(st) => st.advance(&reading).1,
            Err(Error::Tampered(_)) => TimeState::from_high_water(server_ms),
            Err(e) => return Err(e),
        };
        let next = current.anchored_at(server_ms.max(current.proven_ms), &reading);
        let stamp = Stamp { ms: next.high_water_ms, state: Some((next, meta::seal_time_state(key, epoch, &next)?)) };
        let tx = store::write(&mut inner.conn, &stamp)?;
        tx.commit()
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u64 {
        self.lock().keyring.epoch()
    }

    /// Test-only: a job's raw data key, so forensic tests can look for its bytes on disk.
    #[cfg(feature = "insecure-test-hooks")]
    pub fn data_key_insecure_for_testing(&self, job_id: Uuid) -> Result<Vec<u8>> {
        let inner = self.lock();
        Ok(live_data_key(&inner.keyring, &inner.conn, job_id)?.as_bytes().to_vec())
    }
}

/// A read-only call persists the trusted-time state only when it has moved this far (or the boot
/// changed), so reads cost no fsync; after a reboot with the clock set back, at most this much of
/// the time that read-only calls saw can be lost.
const READ_PERSIST_MS: i64 = 60_000;

impl Inner {
    /// Trusted time now and the trusted-time state to persist with it (sealed), computed from the
    /// persisted state (checked against its tag) and the clocks.
    fn stamp(&self) -> Result<(Stamp, bool)> {
        let (key, epoch) = (self.keyring.integrity(), self.keyring.epoch());
        let stored = meta::time_state(&self.conn, key, epoch)?;
        let (t, next) = stored.advance(&clock::read(self.clock.as_ref()));
        let material = next.boot_id != stored.boot_id || t - stored.high_water_ms >= READ_PERSIST_MS;
        Ok((Stamp { ms: t, state: Some((next, meta::seal_time_state(key, epoch, &next)?)) }, material))
    }

    /// Persists `stamp`'s trusted-time state on its own when it moved materially (a call that
    /// writes persists it with its own transaction anyway).
    fn keep(&mut self, (stamp, material): (Stamp, bool)) -> Result<Stamp> {
        if material {
            store::write(&mut self.conn, &stamp)?.commit()?;
        }
        Ok(stamp)
    }

    /// Trusted time for a call that only reads, persisting the state when it moved materially.
    fn trusted_now(&mut self) -> Result<i64> {
        let stamp = self.stamp()?;
        Ok(self.keep(stamp)?.ms)
    }

    /// Trusted time, persisted when it moved materially; or, when the trusted-time state was
    /// edited, the wall clock with nothing to persist: for calls that can only shred, queue or
    /// refuse, which an edit must not block.
    fn begin_stamp(&mut self) -> Result<Stamp> {
        match self.stamp() {
            Ok(stamp) => self.keep(stamp),
            Err(Error::Tampered(_)) => Ok(Stamp { ms: clock::read(self.clock.as_ref()).wall_ms, state: None }),
            Err(e) => Err(e),
        }
    }

    /// The common start of every call: trusted time, then hard expiry enforced at that time.
    /// Tolerates an edited trusted-time state (see [`Inner::begin_stamp`]); a reveal does not
    /// ([`Inner::begin_strict`]).
    fn begin(&mut self) -> Result<Stamp> {
        let now = self.begin_stamp()?;
        self.expire(&now)?;
        Ok(now)
    }

    /// [`Inner::begin`] for a call whose answer depends on the time being right (a reveal):
    /// `Tampered` when the trusted-time state was edited.
    fn begin_strict(&mut self) -> Result<Stamp> {
        let (now, _) = self.stamp()?;
        self.expire(&now)?;
        Ok(now)
    }
}

/// Unwraps a live job's data key: its absence is an integrity failure.
fn live_data_key(keyring: &Keyring, conn: &Connection, job_id: Uuid) -> Result<crate::crypto::Key32> {
    keyring.data_key(conn, job_id)?.ok_or_else(|| Error::integrity("a live job has no data key"))
}

/// AAD of a customer field: the design's `"jobseal/v1" | job id | field name | sheet version`.
fn field_aad(job_id: Uuid, field: &str, version: u64) -> Aad {
    Aad::new("jobseal/v1").part(job_id.as_bytes()).part(field.as_bytes()).u64(version)
}

fn one(mut outcomes: Vec<ShredOutcome>, job_id: Uuid) -> Result<ShredOutcome> {
    let pos = outcomes
        .iter()
        .position(|o| o.job_id == job_id)
        .ok_or_else(|| Error::integrity("shred finished without the job it was asked for"))?;
    Ok(outcomes.swap_remove(pos))
}

fn check_report(report: &str) -> Result<()> {
    let n = report.chars().count();
    if n == 0 || n > MAX_REPORT_CHARS {
        return Err(Error::InvalidInput(format!("the report must be 1 to {MAX_REPORT_CHARS} characters")));
    }
    if report.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::InvalidInput("the report must not contain control characters".into()));
    }
    Ok(())
}

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
mod lifecycle;
mod shred;
mod sync;

use crate::audit::{AuditKind, NewEvent};
use crate::clock::{self, Clock, TimeAnchor};
use crate::crypto::Aad;
use crate::keyring::Keyring;
use crate::keys::KeyStore;
use crate::model::{ShredOutcome, MAX_REPORT_CHARS};
use crate::store::{self, meta, DB_FILE};
use crate::{journal, Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::Connection;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

/// The device's job sheet vault.
pub struct Vault {
    inner: Mutex<Inner>,
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
        let (wall, _) = clock::read(clock.as_ref());
        let keyring = Keyring::open(&mut conn, keystore, wall, |tx| {
            journal::record(
                tx,
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
        })?;
        let mut inner = Inner {
            conn,
            keyring,
            clock,
            dir,
            opened_with: Vec::new(),
            // A job marked before a crash or by an earlier process: the first call looks.
            shreds_pending: true,
            _lock: lock,
        };
        inner.keyring.finish_interrupted(&inner.conn)?;
        store::checkpoint_truncate(&inner.conn)?;
        let now = inner.trusted_now()?;
        inner.opened_with = inner.expire(now)?;
        Ok(Vault { inner: Mutex::new(inner) })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock cannot leave a half-made change: every change is one SQLite
        // transaction and the in-memory key moves only after its commit.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The vault's directory.
    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }

    /// Trusted time now (see [`crate::clock`]).
    pub fn trusted_now(&self) -> Result<DateTime<Utc>> {
        Ok(clock::from_ms(self.lock().trusted_now()?))
    }

    /// Records server time from a sync as the trusted-time anchor.
    pub fn anchor_server_time(&self, server_time: DateTime<Utc>) -> Result<()> {
        let mut inner = self.lock();
        let (_, boot) = clock::read(inner.clock.as_ref());
        let server_ms = clock::to_ms(server_time);
        // The server's time is this transaction's "now": the commit raises the high-water mark to
        // it (and never lowers it).
        let tx = store::write(&mut inner.conn, server_ms)?;
        if let Some(boot_ms) = boot {
            meta::set_anchor(&tx, TimeAnchor { server_ms, boot_ms })?;
        }
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

impl Inner {
    /// Trusted time from the persisted state and the clocks.
    fn trusted_now(&self) -> Result<i64> {
        let (wall, boot) = clock::read(self.clock.as_ref());
        Ok(meta::time_state(&self.conn)?.trusted_ms(wall, boot))
    }

    /// The common start of every call: trusted time, then hard expiry enforced at that time.
    fn begin(&mut self) -> Result<i64> {
        let now = self.trusted_now()?;
        self.expire(now)?;
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

//! The dispatch database: one SQLite file, one connection, one transaction per request (G6).
//!
//! Exactly-once ingestion rests on this module. Each request's writes, including the record of
//! which idempotency keys were applied, happen in a single `BEGIN IMMEDIATE` transaction on the
//! only connection, so a crash or kill in the middle of a request leaves either nothing or
//! everything of it, and a device that retries after losing the answer finds its keys already
//! recorded. WAL with `synchronous = FULL` makes a commit durable before the answer leaves.
//!
//! The schema is written for a backend team to read: UUIDs as text, times as milliseconds since
//! the Unix epoch (`*_ms`), keys and hashes as raw bytes.

use crate::error::{ApiError, DispatchError};
use jobseal_protocol::envelope::{generate_keypair, PublicKey, SecretKey};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Schema version written to `PRAGMA user_version`.
pub(crate) const VERSION: i64 = 4;

const SCHEMA_V1: &str = r#"
-- Dispatch's own X25519 key pair, made on first start. A production deployment keeps the secret
-- in an HSM or KMS and stores only a handle here; this reference keeps it in the database.
CREATE TABLE server_key (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    secret_key  BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- Enrolled devices. Only the SHA-256 of the bearer token is kept. The audit_* columns are the
-- incremental state of the device's hash chain: last verified (seq, hash), first break.
CREATE TABLE devices (
    device_id            TEXT PRIMARY KEY,
    identity_key         BLOB NOT NULL,
    token_hash           BLOB NOT NULL UNIQUE,
    enrolled_ms          INTEGER NOT NULL,
    last_sync_ms         INTEGER,
    wiped_ms             INTEGER,
    audit_verified_seq   INTEGER NOT NULL DEFAULT 0,
    audit_verified_hash  BLOB,
    audit_broken_at      INTEGER
);

-- One-time prekeys (public halves). A prekey is used for at most one envelope, ever.
CREATE TABLE prekeys (
    device_id   TEXT NOT NULL REFERENCES devices (device_id),
    prekey_id   INTEGER NOT NULL,
    public_key  BLOB NOT NULL,
    added_ms    INTEGER NOT NULL,
    used_ms     INTEGER,
    PRIMARY KEY (device_id, prekey_id)
) WITHOUT ROWID;

-- Jobs. Dispatch is the system of record: it keeps the plaintext sheet of the current version.
-- state/state_seq are the job's state as last reported by the assigned device (the device's
-- event seq, so that an older event applied late does not win).
CREATE TABLE jobs (
    job_id        TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL REFERENCES devices (device_id),
    version       INTEGER NOT NULL,
    sheet         BLOB NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    cancelled_ms  INTEGER,
    state         TEXT,
    state_seq     INTEGER,
    state_ms      INTEGER
);
CREATE INDEX jobs_by_device ON jobs (device_id);

-- Sealed envelopes, one per (job, device, version). Offered while status = 'pending'.
-- sealed_to / via: 'prekey:<id>' or 'identity'. A withdrawn or superseded envelope's bytes are
-- dropped (set to an empty blob): it will never be offered again.
CREATE TABLE deliveries (
    delivery_id  INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL REFERENCES jobs (job_id),
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    version      INTEGER NOT NULL,
    sealed_to    TEXT NOT NULL,
    envelope     BLOB NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('pending', 'received', 'rejected', 'withdrawn', 'superseded')),
    via          TEXT,
    reason       TEXT,
    queued_ms    INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    UNIQUE (job_id, device_id, version)
);
CREATE INDEX deliveries_by_device ON deliveries (device_id, status);

-- Jobs withdrawn from a device; offered until a verified shred receipt confirms them.
CREATE TABLE revocations (
    job_id        TEXT NOT NULL REFERENCES jobs (job_id),
    device_id     TEXT NOT NULL REFERENCES devices (device_id),
    reason        TEXT NOT NULL,
    queued_ms     INTEGER NOT NULL,
    confirmed_ms  INTEGER,
    PRIMARY KEY (job_id, device_id)
) WITHOUT ROWID;
CREATE INDEX revocations_by_device ON revocations (device_id, confirmed_ms);

-- Every idempotency key ever applied, per device: the exactly-once ledger. outcome is 'applied'
-- or 'ignored' (the event named something dispatch does not hold; acknowledged all the same).
CREATE TABLE applied_events (
    device_id   TEXT NOT NULL REFERENCES devices (device_id),
    event_key   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    job_id      TEXT,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored')),
    note        TEXT,
    applied_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, event_key)
) WITHOUT ROWID;

-- State changes as reported by devices.
CREATE TABLE state_changes (
    change_id   INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs (job_id),
    device_id   TEXT NOT NULL REFERENCES devices (device_id),
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    event_key   TEXT NOT NULL
);
CREATE INDEX state_changes_by_job ON state_changes (job_id);

-- Completion reports (the technician's own text), one per job and device.
CREATE TABLE reports (
    job_id       TEXT NOT NULL REFERENCES jobs (job_id),
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    text         TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    event_key    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL,
    PRIMARY KEY (job_id, device_id)
) WITHOUT ROWID;

-- Audit events as the device sent them. chain: 'verified' (links to the verified prefix),
-- 'pending' (arrived ahead of a gap, or after a break) or 'broken' (does not fit the chain).
CREATE TABLE audit_records (
    record_id    INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    seq          INTEGER NOT NULL,
    job_id       TEXT,
    at_ms        INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    field        TEXT,
    state        TEXT,
    detail       TEXT,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL,
    chain        TEXT NOT NULL CHECK (chain IN ('verified', 'pending', 'broken')),
    event_key    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL
);
CREATE INDEX audit_by_device ON audit_records (device_id, seq);
CREATE INDEX audit_by_job ON audit_records (job_id);

-- Shred receipts exactly as received (JSON), with the outcome of the MAC check.
CREATE TABLE receipts (
    receipt_id   INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    receipt      TEXT NOT NULL,
    verified     INTEGER NOT NULL,
    event_key    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL
);
CREATE INDEX receipts_by_job ON receipts (job_id, device_id);
"#;

// Version 2: authenticated enrolment (issue 12).
const SCHEMA_V2: &str = r#"
-- One-time enrolment codes an operator issued. Only the key derived from the code (HKDF, the key
-- its proofs are made with) is kept, never the code. code_id is the code's first group, sent in
-- clear by the device. device_id: the only device the code may enrol (NULL: any new device).
CREATE TABLE enrolment_codes (
    code_id     TEXT PRIMARY KEY,
    proof_key   BLOB NOT NULL,
    device_id   TEXT,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    used_ms     INTEGER,
    used_by     TEXT,
    revoked_ms  INTEGER
) WITHOUT ROWID;

-- Every enrolment request nonce dispatch accepted, per device: a request seen before is a replay
-- and is refused. Only a request with a valid proof adds one, so nobody else can grow it.
CREATE TABLE enrolment_nonces (
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    nonce        BLOB NOT NULL,
    accepted_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) WITHOUT ROWID;
"#;

/// Version 3: where each device's audit chain becomes keyed (`jobseal_protocol::audit::AuditKey`):
/// 1 for a device enrolled by this release, the first keyed record for one enrolled before, NULL
/// while it has sent none.
///
/// Also when dispatch first asked a device for prekeys it still lacks (`prekeys_asked_ms`): a
/// sheet is sealed to the identity key only after a sync that followed that request brought none.
/// And where each device's audit chain stood when it reported a sheet received
/// (`deliveries.received_after_seq`): only its later records are that job's history. Sheets
/// received before this version count from the start of the chain, as they did.
const SCHEMA_V3: &str = r#"
ALTER TABLE devices ADD COLUMN audit_keyed_from INTEGER;
ALTER TABLE devices ADD COLUMN prekeys_asked_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN received_after_seq INTEGER;
UPDATE deliveries SET received_after_seq = 0 WHERE status = 'received';
"#;

/// Version 4: limits that hold under abuse (issue 14).
///
/// - `applied_floor_seq`: every event key of the device with a `seq` below it has been pruned
///   from `applied_events` and an event below it is never applied again (`crate::ingest`);
///   `applied_pruned` counts the pruned keys, so the operator's count of applied events stays
///   whole. The index finds the keys to prune without a scan.
/// - `quota_*`: the device's current quota window (`crate::ingest::DeviceQuota`): when it began and
///   how many new events, audit records and reports it brought in it.
/// - `enrolment_codes.failed_attempts`: wrong proofs sent for the code; at
///   `crate::enrolment::MAX_CODE_FAILURES` the code is locked (revoked).
const SCHEMA_V4: &str = r#"
ALTER TABLE devices ADD COLUMN applied_floor_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN applied_pruned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quota_window_ms INTEGER;
ALTER TABLE devices ADD COLUMN quota_events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quota_audit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quota_reports INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrolment_codes ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX applied_events_by_seq ON applied_events (device_id, seq);
"#;

/// Brings a database from schema `version` to [`VERSION`]. Each arm is one step; a future
/// version adds an arm, so that every older database upgrades along the same path as a new one.
fn upgrade_from(tx: &Transaction<'_>, version: i64) -> Result<(), DispatchError> {
    let mut v = version;
    while v < VERSION {
        match v {
            0 => tx.execute_batch(SCHEMA_V1)?,
            1 => tx.execute_batch(SCHEMA_V2)?,
            2 => tx.execute_batch(SCHEMA_V3)?,
            3 => tx.execute_batch(SCHEMA_V4)?,
            other => return Err(DispatchError::Integrity(format!("no upgrade from schema version {other}"))),
        }
        v += 1;
        tx.pragma_update(None, "user_version", v)?;
    }
    Ok(())
}

/// The database behind one mutex. A single writer is what SQLite wants anyway, and it makes the
/// "one request, one transaction" rule simple to keep: whoever holds the lock holds the
/// transaction.
///
/// Credentials are checked on a second, read-only connection with a mutex of its own
/// ([`Store::authenticate`]): under WAL a reader never waits for the writer, so a caller without a
/// valid token is turned away without taking the write lock, opening a transaction, or queueing
/// behind a slow request that holds them (issue 14). The operator's and the console's views read
/// on a third read-only connection ([`Store::read`]), for the same reason: a privacy officer
/// listing 500 jobs must not stall every device's sync behind the write lock. Lock order: never
/// take one of the three mutexes while holding another; each is held for one call only.
pub(crate) struct Store {
    conn: Mutex<Connection>,
    auth: Mutex<Connection>,
    views: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    pub(crate) fn open(path: &Path) -> Result<Store, DispatchError> {
        owner_only(path)?;
        let mut conn = Connection::open(path)?;
        // The database holds dispatch's secret key and the plaintext sheets: deleted rows are
        // overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
        if secure != 1 {
            return Err(DispatchError::Integrity("secure_delete = ON was refused".into()));
        }
        // Every guarantee of exactly-once ingestion depends on these; read them back rather than
        // trust that the pragma took (journal_mode silently stays put on some file systems).
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DispatchError::Integrity(format!("journal_mode is {mode}, WAL is required")));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        if sync != 2 {
            return Err(DispatchError::Integrity("synchronous = FULL was refused".into()));
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > VERSION {
            return Err(DispatchError::Integrity(format!(
                "database schema version {version} is newer than this server ({VERSION})"
            )));
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        upgrade_from(&tx, version)?;
        tx.commit()?;
        // Opened after the writer has set up WAL and the schema: they only ever read.
        let reader = || -> Result<Connection, DispatchError> {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )?;
            c.busy_timeout(std::time::Duration::from_secs(5))?;
            // Per connection, like the writer's; harmless where nothing is deleted.
            c.pragma_update(None, "secure_delete", "ON")?;
            Ok(c)
        };
        Ok(Store { conn: Mutex::new(conn), auth: Mutex::new(reader()?), views: Mutex::new(reader()?) })
    }

    /// Runs `f` on the read-only credentials connection, outside any write transaction: one
    /// statement there is one consistent snapshot, and under WAL it does not wait for the writer.
    pub(crate) fn authenticate<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.auth.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic under the lock cannot leave a half-made change: the transaction it held rolls
        // back when dropped, so the connection is safe to keep using.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one immediate transaction and commits only if it returns `Ok`. Every write of
    /// a request goes through here, once.
    pub(crate) fn write<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    /// Runs `f` in a read transaction on the read-only views connection, so that a view is one
    /// consistent snapshot (of everything committed when it starts) and never waits for, nor
    /// holds up, the writer.
    pub(crate) fn read<T, E: From<rusqlite::Error>>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.views.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        f(&tx)
    }

    /// Loads dispatch's key pair, creating it on first start.
    pub(crate) fn server_key(&self) -> Result<(SecretKey, PublicKey), DispatchError> {
        self.write(|tx| {
            let row: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row("SELECT secret_key, public_key FROM server_key WHERE singleton = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match row {
                Some((secret, public)) => {
                    // The secret also sits in SQLite's page cache, so wiping this copy would buy
                    // little; a deployment that cares keeps the key in an HSM/KMS instead.
                    let bytes: [u8; 32] = secret
                        .as_slice()
                        .try_into()
                        .map_err(|_| DispatchError::Integrity("stored dispatch key has the wrong length".into()))?;
                    let sk = SecretKey::from_bytes(&bytes)
                        .map_err(|_| DispatchError::Integrity("stored dispatch key is unusable".into()))?;
                    if sk.public_key().as_bytes().as_slice() != public.as_slice() {
                        return Err(DispatchError::Integrity(
                            "stored dispatch public key does not match its secret".into(),
                        ));
                    }
                    let pk = sk.public_key();
                    Ok((sk, pk))
                }
                None => {
                    let (sk, pk) = generate_keypair()?;
                    tx.execute(
                        "INSERT INTO server_key (singleton, secret_key, public_key, created_ms) VALUES (1, ?1, ?2, ?3)",
                        params![sk.to_bytes().as_slice(), pk.as_bytes().as_slice(), now_ms()],
                    )?;
                    Ok((sk, pk))
                }
            }
        })
    }

    /// Checkpoints the WAL into the main file and closes the connection.
    pub(crate) fn close(self) {
        for reader in [self.auth, self.views] {
            let reader = reader.into_inner().unwrap_or_else(|p| p.into_inner());
            if let Err((_, e)) = reader.close() {
                tracing::warn!(target: "jobseal_dispatch", "closing a read-only connection failed: {e}");
            }
        }
        let conn = self.conn.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(target: "jobseal_dispatch", "checkpoint at shutdown failed: {e}");
        }
        if let Err((_, e)) = conn.close() {
            tracing::warn!(target: "jobseal_dispatch", "closing the database failed: {e}");
        }
    }
}

/// Milliseconds since the Unix epoch, now.
/// Creates the database file owner-only if it does not exist (SQLite gives its WAL and shared
/// memory files the same permissions), and makes an existing one owner-only: it holds dispatch's
/// secret key and every sheet in plaintext.
fn owner_only(path: &Path) -> Result<(), DispatchError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |e: std::io::Error| DispatchError::Integrity(format!("cannot make the database owner-only: {e}"));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?
            }
            Err(e) => return Err(fail(e)),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A timestamp column as a `DateTime`.
pub(crate) fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    jobseal_protocol::time::from_ms(ms)
}

/// Maps "no row" to a 404 with a value-free message.
pub(crate) fn found<T>(row: Option<T>, what: impl FnOnce() -> String) -> Result<T, ApiError> {
    row.ok_or_else(|| ApiError::not_found(what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fresh_database_has_the_current_schema_and_reopens_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path).unwrap();
        let (_, first) = store.server_key().unwrap();
        store.close();
        let store = Store::open(&path).unwrap();
        let (secret, again) = store.server_key().unwrap();
        assert_eq!(first, again);
        assert_eq!(secret.public_key(), again);
        let version: i64 = store.read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0))).unwrap();
        assert_eq!(version, VERSION);
        store.close();
    }

    #[cfg(unix)]
    #[test]
    fn the_database_is_owner_only_and_overwrites_what_it_deletes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dispatch.db");
        let store = Store::open(&path).unwrap();
        store.write(|tx| tx.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("dispatch.db-wal")), 0o600);
        // On the writer, which deletes; and on the views connection too.
        let secure: i64 = store.write(|c| c.query_row("PRAGMA secure_delete", [], |r| r.get(0))).unwrap();
        assert_eq!(secure, 1);
        let secure: i64 = store.read(|c| c.query_row("PRAGMA secure_delete", [], |r| r.get(0))).unwrap();
        assert_eq!(secure, 1);
        store.close();
        // An existing database readable by everyone is made owner-only at open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(&path).unwrap().close();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_version_1_database_is_upgraded_with_the_enrolment_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let store = Store::open(&path).unwrap();
        let tables: i64 = store
            .read(|tx| {
                tx.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name IN ('enrolment_codes', 'enrolment_nonces')",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(tables, 2);
        let version: i64 = store.read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0))).unwrap();
        assert_eq!(version, VERSION);
        store.close();
    }

    /// A version 3 database (before issue 14's limits) upgrades with the limits' columns at
    /// their neutral values: nothing pruned, no quota used, no failed code attempts; and it ends
    /// with the same schema as a fresh database.
    #[test]
    fn a_version_3_database_is_upgraded_with_the_limits_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(SCHEMA_V2).unwrap();
            conn.execute_batch(SCHEMA_V3).unwrap();
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO devices (device_id, identity_key, token_hash, enrolled_ms) VALUES ('d', x'00', x'01', 0);
                 INSERT INTO enrolment_codes (code_id, proof_key, created_ms, expires_ms) VALUES ('C0DE0', x'00', 0, 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let row: (i64, i64, Option<i64>, i64, i64, i64, i64) = store
            .read(|tx| {
                tx.query_row(
                    "SELECT applied_floor_seq, applied_pruned, quota_window_ms, quota_events, quota_audit,
                            quota_reports, (SELECT failed_attempts FROM enrolment_codes)
                     FROM devices",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                )
            })
            .unwrap();
        assert_eq!(row, (0, 0, None, 0, 0, 0, 0));
        let schema = |store: &Store| -> Vec<(String, String)> {
            store
                .read(|tx| {
                    tx.prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")?
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .unwrap()
        };
        let upgraded = schema(&store);
        store.close();
        let fresh = Store::open(&dir.path().join("fresh.db")).unwrap();
        assert_eq!(upgraded, schema(&fresh));
        fresh.close();
    }

    #[test]
    fn a_newer_schema_is_refused_and_a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path).unwrap();
        let failed: Result<(), rusqlite::Error> = store.write(|tx| {
            tx.execute("INSERT INTO server_key VALUES (1, x'00', x'00', 0)", [])?;
            Err(rusqlite::Error::InvalidQuery)
        });
        assert!(failed.is_err());
        let n: i64 = store.read(|tx| tx.query_row("SELECT count(*) FROM server_key", [], |r| r.get(0))).unwrap();
        assert_eq!(n, 0);
        store.write(|tx| tx.pragma_update(None, "user_version", VERSION + 1)).unwrap();
        store.close();
        assert!(matches!(Store::open(&path), Err(DispatchError::Integrity(_))));
    }
}

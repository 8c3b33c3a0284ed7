//! SQLite storage: connection setup in one place (G1, G3, G6).
//!
//! Shredding relies on SQLite settings that are easy to lose: `secure_delete` so that deleted
//! ciphertext and wrapped keys are overwritten with zeros, WAL with a truncating checkpoint so no
//! old page lingers in the log, in-memory temporary storage so no temp file holds a copy, and full
//! synchronous commits so that what a call reports as done survives power loss. They are set
//! here, read back and asserted; a connection that does not hold them is refused.
//!
//! This folder is the only place in the core with SQL: one module per table family, each called
//! only by the layer that owns those tables (the keyring for `secrets`, the journal for `audit`
//! and `outbox`). Every write goes through `WriteTx`, whose commit also persists the trusted-time
//! state, so no write can forget it (G2).

pub(crate) mod audit;
pub(crate) mod device;
pub(crate) mod jobs;
pub(crate) mod meta;
pub(crate) mod outbox;
pub mod schema;
pub(crate) mod secrets;

use crate::{Error, Result};
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::Path;
use std::time::Duration;

/// The database file name inside a vault directory.
pub const DB_FILE: &str = "vault.db";

/// The size the WAL is cut back to after a checkpoint: above the 1,000 pages (4 KiB each, plus
/// frame headers) at which SQLite checkpoints on its own.
const WAL_SIZE_LIMIT: i64 = 8 * 1024 * 1024;

/// Prepared statements kept per connection: more than the distinct statements of any call path.
const STATEMENT_CACHE: usize = 128;

/// Opens (creating if needed) the vault database, applies the required settings, checks them
/// and brings the schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    // Every call runs a few dozen statements (trusted time, expiry, the audit chain, the outbox);
    // parsing them anew each time cost more than the reveal's crypto. Keep them all prepared.
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::integrity(format!("journal_mode is {mode}, expected wal")));
    }
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Between shreds the WAL is reused in place (cut back to this size after a checkpoint, above
    // the 1,000-page auto-checkpoint), so a commit's fsync does not also have to grow the file.
    // Every shred still truncates it to zero (`checkpoint_truncate`), which is what G3 needs.
    conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
    expect_pragma(&conn, "secure_delete", 1)?;
    expect_pragma(&conn, "temp_store", 2)?;
    expect_pragma(&conn, "foreign_keys", 1)?;
    expect_pragma(&conn, "synchronous", 2)?;
    expect_pragma(&conn, "journal_size_limit", WAL_SIZE_LIMIT)?;

    let version: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != schema::VERSION {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        schema::upgrade_from(&tx, version)?;
        tx.commit()?;
    }
    Ok(conn)
}

fn expect_pragma(conn: &Connection, name: &str, want: i64) -> Result<()> {
    let got: i64 = conn.pragma_query_value(None, name, |r| r.get(0))?;
    if got != want {
        return Err(Error::integrity(format!("pragma {name} is {got}, expected {want}")));
    }
    Ok(())
}

/// A call's trusted time, and the trusted-time state to persist with its writes (already sealed
/// with its integrity tag; `None` when trusted time is unknown and the call runs on the wall clock,
/// which must not overwrite the state).
#[derive(Clone, Debug)]
pub(crate) struct Stamp {
    /// Trusted time, milliseconds since the Unix epoch.
    pub(crate) ms: i64,
    /// The state to persist, and the same sealed under the current epoch
    /// ([`meta::seal_time_state`]).
    pub(crate) state: Option<(crate::clock::TimeState, Vec<u8>)>,
}

/// A write transaction that took SQLite's write lock at once, so that a read-then-write inside it
/// cannot be overtaken by another writer. It reads as a [`Connection`]; [`WriteTx::commit`] stores
/// the call's trusted-time state (high-water mark included) before committing, in the same
/// transaction.
pub(crate) struct WriteTx<'c> {
    tx: Transaction<'c>,
    time: Option<Vec<u8>>,
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        &self.tx
    }
}

impl WriteTx<'_> {
    /// Replaces the trusted-time state this transaction persists (a key rotation seals it again
    /// under the new epoch).
    pub(crate) fn set_time(&mut self, sealed: Vec<u8>) {
        self.time = Some(sealed);
    }

    /// Commits, persisting the trusted-time state first when the transaction has one.
    pub(crate) fn commit(self) -> Result<()> {
        if let Some(sealed) = &self.time {
            meta::store_sealed_time(&self.tx, sealed)?;
        }
        Ok(self.tx.commit()?)
    }
}

/// Starts a write transaction for a call made at `stamp`.
pub(crate) fn write<'c>(conn: &'c mut Connection, stamp: &Stamp) -> Result<WriteTx<'c>> {
    Ok(WriteTx {
        tx: conn.transaction_with_behavior(TransactionBehavior::Immediate)?,
        time: stamp.state.as_ref().map(|(_, sealed)| sealed.clone()),
    })
}

/// Starts a write transaction that does not know trusted time (key bookkeeping at open).
pub(crate) fn write_untimed(conn: &mut Connection) -> Result<WriteTx<'_>> {
    Ok(WriteTx { tx: conn.transaction_with_behavior(TransactionBehavior::Immediate)?, time: None })
}

/// Moves every page of the WAL into the database file (synced) and truncates the WAL to zero
/// bytes, synced too, so no pre-shred page survives in the log, power cut or not (G3).
///
/// SQLite syncs the database file during the checkpoint but not the truncation: until the next
/// commit syncs a new log header, a power cut could bring the old log back with every page it held
/// (sealed fields and wrapped keys of a job just shredded; `tests/tests/power_loss.rs` found it).
/// One more sync of the log closes that window.
pub fn checkpoint_truncate(conn: &Connection) -> Result<()> {
    let (busy, _log, _done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    if busy != 0 {
        return Err(Error::integrity("WAL checkpoint could not complete"));
    }
    sync_log(conn)
}

/// Syncs the connection's WAL file through SQLite's own file object (so through whatever VFS the
/// connection uses), the one thing `rusqlite` has no call for.
#[allow(unsafe_code, reason = "SQLite's file-control and xSync C interfaces; checked under ASan by scripts/asan.sh")]
fn sync_log(conn: &Connection) -> Result<()> {
    use rusqlite::ffi;
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `handle` is this open connection's database pointer, used only for the duration of
    // this call while we hold `conn` (no other thread uses it: the vault's lock is held).
    // SQLITE_FCNTL_JOURNAL_POINTER writes the pager's journal file object into `file`: the WAL's
    // in WAL mode (the vault is always in WAL mode: `open` checks it); a file object that is not
    // open has no methods, which is refused below.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            conn.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_JOURNAL_POINTER,
            (&raw mut file).cast(),
        )
    };
    let failed =
        |rc: i32, what: &str| Error::Storage(rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(what.into())));
    if rc != ffi::SQLITE_OK {
        return Err(failed(rc, "cannot reach the WAL file"));
    }
    // SAFETY: a non-null pointer from SQLite is its open WAL file object, valid until the
    // connection closes; an open file object's pMethods is non-null or the file is unusable.
    let sync = unsafe { file.as_ref().and_then(|f| f.pMethods.as_ref()).and_then(|m| m.xSync) };
    let Some(sync) = sync else {
        return Err(failed(ffi::SQLITE_MISUSE, "the WAL file is not open"));
    };
    // SAFETY: calling the file's own xSync on it, as SQLite does. FULL: on Apple platforms that
    // asks for F_FULLFSYNC, a flush to the flash itself, which a plain fsync is not there.
    let rc = unsafe { sync(file, ffi::SQLITE_SYNC_FULL) };
    if rc != ffi::SQLITE_OK {
        return Err(failed(rc, "cannot sync the WAL"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_hold_after_open() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open(&dir.path().join(DB_FILE)).unwrap();
        let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        expect_pragma(&conn, "secure_delete", 1).unwrap();
        checkpoint_truncate(&conn).unwrap();
        drop(conn);
        // Reopening an existing database keeps the schema and settings.
        let conn = open(&dir.path().join(DB_FILE)).unwrap();
        let v: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, schema::VERSION);
    }
}

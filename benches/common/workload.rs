//! The workload both benchmark crates share, so that jobseal, plain SQLite and SQLCipher see the
//! same sheets, the same rows and the same durability settings. Included by path (`#[path]`) from
//! each crate: the SQLCipher crate must not depend on jobseal, whose graph links the product's
//! SQLite. The sheets are the tests' fixture, from `jobseal-testkit`'s builder (which needs no
//! jobseal without its `vault` feature). Fake data only.
#![allow(dead_code)]

use jobseal_testkit::Sheet;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use std::path::Path;
use uuid::Uuid;

/// Sheets per ingest run.
pub const INGEST_SHEETS: usize = 1000;
/// Live jobs in the vault (or table) a reveal or a close runs against.
pub const LIVE_JOBS: usize = 20;

/// The benchmark clock: 2030-03-04T08:30:00Z, inside every sheet's access window.
pub const NOW_RFC3339: &str = "2030-03-04T08:30:00Z";
pub const NOW_MS: i64 = 1_899_448_200_000;

/// A fake job sheet (jobseal.sheet.v1): the tests' default sheet (five customer fields, slot
/// 08:00-10:00, access 07:30-11:00, hard expiry 14:00 on 2030-03-04), numbered `n` in its work
/// order and customer name, with a second task.
pub fn sheet_json(job_id: Uuid, n: usize) -> String {
    Sheet::new(job_id)
        .work_order(format!("WO-BENCH-{n:06}"))
        .work("Install fibre terminal", &["Splice drop cable", "Activate line"], &["ONT"])
        .value("customer_name", format!("Test Customer {n:06}"))
        .json_string()
}

/// `n` fresh job ids and their sheets.
pub fn sheets(n: usize) -> Vec<(Uuid, String)> {
    (0..n).map(|i| { let id = Uuid::new_v4(); (id, sheet_json(id, i)) }).collect()
}

/// How a baseline database is opened.
#[derive(Clone, Copy)]
pub enum Cipher<'a> {
    /// Plain SQLite, no encryption.
    None,
    /// SQLCipher with a raw 256-bit key given as 64 hex digits (no key derivation).
    RawKey(&'a str),
}

/// Opens a baseline database with the durability the vault has: WAL, `synchronous = FULL` (one
/// fsync of the WAL per commit), in-memory temp storage. `secure_delete` stays at SQLite's
/// default (off): a baseline app does not shred.
pub fn open_baseline(path: &Path, cipher: Cipher<'_>) -> Connection {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).unwrap();
    if let Cipher::RawKey(hex) = cipher {
        conn.execute_batch(&format!("PRAGMA key = \"x'{hex}'\";")).unwrap();
    }
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.pragma_update(None, "temp_store", "MEMORY").unwrap();
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY NOT NULL, version INTEGER NOT NULL, work_order TEXT NOT NULL,
            state TEXT NOT NULL, window_start TEXT NOT NULL, window_end TEXT NOT NULL,
            hard_expiry TEXT NOT NULL, work TEXT, site_area TEXT, received_ms INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS fields (
            job_id TEXT NOT NULL REFERENCES jobs (id), ord INTEGER NOT NULL, name TEXT NOT NULL,
            kind TEXT NOT NULL, reveal_in TEXT NOT NULL, value TEXT NOT NULL,
            PRIMARY KEY (job_id, name)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS audit (
            seq INTEGER PRIMARY KEY NOT NULL, at_ms INTEGER NOT NULL, job_id TEXT, kind TEXT NOT NULL,
            field TEXT
         );",
    )
    .unwrap();
    conn
}

/// Stores one sheet the way an app without jobseal would: parse the JSON, one transaction with
/// the job row and one row per customer field, values in clear.
pub fn ingest_baseline(conn: &mut Connection, json: &str) {
    let v: serde_json::Value = serde_json::from_str(json).unwrap();
    let id = v["job_id"].as_str().unwrap();
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.prepare_cached(
        "INSERT INTO jobs (id, version, work_order, state, window_start, window_end, hard_expiry, work, site_area, received_ms)
         VALUES (?1, ?2, ?3, 'assigned', ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .unwrap()
    .execute(params![
        id,
        v["version"].as_i64().unwrap(),
        v["work_order"].as_str().unwrap(),
        v["window"]["start"].as_str().unwrap(),
        v["window"]["end"].as_str().unwrap(),
        v["access"]["hard_expiry"].as_str().unwrap(),
        v["work"].to_string(),
        v["site_area"].as_str().unwrap(),
        NOW_MS,
    ])
    .unwrap();
    {
        let mut insert = tx
            .prepare_cached("INSERT INTO fields (job_id, ord, name, kind, reveal_in, value) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
            .unwrap();
        for (ord, f) in v["customer"].as_array().unwrap().iter().enumerate() {
            let states: Vec<&str> = f["reveal_in"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
            insert
                .execute(params![id, ord as i64, f["name"].as_str().unwrap(), f["kind"].as_str().unwrap(), states.join(","), f["value"].as_str().unwrap()])
                .unwrap();
        }
    }
    tx.commit().unwrap();
}

/// Reads a job's state and its customer values: the read path an app without jobseal has.
pub fn read_baseline(conn: &Connection, job_id: &str) -> Vec<(String, String)> {
    let _state: String = conn
        .prepare_cached("SELECT state FROM jobs WHERE id = ?1")
        .unwrap()
        .query_row([job_id], |r| r.get(0))
        .unwrap();
    let mut stmt = conn.prepare_cached("SELECT name, value FROM fields WHERE job_id = ?1 ORDER BY ord").unwrap();
    let rows = stmt.query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    rows.collect::<rusqlite::Result<_>>().unwrap()
}

/// The same read followed by one durable transaction inserting an access-log row per field: a
/// baseline with the same durable write a jobseal reveal makes, without the crypto and the chain.
pub fn read_logged_baseline(conn: &mut Connection, job_id: &str) -> Vec<(String, String)> {
    let values = read_baseline(conn, job_id);
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    {
        let mut insert = tx.prepare_cached("INSERT INTO audit (at_ms, job_id, kind, field) VALUES (?1, ?2, 'reveal', ?3)").unwrap();
        for (name, _) in &values {
            insert.execute(params![NOW_MS, job_id, name]).unwrap();
        }
    }
    tx.commit().unwrap();
    values
}

/// A plain close: one transaction deleting the job's fields and marking it closed.
pub fn close_baseline(conn: &mut Connection, job_id: &str) {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).unwrap();
    tx.prepare_cached("DELETE FROM fields WHERE job_id = ?1").unwrap().execute([job_id]).unwrap();
    tx.prepare_cached("UPDATE jobs SET state = 'completed', work = NULL, site_area = NULL WHERE id = ?1")
        .unwrap()
        .execute([job_id])
        .unwrap();
    tx.commit().unwrap();
}

/// The reference cost of durability on this disk: one 4 KiB write and one fdatasync.
pub struct FsyncProbe {
    file: std::fs::File,
    block: [u8; 4096],
    n: u64,
}

impl FsyncProbe {
    pub fn new(dir: &Path) -> Self {
        let file = std::fs::OpenOptions::new().create(true).truncate(true).read(true).write(true).open(dir.join("fsync.probe")).unwrap();
        FsyncProbe { file, block: [0x5a; 4096], n: 0 }
    }

    pub fn write_and_fdatasync(&mut self) {
        use std::os::unix::fs::FileExt;
        self.file.write_at(&self.block, (self.n % 256) * 4096).unwrap();
        self.n += 1;
        self.file.sync_data().unwrap();
    }
}

/// A scratch directory on the disk the results are about: benches/target/scratch (not /tmp,
/// which is a tmpfs on some systems), or `$JOBSEAL_BENCH_SCRATCH` (e.g. a folder on /dev/shm to
/// take the disk's fsync latency out of a comparison).
pub fn scratch_dir() -> tempfile::TempDir {
    let base = match std::env::var_os("JOBSEAL_BENCH_SCRATCH") {
        Some(dir) => std::path::PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/scratch"),
    };
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new().prefix("bench-").tempdir_in(base).unwrap()
}

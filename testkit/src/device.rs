//! A technician's device for tests: a real vault in a temporary folder, with the software
//! keystore and a clock the test moves by hand.
//!
//! Access windows and expiries are about time, so every suite runs the vault on a `ManualClock`
//! set to the sheet fixture's timeline (minutes from [`crate::sheet::t0`]). Reopening a vault on
//! the same folder is how the crash and forensic suites see what survived, so opening is a
//! function of the folder ([`open_vault`]) as well as a one-call fresh device ([`vault_at`]).
//! Enrolment with a dispatch server on loopback is `server::TestDispatch::enrol` (feature
//! `dispatch`).

use crate::sheet::at;
use jobseal::{FileKeyStore, ManualClock, Vault};
use std::path::Path;
use std::sync::Arc;

/// A vault in its own temporary folder, with the clock it runs on.
pub struct TestVault {
    /// The vault.
    pub vault: Vault,
    /// Its clock: move it with `set_wall`.
    pub clock: Arc<ManualClock>,
    /// The data folder, removed when this is dropped (after the vault, which is declared first).
    pub dir: tempfile::TempDir,
}

/// A manual clock set `minutes` after [`crate::sheet::t0`].
pub fn clock_at(minutes: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at(minutes)))
}

/// Opens (creating if needed) the vault in `dir`, with the software keystore in its usual place
/// under `dir` and the given clock.
pub fn open_vault(dir: &Path, clock: Arc<ManualClock>) -> jobseal::Result<Vault> {
    let keystore = FileKeyStore::open(dir.join(jobseal::KEYSTORE_DIR))?;
    Vault::open(dir, Arc::new(keystore), clock)
}

/// Opens the vault in `dir` on a fresh clock set `minutes` after [`crate::sheet::t0`].
pub fn open_vault_at(dir: &Path, minutes: i64) -> jobseal::Result<Vault> {
    open_vault(dir, clock_at(minutes))
}

/// A new vault in a new temporary folder, its clock `minutes` after [`crate::sheet::t0`].
pub fn vault_at(minutes: i64) -> TestVault {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let clock = clock_at(minutes);
    let vault = open_vault(dir.path(), clock.clone()).expect("a new vault opens");
    TestVault { vault, clock, dir }
}

/// What a rooted technician does to an audit chain with `sqlite3`, as plain SHA-256 links would
/// allow: applies `edit` to every event of the vault's database at `db` (the vault closed), then
/// re-links the whole chain with unkeyed hashes, head included. A keyed chain must then fail its
/// checks at dispatch and on the device.
pub fn relink_audit_chain_unkeyed(db: &Path, mut edit: impl FnMut(&mut jobseal::audit::NewEvent)) {
    use jobseal::audit::{event_hash, AuditKind, NewEvent, GENESIS};
    type Row = (i64, i64, Option<String>, String, Option<String>, Option<String>, Option<String>);
    let conn = rusqlite::Connection::open(db).expect("the vault's database opens");
    let rows: Vec<Row> = conn
        .prepare("SELECT seq, at_ms, job_id, kind, field, state, detail FROM audit ORDER BY seq")
        .and_then(|mut stmt| {
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))?
                .collect()
        })
        .expect("the audit rows read");
    let mut prev = GENESIS.to_vec();
    for (seq, at_ms, job_id, kind, field, state, detail) in rows {
        let mut event = NewEvent {
            at_ms,
            job_id: job_id.map(|j| uuid::Uuid::parse_str(&j).expect("a stored job id")),
            kind: AuditKind::parse(&kind).expect("a stored kind"),
            field,
            state: state.map(|s| s.parse().expect("a stored state")),
            detail,
        };
        edit(&mut event);
        let hash = event_hash(seq as u64, &event, &prev).to_vec();
        conn.execute(
            "UPDATE audit SET kind = ?2, detail = ?3, prev_hash = ?4, hash = ?5 WHERE seq = ?1",
            rusqlite::params![seq, event.kind.as_str(), event.detail, prev, hash],
        )
        .expect("the row updates");
        prev = hash;
    }
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'audit_head_hash'", [prev]).expect("the head updates");
}

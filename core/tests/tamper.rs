//! The rooted technician with `sqlite3` on the vault's database, and with the phone's clock and
//! a reboot: every input that decides a reveal edited outside the core is detected, and the edited
//! job can still be shredded (G2).

use jobseal::{ErrorKind, FieldAccess, JobState, ManualClock, Vault};
use jobseal_testkit::device::open_vault;
use jobseal_testkit::sheet::{at, sheet, Sheet, CLOSES, EXPIRY, OPENS};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

const DB: &str = "vault.db";

fn visible(r: &jobseal::Reveal) -> Vec<&str> {
    r.fields.iter().filter(|f| matches!(f.access, FieldAccess::Visible { .. })).map(|f| f.name.as_str()).collect()
}

/// Runs SQL on the vault's database as `sqlite3` would, with the vault closed.
fn sqlite(dir: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(dir.join(DB)).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn time_blob(dir: &Path) -> Vec<u8> {
    let conn = rusqlite::Connection::open(dir.join(DB)).unwrap();
    conn.query_row("SELECT value FROM meta WHERE key = 'time_state'", [], |r| r.get(0)).unwrap()
}

fn set_time_blob(dir: &Path, blob: &[u8]) {
    let conn = rusqlite::Connection::open(dir.join(DB)).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'time_state'", [blob]).unwrap();
}

fn reveals(v: &Vault, job: Uuid) -> usize {
    v.audit_log(Some(job)).unwrap().iter().filter(|e| e.kind == jobseal::AuditKind::Reveal).count()
}

/// A job in state `state`, at +200 minutes (inside its window), in a vault with a boot clock.
fn job_in(state: JobState) -> (tempfile::TempDir, Arc<ManualClock>, Uuid) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::with_boot(at(200), Duration::from_secs(3600)));
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    let job = Uuid::new_v4();
    v.ingest(&sheet(job, 1)).unwrap();
    if state != JobState::Assigned {
        v.advance(job, JobState::EnRoute).unwrap();
    }
    if state == JobState::OnSite {
        v.advance(job, JobState::OnSite).unwrap();
    }
    (dir, clock, job)
}

#[test]
fn every_decision_input_edited_with_sqlite_is_detected_and_the_job_still_shreds() {
    // Each edit would show a value the policy refuses (or stop one from expiring) if obeyed.
    let edits = [
        ("reveal_in widened", JobState::EnRoute, "UPDATE fields SET reveal_in = 'assigned,en-route,on-site'"),
        ("state moved on", JobState::Assigned, "UPDATE jobs SET state = 'on-site'"),
        ("window pushed out", JobState::OnSite, "UPDATE jobs SET closes_ms = closes_ms + 86400000"),
        ("window opened early", JobState::OnSite, "UPDATE jobs SET opens_ms = 0"),
        ("hard expiry pushed out", JobState::OnSite, "UPDATE jobs SET hard_expiry_ms = hard_expiry_ms + 86400000"),
        ("a field dropped", JobState::OnSite, "DELETE FROM fields WHERE name = 'note'"),
        ("tag removed", JobState::OnSite, "UPDATE jobs SET mac = NULL"),
        ("integrity key deleted", JobState::OnSite, "DELETE FROM secrets WHERE id = 'vault:integrity'"),
    ];
    for (what, state, sql) in edits {
        let (dir, clock, job) = job_in(state);
        // Untouched, the vault answers (the control: the same job reveals before the edit).
        {
            let v = open_vault(dir.path(), clock.clone()).unwrap();
            v.reveal(job).unwrap();
        }
        sqlite(dir.path(), sql);
        let v = open_vault(dir.path(), clock.clone()).unwrap();
        let before = reveals(&v, job);
        let err = v.reveal(job).expect_err(what);
        assert_eq!(err.kind(), ErrorKind::Tampered, "{what}: {err}");
        assert_eq!(reveals(&v, job), before, "{what}: a refused reveal records nothing");
        assert!(v.advance(job, JobState::OnSite).is_err(), "{what}: an edited job does not move on");
        // The edited job can still be destroyed.
        let out = v.cancel(job).unwrap_or_else(|e| panic!("{what}: cancel failed: {e}"));
        assert_eq!(out.job_id, job);
        let info = v.job(job).unwrap();
        assert!(info.shredded_at.is_some(), "{what}");
        assert!(v.reveal(job).is_err(), "{what}");
    }
}

#[test]
fn an_edited_time_state_is_detected_until_dispatch_gives_the_time_again() {
    let (dir, clock, job) = job_in(JobState::OnSite);
    clock.advance(chrono::Duration::minutes(CLOSES - 200 + 10));
    {
        let v = open_vault(dir.path(), clock.clone()).unwrap();
        assert!(visible(&v.reveal(job).unwrap()).is_empty());
    }
    // Lower the high-water mark by hand (its first 8 bytes), and set the clock back.
    let mut blob = time_blob(dir.path());
    blob[..8].copy_from_slice(&jobseal::clock::to_ms(at(200)).to_be_bytes());
    set_time_blob(dir.path(), &blob);
    clock.set_wall(at(200));
    clock.reboot(Duration::from_secs(5));
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    assert_eq!(v.reveal(job).unwrap_err().kind(), ErrorKind::Tampered);
    assert_eq!(v.trusted_now().unwrap_err().kind(), ErrorKind::Tampered);
    // Dispatch's (authenticated) time repairs it; the window stays closed.
    v.anchor_server_time(at(CLOSES + 11)).unwrap();
    let r = v.reveal(job).unwrap();
    assert!(visible(&r).is_empty());
    assert!(r.at >= at(CLOSES + 11));
}

#[test]
fn a_time_state_copied_aside_is_useless_after_a_shred() {
    let (dir, clock, job) = job_in(JobState::OnSite);
    let early = time_blob(dir.path());
    // Another job is closed later: the key rotation re-seals the time state under a new epoch.
    clock.advance(chrono::Duration::minutes(CLOSES - 200 + 10));
    {
        let v = open_vault(dir.path(), clock.clone()).unwrap();
        let other = Uuid::new_v4();
        v.ingest(&Sheet::new(other).expiry(at(EXPIRY + 600)).build()).unwrap();
        v.cancel(other).unwrap();
        assert!(visible(&v.reveal(job).unwrap()).is_empty());
    }
    // The technician writes the early copy back, reboots, and sets the clock back.
    set_time_blob(dir.path(), &early);
    clock.reboot(Duration::from_secs(5));
    clock.set_wall(at(200));
    let v = open_vault(dir.path(), clock).unwrap();
    assert_eq!(v.reveal(job).unwrap_err().kind(), ErrorKind::Tampered);
}

#[test]
fn a_reboot_with_the_clock_set_back_never_reopens_a_window() {
    let (dir, clock, job) = job_in(JobState::OnSite);
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    assert_eq!(visible(&v.reveal(job).unwrap()).len(), 5);
    // Time passes with only read-only calls: they keep the high-water mark too.
    clock.advance(chrono::Duration::minutes(CLOSES - 200 + 10));
    v.list_jobs().unwrap();
    drop(v);
    clock.reboot(Duration::from_secs(30));
    clock.set_wall(at(200));
    let v = open_vault(dir.path(), clock).unwrap();
    let r = v.reveal(job).unwrap();
    assert!(visible(&r).is_empty(), "the window reopened after a reboot");
    assert!(r.at >= at(CLOSES + 10));
}

#[test]
fn after_a_reboot_uptime_beyond_the_old_anchors_is_not_taken_for_the_same_boot() {
    // Anchored early in a boot (10 s of uptime). The phone is then off until after the hard
    // expiry and boots again; an hour later the honest wall clock says so. The old rule took the
    // anchor as current (uptime 1 h >= 10 s) and put trusted time at anchor + 1 h: not expired.
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::with_boot(at(OPENS), Duration::from_secs(10)));
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    let job = Uuid::new_v4();
    v.ingest(&sheet(job, 1)).unwrap();
    v.anchor_server_time(at(OPENS)).unwrap();
    drop(v);
    clock.set_wall(at(EXPIRY + 60));
    clock.reboot(Duration::from_secs(3600));
    let v = open_vault(dir.path(), clock).unwrap();
    let info = v.job(job).unwrap();
    assert!(info.shredded_at.is_some(), "expired job still live after the reboot");
    assert_eq!(info.state, JobState::Expired);
}

#[test]
fn after_a_reboot_a_forward_jump_opens_a_window_at_most_the_credit_early() {
    // A job two days ahead; dispatch's time anchored at +0; then a reboot.
    const DAY: i64 = 24 * 60;
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::with_boot(at(0), Duration::from_secs(100)));
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    let job = Uuid::new_v4();
    v.ingest(&Sheet::new(job).window(at(2 * DAY), at(2 * DAY + 120)).expiry(at(3 * DAY)).build()).unwrap();
    v.advance(job, JobState::EnRoute).unwrap();
    v.advance(job, JobState::OnSite).unwrap();
    v.anchor_server_time(at(0)).unwrap();
    drop(v);
    clock.reboot(Duration::from_secs(60));
    // The technician sets the clock to the slot, two days ahead: believed only up to the credit
    // (12 h) above what is proven (+1 min), so the window stays shut.
    clock.set_wall(at(2 * DAY));
    let v = open_vault(dir.path(), clock).unwrap();
    let r = v.reveal(job).unwrap();
    assert!(visible(&r).is_empty(), "a forward jump opened the window two days early");
    assert!(r.at <= at(1) + chrono::Duration::milliseconds(jobseal::clock::MAX_WALL_CREDIT_MS), "{}", r.at);
}

/// Turns a vault back into what release 0.2 wrote: schema 2, no tags, the untagged high-water
/// mark, and the epoch master key wrapped without the format byte (which needs the keystore).
fn make_legacy(dir: &Path, high_water: chrono::DateTime<chrono::Utc>) {
    use jobseal::KeyStore;
    let keystore = jobseal::FileKeyStore::open(dir.join(jobseal::KEYSTORE_DIR)).unwrap();
    let conn = rusqlite::Connection::open(dir.join(DB)).unwrap();
    let (epoch, wrapped): (i64, Vec<u8>) =
        conn.query_row("SELECT epoch, wrapped_emk FROM epochs", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    let alias = jobseal::keys::kek_alias(epoch as u64);
    let raw = keystore.unwrap(&alias, &wrapped).unwrap();
    assert_eq!(raw.len(), 33, "a tagged vault's master key carries its format byte");
    let legacy = keystore.wrap(&alias, &raw[..32]).unwrap();
    conn.execute("UPDATE epochs SET wrapped_emk = ?1", [legacy]).unwrap();
    conn.execute_batch(
        "ALTER TABLE jobs DROP COLUMN mac;
         DELETE FROM secrets WHERE id = 'vault:integrity';
         DELETE FROM meta WHERE key = 'time_state';
         PRAGMA user_version = 2;",
    )
    .unwrap();
    conn.execute("INSERT INTO meta (key, value) VALUES ('high_water_ms', ?1)", [jobseal::clock::to_ms(high_water)])
        .unwrap();
}

#[test]
fn a_vault_written_before_tags_is_upgraded_once_and_cannot_be_made_to_look_old_again() {
    let (dir, clock, job) = job_in(JobState::OnSite);
    make_legacy(dir.path(), at(200));
    // The technician keeps a copy of the untagged database (its key wrap is genuine) from
    // before the upgrade. Found by review: an upgrade that re-wrapped the same master key under
    // the same KEK let that copy, edited and written back, pass as untagged and be tagged again.
    let saved = tempfile::tempdir().unwrap();
    for f in ["vault.db", "vault.db-wal", "vault.db-shm"] {
        if dir.path().join(f).exists() {
            std::fs::copy(dir.path().join(f), saved.path().join(f)).unwrap();
        }
    }
    {
        // The upgrade takes the rows and the high-water mark as found, and tags them.
        let v = open_vault(dir.path(), clock.clone()).unwrap();
        assert_eq!(visible(&v.reveal(job).unwrap()).len(), 5);
        let conn = rusqlite::Connection::open(dir.path().join(DB)).unwrap();
        let untagged: i64 = conn.query_row("SELECT count(*) FROM jobs WHERE mac IS NULL", [], |r| r.get(0)).unwrap();
        assert_eq!(untagged, 0);
    }
    // Now the technician edits a row and tries to pass the vault off as untagged, without the
    // keystore: the master key's wrap still says "tagged", so the edit is caught.
    sqlite(
        dir.path(),
        "UPDATE fields SET reveal_in = 'assigned,en-route,on-site';
         ALTER TABLE jobs DROP COLUMN mac;
         DELETE FROM secrets WHERE id = 'vault:integrity';
         DELETE FROM meta WHERE key = 'time_state';
         INSERT INTO meta (key, value) VALUES ('high_water_ms', 0);
         PRAGMA user_version = 2;",
    );
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    assert_eq!(v.reveal(job).unwrap_err().kind(), ErrorKind::Tampered);
    drop(v);
    // The saved untagged copy, edited and written back: the upgrade rotated the key epoch, so its
    // KEK is gone and the copy opens nothing.
    for f in ["vault.db", "vault.db-wal", "vault.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
        if saved.path().join(f).exists() {
            std::fs::copy(saved.path().join(f), dir.path().join(f)).unwrap();
        }
    }
    sqlite(dir.path(), "UPDATE fields SET reveal_in = 'assigned,en-route,on-site';");
    match open_vault(dir.path(), clock) {
        Err(e) => assert_eq!(e.kind(), ErrorKind::KeyStore, "{e}"),
        Ok(v) => panic!("the pre-upgrade copy opened: {:?}", v.reveal(job).map(|r| visible(&r).len())),
    }
}

/// An authentic answer held back on the way carries dispatch's time from when it was written.
/// Found by review: anchoring took it as exact, so trusted time went back by the delay.
#[test]
fn a_late_authentic_anchor_does_not_move_trusted_time_back() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::with_boot(at(0), Duration::from_secs(100)));
    let v = open_vault(dir.path(), clock.clone()).unwrap();
    v.anchor_server_time(at(0)).unwrap();
    clock.advance(chrono::Duration::minutes(30));
    // The answer written at +10 arrives now, at +30.
    v.anchor_server_time(at(10)).unwrap();
    clock.set_wall(at(0));
    assert!(v.trusted_now().unwrap() >= at(30), "{}", v.trusted_now().unwrap());
}

//! The vault from outside: the lifecycle and policy matrix, trusted time, tampering, bad input and
//! concurrency (G2, G3, G5, G8).

use jobseal::{Denial, Error, FieldAccess, JobState, ManualClock};
use jobseal_testkit::device::{open_vault, vault_at, TestVault};
use jobseal_testkit::sheet::{at, default_fields, sheet, Sheet, CLOSES, EXPIRY, OPENS, VALUES};
use std::sync::Arc;
use uuid::Uuid;

fn visible(r: &jobseal::Reveal) -> Vec<&str> {
    r.fields.iter().filter(|f| matches!(f.access, FieldAccess::Visible { .. })).map(|f| f.name.as_str()).collect()
}

fn move_to(v: &jobseal::Vault, job: Uuid, state: JobState) {
    match state {
        JobState::Assigned => {}
        JobState::EnRoute => {
            v.advance(job, JobState::EnRoute).unwrap();
        }
        JobState::OnSite => {
            v.advance(job, JobState::EnRoute).unwrap();
            v.advance(job, JobState::OnSite).unwrap();
        }
        other => panic!("not a live state: {other}"),
    }
}

#[test]
fn each_field_is_revealed_exactly_in_its_states_and_window() {
    let times = [OPENS - 1, OPENS, 200, CLOSES - 1, CLOSES, EXPIRY - 1];
    for state in [JobState::Assigned, JobState::EnRoute, JobState::OnSite] {
        for &minute in &times {
            let tv = vault_at(0);
            let job = Uuid::new_v4();
            tv.vault.ingest(&sheet(job, 1)).unwrap();
            move_to(&tv.vault, job, state);
            tv.clock.set_wall(at(minute));
            let r = tv.vault.reveal(job).unwrap();
            assert_eq!(r.state, state);
            assert_eq!(r.fields.len(), 5);
            for (f, field) in r.fields.iter().zip(default_fields()) {
                let name = field.name.as_str();
                assert_eq!(f.name, name);
                let in_state = field.revealed_in(state.as_str());
                let in_window = (OPENS..CLOSES).contains(&minute);
                match (&f.access, in_state, in_window) {
                    (FieldAccess::Visible { until, value }, true, true) => {
                        assert_eq!(*until, at(CLOSES), "{name} in {state} at +{minute}m");
                        assert!(!value.expose().is_empty());
                    }
                    (FieldAccess::Hidden(Denial::WrongState { state: s, .. }), false, _) => assert_eq!(*s, state),
                    (FieldAccess::Hidden(Denial::NotYetOpen { opens_at }), true, false) if minute < OPENS => {
                        assert_eq!(*opens_at, at(OPENS))
                    }
                    (FieldAccess::Hidden(Denial::WindowClosed { closed_at }), true, false) if minute >= CLOSES => {
                        assert_eq!(*closed_at, at(CLOSES))
                    }
                    (access, in_state, in_window) => panic!(
                        "{name} in {state} at +{minute}m: got {}, expected in_state={in_state} in_window={in_window}",
                        match access {
                            FieldAccess::Visible { .. } => "visible".to_string(),
                            FieldAccess::Hidden(d) => format!("hidden ({d})"),
                        }
                    ),
                }
            }
            // Every field asked for is in the reveal's one audit event, shown or refused, as the
            // reveal decided it.
            let reveals: Vec<_> = tv
                .vault
                .audit_log(Some(job))
                .unwrap()
                .into_iter()
                .filter(|e| matches!(e.kind, jobseal::AuditKind::Reveal | jobseal::AuditKind::RevealDenied))
                .collect();
            assert_eq!(reveals.len(), 1, "{state} at +{minute}m: one audit event per reveal");
            let summary = reveals[0].reveal_summary().expect("a reveal event names its fields");
            let shown: Vec<&str> = r
                .fields
                .iter()
                .filter(|f| matches!(f.access, FieldAccess::Visible { .. }))
                .map(|f| f.name.as_str())
                .collect();
            let refused: Vec<(&str, &str)> = r
                .fields
                .iter()
                .filter_map(|f| match &f.access {
                    FieldAccess::Hidden(d) => Some((f.name.as_str(), d.code())),
                    FieldAccess::Visible { .. } => None,
                })
                .collect();
            assert_eq!(summary.shown, shown, "{state} at +{minute}m");
            let logged: Vec<(&str, &str)> = summary.refused.iter().map(|(n, c)| (n.as_str(), c.as_str())).collect();
            assert_eq!(logged, refused, "{state} at +{minute}m");
            assert_eq!(summary.shown.len() + summary.refused.len(), 5);
            let kind = if shown.is_empty() { jobseal::AuditKind::RevealDenied } else { jobseal::AuditKind::Reveal };
            assert_eq!(reveals[0].kind, kind);
        }
    }
}

#[test]
fn revealed_values_are_the_ingested_ones() {
    let tv = vault_at(0);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    move_to(&tv.vault, job, JobState::OnSite);
    tv.clock.set_wall(at(200));
    let r = tv.vault.reveal(job).unwrap();
    let values: Vec<String> = r
        .fields
        .into_iter()
        .map(|f| match f.access {
            FieldAccess::Visible { value, .. } => value.into_inner(),
            FieldAccess::Hidden(d) => panic!("{} hidden: {d}", f.name),
        })
        .collect();
    assert!(values == VALUES, "revealed values differ from the sheet");
}

#[test]
fn every_terminal_state_denies_as_shredded() {
    for end in [JobState::Completed, JobState::Cancelled, JobState::Revoked, JobState::Expired] {
        let tv = vault_at(0);
        let job = Uuid::new_v4();
        tv.vault.ingest(&sheet(job, 1)).unwrap();
        move_to(&tv.vault, job, JobState::OnSite);
        tv.clock.set_wall(at(200));
        let epoch = tv.vault.epoch();
        let outcome = match end {
            JobState::Completed => tv.vault.close(job, "Installed and tested.").unwrap(),
            JobState::Cancelled => tv.vault.cancel(job).unwrap(),
            JobState::Revoked => tv.vault.revoke(job).unwrap(),
            _ => {
                tv.clock.set_wall(at(EXPIRY));
                let mut out = tv.vault.sweep().unwrap();
                assert_eq!(out.len(), 1);
                out.remove(0)
            }
        };
        assert_eq!(outcome.state, end);
        assert_eq!(outcome.fields_destroyed, 5);
        assert_eq!(outcome.epoch, epoch + 1, "every shred rotates the epoch");
        assert_eq!(tv.vault.epoch(), epoch + 1);
        match tv.vault.reveal(job) {
            Err(Error::AccessDenied(Denial::Shredded { state })) => assert_eq!(state, end),
            other => panic!("reveal after {end}: {:?}", other.map(|r| r.state)),
        }
        let info = tv.vault.job(job).unwrap();
        assert_eq!(info.state, end);
        assert!(info.fields.is_empty() && info.work.is_none() && info.site_area.is_none());
        assert!(info.shredded_at.is_some());
        assert!(!tv.dir.path().join("keystore").join(format!("jobseal-kek-{epoch}.key")).exists());
    }
}

#[test]
fn the_report_survives_the_close_and_a_second_close_fails() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    move_to(&tv.vault, job, JobState::OnSite);
    tv.vault.close(job, "Replaced the ONT; signal -18 dBm.").unwrap();
    assert_eq!(tv.vault.job(job).unwrap().report.as_deref(), Some("Replaced the ONT; signal -18 dBm."));
    let audit_len = tv.vault.audit_log(None).unwrap().len();
    assert!(matches!(tv.vault.close(job, "again"), Err(Error::JobClosed { state: JobState::Completed, .. })));
    assert!(matches!(tv.vault.cancel(job), Err(Error::JobClosed { .. })));
    assert!(matches!(tv.vault.advance(job, JobState::OnSite), Err(Error::JobClosed { .. })));
    assert_eq!(tv.vault.audit_log(None).unwrap().len(), audit_len, "failed calls must not write");
    // Reopening keeps the report and the tombstone.
    let TestVault { vault, clock, dir } = tv;
    drop(vault);
    let vault = open_vault(dir.path(), clock).unwrap();
    assert_eq!(vault.job(job).unwrap().report.as_deref(), Some("Replaced the ONT; signal -18 dBm."));
}

#[test]
fn surviving_jobs_stay_readable_across_rotations_and_reopen() {
    let tv = vault_at(200);
    let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for j in &jobs {
        tv.vault.ingest(&sheet(*j, 1)).unwrap();
        move_to(&tv.vault, *j, JobState::OnSite);
    }
    tv.vault.close(jobs[0], "done").unwrap();
    tv.vault.cancel(jobs[1]).unwrap();
    let TestVault { vault, clock, dir } = tv;
    drop(vault);
    let vault = open_vault(dir.path(), clock).unwrap();
    assert_eq!(vault.epoch(), 3);
    for j in &jobs[2..] {
        assert_eq!(visible(&vault.reveal(*j).unwrap()).len(), 5);
    }
    let keys: Vec<_> = std::fs::read_dir(dir.path().join("keystore")).unwrap().collect();
    assert_eq!(keys.len(), 1, "only the current epoch's KEK remains");
}

#[test]
fn clock_rollback_never_reopens_or_extends_a_window() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    move_to(&tv.vault, job, JobState::OnSite);
    assert_eq!(visible(&tv.vault.reveal(job).unwrap()).len(), 5);
    tv.clock.set_wall(at(CLOSES + 10));
    assert!(visible(&tv.vault.reveal(job).unwrap()).is_empty());
    // The technician sets the phone's clock back into the window.
    tv.clock.set_wall(at(200));
    let r = tv.vault.reveal(job).unwrap();
    assert!(visible(&r).is_empty(), "rollback reopened the window");
    assert!(r.at >= at(CLOSES + 10));
    // And across a reopen of the vault.
    let TestVault { vault, clock, dir } = tv;
    drop(vault);
    let vault = open_vault(dir.path(), clock).unwrap();
    assert!(visible(&vault.reveal(job).unwrap()).is_empty());
    assert!(vault.trusted_now().unwrap() >= at(CLOSES + 10));
}

#[test]
fn server_time_anchor_outranks_the_wall_clock_within_a_boot() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::with_boot(at(0), std::time::Duration::from_secs(3600)));
    let vault = open_vault(dir.path(), clock.clone()).unwrap();
    let job = Uuid::new_v4();
    vault.ingest(&sheet(job, 1)).unwrap();
    move_to(&vault, job, JobState::OnSite);
    vault.anchor_server_time(at(0)).unwrap();
    // The technician moves the wall clock into the window: trusted time does not follow.
    clock.set_wall(at(200));
    assert!(visible(&vault.reveal(job).unwrap()).is_empty());
    // Real time passes on the boot clock: the window opens.
    clock.advance(chrono::Duration::minutes(200));
    assert_eq!(visible(&vault.reveal(job).unwrap()).len(), 5);
}

#[test]
fn hard_expiry_shreds_at_open_with_no_other_call() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    let TestVault { vault, clock, dir } = tv;
    drop(vault);
    clock.set_wall(at(EXPIRY));
    let vault = open_vault(dir.path(), clock).unwrap();
    let info = vault.job(job).unwrap();
    assert_eq!(info.state, JobState::Expired);
    assert!(info.fields.is_empty());
    let shreds: Vec<_> =
        vault.audit_log(Some(job)).unwrap().into_iter().filter(|e| e.kind == jobseal::AuditKind::Shredded).collect();
    assert_eq!(shreds.len(), 1);
}

#[test]
fn hard_expiry_shreds_at_the_next_call_of_any_kind() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    tv.clock.set_wall(at(EXPIRY + 1));
    assert_eq!(tv.vault.list_jobs().unwrap()[0].state, JobState::Expired);
}

#[test]
fn a_tampered_ciphertext_is_refused_and_a_moved_one_does_not_open() {
    let tv = vault_at(200);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    tv.vault.ingest(&sheet(a, 1)).unwrap();
    tv.vault.ingest(&sheet(b, 1)).unwrap();
    move_to(&tv.vault, a, JobState::OnSite);
    move_to(&tv.vault, b, JobState::OnSite);
    let db = rusqlite::Connection::open(tv.dir.path().join("vault.db")).unwrap();
    // Flip one byte of a's phone ciphertext.
    let mut sealed: Vec<u8> = db
        .query_row("SELECT sealed FROM fields WHERE job_id = ?1 AND name = 'phone'", [a.to_string()], |r| r.get(0))
        .unwrap();
    sealed[30] ^= 0x01;
    db.execute(
        "UPDATE fields SET sealed = ?2 WHERE job_id = ?1 AND name = 'phone'",
        rusqlite::params![a.to_string(), sealed],
    )
    .unwrap();
    let before = tv.vault.audit_log(None).unwrap().len();
    assert!(matches!(tv.vault.reveal(a), Err(Error::Tampered(_))));
    assert_eq!(tv.vault.audit_log(None).unwrap().len(), before, "a failed reveal must not be audited as a read");
    // Move b's door code into b's phone field: same job and key, another field.
    db.execute(
        "UPDATE fields SET sealed = (SELECT sealed FROM fields WHERE job_id = ?1 AND name = 'door_code') WHERE job_id = ?1 AND name = 'phone'",
        [b.to_string()],
    )
    .unwrap();
    assert!(matches!(tv.vault.reveal(b), Err(Error::Tampered(_))));
    // Move a fresh job's field into another job (different key and AAD).
    let c = Uuid::new_v4();
    tv.vault.ingest(&sheet(c, 1)).unwrap();
    move_to(&tv.vault, c, JobState::OnSite);
    let d = Uuid::new_v4();
    tv.vault.ingest(&sheet(d, 1)).unwrap();
    move_to(&tv.vault, d, JobState::OnSite);
    db.execute(
        "UPDATE fields SET sealed = (SELECT sealed FROM fields WHERE job_id = ?1 AND name = 'note') WHERE job_id = ?2 AND name = 'note'",
        [c.to_string(), d.to_string()],
    )
    .unwrap();
    assert!(matches!(tv.vault.reveal(d), Err(Error::Tampered(_))));
    // A data key moved to another job does not unwrap there.
    db.execute(
        "UPDATE secrets SET wrapped = (SELECT wrapped FROM secrets WHERE id = ?1) WHERE id = ?2",
        [format!("dek:{c}"), format!("dek:{d}")],
    )
    .unwrap();
    assert!(matches!(tv.vault.reveal(d), Err(Error::Tampered(_))));
    assert_eq!(visible(&tv.vault.reveal(c).unwrap()).len(), 5, "the untouched job still opens");
}

#[test]
fn sheet_versions_only_move_forward() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 2)).unwrap();
    move_to(&tv.vault, job, JobState::OnSite);
    for stale in [1, 2] {
        match tv.vault.ingest(&sheet(job, stale)) {
            Err(Error::StaleVersion { held: 2, offered, .. }) => assert_eq!(offered, stale),
            other => panic!("stale version {stale} accepted: {:?}", other.map(|i| i.version)),
        }
    }
    let new_door = "1111B-FAKE";
    let v3 = Sheet::new(job).version(3).value("door_code", new_door).build();
    let info = tv.vault.ingest(&v3).unwrap();
    assert_eq!((info.version, info.state), (3, JobState::OnSite), "an update keeps the state");
    let r = tv.vault.reveal(job).unwrap();
    let door = r.fields.iter().find(|f| f.name == "door_code").unwrap();
    assert!(matches!(&door.access, FieldAccess::Visible { value, .. } if value.expose() == new_door));
    tv.vault.close(job, "done").unwrap();
    assert!(matches!(tv.vault.ingest(&sheet(job, 4)), Err(Error::JobClosed { .. })), "a closed job came back");
}

#[test]
fn bad_input_is_a_typed_error_and_changes_nothing() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    let snapshot = || (tv.vault.list_jobs().unwrap(), tv.vault.audit_log(None).unwrap(), tv.vault.epoch());
    let before = snapshot();
    let unknown = Uuid::new_v4();
    assert!(matches!(tv.vault.reveal(unknown), Err(Error::JobNotFound(id)) if id == unknown));
    assert!(matches!(tv.vault.job(unknown), Err(Error::JobNotFound(_))));
    assert!(matches!(tv.vault.advance(unknown, JobState::EnRoute), Err(Error::JobNotFound(_))));
    assert!(matches!(tv.vault.close(unknown, "x"), Err(Error::JobNotFound(_))));
    assert!(matches!(tv.vault.cancel(unknown), Err(Error::JobNotFound(_))));
    for to in JobState::ALL {
        if to != JobState::EnRoute && to != JobState::OnSite {
            assert!(matches!(tv.vault.advance(job, to), Err(Error::IllegalTransition { .. })), "advance to {to}");
        }
    }
    assert!(matches!(tv.vault.close(job, "not started"), Err(Error::IllegalTransition { .. })));
    move_to(&tv.vault, job, JobState::OnSite);
    let before_close = snapshot();
    assert!(matches!(tv.vault.advance(job, JobState::EnRoute), Err(Error::IllegalTransition { .. })));
    assert!(matches!(tv.vault.close(job, ""), Err(Error::InvalidInput(_))));
    assert!(matches!(tv.vault.close(job, &"x".repeat(jobseal::MAX_REPORT_CHARS + 1)), Err(Error::InvalidInput(_))));
    assert!(matches!(tv.vault.close(job, "bell\u{7}"), Err(Error::InvalidInput(_))));
    assert!(snapshot() == before_close, "a refused call changed the vault");
    let expired = Sheet::new(Uuid::new_v4()).window(at(50), at(100)).expiry(at(180)).build();
    assert!(matches!(tv.vault.ingest(&expired), Err(Error::InvalidSheet(_))));
    assert_eq!(tv.vault.list_jobs().unwrap().len(), before.0.len());
}

#[test]
fn a_second_process_cannot_open_the_same_vault() {
    let tv = vault_at(0);
    let clock = Arc::new(ManualClock::new(at(0)));
    assert!(matches!(open_vault(tv.dir.path(), clock), Err(Error::Locked)));
}

#[test]
fn a_vault_does_not_open_with_another_keystore() {
    let tv = vault_at(0);
    let TestVault { vault, clock, dir } = tv;
    drop(vault);
    let other = tempfile::tempdir().unwrap();
    let ks = jobseal::FileKeyStore::open(other.path()).unwrap();
    assert!(matches!(jobseal::Vault::open(dir.path(), Arc::new(ks), clock), Err(Error::KeyStore(_))));
}

#[test]
fn the_audit_log_records_every_step_and_verifies() {
    let tv = vault_at(200);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 1)).unwrap();
    move_to(&tv.vault, job, JobState::OnSite);
    tv.vault.reveal(job).unwrap();
    tv.vault.close(job, "done").unwrap();
    let kinds: Vec<_> = tv.vault.audit_log(Some(job)).unwrap().into_iter().map(|e| e.kind).collect();
    use jobseal::AuditKind::*;
    assert_eq!(kinds, [Ingested, Transition, Transition, Reveal, Shredded]);
    let reveal = &tv.vault.audit_log(Some(job)).unwrap()[3];
    let summary = reveal.reveal_summary().unwrap();
    assert_eq!(summary.shown.len() + summary.refused.len(), 5, "the reveal names every field: {summary:?}");
    let v = tv.vault.verify_audit().unwrap();
    assert!(v.valid && v.events == 6, "{v:?}");
    for e in tv.vault.audit_log(None).unwrap() {
        let text = serde_json::to_string(&e).unwrap();
        for value in VALUES {
            assert!(!text.contains(value), "audit event {} holds a customer value", e.seq);
        }
    }
    // An edit made behind the vault's back is found.
    let db = rusqlite::Connection::open(tv.dir.path().join("vault.db")).unwrap();
    db.execute("UPDATE audit SET field = 'address' WHERE seq = 6", []).unwrap();
    let v = tv.vault.verify_audit().unwrap();
    assert!(!v.valid);
    assert_eq!(v.broken_at, Some(6));
}

#[test]
fn many_threads_share_one_vault() {
    let tv = vault_at(200);
    let vault = Arc::new(tv.vault);
    let jobs: Vec<Uuid> = (0..8).map(|_| Uuid::new_v4()).collect();
    for j in &jobs {
        vault.ingest(&sheet(*j, 1)).unwrap();
    }
    let handles: Vec<_> = jobs
        .iter()
        .enumerate()
        .map(|(i, &job)| {
            let vault = vault.clone();
            std::thread::spawn(move || {
                vault.advance(job, JobState::EnRoute).unwrap();
                vault.advance(job, JobState::OnSite).unwrap();
                for _ in 0..5 {
                    assert_eq!(visible(&vault.reveal(job).unwrap()).len(), 5);
                    vault.list_jobs().unwrap();
                }
                if i % 2 == 0 {
                    vault.close(job, "done").unwrap();
                } else {
                    vault.cancel(job).unwrap();
                }
                vault.sweep().unwrap();
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a worker thread panicked");
    }
    assert_eq!(vault.epoch(), 1 + jobs.len() as u64);
    assert!(vault.list_jobs().unwrap().iter().all(|j| j.state.is_terminal()));
    let v = vault.verify_audit().unwrap();
    assert!(v.valid, "{v:?}");
    // Per job: ingest, two transitions, five reveals (one event each), the shred.
    assert_eq!(v.events, 1 + 8 * (1 + 2 + 5 + 1));
}

#[test]
fn a_new_vault_starts_over_a_stale_keystore() {
    let tv = vault_at(0);
    let TestVault { vault, clock, dir } = tv;
    drop(vault);
    for f in ["vault.db", "vault.db-wal", "vault.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let vault = open_vault(dir.path(), clock).unwrap();
    assert_eq!(vault.epoch(), 1);
    assert!(vault.list_jobs().unwrap().is_empty());
}

/// The software keystore, except that deleting one alias fails (a keystore that fails a delete
/// at the wrong moment).
pub(crate) struct DeleteFails {
    pub(crate) inner: jobseal::FileKeyStore,
    pub(crate) refuse: std::sync::Mutex<Option<String>>,
}

impl jobseal::KeyStore for DeleteFails {
    fn generate(&self, alias: &str) -> Result<(), jobseal::KeyStoreError> {
        self.inner.generate(alias)
    }
    fn wrap(&self, alias: &str, plaintext: &[u8]) -> Result<Vec<u8>, jobseal::KeyStoreError> {
        self.inner.wrap(alias, plaintext)
    }
    fn unwrap(&self, alias: &str, wrapped: &[u8]) -> Result<zeroize::Zeroizing<Vec<u8>>, jobseal::KeyStoreError> {
        self.inner.unwrap(alias, wrapped)
    }
    fn delete(&self, alias: &str) -> Result<(), jobseal::KeyStoreError> {
        if self.refuse.lock().unwrap().as_deref() == Some(alias) {
            return Err(jobseal::KeyStoreError::new(format!("cannot delete {alias}")));
        }
        self.inner.delete(alias)
    }
}

/// A retired KEK whose delete keeps failing stays listed and is retried, but it does not stop
/// later shreds: the next closed job is shredded all the same. Found by an attacker-style review:
/// the retry had moved into the shred transaction and rolled every later shred back.
#[test]
fn a_retired_kek_that_will_not_delete_does_not_stop_later_shreds() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Arc::new(DeleteFails {
        inner: jobseal::FileKeyStore::open(dir.path().join(jobseal::KEYSTORE_DIR)).unwrap(),
        refuse: std::sync::Mutex::new(None),
    });
    let clock = Arc::new(ManualClock::new(at(200)));
    let vault = jobseal::Vault::open(dir.path(), ks.clone(), clock).unwrap();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    for j in [a, b] {
        vault.ingest(&sheet(j, 1)).unwrap();
        move_to(&vault, j, JobState::OnSite);
    }
    *ks.refuse.lock().unwrap() = Some("jobseal-kek-1".to_owned());
    // First close: the shred commits, deleting KEK 1 fails (documented).
    assert!(matches!(vault.close(a, "done"), Err(Error::KeyStore(_))));
    assert_eq!(vault.job(a).unwrap().state, JobState::Completed);
    assert_eq!(vault.epoch(), 2);
    // Second close of another job: its shred commits; the stuck key is still reported.
    assert!(matches!(vault.close(b, "done"), Err(Error::KeyStore(_))));
    assert_eq!(vault.job(b).unwrap().state, JobState::Completed);
    assert_eq!(vault.list_jobs().unwrap().len(), 2, "the vault keeps working");
    // Once the keystore deletes again, the next open deletes the retired keys.
    *ks.refuse.lock().unwrap() = None;
    let epoch = vault.epoch();
    drop(vault);
    let db = rusqlite::Connection::open(dir.path().join("vault.db")).unwrap();
    let sealed: i64 =
        db.query_row("SELECT count(*) FROM fields WHERE job_id = ?1", [b.to_string()], |r| r.get(0)).unwrap();
    let dek: i64 =
        db.query_row("SELECT count(*) FROM secrets WHERE id = ?1", [format!("dek:{b}")], |r| r.get(0)).unwrap();
    assert_eq!(
        (sealed, dek, epoch),
        (0, 0, 3),
        "the second job was not shredded: its sealed fields and data key stay in vault.db"
    );
    drop(db);
    let vault = jobseal::Vault::open(dir.path(), ks.clone(), Arc::new(ManualClock::new(at(200)))).unwrap();
    assert_eq!(vault.epoch(), 3);
    let kek_files = std::fs::read_dir(dir.path().join(jobseal::KEYSTORE_DIR)).unwrap().count();
    assert_eq!(kek_files, 1, "retired KEKs were not deleted at the next open");
}

//! Vault events from outside: what an app's screens are told, when, and that the telling can
//! neither block the vault, nor run before a change is durable, nor carry a customer value.

use jobseal::{Error, JobState, Vault, VaultEvent, VaultObserver};
use jobseal_testkit::device::{open_vault, vault_at};
use jobseal_testkit::sheet::{at, sheet, EXPIRY, VALUES};
use std::sync::{Arc, Mutex, OnceLock};
use uuid::Uuid;

/// Records every event it is told.
#[derive(Default)]
struct Recorder(Mutex<Vec<VaultEvent>>);

impl VaultObserver for Recorder {
    fn on_event(&self, event: &VaultEvent) {
        self.0.lock().unwrap().push(event.clone());
    }
}

impl Recorder {
    fn take(&self) -> Vec<VaultEvent> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

#[test]
fn a_jobs_life_is_told_change_by_change_with_what_the_call_returned() {
    let tv = vault_at(0);
    let seen = Arc::new(Recorder::default());
    tv.vault.subscribe(seen.clone());
    let job = Uuid::new_v4();

    let mut all = Vec::new();
    let mut told = |seen: &Recorder| {
        let events = seen.take();
        all.extend(events.clone());
        events
    };
    let received = tv.vault.ingest(&sheet(job, 1)).unwrap();
    assert_eq!(told(&seen), vec![VaultEvent::JobReceived(received)]);
    let updated = tv.vault.ingest(&sheet(job, 2)).unwrap();
    assert_eq!(told(&seen), vec![VaultEvent::JobChanged(updated)]);
    let moved = tv.vault.advance(job, JobState::EnRoute).unwrap();
    assert_eq!(told(&seen), vec![VaultEvent::JobChanged(moved.clone())]);
    assert_eq!(moved.state, JobState::EnRoute);

    // Reads change nothing a screen shows: no event.
    tv.vault.reveal(job).unwrap();
    tv.vault.list_jobs().unwrap();
    assert_eq!(told(&seen), vec![]);

    let outcome = tv.vault.close(job, "Replaced the fake router.").unwrap();
    assert_eq!(told(&seen), vec![VaultEvent::JobShredded(outcome)]);
    assert_eq!(all.len(), 4);
    let shown = format!("{all:?}");
    for value in VALUES {
        assert!(!shown.contains(value), "an event's Debug output carries a customer value");
    }
    assert!(!shown.contains("Replaced the fake router."), "an event carries the completion report");
}

#[test]
fn a_refused_call_tells_nothing() {
    let tv = vault_at(0);
    let job = Uuid::new_v4();
    tv.vault.ingest(&sheet(job, 2)).unwrap();
    let seen = Arc::new(Recorder::default());
    tv.vault.subscribe(seen.clone());
    assert!(matches!(tv.vault.ingest(&sheet(job, 1)), Err(Error::StaleVersion { .. })));
    assert!(matches!(tv.vault.advance(job, JobState::Assigned), Err(Error::IllegalTransition { .. })));
    assert!(matches!(tv.vault.close(job, ""), Err(Error::InvalidInput(_))));
    assert_eq!(seen.take(), vec![]);
}

#[test]
fn an_expiry_enforced_by_any_call_is_told_but_one_enforced_while_opening_is_not() {
    let tv = vault_at(0);
    let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
    tv.vault.ingest(&sheet(first, 1)).unwrap();
    let seen = Arc::new(Recorder::default());
    tv.vault.subscribe(seen.clone());
    tv.clock.set_wall(at(EXPIRY));
    // A plain read enforces hard expiry, and the shred is told.
    tv.vault.list_jobs().unwrap();
    match seen.take().as_slice() {
        [VaultEvent::JobShredded(o)] => assert_eq!((o.job_id, o.state), (first, JobState::Expired)),
        other => panic!("expected one expiry shred, got {other:?}"),
    }

    // Opening shreds before anyone can subscribe; the first sweep reports it instead.
    let dir = tempfile::tempdir().unwrap();
    let clock = jobseal_testkit::device::clock_at(0);
    let vault = open_vault(dir.path(), clock.clone()).unwrap();
    vault.ingest(&sheet(second, 1)).unwrap();
    drop(vault);
    clock.set_wall(at(EXPIRY));
    let vault = open_vault(dir.path(), clock).unwrap();
    let seen = Arc::new(Recorder::default());
    vault.subscribe(seen.clone());
    let swept = vault.sweep().unwrap();
    assert_eq!(swept.len(), 1);
    assert_eq!(seen.take(), vec![]);
}

/// Calls the vault from inside `on_event`: with the lock still held this would deadlock.
struct CallsBack {
    vault: OnceLock<Arc<Vault>>,
    seen_states: Mutex<Vec<JobState>>,
}

impl VaultObserver for CallsBack {
    fn on_event(&self, event: &VaultEvent) {
        if let (VaultEvent::JobChanged(info), Some(vault)) = (event, self.vault.get()) {
            // The change is already durable and visible to a new call.
            let now = vault.job(info.job_id).unwrap();
            self.seen_states.lock().unwrap().push(now.state);
        }
    }
}

#[test]
fn an_observer_runs_after_the_lock_is_released_and_may_call_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Arc::new(open_vault(dir.path(), jobseal_testkit::device::clock_at(0)).unwrap());
    let observer = Arc::new(CallsBack { vault: OnceLock::new(), seen_states: Mutex::new(Vec::new()) });
    assert!(observer.vault.set(vault.clone()).is_ok());
    let id = vault.subscribe(observer.clone());
    let job = Uuid::new_v4();
    vault.ingest(&sheet(job, 1)).unwrap();
    vault.advance(job, JobState::EnRoute).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    assert_eq!(*observer.seen_states.lock().unwrap(), vec![JobState::EnRoute, JobState::OnSite]);

    assert!(vault.unsubscribe(id));
    assert!(!vault.unsubscribe(id), "an id is removed once");
    vault.cancel(job).unwrap();
    assert_eq!(observer.seen_states.lock().unwrap().len(), 2, "an unsubscribed observer hears nothing");
}

#[test]
fn a_sync_attempt_tells_the_sync_health_it_left_even_when_it_failed() {
    let tv = vault_at(0);
    let seen = Arc::new(Recorder::default());
    tv.vault.subscribe(seen.clone());
    struct Unreachable;
    impl jobseal::Transport for Unreachable {
        fn send(&self, _: jobseal::HttpRequest) -> Result<jobseal::HttpResponse, jobseal::TransportError> {
            Err(jobseal::TransportError { message: "no network in this test".into() })
        }
    }
    assert!(tv.vault.sync(&Unreachable).is_err());
    match seen.take().as_slice() {
        [VaultEvent::SyncStatusChanged(status)] => {
            assert_eq!(status, &tv.vault.sync_status().unwrap());
            assert_eq!(status.consecutive_failures, 1);
            assert!(status.next_attempt_at.is_some());
        }
        other => panic!("expected one sync status, got {other:?}"),
    }
}

#[test]
fn a_shred_whose_old_key_will_not_delete_is_told_all_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let ks = Arc::new(crate::vault::DeleteFails {
        inner: jobseal::FileKeyStore::open(dir.path().join(jobseal::KEYSTORE_DIR)).unwrap(),
        refuse: Mutex::new(None),
    });
    let vault = Vault::open(dir.path(), ks.clone(), jobseal_testkit::device::clock_at(200)).unwrap();
    let job = Uuid::new_v4();
    vault.ingest(&sheet(job, 1)).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    let seen = Arc::new(Recorder::default());
    vault.subscribe(seen.clone());
    *ks.refuse.lock().unwrap() = Some("jobseal-kek-1".to_owned());
    // The shred commits, then deleting the old KEK fails: the call reports the keystore error,
    // but the job is gone and the app must hear so.
    assert!(matches!(vault.close(job, "done"), Err(Error::KeyStore(_))));
    assert_eq!(vault.job(job).unwrap().state, JobState::Completed);
    match seen.take().as_slice() {
        [VaultEvent::JobShredded(o)] => assert_eq!((o.job_id, o.state), (job, JobState::Completed)),
        other => panic!("expected the committed shred to be told, got {other:?}"),
    }
}

/// Records every event; on the first `JobChanged`, moves the clock past another job's hard
/// expiry and calls the vault, whose expiry shred is therefore committed after that change.
struct ExpiresAnotherInside {
    vault: OnceLock<Arc<Vault>>,
    clock: Arc<jobseal::ManualClock>,
    seen: Recorder,
}

impl VaultObserver for ExpiresAnotherInside {
    fn on_event(&self, event: &VaultEvent) {
        self.seen.on_event(event);
        if let (VaultEvent::JobChanged(_), Some(vault)) = (event, self.vault.get()) {
            self.clock.set_wall(at(EXPIRY - 60));
            vault.list_jobs().unwrap();
        }
    }
}

#[test]
fn every_observer_hears_changes_in_commit_order_even_when_one_calls_the_vault() {
    let dir = tempfile::tempdir().unwrap();
    let clock = jobseal_testkit::device::clock_at(0);
    let vault = Arc::new(open_vault(dir.path(), clock.clone()).unwrap());
    let (moving, expiring) = (Uuid::new_v4(), Uuid::new_v4());
    vault.ingest(&sheet(moving, 1)).unwrap();
    vault.ingest(&jobseal_testkit::sheet::Sheet::new(expiring).expiry(at(EXPIRY - 120)).build()).unwrap();
    let first = Arc::new(ExpiresAnotherInside { vault: OnceLock::new(), clock, seen: Recorder::default() });
    assert!(first.vault.set(vault.clone()).is_ok());
    let first_id = vault.subscribe(first.clone());
    let second = Arc::new(Recorder::default());
    vault.subscribe(second.clone());

    vault.advance(moving, JobState::EnRoute).unwrap();
    let order = |events: Vec<VaultEvent>| -> Vec<(Uuid, &'static str)> {
        events
            .into_iter()
            .map(|e| match e {
                VaultEvent::JobChanged(j) => (j.job_id, "changed"),
                VaultEvent::JobShredded(o) => (o.job_id, "shredded"),
                other => panic!("unexpected {other:?}"),
            })
            .collect()
    };
    let expected = vec![(moving, "changed"), (expiring, "shredded")];
    assert_eq!(order(first.seen.take()), expected, "the observer that called the vault");
    assert_eq!(order(second.take()), expected, "an observer told after it");
    assert!(vault.unsubscribe(first_id));
}

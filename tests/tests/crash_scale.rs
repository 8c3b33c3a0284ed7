//! Crash injection at scale (G3, G5, G6, G7): a child process runs a random technician's day
//! (sealed sheets arriving by sync, transitions, reveals, closes with reports, cancels, key
//! rotations on every shred, syncs with a dispatch server that the parent runs on loopback) and
//! is killed with SIGKILL after a random delay, many times over, at whatever instruction it is
//! executing: not only at the named crash points. After each kill the parent reopens the vault
//! and checks: it opens; no closed job is readable; no live job is lost or unreadable; a report
//! is kept once its close began; one key epoch and one key file remain; the audit chain holds.
//! At the end a final sync must deliver every durable event to dispatch exactly once.
//!
//! Short mode (20 kills) runs with the normal test suite. Long mode:
//! `JOBSEAL_CRASH_KILLS=500 cargo test -p jobseal-e2e --test crash_scale -- --nocapture`;
//! `JOBSEAL_CRASH_SEED=N` replays a run's random choices (the kill timing still varies).

use jobseal::{Denial, Error, FieldAccess, HttpTransport, JobState, Vault};
use jobseal_e2e::stress::{check_exactly_once, error_class, read_journal, Fact, Journal, Rng};
use jobseal_testkit::child::rerun_test;
use jobseal_testkit::device::open_vault_at;
use jobseal_testkit::files::files_under;
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::sheet_value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use uuid::Uuid;

const REPORT: &str = "Crash-scale report: fibre terminal installed.";
const DEFAULT_KILLS: usize = 20;

fn device(dir: &Path) -> jobseal::Result<Vault> {
    open_vault_at(dir, 200)
}

/// The child: a random workload that never ends by itself. Any error that a correct vault cannot
/// return here panics, which the parent sees as an exit instead of a kill.
#[test]
#[ignore = "runs only as the child of the crash-at-scale test"]
fn crash_scale_child() {
    let dir = PathBuf::from(std::env::var("JOBSEAL_SCALE_DIR").expect("dir"));
    let base = std::env::var("JOBSEAL_SCALE_BASE").expect("base");
    let seed: u64 = std::env::var("JOBSEAL_SCALE_SEED").expect("seed").parse().expect("seed");
    let mut journal = Journal::open(&dir.with_extension("journal"));
    let vault = device(&dir).expect("the vault opens in the child");
    let net = HttpTransport::new(&base);
    let mut rng = Rng::new(seed);
    loop {
        let live: Vec<_> = vault.list_jobs().expect("list").into_iter().filter(|j| j.shredded_at.is_none()).collect();
        let pick = (!live.is_empty()).then(|| &live[rng.below(live.len())]);
        let roll = rng.below(12);
        let Some(job) = pick.filter(|_| roll >= 3) else {
            journal.record("sync", None, "start");
            match vault.sync(&net) {
                Ok(r) => {
                    for id in r.received {
                        journal.record("received", Some(id), "done");
                    }
                    journal.record("sync", None, "done");
                }
                Err(Error::Network(_)) => {}
                Err(e) => panic!("sync failed: {}", error_class(&e)),
            }
            continue;
        };
        let id = job.job_id;
        match roll {
            3..=5 => {
                let to = if job.state == JobState::Assigned { JobState::EnRoute } else { JobState::OnSite };
                journal.record("advance", Some(id), "start");
                match vault.advance(id, to) {
                    Ok(_) => journal.record("advance", Some(id), "done"),
                    Err(Error::IllegalTransition { .. }) => {}
                    Err(e) => panic!("advance failed: {}", error_class(&e)),
                }
            }
            6..=8 => {
                journal.record("reveal", Some(id), "start");
                vault.reveal(id).unwrap_or_else(|e| panic!("reveal of a live job failed: {}", error_class(&e)));
                journal.record("reveal", Some(id), "done");
            }
            9 | 10 if job.state.can_close() => {
                journal.record("close", Some(id), "start");
                vault.close(id, REPORT).unwrap_or_else(|e| panic!("close failed: {}", error_class(&e)));
                journal.record("close", Some(id), "done");
            }
            _ => {
                journal.record("cancel", Some(id), "start");
                vault.cancel(id).unwrap_or_else(|e| panic!("cancel failed: {}", error_class(&e)));
                journal.record("cancel", Some(id), "done");
            }
        }
    }
}

/// What the parent has learned from the journals so far.
#[derive(Default)]
struct Ledger {
    /// Jobs whose close or cancel returned to the technician, and which.
    finished: BTreeMap<Uuid, String>,
    /// Jobs whose close or cancel started.
    started: BTreeMap<Uuid, String>,
    /// Jobs known to be on the device (received by a sync, or seen live at a check).
    held: BTreeSet<Uuid>,
    /// Jobs dispatch cancelled (the device shreds them at a sync).
    withdrawn: BTreeSet<Uuid>,
    /// Operation counts from the journals.
    ops: BTreeMap<String, usize>,
}

impl Ledger {
    fn learn(&mut self, facts: &[Fact]) {
        self.ops.clear();
        for f in facts {
            if f.phase == "done" {
                *self.ops.entry(f.op.clone()).or_default() += 1;
            }
            let Some(job) = f.job else { continue };
            match (f.op.as_str(), f.phase.as_str()) {
                ("close" | "cancel", "start") => {
                    self.started.insert(job, f.op.clone());
                }
                ("close" | "cancel", "done") => {
                    self.finished.insert(job, f.op.clone());
                }
                ("received", _) => {
                    self.held.insert(job);
                }
                _ => {}
            }
        }
    }
}

/// The checks after one kill. Returns the live jobs.
fn check_after_kill(dir: &Path, ledger: &mut Ledger, kill: usize) -> BTreeSet<Uuid> {
    let ctx = |what: &str| format!("after kill {kill}: {what}");
    let vault =
        device(dir).unwrap_or_else(|e| panic!("{}", ctx(&format!("the vault does not open ({})", error_class(&e)))));
    let jobs: BTreeMap<Uuid, jobseal::JobInfo> =
        vault.list_jobs().expect("list").into_iter().map(|j| (j.job_id, j)).collect();
    for (job, op) in &ledger.finished {
        let info = jobs.get(job).unwrap_or_else(|| panic!("{}", ctx("a closed job vanished")));
        assert!(info.shredded_at.is_some() && info.fields.is_empty(), "{}", ctx("a closed job is not shredded"));
        assert!(
            matches!(vault.reveal(*job), Err(Error::AccessDenied(Denial::Shredded { .. }))),
            "{}",
            ctx("a closed job is readable")
        );
        if op == "close" {
            assert_eq!(info.state, JobState::Completed, "{}", ctx("a closed job is not completed"));
            assert_eq!(info.report.as_deref(), Some(REPORT), "{}", ctx("a report was lost"));
        }
    }
    for (job, op) in &ledger.started {
        if let Some(info) = jobs.get(job) {
            if op == "close" && info.state == JobState::Completed {
                assert_eq!(info.report.as_deref(), Some(REPORT), "{}", ctx("a report was lost mid-close"));
            }
        }
    }
    let live: BTreeSet<Uuid> = jobs.values().filter(|j| j.shredded_at.is_none()).map(|j| j.job_id).collect();
    for job in &ledger.held {
        let info = jobs.get(job).unwrap_or_else(|| panic!("{}", ctx("a received job was lost")));
        if !ledger.started.contains_key(job) && !ledger.withdrawn.contains(job) {
            assert!(info.shredded_at.is_none(), "{}", ctx("a live job was shredded without a close"));
        }
    }
    for job in &live {
        let r = vault
            .reveal(*job)
            .unwrap_or_else(|e| panic!("{}", ctx(&format!("a live job is unreadable ({})", error_class(&e)))));
        let shown = r.fields.iter().filter(|f| matches!(f.access, FieldAccess::Visible { .. })).count();
        assert!(shown > 0, "{}", ctx("a live job shows no field"));
    }
    assert!(vault.verify_audit().expect("audit").valid, "{}", ctx("the audit chain is broken"));
    let keys = files_under(&dir.join(jobseal::KEYSTORE_DIR)).len();
    assert_eq!(keys, 1, "{}", ctx("a stale or orphan key file remains"));
    ledger.held.extend(live.iter().copied());
    live
}

#[test]
fn random_kills_during_ingest_transitions_close_rotation_and_sync_lose_nothing() {
    let kills: usize = std::env::var("JOBSEAL_CRASH_KILLS").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_KILLS);
    let seed: u64 = std::env::var("JOBSEAL_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("crash-scale: {kills} kills, seed {seed}");
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let op = dispatch.operator();
    let dir = tmp.path().join("device");
    let device_id = {
        let v = device(&dir).unwrap();
        dispatch.enrol(&v, 20).device_id
    };
    let mut rng = Rng::new(seed);
    let mut ledger = Ledger::default();
    let mut created: Vec<Uuid> = Vec::new();
    let mut live = BTreeSet::new();
    let mut seen_facts = 0;
    let mut interrupted: BTreeMap<String, usize> = BTreeMap::new();
    for kill in 0..kills {
        // Keep work flowing: new sheets at dispatch, now and then a cancel from dispatch.
        if live.len() < 3 {
            for _ in 0..2 {
                let job = Uuid::new_v4();
                op.create_job(device_id, &sheet_value(job, 1));
                created.push(job);
            }
        }
        if rng.below(5) == 0 {
            let candidates: Vec<Uuid> = live
                .iter()
                .copied()
                .filter(|j| !ledger.started.contains_key(j) && !ledger.withdrawn.contains(j))
                .collect();
            if !candidates.is_empty() {
                let j = candidates[rng.below(candidates.len())];
                assert_eq!(op.cancel(j).0, 200, "dispatch refused to cancel a job");
                ledger.withdrawn.insert(j);
            }
        }
        let log = tmp.path().join("child.log");
        let mut child = rerun_test(module_path!(), "crash_scale_child")
            .env("JOBSEAL_SCALE_DIR", &dir)
            .env("JOBSEAL_SCALE_BASE", op.base_url())
            .env("JOBSEAL_SCALE_SEED", rng.next_u64().to_string())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn child");
        std::thread::sleep(Duration::from_millis(rng.below(400) as u64));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::process::ExitStatusExt;
            if status.signal() != Some(9) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                let why: Vec<&str> = text.lines().filter(|l| l.contains("panicked") || l.contains("failed:")).collect();
                panic!("kill {kill}: the child exited by itself ({status:?}): {why:?}");
            }
        }
        let facts = read_journal(&dir.with_extension("journal"));
        // Where the kill landed: an operation that started and never returned, or between them.
        let landed = match facts[seen_facts..].last() {
            Some(f) if f.phase == "start" => f.op.clone(),
            Some(_) => "between operations".to_owned(),
            None => "before the first operation".to_owned(),
        };
        *interrupted.entry(landed).or_default() += 1;
        seen_facts = facts.len();
        ledger.learn(&facts);
        live = check_after_kill(&dir, &mut ledger, kill);
    }
    let kill_phase = started.elapsed();

    // The last word: sync until the outbox is empty, then compare with dispatch.
    let vault = device(&dir).unwrap();
    let net = dispatch.transport();
    let mut pending = u64::MAX;
    for _ in 0..8 {
        pending = vault.sync(&net).expect("final sync").pending;
        if pending == 0 {
            break;
        }
    }
    assert_eq!(pending, 0, "the outbox did not drain");
    let held: Vec<Uuid> = vault.list_jobs().unwrap().into_iter().map(|j| j.job_id).collect();
    for job in &created {
        // A job dispatch cancelled before the device ever held it leaves a tombstone; one that was
        // never synced (still pending at dispatch) is simply not on the device.
        if !held.contains(job) {
            assert!(!ledger.held.contains(job), "a held job disappeared");
        }
    }
    let delivered = check_exactly_once(&vault, &op, device_id, &held).unwrap_or_else(|e| panic!("exactly-once: {e}"));
    for (job, opname) in &ledger.finished {
        if opname == "close" {
            let v = op.job(*job);
            assert_eq!(
                v.report.as_ref().map(|r| r.text.as_str()),
                Some(REPORT),
                "a confirmed report is not at dispatch"
            );
        }
    }
    eprintln!(
        "crash-scale: {kills} SIGKILLs in {:.1} s (+{:.1} s final check); kills landed in {interrupted:?}; \
         journal ops {:?}; jobs created {}, on device {}, \
         closes confirmed {}; dispatch holds exactly once: {} audit events, {} state changes, {} reports, {} receipts",
        kill_phase.as_secs_f64(),
        (started.elapsed() - kill_phase).as_secs_f64(),
        ledger.ops,
        created.len(),
        held.len(),
        ledger.finished.values().filter(|o| *o == "close").count(),
        delivered.audit_events,
        delivered.state_changes,
        delivered.reports,
        delivered.receipts,
    );
}

//! Concurrency stress (G2, G3, G6, G7): several threads reveal, transition, close, cancel and sync
//! at once on one vault, while dispatch (a real server on loopback) keeps assigning new jobs.
//! Bounded by iterations and time. Every thread must finish (a join with a timeout catches a
//! deadlock), every error must be one the race explains (a job closed under another thread's
//! feet), the audit chain must hold, closed jobs must be unreadable, and after a final sync
//! dispatch must hold every event exactly once.

use jobseal::{Error, HttpTransport, JobState, Vault};
use jobseal_e2e::stress::{check_exactly_once, error_class, Rng};
use jobseal_testkit::device::open_vault_at;
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::sheet_value;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use uuid::Uuid;

const REPORT: &str = "Stress report: all done.";
/// Operations per worker thread.
const OPS_PER_THREAD: usize = 150;
/// No thread may take longer than this (a deadlock would).
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);

fn live_jobs(vault: &Vault) -> Vec<(Uuid, JobState)> {
    vault
        .list_jobs()
        .expect("list")
        .into_iter()
        .filter(|j| j.shredded_at.is_none())
        .map(|j| (j.job_id, j.state))
        .collect()
}

#[test]
fn threads_revealing_transitioning_closing_and_syncing_on_one_vault() {
    let started = Instant::now();
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let op = dispatch.operator();
    let vault = Arc::new(open_vault_at(&tmp.path().join("device"), 200).unwrap());
    let device_id = dispatch.enrol(&vault, 30).device_id;
    let mut created = Vec::new();
    for _ in 0..8 {
        let job = Uuid::new_v4();
        op.create_job(device_id, &sheet_value(job, 1));
        created.push(job);
    }
    vault.sync(&dispatch.transport()).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let counts: Arc<[AtomicU64; 6]> = Arc::new(Default::default()); // reveal, advance, close, cancel, sync, assign
    let (done_tx, done_rx) = mpsc::channel::<(&'static str, Result<(), String>)>();
    let mut handles = Vec::new();
    let workers: [(&'static str, u64); 6] =
        [("revealer-1", 1), ("revealer-2", 2), ("transitioner", 3), ("closer", 4), ("syncer", 5), ("dispatcher", 6)];
    for (name, seed) in workers {
        let (vault, op, stop, counts, done_tx) =
            (vault.clone(), op.clone(), stop.clone(), counts.clone(), done_tx.clone());
        handles.push(std::thread::spawn(move || {
            let mut rng = Rng::new(seed);
            let net = HttpTransport::new(op.base_url());
            let mut created_here = Vec::new();
            let result = (|| -> Result<(), String> {
                for _ in 0..OPS_PER_THREAD {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let live = live_jobs(&vault);
                    let pick = (!live.is_empty()).then(|| live[rng.below(live.len())]);
                    match (name, pick) {
                        ("revealer-1" | "revealer-2", Some((job, _))) => match vault.reveal(job) {
                            Ok(_) | Err(Error::AccessDenied(_)) => {
                                counts[0].fetch_add(1, Ordering::Relaxed);
                            }
                            Err(e) => return Err(format!("reveal: {}", error_class(&e))),
                        },
                        ("transitioner", Some((job, state))) => {
                            let to = if state == JobState::Assigned { JobState::EnRoute } else { JobState::OnSite };
                            match vault.advance(job, to) {
                                Ok(_) | Err(Error::IllegalTransition { .. } | Error::JobClosed { .. }) => {
                                    counts[1].fetch_add(1, Ordering::Relaxed);
                                }
                                Err(e) => return Err(format!("advance: {}", error_class(&e))),
                            }
                        }
                        ("closer", Some((job, _))) => {
                            let r = if rng.below(4) == 0 {
                                vault.cancel(job).map(|_| 3)
                            } else {
                                vault.close(job, REPORT).map(|_| 2)
                            };
                            match r {
                                Ok(i) => {
                                    counts[i].fetch_add(1, Ordering::Relaxed);
                                }
                                Err(Error::IllegalTransition { .. } | Error::JobClosed { .. }) => {}
                                Err(e) => return Err(format!("close: {}", error_class(&e))),
                            }
                            std::thread::sleep(Duration::from_millis(15));
                        }
                        ("syncer", _) => {
                            vault.sync(&net).map_err(|e| format!("sync: {}", error_class(&e)))?;
                            counts[4].fetch_add(1, Ordering::Relaxed);
                        }
                        ("dispatcher", _) => {
                            if live.len() < 6 {
                                let job = Uuid::new_v4();
                                op.create_job(device_id, &sheet_value(job, 1));
                                created_here.push(job);
                                counts[5].fetch_add(1, Ordering::Relaxed);
                            }
                            std::thread::sleep(Duration::from_millis(10));
                        }
                        _ => std::thread::sleep(Duration::from_millis(2)),
                    }
                }
                Ok(())
            })();
            let _ = done_tx.send((name, result));
            created_here
        }));
    }
    drop(done_tx);
    let mut failures = Vec::new();
    for _ in 0..workers.len() {
        match done_rx.recv_timeout(JOIN_TIMEOUT) {
            Ok((name, Err(e))) => {
                stop.store(true, Ordering::SeqCst);
                failures.push(format!("{name}: {e}"));
            }
            Ok(_) => {}
            Err(_) => panic!("a worker did not finish within {JOIN_TIMEOUT:?}: deadlock suspected"),
        }
    }
    for h in handles {
        created.extend(h.join().expect("a worker panicked"));
    }
    assert!(failures.is_empty(), "unexpected errors under concurrency: {failures:?}");
    let work_phase = started.elapsed();

    assert!(vault.verify_audit().unwrap().valid, "the audit chain broke under concurrency");
    for info in vault.list_jobs().unwrap() {
        if info.shredded_at.is_some() {
            assert!(matches!(vault.reveal(info.job_id), Err(Error::AccessDenied(_))), "a closed job is readable");
            assert!(info.fields.is_empty());
        }
    }
    let net = dispatch.transport();
    let mut pending = u64::MAX;
    for _ in 0..8 {
        pending = vault.sync(&net).unwrap().pending;
        if pending == 0 {
            break;
        }
    }
    assert_eq!(pending, 0, "the outbox did not drain");
    let held: Vec<Uuid> = vault.list_jobs().unwrap().into_iter().map(|j| j.job_id).collect();
    let delivered = check_exactly_once(&vault, &op, device_id, &held).unwrap_or_else(|e| panic!("exactly-once: {e}"));
    let c: Vec<u64> = counts.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    eprintln!(
        "concurrency: 6 threads in {:.1} s: {} reveals, {} transitions tried, {} closes, {} cancels, {} syncs, {} jobs \
         assigned meanwhile; {} jobs on the device; dispatch holds exactly once: {} audit events, {} state changes, \
         {} reports, {} receipts",
        work_phase.as_secs_f64(),
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        held.len(),
        delivered.audit_events,
        delivered.state_changes,
        delivered.reports,
        delivered.receipts
    );
}

//! Crash safety (G3, G6): a child process is killed (abort, no destructors, no flushing) at each
//! named point of ingest and close, and the vault it leaves behind is reopened and checked. At
//! every point the job must be either fully live or fully shredded, the completion report must
//! survive once the close began, no other job may be lost, and no stale key may remain.

use jobseal::{FieldAccess, JobState, Vault};
use jobseal_testkit::child::rerun_test;
use jobseal_testkit::device::open_vault_at;
use jobseal_testkit::files::{canary, files_containing, files_under};
use jobseal_testkit::sheet::{sheet, Sheet};
use std::path::Path;
use uuid::Uuid;

const REPORT: &str = "Crash test report: ONT replaced.";

/// Runs inside the child process: opens the vault and performs the operation the parent named.
/// Ignored so that it runs only when the parent asks for it by name.
#[test]
#[ignore = "runs only as the child of a crash test"]
fn crash_child() {
    let dir = std::env::var("JOBSEAL_CRASH_DIR").expect("child needs a vault dir");
    let op = std::env::var("JOBSEAL_CRASH_OP").expect("child needs an operation");
    let job: Uuid = std::env::var("JOBSEAL_CRASH_JOB").unwrap().parse().unwrap();
    let vault = open_vault_at(Path::new(&dir), 200).unwrap();
    match op.as_str() {
        "ingest" => {
            vault.ingest(&sheet(job, 1)).unwrap();
        }
        "close" => {
            vault.close(job, REPORT).unwrap();
        }
        other => panic!("unknown op {other}"),
    }
}

fn run_child(dir: &Path, op: &str, job: Uuid, point: &str) {
    let status = rerun_test(module_path!(), "crash_child")
        .env("JOBSEAL_CRASH_DIR", dir)
        .env("JOBSEAL_CRASH_OP", op)
        .env("JOBSEAL_CRASH_JOB", job.to_string())
        .env("JOBSEAL_CRASH_POINT", point)
        .output()
        .expect("spawn child");
    assert!(!status.status.success(), "the child was meant to die at {point} but finished: {:?}", status.status);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.status.signal(), Some(6), "child did not abort at {point}: {:?}", status.status);
    }
}

fn live_and_readable(vault: &Vault, job: Uuid) -> bool {
    let r = vault.reveal(job).unwrap();
    r.fields.iter().all(|f| matches!(f.access, FieldAccess::Visible { .. }))
}

fn key_files(dir: &Path) -> usize {
    files_under(&dir.join("keystore")).len()
}

#[test]
fn a_crash_during_ingest_leaves_all_or_nothing() {
    for (point, stored) in [("ingest:before-commit", false), ("ingest:after-commit", true)] {
        let dir = tempfile::tempdir().unwrap();
        let other = Uuid::new_v4();
        {
            let v = open_vault_at(dir.path(), 200).unwrap();
            v.ingest(&sheet(other, 1)).unwrap();
        }
        let job = Uuid::new_v4();
        run_child(dir.path(), "ingest", job, point);
        let vault = open_vault_at(dir.path(), 200).unwrap();
        match vault.job(job) {
            Ok(info) => {
                assert!(stored, "{point}: the job was stored though the crash came before commit");
                assert_eq!(info.fields.len(), 5, "{point}: partial ingest");
                vault.advance(job, JobState::OnSite).unwrap();
                assert!(live_and_readable(&vault, job), "{point}");
            }
            Err(jobseal::Error::JobNotFound(_)) => assert!(!stored, "{point}: the committed job was lost"),
            Err(e) => panic!("{point}: {e}"),
        }
        vault.advance(other, JobState::OnSite).unwrap();
        assert!(live_and_readable(&vault, other), "{point}: another job was lost");
        assert!(vault.verify_audit().unwrap().valid, "{point}");
        assert_eq!(key_files(dir.path()), 1, "{point}");
    }
}

#[test]
fn a_crash_anywhere_in_a_close_ends_fully_shredded_with_the_report() {
    let points = [
        "close:report-saved",
        "shred:before-kek",
        "shred:kek-generated",
        "shred:before-commit",
        "shred:after-commit",
        "shred:kek-deleted",
    ];
    for point in points {
        let dir = tempfile::tempdir().unwrap();
        let (job, other) = (Uuid::new_v4(), Uuid::new_v4());
        let canary = canary("door");
        {
            let v = open_vault_at(dir.path(), 200).unwrap();
            v.ingest(&Sheet::new(job).value("door_code", &canary).build()).unwrap();
            v.ingest(&sheet(other, 1)).unwrap();
            for j in [job, other] {
                v.advance(j, JobState::OnSite).unwrap();
            }
        }
        run_child(dir.path(), "close", job, point);

        let vault = open_vault_at(dir.path(), 200).unwrap();
        let info = vault.job(job).unwrap();
        assert_eq!(info.state, JobState::Completed, "{point}: not shredded after reopen");
        assert_eq!(info.report.as_deref(), Some(REPORT), "{point}: the report was lost");
        assert!(info.fields.is_empty(), "{point}");
        assert!(
            matches!(vault.reveal(job), Err(jobseal::Error::AccessDenied(jobseal::Denial::Shredded { .. }))),
            "{point}: a closed job is readable"
        );
        assert!(live_and_readable(&vault, other), "{point}: the other job was lost");
        assert_eq!(key_files(dir.path()), 1, "{point}: a stale or orphan KEK remains");
        assert_eq!(vault.epoch(), 2, "{point}: exactly one rotation");
        let shreds =
            vault.audit_log(Some(job)).unwrap().into_iter().filter(|e| e.kind == jobseal::AuditKind::Shredded).count();
        assert_eq!(shreds, 1, "{point}: the shred was recorded {shreds} times");
        assert!(vault.verify_audit().unwrap().valid, "{point}");
        drop(vault);
        assert!(files_containing(dir.path(), canary.as_bytes()).is_empty(), "{point}: value on disk");
        let wal = dir.path().join("vault.db-wal");
        assert!(!wal.exists() || std::fs::metadata(&wal).unwrap().len() == 0, "{point}: WAL not truncated");
    }
}

//! The device's real sync engine (`Vault::sync` over the core's `HttpTransport`) against the
//! server: the two halves of the protocol written separately, checked together.

use chrono::{DateTime, Duration, Utc};
use jobseal::{JobState, ManualClock, Vault};
use jobseal_dispatch::{DeliveryStatus, JobStatus, RevocationStatus, WipeResponse};
use jobseal_testkit::device::open_vault;
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::Sheet;
use jobseal_testkit::{ok, Operator};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

/// Assigns `job` to `device`: a phone and a door code, the slot 10 to 70 minutes after `start`.
fn create(op: &Operator, device: Uuid, job: Uuid, start: DateTime<Utc>) {
    let at = |m: i64| start + Duration::minutes(m);
    let sheet = Sheet::new(job)
        .work_order("WO-ENGINE-1")
        .window(at(10), at(70))
        .access(30, 60)
        .expiry(at(300))
        .work("Install fibre terminal", &[], &[])
        .only(&["phone", "door_code"]);
    op.create_job(device, &sheet.json());
}

/// An operator call that must succeed; its JSON answer.
fn call(op: &Operator, method: &str, path: &str, body: Option<Value>) -> Value {
    ok(op.call(method, path, body))
}

fn open_vault_at(dir: &std::path::Path, now: DateTime<Utc>) -> Vault {
    open_vault(dir, Arc::new(ManualClock::new(now))).unwrap()
}

#[test]
fn a_technicians_day_through_the_real_sync_engine() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestDispatch::start();
    let op = server.operator();
    let net = server.transport();
    let now = Utc::now();

    // Enrolment with trust on first use: the device pins what GET /v1/dispatch-key announces.
    let vault = open_vault_at(&dir.path().join("a"), now);
    let a = vault.enrol_with_dispatch(&net, None, 3, Some(&op.issue_code().code)).unwrap();
    assert_eq!(vault.dispatch_key().unwrap(), server.key());
    let other = open_vault_at(&dir.path().join("b"), now);
    let b = server.enrol(&other, 3);

    let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for job in &jobs {
        create(&op, a.device_id, *job, now);
    }
    let report = vault.sync(&net).unwrap();
    assert_eq!(report.received.len(), 4);
    assert!(report.prekeys_uploaded > 0, "dispatch ran out of prekeys and asked for more");
    assert!(op.device(a.device_id).prekeys_available >= jobseal_dispatch::PREKEY_LOW_WATER);
    for job in &jobs {
        assert_eq!(op.job(*job).delivery.unwrap().status, DeliveryStatus::Received);
    }
    // Three prekeys, four jobs: the fourth waited for the top-up dispatch asked for, and went to
    // one of the new prekeys within the same sync, never to the identity key (issue 12).
    assert!(matches!(vault.job(jobs[3]).unwrap().delivered_via, Some(jobseal::RecipientKeyId::Prekey(id)) if id > 3));
    assert_eq!(op.device(a.device_id).sealed_to_identity, 0);

    // Job 0: worked and closed with a report.
    vault.advance(jobs[0], JobState::EnRoute).unwrap();
    vault.reveal(jobs[0]).unwrap();
    vault.close(jobs[0], "Terminal installed.").unwrap();
    // Job 1: cancelled by the operator. Job 2: reassigned to the other device.
    call(&op, "POST", &format!("/v1/operator/jobs/{}/cancel", jobs[1]), None);
    call(&op, "POST", &format!("/v1/operator/jobs/{}/reassign", jobs[2]), Some(json!({"device_id": b.device_id})));
    let report = vault.sync(&net).unwrap();
    let mut revoked: Vec<Uuid> = report.revoked.iter().map(|o| o.job_id).collect();
    revoked.sort();
    let mut expected = vec![jobs[1], jobs[2]];
    expected.sort();
    assert_eq!(revoked, expected);
    assert_eq!(vault.sync_status().unwrap().pending_events, 0, "dispatch acknowledged everything");
    assert_eq!(other.sync(&net).unwrap().received, vec![jobs[2]]);

    let done = op.job(jobs[0]);
    assert_eq!((done.status, done.state), (JobStatus::Closed, Some(JobState::Completed)));
    assert_eq!(done.report.unwrap().text, "Terminal installed.");
    assert!(done.receipt.unwrap().verified);
    assert_eq!(done.history.len(), 2);
    assert!(done.audit_events.iter().any(|e| e.reveal.as_ref().is_some_and(|r| r.shown.iter().any(|f| f == "phone"))));
    for (job, status) in [(jobs[1], JobStatus::Cancelled), (jobs[2], JobStatus::Open)] {
        let view = op.job(job);
        assert_eq!(view.status, status);
        assert_eq!(view.revocation.unwrap().status, RevocationStatus::Confirmed, "verified receipt ended it");
    }

    // Wiping the other device shreds its job there.
    let wiped: WipeResponse =
        serde_json::from_value(call(&op, "POST", &format!("/v1/operator/devices/{}/wipe", b.device_id), None)).unwrap();
    assert_eq!(wiped.revoked_jobs, vec![jobs[2]]);
    assert_eq!(other.sync(&net).unwrap().revoked.len(), 1);
    assert!(op.device(b.device_id).jobs[0].shred_confirmed);

    // The audit chain arrived unbroken. Dispatch verifies it from seq 1, so it is verified end to
    // end once the device also sends the events it recorded before enrolment (vault creation).
    let chain = op.device(a.device_id).audit_chain;
    assert!(chain.intact, "{chain:?}");
    let held = vault.audit_log(None).unwrap().len() as u64;
    if chain.events_received == held {
        assert_eq!((chain.verified_up_to, chain.pending), (held, 0));
    } else {
        assert_eq!(chain.events_received, held - 1, "only the pre-enrolment vault-created event is missing");
    }
    drop(server);
}

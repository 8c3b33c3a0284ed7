//! The device's real sync engine (`Vault::sync` over the core's `HttpTransport`) against the
//! server: the two halves of the protocol written separately, checked together.

use chrono::{DateTime, Duration, Utc};
use jobseal::sync::http::HttpTransport;
use jobseal::{FileKeyStore, JobState, ManualClock, Vault};
use jobseal_dispatch::{
    DeliveryStatus, DeviceView, JobStatus, JobView, RevocationStatus, RunningServer, ServerConfig, WipeResponse,
};
use serde_json::{json, Value};
use std::sync::Arc;
use uuid::Uuid;

const OPERATOR: &str = "engine-test-operator-token";

struct Operator {
    base: String,
    agent: ureq::Agent,
}

impl Operator {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {OPERATOR}");
        let mut resp = match method {
            "GET" => self.agent.get(&url).header("Authorization", &auth).call(),
            _ => self.agent.post(&url).header("Authorization", &auth).send(body.unwrap_or(json!({})).to_string()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap();
        assert_eq!(status, 200, "{method} {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    fn create(&self, device: Uuid, job: Uuid, start: DateTime<Utc>) {
        let at = |m: i64| (start + Duration::minutes(m)).to_rfc3339();
        let sheet = json!({
            "format": "jobseal.sheet.v1", "job_id": job, "version": 1, "work_order": "WO-ENGINE-1",
            "window": {"start": at(10), "end": at(70)},
            "access": {"open_before_minutes": 30, "close_after_minutes": 60, "hard_expiry": at(300)},
            "work": {"summary": "Install fibre terminal", "tasks": [], "equipment": []},
            "site_area": "Lyon 3e",
            "customer": [
                {"name": "phone", "kind": "relay-phone", "value": "+33 1 00 00 00 09", "reveal_in": ["en-route", "on-site"]},
                {"name": "door_code", "kind": "door-code", "value": "0000B-FAKE", "reveal_in": ["on-site"]}
            ]
        });
        self.call("POST", "/v1/operator/jobs", Some(json!({"device_id": device, "sheet": sheet})));
    }

    fn job(&self, job: Uuid) -> JobView {
        serde_json::from_value(self.call("GET", &format!("/v1/operator/jobs/{job}"), None)).unwrap()
    }

    fn device(&self, device: Uuid) -> DeviceView {
        serde_json::from_value(self.call("GET", &format!("/v1/operator/devices/{device}"), None)).unwrap()
    }
}

fn open_vault(dir: &std::path::Path, now: DateTime<Utc>) -> Vault {
    let ks = FileKeyStore::open(dir.join(jobseal::KEYSTORE_DIR)).unwrap();
    Vault::open(dir, Arc::new(ks), Arc::new(ManualClock::new(now))).unwrap()
}

#[test]
fn a_technicians_day_through_the_real_sync_engine() {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(ServerConfig {
        db_path: dir.path().join("dispatch.db"),
        addr: "127.0.0.1:0".parse().unwrap(),
        operator_token: OPERATOR.into(),
    })
    .unwrap();
    let op = Operator {
        base: server.base_url(),
        agent: ureq::Agent::config_builder().http_status_as_error(false).build().into(),
    };
    let net = HttpTransport::new(&server.base_url());
    let now = Utc::now();

    // Enrolment with trust on first use: the device pins what GET /v1/dispatch-key announces.
    let vault = open_vault(&dir.path().join("a"), now);
    let a = vault.enrol_with_dispatch(&net, None, 3).unwrap();
    assert_eq!(vault.dispatch_key().unwrap(), server.dispatch_key());
    let other = open_vault(&dir.path().join("b"), now);
    let b = other.enrol_with_dispatch(&net, Some(server.dispatch_key()), 3).unwrap();

    let jobs: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for job in &jobs {
        op.create(a.device_id, *job, now);
    }
    let report = vault.sync(&net).unwrap();
    assert_eq!(report.received.len(), 4);
    assert!(report.prekeys_uploaded > 0, "dispatch ran out of prekeys and asked for more");
    assert!(op.device(a.device_id).prekeys_available >= jobseal_dispatch::PREKEY_LOW_WATER);
    for job in &jobs {
        assert_eq!(op.job(*job).delivery.unwrap().status, DeliveryStatus::Received);
    }
    // Three prekeys, four jobs: the fourth was sealed to the identity key, and still opened.
    assert_eq!(vault.job(jobs[3]).unwrap().delivered_via, Some(jobseal::RecipientKeyId::Identity));

    // Job 0: worked and closed with a report.
    vault.advance(jobs[0], JobState::EnRoute).unwrap();
    vault.reveal(jobs[0]).unwrap();
    vault.close(jobs[0], "Terminal installed.").unwrap();
    // Job 1: cancelled by the operator. Job 2: reassigned to the other device.
    op.call("POST", &format!("/v1/operator/jobs/{}/cancel", jobs[1]), None);
    op.call("POST", &format!("/v1/operator/jobs/{}/reassign", jobs[2]), Some(json!({"device_id": b.device_id})));
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
    assert!(done.audit_events.iter().any(|e| e.field.as_deref() == Some("phone")));
    for (job, status) in [(jobs[1], JobStatus::Cancelled), (jobs[2], JobStatus::Open)] {
        let view = op.job(job);
        assert_eq!(view.status, status);
        assert_eq!(view.revocation.unwrap().status, RevocationStatus::Confirmed, "verified receipt ended it");
    }

    // Wiping the other device shreds its job there.
    let wiped: WipeResponse =
        serde_json::from_value(op.call("POST", &format!("/v1/operator/devices/{}/wipe", b.device_id), None)).unwrap();
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
    server.shutdown();
}

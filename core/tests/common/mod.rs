//! Fixtures shared by the core's integration tests: fake sheets and a vault on a manual clock.
#![allow(dead_code)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use jobseal::{FileKeyStore, JobSheet, ManualClock, Vault};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::Arc;
use uuid::Uuid;

/// The reference instant of every fixture: the scheduled slot starts two hours later.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2030, 3, 4, 6, 0, 0).unwrap()
}

pub fn at(minutes: i64) -> DateTime<Utc> {
    t0() + Duration::minutes(minutes)
}

/// Slot 08:00-10:00, access 07:30-11:00, hard expiry 14:00 (minutes from t0: 90, 300, 480).
pub const OPENS: i64 = 90;
pub const CLOSES: i64 = 300;
pub const EXPIRY: i64 = 480;

/// Obviously fake customer values, each unique enough to scan for.
pub const NAME: &str = "Test Customer Zqxj";
pub const PHONE: &str = "+33 1 00 00 00 01";
pub const ADDRESS: &str = "1 rue de l'Exemple, 69003 Lyon";
pub const DOOR: &str = "0000A-FAKE";
pub const NOTE: &str = "Fake note: dog in the garden";

/// The fields of the fixture and the states each may be revealed in.
pub fn policies() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("customer_name", vec!["en-route", "on-site"]),
        ("phone", vec!["en-route", "on-site"]),
        ("address", vec!["en-route", "on-site"]),
        ("door_code", vec!["on-site"]),
        ("note", vec!["assigned", "en-route", "on-site"]),
    ]
}

pub fn sheet_value(job_id: Uuid, version: u64) -> Value {
    sheet_value_with(job_id, version, [NAME, PHONE, ADDRESS, DOOR, NOTE])
}

pub fn sheet_value_with(job_id: Uuid, version: u64, values: [&str; 5]) -> Value {
    let kinds = ["name", "relay-phone", "address", "door-code", "note"];
    let customer: Vec<Value> = policies()
        .into_iter()
        .zip(kinds)
        .zip(values)
        .map(|(((name, states), kind), value)| json!({"name": name, "kind": kind, "value": value, "reveal_in": states}))
        .collect();
    json!({
        "format": "jobseal.sheet.v1",
        "job_id": job_id,
        "version": version,
        "work_order": "WO-TEST-0001",
        "window": {"start": at(120).to_rfc3339(), "end": at(240).to_rfc3339()},
        "access": {"open_before_minutes": 30, "close_after_minutes": 60, "hard_expiry": at(EXPIRY).to_rfc3339()},
        "work": {"summary": "Install fibre terminal", "tasks": ["Splice drop cable"], "equipment": ["ONT"]},
        "site_area": "Lyon 3e",
        "customer": customer,
    })
}

pub fn sheet(job_id: Uuid, version: u64) -> JobSheet {
    parse(&sheet_value(job_id, version))
}

pub fn parse(v: &Value) -> JobSheet {
    JobSheet::from_json(v.to_string().as_bytes()).expect("fixture sheet is valid")
}

pub struct TestVault {
    pub vault: Vault,
    pub clock: Arc<ManualClock>,
    pub dir: tempfile::TempDir,
}

pub fn open_at(dir: &Path, clock: Arc<ManualClock>) -> jobseal::Result<Vault> {
    let ks = FileKeyStore::open(dir.join(jobseal::KEYSTORE_DIR))?;
    Vault::open(dir, Arc::new(ks), clock)
}

pub fn vault_at(minutes: i64) -> TestVault {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(at(minutes)));
    let vault = open_at(dir.path(), clock.clone()).unwrap();
    TestVault { vault, clock, dir }
}

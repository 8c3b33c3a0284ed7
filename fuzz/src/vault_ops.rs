//! A structured target: sequences of vault operations, with the vault's invariants checked after
//! every step (G1, G2, G3, G7, G8).
//!
//! Byte-level targets feed one input to one parser; the defects that matter most in a vault show
//! up in sequences: a reveal after a close, a clock moved back across an access window, a sync
//! answer that revokes a job mid-visit, a sheet re-delivered after its shred. Here the input is a
//! list of operations read with `arbitrary` (ingest, receive, advance, reveal, close, cancel,
//! revoke, sweep, prekeys, clock moves, authenticated sync answers), run against one device vault
//! on a manual clock. After each step: no panic; an error is of an input class and quotes no
//! customer value; the audit chain verifies; and no job that was shredded (closed, cancelled,
//! revoked, expired) ever shows a customer value again.

use crate::targets::{check_error, example_job, fixture_now, EXAMPLE_SHEET};
use arbitrary::{Arbitrary, Unstructured};
use chrono::Duration;
use jobseal::answer::{AnswerKey, AnsweredCall};
use jobseal::envelope::{self, SecretKey};
use jobseal::sync::SyncReport;
use jobseal::{
    DeviceBundle, FieldAccess, FileKeyStore, HttpResponse, JobSheet, JobState, ManualClock, PendingCall, Vault,
};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use uuid::Uuid;

/// Operations run per input, at most.
const MAX_OPS: usize = 24;

/// One fuzz input: the operations, in order.
#[derive(Arbitrary, Debug)]
pub struct OpsInput {
    ops: Vec<Op>,
}

/// One vault operation. Jobs are picked among four ids.
#[derive(Arbitrary, Debug)]
enum Op {
    /// Ingest the example sheet as this job and version, with its window moved.
    Ingest {
        job: u8,
        version: u8,
        window: Window,
    },
    /// Receive it sealed by dispatch (to a prekey of the bundle, or to the identity key).
    Receive {
        job: u8,
        version: u8,
        window: Window,
        prekey: Option<u8>,
    },
    Advance {
        job: u8,
        to: u8,
    },
    Reveal {
        job: u8,
    },
    Close {
        job: u8,
        report: String,
    },
    Cancel {
        job: u8,
    },
    Revoke {
        job: u8,
    },
    Sweep,
    /// Let time pass (both clocks), or, with `wall_only`, change the phone's wall clock only
    /// (forward or back), as a technician can.
    Clock {
        minutes: i32,
        wall_only: bool,
    },
    /// Restart the device's monotonic clock (a reboot).
    Reboot {
        secs: u32,
    },
    /// An authenticated sync answer: server time, revocations, a prekey floor.
    SyncAnswer {
        server_minutes: i32,
        revoke: Vec<u8>,
        floor: Option<u32>,
        deliver: Option<(u8, u8)>,
    },
    AddPrekeys {
        count: u8,
    },
}

/// The example sheet's window, moved and resized.
#[derive(Arbitrary, Debug)]
struct Window {
    start_minutes: i16,
    length_minutes: u16,
    open_before: u16,
    close_after: u16,
    expiry_minutes: u16,
}

fn job_id(i: u8) -> Uuid {
    match i % 4 {
        0 => example_job(),
        n => Uuid::from_u128(0x10b0_0000_0000_4000_8000_0000_0000_0040 + u128::from(n)),
    }
}

fn sheet_json(job: u8, version: u8, w: &Window) -> Vec<u8> {
    let mut v: Value = serde_json::from_str(EXAMPLE_SHEET).expect("example sheet");
    let start = fixture_now() + Duration::minutes(i64::from(w.start_minutes));
    let end = start + Duration::minutes(i64::from(w.length_minutes));
    let expiry = end + Duration::minutes(i64::from(w.expiry_minutes));
    v["job_id"] = json!(job_id(job));
    v["version"] = json!(u64::from(version));
    v["window"] = json!({"start": start.to_rfc3339(), "end": end.to_rfc3339()});
    v["access"] = json!({
        "open_before_minutes": w.open_before % 1500,
        "close_after_minutes": w.close_after % 1500,
        "hard_expiry": expiry.to_rfc3339(),
    });
    v.to_string().into_bytes()
}

struct Device {
    vault: Vault,
    clock: Arc<ManualClock>,
    wall: chrono::DateTime<chrono::Utc>,
    dispatch_sk: SecretKey,
    bundle: DeviceBundle,
    /// Jobs whose data was shredded: none of them may show a value again.
    shredded: HashSet<Uuid>,
    _dir: tempfile::TempDir,
}

impl Device {
    fn new() -> Device {
        let dir = crate::targets::scratch_dir();
        let ks = FileKeyStore::open(dir.path().join(jobseal::KEYSTORE_DIR)).expect("keystore");
        let clock = Arc::new(ManualClock::with_boot(fixture_now(), std::time::Duration::from_secs(3600)));
        let vault = Vault::open(dir.path(), Arc::new(ks), clock.clone()).expect("vault");
        let (dispatch_sk, dispatch_pk) = envelope::generate_keypair().expect("keypair");
        let bundle = vault.enrol(dispatch_pk, 4).expect("enrol");
        Device { vault, clock, wall: fixture_now(), dispatch_sk, bundle, shredded: HashSet::new(), _dir: dir }
    }

    fn shred(&mut self, r: &jobseal::Result<jobseal::ShredOutcome>) {
        if let Ok(o) = r {
            self.shredded.insert(o.job_id);
        }
    }

    fn step(&mut self, op: &Op) {
        let v = &self.vault;
        match op {
            Op::Ingest { job, version, window } => {
                let r = JobSheet::from_json(&sheet_json(*job, *version, window))
                    .map_err(jobseal::Error::from)
                    .and_then(|s| v.ingest(&s));
                check("ingest", &r);
            }
            Op::Receive { job, version, window, prekey } => {
                let prekey = prekey.and_then(|i| {
                    self.bundle.prekeys.get(usize::from(i) % self.bundle.prekeys.len().max(1)).map(|p| p.id)
                });
                let sheet = sheet_json(*job, *version, window);
                if let Ok(env) = jobseal::seal_job_sheet(&self.dispatch_sk, &self.bundle, prekey, &sheet) {
                    check("receive", &v.receive(&env));
                }
            }
            Op::Advance { job, to } => {
                let to = JobState::ALL[usize::from(*to) % JobState::ALL.len()];
                check("advance", &v.advance(job_id(*job), to));
            }
            Op::Reveal { job } => check("reveal", &v.reveal(job_id(*job))),
            Op::Close { job, report } => {
                let r = v.close(job_id(*job), report);
                check("close", &r);
                self.shred(&r);
            }
            Op::Cancel { job } => {
                let r = v.cancel(job_id(*job));
                check("cancel", &r);
                self.shred(&r);
            }
            Op::Revoke { job } => {
                let r = v.revoke(job_id(*job));
                check("revoke", &r);
                self.shred(&r);
            }
            Op::Sweep => {
                let r = v.sweep();
                check("sweep", &r);
                for o in r.into_iter().flatten() {
                    self.shredded.insert(o.job_id);
                }
            }
            Op::Clock { minutes, wall_only } => {
                let d = Duration::minutes(i64::from(*minutes));
                if *wall_only {
                    self.wall += d;
                    self.clock.set_wall(self.wall);
                } else if *minutes > 0 {
                    self.wall += d;
                    self.clock.advance(d);
                }
            }
            Op::Reboot { secs } => self.clock.reboot(std::time::Duration::from_secs(u64::from(*secs))),
            Op::SyncAnswer { server_minutes, revoke, floor, deliver } => {
                let envelopes: Vec<Value> = deliver
                    .iter()
                    .filter_map(|(job, version)| {
                        let w = Window {
                            start_minutes: 0,
                            length_minutes: 120,
                            open_before: 60,
                            close_after: 120,
                            expiry_minutes: 600,
                        };
                        let sheet = sheet_json(*job, *version, &w);
                        let env = jobseal::seal_job_sheet(&self.dispatch_sk, &self.bundle, None, &sheet).ok()?;
                        Some(
                            json!({"job_id": job_id(*job), "version": version, "envelope": jobseal::hex::encode(&env)}),
                        )
                    })
                    .collect();
                let answer = json!({
                    "server_time": (fixture_now() + Duration::minutes(i64::from(*server_minutes))).to_rfc3339(),
                    "acked": [],
                    "envelopes": envelopes,
                    "revocations": revoke.iter().take(4).map(|j| json!({"job_id": job_id(*j), "reason": "cancelled"})).collect::<Vec<_>>(),
                    "prekeys_available": 0,
                    "prekeys_wanted": 0,
                    "prekey_floor": floor,
                })
                .to_string();
                let pending = PendingCall::new(AnsweredCall::Sync, 0).expect("nonce");
                let key = AnswerKey::derive(&self.dispatch_sk, &self.bundle.identity_key, self.bundle.device_id)
                    .expect("answer key");
                let mac = key.mac(AnsweredCall::Sync, pending.nonce(), answer.as_bytes());
                let body = format!("{{\"answer\":{answer},\"mac\":\"{}\"}}", jobseal::hex::encode(&mac)).into_bytes();
                let mut report = SyncReport::default();
                let r = v.apply_sync_response(&pending, &HttpResponse { status: 200, body }, &mut report);
                check("sync-answer", &r);
                for o in &report.revoked {
                    self.shredded.insert(o.job_id);
                }
            }
            Op::AddPrekeys { count } => {
                let r = v.add_prekeys(u32::from(*count));
                check("prekeys", &r);
                if let Ok(b) = r {
                    self.bundle = b;
                }
            }
        }
    }

    fn invariants(&self, after: &Op) {
        let v = self.vault.verify_audit().expect("audit readable");
        assert!(v.valid, "the audit chain broke after {}", op_name(after));
        for job in &self.shredded {
            if let Ok(r) = self.vault.reveal(*job) {
                assert!(
                    r.fields.iter().all(|f| matches!(f.access, FieldAccess::Hidden(_))),
                    "a shredded job showed a customer value after {}",
                    op_name(after)
                );
            }
        }
    }
}

/// The operation's name only: never its contents (a report may hold anything).
fn op_name(op: &Op) -> &'static str {
    match op {
        Op::Ingest { .. } => "ingest",
        Op::Receive { .. } => "receive",
        Op::Advance { .. } => "advance",
        Op::Reveal { .. } => "reveal",
        Op::Close { .. } => "close",
        Op::Cancel { .. } => "cancel",
        Op::Revoke { .. } => "revoke",
        Op::Sweep => "sweep",
        Op::Clock { .. } => "clock",
        Op::Reboot { .. } => "reboot",
        Op::SyncAnswer { .. } => "sync-answer",
        Op::AddPrekeys { .. } => "add-prekeys",
    }
}

fn check<T>(stage: &str, r: &jobseal::Result<T>) {
    if let Err(e) = r {
        check_error(stage, e);
    }
}

/// Runs the operations of one input (an [`OpsInput`] read with `arbitrary`) on a fresh device
/// vault; panics when an invariant breaks.
pub fn fuzz_vault_ops(data: &[u8]) {
    let Ok(input) = OpsInput::arbitrary_take_rest(Unstructured::new(data)) else { return };
    if input.ops.is_empty() {
        return;
    }
    let mut device = Device::new();
    for op in input.ops.iter().take(MAX_OPS) {
        device.step(op);
        device.invariants(op);
    }
}

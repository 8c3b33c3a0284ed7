//! Device and dispatch over real HTTP on loopback (G5, G6, G7): offline work delivered exactly
//! once, dispatch restarted while an answer was on its way, a device killed mid-sync, cancel and
//! reassign while the device is offline, a device wipe, and the proof that nothing the device
//! sends carries a customer value.

use jobseal::{HttpRequest, HttpResponse, HttpTransport, JobState, Transport, TransportError, Vault};
use jobseal_dispatch::JobView;
use jobseal_testkit::child::rerun_test;
use jobseal_testkit::device::open_vault_at;
use jobseal_testkit::files::files_containing;
use jobseal_testkit::server::TestDispatch;
use jobseal_testkit::sheet::{sheet_value, VALUES};
use jobseal_testkit::Operator;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

const REPORT: &str = "End-to-end report: line tested.";

/// The device's network: can be cut, can lose answers, can be pointed at a restarted server, and
/// records every byte the device sends.
struct Net {
    base: Mutex<String>,
    online: AtomicBool,
    lose_next_answer: AtomicBool,
    sent: Mutex<Vec<u8>>,
}

impl Net {
    fn new(base: String) -> Arc<Self> {
        Arc::new(Net {
            base: Mutex::new(base),
            online: AtomicBool::new(true),
            lose_next_answer: AtomicBool::new(false),
            sent: Mutex::new(Vec::new()),
        })
    }
}

impl Transport for Net {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if !self.online.load(Ordering::SeqCst) {
            return Err(TransportError { message: "offline".into() });
        }
        self.sent.lock().unwrap().extend_from_slice(&request.body);
        let base = self.base.lock().unwrap().clone();
        let answer = HttpTransport::new(&base).send(request)?;
        if self.lose_next_answer.swap(false, Ordering::SeqCst) {
            return Err(TransportError { message: "connection reset before the answer".into() });
        }
        Ok(answer)
    }
}

fn create_job(op: &Operator, device: Uuid, job: Uuid) {
    op.create_job(device, &sheet_value(job, 1));
}

/// A fresh one-time enrolment code from the operator.
fn code(dispatch: &TestDispatch) -> String {
    dispatch.operator().issue_code().code
}

/// Enrols `vault` with `dispatch` over `net`, pinning its key, with 5 prekeys and a fresh code.
fn enrol(vault: &Vault, dispatch: &TestDispatch, net: &Net) -> jobseal::DeviceBundle {
    vault.enrol_with_dispatch(net, Some(dispatch.key()), 5, Some(&code(dispatch))).unwrap()
}

fn device(dir: &Path) -> Vault {
    open_vault_at(dir, 200).unwrap()
}

fn no_customer_value_sent(net: &Net) {
    let sent = net.sent.lock().unwrap();
    for v in VALUES {
        assert!(!sent.windows(v.len()).any(|w| w == v.as_bytes()), "a customer value was sent to dispatch");
    }
}

/// Exactly-once at dispatch: each state change and the report recorded once.
fn assert_once(v: &JobView, expected_states: &[JobState]) {
    let states: Vec<JobState> = v.history.iter().map(|h| h.to).collect();
    assert_eq!(states, expected_states, "state history at dispatch");
    assert_eq!(v.report.as_ref().map(|r| r.text.as_str()), Some(REPORT));
    let reveals: Vec<_> = v.audit_events.iter().filter(|e| e.kind == jobseal::AuditKind::Reveal).collect();
    assert_eq!(reveals.len(), 1, "dispatch must hold each reveal once");
    let shown = reveals[0].reveal.as_ref().map(|r| r.shown.len());
    assert_eq!(shown, Some(5), "dispatch must see every field the reveal showed");
    assert!(v.receipt.as_ref().is_some_and(|r| r.verified), "no verified receipt");
    assert!(v.audit_chain.intact && v.audit_chain.broken_at.is_none());
}

#[test]
fn offline_work_reaches_dispatch_exactly_once_across_lost_answers_and_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let mut dispatch = TestDispatch::start();
    let net = Net::new(dispatch.base_url());
    let dir = tmp.path().join("device");
    let vault = device(&dir);
    let bundle = enrol(&vault, &dispatch, &net);
    let job = Uuid::new_v4();
    create_job(&dispatch.operator(), bundle.device_id, job);
    assert_eq!(vault.sync(net.as_ref()).unwrap().received, [job]);

    // In the basement: everything works offline and waits in the outbox.
    net.online.store(false, Ordering::SeqCst);
    vault.advance(job, JobState::EnRoute).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    vault.reveal(job).unwrap();
    vault.close(job, REPORT).unwrap();
    assert!(matches!(vault.sync(net.as_ref()), Err(jobseal::Error::Network(_))));
    assert!(vault.sync_status().unwrap().pending_events > 0);

    // Back online, but dispatch's answer is lost after it applied the push, and dispatch restarts.
    net.online.store(true, Ordering::SeqCst);
    net.lose_next_answer.store(true, Ordering::SeqCst);
    assert!(vault.sync(net.as_ref()).is_err());
    dispatch.restart();
    *net.base.lock().unwrap() = dispatch.base_url();
    // The device pushes the same events again; dispatch acknowledges without applying twice.
    let report = vault.sync(net.as_ref()).unwrap();
    assert_eq!(report.pending, 0);
    assert_once(&dispatch.operator().job(job), &[JobState::EnRoute, JobState::OnSite, JobState::Completed]);
    no_customer_value_sent(&net);
}

#[test]
fn cancel_and_reassign_while_offline_shred_at_the_next_sync_and_keep_the_report() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let op = dispatch.operator();
    let net = Net::new(dispatch.base_url());
    let vault = device(&tmp.path().join("device"));
    let bundle = enrol(&vault, &dispatch, &net);
    let other = device(&tmp.path().join("other"));
    let other_net = Net::new(dispatch.base_url());
    let other_bundle =
        other.enrol_with_dispatch(other_net.as_ref(), Some(dispatch.key()), 5, Some(&code(&dispatch))).unwrap();
    let (worked, cancelled, reassigned) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for j in [worked, cancelled, reassigned] {
        create_job(&op, bundle.device_id, j);
    }
    vault.sync(net.as_ref()).unwrap();

    net.online.store(false, Ordering::SeqCst);
    // The technician finishes one job offline; meanwhile dispatch cancels that same job and
    // another one, and gives the third to a colleague.
    vault.advance(worked, JobState::OnSite).unwrap();
    vault.reveal(worked).unwrap();
    vault.close(worked, REPORT).unwrap();
    for j in [worked, cancelled] {
        assert_eq!(op.cancel(j).0, 200);
    }
    let (status, body) = op.reassign(reassigned, other_bundle.device_id);
    assert_eq!(status, 200, "reassign: {body}");
    assert!(vault.reveal(cancelled).is_ok(), "offline, the device cannot know yet");

    net.online.store(true, Ordering::SeqCst);
    let report = vault.sync(net.as_ref()).unwrap();
    assert_eq!(report.pending, 0);
    for j in [cancelled, reassigned] {
        assert_eq!(vault.job(j).unwrap().state, JobState::Revoked);
        assert!(matches!(vault.reveal(j), Err(jobseal::Error::AccessDenied(_))));
        assert!(op.job(j).receipts.iter().any(|r| r.verified && r.receipt.device_id == bundle.device_id));
    }
    // The technician's work was delivered although dispatch had cancelled the job meanwhile.
    let w = op.job(worked);
    assert_eq!(w.report.as_ref().map(|r| r.text.as_str()), Some(REPORT));
    assert!(w.receipt.as_ref().is_some_and(|r| r.verified));
    assert_eq!(vault.job(worked).unwrap().state, JobState::Completed);
    // The colleague receives the reassigned job.
    assert_eq!(other.sync(other_net.as_ref()).unwrap().received, [reassigned]);
    no_customer_value_sent(&net);
}

#[test]
fn a_device_wipe_shreds_every_job_with_receipts() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let op = dispatch.operator();
    let net = Net::new(dispatch.base_url());
    let dir = tmp.path().join("device");
    let vault = device(&dir);
    let bundle = enrol(&vault, &dispatch, &net);
    let jobs: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for j in &jobs {
        create_job(&op, bundle.device_id, *j);
    }
    vault.sync(net.as_ref()).unwrap();
    vault.advance(jobs[0], JobState::OnSite).unwrap();
    assert_eq!(op.wipe(bundle.device_id).0, 200);
    let report = vault.sync(net.as_ref()).unwrap();
    assert_eq!(report.revoked.len(), 3);
    for j in &jobs {
        assert_eq!(vault.job(*j).unwrap().state, JobState::Revoked);
        assert!(op.job(*j).receipt.is_some_and(|r| r.verified));
    }
    drop(vault);
    for v in VALUES {
        assert!(files_containing(&dir, v.as_bytes()).is_empty(), "a value survived the wipe");
    }
}

/// Runs in a child process: opens the device and syncs, dying at the crash point the parent set.
#[test]
#[ignore = "runs only as the child of a sync crash test"]
fn sync_crash_child() {
    let dir = PathBuf::from(std::env::var("JOBSEAL_E2E_DIR").unwrap());
    let base = std::env::var("JOBSEAL_E2E_BASE").unwrap();
    let vault = device(&dir);
    let _ = vault.sync(&HttpTransport::new(&base));
    unreachable!("the crash point was not reached");
}

fn sync_in_child_until(dir: &Path, base: &str, point: &str) {
    let out = rerun_test(module_path!(), "sync_crash_child")
        .env("JOBSEAL_E2E_DIR", dir)
        .env("JOBSEAL_E2E_BASE", base)
        .env("JOBSEAL_CRASH_POINT", point)
        .output()
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(6), "the child did not die at {point}: {:?}", out.status);
    }
}

#[test]
fn a_device_killed_mid_sync_loses_nothing_and_duplicates_nothing() {
    for point in ["sync:answer-received", "sync:acked"] {
        let tmp = tempfile::tempdir().unwrap();
        let dispatch = TestDispatch::start();
        let op = dispatch.operator();
        let base = dispatch.base_url();
        let dir = tmp.path().join("device");
        let (job, later) = (Uuid::new_v4(), Uuid::new_v4());
        let bundle_device = {
            let vault = device(&dir);
            let net = Net::new(base.clone());
            let bundle = enrol(&vault, &dispatch, &net);
            create_job(&op, bundle.device_id, job);
            vault.sync(net.as_ref()).unwrap();
            vault.advance(job, JobState::EnRoute).unwrap();
            vault.advance(job, JobState::OnSite).unwrap();
            vault.reveal(job).unwrap();
            vault.close(job, REPORT).unwrap();
            bundle.device_id
        };
        // A new sheet waits at dispatch: the killed sync must not lose it either.
        create_job(&op, bundle_device, later);
        sync_in_child_until(&dir, &base, point);

        let vault = device(&dir);
        let net = Net::new(base.clone());
        let report = vault.sync(net.as_ref()).unwrap();
        assert_eq!(report.pending, 0, "{point}");
        assert_eq!(vault.job(later).unwrap().state, JobState::Assigned, "{point}: the new sheet was lost");
        assert_once(&op.job(job), &[JobState::EnRoute, JobState::OnSite, JobState::Completed]);
        assert!(vault.verify_audit().unwrap().valid);
    }
}

#[test]
fn a_lost_enrolment_answer_is_recovered_by_enrolling_again() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let net = Net::new(dispatch.base_url());
    let vault = device(&tmp.path().join("device"));
    let code = code(&dispatch);
    net.lose_next_answer.store(true, Ordering::SeqCst);
    assert!(vault.enrol_with_dispatch(net.as_ref(), Some(dispatch.key()), 5, Some(&code)).is_err());
    // Dispatch enrolled the device (and used the code) but the device never saw the token: it
    // enrols again, without a code, proving its identity key.
    assert_eq!(dispatch.operator().codes().codes[0].status, jobseal_dispatch::CodeStatus::Used);
    let bundle = vault.enrol_with_dispatch(net.as_ref(), Some(dispatch.key()), 5, None).unwrap();
    let job = Uuid::new_v4();
    create_job(&dispatch.operator(), bundle.device_id, job);
    assert_eq!(vault.sync(net.as_ref()).unwrap().received, [job]);
    // A device already holding its token does not enrol twice.
    assert!(matches!(
        vault.enrol_with_dispatch(net.as_ref(), Some(dispatch.key()), 5, None),
        Err(jobseal::Error::Enrolment(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Issue 12: a network attacker between the device and the real dispatch rewrites sync answers.
// ---------------------------------------------------------------------------------------------

/// What the attacker does with one `POST /v1/sync` request: answer it, forwarding it to the real
/// dispatch (with the function it is given) or not.
type Attack = Box<dyn FnMut(HttpRequest, &dyn Fn(HttpRequest) -> HttpResponse) -> HttpResponse + Send>;

/// A proxy in front of the real dispatch (a TLS-terminating middlebox, a misissued certificate):
/// every other call passes through untouched; sync calls go to the attack.
struct Attacker {
    base: String,
    attack: Mutex<Attack>,
}

impl Transport for Attacker {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let forward = |r: HttpRequest| HttpTransport::new(&self.base).send(r).expect("dispatch answers");
        if request.path != "/v1/sync" {
            return Ok(forward(request));
        }
        Ok((self.attack.lock().unwrap())(request, &forward))
    }
}

/// Edits the `answer` inside an authenticated answer, keeping dispatch's MAC.
fn edit_answer(resp: HttpResponse, edit: impl FnOnce(&mut serde_json::Value)) -> HttpResponse {
    let mut body: serde_json::Value = serde_json::from_slice(&resp.body).unwrap();
    edit(&mut body["answer"]);
    HttpResponse { status: resp.status, body: serde_json::to_vec(&body).unwrap() }
}

/// A device with finished work waiting in its outbox (a closed job: states, audit records, the
/// report, the shred receipt) and a live job, both from the real dispatch; the answer of the
/// sync that delivered them was recorded.
struct Scene {
    dispatch: TestDispatch,
    vault: Vault,
    worked: Uuid,
    live: Uuid,
    recorded: HttpResponse,
    _tmp: tempfile::TempDir,
}

fn scene() -> Scene {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let vault = device(&tmp.path().join("device"));
    let device_id = dispatch.enrol(&vault, 5).device_id;
    let (worked, live) = (Uuid::new_v4(), Uuid::new_v4());
    create_job(&dispatch.operator(), device_id, worked);
    create_job(&dispatch.operator(), device_id, live);
    let recorded = Arc::new(Mutex::new(None));
    let keep = recorded.clone();
    let recorder = Attacker {
        base: dispatch.base_url(),
        attack: Mutex::new(Box::new(move |req, forward| {
            let resp = forward(req);
            keep.lock().unwrap().get_or_insert(resp.clone());
            resp
        })),
    };
    assert_eq!(vault.sync(&recorder).unwrap().received.len(), 2);
    vault.advance(worked, JobState::EnRoute).unwrap();
    vault.advance(worked, JobState::OnSite).unwrap();
    vault.reveal(worked).unwrap();
    vault.close(worked, REPORT).unwrap();
    let recorded = recorded.lock().unwrap().take().unwrap();
    Scene { dispatch, vault, worked, live, recorded, _tmp: tmp }
}

/// Everything a sync answer could change on the device.
fn device_state(s: &Scene) -> (u64, JobState, JobState, chrono::DateTime<chrono::Utc>, usize) {
    let v = &s.vault;
    (
        v.sync_status().unwrap().pending_events,
        v.job(s.worked).unwrap().state,
        v.job(s.live).unwrap().state,
        v.trusted_now().unwrap(),
        v.audit_log(None).unwrap().len(),
    )
}

/// Syncs through `attack`: the device must refuse the answer as tampered, change nothing but
/// count a failed sync with backoff; then a sync without the attacker delivers everything
/// exactly once and the live job is untouched.
fn refused_and_nothing_changed(s: &Scene, attack: Attack) {
    refused_then_synced(s, attack, JobState::Assigned);
}

/// As [`refused_and_nothing_changed`], the live job ending in `live_after` once the device has
/// synced without the attacker.
fn refused_then_synced(s: &Scene, attack: Attack, live_after: JobState) {
    let before = device_state(s);
    assert!(before.0 > 0, "the scene has work waiting in the outbox");
    let failures = s.vault.sync_status().unwrap().consecutive_failures;
    let attacker = Attacker { base: s.dispatch.base_url(), attack: Mutex::new(attack) };
    match s.vault.sync(&attacker) {
        Err(e) => assert_eq!(e.kind(), jobseal::ErrorKind::Tampered, "{e}"),
        Ok(r) => panic!("the device applied a rewritten answer: {r:?}"),
    }
    assert_eq!(device_state(s), before, "a rewritten answer changed the device");
    let status = s.vault.sync_status().unwrap();
    assert_eq!(status.consecutive_failures, failures + 1, "the refused answer is not counted as a failure");
    assert!(status.next_attempt_at.is_some(), "no backoff after a refused answer");

    let report = s.vault.sync(&s.dispatch.transport()).unwrap();
    assert_eq!(report.pending, 0);
    assert_eq!(report.revoked.len(), usize::from(live_after == JobState::Revoked));
    assert_once(&s.dispatch.operator().job(s.worked), &[JobState::EnRoute, JobState::OnSite, JobState::Completed]);
    assert_eq!(s.vault.job(s.live).unwrap().state, live_after);
    assert_eq!(s.vault.sync_status().unwrap().consecutive_failures, 0);
}

#[test]
fn a_forged_server_time_is_refused_and_moves_no_clock() {
    let s = scene();
    refused_and_nothing_changed(
        &s,
        Box::new(|req, forward| {
            edit_answer(forward(req), |a| a["server_time"] = serde_json::json!("2100-01-01T00:00:00Z"))
        }),
    );
}

#[test]
fn forged_acknowledgements_delete_nothing_from_the_outbox() {
    // The attacker keeps the push from dispatch and acknowledges every event in it, so that the
    // device would drop its audit records and shred receipt before dispatch has them.
    let s = scene();
    refused_and_nothing_changed(
        &s,
        Box::new(|req, _| {
            let push: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            let acked: Vec<serde_json::Value> =
                push["events"].as_array().unwrap().iter().map(|e| e["key"].clone()).collect();
            assert!(!acked.is_empty());
            let answer = serde_json::json!({
                "server_time": "2030-03-04T09:20:00Z", "acked": acked, "envelopes": [], "revocations": [],
                "prekeys_available": 5, "prekeys_wanted": 0,
            });
            let body = serde_json::json!({"answer": answer, "mac": "00".repeat(32)});
            HttpResponse { status: 200, body: serde_json::to_vec(&body).unwrap() }
        }),
    );
}

#[test]
fn a_forged_revocation_shreds_nothing() {
    let s = scene();
    let live = s.live;
    refused_and_nothing_changed(
        &s,
        Box::new(move |req, forward| {
            edit_answer(forward(req), |a| {
                a["revocations"] = serde_json::json!([{"job_id": live, "reason": "cancelled"}]);
            })
        }),
    );
}

#[test]
fn an_answer_to_an_earlier_request_is_refused() {
    // Replayed: the real, authentic answer of the sync that delivered the jobs, MAC and all.
    let s = scene();
    let old = s.recorded.clone();
    refused_and_nothing_changed(&s, Box::new(move |_, _| old.clone()));
}

#[test]
fn a_truncated_answer_is_refused() {
    let s = scene();
    // Cut in the middle of its bytes.
    refused_and_nothing_changed(
        &s,
        Box::new(|req, forward| {
            let mut resp = forward(req);
            resp.body.truncate(resp.body.len() / 2);
            resp
        }),
    );
    // Cut short where it still parses: dispatch cancelled the live job, and the attacker drops
    // the revocation from the answer so that the device keeps the customer's data.
    assert_eq!(s.dispatch.operator().cancel(s.live).0, 200);
    s.vault.advance(s.live, JobState::EnRoute).unwrap(); // something for the outbox
    refused_then_synced(
        &s,
        Box::new(|req, forward| {
            edit_answer(forward(req), |a| {
                assert_eq!(a["revocations"].as_array().map(Vec::len), Some(1));
                a["revocations"] = serde_json::json!([]);
            })
        }),
        JobState::Revoked,
    );
}

#[test]
fn an_answer_for_another_device_is_refused() {
    // The attacker enrolled a device of its own and sends the victim's push (nonce included) under
    // that device's token: dispatch records the events as the attacker's and acknowledges them,
    // in an answer authenticated for the attacker's device.
    let s = scene();
    let tmp = tempfile::tempdir().unwrap();
    let own = device(&tmp.path().join("attacker"));
    let own_id = s.dispatch.enrol(&own, 5).device_id;
    let own_token = own.device_token_insecure_for_testing().unwrap().unwrap();
    refused_and_nothing_changed(
        &s,
        Box::new(move |mut req, forward| {
            let mut push: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
            push["device_id"] = serde_json::json!(own_id);
            req.body = serde_json::to_vec(&push).unwrap();
            for (name, value) in &mut req.headers {
                if name.eq_ignore_ascii_case("authorization") {
                    *value = format!("Bearer {own_token}");
                }
            }
            let resp = forward(req);
            assert_eq!(resp.status, 200);
            resp
        }),
    );
}

/// A rooted technician's rewrite: the reveal events made to show nothing, the whole chain re-linked
/// with plain SHA-256, head included.
fn rewrite_reveals_as_unkeyed(db: &Path) {
    use jobseal::audit::AuditKind;
    jobseal_testkit::device::relink_audit_chain_unkeyed(db, |event| {
        if event.kind == AuditKind::Reveal {
            event.kind = AuditKind::RevealDenied;
            event.detail = Some("shown: -; refused: customer_name (window-closed)".into());
        }
    });
}

/// The audit chain is keyed once the device is enrolled (a key only the device's identity key and
/// dispatch can derive), so a tail rewritten with sqlite3 and re-linked with SHA-256 before it
/// was synced is caught: by dispatch, which marks the device's chain broken, and by the device.
#[test]
fn an_unsynced_audit_tail_rewritten_with_sqlite_is_caught_by_dispatch() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let net = Net::new(dispatch.base_url());
    let dir = tmp.path().join("device");
    let vault = device(&dir);
    let bundle = enrol(&vault, &dispatch, &net);
    let job = Uuid::new_v4();
    create_job(&dispatch.operator(), bundle.device_id, job);
    vault.sync(net.as_ref()).unwrap();
    vault.advance(job, JobState::EnRoute).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    // Offline, the technician reads the job, then hides the read.
    net.online.store(false, Ordering::SeqCst);
    vault.reveal(job).unwrap();
    drop(vault);
    rewrite_reveals_as_unkeyed(&dir.join("vault.db"));

    let vault = device(&dir);
    assert!(!vault.verify_audit().unwrap().valid, "the device's own check passed the rewritten chain");
    net.online.store(true, Ordering::SeqCst);
    vault.sync(net.as_ref()).unwrap();
    let chain = dispatch.operator().device(bundle.device_id).audit_chain;
    assert!(!chain.intact, "dispatch accepted a chain re-linked without the key");
    assert!(chain.broken_at.is_some());
}

/// The same rewrite before the device's very first sync, of the whole chain from event 1:
/// dispatch knows from the enrolment that this device's chain is keyed from its first event, so
/// an unkeyed chain is a break from the start.
#[test]
fn a_whole_chain_rewritten_unkeyed_before_its_first_sync_is_caught_by_dispatch() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let net = Net::new(dispatch.base_url());
    let dir = tmp.path().join("device");
    let vault = device(&dir);
    let bundle = enrol(&vault, &dispatch, &net);
    let job = Uuid::new_v4();
    vault.ingest(&jobseal_testkit::sheet::sheet(job, 1)).unwrap();
    vault.advance(job, JobState::EnRoute).unwrap();
    vault.reveal(job).unwrap();
    drop(vault);
    rewrite_reveals_as_unkeyed(&dir.join("vault.db"));
    let vault = device(&dir);
    vault.sync(net.as_ref()).unwrap();
    let chain = dispatch.operator().device(bundle.device_id).audit_chain;
    assert_eq!(chain.broken_at, Some(1), "dispatch accepted an unkeyed chain from a device enrolled keyed");
}

/// The first attempt never reached dispatch (offline), so no code was used: enrolling again needs
/// the code, and works with it.
#[test]
fn an_enrolment_that_never_reached_dispatch_is_retried_with_the_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let net = Net::new(dispatch.base_url());
    let vault = device(&tmp.path().join("device"));
    let code = code(&dispatch);
    net.online.store(false, Ordering::SeqCst);
    assert!(vault.enrol_with_dispatch(net.as_ref(), Some(dispatch.key()), 5, Some(&code)).is_err());
    net.online.store(true, Ordering::SeqCst);
    let refused = vault.enrol_with_dispatch(net.as_ref(), Some(dispatch.key()), 5, None);
    assert!(matches!(refused, Err(jobseal::Error::Dispatch { status: 401, .. })), "{refused:?}");
    let bundle = vault.enrol_with_dispatch(net.as_ref(), Some(dispatch.key()), 5, Some(&code)).unwrap();
    let job = Uuid::new_v4();
    create_job(&dispatch.operator(), bundle.device_id, job);
    assert_eq!(vault.sync(net.as_ref()).unwrap().received, [job]);
}

/// Enrolment hijack against a live device (issue 12): a recording attacker replays the device's
/// enrolment request and posts its public bundle with a planted prekey and a code of its own.
/// Every attempt is refused, and the real device keeps syncing with the token it holds.
#[test]
fn an_enrolment_hijack_is_refused_and_the_real_device_keeps_syncing() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let op = dispatch.operator();
    let net = Net::new(dispatch.base_url());
    let vault = device(&tmp.path().join("device"));
    let bundle = enrol(&vault, &dispatch, &net);
    let recorded = net.sent.lock().unwrap().clone();
    let http = dispatch.client();
    let replay: serde_json::Value = serde_json::from_slice(&recorded).unwrap();
    assert_eq!(http.post("/v1/enrol", None, &replay).0, 409);
    let mut planted = bundle.clone();
    planted.prekeys.push(jobseal::Prekey { id: 9_999, public_key: jobseal::envelope::generate_keypair().unwrap().1 });
    let (attacker, _) = jobseal::envelope::generate_keypair().unwrap();
    let own_code = jobseal::enrolment::EnrolmentCode::parse(&code(&dispatch)).unwrap();
    let forged = jobseal::enrolment::build_request(planted, &attacker, &dispatch.key(), Some(&own_code)).unwrap();
    assert_eq!(http.post("/v1/enrol", None, &serde_json::to_value(&forged).unwrap()).0, 401);
    assert_eq!(op.device(bundle.device_id).prekeys_available, 5);
    let job = Uuid::new_v4();
    create_job(&op, bundle.device_id, job);
    assert_eq!(vault.sync(net.as_ref()).unwrap().received, [job]);
}

/// A job cancelled before the device fetched its envelope (issue 12): the envelope is withdrawn,
/// and at the next sync the device deletes the prekey it was sealed to, so a copy of it, kept by
/// anyone who saw it at dispatch or on the way, can never be opened.
#[test]
fn a_withdrawn_envelopes_prekey_is_deleted_on_the_device_at_the_next_sync() {
    let tmp = tempfile::tempdir().unwrap();
    let dispatch = TestDispatch::start();
    let op = dispatch.operator();
    let net = Net::new(dispatch.base_url());
    let vault = device(&tmp.path().join("device"));
    let bundle = enrol(&vault, &dispatch, &net);
    let job = Uuid::new_v4();
    create_job(&op, bundle.device_id, job);
    let view = op.job(job);
    let Some(jobseal::RecipientKeyId::Prekey(spent)) = view.delivery.as_ref().map(|d| d.sealed_to) else {
        panic!("the sheet was not sealed to a prekey")
    };
    let _ = op.cancel(job);
    assert!(vault.device_bundle().unwrap().prekeys.iter().any(|p| p.id == spent));
    vault.sync(net.as_ref()).unwrap();
    let held: Vec<u32> = vault.device_bundle().unwrap().prekeys.iter().map(|p| p.id).collect();
    assert!(!held.contains(&spent), "prekey {spent} of the withdrawn envelope is still held: {held:?}");
    assert_eq!(vault.job(job).unwrap().state, JobState::Revoked, "the job id is tombstoned");
}

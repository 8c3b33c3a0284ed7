//! The sans-IO sync engine against a scripted dispatch: what goes into the outbox, what leaves it,
//! and what a failure does (G6, G7).

use jobseal::answer::{AnswerKey, AnsweredCall};
use jobseal::envelope;
use jobseal::receipt::ReceiptKey;
use jobseal::sync::wire::{self, EventBody, SyncRequest, SyncResponse};
use jobseal::{Error, HttpRequest, HttpResponse, JobState, Transport, TransportError};
use jobseal_testkit::device::{vault_at, TestVault};
use jobseal_testkit::sheet::{at, sheet, sheet_value, VALUES};
use std::sync::Mutex;
use uuid::Uuid;

/// A dispatch stand-in: records every request and answers from a script; `None` means the network
/// is down.
type Script = Box<dyn FnMut(&HttpRequest) -> Option<HttpResponse> + Send>;

struct Scripted {
    requests: Mutex<Vec<HttpRequest>>,
    answer: Mutex<Script>,
}

impl Scripted {
    fn new(f: impl FnMut(&HttpRequest) -> Option<HttpResponse> + Send + 'static) -> Self {
        Scripted { requests: Mutex::new(Vec::new()), answer: Mutex::new(Box::new(f)) }
    }
}

impl Transport for Scripted {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        self.requests.lock().unwrap().push(request.clone());
        (self.answer.lock().unwrap())(&request).ok_or(TransportError { message: "offline".into() })
    }
}

fn ok<T: serde::Serialize>(body: &T) -> Option<HttpResponse> {
    Some(HttpResponse { status: 200, body: serde_json::to_vec(body).unwrap() })
}

/// Answers a sync request as dispatch does: `answer`, MAC-ed for the device over the request's
/// nonce.
fn signed(key: &AnswerKey, req: &HttpRequest, answer: &SyncResponse) -> Option<HttpResponse> {
    let sync: SyncRequest = serde_json::from_slice(&req.body).unwrap();
    Some(HttpResponse { status: 200, body: key.seal(AnsweredCall::Sync, &sync.nonce, answer).unwrap() })
}

/// Acknowledges everything pushed, offers nothing.
fn ack_all(d: &Device) -> impl FnMut(&HttpRequest) -> Option<HttpResponse> + Send + 'static {
    let key = d.answer_key();
    move |req| {
        let sync: SyncRequest = serde_json::from_slice(&req.body).unwrap();
        signed(
            &key,
            req,
            &SyncResponse {
                server_time: at(200),
                acked: sync.events.iter().map(|e| e.key).collect(),
                envelopes: vec![],
                revocations: vec![],
                prekeys_available: 10,
                prekeys_wanted: 0,
                prekey_floor: None,
            },
        )
    }
}

struct Device {
    tv: TestVault,
    dispatch: envelope::SecretKey,
    bundle: jobseal::DeviceBundle,
}

impl Device {
    /// Dispatch's side of the device's answer key.
    fn answer_key(&self) -> AnswerKey {
        AnswerKey::derive(&self.dispatch, &self.bundle.identity_key, self.bundle.device_id).unwrap()
    }
}

/// A dispatch stand-in's answer to an enrolment request: the token sealed for `nonce` (the
/// request's own, unless a test forges or replays one) and `server_time`.
fn enrol_answer(
    dispatch: &envelope::SecretKey,
    enrol: &wire::EnrolRequest,
    nonce: &[u8],
    server_time: chrono::DateTime<chrono::Utc>,
) -> wire::EnrolResponse {
    let b = &enrol.bundle;
    wire::EnrolResponse {
        device_id: b.device_id,
        sealed_device_token: jobseal::enrolment::seal_answer_token(
            dispatch,
            &b.identity_key,
            b.device_id,
            nonce,
            server_time.timestamp_millis(),
            "test-token-not-secret",
        )
        .unwrap(),
        dispatch_key: dispatch.public_key(),
        server_time,
    }
}

fn enrolled_device() -> Device {
    let tv = vault_at(200);
    let (dispatch, dispatch_pub) = envelope::generate_keypair().unwrap();
    let dispatch_for_answer = envelope::SecretKey::from_bytes(&dispatch.to_bytes()).unwrap();
    let t = Scripted::new(move |req| {
        let enrol: wire::EnrolRequest = serde_json::from_slice(&req.body).unwrap();
        ok(&enrol_answer(&dispatch_for_answer, &enrol, &enrol.nonce, at(200)))
    });
    let bundle = tv.vault.enrol_with_dispatch(&t, Some(dispatch_pub), 5, None).unwrap();
    Device { tv, dispatch, bundle }
}

/// The device refuses an enrolment answer that is not the answer to its own request: one
/// recorded earlier and replayed (another request's nonce), or one whose server time was
/// changed (it would set the device's trusted time). It stores no token, and the real answer
/// still works afterwards.
#[test]
fn a_replayed_or_altered_enrolment_answer_is_refused() {
    let tv = vault_at(200);
    let (dispatch, dispatch_pub) = envelope::generate_keypair().unwrap();
    let recorded: std::sync::Arc<Mutex<Option<wire::EnrolResponse>>> = Default::default();
    let mode = std::sync::Arc::new(Mutex::new("record"));
    let (rec, m) = (recorded.clone(), mode.clone());
    let t = Scripted::new(move |req| {
        let enrol: wire::EnrolRequest = serde_json::from_slice(&req.body).unwrap();
        let honest = enrol_answer(&dispatch, &enrol, &enrol.nonce, at(200));
        match *m.lock().unwrap() {
            // A first attempt whose answer the network lost; an attacker kept it.
            "record" => {
                *rec.lock().unwrap() = Some(honest);
                None
            }
            "replay" => ok(rec.lock().unwrap().as_ref().unwrap()),
            "retime" => ok(&wire::EnrolResponse { server_time: at(9_000), ..honest }),
            _ => ok(&honest),
        }
    });
    assert!(matches!(tv.vault.enrol_with_dispatch(&t, Some(dispatch_pub), 5, None), Err(Error::Network(_))));
    for attack in ["replay", "retime"] {
        *mode.lock().unwrap() = attack;
        let got = tv.vault.enrol_with_dispatch(&t, Some(dispatch_pub), 5, None);
        assert!(got.is_err(), "{attack}: the device took a replayed or altered answer");
        assert!(matches!(tv.vault.sync_request(), Err(Error::Enrolment(_))), "{attack}: a token was stored");
    }
    *mode.lock().unwrap() = "honest";
    tv.vault.enrol_with_dispatch(&t, Some(dispatch_pub), 5, None).unwrap();
    assert!(tv.vault.sync_request().is_ok());
}

/// A mistyped enrolment code is refused before anything is created or sent.
#[test]
fn a_mistyped_enrolment_code_changes_nothing_and_sends_nothing() {
    let tv = vault_at(200);
    let (_, dispatch_pub) = envelope::generate_keypair().unwrap();
    let t = Scripted::new(|_| None);
    let got = tv.vault.enrol_with_dispatch(&t, Some(dispatch_pub), 5, Some("ABCDE-FGHJK-MNPQR"));
    assert!(matches!(got, Err(Error::InvalidInput(_))), "{got:?}");
    assert!(t.requests.lock().unwrap().is_empty());
    assert!(tv.vault.device_bundle().is_err(), "device keys were created");
}

fn pushed(t: &Scripted) -> Vec<wire::OutboxEvent> {
    t.requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/v1/sync")
        .flat_map(|r| serde_json::from_slice::<SyncRequest>(&r.body).unwrap().events)
        .collect()
}

#[test]
fn actions_are_in_the_outbox_before_they_return_and_leave_it_only_when_acknowledged() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    let env =
        jobseal::seal_job_sheet(&d.dispatch, &d.bundle, Some(1), sheet_value(job, 1).to_string().as_bytes()).unwrap();
    d.tv.vault.receive(&env).unwrap();
    d.tv.vault.advance(job, JobState::OnSite).unwrap();
    d.tv.vault.reveal(job).unwrap();
    d.tv.vault.close(job, "Report text for the test.").unwrap();
    let pending = d.tv.vault.sync_status().unwrap().pending_events;
    assert!(pending > 0);

    let offline = Scripted::new(|_| None);
    assert!(matches!(d.tv.vault.sync(&offline), Err(Error::Network(_))));
    let status = d.tv.vault.sync_status().unwrap();
    assert_eq!(status.pending_events, pending, "a failed sync lost events");
    assert_eq!(status.consecutive_failures, 1);
    assert!(status.next_attempt_at.is_some(), "no backoff after a failure");

    let online = Scripted::new(ack_all(&d));
    let report = d.tv.vault.sync(&online).unwrap();
    assert_eq!(report.acknowledged as u64, pending);
    assert_eq!(report.pending, 0);
    let status = d.tv.vault.sync_status().unwrap();
    assert_eq!((status.consecutive_failures, status.next_attempt_at), (0, None));

    let events = pushed(&online);
    let keys: std::collections::HashSet<_> = events.iter().map(|e| e.key).collect();
    assert_eq!(keys.len(), events.len(), "an idempotency key was reused");
    assert!(events.iter().all(|e| e.key.get_version_num() == 7), "keys must be UUID v7");
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "events must go out in order");
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.body {
            EventBody::Received { .. } => "received",
            EventBody::State { .. } => "state",
            EventBody::Report { .. } => "report",
            EventBody::Audit(_) => "audit",
            EventBody::Receipt(_) => "receipt",
            EventBody::Rejected { .. } => "rejected",
        })
        .filter(|k| *k != "audit")
        .collect();
    assert_eq!(kinds, ["received", "state", "report", "state", "receipt"]);
    // The receipt verifies with dispatch's side of the key agreement.
    let receipt =
        events.iter().find_map(|e| if let EventBody::Receipt(r) = &e.body { Some(r.clone()) } else { None }).unwrap();
    let key = ReceiptKey::derive(&d.dispatch, &d.bundle.identity_key, d.bundle.device_id).unwrap();
    assert!(key.verify(&receipt));
    assert_eq!((receipt.job_id, receipt.state, receipt.fields_destroyed), (job, JobState::Completed, 5));
    // Nothing pushed carries a customer value.
    for r in online.requests.lock().unwrap().iter() {
        let body = String::from_utf8_lossy(&r.body);
        for v in VALUES {
            assert!(!body.contains(v), "a customer value was pushed to dispatch");
        }
    }
}

#[test]
fn an_unacknowledged_push_is_repeated_with_the_same_keys() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    d.tv.vault.advance(job, JobState::EnRoute).unwrap();
    // Dispatch applies but its answer is lost.
    let lost = Scripted::new(|_| None);
    assert!(d.tv.vault.sync(&lost).is_err());
    let online = Scripted::new(ack_all(&d));
    d.tv.vault.sync(&online).unwrap();
    let first: Vec<Uuid> = pushed(&lost).iter().map(|e| e.key).collect();
    let second: Vec<Uuid> = pushed(&online).iter().map(|e| e.key).collect();
    assert!(!first.is_empty());
    assert_eq!(first, second[..first.len()], "the retry must carry the same keys in the same order");
}

#[test]
fn revocations_shred_and_answer_with_a_receipt_even_for_unknown_jobs() {
    let d = enrolled_device();
    let (held, unknown) = (Uuid::new_v4(), Uuid::new_v4());
    d.tv.vault.ingest(&sheet(held, 1)).unwrap();
    let mut served = false;
    let key = d.answer_key();
    let t = Scripted::new(move |req| {
        let sync: SyncRequest = serde_json::from_slice(&req.body).unwrap();
        let revocations = if served {
            vec![]
        } else {
            served = true;
            [held, unknown]
                .map(|job_id| wire::Revocation { job_id, reason: wire::RevocationReason::Cancelled })
                .to_vec()
        };
        signed(
            &key,
            req,
            &SyncResponse {
                server_time: at(210),
                acked: sync.events.iter().map(|e| e.key).collect(),
                envelopes: vec![],
                revocations,
                prekeys_available: 10,
                prekeys_wanted: 0,
                prekey_floor: None,
            },
        )
    });
    let report = d.tv.vault.sync(&t).unwrap();
    assert_eq!(report.revoked.len(), 2);
    assert_eq!(report.pending, 0, "the receipts went out in a second round");
    assert_eq!(d.tv.vault.job(held).unwrap().state, JobState::Revoked);
    assert_eq!(d.tv.vault.job(unknown).unwrap().state, JobState::Revoked);
    let receipts = pushed(&t).into_iter().filter(|e| matches!(e.body, EventBody::Receipt(_))).count();
    assert_eq!(receipts, 2);
    // The unknown job's sheet can never arrive later.
    let env = jobseal::seal_job_sheet(&d.dispatch, &d.bundle, Some(2), sheet_value(unknown, 1).to_string().as_bytes())
        .unwrap();
    assert!(matches!(d.tv.vault.receive(&env), Err(Error::JobClosed { .. })));
    assert!(d.tv.vault.trusted_now().unwrap() >= at(210), "server time did not anchor the clock");
}

/// An answer in the shape of a sync answer that acknowledges every pushed event, revokes `job`
/// and moves the server time a century ahead, with no MAC: what a forger (or a dispatch of
/// protocol 1) sends.
fn forged_answer(job: Uuid) -> impl FnMut(&HttpRequest) -> SyncResponse + Send + 'static {
    move |req| {
        let sync: SyncRequest = serde_json::from_slice(&req.body).unwrap();
        SyncResponse {
            server_time: at(200 + 100 * 365 * 24 * 60),
            acked: sync.events.iter().map(|e| e.key).collect(),
            envelopes: vec![],
            revocations: vec![wire::Revocation { job_id: job, reason: wire::RevocationReason::Cancelled }],
            prekeys_available: 10,
            prekeys_wanted: 0,
            prekey_floor: None,
        }
    }
}

/// Everything a sync answer could change on the device, to compare before and after.
fn device_state(d: &Device, job: Uuid) -> (u64, JobState, chrono::DateTime<chrono::Utc>, usize) {
    let v = &d.tv.vault;
    (
        v.sync_status().unwrap().pending_events,
        v.job(job).unwrap().state,
        v.trusted_now().unwrap(),
        v.audit_log(None).unwrap().len(),
    )
}

#[test]
fn error_answers_are_typed_and_keep_the_outbox() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    let before = device_state(&d, job);
    let t = Scripted::new(|_| {
        Some(HttpResponse { status: 401, body: br#"{"error":{"code":"unauthorized","message":"bad token"}}"#.to_vec() })
    });
    match d.tv.vault.sync(&t) {
        Err(Error::Dispatch { status: 401, message }) => assert!(message.contains("unauthorized")),
        other => panic!("expected a 401 Dispatch error, got {:?}", other.map(|r| r.rounds)),
    }
    // Error statuses are not authenticated; one whose body looks like a sync answer (forged acks,
    // a revocation, a far server time) changes nothing either: only the failure is counted.
    for status in [409, 500, 302] {
        let mut forge = forged_answer(job);
        let t = Scripted::new(move |req| Some(HttpResponse { status, body: serde_json::to_vec(&forge(req)).unwrap() }));
        assert!(matches!(d.tv.vault.sync(&t), Err(Error::Dispatch { status: s, .. }) if s == status));
        assert_eq!(device_state(&d, job), before, "status {status} changed the device");
    }
    let garbage = Scripted::new(|_| Some(HttpResponse { status: 200, body: b"not json".to_vec() }));
    assert!(matches!(d.tv.vault.sync(&garbage), Err(Error::Tampered(_))));
    assert_eq!(device_state(&d, job), before);
    let status = d.tv.vault.sync_status().unwrap();
    assert_eq!(status.consecutive_failures, 5);
    assert!(status.next_attempt_at.is_some(), "no backoff after failures");
}

/// Issue 12: an answer without a valid MAC (here: forged acknowledgements, a revocation and a
/// server time a century ahead, sent as protocol 1 did, or wrapped with a made-up MAC) is refused
/// as tampered before anything of it is applied, and counted as a failed sync.
#[test]
fn an_unauthenticated_answer_acknowledges_nothing_revokes_nothing_and_moves_no_clock() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    d.tv.vault.advance(job, JobState::EnRoute).unwrap();
    let before = device_state(&d, job);
    assert!(before.0 > 0);
    let mut forge = forged_answer(job);
    let bare = Scripted::new(move |req| ok(&forge(req)));
    assert!(matches!(d.tv.vault.sync(&bare), Err(Error::Tampered(_))));
    assert_eq!(device_state(&d, job), before, "an unauthenticated answer changed the device");
    let mut forge = forged_answer(job);
    let wrapped = Scripted::new(move |req| {
        let answer = serde_json::to_string(&forge(req)).unwrap();
        let body = format!(r#"{{"answer":{answer},"mac":"{}"}}"#, "ab".repeat(32));
        Some(HttpResponse { status: 200, body: body.into_bytes() })
    });
    assert!(matches!(d.tv.vault.sync(&wrapped), Err(Error::Tampered(_))));
    assert_eq!(device_state(&d, job), before, "an answer with a made-up MAC changed the device");
    let status = d.tv.vault.sync_status().unwrap();
    assert_eq!(status.consecutive_failures, 2);
    assert!(status.next_attempt_at.is_some(), "no backoff after a refused answer");
    // The real dispatch's answer is applied.
    assert_eq!(d.tv.vault.sync(&Scripted::new(ack_all(&d))).unwrap().pending, 0);
    assert_eq!(d.tv.vault.job(job).unwrap().state, JobState::EnRoute);
}

#[test]
fn a_vault_without_dispatch_keeps_no_outbox() {
    let tv = vault_at(200);
    tv.vault.ingest(&sheet(Uuid::new_v4(), 1)).unwrap();
    let s = tv.vault.sync_status().unwrap();
    assert!(!s.enrolled);
    assert_eq!(s.pending_events, 0);
    assert!(matches!(tv.vault.sync(&Scripted::new(|_| None)), Err(Error::Enrolment(_))));
}

/// Found by the crash-at-scale suite: once the outbox drained, SQLite reused sequence numbers
/// from 1, so a state change made after a sync looked older than those before it and dispatch
/// (which keeps each device's newest word by `seq`) kept a stale state.
#[test]
fn event_sequence_numbers_keep_growing_after_the_outbox_drains() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    d.tv.vault.advance(job, JobState::EnRoute).unwrap();
    let online = Scripted::new(ack_all(&d));
    assert_eq!(d.tv.vault.sync(&online).unwrap().pending, 0);
    d.tv.vault.close(job, "Report after a sync.").unwrap();
    d.tv.vault.sync(&online).unwrap();
    let events = pushed(&online);
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq), "a sequence number went backwards or repeated");
}

/// The device's audit chain key, as dispatch derives it from its own secret key.
fn audit_key(d: &Device) -> jobseal::audit::AuditKey {
    jobseal::audit::AuditKey::derive(&d.dispatch, &d.bundle.identity_key, d.bundle.device_id).unwrap()
}

fn audit_records(events: &[wire::OutboxEvent]) -> Vec<(Option<Uuid>, jobseal::audit::AuditRecord)> {
    events
        .iter()
        .filter_map(|e| if let EventBody::Audit(r) = &e.body { Some((e.job_id, r.clone())) } else { None })
        .collect()
}

#[test]
fn a_reveal_goes_to_dispatch_as_one_record_of_the_chain_it_was_written_in() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    d.tv.vault.advance(job, JobState::OnSite).unwrap();
    let reveal = d.tv.vault.reveal(job).unwrap();
    let online = Scripted::new(ack_all(&d));
    d.tv.vault.sync(&online).unwrap();

    let records = audit_records(&pushed(&online));
    // Every event of the device's chain went out, once, in order, and the run verifies as
    // dispatch checks it.
    assert_eq!(records.len() as u64, d.tv.vault.verify_audit().unwrap().events);
    assert_eq!(jobseal::audit::verify_records(Some(&audit_key(&d)), None, &records), Ok(()));
    // The chain is keyed from its first event (re-linked at enrolment): plain SHA-256 links,
    // which anyone could compute, do not verify.
    assert_eq!(jobseal::audit::verify_records(None, None, &records), Err(1));
    let reveals: Vec<_> = records
        .iter()
        .filter(|(_, r)| matches!(r.kind, jobseal::AuditKind::Reveal | jobseal::AuditKind::RevealDenied))
        .collect();
    assert_eq!(reveals.len(), 1, "one record per reveal");
    let summary = reveals[0].1.reveal_summary().expect("the record names the fields");
    assert_eq!(summary.shown.len() + summary.refused.len(), reveal.fields.len());
}

#[test]
fn an_audit_event_edited_after_it_was_queued_reaches_dispatch_edited_and_fails_its_check() {
    // The outbox refers to the chain row instead of copying it, so whoever edits the row with
    // sqlite3 before the sync edits what dispatch gets; the chain check there catches it.
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    d.tv.vault.advance(job, JobState::OnSite).unwrap();
    d.tv.vault.reveal(job).unwrap();
    let db = rusqlite::Connection::open(d.tv.dir.path().join("vault.db")).unwrap();
    let edited = db
        .execute("UPDATE audit SET detail = 'shown: -; refused: -' WHERE kind IN ('reveal', 'reveal-denied')", [])
        .unwrap();
    assert_eq!(edited, 1);
    drop(db);
    let online = Scripted::new(ack_all(&d));
    d.tv.vault.sync(&online).unwrap();
    let records = audit_records(&pushed(&online));
    let at = records.iter().position(|(_, r)| r.kind == jobseal::AuditKind::Reveal).unwrap();
    assert_eq!(records[at].1.detail.as_deref(), Some("shown: -; refused: -"));
    assert_eq!(jobseal::audit::verify_records(Some(&audit_key(&d)), None, &records), Err(records[at].1.seq));
}

/// A refused field's row renamed with sqlite3 (here into text that would break the reveal's
/// summary line) is authenticated like a shown one: its AAD binds the name, so the reveal is
/// refused as tampered and records nothing, and the summary never carries an unchecked name.
/// Found by an attacker-style review: before the fix the device wrote the bad name into the event
/// and both typed views (FFI, dispatch) lost the four fields it had shown.
#[test]
fn a_renamed_refused_field_cannot_hide_what_a_reveal_showed() {
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    d.tv.vault.advance(job, JobState::EnRoute).unwrap(); // door_code (on-site only) is refused
    let before = d.tv.vault.audit_log(None).unwrap().len();
    let db = rusqlite::Connection::open(d.tv.dir.path().join("vault.db")).unwrap();
    db.execute(
        "UPDATE fields SET name = 'door_code; refused: -' WHERE job_id = ?1 AND name = 'door_code'",
        [job.to_string()],
    )
    .unwrap();
    assert!(matches!(d.tv.vault.reveal(job), Err(Error::Tampered(_))));
    assert_eq!(d.tv.vault.audit_log(None).unwrap().len(), before, "a refused reveal recorded an event");
    // Renamed back, the reveal works and its one event names every field.
    db.execute(
        "UPDATE fields SET name = 'door_code' WHERE job_id = ?1 AND name = 'door_code; refused: -'",
        [job.to_string()],
    )
    .unwrap();
    let reveal = d.tv.vault.reveal(job).unwrap();
    let online = Scripted::new(ack_all(&d));
    d.tv.vault.sync(&online).unwrap();
    let records = audit_records(&pushed(&online));
    let (_, record) = records.iter().find(|(_, r)| r.kind == jobseal::AuditKind::Reveal).unwrap();
    let summary = record.reveal_summary().expect("a reveal record names its fields");
    assert_eq!(summary.shown.len() + summary.refused.len(), reveal.fields.len());
    assert!(summary.refused.iter().any(|(name, code)| name == "door_code" && code == "wrong-state"));
}

/// Dispatch asks for 15 prekeys from a device that already holds 505 (more than one call may
/// carry): only the 15 new ones go up. Before the fix every unused prekey was uploaded again, so
/// once a device held more than 500, every top-up failed on dispatch's per-call limit.
#[test]
fn a_top_up_uploads_only_the_new_prekeys() {
    let d = enrolled_device();
    d.tv.vault.add_prekeys(500).unwrap();
    let held_before: Vec<u32> = d.tv.vault.device_bundle().unwrap().prekeys.iter().map(|p| p.id).collect();
    assert_eq!(held_before.len(), 505);
    let key = d.answer_key();
    let mut asked = false;
    let t = Scripted::new(move |req| {
        if req.path.ends_with("/prekeys") {
            let up: wire::PrekeysRequest = serde_json::from_slice(&req.body).unwrap();
            let n = up.prekeys.len() as u32;
            let answer = wire::PrekeysResponse { accepted: n, available: n };
            return Some(HttpResponse {
                status: 200,
                body: key.seal(AnsweredCall::Prekeys, &up.nonce, &answer).unwrap(),
            });
        }
        let sync: SyncRequest = serde_json::from_slice(&req.body).unwrap();
        let wanted = if asked { 0 } else { 15 };
        asked = true;
        signed(
            &key,
            req,
            &SyncResponse {
                server_time: at(200),
                acked: sync.events.iter().map(|e| e.key).collect(),
                envelopes: vec![],
                revocations: vec![],
                prekeys_available: 5,
                prekeys_wanted: wanted,
                prekey_floor: None,
            },
        )
    });
    let report = d.tv.vault.sync(&t).unwrap();
    assert_eq!(report.prekeys_uploaded, 15);
    let uploads: Vec<wire::PrekeysRequest> = t
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path.ends_with("/prekeys"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert_eq!(uploads.len(), 1);
    assert_eq!(uploads[0].prekeys.len(), 15, "prekeys dispatch already holds were uploaded again");
    assert!(uploads[0].prekeys.iter().all(|p| !held_before.contains(&p.id)));
}

/// An authenticated prekey answer claims more prekeys accepted than were sent (u32::MAX), in
/// every round of a sync: the report counts what was sent, and nothing overflows. Before the fix
/// the total was a plain `+=` of dispatch's numbers, an overflow panic in the second round (found
/// by the `device_answers` fuzz target, `fuzz/corpus/device_answers/regression-prekeys-accepted-overflow`).
#[test]
fn a_prekey_answer_claiming_more_than_was_sent_counts_what_was_sent() {
    let d = enrolled_device();
    d.tv.vault.ingest(&sheet(Uuid::new_v4(), 1)).unwrap();
    let key = d.answer_key();
    let t = Scripted::new(move |req| {
        if req.path.ends_with("/prekeys") {
            let up: wire::PrekeysRequest = serde_json::from_slice(&req.body).unwrap();
            let answer = wire::PrekeysResponse { accepted: u32::MAX, available: u32::MAX };
            return Some(HttpResponse {
                status: 200,
                body: key.seal(AnsweredCall::Prekeys, &up.nonce, &answer).unwrap(),
            });
        }
        // Acknowledges nothing, so every round has events to push and the sync goes on.
        signed(
            &key,
            req,
            &SyncResponse {
                server_time: at(200),
                acked: vec![],
                envelopes: vec![],
                revocations: vec![],
                prekeys_available: 0,
                prekeys_wanted: 3,
                prekey_floor: None,
            },
        )
    });
    let report = d.tv.vault.sync(&t).unwrap();
    assert!(report.rounds > 1, "the sync stopped after one round");
    assert_eq!(report.prekeys_uploaded, 3 * report.rounds);
}

/// Dispatch says every prekey below 4 is spent (one of them was sealed to for an envelope it
/// withdrew before the device fetched it): the device deletes their private halves, so that
/// envelope, if anyone kept it, can never be opened.
#[test]
fn prekeys_below_dispatchs_floor_are_deleted() {
    let d = enrolled_device();
    let key = d.answer_key();
    let t = Scripted::new(move |req| {
        let sync: SyncRequest = serde_json::from_slice(&req.body).unwrap();
        signed(
            &key,
            req,
            &SyncResponse {
                server_time: at(200),
                acked: sync.events.iter().map(|e| e.key).collect(),
                envelopes: vec![],
                revocations: vec![],
                prekeys_available: 2,
                prekeys_wanted: 0,
                prekey_floor: Some(4),
            },
        )
    });
    // An envelope sealed to prekey 2 and then withdrawn by dispatch: the device never saw it.
    let withdrawn =
        jobseal::seal_job_sheet(&d.dispatch, &d.bundle, Some(2), sheet_value(Uuid::new_v4(), 1).to_string().as_bytes())
            .unwrap();
    d.tv.vault.sync(&t).unwrap();
    let ids: Vec<u32> = d.tv.vault.device_bundle().unwrap().prekeys.iter().map(|p| p.id).collect();
    assert_eq!(ids, [4, 5]);
    assert!(matches!(d.tv.vault.receive(&withdrawn), Err(Error::PrekeyUnavailable(2))));
}

/// A vault enrolled before keyed audit chains (simulated: its chain re-linked with plain SHA-256,
/// its chain key and the keyed-from mark removed) keys its chain from its next event when it
/// opens. Found by review: such a vault never derived the key, and dispatch kept accepting
/// unkeyed links from it.
#[test]
fn a_vault_enrolled_before_keyed_chains_keys_its_next_events() {
    use jobseal::audit::{chain_hash, event_hash, NewEvent};
    let d = enrolled_device();
    let job = Uuid::new_v4();
    d.tv.vault.ingest(&sheet(job, 1)).unwrap();
    let dir = d.tv.dir.path().to_path_buf();
    let Device { tv, dispatch, bundle } = d;
    let jobseal_testkit::device::TestVault { vault, clock, dir: tmp } = tv;
    drop(vault);
    jobseal_testkit::device::relink_audit_chain_unkeyed(&dir.join("vault.db"), |_| {});
    {
        let conn = rusqlite::Connection::open(dir.join("vault.db")).unwrap();
        conn.execute_batch(
            "DELETE FROM secrets WHERE id = 'device:audit-key'; DELETE FROM meta WHERE key = 'audit_keyed_from';",
        )
        .unwrap();
    }
    let vault = jobseal_testkit::device::open_vault(&dir, clock).unwrap();
    let head = vault.verify_audit().unwrap();
    assert!(head.valid, "{:?}", head.problem);
    vault.advance(job, JobState::EnRoute).unwrap();
    assert!(vault.verify_audit().unwrap().valid);
    // The new event's link is keyed under the key dispatch derives; the earlier ones stay plain.
    let key = jobseal::audit::AuditKey::derive(&dispatch, &bundle.identity_key, bundle.device_id).unwrap();
    let events = vault.audit_log(None).unwrap();
    let last = events.last().unwrap();
    let prev = &events[events.len() - 2];
    let e = NewEvent {
        at_ms: last.at.timestamp_millis(),
        job_id: last.job_id,
        kind: last.kind,
        field: last.field.clone(),
        state: last.state,
        detail: last.detail.clone(),
    };
    let prev_hash = jobseal::hex::decode(&prev.hash).unwrap();
    assert_eq!(jobseal::hex::encode(&chain_hash(Some(&key), last.seq, &e, &prev_hash)), last.hash);
    assert_ne!(jobseal::hex::encode(&event_hash(last.seq, &e, &prev_hash)), last.hash);
    drop(tmp);
}

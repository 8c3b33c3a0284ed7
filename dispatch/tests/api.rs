//! The dispatch server from outside, over a real socket: devices built with the real core (a vault
//! on disk, or keys made by hand where the test needs the device's secrets), a plain HTTP client,
//! and the operator views as the only window into what the server did.

use chrono::Duration;
use jobseal::enrolment::{build_request, open_answer_token, EnrolmentCode};
use jobseal::envelope::{generate_keypair, SecretKey};
use jobseal::receipt::{ReceiptKey, ShredReceipt};
use jobseal::sync::wire::{
    AuditRecord, EnrolRequest, EnrolResponse, EventBody, OutboxEvent, PrekeysResponse, RevocationReason, SyncResponse,
    MAX_BODY_BYTES,
};
use jobseal::{DeviceBundle, JobState, Prekey, PublicKey, RecipientKeyId, ShredOutcome, Vault, BUNDLE_FORMAT};
use jobseal_dispatch::{
    ChainMark, CodeStatus, DeliveryStatus, EnrolmentCodeView, IssuedCode, JobStatus, JobView, RevocationStatus,
    WipeResponse,
};
use jobseal_testkit::device::{vault_at, TestVault};
use jobseal_testkit::server::{TestDispatch, OPERATOR_TOKEN as OPERATOR};
use jobseal_testkit::sheet::{t0, Sheet};
use jobseal_testkit::{ok, Answer, Client, Operator};
use serde_json::{json, Value};
use uuid::Uuid;

/// A value that must never come back in an error message.
const CANARY: &str = "+33 6 99 CANARY 42";

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// The server under test, its operator's console, and a plain client for requests with any token
/// or none. Devices' calls are made by hand here: the API, not the core's sync engine, is under
/// test.
struct Dispatch {
    kit: TestDispatch,
    op: Operator,
    http: Client,
}

impl Dispatch {
    fn start() -> Dispatch {
        let kit = TestDispatch::start();
        let (op, http) = (kit.operator(), kit.client());
        Dispatch { kit, op, http }
    }

    /// Stops the server and starts it on the same database (and a new port).
    fn restart(&mut self) {
        self.kit.restart();
        (self.op, self.http) = (self.kit.operator(), self.kit.client());
    }

    fn key(&self) -> PublicKey {
        self.kit.key()
    }

    // Device calls.

    /// Posts an enrolment request as built by the device (or by an attacker).
    fn enrol_raw(&self, req: &EnrolRequest) -> Answer {
        self.http.post("/v1/enrol", None, &serde_json::to_value(req).unwrap())
    }

    /// A fresh one-time enrolment code from the operator, as the technician types it.
    fn code(&self) -> EnrolmentCode {
        EnrolmentCode::parse(&self.op.issue_code().code).unwrap()
    }

    fn sync_raw(&self, token: &str, device: Uuid, events: &[OutboxEvent]) -> Answer {
        self.http.post("/v1/sync", Some(token), &json!({"device_id": device, "events": events, "nonce": NONCE}))
    }

    /// A sync's answer, taken out of its authenticated wrapper without checking the MAC (the API,
    /// not the device, is under test here; `answers_are_authenticated_for_the_request_and_the_device`
    /// checks the MAC).
    fn sync(&self, token: &str, device: Uuid, events: &[OutboxEvent]) -> SyncResponse {
        unwrap_answer(self.sync_raw(token, device, events))
    }

    fn prekeys(&self, token: &str, prekeys: &[Prekey]) -> PrekeysResponse {
        unwrap_answer(self.prekeys_raw(Some(token), &json!(prekeys)))
    }

    fn prekeys_raw(&self, token: Option<&str>, prekeys: &Value) -> Answer {
        self.http.post("/v1/prekeys", token, &json!({"prekeys": prekeys, "nonce": NONCE}))
    }
}

/// The nonce of the hand-made device requests (a real device draws a fresh one each time).
pub(super) const NONCE: &str = "6e6f6e63652d666f722d746573742d6f6e6c792d6e6f742d72616e646f6d2121";

/// The `answer` of an authenticated 200 answer.
pub(super) fn unwrap_answer<T: serde::de::DeserializeOwned>(answer: Answer) -> T {
    let body: Value = ok(answer);
    assert_eq!(body.as_object().map(|o| o.len()), Some(2), "not an authenticated answer: {body}");
    assert!(body["mac"].as_str().is_some_and(|m| m.len() == 64), "no MAC: {body}");
    serde_json::from_value(body["answer"].clone()).expect("the answer has the expected shape")
}

impl Dispatch {}

/// Asserts the `wire::ErrorBody` shape and status, and that no canary leaked into it.
fn assert_error(answer: Answer, status: u16, code: &str) {
    let (got, body) = answer;
    assert_eq!(got, status, "wrong status; body: {body}");
    let error = body.get("error").unwrap_or_else(|| panic!("no error object in {body}"));
    assert_eq!(error["code"], code, "{body}");
    assert!(error["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(error.as_object().unwrap().len(), 2, "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert!(!body.to_string().contains("CANARY"), "an error echoed request content: {body}");
}

/// A valid sheet with obviously fake customer values; the phone is the canary.
pub(super) fn sheet(job: Uuid, version: u64) -> Value {
    Sheet::new(job).version(version).only(&["customer_name", "phone", "door_code"]).value("phone", CANARY).json()
}

pub(super) fn event(job: Option<Uuid>, seq: u64, body: EventBody) -> OutboxEvent {
    OutboxEvent { key: Uuid::now_v7(), seq, job_id: job, at: t0() + Duration::seconds(seq as i64), body }
}

/// A device whose secrets live in a real vault on disk.
struct VaultDevice {
    vault: Vault,
    id: Uuid,
    token: String,
    _dir: tempfile::TempDir,
}

fn vault_device(d: &Dispatch, prekeys: u32) -> VaultDevice {
    let TestVault { vault, dir, .. } = vault_at(0);
    // The device enrols through the core's sync engine, with a code the operator issued.
    let bundle = d.kit.enrol(&vault, prekeys);
    assert_eq!(vault.dispatch_key().unwrap(), d.key());
    let token = vault.device_token_insecure_for_testing().unwrap().expect("token stored");
    VaultDevice { vault, id: bundle.device_id, token, _dir: dir }
}

/// A device made by hand, so the test holds its identity secret (to sign real shred receipts and
/// make enrolment proofs).
pub(super) struct HandDevice {
    identity: SecretKey,
    bundle: DeviceBundle,
    pub(super) id: Uuid,
    pub(super) token: String,
}

/// A bundle of a new device with `prekeys` prekeys, and its identity secret.
fn hand_bundle(prekeys: u32) -> (SecretKey, DeviceBundle) {
    let (identity, identity_key) = generate_keypair().unwrap();
    let prekeys =
        (1..=prekeys).map(|i| Prekey { id: i, public_key: generate_keypair().unwrap().1 }).collect::<Vec<_>>();
    (identity, DeviceBundle { format: BUNDLE_FORMAT.into(), device_id: Uuid::new_v4(), identity_key, prekeys })
}

/// Opens the token of an enrolment answer the way the device does; `None` if it does not open.
fn open_token(identity: &SecretKey, d: &Dispatch, req: &EnrolRequest, answer: &EnrolResponse) -> Option<String> {
    open_token_from(identity, &d.key(), req, answer)
}

/// [`open_token`] for an answer of the dispatch with key `dispatch`.
fn open_token_from(identity: &SecretKey, dispatch: &PublicKey, req: &EnrolRequest, answer: &EnrolResponse) -> Option<String> {
    open_answer_token(
        identity,
        dispatch,
        req.bundle.device_id,
        &req.nonce,
        answer.server_time.timestamp_millis(),
        &answer.sealed_device_token,
    )
    .ok()
    .map(|t| t.to_string())
}

fn hand_device(d: &Dispatch, prekeys: u32) -> HandDevice {
    enrol_hand_device(&d.http, &d.op, &d.key(), prekeys)
}

/// Enrols a new hand-made device with `prekeys` prekeys through `http`, with a code `op` issues
/// (the two may be different instances of one dispatch).
pub(super) fn enrol_hand_device(http: &Client, op: &Operator, dispatch: &PublicKey, prekeys: u32) -> HandDevice {
    let (identity, bundle) = hand_bundle(prekeys);
    let code = EnrolmentCode::parse(&op.issue_code().code).unwrap();
    let req = build_request(bundle.clone(), &identity, dispatch, Some(&code)).unwrap();
    let enrolled: EnrolResponse = ok(http.post("/v1/enrol", None, &serde_json::to_value(&req).unwrap()));
    let token = open_token_from(&identity, dispatch, &req, &enrolled).expect("the token is sealed to the identity key");
    HandDevice { identity, id: bundle.device_id, bundle, token }
}

impl HandDevice {
    pub(super) fn receipt(&self, dispatch: PublicKey, job: Uuid, version: u64) -> ShredReceipt {
        ReceiptKey::derive(&self.identity, &dispatch, self.id).unwrap().sign(self.id, &shred(job, version))
    }
}

/// What a shred of `job` on a device reports.
fn shred(job: Uuid, version: u64) -> ShredOutcome {
    ShredOutcome { job_id: job, version, state: JobState::Revoked, shredded_at: t0(), epoch: 3, fields_destroyed: 3 }
}

/// The vault's audit log as the wire carries it, with each event's job id.
fn audit_records(vault: &Vault) -> Vec<(Option<Uuid>, AuditRecord)> {
    let mut prev = vec![0u8; 32];
    vault
        .audit_log(None)
        .unwrap()
        .into_iter()
        .map(|e| {
            let hash = jobseal::hex::decode(&e.hash).unwrap();
            let record = AuditRecord {
                seq: e.seq,
                at_ms: e.at.timestamp_millis(),
                kind: e.kind,
                field: e.field,
                state: e.state,
                detail: e.detail,
                prev_hash: std::mem::replace(&mut prev, hash.clone()),
                hash,
            };
            (e.job_id, record)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[test]
fn enrolment_gives_a_sealed_token_renews_it_for_the_same_device_and_refuses_bad_bundles() {
    let d = Dispatch::start();
    let (status, key) = d.http.get("/v1/dispatch-key", None);
    assert_eq!(status, 200);
    assert_eq!(key, json!({"dispatch_key": d.key().to_string()}));

    let dev = vault_device(&d, 10);
    assert_eq!(dev.token.len(), 64);
    let view = d.op.device(dev.id);
    assert_eq!(view.prekeys_available, 10);
    assert_eq!(view.identity_key, dev.vault.device_bundle().unwrap().identity_key);

    // The same device enrolling again (its answer was lost), with the proof of its identity key,
    // gets a new token, sealed so that only its identity key opens it; the old token stops
    // working and nothing else changes.
    let hand = hand_device(&d, 4);
    let before = d.op.device(hand.id);
    let again = build_request(hand.bundle.clone(), &hand.identity, &d.key(), None).unwrap();
    let answer: EnrolResponse = ok(d.enrol_raw(&again));
    assert_eq!(answer.device_id, hand.id);
    let token = open_token(&hand.identity, &d, &again, &answer).expect("the new token opens");
    assert_ne!(token, hand.token);
    assert_error(d.sync_raw(&hand.token, hand.id, &[]), 401, "unauthorized");
    d.sync(&token, hand.id, &[]);
    assert_eq!(d.op.device(hand.id).prekeys_available, before.prekeys_available);
    // Another identity key under the same device id is refused, and changes nothing.
    let (other, other_key) = generate_keypair().unwrap();
    let mut impostor = hand.bundle.clone();
    impostor.identity_key = other_key;
    let impostor = build_request(impostor, &other, &d.key(), Some(&d.code())).unwrap();
    let before = d.op.device(hand.id);
    assert_error(d.enrol_raw(&impostor), 409, "conflict");
    assert_eq!(d.op.device(hand.id), before);
    d.sync(&token, hand.id, &[]);

    // Weak keys never get in: all-zero and low-order identity keys, a low-order prekey.
    let (identity, bundle) = hand_bundle(2);
    let good = serde_json::to_value(build_request(bundle, &identity, &d.key(), Some(&d.code())).unwrap()).unwrap();
    for weak in [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ] {
        let mut b = good.clone();
        b["bundle"]["identity_key"] = json!(weak);
        assert_error(d.http.post("/v1/enrol", None, &b), 400, "bad_request");
        let mut b = good.clone();
        b["bundle"]["prekeys"][0]["public_key"] = json!(weak);
        assert_error(d.http.post("/v1/enrol", None, &b), 400, "bad_request");
    }
    let mut b = good.clone();
    b["bundle"]["format"] = json!("jobseal.bundle.v0");
    assert_error(d.http.post("/v1/enrol", None, &b), 400, "bad_request");
    let mut b = good.clone();
    b["bundle"]["prekeys"][1]["id"] = b["bundle"]["prekeys"][0]["id"].clone();
    assert_error(d.http.post("/v1/enrol", None, &b), 400, "bad_request");
    let mut b = good.clone();
    b["nonce"] = json!("00");
    assert_error(d.http.post("/v1/enrol", None, &b), 400, "bad_request");
    // A protocol v1 request (a bare bundle) and a v1 format tag are refused, clearly.
    assert_error(d.http.post("/v1/enrol", None, &json!({"bundle": good["bundle"]})), 400, "bad_request");
    let mut b = good.clone();
    b["format"] = json!("jobseal.enrol.v1");
    let (status, body) = d.http.post("/v1/enrol", None, &b);
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("jobseal.enrol.v2"), "{body}");
    let id: Uuid = serde_json::from_value(good["bundle"]["device_id"].clone()).unwrap();
    assert_error(d.http.get(&format!("/v1/operator/devices/{id}"), Some(OPERATOR)), 404, "not_found");
    // None of those used the code: the good request still enrols.
    let _: EnrolResponse = ok(d.http.post("/v1/enrol", None, &good));
}

#[test]
fn a_path_id_that_is_not_utf8_gets_the_one_error_shape_after_the_credentials_check() {
    // Found while extending the dispatch_api fuzz target to such ids: axum answered them with a
    // plain-text 400 of its own, before the credentials were checked.
    let d = Dispatch::start();
    for path in ["/v1/operator/jobs/%FF", "/v1/operator/devices/%C3%28"] {
        assert_error(d.http.get(path, Some(OPERATOR)), 400, "bad_request");
        assert_error(d.http.get(path, None), 401, "unauthorized");
    }
    for path in [
        "/v1/operator/jobs/%FF/cancel",
        "/v1/operator/jobs/%FF/reassign",
        "/v1/operator/devices/%FF/wipe",
        "/v1/operator/enrolment-codes/%FF/revoke",
    ] {
        assert_error(d.http.post(path, Some(OPERATOR), &json!({})), 400, "bad_request");
        assert_error(d.http.post(path, None, &json!({})), 401, "unauthorized");
    }
}

#[test]
fn a_sealed_sheet_opens_on_the_device_and_stops_being_offered_once_received() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 10);
    let job = Uuid::new_v4();
    let created = d.op.create_job(dev.id, &sheet(job, 1));
    assert_eq!(created.sealed_to, Some(RecipientKeyId::Prekey(1)));
    assert_eq!((created.job_id, created.version, created.device_id), (job, 1, dev.id));
    assert_eq!(d.op.job(job).delivery.unwrap().status, DeliveryStatus::Pending);

    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!(pull.envelopes.len(), 1);
    assert_eq!((pull.envelopes[0].job_id, pull.envelopes[0].version), (job, 1));
    assert_eq!(pull.prekeys_available, 9);
    assert_eq!(pull.prekeys_wanted, 0);
    assert!(pull.revocations.is_empty() && pull.acked.is_empty());

    // The real vault opens what the server sealed.
    let info = dev.vault.receive(&pull.envelopes[0].envelope).unwrap();
    assert_eq!((info.job_id, info.version), (job, 1));
    assert_eq!(info.delivered_via, Some(RecipientKeyId::Prekey(1)));

    // Still offered until the device says it has it.
    assert_eq!(d.sync(&dev.token, dev.id, &[]).envelopes.len(), 1);
    let received = event(Some(job), 1, EventBody::Received { version: 1, via: RecipientKeyId::Prekey(1) });
    let pull = d.sync(&dev.token, dev.id, std::slice::from_ref(&received));
    assert_eq!(pull.acked, vec![received.key]);
    assert!(pull.envelopes.is_empty());
    let view = d.op.job(job);
    let delivery = view.delivery.unwrap();
    assert_eq!(delivery.status, DeliveryStatus::Received);
    assert_eq!(delivery.via, Some(RecipientKeyId::Prekey(1)));
    assert_eq!(view.status, JobStatus::Open);

    // A newer version is sealed to the next prekey and opens too; an older or equal one is refused.
    assert_eq!(d.op.create_job(dev.id, &sheet(job, 2)).sealed_to, Some(RecipientKeyId::Prekey(2)));
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!(pull.envelopes.len(), 1);
    assert_eq!(dev.vault.receive(&pull.envelopes[0].envelope).unwrap().version, 2);
    for v in [1, 2] {
        let body = json!({"device_id": dev.id, "sheet": sheet(job, v)});
        assert_error(d.http.post("/v1/operator/jobs", Some(OPERATOR), &body), 409, "conflict");
    }

    // A rejected envelope stops being offered and the reason is kept; "received" is never undone.
    let job2 = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job2, 1));
    let rejected = event(Some(job2), 2, EventBody::Rejected { version: 1, reason: "stale version".into() });
    let late = event(Some(job), 3, EventBody::Rejected { version: 2, reason: "stale version".into() });
    let received2 = event(Some(job), 4, EventBody::Received { version: 2, via: RecipientKeyId::Prekey(2) });
    let pull = d.sync(&dev.token, dev.id, &[received2, late.clone(), rejected.clone()]);
    assert_eq!(pull.acked.len(), 3);
    assert!(pull.envelopes.is_empty());
    let view2 = d.op.job(job2).delivery.unwrap();
    assert_eq!((view2.status, view2.reason.as_deref()), (DeliveryStatus::Rejected, Some("stale version")));
    assert_eq!(d.op.job(job).delivery.unwrap().status, DeliveryStatus::Received);
}

#[test]
fn each_event_key_is_applied_once_and_acknowledged_every_time() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 10);
    let job = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job, 1));

    let state = event(Some(job), 1, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute });
    let report = event(Some(job), 2, EventBody::Report { text: "Fitted the outlet.".into() });
    // Twice in one request.
    let pull = d.sync(&dev.token, dev.id, &[state.clone(), report.clone(), state.clone(), report.clone()]);
    assert_eq!(pull.acked, vec![state.key, report.key]);
    let before = d.op.job(job);
    assert_eq!(before.history.len(), 1);
    assert_eq!(before.state, Some(JobState::EnRoute));
    assert_eq!(before.report.as_ref().unwrap().text, "Fitted the outlet.");

    // And again in a later request (the device lost the first answer).
    let pull = d.sync(&dev.token, dev.id, &[state.clone(), report.clone()]);
    assert_eq!(pull.acked, vec![state.key, report.key]);
    assert_eq!(d.op.job(job), before);
    assert_eq!(d.op.device(dev.id).events_applied, 2);

    // A nil key is never acknowledged.
    let mut nil = event(Some(job), 3, EventBody::Report { text: "other".into() });
    nil.key = Uuid::nil();
    assert!(d.sync(&dev.token, dev.id, &[nil]).acked.is_empty());
    assert_eq!(d.op.job(job).report, before.report);

    // Events about jobs the device never held are acknowledged and ignored.
    let stray = event(Some(Uuid::new_v4()), 4, EventBody::State { from: JobState::Assigned, to: JobState::OnSite });
    assert_eq!(d.sync(&dev.token, dev.id, std::slice::from_ref(&stray)).acked, vec![stray.key]);
    assert_eq!(d.op.job(job).history, before.history);
}

/// The device's report that it holds the job's sheet (its outbox sends it before any audit
/// record about the job): from then on its records are the job's history.
fn received_event(d: &Dispatch, job: Uuid) -> OutboxEvent {
    let delivery = d.op.job(job).delivery.expect("a delivery");
    event(Some(job), 1, EventBody::Received { version: delivery.version, via: delivery.sealed_to })
}

#[test]
fn out_of_order_batches_are_applied_correctly() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 10);
    let job = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job, 1));
    let pull = d.sync(&dev.token, dev.id, &[]);
    dev.vault.receive(&pull.envelopes[0].envelope).unwrap();
    d.sync(&dev.token, dev.id, &[received_event(&d, job)]);
    dev.vault.advance(job, JobState::EnRoute).unwrap();
    dev.vault.advance(job, JobState::OnSite).unwrap();
    dev.vault.reveal(job).unwrap();

    // The newer state arrives first; the older one must not overwrite it.
    let s1 = event(Some(job), 10, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute });
    let s2 = event(Some(job), 11, EventBody::State { from: JobState::EnRoute, to: JobState::OnSite });
    d.sync(&dev.token, dev.id, std::slice::from_ref(&s2));
    d.sync(&dev.token, dev.id, std::slice::from_ref(&s1));
    let view = d.op.job(job);
    assert_eq!(view.state, Some(JobState::OnSite));
    assert_eq!(view.history.iter().map(|h| h.to).collect::<Vec<_>>(), vec![JobState::EnRoute, JobState::OnSite]);

    // The vault's real audit chain, pushed in a scrambled order across requests, verifies.
    let records = audit_records(&dev.vault);
    assert!(records.len() >= 5, "{}", records.len());
    let events: Vec<OutboxEvent> =
        records.iter().map(|(job, r)| event(*job, 100 + r.seq, EventBody::Audit(r.clone()))).collect();
    let (first, rest) = events.split_at(2);
    let mut reversed = rest.to_vec();
    reversed.reverse();
    let pull = d.sync(&dev.token, dev.id, &reversed);
    assert_eq!(pull.acked.len(), reversed.len());
    let chain = d.op.device(dev.id).audit_chain;
    assert_eq!((chain.verified_up_to, chain.pending), (0, rest.len() as u64));
    d.sync(&dev.token, dev.id, &[first[1].clone(), first[0].clone()]);
    let chain = d.op.device(dev.id).audit_chain;
    assert!(chain.intact, "{chain:?}");
    assert_eq!(chain.verified_up_to, records.len() as u64);
    assert_eq!((chain.events_received, chain.pending), (records.len() as u64, 0));
    let view = d.op.job(job);
    assert!(view.audit_events.iter().any(|a| a.reveal.as_ref().is_some_and(|r| r
        .shown
        .iter()
        .chain(r.refused.iter().map(|(f, _)| f))
        .any(|f| f == "door_code"))));
    assert!(view.audit_events.iter().all(|a| a.chain == ChainMark::Verified));
    // The operator view never carries a customer value, only field names.
    assert!(!serde_json::to_string(&view).unwrap().contains("CANARY"));

    // The same record re-sent under a new key is a duplicate, not a fork.
    let again = event(records[0].0, 500, EventBody::Audit(records[0].1.clone()));
    d.sync(&dev.token, dev.id, &[again]);
    assert_eq!(d.op.device(dev.id).audit_chain, chain);
}

#[test]
fn a_broken_audit_chain_is_kept_and_flagged_never_refused() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 10);
    let job = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job, 1));
    let pull = d.sync(&dev.token, dev.id, &[]);
    dev.vault.receive(&pull.envelopes[0].envelope).unwrap();
    d.sync(&dev.token, dev.id, &[received_event(&d, job)]);
    dev.vault.advance(job, JobState::OnSite).unwrap();
    dev.vault.reveal(job).unwrap();
    let mut records = audit_records(&dev.vault);
    assert!(records.len() >= 4);
    // An edited field name in the third event: the hash no longer matches.
    records[2].1.field = Some("edited".into());
    let events: Vec<OutboxEvent> =
        records.iter().map(|(job, r)| event(*job, r.seq, EventBody::Audit(r.clone()))).collect();
    let pull = d.sync(&dev.token, dev.id, &events);
    assert_eq!(pull.acked.len(), events.len(), "a broken chain must still be acknowledged");
    let chain = d.op.device(dev.id).audit_chain;
    assert!(!chain.intact);
    assert_eq!(chain.broken_at, Some(records[2].1.seq));
    assert_eq!(chain.verified_up_to, records[1].1.seq);
    assert_eq!(chain.events_received, records.len() as u64);
    let view = d.op.job(job);
    assert_eq!(view.audit_chain, chain);
    assert!(view.audit_events.iter().any(|a| a.chain == ChainMark::Broken));
}

#[test]
fn cancel_revokes_until_a_verified_receipt_arrives_and_forged_ones_do_not_count() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 5);
    let job = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job, 1));
    let view: JobView = ok(d.op.cancel(job));
    assert_eq!(view.status, JobStatus::Cancelled);
    assert_eq!(view.delivery.unwrap().status, DeliveryStatus::Withdrawn);
    assert_eq!(view.revocations.len(), 1);
    assert_eq!(view.revocations[0].reason, RevocationReason::Cancelled);
    assert_eq!(view.revocations[0].status, RevocationStatus::Pending);

    let pull = d.sync(&dev.token, dev.id, &[]);
    assert!(pull.envelopes.is_empty(), "the undelivered envelope is dropped");
    assert_eq!(pull.revocations.len(), 1);
    assert_eq!((pull.revocations[0].job_id, pull.revocations[0].reason), (job, RevocationReason::Cancelled));

    // Forged: signed with a key that is not the device's. Edited: a real receipt, altered.
    let (other, _) = generate_keypair().unwrap();
    let forged = ReceiptKey::derive(&other, &d.key(), dev.id).unwrap().sign(dev.id, &shred(job, 1));
    let mut edited = dev.receipt(d.key(), job, 1);
    edited.fields_destroyed = 2;
    for (seq, bad) in [(1, forged), (2, edited)] {
        let e = event(Some(job), seq, EventBody::Receipt(bad));
        let pull = d.sync(&dev.token, dev.id, std::slice::from_ref(&e));
        assert_eq!(pull.acked, vec![e.key]);
        assert_eq!(pull.revocations.len(), 1, "an unverified receipt must not end the revocation");
    }
    let view = d.op.job(job);
    assert_eq!(view.receipts.len(), 2);
    assert!(view.receipts.iter().all(|r| !r.verified));
    assert!(!view.receipt.as_ref().unwrap().verified);
    assert_eq!(view.revocations[0].status, RevocationStatus::Pending);

    // An authentic receipt from another device (one that never held the job) does not end
    // this device's revocation either, and is not kept with the job.
    let other_dev = hand_device(&d, 1);
    let foreign = event(Some(job), 1, EventBody::Receipt(other_dev.receipt(d.key(), job, 1)));
    assert_eq!(d.sync(&other_dev.token, other_dev.id, std::slice::from_ref(&foreign)).acked, vec![foreign.key]);
    assert_eq!(d.sync(&dev.token, dev.id, &[]).revocations.len(), 1);

    let real = event(Some(job), 3, EventBody::Receipt(dev.receipt(d.key(), job, 1)));
    let pull = d.sync(&dev.token, dev.id, &[real]);
    assert!(pull.revocations.is_empty());
    let view = d.op.job(job);
    assert_eq!(view.revocations[0].status, RevocationStatus::Confirmed);
    assert_eq!(view.receipts.iter().map(|r| r.verified).collect::<Vec<_>>(), vec![false, false, true]);
    assert!(view.receipts.iter().all(|r| r.device_id == dev.id), "a receipt from a device that never held the job");
    let settled = view.receipt.clone().unwrap();
    assert!(settled.verified);
    assert_eq!(settled.receipt, dev.receipt(d.key(), job, 1));
    assert_eq!(view.revocation.as_ref().unwrap().status, RevocationStatus::Confirmed);

    // A cancelled job cannot be cancelled again, reassigned or sent again.
    assert_error(d.op.cancel(job), 409, "conflict");
    assert_error(d.op.reassign(job, other_dev.id), 409, "conflict");
    let body = json!({"device_id": dev.id, "sheet": sheet(job, 2)});
    assert_error(d.http.post("/v1/operator/jobs", Some(OPERATOR), &body), 409, "conflict");
    assert_eq!(d.op.job(job), view);
}

#[test]
fn reassign_revokes_the_old_device_and_seals_for_the_new_one() {
    let d = Dispatch::start();
    let a = vault_device(&d, 10);
    let b = vault_device(&d, 10);
    let job = Uuid::new_v4();
    d.op.create_job(a.id, &sheet(job, 1));
    let pull = d.sync(&a.token, a.id, &[]);
    a.vault.receive(&pull.envelopes[0].envelope).unwrap();
    let received = event(Some(job), 1, EventBody::Received { version: 1, via: RecipientKeyId::Prekey(1) });
    let enroute = event(Some(job), 2, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute });
    d.sync(&a.token, a.id, &[received, enroute]);
    assert_eq!(d.op.job(job).state, Some(JobState::EnRoute));

    let view: JobView = ok(d.op.reassign(job, b.id));
    assert_eq!(view.device_id, b.id);
    assert_eq!(view.state, None, "the new device has not reported yet");
    assert_eq!(view.revocations.len(), 1);
    assert_eq!((view.revocations[0].device_id, view.revocations[0].reason), (a.id, RevocationReason::Reassigned));

    let pull_a = d.sync(&a.token, a.id, &[]);
    assert_eq!(pull_a.revocations.len(), 1);
    assert_eq!(pull_a.revocations[0].reason, RevocationReason::Reassigned);
    assert!(pull_a.envelopes.is_empty());
    let pull_b = d.sync(&b.token, b.id, &[]);
    assert_eq!(pull_b.envelopes.len(), 1);
    let info = b.vault.receive(&pull_b.envelopes[0].envelope).unwrap();
    assert_eq!((info.job_id, info.version), (job, 1));
    assert!(pull_b.revocations.is_empty());

    // A's old state reports no longer move the job; B's do.
    let late_a = event(Some(job), 3, EventBody::State { from: JobState::EnRoute, to: JobState::OnSite });
    d.sync(&a.token, a.id, &[late_a]);
    assert_eq!(d.op.job(job).state, None);
    let b_state = event(Some(job), 1, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute });
    d.sync(&b.token, b.id, &[b_state]);
    assert_eq!(d.op.job(job).state, Some(JobState::EnRoute));

    // Never back to a device that gave the job up, never to the same device, never to a stranger.
    let before = d.op.job(job);
    assert_error(d.op.reassign(job, a.id), 409, "conflict");
    assert_error(d.op.reassign(job, b.id), 409, "conflict");
    assert_error(d.op.reassign(job, Uuid::new_v4()), 404, "not_found");
    // The old device cannot be sent the job as a "new version" either.
    let body = json!({"device_id": a.id, "sheet": sheet(job, 2)});
    assert_error(d.http.post("/v1/operator/jobs", Some(OPERATOR), &body), 409, "conflict");
    assert_eq!(d.op.job(job), before);
    let a_view = d.op.device(a.id);
    assert!(!a_view.jobs[0].assigned);
    assert_eq!(a_view.jobs[0].revocation, Some(RevocationStatus::Pending));
}

#[test]
fn wiping_a_device_revokes_every_job_without_a_receipt() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 5);
    let (j1, j2, done) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    for j in [j1, j2, done] {
        d.op.create_job(dev.id, &sheet(j, 1));
    }
    // `done` was completed on the device and its receipt verified.
    let completed = event(Some(done), 1, EventBody::State { from: JobState::OnSite, to: JobState::Completed });
    let receipt = event(Some(done), 2, EventBody::Receipt(dev.receipt(d.key(), done, 1)));
    d.sync(&dev.token, dev.id, &[completed, receipt]);
    assert_eq!(d.op.job(done).status, JobStatus::Closed);

    let wiped: WipeResponse = ok(d.op.wipe(dev.id));
    assert_eq!(wiped.device_id, dev.id);
    assert_eq!(wiped.revoked_jobs, vec![j1, j2]);
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert!(pull.envelopes.is_empty());
    let mut revoked: Vec<_> = pull.revocations.iter().map(|r| (r.job_id, r.reason)).collect();
    revoked.sort_by_key(|r| r.0);
    let mut expected = vec![(j1, RevocationReason::DeviceWiped), (j2, RevocationReason::DeviceWiped)];
    expected.sort_by_key(|r| r.0);
    assert_eq!(revoked, expected);
    let view = d.op.device(dev.id);
    assert!(view.wiped_at.is_some());
    // Wiping again revokes nothing new; a wiped device gets no new job.
    let again: WipeResponse = ok(d.op.wipe(dev.id));
    assert!(again.revoked_jobs.is_empty());
    let body = json!({"device_id": dev.id, "sheet": sheet(Uuid::new_v4(), 1)});
    assert_error(d.http.post("/v1/operator/jobs", Some(OPERATOR), &body), 409, "conflict");
    assert_eq!(d.op.device(dev.id).jobs, view.jobs);
    // A job of the wiped device can go to another device.
    let other = hand_device(&d, 1);
    let moved: JobView = ok(d.op.reassign(j1, other.id));
    assert_eq!(moved.device_id, other.id);
    assert_eq!(moved.revocations.len(), 1, "the wipe's revocation stands; no second one");
}

#[test]
fn prekey_exhaustion_falls_back_to_the_identity_key_and_a_top_up_refills() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 1);
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!((pull.prekeys_available, pull.prekeys_wanted), (1, 19));

    let (j1, j2) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(d.op.create_job(dev.id, &sheet(j1, 1)).sealed_to, Some(RecipientKeyId::Prekey(1)));
    // No prekey left, and the device has not synced since dispatch asked for more: the sheet
    // waits instead of going to the identity key (issue 12).
    assert_eq!(d.op.create_job(dev.id, &sheet(j2, 1)).sealed_to, None);
    assert!(d.op.job(j2).delivery.is_none());
    assert_eq!(d.op.device(dev.id).sealed_to_identity, 0);
    // The device syncs without bringing prekeys: only now is it sealed to the identity key, and
    // the operator's view of the device flags the sheet without forward secrecy.
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!((pull.prekeys_available, pull.prekeys_wanted), (0, 20));
    assert_eq!(pull.envelopes.len(), 2);
    assert_eq!(d.op.job(j2).delivery.unwrap().sealed_to, RecipientKeyId::Identity);
    assert_eq!(d.op.device(dev.id).sealed_to_identity, 1);
    // Both open on the device, the second with its identity key.
    for e in &pull.envelopes {
        dev.vault.receive(&e.envelope).unwrap();
    }
    assert_eq!(dev.vault.job(j2).unwrap().delivered_via, Some(RecipientKeyId::Identity));

    // Top-up: the device's bundle of unused prekeys; ids dispatch has seen are ignored.
    let bundle = dev.vault.add_prekeys(20).unwrap();
    let mut prekeys = bundle.prekeys.clone();
    prekeys.push(Prekey { id: 1, public_key: generate_keypair().unwrap().1 });
    let topped = d.prekeys(&dev.token, &prekeys);
    assert_eq!((topped.accepted, topped.available), (20, 20));
    let again = d.prekeys(&dev.token, &bundle.prekeys);
    assert_eq!((again.accepted, again.available), (0, 20));
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!((pull.prekeys_available, pull.prekeys_wanted), (20, 0));

    let j3 = Uuid::new_v4();
    let lowest = bundle.prekeys.iter().map(|p| p.id).min().unwrap();
    assert_eq!(d.op.create_job(dev.id, &sheet(j3, 1)).sealed_to, Some(RecipientKeyId::Prekey(lowest)));
    let pull = d.sync(&dev.token, dev.id, &[]);
    let e = pull.envelopes.iter().find(|e| e.job_id == j3).unwrap();
    assert_eq!(dev.vault.receive(&e.envelope).unwrap().delivered_via, Some(RecipientKeyId::Prekey(lowest)));

    // Limits: more than 500 per call, a weak key, no token.
    let many: Vec<Prekey> =
        (10_000..10_501).map(|id| Prekey { id, public_key: generate_keypair().unwrap().1 }).collect();
    let before = d.op.device(dev.id);
    assert_error(d.prekeys_raw(Some(&dev.token), &json!(many)), 400, "bad_request");
    let weak = json!([{"id": 9999, "public_key": "0".repeat(64)}]);
    assert_error(d.prekeys_raw(Some(&dev.token), &weak), 400, "bad_request");
    assert_error(d.prekeys_raw(None, &json!([])), 401, "unauthorized");
    assert_eq!(d.op.device(dev.id), before);

    // Past 2000 unused prekeys the whole call is refused, including the keys it had already
    // stored: one request, one transaction.
    let batch = |from: u32| -> Vec<Prekey> {
        (from..from + 500).map(|id| Prekey { id, public_key: generate_keypair().unwrap().1 }).collect()
    };
    for from in [20_000, 20_500, 21_000] {
        let r = d.prekeys(&dev.token, &batch(from));
        assert_eq!(r.accepted, 500);
    }
    let before = d.op.device(dev.id);
    assert_eq!(before.prekeys_available, 1519);
    assert_error(d.prekeys_raw(Some(&dev.token), &json!(batch(21_500))), 400, "bad_request");
    assert_eq!(d.op.device(dev.id), before);
}

#[test]
fn a_restarted_server_continues_from_the_same_database() {
    let mut d = Dispatch::start();
    let key = d.key();
    let dev = vault_device(&d, 10);
    let hand = hand_device(&d, 2);
    let (job, cancelled) = (Uuid::new_v4(), Uuid::new_v4());
    d.op.create_job(dev.id, &sheet(job, 1));
    d.op.create_job(hand.id, &sheet(cancelled, 1));
    d.op.cancel(cancelled);
    let report = event(Some(job), 1, EventBody::Report { text: "Done before restart.".into() });
    d.sync(&dev.token, dev.id, std::slice::from_ref(&report));
    let (job_view, device_view, cancelled_view) = (d.op.job(job), d.op.device(dev.id), d.op.job(cancelled));

    d.restart();
    assert_eq!(d.key(), key, "the dispatch key persists");
    assert_eq!(d.op.job(job), job_view);
    assert_eq!(d.op.job(cancelled), cancelled_view);
    let mut after = d.op.device(dev.id);
    assert_eq!(after.last_sync_at, device_view.last_sync_at);
    after.last_sync_at = device_view.last_sync_at;
    assert_eq!(after, device_view);

    // Tokens still work, the queue is intact, applied keys stay applied.
    let pull = d.sync(&dev.token, dev.id, std::slice::from_ref(&report));
    assert_eq!(pull.acked, vec![report.key]);
    assert_eq!(pull.envelopes.len(), 1);
    dev.vault.receive(&pull.envelopes[0].envelope).unwrap();
    assert_eq!(d.op.job(job).report, job_view.report);
    assert_eq!(d.op.device(dev.id).events_applied, 1);
    let pull = d.sync(&hand.token, hand.id, &[]);
    assert_eq!(pull.revocations.len(), 1);
    // And prekeys continue where they were: the next job takes prekey 2.
    assert_eq!(d.op.create_job(dev.id, &sheet(Uuid::new_v4(), 1)).sealed_to, Some(RecipientKeyId::Prekey(2)));
}

#[test]
fn bad_requests_get_a_typed_error_and_change_nothing() {
    let d = Dispatch::start();
    let a = vault_device(&d, 10);
    let b = vault_device(&d, 10);
    let job = Uuid::new_v4();
    d.op.create_job(a.id, &sheet(job, 1));
    d.sync(&a.token, a.id, &[event(Some(job), 1, EventBody::Report { text: "first".into() })]);
    let snapshot = || (d.op.job(job), d.op.device(a.id), d.op.device(b.id));
    let before = snapshot();
    let report = |text: &str| vec![event(Some(job), 2, EventBody::Report { text: text.into() })];
    let sync_body = |device: Uuid| json!({"device_id": device, "events": report("changed"), "nonce": NONCE});

    // Device authentication.
    assert_error(d.http.post("/v1/sync", None, &sync_body(a.id)), 401, "unauthorized");
    assert_error(d.http.post("/v1/sync", Some(&"0".repeat(64)), &sync_body(a.id)), 401, "unauthorized");
    assert_error(d.http.post("/v1/sync", Some("not-a-token"), &sync_body(a.id)), 401, "unauthorized");
    assert_error(d.http.post("/v1/sync", Some(OPERATOR), &sync_body(a.id)), 401, "unauthorized");
    assert_error(d.http.post("/v1/sync", Some(&a.token), &sync_body(b.id)), 403, "forbidden");
    assert_error(d.http.post("/v1/sync", Some(&a.token), &sync_body(Uuid::new_v4())), 403, "forbidden");

    // Malformed bodies; none of them may echo what was sent.
    let raw = |body: &str| d.http.send("POST", "/v1/sync", Some(&a.token), Some(body.as_bytes().to_vec()));
    assert_error(
        raw(&format!("{{\"device_id\": \"{}\", \"nonce\": \"{NONCE}\", \"events\": [{CANARY}", a.id)),
        400,
        "bad_request",
    );
    assert_error(raw(""), 400, "bad_request");
    let mut unknown = sync_body(a.id);
    unknown[CANARY] = json!(CANARY);
    assert_error(d.http.post("/v1/sync", Some(&a.token), &unknown), 400, "bad_request");
    let mut nested = sync_body(a.id);
    nested["events"][0]["body"]["extra"] = json!(CANARY);
    assert_error(d.http.post("/v1/sync", Some(&a.token), &nested), 400, "bad_request");
    let mut wrong_type = sync_body(a.id);
    wrong_type["events"][0]["seq"] = json!(CANARY);
    assert_error(d.http.post("/v1/sync", Some(&a.token), &wrong_type), 400, "bad_request");

    // Limits.
    let big_text = "x".repeat(MAX_BODY_BYTES);
    assert_error(
        d.http.post(
            "/v1/sync",
            Some(&a.token),
            &json!({"device_id": a.id, "events": report(&big_text), "nonce": NONCE}),
        ),
        413,
        "too_large",
    );
    let too_many: Vec<OutboxEvent> = (0..501)
        .map(|i| event(Some(job), 10 + i, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute }))
        .collect();
    assert_error(d.sync_raw(&a.token, a.id, &too_many), 400, "bad_request");

    // Operator endpoints: no token, a device token, a wrong token.
    let create = json!({"device_id": a.id, "sheet": sheet(Uuid::new_v4(), 1)});
    for token in [None, Some(a.token.as_str()), Some("wrong")] {
        assert_error(d.http.post("/v1/operator/jobs", token, &create), 401, "unauthorized");
        assert_error(d.http.get(&format!("/v1/operator/jobs/{job}"), token), 401, "unauthorized");
        assert_error(d.http.get(&format!("/v1/operator/devices/{}", a.id), token), 401, "unauthorized");
        assert_error(d.http.post(&format!("/v1/operator/jobs/{job}/cancel"), token, &json!({})), 401, "unauthorized");
        assert_error(
            d.http.post(&format!("/v1/operator/devices/{}/wipe", a.id), token, &json!({})),
            401,
            "unauthorized",
        );
    }

    // Unknown jobs and devices.
    let nobody = Uuid::new_v4();
    assert_error(d.http.get(&format!("/v1/operator/jobs/{nobody}"), Some(OPERATOR)), 404, "not_found");
    assert_error(d.op.cancel(nobody), 404, "not_found");
    assert_error(d.op.reassign(nobody, b.id), 404, "not_found");
    assert_error(d.http.get(&format!("/v1/operator/devices/{nobody}"), Some(OPERATOR)), 404, "not_found");
    assert_error(
        d.http.post(&format!("/v1/operator/devices/{nobody}/wipe"), Some(OPERATOR), &json!({})),
        404,
        "not_found",
    );
    let to_nobody = json!({"device_id": nobody, "sheet": sheet(Uuid::new_v4(), 1)});
    assert_error(d.http.post("/v1/operator/jobs", Some(OPERATOR), &to_nobody), 404, "not_found");
    assert_error(d.http.get("/v1/operator/jobs/not-a-uuid", Some(OPERATOR)), 400, "bad_request");
    assert_error(d.http.get("/v1/nothing-here", None), 404, "not_found");
    assert_error(d.http.get("/v1/sync", Some(&a.token)), 405, "method_not_allowed");

    // Invalid sheets: the core's message names the field, never the value.
    let mut bad_sheet = sheet(Uuid::new_v4(), 1);
    bad_sheet["customer"][1]["value"] = json!(CANARY.repeat(300));
    assert_error(
        d.http.post("/v1/operator/jobs", Some(OPERATOR), &json!({"device_id": a.id, "sheet": bad_sheet})),
        400,
        "bad_request",
    );
    let mut bad_sheet = sheet(Uuid::new_v4(), 1);
    bad_sheet["customer"][1]["note"] = json!(CANARY);
    assert_error(
        d.http.post("/v1/operator/jobs", Some(OPERATOR), &json!({"device_id": a.id, "sheet": bad_sheet})),
        400,
        "bad_request",
    );
    assert_error(
        d.http.post("/v1/operator/jobs", Some(OPERATOR), &json!({"device_id": a.id, "sheet": CANARY})),
        400,
        "bad_request",
    );
    let mut extra = create.clone();
    extra["note"] = json!(CANARY);
    assert_error(d.http.post("/v1/operator/jobs", Some(OPERATOR), &extra), 400, "bad_request");
    assert_error(
        d.http.post(&format!("/v1/operator/jobs/{job}/reassign"), Some(OPERATOR), &json!({"device": b.id})),
        400,
        "bad_request",
    );

    // Nothing changed anywhere, not even the devices' last sync time.
    assert_eq!(snapshot(), before);
    let pull = d.sync(&a.token, a.id, &[]);
    assert_eq!(pull.envelopes.len(), 1);
    assert_eq!(pull.prekeys_available, 9);
}

/// Starts the binary with `args`; returns the child, its base URL and everything it printed to
/// stderr before it listened.
#[expect(clippy::zombie_processes, reason = "the child is returned: every caller kills and waits for it")]
fn spawn_dispatch(args: &[&std::ffi::OsStr], env_token: Option<&str>) -> (std::process::Child, String, String) {
    use std::io::{BufRead, BufReader};
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_jobseal-dispatch"));
    cmd.args(args).args(["--addr", "127.0.0.1:0"]).env_remove("JOBSEAL_OPERATOR_TOKEN");
    if let Some(t) = env_token {
        cmd.env("JOBSEAL_OPERATOR_TOKEN", t);
    }
    let mut child = cmd.stderr(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut printed = String::new();
    loop {
        let line = lines.next().expect("the server exited early").unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if let Some(url) = line.strip_prefix("jobseal-dispatch: listening on ") {
            // Keep reading: a closed pipe would make the server's next line its last.
            std::thread::spawn(move || lines.for_each(drop));
            return (child, url.to_owned(), printed);
        }
    }
}

/// The status of an operator call to the server at `base` with `token`.
fn operator_status(base: &str, token: &str) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    agent
        .get(format!("{base}/v1/operator/devices/{}", Uuid::new_v4()))
        .header("Authorization", format!("Bearer {token}"))
        .call()
        .unwrap()
        .status()
        .as_u16()
}

/// The operator token never goes on the command line or to a log (issue 12): a generated one is
/// written to an owner-only file next to the database and only its path is printed; a token
/// file others can read is refused; `--operator-token` no longer exists.
#[cfg(unix)]
#[test]
fn the_binary_keeps_the_operator_token_off_the_command_line_and_out_of_its_output() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let (mut child, base, printed) = spawn_dispatch(&["serve".as_ref(), "--db".as_ref(), db.as_os_str()], None);
    let file = dir.path().join("d.db.operator-token");
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_owned();
    assert_eq!(token.len(), 64);
    assert!(!printed.contains(&token), "the generated token was printed");
    assert!(printed.contains("d.db.operator-token"), "{printed}");
    // The generated token is the operator's: an unknown device is 404, not 401.
    assert_eq!(operator_status(&base, &token), 404);
    assert_eq!(operator_status(&base, "wrong"), 401);
    child.kill().unwrap();
    child.wait().unwrap();
    // Started again, the server keeps the same token.
    let (mut child, base, _) = spawn_dispatch(&["serve".as_ref(), "--db".as_ref(), db.as_os_str()], None);
    assert_eq!(operator_status(&base, &token), 404);
    child.kill().unwrap();
    child.wait().unwrap();

    // --operator-token-file: used when owner-only, refused otherwise.
    let own = dir.path().join("token");
    std::fs::write(&own, "operator-token-from-a-file-for-tests-only\n").unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o600)).unwrap();
    let args = ["serve".as_ref(), "--db".as_ref(), db.as_os_str(), "--operator-token-file".as_ref(), own.as_os_str()];
    let (mut child, base, printed) = spawn_dispatch(&args, None);
    assert!(!printed.contains("from-a-file"), "{printed}");
    assert_eq!(operator_status(&base, "operator-token-from-a-file-for-tests-only"), 404);
    assert_eq!(operator_status(&base, &token), 401);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::set_permissions(&own, std::fs::Permissions::from_mode(0o644)).unwrap();
    let mut refused = std::process::Command::new(env!("CARGO_BIN_EXE_jobseal-dispatch"))
        .args(args)
        .args(["--addr", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // It must exit at once; a server that starts serving instead fails the test (not hangs it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while refused.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            refused.kill().unwrap();
            refused.wait().unwrap();
            panic!("the server started with a token file others can read");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = refused.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600") && !err.contains("from-a-file"), "{err}");
    // The environment variable still works.
    let (mut child, base, _) =
        spawn_dispatch(&["serve".as_ref(), "--db".as_ref(), db.as_os_str()], Some("operator-token-from-the-env-0123"));
    assert_eq!(operator_status(&base, "operator-token-from-the-env-0123"), 404);
    child.kill().unwrap();
    child.wait().unwrap();
    // The old flag is gone.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_jobseal-dispatch"))
        .args(["serve", "--db"])
        .arg(&db)
        .args(["--operator-token", "secret-on-the-command-line"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// An operator endpoint answers a caller without the operator token before reading a byte of its
/// body: a client that announces a body and never sends it gets its 401 at once, instead of
/// holding a connection (and, with a large body, the server's memory) while it uploads.
#[test]
fn operator_endpoints_refuse_a_wrong_token_before_reading_the_body() {
    use std::io::{Read, Write};
    let d = Dispatch::start();
    for path in ["/v1/operator/jobs", &format!("/v1/operator/jobs/{}/cancel", Uuid::new_v4())] {
        let mut conn = std::net::TcpStream::connect(d.kit.server().addr()).unwrap();
        conn.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
        write!(
            conn,
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer not-the-operator\r\n\
             Content-Type: application/json\r\nContent-Length: 4096\r\n\r\n"
        )
        .unwrap();
        let mut head = [0u8; 12];
        conn.read_exact(&mut head).expect("no answer while the announced body was never sent");
        assert_eq!(&head, b"HTTP/1.1 401", "{path}");
    }
    // With the right token the endpoint still works.
    let job = Uuid::new_v4();
    assert_eq!(d.op.post_job(Uuid::new_v4(), &sheet(job, 1)).0, 404);
}

/// A device cannot close, or write into the history of, a job dispatch never sealed for it: its
/// authentic receipt and its audit records naming the job are acknowledged but not shown with the
/// job, and the operator keeps control (the job can still be reassigned to it and cancelled).
/// Found by review (issue 12): the receipt was stored as verified and the job shown closed.
#[test]
fn a_device_cannot_close_or_annotate_a_job_it_never_held() {
    let d = Dispatch::start();
    let owner = hand_device(&d, 2);
    let intruder = hand_device(&d, 2);
    let job = Uuid::new_v4();
    d.op.create_job(owner.id, &sheet(job, 1));

    let receipt = event(Some(job), 1, EventBody::Receipt(intruder.receipt(d.key(), job, 1)));
    let (seq, at_ms) = (1, t0().timestamp_millis());
    let new = jobseal::audit::NewEvent::job(at_ms, job, jobseal::AuditKind::Shredded, JobState::Completed);
    // Linked under the intruder's own chain key, as its vault would: its chain stays intact.
    let chain_key = jobseal::audit::AuditKey::derive(&intruder.identity, &d.key(), intruder.id).unwrap();
    let hash = jobseal::audit::chain_hash(Some(&chain_key), seq, &new, &jobseal::audit::GENESIS);
    let record = AuditRecord {
        seq,
        at_ms,
        kind: new.kind,
        field: None,
        state: new.state,
        detail: None,
        prev_hash: jobseal::audit::GENESIS.to_vec(),
        hash: hash.to_vec(),
    };
    let audit = event(Some(job), 2, EventBody::Audit(record));
    let pull = d.sync(&intruder.token, intruder.id, &[receipt.clone(), audit.clone()]);
    assert_eq!(pull.acked, vec![receipt.key, audit.key]);

    let view = d.op.job(job);
    assert_eq!(view.status, JobStatus::Open);
    assert!(view.receipt.is_none() && view.receipts.is_empty(), "{:?}", view.receipts);
    assert!(view.audit_events.is_empty(), "another device's records shown with the job");
    // The intruder's own chain still verifies: its record is kept there.
    assert!(d.op.device(intruder.id).audit_chain.intact);

    // The operator keeps control: reassigning to the intruder leaves the job open with a pending
    // envelope, and cancelling works.
    let moved: JobView = ok(d.op.reassign(job, intruder.id));
    assert_eq!(moved.status, JobStatus::Open);
    assert_eq!(moved.delivery.as_ref().unwrap().status, DeliveryStatus::Pending);
    // What the intruder said about the job before it was sealed for it stays out of the job's
    // history after the reassignment too.
    assert!(moved.audit_events.is_empty(), "records sent before the job was sealed for the device are shown");
    // Nor once the intruder has taken the sheet: only what its chain records after that counts.
    // Found by review: a filter on dispatch's receive time let records written before the
    // reassignment, held back offline and pushed after it, into the job's history.
    let link = |seq: u64, at: i64, kind: jobseal::AuditKind, prev: &[u8]| {
        let e = jobseal::audit::NewEvent::job(at, job, kind, JobState::OnSite);
        let h = jobseal::audit::chain_hash(Some(&chain_key), seq, &e, prev);
        let r = AuditRecord {
            seq,
            at_ms: at,
            kind: e.kind,
            field: None,
            state: e.state,
            detail: None,
            prev_hash: prev.to_vec(),
            hash: h.to_vec(),
        };
        (r, h)
    };
    let (held_back, h2) = link(2, at_ms + 1, jobseal::AuditKind::Reveal, &hash);
    d.sync(&intruder.token, intruder.id, &[event(Some(job), 3, EventBody::Audit(held_back))]);
    let took = event(Some(job), 4, EventBody::Received { version: 1, via: moved.delivery.as_ref().unwrap().sealed_to });
    let (after, _) = link(3, at_ms + 2, jobseal::AuditKind::Ingested, &h2);
    d.sync(&intruder.token, intruder.id, &[took, event(Some(job), 5, EventBody::Audit(after))]);
    let seqs: Vec<u64> = d.op.job(job).audit_events.iter().map(|a| a.seq).collect();
    assert_eq!(seqs, [3], "only the record written after the sheet was taken belongs to the job");
    let cancelled: JobView = ok(d.op.cancel(job));
    assert_eq!(cancelled.status, JobStatus::Cancelled);
}

/// A device enrolling again (its answer was lost) brings its current bundle; before issue 12, a
/// repeated enrolment added the prekeys it carried, so a caller could add a prekey of its own,
/// have the operator's next sheet for that device sealed to it, and grow the device past the
/// prekey cap. Even with the device's own proof, a repeated enrolment adds no prekey.
#[test]
fn a_repeated_enrolment_cannot_add_prekeys() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 3);
    let mut bundle = dev.bundle.clone();
    let (_, planted) = generate_keypair().unwrap();
    bundle.prekeys.push(Prekey { id: 9_999, public_key: planted });
    let req = build_request(bundle, &dev.identity, &d.key(), None).unwrap();
    let again: EnrolResponse = ok(d.enrol_raw(&req));
    assert_eq!(again.device_id, dev.id);
    assert_eq!(d.op.device(dev.id).prekeys_available, 3, "the request's prekey was added");

    // The next sheet is sealed to one of the device's own prekeys, never to the planted one.
    let job = Uuid::new_v4();
    let created = d.op.create_job(dev.id, &sheet(job, 1));
    assert!(matches!(created.sealed_to, Some(RecipientKeyId::Prekey(id)) if id != 9_999), "{:?}", created.sealed_to);

    // A bundle far over the cap, posted again and again, adds nothing either.
    let mut big = dev.bundle.clone();
    big.prekeys = (10_000..12_000).map(|id| Prekey { id, public_key: generate_keypair().unwrap().1 }).collect();
    for _ in 0..2 {
        let _: EnrolResponse = ok(d.enrol_raw(&build_request(big.clone(), &dev.identity, &d.key(), None).unwrap()));
    }
    assert!(d.op.device(dev.id).prekeys_available <= 3);
}

/// A device's raw call, through the core's own HTTP transport: the answer's exact bytes, which
/// the MAC covers.
fn raw_call(d: &Dispatch, path: &str, token: &str, body: &Value) -> jobseal::HttpResponse {
    use jobseal::Transport;
    let request = jobseal::HttpRequest {
        method: "POST".into(),
        path: path.into(),
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("authorization".into(), format!("Bearer {token}")),
        ],
        body: serde_json::to_vec(body).unwrap(),
    };
    d.kit.transport().send(request).unwrap()
}

/// Issue 12: every answer to a sync or a prekey top-up is MAC-ed for the device that asked, over
/// the nonce of its request, so the device can refuse a forged, replayed or misdirected one.
#[test]
fn answers_are_authenticated_for_the_request_and_the_device() {
    use jobseal::answer::{AnswerKey, AnsweredCall};
    let d = Dispatch::start();
    let dev = hand_device(&d, 3);
    let other = hand_device(&d, 3);
    let job = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job, 1));
    let nonce = jobseal::hex::decode(NONCE).unwrap();
    let key = AnswerKey::derive(&dev.identity, &d.key(), dev.id).unwrap();
    let other_key = AnswerKey::derive(&other.identity, &d.key(), other.id).unwrap();

    let answer = raw_call(&d, "/v1/sync", &dev.token, &json!({"device_id": dev.id, "events": [], "nonce": NONCE}));
    assert_eq!(answer.status, 200);
    let text = key.open(AnsweredCall::Sync, &nonce, &answer.body).expect("the answer authenticates");
    let pull: SyncResponse = serde_json::from_str(text).unwrap();
    assert_eq!(pull.envelopes.len(), 1);
    // Not as the answer to another request, another endpoint, or another device's.
    assert!(key.open(AnsweredCall::Sync, &[0u8; 32], &answer.body).is_err());
    assert!(key.open(AnsweredCall::Prekeys, &nonce, &answer.body).is_err());
    assert!(other_key.open(AnsweredCall::Sync, &nonce, &answer.body).is_err());

    let fresh = vec![Prekey { id: 50, public_key: generate_keypair().unwrap().1 }];
    let answer = raw_call(&d, "/v1/prekeys", &dev.token, &json!({"prekeys": fresh, "nonce": NONCE}));
    assert_eq!(answer.status, 200);
    let text = key.open(AnsweredCall::Prekeys, &nonce, &answer.body).expect("the answer authenticates");
    let topped: PrekeysResponse = serde_json::from_str(text).unwrap();
    assert_eq!(topped.accepted, 1);
    assert!(key.open(AnsweredCall::Sync, &nonce, &answer.body).is_err());
}

/// A client of sync protocol 1 sends no nonce and would trust answers on TLS alone: dispatch
/// tells it to update, and applies nothing of its request. A nonce of the wrong length is refused
/// too.
#[test]
fn a_client_of_sync_protocol_1_is_told_to_update_and_changes_nothing() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 3);
    let job = Uuid::new_v4();
    d.op.create_job(dev.id, &sheet(job, 1));
    let before = (d.op.job(job), d.op.device(dev.id));
    let state = event(Some(job), 1, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute });
    let old = d.http.post("/v1/sync", Some(&dev.token), &json!({"device_id": dev.id, "events": [state]}));
    assert_error(old.clone(), 400, "outdated_client");
    assert!(old.1["error"]["message"].as_str().unwrap().contains("update the app"), "{}", old.1);
    assert_error(d.http.post("/v1/prekeys", Some(&dev.token), &json!({"prekeys": []})), 400, "outdated_client");
    for nonce in ["", "00", &"ab".repeat(31), &"ab".repeat(33)] {
        let body = json!({"device_id": dev.id, "events": [state], "nonce": nonce});
        assert_error(d.http.post("/v1/sync", Some(&dev.token), &body), 400, "bad_request");
        assert_error(
            d.http.post("/v1/prekeys", Some(&dev.token), &json!({"prekeys": [], "nonce": nonce})),
            400,
            "bad_request",
        );
    }
    assert_eq!((d.op.job(job), d.op.device(dev.id)), before);
}

/// The prekey floor in every sync answer: below it, every prekey is spent and no envelope still
/// offered uses one, so the device may delete those it holds. A job cancelled before the device
/// fetched it moves the floor past the prekey its envelope was sealed to.
#[test]
fn the_prekey_floor_passes_prekeys_of_withdrawn_envelopes_but_never_a_pending_one() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 3);
    assert_eq!(d.sync(&dev.token, dev.id, &[]).prekey_floor, Some(1));
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    d.op.create_job(dev.id, &sheet(a, 1));
    d.op.create_job(dev.id, &sheet(b, 1));
    // Prekeys 1 and 2 are used, but their envelopes are still offered: the floor stays at 1.
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!(pull.envelopes.len(), 2);
    assert_eq!(pull.prekey_floor, Some(1));
    // Job a (prekey 1) is cancelled before the device fetched it: its envelope is withdrawn.
    let _: JobView = ok(d.op.cancel(a));
    assert_eq!(d.sync(&dev.token, dev.id, &[]).prekey_floor, Some(2));
    // Job b's envelope is reported received: everything up to the unused prekey 3 is spent.
    let received = event(Some(b), 1, EventBody::Received { version: 1, via: RecipientKeyId::Prekey(2) });
    assert_eq!(d.sync(&dev.token, dev.id, &[received]).prekey_floor, Some(3));
}

// ---------------------------------------------------------------------------------------------
// Enrolment attacks (issue 12): every refusal changes nothing, and the real device keeps syncing.
// ---------------------------------------------------------------------------------------------

/// An attacker's request: `bundle` with a fresh nonce and the proofs the attacker can make (its
/// own identity key's, a code of its own).
fn attacker_request(d: &Dispatch, bundle: DeviceBundle, code: Option<&EnrolmentCode>) -> EnrolRequest {
    let (attacker, _) = generate_keypair().unwrap();
    build_request(bundle, &attacker, &d.key(), code).unwrap()
}

/// Everything an enrolment could change about a device, as the operator sees it, plus whether
/// its token still works.
fn assert_untouched(d: &Dispatch, dev: &HandDevice, before: &jobseal_dispatch::DeviceView) {
    let mut now = d.op.device(dev.id);
    now.last_sync_at = before.last_sync_at;
    assert_eq!(&now, before, "the device changed");
    d.sync(&dev.token, dev.id, &[]);
}

#[test]
fn enrolment_without_a_code_is_refused_and_changes_nothing() {
    let d = Dispatch::start();
    let (identity, bundle) = hand_bundle(3);
    let id = bundle.device_id;
    // The device's own, well-formed request with a valid identity proof, but no code.
    let req = build_request(bundle.clone(), &identity, &d.key(), None).unwrap();
    assert_error(d.enrol_raw(&req), 401, "unauthorized");
    // A code proof with the proof bytes missing or garbled.
    let mut req = build_request(bundle.clone(), &identity, &d.key(), Some(&d.code())).unwrap();
    req.code.as_mut().unwrap().proof = vec![0; 32];
    assert_error(d.enrol_raw(&req), 401, "unauthorized");
    req.code.as_mut().unwrap().proof = Vec::new();
    assert_error(d.enrol_raw(&req), 401, "unauthorized");
    assert_error(d.http.get(&format!("/v1/operator/devices/{id}"), Some(OPERATOR)), 404, "not_found");
    // The code whose proof was garbled is still unused.
    assert!(d.op.codes().codes.iter().all(|c| c.status == CodeStatus::Unused));
}

#[test]
fn a_wrong_expired_reused_or_revoked_code_is_refused_and_changes_nothing() {
    let d = Dispatch::start();
    let (identity, bundle) = hand_bundle(3);
    let id = bundle.device_id;
    let enrol_with =
        |code: &EnrolmentCode| d.enrol_raw(&build_request(bundle.clone(), &identity, &d.key(), Some(code)).unwrap());

    // Wrong: a code never issued, and an issued code's id with another secret part (a typo).
    assert_error(enrol_with(&EnrolmentCode::generate().unwrap()), 401, "unauthorized");
    let issued = d.code();
    let typo = EnrolmentCode::parse(&format!("{}{}", issued.id(), &EnrolmentCode::generate().unwrap().display()[6..]))
        .unwrap();
    assert_eq!(typo.id(), issued.id());
    assert_error(enrol_with(&typo), 401, "unauthorized");

    // Expired.
    let short: IssuedCode = ok(d.op.post_code(None, Some(1)));
    std::thread::sleep(std::time::Duration::from_millis(1_100));
    assert_error(enrol_with(&EnrolmentCode::parse(&short.code).unwrap()), 403, "forbidden");
    // Without the code, its state stays hidden: a wrong proof for the expired code is a 401.
    let guess = format!("{}{}", &short.code[..5], &EnrolmentCode::generate().unwrap().display()[5..]);
    assert_error(enrol_with(&EnrolmentCode::parse(&guess).unwrap()), 401, "unauthorized");

    // Revoked.
    let revoked = d.code();
    let view: EnrolmentCodeView =
        ok(d.op.call("POST", &format!("/v1/operator/enrolment-codes/{}/revoke", revoked.id()), None));
    assert_eq!(view.status, CodeStatus::Revoked);
    assert_error(enrol_with(&revoked), 403, "forbidden");
    assert_error(d.http.get(&format!("/v1/operator/devices/{id}"), Some(OPERATOR)), 404, "not_found");

    // Reused: a code that enrolled one device does not enrol another.
    let first = hand_device(&d, 1);
    let used = d.code();
    let (other_identity, other) = hand_bundle(1);
    let ok_first: EnrolResponse = ok(enrol_with(&used));
    assert_eq!(ok_first.device_id, id);
    let again = build_request(other.clone(), &other_identity, &d.key(), Some(&used)).unwrap();
    assert_error(d.enrol_raw(&again), 403, "forbidden");
    let other_id = other.device_id;
    assert_error(d.http.get(&format!("/v1/operator/devices/{other_id}"), Some(OPERATOR)), 404, "not_found");
    let codes = d.op.codes().codes;
    let status = |c: &EnrolmentCode| codes.iter().find(|v| v.code_id == c.id()).unwrap().status;
    assert_eq!(status(&used), CodeStatus::Used);
    assert_eq!(codes.iter().find(|v| v.code_id == used.id()).unwrap().used_by, Some(id));
    assert_eq!(status(&issued), CodeStatus::Unused, "a wrong proof must not burn the code");
    assert_eq!(status(&EnrolmentCode::parse(&short.code).unwrap()), CodeStatus::Expired);
    d.sync(&first.token, first.id, &[]);
    // Listing codes never shows one.
    let listing = d.op.call("GET", "/v1/operator/enrolment-codes", None).1.to_string();
    assert!(!listing.contains(&issued.display()[6..]), "the listing shows a code");
}

#[test]
fn a_code_bound_to_device_a_cannot_enrol_device_b() {
    let d = Dispatch::start();
    let (a_identity, a) = hand_bundle(2);
    let (b_identity, b) = hand_bundle(2);
    let bound: IssuedCode = ok(d.op.post_code(Some(a.device_id), None));
    let code = EnrolmentCode::parse(&bound.code).unwrap();
    assert_error(d.enrol_raw(&build_request(b.clone(), &b_identity, &d.key(), Some(&code)).unwrap()), 403, "forbidden");
    let b_id = b.device_id;
    assert_error(d.http.get(&format!("/v1/operator/devices/{b_id}"), Some(OPERATOR)), 404, "not_found");
    // Still unused: device A enrols with it.
    let _: EnrolResponse = ok(d.enrol_raw(&build_request(a, &a_identity, &d.key(), Some(&code)).unwrap()));
}

#[test]
fn claiming_an_unused_device_id_without_a_code_is_refused() {
    let d = Dispatch::start();
    let (identity, bundle) = hand_bundle(3);
    // The attacker learnt the device id before the device enrolled and claims it with a bundle
    // of its own: no code, a code bound to another device, a code it made up.
    let (_, attacker_key) = generate_keypair().unwrap();
    let mut claim = bundle.clone();
    claim.identity_key = attacker_key;
    claim.prekeys = vec![Prekey { id: 1, public_key: generate_keypair().unwrap().1 }];
    assert_error(d.enrol_raw(&attacker_request(&d, claim.clone(), None)), 401, "unauthorized");
    let elsewhere: IssuedCode = ok(d.op.post_code(Some(Uuid::new_v4()), None));
    let elsewhere = EnrolmentCode::parse(&elsewhere.code).unwrap();
    assert_error(d.enrol_raw(&attacker_request(&d, claim.clone(), Some(&elsewhere))), 403, "forbidden");
    assert_error(
        d.enrol_raw(&attacker_request(&d, claim, Some(&EnrolmentCode::generate().unwrap()))),
        401,
        "unauthorized",
    );
    let id = bundle.device_id;
    assert_error(d.http.get(&format!("/v1/operator/devices/{id}"), Some(OPERATOR)), 404, "not_found");
    // The real device then enrols with its code.
    let req = build_request(bundle.clone(), &identity, &d.key(), Some(&d.code())).unwrap();
    let answer: EnrolResponse = ok(d.enrol_raw(&req));
    let token = open_token(&identity, &d, &req, &answer).unwrap();
    assert_eq!(d.op.device(id).identity_key, bundle.identity_key);
    d.sync(&token, id, &[]);
}

#[test]
fn replaying_a_devices_bundle_cannot_hijack_it_and_the_device_keeps_syncing() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 3);
    let before = d.op.device(dev.id);
    // The public bundle re-posted: without any proof, with a proof under the attacker's own key,
    // and with a fresh code the attacker got hold of.
    let mut bare = serde_json::to_value(attacker_request(&d, dev.bundle.clone(), None)).unwrap();
    bare["identity_proof"] = json!("00".repeat(32));
    assert_error(d.http.post("/v1/enrol", None, &bare), 401, "unauthorized");
    assert_error(d.enrol_raw(&attacker_request(&d, dev.bundle.clone(), None)), 401, "unauthorized");
    let code = d.code();
    assert_error(d.enrol_raw(&attacker_request(&d, dev.bundle.clone(), Some(&code))), 401, "unauthorized");
    assert_untouched(&d, &dev, &before);
    let codes = d.op.codes().codes;
    assert_eq!(codes.iter().find(|c| c.code_id == code.id()).unwrap().status, CodeStatus::Unused);

    // A real vault device too: its token is the one it holds, and it syncs through the engine.
    let vdev = vault_device(&d, 3);
    let bundle = vdev.vault.device_bundle().unwrap();
    assert_error(d.enrol_raw(&attacker_request(&d, bundle, Some(&d.code()))), 401, "unauthorized");
    assert_eq!(vdev.vault.device_token_insecure_for_testing().unwrap().as_deref(), Some(vdev.token.as_str()));
    let job = Uuid::new_v4();
    d.op.create_job(vdev.id, &sheet(job, 1));
    assert_eq!(vdev.vault.sync(&d.kit.transport()).unwrap().received, [job]);
}

#[test]
fn a_hijack_with_a_planted_prekey_is_refused_and_adds_no_prekey() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 3);
    let before = d.op.device(dev.id);
    let mut planted = dev.bundle.clone();
    let (_, attacker_prekey) = generate_keypair().unwrap();
    planted.prekeys.push(Prekey { id: 9_999, public_key: attacker_prekey });
    assert_error(d.enrol_raw(&attacker_request(&d, planted.clone(), None)), 401, "unauthorized");
    assert_error(d.enrol_raw(&attacker_request(&d, planted.clone(), Some(&d.code()))), 401, "unauthorized");
    // The device's own earlier proof does not cover the planted prekey either.
    let own = build_request(dev.bundle.clone(), &dev.identity, &d.key(), None).unwrap();
    let mut grafted = own.clone();
    grafted.bundle = planted;
    assert_error(d.enrol_raw(&grafted), 401, "unauthorized");
    assert_untouched(&d, &dev, &before);
    assert_eq!(d.op.device(dev.id).prekeys_available, 3);
    let created = d.op.create_job(dev.id, &sheet(Uuid::new_v4(), 1));
    assert!(matches!(created.sealed_to, Some(RecipientKeyId::Prekey(id)) if id != 9_999), "{:?}", created.sealed_to);
}

#[test]
fn replaying_the_devices_own_enrolment_request_is_refused_and_changes_nothing() {
    let d = Dispatch::start();
    // The first enrolment, recorded on the wire.
    let (identity, bundle) = hand_bundle(3);
    let first = build_request(bundle.clone(), &identity, &d.key(), Some(&d.code())).unwrap();
    let answer: EnrolResponse = ok(d.enrol_raw(&first));
    let token = open_token(&identity, &d, &first, &answer).unwrap();
    let dev = HandDevice { identity, id: bundle.device_id, bundle, token };
    let before = d.op.device(dev.id);
    assert_error(d.enrol_raw(&first), 409, "conflict");
    assert_untouched(&d, &dev, &before);

    // A later re-enrolment (a lost answer), recorded and replayed after the device got its token.
    let again = build_request(dev.bundle.clone(), &dev.identity, &d.key(), None).unwrap();
    let answer: EnrolResponse = ok(d.enrol_raw(&again));
    let dev = HandDevice { token: open_token(&dev.identity, &d, &again, &answer).unwrap(), ..dev };
    let before = d.op.device(dev.id);
    assert_error(d.enrol_raw(&again), 409, "conflict");
    assert_untouched(&d, &dev, &before);
    // The replayed answer does not open for another request of the device.
    let third = build_request(dev.bundle.clone(), &dev.identity, &d.key(), None).unwrap();
    assert!(open_token(&dev.identity, &d, &third, &answer).is_none());
}

#[test]
fn enrolment_codes_need_the_operator_token_and_are_listed_and_revoked() {
    let d = Dispatch::start();
    let dev = hand_device(&d, 1);
    for (method, path) in [
        ("POST", "/v1/operator/enrolment-codes".to_owned()),
        ("GET", "/v1/operator/enrolment-codes".to_owned()),
        ("POST", "/v1/operator/enrolment-codes/ABCDE/revoke".to_owned()),
    ] {
        assert_error(d.http.send(method, &path, None, Some(b"{}".to_vec())), 401, "unauthorized");
        assert_error(d.http.send(method, &path, Some(&dev.token), Some(b"{}".to_vec())), 401, "unauthorized");
    }
    let issued = d.op.issue_code();
    assert_eq!(issued.code.len(), 23);
    assert!(!format!("{issued:?}").contains(&issued.code), "Debug shows the code");
    let hours = (issued.expires_at - chrono::Utc::now()).num_hours();
    assert!((23..=24).contains(&hours), "{hours}");
    for bad in [json!({"valid_for_seconds": 0}), json!({"valid_for_seconds": 31 * 86_400}), json!({"other": 1})] {
        assert_error(d.op.call("POST", "/v1/operator/enrolment-codes", Some(bad)), 400, "bad_request");
    }
    assert_error(d.op.call("POST", "/v1/operator/enrolment-codes/NOPE!/revoke", None), 400, "bad_request");
    assert_error(d.op.call("POST", "/v1/operator/enrolment-codes/00000/revoke", None), 404, "not_found");
    // The code used by `dev` cannot be revoked after the fact.
    let used = d.op.codes().codes.into_iter().find(|c| c.status == CodeStatus::Used).unwrap();
    let view: EnrolmentCodeView =
        ok(d.op.call("POST", &format!("/v1/operator/enrolment-codes/{}/revoke", used.code_id), None));
    assert_eq!((view.status, view.used_by), (CodeStatus::Used, Some(dev.id)));
    assert_eq!(d.op.codes().codes.len(), 2);
}

/// A code holder cannot enrol an identity key it does not hold (for example a real device's, to
/// have sheets sealed to a key it names): the first enrolment proves the identity key too.
#[test]
fn a_first_enrolment_must_prove_its_identity_key() {
    let d = Dispatch::start();
    let (_, victim) = hand_bundle(1);
    let (_, mut bundle) = hand_bundle(1);
    bundle.identity_key = victim.identity_key;
    let code = d.code();
    assert_error(d.enrol_raw(&attacker_request(&d, bundle.clone(), Some(&code))), 401, "unauthorized");
    let id = bundle.device_id;
    assert_error(d.http.get(&format!("/v1/operator/devices/{id}"), Some(OPERATOR)), 404, "not_found");
    assert_eq!(d.op.codes().codes[0].status, CodeStatus::Unused);
}

/// A sheet that waits for prekeys goes to a prekey the device brings, never to its identity key,
/// when the device tops up as asked (issue 12: identity sealing only after a top-up was asked for
/// and none came).
#[test]
fn a_sheet_waiting_for_prekeys_is_sealed_to_one_the_device_brings() {
    let d = Dispatch::start();
    let dev = vault_device(&d, 1);
    let (j1, j2) = (Uuid::new_v4(), Uuid::new_v4());
    assert_eq!(d.op.create_job(dev.id, &sheet(j1, 1)).sealed_to, Some(RecipientKeyId::Prekey(1)));
    assert_eq!(d.op.create_job(dev.id, &sheet(j2, 1)).sealed_to, None);
    // The sync that asks (the device had not been asked before it ran out): still waiting.
    let pull = d.sync(&dev.token, dev.id, &[]);
    assert_eq!(pull.envelopes.len(), 1);
    assert!(pull.prekeys_wanted > 0);
    // The device tops up as asked; its next sync gets the sheet sealed to one of the new prekeys.
    let fresh = dev.vault.add_prekeys(pull.prekeys_wanted).unwrap();
    let new: Vec<Prekey> = fresh.prekeys.iter().filter(|p| p.id != 1).cloned().collect();
    d.prekeys(&dev.token, &new);
    let pull = d.sync(&dev.token, dev.id, &[]);
    let e = pull.envelopes.iter().find(|e| e.job_id == j2).expect("the waiting sheet is offered");
    assert!(matches!(d.op.job(j2).delivery.unwrap().sealed_to, RecipientKeyId::Prekey(id) if id != 1));
    assert!(matches!(dev.vault.receive(&e.envelope).unwrap().delivered_via, Some(RecipientKeyId::Prekey(_))));
    assert_eq!(d.op.device(dev.id).sealed_to_identity, 0);
}

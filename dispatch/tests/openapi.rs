//! The OpenAPI contract (issue 14, part 4): the document generated from the code is the one
//! committed as `docs/openapi.json` and the one the server serves, every route of the router is
//! in it, and what the server and the device really send validates against its schemas (and what
//! serde refuses, the schemas refuse too). schemathesis holds the running server to the same
//! document from outside (`dispatch/contract/run-schemathesis.sh`).

use jobseal_testkit::device::vault_at;
use jobseal_testkit::server::{TestDispatch, OPERATOR_TOKEN};
use jobseal_testkit::sheet::Sheet;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::PathBuf;
use uuid::Uuid;

/// How to bring the committed document up to date, shown when it is not.
const REGENERATE: &str = "JOBSEAL_UPDATE_OPENAPI=1 cargo test -p jobseal-dispatch --test dispatch openapi";

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json")
}

fn document() -> Value {
    serde_json::from_str(jobseal_dispatch::openapi::document_json()).unwrap()
}

/// The drift test: the committed `docs/openapi.json` is byte for byte what the code generates.
/// With `JOBSEAL_UPDATE_OPENAPI=1` it rewrites the file instead (and still fails if it could not).
#[test]
fn the_committed_contract_is_the_generated_one() {
    let generated = jobseal_dispatch::openapi::document_json();
    let path = committed_path();
    if std::env::var_os("JOBSEAL_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    // Not assert_eq!: a diff of two 100 KB documents is no help; say what to do.
    assert!(
        committed == generated,
        "docs/openapi.json is not the contract the code generates; review the change and regenerate it \
         with `{REGENERATE}`"
    );
}

/// `GET /v1/openapi.json` answers, without credentials, exactly the committed document.
#[test]
fn the_server_serves_the_committed_contract_without_credentials() {
    let kit = TestDispatch::start();
    let mut resp = ureq::get(&format!("{}/v1/openapi.json", kit.base_url())).call().unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let content_type = resp.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
    assert_eq!(content_type, "application/json");
    let served = resp.body_mut().read_to_string().unwrap();
    let committed = std::fs::read_to_string(committed_path()).unwrap();
    assert!(served == committed, "the served document differs from docs/openapi.json; {REGENERATE}");
    // It holds nothing of this server: not its key, not its operator token.
    assert!(!served.contains(&kit.key().to_string()));
    assert!(!served.contains(OPERATOR_TOKEN));
}

/// Every `(method, path)` the router serves, read from `.route(...)` in `dispatch/src/api.rs`,
/// so that an endpoint added to the router without its `#[utoipa::path]` fails here.
fn router_routes() -> BTreeSet<(String, String)> {
    let src = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/api.rs")).unwrap();
    let mut routes = BTreeSet::new();
    for call in src.split(".route(").skip(1) {
        let end = call.find("))\n").expect("a .route(...) call ends its line");
        let call = &call[..end + 1];
        let (path, methods) = call.split_once(',').unwrap();
        let path = match path.trim() {
            "crate::openapi::PATH" => jobseal_dispatch::openapi::PATH.to_owned(),
            quoted => quoted.trim_matches('"').to_owned(),
        };
        assert!(path.starts_with("/v1/") || path == "/metrics", "unexpected route path {path}");
        for method in ["get", "post", "put", "patch", "delete", "head", "options"] {
            let direct = format!("{method}(");
            let chained = format!(".{method}(");
            let trimmed = methods.trim();
            if trimmed.starts_with(&direct) || trimmed.contains(&chained) {
                routes.insert((method.to_owned(), path.clone()));
            }
        }
    }
    routes
}

fn documented_operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.clone(), path.clone()));
        }
    }
    ops
}

/// The router and the document name the same operations, and each documented operation reaches
/// its handler (not the "no such endpoint" fallback).
#[test]
fn every_route_of_the_router_is_in_the_contract_and_no_other() {
    let routes = router_routes();
    assert!(routes.len() >= 14, "the route scan found too few routes: {routes:?}");
    let doc = document();
    let documented = documented_operations(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&routes).collect();
    assert!(missing.is_empty(), "routes not in the OpenAPI document (add #[utoipa::path]): {missing:?}");
    assert!(extra.is_empty(), "documented operations the router does not serve: {extra:?}");

    let kit = TestDispatch::start();
    let client = kit.client();
    for (method, path) in &documented {
        let concrete = path.replace("{id}", "00000000-0000-4000-8000-000000000001");
        let (status, body) = client.send(&method.to_uppercase(), &concrete, None, None);
        let fallback = status == 404 && body["error"]["message"] == "no such endpoint";
        assert!(!fallback, "{method} {path} is documented but the router does not serve it");
    }
}

/// Every operation documents its success and each error status in the one error body, and
/// requires the credentials its handler checks.
#[test]
fn each_operation_documents_its_credentials_and_error_answers() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{method} {path}: no 200");
            for (status, resp) in responses {
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        resp["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                        "{method} {path} {status}"
                    );
                }
            }
            let security: Vec<String> = op["security"]
                .as_array()
                .map(|s| s.iter().flat_map(|r| r.as_object().unwrap().keys().cloned()).collect())
                .unwrap_or_default();
            let expected: &[&str] = if path.starts_with("/v1/operator/") {
                &["operator_token"]
            } else if path == "/v1/sync" || path == "/v1/prekeys" {
                &["device_token"]
            } else if path == "/metrics" {
                // The scrape token, or the operator token on a server without one.
                &["metrics_token", "operator_token"]
            } else {
                &[]
            };
            assert_eq!(security, expected, "{method} {path}: security");
            if !expected.is_empty() {
                assert!(responses.contains_key("401"), "{method} {path}: a 401 is possible");
            }
        }
    }
}

/// A JSON Schema validator for the component `name` of the document (its `$ref`s resolve
/// within the document).
fn validator(doc: &Value, name: &str) -> jsonschema::Validator {
    let schema = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "$ref": format!("#/components/schemas/{name}"),
    });
    jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
}

fn assert_valid(doc: &Value, name: &str, value: &Value) {
    let v = validator(doc, name);
    let errors: Vec<String> = v.iter_errors(value).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{name} does not validate: {errors:?}");
}

fn assert_invalid(doc: &Value, name: &str, value: &Value, why: &str) {
    assert!(!validator(doc, name).is_valid(value), "{name} accepts {why}");
}

/// What the server and a real device send validates against the document: the device's own
/// sync request (audit records queued at enrolment), the authenticated sync answer carrying a
/// sealed sheet, a prekey answer, each operator view, and error bodies. A schema that says
/// something serde does not write (a wrong field name, a byte field that is not hex, a missing
/// variant) fails here.
#[test]
fn real_requests_and_answers_validate_against_the_contract() {
    let doc = document();
    let kit = TestDispatch::start();
    let op = kit.operator();
    let client = kit.client();

    let (status, key) = client.get("/v1/dispatch-key", None);
    assert_eq!(status, 200);
    assert_valid(&doc, "DispatchKeyResponse", &key);
    let (status, issued) = op.call("POST", "/v1/operator/enrolment-codes", Some(json!({"valid_for_seconds": 60})));
    assert_eq!(status, 200);
    assert_valid(&doc, "IssuedCode", &issued);

    let device = vault_at(0);
    let bundle = kit.enrol(&device.vault, 2);
    let token = device.vault.device_token_insecure_for_testing().unwrap().unwrap();
    let job = Uuid::new_v4();
    let (status, created) = op.post_job(bundle.device_id, &Sheet::new(job).json());
    assert_eq!(status, 200);
    assert_valid(&doc, "CreateJobResponse", &created);

    // The device's own request, as its sync engine builds it, sent as is.
    let (request, _pending) = device.vault.sync_request().unwrap();
    let body: Value = serde_json::from_slice(&request.body).unwrap();
    assert!(!body["events"].as_array().unwrap().is_empty(), "the enrolment queued audit records");
    assert_valid(&doc, "SyncRequest", &body);
    let (status, answer) = client.post("/v1/sync", Some(&token), &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["answer"]["envelopes"].as_array().unwrap().len(), 1);
    assert_valid(&doc, "AuthenticatedSyncResponse", &answer);

    let (status, answer) = client.post("/v1/prekeys", Some(&token), &json!({"prekeys": [], "nonce": "ab".repeat(32)}));
    assert_eq!(status, 200, "{answer}");
    assert_valid(&doc, "AuthenticatedPrekeysResponse", &answer);

    let (status, view) = op.call("POST", &format!("/v1/operator/jobs/{job}/cancel"), None);
    assert_eq!(status, 200);
    assert_valid(&doc, "JobView", &view);
    assert_valid(&doc, "JobView", &op.call("GET", &format!("/v1/operator/jobs/{job}"), None).1);
    assert_valid(&doc, "DeviceView", &op.call("GET", &format!("/v1/operator/devices/{}", bundle.device_id), None).1);
    let (status, wiped) = op.call("POST", &format!("/v1/operator/devices/{}/wipe", bundle.device_id), None);
    assert_eq!(status, 200);
    assert_valid(&doc, "WipeResponse", &wiped);
    let (status, codes) = op.call("GET", "/v1/operator/enrolment-codes", None);
    assert_eq!(status, 200);
    assert_valid(&doc, "EnrolmentCodesView", &codes);
    let code_id = issued["code_id"].as_str().unwrap();
    let (status, revoked) = op.call("POST", &format!("/v1/operator/enrolment-codes/{code_id}/revoke"), None);
    assert_eq!(status, 200);
    assert_valid(&doc, "EnrolmentCodeView", &revoked);

    for (status, error) in [
        client.post("/v1/sync", None, &json!({})),
        client.post("/v1/sync", Some(&token), &json!({"device_id": bundle.device_id, "events": []})),
        op.call("GET", "/v1/operator/jobs/not-a-uuid", None),
        op.call("GET", &format!("/v1/operator/jobs/{}", Uuid::new_v4()), None),
        client.send("DELETE", "/v1/sync", None, None),
    ] {
        assert!(status >= 400, "{error}");
        assert_valid(&doc, "ErrorBody", &error);
    }
}

/// Every kind of outbox event, as serde writes it, is an `OutboxEvent` of the document; and what
/// serde refuses (an unknown field, a byte field that is not hex, a nonce of another length, an
/// unknown event type or state) the schemas refuse too.
#[test]
fn every_event_kind_validates_and_what_serde_refuses_the_schema_refuses() {
    use jobseal_protocol::audit::{AuditKind, AuditRecord};
    use jobseal_protocol::envelope::RecipientKeyId;
    use jobseal_protocol::policy::JobState;
    use jobseal_protocol::receipt::ShredReceipt;
    use jobseal_protocol::wire::{EventBody, OutboxEvent, SyncRequest};

    let doc = document();
    let at = jobseal_protocol::time::from_ms(1_900_000_000_000);
    let job = Uuid::new_v4();
    let bodies = [
        EventBody::Received { version: 1, via: RecipientKeyId::Prekey(7) },
        EventBody::Received { version: 1, via: RecipientKeyId::Identity },
        EventBody::Rejected { version: 2, reason: "stale-version".into() },
        EventBody::State { from: JobState::Assigned, to: JobState::EnRoute },
        EventBody::Report { text: "Replaced the fake test router.".into() },
        EventBody::Audit(AuditRecord {
            seq: 1,
            at_ms: 1_900_000_000_000,
            kind: AuditKind::Reveal,
            field: None,
            state: Some(JobState::OnSite),
            detail: Some("shown: phone; refused: -".into()),
            prev_hash: vec![0; 32],
            hash: vec![1; 32],
        }),
        EventBody::Receipt(ShredReceipt {
            device_id: Uuid::new_v4(),
            job_id: job,
            version: 1,
            state: JobState::Completed,
            shredded_at: at,
            epoch: 2,
            fields_destroyed: 3,
            mac: vec![0xab; 32],
        }),
    ];
    let events: Vec<OutboxEvent> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| OutboxEvent { key: Uuid::now_v7(), seq: i as u64 + 1, job_id: Some(job), at, body })
        .collect();
    for event in &events {
        assert_valid(&doc, "OutboxEvent", &serde_json::to_value(event).unwrap());
    }
    let request = SyncRequest { device_id: Uuid::new_v4(), events, nonce: vec![7; 32] };
    let good = serde_json::to_value(&request).unwrap();
    assert_valid(&doc, "SyncRequest", &good);

    let mut refused: Vec<(Value, &str)> = Vec::new();
    let mut edit = |why: &'static str, f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        assert!(serde_json::from_value::<SyncRequest>(v.clone()).is_err(), "serde accepts {why}");
        refused.push((v, why));
    };
    edit("an unknown field", &|v| v["extra"] = json!(1));
    edit("a nonce that is not hex", &|v| v["nonce"] = json!("zz".repeat(32)));
    edit("an unknown event type", &|v| v["events"][0]["body"]["type"] = json!("teleported"));
    edit("an unknown field in an audit event", &|v| v["events"][5]["body"]["extra"] = json!(1));
    edit("an unknown field in a receipt event", &|v| v["events"][6]["body"]["extra"] = json!(1));
    edit("a receipt MAC that is not hex", &|v| v["events"][6]["body"]["mac"] = json!("xyz"));
    edit("an unknown job state", &|v| v["events"][3]["body"]["to"] = json!("on-holiday"));
    edit("a negative seq", &|v| v["events"][0]["seq"] = json!(-1));
    edit("a missing event body", &|v| {
        v["events"][0].as_object_mut().unwrap().remove("body");
    });
    edit("a time that is not RFC 3339", &|v| v["events"][0]["at"] = json!("yesterday"));
    for (value, why) in &refused {
        assert_invalid(&doc, "SyncRequest", value, why);
    }
    // Dispatch refuses a nonce of another length (400) although serde reads it: so does the schema.
    let mut short = good.clone();
    short["nonce"] = json!("ab".repeat(16));
    assert_invalid(&doc, "SyncRequest", &short, "a 16-byte nonce");
}

/// What schemathesis does not send, sent by hand to every documented operation: no token, a
/// wrong token, the right token with a body of another declared type, malformed JSON, a body
/// over the limit, and a path id that is no id. Every answer's status is one the document lists
/// for that operation, with the one error body.
#[test]
fn hostile_requests_get_only_documented_statuses() {
    let doc = document();
    let kit = TestDispatch::start();
    let device = vault_at(0);
    kit.enrol(&device.vault, 1);
    let device_token = device.vault.device_token_insecure_for_testing().unwrap().unwrap();
    // A fresh connection per request: the server closes one whose body it refused unread (401, 413, 415), and a
    // pooled connection reused after that would fail the next request with a disconnect.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections(0)
        .max_idle_connections_per_host(0)
        .build()
        .into();
    let error_body = validator(&doc, "ErrorBody");
    let send = |method: &str, path: &str, token: Option<&str>, content_type: Option<&str>, body: Vec<u8>| {
        let url = format!("{}{path}", kit.base_url());
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = if method == "get" {
            let mut req = agent.get(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        } else {
            let mut req = agent.post(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            if let Some(ct) = content_type {
                req = req.header("Content-Type", ct);
            }
            req.send(body)
        };
        let mut resp = result.unwrap();
        let status = resp.status().as_u16();
        (status, resp.body_mut().read_to_string().unwrap_or_default())
    };
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let documented: BTreeSet<u16> =
                op["responses"].as_object().unwrap().keys().map(|s| s.parse().unwrap()).collect();
            let scheme = op["security"][0].as_object().and_then(|s| s.keys().next().cloned());
            let token = match scheme.as_deref() {
                Some("operator_token") => Some(OPERATOR_TOKEN),
                Some("device_token") => Some(device_token.as_str()),
                _ => None,
            };
            let concrete = path.replace("{id}", "00000000-0000-4000-8000-000000000001");
            let json = Some("application/json");
            let mut cases = vec![
                ("no token", send(method, &concrete, None, json, b"{}".to_vec())),
                ("a wrong token", send(method, &concrete, Some(&"0".repeat(64)), json, b"{}".to_vec())),
                ("a text/plain body", send(method, &concrete, token, Some("text/plain"), b"{}".to_vec())),
                ("malformed JSON", send(method, &concrete, token, json, b"{\"a\":".to_vec())),
                ("a body over 1 MiB", send(method, &concrete, token, json, vec![b' '; 1024 * 1024 + 1])),
            ];
            if path.contains("{id}") {
                for bad in ["not-an-id", "%FF", "00000000-0000-4000-8000-00000000000g"] {
                    cases.push((
                        "a malformed path id",
                        send(method, &path.replace("{id}", bad), token, json, Vec::new()),
                    ));
                }
            }
            for (what, (status, body)) in cases {
                assert!(
                    documented.contains(&status),
                    "{method} {path} with {what} answered {status}, which the document does not list"
                );
                if status >= 400 {
                    let body: Value = serde_json::from_str(&body).unwrap();
                    assert!(error_body.is_valid(&body), "{method} {path} with {what}: not the error body");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 14 * 5, "only {checked} requests were checked");
}

/// The error codes the document lists (`ErrorDetail.code`) are exactly those `error.rs` can
/// put in an answer (each `Self::new(StatusCode::..., "code", ...)`), so a new code cannot be
/// sent without the contract saying so.
#[test]
fn the_documented_error_codes_are_the_ones_the_server_sends() {
    let src = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/error.rs")).unwrap();
    let mut sent = BTreeSet::new();
    for after in src.split("StatusCode::").skip(1) {
        let Some((_, rest)) = after.split_once(',') else { continue };
        let rest = rest.trim_start();
        if let Some(quoted) = rest.strip_prefix('"') {
            sent.insert(quoted.split('"').next().unwrap().to_owned());
        }
    }
    assert!(sent.len() >= 10, "the scan of error.rs found too few codes: {sent:?}");
    let doc = document();
    let documented: BTreeSet<String> = doc["components"]["schemas"]["ErrorDetail"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(sent, documented);
}

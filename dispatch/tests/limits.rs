//! Limits that hold under abuse (issue 14, part 3): what a caller without credentials, a client
//! that sends the wrong kind of body, a connection that stalls, a device that pushes without
//! end, or someone guessing enrolment codes can make the server do. Each test talks to a real
//! server over a real socket, many of them byte by byte, because what is under test is what the
//! server does before a well-behaved client library would have finished. Where a limit is about
//! time (a quota window, the life of an applied key), the test moves the stored times back
//! rather than wait.

use jobseal::enrolment::{build_request, EnrolmentCode};
use jobseal::envelope::generate_keypair;
use jobseal::sync::wire::{EventBody, OutboxEvent};
use jobseal::{DeviceBundle, JobState, BUNDLE_FORMAT};
use jobseal_dispatch::{
    CodeStatus, EnrolRate, RunningServer, ServerConfig, Timeouts, APPLIED_KEY_HORIZON_MS, MAX_CODE_FAILURES,
    MAX_REPORTS_PER_WINDOW, QUOTA_WINDOW_MS,
};
use jobseal_testkit::device::vault_at;
use jobseal_testkit::server::{quote, TestDatabase, TestDispatch, OPERATOR_TOKEN};
use jobseal_testkit::sheet::{t0, Sheet};
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Opens a raw connection to the server with a read timeout.
fn connect(kit: &TestDispatch, read_timeout: Duration) -> TcpStream {
    let conn = TcpStream::connect(kit.server().addr()).unwrap();
    conn.set_read_timeout(Some(read_timeout)).unwrap();
    conn
}

/// The status line's code of the answer on `conn`, or `None` if none came before the read
/// timeout or the server closed the connection without answering.
fn status(conn: &mut TcpStream) -> Option<u16> {
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).ok()?;
    std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
}

/// A caller without a valid device token gets its 401 from a device endpoint before the server
/// reads its body and without waiting for the write lock: here the lock is held (another process
/// holds the database's write transaction, and a genuine device's sync waits for it under the
/// server's own lock), and the caller announces a large body (under the limit) of which it sends
/// only the first bytes, never the rest. Before issue 14 the server read the whole body, then
/// queued for the lock, then looked at the token.
#[test]
fn device_endpoints_refuse_a_bad_token_before_the_body_and_the_lock() {
    let kit = TestDispatch::start();
    let device = vault_at(0);
    let bundle = kit.enrol(&device.vault, 2);
    let token = device.vault.device_token_insecure_for_testing().unwrap().unwrap();

    // Another writer holds the database; a genuine sync queues behind it, holding the server's lock.
    let holder = kit.database().hold_writes();
    let client = kit.client();
    let genuine = std::thread::spawn(move || {
        let body = serde_json::json!({"device_id": bundle.device_id, "events": [], "nonce": "ab".repeat(32)});
        client.post("/v1/sync", Some(&token), &body).0
    });
    std::thread::sleep(Duration::from_millis(300));

    let wrong = format!("Authorization: Bearer {}\r\n", "0".repeat(64));
    for path in ["/v1/sync", "/v1/prekeys"] {
        for auth in ["", "Authorization: Bearer short\r\n", wrong.as_str()] {
            let started = Instant::now();
            let mut conn = connect(&kit, Duration::from_secs(3));
            write!(
                conn,
                "POST {path} HTTP/1.1\r\nHost: test\r\n{auth}Content-Type: application/json\r\n\
                 Content-Length: 1000000\r\n\r\n{{\"device_id\": "
            )
            .unwrap();
            assert_eq!(status(&mut conn), Some(401), "{path} with {auth:?}: no 401 while the body is unsent");
            assert!(started.elapsed() < Duration::from_secs(2), "{path}: the 401 waited for the lock");
        }
    }

    holder.release();
    assert_eq!(genuine.join().unwrap(), 200, "the genuine sync went through once the lock was free");
}

/// Sends one request on a fresh connection (closed after the answer) and returns the status and
/// the body as JSON (`Null` if empty).
fn call(kit: &TestDispatch, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let (status, _, body) = call_with_head(kit, method, path, headers, body);
    (status, body)
}

/// Every endpoint that takes a JSON body refuses a body declared as anything else, or not
/// declared at all, with 415 in the one error shape, and accepts `application/json` with
/// parameters and in any case. Checked after the credentials: a caller without them still gets
/// 401.
#[test]
fn json_bodies_must_be_declared_as_json() {
    let kit = TestDispatch::start();
    let device = vault_at(0);
    let bundle = kit.enrol(&device.vault, 2);
    let token = device.vault.device_token_insecure_for_testing().unwrap().unwrap();
    let (device_auth, operator_auth) = (format!("Bearer {token}"), format!("Bearer {OPERATOR_TOKEN}"));
    let sync = json!({"device_id": bundle.device_id, "events": [], "nonce": "ab".repeat(32)}).to_string();
    let job = Uuid::new_v4();
    let create = json!({"device_id": bundle.device_id, "sheet": Sheet::new(job).json()}).to_string();
    let reassign_path = format!("/v1/operator/jobs/{job}/reassign");
    let endpoints: [(&str, &str, &str); 6] = [
        ("/v1/enrol", "", "{}"),
        ("/v1/sync", &device_auth, &sync),
        ("/v1/prekeys", &device_auth, r#"{"prekeys": [], "nonce": ""}"#),
        ("/v1/operator/jobs", &operator_auth, &create),
        (&reassign_path, &operator_auth, "{}"),
        ("/v1/operator/enrolment-codes", &operator_auth, "{}"),
    ];
    for (path, auth, body) in endpoints {
        let mut headers = vec![];
        if !auth.is_empty() {
            headers.push(("Authorization", auth));
        }
        for refused in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx")]
        {
            let mut headers = headers.clone();
            headers.extend(refused.map(|t| ("Content-Type", t)));
            let (status, answer) = call(&kit, "POST", path, &headers, body.as_bytes());
            assert_eq!(status, 415, "{path} with {refused:?}: {answer}");
            assert_eq!(answer["error"]["code"], "unsupported_media_type", "{path}: {answer}");
            assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
        }
        if !auth.is_empty() {
            // Without credentials, the answer is 401 whatever the type.
            let (status, _) = call(&kit, "POST", path, &[("Content-Type", "text/plain")], body.as_bytes());
            assert_eq!(status, 401, "{path}");
        }
    }
    // Declared as JSON, with parameters and in another case: accepted.
    for (i, accepted) in ["application/json; charset=utf-8", "Application/JSON", "application/json;charset=UTF-8"]
        .into_iter()
        .enumerate()
    {
        let headers = [("Authorization", device_auth.as_str()), ("Content-Type", accepted)];
        assert_eq!(call(&kit, "POST", "/v1/sync", &headers, sync.as_bytes()).0, 200, "{accepted}");
        let headers = [("Authorization", operator_auth.as_str()), ("Content-Type", accepted)];
        let create = json!({"device_id": bundle.device_id, "sheet": Sheet::new(Uuid::from_u128(i as u128 + 1)).json()});
        let (status, answer) = call(&kit, "POST", "/v1/operator/jobs", &headers, create.to_string().as_bytes());
        assert_eq!(status, 200, "{accepted}: {answer}");
    }
    // An endpoint whose body is optional takes a request that declares none.
    let (status, answer) =
        call(&kit, "POST", "/v1/operator/enrolment-codes", &[("Authorization", &operator_auth)], b"");
    assert_eq!(status, 200, "{answer}");
}

/// A server on a fresh database with short timeouts, and its folder.
fn start_with(timeouts: Timeouts) -> (RunningServer, (TestDatabase, tempfile::TempDir)) {
    start_limited(timeouts, EnrolRate::default())
}

/// The single number `sql` selects, read from the server's database directly.
fn count(kit: &TestDispatch, sql: &str) -> i64 {
    kit.database().sql(sql)[0][0].as_deref().unwrap().parse().unwrap()
}

/// A server on a fresh database with the given timeouts and enrolment rate, and its folder.
fn start_limited(timeouts: Timeouts, enrol_rate: EnrolRate) -> (RunningServer, (TestDatabase, tempfile::TempDir)) {
    let dir = tempfile::tempdir().unwrap();
    let database = TestDatabase::new(&dir.path().join("dispatch.db"));
    let server = RunningServer::start(ServerConfig {
        database: database.database(),
        addr: "127.0.0.1:0".parse().unwrap(),
        operator_token: OPERATOR_TOKEN.into(),
        timeouts,
        metrics_token: None,
        enrol_rate,
    })
    .unwrap();
    (server, (database, dir))
}

/// Waits for the server to answer or close `conn`; returns the answer's status (`None`: closed
/// without one, or what came was the rest of an earlier answer) and how long it took. Panics if the connection is still open after 5 s.
fn outcome(conn: &mut TcpStream, started: Instant) -> (Option<u16>, Duration) {
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut answer = Vec::new();
    let result = conn.read_to_end(&mut answer);
    let elapsed = started.elapsed();
    if let Err(e) = result {
        assert!(
            !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
            "the connection is still open after {elapsed:?}"
        );
    }
    let status =
        answer.starts_with(b"HTTP/1.1 ").then(|| std::str::from_utf8(&answer[9..12]).unwrap().parse().unwrap());
    (status, elapsed)
}

/// A connection that sends half a header line and stalls, one that sends nothing, and one kept
/// alive and idle after an answer are all closed once the header timeout has passed; a body that
/// stalls gets 408 in the one error shape after the body timeout. Before issue 14 (`axum::serve`)
/// the first three were held open for as long as the client liked, and the body was waited for
/// forever.
#[test]
fn stalled_headers_idle_connections_and_stalled_bodies_are_cut_off() {
    let timeouts = Timeouts { header_read: Duration::from_millis(600), body_read: Duration::from_millis(600) };
    let (server, _dir) = start_with(timeouts);
    let connect = || {
        let conn = TcpStream::connect(server.addr()).unwrap();
        (conn, Instant::now())
    };
    let in_time = |elapsed: Duration, what: &str| {
        assert!(elapsed >= Duration::from_millis(500), "{what}: cut off before the timeout ({elapsed:?})");
        assert!(elapsed < Duration::from_secs(4), "{what}: held for {elapsed:?}");
    };

    // Half a header line, then nothing.
    let (mut conn, started) = connect();
    conn.write_all(b"POST /v1/sync HTTP/1.1\r\nHost: te").unwrap();
    let (status, elapsed) = outcome(&mut conn, started);
    assert!(matches!(status, None | Some(408)), "half a header: {status:?}");
    in_time(elapsed, "half a header");

    // Nothing at all.
    let (mut conn, started) = connect();
    let (status, elapsed) = outcome(&mut conn, started);
    assert!(matches!(status, None | Some(408)), "silent: {status:?}");
    in_time(elapsed, "a silent connection");

    // A complete request on a kept-alive connection, then silence.
    let (mut conn, _) = connect();
    conn.write_all(b"GET /v1/dispatch-key HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut first = [0u8; 12];
    conn.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let started = Instant::now();
    let (_, elapsed) = outcome(&mut conn, started);
    in_time(elapsed, "an idle kept-alive connection");

    // A body that stalls after its first bytes.
    let (mut conn, started) = connect();
    conn.write_all(
        b"POST /v1/enrol HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"format\"",
    )
    .unwrap();
    let mut answer = Vec::new();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = conn.read_to_end(&mut answer);
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "a stalled body: {text}");
    let body: Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body, json!({"error": {"code": "timeout", "message": "the request body did not arrive in time"}}));
    in_time(elapsed, "a stalled body");

    // Requests that keep within the timeouts are served as before.
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(b"GET /v1/dispatch-key HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    server.shutdown();
}

/// Shutdown stops accepting but lets a request in flight finish: a body still arriving when
/// shutdown starts is read to its end and answered, then the server stops.
#[test]
fn shutdown_lets_a_request_in_flight_finish() {
    let (server, _dir) = start_with(Timeouts::default());
    let addr = server.addr();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let body = br#"{"valid_for_seconds": 600}"#;
    write!(
        conn,
        "POST /v1/operator/enrolment-codes HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body[..5]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let stopping = std::thread::spawn(move || server.shutdown());
    std::thread::sleep(Duration::from_millis(300));
    assert!(TcpStream::connect(addr).is_err(), "still accepting after shutdown began");
    conn.write_all(&body[5..]).unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    stopping.join().unwrap();
}

// ---------------------------------------------------------------------------------------------
// Per-device quotas and the pruning of applied keys
// ---------------------------------------------------------------------------------------------

/// The nonce of the hand-made sync requests (a real device draws a fresh one each time).
const NONCE: &str = "6e6f6e63652d666f722d746573742d6f6e6c792d6e6f742d72616e646f6d2121";

/// An enrolled device with one job sealed to it, driven by hand-made sync requests.
struct Pusher {
    kit: TestDispatch,
    device: Uuid,
    token: String,
    job: Uuid,
    _vault: jobseal_testkit::device::TestVault,
}

impl Pusher {
    fn start() -> Pusher {
        let kit = TestDispatch::start();
        let vault = vault_at(0);
        let device = kit.enrol(&vault.vault, 2).device_id;
        let token = vault.vault.device_token_insecure_for_testing().unwrap().unwrap();
        let job = Uuid::new_v4();
        kit.operator().create_job(device, &Sheet::new(job).json());
        Pusher { kit, device, token, job, _vault: vault }
    }

    fn event(&self, seq: u64, body: EventBody) -> OutboxEvent {
        OutboxEvent { key: Uuid::now_v7(), seq, job_id: Some(self.job), at: t0(), body }
    }

    fn report(&self, seq: u64) -> OutboxEvent {
        self.event(seq, EventBody::Report { text: "Replaced the fake test router.".into() })
    }

    fn state(&self, seq: u64, from: JobState, to: JobState) -> OutboxEvent {
        self.event(seq, EventBody::State { from, to })
    }

    /// Pushes `events`; the status, the `Retry-After` header if any, and the body.
    fn push(&self, events: &[OutboxEvent]) -> (u16, Option<u64>, Value) {
        let body = json!({"device_id": self.device, "events": events, "nonce": NONCE}).to_string();
        let auth = format!("Bearer {}", self.token);
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        call_with_head(&self.kit, "POST", "/v1/sync", &headers, body.as_bytes())
    }

    /// The keys a 200 answer acknowledged.
    fn acked(answer: &Value) -> Vec<Uuid> {
        serde_json::from_value(answer["answer"]["acked"].clone()).unwrap()
    }

    /// Runs `sql` on the server's database from outside (to move stored times back); `?1` is
    /// the device's id.
    fn age(&self, sql: &str) {
        self.kit.database().sql(&sql.replace("?1", &quote(&self.device.to_string())));
    }

    fn history(&self) -> usize {
        self.kit.operator().job(self.job).history.len()
    }

    fn events_applied(&self) -> u64 {
        self.kit.operator().device(self.device).events_applied
    }
}

/// [`call`], also returning the answer's `Retry-After` header.
fn call_with_head(
    kit: &TestDispatch,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Option<u64>, Value) {
    let mut conn = connect(kit, Duration::from_secs(30));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    conn.write_all(head.as_bytes()).unwrap();
    conn.write_all(body).unwrap();
    let mut answer = Vec::new();
    conn.read_to_end(&mut answer).unwrap();
    let text = String::from_utf8(answer).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete answer");
    let retry_after = head
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case("retry-after")))
        .map(|(_, v)| v.trim().parse().unwrap());
    (head[9..12].parse().unwrap(), retry_after, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// A device that pushes more completion reports than [`MAX_REPORTS_PER_WINDOW`] in one window
/// gets 429 `quota_exceeded` with `Retry-After` for the whole request, which changes nothing
/// (not even the state change that came with the reports); resending what was already applied is
/// not charged; once the window has passed the same request goes through, so the device's outbox
/// is delayed, never jammed. Before issue 14 events, reports and audit records per device were
/// unbounded.
#[test]
fn a_device_over_its_quota_is_refused_whole_until_the_window_has_passed() {
    let p = Pusher::start();
    let per_push = 500;
    let full: Vec<Vec<OutboxEvent>> = (0..MAX_REPORTS_PER_WINDOW / per_push)
        .map(|b| (1..=per_push).map(|i| p.report(b * per_push + i)).collect())
        .collect();
    for batch in &full {
        let (status, _, answer) = p.push(batch);
        assert_eq!(status, 200, "{answer}");
    }
    let next = MAX_REPORTS_PER_WINDOW + 1;
    let over = vec![p.state(next, JobState::Assigned, JobState::EnRoute), p.report(next + 1)];
    let (status, retry_after, answer) = p.push(&over);
    assert_eq!(status, 429, "{answer}");
    assert_eq!(answer["error"]["code"], "quota_exceeded", "{answer}");
    assert_eq!(answer.as_object().unwrap().len(), 1, "{answer}");
    let retry_after = retry_after.expect("a Retry-After header");
    assert!(retry_after > 0 && retry_after <= (QUOTA_WINDOW_MS / 1000) as u64, "Retry-After: {retry_after}");
    // Nothing of the refused request was applied.
    assert_eq!(p.events_applied(), MAX_REPORTS_PER_WINDOW);
    assert_eq!(p.history(), 0);
    // A retry of what was applied (its answer lost) is acknowledged and costs no quota.
    let (status, _, answer) = p.push(&full[0]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(Pusher::acked(&answer).len(), full[0].len());

    // The window passes: the refused request goes through as it was.
    p.age(&format!("UPDATE devices SET quota_window_ms = quota_window_ms - {QUOTA_WINDOW_MS} WHERE device_id = ?1"));
    let (status, _, answer) = p.push(&over);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(Pusher::acked(&answer), over.iter().map(|e| e.key).collect::<Vec<_>>());
    assert_eq!(p.history(), 1);
    assert_eq!(p.events_applied(), MAX_REPORTS_PER_WINDOW + 2);
}

/// Applied keys are pruned once they can no longer be replayed (below the lowest `seq` of a
/// later request, and older than the horizon), and a replay of the pruned events, byte for
/// byte, is acknowledged and applied nothing: the job's history does not grow. A fresh key
/// below the floor is not applied either. The operator's count of applied events keeps the
/// pruned ones. Before issue 14 the ledger was never pruned.
#[test]
fn pruned_keys_are_gone_and_their_replay_is_still_not_applied_twice() {
    let p = Pusher::start();
    let first =
        vec![p.state(1, JobState::Assigned, JobState::EnRoute), p.state(2, JobState::EnRoute, JobState::OnSite)];
    assert_eq!(p.push(&first).0, 200);
    assert_eq!(p.history(), 2);
    let keys = |p: &Pusher| -> i64 {
        count(
            &p.kit,
            &format!("SELECT count(*) FROM applied_events WHERE device_id = {}", quote(&p.device.to_string())),
        )
    };

    // Within the horizon nothing is pruned, whatever comes next.
    assert_eq!(p.push(&[p.report(3)]).0, 200);
    assert_eq!(keys(&p), 3);
    // Past it, the next request prunes every key below its lowest seq.
    p.age(&format!(
        "UPDATE applied_events SET applied_ms = applied_ms - {APPLIED_KEY_HORIZON_MS} - 1 WHERE device_id = ?1"
    ));
    assert_eq!(p.push(&[p.report(4)]).0, 200);
    assert_eq!(keys(&p), 1, "the keys below seq 4 are pruned");
    assert_eq!(p.events_applied(), 4);

    // The first request replayed exactly: acknowledged, not applied again.
    let (status, _, answer) = p.push(&first);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(Pusher::acked(&answer), first.iter().map(|e| e.key).collect::<Vec<_>>());
    assert_eq!(p.history(), 2, "a replayed pruned key was applied twice");
    // An event below the floor under a fresh key: acknowledged, not applied.
    let late = p.state(2, JobState::OnSite, JobState::Completed);
    let (status, _, answer) = p.push(std::slice::from_ref(&late));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(Pusher::acked(&answer), vec![late.key]);
    assert_eq!(p.history(), 2);
    assert_eq!(keys(&p), 1);
    assert_eq!(p.events_applied(), 4);
}

// ---------------------------------------------------------------------------------------------
// Enrolment: per code and per source
// ---------------------------------------------------------------------------------------------

/// A bundle of a new device with one prekey, and its identity secret.
fn bundle() -> (jobseal::SecretKey, DeviceBundle) {
    let (identity, identity_key) = generate_keypair().unwrap();
    let prekeys = vec![jobseal::Prekey { id: 1, public_key: generate_keypair().unwrap().1 }];
    (identity, DeviceBundle { format: BUNDLE_FORMAT.into(), device_id: Uuid::new_v4(), identity_key, prekeys })
}

/// An issued code's id with another secret part: what a guesser (or a bad typist) sends.
fn guess(code: &EnrolmentCode) -> EnrolmentCode {
    let other = EnrolmentCode::generate().unwrap();
    EnrolmentCode::parse(&format!("{}{}", code.id(), &other.display()[5..])).unwrap()
}

/// [`MAX_CODE_FAILURES`] wrong proofs for one code lock it: its holder, coming with the right
/// code afterwards, gets 403 and enrols nothing, and the operator sees the code revoked. One
/// wrong proof fewer leaves a code usable. Before issue 14 a code could be tried without end.
#[test]
fn an_enrolment_code_is_locked_after_too_many_wrong_proofs() {
    let kit = TestDispatch::start();
    let (op, client) = (kit.operator(), kit.client());
    let enrol = |code: &EnrolmentCode| {
        let (identity, bundle) = bundle();
        let req = build_request(bundle, &identity, &kit.key(), Some(code)).unwrap();
        client.post("/v1/enrol", None, &serde_json::to_value(&req).unwrap())
    };
    let issued = |op: &jobseal_testkit::Operator| EnrolmentCode::parse(&op.issue_code().code).unwrap();

    // One short of the limit: the right code still enrols.
    let almost = issued(&op);
    for _ in 1..MAX_CODE_FAILURES {
        assert_eq!(enrol(&guess(&almost)).0, 401);
    }
    let (status, answer) = enrol(&almost);
    assert_eq!(status, 200, "{answer}");

    let locked = issued(&op);
    for _ in 0..MAX_CODE_FAILURES {
        let (status, answer) = enrol(&guess(&locked));
        assert_eq!((status, answer["error"]["code"].as_str()), (401, Some("unauthorized")), "{answer}");
    }
    let (status, answer) = enrol(&locked);
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["error"]["code"], "forbidden", "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("locked"), "{answer}");
    let view = op.codes().codes.into_iter().find(|c| c.code_id == locked.id()).unwrap();
    assert_eq!(view.status, CodeStatus::Revoked);
    assert!(view.used_by.is_none());
}

/// One address that sends more enrolment requests than its burst gets 429 `rate_limited` with
/// `Retry-After`, counted before the body is read (a request that announces a large body and
/// sends none is answered at once), and even a valid enrolment from it waits; the limit is per
/// address, and the other endpoints are not limited by it. Before issue 14 one source could
/// enrol as fast as it liked (measured: 56 enrolments/s of 2,000 prekeys each).
#[test]
fn one_source_cannot_hammer_enrolment() {
    let (server, _dir) = start_limited(Timeouts::default(), EnrolRate { burst: 3, per_minute: 1 });
    let client = jobseal_testkit::Client::new(&server.base_url());
    for _ in 0..3 {
        assert_eq!(client.post("/v1/enrol", None, &json!({})).0, 400);
    }
    // Over the limit: refused before the body, which never comes.
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    conn.write_all(
        b"POST /v1/enrol HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{",
    )
    .unwrap();
    let mut head = [0u8; 12];
    conn.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 429");

    // A genuine enrolment from the same address is refused too, with the one error shape.
    let operator = jobseal_testkit::Operator::new(&server.base_url(), OPERATOR_TOKEN);
    let code = EnrolmentCode::parse(&operator.issue_code().code).unwrap();
    let (identity, bundle) = bundle();
    let req = build_request(bundle.clone(), &identity, &server.dispatch_key(), Some(&code)).unwrap();
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let body = serde_json::to_vec(&req).unwrap();
    write!(
        conn,
        "POST /v1/enrol HTTP/1.1\r\nHost: test\r\nConnection: close\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    conn.write_all(&body).unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 429"), "{head}");
    let retry_after: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: ").or_else(|| l.strip_prefix("Retry-After: ")))
        .expect("a Retry-After header")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let status = operator.call("GET", &format!("/v1/operator/devices/{}", bundle.device_id), None).0;
    assert_eq!(status, 404, "the refused enrolment enrolled nothing");
    // Other endpoints are not counted against the enrolment limit.
    assert_eq!(client.get("/v1/dispatch-key", None).0, 200);
    server.shutdown();
}

/// A sheet whose times are outside any sane range (the epoch, the year 2999) is refused with a
/// 400 naming the field, and nothing is stored; the fixture's 2030 sheets pass.
#[test]
fn sheet_times_outside_a_sane_range_are_refused() {
    use chrono::TimeZone;
    let kit = TestDispatch::start();
    let op = kit.operator();
    let vault = vault_at(0);
    let device = kit.enrol(&vault.vault, 3).device_id;
    let epoch = chrono::Utc.timestamp_opt(0, 0).unwrap();
    let far = chrono::Utc.with_ymd_and_hms(2999, 1, 1, 0, 0, 0).unwrap();
    // Whole days out of range: the sheet's own rules (expiry at most 14 days after the window
    // opens) hold, only the absolute times are wrong.
    let day = |start: chrono::DateTime<chrono::Utc>| {
        Sheet::new(Uuid::new_v4())
            .window(start, start + chrono::Duration::hours(2))
            .expiry(start + chrono::Duration::days(1))
    };
    let cases = [("window.start", day(epoch)), ("window.start", day(far))];
    for (field, sheet) in cases {
        let (status, body) = op.post_job(device, &sheet.json());
        assert_eq!(status, 400, "{field}: {body}");
        assert!(body["error"]["message"].as_str().unwrap().contains(field), "{body}");
        assert_eq!(op.call("GET", &format!("/v1/operator/jobs/{}", sheet.id()), None).0, 404, "{field} was stored");
    }
    assert_eq!(op.post_job(device, &Sheet::new(Uuid::new_v4()).json()).0, 200);
}

/// Quotas count events, so each stored event is bounded in size too: a report longer than the
/// core's limit, or an audit record with an oversized detail or field or hashes of the wrong
/// length, is acknowledged (the outbox drains) and not stored, so a rooted device cannot fill
/// dispatch's disk with a few thousand 1 MiB records a day. Records within the limits are kept.
/// So is a report with a NUL character (on either database).
#[test]
fn oversized_reports_and_audit_records_are_acknowledged_not_stored() {
    use jobseal::sync::wire::AuditRecord;
    use jobseal::AuditKind;
    use jobseal_dispatch::{MAX_AUDIT_DETAIL_CHARS, MAX_AUDIT_FIELD_CHARS, MAX_REPORT_CHARS};
    let p = Pusher::start();
    let record = |seq: u64, field: usize, detail: usize, hash: usize| {
        p.event(
            seq,
            EventBody::Audit(AuditRecord {
                seq,
                at_ms: t0().timestamp_millis(),
                kind: AuditKind::Reveal,
                field: Some("f".repeat(field)),
                state: Some(JobState::OnSite),
                detail: Some("d".repeat(detail)),
                prev_hash: vec![0; 32],
                hash: vec![1; hash],
            }),
        )
    };
    let report = |seq: u64, chars: usize| p.event(seq, EventBody::Report { text: "r".repeat(chars) });
    let oversized = vec![
        report(1, MAX_REPORT_CHARS + 1),
        record(2, 8, MAX_AUDIT_DETAIL_CHARS + 1, 32),
        record(3, MAX_AUDIT_FIELD_CHARS + 1, 8, 32),
        record(4, 8, 8, 31),
        record(5, 8, 8, 1000),
        // U+0000, which PostgreSQL text cannot hold: refused alike on both databases (it used to
        // fail the whole sync on PostgreSQL, and every retry of the device's outbox with it).
        p.event(8, EventBody::Report { text: "fitted\0".into() }),
    ];
    let (status, _, answer) = p.push(&oversized);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(Pusher::acked(&answer), oversized.iter().map(|e| e.key).collect::<Vec<_>>());
    let count = |table: &str| -> i64 { count(&p.kit, &format!("SELECT count(*) FROM {table}")) };
    assert_eq!((count("reports"), count("audit_records")), (0, 0), "an oversized event was stored");
    // At the limits, both are kept.
    let (status, _, answer) =
        p.push(&[report(6, MAX_REPORT_CHARS), record(7, MAX_AUDIT_FIELD_CHARS, MAX_AUDIT_DETAIL_CHARS, 32)]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!((count("reports"), count("audit_records")), (1, 1));
}

/// A view (the operator's, the console's) reads on a connection of its own: while another
/// connection holds the database's write transaction, as a long sync would hold the server's
/// write lock, a job view still answers.
#[test]
fn views_do_not_wait_for_the_writer() {
    let p = Pusher::start();
    let db = p.kit.database().hold_writes();
    std::thread::scope(|s| {
        // A genuine sync takes the server's write lock and waits there for the database.
        let sync = s.spawn(|| p.push(&[]).0);
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let (status, _) = p.kit.operator().call("GET", &format!("/v1/operator/jobs/{}", p.job), None);
        let waited = started.elapsed();
        db.release();
        assert_eq!(status, 200);
        assert!(waited < Duration::from_secs(2), "the view waited {waited:?} behind the write lock");
        assert_eq!(sync.join().unwrap(), 200, "the sync goes through once the database is free");
    });
}

//! Limits that hold under abuse (issue 14, part 3): what a caller without credentials, a client
//! that sends the wrong kind of body, or a connection that stalls can make the server do. Each
//! test talks to a real server over a real socket, most of them byte by byte, because what is
//! under test is what the server does before a well-behaved client library would have finished.

use jobseal_dispatch::{RunningServer, ServerConfig, Timeouts};
use jobseal_testkit::device::vault_at;
use jobseal_testkit::server::{TestDispatch, OPERATOR_TOKEN};
use jobseal_testkit::sheet::Sheet;
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
    let holder = rusqlite::Connection::open(kit.db_path()).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
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

    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(genuine.join().unwrap(), 200, "the genuine sync went through once the lock was free");
}

/// Sends one request on a fresh connection (closed after the answer) and returns the status and
/// the body as JSON (`Null` if empty).
fn call(kit: &TestDispatch, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, Value) {
    let mut conn = connect(kit, Duration::from_secs(10));
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
    let status = head[9..12].parse().unwrap();
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
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
fn start_with(timeouts: Timeouts) -> (RunningServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = RunningServer::start(ServerConfig {
        db_path: dir.path().join("dispatch.db"),
        addr: "127.0.0.1:0".parse().unwrap(),
        operator_token: OPERATOR_TOKEN.into(),
        timeouts,
        metrics_token: None,
    })
    .unwrap();
    (server, dir)
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

//! Limits that hold under abuse (issue 14, part 3): what a caller without credentials, a client
//! that sends the wrong kind of body, or a connection that stalls can make the server do. Each
//! test talks to a real server over a real socket, most of them byte by byte, because what is
//! under test is what the server does before a well-behaved client library would have finished.

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

//! Limits that hold under abuse (issue 14, part 3): what a caller without credentials, a client
//! that sends the wrong kind of body, or a connection that stalls can make the server do. Each
//! test talks to a real server over a real socket, most of them byte by byte, because what is
//! under test is what the server does before a well-behaved client library would have finished.

use jobseal_testkit::device::vault_at;
use jobseal_testkit::server::TestDispatch;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

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

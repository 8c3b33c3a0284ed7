//! Several dispatch instances on one PostgreSQL database, and PostgreSQL going away under a
//! running instance.
//!
//! A telecom runs dispatch behind a load balancer: one device's retried sync can land on two
//! instances at the same moment, and two dispatchers can update one job on two instances at once.
//! The guarantees that SQLite's single writer gave for free (exactly-once events, single-use
//! prekeys, one winner per sheet version, receipt verification) must hold across instances, and
//! they rest on PostgreSQL's serializable transactions (`dispatch/src/store.rs`). These tests need
//! a PostgreSQL server: they are `#[ignore]`d in the plain run and run by the test command under
//! `scripts/with-postgres.sh` with `--include-ignored`, where they fail loudly if
//! `JOBSEAL_TEST_POSTGRES` is missing.

use crate::api::{enrol_hand_device, event, sheet, unwrap_answer, HandDevice, NONCE};
use jobseal::sync::wire::{EventBody, OutboxEvent, SyncResponse};
use jobseal::{JobState, RecipientKeyId};
use jobseal_dispatch::{Database, EnrolRate, RunningServer, ServerConfig, Timeouts};
use jobseal_testkit::server::{TestDatabase, OPERATOR_TOKEN};
use jobseal_testkit::{Client, Operator};
use serde_json::json;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const NEEDS_POSTGRES: &str = "JOBSEAL_TEST_POSTGRES is not set: run under scripts/with-postgres.sh";

/// A fresh PostgreSQL database of its own (and the folder `TestDatabase` wants for a SQLite file
/// it does not make); fails, never skips, without a PostgreSQL server.
fn postgres_database() -> (TestDatabase, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDatabase::new(&dir.path().join("unused.db"));
    assert!(db.is_postgres(), "{NEEDS_POSTGRES}");
    (db, dir)
}

fn start(database: Database) -> RunningServer {
    RunningServer::start(ServerConfig {
        database,
        addr: "127.0.0.1:0".parse().unwrap(),
        operator_token: OPERATOR_TOKEN.into(),
        timeouts: Timeouts::default(),
        metrics_token: None,
        enrol_rate: EnrolRate { burst: u32::MAX, per_minute: u32::MAX },
    })
    .unwrap()
}

fn sync(http: &Client, dev: &HandDevice, events: &[OutboxEvent]) -> (u16, serde_json::Value) {
    http.post("/v1/sync", Some(&dev.token), &json!({"device_id": dev.id, "events": events, "nonce": NONCE}))
}

/// Three instances, twelve devices. Every device's jobs are created at the same moment on
/// different instances, one job per device gets a new version posted to all three at once, and
/// every device sends the same batch (state changes, reports, a signed shred receipt) to all
/// three instances at once, twice. At the end: every sheet went to its own prekey, exactly one
/// new version won, every event was acknowledged by every answer and applied exactly once, and
/// each receipt was verified and stored once.
#[test]
#[ignore = "needs PostgreSQL: the test command runs it under scripts/with-postgres.sh"]
fn three_instances_on_one_database_lose_nothing_and_apply_nothing_twice() {
    const DEVICES: usize = 12;
    const JOBS: usize = 4;
    let (db, _dir) = postgres_database();
    // Started together on the empty database: one migrates and makes the key, the others wait
    // for the migration lock and take both.
    let servers: Vec<RunningServer> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..3).map(|_| s.spawn(|| start(db.database()))).collect();
        starting.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let key = servers[0].dispatch_key();
    assert!(servers.iter().all(|s| s.dispatch_key() == key), "every instance has the one dispatch key");
    let http: Vec<Client> = servers.iter().map(|s| Client::new(&s.base_url())).collect();
    let ops: Vec<Operator> = servers.iter().map(|s| Operator::new(&s.base_url(), OPERATOR_TOKEN)).collect();

    // Enrolled through one instance with a code issued by another.
    let devices: Vec<HandDevice> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..DEVICES)
            .map(|i| {
                let (http, op) = (&http[i % 3], &ops[(i + 1) % 3]);
                s.spawn(move || enrol_hand_device(http, op, &key, JOBS as u32 + 2))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // Each device's jobs are created at once, on different instances: each takes its own prekey.
    let jobs: Vec<Vec<Uuid>> = devices.iter().map(|_| (0..JOBS).map(|_| Uuid::new_v4()).collect()).collect();
    std::thread::scope(|s| {
        for (d, dev) in devices.iter().enumerate() {
            for (j, job) in jobs[d].iter().enumerate() {
                let op = &ops[(d + j) % 3];
                s.spawn(move || assert!(op.create_job(dev.id, &sheet(*job, 1)).sealed_to.is_some()));
            }
        }
    });
    for (d, dev) in devices.iter().enumerate() {
        let prekeys: HashSet<u32> = jobs[d]
            .iter()
            .map(|job| match ops[0].job(*job).delivery.unwrap().sealed_to {
                RecipientKeyId::Prekey(id) => id,
                other => panic!("job sealed to {other:?} while prekeys were left"),
            })
            .collect();
        assert_eq!(prekeys.len(), JOBS, "device {}: a prekey was used twice", dev.id);
    }

    // Version 2 of each device's first job, posted to all three instances at once: one wins.
    std::thread::scope(|s| {
        for (d, dev) in devices.iter().enumerate() {
            let job = jobs[d][0];
            let results: Vec<_> = ops.iter().map(|op| s.spawn(move || op.post_job(dev.id, &sheet(job, 2)).0)).collect();
            s.spawn(move || {
                let mut statuses: Vec<u16> = results.into_iter().map(|h| h.join().unwrap()).collect();
                statuses.sort_unstable();
                assert_eq!(statuses, vec![200, 409, 409], "one new version wins, the others conflict");
            });
        }
    });

    // The same batch to all three instances at once, twice: each answer acknowledges it all.
    let batches: Vec<Vec<OutboxEvent>> = devices
        .iter()
        .enumerate()
        .map(|(d, dev)| {
            let mut events = Vec::new();
            for (j, job) in jobs[d].iter().enumerate() {
                let seq = 3 * j as u64 + 1;
                events.push(event(
                    Some(*job),
                    seq,
                    EventBody::State { from: JobState::Assigned, to: JobState::EnRoute },
                ));
                events.push(event(Some(*job), seq + 1, EventBody::Report { text: format!("Fitted outlet {j}.") }));
            }
            events.push(event(Some(jobs[d][1]), 100, EventBody::Receipt(dev.receipt(key, jobs[d][1], 1))));
            events
        })
        .collect();
    std::thread::scope(|s| {
        for (d, dev) in devices.iter().enumerate() {
            for round in 0..2 {
                for (i, http) in http.iter().enumerate() {
                    let events = &batches[d];
                    s.spawn(move || {
                        let answer = sync(http, dev, events);
                        assert_eq!(answer.0, 200, "instance {i}, round {round}: {}", answer.1);
                        let pull: SyncResponse = unwrap_answer(answer);
                        assert_eq!(pull.acked, events.iter().map(|e| e.key).collect::<Vec<_>>());
                    });
                }
            }
        }
    });

    for (d, dev) in devices.iter().enumerate() {
        let op = &ops[d % 3];
        assert_eq!(op.device(dev.id).events_applied, batches[d].len() as u64, "device {}", dev.id);
        for (j, job) in jobs[d].iter().enumerate() {
            let view = op.job(*job);
            assert_eq!(view.history.len(), 1, "job {job}: a state change applied twice or lost");
            assert_eq!(view.state, Some(JobState::EnRoute));
            assert_eq!(view.report.as_ref().unwrap().text, format!("Fitted outlet {j}."));
            assert_eq!(view.version, if j == 0 { 2 } else { 1 });
            if j == 1 {
                assert_eq!(view.receipts.len(), 1, "job {job}: the receipt stored more than once");
                assert!(view.receipts[0].verified, "job {job}: the receipt was not verified");
            }
        }
    }
    for server in servers {
        server.shutdown();
    }
}

/// A PostgreSQL database that a newer server migrated further is refused at start, and left as
/// it is.
#[test]
#[ignore = "needs PostgreSQL: the test command runs it under scripts/with-postgres.sh"]
fn a_postgres_database_migrated_by_a_newer_server_is_refused() {
    let (db, _dir) = postgres_database();
    start(db.database()).shutdown();
    db.sql(
        "INSERT INTO refinery_schema_history (version, name, applied_on, checksum)
         VALUES (99, 'from_the_future', '2027-01-01T00:00:00Z', '0')",
    );
    let refused = RunningServer::start(ServerConfig {
        database: db.database(),
        addr: "127.0.0.1:0".parse().unwrap(),
        operator_token: OPERATOR_TOKEN.into(),
        timeouts: Timeouts::default(),
        metrics_token: None,
        enrol_rate: EnrolRate::default(),
    });
    let error = refused.err().expect("a newer database is refused").to_string();
    assert!(error.contains("newer than this server"), "{error}");
    assert_eq!(db.sql("SELECT count(*) FROM refinery_schema_history")[0][0].as_deref(), Some("5"));
}

/// One device cannot fill the pool with requests waiting for its own lock: while another
/// session (a stuck instance) holds the device's advisory lock, 24 syncs of the device (more than
/// the pool's 16 connections) get 503 within the lock timeout, another device's sync meanwhile
/// goes through at once, and the device syncs again once the lock is free.
#[test]
#[ignore = "needs PostgreSQL: the test command runs it under scripts/with-postgres.sh"]
fn one_device_waiting_for_its_own_lock_cannot_starve_the_others() {
    use sha2::{Digest, Sha256};
    let (db, _dir) = postgres_database();
    let server = start(db.database());
    let (http, op) = (Client::new(&server.base_url()), Operator::new(&server.base_url(), OPERATOR_TOKEN));
    let (a, b) = (
        enrol_hand_device(&http, &op, &server.dispatch_key(), 2),
        enrol_hand_device(&http, &op, &server.dispatch_key(), 2),
    );
    let Database::Postgres(url) = db.database() else { unreachable!() };
    let mut stuck = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let key = i64::from_be_bytes(Sha256::digest(a.token.as_bytes())[..8].try_into().unwrap());
    stuck.execute("SELECT pg_advisory_lock($1)", &[&key]).unwrap();
    std::thread::scope(|s| {
        let waiting: Vec<_> = (0..24).map(|_| s.spawn(|| (Instant::now(), sync(&http, &a, &[])))).collect();
        std::thread::sleep(Duration::from_millis(500));
        let started = Instant::now();
        assert_eq!(sync(&http, &b, &[]).0, 200);
        assert!(started.elapsed() < Duration::from_secs(3), "the other device waited {:?}", started.elapsed());
        for h in waiting {
            let (started, (status, body)) = h.join().unwrap();
            assert_eq!(status, 503, "{body}");
            assert_eq!(body["error"]["code"], "storage_unavailable");
            assert!(started.elapsed() < Duration::from_secs(20), "a waiting sync took {:?}", started.elapsed());
        }
    });
    stuck.execute("SELECT pg_advisory_unlock($1)", &[&key]).unwrap();
    assert_eq!(sync(&http, &a, &[]).0, 200);
    server.shutdown();
}

/// A TCP relay between dispatch and PostgreSQL that the test can cut: while cut, it closes every
/// relayed connection and refuses new ones, as a network partition or a stopped server would.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    fn to(target: (String, u16)) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let open: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (up2, open2) = (up.clone(), open.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                if !up2.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect((target.0.as_str(), target.1)) else { continue };
                let mut list = open2.lock().unwrap();
                list.push(client.try_clone().unwrap());
                list.push(server.try_clone().unwrap());
                drop(list);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)]
                {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16 * 1024];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Relay { port, up, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for stream in self.open.lock().unwrap().drain(..) {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// PostgreSQL unreachable mid-run: device and operator requests get 503 `storage_unavailable`
/// within seconds, nothing of them is written, and once PostgreSQL is back the same requests go
/// through by themselves (no restart of dispatch), applied exactly once. Then PostgreSQL ends
/// every session of dispatch's (as a restart of the server does): dispatch reconnects on its own.
#[test]
#[ignore = "needs PostgreSQL: the test command runs it under scripts/with-postgres.sh"]
fn postgres_going_away_answers_503_changes_nothing_and_service_resumes() {
    let (db, _dir) = postgres_database();
    let Database::Postgres(url) = db.database() else { unreachable!() };
    let config: postgres::Config = url.parse().unwrap();
    let host = match &config.get_hosts()[0] {
        postgres::config::Host::Tcp(h) => h.clone(),
        other => panic!("the test server is on TCP, not {other:?}"),
    };
    let relay = Relay::to((host, config.get_ports()[0]));
    let via_relay =
        Database::Postgres(url.replacen(&format!(":{}/", config.get_ports()[0]), &format!(":{}/", relay.port), 1));
    let server = start(via_relay);
    let (http, op) = (Client::new(&server.base_url()), Operator::new(&server.base_url(), OPERATOR_TOKEN));
    let dev = enrol_hand_device(&http, &op, &server.dispatch_key(), 4);
    let job = Uuid::new_v4();
    op.create_job(dev.id, &sheet(job, 1));
    assert_eq!(sync(&http, &dev, &[]).0, 200);

    relay.cut();
    let state = event(Some(job), 1, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute });
    let during = Uuid::new_v4();
    let started = Instant::now();
    for (what, (status, body)) in [
        ("sync", sync(&http, &dev, std::slice::from_ref(&state))),
        ("new job", op.post_job(dev.id, &sheet(during, 1))),
        ("job view", op.call("GET", &format!("/v1/operator/jobs/{job}"), None)),
        ("enrolment code", op.call("POST", "/v1/operator/enrolment-codes", Some(json!({})))),
    ] {
        assert_eq!(status, 503, "{what}: {body}");
        assert_eq!(body["error"]["code"], "storage_unavailable", "{what}: {body}");
    }
    assert!(started.elapsed() < Duration::from_secs(30), "the 503s took {:?}", started.elapsed());

    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pull: SyncResponse = loop {
        let answer = sync(&http, &dev, std::slice::from_ref(&state));
        if answer.0 == 200 {
            break unwrap_answer(answer);
        }
        assert_eq!(answer.0, 503, "{}", answer.1);
        assert!(Instant::now() < deadline, "dispatch did not resume after PostgreSQL came back");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(pull.acked, vec![state.key]);
    let view = op.job(job);
    assert_eq!(view.history.len(), 1);
    assert_eq!(op.call("GET", &format!("/v1/operator/jobs/{during}"), None).0, 404, "the job posted during the outage");

    // Every session of this database ended by PostgreSQL, as its restart would.
    let name = config.get_dbname().unwrap().to_owned();
    let mut admin =
        postgres::Client::connect(&jobseal_testkit::server::postgres_admin_url().unwrap(), postgres::NoTls).unwrap();
    let ended = admin
        .query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", &[&name])
        .unwrap()
        .len();
    assert!(ended > 0, "dispatch held no session to end");
    let again = event(Some(job), 2, EventBody::Report { text: "Fitted after the restart.".into() });
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = sync(&http, &dev, std::slice::from_ref(&again));
        if answer.0 == 200 {
            break;
        }
        assert_eq!(answer.0, 503, "{}", answer.1);
        assert!(Instant::now() < deadline, "dispatch did not reconnect");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(sync(&http, &dev, std::slice::from_ref(&again)).0, 200);
    assert_eq!(op.device(dev.id).events_applied, 2);
    assert_eq!(op.job(job).report.unwrap().text, "Fitted after the restart.");
    server.shutdown();
}

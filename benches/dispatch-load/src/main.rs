//! Load harness for the reference dispatch server (issue 14, part 5): how many devices one
//! server carries, and where its throughput stops rising.
//!
//! A benchmark, not a test: it asserts only that every request succeeded and that every device
//! got its sheet, and prints throughput and latency per phase. Simulated devices speak the
//! protocol directly (`jobseal-protocol`: a real enrolment with a sealed token, real sync
//! requests, shred receipts signed with the device's receipt key) without a vault each, so that
//! on a small machine the clients take as little of the shared CPU as possible and the numbers
//! are the server's. Each device, in each run of N devices:
//!
//! 1. `enrol`: the operator issues a one-time code, the device enrols with 10 prekeys and opens
//!    its token;
//! 2. `assign`: the operator creates one job for it (sealed to a prekey);
//! 3. `deliver`: the device syncs and receives the sealed sheet;
//! 4. `work`: the device pushes a day's events in one sync: received, three state changes, a
//!    completion report and a signed shred receipt;
//! 5. `steady`: R rounds of empty syncs (what an idle fleet costs).
//!
//! Devices are spread over T client threads, each with a keep-alive connection; a thread works
//! its devices one after the other, so T is the number of requests in flight. With `--instances
//! I` (PostgreSQL only) I servers run on the one database and the threads are spread over them
//! round robin, as behind a load balancer.
//!
//! ```sh
//! cargo run --release -p dispatch-load -- --devices 50,200,1000 --threads 16 --rounds 5
//! bash scripts/with-postgres.sh cargo run --release -p dispatch-load -- --postgres --instances 2
//! JOBSEAL_OPERATOR_TOKEN=... cargo run --release -p dispatch-load -- --url http://127.0.0.1:8787
//! ```

use chrono::Utc;
use jobseal_protocol::bundle::{DeviceBundle, Prekey, BUNDLE_FORMAT};
use jobseal_protocol::crypto::{generate_keypair, random_bytes};
use jobseal_protocol::enrolment::{build_request, open_answer_token, EnrolmentCode};
use jobseal_protocol::envelope::{PublicKey, RecipientKeyId, SecretKey};
use jobseal_protocol::policy::JobState;
use jobseal_protocol::receipt::{ReceiptKey, ShredOutcome};
use jobseal_protocol::wire::{EnrolResponse, EventBody, OutboxEvent};
use jobseal_testkit::sheet::Sheet;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Prekeys each simulated device enrols with.
const PREKEYS: u32 = 10;

/// The command line.
struct Args {
    devices: Vec<usize>,
    threads: usize,
    rounds: usize,
    url: Option<String>,
    out: Option<std::path::PathBuf>,
    postgres: bool,
    instances: usize,
}

fn args() -> Result<Args, String> {
    let mut args =
        Args { devices: vec![50, 200, 1000], threads: 16, rounds: 5, url: None, out: None, postgres: false, instances: 1 };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--devices" => {
                args.devices = value()?
                    .split(',')
                    .map(|n| n.trim().parse().map_err(|_| format!("bad device count {n}")))
                    .collect::<Result<_, _>>()?;
            }
            "--threads" => args.threads = value()?.parse().map_err(|_| "bad --threads")?,
            "--rounds" => args.rounds = value()?.parse().map_err(|_| "bad --rounds")?,
            "--url" => args.url = Some(value()?),
            "--out" => args.out = Some(value()?.into()),
            "--postgres" => args.postgres = true,
            "--instances" => args.instances = value()?.parse().map_err(|_| "bad --instances")?,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if args.threads == 0 || args.devices.contains(&0) || args.instances == 0 {
        return Err("--threads, --devices and --instances must be positive".into());
    }
    if args.instances > 1 && !args.postgres {
        return Err("--instances above 1 needs --postgres (SQLite is one process's file)".into());
    }
    if args.postgres && jobseal_testkit::server::postgres_admin_url().is_none() {
        return Err("--postgres needs JOBSEAL_TEST_POSTGRES: run under scripts/with-postgres.sh".into());
    }
    Ok(args)
}

/// One HTTP client (a keep-alive connection per thread).
struct Http {
    agent: ureq::Agent,
    base: String,
}

impl Http {
    fn new(base: &str) -> Http {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(120)))
            .build()
            .into();
        Http { agent, base: base.to_owned() }
    }

    /// POSTs `body` with `token`; the status and the JSON answer.
    fn post(&self, path: &str, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.agent.post(format!("{}{path}", self.base)).header("Content-Type", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", format!("Bearer {token}"));
        }
        let mut answer = request.send(body.to_string()).expect("the server answers");
        let status = answer.status().as_u16();
        let text = answer.body_mut().read_to_string().expect("a readable answer");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn get(&self, path: &str) -> Value {
        let mut answer = self.agent.get(format!("{}{path}", self.base)).call().expect("the server answers");
        serde_json::from_str(&answer.body_mut().read_to_string().expect("a readable answer")).expect("JSON")
    }
}

/// A simulated device: its identity secret, token and job.
struct Device {
    id: Uuid,
    identity: SecretKey,
    token: String,
    job: Uuid,
    seq: u64,
}

/// What one phase measured.
struct Phase {
    name: &'static str,
    requests: usize,
    seconds: f64,
    latencies_ms: Vec<f64>,
}

impl Phase {
    fn percentile(&self, p: usize) -> f64 {
        let mut v = self.latencies_ms.clone();
        v.sort_by(f64::total_cmp);
        v.get((v.len() * p / 100).min(v.len().saturating_sub(1))).copied().unwrap_or(0.0)
    }
}

/// Runs `work` for every item of `items` on `threads` threads (each with its own client, to the
/// instances of `bases` in turn), timing each call; the phase's figures.
fn phase<T: Send>(
    name: &'static str,
    bases: &[String],
    threads: usize,
    items: &mut [T],
    work: impl Fn(&Http, &mut T) + Sync,
) -> Phase {
    let chunk = items.len().div_ceil(threads).max(1);
    let started = Instant::now();
    let latencies: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks_mut(chunk)
            .enumerate()
            .map(|(i, part)| {
                let work = &work;
                let base = &bases[i % bases.len()];
                s.spawn(move || {
                    let http = Http::new(base);
                    part.iter_mut()
                        .map(|item| {
                            let t = Instant::now();
                            work(&http, item);
                            t.elapsed().as_secs_f64() * 1000.0
                        })
                        .collect::<Vec<f64>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a client thread")).collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let latencies_ms: Vec<f64> = latencies.into_iter().flatten().collect();
    Phase { name, requests: latencies_ms.len(), seconds, latencies_ms }
}

fn nonce() -> String {
    jobseal_protocol::hex::encode(&random_bytes::<32>().expect("randomness"))
}

/// One sync of `device` pushing `events`; the authenticated answer's payload.
fn sync(http: &Http, device: &Device, events: &[OutboxEvent]) -> Value {
    let body = json!({"device_id": device.id, "events": events, "nonce": nonce()});
    let (status, answer) = http.post("/v1/sync", Some(&device.token), &body);
    assert_eq!(status, 200, "sync refused: {answer}");
    answer["answer"].clone()
}

fn event(device: &mut Device, body: EventBody) -> OutboxEvent {
    device.seq += 1;
    OutboxEvent { key: Uuid::now_v7(), seq: device.seq, job_id: Some(device.job), at: Utc::now(), body }
}

/// One run with `n` devices against the instances at `base`.
fn run(n: usize, args: &Args, base: &[String], operator: &str) -> Vec<Phase> {
    let admin = Http::new(&base[0]);
    let dispatch: PublicKey = serde_json::from_value(admin.get("/v1/dispatch-key")["dispatch_key"].clone())
        .expect("GET /v1/dispatch-key answers the key");
    let mut phases = Vec::new();

    let mut slots: Vec<Option<Device>> = (0..n).map(|_| None).collect();
    phases.push(phase("enrol", base, args.threads, &mut slots, |http, slot| {
        let (status, issued) = http.post("/v1/operator/enrolment-codes", Some(operator), &json!({}));
        assert_eq!(status, 200, "code refused: {issued}");
        let code = EnrolmentCode::parse(issued["code"].as_str().expect("a code")).expect("a valid code");
        let (identity, identity_key) = generate_keypair().expect("keys");
        let prekeys = (1..=PREKEYS).map(|id| Prekey { id, public_key: generate_keypair().expect("keys").1 }).collect();
        let bundle = DeviceBundle { format: BUNDLE_FORMAT.into(), device_id: Uuid::new_v4(), identity_key, prekeys };
        let id = bundle.device_id;
        let request = build_request(bundle, &identity, &dispatch, Some(&code)).expect("an enrolment request");
        let (status, answer) = http.post("/v1/enrol", None, &serde_json::to_value(&request).expect("JSON"));
        assert_eq!(status, 200, "enrolment refused: {answer}");
        let answer: EnrolResponse = serde_json::from_value(answer).expect("an enrolment answer");
        let token = open_answer_token(
            &identity,
            &dispatch,
            id,
            &request.nonce,
            answer.server_time.timestamp_millis(),
            &answer.sealed_device_token,
        )
        .expect("the token opens")
        .to_string();
        *slot = Some(Device { id, identity, token, job: Uuid::new_v4(), seq: 0 });
    }));
    let mut devices: Vec<Device> = slots.into_iter().map(|d| d.expect("every device enrolled")).collect();

    phases.push(phase("assign", base, args.threads, &mut devices, |http, device| {
        let sheet = Sheet::new(device.job).json();
        let (status, answer) =
            http.post("/v1/operator/jobs", Some(operator), &json!({"device_id": device.id, "sheet": sheet}));
        assert_eq!(status, 200, "job refused: {answer}");
    }));

    phases.push(phase("deliver", base, args.threads, &mut devices, |http, device| {
        let answer = sync(http, device, &[]);
        assert_eq!(answer["envelopes"].as_array().map(Vec::len), Some(1), "the sheet was not offered");
    }));

    phases.push(phase("work", base, args.threads, &mut devices, |http, device| {
        let key = ReceiptKey::derive(&device.identity, &dispatch, device.id).expect("the receipt key");
        let shred = ShredOutcome {
            job_id: device.job,
            version: 1,
            state: JobState::Completed,
            shredded_at: Utc::now(),
            epoch: 2,
            fields_destroyed: 5,
        };
        let events = vec![
            event(device, EventBody::Received { version: 1, via: RecipientKeyId::Prekey(1) }),
            event(device, EventBody::State { from: JobState::Assigned, to: JobState::EnRoute }),
            event(device, EventBody::State { from: JobState::EnRoute, to: JobState::OnSite }),
            event(device, EventBody::Report { text: "Terminal installed.".into() }),
            event(device, EventBody::State { from: JobState::OnSite, to: JobState::Completed }),
            event(device, EventBody::Receipt(key.sign(device.id, &shred))),
        ];
        let answer = sync(http, device, &events);
        assert_eq!(answer["acked"].as_array().map(Vec::len), Some(events.len()), "not every event was acknowledged");
    }));

    let mut rounds: Vec<&Device> = Vec::new();
    for _ in 0..args.rounds {
        rounds.extend(devices.iter());
    }
    phases.push(phase("steady", base, args.threads, &mut rounds, |http, device| {
        sync(http, device, &[]);
    }));
    phases
}

fn main() {
    let args = match args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("dispatch-load: {e}");
            std::process::exit(2);
        }
    };
    let mut results = Vec::new();
    println!("| devices | phase | requests | seconds | requests/s | p50 ms | p99 ms |");
    println!("|---:|---|---:|---:|---:|---:|---:|");
    for &n in &args.devices {
        // A fresh server and database per run, unless an external server is named.
        let (servers, _database, base, operator) = match &args.url {
            Some(url) => {
                let token = std::env::var("JOBSEAL_OPERATOR_TOKEN").expect("JOBSEAL_OPERATOR_TOKEN for --url");
                (Vec::new(), None, vec![url.clone()], token)
            }
            None => {
                let dir = tempfile::tempdir().expect("a temporary folder");
                let file = dir.path().join("dispatch.db");
                let database = if args.postgres {
                    jobseal_testkit::server::TestDatabase::new(&file)
                } else {
                    jobseal_testkit::server::TestDatabase::sqlite(&file)
                };
                let token = jobseal_dispatch::generate_operator_token().expect("a token");
                let servers: Vec<_> = (0..args.instances)
                    .map(|_| {
                        jobseal_dispatch::RunningServer::start(jobseal_dispatch::ServerConfig {
                            database: database.database(),
                            addr: "127.0.0.1:0".parse().expect("an address"),
                            operator_token: token.clone(),
                            timeouts: jobseal_dispatch::Timeouts::default(),
                            metrics_token: None,
                            // Every simulated device enrols from loopback: no per-source limit.
                            enrol_rate: jobseal_dispatch::EnrolRate { burst: u32::MAX, per_minute: u32::MAX },
                        })
                        .expect("dispatch starts")
                    })
                    .collect();
                let base = servers.iter().map(|s| s.base_url()).collect();
                (servers, Some((database, dir)), base, token)
            }
        };
        for p in run(n, &args, &base, &operator) {
            let rate = p.requests as f64 / p.seconds;
            let (p50, p99) = (p.percentile(50), p.percentile(99));
            println!("| {n} | {} | {} | {:.2} | {rate:.0} | {p50:.1} | {p99:.1} |", p.name, p.requests, p.seconds);
            results.push(json!({
                "devices": n, "phase": p.name, "requests": p.requests, "seconds": p.seconds,
                "per_second": rate, "p50_ms": p50, "p99_ms": p99, "threads": args.threads,
            }));
        }
        for server in servers {
            server.shutdown();
        }
    }
    if let Some(out) = &args.out {
        std::fs::write(out, serde_json::to_string_pretty(&results).expect("JSON")).expect("the results file");
    }
}

//! Operating the server (issue 14, part 7): settings from a file, the environment and flags;
//! graceful shutdown on SIGTERM; Prometheus counters behind their own token; and logs and
//! metrics that carry no customer value, token or id, checked by scanning them after a day run
//! with canary values.

use jobseal::{HttpRequest, HttpResponse, HttpTransport, JobState, Transport, TransportError};
use jobseal_dispatch::{RunningServer, ServerConfig, Timeouts};
use jobseal_testkit::device::open_vault_at;
use jobseal_testkit::files::canary;
use jobseal_testkit::server::OPERATOR_TOKEN;
use jobseal_testkit::sheet::{Sheet, SLOT_START};
use jobseal_testkit::{Client, Operator};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

const METRICS_TOKEN: &str = "metrics-token-for-tests-only-0123456789";

/// The binary, started with `args` and `env` (and nothing inherited that names a setting or a
/// token), its standard error collected on a thread.
struct Binary {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Binary {
    fn spawn(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Binary {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_jobseal-dispatch"));
        cmd.current_dir(dir).args(args).stderr(Stdio::piped()).stdout(Stdio::null());
        for (key, _) in std::env::vars() {
            if key.starts_with("JOBSEAL_") || key == "RUST_LOG" {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied());
        let mut child = cmd.spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        Binary { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The base URL it announced, in text (`jobseal-dispatch: listening on URL`) or JSON form.
    fn base_url(&mut self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.stderr();
            if let Some(rest) = text.split("listening on ").nth(1) {
                let url: String = rest.chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
                if url.contains(':') && rest.contains(['\n', '"']) {
                    return url;
                }
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("the server exited with {status} before it listened:\n{text}");
            }
            assert!(Instant::now() < deadline, "the server did not listen within 60 s:\n{text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits (at most 30 s) for the process to end; its exit status.
    fn terminate(mut self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let status = self.wait_for_exit();
        // Let the reader thread drain the last lines.
        std::thread::sleep(Duration::from_millis(100));
        (status, self.stderr())
    }

    /// Waits (at most 30 s) for the process to end by itself.
    fn wait_for_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                self.child.kill().unwrap();
                self.child.wait().unwrap();
                panic!("the server did not stop within 30 s:\n{}", self.stderr());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary, checks it listens, stops it with SIGTERM; its standard error.
fn start_and_stop(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut binary = Binary::spawn(dir, args, env);
    binary.base_url();
    let (status, stderr) = binary.terminate();
    assert!(status.success(), "{status}:\n{stderr}");
    stderr
}

/// Runs the binary expecting it to refuse to start; its standard error.
fn refused(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut binary = Binary::spawn(dir, args, env);
    let status = binary.wait_for_exit();
    std::thread::sleep(Duration::from_millis(100));
    let stderr = binary.stderr();
    assert_eq!(status.code(), Some(1), "{stderr}");
    stderr
}

#[test]
fn settings_come_from_the_file_then_the_environment_then_the_flags() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let token = [("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN)];
    std::fs::write(d.join("dispatch.toml"), "database = \"from-file.db\"\nlisten = \"127.0.0.1:0\"\n").unwrap();
    let config = ["serve", "--config", "dispatch.toml"];

    // The file alone.
    start_and_stop(d, &config, &token);
    assert!(d.join("from-file.db").exists());
    // The environment over the file; other JOBSEAL_DISPATCH_* variables (a test harness's) are
    // not settings and do not stop the server.
    let env = [
        ("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN),
        ("JOBSEAL_DISPATCH_DATABASE", "from-env.db"),
        ("JOBSEAL_DISPATCH_BIN", "/somewhere/else"),
    ];
    start_and_stop(d, &config, &env);
    assert!(d.join("from-env.db").exists());
    // A flag over both.
    start_and_stop(d, &["serve", "--config", "dispatch.toml", "--db", "from-flag.db"], &env);
    assert!(d.join("from-flag.db").exists());
    // JSON lines when asked for: every line of standard error is one JSON object.
    let json = start_and_stop(
        d,
        &config,
        &[("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN), ("JOBSEAL_DISPATCH_LOG_FORMAT", "json")],
    );
    assert!(json.contains("listening on"), "{json}");
    for line in json.lines() {
        serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
    }

    // A misspelt key, a bad value, a missing file and a zero timeout are refused with the key or
    // the file named, and nothing is created.
    std::fs::write(d.join("typo.toml"), "databse = \"typo.db\"\n").unwrap();
    assert!(refused(d, &["serve", "--config", "typo.toml"], &token).contains("databse"));
    std::fs::write(d.join("bad.toml"), "listen = \"not an address\"\n").unwrap();
    assert!(refused(d, &["serve", "--config", "bad.toml"], &token).contains("listen"));
    assert!(refused(d, &["serve", "--config", "missing.toml"], &token).contains("missing.toml"));
    let zero = [("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN), ("JOBSEAL_DISPATCH_BODY_READ_TIMEOUT_SECS", "0")];
    assert!(refused(d, &config, &zero).contains("timeouts"));
    let zero = [("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN), ("JOBSEAL_DISPATCH_ENROL_BURST", "0")];
    assert!(refused(d, &config, &zero).contains("enrol_burst"));
    assert!(!d.join("typo.db").exists());

    // A PostgreSQL database needs the operator token given (there is no file next to it to
    // generate one into), and the URL's password never appears, not even when the server is
    // unreachable.
    let pg = "postgres://jobseal:pg-password-canary@127.0.0.1:1/dispatch";
    let err = refused(d, &["serve", "--database", pg], &[]);
    assert!(err.contains("JOBSEAL_OPERATOR_TOKEN") && !err.contains("pg-password-canary"), "{err}");
    let err = refused(d, &["serve"], &[("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN), ("JOBSEAL_DISPATCH_DATABASE", pg)]);
    assert!(err.contains("postgres://127.0.0.1:1/dispatch") && !err.contains("pg-password-canary"), "{err}");
    // The scheme in any case; another scheme, a libpq key=value string and a configuration file
    // that is not TOML are refused without repeating the setting (taken as a SQLite file name,
    // the password used to end up in file names and messages).
    let err = refused(d, &["serve", "--db", "Postgres://jobseal:pg-password-canary@127.0.0.1:1/x"], &[]);
    assert!(err.contains("JOBSEAL_OPERATOR_TOKEN") && !err.contains("pg-password-canary"), "{err}");
    for setting in ["mysql://u:pg-password-canary@h/x", "host=127.0.0.1 password=pg-password-canary dbname=x"] {
        let err = refused(d, &["serve", "--db", setting], &token);
        assert!(err.contains("database:") && !err.contains("pg-password-canary"), "{err}");
    }
    std::fs::write(d.join("broken.toml"), "database = \"postgres://u:pg-password-canary@h/x\n").unwrap();
    let err = refused(d, &["serve", "--config", "broken.toml"], &token);
    assert!(err.contains("not valid TOML (line 1)") && !err.contains("pg-password-canary"), "{err}");
    assert!(std::fs::read_dir(d).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains("canary")));

    // A token is not a setting: written into the file it is refused, and not repeated.
    std::fs::write(d.join("token.toml"), "operator_token = \"operator-token-in-a-config-file-0123\"\n").unwrap();
    let err = refused(d, &["serve", "--config", "token.toml"], &[]);
    assert!(err.contains("Tokens are not settings") && !err.contains("in-a-config-file"), "{err}");
}

/// SIGTERM stops the server the way a deployment stops it: no new connections, the request in
/// flight is answered, the database is closed, and the process exits 0.
#[test]
fn sigterm_finishes_the_request_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::spawn(
        dir.path(),
        &["serve", "--db", "d.db", "--addr", "127.0.0.1:0"],
        &[("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN)],
    );
    let base = binary.base_url();
    let addr = base.trim_start_matches("http://").to_owned();
    // An operator request whose body is half sent when the signal comes.
    let body = br#"{"valid_for_seconds": 3600}"#;
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        stream,
        "POST /v1/operator/enrolment-codes HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {OPERATOR_TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(&body[..5]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let pid = binary.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // Accepting stops at once.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&addr).is_ok() {
        assert!(Instant::now() < deadline, "still accepting connections 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The request in flight is still served.
    stream.write_all(&body[5..]).unwrap();
    let mut answer = String::new();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"code\""), "{answer}");
    let status = binary.wait_for_exit();
    std::thread::sleep(Duration::from_millis(100));
    let stderr = binary.stderr();
    assert!(status.success(), "{status}:\n{stderr}");
    assert!(stderr.contains("signal 15 received") && stderr.contains("stopped"), "{stderr}");
}

/// The core's transport, keeping a copy of every sync request it sends (to replay one).
struct Recording {
    http: HttpTransport,
    syncs: Mutex<Vec<HttpRequest>>,
}

impl Transport for Recording {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if request.path == "/v1/sync" {
            self.syncs.lock().unwrap().push(request.clone());
        }
        self.http.send(request)
    }
}

/// A technician's day against `base`: enrol, receive a sheet whose customer fields are canaries,
/// reveal, close; then one replayed sync and one sync with a wrong token. Returns the canaries,
/// the device id and the job id.
fn day(base: &str, key: Option<jobseal::PublicKey>, operator_token: &str, dir: &Path) -> (Vec<String>, Uuid, Uuid) {
    let op = Operator::new(base, operator_token);
    let net = Recording { http: HttpTransport::new(base), syncs: Mutex::new(Vec::new()) };
    // The device's clock in the fixture's slot (2030), as every suite's devices.
    let vault = open_vault_at(&dir.join("device"), SLOT_START + 10).unwrap();
    let device = vault.enrol_with_dispatch(&net, key, 3, Some(&op.issue_code().code)).unwrap().device_id;
    let job = Uuid::new_v4();
    let values: Vec<String> = ["name", "phone", "address", "door", "note"].iter().map(|l| canary(l)).collect();
    let sheet = Sheet::new(job).values(values.clone());
    op.create_job(device, &sheet.json());
    vault.sync(&net).unwrap();
    vault.advance(job, JobState::EnRoute).unwrap();
    vault.reveal(job).unwrap();
    vault.close(job, "Terminal installed.").unwrap();
    vault.sync(&net).unwrap();
    // Operator reads whose paths carry the ids.
    assert!(op.job(job).receipt.unwrap().verified);
    assert_eq!(op.device(device).device_id, device);
    // A replay of the last sync that pushed events: every event is a duplicate.
    let replay = net.syncs.lock().unwrap().iter().rev().find(|r| r.body.len() > 300).cloned().unwrap();
    assert_eq!(net.http.send(replay).unwrap().status, 200);
    // A sync with a token nobody holds, and an operator request with a canary in a bad body.
    let forged = HttpRequest {
        method: "POST".into(),
        path: "/v1/sync".into(),
        headers: vec![
            ("Content-Type".into(), "application/json".into()),
            ("Authorization".into(), format!("Bearer {}", "0".repeat(64))),
        ],
        body: b"{}".to_vec(),
    };
    assert_eq!(net.http.send(forged).unwrap().status, 401);
    let mut bad = Sheet::new(Uuid::new_v4()).values(values.clone()).json();
    bad.as_object_mut().unwrap().remove("version");
    assert_eq!(op.post_job(device, &bad).0, 400);
    (values, device, job)
}

/// `GET /metrics` with `token`: the status and the text.
fn scrape(base: &str, token: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.get(format!("{base}/metrics"));
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    let mut answer = request.call().unwrap();
    let status = answer.status().as_u16();
    if status == 200 {
        let kind = answer.headers().get("content-type").unwrap().to_str().unwrap().to_owned();
        assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    }
    (status, answer.body_mut().read_to_string().unwrap())
}

/// The value of the sample `name` (with its labels, as rendered) in an OpenMetrics text.
fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {name} in:\n{text}"))
        .parse()
        .unwrap()
}

#[test]
fn metrics_count_syncs_events_and_refusals_behind_their_own_token() {
    let dir = tempfile::tempdir().unwrap();
    let database = jobseal_testkit::server::TestDatabase::new(&dir.path().join("d.db"));
    let server = RunningServer::start(ServerConfig {
        database: database.database(),
        addr: "127.0.0.1:0".parse().unwrap(),
        operator_token: OPERATOR_TOKEN.into(),
        timeouts: Timeouts::default(),
        metrics_token: Some(METRICS_TOKEN.into()),
        enrol_rate: jobseal_dispatch::EnrolRate::default(),
    })
    .unwrap();
    let base = server.base_url();
    day(&base, Some(server.dispatch_key()), OPERATOR_TOKEN, dir.path());
    let http = Client::new(&base);
    assert_eq!(http.get("/v1/no/such/path", None).0, 404);
    // Random paths and methods all land in one series each.
    let mut raw = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
    write!(raw, "BREW /v1/{} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", Uuid::new_v4()).unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");

    // The scrape token, and only it: the operator token is no way in here.
    assert_eq!(scrape(&base, None).0, 401);
    assert_eq!(scrape(&base, Some(OPERATOR_TOKEN)).0, 401);
    let (status, text) = scrape(&base, Some(METRICS_TOKEN));
    assert_eq!(status, 200);
    let syncs = sample(&text, "jobseal_dispatch_syncs_total");
    assert!(syncs >= 3.0, "{text}");
    assert_eq!(
        sample(&text, r#"jobseal_dispatch_http_requests_total{route="/v1/sync",method="POST",status="200"}"#),
        syncs,
        "every committed sync answered 200 and was counted once"
    );
    for (kind, outcome) in [("state", "applied"), ("audit", "applied"), ("receipt", "applied"), ("report", "applied")] {
        let name = format!(r#"jobseal_dispatch_sync_events_total{{kind="{kind}",outcome="{outcome}"}}"#);
        assert!(sample(&text, &name) >= 1.0, "{name}");
    }
    assert!(sample(&text, r#"jobseal_dispatch_sync_events_total{kind="receipt",outcome="duplicate"}"#) >= 1.0);
    assert_eq!(sample(&text, r#"jobseal_dispatch_refusals_total{route="/v1/sync",code="unauthorized"}"#), 1.0);
    assert_eq!(sample(&text, r#"jobseal_dispatch_refusals_total{route="/v1/operator/jobs",code="bad_request"}"#), 1.0);
    assert_eq!(sample(&text, r#"jobseal_dispatch_refusals_total{route="unmatched",code="not_found"}"#), 2.0);
    assert_eq!(
        sample(&text, r#"jobseal_dispatch_http_requests_total{route="unmatched",method="other",status="404"}"#),
        1.0
    );
    assert!(!text.contains("BREW"));
    // Two refused scrapes so far; the paths of operator requests are counted by template.
    assert_eq!(sample(&text, r#"jobseal_dispatch_refusals_total{route="/metrics",code="unauthorized"}"#), 2.0);
    assert!(text.contains(r#"route="/v1/operator/enrolment-codes""#), "{text}");
    server.shutdown();
}

/// Logs (JSON, every level) and metrics after a day with canary customer values, a replay and
/// refused requests: no customer value, no token, no device or job id appears in either.
#[test]
fn operations_output_holds_no_customer_value_token_or_id() {
    let dir = tempfile::tempdir().unwrap();
    let mut binary = Binary::spawn(
        dir.path(),
        &["serve", "--db", "d.db", "--addr", "127.0.0.1:0"],
        &[
            ("JOBSEAL_OPERATOR_TOKEN", OPERATOR_TOKEN),
            ("JOBSEAL_METRICS_TOKEN", METRICS_TOKEN),
            ("JOBSEAL_DISPATCH_LOG_FORMAT", "json"),
            ("RUST_LOG", "trace"),
        ],
    );
    let base = binary.base_url();
    // The device pins the key dispatch announces (trust on first use).
    let (values, device, job) = day(&base, None, OPERATOR_TOKEN, dir.path());
    let (status, metrics) = scrape(&base, Some(METRICS_TOKEN));
    assert_eq!(status, 200);
    let (status, logs) = binary.terminate();
    assert!(status.success());
    // Not vacuous: the requests were logged, and counted.
    assert!(logs.lines().filter(|l| l.contains(r#""route":"/v1/sync""#)).count() >= 3, "{logs}");
    assert!(metrics.contains("jobseal_dispatch_syncs_total"));
    let secrets = [OPERATOR_TOKEN.to_owned(), METRICS_TOKEN.to_owned(), device.to_string(), job.to_string()];
    for (what, text) in [("logs", &logs), ("metrics", &metrics)] {
        for needle in values.iter().chain(&secrets) {
            let label: String = needle.chars().take(6).collect();
            assert!(!text.contains(needle.as_str()), "{what} hold a value starting {label:?}");
        }
        assert!(!text.contains(&device.simple().to_string()) && !text.contains(&job.simple().to_string()), "{what}");
    }
}

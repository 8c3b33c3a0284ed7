//! `jobseal demo`: a technician's day, end to end, on embedded defaults (G1-G8).
//!
//! This is the product's proof in one command. It starts the reference dispatch server on a free
//! loopback port, enrols a device in a temporary directory, has the operator create jobs with fake
//! customers, and walks the technician through the day: reveals refused before the access window
//! and allowed inside it, one job worked with the network cut and synced afterwards, one job
//! cancelled by dispatch. Then it proves the mission from outside: reveals after the close are
//! refused, a byte scan of the device's directory finds no customer value, and dispatch holds
//! every reveal of the day and a verified shred receipt for every job. Any failed proof makes the
//! command exit non-zero.
//!
//! The device runs on a simulated clock so that a day fits in seconds; trusted time still only
//! moves forward and dispatch's clock still anchors it at every sync.

use crate::error::CliError;
use crate::scan::{self, Needle};
use chrono::{DateTime, Duration, DurationRound, Utc};
use jobseal::{
    Clock, FieldAccess, FileKeyStore, HttpRequest, HttpResponse, HttpTransport, JobState, ManualClock, Transport,
    TransportError, Vault,
};
use jobseal_dispatch::{RunningServer, ServerConfig};
use serde_json::{json, Value};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Options of the demo.
pub struct DemoArgs {
    /// Keep the temporary directories and print where they are.
    pub keep: bool,
}

/// A transport with a switch, to cut the device's network as a basement would.
struct Switchable {
    inner: HttpTransport,
    online: AtomicBool,
}

impl Transport for Switchable {
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if !self.online.load(Ordering::SeqCst) {
            return Err(TransportError { message: "no network (cut by the demo)".into() });
        }
        self.inner.send(request)
    }
}

/// One of the day's jobs: its id, its work order, and its fake customer values.
struct DemoJob {
    id: Uuid,
    label: &'static str,
    work_order: String,
    values: Vec<String>,
}

/// What the demo proves, one line each, for the summary and the exit code.
#[derive(Default)]
struct Proofs {
    lines: Vec<(bool, String)>,
}

impl Proofs {
    fn check(&mut self, out: &mut impl Write, ok: bool, what: impl Into<String>) -> std::io::Result<()> {
        let what = what.into();
        writeln!(out, "  [{}] {what}", if ok { "ok" } else { "FAILED" })?;
        self.lines.push((ok, what));
        Ok(())
    }

    fn all_ok(&self) -> bool {
        self.lines.iter().all(|(ok, _)| *ok)
    }
}

fn operator(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> Result<Value, CliError> {
    let transport = HttpTransport::new(base);
    let mut headers = vec![("authorization".to_owned(), format!("Bearer {token}"))];
    if body.is_some() {
        headers.push(("content-type".to_owned(), "application/json".to_owned()));
    }
    let request = HttpRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers,
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    };
    let response = transport.send(request).map_err(|e| CliError::Demo(format!("operator call failed: {e}")))?;
    let value: Value = serde_json::from_slice(&response.body)
        .map_err(|_| CliError::Demo(format!("operator call {path} answered {} with no JSON", response.status)))?;
    if !(200..300).contains(&response.status) {
        return Err(CliError::Demo(format!("operator call {path} answered {}: {value}", response.status)));
    }
    Ok(value)
}

fn sheet(job: &DemoJob, day: DateTime<Utc>, start_h: i64, hours: i64) -> Value {
    let start = day + Duration::hours(start_h);
    let end = start + Duration::hours(hours);
    let names = ["customer_name", "phone", "address", "floor", "door_code", "note"];
    let kinds = ["name", "relay-phone", "address", "floor", "door-code", "note"];
    let states: [&[&str]; 6] = [
        &["en-route", "on-site"],
        &["en-route", "on-site"],
        &["en-route", "on-site"],
        &["en-route", "on-site"],
        &["on-site"],
        &["on-site"],
    ];
    let customer: Vec<Value> = (0..6)
        .map(|i| json!({"name": names[i], "kind": kinds[i], "value": job.values[i], "reveal_in": states[i]}))
        .collect();
    json!({
        "format": jobseal::sheet::SHEET_FORMAT,
        "job_id": job.id,
        "version": 1,
        "work_order": job.work_order,
        "window": {"start": start.to_rfc3339(), "end": end.to_rfc3339()},
        "access": {"open_before_minutes": 30, "close_after_minutes": 30,
                   "hard_expiry": (end + Duration::hours(4)).to_rfc3339()},
        "work": {"summary": job.label, "tasks": ["Check the line", "Install and test"], "equipment": ["ONT", "Patch cord"]},
        "site_area": "Lyon 3e",
        "customer": customer,
    })
}

fn fake_job(label: &'static str, letter: &str, n: u32, tag: &str) -> Result<DemoJob, CliError> {
    Ok(DemoJob {
        id: jobseal::crypto::random_uuid()?,
        label,
        work_order: format!("WO-DEMO-{n:04}"),
        values: vec![
            format!("Test Customer {letter} ({tag})"),
            format!("+33 1 00 00 0{n} {}", &tag[..2]),
            format!("{n} rue de l'Exemple {tag}, 69003 Lyon"),
            format!("Floor {n}, door on the left ({tag})"),
            format!("{n}{n}{n}{n}A-{tag}"),
            format!("Fake note {tag}: ring twice"),
        ],
    })
}

/// Shows one reveal: each field's name and either how long it stays visible or why it is hidden.
/// Values are masked except their length: the demo proves access, it does not need to print data.
/// Returns (shown, hidden, hidden because the window is not yet open).
fn show_reveal(out: &mut impl Write, vault: &Vault, job: &DemoJob) -> Result<(usize, usize, usize), CliError> {
    let r = vault.reveal(job.id)?;
    let (mut shown, mut hidden, mut early) = (0, 0, 0);
    for f in &r.fields {
        match &f.access {
            FieldAccess::Visible { value, until } => {
                shown += 1;
                writeln!(
                    out,
                    "      {:<14} visible until {}  ({} characters, masked here)",
                    f.name,
                    crate::output::ts(*until),
                    value.expose().chars().count()
                )?;
            }
            FieldAccess::Hidden(d) => {
                hidden += 1;
                early += usize::from(matches!(d, jobseal::Denial::NotYetOpen { .. }));
                writeln!(out, "      {:<14} hidden: {d}", f.name)?;
            }
        }
    }
    Ok((shown, hidden, early))
}

fn reveal_count(vault: &Vault, job: Uuid) -> Result<usize, CliError> {
    Ok(vault.audit_log(Some(job))?.iter().filter(|e| e.kind == jobseal::AuditKind::Reveal).count())
}

/// Runs the demo; returns the process exit code (0 when every proof holds).
pub fn run(out: &mut impl Write, args: &DemoArgs) -> Result<u8, CliError> {
    let work = tempfile::Builder::new().prefix("jobseal-demo-").tempdir()?;
    let device_dir = work.path().join("device");
    let token = jobseal::hex::encode(&jobseal::crypto::random_bytes::<16>()?);
    let server = RunningServer::start(ServerConfig {
        database: work.path().join("dispatch.db").into(),
        addr: "127.0.0.1:0".parse().map_err(|_| CliError::Demo("loopback address".into()))?,
        operator_token: token.clone(),
        timeouts: jobseal_dispatch::Timeouts::default(),
        metrics_token: None,
        enrol_rate: jobseal_dispatch::EnrolRate::default(),
    })
    .map_err(|e| CliError::Demo(format!("dispatch server did not start: {e}")))?;
    let base = server.base_url();
    writeln!(out, "jobseal demo: a technician's day\n")?;
    writeln!(out, "Dispatch server listening on {base} (database in a temporary directory)")?;

    // The simulated day starts at the next full hour of real time, so that dispatch's clock
    // (which anchors trusted time at each sync) is never ahead of it.
    let day = (Utc::now() + Duration::hours(1)).duration_trunc(Duration::hours(1)).unwrap_or_else(|_| Utc::now());
    let clock = Arc::new(ManualClock::new(day));
    let keystore = FileKeyStore::open(device_dir.join(jobseal::KEYSTORE_DIR))?;
    let vault = Vault::open(&device_dir, Arc::new(keystore), clock.clone())?;
    let net = Switchable { inner: HttpTransport::new(&base), online: AtomicBool::new(true) };
    // The operator issues a one-time enrolment code; the technician types it on the device.
    let issued = operator(&base, &token, "POST", "/v1/operator/enrolment-codes", Some(json!({})))?;
    let code = issued["code"].as_str().ok_or_else(|| CliError::Demo("no enrolment code in the answer".into()))?;
    let bundle = vault.enrol_with_dispatch(&net, Some(server.dispatch_key()), 10, Some(code))?;
    writeln!(
        out,
        "Device {} enrolled with a one-time code from the operator: identity key pinned to dispatch, {} one-time prekeys published",
        bundle.device_id,
        bundle.prekeys.len()
    )?;
    // Someone re-posting the device's public bundle (with a prekey of their own) without the
    // device's identity key is refused; the device keeps its token.
    let hijack_refused = {
        let keypair = || jobseal::envelope::generate_keypair().map_err(jobseal::ProtocolError::from);
        let (attacker, _) = keypair()?;
        let mut planted = bundle.clone();
        planted.prekeys.push(jobseal::Prekey { id: 9_999, public_key: keypair()?.1 });
        let forged = jobseal::enrolment::build_request(planted, &attacker, &server.dispatch_key(), None)?;
        let request = HttpRequest {
            method: "POST".into(),
            path: "/v1/enrol".into(),
            headers: vec![("content-type".to_owned(), "application/json".to_owned())],
            body: serde_json::to_vec(&forged).map_err(|_| CliError::Demo("enrolment request".into()))?,
        };
        let status = HttpTransport::new(&base).send(request).map_err(|e| CliError::Demo(format!("{e}")))?.status;
        status == 401
    };
    writeln!(out, "Device data directory: {}\n", device_dir.display())?;

    let tag = &jobseal::hex::encode(&jobseal::crypto::random_bytes::<3>()?);
    let jobs = [
        fake_job("Fibre installation", "Alpha", 1, tag)?,
        fake_job("Router replacement", "Bravo", 2, tag)?,
        fake_job("Line repair", "Charlie", 3, tag)?,
    ];
    let slots = [(2, 2), (5, 1), (7, 1)];
    writeln!(out, "== {} Operator creates the day's jobs", hhmm(clock.as_ref()))?;
    for (job, (start, hours)) in jobs.iter().zip(slots) {
        let created = operator(
            &base,
            &token,
            "POST",
            "/v1/operator/jobs",
            Some(json!({"device_id": bundle.device_id, "sheet": sheet(job, day, start, hours)})),
        )?;
        let to = match created["sealed_to"].get("prekey") {
            Some(id) => format!("one-time prekey {id}"),
            None => "the identity key (no prekey left)".to_owned(),
        };
        writeln!(out, "  {} {:<20} sealed to {to}", job.work_order, job.label)?;
    }

    writeln!(out, "\n== {} Technician syncs", hhmm(clock.as_ref()))?;
    let report = vault.sync(&net)?;
    writeln!(out, "  received {} sealed job sheets; {} events pushed", report.received.len(), report.pushed)?;
    crate::output::job_table(out, &vault.list_jobs()?)?;

    let [a, b, c] = &jobs;
    writeln!(
        out,
        "\n== {} Sets out early for {}: en route, before its access window",
        at(&clock, day, 60),
        a.work_order
    )?;
    vault.advance(a.id, JobState::EnRoute)?;
    let (shown_early, _, not_yet_open) = show_reveal(out, &vault, a)?;

    writeln!(out, "\n== {} Inside the access window, still en route", at(&clock, day, 100))?;
    let (shown_en_route, hidden_en_route, _) = show_reveal(out, &vault, a)?;

    writeln!(out, "\n== {} On site at {}", at(&clock, day, 125), a.work_order)?;
    vault.advance(a.id, JobState::OnSite)?;
    let (shown_on_site, _, _) = show_reveal(out, &vault, a)?;
    let outcome = vault.close(a.id, "Fibre terminal installed, signal -18 dBm, customer shown the router.")?;
    writeln!(out, "  closed with a report; customer data shredded (key epoch now {})", outcome.epoch)?;
    let r = vault.sync(&net)?;
    writeln!(out, "  synced: {} events acknowledged by dispatch", r.acknowledged)?;

    writeln!(out, "\n== {} Basement job {}: the network is cut", at(&clock, day, 275), b.work_order)?;
    net.online.store(false, Ordering::SeqCst);
    vault.advance(b.id, JobState::EnRoute)?;
    clock.set_wall(clock.wall_now() + Duration::minutes(20));
    vault.advance(b.id, JobState::OnSite)?;
    let (shown_offline, _, _) = show_reveal(out, &vault, b)?;
    vault.close(b.id, "Router replaced offline; customer line tested OK.")?;
    let offline_attempt = vault.sync(&net);
    let pending = vault.sync_status()?.pending_events;
    writeln!(
        out,
        "  closed offline; sync attempt: {}; {pending} events waiting in the outbox",
        match &offline_attempt {
            Ok(_) => "unexpectedly succeeded".to_owned(),
            Err(e) => e.to_string(),
        }
    )?;

    writeln!(out, "\n== {} Back above ground: the network returns", at(&clock, day, 340))?;
    net.online.store(true, Ordering::SeqCst);
    let r = vault.sync(&net)?;
    writeln!(out, "  synced: {} pushed, {} acknowledged, {} still pending", r.pushed, r.acknowledged, r.pending)?;

    writeln!(out, "\n== {} Dispatch cancels {}", at(&clock, day, 360), c.work_order)?;
    operator(&base, &token, "POST", &format!("/v1/operator/jobs/{}/cancel", c.id), Some(json!({})))?;
    let r = vault.sync(&net)?;
    writeln!(out, "  synced: {} job(s) shredded on dispatch's word, receipts sent", r.revoked.len())?;

    writeln!(out, "\n== Proofs")?;
    let mut proofs = Proofs::default();
    proofs.check(
        out,
        shown_early == 0 && not_yet_open == 4,
        "before the access window nothing was shown; the en-route fields were refused as not yet open",
    )?;
    proofs.check(
        out,
        shown_en_route == 4 && hidden_en_route == 2,
        "en route: name, phone, address and floor shown; door code and note withheld",
    )?;
    proofs.check(out, shown_on_site == 6 && shown_offline == 6, "on site: every field shown, online and offline")?;
    proofs.check(
        out,
        hijack_refused,
        "enrolment needed the operator's one-time code; re-posting the device's bundle was refused",
    )?;
    for job in &jobs {
        let denied = matches!(vault.reveal(job.id), Err(jobseal::Error::AccessDenied(_)));
        proofs.check(out, denied, format!("{}: reveal after the close is refused", job.work_order))?;
    }
    proofs.check(out, offline_attempt.is_err() && pending > 0, "offline work waited in the outbox")?;
    proofs.check(out, vault.sync_status()?.pending_events == 0, "the outbox is empty: dispatch has everything")?;
    proofs.check(out, vault.verify_audit()?.valid, "the device's audit chain verifies")?;
    let device_reveals: Vec<usize> = jobs.iter().map(|j| reveal_count(&vault, j.id)).collect::<Result<_, _>>()?;
    drop(vault);

    let needles: Vec<Needle> = jobs
        .iter()
        .flat_map(|j| j.values.iter())
        .enumerate()
        .map(|(i, v)| Needle::new(Zeroizing::new(v.as_bytes().to_vec()), i + 1))
        .collect::<Result<_, _>>()?;
    let scan = scan::scan_path(&device_dir, &needles)?;
    proofs.check(
        out,
        scan.findings.is_empty() && scan.errors.is_empty() && scan.files > 0,
        format!(
            "byte scan of the device directory: {} files, {} bytes, {} of {} customer values found",
            scan.files,
            scan.bytes,
            scan.findings.len(),
            needles.len()
        ),
    )?;

    let mut rows = Vec::new();
    for (job, device_count) in jobs.iter().zip(&device_reveals) {
        let view = operator(&base, &token, "GET", &format!("/v1/operator/jobs/{}", job.id), None)?;
        let dispatch_reveals = view["audit_events"]
            .as_array()
            .map(|events| events.iter().filter(|e| e["kind"] == "reveal").count())
            .unwrap_or(0);
        let verified = view["receipt"]["verified"].as_bool().unwrap_or(false);
        let state = view["state"].as_str().unwrap_or("?").to_owned();
        proofs.check(
            out,
            dispatch_reveals == *device_count,
            format!("{}: dispatch holds all {} reveals made on the device", job.work_order, device_count),
        )?;
        proofs.check(out, verified, format!("{}: dispatch verified the shred receipt", job.work_order))?;
        rows.push((job, state, *device_count, dispatch_reveals, verified));
    }
    let chain = operator(&base, &token, "GET", &format!("/v1/operator/devices/{}", bundle.device_id), None)?;
    let chain_ok =
        chain["audit_chain"]["broken_at"].is_null() && chain["audit_chain"]["verified_up_to"].as_u64() > Some(0);
    proofs.check(out, chain_ok, "dispatch verified the device's audit chain")?;

    writeln!(out, "\n== Summary")?;
    writeln!(
        out,
        "  {:<13} {:<20} {:<10} {:>13} {:>18} {:>9}",
        "work order", "job", "state", "reveals(dev)", "reveals(dispatch)", "receipt"
    )?;
    for (job, state, dev, disp, verified) in rows {
        writeln!(
            out,
            "  {:<13} {:<20} {:<10} {:>13} {:>18} {:>9}",
            job.work_order,
            job.label,
            state,
            dev,
            disp,
            if verified { "verified" } else { "MISSING" }
        )?;
    }
    let failed = proofs.lines.iter().filter(|(ok, _)| !ok).count();
    writeln!(out, "\n{} proofs, {} failed.", proofs.lines.len(), failed)?;
    server.shutdown();
    if args.keep {
        let kept = work.keep();
        writeln!(out, "Kept the device and dispatch data in {}", kept.display())?;
    }
    Ok(if proofs.all_ok() { 0 } else { 1 })
}

fn hhmm(clock: &ManualClock) -> String {
    clock.wall_now().format("%H:%M").to_string()
}

/// Moves the simulated clock to `minutes` after the start of the day and returns the time shown.
fn at(clock: &ManualClock, day: DateTime<Utc>, minutes: i64) -> String {
    let t = day + Duration::minutes(minutes);
    if t > clock.wall_now() {
        clock.set_wall(t);
    }
    hhmm(clock)
}

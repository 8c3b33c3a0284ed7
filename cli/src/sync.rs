//! The CLI as a real device of a dispatch server, and the operator's enrolment code (issue 12,
//! item 8).
//!
//! Support staff and tests need to drive a device end to end without a phone: enrol it with a
//! one-time code the operator issued, sync it, see its sync status. Everything goes through the
//! core's own sync engine and its plain-HTTP transport, so what is exercised is what the apps run.
//! `dispatch enrolment-code` is the operator's side: it asks a dispatch server for a code over
//! the operator API, with the operator token read from an owner-only file or the environment,
//! never from the command line. Output is value-free: ids, counts, states, times.

use crate::commands::Context;
use crate::error::{code, CliError};
use crate::output;
use jobseal::{HttpRequest, HttpTransport, PublicKey, Transport};
use serde::Serialize;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// File in the data directory holding the dispatch base URL `device enrol` used (not a secret).
pub const DISPATCH_URL_FILE: &str = "dispatch-url";
/// Environment variable holding the operator token when no `--operator-token-file` is given.
pub const OPERATOR_TOKEN_ENV: &str = "JOBSEAL_OPERATOR_TOKEN";
/// Largest operator token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// Checks a dispatch base URL: `http://` with a host. The core's built-in transport speaks plain
/// HTTP only (loopback, tests, a TLS terminator on the same host); apps bring their own TLS stack.
fn check_url(url: &str) -> Result<String, CliError> {
    let url = url.trim().trim_end_matches('/');
    if url.starts_with("https://") {
        return Err(CliError::Input(
            "the CLI speaks plain HTTP only: use an http:// URL (loopback or a local TLS terminator)".into(),
        ));
    }
    let ok = url.strip_prefix("http://").is_some_and(|rest| !rest.is_empty());
    if !ok || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(CliError::Input("--dispatch must be a URL such as http://127.0.0.1:8787".into()));
    }
    Ok(url.to_owned())
}

/// What `device enrol` reports.
#[derive(Serialize)]
struct EnrolReport {
    device_id: Uuid,
    identity_key: PublicKey,
    dispatch_key: PublicKey,
    dispatch_url: String,
    unused_prekeys: usize,
}

/// `device enrol --dispatch URL --code CODE [--dispatch-key HEX] [--prekeys N]`.
pub fn device_enrol(
    ctx: &Context,
    out: &mut impl Write,
    url: &str,
    enrolment_code: Option<&str>,
    dispatch_key: Option<&str>,
    prekeys: u32,
) -> Result<u8, CliError> {
    // Check everything typed before the vault is created or anything is sent.
    let url = check_url(url)?;
    let key = dispatch_key.map(|k| crate::commands::parse_public_key(k, "--dispatch-key")).transpose()?;
    if let Some(c) = enrolment_code {
        jobseal::enrolment::EnrolmentCode::parse(c)?;
    }
    let vault = ctx.open(true)?;
    let transport = HttpTransport::new(&url);
    let bundle = vault.enrol_with_dispatch(&transport, key, prekeys, enrolment_code)?;
    let url_file = vault.dir().join(DISPATCH_URL_FILE);
    std::fs::write(&url_file, format!("{url}\n"))
        .map_err(|e| CliError::Input(format!("cannot write {}: {e}", output::path(&url_file))))?;
    let report = EnrolReport {
        device_id: bundle.device_id,
        identity_key: bundle.identity_key,
        dispatch_key: vault.dispatch_key()?,
        dispatch_url: url,
        unused_prekeys: bundle.prekeys.len(),
    };
    if ctx.json {
        output::json(out, &report)?;
    } else {
        writeln!(out, "device          {}", report.device_id)?;
        writeln!(out, "enrolled with   {}", output::clean(&report.dispatch_url))?;
        let how = if key.is_some() { "pinned, as given" } else { "pinned on first use" };
        writeln!(out, "dispatch key    {} ({how})", report.dispatch_key)?;
        writeln!(out, "identity key    {}", report.identity_key)?;
        writeln!(out, "unused prekeys  {}", report.unused_prekeys)?;
    }
    Ok(code::OK)
}

/// The dispatch URL: `--dispatch`, else the one `device enrol` saved.
fn dispatch_url(ctx: &Context, given: Option<&str>) -> Result<String, CliError> {
    if let Some(u) = given {
        return check_url(u);
    }
    let dir = ctx.open(false)?.dir().to_path_buf();
    let file = dir.join(DISPATCH_URL_FILE);
    let text = std::fs::read_to_string(&file).map_err(|_| {
        CliError::Usage(
            "no dispatch URL saved for this device; pass --dispatch URL (or enrol with `device enrol`)".into(),
        )
    })?;
    check_url(&text)
}

/// What `sync` reports: counts, job ids, value-free reasons.
#[derive(Serialize)]
struct SyncDoc {
    rounds: u32,
    pushed: u32,
    acknowledged: u32,
    received: Vec<Uuid>,
    rejected: Vec<RejectedDoc>,
    revoked: Vec<Uuid>,
    prekeys_uploaded: u32,
    server_time: Option<chrono::DateTime<chrono::Utc>>,
    pending: u64,
}

#[derive(Serialize)]
struct RejectedDoc {
    job_id: Uuid,
    reason: String,
}

/// `sync [--dispatch URL]`: one sync through the core's engine.
pub fn sync(ctx: &Context, out: &mut impl Write, url: Option<&str>) -> Result<u8, CliError> {
    let url = dispatch_url(ctx, url)?;
    let vault = ctx.open(false)?;
    let r = vault.sync(&HttpTransport::new(&url))?;
    let doc = SyncDoc {
        rounds: r.rounds,
        pushed: r.pushed,
        acknowledged: r.acknowledged,
        received: r.received,
        rejected: r.rejected.into_iter().map(|(job_id, reason)| RejectedDoc { job_id, reason }).collect(),
        revoked: r.revoked.iter().map(|o| o.job_id).collect(),
        prekeys_uploaded: r.prekeys_uploaded,
        server_time: r.server_time,
        pending: r.pending,
    };
    if ctx.json {
        output::json(out, &doc)?;
        return Ok(code::OK);
    }
    writeln!(out, "synced with {} in {} round(s)", output::clean(&url), doc.rounds)?;
    writeln!(out, "pushed {} event(s), {} acknowledged, {} still pending", doc.pushed, doc.acknowledged, doc.pending)?;
    for job in &doc.received {
        writeln!(out, "received  {job}")?;
    }
    for r in &doc.rejected {
        writeln!(out, "refused   {}  ({})", r.job_id, output::clean(&r.reason))?;
    }
    for job in &doc.revoked {
        writeln!(out, "shredded  {job}  (withdrawn by dispatch)")?;
    }
    if doc.prekeys_uploaded > 0 {
        writeln!(out, "uploaded {} prekey(s)", doc.prekeys_uploaded)?;
    }
    if let Some(t) = doc.server_time {
        writeln!(out, "dispatch time {}", t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))?;
    }
    Ok(code::OK)
}

/// `sync status`.
pub fn status(ctx: &Context, out: &mut impl Write) -> Result<u8, CliError> {
    let vault = ctx.open(false)?;
    let s = vault.sync_status()?;
    if ctx.json {
        output::json(out, &s)?;
        return Ok(code::OK);
    }
    let time = |t: Option<chrono::DateTime<chrono::Utc>>, none: &str| {
        t.map_or_else(|| none.to_owned(), |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    };
    writeln!(out, "enrolled              {}", if s.enrolled { "yes" } else { "no" })?;
    writeln!(out, "pending events        {}", s.pending_events)?;
    writeln!(out, "last success          {}", time(s.last_success_at, "never"))?;
    writeln!(out, "consecutive failures  {}", s.consecutive_failures)?;
    writeln!(out, "next attempt          {}", time(s.next_attempt_at, "now"))?;
    Ok(code::OK)
}

/// Reads the operator token: from `file` (which must be owner-only), else the environment.
fn operator_token(file: Option<&Path>) -> Result<String, CliError> {
    let Some(file) = file else {
        return std::env::var(OPERATOR_TOKEN_ENV)
            .ok()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .ok_or_else(|| CliError::Usage(format!("needs --operator-token-file PATH or ${OPERATOR_TOKEN_ENV}")));
    };
    use std::io::Read;
    let fail = |e: &dyn std::fmt::Display| CliError::Input(format!("cannot read {}: {e}", output::path(file)));
    let f = std::fs::File::open(file).map_err(|e| fail(&e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = f.metadata().map_err(|e| fail(&e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(CliError::Input(format!(
                "the operator token file {} can be read or written by others (mode {:o}); chmod 600 it",
                output::path(file),
                mode & 0o777
            )));
        }
    }
    let mut text = zeroize::Zeroizing::new(String::new());
    f.take(MAX_TOKEN_FILE_BYTES).read_to_string(&mut text).map_err(|e| fail(&e))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(CliError::Input(format!("the operator token file {} is empty", output::path(file))));
    }
    Ok(token.to_owned())
}

/// `dispatch enrolment-code --dispatch URL [--device ID] [--valid-for-hours N]
/// [--operator-token-file PATH]`: asks dispatch for a one-time enrolment code.
pub fn enrolment_code(
    ctx: &Context,
    out: &mut impl Write,
    url: &str,
    device: Option<&str>,
    valid_for_hours: Option<u64>,
    token_file: Option<&PathBuf>,
) -> Result<u8, CliError> {
    let url = check_url(url)?;
    let device = device
        .map(|d| Uuid::parse_str(d.trim()).map_err(|_| CliError::Input("--device must be a device id (UUID)".into())))
        .transpose()?;
    let token = operator_token(token_file.map(PathBuf::as_path))?;
    let body = jobseal_dispatch::IssueCodeRequest {
        device_id: device,
        valid_for_seconds: valid_for_hours.map(|h| h.saturating_mul(3600)),
    };
    let request = HttpRequest {
        method: "POST".into(),
        path: "/v1/operator/enrolment-codes".into(),
        headers: vec![
            ("authorization".to_owned(), format!("Bearer {token}")),
            ("content-type".to_owned(), "application/json".to_owned()),
        ],
        body: serde_json::to_vec(&body).map_err(io::Error::other)?,
    };
    let response =
        HttpTransport::new(&url).send(request).map_err(|e| CliError::Core(jobseal::Error::Network(e.message)))?;
    if !(200..300).contains(&response.status) {
        let message = serde_json::from_slice::<jobseal::sync::wire::ErrorBody>(&response.body)
            .map(|e| format!("{}: {}", e.error.code, e.error.message))
            .unwrap_or_else(|_| "no error details".to_owned());
        return Err(CliError::Core(jobseal::Error::Dispatch { status: response.status, message }));
    }
    let issued: jobseal_dispatch::IssuedCode = serde_json::from_slice(&response.body).map_err(|_| {
        CliError::Core(jobseal::Error::Dispatch {
            status: response.status,
            message: "the answer is not an enrolment code".into(),
        })
    })?;
    if ctx.json {
        output::json(out, &issued)?;
    } else {
        writeln!(out, "{}", issued.code)?;
        let for_device = issued.device_id.map_or_else(|| "any new device".to_owned(), |d| format!("device {d} only"));
        let _ = writeln!(
            io::stderr(),
            "jobseal: one-time enrolment code {} for {for_device}, valid until {}",
            issued.code_id,
            issued.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
    }
    Ok(code::OK)
}

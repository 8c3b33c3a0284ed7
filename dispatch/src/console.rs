//! The privacy officer's console: server-rendered pages under `/console` that show who saw what
//! and the proof of destruction, never a customer value (G1, G7; issue 14 part 6).
//!
//! It exists for the people who answer for customer data (a company's privacy officers, an
//! inspector of the data-protection authority), who should not need the JSON operator API and a
//! token in a shell to answer "who revealed which field of this job, when, in which state, and is
//! its data provably gone?". Everything shown comes from the operator views ([`JobView`],
//! [`DeviceView`], through the same queries as the operator API), which name jobs, devices,
//! fields and states and never carry the plaintext sheet dispatch keeps; the one free text a view
//! does carry, the technician's completion report, is left out of every page and export.
//!
//! Safety of the pages: maud escapes every value it is given (field names and details come from
//! devices), there is no JavaScript and no external asset, and every answer carries a strict
//! Content-Security-Policy, `nosniff`, `no-referrer` and `no-store`. Login takes the operator
//! token (the operator API's constant-time check) and gives a random session id in an
//! `HttpOnly; SameSite=Strict; Path=/console` cookie; sessions live in memory with a fixed
//! lifetime. The two POSTs (login, logout) carry a form token and refuse a foreign `Origin`;
//! failed logins are answered after a delay, one at a time, so guessing is at most about one
//! try per second for the whole server.

use crate::api::{parse_id, read_body, PathId};
use crate::error::ApiError;
use crate::operator::{AuditEntryView, ChainStatus, DeliveryStatus, DeviceView, JobView, ReceiptView};
use crate::service::{token_hash, Service};
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, COOKIE, HOST, LOCATION,
    ORIGIN, REFERRER_POLICY, SET_COOKIE, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use jobseal_protocol::audit::AuditKind;
use jobseal_protocol::envelope::RecipientKeyId;
use maud::{html, Markup, DOCTYPE};
use serde::Serialize;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// The session cookie's name.
const SESSION_COOKIE: &str = "jobseal_console";
/// The login form's token cookie (double submit: the form carries the same value).
const LOGIN_COOKIE: &str = "jobseal_console_login";
/// How long a session lasts from login, whatever the activity.
const SESSION_LIFETIME: Duration = Duration::from_secs(60 * 60);
/// Sessions held at most; past it the one closest to expiry is dropped. Only a correct token
/// makes one, so nobody without it can fill the table.
const MAX_SESSIONS: usize = 256;
/// How long a failed login waits before its answer, holding the one failure slot.
const FAILED_LOGIN_DELAY: Duration = Duration::from_secs(1);
/// Login attempts (right or wrong) one source address may make: 10 at once, then 10 a minute.
/// An officer who mistypes a few times is not held up; a guesser gets 10 tries a minute per
/// address, however many connections it opens (429 `rate_limited` past it).
const LOGIN_RATE: crate::ratelimit::EnrolRate = crate::ratelimit::EnrolRate { burst: 10, per_minute: 10 };
/// The largest console form body: two fields of 64 characters fit many times over.
const MAX_FORM_BYTES: usize = 4096;
/// Jobs and devices listed at most (newest first).
const LIST_LIMIT: u32 = 500;
/// What every console answer sends, whatever its status.
const SECURITY_HEADERS: [(axum::http::HeaderName, &str); 5] = [
    (CONTENT_SECURITY_POLICY, "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (REFERRER_POLICY, "no-referrer"),
    (CACHE_CONTROL, "no-store"),
    (X_FRAME_OPTIONS, "DENY"),
];
/// The console's stylesheet, served by dispatch itself (`default-src 'self'`).
const STYLE: &str = include_str!("console.css");

/// One logged-in officer's session.
#[derive(Clone)]
struct Session {
    /// The logout form's token.
    form_token: String,
    expires: Instant,
}

/// The console's state next to the service: sessions by the SHA-256 of their id (the id itself
/// is only in the officer's cookie), and the slot that failed logins queue on.
struct Console {
    service: Arc<Service>,
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    failures: tokio::sync::Mutex<()>,
    /// Login attempts per source address, counted before the token is looked at (see [`login`]).
    logins: crate::ratelimit::SourceLimiter,
}

type Shared = Arc<Console>;

/// The console's routes, merged into the server's router by `api::router`.
pub(crate) fn router(service: Arc<Service>) -> Router {
    let console = Arc::new(Console::new(service));
    Router::new()
        .route("/console", get(|| async { redirect("/console/jobs") }))
        .route("/console/", get(|| async { redirect("/console/jobs") }))
        .route("/console/style.css", get(style))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/jobs", get(jobs_page))
        .route("/console/jobs/{id}", get(job_page))
        .route("/console/jobs/{id}/export.json", get(export_json))
        .route("/console/jobs/{id}/export.csv", get(export_csv))
        .route("/console/devices", get(devices_page))
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::map_response(security_headers))
        .with_state(console)
}

async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

fn redirect(to: &'static str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, to)]).into_response()
}

async fn style() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLE).into_response()
}

// ---------------------------------------------------------------------------------------------
// Sessions, login, logout

/// A fresh random value for a cookie or a form: 32 bytes in hex.
fn random_token() -> Result<String, ApiError> {
    crate::service::new_device_token().map_err(|e| ApiError::internal(&e))
}

/// The value of cookie `name` in the request, if any.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

fn set_cookie(name: &str, value: &str, max_age: u64) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(&format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age}"))
        .map_err(|e| ApiError::internal(&e))
}

impl Console {
    /// The console of `service`: no session yet, no login attempt counted.
    fn new(service: Arc<Service>) -> Console {
        Console {
            service,
            sessions: Mutex::new(HashMap::new()),
            failures: tokio::sync::Mutex::new(()),
            logins: crate::ratelimit::SourceLimiter::new(LOGIN_RATE),
        }
    }

    /// The request's live session, if its cookie names one.
    fn session(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let key = token_hash(id);
        match sessions.get(&key) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Starts a session; returns its id (for the cookie).
    fn open_session(&self) -> Result<String, ApiError> {
        let id = random_token()?;
        let session = Session { form_token: random_token()?, expires: Instant::now() + SESSION_LIFETIME };
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_SESSIONS {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(token_hash(&id), session);
        Ok(id)
    }

    fn close_session(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(&token_hash(id));
        }
    }
}

/// Refuses a POST whose `Origin` names another site. Browsers send `Origin: null` for the
/// console's own forms (its `Referrer-Policy: no-referrer` asks them to), so a missing or null
/// origin passes here and the form token decides.
fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    if origin == "null" {
        return Ok(());
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
    let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
    if !host.is_empty() && authority.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(ApiError::forbidden("cross-origin form posts to the console are refused"))
    }
}

/// The fields of a form post (`application/x-www-form-urlencoded`, else 415). The body (bounded
/// by the server's size limit and body timeout) is read before any refusal: a refusal with the
/// body unread closes the connection, which a browser may have reused for its next request.
///
/// The console's forms are two short fields, so a body declared larger than [`MAX_FORM_BYTES`] is
/// refused (413) before it is read, one that turns out larger after reading is refused too, and
/// only the two field names the forms have are kept: an unauthenticated caller cannot make the
/// server hold or parse a megabyte of form pairs.
async fn form(service: &Service, headers: &HeaderMap, body: Body) -> Result<HashMap<String, String>, ApiError> {
    let declared_len = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared_len.is_some_and(|n| n > MAX_FORM_BYTES as u64) {
        return Err(ApiError::too_large());
    }
    let body = read_body(service, headers, body).await?;
    if body.len() > MAX_FORM_BYTES {
        return Err(ApiError::too_large());
    }
    let declared = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
    if !declared.is_some_and(|t| t.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded")) {
        return Err(ApiError::unsupported_media_type());
    }
    Ok(form_urlencoded::parse(&body)
        .filter(|(name, _)| name == "form_token" || name == "token")
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect())
}

/// Whether two form tokens are equal, in constant time (both are ours, 64 hex digits).
fn same_token(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

async fn login_page() -> Result<Response, ApiError> {
    login_form(StatusCode::OK, None)
}

/// The login page with a fresh form token (also set as the login cookie).
fn login_form(status: StatusCode, error: Option<&str>) -> Result<Response, ApiError> {
    let token = random_token()?;
    let body = page(
        "Log in",
        None,
        html! {
            h1 { "Privacy officer's console" }
            p { "Log in with the dispatch operator token. The console shows who saw which customer field \
                 of each job and the proof that its data was destroyed; it never shows a customer value." }
            @if let Some(error) = error { p.error role="alert" { (error) } }
            form method="post" action="/console/login" {
                input type="hidden" name="form_token" value=(token);
                label for="token" { "Operator token" }
                input #token type="password" name="token" autocomplete="off" required;
                button type="submit" { "Log in" }
            }
        },
    );
    let mut response = (status, body).into_response();
    response.headers_mut().insert(SET_COOKIE, set_cookie(LOGIN_COOKIE, &token, 3600)?);
    Ok(response)
}

async fn login(
    State(console): State<Shared>,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    // The (small, bounded) body is read before any refusal, so the connection stays usable.
    let fields = form(&console.service, &headers, body).await?;
    check_origin(&headers)?;
    let posted = fields.get("form_token").map(String::as_str).unwrap_or("");
    let expected = cookie(&headers, LOGIN_COOKIE).unwrap_or("");
    if expected.is_empty() || !same_token(posted, expected) {
        return Err(ApiError::forbidden("the login form's token is missing or does not match; reload the login page"));
    }
    // Every attempt counts against its source address before the token is compared, so that
    // opening many connections does not buy guesses: the delay below only slows the answers.
    if let Some(Extension(ConnectInfo(peer))) = peer {
        console.logins.check(peer.ip())?;
    }
    let token = fields.get("token").map(String::as_str).unwrap_or("").trim();
    if !token.is_empty() && console.service.is_operator_token(token) {
        let id = console.open_session()?;
        let mut response = redirect("/console/jobs");
        let headers = response.headers_mut();
        headers.append(SET_COOKIE, set_cookie(SESSION_COOKIE, &id, SESSION_LIFETIME.as_secs())?);
        headers.append(SET_COOKIE, set_cookie(LOGIN_COOKIE, "", 0)?);
        return Ok(response);
    }
    // One failure at a time, each answered after the delay: guessing runs at about one try per
    // second for the whole server, however many connections try.
    let _slot = console.failures.lock().await;
    tokio::time::sleep(FAILED_LOGIN_DELAY).await;
    login_form(StatusCode::UNAUTHORIZED, Some("That is not the operator token."))
}

async fn logout(State(console): State<Shared>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let fields = form(&console.service, &headers, body).await?;
    check_origin(&headers)?;
    let Some(session) = console.session(&headers) else { return Ok(redirect("/console/login")) };
    if !same_token(fields.get("form_token").map(String::as_str).unwrap_or(""), &session.form_token) {
        return Err(ApiError::forbidden("the logout form's token is missing or does not match"));
    }
    console.close_session(&headers);
    let mut response = redirect("/console/login");
    response.headers_mut().insert(SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0)?);
    Ok(response)
}

/// Runs a view on the blocking pool (SQLite calls block).
async fn blocking<T: Send + 'static>(
    console: &Shared,
    f: impl FnOnce(&Service) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let service = console.service.clone();
    tokio::task::spawn_blocking(move || f(&service)).await.map_err(|e| ApiError::internal(&e))?
}

// ---------------------------------------------------------------------------------------------
// Pages

/// The page frame: stylesheet, navigation with the logout form (when logged in), content.
fn page(title: &str, session: Option<&Session>, content: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · jobseal console" }
                link rel="stylesheet" href="/console/style.css";
            }
            body {
                @if let Some(session) = session {
                    nav {
                        a href="/console/jobs" { "Jobs" }
                        a href="/console/devices" { "Devices and audit chains" }
                        form.logout method="post" action="/console/logout" {
                            input type="hidden" name="form_token" value=(session.form_token);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (content) }
            }
        }
    };
    ([(CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

fn ts(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

fn enum_name<T: Serialize>(v: &T) -> String {
    crate::service::enum_text(v).unwrap_or_else(|_| "?".to_owned())
}

fn key_text(k: RecipientKeyId) -> String {
    match k {
        RecipientKeyId::Prekey(id) => format!("one-time prekey {id}"),
        RecipientKeyId::Identity => "IDENTITY KEY (no forward secrecy)".to_owned(),
    }
}

fn chain_text(c: &ChainStatus) -> String {
    match c.broken_at {
        Some(seq) => format!("BROKEN at seq {seq} (verified up to {})", c.verified_up_to),
        None => format!("intact, verified up to seq {} ({} pending)", c.verified_up_to, c.pending),
    }
}

/// The receipt that settles a job, in words.
fn receipt_text(r: Option<&ReceiptView>) -> &'static str {
    match r {
        Some(r) if r.verified => "verified",
        Some(_) => "NOT VERIFIED",
        None => "none",
    }
}

async fn jobs_page(State(console): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(session) = console.session(&headers) else { return Ok(redirect("/console/login")) };
    let jobs = blocking(&console, |s| s.job_views(LIST_LIMIT)).await?;
    Ok(page(
        "Jobs",
        Some(&session),
        html! {
            h1 { "Jobs" }
            p { "Newest first (at most " (LIST_LIMIT) "). Open a job for its timeline: who revealed which field, \
                 when, in which state, and the proof that its customer data was destroyed." }
            table.jobs {
                thead { tr {
                    th { "Job" } th { "Device" } th { "Version" } th { "Status" } th { "State" }
                    th { "Sealed to" } th { "Reveals" } th { "Shred receipt" } th { "Audit chain" }
                } }
                tbody {
                    @for job in &jobs {
                        @let identity = job.deliveries.iter().any(|d| d.sealed_to == RecipientKeyId::Identity);
                        tr {
                            td { a href={ "/console/jobs/" (job.job_id) } { (job.job_id) } }
                            td.id { (job.device_id) }
                            td { (job.version) }
                            td { (enum_name(&job.status)) }
                            td { (job.state.map_or("-".to_owned(), |s| enum_name(&s))) }
                            td { @if identity { span.flag { "identity key" } } @else { "prekey" } }
                            td { (job.audit_events.iter().filter(|e| is_reveal(e)).count()) }
                            td { (receipt_text(job.receipt.as_ref())) }
                            td { (chain_text(&job.audit_chain)) }
                        }
                    }
                }
            }
            @if jobs.is_empty() { p { "No jobs yet." } }
        },
    ))
}

async fn devices_page(State(console): State<Shared>, headers: HeaderMap) -> Result<Response, ApiError> {
    let Some(session) = console.session(&headers) else { return Ok(redirect("/console/login")) };
    let devices: Vec<DeviceView> = blocking(&console, |s| s.device_views(LIST_LIMIT)).await?;
    Ok(page(
        "Devices",
        Some(&session),
        html! {
            h1 { "Devices and their audit chains" }
            p { "Each device keeps a hash chain of what happened on it (every reveal, every shred). \
                 Dispatch verifies it as records arrive: \"verified up to\" is the last record linked to \
                 the first; \"broken at\" is the first record that does not fit (altered, reordered, or \
                 conflicting)." }
            table.devices {
                thead { tr {
                    th { "Device" } th { "Enrolled" } th { "Last sync" } th { "Wiped" }
                    th { "Sheets sealed to identity key" } th { "Audit records" } th { "Verified up to" }
                    th { "Pending" } th { "Broken at" }
                } }
                tbody {
                    @for d in &devices {
                        tr {
                            td.id { (d.device_id) }
                            td { (ts(d.enrolled_at)) }
                            td { (d.last_sync_at.map_or("-".to_owned(), ts)) }
                            td { (d.wiped_at.map_or("-".to_owned(), ts)) }
                            td { @if d.sealed_to_identity > 0 { span.flag { (d.sealed_to_identity) } } @else { "0" } }
                            td { (d.audit_chain.events_received) }
                            td { (d.audit_chain.verified_up_to) }
                            td { (d.audit_chain.pending) }
                            td { @match d.audit_chain.broken_at {
                                Some(seq) => { span.flag { "seq " (seq) } }
                                None => { "intact" }
                            } }
                        }
                    }
                }
            }
            @if devices.is_empty() { p { "No devices enrolled yet." } }
        },
    ))
}

fn is_reveal(e: &AuditEntryView) -> bool {
    matches!(e.kind, AuditKind::Reveal | AuditKind::RevealDenied)
}

/// One line of a job's timeline, as the page and the CSV export show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TimelineEntry {
    /// When: the device's trusted time for audit records and receipts (the shred), dispatch's
    /// time for deliveries and revocations; the report at the device's time of writing.
    pub(crate) at: DateTime<Utc>,
    /// What happened: `delivery`, an audit kind (`reveal`, `reveal-denied`, `shredded`, ...),
    /// `report`, `revocation`, `receipt`.
    pub(crate) event: &'static str,
    pub(crate) device_id: Uuid,
    /// The audit record's seq in the device's chain.
    pub(crate) seq: Option<u64>,
    /// Field names shown (reveals).
    pub(crate) shown: Vec<String>,
    /// Field names refused, with the reason (reveals).
    pub(crate) refused: Vec<(String, String)>,
    /// The job's state at the time (audit records).
    pub(crate) state: Option<String>,
    /// For a reveal: `inside` (a field was shown, which the policy allows only inside the access
    /// window), `outside` (refused because the window was not open), else empty.
    pub(crate) window: &'static str,
    /// How the record fits the device's chain (audit records).
    pub(crate) chain: Option<String>,
    /// A value-free description.
    pub(crate) detail: String,
    /// Something an inspector must notice (identity-key sealing, an unverified receipt, a
    /// record off the chain).
    pub(crate) flag: Option<&'static str>,
}

/// The timeline of a job, oldest first, from its view alone.
pub(crate) fn timeline(job: &JobView) -> Vec<TimelineEntry> {
    let blank = |at, event, device_id| TimelineEntry {
        at,
        event,
        device_id,
        seq: None,
        shown: Vec::new(),
        refused: Vec::new(),
        state: None,
        window: "",
        chain: None,
        detail: String::new(),
        flag: None,
    };
    let mut out = Vec::new();
    for d in &job.deliveries {
        let mut detail =
            format!("sheet version {} sealed to {}; {}", d.version, key_text(d.sealed_to), enum_name(&d.status));
        if d.status == DeliveryStatus::Received {
            if let Some(via) = d.via {
                detail.push_str(&format!(" (opened with {})", key_text(via)));
            }
        }
        if let Some(reason) = &d.reason {
            detail.push_str(&format!(" ({reason})"));
        }
        let identity = d.sealed_to == RecipientKeyId::Identity || d.via == Some(RecipientKeyId::Identity);
        out.push(TimelineEntry {
            detail,
            flag: identity.then_some("sealed to the identity key: no forward secrecy"),
            ..blank(d.queued_at, "delivery", d.device_id)
        });
    }
    for e in &job.audit_events {
        let mut entry = TimelineEntry {
            seq: Some(e.seq),
            state: e.state.map(|s| enum_name(&s)),
            chain: Some(enum_name(&e.chain)),
            flag: (e.chain == crate::operator::ChainMark::Broken).then_some("does not fit the device's audit chain"),
            ..blank(e.at, e.kind.as_str(), e.device_id)
        };
        if is_reveal(e) {
            match &e.reveal {
                Some(r) => {
                    entry.shown = r.shown.clone();
                    entry.refused = r.refused.clone();
                    // The detail is the summary itself, unless it is an older chain's free text.
                    let detail = e.detail.as_deref().unwrap_or("");
                    if jobseal_protocol::audit::RevealSummary::parse(detail).is_none() {
                        entry.detail = detail.to_owned();
                    }
                }
                // A reveal of a chain before version 0.2: one event per field, named in `field`.
                None => {
                    match (e.kind, &e.field) {
                        (AuditKind::Reveal, Some(f)) => entry.shown = vec![f.clone()],
                        (_, Some(f)) => entry.refused = vec![(f.clone(), String::new())],
                        _ => {}
                    }
                    entry.detail = e.detail.clone().unwrap_or_default();
                }
            }
            entry.window = if !entry.shown.is_empty() {
                "inside"
            } else if entry.refused.iter().any(|(_, why)| why == "not-yet-open" || why == "window-closed") {
                "outside"
            } else {
                ""
            };
        } else {
            entry.detail = e.detail.clone().unwrap_or_default();
        }
        out.push(entry);
    }
    if let Some(report) = &job.report {
        out.push(TimelineEntry {
            detail: "completion report received (its text is not shown)".to_owned(),
            ..blank(report.at, "report", report.device_id)
        });
    }
    for r in &job.revocations {
        let detail = match r.confirmed_at {
            Some(at) => format!("withdrawn ({}); confirmed by a verified receipt at {}", enum_name(&r.reason), ts(at)),
            None => format!("withdrawn ({}); not yet confirmed", enum_name(&r.reason)),
        };
        out.push(TimelineEntry { detail, ..blank(r.queued_at, "revocation", r.device_id) });
    }
    for r in &job.receipts {
        let c = &r.receipt;
        out.push(TimelineEntry {
            state: Some(enum_name(&c.state)),
            detail: format!(
                "shred receipt {}: version {}, {} customer fields destroyed, key epoch {}; received {}",
                if r.verified { "verified" } else { "NOT VERIFIED" },
                c.version,
                c.fields_destroyed,
                c.epoch,
                ts(r.received_at)
            ),
            flag: (!r.verified).then_some("the receipt's MAC does not verify"),
            // Placed at the shred (the device's trusted time, like its audit records), not at
            // its arrival, which may be much later for a device that was offline.
            ..blank(c.shredded_at, "receipt", r.device_id)
        });
    }
    out.sort_by_key(|e| e.at);
    out
}

/// The job named in the path (400 if it is not a UUID, 404 if unknown). Called once the session
/// is checked.
async fn load_job(console: &Shared, id: PathId) -> Result<JobView, ApiError> {
    let id = parse_id(id, "job")?;
    blocking(console, move |s| s.job_view(id)).await
}

async fn job_page(State(console): State<Shared>, headers: HeaderMap, id: PathId) -> Result<Response, ApiError> {
    let Some(session) = console.session(&headers) else { return Ok(redirect("/console/login")) };
    let job = load_job(&console, id).await?;
    let entries = timeline(&job);
    let reveals = job.audit_events.iter().filter(|e| is_reveal(e)).count();
    let identity = job.deliveries.iter().any(|d| d.sealed_to == RecipientKeyId::Identity);
    Ok(page(
        "Job",
        Some(&session),
        html! {
            h1 { "Job " span.id { (job.job_id) } }
            dl.summary {
                dt { "Assigned device" } dd.id { (job.device_id) }
                dt { "Sheet version" } dd { (job.version) }
                dt { "Status" } dd { (enum_name(&job.status)) }
                dt { "Last reported state" } dd { (job.state.map_or("-".to_owned(), |s| enum_name(&s))) }
                dt { "Delivery" } dd {
                    @if identity { span.flag #identity-flag { "sealed to the identity key at least once: no forward secrecy" } }
                    @else { "every sheet sealed to a one-time prekey" }
                }
                dt { "Reveals" } dd #reveal-count { (reveals) }
                dt { "Shred receipt" } dd #receipt-status { (receipt_text(job.receipt.as_ref())) }
                dt { "Device's audit chain" } dd { (chain_text(&job.audit_chain)) }
            }
            p.exports {
                "Export this job's record for an inspection: "
                a href={ "/console/jobs/" (job.job_id) "/export.json" } download { "JSON" }
                " · "
                a href={ "/console/jobs/" (job.job_id) "/export.csv" } download { "CSV" }
            }
            h2 { "Timeline" }
            table.timeline {
                thead { tr {
                    th { "Time" } th { "Event" } th { "Device" } th { "Seq" } th { "Fields shown" }
                    th { "Fields refused" } th { "State" } th { "Access window" } th { "Chain" } th { "Detail" }
                } }
                tbody {
                    @for e in &entries {
                        tr class={ "ev-" (e.event) } {
                            td { (ts(e.at)) }
                            td { (e.event) }
                            td.id { (e.device_id) }
                            td { (e.seq.map_or(String::new(), |s| s.to_string())) }
                            td { (e.shown.join(", ")) }
                            td { @for (name, why) in &e.refused { (name) " (" (why) ") " } }
                            td { (e.state.as_deref().unwrap_or("")) }
                            td { (e.window) }
                            td { (e.chain.as_deref().unwrap_or("")) }
                            td {
                                (e.detail)
                                @if let Some(flag) = e.flag { " " span.flag { (flag) } }
                            }
                        }
                    }
                }
            }
            h2 { "Reported states" }
            ul {
                @for h in &job.history {
                    li { (ts(h.at)) ": " (enum_name(&h.from)) " → " (enum_name(&h.to)) " (device " span.id { (h.device_id) } ", event seq " (h.seq) ")" }
                }
            }
        },
    ))
}

// ---------------------------------------------------------------------------------------------
// Exports

/// The JSON export's format name.
pub(crate) const EXPORT_FORMAT: &str = "jobseal.console.job-record.v1";

/// A job's record as the operator API gives it (`GET /v1/operator/jobs/{id}`), with the
/// completion report's text removed: the one free text a view carries.
pub(crate) fn job_record(job: &JobView) -> Result<serde_json::Value, ApiError> {
    let mut value = serde_json::to_value(job).map_err(|e| ApiError::internal(&e))?;
    if let Some(report) = value.get_mut("report").and_then(|r| r.as_object_mut()) {
        report.remove("text");
    }
    Ok(serde_json::json!({ "format": EXPORT_FORMAT, "exported_at": Utc::now(), "job": value }))
}

fn attachment(job: Uuid, ext: &str, content_type: &'static str, body: Vec<u8>) -> Result<Response, ApiError> {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"jobseal-job-{job}.{ext}\""))
        .map_err(|e| ApiError::internal(&e))?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static(content_type)), (CONTENT_DISPOSITION, disposition)], body)
        .into_response())
}

async fn export_json(State(console): State<Shared>, headers: HeaderMap, id: PathId) -> Result<Response, ApiError> {
    if console.session(&headers).is_none() {
        return Ok(redirect("/console/login"));
    }
    let job = load_job(&console, id).await?;
    let body = serde_json::to_vec_pretty(&job_record(&job)?).map_err(|e| ApiError::internal(&e))?;
    attachment(job.job_id, "json", "application/json", body)
}

/// A CSV cell that a spreadsheet will not run as a formula: text starting with `=`, `+`, `-`,
/// `@`, a tab or a carriage return gets a leading `'` (OWASP's advice on CSV injection).
pub(crate) fn csv_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

/// The CSV export's columns.
pub(crate) const CSV_HEADER: [&str; 12] = [
    "job_id",
    "at",
    "event",
    "device_id",
    "seq",
    "fields_shown",
    "fields_refused",
    "state",
    "access_window",
    "chain",
    "detail",
    "flag",
];

/// The job's timeline as CSV, one row per entry, every cell through [`csv_cell`].
pub(crate) fn job_csv(job: &JobView) -> Result<Vec<u8>, ApiError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::internal(&e);
    w.write_record(CSV_HEADER).map_err(fail)?;
    for e in timeline(job) {
        let refused: Vec<String> = e.refused.iter().map(|(n, why)| format!("{n} ({why})")).collect();
        let row = [
            job.job_id.to_string(),
            e.at.to_rfc3339(),
            e.event.to_owned(),
            e.device_id.to_string(),
            e.seq.map_or(String::new(), |s| s.to_string()),
            e.shown.join(" "),
            refused.join(" "),
            e.state.unwrap_or_default(),
            e.window.to_owned(),
            e.chain.unwrap_or_default(),
            e.detail,
            e.flag.unwrap_or("").to_owned(),
        ];
        w.write_record(row.iter().map(|c| csv_cell(c))).map_err(fail)?;
    }
    w.into_inner().map_err(|e| ApiError::internal(&e.error()))
}

async fn export_csv(State(console): State<Shared>, headers: HeaderMap, id: PathId) -> Result<Response, ApiError> {
    if console.session(&headers).is_none() {
        return Ok(redirect("/console/login"));
    }
    let job = load_job(&console, id).await?;
    attachment(job.job_id, "csv", "text/csv; charset=utf-8", job_csv(&job)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expired_session_is_refused_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::open(&dir.path().join("d.db").into(), "operator token for testing").unwrap();
        let console = Console::new(Arc::new(service));
        let id = console.open_session().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(&format!("other=1; {SESSION_COOKIE}={id}")).unwrap());
        assert!(console.session(&headers).is_some());
        // The session's hour is up.
        for s in console.sessions.lock().unwrap().values_mut() {
            s.expires = Instant::now() - Duration::from_secs(1);
        }
        assert!(console.session(&headers).is_none());
        assert!(console.sessions.lock().unwrap().is_empty(), "an expired session is dropped when seen");
    }

    #[test]
    fn the_session_table_is_bounded_and_drops_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let service = Service::open(&dir.path().join("d.db").into(), "operator token for testing").unwrap();
        let console = Console::new(Arc::new(service));
        let first = console.open_session().unwrap();
        for _ in 0..MAX_SESSIONS {
            console.open_session().unwrap();
        }
        let sessions = console.sessions.lock().unwrap();
        assert_eq!(sessions.len(), MAX_SESSIONS);
        assert!(!sessions.contains_key(&token_hash(&first)), "the session closest to expiry went first");
    }

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for bad in ["=1+1", "+33 1", "-2", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(csv_cell(bad), format!("'{bad}"));
        }
        for good in ["door_code", "", "2030-03-04T08:00:00+00:00", "'already"] {
            assert_eq!(csv_cell(good), good);
        }
    }

    #[test]
    fn a_foreign_origin_is_refused_and_a_null_or_same_one_passes() {
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            h.insert(HOST, HeaderValue::from_static("127.0.0.1:8787"));
            if let Some(o) = origin {
                h.insert(ORIGIN, HeaderValue::from_str(o).unwrap());
            }
            h
        };
        assert!(check_origin(&headers(Some("http://evil.example"))).is_err());
        assert!(check_origin(&headers(Some("http://127.0.0.1:8787.evil.example"))).is_err());
        assert!(check_origin(&headers(Some("http://127.0.0.1:8787"))).is_ok());
        assert!(check_origin(&headers(Some("null"))).is_ok());
        assert!(check_origin(&headers(None)).is_ok());
    }
}

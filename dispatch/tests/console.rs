//! The privacy officer's console (`/console`) from outside, as an attacker and as an inspector
//! would use it: login and sessions, forged form posts, markup and formulas smuggled in through
//! device-supplied names, and the guarantee that no customer value of a sheet (which dispatch
//! holds in plaintext) reaches a page or an export.

use chrono::{Duration, Utc};
use jobseal::{JobState, ManualClock};
use jobseal_testkit::device::open_vault;
use jobseal_testkit::server::{quote, TestDispatch};
use jobseal_testkit::sheet::{Sheet, VALUES};
use jobseal_testkit::Operator;
use std::sync::Arc;
use std::time::Instant;
use uuid::Uuid;

/// The technician's completion report: free text, which the console never shows.
const REPORT: &str = "Report canary Qzv7: terminal installed";
/// The sheet's work order, a sheet value the console has no reason to show either.
const WORK_ORDER: &str = "WO-CONSOLE-CANARY-41";

/// One HTTP answer: status, headers (lower-case names, every value), body.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect()
    }

    /// The value a `Set-Cookie` gives cookie `name`, if any.
    fn cookie(&self, name: &str) -> Option<String> {
        self.all("set-cookie")
            .into_iter()
            .filter_map(|c| c.split(';').next()?.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }

    fn redirects_to_login(&self) -> bool {
        self.status == 303 && self.header("location") == Some("/console/login")
    }
}

/// A browser-like client that follows no redirect and keeps nothing: each request names its
/// cookies and headers, so a test says exactly what an attacker would send.
struct Browser {
    base: String,
    agent: ureq::Agent,
}

impl Browser {
    fn new(server: &TestDispatch) -> Browser {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
        Browser { base: server.base_url(), agent }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Answer {
        let url = format!("{}{path}", self.base);
        let result = if method == "GET" {
            let mut req = self.agent.get(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.call()
        } else {
            let mut req = self.agent.post(&url);
            for (k, v) in headers {
                req = req.header(*k, *v);
            }
            req.send(body.unwrap_or("").as_bytes())
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: no answer: {e}"));
        let headers = resp
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_ascii_lowercase(), v.to_str().unwrap_or("").to_owned()))
            .collect();
        let body = resp.body_mut().read_to_string().unwrap_or_default();
        Answer { status: resp.status().as_u16(), headers, body }
    }

    fn get(&self, path: &str, session: Option<&str>) -> Answer {
        match session {
            Some(s) => self.request("GET", path, &[("Cookie", &format!("jobseal_console={s}"))], None),
            None => self.request("GET", path, &[], None),
        }
    }

    /// The login form's token, as the login page sets it (cookie and hidden field alike).
    fn login_form_token(&self) -> String {
        let page = self.get("/console/login", None);
        assert_eq!(page.status, 200);
        let token = page.cookie("jobseal_console_login").expect("the login page sets its form token cookie");
        assert!(page.body.contains(&format!("value=\"{token}\"")), "the form carries the same token");
        token
    }

    /// Posts the login form with `token`, as the console's own page would.
    fn login(&self, token: &str) -> Answer {
        let form_token = self.login_form_token();
        self.post_login(&form_token, &[("token", token)])
    }

    /// Posts the login form with `form_token` (in the form and its cookie) and `fields`.
    fn post_login(&self, form_token: &str, fields: &[(&str, &str)]) -> Answer {
        let mut all = vec![("form_token", form_token)];
        all.extend_from_slice(fields);
        self.request(
            "POST",
            "/console/login",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Cookie", &format!("jobseal_console_login={form_token}")),
                ("Origin", "null"),
            ],
            Some(&form(&all)),
        )
    }

    /// Logs in with the operator token; the session cookie's value.
    fn session(&self, op: &Operator) -> String {
        let answer = self.login(op.token());
        assert_eq!(answer.status, 303, "{}", answer.body);
        answer.cookie("jobseal_console").expect("a session cookie")
    }

    /// The logout form's token on a page of `session`.
    fn logout_form_token(&self, session: &str) -> String {
        let page = self.get("/console/jobs", Some(session));
        let at = page.body.find("action=\"/console/logout\"").expect("a logout form");
        let rest = &page.body[at..];
        let start = rest.find("value=\"").unwrap() + 7;
        rest[start..start + 64].to_owned()
    }
}

fn form(fields: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(fields).finish()
}

/// A worked job: a device enrols, gets a sheet whose customer values are the testkit's fake
/// ones, reveals (before the access window: all refused; inside it en route: the door code
/// refused for the state; on site: all shown), closes with a report, and syncs its audit records
/// and its shred receipt.
struct Day {
    server: TestDispatch,
    op: Operator,
    job: Uuid,
    device: Uuid,
    _dir: tempfile::TempDir,
}

fn worked_day() -> Day {
    let server = TestDispatch::start();
    let op = server.operator();
    let net = server.transport();
    let dir = tempfile::tempdir().unwrap();
    let now = Utc::now();
    let clock = Arc::new(ManualClock::new(now));
    let vault = open_vault(&dir.path().join("device"), clock.clone()).unwrap();
    let device = vault.enrol_with_dispatch(&net, Some(server.key()), 5, Some(&op.issue_code().code)).unwrap().device_id;
    let job = Uuid::new_v4();
    let at = |m: i64| now + Duration::minutes(m);
    // The access window opens 30 minutes from now.
    let sheet = Sheet::new(job).work_order(WORK_ORDER).window(at(60), at(120)).access(30, 60).expiry(at(300));
    op.create_job(device, &sheet.json());
    assert_eq!(vault.sync(&net).unwrap().received, vec![job]);
    vault.advance(job, JobState::EnRoute).unwrap();
    // Before the window: nothing shown. Inside it, en route: all but the door code.
    vault.reveal(job).unwrap();
    clock.set_wall(at(40));
    vault.reveal(job).unwrap();
    vault.advance(job, JobState::OnSite).unwrap();
    vault.reveal(job).unwrap();
    vault.close(job, REPORT).unwrap();
    vault.sync(&net).unwrap();
    let view = op.job(job);
    assert!(view.receipt.as_ref().unwrap().verified);
    assert_eq!(view.report.as_ref().unwrap().text, REPORT);
    Day { server, op, job, device, _dir: dir }
}

/// Every console page and export of `day`'s job.
fn console_urls(job: Uuid) -> Vec<String> {
    vec![
        "/console/jobs".to_owned(),
        "/console/devices".to_owned(),
        format!("/console/jobs/{job}"),
        format!("/console/jobs/{job}/export.json"),
        format!("/console/jobs/{job}/export.csv"),
    ]
}

#[test]
fn every_console_url_needs_a_session_and_the_operator_token_is_not_one() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    for url in console_urls(day.job) {
        assert!(browser.get(&url, None).redirects_to_login(), "{url} without a session");
        let forged = browser.get(&url, Some(&"ab".repeat(32)));
        assert!(forged.redirects_to_login(), "{url} with a made-up session id");
        let bearer = browser.request("GET", &url, &[("Authorization", &format!("Bearer {}", day.op.token()))], None);
        assert!(bearer.redirects_to_login(), "{url} with the operator API's bearer token");
        let token_as_cookie = browser.get(&url, Some(day.op.token()));
        assert!(token_as_cookie.redirects_to_login(), "{url} with the operator token as the cookie");
    }
    assert!(browser.get("/console", None).status == 303);
    // The stylesheet holds no data and is served to anyone.
    assert_eq!(browser.get("/console/style.css", None).status, 200);
}

#[test]
fn a_wrong_token_is_refused_slowly_and_gives_no_session() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    for wrong in ["", "x", &format!("{}0", day.op.token()), &day.op.token()[1..]] {
        let started = Instant::now();
        let answer = browser.login(wrong);
        assert_eq!(answer.status, 401, "{wrong:?}");
        assert!(started.elapsed() >= std::time::Duration::from_millis(900), "failed logins are not fast");
        assert!(answer.cookie("jobseal_console").is_none());
        assert!(answer.body.contains("not the operator token"));
        assert!(!answer.body.contains(day.op.token()));
    }
    // The right token is not held up by the failures before it.
    let started = Instant::now();
    assert_eq!(browser.login(day.op.token()).status, 303);
    assert!(started.elapsed() < std::time::Duration::from_millis(900), "a correct login does not wait");
}

#[test]
fn a_session_opens_the_console_and_logout_ends_it() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    let login = browser.login(day.op.token());
    assert!(login.status == 303 && login.header("location") == Some("/console/jobs"));
    let cookie = login
        .all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("jobseal_console="))
        .expect("a session cookie")
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let session = login.cookie("jobseal_console").unwrap();
    assert_eq!(session.len(), 64);
    assert!(!session.contains(day.op.token()) && !day.op.token().contains(&session), "the cookie is not the token");

    for url in console_urls(day.job) {
        let page = browser.get(&url, Some(&session));
        assert_eq!(page.status, 200, "{url}: {}", page.body);
        let csp = page.header("content-security-policy").unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(page.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(page.header("cache-control"), Some("no-store"));
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        for external in ["http://", "https://", "<script"] {
            assert!(!page.body.contains(external), "{url} refers to {external}");
        }
    }

    // Logout needs the form's token; without it the session stays.
    let no_token = browser.request(
        "POST",
        "/console/logout",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", &format!("jobseal_console={session}"))],
        Some(""),
    );
    assert_eq!(no_token.status, 403);
    assert_eq!(browser.get("/console/jobs", Some(&session)).status, 200);

    let form_token = browser.logout_form_token(&session);
    let logout = browser.request(
        "POST",
        "/console/logout",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Cookie", &format!("jobseal_console={session}")),
            ("Origin", "null"),
        ],
        Some(&form(&[("form_token", &form_token)])),
    );
    assert!(logout.redirects_to_login(), "{}", logout.status);
    assert!(logout.all("set-cookie").iter().any(|c| c.starts_with("jobseal_console=;") && c.contains("Max-Age=0")));
    for url in console_urls(day.job) {
        assert!(browser.get(&url, Some(&session)).redirects_to_login(), "{url} after logout");
    }
}

#[test]
fn cross_site_form_posts_are_refused() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    let form_token = browser.login_form_token();
    let login_body = form(&[("form_token", &form_token), ("token", day.op.token())]);
    let urlencoded = ("Content-Type", "application/x-www-form-urlencoded");
    let login_cookie = format!("jobseal_console_login={form_token}");

    // Another site's page posting the login form: its Origin gives it away.
    let foreign = browser.request(
        "POST",
        "/console/login",
        &[urlencoded, ("Cookie", &login_cookie), ("Origin", "http://evil.example")],
        Some(&login_body),
    );
    assert_eq!(foreign.status, 403);
    assert!(foreign.cookie("jobseal_console").is_none());
    // Without the login cookie (a SameSite=Strict cookie never goes with a cross-site post), the
    // form's token alone does not do.
    let cookieless = browser.request("POST", "/console/login", &[urlencoded], Some(&login_body));
    assert_eq!(cookieless.status, 403);
    assert!(cookieless.cookie("jobseal_console").is_none());
    // Nor does a cookie with another form token.
    let mismatched = browser.request(
        "POST",
        "/console/login",
        &[urlencoded, ("Cookie", &format!("jobseal_console_login={}", "0".repeat(64)))],
        Some(&login_body),
    );
    assert_eq!(mismatched.status, 403);
    // A JSON post is not a form.
    let json = browser.request(
        "POST",
        "/console/login",
        &[("Content-Type", "application/json"), ("Cookie", &login_cookie)],
        Some("{}"),
    );
    assert_eq!(json.status, 415);

    // Logout from another site, with the officer's cookie and the right form token: refused.
    let session = browser.session(&day.op);
    let logout_token = browser.logout_form_token(&session);
    let forged = browser.request(
        "POST",
        "/console/logout",
        &[urlencoded, ("Cookie", &format!("jobseal_console={session}")), ("Origin", "https://evil.example")],
        Some(&form(&[("form_token", &logout_token)])),
    );
    assert_eq!(forged.status, 403);
    assert_eq!(browser.get("/console/jobs", Some(&session)).status, 200, "the session survives");
}

#[test]
fn no_customer_value_or_report_text_reaches_a_page_or_an_export() {
    let day = worked_day();
    // The canaries are really in dispatch's database (the plaintext sheet and the report).
    let raw = if day.server.database().is_postgres() {
        let rows =
            day.server.database().sql("SELECT encode(sheet, 'escape') FROM jobs UNION ALL SELECT text FROM reports");
        rows.into_iter().flatten().flatten().collect::<String>().into_bytes()
    } else {
        let db = std::fs::read(day.server.db_path()).unwrap();
        let wal = std::fs::read(day.server.db_path().with_extension("db-wal")).unwrap_or_default();
        [db, wal].concat()
    };
    let holds = |needle: &str| raw.windows(needle.len()).any(|w| w == needle.as_bytes());
    assert!(holds(VALUES[0]) && holds(REPORT), "the test's canaries are in the database");

    let browser = Browser::new(&day.server);
    let session = browser.session(&day.op);
    let mut seen = browser.get("/console/login", None).body;
    for url in console_urls(day.job) {
        let answer = browser.get(&url, Some(&session));
        assert_eq!(answer.status, 200);
        seen.push_str(&answer.body);
    }
    for canary in VALUES.iter().copied().chain([REPORT, WORK_ORDER]) {
        assert!(!seen.contains(canary), "a console page or export shows a sheet value or the report");
    }
    // What it does show: the reveals by field name, and the verified receipt.
    let page = browser.get(&format!("/console/jobs/{}", day.job), Some(&session)).body;
    assert!(page.contains("door_code") && page.contains("phone"));
    assert!(page.contains("shred receipt verified"));
}

#[test]
fn exports_match_the_operator_api_view_of_the_job() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    let session = browser.session(&day.op);
    let api = day.op.job(day.job);

    let json = browser.get(&format!("/console/jobs/{}/export.json", day.job), Some(&session));
    assert_eq!(json.header("content-type"), Some("application/json"));
    let disposition = json.header("content-disposition").unwrap();
    assert!(disposition.starts_with("attachment;") && disposition.contains(&format!("jobseal-job-{}.json", day.job)));
    let exported: serde_json::Value = serde_json::from_str(&json.body).unwrap();
    assert_eq!(exported["format"], "jobseal.console.job-record.v1");
    let mut expected = serde_json::to_value(&api).unwrap();
    expected["report"].as_object_mut().unwrap().remove("text");
    assert_eq!(exported["job"], expected, "the JSON export is the operator API's view without the report text");

    let csv = browser.get(&format!("/console/jobs/{}/export.csv", day.job), Some(&session));
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    assert!(csv.header("content-disposition").unwrap().starts_with("attachment;"));
    let mut reader = csv::Reader::from_reader(csv.body.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_owned).collect();
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let reveal_rows: Vec<&csv::StringRecord> =
        rows.iter().filter(|r| matches!(&r[col("event")], "reveal" | "reveal-denied")).collect();
    let api_reveals: Vec<_> = api
        .audit_events
        .iter()
        .filter(|e| matches!(e.kind, jobseal::AuditKind::Reveal | jobseal::AuditKind::RevealDenied))
        .collect();
    assert!(!api_reveals.is_empty());
    assert_eq!(reveal_rows.len(), api_reveals.len());
    for (row, event) in reveal_rows.iter().zip(&api_reveals) {
        assert_eq!(row[col("seq")], event.seq.to_string());
        assert_eq!(row[col("device_id")], event.device_id.to_string());
        let summary = event.reveal.as_ref().unwrap();
        assert_eq!(row[col("fields_shown")], summary.shown.join(" "));
    }
    // Before the window, then inside it en route (the door code refused for the state), on site.
    let window: Vec<&str> = reveal_rows.iter().map(|r| &r[col("access_window")]).collect();
    assert_eq!(window, ["outside", "inside", "inside"]);
    assert!(reveal_rows[0][col("fields_shown")].is_empty());
    assert!(reveal_rows[0][col("fields_refused")].contains("phone (not-yet-open)"));
    assert!(reveal_rows[1][col("fields_refused")].contains("door_code (wrong-state)"));
    assert!(reveal_rows[2][col("fields_shown")].contains("door_code"));
    let receipts: Vec<_> = rows.iter().filter(|r| &r[col("event")] == "receipt").collect();
    assert_eq!(receipts.len(), api.receipts.len());
    assert!(receipts[0][col("detail")].starts_with("shred receipt verified"));
    assert_eq!(rows.iter().filter(|r| &r[col("event")] == "delivery").count(), api.deliveries.len());
    assert!(rows.iter().all(|r| r[col("job_id")] == day.job.to_string()));
}

/// Writes an audit record for the job as a device could send it: its field name and detail are
/// whatever the device put there. Stored directly (the rows ingest writes), so the test controls
/// the text exactly.
fn plant_audit_record(day: &Day, seq: i64, kind: &str, field: &str, detail: &str) {
    let now = Utc::now().timestamp_millis();
    day.server.database().sql(&format!(
        "INSERT INTO audit_records (device_id, seq, job_id, at_ms, kind, field, state, detail, prev_hash, hash, chain,
                                    event_key, received_ms)
         VALUES ({}, {seq}, {}, {now}, {}, {}, 'on-site', {}, {blob}, {blob}, 'broken', {}, {now})",
        quote(&day.device.to_string()),
        quote(&day.job.to_string()),
        quote(kind),
        quote(field),
        quote(detail),
        quote(&Uuid::new_v4().to_string()),
        blob = if day.server.database().is_postgres() { "'\\x00'::bytea" } else { "x'00'" },
    ));
}

#[test]
fn device_supplied_names_cannot_inject_markup_or_formulas() {
    let day = worked_day();
    plant_audit_record(&day, 1_000, "reveal", "<script>alert(1)</script>", "<img src=x onerror=alert(2)>");
    plant_audit_record(&day, 1_001, "transition", "x", "+cmd|' /C calc'!A0");
    plant_audit_record(&day, 1_002, "reveal-denied", "=HYPERLINK(\"http://evil.example\")", "@SUM(A1)");
    plant_audit_record(&day, 1_003, "transition", "x", "-1+1");
    let browser = Browser::new(&day.server);
    let session = browser.session(&day.op);

    let page = browser.get(&format!("/console/jobs/{}", day.job), Some(&session));
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<script") && !page.body.contains("<img"), "markup from a device is escaped");
    assert!(page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.body.contains("&lt;img src=x onerror=alert(2)&gt;"), "{}", page.body);
    assert!(page.body.contains("does not fit the device"), "a broken record is flagged");

    let csv = browser.get(&format!("/console/jobs/{}/export.csv", day.job), Some(&session)).body;
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(csv.as_bytes());
    let mut cells = 0;
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            cells += 1;
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "formula cell: {cell:?}");
        }
    }
    assert!(cells > 0);
    assert!(csv.contains("'=HYPERLINK") && csv.contains("'+cmd") && csv.contains("'@SUM(A1)") && csv.contains("'-1+1"));

    // A job id in the path is a UUID or a 400 that does not echo it.
    let bad = browser.get("/console/jobs/%3Cscript%3Ealert(1)%3C%2Fscript%3E", Some(&session));
    assert_eq!(bad.status, 400);
    assert!(!bad.body.contains("<script") && !bad.body.contains("alert"));
    let unknown = browser.get(&format!("/console/jobs/{}", Uuid::new_v4()), Some(&session));
    assert_eq!(unknown.status, 404);
}

#[test]
fn identity_key_deliveries_and_broken_chains_are_flagged() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    let session = browser.session(&day.op);
    let page = browser.get(&format!("/console/jobs/{}", day.job), Some(&session)).body;
    assert!(!page.contains("id=\"identity-flag\""), "a prekey delivery is not flagged");
    assert!(page.contains("one-time prekey"));
    // Dispatch sealed the sheet to the identity key (what it does when a device runs out of
    // prekeys; tests/api.rs covers when): the console says so on the job, the list and the device.
    let db = day.server.database();
    db.sql(&format!(
        "UPDATE deliveries SET sealed_to = 'identity', via = 'identity' WHERE job_id = {}",
        quote(&day.job.to_string())
    ));
    db.sql(&format!("UPDATE devices SET audit_broken_at = 4 WHERE device_id = {}", quote(&day.device.to_string())));
    let page = browser.get(&format!("/console/jobs/{}", day.job), Some(&session)).body;
    assert!(page.contains("id=\"identity-flag\""));
    assert!(page.contains("IDENTITY KEY (no forward secrecy)"));
    assert!(page.contains("BROKEN at seq 4"));
    let list = browser.get("/console/jobs", Some(&session)).body;
    assert!(list.contains("identity key</span>"));
    let devices = browser.get("/console/devices", Some(&session)).body;
    assert!(devices.contains(&day.device.to_string()) && devices.contains("seq 4</span>"));
}

/// Login attempts count against their source address before the token is compared: past 10 at
/// once, even the right token gets 429 and no session, so opening many connections buys no
/// guesses. A form body past 4 KiB is refused unread (413) and opens nothing.
#[test]
fn login_attempts_are_limited_per_source_and_forms_are_small() {
    let day = worked_day();
    let browser = Browser::new(&day.server);
    for _ in 0..10 {
        assert_eq!(browser.login(day.op.token()).status, 303);
    }
    let refused = browser.login(day.op.token());
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert!(refused.cookie("jobseal_console").is_none());
    assert!(refused.header("retry-after").is_some());

    let other = Browser::new(&day.server);
    let form_token = other.login_form_token();
    let padding = "x".repeat(5000);
    let answer = other.post_login(&form_token, &[("token", day.op.token()), ("padding", &padding)]);
    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(answer.cookie("jobseal_console").is_none());
}

//! Everything the `jobseal` command prints on stdout, for people and for scripts.
//!
//! Rendering lives apart from the commands so that one place decides what may reach the terminal:
//! customer values are written only by [`reveal`], and every string that comes from a job sheet
//! or from the file system is written with control characters escaped, so that a hostile sheet or
//! file name cannot rewrite the technician's terminal. Times are RFC 3339 in UTC throughout.
//! The one secret printed is a dispatch secret key, by [`keygen`] without `--out`, as asked.

use crate::scan::ScanReport;
use chrono::{DateTime, SecondsFormat, Utc};
use jobseal::{
    AuditEvent, AuditVerification, DeviceBundle, FieldAccess, JobInfo, PublicKey, RecipientKeyId, Reveal, ShredOutcome,
};
use serde::Serialize;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

/// Stdout that treats a closed pipe (`jobseal scan ... | head -1`) as the reader having seen
/// enough: further output is dropped instead of failing, so the exit code still says what the
/// command found.
pub struct Out<W: Write> {
    inner: W,
    closed: bool,
}

impl<W: Write> Out<W> {
    /// Wraps a writer, normally the locked stdout.
    pub fn new(inner: W) -> Self {
        Out { inner, closed: false }
    }
}

impl<W: Write> Write for Out<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match self.inner.write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed {
            return Ok(());
        }
        match self.inner.flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            other => other,
        }
    }
}

/// A time as RFC 3339 in UTC, with fractional seconds only when there are some.
pub fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn opt_ts(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "-".to_owned(), ts)
}

/// `s` with control characters escaped, for text that came from a sheet or the file system.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_clean(&mut out, s);
    out
}

fn push_clean(out: &mut String, s: &str) {
    for c in s.chars() {
        if c.is_control() {
            let _ = write!(out, "{}", c.escape_default());
        } else {
            out.push(c);
        }
    }
}

/// Writes `s` with control characters escaped, straight to `out`, so that a customer value is
/// not copied into yet another heap buffer that nobody zeroizes.
fn write_clean(out: &mut impl Write, s: &str) -> io::Result<()> {
    let mut rest = s;
    while let Some(i) = rest.find(char::is_control) {
        out.write_all(&rest.as_bytes()[..i])?;
        let c = rest[i..].chars().next().unwrap_or('\0');
        write!(out, "{}", c.escape_default())?;
        rest = &rest[i + c.len_utf8()..];
    }
    out.write_all(rest.as_bytes())
}

/// How many characters [`write_clean`] writes for `s`, counted without copying it.
fn clean_width(s: &str) -> usize {
    s.chars().map(|c| if c.is_control() { c.escape_default().count() } else { 1 }).sum()
}

/// Writes one compact JSON document and a newline.
pub fn json<T: Serialize + ?Sized>(out: &mut impl Write, doc: &T) -> io::Result<()> {
    serde_json::to_writer(&mut *out, doc).map_err(io::Error::other)?;
    writeln!(out)
}

/// Writes rows under headers in columns aligned on their widest cell, without trailing blanks.
fn table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut dyn Write, cells: &mut dyn Iterator<Item = &str>| -> io::Result<()> {
        let cells: Vec<&str> = cells.collect();
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            text.push_str(cell);
            if i + 1 < cells.len() {
                let pad = widths[i].saturating_sub(cell.chars().count()) + 2;
                text.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", text.trim_end())
    };
    line(out, &mut headers.iter().copied())?;
    for row in rows {
        line(out, &mut row.iter().map(String::as_str))?;
    }
    Ok(())
}

/// Writes `label  value` lines with the labels aligned.
fn pairs(out: &mut impl Write, rows: &[(&str, String)]) -> io::Result<()> {
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (k, v) in rows {
        writeln!(out, "{k:<width$}  {v}")?;
    }
    Ok(())
}

/// What `init` reports.
#[derive(Serialize)]
pub struct InitReport {
    /// The vault's directory.
    pub data_dir: String,
    /// Where the software keystore keeps its key-encryption keys.
    pub keystore_dir: String,
    /// Always "software": the CLI has no hardware keystore.
    pub keystore: &'static str,
    /// The current key epoch.
    pub epoch: u64,
}

/// Prints what `init` did.
pub fn init(out: &mut impl Write, r: &InitReport) -> io::Result<()> {
    pairs(
        out,
        &[
            ("vault", clean(&r.data_dir)),
            ("key epoch", r.epoch.to_string()),
            ("keystore", format!("{} (software, weaker than a hardware keystore)", clean(&r.keystore_dir))),
        ],
    )
}

fn window(job: &JobInfo) -> String {
    format!("{} .. {}", ts(job.window.start), ts(job.window.end))
}

/// One line about a job: what `job add` and `job advance` print.
pub fn job_summary(out: &mut impl Write, job: &JobInfo) -> io::Result<()> {
    writeln!(
        out,
        "job {}  version {}  {}  {}  {} customer field(s) sealed",
        job.job_id,
        job.version,
        clean(&job.work_order),
        job.state,
        job.fields.len()
    )
}

/// The job table of `job list`.
pub fn job_table(out: &mut impl Write, jobs: &[JobInfo]) -> io::Result<()> {
    if jobs.is_empty() {
        return writeln!(out, "no jobs");
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.job_id.to_string(),
                clean(&j.work_order),
                j.state.to_string(),
                window(j),
                j.site_area.as_deref().map_or_else(|| "-".to_owned(), clean),
                opt_ts(j.shredded_at),
            ]
        })
        .collect();
    table(out, &["ID", "WORK ORDER", "STATE", "SCHEDULED", "SITE AREA", "SHREDDED AT"], &rows)
}

/// Everything known about a job except its customer values: what `job show` prints.
pub fn job_detail(out: &mut impl Write, job: &JobInfo) -> io::Result<()> {
    let mut rows = vec![
        ("job", job.job_id.to_string()),
        ("version", job.version.to_string()),
        ("work order", clean(&job.work_order)),
        ("state", job.state.to_string()),
        ("scheduled", window(job)),
        ("access opens", ts(job.access.opens_at)),
        ("access closes", ts(job.access.closes_at)),
        ("hard expiry", ts(job.access.hard_expiry)),
        ("site area", job.site_area.as_deref().map_or_else(|| "-".to_owned(), clean)),
        ("received", ts(job.received_at)),
        ("delivered", delivery(job.delivered_via)),
        ("updated", ts(job.updated_at)),
        ("shredded", opt_ts(job.shredded_at)),
    ];
    match &job.work {
        Some(w) => rows.push(("work", clean(&w.summary))),
        None => rows.push(("work", "- (shredded)".to_owned())),
    }
    pairs(out, &rows)?;
    if let Some(w) = &job.work {
        for t in &w.tasks {
            writeln!(out, "  task       {}", clean(t))?;
        }
        for e in &w.equipment {
            writeln!(out, "  equipment  {}", clean(e))?;
        }
    }
    if job.fields.is_empty() {
        writeln!(out, "customer fields: none held")?;
    } else {
        writeln!(out, "customer fields (values hidden; use `job reveal`):")?;
        let rows: Vec<Vec<String>> = job
            .fields
            .iter()
            .map(|f| {
                let states: Vec<&str> = f.reveal_in.iter().map(|s| s.as_str()).collect();
                vec![format!("  {}", clean(&f.name)), f.kind.to_string(), states.join(", ")]
            })
            .collect();
        table(out, &["  NAME", "KIND", "SHOWN WHILE"], &rows)?;
    }
    match &job.report {
        Some(r) => {
            writeln!(out, "report:")?;
            for line in r.lines() {
                writeln!(out, "  {}", clean(line))?;
            }
            Ok(())
        }
        None => writeln!(out, "report: -"),
    }
}

/// How a job's sheet reached the vault, for people.
pub fn delivery(via: Option<RecipientKeyId>) -> String {
    match via {
        Some(RecipientKeyId::Prekey(id)) => format!("sealed to prekey {id}"),
        Some(RecipientKeyId::Identity) => {
            "sealed to the identity key (fallback: no prekey was left; no forward secrecy for this sheet)".to_owned()
        }
        None => "in plaintext (job add)".to_owned(),
    }
}

/// The line under the job summary of `job receive`.
pub fn received(out: &mut impl Write, via: Option<RecipientKeyId>) -> io::Result<()> {
    match via {
        Some(RecipientKeyId::Prekey(id)) => {
            writeln!(out, "delivered: sealed to prekey {id}, now deleted: this envelope cannot be opened again")
        }
        other => writeln!(out, "delivered: {}", delivery(other)),
    }
}

/// What `device init`, `device bundle --out` and `device top-up` report: the device and its
/// stock of prekeys. Public keys only.
#[derive(Serialize)]
pub struct DeviceReport {
    /// The device's id.
    pub device_id: uuid::Uuid,
    /// Its identity public key.
    pub identity_key: PublicKey,
    /// How many unused prekeys it holds (and the bundle lists).
    pub unused_prekeys: usize,
    /// The prekeys just made, on `device top-up`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added: Option<u32>,
    /// The pinned dispatch key, on `device init`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dispatch_key: Option<PublicKey>,
    /// Where the bundle was written, on `device bundle --out`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle_file: Option<String>,
}

impl DeviceReport {
    /// The report for a bundle, with the optional parts left out.
    pub fn new(b: &DeviceBundle) -> Self {
        DeviceReport {
            device_id: b.device_id,
            identity_key: b.identity_key,
            unused_prekeys: b.prekeys.len(),
            added: None,
            dispatch_key: None,
            bundle_file: None,
        }
    }
}

/// Prints a [`DeviceReport`].
pub fn device(out: &mut impl Write, r: &DeviceReport) -> io::Result<()> {
    let mut rows = vec![("device", r.device_id.to_string()), ("identity key", r.identity_key.to_string())];
    if let Some(k) = r.dispatch_key {
        rows.push(("dispatch key", format!("{k} (pinned)")));
    }
    if let Some(n) = r.added {
        rows.push(("prekeys added", n.to_string()));
    }
    rows.push(("unused prekeys", r.unused_prekeys.to_string()));
    if let Some(f) = &r.bundle_file {
        rows.push(("bundle", format!("written to {}", clean(f))));
    }
    pairs(out, &rows)
}

#[derive(Serialize)]
struct KeygenDoc<'a> {
    public_key: PublicKey,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_file: Option<String>,
}

/// Prints a new dispatch key pair: the public key, and the secret key only when it was not
/// written to a file. The secret is written straight to `out`, never copied into a new string.
pub fn keygen(
    out: &mut impl Write,
    public: &PublicKey,
    secret: Option<&str>,
    file: Option<&Path>,
    as_json: bool,
) -> io::Result<()> {
    if as_json {
        let key_file = file.map(|f| f.to_string_lossy().into_owned());
        return json(out, &KeygenDoc { public_key: *public, secret_key: secret, key_file });
    }
    writeln!(out, "public key  {public}")?;
    if let Some(secret) = secret {
        out.write_all(b"secret key  ")?;
        out.write_all(secret.as_bytes())?;
        writeln!(out)?;
    }
    Ok(())
}

/// What `dispatch seal` made.
#[derive(Serialize)]
pub struct SealReport {
    /// The device it is addressed to.
    pub device_id: uuid::Uuid,
    /// The job.
    pub job_id: uuid::Uuid,
    /// The sheet version bound into it.
    pub sheet_version: u64,
    /// The device key it is sealed to.
    pub sealed_to: RecipientKeyId,
    /// The envelope's length.
    pub bytes: usize,
    /// The file it was written to; `None` for stdout.
    pub out: Option<String>,
}

/// The stderr line of `dispatch seal`.
pub fn sealed(r: &SealReport) -> String {
    let to = match r.sealed_to {
        RecipientKeyId::Prekey(id) => format!("prekey {id} (do not seal to it again: it opens one envelope only)"),
        RecipientKeyId::Identity => "the identity key (fallback: no forward secrecy for this sheet)".to_owned(),
    };
    let dest = r.out.as_deref().map_or_else(|| "stdout".to_owned(), clean);
    format!(
        "sealed job {} version {} for device {} to {to}: {} bytes to {dest}",
        r.job_id, r.sheet_version, r.device_id, r.bytes
    )
}

/// One field of a reveal as JSON: `visible` says which of the optional members are present.
#[derive(Serialize)]
struct RevealFieldDoc<'a> {
    name: &'a str,
    kind: jobseal::FieldKind,
    visible: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    until: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    denial: Option<&'a jobseal::Denial>,
}

#[derive(Serialize)]
struct RevealDoc<'a> {
    job_id: uuid::Uuid,
    state: jobseal::JobState,
    at: DateTime<Utc>,
    fields: Vec<RevealFieldDoc<'a>>,
}

/// Prints a reveal: the only output of this program that carries customer values. The values are
/// borrowed, never copied into new strings, on their way to stdout.
pub fn reveal(out: &mut impl Write, r: &Reveal, as_json: bool) -> io::Result<()> {
    if as_json {
        let fields = r
            .fields
            .iter()
            .map(|f| match &f.access {
                FieldAccess::Visible { value, until } => RevealFieldDoc {
                    name: &f.name,
                    kind: f.kind,
                    visible: true,
                    value: Some(value.expose()),
                    until: Some(*until),
                    denial: None,
                },
                FieldAccess::Hidden(d) => RevealFieldDoc {
                    name: &f.name,
                    kind: f.kind,
                    visible: false,
                    value: None,
                    until: None,
                    denial: Some(d),
                },
            })
            .collect();
        return json(out, &RevealDoc { job_id: r.job_id, state: r.state, at: r.at, fields });
    }
    writeln!(out, "job {}  state {}  at {}", r.job_id, r.state, ts(r.at))?;
    let name_w = r.fields.iter().map(|f| f.name.chars().count()).max().unwrap_or(0);
    let kind_w = r.fields.iter().map(|f| f.kind.as_str().len()).max().unwrap_or(0);
    let value_w = r
        .fields
        .iter()
        .filter_map(|f| match &f.access {
            FieldAccess::Visible { value, .. } => Some(clean_width(value.expose())),
            FieldAccess::Hidden(_) => None,
        })
        .max()
        .unwrap_or(0);
    for f in &r.fields {
        write!(out, "  {:<name_w$}  {:<kind_w$}  ", clean(&f.name), f.kind.as_str())?;
        match &f.access {
            FieldAccess::Visible { value, until } => {
                write_clean(out, value.expose())?;
                let pad = value_w - clean_width(value.expose());
                writeln!(out, "{:pad$}  visible until {}", "", ts(*until))?;
            }
            FieldAccess::Hidden(d) => writeln!(out, "hidden: {d}")?,
        }
    }
    Ok(())
}

/// Prints what a close, cancel or expiry destroyed.
pub fn shred(out: &mut impl Write, o: &ShredOutcome) -> io::Result<()> {
    writeln!(
        out,
        "job {} {} at {}: {} customer field(s) destroyed (sheet version {}), key epoch now {}",
        o.job_id,
        o.state,
        ts(o.shredded_at),
        o.fields_destroyed,
        o.version,
        o.epoch
    )
}

/// Prints what a sweep shredded.
pub fn sweep(out: &mut impl Write, outcomes: &[ShredOutcome]) -> io::Result<()> {
    if outcomes.is_empty() {
        return writeln!(out, "no job was due for shredding");
    }
    for o in outcomes {
        shred(out, o)?;
    }
    writeln!(out, "shredded {} job(s)", outcomes.len())
}

/// The audit event table.
pub fn audit_events(out: &mut impl Write, events: &[AuditEvent]) -> io::Result<()> {
    if events.is_empty() {
        return writeln!(out, "no audit events");
    }
    let dash = |s: Option<String>| s.unwrap_or_else(|| "-".to_owned());
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.seq.to_string(),
                ts(e.at),
                serde_json::to_value(e.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default(),
                dash(e.job_id.map(|j| j.to_string())),
                dash(e.field.as_deref().map(clean)),
                dash(e.state.map(|s| s.to_string())),
                dash(e.detail.as_deref().map(clean)),
            ]
        })
        .collect();
    table(out, &["SEQ", "AT", "KIND", "JOB", "FIELD", "STATE", "DETAIL"], &rows)
}

/// The outcome of `audit --verify`.
pub fn audit_verification(out: &mut impl Write, v: &AuditVerification) -> io::Result<()> {
    if v.valid {
        writeln!(out, "audit chain valid: {} event(s), head {}", v.events, v.head)
    } else {
        writeln!(
            out,
            "audit chain INVALID at event {}: {} ({} event(s) read, head {})",
            v.broken_at.unwrap_or(0),
            v.problem.as_deref().map_or_else(String::new, clean),
            v.events,
            v.head
        )
    }
}

/// A path for display, escaped like any other untrusted text.
pub fn path(p: &Path) -> String {
    clean(&p.to_string_lossy())
}

/// The findings and summary of `scan`. Needles are named by number only: they are customer data.
pub fn scan(out: &mut impl Write, r: &ScanReport) -> io::Result<()> {
    for f in &r.findings {
        writeln!(out, "{}: needle #{} at byte {}", path(&f.path), f.needle, f.offset)?;
    }
    if r.skipped > 0 {
        writeln!(out, "skipped {} entries that are not regular files (symlinks are not followed)", r.skipped)?;
    }
    if !r.errors.is_empty() {
        writeln!(out, "could not read {} entries (see stderr)", r.errors.len())?;
    }
    writeln!(out, "scanned {} files, {} bytes: {} findings", r.files, r.bytes, r.findings.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(clean("a\u{1b}[2Jb\n"), "a\\u{1b}[2Jb\\n");
        let mut buf = Vec::new();
        write_clean(&mut buf, "x\ty\u{7}é").unwrap();
        assert_eq!(String::from_utf8(buf).unwrap(), "x\\ty\\u{7}é");
    }

    #[test]
    fn tables_align_and_leave_no_trailing_blanks() {
        let mut buf = Vec::new();
        table(&mut buf, &["A", "BB"], &[vec!["long".into(), "x".into()], vec!["s".into(), "".into()]]).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "A     BB\nlong  x\ns\n");
    }
}

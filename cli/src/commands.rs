//! What each `jobseal` command does, between the parsed command line and the printed output.
//!
//! Commands are thin: they open the vault with the clock the user asked for, make one or two
//! core calls, and hand the result to [`crate::output`]. The vault enforces every guarantee
//! (windows, trusted time that never goes back, shredding); nothing here second-guesses it. The
//! one piece of policy kept here is hygiene around plaintext the CLI itself handles: the sheet
//! file's bytes are zeroized after parsing.

use crate::error::{code, CliError};
use crate::output;
use crate::scan::{self, Needle};
use chrono::{DateTime, Utc};
use jobseal::{Clock, FieldAccess, FileKeyStore, JobSheet, JobState, ManualClock, SystemClock, Vault};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Largest sheet file accepted. A valid sheet is far smaller (32 fields of at most 4 KiB); the
/// cap keeps a wrong file from being read whole into memory.
pub const MAX_SHEET_BYTES: usize = 1024 * 1024;

/// The options every command shares.
pub struct Context {
    /// The vault directory, from `--data-dir` or `JOBSEAL_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// The wall time from `--now`, if given.
    pub now: Option<DateTime<Utc>>,
    /// Whether to print JSON.
    pub json: bool,
}

impl Context {
    fn clock(&self) -> Arc<dyn Clock> {
        match self.now {
            Some(t) => Arc::new(ManualClock::new(t)),
            None => Arc::new(SystemClock),
        }
    }

    fn data_dir(&self) -> Result<&Path, CliError> {
        self.data_dir
            .as_deref()
            .ok_or_else(|| CliError::Usage("this command needs --data-dir DIR (or JOBSEAL_DATA_DIR)".into()))
    }

    /// Opens the vault. Only `init` may create one: any other command on a directory without a
    /// vault is a mistyped path, and silently making a fresh vault there would hide it.
    fn open(&self, create: bool) -> Result<Vault, CliError> {
        let dir = self.data_dir()?;
        if !create && !dir.join(jobseal::store::DB_FILE).is_file() {
            return Err(CliError::Usage(format!("no vault in {}; run `jobseal init` first", output::path(dir))));
        }
        let keystore = FileKeyStore::open(dir.join(jobseal::KEYSTORE_DIR))?;
        Ok(Vault::open(dir, Arc::new(keystore), self.clock())?)
    }
}

/// Parses an RFC 3339 time for `--now`.
pub fn parse_now(s: &str) -> Result<DateTime<Utc>, CliError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| CliError::Input("--now must be an RFC 3339 time, e.g. 2030-01-10T09:00:00Z".into()))
}

/// Parses a job id. The bad value is not repeated: whatever was typed there is not ours to echo.
pub fn parse_job_id(s: &str) -> Result<Uuid, CliError> {
    Uuid::parse_str(s.trim()).map_err(|_| CliError::Input("job id must be a UUID".into()))
}

fn parse_state(s: &str) -> Result<JobState, CliError> {
    s.parse::<JobState>().map_err(|e| {
        let names: Vec<&str> = JobState::ALL.iter().map(|s| s.as_str()).collect();
        CliError::Input(format!("{e}; states are {}", names.join(", ")))
    })
}

/// `init`.
pub fn init(ctx: &Context, out: &mut impl Write) -> Result<u8, CliError> {
    let vault = ctx.open(true)?;
    let dir = vault.dir();
    let report = output::InitReport {
        data_dir: dir.to_string_lossy().into_owned(),
        keystore_dir: dir.join(jobseal::KEYSTORE_DIR).to_string_lossy().into_owned(),
        keystore: "software",
        epoch: vault.epoch(),
    };
    if ctx.json {
        output::json(out, &report)?;
    } else {
        output::init(out, &report)?;
    }
    Ok(code::OK)
}

/// Reads a plaintext sheet from `path` (`-` for stdin) into a buffer that is zeroized on drop.
/// The buffer is sized up front so that growing it never leaves a stray copy on the heap.
fn read_sheet(path: &Path) -> Result<JobSheet, CliError> {
    let shown = || output::path(path);
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_SHEET_BYTES + 1));
    let limit = (MAX_SHEET_BYTES + 1) as u64;
    let read = if path == Path::new("-") {
        io::stdin().lock().take(limit).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(limit).read_to_end(&mut buf))
    };
    read.map_err(|e| CliError::Input(format!("cannot read sheet {}: {e}", shown())))?;
    if buf.len() > MAX_SHEET_BYTES {
        return Err(CliError::Input(format!("sheet {} is larger than {MAX_SHEET_BYTES} bytes", shown())));
    }
    Ok(JobSheet::from_json(&buf)?)
}

/// `job add FILE`.
pub fn job_add(ctx: &Context, out: &mut impl Write, file: &Path) -> Result<u8, CliError> {
    // Parse before opening the vault, so a bad file never touches it (nor its lock).
    let sheet = read_sheet(file)?;
    let vault = ctx.open(false)?;
    let job = vault.ingest(&sheet)?;
    drop(sheet);
    if ctx.json {
        output::json(out, &job)?;
    } else {
        output::job_summary(out, &job)?;
        if file != Path::new("-") {
            let _ = writeln!(
                io::stderr(),
                "jobseal: note: {} still holds the customer data in plaintext; delete it",
                output::path(file)
            );
        }
    }
    Ok(code::OK)
}

/// `job list`.
pub fn job_list(ctx: &Context, out: &mut impl Write) -> Result<u8, CliError> {
    let jobs = ctx.open(false)?.list_jobs()?;
    if ctx.json {
        output::json(out, &serde_json::json!({ "jobs": jobs }))?;
    } else {
        output::job_table(out, &jobs)?;
    }
    Ok(code::OK)
}

/// `job show ID`.
pub fn job_show(ctx: &Context, out: &mut impl Write, id: &str) -> Result<u8, CliError> {
    let id = parse_job_id(id)?;
    let job = ctx.open(false)?.job(id)?;
    if ctx.json {
        output::json(out, &job)?;
    } else {
        output::job_detail(out, &job)?;
    }
    Ok(code::OK)
}

/// `job advance ID STATE`.
pub fn job_advance(ctx: &Context, out: &mut impl Write, id: &str, state: &str) -> Result<u8, CliError> {
    let id = parse_job_id(id)?;
    let to = parse_state(state)?;
    let job = ctx.open(false)?.advance(id, to)?;
    if ctx.json {
        output::json(out, &job)?;
    } else {
        output::job_summary(out, &job)?;
    }
    Ok(code::OK)
}

/// `job reveal ID`. Exits with [`code::DENIED`] when not one field could be shown, so that a
/// script can tell "nothing to see now" from a reveal that showed something; the output lists
/// every field with its reason either way.
pub fn job_reveal(ctx: &Context, out: &mut impl Write, id: &str) -> Result<u8, CliError> {
    let id = parse_job_id(id)?;
    let reveal = ctx.open(false)?.reveal(id)?;
    output::reveal(out, &reveal, ctx.json)?;
    let shown = reveal.fields.iter().any(|f| matches!(f.access, FieldAccess::Visible { .. }));
    if shown {
        Ok(code::OK)
    } else {
        let _ = writeln!(io::stderr(), "jobseal: access denied: no field of job {id} may be shown now");
        Ok(code::DENIED)
    }
}

/// `job close ID --report TEXT`.
pub fn job_close(ctx: &Context, out: &mut impl Write, id: &str, report: &str) -> Result<u8, CliError> {
    let id = parse_job_id(id)?;
    let outcome = ctx.open(false)?.close(id, report)?;
    print_shred(ctx, out, &outcome)
}

/// `job cancel ID`.
pub fn job_cancel(ctx: &Context, out: &mut impl Write, id: &str) -> Result<u8, CliError> {
    let id = parse_job_id(id)?;
    let outcome = ctx.open(false)?.cancel(id)?;
    print_shred(ctx, out, &outcome)
}

fn print_shred(ctx: &Context, out: &mut impl Write, outcome: &jobseal::ShredOutcome) -> Result<u8, CliError> {
    if ctx.json {
        output::json(out, outcome)?;
    } else {
        output::shred(out, outcome)?;
    }
    Ok(code::OK)
}

/// `sweep`.
///
/// Opening the vault already shreds every job past its hard expiry (the core does so on every
/// call), and [`Vault::open`] does not hand back what it shredded; so what is printed here is
/// what [`Vault::sweep`] itself found, usually nothing. `job list` shows the expired jobs.
pub fn sweep(ctx: &Context, out: &mut impl Write) -> Result<u8, CliError> {
    let outcomes = ctx.open(false)?.sweep()?;
    if ctx.json {
        output::json(out, &serde_json::json!({ "shredded": outcomes }))?;
    } else {
        output::sweep(out, &outcomes)?;
    }
    Ok(code::OK)
}

/// `audit [--verify] [--job ID]`.
pub fn audit(ctx: &Context, out: &mut impl Write, verify: bool, job: Option<&str>) -> Result<u8, CliError> {
    let job = job.map(parse_job_id).transpose()?;
    let vault = ctx.open(false)?;
    if verify {
        let v = vault.verify_audit()?;
        if ctx.json {
            output::json(out, &v)?;
        } else {
            output::audit_verification(out, &v)?;
        }
        if !v.valid {
            let _ = writeln!(io::stderr(), "jobseal: the audit chain is broken");
            return Ok(code::AUDIT_INVALID);
        }
        return Ok(code::OK);
    }
    let events = vault.audit_log(job)?;
    if ctx.json {
        output::json(out, &serde_json::json!({ "events": events }))?;
    } else {
        output::audit_events(out, &events)?;
    }
    Ok(code::OK)
}

/// The needles of a `scan`, numbered from 1: positional ones, then `--hex`, then the lines of
/// `--needles-file`.
pub struct ScanArgs<'a> {
    /// Tree or file to scan.
    pub path: &'a Path,
    /// Needles given as text.
    pub text: &'a [String],
    /// Needles given as hex.
    pub hex: &'a [String],
    /// A file of needles, one per line, kept off the command line (and out of `ps` and shell
    /// history).
    pub needles_file: Option<&'a Path>,
}

/// Reads a needles file into a buffer zeroized on drop, sized from the file's length so that
/// growing it does not scatter copies of the needles over the heap.
fn needles_from_file(path: &Path) -> Result<Zeroizing<String>, CliError> {
    let mut text = Zeroizing::new(String::new());
    let read = if path == Path::new("-") {
        io::stdin().lock().read_to_string(&mut text)
    } else {
        std::fs::File::open(path).and_then(|mut f| {
            let len = f.metadata().map_or(0, |m| m.len());
            text.reserve(usize::try_from(len).unwrap_or(0).saturating_add(1));
            f.read_to_string(&mut text)
        })
    };
    read.map_err(|e| CliError::Input(format!("cannot read needles from {}: {e}", output::path(path))))?;
    Ok(text)
}

/// `scan PATH NEEDLE... [--hex HEX]... [--needles-file FILE]`. Does not open a vault.
///
/// Exit codes: 1 when anything was found (a definite leak outranks a read error), else 2 when an
/// entry could not be read (absence cannot be claimed), else 0.
pub fn scan(ctx: &Context, out: &mut impl Write, args: &ScanArgs<'_>) -> Result<u8, CliError> {
    let mut raw: Vec<Zeroizing<Vec<u8>>> = args.text.iter().map(|s| Zeroizing::new(s.as_bytes().to_vec())).collect();
    for h in args.hex {
        let number = raw.len() + 1;
        raw.push(Zeroizing::new(scan::parse_hex(h.trim(), number)?));
    }
    if let Some(file) = args.needles_file {
        let text = needles_from_file(file)?;
        for line in text.lines().filter(|l| !l.is_empty()) {
            raw.push(Zeroizing::new(line.as_bytes().to_vec()));
        }
    }
    if raw.is_empty() {
        return Err(CliError::Usage("scan needs at least one needle".into()));
    }
    let needles: Vec<Needle> =
        raw.into_iter().enumerate().map(|(i, n)| Needle::new(n, i + 1)).collect::<Result<_, _>>()?;
    let report = scan::scan_path(args.path, &needles)?;
    drop(needles);
    for e in &report.errors {
        let _ = writeln!(io::stderr(), "jobseal: cannot read {}: {}", output::path(&e.path), e.message);
    }
    if ctx.json {
        output::json(out, &report)?;
    } else {
        output::scan(out, &report)?;
    }
    Ok(if !report.findings.is_empty() {
        code::FOUND
    } else if !report.errors.is_empty() {
        code::USAGE
    } else {
        code::OK
    })
}

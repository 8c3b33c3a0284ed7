//! What each `jobseal` command does, between the parsed command line and the printed output.
//!
//! Commands are thin: they open the vault with the clock the user asked for, make one or two
//! core calls, and hand the result to [`crate::output`]. The vault enforces every guarantee
//! (windows, trusted time that never goes back, shredding); nothing here second-guesses it. The
//! one piece of policy kept here is hygiene around plaintext the CLI itself handles: the sheet
//! file's bytes are zeroized after parsing, and so are the bytes of a dispatch secret key.
//!
//! The `dispatch` commands stand in for a dispatch backend (keygen, seal) and open no vault.

use crate::error::{code, CliError};
use crate::output;
use crate::scan::{self, Needle};
use chrono::{DateTime, Utc};
use jobseal::envelope::MAX_ENVELOPE_LEN;
use jobseal::{
    Clock, DeviceBundle, FieldAccess, FileKeyStore, JobSheet, JobState, ManualClock, PublicKey, RecipientKeyId,
    SecretKey, SystemClock, Vault,
};
use serde::Deserialize;
use std::io::{self, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;
use zeroize::Zeroizing;

/// Largest sheet file accepted. A valid sheet is far smaller (32 fields of at most 4 KiB); the
/// cap keeps a wrong file from being read whole into memory.
pub const MAX_SHEET_BYTES: usize = 1024 * 1024;
/// Largest device bundle accepted: the most prekeys a device holds (2000) take about 200 KiB.
pub const MAX_BUNDLE_BYTES: usize = 1024 * 1024;
/// Largest dispatch key file accepted; a real one is about 150 bytes.
const MAX_KEY_FILE_BYTES: usize = 4096;

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
    pub(crate) fn open(&self, create: bool) -> Result<Vault, CliError> {
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

/// Reads at most `limit + 1` bytes of `path` (`-` for stdin) into a buffer that is zeroized on
/// drop, so that a caller can tell a file over the limit. The buffer is sized up front so that
/// growing it never leaves a stray copy on the heap.
fn read_input(path: &Path, limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(limit + 1));
    let take = (limit + 1) as u64;
    let read = if path == Path::new("-") {
        io::stdin().lock().take(take).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(take).read_to_end(&mut buf))
    };
    read.map_err(|e| CliError::Input(format!("cannot read {what} {}: {e}", output::path(path))))?;
    Ok(buf)
}

/// [`read_input`], refusing a file over `limit`.
fn read_capped(path: &Path, limit: usize, what: &str) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let buf = read_input(path, limit, what)?;
    if buf.len() > limit {
        return Err(CliError::Input(format!("{what} {} is larger than {limit} bytes", output::path(path))));
    }
    Ok(buf)
}

/// Reads a plaintext sheet from `path` (`-` for stdin), through a buffer zeroized on drop.
fn read_sheet(path: &Path) -> Result<JobSheet, CliError> {
    let buf = read_capped(path, MAX_SHEET_BYTES, "sheet")?;
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

/// `job receive FILE`.
pub fn job_receive(ctx: &Context, out: &mut impl Write, file: &Path) -> Result<u8, CliError> {
    // Read before opening the vault, so an unreadable file never touches it. An envelope over
    // the protocol's limit is handed on as read (one byte over), for the core to refuse.
    let envelope = read_input(file, MAX_ENVELOPE_LEN, "envelope")?;
    let vault = ctx.open(false)?;
    let job = vault.receive(&envelope)?;
    if ctx.json {
        output::json(out, &job)?;
    } else {
        output::job_summary(out, &job)?;
        output::received(out, job.delivered_via)?;
    }
    if job.delivered_via == Some(RecipientKeyId::Identity) {
        let _ = writeln!(
            io::stderr(),
            "jobseal: note: dispatch had no prekey left for this device; run `jobseal device top-up N` and send \
             dispatch the new bundle"
        );
    }
    Ok(code::OK)
}

/// Parses an X25519 public key given as hex; weak, low-order and malformed keys are input errors.
pub(crate) fn parse_public_key(s: &str, what: &str) -> Result<PublicKey, CliError> {
    s.trim().parse::<PublicKey>().map_err(|e| CliError::Input(format!("{what} is not a usable X25519 public key: {e}")))
}

/// `device init --dispatch-key PUB [--prekeys N]`.
pub fn device_init(ctx: &Context, out: &mut impl Write, dispatch_key: &str, prekeys: u32) -> Result<u8, CliError> {
    // Check the key before the vault is created or opened, so a bad key leaves no trace.
    let dispatch_key = parse_public_key(dispatch_key, "--dispatch-key")?;
    let bundle = ctx.open(true)?.enrol(dispatch_key, prekeys)?;
    if ctx.json {
        output::json(out, &bundle)?;
    } else {
        let report = output::DeviceReport { dispatch_key: Some(dispatch_key), ..output::DeviceReport::new(&bundle) };
        output::device(out, &report)?;
        let _ = writeln!(io::stderr(), "jobseal: note: send dispatch this device's bundle: `jobseal device bundle`");
    }
    Ok(code::OK)
}

/// `device bundle [--out FILE]`. The bundle is printed pretty, as a file for dispatch, with or
/// without `--json`.
pub fn device_bundle(ctx: &Context, out: &mut impl Write, file: Option<&Path>) -> Result<u8, CliError> {
    let bundle = ctx.open(false)?.device_bundle()?;
    let text = serde_json::to_string_pretty(&bundle).map_err(io::Error::other)?;
    let Some(file) = file else {
        writeln!(out, "{text}")?;
        return Ok(code::OK);
    };
    std::fs::write(file, format!("{text}\n"))
        .map_err(|e| CliError::Input(format!("cannot write the bundle to {}: {e}", output::path(file))))?;
    let report = output::DeviceReport {
        bundle_file: Some(file.to_string_lossy().into_owned()),
        ..output::DeviceReport::new(&bundle)
    };
    if ctx.json {
        output::json(out, &report)?;
    } else {
        output::device(out, &report)?;
    }
    Ok(code::OK)
}

/// `device top-up N`.
pub fn device_top_up(ctx: &Context, out: &mut impl Write, count: u32) -> Result<u8, CliError> {
    let bundle = ctx.open(false)?.add_prekeys(count)?;
    let report = output::DeviceReport { added: Some(count), ..output::DeviceReport::new(&bundle) };
    if ctx.json {
        output::json(out, &report)?;
    } else {
        output::device(out, &report)?;
        let _ = writeln!(io::stderr(), "jobseal: note: send dispatch the new bundle: `jobseal device bundle`");
    }
    Ok(code::OK)
}

/// `dispatch keygen [--out FILE]`. Opens no vault.
pub fn dispatch_keygen(ctx: &Context, out: &mut impl Write, file: Option<&Path>) -> Result<u8, CliError> {
    let (secret, public) = jobseal::envelope::generate_keypair().map_err(jobseal::Error::from)?;
    let secret_hex = Zeroizing::new(jobseal::hex::encode(secret.to_bytes().as_ref()));
    drop(secret);
    match file {
        Some(file) => {
            write_key_file(file, &secret_hex, &public)?;
            output::keygen(out, &public, None, Some(file), ctx.json)?;
            let _ = writeln!(
                io::stderr(),
                "jobseal: note: the secret key is in {} (mode 0600); seal with `--key-file`",
                output::path(file)
            );
        }
        None => {
            output::keygen(out, &public, Some(&secret_hex), None, ctx.json)?;
            let _ = writeln!(
                io::stderr(),
                "jobseal: warning: the secret key is shown on stdout; whoever sees it can seal sheets as dispatch. \
                 Use --out FILE to keep it off the screen"
            );
        }
    }
    Ok(code::OK)
}

/// Writes `{"secret_key", "public_key"}` to a new file, readable by its owner only. An existing
/// file is never overwritten (it may hold the key every device pins), and a file left half
/// written is removed.
fn write_key_file(path: &Path, secret_hex: &str, public: &PublicKey) -> Result<(), CliError> {
    let shown = || output::path(path);
    let mut text = Zeroizing::new(String::with_capacity(256));
    text.push_str("{\n  \"secret_key\": \"");
    text.push_str(secret_hex);
    text.push_str("\",\n  \"public_key\": \"");
    text.push_str(&public.to_string());
    text.push_str("\"\n}\n");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => {
            CliError::Input(format!("{} already exists; a key file is never overwritten", shown()))
        }
        _ => CliError::Input(format!("cannot create key file {}: {e}", shown())),
    })?;
    if let Err(e) = f.write_all(text.as_bytes()).and_then(|()| f.sync_all()) {
        drop(f);
        let _ = std::fs::remove_file(path);
        return Err(CliError::Input(format!("cannot write key file {}: {e}", shown())));
    }
    Ok(())
}

/// Where `dispatch seal` takes the dispatch secret key from.
pub enum KeySource<'a> {
    /// `--key HEX`: on the command line, so in `ps` and shell history.
    Hex(&'a str),
    /// `--key-file FILE`: the JSON written by `dispatch keygen --out`.
    File(&'a Path),
}

/// Which device key `dispatch seal` seals to.
#[derive(Clone, Copy)]
pub enum SealTo {
    /// The lowest-numbered prekey of the bundle, or the identity key when it has none.
    Default,
    /// This prekey.
    Prekey(u32),
    /// The identity key.
    Identity,
}

/// The arguments of `dispatch seal`.
pub struct SealArgs<'a> {
    /// The dispatch secret key.
    pub key: KeySource<'a>,
    /// The device bundle file.
    pub bundle: &'a Path,
    /// The plaintext sheet file (`-` for stdin).
    pub sheet: &'a Path,
    /// The recipient key.
    pub to: SealTo,
    /// Where the envelope goes; stdout when `None`.
    pub out: Option<&'a Path>,
}

/// Decodes exactly 64 hex digits into a buffer that is zeroized on drop.
fn hex32(s: &str) -> Option<Zeroizing<[u8; 32]>> {
    let mut out = Zeroizing::new([0u8; 32]);
    jobseal::hex::decode_to_slice(s, out.as_mut()).then_some(out)
}

/// Parses a dispatch secret key from hex. Neither the value nor any part of it is echoed.
fn secret_from_hex(s: &str, what: &str) -> Result<SecretKey, CliError> {
    let bytes = hex32(s.trim())
        .ok_or_else(|| CliError::Input(format!("{what}: a dispatch secret key is 64 hex characters")))?;
    SecretKey::from_bytes(&bytes).map_err(|e| CliError::Input(format!("{what} is not a usable X25519 secret key: {e}")))
}

/// The key file of `dispatch keygen --out`, borrowed from the zeroized buffer it was read into.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile<'a> {
    #[serde(borrow)]
    secret_key: &'a str,
    #[serde(borrow, default)]
    public_key: Option<&'a str>,
}

fn read_dispatch_key(source: &KeySource<'_>) -> Result<SecretKey, CliError> {
    let path = match source {
        KeySource::Hex(s) => return secret_from_hex(s, "--key"),
        KeySource::File(path) => *path,
    };
    let shown = || output::path(path);
    let buf = read_capped(path, MAX_KEY_FILE_BYTES, "key file")?;
    // serde_json's messages can quote the input, so only the position is passed on.
    let file: KeyFile<'_> = serde_json::from_slice(&buf).map_err(|e| {
        CliError::Input(format!(
            "key file {} is not a dispatch key file (JSON with secret_key and public_key): error at line {}, column {}",
            shown(),
            e.line(),
            e.column()
        ))
    })?;
    let key = secret_from_hex(file.secret_key, &format!("key file {}", shown()))?;
    if let Some(public) = file.public_key {
        if parse_public_key(public, "its public_key").ok() != Some(key.public_key()) {
            return Err(CliError::Input(format!(
                "key file {}: public_key is not the public half of secret_key",
                shown()
            )));
        }
    }
    Ok(key)
}

/// `dispatch seal`. Opens no vault.
pub fn dispatch_seal(ctx: &Context, out: &mut impl Write, args: &SealArgs<'_>) -> Result<u8, CliError> {
    if args.out.is_none() {
        if ctx.json {
            return Err(CliError::Usage("--json needs --out FILE: without it stdout carries the envelope".into()));
        }
        if io::stdout().is_terminal() {
            return Err(CliError::Usage(
                "the envelope is binary and stdout is a terminal; give --out FILE or redirect stdout".into(),
            ));
        }
    }
    let stdin = Path::new("-");
    if args.sheet == stdin && matches!(args.key, KeySource::File(f) if f == stdin) {
        return Err(CliError::Usage("only one of --sheet and --key-file can be `-` (stdin)".into()));
    }
    let key = read_dispatch_key(&args.key)?;
    let bundle = DeviceBundle::from_json(&read_capped(args.bundle, MAX_BUNDLE_BYTES, "bundle")?)?;
    let prekey = match args.to {
        SealTo::Prekey(id) => Some(id),
        SealTo::Identity => None,
        SealTo::Default => {
            let lowest = bundle.prekeys.iter().map(|p| p.id).min();
            if lowest.is_none() {
                let _ = writeln!(
                    io::stderr(),
                    "jobseal: note: the bundle has no prekey left; sealing to the device's identity key (the \
                     fallback, with no forward secrecy for this sheet)"
                );
            }
            lowest
        }
    };
    let sheet = read_capped(args.sheet, MAX_SHEET_BYTES, "sheet")?;
    let envelope = jobseal::seal_job_sheet(&key, &bundle, prekey, &sheet)?;
    drop(sheet);
    drop(key);
    let header = *jobseal::envelope::parse(&envelope).map_err(jobseal::Error::from)?.header();
    let report = output::SealReport {
        device_id: header.device_id,
        job_id: header.job_id,
        sheet_version: header.sheet_version,
        sealed_to: header.recipient,
        bytes: envelope.len(),
        out: args.out.map(|p| p.to_string_lossy().into_owned()),
    };
    match args.out {
        Some(file) => std::fs::write(file, &envelope)
            .map_err(|e| CliError::Input(format!("cannot write the envelope to {}: {e}", output::path(file))))?,
        None => out.write_all(&envelope)?,
    }
    let _ = writeln!(io::stderr(), "jobseal: {}", output::sealed(&report));
    if ctx.json {
        output::json(out, &report)?;
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

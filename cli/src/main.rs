//! The `jobseal` command: a technician's job-sheet vault on the command line, and forensic helpers.
//!
//! It exists so that the vault can be driven and inspected without a phone: for demos, for
//! desktop use, and for privacy officers and CI jobs that must show from outside that customer
//! data is gone. It parses the command line, runs one command and turns its outcome into an exit
//! code; the work is in [`commands`], the printing in [`output`], the forensic scan in [`scan`].

mod commands;
mod demo;
mod error;
mod output;
mod scan;
mod sync;

use clap::{ArgGroup, Parser, Subcommand};
use commands::Context;
use error::{code, CliError};
use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  scan: at least one needle was found
  2  usage or input error: bad option, malformed sheet, bundle or key (a weak or low-order
     X25519 key too), bad UUID, state or time, a key file that exists already
     (scan: an entry could not be read, so absence cannot be claimed)
  3  audit --verify: the audit chain is broken
  4  job not found
  5  access denied: the job is shredded, or `job reveal` could show no field now
  6  the state of the job or device forbids it: job closed, stale sheet version, illegal
     transition, an envelope to a spent prekey, device not enrolled yet or enrolled already
  7  tampered ciphertext or envelope, an envelope from another dispatch key or for another
     device
  8  the vault failed: keystore, vault locked by another process, storage, i/o, integrity,
     the system's random number generator (demo: dispatch unreachable or refusing)

Errors go to stderr as `jobseal: <message>`; with --json an error is also printed on stdout as
{\"error\": {\"kind\": \"...\", \"message\": \"...\"}}. No message ever contains a customer value.

The keystore lives in DIR/keystore: a software keystore, weaker than a hardware one (whoever
copies both it and the database while a job is open can read that job).";

/// Keeps job sheets' customer data sealed, shows it only while the job allows, and shreds it
/// when the job ends.
#[derive(Parser)]
#[command(name = "jobseal", version, after_help = EXIT_CODES)]
struct Cli {
    /// The vault's data directory [env: JOBSEAL_DATA_DIR].
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Print one JSON document on stdout instead of text.
    #[arg(long, global = true)]
    json: bool,

    /// Wall-clock time to use instead of the system's. The vault's trusted time never moves
    /// back, so an earlier time than a previous call's cannot reopen an access window.
    #[arg(long, global = true, value_name = "RFC3339")]
    now: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Play a technician's day end to end against the reference dispatch server on loopback, and
    /// prove the mission (no data after the close, every reveal and shred accounted for at
    /// dispatch). Needs no data directory; exits 1 if any proof fails.
    Demo {
        /// Keep the temporary device and dispatch directories and print where they are.
        #[arg(long)]
        keep: bool,
    },
    /// Create the vault (or open an existing one); show its directory and key epoch.
    Init,
    /// Work with job sheets.
    #[command(subcommand)]
    Job(JobCommand),
    /// Enrol this vault as a device with dispatch, and manage its public key bundle.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// Play dispatch: make a dispatch key pair and seal job sheets to a device (no vault), or, as
    /// the operator of a dispatch server, get a one-time enrolment code.
    #[command(subcommand)]
    Dispatch(DispatchCommand),
    /// Push the outbox to dispatch and pull new jobs, withdrawals and time (one sync through
    /// the core's engine); `sync status` shows the outbox and sync health. Value-free output.
    Sync {
        #[command(subcommand)]
        command: Option<SyncCommand>,
        /// Dispatch base URL (default: the one `device enrol` saved in the data directory).
        #[arg(long, value_name = "URL")]
        dispatch: Option<String>,
    },
    /// Shred every job whose hard expiry has passed.
    Sweep,
    /// List audit events, or verify the audit hash chain.
    Audit {
        /// Check the chain end to end; exit 3 if it is broken.
        #[arg(long)]
        verify: bool,
        /// Only this job's events.
        #[arg(long, value_name = "ID", conflicts_with = "verify")]
        job: Option<String>,
    },
    /// Search every regular file under PATH for byte strings, without opening a vault.
    ///
    /// Symlinks below PATH are not followed. Needles are numbered from 1: the NEEDLE arguments
    /// first, then --hex, then the lines of --needles-file; findings name a needle by number
    /// only, never by value. Exit 0 if nothing was found, 1 if anything was, 2 on error.
    Scan {
        /// File or directory to scan.
        path: PathBuf,
        /// Text to look for, as UTF-8 bytes (put `--` before a needle starting with `-`).
        needles: Vec<String>,
        /// Bytes to look for, as hex digits.
        #[arg(long = "hex", value_name = "HEX")]
        hex: Vec<String>,
        /// Read needles from FILE, one per line (`-` for stdin), keeping them off the command
        /// line and out of shell history.
        #[arg(long, value_name = "FILE")]
        needles_file: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum SyncCommand {
    /// Show whether the device is enrolled, what waits in the outbox, the last success and the
    /// backoff after failures. Works offline.
    Status,
}

#[derive(Subcommand)]
enum JobCommand {
    /// Seal a plaintext job sheet (JSON, format jobseal.sheet.v1) into the vault.
    Add {
        /// The sheet file, or `-` for stdin.
        file: PathBuf,
    },
    /// List every job, live and closed, without customer data.
    List,
    /// Show a job without its customer values.
    Show {
        /// The job's UUID.
        id: String,
    },
    /// Move a job forward: en-route or on-site.
    Advance {
        /// The job's UUID.
        id: String,
        /// The new state, in kebab-case (en-route, on-site).
        state: String,
    },
    /// Show the customer fields that the job's state and access window allow now.
    Reveal {
        /// The job's UUID.
        id: String,
    },
    /// Complete the job with a report and shred its customer data.
    Close {
        /// The job's UUID.
        id: String,
        /// The completion report, kept after the shred.
        #[arg(long, value_name = "TEXT")]
        report: String,
    },
    /// Cancel the job and shred its customer data.
    Cancel {
        /// The job's UUID.
        id: String,
    },
    /// Open a sealed job sheet from dispatch and store it; the prekey it was sealed to is
    /// deleted in the same step, so the envelope can never be opened again.
    ///
    /// Needs an enrolled device (`device init`). Refused: a version not newer than the one
    /// held, a closed job or an envelope to a prekey already used (exit 6); an envelope that was
    /// altered, sealed by another dispatch key or addressed to another device (exit 7).
    Receive {
        /// The envelope file, or `-` for stdin.
        envelope: PathBuf,
    },
}

#[derive(Subcommand)]
enum DeviceCommand {
    /// Create the vault if needed, enrol it as a device: make its identity key and one-time
    /// prekeys, and pin the dispatch public key. A device enrols once.
    Init {
        /// Dispatch's X25519 public key, 64 hex characters (from `dispatch keygen`).
        #[arg(long, value_name = "PUB")]
        dispatch_key: String,
        /// How many one-time prekeys to make (1 to 500).
        #[arg(long, value_name = "N", default_value_t = 20)]
        prekeys: u32,
    },
    /// Create the vault if needed and enrol it with a dispatch server over HTTP, with the
    /// one-time enrolment code the operator issued (`jobseal dispatch enrolment-code`).
    ///
    /// Pins --dispatch-key if given, else the key the server announces (trust on first use).
    /// Saves the URL for `jobseal sync`. After a lost answer, run it again: without --code if
    /// dispatch did register the device. Exit 8 with dispatch's reason when it refuses (a wrong,
    /// used or expired code: 401/403).
    Enrol {
        /// Dispatch base URL, e.g. http://127.0.0.1:8787.
        #[arg(long, value_name = "URL")]
        dispatch: String,
        /// The one-time enrolment code (4 groups of 5 characters; case and dashes do not matter).
        #[arg(long, value_name = "CODE")]
        code: Option<String>,
        /// Dispatch's X25519 public key to pin, 64 hex characters.
        #[arg(long, value_name = "HEX")]
        dispatch_key: Option<String>,
        /// How many one-time prekeys to make (1 to 500).
        #[arg(long, value_name = "N", default_value_t = 20)]
        prekeys: u32,
    },
    /// Print the device's public bundle (JSON, format jobseal.bundle.v1) for dispatch: its id,
    /// identity key and unused prekeys. Holds no secret.
    Bundle {
        /// Write the bundle to FILE instead of stdout.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Make N more one-time prekeys (1 to 500) when dispatch runs low; send the new bundle.
    TopUp {
        /// How many prekeys to add.
        count: u32,
    },
}

#[derive(Subcommand)]
enum DispatchCommand {
    /// Generate a dispatch X25519 key pair.
    ///
    /// With --out, the secret goes to FILE only, as JSON {"secret_key", "public_key"}, created
    /// with mode 0600 (an existing file is never overwritten), and only the public key is
    /// printed. Without --out the secret key is printed too.
    Keygen {
        /// Write the key pair to FILE (mode 0600) and print only the public key.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// As the operator: ask a dispatch server for a one-time enrolment code for a new device.
    ///
    /// Prints the code on stdout (its id and expiry on stderr). The operator token is read from
    /// --operator-token-file (owner-only) or $JOBSEAL_OPERATOR_TOKEN, never from the command line.
    EnrolmentCode {
        /// Dispatch base URL, e.g. http://127.0.0.1:8787.
        #[arg(long, value_name = "URL")]
        dispatch: String,
        /// Bind the code to this device id only.
        #[arg(long, value_name = "ID")]
        device: Option<String>,
        /// How long the code stays usable (default 24 hours, at most 720).
        #[arg(long, value_name = "HOURS")]
        valid_for_hours: Option<u64>,
        /// File holding the operator token (mode 0600).
        #[arg(long, value_name = "PATH")]
        operator_token_file: Option<PathBuf>,
    },
    /// Seal a plaintext job sheet to a device, as dispatch does, into a binary envelope.
    ///
    /// Sealed to the lowest-numbered prekey of the bundle unless --prekey or --identity says
    /// otherwise; to the identity key (no forward secrecy) when the bundle has no prekey. The
    /// CLI keeps no record of used prekeys: a prekey opens one envelope only, so seal the next
    /// sheet to another (--prekey) or take the used one out of the bundle.
    #[command(group(ArgGroup::new("secret").required(true).args(["key", "key_file"])))]
    Seal {
        /// Dispatch's secret key, 64 hex characters. Visible to anyone who can run `ps`, and
        /// kept in shell history: prefer --key-file.
        #[arg(long, value_name = "SECRET")]
        key: Option<String>,
        /// The key file written by `dispatch keygen --out` (`-` for stdin).
        #[arg(long, value_name = "FILE")]
        key_file: Option<PathBuf>,
        /// The device's bundle (from `device bundle`).
        #[arg(long, value_name = "FILE")]
        bundle: PathBuf,
        /// The plaintext job sheet (JSON, format jobseal.sheet.v1), or `-` for stdin.
        #[arg(long, value_name = "FILE")]
        sheet: PathBuf,
        /// Seal to this prekey of the bundle.
        #[arg(long, value_name = "ID", conflicts_with = "identity")]
        prekey: Option<u32>,
        /// Seal to the device's identity key, the fallback for when no prekey is left.
        #[arg(long)]
        identity: bool,
        /// Write the envelope to FILE. Without it the envelope goes to stdout, which must then
        /// not be a terminal.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let mut out = output::Out::new(io::stdout().lock());
    let code = match Cli::try_parse_from(&args) {
        Ok(cli) => {
            let json = cli.json;
            match run(cli, &mut out) {
                Ok(code) => code,
                Err(e) => report(&mut out, json, &e.to_string(), e.kind(), e.exit_code()),
            }
        }
        Err(e) => clap_failure(&mut out, &args, &e),
    };
    if let Err(e) = out.flush() {
        let _ = writeln!(io::stderr(), "jobseal: cannot write output: {e}");
        return ExitCode::from(code::INTERNAL);
    }
    ExitCode::from(code)
}

fn run(cli: Cli, out: &mut impl Write) -> Result<u8, CliError> {
    let ctx = Context {
        data_dir: cli
            .data_dir
            .or_else(|| std::env::var_os("JOBSEAL_DATA_DIR").filter(|v| !v.is_empty()).map(PathBuf::from)),
        now: cli.now.as_deref().map(commands::parse_now).transpose()?,
        json: cli.json,
    };
    match &cli.command {
        Command::Demo { keep } => demo::run(out, &demo::DemoArgs { keep: *keep }),
        Command::Init => commands::init(&ctx, out),
        Command::Job(job) => match job {
            JobCommand::Add { file } => commands::job_add(&ctx, out, file),
            JobCommand::List => commands::job_list(&ctx, out),
            JobCommand::Show { id } => commands::job_show(&ctx, out, id),
            JobCommand::Advance { id, state } => commands::job_advance(&ctx, out, id, state),
            JobCommand::Reveal { id } => commands::job_reveal(&ctx, out, id),
            JobCommand::Close { id, report } => commands::job_close(&ctx, out, id, report),
            JobCommand::Cancel { id } => commands::job_cancel(&ctx, out, id),
            JobCommand::Receive { envelope } => commands::job_receive(&ctx, out, envelope),
        },
        Command::Device(device) => match device {
            DeviceCommand::Init { dispatch_key, prekeys } => commands::device_init(&ctx, out, dispatch_key, *prekeys),
            DeviceCommand::Enrol { dispatch, code, dispatch_key, prekeys } => {
                sync::device_enrol(&ctx, out, dispatch, code.as_deref(), dispatch_key.as_deref(), *prekeys)
            }
            DeviceCommand::Bundle { out: file } => commands::device_bundle(&ctx, out, file.as_deref()),
            DeviceCommand::TopUp { count } => commands::device_top_up(&ctx, out, *count),
        },
        Command::Dispatch(dispatch) => match dispatch {
            DispatchCommand::Keygen { out: file } => commands::dispatch_keygen(&ctx, out, file.as_deref()),
            DispatchCommand::EnrolmentCode { dispatch, device, valid_for_hours, operator_token_file } => {
                sync::enrolment_code(
                    &ctx,
                    out,
                    dispatch,
                    device.as_deref(),
                    *valid_for_hours,
                    operator_token_file.as_ref(),
                )
            }
            DispatchCommand::Seal { key, key_file, bundle, sheet, prekey, identity, out: file } => {
                commands::dispatch_seal(
                    &ctx,
                    out,
                    &commands::SealArgs {
                        key: match (key, key_file) {
                            (Some(k), _) => commands::KeySource::Hex(k),
                            (None, Some(f)) => commands::KeySource::File(f),
                            (None, None) => {
                                return Err(error::CliError::Usage("seal needs --key-file FILE or --key SECRET".into()))
                            }
                        },
                        bundle,
                        sheet,
                        to: match (prekey, identity) {
                            (Some(id), _) => commands::SealTo::Prekey(*id),
                            (None, true) => commands::SealTo::Identity,
                            (None, false) => commands::SealTo::Default,
                        },
                        out: file.as_deref(),
                    },
                )
            }
        },
        Command::Sync { command: Some(SyncCommand::Status), .. } => sync::status(&ctx, out),
        Command::Sync { command: None, dispatch } => sync::sync(&ctx, out, dispatch.as_deref()),
        Command::Sweep => commands::sweep(&ctx, out),
        Command::Audit { verify, job } => commands::audit(&ctx, out, *verify, job.as_deref()),
        Command::Scan { path, needles, hex, needles_file } => commands::scan(
            &ctx,
            out,
            &commands::ScanArgs { path, text: needles, hex, needles_file: needles_file.as_deref() },
        ),
    }
}

/// Prints a failure: `jobseal: <message>` on stderr and, with --json, an error document on stdout.
fn report(out: &mut impl Write, json: bool, message: &str, kind: &str, exit: u8) -> u8 {
    let _ = writeln!(io::stderr(), "jobseal: {message}");
    if json {
        let doc = serde_json::json!({ "error": { "kind": kind, "message": message } });
        let _ = output::json(out, &doc);
    }
    exit
}

/// Help and version go to stdout with success; anything else is a usage error, worded like every
/// other failure and also given as JSON when `--json` appears before any `--`.
fn clap_failure(out: &mut impl Write, args: &[OsString], e: &clap::Error) -> u8 {
    if !e.use_stderr() {
        let _ = write!(out, "{}", e.render());
        return code::OK;
    }
    let rendered = e.render().to_string();
    let (first, shown) = match rendered.strip_prefix("error: ") {
        Some(text) => (text.lines().next().unwrap_or_default().to_owned(), format!("jobseal: {}", text.trim_end())),
        // A missing subcommand renders as the command's help, which is the best message for it.
        None => ("a subcommand is required".to_owned(), rendered.trim_end().to_owned()),
    };
    let json = args.iter().skip(1).take_while(|a| *a != "--").any(|a| a == "--json");
    let _ = writeln!(io::stderr(), "{shown}");
    if json {
        let doc = serde_json::json!({ "error": { "kind": "usage", "message": first } });
        let _ = output::json(out, &doc);
    }
    code::USAGE
}

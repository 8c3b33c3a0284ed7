//! The `jobseal` command: a technician's job-sheet vault on the command line, and forensic helpers.
//!
//! It exists so that the vault can be driven and inspected without a phone: for demos, for
//! desktop use, and for privacy officers and CI jobs that must show from outside that customer
//! data is gone. It parses the command line, runs one command and turns its outcome into an exit
//! code; the work is in [`commands`], the printing in [`output`], the forensic scan in [`scan`].

mod commands;
mod error;
mod output;
mod scan;

use clap::{Parser, Subcommand};
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
  2  usage or input error: bad option, malformed sheet, bad UUID, state or time
     (scan: an entry could not be read, so absence cannot be claimed)
  3  audit --verify: the audit chain is broken
  4  job not found
  5  access denied: the job is shredded, or `job reveal` could show no field now
  6  the lifecycle forbids it: job closed, stale sheet version, illegal transition
  7  tampered ciphertext, or a sealed sheet for another device or a spent prekey
  8  the vault failed: keystore, vault locked by another process, storage, i/o, integrity

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
    /// Create the vault (or open an existing one); show its directory and key epoch.
    Init,
    /// Work with job sheets.
    #[command(subcommand)]
    Job(JobCommand),
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
        Command::Init => commands::init(&ctx, out),
        Command::Job(job) => match job {
            JobCommand::Add { file } => commands::job_add(&ctx, out, file),
            JobCommand::List => commands::job_list(&ctx, out),
            JobCommand::Show { id } => commands::job_show(&ctx, out, id),
            JobCommand::Advance { id, state } => commands::job_advance(&ctx, out, id, state),
            JobCommand::Reveal { id } => commands::job_reveal(&ctx, out, id),
            JobCommand::Close { id, report } => commands::job_close(&ctx, out, id, report),
            JobCommand::Cancel { id } => commands::job_cancel(&ctx, out, id),
        },
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

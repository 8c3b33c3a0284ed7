//! `jobseal-dispatch`: runs the reference dispatch server from the command line.
//!
//! Exists so that a backend team, the demo and the end-to-end tests can run a real dispatch
//! without writing code. The operator token is a credential, so it never appears on the command
//! line (where `ps` and shell history would show it) nor in a log: it is read from an owner-only
//! file or the environment, or generated into an owner-only file whose path alone is printed.

use clap::{Parser, Subcommand};
use jobseal_dispatch::{generate_operator_token, EnrolRate, RunningServer, ServerConfig, Timeouts};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Environment variable read when `--operator-token-file` is not given.
const TOKEN_ENV: &str = "JOBSEAL_OPERATOR_TOKEN";
/// Largest operator token file read; a generated token is 64 characters.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

#[derive(Parser)]
#[command(name = "jobseal-dispatch", version, about = "Reference dispatch server for jobseal")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the device and operator API (docs/sync.md) until the process is stopped.
    Serve {
        /// SQLite database file; created on first start together with dispatch's key pair.
        #[arg(long)]
        db: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8787")]
        addr: SocketAddr,
        /// File holding the bearer token of the operator endpoints; must be readable by its owner
        /// only (mode 0600). Default: $JOBSEAL_OPERATOR_TOKEN, else the file DB.operator-token,
        /// created with a fresh random token on first start (its path is printed, never the token).
        #[arg(long, value_name = "PATH")]
        operator_token_file: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { db, addr, operator_token_file } => {
            let operator_token = match operator_token(&db, operator_token_file.as_deref()) {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("jobseal-dispatch: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let server = match RunningServer::start(ServerConfig {
                db_path: db,
                addr,
                operator_token,
                timeouts: Timeouts::default(),
                enrol_rate: EnrolRate::default(),
            }) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("jobseal-dispatch: {e}");
                    return ExitCode::FAILURE;
                }
            };
            eprintln!("jobseal-dispatch: listening on {}", server.base_url());
            eprintln!("jobseal-dispatch: dispatch key {}", server.dispatch_key());
            // Stopping the process (Ctrl-C, SIGTERM, kill) is safe at any moment: every request
            // is one SQLite transaction, so an interrupted one leaves nothing behind.
            loop {
                std::thread::park();
            }
        }
    }
}

/// The operator token: from `file` (owner-only), else the environment, else the file next to
/// the database, generated there on first start.
fn operator_token(db: &Path, file: Option<&Path>) -> Result<String, String> {
    if let Some(file) = file {
        return read_token_file(file);
    }
    if let Some(t) = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_owned());
    }
    let mut name = db.as_os_str().to_owned();
    name.push(".operator-token");
    let path = PathBuf::from(name);
    if path.exists() {
        eprintln!("jobseal-dispatch: operator token read from {}", path.display());
        return read_token_file(&path);
    }
    let token = generate_operator_token().map_err(|e| format!("cannot generate an operator token: {e}"))?;
    write_owner_only(&path, &token)
        .map_err(|e| format!("cannot write the operator token to {}: {e}", path.display()))?;
    eprintln!("jobseal-dispatch: no operator token configured; generated one into {} (owner-only)", path.display());
    Ok(token)
}

/// Reads a token file, refusing one that others may read or write.
fn read_token_file(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let fail = |e: &dyn std::fmt::Display| format!("cannot read the operator token file {}: {e}", path.display());
    let file = std::fs::File::open(path).map_err(|e| fail(&e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = file.metadata().map_err(|e| fail(&e))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(format!(
                "the operator token file {} can be read or written by others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            ));
        }
    }
    let mut text = String::new();
    file.take(MAX_TOKEN_FILE_BYTES).read_to_string(&mut text).map_err(|e| fail(&e))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(format!("the operator token file {} is empty", path.display()));
    }
    Ok(token.to_owned())
}

/// Creates `path` with mode 0600 (never overwriting) and writes `token` to it.
fn write_owner_only(path: &Path, token: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    writeln!(file, "{token}")?;
    file.sync_all()
}

//! `jobseal-dispatch`: runs the reference dispatch server from the command line.
//!
//! Exists so that a backend team, the demo and the end-to-end tests can run a real dispatch
//! without writing code. The operator token is a credential, so it is taken from the command line
//! or the environment, or generated and shown once; it is never logged again.

use clap::{Parser, Subcommand};
use jobseal_dispatch::{generate_operator_token, RunningServer, ServerConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Environment variable read when `--operator-token` is not given.
const TOKEN_ENV: &str = "JOBSEAL_OPERATOR_TOKEN";

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
        /// Bearer token of the operator endpoints (default: $JOBSEAL_OPERATOR_TOKEN, else a
        /// fresh random token printed once to stderr).
        #[arg(long)]
        operator_token: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { db, addr, operator_token } => {
            let operator_token =
                match operator_token.or_else(|| std::env::var(TOKEN_ENV).ok()).filter(|t| !t.is_empty()) {
                    Some(t) => t,
                    None => {
                        let t = match generate_operator_token() {
                            Ok(t) => t,
                            Err(e) => {
                                eprintln!("jobseal-dispatch: cannot generate an operator token: {e}");
                                return ExitCode::FAILURE;
                            }
                        };
                        eprintln!("jobseal-dispatch: no operator token configured; generated one for this run:");
                        eprintln!("{t}");
                        t
                    }
                };
            let server = match RunningServer::start(ServerConfig { db_path: db, addr, operator_token }) {
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

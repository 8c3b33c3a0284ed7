//! `jobseal-dispatch`: runs the reference dispatch server from the command line.
//!
//! Exists so that a backend team, the demo and the end-to-end tests can run a real dispatch
//! without writing code. The operator token is a credential, so it never appears on the command
//! line (where `ps` and shell history would show it) nor in a log: it is read from an owner-only
//! file or the environment, or generated into an owner-only file whose path alone is printed.

use clap::{Parser, Subcommand};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use jobseal_dispatch::{generate_operator_token, EnrolRate, RunningServer, ServerConfig, Timeouts};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Environment variable read when no operator token file is configured.
const TOKEN_ENV: &str = "JOBSEAL_OPERATOR_TOKEN";
/// Environment variable holding the scrape token of `/metrics`, when no file is configured.
const METRICS_TOKEN_ENV: &str = "JOBSEAL_METRICS_TOKEN";
/// Prefix of the environment variables that override the configuration file's settings:
/// `JOBSEAL_DISPATCH_DATABASE`, `JOBSEAL_DISPATCH_LISTEN`, `JOBSEAL_DISPATCH_LOG`, ...
const SETTINGS_ENV_PREFIX: &str = "JOBSEAL_DISPATCH_";
/// Every setting's key: in the configuration file, and lower-cased after the prefix in the
/// environment.
const SETTING_KEYS: [&str; 10] = [
    "database",
    "listen",
    "operator_token_file",
    "metrics_token_file",
    "log",
    "log_format",
    "header_read_timeout_secs",
    "body_read_timeout_secs",
    "enrol_burst",
    "enrol_per_minute",
];
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
    /// Serve the device and operator API (docs/sync.md) until SIGTERM or SIGINT, which stop
    /// accepting connections and let the requests in flight finish.
    ///
    /// Settings come from, in rising precedence: built-in defaults, the TOML file of --config,
    /// JOBSEAL_DISPATCH_* environment variables (JOBSEAL_DISPATCH_DATABASE, _LISTEN, _LOG,
    /// _LOG_FORMAT, _OPERATOR_TOKEN_FILE, _METRICS_TOKEN_FILE, _HEADER_READ_TIMEOUT_SECS,
    /// _BODY_READ_TIMEOUT_SECS, _ENROL_BURST, _ENROL_PER_MINUTE), then these flags. Tokens are never settings: they come from
    /// owner-only files or from JOBSEAL_OPERATOR_TOKEN / JOBSEAL_METRICS_TOKEN.
    Serve {
        /// TOML configuration file (see docs/operations.md for its keys).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// The database: a SQLite file (created on first start together with dispatch's key
        /// pair), or a postgres:// URL shared by several instances (put a URL with a password in
        /// the configuration file or JOBSEAL_DISPATCH_DATABASE instead: the command line is
        /// visible to every user). Default: jobseal-dispatch.db in the working directory.
        #[arg(long, alias = "database", value_name = "PATH_OR_URL")]
        db: Option<String>,
        /// Address to listen on. Default: 127.0.0.1:8787.
        #[arg(long)]
        addr: Option<SocketAddr>,
        /// File holding the bearer token of the operator endpoints; must be readable by its owner
        /// only (mode 0600). Default: $JOBSEAL_OPERATOR_TOKEN, else the file DB.operator-token,
        /// created with a fresh random token on first start (its path is printed, never the token).
        #[arg(long, value_name = "PATH")]
        operator_token_file: Option<PathBuf>,
    },
}

/// How log lines are written to standard error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum LogFormat {
    /// One human-readable line per event.
    Text,
    /// One JSON object per line, for a log shipper.
    Json,
}

/// The server's settings, as the configuration file, the environment and the flags give them.
/// Unknown keys are refused, so that a misspelt setting is an error rather than a default.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The SQLite database file, or a `postgres://` URL.
    database: String,
    /// Where to listen.
    listen: SocketAddr,
    /// Owner-only file with the operator token.
    operator_token_file: Option<PathBuf>,
    /// Owner-only file with the scrape token of `/metrics`.
    metrics_token_file: Option<PathBuf>,
    /// Log filter, in `RUST_LOG` syntax (`info`, `jobseal_dispatch=debug,warn`); `RUST_LOG`
    /// itself wins when set.
    log: String,
    /// `text` or `json`.
    log_format: LogFormat,
    /// Seconds a client may take to send a request's headers (and an idle connection is kept).
    header_read_timeout_secs: u64,
    /// Seconds a request body may take to arrive.
    body_read_timeout_secs: u64,
    /// Enrolment requests one source address may make at once.
    enrol_burst: u32,
    /// Enrolment requests per minute one source address may make after its burst.
    enrol_per_minute: u32,
}

impl Default for Settings {
    fn default() -> Self {
        let timeouts = Timeouts::default();
        Settings {
            database: "jobseal-dispatch.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8787)),
            operator_token_file: None,
            metrics_token_file: None,
            log: "info".into(),
            log_format: LogFormat::Text,
            header_read_timeout_secs: timeouts.header_read.as_secs(),
            body_read_timeout_secs: timeouts.body_read.as_secs(),
            enrol_burst: EnrolRate::default().burst,
            enrol_per_minute: EnrolRate::default().per_minute,
        }
    }
}

/// Reads the settings: defaults, then the file, then the environment, then the flags. Errors
/// name the key and where it came from, never a token (tokens are not settings).
fn settings(
    config: Option<&Path>,
    db: Option<String>,
    addr: Option<SocketAddr>,
    token_file: Option<PathBuf>,
) -> Result<Settings, String> {
    let mut figment = Figment::from(Serialized::defaults(Settings::default()));
    if let Some(config) = config {
        if !config.is_file() {
            return Err(format!("the configuration file {} does not exist", config.display()));
        }
        figment = figment.merge(Toml::file_exact(config));
    }
    // Only the settings' own names: other JOBSEAL_DISPATCH_* variables exist (test harnesses set
    // JOBSEAL_DISPATCH_BIN and _URL for their own use) and must not stop the server.
    figment = figment.merge(Env::prefixed(SETTINGS_ENV_PREFIX).only(&SETTING_KEYS));
    let mut settings: Settings = figment.extract().map_err(|e| {
        let text = e.to_string();
        if text.contains("TOML parse error") {
            // The parser's message quotes the offending line, which may hold a database URL
            // with its password: say only where.
            let line = text.split("line ").nth(1).and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next());
            format!(
                "configuration: the file is not valid TOML{}",
                line.filter(|l| !l.is_empty()).map(|l| format!(" (line {l})")).unwrap_or_default()
            )
        } else if text.contains("operator_token`") || text.contains("metrics_token`") {
            format!(
                "configuration: {text}. Tokens are not settings: give an owner-only file \
                 (operator_token_file, metrics_token_file) or {TOKEN_ENV} / {METRICS_TOKEN_ENV}"
            )
        } else {
            format!("configuration: {text}")
        }
    })?;
    if let Some(db) = db {
        settings.database = db;
    }
    if let Some(addr) = addr {
        settings.listen = addr;
    }
    if token_file.is_some() {
        settings.operator_token_file = token_file;
    }
    if settings.header_read_timeout_secs == 0 || settings.body_read_timeout_secs == 0 {
        return Err("configuration: timeouts must be at least 1 second".into());
    }
    if settings.enrol_burst == 0 || settings.enrol_per_minute == 0 {
        return Err("configuration: enrol_burst and enrol_per_minute must be at least 1".into());
    }
    Ok(settings)
}

/// Installs the log subscriber on standard error. `RUST_LOG` wins over the settings' filter.
fn init_logging(settings: &Settings) -> Result<(), String> {
    use tracing_subscriber::EnvFilter;
    let filter = match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => EnvFilter::try_new(directives),
        _ => EnvFilter::try_new(&settings.log),
    }
    .map_err(|e| format!("configuration: the log filter is invalid: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(true);
    let installed = match settings.log_format {
        LogFormat::Text => builder.with_ansi(false).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    installed.map_err(|e| format!("cannot install the logger: {e}"))
}

/// Says something to whoever started the server: a plain line in text mode (the form scripts
/// and the test harnesses read: `jobseal-dispatch: listening on URL`), a JSON log event in JSON
/// mode so that standard error stays one JSON object per line.
fn announce(format: LogFormat, message: &str) {
    match format {
        LogFormat::Text => eprintln!("jobseal-dispatch: {message}"),
        LogFormat::Json => tracing::info!(target: "jobseal_dispatch", "{message}"),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, db, addr, operator_token_file } => {
            match serve(config.as_deref(), db, addr, operator_token_file) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("jobseal-dispatch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Runs the server until SIGTERM or SIGINT, then shuts it down gracefully.
fn serve(
    config: Option<&Path>,
    db: Option<String>,
    addr: Option<SocketAddr>,
    operator_token_file: Option<PathBuf>,
) -> Result<(), String> {
    let settings = settings(config, db, addr, operator_token_file)?;
    init_logging(&settings)?;
    let format = settings.log_format;
    // Registered before the server starts, so that a signal arriving during start-up is not
    // lost (nor kills the process halfway through opening the database).
    let mut signals = signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
        .map_err(|e| format!("cannot handle SIGTERM/SIGINT: {e}"))?;
    jobseal_dispatch::Database::check_setting(&settings.database).map_err(|e| e.to_string())?;
    let database = jobseal_dispatch::Database::parse(&settings.database);
    let operator_token = operator_token(&database, settings.operator_token_file.as_deref(), format)?;
    let metrics_token = metrics_token(settings.metrics_token_file.as_deref())?;
    let server = RunningServer::start(ServerConfig {
        database,
        addr: settings.listen,
        operator_token,
        timeouts: Timeouts {
            header_read: Duration::from_secs(settings.header_read_timeout_secs),
            body_read: Duration::from_secs(settings.body_read_timeout_secs),
        },
        metrics_token,
        enrol_rate: EnrolRate { burst: settings.enrol_burst, per_minute: settings.enrol_per_minute },
    })
    .map_err(|e| e.to_string())?;
    announce(format, &format!("listening on {}", server.base_url()));
    announce(format, &format!("dispatch key {}", server.dispatch_key()));
    let signal = signals.forever().next();
    announce(format, &format!("signal {} received; finishing requests in flight", signal.unwrap_or_default()));
    // Stops accepting, lets every request in flight finish (each is one SQLite transaction, so
    // one cut short by the grace period leaves nothing behind), closes the database.
    server.shutdown();
    announce(format, "stopped");
    Ok(())
}

/// The scrape token of `/metrics`: from `file` (owner-only), else the environment, else none
/// (then `/metrics` takes the operator token).
fn metrics_token(file: Option<&Path>) -> Result<Option<String>, String> {
    if let Some(file) = file {
        return read_token_file(file).map(Some);
    }
    Ok(std::env::var(METRICS_TOKEN_ENV).ok().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()))
}

/// The operator token: from `file` (owner-only), else the environment, else the file next to
/// a SQLite database, generated there on first start (a PostgreSQL database has no file next to
/// it: its instances must be given the same token).
fn operator_token(
    database: &jobseal_dispatch::Database,
    file: Option<&Path>,
    format: LogFormat,
) -> Result<String, String> {
    if let Some(file) = file {
        return read_token_file(file);
    }
    if let Some(t) = std::env::var(TOKEN_ENV).ok().filter(|t| !t.trim().is_empty()) {
        return Ok(t.trim().to_owned());
    }
    let Some(db) = database.sqlite_path() else {
        return Err(format!(
            "with a PostgreSQL database, give the operator token: operator_token_file or {TOKEN_ENV} \
             (every instance needs the same one)"
        ));
    };
    let mut name = db.as_os_str().to_owned();
    name.push(".operator-token");
    let path = PathBuf::from(name);
    if path.exists() {
        announce(format, &format!("operator token read from {}", path.display()));
        return read_token_file(&path);
    }
    let token = generate_operator_token().map_err(|e| format!("cannot generate an operator token: {e}"))?;
    write_owner_only(&path, &token)
        .map_err(|e| format!("cannot write the operator token to {}: {e}", path.display()))?;
    announce(format, &format!("no operator token configured; generated one into {} (owner-only)", path.display()));
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

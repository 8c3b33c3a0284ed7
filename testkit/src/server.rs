//! The reference dispatch server on loopback, for tests that need the real thing on the other
//! end of the wire.
//!
//! The suites used to start it in four slightly different ways. [`TestDispatch`] runs it in
//! process (`jobseal_dispatch::RunningServer`) rather than as a child: `start` returns once the
//! socket listens, so there is no port to scrape from a log and no start-up race, and a panicking
//! test cannot leave an orphan server behind, because the server stops when the handle is
//! dropped, during unwinding too. The database lives in a temporary folder that outlives
//! restarts, so a test can stop dispatch and bring it back on the same state. (The test of the
//! `jobseal-dispatch` binary itself still runs the binary.)
//!
//! The same tests run on both of dispatch's databases: when `JOBSEAL_TEST_POSTGRES` names a
//! PostgreSQL server (an admin URL whose role may create databases; `scripts/with-postgres.sh`
//! sets it), every [`TestDatabase`] is a fresh PostgreSQL database of its own, dropped after the
//! test; otherwise it is a SQLite file in the test's folder.

use crate::operator::{Client, Operator};
use jobseal::{DeviceBundle, HttpTransport, PublicKey, Vault};
use jobseal_dispatch::{Database, RunningServer, ServerConfig};
use std::path::{Path, PathBuf};

/// The environment variable naming the PostgreSQL server the suites run on instead of SQLite.
pub const POSTGRES_ENV: &str = "JOBSEAL_TEST_POSTGRES";

/// The PostgreSQL admin URL of this run, if the suites run on PostgreSQL.
pub fn postgres_admin_url() -> Option<String> {
    std::env::var(POSTGRES_ENV).ok().filter(|u| !u.trim().is_empty())
}

/// A database for one test's server: a SQLite file in `dir`, or, on PostgreSQL runs, a fresh
/// database on the run's server, dropped (with any connections still open to it) when this is.
pub struct TestDatabase {
    database: Database,
    /// The PostgreSQL database's name, to drop it.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A new, empty database; `file` is the SQLite file to use on SQLite runs.
    pub fn new(file: &Path) -> TestDatabase {
        let Some(admin) = postgres_admin_url() else {
            return TestDatabase { database: Database::Sqlite(file.to_path_buf()), postgres: None };
        };
        let name = format!("jobseal_test_{}", uuid::Uuid::new_v4().simple());
        let mut client =
            postgres::Client::connect(&admin, postgres::NoTls).expect("the test PostgreSQL server answers");
        client.batch_execute(&format!("CREATE DATABASE {name}")).expect("a test database is created");
        let mut config: postgres::Config = admin.parse().expect("JOBSEAL_TEST_POSTGRES is a postgres:// URL");
        config.dbname(&name);
        let url = postgres_url(&config);
        TestDatabase { database: Database::Postgres(url), postgres: Some((admin, name)) }
    }

    /// A SQLite database at `file`, whatever `JOBSEAL_TEST_POSTGRES` says.
    pub fn sqlite(file: &Path) -> TestDatabase {
        TestDatabase { database: Database::Sqlite(file.to_path_buf()), postgres: None }
    }

    /// What to give `ServerConfig::database`.
    pub fn database(&self) -> Database {
        self.database.clone()
    }

    /// Whether this is a PostgreSQL database.
    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Runs one statement written for both databases (no parameters: quote values with
    /// [`quote`]) on this database directly, as someone with access to it would: for tests that
    /// reach past the API (a tampered row, a count of what is stored). Returns each row's columns
    /// as text (`NULL` as `None`).
    pub fn sql(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        match &self.database {
            Database::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("the dispatch database opens");
                conn.busy_timeout(std::time::Duration::from_secs(5)).expect("a busy timeout");
                let mut stmt = conn.prepare(sql).expect("the test's SQL is valid");
                let n = stmt.column_count();
                let mut rows = stmt.query([]).expect("the test's SQL runs");
                let mut out = Vec::new();
                while let Some(row) = rows.next().expect("a row") {
                    out.push(
                        (0..n)
                            .map(|i| match row.get_ref(i).expect("a column") {
                                rusqlite::types::ValueRef::Null => None,
                                rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                                rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                                rusqlite::types::ValueRef::Text(t) => Some(String::from_utf8_lossy(t).into_owned()),
                                // As PostgreSQL's text form of bytea shows it.
                                rusqlite::types::ValueRef::Blob(b) => Some(format!("\\x{}", jobseal::hex::encode(b))),
                            })
                            .collect(),
                    );
                }
                out
            }
            Database::Postgres(url) => {
                let mut client = postgres::Client::connect(url, postgres::NoTls).expect("the test database answers");
                let mut out = Vec::new();
                for message in client.simple_query(sql).expect("the test's SQL runs") {
                    if let postgres::SimpleQueryMessage::Row(row) = message {
                        out.push((0..row.len()).map(|i| row.get(i).map(str::to_owned)).collect());
                    }
                }
                out
            }
            _ => unreachable!("a TestDatabase is SQLite or PostgreSQL"),
        }
    }
}

/// Another writer holding dispatch's database ([`TestDatabase::hold_writes`]) until
/// [`WriteHold::release`] or drop.
pub enum WriteHold {
    /// A SQLite connection inside `BEGIN IMMEDIATE`.
    Sqlite(rusqlite::Connection),
    /// A PostgreSQL session inside a transaction holding `devices` in `EXCLUSIVE` mode.
    Postgres(postgres::Client),
}

impl WriteHold {
    /// Lets the writers through.
    pub fn release(self) {}
}

impl Drop for WriteHold {
    fn drop(&mut self) {
        match self {
            WriteHold::Sqlite(conn) => {
                let _ = conn.execute_batch("ROLLBACK");
            }
            WriteHold::Postgres(client) => {
                let _ = client.batch_execute("ROLLBACK");
            }
        }
    }
}

impl TestDatabase {
    /// Holds the database as a long write transaction would: on SQLite the write lock itself
    /// (`BEGIN IMMEDIATE`), on PostgreSQL the `devices` table in `EXCLUSIVE` mode, which every
    /// sync and enrolment must write and which leaves plain reads through. What only reads
    /// (credentials checks, views) must still answer; every write waits until the hold ends.
    pub fn hold_writes(&self) -> WriteHold {
        match &self.database {
            Database::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path).expect("the dispatch database opens");
                conn.execute_batch("BEGIN IMMEDIATE").expect("the write lock is taken");
                WriteHold::Sqlite(conn)
            }
            Database::Postgres(url) => {
                let mut client = postgres::Client::connect(url, postgres::NoTls).expect("the test database answers");
                client.batch_execute("BEGIN; LOCK TABLE devices IN EXCLUSIVE MODE").expect("the table lock is taken");
                WriteHold::Postgres(client)
            }
            _ => unreachable!("a TestDatabase is SQLite or PostgreSQL"),
        }
    }
}

/// `text` as an SQL string literal (quotes doubled), for [`TestDatabase::sql`].
pub fn quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// The URL of `config` (host, port, user, password, database).
fn postgres_url(config: &postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let user = config.get_user().unwrap_or("postgres");
    let password = config.get_password().map(|p| format!(":{}", String::from_utf8_lossy(p))).unwrap_or_default();
    format!("postgres://{user}{password}@{host}:{port}/{}", config.get_dbname().unwrap_or("postgres"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.postgres.take() {
            if let Ok(mut client) = postgres::Client::connect(&admin, postgres::NoTls) {
                // WITH (FORCE): a server still holding pooled connections must not keep it alive.
                let _ = client.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// The operator token of every [`TestDispatch`]: a test value, long like a real one.
pub const OPERATOR_TOKEN: &str = "operator-token-for-tests-only-0123456789";

/// A dispatch server on a free loopback port, with its database in a temporary folder. Dropping
/// it stops the server (letting in-flight requests finish), then removes the folder.
pub struct TestDispatch {
    // Declared before `dir`, so that it stops before its database is deleted.
    server: Option<RunningServer>,
    db: PathBuf,
    database: TestDatabase,
    dir: tempfile::TempDir,
}

impl TestDispatch {
    /// Starts a server on a new, empty database (which creates dispatch's key pair).
    pub fn start() -> TestDispatch {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = dir.path().join("dispatch.db");
        let database = TestDatabase::new(&db);
        let mut dispatch = TestDispatch { server: None, db, database, dir };
        dispatch.boot();
        dispatch
    }

    fn boot(&mut self) {
        let server = RunningServer::start(ServerConfig {
            database: self.database.database(),
            addr: "127.0.0.1:0".parse().expect("a loopback address"),
            operator_token: OPERATOR_TOKEN.into(),
            timeouts: jobseal_dispatch::Timeouts::default(),
            metrics_token: None,
            // Every test's devices enrol from loopback, some hundreds of times in a run (the
            // power-loss suite): the per-source limit is tested on a server of its own
            // (`dispatch/tests/limits.rs::one_source_cannot_hammer_enrolment`).
            enrol_rate: jobseal_dispatch::EnrolRate { burst: u32::MAX, per_minute: u32::MAX },
        })
        .expect("dispatch starts");
        self.server = Some(server);
    }

    /// Stops the server and starts it again on the same database, on a new port: clients made
    /// before ([`TestDispatch::operator`], [`TestDispatch::client`], transports) point at the old
    /// port and must be made again.
    pub fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        self.boot();
    }

    /// The running server.
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("dispatch is running")
    }

    /// `http://127.0.0.1:PORT`, the base of every endpoint URL.
    pub fn base_url(&self) -> String {
        self.server().base_url()
    }

    /// Dispatch's public key, the one devices pin.
    pub fn key(&self) -> PublicKey {
        self.server().dispatch_key()
    }

    /// The SQLite database file, which survives [`TestDispatch::restart`]. On PostgreSQL runs
    /// the file does not exist: reach the database through [`TestDispatch::database`].
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The server's database (SQLite or PostgreSQL), for SQL that reaches past the API.
    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// The temporary folder holding the database; a test may put its devices' folders here too.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// A dispatcher's console on this server, with [`OPERATOR_TOKEN`].
    pub fn operator(&self) -> Operator {
        Operator::new(&self.base_url(), OPERATOR_TOKEN)
    }

    /// A plain HTTP client to this server, for requests with any token or none.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url())
    }

    /// The core's own HTTP transport to this server, as a device syncs through it.
    pub fn transport(&self) -> HttpTransport {
        HttpTransport::new(&self.base_url())
    }

    /// Enrols `vault` as a device over HTTP, pinning this server's key, with `prekeys` one-time
    /// prekeys and a fresh enrolment code from the operator; returns the device's public bundle
    /// (its `device_id` is the device's id here).
    pub fn enrol(&self, vault: &Vault, prekeys: u32) -> DeviceBundle {
        let code = self.operator().issue_code().code;
        vault.enrol_with_dispatch(&self.transport(), Some(self.key()), prekeys, Some(&code)).expect("the device enrols")
    }
}

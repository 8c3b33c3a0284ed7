//! The dispatch database: SQLite (one file, the embedded default) or PostgreSQL (shared by
//! several instances); one transaction per request (G6).
//!
//! Exactly-once ingestion rests on this module. Each request's writes, including the record of
//! which idempotency keys were applied, happen in a single transaction, so a crash or kill in the
//! middle of a request leaves either nothing or everything of it, and a device that retries after
//! losing the answer finds its keys already recorded.
//!
//! - **SQLite:** one connection behind a mutex, `BEGIN IMMEDIATE`, WAL with `synchronous = FULL`
//!   (a commit is durable before the answer leaves). Requests run one after the other.
//! - **PostgreSQL:** a pool of connections; every write transaction runs at `SERIALIZABLE`
//!   isolation, so whatever several instances do at once has the outcome of some serial order
//!   of the same transactions, the order SQLite's single writer would have chosen. A transaction
//!   that PostgreSQL aborts for a conflict is run again from the start ([`MAX_ATTEMPTS`]); this
//!   is what keeps exactly-once, single-use prekeys, sheet versions and receipt checks whole when
//!   one device's syncs land on two instances at the same moment. When PostgreSQL cannot be
//!   reached, the request fails with a storage error that the API answers with 503, nothing is
//!   half-written (the transaction never committed), and the pool reconnects on its own once the
//!   server is back.
//!
//! Both schemas come from the numbered migrations under `dispatch/migrations/`, run by refinery.
//! The SQL of the request logic is written once, through [`crate::db::Tx`].
//!
//! The schema is written for a backend team to read: UUIDs as text, times as milliseconds since
//! the Unix epoch (`*_ms`), keys and hashes as raw bytes.

use crate::db::{params, DbError, OptionalExtension, PgConn, Tx};
use crate::error::{ApiError, DispatchError};
use jobseal_protocol::envelope::{generate_keypair, PublicKey, SecretKey};
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

mod sqlite_migrations {
    refinery::embed_migrations!("migrations/sqlite");
}
mod postgres_migrations {
    refinery::embed_migrations!("migrations/postgres");
}

/// The schema version this server writes: the highest migration. SQLite databases also carry
/// it in `PRAGMA user_version`, which servers from before the migrations library read.
pub(crate) const VERSION: i64 = 4;

/// The [`Store::write_serialized`] key of enrolments and of issuing enrolment codes: they run
/// one at a time across instances. Under serializable isolation, concurrent enrolments (each
/// looking up, then inserting, random keys into the same small indexes) abort each other often
/// enough that a burst of them ran out of attempts; queued, they do not. A device enrols once, so
/// the queue is short. ("enrolmnt" in ASCII.)
pub(crate) const ENROLMENT_LOCK: i64 = 0x656e_726f_6c6d_6e74;

/// Longest a PostgreSQL statement may run (`statement_timeout`), and how long a connection may
/// go without its packets being acknowledged.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(15);
/// Longest a PostgreSQL transaction waits for a lock (`lock_timeout`), a device's advisory lock
/// included.
const LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// In-process locks in front of the advisory locks of [`Store::write_serialized`]: one device's
/// concurrent requests to this instance wait here, holding no pooled connection, so that one
/// device cannot fill the pool with requests waiting for its own lock. Keys share these 64 by
/// their low bits.
static KEY_STRIPES: [Mutex<()>; 64] = [const { Mutex::new(()) }; 64];

/// How many times a PostgreSQL write transaction is run when it keeps conflicting with
/// concurrent ones; after that the request gets 503 and the device retries later.
pub(crate) const MAX_ATTEMPTS: u32 = 20;

/// Which database a server uses.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Database {
    /// A SQLite file, created if missing (owner-only).
    Sqlite(PathBuf),
    /// A PostgreSQL server: a `postgres://` URL (libpq style). The URL may hold a password; it is
    /// never logged or shown (see the `Debug` implementation).
    Postgres(String),
}

impl Database {
    /// `postgres://` and `postgresql://` URLs (scheme in any case) name a PostgreSQL database;
    /// anything else is a SQLite file path. See [`Database::check_setting`] for what a
    /// configuration should refuse first.
    pub fn parse(setting: &str) -> Database {
        let lower = setting.get(..13).unwrap_or(setting).to_ascii_lowercase();
        if lower.starts_with("postgres://") || lower.starts_with("postgresql://") {
            Database::Postgres(setting.to_owned())
        } else {
            Database::Sqlite(PathBuf::from(setting))
        }
    }

    /// Refuses a `database` setting that is neither a file path nor a `postgres://` URL but looks
    /// like an attempt at one (another URL scheme, a libpq `key=value` string): taken as a file
    /// name, its password would end up in file names and messages. The error never repeats the
    /// setting.
    pub fn check_setting(setting: &str) -> Result<(), DispatchError> {
        if let Database::Postgres(_) = Database::parse(setting) {
            return Ok(());
        }
        let lower = setting.to_ascii_lowercase();
        if lower.contains("://") {
            return Err(DispatchError::Config(
                "database: only a SQLite file path or a postgres:// URL is supported".into(),
            ));
        }
        if ["password=", "host=", "user=", "dbname="].iter().any(|k| lower.contains(k)) {
            return Err(DispatchError::Config(
                "database: give PostgreSQL as a postgres:// URL (key=value connection strings are not supported)"
                    .into(),
            ));
        }
        Ok(())
    }

    /// The SQLite file, if that is the database.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Database::Sqlite(p) => Some(p),
            Database::Postgres(_) => None,
        }
    }
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Database::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
            // Host, port and database name only: never the user's password.
            Database::Postgres(url) => f.debug_tuple("Postgres").field(&redacted_url(url)).finish(),
        }
    }
}

impl From<PathBuf> for Database {
    fn from(p: PathBuf) -> Self {
        Database::Sqlite(p)
    }
}
impl From<&Path> for Database {
    fn from(p: &Path) -> Self {
        Database::Sqlite(p.to_path_buf())
    }
}

/// `postgres://host:port/name` without user, password or options, for logs and errors.
pub(crate) fn redacted_url(url: &str) -> String {
    match url.parse::<postgres::Config>() {
        Ok(c) => {
            let host = c
                .get_hosts()
                .first()
                .map(|h| match h {
                    postgres::config::Host::Tcp(h) => h.clone(),
                    #[cfg(unix)]
                    postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default();
            let port = c.get_ports().first().copied().unwrap_or(5432);
            format!("postgres://{host}:{port}/{}", c.get_dbname().unwrap_or(""))
        }
        Err(_) => "postgres://(unparsable URL)".into(),
    }
}

/// Whether an error is a PostgreSQL conflict worth running the transaction again for.
pub(crate) trait Retryable {
    /// True for a serialization failure, a deadlock or a concurrent duplicate key.
    fn is_retryable(&self) -> bool;
}
impl Retryable for DbError {
    fn is_retryable(&self) -> bool {
        DbError::is_retryable(self)
    }
}
impl Retryable for ApiError {
    fn is_retryable(&self) -> bool {
        ApiError::is_retryable(self)
    }
}
impl Retryable for DispatchError {
    fn is_retryable(&self) -> bool {
        matches!(self, DispatchError::Storage(e) if e.is_retryable())
    }
}

/// A pooled PostgreSQL connection: the client and its prepared statements.
pub(crate) struct PgConnection {
    client: postgres::Client,
    cache: PgConn,
}

/// Opens PostgreSQL connections for the pool (no TLS: run it on loopback or a private network;
/// see docs/operations.md).
struct PgManager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConnection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConnection, postgres::Error> {
        let client = self.config.connect(postgres::NoTls)?;
        Ok(PgConnection { client, cache: PgConn { statements: Default::default() } })
    }

    fn is_valid(&self, conn: &mut PgConnection) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConnection) -> bool {
        conn.client.is_closed()
    }
}

/// Reports the pool's connection failures through `tracing` (host and port only).
#[derive(Debug)]
struct PoolErrors;
impl r2d2::HandleError<postgres::Error> for PoolErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!(target: "jobseal_dispatch", "PostgreSQL connection failed: {}", DbError::from(error));
    }
}

// One per process: the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    Sqlite { conn: Mutex<Connection>, auth: Mutex<Connection>, views: Mutex<Connection> },
    Postgres { pool: r2d2::Pool<PgManager> },
}

/// The database. On SQLite: one writer connection behind one mutex (a single writer is what
/// SQLite wants anyway, and it makes the "one request, one transaction" rule simple to keep:
/// whoever holds the lock holds the transaction). On PostgreSQL: a pool, serializable write
/// transactions, retried on conflict.
///
/// Credentials are checked outside any write transaction ([`Store::authenticate`]): on SQLite on
/// a second, read-only connection with a mutex of its own (under WAL a reader never waits for the
/// writer), so a caller without a valid token is turned away without taking the write lock,
/// opening a transaction, or queueing behind a slow request that holds them (issue 14). The
/// operator's and the console's views read in a read-only snapshot ([`Store::read`]) for the same
/// reason: a privacy officer listing 500 jobs must not stall every device's sync. Lock order on
/// SQLite: never take one of the three mutexes while holding another; each is held for one call.
pub(crate) struct Store {
    backend: Backend,
}

impl Store {
    /// Opens (creating if needed) the database and brings its schema up to date.
    pub(crate) fn open(database: &Database) -> Result<Store, DispatchError> {
        match database {
            Database::Sqlite(path) => Self::open_sqlite(path),
            Database::Postgres(url) => Self::open_postgres(url),
        }
    }

    fn open_sqlite(path: &Path) -> Result<Store, DispatchError> {
        owner_only(path)?;
        let mut conn = Connection::open(path)?;
        // The database holds dispatch's secret key and the plaintext sheets: deleted rows are
        // overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", "ON")?;
        let secure: i64 = conn.query_row("PRAGMA secure_delete", [], |r| r.get(0))?;
        if secure != 1 {
            return Err(DispatchError::Integrity("secure_delete = ON was refused".into()));
        }
        // Every guarantee of exactly-once ingestion depends on these; read them back rather than
        // trust that the pragma took (journal_mode silently stays put on some file systems).
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(DispatchError::Integrity(format!("journal_mode is {mode}, WAL is required")));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
        if sync != 2 {
            return Err(DispatchError::Integrity("synchronous = FULL was refused".into()));
        }
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(Duration::from_secs(5))?;
        migrate_sqlite(&mut conn)?;
        // Opened after the writer has set up WAL and the schema: they only ever read.
        let reader = || -> Result<Connection, DispatchError> {
            let c = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
            )?;
            c.busy_timeout(Duration::from_secs(5))?;
            // Per connection, like the writer's; harmless where nothing is deleted.
            c.pragma_update(None, "secure_delete", "ON")?;
            Ok(c)
        };
        Ok(Store {
            backend: Backend::Sqlite {
                conn: Mutex::new(conn),
                auth: Mutex::new(reader()?),
                views: Mutex::new(reader()?),
            },
        })
    }

    fn open_postgres(url: &str) -> Result<Store, DispatchError> {
        let mut config: postgres::Config = url.parse().map_err(|_| {
            DispatchError::Config("the PostgreSQL URL could not be parsed (postgres://user@host:port/name)".into())
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if config.get_application_name().is_none() {
            config.application_name("jobseal-dispatch");
        }
        // No wait inside PostgreSQL is unbounded: a statement, a lock (a device's advisory lock
        // included) or an open transaction that runs out of time fails with an error the API
        // answers with 503, and the request changes nothing. Keepalives and the TCP user timeout
        // end connections to a server that stopped acknowledging.
        let limits = format!(
            "-c statement_timeout={} -c lock_timeout={} -c idle_in_transaction_session_timeout={}",
            STATEMENT_TIMEOUT.as_millis(),
            LOCK_TIMEOUT.as_millis(),
            STATEMENT_TIMEOUT.as_millis() * 2
        );
        let options = match config.get_options() {
            Some(own) => format!("{own} {limits}"),
            None => limits,
        };
        config.options(&options);
        config.keepalives(true).keepalives_idle(Duration::from_secs(30)).tcp_user_timeout(STATEMENT_TIMEOUT);
        let pool = r2d2::Pool::builder()
            .max_size(pool_size())
            .min_idle(Some(1))
            // A request that cannot get a connection in this time gets 503, not a hang.
            .connection_timeout(Duration::from_secs(5))
            .error_handler(Box::new(PoolErrors))
            .build(PgManager { config })
            .map_err(|e| DispatchError::Storage(DbError::Unavailable(format!("{} ({e})", redacted_url(url)))))?;
        {
            let mut conn = pool.get()?;
            migrate_postgres(&mut conn.client)?;
        }
        Ok(Store { backend: Backend::Postgres { pool } })
    }

    /// Runs `f` outside any write transaction, for the credentials checks: on SQLite on the
    /// read-only credentials connection (one statement there is one consistent snapshot, and under
    /// WAL it does not wait for the writer); on PostgreSQL in a read-only transaction.
    pub(crate) fn authenticate<T, E: From<DbError>>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite { auth, .. } => sqlite_read(auth, f),
            Backend::Postgres { .. } => self.read(f),
        }
    }

    fn sqlite_writer(conn: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        // A panic under the lock cannot leave a half-made change: the transaction it held rolls
        // back when dropped, so the connection is safe to keep using.
        conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one write transaction and commits only if it returns `Ok`. Every write of a
    /// request goes through here, once. On PostgreSQL `f` may run more than once (a serialization
    /// conflict rolls the attempt back entirely), so it must do nothing outside the transaction
    /// that a second run would repeat wrongly.
    pub(crate) fn write<T, E: From<DbError> + Retryable>(
        &self,
        f: impl FnMut(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        self.write_serialized(None, f)
    }

    /// [`Store::write`], and on PostgreSQL the transactions given the same `key` run one after
    /// the other, across every instance (a session advisory lock, taken before the transaction
    /// begins so that its snapshot is taken after the wait). A device's requests use a key derived
    /// from its token: its own retried or duplicated syncs landing on several instances queue
    /// instead of failing each other's serializable transactions over and over. Correctness does
    /// not depend on the key (the transactions are serializable either way); throughput under
    /// such duplicates does.
    pub(crate) fn write_serialized<T, E: From<DbError> + Retryable>(
        &self,
        key: Option<i64>,
        mut f: impl FnMut(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite { conn, .. } => {
                let mut conn = Self::sqlite_writer(conn);
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(DbError::from)?;
                let out = f(&Tx::Sqlite(&tx))?;
                tx.commit().map_err(DbError::from)?;
                Ok(out)
            }
            Backend::Postgres { pool } => {
                // One budget for both waits (the stripe here, the advisory lock in PostgreSQL).
                let key = key.map(|k| (k, std::time::Instant::now() + LOCK_TIMEOUT));
                let _stripe = match key {
                    Some((k, deadline)) => Some(stripe(k, deadline).map_err(E::from)?),
                    None => None,
                };
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match Self::pg_attempt(pool, postgres::IsolationLevel::Serializable, false, key, &mut f) {
                        Err(e) if e.is_retryable() && attempt < MAX_ATTEMPTS => {
                            // Back off a little, more each time, with jitter so that two
                            // instances that collided do not collide again in step.
                            let jitter = u64::from(uuid::Uuid::new_v4().as_bytes()[0] % 16);
                            std::thread::sleep(Duration::from_millis((u64::from(attempt) * 4).min(50) + jitter));
                        }
                        Err(e) if e.is_retryable() => {
                            return Err(E::from(DbError::Unavailable(format!(
                                "a write conflicted with concurrent ones {MAX_ATTEMPTS} times"
                            ))))
                        }
                        other => return other,
                    }
                }
            }
        }
    }

    fn pg_attempt<T, E: From<DbError>>(
        pool: &r2d2::Pool<PgManager>,
        isolation: postgres::IsolationLevel,
        read_only: bool,
        key: Option<(i64, std::time::Instant)>,
        f: impl FnOnce(&Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut pooled = pool.get().map_err(DbError::from)?;
        let PgConnection { client, cache } = &mut *pooled;
        if let Some((key, deadline)) = key {
            // Polled rather than waited for, so that the wait ends at the request's deadline.
            while !client
                .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
                .map_err(DbError::from)?
                .get::<_, bool>(0)
            {
                if std::time::Instant::now() >= deadline {
                    return Err(E::from(DbError::Unavailable(
                        "the device's earlier requests are still running".into(),
                    )));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let key = key.map(|(key, _)| key);
        // The closure runs under catch_unwind so that a panic in it still releases the advisory
        // lock below, rather than leaving it held by a connection that goes back to the pool.
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let tx = client
                .build_transaction()
                .isolation_level(isolation)
                .read_only(read_only)
                .start()
                .map_err(DbError::from)?;
            let tx = Tx::Postgres(std::cell::RefCell::new(cache), std::cell::RefCell::new(tx));
            let out = f(&tx)?;
            let Tx::Postgres(_, tx) = tx else { unreachable!("built as Postgres above") };
            tx.into_inner().commit().map_err(DbError::from)?;
            Ok(out)
        }));
        if let Some(key) = key {
            // On a broken connection the session, and with it the lock, is gone already.
            let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
        }
        match out {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }

    /// Runs `f` in a read-only snapshot (of everything committed when it starts) that never waits
    /// for, nor holds up, the writer: on SQLite a read transaction on the views connection, on
    /// PostgreSQL a `REPEATABLE READ READ ONLY` transaction.
    pub(crate) fn read<T, E: From<DbError>>(&self, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E> {
        match &self.backend {
            Backend::Sqlite { views, .. } => sqlite_read(views, f),
            Backend::Postgres { pool } => {
                Self::pg_attempt(pool, postgres::IsolationLevel::RepeatableRead, true, None, f)
            }
        }
    }

    /// Loads dispatch's key pair, creating it on first start.
    pub(crate) fn server_key(&self) -> Result<(SecretKey, PublicKey), DispatchError> {
        self.write(|tx| {
            let row: Option<(Vec<u8>, Vec<u8>)> = tx
                .query_row("SELECT secret_key, public_key FROM server_key WHERE singleton = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .optional()?;
            match row {
                Some((secret, public)) => {
                    // The secret also sits in the database's page cache, so wiping this copy would
                    // buy little; a deployment that cares keeps the key in an HSM/KMS instead.
                    let bytes: [u8; 32] = secret
                        .as_slice()
                        .try_into()
                        .map_err(|_| DispatchError::Integrity("stored dispatch key has the wrong length".into()))?;
                    let sk = SecretKey::from_bytes(&bytes)
                        .map_err(|_| DispatchError::Integrity("stored dispatch key is unusable".into()))?;
                    if sk.public_key().as_bytes().as_slice() != public.as_slice() {
                        return Err(DispatchError::Integrity(
                            "stored dispatch public key does not match its secret".into(),
                        ));
                    }
                    let pk = sk.public_key();
                    Ok((sk, pk))
                }
                None => {
                    // Two instances starting on an empty PostgreSQL database both get here; the
                    // second one's insert conflicts, its transaction runs again and reads the
                    // first one's key.
                    let (sk, pk) = generate_keypair()?;
                    tx.execute(
                        "INSERT INTO server_key (singleton, secret_key, public_key, created_ms) VALUES (1, ?1, ?2, ?3)",
                        params![sk.to_bytes().as_slice(), pk.as_bytes().as_slice(), now_ms()],
                    )?;
                    Ok((sk, pk))
                }
            }
        })
    }

    /// On SQLite, checkpoints the WAL into the main file and closes the connections; on
    /// PostgreSQL, closes the pool's connections.
    pub(crate) fn close(self) {
        let Backend::Sqlite { conn, auth, views } = self.backend else { return };
        for reader in [auth, views] {
            let reader = reader.into_inner().unwrap_or_else(|p| p.into_inner());
            if let Err((_, e)) = reader.close() {
                tracing::warn!(target: "jobseal_dispatch", "closing a read-only connection failed: {e}");
            }
        }
        let conn = conn.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
            tracing::warn!(target: "jobseal_dispatch", "checkpoint at shutdown failed: {e}");
        }
        if let Err((_, e)) = conn.close() {
            tracing::warn!(target: "jobseal_dispatch", "closing the database failed: {e}");
        }
    }
}

/// Takes the in-process lock of `key`'s stripe, waiting until `deadline` (the request's
/// [`LOCK_TIMEOUT`], shared with the advisory lock's wait): a device whose requests keep
/// queueing gets 503 instead of an answer that never comes.
fn stripe(key: i64, deadline: std::time::Instant) -> Result<MutexGuard<'static, ()>, DbError> {
    let lock = &KEY_STRIPES[usize::try_from(key.rem_euclid(KEY_STRIPES.len() as i64)).unwrap_or(0)];
    loop {
        match lock.try_lock() {
            Ok(guard) => return Ok(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => return Ok(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(std::sync::TryLockError::WouldBlock) => {
                return Err(DbError::Unavailable("the device's earlier requests are still running".into()))
            }
        }
    }
}

/// Runs `f` in a read transaction on one of SQLite's read-only connections.
fn sqlite_read<T, E: From<DbError>>(conn: &Mutex<Connection>, f: impl FnOnce(&Tx<'_>) -> Result<T, E>) -> Result<T, E> {
    let mut conn = conn.lock().unwrap_or_else(|p| p.into_inner());
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred).map_err(DbError::from)?;
    let out = f(&Tx::Sqlite(&tx));
    out
}

/// Connections per instance in the PostgreSQL pool: `JOBSEAL_DISPATCH_PG_POOL` (1-256), else 16.
fn pool_size() -> u32 {
    std::env::var("JOBSEAL_DISPATCH_PG_POOL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| (1..=256).contains(n))
        .unwrap_or(16)
}

/// Brings a SQLite database up to the latest migration. A database made before the migrations
/// library (it has a `user_version` but no history table) is first recorded as being at its
/// `user_version`, so that only the later steps run. A database newer than this server is
/// refused before anything is changed.
fn migrate_sqlite(conn: &mut Connection) -> Result<(), DispatchError> {
    let user_version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if user_version > VERSION {
        return Err(DispatchError::Integrity(format!(
            "database schema version {user_version} is newer than this server ({VERSION})"
        )));
    }
    let has_history: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = 'refinery_schema_history'",
        [],
        |r| r.get(0),
    )?;
    if !has_history && user_version > 0 {
        let at = i32::try_from(user_version).map_err(|_| DispatchError::Integrity("bad user_version".into()))?;
        unpanicked(|| sqlite_migrations::migrations::runner().set_target(refinery::Target::FakeVersion(at)).run(conn))?;
    }
    unpanicked(|| sqlite_migrations::migrations::runner().set_abort_missing(true).run(conn))?;
    conn.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// Brings a PostgreSQL database up to the latest migration, under an advisory lock so that
/// instances starting together migrate one after the other (the second finds nothing to do).
/// A database with migrations this server does not know is refused.
fn migrate_postgres(client: &mut postgres::Client) -> Result<(), DispatchError> {
    // The lock's key: "jobseal" in ASCII, a number no other user of the database is likely to take.
    const LOCK: i64 = 0x006a_6f62_7365_616c;
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK])?;
    let result = unpanicked(|| postgres_migrations::migrations::runner().set_abort_missing(true).run(client));
    let unlocked = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]);
    result?;
    unlocked?;
    Ok(())
}

/// Runs refinery, turning its panics (it panics on a history row it cannot parse, such as a
/// tampered checksum or date) into an error that names the history table.
fn unpanicked<T>(run: impl FnOnce() -> Result<T, refinery::Error>) -> Result<T, DispatchError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
        Ok(result) => result.map_err(migration_error),
        Err(_) => Err(DispatchError::Integrity(
            "the migration history (refinery_schema_history) is unreadable; restore the database from a backup".into(),
        )),
    }
}

fn migration_error(e: refinery::Error) -> DispatchError {
    match e.kind() {
        refinery::error::Kind::MissingVersion(m) => DispatchError::Integrity(format!(
            "database schema version {} is newer than this server ({VERSION})",
            m.version()
        )),
        _ => DispatchError::Integrity(format!("migrating the schema failed: {e}")),
    }
}

/// Milliseconds since the Unix epoch, now.
/// Creates the database file owner-only if it does not exist (SQLite gives its WAL and shared
/// memory files the same permissions), and makes an existing one owner-only: it holds dispatch's
/// secret key and every sheet in plaintext.
fn owner_only(path: &Path) -> Result<(), DispatchError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let fail = |e: std::io::Error| DispatchError::Integrity(format!("cannot make the database owner-only: {e}"));
        match std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(fail)?
            }
            Err(e) => return Err(fail(e)),
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A timestamp column as a `DateTime`.
pub(crate) fn time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    jobseal_protocol::time::from_ms(ms)
}

/// Maps "no row" to a 404 with a value-free message.
pub(crate) fn found<T>(row: Option<T>, what: impl FnOnce() -> String) -> Result<T, ApiError> {
    row.ok_or_else(|| ApiError::not_found(what()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA_V1: &str = include_str!("../migrations/sqlite/V1__devices_jobs_and_sync.sql");
    const SCHEMA_V2: &str = include_str!("../migrations/sqlite/V2__authenticated_enrolment.sql");
    const SCHEMA_V3: &str = include_str!("../migrations/sqlite/V3__keyed_audit_chains_and_prekey_requests.sql");

    #[test]
    fn a_fresh_database_has_the_current_schema_and_reopens_with_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path.clone().into()).unwrap();
        let (_, first) = store.server_key().unwrap();
        store.close();
        let store = Store::open(&path.clone().into()).unwrap();
        let (secret, again) = store.server_key().unwrap();
        assert_eq!(first, again);
        assert_eq!(secret.public_key(), again);
        let version: i64 = store.read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0))).unwrap();
        assert_eq!(version, VERSION);
        store.close();
    }

    #[cfg(unix)]
    #[test]
    fn the_database_is_owner_only_and_overwrites_what_it_deletes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dispatch.db");
        let store = Store::open(&path.clone().into()).unwrap();
        store.write(|tx| tx.execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("dispatch.db-wal")), 0o600);
        // On the writer, which deletes; and on the views connection too.
        let secure: i64 = store.write(|c| c.query_row("PRAGMA secure_delete", [], |r| r.get(0))).unwrap();
        assert_eq!(secure, 1);
        let secure: i64 = store.read(|c| c.query_row("PRAGMA secure_delete", [], |r| r.get(0))).unwrap();
        assert_eq!(secure, 1);
        store.close();
        // An existing database readable by everyone is made owner-only at open.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        Store::open(&path.clone().into()).unwrap().close();
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_version_1_database_is_upgraded_with_the_enrolment_tables() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let store = Store::open(&path.clone().into()).unwrap();
        let tables: i64 = store
            .read(|tx| {
                tx.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE name IN ('enrolment_codes', 'enrolment_nonces')",
                    [],
                    |r| r.get(0),
                )
            })
            .unwrap();
        assert_eq!(tables, 2);
        let version: i64 = store.read(|tx| tx.query_row("PRAGMA user_version", [], |r| r.get(0))).unwrap();
        assert_eq!(version, VERSION);
        store.close();
    }

    /// A version 3 database (before issue 14's limits) upgrades with the limits' columns at
    /// their neutral values: nothing pruned, no quota used, no failed code attempts; and it ends
    /// with the same schema as a fresh database.
    #[test]
    fn a_version_3_database_is_upgraded_with_the_limits_columns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(SCHEMA_V1).unwrap();
            conn.execute_batch(SCHEMA_V2).unwrap();
            conn.execute_batch(SCHEMA_V3).unwrap();
            conn.pragma_update(None, "user_version", 3).unwrap();
            conn.execute_batch(
                "INSERT INTO devices (device_id, identity_key, token_hash, enrolled_ms) VALUES ('d', x'00', x'01', 0);
                 INSERT INTO enrolment_codes (code_id, proof_key, created_ms, expires_ms) VALUES ('C0DE0', x'00', 0, 1);",
            )
            .unwrap();
        }
        let store = Store::open(&path.clone().into()).unwrap();
        let row: (i64, i64, Option<i64>, i64, i64, i64, i64) = store
            .read(|tx| {
                tx.query_row(
                    "SELECT applied_floor_seq, applied_pruned, quota_window_ms, quota_events, quota_audit,
                            quota_reports, (SELECT failed_attempts FROM enrolment_codes)
                     FROM devices",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)),
                )
            })
            .unwrap();
        assert_eq!(row, (0, 0, None, 0, 0, 0, 0));
        let schema = |store: &Store| -> Vec<(String, String)> {
            store
                .read(|tx| {
                    tx.prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")?
                        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect()
                })
                .unwrap()
        };
        let upgraded = schema(&store);
        store.close();
        let fresh = Store::open(&dir.path().join("fresh.db").into()).unwrap();
        assert_eq!(upgraded, schema(&fresh));
        fresh.close();
    }

    #[test]
    fn a_postgres_url_is_recognised_and_its_password_never_printed() {
        let db = Database::parse("postgres://jobseal:secret-canary@db.example:6543/dispatch?sslmode=disable");
        assert!(matches!(db, Database::Postgres(_)) && db.sqlite_path().is_none());
        let shown = format!("{db:?}");
        assert_eq!(shown, "Postgres(\"postgres://db.example:6543/dispatch\")");
        assert_eq!(redacted_url("postgres://u:p@h:notaport/d"), "postgres://(unparsable URL)");
        assert_eq!(Database::parse("postgresql://h/d").sqlite_path(), None);
        assert_eq!(Database::parse("dispatch.db").sqlite_path(), Some(Path::new("dispatch.db")));
    }

    #[test]
    fn a_newer_schema_is_refused_and_a_failed_write_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.db");
        let store = Store::open(&path.clone().into()).unwrap();
        let failed: Result<(), DbError> = store.write(|tx| {
            tx.execute("INSERT INTO server_key VALUES (1, x'00', x'00', 0)", [])?;
            Err(DbError::NoRows)
        });
        assert!(failed.is_err());
        let n: i64 = store.read(|tx| tx.query_row("SELECT count(*) FROM server_key", [], |r| r.get(0))).unwrap();
        assert_eq!(n, 0);
        store
            .write(|tx| -> Result<(), DbError> {
                Ok(tx.sqlite().unwrap().pragma_update(None, "user_version", VERSION + 1)?)
            })
            .unwrap();
        store.close();
        assert!(matches!(Store::open(&path.clone().into()), Err(DispatchError::Integrity(_))));
        // Newer by its migration history alone (user_version as this server writes it): refused
        // too, and left as it was.
        let path = dir.path().join("e.db");
        Store::open(&path.clone().into()).unwrap().close();
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "INSERT INTO refinery_schema_history (version, name, applied_on, checksum) VALUES (?1, 'future', '2026-01-01T00:00:00Z', '0')",
            [VERSION + 1],
        )
        .unwrap();
        drop(conn);
        let refused = Store::open(&path.clone().into());
        assert!(matches!(&refused, Err(DispatchError::Integrity(m)) if m.contains("newer")), "{:?}", refused.err());
    }
}

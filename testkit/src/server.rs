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

use crate::operator::{Client, Operator};
use jobseal::{DeviceBundle, HttpTransport, PublicKey, Vault};
use jobseal_dispatch::{RunningServer, ServerConfig};
use std::path::{Path, PathBuf};

/// The operator token of every [`TestDispatch`]: a test value, long like a real one.
pub const OPERATOR_TOKEN: &str = "operator-token-for-tests-only-0123456789";

/// A dispatch server on a free loopback port, with its database in a temporary folder. Dropping
/// it stops the server (letting in-flight requests finish), then removes the folder.
pub struct TestDispatch {
    // Declared before `dir`, so that it stops before its database is deleted.
    server: Option<RunningServer>,
    db: PathBuf,
    dir: tempfile::TempDir,
}

impl TestDispatch {
    /// Starts a server on a new, empty database (which creates dispatch's key pair).
    pub fn start() -> TestDispatch {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let db = dir.path().join("dispatch.db");
        let mut dispatch = TestDispatch { server: None, db, dir };
        dispatch.boot();
        dispatch
    }

    fn boot(&mut self) {
        let server = RunningServer::start(ServerConfig {
            db_path: self.db.clone(),
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

    /// The database file, which survives [`TestDispatch::restart`].
    pub fn db_path(&self) -> &Path {
        &self.db
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

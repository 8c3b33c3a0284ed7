//! Running the server from blocking code: the CLI, the demo and the tests (G6).
//!
//! Callers of this crate are synchronous, so the tokio runtime is an implementation detail kept
//! on a thread of its own. [`RunningServer::start`] returns only once the socket is listening
//! (connections made after it returns are queued, never refused), and
//! [`RunningServer::shutdown`] stops accepting, lets in-flight requests finish, and closes the
//! database; a restart on the same file continues where the last one stopped.

use crate::api::router;
use crate::error::DispatchError;
use crate::service::Service;
use jobseal_protocol::envelope::PublicKey;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long shutdown waits for blocking work (database calls) still running after the last
/// connection closed. Requests are short; this only bounds a pathological case.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How to run a dispatch server.
#[derive(Clone)]
pub struct ServerConfig {
    /// The SQLite database file (created on first start, with dispatch's key pair).
    pub db_path: PathBuf,
    /// Where to listen; port 0 picks a free port (see [`RunningServer::addr`]).
    pub addr: SocketAddr,
    /// The bearer token of the operator endpoints. Use a long random value (for example 32
    /// random bytes in hex); it must not be empty.
    pub operator_token: String,
}

impl std::fmt::Debug for ServerConfig {
    // The operator token is a credential: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("db_path", &self.db_path)
            .field("addr", &self.addr)
            .field("operator_token", &"<redacted>")
            .finish()
    }
}

/// A dispatch server listening on a socket, its tokio runtime on a thread of its own.
/// Dropping it shuts it down as [`RunningServer::shutdown`] does.
pub struct RunningServer {
    addr: SocketAddr,
    dispatch_key: PublicKey,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// Opens the database (creating it and dispatch's key pair on first start), binds `addr`
    /// and starts serving. Returns once the socket is listening.
    pub fn start(config: ServerConfig) -> Result<RunningServer, DispatchError> {
        let service = Service::open(&config.db_path, &config.operator_token)?;
        let dispatch_key = service.public;
        let listener = std::net::TcpListener::bind(config.addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("jobseal-dispatch-worker")
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name("jobseal-dispatch".into()).spawn(move || {
            let service = Arc::new(service);
            let served = runtime.block_on(async {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                axum::serve(listener, router(service.clone()))
                    .with_graceful_shutdown(async {
                        // Either an explicit stop or the handle being dropped ends the server.
                        let _ = stopped.await;
                    })
                    .await
            });
            if let Err(e) = served {
                eprintln!("jobseal-dispatch: server stopped with an error: {e}");
            }
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
            // Every request holding a reference has finished, so this is the last one and the
            // database closes cleanly; if not, dropping it still rolls back and closes.
            match Arc::try_unwrap(service) {
                Ok(service) => service.close(),
                Err(_) => eprintln!("jobseal-dispatch: a request outlived shutdown; database closed on drop"),
            }
        })?;
        Ok(RunningServer { addr, dispatch_key, stop: Some(stop), thread: Some(thread) })
    }

    /// The address the server listens on (with the real port when 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the base of every endpoint URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Dispatch's public key, the one devices pin at enrolment.
    pub fn dispatch_key(&self) -> PublicKey {
        self.dispatch_key
    }

    /// Stops accepting connections, lets in-flight requests finish, closes the database and
    /// returns once all of that is done.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                eprintln!("jobseal-dispatch: the server thread panicked");
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

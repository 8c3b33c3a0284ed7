//! Running the server from blocking code: the CLI, the demo and the tests (G6).
//!
//! Callers of this crate are synchronous, so the tokio runtime is an implementation detail kept
//! on a thread of its own. [`RunningServer::start`] returns only once the socket is listening
//! (connections made after it returns are queued, never refused), and
//! [`RunningServer::shutdown`] stops accepting, lets in-flight requests finish, and closes the
//! database; a restart on the same file continues where the last one stopped.
//!
//! The accept loop is this module's own rather than `axum::serve`, which has no header or idle
//! timeout: a client that opens connections and sends nothing, or half a header line, or a body
//! byte by byte, would hold a connection (and a task) for as long as it liked (issue 14: 200 such
//! connections were held for 65 s and counting). Each connection is served by hyper's HTTP/1
//! server with a header-read timeout, which hyper also applies while a kept-alive connection
//! waits for its next request, so it is the idle limit as well; the body-read timeout is the
//! handlers' (`api::read_body`, 408).

use crate::api::router;
use crate::error::DispatchError;
use crate::ratelimit::{EnrolRate, SourceLimiter};
use crate::service::Service;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use jobseal_protocol::envelope::PublicKey;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// How long shutdown waits for blocking work (database calls) still running after the last
/// connection closed. Requests are short; this only bounds a pathological case.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How long the server waits for a slow or silent client. The defaults suit devices on mobile
/// networks; tests use short ones.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// How long a connection may take to send a request's headers, counted from when the server
    /// starts waiting for them: from the connection's opening, and on a kept-alive connection
    /// from the end of the previous answer, so this is also how long an idle connection is kept.
    /// Past it the connection is closed.
    pub header_read: Duration,
    /// How long a request's body may take to arrive, counted from when the endpoint starts
    /// reading it (after the credentials check). Past it the answer is 408 `timeout` and the
    /// connection is closed.
    pub body_read: Duration,
}

impl Default for Timeouts {
    /// 15 s for headers (and idle connections), 60 s for a body: a 1 MiB body needs about
    /// 18 KB/s, which a poor mobile uplink still gives.
    fn default() -> Self {
        Timeouts { header_read: Duration::from_secs(15), body_read: Duration::from_secs(60) }
    }
}

/// How to run a dispatch server.
#[derive(Clone)]
pub struct ServerConfig {
    /// The database: a SQLite file (created on first start, with dispatch's key pair), or a
    /// PostgreSQL database shared with other instances ([`crate::Database`]).
    pub database: crate::Database,
    /// Where to listen; port 0 picks a free port (see [`RunningServer::addr`]).
    pub addr: SocketAddr,
    /// The bearer token of the operator endpoints. Use a long random value (for example 32
    /// random bytes in hex); it must not be empty.
    pub operator_token: String,
    /// How long to wait for slow or silent clients ([`Timeouts::default`] unless testing).
    pub timeouts: Timeouts,
    /// The bearer token of `GET /metrics` for a Prometheus scrape. `None`: `/metrics` takes the
    /// operator token. A separate token lets monitoring read counters without being able to
    /// create jobs or wipe devices.
    pub metrics_token: Option<String>,
    /// How many enrolment requests one source address may make ([`EnrolRate::default`] unless
    /// testing, or behind a proxy that limits them itself).
    pub enrol_rate: EnrolRate,
}

impl std::fmt::Debug for ServerConfig {
    // The operator token is a credential: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("database", &self.database)
            .field("addr", &self.addr)
            .field("operator_token", &"<redacted>")
            .field("timeouts", &self.timeouts)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "<redacted>"))
            .field("enrol_rate", &self.enrol_rate)
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

/// Accepts connections until `stopped` fires (an explicit stop, or the handle dropped), then
/// stops accepting, lets every connection finish the request it is serving (a kept-alive one
/// is closed once idle) and returns when they are all closed, or after [`SHUTDOWN_GRACE`].
async fn serve(listener: TcpListener, app: Router, timeouts: Timeouts, stopped: oneshot::Receiver<()>) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(timeouts.header_read).keep_alive(true);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // The peer's address goes with each request, for the per-source enrolment
                    // limit (`crate::ratelimit`).
                    let app = TowerToHyperService::new(app.clone());
                    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(ConnectInfo(peer));
                        hyper::service::Service::call(&app, req)
                    });
                    let connection = http.serve_connection(TokioIo::new(stream), service);
                    let connection = graceful.watch(connection);
                    // A connection's end (closed, timed out, or a protocol error) concerns that
                    // client only.
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                // The peer gave up before it was accepted: nothing to do.
                Err(e) if matches!(
                    e.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::ConnectionRefused
                ) => {}
                // Out of file descriptors and the like: give the open connections time to end
                // instead of spinning.
                Err(e) => {
                    tracing::warn!(target: "jobseal_dispatch", "accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
        }
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await.is_err() {
        tracing::warn!(target: "jobseal_dispatch", "connections still open after the shutdown grace period; closing them");
    }
}

impl RunningServer {
    /// Opens the database (creating it and dispatch's key pair on first start), binds `addr`
    /// and starts serving. Returns once the socket is listening.
    pub fn start(config: ServerConfig) -> Result<RunningServer, DispatchError> {
        let mut service = Service::open(&config.database, &config.operator_token)?;
        service.body_read_timeout = config.timeouts.body_read;
        if let Some(token) = config.metrics_token.as_deref() {
            if token.trim().is_empty() {
                return Err(DispatchError::Config("the metrics token must not be empty".into()));
            }
            service.set_metrics_token(token.trim());
        }
        service.enrol_limiter = Some(SourceLimiter::new(config.enrol_rate));
        let timeouts = config.timeouts;
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
                serve(listener, router(service.clone()), timeouts, stopped).await;
                Ok::<(), std::io::Error>(())
            });
            if let Err(e) = served {
                tracing::warn!(target: "jobseal_dispatch", "server stopped with an error: {e}");
            }
            runtime.shutdown_timeout(SHUTDOWN_GRACE);
            // Every request holding a reference has finished, so this is the last one and the
            // database closes cleanly; if not, dropping it still rolls back and closes.
            match Arc::try_unwrap(service) {
                Ok(service) => service.close(),
                Err(_) => tracing::warn!(target: "jobseal_dispatch", "a request outlived shutdown; database closed on drop"),
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
                tracing::warn!(target: "jobseal_dispatch", "the server thread panicked");
            }
        }
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

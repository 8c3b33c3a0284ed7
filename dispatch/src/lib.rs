//! jobseal-dispatch: the reference dispatch server.
//!
//! The device side of jobseal (the `jobseal` crate) is only half of the protocol; this crate is
//! the other half, written to be read by a backend team as the reference. It enrols devices,
//! seals each job sheet to a one-time prekey of the assigned device (G4), serves sync: applies
//! the device's outbox exactly once and answers with envelopes and revocations (G5, G6), checks
//! each device's audit hash chain and verifies shred receipts (G7), and shows an operator what
//! happened to every job. The store is one SQLite file; every request is one transaction.
//!
//! `docs/sync.md` specifies the endpoints. Rust callers use [`RunningServer`]:
//!
//! ```no_run
//! use jobseal_dispatch::{Database, EnrolRate, RunningServer, ServerConfig, Timeouts};
//! let server = RunningServer::start(ServerConfig {
//!     database: Database::parse("dispatch.db"), // or Database::parse("postgres://…")
//!     addr: "127.0.0.1:0".parse().unwrap(),
//!     operator_token: "a long random token".into(),
//!     timeouts: Timeouts::default(),
//!     metrics_token: None,
//!     enrol_rate: EnrolRate::default(),
//! })?;
//! println!("dispatch at {} with key {}", server.base_url(), server.dispatch_key());
//! server.shutdown();
//! # Ok::<(), jobseal_dispatch::DispatchError>(())
//! ```

#![warn(missing_docs)]

mod api;
mod console;
mod db;
mod devices;
mod enrolment;
mod error;
mod ingest;
mod jobs;
pub mod openapi;
pub mod operator;
mod ratelimit;
mod server;
mod service;
mod store;
mod telemetry;

pub use devices::{MAX_PREKEYS_HELD, MAX_PREKEYS_PER_CALL, PREKEY_LOW_WATER, PREKEY_TARGET};
pub use enrolment::{DEFAULT_CODE_VALIDITY_SECS, MAX_CODE_FAILURES, MAX_CODE_VALIDITY_SECS};
pub use db::DbError;
pub use error::DispatchError;
pub use ingest::{
    APPLIED_KEY_HORIZON_MS, CHAIN_STEPS_PER_SYNC, MAX_AUDIT_DETAIL_CHARS, MAX_AUDIT_FIELD_CHARS,
    MAX_AUDIT_RECORDS_PER_WINDOW, MAX_EVENTS_PER_WINDOW, MAX_REPORTS_PER_WINDOW, MAX_REPORT_CHARS, QUOTA_WINDOW_MS,
};
use jobseal_protocol::envelope::PublicKey;
pub use operator::{
    AuditEntryView, ChainMark, ChainStatus, CodeStatus, CreateJobRequest, CreateJobResponse, DeliveryStatus,
    DeliveryView, DeviceJobView, DeviceView, EnrolmentCodeView, EnrolmentCodesView, IssueCodeRequest, IssuedCode,
    JobStatus, JobView, ReassignRequest, ReceiptView, ReportView, RevocationStatus, RevocationView, StateChangeView,
    WipeResponse,
};
pub use ratelimit::EnrolRate;
pub use server::{RunningServer, ServerConfig, Timeouts};
pub use store::Database;

/// A fresh operator token: 32 random bytes in hex, for when none is configured. Fails only when
/// the operating system's random number generator does.
pub fn generate_operator_token() -> Result<String, DispatchError> {
    service::new_device_token()
}

/// The server's HTTP application without a socket, for in-process callers (the fuzz targets of
/// `jobseal-fuzz`, which send it requests with `tower::ServiceExt::oneshot`): the same router,
/// database and credential checks as [`RunningServer`], opened on `db_path` with
/// `operator_token`. Returns the router and dispatch's public key. Handlers use tokio's blocking
/// pool, so the router must be driven inside a tokio runtime. The database closes when the last
/// clone of the router is dropped.
pub fn router(db_path: &std::path::Path, operator_token: &str) -> Result<(axum::Router, PublicKey), DispatchError> {
    let service = service::Service::open(&Database::Sqlite(db_path.to_path_buf()), operator_token)?;
    let key = service.public;
    Ok((api::router(std::sync::Arc::new(service)), key))
}

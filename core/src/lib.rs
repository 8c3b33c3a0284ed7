//! jobseal: the privacy core of a field-service technician's app.
//!
//! A technician's phone holds job sheets with customer data (name, phone, address, door code). This
//! crate keeps that data encrypted under a key of each job's own, shows it only while the job's
//! state and access window allow it, records every read in a hash-chained audit log, and destroys
//! it (crypto-shredding with key rotation) when the job ends, so that not even a copy of the
//! phone's files brings it back. It is pure Rust; the UniFFI bindings live in a separate crate.
//!
//! Start with [`Vault::open`], giving it a [`KeyStore`] and a [`Clock`].

// Layers, each using only those above it in this list (see docs/architecture.md):
// the protocol crate (pure data and crypto, re-exported here) and the platform seams; storage (the only SQL); the keyring (every wrapped secret) and the journal
// (audit chain and outbox); the public vault API.
pub use jobseal_protocol::{answer, audit, bundle, crypto, enrolment, envelope, hex, pairing, policy, receipt, sheet};

pub mod clock;
mod error;
pub mod keys;
mod model;
pub mod sync;

pub mod store;

mod integrity;
mod journal;
mod keyring;

mod vault;

pub use audit::{AuditEvent, AuditKind, AuditVerification, RevealSummary};
pub use bundle::{seal_job_sheet, DeviceBundle, Prekey, BUNDLE_FORMAT, MAX_PREKEYS_PER_CALL};
pub use clock::{Clock, ManualClock, SystemClock};
pub use crypto::SecretString;
pub use envelope::{PublicKey, RecipientKeyId, SecretKey};
pub use error::{Error, ErrorKind, Result};
pub use jobseal_protocol::Error as ProtocolError;
pub use keys::{FileKeyStore, KeyFiles, KeyStore, KeyStoreError, OsKeyFiles};
pub use model::{FieldAccess, FieldInfo, JobInfo, Reveal, RevealedField, ShredOutcome, MAX_REPORT_CHARS};
pub use policy::{AccessWindow, Denial, JobState};
pub use receipt::ShredReceipt;
pub use sheet::{AccessRules, CustomerField, FieldKind, JobSheet, ScheduledWindow, WorkDetails};
#[cfg(feature = "http-transport")]
pub use sync::http::HttpTransport;
pub use sync::{HttpRequest, HttpResponse, PendingCall, SyncReport, SyncStatus, Transport, TransportError};
pub use vault::{Vault, VaultEvent, VaultObserver};

/// The folder of a vault directory that [`FileKeyStore`] uses by convention.
pub const KEYSTORE_DIR: &str = "keystore";

/// Aborts the process at a named point when the crash-injection tests ask for it. Compiled to
/// nothing unless the `insecure-test-hooks` feature is on.
#[inline(always)]
pub(crate) fn crash_point(name: &str) {
    #[cfg(feature = "insecure-test-hooks")]
    if std::env::var("JOBSEAL_CRASH_POINT").is_ok_and(|v| v == name) {
        std::process::abort();
    }
    #[cfg(not(feature = "insecure-test-hooks"))]
    let _ = name;
}

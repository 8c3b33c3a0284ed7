//! Errors of the core, rich and internal (G8).
//!
//! Every failure a caller can meet is a typed variant here, so the bindings can map each one to
//! something an app can act on. Messages are written for logs and crash reports, which is why no
//! variant carries a customer value, a key or a token: they name fields, jobs and states only.

use crate::policy::{Denial, JobState};
use uuid::Uuid;

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the vault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A job sheet failed validation; the message names the offending field, never its value.
    #[error("invalid job sheet: {0}")]
    InvalidSheet(String),

    /// An argument was out of range or malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// No job with this id is known to the vault.
    #[error("job {0} not found")]
    JobNotFound(Uuid),

    /// The policy refused access to the job's customer data.
    #[error("access denied: {0}")]
    AccessDenied(Denial),

    /// The lifecycle does not allow this move.
    #[error("illegal transition from {from} to {to}")]
    IllegalTransition {
        /// State the job is in.
        from: JobState,
        /// State that was asked for.
        to: JobState,
    },

    /// The job already ended (completed, cancelled, revoked or expired) and was shredded.
    #[error("job {job_id} is closed ({state})")]
    JobClosed {
        /// The job.
        job_id: Uuid,
        /// The terminal state it ended in.
        state: JobState,
    },

    /// A sheet arrived whose version is not newer than the one held.
    #[error("job {job_id}: sheet version {offered} is not newer than version {held}")]
    StaleVersion {
        /// The job.
        job_id: Uuid,
        /// Version the vault holds.
        held: u64,
        /// Version that was offered.
        offered: u64,
    },

    /// Authenticated decryption failed: the stored or received bytes were altered, moved to
    /// another job or field, or belong to another key.
    #[error("tampered or misplaced ciphertext: {0}")]
    Tampered(&'static str),

    /// A sealed sheet names another device.
    #[error("the sealed sheet is addressed to another device")]
    Misaddressed,

    /// A sealed sheet was sealed to a one-time prekey this device no longer (or never) held.
    #[error("prekey {0} is not held by this device (already used, or unknown)")]
    PrekeyUnavailable(u32),

    /// The device has not been enrolled with dispatch yet, or was enrolled already.
    #[error("device enrolment: {0}")]
    Enrolment(&'static str),

    /// Dispatch could not be reached (no network, timeout); nothing was lost, sync again later.
    #[error("network: {0}")]
    Network(String),

    /// Dispatch answered with an error status.
    #[error("dispatch answered {status}: {message}")]
    Dispatch {
        /// The HTTP status.
        status: u16,
        /// Dispatch's error code and message.
        message: String,
    },

    /// The platform keystore failed or lacks a key.
    #[error("keystore: {0}")]
    KeyStore(String),

    /// The vault directory is in use by another process.
    #[error("the vault is in use by another process")]
    Locked,

    /// The database refused a setting the guarantees depend on, or holds data it should not.
    #[error("vault integrity: {0}")]
    Integrity(String),

    /// SQLite failed.
    #[error("storage: {0}")]
    Storage(#[from] rusqlite::Error),

    /// The file system failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),

    /// The operating system's random number generator failed, so no key, nonce or token could be
    /// made; the call did not take effect.
    #[error("the system random number generator failed")]
    Randomness,
}

impl From<crate::envelope::EnvelopeError> for Error {
    /// Every way an envelope can fail to parse or authenticate is, to the vault, a tampered
    /// envelope; the message keeps the precise cause.
    fn from(e: crate::envelope::EnvelopeError) -> Self {
        use crate::envelope::EnvelopeError as E;
        match e {
            E::Malformed(what) => Error::Tampered(what),
            E::UnsupportedVersion => Error::Tampered("unsupported envelope protocol version"),
            E::Tampered => Error::Tampered("envelope failed authentication"),
            E::WeakKey => Error::Tampered("weak X25519 key in envelope"),
            E::Misaddressed => Error::Misaddressed,
            E::Rng => Error::Randomness,
            E::Crypto => Error::integrity("unexpected HPKE failure"),
        }
    }
}

impl From<jobseal_protocol::Error> for Error {
    /// Each protocol error becomes the core error of the same meaning.
    fn from(e: jobseal_protocol::Error) -> Self {
        use jobseal_protocol::Error as P;
        match e {
            P::InvalidSheet(m) => Error::InvalidSheet(m),
            P::InvalidInput(m) => Error::InvalidInput(m),
            P::Tampered(what) => Error::Tampered(what),
            P::Envelope(e) => Error::from(e),
            P::Integrity(m) => Error::Integrity(m),
            P::Randomness => Error::Randomness,
        }
    }
}

impl Error {
    pub(crate) fn integrity(msg: impl Into<String>) -> Self {
        Error::Integrity(msg.into())
    }
}

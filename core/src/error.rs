//! Errors of the core, rich and internal (G8), and the one classification of them.
//!
//! Every failure a caller can meet is a typed variant here. Messages are written for logs and
//! crash reports, which is why no variant carries a customer value, a key or a token: they name
//! fields, jobs and states only.
//!
//! Three places turn an error into something a caller acts on: the bindings' error enum, the
//! CLI's exit code, and sync's decision to refuse an offered sheet (and report why) or to stop.
//! They used to classify the variants each in its own way and disagreed; now each is a match over
//! [`ErrorKind`], which [`Error::kind`] decides once, so they cannot drift apart.

use crate::policy::{Denial, JobState};
use uuid::Uuid;

/// The result type of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the vault.
///
/// Match on [`Error::kind`] to decide what to do; [`Error::code`] is a stable name of the
/// variant for scripts and reports, and the message (Display) is for logs.
#[derive(Debug, thiserror::Error, strum::IntoStaticStr, strum::EnumDiscriminants)]
#[strum(serialize_all = "kebab-case")]
#[strum_discriminants(name(ErrorVariant), vis(pub(crate)), derive(strum::EnumIter))]
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
    #[strum(serialize = "keystore")]
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

/// What a caller can do about an [`Error`]: the one classification that the bindings' error
/// enum, the CLI's exit codes and sync's refusals are all derived from (see [`Error::kind`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::EnumIter)]
#[strum(serialize_all = "kebab-case")]
pub enum ErrorKind {
    /// The input is malformed or out of range: an argument, or a job sheet that breaks the
    /// format. The same input fails again; fix it.
    InvalidInput,
    /// No job with this id is known to the vault. Refresh the job list.
    NotFound,
    /// The access policy refused the customer data (outside the access window, a state the field
    /// is not shown in, or the job's data is shredded). Show the reason; retrying changes nothing
    /// until the time or the job's state does.
    AccessDenied,
    /// The request contradicts the current state of the job or of the device's keys: the job is
    /// closed, the sheet version is not newer than the one held, the lifecycle forbids the move,
    /// or a sealed sheet names a one-time prekey already used. Reload and decide again; for a
    /// sealed sheet, dispatch has to send a newer one.
    Conflict,
    /// Bytes failed authentication or are not meant for this device: stored or received data was
    /// altered, forged, or addressed to another device. Discard the input; treat it as suspicious.
    Tampered,
    /// The device is not enrolled with dispatch yet (enrol first), or is enrolled already.
    Enrolment,
    /// Dispatch could not be reached. Nothing was lost; sync again later.
    Network,
    /// Dispatch answered with an error status.
    Dispatch,
    /// The platform keystore failed or lacks a key. Nothing changed; retry once it is usable.
    KeyStore,
    /// The vault is in use by another process. Retry once that process has closed it.
    Locked,
    /// The database or the file system failed (full disk, I/O error). Nothing was half-written;
    /// a retry may succeed.
    Storage,
    /// The vault found its own data or settings inconsistent with its guarantees (a refused
    /// pragma, an unreadable stored value, a key wrapped under a retired epoch). Retrying does not
    /// help; report it.
    Integrity,
    /// The platform failed in a way that should not happen (the random number generator). The
    /// call did not take effect.
    Internal,
}

impl ErrorKind {
    /// A stable kebab-case name of the kind (`"invalid-input"`, `"not-found"`, ...).
    pub fn as_str(self) -> &'static str {
        self.into()
    }

    /// Whether an error of this kind, met while taking in a sealed sheet that dispatch offered,
    /// is about that sheet: it is then refused, the refusal reported to dispatch, and sync goes
    /// on. Any other kind is this device's own failure (or not possible there): sync stops and
    /// returns it, and dispatch offers the sheet again next time.
    pub fn refuses_offered_sheet(self) -> bool {
        match self {
            ErrorKind::InvalidInput | ErrorKind::Conflict | ErrorKind::Tampered => true,
            ErrorKind::NotFound
            | ErrorKind::AccessDenied
            | ErrorKind::Enrolment
            | ErrorKind::Network
            | ErrorKind::Dispatch
            | ErrorKind::KeyStore
            | ErrorKind::Locked
            | ErrorKind::Storage
            | ErrorKind::Integrity
            | ErrorKind::Internal => false,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
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

    /// What a caller can do about this error. The one place that classifies the variants.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidSheet(_) | Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::JobNotFound(_) => ErrorKind::NotFound,
            Error::AccessDenied(_) => ErrorKind::AccessDenied,
            Error::IllegalTransition { .. }
            | Error::JobClosed { .. }
            | Error::StaleVersion { .. }
            | Error::PrekeyUnavailable(_) => ErrorKind::Conflict,
            Error::Tampered(_) | Error::Misaddressed => ErrorKind::Tampered,
            Error::Enrolment(_) => ErrorKind::Enrolment,
            Error::Network(_) => ErrorKind::Network,
            Error::Dispatch { .. } => ErrorKind::Dispatch,
            Error::KeyStore(_) => ErrorKind::KeyStore,
            Error::Locked => ErrorKind::Locked,
            Error::Integrity(_) => ErrorKind::Integrity,
            Error::Storage(_) | Error::Io(_) => ErrorKind::Storage,
            Error::Randomness => ErrorKind::Internal,
        }
    }

    /// A stable kebab-case name of the variant (`"stale-version"`, `"prekey-unavailable"`, ...):
    /// finer than [`Error::kind`], value-free, for scripts (the CLI's `--json` errors) and for
    /// the reason a refused sheet is reported to dispatch with.
    pub fn code(&self) -> &'static str {
        self.into()
    }

    /// The value-free reason to report to dispatch when taking in a sealed sheet it offered
    /// fails with this error, or `None` when the error is this device's own failure and sync must
    /// stop and return it (see [`ErrorKind::refuses_offered_sheet`]).
    pub fn refusal_code(&self) -> Option<&'static str> {
        self.kind().refuses_offered_sheet().then(|| self.code())
    }

    /// One error of every variant, in declaration order, with placeholder payloads that hold no
    /// customer value. For tests of code that maps errors (the bindings, the CLI): walking this
    /// list checks a new variant the day it is added, since the list cannot compile without it.
    pub fn one_of_each() -> Vec<Error> {
        use strum::IntoEnumIterator;
        let id = Uuid::nil();
        ErrorVariant::iter()
            .map(|v| match v {
                ErrorVariant::InvalidSheet => Error::InvalidSheet("customer must hold 1 to 32 fields".into()),
                ErrorVariant::InvalidInput => Error::InvalidInput("prekey count must be 1 to 100".into()),
                ErrorVariant::JobNotFound => Error::JobNotFound(id),
                ErrorVariant::AccessDenied => Error::AccessDenied(Denial::Shredded { state: JobState::Completed }),
                ErrorVariant::IllegalTransition => {
                    Error::IllegalTransition { from: JobState::OnSite, to: JobState::EnRoute }
                }
                ErrorVariant::JobClosed => Error::JobClosed { job_id: id, state: JobState::Cancelled },
                ErrorVariant::StaleVersion => Error::StaleVersion { job_id: id, held: 2, offered: 1 },
                ErrorVariant::Tampered => Error::Tampered("authentication failed"),
                ErrorVariant::Misaddressed => Error::Misaddressed,
                ErrorVariant::PrekeyUnavailable => Error::PrekeyUnavailable(7),
                ErrorVariant::Enrolment => Error::Enrolment("this device is not enrolled"),
                ErrorVariant::Network => Error::Network("connection refused".into()),
                ErrorVariant::Dispatch => Error::Dispatch { status: 503, message: "unavailable: busy".into() },
                ErrorVariant::KeyStore => Error::KeyStore("key kek-1 is missing".into()),
                ErrorVariant::Locked => Error::Locked,
                ErrorVariant::Integrity => Error::integrity("stored job state is unknown"),
                ErrorVariant::Storage => Error::Storage(rusqlite::Error::QueryReturnedNoRows),
                ErrorVariant::Io => Error::Io(std::io::Error::other("disk full")),
                ErrorVariant::Randomness => Error::Randomness,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::IntoEnumIterator;

    #[test]
    fn one_of_each_lists_every_variant_once_in_order() {
        let codes: Vec<&str> = Error::one_of_each().iter().map(Error::code).collect();
        let variants: Vec<ErrorVariant> = Error::one_of_each().iter().map(ErrorVariant::from).collect();
        assert_eq!(variants, ErrorVariant::iter().collect::<Vec<_>>());
        let mut unique = codes.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "two variants share a code: {codes:?}");
    }

    #[test]
    fn every_kind_is_reached_by_some_variant() {
        let reached: Vec<ErrorKind> = Error::one_of_each().iter().map(Error::kind).collect();
        for kind in ErrorKind::iter() {
            assert!(reached.contains(&kind), "no error has kind {kind}");
        }
    }

    /// The codes are on the wire (refusal reasons sent to dispatch) and in scripts (the CLI's
    /// `--json` error kind): they must never change.
    #[test]
    fn codes_are_the_published_ones() {
        let codes: Vec<&str> = Error::one_of_each().iter().map(Error::code).collect();
        assert_eq!(
            codes,
            [
                "invalid-sheet",
                "invalid-input",
                "job-not-found",
                "access-denied",
                "illegal-transition",
                "job-closed",
                "stale-version",
                "tampered",
                "misaddressed",
                "prekey-unavailable",
                "enrolment",
                "network",
                "dispatch",
                "keystore",
                "locked",
                "integrity",
                "storage",
                "io",
                "randomness",
            ]
        );
    }

    #[test]
    fn sync_refuses_exactly_what_it_refused_before_plus_the_same_kinds() {
        let refused: Vec<(&str, Option<&str>)> =
            Error::one_of_each().iter().map(|e| (e.code(), e.refusal_code())).filter(|(_, r)| r.is_some()).collect();
        // The six reasons sync reported before the classification was shared, and the two
        // variants that share a kind with them (neither can come out of `receive` today).
        assert_eq!(
            refused,
            [
                ("invalid-sheet", Some("invalid-sheet")),
                ("invalid-input", Some("invalid-input")),
                ("illegal-transition", Some("illegal-transition")),
                ("job-closed", Some("job-closed")),
                ("stale-version", Some("stale-version")),
                ("tampered", Some("tampered")),
                ("misaddressed", Some("misaddressed")),
                ("prekey-unavailable", Some("prekey-unavailable")),
            ]
        );
    }

    #[test]
    fn an_rng_failure_is_typed_whichever_way_it_comes() {
        let e = Error::from(crate::envelope::EnvelopeError::Rng);
        assert!(matches!(e, Error::Randomness));
        assert_eq!(e.kind(), ErrorKind::Internal);
        let e = Error::from(jobseal_protocol::Error::Randomness);
        assert!(matches!(e, Error::Randomness));
        let e = Error::from(jobseal_protocol::Error::Envelope(crate::envelope::EnvelopeError::Rng));
        assert!(matches!(e, Error::Randomness));
    }
}

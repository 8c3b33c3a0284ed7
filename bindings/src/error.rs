//! The one error type of the bindings (G8).
//!
//! The core's [`jobseal::Error`] is rich and internal; an app needs to know what it can do about a
//! failure, so the core's variants fold into a few that each call for one reaction. The folding is
//! the core's own classification, [`jobseal::ErrorKind`], mapped here kind by kind, so an app,
//! the CLI's exit codes and sync's refusals see every error the same way. Every message comes
//! from the core's value-free messages or from this crate: none carries a customer value, a key
//! or a token, so an app may log them and crash reporters may collect them.

use crate::types::DenialReason;

/// Everything a jobseal call can fail with. In Kotlin this is `JobsealException` (a sealed class
/// with one subclass per variant); in Swift, `JobsealError`.
///
/// Messages never contain customer data, keys or tokens; they are safe to log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, uniffi::Error)]
pub enum JobsealError {
    /// The access policy refused the customer data: outside the access window, in a state the
    /// field is not shown in, or the job is closed and its data shredded. Show the reason; do
    /// not retry until it changes.
    #[error("access denied: {reason}")]
    AccessDenied {
        /// Why.
        reason: DenialReason,
    },

    /// No job with this id is known to the vault. Refresh the job list.
    #[error("not found: {detail}")]
    NotFound {
        /// What was looked for (an id, never a value).
        detail: String,
    },

    /// Bytes failed authentication: a sealed sheet was altered, forged, misaddressed, or stored
    /// data was modified. Discard the input; report it to dispatch as suspicious.
    #[error("tampered: {detail}")]
    Tampered {
        /// What failed.
        detail: String,
    },

    /// The request conflicts with the job's current state: the job is already closed, the sheet
    /// version is not newer than the one held, the lifecycle forbids the move, or a sealed sheet
    /// names a one-time prekey already used. Reload the job and decide again.
    #[error("conflict: {detail}")]
    Conflict {
        /// What conflicted.
        detail: String,
    },

    /// The database or file system failed, the vault folder is in use by another process, or the
    /// vault found its own data inconsistent. Nothing was half-written.
    #[error("storage: {detail}")]
    Storage {
        /// What failed.
        detail: String,
    },

    /// The platform keystore failed or lacks a key (for instance the key was invalidated). The
    /// call changed nothing; it may be retried once the keystore is usable.
    #[error("keystore: {detail}")]
    KeyStore {
        /// What failed, as the keystore reported it.
        detail: String,
    },

    /// Dispatch could not be reached. Nothing was lost: everything waits in the outbox for the
    /// next sync.
    #[error("network: {detail}")]
    Network {
        /// What failed.
        detail: String,
    },

    /// Dispatch answered with an error status.
    #[error("dispatch answered {status}: {detail}")]
    Dispatch {
        /// The HTTP status.
        status: u16,
        /// Dispatch's error code and message.
        detail: String,
    },

    /// The device is not enrolled with dispatch yet (enrol first), or is enrolled already.
    #[error("enrolment: {detail}")]
    Enrolment {
        /// What is wrong.
        detail: String,
    },

    /// An argument was malformed or out of range: a job id that is not a UUID, a sheet that is
    /// not valid, a report too long, a key that is not 64 hex characters. Fix the input.
    #[error("invalid input: {detail}")]
    InvalidInput {
        /// Which argument, and what rule it broke (never its value).
        detail: String,
    },

    /// Something that should not happen: a bug, the system's random number generator failing,
    /// or a platform implementation (keystore, clock, transport) that threw an exception of
    /// another type than `JobsealException`.
    #[error("internal: {detail}")]
    Internal {
        /// What happened.
        detail: String,
    },
}

impl From<jobseal::Error> for JobsealError {
    /// Chooses the variant by the error's [`jobseal::ErrorKind`]; the variants that carry more
    /// than a message take it from the core error.
    fn from(e: jobseal::Error) -> Self {
        use jobseal::{Error as E, ErrorKind as K};
        // Every core message is value-free by design (see jobseal::Error), so Display is kept.
        let detail = e.to_string();
        match e.kind() {
            K::AccessDenied => match e {
                E::AccessDenied(denial) => JobsealError::AccessDenied { reason: denial.into() },
                _ => JobsealError::Internal { detail },
            },
            K::NotFound => JobsealError::NotFound { detail },
            K::Tampered => JobsealError::Tampered { detail },
            K::Conflict => JobsealError::Conflict { detail },
            K::Storage | K::Locked | K::Integrity => JobsealError::Storage { detail },
            // These four keep the core's message without its prefix (the variant names it).
            K::KeyStore => JobsealError::KeyStore { detail: bare_message(e).unwrap_or(detail) },
            K::Network => JobsealError::Network { detail: bare_message(e).unwrap_or(detail) },
            K::Enrolment => JobsealError::Enrolment { detail: bare_message(e).unwrap_or(detail) },
            K::Dispatch => match e {
                E::Dispatch { status, message } => JobsealError::Dispatch { status, detail: message },
                _ => JobsealError::Internal { detail },
            },
            K::InvalidInput => JobsealError::InvalidInput { detail },
            K::Internal => JobsealError::Internal { detail },
        }
    }
}

/// The message of a core error that carries one, without the prefix its Display adds.
fn bare_message(e: jobseal::Error) -> Option<String> {
    use jobseal::Error as E;
    match e {
        E::KeyStore(message) | E::Network(message) => Some(message),
        E::Enrolment(what) => Some(what.to_owned()),
        _ => None,
    }
}

impl From<jobseal::ProtocolError> for JobsealError {
    /// A protocol error (a sheet, bundle or envelope refused) goes through the core's mapping.
    fn from(e: jobseal::ProtocolError) -> Self {
        jobseal::Error::from(e).into()
    }
}

impl From<uniffi::UnexpectedUniFFICallbackError> for JobsealError {
    /// A platform implementation threw something other than a `JobsealException`. Only the first
    /// line of what it threw is kept (its class and message), not the stack trace.
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        JobsealError::Internal { detail: format!("platform callback threw: {}", first_line(&e.reason)) }
    }
}

impl JobsealError {
    /// An invalid-argument error.
    pub(crate) fn invalid(detail: impl Into<String>) -> Self {
        JobsealError::InvalidInput { detail: detail.into() }
    }

    /// The message without the variant's prefix, for handing to the core's error types.
    pub(crate) fn detail(&self) -> String {
        match self {
            JobsealError::AccessDenied { reason } => jobseal::Denial::from(reason.clone()).to_string(),
            JobsealError::NotFound { detail }
            | JobsealError::Tampered { detail }
            | JobsealError::Conflict { detail }
            | JobsealError::Storage { detail }
            | JobsealError::KeyStore { detail }
            | JobsealError::Network { detail }
            | JobsealError::Enrolment { detail }
            | JobsealError::InvalidInput { detail }
            | JobsealError::Internal { detail } => detail.clone(),
            JobsealError::Dispatch { .. } => self.to_string(),
        }
    }
}

/// The first line of a foreign stack trace, at most 200 characters.
fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobseal::{Denial, Error, JobState};

    #[test]
    fn every_core_error_lands_on_the_variant_an_app_acts_on() {
        let id = uuid::Uuid::nil();
        let cases: Vec<(Error, &str)> = vec![
            (Error::AccessDenied(Denial::Shredded { state: JobState::Completed }), "AccessDenied"),
            (Error::JobNotFound(id), "NotFound"),
            (Error::Tampered("x"), "Tampered"),
            (Error::Misaddressed, "Tampered"),
            (Error::JobClosed { job_id: id, state: JobState::Completed }, "Conflict"),
            (Error::StaleVersion { job_id: id, held: 2, offered: 1 }, "Conflict"),
            (Error::IllegalTransition { from: JobState::OnSite, to: JobState::EnRoute }, "Conflict"),
            (Error::PrekeyUnavailable(3), "Conflict"),
            (Error::Locked, "Storage"),
            (Error::Integrity("x".into()), "Storage"),
            (Error::Io(std::io::Error::other("disk")), "Storage"),
            (Error::KeyStore("gone".into()), "KeyStore"),
            (Error::Network("down".into()), "Network"),
            (Error::Dispatch { status: 503, message: "busy".into() }, "Dispatch"),
            (Error::Enrolment("not enrolled"), "Enrolment"),
            (Error::InvalidInput("x".into()), "InvalidInput"),
            (Error::InvalidSheet("x".into()), "InvalidInput"),
            (Error::Randomness, "Internal"),
        ];
        for (core, want) in cases {
            let shown = core.to_string();
            let got = JobsealError::from(core);
            let name = format!("{got:?}");
            assert!(name.starts_with(want), "{shown} became {name}, wanted {want}");
        }
    }

    #[test]
    fn no_core_error_but_an_internal_one_becomes_internal_and_payloads_survive() {
        for core in Error::one_of_each() {
            let (kind, shown) = (core.kind(), core.to_string());
            let got = JobsealError::from(core);
            let internal = matches!(got, JobsealError::Internal { .. });
            assert_eq!(internal, kind == jobseal::ErrorKind::Internal, "{shown} became {got:?}");
        }
        let e = JobsealError::from(Error::Dispatch { status: 503, message: "unavailable: busy".into() });
        assert_eq!(e, JobsealError::Dispatch { status: 503, detail: "unavailable: busy".into() });
        let e = JobsealError::from(Error::Enrolment("this device is not enrolled"));
        assert_eq!(e, JobsealError::Enrolment { detail: "this device is not enrolled".into() });
        let e = JobsealError::from(Error::Network("connection refused".into()));
        assert_eq!(e.detail(), "connection refused");
    }

    #[test]
    fn keystore_and_network_messages_pass_through_without_prefix_doubling() {
        let e = JobsealError::from(Error::KeyStore("key invalidated".into()));
        assert_eq!(e.detail(), "key invalidated");
        assert_eq!(e.to_string(), "keystore: key invalidated");
    }

    #[test]
    fn unexpected_callback_errors_keep_only_the_first_line() {
        let reason = format!("java.lang.IllegalStateException: boom\n\tat Foo.bar(Foo.kt:1)\n{}", "x".repeat(500));
        let e = JobsealError::from(uniffi::UnexpectedUniFFICallbackError::new(reason));
        assert_eq!(
            e,
            JobsealError::Internal { detail: "platform callback threw: java.lang.IllegalStateException: boom".into() }
        );
    }
}

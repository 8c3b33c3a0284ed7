//! Errors of the protocol: malformed, weak or tampered input (G8).
//!
//! Every variant names what was wrong, never a value: a sheet error names the field, an envelope
//! error the check that failed. The device core maps each variant to its own error of the same
//! meaning.

use crate::envelope::EnvelopeError;

/// The result type of the protocol.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can be wrong with protocol input.
/// Deliberately exhaustive: the core maps every variant, and a new one must get a mapping there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A job sheet failed validation; the message names the offending field, never its value.
    #[error("invalid job sheet: {0}")]
    InvalidSheet(String),

    /// An argument or message was out of range or malformed.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// Authenticated decryption failed, or decrypted bytes are not what they must be.
    #[error("tampered or misplaced ciphertext: {0}")]
    Tampered(&'static str),

    /// An envelope or key failed to parse or authenticate.
    #[error("envelope: {0}")]
    Envelope(#[from] EnvelopeError),

    /// A value read back from storage is not one this protocol defines.
    #[error("integrity: {0}")]
    Integrity(String),

    /// The operating system's random number generator failed, so no key, nonce or token could be
    /// made.
    #[error("the system random number generator failed")]
    Randomness,
}

impl Error {
    pub(crate) fn integrity(msg: impl Into<String>) -> Self {
        Error::Integrity(msg.into())
    }
}

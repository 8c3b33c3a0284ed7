//! Message authentication of what decides a reveal: job rows and the trusted-time state (G2).
//!
//! A field's ciphertext is authenticated by its AEAD tag, but whether it may be shown is decided
//! by columns stored beside it (state, window, hard expiry, `reveal_in`) and by the trusted-time
//! state in `meta`. A rooted technician with `sqlite3` could otherwise widen `reveal_in`, push the
//! hard expiry out or lower the high-water mark. Each of those records carries an HMAC-SHA256 tag
//! under the vault's integrity key, a secret the keyring wraps under the epoch master key like any
//! other, so an edit made outside the core is detected (`Tampered`) instead of obeyed.
//!
//! The key never leaves the keyring's memory unwrapped; this module only computes and checks tags.

use crate::crypto::Aad;
use crate::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of a tag.
pub(crate) const TAG_LEN: usize = 32;

/// The vault's integrity key (32 random bytes, stored wrapped as the secret `vault:integrity`).
pub(crate) struct IntegrityKey(Zeroizing<[u8; 32]>);

impl IntegrityKey {
    /// A key from its raw bytes.
    pub(crate) fn from_slice(raw: &[u8]) -> Result<IntegrityKey> {
        let bytes: [u8; 32] =
            raw.try_into().map_err(|_| Error::Tampered("stored integrity key has the wrong length"))?;
        Ok(IntegrityKey(Zeroizing::new(bytes)))
    }

    /// A fresh random key.
    pub(crate) fn random() -> Result<IntegrityKey> {
        IntegrityKey::from_slice(crate::crypto::Key32::random()?.as_bytes())
    }

    /// The raw bytes, for wrapping.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    fn mac(&self, aad: &Aad) -> Result<Hmac<Sha256>> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .map_err(|_| Error::integrity("integrity key rejected by HMAC"))?;
        mac.update(aad.bytes());
        Ok(mac)
    }

    /// The tag of `record` (a length-prefixed [`Aad`] that starts with its own domain label).
    pub(crate) fn tag(&self, record: &Aad) -> Result<[u8; TAG_LEN]> {
        Ok(self.mac(record)?.finalize().into_bytes().into())
    }

    /// Checks `tag` against `record` in constant time; `what` names the record in the error.
    pub(crate) fn check(&self, record: &Aad, tag: Option<&[u8]>, what: &'static str) -> Result<()> {
        let tag = tag.ok_or(Error::Tampered(what))?;
        self.mac(record)?.verify_slice(tag).map_err(|_| Error::Tampered(what))
    }
}

impl std::fmt::Debug for IntegrityKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IntegrityKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_checks_only_its_own_record_and_key() {
        let key = IntegrityKey::from_slice(&[7u8; 32]).unwrap();
        let record = Aad::new("jobseal/v1/test").u64(5);
        let tag = key.tag(&record).unwrap();
        key.check(&record, Some(&tag), "x").unwrap();
        assert!(key.check(&Aad::new("jobseal/v1/test").u64(6), Some(&tag), "x").is_err());
        assert!(key.check(&record, None, "x").is_err());
        assert!(key.check(&record, Some(&tag[..31]), "x").is_err());
        let other = IntegrityKey::from_slice(&[8u8; 32]).unwrap();
        assert!(other.check(&record, Some(&tag), "x").is_err());
        assert_eq!(format!("{key:?}"), "IntegrityKey(..)");
    }
}

//! Symmetric sealing of customer fields and wrapped keys (G1).
//!
//! One construction serves every secret at rest: XChaCha20-Poly1305 with a random 24-byte nonce in a
//! versioned envelope `version | nonce | ciphertext+tag`, under associated data that names what the
//! bytes belong to. Because the job, field, sheet version or key epoch is in the AAD, a ciphertext
//! copied to another row fails to open instead of revealing the wrong thing. Secret types here
//! zeroize on drop and have neither `Clone` nor a revealing `Debug`.

use crate::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use zeroize::{Zeroize, Zeroizing};

/// Version byte of the sealed-bytes envelope.
pub const ENVELOPE_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A 32-byte symmetric key (an epoch master key or a job's data key).
pub struct Key32(Zeroizing<[u8; 32]>);

impl Key32 {
    /// A fresh key from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(k.as_mut());
        Key32(k)
    }

    /// Takes a key from bytes that came out of an unwrap; fails on any other length.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::Tampered("unwrapped key has the wrong length"))?;
        Ok(Key32(Zeroizing::new(arr)))
    }

    /// The raw key, for wrapping under another key.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Seals `plaintext` under this key, bound to `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(&nonce, plaintext, aad)
    }

    /// Test-only: [`Key32::seal`] with a caller-chosen nonce, so published test vectors
    /// (Wycheproof) can be checked through this wrapper. Reusing a nonce under one key breaks the
    /// cipher: never call it with anything but a published test value.
    #[cfg(feature = "insecure-test-hooks")]
    pub fn seal_with_nonce_insecure_for_testing(
        &self,
        nonce: &[u8; 24],
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>> {
        self.seal_with_nonce(nonce, plaintext, aad)
    }

    fn seal_with_nonce(&self, nonce: &[u8; NONCE_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let ct = cipher
            .encrypt(XNonce::from_slice(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| Error::Tampered("encryption failed"))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        out.push(ENVELOPE_V1);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens bytes made by [`Key32::seal`] with the same key and `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
        if sealed.len() < 1 + NONCE_LEN + TAG_LEN {
            return Err(Error::Tampered("sealed value is too short"));
        }
        if sealed[0] != ENVELOPE_V1 {
            return Err(Error::Tampered("sealed value has an unknown version"));
        }
        let cipher = XChaCha20Poly1305::new(self.0.as_ref().into());
        let (nonce, ct) = sealed[1..].split_at(NONCE_LEN);
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| Error::Tampered("authentication failed"))
    }
}

/// Builds associated data as a label followed by length-prefixed parts, so that no two different
/// bindings can produce the same bytes.
pub struct Aad(Vec<u8>);

impl Aad {
    /// Starts AAD with a domain label such as `"jobseal/v1"`.
    pub fn new(label: &str) -> Self {
        let mut a = Aad(Vec::with_capacity(96));
        a = a.part(label.as_bytes());
        a
    }

    /// Appends one length-prefixed part.
    pub fn part(mut self, bytes: &[u8]) -> Self {
        // Every part is a name, an id or a hash, far below 4 GiB; saturating keeps this total.
        self.0.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
        self.0.extend_from_slice(bytes);
        self
    }

    /// Appends a big-endian integer.
    pub fn u64(self, v: u64) -> Self {
        self.part(&v.to_be_bytes())
    }

    /// The finished bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// A customer value in memory: zeroized on drop, redacted in Debug, never cloned implicitly.
#[derive(Default, PartialEq, Eq)]
pub struct SecretString(Zeroizing<String>);

impl SecretString {
    /// Wraps a value.
    pub fn new(s: String) -> Self {
        SecretString(Zeroizing::new(s))
    }

    /// The value itself; call only where it is shown to the technician.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Takes the value out, for handing across the FFI boundary where the platform owns it.
    pub fn into_inner(mut self) -> String {
        std::mem::take(&mut *self.0)
    }

    /// Takes decrypted bytes as text; bytes that are not UTF-8 were not sealed by us.
    pub fn from_utf8(bytes: Zeroizing<Vec<u8>>) -> Result<Self> {
        let s = std::str::from_utf8(&bytes).map_err(|_| Error::Tampered("decrypted value is not UTF-8"))?;
        Ok(SecretString::new(s.to_owned()))
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        SecretString::new(s.to_owned())
    }
}

impl Serialize for SecretString {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for SecretString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let mut s = String::deserialize(d)?;
        let out = SecretString::new(s.clone());
        s.zeroize();
        Ok(out)
    }
}

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    OsRng.fill_bytes(&mut b);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = Key32::random();
        let aad = Aad::new("t").part(b"job").u64(1);
        let sealed = k.seal(b"fake value", aad.bytes()).unwrap();
        assert_eq!(sealed[0], ENVELOPE_V1);
        assert_eq!(&**k.open(&sealed, aad.bytes()).unwrap(), b"fake value");
        let other = Aad::new("t").part(b"job").u64(2);
        assert!(matches!(k.open(&sealed, other.bytes()), Err(Error::Tampered(_))));
        assert!(matches!(Key32::random().open(&sealed, aad.bytes()), Err(Error::Tampered(_))));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(k.open(&bad, aad.bytes()), Err(Error::Tampered(_))), "byte {i}");
        }
        assert!(k.open(&sealed[..20], aad.bytes()).is_err());
    }

    #[test]
    fn nonces_are_fresh() {
        let k = Key32::random();
        let a = k.seal(b"x", b"").unwrap();
        let b = k.seal(b"x", b"").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        assert_ne!(Aad::new("l").part(b"ab").part(b"c").bytes(), Aad::new("l").part(b"a").part(b"bc").bytes());
    }

    #[test]
    fn secret_string_debug_is_redacted() {
        let s = SecretString::from("+33 6 00 00 00 00");
        assert!(!format!("{s:?}").contains("00 00"));
    }
}

//! The cryptographic building blocks: symmetric sealing of customer fields and wrapped keys (G1),
//! and the X25519 keys of devices and dispatch (G4, G7).
//!
//! One construction serves every secret at rest: XChaCha20-Poly1305 with a random 24-byte nonce in a
//! versioned envelope `version | nonce | ciphertext+tag`, under associated data that names what the
//! bytes belong to. Because the job, field, sheet version or key epoch is in the AAD, a ciphertext
//! copied to another row fails to open instead of revealing the wrong thing.
//!
//! The X25519 key types are here, not in [`crate::envelope`], because more than the envelope uses
//! them: bundles and wire messages carry the public keys, and receipts and device-token sealing
//! agree keys with them. Every public key is validated when it is made (no weak or non-canonical
//! key exists as a [`PublicKey`]); their errors are [`EnvelopeError`]s, the errors of envelopes
//! and their keys. Secret types here zeroize on drop and have neither `Clone` nor a revealing
//! `Debug`.

use crate::envelope::EnvelopeError;
use crate::{Error, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Version byte of the sealed-bytes envelope.
pub const ENVELOPE_V1: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// A 32-byte symmetric key (an epoch master key or a job's data key).
pub struct Key32(Zeroizing<[u8; 32]>);

impl Key32 {
    /// A fresh key from the operating system's CSPRNG; [`Error::Randomness`] if it fails.
    pub fn random() -> Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        fill_random(k.as_mut())?;
        Ok(Key32(k))
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
        let nonce = random_bytes::<NONCE_LEN>()?;
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

// ---------------------------------------------------------------------------------------------
// X25519 keys
// ---------------------------------------------------------------------------------------------

/// Length of an X25519 public key and of a secret key.
pub const X25519_KEY_LEN: usize = 32;
const KEY_LEN: usize = X25519_KEY_LEN;

/// The X25519 public key encodings that give an all-zero DH output with every scalar: the
/// five low-order u-coordinates (0, 1, p-1 and the two points of order 8) plus p and p+1, which
/// reduce to 0 and 1. Compared with bit 255 masked because X25519 ignores that bit, which makes
/// these 7 entries cover 14 byte strings.
pub(crate) const LOW_ORDER_POINTS: [[u8; 32]; 7] = [
    [0x00; 32],
    [
        0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ],
    [
        0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f, 0xc4, 0x6a, 0xda, 0x09,
        0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16, 0x5f, 0x49, 0xb8, 0x00,
    ],
    [
        0x5f, 0x9c, 0x95, 0xbc, 0xa3, 0x50, 0x8c, 0x24, 0xb1, 0xd0, 0xb1, 0x55, 0x9c, 0x83, 0xef, 0x5b, 0x04, 0x44,
        0x5c, 0xc4, 0x58, 0x1c, 0x8e, 0x86, 0xd8, 0x22, 0x4e, 0xdd, 0xd0, 0x9f, 0x11, 0x57,
    ],
    [
        0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
    [
        0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
    ],
];

fn is_low_order(key: &[u8; 32]) -> bool {
    LOW_ORDER_POINTS.iter().any(|bad| bad[..31] == key[..31] && bad[31] == key[31] & 0x7f)
}

/// Canonical means bit 255 clear and the value below p = 2^255 - 19. Every X25519
/// implementation produces canonical public keys, so refusing the rest costs no interoperability
/// and gives each key, and each envelope, exactly one encoding.
fn is_canonical(key: &[u8; 32]) -> bool {
    let top_clear = key[31] & 0x80 == 0;
    let at_least_p = key[31] == 0x7f && key[1..31].iter().all(|&b| b == 0xff) && key[0] >= 0xed;
    top_clear && !at_least_p
}

/// Refuses a weak (low-order) or non-canonical X25519 public key: those of the device and
/// dispatch keys, and an envelope's ephemeral `enc`.
pub(crate) fn check_public_key(key: &[u8; 32]) -> Result<(), EnvelopeError> {
    // Low order first, so every encoding of a weak point reports WeakKey whatever its form.
    if is_low_order(key) {
        return Err(EnvelopeError::WeakKey);
    }
    if !is_canonical(key) {
        return Err(EnvelopeError::Malformed("non-canonical X25519 public key"));
    }
    Ok(())
}

/// An X25519 public key (a device identity key, a device prekey or the dispatch key).
///
/// Always validated: all-zero and low-order keys are refused with [`EnvelopeError::WeakKey`],
/// non-canonical encodings with [`EnvelopeError::Malformed`]. Serialized with serde as a
/// 64-character lowercase hex string; `Display` and `FromStr` use the same form.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; KEY_LEN]);

impl PublicKey {
    /// Parses and validates a 32-byte X25519 public key.
    pub fn from_bytes(bytes: &[u8]) -> Result<PublicKey, EnvelopeError> {
        let key: [u8; KEY_LEN] =
            bytes.try_into().map_err(|_| EnvelopeError::Malformed("X25519 public key must be 32 bytes"))?;
        check_public_key(&key)?;
        Ok(PublicKey(key))
    }

    /// The 32 key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The 32 key bytes, by value.
    pub fn to_bytes(&self) -> [u8; KEY_LEN] {
        self.0
    }

    /// Test-only: a key from any 32 bytes, skipping the checks of [`PublicKey::from_bytes`], so
    /// that tests can hand weak keys to the code behind those checks.
    #[cfg(test)]
    pub(crate) fn from_bytes_unchecked_insecure_for_testing(bytes: [u8; KEY_LEN]) -> PublicKey {
        PublicKey(bytes)
    }
}

impl fmt::Debug for PublicKey {
    // Public keys are not secret; hex lets a support engineer compare them with dispatch's view.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::hex::encode(&self.0))
    }
}

impl FromStr for PublicKey {
    type Err = EnvelopeError;

    /// Parses the 64-character hex form (either case).
    fn from_str(s: &str) -> Result<PublicKey, EnvelopeError> {
        let bytes = crate::hex::decode(s)
            .filter(|b| b.len() == KEY_LEN)
            .ok_or(EnvelopeError::Malformed("X25519 public key must be 64 hex characters"))?;
        PublicKey::from_bytes(&bytes)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&crate::hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<PublicKey, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// The OpenAPI schema of a public key (dispatch's contract, `docs/openapi.json`): its JSON form,
/// 64 hex characters, with the checks [`PublicKey::from_bytes`] makes said in words.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for PublicKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some("^[0-9a-fA-F]{62}[0-7][0-9a-fA-F]$"))
            .description(Some(
                "An X25519 public key: its 32 bytes as 64 hex characters (sent lowercase, either case \
                 accepted; the top bit of the last byte clear). All-zero, low-order and non-canonical \
                 keys are refused.",
            ))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for PublicKey {}

/// An X25519 secret key: the dispatch key on the sealing side, a device identity key or
/// prekey on the opening side.
///
/// No `Debug`, no `Clone`, wiped on drop. The vault persists it only through
/// [`SecretKey::to_bytes`], wrapped under the epoch master key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey {
    bytes: [u8; KEY_LEN],
    // Cached so `public_key()` is infallible and cheap; not secret.
    public: [u8; KEY_LEN],
}

impl SecretKey {
    /// Builds a secret key from its 32 raw bytes (as stored, before X25519 clamping).
    ///
    /// Refuses the all-zero key with [`EnvelopeError::WeakKey`]: it is a valid scalar, but in
    /// this code base all-zero bytes mean a key that was wiped or never filled in, and opening
    /// or sealing with it must fail loudly instead.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Result<SecretKey, EnvelopeError> {
        if is_all_zero(bytes) {
            return Err(EnvelopeError::WeakKey);
        }
        // X25519(clamp(sk), 9): the same computation as HPKE's DHKEM(X25519) `sk_to_pk`.
        let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*bytes)).to_bytes();
        // A clamped scalar is never a multiple of the group order, so this cannot trigger; it is
        // here so a broken X25519 backend cannot hand us a weak key silently.
        check_public_key(&public)?;
        Ok(SecretKey { bytes: *bytes, public })
    }

    /// The 32 raw secret bytes, in a buffer that wipes itself, for the vault to wrap.
    pub fn to_bytes(&self) -> Zeroizing<[u8; KEY_LEN]> {
        Zeroizing::new(self.bytes)
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.public)
    }

    /// Raw X25519 agreement with `peer`, for keys derived outside HPKE (the shred-receipt key).
    /// Refuses an all-zero result, which only a low-order peer key can produce.
    pub fn diffie_hellman(&self, peer: &PublicKey) -> Result<Zeroizing<[u8; KEY_LEN]>, EnvelopeError> {
        let secret = x25519_dalek::StaticSecret::from(self.bytes);
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer.to_bytes()));
        let out = Zeroizing::new(shared.to_bytes());
        if is_all_zero(&out) {
            return Err(EnvelopeError::WeakKey);
        }
        Ok(out)
    }

    /// The raw secret bytes for a key agreement done elsewhere (HPKE in the envelope), refusing
    /// a key that was wiped: same rule as [`SecretKey::from_bytes`], a key wiped with
    /// `zeroize()` and used again must fail.
    pub(crate) fn usable_bytes(&self) -> Result<&[u8; KEY_LEN], EnvelopeError> {
        if is_all_zero(&self.bytes) {
            return Err(EnvelopeError::WeakKey);
        }
        Ok(&self.bytes)
    }
}

/// Whether a secret (a key, a shared secret) is all zero, in constant time: a short-circuiting
/// loop would tell through its timing where the first non-zero byte is.
fn is_all_zero(secret: &[u8; KEY_LEN]) -> bool {
    bool::from(secret.ct_eq(&[0u8; KEY_LEN]))
}

/// Generates a fresh X25519 key pair from the operating system's random number generator.
pub fn generate_keypair() -> Result<(SecretKey, PublicKey), EnvelopeError> {
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    OsRng.try_fill_bytes(&mut *bytes).map_err(|_| EnvelopeError::Rng)?;
    let sk = SecretKey::from_bytes(&bytes)?;
    let pk = sk.public_key();
    Ok((sk, pk))
}

/// Random bytes from the operating system; [`Error::Randomness`] if its generator fails.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    fill_random(&mut b)?;
    Ok(b)
}

/// Fills `buf` from the operating system's generator. `try_fill_bytes`, not `fill_bytes`: the
/// latter panics when the generator fails, which across the FFI would abort the app.
pub fn fill_random(buf: &mut [u8]) -> Result<()> {
    OsRng.try_fill_bytes(buf).map_err(|_| Error::Randomness)
}

/// A random (version 4) UUID from the operating system's generator. `Uuid::new_v4` panics when
/// the generator fails; this returns [`Error::Randomness`] instead.
pub fn random_uuid() -> Result<uuid::Uuid> {
    Ok(uuid::Builder::from_random_bytes(random_bytes()?).into_uuid())
}

/// A time-ordered (version 7) UUID for `unix_ms`, its random part from the operating system's
/// generator. `Uuid::now_v7` panics when the generator fails; this returns
/// [`Error::Randomness`] instead.
pub fn time_ordered_uuid(unix_ms: u64) -> Result<uuid::Uuid> {
    Ok(uuid::Builder::from_unix_timestamp_millis(unix_ms, &random_bytes()?).into_uuid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_binding() {
        let k = Key32::random().unwrap();
        let aad = Aad::new("t").part(b"job").u64(1);
        let sealed = k.seal(b"fake value", aad.bytes()).unwrap();
        assert_eq!(sealed[0], ENVELOPE_V1);
        assert_eq!(&**k.open(&sealed, aad.bytes()).unwrap(), b"fake value");
        let other = Aad::new("t").part(b"job").u64(2);
        assert!(matches!(k.open(&sealed, other.bytes()), Err(Error::Tampered(_))));
        assert!(matches!(Key32::random().unwrap().open(&sealed, aad.bytes()), Err(Error::Tampered(_))));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(k.open(&bad, aad.bytes()), Err(Error::Tampered(_))), "byte {i}");
        }
        assert!(k.open(&sealed[..20], aad.bytes()).is_err());
    }

    #[test]
    fn nonces_are_fresh() {
        let k = Key32::random().unwrap();
        let a = k.seal(b"x", b"").unwrap();
        let b = k.seal(b"x", b"").unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn random_uuids_have_their_version_and_time() {
        let a = random_uuid().unwrap();
        assert_eq!(a.get_version_num(), 4);
        assert_ne!(a, random_uuid().unwrap());
        let t = time_ordered_uuid(1_780_000_000_123).unwrap();
        assert_eq!(t.get_version_num(), 7);
        let (secs, nanos) = t.get_timestamp().expect("v7 has a timestamp").to_unix();
        assert_eq!((secs, nanos / 1_000_000), (1_780_000_000, 123));
        assert_ne!(t, time_ordered_uuid(1_780_000_000_123).unwrap());
    }

    #[test]
    fn aad_parts_are_unambiguous() {
        assert_ne!(Aad::new("l").part(b"ab").part(b"c").bytes(), Aad::new("l").part(b"a").part(b"bc").bytes());
    }

    #[test]
    fn non_canonical_public_keys_are_malformed() {
        let (_, pk) = generate_keypair().unwrap();
        let mut high = pk.to_bytes();
        high[31] |= 0x80;
        let mut p_plus_2 = [0xff; 32];
        p_plus_2[0] = 0xef;
        p_plus_2[31] = 0x7f;
        let all_ones = [0xff; 32];
        for bad in [high, p_plus_2, all_ones] {
            assert!(matches!(PublicKey::from_bytes(&bad), Err(EnvelopeError::Malformed(_))));
        }
        // p - 2 is the largest canonical value and not low order.
        let mut p_minus_2 = [0xff; 32];
        p_minus_2[0] = 0xeb;
        p_minus_2[31] = 0x7f;
        assert!(PublicKey::from_bytes(&p_minus_2).is_ok());
        assert!(matches!(PublicKey::from_bytes(&[1u8; 31]), Err(EnvelopeError::Malformed(_))));
        assert!(matches!("zz".parse::<PublicKey>(), Err(EnvelopeError::Malformed(_))));
    }

    #[test]
    fn keys_round_trip_and_serialize_as_hex() {
        let (sk, pk) = generate_keypair().unwrap();
        let again = SecretKey::from_bytes(&sk.to_bytes()).unwrap();
        assert_eq!(again.public_key(), pk);
        let text = serde_json::to_string(&pk).unwrap();
        assert_eq!(text, format!("\"{}\"", crate::hex::encode(pk.as_bytes())));
        assert_eq!(serde_json::from_str::<PublicKey>(&text).unwrap(), pk);
        assert_eq!(pk.to_string().to_uppercase().parse::<PublicKey>().unwrap(), pk);
        assert_eq!(format!("{pk:?}"), format!("PublicKey({})", crate::hex::encode(pk.as_bytes())));
    }

    #[test]
    fn secret_string_debug_is_redacted() {
        let s = SecretString::from("+33 6 00 00 00 00");
        assert!(!format!("{s:?}").contains("00 00"));
    }
}

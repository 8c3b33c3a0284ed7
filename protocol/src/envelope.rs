//! Sealed job sheets: the HPKE envelope that carries one job sheet from dispatch to one device.
//!
//! This module carries G4 (job sheets travel sealed end to end, a forged one is rejected) and the
//! wire half of G5 (the job id and sheet version the vault checks against its tombstones are bound
//! into the encryption, so they cannot be edited to dodge the replay check). It is pure: no
//! storage, no clock, no I/O. The vault decides which secret key to use and whether the
//! (job id, sheet version) pair is acceptable; this module only turns bytes into an authenticated
//! sheet or a typed error.
//!
//! Suite: HPKE (RFC 9180) Auth mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305.
//! Auth mode is what makes a forged sheet fail: the KEM mixes in a DH between the dispatch static
//! key pinned at enrolment and the recipient key, so only a holder of the dispatch secret key can
//! produce an envelope that opens under that pinned key. The recipient is normally a one-time
//! prekey whose secret half the vault deletes once the sheet is open, which is what makes a
//! captured envelope unopenable after the fact.
//!
//! Header fields are readable by [`parse`] without keys so the vault can pick the prekey and run
//! its replay check before opening, but they are *unauthenticated* until [`open_sheet`] returns
//! `Ok`: a decision taken on them before that may only ever be a rejection.
//!
//! The byte layout is specified in `docs/protocol.md`, with vectors in
//! `docs/vectors/envelope-v1.json`.
//!
//! hpke 0.13 builds x25519-dalek without its `zeroize` feature; the core crate turns it on (feature
//! unification), so hpke's transient copies of secret keys are wiped too, as ours are.

use core::fmt;

use crate::crypto::check_public_key;
use hpke::aead::{AeadCtxR, AeadCtxS, AeadTag, ChaCha20Poly1305};
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

type SuiteKem = X25519HkdfSha256;
type SuiteKdf = HkdfSha256;
type SuiteAead = ChaCha20Poly1305;
type HpkePublicKey = <SuiteKem as hpke::Kem>::PublicKey;
type HpkePrivateKey = <SuiteKem as hpke::Kem>::PrivateKey;
type HpkeEncappedKey = <SuiteKem as hpke::Kem>::EncappedKey;
type SenderContext = AeadCtxS<SuiteAead, SuiteKdf, SuiteKem>;
type ReceiverContext = AeadCtxR<SuiteAead, SuiteKdf, SuiteKem>;

/// Envelope protocol version this code writes and accepts.
pub const PROTOCOL_VERSION: u8 = 1;
/// First four bytes of every envelope ("JSEL", jobseal envelope). Never changes between
/// versions: the version byte that follows is the only version indicator.
pub const MAGIC: [u8; 4] = *b"JSEL";
/// Length of the serialized [`EnvelopeHeader`], which is also the HPKE `aad`.
pub const HEADER_LEN: usize = 46;
/// Fixed ASCII label that starts the HPKE `info`.
pub const INFO_LABEL: &[u8; 16] = b"jobseal/v1/sheet";
/// Length of the HPKE `info`: label then header. Kept within the 64 bytes every RFC 9180
/// implementation is expected to accept.
pub const INFO_LEN: usize = INFO_LABEL.len() + HEADER_LEN;
/// Length of an X25519 public key, a secret key and the HPKE `enc`.
pub const KEY_LEN: usize = crate::crypto::X25519_KEY_LEN;
/// Length of the ChaCha20Poly1305 tag at the end of the ciphertext.
pub const TAG_LEN: usize = 16;
/// Shortest possible envelope: magic, header, enc and a tag over an empty sheet.
pub const MIN_ENVELOPE_LEN: usize = MAGIC.len() + HEADER_LEN + KEY_LEN + TAG_LEN;
/// Largest envelope accepted or produced (256 KiB). A job sheet is a few KiB; the cap bounds
/// what an attacker can make the phone allocate and decrypt.
pub const MAX_ENVELOPE_LEN: usize = 256 * 1024;

const RECIPIENT_PREKEY: u8 = 0x01;
const RECIPIENT_IDENTITY: u8 = 0x02;

/// Why an envelope or key was refused. Messages and Debug output never contain key bytes,
/// plaintext or any other content of the envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// The bytes cannot be parsed (bad magic, truncated, oversized, bad field encoding).
    #[error("malformed envelope or key: {0}")]
    Malformed(&'static str),
    /// The envelope declares a protocol version this code does not speak.
    #[error("unsupported envelope protocol version")]
    UnsupportedVersion,
    /// Authentication failed: the envelope was modified, was not sealed by the expected
    /// dispatch key, or was not sealed to the secret key used to open it.
    #[error("envelope failed authentication")]
    Tampered,
    /// The envelope is authentic but its header names another device.
    #[error("envelope is addressed to another device")]
    Misaddressed,
    /// An X25519 key is all-zero or of low order, or a DH with it produced the all-zero secret.
    #[error("weak X25519 key (all-zero or low order)")]
    WeakKey,
    /// The operating system's random number generator failed.
    #[error("system random number generator failed")]
    Rng,
    /// The HPKE library failed in a way that valid inputs cannot cause.
    #[error("unexpected HPKE failure")]
    Crypto,
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

// The X25519 key types live in `crypto`, since receipts, pairing, bundles and wire messages use
// them too; they stay reachable here, where they have always been, for existing callers.
pub use crate::crypto::{generate_keypair, PublicKey, SecretKey};

/// The HPKE form of a public key (already validated when it was made).
fn hpke_public(key: &PublicKey) -> Result<HpkePublicKey, EnvelopeError> {
    HpkePublicKey::from_bytes(key.as_bytes()).map_err(|_| EnvelopeError::Crypto)
}

/// The HPKE form of a secret key; a wiped key is refused with [`EnvelopeError::WeakKey`].
fn hpke_secret(key: &SecretKey) -> Result<HpkePrivateKey, EnvelopeError> {
    HpkePrivateKey::from_bytes(key.usable_bytes()?).map_err(|_| EnvelopeError::Crypto)
}

// ---------------------------------------------------------------------------------------------
// Header, info, aad
// ---------------------------------------------------------------------------------------------

/// Which of the device's keys an envelope is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RecipientKeyId {
    /// A one-time prekey, by the id the device published it under. The normal case: the vault
    /// deletes the prekey once the sheet is open.
    Prekey(u32),
    /// The device's long-term identity key: the fallback when dispatch has no prekey left. It
    /// gives no forward secrecy for that sheet.
    Identity,
}

/// What an envelope says it is: which device, which job, which version of the sheet, and which
/// device key it is sealed to. Serialized in [`HEADER_LEN`] fixed-width bytes which are both the
/// HPKE `aad` and, after [`INFO_LABEL`], the HPKE `info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EnvelopeHeader {
    /// Envelope protocol version; must be [`PROTOCOL_VERSION`].
    pub protocol_version: u8,
    /// The device the sheet is for.
    pub device_id: Uuid,
    /// The job the sheet describes.
    pub job_id: Uuid,
    /// Version of the sheet for this job; the vault only accepts versions that move forward.
    pub sheet_version: u64,
    /// The device key the envelope is sealed to.
    pub recipient: RecipientKeyId,
}

impl EnvelopeHeader {
    /// A header for the current [`PROTOCOL_VERSION`].
    pub fn new(device_id: Uuid, job_id: Uuid, sheet_version: u64, recipient: RecipientKeyId) -> EnvelopeHeader {
        EnvelopeHeader { protocol_version: PROTOCOL_VERSION, device_id, job_id, sheet_version, recipient }
    }

    /// The fixed-width wire encoding, which is also the HPKE `aad`:
    /// version (1) | device id (16) | job id (16) | sheet version (8, big-endian) |
    /// recipient kind (1: 0x01 prekey, 0x02 identity) | prekey id (4, big-endian, 0 for identity).
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let (kind, key_id) = match self.recipient {
            RecipientKeyId::Prekey(id) => (RECIPIENT_PREKEY, id),
            RecipientKeyId::Identity => (RECIPIENT_IDENTITY, 0),
        };
        let mut out = [0u8; HEADER_LEN];
        let mut w = Writer(&mut out);
        w.put(&[self.protocol_version]);
        w.put(self.device_id.as_bytes());
        w.put(self.job_id.as_bytes());
        w.put(&self.sheet_version.to_be_bytes());
        w.put(&[kind]);
        w.put(&key_id.to_be_bytes());
        out
    }

    /// Parses the fixed-width encoding. Strict: exactly [`HEADER_LEN`] bytes, a known version
    /// and recipient kind, and a zero prekey id for the identity key, so that each header has
    /// exactly one encoding.
    pub fn from_bytes(bytes: &[u8]) -> Result<EnvelopeHeader, EnvelopeError> {
        let mut r = Reader(bytes);
        let [protocol_version] = *r.take::<1>()?;
        if protocol_version != PROTOCOL_VERSION {
            return Err(EnvelopeError::UnsupportedVersion);
        }
        let device_id = Uuid::from_bytes(*r.take::<16>()?);
        let job_id = Uuid::from_bytes(*r.take::<16>()?);
        let sheet_version = u64::from_be_bytes(*r.take::<8>()?);
        let [kind] = *r.take::<1>()?;
        let key_id = u32::from_be_bytes(*r.take::<4>()?);
        if !r.0.is_empty() {
            return Err(EnvelopeError::Malformed("header has trailing bytes"));
        }
        let recipient = match (kind, key_id) {
            (RECIPIENT_PREKEY, id) => RecipientKeyId::Prekey(id),
            (RECIPIENT_IDENTITY, 0) => RecipientKeyId::Identity,
            (RECIPIENT_IDENTITY, _) => return Err(EnvelopeError::Malformed("identity recipient with a key id")),
            _ => return Err(EnvelopeError::Malformed("unknown recipient kind")),
        };
        Ok(EnvelopeHeader { protocol_version, device_id, job_id, sheet_version, recipient })
    }

    /// The HPKE `info`: [`INFO_LABEL`] followed by [`EnvelopeHeader::to_bytes`].
    pub fn hpke_info(&self) -> [u8; INFO_LEN] {
        info_for(&self.to_bytes())
    }
}

// The header goes into info as well as aad so that the key schedule itself, not only the tag,
// depends on which device, job, version and key the sheet was sealed for.
fn info_for(header_bytes: &[u8; HEADER_LEN]) -> [u8; INFO_LEN] {
    let mut info = [0u8; INFO_LEN];
    let mut w = Writer(&mut info);
    w.put(INFO_LABEL);
    w.put(header_bytes);
    info
}

// ---------------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------------

/// An envelope whose framing has been checked but which has not been opened.
///
/// Its header is readable so the vault can choose the secret key and reject a stale or replayed
/// sheet early, but nothing in it is authenticated until [`open_sheet`] succeeds.
#[derive(Clone)]
pub struct ParsedEnvelope {
    header: EnvelopeHeader,
    // Kept as received and fed to HPKE as is: what was authenticated is exactly what was sent.
    header_bytes: [u8; HEADER_LEN],
    enc: [u8; KEY_LEN],
    ciphertext: Vec<u8>,
}

impl ParsedEnvelope {
    /// The header, unauthenticated until [`open_sheet`] succeeds.
    pub fn header(&self) -> &EnvelopeHeader {
        &self.header
    }

    /// Length of the ciphertext, tag included.
    pub fn ciphertext_len(&self) -> usize {
        self.ciphertext.len()
    }
}

impl fmt::Debug for ParsedEnvelope {
    // Ciphertext bytes say nothing useful in a log; the header is ids only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedEnvelope")
            .field("header", &self.header)
            .field("ciphertext_len", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Checks the framing of an envelope and reads its header, without any key.
///
/// Errors: [`EnvelopeError::Malformed`] (size, magic, truncation, field encodings, a
/// non-canonical `enc`), [`EnvelopeError::UnsupportedVersion`], [`EnvelopeError::WeakKey`]
/// (a low-order `enc`).
pub fn parse(bytes: &[u8]) -> Result<ParsedEnvelope, EnvelopeError> {
    if bytes.len() > MAX_ENVELOPE_LEN {
        return Err(EnvelopeError::Malformed("envelope too large"));
    }
    let mut r = Reader(bytes);
    if *r.take::<4>()? != MAGIC {
        return Err(EnvelopeError::Malformed("not a jobseal envelope"));
    }
    // Version before length: a later version may have another layout, and deserves to be
    // reported as such rather than as garbage.
    if r.0.first().is_some_and(|&v| v != PROTOCOL_VERSION) {
        return Err(EnvelopeError::UnsupportedVersion);
    }
    if bytes.len() < MIN_ENVELOPE_LEN {
        return Err(EnvelopeError::Malformed("envelope truncated"));
    }
    let header_bytes = *r.take::<HEADER_LEN>()?;
    let header = EnvelopeHeader::from_bytes(&header_bytes)?;
    let enc = *r.take::<KEY_LEN>()?;
    check_public_key(&enc)?;
    Ok(ParsedEnvelope { header, header_bytes, enc, ciphertext: r.0.to_vec() })
}

/// Seals a job sheet from dispatch to one device key.
///
/// `dispatch_sk` is the dispatch key the device pinned at enrolment; `recipient_pk` must be the
/// key `header.recipient` names. The ephemeral key comes from the operating system's RNG.
pub fn seal_sheet(
    dispatch_sk: &SecretKey,
    recipient_pk: &PublicKey,
    header: &EnvelopeHeader,
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    use rand_core::RngCore as _;
    let mut eph_ikm = Zeroizing::new([0u8; KEY_LEN]);
    rand_core::OsRng.try_fill_bytes(&mut *eph_ikm).map_err(|_| EnvelopeError::Rng)?;
    seal_with_ikm(dispatch_sk, recipient_pk, header, plaintext, &eph_ikm)
}

/// [`seal_sheet`] with a caller-chosen ephemeral IKM (RFC 9180 `ikmE`, fed to `DeriveKeyPair`),
/// for test vectors only. Reusing an IKM reuses the ephemeral key and the AEAD key and nonce:
/// never call this with anything but a published test value. Compiled only for this crate's
/// tests and with the `insecure-test-hooks` feature, so no product build contains it.
#[cfg(any(test, feature = "insecure-test-hooks"))]
pub fn seal_sheet_with_ephemeral_insecure_for_testing(
    dispatch_sk: &SecretKey,
    recipient_pk: &PublicKey,
    header: &EnvelopeHeader,
    plaintext: &[u8],
    eph_ikm: &[u8; KEY_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    seal_with_ikm(dispatch_sk, recipient_pk, header, plaintext, eph_ikm)
}

/// Opens a parsed envelope: authenticates it as sealed by `expected_sender_pk` (the pinned
/// dispatch key) to `recipient_sk`, then checks that it names `expected_device_id`.
///
/// The caller chooses `recipient_sk` from `parsed.header().recipient`; a wrong key gives
/// [`EnvelopeError::Tampered`], as does any modification of the envelope or a different sender.
/// An authentic envelope for another device gives [`EnvelopeError::Misaddressed`]. Only after
/// `Ok` is the header authenticated.
pub fn open_sheet(
    parsed: &ParsedEnvelope,
    recipient_sk: &SecretKey,
    expected_sender_pk: &PublicKey,
    expected_device_id: Uuid,
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let info = info_for(&parsed.header_bytes);
    let mut ctx = receiver_context(recipient_sk, expected_sender_pk, &parsed.enc, &info)?;
    let plaintext = open_in(&mut ctx, &parsed.ciphertext, &parsed.header_bytes)?;
    // Checked after authentication so that an edited device id reads as Tampered, and
    // Misaddressed means dispatch really sealed this sheet for another device.
    if parsed.header.device_id != expected_device_id {
        return Err(EnvelopeError::Misaddressed);
    }
    Ok(plaintext)
}

fn seal_with_ikm(
    dispatch_sk: &SecretKey,
    recipient_pk: &PublicKey,
    header: &EnvelopeHeader,
    plaintext: &[u8],
    eph_ikm: &[u8; KEY_LEN],
) -> Result<Vec<u8>, EnvelopeError> {
    if header.protocol_version != PROTOCOL_VERSION {
        return Err(EnvelopeError::UnsupportedVersion);
    }
    let total = MIN_ENVELOPE_LEN
        .checked_add(plaintext.len())
        .filter(|&n| n <= MAX_ENVELOPE_LEN)
        .ok_or(EnvelopeError::Malformed("sheet too large for one envelope"))?;
    let header_bytes = header.to_bytes();
    let info = info_for(&header_bytes);
    let (enc, mut ctx) = sender_context(dispatch_sk, recipient_pk, &info, eph_ikm)?;

    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(&enc);
    seal_into(&mut ctx, &mut out, plaintext, &header_bytes)?;
    Ok(out)
}

/// Sets up the Auth-mode sender context. Shared by [`seal_sheet`] and the RFC 9180 vector test,
/// so the vectors check the code that runs in production.
fn sender_context(
    sender_sk: &SecretKey,
    recipient_pk: &PublicKey,
    info: &[u8],
    eph_ikm: &[u8; KEY_LEN],
) -> Result<([u8; KEY_LEN], SenderContext), EnvelopeError> {
    let mode = OpModeS::Auth((hpke_secret(sender_sk)?, hpke_public(&sender_sk.public_key())?));
    let pk_r = hpke_public(recipient_pk)?;
    let mut rng = OneShotIkm::new(eph_ikm);
    // hpke fails here only when a DH output is all zero, i.e. a low-order recipient key.
    let (enc, ctx) = hpke::setup_sender::<SuiteAead, SuiteKdf, SuiteKem, _>(&mode, &pk_r, info, &mut rng)
        .map_err(|_| EnvelopeError::WeakKey)?;
    if !rng.consumed_exactly_once() {
        // The ephemeral key would not be DeriveKeyPair(eph_ikm): refuse rather than seal under
        // a key we did not choose.
        return Err(EnvelopeError::Crypto);
    }
    Ok((enc.to_bytes().into(), ctx))
}

/// Appends ciphertext || tag to `out`. On failure, whatever plaintext was copied is wiped.
fn seal_into(ctx: &mut SenderContext, out: &mut Vec<u8>, plaintext: &[u8], aad: &[u8]) -> Result<(), EnvelopeError> {
    let start = out.len();
    out.extend_from_slice(plaintext);
    match ctx.seal_in_place_detached(&mut out[start..], aad) {
        Ok(tag) => {
            out.extend_from_slice(&tag.to_bytes());
            Ok(())
        }
        Err(_) => {
            out[start..].zeroize();
            out.truncate(start);
            Err(EnvelopeError::Crypto)
        }
    }
}

/// Sets up the Auth-mode receiver context. Shared by [`open_sheet`] and the RFC 9180 vector
/// test. `enc` is not re-checked against the low-order list here ([`parse`] did it); hpke's
/// all-zero DH check is the second line.
fn receiver_context(
    recipient_sk: &SecretKey,
    sender_pk: &PublicKey,
    enc: &[u8; KEY_LEN],
    info: &[u8],
) -> Result<ReceiverContext, EnvelopeError> {
    let enc = HpkeEncappedKey::from_bytes(enc).map_err(|_| EnvelopeError::Malformed("enc must be 32 bytes"))?;
    let mode = OpModeR::Auth(hpke_public(sender_pk)?);
    let sk_r = hpke_secret(recipient_sk)?;
    hpke::setup_receiver::<SuiteAead, SuiteKdf, SuiteKem>(&mode, &sk_r, &enc, info).map_err(|_| EnvelopeError::WeakKey)
}

/// Authenticates and decrypts ciphertext || tag into a buffer that wipes itself.
fn open_in(ctx: &mut ReceiverContext, ciphertext: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    let body_len =
        ciphertext.len().checked_sub(TAG_LEN).ok_or(EnvelopeError::Malformed("ciphertext shorter than its tag"))?;
    let (body, tag) = ciphertext.split_at(body_len);
    let tag = AeadTag::<SuiteAead>::from_bytes(tag).map_err(|_| EnvelopeError::Malformed("bad tag length"))?;
    let mut buf = Zeroizing::new(body.to_vec());
    ctx.open_in_place_detached(&mut buf, aad, &tag).map_err(|_| EnvelopeError::Tampered)?;
    Ok(buf)
}

/// Hands hpke exactly the 32 bytes we chose as ephemeral IKM. hpke 0.13 draws the ephemeral key
/// as `DeriveKeyPair(32 bytes from the RNG)`; feeding it our IKM lets production (IKM from the OS)
/// and test vectors (fixed IKM) run the same code, and keeps the OS RNG error typed instead of a
/// panic inside hpke.
#[derive(Zeroize, ZeroizeOnDrop)]
struct OneShotIkm {
    ikm: [u8; KEY_LEN],
    used: usize,
    overdrawn: bool,
}

impl OneShotIkm {
    fn new(ikm: &[u8; KEY_LEN]) -> OneShotIkm {
        OneShotIkm { ikm: *ikm, used: 0, overdrawn: false }
    }

    fn consumed_exactly_once(&self) -> bool {
        self.used == KEY_LEN && !self.overdrawn
    }
}

impl hpke::rand_core::RngCore for OneShotIkm {
    fn next_u32(&mut self) -> u32 {
        hpke::rand_core::impls::next_u32_via_fill(self)
    }

    fn next_u64(&mut self) -> u64 {
        hpke::rand_core::impls::next_u64_via_fill(self)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for b in dst {
            match self.ikm.get(self.used) {
                Some(&v) => {
                    *b = v;
                    self.used += 1;
                }
                None => {
                    *b = 0;
                    self.overdrawn = true;
                }
            }
        }
    }
}

impl hpke::rand_core::CryptoRng for OneShotIkm {}

// ---------------------------------------------------------------------------------------------
// Byte helpers
// ---------------------------------------------------------------------------------------------

/// Reads fixed-size fields; running out of input is a typed error, never a panic.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Result<&'a [u8; N], EnvelopeError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(EnvelopeError::Malformed("envelope truncated"))?;
        self.0 = rest;
        Ok(head)
    }
}

/// Writes into a buffer whose size is fixed by construction (header, info); callers size the
/// buffer from the same constants, so nothing here depends on input.
struct Writer<'a>(&'a mut [u8]);

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        let buf = core::mem::take(&mut self.0);
        let (head, rest) = buf.split_at_mut(bytes.len());
        head.copy_from_slice(bytes);
        self.0 = rest;
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::LOW_ORDER_POINTS;
    use hpke::Kem as _;
    use serde_json::{json, Value};
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};

    const RFC9180_VECTORS: &str = include_str!("../../docs/vectors/rfc9180-x25519-sha256-chacha20poly1305.json");

    const DEVICE: Uuid = Uuid::from_u128(0xd3c1ce00_0000_4000_8000_000000000001);
    const OTHER_DEVICE: Uuid = Uuid::from_u128(0xd3c1ce00_0000_4000_8000_000000000002);
    const JOB: Uuid = Uuid::from_u128(0x10b00000_0000_4000_8000_000000000042);

    /// Obviously fake customer data; the sheet schema itself is defined elsewhere.
    const SHEET: &str = concat!(
        r#"{"job_id":"10b00000-0000-4000-8000-000000000042","#,
        r#""customer":{"name":"Test Customer","phone":"+33 6 00 00 00 00","#,
        r#""address":"1 rue de l'Exemple, 00000 Exempleville","floor":"2","door_code":"0000"},"#,
        r#""policy":{"name":"en_route","address":"en_route","phone":"en_route..on_site","#,
        r#""door_code":"on_site"}}"#
    );

    fn hex(bytes: &[u8]) -> String {
        crate::hex::encode(bytes)
    }

    fn unhex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2), "odd hex length");
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit")).collect()
    }

    fn unhex32(s: &str) -> [u8; 32] {
        unhex(s).try_into().expect("32 bytes")
    }

    fn fixed_bytes(label: &str) -> [u8; 32] {
        Sha256::digest(label.as_bytes()).into()
    }

    fn fixed_key(label: &str) -> SecretKey {
        SecretKey::from_bytes(&fixed_bytes(label)).expect("fixed key")
    }

    struct Parties {
        dispatch: SecretKey,
        prekey: SecretKey,
        identity: SecretKey,
    }

    fn parties() -> Parties {
        Parties {
            dispatch: generate_keypair().expect("rng").0,
            prekey: generate_keypair().expect("rng").0,
            identity: generate_keypair().expect("rng").0,
        }
    }

    fn prekey_header() -> EnvelopeHeader {
        EnvelopeHeader::new(DEVICE, JOB, 7, RecipientKeyId::Prekey(42))
    }

    fn sealed(p: &Parties) -> Vec<u8> {
        seal_sheet(&p.dispatch, &p.prekey.public_key(), &prekey_header(), SHEET.as_bytes()).expect("seal")
    }

    fn open_bytes(p: &Parties, bytes: &[u8]) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let parsed = parse(bytes)?;
        open_sheet(&parsed, &p.prekey, &p.dispatch.public_key(), DEVICE)
    }

    /// Every byte string X25519 maps to a low-order point: the 7 listed encodings, with and
    /// without bit 255.
    fn all_low_order_encodings() -> Vec<[u8; 32]> {
        LOW_ORDER_POINTS
            .iter()
            .flat_map(|p| {
                let mut high = *p;
                high[31] |= 0x80;
                [*p, high]
            })
            .collect()
    }

    // ---- RFC 9180 -----------------------------------------------------------------------

    fn rfc_vectors() -> Vec<Value> {
        let file: Value = serde_json::from_str(RFC9180_VECTORS).expect("vector file is JSON");
        let vectors = file["vectors"].as_array().expect("vectors array").clone();
        for v in &vectors {
            assert_eq!(v["kem_id"], 32);
            assert_eq!(v["kdf_id"], 1);
            assert_eq!(v["aead_id"], 3);
        }
        vectors
    }

    /// (pt, aad, ct) of one listed encryption.
    type Encryption = (Vec<u8>, Vec<u8>, Vec<u8>);

    fn field(v: &Value, name: &str) -> Vec<u8> {
        unhex(v[name].as_str().unwrap_or_else(|| panic!("missing {name}")))
    }

    fn export_len(e: &Value) -> usize {
        match &e["L"] {
            Value::String(s) => s.parse().expect("L"),
            other => other.as_u64().expect("L") as usize,
        }
    }

    /// Encryptions keyed by sequence number; the file lists a subset (0, 1, 2, 4, 255, 256), so
    /// the gaps are filled with our own messages to move both contexts along.
    fn encryptions(v: &Value) -> (BTreeMap<u64, Encryption>, u64) {
        let map: BTreeMap<u64, _> = v["encryptions"]
            .as_array()
            .expect("encryptions")
            .iter()
            .map(|e| {
                let seq = e["seq"].as_u64().expect("seq");
                (seq, (field(e, "pt"), field(e, "aad"), field(e, "ct")))
            })
            .collect();
        let last = *map.keys().last().expect("at least one encryption");
        (map, last)
    }

    fn check_derived_keypair(v: &Value, ikm: &str, sk: &str, pk: &str) {
        let (sk_d, pk_d) = SuiteKem::derive_keypair(&field(v, ikm));
        assert_eq!(sk_d.to_bytes().as_slice(), field(v, sk).as_slice(), "{sk}");
        assert_eq!(pk_d.to_bytes().as_slice(), field(v, pk).as_slice(), "{pk}");
        let ours = SecretKey::from_bytes(&unhex32(v[sk].as_str().expect("sk"))).expect("sk");
        assert_eq!(ours.public_key().as_bytes().as_slice(), field(v, pk).as_slice());
        assert!(PublicKey::from_bytes(&field(v, pk)).is_ok());
    }

    #[test]
    fn rfc9180_auth_mode_through_envelope_helpers() {
        let v = rfc_vectors().into_iter().find(|v| v["mode"] == 2).expect("auth mode vector");
        check_derived_keypair(&v, "ikmE", "skEm", "pkEm");
        check_derived_keypair(&v, "ikmR", "skRm", "pkRm");
        check_derived_keypair(&v, "ikmS", "skSm", "pkSm");

        let info = field(&v, "info");
        let sk_s = SecretKey::from_bytes(&unhex32(v["skSm"].as_str().unwrap())).unwrap();
        let pk_r = PublicKey::from_bytes(&field(&v, "pkRm")).unwrap();
        let sk_r = SecretKey::from_bytes(&unhex32(v["skRm"].as_str().unwrap())).unwrap();
        let pk_s = PublicKey::from_bytes(&field(&v, "pkSm")).unwrap();

        let ikm_e = unhex32(v["ikmE"].as_str().unwrap());
        let (enc, mut sender) = sender_context(&sk_s, &pk_r, &info, &ikm_e).unwrap();
        assert_eq!(enc.as_slice(), field(&v, "enc").as_slice());
        let mut receiver = receiver_context(&sk_r, &pk_s, &enc, &info).unwrap();

        let (listed, last) = encryptions(&v);
        for seq in 0..=last {
            let mut ct = Vec::new();
            match listed.get(&seq) {
                Some((pt, aad, expected_ct)) => {
                    seal_into(&mut sender, &mut ct, pt, aad).unwrap();
                    assert_eq!(&ct, expected_ct, "ct at seq {seq}");
                    let opened = open_in(&mut receiver, expected_ct, aad).unwrap();
                    assert_eq!(opened.as_slice(), pt.as_slice(), "pt at seq {seq}");
                }
                None => {
                    let aad = format!("Count-{seq}");
                    seal_into(&mut sender, &mut ct, b"filler", aad.as_bytes()).unwrap();
                    let opened = open_in(&mut receiver, &ct, aad.as_bytes()).unwrap();
                    assert_eq!(opened.as_slice(), b"filler");
                }
            }
        }

        for e in v["exports"].as_array().unwrap() {
            let ctx = field(e, "exporter_context");
            let expected = field(e, "exported_value");
            let mut out_s = vec![0u8; export_len(e)];
            let mut out_r = vec![0u8; export_len(e)];
            sender.export(&ctx, &mut out_s).unwrap();
            receiver.export(&ctx, &mut out_r).unwrap();
            assert_eq!(out_s, expected);
            assert_eq!(out_r, expected);
        }
    }

    #[test]
    fn rfc9180_all_modes_through_hpke() {
        let vectors = rfc_vectors();
        let modes: Vec<u64> = vectors.iter().map(|v| v["mode"].as_u64().unwrap()).collect();
        assert_eq!(modes, [0, 1, 2, 3]);
        for v in &vectors {
            let mode = v["mode"].as_u64().unwrap();
            check_derived_keypair(v, "ikmE", "skEm", "pkEm");
            check_derived_keypair(v, "ikmR", "skRm", "pkRm");
            let (sk_r, pk_r) = SuiteKem::derive_keypair(&field(v, "ikmR"));
            let sender_id = (mode == 2 || mode == 3).then(|| {
                check_derived_keypair(v, "ikmS", "skSm", "pkSm");
                SuiteKem::derive_keypair(&field(v, "ikmS"))
            });
            let (psk, psk_id) =
                if mode == 1 || mode == 3 { (field(v, "psk"), field(v, "psk_id")) } else { (Vec::new(), Vec::new()) };
            let bundle = hpke::PskBundle::new(&psk, &psk_id).unwrap();
            let (mode_s, mode_r) = match (&sender_id, mode) {
                (None, 0) => (OpModeS::Base, OpModeR::Base),
                (None, 1) => (OpModeS::Psk(bundle), OpModeR::Psk(bundle)),
                (Some((sk, pk)), 2) => (OpModeS::Auth((sk.clone(), pk.clone())), OpModeR::Auth(pk.clone())),
                (Some((sk, pk)), 3) => {
                    (OpModeS::AuthPsk((sk.clone(), pk.clone()), bundle), OpModeR::AuthPsk(pk.clone(), bundle))
                }
                _ => unreachable!("mode {mode}"),
            };

            let info = field(v, "info");
            let mut rng = OneShotIkm::new(&unhex32(v["ikmE"].as_str().unwrap()));
            let (enc, mut sender) =
                hpke::setup_sender::<SuiteAead, SuiteKdf, SuiteKem, _>(&mode_s, &pk_r, &info, &mut rng).unwrap();
            assert!(rng.consumed_exactly_once());
            assert_eq!(enc.to_bytes().as_slice(), field(v, "enc").as_slice(), "mode {mode}");
            let mut receiver =
                hpke::setup_receiver::<SuiteAead, SuiteKdf, SuiteKem>(&mode_r, &sk_r, &enc, &info).unwrap();

            let (listed, last) = encryptions(v);
            for seq in 0..=last {
                match listed.get(&seq) {
                    Some((pt, aad, ct)) => {
                        assert_eq!(&sender.seal(pt, aad).unwrap(), ct, "mode {mode} seq {seq}");
                        assert_eq!(&receiver.open(ct, aad).unwrap(), pt, "mode {mode} seq {seq}");
                    }
                    None => {
                        let ct = sender.seal(b"filler", b"").unwrap();
                        assert_eq!(receiver.open(&ct, b"").unwrap(), b"filler");
                    }
                }
            }
            for e in v["exports"].as_array().unwrap() {
                let ctx = field(e, "exporter_context");
                let mut out_s = vec![0u8; export_len(e)];
                let mut out_r = vec![0u8; export_len(e)];
                sender.export(&ctx, &mut out_s).unwrap();
                receiver.export(&ctx, &mut out_r).unwrap();
                assert_eq!(out_s, field(e, "exported_value"), "mode {mode}");
                assert_eq!(out_r, field(e, "exported_value"), "mode {mode}");
            }
        }
    }

    // ---- Round trips and attacks ----------------------------------------------------------

    #[test]
    fn round_trip_to_prekey_and_identity() {
        let p = parties();
        let bytes = sealed(&p);
        assert_eq!(bytes.len(), MIN_ENVELOPE_LEN + SHEET.len());
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.header(), &prekey_header());
        assert_eq!(parsed.ciphertext_len(), SHEET.len() + TAG_LEN);
        let opened = open_sheet(&parsed, &p.prekey, &p.dispatch.public_key(), DEVICE).unwrap();
        assert_eq!(opened.as_slice(), SHEET.as_bytes());

        let header = EnvelopeHeader::new(DEVICE, JOB, 8, RecipientKeyId::Identity);
        let bytes = seal_sheet(&p.dispatch, &p.identity.public_key(), &header, SHEET.as_bytes()).unwrap();
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.header().recipient, RecipientKeyId::Identity);
        let opened = open_sheet(&parsed, &p.identity, &p.dispatch.public_key(), DEVICE).unwrap();
        assert_eq!(opened.as_slice(), SHEET.as_bytes());

        // An empty sheet is still a valid envelope at this layer.
        let bytes = seal_sheet(&p.dispatch, &p.prekey.public_key(), &prekey_header(), b"").unwrap();
        assert_eq!(bytes.len(), MIN_ENVELOPE_LEN);
        assert!(open_bytes(&p, &bytes).unwrap().is_empty());
    }

    #[test]
    fn sealing_is_randomized() {
        let p = parties();
        let (a, b) = (sealed(&p), sealed(&p));
        assert_ne!(a[50..82], b[50..82], "fresh ephemeral key per envelope");
        assert_ne!(a, b);
        assert!(open_bytes(&p, &a).is_ok() && open_bytes(&p, &b).is_ok());
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let p = parties();
        let bytes = sealed(&p);
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                match open_bytes(&p, &bad) {
                    Err(EnvelopeError::Malformed(_))
                    | Err(EnvelopeError::UnsupportedVersion)
                    | Err(EnvelopeError::Tampered) => {}
                    other => panic!("byte {i} bit {bit}: {:?}", other.map(|_| "opened")),
                }
            }
        }
    }

    #[test]
    fn truncation_and_extension_are_rejected() {
        let p = parties();
        let bytes = sealed(&p);
        for len in 0..bytes.len() {
            match open_bytes(&p, &bytes[..len]) {
                Err(EnvelopeError::Malformed(_)) | Err(EnvelopeError::Tampered) => {}
                other => panic!("prefix {len}: {:?}", other.map(|_| "opened")),
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(open_bytes(&p, &longer).unwrap_err(), EnvelopeError::Tampered);
    }

    #[test]
    fn wrong_sender_key_is_rejected() {
        let p = parties();
        let bytes = sealed(&p);
        let parsed = parse(&bytes).unwrap();
        let (_, impostor) = generate_keypair().unwrap();
        assert_eq!(open_sheet(&parsed, &p.prekey, &impostor, DEVICE).unwrap_err(), EnvelopeError::Tampered);
        // A forger who seals with its own key to the right prekey fails the same way.
        let (forger, _) = generate_keypair().unwrap();
        let forged = seal_sheet(&forger, &p.prekey.public_key(), &prekey_header(), SHEET.as_bytes()).unwrap();
        assert_eq!(open_bytes(&p, &forged).unwrap_err(), EnvelopeError::Tampered);
    }

    #[test]
    fn wrong_recipient_key_is_rejected() {
        let p = parties();
        let parsed = parse(&sealed(&p)).unwrap();
        assert_eq!(
            open_sheet(&parsed, &p.identity, &p.dispatch.public_key(), DEVICE).unwrap_err(),
            EnvelopeError::Tampered
        );
    }

    #[test]
    fn envelope_for_another_device_is_misaddressed() {
        let p = parties();
        let header = EnvelopeHeader::new(OTHER_DEVICE, JOB, 7, RecipientKeyId::Prekey(42));
        let bytes = seal_sheet(&p.dispatch, &p.prekey.public_key(), &header, SHEET.as_bytes()).unwrap();
        assert_eq!(open_bytes(&p, &bytes).unwrap_err(), EnvelopeError::Misaddressed);
    }

    #[test]
    fn header_edits_are_tampered() {
        let p = parties();
        let bytes = sealed(&p);
        let edits: [fn(&mut EnvelopeHeader); 5] = [
            |h| h.job_id = Uuid::from_u128(0x10b00000_0000_4000_8000_000000000043),
            |h| h.sheet_version = 6,
            |h| h.sheet_version = 8,
            |h| h.recipient = RecipientKeyId::Prekey(43),
            // Re-addressing a sheet to another device (opened there with that device's id)
            // fails authentication: the device id is bound like the rest.
            |h| h.device_id = OTHER_DEVICE,
        ];
        for (i, edit) in edits.iter().enumerate() {
            let mut header = prekey_header();
            edit(&mut header);
            let mut bad = bytes.clone();
            bad[4..4 + HEADER_LEN].copy_from_slice(&header.to_bytes());
            let parsed = parse(&bad).unwrap();
            assert_eq!(parsed.header(), &header);
            let expected_device = header.device_id;
            assert_eq!(
                open_sheet(&parsed, &p.prekey, &p.dispatch.public_key(), expected_device).unwrap_err(),
                EnvelopeError::Tampered,
                "edit {i}"
            );
        }
    }

    // ---- Keys -----------------------------------------------------------------------------

    #[test]
    fn low_order_list_matches_x25519() {
        // Each listed encoding must really zero the DH for an arbitrary scalar, which hpke
        // reports as a decapsulation failure; a random point must not.
        let (sk, _) = SuiteKem::derive_keypair(&fixed_bytes("low order probe"));
        for bad in all_low_order_encodings() {
            let enc = HpkeEncappedKey::from_bytes(&bad).unwrap();
            assert!(
                hpke::setup_receiver::<SuiteAead, SuiteKdf, SuiteKem>(&OpModeR::Base, &sk, &enc, b"").is_err(),
                "{} is not low order",
                hex(&bad)
            );
        }
        let (_, good) = generate_keypair().unwrap();
        let enc = HpkeEncappedKey::from_bytes(good.as_bytes()).unwrap();
        assert!(hpke::setup_receiver::<SuiteAead, SuiteKdf, SuiteKem>(&OpModeR::Base, &sk, &enc, b"").is_ok());
    }

    #[test]
    fn weak_public_keys_are_rejected_at_parse() {
        let p = parties();
        let bytes = sealed(&p);
        for bad in all_low_order_encodings() {
            assert_eq!(PublicKey::from_bytes(&bad).unwrap_err(), EnvelopeError::WeakKey);
            assert_eq!(hex(&bad).parse::<PublicKey>().unwrap_err(), EnvelopeError::WeakKey);
            assert!(serde_json::from_value::<PublicKey>(json!(hex(&bad))).is_err());
            let mut env = bytes.clone();
            env[50..82].copy_from_slice(&bad);
            assert_eq!(parse(&env).unwrap_err(), EnvelopeError::WeakKey, "{}", hex(&bad));
        }
        assert_eq!(SecretKey::from_bytes(&[0u8; 32]).err(), Some(EnvelopeError::WeakKey));
        let mut wiped = generate_keypair().unwrap().0;
        wiped.zeroize();
        assert_eq!(
            seal_sheet(&wiped, &p.prekey.public_key(), &prekey_header(), b"x").unwrap_err(),
            EnvelopeError::WeakKey
        );
        let parsed = parse(&bytes).unwrap();
        assert_eq!(open_sheet(&parsed, &wiped, &p.dispatch.public_key(), DEVICE).unwrap_err(), EnvelopeError::WeakKey);
    }

    #[test]
    fn weak_public_keys_are_rejected_at_open_and_seal() {
        // Bypass the parse-time list to check that the DH itself refuses them.
        let p = parties();
        let parsed = parse(&sealed(&p)).unwrap();
        for bad in all_low_order_encodings() {
            let mut forged = parsed.clone();
            forged.enc = bad;
            assert_eq!(
                open_sheet(&forged, &p.prekey, &p.dispatch.public_key(), DEVICE).unwrap_err(),
                EnvelopeError::WeakKey
            );
            assert_eq!(
                open_sheet(&parsed, &p.prekey, &PublicKey::from_bytes_unchecked_insecure_for_testing(bad), DEVICE)
                    .unwrap_err(),
                EnvelopeError::WeakKey
            );
            assert_eq!(
                seal_sheet(
                    &p.dispatch,
                    &PublicKey::from_bytes_unchecked_insecure_for_testing(bad),
                    &prekey_header(),
                    b"x"
                )
                .unwrap_err(),
                EnvelopeError::WeakKey
            );
        }
    }

    // ---- Framing ---------------------------------------------------------------------------

    #[test]
    fn header_encoding_is_strict() {
        for h in [prekey_header(), EnvelopeHeader::new(DEVICE, JOB, u64::MAX, RecipientKeyId::Identity)] {
            assert_eq!(EnvelopeHeader::from_bytes(&h.to_bytes()).unwrap(), h);
            let mut info = INFO_LABEL.to_vec();
            info.extend_from_slice(&h.to_bytes());
            assert_eq!(h.hpke_info().as_slice(), info.as_slice());
        }
        let mut b = prekey_header().to_bytes();
        b[41] = 0x03;
        assert!(matches!(EnvelopeHeader::from_bytes(&b), Err(EnvelopeError::Malformed(_))));
        let mut b = EnvelopeHeader::new(DEVICE, JOB, 1, RecipientKeyId::Identity).to_bytes();
        b[45] = 1;
        assert!(matches!(EnvelopeHeader::from_bytes(&b), Err(EnvelopeError::Malformed(_))));
        let b = prekey_header().to_bytes();
        assert!(matches!(EnvelopeHeader::from_bytes(&b[..45]), Err(EnvelopeError::Malformed(_))));
        let mut long = b.to_vec();
        long.push(0);
        assert!(matches!(EnvelopeHeader::from_bytes(&long), Err(EnvelopeError::Malformed(_))));
    }

    #[test]
    fn unsupported_version_is_reported() {
        let p = parties();
        let mut bytes = sealed(&p);
        bytes[4] = 2;
        assert_eq!(parse(&bytes).unwrap_err(), EnvelopeError::UnsupportedVersion);
        // Even a future envelope too short for our layout is reported as a version problem.
        assert_eq!(parse(b"JSEL\x02").unwrap_err(), EnvelopeError::UnsupportedVersion);
        let mut header = prekey_header();
        header.protocol_version = 2;
        assert_eq!(
            seal_sheet(&p.dispatch, &p.prekey.public_key(), &header, b"x").unwrap_err(),
            EnvelopeError::UnsupportedVersion
        );
    }

    #[test]
    fn size_cap_is_enforced() {
        let p = parties();
        let max_sheet = vec![b'x'; MAX_ENVELOPE_LEN - MIN_ENVELOPE_LEN];
        let bytes = seal_sheet(&p.dispatch, &p.prekey.public_key(), &prekey_header(), &max_sheet).unwrap();
        assert_eq!(bytes.len(), MAX_ENVELOPE_LEN);
        assert_eq!(open_bytes(&p, &bytes).unwrap().len(), max_sheet.len());

        let too_big = vec![b'x'; max_sheet.len() + 1];
        assert!(matches!(
            seal_sheet(&p.dispatch, &p.prekey.public_key(), &prekey_header(), &too_big),
            Err(EnvelopeError::Malformed(_))
        ));
        let mut bytes = bytes;
        bytes.push(0);
        assert!(matches!(parse(&bytes), Err(EnvelopeError::Malformed(_))));
    }

    #[test]
    fn errors_and_debug_leak_nothing() {
        let p = parties();
        let bytes = sealed(&p);
        let parsed = parse(&bytes).unwrap();
        let secrets = [
            hex(&*p.prekey.to_bytes()),
            hex(&*p.dispatch.to_bytes()),
            "Test Customer".to_owned(),
            "00 00 00 00".to_owned(),
        ];
        let mut texts = vec![format!("{parsed:?}")];
        let mut bad = bytes.clone();
        bad[90] ^= 1;
        for r in [
            open_bytes(&p, &bad),
            open_sheet(&parsed, &p.identity, &p.dispatch.public_key(), DEVICE),
            open_sheet(&parsed, &p.prekey, &p.dispatch.public_key(), OTHER_DEVICE),
            open_bytes(&p, &bytes[..60]),
        ] {
            let e = r.unwrap_err();
            texts.push(format!("{e} {e:?}"));
        }
        for t in &texts {
            for s in &secrets {
                assert!(!t.contains(s.as_str()), "leak in {t}");
            }
        }
    }

    // ---- Protocol vectors (docs/vectors/envelope-v1.json) ----------------------------------

    fn vectors_path() -> PathBuf {
        // file!() is absolute when this module is pulled in with #[path], and relative to the
        // workspace root in the normal build; find this file either way, then go to docs/.
        let here = Path::new(file!());
        let src = if here.is_absolute() {
            here.to_path_buf()
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|d| d.join(here))
                .find(|p| p.exists())
                .expect("locate envelope.rs")
        };
        src.parent()
            .and_then(Path::parent)
            .and_then(Path::parent)
            .expect("repository root")
            .join("docs/vectors/envelope-v1.json")
    }

    fn header_json(h: &EnvelopeHeader) -> Value {
        let recipient = match h.recipient {
            RecipientKeyId::Prekey(id) => json!({ "kind": "prekey", "prekey_id": id }),
            RecipientKeyId::Identity => json!({ "kind": "identity" }),
        };
        json!({
            "protocol_version": h.protocol_version,
            "device_id": h.device_id.hyphenated().to_string(),
            "job_id": h.job_id.hyphenated().to_string(),
            "sheet_version": h.sheet_version,
            "recipient": recipient,
        })
    }

    fn protocol_vector(
        name: &str,
        dispatch: &SecretKey,
        recipient: &SecretKey,
        header: &EnvelopeHeader,
        ikm_label: &str,
    ) -> Value {
        let ikm_e = fixed_bytes(ikm_label);
        let (sk_e, pk_e) = SuiteKem::derive_keypair(&ikm_e);
        let envelope = seal_sheet_with_ephemeral_insecure_for_testing(
            dispatch,
            &recipient.public_key(),
            header,
            SHEET.as_bytes(),
            &ikm_e,
        )
        .unwrap();
        let ct_start = MAGIC.len() + HEADER_LEN + KEY_LEN;
        assert_eq!(&envelope[MAGIC.len() + HEADER_LEN..ct_start], pk_e.to_bytes().as_slice());
        json!({
            "name": name,
            "skS": hex(&*dispatch.to_bytes()),
            "pkS": hex(dispatch.public_key().as_bytes()),
            "skR": hex(&*recipient.to_bytes()),
            "pkR": hex(recipient.public_key().as_bytes()),
            "ikmE": hex(&ikm_e),
            "skE": hex(&sk_e.to_bytes()),
            "enc": hex(&pk_e.to_bytes()),
            "header": header_json(header),
            "info": hex(&header.hpke_info()),
            "aad": hex(&header.to_bytes()),
            "plaintext": SHEET,
            "ciphertext": hex(&envelope[ct_start..]),
            "envelope": hex(&envelope),
        })
    }

    fn protocol_vectors() -> Value {
        let dispatch = fixed_key("jobseal envelope-v1 test vector: dispatch key");
        let prekey = fixed_key("jobseal envelope-v1 test vector: device prekey 42");
        let identity = fixed_key("jobseal envelope-v1 test vector: device identity key");
        json!({
            "description": concat!(
                "jobseal sealed job sheet envelopes, protocol version 1 (docs/protocol.md). ",
                "HPKE RFC 9180 mode_auth (2), DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ",
                "ChaCha20Poly1305. Byte fields are lowercase hex. Keys and ikmE are ",
                "SHA-256 of ASCII labels; all customer data is fake."
            ),
            "mode": 2,
            "kem_id": 32,
            "kdf_id": 1,
            "aead_id": 3,
            "vectors": [
                protocol_vector(
                    "to_prekey",
                    &dispatch,
                    &prekey,
                    &EnvelopeHeader::new(DEVICE, JOB, 7, RecipientKeyId::Prekey(42)),
                    "jobseal envelope-v1 test vector: ephemeral 1",
                ),
                protocol_vector(
                    "to_identity_key",
                    &dispatch,
                    &identity,
                    &EnvelopeHeader::new(DEVICE, JOB, 8, RecipientKeyId::Identity),
                    "jobseal envelope-v1 test vector: ephemeral 2",
                ),
            ],
        })
    }

    #[test]
    fn protocol_vectors_match_docs() {
        let expected = protocol_vectors();
        let path = vectors_path();
        if std::env::var("JOBSEAL_REGENERATE_VECTORS").as_deref() == Ok("1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = serde_json::to_string_pretty(&expected).unwrap() + "\n";
            std::fs::write(&path, text).unwrap();
            return;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; run with JOBSEAL_REGENERATE_VECTORS=1", path.display()));
        let on_disk: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(on_disk, expected, "docs/vectors/envelope-v1.json is stale");

        // Read the file as a backend would: from the hex fields alone, open each envelope.
        for v in on_disk["vectors"].as_array().unwrap() {
            let sk_r = SecretKey::from_bytes(&unhex32(v["skR"].as_str().unwrap())).unwrap();
            let pk_s: PublicKey = v["pkS"].as_str().unwrap().parse().unwrap();
            let device: Uuid = v["header"]["device_id"].as_str().unwrap().parse().unwrap();
            let parsed = parse(&unhex(v["envelope"].as_str().unwrap())).unwrap();
            assert_eq!(hex(&parsed.header_bytes), v["aad"].as_str().unwrap());
            let opened = open_sheet(&parsed, &sk_r, &pk_s, device).unwrap();
            assert_eq!(opened.as_slice(), v["plaintext"].as_str().unwrap().as_bytes());
        }
    }
}

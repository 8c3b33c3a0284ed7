//! Authenticated enrolment: one-time enrolment codes and the proofs an enrolment request carries
//! (G4; issue 12).
//!
//! A device's public bundle is no secret, so a request that only carries it proves nothing: anyone
//! could re-post it (locking the real device out by rotating its token) or claim a device id
//! before the device does. Every enrolment request therefore carries proofs over its own content
//! (device id, identity key, prekeys, a fresh random nonce):
//!
//! - A **code proof** for the first enrolment of a device id: an HMAC keyed by a key derived (HKDF)
//!   from a one-time enrolment code an operator issued. The code itself never travels; its id
//!   (the first group, not secret) does, so dispatch finds the one code to check without trying
//!   every live one. Dispatch keeps only the derived key, so a copy of its database does not
//!   reveal the code.
//! - An **identity proof** on every request: an HMAC keyed by [`pairing::shared_key`] over the
//!   device's identity key and dispatch's key, which only the holder of the identity secret (or
//!   dispatch) can compute. It is what lets a device whose enrolment answer was lost enrol again
//!   without a code, and what stops anyone else from doing so.
//!
//! The answer's device token is sealed to the identity key with the request's nonce and the
//! answer's server time in the associated data, so a replayed or altered answer does not open.

use crate::bundle::DeviceBundle;
use crate::crypto::{Aad, Key32, PublicKey, SecretKey};
use crate::pairing;
use crate::wire::{CodeProof, EnrolRequest};
use crate::{Error, Result};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;
use uuid::Uuid;
use zeroize::Zeroizing;

/// The format tag of an enrolment request. Version 1 requests (a bare bundle) are refused.
pub const ENROL_REQUEST_FORMAT: &str = "jobseal.enrol.v2";
/// HKDF salt of the key derived from an enrolment code.
pub const CODE_KEY_SALT: &[u8] = b"jobseal/v2/enrolment-code-key";
/// HKDF salt of the identity-proof key ([`pairing::shared_key`]).
pub const IDENTITY_PROOF_SALT: &[u8] = b"jobseal/v2/enrolment-identity-proof";
/// HKDF salt of the key that seals the device token in the enrolment answer.
pub const ANSWER_KEY_SALT: &[u8] = b"jobseal/v2/enrolment-answer";
/// Length of the request nonce, bytes.
pub const NONCE_LEN: usize = 32;
/// Length of a proof (HMAC-SHA256), bytes.
pub const PROOF_LEN: usize = 32;
/// Groups in an enrolment code.
pub const CODE_GROUPS: usize = 4;
/// Characters per group.
pub const CODE_GROUP_LEN: usize = 5;
/// Characters of a code (without separators): 20 base32 characters, 100 bits, of which the first
/// group (25 bits) is the code's public id and the rest (75 bits) only its holder knows.
pub const CODE_LEN: usize = CODE_GROUPS * CODE_GROUP_LEN;

/// Crockford's base32 alphabet: no I, L, O or U, so a code read aloud or typed is unambiguous.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A one-time enrolment code, normalised (upper case, no separators). Zeroized on drop and
/// redacted in `Debug`: it is a credential until used.
#[derive(Clone, PartialEq, Eq)]
pub struct EnrolmentCode(Zeroizing<String>);

impl EnrolmentCode {
    /// A fresh random code from the operating system's generator.
    pub fn generate() -> Result<Self> {
        let raw = Zeroizing::new(crate::crypto::random_bytes::<CODE_LEN>()?);
        // 256 is a multiple of 32: the low five bits of a random byte are uniform.
        let s: String = raw.iter().map(|b| char::from(ALPHABET[usize::from(b & 31)])).collect();
        Ok(EnrolmentCode(Zeroizing::new(s)))
    }

    /// Parses a code as typed: case, spaces and dashes do not matter, and O, I and L are read as
    /// 0, 1 and 1 (Crockford). The error never repeats the input.
    pub fn parse(typed: &str) -> Result<Self> {
        let mut s = Zeroizing::new(String::with_capacity(CODE_LEN));
        for c in typed.chars() {
            let c = match c.to_ascii_uppercase() {
                '-' | ' ' => continue,
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !ALPHABET.contains(&(c as u8)) {
                return Err(Error::InvalidInput(
                    "an enrolment code has only the characters 0-9 and A-Z (without U)".into(),
                ));
            }
            s.push(c);
        }
        if s.len() != CODE_LEN {
            return Err(Error::InvalidInput(format!(
                "an enrolment code has {CODE_LEN} characters ({CODE_GROUPS} groups of {CODE_GROUP_LEN})"
            )));
        }
        Ok(EnrolmentCode(s))
    }

    /// Whether `id` has the form of a code id (one group of the alphabet).
    pub fn is_code_id(id: &str) -> bool {
        id.len() == CODE_GROUP_LEN && id.bytes().all(|b| ALPHABET.contains(&b))
    }

    /// The code's public id: its first group. Sent in clear so dispatch knows which code to check.
    pub fn id(&self) -> &str {
        &self.0[..CODE_GROUP_LEN]
    }

    /// The code as shown to a person: groups separated by dashes.
    pub fn display(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(CODE_LEN + CODE_GROUPS));
        for (i, c) in self.0.chars().enumerate() {
            if i > 0 && i % CODE_GROUP_LEN == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// The key proofs are made with: HKDF-SHA256 of the normalised code. Dispatch stores this,
    /// never the code.
    pub fn proof_key(&self) -> Result<Zeroizing<[u8; 32]>> {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(CODE_KEY_SALT), self.0.as_bytes());
        let mut key = Zeroizing::new([0u8; 32]);
        hk.expand(b"code-proof", key.as_mut()).map_err(|_| Error::integrity("code key derivation"))?;
        Ok(key)
    }
}

impl fmt::Debug for EnrolmentCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EnrolmentCode(<redacted>)")
    }
}

/// The canonical bytes a proof covers: everything the request asks dispatch to store or bind,
/// each part length-prefixed, under a label naming the proof's purpose.
fn content(purpose: &str, req: &EnrolRequest) -> Aad {
    let b = &req.bundle;
    let mut a = Aad::new(purpose)
        .part(req.format.as_bytes())
        .part(b.format.as_bytes())
        .part(b.device_id.as_bytes())
        .part(b.identity_key.as_bytes())
        .part(&req.nonce)
        .part(req.code.as_ref().map_or(&b""[..], |c| c.code_id.as_bytes()))
        .u64(b.prekeys.len() as u64);
    for p in &b.prekeys {
        a = a.u64(u64::from(p.id)).part(p.public_key.as_bytes());
    }
    a
}

const CODE_PURPOSE: &str = "jobseal/v2/enrol-code-proof";
const IDENTITY_PURPOSE: &str = "jobseal/v2/enrol-identity-proof";

#[expect(clippy::expect_used, reason = "HMAC accepts keys of any length, so this cannot fail")]
fn hmac(key: &[u8; 32], data: &[u8]) -> [u8; PROOF_LEN] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Constant-time comparison of a proof received with the one expected.
fn proof_matches(expected: &[u8; PROOF_LEN], got: &[u8]) -> bool {
    got.len() == PROOF_LEN && bool::from(expected.ct_eq(got))
}

fn identity_key(own: &SecretKey, peer: &PublicKey, device_id: Uuid) -> Result<Zeroizing<[u8; 32]>> {
    pairing::shared_key(own, peer, device_id, IDENTITY_PROOF_SALT)
}

/// The device's side: an enrolment request for `bundle` with a fresh nonce, proven with the
/// device's identity secret and, when given, the enrolment code. Returns the request; its
/// `nonce` is what the answer must be bound to ([`open_answer_token`]).
pub fn build_request(
    bundle: DeviceBundle,
    identity: &SecretKey,
    dispatch: &PublicKey,
    code: Option<&EnrolmentCode>,
) -> Result<EnrolRequest> {
    let mut req = EnrolRequest {
        format: ENROL_REQUEST_FORMAT.to_owned(),
        bundle,
        nonce: crate::crypto::random_bytes::<NONCE_LEN>()?.to_vec(),
        code: code.map(|c| CodeProof { code_id: c.id().to_owned(), proof: Vec::new() }),
        identity_proof: Vec::new(),
    };
    if let Some(c) = code {
        let key = c.proof_key()?;
        let mac = hmac(&key, content(CODE_PURPOSE, &req).bytes());
        if let Some(p) = req.code.as_mut() {
            p.proof = mac.to_vec();
        }
    }
    let key = identity_key(identity, dispatch, req.bundle.device_id)?;
    req.identity_proof = hmac(&key, content(IDENTITY_PURPOSE, &req).bytes()).to_vec();
    Ok(req)
}

/// Dispatch's side: whether the request's code proof was made with the code whose proof key
/// (as stored) is `proof_key`. Constant time. False when the request carries no code proof.
pub fn verify_code_proof(proof_key: &[u8; 32], req: &EnrolRequest) -> bool {
    let Some(code) = &req.code else { return false };
    proof_matches(&hmac(proof_key, content(CODE_PURPOSE, req).bytes()), &code.proof)
}

/// Dispatch's side: whether the request's identity proof was made by the holder of the secret
/// half of `identity` (the stored identity key on a re-enrolment). Constant time.
pub fn verify_identity_proof(dispatch: &SecretKey, identity: &PublicKey, req: &EnrolRequest) -> Result<bool> {
    let key = identity_key(dispatch, identity, req.bundle.device_id)?;
    Ok(proof_matches(&hmac(&key, content(IDENTITY_PURPOSE, req).bytes()), &req.identity_proof))
}

fn answer_aad(device_id: Uuid, nonce: &[u8], server_time_ms: i64) -> Aad {
    Aad::new("jobseal/v2/enrolment-answer").part(device_id.as_bytes()).part(nonce).part(&server_time_ms.to_be_bytes())
}

fn answer_key(own: &SecretKey, peer: &PublicKey, device_id: Uuid) -> Result<Key32> {
    Key32::from_slice(pairing::shared_key(own, peer, device_id, ANSWER_KEY_SALT)?.as_ref())
}

/// Dispatch's side: seals the device token for the answer to the request with `nonce`, bound to
/// the answer's server time (milliseconds since the epoch).
pub fn seal_answer_token(
    dispatch: &SecretKey,
    identity: &PublicKey,
    device_id: Uuid,
    nonce: &[u8],
    server_time_ms: i64,
    token: &str,
) -> Result<Vec<u8>> {
    answer_key(dispatch, identity, device_id)?
        .seal(token.as_bytes(), answer_aad(device_id, nonce, server_time_ms).bytes())
}

/// The device's side: opens the token of an answer to its request with `nonce`. Fails
/// ([`Error::Tampered`]) for an answer to another request, or with another server time.
pub fn open_answer_token(
    identity: &SecretKey,
    dispatch: &PublicKey,
    device_id: Uuid,
    nonce: &[u8],
    server_time_ms: i64,
    sealed: &[u8],
) -> Result<Zeroizing<String>> {
    let plain = answer_key(identity, dispatch, device_id)?
        .open(sealed, answer_aad(device_id, nonce, server_time_ms).bytes())?;
    String::from_utf8(plain.to_vec()).map(Zeroizing::new).map_err(|_| Error::Tampered("device token is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::{Prekey, BUNDLE_FORMAT};
    use crate::crypto::generate_keypair;

    fn bundle(identity: PublicKey) -> DeviceBundle {
        let (_, pk) = generate_keypair().unwrap();
        DeviceBundle {
            format: BUNDLE_FORMAT.into(),
            device_id: Uuid::new_v4(),
            identity_key: identity,
            prekeys: vec![Prekey { id: 1, public_key: pk }],
        }
    }

    #[test]
    fn codes_parse_as_typed_and_never_echo_input() {
        let code = EnrolmentCode::generate().unwrap();
        let shown = code.display();
        assert_eq!(shown.len(), CODE_LEN + CODE_GROUPS - 1);
        assert_eq!(EnrolmentCode::parse(&shown.to_lowercase()).unwrap(), code);
        assert_eq!(EnrolmentCode::parse(&shown.replace('-', " ")).unwrap(), code);
        assert!(EnrolmentCode::is_code_id(code.id()));
        assert_eq!(
            EnrolmentCode::parse("0000o-11111-iiiii-LLLLL").unwrap().display().as_str(),
            "00000-11111-11111-11111"
        );
        for bad in ["", "ABCDE-ABCDE-ABCDE", "ABCDE-ABCDE-ABCDE-ABCDU", "ABCDE-ABCDE-ABCDE-ABCDEF", "SECRET*VALUE"] {
            let e = EnrolmentCode::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("SECRET") && !e.contains("ABCDE"), "{e}");
        }
        assert_eq!(format!("{code:?}"), "EnrolmentCode(<redacted>)");
    }

    #[test]
    fn proofs_bind_the_whole_request() {
        let (identity, identity_pub) = generate_keypair().unwrap();
        let (dispatch, dispatch_pub) = generate_keypair().unwrap();
        let code = EnrolmentCode::generate().unwrap();
        let key = code.proof_key().unwrap();
        let req = build_request(bundle(identity_pub), &identity, &dispatch_pub, Some(&code)).unwrap();
        assert!(verify_code_proof(&key, &req));
        assert!(verify_identity_proof(&dispatch, &identity_pub, &req).unwrap());
        // Another code, another identity, or any changed part: refused.
        assert!(!verify_code_proof(&EnrolmentCode::generate().unwrap().proof_key().unwrap(), &req));
        let (_, other_pub) = generate_keypair().unwrap();
        assert!(!verify_identity_proof(&dispatch, &other_pub, &req).unwrap());
        let mut planted = req.clone();
        let (_, pk) = generate_keypair().unwrap();
        planted.bundle.prekeys.push(Prekey { id: 2, public_key: pk });
        assert!(!verify_code_proof(&key, &planted));
        assert!(!verify_identity_proof(&dispatch, &identity_pub, &planted).unwrap());
        let mut renonced = req.clone();
        renonced.nonce[0] ^= 1;
        assert!(!verify_code_proof(&key, &renonced));
        assert!(!verify_identity_proof(&dispatch, &identity_pub, &renonced).unwrap());
        let mut other_device = req.clone();
        other_device.bundle.device_id = Uuid::new_v4();
        assert!(!verify_code_proof(&key, &other_device));
        // Without a code: no code proof, the identity proof still holds.
        let bare = build_request(bundle(identity_pub), &identity, &dispatch_pub, None).unwrap();
        assert!(!verify_code_proof(&key, &bare));
        assert!(verify_identity_proof(&dispatch, &identity_pub, &bare).unwrap());
    }

    #[test]
    fn the_answer_opens_only_for_its_request_and_time() {
        let (identity, identity_pub) = generate_keypair().unwrap();
        let (dispatch, dispatch_pub) = generate_keypair().unwrap();
        let id = Uuid::new_v4();
        let nonce = [7u8; NONCE_LEN];
        let sealed = seal_answer_token(&dispatch, &identity_pub, id, &nonce, 1000, "tok").unwrap();
        assert_eq!(open_answer_token(&identity, &dispatch_pub, id, &nonce, 1000, &sealed).unwrap().as_str(), "tok");
        assert!(open_answer_token(&identity, &dispatch_pub, id, &[8u8; NONCE_LEN], 1000, &sealed).is_err());
        assert!(open_answer_token(&identity, &dispatch_pub, id, &nonce, 1001, &sealed).is_err());
        assert!(open_answer_token(&identity, &dispatch_pub, Uuid::new_v4(), &nonce, 1000, &sealed).is_err());
        let (other, _) = generate_keypair().unwrap();
        assert!(open_answer_token(&other, &dispatch_pub, id, &nonce, 1000, &sealed).is_err());
    }
}

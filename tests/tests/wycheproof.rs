//! Project Wycheproof vectors through jobseal's own wrappers (G1, G4, G7).
//!
//! The AEAD and X25519 crates are tested by their authors; what can still go wrong is ours: the
//! envelope framing around XChaCha20-Poly1305 (`version | nonce | ciphertext | tag`), the AAD
//! plumbing, and the key checks in front of X25519. So every vector goes through
//! `jobseal::crypto::Key32::{seal, open}` and `jobseal::envelope::{PublicKey, SecretKey}`, never
//! straight to the crates. The vectors come from the `wycheproof` crate, which ships them as data.
//!
//! Expected outcome per Wycheproof flag (docs/security.md repeats this table):
//! - XChaCha20-Poly1305, 192-bit nonce, valid (Ktv, Pseudorandom, EdgeCase*): `open` returns the
//!   plaintext and `seal` with the vector's nonce reproduces `ciphertext | tag` byte for byte.
//! - XChaCha20-Poly1305, ModifiedTag (invalid): `open` fails with `Tampered`.
//! - XChaCha20-Poly1305, InvalidNonceSize (invalid): not expressible, since our format has a fixed
//!   24-byte nonce; the same bytes framed as an envelope must fail to open.
//! - X25519, valid and acceptable with a canonical, non-low-order public key (Normal, Ktv,
//!   EdgeCase*, SpecialPublicKey, Twist): `diffie_hellman` returns the vector's shared secret.
//! - X25519, ZeroSharedSecret / LowOrderPublic: refused with `WeakKey`, by `PublicKey::from_bytes`
//!   (the key is on our low-order list) or by `diffie_hellman` (all-zero result).
//! - X25519, NonCanonicalPublic (u >= p, or bit 255 set) and not low order: refused by
//!   `PublicKey::from_bytes` with `Malformed`. Wycheproof marks all of these "acceptable", so
//!   refusing them is allowed; every "valid" vector has a canonical key.

use jobseal::crypto::Key32;
use jobseal::envelope::{EnvelopeError, PublicKey, SecretKey};
use std::collections::BTreeMap;
use wycheproof::{aead, xdh, TestResult};

fn flags<T: std::fmt::Debug>(f: &[T]) -> String {
    f.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>().join("+")
}

#[test]
fn xchacha20_poly1305_vectors_through_key32() {
    let set = aead::TestSet::load(aead::TestName::XChaCha20Poly1305).expect("vectors load");
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            total += 1;
            let key = Key32::from_slice(&t.key).expect("256-bit key");
            let mut sealed = vec![jobseal::crypto::ENVELOPE_V1];
            sealed.extend_from_slice(&t.nonce);
            sealed.extend_from_slice(&t.ct);
            sealed.extend_from_slice(&t.tag);
            let opened = key.open(&sealed, &t.aad);
            let outcome = match (t.result, t.nonce.len(), &opened) {
                (TestResult::Invalid, 24, Err(jobseal::ProtocolError::Tampered(_))) => "refused (Tampered)",
                (TestResult::Invalid, _, Err(_)) => "refused (nonce size not expressible)",
                (TestResult::Valid | TestResult::Acceptable, 24, Ok(pt)) => {
                    assert_eq!(&pt[..], &t.pt[..], "tc {}: wrong plaintext", t.tc_id);
                    let nonce: &[u8; 24] = t.nonce[..].try_into().expect("24-byte nonce");
                    let ours = key.seal_with_nonce_insecure_for_testing(nonce, &t.pt, &t.aad).expect("seal");
                    assert_eq!(ours, sealed, "tc {}: seal does not reproduce the vector", t.tc_id);
                    "opened and resealed"
                }
                (r, n, o) => {
                    panic!("tc {} ({}): result {r:?}, nonce {n} bytes, got ok={}", t.tc_id, flags(&t.flags), o.is_ok())
                }
            };
            *tally.entry(format!("{:?} {} -> {outcome}", t.result, flags(&t.flags))).or_default() += 1;
        }
    }
    eprintln!("Wycheproof XChaCha20-Poly1305: {total} vectors");
    for (k, n) in &tally {
        eprintln!("  {n:>4}  {k}");
    }
    assert!(total >= 300, "the vector set shrank: {total}");
}

#[test]
fn x25519_vectors_through_our_key_types() {
    let set = xdh::TestSet::load(xdh::TestName::X25519).expect("vectors load");
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for group in &set.test_groups {
        for t in &group.tests {
            total += 1;
            let f = flags(&t.flags);
            let zero_shared = t.shared_secret.iter().all(|b| *b == 0);
            let private: [u8; 32] = t.private_key[..].try_into().expect("32-byte private key");
            let sk = SecretKey::from_bytes(&private).expect("non-zero private key");
            let outcome = match PublicKey::from_bytes(&t.public_key) {
                Err(EnvelopeError::WeakKey) => {
                    assert!(zero_shared, "tc {} ({f}): a key was refused as weak but gives a non-zero secret", t.tc_id);
                    "refused by PublicKey::from_bytes (WeakKey)"
                }
                Err(EnvelopeError::Malformed(_)) => {
                    assert!(
                        t.flags.contains(&xdh::TestFlag::NonCanonicalPublic) || t.public_key[31] & 0x80 != 0,
                        "tc {} ({f}): a canonical key was refused",
                        t.tc_id
                    );
                    assert_ne!(t.result, TestResult::Valid, "tc {} ({f}): a valid vector was refused", t.tc_id);
                    "refused by PublicKey::from_bytes (Malformed: non-canonical)"
                }
                Err(e) => panic!("tc {} ({f}): unexpected {e:?}", t.tc_id),
                Ok(pk) => match sk.diffie_hellman(&pk) {
                    Ok(shared) => {
                        assert!(!zero_shared, "tc {} ({f}): an all-zero secret was accepted", t.tc_id);
                        assert_eq!(&shared[..], &t.shared_secret[..], "tc {} ({f}): wrong shared secret", t.tc_id);
                        "shared secret matches"
                    }
                    Err(EnvelopeError::WeakKey) => {
                        assert!(zero_shared, "tc {} ({f}): refused a non-zero secret", t.tc_id);
                        "refused by diffie_hellman (WeakKey: all-zero secret)"
                    }
                    Err(e) => panic!("tc {} ({f}): unexpected {e:?}", t.tc_id),
                },
            };
            if t.result == TestResult::Valid {
                assert_eq!(outcome, "shared secret matches", "tc {} ({f}): a valid vector failed", t.tc_id);
            }
            *tally.entry(format!("{:?} {f} -> {outcome}", t.result)).or_default() += 1;
        }
    }
    eprintln!("Wycheproof X25519: {total} vectors");
    for (k, n) in &tally {
        eprintln!("  {n:>4}  {k}");
    }
    assert!(total >= 500, "the vector set shrank: {total}");
}

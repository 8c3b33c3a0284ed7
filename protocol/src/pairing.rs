//! Keys that only an enrolled device and dispatch can compute (G4, G7).
//!
//! Both sides hold one half of an X25519 pair each: the device its identity key, dispatch its
//! dispatch key. HKDF over their agreement, salted per purpose and bound to the device id, gives
//! the keys only the two of them share: the shred-receipt MAC key, the enrolment proof and answer
//! keys (`crate::enrolment`), the sync answer MAC key (`crate::answer`) and the audit chain key
//! (`crate::audit::AuditKey`).

use crate::crypto::{PublicKey, SecretKey};
use crate::{Error, Result};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// HKDF salt of the shred-receipt MAC key.
pub const RECEIPT_KEY_SALT: &[u8] = b"jobseal/v1/receipt-key";

/// HKDF-SHA256(salt, X25519(own, peer)) expanded with the device id as info, 32 bytes.
pub fn shared_key(own: &SecretKey, peer: &PublicKey, device_id: Uuid, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let shared = own.diffie_hellman(peer)?;
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), shared.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(device_id.as_bytes(), key.as_mut()).map_err(|_| Error::integrity("pair key derivation"))?;
    Ok(key)
}

//! Keys that only an enrolled device and dispatch can compute (G4, G7).
//!
//! Both sides hold one half of an X25519 pair each: the device its identity key, dispatch its
//! dispatch key. HKDF over their agreement, salted per purpose and bound to the device id, gives
//! keys for the shred-receipt MAC and for sealing the device token dispatch hands out at
//! enrolment. Sealing the token means an enrolment answer read or replayed by anyone else is
//! useless, which is what lets a device whose answer was lost simply enrol again.

use crate::crypto::{Aad, Key32};
use crate::crypto::{PublicKey, SecretKey};
use crate::{Error, Result};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// HKDF salt of the shred-receipt MAC key.
pub const RECEIPT_KEY_SALT: &[u8] = b"jobseal/v1/receipt-key";
/// HKDF salt of the device-token sealing key.
pub const TOKEN_KEY_SALT: &[u8] = b"jobseal/v1/token-key";

/// HKDF-SHA256(salt, X25519(own, peer)) expanded with the device id as info, 32 bytes.
pub fn shared_key(own: &SecretKey, peer: &PublicKey, device_id: Uuid, salt: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
    let shared = own.diffie_hellman(peer)?;
    let hk = hkdf::Hkdf::<Sha256>::new(Some(salt), shared.as_ref());
    let mut key = Zeroizing::new([0u8; 32]);
    hk.expand(device_id.as_bytes(), key.as_mut()).map_err(|_| Error::integrity("pair key derivation"))?;
    Ok(key)
}

fn token_aad(device_id: Uuid) -> Aad {
    Aad::new("jobseal/v1/device-token").part(device_id.as_bytes())
}

/// Dispatch's side: seals a device token to the device's identity key.
pub fn seal_device_token(dispatch: &SecretKey, identity: &PublicKey, device_id: Uuid, token: &str) -> Result<Vec<u8>> {
    let key = Key32::from_slice(shared_key(dispatch, identity, device_id, TOKEN_KEY_SALT)?.as_ref())?;
    key.seal(token.as_bytes(), token_aad(device_id).bytes())
}

/// The device's side: opens a token sealed by [`seal_device_token`].
pub fn open_device_token(
    identity: &SecretKey,
    dispatch: &PublicKey,
    device_id: Uuid,
    sealed: &[u8],
) -> Result<Zeroizing<String>> {
    let key = Key32::from_slice(shared_key(identity, dispatch, device_id, TOKEN_KEY_SALT)?.as_ref())?;
    let plain = key.open(sealed, token_aad(device_id).bytes())?;
    String::from_utf8(plain.to_vec()).map(Zeroizing::new).map_err(|_| Error::Tampered("device token is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::generate_keypair;

    #[test]
    fn only_the_identity_holder_opens_the_token() {
        let (identity, identity_pub) = generate_keypair().unwrap();
        let (dispatch, dispatch_pub) = generate_keypair().unwrap();
        let id = Uuid::new_v4();
        let sealed = seal_device_token(&dispatch, &identity_pub, id, "tok").unwrap();
        assert_eq!(open_device_token(&identity, &dispatch_pub, id, &sealed).unwrap().as_str(), "tok");
        let (other, _) = generate_keypair().unwrap();
        assert!(open_device_token(&other, &dispatch_pub, id, &sealed).is_err());
        assert!(open_device_token(&identity, &dispatch_pub, Uuid::new_v4(), &sealed).is_err());
    }
}

//! Shred receipts: the device's authenticated statement that a job's customer data is gone (G7).
//!
//! The shred itself writes the receipt, in the transaction that destroys the data, so a receipt
//! exists exactly when a shred happened. It is authenticated with an HMAC key that only the device
//! and dispatch can derive: HKDF over the X25519 agreement between the device identity key and the
//! pinned dispatch key. Dispatch recomputes the key from its own secret and the identity key in
//! the bundle, and so knows the receipt came from the enrolled device and was not edited.

use crate::crypto::Aad;
use crate::crypto::{PublicKey, SecretKey};
use crate::policy::JobState;
use crate::Result;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;
use zeroize::Zeroizing;

/// What a shred destroyed: the facts a shred receipt is made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShredOutcome {
    /// The job.
    pub job_id: Uuid,
    /// The sheet version whose data was destroyed.
    pub version: u64,
    /// The terminal state.
    pub state: JobState,
    /// Trusted time of the shred.
    pub shredded_at: DateTime<Utc>,
    /// The key epoch in force after the shred; the previous epoch's KEK is deleted.
    pub epoch: u64,
    /// Number of sealed customer fields deleted.
    pub fields_destroyed: u32,
}

/// What a shred destroyed, signed by the device.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ShredReceipt {
    /// The device that shredded.
    pub device_id: Uuid,
    /// The job.
    pub job_id: Uuid,
    /// The sheet version whose data was destroyed.
    pub version: u64,
    /// The terminal state the job ended in.
    pub state: JobState,
    /// Trusted time of the shred, milliseconds precision.
    pub shredded_at: DateTime<Utc>,
    /// The key epoch after the shred (the previous epoch's KEK was deleted).
    pub epoch: u64,
    /// Number of sealed customer fields deleted.
    pub fields_destroyed: u32,
    /// HMAC-SHA256 over the fields above, hex.
    #[serde(with = "crate::hex::serde_bytes")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = "^(?:[0-9a-fA-F]{2})*$"))]
    pub mac: Vec<u8>,
}

/// The receipt MAC key, derived by either side of the identity/dispatch key pair.
pub struct ReceiptKey(Zeroizing<[u8; 32]>);

impl ReceiptKey {
    /// Derives the key from one side's secret key and the other side's public key.
    pub fn derive(own: &SecretKey, peer: &PublicKey, device_id: Uuid) -> Result<Self> {
        Ok(ReceiptKey(crate::pairing::shared_key(own, peer, device_id, crate::pairing::RECEIPT_KEY_SALT)?))
    }

    #[expect(clippy::expect_used, reason = "HMAC accepts keys of any length, so this cannot fail")]
    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_ref()).expect("HMAC takes any key length")
    }

    /// Makes the receipt of a shred.
    pub fn sign(&self, device_id: Uuid, shred: &ShredOutcome) -> ShredReceipt {
        let mut r = ShredReceipt {
            device_id,
            job_id: shred.job_id,
            version: shred.version,
            state: shred.state,
            shredded_at: shred.shredded_at,
            epoch: shred.epoch,
            fields_destroyed: shred.fields_destroyed,
            mac: Vec::new(),
        };
        let mut m = self.mac();
        m.update(canonical(&r).bytes());
        r.mac = m.finalize().into_bytes().to_vec();
        r
    }

    /// Checks a receipt's MAC in constant time.
    pub fn verify(&self, receipt: &ShredReceipt) -> bool {
        let mut m = self.mac();
        m.update(canonical(receipt).bytes());
        m.verify_slice(&receipt.mac).is_ok()
    }
}

fn canonical(r: &ShredReceipt) -> Aad {
    Aad::new("jobseal/v1/shred-receipt")
        .part(r.device_id.as_bytes())
        .part(r.job_id.as_bytes())
        .u64(r.version)
        .part(r.state.as_str().as_bytes())
        .part(&r.shredded_at.timestamp_millis().to_be_bytes())
        .u64(r.epoch)
        .u64(r.fields_destroyed.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::generate_keypair;

    #[test]
    fn both_sides_derive_the_same_key_and_edits_fail() {
        let (device, device_pub) = generate_keypair().unwrap();
        let (dispatch, dispatch_pub) = generate_keypair().unwrap();
        let id = Uuid::new_v4();
        let signer = ReceiptKey::derive(&device, &dispatch_pub, id).unwrap();
        let checker = ReceiptKey::derive(&dispatch, &device_pub, id).unwrap();
        let shred = ShredOutcome {
            job_id: Uuid::new_v4(),
            version: 3,
            state: JobState::Completed,
            shredded_at: crate::time::from_ms(Utc::now().timestamp_millis()),
            epoch: 7,
            fields_destroyed: 5,
        };
        let r = signer.sign(id, &shred);
        assert!(checker.verify(&r));
        let mut edited = r.clone();
        edited.fields_destroyed = 4;
        assert!(!checker.verify(&edited));
        let mut edited = r.clone();
        edited.state = JobState::Cancelled;
        assert!(!checker.verify(&edited));
        let (other, _) = generate_keypair().unwrap();
        assert!(!ReceiptKey::derive(&other, &device_pub, id).unwrap().verify(&r));
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(serde_json::from_str::<ShredReceipt>(&json).unwrap(), r);
    }
}

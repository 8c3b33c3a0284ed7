//! The dispatch side of sealed delivery, for tests and for backends on the JVM (G4).
//!
//! A production dispatch keeps its secret key on the server; these functions let a test suite or
//! a JVM backend seal sheets exactly as the reference dispatch does.

use crate::error::JobsealError;
use crate::types::DispatchKeyPair;
use jobseal::{DeviceBundle, SecretKey, SecretString};
use zeroize::Zeroizing;

/// Creates a dispatch key pair (X25519). The secret key comes back as hex: keep it on the server.
#[uniffi::export]
pub fn dispatch_keygen() -> Result<DispatchKeyPair, JobsealError> {
    let (secret, public) = jobseal::envelope::generate_keypair().map_err(jobseal::Error::from)?;
    Ok(DispatchKeyPair {
        secret_key_hex: jobseal::hex::encode(secret.to_bytes().as_ref()),
        public_key_hex: public.to_string(),
    })
}

/// Seals a job sheet (JSON) for a device, as dispatch does: to the prekey `prekey_id` of the
/// device's bundle (JSON, from `DeviceBundle.json`), or to its identity key when null/nil. The
/// sheet is validated first. Returns the envelope bytes to hand to `JobVault.receive`.
#[uniffi::export]
pub fn seal_job_sheet(
    dispatch_secret_hex: String,
    bundle_json: String,
    prekey_id: Option<u32>,
    sheet_json: String,
) -> Result<Vec<u8>, JobsealError> {
    let secret_hex = SecretString::new(dispatch_secret_hex);
    let sheet = SecretString::new(sheet_json);
    let bytes = Zeroizing::new(jobseal::hex::decode(secret_hex.expose().trim()).unwrap_or_default());
    let bytes: &[u8; 32] = bytes
        .as_slice()
        .try_into()
        .map_err(|_| JobsealError::invalid("dispatch secret key must be 64 hex characters"))?;
    let key = SecretKey::from_bytes(bytes).map_err(|_| JobsealError::invalid("dispatch secret key is not usable"))?;
    let bundle = DeviceBundle::from_json(bundle_json.as_bytes())?;
    Ok(jobseal::seal_job_sheet(&key, &bundle, prekey_id, sheet.expose().as_bytes())?)
}

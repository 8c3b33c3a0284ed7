//! The device bundle and sealing a sheet to it: the public side of sealed delivery (G4, G5).
//!
//! A device publishes a bundle (its id, identity key and unused one-time prekeys); dispatch seals
//! each job sheet to one prekey of it, or to the identity key only when none is left. This module
//! has no storage and no secrets of the device: it is what dispatch (or the CLI acting as dispatch)
//! uses, and what the device's own bundle is serialised as.

use crate::crypto::{PublicKey, SecretKey};
use crate::envelope::{self, EnvelopeHeader, RecipientKeyId};
use crate::sheet::JobSheet;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The format tag of a device bundle.
pub const BUNDLE_FORMAT: &str = "jobseal.bundle.v1";
/// Most prekeys minted in one call.
pub const MAX_PREKEYS_PER_CALL: u32 = 500;
/// Most unused prekeys a device holds at once.
pub const MAX_PREKEYS_HELD: u32 = 2000;

/// What the device publishes to dispatch: who it is and the keys sheets may be sealed to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceBundle {
    /// Always [`BUNDLE_FORMAT`].
    #[cfg_attr(feature = "openapi", schema(pattern = "^jobseal\\.bundle\\.v1$"))]
    pub format: String,
    /// The device's identity, bound into every envelope sealed to it.
    pub device_id: Uuid,
    /// The long-term identity key, for the fallback when no prekey is left.
    pub identity_key: PublicKey,
    /// Unused one-time prekeys.
    pub prekeys: Vec<Prekey>,
}

/// A one-time prekey's public half.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Prekey {
    /// The id the envelope names it by.
    pub id: u32,
    /// The X25519 public key.
    pub public_key: PublicKey,
}

impl DeviceBundle {
    /// Parses a bundle from JSON. Low-order, all-zero and non-canonical keys are refused.
    pub fn from_json(bytes: &[u8]) -> Result<Self> {
        // Serde's messages quote the input (an unknown key, a bad string), and a bundle passed
        // where a sheet belongs would put a customer value in the error: say where, not what.
        // Found by the `ffi_inputs` fuzz target.
        let b: DeviceBundle = serde_json::from_slice(bytes).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Io => "could not be read",
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "is truncated",
                serde_json::error::Category::Data if is_key_error(&e) => "holds a weak or malformed X25519 key",
                serde_json::error::Category::Data => "does not match the bundle format",
            };
            Error::InvalidInput(format!("device bundle {what} (line {}, column {})", e.line(), e.column()))
        })?;
        if b.format != BUNDLE_FORMAT {
            return Err(Error::InvalidInput(format!("device bundle format must be {BUNDLE_FORMAT:?}")));
        }
        Ok(b)
    }
}

/// Whether a bundle failed to parse because of a key check (the only custom errors it raises).
fn is_key_error(e: &serde_json::Error) -> bool {
    let text = e.to_string();
    ["weak X25519 key", "malformed envelope or key"].iter().any(|m| text.starts_with(m))
}

/// Seals a job sheet (JSON) for a device, from dispatch's secret key. Sealed to the prekey `prekey`
/// of the bundle, or to the identity key when `prekey` is `None` (only when no prekey is left).
/// The sheet is validated first, and its job id and version are bound into the envelope.
pub fn seal_job_sheet(
    dispatch_key: &SecretKey,
    bundle: &DeviceBundle,
    prekey: Option<u32>,
    sheet_json: &[u8],
) -> Result<Vec<u8>> {
    let sheet = JobSheet::from_json(sheet_json)?;
    let (recipient, public) = match prekey {
        Some(id) => {
            let p = bundle
                .prekeys
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| Error::InvalidInput(format!("prekey {id} is not in the bundle")))?;
            (RecipientKeyId::Prekey(id), p.public_key)
        }
        None => (RecipientKeyId::Identity, bundle.identity_key),
    };
    let header = EnvelopeHeader::new(bundle.device_id, sheet.job_id, sheet.version, recipient);
    Ok(envelope::seal_sheet(dispatch_key, &public, &header, sheet_json)?)
}

/// Checks a number of prekeys to mint in one call.
pub fn check_count(count: u32) -> Result<()> {
    if count == 0 || count > MAX_PREKEYS_PER_CALL {
        return Err(Error::InvalidInput(format!("prekey count must be 1 to {MAX_PREKEYS_PER_CALL}")));
    }
    Ok(())
}


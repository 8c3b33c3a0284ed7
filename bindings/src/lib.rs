//! jobseal-ffi: the jobseal core for Kotlin (Android) and Swift (iOS), through UniFFI.
//!
//! Thin wrappers only; every rule lives in the core crate. [`JobVault`] wraps the vault, the
//! records and enums in [`types`] carry its answers, [`JobsealError`] is the one error type, and
//! the platform supplies its keystore, clocks and HTTP stack through the foreign traits in
//! [`platform`]. Times are `i64` milliseconds since the Unix epoch (UTC); ids are UUID strings.
//!
//! Nothing crosses this boundary with a customer value except a reveal's visible fields, whose
//! generated `toString()` / `description` is redacted; no error message carries one.

mod asynchronous;
#[cfg(feature = "test-support")]
mod delivery;
mod error;
pub mod platform;
pub mod types;
mod vault;

pub use asynchronous::{PlatformAsyncTransport, VaultEvent, VaultListener};
#[cfg(feature = "test-support")]
pub use delivery::{dispatch_keygen, seal_job_sheet};
pub use error::JobsealError;
pub use platform::{PlatformClock, PlatformKeyStore, PlatformTransport};
pub use vault::JobVault;

uniffi::setup_scaffolding!();

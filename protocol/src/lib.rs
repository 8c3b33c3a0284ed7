//! jobseal-protocol: what a technician's device and the dispatch backend exchange, and nothing else.
//!
//! The sealed job-sheet envelope (HPKE Auth mode) and its X25519 keys, the job sheet format and
//! its access policy, the sync wire messages, shred receipts, and the audit chain's hashing and
//! verification. It holds no storage and no device secrets, so the dispatch server (and any
//! backend written in Rust) can depend on it without the device vault, SQLite or an HTTP client.
//! The device core (`jobseal`) builds on it and re-exports these modules under the same names.

pub mod answer;
pub mod audit;
pub mod bundle;
pub mod crypto;
pub mod enrolment;
pub mod envelope;
mod error;
pub mod hex;
pub mod pairing;
pub mod policy;
pub mod receipt;
pub mod sheet;
pub mod time;
pub mod wire;

pub use error::{Error, Result};

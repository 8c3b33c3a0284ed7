//! Test support for every jobseal suite: fake job sheets, vaults on a manual clock, the dispatch
//! server on loopback and an operator client, in one crate.
//!
//! The core, the CLI, the dispatch server, the end-to-end suites and the benchmarks each had
//! their own sheet fixture, their own way of starting dispatch and their own operator HTTP calls,
//! and they drifted apart. This crate is the one copy. It is layered by features so that a user
//! pulls in only what it needs, and so that the layers that need the core stay out of builds that
//! must not link it:
//!
//! - always: [`sheet`](mod@sheet) (the sheet builder and the fixture's timeline), [`files`]
//!   (walking, scanning and copying a data folder), [`child`] (re-running one test in a child
//!   process) and [`suite`] (the check that every test file is compiled);
//! - `vault`: `device` (a vault in a temporary folder on a `ManualClock`) and `Sheet::build`;
//! - `dispatch`: `server` (the reference server on loopback) and `operator` (an HTTP client and
//!   the operator's console);
//! - `powerloss`: `powerloss` (a SQLite VFS and keystore file calls that lose unsynced writes at a
//!   simulated power cut).
//!
//! The core's own integration tests use this crate although it depends on the core: cargo allows
//! that cycle for dev-dependencies, and integration tests link the one `jobseal` library both see.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    reason = "test tooling: a failed fixture step is a failed run, not a crash in an app"
)]

pub mod child;
pub mod files;
pub mod sheet;
pub mod suite;

#[cfg(feature = "vault")]
pub mod device;

#[cfg(feature = "powerloss")]
pub mod powerloss;

#[cfg(feature = "dispatch")]
pub mod operator;
#[cfg(feature = "dispatch")]
pub mod server;

pub use sheet::{at, default_fields, sheet_value, t0, Field, Sheet};

#[cfg(feature = "vault")]
pub use device::{clock_at, open_vault, open_vault_at, vault_at, TestVault};
#[cfg(feature = "vault")]
pub use sheet::{parse, sheet};

#[cfg(feature = "dispatch")]
pub use operator::{ok, Answer, Client, Operator};
#[cfg(feature = "dispatch")]
pub use server::{TestDispatch, OPERATOR_TOKEN};

//! A technician's device for tests: a real vault in a temporary folder, with the software
//! keystore and a clock the test moves by hand.
//!
//! Access windows and expiries are about time, so every suite runs the vault on a `ManualClock`
//! set to the sheet fixture's timeline (minutes from [`crate::sheet::t0`]). Reopening a vault on
//! the same folder is how the crash and forensic suites see what survived, so opening is a
//! function of the folder ([`open_vault`]) as well as a one-call fresh device ([`vault_at`]).
//! Enrolment with a dispatch server on loopback is `server::TestDispatch::enrol` (feature
//! `dispatch`).

use crate::sheet::at;
use jobseal::{FileKeyStore, ManualClock, Vault};
use std::path::Path;
use std::sync::Arc;

/// A vault in its own temporary folder, with the clock it runs on.
pub struct TestVault {
    /// The vault.
    pub vault: Vault,
    /// Its clock: move it with `set_wall`.
    pub clock: Arc<ManualClock>,
    /// The data folder, removed when this is dropped (after the vault, which is declared first).
    pub dir: tempfile::TempDir,
}

/// A manual clock set `minutes` after [`crate::sheet::t0`].
pub fn clock_at(minutes: i64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(at(minutes)))
}

/// Opens (creating if needed) the vault in `dir`, with the software keystore in its usual place
/// under `dir` and the given clock.
pub fn open_vault(dir: &Path, clock: Arc<ManualClock>) -> jobseal::Result<Vault> {
    let keystore = FileKeyStore::open(dir.join(jobseal::KEYSTORE_DIR))?;
    Vault::open(dir, Arc::new(keystore), clock)
}

/// Opens the vault in `dir` on a fresh clock set `minutes` after [`crate::sheet::t0`].
pub fn open_vault_at(dir: &Path, minutes: i64) -> jobseal::Result<Vault> {
    open_vault(dir, clock_at(minutes))
}

/// A new vault in a new temporary folder, its clock `minutes` after [`crate::sheet::t0`].
pub fn vault_at(minutes: i64) -> TestVault {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let clock = clock_at(minutes);
    let vault = open_vault(dir.path(), clock.clone()).expect("a new vault opens");
    TestVault { vault, clock, dir }
}

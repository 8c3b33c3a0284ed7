//! `JobVault`: the core's [`jobseal::Vault`] as an object for Kotlin and Swift.
//!
//! One line per method: parse the arguments, call the core, convert the answer. The vault is
//! thread-safe (one lock inside the core) and every call either happens entirely or not at all,
//! so an app may call it from any thread; calls block, so keep them off the main thread.

use crate::error::JobsealError;
use crate::platform::{
    ClockAdapter, KeyStoreAdapter, PlatformClock, PlatformKeyStore, PlatformTransport, TransportAdapter,
};
use crate::types::{
    ms, parse_job_id, AuditEvent, AuditVerification, DeviceBundle, JobInfo, JobState, Reveal, ShredOutcome, SyncReport,
    SyncStatus,
};
use jobseal::PublicKey;
use std::sync::Arc;

type Result<T> = std::result::Result<T, JobsealError>;

/// The device's job sheet vault: customer data encrypted per job, shown only while the job's
/// state and access window allow it, every read audited, shredded when the job ends.
///
/// Thread-safe: share one instance across the app and call it from any background thread. Open
/// one vault per directory; release it with `close()` (Kotlin) or by dropping the last reference
/// (Swift) before opening the same directory again.
#[derive(uniffi::Object)]
pub struct JobVault(jobseal::Vault);

fn dispatch_key(hex: &str) -> Result<PublicKey> {
    hex.trim()
        .parse()
        .map_err(|_| JobsealError::invalid("dispatch key must be 64 hex characters of a valid X25519 public key"))
}

#[uniffi::export]
impl JobVault {
    /// Opens the vault in the directory `dir`, creating it on first use, with the platform's
    /// keystore and clock. Finishes any shred a crash interrupted and shreds jobs whose hard
    /// expiry has passed. `dir` must be excluded from backups (see the integration guides).
    #[uniffi::constructor]
    pub fn open(dir: String, keystore: Arc<dyn PlatformKeyStore>, clock: Arc<dyn PlatformClock>) -> Result<Arc<Self>> {
        let vault = jobseal::Vault::open(&dir, Arc::new(KeyStoreAdapter(keystore)), Arc::new(ClockAdapter(clock)))?;
        Ok(Arc::new(JobVault(vault)))
    }

    /// `open` without blocking the caller's thread (opening creates, checks and may shred).
    #[uniffi::constructor]
    pub async fn open_async(
        dir: String,
        keystore: Arc<dyn PlatformKeyStore>,
        clock: Arc<dyn PlatformClock>,
    ) -> Result<Arc<Self>> {
        blocking::unblock(move || Self::open(dir, keystore, clock)).await
    }

    /// Opens a sealed job sheet from dispatch and stores it, deleting the one-time prekey it was
    /// sealed to. Forged, altered, misaddressed, replayed or stale envelopes are refused
    /// (`Tampered`, `Conflict`) and change nothing.
    pub fn receive(&self, envelope: Vec<u8>) -> Result<JobInfo> {
        Ok(self.0.receive(&envelope)?.into())
    }

    /// Every job, live and closed, most recently received first, without customer values.
    pub fn list_jobs(&self) -> Result<Vec<JobInfo>> {
        Ok(self.0.list_jobs()?.into_iter().map(Into::into).collect())
    }

    /// One job, without customer values. `NotFound` if the vault never held it.
    pub fn job(&self, job_id: String) -> Result<JobInfo> {
        Ok(self.0.job(parse_job_id(&job_id)?)?.into())
    }

    /// Moves a live job forward: Assigned to EnRoute or OnSite, EnRoute to OnSite. Anything else
    /// is a `Conflict`. Durable before it returns; reaches dispatch at the next sync.
    pub fn advance(&self, job_id: String, to: JobState) -> Result<JobInfo> {
        Ok(self.0.advance(parse_job_id(&job_id)?, to.into())?.into())
    }

    /// Everything a job screen needs in one call: every customer field, shown with its value and
    /// the instant it must disappear, or hidden with the reason. Every field shown or refused is
    /// audited before this returns. A closed job gives `AccessDenied` with reason `Shredded`.
    pub fn reveal(&self, job_id: String) -> Result<Reveal> {
        Ok(self.0.reveal(parse_job_id(&job_id)?)?.into())
    }

    /// Closes the job (from EnRoute or OnSite) with the technician's completion report (1 to
    /// 4000 characters, kept after the close and sent to dispatch) and shreds its customer data
    /// at once, without waiting for the network.
    pub fn close_job(&self, job_id: String, report: String) -> Result<ShredOutcome> {
        Ok(self.0.close(parse_job_id(&job_id)?, &report)?.into())
    }

    /// Cancels the job on the technician's side and shreds its customer data.
    pub fn cancel_job(&self, job_id: String) -> Result<ShredOutcome> {
        Ok(self.0.cancel(parse_job_id(&job_id)?)?.into())
    }

    /// Shreds every job whose hard expiry has passed (every call does this too); for a periodic
    /// background task. Returns what was shredded.
    pub fn sweep(&self) -> Result<Vec<ShredOutcome>> {
        Ok(self.0.sweep()?.into_iter().map(Into::into).collect())
    }

    /// The audit events, oldest first: all of them, or those of one job.
    pub fn audit_log(&self, job_id: Option<String>) -> Result<Vec<AuditEvent>> {
        let job_id = job_id.as_deref().map(parse_job_id).transpose()?;
        Ok(self.0.audit_log(job_id)?.into_iter().map(Into::into).collect())
    }

    /// Checks the hash chain of the audit log end to end.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        Ok(self.0.verify_audit()?.into())
    }

    /// Enrols this device offline: creates its identity key and `prekeys` (1 to 500) one-time
    /// prekeys, and pins the dispatch public key (64 hex characters). Returns the bundle to hand
    /// to dispatch. A device enrols once.
    pub fn enrol(&self, dispatch_key_hex: String, prekeys: u32) -> Result<DeviceBundle> {
        self.0.enrol(dispatch_key(&dispatch_key_hex)?, prekeys)?.try_into()
    }

    /// The public bundle with every unused prekey. `Enrolment` if the device is not enrolled.
    pub fn device_bundle(&self) -> Result<DeviceBundle> {
        self.0.device_bundle()?.try_into()
    }

    /// Mints `count` (1 to 500) more one-time prekeys and returns the bundle of all unused ones.
    pub fn add_prekeys(&self, count: u32) -> Result<DeviceBundle> {
        self.0.add_prekeys(count)?.try_into()
    }

    /// Enrols this device with dispatch over `transport`: creates the device keys, pins
    /// `dispatch_key_hex` (or, when null/nil, the key dispatch announces: trust on first use),
    /// registers the bundle and keeps the device token, wrapped in the vault.
    ///
    /// `enrolment_code` is the one-time code the operator issued (4 groups of 5 characters; case,
    /// spaces and dashes do not matter); dispatch needs it for the device's first enrolment. It
    /// is never sent, only a proof made with it. After a lost answer, call again: null is enough
    /// if dispatch did register the device. A mistyped code is `InvalidInput`, before anything
    /// is created or sent.
    pub fn enrol_with_dispatch(
        &self,
        transport: Arc<dyn PlatformTransport>,
        dispatch_key_hex: Option<String>,
        prekeys: u32,
        enrolment_code: Option<String>,
    ) -> Result<DeviceBundle> {
        self.enrol_with(&TransportAdapter(transport), dispatch_key_hex, prekeys, enrolment_code)
    }

    /// Pushes the outbox (state changes, reports, audit events, shred receipts) and pulls new
    /// sealed sheets, revocations and server time, over `transport`. Blocks on the network: call
    /// it from a background worker. On `Network` nothing is lost; try again later (see
    /// `sync_status().next_attempt_at_ms`). The vault stays usable from other threads meanwhile.
    pub fn sync(&self, transport: Arc<dyn PlatformTransport>) -> Result<SyncReport> {
        self.sync_with(&TransportAdapter(transport))
    }

    /// The outbox and sync health, for a status screen and for scheduling the next sync.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        Ok(self.0.sync_status()?.into())
    }

    /// Trusted time now, in milliseconds since the Unix epoch: never earlier than any time the
    /// vault has used before, and anchored to dispatch's clock after a sync.
    pub fn trusted_now_ms(&self) -> Result<i64> {
        Ok(ms(self.0.trusted_now()?))
    }

    /// The current key epoch; it moves forward at every shred.
    pub fn epoch(&self) -> u64 {
        self.0.epoch()
    }
}

/// Entry points for tests, desktop tools and trusted imports: only in a library built with the
/// `test-support` feature. The release libraries (AAR, XCFramework) leave them out, so an app
/// cannot open a vault on software keys or store a sheet that did not come sealed from dispatch.
#[cfg(feature = "test-support")]
#[uniffi::export]
impl JobVault {
    /// Opens the vault in `dir` with the software keystore (key files in `dir/keystore`), for
    /// tests and desktop tools. Weaker than a hardware keystore: whoever copies the whole
    /// directory while a job is open can read that job. Apps use `open` with the platform keystore.
    #[uniffi::constructor]
    pub fn open_with_software_keystore(dir: String, clock: Arc<dyn PlatformClock>) -> Result<Arc<Self>> {
        let keystore = jobseal::FileKeyStore::open(std::path::Path::new(&dir).join(jobseal::KEYSTORE_DIR))
            .map_err(jobseal::Error::from)?;
        let vault = jobseal::Vault::open(&dir, Arc::new(keystore), Arc::new(ClockAdapter(clock)))?;
        Ok(Arc::new(JobVault(vault)))
    }

    /// Stores a plaintext job sheet (JSON, format `jobseal.sheet.v1`): a new job, or a newer
    /// version of a live one. Sheets normally arrive sealed, through `receive` or `sync`; this
    /// entry point is for tests and trusted local imports.
    pub fn ingest_sheet_json(&self, sheet_json: String) -> Result<JobInfo> {
        let json = jobseal::SecretString::new(sheet_json);
        Ok(self.0.ingest(&jobseal::JobSheet::from_json(json.expose().as_bytes())?)?.into())
    }
}

impl JobVault {
    /// The core's vault, for the other wrappers of this crate.
    pub(crate) fn core(&self) -> &jobseal::Vault {
        &self.0
    }

    /// `sync` over any core transport (the blocking and the async adapters).
    pub(crate) fn sync_with(&self, transport: &dyn jobseal::Transport) -> Result<SyncReport> {
        Ok(self.0.sync(transport)?.into())
    }

    /// `enrolWithDispatch` over any core transport.
    pub(crate) fn enrol_with(
        &self,
        transport: &dyn jobseal::Transport,
        dispatch_key_hex: Option<String>,
        prekeys: u32,
        enrolment_code: Option<String>,
    ) -> Result<DeviceBundle> {
        let key = dispatch_key_hex.as_deref().map(dispatch_key).transpose()?;
        self.0.enrol_with_dispatch(transport, key, prekeys, enrolment_code.as_deref())?.try_into()
    }
}

#[cfg(all(test, feature = "test-support"))]
mod tests {
    use super::*;
    use crate::types::{DenialReason, FieldAccess};
    use std::sync::atomic::{AtomicI64, Ordering};

    /// 2030-06-12T08:30:00Z, inside the test sheet's access window.
    const INSIDE_MS: i64 = 1_907_483_400_000;

    struct FixedClock(AtomicI64);

    impl PlatformClock for FixedClock {
        fn wall_now_ms(&self) -> Result<i64> {
            Ok(self.0.load(Ordering::SeqCst))
        }
        fn boot_elapsed_ms(&self) -> Result<Option<i64>> {
            Ok(None)
        }
        fn boot_id(&self) -> Result<Option<String>> {
            Ok(None)
        }
    }

    fn sheet() -> String {
        r#"{"format": "jobseal.sheet.v1", "job_id": "4f1c2b8e-7d3a-4c59-9e21-6a0b5d8f3c17", "version": 1,
            "work_order": "WO-1", "window": {"start": "2030-06-12T08:00:00Z", "end": "2030-06-12T10:00:00Z"},
            "access": {"open_before_minutes": 60, "close_after_minutes": 120, "hard_expiry": "2030-06-12T20:00:00Z"},
            "work": {"summary": "Test job"}, "site_area": "Test area",
            "customer": [{"name": "phone", "kind": "phone", "value": "CANARY-PHONE", "reveal_in": ["on-site"]}]}"#
            .to_owned()
    }

    #[test]
    fn the_wrapper_converts_a_whole_job_life() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock(AtomicI64::new(INSIDE_MS)));
        let vault = JobVault::open_with_software_keystore(dir.path().join("v").display().to_string(), clock).unwrap();
        let job = vault.ingest_sheet_json(sheet()).unwrap();
        assert_eq!(job.state, JobState::Assigned);
        assert_eq!(job.fields.len(), 1);
        let hidden = vault.reveal(job.job_id.clone()).unwrap();
        assert!(matches!(&hidden.fields[0].access, FieldAccess::Hidden { reason: DenialReason::WrongState { .. } }));

        vault.advance(job.job_id.clone(), JobState::OnSite).unwrap();
        let shown = vault.reveal(job.job_id.clone()).unwrap();
        assert!(matches!(&shown.fields[0].access, FieldAccess::Visible { value, .. } if value == "CANARY-PHONE"));
        assert!(!format!("{shown:?}").contains("CANARY"));

        let outcome = vault.close_job(job.job_id.clone(), "Done.".into()).unwrap();
        assert_eq!((outcome.state, outcome.fields_destroyed, outcome.epoch), (JobState::Completed, 1, 2));
        let denied = vault.reveal(job.job_id.clone()).unwrap_err();
        assert_eq!(
            denied,
            JobsealError::AccessDenied { reason: DenialReason::Shredded { state: JobState::Completed } }
        );
        assert!(matches!(vault.close_job(job.job_id.clone(), "again".into()), Err(JobsealError::Conflict { .. })));
        assert!(matches!(vault.job("nope".into()), Err(JobsealError::InvalidInput { .. })));
        assert!(vault.verify_audit().unwrap().valid);
    }
}

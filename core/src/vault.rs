//! The vault: one job sheet store per device (G1, G2, G3, G5, G8).
//!
//! Every public call runs under one lock and, where it writes, in one SQLite transaction, so a call
//! either happens entirely or not at all and concurrent callers see each other's effects whole.
//! Each call first enforces hard expiry against trusted time, so an expired job shreds at the next
//! touch of the vault with no network and no sweep scheduled. Lock order: the vault mutex, then
//! SQLite's write lock; the keystore and clock are called with the mutex held and must not call back.

use crate::audit::{self, AuditEvent, AuditKind, AuditVerification, NewEvent};
use crate::clock::{self, Clock, TimeAnchor, TimeState};
use crate::crypto::{Aad, Key32, SecretString};
use crate::envelope::RecipientKeyId;
use crate::keys::{kek_alias, KeyStore};
use crate::policy::{AccessWindow, Denial, JobState};
use crate::sheet::{FieldKind, JobSheet, ScheduledWindow, WorkDetails};
use crate::store::{self, DB_FILE};
use crate::sync::outbox;
use crate::sync::wire::EventBody;
use crate::{crash_point, Error, Result};
use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use uuid::Uuid;

const HWM: &str = "high_water_ms";
const ANCHOR_SERVER: &str = "anchor_server_ms";
const ANCHOR_BOOT: &str = "anchor_boot_ms";
/// Longest completion report, in characters.
pub const MAX_REPORT_CHARS: usize = 4000;

/// What a job looks like without its customer data: safe to list, log and keep after the close.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobInfo {
    /// The job's identity.
    pub job_id: Uuid,
    /// Sheet version held.
    pub version: u64,
    /// Dispatch's work-order reference.
    pub work_order: String,
    /// Current state.
    pub state: JobState,
    /// The appointment slot.
    pub window: ScheduledWindow,
    /// The access window and hard expiry.
    pub access: AccessWindow,
    /// What is to be done (absent once the job is shredded).
    pub work: Option<WorkDetails>,
    /// Coarse site area (absent once the job is shredded).
    pub site_area: Option<String>,
    /// The customer fields' names, kinds and policies (empty once the job is shredded).
    pub fields: Vec<FieldInfo>,
    /// When the sheet was first stored.
    pub received_at: DateTime<Utc>,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
    /// The technician's completion report, kept after the close.
    pub report: Option<String>,
    /// When the customer data was destroyed.
    pub shredded_at: Option<DateTime<Utc>>,
    /// Which device key the sealed sheet came to: a one-time prekey, or the identity key when
    /// dispatch had no prekey left (no forward secrecy for that sheet). `None` for a sheet
    /// stored in plaintext through [`Vault::ingest`].
    pub delivered_via: Option<RecipientKeyId>,
}

/// A customer field described without its value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldInfo {
    /// The field's name.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// States in which it may be shown.
    pub reveal_in: Vec<JobState>,
}

/// The result of one reveal: every customer field of the job, shown or refused.
#[derive(Debug)]
pub struct Reveal {
    /// The job.
    pub job_id: Uuid,
    /// Its state at the reveal.
    pub state: JobState,
    /// Trusted time of the reveal.
    pub at: DateTime<Utc>,
    /// One entry per customer field, in sheet order.
    pub fields: Vec<RevealedField>,
}

/// One field of a [`Reveal`].
#[derive(Debug)]
pub struct RevealedField {
    /// The field's name.
    pub name: String,
    /// What it holds.
    pub kind: FieldKind,
    /// The value and how long it stays visible, or why it is hidden.
    pub access: FieldAccess,
}

/// Whether a field is shown.
#[derive(Debug)]
pub enum FieldAccess {
    /// Shown: the value, and the instant it stops being visible.
    Visible {
        /// The customer value.
        value: SecretString,
        /// When it stops being visible.
        until: DateTime<Utc>,
    },
    /// Not shown, and why.
    Hidden(Denial),
}

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

/// The device's job sheet vault.
pub struct Vault {
    inner: Mutex<Inner>,
}

pub(crate) struct Inner {
    pub(crate) conn: Connection,
    pub(crate) keystore: Arc<dyn KeyStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) epoch: u64,
    pub(crate) emk: Key32,
    pub(crate) dir: PathBuf,
    /// Shreds done while opening (expired jobs), kept for the first [`Vault::sweep`] to report.
    opened_with: Vec<ShredOutcome>,
    /// False only when no job is marked `closing`. Whatever marks a job sets it (before its
    /// write); [`Inner::shred_pending`] clears it once a rotation has shredded every marked job.
    /// Saves every call a scan of all live jobs (the `closing` column has no index).
    pub(crate) shreds_pending: bool,
    _lock: File,
}

impl Vault {
    /// Opens the vault in `dir`, creating it on first use. Finishes any shred or key rotation a
    /// crash interrupted, then shreds jobs whose hard expiry has passed.
    pub fn open(dir: impl AsRef<Path>, keystore: Arc<dyn KeyStore>, clock: Arc<dyn Clock>) -> Result<Vault> {
        let dir = dir.as_ref().to_path_buf();
        fs::create_dir_all(&dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        }
        let lock = File::create(dir.join("vault.lock"))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(Error::Locked),
            Err(std::fs::TryLockError::Error(e)) => return Err(Error::Io(e)),
        }
        let mut conn = store::open(&dir.join(DB_FILE))?;
        let (epoch, emk) = match current_epoch(&conn)? {
            Some((epoch, wrapped)) => {
                let raw = keystore.unwrap(&kek_alias(epoch), &wrapped)?;
                (epoch, Key32::from_slice(&raw)?)
            }
            None => create_first_epoch(&mut conn, keystore.as_ref(), clock.as_ref())?,
        };
        let mut inner = Inner {
            conn,
            keystore,
            clock,
            epoch,
            emk,
            dir,
            opened_with: Vec::new(),
            // A job marked before a crash or by an earlier process: the first call looks.
            shreds_pending: true,
            _lock: lock,
        };
        inner.finish_interrupted()?;
        let now = inner.trusted_now()?;
        inner.opened_with = inner.expire(now)?;
        Ok(Vault { inner: Mutex::new(inner) })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic under the lock cannot leave a half-made change: every change is one SQLite
        // transaction and the in-memory key moves only after its commit.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The vault's directory.
    pub fn dir(&self) -> PathBuf {
        self.lock().dir.clone()
    }

    /// Trusted time now (see [`crate::clock`]).
    pub fn trusted_now(&self) -> Result<DateTime<Utc>> {
        Ok(clock::from_ms(self.lock().trusted_now()?))
    }

    /// Records server time from a sync as the trusted-time anchor.
    pub fn anchor_server_time(&self, server_time: DateTime<Utc>) -> Result<()> {
        let mut inner = self.lock();
        let (_, boot) = clock::read(inner.clock.as_ref());
        let server_ms = clock::to_ms(server_time);
        let tx = store::write_tx(&mut inner.conn)?;
        if let Some(boot_ms) = boot {
            store::set_meta_i64(&tx, ANCHOR_SERVER, server_ms)?;
            store::set_meta_i64(&tx, ANCHOR_BOOT, boot_ms)?;
        }
        let hwm = store::meta_i64(&tx, HWM)?.unwrap_or(i64::MIN);
        if server_ms > hwm {
            store::set_meta_i64(&tx, HWM, server_ms)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a validated job sheet: a new job in state Assigned, or a newer version of a live job
    /// (its fields replaced, its state kept). Refuses sheets of closed jobs, stale versions and
    /// sheets whose hard expiry has passed. This is the plaintext entry point; sealed sheets are
    /// opened first and then come through here.
    pub fn ingest(&self, sheet: &JobSheet) -> Result<JobInfo> {
        sheet.validate()?;
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.ingest(sheet, now, None)
    }

    /// Every job, live and closed, most recently received first.
    pub fn list_jobs(&self) -> Result<Vec<JobInfo>> {
        let mut inner = self.lock();
        inner.begin()?;
        let ids: Vec<String> = {
            let mut stmt = inner.conn.prepare_cached("SELECT id FROM jobs ORDER BY received_ms DESC, id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        ids.iter().map(|id| load_info(&inner.conn, parse_id(id)?)).collect()
    }

    /// One job, without customer values.
    pub fn job(&self, job_id: Uuid) -> Result<JobInfo> {
        let mut inner = self.lock();
        inner.begin()?;
        load_info(&inner.conn, job_id)
    }

    /// Moves a live job forward (to en-route or on-site).
    pub fn advance(&self, job_id: Uuid, to: JobState) -> Result<JobInfo> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        let tx = store::write_tx(&mut inner.conn)?;
        let job = load_live(&tx, job_id)?;
        if !job.state.can_advance_to(to) {
            return Err(Error::IllegalTransition { from: job.state, to });
        }
        tx.prepare_cached("UPDATE jobs SET state = ?2, updated_ms = ?3 WHERE id = ?1")?.execute(params![
            job_id.to_string(),
            to.as_str(),
            now
        ])?;
        audit::append(
            &tx,
            &NewEvent::job(now, job_id, AuditKind::Transition, to).detail(format!("{} -> {}", job.state, to)),
        )?;
        outbox::enqueue(&tx, Some(job_id), now, &EventBody::State { from: job.state, to })?;
        persist_high_water(&tx, now)?;
        tx.commit()?;
        load_info(&inner.conn, job_id)
    }

    /// Decrypts and returns the job's customer fields that are visible now; the others come back
    /// hidden with the reason. Every shown and every refused field is audited, in the same
    /// transaction, before anything is returned.
    pub fn reveal(&self, job_id: Uuid) -> Result<Reveal> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.reveal(job_id, now)
    }

    /// Closes the job with the technician's completion report and shreds its customer data. The
    /// report is stored durably before the shred begins and survives it.
    pub fn close(&self, job_id: Uuid, report: &str) -> Result<ShredOutcome> {
        check_report(report)?;
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.start_shred(job_id, JobState::Completed, Some(report), now)?;
        crash_point("close:report-saved");
        one(inner.shred_pending(now)?, job_id)
    }

    /// Cancels the job on the technician's side and shreds its customer data.
    pub fn cancel(&self, job_id: Uuid) -> Result<ShredOutcome> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.start_shred(job_id, JobState::Cancelled, None, now)?;
        one(inner.shred_pending(now)?, job_id)
    }

    /// Withdraws the job on dispatch's word (cancelled upstream, reassigned, device wiped) and
    /// shreds its customer data.
    pub fn revoke(&self, job_id: Uuid) -> Result<ShredOutcome> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.start_shred(job_id, JobState::Revoked, None, now)?;
        one(inner.shred_pending(now)?, job_id)
    }

    /// Shreds every job whose hard expiry has passed. Every other call does this too; sweep is for
    /// a periodic background task when the app is otherwise idle. The first sweep also reports the
    /// jobs that opening the vault shredded.
    pub fn sweep(&self) -> Result<Vec<ShredOutcome>> {
        let mut inner = self.lock();
        let now = inner.trusted_now()?;
        let mut out = std::mem::take(&mut inner.opened_with);
        out.extend(inner.expire(now)?);
        Ok(out)
    }

    /// The audit events, all or those of one job.
    pub fn audit_log(&self, job_id: Option<Uuid>) -> Result<Vec<AuditEvent>> {
        let inner = self.lock();
        audit::list(&inner.conn, job_id)
    }

    /// Checks the audit chain end to end.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        let inner = self.lock();
        audit::verify(&inner.conn)
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u64 {
        self.lock().epoch
    }

    /// Test-only: a job's raw data key, so forensic tests can look for its bytes on disk.
    #[cfg(feature = "insecure-test-hooks")]
    pub fn data_key_insecure_for_testing(&self, job_id: Uuid) -> Result<Vec<u8>> {
        let inner = self.lock();
        Ok(inner.data_key(job_id)?.as_bytes().to_vec())
    }
}

fn one(mut outcomes: Vec<ShredOutcome>, job_id: Uuid) -> Result<ShredOutcome> {
    let pos = outcomes
        .iter()
        .position(|o| o.job_id == job_id)
        .ok_or_else(|| Error::integrity("shred finished without the job it was asked for"))?;
    Ok(outcomes.swap_remove(pos))
}

fn check_report(report: &str) -> Result<()> {
    let n = report.chars().count();
    if n == 0 || n > MAX_REPORT_CHARS {
        return Err(Error::InvalidInput(format!("the report must be 1 to {MAX_REPORT_CHARS} characters")));
    }
    if report.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(Error::InvalidInput("the report must not contain control characters".into()));
    }
    Ok(())
}

fn current_epoch(conn: &Connection) -> Result<Option<(u64, Vec<u8>)>> {
    Ok(conn
        .query_row("SELECT epoch, wrapped_emk FROM epochs ORDER BY epoch DESC LIMIT 1", [], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
        })
        .optional()?)
}

/// Creates epoch 1 for a new vault. The pending row is committed before the KEK is generated so
/// that a crash in between leaves a record of the orphan key for the next open to delete.
fn create_first_epoch(conn: &mut Connection, ks: &dyn KeyStore, clock: &dyn Clock) -> Result<(u64, Key32)> {
    let epoch = 1u64;
    let alias = kek_alias(epoch);
    let tx = store::write_tx(conn)?;
    let orphans: Vec<i64> = {
        let mut stmt = tx.prepare("SELECT epoch FROM pending_epochs")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    for p in orphans {
        ks.delete(&kek_alias(p as u64))?;
    }
    tx.execute("DELETE FROM pending_epochs", [])?;
    tx.execute("INSERT INTO pending_epochs (epoch) VALUES (?1)", [epoch as i64])?;
    tx.commit()?;
    // No epoch exists yet, so nothing can depend on a key under this alias: one left by an
    // earlier vault in this folder (whose database was removed) is stale and goes first.
    ks.delete(&alias)?;
    ks.generate(&alias)?;
    let emk = Key32::random();
    let wrapped = ks.wrap(&alias, emk.as_bytes())?;
    let (wall, _) = clock::read(clock);
    let tx = store::write_tx(conn)?;
    tx.execute(
        "INSERT INTO epochs (epoch, wrapped_emk, created_ms) VALUES (?1, ?2, ?3)",
        params![epoch as i64, wrapped, wall],
    )?;
    tx.execute("DELETE FROM pending_epochs WHERE epoch = ?1", [epoch as i64])?;
    audit::append(
        &tx,
        &NewEvent { at_ms: wall, job_id: None, kind: AuditKind::VaultCreated, field: None, state: None, detail: None },
    )?;
    tx.commit()?;
    Ok((epoch, emk))
}

pub(crate) fn parse_id(s: &str) -> Result<Uuid> {
    Uuid::parse_str(s).map_err(|_| Error::integrity("stored job id is not a UUID"))
}

fn persist_high_water(conn: &Connection, now: i64) -> Result<()> {
    let hwm = store::meta_i64(conn, HWM)?.unwrap_or(i64::MIN);
    if now > hwm {
        store::set_meta_i64(conn, HWM, now)?;
    }
    Ok(())
}

/// The parts of a job row the policy and the shred need.
pub(crate) struct LiveJob {
    pub(crate) state: JobState,
    pub(crate) version: u64,
    pub(crate) window: AccessWindow,
}

fn state_of(s: &str) -> Result<JobState> {
    s.parse().map_err(|_| Error::integrity("stored job state is unknown"))
}

/// Loads a job that still holds customer data, or says why it does not.
pub(crate) fn load_live(conn: &Connection, job_id: Uuid) -> Result<LiveJob> {
    let row: Option<(String, i64, i64, i64, i64, Option<String>)> = conn
        .prepare_cached("SELECT state, version, opens_ms, closes_ms, hard_expiry_ms, closing FROM jobs WHERE id = ?1")?
        .query_row([job_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .optional()?;
    let (state, version, opens, closes, expiry, closing) = row.ok_or(Error::JobNotFound(job_id))?;
    let state = state_of(&state)?;
    if state.is_terminal() {
        return Err(Error::JobClosed { job_id, state });
    }
    if let Some(target) = closing {
        return Err(Error::JobClosed { job_id, state: state_of(&target)? });
    }
    Ok(LiveJob {
        state,
        version: version as u64,
        window: AccessWindow {
            opens_at: clock::from_ms(opens),
            closes_at: clock::from_ms(closes),
            hard_expiry: clock::from_ms(expiry),
        },
    })
}

fn load_info(conn: &Connection, job_id: Uuid) -> Result<JobInfo> {
    type Row = (
        i64,
        String,
        String,
        [i64; 5],
        (Option<String>, Option<String>),
        (i64, i64),
        (Option<String>, Option<i64>, Option<String>),
    );
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT version, work_order, state, window_start_ms, window_end_ms, opens_ms, closes_ms,
                    hard_expiry_ms, work, site_area, received_ms, updated_ms, report, shredded_ms, delivered_via
             FROM jobs WHERE id = ?1",
        )?
        .query_row([job_id.to_string()], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                [r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?],
                (r.get(8)?, r.get(9)?),
                (r.get(10)?, r.get(11)?),
                (r.get(12)?, r.get(13)?, r.get(14)?),
            ))
        })
        .optional()?;
    let (version, work_order, state, t, (work, site_area), (received, updated), (report, shredded, via)) =
        row.ok_or(Error::JobNotFound(job_id))?;
    let delivered_via = via.as_deref().map(parse_delivery).transpose()?;
    let work = work
        .map(|w| serde_json::from_str(&w).map_err(|_| Error::integrity("stored work details are unreadable")))
        .transpose()?;
    let mut fields = Vec::new();
    {
        let mut stmt =
            conn.prepare_cached("SELECT name, kind, reveal_in FROM fields WHERE job_id = ?1 ORDER BY ord")?;
        let mut rows = stmt.query([job_id.to_string()])?;
        while let Some(r) = rows.next()? {
            let kind: String = r.get(1)?;
            let reveal_in: String = r.get(2)?;
            fields.push(FieldInfo {
                name: r.get(0)?,
                kind: FieldKind::parse(&kind)?,
                reveal_in: parse_states(&reveal_in)?,
            });
        }
    }
    Ok(JobInfo {
        job_id,
        version: version as u64,
        work_order,
        state: state_of(&state)?,
        window: ScheduledWindow { start: clock::from_ms(t[0]), end: clock::from_ms(t[1]) },
        access: AccessWindow {
            opens_at: clock::from_ms(t[2]),
            closes_at: clock::from_ms(t[3]),
            hard_expiry: clock::from_ms(t[4]),
        },
        work,
        site_area,
        fields,
        received_at: clock::from_ms(received),
        updated_at: clock::from_ms(updated),
        report,
        shredded_at: shredded.map(clock::from_ms),
        delivered_via,
    })
}

pub(crate) fn delivery_text(via: RecipientKeyId) -> String {
    match via {
        RecipientKeyId::Prekey(id) => format!("prekey:{id}"),
        RecipientKeyId::Identity => "identity".to_owned(),
    }
}

fn parse_delivery(s: &str) -> Result<RecipientKeyId> {
    match s.strip_prefix("prekey:") {
        Some(id) => {
            id.parse().map(RecipientKeyId::Prekey).map_err(|_| Error::integrity("stored delivery is unreadable"))
        }
        None if s == "identity" => Ok(RecipientKeyId::Identity),
        None => Err(Error::integrity("stored delivery is unreadable")),
    }
}

fn states_text(states: &[JobState]) -> String {
    states.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(",")
}

fn parse_states(s: &str) -> Result<Vec<JobState>> {
    s.split(',').map(state_of).collect()
}

/// Reads and unwraps the secret `id` wrapped under `emk` of `epoch`.
pub(crate) fn unwrap_stored(
    conn: &Connection,
    emk: &Key32,
    epoch: u64,
    id: &str,
) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
    let row: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT epoch, wrapped FROM secrets WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((stored_epoch, wrapped)) = row else { return Ok(None) };
    if stored_epoch as u64 != epoch {
        return Err(Error::integrity("a secret is wrapped under a retired epoch"));
    }
    Ok(Some(emk.open(&wrapped, wrap_aad(id, epoch).bytes())?))
}

/// AAD of a customer field: the design's `"jobseal/v1" | job id | field name | sheet version`.
pub(crate) fn field_aad(job_id: Uuid, field: &str, version: u64) -> Aad {
    Aad::new("jobseal/v1").part(job_id.as_bytes()).part(field.as_bytes()).u64(version)
}

/// AAD of a secret wrapped under an epoch master key: its id and the epoch.
pub(crate) fn wrap_aad(secret_id: &str, epoch: u64) -> Aad {
    Aad::new("jobseal/v1/wrap").part(secret_id.as_bytes()).u64(epoch)
}

pub(crate) fn dek_id(job_id: Uuid) -> String {
    format!("dek:{job_id}")
}

impl Inner {
    /// Trusted time from the persisted state and the clocks.
    pub(crate) fn trusted_now(&self) -> Result<i64> {
        let st = TimeState {
            high_water_ms: store::meta_i64(&self.conn, HWM)?.unwrap_or(i64::MIN),
            anchor: match (store::meta_i64(&self.conn, ANCHOR_SERVER)?, store::meta_i64(&self.conn, ANCHOR_BOOT)?) {
                (Some(server_ms), Some(boot_ms)) => Some(TimeAnchor { server_ms, boot_ms }),
                _ => None,
            },
        };
        let (wall, boot) = clock::read(self.clock.as_ref());
        Ok(st.trusted_ms(wall, boot))
    }

    /// The common start of every call: trusted time, then hard expiry enforced at that time.
    pub(crate) fn begin(&mut self) -> Result<i64> {
        let now = self.trusted_now()?;
        self.expire(now)?;
        Ok(now)
    }

    /// Shreds, as Expired, every live job whose hard expiry is at or before `now`.
    pub(crate) fn expire(&mut self, now: i64) -> Result<Vec<ShredOutcome>> {
        let due: Vec<String> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id FROM jobs WHERE shredded_ms IS NULL AND closing IS NULL AND hard_expiry_ms <= ?1",
            )?;
            let rows = stmt.query_map([now], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if !due.is_empty() {
            self.mark_expired(&due, now)?;
        }
        // Also finishes shreds that an earlier keystore failure in this process left marked.
        self.shred_pending(now)
    }

    fn mark_expired(&mut self, due: &[String], now: i64) -> Result<()> {
        self.shreds_pending = true;
        let tx = store::write_tx(&mut self.conn)?;
        for id in due {
            tx.execute("UPDATE jobs SET closing = ?2 WHERE id = ?1", params![id, JobState::Expired.as_str()])?;
        }
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Marks a live job for shredding into `target`, storing the report if any. This commits
    /// before the shred begins, so a crash after it still ends in the shred at the next open and
    /// the report is never lost.
    pub(crate) fn start_shred(&mut self, job_id: Uuid, target: JobState, report: Option<&str>, now: i64) -> Result<()> {
        self.shreds_pending = true;
        let tx = store::write_tx(&mut self.conn)?;
        let job = load_live(&tx, job_id)?;
        if target == JobState::Completed && !job.state.can_close() {
            return Err(Error::IllegalTransition { from: job.state, to: target });
        }
        tx.prepare_cached(
            "UPDATE jobs SET closing = ?2, report = ?3, report_ms = CASE WHEN ?3 IS NULL THEN NULL ELSE ?4 END
             WHERE id = ?1",
        )?
        .execute(params![job_id.to_string(), target.as_str(), report, now])?;
        if let Some(text) = report {
            outbox::enqueue(&tx, Some(job_id), now, &EventBody::Report { text: text.to_owned() })?;
        }
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(())
    }

    /// Stores a sheet in one transaction. A sealed sheet names the key it came to, and that
    /// prekey's private half is deleted in the same transaction (G4): the sheet is never stored
    /// without the prekey being gone, nor the prekey gone without the sheet stored.
    pub(crate) fn ingest(&mut self, sheet: &JobSheet, now: i64, via: Option<RecipientKeyId>) -> Result<JobInfo> {
        let job_id = sheet.job_id;
        let window = sheet.access_window();
        if clock::to_ms(window.hard_expiry) <= now {
            return Err(Error::InvalidSheet("the sheet's hard expiry has already passed".into()));
        }
        let epoch = self.epoch;
        let tx = store::write_tx(&mut self.conn)?;
        let existing = match load_live(&tx, job_id) {
            Ok(job) => Some(job),
            Err(Error::JobNotFound(_)) => None,
            Err(e) => return Err(e),
        };
        if let Some(held) = &existing {
            if sheet.version <= held.version {
                return Err(Error::StaleVersion { job_id, held: held.version, offered: sheet.version });
            }
        }
        let dek = Key32::random();
        let wrapped = self.emk.seal(dek.as_bytes(), wrap_aad(&dek_id(job_id), epoch).bytes())?;
        let work = serde_json::to_string(&sheet.work).map_err(|_| Error::InvalidSheet("work details".into()))?;
        let id = job_id.to_string();
        let state = existing.as_ref().map_or(JobState::Assigned, |j| j.state);
        tx.prepare_cached(
            "INSERT INTO jobs (id, version, work_order, state, window_start_ms, window_end_ms, opens_ms, closes_ms,
                               hard_expiry_ms, work, site_area, received_ms, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?12)
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, work_order = excluded.work_order,
                 window_start_ms = excluded.window_start_ms, window_end_ms = excluded.window_end_ms,
                 opens_ms = excluded.opens_ms, closes_ms = excluded.closes_ms,
                 hard_expiry_ms = excluded.hard_expiry_ms, work = excluded.work,
                 site_area = excluded.site_area, updated_ms = excluded.updated_ms",
        )?
        .execute(params![
            id,
            sheet.version as i64,
            sheet.work_order,
            state.as_str(),
            clock::to_ms(sheet.window.start),
            clock::to_ms(sheet.window.end),
            clock::to_ms(window.opens_at),
            clock::to_ms(window.closes_at),
            clock::to_ms(window.hard_expiry),
            work,
            sheet.site_area,
            now,
        ])?;
        tx.prepare_cached("DELETE FROM fields WHERE job_id = ?1")?.execute([&id])?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO fields (job_id, ord, name, kind, reveal_in, sealed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (ord, field) in sheet.customer.iter().enumerate() {
                let sealed =
                    dek.seal(field.value.expose().as_bytes(), field_aad(job_id, &field.name, sheet.version).bytes())?;
                insert.execute(params![
                    id,
                    ord as i64,
                    field.name,
                    field.kind.as_str(),
                    states_text(&field.reveal_in),
                    sealed
                ])?;
            }
        }
        tx.prepare_cached(
            "INSERT INTO secrets (id, epoch, wrapped) VALUES (?1, ?2, ?3)
             ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, wrapped = excluded.wrapped",
        )?
        .execute(params![dek_id(job_id), epoch as i64, wrapped])?;
        let mut detail = format!("version {}", sheet.version);
        if let Some(via) = via {
            tx.prepare_cached("UPDATE jobs SET delivered_via = ?2 WHERE id = ?1")?
                .execute(params![id, delivery_text(via)])?;
            match via {
                RecipientKeyId::Prekey(p) => {
                    crate::delivery::consume_prekey(&tx, p)?;
                    detail.push_str(&format!("; sealed to prekey {p}"));
                }
                RecipientKeyId::Identity => detail.push_str("; sealed to the identity key (no prekey left)"),
            }
            outbox::enqueue(&tx, Some(job_id), now, &EventBody::Received { version: sheet.version, via })?;
        }
        let kind = if existing.is_some() { AuditKind::Updated } else { AuditKind::Ingested };
        audit::append(&tx, &NewEvent::job(now, job_id, kind, state).detail(detail))?;
        persist_high_water(&tx, now)?;
        crash_point("ingest:before-commit");
        tx.commit()?;
        crash_point("ingest:after-commit");
        load_info(&self.conn, job_id)
    }

    /// Unwraps a live job's data key.
    pub(crate) fn data_key(&self, job_id: Uuid) -> Result<Key32> {
        let raw =
            self.unwrap_secret_bytes(&dek_id(job_id))?.ok_or_else(|| Error::integrity("a live job has no data key"))?;
        Key32::from_slice(&raw)
    }

    /// Unwraps a secret stored under the current epoch master key, if it exists.
    pub(crate) fn unwrap_secret_bytes(&self, id: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        unwrap_stored(&self.conn, &self.emk, self.epoch, id)
    }

    /// Writes a PII-free tombstone (and a receipt) for a job dispatch withdrew before this device
    /// ever held it, so that its sheet is refused if it arrives later.
    pub(crate) fn tombstone_unknown(&mut self, job_id: Uuid, now: i64) -> Result<ShredOutcome> {
        let signer = crate::delivery::receipt_signer(&self.conn, &self.emk, self.epoch)?;
        let outcome = ShredOutcome {
            job_id,
            version: 0,
            state: JobState::Revoked,
            shredded_at: clock::from_ms(now),
            epoch: self.epoch,
            fields_destroyed: 0,
        };
        let tx = store::write_tx(&mut self.conn)?;
        tx.prepare_cached(
            "INSERT INTO jobs (id, version, work_order, state, window_start_ms, window_end_ms, opens_ms, closes_ms,
                               hard_expiry_ms, received_ms, updated_ms, shredded_ms, shred_epoch)
             VALUES (?1, 0, '-', ?2, ?3, ?3, ?3, ?3, ?3, ?3, ?3, ?3, ?4)",
        )?
        .execute(params![job_id.to_string(), JobState::Revoked.as_str(), now, self.epoch as i64])?;
        audit::append(
            &tx,
            &NewEvent::job(now, job_id, AuditKind::Shredded, JobState::Revoked)
                .detail("withdrawn by dispatch before it reached this device; tombstone only"),
        )?;
        if let Some((device_id, key)) = &signer {
            outbox::enqueue(&tx, Some(job_id), now, &EventBody::Receipt(key.sign(*device_id, &outcome)))?;
        }
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(outcome)
    }

    fn reveal(&mut self, job_id: Uuid, now: i64) -> Result<Reveal> {
        let job = match load_live(&self.conn, job_id) {
            Err(Error::JobClosed { state, .. }) => return Err(Error::AccessDenied(Denial::Shredded { state })),
            other => other?,
        };
        let at = clock::from_ms(now);
        let rows: Vec<(String, String, String, Vec<u8>)> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT name, kind, reveal_in, sealed FROM fields WHERE job_id = ?1 ORDER BY ord")?;
            let rows = stmt.query_map([job_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let mut dek: Option<Key32> = None;
        let mut fields = Vec::with_capacity(rows.len());
        let mut events = Vec::with_capacity(rows.len());
        for (name, kind, reveal_in, sealed) in rows {
            let kind = FieldKind::parse(&kind)?;
            let access = match job.window.decide(job.state, &parse_states(&reveal_in)?, at) {
                Ok(until) => {
                    if dek.is_none() {
                        dek = Some(self.data_key(job_id)?);
                    }
                    let key = dek.as_ref().ok_or_else(|| Error::integrity("data key"))?;
                    let plain = key.open(&sealed, field_aad(job_id, &name, job.version).bytes())?;
                    events.push(NewEvent::job(now, job_id, AuditKind::Reveal, job.state).field(&name));
                    FieldAccess::Visible { value: SecretString::from_utf8(plain)?, until }
                }
                Err(denial) => {
                    events.push(
                        NewEvent::job(now, job_id, AuditKind::RevealDenied, job.state)
                            .field(&name)
                            .detail(denial_code(&denial)),
                    );
                    FieldAccess::Hidden(denial)
                }
            };
            fields.push(RevealedField { name, kind, access });
        }
        let tx = store::write_tx(&mut self.conn)?;
        for e in &events {
            audit::append(&tx, e)?;
        }
        persist_high_water(&tx, now)?;
        tx.commit()?;
        Ok(Reveal { job_id, state: job.state, at, fields })
    }
}

fn denial_code(d: &Denial) -> &'static str {
    match d {
        Denial::NotYetOpen { .. } => "not-yet-open",
        Denial::WindowClosed { .. } => "window-closed",
        Denial::WrongState { .. } => "wrong-state",
        Denial::Shredded { .. } => "shredded",
    }
}

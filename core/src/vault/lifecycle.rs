//! Storing, listing, advancing and revealing jobs, and reading the audit log (G1, G2, G5).
//!
//! A reveal decides each field against the job's state and access window at trusted time, and
//! records every shown and every refused field in one audit event (a [`crate::RevealSummary`]),
//! committed before anything is returned.

use super::{field_aad, live_data_key, Inner, Vault, VaultEvent};
use crate::audit::{AuditEvent, AuditKind, AuditVerification, NewEvent, RevealSummary};
use crate::crypto::{Key32, SecretString};
use crate::envelope::RecipientKeyId;
use crate::keyring::Keyring;
use crate::keyring::SecretId;
use crate::model::{FieldAccess, JobInfo, Reveal, RevealedField};
use crate::policy::{Denial, JobState};
use crate::sheet::JobSheet;
use crate::store::{self, jobs, Stamp, WriteTx};
use crate::sync::wire::EventBody;
use crate::{clock, crash_point, journal, Error, Result};
use uuid::Uuid;

impl Vault {
    /// Stores a validated job sheet: a new job in state Assigned, or a newer version of a live job
    /// (its fields replaced, its state kept). Refuses sheets of closed jobs, stale versions and
    /// sheets whose hard expiry has passed. This is the plaintext entry point; sealed sheets are
    /// opened first and then come through here.
    pub fn ingest(&self, sheet: &JobSheet) -> Result<JobInfo> {
        sheet.validate()?;
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.ingest(sheet, &now, None)
    }

    /// Every job, live and closed, most recently received first.
    pub fn list_jobs(&self) -> Result<Vec<JobInfo>> {
        let mut inner = self.lock();
        inner.begin()?;
        let ids = jobs::list_ids(&inner.conn)?;
        ids.into_iter().map(|id| jobs::load_info(&inner.conn, id)).collect()
    }

    /// One job, without customer values.
    pub fn job(&self, job_id: Uuid) -> Result<JobInfo> {
        let mut inner = self.lock();
        inner.begin()?;
        jobs::load_info(&inner.conn, job_id)
    }

    /// Moves a live job forward (to en-route or on-site).
    pub fn advance(&self, job_id: Uuid, to: JobState) -> Result<JobInfo> {
        let mut inner = self.lock();
        let stamp = inner.begin()?;
        let now = stamp.ms;
        let Inner { conn, keyring, .. } = &mut *inner;
        let tx = store::write(conn, &stamp)?;
        let job = jobs::load_live(&tx, keyring.integrity(), job_id)?.job;
        if !job.state.can_advance_to(to) {
            return Err(Error::IllegalTransition { from: job.state, to });
        }
        jobs::set_state(&tx, keyring.integrity(), job_id, to, now)?;
        journal::record(
            &tx,
            keyring.audit_key(&tx)?.as_ref(),
            &NewEvent::job(now, job_id, AuditKind::Transition, to).detail(format!("{} -> {}", job.state, to)),
        )?;
        journal::send(&tx, Some(job_id), now, &EventBody::State { from: job.state, to })?;
        tx.commit()?;
        let info = jobs::load_info(&inner.conn, job_id);
        if let Ok(info) = &info {
            inner.events.push(VaultEvent::JobChanged(info.clone()));
        }
        info
    }

    /// Decrypts and returns the job's customer fields that are visible now; the others come back
    /// hidden with the reason. Every shown and every refused field is named in one audit event
    /// ([`crate::RevealSummary`]), committed before anything is returned.
    pub fn reveal(&self, job_id: Uuid) -> Result<Reveal> {
        let mut inner = self.lock();
        let now = inner.begin_strict()?;
        inner.reveal(job_id, &now)
    }

    /// The audit events, all or those of one job.
    pub fn audit_log(&self, job_id: Option<Uuid>) -> Result<Vec<AuditEvent>> {
        let inner = self.lock();
        journal::list(&inner.conn, job_id)
    }

    /// Checks the audit chain end to end.
    pub fn verify_audit(&self) -> Result<AuditVerification> {
        let inner = self.lock();
        journal::verify(&inner.conn, inner.keyring.audit_key(&inner.conn)?.as_ref())
    }
}

/// Refuses a sheet whose hard expiry has passed at `stamp`.
pub(super) fn refuse_expired(sheet: &JobSheet, stamp: &Stamp) -> Result<()> {
    if clock::to_ms(sheet.access_window().hard_expiry) <= stamp.ms {
        return Err(Error::InvalidSheet("the sheet's hard expiry has already passed".into()));
    }
    Ok(())
}

impl Inner {
    /// Stores a sheet in one transaction. A sealed sheet names the key it came to, and that
    /// prekey's private half is deleted in the same transaction (G4): the sheet is never stored
    /// without the prekey being gone, nor the prekey gone without the sheet stored. A newer version
    /// of a held job gets a new data key, and its transaction rotates the key epoch (as a shred
    /// does), so that the old version's key, and its ciphertext with it, cannot be unwrapped from
    /// a copy of the database taken before the update.
    pub(super) fn ingest(&mut self, sheet: &JobSheet, stamp: &Stamp, via: Option<RecipientKeyId>) -> Result<JobInfo> {
        refuse_expired(sheet, stamp)?;
        let held = self.held(sheet.job_id)?;
        self.store_sheet(sheet, stamp, via, held)
    }

    /// The live job `job_id`, its tag checked, or `None` when the vault never held it.
    pub(super) fn held(&self, job_id: Uuid) -> Result<Option<jobs::LiveJob>> {
        match jobs::load_live(&self.conn, self.keyring.integrity(), job_id) {
            Ok(job) => Ok(Some(job.job)),
            Err(Error::JobNotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`Inner::ingest`] with the job as the caller loaded it under the vault lock (`existing`,
    /// from [`Inner::held`]), so a receive, which loads it for its own checks first, reads it once.
    /// The caller has refused an expired sheet ([`refuse_expired`]).
    pub(super) fn store_sheet(
        &mut self,
        sheet: &JobSheet,
        stamp: &Stamp,
        via: Option<RecipientKeyId>,
        existing: Option<jobs::LiveJob>,
    ) -> Result<JobInfo> {
        let now = stamp.ms;
        let job_id = sheet.job_id;
        let access = sheet.access_window();
        // `existing` was read before the transaction (the vault lock keeps it current): an update
        // needs a key rotation, which is prepared in the keystore before the transaction begins.
        if let Some(held) = &existing {
            if sheet.version <= held.version {
                return Err(Error::StaleVersion { job_id, held: held.version, offered: sheet.version });
            }
        }
        let write_sheet = |tx: &WriteTx<'_>, keyring: &Keyring| -> Result<()> {
            let dek = Key32::random()?;
            let work = serde_json::to_string(&sheet.work).map_err(|_| Error::InvalidSheet("work details".into()))?;
            let state = existing.as_ref().map_or(JobState::Assigned, |j| j.state);
            jobs::upsert(
                tx,
                &jobs::JobRow {
                    job_id,
                    version: sheet.version,
                    work_order: &sheet.work_order,
                    state,
                    window: sheet.window.clone(),
                    access,
                    work: &work,
                    site_area: &sheet.site_area,
                    now_ms: now,
                },
            )?;
            let mut fields = Vec::with_capacity(sheet.customer.len());
            for field in &sheet.customer {
                let sealed =
                    dek.seal(field.value.expose().as_bytes(), field_aad(job_id, &field.name, sheet.version).bytes())?;
                fields.push(jobs::FieldRow {
                    name: field.name.clone(),
                    kind: field.kind,
                    reveal_in: field.reveal_in.clone(),
                    sealed,
                });
            }
            jobs::replace_fields(tx, keyring.integrity(), job_id, &fields)?;
            keyring.put(tx, SecretId::JobKey(job_id), dek.as_bytes())?;
            let mut detail = format!("version {}", sheet.version);
            if let Some(via) = via {
                jobs::set_delivered_via(tx, job_id, via)?;
                match via {
                    RecipientKeyId::Prekey(p) => {
                        super::delivery::consume_prekey(keyring, tx, p)?;
                        detail.push_str(&format!("; sealed to prekey {p}"));
                    }
                    RecipientKeyId::Identity => detail.push_str("; sealed to the identity key (no prekey left)"),
                }
                journal::send(tx, Some(job_id), now, &EventBody::Received { version: sheet.version, via })?;
            }
            let kind = if existing.is_some() { AuditKind::Updated } else { AuditKind::Ingested };
            journal::record(
                tx,
                keyring.audit_key(tx)?.as_ref(),
                &NewEvent::job(now, job_id, kind, state).detail(detail),
            )
            .map(|_| ())
        };
        const POINTS: (&str, &str) = ("ingest:before-commit", "ingest:after-commit");
        if existing.is_some() {
            // An update's event is queued at its commit (see `commit_with_rotation`).
            self.commit_with_rotation(
                stamp,
                POINTS,
                |tx, keyring, _| write_sheet(tx, keyring),
                |conn, ()| jobs::load_info(conn, job_id).map(VaultEvent::JobChanged).into_iter().collect(),
            )?;
        } else {
            let Inner { conn, keyring, .. } = self;
            let tx = store::write(conn, stamp)?;
            write_sheet(&tx, keyring)?;
            crash_point(POINTS.0);
            tx.commit()?;
            crash_point(POINTS.1);
            let info = jobs::load_info(&self.conn, job_id);
            if let Ok(info) = &info {
                self.events.push(VaultEvent::JobReceived(info.clone()));
            }
            return info;
        }
        jobs::load_info(&self.conn, job_id)
    }

    fn reveal(&mut self, job_id: Uuid, stamp: &Stamp) -> Result<Reveal> {
        let now = stamp.ms;
        // One transaction for the reads and the audit write: what is decided is what is recorded,
        // and SQLite takes its locks once instead of once per statement. The job row's integrity
        // tag is checked first: an edited policy is `Tampered`, and nothing is shown.
        let Inner { conn, keyring, .. } = self;
        let tx = store::write(conn, stamp)?;
        let jobs::CheckedJob { job, fields: rows } = match jobs::load_live(&tx, keyring.integrity(), job_id) {
            Err(Error::JobClosed { state, .. }) => return Err(Error::AccessDenied(Denial::Shredded { state })),
            other => other?,
        };
        let at = clock::from_ms(now);
        let key = live_data_key(keyring, &tx, job_id)?;
        let mut fields = Vec::with_capacity(rows.len());
        let mut summary = RevealSummary::default();
        for row in rows {
            // Every field is authenticated, refused ones too: its AAD binds its name, so a row
            // renamed or added with sqlite3 fails here (Tampered, nothing recorded) instead of
            // putting an unchecked name into the audit event. A refused value is wiped unread.
            let plain = key.open(&row.sealed, field_aad(job_id, &row.name, job.version).bytes())?;
            let access = match job.window.decide(job.state, &row.reveal_in, at) {
                Ok(until) => {
                    summary.shown.push(row.name.clone());
                    FieldAccess::Visible { value: SecretString::from_utf8(plain)?, until }
                }
                Err(denial) => {
                    summary.refused.push((row.name.clone(), denial.code().to_owned()));
                    FieldAccess::Hidden(denial)
                }
            };
            fields.push(RevealedField { name: row.name, kind: row.kind, access });
        }
        // One audit event for the whole reveal, naming every field shown and refused (G2).
        journal::record(&tx, keyring.audit_key(&tx)?.as_ref(), &NewEvent::reveal(now, job_id, job.state, &summary))?;
        tx.commit()?;
        Ok(Reveal { job_id, state: job.state, at, fields })
    }
}

//! Closing, cancelling, revoking and expiring jobs: crypto-shredding with key rotation (G3, G7).
//!
//! A job is shredded in two commits. The first marks it `closing` and stores the completion
//! report, so the report is never lost. The second deletes the sealed fields and the data key,
//! tombstones the job, writes its audit event and shred receipt, and has the keyring re-wrap every
//! surviving secret under a fresh epoch; only after that commit is the old KEK deleted and the WAL
//! truncated. Before the second commit the job is fully live; after it, fully shredded; a crash in
//! between is finished by the next open. Once the old KEK is gone, no copy of the old database
//! (backup, copied file, stale flash block) can unwrap the old epoch master key, and so none of
//! the data keys under it.

use super::{check_report, one, Inner, Vault, VaultEvent};
use crate::audit::{AuditKind, NewEvent};
use crate::keyring::{Keyring, SecretId};
use crate::model::ShredOutcome;
use crate::policy::JobState;
use crate::store::{self, jobs, meta, Stamp, WriteTx};
use crate::sync::wire::EventBody;
use crate::{clock, crash_point, journal, Error, Result};
use uuid::Uuid;

impl Vault {
    /// Closes the job with the technician's completion report and shreds its customer data. The
    /// report is stored durably before the shred begins and survives it.
    pub fn close(&self, job_id: Uuid, report: &str) -> Result<ShredOutcome> {
        check_report(report)?;
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.start_shred(job_id, JobState::Completed, Some(report), &now)?;
        crash_point("close:report-saved");
        one(inner.shred_pending(&now)?, job_id)
    }

    /// Cancels the job on the technician's side and shreds its customer data.
    pub fn cancel(&self, job_id: Uuid) -> Result<ShredOutcome> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.start_shred(job_id, JobState::Cancelled, None, &now)?;
        one(inner.shred_pending(&now)?, job_id)
    }

    /// Withdraws the job on dispatch's word (cancelled upstream, reassigned, device wiped) and
    /// shreds its customer data.
    pub fn revoke(&self, job_id: Uuid) -> Result<ShredOutcome> {
        let mut inner = self.lock();
        let now = inner.begin()?;
        inner.start_shred(job_id, JobState::Revoked, None, &now)?;
        one(inner.shred_pending(&now)?, job_id)
    }

    /// Shreds every job whose hard expiry has passed. Every other call does this too; sweep is for
    /// a periodic background task when the app is otherwise idle. The first sweep also reports the
    /// jobs that opening the vault shredded.
    pub fn sweep(&self) -> Result<Vec<ShredOutcome>> {
        let mut inner = self.lock();
        let now = inner.begin_stamp()?;
        let mut out = std::mem::take(&mut inner.opened_with);
        out.extend(inner.expire(&now)?);
        Ok(out)
    }
}

impl Inner {
    /// Shreds, as Expired, every live job whose hard expiry is at or before `now`.
    pub(super) fn expire(&mut self, now: &Stamp) -> Result<Vec<ShredOutcome>> {
        let due = jobs::due_for_expiry(&self.conn, now.ms)?;
        if !due.is_empty() {
            self.shreds_pending = true;
            let tx = store::write(&mut self.conn, now)?;
            for job_id in due {
                jobs::mark_expired(&tx, self.keyring.integrity(), job_id)?;
            }
            tx.commit()?;
        }
        // Also finishes shreds that an earlier keystore failure in this process left marked.
        self.shred_pending(now)
    }

    /// Marks a live job for shredding into `target`, storing the report if any. This commits
    /// before the shred begins, so a crash after it still ends in the shred at the next open and
    /// the report is never lost. The job row's integrity tag is not checked: an edited row can
    /// always be shredded.
    pub(super) fn start_shred(
        &mut self,
        job_id: Uuid,
        target: JobState,
        report: Option<&str>,
        stamp: &Stamp,
    ) -> Result<()> {
        let now = stamp.ms;
        self.shreds_pending = true;
        let tx = store::write(&mut self.conn, stamp)?;
        let job = jobs::load_live_for_shred(&tx, job_id)?;
        if target == JobState::Completed && !job.state.can_close() {
            return Err(Error::IllegalTransition { from: job.state, to: target });
        }
        jobs::mark_closing(&tx, self.keyring.integrity(), job_id, target, report, now)?;
        if let Some(text) = report {
            journal::send(&tx, Some(job_id), now, &EventBody::Report { text: text.to_owned() })?;
        }
        tx.commit()
    }

    /// Shreds every job marked `closing`, all under one key rotation, and returns what was
    /// destroyed. Does nothing when no job is marked.
    pub(super) fn shred_pending(&mut self, stamp: &Stamp) -> Result<Vec<ShredOutcome>> {
        let now = stamp.ms;
        if !self.shreds_pending {
            return Ok(Vec::new());
        }
        let marked = jobs::marked(&self.conn)?;
        if marked.is_empty() {
            self.shreds_pending = false;
            return Ok(Vec::new());
        }
        let old_epoch = self.keyring.epoch();
        let signer = self.receipt_signer()?;
        let points = ("shred:before-commit", "shred:after-commit");
        let outcomes = self.commit_with_rotation(
            stamp,
            points,
            |tx, keyring, next| {
                let mut outcomes = Vec::with_capacity(marked.len());
                let audit_key = keyring.audit_key(tx)?;
                for m in &marked {
                    let fields = jobs::shred(tx, keyring.integrity(), m.job_id, m.closing, now, next)?;
                    keyring.delete(tx, SecretId::JobKey(m.job_id))?;
                    journal::record(
                        tx,
                        audit_key.as_ref(),
                        &NewEvent::job(now, m.job_id, AuditKind::Shredded, m.closing).detail(format!(
                            "{} -> {}; {fields} fields; epoch {old_epoch} -> {next}",
                            m.state, m.closing
                        )),
                    )?;
                    let outcome = ShredOutcome {
                        job_id: m.job_id,
                        version: m.version,
                        state: m.closing,
                        shredded_at: clock::from_ms(now),
                        epoch: next,
                        fields_destroyed: fields,
                    };
                    // The receipt is written by the shred itself, in its transaction (G7).
                    journal::send(tx, Some(m.job_id), now, &EventBody::State { from: m.state, to: m.closing })?;
                    if let Some((device_id, key)) = &signer {
                        journal::send(tx, Some(m.job_id), now, &EventBody::Receipt(key.sign(*device_id, &outcome)))?;
                    }
                    outcomes.push(outcome);
                }
                Ok(outcomes)
            },
            |_, outcomes| outcomes.iter().cloned().map(VaultEvent::JobShredded).collect(),
        )?;
        // Every marked job is shredded, and nothing marks one while this call holds the vault.
        self.shreds_pending = false;
        Ok(outcomes)
    }

    /// Runs `body` in one write transaction that also moves every surviving secret to a fresh key
    /// epoch, then, after the commit, deletes the old KEK and truncates the WAL (G3): from then on
    /// no copy of the database taken before can unwrap anything. `points` name the crash points
    /// just before and just after the commit. `committed` names the events of what `body` did;
    /// they are queued right after the commit, so that a failure in the steps after it (a
    /// keystore that will not delete the old KEK now) does not hide a change that is durable.
    pub(super) fn commit_with_rotation<T>(
        &mut self,
        stamp: &Stamp,
        points: (&str, &str),
        body: impl FnOnce(&WriteTx<'_>, &Keyring, u64) -> Result<T>,
        committed: impl FnOnce(&rusqlite::Connection, &T) -> Vec<VaultEvent>,
    ) -> Result<T> {
        let rotation = self.keyring.prepare_rotation()?;
        let next = rotation.epoch();
        let Inner { conn, keyring, .. } = self;
        let mut tx = store::write(conn, stamp)?;
        let out = body(&tx, keyring, next)?;
        keyring.rewrap_all(&tx, &rotation, stamp.ms)?;
        // The trusted-time state is bound to the epoch: seal it again under the new one, which
        // also makes every copy of it taken before this commit useless.
        if let Some((state, _)) = &stamp.state {
            tx.set_time(meta::seal_time_state(keyring.integrity(), next, state)?);
        }
        crash_point(points.0);
        tx.commit()?;
        crash_point(points.1);
        let events = committed(&self.conn, &out);
        self.events.extend(events);
        self.keyring.complete_rotation(&self.conn, rotation)?;
        store::checkpoint_truncate(&self.conn)?;
        Ok(out)
    }

    /// Writes a value-free tombstone (and a receipt) for a job dispatch withdrew before this device
    /// ever held it, so that its sheet is refused if it arrives later.
    pub(super) fn tombstone_unknown(&mut self, job_id: Uuid, stamp: &Stamp) -> Result<ShredOutcome> {
        let now = stamp.ms;
        let signer = self.receipt_signer()?;
        let epoch = self.keyring.epoch();
        let outcome = ShredOutcome {
            job_id,
            version: 0,
            state: JobState::Revoked,
            shredded_at: clock::from_ms(now),
            epoch,
            fields_destroyed: 0,
        };
        let tx = store::write(&mut self.conn, stamp)?;
        jobs::insert_tombstone(&tx, self.keyring.integrity(), job_id, JobState::Revoked, now, epoch)?;
        journal::record(
            &tx,
            self.keyring.audit_key(&tx)?.as_ref(),
            &NewEvent::job(now, job_id, AuditKind::Shredded, JobState::Revoked)
                .detail("withdrawn by dispatch before it reached this device; tombstone only"),
        )?;
        if let Some((device_id, key)) = &signer {
            journal::send(&tx, Some(job_id), now, &EventBody::Receipt(key.sign(*device_id, &outcome)))?;
        }
        tx.commit()?;
        // Nothing was on the device, but the app is told all the same: the report lists it.
        self.events.push(VaultEvent::JobShredded(outcome.clone()));
        Ok(outcome)
    }

    /// Shreds a job dispatch withdrew. A job this device never held gets a tombstone and a receipt
    /// all the same, so that its sheet can never arrive later and dispatch can close its books.
    /// The revocation's reason stays in dispatch's records; on the device the shred says "revoked".
    pub(super) fn revoke_for_dispatch(&mut self, job_id: Uuid) -> Result<Option<ShredOutcome>> {
        let now = self.begin()?;
        match self.start_shred(job_id, JobState::Revoked, None, &now) {
            Ok(()) => {}
            Err(Error::JobClosed { .. }) => return Ok(None),
            Err(Error::JobNotFound(_)) => return self.tombstone_unknown(job_id, &now).map(Some),
            Err(e) => return Err(e),
        }
        let outcomes = self.shred_pending(&now)?;
        Ok(outcomes.into_iter().find(|o| o.job_id == job_id))
    }
}

//! Crypto-shredding and key rotation (G3).
//!
//! A job is shredded in two commits. The first (in the vault) marks it `closing` and stores the
//! completion report. The second, here, deletes the sealed fields and the wrapped data key,
//! tombstones the job, and rotates the key epoch: a fresh KEK and epoch master key are made, every
//! surviving secret is re-wrapped under them, and only after that transaction commits is the old
//! KEK deleted from the keystore and the WAL truncated. Before the second commit the job is fully
//! live; after it, fully shredded; and every crash in between is finished by the next open
//! ([`Inner::finish_interrupted`]), which deletes orphan and retired KEKs idempotently. Once the old
//! KEK is gone, no copy of the old database (backup, copied file, stale flash block) can unwrap
//! the old epoch master key, and so none of the data keys under it.

use crate::audit::{self, AuditKind, NewEvent};
use crate::keys::kek_alias;
use crate::policy::JobState;
use crate::store;
use crate::sync::outbox;
use crate::sync::wire::EventBody;
use crate::vault::{dek_id, parse_id, wrap_aad, Inner, ShredOutcome};
use crate::{clock, crash_point, crypto::Key32, Error, Result};
use rusqlite::params;

impl Inner {
    /// Deletes KEKs that a committed rotation retired and KEKs generated for rotations that never
    /// committed, then truncates the WAL. Safe to run any number of times.
    pub(crate) fn finish_interrupted(&mut self) -> Result<()> {
        self.delete_retired_keys()?;
        self.delete_orphan_keys()?;
        self.conn.prepare_cached("DELETE FROM epochs WHERE epoch <> ?1")?.execute([self.epoch as i64])?;
        store::checkpoint_truncate(&self.conn)
    }

    fn delete_retired_keys(&mut self) -> Result<()> {
        let retired: Vec<String> = {
            let mut stmt = self.conn.prepare("SELECT alias FROM retired_keks")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for alias in retired {
            self.keystore.delete(&alias)?;
            crash_point("shred:kek-deleted");
            self.conn.prepare_cached("DELETE FROM retired_keks WHERE alias = ?1")?.execute([&alias])?;
        }
        Ok(())
    }

    /// Shreds every job marked `closing`, all under one key rotation, and returns what was
    /// destroyed. Does nothing when no job is marked.
    pub(crate) fn shred_pending(&mut self, now: i64) -> Result<Vec<ShredOutcome>> {
        if !self.shreds_pending {
            return Ok(Vec::new());
        }
        let marked: Vec<(String, i64, String, String)> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, version, state, closing FROM jobs WHERE closing IS NOT NULL AND shredded_ms IS NULL",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        if marked.is_empty() {
            self.shreds_pending = false;
            return Ok(Vec::new());
        }
        let old_epoch = self.epoch;
        let next = old_epoch + 1;
        let next_alias = kek_alias(next);

        // Record the KEK we are about to create, so that a crash before the commit below leaves a
        // trace the next open uses to delete it.
        self.delete_orphan_keys()?;
        self.conn.prepare_cached("INSERT INTO pending_epochs (epoch) VALUES (?1)")?.execute([next as i64])?;
        crash_point("shred:pending-recorded");
        self.keystore.generate(&next_alias)?;
        let new_emk = Key32::random();
        let wrapped_emk = self.keystore.wrap(&next_alias, new_emk.as_bytes())?;
        crash_point("shred:kek-generated");

        let signer = crate::delivery::receipt_signer(&self.conn, &self.emk, old_epoch)?;
        let mut outcomes = Vec::with_capacity(marked.len());
        let tx = store::write_tx(&mut self.conn)?;
        for (id, version, state, closing) in &marked {
            let job_id = parse_id(id)?;
            let from: JobState = state.parse()?;
            let to: JobState = closing.parse()?;
            let fields = tx.prepare_cached("DELETE FROM fields WHERE job_id = ?1")?.execute([id])?;
            tx.prepare_cached("DELETE FROM secrets WHERE id = ?1")?.execute([dek_id(job_id)])?;
            tx.prepare_cached(
                "UPDATE jobs SET state = ?2, closing = NULL, work = NULL, site_area = NULL,
                        shredded_ms = ?3, shred_epoch = ?4, updated_ms = ?3
                 WHERE id = ?1",
            )?
            .execute(params![id, to.as_str(), now, next as i64])?;
            audit::append(
                &tx,
                &NewEvent::job(now, job_id, AuditKind::Shredded, to)
                    .detail(format!("{from} -> {to}; {fields} fields; epoch {old_epoch} -> {next}")),
            )?;
            let outcome = ShredOutcome {
                job_id,
                version: *version as u64,
                state: to,
                shredded_at: clock::from_ms(now),
                epoch: next,
                fields_destroyed: fields as u32,
            };
            // The receipt is written by the shred itself, in its transaction (G7).
            outbox::enqueue(&tx, Some(job_id), now, &EventBody::State { from, to })?;
            if let Some((device_id, key)) = &signer {
                let receipt = key.sign(*device_id, &outcome);
                outbox::enqueue(&tx, Some(job_id), now, &EventBody::Receipt(receipt))?;
            }
            outcomes.push(outcome);
        }
        // Re-wrap every surviving secret under the new epoch master key.
        let secrets: Vec<(String, i64, Vec<u8>)> = {
            let mut stmt = tx.prepare("SELECT id, epoch, wrapped FROM secrets")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for (id, epoch, wrapped) in secrets {
            if epoch as u64 != old_epoch {
                return Err(Error::integrity("a secret is wrapped under a retired epoch"));
            }
            let raw = self.emk.open(&wrapped, wrap_aad(&id, old_epoch).bytes())?;
            let rewrapped = new_emk.seal(&raw, wrap_aad(&id, next).bytes())?;
            tx.prepare_cached("UPDATE secrets SET epoch = ?2, wrapped = ?3 WHERE id = ?1")?.execute(params![
                id,
                next as i64,
                rewrapped
            ])?;
        }
        tx.prepare_cached("INSERT INTO epochs (epoch, wrapped_emk, created_ms) VALUES (?1, ?2, ?3)")?
            .execute(params![next as i64, wrapped_emk, now])?;
        tx.prepare_cached("DELETE FROM epochs WHERE epoch <> ?1")?.execute([next as i64])?;
        tx.prepare_cached("INSERT OR IGNORE INTO retired_keks (alias) VALUES (?1)")?.execute([kek_alias(old_epoch)])?;
        tx.prepare_cached("DELETE FROM pending_epochs WHERE epoch = ?1")?.execute([next as i64])?;
        crash_point("shred:before-commit");
        tx.commit()?;
        // Every marked job is shredded, and nothing marks one while this call holds the vault.
        self.shreds_pending = false;
        crash_point("shred:after-commit");

        // Committed: the old epoch master key is dropped (and zeroized) here.
        self.emk = new_emk;
        self.epoch = next;
        self.delete_retired_keys()?;
        store::checkpoint_truncate(&self.conn)?;
        Ok(outcomes)
    }

    /// Deletes KEKs generated for rotations that never committed (a crash, or a keystore error
    /// earlier in this process) and forgets them.
    fn delete_orphan_keys(&mut self) -> Result<()> {
        let pending: Vec<i64> = {
            let mut stmt = self.conn.prepare("SELECT epoch FROM pending_epochs")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        for p in pending {
            if p as u64 == self.epoch {
                return Err(Error::integrity("the current epoch is still marked pending"));
            }
            self.keystore.delete(&kek_alias(p as u64))?;
            self.conn.prepare_cached("DELETE FROM pending_epochs WHERE epoch = ?1")?.execute([p])?;
        }
        Ok(())
    }
}

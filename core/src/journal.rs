//! The journal: the one writer of what is audited and of what is sent to dispatch (G2, G6, G7).
//!
//! An action's audit event and its outbox entries are written here, inside the action's own
//! transaction, so that the change, its record in the hash chain and the event for dispatch commit
//! together or not at all. Audit events go out to dispatch too (dispatch verifies the chain), so
//! [`record`] queues each one, as a reference to its chain row; [`send`] queues what dispatch
//! needs that is not an audit event (state changes, reports, receipts). A vault not enrolled with
//! dispatch keeps no outbox.

use crate::audit::{self, AuditEvent, AuditKey, AuditVerification, NewEvent, GENESIS};
use crate::store::outbox::{self, Payload};
use crate::store::{audit as rows, device, meta};
use crate::sync::wire::{EventBody, OutboxEvent};
use crate::{clock, Error, Result};
use rusqlite::Connection;
use uuid::Uuid;

/// Appends `event` to the audit chain and queues it for dispatch. Call inside the transaction that
/// makes the change it records, with the chain key once the device is enrolled
/// (`Keyring::audit_key`). Returns the event's sequence number. The outbox row refers to the
/// audit row rather than copying it: the record is written once.
pub(crate) fn record(tx: &Connection, key: Option<&AuditKey>, event: &NewEvent) -> Result<u64> {
    let (seq, prev) = meta::audit_head(tx)?.unwrap_or((0, GENESIS.to_vec()));
    let seq = seq + 1;
    let hash = audit::chain_hash(key, seq, event, &prev);
    rows::insert(tx, seq, event, &prev, &hash)?;
    queue(tx, event.job_id, event.at_ms, &Payload::Audit(seq))?;
    meta::set_audit_head(tx, seq, &hash)?;
    Ok(seq)
}

/// Queues an event for dispatch. Call inside the transaction of the action it records.
pub(crate) fn send(tx: &Connection, job_id: Option<Uuid>, at_ms: i64, body: &EventBody) -> Result<()> {
    if matches!(body, EventBody::Audit(_)) {
        // Audit events are queued by reference, by `record`; a copy here would be sent twice.
        return Err(Error::integrity("audit events are queued by the journal's record"));
    }
    let json = serde_json::to_string(body).map_err(|_| Error::integrity("outbox event does not serialize"))?;
    queue(tx, job_id, at_ms, &Payload::Body(json))
}

fn queue(tx: &Connection, job_id: Option<Uuid>, at_ms: i64, payload: &Payload) -> Result<()> {
    if !device::enrolled(tx)? {
        return Ok(());
    }
    outbox::insert(tx, job_id, at_ms, payload)
}

/// Re-links every event already in the chain under `key`, so that the chain dispatch receives is
/// keyed from its first event. Called once, in the enrolment transaction, before
/// [`enqueue_existing`]: nothing of the chain has left the device yet.
pub(crate) fn key_existing(tx: &Connection, key: &AuditKey) -> Result<()> {
    let mut stored = Vec::new();
    rows::for_each(tx, None, |row| {
        stored.push(row);
        Ok(true)
    })?;
    let mut prev = GENESIS.to_vec();
    let mut seq = 0;
    for row in stored {
        let hash = audit::chain_hash(Some(key), row.seq, &row.event, &prev);
        rows::set_links(tx, row.seq, &prev, &hash)?;
        prev = hash.to_vec();
        seq = row.seq;
    }
    if seq > 0 {
        meta::set_audit_head(tx, seq, &prev)?;
    }
    meta::set_audit_keyed_from(tx, 1)
}

/// Queues every event already in the chain for dispatch. Called once, in the enrolment
/// transaction: events appended before enrolment (vault creation, plaintext ingests) were not
/// queued, and dispatch verifies the chain from its first event.
pub(crate) fn enqueue_existing(tx: &Connection) -> Result<()> {
    let mut stored = Vec::new();
    rows::for_each(tx, None, |row| {
        stored.push((row.seq, row.event.job_id, row.event.at_ms));
        Ok(true)
    })?;
    for (seq, job_id, at_ms) in stored {
        queue(tx, job_id, at_ms, &Payload::Audit(seq))?;
    }
    Ok(())
}

/// The events in order, all of them or those of one job.
pub(crate) fn list(conn: &Connection, job: Option<Uuid>) -> Result<Vec<AuditEvent>> {
    let mut out = Vec::new();
    rows::for_each(conn, job, |row| {
        out.push(AuditEvent {
            seq: row.seq,
            at: clock::from_ms(row.event.at_ms),
            job_id: row.event.job_id,
            kind: row.event.kind,
            field: row.event.field,
            state: row.event.state,
            detail: row.event.detail,
            hash: crate::hex::encode(&row.hash),
        });
        Ok(true)
    })?;
    Ok(out)
}

/// Walks the whole chain and reports the first event that does not fit. `key` is the chain key
/// once enrolled: events from where the chain is keyed are checked under it.
pub(crate) fn verify(conn: &Connection, key: Option<&AuditKey>) -> Result<AuditVerification> {
    let (head_seq, head_hash) = meta::audit_head(conn)?.unwrap_or((0, GENESIS.to_vec()));
    let keyed_from = match key {
        Some(_) => meta::audit_keyed_from(conn)?.unwrap_or(1),
        None => u64::MAX,
    };
    let mut expected_seq: u64 = 1;
    let mut prev = GENESIS.to_vec();
    let mut problem: Option<(u64, String)> = None;
    rows::for_each(conn, None, |row| {
        let seq = row.seq;
        if seq != expected_seq {
            problem = Some((expected_seq, format!("event {expected_seq} is missing")));
        } else if row.prev != prev {
            problem = Some((seq, format!("event {seq} does not follow event {}", seq - 1)));
        } else if audit::chain_hash(key.filter(|_| seq >= keyed_from), seq, &row.event, &row.prev).as_slice()
            != row.hash.as_slice()
        {
            problem = Some((seq, format!("event {seq} was altered")));
        }
        prev = row.hash;
        expected_seq += 1;
        Ok(problem.is_none())
    })?;
    let events = expected_seq - 1;
    if problem.is_none() && (events != head_seq || prev != head_hash) {
        problem = Some((0, format!("the chain ends at event {events} but its head says {head_seq}")));
    }
    Ok(AuditVerification {
        events,
        valid: problem.is_none(),
        broken_at: problem.as_ref().map(|p| p.0),
        problem: problem.map(|p| p.1),
        head: crate::hex::encode(&head_hash),
    })
}

/// The oldest `limit` events waiting for dispatch, in order. An audit event is read from its
/// chain row as it is now: one edited since it was queued goes out edited, and dispatch's check
/// of the chain finds it.
pub(crate) fn pending(conn: &Connection, limit: usize) -> Result<Vec<OutboxEvent>> {
    outbox::pending(conn, limit)?
        .into_iter()
        .map(|row| {
            let body = match row.payload {
                Payload::Body(json) => {
                    serde_json::from_str(&json).map_err(|_| Error::integrity("an outbox event is unreadable"))?
                }
                Payload::Audit(seq) => {
                    let stored = rows::get(conn, seq)?
                        .ok_or_else(|| Error::integrity(format!("audit event {seq} queued for dispatch is missing")))?;
                    EventBody::Audit(audit::record_of(stored.seq, &stored.event, &stored.prev, &stored.hash))
                }
            };
            Ok(OutboxEvent { key: row.key, seq: row.seq, job_id: row.job_id, at: clock::from_ms(row.at_ms), body })
        })
        .collect()
}

/// Counts the events not yet acknowledged.
pub(crate) fn pending_count(conn: &Connection) -> Result<u64> {
    outbox::count(conn)
}

/// Records a push attempt of the events up to `last_seq`.
pub(crate) fn attempted(tx: &Connection, last_seq: u64) -> Result<()> {
    outbox::attempted(tx, last_seq)
}

/// Deletes the events dispatch acknowledged; returns how many were deleted.
pub(crate) fn acknowledge(tx: &Connection, keys: &[Uuid]) -> Result<u64> {
    outbox::acknowledge(tx, keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditKind;
    use crate::policy::JobState;

    fn db() -> Connection {
        let mut c = Connection::open_in_memory().unwrap();
        let tx = c.transaction().unwrap();
        crate::store::schema::upgrade_from(&tx, 0).unwrap();
        tx.commit().unwrap();
        c
    }

    fn fill(c: &Connection, n: i64) {
        let job = Uuid::new_v4();
        for i in 0..n {
            record(c, None, &NewEvent::job(1000 + i, job, AuditKind::Reveal, JobState::OnSite).field("phone")).unwrap();
        }
    }

    fn enrol(c: &Connection) {
        let (_, dispatch) = crate::envelope::generate_keypair().unwrap();
        let (_, identity) = crate::envelope::generate_keypair().unwrap();
        device::insert(c, Uuid::new_v4(), &dispatch, &identity, 1000).unwrap();
    }

    #[test]
    fn the_outbox_refers_to_audit_events_instead_of_copying_them() {
        let c = db();
        enrol(&c);
        fill(&c, 3);
        let copies: i64 = c.query_row("SELECT count(*) FROM outbox WHERE body IS NOT NULL", [], |r| r.get(0)).unwrap();
        let refs: Vec<i64> = c
            .prepare("SELECT audit_seq FROM outbox ORDER BY seq")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!((copies, refs), (0, vec![1, 2, 3]));
        let out = pending(&c, 10).unwrap();
        let seqs: Vec<u64> =
            out.iter().map(|e| if let EventBody::Audit(r) = &e.body { r.seq } else { 0 }).collect();
        assert_eq!(seqs, [1, 2, 3]);
        // An audit event queued as a copy as well would reach dispatch twice: refused.
        let record = if let EventBody::Audit(r) = &out[0].body { r.clone() } else { unreachable!() };
        assert!(matches!(send(&c, None, 1, &EventBody::Audit(record)), Err(Error::Integrity(_))));
        // A queued reference whose row was removed (with foreign keys off, as the sqlite3 shell
        // has them) is reported, not skipped.
        c.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM audit WHERE seq = 2;").unwrap();
        assert!(matches!(pending(&c, 10), Err(Error::Integrity(_))));
    }

    #[test]
    fn an_intact_chain_verifies() {
        let c = db();
        fill(&c, 5);
        let v = verify(&c, None).unwrap();
        assert!(v.valid, "{v:?}");
        assert_eq!(v.events, 5);
        assert_eq!(list(&c, None).unwrap().len(), 5);
    }

    #[test]
    fn edits_removals_and_truncation_are_found() {
        let c = db();
        fill(&c, 5);
        c.execute("UPDATE audit SET field = 'door_code' WHERE seq = 3", []).unwrap();
        assert_eq!(verify(&c, None).unwrap().broken_at, Some(3));

        let c = db();
        fill(&c, 5);
        c.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        assert_eq!(verify(&c, None).unwrap().broken_at, Some(2));

        let c = db();
        fill(&c, 5);
        c.execute("DELETE FROM audit WHERE seq = 5", []).unwrap();
        let v = verify(&c, None).unwrap();
        assert!(!v.valid);
        assert_eq!(v.broken_at, Some(0));

        let c = db();
        fill(&c, 5);
        c.execute("UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 4", []).unwrap();
        assert_eq!(verify(&c, None).unwrap().broken_at, Some(4));
    }
}

//! The database schema and its migrations.
//!
//! `VERSION` is stored in SQLite's `user_version`. A vault written by an older release is upgraded
//! step by step through [`upgrade_from`]; one written by a newer release is refused rather than
//! guessed at, since a wrong guess could leave customer data where a shred would not reach it.

use crate::{Error, Result};
use rusqlite::Transaction;

/// The schema version this build writes.
pub const VERSION: u32 = 3;

/// Version 1. Customer values exist only in `fields.sealed` (under the job's data key) and the
/// data keys only in `secrets.wrapped` (under the epoch master key). A shredded job keeps its row
/// in `jobs` as a tombstone with no work details, no site area and no fields.
const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- The epoch master key, wrapped by the keystore KEK of the same epoch. Exactly one row once settled.
CREATE TABLE epochs (
    epoch       INTEGER PRIMARY KEY NOT NULL,
    wrapped_emk BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- A KEK generated for a rotation that has not committed; deleted from the keystore at open.
CREATE TABLE pending_epochs (
    epoch INTEGER PRIMARY KEY NOT NULL
);

-- KEKs of past epochs still to be deleted from the keystore.
CREATE TABLE retired_keks (
    alias TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;

-- Every secret wrapped under the epoch master key: job data keys ('dek:<job>') and device keys.
-- A rotation re-wraps every row here in the same transaction that changes the epoch.
CREATE TABLE secrets (
    id      TEXT PRIMARY KEY NOT NULL,
    epoch   INTEGER NOT NULL,
    wrapped BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE jobs (
    id              TEXT PRIMARY KEY NOT NULL,
    version         INTEGER NOT NULL,
    work_order      TEXT NOT NULL,
    state           TEXT NOT NULL,
    window_start_ms INTEGER NOT NULL,
    window_end_ms   INTEGER NOT NULL,
    opens_ms        INTEGER NOT NULL,
    closes_ms       INTEGER NOT NULL,
    hard_expiry_ms  INTEGER NOT NULL,
    work            TEXT,
    site_area       TEXT,
    received_ms     INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    closing         TEXT,
    report          TEXT,
    report_ms       INTEGER,
    shredded_ms     INTEGER,
    shred_epoch     INTEGER,
    delivered_via   TEXT
) WITHOUT ROWID;

CREATE INDEX jobs_live_expiry ON jobs (hard_expiry_ms) WHERE shredded_ms IS NULL;

CREATE TABLE fields (
    job_id    TEXT NOT NULL REFERENCES jobs (id),
    ord       INTEGER NOT NULL,
    name      TEXT NOT NULL,
    kind      TEXT NOT NULL,
    reveal_in TEXT NOT NULL,
    sealed    BLOB NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;

CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY NOT NULL,
    at_ms     INTEGER NOT NULL,
    job_id    TEXT,
    kind      TEXT NOT NULL,
    field     TEXT,
    state     TEXT,
    detail    TEXT,
    prev_hash BLOB NOT NULL,
    hash      BLOB NOT NULL
);

CREATE INDEX audit_job ON audit (job_id);

-- This device's identity after enrolment (one row). The private halves of the identity key and of
-- the prekeys are in `secrets` ('device:identity', 'prekey:<id>').
CREATE TABLE device (
    singleton      INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
    device_id      TEXT NOT NULL,
    dispatch_key   BLOB NOT NULL,
    identity_key   BLOB NOT NULL,
    next_prekey_id INTEGER NOT NULL,
    enrolled_ms    INTEGER NOT NULL
);

-- Events for dispatch, durable in the transaction of the action they record, deleted only when
-- dispatch acknowledges their key (G6). `seq` orders them; `key` is the UUID v7 idempotency key.
CREATE TABLE outbox (
    seq      INTEGER PRIMARY KEY NOT NULL,
    key      TEXT NOT NULL UNIQUE,
    job_id   TEXT,
    at_ms    INTEGER NOT NULL,
    body     TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0
);

-- Public halves of the one-time prekeys not yet used.
CREATE TABLE prekeys (
    id         INTEGER PRIMARY KEY NOT NULL,
    public_key BLOB NOT NULL,
    created_ms INTEGER NOT NULL
);
"#;

/// Version 2. An audit event queued for dispatch is an outbox row that refers to its `audit` row
/// (`audit_seq`) instead of a JSON copy of it: a reveal writes its record once. Other events keep
/// their JSON `body`; a row has exactly one of the two. Rows queued by version 1 keep their copy.
/// `key` loses its unique index: a random UUID v7 needs none, acknowledgements delete a whole
/// batch in one scan of the (small) outbox, and each queued event writes one page fewer.
const V2: &str = r#"
CREATE TABLE outbox_v2 (
    seq       INTEGER PRIMARY KEY NOT NULL,
    key       TEXT NOT NULL,
    job_id    TEXT,
    at_ms     INTEGER NOT NULL,
    audit_seq INTEGER REFERENCES audit (seq),
    body      TEXT,
    attempts  INTEGER NOT NULL DEFAULT 0,
    CHECK ((audit_seq IS NULL) <> (body IS NULL))
);
INSERT INTO outbox_v2 (seq, key, job_id, at_ms, body, attempts)
    SELECT seq, key, job_id, at_ms, body, attempts FROM outbox;
DROP TABLE outbox;
ALTER TABLE outbox_v2 RENAME TO outbox;
"#;

/// Version 3. Each job row carries an integrity tag over what decides a reveal (`mac`, see
/// `crate::integrity`). The column is added empty; the vault fills it, and replaces the untagged
/// trusted-time keys in `meta` by one tagged record, in the transaction that creates the integrity
/// key (`Keyring::open`), since only the keyring can compute tags.
const V3: &str = r#"
ALTER TABLE jobs ADD COLUMN mac BLOB;
"#;

/// Brings a database at `version` up to [`VERSION`] inside `tx`.
pub fn upgrade_from(tx: &Transaction<'_>, version: u32) -> Result<()> {
    if version > VERSION {
        return Err(Error::integrity(format!(
            "the vault was written by a newer release (schema {version}, this build knows {VERSION})"
        )));
    }
    for v in version..VERSION {
        step(tx, v)?;
    }
    tx.pragma_update(None, "user_version", VERSION)?;
    Ok(())
}

/// Moves the schema from `from` to `from + 1`.
fn step(tx: &Transaction<'_>, from: u32) -> Result<()> {
    match from {
        0 => tx.execute_batch(V1)?,
        1 => tx.execute_batch(V2)?,
        2 => tx.execute_batch(V3)?,
        other => return Err(Error::integrity(format!("no upgrade path from schema version {other}"))),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(conn: &rusqlite::Connection) -> Vec<(String, String)> {
        let mut stmt = conn.prepare("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).unwrap().map(|r| r.unwrap()).collect()
    }

    #[test]
    fn every_older_version_migrates_to_the_fresh_schema() {
        let mut fresh = rusqlite::Connection::open_in_memory().unwrap();
        let tx = fresh.transaction().unwrap();
        upgrade_from(&tx, 0).unwrap();
        tx.commit().unwrap();
        for older in 0..VERSION {
            // Rebuild the schema as release `older` left it, then upgrade from there.
            let mut conn = rusqlite::Connection::open_in_memory().unwrap();
            let tx = conn.transaction().unwrap();
            for v in 0..older {
                step(&tx, v).unwrap();
            }
            upgrade_from(&tx, older).unwrap();
            tx.commit().unwrap();
            assert_eq!(schema_of(&conn), schema_of(&fresh), "upgrade from {older}");
            let v: u32 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(v, VERSION);
        }
    }

    #[test]
    fn an_event_queued_by_version_1_survives_the_upgrade_as_a_copy() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        step(&tx, 0).unwrap();
        tx.execute(
            "INSERT INTO outbox (seq, key, job_id, at_ms, body, attempts) VALUES (7, 'k', NULL, 5, '{\"x\":1}', 2)",
            [],
        )
        .unwrap();
        upgrade_from(&tx, 1).unwrap();
        let row: (i64, String, Option<i64>, Option<String>, i64) = tx
            .query_row("SELECT seq, key, audit_seq, body, attempts FROM outbox", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })
            .unwrap();
        assert_eq!(row, (7, "k".to_owned(), None, Some("{\"x\":1}".to_owned()), 2));
        // A row is a reference or a copy, never both or neither.
        for (audit_seq, body) in [(Some(1), Some("{}")), (None, None)] {
            let r = tx.execute(
                "INSERT INTO outbox (seq, key, at_ms, audit_seq, body) VALUES (8, 'k2', 5, ?1, ?2)",
                rusqlite::params![audit_seq, body],
            );
            assert!(r.is_err(), "{audit_seq:?} {body:?}");
        }
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        assert!(matches!(upgrade_from(&tx, VERSION + 1), Err(Error::Integrity(_))));
    }
}

-- Version 1: devices, prekeys, jobs, deliveries, the exactly-once ledger, state changes, reports,
-- audit records and shred receipts. UUIDs as text, times as milliseconds since the Unix epoch
-- (*_ms), keys and hashes as raw bytes.
-- Dispatch's own X25519 key pair, made on first start. A production deployment keeps the secret
-- in an HSM or KMS and stores only a handle here; this reference keeps it in the database.
CREATE TABLE server_key (
    singleton   INTEGER PRIMARY KEY CHECK (singleton = 1),
    secret_key  BLOB NOT NULL,
    public_key  BLOB NOT NULL,
    created_ms  INTEGER NOT NULL
);

-- Enrolled devices. Only the SHA-256 of the bearer token is kept. The audit_* columns are the
-- incremental state of the device's hash chain: last verified (seq, hash), first break.
CREATE TABLE devices (
    device_id            TEXT PRIMARY KEY,
    identity_key         BLOB NOT NULL,
    token_hash           BLOB NOT NULL UNIQUE,
    enrolled_ms          INTEGER NOT NULL,
    last_sync_ms         INTEGER,
    wiped_ms             INTEGER,
    audit_verified_seq   INTEGER NOT NULL DEFAULT 0,
    audit_verified_hash  BLOB,
    audit_broken_at      INTEGER
);

-- One-time prekeys (public halves). A prekey is used for at most one envelope, ever.
CREATE TABLE prekeys (
    device_id   TEXT NOT NULL REFERENCES devices (device_id),
    prekey_id   INTEGER NOT NULL,
    public_key  BLOB NOT NULL,
    added_ms    INTEGER NOT NULL,
    used_ms     INTEGER,
    PRIMARY KEY (device_id, prekey_id)
) WITHOUT ROWID;

-- Jobs. Dispatch is the system of record: it keeps the plaintext sheet of the current version.
-- state/state_seq are the job's state as last reported by the assigned device (the device's
-- event seq, so that an older event applied late does not win).
CREATE TABLE jobs (
    job_id        TEXT PRIMARY KEY,
    device_id     TEXT NOT NULL REFERENCES devices (device_id),
    version       INTEGER NOT NULL,
    sheet         BLOB NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL,
    cancelled_ms  INTEGER,
    state         TEXT,
    state_seq     INTEGER,
    state_ms      INTEGER
);
CREATE INDEX jobs_by_device ON jobs (device_id);

-- Sealed envelopes, one per (job, device, version). Offered while status = 'pending'.
-- sealed_to / via: 'prekey:<id>' or 'identity'. A withdrawn or superseded envelope's bytes are
-- dropped (set to an empty blob): it will never be offered again.
CREATE TABLE deliveries (
    delivery_id  INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL REFERENCES jobs (job_id),
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    version      INTEGER NOT NULL,
    sealed_to    TEXT NOT NULL,
    envelope     BLOB NOT NULL,
    status       TEXT NOT NULL
                 CHECK (status IN ('pending', 'received', 'rejected', 'withdrawn', 'superseded')),
    via          TEXT,
    reason       TEXT,
    queued_ms    INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    UNIQUE (job_id, device_id, version)
);
CREATE INDEX deliveries_by_device ON deliveries (device_id, status);

-- Jobs withdrawn from a device; offered until a verified shred receipt confirms them.
CREATE TABLE revocations (
    job_id        TEXT NOT NULL REFERENCES jobs (job_id),
    device_id     TEXT NOT NULL REFERENCES devices (device_id),
    reason        TEXT NOT NULL,
    queued_ms     INTEGER NOT NULL,
    confirmed_ms  INTEGER,
    PRIMARY KEY (job_id, device_id)
) WITHOUT ROWID;
CREATE INDEX revocations_by_device ON revocations (device_id, confirmed_ms);

-- Every idempotency key ever applied, per device: the exactly-once ledger. outcome is 'applied'
-- or 'ignored' (the event named something dispatch does not hold; acknowledged all the same).
CREATE TABLE applied_events (
    device_id   TEXT NOT NULL REFERENCES devices (device_id),
    event_key   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    job_id      TEXT,
    kind        TEXT NOT NULL,
    outcome     TEXT NOT NULL CHECK (outcome IN ('applied', 'ignored')),
    note        TEXT,
    applied_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, event_key)
) WITHOUT ROWID;

-- State changes as reported by devices.
CREATE TABLE state_changes (
    change_id   INTEGER PRIMARY KEY,
    job_id      TEXT NOT NULL REFERENCES jobs (job_id),
    device_id   TEXT NOT NULL REFERENCES devices (device_id),
    from_state  TEXT NOT NULL,
    to_state    TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    event_key   TEXT NOT NULL
);
CREATE INDEX state_changes_by_job ON state_changes (job_id);

-- Completion reports (the technician's own text), one per job and device.
CREATE TABLE reports (
    job_id       TEXT NOT NULL REFERENCES jobs (job_id),
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    text         TEXT NOT NULL,
    at_ms        INTEGER NOT NULL,
    seq          INTEGER NOT NULL,
    event_key    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL,
    PRIMARY KEY (job_id, device_id)
) WITHOUT ROWID;

-- Audit events as the device sent them. chain: 'verified' (links to the verified prefix),
-- 'pending' (arrived ahead of a gap, or after a break) or 'broken' (does not fit the chain).
CREATE TABLE audit_records (
    record_id    INTEGER PRIMARY KEY,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    seq          INTEGER NOT NULL,
    job_id       TEXT,
    at_ms        INTEGER NOT NULL,
    kind         TEXT NOT NULL,
    field        TEXT,
    state        TEXT,
    detail       TEXT,
    prev_hash    BLOB NOT NULL,
    hash         BLOB NOT NULL,
    chain        TEXT NOT NULL CHECK (chain IN ('verified', 'pending', 'broken')),
    event_key    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL
);
CREATE INDEX audit_by_device ON audit_records (device_id, seq);
CREATE INDEX audit_by_job ON audit_records (job_id);

-- Shred receipts exactly as received (JSON), with the outcome of the MAC check.
CREATE TABLE receipts (
    receipt_id   INTEGER PRIMARY KEY,
    job_id       TEXT NOT NULL,
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    receipt      TEXT NOT NULL,
    verified     INTEGER NOT NULL,
    event_key    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL
);
CREATE INDEX receipts_by_job ON receipts (job_id, device_id);

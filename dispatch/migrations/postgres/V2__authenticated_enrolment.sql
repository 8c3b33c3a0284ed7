-- Version 2: authenticated enrolment (issue 12).
-- PostgreSQL translation of ../sqlite/V2__authenticated_enrolment.sql: the same tables, columns and constraints; BIGINT for
-- INTEGER, BYTEA for BLOB, identity columns for SQLite's rowid keys, and text compared bytewise
-- (COLLATE "C") so that every ORDER BY sorts as it does in SQLite.
-- One-time enrolment codes an operator issued. Only the key derived from the code (HKDF, the key
-- its proofs are made with) is kept, never the code. code_id is the code's first group, sent in
-- clear by the device. device_id: the only device the code may enrol (NULL: any new device).
CREATE TABLE enrolment_codes (
    code_id     TEXT COLLATE "C" PRIMARY KEY,
    proof_key   BYTEA NOT NULL,
    device_id   TEXT COLLATE "C",
    created_ms  BIGINT NOT NULL,
    expires_ms  BIGINT NOT NULL,
    used_ms     BIGINT,
    used_by     TEXT COLLATE "C",
    revoked_ms  BIGINT
);

-- Every enrolment request nonce dispatch accepted, per device: a request seen before is a replay
-- and is refused. Only a request with a valid proof adds one, so nobody else can grow it.
CREATE TABLE enrolment_nonces (
    device_id    TEXT COLLATE "C" NOT NULL REFERENCES devices (device_id),
    nonce        BYTEA NOT NULL,
    accepted_ms  BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);

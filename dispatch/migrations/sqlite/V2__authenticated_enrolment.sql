-- Version 2: authenticated enrolment (issue 12).
-- One-time enrolment codes an operator issued. Only the key derived from the code (HKDF, the key
-- its proofs are made with) is kept, never the code. code_id is the code's first group, sent in
-- clear by the device. device_id: the only device the code may enrol (NULL: any new device).
CREATE TABLE enrolment_codes (
    code_id     TEXT PRIMARY KEY,
    proof_key   BLOB NOT NULL,
    device_id   TEXT,
    created_ms  INTEGER NOT NULL,
    expires_ms  INTEGER NOT NULL,
    used_ms     INTEGER,
    used_by     TEXT,
    revoked_ms  INTEGER
) WITHOUT ROWID;

-- Every enrolment request nonce dispatch accepted, per device: a request seen before is a replay
-- and is refused. Only a request with a valid proof adds one, so nobody else can grow it.
CREATE TABLE enrolment_nonces (
    device_id    TEXT NOT NULL REFERENCES devices (device_id),
    nonce        BLOB NOT NULL,
    accepted_ms  INTEGER NOT NULL,
    PRIMARY KEY (device_id, nonce)
) WITHOUT ROWID;

-- Version 4: limits that hold under abuse (issue 14).
-- applied_floor_seq: every event key of the device with a seq below it has been pruned from
--   applied_events and an event below it is never applied again (crate::ingest); applied_pruned
--   counts the pruned keys, so the operator's count of applied events stays whole. The index
--   finds the keys to prune without a scan.
-- quota_*: the device's current quota window (crate::ingest::DeviceQuota): when it began and how
--   many new events, audit records and reports it brought in it.
-- enrolment_codes.failed_attempts: wrong proofs sent for the code; at
--   crate::enrolment::MAX_CODE_FAILURES the code is locked (revoked).
ALTER TABLE devices ADD COLUMN applied_floor_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN applied_pruned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quota_window_ms INTEGER;
ALTER TABLE devices ADD COLUMN quota_events INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quota_audit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN quota_reports INTEGER NOT NULL DEFAULT 0;
ALTER TABLE enrolment_codes ADD COLUMN failed_attempts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX applied_events_by_seq ON applied_events (device_id, seq);

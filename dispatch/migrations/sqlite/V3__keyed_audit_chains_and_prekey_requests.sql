-- Version 3: where each device's audit chain becomes keyed (jobseal_protocol::audit::AuditKey):
-- 1 for a device enrolled by this release, the first keyed record for one enrolled before, NULL
-- while it has sent none. Also when dispatch first asked a device for prekeys it still lacks
-- (prekeys_asked_ms): a sheet is sealed to the identity key only after a sync that followed that
-- request brought none. And where each device's audit chain stood when it reported a sheet
-- received (deliveries.received_after_seq): only its later records are that job's history.
-- Sheets received before this version count from the start of the chain, as they did.
ALTER TABLE devices ADD COLUMN audit_keyed_from INTEGER;
ALTER TABLE devices ADD COLUMN prekeys_asked_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN received_after_seq INTEGER;
UPDATE deliveries SET received_after_seq = 0 WHERE status = 'received';

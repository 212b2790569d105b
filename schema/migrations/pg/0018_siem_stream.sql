-- See schema/migrations/0018_siem_stream.sql: each audit stream's position (the newest entry
-- and checkpoint row the collector acknowledged) and the lease that makes one server the only sender.
CREATE TABLE siem_streams (
	name           TEXT PRIMARY KEY,
	last_seq       BIGINT NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	last_ckpt_id   BIGINT NOT NULL DEFAULT 0 CHECK (last_ckpt_id >= 0),
	holder         TEXT NOT NULL DEFAULT '',
	lease_until_ms BIGINT NOT NULL DEFAULT 0,
	updated_at_ms  BIGINT NOT NULL DEFAULT 0
);

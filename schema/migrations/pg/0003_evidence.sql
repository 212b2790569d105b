-- See schema/migrations/0003_evidence.sql: evidence, not claims (issue 8 §3).
ALTER TABLE commands ADD COLUMN verify_note TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN attested_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN attested_policy BYTEA NOT NULL DEFAULT ''::bytea;
ALTER TABLE devices ADD COLUMN epoch_since BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET epoch_since = enrolled_at;
ALTER TABLE devices ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN replaces TEXT NOT NULL DEFAULT '';
CREATE INDEX devices_hv_key ON devices (hv_key);
ALTER TABLE enroll_nonces ADD COLUMN token_id TEXT NOT NULL DEFAULT '';

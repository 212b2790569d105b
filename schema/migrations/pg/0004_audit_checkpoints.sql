-- See schema/migrations/0004_audit_checkpoints.sql: signed checkpoints of the audit chain's head.
CREATE TABLE audit_checkpoints (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	seq     BIGINT NOT NULL,
	at_ms   BIGINT NOT NULL,
	record  BYTEA NOT NULL CHECK (length(record) = 160)
);

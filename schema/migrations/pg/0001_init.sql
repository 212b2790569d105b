-- Cleave server database on PostgreSQL, version 1: the same tables as the SQLite migration of
-- the same number. Applied once, in a transaction, under an advisory lock, by cleave-server.
-- Every integer is BIGINT (the C records hold int64_t); blobs are BYTEA. Tables a list pages
-- through carry a rowid of their own (an identity), so that cursors page the same way on both
-- backends without exposing anything but an opaque number.

CREATE TABLE api_tokens (
	rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	role        TEXT NOT NULL CHECK (role IN ('admin', 'helpdesk', 'auditor')),
	hash        BYTEA NOT NULL UNIQUE,
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL DEFAULT 0,   -- 0: never
	revoked_at  BIGINT NOT NULL DEFAULT 0    -- 0: not revoked
);

CREATE TABLE enrollment_tokens (
	rowid       BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
	id          TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	hash        BYTEA NOT NULL UNIQUE,
	uses_max    BIGINT NOT NULL CHECK (uses_max >= 1),
	-- uses never passes uses_max, whatever number of servers enroll at once.
	uses        BIGINT NOT NULL DEFAULT 0 CHECK (uses <= uses_max),
	created_by  TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL,
	revoked_at  BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE enroll_nonces (
	nonce       BYTEA PRIMARY KEY,
	expires_at  BIGINT NOT NULL
);

CREATE TABLE policies (
	name        TEXT PRIMARY KEY,
	version     BIGINT NOT NULL,
	body        TEXT NOT NULL,
	is_default  BIGINT NOT NULL DEFAULT 0,
	updated_at  BIGINT NOT NULL
);
-- At most one default policy, even with two servers changing it at once.
CREATE UNIQUE INDEX policies_one_default ON policies (is_default) WHERE is_default = 1;

CREATE TABLE devices (
	rowid                  BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
	id                     TEXT PRIMARY KEY,
	owner                  TEXT NOT NULL,
	status                 TEXT NOT NULL CHECK (status IN ('active', 'retired')),
	device_key             BYTEA NOT NULL UNIQUE,
	hv_key                 BYTEA NOT NULL,
	measurement            BYTEA NOT NULL,
	enrollment_token_id    TEXT NOT NULL,
	model                  TEXT NOT NULL,
	os                     TEXT NOT NULL,
	agent_version          TEXT NOT NULL,
	policy_name            TEXT NOT NULL DEFAULT '',
	applied_policy_name    TEXT NOT NULL DEFAULT '',
	applied_policy_version BIGINT NOT NULL DEFAULT 0,
	desired_state          TEXT NOT NULL DEFAULT 'active',
	reported_state         TEXT NOT NULL DEFAULT 'active',
	key_epoch              BIGINT NOT NULL DEFAULT 0,
	ticket_counter         BIGINT NOT NULL DEFAULT 0,
	sig_seq                BIGINT NOT NULL DEFAULT 0,
	enrolled_at            BIGINT NOT NULL,
	last_seen_at           BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX devices_owner ON devices (owner);
CREATE INDEX devices_status ON devices (status);

CREATE TABLE commands (
	rowid            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
	id               TEXT PRIMARY KEY,
	device_id        TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	type             TEXT NOT NULL,
	status           TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'acknowledged',
	                                                 'completed', 'failed', 'canceled', 'expired')),
	reason           TEXT NOT NULL DEFAULT '',
	counter          BIGINT NOT NULL,
	ticket           BYTEA NOT NULL,
	created_by       TEXT NOT NULL,
	idempotency_key  TEXT,
	request_hash     BYTEA,
	created_at       BIGINT NOT NULL,
	expires_at       BIGINT NOT NULL,
	delivered_at     BIGINT NOT NULL DEFAULT 0,
	acknowledged_at  BIGINT NOT NULL DEFAULT 0,
	completed_at     BIGINT NOT NULL DEFAULT 0,
	result_detail    TEXT NOT NULL DEFAULT '',
	receipt          BYTEA,
	verified         BIGINT NOT NULL DEFAULT 0,
	UNIQUE (device_id, counter)
);
CREATE INDEX commands_device_status ON commands (device_id, status);
CREATE INDEX commands_status ON commands (status);
CREATE UNIQUE INDEX commands_idempotency ON commands (created_by, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

-- Append-only, hash-chained. seq is assigned by the audit module under an advisory lock that
-- serializes appends (server/store/store_pg_cmd.c), so the chain never forks.
CREATE TABLE audit (
	seq        BIGINT PRIMARY KEY,
	at_ms      BIGINT NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	target     TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	detail     TEXT NOT NULL,
	prev_hash  BYTEA NOT NULL,
	hash       BYTEA NOT NULL
);
CREATE INDEX audit_action ON audit (action);
CREATE INDEX audit_target ON audit (target);

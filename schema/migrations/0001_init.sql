-- Cleave server database, version 1. Applied once, in a transaction, by cleave-server on start.
-- Times are unix seconds (audit: milliseconds). Secrets are stored only as SHA-256 hashes.

CREATE TABLE api_tokens (
	id          TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	role        TEXT NOT NULL CHECK (role IN ('admin', 'helpdesk', 'auditor')),
	hash        BLOB NOT NULL UNIQUE,
	created_by  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL DEFAULT 0,   -- 0: never
	revoked_at  INTEGER NOT NULL DEFAULT 0    -- 0: not revoked
);

CREATE TABLE enrollment_tokens (
	id          TEXT PRIMARY KEY,
	owner       TEXT NOT NULL,
	hash        BLOB NOT NULL UNIQUE,
	uses_max    INTEGER NOT NULL CHECK (uses_max >= 1),
	uses        INTEGER NOT NULL DEFAULT 0,
	created_by  TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL,
	revoked_at  INTEGER NOT NULL DEFAULT 0
);

-- Single-use nonces handed out before enrollment; the hypervisor's attestation signs one.
CREATE TABLE enroll_nonces (
	nonce       BLOB PRIMARY KEY,
	expires_at  INTEGER NOT NULL
);

CREATE TABLE policies (
	name        TEXT PRIMARY KEY,
	version     INTEGER NOT NULL,
	body        TEXT NOT NULL,                -- canonical JSON of the policy content
	is_default  INTEGER NOT NULL DEFAULT 0,
	updated_at  INTEGER NOT NULL
);

CREATE TABLE devices (
	id                     TEXT PRIMARY KEY,
	owner                  TEXT NOT NULL,
	status                 TEXT NOT NULL CHECK (status IN ('active', 'retired')),
	device_key             BLOB NOT NULL UNIQUE,
	hv_key                 BLOB NOT NULL,
	measurement            BLOB NOT NULL,
	enrollment_token_id    TEXT NOT NULL,
	model                  TEXT NOT NULL,
	os                     TEXT NOT NULL,
	agent_version          TEXT NOT NULL,
	policy_name            TEXT NOT NULL DEFAULT '',  -- '': the default policy
	applied_policy_name    TEXT NOT NULL DEFAULT '',
	applied_policy_version INTEGER NOT NULL DEFAULT 0,
	desired_state          TEXT NOT NULL DEFAULT 'active',
	reported_state         TEXT NOT NULL DEFAULT 'active',
	key_epoch              INTEGER NOT NULL DEFAULT 0,
	ticket_counter         INTEGER NOT NULL DEFAULT 0, -- last counter put in a ticket
	sig_seq                INTEGER NOT NULL DEFAULT 0, -- highest request-signature nonce seen
	enrolled_at            INTEGER NOT NULL,
	last_seen_at           INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_owner ON devices (owner);
CREATE INDEX devices_status ON devices (status);

CREATE TABLE commands (
	id               TEXT PRIMARY KEY,
	device_id        TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	type             TEXT NOT NULL,
	status           TEXT NOT NULL CHECK (status IN ('queued', 'delivered', 'acknowledged',
	                                                 'completed', 'failed', 'canceled', 'expired')),
	reason           TEXT NOT NULL DEFAULT '',
	counter          INTEGER NOT NULL,
	ticket           BLOB NOT NULL,
	created_by       TEXT NOT NULL,
	idempotency_key  TEXT,
	request_hash     BLOB,
	created_at       INTEGER NOT NULL,
	expires_at       INTEGER NOT NULL,
	delivered_at     INTEGER NOT NULL DEFAULT 0,
	acknowledged_at  INTEGER NOT NULL DEFAULT 0,
	completed_at     INTEGER NOT NULL DEFAULT 0,
	result_detail    TEXT NOT NULL DEFAULT '',
	receipt          BLOB,
	verified         INTEGER NOT NULL DEFAULT 0,
	UNIQUE (device_id, counter)
);
CREATE INDEX commands_device_status ON commands (device_id, status);
CREATE INDEX commands_status ON commands (status);
CREATE UNIQUE INDEX commands_idempotency ON commands (created_by, idempotency_key)
	WHERE idempotency_key IS NOT NULL;

-- Append-only, hash-chained: hash = SHA-256(prev_hash || canonical row), see server/audit/.
CREATE TABLE audit (
	seq        INTEGER PRIMARY KEY,
	at_ms      INTEGER NOT NULL,
	actor      TEXT NOT NULL,
	action     TEXT NOT NULL,
	target     TEXT NOT NULL,
	outcome    TEXT NOT NULL,
	detail     TEXT NOT NULL,
	prev_hash  BLOB NOT NULL,
	hash       BLOB NOT NULL
);
CREATE INDEX audit_action ON audit (action);
CREATE INDEX audit_target ON audit (target);

-- See schema/migrations/0021_oidc.sql: single sign-on flows in progress (by the SHA-256 of their
-- state, taken once) and the provider accounts (issuer, sub) linked to admin accounts.
CREATE TABLE oidc_flows (
	state_hash  BYTEA PRIMARY KEY CHECK (length(state_hash) = 32),
	nonce       TEXT NOT NULL,
	verifier    TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);
CREATE INDEX oidc_flows_by_expiry ON oidc_flows (expires_at);

CREATE TABLE admin_identities (
	issuer     TEXT NOT NULL,
	subject    TEXT NOT NULL,
	admin_id   TEXT NOT NULL UNIQUE REFERENCES admins (id),
	linked_at  BIGINT NOT NULL,
	PRIMARY KEY (issuer, subject)
);

-- Single sign-on for admins (issue 11 §6, OpenID Connect). oidc_flows: the sign-ins begun and
-- not yet finished, by the SHA-256 of their state (the browser carries the state itself); each
-- holds the nonce the ID token must carry and the PKCE verifier, is taken (deleted) once when
-- the provider sends the browser back, and expires. In the database, not in one server's
-- memory, so that any server behind a balancer can finish a flow another began.
CREATE TABLE oidc_flows (
	state_hash  BLOB PRIMARY KEY CHECK (length(state_hash) = 32),
	nonce       TEXT NOT NULL,
	verifier    TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);
CREATE INDEX oidc_flows_by_expiry ON oidc_flows (expires_at);

-- The provider's account (issuer, sub: OpenID Connect's stable identifier) behind an admin
-- account; one each way. Email is not the link: a provider may reassign or let users set it.
CREATE TABLE admin_identities (
	issuer     TEXT NOT NULL,
	subject    TEXT NOT NULL,
	admin_id   TEXT NOT NULL UNIQUE REFERENCES admins (id),
	linked_at  INTEGER NOT NULL,
	PRIMARY KEY (issuer, subject)
);

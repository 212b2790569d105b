-- See schema/migrations/0005_admins.sql: console admin accounts and their sessions. The email is
-- unique without case (SQLite: COLLATE NOCASE; here a unique index on lower(email)).
CREATE TABLE admins (
	id              TEXT PRIMARY KEY,
	email           TEXT NOT NULL,
	display_name    TEXT NOT NULL,
	role            TEXT NOT NULL CHECK (role IN ('admin', 'helpdesk', 'auditor')),
	pwhash          TEXT NOT NULL,
	created_by      TEXT NOT NULL,
	created_at      BIGINT NOT NULL,
	disabled_at     BIGINT NOT NULL DEFAULT 0,
	totp_secret     BYTEA CHECK (totp_secret IS NULL OR length(totp_secret) = 20),
	totp_last_step  BIGINT NOT NULL DEFAULT 0,
	failed_logins   BIGINT NOT NULL DEFAULT 0,
	last_failed_at  BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX admins_email ON admins (lower(email));

CREATE TABLE admin_sessions (
	hash          BYTEA PRIMARY KEY CHECK (length(hash) = 32),
	admin_id      TEXT NOT NULL REFERENCES admins (id),
	created_at    BIGINT NOT NULL,
	last_seen_at  BIGINT NOT NULL
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions (admin_id);

-- Admin accounts of the web console (issue 9): people who sign in with an email and a password
-- (Argon2id, libsodium's crypto_pwhash_str format, never the password itself), and their
-- sessions, stored as the SHA-256 of the session id that only the browser's cookie holds.
CREATE TABLE admins (
	id            TEXT PRIMARY KEY,
	email         TEXT NOT NULL UNIQUE COLLATE NOCASE,
	display_name  TEXT NOT NULL,
	role          TEXT NOT NULL CHECK (role IN ('admin', 'helpdesk', 'auditor')),
	pwhash        TEXT NOT NULL,
	created_by    TEXT NOT NULL,
	created_at    INTEGER NOT NULL,
	disabled_at   INTEGER NOT NULL DEFAULT 0,  -- 0: may sign in
	-- RFC 6238 TOTP key (20 bytes) once a second factor is enrolled; NULL: none. It has to be
	-- readable to check codes, so it is as secret as this file.
	totp_secret   BLOB CHECK (totp_secret IS NULL OR length(totp_secret) = 20),
	totp_last_step  INTEGER NOT NULL DEFAULT 0,  -- a code's step is accepted once
	-- Failed sign-ins since the last good one, and when the last was (per-account throttle).
	failed_logins   INTEGER NOT NULL DEFAULT 0,
	last_failed_at  INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE admin_sessions (
	hash          BLOB PRIMARY KEY CHECK (length(hash) = 32),
	admin_id      TEXT NOT NULL REFERENCES admins (id),
	created_at    INTEGER NOT NULL,
	last_seen_at  INTEGER NOT NULL
);
CREATE INDEX admin_sessions_by_admin ON admin_sessions (admin_id);

-- The two-person rule (migration 0019, issue 11 section 4). Under the rule a wipe, a retire or
-- a large bulk is first an approval request; it reaches a device only once another admin
-- approves it before expires_at (or the emergency override is used). kind 'command' holds one
-- device (device_id); kind 'bulk' the device ids of a bulk by list, separated by spaces; kind
-- 'filter' a bulk by filter (bulk_id), recorded in bulk_ops as 'awaiting' until approved.
-- requester_person / decided_person are the admin accounts behind the principals (a token
-- stands for the account that made it), so one person cannot approve under a second token.
CREATE TABLE approvals (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('command', 'bulk', 'filter')),
    type TEXT NOT NULL,
    device_id TEXT NOT NULL DEFAULT '',
    device_ids TEXT NOT NULL DEFAULT '',
    device_count INTEGER NOT NULL DEFAULT 1,
    reason TEXT NOT NULL DEFAULT '',
    command_ttl_s INTEGER NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL,
    requester_person TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'canceled',
        'expired', 'overridden')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_person TEXT NOT NULL DEFAULT '',
    decided_at INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    command_id TEXT NOT NULL DEFAULT '',
    bulk_id TEXT NOT NULL DEFAULT ''
);
-- GET /api/v1/approvals: newest first, keyset on (created_at, id), all or by status.
CREATE INDEX approvals_newest ON approvals (created_at, id);
CREATE INDEX approvals_status_newest ON approvals (status, created_at, id);
-- The tick's sweep of pending requests past their expiry.
CREATE INDEX approvals_expiry ON approvals (status, expires_at);
-- The device page's "waiting for approval" badge.
CREATE INDEX approvals_device ON approvals (device_id, status);
-- A queued command says which approval let it through and who approved it.
ALTER TABLE commands ADD COLUMN approval_id TEXT NOT NULL DEFAULT '';
ALTER TABLE commands ADD COLUMN approved_by TEXT NOT NULL DEFAULT '';
-- Separate permissions of an API token beyond its role; today only 'approve'.
CREATE TABLE token_permissions (
    token_id TEXT NOT NULL,
    permission TEXT NOT NULL CHECK (permission IN ('approve')),
    PRIMARY KEY (token_id, permission)
);
-- Whether a console session was opened with a TOTP code: only such a session may approve
-- (a password-only session stays one after its account enrolls TOTP). Older sessions: 0.
ALTER TABLE admin_sessions ADD COLUMN second_factor INTEGER NOT NULL DEFAULT 0;
-- A bulk by filter held by the rule waits as 'awaiting': the worker claims only 'running'.
-- SQLite cannot change a CHECK constraint in place, so the table is rebuilt with the same rows.
CREATE TABLE bulk_ops_new (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash BLOB,
    filter TEXT NOT NULL,
    f_q TEXT NOT NULL DEFAULT '',
    f_status TEXT NOT NULL DEFAULT '',
    f_owner TEXT NOT NULL DEFAULT '',
    f_policy TEXT NOT NULL DEFAULT '',
    f_desired TEXT NOT NULL DEFAULT '',
    f_reported TEXT NOT NULL DEFAULT '',
    f_seen_before INTEGER NOT NULL DEFAULT 0,
    f_compliant INTEGER NOT NULL DEFAULT -1,
    f_reasons INTEGER NOT NULL DEFAULT 0,
    enrolled_until INTEGER NOT NULL,
    expected_count INTEGER NOT NULL,
    cursor_key INTEGER NOT NULL DEFAULT -1,
    cursor_rowid INTEGER NOT NULL DEFAULT 0,
    queued INTEGER NOT NULL DEFAULT 0,
    already_pending INTEGER NOT NULL DEFAULT 0,
    skipped INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'canceled', 'refused', 'awaiting')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    ended_by TEXT NOT NULL DEFAULT '',
    ended_why TEXT NOT NULL DEFAULT ''
);
INSERT INTO bulk_ops_new SELECT id, type, reason, requested_by, idempotency_key, request_hash,
    filter, f_q, f_status, f_owner, f_policy, f_desired, f_reported, f_seen_before,
    f_compliant, f_reasons, enrolled_until, expected_count, cursor_key, cursor_rowid, queued,
    already_pending, skipped, state, created_at, updated_at, finished_at, ended_by, ended_why
    FROM bulk_ops;
DROP TABLE bulk_ops;
ALTER TABLE bulk_ops_new RENAME TO bulk_ops;
CREATE UNIQUE INDEX bulk_ops_idempotency ON bulk_ops (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX bulk_ops_running ON bulk_ops (state, created_at);
CREATE INDEX bulk_ops_newest ON bulk_ops (created_at, id);
CREATE INDEX bulk_ops_state_newest ON bulk_ops (state, created_at, id);

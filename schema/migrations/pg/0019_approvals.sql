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
    device_count BIGINT NOT NULL DEFAULT 1,
    reason TEXT NOT NULL DEFAULT '',
    command_ttl_s BIGINT NOT NULL DEFAULT 0,
    requested_by TEXT NOT NULL,
    requester_person TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'rejected', 'canceled',
        'expired', 'overridden')),
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_by TEXT NOT NULL DEFAULT '',
    decided_person TEXT NOT NULL DEFAULT '',
    decided_at BIGINT NOT NULL DEFAULT 0,
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
ALTER TABLE bulk_ops DROP CONSTRAINT bulk_ops_state_check;
ALTER TABLE bulk_ops ADD CONSTRAINT bulk_ops_state_check
    CHECK (state IN ('running', 'done', 'canceled', 'refused', 'awaiting'));

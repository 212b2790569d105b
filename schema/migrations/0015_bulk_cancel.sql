-- Bulk operations an admin can follow and stop (migration 0015, issue 10 section 2): a running
-- bulk may be canceled (POST /api/v1/commands/bulk/{id}/cancel) or refused by its worker when
-- the requester may no longer give the order (account disabled, token revoked or expired).
-- Either ends it before its next batch; what it queued stays queued. ended_by names who
-- canceled (the requester for a refusal), ended_why says why it ended. SQLite cannot change a
-- CHECK constraint in place, so the table is rebuilt with the same rows.
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
    state TEXT NOT NULL CHECK (state IN ('running', 'done', 'canceled', 'refused')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL DEFAULT 0,
    ended_by TEXT NOT NULL DEFAULT '',
    ended_why TEXT NOT NULL DEFAULT ''
);
INSERT INTO bulk_ops_new (id, type, reason, requested_by, idempotency_key, request_hash, filter,
    f_q, f_status, f_owner, f_policy, f_desired, f_reported, f_seen_before, f_compliant,
    f_reasons, enrolled_until, expected_count, cursor_key, cursor_rowid, queued,
    already_pending, skipped, state, created_at, updated_at, finished_at)
SELECT id, type, reason, requested_by, idempotency_key, request_hash, filter, f_q, f_status,
    f_owner, f_policy, f_desired, f_reported, f_seen_before, f_compliant, f_reasons,
    enrolled_until, expected_count, cursor_key, cursor_rowid, queued, already_pending, skipped,
    state, created_at, updated_at, finished_at FROM bulk_ops;
DROP TABLE bulk_ops;
ALTER TABLE bulk_ops_new RENAME TO bulk_ops;
CREATE UNIQUE INDEX bulk_ops_idempotency ON bulk_ops (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX bulk_ops_running ON bulk_ops (state, created_at);
-- GET /api/v1/commands/bulk: newest first, keyset on (created_at, id), all or by state.
CREATE INDEX bulk_ops_newest ON bulk_ops (created_at, id);
CREATE INDEX bulk_ops_state_newest ON bulk_ops (state, created_at, id);

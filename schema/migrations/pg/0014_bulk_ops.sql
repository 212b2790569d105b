-- Bulk commands by filter (migration 0014, issue 10 section 2): one row per durable bulk
-- operation. The request writes the row (and one audit entry) and answers 202; a background
-- worker on any server then queues the matching devices in short batches, each batch's
-- commands and the row's cursor and counts written in one transaction, so a server killed
-- mid-way leaves the cursor exactly after the last device it queued. The devices are walked in
-- row id order (fixed for a device's life) among those enrolled up to enrolled_until (the
-- request's time): devices enrolled later are not swept in.
CREATE TABLE bulk_ops (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    requested_by TEXT NOT NULL,
    idempotency_key TEXT,
    request_hash BYTEA,
    filter TEXT NOT NULL,              -- the filter as the request gave it (JSON), for display
    f_q TEXT NOT NULL DEFAULT '',      -- the parsed filter the worker runs
    f_status TEXT NOT NULL DEFAULT '',
    f_owner TEXT NOT NULL DEFAULT '',
    f_policy TEXT NOT NULL DEFAULT '',
    f_desired TEXT NOT NULL DEFAULT '',
    f_reported TEXT NOT NULL DEFAULT '',
    f_seen_before BIGINT NOT NULL DEFAULT 0,
    f_compliant BIGINT NOT NULL DEFAULT -1,
    f_reasons BIGINT NOT NULL DEFAULT 0,
    enrolled_until BIGINT NOT NULL,
    expected_count BIGINT NOT NULL,
    cursor_key BIGINT NOT NULL DEFAULT -1, -- -1 until a device is done, then 0
    cursor_rowid BIGINT NOT NULL DEFAULT 0,
    queued BIGINT NOT NULL DEFAULT 0,
    already_pending BIGINT NOT NULL DEFAULT 0,
    skipped BIGINT NOT NULL DEFAULT 0,
    state TEXT NOT NULL CHECK (state IN ('running', 'done')),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX bulk_ops_idempotency ON bulk_ops (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX bulk_ops_running ON bulk_ops (state, created_at);

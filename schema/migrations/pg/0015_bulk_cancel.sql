-- Bulk operations an admin can follow and stop (migration 0015, issue 10 section 2): a running
-- bulk may be canceled (POST /api/v1/commands/bulk/{id}/cancel) or refused by its worker when
-- the requester may no longer give the order (account disabled, token revoked or expired).
-- Either ends it before its next batch; what it queued stays queued. ended_by names who
-- canceled (the requester for a refusal), ended_why says why it ended.
ALTER TABLE bulk_ops DROP CONSTRAINT bulk_ops_state_check;
ALTER TABLE bulk_ops ADD CONSTRAINT bulk_ops_state_check
    CHECK (state IN ('running', 'done', 'canceled', 'refused'));
ALTER TABLE bulk_ops ADD COLUMN ended_by TEXT NOT NULL DEFAULT '';
ALTER TABLE bulk_ops ADD COLUMN ended_why TEXT NOT NULL DEFAULT '';
-- GET /api/v1/commands/bulk: newest first, keyset on (created_at, id), all or by state.
CREATE INDEX bulk_ops_newest ON bulk_ops (created_at, id);
CREATE INDEX bulk_ops_state_newest ON bulk_ops (state, created_at, id);

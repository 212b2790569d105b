-- Millisecond creation times (migration 0022, issue 11 section 4). The two-person rule refuses
-- an approver whose account the requester's person made after the request; whole seconds made
-- an account of the same second, made before the request, count as after. Rows from before
-- keep 0 and are compared by their seconds.
ALTER TABLE admins ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN created_ms INTEGER NOT NULL DEFAULT 0;

-- See schema/migrations/0022_created_ms.sql: millisecond creation times of admin accounts and
-- approval requests (0 on rows from before), for the two-person rule's "made after" check.
ALTER TABLE admins ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE approvals ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;

-- Signed checkpoints of the audit chain's head (schema/wire-formats.md §6): each row is the
-- 160-byte CLVCKPT1 record exactly as signed with the audit key (DATA/keys/audit.key, never in
-- this database). Every row is also appended to the checkpoint file outside the database, so a
-- truncation that deletes audit rows and these rows together is still caught from the file.
CREATE TABLE audit_checkpoints (
	id      INTEGER PRIMARY KEY,     -- insertion order
	seq     INTEGER NOT NULL,        -- the audit entry (and entry count) the checkpoint names
	at_ms   INTEGER NOT NULL,        -- when the server made it
	record  BLOB NOT NULL CHECK (length(record) = 160)
);

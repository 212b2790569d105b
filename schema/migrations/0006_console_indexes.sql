-- The console's device list, compliance dashboard and command queue (issue 9 §2, §5): the
-- indexes that keep search, sorting and keyset paging fast at 100,000 devices. Each sort key
-- is indexed alone; SQLite appends the rowid, which is the tie-breaker of every page cursor.
--
-- The hypervisor key fingerprint (base64 of SHA-256 of the key, the part after "SHA256:"),
-- so that a search by fingerprint prefix is an index range. SQL cannot compute SHA-256:
-- cleave-server fills it on insert and, once, for rows that predate this migration.
ALTER TABLE devices ADD COLUMN hv_fingerprint TEXT NOT NULL DEFAULT '';
CREATE INDEX devices_fingerprint ON devices (hv_fingerprint);
CREATE INDEX devices_last_seen ON devices (last_seen_at);
CREATE INDEX devices_enrolled ON devices (enrolled_at);
-- Search and sort by owner and model ignore ASCII case.
CREATE INDEX devices_owner_nocase ON devices (owner COLLATE NOCASE);
CREATE INDEX devices_model_nocase ON devices (model COLLATE NOCASE);
CREATE INDEX devices_policy ON devices (policy_name);
-- Counts and filters by corporate state (desired, reported) read this index only.
CREATE INDEX devices_corporate ON devices (desired_state, reported_state);
-- The command queue across devices, newest first, by type.
CREATE INDEX commands_type ON commands (type);

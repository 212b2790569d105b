-- The audit log's stream to a SIEM (issue 11 §3): how far each named stream got and which
-- server sends it. last_seq is the newest audit entry the collector's TCP acknowledged (see
-- server/siem/), last_ckpt_id the newest audit checkpoint row sent likewise; holder and lease_until_ms make one server of several the only sender: another
-- one takes the stream over once the lease has run out without being renewed.
CREATE TABLE siem_streams (
	name           TEXT PRIMARY KEY,
	last_seq       INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
	last_ckpt_id   INTEGER NOT NULL DEFAULT 0 CHECK (last_ckpt_id >= 0),
	holder         TEXT NOT NULL DEFAULT '',
	lease_until_ms INTEGER NOT NULL DEFAULT 0,
	updated_at_ms  INTEGER NOT NULL DEFAULT 0
);

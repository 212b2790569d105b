-- See schema/migrations/0006_console_indexes.sql: the console's device list, dashboard and
-- command queue. SQLite ends every index with the rowid; here each index used for a sort or a
-- keyset page names its tie-breaker (rowid) itself, so "ORDER BY key, rowid" and
-- "(key, rowid) > (?, ?)" are one index range in page order.
--
-- hv_fingerprint is base64 of SHA-256 of the hypervisor key, filled by cleave-server on insert
-- and, once, for rows that predate this migration (store_pg_query.c).
ALTER TABLE devices ADD COLUMN hv_fingerprint TEXT NOT NULL DEFAULT '';
-- Prefix search compares bytes (COLLATE "C"): a range [q, q || U+10FFFF) is then an index
-- range whatever the database's collation, and % or _ in q are only characters.
CREATE INDEX devices_fingerprint ON devices (hv_fingerprint COLLATE "C");
CREATE INDEX devices_id_prefix ON devices (id COLLATE "C");
CREATE INDEX devices_last_seen ON devices (last_seen_at, rowid);
CREATE INDEX devices_enrolled ON devices (enrolled_at, rowid);
-- Search and sort by owner and model ignore case (SQLite: COLLATE NOCASE): lower() in byte
-- order, the expression the queries use.
CREATE INDEX devices_owner_nocase ON devices ((lower(owner)) COLLATE "C", rowid);
CREATE INDEX devices_model_nocase ON devices ((lower(model)) COLLATE "C");
CREATE INDEX devices_policy ON devices (policy_name);
CREATE INDEX devices_corporate ON devices (desired_state, reported_state);
-- The command queue across devices, newest first, by type.
CREATE INDEX commands_type ON commands (type, rowid);

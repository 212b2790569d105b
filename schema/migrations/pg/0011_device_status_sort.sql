-- The device list filtered by status (issue 10 §0), as SQLite's 0011: with status leading each
-- sort key a status-filtered page is an index range scan in page order that stops after limit
-- rows. PostgreSQL indexes carry no implicit row id, so the page cursor's tie-breaker (rowid)
-- is named, as in 0006.
CREATE INDEX devices_status_seen ON devices (status, last_seen_at, rowid);
CREATE INDEX devices_status_enrolled ON devices (status, enrolled_at, rowid);
CREATE INDEX devices_status_owner ON devices (status, (lower(owner)) COLLATE "C", rowid);
-- Every lookup by status alone is served by the first of these.
DROP INDEX devices_status;

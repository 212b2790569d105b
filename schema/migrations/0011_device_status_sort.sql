-- The device list filtered by status (issue 10 §0). On statistics-free tables SQLite answers
-- "status = ? ORDER BY last_seen_at DESC" from devices_status and sorts every match: all
-- 99,000 active devices of 100,000 for the first page. With status leading each sort key the
-- page is a range scan in page order that stops after limit rows, whichever status is asked.
-- SQLite ends each index with the rowid, the tie-breaker of every page cursor.
CREATE INDEX devices_status_seen ON devices (status, last_seen_at);
CREATE INDEX devices_status_enrolled ON devices (status, enrolled_at);
CREATE INDEX devices_status_owner ON devices (status, owner COLLATE NOCASE);
-- Every lookup by status alone is served by the first of these.
DROP INDEX devices_status;

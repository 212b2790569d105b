-- Indexes for the console's audit log and policy screens (issue 9 §2 screens 6 and 9).
-- The audit list filters by actor, action, target and time and pages by seq. SQLite ends every
-- index with the rowid (seq here), so an index on one column serves "col = ? AND seq > ?
-- ORDER BY seq" as a range scan in page order. action and target have theirs since 0001.
CREATE INDEX IF NOT EXISTS audit_actor ON audit (actor);
CREATE INDEX IF NOT EXISTS audit_at ON audit (at_ms);
-- Per policy, how many active devices follow it and how many applied its current version:
-- one covering range scan per policy over this index, never a read of the device rows.
CREATE INDEX IF NOT EXISTS devices_policy_applied
	ON devices (policy_name, status, applied_policy_name, applied_policy_version);

-- See schema/migrations/0008_audit_policy_indexes.sql: the console's audit and policy screens.
-- The audit list filters by actor, action or target and pages by seq: "col = ? AND seq > ?
-- ORDER BY seq" is one range of an index on (col, seq). SQLite's indexes end with seq
-- implicitly; here it is named, and 0001's single-column action and target indexes are
-- replaced by such pairs.
CREATE INDEX audit_actor ON audit (actor, seq);
DROP INDEX audit_action;
CREATE INDEX audit_action ON audit (action, seq);
DROP INDEX audit_target;
CREATE INDEX audit_target ON audit (target, seq);
CREATE INDEX audit_at ON audit (at_ms);
-- Per policy, active devices and those that applied its version: an index-only range.
CREATE INDEX devices_policy_applied
	ON devices (policy_name, status, applied_policy_name, applied_policy_version);

-- Labels and groups (migration 0020, issue 11 section 5). A label is key=value (a plain name is
-- a key with the value ''), one value per key per device; they go with their device. The
-- (key, value, device_id) index answers "devices with this label" (the list's label= and
-- group= filters, a group's members) as one index range per term of a query.
CREATE TABLE device_labels (
    device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (device_id, key)
);
CREATE INDEX device_labels_kv ON device_labels (key, value, device_id);

-- A group is a named label query (its canonical text), optionally naming a policy.
CREATE TABLE device_groups (
    name TEXT PRIMARY KEY,
    query TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    policy TEXT NOT NULL DEFAULT '',
    priority INTEGER NOT NULL DEFAULT 100,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    version INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX device_groups_policy ON device_groups (priority, name) WHERE policy <> '';

-- A bulk command's label query (from its label= filter and its group, as they were asked).
ALTER TABLE bulk_ops ADD COLUMN f_labels TEXT NOT NULL DEFAULT '';

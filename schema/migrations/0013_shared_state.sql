-- The deployment's public signing keys (migration 0013): the ticket key the enrolled devices
-- pin and the audit checkpoint key, recorded by the first server that starts on this
-- database. A server whose own keys differ refuses to start (server/service/keys.c). Public
-- keys only: the private halves never enter the database.
CREATE TABLE deployment_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ticket_pub BLOB NOT NULL,
    audit_pub BLOB NOT NULL,
    recorded_at INTEGER NOT NULL
);

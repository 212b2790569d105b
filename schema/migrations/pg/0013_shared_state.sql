-- The deployment's public signing keys (migration 0013): the ticket key the enrolled devices
-- pin and the audit checkpoint key, recorded by the first server that starts on this
-- database. A server whose own keys differ refuses to start (server/service/keys.c). Public
-- keys only: the private halves never enter the database.
CREATE TABLE deployment_keys (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    ticket_pub BYTEA NOT NULL,
    audit_pub BYTEA NOT NULL,
    recorded_at BIGINT NOT NULL
);

-- The device request nonces accepted by any server of the deployment, each inserted when its
-- request is accepted: a second insert of the same (device, nonce), on this server or
-- another, is a replay. Rows older than the signature skew are purged (a request that old is
-- refused by its signed creation time anyway), so the table holds a few minutes of traffic.
CREATE TABLE request_nonces (
    device_id TEXT NOT NULL,
    nonce BIGINT NOT NULL,
    seen_at BIGINT NOT NULL,
    PRIMARY KEY (device_id, nonce)
);
CREATE INDEX request_nonces_seen ON request_nonces (seen_at);

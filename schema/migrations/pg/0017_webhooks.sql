-- Signed webhooks (migration 0017, issue 11 section 3). An event is one row of webhook_events
-- however many subscriptions want it; each subscription keeps a cursor: the seq of the last
-- event it is done with. webhook_head holds the last seq given out; a transaction that appends
-- events updates it and keeps it until it ends, so seqs commit in order and a cursor never
-- passes an event still to commit. Times are unix milliseconds.
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    secret TEXT NOT NULL,
    events TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    cursor BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0,
    failing_since BIGINT NOT NULL DEFAULT 0,
    lease_until BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT NOT NULL DEFAULT '',
    disabled_why TEXT NOT NULL DEFAULT '',
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE webhook_head (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    seq BIGINT NOT NULL
);
INSERT INTO webhook_head (one, seq) VALUES (1, 0);
CREATE TABLE webhook_events (
    seq BIGINT PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    type TEXT NOT NULL,
    at_ms BIGINT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE webhook_deliveries (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    attempt BIGINT NOT NULL,
    manual BIGINT NOT NULL,
    at_ms BIGINT NOT NULL,
    status BIGINT NOT NULL,
    latency_ms BIGINT NOT NULL,
    error TEXT NOT NULL,
    ok BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (at_ms);
CREATE TABLE webhook_redeliveries (
    webhook_id TEXT NOT NULL,
    event_seq BIGINT NOT NULL,
    PRIMARY KEY (webhook_id, event_seq)
);

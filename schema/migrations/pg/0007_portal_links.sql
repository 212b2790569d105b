-- See schema/migrations/0007_portal_links.sql: the employee portal's device links, stored only
-- as the SHA-256 of their secret, each bound to one device and expiring.
CREATE TABLE portal_links (
	hash        BYTEA PRIMARY KEY CHECK (length(hash) = 32),
	device_id   TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	created_at  BIGINT NOT NULL,
	expires_at  BIGINT NOT NULL
);
CREATE INDEX portal_links_by_device ON portal_links (device_id);

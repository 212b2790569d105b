-- The employee portal's device links (issue 9): a link made when a device enrolls lets its
-- employee open the device's page (state, receipts, "leave the company") without an account.
-- Only the SHA-256 of the link's secret is stored; each is bound to one device and expires.
CREATE TABLE portal_links (
	hash        BLOB PRIMARY KEY CHECK (length(hash) = 32),
	device_id   TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
	created_at  INTEGER NOT NULL,
	expires_at  INTEGER NOT NULL
);
CREATE INDEX portal_links_by_device ON portal_links (device_id);

-- Evidence, not claims (issue 8 §3): what makes a command verified or a device compliant comes
-- from what the hypervisor signed.
-- Why a finished command is not verified ('' when it is, or when it is not finished).
ALTER TABLE commands ADD COLUMN verify_note TEXT NOT NULL DEFAULT '';
-- When the device last showed a good attestation (signed by its hypervisor key, enrolled
-- measurement, fresh clock); 0: only the one at enrollment.
ALTER TABLE devices ADD COLUMN attested_at INTEGER NOT NULL DEFAULT 0;
-- The policy digest that attestation carried (16 bytes; wire-formats.md 3): what the hypervisor
-- actually enforces. Empty before the first version-2 attestation.
ALTER TABLE devices ADD COLUMN attested_policy BLOB NOT NULL DEFAULT x'';
-- When the corporate volume's key epoch last changed (enrollment, wipe, rekey), for
-- key_rotation_days.
ALTER TABLE devices ADD COLUMN epoch_since INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET epoch_since = enrolled_at;
-- The same hypervisor enrolled again: the older record names the newer, and back.
ALTER TABLE devices ADD COLUMN superseded_by TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN replaces TEXT NOT NULL DEFAULT '';
CREATE INDEX devices_hv_key ON devices (hv_key);
-- An enrollment nonce is good only with the enrollment token that fetched it.
ALTER TABLE enroll_nonces ADD COLUMN token_id TEXT NOT NULL DEFAULT '';

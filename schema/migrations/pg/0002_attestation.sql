-- See schema/migrations/0002_attestation.sql: the latest attestation's verdict per device.
ALTER TABLE devices ADD COLUMN attest_status TEXT NOT NULL DEFAULT 'enrolled';

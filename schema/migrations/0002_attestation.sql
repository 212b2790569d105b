-- What the latest attestation a device sent at check-in showed: 'enrolled' (only the one at
-- enrollment so far), 'ok' (signed by the registered hypervisor key, same measurement, fresh),
-- or 'mismatch' (anything else). Compliance reports "attestation mismatch" for the last.
ALTER TABLE devices ADD COLUMN attest_status TEXT NOT NULL DEFAULT 'enrolled';

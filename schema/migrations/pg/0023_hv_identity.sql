-- See schema/migrations/0023_hv_identity.sql: a device hypervisor's signature algorithm, its
-- P-256 key (DER SPKI) when that key lives in a TPM, where the key lives, and the endorsement.
ALTER TABLE devices ADD COLUMN hv_sig_alg INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN hv_spki BYTEA;
ALTER TABLE devices ADD COLUMN hv_identity TEXT NOT NULL DEFAULT 'file';
ALTER TABLE devices ADD COLUMN endorsement TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN endorsement_ca TEXT NOT NULL DEFAULT '';

-- See schema/migrations/0024_tpm_nonce.sql: the TPM attestation key an enrollment nonce was
-- issued to (its object name; NULL when issued in plain) and the EK certificate's issuer.
ALTER TABLE enroll_nonces ADD COLUMN tpm_ak BYTEA;
ALTER TABLE enroll_nonces ADD COLUMN ek_issuer TEXT NOT NULL DEFAULT '';

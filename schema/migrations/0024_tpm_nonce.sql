-- An enrollment nonce issued to a TPM (migration 0024, issue 13, hypercall-bridge/TPM.md §3): the
-- server sent it only as a credential that the TPM holding the endorsement key can recover with
-- the attestation key loaded, so the enrollment that brings it back must be that AK's. tpm_ak is
-- the AK's TPM object name (nameAlg || digest of its public area), NULL for a nonce handed out in
-- plain; ek_issuer is the subject of the CA that issued the verified EK certificate, which the
-- device row keeps as its endorsement_ca.
ALTER TABLE enroll_nonces ADD COLUMN tpm_ak BLOB;
ALTER TABLE enroll_nonces ADD COLUMN ek_issuer TEXT NOT NULL DEFAULT '';

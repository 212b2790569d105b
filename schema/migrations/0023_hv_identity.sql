-- How a device's hypervisor signs, and whether a TPM vouches for its key (migration 0023, issue
-- 13, hypercall-bridge/TPM.md). hv_sig_alg is common/wire.h's WIRE_SIG_*: 0 Ed25519 (hv_key is
-- the public key; every device enrolled before this), 1 ECDSA P-256 by a key inside a TPM
-- (hv_key is SHA-256 of hv_spki, the key's DER SubjectPublicKeyInfo). hv_identity says where the
-- key lives ('file' or 'tpm'); endorsement is 'verified' when enrollment proved the key sits in a
-- TPM whose endorsement certificate chains to a configured manufacturer CA, else ''; endorsement_ca
-- names that certificate's issuer for people.
ALTER TABLE devices ADD COLUMN hv_sig_alg INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN hv_spki BLOB;
ALTER TABLE devices ADD COLUMN hv_identity TEXT NOT NULL DEFAULT 'file';
ALTER TABLE devices ADD COLUMN endorsement TEXT NOT NULL DEFAULT '';
ALTER TABLE devices ADD COLUMN endorsement_ca TEXT NOT NULL DEFAULT '';

/*
 * The server's view of a TPM 2.0 (hypercall-bridge/TPM.md §3, §6): our own bounds-checked
 * decoder of the few TPM structures it reads (TPM2B_PUBLIC, TPMS_ATTEST, TPMT_SIGNATURE; TPM 2.0
 * Part 2, big-endian), object names, TPM2_MakeCredential in software (Part 1 §24), the EK
 * certificate chain and quote checks, all over OpenSSL 3. No tpm2-tss: nothing here talks to a
 * TPM, and every input is outside input (bytes relayed by a device).
 *
 * Errors are negative errno values: -EINVAL malformed input, -ENOTSUP an algorithm or structure
 * we do not handle, -EBADMSG a check that failed (a signature, a digest, an attribute),
 * -ENOMEM/-EIO from OpenSSL. Functions that take why/cap write a one-line reason there on
 * failure (a device's enrollment is refused with it).
 */
#ifndef CLEAVE_TPM_VERIFY_H
#define CLEAVE_TPM_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* TPM_ALG_ID values (Part 2 §6.3) the decoder knows. */
#define TPM_ALG_RSA       0x0001u
#define TPM_ALG_SHA1      0x0004u
#define TPM_ALG_HMAC      0x0005u
#define TPM_ALG_AES       0x0006u
#define TPM_ALG_KEYEDHASH 0x0008u
#define TPM_ALG_XOR       0x000au
#define TPM_ALG_SHA256    0x000bu
#define TPM_ALG_SHA384    0x000cu
#define TPM_ALG_SHA512    0x000du
#define TPM_ALG_NULL      0x0010u
#define TPM_ALG_RSASSA    0x0014u
#define TPM_ALG_RSAES     0x0015u
#define TPM_ALG_RSAPSS    0x0016u
#define TPM_ALG_OAEP      0x0017u
#define TPM_ALG_ECDSA     0x0018u
#define TPM_ALG_ECDAA     0x001au
#define TPM_ALG_ECC       0x0023u
#define TPM_ALG_SYMCIPHER 0x0025u
#define TPM_ALG_CFB       0x0043u

#define TPM_ECC_NIST_P256 0x0003u
#define TPM_ECC_NIST_P384 0x0004u

/* TPMA_OBJECT bits (Part 2 §8.3). */
#define TPMA_FIXED_TPM      0x00000002u
#define TPMA_FIXED_PARENT   0x00000010u
#define TPMA_SENSITIVE_ORIG 0x00000020u
#define TPMA_USER_WITH_AUTH 0x00000040u
#define TPMA_ADMIN_W_POLICY 0x00000080u
#define TPMA_RESTRICTED     0x00010000u
#define TPMA_DECRYPT        0x00020000u
#define TPMA_SIGN           0x00040000u

#define TPM_GENERATED_VALUE   0xff544347u
#define TPM_ST_ATTEST_CERTIFY 0x8017u
#define TPM_ST_ATTEST_QUOTE   0x8018u

#define TPM_DIGEST_MAX     64       /* SHA-512 */
#define TPM_NAME_MAX       (2 + 64) /* nameAlg || digest */
#define TPM_RSA_MAX        512      /* 4096-bit modulus */
#define TPM_ECC_MAX        66       /* P-521 coordinate */
#define TPM_PCR_SELECT_MAX 4        /* sizeofSelect: 32 PCRs */
#define TPM_PCR_BANKS_MAX  16

/* A decoded TPMT_PUBLIC (only RSA and ECC keys become EVP_PKEYs). */
struct tpm_public {
	uint16_t type, name_alg;
	uint32_t attrs;
	uint8_t auth_policy[TPM_DIGEST_MAX];
	uint16_t auth_policy_len;
	uint16_t sym_alg, sym_bits, sym_mode; /* symmetric (TPM_ALG_NULL: none) */
	uint16_t scheme, scheme_hash;         /* signing/encryption or keyed-hash scheme */
	uint16_t rsa_bits;                    /* RSA */
	uint32_t rsa_exponent;                /* RSA, as sent: 0 means 65537 */
	uint16_t curve, kdf, kdf_hash;        /* ECC */
	uint8_t unique[TPM_RSA_MAX];          /* RSA modulus, ECC x, keyedHash/symcipher unique */
	uint16_t unique_len;
	uint8_t unique_y[TPM_ECC_MAX]; /* ECC y */
	uint16_t unique_y_len;
	uint8_t name[TPM_NAME_MAX]; /* nameAlg (big-endian) || H_nameAlg(TPMT_PUBLIC bytes) */
	uint16_t name_len;
};

/* A decoded TPMS_ATTEST of type QUOTE or CERTIFY. */
struct tpm_attest {
	uint32_t magic;
	uint16_t type;
	uint8_t signer[TPM_NAME_MAX]; /* qualifiedSigner */
	uint16_t signer_len;
	uint8_t extra[TPM_DIGEST_MAX]; /* extraData: the qualifying data */
	uint16_t extra_len;
	uint64_t clock;
	uint32_t reset_count,
		restart_count; /* obfuscated unless the signer is an EK-hierarchy key */
	uint8_t safe;
	uint64_t firmware;
	/* TPM_ST_ATTEST_QUOTE */
	uint32_t pcr_banks;
	struct {
		uint16_t hash;
		uint8_t size;
		uint8_t select[TPM_PCR_SELECT_MAX];
	} pcr[TPM_PCR_BANKS_MAX];
	uint8_t pcr_digest[TPM_DIGEST_MAX];
	uint16_t pcr_digest_len;
	/* TPM_ST_ATTEST_CERTIFY */
	uint8_t cert_name[TPM_NAME_MAX], cert_qname[TPM_NAME_MAX];
	uint16_t cert_name_len, cert_qname_len;
};

/* A decoded TPMT_SIGNATURE (RSASSA, RSAPSS or ECDSA), the signature as OpenSSL verifies it. */
struct tpm_signature {
	uint16_t alg, hash;
	uint8_t sig[TPM_RSA_MAX]; /* DER ECDSA-Sig-Value for ECDSA, the raw value for RSA */
	uint16_t sig_len;
};

/*
 * Decodes a TPM2B_PUBLIC (size-prefixed; the size must cover the rest of buf exactly) and
 * computes the object's name. 0, -EINVAL or -ENOTSUP (with why). tpm_public_decode_t takes a
 * bare TPMT_PUBLIC (the bytes the name is computed over).
 */
int tpm_public_decode(const uint8_t *buf, size_t len, struct tpm_public *out, char *why,
		      size_t cap);
int tpm_public_decode_t(const uint8_t *buf, size_t len, struct tpm_public *out, char *why,
			size_t cap);
/* The public key of an RSA or ECC (P-256, P-384) object. *out owned by the caller. */
int tpm_public_pkey(const struct tpm_public *p, EVP_PKEY **out, char *why, size_t cap);
/*
 * The DER SubjectPublicKeyInfo of an RSA or ECC object (what the server keeps for a device's AK
 * and hashes into hv_key, TPM.md §3) into der/cap; *len its size. 0, -ENOSPC or tpm_public_pkey's.
 */
int tpm_public_spki(const struct tpm_public *p, uint8_t *der, size_t cap, size_t *len, char *why,
		    size_t wcap);
/* Decodes a TPMS_ATTEST (the bytes the TPM signed) of type QUOTE or CERTIFY. */
int tpm_attest_decode(const uint8_t *buf, size_t len, struct tpm_attest *out, char *why,
		      size_t cap);
/* Decodes a TPMT_SIGNATURE; ECDSA r and s become a DER signature. */
int tpm_signature_decode(const uint8_t *buf, size_t len, struct tpm_signature *out, char *why,
			 size_t cap);
/* Verifies sig over msg (hashed with sig->hash) with key. 0 or -EBADMSG (why). */
int tpm_signature_verify(EVP_PKEY *key, const struct tpm_signature *sig, const uint8_t *msg,
			 size_t n, char *why, size_t cap);

/*
 * The attestation key the hypervisor must use (TPM.md §2): an ECC NIST P-256 restricted signing
 * key, fixedTPM, fixedParent, sensitiveDataOrigin, not a decryption key, nameAlg SHA-256,
 * scheme ECDSA with SHA-256. 0 or -EBADMSG with the first attribute that is wrong.
 */
int tpm_ak_check(const struct tpm_public *ak, char *why, size_t cap);

/* PCR replay of an event log: from 32 zero bytes, pcr = SHA-256(pcr || m) for each m. */
void tpm_pcr_replay(const uint8_t (*log)[32], size_t n, uint8_t pcr[32]);

/*
 * A TPM2_Quote by the AK ak (its TPM2B_PUBLIC already decoded): sig (TPMT_SIGNATURE) over attest
 * (TPMS_ATTEST) by ak's key, magic TPM_GENERATED_VALUE, type QUOTE, extraData == qualifying,
 * the selection exactly PCR 23 of the SHA-256 bank, pcrDigest == SHA-256(replay of log).
 * 0, or -EINVAL/-ENOTSUP (malformed) / -EBADMSG (a check failed) with why. The decoded quote
 * goes to *out when out is not NULL (for its clock).
 */
int tpm_quote_check(const struct tpm_public *ak, const uint8_t *attest, size_t attest_len,
		    const uint8_t *sig, size_t sig_len, const uint8_t *qualifying, size_t qlen,
		    const uint8_t (*log)[32], size_t log_n, struct tpm_attest *out, char *why,
		    size_t cap);

/*
 * TPM2_MakeCredential (Part 1 §24, Part 3 §12.6) for the EK whose public is ek: RSA (2048-4096
 * bits; RSA-OAEP of a random seed) or ECC NIST P-256 (ECDH with an ephemeral key), nameAlg
 * SHA-256, symmetric AES-CFB, a fixed restricted decryption key (the TCG templates L-1, L-2).
 * Bound to the object name name/name_len: credential (1 to 32 bytes) comes back from
 * TPM2_ActivateCredential only in the TPM holding that EK, with an object of that name loaded.
 * Writes TPM2B_ID_OBJECT into id/id_cap (*id_len) and TPM2B_ENCRYPTED_SECRET into
 * secret/secret_cap (*secret_len), each with its size prefix, exactly as ActivateCredential
 * takes them. Other EKs (P-384, nameAlg SHA-384: the high-range templates): -ENOTSUP.
 */
#define TPM_ID_OBJECT_MAX  (2 + 2 + TPM_DIGEST_MAX + 2 + 64)
#define TPM_ENC_SECRET_MAX (2 + TPM_RSA_MAX)
int tpm_make_credential(const struct tpm_public *ek, const uint8_t *name, size_t name_len,
			const uint8_t *credential, size_t cred_len, uint8_t *id, size_t id_cap,
			size_t *id_len, uint8_t *secret, size_t secret_cap, size_t *secret_len,
			char *why, size_t cap);
/*
 * KDFa (Part 1, SP 800-108 counter mode with HMAC) with SHA-256: bits/8 bytes of
 * key derived from key/label (the NUL is included)/context_u/context_v into out.
 */
int tpm_kdfa_sha256(const uint8_t *key, size_t key_len, const char *label, const uint8_t *context_u,
		    size_t u_len, const uint8_t *context_v, size_t v_len, uint32_t bits,
		    uint8_t *out);

/* Manufacturer CAs for EK certificates (setting tpm_ca_file): roots and issuing CAs. */
struct tpm_ca;
/*
 * Loads a PEM bundle: self-signed certificates are the trust anchors, the others issuing CAs
 * that may complete a chain, and CRLs, each of which must be signed by one of those certificates
 * with keyUsage allowing it. NULL with why when the file is unreadable, holds no root, holds
 * something else (a private key), or a CRL no certificate of it may have signed.
 */
struct tpm_ca *tpm_ca_load(const char *path, char *why, size_t cap);
void tpm_ca_free(struct tpm_ca *ca);

/* What an EK certificate says about its TPM (its subjectAltName, TCG EK Credential Profile). */
struct tpm_ek_info {
	char manufacturer[64], model[64], version[64];
	char issuer[128]; /* the issuing CA's subject, one line (RFC 2253), cut to fit */
};
/*
 * Verifies a DER EK certificate: it chains to a root of ca (X.509 path validation by OpenSSL,
 * every check on; when ca holds a CRL of its issuer, not revoked and that CRL current), it is an EK certificate (extendedKeyUsage, when present, names
 * tcg-kp-EKCertificate; subjectAltName names the TPM manufacturer), and its key is the key of
 * the EK public ek. 0 with *info filled (info may be NULL), or -EBADMSG/-EINVAL with why.
 */
int tpm_ek_verify(const struct tpm_ca *ca, const uint8_t *der, size_t der_len,
		  const struct tpm_public *ek, struct tpm_ek_info *info, char *why, size_t cap);

#endif

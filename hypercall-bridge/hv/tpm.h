/*
 * cleave-hv's TPM 2.0 operations (hypercall-bridge/TPM.md §2-§5) on tpm2-tss's ESAPI: the
 * endorsement key and its certificate, the storage root key (SRK), the attestation key (AK: the
 * hypervisor identity, restricted ECDSA P-256), signing and quoting with it, PCR 23, credential
 * activation, the two NV counters, the TPM clock, and the root key sealed under the wipe counter
 * and a clock deadline. No policy decisions: callers (trust.c, keys.c) decide what to do with a
 * refusal. Every TPM failure is returned as -errno and logged once with tpm2-tss's decoded text;
 * no secret is ever logged. Objects are flushed from the TPM when no longer needed: while a
 * struct tpm is open only the SRK and (after tpm_ak_init) the AK stay loaded.
 *
 * Errors common to every function: -EINVAL (bad argument or a malformed blob), -EMSGSIZE (an
 * output does not fit the caller's buffer), -EIO (TCTI or TPM failure without a better errno),
 * -EAGAIN (the TPM asked to retry), -ENOSPC (TPM object, session or NV memory full).
 */
#ifndef CLEAVE_HV_TPM_H
#define CLEAVE_HV_TPM_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define TPM_NV_WIPE_COUNTER  0x01500C01u /* incremented by every crypto-erase */
#define TPM_NV_STATE_COUNTER 0x01500C02u /* incremented by every accepted ticket */
#define TPM_NV_EK_CERT_RSA   0x01c00002u /* TCG: RSA 2048 EK certificate */
#define TPM_EK_PERSISTENT    0x81010001u /* TCG: the manufacturer's persistent RSA EK */
#define TPM_AK_BLOB_NAME     "tpm-ak.blob"
#define TPM_PCR_CLEAVE       23u

#define TPM_PUBLIC_MAX 640  /* a marshalled TPM2B_PUBLIC (RSA 2048 EK: ~314 bytes) */
#define TPM_NAME_LEN   34   /* nameAlg (0x000b, SHA-256) || SHA-256(TPMT_PUBLIC) */
#define TPM_SIG_LEN    64   /* ECDSA P-256: r || s, 32 bytes each, big-endian */
#define TPM_SIGN_MAX   1024 /* longest body tpm_sign takes (TPM2B_MAX_BUFFER) */
#define TPM_ATTEST_MAX 1024 /* TPMS_ATTEST bytes of a quote */
#define TPM_TSIG_MAX   160  /* a marshalled TPMT_SIGNATURE (ECDSA) */
#define TPM_CERT_MAX   4096 /* the EK certificate (DER) */
#define TPM_SPKI_MAX   128  /* SubjectPublicKeyInfo DER of a P-256 key (91 bytes) */
#define TPM_SEALED_MAX 512  /* tpm_seal's blob */
#define TPM_ROOT_LEN   32   /* the sealed root key */
#define TPM_CRED_MAX   1024 /* a marshalled TPM2B_ID_OBJECT or TPM2B_ENCRYPTED_SECRET */
#define TPM_SECRET_MAX 64   /* the secret recovered by credential activation */

struct tpm;

struct tpm_clock {
	uint64_t clock_ms;      /* TPM Clock: ms powered on, never set back */
	uint32_t reset_count;   /* TPM resets (TPM2_Startup(CLEAR)) */
	uint32_t restart_count; /* TPM restarts and resumes since the last reset */
	int safe;               /* 1: Clock has not been reported higher before a failed save */
};

/*
 * Connects through the TCTI named by tcti (tpm2-tss's TctiLdr syntax, such as
 * "swtpm:host=127.0.0.1,port=2321" or "device:/dev/tpmrm0"), starts the TPM (a TPM already
 * started is fine) and creates the SRK. *out is the caller's (tpm_close). 0 or -errno
 * (-ECONNREFUSED when the TCTI cannot be loaded or reached).
 */
int tpm_open(const char *tcti, struct tpm **out) __must_check;
/* Flushes the SRK and AK and disconnects. NULL is ignored. */
void tpm_close(struct tpm *t);
/* The number of transient objects loaded in the TPM now (TPM2_GetCapability). */
int tpm_transient_count(struct tpm *t, unsigned *out) __must_check;

/*
 * The RSA 2048 EK (TCG template L-1): its TPM2B_PUBLIC, marshalled, into out. The persistent EK
 * at TPM_EK_PERSISTENT when it has that template and the EK certificate's key (tpm_activate
 * uses it too), else one created from the template. 0 or -errno.
 */
int tpm_ek_public(struct tpm *t, uint8_t *out, size_t cap, size_t *len) __must_check;
/* The EK certificate (DER) from NV TPM_NV_EK_CERT_RSA; -ENOENT when there is none. */
int tpm_ek_cert(struct tpm *t, uint8_t *out, size_t cap, size_t *len) __must_check;

/*
 * Loads the AK from TPM_AK_BLOB_NAME in dirfd (borrowed), or, when that file is absent, creates
 * one under the SRK and writes its blob there durably first. -EKEYREJECTED when the blob exists
 * but this TPM refuses it (another TPM's, or damaged): never replaced here. 0 or -errno.
 */
int tpm_ak_init(struct tpm *t, int dirfd) __must_check;
/* The AK's TPM2B_PUBLIC (marshalled), its name, its SubjectPublicKeyInfo (DER). -ENOKEY
 * before tpm_ak_init. */
int tpm_ak_public(struct tpm *t, uint8_t *out, size_t cap, size_t *len) __must_check;
int tpm_ak_name(struct tpm *t, uint8_t out[TPM_NAME_LEN]) __must_check;
int tpm_ak_spki(struct tpm *t, uint8_t *out, size_t cap, size_t *len) __must_check;

/*
 * Signs body (len <= TPM_SIGN_MAX, not starting with TPM_GENERATED_VALUE) with the AK: TPM2_Hash
 * with its ticket, then TPM2_Sign. sig is ECDSA P-256 over SHA-256(body), r || s.
 */
int tpm_sign(struct tpm *t, const void *body, size_t len, uint8_t sig[TPM_SIG_LEN]) __must_check;

struct tpm_quote {
	uint8_t attest[TPM_ATTEST_MAX]; /* TPMS_ATTEST as the TPM made it (TPM2B_ATTEST content) */
	size_t attest_len;
	uint8_t sig[TPM_TSIG_MAX]; /* TPMT_SIGNATURE, marshalled */
	size_t sig_len;
};
/* TPM2_Quote by the AK over PCR 23 (sha256) with qualifying data qual (qlen <= 64). */
int tpm_quote(struct tpm *t, const uint8_t *qual, size_t qlen, struct tpm_quote *q) __must_check;
/* Extends PCR 23's sha256 bank with digest; reads it. */
int tpm_pcr_extend(struct tpm *t, const uint8_t digest[32]) __must_check;
int tpm_pcr_read(struct tpm *t, uint8_t out[32]) __must_check;
/*
 * Resets PCR 23 to zeros (resettable from locality 0 in the PC Client profile), so that what
 * one cleave-hv extends is the whole of it, whatever an earlier process of the same TPM boot
 * extended.
 */
int tpm_pcr_reset(struct tpm *t) __must_check;

/*
 * TPM2_ActivateCredential with the AK as the credentialed object and the EK (PolicySecret
 * (endorsement) session) as the decryption key: blob is a marshalled TPM2B_ID_OBJECT, secret a
 * marshalled TPM2B_ENCRYPTED_SECRET. The recovered secret goes to out (TPM_SECRET_MAX).
 * -EKEYREJECTED when the credential was not made for this EK and AK.
 */
int tpm_activate(struct tpm *t, const uint8_t *blob, size_t blob_len, const uint8_t *secret,
		 size_t secret_len, uint8_t *out, size_t cap, size_t *len) __must_check;

/*
 * NV counter index (owner index): defines it when absent (owner authorization must be empty:
 * -EACCES otherwise, logged) and makes it readable. 0 or -errno.
 */
int tpm_counter_ensure(struct tpm *t, uint32_t index) __must_check;
/* Reads it (-ENOENT when undefined, -ENODATA when never incremented), or increments it. */
int tpm_counter_read(struct tpm *t, uint32_t index, uint64_t *out) __must_check;
int tpm_counter_increment(struct tpm *t, uint32_t index) __must_check;

/* TPM2_ReadClock. */
int tpm_read_clock(struct tpm *t, struct tpm_clock *out) __must_check;

/*
 * Seals key (TPM_ROOT_LEN bytes, borrowed) under the SRK with the policy PolicyNV(wipe counter
 * == counter) and PolicyCounterTimer(Clock < deadline_ms). blob (TPM_SEALED_MAX) gets the
 * counter, the deadline and the sealed object; it is useless outside this TPM.
 */
int tpm_seal(struct tpm *t, const uint8_t *key, uint64_t counter, uint64_t deadline_ms,
	     uint8_t *blob, size_t cap, size_t *len) __must_check;
/*
 * Unseals blob into key (TPM_ROOT_LEN bytes, caller storage that should be a keys_secret).
 * -EPERM when the policy refuses (the wipe counter moved, or the deadline passed),
 * -EKEYREJECTED when this TPM refuses the blob itself.
 */
int tpm_unseal(struct tpm *t, const uint8_t *blob, size_t len, uint8_t *key) __must_check;
/*
 * The wipe counter value and the deadline a blob of tpm_seal was sealed with, as its header
 * says (no TPM needed; the TPM's policy check is what makes them binding). 0 or -EINVAL.
 */
int tpm_sealed_info(const uint8_t *blob, size_t len, uint64_t *counter,
		    uint64_t *deadline_ms) __must_check;

#endif

/*
 * Key material of the corporate volume: locked, non-dumpable memory for secrets, the per-epoch
 * root key files that stand in for the phone's secure hardware, wrapping of the volume master
 * key (VMK) under a root key with AES-256-GCM, and HKDF-SHA-256 derivation of the XTS data key.
 * Nothing here knows the volume format or logs key bytes; every file operation is relative to a
 * directory descriptor the caller owns, with names this module builds itself.
 */
#ifndef CLEAVE_HV_KEYS_H
#define CLEAVE_HV_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define KEYS_ROOT_LEN  32 /* AES-256 key-encryption key of one epoch */
#define KEYS_VMK_LEN   64 /* volume master key */
#define KEYS_XTS_LEN   64 /* AES-256-XTS: two distinct 32-byte halves */
#define KEYS_NONCE_LEN 12
#define KEYS_TAG_LEN   16
/* Wrapped VMK: nonce || ciphertext || GCM tag. */
#define KEYS_WRAPPED_LEN (KEYS_NONCE_LEN + KEYS_VMK_LEN + KEYS_TAG_LEN)

/*
 * A secret in its own page-aligned mapping that is mlock()ed (never swapped) and marked
 * MADV_DONTDUMP (absent from core dumps). len bytes are usable at p.
 */
struct keys_secret {
	uint8_t *p;
	size_t len;
	size_t maplen;
};

/*
 * Allocates a zeroed secret of len bytes. *out is owned by the caller (free with
 * keys_secret_free). Returns 0, -EINVAL, -ENOMEM, or the mlock/madvise error.
 */
int keys_secret_new(size_t len, struct keys_secret **out) __must_check;
/* Wipes (explicit_bzero), unlocks and unmaps s. NULL is ignored. */
void keys_secret_free(struct keys_secret *s);

/*
 * Writes a fresh random root key for epoch as "root-<epoch>.key" (mode 0600) in the directory
 * dirfd (borrowed), replacing any leftover of that name atomically: temp file, fsync, rename,
 * fsync of the directory. Returns 0 or -errno.
 */
int keys_root_create(int dirfd, uint64_t epoch) __must_check;

/*
 * Loads the root key of epoch from dirfd (borrowed). *out is owned by the caller (free with
 * keys_secret_free). Returns 0, -ENOENT when the file is absent, -EINVAL when it is not a
 * regular file of exactly KEYS_ROOT_LEN bytes, -EPERM when group or others have any access
 * to it, or -errno.
 */
int keys_root_load(int dirfd, uint64_t epoch, struct keys_secret **out) __must_check;

/*
 * Destroys the root key of epoch: overwrites the file with random bytes and fdatasync (best
 * effort; flash may keep old pages), unlinks it and fsyncs dirfd (borrowed). Idempotent: an
 * absent file is success. Returns 0 or -errno.
 */
int keys_root_destroy(int dirfd, uint64_t epoch) __must_check;

/*
 * Destroys every root key file with an epoch <= max_epoch (leftovers of an interrupted rekey
 * included). Returns 0 or the first -errno.
 */
int keys_root_destroy_upto(int dirfd, uint64_t max_epoch) __must_check;

/* Returns 1 when the root key file of epoch exists in dirfd, 0 when not, or -errno. */
int keys_root_exists(int dirfd, uint64_t epoch);

/*
 * Wraps vmk (KEYS_VMK_LEN bytes, borrowed) under root (KEYS_ROOT_LEN, borrowed) with
 * AES-256-GCM and a fresh random nonce, authenticating aad (borrowed, aad_len bytes). Fills
 * out (caller storage, KEYS_WRAPPED_LEN). Returns 0 or -EIO.
 */
int keys_wrap(const uint8_t *root, const uint8_t *vmk, const void *aad, size_t aad_len,
	      uint8_t out[KEYS_WRAPPED_LEN]) __must_check;

/*
 * Unwraps in (borrowed) under root into vmk_out (KEYS_VMK_LEN bytes, caller storage that
 * should be a keys_secret). Returns 0, -EKEYREJECTED when the tag does not verify (wrong key,
 * wrong aad or destroyed blob; vmk_out is then zeroed), or -EIO.
 */
int keys_unwrap(const uint8_t *root, const uint8_t in[KEYS_WRAPPED_LEN], const void *aad,
		size_t aad_len, uint8_t *vmk_out) __must_check;

/*
 * Derives the 64-byte XTS data key from vmk (borrowed) with HKDF-SHA-256, salt = the volume
 * uuid (16 bytes, borrowed), info = "cleave corporate volume xts v1". out (caller storage,
 * KEYS_XTS_LEN) should be a keys_secret. Returns 0, -EIO, or -EKEYREJECTED when the two
 * halves came out equal (which OpenSSL's XTS refuses).
 */
int keys_derive_xts(const uint8_t *vmk, const uint8_t uuid[16], uint8_t *out) __must_check;

/*
 * The root keys sealed in a TPM instead of kept in files (keys_tpm.c, TPM.md §4). After
 * keys_tpm_use(t) (t borrowed for the process's life; defines and initialises the wipe
 * counter) keys_root_create, _load, _destroy, _exists and _destroy_upto work on
 * "root-<epoch>.sealed": created sealed under the wipe counter's value and the deadline last
 * set with keys_tpm_deadline (TPM clock ms; KEYS_DEADLINE_FAR by default), loaded by unsealing
 * (-EPERM when the TPM's policy refuses: the counter moved or the deadline passed).
 */
#define KEYS_DEADLINE_FAR (UINT64_C(1) << 62)
struct tpm;
int keys_tpm_use(struct tpm *t) __must_check;
int keys_tpm_active(void);
void keys_tpm_deadline(uint64_t deadline_ms);
/* Unseals the root key of epoch and seals it again with deadline_ms. 0 or -errno. */
int keys_root_reseal(int dirfd, uint64_t epoch, uint64_t deadline_ms) __must_check;
/*
 * A wipe's commit point with a TPM: increments the wipe counter, so that every root key sealed
 * before is dead, kept copies included. No-op (0) with the file keystore. Idempotent across a
 * crash once keys_tpm_wipe_base gave the value the counter had before this wipe (the wipe's
 * durable record of it): the counter moves only while it still holds that value, so a resumed
 * wipe never moves it twice.
 */
int keys_root_revoke(void) __must_check;
void keys_tpm_wipe_base(uint64_t before);
/* The TPM's wipe counter now; -ENOTSUP without a TPM. */
int keys_wipe_counter(uint64_t *v) __must_check;
/* keys_tpm.c's halves of create and load, by file name (keys.c builds it). */
int keys_tpm_root_create(int dirfd, const char *name) __must_check;
int keys_tpm_root_load(int dirfd, const char *name, struct keys_secret **out) __must_check;
int keys_tpm_reseal(int dirfd, const char *name, uint64_t deadline_ms) __must_check;

#endif

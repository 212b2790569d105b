/*
 * The OpenSSL 3 primitives every Cleave binary uses: random bytes, SHA-256, Ed25519 keys,
 * signatures and PEM files. Private keys stay inside struct ed25519_key; callers see only public
 * keys and signatures. Nothing here logs secret material.
 */
#ifndef CLEAVE_CRYPTO_H
#define CLEAVE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#define ED25519_PUB_LEN 32
#define ED25519_SIG_LEN 64
#define SHA256_LEN      32

/* Fills buf with n bytes from OpenSSL's DRBG. Returns 0 or -EIO. */
int crypto_random(void *buf, size_t n);

/* SHA-256 of one buffer, or of several concatenated (parts/lens arrays of count entries). */
void crypto_sha256(const void *data, size_t n, uint8_t out[SHA256_LEN]);
/*
 * The digest of a policy an attestation carries (wire-formats.md 3): SHA-256 of the policy
 * ticket's four args (le64 each), first 16 bytes. All-zero args (no policy yet) have one too.
 */
void crypto_policy_digest(const uint64_t args[4], uint8_t out[16]);
void crypto_sha256_parts(const void *const *parts, const size_t *lens, size_t count,
			 uint8_t out[SHA256_LEN]);

/* Lower-case hex of n bytes into dst (cap >= 2n+1). Returns 0 or -ENOSPC. */
int hex_encode(char *dst, size_t cap, const void *src, size_t n);

/*
 * Verifies an Ed25519 signature over msg with a raw 32-byte public key. Returns 0 when valid,
 * -EBADMSG when the signature does not verify, -EINVAL when the key is not a valid point.
 */
int ed25519_verify(const uint8_t pub[ED25519_PUB_LEN], const void *msg, size_t n,
		   const uint8_t sig[ED25519_SIG_LEN]);

struct ed25519_key;

/* Makes a fresh key. *out is owned by the caller (free with ed25519_key_free). 0 or -errno. */
int ed25519_key_generate(struct ed25519_key **out);
/* Loads a PKCS#8 PEM private key file. -ENOENT when missing, -EINVAL when not an Ed25519 key. */
int ed25519_key_load(const char *path, struct ed25519_key **out);
/* Writes the key as PKCS#8 PEM with mode 0600, atomically (temp file, fsync, rename). */
int ed25519_key_save(const struct ed25519_key *k, const char *path);
/* Signs msg; sig receives 64 bytes. 0 or -EIO. */
int ed25519_key_sign(const struct ed25519_key *k, const void *msg, size_t n,
		     uint8_t sig[ED25519_SIG_LEN]);
void ed25519_key_public(const struct ed25519_key *k, uint8_t pub[ED25519_PUB_LEN]);
/*
 * n bytes derived from the key's private seed by HKDF-SHA256 (no salt) with info, so a key
 * file every server of a deployment holds can also key other secrets without the seed
 * leaving this module. 0 or -EIO.
 */
int ed25519_key_derive(const struct ed25519_key *k, const char *info, uint8_t *out, size_t n);
/* Frees the key and wipes it; NULL is ignored. */
void ed25519_key_free(struct ed25519_key *k);

/*
 * SubjectPublicKeyInfo PEM of a raw public key ("-----BEGIN PUBLIC KEY-----..."), which
 * `openssl pkeyutl -verify -pubin -inkey FILE -rawin` accepts. *pem is owned by the caller
 * (free()). Returns 0 or -errno.
 */
int ed25519_pub_to_pem(const uint8_t pub[ED25519_PUB_LEN], char **pem);

/* SHA-256 fingerprint of a raw public key as "SHA256:" + unpadded base64 (as OpenSSH shows). */
int key_fingerprint(const uint8_t pub[ED25519_PUB_LEN], char *dst, size_t cap);

#endif

/*
 * Small secrets sealed at rest (webhook signing secrets): AES-256-GCM with a caller's 32-byte
 * key, a random 96-bit nonce per sealing, and associated data that binds the sealed text to
 * its row (a copied ciphertext does not open under another id). The sealed form is text:
 * "v1:" + base64(nonce | ciphertext | tag), so a store keeps it as an opaque string.
 */
#ifndef CLEAVE_SEAL_H
#define CLEAVE_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SEAL_KEY_LEN 32
#define SEAL_PREFIX  "v1:"

/* The sealed text's length for a plaintext of n bytes, its terminating NUL included. */
#define SEAL_TEXT_CAP(n) (3 + (((12 + (n) + 16) + 2) / 3) * 4 + 1)

/* Seals plain (a NUL-terminated string) into out. 0, -ENOSPC (out too short) or -EIO. */
int seal_text(const uint8_t key[SEAL_KEY_LEN], const char *ad, const char *plain, char *out,
	      size_t cap);
/*
 * Opens sealed into out (NUL-terminated). 0; -EINVAL when sealed is not a "v1:" text;
 * -EBADMSG when it does not open with this key and ad (another key, another row, altered);
 * -ENOSPC when out is too short.
 */
int seal_open(const uint8_t key[SEAL_KEY_LEN], const char *ad, const char *sealed, char *out,
	      size_t cap);
/* The text is sealed in a version this build knows ("v1:"). */
int seal_is_sealed(const char *text);

#endif

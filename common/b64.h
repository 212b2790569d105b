/*
 * Base64 (RFC 4648 §4, padded) and base64url (§5, unpadded) codecs. libc only.
 * Decoders are strict: they reject characters outside the alphabet, bad padding, whitespace and
 * non-canonical trailing bits, so one value has exactly one encoding.
 */
#ifndef CLEAVE_B64_H
#define CLEAVE_B64_H

#include <stddef.h>
#include <stdint.h>

/* Encoded length of n bytes, not counting the terminating NUL. */
size_t b64_encoded_len(size_t n);
size_t b64url_encoded_len(size_t n);

/*
 * Encodes n bytes from src into dst (cap bytes, NUL-terminated). Returns the encoded length, or
 * -ENOSPC when cap is too small (dst is then an empty string when cap > 0).
 */
long b64_encode(char *dst, size_t cap, const void *src, size_t n);
long b64url_encode(char *dst, size_t cap, const void *src, size_t n);

/*
 * Decodes len characters of src into dst (cap bytes). Returns the decoded length, -EINVAL for
 * malformed input, or -ENOSPC when cap is too small.
 */
long b64_decode(void *dst, size_t cap, const char *src, size_t len);
long b64url_decode(void *dst, size_t cap, const char *src, size_t len);

#endif

/*
 * Shared by crypto/tpm_*.c only: a bounds-checked big-endian reader for TPM marshalling and the
 * reason writer. The reader's error is sticky: once a read runs past the end (or a size exceeds
 * its structure's bound) every later read yields zero and rd_ok() is false, so a decoder reads
 * a whole structure and checks once.
 */
#ifndef CLEAVE_TPM_PRIV_H
#define CLEAVE_TPM_PRIV_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>

struct rd {
	const uint8_t *p;
	size_t n, off;
	int bad;
};

static inline const uint8_t *
rd_take(struct rd *r, size_t k)
{
	const uint8_t *at;

	if (r->bad || k > r->n - r->off) {
		r->bad = 1;
		return NULL;
	}
	at = r->p + r->off;
	r->off += k;
	return at;
}

static inline uint8_t
rd_u8(struct rd *r)
{
	const uint8_t *b = rd_take(r, 1);

	return b ? b[0] : 0;
}

static inline uint16_t
rd_u16(struct rd *r)
{
	const uint8_t *b = rd_take(r, 2);

	return b ? (uint16_t)(b[0] << 8 | b[1]) : 0;
}

static inline uint32_t
rd_u32(struct rd *r)
{
	const uint8_t *b = rd_take(r, 4);

	return b ? (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3] : 0;
}

static inline uint64_t
rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);

	return hi << 32 | rd_u32(r);
}

/* A TPM2B of at most max bytes into dst (*len its size). Larger is malformed. */
static inline void
rd_2b(struct rd *r, uint8_t *dst, size_t max, uint16_t *len)
{
	uint16_t k = rd_u16(r);
	const uint8_t *b;

	*len = 0;
	if (k > max) {
		r->bad = 1;
		return;
	}
	b = rd_take(r, k);
	if (b != NULL) {
		memcpy(dst, b, k);
		*len = k;
	}
}

static inline int
rd_ok(const struct rd *r)
{
	return !r->bad;
}

/* Big-endian stores, as TPM marshalling wants (common/le.h is the little-endian side). */
static inline void
put_u16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
put_u32(uint8_t *p, uint32_t v)
{
	put_u16(p, (uint16_t)(v >> 16));
	put_u16(p + 2, (uint16_t)v);
}

/* Writes the reason (printf format) into why when why is not NULL; returns err. */
int tpm_fail(char *why, size_t cap, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The OpenSSL digest of a TPM hash algorithm (SHA-1/256/384/512), or NULL. */
const EVP_MD *tpm_md(uint16_t alg);

#endif

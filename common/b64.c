/*
 * Base64 and base64url codecs for signatures, digests and key fingerprints that travel in HTTP
 * headers and JSON. Decoding validates the whole input before it writes a byte, so a failed call
 * leaves dst untouched and one value has exactly one accepted encoding. It does not handle line
 * breaks, whitespace or MIME, and it is not constant-time: never feed it secret keys.
 */
#include "b64.h"

#include <errno.h>
#include <limits.h>

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Inputs whose encoding would not fit in a long; real callers stay far below this. */
#define B64_MAX_IN ((size_t)(LONG_MAX / 4) * 3)

size_t
b64_encoded_len(size_t n)
{
	if (n > B64_MAX_IN)
		return SIZE_MAX;
	return (n / 3 + (n % 3 != 0)) * 4;
}

size_t
b64url_encoded_len(size_t n)
{
	if (n > B64_MAX_IN)
		return SIZE_MAX;
	return n / 3 * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

static long
encode(char *dst, size_t cap, const void *src, size_t n, const char *alpha, int pad)
{
	const uint8_t *s = src;
	size_t need = pad ? b64_encoded_len(n) : b64url_encoded_len(n);
	size_t i, o = 0;

	if (need == SIZE_MAX || cap < need + 1) {
		if (cap > 0)
			dst[0] = '\0';
		return -ENOSPC;
	}
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];

		dst[o++] = alpha[v >> 18 & 63];
		dst[o++] = alpha[v >> 12 & 63];
		dst[o++] = alpha[v >> 6 & 63];
		dst[o++] = alpha[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)s[i] << 16;

		dst[o++] = alpha[v >> 18 & 63];
		dst[o++] = alpha[v >> 12 & 63];
		if (pad) {
			dst[o++] = '=';
			dst[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;

		dst[o++] = alpha[v >> 18 & 63];
		dst[o++] = alpha[v >> 12 & 63];
		dst[o++] = alpha[v >> 6 & 63];
		if (pad)
			dst[o++] = '=';
	}
	dst[o] = '\0';
	return (long)o;
}

long
b64_encode(char *dst, size_t cap, const void *src, size_t n)
{
	return encode(dst, cap, src, n, b64_std, 1);
}

long
b64url_encode(char *dst, size_t cap, const void *src, size_t n)
{
	return encode(dst, cap, src, n, b64_url, 0);
}

/* Value of one character in the given alphabet, or -1. */
static int
sextet(char c, int url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/*
 * Decodes the nchars alphabet characters of src (padding already stripped by the caller). With
 * dst NULL it only validates. Returns the decoded length or -EINVAL.
 */
static long
decode_chars(uint8_t *dst, const char *src, size_t nchars, int url)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (nchars % 4 == 1)
		return -EINVAL;
	for (i = 0; i < nchars; i++) {
		int v = sextet(src[i], url);

		if (v < 0)
			return -EINVAL;
		acc = (acc << 6 | (uint32_t)v) & 0xffffff;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (dst != NULL)
				dst[o] = (uint8_t)(acc >> bits);
			o++;
		}
	}
	/* Canonical form: the bits left over after the last full byte must be zero. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -EINVAL;
	return (long)o;
}

static long
decode(void *dst, size_t cap, const char *src, size_t len, int url)
{
	size_t nchars = len;
	long n;

	if (len > (size_t)LONG_MAX || (len > 0 && src == NULL))
		return -EINVAL;
	if (!url) {
		/* Padded form: whole quanta, and at most two '=' that close the last one. */
		if (len % 4 != 0)
			return -EINVAL;
		if (nchars > 0 && src[nchars - 1] == '=')
			nchars--;
		if (nchars > 0 && src[nchars - 1] == '=')
			nchars--;
		if (nchars % 4 == 1)
			return -EINVAL;
	}
	n = decode_chars(NULL, src, nchars, url);
	if (n < 0)
		return n;
	if ((size_t)n > cap)
		return -ENOSPC;
	return decode_chars(dst, src, nchars, url);
}

long
b64_decode(void *dst, size_t cap, const char *src, size_t len)
{
	return decode(dst, cap, src, len, 0);
}

long
b64url_decode(void *dst, size_t cap, const char *src, size_t len)
{
	return decode(dst, cap, src, len, 1);
}

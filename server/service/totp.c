/*
 * RFC 6238 TOTP: HOTP (RFC 4226: HMAC-SHA-1 of the big-endian step counter, dynamic
 * truncation, modulo 10^digits) of floor(t / step). SHA-1 because that is what every
 * authenticator app implements for otpauth:// URIs without an algorithm parameter.
 */
#include "totp.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <string.h>

int
totp_code(const uint8_t *key, size_t klen, int64_t t, int64_t step, int digits, uint32_t *code)
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int maclen = 0;
	uint64_t counter, mod = 1;
	uint32_t bin;
	size_t off;

	if (t < 0 || step <= 0 || digits < 6 || digits > 9 || klen > INT32_MAX)
		return -EINVAL;
	counter = (uint64_t)(t / step);
	for (int i = 7; i >= 0; i--, counter >>= 8)
		msg[i] = (uint8_t)(counter & 0xff);
	if (HMAC(EVP_sha1(), key, (int)klen, msg, sizeof(msg), mac, &maclen) == NULL || maclen < 20)
		return -EIO;
	off = mac[maclen - 1] & 0x0f;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	      ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	for (int i = 0; i < digits; i++)
		mod *= 10;
	*code = (uint32_t)(bin % mod);
	return 0;
}

int
totp_check(const uint8_t *key, size_t klen, int64_t t, const char *code, int digits)
{
	int64_t step;

	return totp_match(key, klen, t, code, digits, &step);
}

int
totp_match(const uint8_t *key, size_t klen, int64_t t, const char *code, int digits, int64_t *step)
{
	uint32_t want, given = 0;
	int ok = 0;

	if (code == NULL || strlen(code) != (size_t)digits)
		return 0;
	for (int i = 0; i < digits; i++) {
		if (code[i] < '0' || code[i] > '9')
			return 0;
		given = given * 10 + (uint32_t)(code[i] - '0');
	}
	/* All three windows are computed and compared whatever matched, so time says nothing. */
	for (int64_t d = -1; d <= 1; d++) {
		if (totp_code(key, klen, t + d * TOTP_STEP_S, TOTP_STEP_S, digits, &want) != 0)
			continue;
		if (want == given) {
			ok = 1;
			*step = t / TOTP_STEP_S + d;
		}
	}
	return ok;
}

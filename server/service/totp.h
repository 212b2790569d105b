/*
 * Time-based one-time passwords (RFC 6238 over RFC 4226's HOTP, HMAC-SHA-1), the console's
 * second factor (issue 9). Pure functions of key and time, so tests use the RFC's vectors.
 */
#ifndef CLEAVE_TOTP_H
#define CLEAVE_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_STEP_S 30
#define TOTP_DIGITS 6

/* The code for unix time t (seconds, >= 0): digits 6..9. 0 or -EINVAL. */
int totp_code(const uint8_t *key, size_t klen, int64_t t, int64_t step, int digits, uint32_t *code);
/*
 * 1 when code (exactly `digits` decimal digits) is the code of t or one step before or after
 * (clock drift), else 0. Compared in constant time.
 */
int totp_check(const uint8_t *key, size_t klen, int64_t t, const char *code, int digits);
/* totp_check that also gives the step (floor(t' / TOTP_STEP_S)) whose code matched. */
int totp_match(const uint8_t *key, size_t klen, int64_t t, const char *code, int digits,
	       int64_t *step);

#endif

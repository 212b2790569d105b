/*
 * Unit tests of RFC 6238 TOTP (server/service/totp.c) with the RFC's Appendix B vectors for
 * HMAC-SHA-1 (8 digits, the 20-byte ASCII seed "12345678901234567890"), the 6-digit codes
 * the console uses, and the one-step window either side.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "service/totp.h"

static const uint8_t seed[] = "12345678901234567890";

static void
test_rfc6238_sha1_vectors(void **state)
{
	static const struct {
		int64_t t;
		uint32_t code;
	} v[] = {
		{59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
		{1234567890, 89005924}, {2000000000, 69279037}, {20000000000LL, 65353130},
	};
	uint32_t code;

	(void)state;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		assert_int_equal(totp_code(seed, 20, v[i].t, 30, 8, &code), 0);
		assert_int_equal(code, v[i].code);
	}
}

static void
test_six_digits_and_window(void **state)
{
	char s[16];
	uint32_t code;

	(void)state;
	/* 6 digits are the last 6 of the 8-digit value (same truncation, smaller modulus) */
	assert_int_equal(totp_code(seed, 20, 59, 30, 6, &code), 0);
	assert_int_equal(code, 287082);
	snprintf(s, sizeof(s), "%06u", code);
	assert_true(totp_check(seed, 20, 59, s, 6));
	assert_true(totp_check(seed, 20, 59 + 30, s, 6));  /* one step late */
	assert_true(totp_check(seed, 20, 59 - 30, s, 6));  /* one step early */
	assert_false(totp_check(seed, 20, 59 + 60, s, 6)); /* two steps: no */
	{
		int64_t step = 0;

		/* the step that matched, for refusing a code used before */
		assert_true(totp_match(seed, 20, 59 + 30, s, 6, &step));
		assert_int_equal(step, 1);
	}
	/* 1111111109 gives 07081804: the leading zero is part of the code */
	assert_true(totp_check(seed, 20, 1111111109, "081804", 6));
	assert_false(totp_check(seed, 20, 1111111109, "81804", 6));
	assert_false(totp_check(seed, 20, 59, "28708a", 6));
	assert_false(totp_check(seed, 20, 59, NULL, 6));
	assert_int_not_equal(totp_code(seed, 20, -1, 30, 6, &code), 0);
	assert_int_not_equal(totp_code(seed, 20, 59, 30, 5, &code), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6238_sha1_vectors),
		cmocka_unit_test(test_six_digits_and_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for common/b64.c: RFC 4648 test vectors for both alphabets, the strictness rules
 * (alphabet, padding, whitespace, canonical trailing bits), capacity handling and round trips.
 * They do not test performance or any caller of the codec.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "b64.h"

struct vec {
	const char *plain;
	const char *std;
	const char *url;
};

/* RFC 4648 §10. */
static const struct vec rfc4648[] = {
	{"", "", ""},
	{"f", "Zg==", "Zg"},
	{"fo", "Zm8=", "Zm8"},
	{"foo", "Zm9v", "Zm9v"},
	{"foob", "Zm9vYg==", "Zm9vYg"},
	{"fooba", "Zm9vYmE=", "Zm9vYmE"},
	{"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void
test_b64_rfc4648_vectors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rfc4648) / sizeof(rfc4648[0]); i++) {
		const struct vec *v = &rfc4648[i];
		size_t n = strlen(v->plain);
		char enc[32];
		uint8_t dec[32];

		assert_int_equal(b64_encoded_len(n), strlen(v->std));
		assert_int_equal(b64url_encoded_len(n), strlen(v->url));
		assert_int_equal(b64_encode(enc, sizeof(enc), v->plain, n), (long)strlen(v->std));
		assert_string_equal(enc, v->std);
		assert_int_equal(b64url_encode(enc, sizeof(enc), v->plain, n),
				 (long)strlen(v->url));
		assert_string_equal(enc, v->url);
		assert_int_equal(b64_decode(dec, sizeof(dec), v->std, strlen(v->std)), (long)n);
		assert_memory_equal(dec, v->plain, n);
		assert_int_equal(b64url_decode(dec, sizeof(dec), v->url, strlen(v->url)), (long)n);
		assert_memory_equal(dec, v->plain, n);
	}
}

static void
test_b64_alphabets_differ(void **state)
{
	const uint8_t in[] = {0xfb, 0xff, 0xbf};
	char enc[8];
	uint8_t dec[4];

	(void)state;
	assert_int_equal(b64_encode(enc, sizeof(enc), in, sizeof(in)), 4);
	assert_string_equal(enc, "+/+/");
	assert_int_equal(b64url_encode(enc, sizeof(enc), in, sizeof(in)), 4);
	assert_string_equal(enc, "-_-_");
	assert_int_equal(b64_decode(dec, sizeof(dec), "-_-_", 4), -EINVAL);
	assert_int_equal(b64url_decode(dec, sizeof(dec), "+/+/", 4), -EINVAL);
	assert_int_equal(b64url_decode(dec, sizeof(dec), "-_-_", 4), 3);
	assert_memory_equal(dec, in, 3);
}

static void
test_b64_rejects_malformed(void **state)
{
	static const char *const bad_std[] = {
		"Zg",       /* missing padding */
		"Zg=",      /* short padding */
		"Zg===",    /* too much padding */
		"Z===",     /* one character in the last quantum */
		"Zh==",     /* non-canonical: trailing bits set */
		"Zm9=",     /* non-canonical: trailing bits set */
		"Zg==Zg==", /* padding in the middle */
		"Z=g=",     /* padding not at the end */
		"Zm9 v",    /* whitespace */
		"Zm9v\n",   /* newline */
		"Zm9*",     /* outside the alphabet */
		"====",     /* padding only */
	};
	static const char *const bad_url[] = {
		"Zg==", /* padding is not part of base64url here */
		"Z",    /* one character cannot carry a byte */
		"Zh",   /* non-canonical */
	};
	uint8_t dec[16];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++)
		assert_int_equal(b64_decode(dec, sizeof(dec), bad_std[i], strlen(bad_std[i])),
				 -EINVAL);
	for (size_t i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++)
		assert_int_equal(b64url_decode(dec, sizeof(dec), bad_url[i], strlen(bad_url[i])),
				 -EINVAL);
	/* "Zm8" is the canonical encoding of "fo"; "Zm9" differs only in trailing bits. */
	assert_int_equal(b64url_decode(dec, sizeof(dec), "Zm8", 3), 2);
	assert_int_equal(b64url_decode(dec, sizeof(dec), "Zm9", 3), -EINVAL);
	/* An embedded NUL is outside the alphabet, whatever follows it. */
	assert_int_equal(b64_decode(dec, sizeof(dec), "Zm\0v", 4), -EINVAL);
}

static void
test_b64_decode_honours_len(void **state)
{
	uint8_t dec[8];

	(void)state;
	/* Only the first len characters are looked at. */
	assert_int_equal(b64_decode(dec, sizeof(dec), "Zm9v!!!!", 4), 3);
	assert_memory_equal(dec, "foo", 3);
	assert_int_equal(b64_decode(dec, sizeof(dec), "", 0), 0);
	assert_int_equal(b64_decode(dec, sizeof(dec), NULL, 0), 0);
}

static void
test_b64_capacity(void **state)
{
	char enc[8];
	uint8_t dec[3];

	(void)state;
	/* "foobar" needs 8 characters plus the NUL. */
	memset(enc, 'x', sizeof(enc));
	assert_int_equal(b64_encode(enc, sizeof(enc), "foobar", 6), -ENOSPC);
	assert_string_equal(enc, "");
	assert_int_equal(b64url_encode(enc, 8, "foobar", 6), -ENOSPC);
	assert_int_equal(b64url_encode(enc, 8, "fooba", 5), 7);
	assert_int_equal(b64_encode(NULL, 0, "f", 1), -ENOSPC);
	/* Decoding 4 bytes into 3: nothing written. */
	memset(dec, 0xaa, sizeof(dec));
	assert_int_equal(b64_decode(dec, sizeof(dec), "Zm9vYg==", 8), -ENOSPC);
	assert_int_equal(dec[0], 0xaa);
	assert_int_equal(b64_decode(dec, sizeof(dec), "Zm9v", 4), 3);
	/* Malformed input is reported as such even when it would also not fit. */
	assert_int_equal(b64_decode(dec, 0, "Zm9*", 4), -EINVAL);
}

static void
test_b64_round_trip_all_lengths(void **state)
{
	uint8_t in[64], dec[64];
	char enc[128];

	(void)state;
	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 37 + 11);
	for (size_t n = 0; n <= sizeof(in); n++) {
		long e = b64_encode(enc, sizeof(enc), in, n);

		assert_true(e >= 0);
		assert_int_equal((size_t)e, b64_encoded_len(n));
		assert_int_equal(b64_decode(dec, sizeof(dec), enc, (size_t)e), (long)n);
		assert_memory_equal(dec, in, n);
		e = b64url_encode(enc, sizeof(enc), in, n);
		assert_true(e >= 0);
		assert_int_equal((size_t)e, b64url_encoded_len(n));
		assert_null(memchr(enc, '=', (size_t)e));
		assert_int_equal(b64url_decode(dec, sizeof(dec), enc, (size_t)e), (long)n);
		assert_memory_equal(dec, in, n);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_b64_rfc4648_vectors),
		cmocka_unit_test(test_b64_alphabets_differ),
		cmocka_unit_test(test_b64_rejects_malformed),
		cmocka_unit_test(test_b64_decode_honours_len),
		cmocka_unit_test(test_b64_capacity),
		cmocka_unit_test(test_b64_round_trip_all_lengths),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

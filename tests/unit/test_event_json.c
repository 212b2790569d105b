/*
 * svc_json_str, which builds webhook event payloads in the service (no JSON library there):
 * quotes, backslashes and control characters escaped so that jansson reads the value back
 * exactly; a value that does not fit is cut at a character boundary, still a valid string.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <jansson.h>
#include <string.h>

#include "service/service.h"

static void
roundtrip(const char *v)
{
	char buf[256];
	json_t *j;

	assert_int_equal(svc_json_str(buf, sizeof(buf), v), 0);
	j = json_loads(buf, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(j), v);
	json_decref(j);
}

static void
test_escapes_read_back(void **state)
{
	(void)state;
	roundtrip("");
	roundtrip("alice@example.com");
	roundtrip("<img src=x onerror=alert(1)> \"quoted\" back\\slash");
	roundtrip("tab\there\nnew line\r\x01\x1f\x7f");
	roundtrip("caf\xc3\xa9 \xe2\x82\xac");
}

static void
test_cut_at_a_character(void **state)
{
	char buf[9];
	json_t *j;

	(void)state;
	/* "é" is two bytes: 6 fit after the quote; the 7th would split the second "é". */
	assert_int_equal(svc_json_str(buf, sizeof(buf), "abcd\xc3\xa9\xc3\xa9z"), -ENOSPC);
	j = json_loads(buf, JSON_DECODE_ANY, NULL);
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "abcd\xc3\xa9");
	json_decref(j);
	/* One byte less: the first "é" would be split, so it goes too. */
	assert_int_equal(svc_json_str(buf, 8, "abcd\xc3\xa9z"), -ENOSPC);
	assert_string_equal(buf, "\"abcd\"");
	assert_int_equal(svc_json_str(buf, 2, "x"), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes_read_back),
		cmocka_unit_test(test_cut_at_a_character),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

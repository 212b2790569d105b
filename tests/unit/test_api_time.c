/*
 * Unit tests of the audit filters' time parser (api/auditlog.c, api_time_parse_ms): RFC 3339
 * times with Z or a numeric offset and an optional fraction become unix milliseconds; anything
 * else, including out-of-range fields and trailing text, is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "api/api_priv.h"

static void
test_api_time_accepts_rfc3339(void **state)
{
	static const struct {
		const char *in;
		int64_t ms;
	} ok[] = {
		{"1970-01-01T00:00:01Z", 1000},
		{"2026-12-02T10:00:00Z", 1796205600000LL},
		{"2026-12-02T10:00:00z", 1796205600000LL},
		{"2026-12-02T10:00:00.250Z", 1796205600250LL},
		{"2026-12-02T10:00:00.2Z", 1796205600200LL},
		{"2026-12-02T10:00:00.123456789Z", 1796205600123LL},
		{"2026-12-02T11:30:00+01:30", 1796205600000LL},
		{"2026-12-02T05:00:00.250-05:00", 1796205600250LL},
		{"2028-02-29T00:00:00Z", 1835395200000LL},
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		v = -1;
		if (api_time_parse_ms(ok[i].in, &v) != 0 || v != ok[i].ms)
			fail_msg("%s: got %lld, want %lld", ok[i].in, (long long)v,
				 (long long)ok[i].ms);
	}
}

static void
test_api_time_refuses_the_rest(void **state)
{
	static const char *const bad[] = {
		"",
		"yesterday",
		"2026-12-02",
		"2026-12-02 10:00:00Z",
		"2026-12-02T10:00:00",
		"2026-12-02T10:00Z",
		"2026-12-02T10:00:00.Z",
		"2026-12-02T10:00:00ZZ",
		"2026-12-02T10:00:00+0100",
		"2026-12-02T10:00:00+24:00",
		"2026-12-02T10:00:00+-1:00",
		"2026-12-02T10:00:00 01:00",
		"2026-13-02T10:00:00Z",
		"2026-12-32T10:00:00Z",
		"2026-12-02T24:00:00Z",
		"2026-12-02T10:60:00Z",
		"2026-12-02T10:00:61Z",
		"2026--1-02T10:00:00Z",
		"2026-12-02T-1:00:00Z",
		"1969-12-31T23:59:59Z",
		"1970-01-01T00:00:00Z",
		"+2026-12-02T10:00:00Z",
	};
	int64_t v;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (api_time_parse_ms(bad[i], &v) == 0)
			fail_msg("\"%s\" was accepted as %lld", bad[i], (long long)v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_time_accepts_rfc3339),
		cmocka_unit_test(test_api_time_refuses_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

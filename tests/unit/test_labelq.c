/*
 * Unit tests of the label query language and the label rules (service/labelq.c): queries that
 * parse and the canonical text they are stored as (which parses back to itself), errors that
 * name the 1-based byte position where reading stopped, the bounds (terms, key and value
 * lengths, query length), and which keys and values are labels at all.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "service/service.h"

/* text parses and is written as want, which parses to the same text again. */
static void
canon(const char *text, const char *want)
{
	struct label_query q, again;
	char msg[200], out[GROUP_QUERY_MAX], out2[GROUP_QUERY_MAX];

	if (svc_labelq_parse(text, &q, msg, sizeof(msg)) != 0)
		fail_msg("%s: %s", text, msg);
	assert_int_equal(svc_labelq_format(&q, out, sizeof(out)), 0);
	assert_string_equal(out, want);
	assert_int_equal(svc_labelq_parse(out, &again, msg, sizeof(msg)), 0);
	assert_int_equal(svc_labelq_format(&again, out2, sizeof(out2)), 0);
	assert_string_equal(out2, want);
}

/* text does not parse, and the message names position pos and says what. */
static void
bad(const char *text, int pos, const char *what)
{
	struct label_query q;
	char msg[200], at[32];

	assert_int_equal(svc_labelq_parse(text, &q, msg, sizeof(msg)), -1);
	snprintf(at, sizeof(at), "at position %d:", pos);
	if (strstr(msg, at) == NULL || strstr(msg, what) == NULL)
		fail_msg("%s: got \"%s\", want position %d and \"%s\"", text, msg, pos, what);
}

static void
test_canonical(void **state)
{
	(void)state;
	canon("dept=sales", "dept=sales");
	canon("  dept = sales  ", "dept=sales");
	canon("vip", "vip");
	canon("dept=sales and os=android", "dept=sales AND os=android");
	canon("a OR b AND c", "a OR b AND c");
	canon("(a OR b) AND c", "(a OR b) AND c");
	canon("a AND (b AND c)", "a AND (b AND c)");
	canon("not (a or b)", "NOT (a OR b)");
	canon("NOT NOT a", "NOT NOT a");
	canon("x != y", "x!=y");
	canon("note=\"<b>\\\"hi\\\"</b> ' OR 1=1; --\"", "note=\"<b>\\\"hi\\\"</b> ' OR 1=1; --\"");
	canon("k=\"\"", "k=\"\"");
	canon("k=\"back\\\\slash\"", "k=\"back\\\\slash\"");
	canon("owner=j.doe@example.com", "owner=j.doe@example.com");
	canon("dept=and", "dept=and"); /* a value is not a keyword */
	canon("team/eu=a:b+c", "team/eu=a:b+c");
}

static void
test_errors(void **state)
{
	char long_key[80], long_val[200], many[400];
	size_t k = 0;

	(void)state;
	bad("", 1, "expected a label key");
	bad("dept=", 6, "expected a value");
	bad("dept=sales AND (", 17, "expected a label key");
	bad("(a OR b", 8, "expected \")\"");
	bad("a b", 3, "expected AND, OR or the end");
	bad("a = \"open", 10, "not closed");
	bad("a=\"x\\n\"", 5, "escapes");
	bad("a ! b", 3, "expected \"!=\"");
	bad("-a", 1, "expected a label key");
	bad("a AND", 6, "expected a label key");
	bad("a=<b>", 3, "expected a value");
	memset(long_key, 'k', 64);
	long_key[64] = '\0';
	bad(long_key, 1, "longer than 63");
	snprintf(long_val, sizeof(long_val), "k=%0128d", 0);
	bad(long_val, 130, "longer than 127");
	for (int i = 0; i < 17; i++)
		k += (size_t)snprintf(many + k, sizeof(many) - k, "%sa%d", i ? " OR " : "", i);
	/* 17 terms and 16 ORs: the last OR, made once a16 is read, is one node too many. */
	bad(many, (int)strlen(many) + 1, "more than 32");
}

static void
test_rules(void **state)
{
	char big[GROUP_QUERY_MAX + 8];
	struct label_query q;
	char msg[200];

	(void)state;
	assert_true(svc_label_key_ok("dept"));
	assert_true(svc_label_key_ok("team/eu.west-1_a"));
	assert_false(svc_label_key_ok(""));
	assert_false(svc_label_key_ok("-x"));
	assert_false(svc_label_key_ok("bad key"));
	assert_false(svc_label_key_ok("<b>"));
	assert_true(svc_label_value_ok(""));
	assert_true(svc_label_value_ok("<img src=x onerror=alert(1)>\"'; DROP TABLE devices; --"));
	assert_true(svc_label_value_ok("Zürich ☂"));
	assert_false(svc_label_value_ok("a\x01"
					"b"));
	assert_false(svc_label_value_ok("tab\there"));
	assert_false(svc_label_value_ok("\xc3"));     /* cut short */
	assert_false(svc_label_value_ok("\xc0\x80")); /* overlong */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_false(svc_label_value_ok(big));
	assert_int_equal(svc_labelq_parse(big, &q, msg, sizeof(msg)), -1);
	assert_non_null(strstr(msg, "longer than"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_rules),
	};

	return cmocka_run_group_tests_name("label queries", tests, NULL, NULL);
}

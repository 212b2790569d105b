/*
 * Unit tests of the SIEM stream's messages and settings (server/siem/): an RFC 5424 message
 * is octet-counted by bytes (UTF-8 included), its structured data escapes '"', '\' and ']'
 * and nothing else, severity follows the outcome; a JSON line parses back to the very field
 * values (control characters escaped); a checkpoint carries its signed record and head hash;
 * a message that does not fit is -ENOSPC. The siem_* settings: each accepted and rejected
 * form, unknown keys left to the caller, and the checks across settings.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "b64.h"
#include "crypto.h"
#include "log.h"
#include "siem/siem.h"
#include "util.h"

static void
entry(struct audit_entry *e, const char *outcome, const char *detail)
{
	memset(e, 0, sizeof(*e));
	e->seq = 42;
	e->at_ms = 1796286225370; /* 2026-12-03T08:23:45.370Z */
	str_copy(e->actor, sizeof(e->actor), "tok_a");
	str_copy(e->action, sizeof(e->action), "token.create");
	str_copy(e->target, sizeof(e->target), "tok_b");
	str_copy(e->outcome, sizeof(e->outcome), outcome);
	str_copy(e->detail, sizeof(e->detail), detail);
	memset(e->hash, 0xab, 32);
	memset(e->prev_hash, 0x01, 32);
}

static void
test_rfc5424(void **state)
{
	struct siem_fmt f = {SIEM_RFC5424, "mdm1", "cleave@32473"};
	struct audit_entry e;
	char out[4096], *sp;
	int n;

	(void)state;
	entry(&e, "ok", "name=x\"] \\ é role=<b>");
	n = siem_format(&f, &e, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal((size_t)n, strlen(out));
	sp = strchr(out, ' ');
	assert_non_null(sp);
	/* The count is the bytes after the space: é is two of them. */
	assert_int_equal(strtol(out, NULL, 10), (long)strlen(sp + 1));
	assert_non_null(strstr(sp + 1,
			       "<109>1 2026-12-03T08:23:45.370Z mdm1 cleave - audit "
			       "[cleave@32473 seq=\"42\" at=\"2026-12-03T08:23:45.370Z\" "
			       "actor=\"tok_a\" action=\"token.create\" target=\"tok_b\" "
			       "outcome=\"ok\" detail=\"name=x\\\"\\] \\\\ é role=<b>\" hash=\""));
	assert_non_null(strstr(out, "hash=\"abababab"));
	assert_non_null(strstr(out, "prev_hash=\"01010101"));
	assert_non_null(strstr(out, "] audit 42: tok_a token.create tok_b ok"));
	entry(&e, "denied", "");
	assert_true(siem_format(&f, &e, out, sizeof(out)) > 0);
	assert_non_null(strstr(out, " <108>1 "));
	/* Too small a buffer: refused, not cut. */
	assert_int_equal(siem_format(&f, &e, out, 40), -ENOSPC);
}

static void
test_json(void **state)
{
	struct siem_fmt f = {SIEM_JSON, "mdm1", "cleave@32473"};
	const char *detail = "line1\nline2\t\x01 \"q\" \\ é";
	struct audit_entry e;
	char out[4096];
	json_t *j;
	int n;

	(void)state;
	entry(&e, "ok", detail);
	n = siem_format(&f, &e, out, sizeof(out));
	assert_true(n > 0);
	assert_int_equal(out[n - 1], '\n');
	assert_null(memchr(out, '\n', (size_t)n - 1)); /* one line */
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "seq")), 42);
	assert_string_equal(json_string_value(json_object_get(j, "at")),
			    "2026-12-03T08:23:45.370Z");
	assert_string_equal(json_string_value(json_object_get(j, "detail")), detail);
	assert_string_equal(json_string_value(json_object_get(j, "actor")), "tok_a");
	assert_int_equal(strlen(json_string_value(json_object_get(j, "hash"))), 64);
	assert_int_equal(strlen(json_string_value(json_object_get(j, "prev_hash"))), 64);
	json_decref(j);
}

static void
test_checkpoint(void **state)
{
	struct siem_fmt f = {SIEM_RFC5424, "mdm1", "cleave@1.2"};
	struct audit_ckpt_row c = {.id = 3, .seq = 40, .at_ms = 1796286225370};
	char out[4096], b64[256], head[65], want[512];
	json_t *j;

	(void)state;
	for (int i = 0; i < AUDIT_CKPT_LEN; i++)
		c.record[i] = (uint8_t)i;
	b64_encode(b64, sizeof(b64), c.record, AUDIT_CKPT_LEN);
	hex_encode(head, sizeof(head), c.record + 32, 32);
	assert_true(siem_format_ckpt(&f, &c, out, sizeof(out)) > 0);
	snprintf(want, sizeof(want),
		 "<110>1 2026-12-03T08:23:45.370Z mdm1 cleave - checkpoint [cleave@1.2 seq=\"40\" "
		 "at=\"2026-12-03T08:23:45.370Z\" head_hash=\"%s\" record=\"%s\"] checkpoint of "
		 "entry 40",
		 head, b64);
	assert_string_equal(strchr(out, ' ') + 1, want);
	f.format = SIEM_JSON;
	assert_true(siem_format_ckpt(&f, &c, out, sizeof(out)) > 0);
	j = json_loads(out, 0, NULL);
	assert_non_null(j);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "checkpoint"), "record")),
		b64);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(j, "checkpoint"), "head_hash")),
		head);
	json_decref(j);
}

static int
set(struct siem_config *c, const char *k, const char *v)
{
	return siem_set_option(c, k, v, "test");
}

static void
test_settings(void **state)
{
	struct siem_config c;

	(void)state;
	siem_config_init(&c);
	assert_int_equal(c.transport, SIEM_OFF);
	assert_string_equal(c.sd_id, "cleave@32473");
	assert_int_equal(set(&c, "siem_target", "tls://[::1]:6514"), 0);
	assert_int_equal(c.transport, SIEM_TLS);
	assert_string_equal(c.host, "::1");
	assert_int_equal(c.port, 6514);
	assert_string_equal(c.target, "tls://[::1]:6514");
	assert_int_equal(siem_config_check(&c), -1); /* TLS without a CA */
	assert_int_equal(set(&c, "siem_ca", "/nonexistent/ca.pem"), 0);
	assert_int_equal(siem_config_check(&c), -1); /* a CA file that cannot be read */
	assert_int_equal(set(&c, "siem_ca", "/dev/null"), 0);
	assert_int_equal(siem_config_check(&c), 0);
	assert_int_equal(set(&c, "siem_target", "tcp://10.0.0.5:514"), 0);
	assert_int_equal(siem_config_check(&c), -1); /* plain TCP off the loopback */
	assert_int_equal(set(&c, "siem_allow_plain_tcp", "1"), 0);
	assert_int_equal(siem_config_check(&c), 0);
	assert_int_equal(set(&c, "siem_target", "file:/var/log/a.log"), 0);
	assert_int_equal(c.transport, SIEM_FILE);
	assert_string_equal(c.path, "/var/log/a.log");
	assert_int_equal(set(&c, "siem_target", "none"), 0);
	assert_int_equal(c.transport, SIEM_OFF);
	assert_int_equal(set(&c, "siem_client_cert", "/c.pem"), 0);
	assert_int_equal(siem_config_check(&c), -1); /* without its key */

	static const char *const bad[][2] = {
		{"siem_target", "udp://h:514"},
		{"siem_target", "tls://h"},
		{"siem_target", "tls://h:0"},
		{"siem_target", "tcp://:514"},
		{"siem_target", "file:rel.log"},
		{"siem_format", "cef"},
		{"siem_sd_id", "cleave"},
		{"siem_sd_id", "cle ave@1"},
		{"siem_sd_id", "cleave@x"},
		{"siem_hostname", "a b"},
		{"siem_batch", "0"},
		{"siem_batch", "501"},
		{"siem_lease_seconds", "1"},
		{"siem_allow_plain_tcp", "yes"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		assert_int_equal(set(&c, bad[i][0], bad[i][1]), -1);
	assert_int_equal(set(&c, "listen", "1.2.3.4:5"), 1); /* not ours */
	assert_int_equal(set(&c, "siem_format", "json"), 0);
	assert_int_equal(c.format, SIEM_JSON);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc5424),
		cmocka_unit_test(test_json),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_settings),
	};

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

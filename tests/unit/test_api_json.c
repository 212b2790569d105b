/*
 * Unit tests for the strict JSON layer of server/api: take_fields (unknown fields, types, ranges,
 * string bounds, NUL, required fields), query_get percent-decoding, page_params with the cursors
 * page_cursor makes, and the policy codec's defaults and cross-field checks. A few requests also
 * go through api_handle end to end, on a real service over a temporary SQLite store, to check
 * the 404/405/401 answers and that bad bodies reach the caller as problem+json naming the field.
 * The http/ layer and device signatures are not involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "api/api_priv.h"
#include "b64.h"
#include "crypto.h"
#include "log.h"
#include "service/service.h"
#include "store/store.h"

/* ---- helpers for the problem+json answers ---- */

/* Checks rs is a problem with status and (when not NULL) a detail containing text. */
static void
expect_problem(const struct api_response *rs, int status, const char *text)
{
	json_t *j, *d;

	assert_int_equal(rs->status, status);
	assert_non_null(rs->body);
	assert_string_equal(rs->content_type, "application/problem+json");
	j = json_loadb(rs->body, rs->len, 0, NULL);
	assert_non_null(j);
	assert_int_equal(json_integer_value(json_object_get(j, "status")), status);
	assert_non_null(json_string_value(json_object_get(j, "type")));
	d = json_object_get(j, "detail");
	assert_true(json_is_string(d));
	if (text != NULL && strstr(json_string_value(d), text) == NULL)
		fail_msg("detail \"%s\" does not mention \"%s\"", json_string_value(d), text);
	json_decref(j);
}

static const char *
no_headers(void *ctx, const char *name)
{
	(void)ctx;
	(void)name;
	return NULL;
}

/* ---- take_fields ---- */

struct target {
	char name[16];
	int64_t count;
	int flag;
	json_t *obj;
	char note[8];
	int p_name, p_count, p_flag, p_obj, p_note;
};

/* Runs take_fields over json with the fields of t; rs is zeroed first and left for checks. */
static int
take(const char *json, const char *where, struct target *t, struct api_response *rs)
{
	const struct field f[] = {
		{"name", F_STR, 1, t->name, sizeof(t->name), 0, 0, &t->p_name},
		{"count", F_INT, 0, &t->count, 0, 0, 100, &t->p_count},
		{"flag", F_BOOL, 0, &t->flag, 0, 0, 0, &t->p_flag},
		{"obj", F_OBJ, 0, &t->obj, 0, 0, 0, &t->p_obj},
		{"note", F_STR_NULL, 0, t->note, sizeof(t->note), 0, 0, &t->p_note},
	};
	struct api_request rq = {.method = "POST", .path = "/", .query = "", .header = no_headers};
	struct call c = {.rq = &rq, .rs = rs};
	json_error_t e;
	json_t *j = json_loads(json, JSON_ALLOW_NUL, &e);
	int r;

	if (j == NULL)
		fail_msg("test JSON does not parse: %s: %s", json, e.text);
	memset(rs, 0, sizeof(*rs));
	memset(t, 0, sizeof(*t));
	r = take_fields(&c, j, f, ARRAY_SIZE(f), where);
	json_decref(j);
	return r;
}

static void
test_api_json_take_fields_accepts_valid(void **state)
{
	struct api_response rs;
	struct target t;

	(void)state;
	assert_int_equal(take("{\"name\":\"abc\",\"count\":7,\"flag\":true,\"obj\":{},"
			      "\"note\":null}",
			      "", &t, &rs),
			 0);
	assert_int_equal(rs.status, 0);
	assert_null(rs.body);
	assert_string_equal(t.name, "abc");
	assert_int_equal(t.count, 7);
	assert_int_equal(t.flag, 1);
	assert_non_null(t.obj);
	assert_int_equal(t.p_name, 1);
	assert_int_equal(t.p_count, 1);
	assert_int_equal(t.p_flag, 1);
	assert_int_equal(t.p_obj, 1);
	assert_int_equal(t.p_note, 0); /* null is "not given" */

	/* Optional fields left out stay unset; the bounds themselves are allowed. */
	assert_int_equal(take("{\"name\":\"\",\"note\":\"1234567\"}", "", &t, &rs), 0);
	assert_int_equal(t.p_name, 1);
	assert_string_equal(t.name, "");
	assert_int_equal(t.p_note, 1);
	assert_string_equal(t.note, "1234567");
	assert_int_equal(t.p_count, 0);
	assert_int_equal(t.p_flag, 0);
	assert_int_equal(t.p_obj, 0);
	assert_int_equal(take("{\"name\":\"x\",\"count\":0}", "", &t, &rs), 0);
	assert_int_equal(t.count, 0);
	assert_int_equal(take("{\"name\":\"x\",\"count\":100,\"flag\":false}", "", &t, &rs), 0);
	assert_int_equal(t.count, 100);
	assert_int_equal(t.flag, 0);
	assert_int_equal(t.p_flag, 1);
	assert_int_equal(take("{\"name\":\"123456789012345\"}", "", &t, &rs), 0);
	assert_string_equal(t.name, "123456789012345");
}

static void
test_api_json_take_fields_rejects_unknown_field(void **state)
{
	struct api_response rs;
	struct target t;

	(void)state;
	assert_int_equal(take("{\"name\":\"a\",\"colour\":\"red\"}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "colour");
	free(rs.body);
	assert_int_equal(take("{\"name\":\"a\",\"Name\":\"b\"}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "Name");
	free(rs.body);
	/* Nested objects say where they are. */
	assert_int_equal(take("{\"name\":\"a\",\"mode\":1}", "offline.", &t, &rs), -1);
	expect_problem(&rs, 422, "offline.mode");
	free(rs.body);
}

static void
test_api_json_take_fields_rejects_wrong_types(void **state)
{
	static const struct {
		const char *json;
		const char *field;
	} cases[] = {
		{"{\"name\":1}", "name"},
		{"{\"name\":null}", "name"},
		{"{\"name\":[\"a\"]}", "name"},
		{"{\"name\":\"a\",\"count\":\"7\"}", "count"},
		{"{\"name\":\"a\",\"count\":7.0}", "count"},
		{"{\"name\":\"a\",\"count\":true}", "count"},
		{"{\"name\":\"a\",\"count\":null}", "count"},
		{"{\"name\":\"a\",\"flag\":1}", "flag"},
		{"{\"name\":\"a\",\"flag\":\"true\"}", "flag"},
		{"{\"name\":\"a\",\"obj\":[]}", "obj"},
		{"{\"name\":\"a\",\"obj\":\"{}\"}", "obj"},
		{"{\"name\":\"a\",\"note\":5}", "note"},
		{"{\"name\":\"a\",\"note\":{}}", "note"},
	};
	struct api_response rs;
	struct target t;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(take(cases[i].json, "", &t, &rs), -1);
		expect_problem(&rs, 422, cases[i].field);
		free(rs.body);
	}
}

static void
test_api_json_take_fields_rejects_out_of_range(void **state)
{
	static const char *const bad[] = {
		"{\"name\":\"a\",\"count\":-1}",
		"{\"name\":\"a\",\"count\":101}",
		"{\"name\":\"a\",\"count\":9223372036854775807}",
		"{\"name\":\"a\",\"count\":-9223372036854775807}",
	};
	struct api_response rs;
	struct target t;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		assert_int_equal(take(bad[i], "", &t, &rs), -1);
		expect_problem(&rs, 422, "count");
		free(rs.body);
	}
}

static void
test_api_json_take_fields_rejects_long_and_nul_strings(void **state)
{
	struct api_response rs;
	struct target t;

	(void)state;
	/* name has room for 15 characters. */
	assert_int_equal(take("{\"name\":\"1234567890123456\"}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "name");
	free(rs.body);
	assert_int_equal(take("{\"name\":\"a\",\"note\":\"12345678\"}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "note");
	free(rs.body);

	assert_int_equal(take("{\"name\":\"ab\\u0000cd\"}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "NUL");
	free(rs.body);
	assert_int_equal(take("{\"name\":\"a\",\"note\":\"\\u0000\"}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "note");
	free(rs.body);
}

static void
test_api_json_take_fields_rejects_missing_required(void **state)
{
	struct api_response rs;
	struct target t;

	(void)state;
	assert_int_equal(take("{}", "", &t, &rs), -1);
	expect_problem(&rs, 422, "missing field name");
	free(rs.body);
	assert_int_equal(take("{\"count\":1}", "encryption.", &t, &rs), -1);
	expect_problem(&rs, 422, "encryption.name");
	free(rs.body);
}

/* ---- query strings ---- */

static void
test_api_json_query_get_decodes(void **state)
{
	const char *q = "a=1&b=hello%20world&c=x+y&d=%2f%2F%41&e=&ab=9&f=caf%C3%A9";
	char out[32];

	(void)state;
	assert_int_equal(query_get(q, "a", out, sizeof(out)), 1);
	assert_string_equal(out, "1");
	assert_int_equal(query_get(q, "b", out, sizeof(out)), 1);
	assert_string_equal(out, "hello world");
	assert_int_equal(query_get(q, "c", out, sizeof(out)), 1);
	assert_string_equal(out, "x y");
	assert_int_equal(query_get(q, "d", out, sizeof(out)), 1);
	assert_string_equal(out, "//A");
	assert_int_equal(query_get(q, "e", out, sizeof(out)), 1);
	assert_string_equal(out, "");
	assert_int_equal(query_get(q, "ab", out, sizeof(out)), 1);
	assert_string_equal(out, "9");
	assert_int_equal(query_get(q, "f", out, sizeof(out)), 1);
	assert_string_equal(out, "caf\xc3\xa9");
	/* %2B is a literal plus, not a space. */
	assert_int_equal(query_get("k=a%2Bb", "k", out, sizeof(out)), 1);
	assert_string_equal(out, "a+b");
}

static void
test_api_json_query_get_absent(void **state)
{
	char out[16];

	(void)state;
	assert_int_equal(query_get("", "a", out, sizeof(out)), 0);
	assert_int_equal(query_get(NULL, "a", out, sizeof(out)), 0);
	assert_int_equal(query_get("b=1&c=2", "a", out, sizeof(out)), 0);
	/* Names match whole: neither a prefix nor a suffix counts. */
	assert_int_equal(query_get("ab=1&ba=2", "a", out, sizeof(out)), 0);
	assert_int_equal(query_get("a", "a", out, sizeof(out)), 0);
}

static void
test_api_json_query_get_rejects_malformed(void **state)
{
	static const char *const bad[] = {
		"a=%zz", "a=%4", "a=%", "a=x%g1", "a=%00", "a=ab%0", "x=1&a=%%41",
	};
	char out[16];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (query_get(bad[i], "a", out, sizeof(out)) != -1)
			fail_msg("query %s was accepted", bad[i]);
	}
}

static void
test_api_json_query_get_too_long(void **state)
{
	char out[8];

	(void)state;
	assert_int_equal(query_get("a=1234567", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "1234567");
	assert_int_equal(query_get("a=12345678", "a", out, sizeof(out)), -1);
	/* The limit is on the decoded value. */
	assert_int_equal(query_get("a=%41%42%43%44%45%46%47", "a", out, sizeof(out)), 1);
	assert_string_equal(out, "ABCDEFG");
	assert_int_equal(query_get("a=%41%42%43%44%45%46%47%48", "a", out, sizeof(out)), -1);
}

/* ---- paging ---- */

static int
page(const char *query, size_t *limit, int64_t *after, struct api_response *rs)
{
	struct api_request rq = {
		.method = "GET", .path = "/", .query = query, .header = no_headers};
	struct call c = {.rq = &rq, .rs = rs};

	memset(rs, 0, sizeof(*rs));
	return page_params(&c, limit, after);
}

static void
test_api_json_page_params_limit_bounds(void **state)
{
	static const char *const bad[] = {
		"limit=0",  "limit=201", "limit=-1",  "limit=abc",
		"limit=5x", "limit=",    "limit=%zz", "limit=1e2",
	};
	struct api_response rs;
	size_t limit = 0;
	int64_t after = -1;

	(void)state;
	assert_int_equal(page("", &limit, &after, &rs), 0);
	assert_int_equal(limit, 50);
	assert_int_equal(after, 0);
	assert_int_equal(rs.status, 0);
	assert_int_equal(page("limit=1", &limit, &after, &rs), 0);
	assert_int_equal(limit, 1);
	assert_int_equal(page("other=x&limit=200", &limit, &after, &rs), 0);
	assert_int_equal(limit, 200);

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (page(bad[i], &limit, &after, &rs) != -1)
			fail_msg("query %s was accepted", bad[i]);
		expect_problem(&rs, 400, NULL);
		free(rs.body);
	}
}

static void
test_api_json_page_cursor_round_trip(void **state)
{
	static const int64_t lasts[] = {0, 1, 123, 4294967296LL, 9223372036854775807LL};
	struct api_response rs;
	size_t limit = 0;
	int64_t after = -1;
	char q[128];
	json_t *cur;

	(void)state;
	/* A short page is the last one. */
	cur = page_cursor(10, 3, 50);
	assert_true(json_is_null(cur));
	json_decref(cur);

	for (size_t i = 0; i < ARRAY_SIZE(lasts); i++) {
		cur = page_cursor(lasts[i], 25, 25);
		assert_true(json_is_string(cur));
		snprintf(q, sizeof(q), "limit=25&cursor=%s", json_string_value(cur));
		json_decref(cur);
		assert_int_equal(page(q, &limit, &after, &rs), 0);
		assert_int_equal(limit, 25);
		assert_int_equal(after, lasts[i]);
	}
}

static void
test_api_json_page_params_rejects_bad_cursor(void **state)
{
	static const char *const raws[] = {"c:-5", "x:5", "c:", "c:12a", "12"};
	struct api_response rs;
	size_t limit = 0;
	int64_t after = -1;
	char enc[64], q[96];

	(void)state;
	assert_int_equal(page("cursor=not*base64", &limit, &after, &rs), -1);
	expect_problem(&rs, 400, "cursor");
	free(rs.body);
	for (size_t i = 0; i < ARRAY_SIZE(raws); i++) {
		assert_true(b64url_encode(enc, sizeof(enc), raws[i], strlen(raws[i])) >= 0);
		snprintf(q, sizeof(q), "cursor=%s", enc);
		if (page(q, &limit, &after, &rs) != -1)
			fail_msg("cursor %s (%s) was accepted", raws[i], enc);
		expect_problem(&rs, 400, "cursor");
		free(rs.body);
	}
}

/* ---- policy codec ---- */

static void
test_api_json_policy_defaults(void **state)
{
	struct policy_content c;

	(void)state;
	memset(&c, 0x55, sizeof(c));
	assert_int_equal(api_policy_parse("{}", &c), 0);
	assert_string_equal(c.cipher, "aes-256-xts");
	assert_int_equal(c.key_rotation_days, 90);
	assert_int_equal(c.lock_after_hours, 72);
	assert_int_equal(c.wipe_after_days, 0);
	assert_int_equal(c.max_failed_unlocks, 10);
	assert_string_equal(c.min_agent_version, "");

	/* A partial nested object keeps the defaults of its other fields. */
	assert_int_equal(api_policy_parse("{\"offline\":{\"wipe_after_days\":30}}", &c), 0);
	assert_int_equal(c.wipe_after_days, 30);
	assert_int_equal(c.lock_after_hours, 72);
	assert_int_equal(c.key_rotation_days, 90);
}

static void
test_api_json_policy_full(void **state)
{
	struct policy_content c;

	(void)state;
	assert_int_equal(api_policy_parse("{\"encryption\":{\"cipher\":\"aes-256-xts\","
					  "\"key_rotation_days\":30},"
					  "\"offline\":{\"lock_after_hours\":24,"
					  "\"wipe_after_days\":2},"
					  "\"max_failed_unlocks\":0,"
					  "\"min_agent_version\":\"1.12.3\"}",
					  &c),
			 0);
	assert_int_equal(c.key_rotation_days, 30);
	assert_int_equal(c.lock_after_hours, 24);
	assert_int_equal(c.wipe_after_days, 2);
	assert_int_equal(c.max_failed_unlocks, 0);
	assert_string_equal(c.min_agent_version, "1.12.3");
}

static void
test_api_json_policy_rejects(void **state)
{
	static const char *const bad[] = {
		/* cipher */
		"{\"encryption\":{\"cipher\":\"aes-128-xts\"}}",
		"{\"encryption\":{\"cipher\":\"\"}}",
		"{\"encryption\":{\"cipher\":\"AES-256-XTS\"}}",
		/* wipe must come strictly after lock */
		"{\"offline\":{\"lock_after_hours\":72,\"wipe_after_days\":3}}",
		"{\"offline\":{\"lock_after_hours\":48,\"wipe_after_days\":1}}",
		"{\"offline\":{\"wipe_after_days\":2}}", /* the default lock is 72 h */
		/* version */
		"{\"min_agent_version\":\"v1.2\"}",
		"{\"min_agent_version\":\"1.2.3-rc1\"}",
		"{\"min_agent_version\":\"1 2\"}",
		"{\"min_agent_version\":\"...\"}",
		"{\"min_agent_version\":\"1..2\"}",
		"{\"min_agent_version\":\".1\"}",
		"{\"min_agent_version\":\"1.\"}",
		/* shape */
		"{\"encryption\":{\"mode\":\"xts\"}}",
		"{\"offline\":{\"lock_after_hours\":-1}}",
		"{\"max_failed_unlocks\":1001}",
		"{\"encryption\":\"aes-256-xts\"}",
		"{\"extra\":1}",
		"[]",
		"{",
		"",
	};
	struct policy_content c;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		if (api_policy_parse(bad[i], &c) != -1)
			fail_msg("policy %s was accepted", bad[i]);
	}
	/* The limits that are allowed together. */
	assert_int_equal(api_policy_parse("{\"offline\":{\"lock_after_hours\":72,"
					  "\"wipe_after_days\":4}}",
					  &c),
			 0);
	assert_int_equal(api_policy_parse("{\"offline\":{\"lock_after_hours\":0,"
					  "\"wipe_after_days\":1}}",
					  &c),
			 0);
}

/* ---- api_handle end to end ---- */

struct e2e {
	char dir[64];
	char path[128];
	struct store *st;
	struct ed25519_key *key;
	struct service *svc;
	struct api *api;
	char *admin;
};

static int e2e_teardown(void **state);

static int64_t
fixed_clock(void)
{
	return 1700000000000LL;
}

static int
e2e_setup(void **state)
{
	struct e2e *e = calloc(1, sizeof(*e));
	struct service_config cfg = {
		.command_ttl_s = 3600,
		.enroll_ttl_s = 86400,
		.nonce_ttl_s = 300,
		.sig_skew_s = 300,
		.max_wait_s = 30,
		.public_url = "https://127.0.0.1:8443",
	};

	if (e == NULL)
		return -1;
	snprintf(e->dir, sizeof(e->dir), "/tmp/cleave-test-api-XXXXXX");
	if (mkdtemp(e->dir) == NULL) {
		free(e);
		return -1;
	}
	snprintf(e->path, sizeof(e->path), "%s/cleave.db", e->dir);
	*state = e;
	if (store_sqlite_open(e->path, &e->st) != 0 || ed25519_key_generate(&e->key) != 0 ||
	    service_new(e->st, e->key, &cfg, fixed_clock, &e->svc) != 0 ||
	    api_new(e->svc, &e->api) != 0 || service_bootstrap_admin(e->svc, &e->admin) != 0 ||
	    e->admin == NULL) {
		e2e_teardown(state);
		*state = NULL;
		return -1;
	}
	return 0;
}

static int
e2e_teardown(void **state)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	struct e2e *e = *state;
	char p[160];

	if (e == NULL)
		return 0;
	free(e->admin);
	api_free(e->api);
	service_free(e->svc);
	ed25519_key_free(e->key);
	if (e->st != NULL)
		e->st->ops->close(e->st);
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		snprintf(p, sizeof(p), "%s%s", e->path, suffixes[i]);
		unlink(p);
	}
	rmdir(e->dir);
	free(e);
	return 0;
}

struct hdrs {
	const char *authorization;
	const char *content_type;
};

static const char *
hdr(void *ctx, const char *name)
{
	const struct hdrs *h = ctx;

	if (strcasecmp(name, "Authorization") == 0)
		return h->authorization;
	if (strcasecmp(name, "Content-Type") == 0)
		return h->content_type;
	return NULL;
}

/* Sends one request; rs is filled (free rs->body). auth: a full Authorization value or NULL. */
static void
call_api(struct e2e *e, const char *method, const char *path, const char *query, const char *auth,
	 const char *body, struct api_response *rs)
{
	struct hdrs h = {.authorization = auth, .content_type = "application/json"};
	struct api_request rq = {
		.method = method,
		.path = path,
		.query = query ? query : "",
		.header = hdr,
		.header_ctx = &h,
		.body = body,
		.body_len = body ? strlen(body) : 0,
		.client = "127.0.0.1",
	};

	memset(rs, 0, sizeof(*rs));
	api_handle(e->api, &rq, rs);
}

static char *
bearer_of(const struct e2e *e)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "Bearer %s", e->admin);
	return buf;
}

static void
expect_problem_type(const struct api_response *rs, const char *slug)
{
	json_t *j = json_loadb(rs->body, rs->len, 0, NULL);
	char want[96];

	assert_non_null(j);
	snprintf(want, sizeof(want), "urn:cleave:problem:%s", slug);
	assert_string_equal(json_string_value(json_object_get(j, "type")), want);
	json_decref(j);
}

static void
test_api_json_handle_unknown_path_404(void **state)
{
	struct e2e *e = *state;
	struct api_response rs;
	static const char *const paths[] = {
		"/nope", "/api/v1/devices/", "/api/v1/devicesx", "/api/v1/devices/a/b", "/healthz/",
		""};

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++) {
		call_api(e, "GET", paths[i], NULL, bearer_of(e), NULL, &rs);
		expect_problem(&rs, 404, NULL);
		expect_problem_type(&rs, "no-such-endpoint");
		free(rs.body);
	}
	call_api(e, "GET", "/healthz", NULL, NULL, NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_non_null(strstr(rs.body, "\"ok\""));
	free(rs.body);
}

static void
test_api_json_handle_wrong_method_405(void **state)
{
	struct e2e *e = *state;
	struct api_response rs;

	call_api(e, "DELETE", "/healthz", NULL, NULL, NULL, &rs);
	expect_problem(&rs, 405, NULL);
	expect_problem_type(&rs, "method-not-allowed");
	free(rs.body);
	/* Checked before authentication: no token needed to learn the method is wrong. */
	call_api(e, "PATCH", "/api/v1/devices/dev_1", NULL, NULL, NULL, &rs);
	expect_problem(&rs, 405, NULL);
	free(rs.body);
	call_api(e, "get", "/healthz", NULL, NULL, NULL, &rs);
	expect_problem(&rs, 405, NULL);
	free(rs.body);
}

static void
test_api_json_handle_admin_needs_token_401(void **state)
{
	struct e2e *e = *state;
	struct api_response rs;
	static const char *const bad[] = {NULL,          "",           "Bearer ",
					  "Bearer nope", "Basic YTpi", "bearer"};
	json_t *j;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		call_api(e, "GET", "/api/v1/devices", NULL, bad[i], NULL, &rs);
		expect_problem(&rs, 401, NULL);
		expect_problem_type(&rs, "unauthorized");
		free(rs.body);
	}
	/* The same request with the admin token works. */
	call_api(e, "GET", "/api/v1/devices", NULL, bearer_of(e), NULL, &rs);
	assert_int_equal(rs.status, 200);
	assert_string_equal(rs.content_type, "application/json");
	j = json_loadb(rs.body, rs.len, 0, NULL);
	assert_non_null(j);
	assert_true(json_is_array(json_object_get(j, "items")));
	assert_int_equal(json_array_size(json_object_get(j, "items")), 0);
	assert_true(json_is_null(json_object_get(j, "next_cursor")));
	json_decref(j);
	free(rs.body);
}

static void
test_api_json_handle_bad_input_problems(void **state)
{
	struct e2e *e = *state;
	struct api_response rs;

	call_api(e, "GET", "/api/v1/devices", "limit=0", bearer_of(e), NULL, &rs);
	expect_problem(&rs, 400, "limit");
	free(rs.body);
	call_api(e, "GET", "/api/v1/devices", "status=%zz", bearer_of(e), NULL, &rs);
	expect_problem(&rs, 400, NULL);
	free(rs.body);

	call_api(e, "PUT", "/api/v1/policies/base", NULL, bearer_of(e),
		 "{\"encryption\":{\"cipher\":\"aes-256-xts\",\"mode\":\"x\"}}", &rs);
	expect_problem(&rs, 422, "encryption.mode");
	free(rs.body);
	call_api(e, "PUT", "/api/v1/policies/base", NULL, bearer_of(e),
		 "{\"max_failed_unlocks\":\"3\"}", &rs);
	expect_problem(&rs, 422, "max_failed_unlocks");
	free(rs.body);
	call_api(e, "PUT", "/api/v1/policies/base", NULL, bearer_of(e), "{\"offline\":", &rs);
	expect_problem(&rs, 400, NULL);
	expect_problem_type(&rs, "malformed-json");
	free(rs.body);
	call_api(e, "PUT", "/api/v1/policies/base", NULL, bearer_of(e), "[1]", &rs);
	expect_problem(&rs, 400, NULL);
	free(rs.body);
	call_api(e, "PUT", "/api/v1/policies/base", NULL, bearer_of(e),
		 "{\"min_agent_version\":\"1\\u0000\"}", &rs);
	assert_true(rs.status >= 400 && rs.status < 500);
	free(rs.body);

	/* Nothing above was stored; a valid body is. */
	call_api(e, "GET", "/api/v1/policies/base", NULL, bearer_of(e), NULL, &rs);
	expect_problem(&rs, 404, NULL);
	free(rs.body);
	call_api(e, "PUT", "/api/v1/policies/base", NULL, bearer_of(e),
		 "{\"offline\":{\"lock_after_hours\":24}}", &rs);
	assert_int_equal(rs.status, 201);
	free(rs.body);
}

int
main(void)
{
#define E(name) cmocka_unit_test_setup_teardown(name, e2e_setup, e2e_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_json_take_fields_accepts_valid),
		cmocka_unit_test(test_api_json_take_fields_rejects_unknown_field),
		cmocka_unit_test(test_api_json_take_fields_rejects_wrong_types),
		cmocka_unit_test(test_api_json_take_fields_rejects_out_of_range),
		cmocka_unit_test(test_api_json_take_fields_rejects_long_and_nul_strings),
		cmocka_unit_test(test_api_json_take_fields_rejects_missing_required),
		cmocka_unit_test(test_api_json_query_get_decodes),
		cmocka_unit_test(test_api_json_query_get_absent),
		cmocka_unit_test(test_api_json_query_get_rejects_malformed),
		cmocka_unit_test(test_api_json_query_get_too_long),
		cmocka_unit_test(test_api_json_page_params_limit_bounds),
		cmocka_unit_test(test_api_json_page_cursor_round_trip),
		cmocka_unit_test(test_api_json_page_params_rejects_bad_cursor),
		cmocka_unit_test(test_api_json_policy_defaults),
		cmocka_unit_test(test_api_json_policy_full),
		cmocka_unit_test(test_api_json_policy_rejects),
		E(test_api_json_handle_unknown_path_404),
		E(test_api_json_handle_wrong_method_405),
		E(test_api_json_handle_admin_needs_token_401),
		E(test_api_json_handle_bad_input_problems),
	};
#undef E

	log_set_level(LOG_LVL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

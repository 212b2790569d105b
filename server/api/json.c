/*
 * Strict JSON decoding and the small encoders shared by the handlers: request bodies must be
 * objects whose every field is known and of the right type; strings are bounded and may not
 * contain NUL; numbers are integers within stated bounds. Query strings are percent-decoded
 * with the same bounds. Nothing here calls the service.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api_priv.h"
#include "b64.h"

void
reply_json(struct api_response *rs, int status, json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	free(rs->body);
	rs->body = NULL;
	rs->len = 0;
	if (s == NULL) {
		rs->status = 503;
		return;
	}
	rs->status = status;
	rs->body = s;
	rs->len = strlen(s);
	rs->content_type = "application/json";
}

void
reply_empty(struct api_response *rs, int status)
{
	free(rs->body);
	rs->body = NULL;
	rs->len = 0;
	rs->status = status;
}

json_t *
body_object(struct call *c)
{
	const char *ct = c->rq->header(c->rq->header_ctx, "Content-Type");
	json_error_t e;
	json_t *j;
	char msg[200];

	if (c->rq->body_len == 0)
		return json_object();
	/* Like GitHub's API, read the body as JSON whatever curl -d labels it; only forms that
	 * cannot be JSON are refused. */
	if (ct != NULL && strncasecmp(ct, "multipart/", 10) == 0) {
		reply_problem(c->rs, P_MEDIA_TYPE, "request bodies must be application/json");
		return NULL;
	}
	j = json_loadb(c->rq->body, c->rq->body_len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL) {
		snprintf(msg, sizeof(msg), "line %d, column %d: %s", e.line, e.column, e.text);
		reply_problem(c->rs, P_MALFORMED, msg);
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		reply_problem(c->rs, P_MALFORMED, "the body must be a JSON object");
		return NULL;
	}
	return j;
}

static const char *
type_word(enum field_type t)
{
	switch (t) {
	case F_STR:
		return "a string";
	case F_STR_NULL:
		return "a string or null";
	case F_INT:
		return "an integer";
	case F_BOOL:
		return "true or false";
	case F_ARR:
		return "an array";
	default:
		return "an object";
	}
}

static int
take_one(const struct field *f, json_t *v, char *msg, size_t cap, const char *where)
{
	if (f->type == F_STR_NULL && json_is_null(v))
		return 0;
	if ((f->type == F_STR || f->type == F_STR_NULL) && json_is_string(v)) {
		size_t n = json_string_length(v);
		const char *s = json_string_value(v);

		if (memchr(s, '\0', n) != NULL) {
			snprintf(msg, cap, "%s%s must not contain NUL characters", where, f->name);
			return -1;
		}
		if (n >= f->cap) {
			snprintf(msg, cap, "%s%s is longer than %zu characters", where, f->name,
				 f->cap - 1);
			return -1;
		}
		memcpy(f->out, s, n + 1);
		if (f->present)
			*f->present = 1;
		return 0;
	}
	if (f->type == F_INT && json_is_integer(v)) {
		json_int_t x = json_integer_value(v);

		if (x < f->min || x > f->max) {
			snprintf(msg, cap, "%s%s must be between %lld and %lld", where, f->name,
				 (long long)f->min, (long long)f->max);
			return -1;
		}
		*(int64_t *)f->out = x;
		if (f->present)
			*f->present = 1;
		return 0;
	}
	if (f->type == F_BOOL && json_is_boolean(v)) {
		*(int *)f->out = json_is_true(v);
		if (f->present)
			*f->present = 1;
		return 0;
	}
	if ((f->type == F_OBJ && json_is_object(v)) || (f->type == F_ARR && json_is_array(v))) {
		*(json_t **)f->out = v;
		if (f->present)
			*f->present = 1;
		return 0;
	}
	snprintf(msg, cap, "%s%s must be %s", where, f->name, type_word(f->type));
	return -1;
}

int
take_fields(struct call *c, json_t *obj, const struct field *f, size_t n, const char *where)
{
	const char *key;
	json_t *v;
	char msg[256];

	json_object_foreach(obj, key, v)
	{
		size_t i = 0;

		while (i < n && strcmp(f[i].name, key) != 0)
			i++;
		if (i == n) {
			snprintf(msg, sizeof(msg), "unknown field %s%.64s", where, key);
			reply_problem(c->rs, SVC_INVALID, msg);
			return -1;
		}
		if (take_one(&f[i], v, msg, sizeof(msg), where) != 0) {
			reply_problem(c->rs, SVC_INVALID, msg);
			return -1;
		}
	}
	for (size_t i = 0; i < n; i++) {
		if (f[i].required && json_object_get(obj, f[i].name) == NULL) {
			snprintf(msg, sizeof(msg), "missing field %s%s", where, f[i].name);
			reply_problem(c->rs, SVC_INVALID, msg);
			return -1;
		}
	}
	return 0;
}

int
api_hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int
query_get(const char *query, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	const char *p = query;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, '&');
		size_t seg = end ? (size_t)(end - p) : strlen(p);

		if (seg > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t k = 0;

			for (size_t i = nl + 1; i < seg; i++) {
				int ch = (unsigned char)p[i];

				if (ch == '%') {
					int hi = i + 2 < seg ? api_hexval(p[i + 1]) : -1;
					int lo = i + 2 < seg ? api_hexval(p[i + 2]) : -1;

					if (hi < 0 || lo < 0)
						return -1;
					ch = hi * 16 + lo;
					i += 2;
				} else if (ch == '+') {
					ch = ' ';
				}
				if (ch == 0 || k + 1 >= cap)
					return -1;
				out[k++] = (char)ch;
			}
			out[k] = '\0';
			return 1;
		}
		p = end ? end + 1 : NULL;
	}
	return 0;
}

int
page_params(struct call *c, size_t *limit, int64_t *after)
{
	return page_params_max(c, 50, STORE_LIST_MAX, limit, after);
}

int
page_params_max(struct call *c, size_t dflt, size_t max, size_t *limit, int64_t *after)
{
	char v[64];
	char *end;
	int r;

	*limit = dflt;
	*after = 0;
	r = query_get(c->rq->query, "limit", v, sizeof(v));
	if (r == 1) {
		long long x = strtoll(v, &end, 10);

		if (*end != '\0' || x < 1 || (size_t)x > max) {
			snprintf(v, sizeof(v), "limit must be between 1 and %zu", max);
			reply_problem(c->rs, P_BAD_REQUEST, v);
			return -1;
		}
		*limit = (size_t)x;
	}
	r = r < 0 ? r : query_get(c->rq->query, "cursor", v, sizeof(v));
	if (r == 1) {
		char dec[32];
		long n = b64url_decode(dec, sizeof(dec) - 1, v, strlen(v));
		long long x;

		if (n <= 2 || memcmp(dec, "c:", 2) != 0) {
			reply_problem(c->rs, P_BAD_REQUEST,
				      "cursor is not valid; use next_cursor "
				      "from the previous page");
			return -1;
		}
		dec[n] = '\0';
		x = strtoll(dec + 2, &end, 10);
		if (*end != '\0' || x < 0) {
			reply_problem(c->rs, P_BAD_REQUEST, "cursor is not valid");
			return -1;
		}
		*after = x;
	}
	if (r < 0) {
		reply_problem(c->rs, P_BAD_REQUEST, "a query parameter is malformed or too long");
		return -1;
	}
	return 0;
}

json_t *
page_cursor(int64_t last, size_t n, size_t limit)
{
	char raw[32], enc[64];

	if (n < limit)
		return json_null();
	snprintf(raw, sizeof(raw), "c:%lld", (long long)last);
	b64url_encode(enc, sizeof(enc), raw, strlen(raw));
	return json_string(enc);
}

json_t *
jtime_ms(int64_t ms)
{
	char buf[40];
	struct tm tm;
	time_t t = (time_t)(ms / 1000);

	if (ms <= 0)
		return json_null();
	gmtime_r(&t, &tm);
	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	return json_string(buf);
}

json_t *
jtime(int64_t s)
{
	char buf[32];
	struct tm tm;
	time_t t = (time_t)s;

	if (s <= 0)
		return json_null();
	gmtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return json_string(buf);
}

json_t *
jb64(const void *data, size_t n)
{
	char buf[1024];

	if (b64_encode(buf, sizeof(buf), data, n) < 0)
		return json_null();
	return json_string(buf);
}

int
unb64(const char *s, void *out, size_t n)
{
	uint8_t buf[1024];
	long r = b64_decode(buf, sizeof(buf), s, strlen(s));

	if (r != (long)n)
		return -1;
	memcpy(out, buf, n);
	return 0;
}

#define TIME_ID_CURSOR_MAX 160

json_t *
time_id_cursor(const char *tag, int64_t at, const char *id)
{
	char raw[STORE_ID_MAX + 40], enc[TIME_ID_CURSOR_MAX];

	snprintf(raw, sizeof(raw), "%s:%lld:%s", tag, (long long)at, id);
	if (b64url_encode(enc, sizeof(enc), raw, strlen(raw)) < 0)
		return json_null();
	return json_string(enc);
}

int
time_id_cursor_param(struct call *c, const char *tag, int64_t *at, char *idbuf, size_t cap)
{
	char v[TIME_ID_CURSOR_MAX], dec[TIME_ID_CURSOR_MAX], *end;
	int r = query_get(c->rq->query, "cursor", v, sizeof(v));
	size_t tl = strlen(tag);
	long n;

	if (r == 0 || (r == 1 && v[0] == '\0'))
		return 0;
	n = r == 1 ? b64url_decode(dec, sizeof(dec) - 1, v, strlen(v)) : -1;
	if (n > (long)tl && memcmp(dec, tag, tl) == 0 && dec[tl] == ':') {
		dec[n] = '\0';
		*at = strtoll(dec + tl + 1, &end, 10);
		if (*end == ':' && end > dec + tl + 1 && *at >= 0 && end[1] != '\0' &&
		    strlen(end + 1) < cap) {
			snprintf(idbuf, cap, "%s", end + 1);
			return 0;
		}
	}
	reply_problem(c->rs, P_BAD_REQUEST,
		      "cursor is not valid; use next_cursor from the previous page");
	return -1;
}

/*
 * Handlers of the audit log routes: the filtered list (actor, action, target, time range) with
 * cursor paging, the chain and checkpoint verification, and the export as JSON lines. The
 * export is bounded per request (limit entries, about 4 MiB) and resumable: the reply names the cursor of
 * the next request in a header, so a log of any size leaves in pieces that each fit in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_priv.h"
#include "crypto.h"

#define EXPORT_DEFAULT 1000
#define EXPORT_MAX     5000
#define EXPORT_BYTES   (4u << 20) /* a piece ends after the entry that passes this size */

int
api_time_parse_ms(const char *s, int64_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec, used = 0, ms = 0, digits = 0;
	int64_t off = 0, t;

	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
	    used != 19)
		return -1;
	s += used;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*s - '0');
		if (digits == 0)
			return -1;
		for (; digits < 3; digits++)
			ms *= 10;
	}
	if ((*s == '+' || *s == '-') && strlen(s) == 6 && s[3] == ':') {
		int oh, om;

		if (sscanf(s + 1, "%2d:%2d", &oh, &om) != 2 || oh < 0 || oh > 23 || om < 0 ||
		    om > 59)
			return -1;
		off = (int64_t)(oh * 3600 + om * 60) * (*s == '-' ? -1 : 1);
	} else if (strcmp(s, "Z") != 0 && strcmp(s, "z") != 0) {
		return -1;
	}
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 ||
	    mi > 59 || sec < 0 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm);
	if (t < 0)
		return -1;
	*out = (t - off) * 1000 + ms;
	return *out > 0 ? 0 : -1;
}

/* The filter values of one request; the strings live here while the filter points at them. */
struct audit_query {
	struct audit_filter f;
	char actor[64], action[64], target[64];
};

/*
 * Reads actor, action, target, since and until from the query into q (paging aside). On a bad
 * value fills c->rs with 400 and returns -1.
 */
static int
audit_filters(struct call *c, struct audit_query *q)
{
	char since[48], until[48];
	int ra = query_get(c->rq->query, "actor", q->actor, sizeof(q->actor));
	int rc = query_get(c->rq->query, "action", q->action, sizeof(q->action));
	int rt = query_get(c->rq->query, "target", q->target, sizeof(q->target));
	int rs = query_get(c->rq->query, "since", since, sizeof(since));
	int ru = query_get(c->rq->query, "until", until, sizeof(until));

	if (ra < 0 || rc < 0 || rt < 0 || rs < 0 || ru < 0) {
		reply_problem(c->rs, P_BAD_REQUEST, "a filter is malformed or too long");
		return -1;
	}
	q->f.actor = ra == 1 && q->actor[0] ? q->actor : NULL;
	q->f.action = rc == 1 && q->action[0] ? q->action : NULL;
	q->f.target = rt == 1 && q->target[0] ? q->target : NULL;
	if ((rs == 1 && since[0] && api_time_parse_ms(since, &q->f.since_ms) != 0) ||
	    (ru == 1 && until[0] && api_time_parse_ms(until, &q->f.until_ms) != 0)) {
		reply_problem(c->rs, P_BAD_REQUEST,
			      "since and until must be RFC 3339 times, e.g. 2026-12-02T10:00:00Z");
		return -1;
	}
	if (q->f.since_ms > 0 && q->f.until_ms > 0 && q->f.until_ms <= q->f.since_ms) {
		reply_problem(c->rs, P_BAD_REQUEST, "until must be later than since");
		return -1;
	}
	return 0;
}

void
h_audit_list(struct call *c)
{
	struct audit_entry *items = calloc(STORE_LIST_MAX, sizeof(*items));
	struct audit_query q = {0};
	struct svc_error err = {0};
	size_t n = 0;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (audit_filters(c, &q) == 0 && page_params(c, &q.f.limit, &q.f.after) == 0) {
		if (svc_audit_list(c->a->svc, &c->who, &q.f, items, &n, &err) != 0) {
			reply_svc_error(c->rs, &err);
		} else {
			arr = json_array();
			for (size_t i = 0; i < n; i++)
				json_array_append_new(arr, audit_json(&items[i]));
			reply_json(c->rs, 200,
				   json_pack("{s:o, s:o}", "items", arr, "next_cursor",
					     page_cursor(n ? items[n - 1].seq : 0, n, q.f.limit)));
		}
	}
	free(items);
}

/* One export line: the entry as the list shows it plus prev_hash, so the chain can be redone. */
static int
export_line(const struct audit_entry *e, char **buf, size_t *len, size_t *cap)
{
	json_t *j = audit_json(e);
	char h[65], *s;
	size_t n;

	hex_encode(h, sizeof(h), e->prev_hash, sizeof(e->prev_hash));
	if (j != NULL)
		json_object_set_new(j, "prev_hash", json_string(h));
	s = j ? json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(j);
	if (s == NULL)
		return -1;
	n = strlen(s);
	if (*len + n + 2 > *cap) {
		size_t nc = (*cap + n + 2) * 2;
		char *nb = realloc(*buf, nc);

		if (nb == NULL) {
			free(s);
			return -1;
		}
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, s, n);
	(*buf)[*len + n] = '\n';
	*len += n + 1;
	free(s);
	return 0;
}

/*
 * Up to q->f.limit entries from the cursor on, read a page at a time, into the reply body, and
 * no more once the body passed EXPORT_BYTES: the seq of the last one into *last, and into
 * *more whether the piece ended at a bound (so there may be more after it).
 */
static int
export_body(struct call *c, struct audit_query *q, struct audit_entry *page, char **buf,
	    size_t *len, int64_t *last, int *more, struct svc_error *err)
{
	size_t want = q->f.limit, total = 0, cap = 0, n = 0;

	*last = q->f.after;
	*more = 0;
	while (total < want && !*more) {
		q->f.limit = MIN(want - total, (size_t)STORE_LIST_MAX);
		q->f.after = *last;
		if (svc_audit_list(c->a->svc, &c->who, &q->f, page, &n, err) != 0)
			return -1;
		for (size_t i = 0; i < n && !*more; i++) {
			if (export_line(&page[i], buf, len, &cap) != 0) {
				err->kind = SVC_UNAVAILABLE;
				str_copy(err->detail, sizeof(err->detail), "out of memory");
				return -1;
			}
			*last = page[i].seq;
			total++;
			*more = *len >= EXPORT_BYTES;
		}
		if (n < q->f.limit)
			break;
	}
	*more |= total == want;
	return 0;
}

void
h_audit_export(struct call *c)
{
	struct audit_entry *page = calloc(STORE_LIST_MAX, sizeof(*page));
	struct audit_query q = {0};
	struct svc_error err = {0};
	char *buf = NULL;
	size_t len = 0;
	int64_t last = 0;
	int more = 0;
	json_t *cur;

	if (page == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (audit_filters(c, &q) != 0 ||
	    page_params_max(c, EXPORT_DEFAULT, EXPORT_MAX, &q.f.limit, &q.f.after) != 0)
		goto out;
	if (export_body(c, &q, page, &buf, &len, &last, &more, &err) != 0) {
		free(buf);
		reply_svc_error(c->rs, &err);
		goto out;
	}
	c->rs->status = 200;
	c->rs->body = buf ? buf : calloc(1, 1);
	c->rs->len = len;
	c->rs->content_type = "application/x-ndjson";
	/* A piece that ended at a bound may have more after it; a short one is the end. */
	cur = page_cursor(last, more, 1);
	if (json_is_string(cur))
		str_copy(c->rs->next_cursor, sizeof(c->rs->next_cursor), json_string_value(cur));
	json_decref(cur);
	if (c->rs->body == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
out:
	free(page);
}

/* How long a verify request waits parked for the verifier thread before it answers 503. */
#define VERIFY_WAIT_S 50

/* ?full=1 (or true) asks for the full verification; 0, false or nothing for incremental. */
static int
verify_mode(struct call *c, int *full)
{
	char v[8] = "";
	int got = query_get(c->rq->query, "full", v, sizeof(v));

	*full = 0;
	if (got == 0 || (got == 1 && (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)))
		return 0;
	if (got == 1 && (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)) {
		*full = 1;
		return 0;
	}
	reply_problem(c->rs, SVC_INVALID, "full must be 1, true, 0 or false");
	return -1;
}

/* Parks the request until the verifier thread's run ends (svc wake SVC_VERIFY_WAKE). */
static void
verify_park(struct call *c, uint64_t gen)
{
	int64_t now = service_now_ms(c->a->svc);

	if (c->rq->resumed && (c->rq->timed_out || c->rq->park_deadline_ms <= now)) {
		reply_problem(c->rs, SVC_UNAVAILABLE,
			      "the verification is still running; ask again to get its result");
		return;
	}
	c->rs->park = 1;
	c->rs->park_gen = gen;
	c->rs->status = 503;
	c->rs->park_deadline_ms =
		c->rq->resumed ? c->rq->park_deadline_ms : now + VERIFY_WAIT_S * 1000;
	str_copy(c->rs->park_device, sizeof(c->rs->park_device), SVC_VERIFY_WAKE);
}

static json_t *
verify_json(const struct audit_report *rep)
{
	json_t *last = json_null();
	char h[65];

	if (rep->last_ckpt_seq > 0) {
		hex_encode(h, sizeof(h), rep->last_ckpt_hash, sizeof(rep->last_ckpt_hash));
		last = json_pack("{s:I, s:o, s:s}", "seq", (json_int_t)rep->last_ckpt_seq, "at",
				 jtime_ms(rep->last_ckpt_ms), "head_hash", h);
	}
	return json_pack(
		"{s:b, s:I, s:o, s:s, s:I, s:I, s:o, s:s, s:I, s:I, s:I, s:o}", "ok", rep->ok,
		"entries", (json_int_t)rep->entries, "first_bad_seq",
		rep->ok || rep->first_bad_seq == 0 ? json_null() : json_integer(rep->first_bad_seq),
		"problem", rep->problem, "checkpoints", (json_int_t)rep->checkpoints,
		"checkpoint_file_lines", (json_int_t)rep->file_checkpoints, "last_checkpoint", last,
		"mode", rep->full ? "full" : "incremental", "verified_from",
		(json_int_t)rep->from_seq, "checked", (json_int_t)rep->checked, "took_ms",
		(json_int_t)rep->took_ms, "full_verified_at",
		rep->full_at_ms > 0 ? jtime_ms(rep->full_at_ms) : json_null());
}

void
h_audit_verify(struct call *c)
{
	struct audit_report rep;
	struct svc_error err = {0};
	/* Read before looking, so that a run ending meanwhile is never missed. */
	uint64_t gen = svc_wake_gen(c->a->svc, SVC_VERIFY_WAKE);
	int full, r;

	if (c->rq->resumed) {
		r = svc_audit_verify_result(c->a->svc, &rep, &err);
	} else {
		if (verify_mode(c, &full) != 0)
			return;
		r = svc_audit_verify(c->a->svc, &c->who, full, &rep, &err);
	}
	if (r == -EINPROGRESS) {
		verify_park(c, gen);
		return;
	}
	if (r != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	reply_json(c->rs, 200, verify_json(&rep));
}

/* The audit stream to a SIEM: the stored position against the head, and this server's part. */
void
h_audit_stream(struct call *c)
{
	struct audit_stream_view v;
	struct svc_error err = {0};
	int64_t lag;

	if (svc_audit_stream(c->a->svc, &c->who, &v, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	lag = v.head - v.row.last_seq;
	reply_json(c->rs, 200,
		   json_pack("{s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:{s:o, s:s, s:b, s:b, s:o}}",
			     "stream", v.row.name[0] ? v.row.name : "siem", "position",
			     (json_int_t)v.row.last_seq, "head", (json_int_t)v.head, "lag",
			     (json_int_t)(lag > 0 ? lag : 0), "holder",
			     v.row.holder[0] ? json_string(v.row.holder) : json_null(),
			     "lease_until",
			     v.row.holder[0] ? jtime_ms(v.row.lease_until_ms) : json_null(),
			     "updated_at",
			     v.row.updated_at_ms > 0 ? jtime_ms(v.row.updated_at_ms) : json_null(),
			     "this_server", "target",
			     v.target[0] ? json_string(v.target) : json_null(), "format", v.format,
			     "sending", v.sending, "connected", v.connected, "problem",
			     v.problem[0] ? json_string(v.problem) : json_null()));
}

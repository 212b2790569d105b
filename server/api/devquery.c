/*
 * The console's list routes (issue 9): GET /api/v1/devices with search, filters, sorts and
 * opaque keyset cursors; GET /api/v1/devices/summary for the compliance dashboard;
 * GET /api/v1/commands, the queue across devices, newest first; POST /api/v1/commands/bulk,
 * by a list of ids (answered when done) or by the list's filters (a durable bulk operation,
 * answered 202 at once: bulkops.c lists, shows and cancels it), and
 * GET /api/v1/devices/count, the number a filter matches, which such a bulk must confirm.
 * Every bad query parameter is a 400 that names it. Rules (compliance, roles) are the service's.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "b64.h"
#include "crypto.h"

#define Q_MAX      200 /* longest search text */
#define CURSOR_MAX 512

static void
bad(struct call *c, const char *msg)
{
	reply_problem(c->rs, P_BAD_REQUEST, msg);
}

/*
 * Reads query parameter name into out; 1 given, 0 absent. A malformed or over-long value, or
 * one not in allowed (a NULL-terminated list, or NULL for any), replies 400 and returns -1.
 */
static int
param(struct call *c, const char *name, char *out, size_t cap, const char *const *allowed)
{
	char msg[192];
	int r = query_get(c->rq->query, name, out, cap);

	if (r == 1 && out[0] == '\0')
		r = 0; /* an empty field of a form means "any" */
	if (r == 1 && allowed != NULL) {
		size_t i;

		for (i = 0; allowed[i] != NULL && strcmp(allowed[i], out) != 0; i++)
			;
		if (allowed[i] == NULL) {
			size_t k = (size_t)snprintf(msg, sizeof(msg), "%s must be one of", name);

			for (i = 0; allowed[i] != NULL && k < sizeof(msg); i++)
				k += (size_t)snprintf(msg + k, sizeof(msg) - k, "%s %s",
						      i ? "," : "", allowed[i]);
			bad(c, msg);
			return -1;
		}
	}
	if (r < 0) {
		snprintf(msg, sizeof(msg), "%s is malformed or longer than %zu bytes", name,
			 cap - 1);
		bad(c, msg);
	}
	return r;
}

static const char *const statuses[] = {"active", "retired", NULL};
static const char *const corp_states[] = {"active", "locked", "wiped", NULL};
static const char *const sorts[] = {"last_checkin", "owner", "enrolled", NULL};
static const char *const orders[] = {"asc", "desc", NULL};
static const char *const bools[] = {"true", "false", NULL};

/* reason=code[,code...] into COMPLY_* bits. */
static int
reasons_param(struct call *c, unsigned *mask)
{
	char v[256], msg[160], *t, *next;
	int r = param(c, "reason", v, sizeof(v), NULL);

	*mask = 0;
	if (r != 1)
		return r;
	for (t = v; t != NULL; t = next) {
		unsigned bit;

		next = strchr(t, ',');
		if (next != NULL)
			*next++ = '\0';
		bit = svc_compliance_parse(t);

		if (bit == 0) {
			snprintf(
				msg, sizeof(msg),
				"reason: %.40s is not a compliance reason code (see schema/api.md)",
				t);
			bad(c, msg);
			return -1;
		}
		*mask |= bit;
	}
	return 1;
}

/* A positive integer parameter no larger than max; 0 when absent. */
static int
int_param(struct call *c, const char *name, int64_t max, int64_t *out)
{
	char v[32], msg[96], *end;
	int r = param(c, name, v, sizeof(v), NULL);
	long long x;

	*out = 0;
	if (r != 1)
		return r;
	x = strtoll(v, &end, 10);
	if (*end != '\0' || x < 1 || x > max) {
		snprintf(msg, sizeof(msg), "%s must be a whole number from 1 to %lld", name,
			 (long long)max);
		bad(c, msg);
		return -1;
	}
	*out = x;
	return 1;
}

static const char sort_codes[] = "loe"; /* enum device_sort order */

/*
 * The device list's cursor: base64url of "d1:<sort><order>:<rowid>:<key>", the key being the
 * last row's sort value (the owner, or a time). It only fits a list with the same sort.
 */
static json_t *
device_cursor(const struct device_query *q, const struct device *last)
{
	char raw[STORE_OWNER_MAX + 64], enc[CURSOR_MAX];

	if (q->sort == DEV_SORT_OWNER)
		snprintf(raw, sizeof(raw), "d1:%c%c:%lld:%s", sort_codes[q->sort],
			 q->desc ? 'd' : 'a', (long long)last->rowid, last->owner);
	else
		snprintf(raw, sizeof(raw), "d1:%c%c:%lld:%lld", sort_codes[q->sort],
			 q->desc ? 'd' : 'a', (long long)last->rowid,
			 (long long)(q->sort == DEV_SORT_ENROLLED ? last->enrolled_at
								  : last->last_seen_at));
	if (b64url_encode(enc, sizeof(enc), raw, strlen(raw)) < 0)
		return json_null();
	return json_string(enc);
}

static int
cursor_param(struct call *c, struct device_query *q, char *text, size_t cap)
{
	char v[CURSOR_MAX], dec[CURSOR_MAX], *p, *end;
	int r = param(c, "cursor", v, sizeof(v), NULL);
	long n;

	if (r != 1)
		return r;
	n = b64url_decode(dec, sizeof(dec) - 1, v, strlen(v));
	if (n < 8 || memcmp(dec, "d1:", 3) != 0 || dec[5] != ':')
		goto invalid;
	dec[n] = '\0';
	if (dec[3] != sort_codes[q->sort] || dec[4] != (q->desc ? 'd' : 'a')) {
		bad(c, "cursor belongs to a list with another sort or order; start from the first "
		       "page");
		return -1;
	}
	q->after_rowid = strtoll(dec + 6, &end, 10);
	if (*end != ':' || q->after_rowid < 0)
		goto invalid;
	p = end + 1;
	if (q->sort == DEV_SORT_OWNER) {
		snprintf(text, cap, "%s", p);
		q->after_text = text;
	} else {
		q->after_key = strtoll(p, &end, 10);
		if (*end != '\0' || end == p)
			goto invalid;
	}
	q->has_after = 1;
	return 1;
invalid:
	bad(c, "cursor is not valid; use next_cursor from the previous page");
	return -1;
}

/* Storage for the text parameters of a device query (the query points into it). */
struct dq_text {
	char q[Q_MAX + 1], status[16], owner[STORE_OWNER_MAX], policy[64];
	char desired[16], reported[16], compliant[8], sort[16], order[8];
	char after[STORE_OWNER_MAX];
	char label[GROUP_QUERY_MAX], group[64];
	struct label_query lq;
	struct group_q gq;
};

/*
 * label= (a label query: "dept=sales", "vip", "os=android AND NOT lost") and group= (a group's
 * name): parsed into t and pointed at by q. 400 naming the position of a bad query; 404 for
 * an unknown group.
 */
static int
label_params(struct call *c, struct device_query *q, struct dq_text *t)
{
	struct svc_error err = {0};
	int r;

	if (param(c, "label", t->label, sizeof(t->label), NULL) < 0 ||
	    param(c, "group", t->group, sizeof(t->group), NULL) < 0)
		return -1;
	if (t->label[0] != '\0') {
		if (svc_labelq_parse(t->label, &t->lq, t->gq.msg, sizeof(t->gq.msg)) != 0) {
			char msg[240];

			snprintf(msg, sizeof(msg), "label: %s", t->gq.msg);
			bad(c, msg);
			return -1;
		}
		q->labels = &t->lq;
	}
	if (t->group[0] != '\0') {
		r = svc_group_resolve(c->a->svc, &c->who, t->group, &t->gq, &err);
		if (r != 0) {
			reply_svc_error(c->rs, &err);
			return -1;
		}
		q->group = &t->gq.q;
	}
	return 0;
}

static int
device_params(struct call *c, struct device_query *q, struct dq_text *t)
{
	int64_t days = 0, limit = 0;

	memset(q, 0, sizeof(*q));
	q->compliant = -1;
	if (param(c, "q", t->q, sizeof(t->q), NULL) < 0 ||
	    param(c, "status", t->status, sizeof(t->status), statuses) < 0 ||
	    param(c, "owner", t->owner, sizeof(t->owner), NULL) < 0 ||
	    param(c, "policy", t->policy, sizeof(t->policy), NULL) < 0 ||
	    param(c, "desired", t->desired, sizeof(t->desired), corp_states) < 0 ||
	    param(c, "reported", t->reported, sizeof(t->reported), corp_states) < 0 ||
	    param(c, "compliant", t->compliant, sizeof(t->compliant), bools) < 0 ||
	    param(c, "sort", t->sort, sizeof(t->sort), sorts) < 0 ||
	    param(c, "order", t->order, sizeof(t->order), orders) < 0 ||
	    reasons_param(c, &q->reasons) < 0 || int_param(c, "not_seen_days", 3650, &days) < 0 ||
	    int_param(c, "limit", STORE_LIST_MAX, &limit) < 0 || label_params(c, q, t) < 0)
		return -1;
	q->q = t->q[0] ? t->q : NULL;
	q->status = t->status[0] ? t->status : NULL;
	q->owner = t->owner[0] ? t->owner : NULL;
	q->policy = t->policy[0] ? t->policy : NULL;
	q->desired = t->desired[0] ? t->desired : NULL;
	q->reported = t->reported[0] ? t->reported : NULL;
	if (t->compliant[0])
		q->compliant = strcmp(t->compliant, "true") == 0;
	if (days > 0)
		q->seen_before = service_now_ms(c->a->svc) / 1000 - days * 86400;
	q->sort = strcmp(t->sort, "owner") == 0      ? DEV_SORT_OWNER
		  : strcmp(t->sort, "enrolled") == 0 ? DEV_SORT_ENROLLED
						     : DEV_SORT_LAST_SEEN;
	/* Owners read A to Z; times newest first, unless asked otherwise. */
	q->desc = t->order[0] ? strcmp(t->order, "desc") == 0 : q->sort != DEV_SORT_OWNER;
	q->limit = limit > 0 ? (size_t)limit : 50;
	return cursor_param(c, q, t->after, sizeof(t->after)) < 0 ? -1 : 0;
}

void
h_devices_list(struct call *c)
{
	struct device *items = calloc(STORE_LIST_MAX + 1, sizeof(*items));
	struct dq_text *t = calloc(1, sizeof(*t));
	size_t limit;
	struct svc_error err = {0};
	struct device_query q;
	size_t n = 0;
	json_t *arr;

	if (items == NULL || t == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	} else if (device_params(c, &q, t) == 0) {
		/* One row more than the page: a next cursor only when there is a next page. */
		limit = q.limit++;
		if (svc_device_query(c->a->svc, &c->who, &q, items, &n, &err) != 0) {
			reply_svc_error(c->rs, &err);
		} else {
			q.limit = limit;
			arr = json_array();
			for (size_t i = 0; i < n && i < limit; i++)
				json_array_append_new(arr, device_json(c->a, &items[i]));
			reply_json(c->rs, 200,
				   json_pack("{s:o, s:o, s:s, s:s}", "items", arr, "next_cursor",
					     n > limit ? device_cursor(&q, &items[limit - 1])
						       : json_null(),
					     "sort", sorts[q.sort], "order",
					     q.desc ? "desc" : "asc"));
		}
	}
	free(items);
	free(t);
}

void
h_devices_count(struct call *c)
{
	struct dq_text *t = calloc(1, sizeof(*t));
	struct svc_error err = {0};
	struct device_query q;
	int64_t n = 0;

	if (t == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	else if (device_params(c, &q, t) != 0)
		;
	else if (svc_device_count(c->a->svc, &c->who, &q, &n, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, json_pack("{s:I}", "count", (json_int_t)n));
	free(t);
}

void
h_devices_summary(struct call *c)
{
	struct device_summary *s = malloc(sizeof(*s));
	struct svc_error err = {0};
	json_t *reasons, *states;

	if (s == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (svc_device_summary(c->a->svc, &c->who, s, &err) != 0) {
		reply_svc_error(c->rs, &err);
		free(s);
		return;
	}
	reasons = json_array();
	for (unsigned i = 0; i < COMPLY_COUNT; i++)
		json_array_append_new(reasons, json_pack("{s:s, s:s, s:I}", "code",
							 svc_compliance_code(1u << i), "text",
							 svc_compliance_text(1u << i), "count",
							 (json_int_t)s->reasons[i]));
	states = json_array();
	for (size_t i = 0; i < s->nstates; i++)
		json_array_append_new(states,
				      json_pack("{s:s, s:s, s:I}", "desired", s->states[i].desired,
						"reported", s->states[i].reported, "count",
						(json_int_t)s->states[i].n));
	reply_json(c->rs, 200,
		   json_pack("{s:I, s:I, s:I, s:o, s:o, s:{s:I, s:I, s:I}, s:o}", "total",
			     (json_int_t)s->total, "compliant", (json_int_t)s->compliant,
			     "not_compliant", (json_int_t)(s->total - s->compliant), "reasons",
			     reasons, "corporate_states", states, "hypervisor_keys", "tpm_endorsed",
			     (json_int_t)s->tpm_endorsed, "tpm_unendorsed",
			     (json_int_t)s->tpm_unendorsed, "software",
			     (json_int_t)s->software_keys, "computed_at",
			     jtime(service_now_ms(c->a->svc) / 1000)));
	free(s);
}

static const char *const cmd_statuses[] = {"queued", "delivered", "acknowledged", "completed",
					   "failed", "canceled",  "expired",      NULL};
static const char *const cmd_types[] = {"wipe",   "lock",    "unlock", "rekey",
					"retire", "refresh", "policy", NULL};

void
h_commands_list(struct call *c)
{
	struct command *items = calloc(STORE_LIST_MAX + 1, sizeof(*items));
	struct command_filter f = {.newest_first = 1};
	size_t limit;
	char status[16], type[16], device[STORE_ID_MAX];
	struct svc_error err = {0};
	int hs, ht, hd;
	size_t n = 0;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if ((hs = param(c, "status", status, sizeof(status), cmd_statuses)) < 0 ||
	    (ht = param(c, "type", type, sizeof(type), cmd_types)) < 0 ||
	    (hd = param(c, "device_id", device, sizeof(device), NULL)) < 0 ||
	    page_params(c, &f.limit, &f.after) != 0)
		goto out;
	f.status = hs == 1 ? status : NULL;
	f.type = ht == 1 ? type : NULL;
	f.device_id = hd == 1 ? device : NULL;
	limit = f.limit++; /* one more: a next cursor only when there is a next page */
	if (svc_command_list(c->a->svc, &c->who, &f, items, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	arr = json_array();
	for (size_t i = 0; i < n && i < limit; i++)
		json_array_append_new(arr, command_json(&items[i]));
	reply_json(c->rs, 200,
		   json_pack("{s:o, s:o}", "items", arr, "next_cursor",
			     n > limit ? page_cursor(items[limit - 1].rowid, limit, limit)
				       : json_null()));
out:
	free(items);
}

static const char *const bulk_words[] = {"queued", "already_pending", "refused"};

/* Copies device_ids (an array of 1..SVC_BULK_MAX id strings) into ids; 400 otherwise. */
static int
bulk_ids(struct call *c, json_t *arr, char (*ids)[STORE_ID_MAX], size_t *n)
{
	char msg[96];
	size_t i;
	json_t *v;

	if (!json_is_array(arr) || json_array_size(arr) == 0 ||
	    json_array_size(arr) > SVC_BULK_MAX) {
		snprintf(msg, sizeof(msg), "device_ids must be an array of 1 to %d device ids",
			 SVC_BULK_MAX);
		bad(c, msg);
		return -1;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || json_string_length(v) == 0 ||
		    json_string_length(v) >= STORE_ID_MAX) {
			snprintf(msg, sizeof(msg), "device_ids[%zu] must be a device id", i);
			bad(c, msg);
			return -1;
		}
		str_copy(ids[i], STORE_ID_MAX, json_string_value(v));
	}
	*n = json_array_size(arr);
	return 0;
}

/* ---- bulk by filter ---- */

/* The device list's filters a bulk may use (its sort, order, limit and cursor make no sense). */
static const char *const filter_keys[] = {
	"q",         "status", "owner",         "policy", "desired", "reported",
	"compliant", "reason", "not_seen_days", "label",  "group",   NULL};

/* Appends "&key=value" (value percent-encoded) to qs; -1 when it does not fit. */
static int
qs_add(char *qs, size_t cap, size_t *len, const char *key, const char *value)
{
	size_t k = *len;
	int w = snprintf(qs + k, cap - k, "%s%s=", k ? "&" : "", key);

	if (w < 0 || (size_t)w >= cap - k)
		return -1;
	k += (size_t)w;
	for (const unsigned char *v = (const unsigned char *)value; *v; v++) {
		if (k + 4 >= cap)
			return -1;
		if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
		    (*v >= '0' && *v <= '9') || *v == '-' || *v == '_' || *v == '.' || *v == ',')
			qs[k++] = (char)*v;
		else
			k += (size_t)snprintf(qs + k, cap - k, "%%%02X", *v);
	}
	qs[k] = '\0';
	*len = k;
	return 0;
}

/* One filter member's value as the query string's text; -1 when it has no such form. */
static int
filter_value(json_t *v, char *out, size_t cap)
{
	size_t k = 0, i;
	json_t *e;

	if (json_is_string(v))
		snprintf(out, cap, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, cap, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
	if (!json_is_array(v))
		return json_is_string(v) || json_is_integer(v) || json_is_boolean(v) ? 0 : -1;
	out[0] = '\0';
	json_array_foreach(v, i, e)
	{
		int w;

		if (!json_is_string(e))
			return -1;
		w = snprintf(out + k, cap - k, "%s%s", i ? "," : "", json_string_value(e));
		if (w < 0 || (size_t)w >= cap - k)
			return -1;
		k += (size_t)w;
	}
	return 0;
}

/*
 * The filter object as the query string GET /api/v1/devices would take, so that one parser
 * reads both; 400 naming a member that is not one of the list's filters or has no such form.
 */
static int
filter_query(struct call *c, json_t *filter, char *qs, size_t cap)
{
	char msg[160], v[GROUP_QUERY_MAX];
	const char *key;
	size_t len = 0, i;
	json_t *val;

	qs[0] = '\0';
	json_object_foreach(filter, key, val)
	{
		for (i = 0; filter_keys[i] != NULL && strcmp(filter_keys[i], key) != 0; i++)
			;
		if (filter_keys[i] == NULL) {
			snprintf(msg, sizeof(msg),
				 "filter.%.40s is not one of the device list's filters (q, status, "
				 "owner, policy, desired, reported, compliant, reason, "
				 "not_seen_days, label, group)",
				 key);
			bad(c, msg);
			return -1;
		}
		if (json_is_null(val))
			continue;
		if (filter_value(val, v, sizeof(v)) != 0 || qs_add(qs, cap, &len, key, v) != 0) {
			snprintf(
				msg, sizeof(msg),
				"filter.%s must be a string (reason: a string or an array of them)",
				key);
			bad(c, msg);
			return -1;
		}
	}
	return 0;
}

/* The request's hash for its Idempotency-Key: path and body. */
static void
request_hash(struct call *c, uint8_t hash[32])
{
	const void *parts[] = {c->rq->path, c->rq->body ? c->rq->body : ""};
	size_t lens[] = {strlen(c->rq->path) + 1, c->rq->body_len};

	crypto_sha256_parts(parts, lens, 2, hash);
}

/* Parses filter into q (t holds its text) through the device list's own parser. */
static int
filter_params(struct call *c, json_t *filter, struct device_query *q, struct dq_text *t)
{
	char qs[4096];
	struct api_request rq = *c->rq;
	struct call fc = *c;

	if (filter_query(c, filter, qs, sizeof(qs)) != 0)
		return -1;
	rq.query = qs;
	fc.rq = &rq;
	return device_params(&fc, q, t);
}

static void
bulk_by_filter(struct call *c, json_t *body)
{
	char type[16] = "", reason[STORE_TEXT_MAX] = "";
	int64_t expected = 0;
	json_t *filter = NULL;
	const struct field f[] = {
		{"type", F_STR, 1, type, sizeof(type), 0, 0, NULL},
		{"reason", F_STR, 0, reason, 440, 0, 0, NULL},
		{"filter", F_OBJ, 1, &filter, 0, 0, 0, NULL},
		{"expected_count", F_INT, 1, &expected, 0, 1, 100000000, NULL},
	};
	const char *key = c->rq->header(c->rq->header_ctx, "Idempotency-Key");
	struct dq_text *t = calloc(1, sizeof(*t));
	struct bulk_op *b = calloc(1, sizeof(*b));
	struct svc_bulk_request rq = {0};
	struct approval pending = {0};
	struct svc_error err = {0};
	struct device_query q;
	int64_t matched = 0;
	uint8_t hash[32];
	char *fjson = NULL;
	int created = 0;

	if (t == NULL || b == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		goto out;
	}
	if (key != NULL && (strlen(key) == 0 || strlen(key) >= sizeof(b->idempotency_key))) {
		bad(c, "Idempotency-Key must be 1-127 characters");
		goto out;
	}
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0 || filter_params(c, filter, &q, t) != 0)
		goto out;
	fjson = json_dumps(filter, JSON_COMPACT | JSON_SORT_KEYS);
	request_hash(c, hash);
	rq = (struct svc_bulk_request){type,     reason, &q,   fjson ? fjson : "{}",
				       expected, key,    hash, &pending};
	if (svc_bulk_start(c->a->svc, &c->who, &rq, b, &created, &matched, &err) != 0) {
		reply_problem_with(c->rs, err.kind, err.detail,
				   err.kind == SVC_CONFLICT
					   ? json_pack("{s:I}", "count", (json_int_t)matched)
					   : NULL);
		goto out;
	}
	if (created && strcmp(b->state, "awaiting") == 0) { /* the two-person rule holds it */
		pending_reply(c, &pending, json_pack("{s:o}", "bulk", bulk_json(b)));
		goto out;
	}
	reply_json(c->rs, 202, bulk_json(b));
	snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/commands/bulk/%s", b->id);
out:
	free(fjson);
	free(t);
	free(b);
}

/*
 * "group": "name" targets a group's devices: the same durable bulk as a filter of that group
 * alone ({"filter": {"group": "name"}}), with its count confirmed by expected_count.
 */
static int
bulk_group_filter(struct call *c, json_t *body)
{
	json_t *g = json_object_get(body, "group");

	if (json_object_get(body, "filter") != NULL ||
	    json_object_get(body, "device_ids") != NULL) {
		bad(c, "give one of device_ids, filter or group");
		return -1;
	}
	if (!json_is_string(g)) {
		bad(c, "group must be a group's name");
		return -1;
	}
	json_object_set_new(body, "filter", json_pack("{s:O}", "group", g));
	json_object_del(body, "group");
	return 0;
}

void
h_commands_bulk(struct call *c)
{
	char type[16] = "", reason[STORE_TEXT_MAX] = "";
	const struct field f[] = {
		{"type", F_STR, 1, type, sizeof(type), 0, 0, NULL},
		{"reason", F_STR, 0, reason, 440, 0, 0, NULL},
	};
	char(*ids)[STORE_ID_MAX] = calloc(SVC_BULK_MAX, STORE_ID_MAX);
	struct svc_bulk_result *res = calloc(SVC_BULK_MAX, sizeof(*res));
	struct svc_error err = {0};
	size_t n = 0, counts[3] = {0, 0, 0};
	struct approval pending;
	int waits = 0;
	json_t *body = NULL, *arr = NULL, *out;

	if (ids == NULL || res == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		goto done;
	}
	body = body_object(c);
	if (body == NULL)
		goto done;
	if (json_object_get(body, "group") != NULL && bulk_group_filter(c, body) != 0)
		goto done;
	if (json_object_get(body, "filter") != NULL) {
		if (json_object_get(body, "device_ids") != NULL)
			bad(c, "give device_ids or filter, not both");
		else
			bulk_by_filter(c, body);
		goto done;
	}
	arr = json_incref(json_object_get(body, "device_ids"));
	json_object_del(body, "device_ids");
	if (arr == NULL) {
		bad(c, "device_ids is required");
		goto done;
	}
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0 || bulk_ids(c, arr, ids, &n) != 0)
		goto done;
	if (svc_command_bulk_checked(c->a->svc, &c->who, type, reason,
				     (const char(*)[STORE_ID_MAX])ids, n, res, &pending, &waits,
				     &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto done;
	}
	if (waits) {
		pending_reply(c, &pending, NULL);
		goto done;
	}
	out = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *r = json_pack("{s:s, s:s}", "device_id", res[i].device_id, "outcome",
				      bulk_words[res[i].outcome]);

		counts[res[i].outcome]++;
		json_object_set_new(r, "command_id",
				    res[i].command_id[0] ? json_string(res[i].command_id)
							 : json_null());
		if (res[i].detail[0])
			json_object_set_new(r, "detail", json_string(res[i].detail));
		json_array_append_new(out, r);
	}
	reply_json(c->rs, 200,
		   json_pack("{s:s, s:I, s:I, s:I, s:o}", "type", type, "queued",
			     (json_int_t)counts[BULK_QUEUED], "already_pending",
			     (json_int_t)counts[BULK_PENDING], "refused",
			     (json_int_t)counts[BULK_REFUSED], "results", out));
done:
	json_decref(arr);
	json_decref(body);
	free(ids);
	free(res);
}

int
api_devices_matching(struct call *c, json_t *filter, char (*ids)[STORE_ID_MAX], size_t max,
		     size_t *n)
{
	struct device *rows = calloc(max + 1, sizeof(*rows));
	struct dq_text *t = calloc(1, sizeof(*t));
	struct svc_error err = {0};
	struct device_query q;
	int r = -1;

	*n = 0;
	if (rows == NULL || t == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	} else if (filter_params(c, filter, &q, t) == 0) {
		q.sort = DEV_SORT_ROWID;
		q.has_after = 0;
		q.limit = max + 1;
		if (svc_device_query(c->a->svc, &c->who, &q, rows, n, &err) != 0)
			reply_svc_error(c->rs, &err);
		else
			r = 0;
		for (size_t i = 0; r == 0 && i < *n && i < max; i++)
			str_copy(ids[i], STORE_ID_MAX, rows[i].id);
	}
	free(rows);
	free(t);
	return r;
}

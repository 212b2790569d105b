/*
 * Integration tests of the console's list routes (issue 9): GET /api/v1/devices with search,
 * filters, sorts and keyset cursors, GET /api/v1/devices/summary, GET /api/v1/commands and
 * POST /api/v1/commands/bulk, against the real cleave-server with simulated devices. Where a
 * state takes time to arise (a device offline for days, another model) the test edits the
 * SQLite file, as the passage of time or another phone would.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgtest.h"
#include "testlib.h"
#include "util.h"

#define NDEV 12

struct env {
	struct srv s;
	struct client *admin;
	struct device_sim dev[NDEV];
	char fp[NDEV][64]; /* hypervisor key fingerprints as the API shows them */
};

static const char *const owners[NDEV] = {
	"alice@corp.example",        "Alan@corp.example",  "bob@corp.example",
	"<b>carol</b>@corp.example", "dave@corp.example",  "erin@corp.example",
	"frank@corp.example",        "grace@corp.example", "heidi@corp.example",
	"ivan@corp.example",         "judy@corp.example",  "mallory@corp.example",
};

/* When set (test_device_query_pg.c), every server runs on a fresh database of this cluster. */
static struct pgtest *env_pg;

static int
db_exec(struct env *e, const char *sql)
{
	return srv_db_exec(&e->s, sql);
}

static int
start(struct srv *s, const char *tag)
{
	if (srv_init(s, tag) != 0 || srv_use_pg(s, env_pg) != 0)
		return -1;
	return srv_start(s, NULL);
}

/* GET path as the admin; the JSON body (caller decrefs) or NULL, status into *status. */
static json_t *
get_json(struct env *e, const char *path, long *status)
{
	struct resp r;
	json_t *j = NULL;

	*status = -1;
	if (client_req(e->admin, "GET", path, NULL, NULL, &r) != 0)
		return NULL;
	*status = r.status;
	j = resp_json(&r);
	resp_free(&r);
	return j;
}

/* Starts a server and enrolls NDEV devices, one per owner. */
static int
env_up(struct env *e, const char *tag)
{
	struct client *dc;
	int ok = 0;

	memset(e, 0, sizeof(*e));
	if (start(&e->s, tag) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	dc = client_new(&e->s, NULL);
	for (int i = 0; e->admin && dc && i < NDEV; i++) {
		char tok[128], path[96];
		struct resp r;
		long st;
		json_t *j;

		if (dev_init(&e->dev[i]) != 0 ||
		    admin_etoken(e->admin, owners[i], 1, tok, sizeof(tok)) != 0 ||
		    dev_enroll(&e->dev[i], dc, tok, &r) != 0)
			break;
		st = r.status;
		resp_free(&r);
		if (st != 201)
			break;
		snprintf(path, sizeof(path), "/api/v1/devices/%s", e->dev[i].id);
		j = get_json(e, path, &st);
		str_copy(e->fp[i], sizeof(e->fp[i]),
			 json_string_value(json_object_get(json_object_get(j, "hypervisor"),
							   "key_fingerprint"))
				 ?: "");
		json_decref(j);
		ok = i + 1;
	}
	client_free(dc);
	return ok == NDEV ? 0 : -1;
}

static void
env_down(struct env *e)
{
	for (int i = 0; i < NDEV; i++)
		dev_fini(&e->dev[i]);
	client_free(e->admin);
	e->admin = NULL;
	srv_cleanup(&e->s);
}

/* Percent-encodes s for a query value. */
static void
qenc(const char *s, char *out, size_t cap)
{
	size_t k = 0;

	for (; *s && k + 4 < cap; s++) {
		unsigned char ch = (unsigned char)*s;

		if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.')
			out[k++] = (char)ch;
		else
			k += (size_t)snprintf(out + k, cap - k, "%%%02X", ch);
	}
	out[k] = '\0';
}

/* The ids of a list's items, comma-joined into out; the count. */
static size_t
item_ids(json_t *j, char *out, size_t cap)
{
	json_t *items = json_object_get(j, "items"), *v;
	size_t i, k = 0;

	out[0] = '\0';
	json_array_foreach(items, i, v)
	{
		k += (size_t)snprintf(out + k, k < cap ? cap - k : 0, "%s,",
				      json_string_value(json_object_get(v, "id")));
	}
	return json_array_size(items);
}

/* The devices a query finds: their count, and whether device idx is among them. */
static size_t
find(struct env *e, const char *query, int idx, int *has)
{
	char path[512], ids[8192];
	long st;
	json_t *j;
	size_t n;

	snprintf(path, sizeof(path), "/api/v1/devices?%s", query);
	j = get_json(e, path, &st);
	n = st == 200 ? item_ids(j, ids, sizeof(ids)) : (size_t)-1;
	*has = idx >= 0 && st == 200 && strstr(ids, e->dev[idx].id) != NULL;
	json_decref(j);
	return n;
}

static void
test_search(void)
{
	struct env e;
	char q[256], enc[256];
	int has;

	CHECK(env_up(&e, "dq_search") == 0, "server and %d devices", NDEV);
	/* Owner prefix, ASCII case ignored: "al" finds alice and Alan, not the others. */
	CHECK(find(&e, "q=AL", 0, &has) == 2 && has, "owner prefix, any case");
	/* Markup in an owner is only text to search. */
	qenc("<b>car", enc, sizeof(enc));
	snprintf(q, sizeof(q), "q=%s", enc);
	CHECK(find(&e, q, 3, &has) == 1 && has, "owner with markup");
	/* A device id prefix. */
	snprintf(q, sizeof(q), "q=%.12s", e.dev[5].id);
	CHECK(find(&e, q, 5, &has) >= 1 && has, "device id prefix");
	snprintf(q, sizeof(q), "q=%s", e.dev[5].id);
	CHECK(find(&e, q, 5, &has) == 1 && has, "full device id");
	/* The hypervisor key fingerprint, with or without its SHA256: prefix, or a part. */
	qenc(e.fp[7], enc, sizeof(enc));
	snprintf(q, sizeof(q), "q=%s", enc);
	CHECK(find(&e, q, 7, &has) == 1 && has, "full fingerprint %s", e.fp[7]);
	{
		char part[16];

		/* Cut before encoding: a cut after could split a "%2B" of a '+' in two. */
		snprintf(part, sizeof(part), "%.14s", e.fp[7] + 7);
		qenc(part, enc, sizeof(enc));
	}
	snprintf(q, sizeof(q), "q=%s", enc);
	CHECK(find(&e, q, 7, &has) >= 1 && has, "fingerprint prefix without SHA256:");
	/* The model ("name"): one phone is another model. */
	snprintf(q, sizeof(q), "UPDATE devices SET model = 'ThinkPad X1' WHERE id = '%s'",
		 e.dev[9].id);
	CHECK(db_exec(&e, q) == 0, "set a model");
	CHECK(find(&e, "q=thinkpad", 9, &has) == 1 && has, "model prefix");
	CHECK(find(&e, "q=nobody-has-this", -1, &has) == 0, "no match is an empty page");
	/* Exact owner (the old filter) still works. */
	CHECK(find(&e, "owner=bob%40corp.example", 2, &has) == 1 && has, "owner=");
	env_down(&e);
}

/* Collects every page of a query with limit 5; checks order and no repeats. */
static void
walk(struct env *e, const char *query, const char *key, int desc, int nocase, size_t *total)
{
	char path[1024], cursor[600] = "", seen[NDEV * 40] = "", prev[300] = "";
	size_t pages = 0;

	*total = 0;
	do {
		json_t *j, *items, *v;
		long st;
		size_t i;

		snprintf(path, sizeof(path), "/api/v1/devices?limit=5&%s%s%s", query,
			 cursor[0] ? "&cursor=" : "", cursor);
		j = get_json(e, path, &st);
		CHECK(st == 200 && j, "page %zu of %s: %ld", pages, query, st);
		items = json_object_get(j, "items");
		json_array_foreach(items, i, v)
		{
			const char *id = json_string_value(json_object_get(v, "id"));
			json_t *kv = json_object_get(v, key);
			char val[300];

			CHECK(strstr(seen, id) == NULL, "%s repeats on page %zu", id, pages);
			strncat(seen, id, sizeof(seen) - strlen(seen) - 1);
			snprintf(val, sizeof(val), "%s",
				 json_is_string(kv) ? json_string_value(kv) : "");
			if (*total > 0) {
				int c = nocase ? strcasecmp(prev, val) : strcmp(prev, val);

				CHECK(desc ? c >= 0 : c <= 0, "%s: '%s' then '%s'", query, prev,
				      val);
			}
			str_copy(prev, sizeof(prev), val);
			(*total)++;
		}
		cursor[0] = '\0';
		if (json_is_string(json_object_get(j, "next_cursor")))
			str_copy(cursor, sizeof(cursor),
				 json_string_value(json_object_get(j, "next_cursor")));
		json_decref(j);
		pages++;
	} while (cursor[0] && pages < 10);
}

static void
test_sort_and_paging(void)
{
	struct env e;
	char path[700], cursor[600];
	size_t total;
	long st;
	json_t *j;

	CHECK(env_up(&e, "dq_paging") == 0, "server and devices");
	/* Spread the check-in times so the order is not the insertion order. */
	for (int i = 0; i < NDEV; i++) {
		char sql[160];

		snprintf(sql, sizeof(sql), "UPDATE devices SET last_seen_at = %d WHERE id = '%s'",
			 1700000000 + (i * 7919) % 1000, e.dev[i].id);
		CHECK(db_exec(&e, sql) == 0, "set last_seen_at");
	}
	walk(&e, "sort=owner", "owner", 0, 1, &total);
	if (t_failed_now)
		goto out;
	CHECK(total == NDEV, "sort=owner pages hold every device once (%zu)", total);
	walk(&e, "sort=owner&order=desc", "owner", 1, 1, &total);
	if (t_failed_now)
		goto out;
	CHECK(total == NDEV, "owner descending: %zu", total);
	walk(&e, "sort=last_checkin", "last_checkin_at", 1, 0, &total);
	if (t_failed_now)
		goto out;
	CHECK(total == NDEV, "last check-in: %zu", total);
	walk(&e, "sort=enrolled&order=asc", "enrolled_at", 0, 0, &total);
	if (t_failed_now)
		goto out;
	CHECK(total == NDEV, "enrolled: %zu", total);
	/* A cursor only fits the sort it came from. */
	j = get_json(&e, "/api/v1/devices?limit=3&sort=owner", &st);
	CHECK(st == 200, "first page");
	str_copy(cursor, sizeof(cursor),
		 json_string_value(json_object_get(j, "next_cursor")) ?: "");
	json_decref(j);
	CHECK(cursor[0], "a next cursor");
	snprintf(path, sizeof(path), "/api/v1/devices?limit=3&sort=enrolled&cursor=%s", cursor);
	j = get_json(&e, path, &st);
	CHECK(st == 400 && strstr(json_string_value(json_object_get(j, "detail")) ?: "", "cursor"),
	      "a cursor of another sort: %ld", st);
	json_decref(j);
out:
	env_down(&e);
}

/* 400, and the problem's detail names the parameter. */
static void
bad_param(struct env *e, const char *path, const char *name)
{
	long st;
	json_t *j = get_json(e, path, &st);
	const char *d = json_string_value(json_object_get(j, "detail"));

	if (st != 400 || d == NULL || strstr(d, name) == NULL)
		t_fail(__FILE__, __LINE__, "%s: %ld %s", path, st, d ? d : "(no detail)");
	json_decref(j);
}

static void
test_bad_parameters(void)
{
	static const char *const cases[][2] = {
		{"/api/v1/devices?sort=name", "sort"},
		{"/api/v1/devices?order=up", "order"},
		{"/api/v1/devices?status=lost", "status"},
		{"/api/v1/devices?desired=gone", "desired"},
		{"/api/v1/devices?reported=x", "reported"},
		{"/api/v1/devices?compliant=maybe", "compliant"},
		{"/api/v1/devices?reason=bogus", "reason"},
		{"/api/v1/devices?reason=offline,bogus", "reason"},
		{"/api/v1/devices?not_seen_days=0", "not_seen_days"},
		{"/api/v1/devices?not_seen_days=x", "not_seen_days"},
		{"/api/v1/devices?limit=201", "limit"},
		{"/api/v1/devices?cursor=AAAA", "cursor"},
		{"/api/v1/devices?cursor=%zz", "cursor"},
		{"/api/v1/commands?status=done", "status"},
		{"/api/v1/commands?type=format", "type"},
		{"/api/v1/commands?limit=0", "limit"},
		{"/api/v1/commands?cursor=zzz", "cursor"},
	};
	struct env e;

	memset(&e, 0, sizeof(e));
	CHECK(start(&e.s, "dq_bad") == 0, "server");
	e.admin = client_new(&e.s, e.s.admin);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		bad_param(&e, cases[i][0], cases[i][1]);
	client_free(e.admin);
	srv_cleanup(&e.s);
}

/* The summary's count for a reason code. */
static long
reason_count(json_t *sum, const char *code)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(sum, "reasons"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "code")), code) == 0)
			return (long)json_integer_value(json_object_get(v, "count"));
	}
	return -1;
}

/* The summary's count of hypervisor keys of one kind (hypervisor_keys.kind), or -1. */
static long
key_count(json_t *sum, const char *kind)
{
	json_t *v = json_object_get(json_object_get(sum, "hypervisor_keys"), kind);

	return json_is_integer(v) ? (long)json_integer_value(v) : -1;
}

/* Every device the list finds for reason=code shows that code, and the counts agree. */
static void
reason_agrees(struct env *e, json_t *sum, const char *code)
{
	char path[128];
	long st, want = reason_count(sum, code);
	json_t *j, *v;
	size_t i;

	snprintf(path, sizeof(path), "/api/v1/devices?limit=200&reason=%s", code);
	j = get_json(e, path, &st);
	CHECK(st == 200 && (long)json_array_size(json_object_get(j, "items")) == want,
	      "reason=%s lists %zu, summary says %ld", code,
	      json_array_size(json_object_get(j, "items")), want);
	json_array_foreach(json_object_get(j, "items"), i, v)
	{
		json_t *codes = json_object_get(json_object_get(v, "compliance"), "reason_codes"),
		       *c;
		size_t k;
		int found = 0;

		json_array_foreach(codes, k, c) found |= strcmp(json_string_value(c), code) == 0;
		CHECK(found, "device %s listed for %s does not show it",
		      json_string_value(json_object_get(v, "id")), code);
	}
	json_decref(j);
}

/* Database edits that give devices the reasons the API cannot make quickly. */
static const struct {
	const char *set;
	int dev;
} edits[] = {
	{"policy_name = 'tight'", 8}, /* offline */
	{"attest_status = 'mismatch'", 9},
	{"status = 'retired'", 10},
	{"status = 'retired', superseded_by = 'dev_x'", 11},
	{"reported_state = 'wiped'", 6},
	{"policy_name = 'ghost'", 7}, /* no such policy */
	{"attested_at = 1000", 3},    /* attestation stale */
};

static void
test_filters_and_summary(void)
{
	static const char *const codes[] = {"retired",
					    "superseded",
					    "no_policy",
					    "policy_not_applied",
					    "offline",
					    "agent_too_old",
					    "attestation_mismatch",
					    "attestation_stale",
					    "wiped",
					    "state_differs"};
	struct env e;
	char cmd[64], sql[512];
	struct resp r;
	long st;
	json_t *sum, *v;
	int has;
	size_t i;

	CHECK(env_up(&e, "dq_filters") == 0, "server and devices");
	/* Lock three: desired locked, reported still active (state_differs). */
	for (int k = 0; k < 3; k++)
		CHECK(admin_command(e.admin, e.dev[k].id, "lock", cmd, sizeof(cmd)) == 202, "lock");
	CHECK(find(&e, "desired=locked", 0, &has) == 3 && has, "desired=locked");
	CHECK(find(&e, "desired=locked&reported=active", 1, &has) == 3 && has, "both states");
	CHECK(find(&e, "reason=state_differs", 2, &has) == 3 && has, "reason=state_differs");
	/* A policy with a minimum agent above the devices' 0.1.0, assigned to two. */
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/strict",
			 "{\"min_agent_version\":\"2.0.0\"}", NULL, &r) == 0,
	      "policy");
	resp_free(&r);
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/relaxed", "{}", NULL, &r) == 0, "p2");
	resp_free(&r);
	for (int k = 4; k < 6; k++) {
		char path[96];

		snprintf(path, sizeof(path), "/api/v1/devices/%s/policy", e.dev[k].id);
		CHECK(client_req(e.admin, "PUT", path, "{\"policy\":\"relaxed\"}", NULL, &r) == 0 &&
			      r.status == 200,
		      "assign");
		resp_free(&r);
	}
	/* "strict" came first, so it is the default: the other ten follow it. */
	CHECK(find(&e, "policy=relaxed", 4, &has) == 2 && has, "policy=relaxed");
	CHECK(find(&e, "policy=strict", 0, &has) == NDEV - 2 && has, "policy=strict (default)");
	CHECK(find(&e, "reason=agent_too_old", 0, &has) == NDEV - 2 && has, "agent too old");
	/* One device has been silent for ten days. */
	snprintf(sql, sizeof(sql), "UPDATE devices SET last_seen_at = %lld WHERE id = '%s'",
		 (long long)time(NULL) - 864000, e.dev[8].id);
	CHECK(db_exec(&e, sql) == 0, "age a device");
	CHECK(find(&e, "not_seen_days=7", 8, &has) >= 1 && has, "not seen for 7 days");
	CHECK(find(&e, "not_seen_days=7&q=heidi", 8, &has) == 1 && has, "with a search");
	CHECK(find(&e, "compliant=true", -1, &has) + find(&e, "compliant=false", -1, &has) == NDEV,
	      "compliant and not add up");
	/* Every other reason on some device, as time or the hypervisor would make it. */
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/tight",
			 "{\"offline\":{\"lock_after_hours\":1}}", NULL, &r) == 0,
	      "policy tight");
	resp_free(&r);
	for (i = 0; i < ARRAY_SIZE(edits); i++) {
		snprintf(sql, sizeof(sql), "UPDATE devices SET %s WHERE id = '%s'", edits[i].set,
			 e.dev[edits[i].dev].id);
		CHECK(db_exec(&e, sql) == 0, "%s", sql);
	}
	CHECK(find(&e, "reason=offline", 8, &has) == 1 && has, "offline under policy tight");
	CHECK(find(&e, "reason=no_policy", 7, &has) == 1 && has, "a policy that does not exist");
	CHECK(find(&e, "reason=retired,superseded", 10, &has) == 2 && has, "two reasons at once");
	/* The summary agrees with the list for every reason. */
	sum = get_json(&e, "/api/v1/devices/summary", &st);
	CHECK(st == 200 && sum, "summary: %ld", st);
	CHECK(json_integer_value(json_object_get(sum, "total")) == NDEV, "total");
	CHECK(reason_count(sum, "state_differs") == 4, "state differs: 3 locked, 1 wiped");
	for (i = 0; i < ARRAY_SIZE(codes) && !t_failed_now; i++) {
		CHECK(reason_count(sum, codes[i]) > 0, "no device has %s", codes[i]);
		reason_agrees(&e, sum, codes[i]);
	}
	has = 0;
	json_array_foreach(json_object_get(sum, "corporate_states"), i, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "desired")), "locked") == 0)
			has = json_integer_value(json_object_get(v, "count")) == 3;
	}
	CHECK(has, "corporate states: locked/active 3: %s",
	      json_dumps(json_object_get(sum, "corporate_states"), 0));
	CHECK(key_count(sum, "software") == NDEV && key_count(sum, "tpm_endorsed") == 0 &&
		      key_count(sum, "tpm_unendorsed") == 0,
	      "every simulated device has a software key: %s",
	      json_dumps(json_object_get(sum, "hypervisor_keys"), 0));
	json_decref(sum);
	/* Two keys moved into TPMs, as TPM enrollment records them (test_tpm_enroll does that). */
	snprintf(sql, sizeof(sql),
		 "UPDATE devices SET hv_identity = 'tpm', endorsement = CASE id WHEN '%s' THEN "
		 "'verified' ELSE '' END WHERE id IN ('%s', '%s')",
		 e.dev[0].id, e.dev[0].id, e.dev[1].id);
	CHECK(db_exec(&e, sql) == 0, "edit");
	sum = get_json(&e, "/api/v1/devices/summary", &st);
	CHECK(st == 200 && key_count(sum, "software") == NDEV - 2 &&
		      key_count(sum, "tpm_endorsed") == 1 && key_count(sum, "tpm_unendorsed") == 1,
	      "one hardware-attested, one TPM without endorsement: %s",
	      json_dumps(json_object_get(sum, "hypervisor_keys"), 0));
	json_decref(sum);
	env_down(&e);
}

static void
test_command_queue_and_bulk(void)
{
	struct env e;
	char body[2048], tok[128], first[64] = "";
	struct resp r;
	struct client *hd;
	json_t *j, *v;
	long st;
	size_t i, k = 0;

	CHECK(env_up(&e, "dq_bulk") == 0, "server and devices");
	k = (size_t)snprintf(body, sizeof(body),
			     "{\"type\":\"lock\",\"reason\":\"bulk test\","
			     "\"device_ids\":[");
	for (int d = 0; d < 4; d++)
		k += (size_t)snprintf(body + k, sizeof(body) - k, "\"%s\",", e.dev[d].id);
	snprintf(body + k, sizeof(body) - k, "\"dev_nosuchdevice\"]}");
	CHECK(client_req(e.admin, "POST", "/api/v1/commands/bulk", body, NULL, &r) == 0 &&
		      r.status == 200,
	      "bulk lock: %ld %s", r.status, r.body ?: "");
	j = resp_json(&r);
	resp_free(&r);
	CHECK(json_integer_value(json_object_get(j, "queued")) == 4 &&
		      json_integer_value(json_object_get(j, "refused")) == 1,
	      "4 queued, 1 refused");
	json_decref(j);
	/* Again: nothing new, each lock is already pending. */
	CHECK(client_req(e.admin, "POST", "/api/v1/commands/bulk", body, NULL, &r) == 0 &&
		      r.status == 200,
	      "bulk again");
	j = resp_json(&r);
	resp_free(&r);
	CHECK(json_integer_value(json_object_get(j, "already_pending")) == 4 &&
		      json_integer_value(json_object_get(j, "queued")) == 0,
	      "4 already pending");
	json_decref(j);
	/* Helpdesk may bulk-lock but not bulk-wipe. */
	CHECK(admin_token(e.admin, "helpdesk", tok, sizeof(tok)) == 0, "helpdesk token");
	hd = client_new(&e.s, tok);
	snprintf(body, sizeof(body), "{\"type\":\"wipe\",\"device_ids\":[\"%s\"]}", e.dev[5].id);
	CHECK(client_req(hd, "POST", "/api/v1/commands/bulk", body, NULL, &r) == 0 &&
		      r.status == 403,
	      "helpdesk bulk wipe: %ld", r.status);
	resp_free(&r);
	client_free(hd);
	CHECK(client_req(e.admin, "POST", "/api/v1/commands/bulk", "{\"type\":\"lock\"}", NULL,
			 &r) == 0 &&
		      r.status == 400 && strstr(r.body, "device_ids"),
	      "no device_ids: %ld", r.status);
	resp_free(&r);
	/* The queue across devices: newest first, filtered, paged, cancelable. */
	j = get_json(&e, "/api/v1/commands?type=lock&limit=3", &st);
	CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 3, "page of locks");
	json_array_foreach(json_object_get(j, "items"), i, v)
	{
		CHECK(strcmp(json_string_value(json_object_get(v, "type")), "lock") == 0, "type");
		if (i == 0)
			str_copy(first, sizeof(first),
				 json_string_value(json_object_get(v, "device_id")));
	}
	CHECK(strcmp(first, e.dev[3].id) == 0, "newest first: %s", first);
	{
		char path[700];

		snprintf(path, sizeof(path), "/api/v1/commands?type=lock&limit=3&cursor=%s",
			 json_string_value(json_object_get(j, "next_cursor")) ?: "");
		json_decref(j);
		j = get_json(&e, path, &st);
		CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 1,
		      "second page");
		CHECK(strcmp(json_string_value(json_object_get(
				     json_array_get(json_object_get(j, "items"), 0), "device_id")),
			     e.dev[0].id) == 0,
		      "oldest last");
		snprintf(path, sizeof(path), "/api/v1/commands/%s/cancel",
			 json_string_value(json_object_get(
				 json_array_get(json_object_get(j, "items"), 0), "id")));
		json_decref(j);
		CHECK(client_req(e.admin, "POST", path, NULL, NULL, &r) == 0 && r.status == 200,
		      "cancel");
		resp_free(&r);
	}
	j = get_json(&e, "/api/v1/commands?status=canceled", &st);
	CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 1, "status filter");
	json_decref(j);
	j = get_json(&e, "/api/v1/commands?status=queued&type=lock", &st);
	CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 3, "both filters");
	json_decref(j);
	env_down(&e);
}

static const struct t_case dq_cases[] = {
	{"search", test_search},
	{"sort_and_paging", test_sort_and_paging},
	{"bad_parameters", test_bad_parameters},
	{"filters_and_summary", test_filters_and_summary},
	{"command_queue_and_bulk", test_command_queue_and_bulk},
};

#ifndef TEST_DQ_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(dq_cases, ARRAY_SIZE(dq_cases), argc, argv);
}
#endif

/*
 * Unit tests of the store's console queries (store_sqlite_query.c, store_pg_query.c) on both
 * backends (store_fx_run_both):
 * keyset pages that neither repeat nor skip rows whose sort keys tie, the owner sort ignoring
 * ASCII case, search text taken literally (no LIKE wildcards), the fingerprint column filled
 * on insert and, for rows from before migration 0006, when the store opens, the command
 * queue newest first, and compliance reasons listed and counted alike.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "crypto.h"
#include "log.h"
#include "store_fixture.h"
#include "util.h"

#define NDEV 23

static void
add_device(struct store *st, int i, const char *owner, int64_t seen)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev_%04d", i);
	str_copy(d.owner, sizeof(d.owner), owner);
	str_copy(d.status, sizeof(d.status), "active");
	str_copy(d.model, sizeof(d.model), i % 2 ? "Pixel 9" : "ThinkPad");
	for (size_t k = 0; k < sizeof(d.hv_key); k++) {
		d.hv_key[k] = (uint8_t)(i * 31 + (int)k);
		d.device_key[k] = (uint8_t)(i * 17 + (int)k + 1);
	}
	d.enrolled_at = 1000; /* every device ties on enrolled_at */
	d.last_seen_at = seen;
	assert_int_equal(st->ops->device_insert(st, &d), 0);
}

static void
fill(struct store *st)
{
	for (int i = 0; i < NDEV; i++) {
		char owner[64];

		/* Owners differ only in case in pairs; check-in times tie in threes. */
		snprintf(owner, sizeof(owner), i % 2 ? "User%02d@x" : "user%02d@x", i / 2);
		add_device(st, i, owner, 5000 + i / 3);
	}
}

/* Walks every page of q (limit 4) and returns how many rows came; each id once. */
static int
walk(struct store *st, struct device_query *q)
{
	struct device page[5];
	char seen[NDEV] = {0};
	char last_owner[STORE_OWNER_MAX];
	int total = 0;
	size_t n;

	q->limit = 4;
	q->has_after = 0;
	for (int pages = 0; pages < NDEV; pages++) {
		assert_int_equal(st->ops->device_query(st, q, page, &n), 0);
		for (size_t i = 0; i < n; i++) {
			int k = atoi(page[i].id + 4);

			assert_true(k >= 0 && k < NDEV);
			assert_int_equal(seen[k], 0);
			seen[k] = 1;
			total++;
		}
		if (n < q->limit)
			break;
		q->has_after = 1;
		q->after_rowid = page[n - 1].rowid;
		q->after_key = q->sort == DEV_SORT_ENROLLED ? page[n - 1].enrolled_at
							    : page[n - 1].last_seen_at;
		str_copy(last_owner, sizeof(last_owner), page[n - 1].owner);
		q->after_text = last_owner;
	}
	return total;
}

static void
test_store_query_keyset_with_ties(void **state)
{
	struct fx *f = *state;
	struct device_query q;

	fill(f->st);
	for (int sort = DEV_SORT_LAST_SEEN; sort <= DEV_SORT_ENROLLED; sort++) {
		for (int desc = 0; desc <= 1; desc++) {
			memset(&q, 0, sizeof(q));
			q.compliant = -1;
			q.sort = (enum device_sort)sort;
			q.desc = desc;
			assert_int_equal(walk(f->st, &q), NDEV);
		}
	}
}

static void
test_store_query_owner_order_ignores_case(void **state)
{
	struct fx *f = *state;
	struct device_query q = {.compliant = -1, .sort = DEV_SORT_OWNER, .limit = NDEV};
	struct device page[NDEV];
	size_t n;

	fill(f->st);
	assert_int_equal(f->st->ops->device_query(f->st, &q, page, &n), 0);
	assert_int_equal(n, NDEV);
	for (size_t i = 1; i < n; i++)
		assert_true(strcasecmp(page[i - 1].owner, page[i].owner) <= 0);
	/* Prefix search ignores case too: "USER03" finds user03@x and User03@x. */
	q.q = "USER03";
	assert_int_equal(f->st->ops->device_query(f->st, &q, page, &n), 0);
	assert_int_equal(n, 2);
}

static void
test_store_query_search_is_literal(void **state)
{
	struct fx *f = *state;
	struct device_query q = {.compliant = -1, .limit = NDEV};
	struct device page[NDEV];
	size_t n;

	fill(f->st);
	add_device(f->st, 90, "100%_sure@x", 1);
	q.q = "%";
	assert_int_equal(f->st->ops->device_query(f->st, &q, page, &n), 0);
	assert_int_equal(n, 0);
	q.q = "100%_";
	assert_int_equal(f->st->ops->device_query(f->st, &q, page, &n), 0);
	assert_int_equal(n, 1);
	q.q = "dev_001"; /* ids dev_0010 .. dev_0019 */
	assert_int_equal(f->st->ops->device_query(f->st, &q, page, &n), 0);
	assert_int_equal(n, 10);
	q.q = "thinkpad";
	assert_int_equal(f->st->ops->device_query(f->st, &q, page, &n), 0);
	assert_int_equal(n, (NDEV + 1) / 2 + 1); /* device 90 is one too */
}

/* Searches the fingerprint of device i's key; the number of the one device found, or -1. */
static int
find_fingerprint(struct store *st, int i, int with_prefix)
{
	struct device_query q = {.compliant = -1, .limit = 5};
	struct device page[5];
	uint8_t key[32];
	char fp[64];
	size_t n;

	for (size_t k = 0; k < sizeof(key); k++)
		key[k] = (uint8_t)(i * 31 + (int)k);
	assert_int_equal(key_fingerprint(key, fp, sizeof(fp)), 0);
	q.q = with_prefix ? fp : fp + 7;
	assert_int_equal(st->ops->device_query(st, &q, page, &n), 0);
	return n == 1 ? atoi(page[0].id + 4) : -1;
}

static void
test_store_query_fingerprints_filled(void **state)
{
	struct fx *f = *state;

	fill(f->st);
	assert_int_equal(find_fingerprint(f->st, 7, 1), 7);
	assert_int_equal(find_fingerprint(f->st, 7, 0), 7);
	/* A database from before migration 0006: the column is empty until the store opens. */
	f->st->ops->close(f->st);
	f->st = NULL;
	store_fx_exec(f, "UPDATE devices SET hv_fingerprint = ''");
	assert_int_equal(store_fx_open(f, &f->st), 0);
	assert_int_equal(find_fingerprint(f->st, 12, 1), 12);
}

static void
test_store_query_commands_newest_first(void **state)
{
	struct fx *f = *state;
	struct command c, page[4];
	struct command_filter cf = {.newest_first = 1, .type = "lock", .limit = 3};
	size_t n;

	fill(f->st);
	for (int i = 0; i < 7; i++) {
		memset(&c, 0, sizeof(c));
		snprintf(c.id, sizeof(c.id), "cmd_%02d", i);
		str_copy(c.device_id, sizeof(c.device_id), "dev_0001");
		str_copy(c.type, sizeof(c.type), i % 2 ? "lock" : "refresh");
		str_copy(c.status, sizeof(c.status), "queued");
		str_copy(c.created_by, sizeof(c.created_by), "tok");
		c.counter = i + 1;
		assert_int_equal(f->st->ops->command_insert(f->st, &c), 0);
	}
	/* Locks are 1, 3, 5: newest first, three then none. */
	assert_int_equal(f->st->ops->command_list(f->st, &cf, page, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(page[0].id, "cmd_05");
	assert_string_equal(page[2].id, "cmd_01");
	cf.after = page[2].rowid;
	assert_int_equal(f->st->ops->command_list(f->st, &cf, page, &n), 0);
	assert_int_equal(n, 0);
}

/* A device of the compliance test: policy, agent version, whether it attests digest D. */
static void
add_comply(struct store *st, const char *id, const char *policy, const char *agent, int attested,
	   const char *superseded_by)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	str_copy(d.id, sizeof(d.id), id);
	str_copy(d.owner, sizeof(d.owner), "o@x");
	str_copy(d.status, sizeof(d.status), superseded_by ? "retired" : "active");
	memcpy(d.device_key, id, strlen(id));
	str_copy(d.policy_name, sizeof(d.policy_name), policy);
	str_copy(d.agent_version, sizeof(d.agent_version), agent);
	if (attested)
		memset(d.attested_policy, 0xd1, sizeof(d.attested_policy));
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	str_copy(d.superseded_by, sizeof(d.superseded_by), superseded_by ? superseded_by : "");
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_SUPERSEDED), 0);
}

static int
plain_cmp(const char *a, const char *b)
{
	return strcmp(a, b);
}

/* The ids device_query lists for reasons (or compliant), joined by spaces in rowid order. */
static void
listed(struct store *st, const struct compliance_spec *spec, unsigned reasons, int compliant,
       char *out, size_t cap)
{
	struct device_query q = {.compliant = compliant, .reasons = reasons, .spec = spec};
	struct device page[8];
	size_t n, len = 0;

	q.sort = DEV_SORT_ENROLLED;
	q.limit = 8;
	assert_int_equal(st->ops->device_query(st, &q, page, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "", page[i].id);
}

/*
 * Reasons as predicates and the summary's counts agree on both backends, the agent version's
 * comparison is the spec's function (a version with quotes and a backslash is only a value).
 */
static void
test_store_query_compliance_and_summary(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct compliance_group g = {.policy = "p", .min_agent = "1.0"};
	struct compliance_spec spec = {.groups = &g, .n = 1, .version_cmp = plain_cmp};
	struct device_summary sum;
	char ids[128];

	memset(g.digest, 0xd1, sizeof(g.digest));
	add_comply(st, "d0", "p", "0.9", 0, NULL);
	add_comply(st, "d1", "p", "0.5\"x\\", 0, NULL);
	add_comply(st, "d2", "p", "2.0", 1, NULL);
	add_comply(st, "d3", "ghost", "2.0", 1, NULL);
	add_comply(st, "d4", "p", "3.0", 1, "d9");
	listed(st, &spec, COMPLY_AGENT_OLD, -1, ids, sizeof(ids));
	assert_string_equal(ids, "d0 d1");
	listed(st, &spec, COMPLY_NOT_APPLIED | COMPLY_NO_POLICY, -1, ids, sizeof(ids));
	assert_string_equal(ids, "d0 d1 d3");
	listed(st, &spec, COMPLY_SUPERSEDED, -1, ids, sizeof(ids));
	assert_string_equal(ids, "d4");
	listed(st, &spec, 0, 1, ids, sizeof(ids));
	assert_string_equal(ids, "d2");
	listed(st, &spec, 0, 0, ids, sizeof(ids));
	assert_string_equal(ids, "d0 d1 d3 d4");
	assert_int_equal(st->ops->device_summary(st, &spec, &sum), 0);
	assert_int_equal(sum.total, 5);
	assert_int_equal(sum.compliant, 1);
	assert_int_equal(sum.reasons[5], 2); /* COMPLY_AGENT_OLD */
	assert_int_equal(sum.reasons[3], 2); /* COMPLY_NOT_APPLIED */
	assert_int_equal(sum.reasons[2], 1); /* COMPLY_NO_POLICY */
	assert_int_equal(sum.reasons[1], 1); /* COMPLY_SUPERSEDED */
	assert_int_equal(sum.nstates, 1);
	assert_int_equal(sum.states[0].n, 5);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_store_query_keyset_with_ties),
		T(test_store_query_owner_order_ignores_case),
		T(test_store_query_search_is_literal),
		T(test_store_query_fingerprints_filled),
		T(test_store_query_commands_newest_first),
		T(test_store_query_compliance_and_summary),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store queries", tests, ARRAY_SIZE(tests));
}

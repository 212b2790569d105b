/*
 * Unit tests of the store's labels and groups (migration 0020) on both backends: label_put
 * inserts and replaces (one value per key), refuses a device that does not exist, keeps
 * hostile values exactly; label_delete; labels go with their device; the device query's label
 * and group filters (a label query compiled to SQL with its keys and values bound: a value
 * holding quotes and SQL matches only itself) for the list, the count and a bulk's row walk;
 * device_matches; groups insert (-EEXIST on a taken name), get, update, list pages by name,
 * delete, and group_policies by priority; and the service's query parser feeding the store.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "service/service.h"
#include "store_fixture.h"
#include "store_records.h"
#include "util.h"

#define HOSTILE "<b>x</b>' OR '1'='1; DROP TABLE devices; --\""

/* Devices dev_0..dev_{n-1}; labels: dept (sales for even, ops for odd), vip on every third. */
static void
fleet(struct store *st, int n)
{
	for (int i = 0; i < n; i++) {
		struct device d;
		char id[16];

		snprintf(id, sizeof(id), "dev_%d", i);
		make_device(&d, id, "o@example.com", "active");
		d.device_key[0] = (uint8_t)i;
		d.device_key[1] = (uint8_t)(i >> 8);
		assert_int_equal(st->ops->device_insert(st, &d), 0);
		assert_int_equal(st->ops->label_put(st, id, "dept", i % 2 ? "ops" : "sales"), 0);
		if (i % 3 == 0)
			assert_int_equal(st->ops->label_put(st, id, "vip", ""), 0);
	}
}

/* How many devices the query text matches: list (rows), count and row walk must agree. */
static int64_t
matches(struct store *st, const char *text, int as_group)
{
	struct label_query lq;
	struct device_query q;
	struct device rows[64];
	char msg[160];
	size_t n = 0, walked = 0;
	int64_t count = -1;

	if (svc_labelq_parse(text, &lq, msg, sizeof(msg)) != 0)
		fail_msg("%s: %s", text, msg);
	memset(&q, 0, sizeof(q));
	q.compliant = -1;
	if (as_group)
		q.group = &lq;
	else
		q.labels = &lq;
	q.limit = 64;
	assert_int_equal(st->ops->device_query(st, &q, rows, &n), 0);
	assert_int_equal(st->ops->device_count(st, &q, &count), 0);
	assert_int_equal((int64_t)n, count);
	q.sort = DEV_SORT_ROWID;
	for (int guard = 0; guard < 100; guard++) {
		size_t k = 0;

		q.limit = 4;
		assert_int_equal(st->ops->device_query(st, &q, rows, &k), 0);
		walked += k;
		if (k < 4)
			break;
		q.has_after = 1;
		q.after_rowid = rows[k - 1].rowid;
	}
	assert_int_equal((int64_t)walked, count);
	return count;
}

static void
test_label_put_delete(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct device_label l[LABELS_PER_DEVICE];
	size_t n = 0;

	fleet(st, 2);
	assert_int_equal(st->ops->label_put(st, "dev_0", "note", HOSTILE), 0);
	assert_int_equal(st->ops->label_put(st, "dev_0", "dept", "finance"), 0); /* replaces */
	assert_int_equal(st->ops->labels_get(st, "dev_0", l, LABELS_PER_DEVICE, &n), 0);
	assert_int_equal(n, 3); /* by key: dept, note, vip */
	assert_string_equal(l[0].key, "dept");
	assert_string_equal(l[0].value, "finance");
	assert_string_equal(l[1].key, "note");
	assert_string_equal(l[1].value, HOSTILE);
	assert_string_equal(l[2].key, "vip");
	assert_string_equal(l[2].value, "");
	assert_int_equal(st->ops->label_put(st, "dev_none", "dept", "x"), -ENOENT);
	assert_int_equal(st->ops->label_delete(st, "dev_0", "note"), 0);
	assert_int_equal(st->ops->label_delete(st, "dev_0", "note"), -ENOENT);
	assert_int_equal(st->ops->labels_get(st, "dev_0", l, LABELS_PER_DEVICE, &n), 0);
	assert_int_equal(n, 2);
	/* Labels go with their device. */
	assert_int_equal(st->ops->device_delete(st, "dev_0"), 0);
	assert_int_equal(st->ops->labels_get(st, "dev_0", l, LABELS_PER_DEVICE, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(st->ops->label_put(st, "dev_0", "dept", "x"), -ENOENT);
}

static void
test_label_filters(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct label_query lq;
	char msg[160];
	int m = -1;

	fleet(st, 12);
	assert_int_equal(matches(st, "dept=sales", 0), 6);
	assert_int_equal(matches(st, "vip", 0), 4);                    /* 0 3 6 9 */
	assert_int_equal(matches(st, "dept=sales AND vip", 1), 2);     /* 0 6 */
	assert_int_equal(matches(st, "dept=sales AND NOT vip", 1), 4); /* 2 4 8 10 */
	assert_int_equal(matches(st, "dept!=sales OR vip", 0), 8);     /* 6 odd + 0 6 */
	assert_int_equal(matches(st, "(dept=ops OR dept=sales) AND vip", 1), 4);
	assert_int_equal(matches(st, "nothere", 0), 0);
	/* A value with quotes and SQL is bound: it matches itself, and the table is intact. */
	assert_int_equal(st->ops->label_put(st, "dev_5", "note", HOSTILE), 0);
	assert_int_equal(matches(st, "note=\"<b>x</b>' OR '1'='1; DROP TABLE devices; --\\\"\"", 0),
			 1);
	assert_int_equal(matches(st, "note=\"' OR '1'='1\"", 0), 0);
	assert_int_equal(matches(st, "dept", 0), 12);
	assert_int_equal(svc_labelq_parse("dept=ops AND vip", &lq, msg, sizeof(msg)), 0);
	assert_int_equal(st->ops->device_matches(st, "dev_3", &lq, &m), 0);
	assert_int_equal(m, 1);
	assert_int_equal(st->ops->device_matches(st, "dev_1", &lq, &m), 0);
	assert_int_equal(m, 0);
	assert_int_equal(st->ops->device_matches(st, "dev_none", &lq, &m), 0);
	assert_int_equal(m, 0);
}

/* Devices whose effective policy is name (is_default: or the default) under pg. */
static int64_t
following(struct store *st, const struct policy_groups *pg, const char *name, int is_default)
{
	struct device_query q;
	int64_t n = -1;

	memset(&q, 0, sizeof(q));
	q.compliant = -1;
	q.policy = name;
	q.policy_is_default = is_default;
	q.policy_groups = pg;
	assert_int_equal(st->ops->device_count(st, &q, &n), 0);
	return n;
}

/* Group policies: own assignment first, then the first group matched, then the default. */
static void
test_group_policies(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct label_query vip, sales;
	struct policy_groups pg = {2, {&vip, &sales}, {"strict", "std"}};
	struct device d;
	char msg[160];

	fleet(st, 12);
	assert_int_equal(svc_labelq_parse("vip", &vip, msg, sizeof(msg)), 0);
	assert_int_equal(svc_labelq_parse("dept=sales", &sales, msg, sizeof(msg)), 0);
	assert_int_equal(st->ops->device_get(st, "dev_0", &d), 0);
	str_copy(d.policy_name, sizeof(d.policy_name), "own");
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_POLICY), 0);
	assert_int_equal(following(st, &pg, "strict", 0), 3); /* 3 6 9: 0 has its own */
	assert_int_equal(following(st, &pg, "std", 0), 4);    /* 2 4 8 10 */
	assert_int_equal(following(st, &pg, "def", 1), 4);    /* 1 5 7 11 */
	assert_int_equal(following(st, &pg, "own", 0), 1);
	assert_int_equal(following(st, NULL, "def", 1), 11); /* without groups */
	pg.n = 0;
	assert_int_equal(following(st, &pg, "strict", 0), 0);
}

static void
make_group(struct device_group *g, const char *name, const char *query, const char *policy,
	   int64_t priority)
{
	memset(g, 0, sizeof(*g));
	str_copy(g->name, sizeof(g->name), name);
	str_copy(g->query, sizeof(g->query), query);
	str_copy(g->description, sizeof(g->description), HOSTILE);
	str_copy(g->policy, sizeof(g->policy), policy);
	str_copy(g->created_by, sizeof(g->created_by), "adm_one");
	g->priority = priority;
	g->created_at = g->updated_at = 100;
	g->version = 1;
}

static void
test_groups(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct device_group g, got, page[4];
	size_t n = 0;

	make_group(&g, "sales", "dept=sales", "", 100);
	assert_int_equal(st->ops->group_insert(st, &g), 0);
	assert_int_equal(st->ops->group_insert(st, &g), -EEXIST);
	make_group(&g, "b-phones", "os=android", "strict", 5);
	assert_int_equal(st->ops->group_insert(st, &g), 0);
	make_group(&g, "a-vip", "vip", "lenient", 5);
	assert_int_equal(st->ops->group_insert(st, &g), 0);
	assert_int_equal(st->ops->group_get(st, "sales", &got), 0);
	assert_string_equal(got.query, "dept=sales");
	assert_string_equal(got.description, HOSTILE);
	assert_int_equal(got.version, 1);
	assert_int_equal(st->ops->group_get(st, "nope", &got), -ENOENT);

	got.version = 7; /* not read: the update counts */
	got.updated_at = 200;
	str_copy(got.query, sizeof(got.query), "dept=sales AND vip");
	assert_int_equal(st->ops->group_update(st, &got), 0);
	assert_int_equal(st->ops->group_get(st, "sales", &got), 0);
	assert_string_equal(got.query, "dept=sales AND vip");
	assert_int_equal(got.version, 2);
	assert_int_equal(got.created_at, 100);
	assert_int_equal(got.updated_at, 200);
	str_copy(g.name, sizeof(g.name), "nope");
	assert_int_equal(st->ops->group_update(st, &g), -ENOENT);

	/* Pages by name; then the groups giving a policy by priority, then name. */
	assert_int_equal(st->ops->group_list(st, "", page, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(page[0].name, "a-vip");
	assert_string_equal(page[1].name, "b-phones");
	assert_int_equal(st->ops->group_list(st, page[1].name, page, 2, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].name, "sales");
	assert_int_equal(st->ops->group_policies(st, page, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(page[0].name, "a-vip");
	assert_string_equal(page[1].name, "b-phones");

	assert_int_equal(st->ops->group_delete(st, "sales"), 0);
	assert_int_equal(st->ops->group_delete(st, "sales"), -ENOENT);
	assert_int_equal(st->ops->group_list(st, NULL, page, 4, &n), 0);
	assert_int_equal(n, 2);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_label_put_delete),
		T(test_label_filters),
		T(test_groups),
		T(test_group_policies),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store labels and groups", both, ARRAY_SIZE(both));
}

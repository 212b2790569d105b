/*
 * Unit tests of the store's console queries (store_sqlite_query.c, store_pg_query.c) on both
 * backends (store_fx_run_both):
 * keyset pages that neither repeat nor skip rows whose sort keys tie, the owner sort ignoring
 * ASCII case, search text taken literally (no LIKE wildcards), the fingerprint column filled
 * on insert and, for rows from before migration 0006, when the store opens, and the command
 * queue newest first.
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
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store queries", tests, ARRAY_SIZE(tests));
}

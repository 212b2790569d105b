/*
 * Unit tests of the console's store queries (store_sqlite_auditq.c, store_pg_query.c) on both
 * backends: audit list filters by actor, action, target and time range, alone and together;
 * per-policy device counts; and the query plans, which must use an index for every filter
 * (and on PostgreSQL every device sort and search) rather than scan the tables.
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
#include <unistd.h>
#include <sqlite3.h>

#include "log.h"
#include "store/store.h"
#include "store_fixture.h"

static void
add_audit(struct store *st, int64_t seq, const char *actor, const char *action, const char *target,
	  int64_t at_ms)
{
	struct audit_entry e;

	memset(&e, 0, sizeof(e));
	e.seq = seq;
	e.at_ms = at_ms;
	snprintf(e.actor, sizeof(e.actor), "%s", actor);
	snprintf(e.action, sizeof(e.action), "%s", action);
	snprintf(e.target, sizeof(e.target), "%s", target);
	snprintf(e.outcome, sizeof(e.outcome), "ok");
	memset(e.hash, (int)seq, sizeof(e.hash));
	assert_int_equal(st->ops->audit_insert(st, &e), 0);
}

/* 20 entries: actors alternate a/b, actions cycle over three, targets over four, 1 s apart. */
static void
add_rows(struct store *st)
{
	static const char *const actions[] = {"policy.put", "command.create", "device.delete"};
	char target[16];

	for (int i = 1; i <= 20; i++) {
		snprintf(target, sizeof(target), "dev_%d", i % 4);
		add_audit(st, i, i % 2 ? "adm_a" : "adm_b", actions[i % 3], target, i * 1000LL);
	}
}

/* Lists with f and checks the seqs match want (n of them), in order. */
static void
expect_seqs(struct store *st, struct audit_filter f, const int64_t *want, size_t nwant)
{
	struct audit_entry out[32];
	size_t n = 99;

	f.limit = f.limit ? f.limit : 32;
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(out[i].seq, want[i]);
}

static void
test_store_query_audit_filters(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	const int64_t actor_target[] = {1, 5, 9, 13, 17}; /* adm_a and dev_1 */
	const int64_t window[] = {5, 6, 7};               /* 5000 <= at < 8000 */
	const int64_t action_window[] = {5, 8};           /* device.delete, 3000..9000 */
	const int64_t paged[] = {9, 13};                  /* actor+target after seq 5, 2 */
	const int64_t all_until[] = {1, 2};               /* at < 3000 */
	struct audit_filter f;

	add_rows(st);
	f = (struct audit_filter){.actor = "adm_a", .target = "dev_1"};
	expect_seqs(st, f, actor_target, 5);
	f = (struct audit_filter){.since_ms = 5000, .until_ms = 8000};
	expect_seqs(st, f, window, 3);
	f = (struct audit_filter){.action = "device.delete", .since_ms = 3000, .until_ms = 9001};
	expect_seqs(st, f, action_window, 2);
	f = (struct audit_filter){.actor = "adm_a", .target = "dev_1", .after = 5, .limit = 2};
	expect_seqs(st, f, paged, 2);
	f = (struct audit_filter){.until_ms = 3000};
	expect_seqs(st, f, all_until, 2);
	f = (struct audit_filter){.actor = "nobody"};
	expect_seqs(st, f, NULL, 0);
	/* Every filter at once still narrows, and a value with markup is only a value. */
	add_audit(st, 21, "<b>x</b>", "policy.put", "' OR 1=1 --", 21000);
	f = (struct audit_filter){.actor = "<b>x</b>",
				  .action = "policy.put",
				  .target = "' OR 1=1 --",
				  .since_ms = 20500,
				  .until_ms = 21001};
	expect_seqs(st, f, (const int64_t[]){21}, 1);
}

/*
 * A common actor and a rare action (more entries than the index probe counts): the list walks
 * the sparser index and still returns exactly the matches, in order and paged.
 */
static void
test_store_query_audit_sparse_filter(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	const int64_t rare[] = {100, 2500, 2999};
	struct audit_filter f;

	assert_int_equal(st->ops->tx_begin(st), 0);
	for (int i = 1; i <= 3000; i++)
		add_audit(st, i, "adm_c",
			  i == 100 || i == 2500 || i == 2999 ? "policy.put" : "command.create",
			  i % 7 ? "dev_x" : "dev_y", i * 1000LL);
	assert_int_equal(st->ops->tx_commit(st), 0);
	f = (struct audit_filter){.actor = "adm_c", .action = "policy.put"};
	expect_seqs(st, f, rare, 3);
	f = (struct audit_filter){
		.actor = "adm_c", .action = "policy.put", .after = 100, .limit = 1};
	expect_seqs(st, f, (const int64_t[]){2500}, 1);
	f = (struct audit_filter){.action = "policy.put", .target = "dev_y"};
	expect_seqs(st, f, NULL, 0); /* none of 100, 2500, 2999 is a multiple of 7 */
	f = (struct audit_filter){
		.actor = "adm_c", .action = "command.create", .target = "dev_y", .limit = 2};
	expect_seqs(st, f, (const int64_t[]){7, 14}, 2);
}

/* The plan SQLite picks for sql, all its detail lines joined. */
static void
plan_of(const char *path, const char *sql, char *out, size_t cap)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	char full[1024];
	size_t len = 0;

	snprintf(full, sizeof(full), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, full, -1, &q, NULL), SQLITE_OK);
	out[0] = '\0';
	while (sqlite3_step(q) == SQLITE_ROW) {
		int w = snprintf(out + len, cap - len, "%s; ",
				 (const char *)sqlite3_column_text(q, 3));

		if (w > 0)
			len += (size_t)w < cap - len ? (size_t)w : cap - len - 1;
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* Fails the test unless plan names want (when given) and reads no table whole. */
static void
check_plan(const char *what, const char *plan, const char *want)
{
	if (want != NULL && strstr(plan, want) == NULL)
		fail_msg("%s: plan \"%s\" does not use %s", what, plan, want);
	if (strstr(plan, "Seq Scan") != NULL)
		fail_msg("%s: plan \"%s\" reads the whole table", what, plan);
}

/* 3,000 devices and audit entries, spread so that each filter narrows as at fleet size. */
static void
pg_fill(struct fx *fx)
{
	struct store *st = fx->st;
	char actor[16], action[16], target[16];

	assert_int_equal(st->ops->tx_begin(st), 0);
	for (int i = 1; i <= 3000; i++) {
		struct device d;

		snprintf(actor, sizeof(actor), "adm_%d", i % 20);
		snprintf(action, sizeof(action), "act.%d", i % 15);
		snprintf(target, sizeof(target), "dev_%d", i % 300);
		add_audit(st, i, actor, action, target, i * 1000LL);
		memset(&d, 0, sizeof(d));
		snprintf(d.id, sizeof(d.id), "dev_%05d", i);
		snprintf(d.owner, sizeof(d.owner), "%s%04d@x", i % 2 ? "User" : "user", i);
		snprintf(d.status, sizeof(d.status), "active");
		snprintf(d.model, sizeof(d.model), "Model %d", i % 50);
		memcpy(d.device_key, &i, sizeof(i));
		memcpy(d.hv_key, &i, sizeof(i));
		d.enrolled_at = 1000 + i;
		d.last_seen_at = 5000 + (i * 7919) % 3000;
		assert_int_equal(st->ops->device_insert(st, &d), 0);
	}
	assert_int_equal(st->ops->tx_commit(st), 0);
	store_fx_exec(fx, "ANALYZE");
}

/*
 * PostgreSQL's plans (EXPLAIN of the very statement the backend builds, test builds only):
 * every sort and its keyset page walks its index, search is one index range per column, and
 * the audit filters use theirs; none reads a whole table.
 */
static void
pg_plans(struct fx *fx)
{
	static const struct {
		struct audit_filter f;
		const char *index;
	} audit[] = {
		{{.actor = "adm_3", .limit = 50}, NULL},
		{{.action = "act.4", .limit = 50}, NULL},
		{{.target = "dev_42", .limit = 50}, "audit_target"},
		{{.since_ms = 1000000, .until_ms = 1100000, .limit = 50}, "audit_at"},
		{{.since_ms = 2400000, .limit = 50}, "audit_at"}, /* the last fifth */
		{{.until_ms = 100000, .limit = 50}, NULL},
	};
	static const char *const sort_index[] = {"devices_last_seen", "devices_owner_nocase",
						 "devices_enrolled"};
	char plan[4096], what[64];

	pg_fill(fx);
	for (size_t i = 0; i < sizeof(audit) / sizeof(audit[0]); i++) {
		assert_int_equal(
			store_pg_explain_audit_list(fx->st, &audit[i].f, plan, sizeof(plan)), 0);
		snprintf(what, sizeof(what), "audit case %zu", i);
		check_plan(what, plan, audit[i].index);
	}
	for (int sort = DEV_SORT_LAST_SEEN; sort <= DEV_SORT_ENROLLED; sort++) {
		for (int k = 0; k < 4; k++) {
			struct device_query q = {.compliant = -1, .limit = 50};

			q.sort = (enum device_sort)sort;
			q.desc = k & 1;
			q.has_after = k >> 1;
			q.after_key = 6000;
			q.after_text = "user1500@x";
			q.after_rowid = 1500;
			assert_int_equal(
				store_pg_explain_device_query(fx->st, &q, plan, sizeof(plan)), 0);
			snprintf(what, sizeof(what), "sort %d, case %d", sort, k);
			check_plan(what, plan, sort_index[sort]);
		}
	}
	{
		struct device_query q = {.compliant = -1, .q = "user123", .limit = 50};

		assert_int_equal(store_pg_explain_device_query(fx->st, &q, plan, sizeof(plan)), 0);
		check_plan("search", plan, "BitmapOr");
		check_plan("search", plan, "devices_fingerprint");
	}
}

static void
test_store_query_plans_use_indexes(void **state)
{
	struct fx *fx = *state;
	static const struct {
		struct audit_filter f;
		const char *index;
	} cases[] = {
		{{.actor = "a"}, "audit_actor"},   {{.action = "a"}, "audit_action"},
		{{.target = "a"}, "audit_target"}, {{.since_ms = 1, .until_ms = 2}, "audit_at"},
		{{.since_ms = 1}, "audit_at"},     {{.until_ms = 2}, "INTEGER PRIMARY KEY"},
	};
	char sql[512], plan[1024];

	if (fx_backend == FX_PG) {
		pg_plans(fx);
		return;
	}
	add_rows(fx->st);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(store_sqlite_audit_list_sql(&cases[i].f, sql, sizeof(sql)), 0);
		plan_of(fx->path, sql, plan, sizeof(plan));
		if (strstr(plan, cases[i].index) == NULL)
			fail_msg("case %zu: plan \"%s\" does not use %s", i, plan, cases[i].index);
	}
	/* Several filters: some index narrows it, never a scan of the whole table. */
	{
		struct audit_filter f = {.actor = "a", .action = "b", .target = "c", .since_ms = 1};

		assert_int_equal(store_sqlite_audit_list_sql(&f, sql, sizeof(sql)), 0);
		plan_of(fx->path, sql, plan, sizeof(plan));
		if (strstr(plan, "USING INDEX") == NULL)
			fail_msg("combined filters: plan \"%s\" uses no index", plan);
	}
	plan_of(fx->path, store_sqlite_policy_counts_sql, plan, sizeof(plan));
	if (strstr(plan, "COVERING INDEX devices_policy_applied") == NULL)
		fail_msg("policy counts: plan \"%s\" is not a covering index scan", plan);
	assert_int_equal(store_sqlite_audit_list_sql(&cases[0].f, sql, 16), -ENAMETOOLONG);
}

static void
add_device(struct store *st, const char *id, const char *status, const char *policy,
	   const char *applied, int64_t version)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.owner, sizeof(d.owner), "x@example.com");
	snprintf(d.status, sizeof(d.status), "%s", status);
	memcpy(d.device_key, id, strlen(id));
	snprintf(d.policy_name, sizeof(d.policy_name), "%s", policy);
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	snprintf(d.applied_policy_name, sizeof(d.applied_policy_name), "%s", applied);
	d.applied_policy_version = version;
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_APPLIED), 0);
}

static void
test_store_query_policy_counts(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	int64_t assigned = -1, applied = -1;

	add_device(st, "d1", "active", "strict", "strict", 3);  /* follows, applied v3 */
	add_device(st, "d2", "active", "strict", "strict", 2);  /* follows, older version */
	add_device(st, "d3", "active", "strict", "", 0);        /* follows, nothing yet */
	add_device(st, "d4", "retired", "strict", "strict", 3); /* retired: not counted */
	add_device(st, "d5", "active", "", "strict", 3);        /* follows the default */
	add_device(st, "d6", "active", "other", "strict", 3);   /* another policy */

	assert_int_equal(st->ops->policy_counts(st, "strict", 0, 3, &assigned, &applied), 0);
	assert_int_equal(assigned, 3);
	assert_int_equal(applied, 1);
	/* As the default it also has the devices with no policy of their own. */
	assert_int_equal(st->ops->policy_counts(st, "strict", 1, 3, &assigned, &applied), 0);
	assert_int_equal(assigned, 4);
	assert_int_equal(applied, 2);
	assert_int_equal(st->ops->policy_counts(st, "none", 0, 1, &assigned, &applied), 0);
	assert_int_equal(assigned, 0);
	assert_int_equal(applied, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store_query_audit_filters, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_store_query_plans_use_indexes, store_fx_setup,
						store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_store_query_audit_sparse_filter,
						store_fx_setup, store_fx_teardown),
		cmocka_unit_test_setup_teardown(test_store_query_policy_counts, store_fx_setup,
						store_fx_teardown),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("audit and policy queries", tests,
				 sizeof(tests) / sizeof(tests[0]));
}

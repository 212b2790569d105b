/*
 * Unit tests of the store's side of following and stopping bulk operations (migration 0015),
 * on both backends: bulk_list newest first with ties on the time broken by id, keyset pages
 * that list each bulk once, the state filter; bulk_stop ends only a running bulk (a done or
 * already stopped one is -ENOENT), writes who, why and when, and a stopped bulk is no longer
 * claimed; token_get finds a token by id, revoked or not.
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
#include "store_fixture.h"
#include "util.h"

/* A running bulk id made at created. */
static void
add(struct store *st, const char *id, int64_t created)
{
	struct bulk_op b;

	memset(&b, 0, sizeof(b));
	str_copy(b.id, sizeof(b.id), id);
	str_copy(b.type, sizeof(b.type), "lock");
	str_copy(b.requested_by, sizeof(b.requested_by), "adm_one");
	str_copy(b.filter, sizeof(b.filter), "{}");
	b.f_compliant = -1;
	b.enrolled_until = b.created_at = b.updated_at = created;
	b.expected_count = 1;
	b.cursor_key = -1;
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
}

/* The ids of one page into out ("a,b,c"); the page's size. */
static size_t
page(struct store *st, const char *state, int64_t after_created, const char *after_id, size_t limit,
     char *out, size_t cap, struct bulk_op *last)
{
	struct bulk_list_filter f = {state, after_created, after_id, limit};
	struct bulk_op items[8];
	size_t n = 0, k = 0;

	assert_true(limit <= 8);
	assert_int_equal(st->ops->bulk_list(st, &f, items, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : "", items[i].id);
	if (n > 0)
		*last = items[n - 1];
	return n;
}

static void
test_bulk_list_pages(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct bulk_op last;
	char ids[256];

	add(st, "blk_a", 100);
	add(st, "blk_b", 200);
	add(st, "blk_c", 200); /* ties with blk_b: the id decides */
	add(st, "blk_d", 300);
	assert_int_equal(page(st, NULL, 0, NULL, 2, ids, sizeof(ids), &last), 2);
	assert_string_equal(ids, "blk_d,blk_c");
	assert_int_equal(page(st, NULL, last.created_at, last.id, 2, ids, sizeof(ids), &last), 2);
	assert_string_equal(ids, "blk_b,blk_a");
	assert_int_equal(page(st, NULL, last.created_at, last.id, 2, ids, sizeof(ids), &last), 0);
	/* By state: after blk_c is stopped, running lists the other three, canceled just it. */
	assert_int_equal(st->ops->bulk_stop(st, "blk_c", "canceled", "adm_two", "", 400), 0);
	assert_int_equal(page(st, "running", 0, "", 8, ids, sizeof(ids), &last), 3);
	assert_string_equal(ids, "blk_d,blk_b,blk_a");
	assert_int_equal(page(st, "canceled", 0, "", 8, ids, sizeof(ids), &last), 1);
	assert_string_equal(last.ended_by, "adm_two");
	assert_int_equal(page(st, "done", 0, "", 8, ids, sizeof(ids), &last), 0);
}

static void
test_bulk_stop_only_running(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct bulk_op got;

	add(st, "blk_run", 100);
	add(st, "blk_done", 50);
	/* The older one is claimed and finished. */
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), 0);
	assert_string_equal(got.id, "blk_done");
	str_copy(got.state, sizeof(got.state), "done");
	got.finished_at = 60;
	assert_int_equal(st->ops->bulk_progress(st, &got), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(st->ops->bulk_stop(st, "blk_done", "canceled", "adm_x", "", 70), -ENOENT);
	assert_int_equal(st->ops->bulk_stop(st, "blk_none", "canceled", "adm_x", "", 70), -ENOENT);
	assert_int_equal(st->ops->bulk_stop(st, "blk_run", "refused", "adm_one",
					    "the requester's account is disabled", 120),
			 0);
	assert_int_equal(st->ops->bulk_get(st, "blk_run", &got), 0);
	assert_string_equal(got.state, "refused");
	assert_string_equal(got.ended_by, "adm_one");
	assert_string_equal(got.ended_why, "the requester's account is disabled");
	assert_int_equal(got.finished_at, 120);
	assert_int_equal(got.updated_at, 120);
	assert_int_equal(st->ops->bulk_stop(st, "blk_run", "canceled", "adm_x", "", 130), -ENOENT);
	assert_int_equal(st->ops->bulk_get(st, "blk_done", &got), 0);
	assert_string_equal(got.state, "done");
	assert_string_equal(got.ended_by, "");
	/* Neither is claimed any more. */
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), -ENOENT);
	st->ops->tx_rollback(st);
}

static void
test_token_get(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct api_token t, got;

	memset(&t, 0, sizeof(t));
	str_copy(t.id, sizeof(t.id), "tok_1");
	str_copy(t.name, sizeof(t.name), "script");
	str_copy(t.role, sizeof(t.role), "helpdesk");
	memset(t.hash, 7, sizeof(t.hash));
	str_copy(t.created_by, sizeof(t.created_by), "system");
	t.created_at = 10;
	t.expires_at = 99;
	assert_int_equal(st->ops->token_insert(st, &t), 0);
	assert_int_equal(st->ops->token_get(st, "tok_1", &got), 0);
	assert_string_equal(got.role, "helpdesk");
	assert_int_equal(got.expires_at, 99);
	assert_int_equal(got.revoked_at, 0);
	assert_int_equal(st->ops->token_revoke(st, "tok_1", 20), 0);
	assert_int_equal(st->ops->token_get(st, "tok_1", &got), 0);
	assert_int_equal(got.revoked_at, 20);
	assert_int_equal(st->ops->token_get(st, "tok_none", &got), -ENOENT);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_bulk_list_pages),
		T(test_bulk_stop_only_running),
		T(test_token_get),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store bulk list and stop", both, ARRAY_SIZE(both));
}

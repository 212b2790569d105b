/*
 * Unit tests of the store's bulk operations by filter (store_sqlite_bulk.c, store_pg_bulk.c,
 * migration 0014) and of device_count, on both backends (store_fx_run_each): a row reads back
 * as written, an Idempotency-Key is unique per requester, progress is written and a bulk that
 * is done is no longer claimed, the claim takes the oldest running bulk, device_count agrees
 * with the device query and honours enrolled_until, the bulk's walk in row id order pages
 * every device once however their times tie; and on PostgreSQL, where several servers
 * claim at once, a bulk locked by one transaction is skipped by another (SKIP LOCKED); on
 * SQLite, a writer waiting for the write turn is counted by write_waiters.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "store_fixture.h"
#include "util.h"

static void
bulk_fill(struct bulk_op *b, const char *id, int64_t created, const char *key)
{
	memset(b, 0, sizeof(*b));
	str_copy(b->id, sizeof(b->id), id);
	str_copy(b->type, sizeof(b->type), "wipe");
	str_copy(b->reason, sizeof(b->reason), "lost <b>batch</b>");
	str_copy(b->requested_by, sizeof(b->requested_by), "tok_admin");
	if (key != NULL) {
		str_copy(b->idempotency_key, sizeof(b->idempotency_key), key);
		memset(b->request_hash, 0xab, sizeof(b->request_hash));
	}
	str_copy(b->filter, sizeof(b->filter), "{\"owner\":\"a@x\"}");
	str_copy(b->f_owner, sizeof(b->f_owner), "a@x");
	str_copy(b->f_status, sizeof(b->f_status), "active");
	b->f_compliant = -1;
	b->f_reasons = 3;
	b->f_seen_before = 77;
	b->enrolled_until = created;
	b->expected_count = 42;
	b->created_at = b->updated_at = created;
	b->cursor_key = -1;
}

static void
test_bulk_row_roundtrip(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct bulk_op b, got;

	bulk_fill(&b, "blk_1", 100, "key-1");
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	assert_int_equal(st->ops->bulk_get(st, "blk_1", &got), 0);
	assert_string_equal(got.type, "wipe");
	assert_string_equal(got.reason, "lost <b>batch</b>");
	assert_string_equal(got.filter, b.filter);
	assert_string_equal(got.f_owner, "a@x");
	assert_string_equal(got.f_status, "active");
	assert_string_equal(got.f_q, "");
	assert_string_equal(got.state, "running");
	assert_int_equal(got.f_compliant, -1);
	assert_int_equal(got.f_reasons, 3);
	assert_int_equal(got.f_seen_before, 77);
	assert_int_equal(got.expected_count, 42);
	assert_int_equal(got.cursor_key, -1);
	assert_int_equal(got.queued, 0);
	assert_memory_equal(got.request_hash, b.request_hash, 32);
	assert_int_equal(st->ops->bulk_get(st, "blk_none", &got), -ENOENT);
	/* The key is the requester's: a second use is refused, found, and free for another. */
	bulk_fill(&b, "blk_2", 101, "key-1");
	assert_int_equal(st->ops->bulk_insert(st, &b), -EEXIST);
	assert_int_equal(st->ops->bulk_by_idempotency(st, "tok_admin", "key-1", &got), 0);
	assert_string_equal(got.id, "blk_1");
	str_copy(b.requested_by, sizeof(b.requested_by), "tok_other");
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	assert_int_equal(st->ops->bulk_by_idempotency(st, "tok_admin", "key-2", &got), -ENOENT);
	/* Without keys, any number. */
	bulk_fill(&b, "blk_3", 102, NULL);
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	bulk_fill(&b, "blk_4", 103, NULL);
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
}

static void
test_bulk_claim_and_progress(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct bulk_op a, b, got;

	bulk_fill(&b, "blk_new", 200, NULL);
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	bulk_fill(&a, "blk_old", 150, NULL);
	assert_int_equal(st->ops->bulk_insert(st, &a), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), 0);
	assert_string_equal(got.id, "blk_old"); /* the oldest first */
	got.cursor_key = 1234;
	got.cursor_rowid = 56;
	got.queued = 10;
	got.already_pending = 2;
	got.skipped = 1;
	str_copy(got.state, sizeof(got.state), "done");
	got.updated_at = got.finished_at = 300;
	assert_int_equal(st->ops->bulk_progress(st, &got), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(st->ops->bulk_get(st, "blk_old", &got), 0);
	assert_int_equal(got.cursor_key, 1234);
	assert_int_equal(got.cursor_rowid, 56);
	assert_int_equal(got.queued, 10);
	assert_int_equal(got.already_pending, 2);
	assert_int_equal(got.skipped, 1);
	assert_int_equal(got.finished_at, 300);
	assert_string_equal(got.state, "done");
	/* A done bulk is not claimed again; the next one is; then none. */
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), 0);
	assert_string_equal(got.id, "blk_new");
	str_copy(got.state, sizeof(got.state), "done");
	assert_int_equal(st->ops->bulk_progress(st, &got), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), -ENOENT);
	st->ops->tx_rollback(st);
	str_copy(got.id, sizeof(got.id), "blk_gone");
	assert_int_equal(st->ops->bulk_progress(st, &got), -ENOENT);
}

static void
add_device(struct store *st, int i, const char *owner, int64_t enrolled)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev_%04d", i);
	str_copy(d.owner, sizeof(d.owner), owner);
	str_copy(d.status, sizeof(d.status), i % 5 == 0 ? "retired" : "active");
	for (size_t k = 0; k < sizeof(d.hv_key); k++) {
		d.hv_key[k] = (uint8_t)(i * 31 + (int)k);
		d.device_key[k] = (uint8_t)(i * 17 + (int)k + 1);
	}
	d.enrolled_at = enrolled;
	assert_int_equal(st->ops->device_insert(st, &d), 0);
}

static void
test_bulk_device_count(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device_query q;
	struct device rows[64];
	int64_t n = -1;
	size_t got;

	for (int i = 0; i < 40; i++)
		add_device(st, i, i % 2 ? "odd@x" : "even@x", 1000 + i);
	memset(&q, 0, sizeof(q));
	q.compliant = -1;
	assert_int_equal(st->ops->device_count(st, &q, &n), 0);
	assert_int_equal(n, 40);
	q.owner = "odd@x";
	q.status = "active";
	assert_int_equal(st->ops->device_count(st, &q, &n), 0);
	q.limit = 64;
	assert_int_equal(st->ops->device_query(st, &q, rows, &got), 0);
	assert_int_equal(n, (int64_t)got);
	assert_int_equal(n, 16); /* 20 odd, of which 5, 15, 25, 35 retired */
	/* enrolled_until: the devices enrolled up to then, a bulk's bound. */
	q.enrolled_until = 1019;
	assert_int_equal(st->ops->device_count(st, &q, &n), 0);
	assert_int_equal(n, 8); /* 1, 3, 7, 9, 11, 13, 17, 19 */
	q.owner = "nobody@x";
	assert_int_equal(st->ops->device_count(st, &q, &n), 0);
	assert_int_equal(n, 0);
}

/* The bulk's walk (DEV_SORT_ROWID): pages by row id alone, each device once, in order. */
static void
test_bulk_rowid_walk(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device_query q;
	struct device rows[8];
	int seen = 0, pages = 0;
	int64_t last = -1;
	size_t got;

	for (int i = 0; i < 40; i++)
		add_device(st, i, "tie@x", 1000); /* every device ties on every time */
	memset(&q, 0, sizeof(q));
	q.compliant = -1;
	q.status = "active";
	q.sort = DEV_SORT_ROWID;
	q.limit = 7;
	do {
		assert_int_equal(st->ops->device_query(st, &q, rows, &got), 0);
		for (size_t i = 0; i < got; i++) {
			assert_true(rows[i].rowid > last);
			assert_string_equal(rows[i].status, "active");
			last = rows[i].rowid;
			seen++;
		}
		q.has_after = 1;
		q.after_rowid = last;
		pages++;
	} while (got == q.limit && pages < 20);
	assert_int_equal(seen, 32); /* 40 less the 8 retired */
}

struct claimer {
	struct store *st;
	int r;
	char id[STORE_ID_MAX];
};

static void *
claim_other(void *p)
{
	struct claimer *c = p;
	struct bulk_op got;

	c->r = c->st->ops->tx_begin(c->st);
	if (c->r == 0) {
		c->r = c->st->ops->bulk_claim(c->st, &got);
		if (c->r == 0)
			str_copy(c->id, sizeof(c->id), got.id);
		c->st->ops->tx_rollback(c->st);
	}
	return NULL;
}

/* PostgreSQL: a bulk one server's batch holds is skipped, not waited for, by another. */
static void
test_bulk_claim_skips_locked(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct claimer c = {.st = st};
	struct bulk_op b, got;
	pthread_t th;

	bulk_fill(&b, "blk_a", 100, NULL);
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	bulk_fill(&b, "blk_b", 200, NULL);
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), 0);
	assert_string_equal(got.id, "blk_a");
	/* Another connection (thread) meanwhile: the next bulk, at once. */
	assert_int_equal(pthread_create(&th, NULL, claim_other, &c), 0);
	pthread_join(th, NULL);
	assert_int_equal(c.r, 0);
	assert_string_equal(c.id, "blk_b");
	st->ops->tx_rollback(st);
	/* Released: the oldest again. */
	c.id[0] = '\0';
	claim_other(&c);
	assert_string_equal(c.id, "blk_a");
}

static void *
begin_commit(void *p)
{
	struct store *st = p;

	if (st->ops->tx_begin(st) == 0)
		st->ops->tx_commit(st);
	return NULL;
}

/* SQLite: a writer waiting for the write turn is counted, and served once the holder ends. */
static void
test_bulk_write_waiters(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	pthread_t th;
	int seen = 0;

	assert_non_null(st->ops->write_waiters);
	assert_int_equal(st->ops->write_waiters(st), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->write_waiters(st), 0); /* the holder is not waiting */
	assert_int_equal(pthread_create(&th, NULL, begin_commit, st), 0);
	for (int i = 0; i < 2000 && !seen; i++) {
		seen = st->ops->write_waiters(st) == 1;
		if (!seen)
			usleep(1000);
	}
	assert_true(seen);
	assert_int_equal(st->ops->tx_commit(st), 0);
	pthread_join(th, NULL);
	assert_int_equal(st->ops->write_waiters(st), 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_bulk_row_roundtrip),
		T(test_bulk_claim_and_progress),
		T(test_bulk_device_count),
		T(test_bulk_rowid_walk),
	};
	const struct CMUnitTest sqlite_only[] = {
		T(test_bulk_write_waiters),
	};
	const struct CMUnitTest pg_only[] = {
		T(test_bulk_claim_skips_locked),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_each("store bulk operations", both, ARRAY_SIZE(both), sqlite_only,
				 ARRAY_SIZE(sqlite_only), pg_only, ARRAY_SIZE(pg_only));
}

/*
 * Conformance suite for the store interface, continued from test_store.c (same fixture: a fresh
 * store of each backend per test): commands (idempotency keys, one counter per device, lists and
 * filters, open commands by counter, updates, expiry, counts), write transactions (rollback;
 * on SQLite, writers of several threads taking turns and WAL checkpoints off the write path)
 * and the audit log (append, newest, lists, iteration order and early stop).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "store/store.h"
#include "store_fixture.h"
#include "store_records.h"

/* ---- commands ---- */

static void
test_store_command_insert_get_idempotency(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct command c, got;

	insert_device(st, "dev_c", "alice", "active");
	make_command(&c, "cmd_1", "dev_c", 1, "queued", 9000);
	snprintf(c.idempotency_key, sizeof(c.idempotency_key), "key-1");
	memset(c.request_hash, 0x5a, sizeof(c.request_hash));
	assert_int_equal(st->ops->command_insert(st, &c), 0);

	assert_int_equal(st->ops->command_get(st, "cmd_1", &got), 0);
	assert_true(got.rowid > 0);
	assert_string_equal(got.device_id, "dev_c");
	assert_string_equal(got.type, "lock");
	assert_string_equal(got.status, "queued");
	assert_string_equal(got.reason, "reason for cmd_1");
	assert_int_equal(got.counter, 1);
	assert_memory_equal(got.ticket, c.ticket, sizeof(c.ticket));
	assert_string_equal(got.created_by, "tok_admin");
	assert_string_equal(got.idempotency_key, "key-1");
	assert_memory_equal(got.request_hash, c.request_hash, 32);
	assert_int_equal(got.created_at, 4000);
	assert_int_equal(got.expires_at, 9000);
	assert_int_equal(got.delivered_at, 0);
	assert_int_equal(got.completed_at, 0);
	assert_int_equal(got.receipt_len, 0);
	assert_int_equal(got.verified, 0);
	assert_string_equal(got.result_detail, "");

	assert_int_equal(st->ops->command_by_idempotency(st, "tok_admin", "key-1", &got), 0);
	assert_string_equal(got.id, "cmd_1");
	assert_int_equal(st->ops->command_by_idempotency(st, "tok_other", "key-1", &got), -ENOENT);
	assert_int_equal(st->ops->command_by_idempotency(st, "tok_admin", "key-2", &got), -ENOENT);

	/* The same key from the same caller is taken; another caller may use it. */
	make_command(&c, "cmd_2", "dev_c", 2, "queued", 9000);
	snprintf(c.idempotency_key, sizeof(c.idempotency_key), "key-1");
	assert_int_equal(st->ops->command_insert(st, &c), -EEXIST);
	snprintf(c.created_by, sizeof(c.created_by), "tok_other");
	assert_int_equal(st->ops->command_insert(st, &c), 0);

	/* Commands without a key never collide and are not found by "". */
	insert_command(st, "cmd_3", "dev_c", 3, "queued", 9000);
	insert_command(st, "cmd_4", "dev_c", 4, "queued", 9000);
	assert_int_equal(st->ops->command_get(st, "cmd_4", &got), 0);
	assert_string_equal(got.idempotency_key, "");
	assert_int_equal(st->ops->command_by_idempotency(st, "tok_admin", "", &got), -ENOENT);

	assert_int_equal(st->ops->command_get(st, "cmd_none", &got), -ENOENT);
	/* A command for a device that does not exist is refused. */
	make_command(&c, "cmd_orphan", "dev_none", 1, "queued", 9000);
	assert_true(st->ops->command_insert(st, &c) < 0);
}

static void
test_store_command_unique_device_counter(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct command c;

	insert_device(st, "dev_1", "alice", "active");
	insert_device(st, "dev_2", "alice", "active");
	insert_command(st, "cmd_a", "dev_1", 5, "queued", 9000);
	make_command(&c, "cmd_b", "dev_1", 5, "queued", 9000);
	assert_int_equal(st->ops->command_insert(st, &c), -EEXIST);
	/* The same counter on another device is fine; so is the same id twice never. */
	insert_command(st, "cmd_b", "dev_2", 5, "queued", 9000);
	make_command(&c, "cmd_b", "dev_1", 6, "queued", 9000);
	assert_int_equal(st->ops->command_insert(st, &c), -EEXIST);
}

static void
test_store_command_list_filters_and_pages(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct command page[4];
	struct command_filter f = {0};
	size_t n = 0;

	insert_device(st, "dev_1", "alice", "active");
	insert_device(st, "dev_2", "bob", "active");
	insert_command(st, "c1", "dev_1", 1, "queued", 9000);
	insert_command(st, "c2", "dev_2", 1, "queued", 9000);
	insert_command(st, "c3", "dev_1", 2, "completed", 9000);
	insert_command(st, "c4", "dev_1", 3, "queued", 9000);
	insert_command(st, "c5", "dev_2", 2, "failed", 9000);

	f.device_id = "dev_1";
	f.limit = 2;
	assert_int_equal(st->ops->command_list(st, &f, page, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(page[0].id, "c1");
	assert_string_equal(page[1].id, "c3");
	f.after = page[1].rowid;
	assert_int_equal(st->ops->command_list(st, &f, page, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].id, "c4");

	f.device_id = NULL;
	f.status = "queued";
	f.after = 0;
	f.limit = 4;
	assert_int_equal(st->ops->command_list(st, &f, page, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(page[0].id, "c1");
	assert_string_equal(page[1].id, "c2");
	assert_string_equal(page[2].id, "c4");

	f.device_id = "dev_2";
	assert_int_equal(st->ops->command_list(st, &f, page, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].id, "c2");

	f.device_id = NULL;
	f.status = NULL;
	assert_int_equal(st->ops->command_list(st, &f, page, &n), 0);
	assert_int_equal(n, 4);
}

static void
test_store_command_open_by_counter(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	static const char *const statuses[] = {"completed", "acknowledged", "failed", "queued",
					       "canceled",  "delivered",    "expired"};
	static const int64_t counters[] = {7, 5, 6, 3, 2, 1, 4};
	struct command open[8];
	size_t n = 0;

	insert_device(st, "dev_o", "alice", "active");
	insert_device(st, "dev_p", "alice", "active");
	for (size_t i = 0; i < 7; i++) {
		char id[16];

		snprintf(id, sizeof(id), "o%zu", i);
		insert_command(st, id, "dev_o", counters[i], statuses[i], 9000);
	}
	insert_command(st, "p1", "dev_p", 1, "queued", 9000);

	assert_int_equal(st->ops->command_open(st, "dev_o", open, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(open[0].counter, 1);
	assert_string_equal(open[0].status, "delivered");
	assert_int_equal(open[1].counter, 3);
	assert_string_equal(open[1].status, "queued");
	assert_int_equal(open[2].counter, 5);
	assert_string_equal(open[2].status, "acknowledged");

	assert_int_equal(st->ops->command_open(st, "dev_o", open, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(open[1].counter, 3);
	assert_int_equal(st->ops->command_open(st, "dev_none", open, 8, &n), 0);
	assert_int_equal(n, 0);
}

static void
test_store_command_update(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct command c, got;

	insert_device(st, "dev_u", "alice", "active");
	make_command(&c, "cmd_u", "dev_u", 9, "queued", 9000);
	assert_int_equal(st->ops->command_insert(st, &c), 0);

	snprintf(c.status, sizeof(c.status), "completed");
	c.delivered_at = 4100;
	c.acknowledged_at = 4200;
	c.completed_at = 4300;
	snprintf(c.result_detail, sizeof(c.result_detail), "locked in 2 s");
	for (size_t i = 0; i < 100; i++)
		c.receipt[i] = (uint8_t)(255 - i);
	c.receipt_len = 100;
	c.verified = 1;
	/* Fields update does not own must not change even if the caller's copy differs. */
	c.counter = 77;
	snprintf(c.type, sizeof(c.type), "wipe");
	/* Compare-and-set on the status: a caller whose copy is out of date changes nothing. */
	assert_int_equal(st->ops->command_update(st, &c, "delivered"), -ESTALE);
	assert_int_equal(st->ops->command_get(st, "cmd_u", &got), 0);
	assert_string_equal(got.status, "queued");
	assert_int_equal(got.completed_at, 0);
	assert_int_equal(st->ops->command_update(st, &c, "queued"), 0);

	assert_int_equal(st->ops->command_get(st, "cmd_u", &got), 0);
	assert_string_equal(got.status, "completed");
	assert_int_equal(got.delivered_at, 4100);
	assert_int_equal(got.acknowledged_at, 4200);
	assert_int_equal(got.completed_at, 4300);
	assert_string_equal(got.result_detail, "locked in 2 s");
	assert_int_equal(got.receipt_len, 100);
	assert_memory_equal(got.receipt, c.receipt, 100);
	assert_int_equal(got.verified, 1);
	assert_int_equal(got.counter, 9);
	assert_string_equal(got.type, "lock");

	snprintf(c.id, sizeof(c.id), "cmd_none");
	assert_int_equal(st->ops->command_update(st, &c, "queued"), -ENOENT);
}

static void
test_store_command_expire_open_and_due_only(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	static const struct {
		const char *id;
		const char *status;
		int64_t expires_at;
		const char *after;
	} rows[] = {
		{"e1", "queued", 100, "expired"},       {"e2", "delivered", 99, "expired"},
		{"e3", "acknowledged", 100, "expired"}, {"e4", "queued", 101, "queued"},
		{"e5", "completed", 50, "completed"},   {"e6", "failed", 50, "failed"},
		{"e7", "canceled", 50, "canceled"},     {"e8", "delivered", 500, "delivered"},
	};
	struct command got;
	char devs[8][STORE_ID_MAX];
	size_t n = 99;

	insert_device(st, "dev_e", "alice", "active");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		insert_command(st, rows[i].id, "dev_e", (int64_t)i + 1, rows[i].status,
			       rows[i].expires_at);

	assert_int_equal(st->ops->command_expire(st, 100, devs, 8, &n), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(devs[i], "dev_e");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		assert_int_equal(st->ops->command_get(st, rows[i].id, &got), 0);
		assert_string_equal(got.status, rows[i].after);
		if (strcmp(rows[i].after, "expired") == 0)
			assert_int_equal(got.completed_at, 100);
		else
			assert_int_equal(got.completed_at, 0);
	}
	assert_int_equal(st->ops->command_expire(st, 100, devs, 8, &n), 0);
	assert_int_equal(n, 0);
	/* at most max per call; the rest stay for the next call */
	assert_int_equal(st->ops->command_expire(st, 1000, devs, 1, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(st->ops->command_expire(st, 1000, devs, 8, &n), 0);
	assert_int_equal(n, 1);
}

static void
test_store_command_count_by_status(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct status_count c[8];
	size_t n = 0;

	insert_device(st, "dev_n", "alice", "active");
	insert_command(st, "n1", "dev_n", 1, "queued", 9000);
	insert_command(st, "n2", "dev_n", 2, "queued", 9000);
	insert_command(st, "n3", "dev_n", 3, "failed", 9000);
	assert_int_equal(st->ops->command_count_by_status(st, c, 8, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(count_of(c, n, "queued"), 2);
	assert_int_equal(count_of(c, n, "failed"), 1);
}

/* ---- transactions ---- */

static void
test_store_tx_rollback_discards_commit_keeps(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct api_token t, got;
	int64_t n = -1;

	make_token(&t, 1);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->token_insert(st, &t), 0);
	insert_device(st, "dev_tx", "alice", "active");
	/* Visible inside the transaction... */
	assert_int_equal(st->ops->token_by_hash(st, t.hash, &got), 0);
	st->ops->tx_rollback(st);
	/* ...and gone after the rollback. */
	assert_int_equal(st->ops->token_by_hash(st, t.hash, &got), -ENOENT);
	assert_int_equal(st->ops->device_get(st, "dev_tx", &(struct device){0}), -ENOENT);
	assert_int_equal(st->ops->token_count(st, &n), 0);
	assert_int_equal(n, 0);

	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->token_insert(st, &t), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);

	/* Committed: durable across a reopen. */
	st->ops->close(st);
	f->st = NULL;
	assert_int_equal(store_fx_open(f, &f->st), 0);
	assert_int_equal(f->st->ops->token_by_hash(f->st, t.hash, &got), 0);
	assert_string_equal(got.id, "tok_1");
}

#define TX_ROUNDS 40

struct tx_worker {
	struct store *st;
	pthread_barrier_t *go;
	int failures;
};

/*
 * Each round reads the count and inserts the token numbered by it, inside one transaction: if
 * two transactions ever interleaved, both would pick the same number and one insert would fail.
 */
static void *
tx_worker_main(void *arg)
{
	struct tx_worker *w = arg;
	struct store *st = w->st;

	pthread_barrier_wait(w->go);
	for (int i = 0; i < TX_ROUNDS; i++) {
		struct api_token t;
		int64_t n = 0;

		if (st->ops->tx_begin(st) != 0) {
			w->failures++;
			continue;
		}
		if (st->ops->token_count(st, &n) != 0) {
			st->ops->tx_rollback(st);
			w->failures++;
			continue;
		}
		make_token(&t, (int)n);
		if (st->ops->token_insert(st, &t) != 0) {
			st->ops->tx_rollback(st);
			w->failures++;
			continue;
		}
		if (st->ops->tx_commit(st) != 0)
			w->failures++;
	}
	return NULL;
}

static void
test_store_tx_concurrent_writers_serialise(void **state)
{
	struct store *st = ((struct fx *)*state)->st;

	/*
	 * SQLite's promise only: its write transactions take turns process-wide. PostgreSQL lets
	 * them overlap and keeps each invariant with row locks and constraints instead, which
	 * test_store_race checks on both backends.
	 */
	struct tx_worker w[2];
	pthread_t th[2];
	pthread_barrier_t go;
	struct api_token page[2 * TX_ROUNDS];
	int64_t n = 0;
	size_t k = 0;

	assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
	for (int i = 0; i < 2; i++) {
		w[i] = (struct tx_worker){.st = st, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, tx_worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);

	assert_int_equal(w[0].failures, 0);
	assert_int_equal(w[1].failures, 0);
	assert_int_equal(st->ops->token_count(st, &n), 0);
	assert_int_equal(n, 2 * TX_ROUNDS);
	assert_int_equal(st->ops->token_list(st, 0, 2 * TX_ROUNDS, page, &k), 0);
	assert_int_equal(k, 2 * TX_ROUNDS);
	for (size_t i = 0; i < k; i++) {
		char want[16];

		snprintf(want, sizeof(want), "tok_%zu", i);
		assert_string_equal(page[i].id, want);
	}
}

/* ---- audit rows ---- */

static void
insert_audit_rows(struct store *st)
{
	static const struct {
		const char *actor, *action, *target;
		int64_t at_ms;
	} rows[] = {
		{"tok_a", "token.create", "tok_b", 1000},
		{"tok_b", "device.delete", "dev_1", 2000},
		{"tok_a", "device.delete", "dev_2", 3000},
		{"system", "command.expire", "", 4000},
		{"tok_a", "token.create", "tok_c", 5000},
	};
	struct audit_entry e;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		make_audit(&e, (int64_t)i + 1, rows[i].actor, rows[i].action, rows[i].target,
			   rows[i].at_ms);
		assert_int_equal(st->ops->audit_insert(st, &e), 0);
	}
}

static void
test_store_audit_insert_last_list(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct audit_entry e, want, out[8];
	struct audit_filter f = {.limit = 8};
	size_t n = 0;

	assert_int_equal(st->ops->audit_last(st, &e), -ENOENT);
	insert_audit_rows(st);

	assert_int_equal(st->ops->audit_last(st, &e), 0);
	make_audit(&want, 5, "tok_a", "token.create", "tok_c", 5000);
	assert_int_equal(e.seq, 5);
	assert_int_equal(e.at_ms, 5000);
	assert_string_equal(e.actor, want.actor);
	assert_string_equal(e.action, want.action);
	assert_string_equal(e.target, want.target);
	assert_string_equal(e.outcome, "ok");
	assert_string_equal(e.detail, "detail 5");
	assert_memory_equal(e.prev_hash, want.prev_hash, 32);
	assert_memory_equal(e.hash, want.hash, 32);

	/* The log is append-only: a seq cannot be written twice. */
	make_audit(&e, 3, "tok_x", "x", "x", 1);
	assert_int_equal(st->ops->audit_insert(st, &e), -EEXIST);

	f.actor = "tok_a";
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].seq, 1);
	assert_int_equal(out[1].seq, 3);
	assert_int_equal(out[2].seq, 5);

	f.action = "device.delete";
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].seq, 3);

	f = (struct audit_filter){.target = "dev_1", .limit = 8};
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].seq, 2);

	f = (struct audit_filter){.since_ms = 3000, .limit = 8};
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[0].seq, 3);

	f = (struct audit_filter){.after = 2, .limit = 2};
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].seq, 3);
	assert_int_equal(out[1].seq, 4);
	f.after = out[1].seq;
	assert_int_equal(st->ops->audit_list(st, &f, out, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(out[0].seq, 5);
}

struct iter_rec {
	int64_t seqs[8];
	size_t n;
	size_t stop_after; /* 0: never stop */
};

static int
iter_cb(void *ctx, const struct audit_entry *e)
{
	struct iter_rec *r = ctx;

	if (r->n < 8)
		r->seqs[r->n] = e->seq;
	r->n++;
	return r->stop_after != 0 && r->n == r->stop_after ? 42 : 0;
}

static void
test_store_audit_iter_order_and_early_stop(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct iter_rec r = {0};
	struct audit_entry e;

	assert_int_equal(st->ops->audit_iter(st, iter_cb, &r), 0);
	assert_int_equal(r.n, 0);

	/* Inserted out of order; the walk is by seq. */
	make_audit(&e, 2, "a", "b", "c", 20);
	assert_int_equal(st->ops->audit_insert(st, &e), 0);
	make_audit(&e, 1, "a", "b", "c", 10);
	assert_int_equal(st->ops->audit_insert(st, &e), 0);
	make_audit(&e, 3, "a", "b", "c", 30);
	assert_int_equal(st->ops->audit_insert(st, &e), 0);
	make_audit(&e, 4, "a", "b", "c", 40);
	assert_int_equal(st->ops->audit_insert(st, &e), 0);

	assert_int_equal(st->ops->audit_iter(st, iter_cb, &r), 0);
	assert_int_equal(r.n, 4);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(r.seqs[i], (int64_t)i + 1);

	r = (struct iter_rec){.stop_after = 2};
	assert_int_equal(st->ops->audit_iter(st, iter_cb, &r), 42);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.seqs[1], 2);

	/* A stopped walk leaves the store usable for the next one. */
	r = (struct iter_rec){0};
	assert_int_equal(st->ops->audit_iter(st, iter_cb, &r), 0);
	assert_int_equal(r.n, 4);
}

/*
 * SQLite's own checkpoint runs inside the COMMIT that grows the log past 1,000 pages, with the
 * server's write lock held; the store runs it on its own thread instead. Write ~4,000 pages of rows (and their indexes)
 * through the store: the thread must have checkpointed, the log must have been started over
 * (its file far smaller than what was written) and everything must read back.
 */
static void
test_store_checkpoints_off_the_write_path(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	char wal[160];
	struct stat sb;
	struct device d;
	long long written = 0;

	for (int t = 0; t < 60; t++) {
		assert_int_equal(st->ops->tx_begin(st), 0);
		for (int i = 0; i < 400; i++) {
			char id[32];

			snprintf(id, sizeof(id), "dev_ck_%d_%d", t, i);
			store_fx_add_device(st, id);
		}
		assert_int_equal(st->ops->tx_commit(st), 0);
		usleep(20000);
	}
	for (int i = 0; i < 300 && store_sqlite_checkpoints(st) == 0; i++)
		usleep(10000);
	assert_true(store_sqlite_checkpoints(st) > 0);
	snprintf(wal, sizeof(wal), "%s-wal", f->path);
	assert_int_equal(stat(f->path, &sb), 0);
	written = sb.st_size;
	assert_int_equal(stat(wal, &sb), 0);
	/* The database got the rows; the log was reused instead of growing with them. */
	assert_true(written > 8 * 1024 * 1024);
	assert_true(sb.st_size < written / 2);
	assert_int_equal(st->ops->device_get(st, "dev_ck_0_0", &d), 0);
	assert_int_equal(st->ops->device_get(st, "dev_ck_59_399", &d), 0);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_store_command_insert_get_idempotency),
		T(test_store_command_unique_device_counter),
		T(test_store_command_list_filters_and_pages),
		T(test_store_command_open_by_counter),
		T(test_store_command_update),
		T(test_store_command_expire_open_and_due_only),
		T(test_store_command_count_by_status),
		T(test_store_tx_rollback_discards_commit_keeps),
		T(test_store_audit_insert_last_list),
		T(test_store_audit_iter_order_and_early_stop),
	};
	const struct CMUnitTest only_sqlite[] = {
		T(test_store_tx_concurrent_writers_serialise),
		T(test_store_checkpoints_off_the_write_path),
	};
#undef T

	log_set_level(LOG_LVL_ERR);
	return store_fx_run_each("store commands", tests, ARRAY_SIZE(tests), only_sqlite,
				 ARRAY_SIZE(only_sqlite), NULL, 0);
}

/*
 * Concurrency invariants of the store, on each backend, with several writers at once: ticket
 * counters strictly increase per device and are never issued twice, an enrollment token is used
 * at most its number of uses, an idempotency key and an enrollment nonce are taken once, and the
 * audit chain stays one unbroken chain. On SQLite the writers are threads of one process (a
 * connection each); on PostgreSQL every writer opens a store of its own, as separate servers
 * sharing one database would. A transaction the backend gives up (-EDEADLK: deadlock,
 * serialization failure or a concurrent writer first; -EBUSY) is retried a bounded number of
 * times, as the service does (svc_tx_again).
 * PostgreSQL only: a result and a cancel crossing do not deadlock, servers starting together
 * migrate a fresh database once, and a store lives through a restart of PostgreSQL.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "log.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store_fixture.h"

#define WRITERS 6
#define ROUNDS  20
#define DEVICES 2
#define TRIES   8

/* What a caller runs again: a transaction given up to another (or a busy single statement). */
static int
retryable(int e)
{
	return e == -EDEADLK || e == -EAGAIN || e == -EBUSY;
}

struct race {
	struct fx *f;
	pthread_barrier_t go;
	pthread_mutex_t lock;
	int ok, eexist, other; /* outcomes of the one-shot races */
	int replayed;
};

struct writer {
	struct race *r;
	int n;
	struct store *st; /* this writer's store: shared (SQLite) or its own (PostgreSQL) */
	int64_t last[DEVICES];
	int failures, regressions;
};

static void
fill_command(struct command *c, const char *id, const char *device, int64_t counter)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->device_id, sizeof(c->device_id), "%s", device);
	snprintf(c->type, sizeof(c->type), "lock");
	snprintf(c->status, sizeof(c->status), "queued");
	snprintf(c->created_by, sizeof(c->created_by), "tok_race");
	c->counter = counter;
	c->created_at = 2000;
	c->expires_at = 9000;
}

/* Opens the store a writer uses. */
static struct store *
writer_store(struct race *r)
{
	struct store *st = NULL;

	if (fx_backend != FX_PG)
		return r->f->st;
	return store_fx_open(r->f, &st) == 0 ? st : NULL;
}

static void
writer_done(struct writer *w)
{
	if (w->st != NULL && w->st != w->r->f->st)
		w->st->ops->close(w->st);
}

/* One queued command: lock the device, take its counter, insert, audit. 0 or -errno. */
static int
queue_one(struct writer *w, int round, int64_t *counter)
{
	struct store *st = w->st;
	const char *dev = round % DEVICES ? "dev_race_1" : "dev_race_0";
	struct device d;
	struct command c;
	char id[32];
	int e;

	e = st->ops->tx_begin(st);
	if (e != 0)
		return e;
	snprintf(id, sizeof(id), "cmd_%d_%d", w->n, round);
	e = st->ops->device_get_for_update(st, dev, &d);
	if (e == 0)
		e = st->ops->device_next_counter(st, dev, counter);
	if (e == 0) {
		fill_command(&c, id, dev, *counter);
		e = st->ops->command_insert(st, &c);
	}
	if (e == 0)
		e = audit_append(st, 1000 + round, "tok_race", "command.create", id, "ok", dev);
	if (e != 0) {
		st->ops->tx_rollback(st);
		return e;
	}
	return st->ops->tx_commit(st);
}

static void *
counter_writer(void *arg)
{
	struct writer *w = arg;

	w->st = writer_store(w->r);
	pthread_barrier_wait(&w->r->go);
	for (int i = 0; i < ROUNDS && w->st != NULL; i++) {
		int64_t counter = 0;
		int e = -EAGAIN;

		for (int t = 0; t < TRIES && retryable(e); t++)
			e = queue_one(w, i, &counter);
		if (e != 0) {
			w->failures++;
			continue;
		}
		/* Counters a writer saw for one device only ever grow. */
		if (counter <= w->last[i % DEVICES])
			w->regressions++;
		w->last[i % DEVICES] = counter;
	}
	if (w->st == NULL)
		w->failures = ROUNDS;
	writer_done(w);
	return NULL;
}

static void
run_writers(struct race *r, void *(*fn)(void *), struct writer *w)
{
	pthread_t th[WRITERS];

	for (int i = 0; i < WRITERS; i++) {
		w[i] = (struct writer){.r = r, .n = i};
		assert_int_equal(pthread_create(&th[i], NULL, fn, &w[i]), 0);
	}
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
}

static void
race_init(struct race *r, struct fx *f)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	assert_int_equal(pthread_barrier_init(&r->go, NULL, WRITERS), 0);
	pthread_mutex_init(&r->lock, NULL);
}

static void
race_fini(struct race *r)
{
	pthread_barrier_destroy(&r->go);
	pthread_mutex_destroy(&r->lock);
}

static void
test_race_counters_unique_growing_and_audit_chain_intact(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct writer w[WRITERS];
	struct race r;
	struct audit_verify_result v;

	store_fx_add_device(st, "dev_race_0");
	store_fx_add_device(st, "dev_race_1");
	race_init(&r, f);
	run_writers(&r, counter_writer, w);
	race_fini(&r);
	for (int i = 0; i < WRITERS; i++) {
		assert_int_equal(w[i].failures, 0);
		assert_int_equal(w[i].regressions, 0);
	}
	/* Every counter was issued once: 1..N per device, each in exactly one command. */
	for (int k = 0; k < DEVICES; k++) {
		struct command_filter cf = {.limit = STORE_LIST_MAX};
		static struct command page[STORE_LIST_MAX];
		char dev[16], seen[WRITERS * ROUNDS + 1] = {0};
		struct device d;
		size_t n = 0;

		snprintf(dev, sizeof(dev), "dev_race_%d", k);
		cf.device_id = dev;
		assert_int_equal(st->ops->device_get(st, dev, &d), 0);
		assert_int_equal(d.ticket_counter, WRITERS * ROUNDS / DEVICES);
		assert_int_equal(st->ops->command_list(st, &cf, page, &n), 0);
		assert_int_equal(n, WRITERS * ROUNDS / DEVICES);
		for (size_t i = 0; i < n; i++) {
			assert_in_range(page[i].counter, 1, (int64_t)n);
			assert_int_equal(seen[page[i].counter], 0);
			seen[page[i].counter] = 1;
		}
	}
	assert_int_equal(audit_verify(st, &v), 0);
	assert_int_equal(v.first_bad_seq, 0);
	assert_int_equal(v.entries, WRITERS * ROUNDS);
}

/* Counts one outcome of a one-shot race. */
static void
tally(struct race *r, int e)
{
	pthread_mutex_lock(&r->lock);
	if (e == 0)
		r->ok++;
	else if (e == -EEXIST || e == -ENOENT)
		r->eexist++;
	else
		r->other++;
	pthread_mutex_unlock(&r->lock);
}

static int
use_token_once(struct store *st)
{
	int e = st->ops->tx_begin(st);

	if (e != 0)
		return e;
	e = st->ops->etoken_use(st, "etk_race");
	if (e != 0) {
		st->ops->tx_rollback(st);
		return e;
	}
	return st->ops->tx_commit(st);
}

static void *
enroll_writer(void *arg)
{
	struct writer *w = arg;
	int e = -EAGAIN;

	w->st = writer_store(w->r);
	pthread_barrier_wait(&w->r->go);
	for (int t = 0; t < TRIES && w->st != NULL && retryable(e); t++)
		e = use_token_once(w->st);
	tally(w->r, w->st != NULL ? e : -EIO);
	writer_done(w);
	return NULL;
}

static void
test_race_enrollment_token_used_at_most_uses_max(void **state)
{
	struct fx *f = *state;
	struct enroll_token t, got;
	struct writer w[WRITERS];
	struct race r;

	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "etk_race");
	snprintf(t.owner, sizeof(t.owner), "race@example.com");
	memset(t.hash, 0x5a, sizeof(t.hash));
	t.uses_max = 3;
	t.expires_at = 9000;
	assert_int_equal(f->st->ops->etoken_insert(f->st, &t), 0);
	race_init(&r, f);
	run_writers(&r, enroll_writer, w);
	race_fini(&r);
	assert_int_equal(r.ok, 3);
	assert_int_equal(r.eexist, WRITERS - 3); /* the rest found it used up (-ENOENT) */
	assert_int_equal(r.other, 0);
	assert_int_equal(f->st->ops->etoken_get(f->st, "etk_race", &got), 0);
	assert_int_equal(got.uses, 3);
}

static int
insert_keyed_once(struct writer *w)
{
	struct store *st = w->st;
	struct command c;
	int64_t counter = 0;
	char id[32];
	int e = st->ops->tx_begin(st);

	if (e != 0)
		return e;
	snprintf(id, sizeof(id), "cmd_idem_%d", w->n);
	e = st->ops->device_next_counter(st, "dev_race_0", &counter);
	if (e == 0) {
		fill_command(&c, id, "dev_race_0", counter);
		snprintf(c.idempotency_key, sizeof(c.idempotency_key), "same-key");
		e = st->ops->command_insert(st, &c);
	}
	if (e != 0) {
		st->ops->tx_rollback(st);
		return e;
	}
	return st->ops->tx_commit(st);
}

static void *
idem_writer(void *arg)
{
	struct writer *w = arg;
	int e = -EAGAIN;

	w->st = writer_store(w->r);
	pthread_barrier_wait(&w->r->go);
	for (int t = 0; t < TRIES && w->st != NULL && retryable(e); t++)
		e = insert_keyed_once(w);
	tally(w->r, w->st != NULL ? e : -EIO);
	writer_done(w);
	return NULL;
}

/*
 * The service's way (commands.c): look the key up in the transaction, insert when absent. The
 * same request to several servers at once: one inserts, the others find its command (and
 * would answer it as a replay); none fails.
 */
static void *
replay_writer(void *arg)
{
	struct writer *w = arg;
	struct store *st;
	struct command got, c;
	int64_t counter = 0;
	char id[32];
	int e;

	w->st = st = writer_store(w->r);
	pthread_barrier_wait(&w->r->go);
	if (st == NULL || st->ops->tx_begin(st) != 0) {
		tally(w->r, -EIO);
		writer_done(w);
		return NULL;
	}
	e = st->ops->command_by_idempotency(st, "tok_race", "same-key", &got);
	if (e == 0) {
		st->ops->tx_rollback(st);
		pthread_mutex_lock(&w->r->lock);
		w->r->replayed++;
		pthread_mutex_unlock(&w->r->lock);
		writer_done(w);
		return NULL;
	}
	snprintf(id, sizeof(id), "cmd_replay_%d", w->n);
	if (e == -ENOENT)
		e = st->ops->device_get_for_update(st, "dev_race_0", &(struct device){0});
	if (e == 0)
		e = st->ops->device_next_counter(st, "dev_race_0", &counter);
	if (e == 0) {
		fill_command(&c, id, "dev_race_0", counter);
		snprintf(c.idempotency_key, sizeof(c.idempotency_key), "same-key");
		e = st->ops->command_insert(st, &c);
	}
	if (e == 0)
		e = st->ops->tx_commit(st);
	else
		st->ops->tx_rollback(st);
	tally(w->r, e);
	writer_done(w);
	return NULL;
}

static void
test_race_idempotency_key_replays_not_fails(void **state)
{
	struct fx *f = *state;
	struct writer w[WRITERS];
	struct race r;

	store_fx_add_device(f->st, "dev_race_0");
	race_init(&r, f);
	run_writers(&r, replay_writer, w);
	race_fini(&r);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.replayed, WRITERS - 1);
	assert_int_equal(r.eexist + r.other, 0);
}

static void
test_race_idempotency_key_taken_once(void **state)
{
	struct fx *f = *state;
	struct writer w[WRITERS];
	struct race r;
	struct command got;

	store_fx_add_device(f->st, "dev_race_0");
	race_init(&r, f);
	run_writers(&r, idem_writer, w);
	race_fini(&r);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.eexist, WRITERS - 1);
	assert_int_equal(r.other, 0);
	assert_int_equal(f->st->ops->command_by_idempotency(f->st, "tok_race", "same-key", &got),
			 0);
}

static void *
nonce_writer(void *arg)
{
	struct writer *w = arg;
	static const uint8_t nonce[32] = {7, 7, 7};
	struct enroll_nonce got;

	w->st = writer_store(w->r);
	pthread_barrier_wait(&w->r->go);
	tally(w->r, w->st != NULL ? w->st->ops->nonce_take(w->st, nonce, 100, &got) : -EIO);
	writer_done(w);
	return NULL;
}

static void
test_race_nonce_taken_once(void **state)
{
	struct fx *f = *state;
	static const uint8_t nonce[32] = {7, 7, 7};
	struct writer w[WRITERS];
	struct race r;
	struct enroll_nonce n = {.expires_at = 500, .token_id = "etk_race"};

	assert_int_equal(f->st->ops->nonce_insert(f->st, nonce, &n), 0);
	race_init(&r, f);
	run_writers(&r, nonce_writer, w);
	race_fini(&r);
	assert_int_equal(r.ok, 1);
	assert_int_equal(r.eexist, WRITERS - 1);
	assert_int_equal(r.other, 0);
}

/* The service's read-version-then-write-the-next of a policy, once. */
static int
put_next_version(struct store *st, int writer, int round, int64_t *version)
{
	struct policy p;
	int e = st->ops->tx_begin(st);

	if (e != 0)
		return e;
	e = st->ops->policy_get(st, "race", &p);
	if (e == 0) {
		p.version++;
		snprintf(p.body, sizeof(p.body), "{\"writer\":%d,\"round\":%d}", writer, round);
		e = st->ops->policy_put(st, &p);
	}
	if (e != 0) {
		st->ops->tx_rollback(st);
		return e;
	}
	*version = p.version;
	return st->ops->tx_commit(st);
}

static void *
policy_writer(void *arg)
{
	struct writer *w = arg;

	w->st = writer_store(w->r);
	pthread_barrier_wait(&w->r->go);
	for (int i = 0; i < ROUNDS / 4 && w->st != NULL; i++) {
		int64_t v = 0;
		int e = -EBUSY;

		for (int t = 0; t < TRIES * 4 && retryable(e); t++)
			e = put_next_version(w->st, w->n, i, &v);
		if (e != 0)
			w->failures++;
		else if (v <= w->last[0])
			w->regressions++;
		else
			w->last[0] = v;
	}
	if (w->st == NULL)
		w->failures = ROUNDS;
	writer_done(w);
	return NULL;
}

/* Policy versions from several writers: every successful change has its own version. */
static void
test_race_policy_versions_never_reused(void **state)
{
	struct fx *f = *state;
	struct writer w[WRITERS];
	struct race r;
	struct policy p;
	int ok = 0;

	memset(&p, 0, sizeof(p));
	snprintf(p.name, sizeof(p.name), "race");
	snprintf(p.body, sizeof(p.body), "{}");
	p.version = 1;
	assert_int_equal(f->st->ops->policy_put(f->st, &p), 0);
	race_init(&r, f);
	run_writers(&r, policy_writer, w);
	race_fini(&r);
	for (int i = 0; i < WRITERS; i++) {
		assert_int_equal(w[i].regressions, 0);
		ok += ROUNDS / 4 - w[i].failures;
	}
	/* No two writers both wrote one version: the count of changes is the version's growth. */
	assert_int_equal(f->st->ops->policy_get(f->st, "race", &p), 0);
	assert_int_equal(p.version, 1 + ok);
	assert_true(ok > 0);
}

/*
 * A device's result (command first, then its device) against an admin's cancel (device first,
 * then the command), interleaved so that each holds its first lock before the other asks for
 * it. With the lock order kept by the store neither waits on the other in a circle: no
 * deadlock (which PostgreSQL would break by failing one with -EDEADLK), the cancel commits, and
 * the result finds the command moved on (-ESTALE).
 */
struct crossing {
	struct race *r;
	int result_rc, cancel_rc;
};

static void *
result_side(void *arg)
{
	struct crossing *x = arg;
	struct store *st = writer_store(x->r);
	struct command c;
	struct device d;
	int e;

	assert_non_null(st);
	assert_int_equal(st->ops->tx_begin(st), 0);
	pthread_barrier_wait(&x->r->go); /* the cancel holds the device now */
	assert_int_equal(st->ops->command_get(st, "cmd_cross", &c), 0);
	snprintf(c.status, sizeof(c.status), "completed");
	e = st->ops->command_update(st, &c, "queued");
	if (e == 0)
		e = st->ops->device_get_for_update(st, "dev_race_0", &d);
	if (e == 0)
		e = st->ops->tx_commit(st);
	else
		st->ops->tx_rollback(st);
	x->result_rc = e;
	st->ops->close(st);
	return NULL;
}

static void
test_race_result_and_cancel_do_not_deadlock(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct crossing x;
	struct race r;
	struct command c;
	struct device d;
	pthread_t th;
	int64_t counter = 0;

	store_fx_add_device(st, "dev_race_0");
	assert_int_equal(st->ops->device_next_counter(st, "dev_race_0", &counter), 0);
	fill_command(&c, "cmd_cross", "dev_race_0", counter);
	assert_int_equal(st->ops->command_insert(st, &c), 0);
	memset(&r, 0, sizeof(r));
	r.f = f;
	assert_int_equal(pthread_barrier_init(&r.go, NULL, 2), 0);
	x = (struct crossing){.r = &r};
	assert_int_equal(pthread_create(&th, NULL, result_side, &x), 0);
	/* The cancel, here: the device first, then (once the result is under way) the command. */
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->device_get_for_update(st, "dev_race_0", &d), 0);
	pthread_barrier_wait(&r.go);
	usleep(200 * 1000); /* let the result side reach its first lock */
	snprintf(c.status, sizeof(c.status), "canceled");
	x.cancel_rc = st->ops->command_update(st, &c, "queued");
	if (x.cancel_rc == 0)
		x.cancel_rc = st->ops->tx_commit(st);
	else
		st->ops->tx_rollback(st);
	assert_int_equal(pthread_join(th, NULL), 0);
	pthread_barrier_destroy(&r.go);
	assert_int_equal(x.cancel_rc, 0);
	assert_int_equal(x.result_rc, -ESTALE);
	assert_int_equal(st->ops->command_get(st, "cmd_cross", &c), 0);
	assert_string_equal(c.status, "canceled");
}

struct opener {
	struct fx *f;
	pthread_barrier_t *go;
	struct store *st;
	int r;
};

static void *
opener_main(void *arg)
{
	struct opener *o = arg;

	pthread_barrier_wait(o->go);
	o->r = store_fx_open(o->f, &o->st);
	return NULL;
}

/*
 * Servers starting together on one fresh database: each migrates under the migration lock,
 * so one applies every migration and the others find nothing left to do; none fails.
 */
static void
test_race_concurrent_opens_migrate_once(void **state)
{
	struct fx *f = *state;
	struct opener o[3];
	pthread_t th[3];
	pthread_barrier_t go;

	f->st->ops->close(f->st);
	f->st = NULL;
	store_fx_exec(f, "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
	assert_int_equal(pthread_barrier_init(&go, NULL, 3), 0);
	for (int i = 0; i < 3; i++) {
		o[i] = (struct opener){.f = f, .go = &go};
		assert_int_equal(pthread_create(&th[i], NULL, opener_main, &o[i]), 0);
	}
	for (int i = 0; i < 3; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(o[i].r, 0);
		assert_int_equal(store_fx_schema_version(o[i].st),
				 pg_migrations[pg_migrations_count - 1].number);
		o[i].st->ops->close(o[i].st);
	}
	assert_int_equal(pgtest_int(f->url, "SELECT count(*) FROM cleave_schema"),
			 (long long)pg_migrations_count);
	assert_int_equal(store_fx_open(f, &f->st), 0);
}

/*
 * PostgreSQL restarted under a running store: the next transaction starts on a new connection
 * without the caller noticing, and what was committed before is there.
 */
static void
test_race_reconnects_after_postgresql_restart(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device d;

	store_fx_add_device(st, "dev_race_0");
	assert_int_equal(pgtest_restart(&fx_pg), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	store_fx_add_device(st, "dev_race_1");
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(st->ops->device_get(st, "dev_race_0", &d), 0);
	assert_int_equal(st->ops->device_get(st, "dev_race_1", &d), 0);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_race_counters_unique_growing_and_audit_chain_intact),
		T(test_race_enrollment_token_used_at_most_uses_max),
		T(test_race_idempotency_key_taken_once),
		T(test_race_idempotency_key_replays_not_fails),
		T(test_race_nonce_taken_once),
		T(test_race_policy_versions_never_reused),
	};
	/*
	 * PostgreSQL's alone: SQLite's writers take turns (nothing to interleave), one SQLite file
	 * belongs to one server (server.lock), and there is no database server to restart.
	 */
	const struct CMUnitTest only_pg[] = {
		T(test_race_result_and_cancel_do_not_deadlock),
		T(test_race_concurrent_opens_migrate_once),
		T(test_race_reconnects_after_postgresql_restart),
	};
#undef T

	log_set_level(LOG_LVL_ERR);
	return store_fx_run_each("store races", tests, ARRAY_SIZE(tests), NULL, 0, only_pg,
				 ARRAY_SIZE(only_pg));
}

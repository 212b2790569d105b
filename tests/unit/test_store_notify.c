/*
 * The store's wake-ups between servers (store.h, store_pg_notify.c), on both backends: SQLite
 * has none (its one server wakes its own check-ins); PostgreSQL finds which of a list of devices
 * have a queued command (in chunks, whatever the ids hold), and its listener passes on the
 * notifications of other sessions, committed ones only, and none of this store's own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "store/store.h"
#include "store_fixture.h"

static void
add_command(struct store *st, const char *id, const char *device, const char *status)
{
	struct command c;

	memset(&c, 0, sizeof(c));
	snprintf(c.id, sizeof(c.id), "%s", id);
	snprintf(c.device_id, sizeof(c.device_id), "%s", device);
	snprintf(c.type, sizeof(c.type), "lock");
	snprintf(c.status, sizeof(c.status), "%s", status);
	snprintf(c.created_by, sizeof(c.created_by), "tok_admin");
	c.counter = 1;
	c.expires_at = 9000;
	assert_int_equal(st->ops->command_insert(st, &c), 0);
}

static void
test_store_notify_ops_by_backend(void **state)
{
	const struct store_ops *o = ((struct fx *)*state)->st->ops;
	int pg = fx_backend == FX_PG;

	assert_int_equal(o->notify_device != NULL, pg);
	assert_int_equal(o->notify_policy != NULL, pg);
	assert_int_equal(o->listen != NULL, pg);
	assert_int_equal(o->unlisten != NULL, pg);
	assert_int_equal(o->devices_with_queued != NULL, pg);
}

#define MANY 1200

static void
test_store_devices_with_queued(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	static char ids[MANY][STORE_ID_MAX], out[MANY][STORE_ID_MAX];
	size_t n = 0;

	store_fx_add_device(st, "dev_q");
	store_fx_add_device(st, "dev_d");
	store_fx_add_device(st, "dev_n");
	add_command(st, "c1", "dev_q", "queued");
	add_command(st, "c2", "dev_d", "delivered");
	/* Past the first chunk of 500, beside ids that need quoting in an array literal. */
	for (int i = 0; i < MANY; i++)
		snprintf(ids[i], STORE_ID_MAX, "dev_%d\"x\\,{}", i);
	snprintf(ids[3], STORE_ID_MAX, "dev_d");
	snprintf(ids[700], STORE_ID_MAX, "dev_n");
	snprintf(ids[1100], STORE_ID_MAX, "dev_q");
	assert_int_equal(
		st->ops->devices_with_queued(st, (const char(*)[STORE_ID_MAX])ids, MANY, out, &n),
		0);
	assert_int_equal(n, 1);
	assert_string_equal(out[0], "dev_q");
	assert_int_equal(
		st->ops->devices_with_queued(st, (const char(*)[STORE_ID_MAX])ids, 500, out, &n),
		0);
	assert_int_equal(n, 0);
}

/* What the listener passed on, in order. */
struct heard {
	pthread_mutex_t lock;
	char what[16][80];
	int n, connected, lost;
};

static void
heard_add(struct heard *h, const char *kind, const char *name)
{
	pthread_mutex_lock(&h->lock);
	if (h->n < 16)
		snprintf(h->what[h->n++], sizeof(h->what[0]), "%s %s", kind, name);
	pthread_mutex_unlock(&h->lock);
}

static void
on_device(void *ctx, const char *id)
{
	heard_add(ctx, "device", id);
}

static void
on_policy(void *ctx, const char *name, int is_default)
{
	heard_add(ctx, is_default ? "default-policy" : "policy", name);
}

static void
on_connected(void *ctx)
{
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->connected++;
	pthread_mutex_unlock(&h->lock);
}

static void
on_lost(void *ctx)
{
	struct heard *h = ctx;

	pthread_mutex_lock(&h->lock);
	h->lost++;
	pthread_mutex_unlock(&h->lock);
}

/* Waits (bounded, 5 s) until *what (a count in h) reaches want; the count then. */
static int
heard_wait(struct heard *h, const int *what, int want)
{
	int n = 0;

	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&h->lock);
		n = *what;
		pthread_mutex_unlock(&h->lock);
		if (n >= want)
			break;
		nanosleep(&(struct timespec){0, 10000000}, NULL);
	}
	return n;
}

static void
test_store_listen_hears_others_not_own(void **state)
{
	struct fx *f = *state;
	struct store *st = f->st;
	struct heard h = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct store_listener l = {.device = on_device,
				   .policy = on_policy,
				   .connected = on_connected,
				   .lost = on_lost,
				   .ctx = &h};

	assert_int_equal(st->ops->listen(st, &l), 0);
	assert_int_equal(heard_wait(&h, &h.connected, 1), 1);
	/* This store's own notifications (its server woke its own polls) are not passed on. */
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->notify_device(st, "dev_own"), 0);
	assert_int_equal(st->ops->notify_policy(st, "own", 1), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	/* Another server's: only what it committed, in commit order; junk is ignored. */
	store_fx_exec(f, "BEGIN; SELECT pg_notify('cleave_wake', 'd:dev_gone'); ROLLBACK");
	store_fx_exec(f, "SELECT pg_notify('cleave_wake', 'x:junk')");
	store_fx_exec(f, "SELECT pg_notify('cleave_wake', 'd:dev_far')");
	store_fx_exec(f, "SELECT pg_notify('cleave_wake', 'p:1:standard')");
	store_fx_exec(f, "SELECT pg_notify('cleave_wake', 'p:0:lab:2')");
	assert_int_equal(heard_wait(&h, &h.n, 3), 3);
	nanosleep(&(struct timespec){0, 100000000}, NULL); /* room for anything extra to show */
	assert_int_equal(h.n, 3);
	assert_string_equal(h.what[0], "device dev_far");
	assert_string_equal(h.what[1], "default-policy standard");
	assert_string_equal(h.what[2], "policy lab:2");
	assert_int_equal(h.connected, 1);
	/* Its connection cut (by name), it says so, comes back, and hears again. */
	store_fx_exec(f, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
			 "application_name LIKE 'cleave-listen-%'");
	assert_int_equal(heard_wait(&h, &h.lost, 1), 1);
	assert_int_equal(heard_wait(&h, &h.connected, 2), 2);
	store_fx_exec(f, "SELECT pg_notify('cleave_wake', 'd:dev_back')");
	assert_int_equal(heard_wait(&h, &h.n, 4), 4);
	assert_string_equal(h.what[3], "device dev_back");
	st->ops->unlisten(st);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_store_notify_ops_by_backend),
	};
	/* SQLite has no wake-ups between servers (test_store_notify_ops_by_backend checks so). */
	const struct CMUnitTest only_pg[] = {
		T(test_store_devices_with_queued),
		T(test_store_listen_hears_others_not_own),
	};
#undef T

	log_set_level(LOG_LVL_ERR);
	return store_fx_run_each("store_notify", tests, ARRAY_SIZE(tests), NULL, 0, only_pg,
				 ARRAY_SIZE(only_pg));
}

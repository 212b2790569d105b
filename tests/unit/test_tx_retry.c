/*
 * Whole-transaction retry (issue 10): a service call whose transaction the store gave up to a
 * deadlock, a serialization failure or a concurrent writer (-EDEADLK) runs all of it again,
 * reads included, and only the attempt that commits counts: one command, one counter step, one
 * audit entry, one wake. On both backends a begin or commit that fails with -EDEADLK (the
 * store's fault hook) must still end in success; on PostgreSQL also a real deadlock (a session
 * of the test's own holds the audit head and then wants the device row the service holds) and
 * two "servers" (a store and a service each) racing to change one policy. Also the health
 * answer /healthz gives: the store is asked at most once a second.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "service/service.h"
#include "store/store.h"
#include "store/store_fault.h"
#include "store_fixture.h"

#define DEV "dev_retry"

static int64_t
test_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct rfx {
	struct fx f;
	struct ed25519_key *key;
	struct service *svc;
	struct principal root;
};

static const struct service_config cfg = {
	.command_ttl_s = 3600,
	.enroll_ttl_s = 86400,
	.nonce_ttl_s = 300,
	.sig_skew_s = 300,
	.max_wait_s = 30,
	.public_url = "https://127.0.0.1:8443",
};

static int
setup(void **state)
{
	struct rfx *a = calloc(1, sizeof(*a));
	struct fx *f;

	if (a == NULL || store_fx_setup(state) != 0)
		return -1;
	f = *state;
	a->f = *f;
	free(f);
	*state = a;
	a->root.role = ROLE_ADMIN;
	snprintf(a->root.id, sizeof(a->root.id), "tok_root");
	snprintf(a->root.name, sizeof(a->root.name), "root");
	if (ed25519_key_generate(&a->key) != 0 ||
	    service_new(a->f.st, a->key, &cfg, test_clock, &a->svc) != 0)
		return -1;
	store_fx_add_device(a->f.st, DEV);
	return 0;
}

static int
teardown(void **state)
{
	struct rfx *a = *state;
	struct fx *f = malloc(sizeof(*f));

	store_fault_arm(0, 0);
	service_free(a->svc);
	ed25519_key_free(a->key);
	*f = a->f;
	free(a);
	*state = f;
	return store_fx_teardown(state);
}

/* What a command create leaves behind: commands of DEV, its counter, the audit head, wakes. */
struct trace {
	size_t commands;
	int64_t counter, audit_seq;
	uint64_t gen;
};

static void
trace(struct rfx *a, struct trace *t)
{
	struct command_filter cf = {.device_id = DEV, .limit = STORE_LIST_MAX};
	static struct command list[STORE_LIST_MAX];
	struct audit_entry head;
	struct device d;
	int r;

	assert_int_equal(a->f.st->ops->command_list(a->f.st, &cf, list, &t->commands), 0);
	assert_int_equal(a->f.st->ops->device_get(a->f.st, DEV, &d), 0);
	t->counter = d.ticket_counter;
	memset(&head, 0, sizeof(head));
	r = a->f.st->ops->audit_last(a->f.st, &head);
	assert_true(r == 0 || r == -ENOENT);
	t->audit_seq = head.seq;
	t->gen = svc_wake_gen(a->svc, DEV);
}

static int
lock_command(struct rfx *a, struct command *out, struct svc_error *err)
{
	struct command_request rq = {.device_id = DEV, .type = "lock", .reason = "retry test"};
	int created = 0;
	int r = svc_command_create(a->svc, &a->root, &rq, out, &created, err);

	assert_true(r != 0 || created);
	return r;
}

/* The command's effects, once: what a retried attempt did must not show. */
static void
expect_once(struct rfx *a, const struct trace *before, const struct command *c)
{
	struct trace now;

	trace(a, &now);
	assert_int_equal(now.commands, before->commands + 1);
	assert_int_equal(now.counter, before->counter + 1);
	assert_int_equal(c->counter, now.counter);
	assert_int_equal(now.audit_seq, before->audit_seq + 1);
	assert_int_equal(now.gen, before->gen + 1);
}

/*
 * Walks a -EDEADLK fault over every storage call of a command create. A begin or commit that
 * fails so is run again and the command is queued once; a statement that fails (the hook makes
 * it -EIO) fails the call and changes nothing.
 */
static void
test_deadlock_at_begin_or_commit_is_retried(void **state)
{
	struct rfx *a = *state;
	struct svc_stats st0, st1;
	int recovered = 0, n;

	svc_stats_get(a->svc, &st0);
	for (n = 1; n < 100; n++) {
		struct svc_error err = {0};
		struct trace before, after;
		struct command c;
		int r;

		trace(a, &before);
		store_fault_arm(n, -EDEADLK);
		r = lock_command(a, &c, &err);
		store_fault_arm(0, 0);
		if (!store_fault_fired()) {
			assert_int_equal(r, 0);
			expect_once(a, &before, &c);
			break;
		}
		if (r == 0) {
			expect_once(a, &before, &c);
			recovered++;
			continue;
		}
		assert_int_equal(err.kind, SVC_INTERNAL);
		trace(a, &after);
		assert_int_equal(after.commands, before.commands);
		assert_int_equal(after.counter, before.counter);
		assert_int_equal(after.audit_seq, before.audit_seq);
		assert_int_equal(after.gen, before.gen);
	}
	assert_true(n < 100);
	/* At least the begin and the commit. */
	assert_true(recovered >= 2);
	svc_stats_get(a->svc, &st1);
	assert_int_equal(st1.tx_retries - st0.tx_retries, (uint64_t)recovered);
}

/*
 * Four lost attempts in a row still end in one command; five (SVC_TX_ATTEMPTS) make the call
 * give up with SVC_UNAVAILABLE (503, retry later) and change nothing.
 */
static void
test_retries_are_bounded(void **state)
{
	struct rfx *a = *state;
	struct svc_error err = {0};
	struct trace before, after;
	struct svc_stats st0, st1;
	struct command c;

	trace(a, &before);
	svc_stats_get(a->svc, &st0);
	store_fault_arm_times(1, -EDEADLK, 4); /* the begins of attempts 1-4 */
	assert_int_equal(lock_command(a, &c, &err), 0);
	store_fault_arm(0, 0);
	expect_once(a, &before, &c);
	svc_stats_get(a->svc, &st1);
	assert_int_equal(st1.tx_retries - st0.tx_retries, 4);

	trace(a, &before);
	store_fault_arm_times(1, -EDEADLK, 5);
	assert_int_equal(lock_command(a, &c, &err), -EDEADLK);
	store_fault_arm(0, 0);
	assert_int_equal(err.kind, SVC_UNAVAILABLE);
	trace(a, &after);
	assert_int_equal(after.commands, before.commands);
	assert_int_equal(after.counter, before.counter);
	assert_int_equal(after.audit_seq, before.audit_seq);
	assert_int_equal(after.gen, before.gen);
	svc_stats_get(a->svc, &st0);
	assert_int_equal(st0.tx_retries - st1.tx_retries, 4);
}

/* ---- /healthz's answer ---- */

static atomic_int pings, ping_answer;

static int
counting_ping(struct store *st)
{
	(void)st;
	atomic_fetch_add(&pings, 1);
	return atomic_load(&ping_answer);
}

/*
 * service_store_ok asks the store at most once a second, however often it is called, and
 * says what the last ask found: a failed ping makes it 0 until one succeeds again.
 */
static void
test_health_is_asked_once_a_second(void **state)
{
	struct rfx *a = *state;
	const struct store_ops *real = a->f.st->ops;
	struct store_ops ops = *real;
	struct timespec pause = {1, 100000000};

	ops.ping = counting_ping;
	a->f.st->ops = &ops;
	atomic_store(&pings, 0);
	atomic_store(&ping_answer, 0);
	for (int i = 0; i < 100; i++)
		assert_int_equal(service_store_ok(a->svc), 1);
	assert_int_equal(atomic_load(&pings), 1);
	atomic_store(&ping_answer, -ENOTCONN);
	assert_int_equal(service_store_ok(a->svc), 1); /* the kept answer, for a second */
	nanosleep(&pause, NULL);
	for (int i = 0; i < 100; i++)
		assert_int_equal(service_store_ok(a->svc), 0);
	assert_int_equal(atomic_load(&pings), 2);
	atomic_store(&ping_answer, 0);
	nanosleep(&pause, NULL);
	assert_int_equal(service_store_ok(a->svc), 1);
	assert_int_equal(atomic_load(&pings), 3);
	a->f.st->ops = real;
}

/* ---- PostgreSQL: real deadlocks and races ---- */

struct bg_call {
	struct rfx *a;
	struct command c;
	struct svc_error err;
	int r;
};

static void *
bg_lock_command(void *arg)
{
	struct bg_call *b = arg;

	b->r = lock_command(b->a, &b->c, &b->err);
	return NULL;
}

static PGresult *
must_exec(PGconn *db, const char *sql)
{
	PGresult *r = PQexec(db, sql);

	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(db));
	return r;
}

/* Waits (up to 5 s) until some session of the database waits for a lock. */
static void
wait_for_lock_wait(const char *url)
{
	for (int i = 0; i < 500; i++) {
		if (pgtest_int(url, "SELECT count(*) FROM pg_locks WHERE NOT granted") > 0)
			return;
		usleep(10000);
	}
	fail_msg("the service never waited for the audit head");
}

/*
 * A real deadlock: the test's own session takes the audit head (the advisory lock audit
 * appends take), the service queues a command (it holds DEV's row and waits for the head), and
 * the test's session then updates DEV's row. PostgreSQL breaks the cycle in the session that
 * waited longest (the service's: the test's deadlock_timeout is longer), the service runs its
 * transaction again once the test's session has committed, and the command is queued once.
 */
static void
test_pg_real_deadlock_is_retried(void **state)
{
	struct rfx *a = *state;
	struct bg_call b = {.a = a};
	struct svc_stats st0, st1;
	struct trace before;
	pthread_t t;
	PGconn *db = PQconnectdb(a->f.url);
	long long deadlocks0;

	assert_int_equal(PQstatus(db), CONNECTION_OK);
	trace(a, &before);
	svc_stats_get(a->svc, &st0);
	deadlocks0 = pgtest_int(a->f.url, "SELECT deadlocks FROM pg_stat_database WHERE datname "
					  "= current_database()");
	PQclear(must_exec(db, "SET deadlock_timeout = '20s'"));
	PQclear(must_exec(db, "BEGIN"));
	PQclear(must_exec(db, "SELECT pg_advisory_xact_lock(x'436c657602'::bigint)"));
	assert_int_equal(pthread_create(&t, NULL, bg_lock_command, &b), 0);
	wait_for_lock_wait(a->f.url);
	/* Blocks on the service's row lock until PostgreSQL kills the service's attempt. */
	PQclear(must_exec(db, "UPDATE devices SET model = 'crossing' WHERE id = '" DEV "'"));
	PQclear(must_exec(db, "COMMIT"));
	PQfinish(db);
	assert_int_equal(pthread_join(t, NULL), 0);
	if (b.r != 0)
		fail_msg("the command failed: %s", b.err.detail);
	expect_once(a, &before, &b.c);
	svc_stats_get(a->svc, &st1);
	assert_true(st1.tx_retries > st0.tx_retries);
	/* The statistics collector may lag a little behind. */
	for (int i = 0; i < 100; i++) {
		if (pgtest_int(a->f.url, "SELECT deadlocks FROM pg_stat_database WHERE datname = "
					 "current_database()") > deadlocks0)
			return;
		usleep(20000);
	}
	fail_msg("PostgreSQL counted no deadlock");
}

/*
 * PostgreSQL restarted while a store's session sat idle (fast shutdown, then as a crash): the
 * first statement afterwards, a read and then a write transaction, works at once; the ended
 * session is noticed before anything is sent, not answered as a lost connection (503).
 */
static void
test_pg_first_statement_after_restart_works(void **state)
{
	static const char *const modes[] = {"fast", "immediate"};
	struct rfx *a = *state;

	for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
		struct svc_error err = {0};
		struct trace before;
		struct command c;
		struct device d;

		assert_int_equal(a->f.st->ops->device_get(a->f.st, DEV, &d), 0);
		assert_int_equal(pgtest_bounce(&fx_pg, modes[i], 100), 0);
		assert_int_equal(a->f.st->ops->device_get(a->f.st, DEV, &d), 0);
		assert_int_equal(pgtest_bounce(&fx_pg, modes[i], 100), 0);
		trace(a, &before);
		assert_int_equal(pgtest_bounce(&fx_pg, modes[i], 100), 0);
		if (lock_command(a, &c, &err) != 0)
			fail_msg("%s restart: %s", modes[i], err.detail);
		expect_once(a, &before, &c);
	}
}

#define RACERS 2
#define PUTS   20

struct racer {
	struct rfx *a;
	int n;
	int failures;
	uint64_t retries;
	char why[256];
};

static void *
racer_run(void *arg)
{
	struct racer *w = arg;
	struct store *st = NULL;
	struct service *svc = NULL;
	char body[64];

	/* Its own store and service, as another cleave-server on the same database. */
	if (store_fx_open(&w->a->f, &st) != 0 ||
	    service_new(st, w->a->key, &cfg, test_clock, &svc) != 0) {
		w->failures = PUTS;
		goto out;
	}
	for (int i = 0; i < PUTS; i++) {
		struct policy out;
		struct svc_error err = {0};
		int changed = 0;

		snprintf(body, sizeof(body), "{\"max_failed_unlocks\":%d}", w->n * 100 + i + 1);
		if (svc_policy_put(svc, &w->a->root, "shared", body, &out, &changed, &err) != 0 ||
		    !changed) {
			w->failures++;
			snprintf(w->why, sizeof(w->why), "%s", err.detail);
		}
	}
out:
	if (svc != NULL) {
		struct svc_stats ss;

		svc_stats_get(svc, &ss);
		w->retries = ss.tx_retries;
	}
	service_free(svc);
	if (st != NULL)
		st->ops->close(st);
	return NULL;
}

/*
 * Two servers change one policy at once, each reading the version and writing the next: the
 * one that loses (its version was taken meanwhile) reads again and writes the one after, so
 * every change lands, versions are 1..N with no gap, and each has one audit entry.
 */
static void
test_pg_policy_race_every_change_lands(void **state)
{
	struct rfx *a = *state;
	struct racer w[RACERS];
	pthread_t t[RACERS];
	struct policy p;
	uint64_t retries = 0;

	for (int i = 0; i < RACERS; i++) {
		w[i] = (struct racer){.a = a, .n = i};
		assert_int_equal(pthread_create(&t[i], NULL, racer_run, &w[i]), 0);
	}
	for (int i = 0; i < RACERS; i++) {
		assert_int_equal(pthread_join(t[i], NULL), 0);
		if (w[i].failures != 0)
			fail_msg("server %d: %d of %d changes failed: %s", i, w[i].failures, PUTS,
				 w[i].why);
		retries += w[i].retries;
	}
	print_message("    %llu changes lost a race and were made again\n",
		      (unsigned long long)retries);
	assert_int_equal(a->f.st->ops->policy_get(a->f.st, "shared", &p), 0);
	assert_int_equal(p.version, RACERS * PUTS);
	assert_int_equal(pgtest_int(a->f.url, "SELECT count(*) FROM audit WHERE action = "
					      "'policy.put' AND target = 'shared'"),
			 RACERS * PUTS);
}

int
main(void)
{
	const struct CMUnitTest both[] = {
		cmocka_unit_test_setup_teardown(test_deadlock_at_begin_or_commit_is_retried, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_retries_are_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_health_is_asked_once_a_second, setup,
						teardown),
	};
	const struct CMUnitTest pg[] = {
		cmocka_unit_test_setup_teardown(test_pg_real_deadlock_is_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pg_first_statement_after_restart_works, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_pg_policy_race_every_change_lands, setup,
						teardown),
	};

	return store_fx_run_each("tx retry", both, ARRAY_SIZE(both), NULL, 0, pg, ARRAY_SIZE(pg));
}

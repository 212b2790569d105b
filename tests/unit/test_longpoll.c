/*
 * Unit tests for the long-poll hub (server/http/longpoll.h) with fake suspend and resume
 * callbacks that count calls per connection and a fake per-device wake generation. They check
 * that waking a device resumes exactly its waiters, that parking is refused when the generation
 * moved or the hub is stopping, that deadlines fire on time even after the timer was late, and
 * that every waiter is resumed exactly once. Time is passed in; libmicrohttpd is not involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/longpoll.h"

/* A base time with a non-zero seconds part, in unix milliseconds. */
#define T0 1700000000000LL

/* The fake connection each waiter carries: what the hub did to it. */
struct fake_conn {
	int suspends;
	int resumes;
};

#define GEN_DEVICES 8

struct fake_gens {
	char device[GEN_DEVICES][STORE_ID_MAX];
	uint64_t gen[GEN_DEVICES];
	size_t n;
};

struct fx {
	struct lp_hub hub;
	struct fake_gens gens;
};

static void
fake_suspend(void *conn)
{
	((struct fake_conn *)conn)->suspends++;
}

static void
fake_resume(void *conn)
{
	((struct fake_conn *)conn)->resumes++;
}

static uint64_t
fake_gen(void *ctx, const char *device)
{
	struct fake_gens *g = ctx;

	for (size_t i = 0; i < g->n; i++)
		if (strcmp(g->device[i], device) == 0)
			return g->gen[i];
	return 0;
}

static void
set_gen(struct fake_gens *g, const char *device, uint64_t gen)
{
	for (size_t i = 0; i < g->n; i++) {
		if (strcmp(g->device[i], device) == 0) {
			g->gen[i] = gen;
			return;
		}
	}
	assert_true(g->n < GEN_DEVICES);
	snprintf(g->device[g->n], STORE_ID_MAX, "%s", device);
	g->gen[g->n++] = gen;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	lp_init(&f->hub, fake_suspend, fake_resume, fake_gen, &f->gens);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	lp_fini(&f->hub);
	free(f);
	return 0;
}

static void
waiter(struct lp_waiter *w, struct fake_conn *c, const char *device, int64_t deadline_ms)
{
	memset(w, 0, sizeof(*w));
	memset(c, 0, sizeof(*c));
	snprintf(w->device, sizeof(w->device), "%s", device);
	w->deadline_ms = deadline_ms;
	w->conn = c;
}

static void
test_longpoll_wake_resumes_only_that_device(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[5];
	struct fake_conn c[5];
	static const char *const dev[5] = {"dev_a", "dev_b", "dev_a", "dev_c", "dev_a"};

	for (int i = 0; i < 5; i++) {
		waiter(&w[i], &c[i], dev[i], T0 + 30000);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
		assert_int_equal(c[i].suspends, 1);
		assert_int_equal(c[i].resumes, 0);
		assert_int_equal(w[i].parked, 1);
	}
	assert_int_equal(lp_parked(&f->hub), 5);

	assert_int_equal(lp_wake(&f->hub, "dev_a"), 3);
	for (int i = 0; i < 5; i++) {
		int mine = strcmp(dev[i], "dev_a") == 0;

		assert_int_equal(c[i].resumes, mine);
		assert_int_equal(w[i].parked, !mine);
		if (mine)
			assert_int_equal(w[i].timed_out, 0);
	}
	assert_int_equal(lp_parked(&f->hub), 2);

	/* Nobody is left for dev_a; unknown devices wake nobody. */
	assert_int_equal(lp_wake(&f->hub, "dev_a"), 0);
	assert_int_equal(lp_wake(&f->hub, "dev_zzz"), 0);
	assert_int_equal(lp_wake(&f->hub, "dev_c"), 1);
	assert_int_equal(c[3].resumes, 1);
	assert_int_equal(c[1].resumes, 0);
	assert_int_equal(lp_parked(&f->hub), 1);
}

#define CROWD 20000

static void
test_longpoll_wake_among_many_devices(void **state)
{
	struct fx *f = *state;
	struct lp_waiter *w = calloc(CROWD, sizeof(*w));
	struct fake_conn *c = calloc(CROWD, sizeof(*c));
	char id[STORE_ID_MAX];

	/* More devices than hub buckets, so several share a bucket with the one woken. */
	assert_non_null(w);
	assert_non_null(c);
	for (int i = 0; i < CROWD; i++) {
		snprintf(id, sizeof(id), "dev_%d", i);
		waiter(&w[i], &c[i], id, T0 + 30000);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	assert_int_equal(lp_parked(&f->hub), CROWD);
	for (int i = 0; i < CROWD; i += 997) {
		snprintf(id, sizeof(id), "dev_%d", i);
		assert_int_equal(lp_wake(&f->hub, id), 1);
	}
	for (int i = 0; i < CROWD; i++)
		assert_int_equal(c[i].resumes, i % 997 == 0);
	assert_int_equal(lp_parked(&f->hub), CROWD - (CROWD + 996) / 997);

	assert_int_equal(lp_stop(&f->hub), CROWD - (CROWD + 996) / 997);
	for (int i = 0; i < CROWD; i++)
		assert_int_equal(c[i].resumes, 1);
	free(w);
	free(c);
}

static void
test_longpoll_park_refused_when_gen_moved(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w;
	struct fake_conn c;

	set_gen(&f->gens, "dev_a", 5);
	waiter(&w, &c, "dev_a", T0 + 30000);
	assert_int_equal(lp_park(&f->hub, &w, 4), 0);
	assert_int_equal(c.suspends, 0);
	assert_int_equal(w.parked, 0);
	assert_int_equal(lp_parked(&f->hub), 0);
	/* The refused waiter is not known to the hub. */
	assert_int_equal(lp_wake(&f->hub, "dev_a"), 0);
	assert_int_equal(lp_expire(&f->hub, T0 + 60000), 0);
	assert_int_equal(c.resumes, 0);

	assert_int_equal(lp_park(&f->hub, &w, 5), 1);
	assert_int_equal(c.suspends, 1);
	assert_int_equal(lp_parked(&f->hub), 1);
}

static void
test_longpoll_park_refused_when_stopping(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w;
	struct fake_conn c;

	assert_int_equal(lp_stop(&f->hub), 0);
	waiter(&w, &c, "dev_a", T0 + 30000);
	assert_int_equal(lp_park(&f->hub, &w, 0), 0);
	assert_int_equal(c.suspends, 0);
	assert_int_equal(c.resumes, 0);
	assert_int_equal(lp_parked(&f->hub), 0);
}

static void
test_longpoll_expire_only_due(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[4];
	struct fake_conn c[4];
	static const int64_t due[4] = {T0 + 500, T0 + 1500, T0 + 30000, T0 + 1000};

	assert_int_equal(lp_expire(&f->hub, T0), 0);
	for (int i = 0; i < 4; i++) {
		waiter(&w[i], &c[i], i == 3 ? "dev_b" : "dev_a", due[i]);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	assert_int_equal(lp_expire(&f->hub, T0 + 499), 0);
	assert_int_equal(lp_expire(&f->hub, T0 + 1000), 2);
	assert_int_equal(c[0].resumes, 1);
	assert_int_equal(w[0].timed_out, 1);
	assert_int_equal(c[3].resumes, 1);
	assert_int_equal(w[3].timed_out, 1);
	assert_int_equal(c[1].resumes, 0);
	assert_int_equal(c[2].resumes, 0);
	assert_int_equal(lp_parked(&f->hub), 2);

	assert_int_equal(lp_expire(&f->hub, T0 + 1499), 0);
	assert_int_equal(lp_expire(&f->hub, T0 + 1500), 1);
	assert_int_equal(c[1].resumes, 1);
	assert_int_equal(w[1].timed_out, 1);
	assert_int_equal(c[2].resumes, 0);
	assert_int_equal(w[2].parked, 1);
	assert_int_equal(lp_parked(&f->hub), 1);

	/* Expired waiters are not resumed a second time by a wake. */
	assert_int_equal(lp_wake(&f->hub, "dev_a"), 1);
	assert_int_equal(c[0].resumes, 1);
	assert_int_equal(c[1].resumes, 1);
	assert_int_equal(c[2].resumes, 1);
	assert_int_equal(w[2].timed_out, 0);
}

static void
test_longpoll_expire_after_gap(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[4];
	struct fake_conn c[4];
	static const int64_t due[4] = {T0 + 2300, T0 + 4100, T0 + 5999, T0 + 9000};

	assert_int_equal(lp_expire(&f->hub, T0), 0);
	for (int i = 0; i < 4; i++) {
		waiter(&w[i], &c[i], "dev_a", due[i]);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	/* The timer was late by six seconds: every slot it skipped is visited. */
	assert_int_equal(lp_expire(&f->hub, T0 + 6000), 3);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(c[i].resumes, 1);
		assert_int_equal(w[i].timed_out, 1);
	}
	assert_int_equal(c[3].resumes, 0);
	assert_int_equal(lp_parked(&f->hub), 1);
}

static void
test_longpoll_expire_after_gap_longer_than_wheel(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[3];
	struct fake_conn c[3];
	static const int64_t due[3] = {T0 + 1000, T0 + 40000, T0 + 63500};

	assert_int_equal(lp_expire(&f->hub, T0), 0);
	for (int i = 0; i < 3; i++) {
		waiter(&w[i], &c[i], "dev_a", due[i]);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	/* Suspended for two minutes: a full turn of the wheel finds them all. */
	assert_int_equal(lp_expire(&f->hub, T0 + 120000), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(c[i].resumes, 1);
	assert_int_equal(lp_parked(&f->hub), 0);
}

static void
test_longpoll_removal_from_middle_of_chains(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[3];
	struct fake_conn c[3];
	/* Same device and same one-second slot: both lists hold all three. */
	static const int64_t due[3] = {T0 + 5900, T0 + 5100, T0 + 5800};

	assert_int_equal(lp_expire(&f->hub, T0), 0);
	for (int i = 0; i < 3; i++) {
		waiter(&w[i], &c[i], "dev_a", due[i]);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	assert_int_equal(lp_expire(&f->hub, T0 + 5500), 1);
	assert_int_equal(c[1].resumes, 1);
	assert_int_equal(lp_parked(&f->hub), 2);
	assert_int_equal(lp_wake(&f->hub, "dev_a"), 2);
	assert_int_equal(c[0].resumes, 1);
	assert_int_equal(c[2].resumes, 1);
	assert_int_equal(c[1].resumes, 1);
	assert_int_equal(lp_expire(&f->hub, T0 + 6000), 0);
	assert_int_equal(lp_parked(&f->hub), 0);
}

static void
test_longpoll_repark_after_resume(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w;
	struct fake_conn c;

	/* http/ re-parks the same waiter when a wake found nothing new. */
	waiter(&w, &c, "dev_a", T0 + 3000);
	assert_int_equal(lp_expire(&f->hub, T0), 0);
	assert_int_equal(lp_park(&f->hub, &w, 0), 1);
	assert_int_equal(lp_wake(&f->hub, "dev_a"), 1);
	assert_int_equal(lp_park(&f->hub, &w, 0), 1);
	assert_int_equal(c.suspends, 2);
	assert_int_equal(lp_parked(&f->hub), 1);
	assert_int_equal(lp_expire(&f->hub, T0 + 3000), 1);
	assert_int_equal(c.resumes, 2);
	assert_int_equal(w.timed_out, 1);
	assert_int_equal(lp_parked(&f->hub), 0);
}

static void
test_longpoll_stop_resumes_all_timed_out(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[4], late;
	struct fake_conn c[4], lc;

	for (int i = 0; i < 4; i++) {
		waiter(&w[i], &c[i], i % 2 ? "dev_a" : "dev_b", T0 + 1000 * (i + 1));
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	assert_int_equal(lp_stop(&f->hub), 4);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(c[i].resumes, 1);
		assert_int_equal(w[i].timed_out, 1);
		assert_int_equal(w[i].parked, 0);
	}
	assert_int_equal(lp_parked(&f->hub), 0);

	waiter(&late, &lc, "dev_a", T0 + 30000);
	assert_int_equal(lp_park(&f->hub, &late, 0), 0);
	assert_int_equal(lc.suspends, 0);
	assert_int_equal(lp_wake(&f->hub, "dev_a"), 0);
	assert_int_equal(lp_expire(&f->hub, T0 + 60000), 0);
	assert_int_equal(lp_stop(&f->hub), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(c[i].resumes, 1);
}

/* The sweep's list (crosswake.c): every parked waiter's device, none other, bounded by max. */
static void
test_longpoll_parked_ids(void **state)
{
	struct fx *f = *state;
	struct lp_waiter w[4];
	struct fake_conn c[4];
	static const char *const dev[4] = {"dev_a", "dev_b", "dev_c", "dev_d"};
	char ids[8][STORE_ID_MAX];
	int seen[4] = {0};
	size_t n;

	assert_int_equal(lp_parked_ids(&f->hub, ids, 8), 0);
	for (int i = 0; i < 4; i++) {
		waiter(&w[i], &c[i], dev[i], T0 + 30000);
		assert_int_equal(lp_park(&f->hub, &w[i], 0), 1);
	}
	assert_int_equal(lp_wake(&f->hub, "dev_c"), 1);
	n = lp_parked_ids(&f->hub, ids, 8);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++)
		for (int k = 0; k < 4; k++)
			seen[k] += strcmp(ids[i], dev[k]) == 0;
	assert_int_equal(seen[0], 1);
	assert_int_equal(seen[1], 1);
	assert_int_equal(seen[2], 0);
	assert_int_equal(seen[3], 1);
	assert_int_equal(lp_parked_ids(&f->hub, ids, 2), 2);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_longpoll_wake_resumes_only_that_device),
		T(test_longpoll_wake_among_many_devices),
		T(test_longpoll_park_refused_when_gen_moved),
		T(test_longpoll_park_refused_when_stopping),
		T(test_longpoll_expire_only_due),
		T(test_longpoll_expire_after_gap),
		T(test_longpoll_expire_after_gap_longer_than_wheel),
		T(test_longpoll_removal_from_middle_of_chains),
		T(test_longpoll_repark_after_resume),
		T(test_longpoll_stop_resumes_all_timed_out),
		T(test_longpoll_parked_ids),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Unit tests for the in-memory device state table (server/service/devstate.h): the 64-nonce
 * replay window that guards signed device requests, the floor taken from the store after a
 * restart, the dirty set that batches check-in bookkeeping, and the per-device wake generation.
 * One test fills the table with 50,000 devices so that it grows several times. Time is passed in
 * as a number; nothing here touches the store or sleeps.
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

#include "service/devstate.h"

static int
setup(void **state)
{
	struct devstate *t = calloc(1, sizeof(*t));

	if (t == NULL || devstate_init(t) != 0) {
		free(t);
		return -1;
	}
	*state = t;
	return 0;
}

static int
teardown(void **state)
{
	struct devstate *t = *state;

	devstate_fini(t);
	free(t);
	return 0;
}

/* A fresh device with nothing persisted: stored_seq 0. */
static int
accept_fresh(struct devstate *t, const char *id, uint64_t nonce)
{
	return devstate_accept_nonce(t, id, 0, nonce, 1000);
}

static void
test_devstate_increasing_nonces_accepted(void **state)
{
	struct devstate *t = *state;

	for (uint64_t n = 1; n <= 300; n++)
		assert_int_equal(accept_fresh(t, "dev_a", n), 0);
	/* Gaps are fine, including ones wider than the window. */
	assert_int_equal(accept_fresh(t, "dev_a", 310), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 1000000), 0);
}

static void
test_devstate_duplicate_rejected(void **state)
{
	struct devstate *t = *state;

	assert_int_equal(accept_fresh(t, "dev_a", 5), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 5), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_a", 6), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 5), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_a", 6), -EALREADY);
}

static void
test_devstate_out_of_order_within_window_once(void **state)
{
	struct devstate *t = *state;

	assert_int_equal(accept_fresh(t, "dev_a", 100), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 99), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 99), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_a", 50), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 50), -EALREADY);
	/* 63 behind the highest is the oldest still inside the window. */
	assert_int_equal(accept_fresh(t, "dev_a", 37), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 37), -EALREADY);

	/* The window slides with the highest and remembers what it saw. */
	assert_int_equal(accept_fresh(t, "dev_a", 110), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 99), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_a", 100), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_a", 98), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 105), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 105), -EALREADY);
}

static void
test_devstate_older_than_window_rejected(void **state)
{
	struct devstate *t = *state;

	assert_int_equal(accept_fresh(t, "dev_a", 100), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 36), -EALREADY); /* 64 behind */
	assert_int_equal(accept_fresh(t, "dev_a", 1), -EALREADY);

	/* A jump wider than the window forgets everything below it. */
	assert_int_equal(accept_fresh(t, "dev_b", 50), 0);
	assert_int_equal(accept_fresh(t, "dev_b", 200), 0);
	assert_int_equal(accept_fresh(t, "dev_b", 50), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_b", 136), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_b", 137), 0);
	assert_int_equal(accept_fresh(t, "dev_b", 150), 0);
}

static void
test_devstate_nonce_zero_rejected(void **state)
{
	struct devstate *t = *state;
	char ids[4][STORE_ID_MAX];
	int64_t seen[4], seq[4];

	assert_int_equal(accept_fresh(t, "dev_a", 0), -EALREADY);
	assert_int_equal(devstate_take_dirty(t, ids, seen, seq, 4), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 1), 0);
	assert_int_equal(accept_fresh(t, "dev_a", 0), -EALREADY);
}

static void
test_devstate_first_sighting_uses_stored_floor(void **state)
{
	struct devstate *t = *state;

	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 100, 1000), -EALREADY);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 20, 1000), -EALREADY);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 101, 1000), 0);
	/* The floor is read only the first time; later calls use the window. */
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 500, 102, 1000), 0);
}

/*
 * After a restart the window starts at the persisted nonce with every bit set: the 63 nonces
 * just below it must not be accepted again, or requests captured before the restart could be
 * replayed once.
 */
static void
test_devstate_first_sighting_rejects_just_below_floor(void **state)
{
	struct devstate *t = *state;

	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 99, 1000), -EALREADY);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 37, 1000), -EALREADY);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 101, 1000), 0);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 98, 1000), -EALREADY);
}

static const char *
find_id(char (*ids)[STORE_ID_MAX], size_t n, const char *id, size_t *at)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(ids[i], id) == 0) {
			*at = i;
			return ids[i];
		}
	}
	return NULL;
}

static void
test_devstate_take_dirty_once_with_highest(void **state)
{
	struct devstate *t = *state;
	char ids[8][STORE_ID_MAX];
	int64_t seen[8], seq[8];
	size_t n, at = 0;

	assert_int_equal(devstate_accept_nonce(t, "dev_a", 0, 10, 1000), 0);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 0, 7, 1005), 0); /* late, lower */
	assert_int_equal(devstate_accept_nonce(t, "dev_b", 0, 3, 1002), 0);
	assert_int_equal(devstate_accept_nonce(t, "dev_b", 0, 3, 1009), -EALREADY);
	devstate_bump(t, "dev_c"); /* a wake is not a check-in */

	n = devstate_take_dirty(t, ids, seen, seq, 8);
	assert_int_equal(n, 2);
	assert_non_null(find_id(ids, n, "dev_a", &at));
	assert_int_equal(seq[at], 10);
	assert_int_equal(seen[at], 1005);
	assert_non_null(find_id(ids, n, "dev_b", &at));
	assert_int_equal(seq[at], 3);
	assert_int_equal(seen[at], 1002); /* the replay did not count as seen */

	assert_int_equal(devstate_take_dirty(t, ids, seen, seq, 8), 0);

	/* A rejected nonce does not make a device dirty again; an accepted one does. */
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 0, 10, 1010), -EALREADY);
	assert_int_equal(devstate_take_dirty(t, ids, seen, seq, 8), 0);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 0, 11, 1011), 0);
	n = devstate_take_dirty(t, ids, seen, seq, 8);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "dev_a");
	assert_int_equal(seq[0], 11);
	assert_int_equal(seen[0], 1011);
}

static void
test_devstate_take_dirty_respects_max(void **state)
{
	struct devstate *t = *state;
	char ids[8][STORE_ID_MAX], all[5][STORE_ID_MAX];
	int64_t seen[8], seq[8];
	size_t total = 0, n, at;

	for (int i = 0; i < 5; i++) {
		char id[16];

		snprintf(id, sizeof(id), "dev_%d", i);
		assert_int_equal(devstate_accept_nonce(t, id, 0, (uint64_t)i + 1, 2000), 0);
	}
	/* Batches of two: nothing is lost and nothing is returned twice. */
	for (int round = 0; round < 5; round++) {
		n = devstate_take_dirty(t, ids, seen, seq, 2);
		assert_true(n <= 2);
		for (size_t i = 0; i < n; i++) {
			assert_null(find_id(all, total, ids[i], &at));
			assert_true(total < 5);
			snprintf(all[total++], STORE_ID_MAX, "%s", ids[i]);
		}
		if (n == 0)
			break;
	}
	assert_int_equal(total, 5);
}

static void
test_devstate_bump_gen_per_device(void **state)
{
	struct devstate *t = *state;

	assert_int_equal(devstate_gen(t, "dev_a"), 0);
	assert_int_equal(devstate_bump(t, "dev_a"), 1);
	assert_int_equal(devstate_bump(t, "dev_a"), 2);
	assert_int_equal(devstate_gen(t, "dev_a"), 2);
	assert_int_equal(devstate_gen(t, "dev_b"), 0);
	assert_int_equal(devstate_bump(t, "dev_b"), 1);
	assert_int_equal(devstate_gen(t, "dev_a"), 2);
	assert_int_equal(devstate_gen(t, "dev_b"), 1);

	/* Check-ins do not move the generation; bumps do not touch the window. */
	assert_int_equal(accept_fresh(t, "dev_a", 5), 0);
	assert_int_equal(devstate_gen(t, "dev_a"), 2);
	devstate_bump(t, "dev_a");
	assert_int_equal(accept_fresh(t, "dev_a", 5), -EALREADY);
	assert_int_equal(accept_fresh(t, "dev_a", 6), 0);
}

static void
test_devstate_bump_known_only(void **state)
{
	struct devstate *t = *state;

	/* A device never seen gets no entry (and its generation stays 0)... */
	assert_int_equal(devstate_bump_known(t, "dev_a"), 0);
	assert_int_equal(devstate_gen(t, "dev_a"), 0);
	assert_int_equal(t->count, 0);
	/* ...one whose request was accepted moves like with devstate_bump. */
	assert_int_equal(accept_fresh(t, "dev_a", 1), 0);
	assert_int_equal(devstate_bump_known(t, "dev_a"), 1);
	assert_int_equal(devstate_bump(t, "dev_a"), 2);
	assert_int_equal(devstate_bump_known(t, "dev_a"), 3);
	assert_int_equal(devstate_gen(t, "dev_a"), 3);
	assert_int_equal(t->count, 1);
}

static void
test_devstate_forget(void **state)
{
	struct devstate *t = *state;
	char ids[4][STORE_ID_MAX];
	int64_t seen[4], seq[4];

	devstate_bump(t, "dev_a");
	devstate_bump(t, "dev_a");
	devstate_bump(t, "dev_b");
	assert_int_equal(accept_fresh(t, "dev_a", 100), 0);
	assert_int_equal(accept_fresh(t, "dev_b", 7), 0);

	devstate_forget(t, "dev_a");
	devstate_forget(t, "dev_none");
	assert_int_equal(devstate_gen(t, "dev_a"), 0);
	assert_int_equal(devstate_gen(t, "dev_b"), 1);
	/* Its pending check-in went with it. */
	assert_int_equal(devstate_take_dirty(t, ids, seen, seq, 4), 1);
	assert_string_equal(ids[0], "dev_b");

	/* Seen again, the device starts from the store's floor. */
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 100, 1000), -EALREADY);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 20, 1000), -EALREADY);
	assert_int_equal(devstate_accept_nonce(t, "dev_a", 100, 101, 1000), 0);
	assert_int_equal(devstate_bump(t, "dev_a"), 1);
}

#define MANY 50000

static void
test_devstate_many_devices(void **state)
{
	struct devstate *t = *state;
	char(*ids)[STORE_ID_MAX] = calloc(MANY + 1, STORE_ID_MAX);
	int64_t *seen = calloc(MANY + 1, sizeof(*seen));
	int64_t *seq = calloc(MANY + 1, sizeof(*seq));
	unsigned char *got = calloc(MANY, 1);
	char id[STORE_ID_MAX];
	size_t n;

	assert_non_null(ids);
	assert_non_null(seen);
	assert_non_null(seq);
	assert_non_null(got);
	for (int i = 0; i < MANY; i++) {
		snprintf(id, sizeof(id), "dev_%d", i);
		assert_int_equal(devstate_accept_nonce(t, id, 0, (uint64_t)i + 1, i), 0);
		for (int b = 0; b < i % 3; b++)
			devstate_bump(t, id);
	}
	for (int i = 0; i < MANY; i++) {
		snprintf(id, sizeof(id), "dev_%d", i);
		assert_int_equal(devstate_gen(t, id), (uint64_t)(i % 3));
		assert_int_equal(devstate_accept_nonce(t, id, 0, (uint64_t)i + 1, i), -EALREADY);
	}

	n = devstate_take_dirty(t, ids, seen, seq, MANY + 1);
	assert_int_equal(n, MANY);
	for (size_t k = 0; k < n; k++) {
		char *end;
		long i;

		assert_memory_equal(ids[k], "dev_", 4);
		i = strtol(ids[k] + 4, &end, 10);
		assert_true(*end == '\0' && i >= 0 && i < MANY);
		assert_int_equal(got[i], 0);
		got[i] = 1;
		assert_int_equal(seq[k], i + 1);
		assert_int_equal(seen[k], i);
	}

	for (int i = 0; i < MANY; i += 2) {
		snprintf(id, sizeof(id), "dev_%d", i);
		devstate_forget(t, id);
	}
	for (int i = 0; i < MANY; i++) {
		snprintf(id, sizeof(id), "dev_%d", i);
		assert_int_equal(devstate_gen(t, id), i % 2 ? (uint64_t)(i % 3) : 0);
	}
	free(ids);
	free(seen);
	free(seq);
	free(got);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_devstate_increasing_nonces_accepted),
		T(test_devstate_duplicate_rejected),
		T(test_devstate_out_of_order_within_window_once),
		T(test_devstate_older_than_window_rejected),
		T(test_devstate_nonce_zero_rejected),
		T(test_devstate_first_sighting_uses_stored_floor),
		T(test_devstate_first_sighting_rejects_just_below_floor),
		T(test_devstate_take_dirty_once_with_highest),
		T(test_devstate_take_dirty_respects_max),
		T(test_devstate_bump_gen_per_device),
		T(test_devstate_bump_known_only),
		T(test_devstate_forget),
		T(test_devstate_many_devices),
	};
#undef T

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests of the agent's check-in backoff (agent/backoff.c): every delay stays within +-25% of
 * base x 2^attempt and never above the cap, the jitter really varies, a success starts over,
 * the same seed replays the same delays, and no attempt count overflows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "agent/backoff.h"

static void
test_agent_backoff_bounds_double_then_cap(void **state)
{
	struct backoff b;

	(void)state;
	for (uint64_t seed = 1; seed <= 200; seed++) {
		uint64_t d = 500;

		backoff_init(&b, 500, 60000, seed);
		for (int k = 0; k < 20; k++) {
			uint32_t got = backoff_next(&b);
			uint64_t lo = d * 750 / 1000, hi = d * 1250 / 1000;

			assert_true(got >= lo);
			assert_true(got <= hi);
			assert_true(got <= 60000);
			d = d * 2 > 60000 ? 60000 : d * 2;
		}
		/* At the cap the delay is between 45 s and 60 s. */
		assert_true(backoff_next(&b) >= 45000);
	}
}

static void
test_agent_backoff_jitter_spreads(void **state)
{
	struct backoff b;
	uint32_t min = UINT32_MAX, max = 0;

	(void)state;
	backoff_init(&b, 1000, 1000000, 42);
	for (int i = 0; i < 500; i++) {
		uint32_t d;

		backoff_reset(&b);
		d = backoff_next(&b);
		min = d < min ? d : min;
		max = d > max ? d : max;
	}
	/* 500 draws from [750, 1250]: both ends are well covered. */
	assert_true(min < 800);
	assert_true(max > 1200);
}

static void
test_agent_backoff_reset_and_replay(void **state)
{
	struct backoff a, b;
	uint32_t first;

	(void)state;
	backoff_init(&a, 500, 60000, 7);
	backoff_init(&b, 500, 60000, 7);
	for (int i = 0; i < 10; i++)
		assert_int_equal(backoff_next(&a), backoff_next(&b));
	assert_true(backoff_next(&a) >= 45000);
	backoff_reset(&a);
	first = backoff_next(&a);
	assert_true(first >= 375 && first <= 625);
}

static void
test_agent_backoff_no_overflow(void **state)
{
	struct backoff b;

	(void)state;
	backoff_init(&b, 500, 60000, 0); /* seed 0 is replaced, not stuck at 0 */
	b.attempt = UINT32_MAX - 1;
	for (int i = 0; i < 3; i++) {
		uint32_t d = backoff_next(&b);

		assert_true(d >= 45000 && d <= 60000);
	}
	assert_int_equal(b.attempt, UINT32_MAX);
	backoff_init(&b, 0, 0, 1); /* degenerate bounds become 1 ms */
	assert_true(backoff_next(&b) <= 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_backoff_bounds_double_then_cap),
		cmocka_unit_test(test_agent_backoff_jitter_spreads),
		cmocka_unit_test(test_agent_backoff_reset_and_replay),
		cmocka_unit_test(test_agent_backoff_no_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

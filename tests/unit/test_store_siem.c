/*
 * Unit tests of the audit stream's position and lease (migration 0018), on both backends: the
 * first claim makes the row at position 0; a second server is refused while the first one's
 * lease runs and takes over once it ran out, keeping the position; the old holder's advance
 * then fails (so it can never move the position again), as does an advance from a position
 * that is not the stored one; a released lease is taken at once; and of two store handles
 * claiming at the same instant, exactly one wins.
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

#define LEASE 15000

static int
claim(struct store *st, const char *holder, int64_t now, struct siem_stream *s)
{
	memset(s, 0, sizeof(*s));
	str_copy(s->name, sizeof(s->name), "siem");
	return st->ops->siem_claim(st, s, holder, now, LEASE);
}

static void
test_claim_and_take_over(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct siem_stream s;

	assert_int_equal(st->ops->siem_get(st, "siem", &s), -ENOENT);
	assert_int_equal(claim(st, "a", 1000, &s), 0);
	assert_int_equal(s.last_seq, 0);
	assert_string_equal(s.holder, "a");
	assert_int_equal(s.lease_until_ms, 1000 + LEASE);
	assert_int_equal(st->ops->siem_advance(st, "siem", "a", 0, 7, 70, 2000, LEASE), 0);
	/* b while a's lease runs: refused, and told who holds it. */
	assert_int_equal(claim(st, "b", 2000 + LEASE - 1, &s), -EBUSY);
	assert_string_equal(s.holder, "a");
	assert_int_equal(s.last_seq, 7);
	/* a claims again (a restart with the same holder): still its own, position kept. */
	assert_int_equal(claim(st, "a", 3000, &s), 0);
	assert_int_equal(s.last_seq, 7);
	assert_int_equal(s.last_ckpt_id, 70);
	/* a's lease ran out: b takes over from position 7, and a can no longer move it. */
	assert_int_equal(claim(st, "b", 3000 + LEASE, &s), 0);
	assert_int_equal(s.last_seq, 7);
	assert_string_equal(s.holder, "b");
	assert_int_equal(st->ops->siem_advance(st, "siem", "a", 7, 9, 90, 3001 + LEASE, LEASE),
			 -ESTALE);
	/* b's advance must start where the row is. */
	assert_int_equal(st->ops->siem_advance(st, "siem", "b", 6, 9, 90, 3001 + LEASE, LEASE),
			 -ESTALE);
	assert_int_equal(st->ops->siem_advance(st, "siem", "b", 7, 9, 90, 3001 + LEASE, LEASE), 0);
	assert_int_equal(st->ops->siem_get(st, "siem", &s), 0);
	assert_int_equal(s.last_seq, 9);
	assert_int_equal(s.last_ckpt_id, 90);
	assert_int_equal(s.lease_until_ms, 3001 + 2 * LEASE);
}

static void
test_release(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct siem_stream s;

	assert_int_equal(claim(st, "a", 1000, &s), 0);
	/* Releasing someone else's lease does nothing. */
	assert_int_equal(st->ops->siem_release(st, "siem", "b"), 0);
	assert_int_equal(claim(st, "b", 1001, &s), -EBUSY);
	assert_int_equal(st->ops->siem_release(st, "siem", "a"), 0);
	assert_int_equal(claim(st, "b", 1002, &s), 0);
	assert_string_equal(s.holder, "b");
}

/* Two handles on one database (two servers): at one instant, exactly one of them wins. */
static void
test_one_winner(void **state)
{
	struct fx *f = *state;
	struct store *other = NULL;
	struct siem_stream s;
	int ra, rb;

	assert_int_equal(store_fx_open(f, &other), 0);
	ra = claim(f->st, "a", 5000, &s);
	rb = claim(other, "b", 5000, &s);
	assert_true((ra == 0) != (rb == 0));
	assert_int_equal(ra == 0 ? rb : ra, -EBUSY);
	assert_int_equal(f->st->ops->siem_get(other, "siem", &s), 0);
	assert_string_equal(s.holder, ra == 0 ? "a" : "b");
	other->ops->close(other);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_claim_and_take_over),
		T(test_release),
		T(test_one_winner),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store siem stream", both, ARRAY_SIZE(both));
}

/*
 * Unit tests of the store's webhooks (migration 0017), on both backends: the outbox writes
 * events only when some subscription wants their type, gives seqs in order and nothing of a
 * rolled back transaction; a new subscription starts at the head; event_next walks one
 * subscription's types after its cursor; a claim hands out a due subscription once (lease),
 * never a disabled one, one backing off or one with nothing to send, and a redelivery makes
 * one due; the delivery log pages newest first; prune keeps what a cursor or a redelivery
 * still needs; delete takes the log along.
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

static void
hook(struct store *st, const char *id, const char *events, struct webhook *w)
{
	memset(w, 0, sizeof(*w));
	str_copy(w->id, sizeof(w->id), id);
	str_copy(w->url, sizeof(w->url), "https://rx.example/hook");
	str_copy(w->secret, sizeof(w->secret), "whsec_AAAA");
	str_copy(w->events, sizeof(w->events), events);
	str_copy(w->created_by, sizeof(w->created_by), "adm_1");
	w->enabled = 1;
	w->created_at = w->updated_at = 1;
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->webhook_insert(st, w), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
}

/* Appends n events of type at at_ms in one transaction; the first seq (0: none written). */
static int64_t
emit(struct store *st, const char *type, size_t n, int64_t at_ms, int commit)
{
	struct webhook_event e[4];

	assert_true(n <= 4);
	memset(e, 0, sizeof(e));
	for (size_t i = 0; i < n; i++) {
		snprintf(e[i].id, sizeof(e[i].id), "msg_%s_%lld_%zu", type, (long long)at_ms, i);
		str_copy(e[i].type, sizeof(e[i].type), type);
		snprintf(e[i].payload, sizeof(e[i].payload), "{\"i\":%zu}", i);
		e[i].at_ms = at_ms;
	}
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->event_append(st, e, n), 0);
	for (size_t i = 1; i < n; i++)
		assert_int_equal(e[i].seq, e[0].seq ? e[0].seq + (int64_t)i : 0);
	if (commit)
		assert_int_equal(st->ops->tx_commit(st), 0);
	else
		st->ops->tx_rollback(st);
	return e[0].seq;
}

static void
test_outbox_order_and_interest(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct webhook a, b;
	struct webhook_event e, mixed[2];

	assert_int_equal(emit(st, "command.queued", 2, 10, 1), 0); /* nobody listens yet */
	hook(st, "wh_a", ",command.queued,wipe.verified,", &a);
	assert_int_equal(a.cursor, 0);
	assert_int_equal(emit(st, "command.queued", 3, 20, 1), 1);
	assert_int_equal(emit(st, "device.enrolled", 1, 21, 1), 0); /* a type nobody wants */
	assert_int_equal(emit(st, "wipe.verified", 1, 22, 0), 4);   /* rolled back ... */
	assert_int_equal(emit(st, "wipe.verified", 1, 23, 1), 4);   /* ... so 4 again */
	hook(st, "wh_b", ",wipe.verified,", &b);
	assert_int_equal(b.cursor, 4); /* starts at the head */
	assert_int_equal(st->ops->event_next(st, 0, a.events, &e), 0);
	assert_int_equal(e.seq, 1);
	assert_string_equal(e.payload, "{\"i\":0}");
	assert_int_equal(st->ops->event_next(st, 3, ",wipe.verified,", &e), 0);
	assert_int_equal(e.seq, 4);
	assert_int_equal(e.at_ms, 23);
	assert_int_equal(st->ops->event_next(st, 4, a.events, &e), -ENOENT);
	assert_int_equal(st->ops->event_get(st, 2, &e), 0);
	assert_string_equal(e.type, "command.queued");
	assert_int_equal(st->ops->event_get(st, 99, &e), -ENOENT);
	/* Skip: after a queued event (seq 5), wh_b (wipe.verified only) moves to the head; wh_a,
	 * which has events of its types after its cursor, stays. */
	assert_int_equal(emit(st, "command.queued", 1, 24, 1), 5);
	assert_int_equal(st->ops->webhook_skip(st), 0);
	assert_int_equal(st->ops->webhook_get(st, "wh_b", 0, &b), 0);
	assert_int_equal(b.cursor, 5);
	assert_int_equal(st->ops->webhook_get(st, "wh_a", 0, &a), 0);
	assert_int_equal(a.cursor, 0);
	/* One type per call. */
	memset(mixed, 0, sizeof(mixed));
	str_copy(mixed[0].type, sizeof(mixed[0].type), "wipe.verified");
	str_copy(mixed[1].type, sizeof(mixed[1].type), "command.queued");
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->event_append(st, mixed, 2), -EINVAL);
	st->ops->tx_rollback(st);
}

static int
claim(struct store *st, int64_t now, struct webhook *out)
{
	int r;

	assert_int_equal(st->ops->tx_begin(st), 0);
	r = st->ops->webhook_claim(st, now, now + 100, "srv_x", out);
	if (r == 0)
		assert_int_equal(st->ops->tx_commit(st), 0);
	else
		st->ops->tx_rollback(st);
	return r;
}

static void
test_claim_lease_backoff_redelivery(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct webhook w, got;
	int64_t seq;

	hook(st, "wh_a", ",command.queued,", &w);
	assert_int_equal(claim(st, 1000, &got), -ENOENT); /* nothing to send */
	emit(st, "command.queued", 1, 5, 1);
	assert_int_equal(claim(st, 1000, &got), 0);
	assert_string_equal(got.id, "wh_a");
	assert_string_equal(got.lease_owner, "srv_x");
	assert_int_equal(claim(st, 1050, &got), -ENOENT); /* leased until 1100 */
	assert_int_equal(claim(st, 1100, &got), 0);       /* the lease ran out */
	/* Backing off, then disabled: not due. */
	assert_int_equal(st->ops->webhook_get(st, "wh_a", 0, &got), 0);
	got.lease_until = 0;
	got.next_at_ms = 5000;
	assert_int_equal(st->ops->webhook_save(st, &got), 0);
	assert_int_equal(claim(st, 4999, &got), -ENOENT);
	assert_int_equal(claim(st, 5000, &got), 0);
	got.lease_until = 0;
	got.enabled = 0;
	assert_int_equal(st->ops->webhook_save(st, &got), 0);
	assert_int_equal(claim(st, 9000, &got), -ENOENT);
	/* Done with every event: a redelivery alone makes it due. */
	got.enabled = 1;
	got.cursor = 1;
	assert_int_equal(st->ops->webhook_save(st, &got), 0);
	assert_int_equal(claim(st, 9000, &got), -ENOENT);
	assert_int_equal(st->ops->redeliver_add(st, "wh_a", 1), 0);
	assert_int_equal(st->ops->redeliver_add(st, "wh_a", 1), 0); /* again: no error */
	assert_int_equal(claim(st, 9000, &got), 0);
	assert_int_equal(st->ops->redeliver_next(st, "wh_a", &seq), 0);
	assert_int_equal(seq, 1);
	assert_int_equal(st->ops->redeliver_drop(st, "wh_a", 1), 0);
	assert_int_equal(st->ops->redeliver_next(st, "wh_a", &seq), -ENOENT);
}

/* Of two due subscriptions, the one released longest ago is served first. */
static void
test_claim_least_recently_served(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct webhook a, b, got;

	hook(st, "wh_a", ",command.queued,", &a);
	hook(st, "wh_b", ",command.queued,", &b);
	emit(st, "command.queued", 2, 5, 1);
	a.lease_until = 500;
	b.lease_until = 400;
	assert_int_equal(st->ops->webhook_save(st, &a), 0);
	assert_int_equal(st->ops->webhook_save(st, &b), 0);
	assert_int_equal(claim(st, 1000, &got), 0);
	assert_string_equal(got.id, "wh_b");
	assert_int_equal(claim(st, 1000, &got), 0);
	assert_string_equal(got.id, "wh_a");
	assert_int_equal(claim(st, 1000, &got), -ENOENT); /* both leased */
}

static void
delivery(struct store *st, const char *hook_id, int64_t seq, int64_t at, int ok)
{
	struct webhook_delivery d;

	memset(&d, 0, sizeof(d));
	str_copy(d.webhook_id, sizeof(d.webhook_id), hook_id);
	d.event_seq = seq;
	snprintf(d.event_id, sizeof(d.event_id), "msg_%lld", (long long)seq);
	str_copy(d.event_type, sizeof(d.event_type), "command.queued");
	d.attempt = 1;
	d.at_ms = at;
	d.status = ok ? 204 : 0;
	d.ok = ok;
	str_copy(d.error, sizeof(d.error), ok ? "" : "Couldn't connect to server");
	assert_int_equal(st->ops->delivery_insert(st, &d), 0);
	assert_true(d.id > 0);
}

static void
test_log_prune_delete(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct webhook_delivery out[4];
	struct webhook w;
	struct webhook_event e;
	size_t n = 0;

	hook(st, "wh_a", ",command.queued,", &w);
	emit(st, "command.queued", 3, 100, 1); /* seqs 1..3 */
	delivery(st, "wh_a", 1, 100, 0);
	delivery(st, "wh_a", 1, 200, 1);
	delivery(st, "wh_a", 2, 300, 1);
	assert_int_equal(st->ops->delivery_list(st, "wh_a", 0, 2, out, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(out[0].event_seq, 2);
	assert_int_equal(out[0].status, 204);
	assert_int_equal(st->ops->delivery_list(st, "wh_a", out[1].id, 4, out, &n), 0);
	assert_int_equal(n, 1);
	assert_false(out[0].ok);
	assert_string_equal(out[0].error, "Couldn't connect to server");
	assert_int_equal(st->ops->delivery_get(st, out[0].id, &out[1]), 0);
	assert_int_equal(out[1].at_ms, 100);
	/* The cursor is at 2 and seq 1 awaits a redelivery: only seq 2 may go. */
	assert_int_equal(st->ops->webhook_get(st, "wh_a", 0, &w), 0);
	w.cursor = 2;
	assert_int_equal(st->ops->webhook_save(st, &w), 0);
	assert_int_equal(st->ops->redeliver_add(st, "wh_a", 1), 0);
	assert_int_equal(st->ops->event_prune(st, 250), 0);
	assert_int_equal(st->ops->event_get(st, 1, &e), 0);
	assert_int_equal(st->ops->event_get(st, 2, &e), -ENOENT);
	assert_int_equal(st->ops->event_get(st, 3, &e), 0);
	assert_int_equal(st->ops->delivery_list(st, "wh_a", 0, 4, out, &n), 0);
	assert_int_equal(n, 1); /* the log before 250 went */
	assert_int_equal(st->ops->webhook_delete(st, "wh_a"), 0);
	assert_int_equal(st->ops->webhook_delete(st, "wh_a"), -ENOENT);
	assert_int_equal(st->ops->delivery_list(st, "wh_a", 0, 4, out, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(st->ops->webhook_get(st, "wh_a", 0, &w), -ENOENT);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_outbox_order_and_interest),
		T(test_claim_lease_backoff_redelivery),
		T(test_claim_least_recently_served),
		T(test_log_prune_delete),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store webhooks", both, ARRAY_SIZE(both));
}

/*
 * Parked-poll bookkeeping: a fixed array of device buckets (doubly linked chains, so removal is
 * O(1)) and a 64-slot wheel of one-second deadline slots. One mutex guards both; resume
 * callbacks run under it, which libmicrohttpd allows (MHD_resume_connection only flags the
 * connection and signals the worker's event loop).
 */
#include "longpoll.h"

#include <string.h>

#include "util.h"

static size_t
bucket_of(const char *id)
{
	uint64_t h = 1469598103934665603ULL;

	while (*id)
		h = (h ^ (uint8_t)*id++) * 1099511628211ULL;
	return (size_t)(h & (LP_BUCKETS - 1));
}

static size_t
slot_of(int64_t deadline_ms)
{
	return (size_t)((deadline_ms / 1000) % LP_SLOTS);
}

void
lp_init(struct lp_hub *h, lp_conn_fn suspend, lp_conn_fn resume, lp_gen_fn gen, void *gen_ctx)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->lock, NULL);
	h->suspend = suspend;
	h->resume = resume;
	h->gen = gen;
	h->gen_ctx = gen_ctx;
}

void
lp_fini(struct lp_hub *h)
{
	pthread_mutex_destroy(&h->lock);
}

/* Unlinks w from both lists; hub lock held. */
static void
unlink_waiter(struct lp_hub *h, struct lp_waiter *w)
{
	struct lp_waiter **dhead = &h->buckets[bucket_of(w->device)];
	struct lp_waiter **thead = &h->slots[slot_of(w->deadline_ms)];

	if (w->dprev)
		w->dprev->dnext = w->dnext;
	else
		*dhead = w->dnext;
	if (w->dnext)
		w->dnext->dprev = w->dprev;
	if (w->tprev)
		w->tprev->tnext = w->tnext;
	else
		*thead = w->tnext;
	if (w->tnext)
		w->tnext->tprev = w->tprev;
	w->dnext = w->dprev = w->tnext = w->tprev = NULL;
	w->parked = 0;
	h->parked--;
}

/* Unlinks w and resumes its connection; hub lock held. */
static void
unpark(struct lp_hub *h, struct lp_waiter *w, int timed_out)
{
	unlink_waiter(h, w);
	w->timed_out = timed_out;
	h->resume(w->conn);
}

void
lp_cancel(struct lp_hub *h, struct lp_waiter *w)
{
	pthread_mutex_lock(&h->lock);
	if (w->parked)
		unlink_waiter(h, w);
	pthread_mutex_unlock(&h->lock);
}

int
lp_park(struct lp_hub *h, struct lp_waiter *w, uint64_t gen)
{
	struct lp_waiter **dhead, **thead;

	pthread_mutex_lock(&h->lock);
	if (h->stopping || h->gen(h->gen_ctx, w->device) != gen) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	h->suspend(w->conn);
	dhead = &h->buckets[bucket_of(w->device)];
	thead = &h->slots[slot_of(w->deadline_ms)];
	w->dprev = NULL;
	w->dnext = *dhead;
	if (*dhead)
		(*dhead)->dprev = w;
	*dhead = w;
	w->tprev = NULL;
	w->tnext = *thead;
	if (*thead)
		(*thead)->tprev = w;
	*thead = w;
	w->parked = 1;
	w->timed_out = 0;
	h->parked++;
	pthread_mutex_unlock(&h->lock);
	return 1;
}

size_t
lp_wake(struct lp_hub *h, const char *device)
{
	struct lp_waiter *w, *next;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	for (w = h->buckets[bucket_of(device)]; w != NULL; w = next) {
		next = w->dnext;
		if (strcmp(w->device, device) == 0) {
			unpark(h, w, 0);
			n++;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t
lp_expire(struct lp_hub *h, int64_t now_ms)
{
	struct lp_waiter *w, *next;
	int64_t now_s = now_ms / 1000, from;
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	/* Visit every slot since the last pass (at most a full turn), so a late timer loses nothing. */
	/* The first pass looks at every slot: waiters may predate it. */
	from = h->last_expire_s > 0 ? h->last_expire_s : now_s - (LP_SLOTS - 1);
	if (from < now_s - (LP_SLOTS - 1))
		from = now_s - (LP_SLOTS - 1);
	for (int64_t sec = from; sec <= now_s; sec++) {
		for (w = h->slots[slot_of(sec * 1000)]; w != NULL; w = next) {
			next = w->tnext;
			if (w->deadline_ms <= now_ms) {
				unpark(h, w, 1);
				n++;
			}
		}
	}
	h->last_expire_s = now_s;
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t
lp_stop(struct lp_hub *h)
{
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	for (size_t i = 0; i < LP_BUCKETS; i++) {
		while (h->buckets[i] != NULL) {
			unpark(h, h->buckets[i], 1);
			n++;
		}
	}
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t
lp_parked(struct lp_hub *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->parked;
	pthread_mutex_unlock(&h->lock);
	return n;
}

size_t
lp_parked_ids(struct lp_hub *h, char (*ids)[STORE_ID_MAX], size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < LP_BUCKETS && n < max; i++)
		for (struct lp_waiter *w = h->buckets[i]; w != NULL && n < max; w = w->dnext)
			str_copy(ids[n++], STORE_ID_MAX, w->device);
	pthread_mutex_unlock(&h->lock);
	return n;
}

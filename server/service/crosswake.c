/*
 * Wake-ups across the servers of one shared store (issue 10 section 2). A command queued on
 * one server must resume the check-in another server holds parked for that device: the
 * queuing transaction notifies (svc_notify_tx, store notify_device), and each server listens
 * (store listen) and wakes what it holds. A policy change notifies once, and every server runs
 * its own waker (waker.c) for the followers it has seen.
 *
 * Notifications are a latency measure only: they reach only the servers listening at that
 * moment. So every SWEEP_S seconds, and at once after the listen connection comes (back) up,
 * the tick asks the store which of the devices parked here have a queued command, and wakes
 * those. A command queued while this server's listener was away thus waits at most one sweep.
 * Check-ins never notify: a notifying commit takes a database-wide lock, and a check-in's own
 * command is answered by that same check-in.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdlib.h>

#include "log.h"

#define SWEEP_S 3
/* The most parked devices one sweep looks at (a server holds at most its connection limit). */
#define SWEEP_MAX 200000

struct svc_cross {
	struct store_listener l;
	svc_parked_fn parked;
	void *parked_ctx;
	atomic_int sweep_now;              /* the listener (re)connected: sweep at the next tick */
	atomic_int sweep_bulk;             /* another server's bulk batch: sweep at the next tick */
	atomic_int up;                     /* the listen connection is open (metrics) */
	atomic_uint_fast64_t heard, swept; /* device notifications heard; devices the sweep woke */
	int64_t swept_at;
	char (*ids)[STORE_ID_MAX]; /* the sweep's buffers, made at the first sweep */
	char (*due)[STORE_ID_MAX];
	size_t cap;
};

int
svc_notify_tx(struct service *s, const char *device_id)
{
	if (s->st->ops->notify_device == NULL)
		return 0;
	return s->st->ops->notify_device(s->st, device_id);
}

int
svc_notify_sweep_tx(struct service *s)
{
	if (s->st->ops->notify_sweep == NULL)
		return 0;
	return s->st->ops->notify_sweep(s->st);
}

int
svc_notify_policy_tx(struct service *s, const char *name, int is_default)
{
	if (s->st->ops->notify_policy == NULL)
		return 0;
	return s->st->ops->notify_policy(s->st, name, is_default);
}

/* A device this process has seen (only those can be parked here) resumes its check-in. */
static void
wake_known(struct service *s, const char *device_id)
{
	if (devstate_bump_known(&s->dev, device_id) != 0 && s->wake != NULL)
		s->wake(s->wake_ctx, device_id);
}

static void
on_device(void *ctx, const char *device_id)
{
	struct service *s = ctx;

	atomic_fetch_add(&s->cross->heard, 1);
	wake_known(s, device_id);
}

static void
on_policy(void *ctx, const char *name, int is_default)
{
	svc_wake_policy_named(ctx, name, is_default);
}

/* A bulk batch queued commands for many devices: the next tick sweeps (one a tick at most). */
static void
on_sweep(void *ctx)
{
	struct service *s = ctx;

	atomic_store(&s->cross->sweep_bulk, 1);
}

static void
on_connected(void *ctx)
{
	struct service *s = ctx;

	atomic_store(&s->cross->up, 1);
	atomic_store(&s->cross->sweep_now, 1);
}

static void
on_lost(void *ctx)
{
	struct service *s = ctx;

	atomic_store(&s->cross->up, 0);
}

void
svc_cross_stats(struct service *s, struct svc_stats *out)
{
	struct svc_cross *x = s->cross;

	out->listen_up = x != NULL ? atomic_load(&x->up) : -1;
	out->wake_heard = x != NULL ? atomic_load(&x->heard) : 0;
	out->sweep_woken = x != NULL ? atomic_load(&x->swept) : 0;
}

int
service_listen(struct service *s, svc_parked_fn parked, void *ctx)
{
	struct svc_cross *x;
	int r;

	if (s->st->ops->listen == NULL || s->st->ops->devices_with_queued == NULL)
		return 0; /* one server per store: its own wake-ups are all there is */
	if (s->cross != NULL)
		return -EALREADY;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		return -ENOMEM;
	x->l = (struct store_listener){.device = on_device,
				       .policy = on_policy,
				       .sweep = on_sweep,
				       .connected = on_connected,
				       .lost = on_lost,
				       .ctx = s};
	x->parked = parked;
	x->parked_ctx = ctx;
	s->cross = x;
	r = s->st->ops->listen(s->st, &x->l);
	if (r != 0) {
		s->cross = NULL;
		free(x);
		return r;
	}
	log_info("service: listening for wake-ups from the other servers; sweeping every %d s",
		 SWEEP_S);
	return 0;
}

/* Wakes the parked devices that have a queued command; how many, or a negative errno. */
static int
sweep(struct service *s, struct svc_cross *x)
{
	size_t n, due = 0;
	int r;

	if (x->ids == NULL) {
		x->ids = calloc(SWEEP_MAX, sizeof(*x->ids));
		x->due = calloc(SWEEP_MAX, sizeof(*x->due));
		if (x->ids == NULL || x->due == NULL) {
			free(x->ids);
			free(x->due);
			x->ids = x->due = NULL;
			return -ENOMEM;
		}
		x->cap = SWEEP_MAX;
	}
	n = x->parked(x->parked_ctx, x->ids, x->cap);
	if (n == 0)
		return 0;
	r = s->st->ops->devices_with_queued(s->st, (const char(*)[STORE_ID_MAX])x->ids, n, x->due,
					    &due);
	if (r != 0)
		return r;
	for (size_t i = 0; i < due; i++)
		wake_known(s, x->due[i]);
	atomic_fetch_add(&x->swept, due);
	return (int)due;
}

void
svc_cross_tick(struct service *s)
{
	struct svc_cross *x = s->cross;
	int now_due, bulk_due, r;

	if (x == NULL)
		return;
	now_due = atomic_exchange(&x->sweep_now, 0);
	bulk_due = atomic_exchange(&x->sweep_bulk, 0);
	if (!now_due && !bulk_due && svc_now_s(s) - x->swept_at < SWEEP_S)
		return;
	x->swept_at = svc_now_s(s);
	r = sweep(s, x);
	if (r < 0) {
		if (now_due)
			atomic_store(&x->sweep_now, 1); /* the catch-up sweep is owed still */
		log_warn("service: the sweep for queued commands of parked devices failed");
	} else if (r > 0) {
		log_info("service: the sweep woke %d parked devices with a queued command%s", r,
			 now_due    ? " (after the listen connection came up)"
			 : bulk_due ? " (a bulk command's batch)"
				    : "");
	}
}

void
svc_cross_stop(struct service *s)
{
	struct svc_cross *x = s->cross;

	if (x == NULL)
		return;
	s->st->ops->unlisten(s->st); /* no callback runs once it returns */
	free(x->ids);
	free(x->due);
	free(x);
	s->cross = NULL;
}

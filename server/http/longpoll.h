/*
 * The hub of parked device check-ins: which suspended connection belongs to which device, and
 * when each must be answered anyway. Waking a device and expiring deadlines resume connections
 * through a callback, so this file has no libmicrohttpd types. Parking compares the device's
 * wake generation under the hub lock, so a command queued between the check-in's look and the
 * park is never missed.
 */
#ifndef CLEAVE_LONGPOLL_H
#define CLEAVE_LONGPOLL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct lp_waiter {
	char device[STORE_ID_MAX];
	int64_t deadline_ms;
	int timed_out; /* set when the deadline (or a stop) resumed it */
	int parked;
	void *conn;                      /* opaque to the hub: handed to the resume callback */
	struct lp_waiter *dnext, *dprev; /* device bucket chain */
	struct lp_waiter *tnext, *tprev; /* deadline wheel slot */
};

/* Suspends conn (called with the hub lock held); resume must be safe from any thread. */
typedef void (*lp_conn_fn)(void *conn);
/* Current wake generation of a device. */
typedef uint64_t (*lp_gen_fn)(void *ctx, const char *device);

#define LP_BUCKETS 16384
#define LP_SLOTS   64 /* one second each; waits are capped well below this */

struct lp_hub {
	pthread_mutex_t lock;
	struct lp_waiter *buckets[LP_BUCKETS];
	struct lp_waiter *slots[LP_SLOTS];
	size_t parked;
	int stopping;
	int64_t last_expire_s;
	lp_conn_fn suspend, resume;
	lp_gen_fn gen;
	void *gen_ctx;
};

void lp_init(struct lp_hub *h, lp_conn_fn suspend, lp_conn_fn resume, lp_gen_fn gen, void *gen_ctx);
void lp_fini(struct lp_hub *h);

/*
 * Parks w (device, deadline and conn set by the caller) unless the device's generation moved
 * past gen or the hub is stopping. Returns 1 when parked, 0 when the caller must answer now.
 */
int lp_park(struct lp_hub *h, struct lp_waiter *w, uint64_t gen);
/* Removes w from the hub without resuming it (its connection is gone). No-op if not parked. */
void lp_cancel(struct lp_hub *h, struct lp_waiter *w);
/* Resumes every waiter of device. Returns how many. */
size_t lp_wake(struct lp_hub *h, const char *device);
/* Resumes waiters whose deadline is at or before now_ms, with timed_out set. */
size_t lp_expire(struct lp_hub *h, int64_t now_ms);
/* Marks the hub stopping and resumes every waiter with timed_out set. */
size_t lp_stop(struct lp_hub *h);
size_t lp_parked(struct lp_hub *h);
/* Copies the devices of up to max parked waiters into ids (a device parked twice: twice). */
size_t lp_parked_ids(struct lp_hub *h, char (*ids)[STORE_ID_MAX], size_t max);

#endif

/*
 * Wakes the parked check-ins of a changed policy's followers, off the request threads. A policy
 * change only writes the policy's new version (devices.c); each follower's command is queued by
 * its own check-in. Waking means listing up to POLICY_WAKE_MAX followers (a read of every one
 * of them: ~50 ms at 100,000 devices) and bumping the wake generation of those this process
 * has seen, which resumes a parked check-in of that device, in paced slices (below). Done on
 * the request thread, that read kept other requests of the same worker thread waiting; here
 * one background thread does it, started at the first change. It is only a latency measure: a change whose wake is lost (the queue full, a crash,
 * devices past the first POLICY_WAKE_MAX) reaches each device at its next check-in, at most one
 * long-poll wait (max_wait, 55 s by default) later, because its version is on the policy row.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

#define POLICY_WAKE_MAX 200000
#define WAKE_JOBS       16
/*
 * Woken devices at a time, and the pause after each slice. Each woken check-in signs and
 * queues its command in its own synced transaction on a worker thread (~0.7 ms each here under
 * load), and an admin's wipe arriving meanwhile waits behind the woken check-ins queued on its
 * worker thread: 64 every 50 ms stays under what two worker threads get through, so that wait
 * stays near one slice (tens of ms). The price: parked followers are all woken within
 * n / 64 x 50 ms, 0.8 s for 1,000 and 8 s for 10,000 (one server's worth). Policy limits are
 * not urgent; wipes are.
 */
#define WAKE_SLICE    64
#define WAKE_PAUSE_US 50000

struct svc_waker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int started;
	atomic_int stop;
	struct {
		char name[64];
		int is_default;
	} jobs[WAKE_JOBS];
	size_t n;
};

int
svc_waker_init(struct service *s)
{
	struct svc_waker *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	s->waker = w;
	return 0;
}

static void
wake_followers(struct service *s, const char *name, int is_default, char (*ids)[STORE_ID_MAX])
{
	struct svc_waker *w = s->waker;
	size_t n = 0, woken = 0;

	if (s->st->ops->device_ids_by_policy(s->st, name, is_default, ids, POLICY_WAKE_MAX, &n) !=
	    0) {
		log_warn("service: policy %s: cannot list its devices to wake them; they take the "
			 "change at their next check-in",
			 name);
		return;
	}
	if (n == POLICY_WAKE_MAX)
		log_warn("service: policy %s: only the first %d devices are woken now; the rest "
			 "take the change at their next check-in",
			 name, POLICY_WAKE_MAX);
	/* Bump first, then wake (as svc_notify); devices never seen here are skipped. */
	for (size_t i = 0; i < n && !atomic_load(&w->stop); i++) {
		if (devstate_bump_known(&s->dev, ids[i]) == 0)
			continue;
		if (s->wake != NULL)
			s->wake(s->wake_ctx, ids[i]);
		if (++woken % WAKE_SLICE == 0)
			usleep(WAKE_PAUSE_US);
	}
}

static void *
waker_main(void *p)
{
	struct service *s = p;
	struct svc_waker *w = s->waker;
	char(*ids)[STORE_ID_MAX] = malloc((size_t)POLICY_WAKE_MAX * STORE_ID_MAX);

	pthread_mutex_lock(&w->lock);
	while (!atomic_load(&w->stop)) {
		char name[64];
		int is_default;

		if (w->n == 0) {
			pthread_cond_wait(&w->cond, &w->lock);
			continue;
		}
		str_copy(name, sizeof(name), w->jobs[0].name);
		is_default = w->jobs[0].is_default;
		memmove(&w->jobs[0], &w->jobs[1], (w->n - 1) * sizeof(w->jobs[0]));
		w->n--;
		pthread_mutex_unlock(&w->lock);
		if (ids != NULL)
			wake_followers(s, name, is_default, ids);
		else
			log_warn("service: policy %s: no memory to wake its devices", name);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	free(ids);
	return NULL;
}

void
svc_wake_policy_named(struct service *s, const char *name, int is_default)
{
	struct svc_waker *w = s->waker;
	size_t i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	if (!w->started && !atomic_load(&w->stop)) {
		w->started = pthread_create(&w->thread, NULL, waker_main, s) == 0;
		if (!w->started)
			log_warn("service: cannot start the policy waker; devices take policy "
				 "changes at their next check-in");
	}
	/* A policy already waiting is woken once, with whatever version it has by then. */
	for (i = 0; i < w->n; i++)
		if (strcmp(w->jobs[i].name, name) == 0 && w->jobs[i].is_default == is_default)
			break;
	if (i == w->n && w->n < WAKE_JOBS) {
		str_copy(w->jobs[w->n].name, sizeof(w->jobs[0].name), name);
		w->jobs[w->n++].is_default = is_default;
	} else if (i == w->n) {
		log_warn("service: policy %s: too many policy changes waiting to wake devices; its "
			 "devices take it at their next check-in",
			 name);
	}
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

void
svc_wake_policy(struct service *s, const struct policy *p)
{
	svc_wake_policy_named(s, p->name, p->is_default);
}

void
service_quiesce(struct service *s)
{
	struct svc_waker *w = s ? s->waker : NULL;
	int started;

	if (s != NULL) {
		svc_bulker_stop(s); /* it resumes parked check-ins too */
		svc_hookd_stop(s);
		svc_cross_stop(s); /* its callbacks queue jobs here: it goes first */
	}
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	atomic_store(&w->stop, 1);
	started = w->started;
	w->started = 0;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	if (started)
		pthread_join(w->thread, NULL);
}

void
svc_waker_free(struct service *s)
{
	if (s->waker == NULL)
		return;
	service_quiesce(s);
	pthread_mutex_destroy(&s->waker->lock);
	pthread_cond_destroy(&s->waker->cond);
	free(s->waker);
	s->waker = NULL;
}

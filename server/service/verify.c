/*
 * Verification of the audit chain without reading all of it on every call (issue 10 §0).
 *
 * The service keeps an anchor: an entry up to which the chain was verified from its start,
 * and that entry's hash. With checkpoints on, the anchor is always a signed checkpoint's entry
 * (the newest whose entry the walk reached), so what it vouches for is also signed outside the
 * database. An incremental verification checks that the anchor entry still exists, still has
 * that hash and still hashes to it, then walks only the entries after it, and checks only the
 * checkpoints made since the last call (plus the newest again). A full verification walks
 * everything from entry 1 and every checkpoint; it runs on a thread of its own at a lower
 * priority, in ranges of AUDIT_WALK_CHUNK entries each in its own read transaction, so the
 * request workers keep serving devices meanwhile. Requests wait for it parked, like device
 * long polls, under the wake key SVC_VERIFY_WAKE.
 *
 * What an incremental verification cannot see: an entry below the anchor edited in place
 * without recomputing the hashes after it, or deleted from below the anchor, or an older
 * checkpoint changed. The full one sees those; once it found the chain broken, incremental
 * calls keep answering its finding until a full one finds the chain intact again.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "log.h"

/* A walk longer than this runs on the verifier thread, never on a request worker. */
#define VERIFY_INLINE_MAX 10000
/* The verifier thread's niceness: device requests come first on a busy machine. */
#define VERIFY_NICE 10

struct svc_verify {
	/* Guards all below; held through an incremental verification (bounded). */
	pthread_mutex_t lock;
	int have_base;                /* an anchor exists (base_seq 0: the chain's start) */
	int64_t base_seq;             /* entries 1..base_seq are verified */
	uint8_t base_hash[32];        /* entry base_seq's hash */
	int64_t full_at_ms;           /* when the last full verification ended; 0: none */
	struct audit_report full_rep; /* its report */
	/* The verifier thread: at most one run at a time. */
	pthread_t thread;
	int running, joinable, job_full;
	atomic_int stop; /* svc_verify_stop: end the run, start no more */
	int job_err;     /* the last run's store error, or 0 */
	int have_result; /* job_rep holds a finished run */
	struct audit_report job_rep;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
svc_verify_init(struct service *s)
{
	s->verify = calloc(1, sizeof(*s->verify));
	if (s->verify == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->verify->lock, NULL);
	return 0;
}

void
svc_verify_stop(struct service *s)
{
	struct svc_verify *v = s ? s->verify : NULL;

	if (v == NULL)
		return;
	pthread_mutex_lock(&v->lock);
	atomic_store(&v->stop, 1);
	pthread_mutex_unlock(&v->lock);
	/* Only this thread joins once stop is set: start_job refuses from now on. */
	if (v->joinable)
		pthread_join(v->thread, NULL);
	v->joinable = 0;
}

void
svc_verify_free(struct service *s)
{
	struct svc_verify *v = s->verify;

	if (v == NULL)
		return;
	/* A run holds the store: it must end before the store may close. */
	svc_verify_stop(s);
	pthread_mutex_destroy(&v->lock);
	free(v);
	s->verify = NULL;
}

/* Walks w on until the chain's end (or at least to seq until) or a problem. */
static int
walk_to_end(struct service *s, struct audit_walk *w, int64_t until, int background)
{
	int done = 0, r = 0;

	/* Bounded: each round reads AUDIT_WALK_CHUNK entries or ends the walk. */
	while (r == 0 && (!done || (w->seq < until && w->first_bad_seq == 0))) {
		int64_t before = w->checked;

		r = audit_walk_more(s->st, w, AUDIT_WALK_CHUNK, &done);
		if (w->checked == before)
			break; /* nothing more to read (until names an entry not there) */
		if (background && atomic_load(&s->verify->stop))
			return -ECANCELED;
		if (background)
			sched_yield(); /* between read transactions: let the workers run */
	}
	return r;
}

/*
 * Verifies from w (an anchor, or zeroed for the start) into rep, then the checkpoints. With
 * checkpoints on, walks on to the newest checkpoint's entry when it was made during the walk,
 * so that it can become the next anchor.
 */
static int
run(struct service *s, struct audit_walk *w, int full, int background, struct audit_report *rep)
{
	int64_t t0 = mono_ms(), from = w->seq;
	int r = audit_walk_anchor(s->st, w);

	memset(rep, 0, sizeof(*rep));
	if (r == 0)
		r = walk_to_end(s, w, 0, background);
	if (r != 0)
		return r;
	rep->ok = w->first_bad_seq == 0;
	rep->first_bad_seq = w->first_bad_seq;
	str_copy(rep->problem, sizeof(rep->problem), w->problem);
	r = svc_ckpt_report(s, full, rep);
	if (r == 0 && rep->ok && rep->last_ckpt_seq > w->seq)
		r = walk_to_end(s, w, rep->last_ckpt_seq, background);
	if (r != 0)
		return r;
	if (rep->ok && w->first_bad_seq != 0) {
		rep->ok = 0;
		rep->first_bad_seq = w->first_bad_seq;
		str_copy(rep->problem, sizeof(rep->problem), w->problem);
	}
	rep->entries = w->seq;
	rep->full = full;
	rep->from_seq = from;
	rep->checked = w->checked;
	rep->took_ms = mono_ms() - t0;
	return 0;
}

/* After a clean run: the newest checkpoint the walk reached becomes the anchor. */
static void
advance(struct service *s, struct svc_verify *v, const struct audit_walk *w,
	const struct audit_report *rep)
{
	if (!rep->ok)
		return;
	if (s->ckpt == NULL) {
		v->base_seq = w->seq; /* no signed anchor exists: the verified head is the best */
		memcpy(v->base_hash, w->hash, 32);
	} else if (rep->last_ckpt_seq > 0 && rep->last_ckpt_seq <= w->seq &&
		   (!v->have_base || rep->last_ckpt_seq >= v->base_seq)) {
		v->base_seq = rep->last_ckpt_seq;
		memcpy(v->base_hash, rep->last_ckpt_hash, 32);
	} else if (!v->have_base) {
		v->base_seq = 0;
		memset(v->base_hash, 0, 32);
	}
	v->have_base = 1;
}

static void *
job_main(void *arg)
{
	struct service *s = arg;
	struct svc_verify *v = s->verify;
	struct audit_walk w = {0};
	struct audit_report rep;
	int full, r;

	/* Linux: a thread's nice value is its own (setpriority on its thread id). */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), VERIFY_NICE) != 0)
		log_debug("audit: cannot lower the verifier thread's priority");
	pthread_mutex_lock(&v->lock);
	full = v->job_full;
	if (!full) {
		w.seq = v->base_seq;
		memcpy(w.hash, v->base_hash, 32);
	}
	pthread_mutex_unlock(&v->lock);
	r = run(s, &w, full, 1, &rep);
	pthread_mutex_lock(&v->lock);
	v->job_err = r;
	v->job_rep = rep;
	v->have_result = 1;
	if (r == 0) {
		if (full) {
			v->full_at_ms = service_now_ms(s);
			v->full_rep = rep;
		}
		advance(s, v, &w, &rep);
	}
	v->running = 0;
	pthread_mutex_unlock(&v->lock);
	if (r == 0 && !rep.ok)
		log_warn("audit: verification failed: %s", rep.problem);
	svc_notify(s, SVC_VERIFY_WAKE);
	return NULL;
}

/* Starts a run on the verifier thread; call with v->lock held and no run going. */
static int
start_job(struct service *s, struct svc_verify *v, int full)
{
	if (atomic_load(&v->stop))
		return -EAGAIN;
	if (v->joinable) {
		pthread_join(v->thread, NULL); /* the previous run, already over */
		v->joinable = 0;
	}
	v->job_full = full;
	v->running = 1;
	if (pthread_create(&v->thread, NULL, job_main, s) != 0) {
		v->running = 0;
		return -EAGAIN;
	}
	v->joinable = 1;
	return 0;
}

/* Whether the entries after the anchor are few enough to walk on the caller's thread. */
static int
tail_is_short(struct service *s, const struct svc_verify *v, int *r)
{
	struct audit_entry head;

	*r = s->st->ops->audit_last(s->st, &head);
	if (*r == -ENOENT) {
		*r = 0;
		return 1;
	}
	return *r == 0 && head.seq - v->base_seq <= VERIFY_INLINE_MAX;
}

/* Incremental from the anchor, on the caller's thread; call with v->lock held. */
static int
inline_run(struct service *s, struct svc_verify *v, struct audit_report *rep)
{
	struct audit_walk w = {.seq = v->base_seq};
	int r;

	memcpy(w.hash, v->base_hash, 32);
	r = run(s, &w, 0, 0, rep);
	if (r != 0)
		return r;
	advance(s, v, &w, rep);
	rep->full_at_ms = v->full_at_ms;
	if (!rep->ok)
		log_warn("audit: verification failed: %s", rep->problem);
	return 0;
}

int
svc_audit_verify(struct service *s, const struct principal *p, int full, struct audit_report *rep,
		 struct svc_error *err)
{
	struct svc_verify *v = s->verify;
	int r = svc_authorize(s, p, PERM_AUDIT_READ, err), sticky, shortt;

	if (r != 0)
		return r;
	pthread_mutex_lock(&v->lock);
	if (v->running) {
		pthread_mutex_unlock(&v->lock);
		return -EINPROGRESS; /* wait for the run going on, whichever kind */
	}
	sticky = !full && v->full_at_ms != 0 && !v->full_rep.ok;
	if (sticky) {
		*rep = v->full_rep;
		rep->full_at_ms = v->full_at_ms;
		pthread_mutex_unlock(&v->lock);
		return 0;
	}
	shortt = !full && v->have_base && tail_is_short(s, v, &r);
	if (r == 0 && shortt)
		r = inline_run(s, v, rep);
	else if (r == 0)
		r = start_job(s, v, full || !v->have_base) == 0 ? -EINPROGRESS : -EAGAIN;
	pthread_mutex_unlock(&v->lock);
	if (r == -EINPROGRESS || r == 0)
		return r;
	return r == -EAGAIN ? svc_fail(err, SVC_UNAVAILABLE, "the verifier thread cannot run now")
			    : svc_store_fail(err, r, "audit log");
}

int
svc_audit_verify_result(struct service *s, struct audit_report *rep, struct svc_error *err)
{
	struct svc_verify *v = s->verify;
	int r;

	pthread_mutex_lock(&v->lock);
	if (v->running) {
		pthread_mutex_unlock(&v->lock);
		return -EINPROGRESS;
	}
	r = v->have_result ? v->job_err : -ENOENT;
	*rep = v->job_rep;
	rep->full_at_ms = v->full_at_ms;
	pthread_mutex_unlock(&v->lock);
	if (r == -ECANCELED)
		return svc_fail(err, SVC_UNAVAILABLE, "the server is stopping; verify again later");
	return r == 0 ? 0 : svc_store_fail(err, r, "audit log");
}

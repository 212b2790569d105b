/*
 * The SQLite backend's WAL checkpointer. By default SQLite checkpoints inside the COMMIT that
 * grows the log past 1,000 pages: that writer copies the log into the database file and syncs
 * it while still holding the server's write lock, which measured 92-126 ms under load (every
 * other write, wipes included, waited). Here every connection reports its commits through a
 * WAL hook (which also turns SQLite's own checkpoint off) and one thread of the store, on a
 * connection of its own, runs PASSIVE checkpoints: they copy what no reader still needs while
 * writers go on appending, and never wait for a lock. The next writer after a complete
 * checkpoint starts the log over, so it stays near the threshold's size.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "log.h"
#include "store_sqlite_priv.h"

#define CKPT_FRAMES   1000   /* pages in the log that wake the checkpointer at once */
#define CKPT_PERIOD_S 1      /* and at least this often while anything was written */
#define CKPT_WARN     100000 /* pages (~400 MiB): a reader is keeping the log from shrinking */

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs in the committing thread, after its commit: only flags and signals. */
static int
on_commit(void *arg, sqlite3 *db, const char *name, int frames)
{
	struct sq_store *s = arg;

	(void)db;
	(void)name;
	atomic_store(&s->ckpt.dirty, 1);
	if (frames >= CKPT_FRAMES && !atomic_exchange(&s->ckpt.wanted, 1)) {
		pthread_mutex_lock(&s->ckpt.lock);
		pthread_cond_signal(&s->ckpt.cond);
		pthread_mutex_unlock(&s->ckpt.lock);
	}
	return SQLITE_OK;
}

void
sq_ckpt_hook(struct sq_store *s, sqlite3 *db)
{
	sqlite3_wal_hook(db, on_commit, s);
}

static void
checkpoint(struct sq_store *s, sqlite3 *db)
{
	static int64_t warned_ms;
	int64_t t0 = mono_ms(), ms;
	int nlog = 0, nckpt = 0;
	int rc;

	atomic_store(&s->ckpt.dirty, 0);
	atomic_store(&s->ckpt.wanted, 0);
	rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &nlog, &nckpt);
	ms = mono_ms() - t0;
	atomic_fetch_add(&s->ckpt.runs, 1);
	if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
		log_warn("store: WAL checkpoint failed: %s", sqlite3_errmsg(db));
		return;
	}
	log_debug("store: checkpoint of %d/%d log pages took %lld ms", nckpt, nlog, (long long)ms);
	if (nlog >= CKPT_WARN && nckpt < nlog && t0 - warned_ms > 60000) {
		warned_ms = t0;
		log_warn("store: the write-ahead log holds %d pages and only %d could be copied: a "
			 "long read is keeping it from being reset",
			 nlog, nckpt);
	}
}

static void *
ckpt_main(void *arg)
{
	struct sq_store *s = arg;
	sqlite3 *db = s->ckpt.db;

	pthread_mutex_lock(&s->ckpt.lock);
	while (!s->ckpt.stop) {
		struct timespec until;

		if (!atomic_load(&s->ckpt.wanted)) {
			clock_gettime(CLOCK_REALTIME, &until);
			until.tv_sec += CKPT_PERIOD_S;
			pthread_cond_timedwait(&s->ckpt.cond, &s->ckpt.lock, &until);
		}
		if (s->ckpt.stop)
			break;
		if (!atomic_load(&s->ckpt.wanted) && !atomic_load(&s->ckpt.dirty))
			continue;
		pthread_mutex_unlock(&s->ckpt.lock);
		checkpoint(s, db);
		pthread_mutex_lock(&s->ckpt.lock);
	}
	pthread_mutex_unlock(&s->ckpt.lock);
	return NULL;
}

int
sq_ckpt_start(struct sq_store *s, sqlite3 *db)
{
	pthread_mutex_init(&s->ckpt.lock, NULL);
	pthread_cond_init(&s->ckpt.cond, NULL);
	s->ckpt.db = db;
	if (pthread_create(&s->ckpt.thread, NULL, ckpt_main, s) != 0) {
		log_err("store: cannot start the checkpoint thread");
		return -EAGAIN;
	}
	s->ckpt.started = 1;
	return 0;
}

void
sq_ckpt_stop(struct sq_store *s)
{
	if (!s->ckpt.started)
		return;
	pthread_mutex_lock(&s->ckpt.lock);
	s->ckpt.stop = 1;
	pthread_cond_signal(&s->ckpt.cond);
	pthread_mutex_unlock(&s->ckpt.lock);
	pthread_join(s->ckpt.thread, NULL);
	s->ckpt.started = 0;
	pthread_cond_destroy(&s->ckpt.cond);
	pthread_mutex_destroy(&s->ckpt.lock);
}

long
store_sqlite_checkpoints(struct store *st)
{
	return atomic_load(&((struct sq_store *)st)->ckpt.runs);
}

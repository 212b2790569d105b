/*
 * The replay log: every device request nonce the server accepts is on disk before the request
 * is answered, so after a crash no request signed before it can be accepted again (the store
 * holds each device's highest nonce too, but only flushes it about once a second). Appends are
 * group-committed: the first waiter writes and fdatasyncs everything queued so far while the
 * others wait for it, so many requests share one fdatasync. Two files take turns: when the
 * once-a-second flush has put every nonce in the store, the file that was current before it
 * is emptied. A start reads both back. Records are text lines "DEVICE_ID NONCE"; a torn last
 * line is ignored (its request was never answered). A failed write fails only the requests in
 * it (503): the device signs again with a new nonce.
 */
#include "replaylog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

#define QUEUE_MAX (4u << 20) /* bytes waiting for their fdatasync */
#define LOAD_MAX  (64u << 20)

struct replaylog {
	pthread_mutex_t lock;
	pthread_cond_t done;
	char path[2][4096];
	int fd[2];
	off_t size[2];
	int cur;         /* the file appends go to */
	int other_clean; /* the other file holds nothing the store lacks */
	char *queue;     /* lines waiting to be written */
	size_t len, cap;
	uint64_t queued;  /* lines queued so far */
	uint64_t settled; /* lines whose write has ended, well or not */
	/* Recent batches whose write failed: their callers are told, the others are not. */
	struct {
		uint64_t lo, hi; /* lines lo+1 .. hi */
		int err;
	} failed[16];
	unsigned nfailed;
	uint64_t forgotten; /* lines up to here may be in a failed batch no longer listed */
	int broken;         /* a torn line could not be cut off: refuse until the store has all */
	int writing;
};

static int
write_all(int fd, const char *p, size_t n)
{
	for (int tries = 0; n > 0 && tries < 1000; tries++) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return n == 0 ? 0 : -EIO;
}

/* Reads one file's lines into fn; a malformed line (a torn last write) is skipped. */
static int
load_file(const char *path, int fd, replaylog_fn fn, void *ctx, size_t *records)
{
	struct stat st;
	char *buf, *line, *end;
	int r = 0;

	if (fstat(fd, &st) != 0)
		return -errno;
	if (st.st_size == 0)
		return 0;
	if ((uint64_t)st.st_size > LOAD_MAX) {
		log_err("replay log %s is larger than %u MiB; refusing it", path, LOAD_MAX >> 20);
		return -EFBIG;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL)
		return -ENOMEM;
	if (pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		free(buf);
		return -EIO;
	}
	buf[st.st_size] = '\0';
	for (line = buf; r == 0 && line < buf + st.st_size; line = end + 1) {
		char id[64];
		uint64_t nonce;

		end = strchr(line, '\n');
		if (end == NULL)
			break; /* torn: never acknowledged to anyone */
		*end = '\0';
		if (sscanf(line, "%63s %" SCNu64, id, &nonce) == 2) {
			r = fn(ctx, id, nonce);
			(*records)++;
		}
	}
	free(buf);
	return r;
}

int
replaylog_open(const char *path, replaylog_fn fn, void *ctx, struct replaylog **out,
	       size_t *records)
{
	struct replaylog *l = calloc(1, sizeof(*l));
	int r = 0;

	*records = 0;
	if (l == NULL)
		return -ENOMEM;
	l->fd[0] = l->fd[1] = -1;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->done, NULL);
	for (int i = 0; r == 0 && i < 2; i++) {
		if ((size_t)snprintf(l->path[i], sizeof(l->path[i]), "%s.%d", path, i) >=
		    sizeof(l->path[i])) {
			r = -ENAMETOOLONG;
			break;
		}
		l->fd[i] = open(l->path[i], O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (l->fd[i] < 0) {
			r = -errno;
			log_errno(errno, "cannot open the replay log %s", l->path[i]);
			break;
		}
		r = load_file(l->path[i], l->fd[i], fn, ctx, records);
		l->size[i] = lseek(l->fd[i], 0, SEEK_END);
	}
	if (r != 0) {
		replaylog_close(l);
		return r;
	}
	*out = l;
	return 0;
}

/* Empties file i; call with the lock held and no write under way. */
static int
clear_file(struct replaylog *l, int i)
{
	if (ftruncate(l->fd[i], 0) != 0 || fdatasync(l->fd[i]) != 0) {
		log_errno(errno, "cannot empty the replay log %s", l->path[i]);
		return -errno;
	}
	l->size[i] = 0;
	return 0;
}

int
replaylog_reset(struct replaylog *l)
{
	int r;

	pthread_mutex_lock(&l->lock);
	r = clear_file(l, 0);
	if (r == 0)
		r = clear_file(l, 1);
	l->cur = 0;
	l->other_clean = r == 0;
	pthread_mutex_unlock(&l->lock);
	return r;
}

/* Writes what is queued as the leader of one group; called and returns with the lock held. */
static void
lead_batch(struct replaylog *l)
{
	char *data = l->queue;
	size_t n = l->len;
	uint64_t upto = l->queued;
	int f = l->cur, r;

	l->queue = NULL;
	l->len = l->cap = 0;
	l->writing = 1;
	pthread_mutex_unlock(&l->lock);
	r = write_all(l->fd[f], data, n);
	if (r == 0 && fdatasync(l->fd[f]) != 0)
		r = -errno;
	pthread_mutex_lock(&l->lock);
	l->writing = 0;
	if (r == 0) {
		l->size[f] += (off_t)n;
	} else {
		unsigned k = l->nfailed++ % ARRAY_SIZE(l->failed);

		log_errno(-r, "cannot write the replay log %s; those device requests get 503",
			  l->path[f]);
		if (l->nfailed > ARRAY_SIZE(l->failed))
			l->forgotten = MAX(l->forgotten, l->failed[k].hi);
		l->failed[k].lo = l->settled;
		l->failed[k].hi = upto;
		l->failed[k].err = r;
		/* Cut a torn line off so later lines stay whole; if that fails, stop. */
		if (ftruncate(l->fd[f], l->size[f]) != 0) {
			log_errno(errno,
				  "cannot cut %s back after a failed write; device "
				  "requests are refused until the store has every nonce",
				  l->path[f]);
			l->broken = -EIO;
		}
	}
	l->settled = upto;
	free(data);
	pthread_cond_broadcast(&l->done);
}

/* 0 when line `mine` reached the disk, else why not; call with the lock held. */
static int
batch_result(const struct replaylog *l, uint64_t mine)
{
	for (size_t i = 0; i < ARRAY_SIZE(l->failed) && i < l->nfailed; i++)
		if (mine > l->failed[i].lo && mine <= l->failed[i].hi)
			return l->failed[i].err;
	return mine <= l->forgotten ? -EIO : l->broken;
}

int
replaylog_append(struct replaylog *l, const char *id, uint64_t nonce)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%s %" PRIu64 "\n", id, nonce);
	uint64_t mine;
	int r;

	if (n <= 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	r = l->broken;
	if (r == 0 && l->len + (size_t)n > QUEUE_MAX)
		r = -EAGAIN;
	if (r == 0 && l->len + (size_t)n > l->cap) {
		size_t cap = MAX(l->cap * 2, 4096);
		char *q = realloc(l->queue, cap);

		if (q == NULL)
			r = -ENOMEM;
		else
			l->queue = q, l->cap = cap;
	}
	if (r != 0) {
		pthread_mutex_unlock(&l->lock);
		return r;
	}
	memcpy(l->queue + l->len, line, (size_t)n);
	l->len += (size_t)n;
	mine = ++l->queued;
	/* Bounded: each round writes a batch or waits for the one being written. */
	while (l->settled < mine) {
		if (!l->writing)
			lead_batch(l);
		else
			pthread_cond_wait(&l->done, &l->lock);
	}
	r = batch_result(l, mine);
	pthread_mutex_unlock(&l->lock);
	return r;
}

int
replaylog_switch(struct replaylog *l)
{
	int switched = 0;

	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < 1000 && l->writing; i++)
		pthread_cond_wait(&l->done, &l->lock);
	if (l->other_clean) {
		l->cur ^= 1;
		l->other_clean = 0;
		switched = 1;
	}
	pthread_mutex_unlock(&l->lock);
	return switched;
}

void
replaylog_flushed(struct replaylog *l, int switched)
{
	pthread_mutex_lock(&l->lock);
	for (int i = 0; i < 1000 && l->writing; i++)
		pthread_cond_wait(&l->done, &l->lock);
	/* Every nonce accepted before the switch is in the store now. */
	if (switched && clear_file(l, l->cur ^ 1) == 0)
		l->other_clean = 1;
	l->broken = 0;
	pthread_mutex_unlock(&l->lock);
}

void
replaylog_close(struct replaylog *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < 2; i++)
		if (l->fd[i] >= 0)
			close(l->fd[i]);
	free(l->queue);
	pthread_cond_destroy(&l->done);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

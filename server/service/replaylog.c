/*
 * The replay log: every device request nonce the server accepts is written (write(2), into
 * the page cache) before the request is answered, so when the server process dies at any
 * point (kill -9, a crash, the OOM killer) no request signed before it can be accepted again
 * after the restart. The store holds each device's highest nonce too, but gets it only about
 * once a second; so does the disk get this file (fdatasync at each flush): after a power loss
 * or kernel crash the last second can still be lost, as before. One write per request, no
 * fdatasync on the request path (that costed 60 % of check-in throughput, bench/RESULTS.md).
 * Two files take turns: when the flush has put every nonce in the store, the file that was
 * current before it is emptied. A start reads both back. Records are text lines
 * "DEVICE_ID NONCE"; a torn last line is ignored (its request was never answered). A failed
 * write fails only its request (503): the device signs again with a new nonce.
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

#define LOAD_CHUNK (64u << 10)

struct replaylog {
	pthread_mutex_t lock;
	char path[2][4096];
	int fd[2];
	off_t size[2];
	int cur;         /* the file appends go to */
	int other_clean; /* the other file holds nothing the store lacks */
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

/* Passes one line to fn when it is a record; anything else is skipped. */
static int
load_line(const char *line, replaylog_fn fn, void *ctx, size_t *records)
{
	char id[64];
	uint64_t nonce;

	if (sscanf(line, "%63s %" SCNu64, id, &nonce) != 2)
		return 0;
	(*records)++;
	return fn(ctx, id, nonce);
}

/*
 * Reads one file's lines into fn, a chunk at a time (a log the store could not take for a
 * long while may be large). A malformed line is skipped; a torn last line (no newline) was
 * never acknowledged to anyone.
 */
static int
load_file(int fd, replaylog_fn fn, void *ctx, size_t *records)
{
	char *buf = malloc(LOAD_CHUNK + 1);
	size_t have = 0;
	off_t off = 0;
	int r = buf ? 0 : -ENOMEM;

	/* Bounded: every round reads at least one byte of the file, or ends. */
	while (r == 0) {
		ssize_t n = pread(fd, buf + have, LOAD_CHUNK - have, off);
		size_t start = 0;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : 0;
			break;
		}
		off += n;
		have += (size_t)n;
		for (size_t i = 0; i < have && r == 0; i++) {
			if (buf[i] != '\n')
				continue;
			buf[i] = '\0';
			r = load_line(buf + start, fn, ctx, records);
			start = i + 1;
		}
		memmove(buf, buf + start, have - start);
		have -= start;
		if (have == LOAD_CHUNK) /* a line longer than any record: not one */
			have = 0;
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
		r = load_file(l->fd[i], fn, ctx, records);
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

int
replaylog_append(struct replaylog *l, const char *id, uint64_t nonce)
{
	char line[96];
	int n = snprintf(line, sizeof(line), "%s %" PRIu64 "\n", id, nonce);
	int f, r;

	if (n <= 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	pthread_mutex_lock(&l->lock);
	f = l->cur;
	r = write_all(l->fd[f], line, (size_t)n);
	if (r == 0) {
		l->size[f] += n;
	} else {
		log_errno(-r, "cannot write the replay log %s; that device request gets 503",
			  l->path[f]);
		/* Cut a torn line off so later lines stay whole. */
		if (ftruncate(l->fd[f], l->size[f]) != 0)
			log_errno(errno, "cannot cut %s back after a failed write", l->path[f]);
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

int
replaylog_switch(struct replaylog *l)
{
	int switched = 0;

	pthread_mutex_lock(&l->lock);
	/* Once a second: what reached the page cache goes to the disk too. */
	if (fdatasync(l->fd[l->cur]) != 0)
		log_errno(errno, "cannot sync the replay log %s", l->path[l->cur]);
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
	/* Every nonce accepted before the switch is in the store now. */
	if (switched && clear_file(l, l->cur ^ 1) == 0)
		l->other_clean = 1;
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
	pthread_mutex_destroy(&l->lock);
	free(l);
}

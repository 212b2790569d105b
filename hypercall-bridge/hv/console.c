/*
 * The corporate screen (console.h): one thread serves an AF_UNIX stream socket, replays the
 * in-memory scrollback to the one attached client and then streams the guest's output live,
 * and hands the client's keystrokes to the input callback. Everything that holds console bytes
 * (scrollback, pending output, the send stage, pending input) lives in one mmap'd region that
 * is locked (best effort), excluded from core dumps and wiped on clear and close. It does not
 * interpret what flows through it (no terminal emulation) and never writes it anywhere else.
 */
#include "console.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

/*
 * Output queued for a slow client. When it is full the oldest queued bytes are dropped (never
 * the newest): the client then sees the current screen, like the scrollback, and a notice
 * saying how much it missed. console_output never waits for the client.
 */
#define CONSOLE_OUT_CAP     16384
#define CONSOLE_STAGE_CAP   1024 /* bytes taken off the queue for one send(2) */
#define CONSOLE_IN_CAP      512  /* keystrokes read from the client and not yet taken */
#define CONSOLE_IN_RETRY_MS 20   /* retry period while the guest does not take input */
#define CONSOLE_IN_DROP_MS  500  /* no progress for this long: the pending input is dropped */
#define CONSOLE_IDLE_MS     1000 /* poll bound when nothing is pending */
#define CONSOLE_FLUSH_MS    200  /* what console_close waits for the client to take the rest */
#define CONSOLE_STATUS_MAX  160

static const char msg_denied[] = "cleave-hv: console: permission denied\r\n";
static const char msg_busy[] = "cleave-hv: console busy\r\n";

/* A byte ring over borrowed storage; head is the oldest byte. */
struct ring {
	uint8_t *buf;
	size_t cap, head, len;
};

struct console {
	pthread_mutex_t lock; /* guards the fields up to the thread's own ones */
	struct ring scroll;   /* the last CONSOLE_SCROLLBACK bytes of guest output */
	struct ring out;      /* bytes for the attached client, not yet staged */
	int attached;
	int stop;
	int woken;           /* a wake-up is written and not yet drained */
	int wipe_thread;     /* console_clear: the thread must wipe its stage and input too */
	unsigned clear_gen;  /* console_clear calls so far */
	unsigned stage_gen;  /* clear_gen when the stage was filled */
	int line_start;      /* the last byte queued for the client ended a line */
	uint64_t dropped;    /* output bytes dropped for a slow client, not yet reported */
	uint64_t in_dropped; /* keystrokes dropped because the guest did not take them */
	char status[CONSOLE_STATUS_MAX];

	/* The console thread's own. */
	int listen_fd, client_fd, wake_fd;
	uint8_t *stage;
	size_t stage_off, stage_len;
	uint8_t *in;
	size_t in_len;
	int64_t in_since; /* monotonic ms of the last progress on pending input */

	/* Set by console_open. */
	uid_t allowed_uid;
	console_input_fn input;
	void *ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
	uint8_t *mem;
	size_t mem_len;
	pthread_t thread;
	int thread_started;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Appends n bytes, dropping the oldest on overflow; returns how many bytes were dropped. */
static size_t
ring_put(struct ring *r, const uint8_t *p, size_t n)
{
	size_t dropped = 0, tail;

	if (n > r->cap) {
		dropped = n - r->cap;
		p += dropped;
		n = r->cap;
	}
	if (r->len + n > r->cap) {
		size_t over = r->len + n - r->cap;

		r->head = (r->head + over) % r->cap;
		r->len -= over;
		dropped += over;
	}
	tail = (r->head + r->len) % r->cap;
	for (size_t done = 0; done < n;) {
		size_t k = MIN(n - done, r->cap - tail);

		memcpy(r->buf + tail, p + done, k);
		tail = (tail + k) % r->cap;
		done += k;
	}
	r->len += n;
	return dropped;
}

/* Moves up to n of the oldest bytes into out; returns how many. */
static size_t
ring_take(struct ring *r, uint8_t *out, size_t n)
{
	size_t done = 0;

	n = MIN(n, r->len);
	while (done < n) {
		size_t k = MIN(n - done, r->cap - r->head);

		memcpy(out + done, r->buf + r->head, k);
		explicit_bzero(r->buf + r->head, k);
		r->head = (r->head + k) % r->cap;
		done += k;
	}
	r->len -= n;
	return n;
}

/* Copies the whole content of src after dst's (src unchanged). */
static void
ring_copy(struct ring *dst, const struct ring *src)
{
	size_t first = MIN(src->len, src->cap - src->head);

	ring_put(dst, src->buf + src->head, first);
	ring_put(dst, src->buf, src->len - first);
}

static uint8_t
ring_last(const struct ring *r)
{
	return r->len == 0 ? '\n' : r->buf[(r->head + r->len - 1) % r->cap];
}

static void
ring_wipe(struct ring *r)
{
	explicit_bzero(r->buf, r->cap);
	r->head = 0;
	r->len = 0;
}

/* Asks the thread to look at its state again. Called with c->lock held. */
static void
wake_locked(struct console *c)
{
	uint64_t one = 1;

	if (c->woken)
		return;
	c->woken = 1;
	(void)!write(c->wake_fd, &one, sizeof(one)); /* non-blocking; a full counter still wakes */
}

/* Queues bytes for the attached client. Called with c->lock held. */
static void
queue_out_locked(struct console *c, const uint8_t *p, size_t n)
{
	if (!c->attached || n == 0)
		return;
	c->dropped += ring_put(&c->out, p, n);
	c->line_start = p[n - 1] == '\n';
	wake_locked(c);
}

/* Queues "msg\r\n" for the client on a line of its own. Called with c->lock held. */
static void
queue_line_locked(struct console *c, const char *msg)
{
	if (!c->attached)
		return;
	if (!c->line_start)
		queue_out_locked(c, (const uint8_t *)"\r\n", 2);
	queue_out_locked(c, (const uint8_t *)msg, strnlen(msg, CONSOLE_STATUS_MAX));
	queue_out_locked(c, (const uint8_t *)"\r\n", 2);
}

void
console_output(struct console *c, const uint8_t *buf, size_t len)
{
	if (c == NULL || len == 0)
		return;
	pthread_mutex_lock(&c->lock);
	ring_put(&c->scroll, buf, len);
	queue_out_locked(c, buf, len);
	pthread_mutex_unlock(&c->lock);
}

void
console_clear(struct console *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	ring_wipe(&c->scroll);
	ring_wipe(&c->out);
	c->dropped = 0;
	c->wipe_thread = 1;
	c->clear_gen++;
	wake_locked(c);
	pthread_mutex_unlock(&c->lock);
}

void
console_notice(struct console *c, const char *msg)
{
	if (c == NULL || msg == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	queue_line_locked(c, msg);
	pthread_mutex_unlock(&c->lock);
}

void
console_set_status(struct console *c, const char *msg)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	str_copy(c->status, sizeof(c->status), msg != NULL ? msg : "");
	pthread_mutex_unlock(&c->lock);
}

/* Sends a refusal line (best effort, never waits) and closes the connection. */
static void
refuse(int fd, const char *msg)
{
	(void)!send(fd, msg, strlen(msg), MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

/* Takes a new connection: refused, told busy, or attached with the scrollback queued. */
static void
accept_client(struct console *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    cred.uid != c->allowed_uid) {
		log_warn("cleave-hv: console: refused pid %ld uid %ld (only uid %u may attach)",
			 len == sizeof(cred) ? (long)cred.pid : -1L,
			 len == sizeof(cred) ? (long)cred.uid : -1L, (unsigned)c->allowed_uid);
		refuse(fd, msg_denied);
		return;
	}
	if (c->client_fd >= 0) {
		log_info("cleave-hv: console: refused pid %ld (busy)", (long)cred.pid);
		refuse(fd, msg_busy);
		return;
	}
	c->client_fd = fd;
	c->in_len = 0;
	c->stage_off = c->stage_len = 0;
	pthread_mutex_lock(&c->lock);
	ring_wipe(&c->out);
	c->dropped = 0;
	c->in_dropped = 0;
	c->attached = 1;
	ring_copy(&c->out, &c->scroll); /* the replay, then live output behind it */
	c->line_start = ring_last(&c->out) == '\n';
	if (c->status[0] != '\0')
		queue_line_locked(c, c->status);
	pthread_mutex_unlock(&c->lock);
	log_info("cleave-hv: console: attached (pid %ld)", (long)cred.pid);
}

static void
detach_client(struct console *c, const char *why)
{
	if (c->client_fd < 0)
		return;
	pthread_mutex_lock(&c->lock);
	c->attached = 0;
	ring_wipe(&c->out);
	c->dropped = 0;
	pthread_mutex_unlock(&c->lock);
	explicit_bzero(c->stage, CONSOLE_STAGE_CAP);
	explicit_bzero(c->in, CONSOLE_IN_CAP);
	c->stage_off = c->stage_len = 0;
	c->in_len = 0;
	close(c->client_fd);
	c->client_fd = -1;
	log_info("cleave-hv: console: detached (%s)", why);
}

/* Refills the empty stage from the queue, reports drops first. Called with c->lock held. */
static void
stage_refill_locked(struct console *c)
{
	char note[128];
	int n = 0;

	c->stage_off = 0;
	c->stage_len = 0;
	c->stage_gen = c->clear_gen;
	if (c->dropped > 0 || c->in_dropped > 0) {
		if (c->dropped > 0)
			n = snprintf(note, sizeof(note),
				     "\r\n[cleave-hv] %llu bytes of output dropped: this client "
				     "reads too slowly\r\n",
				     (unsigned long long)c->dropped);
		else
			n = snprintf(note, sizeof(note),
				     "\r\n[cleave-hv] %llu keystrokes dropped: the corporate VM "
				     "is not taking input\r\n",
				     (unsigned long long)c->in_dropped);
		if (n > 0 && (size_t)n < sizeof(note)) {
			memcpy(c->stage, note, (size_t)n);
			c->stage_len = (size_t)n;
		}
		if (c->dropped > 0)
			c->dropped = 0;
		else
			c->in_dropped = 0;
	}
	c->stage_len +=
		ring_take(&c->out, c->stage + c->stage_len, CONSOLE_STAGE_CAP - c->stage_len);
}

/* Sends what the client will take now. 0, or -1 when the client is gone. */
static int
flush_client(struct console *c)
{
	while (c->client_fd >= 0) {
		ssize_t n;

		if (c->stage_off == c->stage_len) {
			explicit_bzero(c->stage, c->stage_len);
			pthread_mutex_lock(&c->lock);
			stage_refill_locked(c);
			pthread_mutex_unlock(&c->lock);
			if (c->stage_len == 0)
				return 0;
		}
		n = send(c->client_fd, c->stage + c->stage_off, c->stage_len - c->stage_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		c->stage_off += (size_t)n;
	}
	return 0;
}

/* Offers pending keystrokes to the guest; drops them when it takes none for too long. */
static void
feed_input(struct console *c)
{
	size_t k;

	if (c->in_len == 0)
		return;
	k = c->input != NULL ? c->input(c->ctx, c->in, c->in_len) : c->in_len;
	k = MIN(k, c->in_len);
	if (k > 0) {
		memmove(c->in, c->in + k, c->in_len - k);
		explicit_bzero(c->in + c->in_len - k, k);
		c->in_len -= k;
		c->in_since = mono_ms();
		return;
	}
	if (mono_ms() - c->in_since < CONSOLE_IN_DROP_MS)
		return;
	pthread_mutex_lock(&c->lock);
	c->in_dropped += c->in_len;
	wake_locked(c);
	pthread_mutex_unlock(&c->lock);
	explicit_bzero(c->in, c->in_len);
	c->in_len = 0;
	log_debug("cleave-hv: console: input dropped (the guest did not take it)");
}

/* Reads keystrokes when none are pending. 0, or -1 when the client is gone. */
static int
read_client(struct console *c)
{
	ssize_t n = recv(c->client_fd, c->in, CONSOLE_IN_CAP, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
	if (n == 0)
		return -1;
	c->in_len = (size_t)n;
	c->in_since = mono_ms();
	feed_input(c);
	return 0;
}

/* Drains the wake-up and applies console_clear to the thread's own buffers. */
static void
take_wakeup(struct console *c)
{
	uint64_t v;

	(void)!read(c->wake_fd, &v, sizeof(v));
	pthread_mutex_lock(&c->lock);
	c->woken = 0;
	if (c->wipe_thread) {
		c->wipe_thread = 0;
		explicit_bzero(c->in, CONSOLE_IN_CAP);
		c->in_len = 0;
		/* A stage filled after the clear holds only what came after it (its notice). */
		if (c->stage_gen != c->clear_gen) {
			explicit_bzero(c->stage, CONSOLE_STAGE_CAP);
			c->stage_off = c->stage_len = 0;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

/* At close: gives the client a bounded moment to take what is queued (the last notices). */
static void
final_flush(struct console *c)
{
	int64_t deadline = mono_ms() + CONSOLE_FLUSH_MS;
	struct pollfd p;

	while (c->client_fd >= 0 && flush_client(c) == 0 && c->stage_off < c->stage_len) {
		int64_t left = deadline - mono_ms();

		if (left <= 0)
			break;
		p.fd = c->client_fd;
		p.events = POLLOUT;
		if (poll(&p, 1, (int)left) <= 0)
			break;
	}
	detach_client(c, "cleave-hv is closing the console");
}

static int
poll_once(struct console *c)
{
	struct pollfd p[3] = {
		{.fd = c->wake_fd, .events = POLLIN},
		{.fd = c->listen_fd, .events = POLLIN},
		{.fd = c->client_fd, .events = 0},
	};
	int timeout = c->in_len > 0 ? CONSOLE_IN_RETRY_MS : CONSOLE_IDLE_MS;

	if (c->in_len == 0)
		p[2].events |= POLLIN;
	if (c->stage_off < c->stage_len)
		p[2].events |= POLLOUT;
	if (poll(p, c->client_fd >= 0 ? 3 : 2, timeout) < 0 && errno != EINTR) {
		log_errno(errno, "cleave-hv: console: poll");
		return -1;
	}
	if (p[0].revents & POLLIN)
		take_wakeup(c);
	if (c->client_fd >= 0) {
		if (p[2].revents & POLLIN) {
			if (read_client(c) != 0)
				detach_client(c, "client left");
		} else if (p[2].revents & (POLLHUP | POLLERR | POLLNVAL)) {
			detach_client(c, "client left"); /* with its pending input */
		} else {
			feed_input(c);
		}
	}
	if (p[1].revents & POLLIN)
		accept_client(c); /* queues the replay, sent just below */
	if (c->client_fd >= 0 && flush_client(c) != 0)
		detach_client(c, "client left");
	return 0;
}

static void *
console_thread(void *arg)
{
	struct console *c = arg;

	for (;;) {
		int stop;

		pthread_mutex_lock(&c->lock);
		stop = c->stop;
		pthread_mutex_unlock(&c->lock);
		if (stop || poll_once(c) != 0)
			break;
	}
	final_flush(c);
	return NULL;
}

/* Binds the listening socket at c->path: mode 0600, a stale socket file replaced. */
static int
listen_at(struct console *c)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd, r;

	memcpy(sa.sun_path, c->path, sizeof(c->path));
	if (lstat(c->path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("cleave-hv: console: %s exists and is not a socket; not replacing "
				"it",
				c->path);
			return -EEXIST;
		}
		unlink(c->path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* fchmod before bind: the socket file is never more open than 0600, whatever the umask. */
	if (fchmod(fd, 0600) != 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    chmod(c->path, 0600) != 0 || listen(fd, 4) != 0 || stat(c->path, &st) != 0) {
		r = -errno;
		log_errno(-r, "cleave-hv: console: cannot listen on %s", c->path);
		close(fd);
		return r;
	}
	c->dev = st.st_dev;
	c->ino = st.st_ino;
	c->listen_fd = fd;
	return 0;
}

/* Maps the one region that holds console bytes: locked when allowed, never in a core dump. */
static int
map_buffers(struct console *c)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t need = CONSOLE_SCROLLBACK + CONSOLE_OUT_CAP + CONSOLE_STAGE_CAP + CONSOLE_IN_CAP;
	void *p;

	if (page <= 0)
		return -EINVAL;
	c->mem_len = (need + (size_t)page - 1) / (size_t)page * (size_t)page;
	p = mmap(NULL, c->mem_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		c->mem_len = 0;
		return -ENOMEM;
	}
	c->mem = p;
	if (madvise(p, c->mem_len, MADV_DONTDUMP) != 0)
		log_errno(errno, "cleave-hv: console: madvise MADV_DONTDUMP");
	if (mlock(p, c->mem_len) != 0) /* best effort: RLIMIT_MEMLOCK may not allow it */
		log_debug("cleave-hv: console: scrollback not locked in memory (%s)",
			  strerror(errno));
	c->scroll = (struct ring){.buf = c->mem, .cap = CONSOLE_SCROLLBACK};
	c->out = (struct ring){.buf = c->mem + CONSOLE_SCROLLBACK, .cap = CONSOLE_OUT_CAP};
	c->stage = c->out.buf + CONSOLE_OUT_CAP;
	c->in = c->stage + CONSOLE_STAGE_CAP;
	return 0;
}

/* Starts the thread with every signal blocked: they belong to the main and vCPU threads. */
static int
start_thread(struct console *c)
{
	sigset_t all, old;
	int r;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&c->thread, NULL, console_thread, c);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r != 0)
		return -r;
	c->thread_started = 1;
	return 0;
}

int
console_open(const char *path, uid_t allowed_uid, console_input_fn input, void *ctx,
	     struct console **out)
{
	struct console *c;
	int r;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	c->listen_fd = c->client_fd = c->wake_fd = -1;
	c->allowed_uid = allowed_uid;
	c->input = input;
	c->ctx = ctx;
	c->line_start = 1;
	r = pthread_mutex_init(&c->lock, NULL);
	if (r != 0) {
		free(c);
		return -r;
	}
	if (str_copy(c->path, sizeof(c->path), path) != 0) {
		log_err("cleave-hv: console: socket path too long: %s", path);
		r = -ENAMETOOLONG;
	} else if ((r = map_buffers(c)) == 0 && (r = listen_at(c)) == 0) {
		c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		r = c->wake_fd < 0 ? -errno : start_thread(c);
	}
	if (r != 0) {
		console_close(c);
		return r;
	}
	*out = c;
	return 0;
}

void
console_close(struct console *c)
{
	struct stat st;

	if (c == NULL)
		return;
	if (c->thread_started) {
		pthread_mutex_lock(&c->lock);
		c->stop = 1;
		wake_locked(c);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->thread, NULL);
	}
	if (c->listen_fd >= 0) {
		close(c->listen_fd);
		/* Only our own socket file: a newer cleave-hv may have replaced it. */
		if (stat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino)
			unlink(c->path);
	}
	if (c->wake_fd >= 0)
		close(c->wake_fd);
	if (c->mem != NULL) {
		explicit_bzero(c->mem, c->mem_len);
		munlock(c->mem, c->mem_len);
		munmap(c->mem, c->mem_len);
	}
	pthread_mutex_destroy(&c->lock);
	explicit_bzero(c, sizeof(*c));
	free(c);
}

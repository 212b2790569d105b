/*
 * loadgen: the load generator of the cleave-server benchmarks. Each thread runs one epoll loop
 * over many non-blocking OpenSSL connections to 127.0.0.1, keep-alive, one request at a time.
 * "throughput" sends signed check-ins (wait 0) or plain GETs back to back and reports requests
 * per second and per server CPU-second; "parked" holds one long-poll per agent and reports the
 * server's memory per parked agent and the delay from a wipe POST (or hello's /release) to the
 * parked agent's answer. Devices are enrolled and drained first over libcurl (tests/lib). Output
 * is RESULT lines of key=value pairs that bench/run.sh turns into a table; no fixed time is
 * ever judged here. It is one file because the Makefile makes a program of every C file in bench/.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpsig.h"
#include "proccpu.h"
#include "testlib.h"
#include "util.h"

#define OUT_CAP        1024
#define IN_CAP         4096
#define EV_BATCH       256
#define DRIVE_STEPS    16  /* state-machine steps per wake-up before requeueing a conn */
#define SETUP_INFLIGHT 128 /* connections connecting or handshaking at once, per thread */
#define LAT_CAP        (1 << 21)
#define MAX_THREADS    16
#define MAX_AGENTS     48000 /* above ~19,000 the fd hard limit must be raised (root) */
#define MAX_SERVERS    8     /* parked mode: agents split over up to this many servers */
#define SETUP_THREADS  8     /* enrollment connections: 4, or 2 per server with several */
#define BURST_THREADS  4
#define CHECKIN_PATH   "/device/v1/checkin"

enum mode { M_THROUGHPUT, M_PARKED };
enum target { T_CLEAVE, T_HELLO };
enum cstate { CS_CONNECTING, CS_HANDSHAKE, CS_SEND, CS_RECV, CS_IDLE, CS_DEAD };

struct opts {
	enum mode mode;
	enum target target;
	const char *url, *cacert, *admin_file; /* url and cacert: comma-separated, one per server */
	pid_t pid[MAX_SERVERS];
	unsigned npid;
	pid_t pg_pid; /* throughput: PostgreSQL's postmaster, whose CPU is reported too */
	unsigned conns, threads, agents, sample, burst, wait_s;
	double seconds, warmup, deadline;
};

struct conn {
	int fd;
	SSL *ssl;
	enum cstate st;
	int setup; /* counted in its worker's setup_inflight */
	int queued;
	int done; /* parked mode: got its 200, sends nothing more */
	unsigned step;
	size_t idx;  /* device / agent index */
	unsigned sv; /* the server it talks to */
	size_t out_len, out_off, in_len;
	double t_sent;
	char out[OUT_CAP];
	char in[IN_CAP];
};

struct worker {
	struct run *r;
	pthread_t th;
	int ep;
	struct conn *conns;
	size_t nconns, next_open, setup_inflight;
	struct conn **again[2];
	size_t nagain[2];
	int cur;
	double *lat;
	size_t nlat;
};

/*
 * In memory shared with the agent processes. answered: good responses in the throughput
 * window; 200s to parked polls in parked mode.
 */
struct shared {
	atomic_long established, conn_failed, errors, unexpected, repolls, answered;
	atomic_int quit;
};

struct run {
	struct opts o;
	SSL_CTX *ctx;
	unsigned nsrv; /* servers: agent i belongs to server i * nsrv / agents */
	struct sockaddr_in addr[MAX_SERVERS];
	char host[MAX_SERVERS][64];
	struct srv srv[MAX_SERVERS]; /* url, cacert and admin token for tests/lib clients */
	char etoken[128];
	struct device_sim *devs;
	struct conn *conns;
	size_t nconns;
	struct worker w[MAX_THREADS];
	unsigned nstarted;        /* worker threads running */
	_Atomic int64_t *recv_ns; /* parked: when agent i got its 200 (shared with agent procs) */
	int64_t *post_ns;         /* parked: when agent i's wipe POST was sent */
	atomic_int stop, record;
	atomic_long enrolled;
	struct shared *sh;        /* counters the agent processes of a parked run update too */
	pid_t procs[MAX_SERVERS]; /* parked, several servers: one agent process per server */
	unsigned nprocs;
	double hard_end;
};

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("[loadgen] ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- the server process, from /proc ---- */

/* CPU of all servers of the run (parked mode may have several), or -1. */
static double
servers_cpu_s(const struct opts *o)
{
	double sum = 0;

	for (unsigned k = 0; k < o->npid; k++) {
		double c = proc_cpu_s(o->pid[k]);

		if (c < 0)
			return -1;
		sum += c;
	}
	return sum;
}

/* A "Name:   N kB" line of a /proc file, in KiB, or -1. */
static long
proc_kib(const char *path, const char *name)
{
	char buf[8192], *p;

	if (proc_read(path, buf, sizeof(buf)) <= 0 || (p = strstr(buf, name)) == NULL)
		return -1;
	return strtol(p + strlen(name), NULL, 10);
}

static long
server_rss_kib(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	return proc_kib(path, "VmRSS:");
}

static double
self_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void
sort_ms(double *v, size_t n)
{
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_double);
}

/* Nearest-rank percentile of v, which sort_ms has sorted; 0 when empty. */
static double
pct(const double *v, size_t n, double p)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(p * (double)n + 0.999999);
	return v[k == 0 ? 0 : MIN(k, n) - 1];
}

/* ---- requests and responses ---- */

static int
build_get(struct run *r, struct conn *c, const char *path)
{
	return snprintf(c->out, OUT_CAP, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path,
			r->host[c->sv]);
}

/* A check-in signed with a fresh nonce (RFC 9421, as the agent signs it). */
static int
build_checkin(struct run *r, struct conn *c, unsigned wait)
{
	struct device_sim *d = &r->devs[c->idx];
	struct httpsig_params p = {.created = (int64_t)time(NULL), .nonce = ++d->nonce};
	struct httpsig_headers h;
	char body[32];
	int blen = snprintf(body, sizeof(body), "{\"wait\":%u}", wait);

	str_copy(p.keyid, sizeof(p.keyid), d->id);
	if (httpsig_sign(d->key, "POST", CHECKIN_PATH, "", body, (size_t)blen, &p, &h) != 0)
		return -1;
	return snprintf(c->out, OUT_CAP,
			"POST " CHECKIN_PATH " HTTP/1.1\r\nHost: %s\r\n"
			"Content-Type: application/json\r\nContent-Length: %d\r\n"
			"Content-Digest: %s\r\nSignature-Input: %s\r\nSignature: %s\r\n\r\n%s",
			r->host[c->sv], blen, h.content_digest, h.signature_input, h.signature,
			body);
}

/* Fills c->out with the connection's next request: 1 when there is one, 0 when it rests. */
static int
next_request(struct run *r, struct conn *c)
{
	int n;

	if (r->o.mode == M_THROUGHPUT) {
		if (atomic_load(&r->stop))
			return 0;
		n = r->o.target == T_CLEAVE ? build_checkin(r, c, 0) : build_get(r, c, "/");
	} else {
		if (c->done)
			return 0;
		if (r->o.target == T_CLEAVE)
			n = build_checkin(r, c, c->step == 0 ? 0 : r->o.wait_s);
		else
			n = build_get(r, c, c->step == 0 ? "/" : "/park");
	}
	if (n <= 0 || n >= OUT_CAP)
		return -1;
	c->out_len = (size_t)n;
	c->out_off = 0;
	c->in_len = 0;
	c->t_sent = now_s();
	return 1;
}

/*
 * One HTTP/1.1 response at the start of buf: 1 when complete (status, header and body length
 * filled), 0 when more bytes are needed, -1 when it is not one we can frame (no Content-Length).
 */
static int
http_parse(const char *buf, size_t len, int *status, size_t *hlen, size_t *blen, int *close)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4), *p;
	long cl = -1;

	if (end == NULL)
		return len >= IN_CAP - 1 ? -1 : 0;
	if (len < 12 || memcmp(buf, "HTTP/1.", 7) != 0)
		return -1;
	*status = (int)strtol(buf + 9, NULL, 10);
	*hlen = (size_t)(end - buf) + 4;
	*close = 0;
	for (p = memchr(buf, '\n', (size_t)(end - buf)); p != NULL && p < end;
	     p = memchr(p, '\n', (size_t)(end - p))) {
		p++;
		if (strncasecmp(p, "Content-Length:", 15) == 0)
			cl = strtol(p + 15, NULL, 10);
		else if (strncasecmp(p, "Connection: close", 17) == 0)
			*close = 1;
	}
	if (*status == 204 || *status == 304 || *status < 200)
		cl = 0;
	if (cl < 0 || *hlen + (size_t)cl >= IN_CAP)
		return -1;
	*blen = (size_t)cl;
	return len >= *hlen + *blen;
}

static void
report_error(struct run *r, const char *what, int status, const char *body)
{
	if (atomic_fetch_add(&r->sh->errors, 1) < 5)
		say("error: %s (HTTP %d) %.200s", what, status, body ? body : "");
}

/* Handles one complete response; returns -1 when the connection must go. */
static int
on_response(struct worker *w, struct conn *c, int status, const char *body)
{
	struct run *r = w->r;
	int ok = r->o.target == T_CLEAVE ? 204 : 200;

	if (r->o.mode == M_THROUGHPUT) {
		if (status == 200 && r->o.target == T_CLEAVE)
			atomic_fetch_add(&r->sh->unexpected, 1);
		else if (status != ok)
			return report_error(r, "throughput request", status, body), -1;
		if (atomic_load_explicit(&r->record, memory_order_relaxed)) {
			atomic_fetch_add_explicit(&r->sh->answered, 1, memory_order_relaxed);
			if (w->lat != NULL && w->nlat < LAT_CAP)
				w->lat[w->nlat++] = (now_s() - c->t_sent) * 1e3;
		}
		return 0;
	}
	if (c->step++ == 0) { /* the plain request before the first park */
		if (status != ok)
			atomic_fetch_add(&r->sh->unexpected, 1);
		return 0;
	}
	if (status == 204) {
		atomic_fetch_add(&r->sh->repolls, 1);
		return 0;
	}
	if (status != 200)
		return report_error(r, "long-poll answer", status, body), -1;
	atomic_store(&r->recv_ns[c->idx], mono_ns());
	atomic_fetch_add(&r->sh->answered, 1);
	if (r->o.target == T_CLEAVE && strstr(body, "\"wipe\"") == NULL)
		atomic_fetch_add(&r->sh->unexpected, 1);
	c->done = 1;
	return 0;
}

/* ---- connections ---- */

static void
conn_close(struct worker *w, struct conn *c)
{
	struct linger lg = {1, 0};

	if (c->setup) {
		c->setup = 0;
		w->setup_inflight--;
	}
	if (c->ssl != NULL)
		SSL_free(c->ssl);
	c->ssl = NULL;
	if (c->fd >= 0) {
		/* An abortive close: 10,000 client-side TIME_WAITs would eat the port range. */
		setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c->fd);
	}
	c->fd = -1;
	c->st = CS_DEAD;
}

static void
conn_fail(struct worker *w, struct conn *c, const char *why)
{
	if (c->st == CS_CONNECTING || c->st == CS_HANDSHAKE) {
		if (atomic_fetch_add(&w->r->sh->conn_failed, 1) < 5)
			say("connection %zu failed: %s", c->idx, why);
	} else if (!atomic_load(&w->r->sh->quit) && !(c->st == CS_IDLE && c->done)) {
		report_error(w->r, why, 0, NULL);
	}
	conn_close(w, c);
}

static int
conn_open(struct worker *w, struct conn *c)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
				 .data.ptr = c};
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return -errno;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->setup = 1;
	w->setup_inflight++;
	c->st = CS_CONNECTING;
	if (connect(c->fd, (struct sockaddr *)&w->r->addr[c->sv], sizeof(w->r->addr[0])) != 0 &&
	    errno != EINPROGRESS)
		return -errno;
	c->ssl = SSL_new(w->r->ctx);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1") != 1)
		return -ENOMEM;
	SSL_set_connect_state(c->ssl);
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
		return -errno;
	return 0;
}

/* After a complete response: hand it over, then send the next request or rest. */
static int
conn_answered(struct worker *w, struct conn *c)
{
	int status = 0, close_it = 0, k;
	size_t hlen = 0, blen = 0;

	k = http_parse(c->in, c->in_len, &status, &hlen, &blen, &close_it);
	if (k <= 0)
		return k;
	c->in[hlen + blen] = '\0';
	if (on_response(w, c, status, c->in + hlen) != 0 || close_it)
		return -1;
	k = next_request(w->r, c);
	if (k < 0)
		return -1;
	c->st = k ? CS_SEND : CS_IDLE;
	return 1;
}

/* One step of the state machine; 1 to continue, 0 when it must wait for the socket. */
static int
conn_step(struct worker *w, struct conn *c)
{
	int n = 0, e, soerr = 0;
	socklen_t sl = sizeof(soerr);

	switch (c->st) {
	case CS_CONNECTING:
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr != 0)
			return conn_fail(w, c, soerr ? strerror(soerr) : "connect"), 0;
		c->st = CS_HANDSHAKE;
		return 1;
	case CS_HANDSHAKE:
		n = SSL_connect(c->ssl);
		if (n == 1) {
			c->setup = 0;
			w->setup_inflight--;
			atomic_fetch_add(&w->r->sh->established, 1);
			n = next_request(w->r, c);
			if (n < 0)
				return conn_fail(w, c, "cannot build a request"), 0;
			c->st = n ? CS_SEND : CS_IDLE;
			return 1;
		}
		break;
	case CS_SEND:
		n = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
		if (n > 0) {
			c->out_off += (size_t)n;
			if (c->out_off == c->out_len)
				c->st = CS_RECV;
			return 1;
		}
		break;
	case CS_RECV:
	case CS_IDLE:
		n = SSL_read(c->ssl, c->in + c->in_len, (int)(IN_CAP - 1 - c->in_len));
		if (n > 0 && c->st == CS_IDLE)
			return conn_fail(w, c, "data on an idle connection"), 0;
		if (n > 0) {
			c->in_len += (size_t)n;
			if (conn_answered(w, c) < 0)
				return conn_fail(w, c, "bad or final response"), 0;
			return 1;
		}
		break;
	case CS_DEAD:
		return 0;
	}
	e = SSL_get_error(c->ssl, n);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return 0;
	ERR_clear_error();
	conn_fail(w, c, c->st == CS_HANDSHAKE ? "TLS handshake" : "connection closed");
	return 0;
}

/* Drives c until it waits for its socket; with edge-triggered epoll it must not stop early. */
static void
conn_drive(struct worker *w, struct conn *c)
{
	for (int i = 0; i < DRIVE_STEPS; i++)
		if (!conn_step(w, c))
			return;
	if (!c->queued) { /* still busy: continue on the next turn of the loop */
		c->queued = 1;
		w->again[w->cur][w->nagain[w->cur]++] = c;
	}
}

static void
open_more(struct worker *w)
{
	while (w->next_open < w->nconns && w->setup_inflight < SETUP_INFLIGHT &&
	       !atomic_load(&w->r->sh->quit)) {
		struct conn *c = &w->conns[w->next_open++];
		int rc = conn_open(w, c);

		if (rc != 0) {
			conn_fail(w, c, strerror(-rc));
			if (rc == -EMFILE || rc == -ENFILE)
				return;
		}
	}
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event ev[EV_BATCH];

	while (!atomic_load(&w->r->sh->quit) && now_s() < w->r->hard_end) {
		int prev = w->cur, n;

		open_more(w);
		w->cur ^= 1;
		w->nagain[w->cur] = 0;
		for (size_t i = 0; i < w->nagain[prev]; i++) {
			w->again[prev][i]->queued = 0;
			conn_drive(w, w->again[prev][i]);
		}
		n = epoll_wait(w->ep, ev, EV_BATCH, w->nagain[w->cur] ? 0 : 20);
		for (int i = 0; i < n; i++)
			conn_drive(w, ev[i].data.ptr);
	}
	for (size_t i = 0; i < w->nconns; i++)
		if (w->conns[i].st != CS_DEAD)
			conn_close(w, &w->conns[i]);
	return NULL;
}

/* The server agent (or throughput connection) i of n talks to: contiguous blocks. */
static unsigned
agent_server(const struct run *r, size_t i, size_t n)
{
	return r->nsrv > 1 ? (unsigned)(i * r->nsrv / n) : 0;
}

/* Splits connections lo..hi of n over the threads and starts them; 0 or -1. */
static int
workers_start(struct run *r, size_t n, size_t lo, size_t hi)
{
	size_t per = (hi - lo + r->o.threads - 1) / r->o.threads, from = lo;

	r->conns = calloc(n, sizeof(*r->conns)); /* untouched outside lo..hi: never paged in */
	if (r->conns == NULL)
		return -1;
	r->nconns = n;
	for (size_t i = lo; i < hi; i++) {
		r->conns[i].fd = -1;
		r->conns[i].idx = i;
		r->conns[i].sv = agent_server(r, i, n);
		r->conns[i].st = CS_DEAD;
	}
	for (unsigned t = 0; t < r->o.threads; t++, from += per) {
		struct worker *w = &r->w[t];

		w->r = r;
		w->conns = r->conns + MIN(from, hi);
		w->nconns = from >= hi ? 0 : MIN(per, hi - from);
		w->ep = epoll_create1(EPOLL_CLOEXEC);
		w->again[0] = calloc(w->nconns + 1, sizeof(struct conn *));
		w->again[1] = calloc(w->nconns + 1, sizeof(struct conn *));
		if (r->o.mode == M_THROUGHPUT)
			w->lat = malloc(LAT_CAP * sizeof(double));
		if (w->ep < 0 || !w->again[0] || !w->again[1] ||
		    pthread_create(&w->th, NULL, worker_main, w) != 0)
			return -1;
		r->nstarted++;
	}
	return 0;
}

static void workers_join(struct run *r);

/*
 * Parked mode with several servers: one process per server holds that server's agents (one
 * process cannot have 40,000 descriptors under a 20,000 hard limit, which only
 * CAP_SYS_RESOURCE could raise). They were forked after the enrollment, so they have the
 * device keys; they report through r->sh and r->recv_ns (shared memory) and end when
 * r->sh->quit is set. 0, or -1 (those started are stopped by agents_stop).
 */
static int
agents_spawn(struct run *r, size_t n)
{
	fflush(stdout);
	fflush(stderr);
	for (unsigned k = 0; k < r->nsrv; k++) {
		pid_t pid = fork();

		if (pid < 0)
			return -1;
		if (pid == 0) {
			r->nprocs = 0;
			r->o.threads = 1;
			if (workers_start(r, n, n * k / r->nsrv, n * (k + 1) / r->nsrv) == 0)
				while (!atomic_load(&r->sh->quit) && now_s() < r->hard_end)
					usleep(50 * 1000);
			workers_join(r);
			_exit(0);
		}
		r->procs[r->nprocs++] = pid;
	}
	return 0;
}

/* Ends the agent processes: quit, then a bounded wait (10 s) and SIGKILL for a stuck one. */
static void
agents_stop(struct run *r)
{
	atomic_store(&r->sh->quit, 1);
	for (unsigned k = 0; k < r->nprocs; k++) {
		int st;

		for (int i = 0; i < 200 && waitpid(r->procs[k], &st, WNOHANG) == 0; i++)
			usleep(50 * 1000);
		if (kill(r->procs[k], 0) == 0) {
			say("agent process %d did not end; killed", (int)r->procs[k]);
			kill(r->procs[k], SIGKILL);
			waitpid(r->procs[k], &st, 0);
		}
	}
	r->nprocs = 0;
}

static void
workers_join(struct run *r)
{
	atomic_store(&r->sh->quit, 1);
	agents_stop(r);
	for (unsigned t = 0; t < r->o.threads; t++) {
		if (r->w[t].r == NULL)
			continue; /* never set up */
		if (t < r->nstarted)
			pthread_join(r->w[t].th, NULL);
		if (r->w[t].ep >= 0)
			close(r->w[t].ep);
		free(r->w[t].again[0]);
		free(r->w[t].again[1]);
	}
}

/* ---- enrollment and drain, over libcurl ---- */

/* Completes whatever the device has pending so that its next check-in can park. */
static int
drain_device(struct device_sim *d, struct client *c)
{
	static const char body[] =
		"{\"wait\":0,\"state\":{\"policy_name\":\"\",\"policy_version\":0}}";
	struct resp rs;

	for (int round = 0; round < 4; round++) {
		json_t *j, *cmd;
		size_t k;

		if (dev_req(d, c, "POST", CHECKIN_PATH, body, 0, &rs) != 0)
			return -1;
		if (rs.status == 204) {
			resp_free(&rs);
			return 0;
		}
		j = rs.status == 200 ? resp_json(&rs) : NULL;
		resp_free(&rs);
		if (j == NULL)
			return -1;
		json_array_foreach(json_object_get(j, "commands"), k, cmd)
		{
			char path[160];

			snprintf(path, sizeof(path), "/device/v1/commands/%s/result",
				 json_string_value(json_object_get(cmd, "id")));
			if (dev_req(d, c, "POST", path, "{\"status\":\"completed\"}", 0, &rs) == 0)
				resp_free(&rs);
		}
		json_decref(j);
	}
	return -1;
}

struct setup_arg {
	struct run *r;
	size_t from, to;
	unsigned sv; /* the server it enrolls through */
	pthread_t th;
	int failed;
};

static void *
setup_main(void *p)
{
	struct setup_arg *a = p;
	struct client *c = client_new(&a->r->srv[a->sv], NULL);
	struct resp rs;

	for (size_t i = a->from; c != NULL && i < a->to && now_s() < a->r->hard_end; i++) {
		struct device_sim *d = &a->r->devs[i];

		if (dev_init(d) != 0 || dev_enroll(d, c, a->r->etoken, &rs) != 0) {
			a->failed = 1;
			break;
		}
		if (rs.status != 201) {
			say("enroll: HTTP %ld %.200s", rs.status, rs.body ? rs.body : "");
			resp_free(&rs);
			a->failed = 1;
			break;
		}
		resp_free(&rs);
		if (drain_device(d, c) != 0) {
			say("device %s could not be drained", d->id);
			a->failed = 1;
			break;
		}
		atomic_fetch_add(&a->r->enrolled, 1);
	}
	client_free(c);
	if (c == NULL)
		a->failed = 1;
	return NULL;
}

/* Enrolls and drains n devices over SETUP_THREADS connections; 0 or -1. */
static int
setup_devices(struct run *r, size_t n)
{
	struct setup_arg a[SETUP_THREADS];
	int nt = r->nsrv > 1 ? (int)MIN(2 * r->nsrv, SETUP_THREADS) : 4;
	struct client *admin = client_new(&r->srv[0], r->srv[0].admin);
	double t0 = now_s(), last = t0;
	int failed = 0;

	r->devs = calloc(n, sizeof(*r->devs));
	if (admin == NULL || r->devs == NULL ||
	    admin_etoken(admin, "bench@example.com", (int)n, r->etoken, sizeof(r->etoken)) != 0) {
		say("cannot create an enrollment token");
		client_free(admin);
		return -1;
	}
	client_free(admin);
	for (int t = 0; t < nt; t++) {
		a[t] = (struct setup_arg){.r = r,
					  .from = n * (size_t)t / (size_t)nt,
					  .to = n * (size_t)(t + 1) / (size_t)nt,
					  .sv = t % r->nsrv};
		if (pthread_create(&a[t].th, NULL, setup_main, &a[t]) != 0)
			return -1;
	}
	while ((size_t)atomic_load(&r->enrolled) < n && now_s() < r->hard_end) {
		int running = 0;

		usleep(100 * 1000);
		for (int t = 0; t < nt; t++)
			running += !a[t].failed;
		if (running < nt)
			break;
		if (now_s() - last >= 5) {
			last = now_s();
			say("enrolled and drained %ld of %zu devices", atomic_load(&r->enrolled),
			    n);
		}
	}
	for (int t = 0; t < nt; t++) {
		pthread_join(a[t].th, NULL);
		failed |= a[t].failed;
	}
	say("enrolled and drained %ld devices in %.1f s (%.0f/s)", atomic_load(&r->enrolled),
	    now_s() - t0, (double)atomic_load(&r->enrolled) / (now_s() - t0));
	return failed || (size_t)atomic_load(&r->enrolled) != n ? -1 : 0;
}

/* ---- throughput ---- */

static int
run_throughput(struct run *r)
{
	size_t n = r->o.conns, nlat = 0, k = 0;
	double t0, t1, cpu0, cpu1, me0, me1, pg0 = 0, pg1 = 0, *lat;
	long req;

	if (r->o.target == T_CLEAVE && setup_devices(r, n) != 0)
		return -1;
	if (workers_start(r, n, 0, n) != 0) {
		workers_join(r);
		return -1;
	}
	for (int i = 0; i < 3000 && (size_t)atomic_load(&r->sh->established) < n; i++)
		usleep(10 * 1000);
	if ((size_t)atomic_load(&r->sh->established) < n) {
		workers_join(r);
		say("only %ld of %zu connections came up", atomic_load(&r->sh->established), n);
		return -1;
	}
	usleep((useconds_t)(r->o.warmup * 1e6));
	cpu0 = proc_cpu_s(r->o.pid[0]);
	if (r->o.pg_pid > 0)
		pg0 = pg_cpu_s(r->o.pg_pid);
	me0 = self_cpu_s();
	t0 = now_s();
	atomic_store(&r->record, 1);
	usleep((useconds_t)(r->o.seconds * 1e6));
	atomic_store(&r->record, 0);
	t1 = now_s();
	cpu1 = proc_cpu_s(r->o.pid[0]);
	if (r->o.pg_pid > 0)
		pg1 = pg_cpu_s(r->o.pg_pid);
	me1 = self_cpu_s();
	req = atomic_load(&r->sh->answered);
	atomic_store(&r->stop, 1);
	workers_join(r);
	for (unsigned t = 0; t < r->o.threads; t++)
		nlat += r->w[t].nlat;
	lat = malloc((nlat + 1) * sizeof(double));
	for (unsigned t = 0; t < r->o.threads; t++) {
		if (lat != NULL && r->w[t].nlat > 0)
			memcpy(lat + k, r->w[t].lat, r->w[t].nlat * sizeof(double));
		k += r->w[t].nlat;
		free(r->w[t].lat);
	}
	if (lat != NULL)
		sort_ms(lat, nlat);
	printf("RESULT mode=throughput target=%s conns=%zu threads=%u seconds=%.2f requests=%ld "
	       "rps=%.0f server_cpu_s=%.2f per_cpu_s=%.0f client_cpu_s=%.2f lat_p50_ms=%.3f "
	       "lat_p99_ms=%.3f pg_cpu_s=%.2f per_server_pg_cpu_s=%.0f errors=%ld unexpected=%ld\n",
	       r->o.target == T_CLEAVE ? "cleave" : "hello", n, r->o.threads, t1 - t0, req,
	       (double)req / (t1 - t0), cpu1 - cpu0, cpu1 > cpu0 ? (double)req / (cpu1 - cpu0) : 0,
	       me1 - me0, lat ? pct(lat, nlat, 0.50) : 0, lat ? pct(lat, nlat, 0.99) : 0, pg1 - pg0,
	       cpu1 - cpu0 + pg1 - pg0 > 0 ? (double)req / (cpu1 - cpu0 + pg1 - pg0) : 0,
	       atomic_load(&r->sh->errors), atomic_load(&r->sh->unexpected));
	free(lat);
	return atomic_load(&r->sh->errors) > 0 || cpu0 < 0 || cpu1 < 0 || pg0 < 0 || pg1 < 0 ? -1
											     : 0;
}

/* ---- parked ---- */

/* How many polls the server holds: cleave's /metrics gauge or hello's /stats. -1 on error. */
static long
server_parked(struct client *c, enum target t)
{
	const char *key = t == T_CLEAVE ? "\ncleave_parked_connections " : "\"parked\":";
	struct resp rs;
	long n = -1;
	char *p;

	if (client_req(c, "GET", t == T_CLEAVE ? "/metrics" : "/stats", NULL, NULL, &rs) == 0 &&
	    rs.status == 200 && rs.body != NULL && (p = strstr(rs.body, key)) != NULL)
		n = strtol(p + strlen(key), NULL, 10);
	resp_free(&rs);
	return n;
}

/* Waits (bounded) until agent i's parked poll was answered; its delay from t0 in ms, or -1. */
static double
await_answer(struct run *r, size_t i, int64_t t0, double limit_s)
{
	for (int k = 0; k < (int)(limit_s * 5000) && now_s() < r->hard_end; k++) {
		int64_t t = atomic_load(&r->recv_ns[i]);

		if (t != 0)
			return (double)(t - t0) / 1e6;
		usleep(200);
	}
	return -1;
}

/* A RESULT line assembled in pieces, so that nothing printed meanwhile splits it. */
struct line {
	char buf[2048];
	size_t n;
};

static void add(struct line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
add(struct line *l, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(l->buf + l->n, sizeof(l->buf) - l->n, fmt, ap);
	va_end(ap);
	if (k > 0)
		l->n = MIN(l->n + (size_t)k, sizeof(l->buf) - 1);
}

static void
add_delays(struct line *l, const char *name, double *v, size_t n)
{
	sort_ms(v, n);
	add(l, " %s_n=%zu %s_p50_ms=%.1f %s_p99_ms=%.1f %s_max_ms=%.1f", name, n, name,
	    pct(v, n, 0.50), name, pct(v, n, 0.99), name, n ? v[n - 1] : 0.0);
}

/*
 * The admin connection a wipe of agent i (the s-th of a sample) is POSTed to: its own server's
 * when there is one server, else one of the others, in turn, so every pair is exercised.
 */
static struct client *
wipe_via(struct run *r, struct client **admin, size_t i, size_t n, size_t s)
{
	unsigned sv = agent_server(r, i, n);

	return r->nsrv > 1 ? admin[(sv + 1 + s % (r->nsrv - 1)) % r->nsrv] : admin[0];
}

/*
 * Wipes K agents spread over all N, one at a time, each after the previous one arrived; with
 * several servers each POST goes to another server than the one the agent is parked on.
 */
static int
wipe_sample(struct run *r, struct client **admin, size_t n, struct line *l)
{
	size_t k = MIN(r->o.sample, n), got = 0, fails = 0;
	double *delay = calloc(k + 1, sizeof(double)), *post = calloc(k + 1, sizeof(double));

	for (size_t s = 0; delay && post && s < k && now_s() < r->hard_end; s++) {
		size_t i = s * n / k;
		int64_t t0 = mono_ns();
		double d;

		r->post_ns[i] = t0;
		if (admin_command(wipe_via(r, admin, i, n, s), r->devs[i].id, "wipe", NULL, 0) !=
		    202) {
			fails++;
			continue;
		}
		post[got] = (double)(mono_ns() - t0) / 1e6;
		d = await_answer(r, i, t0, 5.0);
		if (d < 0) {
			fails++;
			continue;
		}
		delay[got++] = d;
	}
	add_delays(l, "wipe", delay, got); /* sorts delay */
	sort_ms(post, got);
	add(l, " wipe_fail=%zu wipe_cross_server=%d post_p50_ms=%.1f post_p99_ms=%.1f", fails,
	    r->nsrv > 1, pct(post, got, 0.5), pct(post, got, 0.99));
	say("wipe sample: %zu delivered, %zu failed, p50 %.1f ms, p99 %.1f ms", got, fails,
	    pct(delay, got, 0.5), pct(delay, got, 0.99));
	free(delay);
	free(post);
	return got == k ? 0 : -1;
}

struct burst_arg {
	struct run *r;
	const size_t *idx;
	size_t n;
	size_t fails;
	unsigned sv; /* the server its POSTs go to */
	pthread_t th;
};

static void *
burst_main(void *p)
{
	struct burst_arg *a = p;
	struct client *c = client_new(&a->r->srv[a->sv], a->r->srv[a->sv].admin);

	for (size_t j = 0; j < a->n; j++) {
		size_t i = a->idx[j];

		a->r->post_ns[i] = mono_ns();
		if (c == NULL || admin_command(c, a->r->devs[i].id, "wipe", NULL, 0) != 202)
			a->fails++;
	}
	client_free(c);
	return NULL;
}

/* Picks b agents not wiped yet, spread over all n; returns how many were picked. */
static size_t
pick_unwiped(struct run *r, size_t n, size_t b, size_t *idx)
{
	size_t m = 0;

	for (size_t k = 0; k < b; k++) {
		size_t i = (k * n / b + n / (2 * b)) % n;

		for (size_t tries = 0; tries < n && r->post_ns[i] != 0; tries++)
			i = (i + 1) % n;
		if (r->post_ns[i] != 0)
			break;
		r->post_ns[i] = -1; /* reserved; burst_main writes the real time */
		idx[m++] = i;
	}
	return m;
}

/* Wipes B agents at once over BURST_THREADS admin connections: the fan-out case. */
static int
wipe_burst(struct run *r, size_t n, struct line *l)
{
	struct burst_arg a[BURST_THREADS];
	size_t *idx = calloc(r->o.burst + 1, sizeof(size_t)), b, got = 0, fails = 0;
	double *delay = calloc(r->o.burst + 1, sizeof(double)), posted;
	int64_t t0, last = 0;

	if (idx == NULL || delay == NULL)
		return -1;
	b = pick_unwiped(r, n, MIN(r->o.burst, n), idx);
	t0 = mono_ns();
	for (int t = 0; t < BURST_THREADS; t++) {
		a[t] = (struct burst_arg){.r = r,
					  .idx = idx + b * t / BURST_THREADS,
					  .n = b * (t + 1) / BURST_THREADS - b * t / BURST_THREADS,
					  .sv = t % r->nsrv};
		pthread_create(&a[t].th, NULL, burst_main, &a[t]);
	}
	for (int t = 0; t < BURST_THREADS; t++) {
		pthread_join(a[t].th, NULL);
		fails += a[t].fails;
	}
	posted = (double)(mono_ns() - t0) / 1e6;
	for (size_t j = 0; j < b; j++) {
		double d = await_answer(r, idx[j], r->post_ns[idx[j]], 5.0);
		int64_t t = atomic_load(&r->recv_ns[idx[j]]);

		if (d >= 0)
			delay[got++] = d;
		last = MAX(last, t);
	}
	add_delays(l, "burst", delay, got); /* sorts delay */
	add(l, " burst_fail=%zu burst_posts_ms=%.0f burst_span_ms=%.0f", b - got + fails, posted,
	    (double)(last - t0) / 1e6);
	say("burst of %zu wipes: posted in %.0f ms, last answer %.0f ms after the first POST", b,
	    posted, (double)(last - t0) / 1e6);
	free(idx);
	free(delay);
	return got == b ? 0 : -1;
}

/* hello: resumes every parked poll at once and times each answer from the /release. */
static int
hello_release(struct run *r, struct client *c, size_t n, struct line *l)
{
	double *delay = calloc(n + 1, sizeof(double));
	size_t got = 0;
	int64_t t0 = mono_ns();
	struct resp rs;

	if (delay == NULL || client_req(c, "GET", "/release", NULL, NULL, &rs) != 0) {
		free(delay);
		return -1;
	}
	resp_free(&rs);
	for (int k = 0; k < 30000 && (size_t)atomic_load(&r->sh->answered) < n; k++)
		usleep(1000);
	for (size_t i = 0; i < n; i++) {
		int64_t t = atomic_load(&r->recv_ns[i]);

		if (t != 0)
			delay[got++] = (double)(t - t0) / 1e6;
	}
	add_delays(l, "fanout", delay, got); /* sorts delay */
	say("release of all: %zu answered, p50 %.1f ms, max %.1f ms", got, pct(delay, got, 0.5),
	    got ? delay[got - 1] : 0.0);
	free(delay);
	return got == n ? 0 : -1;
}

/* Polls parked on every server (into each[]), summed; -1 when a server did not answer. */
static long
all_parked(struct run *r, struct client **adm, long *each)
{
	long sum = 0;

	for (unsigned k = 0; k < r->nsrv; k++) {
		each[k] = server_parked(adm[k], r->o.target);
		if (each[k] < 0)
			return -1;
		sum += each[k];
	}
	return sum;
}

/* The per-server figures of a parked run: parked, RSS after, KiB per agent, "/"-separated. */
static void
add_each(struct run *r, struct line *l, size_t n, const long *parked, const long *rss0,
	 const long *rss1)
{
	add(l, " parked_each=");
	for (unsigned k = 0; k < r->nsrv; k++)
		add(l, "%s%ld", k ? "/" : "", parked[k]);
	add(l, " rss_parked_each_kib=");
	for (unsigned k = 0; k < r->nsrv; k++)
		add(l, "%s%ld", k ? "/" : "", rss1[k]);
	add(l, " kib_per_agent_each=");
	for (unsigned k = 0; k < r->nsrv; k++) {
		size_t mine = n * (k + 1) / r->nsrv - n * k / r->nsrv; /* agent_server's blocks */

		add(l, "%s%.2f", k ? "/" : "", (double)(rss1[k] - rss0[k]) / (double)MAX(mine, 1));
	}
}

/* Attaches n agents, waits until the servers hold all their polls, reads their memory. */
static int
attach_all(struct run *r, struct client **adm, size_t n, struct line *l)
{
	long rss0[MAX_SERVERS], rss1[MAX_SERVERS], each[MAX_SERVERS] = {0}, r0 = 0, r1 = 0;
	long slab0, slab1, parked = 0;
	double cpu0, cpu1, t0 = now_s(), t_up;

	for (unsigned k = 0; k < r->nsrv; k++)
		r0 += (rss0[k] = server_rss_kib(r->o.pid[k]));
	slab0 = proc_kib("/proc/meminfo", "Slab:");
	cpu0 = servers_cpu_s(&r->o);
	if ((r->nsrv > 1 ? agents_spawn(r, n) : workers_start(r, n, 0, n)) != 0)
		return -1; /* run_parked joins */
	while ((size_t)(atomic_load(&r->sh->established) + atomic_load(&r->sh->conn_failed)) < n &&
	       now_s() < r->hard_end)
		usleep(50 * 1000);
	t_up = now_s() - t0;
	say("%ld connections up in %.1f s, %ld failed", atomic_load(&r->sh->established), t_up,
	    atomic_load(&r->sh->conn_failed));
	for (int k = 0; k < 1200 && now_s() < r->hard_end; k++) {
		parked = all_parked(r, adm, each);
		if (parked >= (long)n)
			break;
		usleep(100 * 1000);
	}
	cpu1 = servers_cpu_s(&r->o);
	t_up = now_s() - t0;
	sleep(2);
	for (unsigned k = 0; k < r->nsrv; k++)
		r1 += (rss1[k] = server_rss_kib(r->o.pid[k]));
	slab1 = proc_kib("/proc/meminfo", "Slab:");
	say("%ld parked; servers' RSS %ld -> %ld KiB", parked, r0, r1);
	add(l,
	    "RESULT mode=parked target=%s servers=%u agents=%zu established=%ld parked=%ld "
	    "attach_s=%.1f attach_per_s=%.0f attach_per_cpu_s=%.0f rss_before_kib=%ld "
	    "rss_parked_kib=%ld kib_per_agent=%.2f slab_kib_per_conn=%.2f",
	    r->o.target == T_CLEAVE ? "cleave" : "hello", r->nsrv, n,
	    atomic_load(&r->sh->established), parked, t_up, (double)n / t_up,
	    cpu1 > cpu0 ? (double)n / (cpu1 - cpu0) : 0, r0, r1, (double)(r1 - r0) / (double)n,
	    (double)(slab1 - slab0) / (double)n);
	if (r->nsrv > 1)
		add_each(r, l, n, each, rss0, rss1);
	return parked >= (long)n ? 0 : -1;
}

/* Zeroed memory that forked processes share; NULL on failure. Never freed: the run is short. */
static void *
shared_alloc(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static int
run_parked(struct run *r)
{
	size_t n = r->o.agents;
	struct client *adm[MAX_SERVERS] = {NULL};
	struct line l = {.n = 0};
	long each[MAX_SERVERS];
	int rc = 0;

	r->recv_ns = shared_alloc(n * sizeof(*r->recv_ns));
	r->post_ns = calloc(n, sizeof(*r->post_ns));
	if (r->recv_ns == NULL || r->post_ns == NULL)
		return -1;
	if (r->o.target == T_CLEAVE && setup_devices(r, n) != 0)
		return -1;
	for (unsigned k = 0; k < r->nsrv; k++)
		if ((adm[k] = client_new(&r->srv[k],
					 r->o.target == T_CLEAVE ? r->srv[k].admin : NULL)) == NULL)
			rc = -1;
	if (rc != 0 || all_parked(r, adm, each) < 0) {
		rc = -1;
		goto out;
	}
	sleep(1); /* let the enrollment connections close */
	rc = attach_all(r, adm, n, &l);
	if (rc == 0 && r->o.target == T_CLEAVE) {
		rc = wipe_sample(r, adm, n, &l);
		if (r->o.burst > 0 && wipe_burst(r, n, &l) != 0)
			rc = -1;
	} else if (rc == 0) {
		rc = hello_release(r, adm[0], n, &l);
	}
	add(&l, " repolls=%ld errors=%ld unexpected=%ld", atomic_load(&r->sh->repolls),
	    atomic_load(&r->sh->errors), atomic_load(&r->sh->unexpected));
	printf("%s\n", l.buf);
	fflush(stdout);
	workers_join(r);
out:
	for (unsigned k = 0; k < r->nsrv; k++)
		client_free(adm[k]);
	return rc == 0 ? 0 : -1;
}

/* ---- command line ---- */

static void
usage(void)
{
	fprintf(stderr,
		"usage: loadgen throughput|parked --target cleave|hello --url "
		"https://127.0.0.1:PORT\n"
		"               --cacert FILE --pid SERVER_PID [--admin-token-file FILE]\n"
		"  throughput: [--conns 64] [--threads 2] [--seconds 10] [--warmup 2]\n"
		"              [--pg-pid POSTMASTER_PID] (PostgreSQL's CPU is reported too)\n"
		"  parked:     [--agents 10000] [--threads 2] [--wait 55] [--sample 200]\n"
		"              [--burst 0]; --url, --cacert and --pid may list up to 8 servers\n"
		"              (comma-separated) of one database: the agents are split\n"
		"              over them, each wipe is POSTed to another server\n"
		"  both:       [--deadline 480] (seconds; every wait is bounded by it)\n");
}

static int
num(const char *v, double lo, double hi, double *out)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* "PID[,PID...]" into o->pid; 0 or -1. */
static int
parse_pids(struct opts *o, const char *v)
{
	const char *p = v;
	char *end;

	for (o->npid = 0; *p != '\0' && o->npid < MAX_SERVERS; p = *end ? end + 1 : end) {
		long x = strtol(p, &end, 10);

		if (end == p || x <= 0 || (*end != ',' && *end != '\0'))
			return -1;
		o->pid[o->npid++] = (pid_t)x;
	}
	return *p == '\0' && o->npid > 0 ? 0 : -1;
}

static int
set_opt(struct opts *o, const char *a, const char *v)
{
	double x = 0;
	int bad = 0;

	if (strcmp(a, "--target") == 0) {
		o->target = strcmp(v, "hello") == 0 ? T_HELLO : T_CLEAVE;
		return strcmp(v, "hello") != 0 && strcmp(v, "cleave") != 0;
	}
	if (strcmp(a, "--url") == 0 || strcmp(a, "--cacert") == 0 ||
	    strcmp(a, "--admin-token-file") == 0) {
		*(a[2] == 'u' ? &o->url : a[2] == 'c' ? &o->cacert : &o->admin_file) = v;
		return 0;
	}
	if (strcmp(a, "--seconds") == 0 || strcmp(a, "--warmup") == 0 ||
	    strcmp(a, "--deadline") == 0) {
		bad = num(v, 0, 3600, &x);
		*(a[2] == 's' ? &o->seconds : a[2] == 'w' ? &o->warmup : &o->deadline) = x;
		return bad;
	}
	if (strcmp(a, "--pid") == 0)
		return parse_pids(o, v);
	bad = num(v, 0, 1e7, &x);
	if (strcmp(a, "--pg-pid") == 0)
		o->pg_pid = (pid_t)x;
	else if (strcmp(a, "--conns") == 0 && x >= 1 && x <= MAX_AGENTS)
		o->conns = (unsigned)x;
	else if (strcmp(a, "--threads") == 0 && x >= 1 && x <= MAX_THREADS)
		o->threads = (unsigned)x;
	else if (strcmp(a, "--agents") == 0 && x >= 1 && x <= MAX_AGENTS)
		o->agents = (unsigned)x;
	else if (strcmp(a, "--sample") == 0)
		o->sample = (unsigned)x;
	else if (strcmp(a, "--burst") == 0)
		o->burst = (unsigned)x;
	else if (strcmp(a, "--wait") == 0 && x >= 1 && x <= 55)
		o->wait_s = (unsigned)x;
	else
		bad = 1;
	return bad;
}

static int
parse_args(int argc, char **argv, struct opts *o)
{
	if (argc < 2)
		return -1;
	if (strcmp(argv[1], "throughput") == 0)
		o->mode = M_THROUGHPUT;
	else if (strcmp(argv[1], "parked") == 0)
		o->mode = M_PARKED;
	else
		return -1;
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 >= argc || set_opt(o, argv[i], argv[i + 1]) != 0) {
			fprintf(stderr, "loadgen: bad or unknown option %s\n", argv[i]);
			return -1;
		}
	}
	if (o->url == NULL || o->cacert == NULL || o->npid == 0 ||
	    (o->target == T_CLEAVE && o->admin_file == NULL))
		return -1;
	return 0;
}

/* The first line of path (the admin token) into out; 0 or -1. */
static int
read_admin(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");

	if (f == NULL || fgets(out, (int)cap, f) == NULL) {
		if (f != NULL)
			fclose(f);
		return say("cannot read %s", path), -1;
	}
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

/* Item k of a comma-separated list into out; 0, or -1 when there is no such item. */
static int
list_item(const char *list, unsigned k, char *out, size_t cap)
{
	const char *p = list, *e;

	for (unsigned i = 0; i < k; i++) {
		if ((p = strchr(p, ',')) == NULL)
			return -1;
		p++;
	}
	e = strchr(p, ',');
	if (e == NULL)
		e = p + strlen(p);
	if (e == p || (size_t)(e - p) >= cap)
		return -1;
	memcpy(out, p, (size_t)(e - p));
	out[e - p] = '\0';
	return 0;
}

/* Server k's URL (127.0.0.1 only), address and trust anchor (one for all when one is given). */
static int
server_init(struct run *r, unsigned k)
{
	static const char prefix[] = "https://127.0.0.1:";
	struct srv *s = &r->srv[k];
	char *end;
	unsigned long port;

	if (list_item(r->o.url, k, s->url, sizeof(s->url)) != 0 ||
	    strncmp(s->url, prefix, sizeof(prefix) - 1) != 0)
		return say("server %u must be on https://127.0.0.1", k), -1;
	port = strtoul(s->url + sizeof(prefix) - 1, &end, 10);
	if (port == 0 || port > 65535 || (*end != '\0' && *end != '/'))
		return -1;
	r->addr[k].sin_family = AF_INET;
	r->addr[k].sin_port = htons((uint16_t)port);
	r->addr[k].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	snprintf(r->host[k], sizeof(r->host[k]), "127.0.0.1:%lu", port);
	if (list_item(r->o.cacert, k, s->cacert, sizeof(s->cacert)) != 0 &&
	    list_item(r->o.cacert, 0, s->cacert, sizeof(s->cacert)) != 0)
		return -1;
	if (k > 0)
		str_copy(s->admin, sizeof(s->admin), r->srv[0].admin); /* one deployment */
	else if (r->o.admin_file != NULL)
		return read_admin(r->o.admin_file, s->admin, sizeof(s->admin));
	return 0;
}

/* The fd limit for n connections and a margin: the soft one raised, the hard one too as root. */
static void
raise_fd_limit(size_t n)
{
	struct rlimit rl;
	rlim_t need = (rlim_t)n + 256;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return;
	if (rl.rlim_max < need) {
		struct rlimit up = {need, need};

		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			return;
		say("the fd hard limit is %llu; %llu needed (raising it needs root)",
		    (unsigned long long)rl.rlim_max, (unsigned long long)need);
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
}

/* The servers' URLs, trust anchors and admin token for both client kinds. */
static int
run_init(struct run *r)
{
	for (r->nsrv = 0; r->nsrv < MAX_SERVERS; r->nsrv++) {
		const char *p = r->o.url;

		for (unsigned i = 0; i < r->nsrv && p != NULL; i++)
			p = (p = strchr(p, ',')) ? p + 1 : NULL;
		if (p == NULL || *p == '\0')
			break;
	}
	if (r->nsrv == 0 || r->nsrv != r->o.npid || (r->o.mode == M_THROUGHPUT && r->nsrv != 1))
		return say("give one --pid per --url (throughput: one server)"), -1;
	r->ctx = SSL_CTX_new(TLS_client_method());
	if (r->ctx == NULL)
		return -1;
	for (unsigned k = 0; k < r->nsrv; k++) {
		if (server_init(r, k) != 0)
			return -1;
		if (SSL_CTX_load_verify_locations(r->ctx, r->srv[k].cacert, NULL) != 1)
			return say("cannot load %s as a trust anchor", r->srv[k].cacert), -1;
	}
	/* parked with several servers: one agent process per server holds its share */
	raise_fd_limit(r->o.mode == M_PARKED ? r->o.agents / r->nsrv + 1 : r->o.conns);
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_ctrl(r->ctx, SSL_CTRL_SET_SESS_CACHE_MODE, SSL_SESS_CACHE_OFF, NULL);
	SSL_CTX_ctrl(r->ctx, SSL_CTRL_MODE,
		     SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER,
		     NULL);
	r->hard_end = now_s() + r->o.deadline;
	return 0;
}

int
main(int argc, char **argv)
{
	static struct run run;
	struct run *r = &run;
	size_t ndev;
	int rc;

	r->o = (struct opts){.threads = 2,
			     .conns = 64,
			     .agents = 10000,
			     .sample = 200,
			     .wait_s = 55,
			     .seconds = 10,
			     .warmup = 2,
			     .deadline = 480};
	if (parse_args(argc, argv, &r->o) != 0) {
		usage();
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	r->sh = shared_alloc(sizeof(*r->sh));
	if (r->sh == NULL)
		return 1;
	rc = run_init(r);
	if (rc == 0)
		rc = r->o.mode == M_THROUGHPUT ? run_throughput(r) : run_parked(r);
	ndev = r->o.mode == M_THROUGHPUT ? r->o.conns : r->o.agents;
	for (size_t i = 0; r->devs != NULL && i < ndev; i++)
		dev_fini(&r->devs[i]);
	free(r->devs);
	free(r->conns);
	free(r->post_ns);
	if (r->ctx != NULL)
		SSL_CTX_free(r->ctx);
	curl_global_cleanup();
	return rc == 0 ? 0 : 1;
}

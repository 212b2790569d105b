/*
 * hello: the in-run reference for the cleave-server benchmarks. A libmicrohttpd HTTPS daemon
 * configured as server/http/httpd.c configures cleave-server's (GnuTLS, epoll thread pool,
 * suspend/resume, the same connection limit, per-connection pool, timeouts and certificate) that
 * answers every request with a tiny JSON body. GET /park is held like a device's long-poll until
 * GET /release, a deadline (--max-wait) or shutdown; GET /stats says how many are parked. It has
 * no API, no signatures and no database on purpose: it is the floor cleave-server is measured
 * against, in the same run, on the same machine.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

#define FILE_CAP   (64 * 1024)
#define CONN_WANT  20000u /* what cleave-server asks for when max_connections is unset */
#define FD_RESERVE 64u    /* what cleave-server keeps back for its own files */

static const char HELLO_BODY[] = "{\"status\":\"ok\"}";
static const char WAKE_BODY[] = "{\"commands\":[{\"type\":\"wipe\"}]}";

/* One parked GET /park; made on the request's first callback, freed when it completes. */
struct waiter {
	struct MHD_Connection *con;
	int64_t deadline_ms;
	int parked;   /* in the list, connection suspended */
	int resumed;  /* taken out of the list and resumed: answer on the next callback */
	int released; /* resumed by /release (200) rather than by the deadline (204) */
	struct waiter *prev, *next;
};

/* The parked list is in deadline order because every park uses the same wait. */
struct hub {
	pthread_mutex_t lock;
	struct waiter *head, *tail;
	size_t parked;
	int stopping;
	atomic_long inflight; /* resumed but not yet answered */
};

struct hello {
	struct MHD_Daemon *d;
	struct hub hub;
	unsigned max_wait_s;
	pthread_t timer;
	atomic_int timer_stop;
};

/* A request that is not a park shares this marker instead of allocating state. */
static int plain_marker;

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unlinks w and resumes its connection; hub lock held. */
static void
hub_take(struct hub *h, struct waiter *w, int released)
{
	if (w->prev)
		w->prev->next = w->next;
	else
		h->head = w->next;
	if (w->next)
		w->next->prev = w->prev;
	else
		h->tail = w->prev;
	w->prev = w->next = NULL;
	w->parked = 0;
	w->resumed = 1;
	w->released = released;
	h->parked--;
	atomic_fetch_add(&h->inflight, 1);
	MHD_resume_connection(w->con);
}

/* Parks w unless the hub is stopping; returns 1 when parked. */
static int
hub_park(struct hub *h, struct waiter *w)
{
	pthread_mutex_lock(&h->lock);
	if (h->stopping) {
		pthread_mutex_unlock(&h->lock);
		return 0;
	}
	MHD_suspend_connection(w->con);
	w->prev = h->tail;
	w->next = NULL;
	if (h->tail)
		h->tail->next = w;
	else
		h->head = w;
	h->tail = w;
	w->parked = 1;
	h->parked++;
	pthread_mutex_unlock(&h->lock);
	return 1;
}

/* Resumes every waiter (all == 1) or those due by now_ms; returns how many. */
static size_t
hub_release(struct hub *h, int all, int64_t due_ms, int released)
{
	size_t n = 0;

	pthread_mutex_lock(&h->lock);
	while (h->head != NULL && (all || h->head->deadline_ms <= due_ms)) {
		hub_take(h, h->head, released);
		n++;
	}
	pthread_mutex_unlock(&h->lock);
	return n;
}

static size_t
hub_parked(struct hub *h)
{
	size_t n;

	pthread_mutex_lock(&h->lock);
	n = h->parked;
	pthread_mutex_unlock(&h->lock);
	return n;
}

static enum MHD_Result
reply(struct MHD_Connection *con, unsigned status, const char *body, size_t len)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	if (len > 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	ret = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result
on_park(struct hello *app, struct MHD_Connection *con, struct waiter *w)
{
	if (w->resumed) {
		atomic_fetch_sub(&app->hub.inflight, 1);
		if (w->released)
			return reply(con, 200, WAKE_BODY, sizeof(WAKE_BODY) - 1);
		return reply(con, 204, "", 0);
	}
	w->con = con;
	w->deadline_ms = now_ms() + (int64_t)app->max_wait_s * 1000;
	if (hub_park(&app->hub, w))
		return MHD_YES;
	return reply(con, 204, "", 0);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct hello *app = cls;
	char buf[64];
	int n;

	(void)method;
	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		/* First callback: headers only. Keep per-request state as cleave-server does. */
		if (strcmp(url, "/park") == 0) {
			struct waiter *w = calloc(1, sizeof(*w));

			if (w == NULL)
				return MHD_NO;
			*con_cls = w;
		} else {
			*con_cls = &plain_marker;
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		*upload_size = 0; /* bodies are read and dropped */
		return MHD_YES;
	}
	if (*con_cls != &plain_marker)
		return on_park(app, con, *con_cls);
	if (strcmp(url, "/release") == 0) {
		n = snprintf(buf, sizeof(buf), "{\"released\":%zu}",
			     hub_release(&app->hub, 1, 0, 1));
		return reply(con, 200, buf, (size_t)n);
	}
	if (strcmp(url, "/stats") == 0) {
		n = snprintf(buf, sizeof(buf), "{\"parked\":%zu}", hub_parked(&app->hub));
		return reply(con, 200, buf, (size_t)n);
	}
	return reply(con, 200, HELLO_BODY, sizeof(HELLO_BODY) - 1);
}

static void
on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)con;
	(void)toe;
	if (*con_cls != NULL && *con_cls != &plain_marker)
		free(*con_cls);
	*con_cls = NULL;
}

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	fputs("hello: ", stderr);
	vfprintf(stderr, fmt, ap);
}

/* Answers parked requests whose deadline passed, every 100 ms, as cleave-server's timer does. */
static void *
timer_main(void *arg)
{
	struct hello *app = arg;
	struct timespec ts = {0, 100 * 1000000L};

	while (!atomic_load(&app->timer_stop)) {
		nanosleep(&ts, NULL);
		hub_release(&app->hub, 0, now_ms(), 0);
	}
	return NULL;
}

/* Writes "https://127.0.0.1:PORT\n" to path through a temporary file and rename. */
static int
write_url(const char *path, unsigned port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "https://127.0.0.1:%u\n", port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* cleave-server's rule: raise the soft fd limit to the hard one, keep FD_RESERVE back. */
static unsigned
conn_limit(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)want + FD_RESERVE)
		return rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)rl.rlim_cur - FD_RESERVE
						    : FD_RESERVE;
	return want;
}

static int
parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	unsigned long x;

	errno = 0;
	x = strtoul(v, &end, 10);
	if (*v == '\0' || *end != '\0' || errno != 0 || x < lo || x > hi)
		return -1;
	*out = (unsigned)x;
	return 0;
}

static void
usage(void)
{
	fprintf(stderr, "usage: hello --cert FILE --key FILE --url-file FILE [--threads N]\n"
			"             [--max-connections N] [--pool-kib N] [--max-wait S]\n");
}

struct hello_opts {
	const char *cert, *key, *url_file;
	unsigned threads, max_conn, pool_kib, max_wait_s;
};

static int
parse_args(int argc, char **argv, struct hello_opts *o)
{
	for (int i = 1; i < argc; i += 2) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int bad = 0;

		if (v == NULL)
			bad = 1;
		else if (strcmp(a, "--cert") == 0)
			o->cert = v;
		else if (strcmp(a, "--key") == 0)
			o->key = v;
		else if (strcmp(a, "--url-file") == 0)
			o->url_file = v;
		else if (strcmp(a, "--threads") == 0)
			bad = parse_uint(v, 1, 64, &o->threads);
		else if (strcmp(a, "--max-connections") == 0)
			bad = parse_uint(v, 16, 1000000, &o->max_conn);
		else if (strcmp(a, "--pool-kib") == 0)
			bad = parse_uint(v, 4, 256, &o->pool_kib);
		else if (strcmp(a, "--max-wait") == 0)
			bad = parse_uint(v, 1, 55, &o->max_wait_s);
		else
			bad = 1;
		if (bad) {
			fprintf(stderr, "hello: bad or unknown option %s\n", a);
			return -1;
		}
	}
	if (o->cert == NULL || o->key == NULL || o->url_file == NULL)
		return -1;
	return 0;
}

/* Quiesces, answers every parked request (bounded, 5 s), then stops the daemon. */
static void
shut_down(struct hello *app)
{
	size_t n;

	MHD_quiesce_daemon(app->d);
	atomic_store(&app->timer_stop, 1);
	pthread_join(app->timer, NULL);
	pthread_mutex_lock(&app->hub.lock);
	app->hub.stopping = 1;
	pthread_mutex_unlock(&app->hub.lock);
	n = hub_release(&app->hub, 1, 0, 0);
	for (int i = 0; i < 500 && atomic_load(&app->hub.inflight) > 0; i++)
		usleep(10 * 1000);
	fprintf(stderr, "hello: answered %zu parked requests, stopping\n", n);
	MHD_stop_daemon(app->d);
}

int
main(int argc, char **argv)
{
	struct hello_opts o = {
		.threads = 2, .pool_kib = 4, .max_wait_s = 55}; /* as cleave-server */
	static struct hello app;
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *di;
	char *cert, *key;
	sigset_t set;
	int sig = 0;

	if (parse_args(argc, argv, &o) != 0) {
		usage();
		return 2;
	}
	cert = file_read_all(o.cert, FILE_CAP, NULL);
	key = file_read_all(o.key, FILE_CAP, NULL);
	if (cert == NULL || key == NULL) {
		fprintf(stderr, "hello: cannot read %s or %s\n", o.cert, o.key);
		return 1;
	}
	/* Signals are taken by the main thread only, as in cleave-server. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pthread_mutex_init(&app.hub.lock, NULL);
	app.max_wait_s = o.max_wait_s;
	app.d = MHD_start_daemon(
		MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			MHD_USE_ERROR_LOG,
		0, NULL, NULL, on_request, &app, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, &app,
		MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_HTTPS_MEM_CERT, cert,
		MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_THREAD_POOL_SIZE, o.threads,
		MHD_OPTION_CONNECTION_LIMIT, conn_limit(o.max_conn ? o.max_conn : CONN_WANT),
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)o.pool_kib * 1024,
		MHD_OPTION_CONNECTION_TIMEOUT, 120u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		&app, MHD_OPTION_END);
	secure_zero(key, strlen(key));
	if (app.d == NULL) {
		fprintf(stderr, "hello: cannot start the daemon (bad key or certificate?)\n");
		return 1;
	}
	di = MHD_get_daemon_info(app.d, MHD_DAEMON_INFO_BIND_PORT);
	if (di == NULL || pthread_create(&app.timer, NULL, timer_main, &app) != 0) {
		MHD_stop_daemon(app.d);
		return 1;
	}
	if (write_url(o.url_file, di->port) != 0) {
		fprintf(stderr, "hello: cannot write %s\n", o.url_file);
		shut_down(&app);
		return 1;
	}
	fprintf(stderr, "hello: listening on https://127.0.0.1:%u (%u threads, pool %u KiB)\n",
		di->port, o.threads, o.pool_kib);
	while (sig != SIGTERM && sig != SIGINT)
		sig = sigwaitinfo(&set, NULL);
	shut_down(&app);
	pthread_mutex_destroy(&app.hub.lock);
	free(cert);
	free(key);
	return 0;
}

/*
 * libmicrohttpd glue. Per-request state is made in the URI log callback (which sees the raw
 * request target, query included, needed for signature checks) and freed in the completion
 * callback. Bodies are collected up to API_BODY_MAX; larger ones get 413 and are discarded, not
 * buffered. A check-in the api asks to park is suspended in the long-poll hub and handed back to
 * the api when woken or due. Nothing here interprets a request's meaning.
 */
#include "httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "longpoll.h"
#include "proxy.h"
#include "static.h"
#include "util.h"

#define METRIC_ROWS     256
#define HTTPD_API_CSP   "default-src 'none'; frame-ancestors 'none'"
#define HTTPD_DRAIN_MAX (16ULL * 1024 * 1024)

struct metric_row {
	const char *route;
	int status;
	uint64_t count;
};

struct httpd {
	struct MHD_Daemon *d;
	struct api *api;
	struct service *svc;
	struct web_static *web;
	struct lp_hub hub;
	struct connlimit admit;
	struct cl_policy proxies;             /* trusted reverse proxies (proxy.c) */
	struct sockaddr_storage unknown_addr; /* AF_UNSPEC: a client whose address is unknown */
	unsigned idle_timeout_s, handshake_timeout_s;
	pthread_t timer;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
	int timer_stop;
	atomic_long inflight_resumed;
	pthread_mutex_t mlock;
	struct metric_row metrics[METRIC_ROWS];
	size_t nmetrics;
};

struct req {
	struct httpd *h;
	struct MHD_Connection *con;
	char *target; /* raw request target: path, then query after the NUL that replaced '?' */
	const char *query;
	char *body;
	size_t len, cap;
	int started;
	int too_large;
	int bad_framing; /* answered 400 for ambiguous framing; the connection closes after */
	int resumed;
	atomic_int resume_pending;
	int resume_counted; /* in inflight_resumed until its answer is sent (or it parks again) */
	struct lp_waiter w;
	char client[INET6_ADDRSTRLEN];
};

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
count_request(struct httpd *h, const char *route, int status)
{
	pthread_mutex_lock(&h->mlock);
	for (size_t i = 0; i < h->nmetrics; i++) {
		if (h->metrics[i].status == status && h->metrics[i].route == route) {
			h->metrics[i].count++;
			pthread_mutex_unlock(&h->mlock);
			return;
		}
	}
	if (h->nmetrics < METRIC_ROWS)
		h->metrics[h->nmetrics++] = (struct metric_row){route, status, 1};
	pthread_mutex_unlock(&h->mlock);
}

static size_t
admit_metrics(struct connlimit *cl, char *buf, size_t cap)
{
	unsigned long long open, by_address, by_reserve;
	int r;

	pthread_mutex_lock(&cl->lock);
	open = cl->active;
	by_address = cl->refused_address;
	by_reserve = cl->refused_reserve;
	pthread_mutex_unlock(&cl->lock);
	r = snprintf(buf, cap,
		     "# HELP cleave_connections_open TCP connections held, handshaking ones "
		     "included.\n# TYPE cleave_connections_open gauge\n"
		     "cleave_connections_open %llu\n"
		     "# HELP cleave_connections_refused_total Connections closed at accept: "
		     "their address was at its cap, or only the trusted reserve was left.\n"
		     "# TYPE cleave_connections_refused_total counter\n"
		     "cleave_connections_refused_total{reason=\"per_address\"} %llu\n"
		     "cleave_connections_refused_total{reason=\"reserve\"} %llu\n",
		     open, by_address, by_reserve);
	return r > 0 ? MIN((size_t)r, cap) : 0;
}

size_t
httpd_metrics(void *ctx, char *buf, size_t cap)
{
	struct httpd *h = ctx;
	size_t n = 0;
	int r;

	r = snprintf(buf, cap,
		     "# HELP cleave_http_requests_total HTTP requests answered, by route and "
		     "status.\n# TYPE cleave_http_requests_total counter\n");
	n = r > 0 ? MIN((size_t)r, cap) : 0;
	pthread_mutex_lock(&h->mlock);
	for (size_t i = 0; i < h->nmetrics && n < cap; i++) {
		r = snprintf(buf + n, cap - n,
			     "cleave_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
			     h->metrics[i].route, h->metrics[i].status,
			     (unsigned long long)h->metrics[i].count);
		if (r > 0)
			n = MIN(n + (size_t)r, cap);
	}
	pthread_mutex_unlock(&h->mlock);
	if (n < cap) {
		r = snprintf(buf + n, cap - n,
			     "# HELP cleave_parked_connections Device check-ins waiting for "
			     "work.\n# TYPE cleave_parked_connections gauge\n"
			     "cleave_parked_connections %zu\n",
			     lp_parked(&h->hub));
		if (r > 0)
			n = MIN(n + (size_t)r, cap);
	}
	if (n < cap)
		n += admit_metrics(&h->admit, buf + n, cap - n);
	return n;
}

/* Hub callbacks; the hub's opaque conn is our struct req. Both run under the hub lock. */
static void
conn_suspend(void *p)
{
	struct req *r = p;

	MHD_suspend_connection(r->con);
}

/*
 * A resumed request is owed one more pass and, unless it parks again, an answer sent to its
 * client (or the client gone): on_completed says so. The count lets httpd_stop wait for
 * exactly those; settling at the start of the pass let MHD_stop_daemon close a connection
 * whose 204 was still being made (a slow store made that common).
 */
static void
conn_resume(void *p)
{
	struct req *r = p;

	atomic_store(&r->resume_pending, 1);
	atomic_fetch_add(&r->h->inflight_resumed, 1);
	MHD_resume_connection(r->con);
}

/* Takes a pending resume once (true when there was one); it stays counted until settled. */
static int
resume_take(struct req *r)
{
	if (!atomic_exchange(&r->resume_pending, 0))
		return 0;
	if (r->resume_counted) /* an earlier resume that parked again without settling */
		atomic_fetch_sub(&r->h->inflight_resumed, 1);
	r->resume_counted = 1;
	return 1;
}

/* The resumed request is answered, parked again or gone: no longer owed. */
static void
resume_settle(struct req *r)
{
	if (r->resume_counted) {
		r->resume_counted = 0;
		atomic_fetch_sub(&r->h->inflight_resumed, 1);
	}
}

static uint64_t
hub_gen(void *ctx, const char *device)
{
	return svc_wake_gen(ctx, device);
}

void
httpd_wake(void *ctx, const char *device_id)
{
	struct httpd *h = ctx;

	lp_wake(&h->hub, device_id);
}

size_t
httpd_parked_ids(void *ctx, char (*ids)[STORE_ID_MAX], size_t max)
{
	struct httpd *h = ctx;

	return lp_parked_ids(&h->hub, ids, max);
}

static const char *
header_of(void *ctx, const char *name)
{
	return MHD_lookup_connection_value(ctx, MHD_HEADER_KIND, name);
}

/* The numeric form of an IPv4 or IPv6 address into out (empty for anything else). */
static void
addr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	const void *a = NULL;

	if (sa->sa_family == AF_INET)
		a = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
	else if (sa->sa_family == AF_INET6)
		a = &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
	if (a == NULL || inet_ntop(sa->sa_family, a, out, (socklen_t)cap) == NULL)
		out[0] = '\0';
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *con)
{
	struct req *r = calloc(1, sizeof(*r));
	const union MHD_ConnectionInfo *ci;
	char *q;

	if (r == NULL)
		return NULL;
	r->h = cls;
	r->con = con;
	r->target = strdup(uri ? uri : "/");
	if (r->target == NULL) {
		free(r);
		return NULL;
	}
	q = strchr(r->target, '?');
	if (q != NULL)
		*q++ = '\0';
	r->query = q ? q : "";
	/* A request line arrived: from now on the connection gets the idle timeout. */
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CONNECTION_TIMEOUT);
	if (ci != NULL && ci->connection_timeout != r->h->idle_timeout_s)
		MHD_set_connection_option(con, MHD_CONNECTION_OPTION_TIMEOUT, r->h->idle_timeout_s);
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL)
		addr_text(ci->client_addr, r->client, sizeof(r->client));
	return r;
}

static void
on_completed(void *cls, struct MHD_Connection *con, void **con_cls,
	     enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	(void)cls;
	(void)con;
	(void)toe;
	if (r == NULL)
		return;
	/* Never leave a dangling waiter in the hub, nor an unsettled resume in the count. */
	if (r->w.conn != NULL)
		lp_cancel(&r->h->hub, &r->w);
	resume_take(r); /* resumed, but the client went away before its pass */
	resume_settle(r);
	free(r->body);
	free(r->target);
	free(r);
	*con_cls = NULL;
}

static enum MHD_Result
send_response(struct req *r, struct api_response *rs)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(rs->body);
		return MHD_NO;
	}
	rs->body = NULL;
	if (rs->content_type != NULL && rs->len > 0)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs->content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_STRICT_TRANSPORT_SECURITY, HTTPD_HSTS);
	/*
	 * Data, never a document: a JSON or image reply opened as a page may load and frame
	 * nothing. The HTML pages the api makes (the employee portal) get the console's policy,
	 * which lets them load their stylesheet and QR image from this origin. Their URLs hold
	 * secrets (enrollment tokens, device links): no Referer, for any reply.
	 */
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	if (rs->content_type != NULL && strncmp(rs->content_type, "text/html", 9) == 0)
		MHD_add_response_header(resp, "Content-Security-Policy", WEB_CSP);
	else
		MHD_add_response_header(resp, "Content-Security-Policy", HTTPD_API_CSP);
	if (rs->next_cursor[0] != '\0')
		MHD_add_response_header(resp, "Cleave-Next-Cursor", rs->next_cursor);
	if (r->bad_framing)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
	if (rs->location[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rs->location);
	if (rs->set_cookie[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, rs->set_cookie);
	ret = MHD_queue_response(r->con, (unsigned)rs->status, resp);
	MHD_destroy_response(resp);
	count_request(r->h, rs->route ? rs->route : "other", rs->status);
	return ret;
}

static int
append_body(struct req *r, const char *data, size_t n)
{
	if (r->too_large || r->len + n > API_BODY_MAX) {
		r->too_large = 1;
		return 0;
	}
	if (r->len + n + 1 > r->cap) {
		size_t nc = MAX(r->cap * 2, r->len + n + 1);
		char *nb = realloc(r->body, MIN(nc, (size_t)API_BODY_MAX + 1));

		if (nb == NULL)
			return -ENOMEM;
		r->body = nb;
		r->cap = MIN(nc, (size_t)API_BODY_MAX + 1);
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = '\0';
	return 0;
}

/* The console's files (static.c): the reply plus the headers of every console answer. */
static enum MHD_Result
send_static(struct req *r)
{
	struct web_reply w;
	struct MHD_Response *resp;
	enum MHD_Result ret;

	if (web_static_answer(r->h->web, r->target, header_of(r->con, "Accept-Encoding"),
			      header_of(r->con, "If-None-Match"), &w) != 0) {
		struct api_response rs = {0};

		api_transport_error(503, "out of memory", &rs);
		return send_response(r, &rs);
	}
	resp = MHD_create_response_from_buffer(w.len, w.body, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL) {
		free(w.body);
		return MHD_NO;
	}
	if (w.content_type != NULL && w.status != 304)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, w.content_type);
	if (w.etag[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, w.etag);
	if (w.gzip && w.status == 200)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
	if (w.vary)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
				w.status == 404 ? "no-store" : "no-cache");
	MHD_add_response_header(resp, "Content-Security-Policy", WEB_CSP);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, MHD_HTTP_HEADER_STRICT_TRANSPORT_SECURITY, HTTPD_HSTS);
	ret = MHD_queue_response(r->con, (unsigned)w.status, resp);
	MHD_destroy_response(resp);
	count_request(r->h, "static", w.status);
	return ret;
}

/* Runs the api, parking the request when asked to and when nothing arrived meanwhile. */
static enum MHD_Result
dispatch(struct req *r, const char *method)
{
	struct api_request rq = {
		.method = method,
		.path = r->target,
		.query = r->query,
		.header = header_of,
		.header_ctx = r->con,
		.body = r->body,
		.body_len = r->len,
		.client = r->client,
	};
	struct api_response rs;

	if (web_static_route(method, r->target))
		return send_static(r);
	/* Bounded: every extra round means the device's wake generation moved meanwhile. */
	for (int round = 0; round < 4; round++) {
		memset(&rs, 0, sizeof(rs));
		if (r->resumed) {
			rq.resumed = 1;
			rq.timed_out = r->w.timed_out;
			str_copy(rq.park_device, sizeof(rq.park_device), r->w.device);
			rq.park_deadline_ms = r->w.deadline_ms;
		}
		api_handle(r->h->api, &rq, &rs);
		if (!rs.park)
			return send_response(r, &rs);
		free(rs.body);
		str_copy(r->w.device, sizeof(r->w.device), rs.park_device);
		r->w.deadline_ms = rs.park_deadline_ms;
		r->w.conn = r;
		if (lp_park(&r->h->hub, &r->w, rs.park_gen)) {
			resume_settle(r);
			return MHD_YES;
		}
		r->resumed = 1;
		r->w.timed_out = r->h->hub.stopping;
	}
	r->w.timed_out = 1;
	memset(&rs, 0, sizeof(rs));
	rq.timed_out = 1;
	api_handle(r->h->api, &rq, &rs);
	if (rs.park) {
		free(rs.body);
		api_transport_error(503, "the server is busy; retry", &rs);
	}
	return send_response(r, &rs);
}

struct framing {
	unsigned content_length, transfer_encoding;
	int te_chunked;
};

static enum MHD_Result
count_framing(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct framing *f = cls;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
		f->content_length++;
	} else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
		f->transfer_encoding++;
		f->te_chunked = value != NULL && strcasecmp(value, "chunked") == 0;
	}
	return MHD_YES;
}

/*
 * The request smuggling guard (RFC 9112 section 6.3): a body's length must be stated once and
 * one way. Two Content-Length headers, Content-Length beside Transfer-Encoding, or a transfer
 * coding other than a single "chunked" could be read one way here and another way by a proxy
 * in front; such a request gets 400 and its connection is closed. NULL when the framing is fine.
 */
static const char *
framing_error(struct MHD_Connection *con)
{
	struct framing f = {0};

	MHD_get_connection_values(con, MHD_HEADER_KIND, count_framing, &f);
	if (f.content_length > 1)
		return "more than one Content-Length header";
	if (f.content_length > 0 && f.transfer_encoding > 0)
		return "both Content-Length and Transfer-Encoding";
	if (f.transfer_encoding > 1 || (f.transfer_encoding == 1 && !f.te_chunked))
		return "the only Transfer-Encoding accepted is a single \"chunked\"";
	return NULL;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
	   const char *version, const char *upload_data, size_t *upload_size, void **con_cls)
{
	struct req *r = *con_cls;
	struct api_response rs;

	(void)cls;
	(void)url;
	(void)version;
	if (r == NULL)
		return MHD_NO; /* out of memory in on_uri: drop the connection */
	if (resume_take(r)) {
		/* Only a parked request is called again without a queued response: a resume. */
		r->resumed = 1;
		return dispatch(r, method);
	}
	if (!r->started) {
		const char *cl = MHD_lookup_connection_value(con, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_CONTENT_LENGTH);

		unsigned long long len = cl ? strtoull(cl, NULL, 10) : 0;
		const char *bad = framing_error(con);
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

		r->started = 1;
		/* The headers are in now (not yet in on_uri): a trusted balancer names the client. */
		if (ci != NULL && ci->client_addr != NULL)
			proxy_client(con, &r->h->proxies, ci->client_addr, r->client,
				     sizeof(r->client));
		if (bad != NULL) {
			memset(&rs, 0, sizeof(rs));
			api_transport_error(400, bad, &rs);
			r->bad_framing = 1;
			return send_response(r, &rs);
		}
		/* Bodies a little too large are read and dropped, so the client reliably sees the
		 * 413; absurd ones are refused at once and the connection closes. */
		if (len > API_BODY_MAX && len <= HTTPD_DRAIN_MAX) {
			r->too_large = 1;
			return MHD_YES;
		}
		if (len > HTTPD_DRAIN_MAX) {
			memset(&rs, 0, sizeof(rs));
			api_transport_error(413, "the request body is larger than 65536 bytes",
					    &rs);
			return send_response(r, &rs);
		}
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (append_body(r, upload_data, *upload_size) != 0) {
			memset(&rs, 0, sizeof(rs));
			api_transport_error(503, "out of memory", &rs);
			*upload_size = 0;
			return send_response(r, &rs);
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->too_large) {
		memset(&rs, 0, sizeof(rs));
		api_transport_error(413, "the request body is larger than 65536 bytes", &rs);
		return send_response(r, &rs);
	}
	return dispatch(r, method);
}

/*
 * libmicrohttpd's own messages, at most 10 a second: one line per vanished client would
 * otherwise flood the log when thousands of parked agents disappear at once.
 */
static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	static atomic_long window, used, dropped;
	long now = (long)time(NULL), d;
	char line[512];

	(void)cls;
	if (atomic_exchange(&window, now) != now)
		atomic_store(&used, 0);
	if (atomic_fetch_add(&used, 1) >= 10) {
		atomic_fetch_add(&dropped, 1);
		return;
	}
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	d = atomic_exchange(&dropped, 0);
	if (d > 0)
		log_warn("httpd: %s (and %ld similar messages suppressed)", line, d);
	else
		log_warn("httpd: %s", line);
}

static void *
timer_main(void *arg)
{
	struct httpd *h = arg;
	struct timespec ts;

	pthread_mutex_lock(&h->timer_lock);
	while (!h->timer_stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&h->timer_cond, &h->timer_lock, &ts);
		if (h->timer_stop)
			break;
		pthread_mutex_unlock(&h->timer_lock);
		lp_expire(&h->hub, now_ms());
		pthread_mutex_lock(&h->timer_lock);
	}
	pthread_mutex_unlock(&h->timer_lock);
	return NULL;
}

/*
 * Accept policy: a connection over its address's cap, or into the reserve, is closed at once.
 * A refusal is logged at most every 10 s (a flood would fill the log); /metrics counts them all.
 */
static enum MHD_Result
on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	static atomic_long last_log;
	struct httpd *h = cls;
	char who[INET6_ADDRSTRLEN];
	long now = (long)time(NULL), prev = atomic_load(&last_log);
	int r = connlimit_check(&h->admit, addr);

	(void)addrlen;
	if (r == 0)
		return MHD_YES;
	if (now - prev >= 10 && atomic_compare_exchange_strong(&last_log, &prev, now)) {
		addr_text(addr, who, sizeof(who));
		log_warn("httpd: refusing connections from %s: %s", who,
			 r == -EMFILE ? "it holds max_connections_per_address"
				      : "only the reserve for trusted_addresses is left");
	}
	return MHD_NO;
}

/*
 * A new connection is counted and gets the short handshake deadline until its first request
 * line arrives (on_uri lifts it). libmicrohttpd does not refresh a connection's activity time
 * while TLS is being negotiated, so this bounds the whole handshake, not just a silence.
 */
static void
on_connection(void *cls, struct MHD_Connection *con, void **socket_ctx,
	      enum MHD_ConnectionNotificationCode toe)
{
	struct httpd *h = cls;
	const union MHD_ConnectionInfo *ci;
	struct cl_entry *slot = NULL;

	if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		connlimit_del(&h->admit, *socket_ctx);
		*socket_ctx = NULL;
		return;
	}
	ci = MHD_get_connection_info(con, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL)
		connlimit_add(&h->admit, ci->client_addr, &slot);
	else
		connlimit_add(&h->admit, (const struct sockaddr *)&h->unknown_addr, &slot);
	*socket_ctx = slot;
	if (h->handshake_timeout_s != h->idle_timeout_s)
		MHD_set_connection_option(con, MHD_CONNECTION_OPTION_TIMEOUT,
					  h->handshake_timeout_s);
}

int
httpd_start(const struct httpd_config *cfg, struct api *api, struct service *svc,
	    struct httpd **out)
{
	struct httpd *h = calloc(1, sizeof(*h));
	unsigned flags = MHD_USE_TLS | MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	struct cl_policy pol = cfg->admit;

	if (h == NULL) {
		close(cfg->listen_fd);
		return -ENOMEM;
	}
	h->api = api;
	h->svc = svc;
	if (web_static_open(cfg->web_root, &h->web) != 0) {
		close(cfg->listen_fd);
		free(h);
		return -ENOMEM;
	}
	h->idle_timeout_s = cfg->idle_timeout_s;
	h->proxies = cfg->proxies;
	h->handshake_timeout_s = cfg->handshake_timeout_s;
	pol.total = cfg->conn_limit;
	connlimit_init(&h->admit, &pol);
	pthread_mutex_init(&h->mlock, NULL);
	pthread_mutex_init(&h->timer_lock, NULL);
	pthread_cond_init(&h->timer_cond, NULL);
	lp_init(&h->hub, conn_suspend, conn_resume, hub_gen, svc);
	/* The daemon-wide timeout is the idle one, so that established connections stay on
	 * libmicrohttpd's sorted timeout list; only handshaking ones carry their own. */
	h->d = MHD_start_daemon(
		flags, 0, on_accept, h, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
		MHD_OPTION_LISTEN_SOCKET, cfg->listen_fd, MHD_OPTION_HTTPS_MEM_CERT, cfg->cert_pem,
		MHD_OPTION_HTTPS_MEM_KEY, cfg->key_pem, MHD_OPTION_HTTPS_PRIORITIES,
		cfg->tls_priorities, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)MAX(cfg->threads, 1u),
		MHD_OPTION_CONNECTION_LIMIT, cfg->conn_limit, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		cfg->pool_size, MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
		MHD_OPTION_PER_IP_CONNECTION_LIMIT, 0u, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
		h, MHD_OPTION_URI_LOG_CALLBACK, on_uri, h, MHD_OPTION_NOTIFY_COMPLETED,
		on_completed, h, MHD_OPTION_END);
	if (h->d == NULL) {
		log_err("httpd: cannot start the HTTPS daemon (bad TLS key, certificate or "
			"priorities?)");
		close(cfg->listen_fd);
		lp_fini(&h->hub);
		connlimit_fini(&h->admit);
		web_static_free(h->web);
		free(h);
		return -EINVAL;
	}
	if (pthread_create(&h->timer, NULL, timer_main, h) != 0) {
		MHD_stop_daemon(h->d);
		lp_fini(&h->hub);
		connlimit_fini(&h->admit);
		web_static_free(h->web);
		free(h);
		return -EAGAIN;
	}
	*out = h;
	return 0;
}

void
httpd_stop(struct httpd *h)
{
	size_t n;

	if (h == NULL)
		return;
	MHD_quiesce_daemon(h->d);
	pthread_mutex_lock(&h->timer_lock);
	h->timer_stop = 1;
	pthread_cond_signal(&h->timer_cond);
	pthread_mutex_unlock(&h->timer_lock);
	pthread_join(h->timer, NULL);
	/* Suspended connections must be resumed and answered before MHD_stop_daemon. */
	n = lp_stop(&h->hub);
	for (int i = 0; i < 500 && atomic_load(&h->inflight_resumed) > 0; i++)
		usleep(10 * 1000);
	log_info("httpd: answered %zu parked check-ins, stopping", n);
	MHD_stop_daemon(h->d);
	lp_fini(&h->hub);
	connlimit_fini(&h->admit);
	web_static_free(h->web);
	pthread_mutex_destroy(&h->mlock);
	pthread_mutex_destroy(&h->timer_lock);
	pthread_cond_destroy(&h->timer_cond);
	free(h);
}

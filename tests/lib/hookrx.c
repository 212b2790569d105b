/*
 * The test webhook receiver (hookrx.h). Its signature check is written from the Standard
 * Webhooks text: HMAC-SHA256 over "id.timestamp.body" keyed with the base64 after "whsec_",
 * sent as "v1,BASE64"; it shares no code with the server's signer.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hookrx.h"
#include "testlib.h"
#include "util.h"

#define RX_MAX   4096
#define BODY_CAP 8192

struct hookrx {
	unsigned port;
	char url[64];
	struct MHD_Daemon *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum hookrx_mode mode;
	int stopping;
	char secret[128];
	struct hookrx_msg *msgs;
	int *ok;
	size_t n;
	int inflight, max_inflight;
};

struct upload {
	char body[BODY_CAP];
	size_t len;
	int too_long;
};

static int
verify(const char *secret, const char *id, const char *ts, const char *body, size_t blen,
       const char *sigs)
{
	unsigned char key[96], mac[32], enc[64];
	unsigned maclen = sizeof(mac);
	size_t slen;
	int klen;
	char *msg;
	size_t mlen;
	int ok = 0;

	if (strncmp(secret, "whsec_", 6) != 0)
		return 0;
	slen = strlen(secret + 6);
	klen = EVP_DecodeBlock(key, (const unsigned char *)secret + 6, (int)slen);
	if (klen <= 0)
		return 0;
	while (slen > 0 && secret[6 + slen - 1] == '=') { /* padding decodes to zero bytes */
		klen--;
		slen--;
	}
	mlen = strlen(id) + strlen(ts) + blen + 3;
	msg = malloc(mlen);
	if (msg == NULL)
		return 0;
	snprintf(msg, mlen, "%s.%s.", id, ts);
	memcpy(msg + strlen(msg), body, blen);
	HMAC(EVP_sha256(), key, klen, (unsigned char *)msg, strlen(id) + strlen(ts) + 2 + blen, mac,
	     &maclen);
	free(msg);
	EVP_EncodeBlock(enc, mac, (int)maclen);
	/* The header may carry several space-separated signatures; one must match. */
	for (const char *p = sigs; p && *p;) {
		const char *end = strchr(p, ' ');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n == 3 + strlen((char *)enc) && strncmp(p, "v1,", 3) == 0 &&
		    memcmp(p + 3, enc, n - 3) == 0)
			ok = 1;
		p = end ? end + 1 : NULL;
	}
	return ok;
}

static void
record(struct hookrx *rx, struct MHD_Connection *con, const struct upload *u, int answered_ok)
{
	const char *id = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "webhook-id");
	const char *ts = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "webhook-timestamp");
	const char *sig = MHD_lookup_connection_value(con, MHD_HEADER_KIND, "webhook-signature");
	json_t *j = json_loadb(u->body, u->len, 0, NULL);
	struct hookrx_msg m = {0};
	char *data = j ? json_dumps(json_object_get(j, "data"), JSON_COMPACT) : NULL;

	str_copy(m.id, sizeof(m.id), id ? id : "");
	m.ts = ts ? atoll(ts) : 0;
	str_copy(m.type, sizeof(m.type),
		 j && json_string_value(json_object_get(j, "type"))
			 ? json_string_value(json_object_get(j, "type"))
			 : "");
	str_copy(m.data, sizeof(m.data), data ? data : "");
	free(data);
	json_decref(j);
	pthread_mutex_lock(&rx->lock);
	m.sig_ok =
		id && ts && sig && !u->too_long && verify(rx->secret, id, ts, u->body, u->len, sig);
	if (rx->n < RX_MAX) {
		rx->msgs[rx->n] = m;
		rx->ok[rx->n] = answered_ok;
		rx->n++;
	}
	pthread_cond_broadcast(&rx->cond);
	pthread_mutex_unlock(&rx->lock);
}

/* Slow mode: 30 s, or until the receiver goes down. */
static void
slow_wait(struct hookrx *rx)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 30;
	pthread_mutex_lock(&rx->lock);
	while (!rx->stopping && pthread_cond_timedwait(&rx->cond, &rx->lock, &until) == 0)
		;
	pthread_mutex_unlock(&rx->lock);
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *con, const char *url, const char *method,
	   const char *version, const char *upload, size_t *upload_size, void **ctx)
{
	struct hookrx *rx = cls;
	struct upload *u = *ctx;
	struct MHD_Response *resp;
	enum hookrx_mode mode;
	enum MHD_Result r;
	unsigned status;

	(void)url;
	(void)version;
	if (u == NULL) {
		u = calloc(1, sizeof(*u));
		*ctx = u;
		return u ? MHD_YES : MHD_NO;
	}
	if (*upload_size > 0) {
		if (u->len + *upload_size < sizeof(u->body))
			memcpy(u->body + u->len, upload, *upload_size), u->len += *upload_size;
		else
			u->too_long = 1;
		*upload_size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&rx->lock);
	mode = rx->mode;
	if (++rx->inflight > rx->max_inflight)
		rx->max_inflight = rx->inflight;
	pthread_mutex_unlock(&rx->lock);
	if (mode == RX_SLOW)
		slow_wait(rx);
	status = strcmp(method, "POST") != 0 ? 405 : mode == RX_FAIL ? 500 : 204;
	if (mode == RX_OK) /* a moment of work: overlapping deliveries would show */
		usleep(20000);
	record(rx, con, u, status == 204);
	pthread_mutex_lock(&rx->lock);
	rx->inflight--;
	pthread_mutex_unlock(&rx->lock);
	resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	r = MHD_queue_response(con, status, resp);
	MHD_destroy_response(resp);
	return r;
}

static void
on_done(void *cls, struct MHD_Connection *con, void **ctx, enum MHD_RequestTerminationCode t)
{
	(void)cls;
	(void)con;
	(void)t;
	free(*ctx);
	*ctx = NULL;
}

struct hookrx *
hookrx_new(void)
{
	struct hookrx *rx = calloc(1, sizeof(*rx));

	if (rx == NULL)
		return NULL;
	rx->msgs = calloc(RX_MAX, sizeof(*rx->msgs));
	rx->ok = calloc(RX_MAX, sizeof(*rx->ok));
	rx->port = t_free_port();
	if (rx->msgs == NULL || rx->ok == NULL || rx->port == 0) {
		hookrx_free(rx);
		return NULL;
	}
	snprintf(rx->url, sizeof(rx->url), "http://127.0.0.1:%u/hook", rx->port);
	pthread_mutex_init(&rx->lock, NULL);
	pthread_cond_init(&rx->cond, NULL);
	return rx;
}

int
hookrx_up(struct hookrx *rx)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)rx->port)};

	if (rx->d != NULL)
		return 0;
	a.sin_addr.s_addr = htonl(0x7f000001);
	rx->stopping = 0;
	rx->d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
				 (uint16_t)rx->port, NULL, NULL, on_request, rx,
				 MHD_OPTION_SOCK_ADDR, &a, MHD_OPTION_NOTIFY_COMPLETED, on_done, rx,
				 MHD_OPTION_LISTENING_ADDRESS_REUSE, 1U, MHD_OPTION_END);
	return rx->d ? 0 : -1;
}

void
hookrx_down(struct hookrx *rx)
{
	if (rx->d == NULL)
		return;
	pthread_mutex_lock(&rx->lock);
	rx->stopping = 1;
	pthread_cond_broadcast(&rx->cond);
	pthread_mutex_unlock(&rx->lock);
	MHD_stop_daemon(rx->d);
	rx->d = NULL;
}

void
hookrx_free(struct hookrx *rx)
{
	if (rx == NULL)
		return;
	hookrx_down(rx);
	if (rx->port != 0) {
		pthread_mutex_destroy(&rx->lock);
		pthread_cond_destroy(&rx->cond);
	}
	free(rx->msgs);
	free(rx->ok);
	free(rx);
}

void
hookrx_set_mode(struct hookrx *rx, enum hookrx_mode m)
{
	pthread_mutex_lock(&rx->lock);
	rx->mode = m;
	pthread_mutex_unlock(&rx->lock);
}

void
hookrx_set_secret(struct hookrx *rx, const char *whsec)
{
	pthread_mutex_lock(&rx->lock);
	str_copy(rx->secret, sizeof(rx->secret), whsec);
	pthread_mutex_unlock(&rx->lock);
}

const char *
hookrx_url(const struct hookrx *rx)
{
	return rx->url;
}

size_t
hookrx_count(struct hookrx *rx)
{
	size_t n;

	pthread_mutex_lock(&rx->lock);
	n = rx->n;
	pthread_mutex_unlock(&rx->lock);
	return n;
}

size_t
hookrx_count_ok(struct hookrx *rx)
{
	size_t n = 0;

	pthread_mutex_lock(&rx->lock);
	for (size_t i = 0; i < rx->n; i++)
		n += rx->ok[i] != 0;
	pthread_mutex_unlock(&rx->lock);
	return n;
}

int
hookrx_get(struct hookrx *rx, size_t i, struct hookrx_msg *out)
{
	int r = -1;

	pthread_mutex_lock(&rx->lock);
	if (i < rx->n) {
		*out = rx->msgs[i];
		out->answered_ok = rx->ok[i];
		r = 0;
	}
	pthread_mutex_unlock(&rx->lock);
	return r;
}

int
hookrx_max_inflight(struct hookrx *rx)
{
	int n;

	pthread_mutex_lock(&rx->lock);
	n = rx->max_inflight;
	pthread_mutex_unlock(&rx->lock);
	return n;
}

int
hookrx_wait_ok(struct hookrx *rx, size_t n, double timeout_s)
{
	double end = now_s() + timeout_s;

	while (hookrx_count_ok(rx) < n) {
		if (now_s() > end)
			return -1;
		struct timespec ts = {0, 50 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return 0;
}

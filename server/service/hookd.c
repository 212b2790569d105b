/*
 * Webhook delivery (issue 11 §3): a small pool of threads, each with its own libcurl handle,
 * so at most `workers` receivers are being waited for at once and none of it runs on an API
 * thread. A worker claims a subscription that is due (a transaction: the store hands out each
 * subscription to one server at a time and leases it), sends the next event after its cursor
 * (or a redelivery an admin asked for) per Standard Webhooks, then records the attempt and
 * moves the cursor or backs off, in a second transaction that checks it still holds the lease.
 * A server killed between the two leaves the lease to run out; the event is then sent again
 * with the same webhook-id, so receivers can drop the duplicate.
 */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "b64.h"
#include "log.h"
#include "service_priv.h"

#define HOOKD_MAX        16
#define BACKOFF_FIRST_MS 5000LL
#define BACKOFF_CAP_MS   3600000LL
#define RETRY_WINDOW_MS  (26LL * 3600 * 1000) /* then the subscription is disabled */
#define KEEP_MS          (7LL * 86400 * 1000) /* delivered events and the log are kept this long */
#define IDLE_WAIT_MS     1000
#define BODY_MAX         (WEBHOOK_PAYLOAD_MAX + 256)
#define HOOKD_SCAN       100 /* subscriptions any_due reads */

struct svc_hookd {
	struct service *s;
	struct svc_webhook_config cfg;
	char *ca_file;
	char owner[STORE_ID_MAX]; /* this server's name in leases */
	pthread_t th[HOOKD_MAX];
	int started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int kicks;
	atomic_int stop;
	atomic_int running; /* workers that have started: the first one polls most often */
	atomic_int_fast64_t pruned_at;
};

/* The delay before attempt attempts + 1: 5 s doubling to an hour, +-20 % jitter, scaled. */
static int64_t
backoff_ms(const struct svc_hookd *h, int64_t attempts)
{
	int64_t d = BACKOFF_FIRST_MS;
	uint32_t rnd = 0;

	for (int64_t i = 1; i < attempts && d < BACKOFF_CAP_MS; i++)
		d *= 2;
	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	crypto_random(&rnd, sizeof(rnd));
	d = d * 8 / 10 + (int64_t)(rnd % (uint32_t)(d * 4 / 10 + 1));
	return d / h->cfg.time_divisor;
}

/* "v1,BASE64" of HMAC-SHA256(key, "id.timestamp.body"), key the secret after whsec_. */
static int
sign(const char *secret, const char *id, long long ts, const char *body, char *out, size_t cap)
{
	uint8_t key[64], mac[32];
	unsigned maclen = sizeof(mac);
	long klen = strncmp(secret, "whsec_", 6) == 0
			    ? b64_decode(key, sizeof(key), secret + 6, strlen(secret + 6))
			    : -1;
	size_t blen = strlen(body), cap_msg = strlen(id) + 32 + blen;
	char *msg = malloc(cap_msg);
	int n, r = -EINVAL;

	if (klen > 0 && msg != NULL) {
		n = snprintf(msg, cap_msg, "%s.%lld.%s", id, ts, body);
		if (HMAC(EVP_sha256(), key, (int)klen, (const uint8_t *)msg, (size_t)n, mac,
			 &maclen) != NULL) {
			memcpy(out, "v1,", 3);
			r = b64_encode(out + 3, cap - 3, mac, maclen) < 0 ? -ENOSPC : 0;
		}
	}
	secure_zero(key, sizeof(key));
	free(msg);
	return r;
}

/* The body: the event's envelope ({"type", "timestamp", "data"}), the same on every attempt. */
static void
body_of(const struct webhook_event *e, char *dst, size_t cap)
{
	time_t t = (time_t)(e->at_ms / 1000);
	struct tm tm;
	char when[32];

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(dst, cap, "{\"type\":\"%s\",\"timestamp\":\"%s.%03dZ\",\"data\":%s}", e->type,
		 when, (int)(e->at_ms % 1000), e->payload);
}

/* Ends a transfer in flight when the server stops (nothing is recorded: the lease runs out). */
static int
on_progress(void *ctx, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
	struct svc_hookd *h = ctx;

	(void)dt;
	(void)dn;
	(void)ut;
	(void)un;
	return atomic_load(&h->stop) ? 1 : 0;
}

static size_t
discard(char *p, size_t sz, size_t n, void *ctx)
{
	(void)p;
	(void)ctx;
	return sz * n;
}

/*
 * w's secret in the clear into out (whsec_...); else d's error says why, in the log too: the
 * admin of a server with another deployment's keys must learn it there, not only in the API.
 */
static int
open_secret(struct svc_hookd *h, const struct webhook *w, struct webhook_delivery *d, char *out,
	    size_t cap)
{
	int r = svc_hook_open(h->s, w, out, cap);

	if (r == 0)
		return 0;
	str_copy(d->error, sizeof(d->error),
		 r == -EBADMSG ? "the subscription's secret does not open with this server's keys "
				 "(keys_dir differs from the server that sealed it)"
			       : "the subscription's secret cannot be opened");
	log_err("webhook %s: %s: give every server of the deployment the same keys directory",
		w->id, d->error);
	return r;
}

/* One POST of e to w; fills d's status, latency, error and ok. */
static void
post(struct svc_hookd *h, CURL *c, const struct webhook *w, const struct webhook_event *e,
     struct webhook_delivery *d)
{
	char body[BODY_MAX], sig[128], hid[STORE_ID_MAX + 16], hts[48], hsig[160];
	char plain[sizeof(w->secret)];
	struct curl_slist *hd = NULL;
	long long ts = (long long)(service_now_ms(h->s) / 1000);
	int64_t t0 = service_now_ms(h->s);
	long code = 0;
	CURLcode cr;
	int r;

	body_of(e, body, sizeof(body));
	if (open_secret(h, w, d, plain, sizeof(plain)) != 0)
		return;
	r = sign(plain, e->id, ts, body, sig, sizeof(sig));
	secure_zero(plain, sizeof(plain));
	if (r != 0) {
		str_copy(d->error, sizeof(d->error), "the subscription's secret is not usable");
		return;
	}
	snprintf(hid, sizeof(hid), "webhook-id: %s", e->id);
	snprintf(hts, sizeof(hts), "webhook-timestamp: %lld", ts);
	snprintf(hsig, sizeof(hsig), "webhook-signature: %s", sig);
	hd = curl_slist_append(hd, "Content-Type: application/json");
	hd = curl_slist_append(hd, hid);
	hd = curl_slist_append(hd, hts);
	hd = curl_slist_append(hd, hsig);
	hd = curl_slist_append(hd, "Expect:");
	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, w->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hd);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "cleave-webhooks/1");
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->cfg.timeout_s * 1000L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->cfg.timeout_s * 1000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
	if (h->ca_file != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
	cr = curl_easy_perform(c);
	curl_slist_free_all(hd);
	d->latency_ms = service_now_ms(h->s) - t0;
	if (cr != CURLE_OK) {
		str_copy(d->error, sizeof(d->error), curl_easy_strerror(cr));
		return;
	}
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	d->status = code;
	d->ok = code >= 200 && code < 300;
	if (!d->ok)
		snprintf(d->error, sizeof(d->error), "the receiver answered %ld", code);
}

/* Claims a due subscription for this server; 0, -ENOENT (none due) or a store error. */
static int
claim_once(struct svc_hookd *h, struct webhook *w)
{
	struct store *st = h->s->st;
	int64_t now = service_now_ms(h->s);
	int64_t lease = now + (int64_t)h->cfg.timeout_s * 1000 + 5000;
	int r = st->ops->tx_begin(st);

	if (r == 0)
		r = st->ops->webhook_claim(st, now, lease, h->owner, w);
	if (r == 0)
		r = st->ops->tx_commit(st);
	if (r != 0)
		st->ops->tx_rollback(st);
	return r;
}

/* The failure of a normal attempt: back off, or disable past the retry window (audited). */
static int
failed(struct svc_hookd *h, struct webhook *w, int64_t now)
{
	w->attempts++;
	if (w->failing_since == 0)
		w->failing_since = now;
	if (now - w->failing_since < RETRY_WINDOW_MS / h->cfg.time_divisor) {
		w->next_at_ms = now + backoff_ms(h, w->attempts);
		return 0;
	}
	w->enabled = 0;
	snprintf(w->disabled_why, sizeof(w->disabled_why),
		 "no delivery succeeded in %lld attempts over the retry window",
		 (long long)w->attempts);
	log_warn("webhook %s disabled: %s", w->id, w->disabled_why);
	return audit_append(h->s->st, now, "system", "webhook.disable", w->id, "ok",
			    w->disabled_why);
}

/*
 * Records attempt d (NULL: nothing was sent, only the lease goes back) of event seq; moves
 * the cursor on success. Nothing when this server no longer holds the lease.
 */
static int
record_once(struct svc_hookd *h, const struct webhook *claimed, struct webhook_delivery *d)
{
	struct store *st = h->s->st;
	int64_t now = service_now_ms(h->s);
	struct webhook w;
	int sealed, r = st->ops->tx_begin(st);

	if (r == 0)
		r = st->ops->webhook_get(st, claimed->id, 1, &w);
	if (r == 0 &&
	    (strcmp(w.lease_owner, h->owner) != 0 || w.lease_until != claimed->lease_until)) {
		st->ops->tx_rollback(st); /* another server took over: its attempt counts */
		return 0;
	}
	if (r == 0 && d != NULL) {
		d->attempt = d->manual ? 0 : w.attempts + 1;
		r = st->ops->delivery_insert(st, d);
		if (r == 0 && d->manual)
			r = st->ops->redeliver_drop(st, w.id, d->event_seq);
		else if (r == 0 && d->ok) {
			/* Never back: webhook_skip may have moved it past events of types the
			 * subscription stopped wanting while this one was in flight. */
			if (d->event_seq > w.cursor)
				w.cursor = d->event_seq;
			w.attempts = w.failing_since = w.next_at_ms = 0;
		} else if (r == 0)
			r = failed(h, &w, now);
	}
	/* A secret an older server wrote in the clear is sealed at its first use here. */
	if (r == 0 && h->s->hook_key_set)
		r = svc_hook_seal_clear(h->s, &w, &sealed);
	/* Released at now, which is past: claims take the least recently served first. */
	w.lease_until = now;
	w.lease_owner[0] = '\0';
	if (r == 0)
		r = st->ops->webhook_save(st, &w);
	if (r == 0)
		r = st->ops->tx_commit(st);
	if (r != 0)
		st->ops->tx_rollback(st);
	return r == -ENOENT ? 0 : r; /* deleted meanwhile */
}

/* The event to send to w: a redelivery first, else the next after its cursor. */
static int
next_event(struct svc_hookd *h, const struct webhook *w, struct webhook_event *e, int *manual)
{
	struct store *st = h->s->st;
	int64_t seq;
	int r = st->ops->redeliver_next(st, w->id, &seq);

	*manual = r == 0;
	if (r == 0) {
		r = st->ops->event_get(st, seq, e);
		if (r == -ENOENT) /* pruned meanwhile: nothing to send */
			st->ops->redeliver_drop(st, w->id, seq);
		return r;
	}
	return r == -ENOENT ? st->ops->event_next(st, w->cursor, w->events, e) : r;
}

/*
 * Whether some subscription looks due, by reads alone: a claim is a write transaction, and
 * on SQLite a worker woken by every event of a bulk would queue for the writer lock between
 * the bulk's batches (which let waiting writers go first). 1 yes, 0 no (or unknown: the claim
 * is tried on the next round).
 */
static int
any_due(struct svc_hookd *h, struct webhook *all, struct webhook_event *e)
{
	struct store *st = h->s->st;
	int64_t now = service_now_ms(h->s), seq;
	size_t n = 0;

	if (st->ops->webhook_list(st, all, HOOKD_SCAN, &n) != 0)
		return 1;
	for (size_t i = 0; i < n; i++) {
		if (!all[i].enabled || all[i].next_at_ms > now || all[i].lease_until > now)
			continue;
		if (st->ops->redeliver_next(st, all[i].id, &seq) != -ENOENT ||
		    st->ops->event_next(st, all[i].cursor, all[i].events, e) != -ENOENT)
			return 1;
	}
	return n == HOOKD_SCAN; /* more than it read: let the claim decide */
}

/* One round: claim, send, record. 1 when something was sent, 0 when nothing is due. */
static int
deliver_one(struct svc_hookd *h, CURL *c, struct webhook_event *e)
{
	struct webhook w;
	struct webhook_delivery d = {0};
	int manual = 0, r = claim_once(h, &w);

	if (r != 0) {
		if (r != -ENOENT)
			log_errno(-r, "webhooks: cannot claim a subscription");
		return 0;
	}
	r = next_event(h, &w, e, &manual);
	if (r != 0) {
		SVC_TX_RETRY(h->s, r, record_once(h, &w, NULL));
		return 0;
	}
	str_copy(d.webhook_id, sizeof(d.webhook_id), w.id);
	d.event_seq = e->seq;
	str_copy(d.event_id, sizeof(d.event_id), e->id);
	str_copy(d.event_type, sizeof(d.event_type), e->type);
	d.manual = manual;
	d.at_ms = service_now_ms(h->s);
	post(h, c, &w, e, &d);
	if (atomic_load(&h->stop))
		return 0; /* cut short by the stop: sent again, same id, once the lease runs out */
	SVC_TX_RETRY(h->s, r, record_once(h, &w, &d));
	if (r != 0)
		log_errno(-r, "webhooks: cannot record a delivery to %s", w.id);
	return 1;
}

static void
maybe_prune(struct svc_hookd *h)
{
	int64_t now = service_now_ms(h->s), at = atomic_load(&h->pruned_at);
	struct store *st = h->s->st;
	int r;

	if (now - at < 60000 || !atomic_compare_exchange_strong(&h->pruned_at, &at, now))
		return;
	r = st->ops->tx_begin(st);
	if (r == 0)
		r = st->ops->webhook_skip(st);
	if (r == 0)
		r = st->ops->event_prune(st, now - KEEP_MS);
	if (r == 0)
		r = st->ops->tx_commit(st);
	if (r != 0) {
		st->ops->tx_rollback(st);
		log_errno(-r, "webhooks: cannot forget old events");
	}
}

/*
 * Waits for a kick (an event committed here) or, without one, IDLE_WAIT_MS for the first
 * worker and ten times that for the others: idle servers look for work (other servers'
 * events, backoffs that ended) about once a second, not once per worker.
 */
static void
idle_wait(struct svc_hookd *h, int first)
{
	long ms = first ? IDLE_WAIT_MS : 10 * IDLE_WAIT_MS;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += ms % 1000 * 1000000L;
	until.tv_sec += ms / 1000 + until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_mutex_lock(&h->lock);
	if (h->kicks == 0 && !atomic_load(&h->stop))
		pthread_cond_timedwait(&h->cond, &h->lock, &until);
	if (h->kicks > 0)
		h->kicks--;
	pthread_mutex_unlock(&h->lock);
}

static void *
worker(void *arg)
{
	struct svc_hookd *h = arg;
	struct webhook_event *e = malloc(sizeof(*e));
	struct webhook *all = calloc(HOOKD_SCAN, sizeof(*all));
	CURL *c = curl_easy_init();
	int first = atomic_fetch_add(&h->running, 1) == 0;

	if (c == NULL || e == NULL || all == NULL)
		log_warn("webhooks: a delivery worker could not start (out of memory)");
	while (c != NULL && e != NULL && all != NULL && !atomic_load(&h->stop)) {
		maybe_prune(h);
		if (!any_due(h, all, e) || !deliver_one(h, c, e))
			idle_wait(h, first);
		else
			svc_hookd_kick(h->s); /* another worker may take the next subscription */
	}
	curl_easy_cleanup(c);
	free(all);
	free(e);
	return NULL;
}

int
service_start_webhooks(struct service *s, const struct svc_webhook_config *cfg)
{
	struct svc_hookd *h = calloc(1, sizeof(*h));

	if (h == NULL || s->hookd != NULL) {
		free(h);
		return h == NULL ? -ENOMEM : -EALREADY;
	}
	h->s = s;
	h->cfg = *cfg;
	h->cfg.workers = cfg->workers > 0 && cfg->workers <= HOOKD_MAX ? cfg->workers : 4;
	h->cfg.timeout_s = cfg->timeout_s > 0 ? cfg->timeout_s : 10;
	h->cfg.time_divisor = cfg->time_divisor > 0 ? cfg->time_divisor : 1;
	h->ca_file = cfg->ca_file && cfg->ca_file[0] ? strdup(cfg->ca_file) : NULL;
	s->webhook_http_any = cfg->allow_http;
	if (svc_new_id(h->owner, "srv_") != 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		free(h->ca_file);
		free(h);
		return -EIO;
	}
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	s->hookd = h;
	for (; h->started < h->cfg.workers; h->started++)
		if (pthread_create(&h->th[h->started], NULL, worker, h) != 0)
			break;
	if (h->started == 0)
		return -EAGAIN;
	if (h->cfg.time_divisor > 1)
		log_warn("webhooks: delays run %lld times faster (a test setting)",
			 (long long)h->cfg.time_divisor);
	return 0;
}

void
svc_hookd_kick(struct service *s)
{
	struct svc_hookd *h = s->hookd;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	if (h->kicks < h->started)
		h->kicks++;
	pthread_cond_signal(&h->cond);
	pthread_mutex_unlock(&h->lock);
}

void
svc_hookd_stop(struct service *s)
{
	struct svc_hookd *h = s->hookd;

	if (h == NULL || atomic_exchange(&h->stop, 1))
		return;
	pthread_mutex_lock(&h->lock);
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	for (int i = 0; i < h->started; i++)
		pthread_join(h->th[i], NULL);
}

void
svc_hookd_free(struct service *s)
{
	struct svc_hookd *h = s->hookd;

	if (h == NULL)
		return;
	svc_hookd_stop(s);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->cond);
	free(h->ca_file);
	free(h);
	s->hookd = NULL;
}

/*
 * Webhook subscriptions and the event outbox (issue 11 §3). An event is written by
 * svc_event_emit inside the transaction of the change it reports, as one outbox row whatever
 * the number of subscriptions (store: event_append); each subscription delivers the events
 * after its cursor, in order (hookd.c). So a bulk of n commands costs n rows, not n times the
 * subscriptions, and a subscription that is down or disabled only keeps its cursor still.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "b64.h"
#include "log.h"
#include "service_priv.h"

const char *const svc_event_types[SVC_EVENT_TYPES_N] = {
	"device.enrolled",   "device.retired",     "command.queued",    "command.completed",
	"wipe.verified",     "compliance.changed", "audit.checkpoint",  "approval.requested",
	"approval.approved", "approval.rejected",  "approval.canceled", "approval.overridden",
};

#define HOOKS_MAX 100 /* subscriptions per deployment */

static int
known_type(const char *t)
{
	for (size_t i = 0; i < SVC_EVENT_TYPES_N; i++)
		if (strcmp(t, svc_event_types[i]) == 0)
			return 1;
	return 0;
}

int
svc_json_str(char *dst, size_t cap, const char *s)
{
	size_t o = 1;
	int r = 0;

	if (cap < 3)
		return -ENOSPC;
	dst[0] = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		size_t n;

		if (*p == '"' || *p == '\\')
			n = (size_t)snprintf(esc, sizeof(esc), "\\%c", *p);
		else if (*p < 0x20 || *p == 0x7f)
			n = (size_t)snprintf(esc, sizeof(esc), "\\u%04x", *p);
		else
			n = (size_t)snprintf(esc, sizeof(esc), "%c", *p);
		if (o + n + 2 > cap) {
			/* Cut before *p; if it continues a UTF-8 sequence (10xxxxxx), drop that
			 * sequence's bytes already copied, its lead byte included. */
			if ((*p & 0xc0) == 0x80) {
				while (o > 1 && ((unsigned char)dst[o - 1] & 0xc0) == 0x80)
					o--;
				if (o > 1)
					o--;
			}
			r = -ENOSPC;
			break;
		}
		memcpy(dst + o, esc, n);
		o += n;
	}
	dst[o++] = '"';
	dst[o] = '\0';
	return r;
}

int
svc_event_emit(struct service *s, const char *type, const char *data_json)
{
	struct webhook_event e = {0};
	int r;

	if (!known_type(type) || strlen(data_json) >= sizeof(e.payload))
		return -EINVAL;
	r = svc_new_id(e.id, "msg_");
	if (r != 0)
		return r;
	str_copy(e.type, sizeof(e.type), type);
	str_copy(e.payload, sizeof(e.payload), data_json);
	e.at_ms = service_now_ms(s);
	r = s->st->ops->event_append(s->st, &e, 1);
	if (r == 0 && e.seq > 0)
		svc_hookd_kick(
			s); /* a worker looks once the writer lock is free, after the commit */
	return r;
}

/* ---- subscriptions ---- */

/* https://HOST..., or http:// to this machine (tests) or anywhere when the server allows it. */
static int
url_ok(struct service *s, const char *url, struct svc_error *err)
{
	const char *host;

	if (strlen(url) >= STORE_TEXT_MAX)
		return svc_fail(err, SVC_INVALID, "url: longer than %d bytes", STORE_TEXT_MAX - 1);
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return svc_fail(err, SVC_INVALID, "url: spaces or control characters");
	if (strncmp(url, "https://", 8) == 0)
		host = url + 8;
	else if (strncmp(url, "http://", 7) == 0) {
		host = url + 7;
		if (!s->webhook_http_any && strncmp(host, "127.0.0.1", 9) != 0 &&
		    strncmp(host, "localhost", 9) != 0)
			return svc_fail(
				err, SVC_INVALID,
				"url: http:// only to 127.0.0.1 or localhost; use https://");
		if (!s->webhook_http_any && strchr(":/", host[9]) == NULL)
			return svc_fail(
				err, SVC_INVALID,
				"url: http:// only to 127.0.0.1 or localhost; use https://");
	} else
		return svc_fail(err, SVC_INVALID, "url: must start with https://");
	if (host[0] == '\0' || host[0] == '/' || host[0] == ':')
		return svc_fail(err, SVC_INVALID, "url: no host");
	return 0;
}

/* in's event names into ",a,b," (each known, no repeats, at least one). */
static int
events_set(const struct svc_webhook_input *in, char *dst, size_t cap, struct svc_error *err)
{
	size_t o = 1;

	if (in->nevents == 0)
		return svc_fail(err, SVC_INVALID, "events: at least one event type");
	dst[0] = ',';
	dst[1] = '\0';
	for (size_t i = 0; i < in->nevents; i++) {
		char probe[48];

		if (!known_type(in->events[i]))
			return svc_fail(err, SVC_INVALID, "events: unknown event type '%.40s'",
					in->events[i]);
		snprintf(probe, sizeof(probe), ",%s,", in->events[i]);
		if (strstr(dst, probe) != NULL)
			return svc_fail(err, SVC_INVALID, "events: '%s' given twice",
					in->events[i]);
		o += (size_t)snprintf(dst + o, cap - o, "%s,", in->events[i]);
		if (o >= cap)
			return svc_fail(err, SVC_INVALID, "events: too many");
	}
	return 0;
}

static int
new_secret(char *dst, size_t cap)
{
	uint8_t rnd[32];

	if (crypto_random(rnd, sizeof(rnd)) != 0)
		return -EIO;
	memcpy(dst, "whsec_", 6);
	if (b64_encode(dst + 6, cap - 6, rnd, sizeof(rnd)) < 0)
		return -ENOSPC;
	secure_zero(rnd, sizeof(rnd));
	return 0;
}

/* Applies in to w (validated); 0 or a filled err. */
static int
apply_input(struct service *s, const struct svc_webhook_input *in, struct webhook *w,
	    struct svc_error *err)
{
	int r = 0;

	if (in->has_url && (r = url_ok(s, in->url, err)) == 0)
		str_copy(w->url, sizeof(w->url), in->url);
	if (r == 0 && in->has_description) {
		if (strlen(in->description) >= sizeof(w->description))
			return svc_fail(err, SVC_INVALID, "description: longer than %zu bytes",
					sizeof(w->description) - 1);
		str_copy(w->description, sizeof(w->description), in->description);
	}
	if (r == 0 && in->has_events)
		r = events_set(in, w->events, sizeof(w->events), err);
	if (r == 0 && in->has_enabled && in->enabled && !w->enabled) {
		/* Back on: from the cursor, with a fresh retry window. */
		w->attempts = 0;
		w->next_at_ms = 0;
		w->failing_since = 0;
		w->disabled_why[0] = '\0';
	}
	if (r == 0 && in->has_enabled) {
		w->enabled = in->enabled ? 1 : 0;
		if (!w->enabled && w->disabled_why[0] == '\0')
			str_copy(w->disabled_why, sizeof(w->disabled_why), "disabled by an admin");
	}
	return r;
}

/* Ends an attempt's transaction: commits when r is 0, else (or when the commit fails) rolls
 * back and reports the store's error. */
static int
finish_tx(struct service *s, int r, struct svc_error *err)
{
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		return svc_store_fail(err, r, "webhook");
	}
	return 0;
}

static void
hook_detail(const struct webhook *w, char *buf, size_t cap)
{
	snprintf(buf, cap, "url=%s events=%s enabled=%d", w->url, w->events, w->enabled);
}

static int
create_once(struct service *s, const struct principal *p, struct webhook *w, struct svc_error *err)
{
	char detail[STORE_TEXT_MAX];
	size_t n = 0;
	struct webhook *all = calloc(HOOKS_MAX, sizeof(*all));
	int r = all ? s->st->ops->tx_begin(s->st) : -ENOMEM;

	if (r == 0)
		r = s->st->ops->webhook_list(s->st, all, HOOKS_MAX, &n);
	free(all);
	if (r == 0 && n >= HOOKS_MAX) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT, "at most %d webhook subscriptions", HOOKS_MAX);
	}
	if (r == 0)
		r = s->st->ops->webhook_insert(s->st, w);
	hook_detail(w, detail, sizeof(detail));
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "webhook.create", w->id, "ok",
				 detail);
	return finish_tx(s, r, err);
}

int
svc_webhook_create(struct service *s, const struct principal *p, const struct svc_webhook_input *in,
		   struct webhook *out, struct svc_error *err)
{
	char plain[sizeof(out->secret)];
	int r = svc_authorize(s, p, PERM_WEBHOOKS, err);

	if (r != 0)
		return r;
	memset(out, 0, sizeof(*out));
	if (!in->has_url || !in->has_events)
		return svc_fail(err, SVC_INVALID, "%s: required", in->has_url ? "events" : "url");
	out->enabled = 1;
	r = apply_input(s, in, out, err);
	if (r != 0)
		return r;
	if (svc_new_id(out->id, "wh_") != 0 || new_secret(plain, sizeof(plain)) != 0)
		return svc_fail(err, SVC_INTERNAL, "no randomness");
	if (svc_hook_seal(s, out, plain) != 0) {
		secure_zero(plain, sizeof(plain));
		return svc_fail(err, SVC_INTERNAL, "cannot seal the webhook secret");
	}
	str_copy(out->created_by, sizeof(out->created_by), p->id);
	out->created_at = out->updated_at = service_now_ms(s);
	SVC_TX_RETRY(s, r, create_once(s, p, out, err));
	/* The caller sees the secret once, in the clear; the store has only the sealed text. */
	str_copy(out->secret, sizeof(out->secret), r == 0 ? plain : "");
	secure_zero(plain, sizeof(plain));
	return r;
}

int
svc_webhook_list(struct service *s, const struct principal *p, struct webhook *out, size_t max,
		 size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_WEBHOOKS, err);

	if (r != 0)
		return r;
	r = s->st->ops->webhook_list(s->st, out, max, n);
	if (r != 0)
		return svc_store_fail(err, r, "webhooks");
	for (size_t i = 0; i < *n; i++)
		secure_zero(out[i].secret, sizeof(out[i].secret));
	return 0;
}

int
svc_webhook_get(struct service *s, const struct principal *p, const char *id, struct webhook *out,
		struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_WEBHOOKS, err);

	if (r != 0)
		return r;
	r = s->st->ops->webhook_get(s->st, id, 0, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no webhook with id %s", id);
	if (r != 0)
		return svc_store_fail(err, r, "webhook");
	secure_zero(out->secret, sizeof(out->secret));
	return 0;
}

/* One attempt of a change to a subscription: update (in), rotate (in NULL) or delete. */
enum hook_op { HOOK_UPDATE, HOOK_ROTATE, HOOK_DELETE };
static int
change_once(struct service *s, const struct principal *p, const char *id, enum hook_op op,
	    const struct svc_webhook_input *in, struct webhook *w, char *plain, size_t cap,
	    struct svc_error *err)
{
	static const char *const action[] = {"webhook.update", "webhook.rotate", "webhook.delete"};
	char detail[STORE_TEXT_MAX];
	int r = s->st->ops->tx_begin(s->st);

	if (r == 0)
		r = s->st->ops->webhook_get(s->st, id, 1, w);
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no webhook with id %s", id);
	}
	if (r == 0 && op == HOOK_UPDATE && apply_input(s, in, w, err) != 0) {
		s->st->ops->tx_rollback(s->st);
		return -EINVAL;
	}
	if (r == 0 && op == HOOK_ROTATE &&
	    (new_secret(plain, cap) != 0 || svc_hook_seal(s, w, plain) != 0))
		r = -EIO;
	w->updated_at = service_now_ms(s);
	if (r == 0)
		r = op == HOOK_DELETE ? s->st->ops->webhook_delete(s->st, id)
				      : s->st->ops->webhook_save(s->st, w);
	hook_detail(w, detail, sizeof(detail));
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, action[op], id, "ok",
				 op == HOOK_ROTATE ? "" : detail);
	return finish_tx(s, r, err);
}

static int
change(struct service *s, const struct principal *p, const char *id, enum hook_op op,
       const struct svc_webhook_input *in, struct webhook *out, struct svc_error *err)
{
	char plain[sizeof(out->secret)] = "";
	int r = svc_authorize(s, p, PERM_WEBHOOKS, err);

	if (r != 0)
		return r;
	SVC_TX_RETRY(s, r, change_once(s, p, id, op, in, out, plain, sizeof(plain), err));
	/* Rotate shows the new secret once, in the clear; nothing else shows the sealed text. */
	str_copy(out->secret, sizeof(out->secret), r == 0 && op == HOOK_ROTATE ? plain : "");
	secure_zero(plain, sizeof(plain));
	if (r == 0)
		svc_hookd_kick(s); /* re-enabled: deliver what waited */
	return r;
}

int
svc_webhook_update(struct service *s, const struct principal *p, const char *id,
		   const struct svc_webhook_input *in, struct webhook *out, struct svc_error *err)
{
	return change(s, p, id, HOOK_UPDATE, in, out, err);
}

int
svc_webhook_rotate(struct service *s, const struct principal *p, const char *id,
		   struct webhook *out, struct svc_error *err)
{
	return change(s, p, id, HOOK_ROTATE, NULL, out, err);
}

int
svc_webhook_delete(struct service *s, const struct principal *p, const char *id,
		   struct svc_error *err)
{
	struct webhook w;

	return change(s, p, id, HOOK_DELETE, NULL, &w, err);
}

int
svc_webhook_deliveries(struct service *s, const struct principal *p, const char *id,
		       int64_t before_id, size_t limit, struct webhook_delivery *out, size_t *n,
		       struct svc_error *err)
{
	struct webhook w;
	int r = svc_webhook_get(s, p, id, &w, err);

	if (r != 0)
		return r;
	r = s->st->ops->delivery_list(s->st, id, before_id, limit, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "webhook deliveries");
}

static int
redeliver_once(struct service *s, const struct principal *p, const char *id, int64_t did,
	       struct webhook_delivery *d, struct svc_error *err)
{
	struct webhook w;
	struct webhook_event e;
	char detail[64];
	int r = s->st->ops->tx_begin(s->st);

	if (r == 0)
		r = s->st->ops->webhook_get(s->st, id, 1, &w);
	if (r == 0)
		r = s->st->ops->delivery_get(s->st, did, d);
	if (r == 0 && strcmp(d->webhook_id, id) != 0)
		r = -ENOENT;
	if (r == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_NOT_FOUND, "no delivery %lld of webhook %s",
				(long long)did, id);
	}
	if (r == 0 && s->st->ops->event_get(s->st, d->event_seq, &e) == -ENOENT) {
		s->st->ops->tx_rollback(s->st);
		return svc_fail(err, SVC_CONFLICT, "event %s is no longer kept", d->event_id);
	}
	if (r == 0)
		r = s->st->ops->redeliver_add(s->st, id, d->event_seq);
	w.next_at_ms = 0; /* now, not at the end of a backoff */
	if (r == 0)
		r = s->st->ops->webhook_save(s->st, &w);
	snprintf(detail, sizeof(detail), "event=%s", d->event_id);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "webhook.redeliver", id, "ok",
				 detail);
	return finish_tx(s, r, err);
}

int
svc_webhook_redeliver(struct service *s, const struct principal *p, const char *id,
		      int64_t delivery_id, struct webhook_delivery *out, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_WEBHOOKS, err);

	if (r != 0)
		return r;
	SVC_TX_RETRY(s, r, redeliver_once(s, p, id, delivery_id, out, err));
	if (r == 0)
		svc_hookd_kick(s);
	return r;
}

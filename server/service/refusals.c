/*
 * Refused requests from callers who proved nothing (bad or missing device signatures, bad
 * enrollment tokens, bad API tokens) are counted per source address and kind, not written one
 * audit row each: the first refusal of a kind from a source in a window is audited at once, the
 * rest of that window as one row with the count when the window ends, so a flood of garbage
 * cannot grow the database without bound (and a full disk would stop every wipe). A source that
 * passes the limit in a window is answered 429 at once, before any signature is checked. The
 * table is bounded; sources beyond it share one "other sources" row.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

#define REFUSAL_SLOTS    1024
#define REFUSAL_WINDOW_S 60
#define OTHER_SOURCES    "other sources"

struct refusal {
	char source[48];
	char actor[STORE_ID_MAX];
	char action[24];
	char last_why[160];
	uint32_t count;   /* in this window */
	uint32_t pending; /* counted but not yet in the audit log */
};

struct svc_refusals {
	pthread_mutex_t lock;
	int64_t window_start;
	uint32_t limit; /* refusals per source and window before 429; 0: no limit */
	size_t n;
	struct refusal slot[REFUSAL_SLOTS];
};

int
svc_refusals_init(struct service *s, uint32_t limit_per_window)
{
	struct svc_refusals *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	t->limit = limit_per_window;
	t->window_start = svc_now_s(s);
	s->refusals = t;
	return 0;
}

/* The slot of (source, action), made when new; the shared overflow slot when full. */
static struct refusal *
slot_of(struct svc_refusals *t, const char *source, const char *action, int *fresh)
{
	*fresh = 0;
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->slot[i].source, source) == 0 &&
		    strcmp(t->slot[i].action, action) == 0)
			return &t->slot[i];
	if (t->n == REFUSAL_SLOTS - 1)
		source = OTHER_SOURCES; /* the last slot is shared by everyone else */
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->slot[i].source, source) == 0 &&
		    strcmp(t->slot[i].action, action) == 0)
			return &t->slot[i];
	*fresh = 1;
	str_copy(t->slot[t->n].source, sizeof(t->slot[0].source), source);
	str_copy(t->slot[t->n].action, sizeof(t->slot[0].action), action);
	return &t->slot[t->n++];
}

void
svc_refused(struct service *s, const char *source, const char *actor, const char *action,
	    const char *why)
{
	struct svc_refusals *t = s->refusals;
	struct refusal *r;
	char detail[STORE_TEXT_MAX];
	int fresh;

	if (source == NULL || source[0] == '\0')
		source = "?";
	pthread_mutex_lock(&t->lock);
	r = slot_of(t, source, action, &fresh);
	r->count++;
	str_copy(r->actor, sizeof(r->actor), actor && actor[0] ? actor : "anonymous");
	str_copy(r->last_why, sizeof(r->last_why), why);
	if (!fresh)
		r->pending++;
	pthread_mutex_unlock(&t->lock);
	if (fresh) { /* the first of its kind from this source in the window: on record now */
		snprintf(detail, sizeof(detail), "from %s: %s", source, why);
		svc_audit_event(s, actor && actor[0] ? actor : "anonymous", action, source,
				"denied", detail);
	}
}

int
svc_source_limited(struct service *s, const char *source)
{
	struct svc_refusals *t = s->refusals;
	uint32_t total = 0;

	if (t->limit == 0 || source == NULL)
		return 0;
	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->slot[i].source, source) == 0)
			total += t->slot[i].count;
	pthread_mutex_unlock(&t->lock);
	return total >= t->limit;
}

int
svc_source_check(struct service *s, const char *source, struct svc_error *err)
{
	if (!svc_source_limited(s, source))
		return 0;
	return svc_fail(err, SVC_RATE_LIMITED,
			"too many refused requests from this address; retry in a minute");
}

/*
 * Ends the window when it is over (or now, when force): one audit row per (source, kind) with
 * refusals not yet on record, all in one transaction. When that fails the counts stay and are
 * written at the next try; the window is only closed once they are.
 */
int
svc_refusals_flush(struct service *s, int force)
{
	struct svc_refusals *t = s->refusals;
	int64_t now = svc_now_s(s);
	char detail[STORE_TEXT_MAX];
	int r = 0;

	pthread_mutex_lock(&t->lock);
	if (!force && now - t->window_start < REFUSAL_WINDOW_S) {
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	for (size_t i = 0; r == 0 && i < t->n; i++)
		r = t->slot[i].pending > 0 ? 1 : 0;
	if (r == 1) {
		r = s->st->ops->tx_begin(s->st);
		for (size_t i = 0; r == 0 && i < t->n; i++) {
			const struct refusal *f = &t->slot[i];

			if (f->pending == 0)
				continue;
			snprintf(detail, sizeof(detail),
				 "%u more refused in %lld s from %s (%u in all); the last: %s",
				 f->pending, (long long)(now - t->window_start), f->source,
				 f->count, f->last_why);
			r = audit_append(s->st, service_now_ms(s), f->actor, f->action, f->source,
					 "denied", detail);
		}
		if (r == 0)
			r = s->st->ops->tx_commit(s->st);
		else
			s->st->ops->tx_rollback(s->st);
	}
	if (r == 0) {
		t->n = 0;
		t->window_start = now;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

void
svc_refusals_free(struct service *s)
{
	if (s->refusals == NULL)
		return;
	pthread_mutex_destroy(&s->refusals->lock);
	free(s->refusals);
	s->refusals = NULL;
}

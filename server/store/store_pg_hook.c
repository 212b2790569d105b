/*
 * The PostgreSQL backend's webhooks (migration 0017), the twin of store_sqlite_hook.c. Several
 * servers share these rows: an event's seq is taken by updating the one webhook_head row, which
 * stays locked until the appending transaction ends, so seqs commit in order and no cursor can
 * pass an event still to commit. A server delivers for a subscription only after claiming it
 * (FOR UPDATE SKIP LOCKED, then a lease in the row): one delivery at a time per subscription
 * across servers, and a lease that a dead server left runs out so another takes over.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"
#include "util.h"

#define S(st) ((struct pg_store *)(st))

#define HOOK_COLS                                                                                  \
	"id, url, description, secret, events, enabled, cursor, attempts, next_at, "               \
	"failing_since, lease_until, lease_owner, disabled_why, created_by, created_at, "          \
	"updated_at"
#define EVENT_COLS "seq, id, type, at_ms, payload"
#define DLV_COLS                                                                                   \
	"id, webhook_id, event_seq, event_id, event_type, attempt, manual, at_ms, status, "        \
	"latency_ms, error, ok"

static void
hook_row(const PGresult *r, int i, void *out)
{
	struct webhook *w = out;

	pg_col_text(r, i, 0, w->id, sizeof(w->id));
	pg_col_text(r, i, 1, w->url, sizeof(w->url));
	pg_col_text(r, i, 2, w->description, sizeof(w->description));
	pg_col_text(r, i, 3, w->secret, sizeof(w->secret));
	pg_col_text(r, i, 4, w->events, sizeof(w->events));
	w->enabled = (int)pg_col_int(r, i, 5);
	w->cursor = pg_col_int(r, i, 6);
	w->attempts = pg_col_int(r, i, 7);
	w->next_at_ms = pg_col_int(r, i, 8);
	w->failing_since = pg_col_int(r, i, 9);
	w->lease_until = pg_col_int(r, i, 10);
	pg_col_text(r, i, 11, w->lease_owner, sizeof(w->lease_owner));
	pg_col_text(r, i, 12, w->disabled_why, sizeof(w->disabled_why));
	pg_col_text(r, i, 13, w->created_by, sizeof(w->created_by));
	w->created_at = pg_col_int(r, i, 14);
	w->updated_at = pg_col_int(r, i, 15);
}

/* The mutable columns of w as $1..$14 (url .. updated_at, then id). */
static void
hook_args(struct pg_args *a, const struct webhook *w)
{
	pa_text(a, w->url);
	pa_text(a, w->description);
	pa_text(a, w->secret);
	pa_text(a, w->events);
	pa_int(a, w->enabled);
	pa_int(a, w->cursor);
	pa_int(a, w->attempts);
	pa_int(a, w->next_at_ms);
	pa_int(a, w->failing_since);
	pa_int(a, w->lease_until);
	pa_text(a, w->lease_owner);
	pa_text(a, w->disabled_why);
	pa_int(a, w->updated_at);
	pa_text(a, w->id);
}

int
pg_webhook_insert(struct store *st, struct webhook *w)
{
	struct pg_args a = {0};
	/* Waits for transactions appending events: the cursor starts after the ones they add. */
	int r = pg_scalar(S(st), "SELECT seq FROM webhook_head WHERE one = 1 FOR UPDATE", NULL,
			  &w->cursor, "webhook head");

	if (r != 0)
		return r;
	hook_args(&a, w);
	pa_text(&a, w->created_by);
	pa_int(&a, w->created_at);
	return pg_run(S(st),
		      "INSERT INTO webhooks (url, description, secret, events, enabled, cursor, "
		      "attempts, next_at, failing_since, lease_until, lease_owner, disabled_why, "
		      "updated_at, id, created_by, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,"
		      "$10,$11,$12,$13,$14,$15,$16)",
		      &a, NULL, "webhook insert");
}

int
pg_webhook_get(struct store *st, const char *id, int for_update, struct webhook *out)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_one(S(st),
		      for_update ? "SELECT " HOOK_COLS " FROM webhooks WHERE id = $1 FOR UPDATE"
				 : "SELECT " HOOK_COLS " FROM webhooks WHERE id = $1",
		      &a, out, hook_row, "webhook");
}

int
pg_webhook_list(struct store *st, struct webhook *out, size_t max, size_t *n)
{
	return pg_many(S(st), "SELECT " HOOK_COLS " FROM webhooks ORDER BY created_at, id", NULL,
		       out, sizeof(*out), max, n, hook_row, "webhooks");
}

int
pg_webhook_save(struct store *st, const struct webhook *w)
{
	struct pg_args a = {0};

	hook_args(&a, w);
	return pg_changed(S(st),
			  "UPDATE webhooks SET url = $1, description = $2, secret = $3, "
			  "events = $4, enabled = $5, cursor = $6, attempts = $7, next_at = $8, "
			  "failing_since = $9, lease_until = $10, lease_owner = $11, "
			  "disabled_why = $12, updated_at = $13 WHERE id = $14",
			  &a, "webhook save");
}

int
pg_webhook_delete(struct store *st, const char *id)
{
	struct pg_args a = {0};
	int r;

	pa_text(&a, id);
	r = pg_changed(S(st), "DELETE FROM webhooks WHERE id = $1", &a, "webhook delete");
	if (r == 0)
		r = pg_run(S(st), "DELETE FROM webhook_deliveries WHERE webhook_id = $1", &a, NULL,
			   "webhook delete");
	if (r == 0)
		r = pg_run(S(st), "DELETE FROM webhook_redeliveries WHERE webhook_id = $1", &a,
			   NULL, "webhook delete");
	return r;
}

/*
 * PostgreSQL array literals of the events' ids, times and payloads, so that a bulk's batch
 * is one INSERT rather than a round trip per event. Elements are quoted, with " and \
 * escaped; NULL when out of memory.
 */
static char *
array_of(const struct webhook_event *e, size_t n, int what)
{
	size_t cap = 3, o = 0;
	char *s;

	for (size_t i = 0; i < n; i++)
		cap += 2 * (what == 0   ? strlen(e[i].id)
			    : what == 2 ? strlen(e[i].payload)
					: 20) +
		       3;
	s = malloc(cap);
	if (s == NULL)
		return NULL;
	s[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		char num[24];
		const char *v = what == 0 ? e[i].id : what == 2 ? e[i].payload : num;

		snprintf(num, sizeof(num), "%lld", (long long)e[i].at_ms);
		if (i > 0)
			s[o++] = ',';
		s[o++] = '"';
		for (const char *p = v; *p; p++) {
			if (*p == '"' || *p == '\\')
				s[o++] = '\\';
			s[o++] = *p;
		}
		s[o++] = '"';
	}
	s[o++] = '}';
	s[o] = '\0';
	return s;
}

static int
insert_events(struct store *st, const struct webhook_event *e, size_t n)
{
	char *ids = array_of(e, n, 0), *ats = array_of(e, n, 1), *bodies = array_of(e, n, 2);
	struct pg_args a = {0};
	int r = -ENOMEM;

	if (ids != NULL && ats != NULL && bodies != NULL) {
		pa_int(&a, e[0].seq);
		pa_text(&a, e[0].type);
		pa_text(&a, ids);
		pa_text(&a, ats);
		pa_text(&a, bodies);
		r = pg_run(
			S(st),
			"INSERT INTO webhook_events (seq, id, type, at_ms, payload) SELECT "
			"$1::bigint + t.ord - 1, t.id, $2, t.at, t.payload FROM unnest($3::text[], "
			"$4::bigint[], $5::text[]) WITH ORDINALITY AS t(id, at, payload, ord)",
			&a, NULL, "webhook event insert");
	}
	free(ids);
	free(ats);
	free(bodies);
	return r;
}

int
pg_event_append(struct store *st, struct webhook_event *e, size_t n)
{
	struct pg_args a = {0};
	int64_t wanted = 0, seq = 0;
	int r;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].type, e[0].type) != 0)
			return -EINVAL;
	pa_text(&a, e[0].type);
	r = pg_scalar(S(st),
		      "SELECT EXISTS (SELECT 1 FROM webhooks WHERE "
		      "position(',' || $1 || ',' in events) > 0)::int",
		      &a, &wanted, "webhook wanted");
	if (r != 0 || !wanted)
		return r;
	a = (struct pg_args){0};
	pa_int(&a, (int64_t)n);
	r = pg_scalar(S(st),
		      "UPDATE webhook_head SET seq = seq + $1::bigint WHERE one = 1 RETURNING seq",
		      &a, &seq, "webhook head");
	for (size_t i = 0; i < n && r == 0; i++)
		e[i].seq = seq - (int64_t)n + 1 + (int64_t)i;
	return r == 0 ? insert_events(st, e, n) : r;
}

int
pg_webhook_claim(struct store *st, int64_t now_ms, int64_t lease_until, const char *owner,
		 struct webhook *out)
{
	struct pg_args a = {0};
	int r;

	pa_int(&a, now_ms);
	r = pg_one(
		S(st),
		"SELECT " HOOK_COLS " FROM webhooks w WHERE enabled = 1 AND next_at <= $1 AND "
		"lease_until <= $1 AND (EXISTS (SELECT 1 FROM webhook_redeliveries r WHERE "
		"r.webhook_id = w.id) OR EXISTS (SELECT 1 FROM webhook_events e WHERE e.seq > "
		"w.cursor AND position(',' || e.type || ',' in w.events) > 0)) ORDER BY next_at, "
		"lease_until LIMIT 1 FOR UPDATE SKIP LOCKED",
		&a, out, hook_row, "webhook claim");
	if (r != 0)
		return r;
	a = (struct pg_args){0};
	pa_int(&a, lease_until);
	pa_text(&a, owner);
	pa_text(&a, out->id);
	r = pg_changed(S(st),
		       "UPDATE webhooks SET lease_until = $1, lease_owner = $2 WHERE id = $3", &a,
		       "webhook lease");
	if (r == 0) {
		out->lease_until = lease_until;
		str_copy(out->lease_owner, sizeof(out->lease_owner), owner);
	}
	return r;
}

static void
event_row(const PGresult *r, int i, void *out)
{
	struct webhook_event *e = out;

	e->seq = pg_col_int(r, i, 0);
	pg_col_text(r, i, 1, e->id, sizeof(e->id));
	pg_col_text(r, i, 2, e->type, sizeof(e->type));
	e->at_ms = pg_col_int(r, i, 3);
	pg_col_text(r, i, 4, e->payload, sizeof(e->payload));
}

int
pg_event_next(struct store *st, int64_t after, const char *events, struct webhook_event *out)
{
	struct pg_args a = {0};

	pa_int(&a, after);
	pa_text(&a, events);
	return pg_one(S(st),
		      "SELECT " EVENT_COLS " FROM webhook_events WHERE seq > $1 AND "
		      "position(',' || type || ',' in $2) > 0 ORDER BY seq LIMIT 1",
		      &a, out, event_row, "webhook event");
}

int
pg_event_get(struct store *st, int64_t seq, struct webhook_event *out)
{
	struct pg_args a = {0};

	pa_int(&a, seq);
	return pg_one(S(st), "SELECT " EVENT_COLS " FROM webhook_events WHERE seq = $1", &a, out,
		      event_row, "webhook event");
}

int
pg_delivery_insert(struct store *st, struct webhook_delivery *d)
{
	struct pg_args a = {0};

	pa_text(&a, d->webhook_id);
	pa_int(&a, d->event_seq);
	pa_text(&a, d->event_id);
	pa_text(&a, d->event_type);
	pa_int(&a, d->attempt);
	pa_int(&a, d->manual);
	pa_int(&a, d->at_ms);
	pa_int(&a, d->status);
	pa_int(&a, d->latency_ms);
	pa_text(&a, d->error);
	pa_int(&a, d->ok);
	return pg_scalar(
		S(st),
		"INSERT INTO webhook_deliveries (webhook_id, event_seq, event_id, "
		"event_type, attempt, manual, at_ms, status, latency_ms, error, ok) VALUES "
		"($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11) RETURNING id",
		&a, &d->id, "webhook delivery insert");
}

static void
dlv_row(const PGresult *r, int i, void *out)
{
	struct webhook_delivery *d = out;

	d->id = pg_col_int(r, i, 0);
	pg_col_text(r, i, 1, d->webhook_id, sizeof(d->webhook_id));
	d->event_seq = pg_col_int(r, i, 2);
	pg_col_text(r, i, 3, d->event_id, sizeof(d->event_id));
	pg_col_text(r, i, 4, d->event_type, sizeof(d->event_type));
	d->attempt = pg_col_int(r, i, 5);
	d->manual = (int)pg_col_int(r, i, 6);
	d->at_ms = pg_col_int(r, i, 7);
	d->status = pg_col_int(r, i, 8);
	d->latency_ms = pg_col_int(r, i, 9);
	pg_col_text(r, i, 10, d->error, sizeof(d->error));
	d->ok = (int)pg_col_int(r, i, 11);
}

int
pg_delivery_list(struct store *st, const char *webhook_id, int64_t before_id, size_t limit,
		 struct webhook_delivery *out, size_t *n)
{
	struct pg_args a = {0};

	pa_text(&a, webhook_id);
	pa_int(&a, before_id);
	pa_int(&a, (int64_t)limit);
	return pg_many(S(st),
		       "SELECT " DLV_COLS " FROM webhook_deliveries WHERE webhook_id = $1 AND "
		       "($2::bigint = 0 OR id < $2::bigint) ORDER BY id DESC LIMIT $3",
		       &a, out, sizeof(*out), limit, n, dlv_row, "webhook deliveries");
}

int
pg_delivery_get(struct store *st, int64_t id, struct webhook_delivery *out)
{
	struct pg_args a = {0};

	pa_int(&a, id);
	return pg_one(S(st), "SELECT " DLV_COLS " FROM webhook_deliveries WHERE id = $1", &a, out,
		      dlv_row, "webhook delivery");
}

int
pg_redeliver_add(struct store *st, const char *webhook_id, int64_t seq)
{
	struct pg_args a = {0};

	pa_text(&a, webhook_id);
	pa_int(&a, seq);
	return pg_run(S(st),
		      "INSERT INTO webhook_redeliveries (webhook_id, event_seq) VALUES ($1, $2) "
		      "ON CONFLICT DO NOTHING",
		      &a, NULL, "webhook redelivery");
}

int
pg_redeliver_drop(struct store *st, const char *webhook_id, int64_t seq)
{
	struct pg_args a = {0};

	pa_text(&a, webhook_id);
	pa_int(&a, seq);
	return pg_run(S(st),
		      "DELETE FROM webhook_redeliveries WHERE webhook_id = $1 AND event_seq = $2",
		      &a, NULL, "webhook redelivery");
}

int
pg_redeliver_next(struct store *st, const char *webhook_id, int64_t *seq)
{
	struct pg_args a = {0};

	pa_text(&a, webhook_id);
	return pg_scalar(S(st),
			 "SELECT event_seq FROM webhook_redeliveries WHERE webhook_id = $1 "
			 "ORDER BY event_seq LIMIT 1",
			 &a, seq, "webhook redelivery");
}

int
pg_event_prune(struct store *st, int64_t before_ms)
{
	struct pg_args a = {0};
	int r;

	pa_int(&a, before_ms);
	r = pg_run(S(st),
		   "DELETE FROM webhook_events WHERE at_ms < $1 AND seq <= (SELECT "
		   "coalesce(min(cursor), (SELECT seq FROM webhook_head)) FROM webhooks) AND seq "
		   "NOT IN (SELECT event_seq FROM webhook_redeliveries)",
		   &a, NULL, "webhook event prune");
	if (r == 0)
		r = pg_run(S(st), "DELETE FROM webhook_deliveries WHERE at_ms < $1", &a, NULL,
			   "webhook delivery prune");
	return r;
}

int
pg_webhook_skip(struct store *st)
{
	/* One statement: its snapshot sees the head and every event up to it, or neither. */
	return pg_run(S(st),
		      "UPDATE webhooks w SET cursor = h.seq FROM webhook_head h WHERE w.cursor < "
		      "h.seq AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.seq > w.cursor "
		      "AND e.seq <= h.seq AND position(',' || e.type || ',' in w.events) > 0)",
		      NULL, NULL, "webhook skip");
}

/*
 * The SQLite backend's webhooks (migration 0017): subscriptions, the event outbox, the delivery
 * log and manual redeliveries. SQLite's one writer at a time already orders the outbox: an
 * event's seq is the head plus one, taken and written under the writer lock, so seqs commit in
 * order. The PostgreSQL twin is store_pg_hook.c.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"
#include "util.h"

#define S(st) ((struct sq_store *)(st))

#define HOOK_COLS                                                                                  \
	"id, url, description, secret, events, enabled, cursor, attempts, next_at, "               \
	"failing_since, lease_until, lease_owner, disabled_why, created_by, created_at, "          \
	"updated_at"
#define EVENT_COLS "seq, id, type, at_ms, payload"
#define DLV_COLS                                                                                   \
	"id, webhook_id, event_seq, event_id, event_type, attempt, manual, at_ms, status, "        \
	"latency_ms, error, ok"

static void
hook_row(sqlite3_stmt *q, struct webhook *w)
{
	sq_col_text(q, 0, w->id, sizeof(w->id));
	sq_col_text(q, 1, w->url, sizeof(w->url));
	sq_col_text(q, 2, w->description, sizeof(w->description));
	sq_col_text(q, 3, w->secret, sizeof(w->secret));
	sq_col_text(q, 4, w->events, sizeof(w->events));
	w->enabled = sqlite3_column_int(q, 5);
	w->cursor = sqlite3_column_int64(q, 6);
	w->attempts = sqlite3_column_int64(q, 7);
	w->next_at_ms = sqlite3_column_int64(q, 8);
	w->failing_since = sqlite3_column_int64(q, 9);
	w->lease_until = sqlite3_column_int64(q, 10);
	sq_col_text(q, 11, w->lease_owner, sizeof(w->lease_owner));
	sq_col_text(q, 12, w->disabled_why, sizeof(w->disabled_why));
	sq_col_text(q, 13, w->created_by, sizeof(w->created_by));
	w->created_at = sqlite3_column_int64(q, 14);
	w->updated_at = sqlite3_column_int64(q, 15);
}

/* Binds the mutable columns of w from parameter 1 on (url .. updated_at, without created_*). */
static void
bind_hook(sqlite3_stmt *q, const struct webhook *w)
{
	sqlite3_bind_text(q, 1, w->url, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, w->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, w->secret, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, w->events, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 5, w->enabled);
	sqlite3_bind_int64(q, 6, w->cursor);
	sqlite3_bind_int64(q, 7, w->attempts);
	sqlite3_bind_int64(q, 8, w->next_at_ms);
	sqlite3_bind_int64(q, 9, w->failing_since);
	sqlite3_bind_int64(q, 10, w->lease_until);
	sqlite3_bind_text(q, 11, w->lease_owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 12, w->disabled_why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 13, w->updated_at);
	sqlite3_bind_text(q, 14, w->id, -1, SQLITE_STATIC);
}

static int
head_seq(struct store *st, int64_t *seq)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_HOOK_HEAD, "SELECT seq FROM webhook_head WHERE one = 1");

	return q == NULL ? -EIO : sq_int64(S(st), q, seq, "webhook head");
}

int
sq_webhook_insert(struct store *st, struct webhook *w)
{
	sqlite3_stmt *q;
	int r = head_seq(st, &w->cursor);

	if (r != 0)
		return r;
	q = sq_stmt(
		S(st), SQ_HOOK_INSERT,
		"INSERT INTO webhooks (url, description, secret, events, enabled, cursor, "
		"attempts, next_at, failing_since, lease_until, lease_owner, disabled_why, "
		"updated_at, id, created_by, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	if (q == NULL)
		return -EIO;
	bind_hook(q, w);
	sqlite3_bind_text(q, 15, w->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 16, w->created_at);
	return sq_exec_stmt(S(st), q, "webhook insert");
}

int
sq_webhook_get(struct store *st, const char *id, int for_update, struct webhook *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_HOOK_GET, "SELECT " HOOK_COLS " FROM webhooks WHERE id = ?");

	(void)for_update; /* the writer lock holds the row already */
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)hook_row, "webhook");
}

int
sq_webhook_list(struct store *st, struct webhook *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_HOOK_LIST,
				  "SELECT " HOOK_COLS " FROM webhooks ORDER BY created_at, id");

	if (q == NULL)
		return -EIO;
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)hook_row, "webhooks");
}

int
sq_webhook_save(struct store *st, const struct webhook *w)
{
	sqlite3_stmt *q = sq_stmt(
		S(st), SQ_HOOK_SAVE,
		"UPDATE webhooks SET url = ?1, description = ?2, secret = ?3, events = ?4, "
		"enabled = ?5, cursor = ?6, attempts = ?7, next_at = ?8, failing_since = ?9, "
		"lease_until = ?10, lease_owner = ?11, disabled_why = ?12, updated_at = ?13 "
		"WHERE id = ?14");

	if (q == NULL)
		return -EIO;
	bind_hook(q, w);
	return sq_exec_changed(S(st), q, "webhook save");
}

/* Runs one statement of a webhook's delete with its id bound. */
static int
delete_step(struct store *st, int idx, const char *sql, const char *id, int must_change)
{
	sqlite3_stmt *q = sq_stmt(S(st), idx, sql);

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return must_change ? sq_exec_changed(S(st), q, "webhook delete")
			   : sq_exec_stmt(S(st), q, "webhook delete");
}

int
sq_webhook_delete(struct store *st, const char *id)
{
	int r = delete_step(st, SQ_HOOK_DEL1, "DELETE FROM webhooks WHERE id = ?", id, 1);

	if (r == 0)
		r = delete_step(st, SQ_HOOK_DEL2,
				"DELETE FROM webhook_deliveries WHERE webhook_id = ?", id, 0);
	if (r == 0)
		r = delete_step(st, SQ_HOOK_DEL3,
				"DELETE FROM webhook_redeliveries WHERE webhook_id = ?", id, 0);
	return r;
}

int
sq_event_append(struct store *st, struct webhook_event *e, size_t n)
{
	sqlite3_stmt *q;
	int64_t wanted = 0, seq;
	int r;

	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(e[i].type, e[0].type) != 0)
			return -EINVAL;
	q = sq_stmt(
		S(st), SQ_HOOK_WANTED,
		"SELECT EXISTS (SELECT 1 FROM webhooks WHERE instr(events, ',' || ? || ',') > 0)");
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, e[0].type, -1, SQLITE_STATIC);
	r = sq_int64(S(st), q, &wanted, "webhook wanted");
	if (r != 0 || !wanted)
		return r;
	q = sq_stmt(S(st), SQ_HOOK_BUMP,
		    "UPDATE webhook_head SET seq = seq + ? WHERE one = 1 RETURNING seq");
	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)n);
	r = sq_int64(S(st), q, &seq, "webhook head");
	if (r != 0)
		return r;
	q = sq_stmt(
		S(st), SQ_HOOK_EVENT_INSERT,
		"INSERT INTO webhook_events (seq, id, type, at_ms, payload) VALUES (?,?,?,?,?)");
	if (q == NULL)
		return -EIO;
	for (size_t i = 0; i < n && r == 0; i++) {
		e[i].seq = seq - (int64_t)n + 1 + (int64_t)i;
		sqlite3_bind_int64(q, 1, e[i].seq);
		sqlite3_bind_text(q, 2, e[i].id, -1, SQLITE_STATIC);
		sqlite3_bind_text(q, 3, e[i].type, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 4, e[i].at_ms);
		sqlite3_bind_text(q, 5, e[i].payload, -1, SQLITE_STATIC);
		r = sq_exec_stmt(S(st), q, "webhook event insert");
	}
	return r;
}

int
sq_webhook_claim(struct store *st, int64_t now_ms, int64_t lease_until, const char *owner,
		 struct webhook *out)
{
	sqlite3_stmt *q = sq_stmt(
		S(st), SQ_HOOK_CLAIM,
		"SELECT " HOOK_COLS " FROM webhooks w WHERE enabled = 1 AND next_at <= ?1 AND "
		"lease_until <= ?1 AND (EXISTS (SELECT 1 FROM webhook_redeliveries r WHERE "
		"r.webhook_id = w.id) OR EXISTS (SELECT 1 FROM webhook_events e WHERE e.seq > "
		"w.cursor AND instr(w.events, ',' || e.type || ',') > 0)) ORDER BY next_at, "
		"lease_until LIMIT 1");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now_ms);
	r = sq_one(S(st), q, out, (sq_row_fn)hook_row, "webhook claim");
	if (r != 0)
		return r;
	q = sq_stmt(S(st), SQ_HOOK_LEASE,
		    "UPDATE webhooks SET lease_until = ?, lease_owner = ? WHERE id = ?");
	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, lease_until);
	sqlite3_bind_text(q, 2, owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, out->id, -1, SQLITE_STATIC);
	r = sq_exec_changed(S(st), q, "webhook lease");
	if (r == 0) {
		out->lease_until = lease_until;
		str_copy(out->lease_owner, sizeof(out->lease_owner), owner);
	}
	return r;
}

static void
event_row(sqlite3_stmt *q, struct webhook_event *e)
{
	e->seq = sqlite3_column_int64(q, 0);
	sq_col_text(q, 1, e->id, sizeof(e->id));
	sq_col_text(q, 2, e->type, sizeof(e->type));
	e->at_ms = sqlite3_column_int64(q, 3);
	sq_col_text(q, 4, e->payload, sizeof(e->payload));
}

int
sq_event_next(struct store *st, int64_t after, const char *events, struct webhook_event *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_HOOK_EVENT_NEXT,
				  "SELECT " EVENT_COLS " FROM webhook_events WHERE seq > ? AND "
				  "instr(?, ',' || type || ',') > 0 ORDER BY seq LIMIT 1");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, after);
	sqlite3_bind_text(q, 2, events, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)event_row, "webhook event");
}

int
sq_event_get(struct store *st, int64_t seq, struct webhook_event *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_HOOK_EVENT_GET,
				  "SELECT " EVENT_COLS " FROM webhook_events WHERE seq = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, seq);
	return sq_one(S(st), q, out, (sq_row_fn)event_row, "webhook event");
}

int
sq_delivery_insert(struct store *st, struct webhook_delivery *d)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_HOOK_DLV_INSERT,
			"INSERT INTO webhook_deliveries (webhook_id, event_seq, event_id, "
			"event_type, attempt, manual, at_ms, status, latency_ms, error, ok) "
			"VALUES (?,?,?,?,?,?,?,?,?,?,?)");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, d->webhook_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, d->event_seq);
	sqlite3_bind_text(q, 3, d->event_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, d->event_type, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, d->attempt);
	sqlite3_bind_int(q, 6, d->manual);
	sqlite3_bind_int64(q, 7, d->at_ms);
	sqlite3_bind_int64(q, 8, d->status);
	sqlite3_bind_int64(q, 9, d->latency_ms);
	sqlite3_bind_text(q, 10, d->error, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 11, d->ok);
	r = sq_exec_stmt(S(st), q, "webhook delivery insert");
	if (r == 0)
		d->id = sqlite3_last_insert_rowid(sqlite3_db_handle(q));
	return r;
}

static void
dlv_row(sqlite3_stmt *q, struct webhook_delivery *d)
{
	d->id = sqlite3_column_int64(q, 0);
	sq_col_text(q, 1, d->webhook_id, sizeof(d->webhook_id));
	d->event_seq = sqlite3_column_int64(q, 2);
	sq_col_text(q, 3, d->event_id, sizeof(d->event_id));
	sq_col_text(q, 4, d->event_type, sizeof(d->event_type));
	d->attempt = sqlite3_column_int64(q, 5);
	d->manual = sqlite3_column_int(q, 6);
	d->at_ms = sqlite3_column_int64(q, 7);
	d->status = sqlite3_column_int64(q, 8);
	d->latency_ms = sqlite3_column_int64(q, 9);
	sq_col_text(q, 10, d->error, sizeof(d->error));
	d->ok = sqlite3_column_int(q, 11);
}

int
sq_delivery_list(struct store *st, const char *webhook_id, int64_t before_id, size_t limit,
		 struct webhook_delivery *out, size_t *n)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_HOOK_DLV_LIST,
			"SELECT " DLV_COLS " FROM webhook_deliveries WHERE webhook_id = ? "
			"AND (? = 0 OR id < ?) ORDER BY id DESC LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, webhook_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, before_id);
	sqlite3_bind_int64(q, 3, before_id);
	sqlite3_bind_int64(q, 4, (int64_t)limit);
	return sq_many(S(st), q, out, sizeof(*out), limit, n, (sq_row_fn)dlv_row,
		       "webhook deliveries");
}

int
sq_delivery_get(struct store *st, int64_t id, struct webhook_delivery *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_HOOK_DLV_GET,
				  "SELECT " DLV_COLS " FROM webhook_deliveries WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, id);
	return sq_one(S(st), q, out, (sq_row_fn)dlv_row, "webhook delivery");
}

/* Runs a redelivery statement with (webhook_id, seq) bound. */
static int
redo_step(struct store *st, int idx, const char *sql, const char *webhook_id, int64_t seq)
{
	sqlite3_stmt *q = sq_stmt(S(st), idx, sql);

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, webhook_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, seq);
	return sq_exec_stmt(S(st), q, "webhook redelivery");
}

int
sq_redeliver_add(struct store *st, const char *webhook_id, int64_t seq)
{
	return redo_step(st, SQ_HOOK_REDO_ADD,
			 "INSERT OR IGNORE INTO webhook_redeliveries (webhook_id, event_seq) "
			 "VALUES (?, ?)",
			 webhook_id, seq);
}

int
sq_redeliver_drop(struct store *st, const char *webhook_id, int64_t seq)
{
	return redo_step(st, SQ_HOOK_REDO_DROP,
			 "DELETE FROM webhook_redeliveries WHERE webhook_id = ? AND event_seq = ?",
			 webhook_id, seq);
}

int
sq_redeliver_next(struct store *st, const char *webhook_id, int64_t *seq)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_HOOK_REDO_NEXT,
				  "SELECT event_seq FROM webhook_redeliveries WHERE webhook_id = ? "
				  "ORDER BY event_seq LIMIT 1");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, webhook_id, -1, SQLITE_STATIC);
	return sq_int64(S(st), q, seq, "webhook redelivery");
}

int
sq_event_prune(struct store *st, int64_t before_ms)
{
	sqlite3_stmt *q = sq_stmt(
		S(st), SQ_HOOK_PRUNE_EV,
		"DELETE FROM webhook_events WHERE at_ms < ?1 AND seq <= (SELECT "
		"coalesce(min(cursor), "
		"(SELECT seq FROM webhook_head)) FROM webhooks) AND seq NOT IN (SELECT event_seq "
		"FROM webhook_redeliveries)");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, before_ms);
	r = sq_exec_stmt(S(st), q, "webhook event prune");
	if (r != 0)
		return r;
	q = sq_stmt(S(st), SQ_HOOK_PRUNE_DLV, "DELETE FROM webhook_deliveries WHERE at_ms < ?");
	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, before_ms);
	return sq_exec_stmt(S(st), q, "webhook delivery prune");
}

int
sq_webhook_skip(struct store *st)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_HOOK_SKIP,
			"UPDATE webhooks SET cursor = (SELECT seq FROM webhook_head) WHERE cursor "
			"< (SELECT "
			"seq FROM webhook_head) AND NOT EXISTS (SELECT 1 FROM webhook_events e "
			"WHERE e.seq > "
			"webhooks.cursor AND instr(webhooks.events, ',' || e.type || ',') > 0)");

	return q == NULL ? -EIO : sq_exec_stmt(S(st), q, "webhook skip");
}

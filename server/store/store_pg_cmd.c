/*
 * The PostgreSQL backend's command queue, audit log and audit checkpoints. A command's
 * idempotency key is unique per creator (a partial unique index), so two servers taking the
 * same key race to one row and the loser gets -EEXIST. The audit chain is appended by the
 * audit module as "read the head, hash, insert seq + 1": audit_last inside a transaction first
 * takes a transaction-scoped advisory lock on the head, so appends from several servers take
 * turns and the chain never forks (the primary key on seq is the backstop).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

#define COMMAND_COLS                                                                               \
	"rowid, id, device_id, type, status, reason, counter, ticket, created_by, "                \
	"idempotency_key, request_hash, created_at, expires_at, delivered_at, acknowledged_at, "   \
	"completed_at, result_detail, receipt, verified, verify_note, approval_id, approved_by"

/* Audit rows are walked in pages of this many, so no result holds the whole log. */
#define ITER_PAGE 500

const char pg_command_cols[] = COMMAND_COLS;

void
pg_command_row(const PGresult *r, int i, void *out)
{
	struct command *c = out;
	size_t rn = (size_t)PQgetlength(r, i, 17);

	c->rowid = pg_col_int(r, i, 0);
	pg_col_text(r, i, 1, c->id, sizeof(c->id));
	pg_col_text(r, i, 2, c->device_id, sizeof(c->device_id));
	pg_col_text(r, i, 3, c->type, sizeof(c->type));
	pg_col_text(r, i, 4, c->status, sizeof(c->status));
	pg_col_text(r, i, 5, c->reason, sizeof(c->reason));
	c->counter = pg_col_int(r, i, 6);
	pg_col_blob(r, i, 7, c->ticket, sizeof(c->ticket));
	pg_col_text(r, i, 8, c->created_by, sizeof(c->created_by));
	pg_col_text(r, i, 9, c->idempotency_key, sizeof(c->idempotency_key));
	pg_col_blob(r, i, 10, c->request_hash, sizeof(c->request_hash));
	c->created_at = pg_col_int(r, i, 11);
	c->expires_at = pg_col_int(r, i, 12);
	c->delivered_at = pg_col_int(r, i, 13);
	c->acknowledged_at = pg_col_int(r, i, 14);
	c->completed_at = pg_col_int(r, i, 15);
	pg_col_text(r, i, 16, c->result_detail, sizeof(c->result_detail));
	c->receipt_len = 0;
	if (!PQgetisnull(r, i, 17) && rn <= sizeof(c->receipt)) {
		memcpy(c->receipt, PQgetvalue(r, i, 17), rn);
		c->receipt_len = rn;
	}
	c->verified = (int)pg_col_int(r, i, 18);
	pg_col_text(r, i, 19, c->verify_note, sizeof(c->verify_note));
	pg_col_text(r, i, 20, c->approval_id, sizeof(c->approval_id));
	pg_col_text(r, i, 21, c->approved_by, sizeof(c->approved_by));
}

int
pg_command_insert(struct store *st, const struct command *c)
{
	struct pg_args a = {0};
	int idem = c->idempotency_key[0] != '\0';

	pa_text(&a, c->id);
	pa_text(&a, c->device_id);
	pa_text(&a, c->type);
	pa_text(&a, c->status);
	pa_text(&a, c->reason);
	pa_int(&a, c->counter);
	pa_blob(&a, c->ticket, sizeof(c->ticket));
	pa_text(&a, c->created_by);
	pa_text(&a, idem ? c->idempotency_key : NULL);
	pa_blob(&a, idem ? c->request_hash : NULL, sizeof(c->request_hash));
	pa_int(&a, c->created_at);
	pa_int(&a, c->expires_at);
	return pg_run(S(st),
		      "INSERT INTO commands (id, device_id, type, status, reason, counter, ticket, "
		      "created_by, idempotency_key, request_hash, created_at, expires_at) VALUES "
		      "($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12)",
		      &a, NULL, "command insert");
}

int
pg_command_get(struct store *st, const char *id, struct command *out)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_one(S(st), "SELECT " COMMAND_COLS " FROM commands WHERE id = $1", &a, out,
		      pg_command_row, "command get");
}

int
pg_command_by_idempotency(struct store *st, const char *created_by, const char *key,
			  struct command *out)
{
	struct pg_args a = {0};
	struct pg_conn *c = pg_conn_get(S(st));

	pa_text(&a, created_by);
	pa_text(&a, key);
	/*
	 * Inside a transaction the caller looks the key up to insert it when absent. The same
	 * request sent to two servers at once would then have both miss and one fail on the
	 * unique index; a lock on the key (taken first, before any row) makes the second wait
	 * for the first and then find its command: the replay answer, as on one server.
	 */
	if (c != NULL && c->in_tx) {
		int r = pg_run(
			S(st),
			"SELECT pg_advisory_xact_lock(1131177334, hashtext($1 || '/' || $2))", &a,
			NULL, "idempotency key lock");

		if (r != 0)
			return r;
	}
	return pg_one(S(st),
		      "SELECT " COMMAND_COLS " FROM commands WHERE created_by = $1 AND "
		      "idempotency_key = $2",
		      &a, out, pg_command_row, "command by idempotency key");
}

int
pg_command_list(struct store *st, const struct command_filter *f, struct command *out, size_t *n)
{
	struct pg_args a = {0};

	pa_int(&a, f->after);
	pa_text(&a, f->device_id);
	pa_text(&a, f->status);
	pa_int(&a, (int64_t)f->limit);
	return pg_many(S(st),
		       "SELECT " COMMAND_COLS " FROM commands WHERE rowid > $1 AND "
		       "($2::text IS NULL OR device_id = $2) AND ($3::text IS NULL OR status = $3) "
		       "ORDER BY rowid LIMIT $4",
		       &a, out, sizeof(*out), f->limit, n, pg_command_row, "command list");
}

int
pg_command_open(struct store *st, const char *device_id, struct command *out, size_t max, size_t *n)
{
	char lim[24];
	const char *v[] = {device_id, lim};
	PGresult *r;
	int e;

	/*
	 * Planned at each call, not prepared: a connection's generic plan, made while the table
	 * was small (a fresh deployment, or before a bulk queued 100,000 commands), scanned the
	 * whole table for each device until the next ANALYZE (1.4 ms a device in a bulk of 20,000).
	 */
	snprintf(lim, sizeof(lim), "%zu", max);
	*n = 0;
	e = pg_run_adhoc(S(st),
			 "SELECT " COMMAND_COLS " FROM commands WHERE device_id = $1 AND "
			 "status IN ('queued', 'delivered', 'acknowledged') ORDER BY counter LIMIT "
			 "$2::bigint",
			 2, NULL, v, NULL, NULL, &r, "open commands");
	if (e != 0)
		return e;
	pg_map_rows(r, out, sizeof(*out), max, n, pg_command_row);
	PQclear(r);
	return 0;
}

int
pg_command_update(struct store *st, const struct command *c, const char *from)
{
	struct pg_args a = {0}, l = {0};
	struct pg_conn *conn = pg_conn_get(S(st));
	struct command now;
	int r;

	/*
	 * The lock order puts a command's device before the command: a device's result (command
	 * first, then the device) and an admin's cancel (device first) would otherwise be able to
	 * wait on each other. Taking the device row here makes every command_update follow it.
	 */
	if (conn != NULL && conn->in_tx) {
		pa_text(&l, c->id);
		r = pg_run(S(st),
			   "SELECT 1 FROM devices WHERE id = (SELECT device_id FROM commands "
			   "WHERE id = $1) FOR UPDATE",
			   &l, NULL, "command's device lock");
		if (r != 0)
			return r;
	}

	pa_text(&a, c->id);
	pa_text(&a, c->status);
	pa_int(&a, c->delivered_at);
	pa_int(&a, c->acknowledged_at);
	pa_int(&a, c->completed_at);
	pa_text(&a, c->result_detail);
	pa_blob(&a, c->receipt_len > 0 ? c->receipt : NULL, c->receipt_len);
	pa_int(&a, c->verified);
	pa_text(&a, from);
	pa_text(&a, c->verify_note);
	/* Compare-and-set on status: a concurrent change from another server wins or loses whole. */
	r = pg_changed(S(st),
		       "UPDATE commands SET status = $2, delivered_at = $3, acknowledged_at = $4, "
		       "completed_at = $5, result_detail = $6, receipt = $7, verified = $8, "
		       "verify_note = $10 WHERE id = $1 AND status = $9",
		       &a, "command update");
	if (r == -ENOENT && pg_command_get(st, c->id, &now) == 0)
		r = -ESTALE;
	return r;
}

int
pg_command_expire(struct store *st, int64_t now, char (*devices)[STORE_ID_MAX], size_t max,
		  size_t *n)
{
	struct pg_args a = {0};

	/*
	 * Each command is taken with its device row (the lock order: device, then command), and
	 * SKIP LOCKED leaves a command or device another transaction holds right now to the next
	 * pass instead of waiting while holding locks.
	 */
	pa_int(&a, now);
	pa_int(&a, (int64_t)max);
	return pg_ids(S(st),
		      "UPDATE commands SET status = 'expired', completed_at = $1 WHERE id IN "
		      "(SELECT c.id FROM commands c JOIN devices d ON d.id = c.device_id WHERE "
		      "c.status IN ('queued', 'delivered', 'acknowledged') AND c.expires_at <= $1 "
		      "LIMIT $2 FOR UPDATE OF c, d SKIP LOCKED) RETURNING device_id",
		      &a, devices, max, n, "command expire");
}

int
pg_command_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n)
{
	return pg_counts(S(st), "SELECT status, count(*) FROM commands GROUP BY status ORDER BY 1",
			 out, max, n, "command counts");
}

/* ---- audit ---- */

#define AUDIT_COLS "seq, at_ms, actor, action, target, outcome, detail, prev_hash, hash"

const char pg_audit_cols[] = AUDIT_COLS;

void
pg_audit_row(const PGresult *r, int i, void *out)
{
	struct audit_entry *e = out;

	e->seq = pg_col_int(r, i, 0);
	e->at_ms = pg_col_int(r, i, 1);
	pg_col_text(r, i, 2, e->actor, sizeof(e->actor));
	pg_col_text(r, i, 3, e->action, sizeof(e->action));
	pg_col_text(r, i, 4, e->target, sizeof(e->target));
	pg_col_text(r, i, 5, e->outcome, sizeof(e->outcome));
	pg_col_text(r, i, 6, e->detail, sizeof(e->detail));
	pg_col_blob(r, i, 7, e->prev_hash, sizeof(e->prev_hash));
	pg_col_blob(r, i, 8, e->hash, sizeof(e->hash));
}

int
pg_audit_insert(struct store *st, struct audit_entry *e)
{
	struct pg_args a = {0};

	pa_int(&a, e->seq);
	pa_int(&a, e->at_ms);
	pa_text(&a, e->actor);
	pa_text(&a, e->action);
	pa_text(&a, e->target);
	pa_text(&a, e->outcome);
	pa_text(&a, e->detail);
	pa_blob(&a, e->prev_hash, sizeof(e->prev_hash));
	pa_blob(&a, e->hash, sizeof(e->hash));
	return pg_run(S(st),
		      "INSERT INTO audit (seq, at_ms, actor, action, target, outcome, detail, "
		      "prev_hash, hash) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)",
		      &a, NULL, "audit insert");
}

int
pg_audit_last(struct store *st, struct audit_entry *out)
{
	struct pg_conn *c = pg_conn_get(S(st));

	if (c == NULL)
		return -ENOTCONN;
	/*
	 * Inside a transaction the head is about to be extended: hold it until commit, and read
	 * it in a statement that starts after the lock is ours (so it sees the last append).
	 */
	if (c->in_tx && !c->audit_locked) {
		struct pg_args l = {0};
		int r;

		pa_int(&l, PG_LOCK_AUDIT);
		r = pg_run(S(st), "SELECT pg_advisory_xact_lock($1)", &l, NULL, "audit head lock");
		if (r != 0)
			return r;
		c->audit_locked = 1;
	}
	return pg_one(S(st), "SELECT " AUDIT_COLS " FROM audit ORDER BY seq DESC LIMIT 1", NULL,
		      out, pg_audit_row, "audit last");
}

int
pg_audit_get(struct store *st, int64_t seq, struct audit_entry *out)
{
	struct pg_args a = {0};

	pa_int(&a, seq);
	return pg_one(S(st), "SELECT " AUDIT_COLS " FROM audit WHERE seq = $1", &a, out,
		      pg_audit_row, "audit get");
}

/*
 * Walks rows of sql (which takes "after" and a limit, and returns the key in column 0) from
 * key `after` on, a page per statement, at most max rows (0: to the end).
 */
static int
iter_pages_from(struct store *st, const char *sql, int64_t after, size_t max, pg_row_fn map,
		void *row, size_t size, int (*call)(void *fn, void *ctx, const void *row), void *fn,
		void *ctx, const char *what)
{
	size_t seen = 0;

	for (;;) {
		struct pg_args a = {0};
		size_t page = max != 0 && max - seen < ITER_PAGE ? max - seen : ITER_PAGE;
		PGresult *r;
		int e, rows;

		if (page == 0)
			return 0;
		pa_int(&a, after);
		pa_int(&a, (int64_t)page);
		e = pg_run(S(st), sql, &a, &r, what);
		if (e != 0)
			return e;
		rows = PQntuples(r);
		for (int i = 0; i < rows; i++) {
			memset(row, 0, size);
			map(r, i, row);
			after = pg_col_int(r, i, 0);
			e = call(fn, ctx, row);
			if (e != 0) {
				PQclear(r);
				return e;
			}
		}
		PQclear(r);
		seen += (size_t)rows;
		if ((size_t)rows < page)
			return 0;
	}
}

static int
iter_pages(struct store *st, const char *sql, pg_row_fn map, void *row, size_t size,
	   int (*call)(void *fn, void *ctx, const void *row), void *fn, void *ctx, const char *what)
{
	return iter_pages_from(st, sql, -1, 0, map, row, size, call, fn, ctx, what);
}

static int
call_audit(void *fn, void *ctx, const void *row)
{
	return ((audit_iter_fn)fn)(ctx, row);
}

int
pg_audit_iter(struct store *st, audit_iter_fn fn, void *ctx)
{
	struct audit_entry e;

	return iter_pages(
		st, "SELECT " AUDIT_COLS " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
		pg_audit_row, &e, sizeof(e), call_audit, (void *)fn, ctx, "audit iterate");
}

/* Entries after after_seq, at most limit, each page its own short statement (verify.c). */
int
pg_audit_iter_range(struct store *st, int64_t after_seq, size_t limit, audit_iter_fn fn, void *ctx)
{
	struct audit_entry e;

	if (limit == 0)
		return 0;
	return iter_pages_from(
		st, "SELECT " AUDIT_COLS " FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2",
		after_seq, limit, pg_audit_row, &e, sizeof(e), call_audit, (void *)fn, ctx,
		"audit range");
}

/* ---- audit checkpoints ---- */

#define CKPT_COLS "id, seq, at_ms, record"

static void
ckpt_row(const PGresult *r, int i, void *out)
{
	struct audit_ckpt_row *c = out;

	c->id = pg_col_int(r, i, 0);
	c->seq = pg_col_int(r, i, 1);
	c->at_ms = pg_col_int(r, i, 2);
	pg_col_blob(r, i, 3, c->record, sizeof(c->record));
}

int
pg_audit_ckpt_insert(struct store *st, const struct audit_ckpt_row *c)
{
	struct pg_args a = {0};

	pa_int(&a, c->seq);
	pa_int(&a, c->at_ms);
	pa_blob(&a, c->record, sizeof(c->record));
	return pg_run(S(st), "INSERT INTO audit_checkpoints (seq, at_ms, record) VALUES ($1,$2,$3)",
		      &a, NULL, "audit checkpoint insert");
}

int
pg_audit_ckpt_last(struct store *st, struct audit_ckpt_row *out)
{
	return pg_one(S(st), "SELECT " CKPT_COLS " FROM audit_checkpoints ORDER BY id DESC LIMIT 1",
		      NULL, out, ckpt_row, "audit checkpoint last");
}

static int
call_ckpt(void *fn, void *ctx, const void *row)
{
	return ((audit_ckpt_iter_fn)fn)(ctx, row);
}

int
pg_audit_ckpt_iter(struct store *st, audit_ckpt_iter_fn fn, void *ctx)
{
	struct audit_ckpt_row c;

	return iter_pages(st,
			  "SELECT " CKPT_COLS " FROM audit_checkpoints WHERE id > $1 ORDER BY id "
			  "LIMIT $2",
			  ckpt_row, &c, sizeof(c), call_ckpt, (void *)fn, ctx,
			  "audit checkpoint iterate");
}

int
pg_audit_ckpt_iter_after(struct store *st, int64_t after_id, audit_ckpt_iter_fn fn, void *ctx)
{
	struct audit_ckpt_row c;

	return iter_pages_from(st,
			       "SELECT " CKPT_COLS " FROM audit_checkpoints WHERE id > $1 ORDER BY "
			       "id LIMIT $2",
			       after_id, 0, ckpt_row, &c, sizeof(c), call_ckpt, (void *)fn, ctx,
			       "audit checkpoints after");
}

/*
 * The SQLite backend's command queue and audit log. Commands are rows keyed by id with a unique
 * (device, counter) pair, so a ticket counter can never be issued twice; the audit table is
 * append-only from here (no update or delete op exists). Hash computation is the audit module's
 * job: this file stores the hashes it is given.
 */
#include <errno.h>
#include <string.h>

#include "log.h"
#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

#define COMMAND_COLS                                                                               \
	"rowid, id, device_id, type, status, reason, counter, ticket, created_by, "                \
	"idempotency_key, request_hash, created_at, expires_at, delivered_at, acknowledged_at, "   \
	"completed_at, result_detail, receipt, verified, verify_note, approval_id, approved_by"

static void
command_row(sqlite3_stmt *q, struct command *c)
{
	const void *rc;
	size_t rn;

	c->rowid = sqlite3_column_int64(q, 0);
	sq_col_text(q, 1, c->id, sizeof(c->id));
	sq_col_text(q, 2, c->device_id, sizeof(c->device_id));
	sq_col_text(q, 3, c->type, sizeof(c->type));
	sq_col_text(q, 4, c->status, sizeof(c->status));
	sq_col_text(q, 5, c->reason, sizeof(c->reason));
	c->counter = sqlite3_column_int64(q, 6);
	sq_col_blob(q, 7, c->ticket, sizeof(c->ticket));
	sq_col_text(q, 8, c->created_by, sizeof(c->created_by));
	sq_col_text(q, 9, c->idempotency_key, sizeof(c->idempotency_key));
	sq_col_blob(q, 10, c->request_hash, sizeof(c->request_hash));
	c->created_at = sqlite3_column_int64(q, 11);
	c->expires_at = sqlite3_column_int64(q, 12);
	c->delivered_at = sqlite3_column_int64(q, 13);
	c->acknowledged_at = sqlite3_column_int64(q, 14);
	c->completed_at = sqlite3_column_int64(q, 15);
	sq_col_text(q, 16, c->result_detail, sizeof(c->result_detail));
	rc = sqlite3_column_blob(q, 17);
	rn = (size_t)sqlite3_column_bytes(q, 17);
	c->receipt_len = 0;
	if (rc != NULL && rn <= sizeof(c->receipt)) {
		memcpy(c->receipt, rc, rn);
		c->receipt_len = rn;
	}
	c->verified = sqlite3_column_int(q, 18);
	sq_col_text(q, 19, c->verify_note, sizeof(c->verify_note));
	sq_col_text(q, 20, c->approval_id, sizeof(c->approval_id));
	sq_col_text(q, 21, c->approved_by, sizeof(c->approved_by));
}

int
sq_command_insert(struct store *st, const struct command *c)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_CMD_INSERT,
			"INSERT INTO commands (id, device_id, type, status, reason, counter, "
			"ticket, created_by, idempotency_key, request_hash, created_at, "
			"expires_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, c->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, c->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, c->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, c->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, c->counter);
	sqlite3_bind_blob(q, 7, c->ticket, sizeof(c->ticket), SQLITE_STATIC);
	sqlite3_bind_text(q, 8, c->created_by, -1, SQLITE_STATIC);
	if (c->idempotency_key[0] != '\0') {
		sqlite3_bind_text(q, 9, c->idempotency_key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 10, c->request_hash, sizeof(c->request_hash), SQLITE_STATIC);
	}
	sqlite3_bind_int64(q, 11, c->created_at);
	sqlite3_bind_int64(q, 12, c->expires_at);
	return sq_exec_stmt(S(st), q, "command insert");
}

int
sq_command_get(struct store *st, const char *id, struct command *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_CMD_GET, "SELECT " COMMAND_COLS " FROM commands WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)command_row, "command get");
}

int
sq_command_by_idempotency(struct store *st, const char *created_by, const char *key,
			  struct command *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_CMD_BY_IDEM,
				  "SELECT " COMMAND_COLS " FROM commands WHERE created_by = ? AND "
				  "idempotency_key = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, created_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)command_row, "command by idempotency key");
}

int
sq_command_list(struct store *st, const struct command_filter *f, struct command *out, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_CMD_LIST,
				  "SELECT " COMMAND_COLS " FROM commands WHERE rowid > ?1 AND "
				  "(?2 IS NULL OR device_id = ?2) AND (?3 IS NULL OR status = ?3) "
				  "ORDER BY rowid LIMIT ?4");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, f->after);
	if (f->device_id)
		sqlite3_bind_text(q, 2, f->device_id, -1, SQLITE_STATIC);
	if (f->status)
		sqlite3_bind_text(q, 3, f->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (int64_t)f->limit);
	return sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)command_row,
		       "command list");
}

int
sq_command_open(struct store *st, const char *device_id, struct command *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_CMD_OPEN,
				  "SELECT " COMMAND_COLS " FROM commands WHERE device_id = ? AND "
				  "status IN ('queued', 'delivered', 'acknowledged') "
				  "ORDER BY counter LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)max);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)command_row,
		       "open commands");
}

int
sq_command_update(struct store *st, const struct command *c, const char *from)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_CMD_UPDATE,
				  "UPDATE commands SET status = ?2, delivered_at = ?3, "
				  "acknowledged_at = ?4, completed_at = ?5, result_detail = ?6, "
				  "receipt = ?7, verified = ?8, verify_note = ?10 "
				  "WHERE id = ?1 AND status = ?9");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, c->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, c->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, c->delivered_at);
	sqlite3_bind_int64(q, 4, c->acknowledged_at);
	sqlite3_bind_int64(q, 5, c->completed_at);
	sqlite3_bind_text(q, 6, c->result_detail, -1, SQLITE_STATIC);
	if (c->receipt_len > 0)
		sqlite3_bind_blob(q, 7, c->receipt, (int)c->receipt_len, SQLITE_STATIC);
	sqlite3_bind_int(q, 8, c->verified);
	sqlite3_bind_text(q, 9, from, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 10, c->verify_note, -1, SQLITE_STATIC);
	r = sq_exec_changed(S(st), q, "command update");
	if (r == -ENOENT) {
		struct command now;

		/* Tell a status that moved on from a row that is not there at all. */
		if (sq_command_get(st, c->id, &now) == 0)
			r = -ESTALE;
	}
	return r;
}

int
sq_command_expire(struct store *st, int64_t now, char (*devices)[STORE_ID_MAX], size_t max,
		  size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_CMD_EXPIRE,
				  "UPDATE commands SET status = 'expired', completed_at = ?1 "
				  "WHERE id IN (SELECT id FROM commands WHERE status IN "
				  "('queued', 'delivered', 'acknowledged') AND expires_at <= ?1 "
				  "LIMIT ?2) RETURNING device_id");
	size_t k = 0;
	int rc;

	*n = 0;
	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_int64(q, 2, (int64_t)max);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW && k < max)
		sq_col_text(q, 0, devices[k++], STORE_ID_MAX);
	sqlite3_reset(q);
	*n = k;
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sq_err(S(st), rc, "command expire");
}

int
sq_command_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_CMD_COUNT,
				  "SELECT status, count(*) FROM commands GROUP BY status");

	if (q == NULL)
		return -EIO;
	return sq_counts(S(st), q, out, max, n, "command counts");
}

/* ---- audit ---- */

#define AUDIT_COLS SQ_AUDIT_COLS

void
sq_audit_row(sqlite3_stmt *q, struct audit_entry *e)
{
	e->seq = sqlite3_column_int64(q, 0);
	e->at_ms = sqlite3_column_int64(q, 1);
	sq_col_text(q, 2, e->actor, sizeof(e->actor));
	sq_col_text(q, 3, e->action, sizeof(e->action));
	sq_col_text(q, 4, e->target, sizeof(e->target));
	sq_col_text(q, 5, e->outcome, sizeof(e->outcome));
	sq_col_text(q, 6, e->detail, sizeof(e->detail));
	sq_col_blob(q, 7, e->prev_hash, sizeof(e->prev_hash));
	sq_col_blob(q, 8, e->hash, sizeof(e->hash));
}

int
sq_audit_insert(struct store *st, struct audit_entry *e)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_AUDIT_INSERT,
				  "INSERT INTO audit (seq, at_ms, actor, action, target, outcome, "
				  "detail, prev_hash, hash) VALUES (?,?,?,?,?,?,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, e->seq);
	sqlite3_bind_int64(q, 2, e->at_ms);
	sqlite3_bind_text(q, 3, e->actor, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, e->action, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, e->target, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, e->outcome, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, e->detail, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 8, e->prev_hash, sizeof(e->prev_hash), SQLITE_STATIC);
	sqlite3_bind_blob(q, 9, e->hash, sizeof(e->hash), SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "audit insert");
}

int
sq_audit_last(struct store *st, struct audit_entry *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_AUDIT_LAST,
				  "SELECT " AUDIT_COLS " FROM audit ORDER BY seq DESC LIMIT 1");

	if (q == NULL)
		return -EIO;
	return sq_one(S(st), q, out, (sq_row_fn)sq_audit_row, "audit last");
}

int
sq_audit_get(struct store *st, int64_t seq, struct audit_entry *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_AUDIT_GET, "SELECT " AUDIT_COLS " FROM audit WHERE seq = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, seq);
	return sq_one(S(st), q, out, (sq_row_fn)sq_audit_row, "audit get");
}

/*
 * Hands each row of the prepared audit query q to fn until fn returns non-zero; the reset at
 * the end closes the statement's read transaction, so the next call reads anew.
 */
static int
audit_walk(struct store *st, sqlite3_stmt *q, audit_iter_fn fn, void *ctx, const char *what)
{
	struct audit_entry e;
	int rc, r = 0;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		memset(&e, 0, sizeof(e));
		sq_audit_row(q, &e);
		r = fn(ctx, &e);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(S(st), rc, what);
	sqlite3_reset(q);
	return r;
}

int
sq_audit_iter(struct store *st, audit_iter_fn fn, void *ctx)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_AUDIT_ITER, "SELECT " AUDIT_COLS " FROM audit ORDER BY seq");

	if (q == NULL)
		return -EIO;
	return audit_walk(st, q, fn, ctx, "audit iterate");
}

int
sq_audit_iter_range(struct store *st, int64_t after_seq, size_t limit, audit_iter_fn fn, void *ctx)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_AUDIT_RANGE,
			"SELECT " AUDIT_COLS " FROM audit WHERE seq > ? ORDER BY seq LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, after_seq);
	sqlite3_bind_int64(q, 2, (int64_t)limit);
	return audit_walk(st, q, fn, ctx, "audit range");
}

/* For store_sqlite_query.c: the columns and the mapping every command read here uses. */
const char sq_command_cols[] = COMMAND_COLS;

void
sq_command_row(sqlite3_stmt *q, struct command *c)
{
	command_row(q, c);
}

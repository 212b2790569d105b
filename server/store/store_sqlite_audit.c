/*
 * The SQLite backend's table of audit checkpoints: signed records of the audit chain's head,
 * stored exactly as the audit module made them. Like the audit table it is append-only from
 * here. Signing, checking and the checkpoint file outside the database are the audit module's
 * and the service's business; this file neither reads nor trusts the records' contents.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

#define CKPT_COLS "id, seq, at_ms, record"

static void
ckpt_row(sqlite3_stmt *q, struct audit_ckpt_row *c)
{
	c->id = sqlite3_column_int64(q, 0);
	c->seq = sqlite3_column_int64(q, 1);
	c->at_ms = sqlite3_column_int64(q, 2);
	sq_col_blob(q, 3, c->record, sizeof(c->record));
}

int
sq_audit_ckpt_insert(struct store *st, const struct audit_ckpt_row *c)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_CKPT_INSERT,
			"INSERT INTO audit_checkpoints (seq, at_ms, record) VALUES (?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, c->seq);
	sqlite3_bind_int64(q, 2, c->at_ms);
	sqlite3_bind_blob(q, 3, c->record, sizeof(c->record), SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "audit checkpoint insert");
}

int
sq_audit_ckpt_last(struct store *st, struct audit_ckpt_row *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_CKPT_LAST,
			"SELECT " CKPT_COLS " FROM audit_checkpoints ORDER BY id DESC LIMIT 1");

	if (q == NULL)
		return -EIO;
	return sq_one(S(st), q, out, (sq_row_fn)ckpt_row, "audit checkpoint last");
}

static int
ckpt_walk(struct sq_store *s, sqlite3_stmt *q, audit_ckpt_iter_fn fn, void *ctx)
{
	struct audit_ckpt_row c;
	int rc, r = 0;

	if (q == NULL)
		return -EIO;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		memset(&c, 0, sizeof(c));
		ckpt_row(q, &c);
		r = fn(ctx, &c);
		if (r != 0)
			break;
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sq_err(s, rc, "audit checkpoint iterate");
	sqlite3_reset(q);
	return r;
}

int
sq_audit_ckpt_iter(struct store *st, audit_ckpt_iter_fn fn, void *ctx)
{
	return ckpt_walk(S(st),
			 sq_stmt(S(st), SQ_CKPT_ITER,
				 "SELECT " CKPT_COLS " FROM audit_checkpoints ORDER BY id"),
			 fn, ctx);
}

int
sq_audit_ckpt_iter_after(struct store *st, int64_t after_id, audit_ckpt_iter_fn fn, void *ctx)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_CKPT_AFTER,
			"SELECT " CKPT_COLS " FROM audit_checkpoints WHERE id > ? ORDER BY id");

	if (q != NULL)
		sqlite3_bind_int64(q, 1, after_id);
	return ckpt_walk(S(st), q, fn, ctx);
}

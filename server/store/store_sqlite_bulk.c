/*
 * The SQLite backend's bulk operations by filter (migration 0014). One server owns a SQLite
 * file, and every write transaction holds the database's one writer lock (BEGIN IMMEDIATE), so
 * a claim inside one is already exclusive until it ends.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "store_sqlite_priv.h"
#include "util.h"

#define S(st) ((struct sq_store *)(st))

#define BULK_COLS                                                                                  \
	"id, type, reason, requested_by, idempotency_key, request_hash, filter, f_q, f_status, "   \
	"f_owner, f_policy, f_desired, f_reported, f_seen_before, f_compliant, f_reasons, "        \
	"enrolled_until, expected_count, cursor_key, cursor_rowid, queued, already_pending, "      \
	"skipped, state, created_at, updated_at, finished_at, ended_by, ended_why, f_labels"

static void
bulk_row(sqlite3_stmt *q, struct bulk_op *b)
{
	int i = 0;

	sq_col_text(q, i++, b->id, sizeof(b->id));
	sq_col_text(q, i++, b->type, sizeof(b->type));
	sq_col_text(q, i++, b->reason, sizeof(b->reason));
	sq_col_text(q, i++, b->requested_by, sizeof(b->requested_by));
	sq_col_text(q, i++, b->idempotency_key, sizeof(b->idempotency_key));
	sq_col_blob(q, i++, b->request_hash, sizeof(b->request_hash));
	sq_col_text(q, i++, b->filter, sizeof(b->filter));
	sq_col_text(q, i++, b->f_q, sizeof(b->f_q));
	sq_col_text(q, i++, b->f_status, sizeof(b->f_status));
	sq_col_text(q, i++, b->f_owner, sizeof(b->f_owner));
	sq_col_text(q, i++, b->f_policy, sizeof(b->f_policy));
	sq_col_text(q, i++, b->f_desired, sizeof(b->f_desired));
	sq_col_text(q, i++, b->f_reported, sizeof(b->f_reported));
	b->f_seen_before = sqlite3_column_int64(q, i++);
	b->f_compliant = sqlite3_column_int(q, i++);
	b->f_reasons = (unsigned)sqlite3_column_int64(q, i++);
	b->enrolled_until = sqlite3_column_int64(q, i++);
	b->expected_count = sqlite3_column_int64(q, i++);
	b->cursor_key = sqlite3_column_int64(q, i++);
	b->cursor_rowid = sqlite3_column_int64(q, i++);
	b->queued = sqlite3_column_int64(q, i++);
	b->already_pending = sqlite3_column_int64(q, i++);
	b->skipped = sqlite3_column_int64(q, i++);
	sq_col_text(q, i++, b->state, sizeof(b->state));
	b->created_at = sqlite3_column_int64(q, i++);
	b->updated_at = sqlite3_column_int64(q, i++);
	b->finished_at = sqlite3_column_int64(q, i++);
	sq_col_text(q, i++, b->ended_by, sizeof(b->ended_by));
	sq_col_text(q, i++, b->ended_why, sizeof(b->ended_why));
	sq_col_text(q, i, b->f_labels, sizeof(b->f_labels));
}

int
sq_bulk_insert(struct store *st, const struct bulk_op *b)
{
	sqlite3_stmt *q = sq_stmt(
		S(st), SQ_BULK_INSERT,
		"INSERT INTO bulk_ops (id, type, reason, requested_by, idempotency_key, "
		"request_hash, filter, f_q, f_status, f_owner, f_policy, f_desired, f_reported, "
		"f_seen_before, f_compliant, f_reasons, enrolled_until, expected_count, state, "
		"created_at, updated_at, f_labels) VALUES "
		"(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	const char *text[] = {b->id,       b->type,      b->reason,    b->requested_by, NULL,
			      NULL,        b->filter,    b->f_q,       b->f_status,     b->f_owner,
			      b->f_policy, b->f_desired, b->f_reported};

	if (q == NULL)
		return -EIO;
	for (int i = 0; i < (int)ARRAY_SIZE(text); i++)
		if (text[i] != NULL)
			sqlite3_bind_text(q, i + 1, text[i], -1, SQLITE_STATIC);
	if (b->idempotency_key[0] != '\0') {
		sqlite3_bind_text(q, 5, b->idempotency_key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 6, b->request_hash, sizeof(b->request_hash), SQLITE_STATIC);
	}
	sqlite3_bind_int64(q, 14, b->f_seen_before);
	sqlite3_bind_int64(q, 15, b->f_compliant);
	sqlite3_bind_int64(q, 16, b->f_reasons);
	sqlite3_bind_int64(q, 17, b->enrolled_until);
	sqlite3_bind_int64(q, 18, b->expected_count);
	sqlite3_bind_text(q, 19, strcmp(b->state, "awaiting") == 0 ? "awaiting" : "running", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(q, 20, b->created_at);
	sqlite3_bind_int64(q, 21, b->created_at);
	sqlite3_bind_text(q, 22, b->f_labels, -1, SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "bulk insert");
}

int
sq_bulk_get(struct store *st, const char *id, struct bulk_op *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_BULK_GET, "SELECT " BULK_COLS " FROM bulk_ops WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)bulk_row, "bulk get");
}

int
sq_bulk_by_idempotency(struct store *st, const char *requested_by, const char *key,
		       struct bulk_op *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_BULK_BY_IDEM,
				  "SELECT " BULK_COLS " FROM bulk_ops WHERE requested_by = ? AND "
				  "idempotency_key = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, requested_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)bulk_row, "bulk by idempotency key");
}

/* Newest first; the first page starts after (INT64_MAX, ""), before every row. */
int
sq_bulk_list(struct store *st, const struct bulk_list_filter *f, struct bulk_op *out, size_t *n)
{
	int first = f->after_id == NULL || f->after_id[0] == '\0';
	sqlite3_stmt *q =
		f->state != NULL
			? sq_stmt(S(st), SQ_BULK_LIST_STATE,
				  "SELECT " BULK_COLS " FROM bulk_ops WHERE state = ?3 AND "
				  "(created_at, id) < (?1, ?2) ORDER BY created_at DESC, id DESC "
				  "LIMIT ?4")
			: sq_stmt(S(st), SQ_BULK_LIST,
				  "SELECT " BULK_COLS
				  " FROM bulk_ops WHERE (created_at, id) < (?1, "
				  "?2) ORDER BY created_at DESC, id DESC LIMIT ?4");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, first ? INT64_MAX : f->after_created);
	sqlite3_bind_text(q, 2, first ? "" : f->after_id, -1, SQLITE_STATIC);
	if (f->state != NULL)
		sqlite3_bind_text(q, 3, f->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (int64_t)f->limit);
	return sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)bulk_row, "bulk list");
}

int
sq_bulk_stop(struct store *st, const char *id, const char *state, const char *by, const char *why,
	     int64_t now)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_BULK_STOP,
			"UPDATE bulk_ops SET state = ?, ended_by = ?, ended_why = ?, "
			"finished_at = ?, updated_at = ? WHERE id = ? AND state IN ('running', "
			"'awaiting')");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, state, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, why, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, now);
	sqlite3_bind_int64(q, 5, now);
	sqlite3_bind_text(q, 6, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "bulk stop");
}

int
sq_bulk_claim(struct store *st, struct bulk_op *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_BULK_CLAIM,
				  "SELECT " BULK_COLS " FROM bulk_ops WHERE state = 'running' "
				  "ORDER BY created_at, id LIMIT 1");

	if (q == NULL)
		return -EIO;
	return sq_one(S(st), q, out, (sq_row_fn)bulk_row, "bulk claim");
}

int
sq_bulk_progress(struct store *st, const struct bulk_op *b)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_BULK_PROGRESS,
			"UPDATE bulk_ops SET cursor_key = ?, cursor_rowid = ?, queued = ?, "
			"already_pending = ?, skipped = ?, state = ?, updated_at = ?, "
			"finished_at = ? WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, b->cursor_key);
	sqlite3_bind_int64(q, 2, b->cursor_rowid);
	sqlite3_bind_int64(q, 3, b->queued);
	sqlite3_bind_int64(q, 4, b->already_pending);
	sqlite3_bind_int64(q, 5, b->skipped);
	sqlite3_bind_text(q, 6, b->state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, b->updated_at);
	sqlite3_bind_int64(q, 8, b->finished_at);
	sqlite3_bind_text(q, 9, b->id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "bulk progress");
}

int
sq_bulk_release(struct store *st, const char *id, int64_t now)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_BULK_RELEASE,
			"UPDATE bulk_ops SET state = 'running', updated_at = ? WHERE id = ? "
			"AND state = 'awaiting'");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "bulk release");
}

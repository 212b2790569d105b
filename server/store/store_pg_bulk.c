/*
 * The PostgreSQL backend's bulk operations by filter (migration 0014). Several servers run a
 * bulk worker on one database: a claim locks the bulk's row FOR UPDATE SKIP LOCKED inside the
 * worker's batch transaction, so while one server works a batch the others pass that bulk by,
 * and the cursor each batch reads is the one the previous batch committed.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"
#include "util.h"

#define S(st) ((struct pg_store *)(st))

#define BULK_COLS                                                                                  \
	"id, type, reason, requested_by, idempotency_key, request_hash, filter, f_q, f_status, "   \
	"f_owner, f_policy, f_desired, f_reported, f_seen_before, f_compliant, f_reasons, "        \
	"enrolled_until, expected_count, cursor_key, cursor_rowid, queued, already_pending, "      \
	"skipped, state, created_at, updated_at, finished_at, ended_by, ended_why, f_labels"

static void
bulk_row(const PGresult *r, int row, void *out)
{
	struct bulk_op *b = out;
	int i = 0;

	pg_col_text(r, row, i++, b->id, sizeof(b->id));
	pg_col_text(r, row, i++, b->type, sizeof(b->type));
	pg_col_text(r, row, i++, b->reason, sizeof(b->reason));
	pg_col_text(r, row, i++, b->requested_by, sizeof(b->requested_by));
	pg_col_text(r, row, i++, b->idempotency_key, sizeof(b->idempotency_key));
	pg_col_blob(r, row, i++, b->request_hash, sizeof(b->request_hash));
	pg_col_text(r, row, i++, b->filter, sizeof(b->filter));
	pg_col_text(r, row, i++, b->f_q, sizeof(b->f_q));
	pg_col_text(r, row, i++, b->f_status, sizeof(b->f_status));
	pg_col_text(r, row, i++, b->f_owner, sizeof(b->f_owner));
	pg_col_text(r, row, i++, b->f_policy, sizeof(b->f_policy));
	pg_col_text(r, row, i++, b->f_desired, sizeof(b->f_desired));
	pg_col_text(r, row, i++, b->f_reported, sizeof(b->f_reported));
	b->f_seen_before = pg_col_int(r, row, i++);
	b->f_compliant = (int)pg_col_int(r, row, i++);
	b->f_reasons = (unsigned)pg_col_int(r, row, i++);
	b->enrolled_until = pg_col_int(r, row, i++);
	b->expected_count = pg_col_int(r, row, i++);
	b->cursor_key = pg_col_int(r, row, i++);
	b->cursor_rowid = pg_col_int(r, row, i++);
	b->queued = pg_col_int(r, row, i++);
	b->already_pending = pg_col_int(r, row, i++);
	b->skipped = pg_col_int(r, row, i++);
	pg_col_text(r, row, i++, b->state, sizeof(b->state));
	b->created_at = pg_col_int(r, row, i++);
	b->updated_at = pg_col_int(r, row, i++);
	b->finished_at = pg_col_int(r, row, i++);
	pg_col_text(r, row, i++, b->ended_by, sizeof(b->ended_by));
	pg_col_text(r, row, i++, b->ended_why, sizeof(b->ended_why));
	pg_col_text(r, row, i, b->f_labels, sizeof(b->f_labels));
}

int
pg_bulk_insert(struct store *st, const struct bulk_op *b)
{
	struct pg_args a = {0};
	int idem = b->idempotency_key[0] != '\0';

	pa_text(&a, b->id);
	pa_text(&a, b->type);
	pa_text(&a, b->reason);
	pa_text(&a, b->requested_by);
	pa_text(&a, idem ? b->idempotency_key : NULL);
	pa_blob(&a, idem ? b->request_hash : NULL, sizeof(b->request_hash));
	pa_text(&a, b->filter);
	pa_text(&a, b->f_q);
	pa_text(&a, b->f_status);
	pa_text(&a, b->f_owner);
	pa_text(&a, b->f_policy);
	pa_text(&a, b->f_desired);
	pa_text(&a, b->f_reported);
	pa_int(&a, b->f_seen_before);
	pa_int(&a, b->f_compliant);
	pa_int(&a, b->f_reasons);
	pa_int(&a, b->enrolled_until);
	pa_int(&a, b->expected_count);
	pa_int(&a, b->created_at);
	pa_text(&a, b->f_labels);
	pa_text(&a, strcmp(b->state, "awaiting") == 0 ? "awaiting" : "running");
	return pg_run(
		S(st),
		"INSERT INTO bulk_ops (id, type, reason, requested_by, idempotency_key, "
		"request_hash, filter, f_q, f_status, f_owner, f_policy, f_desired, "
		"f_reported, f_seen_before, f_compliant, f_reasons, enrolled_until, "
		"expected_count, state, created_at, updated_at, f_labels) VALUES ($1, $2, $3, "
		"$4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $21, "
		"$19, $19, $20)",
		&a, NULL, "bulk insert");
}

int
pg_bulk_get(struct store *st, const char *id, struct bulk_op *out)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_one(S(st), "SELECT " BULK_COLS " FROM bulk_ops WHERE id = $1", &a, out, bulk_row,
		      "bulk get");
}

int
pg_bulk_by_idempotency(struct store *st, const char *requested_by, const char *key,
		       struct bulk_op *out)
{
	struct pg_args a = {0};

	pa_text(&a, requested_by);
	pa_text(&a, key);
	return pg_one(S(st),
		      "SELECT " BULK_COLS " FROM bulk_ops WHERE requested_by = $1 AND "
		      "idempotency_key = $2",
		      &a, out, bulk_row, "bulk by idempotency key");
}

/* Newest first; the first page starts after (INT64_MAX, ""), before every row. */
int
pg_bulk_list(struct store *st, const struct bulk_list_filter *f, struct bulk_op *out, size_t *n)
{
	int first = f->after_id == NULL || f->after_id[0] == '\0';
	struct pg_args a = {0};

	pa_int(&a, first ? INT64_MAX : f->after_created);
	pa_text(&a, first ? "" : f->after_id);
	pa_int(&a, (int64_t)f->limit);
	if (f->state == NULL)
		return pg_many(S(st),
			       "SELECT " BULK_COLS " FROM bulk_ops WHERE (created_at, id) < ($1, "
			       "$2) ORDER BY created_at DESC, id DESC LIMIT $3",
			       &a, out, sizeof(*out), f->limit, n, bulk_row, "bulk list");
	pa_text(&a, f->state);
	return pg_many(S(st),
		       "SELECT " BULK_COLS " FROM bulk_ops WHERE state = $4 AND (created_at, id) "
		       "< ($1, $2) ORDER BY created_at DESC, id DESC LIMIT $3",
		       &a, out, sizeof(*out), f->limit, n, bulk_row, "bulk list");
}

/*
 * READ COMMITTED: while a batch holds the row (its claim's FOR UPDATE) the UPDATE waits, then
 * re-reads the row the batch committed, so a bulk the batch finished is no longer running.
 */
int
pg_bulk_stop(struct store *st, const char *id, const char *state, const char *by, const char *why,
	     int64_t now)
{
	struct pg_args a = {0};

	pa_text(&a, state);
	pa_text(&a, by);
	pa_text(&a, why);
	pa_int(&a, now);
	pa_text(&a, id);
	return pg_changed(
		S(st),
		"UPDATE bulk_ops SET state = $1, ended_by = $2, ended_why = $3, "
		"finished_at = $4, updated_at = $4 WHERE id = $5 AND state IN ('running', "
		"'awaiting')",
		&a, "bulk stop");
}

int
pg_bulk_claim(struct store *st, struct bulk_op *out)
{
	return pg_one(S(st),
		      "SELECT " BULK_COLS " FROM bulk_ops WHERE state = 'running' ORDER BY "
		      "created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
		      NULL, out, bulk_row, "bulk claim");
}

int
pg_bulk_progress(struct store *st, const struct bulk_op *b)
{
	struct pg_args a = {0};

	pa_int(&a, b->cursor_key);
	pa_int(&a, b->cursor_rowid);
	pa_int(&a, b->queued);
	pa_int(&a, b->already_pending);
	pa_int(&a, b->skipped);
	pa_text(&a, b->state);
	pa_int(&a, b->updated_at);
	pa_int(&a, b->finished_at);
	pa_text(&a, b->id);
	return pg_changed(S(st),
			  "UPDATE bulk_ops SET cursor_key = $1, cursor_rowid = $2, queued = $3, "
			  "already_pending = $4, skipped = $5, state = $6, updated_at = $7, "
			  "finished_at = $8 WHERE id = $9",
			  &a, "bulk progress");
}

int
pg_bulk_release(struct store *st, const char *id, int64_t now)
{
	struct pg_args a = {0};

	pa_int(&a, now);
	pa_text(&a, id);
	return pg_changed(
		S(st),
		"UPDATE bulk_ops SET state = 'running', updated_at = $1 WHERE id = $2 AND "
		"state = 'awaiting'",
		&a, "bulk release");
}

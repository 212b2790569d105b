/*
 * The PostgreSQL backend's approval requests of the two-person rule (migration 0019) and the
 * separate permissions of API tokens. Several servers may decide one request at once: a
 * decider reads the row FOR UPDATE (approval_get with for_update) before it locks the device,
 * so deciders of one request take turns, and approval_decide writes only a pending row, so
 * the second of two approvals finds it decided and queues nothing.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"
#include "util.h"

#define S(st) ((struct pg_store *)(st))

#define APPROVAL_COLS                                                                              \
	"id, kind, type, device_id, device_count, reason, command_ttl_s, requested_by, "           \
	"requester_person, status, created_at, expires_at, decided_by, decided_person, "           \
	"decided_at, note, command_id, bulk_id, created_ms, device_ids"

/* Maps a row; device_ids only into a caller's buffer (pg_map_rows zeroes slots: NULL). */
static void
approval_row(const PGresult *r, int row, void *out)
{
	struct approval *a = out;
	int i = 0;

	pg_col_text(r, row, i++, a->id, sizeof(a->id));
	pg_col_text(r, row, i++, a->kind, sizeof(a->kind));
	pg_col_text(r, row, i++, a->type, sizeof(a->type));
	pg_col_text(r, row, i++, a->device_id, sizeof(a->device_id));
	a->device_count = pg_col_int(r, row, i++);
	pg_col_text(r, row, i++, a->reason, sizeof(a->reason));
	a->command_ttl_s = pg_col_int(r, row, i++);
	pg_col_text(r, row, i++, a->requested_by, sizeof(a->requested_by));
	pg_col_text(r, row, i++, a->requester_person, sizeof(a->requester_person));
	pg_col_text(r, row, i++, a->status, sizeof(a->status));
	a->created_at = pg_col_int(r, row, i++);
	a->expires_at = pg_col_int(r, row, i++);
	pg_col_text(r, row, i++, a->decided_by, sizeof(a->decided_by));
	pg_col_text(r, row, i++, a->decided_person, sizeof(a->decided_person));
	a->decided_at = pg_col_int(r, row, i++);
	pg_col_text(r, row, i++, a->note, sizeof(a->note));
	pg_col_text(r, row, i++, a->command_id, sizeof(a->command_id));
	pg_col_text(r, row, i++, a->bulk_id, sizeof(a->bulk_id));
	a->created_ms = pg_col_int(r, row, i++);
	if (a->device_ids != NULL)
		pg_col_text(r, row, i, a->device_ids, APPROVAL_IDS_MAX);
}

int
pg_approval_insert(struct store *st, const struct approval *a)
{
	struct pg_args g = {0};

	pa_text(&g, a->id);
	pa_text(&g, a->kind);
	pa_text(&g, a->type);
	pa_text(&g, a->device_id);
	pa_text(&g, a->device_ids ? a->device_ids : "");
	pa_int(&g, a->device_count);
	pa_text(&g, a->reason);
	pa_int(&g, a->command_ttl_s);
	pa_text(&g, a->requested_by);
	pa_text(&g, a->requester_person);
	pa_text(&g, a->status);
	pa_int(&g, a->created_at);
	pa_int(&g, a->expires_at);
	pa_text(&g, a->bulk_id);
	pa_int(&g, a->created_ms);
	return pg_run(
		S(st),
		"INSERT INTO approvals (id, kind, type, device_id, device_ids, device_count, "
		"reason, command_ttl_s, requested_by, requester_person, status, created_at, "
		"expires_at, bulk_id, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, "
		"$10, $11, $12, $13, $14, $15)",
		&g, NULL, "approval insert");
}

int
pg_approval_get(struct store *st, const char *id, int for_update, struct approval *out)
{
	struct pg_args g = {0};

	pa_text(&g, id);
	if (for_update)
		return pg_one(S(st),
			      "SELECT " APPROVAL_COLS " FROM approvals WHERE id = $1 FOR UPDATE",
			      &g, out, approval_row, "approval get for update");
	return pg_one(S(st), "SELECT " APPROVAL_COLS " FROM approvals WHERE id = $1", &g, out,
		      approval_row, "approval get");
}

/* Newest first; the first page starts after (INT64_MAX, ""), before every row. */
int
pg_approval_list(struct store *st, const struct approval_filter *f, struct approval *out, size_t *n)
{
	int first = f->after_id == NULL || f->after_id[0] == '\0';
	struct pg_args g = {0};

	pa_int(&g, first ? INT64_MAX : f->after_created);
	pa_text(&g, first ? "" : f->after_id);
	pa_text(&g, f->status);
	pa_text(&g, f->device_id);
	pa_int(&g, (int64_t)f->limit);
	return pg_many(S(st),
		       "SELECT " APPROVAL_COLS " FROM approvals WHERE (created_at, id) < ($1, $2) "
		       "AND ($3::text IS NULL OR status = $3) AND ($4::text IS NULL OR "
		       "device_id = $4) ORDER BY created_at DESC, id DESC LIMIT $5",
		       &g, out, sizeof(*out), f->limit, n, approval_row, "approval list");
}

int
pg_approval_expired(struct store *st, int64_t now, struct approval *out, size_t max, size_t *n)
{
	struct pg_args g = {0};

	pa_int(&g, now);
	pa_int(&g, (int64_t)max);
	return pg_many(S(st),
		       "SELECT " APPROVAL_COLS " FROM approvals WHERE status = 'pending' AND "
		       "expires_at <= $1 ORDER BY expires_at, id LIMIT $2",
		       &g, out, sizeof(*out), max, n, approval_row, "approval expired");
}

int
pg_approval_decide(struct store *st, const struct approval *a)
{
	struct pg_args g = {0};

	pa_text(&g, a->status);
	pa_text(&g, a->decided_by);
	pa_text(&g, a->decided_person);
	pa_int(&g, a->decided_at);
	pa_text(&g, a->note);
	pa_text(&g, a->command_id);
	pa_text(&g, a->id);
	return pg_changed(S(st),
			  "UPDATE approvals SET status = $1, decided_by = $2, decided_person = $3, "
			  "decided_at = $4, note = $5, command_id = $6 WHERE id = $7 AND "
			  "status = 'pending'",
			  &g, "approval decide");
}

int
pg_command_set_approval(struct store *st, const char *id, const char *approval_id,
			const char *approved_by)
{
	struct pg_args g = {0};

	pa_text(&g, approval_id);
	pa_text(&g, approved_by);
	pa_text(&g, id);
	return pg_changed(S(st),
			  "UPDATE commands SET approval_id = $1, approved_by = $2 WHERE id = $3",
			  &g, "command set approval");
}

int
pg_token_permission_add(struct store *st, const char *id, const char *permission)
{
	struct pg_args g = {0};

	pa_text(&g, id);
	pa_text(&g, permission);
	return pg_run(S(st), "INSERT INTO token_permissions (token_id, permission) VALUES ($1, $2)",
		      &g, NULL, "token permission add");
}

int
pg_token_permission_has(struct store *st, const char *id, const char *permission)
{
	struct pg_args g = {0};
	int64_t one;

	pa_text(&g, id);
	pa_text(&g, permission);
	return pg_scalar(S(st),
			 "SELECT 1 FROM token_permissions WHERE token_id = $1 AND permission = $2",
			 &g, &one, "token permission");
}

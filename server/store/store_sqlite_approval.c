/*
 * The SQLite backend's approval requests of the two-person rule (migration 0019) and the
 * separate permissions of API tokens. Every write transaction holds SQLite's one writer lock,
 * so a decision read and written inside one is already alone; approval_decide still writes
 * only a pending row, the same guard the PostgreSQL backend relies on.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "store_sqlite_priv.h"
#include "util.h"

#define S(st) ((struct sq_store *)(st))

#define APPROVAL_COLS                                                                              \
	"id, kind, type, device_id, device_count, reason, command_ttl_s, requested_by, "           \
	"requester_person, status, created_at, expires_at, decided_by, decided_person, "           \
	"decided_at, note, command_id, bulk_id, created_ms, device_ids"

/* Maps a row; device_ids only into a caller's buffer (sq_many zeroes the slots: NULL). */
static void
approval_row(sqlite3_stmt *q, struct approval *a)
{
	int i = 0;

	sq_col_text(q, i++, a->id, sizeof(a->id));
	sq_col_text(q, i++, a->kind, sizeof(a->kind));
	sq_col_text(q, i++, a->type, sizeof(a->type));
	sq_col_text(q, i++, a->device_id, sizeof(a->device_id));
	a->device_count = sqlite3_column_int64(q, i++);
	sq_col_text(q, i++, a->reason, sizeof(a->reason));
	a->command_ttl_s = sqlite3_column_int64(q, i++);
	sq_col_text(q, i++, a->requested_by, sizeof(a->requested_by));
	sq_col_text(q, i++, a->requester_person, sizeof(a->requester_person));
	sq_col_text(q, i++, a->status, sizeof(a->status));
	a->created_at = sqlite3_column_int64(q, i++);
	a->expires_at = sqlite3_column_int64(q, i++);
	sq_col_text(q, i++, a->decided_by, sizeof(a->decided_by));
	sq_col_text(q, i++, a->decided_person, sizeof(a->decided_person));
	a->decided_at = sqlite3_column_int64(q, i++);
	sq_col_text(q, i++, a->note, sizeof(a->note));
	sq_col_text(q, i++, a->command_id, sizeof(a->command_id));
	sq_col_text(q, i++, a->bulk_id, sizeof(a->bulk_id));
	a->created_ms = sqlite3_column_int64(q, i++);
	if (a->device_ids != NULL)
		sq_col_text(q, i, a->device_ids, APPROVAL_IDS_MAX);
}

int
sq_approval_insert(struct store *st, const struct approval *a)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_APPROVAL_INSERT,
				  "INSERT INTO approvals (id, kind, type, device_id, device_ids, "
				  "device_count, reason, command_ttl_s, requested_by, "
				  "requester_person, status, created_at, expires_at, bulk_id, "
				  "created_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, a->kind, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, a->type, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, a->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, a->device_ids ? a->device_ids : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, a->device_count);
	sqlite3_bind_text(q, 7, a->reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 8, a->command_ttl_s);
	sqlite3_bind_text(q, 9, a->requested_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 10, a->requester_person, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 11, a->status, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 12, a->created_at);
	sqlite3_bind_int64(q, 13, a->expires_at);
	sqlite3_bind_text(q, 14, a->bulk_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 15, a->created_ms);
	return sq_exec_stmt(S(st), q, "approval insert");
}

/* SQLite's writer lock already keeps the row the transaction's: for_update changes nothing. */
int
sq_approval_get(struct store *st, const char *id, int for_update, struct approval *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_APPROVAL_GET,
				  "SELECT " APPROVAL_COLS " FROM approvals WHERE id = ?");

	(void)for_update;
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)approval_row, "approval get");
}

/* Newest first; the first page starts after (INT64_MAX, ""), before every row. */
int
sq_approval_list(struct store *st, const struct approval_filter *f, struct approval *out, size_t *n)
{
	int first = f->after_id == NULL || f->after_id[0] == '\0';
	sqlite3_stmt *q = sq_stmt(S(st), SQ_APPROVAL_LIST,
				  "SELECT " APPROVAL_COLS " FROM approvals WHERE (created_at, id) "
				  "< (?1, ?2) AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR "
				  "device_id = ?4) ORDER BY created_at DESC, id DESC LIMIT ?5");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, first ? INT64_MAX : f->after_created);
	sqlite3_bind_text(q, 2, first ? "" : f->after_id, -1, SQLITE_STATIC);
	if (f->status != NULL)
		sqlite3_bind_text(q, 3, f->status, -1, SQLITE_STATIC);
	if (f->device_id != NULL)
		sqlite3_bind_text(q, 4, f->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, (int64_t)f->limit);
	return sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)approval_row,
		       "approval list");
}

int
sq_approval_expired(struct store *st, int64_t now, struct approval *out, size_t max, size_t *n)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_APPROVAL_EXPIRED,
			"SELECT " APPROVAL_COLS " FROM approvals WHERE status = 'pending' "
			"AND expires_at <= ? ORDER BY expires_at, id LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_int64(q, 2, (int64_t)max);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)approval_row,
		       "approval expired");
}

int
sq_approval_decide(struct store *st, const struct approval *a)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_APPROVAL_DECIDE,
				  "UPDATE approvals SET status = ?, decided_by = ?, "
				  "decided_person = ?, decided_at = ?, note = ?, command_id = ? "
				  "WHERE id = ? AND status = 'pending'");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, a->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, a->decided_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, a->decided_person, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, a->decided_at);
	sqlite3_bind_text(q, 5, a->note, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, a->command_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, a->id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "approval decide");
}

int
sq_command_set_approval(struct store *st, const char *id, const char *approval_id,
			const char *approved_by)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_CMD_SET_APPROVAL,
			"UPDATE commands SET approval_id = ?, approved_by = ? WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, approval_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, approved_by, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "command set approval");
}

int
sq_token_permission_add(struct store *st, const char *id, const char *permission)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_TOKEN_PERM_ADD,
			"INSERT INTO token_permissions (token_id, permission) VALUES (?, ?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, permission, -1, SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "token permission add");
}

int
sq_token_permission_has(struct store *st, const char *id, const char *permission)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_TOKEN_PERM_HAS,
				  "SELECT 1 FROM token_permissions WHERE token_id = ? AND "
				  "permission = ?");
	int64_t one;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, permission, -1, SQLITE_STATIC);
	return sq_int64(S(st), q, &one, "token permission");
}

/*
 * The SQLite backend's employee portal links (issue 9): the SHA-256 of a link's secret, the
 * device it opens and when it stops working. Expiry is the service's decision.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

int
sq_portal_link_insert(struct store *st, const struct portal_link *l)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_PORTAL_LINK_INSERT,
			"INSERT INTO portal_links (hash, device_id, created_at, expires_at) "
			"VALUES (?,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, l->hash, sizeof(l->hash), SQLITE_STATIC);
	sqlite3_bind_text(q, 2, l->device_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, l->created_at);
	sqlite3_bind_int64(q, 4, l->expires_at);
	return sq_exec_stmt(S(st), q, "portal link insert");
}

static void
link_row(sqlite3_stmt *q, struct portal_link *l)
{
	sq_col_blob(q, 0, l->hash, sizeof(l->hash));
	sq_col_text(q, 1, l->device_id, sizeof(l->device_id));
	l->created_at = sqlite3_column_int64(q, 2);
	l->expires_at = sqlite3_column_int64(q, 3);
}

int
sq_portal_link_get(struct store *st, const uint8_t hash[32], struct portal_link *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_PORTAL_LINK_GET,
			"SELECT hash, device_id, created_at, expires_at FROM portal_links "
			"WHERE hash = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, hash, 32, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)link_row, "portal link");
}

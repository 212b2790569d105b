/*
 * The SQLite backend's audit stream positions and leases (migration 0018), the twin of
 * store_pg_siem.c. One server owns a SQLite file, so the lease only matters there when a
 * second process is pointed at the same data directory; it is kept the same for both backends.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st)     ((struct sq_store *)(st))
#define SIEM_COLS "name, last_seq, holder, lease_until_ms, updated_at_ms, last_ckpt_id"

static void
stream_row(sqlite3_stmt *q, void *out)
{
	struct siem_stream *s = out;

	sq_col_text(q, 0, s->name, sizeof(s->name));
	s->last_seq = sqlite3_column_int64(q, 1);
	sq_col_text(q, 2, s->holder, sizeof(s->holder));
	s->lease_until_ms = sqlite3_column_int64(q, 3);
	s->updated_at_ms = sqlite3_column_int64(q, 4);
	s->last_ckpt_id = sqlite3_column_int64(q, 5);
}

int
sq_siem_get(struct store *st, const char *name, struct siem_stream *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SIEM_GET,
				  "SELECT " SIEM_COLS " FROM siem_streams WHERE name = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, stream_row, "siem stream");
}

int
sq_siem_claim(struct store *st, struct siem_stream *s, const char *holder, int64_t now,
	      int64_t lease_ms)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SIEM_MAKE,
				  "INSERT OR IGNORE INTO siem_streams (name, updated_at_ms) "
				  "VALUES (?, ?)");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, s->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, now);
	r = sq_exec_stmt(S(st), q, "siem stream make");
	if (r != 0)
		return r;
	/* The condition is in the UPDATE itself: whoever's statement runs first gets the lease. */
	q = sq_stmt(S(st), SQ_SIEM_CLAIM,
		    "UPDATE siem_streams SET holder = ?2, lease_until_ms = ?3 + ?4, "
		    "updated_at_ms = ?3 WHERE name = ?1 AND (holder = ?2 OR lease_until_ms <= ?3) "
		    "RETURNING " SIEM_COLS);
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, s->name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(q, 2, holder, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, now);
	sqlite3_bind_int64(q, 4, lease_ms);
	r = sq_one(S(st), q, s, stream_row, "siem stream claim");
	if (r == -ENOENT) {
		char name[SIEM_NAME_MAX];

		memcpy(name, s->name, sizeof(name));
		r = sq_siem_get(st, name, s);
		return r == 0 ? -EBUSY : r;
	}
	return r;
}

int
sq_siem_advance(struct store *st, const char *name, const char *holder, int64_t from, int64_t to,
		int64_t ckpt_to, int64_t now, int64_t lease_ms)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SIEM_ADVANCE,
				  "UPDATE siem_streams SET last_seq = ?4, last_ckpt_id = ?7, "
				  "lease_until_ms = ?5 + ?6, "
				  "updated_at_ms = ?5 WHERE name = ?1 AND holder = ?2 AND "
				  "last_seq = ?3");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, holder, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, from);
	sqlite3_bind_int64(q, 4, to);
	sqlite3_bind_int64(q, 5, now);
	sqlite3_bind_int64(q, 6, lease_ms);
	sqlite3_bind_int64(q, 7, ckpt_to);
	r = sq_exec_changed(S(st), q, "siem stream advance");
	return r == -ENOENT ? -ESTALE : r;
}

int
sq_siem_release(struct store *st, const char *name, const char *holder)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SIEM_RELEASE,
				  "UPDATE siem_streams SET lease_until_ms = 0 "
				  "WHERE name = ? AND holder = ?");
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, holder, -1, SQLITE_STATIC);
	r = sq_exec_changed(S(st), q, "siem stream release");
	return r == -ENOENT ? 0 : r;
}

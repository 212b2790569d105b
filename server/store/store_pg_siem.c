/*
 * The PostgreSQL backend's audit stream positions and leases (migration 0018), the twin of
 * store_sqlite_siem.c. Several servers share the database: the lease is taken and renewed by
 * conditional UPDATEs, which READ COMMITTED evaluates again on the locked row, so two servers
 * claiming at once cannot both win, and an old holder's advance fails once it was taken over.
 */
#include <errno.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st)     ((struct pg_store *)(st))
#define SIEM_COLS "name, last_seq, holder, lease_until_ms, updated_at_ms, last_ckpt_id"

static void
stream_row(const PGresult *r, int i, void *out)
{
	struct siem_stream *s = out;

	pg_col_text(r, i, 0, s->name, sizeof(s->name));
	s->last_seq = pg_col_int(r, i, 1);
	pg_col_text(r, i, 2, s->holder, sizeof(s->holder));
	s->lease_until_ms = pg_col_int(r, i, 3);
	s->updated_at_ms = pg_col_int(r, i, 4);
	s->last_ckpt_id = pg_col_int(r, i, 5);
}

int
pg_siem_get(struct store *st, const char *name, struct siem_stream *out)
{
	struct pg_args a = {0};

	pa_text(&a, name);
	return pg_one(S(st), "SELECT " SIEM_COLS " FROM siem_streams WHERE name = $1", &a, out,
		      stream_row, "siem stream");
}

int
pg_siem_claim(struct store *st, struct siem_stream *s, const char *holder, int64_t now,
	      int64_t lease_ms)
{
	char name[SIEM_NAME_MAX];
	struct pg_args a = {0};
	int r;

	memcpy(name, s->name, sizeof(name));
	pa_text(&a, name);
	pa_int(&a, now);
	r = pg_run(S(st),
		   "INSERT INTO siem_streams (name, updated_at_ms) VALUES ($1, $2::bigint) "
		   "ON CONFLICT (name) DO NOTHING",
		   &a, NULL, "siem stream make");
	if (r != 0)
		return r;
	memset(&a, 0, sizeof(a));
	pa_text(&a, name);
	pa_text(&a, holder);
	pa_int(&a, now);
	pa_int(&a, lease_ms);
	r = pg_one(S(st),
		   "UPDATE siem_streams SET holder = $2, lease_until_ms = $3::bigint + $4::bigint, "
		   "updated_at_ms = $3::bigint WHERE name = $1 AND (holder = $2 OR "
		   "lease_until_ms <= $3::bigint) RETURNING " SIEM_COLS,
		   &a, s, stream_row, "siem stream claim");
	if (r == -ENOENT) {
		r = pg_siem_get(st, name, s);
		return r == 0 ? -EBUSY : r;
	}
	return r;
}

int
pg_siem_advance(struct store *st, const char *name, const char *holder, int64_t from, int64_t to,
		int64_t ckpt_to, int64_t now, int64_t lease_ms)
{
	struct pg_args a = {0};
	int r;

	pa_text(&a, name);
	pa_text(&a, holder);
	pa_int(&a, from);
	pa_int(&a, to);
	pa_int(&a, now);
	pa_int(&a, lease_ms);
	pa_int(&a, ckpt_to);
	r = pg_changed(S(st),
		       "UPDATE siem_streams SET last_seq = $4::bigint, last_ckpt_id = $7::bigint, "
		       "lease_until_ms = $5::bigint + "
		       "$6::bigint, updated_at_ms = $5::bigint WHERE name = $1 AND holder = $2 AND "
		       "last_seq = $3::bigint",
		       &a, "siem stream advance");
	return r == -ENOENT ? -ESTALE : r;
}

int
pg_siem_release(struct store *st, const char *name, const char *holder)
{
	struct pg_args a = {0};
	int r;

	pa_text(&a, name);
	pa_text(&a, holder);
	r = pg_changed(S(st),
		       "UPDATE siem_streams SET lease_until_ms = 0 WHERE name = $1 AND holder = $2",
		       &a, "siem stream release");
	return r == -ENOENT ? 0 : r;
}

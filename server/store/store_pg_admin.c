/*
 * The PostgreSQL backend's admin accounts and console sessions. Emails are unique without case
 * (a unique index on lower(email)); counters of failed sign-ins and the last TOTP step are
 * changed by single guarded UPDATEs, so two servers cannot both accept one TOTP code.
 */
#include <errno.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

#define ADMIN_COLS                                                                                 \
	"id, email, display_name, role, pwhash, created_by, created_at, disabled_at, "             \
	"totp_secret, failed_logins, last_failed_at, totp_last_step, created_ms"
#define SESSION_COLS "hash, admin_id, created_at, last_seen_at, second_factor"

static void
admin_row(const PGresult *r, int i, void *out)
{
	struct admin_account *a = out;

	pg_col_text(r, i, 0, a->id, sizeof(a->id));
	pg_col_text(r, i, 1, a->email, sizeof(a->email));
	pg_col_text(r, i, 2, a->display_name, sizeof(a->display_name));
	pg_col_text(r, i, 3, a->role, sizeof(a->role));
	pg_col_text(r, i, 4, a->pwhash, sizeof(a->pwhash));
	pg_col_text(r, i, 5, a->created_by, sizeof(a->created_by));
	a->created_at = pg_col_int(r, i, 6);
	a->disabled_at = pg_col_int(r, i, 7);
	a->has_totp = !PQgetisnull(r, i, 8) && PQgetlength(r, i, 8) == (int)sizeof(a->totp_secret);
	if (a->has_totp)
		pg_col_blob(r, i, 8, a->totp_secret, sizeof(a->totp_secret));
	a->failed_logins = pg_col_int(r, i, 9);
	a->last_failed_at = pg_col_int(r, i, 10);
	a->totp_last_step = pg_col_int(r, i, 11);
	a->created_ms = pg_col_int(r, i, 12);
}

static void
session_row(const PGresult *r, int i, void *out)
{
	struct admin_session *ss = out;

	pg_col_blob(r, i, 0, ss->hash, sizeof(ss->hash));
	pg_col_text(r, i, 1, ss->admin_id, sizeof(ss->admin_id));
	ss->created_at = pg_col_int(r, i, 2);
	ss->last_seen_at = pg_col_int(r, i, 3);
	ss->second_factor = (int)pg_col_int(r, i, 4);
}

int
pg_admin_insert(struct store *st, const struct admin_account *a)
{
	struct pg_args p = {0};

	pa_text(&p, a->id);
	pa_text(&p, a->email);
	pa_text(&p, a->display_name);
	pa_text(&p, a->role);
	pa_text(&p, a->pwhash);
	pa_text(&p, a->created_by);
	pa_int(&p, a->created_at);
	pa_int(&p, a->created_ms);
	return pg_run(S(st),
		      "INSERT INTO admins (" ADMIN_COLS
		      ") VALUES ($1,$2,$3,$4,$5,$6,$7,0,NULL,0,0,0,$8)",
		      &p, NULL, "admin insert");
}

int
pg_admin_by_email(struct store *st, const char *email, struct admin_account *out)
{
	struct pg_args p = {0};

	pa_text(&p, email);
	return pg_one(S(st), "SELECT " ADMIN_COLS " FROM admins WHERE lower(email) = lower($1)", &p,
		      out, admin_row, "admin by email");
}

int
pg_admin_get(struct store *st, const char *id, struct admin_account *out)
{
	struct pg_args p = {0};

	pa_text(&p, id);
	return pg_one(S(st), "SELECT " ADMIN_COLS " FROM admins WHERE id = $1", &p, out, admin_row,
		      "admin get");
}

int
pg_admin_list(struct store *st, struct admin_account *out, size_t max, size_t *n)
{
	struct pg_args p = {0};

	pa_int(&p, (int64_t)max);
	return pg_many(S(st), "SELECT " ADMIN_COLS " FROM admins ORDER BY created_at, id LIMIT $1",
		       &p, out, sizeof(*out), max, n, admin_row, "admin list");
}

int
pg_admin_count(struct store *st, int64_t *n)
{
	struct pg_conn *c = pg_conn_get(S(st));

	if (c == NULL)
		return -ENOTCONN;
	/*
	 * Inside a transaction the count decides a write (only the first admin may be made by
	 * the setup code, and two servers may each hold one): no other transaction may add an
	 * admin until this one ends. The lock conflicts with itself and with INSERT, not with
	 * reads; it is an admin-rows lock of the documented order (store_pg.c).
	 */
	if (c->in_tx) {
		int r = pg_run(S(st), "LOCK TABLE admins IN SHARE ROW EXCLUSIVE MODE", NULL, NULL,
			       "admin count lock");

		if (r != 0)
			return r;
	}
	return pg_scalar(S(st), "SELECT count(*) FROM admins", NULL, n, "admin count");
}

int
pg_admin_disable(struct store *st, const char *id, int64_t now)
{
	struct pg_args p = {0};

	pa_int(&p, now);
	pa_text(&p, id);
	return pg_changed(S(st),
			  "UPDATE admins SET disabled_at = $1 WHERE id = $2 AND disabled_at = 0",
			  &p, "admin disable");
}

int
pg_session_insert(struct store *st, const struct admin_session *ss)
{
	struct pg_args p = {0};

	pa_blob(&p, ss->hash, sizeof(ss->hash));
	pa_text(&p, ss->admin_id);
	pa_int(&p, ss->created_at);
	pa_int(&p, ss->last_seen_at);
	pa_int(&p, ss->second_factor != 0);
	return pg_run(S(st),
		      "INSERT INTO admin_sessions (" SESSION_COLS ") VALUES ($1,$2,$3,$4,$5)", &p,
		      NULL, "session insert");
}

int
pg_session_get(struct store *st, const uint8_t hash[32], struct admin_session *out)
{
	struct pg_args p = {0};

	pa_blob(&p, hash, 32);
	return pg_one(S(st), "SELECT " SESSION_COLS " FROM admin_sessions WHERE hash = $1", &p, out,
		      session_row, "session get");
}

int
pg_session_touch(struct store *st, const uint8_t hash[32], int64_t now)
{
	struct pg_args p = {0};

	pa_int(&p, now);
	pa_blob(&p, hash, 32);
	return pg_changed(S(st),
			  "UPDATE admin_sessions SET last_seen_at = greatest(last_seen_at, "
			  "$1::bigint) WHERE hash = $2",
			  &p, "session touch");
}

int
pg_session_delete(struct store *st, const uint8_t hash[32])
{
	struct pg_args p = {0};

	pa_blob(&p, hash, 32);
	return pg_changed(S(st), "DELETE FROM admin_sessions WHERE hash = $1", &p,
			  "session delete");
}

int
pg_session_delete_admin(struct store *st, const char *admin_id)
{
	struct pg_args p = {0};

	pa_text(&p, admin_id);
	return pg_run(S(st), "DELETE FROM admin_sessions WHERE admin_id = $1", &p, NULL,
		      "session delete of an admin");
}

int
pg_admin_set_totp(struct store *st, const char *id, const uint8_t secret[20])
{
	struct pg_args p = {0};

	pa_blob(&p, secret, 20);
	pa_text(&p, id);
	return pg_changed(S(st), "UPDATE admins SET totp_secret = $1 WHERE id = $2", &p,
			  "admin set totp");
}

int
pg_admin_login_result(struct store *st, const char *id, int ok, int64_t now)
{
	struct pg_args p = {0};

	pa_int(&p, ok != 0);
	pa_int(&p, now);
	pa_text(&p, id);
	return pg_changed(S(st),
			  "UPDATE admins SET failed_logins = CASE WHEN $1::bigint <> 0 THEN 0 "
			  "ELSE failed_logins + 1 END, last_failed_at = CASE WHEN $1::bigint <> 0 "
			  "THEN last_failed_at ELSE $2::bigint END WHERE id = $3",
			  &p, "admin login result");
}

int
pg_admin_totp_used(struct store *st, const char *id, int64_t step)
{
	struct pg_args p = {0};

	pa_int(&p, step);
	pa_text(&p, id);
	return pg_changed(S(st),
			  "UPDATE admins SET totp_last_step = $1 WHERE id = $2 AND "
			  "totp_last_step < $1",
			  &p, "admin totp used");
}

/* ---- accounts linked to an OpenID provider (issue 11, migration 0021) ---- */

int
pg_admin_by_identity(struct store *st, const char *issuer, const char *subject,
		     struct admin_account *out)
{
	struct pg_args p = {0};

	pa_text(&p, issuer);
	pa_text(&p, subject);
	return pg_one(S(st),
		      "SELECT " ADMIN_COLS " FROM admins WHERE id = (SELECT admin_id FROM "
		      "admin_identities WHERE issuer = $1 AND subject = $2)",
		      &p, out, admin_row, "admin by identity");
}

int
pg_admin_identity_insert(struct store *st, const char *issuer, const char *subject,
			 const char *admin_id, int64_t now)
{
	struct pg_args p = {0};

	pa_text(&p, issuer);
	pa_text(&p, subject);
	pa_text(&p, admin_id);
	pa_int(&p, now);
	return pg_run(S(st),
		      "INSERT INTO admin_identities (issuer, subject, admin_id, linked_at) "
		      "VALUES ($1,$2,$3,$4)",
		      &p, NULL, "admin identity insert");
}

int
pg_admin_sso_update(struct store *st, const char *id, const char *email, const char *display_name,
		    const char *role)
{
	struct pg_args p = {0};

	pa_text(&p, email);
	pa_text(&p, display_name);
	pa_text(&p, role);
	pa_text(&p, id);
	return pg_changed(
		S(st), "UPDATE admins SET email = $1, display_name = $2, role = $3 WHERE id = $4",
		&p, "admin sso update");
}

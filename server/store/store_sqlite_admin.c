/*
 * The SQLite backend's admin accounts and console sessions (issue 9). Passwords arrive here
 * already hashed (Argon2id) and session ids as their SHA-256; expiry and every other rule are
 * the service's business.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

#define ADMIN_COLS                                                                                 \
	"id, email, display_name, role, pwhash, created_by, created_at, disabled_at, "             \
	"totp_secret, "                                                                            \
	"failed_logins, last_failed_at, totp_last_step, created_ms"
#define SESSION_COLS "hash, admin_id, created_at, last_seen_at, second_factor"

static void
admin_row(sqlite3_stmt *q, struct admin_account *a)
{
	sq_col_text(q, 0, a->id, sizeof(a->id));
	sq_col_text(q, 1, a->email, sizeof(a->email));
	sq_col_text(q, 2, a->display_name, sizeof(a->display_name));
	sq_col_text(q, 3, a->role, sizeof(a->role));
	sq_col_text(q, 4, a->pwhash, sizeof(a->pwhash));
	sq_col_text(q, 5, a->created_by, sizeof(a->created_by));
	a->created_at = sqlite3_column_int64(q, 6);
	a->disabled_at = sqlite3_column_int64(q, 7);
	a->has_totp = sqlite3_column_bytes(q, 8) == (int)sizeof(a->totp_secret);
	if (a->has_totp)
		sq_col_blob(q, 8, a->totp_secret, sizeof(a->totp_secret));
	a->failed_logins = sqlite3_column_int64(q, 9);
	a->last_failed_at = sqlite3_column_int64(q, 10);
	a->totp_last_step = sqlite3_column_int64(q, 11);
	a->created_ms = sqlite3_column_int64(q, 12);
}

static void
session_row(sqlite3_stmt *q, struct admin_session *ss)
{
	sq_col_blob(q, 0, ss->hash, sizeof(ss->hash));
	sq_col_text(q, 1, ss->admin_id, sizeof(ss->admin_id));
	ss->created_at = sqlite3_column_int64(q, 2);
	ss->last_seen_at = sqlite3_column_int64(q, 3);
	ss->second_factor = sqlite3_column_int(q, 4);
}

int
sq_admin_insert(struct store *st, const struct admin_account *a)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_INSERT,
				  "INSERT INTO admins (" ADMIN_COLS
				  ") VALUES (?,?,?,?,?,?,?,0,NULL,0,0,0,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, a->email, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, a->display_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, a->role, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, a->pwhash, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 6, a->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, a->created_at);
	sqlite3_bind_int64(q, 8, a->created_ms);
	return sq_exec_stmt(S(st), q, "admin insert");
}

int
sq_admin_by_email(struct store *st, const char *email, struct admin_account *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_BY_EMAIL,
				  "SELECT " ADMIN_COLS " FROM admins WHERE email = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, email, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)admin_row, "admin by email");
}

int
sq_admin_get(struct store *st, const char *id, struct admin_account *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_ADMIN_GET, "SELECT " ADMIN_COLS " FROM admins WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)admin_row, "admin get");
}

int
sq_admin_list(struct store *st, struct admin_account *out, size_t max, size_t *n)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_ADMIN_LIST,
			"SELECT " ADMIN_COLS " FROM admins ORDER BY created_at, id LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)max);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)admin_row, "admin list");
}

int
sq_admin_count(struct store *st, int64_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_COUNT, "SELECT count(*) FROM admins");

	if (q == NULL)
		return -EIO;
	return sq_int64(S(st), q, n, "admin count");
}

int
sq_admin_disable(struct store *st, const char *id, int64_t now)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_ADMIN_DISABLE,
			"UPDATE admins SET disabled_at = ? WHERE id = ? AND disabled_at = 0");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "admin disable");
}

int
sq_session_insert(struct store *st, const struct admin_session *ss)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_SESSION_INSERT,
			"INSERT INTO admin_sessions (" SESSION_COLS ") VALUES (?,?,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, ss->hash, sizeof(ss->hash), SQLITE_STATIC);
	sqlite3_bind_text(q, 2, ss->admin_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, ss->created_at);
	sqlite3_bind_int64(q, 4, ss->last_seen_at);
	sqlite3_bind_int(q, 5, ss->second_factor != 0);
	return sq_exec_stmt(S(st), q, "session insert");
}

int
sq_session_get(struct store *st, const uint8_t hash[32], struct admin_session *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SESSION_GET,
				  "SELECT " SESSION_COLS " FROM admin_sessions WHERE hash = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, hash, 32, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)session_row, "session get");
}

int
sq_session_touch(struct store *st, const uint8_t hash[32], int64_t now)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SESSION_TOUCH,
				  "UPDATE admin_sessions SET last_seen_at = max(last_seen_at, ?) "
				  "WHERE hash = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_blob(q, 2, hash, 32, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "session touch");
}

int
sq_session_delete(struct store *st, const uint8_t hash[32])
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_SESSION_DELETE, "DELETE FROM admin_sessions WHERE hash = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, hash, 32, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "session delete");
}

int
sq_session_delete_admin(struct store *st, const char *admin_id)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_SESSION_DELETE_ADMIN,
				  "DELETE FROM admin_sessions WHERE admin_id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, admin_id, -1, SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "session delete of an admin");
}

int
sq_admin_set_totp(struct store *st, const char *id, const uint8_t secret[20])
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_ADMIN_SET_TOTP, "UPDATE admins SET totp_secret = ? WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, secret, 20, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "admin set totp");
}

int
sq_admin_login_result(struct store *st, const char *id, int ok, int64_t now)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_LOGIN_RESULT,
				  "UPDATE admins SET failed_logins = CASE WHEN ?1 THEN 0 "
				  "ELSE failed_logins + 1 END, last_failed_at = CASE WHEN ?1 "
				  "THEN last_failed_at ELSE ?2 END WHERE id = ?3");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int(q, 1, ok != 0);
	sqlite3_bind_int64(q, 2, now);
	sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "admin login result");
}

int
sq_admin_totp_used(struct store *st, const char *id, int64_t step)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_TOTP_USED,
				  "UPDATE admins SET totp_last_step = ?1 WHERE id = ?2 AND "
				  "totp_last_step < ?1");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, step);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "admin totp used");
}

/* ---- accounts linked to an OpenID provider (issue 11, migration 0021) ---- */

int
sq_admin_by_identity(struct store *st, const char *issuer, const char *subject,
		     struct admin_account *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_BY_IDENTITY,
				  "SELECT " ADMIN_COLS " FROM admins WHERE id = (SELECT admin_id "
				  "FROM admin_identities WHERE issuer = ? AND subject = ?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, issuer, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, subject, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)admin_row, "admin by identity");
}

int
sq_admin_identity_insert(struct store *st, const char *issuer, const char *subject,
			 const char *admin_id, int64_t now)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_IDENTITY_INSERT,
				  "INSERT INTO admin_identities (issuer, subject, admin_id, "
				  "linked_at) VALUES (?,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, issuer, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, subject, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, admin_id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, now);
	return sq_exec_stmt(S(st), q, "admin identity insert");
}

int
sq_admin_sso_update(struct store *st, const char *id, const char *email, const char *display_name,
		    const char *role)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ADMIN_SSO_UPDATE,
				  "UPDATE admins SET email = ?, display_name = ?, role = ? "
				  "WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, email, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, display_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, role, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "admin sso update");
}

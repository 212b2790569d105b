/*
 * The SQLite backend's single sign-on flows (issue 11, migration 0021): recorded when a sign-in
 * begins, taken (deleted and returned in one statement) when the provider sends the browser
 * back, so a flow is finished at most once. Expiry is the service's check; expired rows go when
 * a later flow is recorded.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

int
sq_oidc_flow_insert(struct store *st, const struct oidc_flow *f)
{
	sqlite3_stmt *purge =
		sq_stmt(S(st), SQ_OIDC_FLOW_PURGE, "DELETE FROM oidc_flows WHERE expires_at < ?");
	sqlite3_stmt *q;
	int r;

	if (purge == NULL)
		return -EIO;
	sqlite3_bind_int64(purge, 1, f->created_at);
	r = sq_exec_stmt(S(st), purge, "oidc flow purge");
	if (r != 0)
		return r;
	q = sq_stmt(S(st), SQ_OIDC_FLOW_INSERT,
		    "INSERT INTO oidc_flows (state_hash, nonce, verifier, created_at, expires_at) "
		    "VALUES (?,?,?,?,?)");
	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, f->state_hash, sizeof(f->state_hash), SQLITE_STATIC);
	sqlite3_bind_text(q, 2, f->nonce, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, f->verifier, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, f->created_at);
	sqlite3_bind_int64(q, 5, f->expires_at);
	return sq_exec_stmt(S(st), q, "oidc flow insert");
}

static void
flow_row(sqlite3_stmt *q, struct oidc_flow *f)
{
	sq_col_blob(q, 0, f->state_hash, sizeof(f->state_hash));
	sq_col_text(q, 1, f->nonce, sizeof(f->nonce));
	sq_col_text(q, 2, f->verifier, sizeof(f->verifier));
	f->created_at = sqlite3_column_int64(q, 3);
	f->expires_at = sqlite3_column_int64(q, 4);
}

int
sq_oidc_flow_take(struct store *st, const uint8_t state_hash[32], struct oidc_flow *out)
{
	/* The delete happens at the first step; RETURNING hands back the row it removed. */
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_OIDC_FLOW_TAKE,
			"DELETE FROM oidc_flows WHERE state_hash = ? RETURNING state_hash, "
			"nonce, verifier, created_at, expires_at");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, state_hash, 32, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)flow_row, "oidc flow take");
}

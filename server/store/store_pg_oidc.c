/*
 * The PostgreSQL backend's single sign-on flows, the twin of store_sqlite_oidc.c. The take is
 * one DELETE … RETURNING: of two servers finishing the same flow at once, one gets the row and
 * the other -ENOENT (the row lock makes the second wait, then find nothing).
 */
#include <errno.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

int
pg_oidc_flow_insert(struct store *st, const struct oidc_flow *f)
{
	struct pg_args p = {0}, a = {0};
	int r;

	pa_int(&p, f->created_at);
	r = pg_run(S(st), "DELETE FROM oidc_flows WHERE expires_at < $1", &p, NULL,
		   "oidc flow purge");
	if (r != 0)
		return r;
	pa_blob(&a, f->state_hash, sizeof(f->state_hash));
	pa_text(&a, f->nonce);
	pa_text(&a, f->verifier);
	pa_int(&a, f->created_at);
	pa_int(&a, f->expires_at);
	return pg_run(
		S(st),
		"INSERT INTO oidc_flows (state_hash, nonce, verifier, created_at, expires_at) "
		"VALUES ($1,$2,$3,$4,$5)",
		&a, NULL, "oidc flow insert");
}

static void
flow_row(const PGresult *r, int i, void *out)
{
	struct oidc_flow *f = out;

	pg_col_blob(r, i, 0, f->state_hash, sizeof(f->state_hash));
	pg_col_text(r, i, 1, f->nonce, sizeof(f->nonce));
	pg_col_text(r, i, 2, f->verifier, sizeof(f->verifier));
	f->created_at = pg_col_int(r, i, 3);
	f->expires_at = pg_col_int(r, i, 4);
}

int
pg_oidc_flow_take(struct store *st, const uint8_t state_hash[32], struct oidc_flow *out)
{
	struct pg_args p = {0};

	pa_blob(&p, state_hash, 32);
	return pg_one(S(st),
		      "DELETE FROM oidc_flows WHERE state_hash = $1 RETURNING state_hash, nonce, "
		      "verifier, created_at, expires_at",
		      &p, out, flow_row, "oidc flow take");
}

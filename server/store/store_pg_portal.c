/*
 * The PostgreSQL backend's per-policy device counts and employee portal links (issue 9), the
 * twins of sq_policy_counts and store_sqlite_portal.c. Expiry of a link is the service's
 * decision; the store keeps only the SHA-256 of its secret.
 */
#include <errno.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

struct counts {
	int64_t assigned, applied;
};

static void
counts_row(const PGresult *r, int i, void *out)
{
	struct counts *c = out;

	c->assigned = pg_col_int(r, i, 0);
	c->applied = pg_col_int(r, i, 1);
}

int
pg_policy_counts(struct store *st, const char *name, int is_default, int64_t version,
		 int64_t *assigned, int64_t *applied)
{
	struct pg_args a = {0};
	struct counts c = {0};
	int r;

	/* The IN list is (name, name) or (name, ''): one or two ranges of devices_policy_applied. */
	pa_text(&a, name);
	pa_text(&a, is_default ? "" : name);
	pa_int(&a, version);
	r = pg_one(
		S(st),
		"SELECT count(*), count(*) FILTER (WHERE applied_policy_name = $1 AND "
		"applied_policy_version = $3::bigint) FROM devices WHERE policy_name IN ($1, $2) "
		"AND status = 'active'",
		&a, &c, counts_row, "policy counts");
	if (r == 0) {
		*assigned = c.assigned;
		*applied = c.applied;
	}
	return r;
}

int
pg_portal_link_insert(struct store *st, const struct portal_link *l)
{
	struct pg_args a = {0};

	pa_blob(&a, l->hash, sizeof(l->hash));
	pa_text(&a, l->device_id);
	pa_int(&a, l->created_at);
	pa_int(&a, l->expires_at);
	return pg_run(S(st),
		      "INSERT INTO portal_links (hash, device_id, created_at, expires_at) "
		      "VALUES ($1,$2,$3,$4)",
		      &a, NULL, "portal link insert");
}

static void
link_row(const PGresult *r, int i, void *out)
{
	struct portal_link *l = out;

	pg_col_blob(r, i, 0, l->hash, sizeof(l->hash));
	pg_col_text(r, i, 1, l->device_id, sizeof(l->device_id));
	l->created_at = pg_col_int(r, i, 2);
	l->expires_at = pg_col_int(r, i, 3);
}

int
pg_portal_link_get(struct store *st, const uint8_t hash[32], struct portal_link *out)
{
	struct pg_args a = {0};

	pa_blob(&a, hash, 32);
	return pg_one(S(st),
		      "SELECT hash, device_id, created_at, expires_at FROM portal_links "
		      "WHERE hash = $1",
		      &a, out, link_row, "portal link");
}

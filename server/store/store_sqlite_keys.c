/*
 * The SQLite backend's record of the deployment's public signing keys (migration 0013), the
 * twin of pg_keys_pin. One server owns a SQLite file, so this only catches a data directory
 * whose keys were replaced under an existing database.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

struct key_pair {
	uint8_t *ticket, *audit;
};

static void
key_row(sqlite3_stmt *q, void *out)
{
	struct key_pair *k = out;

	sq_col_blob(q, 0, k->ticket, 32);
	sq_col_blob(q, 1, k->audit, 32);
}

int
sq_keys_pin(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
	    int replace, int64_t now, uint8_t ticket_had[32], uint8_t audit_had[32])
{
	sqlite3_stmt *q =
		sq_stmt(S(st), replace ? SQ_KEYS_REPLACE : SQ_KEYS_PUT,
			replace ? "INSERT OR REPLACE INTO deployment_keys "
				  "(id, ticket_pub, audit_pub, recorded_at) VALUES (1,?,?,?)"
				: "INSERT OR IGNORE INTO deployment_keys "
				  "(id, ticket_pub, audit_pub, recorded_at) VALUES (1,?,?,?)");
	struct key_pair k = {ticket_had, audit_had};
	int r;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, ticket_pub, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 2, audit_pub, 32, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, now);
	r = sq_exec_stmt(S(st), q, "deployment keys");
	if (r != 0)
		return r;
	q = sq_stmt(S(st), SQ_KEYS_GET,
		    "SELECT ticket_pub, audit_pub FROM deployment_keys WHERE id = 1");
	if (q == NULL)
		return -EIO;
	return sq_one(S(st), q, &k, key_row, "deployment keys");
}

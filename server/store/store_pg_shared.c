/*
 * The PostgreSQL backend's state that several servers of one deployment must agree on at once
 * (issue 10 §2): the device request nonces any of them accepted (a replay sent to another
 * server is refused there), and the deployment's public signing keys. Nothing here is cached
 * in a server's memory.
 */
#include <errno.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

int
pg_request_nonce_claim(struct store *st, const char *device_id, uint64_t nonce, int64_t seen_at)
{
	struct pg_args a = {0};
	struct pg_conn *c;
	int r;

	/* The nonce is a 64-bit counter; bigint keeps its bits (order does not matter here). */
	pa_text(&a, device_id);
	pa_int(&a, (int64_t)nonce);
	pa_int(&a, seen_at);
	/*
	 * Every device request claims one, so a synced commit here would bound a server at two
	 * worker threads / one WAL flush (~650-1,200 signed check-ins/s with fsync on, bench/
	 * RESULTS.md). The claim commits asynchronously instead (set_config local to this
	 * statement's own transaction; nothing else on the connection changes): it is visible to
	 * every server at once, survives this server being killed, and reaches the disk within
	 * the WAL writer's delay (200 ms by default) or with the next synced commit. A crash of
	 * PostgreSQL or of the machine can lose that last fraction of a second of nonces, as
	 * SQLite's replay log loses up to a second (it syncs once a second); a replay after it is
	 * still refused outside the signature skew.
	 */
	c = pg_conn_get(S(st));
	if (c != NULL && c->in_tx) /* the setting would cover the caller's whole transaction */
		r = pg_changed(S(st),
			       "INSERT INTO request_nonces (device_id, nonce, seen_at) "
			       "VALUES ($1, $2, $3) ON CONFLICT (device_id, nonce) DO NOTHING",
			       &a, "request nonce");
	else
		r = pg_changed(
			S(st),
			"WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) "
			"INSERT INTO request_nonces (device_id, nonce, seen_at) "
			"SELECT $1::text, $2::bigint, $3::bigint FROM async "
			"ON CONFLICT (device_id, nonce) DO NOTHING",
			&a, "request nonce");
	return r == -ENOENT ? -EALREADY : r;
}

int
pg_request_nonce_purge(struct store *st, int64_t before)
{
	struct pg_args a = {0};

	pa_int(&a, before);
	return pg_run(S(st), "DELETE FROM request_nonces WHERE seen_at < $1", &a, NULL,
		      "request nonce purge");
}

struct key_pair {
	uint8_t *ticket, *audit;
};

static void
key_row(const PGresult *r, int i, void *out)
{
	struct key_pair *k = out;

	pg_col_blob(r, i, 0, k->ticket, 32);
	pg_col_blob(r, i, 1, k->audit, 32);
}

/* Records the given keys (replacing any); returns them. */
static const char keys_replace[] =
	"INSERT INTO deployment_keys (id, ticket_pub, audit_pub, recorded_at) "
	"VALUES (1,$1,$2,$3) ON CONFLICT (id) DO UPDATE SET "
	"ticket_pub = $1, audit_pub = $2, recorded_at = $3 RETURNING ticket_pub, audit_pub";
/* Records the given keys when none are; returns the recorded ones either way. */
static const char keys_first[] =
	"WITH ins AS (INSERT INTO deployment_keys (id, ticket_pub, audit_pub, recorded_at) "
	"VALUES (1,$1,$2,$3) ON CONFLICT (id) DO NOTHING RETURNING ticket_pub, audit_pub) "
	"SELECT ticket_pub, audit_pub FROM ins UNION ALL "
	"SELECT ticket_pub, audit_pub FROM deployment_keys WHERE id = 1 "
	"AND NOT EXISTS (SELECT 1 FROM ins)";

static int
pin_once(struct store *st, const struct pg_args *a, int replace, struct key_pair *k)
{
	return pg_one(S(st), replace ? keys_replace : keys_first, a, k, key_row, "deployment keys");
}

int
pg_keys_pin(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
	    int replace, int64_t now, uint8_t ticket_had[32], uint8_t audit_had[32])
{
	struct pg_args a = {0};
	struct key_pair k = {ticket_had, audit_had};
	int r = -ENOENT;

	pa_blob(&a, ticket_pub, 32);
	pa_blob(&a, audit_pub, 32);
	pa_int(&a, now);
	/*
	 * Of two servers starting together one inserts; the other waits for its commit and then
	 * finds no row in its statement's snapshot (-ENOENT): the second try reads it.
	 */
	for (int tries = 0; tries < 3 && r == -ENOENT; tries++)
		r = pin_once(st, &a, replace, &k);
	return r;
}

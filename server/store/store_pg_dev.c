/*
 * The PostgreSQL backend's devices. The ticket counter and the desired state live in
 * device_orders (migration 0016: each queued command rewrites that narrow row instead of the
 * wide devices row and its many indexes). The ticket counter is taken with one UPDATE ...
 * RETURNING, so two servers queuing commands for the same device at once get two different
 * numbers (the second waits for the first's row lock and then reads its committed value); the
 * unique (device_id, counter) of commands is the backstop.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_conn.h"
#include "store_fp.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

#define DEVICE_COLS                                                                                \
	"rowid, id, owner, status, device_key, hv_key, measurement, enrollment_token_id, model, "  \
	"os, agent_version, policy_name, applied_policy_name, applied_policy_version, "            \
	"desired_state, reported_state, key_epoch, ticket_counter, sig_seq, enrolled_at, "         \
	"last_seen_at, attest_status, attested_at, epoch_since, superseded_by, replaces, "         \
	"attested_policy, hv_sig_alg, hv_spki, hv_identity, endorsement, endorsement_ca"

const char pg_device_cols[] = DEVICE_COLS;

void
pg_device_row(const PGresult *r, int i, void *out)
{
	struct device *d = out;

	d->rowid = pg_col_int(r, i, 0);
	pg_col_text(r, i, 1, d->id, sizeof(d->id));
	pg_col_text(r, i, 2, d->owner, sizeof(d->owner));
	pg_col_text(r, i, 3, d->status, sizeof(d->status));
	pg_col_blob(r, i, 4, d->device_key, sizeof(d->device_key));
	pg_col_blob(r, i, 5, d->hv_key, sizeof(d->hv_key));
	pg_col_blob(r, i, 6, d->measurement, sizeof(d->measurement));
	pg_col_text(r, i, 7, d->enrollment_token_id, sizeof(d->enrollment_token_id));
	pg_col_text(r, i, 8, d->model, sizeof(d->model));
	pg_col_text(r, i, 9, d->os, sizeof(d->os));
	pg_col_text(r, i, 10, d->agent_version, sizeof(d->agent_version));
	pg_col_text(r, i, 11, d->policy_name, sizeof(d->policy_name));
	pg_col_text(r, i, 12, d->applied_policy_name, sizeof(d->applied_policy_name));
	d->applied_policy_version = pg_col_int(r, i, 13);
	pg_col_text(r, i, 14, d->desired_state, sizeof(d->desired_state));
	pg_col_text(r, i, 15, d->reported_state, sizeof(d->reported_state));
	d->key_epoch = pg_col_int(r, i, 16);
	d->ticket_counter = pg_col_int(r, i, 17);
	d->sig_seq = pg_col_int(r, i, 18);
	d->enrolled_at = pg_col_int(r, i, 19);
	d->last_seen_at = pg_col_int(r, i, 20);
	pg_col_text(r, i, 21, d->attest_status, sizeof(d->attest_status));
	d->attested_at = pg_col_int(r, i, 22);
	d->epoch_since = pg_col_int(r, i, 23);
	pg_col_text(r, i, 24, d->superseded_by, sizeof(d->superseded_by));
	pg_col_text(r, i, 25, d->replaces, sizeof(d->replaces));
	pg_col_blob(r, i, 26, d->attested_policy, sizeof(d->attested_policy));
	d->hv_sig_alg = (int)pg_col_int(r, i, 27);
	d->hv_spki_len = PQgetisnull(r, i, 28) ? 0 : (uint16_t)PQgetlength(r, i, 28);
	if (d->hv_spki_len > sizeof(d->hv_spki))
		d->hv_spki_len =
			0; /* never written so: the verifier then refuses the device's key */
	if (d->hv_spki_len > 0)
		memcpy(d->hv_spki, PQgetvalue(r, i, 28), d->hv_spki_len);
	pg_col_text(r, i, 29, d->hv_identity, sizeof(d->hv_identity));
	pg_col_text(r, i, 30, d->endorsement, sizeof(d->endorsement));
	pg_col_text(r, i, 31, d->endorsement_ca, sizeof(d->endorsement_ca));
}

int
pg_device_insert(struct store *st, const struct device *d)
{
	struct pg_args a = {0};
	char fp[64];

	pa_text(&a, d->id);
	pa_text(&a, d->owner);
	pa_text(&a, d->status);
	pa_blob(&a, d->device_key, 32);
	pa_blob(&a, d->hv_key, 32);
	pa_blob(&a, d->measurement, 32);
	pa_text(&a, d->enrollment_token_id);
	pa_text(&a, d->model);
	pa_text(&a, d->os);
	pa_text(&a, d->agent_version);
	pa_text(&a, d->policy_name);
	pa_int(&a, d->key_epoch);
	pa_int(&a, d->enrolled_at);
	pa_int(&a, d->last_seen_at);
	pa_int(&a, d->epoch_since);
	pa_text(&a, d->replaces);
	pa_blob(&a, d->attested_policy, sizeof(d->attested_policy));
	store_hv_fingerprint(d->hv_key, fp, sizeof(fp));
	pa_text(&a, fp);
	pa_int(&a, d->hv_sig_alg);
	pa_blob(&a, d->hv_spki_len > 0 ? d->hv_spki : NULL, d->hv_spki_len);
	pa_text(&a, d->hv_identity[0] ? d->hv_identity : "file");
	pa_text(&a, d->endorsement);
	pa_text(&a, d->endorsement_ca);
	return pg_run(
		S(st),
		"INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
		"enrollment_token_id, model, os, agent_version, policy_name, key_epoch, "
		"enrolled_at, last_seen_at, epoch_since, replaces, attested_policy, "
		"hv_fingerprint, hv_sig_alg, hv_spki, hv_identity, endorsement, endorsement_ca) "
		"VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,$20,"
		"$21,$22,$23)",
		&a, NULL, "device insert");
}

int
pg_device_get(struct store *st, const char *id, struct device *out)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_one(S(st), "SELECT " DEVICE_COLS " FROM " PG_DEVICES_FROM " WHERE id = $1", &a,
		      out, pg_device_row, "device get");
}

int
pg_device_get_for_update(struct store *st, const char *id, struct device *out)
{
	struct pg_args a = {0};

	/*
	 * The rows stay this transaction's until it ends: first in the lock order, the devices
	 * row, then its orders row (both locked, so that a wait for another writer returns both
	 * as it committed them).
	 */
	pa_text(&a, id);
	return pg_one(S(st),
		      "SELECT " DEVICE_COLS " FROM " PG_DEVICES_FROM " WHERE id = $1 FOR UPDATE",
		      &a, out, pg_device_row, "device get for update");
}

int
pg_device_list(struct store *st, const struct device_filter *f, struct device *out, size_t *n)
{
	struct pg_args a = {0};

	pa_int(&a, f->after);
	pa_text(&a, f->status);
	pa_text(&a, f->owner);
	pa_int(&a, (int64_t)f->limit);
	return pg_many(S(st),
		       "SELECT " DEVICE_COLS " FROM " PG_DEVICES_FROM " WHERE rowid > $1 AND "
		       "($2::text IS NULL OR status = $2) AND ($3::text IS NULL OR owner = $3) "
		       "ORDER BY rowid LIMIT $4",
		       &a, out, sizeof(*out), f->limit, n, pg_device_row, "device list");
}

/*
 * devices' own columns of a patch; $1 the id, $2 the DEV_F_* bits (but DEV_F_DESIRED), $3.. the
 * values in the order pg_device_patch binds them.
 */
#define DEVICE_PATCH                                                                               \
	"UPDATE devices SET "                                                                      \
	"status = CASE WHEN $2::bigint & 1 <> 0 THEN $3 ELSE status END, "                         \
	"policy_name = CASE WHEN $2::bigint & 2 <> 0 THEN $4 ELSE policy_name END, "               \
	"applied_policy_name = CASE WHEN $2::bigint & 4 <> 0 THEN $5 "                             \
	"ELSE applied_policy_name END, "                                                           \
	"applied_policy_version = CASE WHEN $2::bigint & 4 <> 0 THEN $6::bigint "                  \
	"ELSE applied_policy_version END, "                                                        \
	"reported_state = CASE WHEN $2::bigint & 16 <> 0 THEN $7 ELSE reported_state END, "        \
	"key_epoch = CASE WHEN $2::bigint & 32 <> 0 THEN $8::bigint ELSE key_epoch END, "          \
	"agent_version = CASE WHEN $2::bigint & 64 <> 0 THEN $9 ELSE agent_version END, "          \
	"attest_status = CASE WHEN $2::bigint & 128 <> 0 THEN $10 ELSE attest_status END, "        \
	"attested_at = CASE WHEN $2::bigint & 256 <> 0 THEN $11::bigint ELSE attested_at END, "    \
	"attested_policy = CASE WHEN $2::bigint & 256 <> 0 THEN $14::bytea "                       \
	"ELSE attested_policy END, "                                                               \
	"epoch_since = CASE WHEN $2::bigint & 512 <> 0 THEN $12::bigint ELSE epoch_since END, "    \
	"superseded_by = CASE WHEN $2::bigint & 1024 <> 0 THEN $13 ELSE superseded_by END "        \
	"WHERE id = $1"

int
pg_device_patch(struct store *st, const struct device *v, unsigned fields)
{
	struct pg_args a = {0};

	_Static_assert(DEV_F_STATUS == 1 && DEV_F_POLICY == 2 && DEV_F_APPLIED == 4 &&
			       DEV_F_DESIRED == 8 && DEV_F_REPORTED == 16 &&
			       DEV_F_KEY_EPOCH == 32 && DEV_F_AGENT == 64 && DEV_F_ATTEST == 128 &&
			       DEV_F_ATTESTED_AT == 256 && DEV_F_EPOCH_SINCE == 512 &&
			       DEV_F_SUPERSEDED == 1024,
		       "the SQL below spells out the DEV_F_* bits");
	fields &= DEV_F_ALL;
	pa_text(&a, v->id);
	/* The desired state alone (every queued lock and wipe): the narrow row only. */
	if (fields == DEV_F_DESIRED) {
		pa_text(&a, v->desired_state);
		return pg_changed(
			S(st), "UPDATE device_orders SET desired_state = $2 WHERE device_id = $1",
			&a, "device desired state");
	}
	pa_int(&a, (int64_t)(fields & ~(unsigned)DEV_F_DESIRED));
	pa_text(&a, v->status);
	pa_text(&a, v->policy_name);
	pa_text(&a, v->applied_policy_name);
	pa_int(&a, v->applied_policy_version);
	pa_text(&a, v->reported_state);
	pa_int(&a, v->key_epoch);
	pa_text(&a, v->agent_version);
	pa_text(&a, v->attest_status[0] ? v->attest_status : "enrolled");
	pa_int(&a, v->attested_at);
	pa_int(&a, v->epoch_since);
	pa_text(&a, v->superseded_by);
	pa_blob(&a, v->attested_policy, sizeof(v->attested_policy));
	if (!(fields & DEV_F_DESIRED))
		return pg_changed(S(st), DEVICE_PATCH, &a, "device patch");
	/*
	 * Both tables in one statement (atomic outside a transaction too); the orders row is
	 * reached through the devices row the first part updated, so the devices row is locked
	 * first, the order every writer of device_orders takes them in.
	 */
	pa_text(&a, v->desired_state);
	return pg_changed(S(st),
			  "WITH d AS (" DEVICE_PATCH " RETURNING id) UPDATE device_orders o SET "
			  "desired_state = $15 FROM d WHERE o.device_id = d.id",
			  &a, "device patch with desired state");
}

int
pg_device_next_counter(struct store *st, const char *id, int64_t *counter)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_scalar(S(st),
			 "UPDATE device_orders SET ticket_counter = ticket_counter + 1 "
			 "WHERE device_id = $1 RETURNING ticket_counter",
			 &a, counter, "device next counter");
}

int
pg_device_delete(struct store *st, const char *id)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_changed(S(st), "DELETE FROM devices WHERE id = $1", &a, "device delete");
}

int
pg_device_touch(struct store *st, const char *id, int64_t last_seen, int64_t sig_seq)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	pa_int(&a, last_seen);
	pa_int(&a, sig_seq);
	return pg_run(S(st),
		      "UPDATE devices SET last_seen_at = greatest(last_seen_at, $2::bigint), "
		      "sig_seq = greatest(sig_seq, $3::bigint) WHERE id = $1",
		      &a, NULL, "device touch");
}

int
pg_device_ids_by_policy(struct store *st, const char *name, int is_default,
			char (*ids)[STORE_ID_MAX], size_t max, size_t *n)
{
	struct pg_args a = {0};

	pa_text(&a, name);
	pa_int(&a, is_default != 0);
	pa_int(&a, (int64_t)max);
	return pg_ids(S(st),
		      "SELECT id FROM devices WHERE status = 'active' AND (policy_name = $1 OR "
		      "($2::bigint <> 0 AND policy_name = '')) ORDER BY rowid LIMIT $3",
		      &a, ids, max, n, "device ids by policy");
}

int
pg_device_ids_by_hv_key(struct store *st, const uint8_t hv_key[32], char (*ids)[STORE_ID_MAX],
			size_t max, size_t *n)
{
	struct pg_args a = {0};

	pa_blob(&a, hv_key, 32);
	pa_int(&a, (int64_t)max);
	return pg_ids(S(st),
		      "SELECT id FROM devices WHERE hv_key = $1 AND status = 'active' "
		      "ORDER BY rowid LIMIT $2",
		      &a, ids, max, n, "devices by key");
}

int
pg_device_ids_rekey_due(struct store *st, const char *name, int is_default, int64_t epoch_before,
			int64_t quiet_since, char (*ids)[STORE_ID_MAX], size_t max, size_t *n)
{
	struct pg_args a = {0};

	pa_text(&a, name);
	pa_int(&a, is_default != 0);
	pa_int(&a, epoch_before);
	pa_int(&a, quiet_since);
	pa_int(&a, (int64_t)max);
	return pg_ids(
		S(st),
		"SELECT id FROM devices d WHERE status = 'active' AND "
		"(policy_name = $1 OR ($2::bigint <> 0 AND policy_name = '')) AND "
		"epoch_since < $3 AND NOT EXISTS (SELECT 1 FROM commands c WHERE "
		"c.device_id = d.id AND c.type = 'rekey' AND (c.status IN ('queued', "
		"'delivered', 'acknowledged') OR c.created_at >= $4)) ORDER BY rowid LIMIT $5",
		&a, ids, max, n, "rekey due");
}

int
pg_device_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n)
{
	return pg_counts(S(st), "SELECT status, count(*) FROM devices GROUP BY status ORDER BY 1",
			 out, max, n, "device counts");
}

/* Rows handled per round of the fingerprint fill: no result holds the whole table. */
#define FILL_PAGE 500

struct key_row {
	int64_t rowid;
	uint8_t hv_key[32];
};

static void
key_row(const PGresult *r, int i, void *out)
{
	struct key_row *k = out;

	k->rowid = pg_col_int(r, i, 0);
	pg_col_blob(r, i, 1, k->hv_key, sizeof(k->hv_key));
}

int
pg_fill_fingerprints(struct store *st)
{
	struct key_row *rows = calloc(FILL_PAGE, sizeof(*rows));
	int64_t after = 0, filled = 0;
	size_t n = 0;
	int r = rows != NULL ? 0 : -ENOMEM;

	/*
	 * Rows from before migration 0006 (SQL cannot hash). Each row is written only while still
	 * empty, so servers starting at once do the same harmless work; the rowid cursor makes
	 * every round progress even for a key whose fingerprint cannot be computed. The collation
	 * is the one of devices_fingerprint, so that the check at every open is an index lookup.
	 */
	while (r == 0) {
		struct pg_args a = {0};

		pa_int(&a, after);
		pa_int(&a, FILL_PAGE);
		r = pg_many(
			S(st),
			"SELECT rowid, hv_key FROM devices WHERE hv_fingerprint COLLATE \"C\" = '' "
			"AND rowid > $1 ORDER BY rowid LIMIT $2",
			&a, rows, sizeof(rows[0]), FILL_PAGE, &n, key_row, "fingerprint scan");
		for (size_t i = 0; r == 0 && i < n; i++) {
			struct pg_args u = {0};
			char fp[64];

			store_hv_fingerprint(rows[i].hv_key, fp, sizeof(fp));
			pa_text(&u, fp);
			pa_int(&u, rows[i].rowid);
			r = pg_run(S(st),
				   "UPDATE devices SET hv_fingerprint = $1 WHERE rowid = $2 AND "
				   "hv_fingerprint = ''",
				   &u, NULL, "fingerprint fill");
			after = rows[i].rowid;
			filled++;
		}
		if (n < FILL_PAGE)
			break;
	}
	free(rows);
	if (r == 0 && filled > 0)
		log_info("store: %lld hypervisor key fingerprints filled in", (long long)filled);
	return r;
}

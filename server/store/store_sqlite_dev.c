/*
 * The SQLite backend's devices: one row per enrolled device, read whole (DEVICE_COLS, the
 * mapping store_sqlite_query.c shares), patched field by field, and the lookups the service's
 * policy, rekey and compliance paths make. Each op is one prepared statement on the calling
 * thread's connection, in the caller's transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "store_fault.h"
#include "store_fp.h"
#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

#define DEVICE_COLS                                                                                \
	"rowid, id, owner, status, device_key, hv_key, measurement, enrollment_token_id, model, "  \
	"os, agent_version, policy_name, applied_policy_name, applied_policy_version, "            \
	"desired_state, reported_state, key_epoch, ticket_counter, sig_seq, enrolled_at, "         \
	"last_seen_at, attest_status, attested_at, epoch_since, superseded_by, replaces, "         \
	"attested_policy, hv_sig_alg, hv_spki, hv_identity, endorsement, endorsement_ca"

static void
device_row(sqlite3_stmt *q, struct device *d)
{
	d->rowid = sqlite3_column_int64(q, 0);
	sq_col_text(q, 1, d->id, sizeof(d->id));
	sq_col_text(q, 2, d->owner, sizeof(d->owner));
	sq_col_text(q, 3, d->status, sizeof(d->status));
	sq_col_blob(q, 4, d->device_key, sizeof(d->device_key));
	sq_col_blob(q, 5, d->hv_key, sizeof(d->hv_key));
	sq_col_blob(q, 6, d->measurement, sizeof(d->measurement));
	sq_col_text(q, 7, d->enrollment_token_id, sizeof(d->enrollment_token_id));
	sq_col_text(q, 8, d->model, sizeof(d->model));
	sq_col_text(q, 9, d->os, sizeof(d->os));
	sq_col_text(q, 10, d->agent_version, sizeof(d->agent_version));
	sq_col_text(q, 11, d->policy_name, sizeof(d->policy_name));
	sq_col_text(q, 12, d->applied_policy_name, sizeof(d->applied_policy_name));
	d->applied_policy_version = sqlite3_column_int64(q, 13);
	sq_col_text(q, 14, d->desired_state, sizeof(d->desired_state));
	sq_col_text(q, 15, d->reported_state, sizeof(d->reported_state));
	d->key_epoch = sqlite3_column_int64(q, 16);
	d->ticket_counter = sqlite3_column_int64(q, 17);
	d->sig_seq = sqlite3_column_int64(q, 18);
	d->enrolled_at = sqlite3_column_int64(q, 19);
	d->last_seen_at = sqlite3_column_int64(q, 20);
	sq_col_text(q, 21, d->attest_status, sizeof(d->attest_status));
	d->attested_at = sqlite3_column_int64(q, 22);
	d->epoch_since = sqlite3_column_int64(q, 23);
	sq_col_text(q, 24, d->superseded_by, sizeof(d->superseded_by));
	sq_col_text(q, 25, d->replaces, sizeof(d->replaces));
	sq_col_blob(q, 26, d->attested_policy, sizeof(d->attested_policy));
	d->hv_sig_alg = sqlite3_column_int(q, 27);
	d->hv_spki_len = (uint16_t)sqlite3_column_bytes(q, 28);
	if (d->hv_spki_len > sizeof(d->hv_spki))
		d->hv_spki_len =
			0; /* never written so: the verifier then refuses the device's key */
	if (d->hv_spki_len > 0)
		memcpy(d->hv_spki, sqlite3_column_blob(q, 28), d->hv_spki_len);
	sq_col_text(q, 29, d->hv_identity, sizeof(d->hv_identity));
	sq_col_text(q, 30, d->endorsement, sizeof(d->endorsement));
	sq_col_text(q, 31, d->endorsement_ca, sizeof(d->endorsement_ca));
}

int
sq_device_insert(struct store *st, const struct device *d)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_INSERT,
				  "INSERT INTO devices (id, owner, status, device_key, hv_key, "
				  "measurement, enrollment_token_id, model, os, agent_version, "
				  "policy_name, key_epoch, enrolled_at, last_seen_at, epoch_since, "
				  "replaces, attested_policy, hv_fingerprint, hv_sig_alg, hv_spki, "
				  "hv_identity, endorsement, endorsement_ca) "
				  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
	char fp[64];

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, d->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, d->owner, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, d->status, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, d->device_key, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 5, d->hv_key, 32, SQLITE_STATIC);
	sqlite3_bind_blob(q, 6, d->measurement, 32, SQLITE_STATIC);
	sqlite3_bind_text(q, 7, d->enrollment_token_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, d->model, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 9, d->os, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 10, d->agent_version, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 11, d->policy_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 12, d->key_epoch);
	sqlite3_bind_int64(q, 13, d->enrolled_at);
	sqlite3_bind_int64(q, 14, d->last_seen_at);
	sqlite3_bind_int64(q, 15, d->epoch_since);
	sqlite3_bind_text(q, 16, d->replaces, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 17, d->attested_policy, sizeof(d->attested_policy), SQLITE_STATIC);
	store_hv_fingerprint(d->hv_key, fp, sizeof(fp));
	sqlite3_bind_text(q, 18, fp, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 19, d->hv_sig_alg);
	if (d->hv_spki_len > 0)
		sqlite3_bind_blob(q, 20, d->hv_spki, d->hv_spki_len, SQLITE_STATIC);
	else
		sqlite3_bind_null(q, 20);
	sqlite3_bind_text(q, 21, d->hv_identity[0] ? d->hv_identity : "file", -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 22, d->endorsement, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 23, d->endorsement_ca, -1, SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "device insert");
}

int
sq_device_get(struct store *st, const char *id, struct device *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_DEVICE_GET, "SELECT " DEVICE_COLS " FROM devices WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)device_row, "device get");
}

int
sq_device_list(struct store *st, const struct device_filter *f, struct device *out, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_LIST,
				  "SELECT " DEVICE_COLS " FROM devices WHERE rowid > ?1 AND "
				  "(?2 IS NULL OR status = ?2) AND (?3 IS NULL OR owner = ?3) "
				  "ORDER BY rowid LIMIT ?4");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, f->after);
	if (f->status)
		sqlite3_bind_text(q, 2, f->status, -1, SQLITE_STATIC);
	if (f->owner)
		sqlite3_bind_text(q, 3, f->owner, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, (int64_t)f->limit);
	return sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)device_row,
		       "device list");
}

int
sq_device_patch(struct store *st, const struct device *v, unsigned fields)
{
	sqlite3_stmt *q = sq_stmt(
		S(st), SQ_DEVICE_PATCH,
		"UPDATE devices SET "
		"status = CASE WHEN ?2 & 1 THEN ?3 ELSE status END, "
		"policy_name = CASE WHEN ?2 & 2 THEN ?4 ELSE policy_name END, "
		"applied_policy_name = CASE WHEN ?2 & 4 THEN ?5 ELSE applied_policy_name END, "
		"applied_policy_version = CASE WHEN ?2 & 4 THEN ?6 ELSE applied_policy_version "
		"END, "
		"desired_state = CASE WHEN ?2 & 8 THEN ?7 ELSE desired_state END, "
		"reported_state = CASE WHEN ?2 & 16 THEN ?8 ELSE reported_state END, "
		"key_epoch = CASE WHEN ?2 & 32 THEN ?9 ELSE key_epoch END, "
		"agent_version = CASE WHEN ?2 & 64 THEN ?10 ELSE agent_version END, "
		"attest_status = CASE WHEN ?2 & 128 THEN ?11 ELSE attest_status END, "
		"attested_at = CASE WHEN ?2 & 256 THEN ?12 ELSE attested_at END, "
		"attested_policy = CASE WHEN ?2 & 256 THEN ?15 ELSE attested_policy END, "
		"epoch_since = CASE WHEN ?2 & 512 THEN ?13 ELSE epoch_since END, "
		"superseded_by = CASE WHEN ?2 & 1024 THEN ?14 ELSE superseded_by END "
		"WHERE id = ?1");

	_Static_assert(DEV_F_STATUS == 1 && DEV_F_POLICY == 2 && DEV_F_APPLIED == 4 &&
			       DEV_F_DESIRED == 8 && DEV_F_REPORTED == 16 &&
			       DEV_F_KEY_EPOCH == 32 && DEV_F_AGENT == 64 && DEV_F_ATTEST == 128 &&
			       DEV_F_ATTESTED_AT == 256 && DEV_F_EPOCH_SINCE == 512 &&
			       DEV_F_SUPERSEDED == 1024,
		       "the SQL above spells out the DEV_F_* bits");
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, v->id, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, (int)(fields & DEV_F_ALL));
	sqlite3_bind_text(q, 3, v->status, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, v->policy_name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, v->applied_policy_name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, v->applied_policy_version);
	sqlite3_bind_text(q, 7, v->desired_state, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 8, v->reported_state, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 9, v->key_epoch);
	sqlite3_bind_text(q, 10, v->agent_version, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 11, v->attest_status[0] ? v->attest_status : "enrolled", -1,
			  SQLITE_STATIC);
	sqlite3_bind_int64(q, 12, v->attested_at);
	sqlite3_bind_int64(q, 13, v->epoch_since);
	sqlite3_bind_text(q, 14, v->superseded_by, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 15, v->attested_policy, sizeof(v->attested_policy), SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "device patch");
}

int
sq_device_next_counter(struct store *st, const char *id, int64_t *counter)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_NEXT_COUNTER,
				  "UPDATE devices SET ticket_counter = ticket_counter + 1 "
				  "WHERE id = ? RETURNING ticket_counter");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_int64(S(st), q, counter, "device next counter");
}

int
sq_device_delete(struct store *st, const char *id)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_DELETE, "DELETE FROM devices WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "device delete");
}

int
sq_device_touch(struct store *st, const char *id, int64_t last_seen, int64_t sig_seq)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_TOUCH,
				  "UPDATE devices SET last_seen_at = max(last_seen_at, ?2), "
				  "sig_seq = max(sig_seq, ?3) WHERE id = ?1");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, last_seen);
	sqlite3_bind_int64(q, 3, sig_seq);
	return sq_exec_stmt(S(st), q, "device touch");
}

int
sq_device_ids_by_policy(struct store *st, const char *name, int is_default,
			char (*ids)[STORE_ID_MAX], size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_IDS_BY_POLICY,
				  "SELECT id FROM devices WHERE status = 'active' AND "
				  "(policy_name = ?1 OR (?2 AND policy_name = '')) ORDER BY rowid");
	size_t k = 0;
	int rc;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, is_default);
	while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW)
		sq_col_text(q, 0, ids[k++], STORE_ID_MAX);
	*n = k;
	rc = k < max ? rc : SQLITE_DONE;
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : sq_err(S(st), rc, "device ids by policy");
}

int
sq_device_ids_by_hv_key(struct store *st, const uint8_t hv_key[32], char (*ids)[STORE_ID_MAX],
			size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_IDS_BY_HV_KEY,
				  "SELECT id FROM devices WHERE hv_key = ? AND status = 'active' "
				  "ORDER BY rowid");
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, hv_key, 32, SQLITE_STATIC);
	while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW)
		sq_col_text(q, 0, ids[k++], STORE_ID_MAX);
	*n = k;
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(S(st), rc, "devices by key");
}

int
sq_device_ids_rekey_due(struct store *st, const char *name, int is_default, int64_t epoch_before,
			int64_t quiet_since, char (*ids)[STORE_ID_MAX], size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(
		S(st), SQ_DEVICE_IDS_REKEY_DUE,
		"SELECT id FROM devices d WHERE status = 'active' AND "
		"(policy_name = ?1 OR (?2 AND policy_name = '')) AND epoch_since < ?3 AND "
		"NOT EXISTS (SELECT 1 FROM commands c WHERE c.device_id = d.id AND "
		"c.type = 'rekey' AND (c.status IN ('queued', 'delivered', 'acknowledged') OR "
		"c.created_at >= ?4)) ORDER BY rowid LIMIT ?5");
	size_t k = 0;
	int rc = SQLITE_DONE;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, 2, is_default);
	sqlite3_bind_int64(q, 3, epoch_before);
	sqlite3_bind_int64(q, 4, quiet_since);
	sqlite3_bind_int64(q, 5, (int64_t)max);
	while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW)
		sq_col_text(q, 0, ids[k++], STORE_ID_MAX);
	*n = k;
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(S(st), rc, "rekey due");
}

int
sq_device_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_DEVICE_COUNT,
				  "SELECT status, count(*) FROM devices GROUP BY status");

	if (q == NULL)
		return -EIO;
	return sq_counts(S(st), q, out, max, n, "device counts");
}

/* For store_sqlite_query.c: the columns and the mapping every device read here uses. */
const char sq_device_cols[] = DEVICE_COLS;

void
sq_device_row(sqlite3_stmt *q, struct device *d)
{
	device_row(q, d);
}

/*
 * The PostgreSQL backend of the store interface: transactions, tokens, enrollment, policies and
 * devices. Commands, the audit log and admin accounts are in store_pg_cmd.c and
 * store_pg_admin.c. Unlike SQLite, several servers may write at once, so every op that reads
 * and then writes does it in one statement (UPDATE ... RETURNING, DELETE ... RETURNING, a
 * guarded UPDATE) or under a row lock, and unique constraints back every "only once".
 *
 * Lock order inside one transaction (so that two cannot wait on each other): an idempotency
 * key (command_by_idempotency inside a transaction), then enrollment-token
 * rows (etoken_use, which only enrollment takes, before it touches any device), then device rows
 * (device_get_for_update or an UPDATE of the row; several in one transaction in the order the
 * store listed them), then command rows (command_update takes the command's device first itself;
 * command_expire takes both and skips what is held), then admin rows, then the policy-default
 * lock, and the audit head last (taken by audit_last, which the audit module calls when it
 * appends, normally at the end of a transaction). A deadlock that happens
 * anyway, or a serialization failure, is detected by PostgreSQL and surfaces as -EDEADLK: the
 * transaction is lost as a whole and the service runs all of it again, reads included, a
 * bounded number of times (svc_tx_again); single statements outside a transaction are retried
 * a few times in pg_conn.c. A lost or refused connection is -ENOTCONN (503, retry later).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_conn.h"
#include "store_fault.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

static int
pg_tx_begin(struct store *st)
{
	struct pg_conn *c = pg_conn_get(S(st));
	int r;

	if (c == NULL)
		return -ENOTCONN;
	if (c->in_tx)
		return -EINVAL;
	r = store_fault_hit();
	if (r != 0) {
		log_err("store: begin: injected fault");
		return r;
	}
	r = pg_run(S(st), PG_SQL_BEGIN, NULL, NULL, "begin");
	if (r != 0)
		return r;
	c->in_tx = 1;
	c->tx_failed = c->audit_locked = 0;
	return 0;
}

static void
tx_end(struct pg_conn *c)
{
	c->in_tx = c->tx_failed = c->audit_locked = 0;
}

/*
 * What a failed COMMIT means: a serialization failure or deadlock rolled the transaction back
 * (run it again); a lost connection leaves its outcome unknown, which the service answers
 * with 503 (an Idempotency-Key makes the retry safe); anything else is a failure.
 */
static int
commit_error(struct pg_conn *c, const char *state)
{
	if (state != NULL && (!strcmp(state, "40001") || !strcmp(state, "40P01")))
		return -EDEADLK;
	if (PQstatus(c->db) == CONNECTION_BAD || (state != NULL && !strncmp(state, "57P", 3)) ||
	    (state != NULL && !strncmp(state, "08", 2)))
		return -ENOTCONN;
	return -EIO;
}

static int
pg_tx_commit(struct store *st)
{
	struct pg_conn *c = pg_conn_get(S(st));
	PGresult *res;
	int r;

	if (c == NULL || !c->in_tx)
		return -EINVAL;
	r = store_fault_hit();
	if (r != 0) {
		log_err("store: commit: injected fault");
	} else if (c->tx_failed) {
		r = -EIO;
	} else {
		res = PQexec(c->db, "COMMIT");
		/* A transaction that had failed answers COMMIT with ROLLBACK. */
		if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK ||
		    strcmp(PQcmdStatus(res), "COMMIT") != 0) {
			const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

			r = commit_error(c, state);
			log_err("store: commit: %s", PQerrorMessage(c->db));
		}
		PQclear(res);
		tx_end(c);
		return r;
	}
	PQclear(PQexec(c->db, "ROLLBACK"));
	tx_end(c);
	return r;
}

static void
pg_tx_rollback(struct store *st)
{
	struct pg_conn *c = pg_conn_get(S(st));

	if (c == NULL || !c->in_tx)
		return;
	PQclear(PQexec(c->db, "ROLLBACK"));
	tx_end(c);
}

/* ---- API tokens ---- */

#define TOKEN_COLS "id, name, role, hash, created_by, created_at, expires_at, revoked_at, rowid"

static void
token_row(const PGresult *r, int i, void *out)
{
	struct api_token *t = out;

	pg_col_text(r, i, 0, t->id, sizeof(t->id));
	pg_col_text(r, i, 1, t->name, sizeof(t->name));
	pg_col_text(r, i, 2, t->role, sizeof(t->role));
	pg_col_blob(r, i, 3, t->hash, sizeof(t->hash));
	pg_col_text(r, i, 4, t->created_by, sizeof(t->created_by));
	t->created_at = pg_col_int(r, i, 5);
	t->expires_at = pg_col_int(r, i, 6);
	t->revoked_at = pg_col_int(r, i, 7);
	t->rowid = pg_col_int(r, i, 8);
}

static int
pg_token_insert(struct store *st, const struct api_token *t)
{
	struct pg_args a = {0};

	pa_text(&a, t->id);
	pa_text(&a, t->name);
	pa_text(&a, t->role);
	pa_blob(&a, t->hash, sizeof(t->hash));
	pa_text(&a, t->created_by);
	pa_int(&a, t->created_at);
	pa_int(&a, t->expires_at);
	return pg_run(S(st),
		      "INSERT INTO api_tokens (id, name, role, hash, created_by, created_at, "
		      "expires_at, revoked_at) VALUES ($1,$2,$3,$4,$5,$6,$7,0)",
		      &a, NULL, "token insert");
}

static int
pg_token_by_hash(struct store *st, const uint8_t hash[32], struct api_token *out)
{
	struct pg_args a = {0};

	pa_blob(&a, hash, 32);
	return pg_one(S(st), "SELECT " TOKEN_COLS " FROM api_tokens WHERE hash = $1", &a, out,
		      token_row, "token by hash");
}

static int
pg_token_list(struct store *st, int64_t after, size_t limit, struct api_token *out, size_t *n)
{
	struct pg_args a = {0};

	pa_int(&a, after);
	pa_int(&a, (int64_t)limit);
	return pg_many(S(st),
		       "SELECT " TOKEN_COLS " FROM api_tokens WHERE rowid > $1 ORDER BY rowid "
		       "LIMIT $2",
		       &a, out, sizeof(*out), limit, n, token_row, "token list");
}

static int
pg_token_get(struct store *st, const char *id, struct api_token *out)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_one(S(st), "SELECT " TOKEN_COLS " FROM api_tokens WHERE id = $1", &a, out,
		      token_row, "token get");
}

static int
pg_token_revoke(struct store *st, const char *id, int64_t now)
{
	struct pg_args a = {0};

	pa_int(&a, now);
	pa_text(&a, id);
	return pg_changed(S(st),
			  "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at = 0",
			  &a, "token revoke");
}

static int
pg_token_count(struct store *st, int64_t *n)
{
	return pg_scalar(S(st), "SELECT count(*) FROM api_tokens", NULL, n, "token count");
}

/* ---- enrollment tokens and nonces ---- */

#define ETOKEN_COLS                                                                                \
	"id, owner, hash, uses_max, uses, created_by, created_at, expires_at, revoked_at, rowid"

static void
etoken_row(const PGresult *r, int i, void *out)
{
	struct enroll_token *t = out;

	pg_col_text(r, i, 0, t->id, sizeof(t->id));
	pg_col_text(r, i, 1, t->owner, sizeof(t->owner));
	pg_col_blob(r, i, 2, t->hash, sizeof(t->hash));
	t->uses_max = pg_col_int(r, i, 3);
	t->uses = pg_col_int(r, i, 4);
	pg_col_text(r, i, 5, t->created_by, sizeof(t->created_by));
	t->created_at = pg_col_int(r, i, 6);
	t->expires_at = pg_col_int(r, i, 7);
	t->revoked_at = pg_col_int(r, i, 8);
	t->rowid = pg_col_int(r, i, 9);
}

static int
pg_etoken_insert(struct store *st, const struct enroll_token *t)
{
	struct pg_args a = {0};

	pa_text(&a, t->id);
	pa_text(&a, t->owner);
	pa_blob(&a, t->hash, sizeof(t->hash));
	pa_int(&a, t->uses_max);
	pa_text(&a, t->created_by);
	pa_int(&a, t->created_at);
	pa_int(&a, t->expires_at);
	return pg_run(S(st),
		      "INSERT INTO enrollment_tokens (id, owner, hash, uses_max, uses, created_by, "
		      "created_at, expires_at) VALUES ($1,$2,$3,$4,0,$5,$6,$7)",
		      &a, NULL, "enrollment token insert");
}

static int
pg_etoken_by_hash(struct store *st, const uint8_t hash[32], struct enroll_token *out)
{
	struct pg_args a = {0};

	pa_blob(&a, hash, 32);
	return pg_one(S(st), "SELECT " ETOKEN_COLS " FROM enrollment_tokens WHERE hash = $1", &a,
		      out, etoken_row, "enrollment token by hash");
}

static int
pg_etoken_get(struct store *st, const char *id, struct enroll_token *out)
{
	struct pg_args a = {0};

	pa_text(&a, id);
	return pg_one(S(st), "SELECT " ETOKEN_COLS " FROM enrollment_tokens WHERE id = $1", &a, out,
		      etoken_row, "enrollment token get");
}

static int
pg_etoken_list(struct store *st, int64_t after, size_t limit, struct enroll_token *out, size_t *n)
{
	struct pg_args a = {0};

	pa_int(&a, after);
	pa_int(&a, (int64_t)limit);
	return pg_many(S(st),
		       "SELECT " ETOKEN_COLS " FROM enrollment_tokens WHERE rowid > $1 "
		       "ORDER BY rowid LIMIT $2",
		       &a, out, sizeof(*out), limit, n, etoken_row, "enrollment token list");
}

static int
pg_etoken_revoke(struct store *st, const char *id, int64_t now)
{
	struct pg_args a = {0};

	pa_int(&a, now);
	pa_text(&a, id);
	return pg_changed(S(st),
			  "UPDATE enrollment_tokens SET revoked_at = $1 WHERE id = $2 AND "
			  "revoked_at = 0",
			  &a, "enrollment token revoke");
}

static int
pg_etoken_use(struct store *st, const char *id)
{
	struct pg_args a = {0};

	/*
	 * One statement: a second server's concurrent use waits on the row lock, then PostgreSQL
	 * re-checks uses < uses_max against the committed row, so the count never passes uses_max.
	 */
	pa_text(&a, id);
	return pg_changed(S(st),
			  "UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = $1 AND "
			  "uses < uses_max",
			  &a, "enrollment token use");
}

static int
pg_nonce_insert(struct store *st, const uint8_t nonce[32], const struct enroll_nonce *n)
{
	struct pg_args a = {0};

	if (n->ak_name_len > sizeof(n->ak_name))
		return -EINVAL;
	pa_blob(&a, nonce, 32);
	pa_int(&a, n->expires_at);
	pa_text(&a, n->token_id);
	pa_blob(&a, n->ak_name_len > 0 ? n->ak_name : NULL, n->ak_name_len); /* NULL: in plain */
	pa_text(&a, n->ek_issuer);
	return pg_run(S(st),
		      "INSERT INTO enroll_nonces (nonce, expires_at, token_id, tpm_ak, ek_issuer) "
		      "VALUES ($1,$2,$3,$4,$5)",
		      &a, NULL, "nonce insert");
}

static void
nonce_row(const PGresult *r, int i, void *out)
{
	struct enroll_nonce *n = out;
	int len = PQgetisnull(r, i, 2) ? 0 : PQgetlength(r, i, 2);

	n->expires_at = pg_col_int(r, i, 0);
	pg_col_text(r, i, 1, n->token_id, sizeof(n->token_id));
	/* never written longer; a longer one is no AK this server named, so it matches none */
	n->ak_name_len = len > 0 && (size_t)len <= sizeof(n->ak_name) ? (uint16_t)len : 0;
	if (n->ak_name_len > 0)
		memcpy(n->ak_name, PQgetvalue(r, i, 2), n->ak_name_len);
	pg_col_text(r, i, 3, n->ek_issuer, sizeof(n->ek_issuer));
}

static int
pg_nonce_take(struct store *st, const uint8_t nonce[32], int64_t now, struct enroll_nonce *out)
{
	struct pg_args a = {0};
	int r;

	/* DELETE ... RETURNING: of two servers taking the same nonce, one gets the row. */
	memset(out, 0, sizeof(*out));
	pa_blob(&a, nonce, 32);
	r = pg_one(S(st),
		   "DELETE FROM enroll_nonces WHERE nonce = $1 RETURNING expires_at, token_id, "
		   "tpm_ak, ek_issuer",
		   &a, out, nonce_row, "nonce take");
	if (r != 0)
		return r;
	return out->expires_at < now ? -ETIME : 0;
}

static int
pg_nonce_purge(struct store *st, int64_t now)
{
	struct pg_args a = {0};

	pa_int(&a, now);
	return pg_run(S(st), "DELETE FROM enroll_nonces WHERE expires_at < $1", &a, NULL,
		      "nonce purge");
}

/* ---- policies ---- */

#define POLICY_COLS "name, version, body, is_default, updated_at"

static void
policy_row(const PGresult *r, int i, void *out)
{
	struct policy *p = out;

	pg_col_text(r, i, 0, p->name, sizeof(p->name));
	p->version = pg_col_int(r, i, 1);
	pg_col_text(r, i, 2, p->body, sizeof(p->body));
	p->is_default = (int)pg_col_int(r, i, 3);
	p->updated_at = pg_col_int(r, i, 4);
}

static int
pg_policy_put(struct store *st, const struct policy *p)
{
	struct pg_args a = {0};
	int r;

	/*
	 * The service reads the version and writes the next one. Two servers doing that at once
	 * would both write version N+1 with different bodies; only a newer version replaces the
	 * row here, so the second finds nothing changed and its transaction is run again
	 * (-EDEADLK: the service reads the new version and writes the one after it).
	 */
	pa_text(&a, p->name);
	pa_int(&a, p->version);
	pa_text(&a, p->body);
	pa_int(&a, p->updated_at);
	r = pg_changed(
		S(st),
		"INSERT INTO policies (name, version, body, is_default, updated_at) VALUES "
		"($1,$2,$3,0,$4) ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
		"body = excluded.body, updated_at = excluded.updated_at "
		"WHERE policies.version < excluded.version",
		&a, "policy put");
	return r == -ENOENT ? -EDEADLK : r;
}

static int
pg_policy_get(struct store *st, const char *name, struct policy *out)
{
	struct pg_args a = {0};

	pa_text(&a, name);
	return pg_one(S(st), "SELECT " POLICY_COLS " FROM policies WHERE name = $1", &a, out,
		      policy_row, "policy get");
}

static int
pg_policy_default(struct store *st, struct policy *out)
{
	return pg_one(S(st), "SELECT " POLICY_COLS " FROM policies WHERE is_default = 1", NULL, out,
		      policy_row, "policy default");
}

static int
pg_policy_set_default(struct store *st, const char *name)
{
	struct pg_args a = {0}, l = {0};
	int r;

	/*
	 * Two concurrent changes of the default take turns on the advisory lock, in its own
	 * statement so that the UPDATE's snapshot, taken after the wait, sees the other's row.
	 * Outside a transaction the lock ends with its statement; the partial unique index on
	 * is_default is the backstop then.
	 */
	pa_int(&l, PG_LOCK_POLICY);
	r = pg_run(S(st), "SELECT pg_advisory_xact_lock($1)", &l, NULL, "policy default lock");
	if (r != 0)
		return r;
	/* Clear the old flag first: the unique index is checked row by row, not at the end. */
	pa_text(&a, name);
	r = pg_run(S(st),
		   "UPDATE policies SET is_default = 0 WHERE is_default = 1 AND name <> $1 AND "
		   "EXISTS (SELECT 1 FROM policies WHERE name = $1)",
		   &a, NULL, "policy default clear");
	if (r != 0)
		return r;
	return pg_changed(S(st), "UPDATE policies SET is_default = 1 WHERE name = $1", &a,
			  "policy set default");
}

static int
pg_policy_list(struct store *st, struct policy *out, size_t max, size_t *n)
{
	struct pg_args a = {0};

	pa_int(&a, (int64_t)max);
	return pg_many(S(st), "SELECT " POLICY_COLS " FROM policies ORDER BY name LIMIT $1", &a,
		       out, sizeof(*out), max, n, policy_row, "policy list");
}

static int
pg_ping(struct store *st)
{
	int64_t one = 0;
	int r = pg_scalar(S(st), "SELECT 1", NULL, &one, "ping");

	/* The first statement after a restart finds the old session gone and opens a new one. */
	if (r == -ENOTCONN)
		r = pg_scalar(S(st), "SELECT 1", NULL, &one, "ping");
	return r == 0 && one == 1 ? 0 : r != 0 ? r : -EIO;
}

static void
pg_close(struct store *st)
{
	struct pg_store *s = S(st);
	struct pg_conn *c, *next;

	if (s == NULL)
		return;
	pg_listen_stop(st); /* its thread reads s->url and the list of connections */
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		PQfinish(c->db);
		free(c);
	}
	pthread_key_delete(s->key);
	pthread_mutex_destroy(&s->list_lock);
	free(s->url);
	free(s);
}

static const struct store_ops pg_ops = {
	.name = "postgresql",
	.close = pg_close,
	.ping = pg_ping,
	.tx_begin = pg_tx_begin,
	.tx_commit = pg_tx_commit,
	.tx_rollback = pg_tx_rollback,
	.token_insert = pg_token_insert,
	.token_by_hash = pg_token_by_hash,
	.token_list = pg_token_list,
	.token_revoke = pg_token_revoke,
	.token_count = pg_token_count,
	.token_get = pg_token_get,
	.etoken_insert = pg_etoken_insert,
	.etoken_by_hash = pg_etoken_by_hash,
	.etoken_get = pg_etoken_get,
	.etoken_list = pg_etoken_list,
	.etoken_revoke = pg_etoken_revoke,
	.etoken_use = pg_etoken_use,
	.nonce_insert = pg_nonce_insert,
	.nonce_take = pg_nonce_take,
	.nonce_purge = pg_nonce_purge,
	.request_nonce_claim = pg_request_nonce_claim,
	.request_nonce_purge = pg_request_nonce_purge,
	.keys_pin = pg_keys_pin,
	.policy_put = pg_policy_put,
	.policy_get = pg_policy_get,
	.policy_default = pg_policy_default,
	.policy_set_default = pg_policy_set_default,
	.policy_list = pg_policy_list,
	.policy_counts = pg_policy_counts,
	.device_insert = pg_device_insert,
	.device_get = pg_device_get,
	.device_get_for_update = pg_device_get_for_update,
	.device_list = pg_device_list,
	.device_patch = pg_device_patch,
	.device_next_counter = pg_device_next_counter,
	.device_delete = pg_device_delete,
	.device_touch = pg_device_touch,
	.device_ids_by_hv_key = pg_device_ids_by_hv_key,
	.device_ids_by_policy = pg_device_ids_by_policy,
	.device_ids_rekey_due = pg_device_ids_rekey_due,
	.device_count_by_status = pg_device_count_by_status,
	.device_query = pg_device_query,
	.device_count = pg_device_count,
	.device_summary = pg_device_summary,
	.command_insert = pg_command_insert,
	.command_get = pg_command_get,
	.command_by_idempotency = pg_command_by_idempotency,
	.command_list = pg_command_list_any,
	.command_open = pg_command_open,
	.command_update = pg_command_update,
	.command_expire = pg_command_expire,
	.command_count_by_status = pg_command_count_by_status,
	.audit_insert = pg_audit_insert,
	.command_open_of_type = pg_command_open_of_type,
	.device_next_counters = pg_device_next_counters,
	.command_insert_many = pg_command_insert_many,
	.audit_insert_many = pg_audit_insert_many,
	.audit_last = pg_audit_last,
	.audit_list = pg_audit_list,
	.audit_iter = pg_audit_iter,
	.audit_get = pg_audit_get,
	.audit_ckpt_insert = pg_audit_ckpt_insert,
	.audit_ckpt_last = pg_audit_ckpt_last,
	.audit_ckpt_iter = pg_audit_ckpt_iter,
	.audit_iter_range = pg_audit_iter_range,
	.audit_ckpt_iter_after = pg_audit_ckpt_iter_after,
	.admin_insert = pg_admin_insert,
	.admin_by_email = pg_admin_by_email,
	.admin_get = pg_admin_get,
	.admin_list = pg_admin_list,
	.admin_count = pg_admin_count,
	.admin_disable = pg_admin_disable,
	.session_insert = pg_session_insert,
	.session_get = pg_session_get,
	.session_touch = pg_session_touch,
	.session_delete = pg_session_delete,
	.session_delete_admin = pg_session_delete_admin,
	.admin_set_totp = pg_admin_set_totp,
	.admin_login_result = pg_admin_login_result,
	.admin_totp_used = pg_admin_totp_used,
	.portal_link_insert = pg_portal_link_insert,
	.portal_link_get = pg_portal_link_get,
	.siem_claim = pg_siem_claim,
	.siem_advance = pg_siem_advance,
	.siem_release = pg_siem_release,
	.siem_get = pg_siem_get,
	.webhook_insert = pg_webhook_insert,
	.webhook_get = pg_webhook_get,
	.webhook_list = pg_webhook_list,
	.webhook_save = pg_webhook_save,
	.webhook_delete = pg_webhook_delete,
	.event_append = pg_event_append,
	.webhook_claim = pg_webhook_claim,
	.event_next = pg_event_next,
	.event_get = pg_event_get,
	.delivery_insert = pg_delivery_insert,
	.delivery_list = pg_delivery_list,
	.delivery_get = pg_delivery_get,
	.redeliver_add = pg_redeliver_add,
	.redeliver_next = pg_redeliver_next,
	.redeliver_drop = pg_redeliver_drop,
	.event_prune = pg_event_prune,
	.webhook_skip = pg_webhook_skip,
	.oidc_flow_insert = pg_oidc_flow_insert,
	.oidc_flow_take = pg_oidc_flow_take,
	.admin_by_identity = pg_admin_by_identity,
	.admin_identity_insert = pg_admin_identity_insert,
	.admin_sso_update = pg_admin_sso_update,
	.notify_device = pg_notify_device,
	.notify_policy = pg_notify_policy,
	.notify_sweep = pg_notify_sweep,
	.approval_insert = pg_approval_insert,
	.approval_get = pg_approval_get,
	.approval_list = pg_approval_list,
	.approval_decide = pg_approval_decide,
	.approval_expired = pg_approval_expired,
	.command_set_approval = pg_command_set_approval,
	.token_permission_add = pg_token_permission_add,
	.token_permission_has = pg_token_permission_has,
	.bulk_insert = pg_bulk_insert,
	.bulk_release = pg_bulk_release,
	.bulk_get = pg_bulk_get,
	.bulk_by_idempotency = pg_bulk_by_idempotency,
	.bulk_claim = pg_bulk_claim,
	.bulk_progress = pg_bulk_progress,
	.bulk_list = pg_bulk_list,
	.bulk_stop = pg_bulk_stop,
	.listen = pg_listen_start,
	.unlisten = pg_listen_stop,
	.devices_with_queued = pg_devices_with_queued,
	.labels_get = pg_labels_get,
	.label_put = pg_label_put,
	.label_delete = pg_label_delete,
	.group_insert = pg_group_insert,
	.group_get = pg_group_get,
	.group_list = pg_group_list,
	.group_update = pg_group_update,
	.group_delete = pg_group_delete,
	.group_policies = pg_group_policies,
	.device_matches = pg_device_matches,
};

int
store_pg_open(const char *url, struct store **out)
{
	struct pg_store *s = calloc(1, sizeof(*s));
	struct pg_conn *c;
	int r;

	if (s == NULL)
		return -ENOMEM;
	s->base.ops = &pg_ops;
	s->url = strdup(url);
	if (s->url == NULL || pthread_key_create(&s->key, pg_conn_release) != 0) {
		free(s->url);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->list_lock, NULL);
	c = pg_conn_get(s);
	if (c == NULL) {
		pg_close(&s->base);
		return -EIO;
	}
	r = pg_migrate(s, c->db);
	if (r == 0)
		r = pg_fill_fingerprints(&s->base);
	if (r != 0) {
		pg_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

int
store_pg_schema_version(struct store *st)
{
	return S(st)->schema_version;
}

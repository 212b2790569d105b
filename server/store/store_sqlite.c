/*
 * The SQLite backend of the store interface: tokens, enrollment and policies, the transactions
 * and the ops table. Devices are in store_sqlite_dev.c, commands and the audit log in
 * store_sqlite_cmd.c. Each op is one prepared statement (or a short
 * sequence) on the calling thread's connection; transactions are the caller's business via
 * tx_begin/tx_commit. This file is one of the two that include sqlite3.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "sqlite_conn.h"
#include "store_fault.h"
#include "store_fp.h"
#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Called by the holder just before it lets the write lock go: keeps the hold statistics, and
 * says when one hold was long (at most once a minute), with how much of it was the COMMIT
 * (a synced write of the log; checkpoints run on their own thread, sqlite_ckpt.c).
 */
static void
hold_done(struct sq_store *s, int64_t commit_us)
{
	static _Atomic int64_t logged_at;
	int64_t now = mono_us(), held = now - s->lock_at_us;
	int64_t max = atomic_load(&s->hold_max_us), last = atomic_load(&logged_at);

	while (held > max && !atomic_compare_exchange_weak(&s->hold_max_us, &max, held))
		;
	if (held <= 50000)
		return;
	atomic_fetch_add(&s->holds_over_50ms, 1);
	if ((last == 0 || now - last > 60000000) &&
	    atomic_compare_exchange_strong(&logged_at, &last, now))
		log_warn(
			"store: a write transaction held the write lock for %lld ms (%lld ms of it "
			"in COMMIT); other writers waited",
			(long long)held / 1000, (long long)commit_us / 1000);
}

static int
sq_tx_hold_stats(struct store *st, int64_t *max_us, int64_t *over_50ms)
{
	*max_us = atomic_load(&S(st)->hold_max_us);
	*over_50ms = atomic_load(&S(st)->holds_over_50ms);
	return 0;
}

/* Waits for the write turn, behind every thread that asked before. */
static void
write_turn_take(struct sq_store *s)
{
	uint64_t mine;

	pthread_mutex_lock(&s->wl_lock);
	mine = s->wl_next++;
	while (s->wl_serving != mine)
		pthread_cond_wait(&s->wl_turn, &s->wl_lock);
	pthread_mutex_unlock(&s->wl_lock);
}

static void
write_turn_give(struct sq_store *s)
{
	pthread_mutex_lock(&s->wl_lock);
	s->wl_serving++;
	pthread_cond_broadcast(&s->wl_turn);
	pthread_mutex_unlock(&s->wl_lock);
}

static int
sq_write_waiters(struct store *st)
{
	struct sq_store *s = S(st);
	uint64_t asked, served;

	pthread_mutex_lock(&s->wl_lock);
	asked = s->wl_next;
	served = s->wl_serving;
	pthread_mutex_unlock(&s->wl_lock);
	/* Tickets taken and not yet served, less the holder's own (when the lock is held). */
	return asked > served ? (int)(asked - served - 1) : 0;
}

static int
sq_tx_begin(struct store *st)
{
	struct sq_store *s = S(st);
	struct sq_conn *c = sq_conn_get(s);
	int rc;

	if (c == NULL)
		return -EIO;
	rc = store_fault_hit();
	if (rc != 0) {
		log_err("store: begin: injected fault");
		return rc;
	}
	write_turn_take(s);
	s->lock_at_us = mono_us();
	rc = sqlite3_exec(c->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		write_turn_give(s);
		return sq_err(s, rc, "begin");
	}
	c->in_tx = 1;
	return 0;
}

static int
sq_tx_commit(struct store *st)
{
	struct sq_store *s = S(st);
	struct sq_conn *c = sq_conn_get(s);
	int64_t t0;
	int r;

	if (c == NULL || !c->in_tx)
		return -EINVAL;
	r = store_fault_hit();
	t0 = mono_us();
	if (r != 0)
		log_err("store: commit: injected fault");
	else
		r = sq_err(s, sqlite3_exec(c->db, "COMMIT", NULL, NULL, NULL), "commit");
	if (r != 0)
		sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	c->in_tx = 0;
	hold_done(s, mono_us() - t0);
	write_turn_give(s);
	return r;
}

static void
sq_tx_rollback(struct store *st)
{
	struct sq_store *s = S(st);
	struct sq_conn *c = sq_conn_get(s);

	if (c == NULL || !c->in_tx)
		return;
	sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
	c->in_tx = 0;
	hold_done(s, 0);
	write_turn_give(s);
}

/* ---- API tokens ---- */

#define TOKEN_COLS "id, name, role, hash, created_by, created_at, expires_at, revoked_at, rowid"

static void
token_row(sqlite3_stmt *q, struct api_token *t)
{
	sq_col_text(q, 0, t->id, sizeof(t->id));
	sq_col_text(q, 1, t->name, sizeof(t->name));
	sq_col_text(q, 2, t->role, sizeof(t->role));
	sq_col_blob(q, 3, t->hash, sizeof(t->hash));
	sq_col_text(q, 4, t->created_by, sizeof(t->created_by));
	t->created_at = sqlite3_column_int64(q, 5);
	t->expires_at = sqlite3_column_int64(q, 6);
	t->revoked_at = sqlite3_column_int64(q, 7);
	t->rowid = sqlite3_column_int64(q, 8);
}

static int
sq_token_insert(struct store *st, const struct api_token *t)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_TOKEN_INSERT,
				  "INSERT INTO api_tokens (id, name, role, hash, created_by, "
				  "created_at, expires_at, revoked_at) VALUES (?,?,?,?,?,?,?,0)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, t->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, t->role, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 4, t->hash, sizeof(t->hash), SQLITE_STATIC);
	sqlite3_bind_text(q, 5, t->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, t->created_at);
	sqlite3_bind_int64(q, 7, t->expires_at);
	return sq_exec_stmt(S(st), q, "token insert");
}

static int
sq_token_by_hash(struct store *st, const uint8_t hash[32], struct api_token *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_TOKEN_BY_HASH,
				  "SELECT " TOKEN_COLS " FROM api_tokens WHERE hash = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, hash, 32, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)token_row, "token by hash");
}

static int
sq_token_list(struct store *st, int64_t after, size_t limit, struct api_token *out, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_TOKEN_LIST,
				  "SELECT " TOKEN_COLS " FROM api_tokens WHERE rowid > ? "
				  "ORDER BY rowid LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, after);
	sqlite3_bind_int64(q, 2, (int64_t)limit);
	return sq_many(S(st), q, out, sizeof(*out), limit, n, (sq_row_fn)token_row, "token list");
}

static int
sq_token_get(struct store *st, const char *id, struct api_token *out)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_TOKEN_GET, "SELECT " TOKEN_COLS " FROM api_tokens WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)token_row, "token get");
}

static int
sq_token_revoke(struct store *st, const char *id, int64_t now)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_TOKEN_REVOKE,
				  "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND "
				  "revoked_at = 0");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "token revoke");
}

static int
sq_token_count(struct store *st, int64_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_TOKEN_COUNT, "SELECT count(*) FROM api_tokens");

	if (q == NULL)
		return -EIO;
	return sq_int64(S(st), q, n, "token count");
}

/* ---- enrollment tokens and nonces ---- */

#define ETOKEN_COLS                                                                                \
	"id, owner, hash, uses_max, uses, created_by, created_at, expires_at, revoked_at, rowid"

static void
etoken_row(sqlite3_stmt *q, struct enroll_token *t)
{
	sq_col_text(q, 0, t->id, sizeof(t->id));
	sq_col_text(q, 1, t->owner, sizeof(t->owner));
	sq_col_blob(q, 2, t->hash, sizeof(t->hash));
	t->uses_max = sqlite3_column_int64(q, 3);
	t->uses = sqlite3_column_int64(q, 4);
	sq_col_text(q, 5, t->created_by, sizeof(t->created_by));
	t->created_at = sqlite3_column_int64(q, 6);
	t->expires_at = sqlite3_column_int64(q, 7);
	t->revoked_at = sqlite3_column_int64(q, 8);
	t->rowid = sqlite3_column_int64(q, 9);
}

static int
sq_etoken_insert(struct store *st, const struct enroll_token *t)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ETOKEN_INSERT,
				  "INSERT INTO enrollment_tokens (id, owner, hash, uses_max, uses, "
				  "created_by, created_at, expires_at) VALUES (?,?,?,?,0,?,?,?)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, t->id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, t->owner, -1, SQLITE_STATIC);
	sqlite3_bind_blob(q, 3, t->hash, sizeof(t->hash), SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, t->uses_max);
	sqlite3_bind_text(q, 5, t->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, t->created_at);
	sqlite3_bind_int64(q, 7, t->expires_at);
	return sq_exec_stmt(S(st), q, "enrollment token insert");
}

static int
sq_etoken_by_hash(struct store *st, const uint8_t hash[32], struct enroll_token *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ETOKEN_BY_HASH,
				  "SELECT " ETOKEN_COLS " FROM enrollment_tokens WHERE hash = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_blob(q, 1, hash, 32, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)etoken_row, "enrollment token by hash");
}

static int
sq_etoken_get(struct store *st, const char *id, struct enroll_token *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ETOKEN_GET,
				  "SELECT " ETOKEN_COLS " FROM enrollment_tokens WHERE id = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)etoken_row, "enrollment token get");
}

static int
sq_etoken_list(struct store *st, int64_t after, size_t limit, struct enroll_token *out, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ETOKEN_LIST,
				  "SELECT " ETOKEN_COLS " FROM enrollment_tokens WHERE rowid > ? "
				  "ORDER BY rowid LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, after);
	sqlite3_bind_int64(q, 2, (int64_t)limit);
	return sq_many(S(st), q, out, sizeof(*out), limit, n, (sq_row_fn)etoken_row,
		       "enrollment token list");
}

static int
sq_etoken_revoke(struct store *st, const char *id, int64_t now)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ETOKEN_REVOKE,
				  "UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND "
				  "revoked_at = 0");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	sqlite3_bind_text(q, 2, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "enrollment token revoke");
}

static int
sq_etoken_use(struct store *st, const char *id)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_ETOKEN_USE,
				  "UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ? AND "
				  "uses < uses_max");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "enrollment token use");
}

static int
sq_nonce_insert(struct store *st, const uint8_t nonce[32], const struct enroll_nonce *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_NONCE_INSERT,
				  "INSERT INTO enroll_nonces (nonce, expires_at, token_id, tpm_ak, "
				  "ek_issuer) VALUES (?, ?, ?, ?, ?)");

	if (q == NULL)
		return -EIO;
	if (n->ak_name_len > sizeof(n->ak_name))
		return -EINVAL;
	sqlite3_bind_blob(q, 1, nonce, 32, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, n->expires_at);
	sqlite3_bind_text(q, 3, n->token_id, -1, SQLITE_STATIC);
	if (n->ak_name_len > 0) /* else NULL: a nonce handed out in plain */
		sqlite3_bind_blob(q, 4, n->ak_name, n->ak_name_len, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, n->ek_issuer, -1, SQLITE_STATIC);
	return sq_exec_stmt(S(st), q, "nonce insert");
}

static void
nonce_row(sqlite3_stmt *q, struct enroll_nonce *n)
{
	int len = sqlite3_column_bytes(q, 2);

	n->expires_at = sqlite3_column_int64(q, 0);
	sq_col_text(q, 1, n->token_id, sizeof(n->token_id));
	/* never written longer; a longer one is no AK this server named, so it matches none */
	n->ak_name_len = len > 0 && (size_t)len <= sizeof(n->ak_name) ? (uint16_t)len : 0;
	if (n->ak_name_len > 0)
		memcpy(n->ak_name, sqlite3_column_blob(q, 2), n->ak_name_len);
	sq_col_text(q, 3, n->ek_issuer, sizeof(n->ek_issuer));
}

static int
sq_nonce_take(struct store *st, const uint8_t nonce[32], int64_t now, struct enroll_nonce *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_NONCE_TAKE,
				  "DELETE FROM enroll_nonces WHERE nonce = ? "
				  "RETURNING expires_at, token_id, tpm_ak, ek_issuer");
	int r;

	if (q == NULL)
		return -EIO;
	memset(out, 0, sizeof(*out));
	sqlite3_bind_blob(q, 1, nonce, 32, SQLITE_STATIC);
	r = sq_one(S(st), q, out, (sq_row_fn)nonce_row, "nonce take");
	if (r != 0)
		return r;
	return out->expires_at < now ? -ETIME : 0;
}

static int
sq_nonce_purge(struct store *st, int64_t now)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_NONCE_PURGE, "DELETE FROM enroll_nonces WHERE expires_at < ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, now);
	return sq_exec_stmt(S(st), q, "nonce purge");
}

/* ---- policies ---- */

#define POLICY_COLS "name, version, body, is_default, updated_at"

static void
policy_row(sqlite3_stmt *q, struct policy *p)
{
	sq_col_text(q, 0, p->name, sizeof(p->name));
	p->version = sqlite3_column_int64(q, 1);
	sq_col_text(q, 2, p->body, sizeof(p->body));
	p->is_default = sqlite3_column_int(q, 3);
	p->updated_at = sqlite3_column_int64(q, 4);
}

static int
sq_policy_put(struct store *st, const struct policy *p)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_POLICY_PUT,
			"INSERT INTO policies (name, version, body, is_default, updated_at) "
			"VALUES (?,?,?,0,?) ON CONFLICT (name) DO UPDATE SET "
			"version = excluded.version, body = excluded.body, "
			"updated_at = excluded.updated_at");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, p->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, p->version);
	sqlite3_bind_text(q, 3, p->body, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 4, p->updated_at);
	return sq_exec_stmt(S(st), q, "policy put");
}

static int
sq_policy_get(struct store *st, const char *name, struct policy *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_POLICY_GET,
				  "SELECT " POLICY_COLS " FROM policies WHERE name = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)policy_row, "policy get");
}

static int
sq_policy_default(struct store *st, struct policy *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_POLICY_DEFAULT,
				  "SELECT " POLICY_COLS " FROM policies WHERE is_default = 1");

	if (q == NULL)
		return -EIO;
	return sq_one(S(st), q, out, (sq_row_fn)policy_row, "policy default");
}

static int
sq_policy_set_default(struct store *st, const char *name)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_POLICY_SET_DEFAULT,
				  "UPDATE policies SET is_default = (name = ?1) "
				  "WHERE (is_default = 1 OR name = ?1) AND "
				  "EXISTS (SELECT 1 FROM policies WHERE name = ?1)");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "policy set default");
}

static int
sq_policy_list(struct store *st, struct policy *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_POLICY_LIST,
				  "SELECT " POLICY_COLS " FROM policies ORDER BY name LIMIT ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)max);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)policy_row, "policy list");
}

static void
sq_close(struct store *st)
{
	struct sq_store *s = S(st);
	struct sq_conn *c, *next;

	if (s == NULL)
		return;
	sq_ckpt_stop(s);
	sqlite3_close(s->ckpt.db);
	for (c = s->conns; c != NULL; c = next) {
		next = c->next;
		for (int i = 0; i < SQ_MAX_STMTS; i++)
			sqlite3_finalize(c->stmts[i]);
		sqlite3_close(c->db);
		free(c);
	}
	pthread_key_delete(s->key);
	pthread_mutex_destroy(&s->list_lock);
	pthread_mutex_destroy(&s->wl_lock);
	pthread_cond_destroy(&s->wl_turn);
	free(s->path);
	free(s);
}

static const struct store_ops sqlite_ops = {
	.name = "sqlite",
	.close = sq_close,
	.tx_begin = sq_tx_begin,
	.tx_hold_stats = sq_tx_hold_stats,
	.write_waiters = sq_write_waiters,
	.tx_commit = sq_tx_commit,
	.tx_rollback = sq_tx_rollback,
	.token_insert = sq_token_insert,
	.token_by_hash = sq_token_by_hash,
	.token_list = sq_token_list,
	.token_revoke = sq_token_revoke,
	.token_count = sq_token_count,
	.token_get = sq_token_get,
	.etoken_insert = sq_etoken_insert,
	.etoken_by_hash = sq_etoken_by_hash,
	.etoken_get = sq_etoken_get,
	.etoken_list = sq_etoken_list,
	.etoken_revoke = sq_etoken_revoke,
	.etoken_use = sq_etoken_use,
	.nonce_insert = sq_nonce_insert,
	.nonce_take = sq_nonce_take,
	.nonce_purge = sq_nonce_purge,
	.policy_put = sq_policy_put,
	.policy_get = sq_policy_get,
	.policy_default = sq_policy_default,
	.policy_set_default = sq_policy_set_default,
	.policy_list = sq_policy_list,
	.policy_counts = sq_policy_counts,
	.device_insert = sq_device_insert,
	.device_get = sq_device_get,
	.device_get_for_update = sq_device_get,
	.device_list = sq_device_list,
	.device_patch = sq_device_patch,
	.device_next_counter = sq_device_next_counter,
	.device_delete = sq_device_delete,
	.device_touch = sq_device_touch,
	.device_ids_by_hv_key = sq_device_ids_by_hv_key,
	.device_ids_by_policy = sq_device_ids_by_policy,
	.device_ids_rekey_due = sq_device_ids_rekey_due,
	.device_count_by_status = sq_device_count_by_status,
	.device_query = sq_device_query,
	.device_count = sq_device_count,
	.device_summary = sq_device_summary,
	.command_insert = sq_command_insert,
	.command_get = sq_command_get,
	.command_by_idempotency = sq_command_by_idempotency,
	.command_list = sq_command_list_any,
	.command_open = sq_command_open,
	.command_update = sq_command_update,
	.command_expire = sq_command_expire,
	.command_count_by_status = sq_command_count_by_status,
	.audit_insert = sq_audit_insert,
	.audit_last = sq_audit_last,
	.audit_list = sq_audit_list,
	.audit_iter = sq_audit_iter,
	.audit_get = sq_audit_get,
	.audit_ckpt_insert = sq_audit_ckpt_insert,
	.audit_ckpt_last = sq_audit_ckpt_last,
	.audit_ckpt_iter = sq_audit_ckpt_iter,
	.audit_iter_range = sq_audit_iter_range,
	.audit_ckpt_iter_after = sq_audit_ckpt_iter_after,
	.admin_insert = sq_admin_insert,
	.admin_by_email = sq_admin_by_email,
	.admin_get = sq_admin_get,
	.admin_list = sq_admin_list,
	.admin_count = sq_admin_count,
	.admin_disable = sq_admin_disable,
	.session_insert = sq_session_insert,
	.session_get = sq_session_get,
	.session_touch = sq_session_touch,
	.session_delete = sq_session_delete,
	.session_delete_admin = sq_session_delete_admin,
	.admin_set_totp = sq_admin_set_totp,
	.admin_login_result = sq_admin_login_result,
	.admin_totp_used = sq_admin_totp_used,
	.approval_insert = sq_approval_insert,
	.approval_get = sq_approval_get,
	.approval_list = sq_approval_list,
	.approval_decide = sq_approval_decide,
	.approval_expired = sq_approval_expired,
	.command_set_approval = sq_command_set_approval,
	.token_permission_add = sq_token_permission_add,
	.token_permission_has = sq_token_permission_has,
	.bulk_insert = sq_bulk_insert,
	.bulk_release = sq_bulk_release,
	.bulk_get = sq_bulk_get,
	.bulk_by_idempotency = sq_bulk_by_idempotency,
	.bulk_claim = sq_bulk_claim,
	.bulk_progress = sq_bulk_progress,
	.bulk_list = sq_bulk_list,
	.bulk_stop = sq_bulk_stop,
	.portal_link_insert = sq_portal_link_insert,
	.portal_link_get = sq_portal_link_get,
	.siem_claim = sq_siem_claim,
	.siem_advance = sq_siem_advance,
	.siem_release = sq_siem_release,
	.siem_get = sq_siem_get,
	.webhook_insert = sq_webhook_insert,
	.webhook_get = sq_webhook_get,
	.webhook_list = sq_webhook_list,
	.webhook_save = sq_webhook_save,
	.webhook_delete = sq_webhook_delete,
	.event_append = sq_event_append,
	.webhook_claim = sq_webhook_claim,
	.event_next = sq_event_next,
	.event_get = sq_event_get,
	.delivery_insert = sq_delivery_insert,
	.delivery_list = sq_delivery_list,
	.delivery_get = sq_delivery_get,
	.redeliver_add = sq_redeliver_add,
	.redeliver_next = sq_redeliver_next,
	.redeliver_drop = sq_redeliver_drop,
	.event_prune = sq_event_prune,
	.webhook_skip = sq_webhook_skip,
	.oidc_flow_insert = sq_oidc_flow_insert,
	.oidc_flow_take = sq_oidc_flow_take,
	.admin_by_identity = sq_admin_by_identity,
	.admin_identity_insert = sq_admin_identity_insert,
	.admin_sso_update = sq_admin_sso_update,
	.keys_pin = sq_keys_pin,
	.labels_get = sq_labels_get,
	.label_put = sq_label_put,
	.label_delete = sq_label_delete,
	.group_insert = sq_group_insert,
	.group_get = sq_group_get,
	.group_list = sq_group_list,
	.group_update = sq_group_update,
	.group_delete = sq_group_delete,
	.group_policies = sq_group_policies,
	.device_matches = sq_device_matches,
};

int
store_sqlite_open(const char *path, struct store **out)
{
	struct sq_store *s = calloc(1, sizeof(*s));
	struct sq_conn *c;
	int r;

	if (s == NULL)
		return -ENOMEM;
	s->base.ops = &sqlite_ops;
	s->path = strdup(path);
	if (s->path == NULL || pthread_key_create(&s->key, sq_conn_release) != 0) {
		free(s->path);
		free(s);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->list_lock, NULL);
	pthread_mutex_init(&s->wl_lock, NULL);
	pthread_cond_init(&s->wl_turn, NULL);
	c = sq_conn_get(s);
	if (c == NULL) {
		sq_close(&s->base);
		return -EIO;
	}
	r = sq_quick_check(s, c->db);
	if (r == 0)
		r = sq_migrate(s, c->db);
	if (r == 0)
		r = sq_fill_fingerprints(s, c->db);
	if (r == 0)
		r = sq_conn_open_own(s, &s->ckpt.db);
	if (r == 0)
		r = sq_ckpt_start(s, s->ckpt.db);
	if (r != 0) {
		sq_close(&s->base);
		return r;
	}
	*out = &s->base;
	return 0;
}

int
store_sqlite_schema_version(struct store *st)
{
	return S(st)->schema_version;
}

/*
 * Private to the SQLite backend: statement slots, row helpers and the command/audit ops that
 * live in store_sqlite_cmd.c. Only files in store/ include this.
 */
#ifndef CLEAVE_STORE_SQLITE_PRIV_H
#define CLEAVE_STORE_SQLITE_PRIV_H

#include "sqlite_conn.h"

/* One slot per prepared statement in every connection's cache. */
enum {
	SQ_TOKEN_INSERT,
	SQ_TOKEN_BY_HASH,
	SQ_TOKEN_LIST,
	SQ_TOKEN_REVOKE,
	SQ_TOKEN_COUNT,
	SQ_ETOKEN_INSERT,
	SQ_ETOKEN_BY_HASH,
	SQ_ETOKEN_GET,
	SQ_ETOKEN_LIST,
	SQ_ETOKEN_REVOKE,
	SQ_ETOKEN_USE,
	SQ_NONCE_INSERT,
	SQ_NONCE_TAKE,
	SQ_NONCE_PURGE,
	SQ_POLICY_PUT,
	SQ_POLICY_GET,
	SQ_POLICY_DEFAULT,
	SQ_POLICY_SET_DEFAULT,
	SQ_POLICY_LIST,
	SQ_POLICY_COUNTS,
	SQ_DEVICE_INSERT,
	SQ_DEVICE_GET,
	SQ_DEVICE_LIST,
	SQ_DEVICE_PATCH,
	SQ_DEVICE_NEXT_COUNTER,
	SQ_DEVICE_DELETE,
	SQ_DEVICE_TOUCH,
	SQ_DEVICE_IDS_BY_POLICY,
	SQ_DEVICE_IDS_BY_HV_KEY,
	SQ_DEVICE_IDS_REKEY_DUE,
	SQ_DEVICE_COUNT,
	SQ_CMD_INSERT,
	SQ_CMD_GET,
	SQ_CMD_BY_IDEM,
	SQ_CMD_LIST,
	SQ_CMD_OPEN,
	SQ_CMD_UPDATE,
	SQ_CMD_EXPIRE,
	SQ_CMD_COUNT,
	SQ_AUDIT_INSERT,
	SQ_AUDIT_LAST,
	SQ_AUDIT_ITER,
	SQ_AUDIT_GET,
	SQ_CKPT_INSERT,
	SQ_CKPT_LAST,
	SQ_CKPT_ITER,
	SQ_AUDIT_RANGE,
	SQ_CKPT_AFTER,
	SQ_ADMIN_INSERT,
	SQ_ADMIN_BY_EMAIL,
	SQ_ADMIN_GET,
	SQ_ADMIN_LIST,
	SQ_ADMIN_COUNT,
	SQ_ADMIN_DISABLE,
	SQ_SESSION_INSERT,
	SQ_SESSION_GET,
	SQ_SESSION_TOUCH,
	SQ_SESSION_DELETE,
	SQ_SESSION_DELETE_ADMIN,
	SQ_ADMIN_SET_TOTP,
	SQ_ADMIN_LOGIN_RESULT,
	SQ_ADMIN_TOTP_USED,
	SQ_PORTAL_LINK_INSERT,
	SQ_PORTAL_LINK_GET,
	SQ_OIDC_FLOW_PURGE,
	SQ_OIDC_FLOW_INSERT,
	SQ_OIDC_FLOW_TAKE,
	SQ_ADMIN_BY_IDENTITY,
	SQ_ADMIN_IDENTITY_INSERT,
	SQ_ADMIN_SSO_UPDATE,
	SQ_KEYS_PUT,
	SQ_KEYS_REPLACE,
	SQ_KEYS_GET,
	SQ_BULK_INSERT,
	SQ_BULK_GET,
	SQ_BULK_BY_IDEM,
	SQ_BULK_CLAIM,
	SQ_BULK_PROGRESS,
	SQ_BULK_LIST,
	SQ_BULK_LIST_STATE,
	SQ_BULK_STOP,
	SQ_TOKEN_GET,
	SQ_LABELS_GET,
	SQ_LABEL_PUT,
	SQ_LABEL_DELETE,
	SQ_GROUP_INSERT,
	SQ_GROUP_GET,
	SQ_GROUP_LIST,
	SQ_GROUP_UPDATE,
	SQ_GROUP_DELETE,
	SQ_GROUP_POLICIES,
	SQ_APPROVAL_INSERT,
	SQ_APPROVAL_GET,
	SQ_APPROVAL_LIST,
	SQ_APPROVAL_DECIDE,
	SQ_CMD_SET_APPROVAL,
	SQ_TOKEN_PERM_ADD,
	SQ_TOKEN_PERM_HAS,
	SQ_BULK_RELEASE,
	SQ_APPROVAL_EXPIRED,
	SQ_SIEM_MAKE,
	SQ_SIEM_CLAIM,
	SQ_SIEM_ADVANCE,
	SQ_SIEM_RELEASE,
	SQ_SIEM_GET,
	SQ_HOOK_INSERT,
	SQ_HOOK_HEAD,
	SQ_HOOK_GET,
	SQ_HOOK_LIST,
	SQ_HOOK_SAVE,
	SQ_HOOK_DEL1,
	SQ_HOOK_DEL2,
	SQ_HOOK_DEL3,
	SQ_HOOK_WANTED,
	SQ_HOOK_BUMP,
	SQ_HOOK_EVENT_INSERT,
	SQ_HOOK_CLAIM,
	SQ_HOOK_LEASE,
	SQ_HOOK_EVENT_NEXT,
	SQ_HOOK_EVENT_GET,
	SQ_HOOK_DLV_INSERT,
	SQ_HOOK_DLV_LIST,
	SQ_HOOK_DLV_GET,
	SQ_HOOK_REDO_ADD,
	SQ_HOOK_REDO_NEXT,
	SQ_HOOK_REDO_DROP,
	SQ_HOOK_PRUNE_EV,
	SQ_HOOK_PRUNE_DLV,
	SQ_HOOK_SKIP,
	SQ_STMT_COUNT
};
_Static_assert(SQ_STMT_COUNT <= SQ_MAX_STMTS, "statement cache too small");

typedef void (*sq_row_fn)(sqlite3_stmt *q, void *out);

/* The columns every device / command read selects, and the mapping of such a row. */
extern const char sq_device_cols[];
extern const char sq_command_cols[];
void sq_device_row(sqlite3_stmt *q, struct device *d);
void sq_command_row(sqlite3_stmt *q, struct command *c);

/* Steps q for one row and maps it with fn; -ENOENT when there is none. Resets q. */
int sq_one(struct sq_store *s, sqlite3_stmt *q, void *out, sq_row_fn fn, const char *what);
/* Maps up to max rows into out (elements of size bytes); *n gets the count. Resets q. */
int sq_many(struct sq_store *s, sqlite3_stmt *q, void *out, size_t size, size_t max, size_t *n,
	    sq_row_fn fn, const char *what);
/* Steps q and reads column 0 of its one row; -ENOENT when there is none. Resets q. */
int sq_int64(struct sq_store *s, sqlite3_stmt *q, int64_t *v, const char *what);
/* Runs a write; -ENOENT when it changed no row. */
int sq_exec_changed(struct sq_store *s, sqlite3_stmt *q, const char *what);
/* Reads (text, count) rows into out. */
int sq_counts(struct sq_store *s, sqlite3_stmt *q, struct status_count *out, size_t max, size_t *n,
	      const char *what);

int sq_command_insert(struct store *st, const struct command *c);
int sq_command_get(struct store *st, const char *id, struct command *out);
int sq_command_by_idempotency(struct store *st, const char *created_by, const char *key,
			      struct command *out);
int sq_command_list(struct store *st, const struct command_filter *f, struct command *out,
		    size_t *n);
int sq_command_open(struct store *st, const char *device_id, struct command *out, size_t max,
		    size_t *n);
int sq_command_update(struct store *st, const struct command *c, const char *from);
int sq_command_expire(struct store *st, int64_t now, char (*devices)[STORE_ID_MAX], size_t max,
		      size_t *n);
int sq_command_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n);
int sq_audit_insert(struct store *st, struct audit_entry *e);
int sq_audit_last(struct store *st, struct audit_entry *out);
/* The audit table's columns in the order sq_audit_row reads them. */
#define SQ_AUDIT_COLS "seq, at_ms, actor, action, target, outcome, detail, prev_hash, hash"
void sq_audit_row(sqlite3_stmt *q, struct audit_entry *e);
int sq_audit_list(struct store *st, const struct audit_filter *f, struct audit_entry *out,
		  size_t *n);
int sq_audit_iter(struct store *st, audit_iter_fn fn, void *ctx);
int sq_audit_get(struct store *st, int64_t seq, struct audit_entry *out);
int sq_audit_iter_range(struct store *st, int64_t after_seq, size_t limit, audit_iter_fn fn,
			void *ctx);
/* The console's queries, in store_sqlite_query.c (devices, commands) and store_sqlite_auditq.c (audit, policy counts). */
int sq_policy_counts(struct store *st, const char *name, int is_default, int64_t version,
		     int64_t *assigned, int64_t *applied);
/* store_sqlite_dev.c */
int sq_device_insert(struct store *st, const struct device *d);
int sq_device_get(struct store *st, const char *id, struct device *out);
int sq_device_list(struct store *st, const struct device_filter *f, struct device *out, size_t *n);
int sq_device_patch(struct store *st, const struct device *v, unsigned fields);
int sq_device_next_counter(struct store *st, const char *id, int64_t *counter);
int sq_device_delete(struct store *st, const char *id);
int sq_device_touch(struct store *st, const char *id, int64_t last_seen, int64_t sig_seq);
int sq_device_ids_by_policy(struct store *st, const char *name, int is_default,
			    char (*ids)[STORE_ID_MAX], size_t max, size_t *n);
int sq_device_ids_by_hv_key(struct store *st, const uint8_t hv_key[32], char (*ids)[STORE_ID_MAX],
			    size_t max, size_t *n);
int sq_device_ids_rekey_due(struct store *st, const char *name, int is_default,
			    int64_t epoch_before, int64_t quiet_since, char (*ids)[STORE_ID_MAX],
			    size_t max, size_t *n);
int sq_device_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n);
int sq_device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n);
int sq_device_count(struct store *st, const struct device_query *q, int64_t *n);
/* Bulk operations by filter, in store_sqlite_bulk.c. */
int sq_bulk_insert(struct store *st, const struct bulk_op *b);
int sq_bulk_get(struct store *st, const char *id, struct bulk_op *out);
int sq_bulk_by_idempotency(struct store *st, const char *requested_by, const char *key,
			   struct bulk_op *out);
int sq_bulk_claim(struct store *st, struct bulk_op *out);
int sq_bulk_progress(struct store *st, const struct bulk_op *b);
int sq_bulk_list(struct store *st, const struct bulk_list_filter *f, struct bulk_op *out,
		 size_t *n);
int sq_bulk_stop(struct store *st, const char *id, const char *state, const char *by,
		 const char *why, int64_t now);
/* Labels and groups, in store_sqlite_labels.c; device_matches in store_sqlite_query.c. */
int sq_labels_get(struct store *st, const char *device_id, struct device_label *out, size_t max,
		  size_t *n);
int sq_label_put(struct store *st, const char *device_id, const char *key, const char *value);
int sq_label_delete(struct store *st, const char *device_id, const char *key);
int sq_group_insert(struct store *st, const struct device_group *g);
int sq_group_get(struct store *st, const char *name, struct device_group *out);
int sq_group_list(struct store *st, const char *after, struct device_group *out, size_t max,
		  size_t *n);
int sq_group_update(struct store *st, const struct device_group *g);
int sq_group_delete(struct store *st, const char *name);
int sq_group_policies(struct store *st, struct device_group *out, size_t max, size_t *n);
int sq_device_matches(struct store *st, const char *device_id, const struct label_query *q,
		      int *match);
int sq_device_summary(struct store *st, const struct compliance_spec *spec,
		      struct device_summary *out);
/* command_list: the queue across devices (newest first, by type) built per call, the rest
 * by sq_command_list's cached statement. */
int sq_command_list_any(struct store *st, const struct command_filter *f, struct command *out,
			size_t *n);
/* Fills hv_fingerprint of rows that predate it (migration 0006); once, at open. */
int sq_fill_fingerprints(struct sq_store *s, sqlite3 *db);
/* Audit checkpoints, in store_sqlite_audit.c. */
int sq_audit_ckpt_insert(struct store *st, const struct audit_ckpt_row *c);
int sq_audit_ckpt_last(struct store *st, struct audit_ckpt_row *out);
int sq_audit_ckpt_iter(struct store *st, audit_ckpt_iter_fn fn, void *ctx);
int sq_audit_ckpt_iter_after(struct store *st, int64_t after_id, audit_ckpt_iter_fn fn, void *ctx);
/* Admin accounts and console sessions, in store_sqlite_admin.c. */
int sq_admin_insert(struct store *st, const struct admin_account *a);
int sq_admin_by_email(struct store *st, const char *email, struct admin_account *out);
int sq_admin_get(struct store *st, const char *id, struct admin_account *out);
int sq_admin_list(struct store *st, struct admin_account *out, size_t max, size_t *n);
int sq_admin_count(struct store *st, int64_t *n);
int sq_admin_disable(struct store *st, const char *id, int64_t now);
int sq_session_insert(struct store *st, const struct admin_session *ss);
int sq_session_get(struct store *st, const uint8_t hash[32], struct admin_session *out);
int sq_session_touch(struct store *st, const uint8_t hash[32], int64_t now);
int sq_session_delete(struct store *st, const uint8_t hash[32]);
int sq_session_delete_admin(struct store *st, const char *admin_id);
int sq_admin_set_totp(struct store *st, const char *id, const uint8_t secret[20]);
int sq_admin_login_result(struct store *st, const char *id, int ok, int64_t now);
int sq_admin_totp_used(struct store *st, const char *id, int64_t step);
/* The audit stream's position and lease, in store_sqlite_siem.c. */
int sq_siem_claim(struct store *st, struct siem_stream *s, const char *holder, int64_t now,
		  int64_t lease_ms);
int sq_siem_advance(struct store *st, const char *name, const char *holder, int64_t from,
		    int64_t to, int64_t ckpt_to, int64_t now, int64_t lease_ms);
int sq_siem_release(struct store *st, const char *name, const char *holder);
int sq_siem_get(struct store *st, const char *name, struct siem_stream *out);
int sq_portal_link_insert(struct store *st, const struct portal_link *l);
int sq_portal_link_get(struct store *st, const uint8_t hash[32], struct portal_link *out);
int sq_oidc_flow_insert(struct store *st, const struct oidc_flow *f);
int sq_oidc_flow_take(struct store *st, const uint8_t state_hash[32], struct oidc_flow *out);
int sq_admin_by_identity(struct store *st, const char *issuer, const char *subject,
			 struct admin_account *out);
int sq_admin_identity_insert(struct store *st, const char *issuer, const char *subject,
			     const char *admin_id, int64_t now);
int sq_admin_sso_update(struct store *st, const char *id, const char *email,
			const char *display_name, const char *role);
/* The deployment's public keys, in store_sqlite_keys.c. */
/* Webhooks, in store_sqlite_hook.c. */
int sq_webhook_insert(struct store *st, struct webhook *w);
int sq_webhook_get(struct store *st, const char *id, int for_update, struct webhook *out);
int sq_webhook_list(struct store *st, struct webhook *out, size_t max, size_t *n);
int sq_webhook_save(struct store *st, const struct webhook *w);
int sq_webhook_delete(struct store *st, const char *id);
int sq_event_append(struct store *st, struct webhook_event *e, size_t n);
int sq_webhook_claim(struct store *st, int64_t now_ms, int64_t lease_until, const char *owner,
		     struct webhook *out);
int sq_event_next(struct store *st, int64_t after, const char *events, struct webhook_event *out);
int sq_event_get(struct store *st, int64_t seq, struct webhook_event *out);
int sq_delivery_insert(struct store *st, struct webhook_delivery *d);
int sq_delivery_list(struct store *st, const char *webhook_id, int64_t before_id, size_t limit,
		     struct webhook_delivery *out, size_t *n);
int sq_delivery_get(struct store *st, int64_t id, struct webhook_delivery *out);
int sq_redeliver_add(struct store *st, const char *webhook_id, int64_t seq);
int sq_redeliver_next(struct store *st, const char *webhook_id, int64_t *seq);
int sq_redeliver_drop(struct store *st, const char *webhook_id, int64_t seq);
int sq_event_prune(struct store *st, int64_t before_ms);
int sq_webhook_skip(struct store *st);
int sq_keys_pin(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
		int replace, int64_t now, uint8_t ticket_had[32], uint8_t audit_had[32]);

/* The two-person rule's approvals and token permissions (store_sqlite_approval.c). */
int sq_approval_insert(struct store *st, const struct approval *a);
int sq_approval_get(struct store *st, const char *id, int for_update, struct approval *out);
int sq_approval_list(struct store *st, const struct approval_filter *f, struct approval *out,
		     size_t *n);
int sq_approval_decide(struct store *st, const struct approval *a);
int sq_approval_expired(struct store *st, int64_t now, struct approval *out, size_t max, size_t *n);
int sq_command_set_approval(struct store *st, const char *id, const char *approval_id,
			    const char *approved_by);
int sq_token_permission_add(struct store *st, const char *id, const char *permission);
int sq_token_permission_has(struct store *st, const char *id, const char *permission);
int sq_bulk_release(struct store *st, const char *id, int64_t now);

#endif

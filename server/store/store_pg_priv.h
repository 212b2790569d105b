/*
 * Private to the PostgreSQL backend: the ops that live outside store_pg.c (devices in
 * store_pg_dev.c, commands and the audit log in store_pg_cmd.c, admins in store_pg_admin.c).
 * Only files in store/ include this.
 */
#ifndef CLEAVE_STORE_PG_PRIV_H
#define CLEAVE_STORE_PG_PRIV_H

#include <libpq-fe.h>

#include "store.h"

/*
 * What a device read selects from: devices with its order state (ticket_counter, desired_state),
 * which lives in device_orders since migration 0016 (one row per device, made by a trigger on
 * every INSERT INTO devices). The column names are unique across the two tables, so the SQL
 * shared with SQLite (store_sqlq.c) names them unqualified.
 */
#define PG_DEVICES_FROM "devices JOIN device_orders ON device_orders.device_id = devices.id"

/* The columns every device / command / audit read selects, and the mapping of such a row. */
extern const char pg_device_cols[];
extern const char pg_command_cols[];
extern const char pg_audit_cols[];
void pg_device_row(const PGresult *r, int i, void *out);
void pg_command_row(const PGresult *r, int i, void *out);
void pg_audit_row(const PGresult *r, int i, void *out);

int pg_device_insert(struct store *st, const struct device *d);
int pg_device_get(struct store *st, const char *id, struct device *out);
int pg_device_get_for_update(struct store *st, const char *id, struct device *out);
int pg_device_list(struct store *st, const struct device_filter *f, struct device *out, size_t *n);
int pg_device_patch(struct store *st, const struct device *v, unsigned fields);
int pg_device_next_counter(struct store *st, const char *id, int64_t *counter);
int pg_device_delete(struct store *st, const char *id);
int pg_device_touch(struct store *st, const char *id, int64_t last_seen, int64_t sig_seq);
int pg_device_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n);
int pg_command_insert(struct store *st, const struct command *c);
int pg_command_get(struct store *st, const char *id, struct command *out);
int pg_command_by_idempotency(struct store *st, const char *created_by, const char *key,
			      struct command *out);
int pg_command_list(struct store *st, const struct command_filter *f, struct command *out,
		    size_t *n);
int pg_command_open(struct store *st, const char *device_id, struct command *out, size_t max,
		    size_t *n);
int pg_command_update(struct store *st, const struct command *c, const char *from);
int pg_command_count_by_status(struct store *st, struct status_count *out, size_t max, size_t *n);
int pg_audit_insert(struct store *st, struct audit_entry *e);
int pg_audit_last(struct store *st, struct audit_entry *out);
int pg_audit_get(struct store *st, int64_t seq, struct audit_entry *out);
int pg_audit_list(struct store *st, const struct audit_filter *f, struct audit_entry *out,
		  size_t *n);
int pg_audit_iter(struct store *st, audit_iter_fn fn, void *ctx);
int pg_audit_ckpt_insert(struct store *st, const struct audit_ckpt_row *c);
int pg_audit_ckpt_last(struct store *st, struct audit_ckpt_row *out);
int pg_audit_ckpt_iter(struct store *st, audit_ckpt_iter_fn fn, void *ctx);
int pg_audit_iter_range(struct store *st, int64_t after_seq, size_t limit, audit_iter_fn fn,
			void *ctx);
int pg_audit_ckpt_iter_after(struct store *st, int64_t after_id, audit_ckpt_iter_fn fn, void *ctx);
/* A bulk's batch in a few statements, in store_pg_bulkset.c. */
int pg_command_open_of_type(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
			    const char *type, char (*open_ids)[STORE_ID_MAX]);
int pg_device_next_counters(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
			    const char *desired, int64_t *counters);
int pg_command_insert_many(struct store *st, const struct command *c, size_t n);
int pg_audit_insert_many(struct store *st, const struct audit_entry *e, size_t n);
int pg_admin_insert(struct store *st, const struct admin_account *a);
int pg_admin_by_email(struct store *st, const char *email, struct admin_account *out);
int pg_admin_get(struct store *st, const char *id, struct admin_account *out);
int pg_admin_list(struct store *st, struct admin_account *out, size_t max, size_t *n);
int pg_admin_count(struct store *st, int64_t *n);
int pg_admin_disable(struct store *st, const char *id, int64_t now);
int pg_session_insert(struct store *st, const struct admin_session *ss);
int pg_session_get(struct store *st, const uint8_t hash[32], struct admin_session *out);
int pg_session_touch(struct store *st, const uint8_t hash[32], int64_t now);
int pg_session_delete(struct store *st, const uint8_t hash[32]);
int pg_session_delete_admin(struct store *st, const char *admin_id);
int pg_admin_set_totp(struct store *st, const char *id, const uint8_t secret[20]);
int pg_admin_login_result(struct store *st, const char *id, int ok, int64_t now);
int pg_admin_totp_used(struct store *st, const char *id, int64_t step);
int pg_device_ids_by_policy(struct store *st, const char *name, int is_default,
			    char (*ids)[STORE_ID_MAX], size_t max, size_t *n);
int pg_device_ids_by_hv_key(struct store *st, const uint8_t hv_key[32], char (*ids)[STORE_ID_MAX],
			    size_t max, size_t *n);
int pg_device_ids_rekey_due(struct store *st, const char *name, int is_default,
			    int64_t epoch_before, int64_t quiet_since, char (*ids)[STORE_ID_MAX],
			    size_t max, size_t *n);
int pg_command_expire(struct store *st, int64_t now, char (*devices)[STORE_ID_MAX], size_t max,
		      size_t *n);
/* Fills hv_fingerprint of rows that predate it (migration 0006); at open. */
int pg_fill_fingerprints(struct store *st);
/* The console's queries, in store_pg_query.c. */
int pg_device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n);
int pg_device_count(struct store *st, const struct device_query *q, int64_t *n);
int pg_device_summary(struct store *st, const struct compliance_spec *spec,
		      struct device_summary *out);
/* command_list: the queue across devices (newest first, by type) built per call. */
int pg_command_list_any(struct store *st, const struct command_filter *f, struct command *out,
			size_t *n);
/* Shared state of several servers (request nonces, deployment keys), in store_pg_shared.c. */
int pg_request_nonce_claim(struct store *st, const char *device_id, uint64_t nonce,
			   int64_t seen_at);
int pg_request_nonce_purge(struct store *st, int64_t before);
int pg_keys_pin(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
		int replace, int64_t now, uint8_t ticket_had[32], uint8_t audit_had[32]);
/* The audit stream's position and lease, in store_pg_siem.c. */
int pg_siem_claim(struct store *st, struct siem_stream *s, const char *holder, int64_t now,
		  int64_t lease_ms);
int pg_siem_advance(struct store *st, const char *name, const char *holder, int64_t from,
		    int64_t to, int64_t ckpt_to, int64_t now, int64_t lease_ms);
int pg_siem_release(struct store *st, const char *name, const char *holder);
int pg_siem_get(struct store *st, const char *name, struct siem_stream *out);

/* Policy counts and employee portal links, in store_pg_portal.c. */
int pg_policy_counts(struct store *st, const char *name, int is_default, int64_t version,
		     int64_t *assigned, int64_t *applied);
int pg_portal_link_insert(struct store *st, const struct portal_link *l);
int pg_portal_link_get(struct store *st, const uint8_t hash[32], struct portal_link *out);
int pg_oidc_flow_insert(struct store *st, const struct oidc_flow *f);
int pg_oidc_flow_take(struct store *st, const uint8_t state_hash[32], struct oidc_flow *out);
int pg_admin_by_identity(struct store *st, const char *issuer, const char *subject,
			 struct admin_account *out);
int pg_admin_identity_insert(struct store *st, const char *issuer, const char *subject,
			     const char *admin_id, int64_t now);
int pg_admin_sso_update(struct store *st, const char *id, const char *email,
			const char *display_name, const char *role);
/* Wake-ups across servers, in store_pg_notify.c. */
int pg_notify_device(struct store *st, const char *device_id);
int pg_notify_policy(struct store *st, const char *name, int is_default);
int pg_notify_sweep(struct store *st);
int pg_listen_start(struct store *st, const struct store_listener *l);
void pg_listen_stop(struct store *st);
int pg_devices_with_queued(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
			   char (*out)[STORE_ID_MAX], size_t *nout);

/* Labels and groups, in store_pg_labels.c; device_matches in store_pg_query.c. */
int pg_labels_get(struct store *st, const char *device_id, struct device_label *out, size_t max,
		  size_t *n);
int pg_label_put(struct store *st, const char *device_id, const char *key, const char *value);
int pg_label_delete(struct store *st, const char *device_id, const char *key);
int pg_group_insert(struct store *st, const struct device_group *g);
int pg_group_get(struct store *st, const char *name, struct device_group *out);
int pg_group_list(struct store *st, const char *after, struct device_group *out, size_t max,
		  size_t *n);
int pg_group_update(struct store *st, const struct device_group *g);
int pg_group_delete(struct store *st, const char *name);
int pg_group_policies(struct store *st, struct device_group *out, size_t max, size_t *n);
int pg_device_matches(struct store *st, const char *device_id, const struct label_query *q,
		      int *match);

/* Bulk operations by filter, in store_pg_bulk.c. */
int pg_bulk_insert(struct store *st, const struct bulk_op *b);
int pg_bulk_get(struct store *st, const char *id, struct bulk_op *out);
int pg_bulk_by_idempotency(struct store *st, const char *requested_by, const char *key,
			   struct bulk_op *out);
int pg_bulk_claim(struct store *st, struct bulk_op *out);
int pg_bulk_progress(struct store *st, const struct bulk_op *b);
int pg_bulk_list(struct store *st, const struct bulk_list_filter *f, struct bulk_op *out,
		 size_t *n);
int pg_bulk_stop(struct store *st, const char *id, const char *state, const char *by,
		 const char *why, int64_t now);

/* The two-person rule's approvals and token permissions (store_pg_approval.c). */
int pg_approval_insert(struct store *st, const struct approval *a);
int pg_approval_get(struct store *st, const char *id, int for_update, struct approval *out);
int pg_approval_list(struct store *st, const struct approval_filter *f, struct approval *out,
		     size_t *n);
int pg_approval_decide(struct store *st, const struct approval *a);
int pg_approval_expired(struct store *st, int64_t now, struct approval *out, size_t max, size_t *n);
int pg_command_set_approval(struct store *st, const char *id, const char *approval_id,
			    const char *approved_by);
int pg_token_permission_add(struct store *st, const char *id, const char *permission);
int pg_token_permission_has(struct store *st, const char *id, const char *permission);
int pg_bulk_release(struct store *st, const char *id, int64_t now);
/* Webhooks, in store_pg_hook.c. */
int pg_webhook_insert(struct store *st, struct webhook *w);
int pg_webhook_get(struct store *st, const char *id, int for_update, struct webhook *out);
int pg_webhook_list(struct store *st, struct webhook *out, size_t max, size_t *n);
int pg_webhook_save(struct store *st, const struct webhook *w);
int pg_webhook_delete(struct store *st, const char *id);
int pg_event_append(struct store *st, struct webhook_event *e, size_t n);
int pg_webhook_claim(struct store *st, int64_t now_ms, int64_t lease_until, const char *owner,
		     struct webhook *out);
int pg_event_next(struct store *st, int64_t after, const char *events, struct webhook_event *out);
int pg_event_get(struct store *st, int64_t seq, struct webhook_event *out);
int pg_delivery_insert(struct store *st, struct webhook_delivery *d);
int pg_delivery_list(struct store *st, const char *webhook_id, int64_t before_id, size_t limit,
		     struct webhook_delivery *out, size_t *n);
int pg_delivery_get(struct store *st, int64_t id, struct webhook_delivery *out);
int pg_redeliver_add(struct store *st, const char *webhook_id, int64_t seq);
int pg_redeliver_next(struct store *st, const char *webhook_id, int64_t *seq);
int pg_redeliver_drop(struct store *st, const char *webhook_id, int64_t seq);
int pg_event_prune(struct store *st, int64_t before_ms);
int pg_webhook_skip(struct store *st);

#endif

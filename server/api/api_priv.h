/*
 * Private to api/: the route table types, strict JSON field decoding, encoders for records and
 * the single place that turns failures into HTTP statuses (problem.c).
 */
#ifndef CLEAVE_API_PRIV_H
#define CLEAVE_API_PRIV_H

#include <jansson.h>

#include "api.h"
#include "util.h"

struct oidc_client;

struct api {
	struct service *svc;
	api_metrics_fn metrics;
	void *metrics_ctx;
	char tls_pin[64]; /* base64 SHA-256 of the certificate key, for the enrollment page */
	/* Single sign-on (oidc.c): NULL when not configured. */
	struct oidc_client *oidc;
	char oidc_issuer[256], oidc_role_claim[64], oidc_role_map[512], oidc_email_domain[128];
	char oidc_provider[64];
	char oidc_mfa_acr
		[256]; /* space- or comma-separated acr values that count as a second factor */
};

#define ROUTE_MAX_PARAMS 2

struct call {
	struct api *a;
	const struct api_request *rq;
	struct api_response *rs;
	struct principal who; /* admin routes: the authenticated caller */
	const char *param[ROUTE_MAX_PARAMS];
	char param_buf[ROUTE_MAX_PARAMS][160];
};

typedef void (*handler_fn)(struct call *c);

/* Failure kinds beyond the service's own, for requests that never reach it. */
enum {
	P_MALFORMED = 100, /* body is not JSON, or not an object */
	P_BAD_REQUEST,     /* query or header values that make no sense */
	P_NO_ROUTE,
	P_METHOD,
	P_TOO_LARGE,
	P_MEDIA_TYPE,
	P_BUSY,
};

/* The one function that picks statuses: fills rs with a problem+json body for kind. */
void reply_problem(struct api_response *rs, int kind, const char *detail);
/* The same with extra members (consumed; NULL for none) that the problem's kind may carry. */
void reply_problem_with(struct api_response *rs, int kind, const char *detail, json_t *extra);
void reply_svc_error(struct api_response *rs, const struct svc_error *err);
/* Serialises j (consumed) as the body with status. */
void reply_json(struct api_response *rs, int status, json_t *j);
void reply_empty(struct api_response *rs, int status);

enum field_type { F_STR, F_INT, F_BOOL, F_OBJ, F_STR_NULL, F_ARR };

struct field {
	const char *name;
	enum field_type type;
	int required;
	void *out;  /* F_STR: char[cap]; F_INT: int64_t; F_BOOL: int; F_OBJ, F_ARR: json_t * */
	size_t cap; /* F_STR: buffer size including NUL */
	int64_t min, max; /* F_INT bounds */
	int *present;     /* optional: set to 1 when the field was given (F_STR_NULL: not null) */
};

/*
 * Parses the request body as a JSON object (an empty body is {}); on failure fills rs and
 * returns NULL. The result is owned by the caller (json_decref).
 */
json_t *body_object(struct call *c);
/*
 * Copies the fields of obj into their outputs, rejecting unknown fields, wrong types, values
 * out of range, strings with NUL or over cap. On failure fills rs naming the field, returns -1.
 */
int take_fields(struct call *c, json_t *obj, const struct field *f, size_t n, const char *where);

/* Query helpers: value of name into out (percent-decoded). 1 found, 0 absent, -1 bad. */
int query_get(const char *query, const char *name, char *out, size_t cap);
/* Reads limit (1..200, default 50) and cursor; on failure fills rs and returns -1. */
int page_params(struct call *c, size_t *limit, int64_t *after);
/* The same with another default and cap for limit. */
int page_params_max(struct call *c, size_t dflt, size_t max, size_t *limit, int64_t *after);
json_t *page_cursor(int64_t last, size_t n, size_t limit);
/*
 * A keyset cursor on (created_at, id) for lists newest first (bulk operations, approvals):
 * base64url of "TAG:created_at:id". time_id_cursor makes the next page's; time_id_cursor_param
 * reads ?cursor= into *at and idbuf (untouched without one): 0, or -1 after a 400.
 */
json_t *time_id_cursor(const char *tag, int64_t at, const char *id);
int time_id_cursor_param(struct call *c, const char *tag, int64_t *at, char *idbuf, size_t cap);

/*
 * An RFC 3339 time ("2026-12-02T10:00:00Z", "…T10:00:00.250+01:00") into unix milliseconds
 * (after 1970); 0, or -1 when it is not one (auditlog.c).
 */
int api_time_parse_ms(const char *s, int64_t *out);

json_t *jtime(int64_t unix_s);
json_t *jtime_ms(int64_t unix_ms);
json_t *jb64(const void *data, size_t n);
/* Decodes a base64 string into exactly n bytes; -1 when not. */
int unb64(const char *s, void *out, size_t n);

json_t *token_json(const struct api_token *t);
json_t *etoken_json(struct api *a, const struct enroll_token *t, const char *secret);
json_t *device_json(struct api *a, const struct device *d);
/* json.c: the value of one hex digit (either case), or -1. */
int api_hexval(char ch);
/* receipt.c: PEM of the device hypervisor's public key (Ed25519, or a TPM's P-256). 0 or -errno. */
int hv_key_pem(const struct device *d, char **pem);
json_t *command_json(const struct command *c);
json_t *policy_json(const struct policy *p);
/* policy_json plus "devices": {"assigned", "applied"} (policy_json.c); owned by the caller. */
json_t *policy_reach_json(struct call *c, const struct policy *p);
json_t *audit_json(const struct audit_entry *e);

/* Handlers. */
void h_healthz(struct call *c);
/* The embedded OpenAPI document (openapi.c). */
void h_openapi(struct call *c);
void h_lease(struct call *c);
void h_receipts(struct call *c);
void h_unenroll(struct call *c);
void h_metrics(struct call *c);
void h_server(struct call *c);
void h_tokens_create(struct call *c);
void h_tokens_list(struct call *c);
void h_tokens_delete(struct call *c);
void h_etokens_create(struct call *c);
void h_etokens_list(struct call *c);
void h_etokens_delete(struct call *c);
void h_devices_list(struct call *c);
/*
 * The ids of the devices a bulk's filter object matches (the device list's filters, label
 * and group too), in row order, up to max + 1 (so *n > max says "too many"); on a bad filter
 * replies and returns -1.
 */
int api_devices_matching(struct call *c, json_t *filter, char (*ids)[STORE_ID_MAX], size_t max,
			 size_t *n);
/* The device's labels as a JSON object {"key": "value"}; null when they cannot be read. */
json_t *api_labels_of(struct call *c, const char *device_id);
void h_device_labels_get(struct call *c);
void h_device_labels_put(struct call *c);
void h_device_labels_patch(struct call *c);
void h_labels_bulk(struct call *c);
void h_groups_list(struct call *c);
void h_groups_create(struct call *c);
void h_group_get(struct call *c);
void h_group_put(struct call *c);
void h_group_delete(struct call *c);
void h_group_devices(struct call *c);
/* The console's lists, summary and bulk commands (devquery.c, issue 9). */
void h_devices_summary(struct call *c);
void h_commands_list(struct call *c);
void h_commands_bulk(struct call *c);
/* Bulk commands by filter (issue 10): the count a filter matches (devquery.c); the list, one
 * bulk's progress and its cancel (bulkops.c), and a bulk as JSON (owned by the caller). */
json_t *bulk_json(const struct bulk_op *b);
/* The two-person rule (approvals.c): a request as JSON; 202 pending_approval for a held one. */
json_t *approval_json(struct api *a, const struct approval *ap);
/* extra (may be NULL, consumed): more members of the answer, e.g. the held bulk. */
void pending_reply(struct call *c, const struct approval *ap, json_t *extra);
void h_approvals_list(struct call *c);
void h_approval_get(struct call *c);
void h_approval_approve(struct call *c);
void h_approval_reject(struct call *c);
void h_approval_cancel(struct call *c);
void h_approval_override(struct call *c);
void h_bulk_list(struct call *c);
void h_bulk_get(struct call *c);
void h_bulk_cancel(struct call *c);
void h_devices_count(struct call *c);
void h_device_get(struct call *c);
void h_device_delete(struct call *c);
void h_device_policy(struct call *c);
void h_commands_create(struct call *c);
void h_commands_of_device(struct call *c);
void h_command_get(struct call *c);
void h_command_cancel(struct call *c);
/* receipt.c: a command's receipt and ticket decoded, and the raw bytes for openssl */
void h_command_receipt(struct call *c);
void h_command_receipt_bin(struct call *c);
void h_command_ticket_bin(struct call *c);
void h_device_hv_key_pem(struct call *c);
void h_policies_list(struct call *c);
void h_policy_get(struct call *c);
void h_policy_put(struct call *c);
void h_default_policy_get(struct call *c);
void h_default_policy_put(struct call *c);
void h_audit_list(struct call *c);
void h_audit_verify(struct call *c);
void h_audit_stream(struct call *c);
void h_audit_export(struct call *c);
void h_enroll_page(struct call *c);
/* The employee portal (portal.c, portal_device.c, issue 9). */
void h_enroll_qr_svg(struct call *c);
void h_enroll_qr_png(struct call *c);
void h_portal_device(struct call *c);
void h_portal_leave(struct call *c);
/* Console sign-in (session.c, issue 9). */
void h_setup(struct call *c);
void h_session_create(struct call *c);
void h_session_get(struct call *c);
void h_session_delete(struct call *c);
void h_sessions_delete(struct call *c);
void h_admins_create(struct call *c);
void h_admins_list(struct call *c);
void h_admin_delete(struct call *c);
void h_admin_totp(struct call *c);
/* The value of the session cookie in the request, or NULL. */
/* The value of cookie name in the request into buf; NULL when absent or too long. */
const char *cookie_get(const struct api_request *rq, const char *name, char *buf, size_t cap);
const char *session_cookie(const struct api_request *rq, char *buf, size_t cap);
/* Webhooks (webhooks.c, issue 11 §3). */
void h_webhooks_create(struct call *c);
void h_webhooks_list(struct call *c);
void h_webhook_types(struct call *c);
void h_webhook_get(struct call *c);
void h_webhook_update(struct call *c);
void h_webhook_delete(struct call *c);
void h_webhook_rotate(struct call *c);
void h_webhook_deliveries(struct call *c);
void h_webhook_redeliver(struct call *c);
/* Sets the console session cookie for sid (password and single sign-on alike). */
void session_cookie_set(struct call *c, const char *sid);
/* Single sign-on (oidc.c). */
void h_oidc_info(struct call *c);
void h_oidc_login(struct call *c);
void h_oidc_callback(struct call *c);
void api_oidc_free(struct api *a);
void h_enroll_nonce(struct call *c);
void h_enroll(struct call *c);
void h_checkin(struct call *c);
void h_command_ack(struct call *c);
void h_command_result(struct call *c);

#endif

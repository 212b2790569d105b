/*
 * The route table and dispatch: match method and path, authenticate admin routes with their
 * bearer token or console session, call the handler. Device routes authenticate themselves (signatures cover the
 * body, which only the handler has parsed). HEAD runs the GET route. Unknown paths get 404,
 * known paths with another method 405, and a handler that forgot to answer gets a 500 rather
 * than an empty reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

enum auth { AUTH_NONE, AUTH_ADMIN };

/* Query parameter lists that several routes share (limits in schema/openapi.json). */
#define Q_PAGE "limit cursor"
#define Q_DEVICES                                                                                  \
	"q status owner policy desired reported compliant reason not_seen_days label group sort "  \
	"order " Q_PAGE
#define Q_AUDIT "actor action target since until " Q_PAGE

static const struct route {
	const char *method;
	const char *pattern; /* "{}" matches one path segment */
	enum auth auth;
	handler_fn fn;
} routes[] = {
	{"GET", "/healthz", AUTH_NONE, h_healthz},
	{"GET", "/metrics", AUTH_NONE, h_metrics},
	{"GET", "/enroll", AUTH_NONE, h_enroll_page},
	{"GET", "/enroll/qr.svg", AUTH_NONE, h_enroll_qr_svg},
	{"GET", "/enroll/qr.png", AUTH_NONE, h_enroll_qr_png},
	{"GET", "/portal/{}", AUTH_NONE, h_portal_device},
	{"POST", "/portal/{}/leave", AUTH_NONE, h_portal_leave},
	{"GET", "/api/v1/openapi.json", AUTH_NONE, h_openapi},
	{"GET", "/api/v1/server", AUTH_ADMIN, h_server},
	{"POST", "/api/v1/tokens", AUTH_ADMIN, h_tokens_create},
	{"GET", "/api/v1/tokens", AUTH_ADMIN, h_tokens_list},
	{"DELETE", "/api/v1/tokens/{}", AUTH_ADMIN, h_tokens_delete},
	{"POST", "/api/v1/enrollment-tokens", AUTH_ADMIN, h_etokens_create},
	{"GET", "/api/v1/enrollment-tokens", AUTH_ADMIN, h_etokens_list},
	{"DELETE", "/api/v1/enrollment-tokens/{}", AUTH_ADMIN, h_etokens_delete},
	{"GET", "/api/v1/devices", AUTH_ADMIN, h_devices_list},
	{"GET", "/api/v1/devices/summary", AUTH_ADMIN, h_devices_summary}, /* before {} */
	{"GET", "/api/v1/devices/count", AUTH_ADMIN, h_devices_count},     /* before {} */
	{"GET", "/api/v1/devices/{}", AUTH_ADMIN, h_device_get},
	{"DELETE", "/api/v1/devices/{}", AUTH_ADMIN, h_device_delete},
	{"PUT", "/api/v1/devices/{}/policy", AUTH_ADMIN, h_device_policy},
	{"POST", "/api/v1/devices/{}/commands", AUTH_ADMIN, h_commands_create},
	{"GET", "/api/v1/devices/{}/commands", AUTH_ADMIN, h_commands_of_device},
	{"GET", "/api/v1/commands", AUTH_ADMIN, h_commands_list},
	{"POST", "/api/v1/commands/bulk", AUTH_ADMIN, h_commands_bulk},
	{"GET", "/api/v1/commands/bulk", AUTH_ADMIN, h_bulk_list}, /* before commands/{} */
	{"GET", "/api/v1/commands/bulk/{}", AUTH_ADMIN, h_bulk_get},
	{"POST", "/api/v1/commands/bulk/{}/cancel", AUTH_ADMIN, h_bulk_cancel},
	{"GET", "/api/v1/commands/{}", AUTH_ADMIN, h_command_get},
	{"POST", "/api/v1/commands/{}/cancel", AUTH_ADMIN, h_command_cancel},
	{"GET", "/api/v1/commands/{}/receipt", AUTH_ADMIN, h_command_receipt},
	{"GET", "/api/v1/commands/{}/receipt.bin", AUTH_ADMIN, h_command_receipt_bin},
	{"GET", "/api/v1/commands/{}/ticket.bin", AUTH_ADMIN, h_command_ticket_bin},
	{"GET", "/api/v1/devices/{}/hypervisor-key.pem", AUTH_ADMIN, h_device_hv_key_pem},
	{"GET", "/api/v1/devices/{}/labels", AUTH_ADMIN, h_device_labels_get},
	{"PUT", "/api/v1/devices/{}/labels", AUTH_ADMIN, h_device_labels_put},
	{"PATCH", "/api/v1/devices/{}/labels", AUTH_ADMIN, h_device_labels_patch},
	{"POST", "/api/v1/labels/bulk", AUTH_ADMIN, h_labels_bulk},
	{"GET", "/api/v1/groups", AUTH_ADMIN, h_groups_list},
	{"POST", "/api/v1/groups", AUTH_ADMIN, h_groups_create},
	{"GET", "/api/v1/groups/{}", AUTH_ADMIN, h_group_get},
	{"PUT", "/api/v1/groups/{}", AUTH_ADMIN, h_group_put},
	{"DELETE", "/api/v1/groups/{}", AUTH_ADMIN, h_group_delete},
	{"GET", "/api/v1/groups/{}/devices", AUTH_ADMIN, h_group_devices},
	{"GET", "/api/v1/approvals", AUTH_ADMIN, h_approvals_list},
	{"GET", "/api/v1/approvals/{}", AUTH_ADMIN, h_approval_get},
	{"POST", "/api/v1/approvals/{}/approve", AUTH_ADMIN, h_approval_approve},
	{"POST", "/api/v1/approvals/{}/reject", AUTH_ADMIN, h_approval_reject},
	{"POST", "/api/v1/approvals/{}/cancel", AUTH_ADMIN, h_approval_cancel},
	{"POST", "/api/v1/approvals/{}/override", AUTH_ADMIN, h_approval_override},
	{"GET", "/api/v1/policies", AUTH_ADMIN, h_policies_list},
	{"GET", "/api/v1/policies/{}", AUTH_ADMIN, h_policy_get},
	{"PUT", "/api/v1/policies/{}", AUTH_ADMIN, h_policy_put},
	{"GET", "/api/v1/default-policy", AUTH_ADMIN, h_default_policy_get},
	{"PUT", "/api/v1/default-policy", AUTH_ADMIN, h_default_policy_put},
	{"GET", "/api/v1/audit", AUTH_ADMIN, h_audit_list},
	{"GET", "/api/v1/audit/verify", AUTH_ADMIN, h_audit_verify},
	{"GET", "/api/v1/audit/export", AUTH_ADMIN, h_audit_export},
	{"GET", "/api/v1/audit/stream", AUTH_ADMIN, h_audit_stream},
	{"POST", "/api/v1/setup", AUTH_NONE, h_setup},
	{"POST", "/api/v1/session", AUTH_NONE, h_session_create},
	{"GET", "/api/v1/oidc", AUTH_NONE, h_oidc_info},
	{"GET", "/api/v1/oidc/login", AUTH_NONE, h_oidc_login},
	{"GET", "/api/v1/oidc/callback", AUTH_NONE, h_oidc_callback},
	{"GET", "/api/v1/session", AUTH_ADMIN, h_session_get},
	{"DELETE", "/api/v1/session", AUTH_ADMIN, h_session_delete},
	{"DELETE", "/api/v1/sessions", AUTH_ADMIN, h_sessions_delete},
	{"POST", "/api/v1/admins", AUTH_ADMIN, h_admins_create},
	{"GET", "/api/v1/admins", AUTH_ADMIN, h_admins_list},
	{"DELETE", "/api/v1/admins/{}", AUTH_ADMIN, h_admin_delete},
	{"POST", "/api/v1/admins/{}/totp", AUTH_ADMIN, h_admin_totp},
	{"POST", "/api/v1/webhooks", AUTH_ADMIN, h_webhooks_create},
	{"GET", "/api/v1/webhooks", AUTH_ADMIN, h_webhooks_list},
	{"GET", "/api/v1/webhooks/event-types", AUTH_ADMIN, h_webhook_types}, /* before {} */
	{"GET", "/api/v1/webhooks/{}", AUTH_ADMIN, h_webhook_get},
	{"PATCH", "/api/v1/webhooks/{}", AUTH_ADMIN, h_webhook_update},
	{"DELETE", "/api/v1/webhooks/{}", AUTH_ADMIN, h_webhook_delete},
	{"POST", "/api/v1/webhooks/{}/rotate-secret", AUTH_ADMIN, h_webhook_rotate},
	{"GET", "/api/v1/webhooks/{}/deliveries", AUTH_ADMIN, h_webhook_deliveries},
	{"POST", "/api/v1/webhooks/{}/deliveries/{}/redeliver", AUTH_ADMIN, h_webhook_redeliver},
	{"POST", "/device/v1/enroll/nonce", AUTH_NONE, h_enroll_nonce},
	{"POST", "/device/v1/enroll", AUTH_NONE, h_enroll},
	{"POST", "/device/v1/checkin", AUTH_NONE, h_checkin},
	{"POST", "/device/v1/commands/{}/ack", AUTH_NONE, h_command_ack},
	{"POST", "/device/v1/commands/{}/result", AUTH_NONE, h_command_result},
	{"POST", "/device/v1/lease", AUTH_NONE, h_lease},
	{"POST", "/device/v1/receipts", AUTH_NONE, h_receipts},
	{"POST", "/device/v1/unenroll", AUTH_NONE, h_unenroll},
};

/*
 * The query parameters each handler reads, space-separated (declared here once, beside the
 * route table; a handler not listed reads none). Any other parameter is a 400 naming it, and
 * `cleave-server --list-routes` shows these lists for the OpenAPI contract test to compare
 * with schema/openapi.json.
 */
static const struct route_query {
	handler_fn fn;
	const char *names;
} route_queries[] = {
	{h_enroll_page, "token"},
	{h_enroll_qr_svg, "token"},
	{h_enroll_qr_png, "token"},
	{h_tokens_list, Q_PAGE},
	{h_etokens_list, Q_PAGE},
	{h_devices_list, Q_DEVICES},
	{h_devices_count, Q_DEVICES},
	{h_commands_of_device, "status " Q_PAGE},
	{h_commands_list, "status type device_id " Q_PAGE},
	{h_bulk_list, "state " Q_PAGE},
	{h_audit_list, Q_AUDIT},
	{h_audit_verify, "full"},
	{h_audit_export, Q_AUDIT},
	{h_groups_list, "after limit"},
	{h_group_devices, Q_DEVICES},
	{h_approvals_list, "status device_id " Q_PAGE},
	{h_webhook_deliveries, Q_PAGE},
	{h_oidc_callback, "state code error"}, /* and whatever the provider adds: exempt */
};

/* The query parameters route r reads ("" for none). */
static const char *
route_query(const struct route *r)
{
	for (size_t i = 0; i < ARRAY_SIZE(route_queries); i++)
		if (route_queries[i].fn == r->fn)
			return route_queries[i].names;
	return "";
}

int
api_new(struct service *svc, struct api **out)
{
	struct api *a = calloc(1, sizeof(*a));

	if (a == NULL)
		return -ENOMEM;
	a->svc = svc;
	service_set_policy_parser(svc, api_policy_parse);
	*out = a;
	return 0;
}

void
api_free(struct api *a)
{
	if (a != NULL)
		api_oidc_free(a);
	free(a);
}

void
api_set_metrics_source(struct api *a, api_metrics_fn fn, void *ctx)
{
	a->metrics = fn;
	a->metrics_ctx = ctx;
}

size_t
api_route_count(void)
{
	return ARRAY_SIZE(routes);
}

int
api_route_info(size_t i, struct api_route_info *out)
{
	if (i >= ARRAY_SIZE(routes))
		return -1;
	out->method = routes[i].method;
	out->pattern = routes[i].pattern;
	out->query = route_query(&routes[i]);
	out->admin = routes[i].auth == AUTH_ADMIN;
	return 0;
}

/* 1 when name (n bytes) is one of the space-separated words of list. */
static int
word_in(const char *list, const char *name, size_t n)
{
	while (list != NULL && *list != '\0') {
		size_t w = strcspn(list, " ");

		if (w == n && memcmp(list, name, n) == 0)
			return 1;
		list += w;
		list += strspn(list, " ");
	}
	return 0;
}

/*
 * Refuses a query that names a parameter the route does not read, as unknown body fields are:
 * a misspelt filter (?stauts=retired) would otherwise widen the answer silently. The detail
 * names every unknown one (as sent, cut at the buffer), so a script author sees the typo.
 */
static int
query_known(const struct route *r, const char *query, struct api_response *rs)
{
	char detail[256];
	size_t len = 0;
	int unknown = 0;

	for (const char *p = query; p != NULL && *p != '\0';) {
		size_t seg = strcspn(p, "&");
		size_t n = strcspn(p, "=&");

		if (n > 0 && !word_in(route_query(r), p, n)) {
			int w = snprintf(detail + len, sizeof(detail) - len, "%s%.*s",
					 unknown ? ", " : "unknown query parameter: ", (int)n, p);

			unknown++;
			if (w > 0)
				len = len + (size_t)w < sizeof(detail) ? len + (size_t)w
								       : sizeof(detail) - 1;
		}
		p += seg;
		p += *p == '&';
	}
	if (unknown == 0)
		return 0;
	reply_problem(rs, P_BAD_REQUEST, detail);
	return -1;
}

/* Matches path against pattern, copying "{}" segments into c->param. */
static int
match(const char *pattern, const char *path, struct call *c)
{
	int np = 0;

	while (*pattern != '\0') {
		if (pattern[0] == '{' && pattern[1] == '}') {
			size_t n = strcspn(path, "/");

			if (n == 0 || n >= sizeof(c->param_buf[0]) || np >= ROUTE_MAX_PARAMS)
				return 0;
			memcpy(c->param_buf[np], path, n);
			c->param_buf[np][n] = '\0';
			c->param[np] = c->param_buf[np];
			np++;
			path += n;
			pattern += 2;
			continue;
		}
		if (*pattern++ != *path++)
			return 0;
	}
	return *path == '\0';
}

/* Bearer token from the Authorization header, or NULL. */
static const char *
bearer(const struct api_request *rq)
{
	const char *h = rq->header(rq->header_ctx, "Authorization");

	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return NULL;
	h += 7;
	while (*h == ' ')
		h++;
	return h;
}

/*
 * The one place that authenticates admin routes: a bearer token (scripts) or the console's
 * session cookie (browsers), both into the same principal and role checks. A cookie request
 * that changes something must also carry the session's X-CSRF-Token, which a cross-site form
 * cannot set; a bearer token is never sent by a browser on its own, so it needs none.
 */
static int
authenticate(struct api *a, const struct api_request *rq, struct principal *who,
	     struct svc_error *err)
{
	const char *tok = bearer(rq);
	char cookie[128];
	const char *sid = tok == NULL ? session_cookie(rq, cookie, sizeof(cookie)) : NULL;
	int safe = strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0;

	if (sid == NULL)
		return svc_authenticate(a->svc, tok, who, err);
	return svc_session_auth(a->svc, sid, !safe, rq->header(rq->header_ctx, "X-CSRF-Token"), who,
				err);
}

void
api_handle(struct api *a, const struct api_request *rq, struct api_response *rs)
{
	struct call c = {.a = a, .rq = rq, .rs = rs};
	const struct route *found = NULL;
	int path_known = 0;
	struct svc_error err = {0};
	/* HEAD is GET without the body (RFC 9110 9.3.2); the http layer leaves the body out. */
	const char *method = strcmp(rq->method, "HEAD") == 0 ? "GET" : rq->method;

	for (size_t i = 0; i < ARRAY_SIZE(routes) && found == NULL; i++) {
		if (!match(routes[i].pattern, rq->path, &c))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, method) == 0)
			found = &routes[i];
	}
	if (found == NULL) {
		rs->route = "unmatched";
		reply_problem(rs, path_known ? P_METHOD : P_NO_ROUTE,
			      path_known ? "this endpoint does not accept that method"
					 : "no endpoint has this path");
		return;
	}
	rs->route = found->pattern;
	/*
	 * A valid token always gets in; a bad one from a flooding address gets 429. Only a
	 * credential that was presented and refused counts as a refusal (audited, toward the
	 * address's budget): a request with none, like the console asking "who am I?" before
	 * sign-in, guesses nothing.
	 */
	if (found->auth == AUTH_ADMIN && authenticate(a, rq, &c.who, &err) != 0) {
		char cookie[128];
		int presented = bearer(rq) != NULL || session_cookie(rq, cookie, sizeof(cookie));

		if (err.kind == SVC_UNAUTHORIZED &&
		    svc_source_check(a->svc, rq->client, &err) == 0 && presented)
			svc_refused(a->svc, rq->client, NULL, "api.auth", err.detail);
		reply_svc_error(rs, &err);
		return;
	}
	/*
	 * Pages for people (/enroll, /portal) are exempt: links in email get tracking parameters
	 * added by mail gateways, and an employee's enrollment must not fail for a utm_source. So
	 * is the single sign-on callback: the provider chooses what it adds (session_state, iss).
	 */
	if (strncmp(found->pattern, "/enroll", 7) != 0 &&
	    strncmp(found->pattern, "/portal/", 8) != 0 &&
	    strcmp(found->pattern, "/api/v1/oidc/callback") != 0 &&
	    query_known(found, rq->query, rs) != 0)
		return;
	found->fn(&c);
	if (rs->status == 0)
		reply_problem(rs, SVC_INTERNAL, NULL);
	if (rs->status == 403 && found->auth == AUTH_ADMIN) {
		char what[160];

		/* Every refused admin action is on the record, with who tried what. */
		snprintf(what, sizeof(what), "%s %s", rq->method, rq->path);
		svc_audit_event(a->svc, c.who.id, "access.denied", what, "denied",
				role_name(c.who.role));
	}
}

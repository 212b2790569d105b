/*
 * Single sign-on routes (issue 11 §6) and their settings: see oidc.h. The login route records
 * the flow through the service (database, so any server can finish it) and sends the browser
 * to the provider with a cookie holding the state, so the callback only finishes a sign-in this
 * browser began (a page elsewhere cannot sign its visitor into someone else's account). The
 * callback verifies everything (oidc_client.c), maps the role claim, and opens the same console
 * session as a password sign-in; a refusal is a page saying why, never a session.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "fileio.h"
#include "log.h"
#include "oidc.h"
#include "oidc_client.h"
#include "portal.h"

#define STATE_COOKIE  "cleave_sso"
#define CALLBACK_PATH "/api/v1/oidc/callback"

static int
set(char *dst, size_t cap, const char *val)
{
	return str_copy(dst, cap, val) == 0 ? 0 : -1;
}

int
api_oidc_setting(struct api_oidc_config *c, const char *key, const char *val)
{
	int r = -1;

	if (strcmp(key, "oidc_issuer") == 0)
		r = strncmp(val, "https://", 8) == 0 ? set(c->issuer, sizeof(c->issuer), val) : -1;
	else if (strcmp(key, "oidc_client_id") == 0)
		r = val[0] ? set(c->client_id, sizeof(c->client_id), val) : -1;
	else if (strcmp(key, "oidc_client_secret_file") == 0)
		r = val[0] ? set(c->client_secret_file, sizeof(c->client_secret_file), val) : -1;
	else if (strcmp(key, "oidc_ca_file") == 0)
		r = set(c->ca_file, sizeof(c->ca_file), val);
	else if (strcmp(key, "oidc_redirect_uri") == 0)
		r = strncmp(val, "https://", 8) == 0
			    ? set(c->redirect_uri, sizeof(c->redirect_uri), val)
			    : -1;
	else if (strcmp(key, "oidc_scopes") == 0)
		r = strstr(val, "openid") ? set(c->scopes, sizeof(c->scopes), val) : -1;
	else if (strcmp(key, "oidc_role_claim") == 0)
		r = val[0] ? set(c->role_claim, sizeof(c->role_claim), val) : -1;
	else if (strcmp(key, "oidc_role_map") == 0)
		r = strchr(val, '=') ? set(c->role_map, sizeof(c->role_map), val) : -1;
	else if (strcmp(key, "oidc_email_domain") == 0)
		r = set(c->email_domain, sizeof(c->email_domain), val);
	else if (strcmp(key, "oidc_mfa_acr") == 0)
		r = set(c->mfa_acr, sizeof(c->mfa_acr), val);
	else if (strcmp(key, "oidc_provider_name") == 0)
		r = val[0] ? set(c->provider_name, sizeof(c->provider_name), val) : -1;
	else {
		fprintf(stderr, "cleave-server: unknown setting '%s'\n", key);
		return -1;
	}
	if (r != 0)
		fprintf(stderr, "cleave-server: invalid value for %s: '%s'\n", key, val);
	return r;
}

/* Each "value=role" of the map names a real role. */
static int
role_map_ok(const char *map)
{
	char buf[512], *save = NULL;

	str_copy(buf, sizeof(buf), map);
	for (char *p = strtok_r(buf, ",", &save); p != NULL; p = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(p, '=');

		if (eq == NULL || eq == p || role_parse(eq + 1) == ROLE_NONE)
			return 0;
	}
	return 1;
}

static int
read_secret(const char *path, char *out, size_t cap)
{
	size_t len = 0;
	char *s = file_read_all(path, cap, &len);

	if (s == NULL)
		return -1;
	while (len > 0 && (s[len - 1] == '\n' || s[len - 1] == '\r'))
		s[--len] = '\0';
	int r = len > 0 && len < cap ? str_copy(out, cap, s) : -1;
	secure_zero(s, len);
	free(s);
	return r;
}

int
api_set_oidc(struct api *a, const struct api_oidc_config *c, const char *base_url)
{
	struct oidc_settings s;
	int r;

	if (c->issuer[0] == '\0')
		return 0;
	memset(&s, 0, sizeof(s));
	if (c->client_id[0] == '\0' || c->client_secret_file[0] == '\0') {
		log_err("single sign-on: oidc_issuer needs oidc_client_id and "
			"oidc_client_secret_file");
		return -1;
	}
	if (read_secret(c->client_secret_file, s.client_secret, sizeof(s.client_secret)) != 0) {
		log_err("single sign-on: cannot read the client secret from %s",
			c->client_secret_file);
		return -1;
	}
	if (c->role_map[0] != '\0' && !role_map_ok(c->role_map)) {
		log_err("single sign-on: oidc_role_map must be value=role pairs (admin, helpdesk, "
			"auditor) separated by commas");
		return -1;
	}
	str_copy(s.issuer, sizeof(s.issuer), c->issuer);
	str_copy(s.client_id, sizeof(s.client_id), c->client_id);
	str_copy(s.ca_file, sizeof(s.ca_file), c->ca_file);
	if (c->redirect_uri[0] != '\0')
		str_copy(s.redirect_uri, sizeof(s.redirect_uri), c->redirect_uri);
	else
		snprintf(s.redirect_uri, sizeof(s.redirect_uri), "%s" CALLBACK_PATH, base_url);
	str_copy(s.scopes, sizeof(s.scopes), c->scopes[0] ? c->scopes : "openid email profile");
	r = oidc_client_new(&s, &a->oidc);
	secure_zero(s.client_secret, sizeof(s.client_secret));
	if (r != 0)
		return -1;
	str_copy(a->oidc_issuer, sizeof(a->oidc_issuer), c->issuer);
	str_copy(a->oidc_role_claim, sizeof(a->oidc_role_claim),
		 c->role_claim[0] ? c->role_claim : "cleave_role");
	str_copy(a->oidc_role_map, sizeof(a->oidc_role_map),
		 c->role_map[0] ? c->role_map : "admin=admin,helpdesk=helpdesk,auditor=auditor");
	str_copy(a->oidc_email_domain, sizeof(a->oidc_email_domain), c->email_domain);
	str_copy(a->oidc_provider, sizeof(a->oidc_provider),
		 c->provider_name[0] ? c->provider_name : "single sign-on");
	str_copy(a->oidc_mfa_acr, sizeof(a->oidc_mfa_acr), c->mfa_acr);
	log_info("single sign-on with %s (callback %s)", c->issuer, s.redirect_uri);
	return 0;
}

void
api_oidc_free(struct api *a)
{
	oidc_client_free(a->oidc);
	a->oidc = NULL;
}

void
h_oidc_info(struct call *c)
{
	reply_json(c->rs, 200,
		   json_pack("{s:b, s:s*}", "enabled", c->a->oidc != NULL, "provider_name",
			     c->a->oidc ? c->a->oidc_provider : NULL));
}

/* The page a refused or failed sign-in ends on: why, and the way back to the sign-in. */
static void
refusal_page(struct call *c, int status, const char *why)
{
	struct html h = {0};

	portal_head(&h, "Sign-in refused");
	html_raw(&h, "<p class=\"err\" id=\"sso-error\">");
	html_text(&h, why);
	html_raw(&h, "</p><p><a href=\"/\">Back to the sign-in page</a></p>");
	portal_reply(c, &h, status);
}

void
h_oidc_login(struct call *c)
{
	char *state = NULL, *nonce = NULL, *verifier = NULL, why[300];
	struct svc_error err = {0};

	if (c->a->oidc == NULL) {
		reply_problem(c->rs, P_NO_ROUTE, "single sign-on is not configured");
		return;
	}
	if (svc_source_check(c->a->svc, c->rq->client, &err) != 0 ||
	    svc_sso_begin(c->a->svc, &state, &nonce, &verifier, &err) != 0) {
		refusal_page(c, err.kind == SVC_RATE_LIMITED ? 429 : 503, err.detail);
		return;
	}
	if (oidc_authorize_url(c->a->oidc, state, nonce, verifier, service_now_ms(c->a->svc) / 1000,
			       c->rs->location, sizeof(c->rs->location), why, sizeof(why)) != 0) {
		log_warn("single sign-on: %s", why);
		c->rs->location[0] = '\0';
		refusal_page(c, 502,
			     "The identity provider cannot be reached; try again later, or "
			     "sign in with a local account.");
	} else {
		/* Lax: the provider's redirect back is a top-level GET from another site. */
		snprintf(c->rs->set_cookie, sizeof(c->rs->set_cookie),
			 STATE_COOKIE "=%s; HttpOnly; Secure; SameSite=Lax; Path=" CALLBACK_PATH
				      "; Max-Age=%d",
			 state, SVC_SSO_FLOW_S);
		reply_empty(c->rs, 303);
	}
	secure_zero(verifier, strlen(verifier));
	free(state);
	free(nonce);
	free(verifier);
}

/* The role a claim value maps to in map ("value=role,…"); ROLE_NONE when none. */
static enum role
map_value(const char *map, const char *value)
{
	const char *p = map;
	size_t vl = strlen(value);

	while (*p != '\0') {
		size_t n = strcspn(p, ",");
		const char *eq = memchr(p, '=', n);

		if (eq != NULL && (size_t)(eq - p) == vl && strncmp(p, value, vl) == 0) {
			char role[16];
			size_t rl = n - (size_t)(eq + 1 - p);

			if (rl < sizeof(role)) {
				memcpy(role, eq + 1, rl);
				role[rl] = '\0';
				return role_parse(role);
			}
		}
		p += n + (p[n] == ',');
	}
	return ROLE_NONE;
}

/*
 * The role the claims give: the claim is a string or an array of strings (groups); of several
 * mapped values the most privileged wins (admin, helpdesk, auditor). Nothing mapped: ROLE_NONE,
 * which is refused; there is no default role.
 */
static enum role
claims_role(const struct api *a, const json_t *claims)
{
	const json_t *v = json_object_get(claims, a->oidc_role_claim), *e;
	enum role best = ROLE_NONE;
	size_t i;

	if (json_is_string(v))
		return map_value(a->oidc_role_map, json_string_value(v));
	json_array_foreach(v, i, e)
	{
		enum role r = json_is_string(e) ? map_value(a->oidc_role_map, json_string_value(e))
						: ROLE_NONE;

		if (i >= 256)
			break;
		if (r != ROLE_NONE && (best == ROLE_NONE || r < best))
			best = r;
	}
	return best;
}

static const char *
claim_str(const json_t *claims, const char *name)
{
	return json_string_value(json_object_get(claims, name));
}

/*
 * Whether the provider says a second factor was used: the ID token's acr is one of the values
 * the setting oidc_mfa_acr lists (providers name their levels differently, so nothing counts
 * unless configured).
 */
static int
second_factor(const struct api *a, const json_t *claims)
{
	const char *acr = claim_str(claims, "acr"), *p = a->oidc_mfa_acr;
	size_t al = acr ? strlen(acr) : 0;

	while (al > 0 && *p != '\0') {
		size_t n;

		p += strspn(p, " ,");
		n = strcspn(p, " ,");
		if (n == al && strncmp(p, acr, al) == 0)
			return 1;
		p += n;
	}
	return 0;
}

/* The provider's answer checked and turned into a session; else a refusal page and audit. */
static void
finish(struct call *c, const struct oidc_flow *f, const char *code)
{
	char why[300], *sid = NULL;
	json_t *claims = NULL;
	struct admin_account acc;
	struct svc_error err = {0};
	struct sso_identity id = {0};
	const json_t *verified;

	if (oidc_redeem(c->a->oidc, code, f->verifier, f->nonce, service_now_ms(c->a->svc) / 1000,
			&claims, why, sizeof(why)) != 0) {
		svc_sso_refused(c->a->svc, c->rq->client, NULL, why);
		refusal_page(c, 403, why);
		return;
	}
	id.issuer = c->a->oidc_issuer;
	id.subject = claim_str(claims, "sub");
	id.email = claim_str(claims, "email") ?: "";
	id.name = claim_str(claims, "name") ?: claim_str(claims, "preferred_username") ?: id.email;
	id.role = claims_role(c->a, claims);
	id.email_domain = c->a->oidc_email_domain;
	id.second_factor = second_factor(c->a, claims);
	verified = json_object_get(claims, "email_verified");
	if (json_is_false(verified)) {
		svc_sso_refused(c->a->svc, c->rq->client, id.email, "the email is not verified");
		refusal_page(c, 403,
			     "The identity provider has not verified this account's email.");
	} else if (svc_sso_login(c->a->svc, &id, c->rq->client, &sid, &acc, &err) != 0) {
		refusal_page(c, err.kind == SVC_FORBIDDEN ? 403 : 503, err.detail);
	} else {
		session_cookie_set(c, sid);
		str_copy(c->rs->location, sizeof(c->rs->location), "/");
		reply_empty(c->rs, 303);
		secure_zero(sid, strlen(sid));
		free(sid);
	}
	json_decref(claims);
}

void
h_oidc_callback(struct call *c)
{
	char state[128], cookie[128], code[1024], error[128];
	struct oidc_flow f;
	struct svc_error err = {0};
	int has_code, has_error;

	if (c->a->oidc == NULL) {
		reply_problem(c->rs, P_NO_ROUTE, "single sign-on is not configured");
		return;
	}
	if (svc_source_check(c->a->svc, c->rq->client, &err) != 0) {
		refusal_page(c, 429, err.detail);
		return;
	}
	if (query_get(c->rq->query, "state", state, sizeof(state)) != 1 ||
	    cookie_get(c->rq, STATE_COOKIE, cookie, sizeof(cookie)) == NULL ||
	    strcmp(state, cookie) != 0) {
		/*
		 * Not begun in this browser (or the cookie expired): nothing of the flow is used.
		 * Counted as a refused request of the address (aggregated in the audit log, 429 past
		 * the limit), since anyone can send this without having begun anything.
		 */
		svc_refused(c->a->svc, c->rq->client, NULL, "admin.sso",
			    "state missing or not this browser's");
		refusal_page(c, 400,
			     "This sign-in was not started in this browser, or took too "
			     "long. Start again from the sign-in page.");
		return;
	}
	has_code = query_get(c->rq->query, "code", code, sizeof(code)) == 1;
	has_error = query_get(c->rq->query, "error", error, sizeof(error)) == 1;
	/* Taken whatever follows: a state is good for one answer from the provider. */
	if (svc_sso_take(c->a->svc, state, &f, &err) != 0) {
		if (err.kind == SVC_UNAUTHORIZED)
			svc_refused(c->a->svc, c->rq->client, NULL, "admin.sso", err.detail);
		refusal_page(c, err.kind == SVC_UNAUTHORIZED ? 400 : 503, err.detail);
		return;
	}
	if (has_error || !has_code) {
		char why[200];

		snprintf(why, sizeof(why), "The identity provider refused the sign-in (%s).",
			 has_error ? error : "no code");
		svc_sso_refused(c->a->svc, c->rq->client, NULL, why);
		refusal_page(c, 403, why);
		return;
	}
	finish(c, &f, code);
	secure_zero(&f, sizeof(f));
}

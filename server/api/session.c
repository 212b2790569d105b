/*
 * Handlers of the web console's sign-in (issue 9): sessions (sign in, who am I, sign out,
 * sign out everywhere) and admin accounts. The session id travels only in an HttpOnly cookie;
 * the CSRF token that console requests repeat in X-CSRF-Token is in the JSON bodies.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_priv.h"

#define COOKIE_NAME  "cleave_session"
#define COOKIE_ATTRS "; HttpOnly; Secure; SameSite=Strict; Path=/"

const char *
cookie_get(const struct api_request *rq, const char *name, char *buf, size_t cap)
{
	const char *h = rq->header(rq->header_ctx, "Cookie");
	const size_t nl = strlen(name);

	/* "a=1; cleave_session=…; b=2": bounded by the header's length. */
	while (h != NULL && *h != '\0') {
		size_t n;

		while (*h == ' ' || *h == ';')
			h++;
		n = strcspn(h, ";");
		if (n > nl + 1 && strncmp(h, name, nl) == 0 && h[nl] == '=' && n - nl - 1 < cap) {
			memcpy(buf, h + nl + 1, n - nl - 1);
			buf[n - nl - 1] = '\0';
			return buf;
		}
		h += n;
	}
	return NULL;
}

const char *
session_cookie(const struct api_request *rq, char *buf, size_t cap)
{
	return cookie_get(rq, COOKIE_NAME, buf, cap);
}

void
session_cookie_set(struct call *c, const char *sid)
{
	snprintf(c->rs->set_cookie, sizeof(c->rs->set_cookie),
		 COOKIE_NAME "=%s" COOKIE_ATTRS "; Max-Age=%lld", sid,
		 (long long)svc_session_max_s(c->a->svc));
}

/*
 * Sign-in and setup take no credentials a browser adds on its own, so the CSRF header cannot
 * guard them; instead they take only application/json, which a cross-site form cannot send
 * (text/plain can carry a JSON-looking body) and a cross-site fetch cannot send without a
 * CORS preflight that this server never grants. Else a page could sign its visitor in to the
 * page owner's account ("login CSRF").
 */
static int
json_only(struct call *c)
{
	const char *ct = c->rq->header(c->rq->header_ctx, "Content-Type");

	if (ct != NULL && strncasecmp(ct, "application/json", 16) == 0 &&
	    (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' '))
		return 0;
	reply_problem(c->rs, P_MEDIA_TYPE, "this request must be sent as application/json");
	return -1;
}

static json_t *
admin_json(const struct admin_account *a)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:b, s:b}", "id", a->id, "email", a->email,
			 "display_name", a->display_name, "role", a->role, "created_at",
			 jtime(a->created_at), "disabled", a->disabled_at != 0, "totp",
			 a->has_totp);
}

void
h_session_create(struct call *c)
{
	char email[STORE_NAME_MAX] = "", password[SVC_PASSWORD_MAX + 1] = "", totp[16] = "";
	const struct field f[] = {
		{"email", F_STR, 1, email, sizeof(email), 0, 0, NULL},
		{"password", F_STR, 1, password, sizeof(password), 0, 0, NULL},
		{"totp", F_STR, 0, totp, sizeof(totp), 0, 0, NULL},
	};
	struct admin_account a;
	struct svc_error err = {0};
	char csrf[SVC_CSRF_LEN], *sid = NULL;
	json_t *body = json_only(c) == 0 ? body_object(c) : NULL, *j;

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	if (svc_login(c->a->svc, email, password, totp, c->rq->client, &sid, &a, &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	svc_session_csrf(sid, csrf);
	j = admin_json(&a);
	json_object_set_new(j, "csrf_token", json_string(csrf));
	reply_json(c->rs, 200, j);
	session_cookie_set(c, sid);
	secure_zero(sid, strlen(sid));
	free(sid);
out:
	secure_zero(password, sizeof(password));
	json_decref(body);
}

/*
 * The session id when this request was authenticated by its cookie, else NULL: the same
 * choice as authenticate() in api.c, where a bearer token wins over a cookie.
 */
static const char *
cookie_auth(struct call *c, char *buf, size_t cap)
{
	const char *h = c->rq->header(c->rq->header_ctx, "Authorization");

	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0)
		return NULL;
	return session_cookie(c->rq, buf, cap);
}

void
h_session_get(struct call *c)
{
	char buf[128], csrf[SVC_CSRF_LEN];
	const char *sid = cookie_auth(c, buf, sizeof(buf));
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "id", c->who.id, "name", c->who.name, "role",
			      role_name(c->who.role), "via", sid ? "session" : "token");

	if (sid != NULL) {
		/* A reloaded console page gets its CSRF token back from here. */
		svc_session_csrf(sid, csrf);
		json_object_set_new(j, "csrf_token", json_string(csrf));
	}
	reply_json(c->rs, 200, j);
}

void
h_session_delete(struct call *c)
{
	char buf[128];
	const char *sid = cookie_auth(c, buf, sizeof(buf));
	struct svc_error err = {0};

	if (sid != NULL && svc_logout(c->a->svc, sid, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	reply_empty(c->rs, 204);
	snprintf(c->rs->set_cookie, sizeof(c->rs->set_cookie),
		 COOKIE_NAME "=" COOKIE_ATTRS "; Max-Age=0");
}

void
h_sessions_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_logout_all(c->a->svc, &c->who, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	reply_empty(c->rs, 204);
	snprintf(c->rs->set_cookie, sizeof(c->rs->set_cookie),
		 COOKIE_NAME "=" COOKIE_ATTRS "; Max-Age=0");
}

/*
 * POST /api/v1/admins and POST /api/v1/setup share the account fields; setup has a code where
 * admins has a role (the first admin is an admin).
 */
static void
admin_create(struct call *c, int setup)
{
	char email[STORE_NAME_MAX] = "", name[STORE_NAME_MAX] = "", role[16] = "";
	char password[SVC_PASSWORD_MAX + 1] = "", code[128] = "";
	const struct field f[] = {
		{"email", F_STR, 1, email, sizeof(email), 0, 0, NULL},
		{"display_name", F_STR, 1, name, sizeof(name), 0, 0, NULL},
		{"password", F_STR, 1, password, sizeof(password), 0, 0, NULL},
		setup ? (struct field){"code", F_STR, 1, code, sizeof(code), 0, 0, NULL}
		      : (struct field){"role", F_STR, 1, role, sizeof(role), 0, 0, NULL},
	};
	struct admin_account a;
	struct svc_error err = {0};
	json_t *body = !setup || json_only(c) == 0 ? body_object(c) : NULL;
	int r;

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	if (setup)
		r = svc_setup(c->a->svc, code, email, name, password, c->rq->client, &a, &err);
	else
		r = svc_admin_create(c->a->svc, &c->who, email, name, role_parse(role), password,
				     &a, &err);
	if (r != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	reply_json(c->rs, 201, admin_json(&a));
	snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/admins/%s", a.id);
out:
	secure_zero(password, sizeof(password));
	secure_zero(code, sizeof(code));
	json_decref(body);
}

void
h_admins_create(struct call *c)
{
	admin_create(c, 0);
}

void
h_setup(struct call *c)
{
	admin_create(c, 1);
}

void
h_admins_list(struct call *c)
{
	struct admin_account *items = calloc(STORE_LIST_MAX, sizeof(*items));
	struct svc_error err = {0};
	size_t n = 0;
	json_t *arr;

	if (items == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, NULL);
		return;
	}
	if (svc_admin_list(c->a->svc, &c->who, items, STORE_LIST_MAX, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
		free(items);
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, admin_json(&items[i]));
	secure_zero(items, STORE_LIST_MAX * sizeof(*items));
	free(items);
	reply_json(c->rs, 200, json_pack("{s:o}", "items", arr));
}

void
h_admin_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_admin_disable(c->a->svc, &c->who, c->param[0], &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_empty(c->rs, 204);
}

void
h_admin_totp(struct call *c)
{
	struct svc_error err = {0};
	char *uri = NULL;

	if (svc_admin_totp_enroll(c->a->svc, &c->who, c->param[0], &uri, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	reply_json(c->rs, 201, json_pack("{s:s}", "otpauth_uri", uri));
	secure_zero(uri, strlen(uri));
	free(uri);
}

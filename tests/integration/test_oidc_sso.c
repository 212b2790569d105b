/*
 * Single sign-on for the console through a real OpenID provider (LemonLDAP::NG, lib/oidcop.h)
 * and the real cleave-server, the browser played by libcurl: /api/v1/oidc/login sends it to
 * the provider with a state cookie, the provider's login form signs in, the callback opens a
 * console session whose role is the provider's claim. Refused, with a page and an audit entry:
 * a user without a role claim, the callback replayed (state used once), a callback without this
 * browser's state cookie, the provider's error. Local password sign-in keeps working, and a
 * server without the settings says so and has no login route.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oidcop.h"
#include "testlib.h"
#include "util.h"

struct env {
	struct srv s;
	struct oidcop op;
	struct client *web; /* no bearer: a browser */
	struct client *admin;
};

static int
env_up_with(struct env *e, int with_sso, const char *conf)
{
	const char *why = oidcop_skip_reason();
	int r;

	memset(e, 0, sizeof(*e));
	if (with_sso && why != NULL) {
		t_skip("%s", why);
		return 1;
	}
	if (with_sso)
		r = oidcop_server(&e->s, &e->op, "oidc-sso", conf);
	else
		r = srv_init(&e->s, "oidc-sso") == 0 ? srv_start(&e->s, NULL) : -1;
	e->web = client_new(&e->s, NULL);
	e->admin = client_new(&e->s, e->s.admin);
	return r == 0 && e->web && e->admin ? 0 : -1;
}

static int
env_up(struct env *e, int with_sso)
{
	return env_up_with(e, with_sso, "oidc_provider_name = LemonLDAP::NG\n");
}

static void
env_down(struct env *e)
{
	client_free(e->web);
	client_free(e->admin);
	oidcop_stop(&e->op);
	srv_cleanup(&e->s);
}

/* "name=value" of a Set-Cookie header into out (up to the first ';'). */
static void
cookie_pair(const char *set_cookie, char *out, size_t cap)
{
	size_t n = strcspn(set_cookie, ";");

	if (n >= cap)
		n = cap - 1;
	memcpy(out, set_cookie, n);
	out[n] = '\0';
}

/*
 * Begins at /api/v1/oidc/login and signs in as user at the provider: the callback URL's path
 * and query into path, this browser's state cookie ("cleave_sso=…") into state_cookie.
 */
static int
to_provider(struct env *e, const char *user, char *path, size_t cap, char *state_cookie,
	    size_t scap)
{
	struct resp r = {0};
	char back[4096];
	int rc = -1;

	if (client_req(e->web, "GET", "/api/v1/oidc/login", NULL, NULL, &r) != 0 ||
	    r.status != 303 || strncmp(r.set_cookie, "cleave_sso=", 11) != 0) {
		fprintf(stderr, "    login: HTTP %ld, cookie \"%s\"\n", r.status, r.set_cookie);
		goto out;
	}
	cookie_pair(r.set_cookie, state_cookie, scap);
	if (strncmp(r.location, e->op.issuer, strlen(e->op.issuer)) != 0 ||
	    strstr(r.location, "code_challenge_method=S256") == NULL) {
		fprintf(stderr, "    login went to %s\n", r.location);
		goto out;
	}
	if (oidcop_login(&e->op, r.location, user, user, back, sizeof(back)) != 0 ||
	    strncmp(back, e->s.url, strlen(e->s.url)) != 0)
		goto out;
	str_copy(path, cap, back + strlen(e->s.url));
	rc = 0;
out:
	resp_free(&r);
	return rc;
}

/* GETs the callback path with cookie (may be NULL); the response in r. */
static int
callback(struct env *e, const char *path, const char *cookie, struct resp *r)
{
	char h[256];
	const char *hdrs[] = {h, NULL};

	snprintf(h, sizeof(h), "Cookie: %s", cookie ? cookie : "other=1");
	return client_req(e->web, "GET", path, NULL, hdrs, r);
}

/* Who the session cookie ("cleave_session=…") is: GET /api/v1/session as JSON (caller frees). */
static json_t *
whoami(struct env *e, const char *session)
{
	char h[256];
	const char *hdrs[] = {h, NULL};
	struct resp r = {0};
	json_t *j = NULL;

	snprintf(h, sizeof(h), "Cookie: %s", session);
	if (client_req(e->web, "GET", "/api/v1/session", NULL, hdrs, &r) == 0 && r.status == 200)
		j = resp_json(&r);
	resp_free(&r);
	return j;
}

/* Signs in as user all the way; the session cookie pair into session. HTTP status of callback. */
static long
sso(struct env *e, const char *user, char *session, size_t cap, struct resp *r)
{
	char path[4096], state[128];

	session[0] = '\0';
	if (to_provider(e, user, path, sizeof(path), state, sizeof(state)) != 0 ||
	    callback(e, path, state, r) != 0)
		return -1;
	if (strncmp(r->set_cookie, "cleave_session=", 15) == 0)
		cookie_pair(r->set_cookie, session, cap);
	return r->status;
}

static int
audit_has(struct env *e, const char *action, const char *needle)
{
	char path[128];
	long st;
	json_t *j;
	char *dump;
	int found;

	snprintf(path, sizeof(path), "/api/v1/audit?action=%s&limit=50", action);
	j = client_get_json(e->admin, path, &st);
	dump = j ? json_dumps(j, 0) : NULL;
	found = dump != NULL && strstr(dump, needle) != NULL;
	free(dump);
	json_decref(j);
	return found;
}

static void
t_sso_admin(void)
{
	const char *json_ct[] = {"Content-Type: application/json", NULL};
	struct env e;
	struct resp r = {0}, r2 = {0}, pw = {0};
	char session[160], session2[160];
	long st, st2;
	json_t *me = NULL, *me2 = NULL, *info;
	int up = env_up(&e, 1);

	if (up == 1)
		return;
	info = up == 0 ? client_get_json(e.web, "/api/v1/oidc", &st) : NULL;
	st = up == 0 ? sso(&e, "dwho", session, sizeof(session), &r) : -1;
	me = session[0] ? whoami(&e, session) : NULL;
	/* A second sign-in is the same account. */
	st2 = up == 0 ? sso(&e, "dwho", session2, sizeof(session2), &r2) : -1;
	me2 = session2[0] ? whoami(&e, session2) : NULL;
	/* The account has no password: the local sign-in refuses it like any wrong password. */
	if (up == 0)
		client_req(e.web, "POST", "/api/v1/session",
			   "{\"email\":\"dwho@badwolf.org\",\"password\":\"\"}", json_ct, &pw);
	env_down(&e);
	CHECK(up == 0, "set-up failed");
	CHECK(json_is_true(json_object_get(info, "enabled")) &&
		      strcmp(json_string_value(json_object_get(info, "provider_name")) ?: "",
			     "LemonLDAP::NG") == 0,
	      "GET /api/v1/oidc");
	CHECK(st == 303 && strcmp(r.location, "/") == 0, "callback HTTP %ld to %s: %.300s", st,
	      r.location, r.body ? r.body : "");
	CHECK(me != NULL, "the SSO session does not work");
	CHECK(strcmp(json_string_value(json_object_get(me, "role")) ?: "", "admin") == 0, "role");
	CHECK(strcmp(json_string_value(json_object_get(me, "via")) ?: "", "session") == 0, "via");
	CHECK(json_string_value(json_object_get(me, "csrf_token")) != NULL, "no CSRF token");
	CHECK(st2 == 303 && me2 != NULL &&
		      strcmp(json_string_value(json_object_get(me, "id")) ?: "a",
			     json_string_value(json_object_get(me2, "id")) ?: "b") == 0,
	      "a second sign-in made another account");
	CHECK(pw.status == 401, "password sign-in of an SSO account: HTTP %ld", pw.status);
	json_decref(info);
	json_decref(me);
	json_decref(me2);
	resp_free(&r);
	resp_free(&r2);
	resp_free(&pw);
}

/* rtyler's claim says auditor: the session reads but may not make API tokens. */
static void
t_sso_auditor(void)
{
	struct env e;
	struct resp r = {0}, t = {0};
	char session[160], h[256], csrf[128] = "";
	const char *hdrs[] = {h, csrf, "Content-Type: application/json", NULL};
	long st;
	json_t *me = NULL;
	int up = env_up(&e, 1);

	if (up == 1)
		return;
	st = up == 0 ? sso(&e, "rtyler", session, sizeof(session), &r) : -1;
	me = session[0] ? whoami(&e, session) : NULL;
	if (me != NULL) {
		snprintf(h, sizeof(h), "Cookie: %s", session);
		snprintf(csrf, sizeof(csrf), "X-CSRF-Token: %s",
			 json_string_value(json_object_get(me, "csrf_token")) ?: "");
		client_req(e.web, "POST", "/api/v1/tokens", "{\"name\":\"x\",\"role\":\"admin\"}",
			   hdrs, &t);
	}
	env_down(&e);
	CHECK(up == 0 && st == 303 && me != NULL, "sign-in HTTP %ld", st);
	CHECK(strcmp(json_string_value(json_object_get(me, "role")) ?: "", "auditor") == 0,
	      "role %s", json_string_value(json_object_get(me, "role")));
	CHECK(t.status == 403, "an auditor made a token: HTTP %ld", t.status);
	json_decref(me);
	resp_free(&r);
	resp_free(&t);
}

/* msmith has no role claim: refused with a page that says so, no session, audited. */
static void
t_sso_no_role(void)
{
	struct env e;
	struct resp r = {0};
	char session[160];
	long st;
	int audited = 0, up = env_up(&e, 1);

	if (up == 1)
		return;
	st = up == 0 ? sso(&e, "msmith", session, sizeof(session), &r) : -1;
	if (up == 0)
		audited = audit_has(&e, "admin.sso_refused", "no Cleave role");
	env_down(&e);
	CHECK(up == 0, "set-up failed");
	CHECK(st == 403 && session[0] == '\0', "HTTP %ld, cookie %s", st, session);
	CHECK(r.body != NULL && strstr(r.body, "gave this account no Cleave role") != NULL,
	      "page: %.300s", r.body ? r.body : "");
	CHECK(audited, "no admin.sso_refused audit entry");
	resp_free(&r);
}

/* A callback works once: the same URL again (same browser) is refused; no second session. */
static void
t_sso_state_replay(void)
{
	struct env e;
	struct resp r1 = {0}, r2 = {0};
	char path[4096], state[128];
	int up = env_up(&e, 1), ok = 0;

	if (up == 1)
		return;
	if (up == 0 && to_provider(&e, "dwho", path, sizeof(path), state, sizeof(state)) == 0 &&
	    callback(&e, path, state, &r1) == 0 && callback(&e, path, state, &r2) == 0)
		ok = 1;
	env_down(&e);
	CHECK(ok, "the flow did not run");
	CHECK(r1.status == 303 && strncmp(r1.set_cookie, "cleave_session=", 15) == 0,
	      "first callback HTTP %ld", r1.status);
	CHECK(r2.status == 400 && r2.set_cookie[0] == '\0', "replayed callback HTTP %ld",
	      r2.status);
	CHECK(strstr(r2.body ? r2.body : "", "finished already") != NULL, "page: %.200s",
	      r2.body ? r2.body : "");
	resp_free(&r1);
	resp_free(&r2);
}

/*
 * The callback from a browser that did not begin the flow (no state cookie, or another's):
 * refused before the flow is touched, so the right browser can still finish it.
 */
static void
t_sso_other_browser(void)
{
	struct env e;
	struct resp r1 = {0}, r2 = {0}, r3 = {0};
	char path[4096], state[128];
	int up = env_up(&e, 1), ok = 0;

	if (up == 1)
		return;
	if (up == 0 && to_provider(&e, "dwho", path, sizeof(path), state, sizeof(state)) == 0 &&
	    callback(&e, path, NULL, &r1) == 0 &&
	    callback(&e, path, "cleave_sso=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &r2) ==
		    0 &&
	    callback(&e, path, state, &r3) == 0)
		ok = 1;
	env_down(&e);
	CHECK(ok, "the flow did not run");
	CHECK(r1.status == 400 && r1.set_cookie[0] == '\0', "no cookie: HTTP %ld", r1.status);
	CHECK(r2.status == 400 && r2.set_cookie[0] == '\0', "other cookie: HTTP %ld", r2.status);
	CHECK(r3.status == 303, "the right browser then: HTTP %ld", r3.status);
	resp_free(&r1);
	resp_free(&r2);
	resp_free(&r3);
}

/* The provider's error (with markup) comes back instead of a code: refused with a page. */
static void
t_sso_provider_error(void)
{
	struct env e;
	struct resp r = {0}, login = {0};
	char path[512], state[128], st[80];
	int up = env_up(&e, 1), ok = 0;

	if (up == 1)
		return;
	if (up == 0 && client_req(e.web, "GET", "/api/v1/oidc/login", NULL, NULL, &login) == 0 &&
	    login.status == 303) {
		const char *p = strstr(login.location, "state=");

		cookie_pair(login.set_cookie, state, sizeof(state));
		str_copy(st, sizeof(st), p ? p + 6 : "");
		st[strcspn(st, "&")] = '\0';
		snprintf(path, sizeof(path),
			 "/api/v1/oidc/callback?error=access_denied%%3Cb%%3E&state=%s", st);
		ok = callback(&e, path, state, &r) == 0;
	}
	env_down(&e);
	CHECK(ok, "the flow did not run");
	/* The provider's words are shown as text: markup in them stays text. */
	CHECK(r.status == 403 && strstr(r.body ? r.body : "", "access_denied&lt;b&gt;") != NULL &&
		      strstr(r.body, "access_denied<b>") == NULL,
	      "HTTP %ld: %.200s", r.status, r.body ? r.body : "");
	resp_free(&r);
	resp_free(&login);
}

/* dwho signs in on a server with conf; the callback's status, its page in why. */
static long
sso_with(const char *conf, char *why, size_t cap, int *up)
{
	struct env e;
	struct resp r = {0};
	char session[160];
	long st = -1;

	*up = env_up_with(&e, 1, conf);
	if (*up == 0)
		st = sso(&e, "dwho", session, sizeof(session), &r);
	str_copy(why, cap, r.body ? r.body : "");
	env_down(&e);
	resp_free(&r);
	return st;
}

/*
 * require_totp = 1: the provider's sign-in counts as the second factor only when its acr is
 * one oidc_mfa_acr lists (LemonLDAP::NG's password sign-in is loa-1 or loa-2 here).
 */
static void
t_sso_second_factor(void)
{
	char why[2048];
	int up1 = 0, up2 = 0;
	long refused = sso_with("require_totp = 1\noidc_mfa_acr = loa-5\n", why, sizeof(why), &up1);
	int said = strstr(why, "requires a second factor") != NULL;
	long admitted = up1 == 1 ? -1
				 : sso_with("require_totp = 1\noidc_mfa_acr = loa-1, loa-2\n", why,
					    sizeof(why), &up2);

	if (up1 == 1)
		return;
	CHECK(up1 == 0 && up2 == 0, "set-up failed");
	CHECK(refused == 403 && said, "without the acr: HTTP %ld", refused);
	CHECK(admitted == 303, "with the acr listed: HTTP %ld: %.200s", admitted, why);
}

/* oidc_email_domain: dwho@badwolf.org is not in example.com. */
static void
t_sso_email_domain(void)
{
	char why[2048];
	int up = 0;
	long st = sso_with("oidc_email_domain = example.com\n", why, sizeof(why), &up);

	if (up == 1)
		return;
	CHECK(up == 0, "set-up failed");
	CHECK(st == 403 && strstr(why, "not in the domain") != NULL, "HTTP %ld: %.200s", st, why);
}

/* With single sign-on on, a local account still signs in with its password (break-glass). */
static void
t_local_password(void)
{
	struct env e;
	struct resp r = {0}, c = {0};
	const char *json_ct[] = {"Content-Type: application/json", NULL};
	int up = env_up(&e, 1);

	if (up == 1)
		return;
	if (up == 0) {
		client_req(e.admin, "POST", "/api/v1/admins",
			   "{\"email\":\"root@example.com\",\"display_name\":\"Root\","
			   "\"role\":\"admin\",\"password\":\"correct horse battery\"}",
			   json_ct, &c);
		client_req(e.web, "POST", "/api/v1/session",
			   "{\"email\":\"root@example.com\",\"password\":\"correct horse "
			   "battery\"}",
			   json_ct, &r);
	}
	env_down(&e);
	CHECK(up == 0 && c.status == 201, "admin create HTTP %ld", c.status);
	CHECK(r.status == 200 && strncmp(r.set_cookie, "cleave_session=", 15) == 0,
	      "password sign-in HTTP %ld", r.status);
	resp_free(&r);
	resp_free(&c);
}

/*
 * The provider is down (configured, never started): the login route says so on a page (502)
 * and sends the browser nowhere; the password sign-in is the way in meanwhile.
 */
static void
t_provider_down(void)
{
	const char *extra[] = {"--config", NULL, NULL};
	struct srv s;
	struct oidcop op;
	struct client *web = NULL;
	struct resp r = {0};
	char conf[PATH_MAX + 32];
	int up = srv_init(&s, "oidc-down") == 0 && oidcop_init(&op, "oidc-op") == 0 &&
		 oidcop_conf(&op, s.dir, NULL, conf, sizeof(conf)) == 0;

	extra[1] = conf;
	if (up && srv_start(&s, extra) == 0 && (web = client_new(&s, NULL)) != NULL)
		client_req(web, "GET", "/api/v1/oidc/login", NULL, NULL, &r);
	client_free(web);
	oidcop_stop(&op);
	srv_cleanup(&s);
	CHECK(up && web != NULL, "set-up failed");
	CHECK(r.status == 502 && r.location[0] == '\0' && r.set_cookie[0] == '\0',
	      "HTTP %ld to \"%s\"", r.status, r.location);
	CHECK(strstr(r.body ? r.body : "", "cannot be reached") != NULL, "page: %.200s",
	      r.body ? r.body : "");
	resp_free(&r);
}

/* Without the settings: the console is told there is no SSO, and the routes answer 404. */
static void
t_not_configured(void)
{
	struct env e;
	struct resp r = {0}, cb = {0};
	long st = -1;
	json_t *info = NULL;
	int up = env_up(&e, 0);

	if (up == 0) {
		info = client_get_json(e.web, "/api/v1/oidc", &st);
		client_req(e.web, "GET", "/api/v1/oidc/login", NULL, NULL, &r);
		client_req(e.web, "GET", "/api/v1/oidc/callback?state=x&code=y", NULL, NULL, &cb);
	}
	env_down(&e);
	CHECK(up == 0, "set-up failed");
	CHECK(json_is_false(json_object_get(info, "enabled")), "GET /api/v1/oidc HTTP %ld", st);
	CHECK(r.status == 404 && cb.status == 404, "login %ld, callback %ld", r.status, cb.status);
	json_decref(info);
	resp_free(&r);
	resp_free(&cb);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"sso_admin", t_sso_admin},
		{"sso_auditor", t_sso_auditor},
		{"sso_no_role", t_sso_no_role},
		{"sso_state_replay", t_sso_state_replay},
		{"sso_other_browser", t_sso_other_browser},
		{"sso_provider_error", t_sso_provider_error},
		{"sso_second_factor", t_sso_second_factor},
		{"sso_email_domain", t_sso_email_domain},
		{"local_password", t_local_password},
		{"provider_down", t_provider_down},
		{"not_configured", t_not_configured},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

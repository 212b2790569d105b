/*
 * Single sign-on across servers on one PostgreSQL database (as behind a balancer): a sign-in
 * begun on server A is finished on server B, whose session also works on A, and the same
 * callback replayed on A is refused: the flow (state, nonce, verifier) lives in the database
 * and is taken once. Both servers have the balancer's callback URL (oidc_redirect_uri, an
 * address nobody listens on: the test carries the provider's redirect to the server it picks).
 * "skipped: <reason>" without PostgreSQL; the case skips without the provider's packages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fileio.h"
#include "oidcop.h"
#include "testlib.h"
#include "util.h"

#define BALANCER "https://127.0.0.1:1"

static struct pgtest *pg_env;

struct two {
	struct oidcop op;
	struct srv a, b;
	char keys[PATH_MAX];
	struct client *ca, *cb;
};

/* A on a fresh database, then B on the same database with the same keys; the provider. */
static int
two_up(struct two *t)
{
	char conf[PATH_MAX + 32], path[PATH_MAX + 32], line[160];
	const char *extra[] = {"--keys", t->keys, "--config", conf, NULL};
	const char *base = getenv("CLEAVE_TEST_OUT");

	snprintf(t->keys, sizeof(t->keys), "%s/oidc-keys-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(t->keys) == NULL)
		return -1;
	t_remove_after_case(t->keys);
	if (oidcop_init(&t->op, "oidc-op") != 0 || srv_init(&t->a, "sso-pg-a") != 0 ||
	    srv_init(&t->b, "sso-pg-b") != 0 ||
	    oidcop_conf(&t->op, t->a.dir, "oidc_redirect_uri = " BALANCER "/api/v1/oidc/callback\n",
			conf, sizeof(conf)) != 0 ||
	    srv_use_pg(&t->a, pg_env) != 0 || srv_start(&t->a, extra) != 0)
		return -1;
	str_copy(t->b.database, sizeof(t->b.database), t->a.database);
	/* The first admin token is the database's; B makes none. */
	snprintf(path, sizeof(path), "%s/admin-token", t->b.dir);
	snprintf(line, sizeof(line), "%s\n", t->a.admin);
	if (mkdir(t->b.dir, 0700) != 0 || file_write_atomic(path, line, strlen(line), 0600) != 0 ||
	    srv_start(&t->b, extra) != 0 ||
	    oidcop_start(&t->op, BALANCER "/api/v1/oidc/callback", OIDCOP_SECRET) != 0)
		return -1;
	t->ca = client_new(&t->a, NULL);
	t->cb = client_new(&t->b, NULL);
	return t->ca && t->cb ? 0 : -1;
}

static void
two_down(struct two *t)
{
	client_free(t->ca);
	client_free(t->cb);
	oidcop_stop(&t->op);
	srv_cleanup(&t->b);
	srv_cleanup(&t->a);
}

static long
get_with_cookie(struct client *c, const char *path, const char *cookie, struct resp *r)
{
	char h[300];
	const char *hdrs[] = {h, NULL};

	snprintf(h, sizeof(h), "Cookie: %s", cookie);
	return client_req(c, "GET", path, NULL, hdrs, r) == 0 ? r->status : -1;
}

static void
t_sso_across_servers(void)
{
	struct two t;
	struct resp login = {0}, done = {0}, again = {0}, me = {0};
	char state[160] = "", session[200] = "", back[4096] = "";
	long st_done = -1, st_again = -1, st_me = -1;
	json_t *who = NULL;
	int up;

	if (oidcop_skip_reason() != NULL)
		SKIP("%s", oidcop_skip_reason());
	memset(&t, 0, sizeof(t));
	up = two_up(&t);
	if (up == 0 && client_req(t.ca, "GET", "/api/v1/oidc/login", NULL, NULL, &login) == 0 &&
	    login.status == 303) {
		snprintf(state, sizeof(state), "%.*s", (int)strcspn(login.set_cookie, ";"),
			 login.set_cookie);
		if (oidcop_login(&t.op, login.location, "dwho", "dwho", back, sizeof(back)) == 0 &&
		    strncmp(back, BALANCER "/", strlen(BALANCER) + 1) == 0) {
			const char *path = back + strlen(BALANCER);

			st_done = get_with_cookie(t.cb, path, state, &done);
			snprintf(session, sizeof(session), "%.*s",
				 (int)strcspn(done.set_cookie, ";"), done.set_cookie);
			st_again = get_with_cookie(t.ca, path, state, &again);
			st_me = get_with_cookie(t.ca, "/api/v1/session", session, &me);
			who = resp_json(&me);
		}
	}
	two_down(&t);
	CHECK(up == 0, "the servers or the provider did not start");
	CHECK(login.status == 303, "login on A: HTTP %ld", login.status);
	CHECK(st_done == 303 && strncmp(session, "cleave_session=", 15) == 0,
	      "callback on B: HTTP %ld: %.200s", st_done, done.body ? done.body : "");
	CHECK(st_again == 400, "the same callback on A: HTTP %ld", st_again);
	CHECK(st_me == 200 &&
		      strcmp(json_string_value(json_object_get(who, "role")) ?: "", "admin") == 0,
	      "B's session on A: HTTP %ld", st_me);
	json_decref(who);
	resp_free(&login);
	resp_free(&done);
	resp_free(&again);
	resp_free(&me);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"sso_across_servers", t_sso_across_servers},
	};

	return t_run_pg(cases, ARRAY_SIZE(cases), argc, argv, &pg_env);
}

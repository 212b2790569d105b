/*
 * Admin identity in the web console, in Debian's Chromium (tests/browser/auth.test.mjs) against
 * the real cleave-server:
 * - setup_and_accounts: a fresh server; the first admin is made through the setup link read
 *   from DATA/admin-setup (a wrong code, bad fields and a used link get their messages), then
 *   sign-in with and without TOTP, the Admins screen (accounts, TOTP enrollment, API tokens),
 *   CSRF refused (a console fetch without X-CSRF-Token, a cross-site form), a helpdesk account
 *   without the management controls, and sign out everywhere ending a second browser's session.
 * - session_expiry: session_idle_seconds = 60; the setup link after an admin was made with the
 *   token says so (409); an idle session ends (its last activity moved 61 s back in the
 *   database, rather than waiting a minute), the console returns to sign-in and, after it, to
 *   the screen it was on.
 * - throttled_sign_in: refusal_limit = 12; repeated bad passwords make the account wait (the
 *   right password is refused too), then the address gets 429 and the console says "too many".
 * Screenshots and browser.log go to $CLEAVE_TEST_OUT/screenshots/auth/ (auth-expiry/,
 * auth-throttle/ for the other two).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "browser.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

#define PASSWORD "correct horse battery staple"

/* Starts a fresh server; conf: the text of a config file, or NULL. 0 or -1. */
static int
start(struct srv *s, const char *tag, const char *conf)
{
	const char *extra[] = {"--config", NULL, NULL};
	char path[PATH_MAX + 16];

	if (srv_init(s, tag) != 0)
		return -1;
	if (conf != NULL) {
		snprintf(path, sizeof(path), "%s.conf", s->dir);
		if (file_write_atomic(path, conf, strlen(conf), 0600) != 0)
			return -1;
		extra[1] = path;
	}
	return srv_start(s, conf ? extra : NULL);
}

/* The link line of DATA/admin-setup ("CODE\nURL/setup#CODE\n") into out. 0 or -1. */
static int
setup_link(const struct srv *s, char *out, size_t cap)
{
	char path[PATH_MAX + 16];
	size_t n = 0;
	char *text, *nl;
	int r = -1;

	snprintf(path, sizeof(path), "%s/admin-setup", s->dir);
	text = file_read_all(path, 4096, &n);
	if (text == NULL)
		return -1;
	nl = strchr(text, '\n');
	if (nl != NULL && strncmp(nl + 1, s->url, strlen(s->url)) == 0) {
		nl[1 + strcspn(nl + 1, "\n")] = '\0';
		r = str_copy(out, cap, nl + 1);
	}
	free(text);
	return r;
}

/*
 * Runs auth.test.mjs MODE URL ARG OUTDIR, OUTDIR the screenshots folder named dir; the case
 * fails unless it passes.
 */
static void
run(struct srv *s, const char *mode, const char *dir, const char *arg, int seconds)
{
	char outdir[PATH_MAX];
	int rc;

	CHECK(browser_outdir(dir, outdir, sizeof(outdir)) == 0, "cannot make %s", outdir);
	{
		const char *const args[] = {mode, s->url, arg, outdir, NULL};

		rc = browser_run("auth.test.mjs", outdir, seconds, args);
	}
	printf("    browser test %s: exit %d; screenshots in %s\n", mode, rc, outdir);
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
}

static void
test_setup_and_accounts(void)
{
	struct srv s;
	char link[512], path[PATH_MAX + 16];
	struct stat sb;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(start(&s, "auth-setup", NULL) == 0, "server did not start");
	CHECK(setup_link(&s, link, sizeof(link)) == 0, "no setup link in %s/admin-setup", s.dir);
	run(&s, "main", "auth", link, 90);
	snprintf(path, sizeof(path), "%s/admin-setup", s.dir);
	CHECK(stat(path, &sb) != 0, "admin-setup is still there after the setup");
	srv_cleanup(&s);
}

/*
 * The idle hour, without waiting it out: when the browser script, signed in and idle, asks for
 * it (OUTDIR/age-request), the sessions' last activity is moved 61 s into the past in the
 * server's database, and OUTDIR/age-done says so. Bounded: two minutes.
 */
struct ager {
	struct srv *s;
	char dir[PATH_MAX];
	int done;
};

static void *
age_sessions(void *arg)
{
	struct ager *a = arg;
	char req[PATH_MAX + 16], ack[PATH_MAX + 16];

	snprintf(req, sizeof(req), "%s/age-request", a->dir);
	snprintf(ack, sizeof(ack), "%s/age-done", a->dir);
	for (int i = 0; i < 1200 && access(req, F_OK) != 0; i++)
		usleep(100000);
	if (access(req, F_OK) == 0 &&
	    srv_db_exec(a->s, "UPDATE admin_sessions SET last_seen_at = last_seen_at - 61") == 0 &&
	    file_write_atomic(ack, "aged\n", 5, 0644) == 0)
		a->done = 1;
	return NULL;
}

static void
test_session_expiry(void)
{
	struct client *admin;
	struct srv s;
	struct ager a = {.s = &s};
	pthread_t th;
	char link[512];

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(start(&s, "auth-expiry", "session_idle_seconds = 60\n") == 0, "server did not start");
	/* Read before the account exists: the server voids the link then. */
	CHECK(setup_link(&s, link, sizeof(link)) == 0, "no setup link in %s/admin-setup", s.dir);
	admin = client_new(&s, s.admin);
	CHECK(admin != NULL, "no client");
	CHECK(browser_admin(admin, "ops@example.com", "admin", PASSWORD) == 0, "no account");
	client_free(admin);
	CHECK(browser_outdir("auth-expiry", a.dir, sizeof(a.dir)) == 0, "no output directory");
	{
		char f[PATH_MAX + 16];

		/* an earlier run's files would answer before this run's session exists */
		snprintf(f, sizeof(f), "%s/age-request", a.dir);
		unlink(f);
		snprintf(f, sizeof(f), "%s/age-done", a.dir);
		unlink(f);
	}
	CHECK(pthread_create(&th, NULL, age_sessions, &a) == 0, "thread");
	run(&s, "expiry", "auth-expiry", link, 120);
	pthread_join(th, NULL);
	CHECK(a.done, "the browser script never asked for its session to be aged");
	srv_cleanup(&s);
}

static void
test_throttled_sign_in(void)
{
	struct client *admin;
	struct srv s;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(start(&s, "auth-throttle", "refusal_limit = 12\n") == 0, "server did not start");
	admin = client_new(&s, s.admin);
	CHECK(admin != NULL, "no client");
	CHECK(browser_admin(admin, "ops@example.com", "admin", PASSWORD) == 0, "no account");
	client_free(admin);
	run(&s, "throttle", "auth-throttle", "ops@example.com", 60);
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"setup_and_accounts", test_setup_and_accounts},
		{"session_expiry", test_session_expiry},
		{"throttled_sign_in", test_throttled_sign_in},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

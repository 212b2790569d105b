/*
 * Single sign-on in the web console, in Debian's Chromium (tests/browser/sso.test.mjs), through
 * the real OpenID provider (LemonLDAP::NG, lib/oidcop.h) and the real cleave-server:
 * - sso_admin: the sign-in screen's "Sign in with <provider>" (a name with markup, shown as
 *   text), the provider's portal, and the console with the role of the provider's claim.
 * - sso_norole: a user without a role claim ends on Cleave's refusal page, with no session.
 * Screenshots and browser.log go to $CLEAVE_TEST_OUT/screenshots/sso-admin/ and sso-norole/.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "browser.h"
#include "oidcop.h"
#include "testlib.h"

static void
run(const char *mode, const char *dir)
{
	struct srv s;
	struct oidcop op;
	char outdir[PATH_MAX];
	int up, rc = -1;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	if (oidcop_skip_reason() != NULL)
		SKIP("%s", oidcop_skip_reason());
	up = oidcop_server(&s, &op, "sso-browser", "oidc_provider_name = <b>LemonLDAP::NG</b>\n");
	if (up == 0 && browser_outdir(dir, outdir, sizeof(outdir)) == 0) {
		const char *const args[] = {mode, s.url, outdir, NULL};

		rc = browser_run("sso.test.mjs", outdir, 60, args);
		printf("    browser test %s: exit %d; screenshots in %s\n", mode, rc, outdir);
	}
	oidcop_stop(&op);
	srv_cleanup(&s);
	CHECK(up == 0, "the server or the provider did not start");
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
}

static void
t_sso_admin(void)
{
	run("admin", "sso-admin");
}

static void
t_sso_norole(void)
{
	run("norole", "sso-norole");
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"sso_admin", t_sso_admin},
		{"sso_norole", t_sso_norole},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

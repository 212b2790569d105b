/*
 * The walk a new admin takes, in a real browser: a fresh cleave-server (as `make run` starts
 * it), the setup link it wrote to DATA/admin-setup, an enrollment link made in the console, the
 * employee page's command pasted into scripts/phone.sh (`make phone`: the real cleave-hv and
 * cleave-agent on this machine), and a wipe with the typed confirmation until the badge says
 * "receipt verified ✓". tests/browser/newcomer.test.mjs drives it; screenshots go to
 * $CLEAVE_TEST_OUT/screenshots/newcomer/.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

static void
test_setup_enroll_wipe(void)
{
	struct srv s;
	char path[PATH_MAX + 32], link[512] = "", work[PATH_MAX], outdir[PATH_MAX],
				  build[PATH_MAX + 8];
	const char *base = getenv("CLEAVE_TEST_OUT");
	FILE *f;
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "newcomer") == 0 && srv_start(&s, NULL) == 0, "server did not start");
	snprintf(path, sizeof(path), "%s/admin-setup", s.dir);
	f = fopen(path, "r");
	CHECK(f != NULL, "the server wrote no %s", path);
	/* Line 2 is the link (line 1 says what it is). */
	for (int i = 0; i < 2 && fgets(link, sizeof(link), f) != NULL; i++)
		;
	fclose(f);
	link[strcspn(link, "\r\n")] = '\0';
	CHECK(strstr(link, "/setup#") != NULL, "no setup link in %s: %s", path, link);
	snprintf(work, sizeof(work), "%s/newcomer-XXXXXX", base && *base ? base : "/tmp");
	CHECK(mkdtemp(work) != NULL, "mkdtemp");
	t_remove_after_case(work);
	CHECK(browser_outdir("newcomer", outdir, sizeof(outdir)) == 0, "outdir");
	/* CLEAVE_BIN is <repo>/<build>/bin; phone.sh takes <build>. */
	snprintf(build, sizeof(build), "%s/..",
		 getenv("CLEAVE_BIN") ? getenv("CLEAVE_BIN") : "build/bin");
	{
		char abs[PATH_MAX];
		const char *const args[] = {s.url, link,   realpath(build, abs) ? abs : build,
					    work,  outdir, NULL};

		rc = browser_run("newcomer.test.mjs", outdir, 120, args);
	}
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the walkthrough failed (its log is above)");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"setup_enroll_wipe", test_setup_enroll_wipe},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

/*
 * The console's Webhooks screen in Chromium (issue 11 §3): cleave-server with webhook delays
 * 1000 times faster, one enrolled simulated device, and one subscription (made here) whose
 * receiver is down and whose description is markup. tests/browser/webhooks.test.mjs runs its
 * own receiver (node:http, signatures checked with node:crypto), creates a subscription in
 * the form, sees the secret once, follows a delivery into the log, redelivers, disables and
 * enables, rotates the secret, deletes, and checks that helpdesk is turned away. Screenshots
 * go to $CLEAVE_TEST_OUT/screenshots/webhooks/.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define BROWSER_SECONDS  60
#define CONSOLE_EMAIL    "hooks@example.com"
#define CONSOLE_PASSWORD "correct horse battery staple"
#define HELPDESK_EMAIL   "desk@example.com"
#define HOSTILE          "<img src=x onerror=alert(1)> & <b>siem</b>"

static int
start_fast(struct srv *s, char *conf, size_t cap)
{
	const char *extra[] = {"--config", conf, NULL};
	FILE *f;

	snprintf(conf, cap, "%.*s/webhooks.conf", (int)(strrchr(s->dir, '/') - s->dir), s->dir);
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fputs("webhook_test_time_divisor = 1000\nwebhook_timeout_seconds = 2\n", f);
	fclose(f);
	return srv_start(s, extra);
}

/* A subscription to a port where nothing listens, with a hostile description. */
static int
dead_hook(struct client *admin)
{
	struct resp r;
	int rc;

	if (client_req(admin, "POST", "/api/v1/webhooks",
		       "{\"url\":\"http://127.0.0.1:9/dead\",\"events\":[\"command.queued\"],"
		       "\"description\":\"" HOSTILE "\"}",
		       NULL, &r) != 0)
		return -1;
	rc = r.status == 201 ? 0 : -1;
	resp_free(&r);
	return rc;
}

static void
test_webhooks_in_chromium(void)
{
	struct client *admin = NULL, *anon = NULL;
	struct device_sim d;
	struct srv s;
	char outdir[PATH_MAX], conf[PATH_MAX + 32], cmd[64];
	int rc;
	double t0;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "browser_webhooks") == 0 && start_fast(&s, conf, sizeof(conf)) == 0,
	      "server");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin != NULL && anon != NULL, "no memory or client");
	CHECK(browser_admin(admin, CONSOLE_EMAIL, "admin", CONSOLE_PASSWORD) == 0, "no account");
	CHECK(browser_admin(admin, HELPDESK_EMAIL, "helpdesk", CONSOLE_PASSWORD) == 0, "helpdesk");
	CHECK(admin_enroll(admin, anon, &d, "hooks@fleet.example") == 0, "enroll");
	CHECK(dead_hook(admin) == 0, "the dead subscription");
	/* An event for it, so that it is failing when the console opens. */
	CHECK(admin_command(admin, d.id, "refresh", cmd, sizeof(cmd)) == 202, "refresh");
	CHECK(browser_outdir("webhooks", outdir, sizeof(outdir)) == 0, "outdir");
	t0 = now_s();
	{
		const char *const args[] = {s.url, CONSOLE_EMAIL, CONSOLE_PASSWORD, outdir,
					    d.id,  HOSTILE,       HELPDESK_EMAIL,   NULL};

		rc = browser_run("webhooks.test.mjs", outdir, BROWSER_SECONDS, args);
	}
	printf("    browser test: exit %d in %.1f s; screenshots in %s\n", rc, now_s() - t0,
	       outdir);
	dev_fini(&d);
	client_free(admin);
	client_free(anon);
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	srv_cleanup(&s);
	unlink(conf);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"webhooks_in_chromium", test_webhooks_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

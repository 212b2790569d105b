/*
 * The console's bulk operations screen in Chromium (issue 10 section 2): cleave-server with
 * bulk batches of 5 devices gets one simulated device enrolled through the device API and
 * BULK_N copies of it written into its database (as test_bulk.c does), all of owner
 * team-ops-*, and one finished bulk whose reason holds markup. tests/browser/bulk.test.mjs
 * then selects all matching devices, confirms a bulk lock, lands on #/bulk/{id}, watches the
 * progress move (and survive a reload), cancels it and checks through the API that it stopped,
 * reads the list (the hostile reason as text, the state filter), and signs in as helpdesk to
 * find no Cancel on a wipe bulk, which the API refuses too. Screenshots go to
 * $CLEAVE_TEST_OUT/screenshots/bulk/.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define BULK_N           30000
#define OWNER            "team-ops@fleet.example"
#define BROWSER_SECONDS  90
#define CONSOLE_EMAIL    "ops@example.com"
#define CONSOLE_PASSWORD "correct horse battery staple"
#define HELPDESK_EMAIL   "desk@example.com"
#define HOSTILE_REASON   "<img src=x onerror=alert(1)> move & <b>lock</b>"

/* Starts s with bulk batches of 5 devices: a large bulk runs for seconds. */
static int
start_small_batches(struct srv *s)
{
	char path[PATH_MAX + 32];
	const char *extra[] = {"--config", path, NULL};
	FILE *f;

	/* Beside the data directory, which the server makes at its first start. */
	snprintf(path, sizeof(path), "%.*s/small-batches.conf",
		 (int)(strrchr(s->dir, '/') - s->dir), s->dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs("bulk_batch = 5\n", f);
	fclose(f);
	return srv_start(s, extra);
}

/* BULK_N copies of the enrolled device tmpl, of OWNER, but for id and key. */
static int
import(struct srv *s, const char *tmpl)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
		 "INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
		 "enrollment_token_id, model, os, agent_version, enrolled_at) SELECT "
		 "printf('dev_ops%%05d', i), '%s', 'active', randomblob(32), t.hv_key, "
		 "t.measurement, t.enrollment_token_id, t.model, t.os, t.agent_version, "
		 "t.enrolled_at FROM n, devices t WHERE t.id = '%s'",
		 BULK_N, OWNER, tmpl);
	return srv_db_exec(s, sql);
}

/* A finished bulk with a hostile reason, so that the list has markup to show as text. */
static int
hostile_bulk(struct client *admin, const char *dev)
{
	char body[512];
	struct resp r;
	int rc;

	/* By filter: the one enrolled device (its id as the search), one batch. */
	snprintf(body, sizeof(body),
		 "{\"type\":\"refresh\",\"reason\":\"%s\",\"filter\":{\"q\":\"%s\"},"
		 "\"expected_count\":1}",
		 HOSTILE_REASON, dev);
	if (client_req(admin, "POST", "/api/v1/commands/bulk", body, NULL, &r) != 0)
		return -1;
	rc = r.status == 202 ? 0 : -1;
	if (rc != 0)
		printf("    hostile bulk: %ld %s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	return rc;
}

static void
test_bulk_in_chromium(void)
{
	struct client *admin = NULL, *anon = NULL;
	struct device_sim d;
	struct srv s;
	struct resp r;
	char outdir[PATH_MAX], tok[128];
	int rc = -1, ok;
	double t0;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "browser_bulk") == 0 && start_small_batches(&s) == 0, "server");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin != NULL && anon != NULL && dev_init(&d) == 0, "no memory or client");
	CHECK(browser_admin(admin, CONSOLE_EMAIL, "admin", CONSOLE_PASSWORD) == 0, "no account");
	CHECK(browser_admin(admin, HELPDESK_EMAIL, "helpdesk", CONSOLE_PASSWORD) == 0, "helpdesk");
	ok = admin_etoken(admin, OWNER, 1, tok, sizeof(tok)) == 0 &&
	     dev_enroll(&d, anon, tok, &r) == 0;
	CHECK(ok && r.status == 201, "enroll");
	resp_free(&r);
	CHECK(import(&s, d.id) == 0, "import %d devices", BULK_N);
	CHECK(hostile_bulk(admin, d.id) == 0, "the hostile bulk");
	CHECK(browser_outdir("bulk", outdir, sizeof(outdir)) == 0, "outdir");
	t0 = now_s();
	{
		char n[16];
		const char *const args[] = {s.url, CONSOLE_EMAIL,  CONSOLE_PASSWORD, outdir,
					    n,     HOSTILE_REASON, HELPDESK_EMAIL,   NULL};

		snprintf(n, sizeof(n), "%d", BULK_N + 1);
		rc = browser_run("bulk.test.mjs", outdir, BROWSER_SECONDS, args);
	}
	printf("    browser test: exit %d in %.1f s; screenshots in %s\n", rc, now_s() - t0,
	       outdir);
	dev_fini(&d);
	client_free(admin);
	client_free(anon);
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"bulk_in_chromium", test_bulk_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

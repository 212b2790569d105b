/*
 * Labels and groups in the console (issue 11 section 5), in Chromium against the real
 * cleave-server: six simulated devices enrolled, four labelled dept=sales through the API (one
 * of them also "lost", one with a hostile note holding markup and quotes), then
 * tests/browser/labels.test.mjs shows and edits labels on the device page (the hostile value
 * only as text), filters the device list by a label query, creates a group on the Groups
 * screen, sees its member count and opens its members in the device list. Screenshots go to
 * $CLEAVE_TEST_OUT/screenshots/labels/.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define NDEV             6
#define NSALES           4 /* devices 0..3 are dept=sales; 3 is lost too */
#define BROWSER_SECONDS  60
#define CONSOLE_EMAIL    "labels@example.com"
#define CONSOLE_PASSWORD "correct horse battery staple"
#define HOSTILE_JSON     "<img src=x onerror=alert(1)>\\\"'; DROP TABLE devices; --"

static int
put(struct client *admin, const char *method, const char *path, const char *body)
{
	struct resp r;
	int ok = client_req(admin, method, path, body, NULL, &r) == 0 &&
		 (r.status == 200 || r.status == 201);

	if (!ok)
		fprintf(stderr, "    %s %s: %ld %.200s\n", method, path, r.status, r.body ?: "");
	resp_free(&r);
	return ok ? 0 : -1;
}

static void
test_labels_in_chromium(void)
{
	struct device_sim dev[NDEV];
	struct client *admin = NULL, *anon = NULL;
	struct srv s;
	char outdir[PATH_MAX], path[128], body[512], tok[128];
	int failed = 0, rc = -1;
	double t0;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	memset(dev, 0, sizeof(dev));
	CHECK(srv_init(&s, "browser_labels") == 0 && srv_start(&s, NULL) == 0, "server");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin != NULL && anon != NULL, "clients");
	CHECK(browser_admin(admin, CONSOLE_EMAIL, "admin", CONSOLE_PASSWORD) == 0, "no account");
	for (int i = 0; i < NDEV && !failed; i++) {
		struct resp r;

		snprintf(body, sizeof(body), "user%d@fleet.example", i);
		failed = dev_init(&dev[i]) != 0 ||
			 admin_etoken(admin, body, 1, tok, sizeof(tok)) != 0 ||
			 dev_enroll(&dev[i], anon, tok, &r) != 0;
		if (!failed) {
			failed = r.status != 201;
			resp_free(&r);
		}
	}
	for (int i = 0; i < NSALES && !failed; i++) {
		snprintf(path, sizeof(path), "/api/v1/devices/%s/labels", dev[i].id);
		snprintf(body, sizeof(body), "{\"labels\":{\"dept\":\"sales\"%s%s}}",
			 i == 3 ? ",\"lost\":\"\"" : "",
			 i == 0 ? ",\"note\":\"" HOSTILE_JSON "\"" : "");
		failed = put(admin, "PUT", path, body) != 0;
	}
	/* Two policies: standard (the default, the first made) and strict, for the group. */
	if (!failed)
		failed = put(admin, "PUT", "/api/v1/policies/standard", "{}") != 0 ||
			 put(admin, "PUT", "/api/v1/policies/strict",
			     "{\"offline\":{\"lock_after_hours\":8}}") != 0;
	if (failed || browser_outdir("labels", outdir, sizeof(outdir)) != 0)
		goto out;
	t0 = now_s();
	{
		const char *const args[] = {s.url,     CONSOLE_EMAIL, CONSOLE_PASSWORD, outdir,
					    dev[0].id, dev[1].id,     dev[2].id,        dev[3].id,
					    dev[4].id, NULL};

		rc = browser_run("labels.test.mjs", outdir, BROWSER_SECONDS, args);
	}
	printf("    browser test: exit %d in %.1f s; screenshots in %s\n", rc, now_s() - t0,
	       outdir);
out:
	for (int i = 0; i < NDEV; i++)
		dev_fini(&dev[i]);
	client_free(admin);
	client_free(anon);
	CHECK(!failed, "enrolling or labelling the devices failed");
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"labels_in_chromium", test_labels_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

/*
 * The two-person rule in the console, in Chromium (issue 11 section 4): cleave-server with
 * two_person_rule = 1, two admin accounts with TOTP (ann asks, bob approves) and one simulated
 * device whose owner is markup. tests/browser/approvals.test.mjs signs in as ann, wipes the
 * device through the typed confirmation with a reason made of markup, and must see "waiting for
 * approval by a second admin" on the device page (and no second wipe offered); on the
 * Approvals screen ann gets Cancel and the override but no Approve for her own request. Then
 * bob signs in, approves it, and the device page shows the wipe queued. Afterwards the device
 * checks in and must be handed the wipe, whose command names ann's and bob's accounts.
 * Screenshots: $CLEAVE_TEST_OUT/screenshots/approvals/.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define BROWSER_SECONDS 90
#define ASKER           "ann@example.com"
#define APPROVER        "bob@example.com"
#define PASSWORD        "correct horse battery staple"
#define HOSTILE_OWNER   "<img/src/onerror=alert(1)>@evil.example"
#define HOSTILE_REASON  "<b>stolen</b> & <script>alert(2)</script>"

/* Beside the data directory (made at the first start): the rule's settings. */
static int
start_with_rule(struct srv *s)
{
	char path[PATH_MAX + 32];
	const char *extra[] = {"--config", path, NULL};
	FILE *f;

	snprintf(path, sizeof(path), "%.*s/rule.conf", (int)(strrchr(s->dir, '/') - s->dir),
		 s->dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs("two_person_rule = 1\n", f);
	fclose(f);
	return srv_start(s, extra);
}

/* Enrolls TOTP for the account with email; its base32 secret into out. 0 or -1. */
static int
totp_secret(struct client *admin, const char *email, char *out, size_t cap)
{
	long st;
	json_t *list = client_get_json(admin, "/api/v1/admins", &st), *a;
	char path[128] = "", uri[256] = "";
	const char *p;
	struct resp r;
	size_t i;

	json_array_foreach(
		json_object_get(list, "items"), i,
		a) if (strcmp(json_string_value(json_object_get(a, "email")) ?: "", email) == 0)
		snprintf(path, sizeof(path), "/api/v1/admins/%s/totp",
			 json_string_value(json_object_get(a, "id")) ?: "");
	json_decref(list);
	if (path[0] == '\0' || client_req(admin, "POST", path, "{}", NULL, &r) != 0)
		return -1;
	if (r.status != 201 || resp_str(&r, "otpauth_uri", uri, sizeof(uri)) != 0) {
		resp_free(&r);
		return -1;
	}
	resp_free(&r);
	p = strstr(uri, "secret=");
	if (p == NULL)
		return -1;
	p += 7;
	snprintf(out, cap, "%.*s", (int)strcspn(p, "&"), p);
	return 0;
}

/* The device checks in: its wipe's JSON (decref), or NULL when it got none. */
static json_t *
device_wipe(struct srv *s, struct device_sim *d)
{
	struct client *c = client_new(s, NULL);
	json_t *j = NULL, *v, *found = NULL;
	struct resp r;
	size_t i;

	if (c != NULL && dev_req(d, c, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0) {
		j = r.status == 200 ? resp_json(&r) : NULL;
		resp_free(&r);
	}
	json_array_foreach(json_object_get(j, "commands"), i,
			   v) if (strcmp(json_string_value(json_object_get(v, "type")) ?: "",
					 "wipe") == 0) found = json_incref(v);
	json_decref(j);
	client_free(c);
	return found;
}

static void
test_approvals_in_chromium(void)
{
	struct client *admin = NULL, *anon = NULL;
	struct device_sim d;
	struct srv s;
	char outdir[PATH_MAX], ann[64], bob[64], path[128];
	json_t *wipe, *cmd;
	long st;
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "browser_approvals") == 0 && start_with_rule(&s) == 0, "server");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin != NULL && anon != NULL, "no client");
	CHECK(browser_admin(admin, ASKER, "admin", PASSWORD) == 0 &&
		      browser_admin(admin, APPROVER, "admin", PASSWORD) == 0,
	      "accounts");
	CHECK(totp_secret(admin, ASKER, ann, sizeof(ann)) == 0 &&
		      totp_secret(admin, APPROVER, bob, sizeof(bob)) == 0,
	      "TOTP for both");
	CHECK(admin_enroll(admin, anon, &d, HOSTILE_OWNER) == 0, "enroll");
	CHECK(browser_outdir("approvals", outdir, sizeof(outdir)) == 0, "outdir");
	{
		const char *const args[] = {s.url, outdir, d.id,     HOSTILE_OWNER, HOSTILE_REASON,
					    ASKER, ann,    APPROVER, bob,           PASSWORD,
					    NULL};
		double t0 = now_s();

		rc = browser_run("approvals.test.mjs", outdir, BROWSER_SECONDS, args);
		printf("    browser test: exit %d in %.1f s; screenshots in %s\n", rc, now_s() - t0,
		       outdir);
	}
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	wipe = device_wipe(&s, &d);
	CHECK(wipe != NULL, "the device was not handed the approved wipe");
	snprintf(path, sizeof(path), "/api/v1/commands/%s",
		 json_string_value(json_object_get(wipe, "id")) ?: "");
	json_decref(wipe);
	cmd = client_get_json(admin, path, &st);
	CHECK(cmd != NULL &&
		      strncmp(json_string_value(json_object_get(cmd, "created_by")) ?: "", "adm_",
			      4) == 0 &&
		      strncmp(json_string_value(json_object_get(cmd, "approved_by")) ?: "", "adm_",
			      4) == 0 &&
		      strcmp(json_string_value(json_object_get(cmd, "created_by")),
			     json_string_value(json_object_get(cmd, "approved_by"))) != 0 &&
		      strcmp(json_string_value(json_object_get(cmd, "reason")) ?: "",
			     HOSTILE_REASON) == 0,
	      "the wipe does not name both accounts and the reason");
	json_decref(cmd);
	dev_fini(&d);
	client_free(admin);
	client_free(anon);
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"approvals_in_chromium", test_approvals_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

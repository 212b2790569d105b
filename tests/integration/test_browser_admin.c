/*
 * The policies and audit log screens (issue 9 §2 screens 6 and 9) in Chromium against the real
 * cleave-server. Three simulated devices (device_sim, one owned by markup) run in a thread the
 * way an agent would: check in, take the policy the server hands them and report it applied at
 * the next check-in, so the console's "applied" count moves by itself. Then
 * tests/browser/policies_audit.test.mjs (phase "console", as an admin) creates a policy, edits a
 * limit, gets the API's validation error beside the form, assigns the policy and watches the
 * count go from 0 to 2; filters the audit log by actor, action, target and time and compares
 * with the API, sees the chain intact with its checkpoint and exports JSON lines. The server is
 * then stopped, one audit row edited in its SQLite file, and restarted; phase "tampered" (as an
 * auditor, who may read but not edit policies) must see the chain broken at that entry.
 * Screenshots: $CLEAVE_TEST_OUT/screenshots/policies-audit{,-tampered}/.
 */
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define BROWSER_SECONDS 90
#define ADMIN_EMAIL     "policy-admin@example.com"
#define AUDITOR_EMAIL   "auditor@example.com"
#define PASSWORD        "correct horse battery staple"
#define HOSTILE_OWNER   "<img/src/onerror=alert(1)>@evil.example"
#define HOSTILE_REASON  "<script>alert(2)</script><img src=x onerror=alert(3)>"
#define HOSTILE_PATH    "/api/v1/devices/<script>alert(4)<%2Fscript>/commands"
#define TAMPERED_SEQ    4

/* The simulated agents: each checks in and applies whatever policy the server hands it. */
struct agents {
	const struct srv *s;
	struct device_sim *d;
	size_t n;
	atomic_int stop;
	atomic_int checkins;
	pthread_t thread;
};

/* One check-in reporting what the device applied; takes the policy the reply hands out. */
static void
agent_checkin(struct device_sim *d, struct client *c, char *name, size_t cap, long long *version)
{
	char body[256];
	struct resp r;
	json_t *j, *pol;

	snprintf(body, sizeof(body),
		 "{\"wait\":0,\"state\":{\"policy_name\":\"%s\",\"policy_version\":%lld}}", name,
		 *version);
	if (dev_req(d, c, "POST", "/device/v1/checkin", body, 0, &r) != 0)
		return;
	j = r.status == 200 ? resp_json(&r) : NULL;
	pol = json_object_get(j, "policy");
	if (json_is_object(pol)) {
		snprintf(name, cap, "%s", json_string_value(json_object_get(pol, "name")));
		*version = json_integer_value(json_object_get(pol, "version"));
	}
	json_decref(j);
	resp_free(&r);
}

static void *
agents_main(void *arg)
{
	struct agents *a = arg;
	struct client *c = client_new(a->s, NULL);
	char names[8][64] = {{0}};
	long long versions[8] = {0};

	while (c != NULL && !atomic_load(&a->stop)) {
		for (size_t i = 0; i < a->n && i < 8; i++)
			agent_checkin(&a->d[i], c, names[i], sizeof(names[i]), &versions[i]);
		atomic_fetch_add(&a->checkins, 1);
		for (int t = 0; t < 5 && !atomic_load(&a->stop); t++)
			usleep(100 * 1000);
	}
	client_free(c);
	return NULL;
}

/* Entries with markup where the console shows text: a command reason, a refused path. */
static int
hostile_entries(const struct srv *s, struct client *admin, const char *device)
{
	char body[256], path[128], secret[160];
	struct client *help;
	struct resp r;
	int ok;

	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", device);
	snprintf(body, sizeof(body), "{\"type\":\"refresh\",\"reason\":\"%s\"}", HOSTILE_REASON);
	if (client_req(admin, "POST", path, body, NULL, &r) != 0)
		return -1;
	ok = r.status == 202;
	if (!ok)
		printf("    command with a hostile reason: HTTP %ld %s\n", r.status, r.body);
	resp_free(&r);
	if (!ok || admin_token(admin, "helpdesk", secret, sizeof(secret)) != 0)
		return -1;
	help = client_new(s, secret);
	if (help == NULL || client_req(help, "POST", HOSTILE_PATH, "{\"type\":\"wipe\"}", NULL, &r))
		ok = 0;
	else
		ok = r.status == 403;
	if (!ok)
		printf("    refused path: HTTP %ld %s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	client_free(help);
	return ok ? 0 : -1;
}

/* Edits one audit row in the stopped server's database, as an insider with the file would. */
static int
tamper(const struct srv *s)
{
	char path[PATH_MAX + 16], sql[128];
	sqlite3 *db = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/cleave.db", s->dir);
	snprintf(sql, sizeof(sql), "UPDATE audit SET detail = 'nothing to see' WHERE seq = %d",
		 TAMPERED_SEQ);
	rc = sqlite3_open(path, &db) == SQLITE_OK ? sqlite3_exec(db, sql, NULL, NULL, NULL) : -1;
	if (rc == SQLITE_OK && sqlite3_changes(db) != 1)
		rc = -1;
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

static int
run_phase(const struct srv *s, const char *phase, const char *email, const char *dir,
	  const char *devices)
{
	char outdir[PATH_MAX], seq[16];
	const char *const args[] = {phase, s->url, email, PASSWORD, outdir, devices, seq, NULL};
	double t0 = now_s();
	int rc;

	if (browser_outdir(dir, outdir, sizeof(outdir)) != 0)
		return -1;
	snprintf(seq, sizeof(seq), "%d", TAMPERED_SEQ);
	rc = browser_run("policies_audit.test.mjs", outdir, BROWSER_SECONDS, args);
	printf("    %s: exit %d in %.1f s; screenshots in %s\n", phase, rc, now_s() - t0, outdir);
	return rc;
}

static void
test_policies_and_audit_in_chromium(void)
{
	static const char *const owners[] = {"ana@example.com", "ben@example.com", HOSTILE_OWNER};
	struct device_sim d[3] = {0};
	struct agents ag = {0};
	struct client *admin = NULL, *anon = NULL;
	const char *extra[3] = {"--config", NULL, NULL};
	char conf[PATH_MAX + 16], ids[128];
	struct resp r;
	struct srv s;
	FILE *f;
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "browser-admin") == 0, "no data directory");
	snprintf(conf, sizeof(conf), "%.*s/server.conf", (int)strlen(s.dir) - 5, s.dir);
	f = fopen(conf, "w");
	CHECK(f != NULL, "cannot write %s", conf);
	fputs("audit_checkpoint_entries = 3\naudit_checkpoint_seconds = 60\n", f);
	fclose(f);
	extra[1] = conf;
	CHECK(srv_start(&s, extra) == 0, "server did not start");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin && anon, "no client");
	CHECK(browser_admin(admin, ADMIN_EMAIL, "admin", PASSWORD) == 0, "no admin account");
	CHECK(browser_admin(admin, AUDITOR_EMAIL, "auditor", PASSWORD) == 0, "no auditor account");
	for (size_t i = 0; i < ARRAY_SIZE(owners); i++)
		CHECK(admin_enroll(admin, anon, &d[i], owners[i]) == 0, "cannot enroll %s",
		      owners[i]);
	CHECK(hostile_entries(&s, admin, d[2].id) == 0, "cannot make the hostile entries");
	/* Every device follows this default until the console assigns another. */
	CHECK(client_req(admin, "PUT", "/api/v1/policies/baseline", "{}", NULL, &r) == 0 &&
		      r.status == 201,
	      "no default policy");
	resp_free(&r);
	snprintf(ids, sizeof(ids), "%s,%s", d[0].id, d[1].id);
	ag.s = &s;
	ag.d = d;
	ag.n = ARRAY_SIZE(d);
	CHECK(pthread_create(&ag.thread, NULL, agents_main, &ag) == 0, "no agent thread");
	rc = run_phase(&s, "console", ADMIN_EMAIL, "policies-audit", ids);
	atomic_store(&ag.stop, 1);
	pthread_join(ag.thread, NULL);
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "phase console failed (its log is above)");
	CHECK(atomic_load(&ag.checkins) > 0, "the simulated agents never checked in");

	CHECK(srv_stop(&s, SIGTERM) == 0, "server did not stop cleanly");
	CHECK(tamper(&s) == 0, "cannot edit audit entry %d", TAMPERED_SEQ);
	CHECK(srv_start(&s, extra) == 0, "server did not restart");
	rc = run_phase(&s, "tampered", AUDITOR_EMAIL, "policies-audit-tampered", ids);
	CHECK(rc == 0, "phase tampered failed (its log is above)");
	for (size_t i = 0; i < ARRAY_SIZE(d); i++)
		dev_fini(&d[i]);
	client_free(anon);
	client_free(admin);
	srv_cleanup(&s);
	remove(conf);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"policies_and_audit_in_chromium", test_policies_and_audit_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

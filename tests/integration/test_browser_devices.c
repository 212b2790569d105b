/*
 * The console's device list, bulk commands, compliance dashboard and command queue in Chromium
 * (issue 9 §2 screens 1, 3, 7, 8). The real cleave-server gets 1,000 simulated devices enrolled
 * through the device API (four threads, each its own connections): most with an owner of their
 * own, 50 of team "bulk" for the bulk lock, one owned by markup, five locked beforehand. Then
 * tests/browser/devices.test.mjs searches (owner, id prefix, fingerprint), filters, pages,
 * bulk-locks the 50 with the typed confirmation and checks through the API that exactly those
 * got a lock, compares the dashboard with the API and follows its links, and cancels from the
 * command queue. Screenshots go to $CLEAVE_TEST_OUT/screenshots/devices/.
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define NDEV             1000
#define NTHREADS         4
#define BULK_FIRST       100 /* devices 100..149 are team "bulk" */
#define BULK_N           50
#define HOSTILE_IDX      7
#define FIND_IDX         500
#define BROWSER_SECONDS  90
#define CONSOLE_EMAIL    "fleet@example.com"
#define CONSOLE_PASSWORD "correct horse battery staple"
#define HELPDESK_EMAIL   "desk@example.com"
#define HOSTILE_OWNER    "<img/src/onerror=alert(1)>&lt;b&gt;@evil.example"

struct fleet {
	struct srv *s;
	struct device_sim *dev;
	int next; /* the next device to enroll, under lock */
	int failed;
	pthread_mutex_t lock;
};

static void
owner_of(int i, char *out, size_t cap)
{
	if (i == HOSTILE_IDX)
		snprintf(out, cap, "%s", HOSTILE_OWNER);
	else if (i >= BULK_FIRST && i < BULK_FIRST + BULK_N)
		snprintf(out, cap, "team-bulk-%02d@fleet.example", i - BULK_FIRST);
	else
		snprintf(out, cap, "user%04d@fleet.example", i);
}

static void *
enroller(void *arg)
{
	struct fleet *f = arg;
	struct client *admin = client_new(f->s, f->s->admin), *anon = client_new(f->s, NULL);

	for (;;) {
		char owner[128], tok[128];
		struct resp r;
		int i, ok;

		pthread_mutex_lock(&f->lock);
		i = f->failed || admin == NULL || anon == NULL ? NDEV : f->next++;
		pthread_mutex_unlock(&f->lock);
		if (i >= NDEV)
			break;
		owner_of(i, owner, sizeof(owner));
		ok = dev_init(&f->dev[i]) == 0 &&
		     admin_etoken(admin, owner, 1, tok, sizeof(tok)) == 0 &&
		     dev_enroll(&f->dev[i], anon, tok, &r) == 0;
		if (ok) {
			ok = r.status == 201;
			if (!ok)
				fprintf(stderr, "    enroll %d: %ld %.200s\n", i, r.status,
					r.body ? r.body : "");
			resp_free(&r);
		} else {
			fprintf(stderr, "    device %d: no token or no answer\n", i);
		}
		if (!ok) {
			pthread_mutex_lock(&f->lock);
			f->failed = 1;
			pthread_mutex_unlock(&f->lock);
		}
	}
	if (admin == NULL || anon == NULL)
		f->failed = 1;
	client_free(admin);
	client_free(anon);
	return NULL;
}

/* The device's hypervisor key fingerprint as the API shows it. */
static int
fingerprint(struct client *admin, const char *id, char *out, size_t cap)
{
	char path[96];
	struct resp r;
	json_t *j;
	const char *fp;
	int rc = -1;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", id);
	if (client_req(admin, "GET", path, NULL, NULL, &r) != 0)
		return -1;
	j = resp_json(&r);
	fp = json_string_value(
		json_object_get(json_object_get(j, "hypervisor"), "key_fingerprint"));
	if (fp != NULL)
		rc = str_copy(out, cap, fp);
	json_decref(j);
	resp_free(&r);
	return rc;
}

static void
test_devices_in_chromium(void)
{
	struct fleet f = {.lock = PTHREAD_MUTEX_INITIALIZER};
	pthread_t th[NTHREADS];
	struct client *admin = NULL;
	struct srv s;
	char outdir[PATH_MAX], cmd[64], fp[64], owner[64];
	double t0;
	int rc = -1;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "browser_devices") == 0 && srv_start(&s, NULL) == 0, "server");
	f.s = &s;
	f.dev = calloc(NDEV, sizeof(*f.dev));
	admin = client_new(&s, s.admin);
	CHECK(f.dev != NULL && admin != NULL, "no memory or client");
	CHECK(browser_admin(admin, CONSOLE_EMAIL, "admin", CONSOLE_PASSWORD) == 0, "no account");
	CHECK(browser_admin(admin, HELPDESK_EMAIL, "helpdesk", CONSOLE_PASSWORD) == 0, "helpdesk");
	/* A default policy before any device: each follows it without a fan-out to wait for. */
	{
		struct resp r;

		CHECK(client_req(admin, "PUT", "/api/v1/policies/standard",
				 "{\"offline\":{\"lock_after_hours\":72}}", NULL, &r) == 0 &&
			      r.status == 201,
		      "policy");
		resp_free(&r);
	}
	t0 = now_s();
	for (int i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, enroller, &f);
	for (int i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	printf("    %d devices enrolled in %.1f s\n", NDEV, now_s() - t0);
	if (f.failed)
		goto out;
	/* Five locked beforehand: the dashboard has something to show before the bulk. */
	for (int i = 0; i < 5; i++)
		if (admin_command(admin, f.dev[900 + i].id, "lock", cmd, sizeof(cmd)) != 202)
			f.failed = 1;
	/*
	 * Three keys recorded as in TPMs with a verified endorsement, as TPM enrollment records
	 * them (test_tpm_enroll enrolls through a real swtpm): the dashboard counts them.
	 */
	for (int i = 0; i < 3 && !f.failed; i++) {
		char sql[256];

		snprintf(sql, sizeof(sql),
			 "UPDATE devices SET hv_identity = 'tpm', endorsement = 'verified' WHERE "
			 "id = '%s'",
			 f.dev[950 + i].id);
		f.failed = srv_db_exec(&s, sql) != 0;
	}
	if (f.failed || fingerprint(admin, f.dev[FIND_IDX].id, fp, sizeof(fp)) != 0 ||
	    browser_outdir("devices", outdir, sizeof(outdir)) != 0)
		goto out;
	owner_of(FIND_IDX, owner, sizeof(owner));
	t0 = now_s();
	{
		const char *const args[] = {
			s.url, CONSOLE_EMAIL, CONSOLE_PASSWORD, outdir, owner, f.dev[FIND_IDX].id,
			fp,    HOSTILE_OWNER, HELPDESK_EMAIL,   NULL};

		rc = browser_run("devices.test.mjs", outdir, BROWSER_SECONDS, args);
	}
	printf("    browser test: exit %d in %.1f s; screenshots in %s\n", rc, now_s() - t0,
	       outdir);
out:
	for (int i = 0; f.dev != NULL && i < NDEV; i++)
		dev_fini(&f.dev[i]);
	free(f.dev);
	client_free(admin);
	CHECK(!f.failed, "enrolling or preparing the devices failed");
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"devices_in_chromium", test_devices_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

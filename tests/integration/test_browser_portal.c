/*
 * The employee portal in a real browser (tests/browser/portal.test.mjs), against the real
 * cleave-server, cleave-hv and cleave-agent (cleave-hv needs no /dev/kvm for this). Phase one:
 * an admin creates enrollment links in the console and sees their QR codes (read back here by
 * zbarimg from the browser's own rendering of the SVG), a hostile owner stays text, the
 * enrollment page shows the three lists and they change with the policy, unknown and expired
 * links say so. Between the phases this test runs the exact command the page showed, in a
 * clean shell, and starts the agent it enrolled. Phase two: the used-up link says so; the
 * device page from the link `cleave-agent status` prints shows the state and receipts, and
 * "leave the company" retires the device until its receipt shows verified.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "browser.h"
#include "e2e.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

#define EMAIL    "it@example.com"
#define PASSWORD "portal test password 1"
#define SECONDS  90

/* The text of a small file the browser script wrote, without its last newline. */
static int
read_text(const char *dir, const char *name, char *out, size_t cap)
{
	char p[PATH_MAX + 64], *s;
	size_t n = 0;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	s = file_read_all(p, cap - 1, &n);
	if (s == NULL)
		return -1;
	memcpy(out, s, n);
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	free(s);
	return 0;
}

/* What zbarimg reads in dir/name into out ("" when it reads nothing). */
static void
qr_read(const char *dir, const char *name, char *out, size_t cap)
{
	char cmd[PATH_MAX + 128];
	FILE *f;
	size_t n;

	snprintf(cmd, sizeof(cmd), "zbarimg --quiet --raw '%s/%s' 2>/dev/null", dir, name);
	out[0] = '\0';
	f = popen(cmd, "r");
	if (f == NULL)
		return;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	pclose(f);
}

/* An enrollment token whose expiry is moved into the past in the database: its secret. */
static int
expired_token(struct e2e *e, char *tok, size_t cap)
{
	char id[64], sql[160], db[PATH_MAX + 16];
	struct resp r;
	sqlite3 *h;
	int ok;

	if (client_req(e->admin, "POST", "/api/v1/enrollment-tokens",
		       "{\"owner\":\"old@example.com\"}", NULL, &r) != 0)
		return -1;
	ok = r.status == 201 && resp_str(&r, "token", tok, cap) == 0 &&
	     resp_str(&r, "id", id, sizeof(id)) == 0;
	resp_free(&r);
	snprintf(db, sizeof(db), "%s/cleave.db", e->s.dir);
	snprintf(sql, sizeof(sql), "UPDATE enrollment_tokens SET expires_at = 1000 WHERE id = '%s'",
		 id);
	if (!ok || sqlite3_open(db, &h) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(h, 5000);
	ok = sqlite3_exec(h, sql, NULL, NULL, NULL) == SQLITE_OK;
	sqlite3_close(h);
	return ok ? 0 : -1;
}

/* Runs the page's command as the employee would paste it: clean env, fresh HOME. */
static int
paste(struct e2e *e, const char *home, const char *cmd, char *out, size_t cap)
{
	const char *bin = getenv("CLEAVE_BIN");
	char shell[PATH_MAX * 4];
	FILE *f;
	size_t n;
	int st;

	if (strchr(cmd, '\'') != NULL)
		return -1;
	snprintf(shell, sizeof(shell),
		 "env -i PATH='%s:/usr/bin:/bin' HOME='%s' CLEAVE_HV_SOCKET='%s' timeout 60 "
		 "bash -c '%s' 2>&1",
		 bin && *bin ? bin : "build/bin", home, e->hv.sock, cmd);
	f = popen(shell, "r");
	if (f == NULL)
		return -1;
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int
phase(const char *name, const char *outdir, const char *const *args)
{
	int rc = browser_run("portal.test.mjs", outdir, SECONDS, args);

	printf("    browser phase %s: exit %d\n", name, rc);
	return rc;
}

/* The device link `cleave-agent status` prints ("your page:     URL"). */
static int
status_link(struct e2e *e, char *link, size_t cap)
{
	char out[8192];
	const char *p;

	if (e2e_agent_cmd(e, "status", out, sizeof(out)) != 0 ||
	    (p = strstr(out, "your page:")) == NULL)
		return -1;
	p += strlen("your page:");
	p += strspn(p, " ");
	snprintf(link, cap, "%.*s", (int)strcspn(p, "\n"), p);
	return strncmp(link, e->s.url, strlen(e->s.url)) == 0 ? 0 : -1;
}

/* After "leave the company": the device is retired, its retire verified, the leave audited. */
static void
check_retired(struct e2e *e)
{
	json_t *j = e2e_get(e, "/api/v1/devices");
	json_t *d = j ? json_array_get(json_object_get(j, "items"), 0) : NULL;
	char path[128];

	CHECK(d != NULL && strcmp(e2e_str(d, "status"), "retired") == 0, "device not retired");
	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", e2e_str(d, "id"));
	json_decref(j);
	j = e2e_get(e, path);
	d = NULL;
	for (size_t i = 0; j != NULL && i < json_array_size(json_object_get(j, "items")); i++) {
		json_t *c = json_array_get(json_object_get(j, "items"), i);

		if (strcmp(e2e_str(c, "type"), "retire") == 0)
			d = c;
	}
	CHECK(d != NULL && strcmp(e2e_str(d, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(d, "verified")),
	      "the retire is not completed and verified");
	json_decref(j);
	j = e2e_get(e, "/api/v1/audit?action=portal.leave");
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 1, "leave not audited");
	json_decref(j);
}

static void
test_portal_in_chromium(void)
{
	struct e2e e;
	char outdir[PATH_MAX], expired[128], cmd[1024], url[512], got[512], out[4096];
	char home[PATH_MAX + 16], link[600];
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(e2e_up(&e, "browser-portal", NULL) == 0, "start server and cleave-hv");
	CHECK(e2e_policy(&e, "{\"offline\":{\"lock_after_hours\":1,\"wipe_after_days\":2}}") == 0,
	      "policy");
	CHECK(browser_admin(e.admin, EMAIL, "admin", PASSWORD) == 0, "no console account");
	CHECK(expired_token(&e, expired, sizeof(expired)) == 0, "expired token");
	CHECK(browser_outdir("portal", outdir, sizeof(outdir)) == 0, "cannot make %s", outdir);
	{
		const char *const args[] = {"console", e.s.url, outdir, EMAIL,
					    PASSWORD,  expired, NULL};

		rc = phase("console", outdir, args);
	}
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the console phase failed (its log is above)");
	CHECK(read_text(outdir, "enroll-command.txt", cmd, sizeof(cmd)) == 0 &&
		      read_text(outdir, "enroll-url.txt", url, sizeof(url)) == 0,
	      "the browser script wrote no command");
	/* The browser's own rendering of the server's SVG, read back by a QR decoder. */
	if (system("command -v zbarimg >/dev/null 2>&1") == 0) {
		qr_read(outdir, "qr-console.png", got, sizeof(got));
		CHECK(strcmp(got, url) == 0, "console QR reads \"%s\", not \"%s\"", got, url);
		qr_read(outdir, "qr-page.png", got, sizeof(got));
		CHECK(strcmp(got, url) == 0, "page QR reads \"%s\", not \"%s\"", got, url);
	}
	snprintf(home, sizeof(home), "%s/../home", e.s.dir);
	CHECK(mkdir(home, 0700) == 0, "home");
	rc = paste(&e, home, cmd, out, sizeof(out));
	CHECK(rc == 0, "the page's command failed (exit %d): %s\n    command: %s", rc, out, cmd);
	snprintf(e.agent_dir, sizeof(e.agent_dir), "%s/.cleave", home);
	CHECK(status_link(&e, link, sizeof(link)) == 0, "`cleave-agent status` printed no link");
	CHECK(e2e_agent_start(&e, NULL) == 0, "agent");
	{
		const char *const args[] = {"device", e.s.url, outdir, url, link, NULL};

		rc = phase("device", outdir, args);
	}
	CHECK(rc == 0, "the device phase failed (its log is above)");
	check_retired(&e);
	e2e_down(&e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"portal_in_chromium", test_portal_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

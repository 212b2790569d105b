/*
 * The enrollment page (GET /enroll?token=…) against the real server, cleave-hv and cleave-agent:
 * it shows the three lists (never / can see / can do) generated from the default policy, the
 * link's QR code (SVG and PNG, only for a usable token), and the command it prints for a fresh
 * token enrolls a device when pasted into a shell as it is (a self-signed certificate
 * included); the agent then prints the device's own page (GET /portal/…), which "leave the
 * company" turns into a retire. A token or device link that is unknown, revoked, expired or
 * used up gets a page saying which instead. Nothing from the query is echoed.
 */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "e2e.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

/* GETs the enrollment page for a token (raw query value) as an anonymous visitor. */
static long
page(struct e2e *e, const char *token, struct resp *r)
{
	struct client *anon = client_new(&e->s, NULL);
	char path[512];
	int rc;

	if (anon == NULL)
		return -1;
	snprintf(path, sizeof(path), "/enroll?token=%s", token);
	rc = client_req(anon, "GET", path, NULL, NULL, r);
	client_free(anon);
	return rc == 0 ? r->status : -1;
}

/* The text of the page's <pre> (the command) into out; 0, or -1 when the page has none. */
static int
printed_command(const char *html, char *out, size_t cap)
{
	const char *b = strstr(html, "<pre"), *end;

	if (b == NULL || (b = strchr(b, '>')) == NULL)
		return -1;
	b++;
	end = strstr(b, "</pre>");
	if (end == NULL || (size_t)(end - b) >= cap)
		return -1;
	memcpy(out, b, (size_t)(end - b));
	out[end - b] = '\0';
	/* What a browser shows is what gets pasted: the page must need no entity decoding. */
	return strchr(out, '&') == NULL && strchr(out, '\'') == NULL ? 0 : -1;
}

/*
 * Pastes cmd into bash as the employee would: a clean environment whose PATH has the built
 * binaries, HOME a fresh directory, and cleave-hv's socket where the agent looks by default.
 */
static int
paste(struct e2e *e, const char *cmd, char *out, size_t cap)
{
	const char *bin = getenv("CLEAVE_BIN");
	char home[PATH_MAX + 16], shell[PATH_MAX * 4];
	FILE *f;
	size_t n;
	int st;

	snprintf(home, sizeof(home), "%s/../home", e->s.dir);
	mkdir(home, 0700);
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
db_exec(struct e2e *e, const char *sql)
{
	char path[PATH_MAX + 16];
	sqlite3 *db;
	int rc;

	snprintf(path, sizeof(path), "%s/cleave.db", e->s.dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

/* A fresh enrollment token: its secret into tok and id into id. 0 or -1. */
static int
new_token(struct e2e *e, char *tok, char *id)
{
	struct resp r;
	int ok;

	if (client_req(e->admin, "POST", "/api/v1/enrollment-tokens",
		       "{\"owner\":\"rita@example.com\"}", NULL, &r) != 0)
		return -1;
	ok = r.status == 201 && resp_str(&r, "token", tok, 128) == 0 &&
	     resp_str(&r, "id", id, 64) == 0;
	resp_free(&r);
	return ok ? 0 : -1;
}

/* The three lists, each with at least one item. */
static int
lists_shown(const char *html)
{
	static const char *const ids[] = {"list-never", "list-see", "list-can"};

	for (size_t i = 0; i < 3; i++) {
		const char *p = strstr(html, ids[i]);

		if (p == NULL || strstr(p, "<li>") == NULL)
			return 0;
	}
	return strstr(html, "Your location.") != NULL &&
	       strstr(html, "Owner: the name this enrollment link was made for "
			    "(rita@example.com).") != NULL;
}

/* The QR code routes: SVG and PNG for a usable token; zbarimg, when present, reads the PNG. */
static void
check_qr(struct e2e *e, const char *tok)
{
	struct client *anon = client_new(&e->s, NULL);
	char path[256], file[PATH_MAX + 16], cmd[PATH_MAX + 64], got[512] = "", want[512];
	struct resp r;
	FILE *f;
	size_t n;

	CHECK(anon != NULL, "client");
	snprintf(path, sizeof(path), "/enroll/qr.svg?token=%s", tok);
	CHECK(client_req(anon, "GET", path, NULL, NULL, &r) == 0 && r.status == 200 &&
		      strncmp(r.body, "<svg xmlns=", 11) == 0,
	      "qr.svg: HTTP %ld", r.status);
	resp_free(&r);
	snprintf(path, sizeof(path), "/enroll/qr.png?token=%s", tok);
	CHECK(client_req(anon, "GET", path, NULL, NULL, &r) == 0 && r.status == 200 &&
		      r.len > 100 && memcmp(r.body, "\x89PNG", 4) == 0,
	      "qr.png: HTTP %ld", r.status);
	snprintf(file, sizeof(file), "%s/../qr.png", e->s.dir);
	CHECK(file_write_atomic(file, r.body, r.len, 0600) == 0, "write qr.png");
	resp_free(&r);
	client_free(anon);
	if (system("command -v zbarimg >/dev/null 2>&1") != 0)
		return;
	snprintf(cmd, sizeof(cmd), "zbarimg --quiet --raw '%s' 2>/dev/null", file);
	f = popen(cmd, "r");
	CHECK(f != NULL, "zbarimg");
	n = fread(got, 1, sizeof(got) - 1, f);
	pclose(f);
	got[n] = '\0';
	got[strcspn(got, "\n")] = '\0';
	snprintf(want, sizeof(want), "%s/enroll?token=%s", e->s.url, tok);
	CHECK(strcmp(got, want) == 0, "the QR code reads \"%s\", not \"%s\"", got, want);
}

/*
 * The device page the agent printed after enrolling: the state, the policy command as the
 * first thing done, and "leave the company" that needs the typed word, then queues a retire
 * by the device, audited as portal.leave.
 */
static void
check_device_page(struct e2e *e, const char *agent_out)
{
	struct client *anon = client_new(&e->s, NULL);
	const char *p = strstr(agent_out, "your page for this device (keep it private): ");
	const char *form_hdr[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
	char link[256], path[300];
	struct resp r;
	json_t *j;

	CHECK(anon != NULL && p != NULL, "the agent printed no device page: %s", agent_out);
	p = strstr(p, "/portal/");
	CHECK(p != NULL && sscanf(p, "%255s", link) == 1, "no link");
	CHECK(client_req(anon, "GET", link, NULL, NULL, &r) == 0 && r.status == 200,
	      "device page: HTTP %ld", r.status);
	CHECK(strstr(r.body, "rita@example.com") && strstr(r.body, "id=\"device-state\"") &&
		      strstr(r.body, "<td>policy</td>") && strstr(r.body, "name=\"confirm\""),
	      "device page: %s", r.body);
	resp_free(&r);
	snprintf(path, sizeof(path), "%s/leave", link);
	CHECK(client_req(anon, "POST", path, "confirm=no", form_hdr, &r) == 0 && r.status == 422,
	      "leave without the word: HTTP %ld", r.status);
	resp_free(&r);
	CHECK(client_req(anon, "POST", path, "confirm=leave", form_hdr, &r) == 0 &&
		      r.status == 303 && strcmp(r.location, link) == 0,
	      "leave: HTTP %ld to %s", r.status, r.location);
	resp_free(&r);
	CHECK(client_req(anon, "GET", link, NULL, NULL, &r) == 0 && r.status == 200 &&
		      strstr(r.body, "id=\"leaving\"") && strstr(r.body, "<td>retire</td>"),
	      "after leaving: %s", r.body);
	resp_free(&r);
	client_free(anon);
	j = e2e_get(e, "/api/v1/audit?action=portal.leave");
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 1 &&
		      strncmp(e2e_str(json_array_get(json_object_get(j, "items"), 0), "actor"),
			      "employee:dev_", 13) == 0,
	      "portal.leave not audited with the employee as actor");
	json_decref(j);
	/* A year on, the link has expired and says so. */
	CHECK(db_exec(e, "UPDATE portal_links SET expires_at = 1000") == 0, "expire the link");
	anon = client_new(&e->s, NULL);
	CHECK(anon != NULL && client_req(anon, "GET", link, NULL, NULL, &r) == 0 &&
		      r.status == 410 && strstr(r.body, "expired") && !strstr(r.body, "rita"),
	      "expired device link: HTTP %ld", r.status);
	resp_free(&r);
	client_free(anon);
}

static void
test_printed_command_enrolls(void)
{
	struct e2e e;
	struct resp r;
	char tok[128], id[64], cmd[1024], out[4096];
	json_t *j;
	int rc;

	CHECK(e2e_up(&e, "enroll-page", NULL) == 0, "start server and cleave-hv");
	CHECK(e2e_policy(&e, "{\"offline\":{\"lock_after_hours\":1,\"wipe_after_days\":2}}") == 0,
	      "policy");
	CHECK(new_token(&e, tok, id) == 0, "enrollment token");
	CHECK(page(&e, tok, &r) == 200, "page for a fresh token: %ld", r.status);
	CHECK(lists_shown(r.body), "page lacks the three lists: %s", r.body);
	/* The lists follow the default policy set above. */
	CHECK(strstr(r.body, "locks itself after 1 hour without reaching") != NULL &&
		      strstr(r.body, "erased after 2 days without reaching") != NULL,
	      "the lock limit of the policy is not on the page: %s", r.body);
	CHECK(strstr(r.body, "<img id=\"enroll-qr\"") != NULL, "no QR code on the page");
	CHECK(printed_command(r.body, cmd, sizeof(cmd)) == 0, "no pasteable command: %s", r.body);
	resp_free(&r);
	check_qr(&e, tok);
	CHECK(strncmp(cmd, "cleave-agent --state ~/.cleave enroll ", 38) == 0 &&
		      strstr(cmd, tok) != NULL && strstr(cmd, e.s.url) != NULL,
	      "unexpected command: %s", cmd);
	rc = paste(&e, cmd, out, sizeof(out));
	CHECK(rc == 0, "the printed command failed (exit %d): %s\n    command: %s", rc, out, cmd);
	j = e2e_get(&e, "/api/v1/devices");
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) == 1 &&
		      strcmp(e2e_str(json_array_get(json_object_get(j, "items"), 0), "owner"),
			     "rita@example.com") == 0,
	      "no device enrolled by the printed command");
	json_decref(j);
	check_device_page(&e, out);
	/* The same link again: used up, says so, and shows no command. */
	CHECK(page(&e, tok, &r) == 410, "used-up token: HTTP %ld", r.status);
	CHECK(strstr(r.body, "used up") != NULL && strstr(r.body, "<pre") == NULL,
	      "used-up page unclear: %s", r.body);
	resp_free(&r);
	e2e_down(&e);
}

/* Device links: unknown and malformed ones get a page saying so; no QR for a dead token. */
static void
bad_device_links(struct e2e *e)
{
	struct client *anon = client_new(&e->s, NULL);
	struct resp r;

	CHECK(anon != NULL, "client");
	CHECK(client_req(anon, "GET", "/portal/clv_pl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			 NULL, NULL, &r) == 0 &&
		      r.status == 404 && strstr(r.body, "not valid"),
	      "unknown device link: HTTP %ld", r.status);
	resp_free(&r);
	CHECK(client_req(anon, "GET", "/portal/%3Cb%3Ex", NULL, NULL, &r) == 0 && r.status == 404 &&
		      strstr(r.body, "<b>") == NULL,
	      "malformed device link: HTTP %ld", r.status);
	resp_free(&r);
	CHECK(client_req(anon, "GET", "/enroll/qr.svg?token=clv_et_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
			 NULL, NULL, &r) == 0 &&
		      r.status == 404,
	      "QR of an unknown token: HTTP %ld", r.status);
	resp_free(&r);
	client_free(anon);
}

static void
test_bad_tokens_explained(void)
{
	struct e2e e;
	struct resp r;
	char tok[128], id[64], sql[256], path[128];

	CHECK(e2e_up(&e, "enroll-page-bad", NULL) == 0, "start server and cleave-hv");
	/* Unknown: well formed, but no token has it. */
	CHECK(page(&e, "clv_et_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &r) == 404,
	      "unknown token: HTTP %ld", r.status);
	CHECK(strstr(r.body, "not valid") && !strstr(r.body, "clv_et_AAAA"), "unknown page: %s",
	      r.body);
	resp_free(&r);
	/* Revoked by IT. */
	CHECK(new_token(&e, tok, id) == 0, "token");
	snprintf(path, sizeof(path), "/api/v1/enrollment-tokens/%s", id);
	CHECK(client_req(e.admin, "DELETE", path, NULL, NULL, &r) == 0 && r.status == 204,
	      "revoke");
	resp_free(&r);
	CHECK(page(&e, tok, &r) == 410, "revoked token: HTTP %ld", r.status);
	CHECK(strstr(r.body, "withdrawn") && !strstr(r.body, tok), "revoked page: %s", r.body);
	resp_free(&r);
	/* Expired: time passes in the database, as a week would. */
	CHECK(new_token(&e, tok, id) == 0, "token");
	snprintf(sql, sizeof(sql), "UPDATE enrollment_tokens SET expires_at = 1000 WHERE id = '%s'",
		 id);
	CHECK(db_exec(&e, sql) == 0, "expire token");
	CHECK(page(&e, tok, &r) == 410, "expired token: HTTP %ld", r.status);
	CHECK(strstr(r.body, "expired on 1970-01-01") && !strstr(r.body, tok), "expired page: %s",
	      r.body);
	resp_free(&r);
	/* Not a token at all: never echoed. */
	CHECK(page(&e, "clv_et_%3Cscript%3Ealert(1)%3C%2Fscript%3E", &r) == 400, "HTTP %ld",
	      r.status);
	CHECK(strstr(r.body, "<script>") == NULL && strstr(r.body, "alert") == NULL,
	      "query echoed into the page");
	resp_free(&r);
	CHECK(page(&e, "", &r) == 400, "no token: HTTP %ld", r.status);
	resp_free(&r);
	bad_device_links(&e);
	e2e_down(&e);
}

/* The server's own URL is the operator's, but it is escaped all the same. */
static void
test_public_url_escaped(void)
{
	const char *extra[] = {"--config", NULL, NULL};
	char conf[PATH_MAX + 16], tok[128], id[64];
	const char *line = "public_url = https://mdm.example.com/x?a=1&b=<i>\n";
	struct e2e e;
	struct resp r;

	memset(&e, 0, sizeof(e));
	CHECK(srv_init(&e.s, "enroll-page-url") == 0 && mkdir(e.s.dir, 0700) == 0, "init");
	snprintf(conf, sizeof(conf), "%s/../server.conf", e.s.dir);
	CHECK(file_write_atomic(conf, line, strlen(line), 0600) == 0, "config");
	extra[1] = conf;
	CHECK(srv_start(&e.s, extra) == 0, "server did not start");
	e.admin = client_new(&e.s, e.s.admin);
	CHECK(e.admin != NULL && new_token(&e, tok, id) == 0, "token");
	CHECK(page(&e, tok, &r) == 200, "page: HTTP %ld", r.status);
	CHECK(strstr(r.body, "https://mdm.example.com/x?a=1&amp;b=&lt;i&gt;") != NULL &&
		      strstr(r.body, "<i>") == NULL,
	      "URL not escaped: %s", r.body);
	resp_free(&r);
	client_free(e.admin);
	srv_cleanup(&e.s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"printed_command_enrolls", test_printed_command_enrolls},
		{"bad_tokens_explained", test_bad_tokens_explained},
		{"public_url_escaped", test_public_url_escaped},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

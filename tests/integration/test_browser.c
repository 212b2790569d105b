/*
 * The web console over HTTPS from the real cleave-server. static_over_https checks the static
 * routes with libcurl (security headers, HEAD, ETag and 304, gzip only when accepted, refused
 * traversal in raw and percent-encoded form); runs_without_web_root: the API still works and /
 * is a 404 page. console_in_chromium enrolls devices, one of them
 * owned by hostile markup, queues a command, and runs tests/browser/console.test.mjs: Debian's
 * Chromium driven by playwright-core signs in, searches, opens the device and saves a
 * screenshot of each screen in $CLEAVE_TEST_OUT/screenshots/console/ (with browser.log). Without Chromium, node or the npm
 * package that case says "skipped" (scripts/deps.sh installs all three).
 */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "browser.h"
#include "testlib.h"
#include "util.h"

#define BROWSER_SECONDS  60
#define CONSOLE_EMAIL    "ops@example.com"
#define CONSOLE_PASSWORD "correct horse battery staple"
/* An owner that runs script if the console ever treats API text as HTML. */
#define HOSTILE_OWNER "<img/src/onerror=alert(1)>@evil.example"

struct raw {
	long status;
	char headers[4096];
	size_t hlen;
	size_t body_len;
};

static size_t
on_header(char *p, size_t size, size_t n, void *ud)
{
	struct raw *r = ud;
	size_t len = size * n, room = sizeof(r->headers) - 1 - r->hlen;

	memcpy(r->headers + r->hlen, p, MIN(len, room));
	r->hlen += MIN(len, room);
	r->headers[r->hlen] = '\0';
	return len;
}

static size_t
on_body(char *p, size_t size, size_t n, void *ud)
{
	struct raw *r = ud;

	(void)p;
	r->body_len += size * n;
	return size * n;
}

/* One request with the path sent exactly as given (no dot-segment removal, no decoding). */
static int
raw_get(const struct srv *s, const char *method, const char *path, const char *hdr, struct raw *r)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = hdr ? curl_slist_append(NULL, hdr) : NULL;
	char url[512];
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	if (c == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s%s", s->url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(c, CURLOPT_CAINFO, s->cacert);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return rc == CURLE_OK ? 0 : -1;
}

/* The value of header name (case-insensitive) into out; 0, or -1 when absent. */
static int
header(const struct raw *r, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *p = r->headers; p && *p;
	     p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			const char *v = p + nl + 1 + strspn(p + nl + 1, " ");

			snprintf(out, cap, "%.*s", (int)strcspn(v, "\r\n"), v);
			return 0;
		}
	}
	return -1;
}

static void
test_static_over_https(void)
{
	static const char *const bad[] = {"/static/../cleave.db",        "/static/%2e%2e/cleave.db",
					  "/static/..%2f..%2fREADME.md", "/static//etc/passwd",
					  "/static/../../README.md",     "/static/app.js%00.html"};
	struct srv s;
	struct raw r;
	char v[512], etag[80];

	CHECK(srv_init(&s, "static") == 0 && srv_start(&s, NULL) == 0, "server did not start");
	CHECK(raw_get(&s, "GET", "/", NULL, &r) == 0 && r.status == 200, "GET / %ld", r.status);
	CHECK(header(&r, "Content-Security-Policy", v, sizeof(v)) == 0 &&
		      strstr(v, "default-src 'self'") && strstr(v, "frame-ancestors 'none'"),
	      "CSP missing: %s", r.headers);
	CHECK(header(&r, "X-Content-Type-Options", v, sizeof(v)) == 0 && !strcmp(v, "nosniff"),
	      "nosniff missing");
	CHECK(header(&r, "Referrer-Policy", v, sizeof(v)) == 0 && !strcmp(v, "no-referrer"), "RP");
	CHECK(header(&r, "Strict-Transport-Security", v, sizeof(v)) == 0, "HSTS missing");
	CHECK(header(&r, "Cache-Control", v, sizeof(v)) == 0 && !strcmp(v, "no-cache"), "cache");
	CHECK(header(&r, "Content-Encoding", v, sizeof(v)) != 0, "gzip without Accept-Encoding");
	CHECK(header(&r, "ETag", etag, sizeof(etag)) == 0, "no ETag");

	snprintf(v, sizeof(v), "If-None-Match: %s", etag);
	CHECK(raw_get(&s, "GET", "/", v, &r) == 0 && r.status == 304 && r.body_len == 0,
	      "If-None-Match: %ld", r.status);
	CHECK(raw_get(&s, "HEAD", "/static/app.js", NULL, &r) == 0 && r.status == 200 &&
		      r.body_len == 0 && header(&r, "Content-Type", v, sizeof(v)) == 0 &&
		      !strcmp(v, "text/javascript; charset=utf-8"),
	      "HEAD app.js %ld: %s", r.status, r.headers);
	CHECK(raw_get(&s, "GET", "/static/app.js", "Accept-Encoding: gzip", &r) == 0 &&
		      r.status == 200 && header(&r, "Content-Encoding", v, sizeof(v)) == 0 &&
		      !strcmp(v, "gzip") && header(&r, "Vary", v, sizeof(v)) == 0,
	      "gzip not used: %s", r.headers);
	CHECK(raw_get(&s, "GET", "/static/app.js", "Accept-Encoding: gzip;q=0, br", &r) == 0 &&
		      r.status == 200 && header(&r, "Content-Encoding", v, sizeof(v)) != 0,
	      "gzip despite q=0: %s", r.headers);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(raw_get(&s, "GET", bad[i], NULL, &r) == 0, "%s: transport", bad[i]);
		CHECK(r.status == 404 || r.status == 400, "%s answered %ld", bad[i], r.status);
		CHECK(r.body_len < 2000, "%s: a body of %zu bytes", bad[i], r.body_len);
	}
	/* The API is untouched: a POST to / is not a static request. */
	CHECK(raw_get(&s, "POST", "/", NULL, &r) == 0 && r.status != 200, "POST / %ld", r.status);
	srv_cleanup(&s);
}

/* Without its web root the server still starts and serves the API; / says what is missing. */
static void
test_runs_without_web_root(void)
{
	static const char *const extra[] = {"--web-root", "/nonexistent/cleave-web", NULL};
	struct srv s;
	struct raw r;
	char v[512];

	CHECK(srv_init(&s, "noweb") == 0 && srv_start(&s, extra) == 0, "server did not start");
	CHECK(raw_get(&s, "GET", "/", NULL, &r) == 0 && r.status == 404, "GET / %ld", r.status);
	CHECK(header(&r, "Content-Security-Policy", v, sizeof(v)) == 0, "404 without CSP");
	CHECK(raw_get(&s, "GET", "/healthz", NULL, &r) == 0 && r.status == 200, "healthz");
	srv_cleanup(&s);
}

/* Enrolls a device for owner; its id into d->id. 0 or -1. */
static int
enroll(struct client *admin, struct client *anon, struct device_sim *d, const char *owner)
{
	char tok[128];
	struct resp r;
	int ok;

	if (dev_init(d) != 0 || admin_etoken(admin, owner, 1, tok, sizeof(tok)) != 0 ||
	    dev_enroll(d, anon, tok, &r) != 0)
		return -1;
	ok = r.status == 201 ? 0 : -1;
	resp_free(&r);
	return ok;
}

static void
test_console_in_chromium(void)
{
	static const char *const owners[] = {"ana@example.com", "ben@example.com", HOSTILE_OWNER};
	struct device_sim d[3] = {0};
	struct client *admin = NULL, *anon = NULL;
	struct srv s;
	char outdir[PATH_MAX], cmd[64];
	double t0;
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "browser") == 0 && srv_start(&s, NULL) == 0, "server did not start");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin != NULL && anon != NULL, "no client");
	CHECK(browser_admin(admin, CONSOLE_EMAIL, "admin", CONSOLE_PASSWORD) == 0, "no account");
	for (size_t i = 0; i < ARRAY_SIZE(owners); i++)
		CHECK(enroll(admin, anon, &d[i], owners[i]) == 0, "cannot enroll %s", owners[i]);
	CHECK(admin_command(admin, d[2].id, "lock", cmd, sizeof(cmd)) == 202, "cannot queue");
	/* Kept after the case (srv_cleanup removes the server's folder): the lead looks at them. */
	CHECK(browser_outdir("console", outdir, sizeof(outdir)) == 0, "cannot make %s", outdir);
	t0 = now_s();
	{
		const char *const args[] = {s.url,  CONSOLE_EMAIL, CONSOLE_PASSWORD,
					    outdir, HOSTILE_OWNER, d[2].id,
					    NULL};

		rc = browser_run("console.test.mjs", outdir, BROWSER_SECONDS, args);
	}
	printf("    browser test: exit %d in %.1f s; screenshots in %s\n", rc, now_s() - t0,
	       outdir);
	for (size_t i = 0; i < ARRAY_SIZE(d); i++)
		dev_fini(&d[i]);
	client_free(anon);
	client_free(admin);
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"static_over_https", test_static_over_https},
		{"runs_without_web_root", test_runs_without_web_root},
		{"console_in_chromium", test_console_in_chromium},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

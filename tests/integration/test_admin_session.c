/*
 * Integration tests of the web console's sign-in (issue 9) against the real cleave-server:
 * admin accounts made with the bootstrap token, password sign-in with one answer for every
 * failure, the session cookie's attributes, CSRF on cookie requests that change something,
 * the same role checks for a session as for a token, sign out (here and everywhere), and 429
 * after repeated failures from one address.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <curl/curl.h>

#include "fileio.h"
#include "testlib.h"
#include "util.h"

#define PASSWORD "correct horse battery"

struct env {
	struct srv s;
	struct client *admin; /* the bootstrap token */
	struct client *web;   /* no bearer: a browser */
};

/* Starts a server; conf_line: one config line or NULL. */
static int
env_up(struct env *e, const char *tag, const char *conf_line)
{
	const char *extra[] = {"--config", NULL, NULL};
	char conf[PATH_MAX + 16];

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0)
		return -1;
	if (conf_line != NULL) {
		snprintf(conf, sizeof(conf), "%s", e->s.log);
		str_copy(strrchr(conf, '/'), 16, "/cleave.conf");
		if (file_write_atomic(conf, conf_line, strlen(conf_line), 0600) != 0)
			return -1;
		extra[1] = conf;
	}
	if (srv_start(&e->s, conf_line ? extra : NULL) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->web = client_new(&e->s, NULL);
	return e->admin && e->web ? 0 : -1;
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	client_free(e->web);
	srv_cleanup(&e->s);
}

static long
make_admin(struct env *e, const char *email, const char *role, const char *password)
{
	char body[512];
	struct resp r;
	long st;

	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"display_name\":\"Test %s\",\"role\":\"%s\","
		 "\"password\":\"%s\"}",
		 email, role, role, password);
	if (client_req(e->admin, "POST", "/api/v1/admins", body, NULL, &r) != 0)
		return -1;
	st = r.status;
	if (st != 201)
		printf("    create admin: HTTP %ld %s\n", st, r.body ? r.body : "");
	resp_free(&r);
	return st;
}

struct sess {
	char cookie[200]; /* "Cookie: cleave_session=…" */
	char csrf[200];   /* "X-CSRF-Token: …" */
	char set_cookie[512];
};

/* Signs in; returns the HTTP status, and fills ss on 200. r keeps the answer when given. */
static long
login(struct env *e, const char *email, const char *password, struct sess *ss, struct resp *out)
{
	char body[512], tok[128];
	struct resp r;
	long st;

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
	if (client_req(e->web, "POST", "/api/v1/session", body, NULL, &r) != 0)
		return -1;
	st = r.status;
	if (st == 200 && ss != NULL) {
		const char *v = strchr(r.set_cookie, '=');

		str_copy(ss->set_cookie, sizeof(ss->set_cookie), r.set_cookie);
		snprintf(ss->cookie, sizeof(ss->cookie), "Cookie: cleave_session=%.*s",
			 v ? (int)strcspn(v + 1, ";") : 0, v ? v + 1 : "");
		if (resp_str(&r, "csrf_token", tok, sizeof(tok)) != 0)
			tok[0] = '\0';
		snprintf(ss->csrf, sizeof(ss->csrf), "X-CSRF-Token: %s", tok);
	}
	if (out != NULL)
		*out = r;
	else
		resp_free(&r);
	return st;
}

static long
login_totp(struct env *e, const char *email, const char *code)
{
	char body[256];
	struct resp r;
	long st;

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\",\"totp\":\"%s\"}",
		 email, PASSWORD, code);
	if (client_req(e->web, "POST", "/api/v1/session", body, NULL, &r) != 0)
		return -1;
	st = r.status;
	resp_free(&r);
	return st;
}

/* A request as the browser holding ss: with_csrf adds its X-CSRF-Token header. */
static long
as_session(struct env *e, const struct sess *ss, int with_csrf, const char *method,
	   const char *path, const char *body)
{
	const char *h[] = {ss->cookie, with_csrf ? ss->csrf : NULL, NULL};
	struct resp r;
	long st;

	if (client_req(e->web, method, path, body, h, &r) != 0)
		return -1;
	st = r.status;
	resp_free(&r);
	return st;
}

static size_t
discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/*
 * What a cross-site form with enctype="text/plain" can send: a JSON-looking body labelled
 * text/plain. Returns the HTTP status.
 */
static long
form_post(struct env *e, const char *path, const char *body)
{
	struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: text/plain");
	CURL *c = curl_easy_init();
	char url[256];
	long st = -1;

	snprintf(url, sizeof(url), "%s%s", e->s.url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, e->s.cacert);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_cleanup(c);
	curl_slist_free_all(hl);
	return st;
}

static void
test_login_cookie_and_csrf(void)
{
	struct env e;
	struct sess ss;
	struct resp r1, r2;
	const char *tok = "{\"name\":\"from console\",\"role\":\"auditor\"}";

	CHECK(env_up(&e, "admin-login", NULL) == 0, "server did not start");
	CHECK(make_admin(&e, "ana@example.com", "admin", PASSWORD) == 201, "create admin");
	CHECK(make_admin(&e, "ana@example.com", "admin", PASSWORD) == 409, "duplicate email");
	CHECK(make_admin(&e, "bo@example.com", "admin", "short") == 422, "short password taken");

	/* a wrong password and an unknown email get the same answer */
	CHECK(login(&e, "ana@example.com", "wrong password!!", NULL, &r1) == 401, "bad password");
	CHECK(login(&e, "nobody@example.com", PASSWORD, NULL, &r2) == 401, "unknown email");
	CHECK(r1.body && r2.body && strcmp(r1.body, r2.body) == 0 &&
		      strstr(r1.body, "email or password is wrong") != NULL,
	      "answers differ: %s / %s", r1.body, r2.body);
	CHECK(r1.set_cookie[0] == '\0', "a failed login set a cookie");
	resp_free(&r1);
	resp_free(&r2);

	/* login CSRF: a cross-site text/plain form cannot sign anyone in */
	CHECK(form_post(&e, "/api/v1/session",
			"{\"email\":\"ana@example.com\",\"password\":\"" PASSWORD "\"}") == 415,
	      "a text/plain sign-in was taken");
	CHECK(login(&e, "ANA@example.com", PASSWORD, &ss, NULL) == 200, "good login");
	CHECK(strncmp(ss.set_cookie, "cleave_session=cls_", 19) == 0 &&
		      strstr(ss.set_cookie, "; HttpOnly") && strstr(ss.set_cookie, "; Secure") &&
		      strstr(ss.set_cookie, "; SameSite=Strict") &&
		      strstr(ss.set_cookie, "; Path=/") && strstr(ss.set_cookie, "; Max-Age=43200"),
	      "cookie: %s", ss.set_cookie);
	CHECK(strlen(ss.csrf) > 20, "no csrf token");

	CHECK(as_session(&e, &ss, 0, "GET", "/api/v1/session", NULL) == 200, "who am I");
	CHECK(as_session(&e, &ss, 0, "GET", "/api/v1/devices", NULL) == 200, "read by cookie");
	/* a cross-site form carries the cookie but cannot set the header */
	CHECK(as_session(&e, &ss, 0, "POST", "/api/v1/tokens", tok) == 403, "no CSRF accepted");
	{
		struct sess bad = ss;

		snprintf(bad.csrf, sizeof(bad.csrf), "X-CSRF-Token: %s", "A0fake0token");
		CHECK(as_session(&e, &bad, 1, "POST", "/api/v1/tokens", tok) == 403,
		      "wrong CSRF accepted");
	}
	CHECK(as_session(&e, &ss, 1, "POST", "/api/v1/tokens", tok) == 201, "with CSRF");
	/* a bearer token needs no CSRF header */
	CHECK(client_req(e.admin, "POST", "/api/v1/tokens", tok, NULL, &r1) == 0, "tx");
	CHECK_STATUS(r1, 201);
	resp_free(&r1);
	/* a made-up session id gets nothing */
	str_copy(ss.cookie, sizeof(ss.cookie), "Cookie: cleave_session=cls_madeup");
	CHECK(as_session(&e, &ss, 0, "GET", "/api/v1/devices", NULL) == 401, "forged cookie");
	env_down(&e);
}

static void
test_roles_same_for_session_and_token(void)
{
	struct env e;
	struct sess ss;
	struct resp r;
	char tok[128];
	const char *body = "{\"name\":\"x\",\"role\":\"auditor\"}";

	CHECK(env_up(&e, "admin-roles", NULL) == 0, "server did not start");
	CHECK(make_admin(&e, "hd@example.com", "helpdesk", PASSWORD) == 201, "create helpdesk");
	CHECK(admin_token(e.admin, "helpdesk", tok, sizeof(tok)) == 0, "helpdesk token");
	CHECK(login(&e, "hd@example.com", PASSWORD, &ss, NULL) == 200, "login");
	client_set_bearer(e.admin, tok);
	CHECK(client_req(e.admin, "POST", "/api/v1/tokens", body, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	CHECK(as_session(&e, &ss, 1, "POST", "/api/v1/tokens", body) == 403, "session POST");
	CHECK(client_req(e.admin, "GET", "/api/v1/audit", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	CHECK(as_session(&e, &ss, 0, "GET", "/api/v1/audit", NULL) == 403, "session audit");
	CHECK(as_session(&e, &ss, 0, "GET", "/api/v1/devices", NULL) == 200, "session read");
	CHECK(as_session(&e, &ss, 1, "POST", "/api/v1/admins",
			 "{\"email\":\"x@example.com\",\"display_name\":\"X\",\"role\":"
			 "\"admin\",\"password\":\"" PASSWORD "\"}") == 403,
	      "helpdesk made an admin");
	client_set_bearer(e.admin, e.s.admin);
	env_down(&e);
}

static void
test_logout_and_everywhere(void)
{
	struct env e;
	struct sess s1, s2, s3;

	CHECK(env_up(&e, "admin-logout", NULL) == 0, "server did not start");
	CHECK(make_admin(&e, "cy@example.com", "auditor", PASSWORD) == 201, "create");
	CHECK(login(&e, "cy@example.com", PASSWORD, &s1, NULL) == 200, "login 1");
	CHECK(login(&e, "cy@example.com", PASSWORD, &s2, NULL) == 200, "login 2");
	CHECK(login(&e, "cy@example.com", PASSWORD, &s3, NULL) == 200, "login 3");
	CHECK(strcmp(s1.cookie, s2.cookie) != 0, "two logins, one session id");
	CHECK(as_session(&e, &s1, 0, "DELETE", "/api/v1/session", NULL) == 403,
	      "logout without CSRF");
	CHECK(as_session(&e, &s1, 1, "DELETE", "/api/v1/session", NULL) == 204, "logout");
	CHECK(as_session(&e, &s1, 0, "GET", "/api/v1/session", NULL) == 401, "after logout");
	CHECK(as_session(&e, &s2, 0, "GET", "/api/v1/session", NULL) == 200, "other session");
	CHECK(as_session(&e, &s2, 1, "DELETE", "/api/v1/sessions", NULL) == 204, "everywhere");
	CHECK(as_session(&e, &s2, 0, "GET", "/api/v1/session", NULL) == 401, "s2 after all");
	CHECK(as_session(&e, &s3, 0, "GET", "/api/v1/session", NULL) == 401, "s3 after all");
	/* a disabled account cannot sign in, and says so no differently */
	CHECK(login(&e, "cy@example.com", PASSWORD, &s1, NULL) == 200, "login again");
	{
		struct resp r;
		char path[128], id[64];

		CHECK(client_req(e.admin, "GET", "/api/v1/admins", NULL, NULL, &r) == 0, "tx");
		CHECK(r.status == 200 && strstr(r.body, "\"id\":\"adm_") != NULL, "list: %s",
		      r.body);
		str_copy(id, sizeof(id), strstr(r.body, "adm_"));
		id[strcspn(id, "\"")] = '\0';
		resp_free(&r);
		snprintf(path, sizeof(path), "/api/v1/admins/%s", id);
		CHECK(client_req(e.admin, "DELETE", path, NULL, NULL, &r) == 0, "tx");
		CHECK_STATUS(r, 204);
		resp_free(&r);
	}
	CHECK(as_session(&e, &s1, 0, "GET", "/api/v1/session", NULL) == 401, "disabled session");
	CHECK(login(&e, "cy@example.com", PASSWORD, NULL, NULL) == 401, "disabled login");
	env_down(&e);
}

static void
test_failed_logins_throttled(void)
{
	struct env e;
	struct resp r;
	struct sess ss;
	int n401 = 0;

	CHECK(env_up(&e, "admin-throttle", "refusal_limit = 5\nsession_max_seconds = 600\n") == 0,
	      "server did not start");
	CHECK(make_admin(&e, "di@example.com", "admin", PASSWORD) == 201, "create");
	/* the setting reaches the cookie; a good sign-in is no refusal */
	CHECK(login(&e, "di@example.com", PASSWORD, &ss, NULL) == 200, "login");
	CHECK(strstr(ss.set_cookie, "; Max-Age=600") != NULL, "cookie: %s", ss.set_cookie);
	for (int i = 0; i < 5; i++)
		n401 += login(&e, "di@example.com", "guess number one", NULL, NULL) == 401;
	CHECK(n401 == 5, "failures answered 401: %d of 5", n401);
	/* past the limit even the right password waits: the guesser cannot tell */
	CHECK(login(&e, "di@example.com", PASSWORD, NULL, NULL) == 429, "not throttled");
	/* and the failures are on the audit record */
	CHECK(client_req(e.admin, "GET", "/api/v1/audit?action=admin.login", NULL, NULL, &r) == 0,
	      "tx");
	CHECK(r.status == 200 && strstr(r.body, "denied") != NULL, "not audited: %s", r.body);
	resp_free(&r);
	env_down(&e);
}

/*
 * The console asks "who am I?" on every page load before anyone signs in. A request without
 * any credential guesses nothing: it is answered 401, but neither audited as a refusal nor
 * counted toward the address's budget; a wrong token still is.
 */
static void
test_no_credentials_is_no_refusal(void)
{
	struct env e;
	struct resp r;
	int n401 = 0;

	CHECK(env_up(&e, "admin-nocred", "refusal_limit = 5\n") == 0, "server did not start");
	for (int i = 0; i < 12; i++) {
		CHECK(client_req(e.web, "GET", "/api/v1/session", NULL, NULL, &r) == 0, "tx");
		n401 += r.status == 401;
		resp_free(&r);
	}
	CHECK(n401 == 12, "requests without credentials answered 401: %d of 12", n401);
	CHECK(client_req(e.admin, "GET", "/api/v1/audit?action=api.auth", NULL, NULL, &r) == 0,
	      "tx");
	CHECK(r.status == 200 && strstr(r.body, "api.auth") == NULL, "audited: %s", r.body);
	resp_free(&r);
	client_set_bearer(e.web, "clv_at_not-a-token");
	CHECK(client_req(e.web, "GET", "/api/v1/session", NULL, NULL, &r) == 0, "tx");
	CHECK(r.status == 401, "wrong token: %ld", r.status);
	resp_free(&r);
	CHECK(client_req(e.admin, "GET", "/api/v1/audit?action=api.auth", NULL, NULL, &r) == 0,
	      "tx");
	CHECK(r.status == 200 && strstr(r.body, "api.auth") != NULL, "not audited: %s", r.body);
	resp_free(&r);
	env_down(&e);
}

/* The setup body with code; password may be short on purpose. */
static long
setup_req(struct env *e, const char *code, const char *password)
{
	char body[512];
	struct resp r;
	long st;

	snprintf(body, sizeof(body),
		 "{\"code\":\"%s\",\"email\":\"first@example.com\",\"display_name\":"
		 "\"First\",\"password\":\"%s\"}",
		 code, password);
	if (client_req(e->web, "POST", "/api/v1/setup", body, NULL, &r) != 0)
		return -1;
	st = r.status;
	resp_free(&r);
	return st;
}

static void
test_first_start_setup_code(void)
{
	struct env e;
	struct sess ss;
	struct stat sb;
	char path[PATH_MAX + 16], text[512], link[300];
	ssize_t n;
	FILE *f;

	CHECK(env_up(&e, "admin-setup", NULL) == 0, "server did not start");
	snprintf(path, sizeof(path), "%s/admin-setup", e.s.dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "admin-setup missing or "
								   "not 0600");
	f = fopen(path, "r");
	CHECK(f != NULL, "open %s", path);
	n = (ssize_t)fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n > 0 ? n : 0] = '\0';
	text[strcspn(text, "\n")] = '\0';
	snprintf(link, sizeof(link), "%s/setup#%s\n", e.s.url, text);
	CHECK(strncmp(text, "clv_su_", 7) == 0 && strstr(text + strlen(text) + 1, link) != NULL,
	      "setup file: %s / want link %s", text, link);
	CHECK(setup_req(&e, "clv_su_wrong", PASSWORD) == 401, "wrong code accepted");
	snprintf(link, sizeof(link),
		 "{\"code\":\"%s\",\"email\":\"x@example.com\",\"display_name\":\"X\","
		 "\"password\":\"%s\"}",
		 text, PASSWORD);
	CHECK(form_post(&e, "/api/v1/setup", link) == 415, "a text/plain setup was taken");
	CHECK(setup_req(&e, text, "short") == 422, "short password accepted");
	CHECK(setup_req(&e, text, PASSWORD) == 201, "setup with the code");
	CHECK(stat(path, &sb) != 0, "setup file still there after use");
	CHECK(setup_req(&e, text, PASSWORD) == 401, "the code worked twice");
	/* the bootstrap token still works beside it */
	CHECK(make_admin(&e, "bo@example.com", "auditor", PASSWORD) == 201, "token still works");
	CHECK(login(&e, "first@example.com", PASSWORD, &ss, NULL) == 200, "first admin login");
	CHECK(as_session(&e, &ss, 0, "GET", "/api/v1/audit?action=admin.create", NULL) == 200,
	      "first admin is an admin");
	/* a restart with an admin account makes no new code */
	CHECK(srv_stop(&e.s, SIGTERM) == 0 && srv_start(&e.s, NULL) == 0, "restart");
	CHECK(stat(path, &sb) != 0, "a code was made although an admin exists");
	env_down(&e);
	/* an admin made with the token voids a code not used yet */
	CHECK(env_up(&e, "admin-setup-void", NULL) == 0, "server did not start");
	snprintf(path, sizeof(path), "%s/admin-setup", e.s.dir);
	f = fopen(path, "r");
	CHECK(f != NULL && fgets(text, sizeof(text), f) != NULL, "read %s", path);
	fclose(f);
	text[strcspn(text, "\n")] = '\0';
	CHECK(make_admin(&e, "bo@example.com", "admin", PASSWORD) == 201, "token admin");
	CHECK(setup_req(&e, text, PASSWORD) == 409, "setup after an admin exists");
	CHECK(setup_req(&e, text, PASSWORD) == 401, "voided code still works");
	env_down(&e);
}

/* Decodes the base32 secret= of an otpauth:// URI into key; returns its length or -1. */
static int
uri_secret(const char *uri, uint8_t *key, size_t cap)
{
	const char *p = strstr(uri, "secret=");
	uint32_t acc = 0;
	int bits = 0;
	size_t n = 0;

	if (p == NULL)
		return -1;
	for (p += 7; *p != '\0' && *p != '&'; p++) {
		const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", *q = strchr(abc, *p);

		if (q == NULL)
			return -1;
		acc = (acc << 5) | (uint32_t)(q - abc);
		bits += 5;
		if (bits >= 8) {
			if (n == cap)
				return -1;
			key[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return (int)n;
}

/* The test's own RFC 6238 code (6 digits, 30 s) for unix time t, to check the server's. */
static void
totp_now(const uint8_t *key, int klen, int64_t t, char out[8])
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned int ml = 0, off;
	uint64_t ctr = (uint64_t)t / 30;
	uint32_t bin;

	for (int i = 7; i >= 0; i--, ctr >>= 8)
		msg[i] = (uint8_t)ctr;
	HMAC(EVP_sha1(), key, klen, msg, sizeof(msg), mac, &ml);
	off = mac[ml - 1] & 15;
	bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	      ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	snprintf(out, 8, "%06u", bin % 1000000);
}

static void
test_totp_second_factor(void)
{
	struct env e;
	struct resp r;
	char body[256], path[128], uri[512], code[8];
	uint8_t key[32];
	int klen;

	CHECK(env_up(&e, "admin-totp", NULL) == 0, "server did not start");
	snprintf(body, sizeof(body),
		 "{\"email\":\"fay@example.com\",\"display_name\":\"Fay\",\"role\":"
		 "\"admin\",\"password\":\"%s\"}",
		 PASSWORD);
	CHECK(client_req(e.admin, "POST", "/api/v1/admins", body, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 201);
	snprintf(path, sizeof(path), "%s/totp", r.location);
	resp_free(&r);
	CHECK(client_req(e.admin, "POST", path, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 201);
	CHECK(resp_str(&r, "otpauth_uri", uri, sizeof(uri)) == 0, "no uri: %s", r.body);
	resp_free(&r);
	klen = uri_secret(uri, key, sizeof(key));
	CHECK(klen == 20 && strncmp(uri, "otpauth://totp/Cleave:fay@example.com?", 38) == 0,
	      "uri: %s", uri);
	CHECK(login(&e, "fay@example.com", PASSWORD, NULL, NULL) == 401, "no code, signed in");
	totp_now(key, klen, (int64_t)time(NULL) - 90, code);
	CHECK(login_totp(&e, "fay@example.com", code) == 401, "a code 3 steps old worked");
	totp_now(key, klen, (int64_t)time(NULL), code);
	CHECK(login_totp(&e, "fay@example.com", code) == 200, "the right code was refused");
	CHECK(login_totp(&e, "fay@example.com", code) == 401, "a code worked twice");
	env_down(&e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"login_cookie_and_csrf", test_login_cookie_and_csrf},
		{"roles_same_for_session_and_token", test_roles_same_for_session_and_token},
		{"logout_and_everywhere", test_logout_and_everywhere},
		{"failed_logins_throttled", test_failed_logins_throttled},
		{"no_credentials_is_no_refusal", test_no_credentials_is_no_refusal},
		{"first_start_setup_code", test_first_start_setup_code},
		{"totp_second_factor", test_totp_second_factor},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

/* The test OpenID provider (LemonLDAP::NG) and a user agent for its login form: see oidcop.h. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oidcop.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

const char *
oidcop_skip_reason(void)
{
	if (access("/usr/bin/plackup", X_OK) != 0)
		return "plackup is missing (scripts/deps.sh installs libplack-perl)";
	if (system("perl -MLemonldap::NG::Portal::Issuer::OpenIDConnect -e1 >/dev/null 2>&1") != 0)
		return "LemonLDAP::NG's OpenID Connect issuer does not load (scripts/deps.sh "
		       "installs liblemonldap-ng-portal-perl and the modules it needs)";
	if (system("jq --version >/dev/null 2>&1") != 0)
		return "jq is missing (scripts/deps.sh installs it)";
	return NULL;
}

int
oidcop_init(struct oidcop *op, const char *tag)
{
	const char *base = getenv("CLEAVE_TEST_OUT");
	char tmpl[PATH_MAX];

	memset(op, 0, sizeof(*op));
	snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	op->port = t_free_port();
	if (op->port == 0)
		return -1;
	snprintf(op->dir, sizeof(op->dir), "%s", tmpl);
	snprintf(op->issuer, sizeof(op->issuer), "https://127.0.0.1:%u", op->port);
	snprintf(op->cafile, sizeof(op->cafile), "%s/ca.pem", op->dir);
	snprintf(op->log, sizeof(op->log), "%s/llng.log", op->dir);
	return 0;
}

struct small {
	char buf[16384];
	size_t n;
};

static size_t
keep(char *p, size_t size, size_t n, void *u)
{
	struct small *b = u;
	size_t add = size * n, room = sizeof(b->buf) - 1 - b->n;

	memcpy(b->buf + b->n, p, add < room ? add : room);
	b->n += add < room ? add : room;
	b->buf[b->n] = '\0';
	return add;
}

/* GETs path at the provider: 1 when it answers 200 and (want not NULL) the body has want. */
static int
op_has(const struct oidcop *op, const char *path, const char *want)
{
	char url[160];
	long code = 0;
	struct small b = {.n = 0};
	CURL *h = curl_easy_init();

	if (h == NULL)
		return 0;
	snprintf(url, sizeof(url), "%s%s", op->issuer, path);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CAINFO, op->cafile);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, keep);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(h) == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	return code == 200 && (want == NULL || strstr(b.buf, want) != NULL);
}

/* 200 from the discovery document: the portal has loaded its configuration. */
static int
op_ready(const struct oidcop *op)
{
	return op_has(op, "/.well-known/openid-configuration", NULL);
}

static void
print_log(const char *path)
{
	char line[512];
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return;
	for (int i = 0; i < 60 && fgets(line, sizeof(line), f) != NULL; i++)
		fprintf(stderr, "    llng: %s", line);
	fclose(f);
}

/* tests/oidc/llng_op.sh: CLEAVE_BIN is <repo>/<build>/bin, else the tests run from <repo>. */
static void
oidcop_script(char *out, size_t cap)
{
	const char *bin = getenv("CLEAVE_BIN");
	char repo[PATH_MAX] = ".";

	if (bin != NULL && *bin != '\0' && strlen(bin) < sizeof(repo)) {
		snprintf(repo, sizeof(repo), "%s", bin);
		for (int up = 0; up < 2; up++) {
			char *slash = strrchr(repo, '/');

			if (slash != NULL)
				*slash = '\0';
		}
	}
	snprintf(out, cap, "%s/tests/oidc/llng_op.sh", repo);
}

int
oidcop_start(struct oidcop *op, const char *redirect_uri, const char *secret)
{
	char script[PATH_MAX + 32], port[16];

	oidcop_script(script, sizeof(script));
	snprintf(port, sizeof(port), "%u", op->port);
	op->pid = fork();
	if (op->pid < 0)
		return -1;
	if (op->pid == 0) {
		int fd = open(op->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/bin/bash", "bash", script, op->dir, port, redirect_uri, secret,
		      (char *)NULL);
		_exit(127);
	}
	t_track_child(op->pid, 1);
	for (int i = 0; i < 600; i++) { /* 60 s: the portal compiles a lot of Perl at start */
		int st;

		if (waitpid(op->pid, &st, WNOHANG) == op->pid) {
			t_track_child(op->pid, 0);
			op->pid = 0;
			break;
		}
		if (op_ready(op))
			return 0;
		usleep(100000);
	}
	fprintf(stderr, "    the OpenID provider did not start; its log:\n");
	print_log(op->log);
	return -1;
}

int
oidcop_rotate(const struct oidcop *op, const char *kid)
{
	char script[PATH_MAX + 32], cmd[3 * PATH_MAX], want[96];

	oidcop_script(script, sizeof(script));
	snprintf(cmd, sizeof(cmd), "bash '%s' --rotate '%s' '%s' >>'%s' 2>&1", script, op->dir, kid,
		 op->log);
	if (system(cmd) != 0)
		return -1;
	snprintf(want, sizeof(want), "\"kid\":\"%s\"", kid);
	/* 15 s: the portal looks for a newer configuration every second. */
	for (int i = 0; i < 150; i++) {
		if (op_has(op, "/oauth2/jwks", want))
			return 0;
		usleep(100000);
	}
	return -1;
}

void
oidcop_stop(struct oidcop *op)
{
	if (op->pid > 0) {
		t_stop_child(op->pid, SIGTERM, 5000);
		op->pid = 0;
	}
	if (op->dir[0] != '\0')
		t_remove_after_case(op->dir);
}

int
oidcop_conf(const struct oidcop *op, const char *prefix, const char *extra_conf, char *conf,
	    size_t cap)
{
	char secret[PATH_MAX + 32], lines[3072];

	snprintf(conf, cap, "%s.conf", prefix);
	snprintf(secret, sizeof(secret), "%s.oidc-secret", prefix);
	snprintf(lines, sizeof(lines),
		 "oidc_issuer = %s\noidc_client_id = cleave\noidc_client_secret_file = %s\n"
		 "oidc_ca_file = %s\noidc_scopes = openid email profile cleave\n%s",
		 op->issuer, secret, op->cafile, extra_conf ? extra_conf : "");
	if (file_write_atomic(secret, OIDCOP_SECRET "\n", strlen(OIDCOP_SECRET) + 1, 0600) != 0 ||
	    file_write_atomic(conf, lines, strlen(lines), 0600) != 0)
		return -1;
	return 0;
}

int
oidcop_server(struct srv *s, struct oidcop *op, const char *tag, const char *extra_conf)
{
	const char *extra[] = {"--config", NULL, NULL};
	char conf[PATH_MAX + 32], redirect[256];

	if (srv_init(s, tag) != 0 || oidcop_init(op, "oidc-op") != 0 ||
	    oidcop_conf(op, s->dir, extra_conf, conf, sizeof(conf)) != 0)
		return -1;
	extra[1] = conf;
	if (srv_start(s, extra) != 0)
		return -1;
	snprintf(redirect, sizeof(redirect), "%s/api/v1/oidc/callback", s->url);
	return oidcop_start(op, redirect, OIDCOP_SECRET);
}

/* ---- the user agent ---- */

struct page {
	char *body;
	size_t len;
};

static size_t
collect(char *p, size_t size, size_t n, void *u)
{
	struct page *pg = u;
	size_t add = size * n;
	char *nb;

	if (pg->len + add > (4u << 20))
		return 0; /* no login page is 4 MiB */
	nb = realloc(pg->body, pg->len + add + 1);
	if (nb == NULL)
		return 0;
	memcpy(nb + pg->len, p, add);
	pg->len += add;
	nb[pg->len] = '\0';
	pg->body = nb;
	return add;
}

/* The value of the hidden input name in html (the login form's url and token fields). */
static int
form_value(const char *html, const char *name, char *out, size_t cap)
{
	char pat[64];
	const char *p, *v, *e;

	snprintf(pat, sizeof(pat), "name=\"%s\" value=\"", name);
	p = strstr(html, pat);
	if (p == NULL)
		return -1;
	v = p + strlen(pat);
	e = strchr(v, '"');
	if (e == NULL || (size_t)(e - v) >= cap)
		return -1;
	memcpy(out, v, (size_t)(e - v));
	out[e - v] = '\0';
	return 0;
}

/*
 * One request on h (cookies kept by h); body NULL: GET. The status, with the Location (if any)
 * in loc and the page in pg; -1 on a transport failure.
 */
static long
ua_req(CURL *h, const char *url, const char *body, struct page *pg, char *loc, size_t cap)
{
	long code = 0;
	char *redir = NULL;

	free(pg->body);
	memset(pg, 0, sizeof(*pg));
	curl_easy_setopt(h, CURLOPT_URL, url);
	if (body != NULL)
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	else
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, pg);
	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	loc[0] = '\0';
	if (curl_easy_getinfo(h, CURLINFO_REDIRECT_URL, &redir) == CURLE_OK && redir != NULL)
		snprintf(loc, cap, "%s", redir);
	return code;
}

/* Builds the login form's POST body: url, token, user, password, URL-encoded. */
static int
login_body(CURL *h, const char *html, const char *user, const char *password, char *out, size_t cap)
{
	char url[2048], token[128];
	char *eu, *et, *ec, *ep;
	int n;

	if (form_value(html, "url", url, sizeof(url)) != 0 ||
	    form_value(html, "token", token, sizeof(token)) != 0)
		return -1;
	eu = curl_easy_escape(h, url, 0);
	et = curl_easy_escape(h, token, 0);
	ec = curl_easy_escape(h, user, 0);
	ep = curl_easy_escape(h, password, 0);
	n = snprintf(out, cap, "url=%s&token=%s&user=%s&password=%s", eu ? eu : "", et ? et : "",
		     ec ? ec : "", ep ? ep : "");
	curl_free(eu);
	curl_free(et);
	curl_free(ec);
	curl_free(ep);
	return n > 0 && (size_t)n < cap ? 0 : -1;
}

int
oidcop_login(const struct oidcop *op, const char *authorize_url, const char *user,
	     const char *password, char *out, size_t cap)
{
	CURL *h = curl_easy_init();
	struct page pg = {0};
	char loc[4096], body[4096], next[4096];
	long code;
	int rc = -1;

	if (h == NULL)
		return -1;
	curl_easy_setopt(h, CURLOPT_CAINFO, op->cafile);
	curl_easy_setopt(h, CURLOPT_COOKIEFILE, ""); /* cookies in memory, for this sign-in */
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
	code = ua_req(h, authorize_url, NULL, &pg, loc, sizeof(loc));
	if (code != 200 || pg.body == NULL ||
	    login_body(h, pg.body, user, password, body, sizeof(body)) != 0) {
		fprintf(stderr, "    no login form at the provider (HTTP %ld)\n", code);
		goto out;
	}
	code = ua_req(h, authorize_url, body, &pg, loc, sizeof(loc));
	/* Follow the provider's own redirects (bounded) until one points elsewhere. */
	for (int i = 0; i < 8 && code >= 300 && code < 400 && loc[0] != '\0'; i++) {
		if (strncmp(loc, op->issuer, strlen(op->issuer)) != 0 ||
		    (loc[strlen(op->issuer)] != '/' && loc[strlen(op->issuer)] != '\0')) {
			snprintf(out, cap, "%s", loc);
			rc = 0;
			goto out;
		}
		snprintf(next, sizeof(next), "%s", loc);
		code = ua_req(h, next, NULL, &pg, loc, sizeof(loc));
	}
	fprintf(stderr, "    the provider did not redirect back (HTTP %ld): %.300s\n", code,
		pg.body ? pg.body : "");
out:
	free(pg.body);
	curl_easy_cleanup(h);
	return rc;
}

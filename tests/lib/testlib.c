/*
 * Implementation of the integration-test helpers: process control with bounded waits, a libcurl
 * HTTPS client with keep-alive, and a simulated device that signs its requests exactly as the
 * real agent must. Only tests and benchmarks link this.
 */
#include "testlib.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "httpsig.h"
#include "pgtest.h"
#include "util.h"

/* libcurl wants its global setup before any thread uses it; every user of the HTTPS client
 * links this file, and the runner (trun.c) does not know about curl. */
__attribute__((constructor)) static void
curl_setup(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

__attribute__((destructor)) static void
curl_teardown(void)
{
	curl_global_cleanup();
}

/* ---- server ---- */

int
srv_init(struct srv *s, const char *tag)
{
	const char *base = getenv("CLEAVE_TEST_OUT");
	char tmpl[PATH_MAX];

	memset(s, 0, sizeof(*s));
	snprintf(tmpl, sizeof(tmpl), "%s/%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (mkdtemp(tmpl) == NULL)
		return -1;
	snprintf(s->dir, sizeof(s->dir), "%s/data", tmpl);
	snprintf(s->log, sizeof(s->log), "%s/server.log", tmpl);
	snprintf(s->cacert, sizeof(s->cacert), "%s/tls/cert.pem", s->dir);
	return 0;
}

static int
read_line(const char *path, char *out, size_t cap)
{
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return -1;
	if (fgets(out, (int)cap, f) == NULL) {
		fclose(f);
		return -1;
	}
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static const char *
server_bin(void)
{
	static char path[PATH_MAX];
	const char *dir = getenv("CLEAVE_BIN");

	snprintf(path, sizeof(path), "%s/cleave-server", dir && *dir ? dir : "build/bin");
	return path;
}

int
srv_start(struct srv *s, const char *const *extra)
{
	char urlfile[PATH_MAX + 16], tokfile[PATH_MAX + 16];
	const char *argv[32];
	int argc = 0;

	snprintf(urlfile, sizeof(urlfile), "%s/server.url", s->dir);
	snprintf(tokfile, sizeof(tokfile), "%s/admin-token", s->dir);
	unlink(urlfile);
	argv[argc++] = server_bin();
	argv[argc++] = "--data";
	argv[argc++] = s->dir;
	argv[argc++] = "--listen";
	argv[argc++] = "127.0.0.1:0";
	if (s->database[0] != '\0') {
		argv[argc++] = "--database";
		argv[argc++] = s->database;
	}
	for (int i = 0; extra && extra[i] && argc < 30; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;
	s->pid = fork();
	if (s->pid < 0)
		return -1;
	if (s->pid == 0) {
		int fd = open(s->log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	t_track_child(s->pid, 1);
	for (int i = 0; i < 1500; i++) { /* 15 s */
		int st;

		if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
			t_track_child(s->pid, 0);
			s->pid = 0;
			return -1;
		}
		if (read_line(urlfile, s->url, sizeof(s->url)) == 0 &&
		    read_line(tokfile, s->admin, sizeof(s->admin)) == 0)
			return 0;
		usleep(10000);
	}
	return -1;
}

int
srv_stop(struct srv *s, int sig)
{
	int rc = t_stop_child(s->pid, sig, 15000);

	s->pid = 0;
	return rc;
}

void
srv_cleanup(struct srv *s)
{
	char cmd[PATH_MAX + 32];

	t_stop_graceful(&s->pid, "cleave-server", s->log);
	if (t_failed_now) {
		printf("    server log: %s\n", s->log);
		return;
	}
	/* The data dir's parent holds the log too; both go when the test passed. */
	if (strlen(s->dir) > 5 && strcmp(s->dir + strlen(s->dir) - 5, "/data") == 0) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)strlen(s->dir) - 5, s->dir);
		(void)!system(cmd);
	}
}

/* ---- client ---- */

struct client {
	CURL *c;
	long timeout;
	char base[128];
	char cacert[PATH_MAX];
	char auth[200];
};

struct client *
client_new(const struct srv *s, const char *bearer)
{
	struct client *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->c = curl_easy_init();
	str_copy(c->base, sizeof(c->base), s->url);
	str_copy(c->cacert, sizeof(c->cacert), s->cacert);
	c->timeout = 90;
	client_set_bearer(c, bearer);
	return c;
}

void
client_set_bearer(struct client *c, const char *bearer)
{
	c->auth[0] = '\0';
	if (bearer != NULL)
		snprintf(c->auth, sizeof(c->auth), "Authorization: Bearer %s", bearer);
}

void
client_set_timeout(struct client *c, long seconds)
{
	c->timeout = seconds;
}

void
client_free(struct client *c)
{
	if (c == NULL)
		return;
	curl_easy_cleanup(c->c);
	free(c);
}

static size_t
on_body(char *ptr, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t add = size * n;
	char *nb = realloc(r->body, r->len + add + 1);

	if (nb == NULL)
		return 0;
	r->body = nb;
	memcpy(r->body + r->len, ptr, add);
	r->len += add;
	r->body[r->len] = '\0';
	return add;
}

static size_t
on_header(char *ptr, size_t size, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t len = size * n, have = strlen(r->headers);

	/* Every header line as received, as much as fits. */
	if (have + 1 < sizeof(r->headers)) {
		size_t k = MIN(len, sizeof(r->headers) - 1 - have);

		memcpy(r->headers + have, ptr, k);
		r->headers[have + k] = '\0';
	}
	if (len > 10 && strncasecmp(ptr, "Location: ", 10) == 0) {
		size_t k = MIN(len - 10, sizeof(r->location) - 1);

		memcpy(r->location, ptr + 10, k);
		r->location[k] = '\0';
		r->location[strcspn(r->location, "\r\n")] = '\0';
	}
	if (len > 12 && strncasecmp(ptr, "Set-Cookie: ", 12) == 0) {
		size_t k = MIN(len - 12, sizeof(r->set_cookie) - 1);

		memcpy(r->set_cookie, ptr + 12, k);
		r->set_cookie[k] = '\0';
		r->set_cookie[strcspn(r->set_cookie, "\r\n")] = '\0';
	}
	return len;
}

int
client_req(struct client *c, const char *method, const char *path, const char *body,
	   const char *const *headers, struct resp *r)
{
	struct curl_slist *hl = NULL;
	char url[1024];
	double t0 = now_s();
	CURLcode rc;

	memset(r, 0, sizeof(*r));
	snprintf(url, sizeof(url), "%s%s", c->base, path);
	curl_easy_reset(c->c);
	curl_easy_setopt(c->c, CURLOPT_URL, url);
	curl_easy_setopt(c->c, CURLOPT_CAINFO, c->cacert);
	curl_easy_setopt(c->c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c->c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c->c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c->c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c->c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c->c, CURLOPT_TIMEOUT, c->timeout);
	curl_easy_setopt(c->c, CURLOPT_NOSIGNAL, 1L);
	if (body != NULL) {
		curl_easy_setopt(c->c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		hl = curl_slist_append(hl, "Content-Type: application/json");
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(c->c, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(method, "HEAD") == 0) {
		curl_easy_setopt(c->c, CURLOPT_NOBODY, 1L); /* no body follows the headers */
	}
	if (c->auth[0])
		hl = curl_slist_append(hl, c->auth);
	for (int i = 0; headers && headers[i]; i++)
		hl = curl_slist_append(hl, headers[i]);
	/* libcurl adds "Expect: 100-continue" to large bodies; the server needs no such dance. */
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(c->c, CURLOPT_HTTPHEADER, hl);
	rc = curl_easy_perform(c->c);
	curl_slist_free_all(hl);
	r->seconds = now_s() - t0;
	if (rc != CURLE_OK) {
		fprintf(stdout, "    curl %s %s: %s\n", method, path, curl_easy_strerror(rc));
		return -1;
	}
	curl_easy_getinfo(c->c, CURLINFO_RESPONSE_CODE, &r->status);
	return 0;
}

int
resp_header(const struct resp *r, const char *name, char *out, size_t cap)
{
	size_t n = strlen(name);
	const char *l = r->headers;

	while (*l != '\0') {
		const char *end = l + strcspn(l, "\n");

		if (strncasecmp(l, name, n) == 0 && l[n] == ':') {
			size_t k;

			l += n + 1;
			l += strspn(l, " \t");
			k = MIN(strcspn(l, "\r\n"), cap - 1);
			memcpy(out, l, k);
			out[k] = '\0';
			return 0;
		}
		l = *end != '\0' ? end + 1 : end;
	}
	return -1;
}

void
resp_free(struct resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

json_t *
resp_json(const struct resp *r)
{
	return r->body ? json_loadb(r->body, r->len, 0, NULL) : NULL;
}

int
resp_str(const struct resp *r, const char *name, char *out, size_t cap)
{
	json_t *j = resp_json(r);
	const char *v = j ? json_string_value(json_object_get(j, name)) : NULL;
	int rc = v ? str_copy(out, cap, v) : -1;

	json_decref(j);
	return rc;
}

/* ---- device ---- */

int
dev_init(struct device_sim *d)
{
	memset(d, 0, sizeof(*d));
	if (ed25519_key_generate(&d->key) != 0 || ed25519_key_generate(&d->hv) != 0)
		return -1;
	return 0;
}

void
dev_fini(struct device_sim *d)
{
	ed25519_key_free(d->key);
	ed25519_key_free(d->hv);
	memset(d, 0, sizeof(*d));
}

void
dev_attest(struct device_sim *d, const uint8_t nonce[32], uint8_t out[ATTEST_LEN])
{
	struct attestation a;

	memset(&a, 0, sizeof(a));
	a.state = HV_STATE_ACTIVE;
	memcpy(a.nonce, nonce, 32);
	ed25519_key_public(d->hv, a.hv_key);
	crypto_sha256("test guest image", 16, a.measurement);
	a.key_epoch = 1;
	a.time_ms = (uint64_t)time(NULL) * 1000;
	attest_encode(&a, out);
	ed25519_key_sign(d->hv, out, ATTEST_BODY_LEN, out + ATTEST_BODY_LEN);
}

int
dev_enroll(struct device_sim *d, struct client *c, const char *etoken, struct resp *r)
{
	uint8_t nonce[32], att[ATTEST_LEN], pub[32], hv[32];
	char body[2048], nb64[64], ab64[400], pb64[64], hb64[64], key_b64[64];
	json_t *j;

	snprintf(body, sizeof(body), "{\"enrollment_token\":\"%s\"}", etoken);
	if (client_req(c, "POST", "/device/v1/enroll/nonce", body, NULL, r) != 0)
		return -1;
	if (r->status != 200 || resp_str(r, "nonce", nb64, sizeof(nb64)) != 0 ||
	    b64_decode(nonce, sizeof(nonce), nb64, strlen(nb64)) != 32)
		return 0; /* the caller inspects r */
	resp_free(r);
	dev_attest(d, nonce, att);
	ed25519_key_public(d->key, pub);
	ed25519_key_public(d->hv, hv);
	b64_encode(ab64, sizeof(ab64), att, sizeof(att));
	b64_encode(pb64, sizeof(pb64), pub, 32);
	b64_encode(hb64, sizeof(hb64), hv, 32);
	snprintf(body, sizeof(body),
		 "{\"enrollment_token\":\"%s\",\"nonce\":\"%s\",\"device_key\":\"%s\","
		 "\"hypervisor_key\":\"%s\",\"attestation\":\"%s\",\"inventory\":{\"model\":"
		 "\"Pixel 9\",\"os\":\"Android 16\",\"agent_version\":\"0.1.0\"}}",
		 etoken, nb64, pb64, hb64, ab64);
	if (client_req(c, "POST", "/device/v1/enroll", body, NULL, r) != 0)
		return -1;
	if (r->status == 201 && (j = resp_json(r)) != NULL) {
		const char *id = json_string_value(json_object_get(j, "device_id"));
		const char *tk = json_string_value(json_object_get(j, "server_ticket_key"));

		if (id)
			str_copy(d->id, sizeof(d->id), id);
		if (tk && str_copy(key_b64, sizeof(key_b64), tk) == 0)
			b64_decode(d->ticket_key, 32, key_b64, strlen(key_b64));
		json_decref(j);
	}
	return 0;
}

void
dev_sign(struct device_sim *d, const char *method, const char *path, const char *body,
	 int64_t created, uint64_t nonce, char hdrs[3][600], const char *out[4])
{
	struct httpsig_params p = {.created = created, .nonce = nonce};
	struct httpsig_headers h;
	const char *q = strchr(path, '?');
	char pbuf[512];

	str_copy(p.keyid, sizeof(p.keyid), d->id);
	str_copy(pbuf, sizeof(pbuf), path);
	if (q != NULL)
		pbuf[q - path] = '\0';
	httpsig_sign(d->key, method, pbuf, q ? q + 1 : "", body, body ? strlen(body) : 0, &p, &h);
	snprintf(hdrs[0], 600, "Content-Digest: %s", h.content_digest);
	snprintf(hdrs[1], 600, "Signature-Input: %s", h.signature_input);
	snprintf(hdrs[2], 600, "Signature: %s", h.signature);
	out[0] = hdrs[0];
	out[1] = hdrs[1];
	out[2] = hdrs[2];
	out[3] = NULL;
}

int
dev_req(struct device_sim *d, struct client *c, const char *method, const char *path,
	const char *body, int64_t skew_s, struct resp *r)
{
	char hdrs[3][600];
	const char *h[4];

	dev_sign(d, method, path, body, (int64_t)time(NULL) + skew_s, ++d->nonce, hdrs, h);
	return client_req(c, method, path, body, h, r);
}

void
dev_receipt(struct device_sim *d, const uint8_t ticket[TICKET_LEN], int32_t result,
	    uint8_t out[RECEIPT_LEN])
{
	struct ticket t;
	struct receipt rc;

	memset(&rc, 0, sizeof(rc));
	ticket_decode(ticket, TICKET_LEN, &t);
	rc.type = t.type;
	rc.result = result;
	ed25519_key_public(d->hv, rc.hv_key);
	str_copy(rc.device_id, sizeof(rc.device_id), t.device_id);
	str_copy(rc.command_id, sizeof(rc.command_id), t.command_id);
	crypto_sha256(ticket, TICKET_LEN, rc.ticket_hash);
	rc.ticket_counter = t.counter;
	rc.seq = t.counter;
	/* What cleave-hv's receipt for this type shows when it worked (wire-formats.md 4.4). */
	rc.epoch_before = 1;
	rc.epoch_after =
		t.type == TICKET_WIPE || t.type == TICKET_RETIRE || t.type == TICKET_REKEY ? 2 : 1;
	rc.header_state = t.type == TICKET_WIPE ? HV_STATE_ERASED : HV_STATE_ACTIVE;
	rc.checks_run = CHECK_INTENT_RECORDED | CHECK_VM_STOPPED | receipt_required_checks(t.type);
	rc.checks_passed = rc.checks_run;
	rc.started_ms = (uint64_t)time(NULL) * 1000;
	rc.finished_ms = rc.started_ms + 3;
	receipt_encode(&rc, out);
	ed25519_key_sign(d->hv, out, RECEIPT_BODY_LEN, out + RECEIPT_BODY_LEN);
}

/* ---- admin shortcuts ---- */

int
admin_etoken(struct client *admin, const char *owner, int uses, char *out, size_t cap)
{
	char body[512];
	struct resp r;
	int rc = -1;

	snprintf(body, sizeof(body), "{\"owner\":\"%s\",\"uses\":%d}", owner, uses);
	if (client_req(admin, "POST", "/api/v1/enrollment-tokens", body, NULL, &r) == 0 &&
	    r.status == 201)
		rc = resp_str(&r, "token", out, cap);
	resp_free(&r);
	return rc;
}

int
admin_enroll(struct client *admin, struct client *anon, struct device_sim *d, const char *owner)
{
	char tok[128];
	struct resp r;
	int ok;

	if (dev_init(d) != 0 || admin_etoken(admin, owner, 1, tok, sizeof(tok)) != 0 ||
	    dev_enroll(d, anon, tok, &r) != 0)
		return -1;
	ok = r.status == 201 ? 0 : -1;
	if (ok != 0)
		printf("    enroll %s: HTTP %ld %s\n", owner, r.status, r.body ? r.body : "");
	resp_free(&r);
	return ok;
}

json_t *
client_get_json(struct client *c, const char *path, long *status)
{
	struct resp r;
	json_t *j = NULL;

	*status = -1;
	if (client_req(c, "GET", path, NULL, NULL, &r) != 0)
		return NULL;
	*status = r.status;
	if (r.status == 200)
		j = resp_json(&r);
	resp_free(&r);
	return j;
}

int
admin_token(struct client *admin, const char *role, char *out, size_t cap)
{
	char body[256];
	struct resp r;
	int rc = -1;

	snprintf(body, sizeof(body), "{\"name\":\"test %s\",\"role\":\"%s\"}", role, role);
	if (client_req(admin, "POST", "/api/v1/tokens", body, NULL, &r) == 0 && r.status == 201)
		rc = resp_str(&r, "token", out, cap);
	resp_free(&r);
	return rc;
}

void
admin_command_status(struct client *admin, const char *id, char *out, size_t cap)
{
	char path[160];
	long st;
	json_t *j;

	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	j = client_get_json(admin, path, &st);
	str_copy(out, cap, json_string_value(json_object_get(j, "status")) ?: "");
	json_decref(j);
}

long
admin_command(struct client *admin, const char *device, const char *type, char *out, size_t cap)
{
	char path[256], body[256];
	struct resp r;
	long st = -1;

	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", device);
	snprintf(body, sizeof(body), "{\"type\":\"%s\",\"reason\":\"test\"}", type);
	if (client_req(admin, "POST", path, body, NULL, &r) == 0) {
		st = r.status;
		if (out != NULL && resp_str(&r, "id", out, cap) != 0)
			out[0] = '\0';
	}
	resp_free(&r);
	return st;
}

int
srv_use_pg(struct srv *s, struct pgtest *pg)
{
	static int dbs;
	char name[32];

	if (pg == NULL)
		return 0;
	snprintf(name, sizeof(name), "srv%d_%d", (int)getpid(), ++dbs);
	return pgtest_create_db(pg, name, s->database, sizeof(s->database));
}

int
srv_db_exec(struct srv *s, const char *sql)
{
	char path[PATH_MAX + 16];
	sqlite3 *db;
	int rc;

	if (s->database[0] != '\0')
		return pgtest_exec(s->database, sql);
	snprintf(path, sizeof(path), "%s/cleave.db", s->dir);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return -1;
	}
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	return rc == SQLITE_OK ? 0 : -1;
}

long long
srv_db_int(struct srv *s, const char *sql)
{
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	long long v = -1;

	if (s->database[0] != '\0')
		return pgtest_int(s->database, sql);
	snprintf(path, sizeof(path), "%s/cleave.db", s->dir);
	if (sqlite3_open(path, &db) == SQLITE_OK) {
		sqlite3_busy_timeout(db, 5000);
		if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK &&
		    sqlite3_step(q) == SQLITE_ROW)
			v = sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

int
t_run_pg(const struct t_case *cases, size_t n, int argc, char **argv, struct pgtest **env)
{
	const char *why = pgtest_skip_reason();
	struct pgtest pg;
	int rc;

	if (why != NULL) {
		printf("skipped: %s\n", why);
		return T_EXIT_SKIP;
	}
	if (pgtest_start(&pg) != 0) {
		printf("could not start a private PostgreSQL cluster\n");
		return 1;
	}
	*env = &pg;
	rc = t_run(cases, n, argc, argv);
	*env = NULL;
	pgtest_stop(&pg);
	return rc;
}

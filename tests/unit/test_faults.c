/*
 * Storage faults as a test dimension, in the manner of SQLite's own I/O-error tests: for every
 * admin and device operation of the REST API, make the 1st, 2nd, ... Nth storage call of that
 * operation fail (store_fault.h; the store of this test build has the hook), until the operation
 * runs without reaching the fault. Each failed attempt must answer a problem+json 500 or 503,
 * leave the database exactly as it was (every table's rows hashed before and after, through a
 * second SQLite connection), and leave the audit chain verifiable; the next attempt must work,
 * so the server keeps serving. Also the background tick: a failed expiry changes nothing and is
 * done at the next tick. Requests go through api_handle on a real service over a temporary
 * SQLite file; only the http/ layer is not involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "api/api.h"
#include "b64.h"
#include "crypto.h"
#include "service/service.h"
#include "store/store.h"
#include "store/store_fault.h"
#include "testlib.h"
#include "util.h"

#define FAULT_WALK_MAX 200 /* no operation makes more storage calls than this */
#define HOOK_ALL                                                                                   \
	"{\"url\":\"http://127.0.0.1:9/hook\",\"events\":[\"device.enrolled\",\"device.retired\"," \
	"\"command.queued\",\"command.completed\",\"wipe.verified\",\"compliance.changed\","       \
	"\"audit.checkpoint\",\"approval.requested\"]}"

struct fx {
	char dir[64], path[96];
	struct store *st;
	struct ed25519_key *key;
	struct service *svc;
	struct api *api;
	char *admin;
	struct device_sim dev;   /* enrolled in setup */
	int seq;                 /* makes each attempt's values new */
	char last_id[64];        /* id a prep step made, for the operation */
	char ticket[400];        /* base64 ticket of the last command a check-in handed out */
	struct device_sim phone; /* a phone enrolling during the walk */
	char hook_id[64];        /* the webhook subscription made with the policies */
	char body[2048];
};

/* The service's clock: real time (device signatures use it) plus a settable offset. */
static int64_t clock_offset_ms;

static int64_t
test_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + clock_offset_ms;
}

/* ---- requests ---- */

struct hdrs {
	const char *v[8]; /* "Name: value" */
};

static const char *
hdr_lookup(void *ctx, const char *name)
{
	const struct hdrs *h = ctx;
	size_t n = strlen(name);

	for (size_t i = 0; i < ARRAY_SIZE(h->v) && h->v[i] != NULL; i++)
		if (strncasecmp(h->v[i], name, n) == 0 && h->v[i][n] == ':')
			return h->v[i] + n + 2;
	return NULL;
}

/* Runs one request; rs is the caller's to free (rs->body). */
static void
call(struct fx *f, const char *method, const char *target, const char *body, int as_device,
     struct api_response *rs)
{
	char auth[160], path[256], sh[3][600];
	const char *dh[4];
	struct hdrs h = {{"Content-Type: application/json"}};
	struct api_request rq = {.method = method, .header = hdr_lookup, .header_ctx = &h};
	char *q;

	str_copy(path, sizeof(path), target);
	q = strchr(path, '?');
	if (q != NULL)
		*q++ = '\0';
	rq.path = path;
	rq.query = q ? q : "";
	rq.body = body;
	rq.body_len = body ? strlen(body) : 0;
	rq.client = "127.0.0.1";
	if (as_device) {
		dev_sign(&f->dev, method, target, body, (int64_t)time(NULL), ++f->dev.nonce, sh,
			 dh);
		h.v[1] = dh[0];
		h.v[2] = dh[1];
		h.v[3] = dh[2];
	} else {
		snprintf(auth, sizeof(auth), "Authorization: Bearer %s", f->admin);
		h.v[1] = auth;
	}
	memset(rs, 0, sizeof(*rs));
	api_handle(f->api, &rq, rs);
}

/* Runs a request that must succeed with want; keeps its "id" in f->last_id. */
static void
must(struct fx *f, const char *method, const char *target, const char *body, int as_device,
     int want)
{
	struct api_response rs;
	json_t *j;

	call(f, method, target, body, as_device, &rs);
	if (rs.status != want)
		fail_msg("%s %s: HTTP %d, want %d: %.300s", method, target, rs.status, want,
			 rs.body ? rs.body : "");
	j = rs.body ? json_loadb(rs.body, rs.len, 0, NULL) : NULL;
	if (json_string_value(json_object_get(j, "id")) != NULL)
		str_copy(f->last_id, sizeof(f->last_id),
			 json_string_value(json_object_get(j, "id")));
	json_decref(j);
	free(rs.body);
}

/* ---- the database, seen from outside ---- */

/* SHA-256 over every row of every table, in rowid order (hex into out). */
static void
db_fingerprint(struct fx *f, char out[65])
{
	sqlite3 *db;
	sqlite3_stmt *tabs, *q;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	uint8_t h[32];
	unsigned hl = 0;
	char sql[128];

	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "SELECT name FROM sqlite_master WHERE type = 'table' "
					    "ORDER BY name",
					    -1, &tabs, NULL),
			 SQLITE_OK);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	while (sqlite3_step(tabs) == SQLITE_ROW) {
		snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY rowid",
			 (const char *)sqlite3_column_text(tabs, 0));
		assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
		while (sqlite3_step(q) == SQLITE_ROW) {
			for (int c = 0; c < sqlite3_column_count(q); c++) {
				const void *b = sqlite3_column_blob(q, c);
				int n = sqlite3_column_bytes(q, c);

				EVP_DigestUpdate(md, &n, sizeof(n));
				if (b != NULL)
					EVP_DigestUpdate(md, b, (size_t)n);
			}
		}
		sqlite3_finalize(q);
	}
	sqlite3_finalize(tabs);
	sqlite3_close(db);
	EVP_DigestFinal_ex(md, h, &hl);
	EVP_MD_CTX_free(md);
	hex_encode(out, 65, h, sizeof(h));
}

static void
expect_chain_ok(struct fx *f)
{
	struct principal p = {.role = ROLE_ADMIN, .id = "test"};
	struct audit_report rep;
	struct svc_error err = {0};

	int r = svc_audit_verify(f->svc, &p, 1, &rep, &err);

	/* The full walk runs on the verifier thread: wait for its report. */
	for (int i = 0; i < 500 && r == -EINPROGRESS; i++) {
		usleep(10000);
		r = svc_audit_verify_result(f->svc, &rep, &err);
	}
	assert_int_equal(r, 0);
	if (!rep.ok)
		fail_msg("audit chain broken: %s", rep.problem);
}

/* ---- the walk ---- */

struct op {
	const char *name;
	void (*prep)(struct fx *f); /* may be NULL; runs without faults */
	void (*run)(struct fx *f, struct api_response *rs);
	int ok_status;
};

/* Walks faults over every storage call of op; returns how many calls it made unfaulted. */
static long
walk(struct fx *f, const struct op *op)
{
	char before[65], after[65];
	struct api_response rs;
	long n;

	for (n = 1; n <= FAULT_WALK_MAX; n++) {
		int err = n % 3 == 0 ? -ENOSPC : n % 3 == 1 ? -EIO : -EBUSY;

		f->seq++;
		if (op->prep != NULL)
			op->prep(f);
		db_fingerprint(f, before);
		store_fault_arm(n, err);
		op->run(f, &rs);
		store_fault_arm(0, 0);
		if (!store_fault_fired()) {
			/* The operation made fewer than n calls: it ran whole, and must work. */
			if (rs.status != op->ok_status)
				fail_msg("%s: HTTP %d without a fault, want %d: %.300s", op->name,
					 rs.status, op->ok_status, rs.body ? rs.body : "");
			free(rs.body);
			expect_chain_ok(f);
			return n - 1;
		}
		if (rs.status == op->ok_status) {
			/* The fault hit a read after the commit (e.g. the policy shown back). */
			free(rs.body);
			expect_chain_ok(f);
			continue;
		}
		if (rs.status != 500 && rs.status != 503)
			fail_msg("%s: fault at storage call %ld answered HTTP %d: %.300s", op->name,
				 n, rs.status, rs.body ? rs.body : "");
		if (rs.content_type == NULL ||
		    strcmp(rs.content_type, "application/problem+json") != 0)
			fail_msg("%s: fault at call %ld: not problem+json", op->name, n);
		free(rs.body);
		db_fingerprint(f, after);
		if (strcmp(before, after) != 0)
			fail_msg("%s: fault at storage call %ld left a partial change", op->name,
				 n);
		expect_chain_ok(f);
	}
	fail_msg("%s: more than %d storage calls", op->name, FAULT_WALK_MAX);
	return -1;
}

/* ---- operations ---- */

static void
run_token_create(struct fx *f, struct api_response *rs)
{
	call(f, "POST", "/api/v1/tokens", "{\"name\":\"ci\",\"role\":\"auditor\"}", 0, rs);
}

static void
prep_token(struct fx *f)
{
	must(f, "POST", "/api/v1/tokens", "{\"name\":\"old\",\"role\":\"helpdesk\"}", 0, 201);
}

static void
run_token_revoke(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/tokens/%s", f->last_id);
	call(f, "DELETE", p, NULL, 0, rs);
}

static void
run_etoken_create(struct fx *f, struct api_response *rs)
{
	call(f, "POST", "/api/v1/enrollment-tokens", "{\"owner\":\"bob@example.com\",\"uses\":1}",
	     0, rs);
}

static void
run_policy_put(struct fx *f, struct api_response *rs)
{
	char body[128];

	snprintf(body, sizeof(body), "{\"offline\":{\"lock_after_hours\":%d}}", 1 + f->seq);
	call(f, "PUT", "/api/v1/policies/std", body, 0, rs);
}

static void
run_policy_assign(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/devices/%s/policy", f->dev.id);
	call(f, "PUT", p, f->seq % 2 ? "{\"policy\":\"other\"}" : "{\"policy\":\"std\"}", 0, rs);
}

static void
run_default_policy(struct fx *f, struct api_response *rs)
{
	call(f, "PUT", "/api/v1/default-policy",
	     f->seq % 2 ? "{\"name\":\"other\"}" : "{\"name\":\"std\"}", 0, rs);
}

static void
run_command_wipe(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/devices/%s/commands", f->dev.id);
	call(f, "POST", p, "{\"type\":\"wipe\",\"reason\":\"lost\"}", 0, rs);
}

static void
prep_lock(struct fx *f)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/devices/%s/commands", f->dev.id);
	must(f, "POST", p, "{\"type\":\"lock\"}", 0, 202);
}

static void
run_cancel(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/commands/%s/cancel", f->last_id);
	call(f, "POST", p, "{}", 0, rs);
}

static void
run_reads(struct fx *f, struct api_response *rs)
{
	char p[128];
	struct api_response r2;

	snprintf(p, sizeof(p), "/api/v1/devices/%s", f->dev.id);
	call(f, "GET", p, NULL, 0, &r2);
	if (r2.status != 200) {
		*rs = r2;
		return;
	}
	free(r2.body);
	call(f, "GET", "/api/v1/audit/verify", NULL, 0, rs);
}

/* An enrollment token's secret into f->last_id. */
static void
prep_etoken(struct fx *f)
{
	struct api_response rs;
	json_t *j;

	call(f, "POST", "/api/v1/enrollment-tokens", "{\"owner\":\"n@example.com\",\"uses\":1}", 0,
	     &rs);
	assert_int_equal(rs.status, 201);
	j = json_loadb(rs.body, rs.len, 0, NULL);
	str_copy(f->last_id, sizeof(f->last_id), json_string_value(json_object_get(j, "token")));
	json_decref(j);
	free(rs.body);
}

static void
run_enroll_nonce(struct fx *f, struct api_response *rs)
{
	char body[256];

	snprintf(body, sizeof(body), "{\"enrollment_token\":\"%s\"}", f->last_id);
	call(f, "POST", "/device/v1/enroll/nonce", body, 0, rs);
}

/* A token and a nonce for it; the body that enrolls d goes to f->body. */
static void
enroll_body(struct fx *f, struct device_sim *d)
{
	struct api_response rs;
	uint8_t nonce[32], att[ATTEST_LEN], pub[32], hv[32];
	char nb[64], ab[400], pb[64], hb[64];
	json_t *j;

	prep_etoken(f);
	run_enroll_nonce(f, &rs);
	assert_int_equal(rs.status, 200);
	j = json_loadb(rs.body, rs.len, 0, NULL);
	str_copy(nb, sizeof(nb), json_string_value(json_object_get(j, "nonce")));
	json_decref(j);
	free(rs.body);
	assert_int_equal(b64_decode(nonce, sizeof(nonce), nb, strlen(nb)), 32);
	dev_attest(d, nonce, att);
	ed25519_key_public(d->key, pub);
	ed25519_key_public(d->hv, hv);
	b64_encode(ab, sizeof(ab), att, sizeof(att));
	b64_encode(pb, sizeof(pb), pub, 32);
	b64_encode(hb, sizeof(hb), hv, 32);
	snprintf(f->body, sizeof(f->body),
		 "{\"enrollment_token\":\"%s\",\"nonce\":\"%s\",\"device_key\":\"%s\","
		 "\"hypervisor_key\":\"%s\",\"attestation\":\"%s\",\"inventory\":{\"model\":\"m\","
		 "\"os\":\"o\",\"agent_version\":\"0.1.0\"}}",
		 f->last_id, nb, pb, hb, ab);
}

/* A new phone each attempt. */
static void
prep_enroll(struct fx *f)
{
	dev_fini(&f->phone);
	assert_int_equal(dev_init(&f->phone), 0);
	enroll_body(f, &f->phone);
}

static void
run_enroll(struct fx *f, struct api_response *rs)
{
	call(f, "POST", "/device/v1/enroll", f->body, 0, rs);
}

/* A second enrolled phone, to delete. */
static void
prep_spare(struct fx *f)
{
	struct api_response rs;
	json_t *j;

	prep_enroll(f);
	run_enroll(f, &rs);
	assert_int_equal(rs.status, 201);
	j = json_loadb(rs.body, rs.len, 0, NULL);
	str_copy(f->last_id, sizeof(f->last_id),
		 json_string_value(json_object_get(j, "device_id")));
	json_decref(j);
	free(rs.body);
}

static void
run_device_delete(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/devices/%s", f->last_id);
	call(f, "DELETE", p, NULL, 0, rs);
}

/* Checks in with a changed report and hands back what it got (ticket of the first command). */
static void
run_checkin(struct fx *f, struct api_response *rs)
{
	char body[160];

	snprintf(body, sizeof(body), "{\"wait\":0,\"state\":{\"agent_version\":\"0.2.%d\"}}",
		 f->seq);
	call(f, "POST", "/device/v1/checkin", body, 1, rs);
}

static void
prep_delivered(struct fx *f)
{
	struct api_response rs;
	json_t *j, *cmd;

	prep_lock(f);
	run_checkin(f, &rs);
	assert_int_equal(rs.status, 200);
	j = json_loadb(rs.body, rs.len, 0, NULL);
	cmd = json_array_get(json_object_get(j, "commands"), 0);
	str_copy(f->last_id, sizeof(f->last_id), json_string_value(json_object_get(cmd, "id")));
	str_copy(f->ticket, sizeof(f->ticket), json_string_value(json_object_get(cmd, "ticket")));
	json_decref(j);
	free(rs.body);
}

static void
run_ack(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/device/v1/commands/%s/ack", f->last_id);
	call(f, "POST", p, "{}", 1, rs);
}

static void
run_result(struct fx *f, struct api_response *rs)
{
	uint8_t tk[TICKET_LEN], rc[RECEIPT_LEN];
	char p[128], body[1024], b[512];

	assert_int_equal(b64_decode(tk, sizeof(tk), f->ticket, strlen(f->ticket)), TICKET_LEN);
	dev_receipt(&f->dev, tk, 0, rc);
	b64_encode(b, sizeof(b), rc, sizeof(rc));
	snprintf(p, sizeof(p), "/device/v1/commands/%s/result", f->last_id);
	snprintf(body, sizeof(body), "{\"status\":\"completed\",\"receipt\":\"%s\"}", b);
	call(f, "POST", p, body, 1, rs);
}

static void
run_auto_receipt(struct fx *f, struct api_response *rs)
{
	struct receipt r;
	uint8_t buf[RECEIPT_LEN];
	char body[600], b[512];

	memset(&r, 0, sizeof(r));
	r.type = RECEIPT_AUTO_LOCK;
	ed25519_key_public(f->dev.hv, r.hv_key);
	str_copy(r.device_id, sizeof(r.device_id), f->dev.id);
	r.seq = 1000 + (uint64_t)f->seq;
	r.header_state = HV_STATE_LOCKED;
	receipt_encode(&r, buf);
	ed25519_key_sign(f->dev.hv, buf, RECEIPT_BODY_LEN, buf + RECEIPT_BODY_LEN);
	b64_encode(b, sizeof(b), buf, sizeof(buf));
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", b);
	call(f, "POST", "/device/v1/receipts", body, 1, rs);
}

static void
run_webhook_create(struct fx *f, struct api_response *rs)
{
	call(f, "POST", "/api/v1/webhooks", HOOK_ALL, 0, rs);
}

static void
run_webhook_disable(struct fx *f, struct api_response *rs)
{
	char p[128];

	snprintf(p, sizeof(p), "/api/v1/webhooks/%s", f->hook_id);
	call(f, "PATCH", p, f->seq % 2 ? "{\"enabled\":false}" : "{\"enabled\":true}", 0, rs);
}

static const struct op ops[] = {
	{"webhook create", NULL, run_webhook_create, 201},
	{"webhook enable/disable", NULL, run_webhook_disable, 200},
	{"token create", NULL, run_token_create, 201},
	{"token revoke", prep_token, run_token_revoke, 204},
	{"enrollment token create", NULL, run_etoken_create, 201},
	{"policy put (fan-out)", NULL, run_policy_put, 200},
	{"policy assign", NULL, run_policy_assign, 200},
	{"default policy", NULL, run_default_policy, 200},
	{"command create", NULL, run_command_wipe, 202},
	{"command cancel", prep_lock, run_cancel, 200},
	{"reads", NULL, run_reads, 200},
	{"enrollment nonce", prep_etoken, run_enroll_nonce, 200},
	{"enrollment", prep_enroll, run_enroll, 201},
	{"device delete", prep_spare, run_device_delete, 204},
	{"check-in", prep_lock, run_checkin, 200},
	{"ack", prep_delivered, run_ack, 200},
	{"result with receipt", prep_delivered, run_result, 200},
	{"auto receipt upload", NULL, run_auto_receipt, 200},
};

/* ---- fixture ---- */

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct service_config cfg = {
		.command_ttl_s = 3600,
		.enroll_ttl_s = 86400,
		.nonce_ttl_s = 300,
		.sig_skew_s = 300,
		.max_wait_s = 30,
		.public_url = "https://127.0.0.1:8443",
	};

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-test-faults-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/cleave.db", f->dir);
	*state = f;
	if (store_sqlite_open(f->path, &f->st) != 0 || ed25519_key_generate(&f->key) != 0 ||
	    service_new(f->st, f->key, &cfg, test_clock, &f->svc) != 0 ||
	    service_set_webhook_key(f->svc, f->key) != 0 || api_new(f->svc, &f->api) != 0 ||
	    service_bootstrap_admin(f->svc, &f->admin) != 0 || dev_init(&f->dev) != 0 ||
	    dev_init(&f->phone) != 0)
		return -1;
	clock_offset_ms = 0;
	return 0;
}

static int
teardown(void **state)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	struct fx *f = *state;
	char p[160];

	if (f == NULL)
		return 0;
	store_fault_arm(0, 0);
	dev_fini(&f->dev);
	dev_fini(&f->phone);
	free(f->admin);
	api_free(f->api);
	service_free(f->svc);
	ed25519_key_free(f->key);
	if (f->st != NULL)
		f->st->ops->close(f->st);
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		snprintf(p, sizeof(p), "%s%s", f->path, suffixes[i]);
		unlink(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Enrolls f->dev through the API (policies std and other exist first). */
static void
enroll(struct fx *f)
{
	struct api_response rs;
	json_t *j;

	must(f, "PUT", "/api/v1/policies/std", "{}", 0, 201);
	must(f, "PUT", "/api/v1/policies/other", "{\"max_failed_unlocks\":3}", 0, 201);
	/* A webhook for every event type: each operation also writes its events to the outbox. */
	must(f, "POST", "/api/v1/webhooks", HOOK_ALL, 0, 201);
	str_copy(f->hook_id, sizeof(f->hook_id), f->last_id);
	enroll_body(f, &f->dev);
	run_enroll(f, &rs);
	assert_int_equal(rs.status, 201);
	j = json_loadb(rs.body, rs.len, 0, NULL);
	str_copy(f->dev.id, sizeof(f->dev.id), json_string_value(json_object_get(j, "device_id")));
	json_decref(j);
	free(rs.body);
}

/* Events of type in the outbox, read through a second connection. */
static long
outbox_rows(struct fx *f, const char *type)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	long n = -1;

	if (sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
	    sqlite3_prepare_v2(db, "SELECT count(*) FROM webhook_events WHERE type = ?", -1, &q,
			       NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, type, -1, SQLITE_STATIC);
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int(q, 0);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

static void
test_faults_every_call_of_every_operation(void **state)
{
	struct fx *f = *state;
	long total = 0;

	enroll(f);
	for (size_t i = 0; i < ARRAY_SIZE(ops); i++) {
		long n = walk(f, &ops[i]);

		print_message("    %-26s %ld storage calls, each failed once\n", ops[i].name, n);
		assert_true(n > 0);
		total += n;
	}
	print_message("    %ld faults injected in all\n", total);
	/* The walk ran with the outbox in every transaction: events were written each time. */
	assert_true(outbox_rows(f, "command.queued") >= 2);
	assert_true(outbox_rows(f, "device.enrolled") >= 2);
}

/* The tick's expiry: a failure changes nothing, and a later tick does the work. */
static void
test_faults_tick_retries(void **state)
{
	struct fx *f = *state;
	char before[65], after[65], p[128];
	struct api_response rs;
	long n;

	enroll(f);
	snprintf(p, sizeof(p), "/api/v1/devices/%s/commands", f->dev.id);
	must(f, "POST", p, "{\"type\":\"lock\",\"expires_in\":60}", 0, 202);
	clock_offset_ms = 3600 * 1000; /* an hour later: the lock is past its expiry */
	for (n = 1; n <= FAULT_WALK_MAX; n++) {
		db_fingerprint(f, before);
		store_fault_arm(n, n % 2 ? -EIO : -ENOSPC);
		service_tick(f->svc);
		store_fault_arm(0, 0);
		if (!store_fault_fired())
			break;
		db_fingerprint(f, after);
		if (strcmp(before, after) != 0)
			fail_msg("a tick that failed at storage call %ld changed the database", n);
		expect_chain_ok(f);
	}
	assert_true(n > 1 && n <= FAULT_WALK_MAX);
	print_message("    tick: %ld storage calls, each failed once\n", n - 1);
	call(f, "GET", p, NULL, 0, &rs);
	assert_int_equal(rs.status, 200);
	assert_non_null(strstr(rs.body, "\"status\":\"expired\""));
	free(rs.body);
	snprintf(p, sizeof(p), "/api/v1/devices/%s", f->dev.id);
	call(f, "GET", p, NULL, 0, &rs);
	assert_non_null(strstr(rs.body, "\"desired\":\"active\""));
	free(rs.body);
	expect_chain_ok(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_faults_every_call_of_every_operation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_faults_tick_retries, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

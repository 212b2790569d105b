/*
 * The two-person rule (issue 11 section 4) against the real cleave-server, with
 * two_person_rule = 1 and approval_bulk_size = 2: a wipe waits (202 pending_approval, nothing
 * reaches the device); the requester's own approval is 403 approval-by-requester, also under
 * a second token of the same person; a token without the approve permission is 403
 * approval-needs-second-factor, as is a console session signed in without a TOTP code (even
 * after its account enrolled TOTP), helpdesk 403 forbidden; a second admin's approval queues it
 * (requester and approver on the command and in the audit trail) and the device gets it;
 * parallel approvals of one request queue exactly one command; the override needs a reason,
 * queues at once and is audited approval.override; a bulk above the size waits, one at it does
 * not; a bulk by filter above the size is recorded awaiting, left alone by the worker, runs
 * once approved and is canceled with a rejected request, or by the server's sweep once its
 * request expired with nobody deciding (audited approval.expire); a late approval is refused as expired (a server with 1 s expiry). test_approvals_pg
 * runs every case on PostgreSQL, where the parallel approvals meet the row lock. Approvers are console
 * accounts with TOTP whose sessions made API tokens with the approve permission. A webhook
 * receiver (tests/lib/hookrx.h) subscribed to approval.requested and approval.approved gets
 * both, signed, naming the request, when a wipe under the rule is asked for and approved.
 */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hookrx.h"
#include "pgtest.h"
#include "testlib.h"
#include "util.h"

#define PASSWORD "correct horse battery staple"

static struct pgtest *env_pg; /* test_approvals_pg: every server on PostgreSQL */

struct env {
	struct srv s;
	struct client *admin; /* the first admin token: no approve permission */
	struct client *anon;
};

static int
env_up(struct env *e, const char *tag, const char *conf)
{
	char path[PATH_MAX + 16];
	const char *extra[] = {"--config", path, NULL};
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_use_pg(&e->s, env_pg) != 0)
		return -1;
	/* Beside data/, which the server makes at its start. */
	snprintf(path, sizeof(path), "%.*s/rule.conf", (int)(strlen(e->s.dir) - 5), e->s.dir);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	fputs(conf, f);
	fclose(f);
	if (srv_start(&e->s, extra) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->anon = client_new(&e->s, NULL);
	return e->admin && e->anon ? 0 : -1;
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	client_free(e->anon);
	srv_cleanup(&e->s);
}

/* RFC 4648 base32 (no padding) of the otpauth URI's secret into key; its length or -1. */
static int
b32_key(const char *uri, uint8_t *key, int cap)
{
	const char *p = strstr(uri, "secret=");
	unsigned acc = 0, bits = 0;
	int n = 0;

	if (p == NULL)
		return -1;
	for (p += 7; *p != '\0' && *p != '&'; p++) {
		const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
		const char *at = strchr(alpha, *p);

		if (at == NULL || *p == '\0')
			return -1;
		acc = (acc << 5) | (unsigned)(at - alpha);
		bits += 5;
		if (bits >= 8) {
			if (n == cap)
				return -1;
			key[n++] = (uint8_t)(acc >> (bits - 8));
			bits -= 8;
		}
	}
	return n;
}

/* The RFC 6238 code (SHA-1, 30 s, 6 digits) of key now. */
static void
totp_code(const uint8_t *key, int klen, char out[8])
{
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned ml = 0, off;
	uint64_t step = (uint64_t)time(NULL) / 30;
	uint32_t v;

	for (int i = 7; i >= 0; i--, step >>= 8)
		msg[i] = (uint8_t)step;
	HMAC(EVP_sha1(), key, klen, msg, sizeof(msg), mac, &ml);
	off = mac[ml - 1] & 15;
	v = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
	    ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	snprintf(out, 8, "%06u", v % 1000000);
}

/* A console account email (admin) made by the first admin token; 0 or -1. */
static int
account(struct env *e, const char *email, char *location, size_t cap)
{
	char body[512];
	struct resp r;
	int rc;

	snprintf(body, sizeof(body),
		 "{\"email\":\"%s\",\"display_name\":\"A\",\"role\":\"admin\",\"password\":\"%s\"}",
		 email, PASSWORD);
	if (client_req(e->admin, "POST", "/api/v1/admins", body, NULL, &r) != 0)
		return -1;
	rc = r.status == 201 ? 0 : -1;
	if (rc != 0)
		printf("    admin %s: %ld %s\n", email, r.status, r.body ?: "");
	str_copy(location, cap, r.location);
	resp_free(&r);
	return rc;
}

/* Enrolls TOTP for the account at location (its /api/v1/admins/ID); its key into key. */
static int
enroll_totp(struct env *e, const char *location, uint8_t *key, int cap)
{
	char path[160], uri[256];
	struct resp r;
	int rc = -1;

	snprintf(path, sizeof(path), "%s/totp", location);
	if (client_req(e->admin, "POST", path, "{}", NULL, &r) != 0)
		return -1;
	if (r.status == 201 && resp_str(&r, "otpauth_uri", uri, sizeof(uri)) == 0)
		rc = b32_key(uri, key, cap);
	else
		printf("    totp: %ld %s\n", r.status, r.body ?: "");
	resp_free(&r);
	return rc;
}

/*
 * Signs email in (with the TOTP code, when code is not NULL); the session's Cookie and
 * X-CSRF-Token headers into hc and hx. 0 or -1.
 */
static int
sign_in(struct env *e, const char *email, const char *code, char hc[320], char hx[160])
{
	char body[512], csrf[128];
	struct resp r;
	int rc = -1;

	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"%s%s%s}", email,
		 PASSWORD, code ? ",\"totp\":\"" : "", code ? code : "", code ? "\"" : "");
	if (client_req(e->anon, "POST", "/api/v1/session", body, NULL, &r) != 0)
		return -1;
	if (r.status == 200 && resp_str(&r, "csrf_token", csrf, sizeof(csrf)) == 0) {
		snprintf(hc, 320, "Cookie: %.*s", (int)strcspn(r.set_cookie, ";"), r.set_cookie);
		snprintf(hx, 160, "X-CSRF-Token: %s", csrf);
		rc = 0;
	} else {
		printf("    sign-in %s: %ld %s\n", email, r.status, r.body ?: "");
	}
	resp_free(&r);
	return rc;
}

/*
 * A console account email with TOTP, signed in with a code, whose session makes an admin
 * token with the approve permission: its secret into tok. 0 or -1.
 */
static int
approver(struct env *e, const char *email, char *tok, size_t cap)
{
	char location[160], code[8], hc[320], hx[160];
	const char *h[] = {hc, hx, NULL};
	uint8_t key[32];
	struct resp r;
	int klen, rc = -1;

	if (account(e, email, location, sizeof(location)) != 0)
		return -1;
	klen = enroll_totp(e, location, key, sizeof(key));
	if (klen <= 0)
		return -1;
	totp_code(key, klen, code);
	if (sign_in(e, email, code, hc, hx) != 0)
		return -1;
	if (client_req(e->anon, "POST", "/api/v1/tokens",
		       "{\"name\":\"approver\",\"role\":\"admin\",\"permissions\":[\"approve\"]}",
		       h, &r) == 0 &&
	    r.status == 201 && resp_str(&r, "token", tok, cap) == 0)
		rc = 0;
	else
		printf("    approve token: %ld %s\n", r.status, r.body ?: "");
	resp_free(&r);
	return rc;
}

/*
 * A session signed in with the password alone, whose account enrolls TOTP only afterwards:
 * its approval of id must still be refused for the missing second factor. 0 when it is.
 */
static int
late_totp_session_refused(struct env *e, const char *id)
{
	char location[160], hc[320], hx[160], path[160];
	const char *h[] = {hc, hx, NULL};
	uint8_t key[32];
	json_t *j;
	struct resp r;
	int rc = -1;

	if (account(e, "cat@example.com", location, sizeof(location)) != 0 ||
	    sign_in(e, "cat@example.com", NULL, hc, hx) != 0 ||
	    enroll_totp(e, location, key, sizeof(key)) <= 0)
		return -1;
	snprintf(path, sizeof(path), "/api/v1/approvals/%s/approve", id);
	if (client_req(e->anon, "POST", path, "{}", h, &r) != 0)
		return -1;
	j = resp_json(&r);
	if (r.status == 403 && strcmp(json_string_value(json_object_get(j, "type")) ?: "",
				      "urn:cleave:problem:approval-needs-second-factor") == 0)
		rc = 0;
	else
		printf("    password-only session: %ld %s\n", r.status, r.body ?: "");
	json_decref(j);
	resp_free(&r);
	return rc;
}

/* POST as c; status, and the body's JSON into *out when given. */
static long
post(struct client *c, const char *path, const char *body, json_t **out)
{
	struct resp r;
	long st;

	if (client_req(c, "POST", path, body, NULL, &r) != 0)
		return -1;
	st = r.status;
	if (out != NULL)
		*out = resp_json(&r);
	resp_free(&r);
	return st;
}

/* Asks for a command of type on device as c: the approval id on 202 pending_approval. */
static int
ask(struct client *c, const char *device, const char *type, char *id, size_t cap)
{
	char path[128], body[128];
	json_t *j = NULL;
	long st;
	int rc = -1;

	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", device);
	snprintf(body, sizeof(body), "{\"type\":\"%s\",\"reason\":\"<b>stolen</b>\"}", type);
	st = post(c, path, body, &j);
	if (st == 202 && j != NULL &&
	    strcmp(json_string_value(json_object_get(j, "status")) ?: "", "pending_approval") ==
		    0) {
		str_copy(id, cap, json_string_value(json_object_get(j, "approval_id")) ?: "");
		rc = id[0] != '\0' ? 0 : -1;
	}
	if (rc != 0)
		printf("    ask %s: %ld\n", type, st);
	json_decref(j);
	return rc;
}

/* POST /api/v1/approvals/{id}/{what}: status, problem type into type (may be NULL). */
static long
decide(struct client *c, const char *id, const char *what, const char *body, char *type, size_t cap)
{
	char path[160];
	json_t *j = NULL;
	long st;

	snprintf(path, sizeof(path), "/api/v1/approvals/%s/%s", id, what);
	st = post(c, path, body, &j);
	if (type != NULL)
		str_copy(type, cap, json_string_value(json_object_get(j, "type")) ?: "");
	json_decref(j);
	return st;
}

/* How many commands of type the device has (any status), or -1. */
static int
commands_of(struct client *c, const char *device, const char *type)
{
	char path[160];
	long st;
	json_t *j, *v;
	size_t i;
	int n = 0;

	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?limit=100", device);
	j = client_get_json(c, path, &st);
	if (j == NULL)
		return -1;
	json_array_foreach(json_object_get(j, "items"), i, v) n +=
		strcmp(json_string_value(json_object_get(v, "type")) ?: "", type) == 0;
	json_decref(j);
	return n;
}

/* The device's check-in: 1 when it was handed a command of type, 0 when not, -1 on error. */
static int
device_gets(struct env *e, struct device_sim *d, const char *type)
{
	struct resp r;
	json_t *j, *v;
	size_t i;
	int got = 0;

	if (dev_req(d, e->anon, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) != 0)
		return -1;
	if (r.status == 204) {
		resp_free(&r);
		return 0;
	}
	j = resp_json(&r);
	resp_free(&r);
	json_array_foreach(json_object_get(j, "commands"), i, v) got |=
		strcmp(json_string_value(json_object_get(v, "type")) ?: "", type) == 0;
	json_decref(j);
	return got;
}

/* How many audit entries have action and target. */
static int
audited(struct client *c, const char *action, const char *target)
{
	char path[256];
	long st;
	json_t *j = NULL;
	int n;

	snprintf(path, sizeof(path), "/api/v1/audit?action=%s&target=%s", action, target);
	j = client_get_json(c, path, &st);
	n = j != NULL ? (int)json_array_size(json_object_get(j, "items")) : -1;
	json_decref(j);
	return n;
}

#define RULE "two_person_rule = 1\napproval_bulk_size = 2\n"

/*
 * Everyone who may not approve request id tries: the requester (a), another approve token the
 * requester made, a token without the permission, a session signed in without a code, and
 * helpdesk; none may.
 */
static void
refusals(struct env *e, struct client *a, const char *id)
{
	char tok_a2[128], helpdesk[128], type[96];
	struct client *a2, *hd;
	json_t *j = NULL;
	long st;

	/* The requester, another token of the same person, a token without the permission. */
	CHECK(decide(a, id, "approve", "{}", type, sizeof(type)) == 403 &&
		      strcmp(type, "urn:cleave:problem:approval-by-requester") == 0,
	      "the requester approved: %s", type);
	st = post(a, "/api/v1/tokens",
		  "{\"name\":\"second\",\"role\":\"admin\",\"permissions\":[\"approve\"]}", &j);
	CHECK(st == 201, "an approver could not make another approve token: %ld", st);
	str_copy(tok_a2, sizeof(tok_a2), json_string_value(json_object_get(j, "token")) ?: "");
	json_decref(j);
	a2 = client_new(&e->s, tok_a2);
	CHECK(decide(a2, id, "approve", "{}", type, sizeof(type)) == 403 &&
		      strcmp(type, "urn:cleave:problem:approval-by-requester") == 0,
	      "a second token of the requester approved: %s", type);
	CHECK(decide(e->admin, id, "approve", "{}", type, sizeof(type)) == 403 &&
		      strcmp(type, "urn:cleave:problem:approval-needs-second-factor") == 0,
	      "a token without the approve permission approved: %s", type);
	CHECK(late_totp_session_refused(e, id) == 0,
	      "a session signed in without a code approved once its account had TOTP");
	CHECK(admin_token(e->admin, "helpdesk", helpdesk, sizeof(helpdesk)) == 0, "helpdesk");
	hd = client_new(&e->s, helpdesk);
	CHECK(decide(hd, id, "approve", "{}", type, sizeof(type)) == 403 &&
		      strcmp(type, "urn:cleave:problem:forbidden") == 0,
	      "helpdesk approved: %s", type);
	CHECK(post(e->admin, "/api/v1/tokens",
		   "{\"name\":\"x\",\"role\":\"admin\",\"permissions\":[\"approve\"]}",
		   NULL) == 403,
	      "a token without the permission minted an approver");
	client_free(a2);
	client_free(hd);
}

static void
test_wipe_waits_for_second_admin(void)
{
	struct env e;
	struct device_sim d;
	char tok_a[128], tok_b[128], id[64], cmd_path[128];
	struct client *a, *b;
	json_t *j = NULL, *cmd;

	CHECK(env_up(&e, "approvals", RULE) == 0, "server did not start");
	CHECK(approver(&e, "ann@example.com", tok_a, sizeof(tok_a)) == 0, "approver ann");
	CHECK(approver(&e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver bob");
	a = client_new(&e.s, tok_a);
	b = client_new(&e.s, tok_b);
	CHECK(admin_enroll(e.admin, e.anon, &d, "carol@example.com") == 0, "enroll");
	CHECK(ask(a, d.id, "wipe", id, sizeof(id)) == 0, "the wipe did not wait");
	CHECK(commands_of(e.admin, d.id, "wipe") == 0, "a wipe was queued before approval");
	CHECK(device_gets(&e, &d, "wipe") == 0, "the device got a wipe before approval");

	refusals(&e, a, id);
	CHECK(commands_of(e.admin, d.id, "wipe") == 0, "a refused approval queued a wipe");

	/* The second admin: queued, both recorded, the device gets it. */
	snprintf(cmd_path, sizeof(cmd_path), "/api/v1/approvals/%s/approve", id);
	CHECK(post(b, cmd_path, "{}", &j) == 200, "the second admin's approval failed");
	cmd = json_object_get(j, "command");
	CHECK(strcmp(json_string_value(json_object_get(cmd, "type")) ?: "", "wipe") == 0 &&
		      strcmp(json_string_value(json_object_get(cmd, "approval_id")) ?: "", id) ==
			      0 &&
		      json_string_value(json_object_get(cmd, "approved_by")) != NULL &&
		      json_string_value(json_object_get(cmd, "created_by")) != NULL &&
		      strcmp(json_string_value(json_object_get(cmd, "approved_by")),
			     json_string_value(json_object_get(cmd, "created_by"))) != 0,
	      "the command does not record requester and approver");
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(j, "approval"), "status"))
			     ?: "",
		     "approved") == 0,
	      "the request is not approved");
	json_decref(j);
	CHECK(device_gets(&e, &d, "wipe") == 1, "the device did not get the approved wipe");
	CHECK(decide(b, id, "approve", "{}", NULL, 0) == 409, "a second approval was taken");
	CHECK(audited(e.admin, "approval.request", id) == 1 &&
		      audited(e.admin, "approval.approve", id) == 1,
	      "request and approval are not in the audit trail");
	client_free(a);
	client_free(b);
	dev_fini(&d);
	env_down(&e);
}

struct racer {
	struct srv *s;
	const char *tok, *id;
	long status;
};

static void *
race_approve(void *arg)
{
	struct racer *r = arg;
	struct client *c = client_new(r->s, r->tok);

	r->status = c != NULL ? decide(c, r->id, "approve", "{}", NULL, 0) : -1;
	client_free(c);
	return NULL;
}

#define RACERS 6

static void
test_parallel_approvals_queue_one(void)
{
	struct env e;
	struct device_sim d;
	char tok_a[128], tok_b[128], id[64];
	struct racer rc[RACERS];
	pthread_t th[RACERS];
	struct client *a;
	int ok = 0, conflict = 0;

	CHECK(env_up(&e, "approvals-race", RULE) == 0, "server did not start");
	CHECK(approver(&e, "ann@example.com", tok_a, sizeof(tok_a)) == 0, "approver ann");
	CHECK(approver(&e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver bob");
	a = client_new(&e.s, tok_a);
	CHECK(admin_enroll(e.admin, e.anon, &d, "dan@example.com") == 0, "enroll");
	CHECK(ask(a, d.id, "retire", id, sizeof(id)) == 0, "the retire did not wait");
	for (int i = 0; i < RACERS; i++) {
		rc[i] = (struct racer){.s = &e.s, .tok = tok_b, .id = id};
		CHECK(pthread_create(&th[i], NULL, race_approve, &rc[i]) == 0, "thread");
	}
	for (int i = 0; i < RACERS; i++) {
		pthread_join(th[i], NULL);
		ok += rc[i].status == 200;
		conflict += rc[i].status == 409;
	}
	CHECK(ok == 1 && conflict == RACERS - 1, "%d approvals succeeded, %d conflicts", ok,
	      conflict);
	CHECK(commands_of(e.admin, d.id, "retire") == 1, "not exactly one retire was queued");
	client_free(a);
	dev_fini(&d);
	env_down(&e);
}

static void
test_override_and_bulk(void)
{
	struct env e;
	struct device_sim d[3];
	char tok_a[128], tok_b[128], id[64], body[256];
	struct client *a, *b;
	json_t *j = NULL;

	CHECK(env_up(&e, "approvals-override", RULE) == 0, "server did not start");
	CHECK(approver(&e, "ann@example.com", tok_a, sizeof(tok_a)) == 0, "approver ann");
	CHECK(approver(&e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver bob");
	a = client_new(&e.s, tok_a);
	b = client_new(&e.s, tok_b);
	for (int i = 0; i < 3; i++)
		CHECK(admin_enroll(e.admin, e.anon, &d[i], "eve@example.com") == 0, "enroll");

	/* The override: a reason is required; then queued at once and audited loudly. */
	CHECK(ask(a, d[0].id, "wipe", id, sizeof(id)) == 0, "the wipe did not wait");
	CHECK(decide(a, id, "override", "{\"reason\":\"short\"}", NULL, 0) == 422,
	      "an override without a real reason was taken");
	CHECK(decide(a, id, "override", "{\"reason\":\"laptop stolen at the airport, CISO ok\"}",
		     NULL, 0) == 200,
	      "the override failed");
	CHECK(commands_of(e.admin, d[0].id, "wipe") == 1, "the override queued no wipe");
	CHECK(audited(e.admin, "approval.override", id) == 1, "the override is not audited");

	/* A bulk lock of three (above 2) waits; the second admin's approval queues all. */
	snprintf(body, sizeof(body), "{\"type\":\"lock\",\"device_ids\":[\"%s\",\"%s\",\"%s\"]}",
		 d[0].id, d[1].id, d[2].id);
	CHECK(post(a, "/api/v1/commands/bulk", body, &j) == 202, "the big bulk did not wait");
	str_copy(id, sizeof(id), json_string_value(json_object_get(j, "approval_id")) ?: "");
	json_decref(j);
	for (int i = 0; i < 3; i++)
		CHECK(commands_of(e.admin, d[i].id, "lock") == 0, "a lock was queued early");
	CHECK(decide(a, id, "approve", "{}", NULL, 0) == 403, "the requester approved a bulk");
	CHECK(decide(b, id, "approve", "{}", NULL, 0) == 200, "the bulk's approval failed");
	for (int i = 0; i < 3; i++)
		CHECK(commands_of(e.admin, d[i].id, "lock") == 1, "a device got no lock");
	/* Two devices (not above the size) of a routine type: at once. */
	snprintf(body, sizeof(body), "{\"type\":\"refresh\",\"device_ids\":[\"%s\",\"%s\"]}",
		 d[1].id, d[2].id);
	CHECK(post(a, "/api/v1/commands/bulk", body, NULL) == 200, "a small bulk waited");
	/* Reject and cancel end a request; it can then not be approved. */
	CHECK(ask(a, d[1].id, "retire", id, sizeof(id)) == 0, "the retire did not wait");
	CHECK(decide(b, id, "cancel", "{}", NULL, 0) == 403, "another admin canceled");
	CHECK(decide(b, id, "reject", "{\"note\":\"not this one\"}", NULL, 0) == 200, "reject");
	CHECK(decide(a, id, "approve", "{}", NULL, 0) == 409, "a rejected request was approved");
	CHECK(commands_of(e.admin, d[1].id, "retire") == 0, "a rejected retire was queued");
	client_free(a);
	client_free(b);
	for (int i = 0; i < 3; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

static void
test_late_approval_refused(void)
{
	struct env e;
	struct device_sim d;
	char tok_a[128], tok_b[128], id[64], path[128];
	struct client *a, *b;
	long st;
	json_t *j;

	CHECK(env_up(&e, "approvals-expiry", RULE "approval_expiry_seconds = 1\n") == 0,
	      "server did not start");
	CHECK(approver(&e, "ann@example.com", tok_a, sizeof(tok_a)) == 0, "approver ann");
	CHECK(approver(&e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver bob");
	a = client_new(&e.s, tok_a);
	b = client_new(&e.s, tok_b);
	CHECK(admin_enroll(e.admin, e.anon, &d, "fay@example.com") == 0, "enroll");
	CHECK(ask(a, d.id, "wipe", id, sizeof(id)) == 0, "the wipe did not wait");
	sleep(2);
	CHECK(decide(b, id, "approve", "{}", NULL, 0) == 409, "a late approval was taken");
	snprintf(path, sizeof(path), "/api/v1/approvals/%s", id);
	j = client_get_json(e.admin, path, &st);
	CHECK(j != NULL &&
		      strcmp(json_string_value(json_object_get(j, "status")) ?: "", "expired") == 0,
	      "the request is not expired");
	json_decref(j);
	CHECK(commands_of(e.admin, d.id, "wipe") == 0, "an expired request queued a wipe");
	client_free(a);
	client_free(b);
	dev_fini(&d);
	env_down(&e);
}

/* GET the bulk's state into out; 0 or -1. */
static int
bulk_state(struct client *c, const char *id, char *out, size_t cap)
{
	char path[128];
	long st;
	json_t *j;

	snprintf(path, sizeof(path), "/api/v1/commands/bulk/%s", id);
	j = client_get_json(c, path, &st);
	if (j == NULL)
		return -1;
	str_copy(out, cap, json_string_value(json_object_get(j, "state")) ?: "");
	json_decref(j);
	return 0;
}

/* Asks for a bulk of type by filter (owner) of n devices as c: approval and bulk ids. */
static int
ask_filter(struct client *c, const char *type, const char *owner, int n, char *apr, char *bulk)
{
	char body[256];
	json_t *j = NULL;
	long st;
	int rc = -1;

	snprintf(body, sizeof(body),
		 "{\"type\":\"%s\",\"filter\":{\"owner\":\"%s\"},\"expected_count\":%d}", type,
		 owner, n);
	st = post(c, "/api/v1/commands/bulk", body, &j);
	if (st == 202 &&
	    strcmp(json_string_value(json_object_get(j, "status")) ?: "", "pending_approval") ==
		    0 &&
	    strcmp(json_string_value(json_object_get(json_object_get(j, "bulk"), "state")) ?: "",
		   "awaiting") == 0) {
		str_copy(apr, 64, json_string_value(json_object_get(j, "approval_id")) ?: "");
		str_copy(bulk, 64,
			 json_string_value(json_object_get(json_object_get(j, "bulk"), "id"))
				 ?: "");
		rc = 0;
	}
	if (rc != 0)
		printf("    bulk by filter: %ld\n", st);
	json_decref(j);
	return rc;
}

static void
test_bulk_by_filter_waits(void)
{
	struct env e;
	struct device_sim d[3];
	char tok_a[128], tok_b[128], apr[64], bulk[64], state[16] = "";
	struct client *a, *b;

	CHECK(env_up(&e, "approvals-filter", RULE) == 0, "server did not start");
	CHECK(approver(&e, "ann@example.com", tok_a, sizeof(tok_a)) == 0, "approver ann");
	CHECK(approver(&e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver bob");
	a = client_new(&e.s, tok_a);
	b = client_new(&e.s, tok_b);
	for (int i = 0; i < 3; i++)
		CHECK(admin_enroll(e.admin, e.anon, &d[i], "gus@example.com") == 0, "enroll");
	/* Three devices by filter (above 2): recorded awaiting; the worker leaves it alone. */
	CHECK(ask_filter(a, "rekey", "gus@example.com", 3, apr, bulk) == 0,
	      "the bulk by filter did not wait");
	sleep(3); /* the worker looks for running bulks every 2 s */
	CHECK(bulk_state(e.admin, bulk, state, sizeof(state)) == 0 &&
		      strcmp(state, "awaiting") == 0,
	      "the held bulk is %s", state);
	for (int i = 0; i < 3; i++)
		CHECK(commands_of(e.admin, d[i].id, "rekey") == 0, "a held rekey was queued");
	CHECK(decide(a, apr, "approve", "{}", NULL, 0) == 403, "the requester approved a bulk");
	CHECK(decide(b, apr, "approve", "{}", NULL, 0) == 200, "the bulk's approval failed");
	for (int i = 0; i < 100 && strcmp(state, "done") != 0; i++) {
		usleep(100 * 1000);
		CHECK(bulk_state(e.admin, bulk, state, sizeof(state)) == 0, "bulk state");
	}
	CHECK(strcmp(state, "done") == 0, "the approved bulk is %s", state);
	for (int i = 0; i < 3; i++)
		CHECK(commands_of(e.admin, d[i].id, "rekey") == 1, "a device got no rekey");
	/* Rejected: the bulk is canceled with it and nothing is queued. */
	CHECK(ask_filter(a, "retire", "gus@example.com", 3, apr, bulk) == 0,
	      "the retire by filter did not wait");
	CHECK(decide(b, apr, "reject", "{}", NULL, 0) == 200, "reject");
	CHECK(bulk_state(e.admin, bulk, state, sizeof(state)) == 0 &&
		      strcmp(state, "canceled") == 0,
	      "the rejected bulk is %s", state);
	for (int i = 0; i < 3; i++)
		CHECK(commands_of(e.admin, d[i].id, "retire") == 0, "a rejected retire was queued");
	client_free(a);
	client_free(b);
	for (int i = 0; i < 3; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

/* Nobody decides: the server's sweep closes the request and cancels its held bulk. */
static void
test_expired_bulk_canceled(void)
{
	struct env e;
	struct device_sim d;
	char tok_a[128], apr[64], bulk[64], state[16] = "";
	struct client *a;
	int i;

	CHECK(env_up(&e, "approvals-sweep", RULE "approval_expiry_seconds = 1\n") == 0,
	      "server did not start");
	CHECK(approver(&e, "ann@example.com", tok_a, sizeof(tok_a)) == 0, "approver ann");
	a = client_new(&e.s, tok_a);
	CHECK(admin_enroll(e.admin, e.anon, &d, "hal@example.com") == 0, "enroll");
	CHECK(ask_filter(a, "retire", "hal@example.com", 1, apr, bulk) == 0,
	      "the retire by filter did not wait");
	for (i = 0; i < 150 && strcmp(state, "canceled") != 0; i++) { /* sweeps every 5 s */
		usleep(100 * 1000);
		CHECK(bulk_state(e.admin, bulk, state, sizeof(state)) == 0, "bulk state");
	}
	CHECK(strcmp(state, "canceled") == 0, "the expired request's bulk is %s", state);
	CHECK(audited(e.admin, "approval.expire", apr) == 1, "the expiry is not audited");
	CHECK(commands_of(e.admin, d.id, "retire") == 0, "an expired retire was queued");
	client_free(a);
	dev_fini(&d);
	env_down(&e);
}

/* The receiver's i-th message, when it is of type, signed and names the approval id. */
static int
hook_says(struct hookrx *rx, size_t i, const char *type, const char *id)
{
	struct hookrx_msg m;

	if (hookrx_get(rx, i, &m) != 0)
		return 0;
	printf("    event %zu: %s sig_ok=%d %.120s\n", i, m.type, m.sig_ok, m.data);
	return strcmp(m.type, type) == 0 && m.sig_ok && strstr(m.data, id) != NULL;
}

static void
test_approval_events_reach_webhook(void)
{
	struct env e;
	struct device_sim d;
	struct hookrx *rx = hookrx_new();
	char tok[128], id[64], body[256], secret[128] = "";
	struct client *a;
	struct resp r;

	CHECK(rx != NULL && hookrx_up(rx) == 0, "webhook receiver");
	CHECK(env_up(&e, "approvals-hook", RULE) == 0, "server did not start");
	snprintf(body, sizeof(body),
		 "{\"url\":\"%s\",\"events\":[\"approval.requested\",\"approval.approved\"]}",
		 hookrx_url(rx));
	CHECK(client_req(e.admin, "POST", "/api/v1/webhooks", body, NULL, &r) == 0 &&
		      r.status == 201 && resp_str(&r, "secret", secret, sizeof(secret)) == 0,
	      "subscription: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	hookrx_set_secret(rx, secret);
	CHECK(approver(&e, "ann@example.com", tok, sizeof(tok)) == 0, "approver ann");
	a = client_new(&e.s, tok);
	CHECK(admin_enroll(e.admin, e.anon, &d, "carol@example.com") == 0, "enroll");
	/* ann was made by the requester's token, just before the request (the same second, as
	 * likely as not): she may approve it, since creation times are compared in ms. */
	CHECK(ask(e.admin, d.id, "wipe", id, sizeof(id)) == 0, "the wipe did not wait");
	CHECK(decide(a, id, "approve", "{}", body, sizeof(body)) == 200,
	      "the second admin's approval failed: %s", body);
	CHECK(hookrx_wait_ok(rx, 2, 30) == 0, "the receiver got %zu events, not 2",
	      hookrx_count_ok(rx));
	CHECK(hook_says(rx, 0, "approval.requested", id) &&
		      hook_says(rx, 1, "approval.approved", id),
	      "not approval.requested then approval.approved, signed, for %s", id);
	client_free(a);
	dev_fini(&d);
	env_down(&e);
	hookrx_free(rx);
}

static const struct t_case approval_cases[] = {
	{"wipe_waits_for_second_admin", test_wipe_waits_for_second_admin},
	{"parallel_approvals_queue_one", test_parallel_approvals_queue_one},
	{"override_and_bulk", test_override_and_bulk},
	{"late_approval_refused", test_late_approval_refused},
	{"bulk_by_filter_waits", test_bulk_by_filter_waits},
	{"expired_bulk_canceled", test_expired_bulk_canceled},
	{"approval_events_reach_webhook", test_approval_events_reach_webhook},
};

#ifndef TEST_APPROVALS_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(approval_cases, ARRAY_SIZE(approval_cases), argc, argv);
}
#endif

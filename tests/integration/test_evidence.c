/*
 * "Verified" and "compliant" mean what they say (issue 8 §3, §9): against the real server, a
 * device tries what a dishonest or broken one would. A receipt without the checks its type
 * requires leaves the command unverified with the reason; a result its own receipt contradicts
 * is refused; a completion without a receipt never moves the corporate state; the agent's own
 * words about the corporate state and key epoch change nothing, while a signed attestation
 * does; an enrollment nonce works only with the token that fetched it; the same hypervisor
 * enrolling again supersedes its old record.
 */
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "testlib.h"
#include "util.h"

struct env {
	struct srv s;
	struct client *admin, *dc;
	struct device_sim d;
};

static int
up(struct env *e, const char *tag)
{
	char tok[128];
	struct resp r;
	int ok;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_start(&e->s, NULL) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->dc = client_new(&e->s, NULL);
	if (dev_init(&e->d) != 0 || admin_etoken(e->admin, "nia@example.com", 1, tok, 128) != 0 ||
	    dev_enroll(&e->d, e->dc, tok, &r) != 0)
		return -1;
	ok = r.status == 201 ? 0 : -1;
	resp_free(&r);
	return ok;
}

static void
down(struct env *e)
{
	client_free(e->admin);
	client_free(e->dc);
	dev_fini(&e->d);
	srv_stop(&e->s, SIGTERM);
	srv_cleanup(&e->s);
}

/* GET prefix + id as admin, parsed (caller decrefs); NULL unless 200. */
static json_t *
admin_get(struct env *e, const char *prefix, const char *id)
{
	char path[256];
	struct resp r;
	json_t *j = NULL;

	snprintf(path, sizeof(path), "%s%s", prefix, id);
	if (client_req(e->admin, "GET", path, NULL, NULL, &r) == 0 && r.status == 200)
		j = resp_json(&r);
	resp_free(&r);
	return j;
}

static const char *
jpath(json_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j, a);
	const char *s;

	if (b != NULL)
		v = json_object_get(v, b);
	s = json_string_value(v);
	return s ? s : "";
}

/* 1 when the device's compliance reasons include text. */
static int
has_reason(json_t *dev, const char *text)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(json_object_get(dev, "compliance"), "reasons"), i,
			   v) if (strstr(json_string_value(v), text) != NULL) return 1;
	return 0;
}

/* Queues a command and takes it at a check-in: its ticket into tk. 0 or -1. */
static int
deliver(struct env *e, const char *type, char id[64], uint8_t tk[TICKET_LEN])
{
	struct resp r;
	json_t *j, *c, *v;
	size_t i;
	int rc = -1;

	if (admin_command(e->admin, e->d.id, type, id, 64) != 202 ||
	    dev_req(&e->d, e->dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) != 0)
		return -1;
	j = resp_json(&r);
	resp_free(&r);
	c = json_object_get(j, "commands");
	json_array_foreach(c, i, v)
	{
		const char *t = jpath(v, "ticket", NULL);

		if (strcmp(jpath(v, "id", NULL), id) == 0 &&
		    b64_decode(tk, TICKET_LEN, t, strlen(t)) == TICKET_LEN)
			rc = 0;
	}
	json_decref(j);
	return rc;
}

/* Posts a result; receipt may be NULL. Returns the HTTP status; body into out when given. */
static long
post_result(struct env *e, const char *id, const char *status, const uint8_t *receipt, char *out,
	    size_t cap)
{
	char path[128], body[1024], b[600];
	struct resp r;
	long st = -1;

	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	if (receipt != NULL) {
		b64_encode(b, sizeof(b), receipt, RECEIPT_LEN);
		snprintf(body, sizeof(body), "{\"status\":\"%s\",\"receipt\":\"%s\"}", status, b);
	} else {
		snprintf(body, sizeof(body), "{\"status\":\"%s\"}", status);
	}
	if (dev_req(&e->d, e->dc, "POST", path, body, 0, &r) == 0) {
		st = r.status;
		if (out != NULL)
			str_copy(out, cap, r.body ? r.body : "");
	}
	resp_free(&r);
	return st;
}

/* A receipt for tk as cleave-hv would sign it, then changed by edit before signing. */
static void
receipt_with(struct env *e, const uint8_t tk[TICKET_LEN], int32_t result, uint32_t drop,
	     uint8_t out[RECEIPT_LEN])
{
	struct receipt rc;

	dev_receipt(&e->d, tk, result, out);
	receipt_decode(out, RECEIPT_LEN, &rc);
	rc.checks_run &= ~drop;
	rc.checks_passed &= ~drop;
	receipt_encode(&rc, out);
	ed25519_key_sign(e->d.hv, out, RECEIPT_BODY_LEN, out + RECEIPT_BODY_LEN);
}

static void
test_receipts_prove_or_do_not(void)
{
	struct env e;
	char id[64], body[1024];
	uint8_t tk[TICKET_LEN], rc[RECEIPT_LEN];
	json_t *j;

	CHECK(up(&e, "evidence-receipts") == 0, "server and device");

	/* a wipe receipt that does not show the fresh volume: completed, not verified */
	CHECK(deliver(&e, "wipe", id, tk) == 0, "wipe delivered");
	receipt_with(&e, tk, 0, CHECK_FRESH_VOLUME, rc);
	CHECK(post_result(&e, id, "completed", rc, body, sizeof(body)) == 200, "%s", body);
	j = admin_get(&e, "/api/v1/commands/", id);
	CHECK(j && strcmp(jpath(j, "status", NULL), "completed") == 0 &&
		      json_is_false(json_object_get(j, "verified")) &&
		      strstr(jpath(j, "unverified_reason", NULL), "FRESH_VOLUME") != NULL,
	      "unverified wipe: %s", j ? jpath(j, "unverified_reason", NULL) : "?");
	json_decref(j);
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && strcmp(jpath(j, "corporate_state", "reported"), "wiped") != 0 &&
		      json_is_false(json_object_get(json_object_get(j, "compliance"), "compliant")),
	      "an unproven wipe must not make the device look wiped");
	json_decref(j);

	/* a lock whose receipt says it failed cannot be reported completed, nor the reverse */
	CHECK(deliver(&e, "lock", id, tk) == 0, "lock delivered");
	dev_receipt(&e.d, tk, -5, rc);
	CHECK(post_result(&e, id, "completed", rc, body, sizeof(body)) == 422, "%s", body);
	CHECK(strstr(body, "receipt says") != NULL, "%s", body);
	dev_receipt(&e.d, tk, 0, rc);
	CHECK(post_result(&e, id, "failed", rc, body, sizeof(body)) == 422, "%s", body);
	j = admin_get(&e, "/api/v1/commands/", id);
	CHECK(j && strcmp(jpath(j, "status", NULL), "delivered") == 0, "the lock stays open");
	json_decref(j);
	j = admin_get(&e, "/api/v1/audit?action=command.receipt&target=", id);
	CHECK(j && json_array_size(json_object_get(j, "items")) == 2, "both refusals audited");
	json_decref(j);

	/* completed without a receipt: accepted, unverified, the state does not move */
	CHECK(post_result(&e, id, "completed", NULL, body, sizeof(body)) == 200, "%s", body);
	j = admin_get(&e, "/api/v1/commands/", id);
	CHECK(j && json_is_false(json_object_get(j, "verified")) &&
		      strstr(jpath(j, "unverified_reason", NULL), "no receipt") != NULL,
	      "lock without receipt");
	json_decref(j);
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && strcmp(jpath(j, "corporate_state", "reported"), "active") == 0,
	      "a claimed lock must not move the state");
	json_decref(j);
	/* the receipt arriving later completes the proof */
	CHECK(post_result(&e, id, "completed", rc, body, sizeof(body)) == 200, "%s", body);
	j = admin_get(&e, "/api/v1/commands/", id);
	CHECK(j && json_is_true(json_object_get(j, "verified")), "late receipt verifies");
	json_decref(j);
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && strcmp(jpath(j, "corporate_state", "reported"), "locked") == 0,
	      "a proven lock moves the state");
	json_decref(j);
	down(&e);
}

/* The args of the policy ticket the hypervisor holds (all zero: none yet). */
static uint64_t hv_policy[4];

/* An attestation of d's hypervisor at check-in: state, epoch, pinned to owner (or not). */
static void
checkin_attestation(struct env *e, uint16_t state, uint64_t epoch, int pinned, const char *guest,
		    char *b64, size_t cap)
{
	struct attestation a;
	uint8_t buf[ATTEST_LEN];

	memset(&a, 0, sizeof(a));
	crypto_policy_digest(hv_policy, a.policy_digest);
	a.state = state;
	ed25519_key_public(e->d.hv, a.hv_key);
	crypto_sha256(guest, strlen(guest), a.measurement);
	if (pinned)
		memcpy(a.owner_key, e->d.ticket_key, 32);
	a.key_epoch = epoch;
	a.time_ms = (uint64_t)time(NULL) * 1000;
	attest_encode(&a, buf);
	ed25519_key_sign(e->d.hv, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN);
	b64_encode(b64, cap, buf, sizeof(buf));
}

static long
checkin_with(struct env *e, const char *state_json)
{
	char body[1024];
	struct resp r;
	long st = -1;

	snprintf(body, sizeof(body), "{\"wait\":0,\"state\":%s}", state_json);
	if (dev_req(&e->d, e->dc, "POST", "/device/v1/checkin", body, 0, &r) == 0)
		st = r.status;
	resp_free(&r);
	return st;
}

static void
test_claims_are_not_evidence(void)
{
	struct env e;
	char att[400], st[600];
	json_t *j;

	CHECK(up(&e, "evidence-claims") == 0, "server and device");
	/* the agent's own words: nothing moves */
	CHECK(checkin_with(&e, "{\"corporate_state\":\"locked\",\"key_epoch\":9}") / 100 == 2,
	      "check-in");
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && strcmp(jpath(j, "corporate_state", "reported"), "active") == 0 &&
		      json_integer_value(
			      json_object_get(json_object_get(j, "hypervisor"), "key_epoch")) == 1,
	      "invented state must change nothing");
	json_decref(j);

	/* the hypervisor's signed word: locked, epoch 3 */
	checkin_attestation(&e, HV_STATE_LOCKED, 3, 1, "test guest image", att, sizeof(att));
	snprintf(st, sizeof(st), "{\"attestation\":\"%s\"}", att);
	CHECK(checkin_with(&e, st) / 100 == 2, "check-in");
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && strcmp(jpath(j, "corporate_state", "reported"), "locked") == 0 &&
		      json_integer_value(json_object_get(json_object_get(j, "hypervisor"),
							 "key_epoch")) == 3 &&
		      strcmp(jpath(j, "hypervisor", "attestation"), "ok") == 0,
	      "attested state");
	json_decref(j);

	/* a policy: the agent's word that it applied it is not enough, the hypervisor's is */
	{
		uint8_t tk[TICKET_LEN];
		char pid[64];
		struct ticket t;
		struct resp r2;
		json_t *cmds, *v;
		size_t i;

		CHECK(client_req(e.admin, "PUT", "/api/v1/policies/std",
				 "{\"offline\":{\"lock_after_hours\":24}}", NULL, &r2) == 0 &&
			      r2.status == 201,
		      "policy");
		resp_free(&r2);
		CHECK(dev_req(&e.d, e.dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r2) ==
			      0,
		      "tx");
		cmds = resp_json(&r2);
		resp_free(&r2);
		pid[0] = '\0';
		json_array_foreach(json_object_get(cmds, "commands"), i, v)
		{
			const char *tb = jpath(v, "ticket", NULL);

			if (strcmp(jpath(v, "type", NULL), "policy") == 0 &&
			    b64_decode(tk, TICKET_LEN, tb, strlen(tb)) == TICKET_LEN &&
			    ticket_decode(tk, TICKET_LEN, &t) == 0) {
				str_copy(pid, sizeof(pid), jpath(v, "id", NULL));
				memcpy(hv_policy, t.args, sizeof(hv_policy));
			}
		}
		json_decref(cmds);
		CHECK(pid[0] != '\0', "the policy command reached the device");
		/* claims std v1 applied, but its hypervisor still holds no policy */
		uint64_t held[4];

		memcpy(held, hv_policy, sizeof(held));
		memset(hv_policy, 0, sizeof(hv_policy));
		checkin_attestation(&e, HV_STATE_LOCKED, 3, 1, "test guest image", att,
				    sizeof(att));
		snprintf(st, sizeof(st),
			 "{\"policy_name\":\"std\",\"policy_version\":1,\"attestation\":\"%s\"}",
			 att);
		CHECK(checkin_with(&e, st) / 100 == 2, "check-in");
		j = admin_get(&e, "/api/v1/devices/", e.d.id);
		CHECK(j && has_reason(j, "policy not applied"), "a claimed policy is not applied");
		json_decref(j);
		/* now it attests the policy's digest: applied */
		memcpy(hv_policy, held, sizeof(held));
		checkin_attestation(&e, HV_STATE_LOCKED, 3, 1, "test guest image", att,
				    sizeof(att));
		snprintf(st, sizeof(st),
			 "{\"policy_name\":\"std\",\"policy_version\":1,\"attestation\":\"%s\"}",
			 att);
		CHECK(checkin_with(&e, st) / 100 == 2, "check-in");
		j = admin_get(&e, "/api/v1/devices/", e.d.id);
		CHECK(j && !has_reason(j, "policy not applied"), "an attested policy is applied");
		json_decref(j);
	}

	/* another guest image: a mismatch, and the state stays what was proven */
	checkin_attestation(&e, HV_STATE_ACTIVE, 3, 1, "another image", att, sizeof(att));
	snprintf(st, sizeof(st), "{\"attestation\":\"%s\"}", att);
	CHECK(checkin_with(&e, st) / 100 == 2, "check-in");
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && has_reason(j, "attestation mismatch") &&
		      strcmp(jpath(j, "corporate_state", "reported"), "locked") == 0,
	      "mismatch");
	json_decref(j);

	/* a hypervisor that no longer holds our key was wiped and released: never compliant */
	checkin_attestation(&e, HV_STATE_ACTIVE, 4, 0, "test guest image", att, sizeof(att));
	snprintf(st, sizeof(st), "{\"attestation\":\"%s\"}", att);
	CHECK(checkin_with(&e, st) / 100 == 2, "check-in");
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && strcmp(jpath(j, "corporate_state", "reported"), "wiped") == 0 &&
		      has_reason(j, "the corporate half was wiped"),
	      "released hypervisor");
	json_decref(j);
	down(&e);
}

static void
test_nonce_bound_and_reenroll_supersedes(void)
{
	struct env e;
	struct device_sim again;
	char ta[128], tb[128], body[256], nb[64], oldid[32];
	struct resp r;
	json_t *j;

	CHECK(up(&e, "evidence-enroll") == 0, "server and device");
	str_copy(oldid, sizeof(oldid), e.d.id);

	/* a nonce fetched with token A does not work with token B */
	CHECK(admin_etoken(e.admin, "nia@example.com", 1, ta, sizeof(ta)) == 0 &&
		      admin_etoken(e.admin, "nia@example.com", 1, tb, sizeof(tb)) == 0,
	      "tokens");
	snprintf(body, sizeof(body), "{\"enrollment_token\":\"%s\"}", ta);
	CHECK(client_req(e.dc, "POST", "/device/v1/enroll/nonce", body, NULL, &r) == 0 &&
		      r.status == 200 && resp_str(&r, "nonce", nb, sizeof(nb)) == 0,
	      "nonce");
	resp_free(&r);
	{
		uint8_t nonce[32], att[ATTEST_LEN], pub[32], hv[32];
		char big[2048], ab[400], pb[64], hb[64];

		b64_decode(nonce, sizeof(nonce), nb, strlen(nb));
		dev_attest(&e.d, nonce, att);
		ed25519_key_public(e.d.key, pub);
		ed25519_key_public(e.d.hv, hv);
		b64_encode(ab, sizeof(ab), att, sizeof(att));
		b64_encode(pb, sizeof(pb), pub, 32);
		b64_encode(hb, sizeof(hb), hv, 32);
		snprintf(big, sizeof(big),
			 "{\"enrollment_token\":\"%s\",\"nonce\":\"%s\",\"device_key\":\"%s\","
			 "\"hypervisor_key\":\"%s\",\"attestation\":\"%s\",\"inventory\":{"
			 "\"model\":\"m\",\"os\":\"o\",\"agent_version\":\"0.1.0\"}}",
			 tb, nb, pb, hb, ab);
		CHECK(client_req(e.dc, "POST", "/device/v1/enroll", big, NULL, &r) == 0, "tx");
		CHECK_STATUS(r, 422);
		CHECK(strstr(r.body, "another enrollment token") != NULL, "%s", r.body);
		resp_free(&r);
	}

	/* the same hypervisor (after a wipe released it) enrolls again with a new agent key */
	CHECK(dev_init(&again) == 0, "keys");
	ed25519_key_free(again.hv);
	again.hv = e.d.hv; /* borrowed: the same hypervisor */
	CHECK(dev_enroll(&again, e.dc, ta, &r) == 0 && r.status == 201, "re-enroll: %ld", r.status);
	resp_free(&r);
	j = admin_get(&e, "/api/v1/devices/", oldid);
	CHECK(j && strcmp(jpath(j, "status", NULL), "retired") == 0 &&
		      strcmp(jpath(j, "superseded_by", NULL), again.id) == 0 &&
		      has_reason(j, "superseded"),
	      "the old record is superseded");
	json_decref(j);
	j = admin_get(&e, "/api/v1/devices/", again.id);
	CHECK(j && strcmp(jpath(j, "replaces", NULL), oldid) == 0, "the new record links back");
	json_decref(j);
	j = admin_get(&e, "/api/v1/devices?status=active&owner=nia%40example.com", "");
	CHECK(j && json_array_size(json_object_get(j, "items")) == 1, "one active record");
	json_decref(j);
	again.hv = NULL;
	dev_fini(&again);
	down(&e);
}

/* How many device.auth rows the audit log holds. */
static size_t
auth_rows(struct env *e)
{
	json_t *j = admin_get(e, "/api/v1/audit?action=device.auth&limit=200", "");
	size_t n = j ? json_array_size(json_object_get(j, "items")) : 0;

	json_decref(j);
	return n;
}

/*
 * A flood of unsigned requests from one address: counted, audited in aggregate, then answered
 * 429 at once; the audit log does not grow with the flood, and nothing is lost at shutdown.
 */
static void
test_refusal_flood_is_bounded(void)
{
	const char *const extra[] = {"--config", NULL, NULL};
	struct env e;
	char conf[PATH_MAX + 16];
	struct resp r;
	int n401 = 0, n429 = 0, other = 0;
	FILE *f;
	json_t *j;

	memset(&e, 0, sizeof(e));
	CHECK(srv_init(&e.s, "evidence-flood") == 0, "dir");
	snprintf(conf, sizeof(conf), "%s", e.s.log); /* beside the server log */
	str_copy(strrchr(conf, '/'), 16, "/cleave.conf");
	f = fopen(conf, "w");
	CHECK(f != NULL, "config");
	fputs("refusal_limit = 200\n", f);
	fclose(f);
	((const char **)extra)[1] = conf;
	CHECK(srv_start(&e.s, extra) == 0, "server did not start");
	e.admin = client_new(&e.s, e.s.admin);
	e.dc = client_new(&e.s, NULL);
	for (int i = 0; i < 300; i++) {
		CHECK(client_req(e.dc, "POST", "/device/v1/checkin", "{}", NULL, &r) == 0, "tx");
		n401 += r.status == 401;
		n429 += r.status == 429;
		other += r.status != 401 && r.status != 429;
		resp_free(&r);
	}
	CHECK(n401 == 200 && n429 == 100 && other == 0, "401: %d, 429: %d, other: %d", n401, n429,
	      other);
	/* an admin with a valid token from the same address still gets in */
	CHECK(auth_rows(&e) == 1, "one audit row for the flood so far, got %zu", auth_rows(&e));
	/* a token guesser from the same address is refused at once too */
	client_set_bearer(e.dc, "clv_at_guess");
	CHECK(client_req(e.dc, "GET", "/api/v1/devices", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 429);
	resp_free(&r);
	CHECK(srv_stop(&e.s, SIGTERM) == 0 && srv_start(&e.s, extra) == 0, "restart");
	client_free(e.admin);
	e.admin = client_new(&e.s, e.s.admin);
	j = admin_get(&e, "/api/v1/audit?action=device.auth&limit=200", "");
	CHECK(j && json_array_size(json_object_get(j, "items")) == 2 &&
		      strstr(jpath(json_array_get(json_object_get(j, "items"), 1), "detail", NULL),
			     "199 more refused") != NULL,
	      "the rest of the flood in one row");
	json_decref(j);
	client_free(e.admin);
	client_free(e.dc);
	srv_stop(&e.s, SIGTERM);
	srv_cleanup(&e.s);
}

/* Open rekey commands of the device made by the server itself. */
static size_t
system_rekeys(struct env *e, const char *status)
{
	char prefix[160];
	json_t *j, *v;
	size_t i, n = 0;

	snprintf(prefix, sizeof(prefix), "/api/v1/devices/%s/commands%s", e->d.id, status);
	j = admin_get(e, prefix, "");
	json_array_foreach(json_object_get(j, "items"), i, v) n +=
		strcmp(jpath(v, "type", NULL), "rekey") == 0 &&
		strcmp(jpath(v, "created_by", NULL), "system") == 0;
	json_decref(j);
	return n;
}

/* Restarts the server after moving the device's key epoch days into the past. */
static int
age_key_epoch(struct env *e, int days)
{
	char path[PATH_MAX + 16], sql[160];
	sqlite3 *db;
	int rc;

	if (srv_stop(&e->s, SIGTERM) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/cleave.db", e->s.dir);
	snprintf(sql, sizeof(sql), "UPDATE devices SET epoch_since = epoch_since - %d",
		 days * 86400);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		return -1;
	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	sqlite3_close(db);
	if (rc != SQLITE_OK || srv_start(&e->s, NULL) != 0)
		return -1;
	client_free(e->admin);
	client_free(e->dc);
	e->admin = client_new(&e->s, e->s.admin);
	e->dc = client_new(&e->s, NULL);
	return 0;
}

/* key_rotation_days: the server queues a rekey itself; its receipt resets the clock. */
static void
test_key_rotation_is_scheduled(void)
{
	struct env e;
	char id[64], body[512];
	uint8_t tk[TICKET_LEN], rc[RECEIPT_LEN];
	struct resp r;
	json_t *j, *v;
	size_t i;
	int found = 0;

	CHECK(up(&e, "evidence-rotate") == 0, "server and device");
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/std",
			 "{\"encryption\":{\"key_rotation_days\":30}}", NULL, &r) == 0 &&
		      r.status / 100 == 2,
	      "policy");
	resp_free(&r);
	CHECK(system_rekeys(&e, "") == 0, "a fresh key is not rotated");
	CHECK(age_key_epoch(&e, 31) == 0, "restart with a 31-day-old key epoch");
	for (int t = 0; t < 100 && system_rekeys(&e, "?status=queued") == 0; t++)
		usleep(50 * 1000);
	CHECK(system_rekeys(&e, "?status=queued") == 1, "the server queued one rekey");
	/* the device carries it out; the receipt moves the key epoch and its clock */
	CHECK(dev_req(&e.d, e.dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0, "tx");
	j = resp_json(&r);
	resp_free(&r);
	json_array_foreach(json_object_get(j, "commands"), i, v)
	{
		const char *t = jpath(v, "ticket", NULL);

		if (strcmp(jpath(v, "type", NULL), "rekey") == 0 &&
		    b64_decode(tk, TICKET_LEN, t, strlen(t)) == TICKET_LEN) {
			str_copy(id, sizeof(id), jpath(v, "id", NULL));
			found = 1;
		}
	}
	json_decref(j);
	CHECK(found, "the rekey reached the device");
	dev_receipt(&e.d, tk, 0, rc);
	CHECK(post_result(&e, id, "completed", rc, body, sizeof(body)) == 200, "%s", body);
	j = admin_get(&e, "/api/v1/devices/", e.d.id);
	CHECK(j && json_integer_value(
			   json_object_get(json_object_get(j, "hypervisor"), "key_epoch")) == 2,
	      "the rekey moved the key epoch");
	json_decref(j);
	/* a scan after a restart finds nothing more to do */
	CHECK(age_key_epoch(&e, 0) == 0, "restart");
	usleep(1500 * 1000);
	CHECK(system_rekeys(&e, "") == 1, "no second rekey");
	down(&e);
}

/* A request accepted just before a crash is not accepted again after the restart. */
static void
test_no_replay_after_crash(void)
{
	struct env e;
	char hdrs[3][600];
	const char *h[4];
	const char *body = "{\"wait\":0}";
	struct resp r;

	CHECK(up(&e, "evidence-replay") == 0, "server and device");
	dev_sign(&e.d, "POST", "/device/v1/checkin", body, time(NULL), 1000000, hdrs, h);
	CHECK(client_req(e.dc, "POST", "/device/v1/checkin", body, h, &r) == 0, "tx");
	CHECK(r.status / 100 == 2, "first: %ld", r.status);
	resp_free(&r);
	/* kill -9 at once: the once-a-second flush of nonces to the store has not run */
	kill(e.s.pid, SIGKILL);
	srv_stop(&e.s, SIGKILL);
	CHECK(srv_start(&e.s, NULL) == 0, "restart");
	client_free(e.dc);
	e.dc = client_new(&e.s, NULL);
	CHECK(client_req(e.dc, "POST", "/device/v1/checkin", body, h, &r) == 0, "tx");
	CHECK(r.status == 401 && strstr(r.body, "replay") != NULL, "replayed after a crash: %ld %s",
	      r.status, r.body ? r.body : "");
	resp_free(&r);
	/* the device itself goes on with larger nonces */
	e.d.nonce = 1000001;
	CHECK(dev_req(&e.d, e.dc, "POST", "/device/v1/checkin", body, 0, &r) == 0, "tx");
	CHECK(r.status / 100 == 2, "next: %ld", r.status);
	resp_free(&r);
	down(&e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"receipts_prove_or_do_not", test_receipts_prove_or_do_not},
		{"claims_are_not_evidence", test_claims_are_not_evidence},
		{"nonce_bound_and_reenroll_supersedes", test_nonce_bound_and_reenroll_supersedes},
		{"refusal_flood_is_bounded", test_refusal_flood_is_bounded},
		{"key_rotation_is_scheduled", test_key_rotation_is_scheduled},
		{"no_replay_after_crash", test_no_replay_after_crash},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

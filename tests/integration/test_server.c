/*
 * Integration tests of cleave-server: each case starts the real binary on 127.0.0.1 with a fresh
 * data directory and talks HTTPS to it with libcurl, as an admin script and as enrolled devices
 * would. Where a case needs a state the API cannot make quickly (an expired token, a tampered
 * audit row) it edits the real SQLite file, as an attacker or the passage of time would.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "b64.h"
#include "pgtest.h"
#include "testlib.h"
#include "util.h"

/* A started server with an admin client; every case begins with one. */
struct env {
	struct srv s;
	struct client *admin;
};

/*
 * When set (test_server_pg.c), every server runs on PostgreSQL: a fresh database of this
 * cluster per case instead of SQLite in its data directory.
 */
static struct pgtest *env_pg;

static int
env_up(struct env *e, const char *tag)
{
	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_use_pg(&e->s, env_pg) != 0)
		return -1;
	if (srv_start(&e->s, NULL) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	e->admin = NULL;
	srv_cleanup(&e->s);
}

static int
db_exec(struct env *e, const char *sql)
{
	return srv_db_exec(&e->s, sql);
}

/* Enrolls a fresh simulated device; returns 0 when the server said 201. */
static int
enroll_one(struct env *e, struct client *dc, struct device_sim *d, const char *owner)
{
	char tok[128];
	struct resp r;
	int ok;

	if (dev_init(d) != 0 || admin_etoken(e->admin, owner, 1, tok, sizeof(tok)) != 0)
		return -1;
	if (dev_enroll(d, dc, tok, &r) != 0)
		return -1;
	ok = r.status == 201 ? 0 : -1;
	if (ok != 0)
		printf("    enroll: HTTP %ld %s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	return ok;
}

static json_t *
get_json(struct client *c, const char *path, long *status)
{
	struct resp r;
	json_t *j = NULL;

	*status = -1;
	if (client_req(c, "GET", path, NULL, NULL, &r) == 0) {
		*status = r.status;
		j = resp_json(&r);
	}
	resp_free(&r);
	return j;
}

static const char *
jstr(json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v ? v : "";
}

/* ---- enrollment ---- */

static void
test_enroll_token_states(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d1, d2, d3, d4;
	char tok[128], tok2[128], id[64];
	struct resp r;
	char sql[512];

	CHECK(env_up(&e, "enroll") == 0, "server did not start");
	dc = client_new(&e.s, NULL);

	/* valid: two uses allowed */
	CHECK(admin_etoken(e.admin, "alice@example.com", 2, tok, sizeof(tok)) == 0, "etoken");
	dev_init(&d1);
	dev_init(&d2);
	dev_init(&d3);
	dev_init(&d4);
	CHECK(dev_enroll(&d1, dc, tok, &r) == 0, "transport");
	CHECK_STATUS(r, 201);
	CHECK(d1.id[0] != '\0', "no device id");
	resp_free(&r);
	CHECK(dev_enroll(&d2, dc, tok, &r) == 0, "transport");
	CHECK_STATUS(r, 201);
	resp_free(&r);

	/* exhausted */
	CHECK(dev_enroll(&d3, dc, tok, &r) == 0, "transport");
	CHECK_STATUS(r, 403);
	CHECK(strstr(r.body, "used up") != NULL, "detail should say used up: %s", r.body);
	resp_free(&r);

	/* revoked */
	CHECK(client_req(e.admin, "POST", "/api/v1/enrollment-tokens",
			 "{\"owner\":\"bob@example.com\"}", NULL, &r) == 0,
	      "transport");
	CHECK_STATUS(r, 201);
	resp_str(&r, "token", tok2, sizeof(tok2));
	resp_str(&r, "id", id, sizeof(id));
	CHECK(strstr(r.body, "\"enroll_url\":\"https://127.0.0.1:") != NULL, "enroll_url: %s",
	      r.body);
	resp_free(&r);
	{
		char path[128];

		snprintf(path, sizeof(path), "/api/v1/enrollment-tokens/%s", id);
		CHECK(client_req(e.admin, "DELETE", path, NULL, NULL, &r) == 0, "transport");
		CHECK_STATUS(r, 204);
		resp_free(&r);
	}
	CHECK(dev_enroll(&d3, dc, tok2, &r) == 0, "transport");
	CHECK_STATUS(r, 403);
	CHECK(strstr(r.body, "revoked") != NULL, "detail should say revoked: %s", r.body);
	resp_free(&r);

	/* expired: the clock moves past expires_at (edit the row as time would) */
	CHECK(admin_etoken(e.admin, "carol@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	snprintf(sql, sizeof(sql),
		 "UPDATE enrollment_tokens SET expires_at = %lld WHERE owner = 'carol@example.com'",
		 (long long)time(NULL) - 10);
	CHECK(db_exec(&e, sql) == 0, "db edit");
	CHECK(dev_enroll(&d4, dc, tok, &r) == 0, "transport");
	CHECK_STATUS(r, 403);
	CHECK(strstr(r.body, "expired") != NULL, "detail should say expired: %s", r.body);
	resp_free(&r);

	/* unknown token */
	CHECK(dev_enroll(&d4, dc, "clv_et_nope", &r) == 0, "transport");
	CHECK_STATUS(r, 403);
	resp_free(&r);

	/* device list shows the two, owned by alice */
	{
		long st;
		json_t *j = get_json(e.admin, "/api/v1/devices?owner=alice%40example.com", &st);

		CHECK(st == 200 && j, "list devices: %ld", st);
		CHECK(json_array_size(json_object_get(j, "items")) == 2, "want 2 devices");
		json_decref(j);
	}
	dev_fini(&d1);
	dev_fini(&d2);
	dev_fini(&d3);
	dev_fini(&d4);
	client_free(dc);
	env_down(&e);
}

static void
test_enroll_bad_attestation(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d;
	char tok[128], body[2048], nb64[64], ab64[400], pb64[64], hb64[64];
	uint8_t nonce[32], att[ATTEST_LEN], pub[32], other[32];
	struct ed25519_key *k2;
	struct resp r;

	CHECK(env_up(&e, "attest") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	dev_init(&d);
	CHECK(admin_etoken(e.admin, "dan@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	snprintf(body, sizeof(body), "{\"enrollment_token\":\"%s\"}", tok);
	CHECK(client_req(dc, "POST", "/device/v1/enroll/nonce", body, NULL, &r) == 0, "nonce");
	CHECK_STATUS(r, 200);
	resp_str(&r, "nonce", nb64, sizeof(nb64));
	resp_free(&r);
	b64_decode(nonce, 32, nb64, strlen(nb64));
	dev_attest(&d, nonce, att);
	/* Claim a different hypervisor key than the one that signed the attestation. */
	ed25519_key_generate(&k2);
	ed25519_key_public(k2, other);
	ed25519_key_public(d.key, pub);
	b64_encode(ab64, sizeof(ab64), att, sizeof(att));
	b64_encode(pb64, sizeof(pb64), pub, 32);
	b64_encode(hb64, sizeof(hb64), other, 32);
	snprintf(body, sizeof(body),
		 "{\"enrollment_token\":\"%s\",\"nonce\":\"%s\",\"device_key\":\"%s\","
		 "\"hypervisor_key\":\"%s\",\"attestation\":\"%s\",\"inventory\":{\"model\":\"m\","
		 "\"os\":\"o\",\"agent_version\":\"0.1.0\"}}",
		 tok, nb64, pb64, hb64, ab64);
	CHECK(client_req(dc, "POST", "/device/v1/enroll", body, NULL, &r) == 0, "transport");
	CHECK_STATUS(r, 422);
	CHECK(strstr(r.body, "hypervisor") != NULL, "%s", r.body);
	resp_free(&r);
	/* The token was not consumed by the failed attempt. */
	CHECK(dev_enroll(&d, dc, tok, &r) == 0, "transport");
	CHECK_STATUS(r, 201);
	resp_free(&r);
	ed25519_key_free(k2);
	dev_fini(&d);
	client_free(dc);
	env_down(&e);
}

/* ---- device request signatures ---- */

static void
test_device_signatures(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d, other;
	char hdrs[3][600];
	const char *h[4];
	struct resp r;
	const char *body = "{\"wait\":0}";
	long st;
	json_t *j;

	CHECK(env_up(&e, "sig") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "erin@example.com") == 0, "enroll");
	CHECK(enroll_one(&e, dc, &other, "frank@example.com") == 0, "enroll other");

	/* signed: fine (200 with the initial policy command, or 204) */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", body, 0, &r) == 0, "transport");
	CHECK(r.status == 200 || r.status == 204, "signed check-in: %ld %s", r.status, r.body);
	resp_free(&r);

	/* unsigned */
	CHECK(client_req(dc, "POST", "/device/v1/checkin", body, NULL, &r) == 0, "transport");
	CHECK_STATUS(r, 401);
	resp_free(&r);

	/* forged: signed by another device's key but claiming d's id */
	{
		char saved[32];

		memcpy(saved, other.id, sizeof(saved));
		memcpy(other.id, d.id, sizeof(other.id));
		CHECK(dev_req(&other, dc, "POST", "/device/v1/checkin", body, 0, &r) == 0, "tx");
		memcpy(other.id, saved, sizeof(saved));
	}
	CHECK_STATUS(r, 401);
	resp_free(&r);

	/* body changed after signing */
	dev_sign(&d, "POST", "/device/v1/checkin", body, time(NULL), ++d.nonce, hdrs, h);
	CHECK(client_req(dc, "POST", "/device/v1/checkin", "{\"wait\":1}", h, &r) == 0, "tx");
	CHECK_STATUS(r, 401);
	resp_free(&r);

	/* stale: created an hour ago */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", body, -3600, &r) == 0, "tx");
	CHECK_STATUS(r, 401);
	CHECK(strstr(r.body, "stale") != NULL, "%s", r.body);
	resp_free(&r);

	/* replayed: the exact same signed request twice */
	dev_sign(&d, "POST", "/device/v1/checkin", body, time(NULL), ++d.nonce, hdrs, h);
	CHECK(client_req(dc, "POST", "/device/v1/checkin", body, h, &r) == 0, "tx");
	CHECK(r.status == 200 || r.status == 204, "first: %ld", r.status);
	resp_free(&r);
	CHECK(client_req(dc, "POST", "/device/v1/checkin", body, h, &r) == 0, "tx");
	CHECK_STATUS(r, 401);
	CHECK(strstr(r.body, "replay") != NULL, "%s", r.body);
	resp_free(&r);

	/* the first rejection from this address is audited at once, the others per minute */
	j = get_json(e.admin, "/api/v1/audit?action=device.auth&limit=200", &st);
	CHECK(st == 200 && j, "audit: %ld", st);
	CHECK(json_array_size(json_object_get(j, "items")) == 1,
	      "want 1 audited rejection now, got %zu",
	      json_array_size(json_object_get(j, "items")));
	json_decref(j);
	CHECK(srv_stop(&e.s, SIGTERM) == 0 && srv_start(&e.s, NULL) == 0, "restart");
	client_free(e.admin);
	e.admin = client_new(&e.s, e.s.admin);
	j = get_json(e.admin, "/api/v1/audit?action=device.auth&limit=200", &st);
	CHECK(st == 200 && j && json_array_size(json_object_get(j, "items")) == 2 &&
		      strstr(jstr(json_array_get(json_object_get(j, "items"), 1), "detail"),
			     "4 more refused") != NULL,
	      "the other 4 in one row at shutdown");
	json_decref(j);
	dev_fini(&d);
	dev_fini(&other);
	client_free(dc);
	env_down(&e);
}

/* ---- roles ---- */

static void
test_role_matrix(void)
{
	struct env e;
	struct client *dc, *hd, *au;
	struct device_sim d;
	char hdtok[128], autok[128], id[64];
	struct resp r;

	CHECK(env_up(&e, "roles") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "gina@example.com") == 0, "enroll");
	CHECK(admin_token(e.admin, "helpdesk", hdtok, sizeof(hdtok)) == 0, "helpdesk token");
	CHECK(admin_token(e.admin, "auditor", autok, sizeof(autok)) == 0, "auditor token");
	hd = client_new(&e.s, hdtok);
	au = client_new(&e.s, autok);

	/* helpdesk: lock and unlock yes; wipe, retire, rekey no; enrollment tokens yes */
	CHECK(admin_command(hd, d.id, "lock", id, sizeof(id)) == 202, "helpdesk lock");
	CHECK(admin_command(hd, d.id, "unlock", id, sizeof(id)) == 202, "helpdesk unlock");
	CHECK(admin_command(hd, d.id, "wipe", NULL, 0) == 403, "helpdesk wipe must be 403");
	CHECK(admin_command(hd, d.id, "retire", NULL, 0) == 403, "helpdesk retire must be 403");
	CHECK(admin_command(hd, d.id, "rekey", NULL, 0) == 403, "helpdesk rekey must be 403");
	CHECK(admin_etoken(hd, "hank@example.com", 1, hdtok, sizeof(hdtok)) == 0, "hd etoken");
	CHECK(client_req(hd, "POST", "/api/v1/tokens", "{\"name\":\"x\",\"role\":\"admin\"}", NULL,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	CHECK(client_req(hd, "GET", "/api/v1/audit", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	/*
	 * The server's own policy command carries the offline limits: helpdesk may not cancel it.
	 * A policy change queues a device's command at its check-in; assigning queues it at once.
	 */
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/p1", "{}", NULL, &r) == 0, "tx");
	resp_free(&r);
	{
		char path[160], pid[64] = "";
		json_t *j, *v;
		size_t i;

		snprintf(path, sizeof(path), "/api/v1/devices/%s/policy", d.id);
		CHECK(client_req(e.admin, "PUT", path, "{\"policy\":\"p1\"}", NULL, &r) == 0, "tx");
		CHECK_STATUS(r, 200);
		resp_free(&r);
		snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?status=queued", d.id);
		j = get_json(e.admin, path, &r.status);
		json_array_foreach(json_object_get(j, "items"), i,
				   v) if (strcmp(jstr(v, "type"), "policy") == 0)
			str_copy(pid, sizeof(pid), jstr(v, "id"));
		json_decref(j);
		CHECK(pid[0] != '\0', "a queued policy command");
		snprintf(path, sizeof(path), "/api/v1/commands/%s/cancel", pid);
		CHECK(client_req(hd, "POST", path, "{}", NULL, &r) == 0, "tx");
		CHECK_STATUS(r, 403);
		resp_free(&r);
		CHECK(client_req(e.admin, "POST", path, "{}", NULL, &r) == 0, "tx");
		CHECK_STATUS(r, 200);
		resp_free(&r);
	}

	/* auditor: reads everything, writes nothing */
	CHECK(client_req(au, "GET", "/api/v1/devices", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(client_req(au, "GET", "/api/v1/audit", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(client_req(au, "GET", "/api/v1/audit/verify", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(admin_command(au, d.id, "lock", NULL, 0) == 403, "auditor lock must be 403");
	CHECK(admin_command(au, d.id, "wipe", NULL, 0) == 403, "auditor wipe must be 403");
	CHECK(client_req(au, "POST", "/api/v1/enrollment-tokens", "{\"owner\":\"a@b.c\"}", NULL,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	CHECK(client_req(au, "PUT", "/api/v1/policies/p", "{}", NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	{
		char path[128];

		snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
		CHECK(client_req(au, "DELETE", path, NULL, NULL, &r) == 0, "tx");
		CHECK_STATUS(r, 403);
		resp_free(&r);
	}

	/* no token, bad token */
	client_set_bearer(au, "clv_at_wrong");
	CHECK(client_req(au, "GET", "/api/v1/devices", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 401);
	resp_free(&r);
	CHECK(client_req(dc, "GET", "/api/v1/devices", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 401);
	resp_free(&r);

	/* every refusal above is in the audit log, with the token that tried */
	{
		long st;
		json_t *j = get_json(e.admin, "/api/v1/audit?action=access.denied&limit=200", &st);

		CHECK(st == 200 && j, "audit %ld", st);
		CHECK(json_array_size(json_object_get(j, "items")) == 11,
		      "want 11 audited refusals, got %zu",
		      json_array_size(json_object_get(j, "items")));
		json_decref(j);
	}
	/* admin wipes */
	CHECK(admin_command(e.admin, d.id, "wipe", id, sizeof(id)) == 202, "admin wipe");
	client_free(hd);
	client_free(au);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* ---- idempotency and commands ---- */

static void
test_idempotency_key(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d;
	char path[128], id1[64], id2[64];
	const char *key1[] = {"Idempotency-Key: wipe-ticket-4711", NULL};
	struct resp r;
	long st;
	json_t *j;

	CHECK(env_up(&e, "idem") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "ivan@example.com") == 0, "enroll");
	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", d.id);
	CHECK(client_req(e.admin, "POST", path, "{\"type\":\"wipe\",\"reason\":\"lost\"}", key1,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 202);
	resp_str(&r, "id", id1, sizeof(id1));
	CHECK(strstr(r.location, id1) != NULL, "Location: %s", r.location);
	resp_free(&r);
	CHECK(client_req(e.admin, "POST", path, "{\"type\":\"wipe\",\"reason\":\"lost\"}", key1,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 202);
	resp_str(&r, "id", id2, sizeof(id2));
	resp_free(&r);
	CHECK(strcmp(id1, id2) == 0, "same key gave %s and %s", id1, id2);
	/* same key, different request */
	CHECK(client_req(e.admin, "POST", path, "{\"type\":\"lock\"}", key1, &r) == 0, "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	/* exactly one wipe exists */
	j = get_json(e.admin, strcat(path, "?status=queued"), &st);
	CHECK(st == 200 && j, "list: %ld", st);
	{
		size_t wipes = 0, i;
		json_t *it;

		json_array_foreach(json_object_get(j, "items"), i, it) wipes +=
			strcmp(jstr(it, "type"), "wipe") == 0;
		CHECK(wipes == 1, "want one wipe, got %zu", wipes);
	}
	json_decref(j);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

struct poll_arg {
	struct device_sim *d;
	struct client *c;
	struct resp r;
	double t_done;
	int rc;
};

static void *
poll_thread(void *p)
{
	struct poll_arg *a = p;

	a->rc = dev_req(a->d, a->c, "POST", "/device/v1/checkin", "{\"wait\":30}", 0, &a->r);
	a->t_done = now_s();
	return NULL;
}

/* Drains pending work (the initial policy command) so the next check-in parks. */
static int
drain(struct device_sim *d, struct client *dc)
{
	struct resp r;

	for (int i = 0; i < 5; i++) {
		json_t *j, *it;
		size_t k;

		if (dev_req(d, dc, "POST", "/device/v1/checkin",
			    "{\"wait\":0,\"state\":{\"policy_name\":\"\",\"policy_version\":0}}", 0,
			    &r) != 0)
			return -1;
		if (r.status == 204) {
			resp_free(&r);
			return 0;
		}
		j = resp_json(&r);
		resp_free(&r);
		json_array_foreach(json_object_get(j, "commands"), k, it)
		{
			char p[128];

			snprintf(p, sizeof(p), "/device/v1/commands/%s/result", jstr(it, "id"));
			dev_req(d, dc, "POST", p, "{\"status\":\"completed\"}", 0, &r);
			resp_free(&r);
		}
		json_decref(j);
	}
	return -1;
}

/*
 * Waits (at most 5 s) until the server's metrics count n parked check-ins: a fixed sleep lost
 * the race on a loaded machine (on PostgreSQL a check-in takes several round trips to park).
 */
static int
wait_parked(struct env *e, int n)
{
	char want[64];

	snprintf(want, sizeof(want), "cleave_parked_connections %d\n", n);
	for (int i = 0; i < 500; i++) {
		struct resp r;
		int parked = 0;

		if (client_req(e->admin, "GET", "/metrics", NULL, NULL, &r) == 0)
			parked = r.body && strstr(r.body, want) != NULL;
		resp_free(&r);
		if (parked)
			return 0;
		usleep(10000);
	}
	return -1;
}

static void
test_longpoll_wakeup(void)
{
	struct env e;
	struct client *dc, *pc;
	struct device_sim d;
	struct poll_arg a = {0};
	pthread_t th;
	char id[64];
	double t_post;
	json_t *j;

	CHECK(env_up(&e, "longpoll") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	pc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "judy@example.com") == 0, "enroll");
	CHECK(drain(&d, dc) == 0, "could not drain pending work");
	a.d = &d;
	a.c = pc;
	pthread_create(&th, NULL, poll_thread, &a);
	CHECK(wait_parked(&e, 1) == 0, "the poll never parked");
	t_post = now_s();
	CHECK(admin_command(e.admin, d.id, "wipe", id, sizeof(id)) == 202, "wipe");
	pthread_join(th, NULL);
	CHECK(a.rc == 0, "poll transport failed");
	CHECK(a.r.status == 200, "poll answered %ld", a.r.status);
	CHECK(a.t_done - t_post < 1.0, "parked poll woke %.3f s after the POST", a.t_done - t_post);
	j = resp_json(&a.r);
	CHECK(j && strcmp(jstr(json_array_get(json_object_get(j, "commands"), 0), "id"), id) == 0,
	      "poll got %s", a.r.body);
	json_decref(j);
	resp_free(&a.r);
	{
		char path[128];
		long st;

		snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
		j = get_json(e.admin, path, &st);
		CHECK(st == 200 && strcmp(jstr(j, "status"), "delivered") == 0, "status %s",
		      jstr(j, "status"));
		json_decref(j);
	}
	client_free(dc);
	client_free(pc);
	dev_fini(&d);
	env_down(&e);
}

static void
test_longpoll_timeout_and_shutdown(void)
{
	struct env e;
	struct client *dc, *pc;
	struct device_sim d;
	struct poll_arg a = {0};
	pthread_t th;
	struct resp r;
	int rc;

	CHECK(env_up(&e, "lpstop") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	pc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "kim@example.com") == 0, "enroll");
	CHECK(drain(&d, dc) == 0, "drain");
	/* a short wait times out with 204 */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", "{\"wait\":1}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 204);
	CHECK(r.seconds >= 0.9 && r.seconds < 3.0, "1 s wait took %.2f s", r.seconds);
	resp_free(&r);
	/* asking for more than the cap is refused */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", "{\"wait\":600}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	/* SIGTERM with a parked poll: answered, clean exit */
	a.d = &d;
	a.c = pc;
	pthread_create(&th, NULL, poll_thread, &a);
	CHECK(wait_parked(&e, 1) == 0, "the poll never parked");
	rc = srv_stop(&e.s, SIGTERM);
	pthread_join(th, NULL);
	CHECK(rc == 0, "server exit status %d after SIGTERM", rc);
	CHECK(a.rc == 0 && a.r.status == 204, "parked poll got %ld at shutdown", a.r.status);
	resp_free(&a.r);
	client_free(dc);
	client_free(pc);
	dev_fini(&d);
	env_down(&e);
}

static void
test_shutdown_after_parked_client_vanished(void)
{
	struct env e;
	struct client *dc, *gone;
	struct device_sim d;
	struct resp r;
	double t0;
	int rc;

	CHECK(env_up(&e, "vanish") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	gone = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "vic@example.com") == 0, "enroll");
	CHECK(drain(&d, dc) == 0, "drain");
	/* The client parks for 30 s but gives up after 1 s: the server still holds the poll. */
	client_set_timeout(gone, 1);
	CHECK(dev_req(&d, gone, "POST", "/device/v1/checkin", "{\"wait\":30}", 0, &r) != 0,
	      "the poll should have been abandoned by the client, got HTTP %ld", r.status);
	resp_free(&r);
	client_free(gone);
	t0 = now_s();
	rc = srv_stop(&e.s, SIGTERM);
	CHECK(rc == 0, "exit status %d", rc);
	CHECK(now_s() - t0 < 3.0, "stop took %.2f s with one vanished parked client", now_s() - t0);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

static void
test_command_lifecycle(void)
{
	struct env e;
	struct client *dc, *oc;
	struct device_sim d, o;
	char id[64], lid[64], path[160], body[1024], rb64[600];
	uint8_t ticket[TICKET_LEN], rcpt[RECEIPT_LEN];
	struct resp r;
	long st;
	json_t *j, *cmd;

	CHECK(env_up(&e, "lifecycle") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	oc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "lee@example.com") == 0, "enroll");
	CHECK(enroll_one(&e, oc, &o, "mia@example.com") == 0, "enroll other");
	CHECK(drain(&d, dc) == 0, "drain");

	/* cancel before delivery works */
	CHECK(admin_command(e.admin, d.id, "lock", lid, sizeof(lid)) == 202, "lock");
	snprintf(path, sizeof(path), "/api/v1/commands/%s/cancel", lid);
	CHECK(client_req(e.admin, "POST", path, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);

	/* wipe: delivered at check-in with a ticket signed by the server key */
	CHECK(admin_command(e.admin, d.id, "wipe", id, sizeof(id)) == 202, "wipe");
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	j = resp_json(&r);
	resp_free(&r);
	cmd = json_array_get(json_object_get(j, "commands"), 0);
	CHECK(cmd && strcmp(jstr(cmd, "id"), id) == 0, "check-in should carry only the wipe");
	CHECK(b64_decode(ticket, sizeof(ticket), jstr(cmd, "ticket"),
			 strlen(jstr(cmd, "ticket"))) == TICKET_LEN,
	      "ticket size");
	json_decref(j);
	CHECK(ed25519_verify(d.ticket_key, ticket, TICKET_BODY_LEN, ticket + TICKET_BODY_LEN) == 0,
	      "ticket signature does not verify with the server ticket key");
	{
		struct ticket t;
		uint8_t hv[32];

		CHECK(ticket_decode(ticket, TICKET_LEN, &t) == 0, "ticket decode");
		ed25519_key_public(d.hv, hv);
		CHECK(t.type == TICKET_WIPE && strcmp(t.device_id, d.id) == 0 &&
			      strcmp(t.command_id, id) == 0 && memcmp(t.hv_key, hv, 32) == 0,
		      "ticket binds the wrong device, command or hypervisor");
		CHECK(t.counter >= 2 && t.expires_at > t.issued_at, "counter/expiry");
	}
	/* canceling now is refused: it was delivered */
	snprintf(path, sizeof(path), "/api/v1/commands/%s/cancel", id);
	CHECK(client_req(e.admin, "POST", path, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 409);
	resp_free(&r);
	/* deleting the device is refused while the wipe is pending */
	snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
	CHECK(client_req(e.admin, "DELETE", path, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 409);
	CHECK(strstr(r.body, "wipe-pending") != NULL, "%s", r.body);
	resp_free(&r);
	/* another device can neither ack nor report on it */
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", id);
	CHECK(dev_req(&o, oc, "POST", path, NULL, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 404);
	resp_free(&r);
	/* ack, then a forged receipt (signed by the other device's hypervisor) is rejected */
	CHECK(dev_req(&d, dc, "POST", path, NULL, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	dev_receipt(&o, ticket, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"status\":\"completed\",\"receipt\":\"%s\"}", rb64);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	CHECK(dev_req(&d, dc, "POST", path, body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	/* the real receipt verifies; reporting twice is harmless */
	dev_receipt(&d, ticket, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body),
		 "{\"status\":\"completed\",\"detail\":\"wiped\",\"receipt\":\"%s\"}", rb64);
	CHECK(dev_req(&d, dc, "POST", path, body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "\"verified\":true") != NULL, "%s", r.body);
	resp_free(&r);
	CHECK(dev_req(&d, dc, "POST", path, body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	j = get_json(e.admin, path, &st);
	CHECK(st == 200 && strcmp(jstr(j, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(j, "verified")) &&
		      json_is_string(json_object_get(j, "receipt")),
	      "command after result: %s", j ? jstr(j, "status") : "?");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
	j = get_json(e.admin, path, &st);
	CHECK(st == 200, "device get %ld", st);
	CHECK(strcmp(jstr(json_object_get(j, "corporate_state"), "reported"), "wiped") == 0,
	      "reported state should be wiped");
	CHECK(strncmp(jstr(json_object_get(j, "hypervisor"), "key_pem"),
		      "-----BEGIN PUBLIC KEY-----", 26) == 0,
	      "hypervisor key PEM for auditors");
	/* a simulated device's key is a file-keystore Ed25519 key: never shown as hardware */
	CHECK(strcmp(jstr(json_object_get(j, "hypervisor"), "identity"), "file") == 0 &&
		      strcmp(jstr(json_object_get(j, "hypervisor"), "signature_alg"), "ed25519") ==
			      0 &&
		      strcmp(jstr(json_object_get(j, "hypervisor"), "endorsement"), "none") == 0,
	      "hypervisor identity: file keystore, Ed25519, no endorsement");
	json_decref(j);
	/* now it can be deleted */
	CHECK(client_req(e.admin, "DELETE", path, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 204);
	resp_free(&r);
	client_free(dc);
	client_free(oc);
	dev_fini(&d);
	dev_fini(&o);
	env_down(&e);
}

/* An auto-wipe receipt as cleave-hv signs one when a device stays offline too long. */
static void
auto_wipe_receipt(struct device_sim *d, uint64_t seq, uint8_t out[RECEIPT_LEN])
{
	struct receipt rc;

	memset(&rc, 0, sizeof(rc));
	rc.type = RECEIPT_AUTO_WIPE;
	ed25519_key_public(d->hv, rc.hv_key);
	str_copy(rc.device_id, sizeof(rc.device_id), d->id);
	rc.seq = seq;
	rc.epoch_before = 1;
	rc.epoch_after = 2;
	rc.header_state = HV_STATE_ACTIVE;
	rc.checks_run = rc.checks_passed = CHECK_INTENT_RECORDED | CHECK_HEADERS_ERASED;
	rc.started_ms = (uint64_t)time(NULL) * 1000;
	rc.finished_ms = rc.started_ms + 2;
	receipt_encode(&rc, out);
	ed25519_key_sign(d->hv, out, RECEIPT_BODY_LEN, out + RECEIPT_BODY_LEN);
}

static void
test_device_lease_receipts_unenroll(void)
{
	struct env e;
	struct client *dc, *oc;
	struct device_sim d, o;
	char path[160], body[2048], rb64[600], id[64];
	uint8_t tk[TICKET_LEN], rcpt[RECEIPT_LEN];
	struct ticket t;
	struct resp r;
	json_t *j;
	long st;

	CHECK(env_up(&e, "leases") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	oc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "kim@example.com") == 0, "enroll");
	CHECK(enroll_one(&e, oc, &o, "ola@example.com") == 0, "enroll other");
	/* a lease: signed by the server's ticket key, for this device and hypervisor */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/lease", "{}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	j = resp_json(&r);
	resp_free(&r);
	CHECK(j && b64_decode(tk, sizeof(tk), jstr(j, "lease"), strlen(jstr(j, "lease"))) ==
			      TICKET_LEN,
	      "lease ticket");
	json_decref(j);
	CHECK(ed25519_verify(d.ticket_key, tk, TICKET_BODY_LEN, tk + TICKET_BODY_LEN) == 0 &&
		      ticket_decode(tk, TICKET_LEN, &t) == 0 && t.type == TICKET_LEASE &&
		      strcmp(t.device_id, d.id) == 0 && t.args[0] > (uint64_t)time(NULL) &&
		      t.args[0] == t.expires_at,
	      "lease ticket contents");
	/* the check-in that delivers something carries a lease too */
	CHECK(admin_command(e.admin, d.id, "refresh", id, sizeof(id)) == 202, "refresh");
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "\"lease\"") != NULL, "no lease in the check-in: %s", r.body);
	resp_free(&r);

	/* attestations at check-in: the device's own is "ok"; another hypervisor's is a mismatch */
	{
		uint8_t nonce[32] = {9}, att[ATTEST_LEN];
		char ab64[400];
		const char *want[] = {"ok", "mismatch"};

		for (int k = 0; k < 2; k++) {
			dev_attest(k == 0 ? &d : &o, nonce, att);
			b64_encode(ab64, sizeof(ab64), att, sizeof(att));
			snprintf(body, sizeof(body), "{\"state\":{\"attestation\":\"%s\"}}", ab64);
			CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", body, 0, &r) == 0,
			      "tx");
			CHECK(r.status == 204 || r.status == 200, "check-in %ld", r.status);
			resp_free(&r);
			snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
			j = get_json(e.admin, path, &st);
			CHECK(st == 200 &&
				      strcmp(jstr(json_object_get(j, "hypervisor"), "attestation"),
					     want[k]) == 0,
			      "attestation should be %s", want[k]);
			{
				char *dump = json_dumps(json_object_get(j, "compliance"), 0);
				int has = dump && strstr(dump, "attestation mismatch") != NULL;

				free(dump);
				json_decref(j);
				CHECK(has == (k == 1), "compliance reason for %s", want[k]);
			}
		}
	}
	/* an auto-wipe receipt from the device's own hypervisor is taken and audited */
	auto_wipe_receipt(&d, 7, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", rb64);
	CHECK(dev_req(&d, dc, "POST", "/device/v1/receipts", body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "\"highest_seq\":7") != NULL, "%s", r.body);
	resp_free(&r);
	/* sent again (the agent crashed before acknowledging it): taken, recorded once */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/receipts", body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
	j = get_json(e.admin, path, &st);
	CHECK(st == 200 &&
		      strcmp(jstr(json_object_get(j, "corporate_state"), "reported"), "wiped") == 0,
	      "an auto-wipe receipt must set the reported state");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/audit?action=device.receipt&target=%s", d.id);
	j = get_json(e.admin, path, &st);
	{
		char *dump = j ? json_dumps(j, 0) : NULL;
		const char *first = dump != NULL ? strstr(dump, rb64) : NULL;
		int found = first != NULL, twice = first != NULL && strstr(first + 1, rb64) != NULL;

		free(dump);
		json_decref(j);
		CHECK(st == 200 && found, "the receipt must be in the audit log");
		CHECK(!twice, "a receipt sent twice must be recorded once");
	}
	/* a receipt signed by another device's hypervisor, or sent by another device: 422 */
	auto_wipe_receipt(&o, 8, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", rb64);
	CHECK(dev_req(&d, dc, "POST", "/device/v1/receipts", body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	auto_wipe_receipt(&d, 9, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", rb64);
	CHECK(dev_req(&o, oc, "POST", "/device/v1/receipts", body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	CHECK(dev_req(&d, dc, "POST", "/device/v1/receipts", "{\"receipts\":[\"AAAA\"]}", 0, &r) ==
		      0,
	      "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);

	/* unenroll: a retire command, the same one when asked again; its receipt retires */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/unenroll", "{}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 201);
	j = resp_json(&r);
	resp_free(&r);
	CHECK(j && strcmp(jstr(json_object_get(j, "command"), "type"), "retire") == 0, "retire");
	str_copy(id, sizeof(id), jstr(json_object_get(j, "command"), "id"));
	CHECK(b64_decode(tk, sizeof(tk), jstr(json_object_get(j, "command"), "ticket"),
			 strlen(jstr(json_object_get(j, "command"), "ticket"))) == TICKET_LEN,
	      "retire ticket");
	json_decref(j);
	CHECK(dev_req(&d, dc, "POST", "/device/v1/unenroll", "{}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, id) != NULL, "a second unenroll must return the same retire");
	resp_free(&r);
	/* its receipt, uploaded with the receipts (as after an agent crash), completes it */
	dev_receipt(&d, tk, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", rb64);
	CHECK(dev_req(&d, dc, "POST", "/device/v1/receipts", body, 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	j = get_json(e.admin, path, &st);
	CHECK(st == 200 && strcmp(jstr(j, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(j, "verified")),
	      "the retire must be completed and verified");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
	j = get_json(e.admin, path, &st);
	CHECK(st == 200 && strcmp(jstr(j, "status"), "retired") == 0, "device must be retired");
	json_decref(j);
	/* a retired device cannot unenroll again: its requests are refused */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/unenroll", "{}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	/* more than 16 receipts in one upload is refused as a whole */
	{
		char *big = malloc(17 * 440 + 32);
		size_t at;

		CHECK(big != NULL, "malloc");
		at = (size_t)sprintf(big, "{\"receipts\":[");
		for (int k = 0; k < 17; k++)
			at += (size_t)sprintf(big + at, "%s\"%s\"", k ? "," : "", rb64);
		sprintf(big + at, "]}");
		CHECK(dev_req(&o, oc, "POST", "/device/v1/receipts", big, 0, &r) == 0, "tx");
		free(big);
		CHECK_STATUS(r, 422);
		CHECK(strstr(r.body, "1 to 16") != NULL, "%s", r.body);
		resp_free(&r);
	}
	client_free(dc);
	client_free(oc);
	dev_fini(&d);
	dev_fini(&o);
	env_down(&e);
}

static void
test_command_expiry(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d;
	char id[64], path[128], sql[256];
	long st;
	json_t *j = NULL;
	int expired = 0;

	CHECK(env_up(&e, "expiry") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "tom@example.com") == 0, "enroll");
	CHECK(admin_command(e.admin, d.id, "lock", id, sizeof(id)) == 202, "lock");
	/* Time passes beyond the command's expiry (edit the row as the clock would). */
	snprintf(sql, sizeof(sql), "UPDATE commands SET expires_at = %lld WHERE id = '%s'",
		 (long long)time(NULL) - 1, id);
	CHECK(db_exec(&e, sql) == 0, "db edit");
	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	for (int i = 0; i < 50 && !expired; i++) { /* the tick runs once a second */
		json_decref(j);
		j = get_json(e.admin, path, &st);
		expired = st == 200 && strcmp(jstr(j, "status"), "expired") == 0;
		if (!expired)
			usleep(100000);
	}
	json_decref(j);
	CHECK(expired, "command did not expire within 5 s");
	/* an expired command is no longer delivered, and the desired state is back to active */
	CHECK(drain(&d, dc) == 0, "check-in should find nothing but the policy command");
	snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
	j = get_json(e.admin, path, &st);
	CHECK(st == 200 &&
		      strcmp(jstr(json_object_get(j, "corporate_state"), "desired"), "active") == 0,
	      "desired state after an expired lock: %s",
	      jstr(json_object_get(j, "corporate_state"), "desired"));
	json_decref(j);
	j = get_json(e.admin, "/api/v1/audit?action=command.expire", &st);
	CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 1, "expiry audited");
	json_decref(j);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* ---- durability ---- */

static void
test_restart_keeps_everything(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d;
	char id[64], hdtok[128], path[128];
	struct resp r;
	long st;
	json_t *j;

	CHECK(env_up(&e, "restart") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "nina@example.com") == 0, "enroll");
	CHECK(admin_token(e.admin, "helpdesk", hdtok, sizeof(hdtok)) == 0, "token");
	CHECK(admin_command(e.admin, d.id, "lock", id, sizeof(id)) == 202, "lock");
	CHECK(srv_stop(&e.s, SIGTERM) == 0, "clean stop");
	client_free(e.admin);
	client_free(dc);
	CHECK(srv_start(&e.s, NULL) == 0, "restart");
	e.admin = client_new(&e.s, e.s.admin);
	dc = client_new(&e.s, hdtok);
	/* the helpdesk token still works, the device and command are there */
	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	j = get_json(dc, path, &st);
	CHECK(st == 200 && strcmp(jstr(j, "status"), "queued") == 0, "command after restart: %ld",
	      st);
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
	j = get_json(dc, path, &st);
	CHECK(st == 200 && strcmp(jstr(j, "owner"), "nina@example.com") == 0, "device: %ld", st);
	json_decref(j);
	/* the device's key still signs; and its old nonces stay used */
	client_set_bearer(dc, NULL);
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	/* the audit trail survived and still verifies */
	j = get_json(e.admin, "/api/v1/audit/verify", &st);
	CHECK(st == 200 && json_is_true(json_object_get(j, "ok")) &&
		      json_integer_value(json_object_get(j, "entries")) >= 5,
	      "audit verify after restart");
	json_decref(j);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

static void
test_kill9_after_202_loses_nothing(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d;
	char ids[5][64], path[128];
	long st;
	json_t *j;

	CHECK(env_up(&e, "kill9") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, "omar@example.com") == 0, "enroll");
	for (int i = 0; i < 5; i++)
		CHECK(admin_command(e.admin, d.id, i == 4 ? "wipe" : "refresh", ids[i], 64) == 202,
		      "command %d", i);
	/* SIGKILL right after the last 202: no shutdown code runs */
	kill(e.s.pid, SIGKILL);
	srv_stop(&e.s, SIGKILL);
	client_free(e.admin);
	CHECK(srv_start(&e.s, NULL) == 0, "restart");
	e.admin = client_new(&e.s, e.s.admin);
	for (int i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "/api/v1/commands/%s", ids[i]);
		j = get_json(e.admin, path, &st);
		CHECK(st == 200 && strcmp(jstr(j, "status"), "queued") == 0,
		      "command %s lost after kill -9 (%ld)", ids[i], st);
		json_decref(j);
	}
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* ---- bad input ---- */

static void
test_bad_bodies(void)
{
	struct env e;
	struct resp r;
	char *big;
	const char *cases[][2] = {
		{"{\"owner\":", "malformed-json"},
		{"[1,2]", "malformed-json"},
		{"{\"owner\":\"a@b.c\",\"extra\":1}", "unknown field extra"},
		{"{\"owner\":42}", "owner must be a string"},
		{"{\"owner\":\"a@b.c\",\"uses\":\"3\"}", "uses must be an integer"},
		{"{\"owner\":\"a@b.c\",\"uses\":0}", "uses must be between"},
		{"{}", "missing field owner"},
		{"{\"owner\":\"a\\u0000b@c\"}", "NUL"},
		{"{\"owner\":\"a@b.c\",\"owner\":\"d@e.f\"}", "malformed-json"},
	};

	CHECK(env_up(&e, "badbody") == 0, "server did not start");
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		CHECK(client_req(e.admin, "POST", "/api/v1/enrollment-tokens", cases[i][0], NULL,
				 &r) == 0,
		      "tx");
		CHECK(r.status == 400 || r.status == 422, "case %zu: HTTP %ld", i, r.status);
		CHECK(strstr(r.body, cases[i][1]) != NULL, "case %zu: want '%s' in %s", i,
		      cases[i][1], r.body);
		CHECK(strstr(r.body, "\"type\":\"urn:cleave:problem:") != NULL, "problem type");
		resp_free(&r);
	}
	/* oversized: 1 MiB */
	big = malloc(1 << 20);
	memset(big, 'a', (1 << 20) - 1);
	big[0] = '"';
	big[(1 << 20) - 2] = '"';
	big[(1 << 20) - 1] = '\0';
	CHECK(client_req(e.admin, "POST", "/api/v1/enrollment-tokens", big, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 413);
	resp_free(&r);
	free(big);
	/* the server is still fine and nothing was created */
	CHECK(client_req(e.admin, "GET", "/api/v1/enrollment-tokens", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "\"items\":[]") != NULL, "%s", r.body);
	resp_free(&r);
	/* bad paging */
	CHECK(client_req(e.admin, "GET", "/api/v1/devices?limit=0", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 400);
	resp_free(&r);
	CHECK(client_req(e.admin, "GET", "/api/v1/devices?cursor=!!", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 400);
	resp_free(&r);
	env_down(&e);
}

static void
test_audit_tamper_detected(void)
{
	struct env e;
	long st;
	json_t *j;
	char tok[128];

	CHECK(env_up(&e, "audit") == 0, "server did not start");
	for (int i = 0; i < 3; i++)
		CHECK(admin_etoken(e.admin, "pat@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	j = get_json(e.admin, "/api/v1/audit/verify", &st);
	CHECK(st == 200 && json_is_true(json_object_get(j, "ok")), "fresh chain must verify");
	json_decref(j);
	CHECK(db_exec(&e, "UPDATE audit SET detail = 'owner=mallory@example.com uses=1' "
			  "WHERE seq = 3") == 0,
	      "db edit");
	/* An old entry edited in place: only the full walk is sure to read it (test_audit_verify). */
	j = get_json(e.admin, "/api/v1/audit/verify?full=1", &st);
	CHECK(st == 200 && json_is_false(json_object_get(j, "ok")) &&
		      json_integer_value(json_object_get(j, "first_bad_seq")) == 3,
	      "edited row 3 not detected");
	json_decref(j);
	/* deleting a row is detected too */
	CHECK(db_exec(&e, "UPDATE audit SET detail = (SELECT detail FROM audit WHERE seq = 3) "
			  "WHERE false; DELETE FROM audit WHERE seq = 2") == 0,
	      "db delete");
	j = get_json(e.admin, "/api/v1/audit/verify?full=1", &st);
	CHECK(st == 200 && json_is_false(json_object_get(j, "ok")) &&
		      json_integer_value(json_object_get(j, "first_bad_seq")) == 2,
	      "deleted row 2 not detected");
	json_decref(j);
	env_down(&e);
}

static void
test_policy_versions_and_delivery(void)
{
	struct env e;
	struct client *dc;
	struct device_sim d;
	struct resp r;
	json_t *j, *pol;

	CHECK(env_up(&e, "policy") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/standard",
			 "{\"offline\":{\"lock_after_hours\":48,\"wipe_after_days\":10},"
			 "\"max_failed_unlocks\":5,\"min_agent_version\":\"0.1.0\"}",
			 NULL, &r) == 0,
	      "tx");
	CHECK_STATUS(r, 201);
	CHECK(strstr(r.body, "\"version\":1") && strstr(r.body, "\"default\":true"), "%s", r.body);
	resp_free(&r);
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/standard",
			 "{\"offline\":{\"lock_after_hours\":1,\"wipe_after_days\":0}}", NULL,
			 &r) == 0,
	      "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "\"version\":2"), "%s", r.body);
	resp_free(&r);
	CHECK(client_req(e.admin, "PUT", "/api/v1/policies/standard",
			 "{\"encryption\":{\"cipher\":\"des\"}}", NULL, &r) == 0,
	      "tx");
	CHECK_STATUS(r, 422);
	resp_free(&r);
	CHECK(enroll_one(&e, dc, &d, "quinn@example.com") == 0, "enroll");
	/* the device gets the policy and a signed policy command at its first check-in */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin", "{\"wait\":5}", 0, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	j = resp_json(&r);
	resp_free(&r);
	pol = json_object_get(j, "policy");
	CHECK(pol && json_integer_value(json_object_get(pol, "version")) == 2, "policy v2");
	CHECK(strcmp(jstr(json_array_get(json_object_get(j, "commands"), 0), "type"), "policy") ==
		      0,
	      "policy command");
	json_decref(j);
	/* once applied, the device reports compliance */
	CHECK(dev_req(&d, dc, "POST", "/device/v1/checkin",
		      "{\"wait\":0,\"state\":{\"policy_name\":\"standard\",\"policy_version\":2,"
		      "\"corporate_state\":\"active\",\"agent_version\":\"0.2.0\"}}",
		      0, &r) == 0,
	      "tx");
	CHECK(r.status == 200, "pending policy command still delivered: %ld", r.status);
	resp_free(&r);
	{
		char path[128];
		long st;

		snprintf(path, sizeof(path), "/api/v1/devices/%s", d.id);
		j = get_json(e.admin, path, &st);
		CHECK(st == 200, "device get");
		CHECK(strcmp(jstr(json_object_get(j, "policy"), "applied"), "standard") == 0,
		      "applied policy recorded");
		CHECK(strcmp(jstr(j, "agent_version"), "0.2.0") == 0, "agent version recorded");
		json_decref(j);
	}
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

static void
test_enroll_page(void)
{
	struct env e;
	struct client *anon;
	struct resp r;
	char url[512], tok[128];
	const char *path;

	CHECK(env_up(&e, "portal") == 0, "server did not start");
	anon = client_new(&e.s, NULL);
	CHECK(client_req(e.admin, "POST", "/api/v1/enrollment-tokens",
			 "{\"owner\":\"rita@example.com\"}", NULL, &r) == 0,
	      "tx");
	CHECK_STATUS(r, 201);
	CHECK(resp_str(&r, "enroll_url", url, sizeof(url)) == 0, "enroll_url");
	CHECK(resp_str(&r, "token", tok, sizeof(tok)) == 0, "token");
	resp_free(&r);
	/* The URL points at this server and its page names the token and the privacy promise. */
	CHECK(strncmp(url, e.s.url, strlen(e.s.url)) == 0, "enroll_url %s is not on %s", url,
	      e.s.url);
	path = url + strlen(e.s.url);
	CHECK(client_req(anon, "GET", path, NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, tok) != NULL, "page lacks the token");
	CHECK(strstr(r.body, "What your company can never see") &&
		      strstr(r.body, "None of them reads your personal half"),
	      "page lacks the privacy statement");
	resp_free(&r);
	/* Anything that is not token-shaped is never echoed. */
	CHECK(client_req(anon, "GET", "/enroll?token=%3Cscript%3Ealert(1)%3C%2Fscript%3E", NULL,
			 NULL, &r) == 0,
	      "tx");
	CHECK_STATUS(r, 400);
	CHECK(strstr(r.body, "<script>") == NULL, "query echoed into the page");
	resp_free(&r);
	client_free(anon);
	env_down(&e);
}

static void
test_metrics_and_health(void)
{
	struct env e;
	struct resp r;

	CHECK(env_up(&e, "metrics") == 0, "server did not start");
	CHECK(client_req(e.admin, "GET", "/healthz", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	/* It names the store it runs on. */
	CHECK(r.body && strstr(r.body, env_pg != NULL ? "\"store\":\"postgresql\""
						      : "\"store\":\"sqlite\""),
	      "healthz: %s", r.body ? r.body : "");
	resp_free(&r);
	CHECK(client_req(e.admin, "GET", "/nope", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 404);
	resp_free(&r);
	CHECK(client_req(e.admin, "GET", "/metrics", NULL, NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "cleave_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
	      "%s", r.body);
	CHECK(strstr(r.body, "cleave_parked_connections 0"), "parked gauge");
	CHECK(strstr(r.body, "cleave_checkins_total 0"), "checkins");
	resp_free(&r);
	env_down(&e);
}

/* The README's walkthrough with cleave-devsim: enroll, wipe, the wipe completes verified. */
static void
test_devsim_walkthrough(void)
{
	struct env e;
	char tok[128], cmd[PATH_MAX * 3], state[PATH_MAX + 8], id[64], path[128];
	const char *bin = getenv("CLEAVE_BIN");
	long st;
	int rc;
	json_t *j;

	CHECK(env_up(&e, "devsim") == 0, "server did not start");
	CHECK(admin_etoken(e.admin, "sam@example.com", 1, tok, sizeof(tok)) == 0, "etoken");
	snprintf(state, sizeof(state), "%s/../phone", e.s.dir);
	snprintf(
		cmd, sizeof(cmd),
		"%s/cleave-devsim --state %s enroll --server %s --token %s --ca-cert %s >/dev/null",
		bin ? bin : "build/bin", state, e.s.url, tok, e.s.cacert);
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) == 0, "devsim enroll failed (%d)", rc);
	j = get_json(e.admin, "/api/v1/devices", &st);
	CHECK(st == 200 && json_array_size(json_object_get(j, "items")) == 1, "one device");
	str_copy(id, sizeof(id), jstr(json_array_get(json_object_get(j, "items"), 0), "id"));
	json_decref(j);
	CHECK(admin_command(e.admin, id, "wipe", path, sizeof(path)) == 202, "wipe");
	snprintf(cmd, sizeof(cmd),
		 "%s/cleave-devsim --state %s checkin --wait 5 --complete >/dev/null",
		 bin ? bin : "build/bin", state);
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) == 0, "devsim checkin failed (%d)", rc);
	snprintf(cmd, sizeof(cmd), "/api/v1/commands/%s", path);
	j = get_json(e.admin, cmd, &st);
	CHECK(st == 200 && strcmp(jstr(j, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(j, "verified")),
	      "wipe after devsim: %s", jstr(j, "status"));
	json_decref(j);
	/* a second run reuses the saved nonce counter: no replay rejection */
	snprintf(cmd, sizeof(cmd), "%s/cleave-devsim --state %s checkin >/dev/null",
		 bin ? bin : "build/bin", state);
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) == 0, "second devsim checkin failed (%d)", rc);
	env_down(&e);
}

static void
test_check_config(void)
{
	char cmd[PATH_MAX * 2];
	const char *bin = getenv("CLEAVE_BIN");
	int rc;

	snprintf(cmd, sizeof(cmd),
		 "%s/cleave-server --data /nonexistent --listen 1.2.3.4:99999 "
		 "--check-config >/dev/null 2>&1",
		 bin ? bin : "build/bin");
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) == 2, "bad listen must fail --check-config (got %d)", rc);
	snprintf(cmd, sizeof(cmd),
		 "%s/cleave-server --data /nonexistent --check-config >/dev/null 2>&1",
		 bin ? bin : "build/bin");
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) == 0, "good config must pass --check-config (got %d)", rc);
	{
		/* a comment after a value is refused, and the error says why */
		char dir[] = "/tmp/cleave-config-XXXXXX", conf[PATH_MAX], out[512] = "";
		FILE *f;

		CHECK(mkdtemp(dir) != NULL, "mkdtemp");
		snprintf(conf, sizeof(conf), "%s/server.conf", dir);
		f = fopen(conf, "w");
		CHECK(f != NULL, "cannot write %s", conf);
		fputs("# the comment on its own line is fine\n"
		      "require_hardware_identity = 1   # only TPMs\n",
		      f);
		fclose(f);
		snprintf(cmd, sizeof(cmd),
			 "%s/cleave-server --data /nonexistent --config %s --check-config 2>&1",
			 bin ? bin : "build/bin", conf);
		f = popen(cmd, "r");
		if (f != NULL) {
			size_t n = fread(out, 1, sizeof(out) - 1, f);

			out[n] = '\0';
			rc = pclose(f);
		}
		unlink(conf);
		rmdir(dir);
		CHECK(f != NULL && WEXITSTATUS(rc) == 2, "a value with a comment must fail (%d)",
		      rc);
		CHECK(strstr(out, "server.conf:2: a comment takes a line of its own") != NULL,
		      "the error must say why: %s", out);
	}
}

static const struct t_case server_cases[] = {
	{"enroll_token_states", test_enroll_token_states},
	{"enroll_bad_attestation", test_enroll_bad_attestation},
	{"device_signatures", test_device_signatures},
	{"role_matrix", test_role_matrix},
	{"idempotency_key", test_idempotency_key},
	{"longpoll_wakeup", test_longpoll_wakeup},
	{"longpoll_timeout_and_shutdown", test_longpoll_timeout_and_shutdown},
	{"shutdown_after_parked_client_vanished", test_shutdown_after_parked_client_vanished},
	{"command_lifecycle", test_command_lifecycle},
	{"device_lease_receipts_unenroll", test_device_lease_receipts_unenroll},
	{"command_expiry", test_command_expiry},
	{"restart_keeps_everything", test_restart_keeps_everything},
	{"kill9_after_202_loses_nothing", test_kill9_after_202_loses_nothing},
	{"bad_bodies", test_bad_bodies},
	{"audit_tamper_detected", test_audit_tamper_detected},
	{"policy_versions_and_delivery", test_policy_versions_and_delivery},
	{"enroll_page", test_enroll_page},
	{"metrics_and_health", test_metrics_and_health},
	{"devsim_walkthrough", test_devsim_walkthrough},
	{"check_config", test_check_config},
};

#ifndef TEST_SERVER_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(server_cases, ARRAY_SIZE(server_cases), argc, argv);
}
#endif

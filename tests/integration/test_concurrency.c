/*
 * Concurrency test of cleave-server: for a bounded time, threads act at once on the same devices
 * as admins and as the devices themselves would (signed check-ins that report changing state,
 * admin commands of every type, cancels, policy changes, acks, results with receipts, receipt
 * uploads, lease renewals), against the real server on 127.0.0.1. Afterwards the invariants
 * that admins and hypervisors rely on are checked from the API: no 5xx was ever answered, every
 * 202 command exists once with a counter that grows with creation order, a command whose cancel
 * was answered 200 is canceled and never reached the device, every other command reached the
 * device and finished, each device's desired state follows its last command, and the audit
 * chain verifies. A lost update (a row read before its transaction and written back whole)
 * breaks at least one of these.
 */
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "b64.h"
#include "testlib.h"
#include "util.h"

#define NDEV        3
#define DEV_THREADS 2 /* per device: two connections racing, as retries do */
#define MAX_CMDS    4096
#define RUN_SECONDS 4.0

struct cmd_rec {
	char id[32];
	char device[32];
	char type[16];
	int cancel_ok; /* the cancel was answered 200 */
	int received;  /* a check-in handed it to its device */
};

struct shared {
	struct srv s;
	struct device_sim dev[NDEV];
	atomic_uint_fast64_t nonce[NDEV];
	pthread_mutex_t lock;
	struct cmd_rec cmds[MAX_CMDS];
	size_t ncmds;
	atomic_int stop;
	atomic_int fivexx;
	char first_5xx[512];
	atomic_long requests;
};

static struct shared G;

static void
note_status(const char *what, const struct resp *r)
{
	atomic_fetch_add(&G.requests, 1);
	if (r->status >= 500 || r->status <= 0) {
		if (atomic_fetch_add(&G.fivexx, 1) == 0)
			snprintf(G.first_5xx, sizeof(G.first_5xx), "%s: HTTP %ld %.300s", what,
				 r->status, r->body ? r->body : "");
	}
}

static struct cmd_rec *
cmd_find(const char *id)
{
	for (size_t i = 0; i < G.ncmds; i++)
		if (strcmp(G.cmds[i].id, id) == 0)
			return &G.cmds[i];
	return NULL;
}

/* Records a command (created by an admin, or server-made and first seen at a check-in). */
static struct cmd_rec *
cmd_add(const char *id, const char *device, const char *type)
{
	struct cmd_rec *c = cmd_find(id);

	if (c == NULL && G.ncmds < MAX_CMDS) {
		c = &G.cmds[G.ncmds++];
		memset(c, 0, sizeof(*c));
		str_copy(c->id, sizeof(c->id), id);
		str_copy(c->device, sizeof(c->device), device);
		str_copy(c->type, sizeof(c->type), type);
	}
	return c;
}

/* A signed device request with the device's next nonce (shared by its threads). */
static int
signed_req(int d, struct client *c, const char *method, const char *path, const char *body,
	   struct resp *r)
{
	char hdrs[3][600];
	const char *h[4];
	uint64_t nonce = atomic_fetch_add(&G.nonce[d], 1) + 1;

	dev_sign(&G.dev[d], method, path, body, (int64_t)time(NULL), nonce, hdrs, h);
	return client_req(c, method, path, body, h, r);
}

static unsigned
rnd(unsigned *seed, unsigned n)
{
	return (unsigned)rand_r(seed) % n;
}

/* Acks a command, then reports it done with a receipt (sometimes by upload). */
static void
finish_command(int d, struct client *c, const char *id, const char *type, const char *ticket_b64,
	       unsigned *seed)
{
	uint8_t ticket[TICKET_LEN], rc[RECEIPT_LEN];
	char path[128], body[1024], rb64[512];
	struct resp r;
	int ok = strcmp(type, "retire") != 0; /* a completed retire ends the device */

	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", id);
	if (signed_req(d, c, "POST", path, "{}", &r) == 0)
		note_status("ack", &r);
	resp_free(&r);
	if (b64_decode(ticket, sizeof(ticket), ticket_b64, strlen(ticket_b64)) != TICKET_LEN)
		return;
	dev_receipt(&G.dev[d], ticket, ok ? 0 : 1, rc);
	b64_encode(rb64, sizeof(rb64), rc, sizeof(rc));
	if (ok && rnd(seed, 3) == 0) {
		snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", rb64);
		if (signed_req(d, c, "POST", "/device/v1/receipts", body, &r) == 0)
			note_status("receipts", &r);
	} else {
		snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
		snprintf(body, sizeof(body), "{\"status\":\"%s\",\"receipt\":\"%s\"}",
			 ok ? "completed" : "failed", rb64);
		if (signed_req(d, c, "POST", path, body, &r) == 0)
			note_status("result", &r);
	}
	resp_free(&r);
}

/* One check-in that reports a changing state; finishes whatever it is handed. */
static int
checkin_once(int d, struct client *c, unsigned *seed)
{
	static const char *const states[] = {"active", "locked"};
	char body[256];
	struct resp r;
	json_t *j, *arr, *v;
	size_t i, got = 0;

	snprintf(body, sizeof(body),
		 "{\"wait\":0,\"state\":{\"corporate_state\":\"%s\",\"agent_version\":\"0.1.%u\","
		 "\"key_epoch\":%u}}",
		 states[rnd(seed, 2)], rnd(seed, 1000), 1 + rnd(seed, 5));
	if (signed_req(d, c, "POST", "/device/v1/checkin", body, &r) != 0)
		return -1;
	note_status("checkin", &r);
	j = r.status == 200 ? resp_json(&r) : NULL;
	arr = json_object_get(j, "commands");
	json_array_foreach(arr, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *type = json_string_value(json_object_get(v, "type"));
		const char *tk = json_string_value(json_object_get(v, "ticket"));
		struct cmd_rec *rec;

		if (id == NULL || type == NULL || tk == NULL)
			continue;
		pthread_mutex_lock(&G.lock);
		rec = cmd_add(id, G.dev[d].id, type);
		if (rec != NULL)
			rec->received = 1;
		pthread_mutex_unlock(&G.lock);
		finish_command(d, c, id, type, tk, seed);
		got++;
	}
	json_decref(j);
	resp_free(&r);
	return (int)got;
}

static void *
device_thread(void *arg)
{
	int d = (int)(intptr_t)arg / DEV_THREADS;
	unsigned seed = (unsigned)(intptr_t)arg * 7919u + 1;
	struct client *c = client_new(&G.s, NULL);
	struct resp r;

	for (int i = 0; i < 100000 && !atomic_load(&G.stop); i++) {
		checkin_once(d, c, &seed);
		if (rnd(&seed, 8) == 0) {
			if (signed_req(d, c, "POST", "/device/v1/lease", "{}", &r) == 0)
				note_status("lease", &r);
			resp_free(&r);
		}
	}
	client_free(c);
	return NULL;
}

/* 1 while the records have room for more commands (half the table: server-made ones too). */
static int
records_left(void)
{
	int left;

	pthread_mutex_lock(&G.lock);
	left = G.ncmds < MAX_CMDS / 2;
	pthread_mutex_unlock(&G.lock);
	return left;
}

static void *
admin_thread(void *arg)
{
	static const char *const types[] = {"wipe",    "lock", "unlock", "rekey",
					    "refresh", "lock", "unlock", "retire"};
	unsigned seed = (unsigned)(intptr_t)arg * 104729u + 3;
	struct client *c = client_new(&G.s, G.s.admin);
	char path[128], body[256];
	struct resp r;

	/* Bounded: the records must hold every command (see drain). */
	for (int i = 0; i < 100000 && !atomic_load(&G.stop) && records_left(); i++) {
		int d = (int)rnd(&seed, NDEV);
		const char *type = types[rnd(&seed, ARRAY_SIZE(types))];

		if (rnd(&seed, 16) == 0) {
			/* A policy change: the server queues a policy command for every device. */
			snprintf(
				body, sizeof(body),
				"{\"offline\":{\"lock_after_hours\":%u},\"max_failed_unlocks\":%u}",
				1 + rnd(&seed, 500), 1 + rnd(&seed, 20));
			if (client_req(c, "PUT", "/api/v1/policies/std", body, NULL, &r) == 0)
				note_status("policy", &r);
			resp_free(&r);
			continue;
		}
		snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", G.dev[d].id);
		snprintf(body, sizeof(body), "{\"type\":\"%s\",\"reason\":\"load\"}", type);
		if (client_req(c, "POST", path, body, NULL, &r) != 0)
			continue;
		note_status("command", &r);
		if (r.status == 202) {
			char id[32];

			if (resp_str(&r, "id", id, sizeof(id)) == 0) {
				pthread_mutex_lock(&G.lock);
				cmd_add(id, G.dev[d].id, type);
				pthread_mutex_unlock(&G.lock);
			}
		}
		resp_free(&r);
	}
	client_free(c);
	return NULL;
}

/* Cancels recently created commands; 200 (still queued) and 409 (already delivered) are fine. */
static void *
cancel_thread(void *arg)
{
	unsigned seed = (unsigned)(intptr_t)arg + 17;
	struct client *c = client_new(&G.s, G.s.admin);
	char id[32], path[128];
	struct resp r;

	for (int i = 0; i < 100000 && !atomic_load(&G.stop); i++) {
		pthread_mutex_lock(&G.lock);
		id[0] = '\0';
		if (G.ncmds > 0)
			str_copy(id, sizeof(id),
				 G.cmds[G.ncmds - 1 - rnd(&seed, MIN(G.ncmds, 4))].id);
		pthread_mutex_unlock(&G.lock);
		if (id[0] == '\0')
			continue;
		snprintf(path, sizeof(path), "/api/v1/commands/%s/cancel", id);
		if (client_req(c, "POST", path, "{}", NULL, &r) != 0)
			continue;
		note_status("cancel", &r);
		if (r.status == 200) {
			pthread_mutex_lock(&G.lock);
			cmd_find(id)->cancel_ok = 1;
			pthread_mutex_unlock(&G.lock);
		}
		resp_free(&r);
	}
	client_free(c);
	return NULL;
}

static const char *
desired_after(const char *type)
{
	if (strcmp(type, "wipe") == 0 || strcmp(type, "retire") == 0)
		return "wiped";
	if (strcmp(type, "lock") == 0)
		return "locked";
	if (strcmp(type, "unlock") == 0)
		return "active";
	return NULL;
}

/* Reads every command of a device (in creation order) into arr (caller decrefs). */
static json_t *
device_commands(struct client *admin, const char *dev)
{
	json_t *all = json_array();
	char path[256], cursor[128] = "";

	for (int page = 0; page < 100; page++) {
		struct resp r;
		json_t *j, *v;
		size_t i;
		const char *next;

		snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?limit=200%s%s", dev,
			 cursor[0] ? "&cursor=" : "", cursor);
		if (client_req(admin, "GET", path, NULL, NULL, &r) != 0 || r.status != 200) {
			resp_free(&r);
			break;
		}
		j = resp_json(&r);
		resp_free(&r);
		json_array_foreach(json_object_get(j, "items"), i, v) json_array_append(all, v);
		next = json_string_value(json_object_get(j, "next_cursor"));
		if (next == NULL) {
			json_decref(j);
			break;
		}
		str_copy(cursor, sizeof(cursor), next);
		json_decref(j);
	}
	return all;
}

/* Checks one device's commands against what the clients saw; 0 or -1 (printed). */
static int
check_device(struct client *admin, int d)
{
	json_t *arr = device_commands(admin, G.dev[d].id), *v, *dj;
	const char *want = "active", *got;
	int64_t last = 0;
	size_t i, n202 = 0, seen = 0;
	char path[128];
	struct resp r;
	int bad = 0;

	json_array_foreach(arr, i, v)
	{
		const char *id = json_string_value(json_object_get(v, "id"));
		const char *st = json_string_value(json_object_get(v, "status"));
		const char *type = json_string_value(json_object_get(v, "type"));
		int64_t counter = json_integer_value(json_object_get(v, "counter"));
		struct cmd_rec *rec = cmd_find(id);

		if (counter <= last) {
			printf("    %s: command %s has counter %lld after %lld\n", G.dev[d].id, id,
			       (long long)counter, (long long)last);
			bad = 1;
		}
		last = counter;
		if (rec != NULL)
			seen++;
		if (rec != NULL && rec->cancel_ok &&
		    (strcmp(st, "canceled") != 0 || rec->received)) {
			printf("    %s: command %s was canceled (200) but is %s%s\n", G.dev[d].id,
			       id, st, rec->received ? " and reached the device" : "");
			bad = 1;
		}
		if (strcmp(st, "canceled") != 0 && strcmp(st, "completed") != 0 &&
		    strcmp(st, "failed") != 0) {
			printf("    %s: command %s (%s) is still %s after the drain\n", G.dev[d].id,
			       id, type, st);
			bad = 1;
		}
		if (strcmp(st, "canceled") != 0 && desired_after(type) != NULL)
			want = desired_after(type);
	}
	for (i = 0; i < G.ncmds; i++)
		if (strcmp(G.cmds[i].device, G.dev[d].id) == 0)
			n202++;
	if (seen != n202) {
		printf("    %s: the clients saw %zu commands, the API lists %zu of them\n",
		       G.dev[d].id, n202, seen);
		bad = 1;
	}
	snprintf(path, sizeof(path), "/api/v1/devices/%s", G.dev[d].id);
	if (client_req(admin, "GET", path, NULL, NULL, &r) == 0 && (dj = resp_json(&r)) != NULL) {
		got = json_string_value(
			json_object_get(json_object_get(dj, "corporate_state"), "desired"));
		if (got == NULL || strcmp(got, want) != 0) {
			printf("    %s: desired state %s, its last command says %s\n", G.dev[d].id,
			       got ? got : "?", want);
			bad = 1;
		}
		json_decref(dj);
	}
	resp_free(&r);
	printf("    %s: %zu commands, last counter %lld\n", G.dev[d].id, json_array_size(arr),
	       (long long)last);
	json_decref(arr);
	return bad ? -1 : 0;
}

/* Hands every device what is still open until nothing is (bounded). */
static void
drain(void)
{
	unsigned seed = 99;
	struct client *c = client_new(&G.s, NULL);

	/* A check-in hands out at most 16 commands: enough rounds for every recorded one. */
	for (int d = 0; d < NDEV; d++)
		for (int round = 0; round < MAX_CMDS / 16 + 8 && checkin_once(d, c, &seed) > 0;
		     round++)
			;
	client_free(c);
}

static void
test_parallel_invariants(void)
{
	pthread_t th[NDEV * DEV_THREADS + 3];
	size_t nth = 0;
	struct client *admin;
	struct resp r;
	double t0;

	memset(&G, 0, sizeof(G));
	pthread_mutex_init(&G.lock, NULL);
	CHECK(srv_init(&G.s, "concurrency") == 0 && srv_start(&G.s, NULL) == 0,
	      "server did not start");
	admin = client_new(&G.s, G.s.admin);
	CHECK(client_req(admin, "PUT", "/api/v1/policies/std", "{}", NULL, &r) == 0 &&
		      r.status == 201,
	      "policy");
	resp_free(&r);
	for (int d = 0; d < NDEV; d++) {
		char tok[128];

		CHECK(dev_init(&G.dev[d]) == 0 &&
			      admin_etoken(admin, "load@example.com", 1, tok, sizeof(tok)) == 0,
		      "token");
		CHECK(dev_enroll(&G.dev[d], admin, tok, &r) == 0 && r.status == 201, "enroll");
		resp_free(&r);
	}
	t0 = now_s();
	for (int i = 0; i < NDEV * DEV_THREADS; i++)
		pthread_create(&th[nth++], NULL, device_thread, (void *)(intptr_t)i);
	pthread_create(&th[nth++], NULL, admin_thread, (void *)(intptr_t)1);
	pthread_create(&th[nth++], NULL, admin_thread, (void *)(intptr_t)2);
	pthread_create(&th[nth++], NULL, cancel_thread, (void *)(intptr_t)3);
	while (now_s() - t0 < RUN_SECONDS && atomic_load(&G.fivexx) == 0)
		nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
	atomic_store(&G.stop, 1);
	for (size_t i = 0; i < nth; i++)
		pthread_join(th[i], NULL);
	printf("    %ld requests, %zu commands seen in %.1f s\n", atomic_load(&G.requests), G.ncmds,
	       now_s() - t0);
	CHECK(atomic_load(&G.fivexx) == 0, "a server error was answered: %s", G.first_5xx);
	drain();
	CHECK(atomic_load(&G.fivexx) == 0, "a server error was answered: %s", G.first_5xx);
	for (int d = 0; d < NDEV; d++)
		CHECK(check_device(admin, d) == 0, "invariants of device %d", d);
	CHECK(client_req(admin, "GET", "/api/v1/audit/verify", NULL, NULL, &r) == 0 &&
		      r.status == 200 && strstr(r.body, "\"ok\":true") != NULL,
	      "audit chain: %s", r.body ? r.body : "");
	resp_free(&r);
	client_free(admin);
	for (int d = 0; d < NDEV; d++)
		dev_fini(&G.dev[d]);
	CHECK(srv_stop(&G.s, SIGTERM) == 0, "clean stop");
	srv_cleanup(&G.s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"parallel_invariants", test_parallel_invariants},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

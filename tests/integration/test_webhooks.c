/*
 * Integration test of signed webhooks (issue 11 §3) against the real cleave-server and a real
 * receiver on 127.0.0.1 (tests/lib/hookrx.c), which checks every Standard Webhooks signature
 * with its own code. The server's webhook delays run 1000 times faster (the test setting
 * webhook_test_time_divisor), so "an hour" of backoff is 3.6 s and the 26 h retry window 94 s.
 * Cases: the subscription routes and who may use them; a receiver down for an hour then up gets
 * every event, in order, signed; a subscription that keeps failing past the retry window is
 * disabled (audited) and, re-enabled, delivers everything it kept; kill -9 of the server while
 * a delivery is in flight loses nothing (the event comes again with the same webhook-id); a
 * receiver that takes 30 s does not slow wipes; a manual redelivery. test_webhooks_pg runs
 * them on PostgreSQL, with two servers sharing the deliveries.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "fileio.h"
#include "hookrx.h"
#include "testlib.h"
#include "util.h"

/* The private PostgreSQL cluster when test_webhooks_pg runs these cases; NULL on SQLite. */
static struct pgtest *env_pg;

struct env {
	struct srv s;
	struct client *admin, *anon;
	struct hookrx *rx;
	char conf[PATH_MAX + 16];
	char hook[64], secret[128];
};

static int
env_up(struct env *e, const char *tag, long divisor, int timeout_s)
{
	const char *extra[] = {"--config", e->conf, NULL};
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || srv_use_pg(&e->s, env_pg) != 0)
		return -1;
	snprintf(e->conf, sizeof(e->conf), "%.*s/server.conf", (int)strlen(e->s.dir) - 5, e->s.dir);
	f = fopen(e->conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f,
		"webhook_test_time_divisor = %ld\nwebhook_timeout_seconds = %d\nbulk_batch = 5\n",
		divisor, timeout_s);
	fclose(f);
	e->rx = hookrx_new();
	if (e->rx == NULL || srv_start(&e->s, extra) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->anon = client_new(&e->s, NULL);
	return e->admin && e->anon ? 0 : -1;
}

static void
env_down(struct env *e)
{
	hookrx_free(e->rx);
	client_free(e->admin);
	client_free(e->anon);
	srv_cleanup(&e->s);
	unlink(e->conf);
}

/* Subscribes the receiver to events (a JSON array's text); id and secret into e. HTTP status. */
static long
subscribe(struct env *e, const char *events)
{
	char body[512];
	struct resp r;
	long st = -1;

	snprintf(body, sizeof(body), "{\"url\":\"%s\",\"events\":%s,\"description\":\"<b>ci</b>\"}",
		 hookrx_url(e->rx), events);
	if (client_req(e->admin, "POST", "/api/v1/webhooks", body, NULL, &r) == 0) {
		st = r.status;
		if (resp_str(&r, "id", e->hook, sizeof(e->hook)) != 0 ||
		    resp_str(&r, "secret", e->secret, sizeof(e->secret)) != 0)
			e->hook[0] = e->secret[0] = '\0';
	}
	resp_free(&r);
	hookrx_set_secret(e->rx, e->secret);
	return st;
}

/* The subscription as the API shows it (caller decrefs); NULL unless 200. */
static json_t *
hook_get(struct env *e)
{
	char p[128];
	long st;

	snprintf(p, sizeof(p), "/api/v1/webhooks/%s", e->hook);
	return client_get_json(e->admin, p, &st);
}

/*
 * Makes n devices, each enrolled then locked: the events device.enrolled and command.queued,
 * in that order; want gets "type device_id" for each, in the order they happened.
 */
static int
make_events(struct env *e, struct device_sim *d, int n, char (*want)[96])
{
	char cmd[64];

	for (int i = 0; i < n; i++) {
		char owner[64];

		snprintf(owner, sizeof(owner), "user%d@example.com", i);
		if (admin_enroll(e->admin, e->anon, &d[i], owner) != 0)
			return -1;
		snprintf(want[2 * i], 96, "device.enrolled %s", d[i].id);
		if (admin_command(e->admin, d[i].id, "lock", cmd, sizeof(cmd)) != 202)
			return -1;
		snprintf(want[2 * i + 1], 96, "command.queued %s", d[i].id);
	}
	return 0;
}

/* The device_id in a message's data. */
static void
msg_device(const struct hookrx_msg *m, char *out, size_t cap)
{
	json_t *j = json_loads(m->data, 0, NULL);

	str_copy(out, cap,
		 j && json_string_value(json_object_get(j, "device_id"))
			 ? json_string_value(json_object_get(j, "device_id"))
			 : "");
	json_decref(j);
}

/*
 * The 2xx deliveries, duplicates (same webhook-id) dropped as a receiver would, must be want's
 * n events in order, each with a valid signature. 0, or -1 with why.
 */
static int
check_received(struct env *e, char (*want)[96], size_t n, char *why, size_t cap)
{
	char seen[256][64], dev[64], got[96];
	size_t k = 0, total = hookrx_count(e->rx);
	struct hookrx_msg m;

	for (size_t i = 0; i < total; i++) {
		int dup = 0;

		if (hookrx_get(e->rx, i, &m) != 0 || !m.answered_ok)
			continue;
		if (!m.sig_ok) {
			snprintf(why, cap, "delivery %zu (%s) has a bad signature", i, m.id);
			return -1;
		}
		for (size_t j = 0; j < k; j++)
			dup |= strcmp(seen[j], m.id) == 0;
		if (dup)
			continue;
		if (k >= n || k >= ARRAY_SIZE(seen)) {
			snprintf(why, cap, "more events than the %zu made", n);
			return -1;
		}
		str_copy(seen[k], sizeof(seen[k]), m.id);
		msg_device(&m, dev, sizeof(dev));
		snprintf(got, sizeof(got), "%s %s", m.type, dev);
		if (strcmp(got, want[k]) != 0) {
			snprintf(why, cap, "event %zu is '%s', want '%s'", k, got, want[k]);
			return -1;
		}
		k++;
	}
	if (k != n) {
		snprintf(why, cap, "%zu of the %zu events arrived", k, n);
		return -1;
	}
	return 0;
}

#define ALL_EVENTS                                                                                 \
	"[\"device.enrolled\",\"device.retired\",\"command.queued\",\"command.completed\","        \
	"\"wipe.verified\",\"compliance.changed\",\"audit.checkpoint\",\"approval.requested\"]"

/* What make_events makes (others, such as audit checkpoints, come at their own times). */
#define ORDER_EVENTS "[\"device.enrolled\",\"command.queued\"]"

/* Bad bodies get 422 (or 400); 0, or -1 with the first that did not into why. */
static int
bad_input_refused(struct env *e, char *why, size_t cap)
{
	static const char *const bad[] = {
		"{\"url\":\"http://example.com/x\",\"events\":[\"command.queued\"]}",
		"{\"url\":\"ftp://127.0.0.1/x\",\"events\":[\"command.queued\"]}",
		"{\"url\":\"https://h.example/x\",\"events\":[\"nope\"]}",
		"{\"url\":\"https://h.example/x\",\"events\":[]}",
		"{\"url\":\"https://h.example/"
		"x\",\"events\":[\"command.queued\",\"command.queued\"]}",
		"{\"url\":\"https://h.example/x\"}",
		"{\"url\":\"https://h.example/x\",\"events\":[\"command.queued\"],\"extra\":1}",
	};
	struct resp r;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		long st = client_req(e->admin, "POST", "/api/v1/webhooks", bad[i], NULL, &r) == 0
				  ? r.status
				  : -1;

		resp_free(&r);
		if (st != 422 && st != 400) {
			snprintf(why, cap, "%s: HTTP %ld", bad[i], st);
			return -1;
		}
	}
	return 0;
}

static void
test_routes_and_roles(void)
{
	struct env e;
	char tok[128], p[160], secret2[128], why[256];
	struct client *help;
	struct resp r;
	json_t *j;

	CHECK(env_up(&e, "hook-routes", 1000, 2) == 0, "server did not start");
	CHECK(subscribe(&e, ALL_EVENTS) == 201, "create");
	CHECK(strncmp(e.secret, "whsec_", 6) == 0 && strlen(e.secret) == 6 + 44,
	      "secret '%s' is not whsec_ + base64 of 32 bytes", e.secret);
	j = hook_get(&e);
	CHECK(j != NULL, "get");
	CHECK(json_object_get(j, "secret") == NULL, "the secret shows after creation");
	CHECK(json_is_true(json_object_get(j, "enabled")), "not enabled");
	CHECK(strcmp(json_string_value(json_object_get(j, "description")), "<b>ci</b>") == 0,
	      "description");
	json_decref(j);
	CHECK(bad_input_refused(&e, why, sizeof(why)) == 0, "%s", why);
	/* Helpdesk and auditor may not see or change subscriptions. */
	CHECK(admin_token(e.admin, "helpdesk", tok, sizeof(tok)) == 0, "token");
	help = client_new(&e.s, tok);
	CHECK(client_req(help, "GET", "/api/v1/webhooks", NULL, NULL, &r) == 0, "get");
	CHECK_STATUS(r, 403);
	resp_free(&r);
	client_free(help);
	/* Rotate: a new secret, shown once. */
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s/rotate-secret", e.hook);
	CHECK(client_req(e.admin, "POST", p, "{}", NULL, &r) == 0, "rotate");
	CHECK_STATUS(r, 200);
	CHECK(resp_str(&r, "secret", secret2, sizeof(secret2)) == 0 &&
		      strcmp(secret2, e.secret) != 0,
	      "rotate gave no new secret");
	resp_free(&r);
	/* Update, list, delete. */
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s", e.hook);
	CHECK(client_req(e.admin, "PATCH", p, "{\"enabled\":false}", NULL, &r) == 0, "patch");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	j = hook_get(&e);
	CHECK(j && json_is_false(json_object_get(j, "enabled")), "still enabled");
	json_decref(j);
	CHECK(client_req(e.admin, "DELETE", p, NULL, NULL, &r) == 0, "delete");
	CHECK_STATUS(r, 204);
	resp_free(&r);
	CHECK(client_req(e.admin, "GET", p, NULL, NULL, &r) == 0, "get");
	CHECK_STATUS(r, 404);
	resp_free(&r);
	env_down(&e);
}

#define NDEV 4

static void
test_down_an_hour_then_every_event(void)
{
	struct env e;
	struct device_sim d[NDEV];
	char want[2 * NDEV][96], why[256], p[160];
	long st;
	json_t *j;

	CHECK(env_up(&e, "hook-down", 1000, 2) == 0, "server did not start");
	CHECK(subscribe(&e, ORDER_EVENTS) == 201, "subscribe");
	CHECK(make_events(&e, d, NDEV, want) == 0, "making the events");
	/* Down for "an hour": 3.6 s at this scale; the attempts back off and fail. */
	sleep(4);
	CHECK(hookrx_count(e.rx) == 0, "the receiver is down, yet got something");
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s/deliveries?limit=100", e.hook);
	j = client_get_json(e.admin, p, &st);
	CHECK(j != NULL && json_array_size(json_object_get(j, "items")) >= 5,
	      "%zu failed attempts logged in an hour, want the backoff's several",
	      json_array_size(json_object_get(j, "items")));
	CHECK(json_is_false(json_object_get(json_array_get(json_object_get(j, "items"), 0), "ok")),
	      "an attempt to a receiver that is down is logged as a success");
	json_decref(j);
	j = hook_get(&e);
	CHECK(j && json_integer_value(
			   json_object_get(json_object_get(j, "delivery"), "failed_attempts")) >= 5,
	      "failed attempts not counted");
	json_decref(j);
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	CHECK(hookrx_wait_ok(e.rx, 2 * NDEV, 30) == 0,
	      "%zu of %d events came after the receiver "
	      "was up again",
	      hookrx_count_ok(e.rx), 2 * NDEV);
	CHECK(check_received(&e, want, 2 * NDEV, why, sizeof(why)) == 0, "%s", why);
	CHECK(hookrx_count_ok(e.rx) == 2 * NDEV, "duplicates without a crash");
	CHECK(hookrx_max_inflight(e.rx) == 1, "%d deliveries of one subscription at once",
	      hookrx_max_inflight(e.rx));
	for (int i = 0; i < NDEV; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

static void
test_disabled_past_window_then_resumes(void)
{
	struct env e;
	struct device_sim d[2];
	char want[4][96], why[256], p[160];
	double end;
	json_t *j = NULL;
	struct resp r;
	long st;

	/* 100000 times faster: the 26 h window is under a second. */
	CHECK(env_up(&e, "hook-dead", 100000, 2) == 0, "server did not start");
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	hookrx_set_mode(e.rx, RX_FAIL);
	CHECK(subscribe(&e, ORDER_EVENTS) == 201, "subscribe");
	CHECK(make_events(&e, d, 2, want) == 0, "making the events");
	for (end = now_s() + 20; now_s() < end; usleep(100000)) {
		json_decref(j);
		j = hook_get(&e);
		if (j && json_is_false(json_object_get(j, "enabled")))
			break;
	}
	CHECK(j && json_is_false(json_object_get(j, "enabled")) &&
		      json_string_value(json_object_get(j, "disabled_reason")),
	      "a subscription failing past its retry window is still enabled");
	json_decref(j);
	j = client_get_json(e.admin, "/api/v1/audit?action=webhook.disable", &st);
	CHECK(j && json_array_size(json_object_get(j, "items")) == 1, "no webhook.disable audit");
	json_decref(j);
	/* Re-enabled with the receiver fixed: everything it kept arrives, in order. */
	hookrx_set_mode(e.rx, RX_OK);
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s", e.hook);
	CHECK(client_req(e.admin, "PATCH", p, "{\"enabled\":true}", NULL, &r) == 0, "patch");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(hookrx_wait_ok(e.rx, 4, 20) == 0, "%zu of 4 events after re-enabling",
	      hookrx_count_ok(e.rx));
	CHECK(check_received(&e, want, 4, why, sizeof(why)) == 0, "%s", why);
	dev_fini(&d[0]);
	dev_fini(&d[1]);
	env_down(&e);
}

static void
test_kill9_mid_delivery_loses_nothing(void)
{
	const char *extra[3] = {"--config", NULL, NULL};
	struct env e;
	struct device_sim d[3];
	char want[6][96], why[256];

	CHECK(env_up(&e, "hook-kill", 1000, 3) == 0, "server did not start");
	extra[1] = e.conf;
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	hookrx_set_mode(e.rx, RX_SLOW); /* the first delivery hangs: the server is mid-way */
	CHECK(subscribe(&e, ORDER_EVENTS) == 201, "subscribe");
	CHECK(make_events(&e, d, 3, want) == 0, "making the events");
	/* A worker picks the first event up within a second; its request then hangs. */
	usleep(1500000);
	srv_stop(&e.s, SIGKILL);
	hookrx_down(e.rx);
	hookrx_set_mode(e.rx, RX_OK);
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	CHECK(srv_start(&e.s, extra) == 0, "restart");
	/*
	 * The request in flight at the kill was answered too (when the receiver went down), and
	 * comes again with the same webhook-id: 7 deliveries of the 6 events.
	 */
	CHECK(hookrx_wait_ok(e.rx, 7, 40) == 0, "%zu deliveries after the restart, want 7",
	      hookrx_count_ok(e.rx));
	CHECK(check_received(&e, want, 6, why, sizeof(why)) == 0, "%s", why);
	for (int i = 0; i < 3; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

static void
test_slow_receiver_does_not_slow_wipes(void)
{
	struct env e;
	struct device_sim d[6];
	char cmd[64], owner[64];
	double t0, worst = 0;

	CHECK(env_up(&e, "hook-slow", 1, 30) == 0, "server did not start");
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	hookrx_set_mode(e.rx, RX_SLOW);
	CHECK(subscribe(&e, "[\"command.queued\",\"device.enrolled\"]") == 201, "subscribe");
	for (int i = 0; i < 6; i++) {
		snprintf(owner, sizeof(owner), "slow%d@example.com", i);
		CHECK(admin_enroll(e.admin, e.anon, &d[i], owner) == 0, "enroll");
	}
	for (int i = 0; i < 6; i++) {
		t0 = now_s();
		CHECK(admin_command(e.admin, d[i].id, "wipe", cmd, sizeof(cmd)) == 202, "wipe");
		if (now_s() - t0 > worst)
			worst = now_s() - t0;
	}
	CHECK(worst < 1.0, "a wipe took %.2f s while the receiver sleeps", worst);
	/* A stop does not wait for the receiver either: the transfer in flight is cut. */
	t0 = now_s();
	CHECK(srv_stop(&e.s, SIGTERM) == 0, "the server did not stop cleanly");
	CHECK(now_s() - t0 < 5.0, "the stop took %.1f s while a delivery hung", now_s() - t0);
	hookrx_down(e.rx); /* ends the sleeping requests */
	for (int i = 0; i < 6; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

static void
test_manual_redelivery(void)
{
	struct env e;
	struct device_sim d;
	char p[200], first[64];
	struct hookrx_msg m;
	long long did;
	struct resp r;
	json_t *j;
	long st;

	CHECK(env_up(&e, "hook-redo", 1000, 2) == 0, "server did not start");
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	CHECK(subscribe(&e, "[\"device.enrolled\"]") == 201, "subscribe");
	CHECK(admin_enroll(e.admin, e.anon, &d, "redo@example.com") == 0, "enroll");
	CHECK(hookrx_wait_ok(e.rx, 1, 10) == 0, "the event did not come");
	CHECK(hookrx_get(e.rx, 0, &m) == 0 && m.sig_ok, "bad signature");
	str_copy(first, sizeof(first), m.id);
	/* The receiver may answer before the server has recorded the attempt: poll a moment. */
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s/deliveries", e.hook);
	j = NULL;
	for (double end = now_s() + 5; now_s() < end; usleep(50000)) {
		json_decref(j);
		j = client_get_json(e.admin, p, &st);
		if (j && json_array_size(json_object_get(j, "items")) > 0)
			break;
	}
	CHECK(j && json_array_size(json_object_get(j, "items")) == 1, "one delivery logged");
	did = json_integer_value(
		json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"));
	CHECK(json_is_true(json_object_get(json_array_get(json_object_get(j, "items"), 0), "ok")),
	      "delivery not ok");
	json_decref(j);
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s/deliveries/%lld/redeliver", e.hook, did);
	CHECK(client_req(e.admin, "POST", p, NULL, NULL, &r) == 0, "redeliver");
	CHECK_STATUS(r, 202);
	resp_free(&r);
	CHECK(hookrx_wait_ok(e.rx, 2, 10) == 0, "the redelivery did not come");
	CHECK(hookrx_get(e.rx, 1, &m) == 0 && m.sig_ok && strcmp(m.id, first) == 0,
	      "the redelivery has another webhook-id or a bad signature");
	snprintf(p, sizeof(p), "/api/v1/webhooks/%s/deliveries/999999/redeliver", e.hook);
	CHECK(client_req(e.admin, "POST", p, NULL, NULL, &r) == 0, "redeliver");
	CHECK_STATUS(r, 404);
	resp_free(&r);
	dev_fini(&d);
	env_down(&e);
}

#define NBULK 12

/* A bulk by filter (batches of 5; set-based on PostgreSQL): one event per device, in order. */
static void
test_bulk_events(void)
{
	struct env e;
	struct device_sim d[NBULK];
	char owner[64], want[NBULK][96], why[256], body[160];
	struct resp r;

	CHECK(env_up(&e, "hook-bulk", 1000, 2) == 0, "server did not start");
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	for (int i = 0; i < NBULK; i++) {
		snprintf(owner, sizeof(owner), "bulk%02d@example.com", i);
		CHECK(admin_enroll(e.admin, e.anon, &d[i], owner) == 0, "enroll");
		snprintf(want[i], sizeof(want[i]), "command.queued %s", d[i].id);
	}
	CHECK(subscribe(&e, "[\"command.queued\"]") == 201, "subscribe");
	snprintf(body, sizeof(body),
		 "{\"type\":\"lock\",\"filter\":{\"q\":\"bulk\"},\"expected_count\":%d}", NBULK);
	CHECK(client_req(e.admin, "POST", "/api/v1/commands/bulk", body, NULL, &r) == 0, "bulk");
	CHECK_STATUS(r, 202);
	resp_free(&r);
	CHECK(hookrx_wait_ok(e.rx, NBULK, 30) == 0, "%zu of %d events of the bulk",
	      hookrx_count_ok(e.rx), NBULK);
	CHECK(check_received(&e, want, NBULK, why, sizeof(why)) == 0, "%s", why);
	for (int i = 0; i < NBULK; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

/* The device unenrolls; its retire's verified receipt is uploaded. 0 or -1. */
static int
retire_with_receipt(struct device_sim *d, struct client *dc)
{
	uint8_t tk[TICKET_LEN + 8], rcpt[RECEIPT_LEN];
	char rb64[512], body[600];
	const char *t;
	struct resp r;
	json_t *j;
	int ok;

	if (dev_req(d, dc, "POST", "/device/v1/unenroll", "{}", 0, &r) != 0)
		return -1;
	j = resp_json(&r);
	resp_free(&r);
	t = json_string_value(json_object_get(json_object_get(j, "command"), "ticket"));
	ok = t && b64_decode(tk, sizeof(tk), t, strlen(t)) == TICKET_LEN;
	json_decref(j);
	if (!ok)
		return -1;
	dev_receipt(d, tk, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", rb64);
	if (dev_req(d, dc, "POST", "/device/v1/receipts", body, 0, &r) != 0)
		return -1;
	ok = r.status == 200;
	resp_free(&r);
	return ok ? 0 : -1;
}

/* A retire completed with a verified receipt: its four events, in the transaction's order. */
static void
test_retire_events(void)
{
	struct env e;
	struct device_sim d;
	char want[4][96], why[256];
	struct hookrx_msg m;
	json_t *j;

	CHECK(env_up(&e, "hook-retire", 1000, 2) == 0, "server did not start");
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	CHECK(admin_enroll(e.admin, e.anon, &d, "leaver@example.com") == 0, "enroll");
	CHECK(subscribe(&e, "[\"device.retired\",\"compliance.changed\",\"command.completed\","
			    "\"wipe.verified\"]") == 201,
	      "subscribe");
	CHECK(retire_with_receipt(&d, e.anon) == 0, "the retire and its receipt");
	snprintf(want[0], 96, "device.retired %s", d.id);
	snprintf(want[1], 96, "compliance.changed %s", d.id);
	snprintf(want[2], 96, "command.completed %s", d.id);
	snprintf(want[3], 96, "wipe.verified %s", d.id);
	CHECK(hookrx_wait_ok(e.rx, 4, 10) == 0, "%zu of 4 events", hookrx_count_ok(e.rx));
	CHECK(check_received(&e, want, 4, why, sizeof(why)) == 0, "%s", why);
	CHECK(hookrx_get(e.rx, 2, &m) == 0, "event 2");
	j = json_loads(m.data, 0, NULL);
	CHECK(j && json_is_true(json_object_get(j, "verified")) &&
		      strcmp(json_string_value(json_object_get(j, "type")), "retire") == 0,
	      "command.completed without verified: %s", m.data);
	json_decref(j);
	CHECK(hookrx_get(e.rx, 1, &m) == 0 && strstr(m.data, "\"reported_state\":\"wiped\""),
	      "compliance.changed does not say wiped: %s", m.data);
	dev_fini(&d);
	env_down(&e);
}

/* How many rows of the subscription hold a sealed secret ("v1:") without plain's key text. */
static long long
sealed_rows(struct env *e, const char *plain)
{
	char sql[512];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM webhooks WHERE id = '%s' AND secret LIKE 'v1:%%' AND "
		 "secret NOT LIKE '%%%s%%'",
		 e->hook, plain + 6);
	return srv_db_int(&e->s, sql);
}

/* Writes plain as the subscription's secret the way a server before sealing did. 0 or -1. */
static int
write_plain(struct env *e, const char *plain)
{
	char sql[512];

	snprintf(sql, sizeof(sql), "UPDATE webhooks SET secret = '%s' WHERE id = '%s'", plain,
		 e->hook);
	hookrx_set_secret(e->rx, plain);
	return srv_db_exec(&e->s, sql);
}

/* Starts e's server again with extra (its port changes: new clients). 0 or -1. */
static int
restart(struct env *e, const char *const *extra)
{
	if (srv_start(&e->s, extra) != 0)
		return -1;
	client_free(e->admin);
	client_free(e->anon);
	e->admin = client_new(&e->s, e->s.admin);
	e->anon = client_new(&e->s, NULL);
	return e->admin && e->anon ? 0 : -1;
}

/* One device enrolled and locked: two events; waits until the receiver has want 2xx in all. */
static int
two_more_events(struct env *e, struct device_sim *d, const char *owner, size_t want)
{
	char cmd[64];

	if (admin_enroll(e->admin, e->anon, d, owner) != 0 ||
	    admin_command(e->admin, d->id, "lock", cmd, sizeof(cmd)) != 202)
		return -1;
	return hookrx_wait_ok(e->rx, want, 15);
}

/* The error of the newest entry of a delivery log (GET .../deliveries), "" when none. */
static const char *
last_error(json_t *log)
{
	const char *s = json_string_value(
		json_object_get(json_array_get(json_object_get(log, "items"), 0), "error"));

	return s != NULL ? s : "";
}

/* Every delivery the receiver answered 2xx carries a signature valid for its secret then. */
static int
all_signed(struct env *e)
{
	struct hookrx_msg m;

	for (size_t i = 0; i < hookrx_count(e->rx); i++)
		if (hookrx_get(e->rx, i, &m) != 0 || (m.answered_ok && !m.sig_ok))
			return -1;
	return 0;
}

/*
 * The secret is sealed at rest; one written in the clear by an older server still signs and
 * is sealed at its first use, or at the next start; a server with other keys cannot open it:
 * its deliveries fail with a clear error (the delivery log and the server's log), no crash.
 */
static void
test_secrets_sealed_at_rest(void)
{
	static const char old_a[] = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
	static const char old_b[] = "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
	const char *renew[] = {"--config", NULL, "--accept-new-keys", NULL};
	char path[PATH_MAX + 32], keys[PATH_MAX + 16], why[256] = "";
	const char *same[] = {"--config", NULL, NULL};
	struct device_sim d[3];
	struct env e;
	char *log;
	json_t *j;
	long st;

	CHECK(env_up(&e, "hook-seal", 1000, 2) == 0, "server did not start");
	renew[1] = same[1] = e.conf;
	CHECK(hookrx_up(e.rx) == 0, "receiver up");
	CHECK(subscribe(&e, ORDER_EVENTS) == 201, "subscribe");
	CHECK(strncmp(e.secret, "whsec_", 6) == 0, "the API shows %s", e.secret);
	CHECK(sealed_rows(&e, e.secret) == 1, "the database holds the secret in the clear");
	/* An older server's row, in the clear: signs, and is sealed at its first use. */
	CHECK(write_plain(&e, old_a) == 0, "write the old way");
	CHECK(two_more_events(&e, &d[0], "seal0@example.com", 2) == 0, "%zu of 2 events",
	      hookrx_count_ok(e.rx));
	CHECK(all_signed(&e) == 0, "a delivery with the old secret is not signed with it");
	CHECK(sealed_rows(&e, old_a) == 1, "not sealed after its first use");
	/* ... or at the next start, before any delivery. */
	CHECK(srv_stop(&e.s, SIGTERM) == 0, "stop");
	CHECK(write_plain(&e, old_b) == 0, "write the old way");
	CHECK(restart(&e, same) == 0, "start again");
	CHECK(sealed_rows(&e, old_b) == 1, "not sealed at start");
	CHECK(two_more_events(&e, &d[1], "seal1@example.com", 4) == 0, "%zu of 4 events",
	      hookrx_count_ok(e.rx));
	CHECK(all_signed(&e) == 0, "a delivery after the start is not signed with the secret");
	/* Other keys: nothing delivered, a clear error, the server still serves. */
	CHECK(srv_stop(&e.s, SIGTERM) == 0, "stop");
	snprintf(keys, sizeof(keys), "%s/keys", e.s.dir);
	snprintf(path, sizeof(path), "%s.old", keys);
	CHECK(rename(keys, path) == 0, "move the keys away");
	CHECK(restart(&e, renew) == 0, "start with other keys");
	CHECK(two_more_events(&e, &d[2], "seal2@example.com", 0) == 0, "two more events");
	snprintf(path, sizeof(path), "/api/v1/webhooks/%s/deliveries", e.hook);
	for (int i = 0; i < 100 && why[0] == '\0'; i++) { /* the first attempt's entry, 10 s */
		usleep(100000);
		j = client_get_json(e.admin, path, &st);
		str_copy(why, sizeof(why), last_error(j));
		json_decref(j);
	}
	CHECK(hookrx_count_ok(e.rx) == 4, "%zu deliveries", hookrx_count_ok(e.rx));
	CHECK(strstr(why, "does not open with this server's keys") != NULL,
	      "the delivery log says '%s'", why);
	log = file_read_all(e.s.log, 1 << 24, NULL);
	CHECK(log && strstr(log, "does not open with this server's keys"),
	      "the server's log does not say why");
	free(log);
	for (int i = 0; i < 3; i++)
		dev_fini(&d[i]);
	env_down(&e);
}

static const struct t_case hook_cases[] = {
	{"secrets_sealed_at_rest", test_secrets_sealed_at_rest},
	{"retire_events", test_retire_events},
	{"bulk_events", test_bulk_events},
	{"routes_and_roles", test_routes_and_roles},
	{"down_an_hour_then_every_event", test_down_an_hour_then_every_event},
	{"disabled_past_window_then_resumes", test_disabled_past_window_then_resumes},
	{"kill9_mid_delivery_loses_nothing", test_kill9_mid_delivery_loses_nothing},
	{"slow_receiver_does_not_slow_wipes", test_slow_receiver_does_not_slow_wipes},
	{"manual_redelivery", test_manual_redelivery},
};

#ifndef TEST_HOOKS_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(hook_cases, ARRAY_SIZE(hook_cases), argc, argv);
}
#endif

/*
 * The wipe from the console, end to end: the real cleave-server, cleave-hv and cleave-agent on
 * 127.0.0.1 (tests/lib/e2e.h; cleave-hv's wipe needs no /dev/kvm) and a real browser.
 * wipe_in_browser enrolls the agent for an owner made of markup, checks that a helpdesk token's
 * wipe is refused (403), and runs tests/browser/wipe.test.mjs "full": helpdesk in the console,
 * then the admin's wipe through the typed confirmation up to "receipt verified ✓", the receipt
 * view and the openssl steps it prints, run on its downloads. Without a browser the wipe is
 * queued through the API instead. Either way the case then checks the receipt routes the view
 * uses against the command's own bytes. wipe_keyboard_only wipes a fresh device with Tab, Enter
 * and typing alone. unverified_receipt: a simulated device's lock receipt without KEYS_ZEROED
 * is shown as not verified and why, a queued wipe is canceled, the retire dialog declined with
 * Esc, and an auditor reads the receipt but is offered no action.
 * Screenshots: $CLEAVE_TEST_OUT/screenshots/wipe{,-keyboard,-unverified}/.
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "browser.h"
#include "crypto.h"
#include "e2e.h"
#include "util.h"
#include "wire.h"

#define BROWSER_SECONDS 90 /* two sign-ins, a wipe and openssl; ~25 s here */
#define CMD_MS          20000
#define ADMIN_EMAIL     "ops@example.com"
#define HELPDESK_EMAIL  "desk@example.com"
#define AUDITOR_EMAIL   "audit@example.com"
#define PASSWORD        "correct horse battery staple"
/* An owner that runs script if the console ever treats API text as HTML. */
#define HOSTILE_OWNER "<img/src/onerror=alert(1)>@evil.example"

static int
up(struct e2e *e, const char *tag, const char *owner)
{
	if (e2e_up(e, tag, NULL) != 0 || e2e_policy(e, "{\"offline\":{\"lock_after_hours\":72}}") ||
	    e2e_enroll(e, owner) != 0 || e2e_agent_start(e, NULL) != 0)
		return -1;
	return e2e_wait_reported(e, "active", CMD_MS);
}

/* The device's newest wipe command (decref), or NULL. */
static json_t *
wipe_command(struct e2e *e)
{
	char path[160];
	json_t *page, *found = NULL, *c;
	size_t i;

	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?limit=200", e->device_id);
	page = e2e_get(e, path);
	json_array_foreach(json_object_get(page, "items"), i, c)
	{
		if (strcmp(e2e_str(c, "type"), "wipe") == 0) {
			json_decref(found);
			found = json_incref(c);
		}
	}
	json_decref(page);
	return found;
}

/* GET path as the admin: its raw body must be exactly want (n bytes). */
static int
raw_equals(struct e2e *e, const char *path, const void *want, size_t n, const char *type)
{
	struct resp r;
	int ok;

	if (client_req(e->admin, "GET", path, NULL, NULL, &r) != 0)
		return 0;
	ok = r.status == 200 && r.len == n && memcmp(r.body, want, n) == 0;
	if (!ok)
		printf("    %s: %ld, %zu bytes\n", path, r.status, r.len);
	resp_free(&r);
	(void)type;
	return ok;
}

/* The receipt view's routes answer the command's own bytes, decoded and raw. */
static void
check_routes(struct e2e *e, json_t *cmd)
{
	uint8_t rc[RECEIPT_LEN], tk[TICKET_LEN];
	char path[200];
	const char *id = e2e_str(cmd, "id");
	json_t *v, *r, *dev;
	struct resp x;

	CHECK(b64_decode(rc, sizeof(rc), e2e_str(cmd, "receipt"),
			 strlen(e2e_str(cmd, "receipt"))) == RECEIPT_LEN &&
		      b64_decode(tk, sizeof(tk), e2e_str(cmd, "ticket"),
				 strlen(e2e_str(cmd, "ticket"))) == TICKET_LEN,
	      "the command carries a receipt and a ticket");
	snprintf(path, sizeof(path), "/api/v1/commands/%s/receipt.bin", id);
	CHECK(raw_equals(e, path, rc, sizeof(rc), "receipt"), "receipt.bin is the receipt");
	snprintf(path, sizeof(path), "/api/v1/commands/%s/ticket.bin", id);
	CHECK(raw_equals(e, path, tk, sizeof(tk), "ticket"), "ticket.bin is the ticket");
	snprintf(path, sizeof(path), "/api/v1/devices/%s", e->device_id);
	dev = e2e_get(e, path);
	{
		const char *pem = e2e_str(json_object_get(dev, "hypervisor"), "key_pem");

		snprintf(path, sizeof(path), "/api/v1/devices/%s/hypervisor-key.pem", e->device_id);
		CHECK(*pem && raw_equals(e, path, pem, strlen(pem), "key"),
		      "hypervisor-key.pem is the device's key_pem");
	}
	snprintf(path, sizeof(path), "/api/v1/commands/%s/receipt", id);
	v = e2e_get(e, path);
	r = json_object_get(v, "receipt");
	CHECK(json_is_true(json_object_get(r, "signature_ok")) &&
		      json_is_true(json_object_get(r, "hv_key_ok")) &&
		      json_is_true(json_object_get(r, "ticket_hash_ok")),
	      "the decoded receipt checks out");
	CHECK(strcmp(e2e_str(r, "type_name"), "wipe") == 0 &&
		      strcmp(e2e_str(r, "command_id"), id) == 0 &&
		      json_integer_value(json_object_get(r, "epoch_after")) >
			      json_integer_value(json_object_get(r, "epoch_before")),
	      "decoded fields: type, command, epochs");
	CHECK(strcmp(e2e_str(json_object_get(v, "hypervisor"), "key_fingerprint"),
		     e2e_str(json_object_get(dev, "hypervisor"), "key_fingerprint")) == 0,
	      "the view's key is the device's");
	json_decref(v);
	json_decref(dev);
	/* A command without a receipt: the view says so, the raw route is a 404. */
	CHECK(e2e_command(e, "refresh", path, 64) == 202, "queue a refresh");
	{
		char p2[200];

		snprintf(p2, sizeof(p2), "/api/v1/commands/%s/receipt.bin", path);
		CHECK(client_req(e->admin, "GET", p2, NULL, NULL, &x) == 0 && x.status == 404,
		      "receipt.bin of a command without one: %ld", x.status);
		resp_free(&x);
		CHECK(client_req(e->admin, "GET", "/api/v1/commands/cmd_nope/receipt", NULL, NULL,
				 &x) == 0 &&
			      x.status == 404,
		      "an unknown command's receipt: %ld", x.status);
		resp_free(&x);
	}
}

/* A helpdesk API token may lock but not wipe or retire (403, whatever the console shows). */
static void
check_helpdesk_token(struct e2e *e)
{
	char tok[128], path[160];
	struct client *hd;
	struct resp r;

	CHECK(admin_token(e->admin, "helpdesk", tok, sizeof(tok)) == 0, "helpdesk token");
	hd = client_new(&e->s, tok);
	CHECK(hd != NULL, "client");
	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands", e->device_id);
	CHECK(client_req(hd, "POST", path, "{\"type\":\"wipe\"}", NULL, &r) == 0 && r.status == 403,
	      "helpdesk wipe: %ld", r.status);
	resp_free(&r);
	CHECK(client_req(hd, "POST", path, "{\"type\":\"retire\"}", NULL, &r) == 0 &&
		      r.status == 403,
	      "helpdesk retire: %ld", r.status);
	resp_free(&r);
	client_free(hd);
}

static int
run_script(struct e2e *e, const char *mode, const char *dir, const char *owner)
{
	char outdir[PATH_MAX], pid[16];
	int rc;

	if (browser_outdir(dir, outdir, sizeof(outdir)) != 0)
		return -1;
	snprintf(pid, sizeof(pid), "%d", (int)e->agent_pid);
	{
		const char *const args[] = {mode,           e->s.url, ADMIN_EMAIL,  PASSWORD,
					    outdir,         owner,    e->device_id, pid,
					    HELPDESK_EMAIL, PASSWORD, NULL};
		double t0 = now_s();

		rc = browser_run("wipe.test.mjs", outdir, BROWSER_SECONDS, args);
		printf("    browser test (%s): exit %d in %.1f s; screenshots in %s\n", mode, rc,
		       now_s() - t0, outdir);
	}
	/* The script holds the agent with SIGSTOP while it looks at the pending wipe. */
	kill(e->agent_pid, SIGCONT);
	return rc;
}

static void
test_wipe_in_browser(void)
{
	struct e2e e;
	json_t *cmd;
	char id[64];

	CHECK(up(&e, "bwipe", HOSTILE_OWNER) == 0, "server, cleave-hv and agent (see %s)",
	      e.agent_log);
	CHECK(browser_admin(e.admin, ADMIN_EMAIL, "admin", PASSWORD) == 0 &&
		      browser_admin(e.admin, HELPDESK_EMAIL, "helpdesk", PASSWORD) == 0,
	      "console accounts");
	check_helpdesk_token(&e);
	if (browser_skip_reason() != NULL) {
		printf("    skipped: the browser part (%s); wiping through the API\n",
		       browser_skip_reason());
		CHECK(e2e_command(&e, "wipe", id, sizeof(id)) == 202, "queue the wipe");
		json_decref(e2e_wait_command(&e, id, CMD_MS));
	} else {
		int rc = run_script(&e, "full", "wipe", HOSTILE_OWNER);

		CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
		CHECK(rc == 0, "the browser test failed (its log is above)");
	}
	cmd = wipe_command(&e);
	CHECK(cmd != NULL && strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(cmd, "verified")),
	      "the wipe is completed and verified");
	check_routes(&e, cmd);
	json_decref(cmd);
	e2e_down(&e);
}

static void
test_wipe_keyboard_only(void)
{
	struct e2e e;
	json_t *cmd;
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(up(&e, "bwipe-kb", "kim@example.com") == 0, "server, cleave-hv and agent (see %s)",
	      e.agent_log);
	CHECK(browser_admin(e.admin, ADMIN_EMAIL, "admin", PASSWORD) == 0, "console account");
	rc = run_script(&e, "keyboard", "wipe-keyboard", "kim@example.com");
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	cmd = wipe_command(&e);
	CHECK(cmd != NULL && json_is_true(json_object_get(cmd, "verified")),
	      "the keyboard wipe is completed and verified");
	json_decref(cmd);
	e2e_down(&e);
}

/*
 * A simulated device answers a lock with a receipt that is properly signed but leaves out
 * KEYS_ZEROED, which a lock must show: the server keeps it, unverified, and says why.
 */
static int
lock_unverified(struct srv *s, struct client *admin, struct device_sim *d)
{
	uint8_t tk[TICKET_LEN], rc[RECEIPT_LEN];
	char id[64], path[160], body[1024], b64[600];
	struct client *dc = client_new(s, NULL);
	struct receipt r;
	struct resp x;
	json_t *j;
	int ok = -1;

	if (dc == NULL || admin_command(admin, d->id, "lock", id, sizeof(id)) != 202 ||
	    dev_req(d, dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &x) != 0)
		goto out;
	j = resp_json(&x);
	resp_free(&x);
	for (size_t i = 0; i < json_array_size(json_object_get(j, "commands")); i++) {
		json_t *c = json_array_get(json_object_get(j, "commands"), i);
		const char *t = e2e_str(c, "ticket");

		if (strcmp(e2e_str(c, "id"), id) == 0)
			ok = b64_decode(tk, sizeof(tk), t, strlen(t)) == TICKET_LEN ? 0 : -1;
	}
	json_decref(j);
	if (ok != 0)
		goto out;
	dev_receipt(d, tk, 0, rc);
	receipt_decode(rc, sizeof(rc), &r);
	r.checks_run &= ~(uint32_t)CHECK_KEYS_ZEROED;
	r.checks_passed &= ~(uint32_t)CHECK_KEYS_ZEROED;
	receipt_encode(&r, rc);
	ed25519_key_sign(d->hv, rc, RECEIPT_BODY_LEN, rc + RECEIPT_BODY_LEN);
	b64_encode(b64, sizeof(b64), rc, sizeof(rc));
	snprintf(body, sizeof(body), "{\"status\":\"completed\",\"receipt\":\"%s\"}", b64);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	ok = dev_req(d, dc, "POST", path, body, 0, &x) == 0 && x.status == 200 &&
			     strstr(x.body, "\"verified\":false") != NULL
		     ? 0
		     : -1;
	if (ok != 0)
		printf("    result: %ld %s\n", x.status, x.body ? x.body : "");
	resp_free(&x);
out:
	client_free(dc);
	return ok;
}

static void
test_unverified_receipt(void)
{
	struct device_sim d = {0};
	struct client *admin = NULL, *anon = NULL;
	struct srv s;
	struct resp x;
	char tok[128], outdir[PATH_MAX];
	int rc;

	if (browser_skip_reason() != NULL)
		SKIP("%s", browser_skip_reason());
	CHECK(srv_init(&s, "bwipe-unverified") == 0 && srv_start(&s, NULL) == 0, "server");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(admin && anon && browser_admin(admin, ADMIN_EMAIL, "admin", PASSWORD) == 0 &&
		      browser_admin(admin, AUDITOR_EMAIL, "auditor", PASSWORD) == 0,
	      "console accounts");
	CHECK(dev_init(&d) == 0 && admin_etoken(admin, HOSTILE_OWNER, 1, tok, sizeof(tok)) == 0 &&
		      dev_enroll(&d, anon, tok, &x) == 0 && x.status == 201,
	      "enroll the simulated device");
	resp_free(&x);
	CHECK(lock_unverified(&s, admin, &d) == 0, "the short receipt must be kept, unverified");
	CHECK(browser_outdir("wipe-unverified", outdir, sizeof(outdir)) == 0, "outdir");
	{
		const char *const args[] = {"unverified",  s.url,         ADMIN_EMAIL, PASSWORD,
					    outdir,        HOSTILE_OWNER, d.id,        "0",
					    AUDITOR_EMAIL, PASSWORD,      NULL};

		rc = browser_run("wipe.test.mjs", outdir, BROWSER_SECONDS, args);
	}
	CHECK(rc != T_EXIT_SKIP, "the browser could not start although its parts are here");
	CHECK(rc == 0, "the browser test failed (its log is above)");
	dev_fini(&d);
	client_free(anon);
	client_free(admin);
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"wipe_in_browser", test_wipe_in_browser},
		{"wipe_keyboard_only", test_wipe_keyboard_only},
		{"unverified_receipt", test_unverified_receipt},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

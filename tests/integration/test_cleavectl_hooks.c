/*
 * cleavectl's webhooks, approvals and audit stream commands against the real cleave-server,
 * with their errors and exit codes, and a wipe held by the two-person rule: requested by the
 * first admin token (A) with --wait, approved by a second admin (B, a console account with
 * TOTP whose session made a token with the approve permission) through cleavectl, completed by
 * a simulated device; A's cleavectl then exits 0 with the verified receipt. Each case has its
 * own server and HOME (lib/ctl.h); runs that overlap a background one use a second HOME.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "hookrx.h"
#include "testlib.h"
#include "util.h"

#define RULE "two_person_rule = 1\napproval_bulk_size = 2\n"

/* A second HOME on e's server and profile, its runs with token (NULL: the profile's). */
static struct ctl_env *
ctl_second(const struct ctl_env *e, const char *token)
{
	struct ctl_env *o = malloc(sizeof(*o));

	if (o == NULL)
		return NULL;
	memcpy(o, e, sizeof(*o));
	snprintf(o->home, sizeof(o->home), "%s/home-%s", e->s.dir, token ? "tok" : "prof");
	mkdir(o->home, 0700);
	o->token_env[0] = '\0';
	if (token != NULL)
		snprintf(o->token_env, sizeof(o->token_env), "CLEAVE_TOKEN=%s", token);
	return o;
}

/* The newest pending approval (of device, unless NULL) into out: 0, or -1 when none came within 10 s. */
static int
pending_of(struct ctl_env *e, const char *device, char *out, size_t cap)
{
	char path[256];
	long st;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/api/v1/approvals?status=pending%s%s",
		 device ? "&device_id=" : "", device ? device : "");
	for (int i = 0; i < 100 && out[0] == '\0'; i++) {
		json_t *j = client_get_json(e->admin, path, &st);
		const char *id = json_string_value(
			json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"));

		if (id != NULL)
			str_copy(out, cap, id);
		json_decref(j);
		if (out[0] == '\0')
			usleep(100000);
	}
	return out[0] ? 0 : -1;
}

/* The string member name of the output's first items[] entry (or of its object outer). */
static void
out_inner(const struct ctl_env *e, const char *outer, const char *name, char *out, size_t cap)
{
	json_t *j = ctl_json(e), *o = json_object_get(j, outer);
	json_t *v = json_object_get(json_is_array(o) ? json_array_get(o, 0) : o, name);

	/* Delivery ids are numbers, the others strings. */
	if (json_is_integer(v))
		snprintf(out, cap, "%lld", (long long)json_integer_value(v));
	else
		str_copy(out, cap, json_is_string(v) ? json_string_value(v) : "");
	json_decref(j);
}

/* Webhooks: create (the secret once), list, get, update, deliveries, redeliver, rotate. */
static void
t_webhooks(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e)), *hd = NULL;
	struct hookrx *rx = hookrx_new();
	struct device_sim a;
	char id[64], secret[128], del[64], tok[256];

	CHECK(e != NULL && rx != NULL && hookrx_up(rx) == 0, "setup");
	CTL_UP(e, "ctl-hooks");
	RUN(0, e, "webhooks", "event-types");
	CHECK(strstr(e->out, "device.enrolled\n") && strstr(e->out, "approval.overridden\n"), "%s",
	      e->out);
	/* Missing --event, a bad URL, an unknown event type: exit 1, nothing made. */
	RUN(1, e, "webhooks", "create", "--url", hookrx_url(rx));
	RUN(1, e, "webhooks", "create", "--url", "ftp://x", "--event", "device.enrolled");
	RUN(1, e, "webhooks", "create", "--url", hookrx_url(rx), "--event", "device.nosuch");
	RUN(0, e, "webhooks", "create", "--url", hookrx_url(rx), "--event", "device.enrolled",
	    "--event", "command.queued", "--description", "<b>ticketing</b>");
	CHECK(strstr(e->out, "secret: whsec_") && strstr(e->err, "shown only this once"), "%s/%s",
	      e->out, e->err);
	CHECK(strstr(e->out, "description: <b>ticketing</b>") != NULL, "%s", e->out);
	str_copy(secret, sizeof(secret), strstr(e->out, "secret: ") + 8);
	secret[strcspn(secret, "\n")] = '\0';
	hookrx_set_secret(rx, secret);
	RUN(0, e, "webhooks", "list");
	CHECK(strstr(e->out, "wh_") && strstr(e->out, "device.enrolled,command.queued"), "%s",
	      e->out);
	RUN(0, e, "--json", "webhooks", "list");
	out_inner(e, "items", "id", id, sizeof(id));
	CHECK(id[0] && !strstr(e->out, "whsec_"), "the list shows a secret: %s", e->out);
	/* An event delivered, signed with the secret create printed. */
	CHECK(admin_enroll(e->admin, e->anon, &a, "alice@example.com") == 0, "enroll");
	CHECK(hookrx_wait_ok(rx, 1, 20) == 0, "no delivery");
	{
		struct hookrx_msg m;

		CHECK(hookrx_get(rx, 0, &m) == 0 && m.sig_ok, "the signature does not verify");
	}
	RUN(0, e, "webhooks", "deliveries", id);
	CHECK(strstr(e->out, "ATTEMPT") && strstr(e->out, "LATENCY") && strstr(e->out, " 204 "),
	      "%s", e->out);
	RUN(0, e, "--json", "webhooks", "deliveries", id);
	out_inner(e, "items", "id", del, sizeof(del));
	RUN(0, e, "webhooks", "redeliver", id, del);
	CHECK(strstr(e->out, "redelivery of") != NULL, "%s", e->out);
	CHECK(hookrx_wait_ok(rx, 2, 20) == 0, "the redelivery did not come");
	RUN(2, e, "webhooks", "redeliver", id, "999999");
	/* Update: disable, events replaced, enable; nothing to change is exit 1. */
	RUN(0, e, "webhooks", "update", id, "--disable");
	CHECK(strstr(e->out, "enabled: false") != NULL, "%s", e->out);
	RUN(0, e, "webhooks", "update", id, "--enable", "--event", "wipe.verified");
	CHECK(strstr(e->out, "enabled: true") && strstr(e->out, "wipe.verified"), "%s", e->out);
	RUN(1, e, "webhooks", "update", id);
	RUN(1, e, "webhooks", "update", id, "--enable", "--disable");
	RUN(1, e, "webhooks", "update", id, "--url", "http://example.com/not-local");
	RUN(0, e, "webhooks", "get", id);
	CHECK(strstr(e->out, "delivery.cursor") != NULL, "%s", e->out);
	RUN(0, e, "webhooks", "rotate-secret", id);
	CHECK(strstr(e->out, "secret: whsec_") && !strstr(e->out, secret), "%s", e->out);
	/* A helpdesk token may not see webhooks: exit 4. */
	RUN(0, e, "--json", "tokens", "create", "--name", "hd", "--role", "helpdesk");
	CHECK(ctl_out_str(e, "token", tok, sizeof(tok)) == 0, "%s", e->out);
	CHECK((hd = ctl_second(e, tok)) != NULL, "oom");
	RUN(4, hd, "webhooks", "list");
	/* The audit stream's status (no collector configured here). */
	RUN(0, e, "audit", "stream");
	CHECK(strstr(e->out, "position: ") && strstr(e->out, "this_server.sending: false"), "%s",
	      e->out);
	RUN(4, hd, "audit", "stream");
	RUN(0, e, "webhooks", "delete", id);
	RUN(2, e, "webhooks", "delete", id);
	RUN(2, e, "webhooks", "get", id);
	dev_fini(&a);
	free(hd);
	hookrx_free(rx);
	ctl_down(e);
	free(e);
}

/*
 * Approvals: a held wipe exits 7 with what to do next; who may not approve (helpdesk, a token
 * without the permission, the requester), reject with a note followed by --wait (exit 6),
 * cancel, override (no reason: exit 1; with one: loud), a held bulk, --wait timing out (7).
 */
static void
t_approvals(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e)), *b = NULL, *hd = NULL;
	const char *args[] = {"commands", "retire", NULL, "--wait", "--timeout", "30", NULL};
	struct device_sim d1, d2, d3;
	char tok_b[256], tok_h[256], apr[64], apr2[64];
	pid_t pid;

	CHECK(e != NULL, "oom");
	CHECK(ctl_up_conf(e, "ctl-apr", RULE) == 0, "server: %s", e->err);
	CHECK(ctl_approver(e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver");
	CHECK(admin_enroll(e->admin, e->anon, &d1, "d1@example.com") == 0 &&
		      admin_enroll(e->admin, e->anon, &d2, "d2@example.com") == 0 &&
		      admin_enroll(e->admin, e->anon, &d3, "d3@example.com") == 0,
	      "enroll");
	RUN(0, e, "--json", "tokens", "create", "--name", "hd", "--role", "helpdesk");
	CHECK(ctl_out_str(e, "token", tok_h, sizeof(tok_h)) == 0, "%s", e->out);
	CHECK((b = ctl_second(e, tok_b)) != NULL && (hd = ctl_second(e, tok_h)) != NULL, "oom");
	RUN(7, e, "commands", "wipe", d1.id, "--reason", "lost <phone>");
	CHECK(strstr(e->out, "approval apr_") &&
		      strstr(e->out, "cleavectl approvals approve apr_") &&
		      strstr(e->err, "waiting for approval (exit 7)"),
	      "%s / %s", e->out, e->err);
	CHECK(pending_of(e, d1.id, apr, sizeof(apr)) == 0, "no pending approval");
	RUN(7, e, "--json", "commands", "wipe", d1.id);
	CHECK(strstr(e->out, "\"pending_approval\"") && strstr(e->out, apr), "%s", e->out);
	RUN(0, e, "approvals", "list", "--status", "pending");
	CHECK(strstr(e->out, apr) && strstr(e->out, "lost <phone>"), "%s", e->out);
	RUN(1, e, "approvals", "list", "--status", "sleeping");
	RUN(0, e, "approvals", "get", apr);
	CHECK(strstr(e->out, "status: pending") != NULL, "%s", e->out);
	RUN(2, e, "approvals", "get", "apr_nosuch");
	/* Who may not approve: helpdesk; the first admin token (no approve permission). */
	RUN(4, hd, "approvals", "approve", apr);
	RUN(4, e, "approvals", "approve", apr);
	CHECK(strstr(e->err, "approval-needs-second-factor") != NULL, "%s", e->err);
	/* The requester approving their own request: 4, with the problem's detail. */
	RUN(7, b, "commands", "wipe", d2.id);
	CHECK(pending_of(e, d2.id, apr2, sizeof(apr2)) == 0, "no pending approval of b");
	RUN(4, b, "approvals", "approve", apr2);
	CHECK(strstr(b->err, "approval-by-requester") &&
		      strstr(b->err, "cannot approve; a second admin must"),
	      "%s", b->err);
	/* An approve token makes another (--approve); the first admin token may not. */
	RUN(0, b, "--json", "tokens", "create", "--name", "b2", "--role", "admin", "--approve");
	CHECK(strstr(b->out, "\"approve\"") != NULL, "%s", b->out);
	RUN(4, e, "tokens", "create", "--name", "x", "--role", "admin", "--approve");
	RUN(1, b, "tokens", "create", "--name", "y", "--role", "helpdesk", "--approve");
	/* Only the requester's person cancels; then it is decided (3). */
	RUN(4, e, "approvals", "cancel", apr2);
	RUN(0, b, "approvals", "cancel", apr2);
	CHECK(strstr(b->out, "canceled") != NULL, "%s", b->out);
	RUN(3, b, "approvals", "cancel", apr2);
	/* A retire followed with --wait, rejected by B with a note: A exits 6 saying why. */
	args[2] = d3.id;
	pid = ctl_spawn(e, NULL, args);
	CHECK(pid > 0 && pending_of(e, d3.id, apr2, sizeof(apr2)) == 0, "no retire approval");
	RUN(0, b, "approvals", "reject", apr2, "--note", "not <this> one");
	CHECK(ctl_wait(e, pid) == 6, "retire --wait after a reject: %s / %s", e->out, e->err);
	CHECK(strstr(e->err, "rejected by") && strstr(e->err, "not <this> one"), "%s", e->err);
	RUN(3, b, "approvals", "approve", apr2);
	/* Still pending when --timeout ends: exit 7. */
	RUN(7, e, "commands", "wipe", d3.id, "--wait", "--timeout", "1");
	CHECK(strstr(e->err, "still waiting for approval") != NULL, "%s", e->err);
	/* Override: no reason is a usage error; with one it queues at once, loudly. */
	RUN(1, e, "approvals", "override", apr);
	RUN(1, e, "approvals", "override", apr, "--reason", "short");
	RUN(0, e, "approvals", "override", apr, "--reason", "the phone is being stolen right now");
	CHECK(strstr(e->err, "WARNING: EMERGENCY OVERRIDE") && strstr(e->out, "overridden") &&
		      strstr(e->out, "command cmd_"),
	      "%s / %s", e->out, e->err);
	/* A bulk wipe by filter is held too: exit 7 with its approval and bulk. */
	RUN(7, e, "bulk", "create", "--type", "wipe", "--owner", "d2@example.com",
	    "--expected-count", "1");
	CHECK(strstr(e->out, "approval apr_") && strstr(e->out, "by bulk blk_"), "%s", e->out);
	RUN(0, e, "approvals", "list", "--device", d1.id, "--status", "overridden");
	CHECK(strstr(e->out, apr) != NULL, "%s", e->out);
	/* --help names exit 7; the completion comes from the same table. */
	RUN(0, e, "--help");
	CHECK(strstr(e->out, "  7  waiting for approval") && strstr(e->out, "approvals override"),
	      "%s", e->out);
	RUN(0, e, "__complete", "approvals", "");
	CHECK(strstr(e->out, "approve\n") && strstr(e->out, "override\n"), "%s", e->out);
	RUN(0, e, "__complete", "webhooks", "create", "--");
	CHECK(strstr(e->out, "--event\n") && strstr(e->out, "--url\n"), "%s", e->out);
	dev_fini(&d1);
	dev_fini(&d2);
	dev_fini(&d3);
	free(b);
	free(hd);
	ctl_down(e);
	free(e);
}

/*
 * The --wait flow: A asks for a wipe with --wait in the background; B approves it with
 * cleavectl; the device completes it; A's cleavectl exits 0 with a verified receipt. A held
 * bulk followed with --wait exits 0 once approved.
 */
static void
t_approvals_wait(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e)), *b = NULL;
	const char *args[] = {"commands", "wipe",      NULL, "--reason", "stolen",
			      "--wait",   "--timeout", "60", NULL};
	struct device_sim d;
	char tok_b[256], apr[64], cmd[64] = "";
	pid_t pid;

	CHECK(e != NULL, "oom");
	CHECK(ctl_up_conf(e, "ctl-aprw", RULE) == 0, "server: %s", e->err);
	CHECK(ctl_approver(e, "bob@example.com", tok_b, sizeof(tok_b)) == 0, "approver");
	CHECK((b = ctl_second(e, tok_b)) != NULL, "oom");
	CHECK(admin_enroll(e->admin, e->anon, &d, "carol@example.com") == 0, "enroll");
	/* B's account, made by A's person just before, is older than A's request (times in ms). */
	args[2] = d.id;
	pid = ctl_spawn(e, NULL, args);
	CHECK(pid > 0 && pending_of(e, d.id, apr, sizeof(apr)) == 0, "no approval requested");
	usleep(700000); /* A is following the request by now */
	RUN(0, b, "--json", "approvals", "approve", apr);
	out_inner(b, "command", "id", cmd, sizeof(cmd));
	CHECK(cmd[0] != '\0', "no command in the approval: %s", b->out);
	CHECK(ctl_device_serve(e, &d, cmd, 20) == 0, "the device did not get the wipe");
	CHECK(ctl_wait(e, pid) == 0, "wipe --wait: %s / %s", e->out, e->err);
	CHECK(strstr(e->out, "receipt is verified") && strstr(e->out, cmd) &&
		      strstr(e->err, "approved by"),
	      "%s / %s", e->out, e->err);
	RUN(0, e, "commands", "get", cmd);
	CHECK(strstr(e->out, "approved_by: ") && strstr(e->out, "approval_id: apr_"), "%s", e->out);
	/* A bulk wipe by filter followed with --wait: approved by B, it runs; exit 0. */
	{
		const char *bargs[] = {"bulk",
				       "create",
				       "--type",
				       "wipe",
				       "--owner",
				       "carol@example.com",
				       "--expected-count",
				       "1",
				       "--wait",
				       "--timeout",
				       "30",
				       NULL};

		pid = ctl_spawn(e, NULL, bargs);
		CHECK(pid > 0 && pending_of(e, NULL, apr, sizeof(apr)) == 0, "no bulk approval");
		RUN(0, b, "approvals", "approve", apr);
		CHECK(strstr(b->out, "bulk blk_") != NULL, "%s", b->out);
		CHECK(ctl_wait(e, pid) == 0, "bulk --wait: %s / %s", e->out, e->err);
		CHECK(strstr(e->out, "approved: it runs now") != NULL, "%s", e->out);
	}
	dev_fini(&d);
	free(b);
	ctl_down(e);
	free(e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"webhooks", t_webhooks},
		{"approvals", t_approvals},
		{"approvals_wait", t_approvals_wait},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

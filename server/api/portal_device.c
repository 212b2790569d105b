/*
 * A device's own page in the employee portal (GET /portal/{link}), reached through the link made
 * when the device enrolled (the agent stores it; `cleave-agent status` prints it): the corporate
 * half's state, every command sent to it with who asked, why, and whether the hypervisor's
 * signed receipt verified, and "leave the company" (POST /portal/{link}/leave), which queues a
 * retire after a typed confirmation. Server-rendered, no script; the link in the path is the
 * only credential, so a form from another origin is refused when the browser names it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "portal.h"

/* Commands shown on the page, newest first. */
#define PORTAL_COMMANDS 50

/* The corporate half's state as the page tells it: a CSS class and a sentence. */
static const struct {
	const char *cls, *sentence;
} states[] = {
	{"retired", "Retired: this phone has left the company and its corporate half was erased."},
	{"locked", "Locked: your work apps are stopped until your company unlocks them."},
	{"wiped", "Erased: the corporate half's key was destroyed."},
	{"active", "Active: your work apps run normally."},
};

static size_t
state_of(const struct device *d)
{
	if (strcmp(d->status, "retired") == 0)
		return 0;
	if (strcmp(d->reported_state, "locked") == 0)
		return 1;
	if (strcmp(d->reported_state, "wiped") == 0)
		return 2;
	return 3;
}

static void
row(struct html *h, const char *name, const char *value)
{
	html_raw(h, "<dt>");
	html_text(h, name);
	html_raw(h, "</dt><dd>");
	html_text(h, value);
	html_raw(h, "</dd>");
}

static void
facts(struct html *h, const struct device *d)
{
	char t[48], pol[96];

	html_fmt(h, "<p class=\"state state-%s\" id=\"device-state\">", states[state_of(d)].cls);
	html_text(h, states[state_of(d)].sentence);
	html_raw(h, "</p><dl class=\"facts\">");
	row(h, "Owner", d->owner);
	row(h, "Device", d->id);
	row(h, "Model", d->model);
	portal_time(d->enrolled_at, t, sizeof(t));
	row(h, "Enrolled", t);
	portal_time(d->last_seen_at, t, sizeof(t));
	row(h, "Last check-in", t);
	if (d->applied_policy_name[0])
		snprintf(pol, sizeof(pol), "%s, version %lld", d->applied_policy_name,
			 (long long)d->applied_policy_version);
	else
		snprintf(pol, sizeof(pol), "none applied yet");
	row(h, "Policy", pol);
	html_raw(h, "</dl>");
}

/* Who asked for a command, as the employee would put it. */
static const char *
asker(const struct device *d, const struct command *c)
{
	if (strcmp(c->created_by, d->id) == 0)
		return "you";
	if (strcmp(c->created_by, "system") == 0)
		return "Cleave (policy)";
	return "your IT team";
}

/* Whether the command is still on its way (no outcome yet). */
static int
is_open(const struct command *c)
{
	return strcmp(c->status, "queued") == 0 || strcmp(c->status, "delivered") == 0 ||
	       strcmp(c->status, "acknowledged") == 0;
}

static void
receipt_cell(struct html *h, const struct command *c)
{
	if (c->verified) {
		html_raw(h, "<td class=\"ok\">verified &#10003; signed by your phone's hypervisor");
	} else if (c->receipt_len > 0) {
		html_raw(h, "<td class=\"bad\">not verified: ");
		html_text(h, c->verify_note);
	} else if (is_open(c)) {
		html_raw(h, "<td class=\"muted\">none yet");
	} else {
		/* A policy only hands the hypervisor its settings: it signs no receipt for that. */
		html_raw(h, strcmp(c->type, "policy") == 0
				    ? "<td class=\"muted\">none (settings only)"
				    : "<td class=\"muted\">none");
	}
	html_raw(h, "</td>");
}

static void
commands(struct html *h, const struct device *d, const struct command *v, size_t n)
{
	char t[48];

	html_raw(h, "<section><h2>What was done to the corporate half</h2>");
	if (n == 0) {
		html_raw(h, "<p class=\"muted\">Nothing yet.</p></section>");
		return;
	}
	html_raw(h, "<table id=\"receipts\"><thead><tr><th>When</th><th>Action</th><th>Why</th>"
		    "<th>Asked by</th><th>Status</th><th>Receipt</th></tr></thead><tbody>");
	for (size_t i = n; i-- > 0 && n - i <= PORTAL_COMMANDS;) {
		portal_time(v[i].created_at, t, sizeof(t));
		html_raw(h, "<tr data-type=\"");
		html_text(h, v[i].type);
		html_raw(h, "\"><td>");
		html_text(h, t);
		html_raw(h, "</td><td>");
		html_text(h, v[i].type);
		html_raw(h, "</td><td>");
		html_text(h, strcmp(v[i].type, "policy") == 0 ? "policy update" : v[i].reason);
		html_raw(h, "</td><td>");
		html_text(h, asker(d, &v[i]));
		html_raw(h, "</td><td>");
		html_text(h, v[i].status);
		html_raw(h, "</td>");
		receipt_cell(h, &v[i]);
		html_raw(h, "</tr>");
	}
	html_raw(h, "</tbody></table></section>");
}

static int
open_retire(const struct command *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].type, "retire") == 0 && is_open(&v[i]))
			return 1;
	return 0;
}

static void
leave(struct html *h, const char *link, const struct device *d, const struct command *v, size_t n,
      const char *problem)
{
	html_raw(h, "<section class=\"leave\"><h2>Leave the company</h2>");
	if (strcmp(d->status, "retired") == 0) {
		html_raw(h, "<p id=\"left\">This phone has left the company.</p></section>");
		return;
	}
	if (open_retire(v, n)) {
		html_raw(h,
			 "<p id=\"leaving\">Leaving is on its way: the next time your phone "
			 "reaches the server, its hypervisor erases the corporate half and signs "
			 "a receipt, which appears above.</p></section>");
		return;
	}
	html_raw(h, "<p>Leaving erases the corporate half of this phone: your work apps and their "
		    "data. Your personal half is not touched. Your phone's hypervisor signs a "
		    "receipt of the erase, which appears on this page.</p>");
	if (problem != NULL) {
		html_raw(h, "<p class=\"err\" id=\"leave-error\">");
		html_text(h, problem);
		html_raw(h, "</p>");
	}
	html_raw(h, "<form method=\"post\" action=\"/portal/");
	html_text(h, link);
	html_raw(h, "/leave\"><label for=\"confirm\">Type <strong>leave</strong> to "
		    "confirm</label><input id=\"confirm\" name=\"confirm\" autocomplete=\"off\" "
		    "required><button type=\"submit\" id=\"leave\" class=\"danger\">Leave the "
		    "company</button></form></section>");
}

/* Renders the page of the link's device (status 200, or 422 with problem under the form). */
static void
device_page(struct call *c, const char *link, const char *problem)
{
	struct command *v = calloc(STORE_LIST_MAX, sizeof(*v));
	struct html h = {0};
	struct device d;
	size_t n = 0;
	int st = portal_secret_shaped(link, "clv_pl_") ? svc_portal_open(c->a->svc, link, &d)
						       : SVC_PORTAL_UNKNOWN;

	portal_head(&h, "Your phone in Cleave");
	if (st == SVC_PORTAL_OK &&
	    (v == NULL || svc_portal_commands(c->a->svc, d.id, v, STORE_LIST_MAX, &n) != 0))
		st = -1;
	if (st == SVC_PORTAL_OK) {
		facts(&h, &d);
		commands(&h, &d, v, n);
		leave(&h, link, &d, v, n, problem);
	} else {
		html_raw(&h, "<p class=\"err\" id=\"portal-error\">");
		html_text(&h, st == SVC_PORTAL_UNKNOWN
				      ? "This device link is not valid. Open the link that "
					"`cleave-agent status` prints on your phone."
			      : st == SVC_PORTAL_EXPIRED
				      ? "This device link has expired. Ask your IT team for help."
				      : "The server cannot show this page right now. Try again in "
					"a few minutes.");
		html_raw(&h, "</p>");
	}
	free(v);
	portal_reply(c, &h,
		     st == SVC_PORTAL_OK        ? (problem ? 422 : 200)
		     : st == SVC_PORTAL_UNKNOWN ? 404
		     : st == SVC_PORTAL_EXPIRED ? 410
						: 503);
}

void
h_portal_device(struct call *c)
{
	device_page(c, c->param[0], NULL);
}

/*
 * A form posted from another site is refused when the browser says so: Sec-Fetch-Site, or else
 * an Origin other than ours. (Our pages send no Referer, so a browser's Origin for our own
 * form may be "null"; the link in the path stays the credential that matters.)
 */
static int
same_origin(struct call *c)
{
	const char *site = c->rq->header(c->rq->header_ctx, "Sec-Fetch-Site");
	const char *o = c->rq->header(c->rq->header_ctx, "Origin");

	if (site != NULL)
		return strcmp(site, "same-origin") == 0 || strcmp(site, "none") == 0;
	return o == NULL || strcmp(o, "null") == 0 ||
	       strcmp(o, service_config(c->a->svc)->public_url) == 0;
}

void
h_portal_leave(struct call *c)
{
	struct svc_error err = {0};
	struct command cmd;
	char confirm[32] = "";
	int created = 0;

	if (!same_origin(c)) {
		reply_problem(c->rs, SVC_FORBIDDEN, "this form may only be sent from its own page");
		return;
	}
	if (c->rq->body == NULL ||
	    query_get(c->rq->body, "confirm", confirm, sizeof(confirm)) != 1 ||
	    strcasecmp(confirm, "leave") != 0) {
		device_page(c, c->param[0], "Type the word leave in the box to confirm.");
		return;
	}
	if (svc_portal_leave(c->a->svc, c->param[0], c->rq->client, &cmd, &created, &err) != 0 &&
	    err.kind != SVC_CONFLICT) {
		if (err.kind == SVC_NOT_FOUND)
			device_page(c, c->param[0], NULL);
		else
			reply_svc_error(c->rs, &err);
		return;
	}
	/* Back to the page (POST/redirect/GET), which now shows the retire on its way. */
	c->rs->status = 303;
	snprintf(c->rs->location, sizeof(c->rs->location), "/portal/%s", c->param[0]);
}

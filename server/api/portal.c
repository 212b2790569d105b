/*
 * The page an enrollment URL opens: it tells the employee what enrolling means for their phone
 * (only the corporate half is managed; nothing personal is visible or erasable) and the one
 * command that enrolls it, complete with the pin of this server's certificate key so it works
 * as printed against a self-signed certificate. The token is looked up first: an unknown (404),
 * revoked, expired or used-up (410) link gets a page saying so instead of a command that fails.
 * Nothing from the query reaches the HTML: the token is only echoed when it has the shape of
 * one and is usable, and the server's own URL is escaped. This is not the admin console (web/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_priv.h"
#include "crypto/tls_cert.h"
#include "log.h"

static const char page_head[] =
	"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	"<title>Enroll your phone - Cleave</title><style>"
	"body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
	"line-height:1.5;color:#1b1f24}code,pre{background:#f3f4f6;border-radius:4px}"
	"pre{padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}"
	"h1{font-size:1.5rem}.ok{color:#116329}.no{color:#116329}"
	".err{border-left:4px solid #cf222e;padding:.25rem .75rem;background:#fff5f5}</style>"
	"</head><body><h1>Enroll your phone in Cleave</h1>"
	"<p>Your company manages only the <strong>corporate half</strong> of your phone: an "
	"encrypted work space that runs separately from your personal apps and data.</p><ul>"
	"<li class=\"ok\">Your company can lock the corporate half, and erase it if the phone is "
	"lost or you leave.</li>"
	"<li class=\"no\">It cannot see, change or erase anything in your personal half: photos, "
	"messages, personal apps and files stay yours.</li>"
	"<li>Every erase is proven by a receipt signed by the phone's hypervisor.</li></ul>";

#define PAGE_CAP 8192

int
api_set_server_cert(struct api *a, const char *cert_pem)
{
	int r = tls_cert_pin_sha256(cert_pem, a->tls_pin, sizeof(a->tls_pin));

	if (r != 0) {
		a->tls_pin[0] = '\0';
		log_err("api: the enrollment page cannot show the certificate pin (%d)", r);
	}
	return r;
}

/* A token is "clv_et_" plus base64url; anything else is not echoed. */
static int
token_shaped(const char *t)
{
	size_t n = strlen(t);

	if (n < 8 || n > 100 || strncmp(t, "clv_et_", 7) != 0)
		return 0;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

/* Copies src into dst (cap bytes, always NUL-terminated) with & < > " ' escaped for HTML. */
static void
html_escape(char *dst, size_t cap, const char *src)
{
	size_t k = 0;

	for (; *src != '\0'; src++) {
		const char *e = *src == '&'    ? "&amp;"
				: *src == '<'  ? "&lt;"
				: *src == '>'  ? "&gt;"
				: *src == '"'  ? "&quot;"
				: *src == '\'' ? "&#39;"
					       : NULL;
		size_t n = e ? strlen(e) : 1;

		if (k + n >= cap)
			break;
		memcpy(dst + k, e ? e : src, n);
		k += n;
	}
	dst[k] = '\0';
}

static void
day_utc(int64_t t, char *out, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%d %H:%M UTC", &tm) == 0)
		snprintf(out, cap, "?");
}

/* The body of the page for a usable token: the command, with the pin when the server has one. */
static int
usable_page(struct call *c, const char *token, const struct enroll_token *t, char *buf)
{
	const struct service_config *cfg = service_config(c->a->svc);
	char url[400], pin[80] = "", until[40];

	html_escape(url, sizeof(url), cfg->public_url);
	if (c->a->tls_pin[0] != '\0')
		snprintf(pin, sizeof(pin), " --pin-sha256 %s", c->a->tls_pin);
	day_utc(t->expires_at, until, sizeof(until));
	return snprintf(buf, PAGE_CAP,
			"%s<h2>Enroll</h2><p>On the phone, with the Cleave agent installed, "
			"run:</p><pre id=\"enroll-command\">cleave-agent --state ~/.cleave enroll "
			"--server %s --token %s%s</pre><p>The <code>--pin-sha256</code> value is "
			"the fingerprint of this server's certificate key: the agent talks only to "
			"this server. This link can enroll %lld more device%s until %s; after "
			"that, ask your IT team for a new one.</p></body></html>\n",
			page_head, url, token, pin, (long long)(t->uses_max - t->uses),
			t->uses_max - t->uses == 1 ? "" : "s", until);
}

/* Status and explanation for a token that cannot be used; 0 when state is not one of those. */
static int
refusal(int state, const struct enroll_token *t, char *why, size_t cap)
{
	char when[40];

	switch (state) {
	case SVC_ETOKEN_UNKNOWN:
		snprintf(
			why, cap,
			"This enrollment link is not valid: no enrollment token has this value. "
			"Check that you opened the whole link, or ask your IT team for a new one.");
		return 404;
	case SVC_ETOKEN_REVOKED:
		snprintf(why, cap,
			 "This enrollment link has been withdrawn by your IT team. Ask them for a "
			 "new one.");
		return 410;
	case SVC_ETOKEN_EXPIRED:
		day_utc(t->expires_at, when, sizeof(when));
		snprintf(why, cap,
			 "This enrollment link expired on %s. Ask your IT team for a new one.",
			 when);
		return 410;
	case SVC_ETOKEN_USED_UP:
		snprintf(why, cap,
			 "This enrollment link has been used up: it was good for %lld device%s, "
			 "and %lld enrolled with it. Ask your IT team for a new one.",
			 (long long)t->uses_max, t->uses_max == 1 ? "" : "s", (long long)t->uses);
		return 410;
	default:
		return 0;
	}
}

void
h_enroll_page(struct call *c)
{
	struct enroll_token t;
	char token[128], why[400], *buf;
	int n, status = 400, st = SVC_ETOKEN_UNKNOWN;

	buf = malloc(PAGE_CAP);
	if (buf == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	memset(&t, 0, sizeof(t));
	snprintf(why, sizeof(why),
		 "This link has no valid enrollment token. Ask your IT team for a new "
		 "enrollment link.");
	if (query_get(c->rq->query, "token", token, sizeof(token)) == 1 && token_shaped(token)) {
		st = svc_etoken_check(c->a->svc, token, &t);
		status = st < 0 ? 503 : refusal(st, &t, why, sizeof(why));
		if (st < 0)
			snprintf(why, sizeof(why),
				 "The server cannot check this link right now. Try again in a "
				 "few minutes.");
	}
	if (status == 0) {
		status = 200;
		n = usable_page(c, token, &t, buf);
	} else {
		n = snprintf(buf, PAGE_CAP,
			     "%s<p class=\"err\" id=\"enroll-error\">%s</p></body></html>\n",
			     page_head, why);
	}
	c->rs->status = status;
	c->rs->body = buf;
	c->rs->len = n > 0 ? MIN((size_t)n, PAGE_CAP - 1) : 0;
	c->rs->content_type = "text/html; charset=utf-8";
}

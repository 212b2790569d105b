/*
 * The page an enrollment URL opens: it tells the employee what enrolling means for their phone
 * (only the corporate half is managed; nothing personal is visible or erasable) and the one
 * command that enrolls it. The token is echoed only when it has the shape of one, so nothing
 * from the query reaches the HTML unescaped. This is not the admin console (web/).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

static const char page_head[] =
	"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
	"<title>Enroll your phone - Cleave</title><style>"
	"body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
	"line-height:1.5;color:#1b1f24}code,pre{background:#f3f4f6;border-radius:4px}"
	"pre{padding:.75rem;overflow-x:auto;white-space:pre-wrap;word-break:break-all}"
	"h1{font-size:1.5rem}.ok{color:#116329}.no{color:#116329}</style></head><body>"
	"<h1>Enroll your phone in Cleave</h1>"
	"<p>Your company manages only the <strong>corporate half</strong> of your phone: an "
	"encrypted work space that runs separately from your personal apps and data.</p><ul>"
	"<li class=\"ok\">Your company can lock the corporate half, and erase it if the phone is "
	"lost or you leave.</li>"
	"<li class=\"no\">It cannot see, change or erase anything in your personal half: photos, "
	"messages, personal apps and files stay yours.</li>"
	"<li>Every erase is proven by a receipt signed by the phone's hypervisor.</li></ul>";

/* A token is "clv_et_" plus base64url; anything else is not echoed. */
static int
token_shaped(const char *t)
{
	size_t n = strlen(t);

	if (n < 8 || n > 100 || strncmp(t, "clv_et_", 7) != 0)
		return 0;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

void
h_enroll_page(struct call *c)
{
	const struct service_config *cfg = service_config(c->a->svc);
	char token[128], *buf;
	size_t cap = 8192;
	int n, have = query_get(c->rq->query, "token", token, sizeof(token)) == 1 &&
		      token_shaped(token);

	buf = malloc(cap);
	if (buf == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (have)
		n = snprintf(buf, cap,
			     "%s<h2>Enroll</h2><p>On the phone, with the Cleave agent installed, "
			     "run:</p><pre>cleave-agent --state ~/.cleave enroll --server %s "
			     "--token %s</pre><p>The token works for a limited time and number of "
			     "devices. If it has expired, ask your IT team for a new one.</p>"
			     "</body></html>\n",
			     page_head, cfg->public_url, token);
	else
		n = snprintf(buf, cap,
			     "%s<p>This link has no valid enrollment token. Ask your IT team for "
			     "a new enrollment link.</p></body></html>\n",
			     page_head);
	c->rs->status = have ? 200 : 400;
	c->rs->body = buf;
	c->rs->len = n > 0 ? MIN((size_t)n, cap - 1) : 0;
	c->rs->content_type = "text/html; charset=utf-8";
}

/*
 * The employee portal's rules (issue 9): what an employee is told before enrolling, and the
 * device page an employee reaches afterwards through a link bound to their device.
 *
 * The three lists are generated, never written as prose that can drift: what the company can
 * do comes from the host-side functions of the hypervisor ABI (hypercall-bridge/include/
 * cleave_abi.h; each that takes a ticket returns a signed receipt) and from the policy's
 * limits; what it can see from the fields a device record holds; what it can never see is the
 * personal half, which no function of that ABI reads.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "cleave_abi.h"
#include "log.h"

/* A device page link works this long after enrollment. */
#define PORTAL_LINK_TTL_S (365 * 86400)

/*
 * Every host-side hypervisor function (CLV_SVC_HOST), in number order. does: what it does to
 * the corporate half, for the "can do" list; NULL when it changes nothing there.
 */
static const struct hv_fn {
	uint32_t fid;
	const char *name;
	const char *does;
} hv_fns[] = {
	{CLV_FN_ATTEST, "attest", NULL},
	{CLV_FN_PIN_OWNER, "pin owner", NULL},
	{CLV_FN_LOCK, "lock", "Lock the corporate half: work apps stop until it is unlocked."},
	{CLV_FN_UNLOCK, "unlock", "Unlock the corporate half again."},
	{CLV_FN_REKEY, "rekey", "Replace the corporate half's encryption key."},
	{CLV_FN_WIPE, "wipe",
	 "Erase the corporate half by destroying its key (this is also what retiring the phone "
	 "does). Your personal half is not touched."},
	{CLV_FN_RENEW_LEASE, "renew lease", NULL},
	{CLV_FN_SET_POLICY, "set policy", NULL},
	{CLV_FN_RECEIPTS, "receipts", NULL},
	{CLV_FN_RECEIPT_ACK, "receipt ack", NULL},
	{CLV_FN_COUNTERS, "counters", NULL},
	{CLV_FN_TPM_IDENTITY, "TPM identity", NULL},
	{CLV_FN_TPM_ACTIVATE, "TPM attest", NULL},
};

size_t
svc_hv_fn_count(void)
{
	return ARRAY_SIZE(hv_fns);
}

uint32_t
svc_hv_fn_id(size_t i)
{
	return i < ARRAY_SIZE(hv_fns) ? hv_fns[i].fid : 0;
}

/* The personal half, which no hypervisor function reads. */
static const char *const personal[] = {
	"Your personal apps, and which ones you have.",
	"Your photos, videos and files.",
	"Your messages, calls and contacts.",
	"Your browsing.",
	"Your location.",
};

/* What a device record holds about a phone, field by field (store.h struct device). */
static const char *const recorded[] = {
	"Phone model, operating system and Cleave agent version, as reported at enrollment.",
	"The corporate half's state: active, locked or wiped.",
	"Compliance: which policy version is applied, when the phone last checked in, and "
	"whether its hypervisor's signed attestation matches.",
	"The hypervisor's public key and measurement, and the corporate half's key epoch.",
};

/* "3 hours", "2 days", "90 seconds": the largest unit that divides s exactly. */
static void
duration(int64_t s, char *out, size_t cap)
{
	static const struct {
		int64_t n;
		const char *unit;
	} u[] = {{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};

	for (size_t i = 0; i < ARRAY_SIZE(u); i++) {
		if (s % u[i].n == 0 || u[i].n == 1) {
			snprintf(out, cap, "%lld %s%s", (long long)(s / u[i].n), u[i].unit,
				 s / u[i].n == 1 ? "" : "s");
			return;
		}
	}
}

static void __printf(3, 4) add(char (*list)[SVC_TERM_MAX], size_t *n, const char *fmt, ...)
{
	va_list ap;

	if (*n >= SVC_TERMS_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(list[*n], SVC_TERM_MAX, fmt, ap);
	va_end(ap);
	(*n)++;
}

/* The automatic actions the policy sets (offline limits, failed unlocks, key rotation). */
static void
policy_terms(const struct policy_content *c, struct portal_terms *t)
{
	char d[48], n[32];

	if (policy_lock_s(c) > 0) {
		duration(policy_lock_s(c), d, sizeof(d));
		add(t->can, &t->n_can,
		    "Your corporate half locks itself after %s without reaching "
		    "the company's server.",
		    d);
	} else {
		add(t->can, &t->n_can, "%s",
		    "Your corporate half never locks itself for being offline.");
	}
	if (policy_wipe_s(c) > 0) {
		duration(policy_wipe_s(c), d, sizeof(d));
		add(t->can, &t->n_can,
		    "Your corporate half is erased after %s without reaching "
		    "the company's server.",
		    d);
	}
	if (c->max_failed_unlocks > 0) {
		snprintf(n, sizeof(n), "%lld", (long long)c->max_failed_unlocks);
		add(t->can, &t->n_can,
		    "Your corporate half is erased after %s failed unlock attempts.", n);
	}
	if (c->key_rotation_days > 0) {
		duration(c->key_rotation_days * 86400, d, sizeof(d));
		add(t->can, &t->n_can, "The corporate half's encryption key is replaced every %s.",
		    d);
	}
}

int
svc_portal_terms(struct service *s, const char *owner, struct portal_terms *t)
{
	struct policy_content c;
	struct policy p;
	size_t k = 0;
	int r;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < ARRAY_SIZE(personal); i++)
		add(t->never, &t->n_never, "%s", personal[i]);
	add(t->see, &t->n_see, "Owner: the name this enrollment link was made for (%s).", owner);
	for (size_t i = 0; i < ARRAY_SIZE(recorded); i++)
		add(t->see, &t->n_see, "%s", recorded[i]);
	for (size_t i = 0; i < ARRAY_SIZE(hv_fns); i++) {
		if (hv_fns[i].does != NULL)
			add(t->can, &t->n_can,
			    "%s Each time, your phone's hypervisor signs a receipt "
			    "you can see.",
			    hv_fns[i].does);
		k += (size_t)snprintf(t->interface + k, sizeof(t->interface) - k, "%s%s",
				      i > 0 ? ", " : "", hv_fns[i].name);
		if (k >= sizeof(t->interface))
			k = sizeof(t->interface) - 1;
	}
	memset(&c, 0, sizeof(c));
	r = s->st->ops->policy_default(s->st, &p);
	if (r == 0 && (s->parse_policy == NULL || s->parse_policy(p.body, &c) != 0))
		r = -EBADMSG;
	if (r == 0)
		snprintf(t->policy, sizeof(t->policy), "%s, version %lld", p.name,
			 (long long)p.version);
	else if (r == -ENOENT)
		snprintf(t->policy, sizeof(t->policy), "no policy yet");
	else
		return r;
	policy_terms(&c, t);
	return 0;
}

int
svc_portal_link_create(struct service *s, const char *device_id, char **url)
{
	struct portal_link l;
	char *secret = NULL;
	size_t n;
	int r;

	memset(&l, 0, sizeof(l));
	str_copy(l.device_id, sizeof(l.device_id), device_id);
	l.created_at = svc_now_s(s);
	l.expires_at = l.created_at + PORTAL_LINK_TTL_S;
	r = svc_new_secret("clv_pl_", &secret, l.hash);
	if (r == 0)
		r = s->st->ops->portal_link_insert(s->st, &l);
	if (r == 0) {
		n = strlen(s->public_url) + strlen(secret) + 16;
		*url = malloc(n);
		if (*url == NULL)
			r = -ENOMEM;
		else
			snprintf(*url, n, "%s/portal/%s", s->public_url, secret);
	}
	if (secret != NULL) {
		secure_zero(secret, strlen(secret));
		free(secret);
	}
	return r;
}

int
svc_portal_open(struct service *s, const char *secret, struct device *d)
{
	struct portal_link l;
	uint8_t h[32];
	int r;

	if (secret == NULL || strncmp(secret, "clv_pl_", 7) != 0)
		return SVC_PORTAL_UNKNOWN;
	crypto_sha256(secret, strlen(secret), h);
	r = s->st->ops->portal_link_get(s->st, h, &l);
	if (r == -ENOENT)
		return SVC_PORTAL_UNKNOWN;
	if (r != 0)
		return r;
	if (l.expires_at <= svc_now_s(s))
		return SVC_PORTAL_EXPIRED;
	r = s->st->ops->device_get(s->st, l.device_id, d);
	return r == -ENOENT ? SVC_PORTAL_UNKNOWN : r;
}

/* Pages through the device's commands (bounded) so that out ends with the newest max. */
int
svc_portal_commands(struct service *s, const char *device_id, struct command *out, size_t max,
		    size_t *n)
{
	struct command_filter f = {.device_id = device_id, .limit = max};
	struct command *more;
	size_t k = 0;
	int r = s->st->ops->command_list(s->st, &f, out, n);

	if (r != 0 || *n < max)
		return r;
	more = malloc(max * sizeof(*more));
	if (more == NULL)
		return -ENOMEM;
	for (int page = 0; r == 0 && page < 1000; page++) {
		f.after = out[max - 1].rowid;
		r = s->st->ops->command_list(s->st, &f, more, &k);
		if (r != 0 || k == 0)
			break;
		memmove(out, out + k, (max - k) * sizeof(*out));
		memcpy(out + max - k, more, k * sizeof(*out));
		if (k < max)
			break;
	}
	free(more);
	return r;
}

int
svc_portal_leave(struct service *s, const char *secret, const char *client, struct command *out,
		 int *created, struct svc_error *err)
{
	char actor[64], detail[128];
	struct device d;
	int r = svc_source_check(s, client, err);

	if (r != 0)
		return r;
	r = svc_portal_open(s, secret, &d);
	if (r < 0)
		return svc_store_fail(err, r, "device");
	if (r != SVC_PORTAL_OK) {
		svc_refused(s, client, NULL, "portal.leave", "unknown or expired device link");
		return svc_fail(err, SVC_NOT_FOUND, "this device link is unknown or has expired");
	}
	r = svc_unenroll(s, &d, out, created, err);
	if (r != 0)
		return r;
	/* The employee, through their device's link, is who asked: on the record as such. */
	snprintf(actor, sizeof(actor), "employee:%s", d.id);
	snprintf(detail, sizeof(detail), "from the device page (%s); retire %s",
		 client ? client : "?", out->id);
	svc_audit_event(s, actor, "portal.leave", d.id, "ok", detail);
	svc_notify(s, d.id);
	return 0;
}

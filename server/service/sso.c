/*
 * Single sign-on for admins (issue 11 §6): the service's side of an OpenID Connect sign-in.
 * The flow's secrets (state, nonce, PKCE verifier) live in the database (oidc_flows), taken
 * once, so whichever server the provider sends the browser back to can finish it. A verified
 * identity (the api layer checked the ID token and mapped the role claim) becomes a console
 * session like a password sign-in's: the account is found by the provider's (issuer, sub),
 * made on the first sign-in, and its email, name and role follow the provider at each one. An
 * account made here has no password (an empty hash never verifies), so it cannot be used
 * without the provider; local accounts keep their passwords for break-glass access.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "audit/audit.h"
#include "service_priv.h"

/* One write attempt: begin, op, commit (rolled back on failure). */
static int
tx_once(struct service *s, int (*op)(struct service *s, void *arg), void *arg)
{
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = op(s, arg);
	if (r == 0)
		return s->st->ops->tx_commit(s->st);
	s->st->ops->tx_rollback(s->st);
	return r;
}

static int
op_flow_insert(struct service *s, void *arg)
{
	return s->st->ops->oidc_flow_insert(s->st, arg);
}

int
svc_sso_begin(struct service *s, char **state, char **nonce, char **verifier, struct svc_error *err)
{
	struct oidc_flow f;
	uint8_t unused[32];
	int r;

	*state = *nonce = *verifier = NULL;
	memset(&f, 0, sizeof(f));
	if (svc_new_secret("", state, f.state_hash) != 0 ||
	    svc_new_secret("", nonce, unused) != 0 || svc_new_secret("", verifier, unused) != 0) {
		r = svc_fail(err, SVC_INTERNAL, "random source failed");
		goto fail;
	}
	str_copy(f.nonce, sizeof(f.nonce), *nonce);
	str_copy(f.verifier, sizeof(f.verifier), *verifier);
	f.created_at = svc_now_s(s);
	f.expires_at = f.created_at + SVC_SSO_FLOW_S;
	SVC_TX_RETRY(s, r, tx_once(s, op_flow_insert, &f));
	if (r == 0)
		return 0;
	r = svc_store_fail(err, r, "sign-in");
fail:
	free(*state);
	free(*nonce);
	free(*verifier);
	*state = *nonce = *verifier = NULL;
	return r;
}

static int
op_flow_take(struct service *s, void *arg)
{
	struct oidc_flow *f = arg;

	return s->st->ops->oidc_flow_take(s->st, f->state_hash, f);
}

int
svc_sso_take(struct service *s, const char *state, struct oidc_flow *out, struct svc_error *err)
{
	int r;

	memset(out, 0, sizeof(*out));
	crypto_sha256(state, strlen(state), out->state_hash);
	SVC_TX_RETRY(s, r, tx_once(s, op_flow_take, out));
	if (r == -ENOENT)
		return svc_fail(err, SVC_UNAUTHORIZED,
				"This sign-in is unknown or was finished already. Start again from "
				"the sign-in page.");
	if (r != 0)
		return svc_store_fail(err, r, "sign-in");
	if (out->expires_at <= svc_now_s(s))
		return svc_fail(err, SVC_UNAUTHORIZED,
				"This sign-in took too long. Start again from the sign-in page.");
	return 0;
}

/* What one sign-in writes, and what it found (for the audit entry). */
struct sso_write {
	const struct sso_identity *id;
	struct admin_account *a;
	const struct admin_session *ss;
	const char *what; /* "created", "updated" or "" */
	int64_t now;
};

/* The account linked to the identity, made and linked when there is none. */
static int
sso_account(struct service *s, struct sso_write *w)
{
	const struct sso_identity *id = w->id;
	struct admin_account *a = w->a;
	int r = s->st->ops->admin_by_identity(s->st, id->issuer, id->subject, a);

	if (r == 0) {
		if (a->disabled_at != 0)
			return -EACCES;
		if (strcmp(a->email, id->email) == 0 && strcmp(a->display_name, id->name) == 0 &&
		    strcmp(a->role, role_name(id->role)) == 0)
			return 0;
		w->what = "updated";
		str_copy(a->email, sizeof(a->email), id->email);
		str_copy(a->display_name, sizeof(a->display_name), id->name);
		str_copy(a->role, sizeof(a->role), role_name(id->role));
		return s->st->ops->admin_sso_update(s->st, a->id, a->email, a->display_name,
						    a->role);
	}
	if (r != -ENOENT)
		return r;
	memset(a, 0, sizeof(*a));
	if (svc_new_id(a->id, "adm_") != 0)
		return -EIO;
	str_copy(a->email, sizeof(a->email), id->email);
	str_copy(a->display_name, sizeof(a->display_name), id->name);
	str_copy(a->role, sizeof(a->role), role_name(id->role));
	str_copy(a->created_by, sizeof(a->created_by), "sso");
	a->created_at = w->now;
	a->created_ms = service_now_ms(s);
	w->what = "created";
	r = s->st->ops->admin_insert(s->st, a); /* -EEXIST: the email is a local account's */
	return r != 0 ? r
		      : s->st->ops->admin_identity_insert(s->st, id->issuer, id->subject, a->id,
							  w->now);
}

static int
op_sso_login(struct service *s, void *arg)
{
	struct sso_write *w = arg;
	struct admin_session ss = *w->ss;
	char detail[600];
	int r;

	w->what = "";
	r = sso_account(s, w);
	if (r != 0)
		return r;
	str_copy(ss.admin_id, sizeof(ss.admin_id), w->a->id);
	r = s->st->ops->session_insert(s->st, &ss);
	if (r != 0)
		return r;
	snprintf(detail, sizeof(detail), "sso issuer=%s sub=%s role=%s%s%s", w->id->issuer,
		 w->id->subject, w->a->role, w->what[0] ? " account=" : "", w->what);
	return audit_append(s->st, service_now_ms(s), w->a->id, "admin.login", w->a->id, "ok",
			    detail);
}

/* Why an identity may not sign in before anything is written; NULL when it may. */
static const char *
identity_refusal(const struct service *s, const struct sso_identity *id)
{
	const char *at = strrchr(id->email, '@');

	if (id->role == ROLE_NONE)
		return "The identity provider gave this account no Cleave role.";
	if (at == NULL || at == id->email || at[1] == '\0' || strlen(id->email) >= STORE_NAME_MAX)
		return "The identity provider gave no usable email for this account.";
	if (id->email_domain != NULL && id->email_domain[0] != '\0' &&
	    strcasecmp(at + 1, id->email_domain) != 0)
		return "This account's email is not in the domain allowed to sign in.";
	/* require_totp asks every console sign-in for a second factor; here the provider's. */
	if (s->cfg.require_totp && !id->second_factor)
		return "This server requires a second factor, and the identity provider does not "
		       "say one was used (its acr is not in oidc_mfa_acr).";
	if (id->subject == NULL || id->subject[0] == '\0' || strlen(id->subject) > 255)
		return "The identity provider's subject (sub) is empty or too long.";
	return NULL;
}

int
svc_sso_login(struct service *s, const struct sso_identity *id, const char *client,
	      char **session_id, struct admin_account *out, struct svc_error *err)
{
	struct admin_session ss;
	struct sso_write w = {.id = id, .a = out, .ss = &ss, .now = svc_now_s(s)};
	const char *why = identity_refusal(s, id);
	int r;

	*session_id = NULL;
	if (why != NULL) {
		svc_sso_refused(s, client, id->email, why);
		return svc_fail(err, SVC_FORBIDDEN, "%s", why);
	}
	memset(&ss, 0, sizeof(ss));
	if (svc_new_secret("cls_", session_id, ss.hash) != 0)
		return svc_fail(err, SVC_INTERNAL, "random source failed");
	ss.created_at = ss.last_seen_at = w.now;
	ss.second_factor = id->second_factor; /* the provider's acr was in oidc_mfa_acr */
	SVC_TX_RETRY(s, r, tx_once(s, op_sso_login, &w));
	if (r == 0)
		return 0;
	free(*session_id);
	*session_id = NULL;
	if (r == -EACCES || r == -EEXIST) {
		why = r == -EACCES ? "This account is disabled in Cleave."
				   : "A Cleave account not linked to this identity provider has "
				     "this email; an admin must remove it first.";
		svc_sso_refused(s, client, id->email, why);
		return svc_fail(err, SVC_FORBIDDEN, "%s", why);
	}
	return svc_store_fail(err, r, "sign-in");
}

void
svc_sso_refused(struct service *s, const char *client, const char *who, const char *why)
{
	char detail[400];

	/* Each refusal is on the record with its reason (they are rare, and never anonymous). */
	snprintf(detail, sizeof(detail), "%s (from %s)", why, client ? client : "?");
	svc_audit_event(s, who && *who ? who : "sso", "admin.sso_refused", "console", "denied",
			detail);
}

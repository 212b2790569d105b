/*
 * The OpenID provider of the single sign-on tests: LemonLDAP::NG's portal, started from
 * tests/oidc/llng_op.sh on 127.0.0.1 in a temporary directory, and a small user agent that signs
 * in at its login form (what a person does in the browser) so that C tests can drive the whole
 * authorization-code flow. Users: dwho (cleave_role admin), rtyler (auditor), msmith (no role);
 * each password is the login.
 */
#ifndef CLEAVE_TEST_OIDCOP_H
#define CLEAVE_TEST_OIDCOP_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

struct oidcop {
	pid_t pid;
	unsigned port;
	char dir[PATH_MAX];    /* configuration, keys, sessions; removed by oidcop_stop */
	char issuer[64];       /* https://127.0.0.1:PORT */
	char cafile[PATH_MAX]; /* the CA of the portal's TLS certificate */
	char log[PATH_MAX];
};

/* Why the provider cannot run here (a package missing), or NULL when it can. */
const char *oidcop_skip_reason(void);

/*
 * Picks a free port and fills op (issuer, cafile) without starting anything, so that the relying
 * party can be configured first. 0 or -1.
 */
int oidcop_init(struct oidcop *op, const char *tag);
/*
 * Starts the provider with one relying party "cleave" (secret, redirect_uri) and waits (bounded,
 * 60 s) until its discovery document answers. 0, or -1 with its log printed.
 */
int oidcop_start(struct oidcop *op, const char *redirect_uri, const char *secret);
/*
 * Replaces the provider's signing key with a new one named kid and waits (bounded, 15 s) until
 * its JWKS publishes it. 0 or -1.
 */
int oidcop_rotate(const struct oidcop *op, const char *kid);
/* Stops the provider (if running) and removes its directory. */
void oidcop_stop(struct oidcop *op);

struct srv;
/*
 * A cleave-server with single sign-on through a fresh provider: inits both, writes the server's
 * config (the oidc_* settings, client secret file, the provider's CA; extra_conf appended, may
 * be NULL), starts the server, then the provider with the server's callback as redirect URI.
 * 0, or -1 (what is up is left for srv_cleanup and oidcop_stop).
 */
int oidcop_server(struct srv *s, struct oidcop *op, const char *tag, const char *extra_conf);
/*
 * Writes PREFIX.conf (into conf) with op's oidc_* settings plus extra_conf, and the client
 * secret file PREFIX.oidc-secret it names. 0 or -1.
 */
int oidcop_conf(const struct oidcop *op, const char *prefix, const char *extra_conf, char *conf,
		size_t cap);
#define OIDCOP_SECRET "sso-test-secret"

/*
 * Plays the browser at the provider: GETs authorize_url (a full URL), fills the login form with
 * user and password, and follows the provider's redirects until one leaves the provider; that
 * Location goes to out (the relying party's callback with code and state, or its error).
 * 0, or -1 (transport failure, no form, no redirect out; a reason printed).
 */
int oidcop_login(const struct oidcop *op, const char *authorize_url, const char *user,
		 const char *password, char *out, size_t cap);

#endif

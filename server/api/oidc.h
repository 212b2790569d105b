/*
 * Single sign-on for the console with OpenID Connect (issue 11 §6): the settings (config file
 * keys oidc_*, parsed here for main.c) and turning it on for the api. The routes are
 * GET /api/v1/oidc (is it on, the provider's name), GET /api/v1/oidc/login (to the provider)
 * and GET /api/v1/oidc/callback (back from it: a console session, or a page saying why not).
 */
#ifndef CLEAVE_API_OIDC_H
#define CLEAVE_API_OIDC_H

#include <limits.h>

struct api;

struct api_oidc_config {
	char issuer[256];
	char client_id[128];
	char client_secret_file[PATH_MAX];
	char ca_file[PATH_MAX]; /* "" : the system's trust store */
	char redirect_uri[512]; /* "" : BASE_URL/api/v1/oidc/callback */
	char scopes[256];       /* "" : "openid email profile" */
	char role_claim[64];    /* "" : "cleave_role" */
	char role_map[512];     /* "" : admin=admin,helpdesk=helpdesk,auditor=auditor */
	char email_domain[128]; /* "" : any */
	char provider_name[64]; /* "" : "single sign-on" (the console's button) */
	char mfa_acr[256];      /* acr values meaning a second factor was used ("" : none) */
};

/*
 * Takes one config file setting whose key starts with "oidc_": 0, or -1 (an unknown oidc_ key
 * or a bad value; said on stderr).
 */
int api_oidc_setting(struct api_oidc_config *c, const char *key, const char *val);
/*
 * Turns single sign-on on when c->issuer is set (else does nothing): checks the settings, reads
 * the client secret file, fills the defaults (base_url: this server's public URL). 0, or -1
 * with the reason logged. Call before the server takes requests.
 */
int api_set_oidc(struct api *a, const struct api_oidc_config *c, const char *base_url);

#endif

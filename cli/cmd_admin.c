/*
 * The server, enrollment tokens (with the link's QR code drawn in the terminal), policies,
 * console accounts and API tokens.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP   2048
#define POLICY_MAX (64u << 10) /* the server's body limit */

int
cmd_server(struct ctx *c)
{
	return print_get(c, "/api/v1/server");
}

/* Adds a positive integer option to a request object as name. */
static int
int_member(const struct ctx *c, json_t *req, const char *optname, const char *name, long max)
{
	long v;
	int rc = opt_long(c, optname, 0, 1, max, &v);

	if (rc == EX_OK && opt(c, optname) != NULL)
		json_object_set_new(req, name, json_integer(v));
	return rc;
}

/* POSTs req (decref'd here) to path; the answer into *out (caller decrefs) and r. */
static int
post(struct ctx *c, const char *path, json_t *req, json_t **out, struct reply *r)
{
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	int rc;

	json_decref(req);
	*out = NULL;
	memset(r, 0, sizeof(*r));
	if (body == NULL)
		return fail(EX_SERVER, "out of memory");
	rc = api_json(c, "POST", path, body, NULL, out, r);
	secure_zero(body, strlen(body)); /* it may hold a password */
	free(body);
	return rc;
}

int
cmd_etokens_create(struct ctx *c)
{
	const char *owner = opt(c, "owner"), *url;
	struct reply r;
	json_t *req, *j;
	int rc;

	if (owner == NULL)
		return fail(EX_USAGE, "enrollment-tokens create needs --owner");
	req = json_pack("{s:s}", "owner", owner);
	if ((rc = int_member(c, req, "uses", "uses", 100000)) != EX_OK ||
	    (rc = int_member(c, req, "expires-in", "expires_in", 31536000)) != EX_OK) {
		json_decref(req);
		return rc;
	}
	rc = post(c, "/api/v1/enrollment-tokens", req, &j, &r);
	url = json_string_value(json_object_get(j, "enroll_url"));
	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		printf("enrollment token ");
		put_safe(stdout, json_string_value(json_object_get(j, "id")));
		printf(" for ");
		put_safe(stdout, json_string_value(json_object_get(j, "owner")));
		printf(", %lld use(s), expires ",
		       (long long)json_integer_value(json_object_get(j, "uses_max")));
		put_safe(stdout, json_string_value(json_object_get(j, "expires_at")));
		printf("\n");
		if (url && !opt(c, "no-qr")) {
			putchar('\n');
			if (qr_print(stdout, url, opt(c, "invert") != NULL) != 0)
				fprintf(stderr, "cleavectl: cannot draw the QR code\n");
			putchar('\n');
		}
		printf("Open on the phone (shown only now): ");
		put_safe(stdout, url);
		putchar('\n');
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_etokens_list(struct ctx *c)
{
	static const struct col cols[] = {
		{"ID", "id", 30},
		{"OWNER", "owner", 30},
		{"USES", "uses", 5},
		{"MAX", "uses_max", 6},
		{"EXPIRES", "expires_at", 24},
		{"REVOKED", "revoked_at", 24},
		{"BY", "created_by", 20},
	};
	return list_paged(c, "/api/v1/enrollment-tokens", cols, ARRAY_SIZE(cols));
}

int
cmd_etokens_revoke(struct ctx *c)
{
	return act_id(c, "DELETE", "enrollment-tokens", "", "revoked enrollment token");
}

int
cmd_policies_list(struct ctx *c)
{
	static const struct col cols[] = {
		{"NAME", "name", 30},
		{"VERSION", "version", 7},
		{"DEFAULT", "default", 7},
		{"ASSIGNED", "devices.assigned", 8},
		{"APPLIED", "devices.applied", 8},
		{"UPDATED", "updated_at", 24},
	};
	return print_list(c, "/api/v1/policies", cols, ARRAY_SIZE(cols)); /* one page: all */
}

int
cmd_policies_get(struct ctx *c)
{
	return get_id(c, "policies", "");
}

/* The whole of path ("-": stdin), at most POLICY_MAX bytes, NUL-terminated; NULL on failure. */
static char *
slurp(const char *path)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	char *buf = malloc(POLICY_MAX + 2);
	size_t n = 0;

	if (f == NULL || buf == NULL) {
		fail(EX_USAGE, "cannot read %s: %s", path, strerror(errno));
		free(buf);
		return NULL;
	}
	n = fread(buf, 1, POLICY_MAX + 1, f);
	if (f != stdin)
		fclose(f);
	if (n > POLICY_MAX) {
		fail(EX_USAGE, "%s is larger than 64 KiB", path);
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

int
cmd_policies_put(struct ctx *c)
{
	const char *file = opt(c, "file");
	char path[PATH_CAP], *body;
	struct reply r;
	json_t *j;
	int rc;

	if (file == NULL)
		return fail(EX_USAGE, "policies put needs --file FILE (- for stdin)");
	if (id_path(path, sizeof(path), "policies", c->a.pos[0], "") != EX_OK ||
	    (body = slurp(file)) == NULL)
		return EX_USAGE;
	rc = api_json(c, "PUT", path, body, NULL, &j, &r);
	free(body);
	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		printf("policy ");
		put_safe(stdout, json_string_value(json_object_get(j, "name")));
		printf(" version %lld%s\n",
		       (long long)json_integer_value(json_object_get(j, "version")),
		       r.status == 201 ? " (new)" : "");
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_policies_default(struct ctx *c)
{
	char *body, done[160];
	json_t *req;
	int rc;

	if (c->a.npos == 0)
		return print_get(c, "/api/v1/default-policy");
	req = json_pack("{s:s}", "name", c->a.pos[0]);
	body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	snprintf(done, sizeof(done), "the default policy is now %s", c->a.pos[0]);
	rc = body ? act(c, "PUT", "/api/v1/default-policy", body, NULL, done)
		  : fail(EX_SERVER, "out of memory");
	free(body);
	return rc;
}

int
cmd_admins_list(struct ctx *c)
{
	static const struct col cols[] = {
		{"ID", "id", 30},
		{"EMAIL", "email", 30},
		{"NAME", "display_name", 24},
		{"ROLE", "role", 8},
		{"TOTP", "totp", 5},
		{"DISABLED", "disabled", 8},
		{"CREATED", "created_at", 24},
	};

	return print_list(c, "/api/v1/admins", cols, ARRAY_SIZE(cols));
}

/* The new account's password: --password-file, or typed twice without echo. */
static int
new_password(const struct ctx *c, char *pw, size_t cap)
{
	char again[1100];
	const char *file = opt(c, "password-file");

	if (file != NULL)
		return token_read_file(file, pw, cap) == 0 ? EX_OK : EX_USAGE;
	if (!isatty(STDIN_FILENO))
		return fail(EX_USAGE, "give --password-file FILE, or run on a terminal to type it");
	if (read_secret("Password (12 or more characters): ", pw, cap) != 0 ||
	    read_secret("Again: ", again, sizeof(again)) != 0 || strcmp(pw, again) != 0)
		return fail(EX_USAGE, "the passwords differ");
	secure_zero(again, sizeof(again));
	return EX_OK;
}

int
cmd_admins_create(struct ctx *c)
{
	const char *email = opt(c, "email"), *name = opt(c, "name"), *role = opt(c, "role");
	char pw[1100];
	struct reply r;
	json_t *j;
	int rc;

	if (email == NULL || name == NULL || role == NULL)
		return fail(EX_USAGE, "admins create needs --email, --name and --role");
	if ((rc = new_password(c, pw, sizeof(pw))) != EX_OK)
		return rc;
	rc = post(c, "/api/v1/admins",
		  json_pack("{s:s, s:s, s:s, s:s}", "email", email, "display_name", name, "role",
			    role, "password", pw),
		  &j, &r);
	secure_zero(pw, sizeof(pw));
	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		printf("account ");
		put_safe(stdout, json_string_value(json_object_get(j, "id")));
		printf(" (%s) for ", role);
		put_safe(stdout, email);
		putchar('\n');
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_admins_disable(struct ctx *c)
{
	return act_id(c, "DELETE", "admins", "", "disabled account");
}

int
cmd_admins_totp(struct ctx *c)
{
	char path[PATH_CAP];
	const char *uri;
	struct reply r;
	json_t *j;
	int rc;

	if (id_path(path, sizeof(path), "admins", c->a.pos[0], "/totp") != EX_OK)
		return EX_USAGE;
	rc = post(c, path, json_object(), &j, &r);
	uri = json_string_value(json_object_get(j, "otpauth_uri"));
	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK && uri != NULL) {
		printf("Scan with the authenticator app (shown only now):\n\n");
		qr_print(stdout, uri, opt(c, "invert") != NULL);
		printf("\n");
		put_safe(stdout, uri);
		putchar('\n');
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_tokens_list(struct ctx *c)
{
	static const struct col cols[] = {
		{"ID", "id", 30},
		{"NAME", "name", 24},
		{"ROLE", "role", 8},
		{"ACTIVE", "active", 6},
		{"CREATED", "created_at", 24},
		{"EXPIRES", "expires_at", 24},
		{"BY", "created_by", 20},
	};
	return list_paged(c, "/api/v1/tokens", cols, ARRAY_SIZE(cols));
}

int
cmd_tokens_create(struct ctx *c)
{
	const char *name = opt(c, "name"), *role = opt(c, "role");
	struct reply r;
	json_t *req, *j;
	int rc;

	if (name == NULL || role == NULL)
		return fail(EX_USAGE, "tokens create needs --name and --role");
	req = json_pack("{s:s, s:s}", "name", name, "role", role);
	/* Approving under the two-person rule; only a caller that may approve can grant it. */
	if (req != NULL && opt(c, "approve") != NULL)
		json_object_set_new(req, "permissions", json_pack("[s]", "approve"));
	if ((rc = int_member(c, req, "expires-in", "expires_in", 315360000)) != EX_OK) {
		json_decref(req);
		return rc;
	}
	rc = post(c, "/api/v1/tokens", req, &j, &r);
	if (rc == EX_OK && c->json) {
		print_raw(&r);
	} else if (rc == EX_OK) {
		printf("token ");
		put_safe(stdout, json_string_value(json_object_get(j, "id")));
		printf(" (%s%s); its secret, shown only now:\n", role,
		       opt(c, "approve") ? ", may approve" : "");
		put_safe(stdout, json_string_value(json_object_get(j, "token")));
		putchar('\n');
	}
	json_decref(j);
	reply_free(&r);
	return rc;
}

int
cmd_tokens_revoke(struct ctx *c)
{
	return act_id(c, "DELETE", "tokens", "", "revoked token");
}

/* The steps of a TPM enrollment end to end (tpm_e2e.h). */
#include "tpm_e2e.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

/* Prints what j is, compact, for a failing check. */
static void
print_json(const char *what, const json_t *j)
{
	char *text = json_dumps(j, JSON_COMPACT);

	printf("    %s: %s\n", what, text != NULL ? text : "(none)");
	free(text);
}

int
tpme_enroll(struct e2e *e, char *out, size_t cap)
{
	char token[256], args[PATH_MAX * 3];

	if (admin_etoken(e->admin, "tess@example.com", 1, token, sizeof(token)) != 0)
		return -1;
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --ca-cert '%s' --hv-socket '%s'", e->s.url, token,
		 e->s.cacert, e->hv.sock);
	return e2e_agent_cmd(e, args, out, cap);
}

void
tpme_check_enrolled(struct e2e *e, char *ca, size_t cap)
{
	char out[4096], path[160];
	json_t *dev, *hv;
	int code = tpme_enroll(e, out, sizeof(out));

	CHECK(code == 0 && strstr(out, "in its TPM, whose endorsement the server verified") != NULL,
	      "the agent must enroll cleave-hv --tpm: exit %d: %s (see %s)", code, out,
	      e->agent_log);
	CHECK(e2e_enroll_id(e) == 0, "the agent's identity names no device");
	snprintf(path, sizeof(path), "/api/v1/devices/%s", e->device_id);
	dev = e2e_get(e, path);
	hv = json_object_get(dev, "hypervisor");
	str_copy(ca, cap, e2e_str(hv, "endorsement_ca"));
	code = strcmp(e2e_str(hv, "identity"), "tpm") == 0 &&
	       strcmp(e2e_str(hv, "endorsement"), "verified") == 0 &&
	       strcmp(e2e_str(hv, "signature_alg"), "ecdsa-p256-sha256") == 0 &&
	       strstr(ca, "CN=") != NULL;
	if (!code)
		print_json("device view", hv);
	json_decref(dev);
	CHECK(code, "the device view must say identity tpm, endorsement verified, ECDSA P-256");
}

void
tpme_enroll_refused(struct e2e *e, const char *want)
{
	char out[4096];
	int code = tpme_enroll(e, out, sizeof(out));

	CHECK(code == 3 && strstr(out, "the server refused the enrollment") != NULL &&
		      strstr(out, want) != NULL,
	      "the enrollment must be refused with the reason (%s): exit %d: %s", want, code, out);
	printf("    %s", out);
}

int
tpme_wait_attested_compliant(struct e2e *e)
{
	char path[160];

	snprintf(path, sizeof(path), "/api/v1/devices/%s", e->device_id);
	for (int k = 0; k < 400; k++) {
		json_t *dev = e2e_get(e, path);
		int ok = strcmp(e2e_str(json_object_get(dev, "hypervisor"), "attestation"), "ok") ==
				 0 &&
			 json_is_true(
				 json_object_get(json_object_get(dev, "compliance"), "compliant"));

		json_decref(dev);
		if (ok)
			return 0;
		usleep(50000);
	}
	return -1;
}

void
tpme_wipe(struct e2e *e, char *id, size_t cap, long long *before, long long *after)
{
	char path[160];
	json_t *cmd, *body, *rc;
	int ok;

	CHECK(e2e_command(e, "wipe", id, cap) == 202, "queue the wipe");
	cmd = e2e_wait_command(e, id, TPME_CMD_MS);
	ok = cmd != NULL && strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
	     json_is_true(json_object_get(cmd, "verified"));
	if (!ok)
		printf("    wipe: %s\n", cmd ? e2e_str(cmd, "unverified_reason") : "not finished");
	json_decref(cmd);
	CHECK(ok, "the wipe must be completed and verified (see %s)", e->agent_log);
	snprintf(path, sizeof(path), "/api/v1/commands/%s/receipt", id);
	body = e2e_get(e, path);
	rc = json_object_get(body, "receipt");
	*before = json_integer_value(json_object_get(rc, "wipe_counter_before"));
	*after = json_integer_value(json_object_get(rc, "wipe_counter_after"));
	ok = json_integer_value(json_object_get(rc, "version")) == 2 &&
	     json_is_true(json_object_get(rc, "signature_ok")) && *before > 0 &&
	     *after == *before + 1;
	if (!ok)
		print_json("receipt", rc);
	json_decref(body);
	CHECK(ok, "a version 2 receipt whose wipe counter moved by one");
	CHECK(e2e_wait_reported(e, "wiped", 5000) == 0, "reported state should be wiped");
}

/* A token of role auditor into out. 0 or -1. */
static int
auditor_token(struct e2e *e, char *out, size_t cap)
{
	struct resp r;
	int rc = -1;

	if (client_req(e->admin, "POST", "/api/v1/tokens",
		       "{\"name\":\"tpm auditor\",\"role\":\"auditor\"}", NULL, &r) != 0)
		return -1;
	if (r.status == 201)
		rc = resp_str(&r, "token", out, cap);
	resp_free(&r);
	return rc;
}

/*
 * The README's auditor block of "Hardware identity (TPM)" (the ```sh block that starts with
 * CMD=), its first line replaced by first, into a malloc'd string; NULL with a message.
 */
static char *
readme_block(const char *first)
{
	const char *bin = getenv("CLEAVE_BIN");
	char path[PATH_MAX], *text, *out = NULL;
	const char *sec, *b, *end, *line2;

	snprintf(path, sizeof(path), "%s/../../README.md", bin && *bin ? bin : "build/bin");
	text = file_read_all(path, 1 << 20, NULL);
	sec = text ? strstr(text, "\n## Hardware identity (TPM)\n") : NULL;
	b = sec ? strstr(sec, "\n```sh\nCMD=") : NULL;
	end = b ? strstr(b + 7, "\n```\n") : NULL;
	line2 = b ? strchr(b + 7, '\n') : NULL;
	if (end == NULL || line2 == NULL || line2 > end ||
	    (sec != NULL && strstr(sec + 1, "\n## ") < b)) {
		printf("    README.md has no ```sh block starting with CMD= under \"Hardware "
		       "identity (TPM)\"\n");
	} else {
		size_t n = strlen(first) + (size_t)(end - line2) + 2;

		out = malloc(n);
		if (out != NULL)
			snprintf(out, n, "%s%.*s\n", first, (int)(end - line2), line2);
	}
	free(text);
	return out;
}

/* Every 64-digit hex line followed by a line that starts with it and "  -": how many pairs. */
static int
hash_pairs(const char *out)
{
	int pairs = 0;

	for (const char *p = out; p != NULL && *p != '\0';) {
		const char *nl = strchr(p, '\n');

		if (nl != NULL && nl - p == 64 && strspn(p, "0123456789abcdef") == 64 &&
		    strncmp(nl + 1, p, 64) == 0 && strncmp(nl + 65, "  -", 3) == 0)
			pairs++;
		p = nl ? nl + 1 : NULL;
	}
	return pairs;
}

/* Whether a line of out is two numbers, before and after (od -tu8's wipe counter line). */
static int
has_counters(const char *out, long long before, long long after)
{
	for (const char *p = out; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		long long a, b;
		char more;

		if (sscanf(p, " %lld %lld%c", &a, &b, &more) == 3 && more == '\n' && a == before &&
		    b == after)
			return 1;
	}
	return 0;
}

/*
 * Runs the README's auditor block in a directory of its own (ca.pem: the server's CA;
 * tpm-cas.pem: the maker's CAs; build/bin: the binaries) for command cmd_id; its output into
 * out (malloc'd). The exit code of bash.
 */
static int
run_auditor_block(struct e2e *e, const char *cas, const char *cmd_id, char **out)
{
	char dir[PATH_MAX + 16], first[PATH_MAX * 3], tok[128], sh[PATH_MAX * 4];
	const char *bin = getenv("CLEAVE_BIN");
	char *block;
	int rc;

	*out = NULL;
	if (auditor_token(e, tok, sizeof(tok)) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s.auditor", e->agent_dir);
	snprintf(first, sizeof(first), "CMD=%s; DEV=%s; HV='%s'; CLEAVE=%s; AUDITOR_TOKEN=%s\n",
		 cmd_id, e->device_id, e->hv.sock, e->s.url, tok);
	block = readme_block(first);
	if (block == NULL)
		return -1;
	snprintf(sh, sizeof(sh), "%s/auditor.sh", dir);
	snprintf(first, sizeof(first),
		 "mkdir -p '%s/build' && ln -sfn '%s' '%s/build/bin' && cp '%s' '%s/ca.pem' && cp "
		 "'%s' '%s/tpm-cas.pem'",
		 dir, bin && *bin ? bin : "../../build/bin", dir, e->s.cacert, dir, cas, dir);
	rc = system(first);
	if (rc == 0)
		rc = file_write_atomic(sh, block, strlen(block), 0644);
	free(block);
	if (rc != 0)
		return -1;
	snprintf(first, sizeof(first),
		 "cd '%s' && timeout 60 bash -e -o pipefail auditor.sh > auditor.out 2>&1", dir);
	rc = system(first);
	snprintf(sh, sizeof(sh), "%s/auditor.out", dir);
	*out = file_read_all(sh, 1 << 20, NULL);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

void
tpme_audit(struct e2e *e, const char *cas, const char *id, const char *ca, long long before,
	   long long after)
{
	char issuer[600], *audit = NULL;
	int code = run_auditor_block(e, cas, id, &audit), ok;

	snprintf(issuer, sizeof(issuer), "issuer=%s\n", ca);
	ok = code == 0 && audit != NULL && strstr(audit, "Verified OK\n") != NULL &&
	     hash_pairs(audit) == 2 && has_counters(audit, before, after) &&
	     strstr(audit, issuer) != NULL && strstr(audit, "ek.pem: OK\n") != NULL;
	if (!ok)
		printf("    the README's TPM auditor block exited %d and printed:\n%s\n", code,
		       audit ? audit : "");
	free(audit);
	CHECK(ok, "the README's TPM auditor block must verify the receipt and the EK chain");
}

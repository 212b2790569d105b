/*
 * A hardware identity end to end (issue 13): the real cleave-server requiring one
 * (require_hardware_identity = 1, tpm_ca_file = the CAs of a manufactured swtpm's maker), the
 * real cleave-hv --tpm on that swtpm and the real cleave-agent, nothing played by the test.
 *
 * tpm_enroll_wipe_audit: the agent enrolls (TPM_IDENTITY, the credential, TPM_ACTIVATE, the
 * quote); the device view says identity tpm, endorsement verified by the maker's issuing CA;
 * `cleave-agent status` sees cleave-hv (keystore tpm) hold the enrollment; the agent's check-in
 * attestations, signed in the TPM, verify and the device is compliant; a lock and an unlock
 * complete verified; a wipe from the API completes verified with a version 2 receipt whose wipe
 * counter moved by one; then the README's auditor block ("Hardware identity (TPM)") runs as
 * printed, with an auditor token: openssl alone verifies the receipt with the hypervisor PEM the
 * API gives and the EK certificate's chain with the maker's CAs.
 * tpm_file_keystore_refused: the same agent and cleave-hv with the file keystore are refused
 * under that policy, and the agent prints the server's reason and exits 3 (refused).
 * tpm_untrusted_maker_refused: cleave-hv --tpm on a TPM whose maker the server does not trust is
 * refused at the nonce request with the server's reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "e2e.h"
#include "fileio.h"
#include "swtpmtest.h"
#include "util.h"

#define CMD_MS 30000 /* an order from POST to verified receipt, generous for loaded machines */

/* The server trusting maker's CAs, cleave-hv on tpm (NULL: the file keystore). */
struct rig {
	struct swtpm maker, other;
	struct e2e e;
	const char *hv_args[3];
	char cas[PATH_MAX + 16];
};

enum hv_kind { HV_FILE, HV_TPM, HV_OTHER_TPM };

static int
rig_up(struct rig *r, const char *tag, enum hv_kind kind)
{
	char conf[PATH_MAX + 128];

	memset(r, 0, sizeof(*r));
	if (swtpm_make(&r->maker, "maker") != 0 || swtpm_start(&r->maker) != 0 ||
	    swtpm_ca_bundle(&r->maker, r->cas, sizeof(r->cas)) != 0)
		return -1;
	if (kind == HV_OTHER_TPM &&
	    (swtpm_make(&r->other, "other") != 0 || swtpm_start(&r->other) != 0))
		return -1;
	snprintf(conf, sizeof(conf), "require_hardware_identity = 1\ntpm_ca_file = %s\n", r->cas);
	r->hv_args[0] = "--tpm";
	r->hv_args[1] = kind == HV_OTHER_TPM ? r->other.tcti : r->maker.tcti;
	return e2e_up_hv(&r->e, tag, conf, kind == HV_FILE ? NULL : r->hv_args);
}

static void
rig_down(struct rig *r)
{
	e2e_down(&r->e);
	swtpm_stop(&r->maker);
	if (r->other.pid > 0)
		swtpm_stop(&r->other);
}

#define RIG_UP(r, tag, kind)                                                                       \
	do {                                                                                       \
		if (swtpm_skip_reason() != NULL)                                                   \
			SKIP("%s", swtpm_skip_reason());                                           \
		CHECK(rig_up((r), (tag), (kind)) == 0, "swtpm, server and cleave-hv");             \
	} while (0)

/* Runs `cleave-agent enroll` with a fresh token; its exit code, its output into out. */
static int
agent_enroll(struct e2e *e, char *out, size_t cap)
{
	char token[256], args[PATH_MAX * 3];

	if (admin_etoken(e->admin, "tess@example.com", 1, token, sizeof(token)) != 0)
		return -1;
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --ca-cert '%s' --hv-socket '%s'", e->s.url, token,
		 e->s.cacert, e->hv.sock);
	return e2e_agent_cmd(e, args, out, cap);
}

/* Polls the device until its hypervisor's check-in attestation verified and it is compliant. */
static int
wait_attested_compliant(struct e2e *e, const char *path)
{
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
 * Runs the README's auditor block in a directory of its own (ca.pem: the server's CA; tpm-cas.pem:
 * the maker's CAs; build/bin: the binaries) for command cmd_id; its output into out (malloc'd).
 * The exit code of bash.
 */
static int
run_auditor_block(struct rig *r, const char *cmd_id, char **out)
{
	char dir[PATH_MAX + 16], first[PATH_MAX * 3], tok[128], sh[PATH_MAX * 4];
	const char *bin = getenv("CLEAVE_BIN");
	char *block;
	int rc;

	*out = NULL;
	if (auditor_token(&r->e, tok, sizeof(tok)) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "%s.auditor", r->e.agent_dir);
	snprintf(first, sizeof(first), "CMD=%s; DEV=%s; HV='%s'; CLEAVE=%s; AUDITOR_TOKEN=%s\n",
		 cmd_id, r->e.device_id, r->e.hv.sock, r->e.s.url, tok);
	block = readme_block(first);
	if (block == NULL)
		return -1;
	snprintf(sh, sizeof(sh), "%s/auditor.sh", dir);
	snprintf(first, sizeof(first),
		 "mkdir -p '%s/build' && ln -sfn '%s' '%s/build/bin' && cp '%s' '%s/ca.pem' && cp "
		 "'%s' '%s/tpm-cas.pem'",
		 dir, bin && *bin ? bin : "../../build/bin", dir, r->e.s.cacert, dir, r->cas, dir);
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

static void
test_tpm_enroll_wipe_audit(void)
{
	struct rig r;
	char out[4096], path[160], id[64], want[512], *audit = NULL;
	json_t *dev, *hv, *cmd, *rc;
	long long before, after;
	int code;

	RIG_UP(&r, "tpm-e2e", HV_TPM);
	CHECK(e2e_policy(&r.e, "{\"offline\":{\"lock_after_hours\":72}}") == 0, "policy");
	code = agent_enroll(&r.e, out, sizeof(out));
	CHECK(code == 0 && strstr(out, "in its TPM, whose endorsement the server verified") != NULL,
	      "the agent must enroll cleave-hv --tpm: exit %d: %s (see %s)", code, out,
	      r.e.agent_log);
	CHECK(e2e_enroll_id(&r.e) == 0, "the agent's identity names no device");
	snprintf(path, sizeof(path), "/api/v1/devices/%s", r.e.device_id);
	dev = e2e_get(&r.e, path);
	hv = json_object_get(dev, "hypervisor");
	CHECK(strcmp(e2e_str(hv, "identity"), "tpm") == 0 &&
		      strcmp(e2e_str(hv, "endorsement"), "verified") == 0 &&
		      strcmp(e2e_str(hv, "signature_alg"), "ecdsa-p256-sha256") == 0 &&
		      strstr(e2e_str(hv, "endorsement_ca"), "CN=") != NULL,
	      "the device view must say identity tpm, endorsement verified: %s",
	      json_dumps(hv, JSON_COMPACT));
	str_copy(want, sizeof(want), e2e_str(hv, "endorsement_ca"));
	json_decref(dev);

	/* the agent's own check of cleave-hv: a TPM attestation over its nonce, this enrollment's */
	code = e2e_agent_cmd(&r.e, "status --json", out, sizeof(out));
	CHECK(code == 0 && strstr(out, "\"keystore\": \"tpm\"") != NULL &&
		      strstr(out, "\"holds_this_enrollment\": true") != NULL,
	      "cleave-agent status must see its TPM cleave-hv hold the enrollment: %d: %s", code,
	      out);

	/* check-ins: attestations signed in the TPM verify, and the policy shows as applied */
	CHECK(e2e_agent_start(&r.e, NULL) == 0, "agent");
	CHECK(e2e_wait_reported(&r.e, "active", CMD_MS) == 0, "the agent never reported in");
	CHECK(wait_attested_compliant(&r.e, path) == 0,
	      "the TPM-signed check-in attestation must verify and the device be compliant");

	/* lock drops the keys, unlock unseals the root key from the TPM again: both verified */
	for (int k = 0; k < 2; k++) {
		const char *type = k == 0 ? "lock" : "unlock";

		CHECK(e2e_command(&r.e, type, id, sizeof(id)) == 202, "queue the %s", type);
		cmd = e2e_wait_command(&r.e, id, CMD_MS);
		CHECK(cmd != NULL && strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
			      json_is_true(json_object_get(cmd, "verified")),
		      "the %s must be completed and verified: %s (see %s)", type,
		      cmd ? e2e_str(cmd, "unverified_reason") : "not finished", r.e.agent_log);
		json_decref(cmd);
		CHECK(e2e_wait_reported(&r.e, k == 0 ? "locked" : "active", 5000) == 0,
		      "reported state after the %s", type);
	}
	CHECK(e2e_command(&r.e, "wipe", id, sizeof(id)) == 202, "queue the wipe");
	cmd = e2e_wait_command(&r.e, id, CMD_MS);
	CHECK(cmd != NULL && strcmp(e2e_str(cmd, "status"), "completed") == 0 &&
		      json_is_true(json_object_get(cmd, "verified")),
	      "the wipe must be completed and verified: %s (see %s)",
	      cmd ? e2e_str(cmd, "unverified_reason") : "not finished", r.e.agent_log);
	json_decref(cmd);
	snprintf(path, sizeof(path), "/api/v1/commands/%s/receipt", id);
	dev = e2e_get(&r.e, path);
	rc = json_object_get(dev, "receipt");
	before = json_integer_value(json_object_get(rc, "wipe_counter_before"));
	after = json_integer_value(json_object_get(rc, "wipe_counter_after"));
	CHECK(json_integer_value(json_object_get(rc, "version")) == 2 &&
		      json_is_true(json_object_get(rc, "signature_ok")) && before > 0 &&
		      after == before + 1,
	      "a version 2 receipt whose wipe counter moved by one: %s",
	      json_dumps(rc, JSON_COMPACT));
	json_decref(dev);
	CHECK(e2e_wait_reported(&r.e, "wiped", 5000) == 0, "reported state should be wiped");

	/* the README's auditor steps, as printed, with openssl alone */
	code = run_auditor_block(&r, id, &audit);
	{
		char issuer[600];

		snprintf(issuer, sizeof(issuer), "issuer=%s\n", want);
		CHECK(code == 0 && audit != NULL && strstr(audit, "Verified OK\n") != NULL &&
			      hash_pairs(audit) == 2 && has_counters(audit, before, after) &&
			      strstr(audit, issuer) != NULL &&
			      strstr(audit, "ek.pem: OK\n") != NULL,
		      "the README's TPM auditor block exited %d and printed:\n%s", code,
		      audit ? audit : "");
	}
	free(audit);
	rig_down(&r);
}

/* cleave-hv of kind enrolls: refused, exit 3, with the server's reason containing want. */
static void
enroll_refused(enum hv_kind kind, const char *tag, const char *want)
{
	struct rig r;
	char out[4096];
	int code;

	RIG_UP(&r, tag, kind);
	code = agent_enroll(&r.e, out, sizeof(out));
	CHECK(code == 3 && strstr(out, "the server refused the enrollment") != NULL &&
		      strstr(out, want) != NULL,
	      "the enrollment must be refused with the reason (%s): exit %d: %s", want, code, out);
	printf("    %s", out);
	rig_down(&r);
}

static void
test_tpm_file_keystore_refused(void)
{
	enroll_refused(HV_FILE, "tpm-e2e-file", "require_hardware_identity");
}

static void
test_tpm_untrusted_maker_refused(void)
{
	enroll_refused(HV_OTHER_TPM, "tpm-e2e-maker", "certificate");
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"tpm_enroll_wipe_audit", test_tpm_enroll_wipe_audit},
		{"tpm_file_keystore_refused", test_tpm_file_keystore_refused},
		{"tpm_untrusted_maker_refused", test_tpm_untrusted_maker_refused},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

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
#include "swtpmtest.h"
#include "tpm_e2e.h"
#include "util.h"

#define CMD_MS TPME_CMD_MS

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

static void
test_tpm_enroll_wipe_audit(void)
{
	struct rig r;
	char out[4096], id[64], ca[512];
	json_t *cmd;
	long long before, after;
	int code;

	RIG_UP(&r, "tpm-e2e", HV_TPM);
	CHECK(e2e_policy(&r.e, "{\"offline\":{\"lock_after_hours\":72}}") == 0, "policy");
	tpme_check_enrolled(&r.e, ca, sizeof(ca));
	if (t_failed_now)
		return;

	/* the agent's own check of cleave-hv: a TPM attestation over its nonce, this enrollment's */
	code = e2e_agent_cmd(&r.e, "status --json", out, sizeof(out));
	CHECK(code == 0 && strstr(out, "\"keystore\": \"tpm\"") != NULL &&
		      strstr(out, "\"holds_this_enrollment\": true") != NULL,
	      "cleave-agent status must see its TPM cleave-hv hold the enrollment: %d: %s", code,
	      out);

	/* check-ins: attestations signed in the TPM verify, and the policy shows as applied */
	CHECK(e2e_agent_start(&r.e, NULL) == 0, "agent");
	CHECK(e2e_wait_reported(&r.e, "active", CMD_MS) == 0, "the agent never reported in");
	CHECK(tpme_wait_attested_compliant(&r.e) == 0,
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
	/* a wipe from the API, then the README's auditor steps, as printed, with openssl alone */
	tpme_wipe(&r.e, id, sizeof(id), &before, &after);
	if (!t_failed_now)
		tpme_audit(&r.e, r.cas, id, ca, before, after);
	rig_down(&r);
}

/* cleave-hv of kind enrolls: refused, exit 3, with the server's reason containing want. */
static void
enroll_refused(enum hv_kind kind, const char *tag, const char *want)
{
	struct rig r;

	RIG_UP(&r, tag, kind);
	tpme_enroll_refused(&r.e, want);
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

/*
 * The steps of a TPM enrollment end to end, shared by test_tpm_e2e (cleave-hv --tpm on this
 * host's swtpm) and test_arm64_enroll (the arm64 cleave-hv --tpm in the emulated machine, reached
 * through tests/lib/brelay.h): the real cleave-agent enrolls through e->hv.sock with a fresh
 * token; the device view, the wipe and the README's auditor block are checked. The CHECKs inside
 * fail the running case and return from the helper only: callers stop when t_failed_now.
 */
#ifndef CLEAVE_TPM_E2E_H
#define CLEAVE_TPM_E2E_H

#include <stddef.h>

#include "e2e.h"

#define TPME_CMD_MS 30000 /* an order from POST to verified receipt, generous for loaded machines */

/* `cleave-agent enroll` with a fresh enrollment token; its exit code, its output into out. */
int tpme_enroll(struct e2e *e, char *out, size_t cap);
/*
 * The enrollment went through, and the device view says identity tpm, endorsement verified,
 * ECDSA P-256 signatures; its endorsement_ca (the maker's issuing CA) into ca.
 */
void tpme_check_enrolled(struct e2e *e, char *ca, size_t cap);
/* The enrollment is refused: the agent exits 3 with the server's reason, which contains want. */
void tpme_enroll_refused(struct e2e *e, const char *want);
/* Polls the device until its hypervisor's check-in attestation verified and it is compliant. */
int tpme_wait_attested_compliant(struct e2e *e);
/*
 * A wipe ordered through the API and carried by the running agent: completed and verified, a
 * version 2 receipt whose wipe counter moved by one (before, after), the device reported wiped.
 * The command's id into id.
 */
void tpme_wipe(struct e2e *e, char *id, size_t cap, long long *before, long long *after);
/*
 * The README's auditor block of "Hardware identity (TPM)" run as printed, with an auditor token,
 * for command id: openssl verifies the receipt with the hypervisor PEM the API gives, the two
 * hash pairs match, the wipe counter line reads before and after, and the EK certificate (from
 * `cleave-hvctl tpm-identity` on e->hv.sock) is issued by ca and chains to cas (the maker's
 * CAs, as in tpm_ca_file).
 */
void tpme_audit(struct e2e *e, const char *cas, const char *id, const char *ca, long long before,
		long long after);

#endif

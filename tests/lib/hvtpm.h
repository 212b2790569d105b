/*
 * One test case's TPM-backed cleave-hv: a manufactured swtpm of its own (swtpmtest.h), the real
 * cleave-hv --tpm on it (hvproc.h), a bridge connection, and the identity the TPM holds (the
 * AK's SubjectPublicKeyInfo and hv_key, its SHA-256). Shared by the --tpm integration tests.
 */
#ifndef CLEAVE_TEST_HVTPM_H
#define CLEAVE_TEST_HVTPM_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "bridge_client.h"
#include "cleave_abi.h"
#include "hvproc.h"
#include "hvsig.h"
#include "swtpmtest.h"

struct hvtpm {
	struct swtpm tpm;
	struct hvproc hv;
	struct bridge_client c;
	char hvctl[PATH_MAX + 32];  /* cleave-hvctl */
	char ticket[PATH_MAX + 32]; /* cleave-ticket */
	uint8_t spki[HVSIG_SPKI_MAX], hv_key[32];
	size_t spki_len;
};

/* The four parts of TPM_IDENTITY's reply (ABI.md), copied into one buffer. */
struct tpm_id {
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	const uint8_t *part[4]; /* EK certificate, EK public, AK public, AK SPKI */
	size_t len[4];
};

/* TPM_IDENTITY on c, split. 0 or -1. */
int tpm_identity(struct bridge_client *c, struct tpm_id *id);
/*
 * cleave-hv --tpm on tc->tpm (manufactured and started) with an 8 MiB volume, connected, its
 * identity read and handed to hvp_tpm_key. 0 or -1.
 */
int hvtpm_up(struct hvtpm *tc);
/* Closes, stops cleave-hv and swtpm, and removes the TPM's directory unless the case failed. */
void hvtpm_end(struct hvtpm *tc);
/* Runs cmd (a shell line), its stdout into out (NUL-terminated). The exit status, or -1. */
int hvtpm_run(const char *cmd, char *out, size_t cap);

/* swtpm manufactured and started, cleave-hv --tpm on it, its identity. Skips without swtpm. */
#define HVTPM_START(tc, tag)                                                                       \
	do {                                                                                       \
		if (swtpm_skip_reason() != NULL)                                                   \
			SKIP("%s", swtpm_skip_reason());                                           \
		CHECK(swtpm_make(&(tc)->tpm, (tag)) == 0, "manufacture a TPM");                    \
		CHECK(swtpm_start(&(tc)->tpm) == 0, "start it");                                   \
		CHECK(hvtpm_up(tc) == 0, "cleave-hv --tpm did not start (see %s.log)",             \
		      (tc)->hv.dir);                                                               \
	} while (0)

#endif

/*
 * A TPM 2.0 for tests: Debian's swtpm (the TPM 2.0 implementation QEMU's virtual TPMs use),
 * manufactured by swtpm_setup in a directory of the case's own with an endorsement key
 * certificate (RSA 2048 at NV 0x01c00002, and ECC at 0x01c00016) and a platform certificate,
 * both issued by a test manufacturer CA that swtpm_localca makes there (a root and an issuing
 * CA). Started as the test's child on 127.0.0.1 (TPM port and control port), reached through
 * tpm2-tss's "swtpm" TCTI. Nothing system-wide is read or written (/etc/swtpm* are not used).
 */
#ifndef CLEAVE_SWTPMTEST_H
#define CLEAVE_SWTPMTEST_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#define SWTPM_EK_CERT_RSA 0x01c00002u
#define SWTPM_EK_CERT_ECC 0x01c00016u

struct swtpm {
	char dir[PATH_MAX];            /* everything of this TPM; removed when the case ends */
	char state[PATH_MAX + 8];      /* dir/state: the TPM's NV (tpm2-00.permall) */
	char ca_root[PATH_MAX + 48];   /* the manufacturer's root CA certificate (PEM) */
	char ca_issuer[PATH_MAX + 48]; /* the CA that issued the EK certificate (PEM) */
	char log[PATH_MAX + 16];
	char tcti[64];            /* "swtpm:host=127.0.0.1,port=N", for --tpm and TPM2TOOLS_TCTI */
	char sock[PATH_MAX + 16]; /* swtpm_start_qemu: dir/tpm.sock, QEMU's chardev */
	unsigned port, ctrl_port; /* ctrl_port is port + 1, as the TCTI expects */
	pid_t pid;
};

/* Why a TPM cannot be had here (swtpm, swtpm_setup or swtpm_localca missing), or NULL. */
const char *swtpm_skip_reason(void);
/*
 * Manufactures a new TPM in a fresh directory (under $CLEAVE_TEST_OUT or /tmp, removed when the
 * case ends; tag names it):
 * its own CA, the EK certificates, PCR bank sha256. Not started. 0, or -1 with the reason
 * printed (swtpm_setup's log is in dir).
 */
int swtpm_make(struct swtpm *t, const char *tag);
/*
 * The same TPM again in a new directory: a copy of from's state and CA (the copy a thief keeps
 * of a device's files, or a quick second TPM for a case that needs no distinct EK). 0 or -1.
 */
int swtpm_copy(struct swtpm *t, const struct swtpm *from, const char *tag);
/*
 * The manufacturer's CAs as an admin configures them (tpm_ca_file): t's root and issuing CA in
 * one PEM file, t->dir/tpm-cas.pem, whose path goes to out. 0 or -1.
 */
int swtpm_ca_bundle(const struct swtpm *t, char *out, size_t cap);
/* Starts swtpm (startup-clear, as at power-on) and waits (bounded, 10 s) for it. 0 or -1. */
int swtpm_start(struct swtpm *t);
/*
 * Starts swtpm for QEMU instead (tpm-tis-device through `-tpmdev emulator`): its control
 * channel on the Unix socket t->sock, over which QEMU hands it the data channel and powers it
 * on; the guest's kernel sends TPM2_Startup. Waits (bounded, 10 s) for the socket. 0 or -1.
 */
int swtpm_start_qemu(struct swtpm *t);
/* Stops it with SIGTERM (its state is saved); a later swtpm_start powers it on again. */
void swtpm_stop(struct swtpm *t);
/* t's issuing CA's subject as `openssl x509 -nameopt RFC2253` prints it, into out. 0 or -1. */
int swtpm_issuer_subject(const struct swtpm *t, char *out, size_t cap);
/*
 * tpm2-tools' TPM2B_PUBLIC of a P-256 signing key made in t's (started) TPM without
 * `restricted`, into out: its length, or -1 (tpm2-tools' output in t->dir/tools.log).
 */
long swtpm_unrestricted_key(const struct swtpm *t, uint8_t *out, size_t cap);

#endif

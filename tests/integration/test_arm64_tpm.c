/*
 * cleave-hv --tpm on arm64 (issue 13 §3): the emulated arm64 machine (tests/lib/arm64vm.h) gets a
 * TPM 2.0, QEMU's tpm-tis-device backed by a swtpm this test manufactures and starts per boot
 * (tests/lib/swtpmtest.h: its own CA, EK certificates), and a blank raw virtio disk. Inside,
 * tpm_steps (tests/arm64/hv_steps.c under that name, in build/arm64/initramfs-tpm.cpio.gz from
 * `make arm64-tpm`) loads the TIS driver, finds /dev/tpmrm0 and runs the arm64 cleave-hv built
 * with the TPM layer (dynamically linked against Debian's arm64 tpm2-tss) with --tpm
 * device:/dev/tpmrm0: status says keystore tpm, attest gives a version 3 (ECDSA P-256)
 * attestation, tpm-identity the EK certificate and the AK, a signed lock and unlock version 2
 * receipts, pubkey --pem the AK as PEM; then, with a copy of the state directory kept aside, a
 * signed wipe; and cleave-hv started on the kept copy finds its sealed root key dead (the wipe
 * counter moved) and locks itself, its trust state stale, a new unlock ticket refused.
 * Then test_hv_tpm_trust's lease cases, on the wiped live state: cleave-hv killed before the
 * deadline sealed into its root key's policy and started again past it finds the key refused
 * by the TPM's clock and carries out the wipe it was due; a lease ending in 3 s holds with the
 * host clock two hours ahead and locks 1 s past its end on the TPM clock with the host clock an
 * hour back; with a lease for an hour, the state goes to the disk. A second boot on the same
 * swtpm state (a TPM reset, as a phone's reboot) restores it: cleave-hv locks (the lease lapsed
 * with the reset), and a new lease and an unlock ticket open the volume again.
 * This host verifies with the openssl command line: the attestation and the lock, wipe, kept
 * copy's auto-lock, auto-wipe, both auto-locks and the unlocks' receipts against that PEM
 * (altered copies refused), the PEM being the AK that tpm-identity names, the wipe counter
 * moving by one at each wipe, the receipt chain continuing across the reboot, and the EK
 * certificate chaining to the swtpm's manufacturer CA (and refused against another maker's CA).
 * Two boots, 6.1 nVHE.
 */
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "arm64vm.h"
#include "b64.h"
#include "crypto.h"
#include "hvsig.h"
#include "swtpmtest.h"
#include "testlib.h"
#include "wire.h"

#define DISK_BYTES (16 << 20) /* the state disk: cleave-hv's 4 MiB volume and a few files */

/* Creates path as a new sparse file of n bytes; 0 or -1. */
static int
truncate_new(const char *path, off_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	int rc = fd >= 0 && ftruncate(fd, n) == 0 ? 0 : -1;

	if (fd >= 0 && close(fd) != 0)
		rc = -1;
	return rc;
}

/* Runs a shell line quietly; its exit status (0: success). */
static int
sh(const char *cmd)
{
	int rc = system(cmd);

	return rc == 0 ? 0 : -1;
}

static int
write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[PATH_MAX + 64];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	ok = f != NULL && fwrite(p, 1, n, f) == n;
	return (f != NULL && fclose(f) == 0 && ok) ? 0 : -1;
}

/* The base64 text from at (NULL: none) to its line's end, decoded into out; its length or -1. */
static long
b64_line(const char *at, uint8_t *out, size_t cap)
{
	const char *e = at != NULL ? strchr(at, '\n') : NULL;

	return e != NULL ? b64_decode(out, cap, at, (size_t)(e - at)) : -1;
}

/* The base64 value of the first "\nNAME: " line (prefix), decoded; its length or -1. */
static long
field(const char *log, const char *prefix, uint8_t *out, size_t cap)
{
	const char *p = strstr(log, prefix);

	return b64_line(p != NULL ? p + strlen(prefix) : NULL, out, cap);
}

/*
 * openssl dgst -sha256 -verify of the 64-byte r || s after body (n bytes) against dir/ak.pem,
 * and refusal of the same with one body byte changed. 0 when both hold.
 */
static int
openssl_checks(const char *dir, const uint8_t *signed_blob, size_t n)
{
	uint8_t body[RECEIPT_BODY_LEN], der[HVSIG_DER_MAX];
	char cmd[2 * PATH_MAX + 256];
	size_t dl = 0;

	if (n > sizeof(body) || hvsig_ecdsa_der(signed_blob + n, der, sizeof(der), &dl) != 0 ||
	    write_file(dir, "sig", der, dl) != 0 || write_file(dir, "body", signed_blob, n) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl dgst -sha256 -verify ak.pem -signature sig body 2>&1 | "
		 "grep -q 'Verified OK'",
		 dir);
	if (sh(cmd) != 0)
		return -1;
	memcpy(body, signed_blob, n);
	body[100] ^= 1;
	if (write_file(dir, "body", body, n) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && ! openssl dgst -sha256 -verify ak.pem -signature sig body "
		 ">/dev/null 2>&1",
		 dir);
	return sh(cmd);
}

/* The PEM block cleave-hvctl pubkey --pem printed, into dir/ak.pem; 0 or -1. */
static int
save_pem(const char *log, const char *dir)
{
	static const char end_line[] = "-----END PUBLIC KEY-----\n";
	const char *pem = strstr(log, "-----BEGIN PUBLIC KEY-----\n");
	const char *end = pem != NULL ? strstr(pem, end_line) : NULL;

	if (end == NULL)
		return -1;
	return write_file(dir, "ak.pem", pem, (size_t)(end - pem) + strlen(end_line));
}

/*
 * The receipt printed on the line before marker: a version 2 receipt of type, that openssl
 * verifies against dir/ak.pem (and refuses altered); decoded into r, its bytes into raw_out
 * (NULL: not wanted).
 */
static void
check_receipt(const char *log, const char *dir, const char *marker, uint16_t type,
	      struct receipt *r, uint8_t *raw_out)
{
	static uint8_t raw[512];
	char line[1024];
	long n = -1;

	if (line_before(log, marker, line, sizeof(line)) == 0)
		n = b64_decode(raw, sizeof(raw), line, strlen(line));
	CHECK(n == RECEIPT_LEN && raw[8] == RECEIPT_VERSION_ALG &&
		      receipt_decode(raw, (size_t)n, r) == 0 && r->type == type &&
		      r->sig_alg == WIRE_SIG_ECDSA_P256,
	      "no version 2 receipt of type 0x%x before \"%s\" (%ld bytes)", type, marker, n);
	CHECK(openssl_checks(dir, raw, RECEIPT_BODY_LEN) == 0,
	      "openssl did not verify the receipt before \"%s\" with the PEM (or accepted an "
	      "altered one)",
	      marker);
	if (raw_out != NULL)
		memcpy(raw_out, raw, RECEIPT_LEN);
}

/*
 * On this host, with openssl: the PEM is the AK tpm-identity named; the attestation (v3, over
 * tpm_steps' nonce, naming that AK) and the lock, wipe and kept copy's auto-lock receipts (v2)
 * verify against it; the wipe's reports the wipe counter moving by one.
 */
static void
host_check_signed(const char *log, const char *dir, struct receipt *wipe)
{
	static uint8_t att[512], spki[256];
	char cmd[2 * PATH_MAX];
	struct receipt r;
	long n, spki_len;

	CHECK(save_pem(log, dir) == 0, "no PEM from cleave-hvctl pubkey --pem");
	spki_len = field(log, "\nak_spki: ", spki, sizeof(spki));
	CHECK(spki_len > 0 && write_file(dir, "ak.der", spki, (size_t)spki_len) == 0,
	      "no ak_spki line");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl pkey -pubin -in ak.pem -outform DER -out pem.der && "
		 "cmp -s pem.der ak.der && openssl pkey -pubin -in ak.pem -noout -text | "
		 "grep -q P-256",
		 dir);
	CHECK(sh(cmd) == 0, "the PEM is not the TPM identity's P-256 AK");

	/* The attestation's line starts with the magic and version in base64. */
	n = strstr(log, "\nQ0xWQVRUUzED") != NULL
		    ? b64_line(strstr(log, "\nQ0xWQVRUUzED") + 1, att, sizeof(att))
		    : -1;
	CHECK(n == ATTEST_LEN && att[8] == ATTEST_VERSION_ALG,
	      "no version 3 attestation from cleave-hvctl attest (%ld bytes)", n);
	{
		struct attestation a;
		uint8_t nonce[32], hv_key[32];

		for (int i = 0; i < 32; i++)
			nonce[i] = (uint8_t)i; /* tpm_steps' NONCE_HEX */
		crypto_sha256(spki, (size_t)spki_len, hv_key);
		CHECK(attest_decode(att, (size_t)n, &a) == 0 && a.sig_alg == WIRE_SIG_ECDSA_P256 &&
			      memcmp(a.nonce, nonce, 32) == 0 && memcmp(a.hv_key, hv_key, 32) == 0,
		      "the attestation is not ECDSA P-256 over our nonce by the AK (hv_key = "
		      "SHA-256 of ak_spki)");
	}
	CHECK(openssl_checks(dir, att, ATTEST_BODY_LEN) == 0,
	      "openssl did not verify the attestation with the PEM (or accepted an altered one)");

	/* check_receipt's CHECKs return from it only: stop at its first failure here. */
	check_receipt(log, dir, "receipt 1: lock done", TICKET_LOCK, &r, NULL);
	if (t_failed_now)
		return;
	check_receipt(log, dir, "receipt 3: wipe done", TICKET_WIPE, wipe, NULL);
	if (t_failed_now)
		return;
	CHECK(wipe->wipe_counter_before > 0 &&
		      wipe->wipe_counter_after == wipe->wipe_counter_before + 1,
	      "the wipe receipt's wipe counter did not move by one (%llu -> %llu)",
	      (unsigned long long)wipe->wipe_counter_before,
	      (unsigned long long)wipe->wipe_counter_after);
	/* The kept copy's last pending receipt: it locked itself, still signed by the AK. */
	check_receipt(log, dir, "\nhv-step: receipts-kept exit 0", RECEIPT_AUTO_LOCK, &r, NULL);
}

/*
 * The lease on the TPM clock, on this host: the wipe due while cleave-hv was killed was done at
 * start (its receipt v2, the wipe counter one past the signed wipe's); the lock came 1 s past
 * the lease on the TPM clock although cleave-hv's host clock was an hour back (the auto-lock
 * receipt, and the time tpm_steps measured); after the reboot (the TPM reset) the auto-lock's
 * receipt follows the last receipt of the first boot in the chain (the state crossed the
 * reboot), and the unlock after a new lease is done.
 */
static void
host_check_lease(const char *log, const char *log2, const char *dir, const struct receipt *wipe)
{
	static uint8_t prep[RECEIPT_LEN];
	uint8_t prep_hash[32];
	struct receipt r;
	const char *at = strstr(log, "hv-step: locked after ");
	double locked_s = -1;

	check_receipt(log, dir, "\nhv-step: receipts-deadline exit 0", RECEIPT_AUTO_WIPE, &r, NULL);
	if (t_failed_now)
		return;
	CHECK(r.result == 0 && r.checks_run == r.checks_passed && r.epoch_after > r.epoch_before &&
		      r.wipe_counter_before == wipe->wipe_counter_after &&
		      r.wipe_counter_after == r.wipe_counter_before + 1,
	      "the auto-wipe's receipt: result %d, checks 0x%x of 0x%x, wipe counter %llu -> "
	      "%llu (the signed wipe left it at %llu)",
	      r.result, r.checks_passed, r.checks_run, (unsigned long long)r.wipe_counter_before,
	      (unsigned long long)r.wipe_counter_after,
	      (unsigned long long)wipe->wipe_counter_after);
	check_receipt(log, dir, "\nhv-step: receipts-clock exit 0", RECEIPT_AUTO_LOCK, &r, NULL);
	if (t_failed_now)
		return;
	CHECK(at != NULL && sscanf(at, "hv-step: locked after %lf s", &locked_s) == 1 &&
		      locked_s >= 2.8 && locked_s <= 20,
	      "locked %.2f s after the lease ticket was made, not 3-4 s (a lease ending 2-3 s "
	      "after it, plus the 1 s the policy allows; up to 20 s on a loaded machine)",
	      locked_s);
	check_receipt(log, dir, "receipt 6: unlock done", TICKET_UNLOCK, &r, prep);
	if (t_failed_now)
		return;
	crypto_sha256(prep, RECEIPT_LEN, prep_hash);
	check_receipt(log2, dir, "\nhv-step: receipts-reset exit 0", RECEIPT_AUTO_LOCK, &r, NULL);
	if (t_failed_now)
		return;
	CHECK(r.seq == 7 && memcmp(r.prev_hash, prep_hash, 32) == 0,
	      "the auto-lock after the reboot does not follow the first boot's last receipt");
	check_receipt(log2, dir, "receipt 8: unlock done", TICKET_UNLOCK, &r, NULL);
	if (t_failed_now)
		return;
	CHECK(r.result == 0, "the unlock after the TPM reset failed (%d)", r.result);
	printf("    host: auto-wipe (wipe counter %llu -> %llu), auto-lock %.2f s after the lease, "
	       "auto-lock after the TPM reset and the unlock after it verified with openssl\n",
	       (unsigned long long)wipe->wipe_counter_after,
	       (unsigned long long)wipe->wipe_counter_after + 1, locked_s);
}

/* The EK certificate tpm-identity gave chains (openssl verify) to the swtpm's CA, not another's. */
static void
host_check_ek(const char *log, const struct swtpm *t, const char *dir)
{
	static uint8_t ek[4096];
	char cmd[4 * PATH_MAX];
	long n;

	n = field(log, "\nek_cert: ", ek, sizeof(ek));
	CHECK(n > 0 && write_file(dir, "ek.der", ek, (size_t)n) == 0, "no ek_cert line");
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl x509 -inform DER -in ek.der -out ek.pem && "
		 "openssl verify -CAfile '%s' -untrusted '%s' ek.pem >/dev/null 2>&1",
		 dir, t->ca_root, t->ca_issuer);
	CHECK(sh(cmd) == 0, "the EK certificate does not chain to the swtpm's manufacturer CA");
	/* Another maker's CA (a self-signed one made here) must not do. */
	snprintf(
		cmd, sizeof(cmd),
		"cd '%s' && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-keyout other.key -out other.pem -subj /CN=other-maker -days 1 >/dev/null 2>&1 && "
		"! openssl verify -CAfile other.pem ek.pem >/dev/null 2>&1",
		dir);
	CHECK(sh(cmd) == 0, "the EK certificate verified against another maker's CA");
}

/* What tpm_steps must print, in order (hv_steps.c, run as tpm_steps). */
static const char *const want[] = {
	"hv-step: module /lib/tpm_tis_core.ko: loaded",
	"tpm_tis c000000.tpm_tis: 2.0 TPM", /* the kernel's, while tpm_tis.ko loads */
	"hv-step: module /lib/tpm_tis.ko: loaded",
	"hv-step: /dev/tpmrm0 present",
	"keystore device:/dev/tpmrm0",
	"hv-step: cleave-hv listening",
	"\nkeystore: tpm\n",
	"hv-step: status exit 0",
	"\nQ0xWQVRUUzED", /* base64 of "CLVATTS1" and version 3 */
	"hv-step: attest exit 0",
	"\nek_cert: ",
	"\nak_spki: ",
	"hv-step: tpm-identity exit 0",
	"hv-step: pin exit 0",
	"hv-step: hv-key exit 0",
	"hv-step: lock-ticket exit 0",
	"\nreceipt 1: lock done, state locked",
	"hv-step: lock exit 0",
	"\nreceipt 2: unlock done, state active",
	"hv-step: unlock exit 0",
	"-----BEGIN PUBLIC KEY-----",
	"hv-step: pubkey exit 0",
	"hv-step: cleave-hv exit 0",
	"hv-step: /run/hv copied to /run/kept: ok",
	"corporate half wiped by cryptographic erase (verified)",
	"\nreceipt 3: wipe done, state active, key epoch 1 -> 2",
	"hv-step: wipe exit 0",
	"state: active\nabi: 1.1\nkey epoch: 2\n",
	"hv-step: status-wiped exit 0",
	"hv-step: cleave-hv exit 0",
	/* cleave-hv on the kept copy: the wipe counter moved, its root key is dead */
	"cannot be unsealed",
	"state: locked\nabi: 1.1\nkey epoch: 1\n",
	"trust state: stale",
	"hv-step: status-kept exit 0",
	"hv-step: receipts-kept exit 0",
	/* and a new ticket is refused: the trust state is older than the TPM's counter */
	"hv-step: unlock-kept-ticket exit 0",
	"unlock refused: the trust state is an older copy",
	"cleave-hvctl: denied",
	"hv-step: unlock-kept exit 1",
	"hv-step: cleave-hv exit 0",
	/* the wiped live state back: killed, and started again past its sealed deadline */
	"hv-step: the wiped live state back in /run/hv",
	"hv-step: pin-live exit 0",
	"policy v1: lock after 0 s offline, wipe after 3 s",
	"hv-step: lease-deadline exit 0",
	"hv-step: cleave-hv exit 137 (killed before its sealed deadline)",
	"PolicyCounterTimer: the TPM clock is past the sealed deadline",
	"its root key cannot be unsealed; it stays closed",
	"past the lease: wiping the corporate half as the policy requires",
	"corporate half wiped by cryptographic erase (verified)",
	"hv-step: cleave-hv listening",
	"state: active\nabi: 1.1\nkey epoch: 3\n",
	"hv-step: status-deadline exit 0",
	"hv-step: receipts-deadline exit 0",
	/* the TPM clock decides the lease: the host clock 2 h ahead, then 1 h back */
	"hv-step: pin-clock exit 0",
	"policy v1: lock after 1 s offline, wipe after 3600 s",
	"hv-step: lease-clock exit 0",
	"hv-step: starting cleave-hv with CLEAVE_HV_CLOCK_SKEW_S=7200",
	"hv-step: cleave-hv listening",
	"state: active\nabi: 1.1\nkey epoch: 3\n",
	"hv-step: status-ahead exit 0",
	"hv-step: starting cleave-hv with CLEAVE_HV_CLOCK_SKEW_S=-3600",
	"s past the lease: locking the corporate half",
	"hv-step: locked after ",
	"state: locked\nabi: 1.1\nkey epoch: 3\n",
	"hv-step: status-behind exit 0",
	"hv-step: receipts-clock exit 0",
	/* before the reboot: a lease for an hour and the corporate half unlocked, then saved */
	"hv-step: lease-prep exit 0",
	"\nreceipt 6: unlock done, state active",
	"hv-step: unlock-prep exit 0",
	"state: active\nabi: 1.1\nkey epoch: 3\n",
	"hv-step: status-prep exit 0",
	"hv-step: cleave-hv exit 0",
	"hv-step: state saved to /dev/vda: ok",
	"tpm-steps: result: ok\n",
	"cleave-init: /bin/tpm_steps exit 0",
};

/* The second boot (QEMU resets the swtpm, the kernel sends TPM2_Startup(CLEAR)): a TPM reset. */
static const char *const want_reset[] = {
	"hv-step: /dev/tpmrm0 present",
	"hv-step: /dev/vda present",
	"hv-step: state restored from /dev/vda: ok",
	"the TPM was reset since the lease",
	"state: locked\nabi: 1.1\nkey epoch: 3\n",
	"hv-step: status-reset exit 0",
	"hv-step: receipts-reset exit 0",
	"hv-step: hv-key exit 0",
	"hv-step: lease-reset exit 0",
	"\nreceipt 8: unlock done, state active",
	"hv-step: unlock-reset exit 0",
	"state: active\nabi: 1.1\nkey epoch: 3\n",
	"hv-step: status-unlocked exit 0",
	"hv-step: cleave-hv exit 0",
	"tpm-steps: result: ok\n",
	"cleave-init: /bin/tpm_steps exit 0",
};

/*
 * Boots the 6.1 nVHE machine on the TPM image with qemu_args (the TPM and the disk) and checks
 * that its console has want[n] in order.
 */
static void
tpm_boot(struct boot *b, const char *tag, const char *const *qemu_args, const char *const *want_of,
	 size_t n)
{
	memset(b, 0, sizeof(*b));
	b->kernel = "6.1", b->cpu = "cortex-a57", b->extra = "";
	b->image = "initramfs-tpm.cpio.gz", b->progs = "/bin/tpm_steps", b->qemu_args = qemu_args;
	boot_checked(b, tag, "Hyp mode initialized successfully");
	if (t_failed_now)
		return;
	const char *miss = missing_in_order(b->log, want_of, n);
	CHECK(miss == NULL, "the %s console lacks (in order) \"%s\"", tag, miss);
	CHECK(strstr(b->log, "stopping the VM") == NULL, "the corporate VM stopped on a fault");
	/* a wipe at start (past the deadline) must not make the main loop start the VM twice */
	CHECK(strstr(b->log, "cannot start the corporate VM") == NULL,
	      "cleave-hv could not start its corporate VM");
}

/* What this host verifies of both boots' consoles (the file comment), in t's directory. */
static void
host_checks(const char *log, const char *log2, const struct swtpm *t)
{
	char dir[PATH_MAX], cmd[PATH_MAX + 16];
	struct receipt wipe;

	snprintf(dir, sizeof(dir), "%s/host", t->dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	CHECK(sh(cmd) == 0, "mkdir %s", dir);
	host_check_signed(log, dir, &wipe);
	if (!t_failed_now)
		host_check_ek(log, t, dir);
	if (!t_failed_now)
		host_check_lease(log, log2, dir, &wipe);
	if (!t_failed_now)
		printf("    host: attestation v3, lock, wipe and auto-lock receipts v2 verified "
		       "with openssl against the AK; EK certificate chains to the swtpm's CA\n");
}

static void
test_arm64_tpm_61_nvhe(void)
{
	static struct boot b, b2;
	static struct swtpm t;
	char path[PATH_MAX], chardev[PATH_MAX + 48], drive[PATH_MAX + 64];
	const char *why = swtpm_skip_reason();

	if (why != NULL)
		SKIP("%s", why);
	if (qemu_path[0] != '\0') { /* without QEMU the boot says why it skips */
		int broken;

		why = image_missing("initramfs-tpm.cpio.gz", "tpmroot", "arm64-tpm", &broken);
		CHECK(!broken, "%s", why);
		if (why != NULL)
			SKIP("%s", why);
	}
	CHECK(swtpm_make(&t, "arm64") == 0, "swtpm_setup");
	/* The disk that carries cleave-hv's state directory to the second boot: blank, sparse. */
	snprintf(path, sizeof(path), "%s/state-disk.img", t.dir);
	CHECK(truncate_new(path, DISK_BYTES) == 0, "create %s", path);
	snprintf(drive, sizeof(drive), "file=%s,format=raw,if=none,id=statedisk", path);
	CHECK(swtpm_start_qemu(&t) == 0, "swtpm for QEMU");
	snprintf(chardev, sizeof(chardev), "socket,id=chrtpm,path=%s", t.sock);
	const char *qemu_args[] = {"-chardev", chardev,
				   "-tpmdev",  "emulator,id=tpm0,chardev=chrtpm",
				   "-device",  "tpm-tis-device,tpmdev=tpm0",
				   "-drive",   drive,
				   "-device",  "virtio-blk-device,drive=statedisk",
				   NULL};
	tpm_boot(&b, "tpm-61-nvhe", qemu_args, want, sizeof(want) / sizeof(want[0]));
	if (t_failed_now)
		return;
	/*
	 * The phone reboots. swtpm ended with QEMU's connection (its NV state saved; the kernel
	 * sent TPM2_Shutdown at power-off): the same TPM powered on again, initialised by QEMU at
	 * the machine's start and started by the kernel with TPM2_Startup(CLEAR), a TPM reset.
	 */
	swtpm_stop(&t);
	CHECK(swtpm_start_qemu(&t) == 0, "swtpm for QEMU, again");
	tpm_boot(&b2, "tpm-61-nvhe-reset", qemu_args, want_reset,
		 sizeof(want_reset) / sizeof(want_reset[0]));
	swtpm_stop(&t);
	if (!t_failed_now)
		host_checks(b.log, b2.log, &t);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"tpm_61_nvhe", test_arm64_tpm_61_nvhe},
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	arm64vm_init();
	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

/*
 * cleave-hv --tpm on arm64 (issue 13 §3): the emulated arm64 machine (tests/lib/arm64vm.h) gets a
 * TPM 2.0, QEMU's tpm-tis-device backed by a swtpm this test manufactures and starts per boot
 * (tests/lib/swtpmtest.h: its own CA, EK certificates). Inside, tpm_steps (tests/arm64/hv_steps.c
 * under that name, in build/arm64/initramfs-tpm.cpio.gz from `make arm64-tpm`) loads the TIS
 * driver, finds /dev/tpmrm0 and runs the arm64 cleave-hv built with the TPM layer (dynamically
 * linked against Debian's arm64 tpm2-tss) with --tpm device:/dev/tpmrm0: status says keystore
 * tpm, attest gives a version 3 (ECDSA P-256) attestation, tpm-identity the EK certificate and
 * the AK, a signed lock and unlock version 2 receipts, pubkey --pem the AK as PEM; then, with a
 * copy of the state directory kept aside, a signed wipe; and cleave-hv started on the kept copy
 * finds its sealed root key dead (the wipe counter moved) and locks itself, its trust state
 * stale, a new unlock ticket refused. This host verifies with the openssl command line: the attestation and the lock, wipe
 * and auto-lock receipts against that PEM (altered copies refused), the PEM being the AK that
 * tpm-identity names, the wipe counter moving by one, and the EK certificate chaining to the
 * swtpm's manufacturer CA (and refused against another maker's CA). One boot, 6.1 nVHE.
 */
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
 * verifies against dir/ak.pem (and refuses altered); decoded into r.
 */
static void
check_receipt(const char *log, const char *dir, const char *marker, uint16_t type,
	      struct receipt *r)
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
}

/*
 * On this host, with openssl: the PEM is the AK tpm-identity named; the attestation (v3, over
 * tpm_steps' nonce, naming that AK) and the lock, wipe and kept copy's auto-lock receipts (v2)
 * verify against it; the wipe's reports the wipe counter moving by one.
 */
static void
host_check_signed(const char *log, const char *dir)
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
	check_receipt(log, dir, "receipt 1: lock done", TICKET_LOCK, &r);
	if (t_failed_now)
		return;
	check_receipt(log, dir, "receipt 3: wipe done", TICKET_WIPE, &r);
	if (t_failed_now)
		return;
	CHECK(r.wipe_counter_before > 0 && r.wipe_counter_after == r.wipe_counter_before + 1,
	      "the wipe receipt's wipe counter did not move by one (%llu -> %llu)",
	      (unsigned long long)r.wipe_counter_before, (unsigned long long)r.wipe_counter_after);
	/* The kept copy's last pending receipt: it locked itself, still signed by the AK. */
	check_receipt(log, dir, "\nhv-step: receipts-kept exit 0", RECEIPT_AUTO_LOCK, &r);
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
	"tpm-steps: result: ok\n",
	"cleave-init: /bin/tpm_steps exit 0",
};

static void
test_arm64_tpm_61_nvhe(void)
{
	static struct boot b;
	static struct swtpm t;
	char path[PATH_MAX], chardev[PATH_MAX + 48], dir[PATH_MAX];
	const char *why = swtpm_skip_reason();

	if (why != NULL)
		SKIP("%s", why);
	snprintf(path, sizeof(path), "%s/initramfs-tpm.cpio.gz", arm64_dir);
	if (qemu_path[0] != '\0' && access(path, R_OK) != 0) {
		CHECK(!fetched("tpmroot"),
		      "no %s although the arm64 tpm2-tss was fetched: `make arm64-tpm` failed",
		      path);
		SKIP("no %s: `make arm64-tpm` builds it (fetches Debian's arm64 tpm2-tss and the "
		     "6.1 kernel's headers and source for tpm_tis.ko with apt: network)",
		     path);
	}
	CHECK(swtpm_make(&t, "arm64") == 0, "swtpm_setup");
	CHECK(swtpm_start_qemu(&t) == 0, "swtpm for QEMU");
	snprintf(chardev, sizeof(chardev), "socket,id=chrtpm,path=%s", t.sock);
	const char *qemu_args[] = {"-chardev", chardev,
				   "-tpmdev",  "emulator,id=tpm0,chardev=chrtpm",
				   "-device",  "tpm-tis-device,tpmdev=tpm0",
				   NULL};
	memset(&b, 0, sizeof(b));
	b.kernel = "6.1", b.cpu = "cortex-a57", b.extra = "";
	b.image = "initramfs-tpm.cpio.gz", b.progs = "/bin/tpm_steps", b.qemu_args = qemu_args;
	boot_checked(&b, "tpm-61-nvhe", "Hyp mode initialized successfully");
	swtpm_stop(&t);
	const char *miss = missing_in_order(b.log, want, sizeof(want) / sizeof(want[0]));
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
	CHECK(strstr(b.log, "stopping the VM") == NULL, "the corporate VM stopped on a fault");
	snprintf(dir, sizeof(dir), "%s/host", t.dir);
	snprintf(path, sizeof(path), "mkdir -p '%s'", dir);
	CHECK(sh(path) == 0, "mkdir %s", dir);
	host_check_signed(b.log, dir);
	if (!t_failed_now)
		host_check_ek(b.log, &t, dir);
	if (!t_failed_now)
		printf("    host: attestation v3, lock, wipe and auto-lock receipts v2 verified "
		       "with "
		       "openssl against the AK; EK certificate chains to the swtpm's CA\n");
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

/*
 * Enrollment against the server on arm64 (issue 13 §3): the arm64 cleave-hv --tpm in the
 * emulated machine (tests/lib/arm64vm.h), on QEMU's tpm-tis-device backed by a swtpm this test
 * manufactures, enrolls with the real cleave-server through the real x86 cleave-agent, nothing
 * played by the test. The agent reaches it through a bridge socket on this host
 * (tests/lib/brelay.h) relayed over QEMU's virtio-serial port to tests/arm64/enroll_relay.c in
 * the machine, which holds the connections to cleave-hv (the bridge's messages are
 * little-endian and the same on both architectures; only the relay frames them).
 *
 * One boot, 6.1 nVHE: first a server whose tpm_ca_file names another maker's CAs refuses the
 * enrollment with the reason (the EK certificate does not chain: no endorsement); then a
 * server under require_hardware_identity with tpm_ca_file = this swtpm's maker's CAs: the agent
 * enrolls (TPM_IDENTITY, the credential, TPM_ACTIVATE and the quote, all through the relay), the
 * device view says identity tpm, endorsement verified, ECDSA P-256; `cleave-agent status` sees
 * the arm64 cleave-hv hold the enrollment; the running agent's check-in attestations verify; a
 * wipe ordered through the API comes back verified with a version 2 receipt whose wipe counter
 * moved by one; and the README's auditor block, run as printed, verifies that receipt with
 * openssl and the device's P-256 key, and the EK certificate (fetched from the arm64 cleave-hv by
 * the x86 cleave-hvctl through the relay) against the maker's CAs.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "arm64vm.h"
#include "bridge_client.h"
#include "bridge_msg.h"
#include "brelay.h"
#include "e2e.h"
#include "swtpmtest.h"
#include "tpm_e2e.h"

#define READY_S 120 /* the machine boots, loads its drivers and starts cleave-hv within this */

/* Everything the case starts, so that it can be stopped whatever step failed. */
struct rig {
	struct boot b;
	struct swtpm tpm, other; /* the machine's TPM; another maker (only its CA is used) */
	struct brelay relay;
	struct e2e e;
	int e_up;
	char cas[PATH_MAX + 16], other_cas[PATH_MAX + 16];
};

/* What enroll_relay (and cleave-hv, init) must print, in order. */
static const char *const want[] = {
	"enroll-relay: module virtio_console: loaded",
	"enroll-relay: module tpm_tis: loaded",
	"enroll-relay: port cleave.bridge present",
	"enroll-relay: /dev/tpmrm0 present",
	"keystore device:/dev/tpmrm0",
	"enroll-relay: ready",
	"corporate half wiped by cryptographic erase (verified)",
	" connections to cleave-hv, ",
	"enroll-relay: cleave-hv exit 0",
	"enroll-relay: result: ok\n",
	"cleave-init: /bin/enroll_relay exit 0",
};

/* A server trusting cas, as the only rig up (r->e), the agent given the relay's socket. */
static int
server_up(struct rig *r, const char *tag, const char *cas)
{
	char conf[PATH_MAX + 128];

	snprintf(conf, sizeof(conf), "require_hardware_identity = 1\ntpm_ca_file = %s\n", cas);
	r->e_up = e2e_up_server(&r->e, tag, conf, r->relay.sock) == 0;
	return r->e_up ? 0 : -1;
}

static void
server_down(struct rig *r)
{
	if (r->e_up)
		e2e_down(&r->e);
	r->e_up = 0;
}

/* Boots the machine with its TPM and the virtio-serial port, and the relay to it. */
static void
machine_up(struct rig *r)
{
	static char tpm_chr[PATH_MAX + 48], link_chr[PATH_MAX + 64];
	static const char *args[13];
	const char *const a[] = {"-chardev", tpm_chr,
				 "-tpmdev",  "emulator,id=tpm0,chardev=chrtpm",
				 "-device",  "tpm-tis-device,tpmdev=tpm0",
				 "-device",  "virtio-serial-device",
				 "-chardev", link_chr,
				 "-device",  "virtserialport,chardev=br,name=cleave.bridge",
				 NULL};

	CHECK(swtpm_make(&r->tpm, "arm64") == 0 && swtpm_start_qemu(&r->tpm) == 0 &&
		      swtpm_ca_bundle(&r->tpm, r->cas, sizeof(r->cas)) == 0,
	      "swtpm for QEMU");
	snprintf(r->relay.sock, sizeof(r->relay.sock), "%s/bridge.sock", r->tpm.dir);
	snprintf(r->relay.link, sizeof(r->relay.link), "%s/link.sock", r->tpm.dir);
	snprintf(tpm_chr, sizeof(tpm_chr), "socket,id=chrtpm,path=%s", r->tpm.sock);
	snprintf(link_chr, sizeof(link_chr), "socket,id=br,path=%s,server=on,wait=off",
		 r->relay.link);
	memcpy(args, a, sizeof(a));
	r->b.kernel = "6.1", r->b.cpu = "cortex-a57", r->b.extra = "", r->b.limit_s = 240;
	r->b.image = "initramfs-tpm.cpio.gz", r->b.progs = "/bin/enroll_relay",
	r->b.qemu_args = args;
	CHECK(boot_start(&r->b, "enroll-61-nvhe") == 0, "could not start %s", qemu_path);
	/* another maker, while the machine boots: only its CAs are used */
	CHECK(swtpm_make(&r->other, "other-maker") == 0 &&
		      swtpm_ca_bundle(&r->other, r->other_cas, sizeof(r->other_cas)) == 0,
	      "another maker's swtpm");
	CHECK(brelay_start(&r->relay) == 0, "the host's bridge relay");
	for (double t0 = now_s(); !boot_poll(&r->b) && now_s() - t0 < READY_S;) {
		if (strstr(r->b.log, "enroll-relay: ready") != NULL)
			return;
		usleep(100 * 1000);
	}
	CHECK(0, "the machine's relay never said ready (QEMU %s)",
	      r->b.pid == 0 ? "ended" : "still running");
}

/*
 * Through the relay, a call whose client gave up (its request sent, the connection closed at
 * once) leaves no reply for the next client, and two connections open at once each get their
 * own answers: what a plain byte stream with virtio-serial's attach signal could not promise.
 */
static void
relay_keeps_connections_apart(const char *sock)
{
	struct clv_msg_hdr h = {.abi_major = CLV_ABI_MAJOR,
				.kind = CLV_MSG_REQUEST,
				.fid = CLV_FN_STATUS,
				.request_id = 1};
	struct bridge_client a, b;
	uint8_t msg[CLV_MSG_HDR_LEN], out[64];
	long len = clv_msg_encode(&h, NULL, msg, sizeof(msg));
	size_t n = 0, m = 0;
	int ra, rb;

	CHECK(len > 0 && bridge_connect(&a, sock, 10000) == 0, "connect to the relay");
	CHECK(send(a.fd, msg, (size_t)len, 0) == len, "send a STATUS request");
	bridge_close(&a);
	/* the next client asks something else with the same request id: its own answer only */
	CHECK(bridge_connect(&b, sock, 10000) == 0, "connect to the relay again");
	rb = bridge_call(&b, CLV_FN_COUNTERS, NULL, 0, out, sizeof(out), &n);
	CHECK(rb == CLV_OK && n == 64, "COUNTERS after an abandoned STATUS: %d (%s), %zu bytes", rb,
	      bridge_strerror(rb), n);
	CHECK(bridge_connect(&a, sock, 10000) == 0, "a second connection beside the first");
	ra = bridge_call(&a, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &n);
	rb = bridge_call(&b, CLV_FN_COUNTERS, NULL, 0, out, sizeof(out), &m);
	bridge_close(&a);
	bridge_close(&b);
	CHECK(ra == CLV_OK && n == 64 && rb == CLV_OK && m == 64,
	      "two connections at once: STATUS %d, COUNTERS %d", ra, rb);
}

/* The host's side: the refusal, then the enrollment, the wipe and the auditor's checks. */
static void
enroll_steps(struct rig *r)
{
	char out[4096], id[64], ca[512];
	long long before, after;
	int code;

	/* the endorsement cannot be verified against a maker the server does not trust */
	CHECK(server_up(r, "arm64-enroll-other", r->other_cas) == 0, "server (other maker)");
	tpme_enroll_refused(&r->e, "certificate");
	server_down(r);
	if (t_failed_now)
		return;

	CHECK(server_up(r, "arm64-enroll", r->cas) == 0, "server");
	/* an offline policy, so that compliance below includes the policy reaching cleave-hv */
	CHECK(e2e_policy(&r->e, "{\"offline\":{\"lock_after_hours\":72}}") == 0, "policy");
	tpme_check_enrolled(&r->e, ca, sizeof(ca));
	if (t_failed_now)
		return;
	code = e2e_agent_cmd(&r->e, "status --json", out, sizeof(out));
	CHECK(code == 0 && strstr(out, "\"keystore\": \"tpm\"") != NULL &&
		      strstr(out, "\"holds_this_enrollment\": true") != NULL,
	      "cleave-agent status must see the arm64 cleave-hv hold the enrollment: %d: %s", code,
	      out);
	CHECK(e2e_agent_start(&r->e, NULL) == 0, "agent");
	CHECK(e2e_wait_reported(&r->e, "active", TPME_CMD_MS) == 0, "the agent never reported in");
	CHECK(tpme_wait_attested_compliant(&r->e) == 0,
	      "the check-in attestation signed in the machine's TPM must verify");
	tpme_wipe(&r->e, id, sizeof(id), &before, &after);
	if (!t_failed_now)
		tpme_audit(&r->e, r->cas, id, ca, before, after);
	if (!t_failed_now)
		relay_keeps_connections_apart(r->relay.sock);
}

static void
test_arm64_enroll_61_nvhe(void)
{
	static struct rig r;
	const char *miss, *why;
	double t0 = now_s();
	int rc, broken;

	memset(&r, 0, sizeof(r));
	r.b.kernel = "6.1";
	why = swtpm_skip_reason() ? swtpm_skip_reason() : boot_skip_reason(&r.b);
	if (why != NULL)
		SKIP("%s", why);
	why = image_missing("initramfs-tpm.cpio.gz", "tpmroot", "arm64-tpm", &broken);
	CHECK(!broken, "%s", why);
	if (why != NULL)
		SKIP("%s", why);
	machine_up(&r);
	if (!t_failed_now)
		enroll_steps(&r);
	server_down(&r);
	if (r.relay.pid <= 0) /* no relay to send the stop frame: QEMU is killed at once */
		r.b.limit_s = 1;
	/* the stop frame: the machine stops cleave-hv, reports and powers off */
	rc = brelay_stop(&r.relay);
	boot_finish(&r.b);
	swtpm_stop(&r.tpm);
	printf("    time: %.1f s for the whole case\n", now_s() - t0);
	if (t_failed_now) {
		print_console(&r.b);
		return;
	}
	CHECK(rc == 0, "the host's relay ended with %d (2: the link to the machine broke)", rc);
	boot_end_checked(&r.b, "Hyp mode initialized successfully");
	if (t_failed_now)
		return;
	miss = missing_in_order(r.b.log, want, sizeof(want) / sizeof(want[0]));
	CHECK(miss == NULL, "console lacks (in order) \"%s\"", miss);
	CHECK(strstr(r.b.log, "stopping the VM") == NULL, "the corporate VM stopped on a fault");
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"enroll_61_nvhe", test_arm64_enroll_61_nvhe},
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	arm64vm_init();
	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

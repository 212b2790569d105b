/*
 * Integration tests of the cleave-hv process through its bridge socket, as the agent uses it:
 * status, attestations signed by the hypervisor's identity key over our nonce, pinning the
 * server key, and tickets (valid, forged, replayed, for another device) for the calls that need
 * no VM. State survives kill -9. Runs the real binary; needs no KVM.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge_client.h"
#include "vmm.h"
#include "volume.h"
#include "bridge_msg.h"
#include "testlib.h"
#include "util.h"

struct hvproc {
	char dir[PATH_MAX];
	char sock[PATH_MAX + 16];
	char guest[PATH_MAX + 16];
	pid_t pid;
};

static int
hv_start(struct hvproc *p)
{
	const char *bin = getenv("CLEAVE_BIN");
	char exe[PATH_MAX];

	snprintf(exe, sizeof(exe), "%s/cleave-hv", bin && *bin ? bin : "build/bin");
	unlink(p->sock); /* a killed cleave-hv leaves its socket file; wait for the new one */
	p->pid = fork();
	if (p->pid == 0) {
		char log[PATH_MAX + 16];
		FILE *f;

		snprintf(log, sizeof(log), "%s.log", p->dir);
		f = freopen(log, "a", stderr);
		(void)f;
		execl(exe, exe, "--state", p->dir, "--guest", p->guest, (char *)NULL);
		_exit(127);
	}
	t_track_child(p->pid, 1);
	for (int i = 0; i < 500; i++) { /* 5 s */
		struct bridge_client c;

		if (bridge_connect(&c, p->sock, 1000) == 0) {
			bridge_close(&c);
			return 0;
		}
		usleep(10000);
	}
	return -1;
}

static void
hv_stop(struct hvproc *p, int sig)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, sig);
	waitpid(p->pid, NULL, 0);
	t_track_child(p->pid, 0);
	p->pid = 0;
}

static int
hv_init(struct hvproc *p)
{
	const char *base = getenv("CLEAVE_TEST_OUT");
	FILE *f;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/hv-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(p->dir) == NULL || chmod(p->dir, 0700) != 0)
		return -1;
	snprintf(p->sock, sizeof(p->sock), "%s/hv.sock", p->dir);
	/* The real guest where KVM can run it; otherwise any bytes do for the trust tests. */
	snprintf(p->guest, sizeof(p->guest), "%s/../guest/guest.bin",
		 getenv("CLEAVE_BIN") ? getenv("CLEAVE_BIN") : "build/bin");
	if (!vmm_kvm_available() || access(p->guest, R_OK) != 0) {
		snprintf(p->guest, sizeof(p->guest), "%s.guest", p->dir);
		f = fopen(p->guest, "w");
		if (f == NULL)
			return -1;
		fputs("test guest image\n", f);
		fclose(f);
	}
	return hv_start(p);
}

static void
hv_cleanup(struct hvproc *p)
{
	char cmd[PATH_MAX * 2];

	hv_stop(p, SIGKILL);
	if (!t_failed_now) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.guest' '%s.log'", p->dir, p->dir,
			 p->dir);
		(void)!system(cmd);
	}
}

static void
ticket_for(struct ed25519_key *server, const uint8_t hv[32], const char *device, uint16_t type,
	   uint64_t counter, uint64_t arg0, uint8_t out[TICKET_LEN])
{
	struct ticket t;

	memset(&t, 0, sizeof(t));
	t.type = type;
	str_copy(t.device_id, sizeof(t.device_id), device);
	snprintf(t.command_id, sizeof(t.command_id), "cmd_%llu", (unsigned long long)counter);
	memcpy(t.hv_key, hv, 32);
	t.counter = counter;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + 3600;
	if (type == TICKET_LEASE)
		t.args[0] = arg0;
	ticket_encode(&t, out);
	ed25519_key_sign(server, out, TICKET_BODY_LEN, out + TICKET_BODY_LEN);
}

static void
test_hv_attest_pin_and_tickets(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server, *rogue;
	uint8_t nonce[32], buf[4096], hv[32], spub[32], req[64] = {0}, tk[TICKET_LEN];
	struct attestation a;
	struct clv_status st;
	size_t n;

	CHECK(hv_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	/* attestation over our nonce, signed by the key it names */
	memset(nonce, 0x3c, sizeof(nonce));
	CHECK(bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
		      n == ATTEST_LEN,
	      "attest");
	CHECK(attest_decode(buf, n, &a) == 0 && memcmp(a.nonce, nonce, 32) == 0, "attestation");
	CHECK(ed25519_verify(a.hv_key, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN) == 0,
	      "attestation signature");
	memcpy(hv, a.hv_key, 32);
	/* tickets before pinning are refused */
	ed25519_key_generate(&server);
	ed25519_key_generate(&rogue);
	ed25519_key_public(server, spub);
	ticket_for(server, hv, "dev_hv1", TICKET_LEASE, 1, 1900000000, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_INVALID_STATE,
	      "lease before pinning");
	memcpy(req, spub, 32);
	memcpy(req + 32, "dev_hv1", 7);
	CHECK(bridge_call(&c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf), &n) == CLV_OK,
	      "pin");
	CHECK(bridge_call(&c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf), &n) ==
		      CLV_E_NOT_REQUIRED,
	      "pin again");
	req[0] ^= 1;
	CHECK(bridge_call(&c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf), &n) ==
		      CLV_E_DENIED,
	      "re-pinning another key must be denied");
	/* a valid lease is accepted; forged, replayed and foreign ones are not */
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) == CLV_OK,
	      "lease");
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "replayed lease");
	ticket_for(rogue, hv, "dev_hv1", TICKET_LEASE, 5, 1, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "forged lease");
	ticket_for(server, hv, "dev_other", TICKET_LEASE, 6, 1, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "lease for another device");
	CHECK(bridge_call(&c, CLV_FN_STATUS, NULL, 0, buf, sizeof(buf), &n) == CLV_OK &&
		      clv_status_decode(buf, &st) == CLV_OK,
	      "status");
	CHECK(st.ticket_counter == 1 && st.lease_until == 1900000000,
	      "refused tickets changed state: counter %llu lease %llu",
	      (unsigned long long)st.ticket_counter, (unsigned long long)st.lease_until);
	bridge_close(&c);

	/* kill -9 and restart: the same identity, counter and lease */
	hv_stop(&p, SIGKILL);
	CHECK(hv_start(&p) == 0, "restart");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "reconnect");
	CHECK(bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
		      attest_decode(buf, n, &a) == 0 && memcmp(a.hv_key, hv, 32) == 0,
	      "identity changed across a restart");
	CHECK(a.ticket_counter == 1, "counter lost across kill -9");
	ticket_for(server, hv, "dev_hv1", TICKET_LEASE, 1, 1, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "a replay after restart must be refused");
	bridge_close(&c);
	ed25519_key_free(server);
	ed25519_key_free(rogue);
	hv_cleanup(&p);
}

/* Pins a fresh server key for dev_ord and returns the hypervisor key. */
static int
pin_new(struct bridge_client *c, struct ed25519_key **server, uint8_t hv[32])
{
	uint8_t nonce[32] = {1}, buf[512], req[64] = {0};
	struct attestation a;
	size_t n;

	if (bridge_call(c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) != CLV_OK ||
	    attest_decode(buf, n, &a) != 0 || ed25519_key_generate(server) != 0)
		return -1;
	memcpy(hv, a.hv_key, 32);
	ed25519_key_public(*server, req);
	memcpy(req + 32, "dev_ord", 7);
	return bridge_call(c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf), &n);
}

/* Sends an order; checks and decodes its receipt. Returns the call status. */
static int
order(struct bridge_client *c, struct ed25519_key *server, const uint8_t hv[32], uint32_t fid,
      uint16_t type, uint64_t counter, struct receipt *rc)
{
	uint8_t tk[TICKET_LEN], out[RECEIPT_LEN], th[32];
	size_t n = 0;
	int st;

	ticket_for(server, hv, "dev_ord", type, counter, 0, tk);
	st = bridge_call(c, fid, tk, sizeof(tk), out, sizeof(out), &n);
	if (st != CLV_OK)
		return st;
	crypto_sha256(tk, sizeof(tk), th);
	if (n != RECEIPT_LEN || receipt_decode(out, n, rc) != 0 ||
	    ed25519_verify(hv, out, RECEIPT_BODY_LEN, out + RECEIPT_BODY_LEN) != 0 ||
	    memcmp(rc->ticket_hash, th, 32) != 0)
		return -100;
	return CLV_OK;
}

static uint32_t
status_state(struct bridge_client *c, uint64_t *epoch)
{
	uint8_t buf[64];
	struct clv_status st;
	size_t n;

	if (bridge_call(c, CLV_FN_STATUS, NULL, 0, buf, sizeof(buf), &n) != CLV_OK ||
	    clv_status_decode(buf, &st) != CLV_OK)
		return 0;
	*epoch = st.key_epoch;
	return st.state;
}

static void
test_hv_lock_unlock_rekey_wipe(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	uint8_t hv[32];
	struct receipt rc;
	uint64_t e0, e;

	CHECK(hv_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(pin_new(&c, &server, hv) == CLV_OK, "pin");
	CHECK(status_state(&c, &e0) == HV_STATE_ACTIVE && e0 >= 1, "fresh volume active");
	CHECK(order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 1, &rc) == CLV_OK, "lock");
	CHECK(rc.result == 0 && rc.header_state == HV_STATE_LOCKED &&
		      (rc.checks_passed & CHECK_KEYS_ZEROED),
	      "lock receipt");
	CHECK(status_state(&c, &e) == HV_STATE_LOCKED, "locked");
	if (vmm_kvm_available()) /* the corporate VM ran and was stopped before the keys went */
		CHECK((rc.checks_run & CHECK_VM_STOPPED) && (rc.checks_passed & CHECK_VM_STOPPED),
		      "lock receipt must show the VM stopped (run 0x%x passed 0x%x)", rc.checks_run,
		      rc.checks_passed);
	else
		printf("    (no /dev/kvm: VM checks not exercised)\n");
	/* the lock ticket again: refused, still locked */
	CHECK(order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 1, &rc) == CLV_E_BAD_TICKET,
	      "replayed lock");
	CHECK(order(&c, server, hv, CLV_FN_UNLOCK, TICKET_UNLOCK, 2, &rc) == CLV_OK, "unlock");
	CHECK(status_state(&c, &e) == HV_STATE_ACTIVE, "unlocked");
	CHECK(order(&c, server, hv, CLV_FN_REKEY, TICKET_REKEY, 3, &rc) == CLV_OK, "rekey");
	CHECK(rc.epoch_after == rc.epoch_before + 1, "rekey moves to a new epoch");
	/* a wipe ticket presented as a lock is refused */
	CHECK(order(&c, server, hv, CLV_FN_LOCK, TICKET_WIPE, 4, &rc) == CLV_E_BAD_TICKET,
	      "wrong ticket type");
	CHECK(order(&c, server, hv, CLV_FN_WIPE, TICKET_WIPE, 5, &rc) == CLV_OK, "wipe");
	CHECK(rc.result == 0 && rc.checks_run == rc.checks_passed &&
		      (rc.checks_passed & CHECK_ROOT_EPOCH_DESTROYED) &&
		      (rc.checks_passed & CHECK_HEADERS_ERASED) &&
		      (rc.checks_passed & CHECK_OLD_KEY_REJECTED) &&
		      (rc.checks_passed & CHECK_FRESH_VOLUME),
	      "wipe receipt checks run 0x%x passed 0x%x", rc.checks_run, rc.checks_passed);
	CHECK(status_state(&c, &e) == HV_STATE_ACTIVE && e > rc.epoch_before,
	      "a fresh volume under a new epoch after the wipe");
	if (vmm_kvm_available())
		CHECK((rc.checks_passed & CHECK_VM_STOPPED) &&
			      (rc.checks_passed & CHECK_RAM_ZEROED),
		      "wipe receipt must show the VM stopped and its RAM zeroed (0x%x)",
		      rc.checks_passed);
	bridge_close(&c);
	ed25519_key_free(server);
	hv_cleanup(&p);
}

/* Records a wipe's intent as cleave-hv would, then "crashes" (the process is not running). */
static int
crash_after_intent(struct hvproc *p, struct ed25519_key *server, const uint8_t hv[32],
		   int headers_too)
{
	uint8_t tk[TICKET_LEN], th[32];
	char path[PATH_MAX + 16];
	struct volume *v;
	FILE *f;
	int r = 0;

	ticket_for(server, hv, "dev_ord", TICKET_WIPE, 9, 0, tk);
	snprintf(path, sizeof(path), "%s/wipe.ticket", p->dir);
	f = fopen(path, "w");
	if (f == NULL || fwrite(tk, 1, sizeof(tk), f) != sizeof(tk))
		return -1;
	fclose(f);
	if (headers_too) {
		crypto_sha256(tk, sizeof(tk), th);
		if (volume_open(p->dir, "corporate", &v) != 0)
			return -1;
		r = volume_wipe_begin(v, th);
		volume_close(v);
	}
	return r;
}

static void
test_hv_wipe_resumes_after_crash(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	uint8_t hv[32], buf[4096];
	struct receipt rc;
	uint64_t e0, e;
	size_t n;

	for (int headers_too = 0; headers_too <= 1; headers_too++) {
		CHECK(hv_init(&p) == 0, "cleave-hv did not start");
		CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
		CHECK(pin_new(&c, &server, hv) == CLV_OK, "pin");
		CHECK(status_state(&c, &e0) == HV_STATE_ACTIVE, "active");
		bridge_close(&c);
		hv_stop(&p, SIGKILL);
		CHECK(crash_after_intent(&p, server, hv, headers_too) == 0, "intent");
		CHECK(hv_start(&p) == 0, "restart");
		CHECK(bridge_connect(&c, p.sock, 5000) == 0, "reconnect");
		CHECK(status_state(&c, &e) == HV_STATE_ACTIVE && e > e0,
		      "wipe not finished at restart (epoch %llu -> %llu)", (unsigned long long)e0,
		      (unsigned long long)e);
		CHECK(bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n) == CLV_OK &&
			      buf[0] == 1,
		      "the resumed wipe's receipt is kept for the server");
		CHECK(receipt_decode(buf + 8, RECEIPT_LEN, &rc) == 0 && rc.type == TICKET_WIPE &&
			      strcmp(rc.command_id, "cmd_9") == 0 &&
			      rc.checks_run == rc.checks_passed,
		      "resumed wipe receipt");
		bridge_close(&c);
		ed25519_key_free(server);
		server = NULL;
		hv_cleanup(&p);
	}
}

static void
test_hv_offline_lease_lapse_locks_then_wipes(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	uint8_t hv[32], tk[TICKET_LEN], buf[4096], nonce[32] = {2};
	struct ticket t;
	struct receipt r1, r2;
	struct attestation a;
	uint64_t e0, e;
	uint32_t st;
	int saw_locked = 0, wiped = 0;
	size_t n;

	CHECK(hv_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(pin_new(&c, &server, hv) == CLV_OK, "pin");
	CHECK(status_state(&c, &e0) == HV_STATE_ACTIVE, "active");
	/* policy: lock 1 s after the lease ends, wipe after 2 s */
	memset(&t, 0, sizeof(t));
	t.type = TICKET_POLICY;
	str_copy(t.device_id, sizeof(t.device_id), "dev_ord");
	str_copy(t.command_id, sizeof(t.command_id), "cmd_policy");
	memcpy(t.hv_key, hv, 32);
	t.counter = 1;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + 600;
	t.args[0] = 1;
	t.args[1] = 2;
	t.args[3] = 1;
	ticket_encode(&t, tk);
	ed25519_key_sign(server, tk, TICKET_BODY_LEN, tk + TICKET_BODY_LEN);
	CHECK(bridge_call(&c, CLV_FN_SET_POLICY, tk, sizeof(tk), buf, sizeof(buf), &n) == CLV_OK,
	      "policy");
	/* a lease that ends now; then the phone "goes offline" (no renewal) */
	ticket_for(server, hv, "dev_ord", TICKET_LEASE, 2, (uint64_t)time(NULL), tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) == CLV_OK,
	      "lease");
	for (int i = 0; i < 80 && !wiped; i++) { /* at most 8 s */
		st = status_state(&c, &e);
		saw_locked |= st == HV_STATE_LOCKED;
		wiped = st == HV_STATE_ACTIVE && e > e0;
		usleep(100000);
	}
	CHECK(saw_locked, "the corporate half was never locked for being offline");
	CHECK(wiped, "the corporate half was not wiped for being offline");
	CHECK(bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n) == CLV_OK &&
		      buf[0] == 2,
	      "both receipts must be kept for the server (%u)", buf[0]);
	CHECK(receipt_decode(buf + 8, RECEIPT_LEN, &r1) == 0 &&
		      receipt_decode(buf + 8 + RECEIPT_LEN, RECEIPT_LEN, &r2) == 0,
	      "receipts decode");
	CHECK(r1.type == RECEIPT_AUTO_LOCK && r2.type == RECEIPT_AUTO_WIPE, "receipt types %x %x",
	      r1.type, r2.type);
	CHECK(r2.checks_run == r2.checks_passed && r2.result == 0 &&
		      strcmp(r2.device_id, "dev_ord") == 0,
	      "auto-wipe receipt checks");
	CHECK(ed25519_verify(hv, buf + 8 + RECEIPT_LEN, RECEIPT_BODY_LEN,
			     buf + 8 + RECEIPT_LEN + RECEIPT_BODY_LEN) == 0,
	      "auto-wipe receipt signature");
	/* after a wipe the device can enroll again: no server key is pinned any more */
	CHECK(bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
		      attest_decode(buf, n, &a) == 0,
	      "attest");
	memset(nonce, 0, sizeof(nonce));
	CHECK(memcmp(a.owner_key, nonce, 32) == 0 && a.ticket_counter == 0,
	      "the old enrollment must be forgotten after a wipe");
	bridge_close(&c);
	ed25519_key_free(server);
	hv_cleanup(&p);
}

static void
test_hv_refuses_public_state_dir(void)
{
	char dir[PATH_MAX], cmd[PATH_MAX * 3], log[PATH_MAX + 8];
	const char *bin = getenv("CLEAVE_BIN");
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/cleave-hv-public-XXXXXX");
	CHECK(mkdtemp(dir) != NULL, "mkdtemp");
	chmod(dir, 0755);
	snprintf(log, sizeof(log), "%s.log", dir);
	snprintf(cmd, sizeof(cmd), "timeout 10 %s/cleave-hv --state %s --guest /dev/null 2>%s",
		 bin && *bin ? bin : "build/bin", dir, log);
	rc = system(cmd);
	CHECK(WEXITSTATUS(rc) == 1, "a world-readable state dir must be refused (%d)", rc);
	snprintf(cmd, sizeof(cmd), "grep -q 'must be private' %s", log);
	CHECK(system(cmd) == 0, "refused, but not for its permissions (see %s)", log);
	CHECK(access(dir, F_OK) == 0 && rmdir(dir) == 0, "nothing may be created in it");
	unlink(log);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"hv_attest_pin_and_tickets", test_hv_attest_pin_and_tickets},
		{"hv_lock_unlock_rekey_wipe", test_hv_lock_unlock_rekey_wipe},
		{"hv_wipe_resumes_after_crash", test_hv_wipe_resumes_after_crash},
		{"hv_offline_lease_lapse_locks_then_wipes",
		 test_hv_offline_lease_lapse_locks_then_wipes},
		{"hv_refuses_public_state_dir", test_hv_refuses_public_state_dir},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

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
#include "hvproc.h"
#include "trun.h"
#include "util.h"

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

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
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
	hvp_ticket(server, hv, "dev_hv1", TICKET_LEASE, 1, 1900000000, tk);
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
	hvp_ticket(rogue, hv, "dev_hv1", TICKET_LEASE, 5, 1, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "forged lease");
	hvp_ticket(server, hv, "dev_other", TICKET_LEASE, 6, 1, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "lease for another device");
	CHECK(bridge_call(&c, CLV_FN_STATUS, NULL, 0, buf, sizeof(buf), &n) == CLV_OK &&
		      clv_status_decode(buf, &st) == CLV_OK,
	      "status");
	/* leases count on their own: the order counter is untouched by them */
	CHECK(st.ticket_counter == 0 && st.lease_until == 1900000000,
	      "refused tickets changed state: counter %llu lease %llu",
	      (unsigned long long)st.ticket_counter, (unsigned long long)st.lease_until);
	bridge_close(&c);

	/* kill -9 and restart: the same identity, counter and lease */
	hvp_stop(&p, SIGKILL);
	CHECK(hvp_start(&p) == 0, "restart");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "reconnect");
	CHECK(bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
		      attest_decode(buf, n, &a) == 0 && memcmp(a.hv_key, hv, 32) == 0,
	      "identity changed across a restart");
	CHECK(a.ticket_counter == 0, "order counter changed across kill -9");
	/* the lease counter is durable too: the accepted lease cannot be replayed */
	hvp_ticket(server, hv, "dev_hv1", TICKET_LEASE, 1, 1, tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "a replay after restart must be refused");
	bridge_close(&c);
	ed25519_key_free(server);
	ed25519_key_free(rogue);
	hvp_cleanup(&p);
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

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(hvp_pin_new(&c, &server, hv) == CLV_OK, "pin");
	CHECK(hvp_state(&c, &e0) == HV_STATE_ACTIVE && e0 >= 1, "fresh volume active");
	CHECK(hvp_order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 1, &rc, NULL) == CLV_OK, "lock");
	CHECK(rc.result == 0 && rc.header_state == HV_STATE_LOCKED &&
		      (rc.checks_passed & CHECK_KEYS_ZEROED),
	      "lock receipt");
	CHECK(hvp_state(&c, &e) == HV_STATE_LOCKED, "locked");
	if (vmm_kvm_available()) /* the corporate VM ran and was stopped before the keys went */
		CHECK((rc.checks_run & CHECK_VM_STOPPED) && (rc.checks_passed & CHECK_VM_STOPPED),
		      "lock receipt must show the VM stopped (run 0x%x passed 0x%x)", rc.checks_run,
		      rc.checks_passed);
	else
		printf("    (no /dev/kvm: VM checks not exercised)\n");
	/* the lock ticket again: refused, still locked */
	CHECK(hvp_order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 1, &rc, NULL) == CLV_E_BAD_TICKET,
	      "replayed lock");
	CHECK(hvp_order(&c, server, hv, CLV_FN_UNLOCK, TICKET_UNLOCK, 2, &rc, NULL) == CLV_OK,
	      "unlock");
	CHECK(hvp_state(&c, &e) == HV_STATE_ACTIVE, "unlocked");
	CHECK(hvp_order(&c, server, hv, CLV_FN_REKEY, TICKET_REKEY, 3, &rc, NULL) == CLV_OK,
	      "rekey");
	CHECK(rc.epoch_after == rc.epoch_before + 1, "rekey moves to a new epoch");
	/* a wipe ticket presented as a lock is refused */
	CHECK(hvp_order(&c, server, hv, CLV_FN_LOCK, TICKET_WIPE, 4, &rc, NULL) == CLV_E_BAD_TICKET,
	      "wrong ticket type");
	CHECK(hvp_order(&c, server, hv, CLV_FN_WIPE, TICKET_WIPE, 5, &rc, NULL) == CLV_OK, "wipe");
	CHECK(rc.result == 0 && rc.checks_run == rc.checks_passed &&
		      (rc.checks_passed & CHECK_ROOT_EPOCH_DESTROYED) &&
		      (rc.checks_passed & CHECK_HEADERS_ERASED) &&
		      (rc.checks_passed & CHECK_OLD_KEY_REJECTED) &&
		      (rc.checks_passed & CHECK_FRESH_VOLUME),
	      "wipe receipt checks run 0x%x passed 0x%x", rc.checks_run, rc.checks_passed);
	CHECK(hvp_state(&c, &e) == HV_STATE_ACTIVE && e > rc.epoch_before,
	      "a fresh volume under a new epoch after the wipe");
	if (vmm_kvm_available())
		CHECK((rc.checks_passed & CHECK_VM_STOPPED) &&
			      (rc.checks_passed & CHECK_RAM_ZEROED),
		      "wipe receipt must show the VM stopped and its RAM zeroed (0x%x)",
		      rc.checks_passed);
	bridge_close(&c);
	ed25519_key_free(server);
	hvp_cleanup(&p);
}

/*
 * A wipe intent in the volume headers without a journal entry (what an older cleave-hv left
 * when it crashed mid-wipe): the next start finishes the wipe as its own, with an AUTO_WIPE
 * receipt. Every kill point of a ticketed wipe is covered by test_hv_crash.
 */
static void
test_hv_wipe_intent_in_headers_resumes(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	uint8_t hv[32], buf[4096], th[32];
	struct volume *v;
	struct receipt rc;
	uint64_t e0, e;
	size_t n;

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(hvp_pin_new(&c, &server, hv) == CLV_OK, "pin");
	CHECK(hvp_state(&c, &e0) == HV_STATE_ACTIVE, "active");
	bridge_close(&c);
	hvp_stop(&p, SIGKILL);
	memset(th, 0x5a, sizeof(th));
	CHECK(volume_open(p.dir, "corporate", &v) == 0, "open the volume");
	CHECK(volume_wipe_begin(v, th) == 0, "intent");
	volume_close(v);
	CHECK(hvp_start(&p) == 0, "restart");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "reconnect");
	CHECK(hvp_state(&c, &e) == HV_STATE_ACTIVE && e == e0 + 1,
	      "wipe not finished at restart (epoch %llu -> %llu)", (unsigned long long)e0,
	      (unsigned long long)e);
	CHECK(bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n) == CLV_OK &&
		      buf[0] == 1,
	      "the resumed wipe's receipt is kept for the server");
	CHECK(receipt_decode(buf + 8, RECEIPT_LEN, &rc) == 0 && rc.type == RECEIPT_AUTO_WIPE &&
		      rc.result == 0 && rc.checks_run == rc.checks_passed,
	      "resumed wipe receipt");
	bridge_close(&c);
	ed25519_key_free(server);
	hvp_cleanup(&p);
}

static void
test_hv_offline_lease_lapse_locks_then_wipes(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	uint8_t hv[32], tk[TICKET_LEN], buf[4096], nonce[32] = {2};
	struct receipt r1, r2;
	struct attestation a;
	uint64_t e0, e;
	uint32_t st;
	int saw_locked = 0, wiped = 0;
	size_t n;

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(hvp_pin_new(&c, &server, hv) == CLV_OK, "pin");
	CHECK(hvp_state(&c, &e0) == HV_STATE_ACTIVE, "active");
	/* policy: lock 1 s after the lease ends, wipe after 2 s */
	CHECK(hvp_policy(&c, server, hv, 1, 1, 2, 0) == CLV_OK, "policy");
	/* a lease that ends now; then the phone "goes offline" (no renewal) */
	hvp_ticket(server, hv, "dev_ord", TICKET_LEASE, 2, (uint64_t)time(NULL), tk);
	CHECK(bridge_call(&c, CLV_FN_RENEW_LEASE, tk, sizeof(tk), buf, sizeof(buf), &n) == CLV_OK,
	      "lease");
	for (int i = 0; i < 80 && !wiped; i++) { /* at most 8 s */
		st = hvp_state(&c, &e);
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
	hvp_cleanup(&p);
}

/* Forged unlock tickets while locked count; at the policy's limit cleave-hv wipes. */
static void
test_hv_failed_unlock_limit_wipes(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL, *thief = NULL;
	uint8_t hv[32], tk[TICKET_LEN], buf[4096];
	struct receipt rc;
	uint64_t e0, e;
	size_t n;

	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
	CHECK(hvp_pin_new(&c, &server, hv) == CLV_OK, "pin");
	CHECK(ed25519_key_generate(&thief) == 0, "key");
	CHECK(hvp_policy(&c, server, hv, 1, 0, 0, 3) == CLV_OK, "policy: 3 failed unlocks");
	CHECK(hvp_order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 2, &rc, NULL) == CLV_OK, "lock");
	CHECK(hvp_state(&c, &e0) == HV_STATE_LOCKED, "locked");
	/* two forged unlocks, then the real one: the count starts again */
	for (uint64_t i = 0; i < 2; i++) {
		hvp_ticket(thief, hv, "dev_ord", TICKET_UNLOCK, 10 + i, 0, tk);
		CHECK(bridge_call(&c, CLV_FN_UNLOCK, tk, sizeof(tk), buf, sizeof(buf), &n) ==
			      CLV_E_BAD_TICKET,
		      "forged unlock");
	}
	CHECK(hvp_order(&c, server, hv, CLV_FN_UNLOCK, TICKET_UNLOCK, 3, &rc, NULL) == CLV_OK,
	      "unlock");
	CHECK(hvp_order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 4, &rc, NULL) == CLV_OK,
	      "lock again");
	/* the count survives a crash */
	for (uint64_t i = 0; i < 2; i++) {
		hvp_ticket(thief, hv, "dev_ord", TICKET_UNLOCK, 20 + i, 0, tk);
		CHECK(bridge_call(&c, CLV_FN_UNLOCK, tk, sizeof(tk), buf, sizeof(buf), &n) ==
			      CLV_E_BAD_TICKET,
		      "forged unlock");
	}
	CHECK(hvp_state(&c, &e) == HV_STATE_LOCKED, "still locked after 2 of 3");
	bridge_close(&c);
	hvp_stop(&p, SIGKILL);
	CHECK(hvp_start(&p) == 0, "restart");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0, "reconnect");
	hvp_ticket(thief, hv, "dev_ord", TICKET_UNLOCK, 30, 0, tk);
	CHECK(bridge_call(&c, CLV_FN_UNLOCK, tk, sizeof(tk), buf, sizeof(buf), &n) ==
		      CLV_E_BAD_TICKET,
	      "third forged unlock");
	CHECK(hvp_state(&c, &e) == HV_STATE_ACTIVE && e > e0,
	      "the third failed unlock must wipe (state fresh, epoch %llu > %llu)",
	      (unsigned long long)e, (unsigned long long)e0);
	CHECK(bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n) == CLV_OK &&
		      n >= 8 + RECEIPT_LEN &&
		      receipt_decode(buf + n - RECEIPT_LEN, RECEIPT_LEN, &rc) == 0 &&
		      rc.type == RECEIPT_AUTO_WIPE && rc.result == 0,
	      "an AUTO_WIPE receipt must be kept for the server");
	bridge_close(&c);
	ed25519_key_free(server);
	ed25519_key_free(thief);
	hvp_cleanup(&p);
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
		{"hv_wipe_intent_in_headers_resumes", test_hv_wipe_intent_in_headers_resumes},
		{"hv_offline_lease_lapse_locks_then_wipes",
		 test_hv_offline_lease_lapse_locks_then_wipes},
		{"hv_failed_unlock_limit_wipes", test_hv_failed_unlock_limit_wipes},
		{"hv_refuses_public_state_dir", test_hv_refuses_public_state_dir},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

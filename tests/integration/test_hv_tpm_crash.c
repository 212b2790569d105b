/*
 * Crash tests of cleave-hv --tpm's wipe (hypercall-bridge/TPM.md §4, §7): the walk kills
 * cleave-hv right before its 1st, 2nd, ... durable operation (CLEAVE_HV_FAULT=durable:N; the
 * TPM wipe counter's increment is one of them) during a signed wipe, restarts it without the
 * fault, and checks that the wipe was carried out once and moved the TPM's wipe counter by
 * exactly one: the receipt says before -> before + 1, and the counter read from the TPM itself
 * (cleave-hv stopped) is before + 1. Until the wipe completes without reaching N.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvtpm.h"
#include "testlib.h"
#include "tpm.h"
#include "util.h"

#define WALK_MAX 64 /* more durable operations than a wipe has */

/* The TPM's wipe counter, read with cleave-hv stopped (tpm_open flushes its handles). */
static int
wipe_counter(struct hvtpm *tc, uint64_t *v)
{
	struct tpm *t = NULL;
	int r = tpm_open(tc->tpm.tcti, &t);

	if (r == 0)
		r = tpm_counter_read(t, TPM_NV_WIPE_COUNTER, v);
	tpm_close(t);
	return r;
}

/* cleave-hv (re)started on its state, with CLEAVE_HV_FAULT=fault when not NULL. 0 or -1. */
static int
restart(struct hvtpm *tc, int sig, const char *fault)
{
	int r;

	bridge_close(&tc->c);
	hvp_stop(&tc->hv, sig);
	if (fault != NULL)
		setenv("CLEAVE_HV_FAULT", fault, 1);
	r = hvp_start(&tc->hv);
	unsetenv("CLEAVE_HV_FAULT");
	return r == 0 ? bridge_connect(&tc->c, tc->hv.sock, 5000) : -1;
}

/*
 * One step of the walk: pinned afresh, a wipe ticket sent to a cleave-hv armed to die before
 * its nth durable operation, killed, restarted. The wipe must be done once (sent again if it
 * was never accepted) with a receipt before -> before + 1. *done is set when the wipe
 * completed without reaching n.
 */
static void
walk_step(struct hvtpm *tc, unsigned n, uint64_t before, int *done)
{
	struct ed25519_key *server = NULL;
	uint8_t hv[32], tk[TICKET_LEN], th[32], out[RECEIPT_LEN];
	char fault[32];
	struct receipt rc;
	size_t len;
	int st, count;

	memset(&rc, 0, sizeof(rc));
	CHECK(hvp_pin_new(&tc->c, &server, hv) == CLV_OK, "step %u: pin", n);
	hvp_ticket(server, hv, "dev_ord", TICKET_WIPE, 1, 0, tk);
	ed25519_key_free(server);
	crypto_sha256(tk, TICKET_LEN, th);
	snprintf(fault, sizeof(fault), "durable:%u", n);
	CHECK(restart(tc, SIGTERM, fault) == 0, "step %u: start with the fault", n);
	st = bridge_call(&tc->c, CLV_FN_WIPE, tk, TICKET_LEN, out, sizeof(out), &len);
	*done = st == CLV_OK;
	CHECK(restart(tc, SIGKILL, NULL) == 0, "step %u: restart after the kill", n);
	count = hvp_receipts_for(&tc->c, tc->hv_key, th, &rc, 0);
	if (count == 0) { /* killed before the order was accepted: nothing happened yet */
		CHECK(bridge_call(&tc->c, CLV_FN_WIPE, tk, TICKET_LEN, out, sizeof(out), &len) ==
			      CLV_OK,
		      "step %u: the wipe never accepted is taken now", n);
		count = hvp_receipts_for(&tc->c, tc->hv_key, th, &rc, 0);
	}
	CHECK(count == 1 && rc.result == 0 && rc.checks_run == rc.checks_passed,
	      "step %u: one receipt of a complete wipe (%d, checks 0x%x of 0x%x)", n, count,
	      rc.checks_passed, rc.checks_run);
	CHECK(rc.wipe_counter_before == before && rc.wipe_counter_after == before + 1,
	      "step %u: the receipt says %llu -> %llu, the TPM was at %llu before", n,
	      (unsigned long long)rc.wipe_counter_before, (unsigned long long)rc.wipe_counter_after,
	      (unsigned long long)before);
	CHECK(hvp_receipts_for(&tc->c, tc->hv_key, th, &rc, 1) == 1, "step %u: acknowledge", n);
}

static void
tpm_wipe_kill_walk_moves_counter_once(void)
{
	struct hvtpm tc = {0};
	uint64_t before = 0, now = 0;
	unsigned n;
	int done = 0;

	HVTPM_START(&tc, "wipewalk");
	bridge_close(&tc.c);
	hvp_stop(&tc.hv, SIGTERM);
	CHECK(wipe_counter(&tc, &before) == 0, "read the wipe counter");
	CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0, "start");
	for (n = 1; n <= WALK_MAX && !done && !t_failed_now; n++) {
		walk_step(&tc, n, before, &done);
		bridge_close(&tc.c);
		hvp_stop(&tc.hv, SIGTERM);
		CHECK(wipe_counter(&tc, &now) == 0 && now == before + 1,
		      "step %u: the TPM's wipe counter is %llu, want %llu", n,
		      (unsigned long long)now, (unsigned long long)before + 1);
		before = now;
		CHECK(hvp_start(&tc.hv) == 0 && bridge_connect(&tc.c, tc.hv.sock, 5000) == 0,
		      "step %u: start", n);
	}
	CHECK(done, "still reaching a durable operation at %u", WALK_MAX);
	/* a wipe with a TPM has its trust writes, the key file deletions and the increment */
	CHECK(n - 2 >= 8, "only %u fault points", n - 2);
	printf("    wipe --tpm: killed at each of %u durable operations; the counter moved once\n",
	       n - 2);
	hvtpm_end(&tc);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"tpm_wipe_kill_walk_moves_counter_once", tpm_wipe_kill_walk_moves_counter_once},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

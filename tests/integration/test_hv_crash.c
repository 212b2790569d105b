/*
 * Crash tests of cleave-hv's ticketed actions: for each action (wipe, retire, lock, unlock,
 * rekey, policy, lease) the walk kills cleave-hv right before its 1st, 2nd, ... durable file
 * operation (CLEAVE_HV_FAULT=durable:N) until the action completes without reaching N (and
 * then right after it), and after every kill restarts it without the fault and checks that
 * the ticket was carried out exactly once: one receipt for it, its counter consumed once, the
 * state right, the same ticket refused as a replay. A second walk makes the Nth operation fail
 * instead (durable-fail:N) and checks that the same process retries until the same holds.
 * The wipe cleave-hv decides by itself at the failed-unlock limit gets the kill walk too.
 * Runs the real binary; needs no KVM.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge_client.h"
#include "bridge_msg.h"
#include "hvproc.h"
#include "trun.h"
#include "util.h"
#include "volume.h"

#define WALK_MAX 64 /* more durable operations than any action has */

struct action {
	const char *name;
	uint32_t fid;
	uint16_t type;
	uint32_t start_state; /* the state the action is tried from */
};

static const struct action actions[] = {
	{"wipe", CLV_FN_WIPE, TICKET_WIPE, HV_STATE_ACTIVE},
	{"retire", CLV_FN_WIPE, TICKET_RETIRE, HV_STATE_LOCKED},
	{"lock", CLV_FN_LOCK, TICKET_LOCK, HV_STATE_ACTIVE},
	{"unlock", CLV_FN_UNLOCK, TICKET_UNLOCK, HV_STATE_LOCKED},
	{"rekey", CLV_FN_REKEY, TICKET_REKEY, HV_STATE_ACTIVE},
	{"policy", CLV_FN_SET_POLICY, TICKET_POLICY, HV_STATE_ACTIVE},
	{"lease", CLV_FN_RENEW_LEASE, TICKET_LEASE, HV_STATE_ACTIVE},
};

struct walk {
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server;
	uint8_t hv[32];
	uint64_t counter; /* the last ticket counter used */
	/* before the action */
	uint64_t epoch;
	uint8_t old_root[32];
};

static int
is_wipe(const struct action *a)
{
	return a->type == TICKET_WIPE || a->type == TICKET_RETIRE;
}

/* A signed ticket of a's type with counter; policy and lease tickets carry their values. */
static void
make_ticket(struct walk *w, const struct action *a, uint64_t counter, uint8_t out[TICKET_LEN])
{
	struct ticket t;

	memset(&t, 0, sizeof(t));
	t.type = a->type;
	str_copy(t.device_id, sizeof(t.device_id), "dev_ord");
	snprintf(t.command_id, sizeof(t.command_id), "cmd_%s_%llu", a->name,
		 (unsigned long long)counter);
	memcpy(t.hv_key, w->hv, 32);
	t.counter = counter;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + 3600;
	if (a->type == TICKET_LEASE)
		t.args[0] = 1900000000 + counter; /* a lease end this ticket alone sets */
	if (a->type == TICKET_POLICY)
		t.args[3] = counter; /* the policy version; limits 0: never lock or wipe */
	ticket_encode(&t, out);
	ed25519_key_sign(w->server, out, TICKET_BODY_LEN, out + TICKET_BODY_LEN);
}

static int
order(struct walk *w, uint32_t fid, uint16_t type)
{
	struct receipt rc;

	w->counter++;
	return hvp_order(&w->c, w->server, w->hv, fid, type, w->counter, &rc, NULL);
}

static struct clv_status
status_of(struct walk *w)
{
	uint8_t buf[64];
	struct clv_status st;
	size_t n;

	memset(&st, 0, sizeof(st));
	if (bridge_call(&w->c, CLV_FN_STATUS, NULL, 0, buf, sizeof(buf), &n) != CLV_OK ||
	    clv_status_decode(buf, &st) != CLV_OK)
		st.state = 0;
	return st;
}

/* 1 when a server key is pinned (the attestation names an owner). */
static int
pinned(struct walk *w)
{
	uint8_t nonce[32] = {7}, buf[512], zero[32] = {0};
	struct attestation a;
	size_t n;

	return bridge_call(&w->c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK &&
	       attest_decode(buf, n, &a) == 0 && memcmp(a.owner_key, zero, 32) != 0;
}

/* The pending receipts for ticket hash th (hvp_receipts_for); acknowledged when ack is set. */
static int
receipts_for(struct walk *w, const uint8_t th[32], struct receipt *rc, int ack)
{
	return hvp_receipts_for(&w->c, w->hv, th, rc, ack);
}

/* Pins again after a wipe, and brings the corporate half to the action's start state. */
static void
prepare(struct walk *w, const struct action *a)
{
	char path[PATH_MAX + 64];
	uint8_t zero[32] = {0}, tmp[32];
	struct receipt rc;
	struct clv_status st;
	FILE *f;

	if (!pinned(w)) {
		ed25519_key_free(w->server);
		w->server = NULL;
		w->counter = 0;
		CHECK(hvp_pin_new(&w->c, &w->server, w->hv) == CLV_OK, "pin again");
	}
	st = status_of(w);
	if (st.state != a->start_state)
		CHECK(order(w, a->start_state == HV_STATE_LOCKED ? CLV_FN_LOCK : CLV_FN_UNLOCK,
			    a->start_state == HV_STATE_LOCKED ? TICKET_LOCK : TICKET_UNLOCK) ==
			      CLV_OK,
		      "%s: bring the corporate half to state %u", a->name, a->start_state);
	CHECK(receipts_for(w, zero, &rc, 1) >= 0, "acknowledge receipts");
	st = status_of(w);
	CHECK(st.state == a->start_state, "%s: start state %u", a->name, st.state);
	w->epoch = st.key_epoch;
	snprintf(path, sizeof(path), "%s/root-%llu.key", w->p.dir, (unsigned long long)w->epoch);
	f = fopen(path, "rb");
	CHECK(f != NULL && fread(tmp, 1, 32, f) == 32, "read %s", path);
	fclose(f);
	memcpy(w->old_root, tmp, 32);
}

/* The state an action must leave, whichever process carried it out. */
static void
check_state(struct walk *w, const struct action *a, const struct receipt *rc,
	    const uint8_t tk[TICKET_LEN])
{
	struct clv_status st = status_of(w);
	struct ticket t;
	struct volume *v = NULL;
	char path[PATH_MAX + 64];

	ticket_decode(tk, TICKET_LEN, &t);
	snprintf(path, sizeof(path), "%s/root-%llu.key", w->p.dir, (unsigned long long)w->epoch);
	if (is_wipe(a)) {
		/* One provision: a second wipe of the fresh volume would move the epoch again. */
		CHECK(st.state == HV_STATE_ACTIVE && st.key_epoch == w->epoch + 1,
		      "wipe: one fresh volume (state %u epoch %llu, before %llu)", st.state,
		      (unsigned long long)st.key_epoch, (unsigned long long)w->epoch);
		CHECK(rc->result == 0 && rc->checks_run == rc->checks_passed &&
			      (rc->checks_passed & CHECK_ROOT_EPOCH_DESTROYED) &&
			      (rc->checks_passed & CHECK_FRESH_VOLUME) &&
			      rc->epoch_before == w->epoch && rc->epoch_after == st.key_epoch,
		      "wipe receipt: result %d checks 0x%x of 0x%x epochs %llu -> %llu", rc->result,
		      rc->checks_passed, rc->checks_run, (unsigned long long)rc->epoch_before,
		      (unsigned long long)rc->epoch_after);
		CHECK(!pinned(w), "the enrollment must be forgotten after a wipe");
		CHECK(access(path, F_OK) != 0, "the old root key file is still there");
		CHECK(volume_open(w->p.dir, "corporate", &v) == 0, "open the volume");
		CHECK(volume_try_root_key(v, w->old_root) == -EKEYREJECTED,
		      "the old root key still opens the volume");
		volume_close(v);
	} else if (a->type == TICKET_LOCK || a->type == TICKET_UNLOCK) {
		uint32_t want = a->type == TICKET_LOCK ? HV_STATE_LOCKED : HV_STATE_ACTIVE;

		CHECK(st.state == want && rc->result == 0 && rc->header_state == want,
		      "%s: state %u, receipt result %d state %u", a->name, st.state, rc->result,
		      rc->header_state);
	} else if (a->type == TICKET_REKEY) {
		CHECK(st.key_epoch == w->epoch + 1 && rc->result == 0 &&
			      rc->epoch_before == w->epoch && rc->epoch_after == w->epoch + 1,
		      "rekey: epoch %llu (before %llu), receipt %d %llu -> %llu",
		      (unsigned long long)st.key_epoch, (unsigned long long)w->epoch, rc->result,
		      (unsigned long long)rc->epoch_before, (unsigned long long)rc->epoch_after);
		CHECK(access(path, F_OK) != 0, "rekey: the old root key file is still there");
	}
	if (!is_wipe(a))
		CHECK(st.ticket_counter == t.counter || a->type == TICKET_LEASE,
		      "%s: counter %llu, ticket %llu", a->name,
		      (unsigned long long)st.ticket_counter, (unsigned long long)t.counter);
	if (a->type == TICKET_LEASE)
		CHECK(st.lease_until == t.args[0], "lease: until %llu, want %llu",
		      (unsigned long long)st.lease_until, (unsigned long long)t.args[0]);
}

/* 1 when the ticket's effect is durable (for the actions that keep no receipt). */
static int
applied(struct walk *w, const struct action *a, const uint8_t tk[TICKET_LEN])
{
	struct clv_status st = status_of(w);
	struct ticket t;

	ticket_decode(tk, TICKET_LEN, &t);
	if (a->type == TICKET_LEASE)
		return st.lease_until == t.args[0];
	return st.ticket_counter == t.counter;
}

/*
 * After a kill (or a completed call) and a restart without the fault: the ticket was carried
 * out exactly once, or not at all and then it is accepted now; afterwards it is a replay.
 */
static void
check_once(struct walk *w, const struct action *a, const uint8_t tk[TICKET_LEN], unsigned n)
{
	uint8_t th[32], out[RECEIPT_LEN];
	int receipted = a->type != TICKET_POLICY && a->type != TICKET_LEASE;
	struct receipt rc;
	size_t len;
	int count, st;

	crypto_sha256(tk, TICKET_LEN, th);
	count = receipted ? receipts_for(w, th, &rc, 0) : applied(w, a, tk);
	CHECK(count == 0 || count == 1, "%s kill %u: %d receipts for one ticket", a->name, n,
	      count);
	if (count == 0) {
		/* Never accepted: nothing changed, so the same ticket must work now. */
		CHECK(status_of(w).key_epoch == w->epoch,
		      "%s kill %u: the epoch moved without "
		      "the ticket being accepted",
		      a->name, n);
		st = bridge_call(&w->c, a->fid, tk, TICKET_LEN, out, sizeof(out), &len);
		CHECK(st == CLV_OK, "%s kill %u: the unaccepted ticket is refused (%d)", a->name, n,
		      st);
		count = receipted ? receipts_for(w, th, &rc, 0) : applied(w, a, tk);
		CHECK(count == 1, "%s kill %u: %d receipts after resubmitting", a->name, n, count);
	}
	if (receipted)
		CHECK(rc.result == 0 && strcmp(rc.device_id, "dev_ord") == 0, "%s kill %u: receipt",
		      a->name, n);
	check_state(w, a, &rc, tk);
	if (t_failed_now)
		return;
	st = bridge_call(&w->c, a->fid, tk, TICKET_LEN, out, sizeof(out), &len);
	CHECK(st == (is_wipe(a) ? CLV_E_INVALID_STATE : CLV_E_BAD_TICKET),
	      "%s kill %u: the ticket again must be refused (%d)", a->name, n, st);
	count = receipted ? receipts_for(w, th, &rc, 1) : 1;
	CHECK(count == 1, "%s kill %u: %d receipts after the replay", a->name, n, count);
}

/* Waits (bounded) until a failed attempt's ticket is receipted or applied, or not accepted. */
static void
settle(struct walk *w, const struct action *a, const uint8_t tk[TICKET_LEN])
{
	int receipted = a->type != TICKET_POLICY && a->type != TICKET_LEASE;
	uint8_t th[32];
	struct receipt rc;

	crypto_sha256(tk, TICKET_LEN, th);
	for (int i = 0; i < 100 * t_slow();
	     i++) { /* 10 s (x CLEAVE_TEST_SLOW); first retry 250 ms */
		if ((receipted ? receipts_for(w, th, &rc, 0) : applied(w, a, tk)) != 0)
			return;
		/* refused before its counter was durable: check_once sends it again */
		if (pinned(w) && status_of(w).ticket_counter < w->counter)
			return;
		usleep(100000);
	}
}

/*
 * Runs the action with fault mode:n armed. Returns 1 when it completed without reaching n,
 * 0 when it did not, -1 when cleave-hv did not come back. A kill (or the end of the call) is
 * followed by a restart without the fault; a failure is left to the same process to retry.
 */
static int
attempt(struct walk *w, const struct action *a, const char *mode, unsigned n,
	uint8_t tk[TICKET_LEN])
{
	uint8_t out[RECEIPT_LEN];
	char fault[64];
	size_t len;
	int st;

	bridge_close(&w->c);
	hvp_stop(&w->p, SIGTERM);
	snprintf(fault, sizeof(fault), "%s:%u", mode, n);
	setenv("CLEAVE_HV_FAULT", fault, 1);
	st = hvp_start(&w->p);
	unsetenv("CLEAVE_HV_FAULT");
	if (st != 0 || bridge_connect(&w->c, w->p.sock, 5000) != 0)
		return -1;
	w->counter++;
	make_ticket(w, a, w->counter, tk);
	st = bridge_call(&w->c, a->fid, tk, TICKET_LEN, out, sizeof(out), &len);
	if (strcmp(mode, "durable-fail") == 0 && st != CLV_OK) {
		/* IO: not accepted (nothing changed); BUSY: accepted, retried until done */
		if (st != CLV_E_IO && st != CLV_E_BUSY)
			return -1;
		settle(w, a, tk);
		return 0;
	}
	bridge_close(&w->c);
	/* Crashed or not, the next start has no fault armed (a kill here is one more point). */
	hvp_stop(&w->p, SIGKILL);
	if (hvp_start(&w->p) != 0 || bridge_connect(&w->c, w->p.sock, 5000) != 0)
		return -1;
	return st == CLV_OK;
}

static void
walk_action(const struct action *a, const char *mode)
{
	struct walk w;
	uint8_t tk[TICKET_LEN];
	unsigned n;
	int done = 0;

	memset(&w, 0, sizeof(w));
	CHECK(hvp_init(&w.p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&w.c, w.p.sock, 5000) == 0, "connect");
	for (n = 1; n <= WALK_MAX && !done && !t_failed_now; n++) {
		prepare(&w, a);
		if (t_failed_now)
			break;
		done = attempt(&w, a, mode, n, tk);
		CHECK(done >= 0, "%s %s %u: cleave-hv did not come back", a->name, mode, n);
		check_once(&w, a, tk, n);
	}
	CHECK(done == 1, "%s: still reaching a durable operation at %u", a->name, WALK_MAX);
	/* Every action makes at least one atomic trust write (3 operations): a walk that never
	 * stopped anything means the fault was not armed. */
	CHECK(n - 2 >= 3, "%s: only %u fault points", a->name, n - 2);
	printf("    %s, %s: at each of %u durable operations; each time exactly once\n", a->name,
	       mode, n - 2);
	bridge_close(&w.c);
	ed25519_key_free(w.server);
	hvp_cleanup(&w.p);
}

/* The failed-unlock count as a restart reads it from trust.state (u64 at byte 176). */
static uint64_t
failed_unlocks_on_disk(struct walk *w)
{
	char path[PATH_MAX + 32];
	uint8_t b[8];
	uint64_t v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s/trust.state", w->p.dir);
	f = fopen(path, "rb");
	if (f == NULL || fseek(f, 176, SEEK_SET) != 0 || fread(b, 1, 8, f) != 8)
		v = UINT64_MAX;
	for (int i = 7; i >= 0 && v != UINT64_MAX; i--)
		v = v << 8 | b[i];
	if (f != NULL)
		fclose(f);
	return v;
}

/* After a kill: the forged unlock either never counted, or its auto-wipe happened once. */
static void
check_auto_wipe_once(struct walk *w, struct ed25519_key *thief, unsigned n)
{
	uint8_t zero[32] = {0}, tk[TICKET_LEN], out[64];
	struct receipt rc;
	struct clv_status st = status_of(w);
	size_t len;
	int count = receipts_for(w, zero, &rc, 0);

	CHECK(count == 0 || count == 1, "kill %u: %d AUTO_WIPE receipts", n, count);
	if (count == 0) {
		CHECK(st.state == HV_STATE_LOCKED && st.key_epoch == w->epoch &&
			      failed_unlocks_on_disk(w) == 0,
		      "kill %u: a failed unlock counted (%llu) but its wipe was lost (state %u)", n,
		      (unsigned long long)failed_unlocks_on_disk(w), st.state);
		hvp_ticket(thief, w->hv, "dev_ord", TICKET_UNLOCK, 999, 0, tk);
		CHECK(bridge_call(&w->c, CLV_FN_UNLOCK, tk, TICKET_LEN, out, sizeof(out), &len) ==
			      CLV_E_BAD_TICKET,
		      "kill %u: forged unlock again", n);
		count = receipts_for(w, zero, &rc, 0);
	}
	st = status_of(w);
	CHECK(count == 1 && rc.type == RECEIPT_AUTO_WIPE && rc.result == 0 &&
		      rc.checks_run == rc.checks_passed && rc.epoch_before == w->epoch,
	      "kill %u: the auto-wipe receipt (%d, type 0x%x, checks 0x%x of 0x%x)", n, count,
	      rc.type, rc.checks_passed, rc.checks_run);
	CHECK(st.state == HV_STATE_ACTIVE && st.key_epoch == w->epoch + 1 && !pinned(w),
	      "kill %u: one wipe (state %u epoch %llu, before %llu)", n, st.state,
	      (unsigned long long)st.key_epoch, (unsigned long long)w->epoch);
	CHECK(receipts_for(w, zero, &rc, 1) == 1, "kill %u: acknowledge", n);
}

/* The wipe cleave-hv decides by itself at the failed-unlock limit, killed at every point. */
static void
test_hv_kill_walk_failed_unlock_wipe(void)
{
	struct walk w;
	struct ed25519_key *thief = NULL;
	uint8_t tk[TICKET_LEN], out[64];
	char fault[64];
	unsigned n;
	size_t len;
	int st = 0;

	memset(&w, 0, sizeof(w));
	CHECK(ed25519_key_generate(&thief) == 0 && hvp_init(&w.p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&w.c, w.p.sock, 5000) == 0, "connect");
	for (n = 1; n <= WALK_MAX && st != CLV_E_BAD_TICKET && !t_failed_now; n++) {
		prepare(&w, &actions[3]); /* pinned and locked */
		CHECK(hvp_policy(&w.c, w.server, w.hv, ++w.counter, 0, 0, 1) == CLV_OK, "policy");
		bridge_close(&w.c);
		hvp_stop(&w.p, SIGTERM);
		snprintf(fault, sizeof(fault), "durable:%u", n);
		setenv("CLEAVE_HV_FAULT", fault, 1);
		CHECK(hvp_start(&w.p) == 0, "start with the fault");
		unsetenv("CLEAVE_HV_FAULT");
		CHECK(bridge_connect(&w.c, w.p.sock, 5000) == 0, "connect");
		hvp_ticket(thief, w.hv, "dev_ord", TICKET_UNLOCK, 1000 + n, 0, tk);
		st = bridge_call(&w.c, CLV_FN_UNLOCK, tk, TICKET_LEN, out, sizeof(out), &len);
		bridge_close(&w.c);
		hvp_stop(&w.p, SIGKILL);
		CHECK(hvp_start(&w.p) == 0 && bridge_connect(&w.c, w.p.sock, 5000) == 0, "restart");
		check_auto_wipe_once(&w, thief, n);
	}
	CHECK(st == CLV_E_BAD_TICKET && n - 2 >= 3, "auto-wipe: %u kill points", n - 2);
	printf("    failed-unlock auto-wipe: killed at each of %u durable operations; once\n",
	       n - 2);
	bridge_close(&w.c);
	ed25519_key_free(w.server);
	ed25519_key_free(thief);
	hvp_cleanup(&w.p);
}

#define WALK_CASE(i)                                                                               \
	static void test_hv_kill_walk_##i(void)                                                    \
	{                                                                                          \
		walk_action(&actions[i], "durable");                                               \
	}
WALK_CASE(0)
WALK_CASE(1)
WALK_CASE(2)
WALK_CASE(3)
WALK_CASE(4)
WALK_CASE(5)
WALK_CASE(6)

/* Orders that fail on a disk error are retried; policy and lease are refused, unchanged. */
#define FAIL_CASE(i)                                                                               \
	static void test_hv_fail_walk_##i(void)                                                    \
	{                                                                                          \
		walk_action(&actions[i], "durable-fail");                                          \
	}
FAIL_CASE(0)
FAIL_CASE(2)
FAIL_CASE(3)
FAIL_CASE(4)
FAIL_CASE(5)
FAIL_CASE(6)

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"hv_kill_walk_wipe", test_hv_kill_walk_0},
		{"hv_kill_walk_retire", test_hv_kill_walk_1},
		{"hv_kill_walk_lock", test_hv_kill_walk_2},
		{"hv_kill_walk_unlock", test_hv_kill_walk_3},
		{"hv_kill_walk_rekey", test_hv_kill_walk_4},
		{"hv_kill_walk_policy", test_hv_kill_walk_5},
		{"hv_kill_walk_lease", test_hv_kill_walk_6},
		{"hv_kill_walk_failed_unlock_wipe", test_hv_kill_walk_failed_unlock_wipe},
		{"hv_fail_walk_wipe", test_hv_fail_walk_0},
		{"hv_fail_walk_lock", test_hv_fail_walk_2},
		{"hv_fail_walk_unlock", test_hv_fail_walk_3},
		{"hv_fail_walk_rekey", test_hv_fail_walk_4},
		{"hv_fail_walk_policy", test_hv_fail_walk_5},
		{"hv_fail_walk_lease", test_hv_fail_walk_6},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

/*
 * The TPM's cost (issue 13 §4): the same operations with the file keystore and with swtpm, side
 * by side in one run, alternating which goes first, N rounds each:
 *   enroll   the whole server enrollment from the device's side: nonce request, attestation,
 *            POST /device/v1/enroll. File: the simulated device's Ed25519 key (testlib, what
 *            cleave-devsim does). TPM: tests/lib/tpmdev.h on a manufactured swtpm through
 *            cleave-hv's TPM layer (credential activated, v3 attestation signed by the AK,
 *            quote over PCR 23), the server checking the EK chain, quote and log.
 *   attest   CLV_FN_ATTEST over the bridge to a running cleave-hv (file, or --tpm).
 *   lock     a lock order end to end through the bridge: ticket checked, vCPU stopped, keys
 *            dropped, receipt signed (Ed25519 or in the TPM), verified here.
 *   unlock   an unlock order: the root key read (file) or unsealed by the TPM under its policy.
 *   wipe     a wipe order end to end (TPM: the wipe counter incremented, a new key sealed); and
 *            the receipt's own started..finished (cleave-hv's critical path).
 *   start    cleave-hv stopped (SIGTERM) and started again until its bridge answers and the
 *            corporate half is active (TPM: SRK and AK loaded, PCR 23 reset and extended, the
 *            state counter read, the root key unsealed).
 * Medians and p90 in milliseconds, and tpm/file ratios. Two swtpm processes: one behind
 * cleave-hv --tpm, one as the enrolling device's TPM (swtpm serves one connection at a time).
 * usage: tpm_bench [ROUNDS]   (default 20; CLEAVE_BIN or build/bin). Not part of make test.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge_msg.h"
#include "cleave_abi.h"
#include "hvproc.h"
#include "hvsig.h"
#include "swtpmtest.h"
#include "testlib.h"
#include "tpmdev.h"
#include "util.h"

enum { OP_ENROLL, OP_ATTEST, OP_LOCK, OP_UNLOCK, OP_WIPE, OP_WIPE_HV, OP_START, OP_COUNT };
static const char *const op_name[OP_COUNT] = {
	"enrollment (device side, whole)", "attestation (bridge ATTEST)",
	"lock order, receipt signed",      "unlock order (TPM: unseal)",
	"wipe order, end to end",          "wipe, cleave-hv's critical path",
	"cleave-hv start -> active",
};

/* One cleave-hv and the server key pinned in it. */
struct side {
	const char *name;
	struct hvproc hv;
	struct bridge_client c;
	struct ed25519_key *server;
	uint8_t hv_key[32];
	uint64_t counter, acked;
	double *t[OP_COUNT];
};

struct bench {
	struct srv s;
	struct client *admin, *dc;
	struct swtpm hv_tpm, dev_tpm;
	struct tdev d;
	char tok[128];
	struct side file, tpm;
	int rounds;
};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int
cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of n values; sorts v. */
static double
pct(double *v, int n, int p)
{
	int i = (p * n + 99) / 100 - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* The AK's SPKI from TPM_IDENTITY (its fourth part), for checking the TPM's receipts. */
static int
tpm_spki(struct bridge_client *c)
{
	static uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	size_t n = 0, off = 8, len[4];

	if (bridge_call(c, CLV_FN_TPM_IDENTITY, NULL, 0, buf, sizeof(buf), &n) != CLV_OK || n < 8)
		return -1;
	for (int i = 0; i < 4; i++) {
		len[i] = (size_t)buf[2 * i] | (size_t)buf[2 * i + 1] << 8;
		if (len[i] > n - off)
			return -1;
		off += i < 3 ? len[i] : 0;
	}
	hvp_tpm_key(buf + off, len[3]);
	return 0;
}

/* Connects to side's cleave-hv, and pins a fresh server key (after start or a wipe). */
static int
side_pin(struct side *sd)
{
	ed25519_key_free(sd->server);
	sd->server = NULL;
	sd->counter = 0;
	return hvp_pin_new(&sd->c, &sd->server, sd->hv_key) == CLV_OK ? 0 : -1;
}

static int
side_up(struct side *sd, const char *tcti)
{
	int n = 0;

	if (hvp_prepare(&sd->hv) != 0)
		return -1;
	if (tcti != NULL) {
		sd->hv.extra[n++] = "--tpm";
		sd->hv.extra[n++] = tcti;
	}
	sd->hv.extra[n++] = "--volume-size";
	sd->hv.extra[n++] = "8";
	if (hvp_start(&sd->hv) != 0 || bridge_connect(&sd->c, sd->hv.sock, 5000) != 0 ||
	    (tcti != NULL && tpm_spki(&sd->c) != 0))
		return -1;
	return side_pin(sd);
}

/* One order with a fresh ticket; the receipt acknowledged so none pile up. ms, or -1. */
static double
order(struct side *sd, uint32_t fid, uint16_t type, struct receipt *rc)
{
	uint8_t seq[8], buf[64];
	size_t n;
	double t0 = now_ms(), t;

	if (hvp_order(&sd->c, sd->server, sd->hv_key, fid, type, ++sd->counter, rc, NULL) != CLV_OK)
		return -1;
	t = now_ms() - t0;
	for (int i = 0; i < 8; i++)
		seq[i] = (uint8_t)(rc->seq >> (8 * i));
	(void)bridge_call(&sd->c, CLV_FN_RECEIPT_ACK, seq, sizeof(seq), buf, sizeof(buf), &n);
	return t;
}

/*
 * The TPM path's requests: identity, credential activated, attested, quoted, enrolled. 0 once
 * the enrollment was answered (its status in r), or -1.
 */
static int
enroll_tpm(struct bench *b, struct device_sim *sim, struct resp *r)
{
	struct tpm_quote q;
	uint8_t nonce[32], att[ATTEST_LEN];
	int ok = tdev_nonce_req(b->dc, b->tok, tdev_id(&b->d), r) == 0 && r->status == 200 &&
		 tdev_activate(&b->d, r, nonce) == 0;

	if (!ok)
		return -1;
	resp_free(r);
	memset(r, 0, sizeof(*r));
	return tdev_attest(&b->d, nonce, NULL, att) == 0 && tdev_quote(&b->d, att, &q) == 0 &&
			       tdev_enroll_req(b->dc, b->tok, nonce, sim, &b->d, att,
					       tdev_evidence(&b->d, &q, b->d.log, 2), r) == 0
		       ? 0
		       : -1;
}

/*
 * One enrollment of a fresh device: its hypervisor key in the TPM (tpm) or the simulated
 * device's Ed25519 key (what cleave-devsim does). ms, or -1.
 */
static double
enroll(struct bench *b, int tpm)
{
	struct device_sim sim;
	struct resp r = {0};
	double t0, t = -1;
	int rc;

	if (dev_init(&sim) != 0)
		return -1;
	t0 = now_ms();
	rc = tpm ? enroll_tpm(b, &sim, &r) : dev_enroll(&sim, b->dc, b->tok, &r);
	if (rc == 0 && r.status == 201)
		t = now_ms() - t0;
	else
		fprintf(stderr, "tpm_bench: %s enrollment: HTTP %ld %.300s\n", tpm ? "TPM" : "file",
			r.status, r.body ? r.body : "");
	resp_free(&r);
	dev_fini(&sim);
	return t;
}

/* The server trusting dev_tpm's maker, a token for every enrollment of the run. 0 or -1. */
static int
server_up(struct bench *b)
{
	char cas[PATH_MAX + 16], conf[PATH_MAX + 16];
	const char *extra[] = {"--config", conf, NULL};
	FILE *f;

	if (swtpm_ca_bundle(&b->dev_tpm, cas, sizeof(cas)) != 0 || srv_init(&b->s, "tpmbench") != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s", b->s.log); /* beside the log: data/ is the server's */
	str_copy(strrchr(conf, '/'), 16, "/cleave.conf");
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "tpm_ca_file = %s\n", cas);
	if (fclose(f) != 0 || srv_start(&b->s, extra) != 0)
		return -1;
	b->admin = client_new(&b->s, b->s.admin);
	b->dc = client_new(&b->s, NULL);
	if (b->admin == NULL || b->dc == NULL)
		return -1;
	return admin_etoken(b->admin, "bench@example.com", 2 * b->rounds + 2, b->tok,
			    sizeof(b->tok));
}

/* Stops side's cleave-hv and starts it again; ms until the corporate half is active, or -1. */
static double
restart(struct side *sd)
{
	uint64_t epoch;
	double t0;

	bridge_close(&sd->c);
	hvp_stop(&sd->hv, SIGTERM);
	t0 = now_ms();
	if (hvp_start(&sd->hv) != 0 || bridge_connect(&sd->c, sd->hv.sock, 5000) != 0)
		return -1;
	for (int i = 0; i < 10000; i++) {
		if (hvp_state(&sd->c, &epoch) == HV_STATE_ACTIVE)
			return now_ms() - t0;
		usleep(1000);
	}
	return -1;
}

/* The bridge operations of one round on one side, into slot r. 0 or -1. */
static int
side_ops(struct side *sd, int op, int r)
{
	uint8_t nonce[32] = {(uint8_t)r}, buf[512];
	struct receipt rc;
	double t0, t = -1;
	size_t n;

	switch (op) {
	case OP_ATTEST:
		t0 = now_ms();
		if (bridge_call(&sd->c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) == CLV_OK)
			t = now_ms() - t0;
		break;
	case OP_LOCK:
		t = order(sd, CLV_FN_LOCK, TICKET_LOCK, &rc);
		break;
	case OP_UNLOCK:
		t = order(sd, CLV_FN_UNLOCK, TICKET_UNLOCK, &rc);
		break;
	case OP_WIPE:
		/* a wipe forgets the enrollment: pin a fresh server key after it */
		t = order(sd, CLV_FN_WIPE, TICKET_WIPE, &rc);
		sd->t[OP_WIPE_HV][r] = (double)(rc.finished_ms - rc.started_ms);
		if (t >= 0 && side_pin(sd) != 0)
			t = -1;
		break;
	case OP_START:
		t = restart(sd);
		break;
	default:
		return -1;
	}
	sd->t[op][r] = t;
	if (t < 0)
		fprintf(stderr, "tpm_bench: %s: %s failed in round %d (see %s.log)\n", sd->name,
			op_name[op], r, sd->hv.dir);
	return t < 0 ? -1 : 0;
}

/* One round: every operation on both sides, the side that goes first alternating. */
static int
round_run(struct bench *b, int r)
{
	struct side *s[2] = {&b->file, &b->tpm};

	if (r % 2) {
		s[0] = &b->tpm;
		s[1] = &b->file;
	}
	for (int op = 0; op < OP_COUNT; op++) {
		if (op == OP_WIPE_HV)
			continue;
		for (int k = 0; k < 2; k++) {
			if (op == OP_ENROLL) {
				double t = enroll(b, s[k] == &b->tpm);

				s[k]->t[op][r] = t;
				if (t < 0)
					return -1;
			} else if (side_ops(s[k], op, r) != 0) {
				return -1;
			}
		}
	}
	return 0;
}

static void
report(struct bench *b, int n)
{
	printf("\n%-34s %9s %9s %9s %9s %8s %8s\n", "operation (ms), n rounds", "file p50",
	       "file p90", "tpm p50", "tpm p90", "p50 x", "p90 x");
	for (int op = 0; op < OP_COUNT; op++) {
		double f50 = pct(b->file.t[op], n, 50), f90 = pct(b->file.t[op], n, 90);
		double t50 = pct(b->tpm.t[op], n, 50), t90 = pct(b->tpm.t[op], n, 90);

		printf("%-34s %9.2f %9.2f %9.2f %9.2f %8.1f %8.1f\n", op_name[op], f50, f90, t50,
		       t90, f50 > 0 ? t50 / f50 : 0, f90 > 0 ? t90 / f90 : 0);
	}
	printf("(n = %d rounds; x = tpm / file, measured in the same run)\n", n);
}

/* The machine: CPU model, kernel, load, swtpm's version. */
static void
machine(const char *when)
{
	char line[256] = "";
	FILE *f;

	if (strcmp(when, "start") == 0) {
		(void)!system("grep -m1 'model name' /proc/cpuinfo; nproc; uname -sr; "
			      "swtpm --version 2>&1 | head -1");
	}
	f = fopen("/proc/loadavg", "r");
	if (f != NULL && fgets(line, sizeof(line), f) != NULL)
		printf("load average at %s: %s", when, line);
	if (f != NULL)
		fclose(f);
	fflush(stdout);
}

static int
setup(struct bench *b)
{
	if (swtpm_skip_reason() != NULL) {
		fprintf(stderr, "tpm_bench: %s\n", swtpm_skip_reason());
		return -1;
	}
	b->file.name = "file";
	b->tpm.name = "tpm";
	for (int op = 0; op < OP_COUNT; op++) {
		b->file.t[op] = calloc((size_t)b->rounds, sizeof(double));
		b->tpm.t[op] = calloc((size_t)b->rounds, sizeof(double));
		if (b->file.t[op] == NULL || b->tpm.t[op] == NULL)
			return -1;
	}
	if (swtpm_make(&b->hv_tpm, "bench-hv") != 0 || swtpm_start(&b->hv_tpm) != 0 ||
	    swtpm_make(&b->dev_tpm, "bench-dev") != 0 || swtpm_start(&b->dev_tpm) != 0)
		return -1;
	if (tdev_open(&b->d, &b->dev_tpm, "hv") != 0 || tdev_measure(&b->d) != 0) {
		fprintf(stderr, "tpm_bench: the enrolling device's TPM\n");
		return -1;
	}
	if (server_up(b) != 0) {
		fprintf(stderr, "tpm_bench: the server (see %s)\n", b->s.log);
		return -1;
	}
	if (side_up(&b->file, NULL) != 0 || side_up(&b->tpm, b->hv_tpm.tcti) != 0) {
		fprintf(stderr, "tpm_bench: cleave-hv (see %s.log, %s.log)\n", b->file.hv.dir,
			b->tpm.hv.dir);
		return -1;
	}
	return 0;
}

static void
teardown(struct bench *b)
{
	char cmd[2 * PATH_MAX + 16];
	struct side *s[2] = {&b->file, &b->tpm};

	for (int k = 0; k < 2; k++) {
		bridge_close(&s[k]->c);
		hvp_cleanup(&s[k]->hv);
		ed25519_key_free(s[k]->server);
		for (int op = 0; op < OP_COUNT; op++)
			free(s[k]->t[op]);
	}
	tdev_close_any();
	client_free(b->admin);
	client_free(b->dc);
	srv_cleanup(&b->s);
	swtpm_stop(&b->hv_tpm);
	swtpm_stop(&b->dev_tpm);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", b->hv_tpm.dir, b->dev_tpm.dir);
	(void)!system(cmd);
}

int
main(int argc, char **argv)
{
	static struct bench b;
	int n = 0;

	b.rounds = argc > 1 ? atoi(argv[1]) : 20;
	if (b.rounds < 2 || b.rounds > 1000) {
		fprintf(stderr, "usage: tpm_bench [ROUNDS 2..1000]\n");
		return 2;
	}
	machine("start");
	if (setup(&b) != 0) {
		fprintf(stderr, "tpm_bench: cannot start swtpm, the server and cleave-hv\n");
		teardown(&b);
		return 1;
	}
	while (n < b.rounds && round_run(&b, n) == 0) {
		n++;
		printf("round %d done\n", n);
		fflush(stdout);
	}
	machine("end");
	if (n > 0)
		report(&b, n);
	teardown(&b);
	return n == b.rounds ? 0 : 1;
}

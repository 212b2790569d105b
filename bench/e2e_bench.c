/*
 * End-to-end wipe latency: the real cleave-server, cleave-hv and cleave-agent on 127.0.0.1,
 * the agent online and parked in its long-poll check-in. For each round: enroll afresh (a wipe
 * releases the enrollment), wait until the agent is parked, POST the wipe as the admin, and
 * poll the command until it is completed with a verified receipt. Split into parts with the
 * hypervisor's own receipt times (same machine clock):
 *   delivery  POST -> cleave-hv starts the wipe (receipt started_ms)
 *   wipe      receipt started_ms -> finished_ms (intent, VM destroyed, keys, verify, provision)
 *   report    receipt finished_ms -> the server shows it completed and verified (5 ms polls)
 * usage: e2e_bench [ROUNDS]   (default 20; needs CLEAVE_BIN or build/bin)
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "b64.h"
#include "e2e.h"
#include "util.h"
#include "wire.h"

static int64_t
wall_ms(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

static int64_t
pct(int64_t *v, int n, int p)
{
	int i = (p * n + 99) / 100 - 1;

	qsort(v, (size_t)n, sizeof(*v), cmp_i64);
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Polls (5 ms) until the command is final; its JSON, or NULL after 30 s. */
static json_t *
poll_done(struct e2e *e, const char *id, int64_t *seen_ms)
{
	char path[160];

	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	for (int i = 0; i < 6000; i++) {
		json_t *j = e2e_get(e, path);
		const char *st = e2e_str(j, "status");

		if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0) {
			*seen_ms = wall_ms();
			return j;
		}
		json_decref(j);
		usleep(5000);
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	int rounds = argc > 1 ? atoi(argv[1]) : 20, n = 0;
	int64_t *tot, *del, *wipe, *rep;
	struct e2e e;
	char owner[64], id[64], agent_dir[PATH_MAX + 16];

	if (rounds < 1 || rounds > 1000) {
		fprintf(stderr, "usage: e2e_bench [ROUNDS 1..1000]\n");
		return 2;
	}
	tot = calloc((size_t)rounds, sizeof(int64_t));
	del = calloc((size_t)rounds, sizeof(int64_t));
	wipe = calloc((size_t)rounds, sizeof(int64_t));
	rep = calloc((size_t)rounds, sizeof(int64_t));
	if (!tot || !del || !wipe || !rep || e2e_up(&e, "e2e-bench", NULL) != 0 ||
	    e2e_policy(&e, "{\"offline\":{\"lock_after_hours\":72}}") != 0) {
		fprintf(stderr, "e2e_bench: cannot start the server and cleave-hv\n");
		return 1;
	}
	str_copy(agent_dir, sizeof(agent_dir), e.agent_dir);
	for (int r = 0; r < rounds; r++) {
		struct receipt rc;
		uint8_t raw[RECEIPT_LEN];
		int64_t t0, seen = 0;
		json_t *cmd;
		const char *b;

		/* a fresh enrollment each round: the previous wipe released the last one */
		snprintf(e.agent_dir, sizeof(e.agent_dir), "%s-%d", agent_dir, r);
		snprintf(owner, sizeof(owner), "bench%d@example.com", r);
		if (e2e_enroll(&e, owner) != 0 || e2e_agent_start(&e, NULL) != 0 ||
		    e2e_wait_reported(&e, "active", 20000) != 0) {
			fprintf(stderr, "e2e_bench: round %d: enrollment failed (see %s)\n", r,
				e.agent_log);
			break;
		}
		usleep(500000); /* let the check-in park */
		t0 = wall_ms();
		if (e2e_command(&e, "wipe", id, sizeof(id)) != 202 ||
		    (cmd = poll_done(&e, id, &seen)) == NULL) {
			fprintf(stderr, "e2e_bench: round %d: the wipe did not finish\n", r);
			break;
		}
		b = e2e_str(cmd, "receipt");
		if (!json_is_true(json_object_get(cmd, "verified")) ||
		    b64_decode(raw, sizeof(raw), b, strlen(b)) != RECEIPT_LEN ||
		    receipt_decode(raw, RECEIPT_LEN, &rc) != 0) {
			fprintf(stderr, "e2e_bench: round %d: no verified receipt\n", r);
			json_decref(cmd);
			break;
		}
		json_decref(cmd);
		tot[n] = seen - t0;
		del[n] = (int64_t)rc.started_ms - t0;
		wipe[n] = (int64_t)(rc.finished_ms - rc.started_ms);
		rep[n] = seen - (int64_t)rc.finished_ms;
		printf("round %2d: total %4lld ms = delivery %4lld + wipe %3lld + report %3lld\n",
		       r, (long long)tot[n], (long long)del[n], (long long)wipe[n],
		       (long long)rep[n]);
		fflush(stdout);
		n++;
		e2e_agent_stop(&e, SIGTERM);
	}
	if (n > 0) {
		printf("E2E rounds=%d total_p50_ms=%lld total_p99_ms=%lld delivery_p50_ms=%lld "
		       "delivery_p99_ms=%lld wipe_p50_ms=%lld wipe_p99_ms=%lld report_p50_ms=%lld "
		       "report_p99_ms=%lld\n",
		       n, (long long)pct(tot, n, 50), (long long)pct(tot, n, 99),
		       (long long)pct(del, n, 50), (long long)pct(del, n, 99),
		       (long long)pct(wipe, n, 50), (long long)pct(wipe, n, 99),
		       (long long)pct(rep, n, 50), (long long)pct(rep, n, 99));
	}
	e2e_down(&e);
	free(tot);
	free(del);
	free(wipe);
	free(rep);
	return n == rounds ? 0 : 1;
}

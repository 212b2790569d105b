/*
 * Several cleave-servers on one PostgreSQL database behind HAProxy (issue 10 §2, §3), for
 * integration tests: the servers share one keys directory and the first one's admin token,
 * and HAProxy from Debian's packages terminates TLS on 127.0.0.1 with its own certificate and
 * forwards each request, over TLS, round robin to one of them. Used by test_lb (simulated
 * devices) and test_lb_agent (the real agent and cleave-hv). Tests only.
 */
#ifndef CLEAVE_TEST_FARM_H
#define CLEAVE_TEST_FARM_H

#include <limits.h>
#include <sys/types.h>

#include "testlib.h"

#define FARM_HAPROXY "/usr/sbin/haproxy"
#define FARM_MAX     3

struct pgtest;

struct farm {
	struct srv s[FARM_MAX]; /* the servers, each with its own data directory */
	int n;
	struct srv lb; /* only url and cacert: what clients of the balancer need */
	char keys[PATH_MAX], work[PATH_MAX];
	pid_t haproxy;
	struct client *admin; /* through the balancer, with the first admin token */
	struct client *anon;  /* through the balancer, no token */
};

/*
 * Starts n (2..FARM_MAX) servers on one fresh database of pg, their balancer, and the two
 * clients. NULL when all is up, else why not (call farm_down either way).
 */
const char *farm_up(struct farm *f, int n, const char *tag, struct pgtest *pg);
/*
 * Stops the balancer and every server still running (gracefully: the case fails unless each
 * exits 0); removes the work directory unless the case failed (then says where its log is).
 */
void farm_down(struct farm *f);

/* The value of the unlabelled metric name in server s's /metrics, asked directly; -1 if none. */
long farm_metric(const struct srv *s, const char *name);
/* The parked polls each running server holds (0 for the others); their sum. */
long farm_parked(struct farm *f, long counts[FARM_MAX]);
/*
 * The index of the one server that holds a parked poll, waiting up to timeout_ms for exactly
 * one to hold some (servers already stopped are skipped); -1 when none or several do.
 */
int farm_parked_on(struct farm *f, int timeout_ms);

/* Skips the case without HAProxy; fails it (after farm_down) when the farm does not start. */
#define FARM_UP(f, n, tag, pg)                                                                     \
	do {                                                                                       \
		const char *why_;                                                                  \
		if (access(FARM_HAPROXY, X_OK) != 0)                                               \
			SKIP("HAProxy is not installed (scripts/deps.sh installs it)");            \
		why_ = farm_up(f, n, tag, pg);                                                     \
		if (why_ != NULL) {                                                                \
			farm_down(f);                                                              \
			CHECK(0, "%s", why_);                                                      \
		}                                                                                  \
	} while (0)

#endif

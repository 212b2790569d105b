/*
 * A simulated device that behaves as cleave-agent does with the commands it is given: takes
 * them in counter order, acknowledges and completes each, applies a policy ticket's version,
 * and reports what it applied at its next check-in. For tests and benchmarks of how orders,
 * policy changes above all, reach a fleet.
 */
#ifndef CLEAVE_AGENTSIM_H
#define CLEAVE_AGENTSIM_H

#include <jansson.h>
#include <stdint.h>

#include "testlib.h"

/* The policy a simulated agent applied, as it reports it. */
struct sim_applied {
	char name[64];
	int64_t version;
};

/* Acknowledges and completes one command of a check-in answer; a policy ticket is applied. */
int sim_run_command(struct device_sim *d, struct client *c, json_t *cmd, struct sim_applied *ap);

/* The check-in body reporting ap, waiting wait_s seconds. */
void sim_checkin_body(const struct sim_applied *ap, int wait_s, char *out, size_t cap);

/*
 * Checks in (wait 0, reporting what was applied) and runs what comes back, until the server has
 * nothing more: 0 then, 1 when a check-in says a policy is pending but sends nothing to apply,
 * -1 on transport or protocol trouble (or when the device is refused).
 */
int sim_settle(struct device_sim *d, struct client *c, struct sim_applied *ap);

#endif

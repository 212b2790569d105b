/*
 * Every case of test_server with cleave-server on PostgreSQL (--database postgresql://...):
 * enrollment, signed check-ins, commands and idempotency keys, long-poll wake-up, receipts,
 * expiry, restart and SIGKILL durability, the audit chain and its tamper check, policies,
 * health. Each case gets a fresh database in a private cluster (tests/lib/pgtest.h) started
 * here and removed at the end. Skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_SERVER_NO_MAIN
#include "test_server.c"

int
main(int argc, char **argv)
{
	const char *why = pgtest_skip_reason();
	struct pgtest pg;
	int rc;

	if (why != NULL) {
		printf("skipped: %s\n", why);
		return T_EXIT_SKIP;
	}
	if (pgtest_start(&pg) != 0) {
		printf("could not start a private PostgreSQL cluster\n");
		return 1;
	}
	env_pg = &pg;
	rc = t_run(server_cases, ARRAY_SIZE(server_cases), argc, argv);
	pgtest_stop(&pg);
	return rc;
}

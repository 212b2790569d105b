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
	return t_run_pg(server_cases, ARRAY_SIZE(server_cases), argc, argv, &env_pg);
}

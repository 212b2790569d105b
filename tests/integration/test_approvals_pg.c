/*
 * Every case of test_approvals with cleave-server on PostgreSQL, each on a fresh database of a
 * private cluster: there the parallel approvals of one request are separate transactions that
 * meet at the request's row lock, and exactly one queues the command. Skipped, with the
 * reason, when PostgreSQL is not installed.
 */
#define TEST_APPROVALS_NO_MAIN
#include "test_approvals.c"

int
main(int argc, char **argv)
{
	return t_run_pg(approval_cases, ARRAY_SIZE(approval_cases), argc, argv, &env_pg);
}

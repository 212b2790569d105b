/*
 * Every case of test_device_query with cleave-server on PostgreSQL: search by owner, model, id
 * and fingerprint prefix, sorts with keyset cursors, every compliance filter and the summary,
 * the command queue and bulk commands, each on a fresh database of a private cluster.
 * Skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_DQ_NO_MAIN
#include "test_device_query.c"

int
main(int argc, char **argv)
{
	return t_run_pg(dq_cases, ARRAY_SIZE(dq_cases), argc, argv, &env_pg);
}

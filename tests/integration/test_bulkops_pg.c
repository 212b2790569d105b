/*
 * Every case of test_bulkops with cleave-server on PostgreSQL, each on a fresh database of a
 * private cluster: there a cancel waits for the batch that holds the bulk's row, and the next
 * claim sees it canceled; and a cancel POSTed to a second server of the same database
 * (bulk_cancel_across_servers, skipped on SQLite). Skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_BULKOPS_NO_MAIN
#include "test_bulkops.c"

int
main(int argc, char **argv)
{
	return t_run_pg(bulkops_cases, ARRAY_SIZE(bulkops_cases), argc, argv, &env_pg);
}

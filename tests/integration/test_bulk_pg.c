/*
 * Every case of test_bulk with cleave-server on PostgreSQL, each on a fresh database of a
 * private cluster, and two servers working bulks on one database (bulk_two_servers, skipped
 * on SQLite). Skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_BULK_NO_MAIN
#include "test_bulk.c"

int
main(int argc, char **argv)
{
	return t_run_pg(bulk_cases, ARRAY_SIZE(bulk_cases), argc, argv, &env_pg);
}

/*
 * Every case of test_audit_query with cleave-server on PostgreSQL: audit filters and time
 * windows with cursor paging, the export, the verification's checkpoint, the API's headers and
 * per-policy device counts, each on a fresh database of a private cluster. Skipped, with the
 * reason, when PostgreSQL is not installed.
 */
#define TEST_AQ_NO_MAIN
#include "test_audit_query.c"

int
main(int argc, char **argv)
{
	return t_run_pg(aq_cases, sizeof(aq_cases) / sizeof(aq_cases[0]), argc, argv, &env_pg);
}

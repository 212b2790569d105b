/*
 * Every case of test_labels with cleave-server on PostgreSQL, each on a fresh database of a
 * private cluster. Skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_LABELS_NO_MAIN
#include "test_labels.c"

int
main(int argc, char **argv)
{
	return t_run_pg(labels_cases, ARRAY_SIZE(labels_cases), argc, argv, &env_pg);
}

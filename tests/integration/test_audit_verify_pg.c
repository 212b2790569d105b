/*
 * Every case of test_audit_verify with cleave-server on PostgreSQL: rows edited in the live
 * database above, at and below the verified anchor, what the incremental and the full
 * verification each report, and who may ask for a full one. A fresh database per case in a
 * private cluster; skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_VERIFY_NO_MAIN
#include "test_audit_verify.c"

int
main(int argc, char **argv)
{
	return t_run_pg(verify_cases, ARRAY_SIZE(verify_cases), argc, argv, &env_pg);
}

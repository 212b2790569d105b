/*
 * Every case of test_tpm_enroll with cleave-server on PostgreSQL, each on a fresh database of
 * a private cluster: the nonce's TPM binding (migration 0024) and the device's endorsement
 * (0023) go through the PostgreSQL store. Skipped, with the reason, when PostgreSQL is not
 * installed (or swtpm, per case).
 */
#define TEST_TPM_ENROLL_NO_MAIN
#include "test_tpm_enroll.c"

int
main(int argc, char **argv)
{
	return t_run_pg(tpm_enroll_cases, ARRAY_SIZE(tpm_enroll_cases), argc, argv, &env_pg);
}

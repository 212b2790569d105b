/*
 * Every case of test_policy_rollout with cleave-server on PostgreSQL: a change reaching each
 * follower through its own check-in, SIGKILL mid-rollout, the parked wake, the send-once rules
 * and changes racing check-ins and assigns. A fresh database per case in a private cluster;
 * skipped, with the reason, when PostgreSQL is not installed.
 */
#define TEST_ROLLOUT_NO_MAIN
#include "test_policy_rollout.c"

int
main(int argc, char **argv)
{
	return t_run_pg(rollout_cases, ARRAY_SIZE(rollout_cases), argc, argv, &env_pg);
}

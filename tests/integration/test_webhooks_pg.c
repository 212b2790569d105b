/*
 * Every case of test_webhooks with cleave-server on PostgreSQL, and two servers on one
 * database sharing the deliveries of one subscription: with the receiver down while both make
 * events, then up, every event arrives once, in order, signed, and never two at a time. A
 * fresh database per case in a private cluster; skipped, with the reason, when PostgreSQL is
 * not installed.
 */
#define TEST_HOOKS_NO_MAIN
#include "test_webhooks.c"

/* Starts f as one more server on lead's database, with lead's keys, token and settings. */
static int
env_follow(struct env *lead, struct env *f, const char *tag)
{
	const char *extra[] = {"--config", lead->conf, NULL};
	char cmd[PATH_MAX * 4];

	memset(f, 0, sizeof(*f));
	if (srv_init(&f->s, tag) != 0)
		return -1;
	snprintf(f->s.database, sizeof(f->s.database), "%s", lead->s.database);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && cp -a '%s/keys' '%s/' && cp '%s/admin-token' '%s/'", f->s.dir,
		 lead->s.dir, f->s.dir, lead->s.dir, f->s.dir);
	if (system(cmd) != 0 || srv_start(&f->s, extra) != 0)
		return -1;
	f->admin = client_new(&f->s, f->s.admin);
	f->anon = client_new(&f->s, NULL);
	return f->admin && f->anon ? 0 : -1;
}

static void
test_two_servers_one_subscription(void)
{
	struct env e[2];
	struct device_sim d[6];
	char want[12][96], why[256], owner[64], cmd[64];

	CHECK(env_up(&e[0], "hook-two", 1000, 2) == 0, "first server did not start");
	CHECK(env_follow(&e[0], &e[1], "hook-two-b") == 0, "second server did not start");
	CHECK(subscribe(&e[0], ORDER_EVENTS) == 201, "subscribe");
	/* Both servers make events (alternately) while the receiver is down. */
	for (int i = 0; i < 6; i++) {
		struct env *on = &e[i % 2];

		snprintf(owner, sizeof(owner), "two%d@example.com", i);
		CHECK(admin_enroll(on->admin, on->anon, &d[i], owner) == 0, "enroll");
		snprintf(want[2 * i], 96, "device.enrolled %s", d[i].id);
		CHECK(admin_command(on->admin, d[i].id, "lock", cmd, sizeof(cmd)) == 202, "lock");
		snprintf(want[2 * i + 1], 96, "command.queued %s", d[i].id);
	}
	sleep(2);
	CHECK(hookrx_up(e[0].rx) == 0, "receiver up");
	CHECK(hookrx_wait_ok(e[0].rx, 12, 30) == 0, "%zu of 12 events", hookrx_count_ok(e[0].rx));
	usleep(500000); /* a duplicate would come now */
	CHECK(check_received(&e[0], want, 12, why, sizeof(why)) == 0, "%s", why);
	CHECK(hookrx_count_ok(e[0].rx) == 12, "%zu deliveries of 12 events without a crash",
	      hookrx_count_ok(e[0].rx));
	CHECK(hookrx_max_inflight(e[0].rx) == 1, "%d deliveries of one subscription at once",
	      hookrx_max_inflight(e[0].rx));
	for (int i = 0; i < 6; i++)
		dev_fini(&d[i]);
	client_free(e[1].admin);
	client_free(e[1].anon);
	srv_cleanup(&e[1].s);
	env_down(&e[0]);
}

int
main(int argc, char **argv)
{
	struct t_case all[ARRAY_SIZE(hook_cases) + 1];

	memcpy(all, hook_cases, sizeof(hook_cases));
	all[ARRAY_SIZE(hook_cases)] =
		(struct t_case){"two_servers_one_subscription", test_two_servers_one_subscription};
	return t_run_pg(all, ARRAY_SIZE(all), argc, argv, &env_pg);
}

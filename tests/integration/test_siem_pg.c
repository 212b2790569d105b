/*
 * The audit stream with two cleave-servers on one PostgreSQL database (issue 11 §3): while
 * both run, exactly one sends (rsyslog receives every entry once, made through either
 * server); the sender killed with SIGKILL in the middle of a stream, the other one takes the
 * stream over once the lease ran out, from the stored position: no entry missing, repeats
 * only within the one batch in flight. rsyslog as in test_siem.c (tests/lib/siemtest.h);
 * skipped, with the reason, when PostgreSQL or rsyslog cannot run here.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgtest.h"
#include "siemtest.h"
#include "testlib.h"

#define BATCH 5

static struct pgtest *env_pg;

struct node {
	struct srv s;
	struct client *admin;
	char conf[PATH_MAX + 16];
};

/* Writes n's config (settings) beside its data directory and starts it. */
static int
node_start(struct node *n, const char *settings)
{
	const char *extra[] = {"--config", n->conf, NULL};
	FILE *f;

	snprintf(n->conf, sizeof(n->conf), "%.*s/server.conf", (int)strlen(n->s.dir) - 5, n->s.dir);
	f = fopen(n->conf, "w");
	if (f == NULL)
		return -1;
	fputs(settings, f);
	fclose(f);
	if (srv_start(&n->s, extra) != 0)
		return -1;
	n->admin = client_new(&n->s, n->s.admin);
	return n->admin ? 0 : -1;
}

/* b as a second server of a's deployment: a's database, keys and first admin token. */
static int
node_follow(struct node *a, struct node *b, const char *settings)
{
	char cmd[PATH_MAX * 4];

	if (srv_init(&b->s, "siempg") != 0)
		return -1;
	snprintf(b->s.database, sizeof(b->s.database), "%s", a->s.database);
	snprintf(cmd, sizeof(cmd),
		 "mkdir -p '%s' && cp -a '%s/keys' '%s/' && cp '%s/admin-token' '%s/'", b->s.dir,
		 a->s.dir, b->s.dir, a->s.dir, b->s.dir);
	return system(cmd) == 0 ? node_start(b, settings) : -1;
}

static void
node_down(struct node *n)
{
	client_free(n->admin);
	n->admin = NULL;
	srv_cleanup(&n->s);
}

static int
tokens(struct node *n, int count)
{
	char tok[128];

	for (int i = 0; i < count; i++)
		if (admin_token(n->admin, "auditor", tok, sizeof(tok)) != 0)
			return -1;
	return 0;
}

/* The process id in the stream's holder ("host/pid/random"); 0 when none. */
static long long
holder_pid(struct node *n)
{
	return pgtest_int(n->s.database,
			  "SELECT coalesce((SELECT split_part(holder, '/', 2)::bigint FROM "
			  "siem_streams WHERE name = 'siem'), 0)");
}

static void
test_one_sender_and_take_over(void)
{
	const char *why = collector_skip_reason();
	struct node n[2];
	struct collector rs;
	char settings[PATH_MAX + 256];
	struct node *holder, *other;
	long long pid;

	if (why != NULL)
		SKIP("%s", why);
	memset(n, 0, sizeof(n));
	memset(&rs, 0, sizeof(rs));
	CHECK(srv_init(&n[0].s, "siempg") == 0 && srv_use_pg(&n[0].s, env_pg) == 0, "setup");
	CHECK(collector_init(&rs, 0) == 0 && collector_start(&rs) == 0, "rsyslog");
	collector_settings(&rs, settings, sizeof(settings) - 128);
	strcat(settings, "siem_batch = 5\nsiem_hold_ms = 150\nsiem_lease_seconds = 2\n"
			 "siem_max_backoff_seconds = 1\n");
	CHECK(node_start(&n[0], settings) == 0, "server A did not start");
	CHECK(node_follow(&n[0], &n[1], settings) == 0, "server B did not start");

	/* Both running, entries made through both: every one arrives once. */
	CHECK(tokens(&n[0], 6) == 0 && tokens(&n[1], 6) == 0, "entries");
	CHECK(collector_wait_stream(&rs, n[1].admin, 0, 0, 20) == 0, "the stream of two servers");
	pid = holder_pid(&n[0]);
	CHECK(pid == n[0].s.pid || pid == n[1].s.pid, "the holder %lld is neither server", pid);
	holder = pid == n[0].s.pid ? &n[0] : &n[1];
	other = holder == &n[0] ? &n[1] : &n[0];

	/* The sender killed halfway through 60 entries: the other one goes on from its place. */
	CHECK(tokens(other, 60) == 0, "entries");
	for (int i = 0; i < 400 && collector_lines(rs.out) < 30; i++)
		usleep(10000);
	CHECK(collector_lines(rs.out) < 73, "the stream was over before the kill");
	CHECK(srv_stop(&holder->s, SIGKILL) >= 0, "kill");
	CHECK(collector_wait_stream(&rs, other->admin, BATCH, 1, 40) == 0,
	      "the stream after the take-over");
	CHECK(holder_pid(other) == other->s.pid, "the survivor does not hold the stream");
	printf("    %d messages for 73 entries\n", collector_lines(rs.out));
	collector_stop(&rs);
	node_down(&n[1]);
	node_down(&n[0]);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"one_sender_and_take_over", test_one_sender_and_take_over},
	};

	return t_run_pg(cases, sizeof(cases) / sizeof(cases[0]), argc, argv, &env_pg);
}

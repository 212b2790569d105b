/*
 * Two cleave-servers on one PostgreSQL database racing where one server alone could not (issue
 * 10): both servers' one-time setup codes used at once make one first admin, not two (the
 * "no admin yet" check and the insert are one transaction holding the admins lock); and the
 * same hypervisor re-enrolling on A, which retires its two older active records, while B
 * queues commands for one of them, never deadlocks (enrollment takes the device rows before
 * the audit head, the documented lock order): every request succeeds or is refused for a
 * reason, and PostgreSQL counts no deadlock. Includes test_wake_pg.c for its helpers.
 * Skipped, with the reason, without PostgreSQL.
 */
#define TEST_WAKE_NO_MAIN
#include "test_wake_pg.c"

#include <stdatomic.h>
#include <sys/stat.h>

#define SETUP_PASSWORD "correct horse battery"

/* The one-time code in DATA/admin-setup of server e (its first line) into out. 0 or -1. */
static int
setup_code(struct env *e, char *out, size_t cap)
{
	char path[PATH_MAX + 16];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/admin-setup", e->s.dir);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	ok = fgets(out, (int)cap, f) != NULL;
	fclose(f);
	out[strcspn(out, "\n")] = '\0';
	return ok && strncmp(out, "clv_su_", 7) == 0 ? 0 : -1;
}

struct setup_call {
	struct env *on;
	char code[128];
	char email[64];
	long status;
};

static void *
setup_thread(void *p)
{
	struct setup_call *s = p;
	struct client *c = client_new(&s->on->s, NULL);
	char body[512];
	struct resp r;

	snprintf(body, sizeof(body),
		 "{\"code\":\"%s\",\"email\":\"%s\",\"display_name\":\"First\",\"password\":"
		 "\"%s\"}",
		 s->code, s->email, SETUP_PASSWORD);
	s->status = -1;
	if (c != NULL && client_req(c, "POST", "/api/v1/setup", body, NULL, &r) == 0) {
		s->status = r.status;
		resp_free(&r);
	}
	client_free(c);
	return NULL;
}

static void
test_setup_codes_race_one_admin(void)
{
	struct env e[2];
	struct setup_call sc[2];
	pthread_t t[2];
	char path[PATH_MAX + 16];
	struct stat sb;
	int created = 0, refused = 0;

	CHECK(fleet_up(e, 2, "setup-race") == 0, "two servers on one database did not start");
	for (int i = 0; i < 2; i++) {
		memset(&sc[i], 0, sizeof(sc[i]));
		sc[i].on = &e[i];
		snprintf(sc[i].email, sizeof(sc[i].email), "first%d@example.com", i);
		CHECK(setup_code(&e[i], sc[i].code, sizeof(sc[i].code)) == 0,
		      "server %d made no setup code", i);
	}
	CHECK(strcmp(sc[0].code, sc[1].code) != 0, "both servers made the same code");
	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&t[i], NULL, setup_thread, &sc[i]) == 0, "thread");
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		created += sc[i].status == 201;
		refused += sc[i].status == 409;
	}
	CHECK(created == 1 && refused == 1, "setup answered %ld and %ld, want one 201 and one 409",
	      sc[0].status, sc[1].status);
	CHECK(pgtest_int(e[0].s.database, "SELECT count(*) FROM admins") == 1,
	      "%lld admin accounts after the race",
	      pgtest_int(e[0].s.database, "SELECT count(*) FROM admins"));
	/* The loser's code is void: its file is gone and the code no longer works. */
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/admin-setup", e[i].s.dir);
		CHECK(stat(path, &sb) != 0, "server %d still has a setup file", i);
	}
	fleet_down(e, 2);
}

struct hammer {
	struct env *on;
	const char *device;
	atomic_int *stop;
	atomic_int accepted;
	int retired, bad;
	long bad_status;
};

/* Queues refresh commands for one device on one server until told to stop. */
static void *
hammer_thread(void *p)
{
	struct hammer *h = p;
	struct client *c = client_new(&h->on->s, h->on->s.admin);

	for (int i = 0; c != NULL && i < 2000 && !atomic_load(h->stop); i++) {
		long st = admin_command(c, h->device, "refresh", NULL, 0);

		if (st == 202)
			atomic_fetch_add(&h->accepted, 1);
		else if (st == 409)
			h->retired++; /* superseded meanwhile: it takes no more commands */
		else if (h->bad++ == 0)
			h->bad_status = st;
	}
	client_free(c);
	return NULL;
}

static long long
deadlocks(struct env *e)
{
	return pgtest_int(e->s.database, "SELECT deadlocks FROM pg_stat_database WHERE datname = "
					 "current_database()");
}

/*
 * One round: records o1 and o2 active with the same hypervisor key (o2's key set to o1's, as
 * two enrollments of one hypervisor that raced would leave them), commands for o2 queued on B
 * while the hypervisor enrolls again on A. 0, or -1 with why filled.
 */
static int
supersede_round(struct env *e, struct client *dca, int round, char *why, size_t cap)
{
	struct device_sim o1, o2, again;
	struct hammer h;
	atomic_int stop = 0;
	char sql[256], tok[128];
	pthread_t t;
	struct resp r;
	long st = -1;
	int rc = -1;

	memset(&again, 0, sizeof(again));
	if (enroll_one(&e[0], dca, &o1, "old@example.com") != 0 ||
	    enroll_one(&e[0], dca, &o2, "old@example.com") != 0 || dev_init(&again) != 0) {
		snprintf(why, cap, "round %d: enrollments before the race", round);
		return -1;
	}
	snprintf(sql, sizeof(sql),
		 "UPDATE devices SET hv_key = (SELECT hv_key FROM devices WHERE id = '%s') "
		 "WHERE id = '%s'",
		 o1.id, o2.id);
	ed25519_key_free(again.hv);
	again.hv = o1.hv; /* borrowed: the same hypervisor */
	h = (struct hammer){.on = &e[1], .device = o2.id, .stop = &stop};
	if (pgtest_exec(e[0].s.database, sql) != 0 ||
	    admin_etoken(e[0].admin, "old@example.com", 1, tok, sizeof(tok)) != 0 ||
	    pthread_create(&t, NULL, hammer_thread, &h) != 0) {
		snprintf(why, cap, "round %d: setting the race up", round);
		goto out;
	}
	/* The commands flow before the enrollment starts (bounded: 5 s), then a while longer. */
	for (int i = 0; i < 500 && atomic_load(&h.accepted) == 0; i++)
		usleep(10000);
	usleep(20000 + round * 20000);
	if (dev_enroll(&again, dca, tok, &r) == 0)
		st = r.status;
	resp_free(&r);
	usleep(100000);
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
	if (st != 201)
		snprintf(why, cap, "round %d: the re-enrollment answered %ld", round, st);
	else if (h.bad != 0)
		snprintf(why, cap, "round %d: %d commands answered neither 202 nor 409 (first %ld)",
			 round, h.bad, h.bad_status);
	else if (atomic_load(&h.accepted) == 0)
		snprintf(why, cap, "round %d: no command was queued during the race", round);
	else
		rc = 0;
out:
	again.hv = NULL;
	dev_fini(&again);
	dev_fini(&o1);
	dev_fini(&o2);
	return rc;
}

static void
test_reenroll_supersede_against_commands(void)
{
	struct env e[2];
	struct client *dca = NULL;
	char why[256];
	long long before;

	CHECK(fleet_up(e, 2, "supersede-race") == 0, "two servers on one database did not start");
	dca = client_new(&e[0].s, NULL);
	before = deadlocks(&e[0]);
	for (int round = 0; round < 6; round++)
		CHECK(supersede_round(e, dca, round, why, sizeof(why)) == 0, "%s", why);
	/* The statistics collector may lag; give it a moment before reading "none". */
	usleep(600000);
	CHECK(deadlocks(&e[0]) == before, "PostgreSQL broke %lld deadlocks",
	      deadlocks(&e[0]) - before);
	CHECK(pgtest_int(e[0].s.database,
			 "SELECT count(*) FROM devices WHERE status = 'active' AND superseded_by "
			 "<> ''") == 0,
	      "a superseded record is still active");
	client_free(dca);
	fleet_down(e, 2);
}

static const struct t_case race_cases[] = {
	{"setup_codes_race_one_admin", test_setup_codes_race_one_admin},
	{"reenroll_supersede_against_commands", test_reenroll_supersede_against_commands},
};

int
main(int argc, char **argv)
{
	(void)server_cases;
	(void)wake_cases;
	return t_run_pg(race_cases, ARRAY_SIZE(race_cases), argc, argv, &env_pg);
}

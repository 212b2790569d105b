/*
 * Policy rollout (issue 10 §0): a policy change writes only the policy's new version, and each
 * device gets its own signed policy command at its next check-in. These tests drive the real
 * server with simulated devices that behave as agents do (take commands in counter order,
 * acknowledge, report the result, report what they applied at the next check-in) and check
 * that every follower ends on the latest version: after the server is killed with SIGKILL in
 * the middle of a rollout or of the change itself, and with policy changes, assigns and
 * check-ins racing each other. Retired devices get nothing; the audit log has one entry per
 * change, not one per device.
 */
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agentsim.h"
#include "testlib.h"
#include "util.h"

/* The private PostgreSQL cluster when test_policy_rollout_pg runs these cases; NULL on SQLite. */
static struct pgtest *env_pg;

struct fleet {
	struct srv s;
	struct client *admin;
	size_t n;
	struct device_sim *dev;
	struct sim_applied *ap;
};

static int
fleet_up(struct fleet *f, const char *tag, size_t n)
{
	memset(f, 0, sizeof(*f));
	f->dev = calloc(n, sizeof(*f->dev));
	f->ap = calloc(n, sizeof(*f->ap));
	f->n = n;
	if (f->dev == NULL || f->ap == NULL || srv_init(&f->s, tag) != 0 ||
	    srv_use_pg(&f->s, env_pg) != 0 || srv_start(&f->s, NULL) != 0)
		return -1;
	f->admin = client_new(&f->s, f->s.admin);
	return f->admin ? 0 : -1;
}

static void
fleet_down(struct fleet *f)
{
	client_free(f->admin);
	for (size_t i = 0; i < f->n; i++)
		if (f->dev[i].id[0])
			dev_fini(&f->dev[i]);
	free(f->dev);
	free(f->ap);
	srv_cleanup(&f->s);
}

static long
put_policy(struct client *admin, const char *name, int lock_hours)
{
	char path[128], body[128];
	struct resp r;
	long st;

	snprintf(path, sizeof(path), "/api/v1/policies/%s", name);
	snprintf(body, sizeof(body),
		 "{\"offline\":{\"lock_after_hours\":%d,\"wipe_after_days\":30}}", lock_hours);
	if (client_req(admin, "PUT", path, body, NULL, &r) != 0)
		return -1;
	st = r.status;
	resp_free(&r);
	return st;
}

/* Every listed device settles; the check that each ended on its effective policy follows. */
static int
settle_all(struct fleet *f)
{
	struct client *c = client_new(&f->s, NULL);
	int bad = 0;

	for (size_t i = 0; c != NULL && i < f->n; i++)
		if (f->dev[i].id[0] && sim_settle(&f->dev[i], c, &f->ap[i]) != 0)
			bad++;
	client_free(c);
	return c == NULL ? -1 : bad;
}

/*
 * Each device's record shows what it applied, and that is its effective policy's current
 * version; returns how many differ (printing the first few).
 */
static int
check_applied(struct fleet *f)
{
	int bad = 0;

	for (size_t i = 0; i < f->n; i++) {
		char path[128];
		json_t *j, *p;
		long st;

		if (!f->dev[i].id[0])
			continue;
		snprintf(path, sizeof(path), "/api/v1/devices/%s", f->dev[i].id);
		j = client_get_json(f->admin, path, &st);
		p = j ? json_object_get(j, "policy") : NULL;
		if (p == NULL || json_string_value(json_object_get(p, "effective")) == NULL ||
		    strcmp(json_string_value(json_object_get(p, "effective")), f->ap[i].name) !=
			    0 ||
		    json_integer_value(json_object_get(p, "effective_version")) !=
			    f->ap[i].version ||
		    json_integer_value(json_object_get(p, "applied_version")) != f->ap[i].version) {
			char *txt = p ? json_dumps(p, JSON_COMPACT) : NULL;

			if (bad++ < 3)
				printf("    %s applied %s v%lld; server: %s\n", f->dev[i].id,
				       f->ap[i].name, (long long)f->ap[i].version,
				       txt ? txt : "(no record)");
			free(txt);
		}
		json_decref(j);
	}
	return bad;
}

static int
enroll_fleet(struct fleet *f, size_t n)
{
	struct client *anon = client_new(&f->s, NULL);
	char owner[64];
	int r = anon ? 0 : -1;

	for (size_t i = 0; r == 0 && i < n; i++) {
		snprintf(owner, sizeof(owner), "user%zu@example.com", i);
		r = admin_enroll(f->admin, anon, &f->dev[i], owner);
	}
	client_free(anon);
	return r;
}

/* Count of audit entries with this action (the log is small here: one page). */
static int
audit_count(struct client *admin, const char *action)
{
	char path[128];
	json_t *j;
	long st;
	int n;

	snprintf(path, sizeof(path), "/api/v1/audit?action=%s&limit=200", action);
	j = client_get_json(admin, path, &st);
	n = j ? (int)json_array_size(json_object_get(j, "items")) : -1;
	json_decref(j);
	return n;
}

/* Restarts the server after a SIGKILL; clients of the old address are replaced. */
static int
restart_killed(struct fleet *f)
{
	if (srv_stop(&f->s, SIGKILL) != 128 + SIGKILL || srv_start(&f->s, NULL) != 0)
		return -1;
	client_free(f->admin);
	f->admin = client_new(&f->s, f->s.admin);
	return f->admin ? 0 : -1;
}

struct put_arg {
	struct client *admin;
	long status;
};

static void *
put_thread(void *p)
{
	struct put_arg *a = p;

	a->status = put_policy(a->admin, "standard", 3);
	return NULL;
}

#define KILL_FLEET 40

static void
test_kill_mid_rollout(void)
{
	struct fleet f;
	struct client *dc;
	struct put_arg pa;
	pthread_t th;
	char retired[64], path[160];
	int creates;
	json_t *j;
	long st;

	CHECK(fleet_up(&f, "rollkill", KILL_FLEET + 1) == 0, "server did not start");
	CHECK(put_policy(f.admin, "standard", 1) == 201, "policy v1");
	CHECK(enroll_fleet(&f, KILL_FLEET + 1) == 0, "enroll");
	CHECK(settle_all(&f) == 0, "devices did not take v1");
	CHECK(check_applied(&f) == 0, "v1 not applied everywhere");
	/* The last device is retired before the change: it must get nothing from it. */
	CHECK(admin_command(f.admin, f.dev[KILL_FLEET].id, "retire", retired, sizeof(retired)) ==
		      202,
	      "retire");
	dc = client_new(&f.s, NULL);
	CHECK(sim_settle(&f.dev[KILL_FLEET], dc, &f.ap[KILL_FLEET]) != 1, "retire run");
	client_free(dc);
	snprintf(path, sizeof(path), "/api/v1/devices/%s", f.dev[KILL_FLEET].id);
	j = client_get_json(f.admin, path, &st);
	CHECK(j && strcmp(json_string_value(json_object_get(j, "status")), "retired") == 0,
	      "device not retired");
	json_decref(j);

	/* v2, half the fleet takes it, then SIGKILL in the middle of the rollout. */
	creates = audit_count(f.admin, "command.create");
	CHECK(put_policy(f.admin, "standard", 2) == 200, "policy v2");
	dc = client_new(&f.s, NULL);
	for (size_t i = 0; i < KILL_FLEET / 2; i++)
		CHECK(sim_settle(&f.dev[i], dc, &f.ap[i]) == 0, "device %zu before the kill", i);
	client_free(dc);
	CHECK(restart_killed(&f) == 0, "restart after SIGKILL");

	/* v3, and SIGKILL while that change is being answered: it happened or it did not. */
	pa.admin = f.admin;
	pa.status = 0;
	CHECK(pthread_create(&th, NULL, put_thread, &pa) == 0, "thread");
	usleep(3000);
	CHECK(srv_stop(&f.s, SIGKILL) == 128 + SIGKILL, "kill during the change");
	pthread_join(th, NULL);
	CHECK(srv_start(&f.s, NULL) == 0, "restart");
	client_free(f.admin);
	f.admin = client_new(&f.s, f.s.admin);
	printf("    the change killed mid-request was answered %ld\n", pa.status);

	/* Every active follower ends on the current version, whichever it is. */
	f.n = KILL_FLEET; /* the retired one is checked below */
	CHECK(settle_all(&f) == 0, "a device did not settle after the restarts");
	CHECK(check_applied(&f) == 0, "a device is not on the current version");
	f.n = KILL_FLEET + 1;
	j = client_get_json(f.admin, "/api/v1/policies/standard", &st);
	CHECK(j != NULL, "policy get");
	printf("    all %d followers on standard v%lld\n", KILL_FLEET,
	       (long long)json_integer_value(json_object_get(j, "version")));
	CHECK(f.ap[0].version == json_integer_value(json_object_get(j, "version")), "version");
	json_decref(j);
	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?status=queued",
		 f.dev[KILL_FLEET].id);
	j = client_get_json(f.admin, path, &st);
	CHECK(j && json_array_size(json_object_get(j, "items")) == 0,
	      "the retired device was given a command");
	json_decref(j);
	/* One audit entry per change, none per device (only the retire was a command.create). */
	CHECK(audit_count(f.admin, "command.create") == creates, "per-device audit entries");
	CHECK(audit_count(f.admin, "policy.put") == (int)f.ap[0].version, "policy.put entries");
	j = client_get_json(f.admin, "/api/v1/audit/verify", &st);
	CHECK(st == 200, "audit verify");
	json_decref(j);
	fleet_down(&f);
}

struct park_arg {
	struct fleet *f;
	struct resp r;
	double took;
	int rc;
};

static void *
park_thread(void *p)
{
	struct park_arg *a = p;
	struct client *c = client_new(&a->f->s, NULL);
	double t0 = now_s();
	char body[160];

	sim_checkin_body(&a->f->ap[0], 20, body, sizeof(body));
	a->rc = c ? dev_req(&a->f->dev[0], c, "POST", "/device/v1/checkin", body, 0, &a->r) : -1;
	a->took = now_s() - t0;
	client_free(c);
	return NULL;
}

/* A device parked in its long poll is answered with its new policy command when it changes. */
static void
test_parked_device_woken(void)
{
	struct fleet f;
	struct park_arg pa;
	pthread_t th;
	json_t *j, *cmd;

	CHECK(fleet_up(&f, "rollwake", 1) == 0, "server did not start");
	CHECK(put_policy(f.admin, "standard", 1) == 201, "policy v1");
	CHECK(enroll_fleet(&f, 1) == 0, "enroll");
	CHECK(settle_all(&f) == 0 && check_applied(&f) == 0, "v1");
	memset(&pa, 0, sizeof(pa));
	pa.f = &f;
	CHECK(pthread_create(&th, NULL, park_thread, &pa) == 0, "thread");
	usleep(500000); /* parked by now (a check-in answers in milliseconds here) */
	CHECK(put_policy(f.admin, "standard", 2) == 200, "policy v2");
	pthread_join(th, NULL);
	CHECK(pa.rc == 0 && pa.r.status == 200, "parked check-in: %d %ld", pa.rc, pa.r.status);
	CHECK(pa.took < 2.0, "woken after %.2f s, not at once", pa.took);
	j = resp_json(&pa.r);
	cmd = json_array_get(json_object_get(j, "commands"), 0);
	CHECK(cmd && strcmp(json_string_value(json_object_get(cmd, "type")), "policy") == 0,
	      "no policy command in the answer");
	CHECK(sim_run_command(&f.dev[0], f.admin, cmd, &f.ap[0]) == 0 && f.ap[0].version == 2,
	      "the command is not v2");
	json_decref(j);
	resp_free(&pa.r);
	CHECK(settle_all(&f) == 0 && check_applied(&f) == 0, "v2 applied");
	fleet_down(&f);
}

/* The newest policy command for the version, as (id, status); 0 when there is one. */
static int
policy_command_of(struct fleet *f, size_t i, char *id, char *status)
{
	char path[160];
	json_t *j, *v;
	size_t k;
	long st;

	id[0] = '\0';
	snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?limit=200", f->dev[i].id);
	j = client_get_json(f->admin, path, &st);
	json_array_foreach(json_object_get(j, "items"), k, v)
	{
		if (strcmp(json_string_value(json_object_get(v, "type")), "policy") != 0)
			continue;
		str_copy(id, 64, json_string_value(json_object_get(v, "id")));
		str_copy(status, 16, json_string_value(json_object_get(v, "status")));
	}
	json_decref(j);
	return id[0] ? 0 : -1;
}

static int
db_exec(struct fleet *f, const char *sql)
{
	return srv_db_exec(&f->s, sql);
}

/*
 * A version is sent once: a canceled command for it is not sent again (the admin meant it), an
 * expired one is (the device was away past the command's life), a newer version always is.
 */
static void
test_version_sent_once(void)
{
	struct fleet f;
	struct client *dc;
	char id[64], status[16], first[64], sql[256];
	struct resp r;

	CHECK(fleet_up(&f, "rollonce", 1) == 0, "server did not start");
	CHECK(put_policy(f.admin, "standard", 1) == 201, "policy v1");
	CHECK(enroll_fleet(&f, 1) == 0, "enroll");
	dc = client_new(&f.s, NULL);
	CHECK(sim_settle(&f.dev[0], dc, &f.ap[0]) == 0 && f.ap[0].version == 1, "v1");
	/* v2, queued at once by an assign, canceled by the admin before the device saw it. */
	CHECK(put_policy(f.admin, "standard", 2) == 200, "policy v2");
	snprintf(sql, sizeof(sql), "/api/v1/devices/%s/policy", f.dev[0].id);
	CHECK(client_req(f.admin, "PUT", sql, "{\"policy\":\"standard\"}", NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(policy_command_of(&f, 0, first, status) == 0 && strcmp(status, "queued") == 0,
	      "the assign queued no command");
	snprintf(sql, sizeof(sql), "/api/v1/commands/%s/cancel", first);
	CHECK(client_req(f.admin, "POST", sql, "{}", NULL, &r) == 0, "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(sim_settle(&f.dev[0], dc, &f.ap[0]) == 1, "a canceled version was sent again");
	CHECK(f.ap[0].version == 1, "applied %lld", (long long)f.ap[0].version);
	/* v3 is new: sent. Then its command expires unanswered (as past its life): sent again. */
	CHECK(put_policy(f.admin, "standard", 3) == 200, "policy v3");
	CHECK(dev_req(&f.dev[0], dc, "POST", "/device/v1/checkin", "{\"wait\":0}", 0, &r) == 0,
	      "tx");
	CHECK_STATUS(r, 200);
	resp_free(&r);
	CHECK(policy_command_of(&f, 0, first, status) == 0 && strcmp(status, "delivered") == 0,
	      "v3 not delivered");
	snprintf(sql, sizeof(sql), "UPDATE commands SET expires_at = 1 WHERE id = '%s'", first);
	CHECK(db_exec(&f, sql) == 0, "sql");
	for (int i = 0; i < 50 && strcmp(status, "expired") != 0; i++) {
		usleep(100000); /* the server's tick expires it within a second */
		policy_command_of(&f, 0, id, status);
	}
	CHECK(strcmp(status, "expired") == 0, "the command did not expire");
	CHECK(sim_settle(&f.dev[0], dc, &f.ap[0]) == 0 && f.ap[0].version == 3, "v3 not resent");
	CHECK(policy_command_of(&f, 0, id, status) == 0 && strcmp(id, first) != 0 &&
		      strcmp(status, "completed") == 0,
	      "a new command for v3");
	CHECK(check_applied(&f) == 0, "v3 applied");
	client_free(dc);
	fleet_down(&f);
}

/* ---- changes racing check-ins and assigns ---- */

#define RACE_FLEET   12
#define RACE_CHANGES 24

struct race {
	struct fleet *f;
	atomic_int stop;
	atomic_int errors;
};

static void *
changer(void *p)
{
	struct race *rc = p;
	struct client *c = client_new(&rc->f->s, rc->f->s.admin);

	for (int k = 0; c && k < RACE_CHANGES; k++) {
		long st = put_policy(c, k % 2 ? "kiosk" : "standard", 4 + k);

		if (st != 200 && st != 201)
			atomic_fetch_add(&rc->errors, 1);
		usleep(20000);
	}
	client_free(c);
	atomic_store(&rc->stop, 1);
	return NULL;
}

static void *
assigner(void *p)
{
	static const char *const bodies[] = {"{\"policy\":\"kiosk\"}", "{\"policy\":\"standard\"}",
					     "{\"policy\":null}"};
	struct race *rc = p;
	struct client *c = client_new(&rc->f->s, rc->f->s.admin);
	unsigned k = 0;

	while (c && !atomic_load(&rc->stop)) {
		char path[128];
		struct resp r;

		snprintf(path, sizeof(path), "/api/v1/devices/%s/policy",
			 rc->f->dev[(k * 7) % RACE_FLEET].id);
		if (client_req(c, "PUT", path, bodies[k % 3], NULL, &r) != 0 || r.status != 200)
			atomic_fetch_add(&rc->errors, 1);
		resp_free(&r);
		k++;
		usleep(7000);
	}
	client_free(c);
	return NULL;
}

struct settler {
	struct race *rc;
	size_t from, to;
};

static void *
settler(void *p)
{
	struct settler *sa = p;
	struct fleet *f = sa->rc->f;
	struct client *c = client_new(&f->s, NULL);

	while (c && !atomic_load(&sa->rc->stop))
		for (size_t i = sa->from; i < sa->to; i++)
			if (sim_settle(&f->dev[i], c, &f->ap[i]) < 0)
				atomic_fetch_add(&sa->rc->errors, 1);
	client_free(c);
	return NULL;
}

static void
test_changes_race_checkins_and_assigns(void)
{
	struct fleet f;
	struct race rc = {.f = &f};
	struct settler sa[2] = {{&rc, 0, RACE_FLEET / 2}, {&rc, RACE_FLEET / 2, RACE_FLEET}};
	pthread_t th[4];
	json_t *j;
	long st;

	CHECK(fleet_up(&f, "rollrace", RACE_FLEET) == 0, "server did not start");
	CHECK(put_policy(f.admin, "standard", 1) == 201, "standard");
	CHECK(put_policy(f.admin, "kiosk", 1) == 201, "kiosk");
	CHECK(enroll_fleet(&f, RACE_FLEET) == 0, "enroll");
	CHECK(pthread_create(&th[0], NULL, changer, &rc) == 0, "thread");
	CHECK(pthread_create(&th[1], NULL, assigner, &rc) == 0, "thread");
	CHECK(pthread_create(&th[2], NULL, settler, &sa[0]) == 0, "thread");
	CHECK(pthread_create(&th[3], NULL, settler, &sa[1]) == 0, "thread");
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	CHECK(atomic_load(&rc.errors) == 0, "%d requests failed during the race",
	      atomic_load(&rc.errors));
	/* Quiet now: one more settle each, then every device is on its policy's latest version. */
	CHECK(settle_all(&f) == 0, "a device did not settle");
	CHECK(check_applied(&f) == 0, "a device is not on its policy's latest version");
	j = client_get_json(f.admin, "/api/v1/policies/kiosk", &st);
	CHECK(j && json_integer_value(json_object_get(j, "version")) == 1 + RACE_CHANGES / 2,
	      "kiosk version");
	json_decref(j);
	for (size_t i = 0; i < RACE_FLEET; i++) {
		char path[160];

		snprintf(path, sizeof(path), "/api/v1/devices/%s/commands?status=queued",
			 f.dev[i].id);
		j = client_get_json(f.admin, path, &st);
		CHECK(j && json_array_size(json_object_get(j, "items")) == 0,
		      "a command is still queued for %s", f.dev[i].id);
		json_decref(j);
	}
	j = client_get_json(f.admin, "/api/v1/audit/verify", &st);
	CHECK(st == 200, "audit verify");
	json_decref(j);
	fleet_down(&f);
}

static const struct t_case rollout_cases[] = {
	{"kill_mid_rollout", test_kill_mid_rollout},
	{"parked_device_woken", test_parked_device_woken},
	{"version_sent_once", test_version_sent_once},
	{"changes_race_checkins_and_assigns", test_changes_race_checkins_and_assigns},
};

#ifndef TEST_ROLLOUT_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(rollout_cases, ARRAY_SIZE(rollout_cases), argc, argv);
}
#endif

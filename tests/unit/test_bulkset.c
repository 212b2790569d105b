/*
 * A bulk's set-based batch on PostgreSQL (service/bulkset.c, store_pg_bulkset.c) against the
 * per-device path it replaces (issue 10 section 4). Two fleets built alike (retired devices,
 * devices with a wipe already open, devices with earlier commands) get the same bulk wipe by
 * filter, one through set-based batches and one device by device (cfg.bulk_per_device): each
 * pair of devices must end with the same counter, desired state and commands (same type,
 * status, counter, reason, creator, lifetime; a ticket that verifies under the ticket key and
 * names its own device, command, counter and hypervisor key), the same command.create audit
 * text, the same counts on the bulk, and an audit chain that verifies. Then a race: set-based
 * batches against a second "server" sending single wipes to the same devices in the opposite
 * order: no deadlock (no transaction run again, the bulk finishes), each device exactly one
 * single wipe and at most one from the bulk, counters without gaps, one audit entry per command.
 * PostgreSQL only (SQLite keeps the per-device path); skipped when it cannot run here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "crypto.h"
#include "log.h"
#include "service/service.h"
#include "store/store.h"
#include "store_fixture.h"
#include "wire.h"

#define FLEET    40  /* devices per fleet in the comparison */
#define RACE_N   300 /* devices in the race */
#define CMDS_MAX 8

static int64_t
test_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct bfx {
	struct fx f;
	struct ed25519_key *key;
	struct principal root, other;
};

static struct service_config
config(int per_device, int batch)
{
	struct service_config c = {
		.command_ttl_s = 3600,
		.enroll_ttl_s = 86400,
		.nonce_ttl_s = 300,
		.sig_skew_s = 300,
		.max_wait_s = 30,
		.public_url = "https://127.0.0.1:8443",
		.bulk_batch = batch,
		.bulk_per_device = per_device,
	};
	return c;
}

static int
setup(void **state)
{
	struct bfx *a = calloc(1, sizeof(*a));
	struct api_token t;
	struct fx *f;

	if (a == NULL || store_fx_setup(state) != 0)
		return -1;
	f = *state;
	a->f = *f;
	free(f);
	*state = a;
	a->root.role = a->other.role = ROLE_ADMIN;
	snprintf(a->root.id, sizeof(a->root.id), "tok_bulk");
	snprintf(a->root.name, sizeof(a->root.name), "bulk");
	snprintf(a->other.id, sizeof(a->other.id), "tok_single");
	snprintf(a->other.name, sizeof(a->other.name), "single");
	/* The bulk's requester is a real admin token (a batch checks it is still allowed). */
	memset(&t, 0, sizeof(t));
	snprintf(t.id, sizeof(t.id), "%s", a->root.id);
	snprintf(t.name, sizeof(t.name), "%s", a->root.name);
	snprintf(t.role, sizeof(t.role), "admin");
	memset(t.hash, 0x42, sizeof(t.hash));
	snprintf(t.created_by, sizeof(t.created_by), "test");
	t.created_at = 1000;
	if (a->f.st->ops->token_insert(a->f.st, &t) != 0)
		return -1;
	return ed25519_key_generate(&a->key);
}

static int
teardown(void **state)
{
	struct bfx *a = *state;
	struct fx *f = malloc(sizeof(*f));

	ed25519_key_free(a->key);
	*f = a->f;
	free(a);
	*state = f;
	return store_fx_teardown(state);
}

static void
add_device(struct store *st, const char *id, const char *owner, const char *status)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.owner, sizeof(d.owner), "%s", owner);
	snprintf(d.status, sizeof(d.status), "%s", status);
	memcpy(d.device_key, id, strlen(id));
	memcpy(d.hv_key, id, strlen(id));
	d.hv_key[31] = 0x5a;
	snprintf(d.enrollment_token_id, sizeof(d.enrollment_token_id), "etk_bulk");
	d.enrolled_at = 1000;
	assert_int_equal(st->ops->device_insert(st, &d), 0);
}

static void
single(struct service *svc, const struct principal *p, const char *dev, const char *type)
{
	struct command_request rq = {.device_id = dev, .type = type, .reason = "earlier"};
	struct svc_error err = {0};
	struct command c;
	int created = 0;

	assert_int_equal(svc_command_create(svc, p, &rq, &c, &created, &err), 0);
	assert_true(created);
}

/* Starts a bulk wipe of owner's devices and waits for it to be done; *b gets its row. */
static void
bulk_wipe(struct service *svc, const struct principal *p, const char *owner, int64_t n,
	  struct bulk_op *b)
{
	struct device_query q = {.owner = owner, .compliant = -1};
	struct svc_bulk_request rq = {.type = "wipe",
				      .reason = "lost <b>fleet</b>",
				      .query = &q,
				      .filter_json = "{}",
				      .expected_count = n};
	struct svc_error err = {0};
	int created = 0;
	int64_t matched = 0;

	assert_int_equal(svc_bulk_start(svc, p, &rq, b, &created, &matched, &err), 0);
	assert_true(created);
	for (int i = 0; i < 3000 && strcmp(b->state, "done") != 0; i++) {
		usleep(10000);
		assert_int_equal(svc_bulk_get(svc, p, b->id, b, &err), 0);
	}
	assert_string_equal(b->state, "done");
}

/* A fleet: device i of owner is retired, has a wipe open or a lock before, by i's residue. */
static void
fleet(struct store *st, struct service *svc, const struct principal *p, const char *owner)
{
	char id[STORE_ID_MAX];

	for (int i = 0; i < FLEET; i++) {
		snprintf(id, sizeof(id), "dev_%s_%02d", owner, i);
		add_device(st, id, owner, i % 10 == 3 ? "retired" : "active");
		if (i % 10 == 3)
			continue;
		if (i % 7 == 2)
			single(svc, p, id, "lock");
		if (i % 5 == 1)
			single(svc, p, id, "wipe");
	}
}

static void
check_ticket(const struct bfx *a, const struct device *d, const struct command *c)
{
	uint8_t pub[32];
	struct ticket t;

	ed25519_key_public(a->key, pub);
	assert_int_equal(
		ed25519_verify(pub, c->ticket, TICKET_BODY_LEN, c->ticket + TICKET_BODY_LEN), 0);
	assert_int_equal(ticket_decode(c->ticket, TICKET_LEN, &t), 0);
	assert_string_equal(t.device_id, d->id);
	assert_string_equal(t.command_id, c->id);
	assert_int_equal(t.counter, (uint64_t)c->counter);
	assert_memory_equal(t.hv_key, d->hv_key, 32);
	assert_int_equal(t.issued_at, (uint64_t)c->created_at);
	assert_int_equal(t.expires_at, (uint64_t)c->expires_at);
}

/* The command.create entry of c, with the device id in its detail replaced by "DEV". */
static void
audit_of(struct store *st, const struct command *c, struct audit_entry *e)
{
	struct audit_filter f = {.action = "command.create", .target = c->id, .limit = 4};
	struct audit_entry got[4];
	size_t n = 0;
	char *at;

	assert_int_equal(st->ops->audit_list(st, &f, got, &n), 0);
	assert_int_equal(n, 1);
	*e = got[0];
	at = strstr(e->detail, c->device_id);
	assert_non_null(at);
	memcpy(at, "DEV", 3);
	memmove(at + 3, at + strlen(c->device_id), strlen(at + strlen(c->device_id)) + 1);
}

static void
compare_pair(const struct bfx *a, const char *x, const char *y)
{
	struct store *st = a->f.st;
	struct command_filter fx = {.device_id = x, .limit = CMDS_MAX};
	struct command_filter fy = {.device_id = y, .limit = CMDS_MAX};
	struct command cx[CMDS_MAX], cy[CMDS_MAX];
	struct device dx, dy;
	size_t nx = 0, ny = 0;

	assert_int_equal(st->ops->device_get(st, x, &dx), 0);
	assert_int_equal(st->ops->device_get(st, y, &dy), 0);
	assert_int_equal(dx.ticket_counter, dy.ticket_counter);
	assert_string_equal(dx.desired_state, dy.desired_state);
	assert_int_equal(st->ops->command_list(st, &fx, cx, &nx), 0);
	assert_int_equal(st->ops->command_list(st, &fy, cy, &ny), 0);
	assert_int_equal(nx, ny);
	for (size_t k = 0; k < nx; k++) {
		struct audit_entry ex, ey;

		assert_string_equal(cx[k].type, cy[k].type);
		assert_string_equal(cx[k].status, cy[k].status);
		assert_int_equal(cx[k].counter, cy[k].counter);
		assert_string_equal(cx[k].reason, cy[k].reason);
		assert_string_equal(cx[k].created_by, cy[k].created_by);
		assert_int_equal(cx[k].expires_at - cx[k].created_at,
				 cy[k].expires_at - cy[k].created_at);
		check_ticket(a, &dx, &cx[k]);
		check_ticket(a, &dy, &cy[k]);
		audit_of(st, &cx[k], &ex);
		audit_of(st, &cy[k], &ey);
		assert_string_equal(ex.actor, ey.actor);
		assert_string_equal(ex.outcome, ey.outcome);
		assert_string_equal(ex.detail, ey.detail);
	}
}

static void
test_set_batch_matches_per_device(void **state)
{
	struct bfx *a = *state;
	struct store *st = a->f.st;
	struct service_config cs = config(0, 7), cp = config(1, 7);
	struct service *set = NULL, *one = NULL;
	struct audit_verify_result vr;
	struct bulk_op bs, bp;
	char x[STORE_ID_MAX], y[STORE_ID_MAX];

	/* The store offers the set-based steps: the "set" service below uses them. */
	assert_non_null(st->ops->command_insert_many);
	assert_int_equal(service_new(st, a->key, &cs, test_clock, &set), 0);
	assert_int_equal(service_new(st, a->key, &cp, test_clock, &one), 0);
	fleet(st, set, &a->other, "set");
	fleet(st, one, &a->other, "one");
	bulk_wipe(set, &a->root, "set", FLEET, &bs);
	bulk_wipe(one, &a->root, "one", FLEET, &bp);
	assert_int_equal(bs.queued, bp.queued);
	assert_int_equal(bs.already_pending, bp.already_pending);
	assert_int_equal(bs.skipped, bp.skipped);
	assert_int_equal(bs.skipped, 4);         /* i % 10 == 3 */
	assert_int_equal(bs.already_pending, 8); /* i % 5 == 1 (never retired) */
	assert_int_equal(bs.queued, FLEET - 12);
	for (int i = 0; i < FLEET; i++) {
		snprintf(x, sizeof(x), "dev_set_%02d", i);
		snprintf(y, sizeof(y), "dev_one_%02d", i);
		compare_pair(a, x, y);
	}
	assert_int_equal(audit_verify(st, &vr), 0);
	assert_int_equal(vr.first_bad_seq, 0);
	service_free(set);
	service_free(one);
}

struct racer {
	struct bfx *a;
	int failures;
	uint64_t retries;
	char why[256];
};

/* Another server: a wipe for each device, one by one, last device first. */
static void *
racer_run(void *arg)
{
	struct racer *w = arg;
	struct service_config c = config(0, 0);
	struct store *st = NULL;
	struct service *svc = NULL;
	char id[STORE_ID_MAX];

	if (store_fx_open(&w->a->f, &st) != 0 ||
	    service_new(st, w->a->key, &c, test_clock, &svc) != 0) {
		w->failures = RACE_N;
		goto out;
	}
	for (int i = RACE_N - 1; i >= 0; i--) {
		struct command_request rq = {.device_id = id, .type = "wipe", .reason = "race"};
		struct svc_error err = {0};
		struct command cmd;
		int created = 0;

		snprintf(id, sizeof(id), "dev_race_%03d", i);
		if (svc_command_create(svc, &w->a->other, &rq, &cmd, &created, &err) != 0) {
			w->failures++;
			snprintf(w->why, sizeof(w->why), "%s", err.detail);
		}
	}
out:
	if (svc != NULL) {
		struct svc_stats ss;

		svc_stats_get(svc, &ss);
		w->retries = ss.tx_retries;
	}
	service_free(svc);
	if (st != NULL)
		st->ops->close(st);
	return NULL;
}

static long long
count_of(const struct bfx *a, const char *sql)
{
	return pgtest_int(a->f.url, sql);
}

static void
test_set_batch_races_single_wipes(void **state)
{
	struct bfx *a = *state;
	struct store *st = a->f.st;
	struct service_config cs = config(0, 50);
	struct service *set = NULL;
	struct racer w = {.a = a};
	struct audit_verify_result vr;
	struct svc_stats ss;
	struct bulk_op b;
	char id[STORE_ID_MAX];
	pthread_t t;

	for (int i = 0; i < RACE_N; i++) {
		snprintf(id, sizeof(id), "dev_race_%03d", i);
		add_device(st, id, "race", "active");
	}
	assert_int_equal(service_new(st, a->key, &cs, test_clock, &set), 0);
	assert_int_equal(pthread_create(&t, NULL, racer_run, &w), 0);
	bulk_wipe(set, &a->root, "race", RACE_N, &b);
	assert_int_equal(pthread_join(t, NULL), 0);
	if (w.failures != 0)
		fail_msg("%d of %d single wipes failed: %s", w.failures, RACE_N, w.why);
	print_message("    bulk queued %lld, %lld already had the single wipe\n",
		      (long long)b.queued, (long long)b.already_pending);
	svc_stats_get(set, &ss);
	assert_int_equal(w.retries + ss.tx_retries, 0); /* no deadlock broken by PostgreSQL */
	assert_int_equal(b.queued + b.already_pending, RACE_N);
	assert_int_equal(b.skipped, 0);
	/* Each device: one single wipe, at most one bulk wipe; counters 1..k without a gap. */
	assert_int_equal(count_of(a, "SELECT count(*) FROM (SELECT device_id FROM commands WHERE "
				     "created_by = 'tok_single' GROUP BY device_id HAVING "
				     "count(*) = 1) s"),
			 RACE_N);
	assert_int_equal(count_of(a, "SELECT count(*) FROM (SELECT device_id FROM commands WHERE "
				     "created_by = 'tok_bulk' GROUP BY device_id HAVING "
				     "count(*) = 1) s"),
			 b.queued);
	assert_int_equal(
		count_of(a, "SELECT count(*) FROM device_orders d WHERE ticket_counter <> "
			    "(SELECT count(*) FROM commands c WHERE c.device_id = d.device_id) OR "
			    "ticket_counter <> (SELECT coalesce(max(counter), 0) FROM "
			    "commands c WHERE c.device_id = d.device_id)"),
		0);
	assert_int_equal(count_of(a,
				  "SELECT count(*) FROM commands c WHERE NOT EXISTS (SELECT 1 "
				  "FROM audit WHERE action = 'command.create' AND target = c.id)"),
			 0);
	assert_int_equal(count_of(a, "SELECT count(*) FROM audit WHERE action = 'command.create'"),
			 RACE_N + b.queued);
	assert_int_equal(audit_verify(st, &vr), 0);
	assert_int_equal(vr.first_bad_seq, 0);
	service_free(set);
}

int
main(void)
{
	const struct CMUnitTest pg[] = {
		cmocka_unit_test_setup_teardown(test_set_batch_matches_per_device, setup, teardown),
		cmocka_unit_test_setup_teardown(test_set_batch_races_single_wipes, setup, teardown),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_each("bulk set", NULL, 0, NULL, 0, pg, ARRAY_SIZE(pg));
}

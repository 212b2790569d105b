/*
 * Upgrades of an existing database, on both backends: a database made by the migrations up to
 * 0015 (run here as an older cleave-server ran them, without the store), holding devices with
 * ticket counters and desired states, is opened by this build, which applies 0016. On
 * PostgreSQL 0016 moves those two columns into device_orders; every device must come out
 * with the same counter, desired and reported state, its next counter one higher, and every
 * device inserted afterwards (through the store or by plain SQL) must get its orders row. On
 * SQLite 0016 changes nothing, and the same reads must hold.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "store/migrations.h"
#include "store_fixture.h"
#include "util.h"

/* The version the database is left at before this build opens it. */
#define OLD_VERSION 15

static const struct {
	const char *id, *desired, *reported;
	int64_t counter;
} olds[] = {
	{"dev_old_a", "active", "active", 0},
	{"dev_old_b", "locked", "locked", 7},
	{"dev_old_c", "wiped", "active", 42},
	{"dev_old_d", "active", "wiped", 123456789012LL},
};

/* Runs the migrations up to OLD_VERSION on f's database as an older build would. */
static void
migrate_old(struct fx *f)
{
	const struct migration *m = fx_backend == FX_PG ? pg_migrations : migrations;
	unsigned long n = fx_backend == FX_PG ? pg_migrations_count : migrations_count;
	char rec[160];

	if (fx_backend == FX_PG)
		store_fx_exec(f, "CREATE TABLE cleave_schema (version INTEGER PRIMARY KEY, "
				 "name TEXT NOT NULL, applied_at BIGINT NOT NULL)");
	for (unsigned long i = 0; i < n && m[i].number <= OLD_VERSION; i++) {
		store_fx_exec(f, m[i].sql);
		if (fx_backend == FX_PG)
			snprintf(rec, sizeof(rec), "INSERT INTO cleave_schema VALUES (%d, '%s', 0)",
				 m[i].number, m[i].name);
		else
			snprintf(rec, sizeof(rec), "PRAGMA user_version=%d", m[i].number);
		store_fx_exec(f, rec);
	}
}

/* Inserts olds[] with their order state as the old schema held it (on devices). */
static void
insert_olds(struct fx *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(olds); i++) {
		char sql[768], key[64];

		/* A distinct 32-byte device key each (device_key is unique). */
		snprintf(key, sizeof(key),
			 fx_backend == FX_PG ? "sha256('%s'::bytea)" : "randomblob(32)",
			 olds[i].id);
		snprintf(sql, sizeof(sql),
			 "INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
			 "enrollment_token_id, model, os, agent_version, enrolled_at, "
			 "desired_state, reported_state, ticket_counter) VALUES ('%s', "
			 "'old@example.com', 'active', %s, %s, %s, 'etk_old', 'Pixel', 'Android', "
			 "'1.0', 1000, '%s', '%s', %lld)",
			 olds[i].id, key, key, key, olds[i].desired, olds[i].reported,
			 (long long)olds[i].counter);
		store_fx_exec(f, sql);
	}
}

/* Swaps f's database for a new empty one (the fixture's was made by this build). */
static void
fresh_database(struct fx *f)
{
	f->st->ops->close(f->st);
	f->st = NULL;
	remove_db_files(f->path);
	if (fx_backend == FX_PG) {
		char name[32];

		snprintf(name, sizeof(name), "up%d_%d", (int)getpid(), ++fx_pg_seq);
		assert_int_equal(pgtest_create_db(&fx_pg, name, f->url, sizeof(f->url)), 0);
	}
}

static void
test_upgrade_keeps_device_order_state(void **state)
{
	struct fx *f = *state;
	struct device d;
	int64_t next = 0;

	fresh_database(f);
	migrate_old(f);
	insert_olds(f);
	assert_int_equal(store_fx_open(f, &f->st), 0);
	assert_true(store_fx_schema_version(f->st) > OLD_VERSION);

	for (size_t i = 0; i < ARRAY_SIZE(olds); i++) {
		assert_int_equal(f->st->ops->device_get(f->st, olds[i].id, &d), 0);
		assert_int_equal(d.ticket_counter, olds[i].counter);
		assert_string_equal(d.desired_state, olds[i].desired);
		assert_string_equal(d.reported_state, olds[i].reported);
		assert_string_equal(d.owner, "old@example.com");
		assert_int_equal(f->st->ops->device_next_counter(f->st, olds[i].id, &next), 0);
		assert_int_equal(next, olds[i].counter + 1);
	}

	/* Devices that come later start at 0 and "active", however they are inserted. */
	store_fx_add_device(f->st, "dev_new");
	assert_int_equal(f->st->ops->device_get(f->st, "dev_new", &d), 0);
	assert_int_equal(d.ticket_counter, 0);
	assert_string_equal(d.desired_state, "active");
	assert_int_equal(f->st->ops->device_next_counter(f->st, "dev_new", &next), 0);
	assert_int_equal(next, 1);
	if (fx_backend != FX_PG)
		return;
	store_fx_exec(f,
		      "INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
		      "enrollment_token_id, model, os, agent_version, enrolled_at) SELECT "
		      "'dev_sql' || i, 'sql@example.com', 'active', sha256(('s' || i)::bytea), "
		      "'\\x00', '\\x00', 'etk', 'm', 'os', '1.0', 1 FROM generate_series(1, 3) i");
	assert_int_equal(f->st->ops->device_get(f->st, "dev_sql2", &d), 0);
	assert_int_equal(d.ticket_counter, 0);
	assert_int_equal(pgtest_int(f->url, "SELECT count(*) FROM device_orders"),
			 (long long)ARRAY_SIZE(olds) + 4);
	assert_int_equal(pgtest_int(f->url, "SELECT count(*) FROM information_schema.columns "
					    "WHERE table_name = 'devices' AND column_name IN "
					    "('ticket_counter', 'desired_state')"),
			 0);
	/* A device's orders row goes with it. */
	assert_int_equal(f->st->ops->device_delete(f->st, "dev_old_b"), 0);
	assert_int_equal(
		pgtest_int(f->url,
			   "SELECT count(*) FROM device_orders WHERE device_id = 'dev_old_b'"),
		0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_upgrade_keeps_device_order_state),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store upgrade", both, ARRAY_SIZE(both));
}

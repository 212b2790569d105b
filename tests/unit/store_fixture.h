/*
 * cmocka fixture shared by the unit tests that need a real store, on either backend: SQLite (a
 * fresh database file in its own temporary directory per test, removed with its WAL files
 * afterwards) or PostgreSQL (a fresh database per test in the private cluster of
 * tests/lib/pgtest.h, which main() starts once with store_fx_pg_start). fx_backend picks the
 * backend of the tests run next. Include it once per test file; it defines static
 * setup/teardown functions named store_fx_*.
 */
#ifndef CLEAVE_STORE_FIXTURE_H
#define CLEAVE_STORE_FIXTURE_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "pgtest.h"
#include "util.h"
#include "store/store.h"

enum fx_kind { FX_SQLITE, FX_PG };

static enum fx_kind fx_backend = FX_SQLITE;
static struct pgtest fx_pg;
static int fx_pg_seq;

struct fx {
	char dir[64];
	char path[128]; /* SQLite: the database file */
	char url[256];  /* PostgreSQL: the test's own database */
	struct store *st;
};

static inline void
remove_db_files(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
}

/* Opens (again) the fixture's database with the current backend. */
static inline int
store_fx_open(struct fx *f, struct store **out)
{
	return fx_backend == FX_PG ? store_pg_open(f->url, out) : store_sqlite_open(f->path, out);
}

static inline int
store_fx_schema_version(struct store *st)
{
	return fx_backend == FX_PG ? store_pg_schema_version(st) : store_sqlite_schema_version(st);
}

/*
 * Starts the private PostgreSQL cluster and switches the fixture to it. 0; 1 with the reason
 * printed ("skipped: ...") when PostgreSQL cannot run here; -1 when it should and did not.
 */
static inline int
store_fx_pg_start(void)
{
	const char *why = pgtest_skip_reason();

	if (why != NULL) {
		printf("skipped: the PostgreSQL conformance run: %s\n", why);
		return 1;
	}
	if (pgtest_start(&fx_pg) != 0)
		return -1;
	fx_backend = FX_PG;
	return 0;
}

static inline void
store_fx_pg_stop(void)
{
	pgtest_stop(&fx_pg);
	fx_backend = FX_SQLITE;
}

/*
 * Runs sql on the fixture's database through a connection of its own, as an outside tool (or
 * an intruder) would, never through the store; fails the test when it fails.
 */
static inline void
store_fx_exec(struct fx *f, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	if (fx_backend == FX_PG) {
		if (pgtest_exec(f->url, sql) != 0)
			fail_msg("%s failed", sql);
		return;
	}
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
	sqlite3_free(err);
	sqlite3_close(db);
}

/*
 * Inserts an active device id (owner race@example.com, enrollment token etk_race, its device
 * key derived from the id so that it is unique); fails the test when the store refuses.
 */
static inline void
store_fx_add_device(struct store *st, const char *id)
{
	struct device d;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "%s", id);
	snprintf(d.owner, sizeof(d.owner), "race@example.com");
	snprintf(d.status, sizeof(d.status), "active");
	memcpy(d.device_key, id, strlen(id));
	snprintf(d.enrollment_token_id, sizeof(d.enrollment_token_id), "etk_race");
	d.enrolled_at = 1000;
	assert_int_equal(st->ops->device_insert(st, &d), 0);
}

/*
 * Runs `both` plus `only_sqlite` on SQLite, then `both` plus `only_pg` on PostgreSQL when it can
 * run here (else says "skipped: why"). A test that states one backend's promise is listed for
 * that backend alone rather than skipped on the other, so the run's skip list means "could not
 * run here". The process's exit code: 0 when every test passed.
 */
static inline int
store_fx_run_each(const char *name, const struct CMUnitTest *both, size_t nb,
		  const struct CMUnitTest *only_sqlite, size_t ns, const struct CMUnitTest *only_pg,
		  size_t np)
{
	struct CMUnitTest *all = calloc(nb + (ns > np ? ns : np) + 1, sizeof(*all));
	char title[128];
	int failed, pg;

	if (all == NULL)
		return 1;
	if (nb > 0)
		memcpy(all, both, nb * sizeof(*all));
	if (ns > 0)
		memcpy(all + nb, only_sqlite, ns * sizeof(*all));
	snprintf(title, sizeof(title), "%s on SQLite", name);
	failed = nb + ns > 0 ? _cmocka_run_group_tests(title, all, nb + ns, NULL, NULL) : 0;
	pg = store_fx_pg_start();
	if (pg < 0) {
		free(all);
		return 1;
	}
	if (pg == 0) {
		if (np > 0)
			memcpy(all + nb, only_pg, np * sizeof(*all));
		snprintf(title, sizeof(title), "%s on PostgreSQL", name);
		failed += _cmocka_run_group_tests(title, all, nb + np, NULL, NULL);
		store_fx_pg_stop();
	}
	free(all);
	return failed != 0;
}

/* The same group on both backends. */
static inline int
store_fx_run_both(const char *name, const struct CMUnitTest *tests, size_t n)
{
	return store_fx_run_each(name, tests, n, NULL, 0, NULL, 0);
}

static int
store_fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-unit-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/cleave.db", f->dir);
	if (fx_backend == FX_PG) {
		char name[32];

		snprintf(name, sizeof(name), "t%d_%d", (int)getpid(), ++fx_pg_seq);
		if (pgtest_create_db(&fx_pg, name, f->url, sizeof(f->url)) != 0) {
			rmdir(f->dir);
			free(f);
			return -1;
		}
	}
	if (store_fx_open(f, &f->st) != 0) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
store_fx_teardown(void **state)
{
	struct fx *f = *state;

	if (f->st != NULL)
		f->st->ops->close(f->st);
	remove_db_files(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

#endif

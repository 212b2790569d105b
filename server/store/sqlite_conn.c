/*
 * Connection management for the SQLite backend. Each thread gets its own connection (SQLite
 * connections must not be shared across concurrent threads), opened on first use with WAL,
 * synchronous=FULL and foreign keys on, and its prepared statements are cached for its life.
 * Connections of threads that exit go back to a free list. This file also applies migrations;
 * it knows nothing about the records themselves.
 */
#include "sqlite_conn.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "migrations.h"
#include "store_fault.h"
#include "store_sqlite_priv.h"

#ifdef CLEAVE_TEST_HOOKS
static atomic_long fault_left, fault_calls, fault_every;
static atomic_int fault_err, fault_fired, fault_times;

void
store_fault_arm_times(long n, int err, int times)
{
	if (n == 0) { /* disarm; what fired stays readable */
		atomic_store(&fault_left, 0);
		atomic_store(&fault_times, 0);
		return;
	}
	atomic_store(&fault_err, err);
	atomic_store(&fault_fired, 0);
	atomic_store(&fault_calls, 0);
	atomic_store(&fault_every, n);
	atomic_store(&fault_times, times - 1);
	atomic_store(&fault_left, n);
}

void
store_fault_arm(long n, int err)
{
	store_fault_arm_times(n, err, 1);
}

int
store_fault_fired(void)
{
	return atomic_load(&fault_fired);
}

long
store_fault_calls(void)
{
	return atomic_load(&fault_calls);
}

int
store_fault_hit(void)
{
	atomic_fetch_add(&fault_calls, 1);
	if (atomic_load(&fault_left) > 0 && atomic_fetch_sub(&fault_left, 1) == 1) {
		atomic_store(&fault_fired, 1);
		if (atomic_load(&fault_times) > 0) {
			atomic_fetch_sub(&fault_times, 1);
			atomic_store(&fault_left, atomic_load(&fault_every));
		}
		return atomic_load(&fault_err);
	}
	return 0;
}
#else
int
store_fault_hit(void)
{
	return 0;
}
#endif

void
sq_conn_release(void *p)
{
	struct sq_conn *c = p;

	/* Thread exit: keep the connection (and its statements) for the next thread. */
	if (c != NULL)
		__atomic_store_n(&c->in_use, 0, __ATOMIC_RELEASE);
}

static int
conn_open(struct sq_store *s, sqlite3 **out)
{
	static const char *const pragmas = "PRAGMA journal_mode=WAL;"
					   "PRAGMA synchronous=FULL;"
					   "PRAGMA foreign_keys=ON;"
					   "PRAGMA busy_timeout=10000;"
					   "PRAGMA temp_store=MEMORY;";
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	rc = sqlite3_open_v2(s->path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		log_err("store: cannot open %s: %s", s->path,
			db ? sqlite3_errmsg(db) : "no memory");
		sqlite3_close(db);
		return -EIO;
	}
	rc = sqlite3_exec(db, pragmas, NULL, NULL, &err);
	if (rc != SQLITE_OK) {
		/* The first read of the file: where a file that is no database shows. */
		log_err("store: %s cannot be used as a database (%s, SQLite code %d)", s->path,
			err ? err : sqlite3_errmsg(db), sqlite3_extended_errcode(db));
		sqlite3_free(err);
		sqlite3_close(db);
		return -EIO;
	}
	sq_ckpt_hook(s, db);
	*out = db;
	return 0;
}

/* A connection outside the per-thread pool, set up as theirs are (the checkpointer's). */
int
sq_conn_open_own(struct sq_store *s, sqlite3 **out)
{
	return conn_open(s, out);
}

struct sq_conn *
sq_conn_get(struct sq_store *s)
{
	struct sq_conn *c = pthread_getspecific(s->key);

	if (c != NULL)
		return c;
	pthread_mutex_lock(&s->list_lock);
	for (c = s->conns; c != NULL; c = c->next)
		if (!c->in_use)
			break;
	if (c == NULL) {
		c = calloc(1, sizeof(*c));
		if (c == NULL || conn_open(s, &c->db) != 0) {
			free(c);
			pthread_mutex_unlock(&s->list_lock);
			return NULL;
		}
		c->next = s->conns;
		s->conns = c;
	}
	c->in_use = 1;
	pthread_mutex_unlock(&s->list_lock);
	pthread_setspecific(s->key, c);
	return c;
}

sqlite3_stmt *
sq_stmt(struct sq_store *s, int idx, const char *sql)
{
	struct sq_conn *c = sq_conn_get(s);
	sqlite3_stmt *st;

	if (c == NULL || idx < 0 || idx >= SQ_MAX_STMTS)
		return NULL;
	if (store_fault_hit() != 0) {
		log_err("store: statement #%d: injected fault", idx);
		return NULL;
	}
	st = c->stmts[idx];
	if (st == NULL) {
		int rc = sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);

		if (rc != SQLITE_OK) {
			log_err("store: prepare #%d failed: %s", idx, sqlite3_errmsg(c->db));
			return NULL;
		}
		c->stmts[idx] = st;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return st;
}

/*
 * A full disk does not always arrive as SQLITE_FULL: a write to the WAL or a fsync that fails
 * with ENOSPC comes back as SQLITE_IOERR_WRITE/FSYNC/SHMSIZE, with the OS errno kept aside.
 */
static int
sq_disk_full(sqlite3 *db, int rc)
{
	if ((rc & 0xff) == SQLITE_FULL)
		return 1;
	return db != NULL && (rc & 0xff) == SQLITE_IOERR && sqlite3_system_errno(db) == ENOSPC;
}

int
sq_err(struct sq_store *s, int rc, const char *what)
{
	struct sq_conn *c = pthread_getspecific(s->key);
	sqlite3 *db = c ? c->db : NULL;

	if (db != NULL && rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW)
		rc = sqlite3_extended_errcode(db); /* the step or exec result is only primary */
	if (sq_disk_full(db, rc)) {
		log_err("store: %s: %s: the disk is full (%s, SQLite code %d)", what, s->path,
			db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), rc);
		return -ENOSPC;
	}
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_DONE:
	case SQLITE_ROW:
		return 0;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		log_err("store: %s: %s: the database is locked by another process", what, s->path);
		return -EBUSY;
	default:
		log_err("store: %s: %s (%d)", what, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc),
			rc);
		return -EIO;
	}
}

int
sq_exec_stmt(struct sq_store *s, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	int r = rc == SQLITE_DONE ? 0 : sq_err(s, rc, what);

	sqlite3_reset(st);
	return r;
}

void
sq_col_text(sqlite3_stmt *st, int col, char *dst, size_t cap)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;

	if (cap == 0)
		return;
	if (n >= cap)
		n = cap - 1;
	if (n > 0)
		memcpy(dst, t, n);
	dst[n] = '\0';
}

void
sq_col_blob(sqlite3_stmt *st, int col, void *dst, size_t n)
{
	const void *b = sqlite3_column_blob(st, col);

	if (b != NULL && (size_t)sqlite3_column_bytes(st, col) == n)
		memcpy(dst, b, n);
	else
		memset(dst, 0, n);
}

/*
 * SQLite's quick check (the b-trees and their pages, not the index contents: O(N), no sorting)
 * before anything is served, so a damaged file stops the start with a message naming it instead
 * of answering garbage or failing request by request later. The first five problems are logged.
 */
int
sq_quick_check(struct sq_store *s, sqlite3 *db)
{
	sqlite3_stmt *st = NULL;
	int rc, bad = 0;

	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check(5)", -1, &st, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		char line[512];

		rc = SQLITE_OK;
		sq_col_text(st, 0, line, sizeof(line));
		if (strcmp(line, "ok") == 0)
			continue;
		if (bad++ == 0)
			log_err("store: %s is damaged (SQLite's quick_check failed); refusing to "
				"start. Restore it from a backup. What quick_check found:",
				s->path);
		for (char *p = line; *p != '\0'; p++) /* one log line per problem */
			if (*p == '\n')
				*p = ' ';
		log_err("store:   %s", line);
	}
	if (rc != SQLITE_DONE) {
		rc = sqlite3_extended_errcode(db);
		log_err("store: %s cannot be read as a database (%s, SQLite code %d); refusing to "
			"start. Restore it from a backup.",
			s->path, sqlite3_errmsg(db), rc);
		bad = 1;
	}
	sqlite3_finalize(st);
	return bad ? -EIO : 0;
}

static int
user_version(sqlite3 *db, int *v)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	*v = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : 0;
	sqlite3_finalize(st);
	return rc == SQLITE_ROW ? 0 : -EIO;
}

int
sq_migrate(struct sq_store *s, sqlite3 *db)
{
	/*
	 * By number, not by position, so that a number reserved for another change may be
	 * missing; user_version is the number of the last migration run.
	 */
	int have, newest = migrations_count > 0 ? migrations[migrations_count - 1].number : 0;

	if (user_version(db, &have) != 0) {
		log_err("store: %s: cannot read schema version: %s", s->path, sqlite3_errmsg(db));
		return -EIO;
	}
	if (have > newest) {
		log_err("store: %s has schema version %d, newer than this build (%d); refusing",
			s->path, have, newest);
		return -EPROTO;
	}
	for (unsigned long i = 0; i < migrations_count; i++) {
		const struct migration *m = &migrations[i];
		char setv[64];
		char *err = NULL;
		int rc;

		if (m->number <= have)
			continue;
		snprintf(setv, sizeof(setv), "PRAGMA user_version=%d;", m->number);
		rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, &err);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, m->sql, NULL, NULL, &err);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, setv, NULL, NULL, &err);
		if (rc == SQLITE_OK)
			rc = sqlite3_exec(db, "COMMIT", NULL, NULL, &err);
		if (rc != SQLITE_OK) {
			log_err("store: migration %s failed: %s", m->name, err ? err : "?");
			sqlite3_free(err);
			sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return -EIO;
		}
		log_info("store: applied migration %s", m->name);
	}
	s->schema_version = newest;
	return 0;
}

int
sq_one(struct sq_store *s, sqlite3_stmt *q, void *out, sq_row_fn fn, const char *what)
{
	int rc = sqlite3_step(q);
	int r = 0;

	if (rc == SQLITE_ROW)
		fn(q, out);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = sq_err(s, rc, what);
	sqlite3_reset(q);
	return r;
}

int
sq_many(struct sq_store *s, sqlite3_stmt *q, void *out, size_t size, size_t max, size_t *n,
	sq_row_fn fn, const char *what)
{
	size_t k = 0;
	int rc = SQLITE_DONE;

	while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		memset((char *)out + k * size, 0, size);
		fn(q, (char *)out + k * size);
		k++;
	}
	*n = k;
	sqlite3_reset(q);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return 0;
	return sq_err(s, rc, what);
}

int
sq_int64(struct sq_store *s, sqlite3_stmt *q, int64_t *v, const char *what)
{
	int rc = sqlite3_step(q);
	int r = 0;

	if (rc == SQLITE_ROW)
		*v = sqlite3_column_int64(q, 0);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = sq_err(s, rc, what);
	sqlite3_reset(q);
	return r;
}

int
sq_exec_changed(struct sq_store *s, sqlite3_stmt *q, const char *what)
{
	int r = sq_exec_stmt(s, q, what);

	if (r == 0 && sqlite3_changes(sqlite3_db_handle(q)) == 0)
		return -ENOENT;
	return r;
}

int
sq_counts(struct sq_store *s, sqlite3_stmt *q, struct status_count *out, size_t max, size_t *n,
	  const char *what)
{
	size_t k = 0;
	int rc = SQLITE_DONE;

	while (k < max && (rc = sqlite3_step(q)) == SQLITE_ROW) {
		sq_col_text(q, 0, out[k].status, sizeof(out[k].status));
		out[k].n = sqlite3_column_int64(q, 1);
		k++;
	}
	*n = k;
	sqlite3_reset(q);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_err(s, rc, what);
}

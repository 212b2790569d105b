/*
 * Connection management for the PostgreSQL backend. Each thread gets its own libpq connection
 * (a PGconn must not be used by two threads at once), opened on first use; connections of
 * threads that exit go back to a free list. Statements go out with PQexecParams and come back in
 * binary. This file also applies migrations; it knows nothing about the records themselves.
 */
#include "pg_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "migrations.h"
#include "store_fault.h"

/* Attempts of a statement run outside a transaction when PostgreSQL asks to retry it. */
#define PG_RETRIES 5

const char PG_SQL_BEGIN[] = "BEGIN";

void
pa_text(struct pg_args *a, const char *s)
{
	if (a->n >= PG_MAX_ARGS) {
		a->overflow = 1;
		return;
	}
	a->v[a->n] = s;
	a->len[a->n] = 0;
	a->fmt[a->n] = 0;
	a->n++;
}

void
pa_int(struct pg_args *a, int64_t v)
{
	if (a->n >= PG_MAX_ARGS) {
		a->overflow = 1;
		return;
	}
	snprintf(a->num[a->n], sizeof(a->num[0]), "%lld", (long long)v);
	a->v[a->n] = a->num[a->n];
	a->len[a->n] = 0;
	a->fmt[a->n] = 0;
	a->n++;
}

void
pa_blob(struct pg_args *a, const void *p, size_t n)
{
	if (a->n >= PG_MAX_ARGS) {
		a->overflow = 1;
		return;
	}
	a->v[a->n] = p;
	a->len[a->n] = (int)n;
	a->fmt[a->n] = 1;
	a->n++;
}

static void
quiet_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

static PGconn *
pg_connect(struct pg_store *s)
{
	/*
	 * Bounds on waiting for a database that went away without closing the connection (a
	 * host or link down over TCP; a Unix socket ignores them): 5 s to connect, keepalives
	 * that notice a dead peer within a minute while a reply is awaited, and 30 s for sent
	 * data to be acknowledged. Before dbname, so that the URL's own settings win (libpq
	 * keeps the last value of a repeated keyword).
	 */
	const char *keys[] = {"connect_timeout",
			      "keepalives_idle",
			      "keepalives_interval",
			      "keepalives_count",
			      "tcp_user_timeout",
			      "dbname",
			      NULL};
	const char *vals[] = {"5", "30", "10", "3", "30000", s->url, NULL};
	PGconn *db = PQconnectdbParams(keys, vals, 1);

	if (db == NULL || PQstatus(db) != CONNECTION_OK) {
		log_err("store: cannot connect to PostgreSQL: %s",
			db != NULL ? PQerrorMessage(db) : "out of memory");
		PQfinish(db);
		return NULL;
	}
	/* Notices (such as "relation already exists, skipping") are not the log's business. */
	PQsetNoticeProcessor(db, quiet_notice, NULL);
	return db;
}

void
pg_conn_release(void *p)
{
	struct pg_conn *c = p;

	if (c == NULL)
		return;
	if (c->in_tx)
		PQclear(PQexec(c->db, "ROLLBACK"));
	c->in_tx = c->tx_failed = c->audit_locked = 0;
	c->in_use = 0;
}

struct pg_conn *
pg_conn_get(struct pg_store *s)
{
	struct pg_conn *c = pthread_getspecific(s->key);

	if (c != NULL)
		return c;
	pthread_mutex_lock(&s->list_lock);
	for (c = s->conns; c != NULL && c->in_use; c = c->next)
		;
	if (c != NULL)
		c->in_use = 1;
	pthread_mutex_unlock(&s->list_lock);
	if (c == NULL) {
		PGconn *db = pg_connect(s);

		if (db == NULL)
			return NULL;
		c = calloc(1, sizeof(*c));
		if (c == NULL) {
			PQfinish(db);
			return NULL;
		}
		c->db = db;
		atomic_store(&c->pid, PQbackendPID(db));
		c->in_use = 1;
		pthread_mutex_lock(&s->list_lock);
		c->next = s->conns;
		s->conns = c;
		pthread_mutex_unlock(&s->list_lock);
	}
	pthread_setspecific(s->key, c);
	return c;
}

int
pg_own_backend(struct pg_store *s, int pid)
{
	int own = 0;

	pthread_mutex_lock(&s->list_lock);
	for (struct pg_conn *c = s->conns; c != NULL && !own; c = c->next)
		own = pid != 0 && atomic_load(&c->pid) == pid;
	pthread_mutex_unlock(&s->list_lock);
	return own;
}

/* 0 for success, else the negative errno the failure maps to. */
static int
classify(PGresult *r)
{
	const char *state;

	switch (PQresultStatus(r)) {
	case PGRES_COMMAND_OK:
	case PGRES_TUPLES_OK:
		return 0;
	default:
		break;
	}
	state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
	if (state == NULL)
		return -EIO;
	if (strncmp(state, "23", 2) == 0) /* integrity constraint violation */
		return -EEXIST;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return -EAGAIN;
	return -EIO;
}

static void
backoff(int attempt)
{
	struct timespec ts = {0, (long)(1 + (rand() % 4)) * attempt * 1000000L};

	nanosleep(&ts, NULL);
}

/*
 * The name of sql's prepared statement on c, preparing it the first time; NULL when it cannot
 * be (the cache is full, or the prepare failed): the caller then sends the text itself.
 */
static const char *
prepared(struct pg_conn *c, const char *sql, int nargs, char name[8])
{
	PGresult *r;
	int i, ok;

	for (i = 0; i < c->nstmts && c->stmt_sql[i] != sql; i++)
		;
	snprintf(name, 8, "c%d", i);
	if (i < c->nstmts)
		return name;
	if (i >= PG_MAX_STMTS)
		return NULL;
	r = PQprepare(c->db, name, sql, nargs, NULL);
	ok = r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok)
		return NULL;
	c->stmt_sql[c->nstmts++] = sql;
	return name;
}

/* A statement's parameters, from a pg_args or from the arrays of a query built per call. */
struct params {
	int n;
	const char *const *v;
	const int *len;
	const int *fmt;
	int adhoc; /* built per call: never prepared (its text may differ at the same address) */
	const Oid *types;
};

/*
 * True when r failed because the session is gone: libpq lost the connection (no SQLSTATE of
 * the server's), or the server ended the session (class 57P: shutdown, crash, starting up;
 * class 08: connection exception), even before libpq has marked the connection bad.
 */
static int
session_lost(struct pg_conn *c, const PGresult *r)
{
	const char *state = r != NULL ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

	return PQstatus(c->db) == CONNECTION_BAD || state == NULL ||
	       strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0;
}

/* A new session for c after the old one was lost; its prepared statements went with it. */
static void
renew(struct pg_conn *c)
{
	PQreset(c->db);
	atomic_store(&c->pid, PQbackendPID(c->db));
	c->nstmts = 0;
}

/*
 * Between transactions: reads what the server sent while the session was idle. A session the
 * server ended meanwhile (a restart of PostgreSQL) shows up here, before anything is sent, so
 * the statement goes to a new session instead of failing with an unknown outcome.
 */
static void
check_idle(struct pg_conn *c)
{
	if (c->in_tx)
		return;
	/*
	 * A server that ends a session sends a message and then closes: one read may take the
	 * message and leave the end unseen, so read while something is waiting (a few times).
	 */
	for (int i = 0; i < 4 && PQstatus(c->db) == CONNECTION_OK; i++) {
		struct pollfd pfd = {.fd = PQsocket(c->db), .events = POLLIN};

		if (pfd.fd < 0 || poll(&pfd, 1, 0) <= 0 || PQconsumeInput(c->db) != 1)
			break;
	}
	if (PQstatus(c->db) != CONNECTION_OK)
		renew(c);
}

/* One attempt; *retry is set when the statement may be run again from scratch. */
static int
run_once(struct pg_conn *c, const char *sql, const struct params *p, PGresult **res, int *retry)
{
	char buf[8];
	const char *name;
	PGresult *r;
	int e;

	check_idle(c);
	name = p->adhoc || (c->in_tx && c->tx_failed) ? NULL : prepared(c, sql, p->n, buf);
	r = name != NULL ? PQexecPrepared(c->db, name, p->n, p->v, p->len, p->fmt, 1)
			 : PQexecParams(c->db, sql, p->n, p->types, p->v, p->len, p->fmt, 1);
	e = r != NULL ? classify(r) : -EIO;
	*retry = 0;
	if (e == 0) {
		if (res != NULL)
			*res = r;
		else
			PQclear(r);
		return 0;
	}
	if (e == -EAGAIN)
		*retry = 1;
	if (e == -EIO)
		log_err("store: %s", r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(c->db));
	if (e == -EIO && session_lost(c, r)) {
		/*
		 * The server went away (restart, failover): a new session for the next call. Only
		 * a BEGIN is tried again at once: anything else may have run before the break.
		 */
		renew(c);
		e = -ENOTCONN;
		*retry = sql == PG_SQL_BEGIN && PQstatus(c->db) == CONNECTION_OK;
	}
	PQclear(r);
	return e;
}

static int
run_params(struct pg_store *s, const char *sql, const struct params *p, PGresult **res,
	   const char *what)
{
	struct pg_conn *c = pg_conn_get(s);
	int e, retry;

	if (res != NULL)
		*res = NULL;
	if (c == NULL)
		return -ENOTCONN;
	/* A begin counts once, in pg_tx_begin, which returns the armed error as SQLite's does. */
	if (sql != PG_SQL_BEGIN && store_fault_hit() != 0) {
		log_err("store: %s: injected fault", what);
		return -EIO;
	}
	if (c->tx_failed)
		return -EIO; /* only a rollback helps now */
	for (int attempt = 1;; attempt++) {
		e = run_once(c, sql, p, res, &retry);
		if (e == 0)
			return 0;
		if (c->in_tx) {
			/* The whole transaction is lost: the caller's rollback ends it. */
			c->tx_failed = 1;
			break;
		}
		if (!retry || attempt >= PG_RETRIES)
			break;
		backoff(attempt);
	}
	if (e == -EIO)
		log_err("store: %s failed", what);
	if (e == -ENOTCONN) {
		/*
		 * Inside a transaction the server rolled it back: nothing changed. Outside one a
		 * write may or may not have happened. Either way the database is away for now,
		 * and the caller says so (503, retry later) rather than report a failure of ours.
		 */
		log_err("store: %s: the connection to PostgreSQL was lost", what);
		return -ENOTCONN;
	}
	if (e != -EAGAIN)
		return e;
	if (c->in_tx) {
		/* The transaction is lost as a whole: the service runs all of it again. */
		log_warn("store: %s: serialization failure or deadlock; the transaction is rolled "
			 "back",
			 what);
		return -EDEADLK;
	}
	log_warn("store: %s: serialization failure or deadlock, retries exhausted", what);
	return -EBUSY;
}

int
pg_run(struct pg_store *s, const char *sql, const struct pg_args *a, PGresult **res,
       const char *what)
{
	struct params p = {0};

	if (a != NULL && a->overflow) {
		log_err("store: %s: more than %d parameters", what, PG_MAX_ARGS);
		return -EINVAL;
	}
	if (a != NULL) {
		p.n = a->n;
		p.v = a->v;
		p.len = a->len;
		p.fmt = a->fmt;
	}
	return run_params(s, sql, &p, res, what);
}

int
pg_run_adhoc(struct pg_store *s, const char *sql, int n, const Oid *types, const char *const *v,
	     const int *len, const int *fmt, PGresult **res, const char *what)
{
	struct params p = {.n = n, .v = v, .len = len, .fmt = fmt, .adhoc = 1, .types = types};

	return run_params(s, sql, &p, res, what);
}

int
pg_one(struct pg_store *s, const char *sql, const struct pg_args *a, void *out, pg_row_fn fn,
       const char *what)
{
	PGresult *r;
	int e = pg_run(s, sql, a, &r, what);

	if (e != 0)
		return e;
	if (PQntuples(r) < 1) {
		PQclear(r);
		return -ENOENT;
	}
	fn(r, 0, out);
	PQclear(r);
	return 0;
}

void
pg_map_rows(PGresult *r, void *out, size_t size, size_t max, size_t *n, pg_row_fn fn)
{
	size_t k;

	for (k = 0; k < max && (int)k < PQntuples(r); k++) {
		void *slot = (char *)out + k * size;

		memset(slot, 0, size);
		fn(r, (int)k, slot);
	}
	*n = k;
}

int
pg_many(struct pg_store *s, const char *sql, const struct pg_args *a, void *out, size_t size,
	size_t max, size_t *n, pg_row_fn fn, const char *what)
{
	PGresult *r;
	int e = pg_run(s, sql, a, &r, what);

	*n = 0;
	if (e != 0)
		return e;
	pg_map_rows(r, out, size, max, n, fn);
	PQclear(r);
	return 0;
}

int
pg_scalar(struct pg_store *s, const char *sql, const struct pg_args *a, int64_t *v,
	  const char *what)
{
	PGresult *r;
	int e = pg_run(s, sql, a, &r, what);

	if (e != 0)
		return e;
	if (PQntuples(r) < 1) {
		PQclear(r);
		return -ENOENT;
	}
	*v = pg_col_int(r, 0, 0);
	PQclear(r);
	return 0;
}

int
pg_changed(struct pg_store *s, const char *sql, const struct pg_args *a, const char *what)
{
	PGresult *r;
	int e = pg_run(s, sql, a, &r, what);

	if (e != 0)
		return e;
	e = strcmp(PQcmdTuples(r), "0") == 0 ? -ENOENT : 0;
	PQclear(r);
	return e;
}

int
pg_ids(struct pg_store *s, const char *sql, const struct pg_args *a, char (*ids)[STORE_ID_MAX],
       size_t max, size_t *n, const char *what)
{
	PGresult *r;
	int e = pg_run(s, sql, a, &r, what);
	size_t k;

	*n = 0;
	if (e != 0)
		return e;
	for (k = 0; k < max && (int)k < PQntuples(r); k++)
		pg_col_text(r, (int)k, 0, ids[k], STORE_ID_MAX);
	*n = k;
	PQclear(r);
	return 0;
}

static void
count_row(const PGresult *r, int row, void *out)
{
	struct status_count *c = out;

	pg_col_text(r, row, 0, c->status, sizeof(c->status));
	c->n = pg_col_int(r, row, 1);
}

int
pg_counts(struct pg_store *s, const char *sql, struct status_count *out, size_t max, size_t *n,
	  const char *what)
{
	return pg_many(s, sql, NULL, out, sizeof(*out), max, n, count_row, what);
}

int64_t
pg_col_int(const PGresult *r, int row, int col)
{
	const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
	int len = PQgetlength(r, row, col);
	uint64_t v = 0;

	if (PQgetisnull(r, row, col) || (len != 2 && len != 4 && len != 8))
		return 0;
	for (int i = 0; i < len; i++)
		v = (v << 8) | p[i];
	/* Sign-extend the narrower integer types. */
	if (len < 8 && (p[0] & 0x80))
		v |= ~(uint64_t)0 << (8 * len);
	return (int64_t)v;
}

void
pg_col_text(const PGresult *r, int row, int col, char *dst, size_t cap)
{
	size_t len = (size_t)PQgetlength(r, row, col);

	if (cap == 0)
		return;
	if (PQgetisnull(r, row, col))
		len = 0;
	if (len >= cap)
		len = cap - 1;
	memcpy(dst, PQgetvalue(r, row, col), len);
	dst[len] = '\0';
}

void
pg_col_blob(const PGresult *r, int row, int col, void *dst, size_t n)
{
	if (!PQgetisnull(r, row, col) && (size_t)PQgetlength(r, row, col) == n)
		memcpy(dst, PQgetvalue(r, row, col), n);
	else
		memset(dst, 0, n);
}

/* Runs sql (several statements allowed, no parameters); 0 or -EIO (logged). */
static int
exec_script(PGconn *db, const char *sql, const char *what)
{
	PGresult *r = PQexec(db, sql);
	int ok = r != NULL &&
		 (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);

	if (!ok)
		log_err("store: %s: %s", what,
			r != NULL ? PQresultErrorMessage(r) : PQerrorMessage(db));
	PQclear(r);
	return ok ? 0 : -EIO;
}

/* The version the database is at (0: none yet); -EIO on failure. */
static int
current_version(PGconn *db)
{
	PGresult *r = PQexec(db, "SELECT coalesce(max(version), 0) FROM cleave_schema");
	int v = -EIO;

	if (r != NULL && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	else
		log_err("store: reading the schema version: %s", PQerrorMessage(db));
	PQclear(r);
	return v;
}

static int
apply_one(PGconn *db, const struct migration *m)
{
	char rec[160];
	int r;

	snprintf(rec, sizeof(rec),
		 "INSERT INTO cleave_schema (version, name, applied_at) VALUES (%d, '%s', "
		 "extract(epoch FROM now())::bigint)",
		 m->number, m->name);
	r = exec_script(db, "BEGIN", "migration begin");
	if (r == 0)
		r = exec_script(db, m->sql, m->name);
	if (r == 0)
		r = exec_script(db, rec, "migration record");
	if (r == 0)
		r = exec_script(db, "COMMIT", "migration commit");
	if (r != 0)
		PQclear(PQexec(db, "ROLLBACK"));
	else
		log_info("store: applied PostgreSQL migration %s", m->name);
	return r;
}

/* The body of pg_migrate, run while the migration lock is held. */
static int
migrate_locked(struct pg_store *s, PGconn *db)
{
	int have, known = 0, r = 0;

	if (exec_script(db,
			"CREATE TABLE IF NOT EXISTS cleave_schema (version INTEGER PRIMARY KEY, "
			"name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
			"schema table") != 0)
		return -EIO;
	have = current_version(db);
	if (have < 0)
		return have;
	for (unsigned long i = 0; i < pg_migrations_count; i++)
		if (pg_migrations[i].number > known)
			known = pg_migrations[i].number;
	if (have > known) {
		log_err("store: the PostgreSQL database has schema version %d, newer than this "
			"build (%d); refusing",
			have, known);
		return -EPROTO;
	}
	for (unsigned long i = 0; i < pg_migrations_count && r == 0; i++)
		if (pg_migrations[i].number > have)
			r = apply_one(db, &pg_migrations[i]);
	s->schema_version = r == 0 ? current_version(db) : have;
	return r;
}

int
pg_migrate(struct pg_store *s, PGconn *db)
{
	char sql[96];
	int r;

	/* Two servers starting at once: the second waits here and then finds nothing to do. */
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_lock(%lld)", PG_LOCK_MIGRATE);
	if (exec_script(db, sql, "migration lock") != 0)
		return -EIO;
	r = migrate_locked(s, db);
	snprintf(sql, sizeof(sql), "SELECT pg_advisory_unlock(%lld)", PG_LOCK_MIGRATE);
	exec_script(db, sql, "migration unlock");
	return r;
}

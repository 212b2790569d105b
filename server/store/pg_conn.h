/*
 * Private to the PostgreSQL backend: per-thread libpq connections, one helper that runs a
 * parameterized statement (prepared once per connection, keyed by the address of its SQL
 * literal; with a bounded retry when PostgreSQL asks for one and no
 * transaction of the caller's is open), and column readers for fixed-size records. Results
 * come back in binary format, so BYTEA columns arrive as their bytes and BIGINTs as 8 bytes in
 * network order. Only store/ includes this.
 */
#ifndef CLEAVE_PG_CONN_H
#define CLEAVE_PG_CONN_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "store.h"

/* Prepared statements per connection; the store has about 70 distinct ones. */
#define PG_MAX_STMTS 160

struct pg_conn {
	PGconn *db;
	/* The SQL text (a string literal: compared by address) of prepared statement "cN". */
	const char *stmt_sql[PG_MAX_STMTS];
	int nstmts;
	int in_use;
	int in_tx;
	int tx_failed; /* a statement failed inside the open transaction: only rollback remains */
	int audit_locked;
	atomic_int pid; /* the backend's, so the listener can tell this process's notifications */
	struct pg_conn *next;
};

struct pg_store {
	struct store base;
	char *url;
	pthread_key_t key;
	pthread_mutex_t list_lock;
	struct pg_conn *conns;
	int schema_version;
	struct pg_listen *listen; /* NULL unless listening (store_pg_notify.c) */
};

/* Up to this many parameters per statement. */
#define PG_MAX_ARGS 32

/* Parameters of one statement; integers are sent as text, blobs in binary. */
struct pg_args {
	int n;
	int overflow; /* a parameter past PG_MAX_ARGS was dropped: pg_run refuses to run */
	const char *v[PG_MAX_ARGS];
	int len[PG_MAX_ARGS];
	int fmt[PG_MAX_ARGS];
	char num[PG_MAX_ARGS][24];
};

void pa_text(struct pg_args *a, const char *s); /* NULL: SQL NULL */
void pa_int(struct pg_args *a, int64_t v);
void pa_blob(struct pg_args *a, const void *p, size_t n); /* NULL: SQL NULL */

/* The statement that opens a transaction: the one retried on a fresh connection. */
extern const char PG_SQL_BEGIN[];

/* Advisory lock keys (pg_advisory_lock and _xact_lock), one per thing serialized. */
#define PG_LOCK_MIGRATE 0x436c657601LL /* "Clev" 1: schema migrations */
#define PG_LOCK_AUDIT   0x436c657602LL /* the audit chain's head */
#define PG_LOCK_POLICY  0x436c657603LL /* which policy is the default */

/* The calling thread's connection, opened on first use; NULL when it cannot be opened. */
struct pg_conn *pg_conn_get(struct pg_store *s);
/* pthread key destructor: hands a dead thread's connection to the next thread. */
void pg_conn_release(void *p);

/*
 * Runs sql with args (may be NULL) on the calling thread's connection. On success *res (when
 * res is not NULL) holds the result, which the caller PQclear()s. Returns 0, -EEXIST on a
 * constraint violation, -EDEADLK on a serialization failure or deadlock inside a transaction
 * of the caller's (the transaction is lost: the caller rolls back and runs it again), -EBUSY
 * on one outside a transaction after a few retries, -ENOTCONN when the session was lost (or
 * cannot be opened), or -EIO. A session the server ended while it was idle is renewed before
 * the statement is sent; one lost during a statement is renewed for the next call, and a BEGIN
 * that meets a lost session is sent again on the new one.
 */
int pg_run(struct pg_store *s, const char *sql, const struct pg_args *args, PGresult **res,
	   const char *what);

/*
 * pg_run for SQL built per call (store_pg_query.c): sent as text with its n parameters (type
 * OIDs, values, lengths and formats as PQexecParams takes them), never prepared. With the
 * types given, a parameter the text does not name is no error.
 */
int pg_run_adhoc(struct pg_store *s, const char *sql, int n, const Oid *types, const char *const *v,
		 const int *len, const int *fmt, PGresult **res, const char *what);

/* Runs sql and maps its one row with fn; -ENOENT when there is none. */
typedef void (*pg_row_fn)(const PGresult *r, int row, void *out);
int pg_one(struct pg_store *s, const char *sql, const struct pg_args *a, void *out, pg_row_fn fn,
	   const char *what);
/* Maps up to max rows into out (elements of size bytes); *n gets the count. */
int pg_many(struct pg_store *s, const char *sql, const struct pg_args *a, void *out, size_t size,
	    size_t max, size_t *n, pg_row_fn fn, const char *what);
/* Maps up to max rows of r into out (elements of size bytes, zeroed first); *n gets the count. */
void pg_map_rows(PGresult *r, void *out, size_t size, size_t max, size_t *n, pg_row_fn fn);
/* Reads column 0 of the one row as an integer; -ENOENT when there is none. */
int pg_scalar(struct pg_store *s, const char *sql, const struct pg_args *a, int64_t *v,
	      const char *what);
/* Runs a write; -ENOENT when it changed no row. */
int pg_changed(struct pg_store *s, const char *sql, const struct pg_args *a, const char *what);
/* Reads column 0 of each row as text into ids. */
int pg_ids(struct pg_store *s, const char *sql, const struct pg_args *a, char (*ids)[STORE_ID_MAX],
	   size_t max, size_t *n, const char *what);
/* Reads (text, count) rows. */
int pg_counts(struct pg_store *s, const char *sql, struct status_count *out, size_t max, size_t *n,
	      const char *what);

int64_t pg_col_int(const PGresult *r, int row, int col);
void pg_col_text(const PGresult *r, int row, int col, char *dst, size_t cap);
/* Copies a BYTEA column into dst when it has exactly n bytes, else zero-fills dst. */
void pg_col_blob(const PGresult *r, int row, int col, void *dst, size_t n);

/* True when pid is the backend of one of this store's own connections. */
int pg_own_backend(struct pg_store *s, int pid);

/* Applies the embedded PostgreSQL migrations the database lacks, under an advisory lock. */
int pg_migrate(struct pg_store *s, PGconn *db);

#endif

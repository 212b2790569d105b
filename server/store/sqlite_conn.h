/*
 * Private to the SQLite backend: per-thread connections with cached prepared statements, and the
 * small helpers that bind and read columns into fixed-size records. Only store/ includes this.
 */
#ifndef CLEAVE_SQLITE_CONN_H
#define CLEAVE_SQLITE_CONN_H

#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>

#include "store.h"

/* Cached statements per connection; room for every SQ_* id (store_sqlite_priv.h checks). */
#define SQ_MAX_STMTS 160

struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *stmts[SQ_MAX_STMTS];
	int in_use;
	int in_tx;
	struct sq_conn *next;
};

/* The checkpoint thread (sqlite_ckpt.c). */
struct sq_ckpt {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	sqlite3 *db; /* its own connection */
	int started, stop;
	atomic_int wanted; /* the log passed the threshold */
	atomic_int dirty;  /* something was committed since the last checkpoint */
	atomic_long runs;
};

struct sq_store {
	struct store base;
	char *path;
	pthread_key_t key;
	pthread_mutex_t list_lock;
	/*
	 * The one writer's turn, first come first served (a ticket lock): a plain mutex let the
	 * thread that released it take it again at once, so a bulk's batches, one after another,
	 * kept a waiting wipe out for several of them. wl_lock guards next and serving.
	 */
	pthread_mutex_t wl_lock;
	pthread_cond_t wl_turn;
	uint64_t wl_next, wl_serving;
	int64_t lock_at_us;              /* when the holder of the write turn took it */
	_Atomic int64_t hold_max_us;     /* the longest hold so far */
	_Atomic int64_t holds_over_50ms; /* how many holds took longer than 50 ms */
	struct sq_conn *conns;
	int schema_version;
	struct sq_ckpt ckpt;
};

/* Routes db's commits to the checkpointer (and turns SQLite's own checkpoint in COMMIT off). */
void sq_ckpt_hook(struct sq_store *s, sqlite3 *db);
/* Starts the checkpoint thread on db, a connection it then owns (closed by sq_close). */
int sq_ckpt_start(struct sq_store *s, sqlite3 *db);
/* Stops and joins it; nothing when it never started. */
void sq_ckpt_stop(struct sq_store *s);

/* pthread key destructor: hands a dead thread's connection to the next thread. */
void sq_conn_release(void *p);

/* A connection of the caller's own, outside the per-thread ones; 0 or -EIO. */
int sq_conn_open_own(struct sq_store *s, sqlite3 **out);

/* The calling thread's connection, opened on first use; NULL when it cannot be opened. */
struct sq_conn *sq_conn_get(struct sq_store *s);

/*
 * Returns the cached statement number idx of the calling thread's connection, reset and with
 * its bindings cleared, preparing sql the first time. NULL on failure (logged).
 */
sqlite3_stmt *sq_stmt(struct sq_store *s, int idx, const char *sql);

/* Maps an SQLite result code to a negative errno, logging unexpected ones with what. */
int sq_err(struct sq_store *s, int rc, const char *what);

/* Runs a statement that returns no rows; 0, -EEXIST on a constraint violation, or -EIO. */
int sq_exec_stmt(struct sq_store *s, sqlite3_stmt *st, const char *what);

/* Copies column col as text into dst (cap bytes, always NUL-terminated; NULL becomes ""). */
void sq_col_text(sqlite3_stmt *st, int col, char *dst, size_t cap);
/* Copies column col as a blob into dst when it has exactly n bytes, else zero-fills dst. */
void sq_col_blob(sqlite3_stmt *st, int col, void *dst, size_t n);

/* Runs PRAGMA quick_check on db; 0 when it says "ok", else logs what it found and -EIO. */
int sq_quick_check(struct sq_store *s, sqlite3 *db);

/* Applies the embedded migrations that the database lacks; sets s->schema_version. */
int sq_migrate(struct sq_store *s, sqlite3 *db);

#endif

/*
 * A private PostgreSQL cluster for tests: initdb + pg_ctl from Debian's postgresql package in a
 * fresh directory under /tmp, listening only on a Unix socket in that directory, owned by an
 * unprivileged user (PostgreSQL refuses to run as root: as root the cluster runs as the user
 * "postgres" through runuser). pgtest_stop stops it and removes the directory. Tests that need
 * it call pgtest_skip_reason() first and SKIP with its answer when it is not NULL.
 *
 * Environment: CLEAVE_PG_BIN overrides the directory of initdb and pg_ctl
 * (default /usr/lib/postgresql/15/bin); CLEAVE_PG_FSYNC=on runs the cluster with fsync on
 * (default off: a test cluster is thrown away).
 */
#ifndef CLEAVE_PGTEST_H
#define CLEAVE_PGTEST_H

#include <stddef.h>

struct pgtest {
	char dir[64];    /* /tmp/cleave-pg-XXXXXX: the socket, the data directory and the log */
	char bin[256];   /* where initdb and pg_ctl are */
	int as_postgres; /* 1: commands run through runuser -u postgres */
	int running;
};

/* NULL when a cluster can be started here, else why not (e.g. "PostgreSQL is not installed"). */
const char *pgtest_skip_reason(void);

/* initdb and start; 0, or -1 with the reason on stderr (and nothing left behind). */
int pgtest_start(struct pgtest *p);

/*
 * Restarts the running cluster (fast shutdown, then start with the same options): every open
 * connection is cut, as when PostgreSQL is restarted under running servers. 0 or -1.
 */
int pgtest_restart(struct pgtest *p);

/*
 * Stops the running cluster with pg_ctl's mode ("fast": sessions are ended and it shuts down
 * cleanly; "immediate": as a crash, recovery at the next start), keeps it down for down_ms, and
 * starts it again with the same options. 0 or -1.
 */
int pgtest_bounce(struct pgtest *p, const char *mode, int down_ms);

/* Stops the cluster (immediate shutdown) and removes its directory; safe to call twice. */
void pgtest_stop(struct pgtest *p);

/*
 * Creates a new empty database called name (letters, digits and _) and writes its libpq URL
 * (postgresql:///NAME?host=DIR&user=cleave) into url. 0 or -1.
 */
int pgtest_create_db(struct pgtest *p, const char *name, char *url, size_t cap);

/* Runs sql (no result wanted) on the database at url; 0 or -1 (logged on stderr). */
int pgtest_exec(const char *url, const char *sql);

/* Runs sql and returns column 0 of its first row as an integer; -1 on failure. */
long long pgtest_int(const char *url, const char *sql);

#endif

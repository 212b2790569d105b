/*
 * Wake-ups between the servers that share one PostgreSQL database (issue 10 section 2). A
 * transaction that queues a command also runs pg_notify on one channel, so the notification
 * exists only if the command was committed; each server keeps one connection of its own that
 * LISTENs and passes what arrives to the service, which resumes the check-ins it holds parked.
 *
 * Payloads on channel cleave_wake: "d:<device id>" (a command is queued for it) and
 * "p:<0|1>:<policy name>" (the policy changed; 1: it is the default) and "s:" (a bulk batch
 * queued commands for many devices: sweep the parked ones, rather than one notification per
 * device, which would be 100,000 for a fleet-wide wipe). NOTIFY is at most once
 * and only to sessions listening at that moment, so the service also sweeps (service.c) and is
 * told each time this connection comes (back) up. The listener's connection is named
 * "cleave-listen-<server pid>" (application_name) so an operator, or a test, can find it in
 * pg_stat_activity.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

#define WAKE_CHANNEL "cleave_wake"
/* Reconnect delays: the first after a loss, doubling up to the cap while it keeps failing. */
#define BACKOFF_FIRST_MS 100
#define BACKOFF_MAX_MS   5000
/* Ids per sweep query: keeps each statement's array parameter under ~20 KB. */
#define SWEEP_CHUNK 500

struct pg_listen {
	struct pg_store *s;
	struct store_listener l;
	pthread_t thread;
	int stop_pipe[2]; /* a byte on [1] ends the thread's wait at once */
	atomic_int stop;
};

int
pg_notify_device(struct store *st, const char *device_id)
{
	struct pg_args a = {0};

	pa_text(&a, device_id);
	return pg_run(S(st), "SELECT pg_notify('" WAKE_CHANNEL "', 'd:' || $1)", &a, NULL,
		      "notify device");
}

int
pg_notify_policy(struct store *st, const char *name, int is_default)
{
	struct pg_args a = {0};

	pa_text(&a, is_default ? "1" : "0");
	pa_text(&a, name);
	return pg_run(S(st), "SELECT pg_notify('" WAKE_CHANNEL "', 'p:' || $1 || ':' || $2)", &a,
		      NULL, "notify policy");
}

int
pg_notify_sweep(struct store *st)
{
	return pg_run(S(st), "SELECT pg_notify('" WAKE_CHANNEL "', 's:')", NULL, NULL,
		      "notify sweep");
}

/* ids[0..n) as a PostgreSQL array literal, each element quoted; NULL when out of memory. */
static char *
array_literal(const char (*ids)[STORE_ID_MAX], size_t n)
{
	char *buf = malloc(n * (2 * STORE_ID_MAX + 3) + 3), *w = buf;

	if (buf == NULL)
		return NULL;
	*w++ = '{';
	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			*w++ = ',';
		*w++ = '"';
		for (const char *c = ids[i]; *c && c < ids[i] + STORE_ID_MAX; c++) {
			if (*c == '"' || *c == '\\')
				*w++ = '\\';
			*w++ = *c;
		}
		*w++ = '"';
	}
	*w++ = '}';
	*w = '\0';
	return buf;
}

int
pg_devices_with_queued(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
		       char (*out)[STORE_ID_MAX], size_t *nout)
{
	*nout = 0;
	for (size_t at = 0; at < n; at += SWEEP_CHUNK) {
		size_t k = n - at < SWEEP_CHUNK ? n - at : SWEEP_CHUNK, got = 0;
		char *arr = array_literal(ids + at, k);
		struct pg_args a = {0};
		int r;

		if (arr == NULL)
			return -ENOMEM;
		pa_text(&a, arr);
		/* commands_device_status serves each id of the array. */
		r = pg_ids(
			S(st),
			"SELECT DISTINCT device_id FROM commands WHERE device_id = ANY($1::text[]) "
			"AND status = 'queued'",
			&a, out + *nout, n - *nout, &got, "sweep for queued commands");
		free(arr);
		if (r != 0)
			return r;
		*nout += got;
	}
	return 0;
}

/* Waits up to ms for a stop; 1 when stopping. */
static int
wait_stop(struct pg_listen *L, int ms)
{
	struct pollfd p = {.fd = L->stop_pipe[0], .events = POLLIN};

	if (ms > 0)
		poll(&p, 1, ms);
	return atomic_load(&L->stop);
}

/* A connection of the listener's own that LISTENs; NULL (logged once by the caller) if none. */
static PGconn *
listen_connect(struct pg_listen *L, char *why, size_t cap)
{
	char app[48];
	/*
	 * Before the URL, so that its own settings win: a bounded connect (the thread must stop
	 * in time) and TCP keepalives, since a listener that only reads would never notice a
	 * silently dropped link. After it, the name the listener is known by.
	 */
	const char *keys[] = {"connect_timeout",
			      "keepalives_idle",
			      "keepalives_interval",
			      "keepalives_count",
			      "dbname",
			      "application_name",
			      NULL};
	const char *vals[] = {"5", "30", "10", "3", L->s->url, app, NULL};
	PGconn *db;
	PGresult *r;

	snprintf(app, sizeof(app), "cleave-listen-%d", (int)getpid());
	/* dbname is expanded as the URL; a keyword repeated later wins over an earlier one. */
	db = PQconnectdbParams(keys, vals, 1);
	if (db == NULL || PQstatus(db) != CONNECTION_OK) {
		snprintf(why, cap, "%s", db != NULL ? PQerrorMessage(db) : "out of memory");
		PQfinish(db);
		return NULL;
	}
	r = PQexec(db, "LISTEN " WAKE_CHANNEL);
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK) {
		snprintf(why, cap, "LISTEN: %s", PQerrorMessage(db));
		PQclear(r);
		PQfinish(db);
		return NULL;
	}
	PQclear(r);
	if (PQsetnonblocking(db, 1) != 0) {
		snprintf(why, cap, "cannot make the connection non-blocking");
		PQfinish(db);
		return NULL;
	}
	return db;
}

/* Passes one notification on, unless one of this process's own connections sent it. */
static void
dispatch(struct pg_listen *L, const PGnotify *n)
{
	const char *p = n->extra;

	if (pg_own_backend(L->s, n->be_pid))
		return;
	if (strncmp(p, "d:", 2) == 0 && p[2] != '\0' && strlen(p + 2) < STORE_ID_MAX)
		L->l.device(L->l.ctx, p + 2);
	else if (strncmp(p, "p:", 2) == 0 && (p[2] == '0' || p[2] == '1') && p[3] == ':')
		L->l.policy(L->l.ctx, p + 4, p[2] == '1');
	else if (strcmp(p, "s:") == 0 && L->l.sweep != NULL)
		L->l.sweep(L->l.ctx);
	else
		log_warn("store: ignored a wake-up notification of an unknown form");
}

/* Reads and dispatches what arrived; 0, or -1 when the connection is gone. */
static int
drain(struct pg_listen *L, PGconn *db)
{
	PGnotify *n;

	if (!PQconsumeInput(db))
		return -1;
	while ((n = PQnotifies(db)) != NULL) {
		dispatch(L, n);
		PQfreemem(n);
	}
	return PQstatus(db) == CONNECTION_OK ? 0 : -1;
}

static void *
listen_main(void *p)
{
	struct pg_listen *L = p;
	PGconn *db = NULL;
	struct pollfd pf[2];
	int backoff = 0, lost = 0, warned = 0;
	char why[256];

	while (!atomic_load(&L->stop)) {
		if (db == NULL) {
			if (wait_stop(L, backoff))
				break;
			db = listen_connect(L, why, sizeof(why));
			if (db == NULL) {
				if (!warned++)
					log_warn("store: wake-up listener cannot connect (retrying "
						 "every few seconds): %s",
						 why);
				backoff = backoff == 0 ? BACKOFF_FIRST_MS : backoff * 2;
				backoff = backoff > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff;
				continue;
			}
			if (lost)
				log_info("store: wake-up listener connected again (backend %d)",
					 PQbackendPID(db));
			backoff = warned = 0;
			/* Anything queued while nobody listened is found by the sweep this asks. */
			L->l.connected(L->l.ctx);
		}
		pf[0] = (struct pollfd){.fd = PQsocket(db), .events = POLLIN};
		pf[1] = (struct pollfd){.fd = L->stop_pipe[0], .events = POLLIN};
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[0].revents == 0 || drain(L, db) == 0)
			continue;
		log_warn("store: wake-up listener lost its connection: %s; reconnecting",
			 PQerrorMessage(db));
		L->l.lost(L->l.ctx);
		PQfinish(db);
		db = NULL;
		lost = 1;
		backoff = BACKOFF_FIRST_MS;
	}
	PQfinish(db);
	return NULL;
}

int
pg_listen_start(struct store *st, const struct store_listener *l)
{
	struct pg_store *s = S(st);
	struct pg_listen *L;

	if (s->listen != NULL)
		return -EALREADY;
	L = calloc(1, sizeof(*L));
	if (L == NULL)
		return -ENOMEM;
	L->s = s;
	L->l = *l;
	if (pipe2(L->stop_pipe, O_CLOEXEC) != 0) {
		free(L);
		return -errno;
	}
	if (pthread_create(&L->thread, NULL, listen_main, L) != 0) {
		close(L->stop_pipe[0]);
		close(L->stop_pipe[1]);
		free(L);
		return -EAGAIN;
	}
	s->listen = L;
	return 0;
}

void
pg_listen_stop(struct store *st)
{
	struct pg_store *s = S(st);
	struct pg_listen *L = s->listen;

	if (L == NULL)
		return;
	atomic_store(&L->stop, 1);
	(void)!write(L->stop_pipe[1], "x", 1);
	pthread_join(L->thread, NULL);
	close(L->stop_pipe[0]);
	close(L->stop_pipe[1]);
	free(L);
	s->listen = NULL;
}

/*
 * A bulk's batch as a handful of set-based statements (issue 10 section 4), for stores that
 * offer them (PostgreSQL): device by device, a batch cost seven or eight round trips per
 * device, and 100,000 devices took 104 s. The outcome is the one svc_bulk_device_tx gives each
 * device, from the same steps (svc_command_new, svc_command_sign, the same audit detail):
 * a device that is not active is refused, one with an open command of the type keeps it, and
 * every other one gets its own counter, its own signed ticket, its own command row and its own
 * command.create entry in the audit chain, in the batch's order.
 *
 * Locks, in the documented order: the caller's device_query FOR UPDATE holds the batch's
 * devices (in row id order) before this runs; the audit head is taken last, by the chained
 * append, after the tickets are signed, so a single command waiting for the head waits only for
 * the few statements at the batch's end.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

struct svc_bulkset {
	size_t max;
	char (*ids)[STORE_ID_MAX];  /* the active devices, then the ones to queue for */
	char (*open)[STORE_ID_MAX]; /* each active device's open command of the type, or "" */
	size_t *pos;                /* the row of ids[j] in the batch */
	int64_t *counters;
	struct command *cmds;
	struct audit_entry *audit;
};

struct svc_bulkset *
svc_bulkset_new(size_t max)
{
	struct svc_bulkset *w = calloc(1, sizeof(*w));

	if (w == NULL)
		return NULL;
	w->max = max;
	w->ids = calloc(max, sizeof(*w->ids));
	w->open = calloc(max, sizeof(*w->open));
	w->pos = calloc(max, sizeof(*w->pos));
	w->counters = calloc(max, sizeof(*w->counters));
	w->cmds = calloc(max, sizeof(*w->cmds));
	w->audit = calloc(max, sizeof(*w->audit));
	if (w->ids == NULL || w->open == NULL || w->pos == NULL || w->counters == NULL ||
	    w->cmds == NULL || w->audit == NULL) {
		svc_bulkset_free(w);
		return NULL;
	}
	return w;
}

void
svc_bulkset_free(struct svc_bulkset *w)
{
	if (w == NULL)
		return;
	free(w->ids);
	free(w->open);
	free(w->pos);
	free(w->counters);
	free(w->cmds);
	free(w->audit);
	free(w);
}

/*
 * Sorts the batch: refused (not active) and pending (an open command of the type) devices get
 * their outcome; the others are left in w->ids[0..*nq) with their rows in w->pos.
 */
static int
sort_out(struct service *s, struct svc_bulkset *w, const char *type, const struct device *rows,
	 size_t n, struct svc_bulk_result *res, size_t *nq)
{
	size_t na = 0;
	int r;

	for (size_t i = 0; i < n; i++) {
		memset(&res[i], 0, sizeof(res[i]));
		str_copy(res[i].device_id, sizeof(res[i].device_id), rows[i].id);
		if (strcmp(rows[i].status, "active") != 0) {
			res[i].outcome = BULK_REFUSED;
			snprintf(res[i].detail, sizeof(res[i].detail), "device is %s",
				 rows[i].status);
			continue;
		}
		str_copy(w->ids[na], STORE_ID_MAX, rows[i].id);
		w->pos[na++] = i;
	}
	r = s->st->ops->command_open_of_type(s->st, (const char(*)[STORE_ID_MAX])w->ids, na, type,
					     w->open);
	*nq = 0;
	for (size_t j = 0; r == 0 && j < na; j++) {
		if (w->open[j][0] != '\0') {
			res[w->pos[j]].outcome = BULK_PENDING;
			str_copy(res[w->pos[j]].command_id, STORE_ID_MAX, w->open[j]);
			continue;
		}
		/* Compacts in place: *nq <= j, and open[] is not moved. */
		if (*nq != j) {
			str_copy(w->ids[*nq], STORE_ID_MAX, w->ids[j]);
			w->pos[*nq] = w->pos[j];
		}
		(*nq)++;
	}
	return r;
}

/*
 * Threads that sign a batch's tickets while PostgreSQL bumps the counters. Since the counters
 * moved to their narrow table (migration 0016) that UPDATE takes ~7 us a device and signing ~35
 * us, so the batch waits for the signing: split over two threads it takes half as long where a
 * core is free (this machine has two; PostgreSQL is mostly idle meanwhile).
 */
#define SIGNERS 2

/* Signs the tickets of w's commands [from, to). */
struct signer {
	struct service *s;
	struct svc_bulkset *w;
	const char *actor, *type, *reason;
	const struct device *rows;
	size_t from, to;
	int r;
};

static void *
sign_all(void *p)
{
	struct signer *g = p;
	struct svc_bulkset *w = g->w;

	for (size_t j = g->from; g->r == 0 && j < g->to; j++) {
		const struct device *d = &g->rows[w->pos[j]];

		g->r = svc_command_new(g->s, d, g->type, g->reason, g->actor, 0, &w->cmds[j]);
		/* The row as this transaction locked it: the counter its UPDATE will return. */
		w->cmds[j].counter = d->ticket_counter + 1;
		if (g->r == 0)
			g->r = svc_command_sign(g->s, d, &w->cmds[j], NULL);
	}
	return NULL;
}

/*
 * The nq commands: counters taken from the rows (one UPDATE ... RETURNING), tickets signed
 * meanwhile with the counters the locked rows predict (checked against what the UPDATE
 * returned: a difference fails the batch), rows inserted in one go.
 */
static int
queue_all(struct service *s, struct svc_bulkset *w, const char *actor, const char *type,
	  const char *reason, const struct device *rows, size_t nq)
{
	struct signer g[SIGNERS];
	pthread_t t[SIGNERS];
	int threaded[SIGNERS], r;
	size_t per = (nq + SIGNERS - 1) / SIGNERS;

	for (int k = 0; k < SIGNERS; k++) {
		size_t from = per * (size_t)k < nq ? per * (size_t)k : nq;
		size_t to = from + per < nq ? from + per : nq;

		g[k] = (struct signer){s, w, actor, type, reason, rows, from, to, 0};
		threaded[k] =
			nq > 1 && from < to && pthread_create(&t[k], NULL, sign_all, &g[k]) == 0;
	}
	r = s->st->ops->device_next_counters(s->st, (const char(*)[STORE_ID_MAX])w->ids, nq,
					     svc_command_desired(type), w->counters);
	for (int k = 0; k < SIGNERS; k++) {
		if (threaded[k])
			pthread_join(t[k], NULL);
		else
			sign_all(&g[k]);
		if (r == 0)
			r = g[k].r;
	}
	for (size_t j = 0; r == 0 && j < nq; j++) {
		if (w->cmds[j].counter != w->counters[j]) {
			log_err("bulk: device %s's counter moved under its lock", w->ids[j]);
			r = -ESTALE;
		}
	}
	if (r == 0)
		r = s->st->ops->command_insert_many(s->st, w->cmds, nq);
	if (r == 0)
		r = svc_ev_command_queued(s, w->cmds, nq);
	return r;
}

/* Their command.create entries, chained in order under the audit head lock (taken last). */
static int
audit_all(struct service *s, struct svc_bulkset *w, const char *actor, size_t nq)
{
	int64_t at_ms = service_now_ms(s);

	for (size_t j = 0; j < nq; j++) {
		struct audit_entry *e = &w->audit[j];

		memset(e, 0, sizeof(*e));
		e->at_ms = at_ms;
		str_copy(e->actor, sizeof(e->actor), actor);
		str_copy(e->action, sizeof(e->action), "command.create");
		str_copy(e->target, sizeof(e->target), w->cmds[j].id);
		str_copy(e->outcome, sizeof(e->outcome), "ok");
		svc_command_audit_detail(&w->cmds[j], e->detail, sizeof(e->detail));
	}
	return audit_append_many(s->st, w->audit, nq);
}

int
svc_bulkset_tx(struct service *s, struct svc_bulkset *w, const char *actor, const char *type,
	       const char *reason, const struct device *rows, size_t n, struct svc_bulk_result *res)
{
	size_t nq = 0;
	int r;

	if (n > w->max)
		return -EINVAL;
	r = sort_out(s, w, type, rows, n, res, &nq);
	if (r == 0)
		r = queue_all(s, w, actor, type, reason, rows, nq);
	if (r == 0 && svc_command_audited(type))
		r = audit_all(s, w, actor, nq);
	for (size_t j = 0; r == 0 && j < nq; j++) {
		res[w->pos[j]].outcome = BULK_QUEUED;
		str_copy(res[w->pos[j]].command_id, STORE_ID_MAX, w->cmds[j].id);
	}
	return r;
}

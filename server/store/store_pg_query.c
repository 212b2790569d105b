/*
 * The PostgreSQL backend of the console's queries (issue 9), the twin of store_sqlite_query.c
 * and store_sqlite_auditq.c: the device list with search, filters, sorts and keyset cursors,
 * the compliance dashboard's counts, the command queue across devices and the audit list's
 * filters. Their SQL depends on which filters are given (a "$2 IS NULL OR col = $2" term would
 * hide every index from a generic plan), so each is built per call (store_sqlq.c, shared with
 * SQLite: values are always bound, never pasted) and sent unprepared with typed parameters.
 *
 * Sort keys and cursors are those of SQLite: owner ignores case (lower() in byte order), and
 * the tie-breaker of every page is the rowid, which each index of migration 0006 names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_conn.h"
#include "store_pg_priv.h"
#include "store_sqlq.h"

#define S(st) ((struct pg_store *)(st))

/* Distinct agent versions compared with a policy's minimum; more is refused (-E2BIG). */
#define VERSIONS_MAX 1000

/* Type OIDs of the parameters (pg_type.oid): text, bytea, bigint. */
#define OID_TEXT  25
#define OID_BYTEA 17
#define OID_INT8  20

/* b's parameters as PQexecParams takes them; each typed, so one the text omits is no error. */
struct pg_params {
	Oid type[SQB_BINDS];
	const char *v[SQB_BINDS];
	int len[SQB_BINDS];
	int fmt[SQB_BINDS];
	char num[SQB_BINDS][24];
};

/* Runs b's SQL; *res as pg_run's. */
static int
qb_run(struct pg_store *s, struct sqb *b, PGresult **res, const char *what)
{
	struct pg_params *p;
	int e;

	*res = NULL;
	if (b->overflow) {
		log_err("store: %s: the query grew past its bound", what);
		return -E2BIG;
	}
	p = malloc(sizeof(*p));
	if (p == NULL)
		return -ENOMEM;
	for (int i = 0; i < b->nb; i++) {
		const struct sqb_bind *v = &b->b[i];

		p->len[i] = v->kind == SQB_BLOB ? v->n : 0;
		p->fmt[i] = v->kind == SQB_BLOB;
		p->type[i] = v->kind == SQB_BLOB  ? OID_BYTEA
			     : v->kind == SQB_INT ? OID_INT8
						  : OID_TEXT;
		p->v[i] = v->p;
		if (v->kind == SQB_INT) {
			snprintf(p->num[i], sizeof(p->num[i]), "%lld", (long long)v->i);
			p->v[i] = p->num[i];
		}
	}
	e = pg_run_adhoc(s, b->buf, b->nb, p->type, p->v, p->len, p->fmt, res, what);
	free(p);
	return e;
}

static int
qb_many(struct pg_store *s, struct sqb *b, void *out, size_t size, size_t max, size_t *n,
	pg_row_fn fn, const char *what)
{
	PGresult *r;
	int e = qb_run(s, b, &r, what);

	*n = 0;
	if (e != 0)
		return e;
	pg_map_rows(r, out, size, max, n, fn);
	PQclear(r);
	return 0;
}

/* Runs b (an EXPLAIN) and joins its plan lines into plan, "; " apart (tests: their plans). */
static int
qb_plan(struct pg_store *s, struct sqb *b, char *plan, size_t cap)
{
	PGresult *r;
	size_t len = 0;
	int e = qb_run(s, b, &r, "explain");

	if (e != 0)
		return e;
	plan[0] = '\0';
	for (int i = 0; i < PQntuples(r) && len + 1 < cap; i++) {
		int w = snprintf(plan + len, cap - len, "%s; ", PQgetvalue(r, i, 0));

		len += w > 0 && (size_t)w < cap - len ? (size_t)w : cap - len - 1;
	}
	PQclear(r);
	return 0;
}

/* ---- agent versions below a minimum ---- */

/*
 * Which agent versions are "older than the minimum" is the service's rule (spec->version_cmp),
 * which PostgreSQL cannot call. The store reads the distinct versions (a handful) and hands
 * each group the array of those below its minimum: the predicate is then "= ANY(array)". A
 * version first seen between the two statements is not counted old by that one read.
 */
struct versions {
	char (*v)[64];
	size_t n;
	const char **old; /* per group: an array literal '{"1.0","1.2"}', or NULL: no minimum */
	size_t ngroups;
};

static void
version_row(const PGresult *r, int i, void *out)
{
	pg_col_text(r, i, 0, out, 64);
}

static void
versions_free(struct versions *vs)
{
	for (size_t i = 0; vs->old != NULL && i < vs->ngroups; i++)
		free((char *)vs->old[i]);
	free(vs->old);
	free(vs->v);
	memset(vs, 0, sizeof(*vs));
}

/* The array literal of the versions below min (quoted, backslash-escaped). */
static char *
old_literal(const struct versions *vs, const char *min, int (*cmp)(const char *, const char *))
{
	size_t cap = 3, len = 0;
	char *out;

	for (size_t i = 0; i < vs->n; i++)
		cap += 2 * strlen(vs->v[i]) + 3;
	out = malloc(cap);
	if (out == NULL)
		return NULL;
	out[len++] = '{';
	for (size_t i = 0; i < vs->n; i++) {
		if (cmp(vs->v[i], min) >= 0)
			continue;
		if (len > 1)
			out[len++] = ',';
		out[len++] = '"';
		for (const char *p = vs->v[i]; *p; p++) {
			if (*p == '"' || *p == '\\')
				out[len++] = '\\';
			out[len++] = *p;
		}
		out[len++] = '"';
	}
	out[len++] = '}';
	out[len] = '\0';
	return out;
}

static int
versions_load(struct pg_store *s, const struct compliance_spec *spec, struct versions *vs)
{
	struct pg_args a = {0};
	int need = 0, r;

	memset(vs, 0, sizeof(*vs));
	for (size_t i = 0; i < spec->n && i < SQB_GROUPS_MAX; i++)
		need |= spec->groups[i].min_agent[0] != '\0';
	if (!need || spec->version_cmp == NULL)
		return 0;
	vs->ngroups = spec->n < SQB_GROUPS_MAX ? spec->n : SQB_GROUPS_MAX;
	/* Room for every group, so the array can be handed to sqb_bind_groups as it is. */
	vs->old = calloc(SQB_GROUPS_MAX, sizeof(*vs->old));
	vs->v = calloc(VERSIONS_MAX + 1, sizeof(*vs->v));
	if (vs->old == NULL || vs->v == NULL)
		return -ENOMEM;
	pa_int(&a, VERSIONS_MAX + 1);
	r = pg_many(s, "SELECT DISTINCT agent_version FROM devices LIMIT $1", &a, vs->v,
		    sizeof(*vs->v), VERSIONS_MAX + 1, &vs->n, version_row, "agent versions");
	if (r == 0 && vs->n > VERSIONS_MAX) {
		log_err("store: more than %d distinct agent versions", VERSIONS_MAX);
		r = -E2BIG;
	}
	for (size_t i = 0; r == 0 && i < vs->ngroups; i++) {
		const struct compliance_group *g = &spec->groups[i];

		if (g->min_agent[0] == '\0')
			continue;
		vs->old[i] = old_literal(vs, g->min_agent, spec->version_cmp);
		if (vs->old[i] == NULL)
			r = -ENOMEM;
	}
	return r;
}

/* The AGENT_OLD test: the group's versions found older by the service's comparison. */
static void
agent_old(struct sqb *b, int param)
{
	sqb_add(b, "agent_version = ANY($%d::text[])", param);
}

/* ---- the device list ---- */

/* The owner's sort key: lower() in byte order, the expression devices_owner_nocase indexes. */
#define OWNER_KEY "(lower(owner) COLLATE \"C\")"

static void
search_sql(struct sqb *b, const char *q, struct sqb_search *t)
{
	sqb_search(b, q, t);
	/* Each branch is a range of its own index: a BitmapOr of four index scans. */
	sqb_add(b,
		" AND ((" OWNER_KEY " >= lower($%d) AND " OWNER_KEY " < lower($%d))"
		" OR ((lower(model) COLLATE \"C\") >= lower($%d) AND"
		" (lower(model) COLLATE \"C\") < lower($%d))"
		" OR (id COLLATE \"C\" >= $%d AND id COLLATE \"C\" < $%d)"
		" OR (hv_fingerprint COLLATE \"C\" >= $%d AND hv_fingerprint COLLATE \"C\" < $%d))",
		t->p_lo, t->p_hi, t->p_lo, t->p_hi, t->p_lo, t->p_hi, t->p_fp_lo, t->p_fp_hi);
}

static const char *
sort_key(enum device_sort s)
{
	return s == DEV_SORT_OWNER      ? OWNER_KEY
	       : s == DEV_SORT_ENROLLED ? "enrolled_at"
					: "last_seen_at";
}

static void
count_row(const PGresult *r, int i, void *out)
{
	*(int64_t *)out = pg_col_int(r, i, 0);
}

/*
 * What a device query reads from; every device has its device_orders row (migration 0016), so
 * each form lists and counts the same devices.
 * - With a desired= filter or compliance terms (which compare desired_state), or FOR UPDATE (a
 *   bulk's batch: both rows locked, the devices row first): the join, planned as PostgreSQL
 *   likes (desired= can start from device_orders_desired).
 * - Otherwise a count reads devices alone (a bulk's filter {} counted by an index-only scan,
 *   as before migration 0016; with the join it was a hash join of both tables, ~3x longer).
 * - And a page of the list gets the order columns by one probe of device_orders' key per
 *   devices row (LATERAL ... OFFSET 0 keeps it a probe). Left to choose, the planner hashed
 *   the whole of device_orders when the devices side looked small (a search), reading a
 *   table whole for one page.
 */
static const char *
devices_from(const struct device_query *q, int count, int need_spec)
{
	if (q->desired != NULL || need_spec || q->for_update)
		return PG_DEVICES_FROM;
	if (count)
		return "devices";
	return "devices CROSS JOIN LATERAL (SELECT ticket_counter, desired_state FROM "
	       "device_orders WHERE device_orders.device_id = devices.id OFFSET 0) AS "
	       "device_orders";
}

/*
 * The device query's rows into out, or with plan (tests) its plan, or with count the number
 * of rows its filters match (no cursor, order or limit).
 */
static int
device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n,
	     char *plan, size_t cap, int64_t *count)
{
	struct sqb_group *gb = NULL;
	struct versions vs = {0};
	struct sqb_search t;
	struct sqb *b = NULL;
	const char *dir = q->desc ? "DESC" : "ASC";
	int need_spec = q->compliant >= 0 || q->reasons != 0;
	int r;

	*n = 0;
	if (need_spec && q->spec == NULL)
		return -EINVAL;
	r = sqb_new(&b, agent_old);
	if (r == 0 && need_spec && (gb = calloc(SQB_GROUPS_MAX, sizeof(*gb))) == NULL)
		r = -ENOMEM;
	if (r == 0 && need_spec)
		r = versions_load(S(st), q->spec, &vs);
	if (r != 0)
		goto out;
	sqb_add(b, "%sSELECT %s FROM %s WHERE true", plan ? "EXPLAIN " : "",
		count ? "count(*)" : pg_device_cols, devices_from(q, count != NULL, need_spec));
	if (q->q != NULL && q->q[0] != '\0')
		search_sql(b, q->q, &t);
	sqb_filters(b, q);
	if (need_spec) {
		sqb_bind_groups(b, q->spec, vs.old, gb);
		sqb_compliance(b, q, gb);
	}
	if (count != NULL) {
		r = qb_many(S(st), b, count, sizeof(*count), 1, n, count_row, "device count");
		goto out;
	}
	if (q->sort == DEV_SORT_ROWID)
		sqb_rowid_walk(b, q);
	else if (q->has_after) {
		int owner = q->sort == DEV_SORT_OWNER;
		int k = owner ? sqb_text(b, q->after_text ? q->after_text : "")
			      : sqb_int(b, q->after_key);

		/* A row comparison in the index's own order: one range of it. */
		sqb_add(b, " AND (%s, rowid) %s (%s$%d%s, $%d)", sort_key(q->sort),
			q->desc ? "<" : ">", owner ? "lower(" : "", k,
			owner ? ") COLLATE \"C\"" : "", sqb_int(b, q->after_rowid));
	}
	if (q->sort != DEV_SORT_ROWID)
		sqb_add(b, " ORDER BY %s %s, rowid %s LIMIT %zu", sort_key(q->sort), dir, dir,
			q->limit);
	if (q->for_update)
		sqb_add(b, " FOR UPDATE");
	r = plan ? qb_plan(S(st), b, plan, cap)
		 : qb_many(S(st), b, out, sizeof(*out), q->limit, n, pg_device_row, "device query");
out:
	versions_free(&vs);
	sqb_free(b);
	free(gb);
	return r;
}

int
pg_device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n)
{
	return device_query(st, q, out, n, NULL, 0, NULL);
}

int
pg_device_count(struct store *st, const struct device_query *q, int64_t *count)
{
	size_t n = 0;

	*count = 0;
	return device_query(st, q, NULL, &n, NULL, 0, count);
}

/* ---- the dashboard ---- */

static int
summary_states(struct pg_store *s, struct device_summary *out)
{
	PGresult *r;
	int e = pg_run(s,
		       "SELECT desired_state, reported_state, count(*) FROM " PG_DEVICES_FROM
		       " GROUP BY desired_state, reported_state ORDER BY 3 DESC",
		       NULL, &r, "device summary states");

	if (e != 0)
		return e;
	/* States are a handful of fixed words; keep the largest. */
	for (int i = 0; i < PQntuples(r) && out->nstates < SUMMARY_STATES_MAX; i++) {
		pg_col_text(r, i, 0, out->states[out->nstates].desired, 16);
		pg_col_text(r, i, 1, out->states[out->nstates].reported, 16);
		out->states[out->nstates].n = pg_col_int(r, i, 2);
		out->nstates++;
	}
	PQclear(r);
	return 0;
}

int
pg_device_summary(struct store *st, const struct compliance_spec *spec, struct device_summary *out)
{
	struct sqb_group *gb = calloc(SQB_GROUPS_MAX, sizeof(*gb));
	struct versions vs = {0};
	struct sqb *b = NULL;
	PGresult *res = NULL;
	int r = gb ? sqb_new(&b, agent_old) : -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (r == 0)
		r = versions_load(S(st), spec, &vs);
	if (r != 0)
		goto out;
	/* One pass over the table; the per-mask counts are split into per-reason ones here. */
	sqb_bind_groups(b, spec, vs.old, gb);
	sqb_summary(b, spec, gb, PG_DEVICES_FROM);
	r = qb_run(S(st), b, &res, "device summary");
	for (int i = 0; r == 0 && i < PQntuples(res); i++)
		sqb_summary_row(out, (unsigned)pg_col_int(res, i, 0), pg_col_int(res, i, 1),
				pg_col_int(res, i, 2));
	if (r == 0)
		r = summary_states(S(st), out);
out:
	PQclear(res);
	versions_free(&vs);
	sqb_free(b);
	free(gb);
	return r;
}

/* ---- the command queue ---- */

static int
command_query(struct store *st, const struct command_filter *f, struct command *out, size_t *n)
{
	struct sqb *b = NULL;
	int r = sqb_new(&b, NULL);

	*n = 0;
	if (r != 0)
		return r;
	sqb_commands(b, f, pg_command_cols);
	r = qb_many(S(st), b, out, sizeof(*out), f->limit, n, pg_command_row, "command query");
	sqb_free(b);
	return r;
}

int
pg_command_list_any(struct store *st, const struct command_filter *f, struct command *out,
		    size_t *n)
{
	if (f->newest_first || f->type != NULL)
		return command_query(st, f, out, n);
	return pg_command_list(st, f, out, n);
}

/* ---- the audit list ---- */

/* The audit list's rows into out, or with plan (tests) its plan. */
static int
audit_list(struct store *st, const struct audit_filter *f, struct audit_entry *out, size_t *n,
	   char *plan, size_t cap)
{
	/*
	 * Each filter given is an index range of its own (migration 0008); seq pages. With a
	 * lower time bound and nothing else, PostgreSQL would walk the log in seq order from the
	 * cursor, expecting matches to be spread evenly, and read every entry older than the
	 * window first (at_ms grows with seq). "seq + 0" hides that order from it, so it reads
	 * the window's entries through audit_at and sorts them: the window bounds the work, as
	 * SQLite's INDEXED BY audit_at does (store_sqlite_auditq.c).
	 */
	int by_time = f->since_ms > 0 && !f->actor && !f->action && !f->target;
	struct sqb *b = NULL;
	int r = sqb_new(&b, NULL);

	*n = 0;
	if (r != 0)
		return r;
	sqb_add(b, "%sSELECT %s FROM audit WHERE seq > $%d", plan ? "EXPLAIN " : "", pg_audit_cols,
		sqb_int(b, f->after));
	if (f->actor != NULL)
		sqb_add(b, " AND actor = $%d", sqb_text(b, f->actor));
	if (f->action != NULL)
		sqb_add(b, " AND action = $%d", sqb_text(b, f->action));
	if (f->target != NULL)
		sqb_add(b, " AND target = $%d", sqb_text(b, f->target));
	if (f->since_ms > 0)
		sqb_add(b, " AND at_ms >= $%d", sqb_int(b, f->since_ms));
	if (f->until_ms > 0)
		sqb_add(b, " AND at_ms < $%d", sqb_int(b, f->until_ms));
	sqb_add(b, " ORDER BY seq%s LIMIT %zu", by_time ? " + 0" : "", f->limit);
	r = plan ? qb_plan(S(st), b, plan, cap)
		 : qb_many(S(st), b, out, sizeof(*out), f->limit, n, pg_audit_row, "audit list");
	sqb_free(b);
	return r;
}

int
pg_audit_list(struct store *st, const struct audit_filter *f, struct audit_entry *out, size_t *n)
{
	return audit_list(st, f, out, n, NULL, 0);
}

#ifdef CLEAVE_TEST_HOOKS
int
store_pg_explain_device_query(struct store *st, const struct device_query *q, char *plan,
			      size_t cap)
{
	size_t n;

	return device_query(st, q, NULL, &n, plan, cap, NULL);
}

int
store_pg_explain_audit_list(struct store *st, const struct audit_filter *f, char *plan, size_t cap)
{
	size_t n;

	return audit_list(st, f, NULL, &n, plan, cap);
}
#endif

/* ---- one device against a label query (a group's policy) ---- */

int
pg_device_matches(struct store *st, const char *device_id, const struct label_query *q, int *match)
{
	struct sqb *b = NULL;
	PGresult *r = NULL;
	int e = sqb_new(&b, NULL);

	*match = 0;
	if (e != 0)
		return e;
	sqb_add(b, "SELECT count(*) FROM devices WHERE id = $%d", sqb_text(b, device_id));
	sqb_labelq(b, q);
	e = qb_run(S(st), b, &r, "device matches");
	if (e == 0)
		*match = PQntuples(r) == 1 && pg_col_int(r, 0, 0) > 0;
	PQclear(r);
	sqb_free(b);
	return e;
}

/*
 * The PostgreSQL backend of the console's queries (issue 9), the twin of store_sqlite_query.c
 * and store_sqlite_auditq.c: the device list with search, filters, sorts and keyset cursors,
 * the compliance dashboard's counts, the command queue across devices and the audit list's
 * filters. Their SQL depends on which filters are given (a "$2 IS NULL OR col = $2" term would
 * hide every index from a generic plan), so each is built per call into a bounded buffer with
 * numbered parameters (values are always bound, never pasted) and sent unprepared. Which
 * reason makes a device non-compliant is the service's rule; this file only turns the values
 * of a compliance_spec into predicates.
 *
 * Sort keys and cursors are those of SQLite: owner ignores case (lower() in byte order), and
 * the tie-breaker of every page is the rowid, which each index of migration 0006 names.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

#define PQB_CAP    (256 * 1024)
#define PQB_BINDS  1024
#define GROUPS_MAX 200
/* Distinct agent versions compared with a policy's minimum; more is refused (-E2BIG). */
#define VERSIONS_MAX 1000

/* SQL text under construction and its parameters (values borrowed until the query ran). */
struct pqb {
	char *buf;
	size_t len;
	int overflow;
	int nb;
	Oid type[PQB_BINDS];
	const char *v[PQB_BINDS];
	int len_[PQB_BINDS];
	int fmt[PQB_BINDS];
	char num[PQB_BINDS][24];
};

static void
qb_add(struct pqb *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	k = vsnprintf(b->buf + b->len, PQB_CAP - b->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= PQB_CAP - b->len)
		b->overflow = 1;
	else
		b->len += (size_t)k;
}

/* Type OIDs of the parameters (pg_type.oid): text, bytea, bigint. */
#define OID_TEXT  25
#define OID_BYTEA 17
#define OID_INT8  20

/*
 * Adds a parameter and returns its number for "$N"; 0 when there is no room (overflow). Each
 * has its type, so that one the text does not use (a group's digest) is no error.
 */
static int
qb_bind(struct pqb *b, const void *p, int n, int binary)
{
	if (b->nb >= PQB_BINDS) {
		b->overflow = 1;
		return 0;
	}
	b->type[b->nb] = binary ? OID_BYTEA : OID_TEXT;
	b->v[b->nb] = p;
	b->len_[b->nb] = n;
	b->fmt[b->nb] = binary;
	return ++b->nb;
}

static int
qb_text(struct pqb *b, const char *t)
{
	return qb_bind(b, t, 0, 0);
}

static int
qb_int(struct pqb *b, int64_t v)
{
	int k = b->nb < PQB_BINDS ? b->nb : 0;

	snprintf(b->num[k], sizeof(b->num[k]), "%lld", (long long)v);
	k = qb_bind(b, b->num[k], 0, 0);
	if (k > 0)
		b->type[k - 1] = OID_INT8;
	return k;
}

static int
qb_new(struct pqb **out)
{
	struct pqb *b = calloc(1, sizeof(*b));

	if (b != NULL)
		b->buf = malloc(PQB_CAP);
	if (b == NULL || b->buf == NULL) {
		free(b);
		return -ENOMEM;
	}
	b->buf[0] = '\0';
	*out = b;
	return 0;
}

static void
qb_free(struct pqb *b)
{
	if (b != NULL)
		free(b->buf);
	free(b);
}

/* Runs b's SQL; *res as pg_run's. */
static int
qb_run(struct pg_store *s, struct pqb *b, PGresult **res, const char *what)
{
	*res = NULL;
	if (b->overflow) {
		log_err("store: %s: the query grew past its bound", what);
		return -E2BIG;
	}
	return pg_run_adhoc(s, b->buf, b->nb, b->type, b->v, b->len_, b->fmt, res, what);
}

static int
qb_many(struct pg_store *s, struct pqb *b, void *out, size_t size, size_t max, size_t *n,
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
	char **old; /* per group: an array literal '{"1.0","1.2"}', or NULL when no minimum */
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
		free(vs->old[i]);
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
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++)
		need |= spec->groups[i].min_agent[0] != '\0';
	if (!need || spec->version_cmp == NULL)
		return 0;
	vs->ngroups = spec->n < GROUPS_MAX ? spec->n : GROUPS_MAX;
	vs->old = calloc(vs->ngroups, sizeof(*vs->old));
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

/* ---- compliance predicates ---- */

/* Parameter numbers of each group's values, bound once and used by every predicate. */
struct group_binds {
	int name, digest, old;
};

static void
bind_groups(struct pqb *b, const struct compliance_spec *spec, const struct versions *vs,
	    struct group_binds *gb)
{
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++) {
		const struct compliance_group *g = &spec->groups[i];

		gb[i].name = qb_text(b, g->policy);
		gb[i].digest = qb_bind(b, g->digest, sizeof(g->digest), 1);
		gb[i].old = vs->old != NULL && vs->old[i] != NULL ? qb_text(b, vs->old[i]) : 0;
	}
}

static void
group_cond(struct pqb *b, const struct compliance_group *g, const struct group_binds *gb)
{
	if (g->is_default)
		qb_add(b, "(policy_name = $%d OR policy_name = '')", gb->name);
	else
		qb_add(b, "policy_name = $%d", gb->name);
}

/* "(g1 AND x1) OR (g2 AND x2) ..." over the groups with a limit of this kind; false if none. */
static void
per_group(struct pqb *b, const struct compliance_spec *spec, const struct group_binds *gb,
	  unsigned bit)
{
	qb_add(b, "(false");
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++) {
		const struct compliance_group *g = &spec->groups[i];

		if ((bit == COMPLY_OFFLINE && g->offline_before == 0) ||
		    (bit == COMPLY_AGENT_OLD && gb[i].old == 0))
			continue;
		qb_add(b, " OR (");
		group_cond(b, g, &gb[i]);
		if (bit == COMPLY_NOT_APPLIED)
			qb_add(b, " AND attested_policy <> $%d::bytea)", gb[i].digest);
		else if (bit == COMPLY_OFFLINE)
			qb_add(b, " AND last_seen_at < %lld)", (long long)g->offline_before);
		else if (bit == COMPLY_AGENT_OLD)
			qb_add(b, " AND agent_version = ANY($%d::text[]))", gb[i].old);
		else
			qb_add(b,
			       " AND (CASE WHEN attested_at > 0 THEN attested_at ELSE enrolled_at "
			       "END) < %lld)",
			       (long long)g->attest_before);
	}
	qb_add(b, ")");
}

static void
no_policy(struct pqb *b, const struct compliance_spec *spec, const struct group_binds *gb)
{
	qb_add(b, "NOT (false");
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++) {
		qb_add(b, " OR ");
		group_cond(b, &spec->groups[i], &gb[i]);
	}
	qb_add(b, ")");
}

/* The predicate "the device has reason bit" (one COMPLY_* bit). */
static void
reason_sql(struct pqb *b, const struct compliance_spec *spec, const struct group_binds *gb,
	   unsigned bit)
{
	switch (bit) {
	case COMPLY_RETIRED:
		qb_add(b, "(status <> 'active' AND superseded_by = '')");
		break;
	case COMPLY_SUPERSEDED:
		qb_add(b, "(status <> 'active' AND superseded_by <> '')");
		break;
	case COMPLY_NO_POLICY:
		no_policy(b, spec, gb);
		break;
	case COMPLY_ATTEST_STALE:
		qb_add(b, "(");
		per_group(b, spec, gb, bit);
		qb_add(b, " OR (");
		no_policy(b, spec, gb);
		qb_add(b,
		       " AND (CASE WHEN attested_at > 0 THEN attested_at ELSE enrolled_at END) "
		       "< %lld))",
		       (long long)spec->attest_before);
		break;
	case COMPLY_MISMATCH:
		qb_add(b, "(attest_status = 'mismatch')");
		break;
	case COMPLY_WIPED:
		qb_add(b, "(reported_state = 'wiped')");
		break;
	case COMPLY_DIFFERS:
		qb_add(b, "(desired_state <> reported_state)");
		break;
	default: /* NOT_APPLIED, OFFLINE, AGENT_OLD */
		per_group(b, spec, gb, bit);
		break;
	}
}

/* "(r1 OR r2 ...)" over the bits of mask. */
static void
reasons_sql(struct pqb *b, const struct compliance_spec *spec, const struct group_binds *gb,
	    unsigned mask)
{
	qb_add(b, "(false");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		qb_add(b, " OR ");
		reason_sql(b, spec, gb, 1u << i);
	}
	qb_add(b, ")");
}

/* ---- the device list ---- */

/* The owner's sort key: lower() in byte order, the expression devices_owner_nocase indexes. */
#define OWNER_KEY "(lower(owner) COLLATE \"C\")"

struct search_terms {
	char lo[STORE_OWNER_MAX], hi[STORE_OWNER_MAX + 8];
	char fp_lo[STORE_OWNER_MAX], fp_hi[STORE_OWNER_MAX + 8];
};

static void
search_sql(struct pqb *b, const char *q, struct search_terms *t)
{
	const char *fp = strncmp(q, "SHA256:", 7) == 0 ? q + 7 : q;
	int lo, hi, flo, fhi;

	/* [q, q + the largest code point): the strings that start with q, in byte order. */
	snprintf(t->lo, sizeof(t->lo), "%s", q);
	snprintf(t->hi, sizeof(t->hi), "%s\xf4\x8f\xbf\xbf", t->lo);
	snprintf(t->fp_lo, sizeof(t->fp_lo), "%s", fp);
	snprintf(t->fp_hi, sizeof(t->fp_hi), "%s\xf4\x8f\xbf\xbf", t->fp_lo);
	lo = qb_text(b, t->lo);
	hi = qb_text(b, t->hi);
	flo = qb_text(b, t->fp_lo);
	fhi = qb_text(b, t->fp_hi);
	/* Each branch is a range of its own index: a BitmapOr of four index scans. */
	qb_add(b,
	       " AND ((" OWNER_KEY " >= lower($%d) AND " OWNER_KEY " < lower($%d))"
	       " OR ((lower(model) COLLATE \"C\") >= lower($%d) AND"
	       " (lower(model) COLLATE \"C\") < lower($%d))"
	       " OR (id COLLATE \"C\" >= $%d AND id COLLATE \"C\" < $%d)"
	       " OR (hv_fingerprint COLLATE \"C\" >= $%d AND hv_fingerprint COLLATE \"C\" < $%d))",
	       lo, hi, lo, hi, lo, hi, flo, fhi);
}

static const char *
sort_key(enum device_sort s)
{
	return s == DEV_SORT_OWNER      ? OWNER_KEY
	       : s == DEV_SORT_ENROLLED ? "enrolled_at"
					: "last_seen_at";
}

static void
filters_sql(struct pqb *b, const struct device_query *q, struct search_terms *t)
{
	if (q->q != NULL && q->q[0] != '\0')
		search_sql(b, q->q, t);
	if (q->status != NULL)
		qb_add(b, " AND status = $%d", qb_text(b, q->status));
	if (q->owner != NULL)
		qb_add(b, " AND owner = $%d", qb_text(b, q->owner));
	if (q->policy != NULL) {
		int p = qb_text(b, q->policy);

		qb_add(b,
		       q->policy_is_default ? " AND (policy_name = $%d OR policy_name = '')"
					    : " AND policy_name = $%d",
		       p);
	}
	if (q->desired != NULL)
		qb_add(b, " AND desired_state = $%d", qb_text(b, q->desired));
	if (q->reported != NULL)
		qb_add(b, " AND reported_state = $%d", qb_text(b, q->reported));
	if (q->seen_before > 0)
		qb_add(b, " AND last_seen_at < $%d::bigint", qb_int(b, q->seen_before));
}

/* The compliance terms of q, when it has any; the spec's groups bound first. */
static void
comply_sql(struct pqb *b, const struct device_query *q, const struct versions *vs,
	   struct group_binds *gb)
{
	bind_groups(b, q->spec, vs, gb);
	if (q->reasons != 0) {
		qb_add(b, " AND ");
		reasons_sql(b, q->spec, gb, q->reasons);
	}
	if (q->compliant >= 0) {
		qb_add(b, q->compliant ? " AND NOT " : " AND ");
		reasons_sql(b, q->spec, gb, (1u << COMPLY_COUNT) - 1);
	}
}

int
pg_device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n)
{
	struct group_binds *gb = NULL;
	struct versions vs = {0};
	struct search_terms t;
	struct pqb *b = NULL;
	const char *dir = q->desc ? "DESC" : "ASC";
	int need_spec = q->compliant >= 0 || q->reasons != 0;
	int r;

	*n = 0;
	if (need_spec && q->spec == NULL)
		return -EINVAL;
	r = qb_new(&b);
	if (r == 0 && need_spec && (gb = calloc(GROUPS_MAX, sizeof(*gb))) == NULL)
		r = -ENOMEM;
	if (r == 0 && need_spec)
		r = versions_load(S(st), q->spec, &vs);
	if (r != 0)
		goto out;
	qb_add(b, "SELECT %s FROM devices WHERE true", pg_device_cols);
	filters_sql(b, q, &t);
	if (need_spec)
		comply_sql(b, q, &vs, gb);
	if (q->has_after) {
		int k = q->sort == DEV_SORT_OWNER ? qb_text(b, q->after_text ? q->after_text : "")
						  : qb_int(b, q->after_key);

		/* A row comparison in the index's own order: one range of it. */
		qb_add(b, " AND (%s, rowid) %s (%s$%d%s, $%d::bigint)", sort_key(q->sort),
		       q->desc ? "<" : ">", q->sort == DEV_SORT_OWNER ? "lower(" : "", k,
		       q->sort == DEV_SORT_OWNER ? ") COLLATE \"C\"" : "::bigint",
		       qb_int(b, q->after_rowid));
	}
	qb_add(b, " ORDER BY %s %s, rowid %s LIMIT %zu", sort_key(q->sort), dir, dir, q->limit);
	r = qb_many(S(st), b, out, sizeof(*out), q->limit, n, pg_device_row, "device query");
out:
	versions_free(&vs);
	qb_free(b);
	free(gb);
	return r;
}

/* ---- the dashboard ---- */

static int
summary_states(struct pg_store *s, struct device_summary *out)
{
	PGresult *r;
	int e = pg_run(s,
		       "SELECT desired_state, reported_state, count(*) FROM devices "
		       "GROUP BY desired_state, reported_state ORDER BY 3 DESC",
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
	struct group_binds *gb = calloc(GROUPS_MAX, sizeof(*gb));
	struct versions vs = {0};
	struct pqb *b = NULL;
	PGresult *res = NULL;
	int r = gb ? qb_new(&b) : -ENOMEM;

	memset(out, 0, sizeof(*out));
	if (r == 0)
		r = versions_load(S(st), spec, &vs);
	if (r != 0)
		goto out;
	/*
	 * One pass over the table: each device's reasons as a bit mask, counted per distinct
	 * mask (a handful), then split into per-reason counts here.
	 */
	bind_groups(b, spec, &vs, gb);
	qb_add(b, "SELECT m, count(*) FROM (SELECT 0");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		qb_add(b, " + (CASE WHEN ");
		reason_sql(b, spec, gb, 1u << i);
		qb_add(b, " THEN %u ELSE 0 END)", 1u << i);
	}
	qb_add(b, " AS m FROM devices) AS masks GROUP BY m");
	r = qb_run(S(st), b, &res, "device summary");
	for (int i = 0; r == 0 && i < PQntuples(res); i++) {
		unsigned m = (unsigned)pg_col_int(res, i, 0);
		int64_t k = pg_col_int(res, i, 1);

		out->total += k;
		if (m == 0)
			out->compliant += k;
		for (int j = 0; j < COMPLY_COUNT; j++)
			if (m & (1u << j))
				out->reasons[j] += k;
	}
	if (r == 0)
		r = summary_states(S(st), out);
out:
	PQclear(res);
	versions_free(&vs);
	qb_free(b);
	free(gb);
	return r;
}

/* ---- the command queue ---- */

static int
command_query(struct store *st, const struct command_filter *f, struct command *out, size_t *n)
{
	struct pqb *b = NULL;
	int r = qb_new(&b);

	*n = 0;
	if (r != 0)
		return r;
	qb_add(b, "SELECT %s FROM commands WHERE true", pg_command_cols);
	if (f->device_id != NULL)
		qb_add(b, " AND device_id = $%d", qb_text(b, f->device_id));
	if (f->status != NULL)
		qb_add(b, " AND status = $%d", qb_text(b, f->status));
	if (f->type != NULL)
		qb_add(b, " AND type = $%d", qb_text(b, f->type));
	if (f->newest_first && f->after > 0)
		qb_add(b, " AND rowid < $%d::bigint", qb_int(b, f->after));
	else if (!f->newest_first)
		qb_add(b, " AND rowid > $%d::bigint", qb_int(b, f->after));
	qb_add(b, " ORDER BY rowid %s LIMIT %zu", f->newest_first ? "DESC" : "ASC", f->limit);
	r = qb_many(S(st), b, out, sizeof(*out), f->limit, n, pg_command_row, "command query");
	qb_free(b);
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

int
pg_audit_list(struct store *st, const struct audit_filter *f, struct audit_entry *out, size_t *n)
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
	struct pqb *b = NULL;
	int r = qb_new(&b);

	*n = 0;
	if (r != 0)
		return r;
	qb_add(b, "SELECT %s FROM audit WHERE seq > $%d::bigint", pg_audit_cols,
	       qb_int(b, f->after));
	if (f->actor != NULL)
		qb_add(b, " AND actor = $%d", qb_text(b, f->actor));
	if (f->action != NULL)
		qb_add(b, " AND action = $%d", qb_text(b, f->action));
	if (f->target != NULL)
		qb_add(b, " AND target = $%d", qb_text(b, f->target));
	if (f->since_ms > 0)
		qb_add(b, " AND at_ms >= $%d::bigint", qb_int(b, f->since_ms));
	if (f->until_ms > 0)
		qb_add(b, " AND at_ms < $%d::bigint", qb_int(b, f->until_ms));
	qb_add(b, " ORDER BY seq%s LIMIT %zu", by_time ? " + 0" : "", f->limit);
	r = qb_many(S(st), b, out, sizeof(*out), f->limit, n, pg_audit_row, "audit list");
	qb_free(b);
	return r;
}

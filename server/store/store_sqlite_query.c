/*
 * The SQLite backend of the console's queries (issue 9): the device list with search, filters,
 * sorts and keyset cursors, the compliance dashboard's counts, and the command queue across
 * devices. Their SQL depends on which filters are given, so each is built per call into a
 * bounded buffer with numbered parameters (values are always bound, never pasted) and
 * prepared once for that call. Which reason makes a device non-compliant is the service's rule;
 * this file only turns the values of a compliance_spec into predicates.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fp.h"
#include "log.h"
#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

#define SQLB_CAP   (256 * 1024)
#define SQLB_BINDS 1024
#define GROUPS_MAX 200

enum bind_kind { B_TEXT, B_BLOB, B_INT };

/* SQL text under construction and its parameter values (borrowed until the query ran). */
struct sqlb {
	char *buf;
	size_t len;
	int overflow;
	int nb;
	struct {
		enum bind_kind kind;
		const void *p;
		int n;
		int64_t i;
	} b[SQLB_BINDS];
};

static void
sb_add(struct sqlb *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	k = vsnprintf(b->buf + b->len, SQLB_CAP - b->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= SQLB_CAP - b->len)
		b->overflow = 1;
	else
		b->len += (size_t)k;
}

/* Adds a parameter and returns its number for "?N"; 0 when there is no room (overflow). */
static int
sb_bind(struct sqlb *b, enum bind_kind kind, const void *p, int n, int64_t i)
{
	if (b->nb >= SQLB_BINDS) {
		b->overflow = 1;
		return 0;
	}
	b->b[b->nb].kind = kind;
	b->b[b->nb].p = p;
	b->b[b->nb].n = n;
	b->b[b->nb].i = i;
	return ++b->nb;
}

static int
sb_text(struct sqlb *b, const char *t)
{
	return sb_bind(b, B_TEXT, t, -1, 0);
}

static int
sb_int(struct sqlb *b, int64_t v)
{
	return sb_bind(b, B_INT, NULL, 0, v);
}

static int
sb_new(struct sqlb **out)
{
	struct sqlb *b = calloc(1, sizeof(*b));

	if (b != NULL)
		b->buf = malloc(SQLB_CAP);
	if (b == NULL || b->buf == NULL) {
		free(b);
		return -ENOMEM;
	}
	b->buf[0] = '\0';
	*out = b;
	return 0;
}

static void
sb_free(struct sqlb *b)
{
	if (b != NULL)
		free(b->buf);
	free(b);
}

/* The spec's version comparison, callable from SQL as cleave_version_cmp(a, b). */
static void
sql_version_cmp(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	int (**fn)(const char *, const char *) = sqlite3_user_data(ctx);
	const unsigned char *a = sqlite3_value_text(argv[0]);
	const unsigned char *b = sqlite3_value_text(argv[1]);

	(void)argc;
	sqlite3_result_int(ctx, (*fn)(a ? (const char *)a : "", b ? (const char *)b : ""));
}

/* Prepares b's SQL on the calling thread's connection and binds its parameters. */
static int
sb_prepare(struct sq_store *s, struct sqlb *b, const struct compliance_spec *spec,
	   sqlite3_stmt **out, const char *what)
{
	struct sq_conn *c = sq_conn_get(s);
	int rc;

	if (c == NULL)
		return -EIO;
	if (b->overflow) {
		log_err("store: %s: the query grew past its bound", what);
		return -E2BIG;
	}
	if (spec != NULL && spec->version_cmp != NULL) {
		int (**box)(const char *, const char *) = malloc(sizeof(*box));

		if (box == NULL)
			return -ENOMEM;
		*box = spec->version_cmp;
		/* Re-registered per query: the connection frees the previous box. */
		rc = sqlite3_create_function_v2(c->db, "cleave_version_cmp", 2,
						SQLITE_UTF8 | SQLITE_DETERMINISTIC, box,
						sql_version_cmp, NULL, NULL, free);
		if (rc != SQLITE_OK)
			return sq_err(s, rc, what);
	}
	rc = sqlite3_prepare_v2(c->db, b->buf, (int)b->len, out, NULL);
	if (rc != SQLITE_OK) {
		log_err("store: %s: prepare: %s", what, sqlite3_errmsg(c->db));
		return -EIO;
	}
	for (int i = 0; i < b->nb; i++) {
		if (b->b[i].kind == B_TEXT)
			sqlite3_bind_text(*out, i + 1, b->b[i].p, b->b[i].n, SQLITE_STATIC);
		else if (b->b[i].kind == B_BLOB)
			sqlite3_bind_blob(*out, i + 1, b->b[i].p, b->b[i].n, SQLITE_STATIC);
		else
			sqlite3_bind_int64(*out, i + 1, b->b[i].i);
	}
	return 0;
}

/* ---- compliance predicates ---- */

/* Parameter numbers of each group's values, bound once and used by every predicate. */
struct group_binds {
	int name, digest, min_agent;
};

static void
bind_groups(struct sqlb *b, const struct compliance_spec *spec, struct group_binds *gb)
{
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++) {
		const struct compliance_group *g = &spec->groups[i];

		gb[i].name = sb_text(b, g->policy);
		gb[i].digest = sb_bind(b, B_BLOB, g->digest, sizeof(g->digest), 0);
		gb[i].min_agent = sb_text(b, g->min_agent);
	}
}

static void
group_cond(struct sqlb *b, const struct compliance_group *g, const struct group_binds *gb)
{
	if (g->is_default)
		sb_add(b, "(policy_name = ?%d OR policy_name = '')", gb->name);
	else
		sb_add(b, "policy_name = ?%d", gb->name);
}

/* "(g1 AND x1) OR (g2 AND x2) ..." over the groups that have a limit of this kind; 0 if none. */
static void
per_group(struct sqlb *b, const struct compliance_spec *spec, const struct group_binds *gb,
	  unsigned bit)
{
	sb_add(b, "(0");
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++) {
		const struct compliance_group *g = &spec->groups[i];

		if ((bit == COMPLY_OFFLINE && g->offline_before == 0) ||
		    (bit == COMPLY_AGENT_OLD && (g->min_agent[0] == '\0' || !spec->version_cmp)))
			continue;
		sb_add(b, " OR (");
		group_cond(b, g, &gb[i]);
		if (bit == COMPLY_NOT_APPLIED)
			sb_add(b, " AND attested_policy <> ?%d)", gb[i].digest);
		else if (bit == COMPLY_OFFLINE)
			sb_add(b, " AND last_seen_at < %lld)", (long long)g->offline_before);
		else if (bit == COMPLY_AGENT_OLD)
			sb_add(b, " AND cleave_version_cmp(agent_version, ?%d) < 0)",
			       gb[i].min_agent);
		else
			sb_add(b,
			       " AND (CASE WHEN attested_at > 0 THEN attested_at ELSE enrolled_at "
			       "END) < %lld)",
			       (long long)g->attest_before);
	}
	sb_add(b, ")");
}

static void
no_policy(struct sqlb *b, const struct compliance_spec *spec, const struct group_binds *gb)
{
	sb_add(b, "NOT (0");
	for (size_t i = 0; i < spec->n && i < GROUPS_MAX; i++) {
		sb_add(b, " OR ");
		group_cond(b, &spec->groups[i], &gb[i]);
	}
	sb_add(b, ")");
}

/* The predicate "the device has reason bit" (one COMPLY_* bit). */
static void
reason_sql(struct sqlb *b, const struct compliance_spec *spec, const struct group_binds *gb,
	   unsigned bit)
{
	switch (bit) {
	case COMPLY_RETIRED:
		sb_add(b, "(status <> 'active' AND superseded_by = '')");
		break;
	case COMPLY_SUPERSEDED:
		sb_add(b, "(status <> 'active' AND superseded_by <> '')");
		break;
	case COMPLY_NO_POLICY:
		no_policy(b, spec, gb);
		break;
	case COMPLY_ATTEST_STALE:
		sb_add(b, "(");
		per_group(b, spec, gb, bit);
		sb_add(b, " OR (");
		no_policy(b, spec, gb);
		sb_add(b,
		       " AND (CASE WHEN attested_at > 0 THEN attested_at ELSE enrolled_at END) "
		       "< %lld))",
		       (long long)spec->attest_before);
		break;
	case COMPLY_MISMATCH:
		sb_add(b, "(attest_status = 'mismatch')");
		break;
	case COMPLY_WIPED:
		sb_add(b, "(reported_state = 'wiped')");
		break;
	case COMPLY_DIFFERS:
		sb_add(b, "(desired_state <> reported_state)");
		break;
	default: /* NOT_APPLIED, OFFLINE, AGENT_OLD */
		per_group(b, spec, gb, bit);
		break;
	}
}

/* "(r1 OR r2 ...)" over the bits of mask. */
static void
reasons_sql(struct sqlb *b, const struct compliance_spec *spec, const struct group_binds *gb,
	    unsigned mask)
{
	sb_add(b, "(0");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		sb_add(b, " OR ");
		reason_sql(b, spec, gb, 1u << i);
	}
	sb_add(b, ")");
}

/* ---- the device list ---- */

/* q + the largest code point: the upper end of the range of strings that start with q. */
static void
prefix_end(const char *q, char *out, size_t cap)
{
	snprintf(out, cap, "%s\xf4\x8f\xbf\xbf", q);
}

struct search_terms {
	char lo[STORE_OWNER_MAX], hi[STORE_OWNER_MAX + 8];
	char fp_lo[STORE_OWNER_MAX], fp_hi[STORE_OWNER_MAX + 8];
};

static void
search_sql(struct sqlb *b, const char *q, struct search_terms *t)
{
	const char *fp = strncmp(q, "SHA256:", 7) == 0 ? q + 7 : q;
	int lo, hi, flo, fhi;

	snprintf(t->lo, sizeof(t->lo), "%s", q);
	prefix_end(t->lo, t->hi, sizeof(t->hi));
	snprintf(t->fp_lo, sizeof(t->fp_lo), "%s", fp);
	prefix_end(t->fp_lo, t->fp_hi, sizeof(t->fp_hi));
	lo = sb_text(b, t->lo);
	hi = sb_text(b, t->hi);
	flo = sb_text(b, t->fp_lo);
	fhi = sb_text(b, t->fp_hi);
	/* Each branch is an index range, so SQLite answers the OR from four index lookups. */
	sb_add(b,
	       " AND ((owner >= ?%d COLLATE NOCASE AND owner < ?%d COLLATE NOCASE)"
	       " OR (model >= ?%d COLLATE NOCASE AND model < ?%d COLLATE NOCASE)"
	       " OR (id >= ?%d AND id < ?%d)"
	       " OR (hv_fingerprint >= ?%d AND hv_fingerprint < ?%d))",
	       lo, hi, lo, hi, lo, hi, flo, fhi);
}

static const char *
sort_key(enum device_sort s)
{
	return s == DEV_SORT_OWNER      ? "owner COLLATE NOCASE"
	       : s == DEV_SORT_ENROLLED ? "enrolled_at"
					: "last_seen_at";
}

static void
filters_sql(struct sqlb *b, const struct device_query *q, struct search_terms *t)
{
	if (q->q != NULL && q->q[0] != '\0')
		search_sql(b, q->q, t);
	if (q->status != NULL)
		sb_add(b, " AND status = ?%d", sb_text(b, q->status));
	if (q->owner != NULL)
		sb_add(b, " AND owner = ?%d", sb_text(b, q->owner));
	if (q->policy != NULL) {
		int p = sb_text(b, q->policy);

		sb_add(b,
		       q->policy_is_default ? " AND (policy_name = ?%d OR policy_name = '')"
					    : " AND policy_name = ?%d",
		       p);
	}
	if (q->desired != NULL)
		sb_add(b, " AND desired_state = ?%d", sb_text(b, q->desired));
	if (q->reported != NULL)
		sb_add(b, " AND reported_state = ?%d", sb_text(b, q->reported));
	if (q->seen_before > 0)
		sb_add(b, " AND last_seen_at < ?%d", sb_int(b, q->seen_before));
}

int
sq_device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n)
{
	struct group_binds *gb = NULL;
	struct search_terms t;
	struct sqlb *b = NULL;
	sqlite3_stmt *stmt = NULL;
	const char *dir = q->desc ? "DESC" : "ASC";
	int need_spec = q->compliant >= 0 || q->reasons != 0;
	int r;

	*n = 0;
	if (need_spec && q->spec == NULL)
		return -EINVAL;
	r = sb_new(&b);
	if (r == 0 && need_spec && (gb = calloc(GROUPS_MAX, sizeof(*gb))) == NULL)
		r = -ENOMEM;
	if (r != 0)
		goto out;
	sb_add(b, "SELECT %s FROM devices WHERE 1", sq_device_cols);
	filters_sql(b, q, &t);
	if (need_spec) {
		bind_groups(b, q->spec, gb);
		if (q->reasons != 0) {
			sb_add(b, " AND ");
			reasons_sql(b, q->spec, gb, q->reasons);
		}
		if (q->compliant >= 0) {
			sb_add(b, q->compliant ? " AND NOT " : " AND ");
			reasons_sql(b, q->spec, gb, (1u << COMPLY_COUNT) - 1);
		}
	}
	if (q->has_after) {
		int k = q->sort == DEV_SORT_OWNER ? sb_text(b, q->after_text ? q->after_text : "")
						  : sb_int(b, q->after_key);

		/*
		 * The row value is the exact bound; SQLite does not take a range from a row value
		 * with a collation, so the owner sort repeats its first half as a plain range.
		 */
		if (q->sort == DEV_SORT_OWNER)
			sb_add(b, " AND owner %s ?%d COLLATE NOCASE", q->desc ? "<=" : ">=", k);
		sb_add(b, " AND (%s, rowid) %s (?%d, ?%d)", sort_key(q->sort), q->desc ? "<" : ">",
		       k, sb_int(b, q->after_rowid));
	}
	sb_add(b, " ORDER BY %s %s, rowid %s LIMIT %zu", sort_key(q->sort), dir, dir, q->limit);
	r = sb_prepare(S(st), b, q->spec, &stmt, "device query");
	if (r == 0)
		r = sq_many(S(st), stmt, out, sizeof(*out), q->limit, n, (sq_row_fn)sq_device_row,
			    "device query");
out:
	sqlite3_finalize(stmt);
	sb_free(b);
	free(gb);
	return r;
}

/* ---- the dashboard ---- */

static int
summary_states(struct sq_store *s, struct device_summary *out)
{
	static const char sql[] = "SELECT desired_state, reported_state, count(*) FROM devices "
				  "GROUP BY desired_state, reported_state ORDER BY 3 DESC";
	struct sq_conn *c = sq_conn_get(s);
	sqlite3_stmt *q = NULL;
	int rc;

	if (c == NULL)
		return -EIO;
	rc = sqlite3_prepare_v2(c->db, sql, -1, &q, NULL);
	while (rc == SQLITE_OK || rc == SQLITE_ROW) {
		if ((rc = sqlite3_step(q)) != SQLITE_ROW)
			break;
		if (out->nstates >= SUMMARY_STATES_MAX)
			continue; /* states are a handful of fixed words; keep the largest */
		sq_col_text(q, 0, out->states[out->nstates].desired, 16);
		sq_col_text(q, 1, out->states[out->nstates].reported, 16);
		out->states[out->nstates].n = sqlite3_column_int64(q, 2);
		out->nstates++;
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : sq_err(s, rc, "device summary");
}

int
sq_device_summary(struct store *st, const struct compliance_spec *spec, struct device_summary *out)
{
	struct group_binds *gb = calloc(GROUPS_MAX, sizeof(*gb));
	struct sqlb *b = NULL;
	sqlite3_stmt *q = NULL;
	int r = gb ? sb_new(&b) : -ENOMEM;
	int rc;

	memset(out, 0, sizeof(*out));
	if (r != 0)
		goto out;
	/*
	 * One pass over the table: each device's reasons as a bit mask, counted per distinct
	 * mask (a handful), then split into per-reason counts here.
	 */
	bind_groups(b, spec, gb);
	sb_add(b, "SELECT m, count(*) FROM (SELECT 0");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		sb_add(b, " + (CASE WHEN ");
		reason_sql(b, spec, gb, 1u << i);
		sb_add(b, " THEN %u ELSE 0 END)", 1u << i);
	}
	sb_add(b, " AS m FROM devices) GROUP BY m");
	r = sb_prepare(S(st), b, spec, &q, "device summary");
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		unsigned m = (unsigned)sqlite3_column_int64(q, 0);
		int64_t k = sqlite3_column_int64(q, 1);

		out->total += k;
		if (m == 0)
			out->compliant += k;
		for (int i = 0; i < COMPLY_COUNT; i++)
			if (m & (1u << i))
				out->reasons[i] += k;
	}
	r = rc == SQLITE_DONE ? 0 : sq_err(S(st), rc, "device summary");
	if (r == 0)
		r = summary_states(S(st), out);
out:
	sqlite3_finalize(q);
	sb_free(b);
	free(gb);
	return r;
}

/* ---- the command queue ---- */

static int
command_query(struct store *st, const struct command_filter *f, struct command *out, size_t *n)
{
	struct sqlb *b = NULL;
	sqlite3_stmt *q = NULL;
	int r = sb_new(&b);

	*n = 0;
	if (r != 0)
		return r;
	sb_add(b, "SELECT %s FROM commands WHERE 1", sq_command_cols);
	if (f->device_id != NULL)
		sb_add(b, " AND device_id = ?%d", sb_text(b, f->device_id));
	if (f->status != NULL)
		sb_add(b, " AND status = ?%d", sb_text(b, f->status));
	if (f->type != NULL)
		sb_add(b, " AND type = ?%d", sb_text(b, f->type));
	if (f->newest_first && f->after > 0)
		sb_add(b, " AND rowid < ?%d", sb_int(b, f->after));
	else if (!f->newest_first)
		sb_add(b, " AND rowid > ?%d", sb_int(b, f->after));
	sb_add(b, " ORDER BY rowid %s LIMIT %zu", f->newest_first ? "DESC" : "ASC", f->limit);
	r = sb_prepare(S(st), b, NULL, &q, "command query");
	if (r == 0)
		r = sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)sq_command_row,
			    "command query");
	sqlite3_finalize(q);
	sb_free(b);
	return r;
}

int
sq_command_list_any(struct store *st, const struct command_filter *f, struct command *out,
		    size_t *n)
{
	if (f->newest_first || f->type != NULL)
		return command_query(st, f, out, n);
	return sq_command_list(st, f, out, n);
}

/* ---- the fingerprint column ---- */

int
sq_fill_fingerprints(struct sq_store *s, sqlite3 *db)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	int rc, filled = 0;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
			db, "SELECT rowid, hv_key FROM devices WHERE hv_fingerprint = ''", -1, &sel,
			NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(db, "UPDATE devices SET hv_fingerprint = ? WHERE rowid = ?",
					-1, &upd, NULL);
	while (rc == SQLITE_OK && (rc = sqlite3_step(sel)) == SQLITE_ROW) {
		uint8_t key[32];
		char fp[64];

		sq_col_blob(sel, 1, key, sizeof(key));
		store_hv_fingerprint(key, fp, sizeof(fp));
		sqlite3_bind_text(upd, 1, fp, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(upd, 2, sqlite3_column_int64(sel, 0));
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
		filled++;
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	if (rc == SQLITE_DONE)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		log_err("store: %s: filling hypervisor key fingerprints: %s", s->path,
			sqlite3_errmsg(db));
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return -EIO;
	}
	if (filled > 0)
		log_info("store: %d hypervisor key fingerprints filled in", filled);
	return 0;
}

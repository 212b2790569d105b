/*
 * The SQLite backend of the console's queries (issue 9): the device list with search, filters,
 * sorts and keyset cursors, the compliance dashboard's counts, and the command queue across
 * devices. Their SQL depends on which filters are given, so each is built per call
 * (store_sqlq.c, shared with PostgreSQL: values are always bound, never pasted) and prepared
 * once for that call. The agent version's comparison is the service's function, registered
 * with the connection and called from SQL.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store_fp.h"
#include "store_sqlq.h"
#include "log.h"
#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

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

/* Prepares b's SQL on the calling thread's connection and binds its parameters ("$N"). */
static int
sb_prepare(struct sq_store *s, struct sqb *b, const struct compliance_spec *spec,
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
	/* "$N" is a named parameter to SQLite: bound by its name; one the text lacks is 0. */
	for (int i = 0; i < b->nb; i++) {
		const struct sqb_bind *v = &b->b[i];
		char name[16];
		int k;

		snprintf(name, sizeof(name), "$%d", i + 1);
		k = sqlite3_bind_parameter_index(*out, name);
		if (k == 0)
			continue;
		if (v->kind == SQB_TEXT)
			sqlite3_bind_text(*out, k, v->p, -1, SQLITE_STATIC);
		else if (v->kind == SQB_BLOB)
			sqlite3_bind_blob(*out, k, v->p, v->n, SQLITE_STATIC);
		else
			sqlite3_bind_int64(*out, k, v->i);
	}
	return 0;
}

/* The AGENT_OLD test: the service's comparison, registered by sb_prepare. */
static void
agent_old(struct sqb *b, int param)
{
	sqb_add(b, "cleave_version_cmp(agent_version, $%d) < 0", param);
}

/* The groups' agent values: each group's minimum, when the spec can compare versions. */
static void
agent_mins(const struct compliance_spec *spec, const char **agent)
{
	for (size_t i = 0; i < spec->n && i < SQB_GROUPS_MAX; i++)
		agent[i] = spec->groups[i].min_agent[0] != '\0' && spec->version_cmp != NULL
				   ? spec->groups[i].min_agent
				   : NULL;
}

/* ---- the device list ---- */

static void
search_sql(struct sqb *b, const char *q, struct sqb_search *t)
{
	sqb_search(b, q, t);
	/* Each branch is an index range, so SQLite answers the OR from four index lookups. */
	sqb_add(b,
		" AND ((owner >= $%d COLLATE NOCASE AND owner < $%d COLLATE NOCASE)"
		" OR (model >= $%d COLLATE NOCASE AND model < $%d COLLATE NOCASE)"
		" OR (id >= $%d AND id < $%d)"
		" OR (hv_fingerprint >= $%d AND hv_fingerprint < $%d))",
		t->p_lo, t->p_hi, t->p_lo, t->p_hi, t->p_lo, t->p_hi, t->p_fp_lo, t->p_fp_hi);
}

static const char *
sort_key(enum device_sort s)
{
	return s == DEV_SORT_OWNER      ? "owner COLLATE NOCASE"
	       : s == DEV_SORT_ENROLLED ? "enrolled_at"
					: "last_seen_at";
}

/* "SELECT what FROM devices WHERE" q's search, filters and compliance terms. */
static void
device_where(struct sqb *b, const struct device_query *q, const char *what, const char **agent,
	     struct sqb_group *gb, struct sqb_search *t)
{
	sqb_add(b, "SELECT %s FROM devices WHERE true", what);
	if (q->q != NULL && q->q[0] != '\0')
		search_sql(b, q->q, t);
	sqb_filters(b, q);
	if (gb != NULL) {
		agent_mins(q->spec, agent);
		sqb_bind_groups(b, q->spec, agent, gb);
		sqb_compliance(b, q, gb);
	}
}

/* A query builder for q, with the compliance buffers when q needs them. */
static int
query_new(const struct device_query *q, struct sqb **b, struct sqb_group **gb, const char ***agent)
{
	int need_spec = q->compliant >= 0 || q->reasons != 0;
	int r;

	*gb = NULL;
	*agent = NULL;
	if (need_spec && q->spec == NULL)
		return -EINVAL;
	r = sqb_new(b, agent_old);
	if (r == 0)
		(*b)->label_id = "+id";
	if (r == 0 && need_spec &&
	    ((*gb = calloc(SQB_GROUPS_MAX, sizeof(**gb))) == NULL ||
	     (*agent = calloc(SQB_GROUPS_MAX, sizeof(**agent))) == NULL))
		r = -ENOMEM;
	return r;
}

int
sq_device_query(struct store *st, const struct device_query *q, struct device *out, size_t *n)
{
	struct sqb_group *gb = NULL;
	const char **agent = NULL;
	struct sqb_search t;
	struct sqb *b = NULL;
	sqlite3_stmt *stmt = NULL;
	const char *dir = q->desc ? "DESC" : "ASC";
	int r;

	*n = 0;
	r = query_new(q, &b, &gb, &agent);
	if (r != 0)
		goto out;
	device_where(b, q, sq_device_cols, agent, gb, &t);
	if (q->sort == DEV_SORT_ROWID)
		sqb_rowid_walk(b, q);
	else if (q->has_after) {
		int k = q->sort == DEV_SORT_OWNER ? sqb_text(b, q->after_text ? q->after_text : "")
						  : sqb_int(b, q->after_key);

		/*
		 * The row value is the exact bound; SQLite does not take a range from a row value
		 * with a collation, so the owner sort repeats its first half as a plain range.
		 */
		if (q->sort == DEV_SORT_OWNER)
			sqb_add(b, " AND owner %s $%d COLLATE NOCASE", q->desc ? "<=" : ">=", k);
		sqb_add(b, " AND (%s, rowid) %s ($%d, $%d)", sort_key(q->sort), q->desc ? "<" : ">",
			k, sqb_int(b, q->after_rowid));
	}
	if (q->sort != DEV_SORT_ROWID)
		sqb_add(b, " ORDER BY %s %s, rowid %s LIMIT %zu", sort_key(q->sort), dir, dir,
			q->limit);
	r = sb_prepare(S(st), b, q->spec, &stmt, "device query");
	if (r == 0)
		r = sq_many(S(st), stmt, out, sizeof(*out), q->limit, n, (sq_row_fn)sq_device_row,
			    "device query");
out:
	sqlite3_finalize(stmt);
	sqb_free(b);
	free(agent);
	free(gb);
	return r;
}

int
sq_device_count(struct store *st, const struct device_query *q, int64_t *n)
{
	struct sqb_group *gb = NULL;
	const char **agent = NULL;
	struct sqb_search t;
	struct sqb *b = NULL;
	sqlite3_stmt *stmt = NULL;
	int r;

	*n = 0;
	r = query_new(q, &b, &gb, &agent);
	if (r == 0) {
		device_where(b, q, "count(*)", agent, gb, &t);
		r = sb_prepare(S(st), b, q->spec, &stmt, "device count");
	}
	if (r == 0)
		r = sq_int64(S(st), stmt, n, "device count");
	sqlite3_finalize(stmt);
	sqb_free(b);
	free(agent);
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
	struct sqb_group *gb = calloc(SQB_GROUPS_MAX, sizeof(*gb));
	const char **agent = calloc(SQB_GROUPS_MAX, sizeof(*agent));
	struct sqb *b = NULL;
	sqlite3_stmt *q = NULL;
	int r = gb && agent ? sqb_new(&b, agent_old) : -ENOMEM;
	int rc;

	memset(out, 0, sizeof(*out));
	if (r != 0)
		goto out;
	/* One pass over the table; the per-mask counts are split into per-reason ones here. */
	agent_mins(spec, agent);
	sqb_bind_groups(b, spec, agent, gb);
	sqb_summary(b, spec, gb, "devices");
	r = sb_prepare(S(st), b, spec, &q, "device summary");
	if (r != 0)
		goto out;
	while ((rc = sqlite3_step(q)) == SQLITE_ROW)
		sqb_summary_row(out, (unsigned)sqlite3_column_int64(q, 0),
				sqlite3_column_int64(q, 1), sqlite3_column_int64(q, 2));
	r = rc == SQLITE_DONE ? 0 : sq_err(S(st), rc, "device summary");
	if (r == 0)
		r = summary_states(S(st), out);
out:
	sqlite3_finalize(q);
	sqb_free(b);
	free(agent);
	free(gb);
	return r;
}

/* ---- the command queue ---- */

static int
command_query(struct store *st, const struct command_filter *f, struct command *out, size_t *n)
{
	struct sqb *b = NULL;
	sqlite3_stmt *q = NULL;
	int r = sqb_new(&b, NULL);

	*n = 0;
	if (r != 0)
		return r;
	sqb_commands(b, f, sq_command_cols);
	r = sb_prepare(S(st), b, NULL, &q, "command query");
	if (r == 0)
		r = sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)sq_command_row,
			    "command query");
	sqlite3_finalize(q);
	sqb_free(b);
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

/* ---- one device against a label query (a group's policy) ---- */

int
sq_device_matches(struct store *st, const char *device_id, const struct label_query *q, int *match)
{
	struct sqb *b = NULL;
	sqlite3_stmt *stmt = NULL;
	int64_t k = 0;
	int r = sqb_new(&b, NULL);

	*match = 0;
	if (r != 0)
		return r;
	sqb_add(b, "SELECT count(*) FROM devices WHERE id = $%d", sqb_text(b, device_id));
	sqb_labelq(b, q);
	r = sb_prepare(S(st), b, NULL, &stmt, "device matches");
	if (r == 0)
		r = sq_int64(S(st), stmt, &k, "device matches");
	*match = r == 0 && k > 0;
	sqlite3_finalize(stmt);
	sqb_free(b);
	return r;
}

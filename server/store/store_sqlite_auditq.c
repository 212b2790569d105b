/*
 * The SQLite backend's queries behind the console's audit and policy screens. The audit list
 * takes any mix of optional filters; a single statement with "(? IS NULL OR col = ?)" terms
 * would keep SQLite from using any index, so the statement is built per request from the
 * filters actually given, each of which then has an index to use (migration 0008); with two
 * or more of them a bounded count picks the index that holds the fewest matches (pick_index).
 * The text is assembled from fixed fragments only; every value is bound.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "store_fault.h"
#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

/* Parameter numbers, fixed whatever the filters: the text only names the ones it uses. */
enum { P_AFTER = 1, P_ACTOR, P_ACTION, P_TARGET, P_SINCE, P_UNTIL, P_LIMIT };

/*
 * Builds the audit list query for the filters in f into sql (cap bytes), walking index idx
 * when not NULL; 0 or -ENAMETOOLONG.
 */
static int
audit_list_sql(const struct audit_filter *f, const char *idx, char *sql, size_t cap)
{
	/*
	 * Left alone, SQLite walks a time filter in seq order from the cursor, reading every entry
	 * older than the window first. With a lower bound it goes through audit_at instead and
	 * reads only the window's entries (sorting them by seq): what the reader asked for bounds
	 * the work, not the log's age. With only an upper bound the window starts at the log's
	 * start, where the seq walk finds its page at once, so that one is left alone.
	 */
	int by_time = f->since_ms > 0 && !f->actor && !f->action && !f->target;
	int n = snprintf(
		sql, cap,
		"SELECT " SQ_AUDIT_COLS " FROM audit%s%s WHERE seq > ?1%s%s%s%s%s ORDER BY "
		"seq LIMIT ?7",
		by_time ? " INDEXED BY "
		: idx   ? " INDEXED BY "
			: "",
		by_time ? "audit_at"
		: idx   ? idx
			: "",
		f->actor ? " AND actor = ?2" : "", f->action ? " AND action = ?3" : "",
		f->target ? " AND target = ?4" : "", f->since_ms > 0 ? " AND at_ms >= ?5" : "",
		f->until_ms > 0 ? " AND at_ms < ?6" : "");

	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

int
store_sqlite_audit_list_sql(const struct audit_filter *f, char *sql, size_t cap)
{
	return audit_list_sql(f, NULL, sql, cap);
}

/* How many of the entries after the cursor an index holds for one value, counted to a bound. */
#define PROBE_MAX 2000

/* The count of idx's entries for value after f->after, up to PROBE_MAX; -1 on failure. */
static int64_t
probe(sqlite3 *db, const char *idx, const char *col, const char *value, int64_t after)
{
	char sql[256];
	sqlite3_stmt *q = NULL;
	int64_t n = -1;

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM (SELECT 1 FROM audit INDEXED BY %s WHERE %s = ?1 AND "
		 "seq > ?2 LIMIT %d)",
		 idx, col, PROBE_MAX);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
		sqlite3_bind_text(q, 1, value, -1, SQLITE_STATIC);
		sqlite3_bind_int64(q, 2, after);
		if (sqlite3_step(q) == SQLITE_ROW)
			n = sqlite3_column_int64(q, 0);
	}
	sqlite3_finalize(q);
	return n;
}

/*
 * With two or more of actor, action and target, SQLite cannot tell which index holds fewer of
 * the wanted entries (it has no statistics, and per-column ones would not know the values) and
 * takes the first: actor=common&action=rare then reads half the log for a page. Counting, to
 * a bound, the entries each index holds after the cursor picks the sparsest one. NULL: leave
 * the choice to SQLite (one filter or none, or a probe failed).
 */
static const char *
pick_index(sqlite3 *db, const struct audit_filter *f)
{
	const struct {
		const char *value, *idx, *col;
	} c[] = {{f->actor, "audit_actor", "actor"},
		 {f->action, "audit_action", "action"},
		 {f->target, "audit_target", "target"}};
	const char *best = NULL;
	int64_t best_n = INT64_MAX;
	int given = 0;

	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
		given += c[i].value != NULL;
	for (size_t i = 0; given >= 2 && i < sizeof(c) / sizeof(c[0]); i++) {
		int64_t n = c[i].value ? probe(db, c[i].idx, c[i].col, c[i].value, f->after) : -2;

		if (n == -1)
			return NULL;
		if (n >= 0 && n < best_n) {
			best = c[i].idx;
			best_n = n;
		}
	}
	return best;
}

/* The IN list is (name, name) or (name, ''): either way one or two index ranges. */
const char store_sqlite_policy_counts_sql[] =
	"SELECT count(*), coalesce(sum(applied_policy_name = ?1 AND applied_policy_version = ?3), "
	"0) FROM devices WHERE policy_name IN (?1, ?2) AND status = 'active'";

int
sq_audit_list(struct store *st, const struct audit_filter *f, struct audit_entry *out, size_t *n)
{
	struct sq_conn *c = sq_conn_get(S(st));
	sqlite3_stmt *q = NULL;
	char sql[512];
	int r;

	*n = 0;
	if (c == NULL || audit_list_sql(f, pick_index(c->db, f), sql, sizeof(sql)) != 0)
		return -EIO;
	if (store_fault_hit() != 0) {
		log_err("store: audit list: injected fault");
		return -EIO;
	}
	r = sqlite3_prepare_v2(c->db, sql, -1, &q, NULL);
	if (r != SQLITE_OK)
		return sq_err(S(st), r, "audit list prepare");
	sqlite3_bind_int64(q, P_AFTER, f->after);
	if (f->actor)
		sqlite3_bind_text(q, P_ACTOR, f->actor, -1, SQLITE_STATIC);
	if (f->action)
		sqlite3_bind_text(q, P_ACTION, f->action, -1, SQLITE_STATIC);
	if (f->target)
		sqlite3_bind_text(q, P_TARGET, f->target, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, P_SINCE, f->since_ms);
	sqlite3_bind_int64(q, P_UNTIL, f->until_ms);
	sqlite3_bind_int64(q, P_LIMIT, (int64_t)f->limit);
	r = sq_many(S(st), q, out, sizeof(*out), f->limit, n, (sq_row_fn)sq_audit_row,
		    "audit list");
	sqlite3_finalize(q);
	return r;
}

int
sq_policy_counts(struct store *st, const char *name, int is_default, int64_t version,
		 int64_t *assigned, int64_t *applied)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_POLICY_COUNTS, store_sqlite_policy_counts_sql);
	int rc;

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, is_default ? "" : name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 3, version);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*assigned = sqlite3_column_int64(q, 0);
		*applied = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	return rc == SQLITE_ROW ? 0 : sq_err(S(st), rc, "policy counts");
}

/*
 * The SQLite backend's labels and groups (issue 11 section 5, migration 0020): a device's
 * key=value labels, and groups, each a named label query kept as its canonical text. Which
 * keys and values are valid, and what a query means, are the service's (labels.c, labelq.c);
 * the device list's label and group filters are compiled to SQL in store_sqlq.c.
 */
#include <errno.h>
#include <string.h>

#include "store_sqlite_priv.h"

#define S(st) ((struct sq_store *)(st))

static void
label_row(sqlite3_stmt *q, struct device_label *l)
{
	sq_col_text(q, 0, l->key, sizeof(l->key));
	sq_col_text(q, 1, l->value, sizeof(l->value));
}

int
sq_labels_get(struct store *st, const char *device_id, struct device_label *out, size_t max,
	      size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_LABELS_GET,
				  "SELECT key, value FROM device_labels WHERE device_id = ? "
				  "ORDER BY key");

	*n = 0;
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, device_id, -1, SQLITE_STATIC);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)label_row, "labels");
}

int
sq_label_put(struct store *st, const char *device_id, const char *key, const char *value)
{
	/* From the device's row, so that no row is made for a device that does not exist. */
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_LABEL_PUT,
			"INSERT INTO device_labels (device_id, key, value) "
			"SELECT id, ?2, ?3 FROM devices WHERE id = ?1 "
			"ON CONFLICT (device_id, key) DO UPDATE SET value = excluded.value");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, value, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "label put");
}

int
sq_label_delete(struct store *st, const char *device_id, const char *key)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_LABEL_DELETE,
				  "DELETE FROM device_labels WHERE device_id = ? AND key = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, device_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, key, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "label delete");
}

#define GROUP_COLS                                                                                 \
	"name, query, description, policy, priority, created_by, created_at, updated_at, version"

static void
group_row(sqlite3_stmt *q, struct device_group *g)
{
	sq_col_text(q, 0, g->name, sizeof(g->name));
	sq_col_text(q, 1, g->query, sizeof(g->query));
	sq_col_text(q, 2, g->description, sizeof(g->description));
	sq_col_text(q, 3, g->policy, sizeof(g->policy));
	g->priority = sqlite3_column_int64(q, 4);
	sq_col_text(q, 5, g->created_by, sizeof(g->created_by));
	g->created_at = sqlite3_column_int64(q, 6);
	g->updated_at = sqlite3_column_int64(q, 7);
	g->version = sqlite3_column_int64(q, 8);
}

/* Binds g's columns in GROUP_COLS order as ?1..?9 (an insert). */
static void
group_bind(sqlite3_stmt *q, const struct device_group *g)
{
	sqlite3_bind_text(q, 1, g->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, g->query, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, g->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, g->policy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, g->priority);
	sqlite3_bind_text(q, 6, g->created_by, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 7, g->created_at);
	sqlite3_bind_int64(q, 8, g->updated_at);
	sqlite3_bind_int64(q, 9, g->version);
}

int
sq_group_insert(struct store *st, const struct device_group *g)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_GROUP_INSERT,
				  "INSERT INTO device_groups (" GROUP_COLS
				  ") VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)");

	if (q == NULL)
		return -EIO;
	group_bind(q, g);
	return sq_exec_stmt(S(st), q, "group insert");
}

int
sq_group_get(struct store *st, const char *name, struct device_group *out)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_GROUP_GET,
				  "SELECT " GROUP_COLS " FROM device_groups WHERE name = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return sq_one(S(st), q, out, (sq_row_fn)group_row, "group");
}

int
sq_group_list(struct store *st, const char *after, struct device_group *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_GROUP_LIST,
				  "SELECT " GROUP_COLS " FROM device_groups WHERE name > ? "
				  "ORDER BY name LIMIT ?");

	*n = 0;
	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, after ? after : "", -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 2, (int64_t)max);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)group_row, "group list");
}

int
sq_group_update(struct store *st, const struct device_group *g)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_GROUP_UPDATE,
			"UPDATE device_groups SET query = ?2, description = ?3, "
			"policy = ?4, priority = ?5, updated_at = ?6, version = version + 1 "
			"WHERE name = ?1");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, g->name, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 2, g->query, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, g->description, -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, g->policy, -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 5, g->priority);
	sqlite3_bind_int64(q, 6, g->updated_at);
	return sq_exec_changed(S(st), q, "group update");
}

int
sq_group_delete(struct store *st, const char *name)
{
	sqlite3_stmt *q =
		sq_stmt(S(st), SQ_GROUP_DELETE, "DELETE FROM device_groups WHERE name = ?");

	if (q == NULL)
		return -EIO;
	sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC);
	return sq_exec_changed(S(st), q, "group delete");
}

int
sq_group_policies(struct store *st, struct device_group *out, size_t max, size_t *n)
{
	sqlite3_stmt *q = sq_stmt(S(st), SQ_GROUP_POLICIES,
				  "SELECT " GROUP_COLS " FROM device_groups WHERE policy <> '' "
				  "ORDER BY priority, name LIMIT ?");

	*n = 0;
	if (q == NULL)
		return -EIO;
	sqlite3_bind_int64(q, 1, (int64_t)max);
	return sq_many(S(st), q, out, sizeof(*out), max, n, (sq_row_fn)group_row, "group policies");
}

/*
 * The PostgreSQL backend's labels and groups (issue 11 section 5, migration 0020), the twin of
 * store_sqlite_labels.c. A label write is one statement (an upsert from the device's row), so
 * two servers labelling one device at once each leave a whole label, never a half.
 */
#include <errno.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

static void
label_row(const PGresult *r, int i, void *out)
{
	struct device_label *l = out;

	pg_col_text(r, i, 0, l->key, sizeof(l->key));
	pg_col_text(r, i, 1, l->value, sizeof(l->value));
}

int
pg_labels_get(struct store *st, const char *device_id, struct device_label *out, size_t max,
	      size_t *n)
{
	struct pg_args a = {0};

	pa_text(&a, device_id);
	pa_int(&a, (int64_t)max);
	return pg_many(S(st),
		       "SELECT key, value FROM device_labels WHERE device_id = $1 "
		       "ORDER BY key COLLATE \"C\" LIMIT $2",
		       &a, out, sizeof(*out), max, n, label_row, "labels");
}

int
pg_label_put(struct store *st, const char *device_id, const char *key, const char *value)
{
	struct pg_args a = {0};

	pa_text(&a, device_id);
	pa_text(&a, key);
	pa_text(&a, value);
	return pg_changed(S(st),
			  "INSERT INTO device_labels (device_id, key, value) "
			  "SELECT id, $2, $3 FROM devices WHERE id = $1 "
			  "ON CONFLICT (device_id, key) DO UPDATE SET value = excluded.value",
			  &a, "label put");
}

int
pg_label_delete(struct store *st, const char *device_id, const char *key)
{
	struct pg_args a = {0};

	pa_text(&a, device_id);
	pa_text(&a, key);
	return pg_changed(S(st), "DELETE FROM device_labels WHERE device_id = $1 AND key = $2", &a,
			  "label delete");
}

#define GROUP_COLS                                                                                 \
	"name, query, description, policy, priority, created_by, created_at, updated_at, version"

static void
group_row(const PGresult *r, int i, void *out)
{
	struct device_group *g = out;

	pg_col_text(r, i, 0, g->name, sizeof(g->name));
	pg_col_text(r, i, 1, g->query, sizeof(g->query));
	pg_col_text(r, i, 2, g->description, sizeof(g->description));
	pg_col_text(r, i, 3, g->policy, sizeof(g->policy));
	g->priority = pg_col_int(r, i, 4);
	pg_col_text(r, i, 5, g->created_by, sizeof(g->created_by));
	g->created_at = pg_col_int(r, i, 6);
	g->updated_at = pg_col_int(r, i, 7);
	g->version = pg_col_int(r, i, 8);
}

/* g's columns in GROUP_COLS order as $1..$9. */
static void
group_args(struct pg_args *a, const struct device_group *g)
{
	pa_text(a, g->name);
	pa_text(a, g->query);
	pa_text(a, g->description);
	pa_text(a, g->policy);
	pa_int(a, g->priority);
	pa_text(a, g->created_by);
	pa_int(a, g->created_at);
	pa_int(a, g->updated_at);
	pa_int(a, g->version);
}

int
pg_group_insert(struct store *st, const struct device_group *g)
{
	struct pg_args a = {0};

	group_args(&a, g);
	return pg_run(S(st),
		      "INSERT INTO device_groups (" GROUP_COLS
		      ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
		      &a, NULL, "group insert");
}

int
pg_group_get(struct store *st, const char *name, struct device_group *out)
{
	struct pg_args a = {0};

	pa_text(&a, name);
	return pg_one(S(st), "SELECT " GROUP_COLS " FROM device_groups WHERE name = $1", &a, out,
		      group_row, "group");
}

int
pg_group_list(struct store *st, const char *after, struct device_group *out, size_t max, size_t *n)
{
	struct pg_args a = {0};

	/* Byte order, as SQLite's: a page's cursor is the last name. */
	pa_text(&a, after ? after : "");
	pa_int(&a, (int64_t)max);
	return pg_many(S(st),
		       "SELECT " GROUP_COLS " FROM device_groups WHERE name > $1 COLLATE \"C\" "
		       "ORDER BY name COLLATE \"C\" LIMIT $2",
		       &a, out, sizeof(*out), max, n, group_row, "group list");
}

int
pg_group_update(struct store *st, const struct device_group *g)
{
	struct pg_args a = {0};

	pa_text(&a, g->name);
	pa_text(&a, g->query);
	pa_text(&a, g->description);
	pa_text(&a, g->policy);
	pa_int(&a, g->priority);
	pa_int(&a, g->updated_at);
	return pg_changed(S(st),
			  "UPDATE device_groups SET query = $2, description = $3, policy = $4, "
			  "priority = $5, updated_at = $6, version = version + 1 WHERE name = $1",
			  &a, "group update");
}

int
pg_group_delete(struct store *st, const char *name)
{
	struct pg_args a = {0};

	pa_text(&a, name);
	return pg_changed(S(st), "DELETE FROM device_groups WHERE name = $1", &a, "group delete");
}

int
pg_group_policies(struct store *st, struct device_group *out, size_t max, size_t *n)
{
	struct pg_args a = {0};

	pa_int(&a, (int64_t)max);
	return pg_many(S(st),
		       "SELECT " GROUP_COLS " FROM device_groups WHERE policy <> '' "
		       "ORDER BY priority, name COLLATE \"C\" LIMIT $1",
		       &a, out, sizeof(*out), max, n, group_row, "group policies");
}

/*
 * The numbered SQL migrations from schema/migrations, embedded at build time by
 * scripts/embed-sql.sh. Numbers start at 1 and rise (sorted by file name); each is applied once,
 * when the database's user_version is below it.
 */
#ifndef CLEAVE_MIGRATIONS_H
#define CLEAVE_MIGRATIONS_H

struct migration {
	int number;
	const char *name;
	const char *sql;
};

extern const struct migration migrations[];
extern const unsigned long migrations_count;

/* The PostgreSQL backend's, from schema/migrations/pg: the same numbers, one file each. */
extern const struct migration pg_migrations[];
extern const unsigned long pg_migrations_count;

#endif

/*
 * cmocka fixture shared by the unit tests that need a real store: a fresh SQLite database in
 * its own temporary directory per test, removed (with its WAL files) afterwards. Include it
 * once per test file; it defines static setup/teardown functions named store_fx_*.
 */
#ifndef CLEAVE_STORE_FIXTURE_H
#define CLEAVE_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "store/store.h"

struct fx {
	char dir[64];
	char path[128];
	struct store *st;
};

static void
remove_db_files(const char *path)
{
	static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
	char p[160];

	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		snprintf(p, sizeof(p), "%s%s", path, suffixes[i]);
		unlink(p);
	}
}

static int
store_fx_setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-unit-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/cleave.db", f->dir);
	if (store_sqlite_open(f->path, &f->st) != 0) {
		rmdir(f->dir);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int
store_fx_teardown(void **state)
{
	struct fx *f = *state;

	if (f->st != NULL)
		f->st->ops->close(f->st);
	remove_db_files(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

#endif

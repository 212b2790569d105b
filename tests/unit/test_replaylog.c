/*
 * Unit tests of the replay log (server/service/replaylog.c) on real files: what a start reads
 * back (records across read chunks, a torn last line, garbage), appends, the two files taking
 * turns, and reset.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "service/replaylog.h"

struct seen {
	size_t n;
	uint64_t max_a, max_b;
};

static int
count(void *ctx, const char *id, uint64_t nonce)
{
	struct seen *s = ctx;

	s->n++;
	if (strcmp(id, "dev_a") == 0 && nonce > s->max_a)
		s->max_a = nonce;
	if (strcmp(id, "dev_b") == 0 && nonce > s->max_b)
		s->max_b = nonce;
	return 0;
}

struct fx {
	char dir[64], base[96], f0[128], f1[128];
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-test-replay-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->base, sizeof(f->base), "%s/replay", f->dir);
	snprintf(f->f0, sizeof(f->f0), "%s.0", f->base);
	snprintf(f->f1, sizeof(f->f1), "%s.1", f->base);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	unlink(f->f0);
	unlink(f->f1);
	rmdir(f->dir);
	free(f);
	return 0;
}

static off_t
size_of(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 ? st.st_size : -1;
}

/* A log far larger than one read chunk, a garbage line and a torn last line all load. */
static void
test_replaylog_reads_back_across_chunks(void **state)
{
	struct fx *f = *state;
	struct seen s = {0};
	struct replaylog *l;
	size_t n = 0;
	FILE *w = fopen(f->f0, "w");

	assert_non_null(w);
	for (unsigned i = 1; i <= 20000; i++) /* ~300 KiB: several chunks */
		fprintf(w, "dev_a %u\n", i);
	fputs("not a record at all\n", w);
	fputs("dev_a 99999999", w); /* torn: no newline, never answered */
	fclose(w);
	w = fopen(f->f1, "w");
	assert_non_null(w);
	fputs("dev_b 7\ndev_b 5\n", w);
	fclose(w);
	assert_int_equal(replaylog_open(f->base, count, &s, &l, &n), 0);
	assert_int_equal(n, 20002);
	assert_int_equal(s.n, 20002);
	assert_int_equal(s.max_a, 20000);
	assert_int_equal(s.max_b, 7);
	/* The store took them: both files start empty. */
	assert_int_equal(replaylog_reset(l), 0);
	assert_int_equal(size_of(f->f0), 0);
	assert_int_equal(size_of(f->f1), 0);
	replaylog_close(l);
}

/* Appends go to one file; after a full flush the other is emptied and they swap. */
static void
test_replaylog_files_take_turns(void **state)
{
	struct fx *f = *state;
	struct seen s = {0};
	struct replaylog *l;
	size_t n = 0;
	int sw;

	assert_int_equal(replaylog_open(f->base, count, &s, &l, &n), 0);
	assert_int_equal(replaylog_reset(l), 0);
	assert_int_equal(replaylog_append(l, "dev_a", 1), 0);
	assert_true(size_of(f->f0) > 0);
	sw = replaylog_switch(l); /* the flush starts: new appends go to .1 */
	assert_int_equal(sw, 1);
	assert_int_equal(replaylog_append(l, "dev_a", 2), 0);
	assert_true(size_of(f->f1) > 0);
	replaylog_flushed(l, sw); /* .0 is in the store now */
	assert_int_equal(size_of(f->f0), 0);
	assert_true(size_of(f->f1) > 0);
	replaylog_close(l);
	/* What a crash now leaves is read back. */
	memset(&s, 0, sizeof(s));
	assert_int_equal(replaylog_open(f->base, count, &s, &l, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(s.max_a, 2);
	replaylog_close(l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_replaylog_reads_back_across_chunks, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_replaylog_files_take_turns, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

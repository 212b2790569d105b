/*
 * audit: list, tail (--follow), verify and export. Tail and export read
 * GET /api/v1/audit/export, whose pieces resume exactly at Cleave-Next-Cursor; --follow then
 * asks again from the newest entry's time (inclusive) and prints only entries with a higher
 * seq, so nothing is shown twice and nothing committed is skipped (seq becomes visible in
 * order, schema/api.md "Lists").
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "util.h"

#define PATH_CAP   4096
#define PIECES_MAX 1000000 /* 5,000 entries a piece: far beyond any log */
#define TAIL_MAX   1000

static const char *const audit_filters[] = {"actor", "action", "target", "since", "until"};

static int
audit_query(const struct ctx *c, char *path, size_t cap, const char *since)
{
	for (size_t i = 0; i < ARRAY_SIZE(audit_filters); i++) {
		const char *v = opt(c, audit_filters[i]);

		if (since != NULL && strcmp(audit_filters[i], "since") == 0)
			v = since;
		if (v != NULL && query_add(path, cap, audit_filters[i], v) != 0)
			return fail(EX_USAGE, "--%s is too long", audit_filters[i]);
	}
	return EX_OK;
}

static const struct col audit_cols[] = {
	{"SEQ", "seq", 8},        {"AT", "at", 24},         {"ACTOR", "actor", 24},
	{"ACTION", "action", 24}, {"TARGET", "target", 30}, {"OUTCOME", "outcome", 10},
	{"DETAIL", "detail", 60},
};

int
cmd_audit_list(struct ctx *c)
{
	char path[PATH_CAP] = "/api/v1/audit";
	int rc;

	if ((rc = audit_query(c, path, sizeof(path), NULL)) != EX_OK)
		return rc;
	return list_paged(c, path, audit_cols, ARRAY_SIZE(audit_cols));
}

int
cmd_audit_verify(struct ctx *c)
{
	struct reply r;
	json_t *j, *last;
	int rc = api_json(c, "GET",
			  opt(c, "full") ? "/api/v1/audit/verify?full=1" : "/api/v1/audit/verify",
			  NULL, NULL, &j, &r);
	int ok = json_is_true(json_object_get(j, "ok"));

	if (rc != EX_OK)
		goto out;
	last = json_object_get(j, "last_checkpoint");
	if (c->json) {
		print_raw(&r);
	} else if (ok) {
		printf("ok: %lld entries verified (%s), %lld checkpoints",
		       (long long)json_integer_value(json_object_get(j, "entries")),
		       str_or(json_string_value(json_object_get(j, "mode")), "full"),
		       (long long)json_integer_value(json_object_get(j, "checkpoints")));
		if (json_is_object(last))
			printf(", the newest signs entry %lld",
			       (long long)json_integer_value(json_object_get(last, "seq")));
		putchar('\n');
	}
	if (!ok) {
		fputs("cleavectl: the audit log does NOT verify: ", stderr);
		put_safe(stderr, str_or(json_string_value(json_object_get(j, "problem")), "?"));
		if (json_is_integer(json_object_get(j, "first_bad_seq")))
			fprintf(stderr, " (first bad entry %lld)",
				(long long)json_integer_value(json_object_get(j, "first_bad_seq")));
		fputc('\n', stderr);
		rc = EX_UNVERIFIED;
	}
out:
	json_decref(j);
	reply_free(&r);
	return rc;
}

/* Called for each line of an export; non-zero stops the walk with that code. */
typedef int (*line_fn)(void *ud, const char *line, size_t len);

/* Walks every export piece from since (NULL: the --since option) through line. */
static int
export_walk(struct ctx *c, const char *since, line_fn fn, void *ud)
{
	char base[PATH_CAP] = "/api/v1/audit/export?limit=5000", path[PATH_CAP], cursor[512] = "";
	int rc;

	if ((rc = audit_query(c, base, sizeof(base), since)) != EX_OK)
		return rc;
	for (long piece = 0; piece < PIECES_MAX; piece++) {
		struct reply r;
		const char *p, *end;

		str_copy(path, sizeof(path), base);
		if (cursor[0] && query_add(path, sizeof(path), "cursor", cursor) != 0)
			return fail(EX_SERVER, "the export cursor is too long");
		if ((rc = api(c, "GET", path, NULL, NULL, &r)) != EX_OK)
			return rc;
		for (p = r.body ? r.body : ""; rc == EX_OK && *p; p = end + (*end == '\n')) {
			end = p + strcspn(p, "\n");
			if (end > p)
				rc = fn(ud, p, (size_t)(end - p));
		}
		str_copy(cursor, sizeof(cursor), r.next_cursor);
		reply_free(&r);
		if (rc != EX_OK || cursor[0] == '\0')
			return rc;
	}
	return fail(EX_SERVER, "the export did not end after %d pieces", PIECES_MAX);
}

static int
write_line(void *ud, const char *line, size_t len)
{
	FILE *f = ud;

	fwrite(line, 1, len, f);
	return fputc('\n', f) == EOF ? fail(EX_USAGE, "cannot write: %s", strerror(errno)) : EX_OK;
}

int
cmd_audit_export(struct ctx *c)
{
	const char *out = opt(c, "output");
	FILE *f = out ? fopen(out, "w") : stdout;
	int rc;

	if (f == NULL)
		return fail(EX_USAGE, "cannot write %s: %s", out, strerror(errno));
	rc = export_walk(c, NULL, write_line, f);
	if (out != NULL && fclose(f) != 0 && rc == EX_OK)
		rc = fail(EX_USAGE, "cannot write %s: %s", out, strerror(errno));
	return rc;
}

/* The newest entries kept while walking, and where following resumes. */
struct tail {
	json_t *ring[TAIL_MAX];
	size_t n, keep, head;
	long long last_seq;
	char last_at[64];
	int live; /* following: print at once */
	int json;
};

static const struct col tail_cols[] = {
	{"SEQ", "seq", 7},        {"AT", "at", 24},         {"ACTOR", "actor", 24},
	{"ACTION", "action", 24}, {"TARGET", "target", 26}, {"OUTCOME", "outcome", 8},
	{"DETAIL", "detail", 70},
};

static void
print_entry(const json_t *e, int json)
{
	if (json) {
		char *s = json_dumps(e, JSON_COMPACT);

		printf("%s\n", s ? s : "{}");
		free(s);
	} else {
		print_row(e, tail_cols, ARRAY_SIZE(tail_cols));
	}
	fflush(stdout);
}

static int
tail_line(void *ud, const char *line, size_t len)
{
	struct tail *t = ud;
	json_t *e = json_loadb(line, len, 0, NULL);
	long long seq = (long long)json_integer_value(json_object_get(e, "seq"));

	if (e == NULL)
		return fail(EX_SERVER, "the export holds a line that is not JSON");
	if (seq <= t->last_seq) { /* already shown: the since window is inclusive */
		json_decref(e);
		return EX_OK;
	}
	t->last_seq = seq;
	str_copy(t->last_at, sizeof(t->last_at),
		 str_or(json_string_value(json_object_get(e, "at")), t->last_at));
	if (t->live) {
		print_entry(e, t->json);
		json_decref(e);
		return EX_OK;
	}
	json_decref(t->ring[t->head]);
	t->ring[t->head] = e;
	t->head = (t->head + 1) % t->keep;
	t->n = MIN(t->n + 1, t->keep);
	return EX_OK;
}

int
cmd_audit_tail(struct ctx *c)
{
	struct tail t = {.json = c->json};
	char since[64];
	time_t day = time(NULL) - 86400;
	struct tm tm;
	long n, interval;
	int rc;

	if ((rc = opt_long(c, "n", 20, 1, TAIL_MAX, &n)) != EX_OK ||
	    (rc = opt_long(c, "interval", 2, 1, 3600, &interval)) != EX_OK)
		return rc;
	t.keep = (size_t)n;
	gmtime_r(&day, &tm);
	strftime(since, sizeof(since), "%Y-%m-%dT%H:%M:%SZ", &tm);
	rc = export_walk(c, str_or(opt(c, "since"), since), tail_line, &t);
	if (rc == EX_OK && !c->json) {
		json_t *head = json_object();

		for (size_t k = 0; k < ARRAY_SIZE(tail_cols); k++)
			json_object_set_new(head, tail_cols[k].path,
					    json_string(tail_cols[k].title));
		print_row(head, tail_cols, ARRAY_SIZE(tail_cols));
		json_decref(head);
	}
	for (size_t i = 0; i < t.n; i++) {
		size_t k = (t.head + t.keep - t.n + i) % t.keep;

		if (rc == EX_OK)
			print_entry(t.ring[k], t.json);
	}
	for (size_t i = 0; i < t.keep; i++)
		json_decref(t.ring[i]);
	/* Following: ask again from the newest entry's time; Ctrl-C ends it. */
	for (t.live = 1; rc == EX_OK && opt(c, "follow");) {
		sleep((unsigned)interval);
		rc = export_walk(c, t.last_at[0] ? t.last_at : str_or(opt(c, "since"), since),
				 tail_line, &t);
	}
	return rc;
}

int
cmd_audit_stream(struct ctx *c)
{
	return print_get(c, "/api/v1/audit/stream");
}

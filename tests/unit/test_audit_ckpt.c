/*
 * Unit tests of audit checkpoints (server/audit/audit_ckpt.c, server/service/checkpoint.c): the
 * CLVCKPT1 record at every offset of schema/wire-formats.md §6 and the openssl command an
 * auditor runs on it; the checkpoint file (exact lines, edited and torn lines); the check of
 * checkpoints against a real SQLite chain tampered through a raw connection, as an insider
 * would (an edit with the whole chain rehashed, the newest rows deleted with and without their
 * checkpoint rows); and when the service makes checkpoints, with an injected clock.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "fileio.h"
#include "le.h"
#include "log.h"
#include "service/service.h"
#include "store/store.h"
#include "store_fixture.h"

#define CKPT_FILE "ckpt.log"

/* Files a test may leave beside the database; removed before the fixture's rmdir. */
static const char *const extra_files[] = {CKPT_FILE, "ckpt.bin",  "body.bin",
					  "sig.bin", "audit.pem", "auditor.out"};

struct ck {
	struct fx *f;
	struct ed25519_key *key;
	uint8_t pub[32];
	char file[160];
};

static int
ck_setup(void **state)
{
	struct ck *c = calloc(1, sizeof(*c));

	if (c == NULL || store_fx_setup(state) != 0) {
		free(c);
		return -1;
	}
	c->f = *state;
	if (ed25519_key_generate(&c->key) != 0)
		return -1;
	ed25519_key_public(c->key, c->pub);
	snprintf(c->file, sizeof(c->file), "%s/%s", c->f->dir, CKPT_FILE);
	*state = c;
	return 0;
}

static int
ck_teardown(void **state)
{
	struct ck *c = *state;
	char p[192];

	for (size_t i = 0; i < sizeof(extra_files) / sizeof(extra_files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", c->f->dir, extra_files[i]);
		unlink(p);
	}
	ed25519_key_free(c->key);
	*state = c->f;
	free(c);
	return store_fx_teardown(state);
}

static void
raw_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char *err = NULL;
	int rc;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
	sqlite3_close(db);
}

/* Appends n entries, one transaction each, at times 1000, 2000, ... after the last. */
static void
append_n(struct store *st, int n)
{
	for (int i = 0; i < n; i++) {
		char detail[32];

		snprintf(detail, sizeof(detail), "entry %d", i);
		assert_int_equal(st->ops->tx_begin(st), 0);
		assert_int_equal(audit_append(st, 1700000000000 + i * 1000, "tok_admin",
					      "token.create", "tok_x", "ok", detail),
				 0);
		assert_int_equal(st->ops->tx_commit(st), 0);
	}
}

/* Signs the current entry seq, stores the checkpoint and appends it to the file. */
static void
checkpoint_at(struct ck *c, int64_t seq)
{
	struct audit_entry e;
	struct audit_ckpt k = {.seq = seq, .at_ms = 1700000100000 + seq};
	struct audit_ckpt_row row = {.seq = seq, .at_ms = k.at_ms};
	struct store *st = c->f->st;

	assert_int_equal(st->ops->audit_get(st, seq, &e), 0);
	memcpy(k.head_hash, e.hash, 32);
	assert_int_equal(audit_ckpt_sign(c->key, &k, row.record), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->audit_ckpt_insert(st, &row), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(audit_ckpt_file_append(c->file, row.record), 0);
}

static void
verify(struct ck *c, const char *file, struct audit_ckpt_result *r)
{
	assert_int_equal(audit_verify_checkpoints(c->f->st, c->pub, file, r), 0);
}

static void
expect_problem(struct ck *c, const char *file, int64_t first_bad, const char *words)
{
	struct audit_ckpt_result r;

	verify(c, file, &r);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, first_bad);
	if (strstr(r.problem, words) == NULL)
		fail_msg("problem \"%s\" lacks \"%s\"", r.problem, words);
}

static void
expect_chain_intact(struct store *st)
{
	struct audit_verify_result v;

	assert_int_equal(audit_verify(st, &v), 0);
	assert_int_equal(v.first_bad_seq, 0);
}

/*
 * What an insider with write access to the database does: edit entry seq and recompute the
 * hash of it and of every entry after it, so that the chain links up again.
 */
static void
edit_and_rehash(struct ck *c, int64_t seq, const char *detail)
{
	struct audit_filter flt = {.limit = STORE_LIST_MAX};
	struct audit_entry *e = calloc(STORE_LIST_MAX, sizeof(*e));
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	size_t n = 0;

	assert_non_null(e);
	assert_int_equal(c->f->st->ops->audit_list(c->f->st, &flt, e, &n), 0);
	assert_int_equal(sqlite3_open(c->f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
					    "UPDATE audit SET detail = ?, prev_hash = ?, hash = ? "
					    "WHERE seq = ?",
					    -1, &q, NULL),
			 SQLITE_OK);
	for (size_t i = (size_t)seq - 1; i < n; i++) {
		if (e[i].seq == seq)
			snprintf(e[i].detail, sizeof(e[i].detail), "%s", detail);
		if (i > 0)
			memcpy(e[i].prev_hash, e[i - 1].hash, 32);
		audit_hash(&e[i], e[i].hash);
		sqlite3_bind_text(q, 1, e[i].detail, -1, SQLITE_STATIC);
		sqlite3_bind_blob(q, 2, e[i].prev_hash, 32, SQLITE_STATIC);
		sqlite3_bind_blob(q, 3, e[i].hash, 32, SQLITE_STATIC);
		sqlite3_bind_int64(q, 4, e[i].seq);
		assert_int_equal(sqlite3_step(q), SQLITE_DONE);
		sqlite3_reset(q);
	}
	sqlite3_finalize(q);
	sqlite3_close(db);
	free(e);
}

/* ---- the record ---- */

static void
test_ckpt_record_layout(void **state)
{
	struct ck *c = *state;
	struct audit_ckpt k = {.seq = 0x0102030405, .at_ms = 1764697625123}, got;
	uint8_t rec[AUDIT_CKPT_LEN], zero[6] = {0};

	for (int i = 0; i < 32; i++)
		k.head_hash[i] = (uint8_t)(0xa0 + i);
	assert_int_equal(audit_ckpt_sign(c->key, &k, rec), 0);
	assert_memory_equal(rec, "CLVCKPT1", 8);
	assert_int_equal(get16(rec + 8), 1);
	assert_memory_equal(rec + 10, zero, 6);
	assert_int_equal(get64(rec + 16), 0x0102030405);
	assert_int_equal(get64(rec + 24), 1764697625123);
	assert_memory_equal(rec + 32, k.head_hash, 32);
	assert_memory_equal(rec + 64, c->pub, 32);
	assert_int_equal(ed25519_verify(c->pub, rec, 96, rec + 96), 0);

	assert_int_equal(audit_ckpt_open(rec, c->pub, &got), 0);
	assert_int_equal(got.seq, k.seq);
	assert_int_equal(got.at_ms, k.at_ms);
	assert_memory_equal(got.head_hash, k.head_hash, 32);
	assert_memory_equal(got.key, c->pub, 32);
}

static void
test_ckpt_open_rejects_any_change_and_other_keys(void **state)
{
	struct ck *c = *state;
	struct audit_ckpt k = {.seq = 9, .at_ms = 5}, got;
	struct ed25519_key *other = NULL;
	uint8_t rec[AUDIT_CKPT_LEN], bad[AUDIT_CKPT_LEN], opub[32];

	assert_int_equal(audit_ckpt_sign(c->key, &k, rec), 0);
	for (size_t i = 0; i < AUDIT_CKPT_LEN; i++) {
		memcpy(bad, rec, sizeof(bad));
		bad[i] ^= 0x01;
		assert_int_not_equal(audit_ckpt_open(bad, c->pub, &got), 0);
	}
	/* Structure first: a bad magic, version or reserved byte is malformed, not just unsigned. */
	memcpy(bad, rec, sizeof(bad));
	bad[0] = 'X';
	assert_int_equal(audit_ckpt_open(bad, c->pub, &got), -EINVAL);
	memcpy(bad, rec, sizeof(bad));
	put16(bad + 8, 2);
	assert_int_equal(audit_ckpt_open(bad, c->pub, &got), -EINVAL);
	memcpy(bad, rec, sizeof(bad));
	bad[12] = 1;
	assert_int_equal(audit_ckpt_open(bad, c->pub, &got), -EINVAL);

	/* Signed by another key: refused whether the record names that key or ours. */
	assert_int_equal(ed25519_key_generate(&other), 0);
	ed25519_key_public(other, opub);
	assert_int_equal(audit_ckpt_sign(other, &k, bad), 0);
	assert_int_equal(audit_ckpt_open(bad, c->pub, &got), -EBADMSG);
	memcpy(bad + 64, c->pub, 32);
	assert_int_equal(audit_ckpt_open(bad, c->pub, &got), -EBADMSG);
	assert_int_equal(audit_ckpt_open(rec, opub, &got), -EBADMSG);
	ed25519_key_free(other);

	/* An empty log has no head to sign. */
	k.seq = 0;
	assert_int_equal(audit_ckpt_sign(c->key, &k, bad), 0);
	assert_int_equal(audit_ckpt_open(bad, c->pub, &got), -EINVAL);
}

static int
run(const char *cmd)
{
	int rc = system(cmd);

	return rc == -1 ? -1 : WEXITSTATUS(rc);
}

/* The README's auditor commands, run as written on a checkpoint file made here. */
static void
test_ckpt_auditor_openssl_command(void **state)
{
	struct ck *c = *state;
	static const char check[] =
		"tail -n 1 " CKPT_FILE " | cut -d' ' -f1 | base64 -d > ckpt.bin; "
		"head -c 96 ckpt.bin > body.bin; tail -c 64 ckpt.bin > sig.bin; "
		"openssl pkeyutl -verify -pubin -inkey audit.pem -rawin -in body.bin -sigfile "
		"sig.bin";
	static const char show[] =
		"od -An -tu8 -j16 -N8 ckpt.bin; od -An -tx1 -v -j32 -N32 ckpt.bin | tr -d ' \\n'";
	char cmd[1024], want[160], path[192], *pem = NULL, hex[65], *out;
	struct audit_entry e;
	FILE *fp;

	append_n(c->f->st, 4);
	checkpoint_at(c, 2);
	checkpoint_at(c, 4);
	assert_int_equal(ed25519_pub_to_pem(c->pub, &pem), 0);
	snprintf(path, sizeof(path), "%s/audit.pem", c->f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(pem, fp);
	fclose(fp);
	free(pem);

	snprintf(cmd, sizeof(cmd), "cd '%s' && { %s && %s; } > auditor.out 2>&1", c->f->dir, check,
		 show);
	assert_int_equal(run(cmd), 0);
	/* The output, with od's padding squeezed: the verdict, the seq, the head hash. */
	assert_int_equal(c->f->st->ops->audit_get(c->f->st, 4, &e), 0);
	hex_encode(hex, sizeof(hex), e.hash, 32);
	snprintf(want, sizeof(want), "Signature Verified Successfully\n 4\n%s", hex);
	snprintf(path, sizeof(path), "%s/auditor.out", c->f->dir);
	out = file_read_all(path, 4096, NULL);
	assert_non_null(out);
	for (char *r = out, *w = out;; r++) {
		if (!(*r == ' ' && w > out && w[-1] == ' ') && (*w++ = *r) == '\0')
			break;
	}
	assert_string_equal(out, want);
	free(out);

	/* One changed digit of the seq in the base64 and openssl refuses it. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && sed -i '$ s/^\\(.\\{23\\}\\)A/\\1B/' " CKPT_FILE
		 " && { %s; } > auditor.out 2>&1",
		 c->f->dir, check);
	assert_int_not_equal(run(cmd), 0);
}

/* ---- the checkpoint file ---- */

struct lines {
	int n, bad;
	uint8_t recs[4][AUDIT_CKPT_LEN];
};

static int
collect(void *ctx, long lineno, const uint8_t *rec)
{
	struct lines *l = ctx;

	assert_int_equal(lineno, l->n + 1);
	if (rec == NULL)
		l->bad++;
	else if (l->n < 4)
		memcpy(l->recs[l->n], rec, AUDIT_CKPT_LEN);
	l->n++;
	return 0;
}

static void
test_ckpt_file_lines(void **state)
{
	struct ck *c = *state;
	struct audit_ckpt k = {.seq = 3, .at_ms = 1764697625123};
	uint8_t r1[AUDIT_CKPT_LEN], r2[AUDIT_CKPT_LEN];
	struct lines l = {0};
	char line[AUDIT_CKPT_LINE_MAX], cmd[512];

	assert_int_equal(audit_ckpt_file_iter(c->file, collect, &l), -ENOENT);
	memset(k.head_hash, 0xab, 32);
	assert_int_equal(audit_ckpt_sign(c->key, &k, r1), 0);
	k.seq = 4;
	assert_int_equal(audit_ckpt_sign(c->key, &k, r2), 0);
	assert_int_equal(audit_ckpt_line(r1, line, sizeof(line)), 0);
	assert_non_null(strstr(line, " seq=3 at=2025-12-02T17:47:05.123Z head=abababab"));
	assert_int_equal(line[strlen(line) - 1], '\n');

	assert_int_equal(audit_ckpt_file_append(c->file, r1), 0);
	assert_int_equal(audit_ckpt_file_append(c->file, r2), 0);
	assert_int_equal(access(c->file, R_OK), 0);
	assert_int_equal(audit_ckpt_file_iter(c->file, collect, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.bad, 0);
	assert_memory_equal(l.recs[0], r1, AUDIT_CKPT_LEN);
	assert_memory_equal(l.recs[1], r2, AUDIT_CKPT_LEN);

	/* The readable fields are checked too: an edited one makes the line invalid. */
	snprintf(cmd, sizeof(cmd), "sed -i '1 s/ seq=3 / seq=9 /' '%s'", c->file);
	assert_int_equal(run(cmd), 0);
	/* A line cut short by a crash: the next append starts on a line of its own. */
	snprintf(cmd, sizeof(cmd), "printf 'Q0xWQ0tQ' >> '%s'", c->file);
	assert_int_equal(run(cmd), 0);
	assert_int_equal(audit_ckpt_file_append(c->file, r1), 0);
	memset(&l, 0, sizeof(l));
	assert_int_equal(audit_ckpt_file_iter(c->file, collect, &l), 0);
	assert_int_equal(l.n, 4);
	assert_int_equal(l.bad, 2);
	assert_memory_equal(l.recs[1], r2, AUDIT_CKPT_LEN);
	assert_memory_equal(l.recs[3], r1, AUDIT_CKPT_LEN);
}

/* ---- checking checkpoints against the chain ---- */

static void
test_ckpt_verify_intact(void **state)
{
	struct ck *c = *state;
	struct audit_ckpt_result r;

	verify(c, c->file, &r); /* no checkpoints, no file yet: nothing to complain about */
	assert_true(r.ok);
	assert_int_equal(r.db_count + r.file_count, 0);
	append_n(c->f->st, 5);
	checkpoint_at(c, 2);
	checkpoint_at(c, 5);
	verify(c, c->file, &r);
	assert_true(r.ok);
	assert_string_equal(r.problem, "");
	assert_int_equal(r.db_count, 2);
	assert_int_equal(r.file_count, 2);
	assert_int_equal(r.last.seq, 5);
	assert_int_equal(r.last.at_ms, 1700000100005);
	/* New entries after the last checkpoint are fine. */
	append_n(c->f->st, 3);
	verify(c, c->file, &r);
	assert_true(r.ok);
}

static void
test_ckpt_verify_detects_edit_with_rehashed_chain(void **state)
{
	struct ck *c = *state;

	append_n(c->f->st, 6);
	checkpoint_at(c, 2);
	checkpoint_at(c, 5);
	edit_and_rehash(c, 3, "nothing to see here");
	/* The chain alone is fooled; the checkpoint of entry 5 is not. */
	expect_chain_intact(c->f->st);
	expect_problem(c, c->file, 3, "rewritten at or before entry 5 and after entry 2");
	expect_problem(c, NULL, 3, "rewritten at or before entry 5 and after entry 2");
}

static void
test_ckpt_verify_detects_edit_before_every_checkpoint(void **state)
{
	struct ck *c = *state;

	append_n(c->f->st, 4);
	checkpoint_at(c, 2);
	checkpoint_at(c, 4);
	edit_and_rehash(c, 1, "forged");
	expect_chain_intact(c->f->st);
	expect_problem(c, c->file, 1, "rewritten at or before entry 2:");
}

static void
test_ckpt_verify_detects_tail_deletion(void **state)
{
	struct ck *c = *state;

	append_n(c->f->st, 5);
	checkpoint_at(c, 2);
	checkpoint_at(c, 5);
	raw_exec(c->f->path, "DELETE FROM audit WHERE seq > 3");
	expect_chain_intact(c->f->st);
	expect_problem(c, c->file, 4, "entries after 3 were deleted");
}

static void
test_ckpt_file_catches_tail_deletion_with_checkpoint_rows(void **state)
{
	struct ck *c = *state;
	struct audit_ckpt_result r;

	append_n(c->f->st, 5);
	checkpoint_at(c, 2);
	checkpoint_at(c, 5);
	raw_exec(c->f->path, "DELETE FROM audit WHERE seq > 3;"
			     "DELETE FROM audit_checkpoints WHERE seq > 3");
	verify(c, NULL, &r); /* what the database alone says */
	assert_true(r.ok);
	expect_problem(c, c->file, 4, "entries after 3 were deleted");
	/* Even when everything was deleted. */
	raw_exec(c->f->path, "DELETE FROM audit; DELETE FROM audit_checkpoints");
	expect_problem(c, c->file, 1, "entries after 0 were deleted");
}

/*
 * The incremental walk: a second call reads only the rows and lines added since the first, so
 * a forged row or line added later is reported, the newest checkpoint's entry is checked on
 * every call, and a file replaced by another one is walked again from its start.
 */
static void
test_ckpt_verify_more_reads_only_what_is_new(void **state)
{
	struct ck *c = *state;
	struct audit_ckpt_walk w;
	struct audit_ckpt_result r;
	struct store *st = c->f->st;

	memset(&w, 0, sizeof(w));
	append_n(st, 6);
	checkpoint_at(c, 2);
	/* Each round adds one checkpoint; the walk's counts grow by what it read. */
	for (int64_t seq = 4; seq <= 6; seq += 2) {
		checkpoint_at(c, seq);
		assert_int_equal(audit_verify_checkpoints_more(st, c->pub, c->file, &w, &r), 0);
		assert_true(r.ok);
		assert_int_equal(r.db_count, seq / 2);
		assert_int_equal(r.file_count, seq / 2);
		assert_int_equal(w.file_pos.line, seq / 2);
		assert_int_equal(r.last.seq, seq);
	}
	/* A forged line after the walk: the next call reads it. */
	{
		FILE *f = fopen(c->file, "a");

		assert_non_null(f);
		fputs("bm90IGEgY2hlY2twb2ludA== seq=7\n", f);
		fclose(f);
	}
	assert_int_equal(audit_verify_checkpoints_more(st, c->pub, c->file, &w, &r), 0);
	assert_false(r.ok);
	assert_non_null(strstr(r.problem, "line 4 of the checkpoint file"));
	/* Deleting the newest entries shows on the next call even with nothing new to read. */
	memset(&w, 0, sizeof(w));
	unlink(c->file);
	assert_int_equal(audit_verify_checkpoints_more(st, c->pub, NULL, &w, &r), 0);
	assert_true(r.ok);
	raw_exec(c->f->path, "DELETE FROM audit WHERE seq > 5");
	assert_int_equal(audit_verify_checkpoints_more(st, c->pub, NULL, &w, &r), 0);
	assert_false(r.ok);
	assert_int_equal(r.first_bad_seq, 6);
	assert_non_null(strstr(r.problem, "entries after 5 were deleted"));
}

static void
test_ckpt_verify_reports_file_trouble(void **state)
{
	struct ck *c = *state;
	struct ed25519_key *other = NULL;
	struct audit_ckpt k = {.seq = 1, .at_ms = 1};
	uint8_t rec[AUDIT_CKPT_LEN];

	append_n(c->f->st, 3);
	checkpoint_at(c, 2);
	checkpoint_at(c, 3);
	/* Only the newest checkpoint row deleted: the file still has it. */
	raw_exec(c->f->path, "DELETE FROM audit_checkpoints WHERE seq = 3");
	expect_problem(c, c->file, 0, "in the checkpoint file but not in the database");
	unlink(c->file);
	expect_problem(c, c->file, 0, "is missing");
	/* Unreadable (here: a directory in its place) is a finding too, not a failed request. */
	assert_int_equal(mkdir(c->file, 0700), 0);
	expect_problem(c, c->file, 0, "cannot be read");
	assert_int_equal(rmdir(c->file), 0);
	/* A line signed by someone else. */
	checkpoint_at(c, 3);
	assert_int_equal(ed25519_key_generate(&other), 0);
	assert_int_equal(audit_ckpt_sign(other, &k, rec), 0);
	ed25519_key_free(other);
	assert_int_equal(audit_ckpt_file_append(c->file, rec), 0);
	expect_problem(c, c->file, 0, "line 2 of the checkpoint file is not a checkpoint");
}

/* ---- when the service makes checkpoints ---- */

static int64_t fake_ms;

static int64_t
fake_clock(void)
{
	return fake_ms;
}

static int64_t
count_rows(struct store *st)
{
	struct audit_ckpt_row last;

	return st->ops->audit_ckpt_last(st, &last) == 0 ? last.id : 0;
}

static int
count_line(void *ctx, long lineno, const uint8_t *rec)
{
	(void)lineno;
	*(int64_t *)ctx += rec != NULL;
	return 0;
}

static int64_t
count_lines(const char *file)
{
	int64_t n = 0;

	return audit_ckpt_file_iter(file, count_line, &n) == 0 ? n : -1;
}

static struct service *
ckpt_service(struct ck *c)
{
	struct service_config cfg = {.command_ttl_s = 3600, .nonce_ttl_s = 300};
	struct audit_ckpt_config ac = {.file = c->file, .every_entries = 3, .every_s = 60};
	struct service *s = NULL;

	assert_int_equal(service_new(c->f->st, c->key, &cfg, fake_clock, &s), 0);
	assert_int_equal(service_set_audit_checkpoints(s, c->key, &ac), 0);
	return s;
}

static void
event(struct service *s, int n)
{
	for (int i = 0; i < n; i++)
		svc_audit_event(s, "tok_admin", "access.denied", "GET /x", "denied", "");
}

static void
test_ckpt_service_schedule(void **state)
{
	struct ck *c = *state;
	struct store *st = c->f->st;
	struct service *s;

	fake_ms = 1700000000000;
	s = ckpt_service(c);
	service_tick(s); /* empty log: nothing to sign */
	assert_int_equal(count_rows(st), 0);
	event(s, 1);
	service_tick(s); /* the first one comes at once */
	assert_int_equal(count_rows(st), 1);
	event(s, 2);
	fake_ms += 59000;
	service_tick(s); /* 2 entries and 59 s: not yet */
	assert_int_equal(count_rows(st), 1);
	event(s, 1);
	service_tick(s); /* the third entry */
	assert_int_equal(count_rows(st), 2);
	fake_ms += 3600 * 1000;
	service_tick(s); /* an hour, but the head did not move */
	assert_int_equal(count_rows(st), 2);
	event(s, 1);
	service_tick(s); /* one entry, and over a minute since the last checkpoint */
	assert_int_equal(count_rows(st), 3);
	event(s, 1);
	fake_ms += 1000;
	service_free(s); /* shutdown signs the final head */
	assert_int_equal(count_rows(st), 4);
	assert_int_equal(count_lines(c->file), 4);
}

/* A verification, waiting for the verifier thread when the service hands it over. */
static int
verify_wait(struct service *s, const struct principal *p, struct audit_report *rep,
	    struct svc_error *err)
{
	int r = svc_audit_verify(s, p, 0, rep, err);

	for (int i = 0; i < 500 && r == -EINPROGRESS; i++) {
		usleep(10000);
		r = svc_audit_verify_result(s, rep, err);
	}
	return r;
}

static void
test_ckpt_service_resume_and_report(void **state)
{
	struct ck *c = *state;
	struct audit_report rep;
	struct principal p = {.role = ROLE_AUDITOR, .id = "tok_audit"};
	struct svc_error err;
	struct service *s;
	uint8_t pub[32];

	fake_ms = 1700000000000;
	s = ckpt_service(c);
	assert_int_equal(svc_audit_key(s, pub), 0);
	assert_memory_equal(pub, c->pub, 32);
	event(s, 5);
	service_free(s);
	assert_int_equal(count_rows(c->f->st), 1);

	/* A new file path (or a crash before the append): the next start writes the newest. */
	unlink(c->file);
	s = ckpt_service(c);
	assert_int_equal(count_lines(c->file), 1);
	assert_int_equal(verify_wait(s, &p, &rep, &err), 0);
	assert_true(rep.ok);
	assert_int_equal(rep.entries, 5);
	assert_int_equal(rep.checkpoints, 1);
	assert_int_equal(rep.file_checkpoints, 1);
	assert_int_equal(rep.last_ckpt_seq, 5);
	assert_int_equal(rep.last_ckpt_ms, 1700000000000);

	raw_exec(c->f->path, "DELETE FROM audit WHERE seq > 2; DELETE FROM audit_checkpoints");
	assert_int_equal(verify_wait(s, &p, &rep, &err), 0);
	assert_false(rep.ok);
	assert_int_equal(rep.first_bad_seq, 3);
	assert_non_null(strstr(rep.problem, "entries after 2 were deleted"));
	service_free(s);
}

/*
 * A full verification runs on the verifier thread: the call hands it over (-EINPROGRESS), and
 * stopping the service's verifications ends a long walk promptly; none starts after that.
 */
static void
test_ckpt_service_full_verify_stops(void **state)
{
	struct ck *c = *state;
	struct principal p = {.role = ROLE_AUDITOR, .id = "tok_audit"};
	struct store *st = c->f->st;
	struct audit_report rep;
	struct svc_error err;
	struct service *s;
	struct timespec t0, t1;
	int r;

	fake_ms = 1700000000000;
	s = ckpt_service(c);
	assert_int_equal(st->ops->tx_begin(st), 0);
	for (int i = 0; i < 200000; i++)
		assert_int_equal(audit_append(st, fake_ms, "tok_admin", "token.create", "tok_x",
					      "ok", "bulk"),
				 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(svc_audit_verify(s, &p, 1, &rep, &err), -EINPROGRESS);
	assert_int_equal(svc_audit_verify_result(s, &rep, &err), -EINPROGRESS);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	svc_verify_stop(s);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	assert_true(t1.tv_sec - t0.tv_sec < 2); /* the walk looks at stop between ranges */
	r = svc_audit_verify_result(s, &rep, &err);
	/* Cut short (503), or done already on a fast machine. */
	assert_true(r == 0 || err.kind == SVC_UNAVAILABLE);
	assert_int_not_equal(svc_audit_verify(s, &p, 1, &rep, &err), -EINPROGRESS);
	assert_int_equal(err.kind, SVC_UNAVAILABLE);
	service_free(s);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, ck_setup, ck_teardown)
	const struct CMUnitTest tests[] = {
		T(test_ckpt_record_layout),
		T(test_ckpt_open_rejects_any_change_and_other_keys),
		T(test_ckpt_auditor_openssl_command),
		T(test_ckpt_file_lines),
		T(test_ckpt_verify_intact),
		T(test_ckpt_verify_detects_edit_with_rehashed_chain),
		T(test_ckpt_verify_detects_edit_before_every_checkpoint),
		T(test_ckpt_verify_detects_tail_deletion),
		T(test_ckpt_file_catches_tail_deletion_with_checkpoint_rows),
		T(test_ckpt_verify_reports_file_trouble),
		T(test_ckpt_verify_more_reads_only_what_is_new),
		T(test_ckpt_service_schedule),
		T(test_ckpt_service_resume_and_report),
		T(test_ckpt_service_full_verify_stops),
	};
#undef T

	log_set_level(LOG_LVL_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Integration tests of signed audit checkpoints (issue 8): the real cleave-server, with a
 * checkpoint every 2 entries, makes entries through the API, is stopped with SIGTERM, and then
 * its database is tampered with through the sqlite3 C API the way an insider with write access
 * would: (a) an entry edited and the whole chain's hashes recomputed, with this file's own
 * implementation of the formula in schema/api.md (which also proves the document right), and
 * (b) the newest entries deleted together with their checkpoint rows. After a restart
 * GET /api/v1/audit/verify must report each; an untampered log must verify, and the checkpoint
 * file must pass the README's openssl check with the key from GET /api/v1/server.
 */
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "le.h"
#include "testlib.h"
#include "util.h"

#define ENTRIES 7 /* the first admin token plus six enrollment tokens */

struct env {
	struct srv s;
	struct client *admin;
	char conf[PATH_MAX + 16];
};

static int
start(struct env *e)
{
	const char *extra[] = {"--config", e->conf, NULL};

	if (srv_start(&e->s, extra) != 0)
		return -1;
	client_free(e->admin);
	e->admin = client_new(&e->s, e->s.admin);
	return e->admin ? 0 : -1;
}

/* A server that signs its audit head every 2 entries (and every 60 s, which never comes). */
static int
env_up(struct env *e, const char *tag)
{
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0)
		return -1;
	/* Beside the data directory, which the server itself creates. */
	snprintf(e->conf, sizeof(e->conf), "%.*s/server.conf", (int)strlen(e->s.dir) - 5, e->s.dir);
	f = fopen(e->conf, "w");
	if (f == NULL)
		return -1;
	fputs("audit_checkpoint_entries = 2\naudit_checkpoint_seconds = 60\n", f);
	fclose(f);
	return start(e);
}

static void
env_down(struct env *e)
{
	client_free(e->admin);
	e->admin = NULL;
	srv_cleanup(&e->s);
}

static json_t *
verify(struct env *e)
{
	struct resp r;
	json_t *j = NULL;

	if (client_req(e->admin, "GET", "/api/v1/audit/verify", NULL, NULL, &r) == 0 &&
	    r.status == 200)
		j = resp_json(&r);
	resp_free(&r);
	return j;
}

static int64_t
jint(json_t *j, const char *k)
{
	return (int64_t)json_integer_value(json_object_get(j, k));
}

static int64_t
last_ckpt_seq(json_t *j)
{
	return jint(json_object_get(j, "last_checkpoint"), "seq");
}

/* Waits (bounded, 10 s) until the newest checkpoint names entry seq. */
static int
wait_ckpt(struct env *e, int64_t seq)
{
	for (int i = 0; i < 100; i++) {
		json_t *j = verify(e);
		int64_t got = j ? last_ckpt_seq(j) : 0;

		json_decref(j);
		if (got == seq)
			return 0;
		usleep(100000);
	}
	printf("    no checkpoint of entry %lld came\n", (long long)seq);
	return -1;
}

/*
 * Makes ENTRIES audit entries, waiting for the tick to sign the head after entries 1, 3, 5 and
 * 7 (so the checkpoints name exactly those), and stops the server cleanly. 0 or -1.
 */
static int
fill_and_stop(struct env *e)
{
	char tok[128];

	if (wait_ckpt(e, 1) != 0)
		return -1;
	for (int seq = 2; seq <= ENTRIES; seq++) {
		if (admin_etoken(e->admin, "pat@example.com", 1, tok, sizeof(tok)) != 0)
			return -1;
		if (seq % 2 == 1 && wait_ckpt(e, seq) != 0)
			return -1;
	}
	return srv_stop(&e->s, SIGTERM) == 0 ? 0 : -1;
}

static sqlite3 *
db_open(struct env *e)
{
	char path[PATH_MAX + 16];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/cleave.db", e->s.dir);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		sqlite3_close(db);
		return NULL;
	}
	return db;
}

/*
 * An entry's hash as schema/api.md defines it: SHA-256(prev_hash ‖ le64 seq ‖ le64 at_ms ‖ for
 * actor, action, target, outcome, detail: le32 length ‖ bytes). Written from the document, not
 * from server/audit/audit.c.
 */
static void
entry_hash(sqlite3_stmt *row, const uint8_t prev[32], uint8_t out[32])
{
	uint8_t buf[48 + 5 * 4 + 5 * 1024];
	size_t n = 0;

	memcpy(buf, prev, 32);
	put64(buf + 32, (uint64_t)sqlite3_column_int64(row, 0));
	put64(buf + 40, (uint64_t)sqlite3_column_int64(row, 1));
	n = 48;
	for (int col = 2; col <= 6; col++) {
		const unsigned char *t = sqlite3_column_text(row, col);
		size_t len = (size_t)sqlite3_column_bytes(row, col);

		if (len > 1024)
			len = 1024; /* the server's fields are shorter; a longer one fails the test */
		put32(buf + n, (uint32_t)len);
		memcpy(buf + n + 4, t ? (const void *)t : "", len);
		n += 4 + len;
	}
	crypto_sha256(buf, n, out);
}

/* Sets entry seq's detail and rewrites prev_hash and hash of every entry, from the first. */
static int
edit_and_rehash(sqlite3 *db, int64_t seq, const char *detail)
{
	sqlite3_stmt *sel = NULL, *upd = NULL;
	uint8_t prev[32] = {0}, h[32];
	char sql[128];
	int rc;

	snprintf(sql, sizeof(sql), "UPDATE audit SET detail = '%s' WHERE seq = %lld", detail,
		 (long long)seq);
	if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db,
			       "SELECT seq, at_ms, actor, action, target, outcome, detail FROM "
			       "audit ORDER BY seq",
			       -1, &sel, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", -1,
			       &upd, NULL) != SQLITE_OK)
		rc = SQLITE_ERROR;
	else
		rc = SQLITE_DONE;
	/* Bounded by the table (a few rows); every entry re-linked to the rewritten one before. */
	while (rc == SQLITE_DONE && sqlite3_step(sel) == SQLITE_ROW) {
		entry_hash(sel, prev, h);
		sqlite3_bind_blob(upd, 1, prev, 32, SQLITE_TRANSIENT);
		sqlite3_bind_blob(upd, 2, h, 32, SQLITE_TRANSIENT);
		sqlite3_bind_int64(upd, 3, sqlite3_column_int64(sel, 0));
		rc = sqlite3_step(upd);
		sqlite3_reset(upd);
		memcpy(prev, h, 32);
	}
	sqlite3_finalize(sel);
	sqlite3_finalize(upd);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The hash column of entry seq, to show the rehash reproduced the server's own. */
static int
stored_hash(sqlite3 *db, int64_t seq, uint8_t out[32])
{
	sqlite3_stmt *q = NULL;
	int r = -1;

	if (sqlite3_prepare_v2(db, "SELECT hash FROM audit WHERE seq = ?", -1, &q, NULL) ==
	    SQLITE_OK) {
		sqlite3_bind_int64(q, 1, seq);
		if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_bytes(q, 0) == 32) {
			memcpy(out, sqlite3_column_blob(q, 0), 32);
			r = 0;
		}
	}
	sqlite3_finalize(q);
	return r;
}

static void
test_untampered_log_verifies(void)
{
	struct env e;
	char cmd[PATH_MAX * 2 + 512], path[PATH_MAX + 32];
	struct resp r;
	struct stat sb;
	json_t *j;
	FILE *f;

	CHECK(env_up(&e, "ckpt-ok") == 0, "server did not start");
	CHECK(fill_and_stop(&e) == 0, "fill");
	CHECK(start(&e) == 0, "restart");
	j = verify(&e);
	CHECK(j && json_is_true(json_object_get(j, "ok")), "untampered log must verify: %s",
	      j ? json_string_value(json_object_get(j, "problem")) : "no answer");
	CHECK(jint(j, "entries") == ENTRIES && last_ckpt_seq(j) == ENTRIES &&
		      jint(j, "checkpoints") == 4 && jint(j, "checkpoint_file_lines") == 4,
	      "entries %lld, checkpoints %lld, file lines %lld, last %lld",
	      (long long)jint(j, "entries"), (long long)jint(j, "checkpoints"),
	      (long long)jint(j, "checkpoint_file_lines"), (long long)last_ckpt_seq(j));
	json_decref(j);

	/* The key lives in its own 0600 file, never in the database. */
	snprintf(path, sizeof(path), "%s/keys/audit.key", e.s.dir);
	CHECK(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0600, "audit.key must be 0600");

	/* The README's auditor check, with the key the API gives. */
	CHECK(client_req(e.admin, "GET", "/api/v1/server", NULL, NULL, &r) == 0, "tx");
	j = resp_json(&r);
	resp_free(&r);
	CHECK(j && json_string_value(json_object_get(j, "audit_key_pem")), "audit_key_pem");
	snprintf(path, sizeof(path), "%s/audit.pem", e.s.dir);
	f = fopen(path, "w");
	CHECK(f != NULL, "audit.pem");
	fputs(json_string_value(json_object_get(j, "audit_key_pem")), f);
	fclose(f);
	json_decref(j);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && tail -n 1 audit-checkpoints.log | cut -d' ' -f1 | base64 -d > "
		 "ckpt.bin && head -c 96 ckpt.bin > body.bin && tail -c 64 ckpt.bin > sig.bin && "
		 "openssl pkeyutl -verify -pubin -inkey audit.pem -rawin -in body.bin -sigfile "
		 "sig.bin | grep -qx 'Signature Verified Successfully'",
		 e.s.dir);
	CHECK(system(cmd) == 0, "openssl must verify the last checkpoint line");
	env_down(&e);
}

static void
test_edit_and_rehash_reported(void)
{
	struct env e;
	uint8_t before[32], after[32];
	sqlite3 *db;
	json_t *j;
	int rc;

	CHECK(env_up(&e, "ckpt-rehash") == 0, "server did not start");
	CHECK(fill_and_stop(&e) == 0, "fill");
	db = db_open(&e);
	CHECK(db != NULL, "open the database");
	/* Rehashing the untouched chain first must reproduce the server's hashes exactly. */
	rc = stored_hash(db, ENTRIES, before) == 0 && edit_and_rehash(db, 0, "") == 0 &&
	     stored_hash(db, ENTRIES, after) == 0;
	rc = rc && memcmp(before, after, 32) == 0;
	rc = rc && edit_and_rehash(db, 3, "owner=mallory@example.com uses=1") == 0;
	sqlite3_close(db);
	CHECK(rc, "the documented formula must give the server's hashes, and the edit must land");

	CHECK(start(&e) == 0, "restart");
	j = verify(&e);
	CHECK(j && json_is_false(json_object_get(j, "ok")), "a rehashed chain must not verify");
	/* Checkpoints name entries 1, 3, 5, 7: the first still matches, the second does not. */
	CHECK(strstr(json_string_value(json_object_get(j, "problem")),
		     "rewritten at or before entry 3 and after entry 1") &&
		      jint(j, "first_bad_seq") == 2,
	      "want a rewrite in entries 2..3, got %lld: %s", (long long)jint(j, "first_bad_seq"),
	      json_string_value(json_object_get(j, "problem")));
	json_decref(j);
	env_down(&e);
}

static void
test_tail_deletion_reported(void)
{
	struct env e;
	sqlite3 *db;
	json_t *j;
	int rc;

	CHECK(env_up(&e, "ckpt-truncate") == 0, "server did not start");
	CHECK(fill_and_stop(&e) == 0, "fill");
	db = db_open(&e);
	CHECK(db != NULL, "open the database");
	rc = sqlite3_exec(db,
			  "DELETE FROM audit WHERE seq > 4; "
			  "DELETE FROM audit_checkpoints WHERE seq > 4",
			  NULL, NULL, NULL);
	sqlite3_close(db);
	CHECK(rc == SQLITE_OK, "delete the newest rows");

	CHECK(start(&e) == 0, "restart");
	j = verify(&e);
	CHECK(j && json_is_false(json_object_get(j, "ok")), "a truncated log must not verify");
	CHECK(jint(j, "entries") == 4 && jint(j, "first_bad_seq") == 5 &&
		      strstr(json_string_value(json_object_get(j, "problem")),
			     "entries after 4 were deleted"),
	      "want a truncation after 4, got %lld: %s", (long long)jint(j, "first_bad_seq"),
	      json_string_value(json_object_get(j, "problem")));
	json_decref(j);
	env_down(&e);
}

/* A line of the server's log containing what; 1 when found. */
static int
log_has(const struct srv *s, const char *what)
{
	char line[1024];
	FILE *f = fopen(s->log, "r");
	int found = 0;

	for (int i = 0; f != NULL && !found && i < 10000 && fgets(line, sizeof(line), f); i++)
		found = strstr(line, what) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
}

/*
 * Another audit key under a database with checkpoints: the server refuses to start, naming the
 * newest checkpoint, also when the database's record of the keys is missing (a database from
 * before migration 0013) or names the new key; --accept-new-keys lets it start.
 */
static void
test_other_audit_key_refused(void)
{
	struct env e;
	char path[PATH_MAX + 32];
	const char *accept[] = {"--config", e.conf, "--accept-new-keys", NULL};
	int refused, after_record, accepted;

	CHECK(env_up(&e, "ckpt-key") == 0, "server did not start");
	CHECK(fill_and_stop(&e) == 0, "fill");
	snprintf(path, sizeof(path), "%s/keys/audit.key", e.s.dir);
	CHECK(unlink(path) == 0, "remove audit.key"); /* the next start makes another */
	refused = start(&e) != 0 && log_has(&e.s, "audit checkpoint key (audit.key");
	/* Without the record, the checkpoint alone still says whose key it was. */
	CHECK(srv_db_exec(&e.s, "DELETE FROM deployment_keys") == 0, "forget the record");
	CHECK(truncate(e.s.log, 0) == 0, "empty the log"); /* only this start's lines count */
	after_record = start(&e) != 0 && log_has(&e.s, "the newest audit checkpoint (entry 7)");
	accepted = srv_start(&e.s, accept) == 0;
	env_down(&e);
	CHECK(refused, "a server with another audit key started");
	CHECK(after_record, "without the keys record, another audit key started");
	CHECK(accepted, "--accept-new-keys did not let the server start");
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"untampered_log_verifies", test_untampered_log_verifies},
		{"edit_and_rehash_reported", test_edit_and_rehash_reported},
		{"tail_deletion_reported", test_tail_deletion_reported},
		{"other_audit_key_refused", test_other_audit_key_refused},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

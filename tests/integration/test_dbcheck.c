/*
 * A damaged database must stop cleave-server at start, with a message that names the file and
 * what SQLite found, instead of serving garbage. Each case makes a real database with a first
 * run of the server, stops it, damages the file as a bad disk or a stray write would, and runs
 * the real binary on it again: it must exit non-zero within a bound, and say why on stderr.
 */
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "testlib.h"
#include "util.h"

/* A first run that leaves a valid database with a few dozen rows in several tables. */
static int
first_run(struct srv *s, const char *tag)
{
	struct client *admin;
	char tok[128];
	int r = 0;

	if (srv_init(s, tag) != 0 || srv_start(s, NULL) != 0)
		return -1;
	admin = client_new(s, s->admin);
	for (int i = 0; i < 40 && r == 0; i++)
		r = admin_etoken(admin, "dana@example.com", 1, tok, sizeof(tok));
	client_free(admin);
	/* A clean stop checkpoints the WAL into the main file, which is what gets damaged. */
	return r == 0 && srv_stop(s, SIGTERM) == 0 ? 0 : -1;
}

/*
 * Runs cleave-server on s->dir expecting it to refuse: its exit status (or -1 when it was
 * still running after 15 s, then killed), its output in *out (caller frees).
 */
static int
run_expect_exit(struct srv *s, char **out)
{
	char bin[PATH_MAX], logp[PATH_MAX + 16];
	const char *dir = getenv("CLEAVE_BIN");
	pid_t pid;
	int st;

	snprintf(bin, sizeof(bin), "%s/cleave-server", dir && *dir ? dir : "build/bin");
	snprintf(logp, sizeof(logp), "%s.refused", s->log);
	unlink(logp);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(bin, bin, "--data", s->dir, "--listen", "127.0.0.1:0", (char *)NULL);
		_exit(127);
	}
	t_track_child(pid, 1);
	for (int i = 0; i < 1500; i++) { /* 15 s */
		if (waitpid(pid, &st, WNOHANG) == pid) {
			t_track_child(pid, 0);
			*out = file_read_all(logp, 1 << 20, NULL);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	*out = file_read_all(logp, 1 << 20, NULL);
	return -1; /* t_run kills and reaps it */
}

static int
overwrite(const char *path, long off, size_t n, unsigned seed)
{
	unsigned char buf[8192];
	int fd = open(path, O_WRONLY);
	ssize_t w;

	if (fd < 0 || n > sizeof(buf))
		return -1;
	srand(seed);
	for (size_t i = 0; i < n; i++)
		buf[i] = (unsigned char)rand();
	w = pwrite(fd, buf, n, off);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

static void
test_garbage_header_refused(void)
{
	struct srv s;
	char db[PATH_MAX + 16], *log = NULL;
	int rc;

	CHECK(first_run(&s, "dbcheck-header") == 0, "first run failed");
	snprintf(db, sizeof(db), "%s/cleave.db", s.dir);
	CHECK(overwrite(db, 0, 100, 1) == 0, "cannot damage %s", db);
	rc = run_expect_exit(&s, &log);
	CHECK(rc > 0, "server on a file that is no database: exit %d, want refusal", rc);
	CHECK(log != NULL && strstr(log, db) != NULL, "message does not name %s: %s", db,
	      log ? log : "");
	CHECK(strstr(log, "file is not a database") != NULL, "no SQLite error text: %s", log);
	free(log);
	srv_cleanup(&s);
}

/* The page number of a b-tree leaf page of an ordinary table (not page 1), or -1. */
static long
table_leaf_page(const char *db, long *page_size)
{
	sqlite3 *h;
	sqlite3_stmt *q;
	long pg = -1;

	if (sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
		return -1;
	if (sqlite3_prepare_v2(
		    h,
		    "SELECT pageno, (SELECT page_size FROM pragma_page_size) FROM dbstat "
		    "WHERE name = 'enrollment_tokens' AND pagetype = 'leaf' AND "
		    "pageno > 1 ORDER BY pageno LIMIT 1",
		    -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW) {
			pg = sqlite3_column_int64(q, 0);
			*page_size = sqlite3_column_int64(q, 1);
		}
		sqlite3_finalize(q);
	} else {
		printf("    dbstat: %s\n", sqlite3_errmsg(h));
	}
	sqlite3_close(h);
	return pg;
}

static void
test_damaged_table_refused(void)
{
	struct srv s;
	char db[PATH_MAX + 16], *log = NULL;
	long pg, psz = 0;
	int rc;

	CHECK(first_run(&s, "dbcheck-table") == 0, "first run failed");
	snprintf(db, sizeof(db), "%s/cleave.db", s.dir);
	pg = table_leaf_page(db, &psz);
	CHECK(pg > 1 && psz >= 512, "no leaf page of enrollment_tokens found (%ld)", pg);
	/* Keep the first bytes (page type) so the damage is inside the page, not its header. */
	CHECK(overwrite(db, (pg - 1) * psz + 16, (size_t)psz - 32, 2) == 0, "cannot damage page");
	rc = run_expect_exit(&s, &log);
	CHECK(rc > 0, "server on a damaged table: exit %d, want refusal; said: %s", rc,
	      log ? log : "");
	CHECK(log != NULL && strstr(log, db) != NULL, "message does not name %s: %s", db,
	      log ? log : "");
	CHECK(strstr(log, "quick_check") != NULL && strstr(log, "page") != NULL,
	      "no quick_check report: %s", log);
	free(log);
	srv_cleanup(&s);
}

static void
test_healthy_db_starts(void)
{
	struct srv s;
	struct client *admin;
	struct resp r;

	CHECK(first_run(&s, "dbcheck-ok") == 0, "first run failed");
	CHECK(srv_start(&s, NULL) == 0, "server did not start again on its own healthy database");
	admin = client_new(&s, s.admin);
	CHECK(client_req(admin, "GET", "/api/v1/enrollment-tokens?limit=100", NULL, NULL, &r) == 0,
	      "tx");
	client_free(admin);
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "dana@example.com") != NULL, "tokens lost: %.200s", r.body);
	resp_free(&r);
	CHECK(srv_stop(&s, SIGTERM) == 0, "unclean stop");
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"garbage_header_refused", test_garbage_header_refused},
		{"damaged_table_refused", test_damaged_table_refused},
		{"healthy_db_starts", test_healthy_db_starts},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

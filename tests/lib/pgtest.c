/*
 * The private PostgreSQL cluster of the tests (pgtest.h). Commands run with fork/exec (never a
 * shell), their output into DIR/log, so a failure to start can be read there and is echoed.
 */
#include "pgtest.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libpq-fe.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PG_DEFAULT_BIN "/usr/lib/postgresql/15/bin"
#define PG_ARGV_MAX    24

static void
pg_bin(char *out, size_t cap)
{
	const char *env = getenv("CLEAVE_PG_BIN");

	snprintf(out, cap, "%s", env != NULL && env[0] != '\0' ? env : PG_DEFAULT_BIN);
}

const char *
pgtest_skip_reason(void)
{
	char bin[256], p[300];

	pg_bin(bin, sizeof(bin));
	snprintf(p, sizeof(p), "%s/pg_ctl", bin);
	if (access(p, X_OK) != 0)
		return "PostgreSQL is not installed (no pg_ctl in CLEAVE_PG_BIN or "
		       "/usr/lib/postgresql/15/bin; scripts/deps.sh installs it)";
	snprintf(p, sizeof(p), "%s/initdb", bin);
	if (access(p, X_OK) != 0)
		return "PostgreSQL's initdb is missing";
	if (geteuid() == 0 && getpwnam("postgres") == NULL)
		return "running as root and there is no user 'postgres' to run PostgreSQL as";
	if (geteuid() == 0 && access("/usr/sbin/runuser", X_OK) != 0 &&
	    access("/sbin/runuser", X_OK) != 0)
		return "running as root and runuser is missing";
	return NULL;
}

/* Runs bin/tool with args (NULL-terminated) as the cluster's user; 0 when it exits 0. */
static int
run_tool(const struct pgtest *p, const char *tool, const char *const *args)
{
	const char *argv[PG_ARGV_MAX];
	char exe[320], log[96];
	int n = 0, status = 0;
	pid_t pid;

	snprintf(exe, sizeof(exe), "%s/%s", p->bin, tool);
	if (p->as_postgres) {
		argv[n++] = "runuser";
		argv[n++] = "-u";
		argv[n++] = "postgres";
		argv[n++] = "--";
	}
	argv[n++] = exe;
	for (int i = 0; args[i] != NULL && n < PG_ARGV_MAX - 1; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	snprintf(log, sizeof(log), "%s/tool.log", p->dir);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/*
		 * The tools run from the cluster's directory: the checkout may be where the
		 * cluster's user cannot go (a 0700 /root), and initdb and pg_ctl look at the
		 * working directory.
		 */
		if (chdir(p->dir) != 0)
			_exit(126);
		if (p->as_postgres)
			execvp("runuser", (char *const *)argv);
		else
			execv(exe, (char *const *)argv);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void
dump_log(const struct pgtest *p, const char *name)
{
	char path[128], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", p->dir, name);
	f = fopen(path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		fprintf(stderr, "pgtest: %s", line);
	fclose(f);
}

/* pg_ctl start on the initialized data directory, with the options every start uses. */
static int
start_cluster(struct pgtest *p)
{
	char data[96], opts[160], log[96];
	const char *fsync = getenv("CLEAVE_PG_FSYNC");

	snprintf(data, sizeof(data), "%s/data", p->dir);
	snprintf(log, sizeof(log), "%s/server.log", p->dir);
	/*
	 * fsync off: a test cluster is thrown away; durability is not what is tested here. A
	 * benchmark comparing it with SQLite's synced commits sets CLEAVE_PG_FSYNC=on.
	 */
	snprintf(opts, sizeof(opts),
		 "-k %s -c listen_addresses='' -c fsync=%s -c max_connections=200", p->dir,
		 fsync != NULL && strcmp(fsync, "on") == 0 ? "on" : "off");
	return run_tool(p, "pg_ctl",
			(const char *const[]){"-D", data, "-o", opts, "-l", log, "-w", "-t", "60",
					      "start", NULL});
}

int
pgtest_start(struct pgtest *p)
{
	char data[96];
	struct passwd *pw = NULL;

	memset(p, 0, sizeof(*p));
	pg_bin(p->bin, sizeof(p->bin));
	p->as_postgres = geteuid() == 0;
	snprintf(p->dir, sizeof(p->dir), "/tmp/cleave-pg-XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	if (p->as_postgres) {
		pw = getpwnam("postgres");
		if (pw == NULL || chown(p->dir, pw->pw_uid, pw->pw_gid) != 0) {
			rmdir(p->dir);
			return -1;
		}
	}
	snprintf(data, sizeof(data), "%s/data", p->dir);
	if (run_tool(p, "initdb",
		     (const char *const[]){"-D", data, "-U", "cleave", "-A", "trust", "-E", "UTF8",
					   "--locale=C", "--no-sync", NULL}) != 0 ||
	    start_cluster(p) != 0) {
		fprintf(stderr, "pgtest: cannot start PostgreSQL in %s\n", p->dir);
		dump_log(p, "tool.log");
		dump_log(p, "server.log");
		nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		p->dir[0] = '\0';
		return -1;
	}
	p->running = 1;
	return 0;
}

int
pgtest_restart(struct pgtest *p)
{
	char data[96];

	if (!p->running)
		return -1;
	snprintf(data, sizeof(data), "%s/data", p->dir);
	if (run_tool(p, "pg_ctl",
		     (const char *const[]){"-D", data, "-m", "fast", "-w", "-t", "60", "restart",
					   NULL}) != 0) {
		dump_log(p, "tool.log");
		return -1;
	}
	return 0;
}

int
pgtest_bounce(struct pgtest *p, const char *mode, int down_ms)
{
	char data[96];
	struct timespec ts = {down_ms / 1000, (long)(down_ms % 1000) * 1000000L};

	if (!p->running)
		return -1;
	snprintf(data, sizeof(data), "%s/data", p->dir);
	if (run_tool(p, "pg_ctl",
		     (const char *const[]){"-D", data, "-m", mode, "-w", "-t", "60", "stop",
					   NULL}) != 0) {
		dump_log(p, "tool.log");
		return -1;
	}
	nanosleep(&ts, NULL);
	if (start_cluster(p) != 0) {
		dump_log(p, "tool.log");
		dump_log(p, "server.log");
		p->running = 0;
		return -1;
	}
	return 0;
}

void
pgtest_stop(struct pgtest *p)
{
	char data[96];

	if (p->dir[0] == '\0')
		return;
	if (p->running) {
		snprintf(data, sizeof(data), "%s/data", p->dir);
		run_tool(p, "pg_ctl",
			 (const char *const[]){"-D", data, "-m", "immediate", "-w", "stop", NULL});
		p->running = 0;
	}
	nftw(p->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	p->dir[0] = '\0';
}

int
pgtest_exec(const char *url, const char *sql)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r;
	int ok;

	if (PQstatus(db) != CONNECTION_OK) {
		fprintf(stderr, "pgtest: connect: %s", PQerrorMessage(db));
		PQfinish(db);
		return -1;
	}
	r = PQexec(db, sql);
	ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
	if (!ok)
		fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(db));
	PQclear(r);
	PQfinish(db);
	return ok ? 0 : -1;
}

long long
pgtest_int(const char *url, const char *sql)
{
	PGconn *db = PQconnectdb(url);
	PGresult *r;
	long long v = -1;

	if (PQstatus(db) == CONNECTION_OK) {
		r = PQexec(db, sql);
		if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		else
			fprintf(stderr, "pgtest: %s: %s", sql, PQerrorMessage(db));
		PQclear(r);
	}
	PQfinish(db);
	return v;
}

int
pgtest_create_db(struct pgtest *p, const char *name, char *url, size_t cap)
{
	char admin[160], sql[160];

	for (const char *c = name; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '_'))
			return -1;
	snprintf(admin, sizeof(admin), "postgresql:///postgres?host=%s&user=cleave", p->dir);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", name);
	if (pgtest_exec(admin, sql) != 0)
		return -1;
	if ((size_t)snprintf(url, cap, "postgresql:///%s?host=%s&user=cleave", name, p->dir) >= cap)
		return -1;
	return 0;
}

/* Running the browser scripts of tests/browser/ from a C test: see browser.h. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "browser.h"
#include "util.h"

static char repo[PATH_MAX];
static char why[300];
static int probed;

static void
probe(void)
{
	const char *bin = getenv("CLEAVE_BIN");
	char p[PATH_MAX + 64];

	if (probed)
		return;
	probed = 1;
	/* CLEAVE_BIN is <repo>/<build>/bin; without it the tests run from the repository root. */
	snprintf(p, sizeof(p), "%s/../..", bin && *bin ? bin : ".");
	if (realpath(bin && *bin ? p : ".", repo) == NULL) {
		snprintf(why, sizeof(why), "cannot find the repository root");
		return;
	}
	if (access("/usr/bin/chromium", X_OK) != 0) {
		snprintf(why, sizeof(why),
			 "/usr/bin/chromium is missing (scripts/deps.sh installs chromium)");
		return;
	}
	if (system("node --version >/dev/null 2>&1") != 0) {
		snprintf(why, sizeof(why), "node is not installed (scripts/deps.sh installs it)");
		return;
	}
	snprintf(p, sizeof(p), "%s/tests/browser/node_modules/playwright-core/package.json", repo);
	if (access(p, R_OK) != 0)
		snprintf(why, sizeof(why),
			 "npm package missing: %s (scripts/deps.sh runs npm ci there)", p);
}

const char *
browser_skip_reason(void)
{
	probe();
	return why[0] != '\0' ? why : NULL;
}

const char *
browser_repo(void)
{
	probe();
	return repo;
}

int
browser_outdir(const char *name, char *out, size_t cap)
{
	char base[PATH_MAX];

	snprintf(base, sizeof(base), "%s/screenshots",
		 getenv("CLEAVE_TEST_OUT") ? getenv("CLEAVE_TEST_OUT") : "/tmp");
	if (mkdir(base, 0755) != 0 && errno != EEXIST)
		return -1;
	snprintf(out, cap, "%s/%s", base, name);
	return mkdir(out, 0755) == 0 || errno == EEXIST ? 0 : -1;
}

int
browser_admin(struct client *admin, const char *email, const char *role, const char *password)
{
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "email", email, "display_name", email, "role",
			      role, "password", password);
	char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
	struct resp r;
	int ok = -1;

	if (body != NULL && client_req(admin, "POST", "/api/v1/admins", body, NULL, &r) == 0) {
		ok = r.status == 201 ? 0 : -1;
		resp_free(&r);
	}
	free(body);
	json_decref(j);
	return ok;
}

static void
show_log(const char *outdir)
{
	char path[PATH_MAX + 16], line[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/browser.log", outdir);
	f = fopen(path, "r");
	for (int i = 0; f != NULL && i < 300 && fgets(line, sizeof(line), f) != NULL; i++)
		printf("    | %s", line);
	if (f != NULL)
		fclose(f);
}

int
browser_run(const char *script, const char *outdir, int seconds, const char *const *args)
{
	char path[PATH_MAX + 32], log[PATH_MAX + 16];
	const char *argv[32];
	int st = 0, n = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/tests/browser/%s", browser_repo(), script);
	snprintf(log, sizeof(log), "%s/browser.log", outdir);
	argv[n++] = "node";
	argv[n++] = path;
	for (int i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid = fork();
	if (pid == 0) {
		FILE *f = fopen(log, "w");

		if (f != NULL) {
			dup2(fileno(f), STDOUT_FILENO);
			dup2(fileno(f), STDERR_FILENO);
		}
		setpgid(0, 0); /* the browser's processes go with node if it must be killed */
		execvp("node", (char *const *)argv);
		_exit(127);
	}
	if (pid < 0)
		return -1;
	t_track_child(pid, 1);
	for (double end = now_s() + seconds; now_s() < end;) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			t_track_child(pid, 0);
			st = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
			if (st != 0)
				show_log(outdir);
			return st;
		}
		usleep(100 * 1000);
	}
	kill(-pid, SIGKILL);
	waitpid(pid, &st, 0);
	t_track_child(pid, 0);
	printf("    the browser test timed out after %d s\n", seconds);
	show_log(outdir);
	return -1;
}

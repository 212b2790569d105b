/*
 * The end-to-end rig: see e2e.h. Processes are tracked with t_track_child so a failing case
 * never leaves one running; every wait is bounded.
 */
#include "e2e.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "util.h"

int64_t
e2e_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
agent_bin(char *out, size_t cap)
{
	const char *bin = getenv("CLEAVE_BIN");

	snprintf(out, cap, "%s/cleave-agent", bin && *bin ? bin : "build/bin");
	return out;
}

int
e2e_server_start(struct e2e *e)
{
	const char *extra[] = {"--listen", e->listen, "--config", e->conf, NULL};

	if (srv_start(&e->s, extra) != 0)
		return -1;
	if (e->admin == NULL)
		e->admin = client_new(&e->s, e->s.admin);
	return e->admin != NULL ? 0 : -1;
}

int
e2e_server_stop(struct e2e *e, int sig)
{
	return srv_stop(&e->s, sig);
}

/* The rig's paths beside the data directory of e->s (srv_init made it): conf, agent. */
static int
e2e_paths(struct e2e *e, const char *conf_lines)
{
	char *slash;

	str_copy(e->conf, sizeof(e->conf), e->s.log);
	slash = strrchr(e->conf, '/');
	if (slash == NULL)
		return -1;
	snprintf(slash, sizeof(e->conf) - (size_t)(slash - e->conf), "/server.conf");
	if (file_write_atomic(e->conf, conf_lines ? conf_lines : "",
			      conf_lines ? strlen(conf_lines) : 0, 0600) != 0)
		return -1;
	str_copy(e->agent_dir, sizeof(e->agent_dir), e->conf);
	slash = strrchr(e->agent_dir, '/');
	snprintf(slash, sizeof(e->agent_dir) - (size_t)(slash - e->agent_dir), "/agent");
	str_copy(e->agent_log, sizeof(e->agent_log), e->agent_dir);
	strncat(e->agent_log, ".log", sizeof(e->agent_log) - strlen(e->agent_log) - 1);
	return 0;
}

int
e2e_up(struct e2e *e, const char *tag, const char *conf_lines)
{
	return e2e_up_hv(e, tag, conf_lines, NULL);
}

int
e2e_up_hv(struct e2e *e, const char *tag, const char *conf_lines, const char *const *hv_args)
{
	unsigned port = t_free_port();

	memset(e, 0, sizeof(*e));
	if (port == 0 || srv_init(&e->s, tag) != 0)
		return -1;
	snprintf(e->listen, sizeof(e->listen), "127.0.0.1:%u", port);
	if (e2e_paths(e, conf_lines) != 0 || e2e_server_start(e) != 0 || hvp_prepare(&e->hv) != 0)
		return -1;
	for (int i = 0; hv_args != NULL && i < 7 && hv_args[i] != NULL; i++)
		e->hv.extra[i] = hv_args[i];
	return hvp_start(&e->hv);
}

int
e2e_up_server(struct e2e *e, const char *tag, const char *conf_lines, const char *hv_sock)
{
	unsigned port = t_free_port();

	memset(e, 0, sizeof(*e));
	if (port == 0 || srv_init(&e->s, tag) != 0 ||
	    str_copy(e->hv.sock, sizeof(e->hv.sock), hv_sock) != 0)
		return -1;
	snprintf(e->listen, sizeof(e->listen), "127.0.0.1:%u", port);
	return e2e_paths(e, conf_lines) == 0 && e2e_server_start(e) == 0 ? 0 : -1;
}

int
e2e_attach(struct e2e *e, const char *tag, const struct srv *front, const char *admin_token)
{
	memset(e, 0, sizeof(*e));
	if (srv_init(&e->s, tag) != 0 || e2e_paths(e, NULL) != 0)
		return -1;
	/* e->s never runs: it only names where the agent goes and the folder to remove. */
	str_copy(e->s.url, sizeof(e->s.url), front->url);
	str_copy(e->s.cacert, sizeof(e->s.cacert), front->cacert);
	str_copy(e->s.admin, sizeof(e->s.admin), admin_token);
	e->admin = client_new(&e->s, admin_token);
	if (e->admin == NULL)
		return -1;
	return hvp_init(&e->hv);
}

void
e2e_down(struct e2e *e)
{
	char cmd[PATH_MAX * 2], hvlog[PATH_MAX + 16];

	/* each stops as its supervisor would stop it; an unclean exit fails the case */
	if (e->agent_pid > 0) {
		int rc = e2e_agent_stop(e, SIGTERM);

		if (rc != 0)
			t_fail(__FILE__, __LINE__,
			       "cleave-agent did not stop cleanly on SIGTERM: %d (see %s)", rc,
			       e->agent_log);
	}
	snprintf(hvlog, sizeof(hvlog), "%s.log", e->hv.dir);
	t_stop_graceful(&e->hv.pid, "cleave-hv", hvlog);
	if (e->hv.dir[0] != '\0') /* e2e_up_server: cleave-hv is not ours */
		hvp_cleanup(&e->hv);
	client_free(e->admin);
	e->admin = NULL;
	srv_cleanup(&e->s);
	if (!t_failed_now) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", e->agent_dir, e->agent_log);
		(void)!system(cmd);
	}
}

int
e2e_policy(struct e2e *e, const char *body)
{
	struct resp r;
	int ok;

	if (client_req(e->admin, "PUT", "/api/v1/policies/standard", body, NULL, &r) != 0)
		return -1;
	ok = r.status == 200 || r.status == 201;
	if (!ok)
		printf("    policy: HTTP %ld %s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	return ok ? 0 : -1;
}

int
e2e_agent_cmd(struct e2e *e, const char *args, char *out, size_t cap)
{
	char exe[PATH_MAX], cmd[PATH_MAX * 4];
	FILE *f;
	size_t n = 0;
	int st;

	snprintf(cmd, sizeof(cmd), "timeout 60 %s --state '%s' %s 2>&1",
		 agent_bin(exe, sizeof(exe)), e->agent_dir, args);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	if (out != NULL && cap > 0) {
		n = fread(out, 1, cap - 1, f);
		out[n] = '\0';
	} else {
		char sink[4096];

		while (fread(sink, 1, sizeof(sink), f) > 0)
			;
	}
	st = pclose(f);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int
e2e_enroll(struct e2e *e, const char *owner)
{
	char token[256], args[PATH_MAX * 3], out[4096];
	int rc;

	if (admin_etoken(e->admin, owner, 1, token, sizeof(token)) != 0)
		return -1;
	snprintf(args, sizeof(args),
		 "enroll --server %s --token %s --ca-cert '%s' --hv-socket '%s'", e->s.url, token,
		 e->s.cacert, e->hv.sock);
	rc = e2e_agent_cmd(e, args, out, sizeof(out));
	if (rc != 0) {
		printf("    enroll exited %d: %s\n", rc, out);
		return -1;
	}
	return e2e_enroll_id(e);
}

int
e2e_enroll_id(struct e2e *e)
{
	char path[PATH_MAX + 32], *id;
	size_t n = 0;

	/* the agent's identity file: "key value" lines (agent/keystore.c) */
	snprintf(path, sizeof(path), "%s/identity", e->agent_dir);
	id = file_read_all(path, 8192, &n);
	if (id == NULL)
		return -1;
	{
		char *p = strstr(id, "\ndevice_id ");

		if (p != NULL && sscanf(p + 11, "%63s", e->device_id) != 1)
			e->device_id[0] = '\0';
	}
	free(id);
	return e->device_id[0] ? 0 : -1;
}

/* How many times text occurs in the agent's log. */
static int
agent_log_count(struct e2e *e, const char *text)
{
	size_t n = 0, tl = strlen(text);
	char *log = file_read_all(e->agent_log, 16 << 20, &n);
	const char *p = log, *end = log + n;
	int count = 0;

	while (p != NULL && p < end && (p = memmem(p, (size_t)(end - p), text, tl)) != NULL) {
		count++;
		p += tl;
	}
	free(log);
	return count;
}

/* The line `run` logs once its signal handlers are in place and its loop starts. */
#define AGENT_STARTED "info  cleave-agent "

int
e2e_agent_start(struct e2e *e, const char *env)
{
	char exe[PATH_MAX];

	e->agent_starts = agent_log_count(e, AGENT_STARTED);
	agent_bin(exe, sizeof(exe));
	e->agent_pid = fork();
	if (e->agent_pid < 0)
		return -1;
	if (e->agent_pid == 0) {
		int fd = open(e->agent_log, O_WRONLY | O_CREAT | O_APPEND, 0644);

		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		if (env != NULL)
			putenv((char *)env);
		execl(exe, exe, "--state", e->agent_dir, "--log-level", "debug", "run",
		      (char *)NULL);
		_exit(127);
	}
	t_track_child(e->agent_pid, 1);
	return 0;
}

int
e2e_agent_stop(struct e2e *e, int sig)
{
	int rc;

	/* 10 s bound; an agent that exits before (a fault point, a retire) is reaped below */
	for (int i = 0; sig != SIGKILL && e->agent_pid > 0 && i < 1000; i++) {
		siginfo_t si = {0};

		if (agent_log_count(e, AGENT_STARTED) > e->agent_starts ||
		    waitid(P_PID, (id_t)e->agent_pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
		    si.si_pid != 0)
			break;
		usleep(10000);
	}
	rc = t_stop_child(e->agent_pid, sig, 10000);

	e->agent_pid = 0;
	return rc;
}

int
e2e_agent_logged(struct e2e *e, const char *text)
{
	return agent_log_count(e, text) > 0;
}

long
e2e_command(struct e2e *e, const char *type, char *id, size_t cap)
{
	return admin_command(e->admin, e->device_id, type, id, cap);
}

json_t *
e2e_get(struct e2e *e, const char *path)
{
	struct resp r;
	json_t *j = NULL;

	if (client_req(e->admin, "GET", path, NULL, NULL, &r) == 0 && r.status == 200)
		j = resp_json(&r);
	resp_free(&r);
	return j;
}

const char *
e2e_str(json_t *j, const char *key)
{
	const char *v = json_string_value(json_object_get(j, key));

	return v ? v : "";
}

json_t *
e2e_wait_command(struct e2e *e, const char *id, int timeout_ms)
{
	char path[160];
	int64_t end = e2e_now_ms() + timeout_ms;

	snprintf(path, sizeof(path), "/api/v1/commands/%s", id);
	do {
		json_t *j = e2e_get(e, path);
		const char *st = e2e_str(j, "status");

		if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "expired") == 0 || strcmp(st, "canceled") == 0)
			return j;
		json_decref(j);
		usleep(20000);
	} while (e2e_now_ms() < end);
	return NULL;
}

int
e2e_wait_reported(struct e2e *e, const char *want, int timeout_ms)
{
	char path[160];
	int64_t end = e2e_now_ms() + timeout_ms;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", e->device_id);
	do {
		json_t *j = e2e_get(e, path);
		int ok = strcmp(e2e_str(json_object_get(j, "corporate_state"), "reported"), want) ==
			 0;

		json_decref(j);
		if (ok)
			return 0;
		usleep(50000);
	} while (e2e_now_ms() < end);
	return -1;
}

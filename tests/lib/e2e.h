/*
 * End-to-end test rig: the real cleave-server, cleave-hv and cleave-agent on 127.0.0.1, each in
 * its own temporary directory, with an admin client for the REST API. Tests only.
 */
#ifndef CLEAVE_TEST_E2E_H
#define CLEAVE_TEST_E2E_H

#include <jansson.h>
#include <limits.h>
#include <sys/types.h>

#include "hvproc.h"
#include "testlib.h"

struct e2e {
	struct srv s;
	struct hvproc hv;
	struct client *admin;
	char listen[64];          /* 127.0.0.1:PORT, the same across server restarts */
	char conf[PATH_MAX + 16]; /* the server's settings file */
	char agent_dir[PATH_MAX + 16];
	char agent_log[PATH_MAX + 16];
	char device_id[64];
	pid_t agent_pid;
	int agent_starts; /* start lines in agent_log before the running agent was started */
};

/* Starts the server (settings lines in conf_lines, may be NULL) and cleave-hv. 0 or -1. */
int e2e_up(struct e2e *e, const char *tag, const char *conf_lines);
/* e2e_up with more cleave-hv arguments (NULL-terminated, at most 7; borrowed: keep them alive). */
int e2e_up_hv(struct e2e *e, const char *tag, const char *conf_lines, const char *const *hv_args);
/*
 * Starts only the server, for a cleave-hv the caller runs elsewhere (the emulated arm64
 * machine's, through tests/lib/brelay.h), whose bridge socket hv_sock the agent is given. 0 or -1.
 */
int e2e_up_server(struct e2e *e, const char *tag, const char *conf_lines, const char *hv_sock);
/*
 * Starts only cleave-hv, for an agent of servers the caller runs: the agent enrolls with
 * front's URL and CA certificate (a balancer's, say) and e->admin is a client of front with
 * admin_token. e2e_server_start/stop must not be called then. 0 or -1.
 */
int e2e_attach(struct e2e *e, const char *tag, const struct srv *front, const char *admin_token);
/*
 * Stops everything with SIGTERM (the case fails unless each exits 0: see t_stop_graceful);
 * removes the directories unless the case failed.
 */
void e2e_down(struct e2e *e);
/* Restarts the server on the same port and data (after e2e_server_stop). 0 or -1. */
int e2e_server_start(struct e2e *e);
/* Stops the server with sig; its exit code (srv_stop). */
int e2e_server_stop(struct e2e *e, int sig);

/* Puts a policy (JSON body) as the default. 0 or -1. */
int e2e_policy(struct e2e *e, const char *body);
/* Enrolls the agent with a fresh enrollment token for owner; fills device_id. 0 or -1. */
int e2e_enroll(struct e2e *e, const char *owner);
/* Reads device_id from the agent's identity file (after an enrollment). 0 or -1. */
int e2e_enroll_id(struct e2e *e);
/* Starts `cleave-agent run` (environment extra "NAME=value" or NULL). 0 or -1. */
int e2e_agent_start(struct e2e *e, const char *env);
/*
 * Sends sig to the agent and reaps it (bounded, 10 s). Other than SIGKILL, sig waits until the
 * agent has logged that its loop runs (its handlers are in place: a signal before that ends it
 * uncleanly). Its exit code, 128 + signal, or -1.
 */
int e2e_agent_stop(struct e2e *e, int sig);
/* Runs `cleave-agent --state DIR ARGS` to completion; its output goes to out. Exit code. */
int e2e_agent_cmd(struct e2e *e, const char *args, char *out, size_t cap);
/* 1 when the agent log contains text. */
int e2e_agent_logged(struct e2e *e, const char *text);

/* Queues a command for the enrolled device; its id into id. HTTP status or -1. */
long e2e_command(struct e2e *e, const char *type, char *id, size_t cap);
/* GET path as the admin; parsed body (caller decrefs) or NULL. */
json_t *e2e_get(struct e2e *e, const char *path);
/* Waits (bounded by timeout_ms) until command id has a final status; returns it (decref). */
json_t *e2e_wait_command(struct e2e *e, const char *id, int timeout_ms);
/* Waits until the device's reported corporate state is want. 0 or -1. */
int e2e_wait_reported(struct e2e *e, const char *want, int timeout_ms);
/* The string field key of j, or "". */
const char *e2e_str(json_t *j, const char *key);
/* Monotonic milliseconds. */
int64_t e2e_now_ms(void);

#endif

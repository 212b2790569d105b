/*
 * The enrolled session: opening the state directory for work and signing device-API requests.
 * Signing lives here because it needs the device key and the nonce floor, both of which belong
 * to the state directory; the HTTP itself is transport.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "httpsig.h"
#include "log.h"

const char *
agent_hv_socket(const char *hv_socket, const char *stored)
{
	const char *env = getenv("CLEAVE_HV_SOCKET");

	if (hv_socket != NULL && hv_socket[0])
		return hv_socket;
	if (env != NULL && env[0])
		return env;
	if (stored != NULL && stored[0])
		return stored;
	return HVLINK_DEFAULT_SOCKET;
}

static int
open_fail(struct agent *a, int code)
{
	agent_close(a);
	return code;
}

int
agent_open(struct agent *a, const char *dir, const char *hv_socket,
	   const volatile sig_atomic_t *stop)
{
	char ca[PATH_MAX];
	struct http_opts o = {.stop = stop};
	int r;

	memset(a, 0, sizeof(*a));
	a->dir.lock_fd = -1;
	a->stop = stop;
	hvlink_init(&a->hv, HVLINK_DEFAULT_SOCKET);
	r = agent_dir_open(&a->dir, dir, 0);
	if (r == -ENOENT || (r == 0 && !identity_exists(&a->dir))) {
		log_err("%s holds no enrollment; run `cleave-agent --state %s enroll --server URL "
			"--token TOKEN` first",
			dir, dir);
		return open_fail(a, AGENT_EXIT_STATE);
	}
	if (r != 0)
		return open_fail(a, AGENT_EXIT_STATE);
	r = agent_dir_lock(&a->dir);
	if (r == -EBUSY)
		log_err("another cleave-agent is working on %s (it holds %s/lock); stop it first",
			dir, dir);
	if (r != 0)
		return open_fail(a, AGENT_EXIT_STATE);
	if (identity_load(&a->dir, &a->id, &a->key) != 0 || nonce_open(&a->nonce, &a->dir) != 0 ||
	    agent_state_load(&a->dir, &a->st) != 0 || journal_open(&a->journal, &a->dir) != 0)
		return open_fail(a, AGENT_EXIT_STATE);
	hvlink_init(&a->hv, agent_hv_socket(hv_socket, a->id.hv_socket));
	o.base_url = a->id.server;
	o.pin = a->id.pin[0] ? a->id.pin : NULL;
	if (a->id.has_ca && identity_ca_file(&a->dir, ca, sizeof(ca)) == 0)
		o.ca_file = ca;
	if (http_client_new(&o, &a->http) != 0) {
		log_err("cannot set up the HTTPS client");
		return open_fail(a, AGENT_EXIT_FAIL);
	}
	return AGENT_EXIT_OK;
}

void
agent_close(struct agent *a)
{
	http_client_free(a->http);
	a->http = NULL;
	hvlink_close(&a->hv);
	ed25519_key_free(a->key);
	a->key = NULL;
	agent_dir_close(&a->dir);
}

int
agent_save_state(struct agent *a)
{
	int r = agent_state_save(&a->dir, &a->st);

	if (r == 0)
		a->st_saved_at = (int64_t)time(NULL);
	return r;
}

int
agent_post(struct agent *a, const char *path, const char *body, long timeout_s, struct http_resp *r)
{
	struct httpsig_params p = {0};
	struct httpsig_headers h;
	char hdr[3][HTTPSIG_HDR_MAX + 32];
	const char *hl[4] = {hdr[0], hdr[1], hdr[2], NULL};
	struct timespec ts;
	uint64_t now_us;
	int e;

	memset(r, 0, sizeof(*r));
	clock_gettime(CLOCK_REALTIME, &ts);
	now_us = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	p.created = (int64_t)ts.tv_sec;
	str_copy(p.keyid, sizeof(p.keyid), a->id.device_id);
	e = nonce_next(&a->nonce, now_us, &p.nonce);
	if (e == 0)
		e = httpsig_sign(a->key, "POST", path, "", body, strlen(body), &p, &h);
	if (e != 0) {
		snprintf(r->error, sizeof(r->error), "cannot sign the request: %s", strerror(-e));
		return HTTP_E_OTHER;
	}
	snprintf(hdr[0], sizeof(hdr[0]), "Content-Digest: %s", h.content_digest);
	snprintf(hdr[1], sizeof(hdr[1]), "Signature-Input: %s", h.signature_input);
	snprintf(hdr[2], sizeof(hdr[2]), "Signature: %s", h.signature);
	return http_request(a->http, "POST", path, body, strlen(body), hl, timeout_s, r);
}

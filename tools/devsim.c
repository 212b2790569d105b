/*
 * cleave-devsim: a simulated device for trying cleave-server without a phone. It enrolls with
 * an enrollment token (its own device key, plus a stand-in hypervisor key that signs the
 * attestation and receipts), then performs signed check-ins and can complete what it receives
 * with a signed receipt. It is a test and demo tool built on tests/lib, not the agent: nothing
 * is locked or wiped, and its "hypervisor" key lives in a plain file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include "b64.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

#define DEVSIM_VERSION "0.1.0" /* the Cleave release it belongs to */

struct state {
	char dir[PATH_MAX];
	struct srv srv; /* only url and cacert are used */
	struct device_sim dev;
};

static void
usage(FILE *f)
{
	fprintf(f, "usage: cleave-devsim --state DIR enroll --server URL --token TOKEN --ca-cert "
		   "FILE\n"
		   "       cleave-devsim --state DIR checkin [--wait SECONDS] [--complete]\n"
		   "\n"
		   "A simulated device for trying cleave-server without a phone (not the agent).\n"
		   "  enroll    enroll with an enrollment token; keys and the device id go to DIR\n"
		   "  checkin   one signed long-poll check-in; prints what the server sends. With\n"
		   "            --complete, acknowledges each command and reports it completed "
		   "with a\n"
		   "            receipt signed by the simulated hypervisor key\n"
		   "  --version print the version\n");
}

static int
path_in(const struct state *s, const char *name, char *out, size_t cap)
{
	int n = snprintf(out, cap, "%s/%s", s->dir, name);

	return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int
save_text(const struct state *s, const char *name, const char *text)
{
	char p[PATH_MAX];

	if (path_in(s, name, p, sizeof(p)) != 0)
		return -1;
	return file_write_atomic(p, text, strlen(text), 0600);
}

static int
load_text(const struct state *s, const char *name, char *out, size_t cap)
{
	char p[PATH_MAX], *t;
	int r;

	if (path_in(s, name, p, sizeof(p)) != 0 || (t = file_read_all(p, cap - 1, NULL)) == NULL)
		return -1;
	t[strcspn(t, "\n")] = '\0';
	r = str_copy(out, cap, t);
	free(t);
	return r;
}

static int
load_state(struct state *s)
{
	char p[PATH_MAX], n[32];

	if (load_text(s, "server", s->srv.url, sizeof(s->srv.url)) != 0 ||
	    load_text(s, "ca-cert", s->srv.cacert, sizeof(s->srv.cacert)) != 0 ||
	    load_text(s, "device-id", s->dev.id, sizeof(s->dev.id)) != 0 ||
	    load_text(s, "nonce", n, sizeof(n)) != 0) {
		fprintf(stderr, "cleave-devsim: %s holds no enrolled device; run enroll first\n",
			s->dir);
		return -1;
	}
	s->dev.nonce = strtoull(n, NULL, 10);
	path_in(s, "device.key", p, sizeof(p));
	if (ed25519_key_load(p, &s->dev.key) != 0)
		return -1;
	path_in(s, "hypervisor.key", p, sizeof(p));
	return ed25519_key_load(p, &s->dev.hv);
}

/* Persists the nonce counter so a later run never reuses one (the server would say replay). */
static void
save_nonce(const struct state *s)
{
	char n[32];

	snprintf(n, sizeof(n), "%llu\n", (unsigned long long)s->dev.nonce);
	save_text(s, "nonce", n);
}

static int
cmd_enroll(struct state *s, const char *server, const char *token, const char *cacert)
{
	char p[PATH_MAX], line[PATH_MAX + 2];
	struct client *c;
	struct resp r;
	int rc = 1;

	if (server == NULL || token == NULL || cacert == NULL) {
		usage(stderr);
		return 2;
	}
	if (mkdir(s->dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "cleave-devsim: cannot create %s: %s\n", s->dir, strerror(errno));
		return 1;
	}
	if (realpath(cacert, s->srv.cacert) == NULL) {
		fprintf(stderr, "cleave-devsim: cannot read %s: %s\n", cacert, strerror(errno));
		return 1;
	}
	str_copy(s->srv.url, sizeof(s->srv.url), server);
	if (dev_init(&s->dev) != 0 || (c = client_new(&s->srv, NULL)) == NULL)
		return 1;
	if (dev_enroll(&s->dev, c, token, &r) != 0) {
		fprintf(stderr, "cleave-devsim: cannot reach %s\n", server);
	} else if (r.status != 201) {
		fprintf(stderr, "cleave-devsim: enrollment refused (HTTP %ld): %s\n", r.status,
			r.body ? r.body : "");
	} else {
		path_in(s, "device.key", p, sizeof(p));
		rc = ed25519_key_save(s->dev.key, p) != 0;
		path_in(s, "hypervisor.key", p, sizeof(p));
		rc |= ed25519_key_save(s->dev.hv, p) != 0;
		snprintf(line, sizeof(line), "%s\n", server);
		rc |= save_text(s, "server", line) != 0;
		snprintf(line, sizeof(line), "%s\n", s->srv.cacert);
		rc |= save_text(s, "ca-cert", line) != 0;
		snprintf(line, sizeof(line), "%s\n", s->dev.id);
		rc |= save_text(s, "device-id", line) != 0;
		save_nonce(s);
		if (rc == 0)
			printf("enrolled as %s\n", s->dev.id);
	}
	resp_free(&r);
	client_free(c);
	return rc;
}

/* Acknowledges and completes one command with a receipt over its ticket. */
static int
complete(struct state *s, struct client *c, json_t *cmd)
{
	const char *id = json_string_value(json_object_get(cmd, "id"));
	const char *tb64 = json_string_value(json_object_get(cmd, "ticket"));
	uint8_t ticket[TICKET_LEN], rcpt[RECEIPT_LEN];
	char path[128], body[1024], rb64[600];
	struct resp r;
	int ok;

	if (id == NULL || tb64 == NULL ||
	    b64_decode(ticket, sizeof(ticket), tb64, strlen(tb64)) != TICKET_LEN)
		return -1;
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", id);
	if (dev_req(&s->dev, c, "POST", path, NULL, 0, &r) != 0)
		return -1;
	resp_free(&r);
	dev_receipt(&s->dev, ticket, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body),
		 "{\"status\":\"completed\",\"detail\":\"simulated by cleave-devsim\","
		 "\"receipt\":\"%s\"}",
		 rb64);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	if (dev_req(&s->dev, c, "POST", path, body, 0, &r) != 0)
		return -1;
	ok = r.status == 200;
	printf("  %s %s: %s\n", id, json_string_value(json_object_get(cmd, "type")),
	       ok ? r.body : "refused");
	resp_free(&r);
	return ok ? 0 : -1;
}

static int
cmd_checkin(struct state *s, long wait, int do_complete)
{
	char body[64];
	struct client *c;
	struct resp r;
	json_t *j, *cmd;
	size_t i;
	int rc = 0;

	if (load_state(s) != 0 || (c = client_new(&s->srv, NULL)) == NULL)
		return 1;
	snprintf(body, sizeof(body), "{\"wait\":%ld}", wait);
	if (dev_req(&s->dev, c, "POST", "/device/v1/checkin", body, 0, &r) != 0) {
		save_nonce(s);
		client_free(c);
		return 1;
	}
	if (r.status == 204) {
		printf("nothing pending\n");
	} else if (r.status != 200) {
		fprintf(stderr, "cleave-devsim: check-in refused (HTTP %ld): %s\n", r.status,
			r.body ? r.body : "");
		rc = 1;
	} else {
		j = resp_json(&r);
		json_array_foreach(json_object_get(j, "commands"), i, cmd)
		{
			printf("command %s %s (%s)\n",
			       json_string_value(json_object_get(cmd, "id")),
			       json_string_value(json_object_get(cmd, "type")),
			       json_string_value(json_object_get(cmd, "reason")));
			if (do_complete && complete(s, c, cmd) != 0)
				rc = 1;
		}
		json_decref(j);
	}
	resp_free(&r);
	save_nonce(s);
	client_free(c);
	return rc;
}

struct args {
	const char *server, *token, *cacert, *cmd, *state, *wait;
	int complete;
};

/* Parses the command line: 0 to go on, 1 when --help/--version answered, 2 on a usage error. */
static int
parse_args(int argc, char **argv, struct args *o)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		} else if (strcmp(a, "--version") == 0) {
			printf("cleave-devsim %s\n", DEVSIM_VERSION);
			return 1;
		} else if (strcmp(a, "--complete") == 0) {
			o->complete = 1;
		} else if ((strcmp(a, "enroll") == 0 || strcmp(a, "checkin") == 0) && !o->cmd) {
			o->cmd = a;
		} else if (strcmp(a, "--state") == 0) {
			slot = &o->state;
		} else if (strcmp(a, "--server") == 0) {
			slot = &o->server;
		} else if (strcmp(a, "--token") == 0) {
			slot = &o->token;
		} else if (strcmp(a, "--ca-cert") == 0) {
			slot = &o->cacert;
		} else if (strcmp(a, "--wait") == 0) {
			slot = &o->wait;
		} else {
			fprintf(stderr, "cleave-devsim: %s %s (see --help)\n",
				a[0] == '-' ? "unknown option" : "unexpected argument", a);
			return 2;
		}
		if (slot != NULL && v == NULL) {
			fprintf(stderr, "cleave-devsim: %s needs a value\n", a);
			return 2;
		}
		if (slot != NULL)
			*slot = argv[++i];
	}
	if (o->state == NULL || o->cmd == NULL) {
		usage(stderr);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct args o = {0};
	struct state s;
	long wait = 0;
	char *end = NULL;
	int rc = parse_args(argc, argv, &o);

	if (rc != 0)
		return rc == 1 ? 0 : 2;
	if (o.wait != NULL)
		wait = strtol(o.wait, &end, 10);
	if (o.wait != NULL && (*o.wait == '\0' || *end != '\0' || wait < 0 || wait > 55)) {
		fprintf(stderr, "cleave-devsim: --wait takes 0 to 55 seconds\n");
		return 2;
	}
	memset(&s, 0, sizeof(s));
	if (str_copy(s.dir, sizeof(s.dir), o.state) != 0) {
		fprintf(stderr, "cleave-devsim: the --state path is too long\n");
		return 2;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(o.cmd, "enroll") == 0)
		rc = cmd_enroll(&s, o.server, o.token, o.cacert);
	else
		rc = cmd_checkin(&s, wait, o.complete);
	dev_fini(&s.dev);
	curl_global_cleanup();
	return rc;
}

/*
 * cleave-devsim: a simulated device for trying cleave-server without a phone. It enrolls with
 * an enrollment token (its own device key, plus a stand-in hypervisor key that signs the
 * attestation and receipts), then performs signed check-ins that report its state (corporate
 * half active, locked or wiped; the policy it applied) so the server can judge it compliant,
 * and acknowledges and completes what it receives with a signed receipt, in one go or step by
 * step. It is a test and demo tool built on tests/lib, not the agent: nothing is locked or
 * wiped, and its "hypervisor" key lives in a plain file.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "b64.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

/* The Cleave release it belongs to; also the agent version its check-ins report. */
#define DEVSIM_VERSION "0.1.0"

struct state {
	char dir[PATH_MAX];
	struct srv srv; /* only url and cacert are used */
	struct device_sim dev;
	/*
	 * What it reports, kept in DIR/report: "CORPORATE_STATE POLICY_NAME POLICY_VERSION
	 * KEY_EPOCH ARG0 ARG1 ARG2 ARG3" (the args of the last policy ticket it carried out, which
	 * its simulated hypervisor attests as a digest).
	 */
	char corporate[16];
	char policy[64]; /* "" when no policy was received */
	long long policy_version;
	unsigned long long epoch;
	unsigned long long pargs[4];
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cleave-devsim --state DIR enroll --server URL --token TOKEN --ca-cert "
		"FILE\n"
		"       cleave-devsim --state DIR checkin [--wait SECONDS] [--complete]\n"
		"       cleave-devsim --state DIR ack COMMAND_ID\n"
		"       cleave-devsim --state DIR complete COMMAND_ID\n"
		"       cleave-devsim --state DIR status\n"
		"\n"
		"A simulated device for trying cleave-server without a phone (not the agent).\n"
		"  enroll    enroll with an enrollment token; keys and the device id go to DIR\n"
		"  checkin   one signed long-poll check-in that reports the device's state "
		"(corporate\n"
		"            half, applied policy); prints each command it receives. With "
		"--complete,\n"
		"            acknowledges each and reports it completed with a receipt signed by "
		"the\n"
		"            simulated hypervisor key\n"
		"  ack       acknowledges a command received by an earlier checkin\n"
		"  complete  reports that command completed, with a signed receipt\n"
		"  status    prints the device's id, server, corporate state, applied policy and\n"
		"            the commands received but not completed\n"
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

static void
save_report(const struct state *s)
{
	char line[128];

	snprintf(line, sizeof(line), "%s %s %lld %llu %llu %llu %llu %llu\n", s->corporate,
		 s->policy[0] ? s->policy : "-", s->policy_version, s->epoch, s->pargs[0],
		 s->pargs[1], s->pargs[2], s->pargs[3]);
	save_text(s, "report", line);
}

/* Takes the policy the server sent (enroll answer or check-in) as applied; NULL: no change. */
static void
apply_policy(struct state *s, json_t *pol)
{
	const char *name = json_string_value(json_object_get(pol, "name"));

	if (name == NULL)
		return;
	str_copy(s->policy, sizeof(s->policy), name);
	s->policy_version = json_integer_value(json_object_get(pol, "version"));
	printf("applied policy %s v%lld\n", s->policy, s->policy_version);
}

static int
load_state(struct state *s)
{
	char p[PATH_MAX], n[32], rep[256], tk[64];

	if (load_text(s, "server", s->srv.url, sizeof(s->srv.url)) != 0 ||
	    load_text(s, "ca-cert", s->srv.cacert, sizeof(s->srv.cacert)) != 0 ||
	    load_text(s, "device-id", s->dev.id, sizeof(s->dev.id)) != 0 ||
	    load_text(s, "nonce", n, sizeof(n)) != 0) {
		fprintf(stderr, "cleave-devsim: %s holds no enrolled device; run enroll first\n",
			s->dir);
		return -1;
	}
	s->dev.nonce = strtoull(n, NULL, 10);
	str_copy(s->corporate, sizeof(s->corporate), "active");
	s->epoch = 1;
	if (load_text(s, "report", rep, sizeof(rep)) == 0 &&
	    sscanf(rep, "%15s %63s %lld %llu %llu %llu %llu %llu", s->corporate, s->policy,
		   &s->policy_version, &s->epoch, &s->pargs[0], &s->pargs[1], &s->pargs[2],
		   &s->pargs[3]) >= 3 &&
	    strcmp(s->policy, "-") == 0)
		s->policy[0] = '\0';
	if (load_text(s, "ticket-key", tk, sizeof(tk)) == 0)
		b64_decode(s->dev.ticket_key, sizeof(s->dev.ticket_key), tk, strlen(tk));
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
	json_t *j;
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
		b64_encode(line, sizeof(line), s->dev.ticket_key, sizeof(s->dev.ticket_key));
		rc |= save_text(s, "ticket-key", line) != 0;
		save_nonce(s);
		if (rc == 0)
			printf("enrolled as %s\n", s->dev.id);
		str_copy(s->corporate, sizeof(s->corporate), "active");
		s->epoch = 1;
		j = resp_json(&r);
		apply_policy(s, json_object_get(j, "policy"));
		json_decref(j);
		save_report(s);
	}
	resp_free(&r);
	client_free(c);
	return rc;
}

/* DIR/commands/ID keeps "TYPE TICKET_BASE64" of a command received and not completed yet. */
static int
command_path(const struct state *s, const char *id, char *out, size_t cap)
{
	char name[96];

	if (strspn(id, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(id) || strlen(id) > 64)
		return -1;
	snprintf(name, sizeof(name), "commands/%s", id);
	return path_in(s, name, out, cap);
}

static void
save_command(const struct state *s, json_t *cmd)
{
	const char *id = json_string_value(json_object_get(cmd, "id"));
	const char *type = json_string_value(json_object_get(cmd, "type"));
	const char *ticket = json_string_value(json_object_get(cmd, "ticket"));
	char p[PATH_MAX], line[1024];

	if (id == NULL || type == NULL || ticket == NULL || path_in(s, "commands", p, sizeof(p)))
		return;
	mkdir(p, 0700);
	snprintf(line, sizeof(line), "%s %s\n", type, ticket);
	if (command_path(s, id, p, sizeof(p)) == 0)
		file_write_atomic(p, line, strlen(line), 0600);
}

/* A saved command as the JSON a check-in delivered ({id, type, ticket}); NULL when unknown. */
static json_t *
load_command(const struct state *s, const char *id)
{
	char p[PATH_MAX], *t, type[16], ticket[700];
	json_t *j = NULL;

	if (command_path(s, id, p, sizeof(p)) != 0 || (t = file_read_all(p, 1024, NULL)) == NULL) {
		fprintf(stderr, "cleave-devsim: no command %s was received; run checkin first\n",
			id);
		return NULL;
	}
	if (sscanf(t, "%15s %699s", type, ticket) == 2)
		j = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "ticket", ticket);
	free(t);
	return j;
}

/* Posts one signed device request and prints the answer; 0 when it said 200. */
static int
post(struct state *s, struct client *c, const char *path, const char *body, const char *what)
{
	struct resp r;
	int ok;

	if (dev_req(&s->dev, c, "POST", path, body, 0, &r) != 0) {
		fprintf(stderr, "cleave-devsim: cannot reach %s\n", s->srv.url);
		return -1;
	}
	ok = r.status == 200;
	if (ok)
		printf("  %s: %s\n", what, r.body ? r.body : "");
	else
		fprintf(stderr, "cleave-devsim: %s refused (HTTP %ld): %s\n", what, r.status,
			r.body ? r.body : "");
	resp_free(&r);
	return ok ? 0 : -1;
}

static int
ack(struct state *s, struct client *c, json_t *cmd)
{
	char path[128];

	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack",
		 json_string_value(json_object_get(cmd, "id")));
	return post(s, c, path, NULL, "ack");
}

/* Reports a command completed with a receipt over its ticket; the device's state follows. */
static int
finish(struct state *s, struct client *c, json_t *cmd)
{
	const char *id = json_string_value(json_object_get(cmd, "id"));
	const char *type = json_string_value(json_object_get(cmd, "type"));
	const char *tb64 = json_string_value(json_object_get(cmd, "ticket"));
	uint8_t ticket[TICKET_LEN], rcpt[RECEIPT_LEN];
	char path[PATH_MAX], body[1024], rb64[600];

	if (id == NULL || type == NULL || tb64 == NULL ||
	    b64_decode(ticket, sizeof(ticket), tb64, strlen(tb64)) != TICKET_LEN)
		return -1;
	dev_receipt(&s->dev, ticket, 0, rcpt);
	b64_encode(rb64, sizeof(rb64), rcpt, sizeof(rcpt));
	snprintf(body, sizeof(body),
		 "{\"status\":\"completed\",\"detail\":\"simulated by cleave-devsim\","
		 "\"receipt\":\"%s\"}",
		 rb64);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", id);
	if (post(s, c, path, body, "result") != 0)
		return -1;
	/* What the corporate half would now be, attested at the next check-in. */
	if (strcmp(type, "policy") == 0) {
		struct ticket t;

		if (ticket_decode(ticket, sizeof(ticket), &t) == 0)
			for (int i = 0; i < 4; i++)
				s->pargs[i] = t.args[i];
	}
	if (strcmp(type, "wipe") == 0 || strcmp(type, "retire") == 0 || strcmp(type, "rekey") == 0)
		s->epoch = 2; /* as dev_receipt's receipts say */
	if (strcmp(type, "wipe") == 0 || strcmp(type, "retire") == 0)
		str_copy(s->corporate, sizeof(s->corporate), "wiped");
	else if (strcmp(type, "lock") == 0)
		str_copy(s->corporate, sizeof(s->corporate), "locked");
	else if (strcmp(type, "unlock") == 0)
		str_copy(s->corporate, sizeof(s->corporate), "active");
	save_report(s);
	if (command_path(s, id, path, sizeof(path)) == 0)
		unlink(path);
	return 0;
}

/*
 * What its simulated hypervisor signs about itself, as cleave-hv would: state, key epoch, the
 * digest of the policy it holds, and the server key it is pinned to (none once wiped).
 */
static void
attest_now(const struct state *s, char *b64, size_t cap)
{
	struct attestation a;
	uint8_t buf[ATTEST_LEN];
	uint64_t args[4];

	memset(&a, 0, sizeof(a));
	a.state = strcmp(s->corporate, "locked") == 0 ? HV_STATE_LOCKED : HV_STATE_ACTIVE;
	ed25519_key_public(s->dev.hv, a.hv_key);
	crypto_sha256("test guest image", 16, a.measurement); /* as at enrollment */
	if (strcmp(s->corporate, "wiped") != 0)
		memcpy(a.owner_key, s->dev.ticket_key, 32);
	a.key_epoch = s->epoch;
	a.time_ms = (uint64_t)time(NULL) * 1000;
	for (int i = 0; i < 4; i++)
		args[i] = s->pargs[i];
	crypto_policy_digest(args, a.policy_digest);
	attest_encode(&a, buf);
	ed25519_key_sign(s->dev.hv, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN);
	b64_encode(b64, cap, buf, sizeof(buf));
}

/* The check-in request: the wait and the device's report of itself, with an attestation. */
static char *
checkin_body(const struct state *s, long wait)
{
	char att[400];
	json_t *st, *j;
	char *b;

	attest_now(s, att, sizeof(att));
	st = json_pack("{s:s, s:s, s:s}", "corporate_state", s->corporate, "agent_version",
		       DEVSIM_VERSION, "attestation", att);
	if (st == NULL)
		return NULL;
	if (s->policy[0] != '\0') {
		json_object_set_new(st, "policy_name", json_string(s->policy));
		json_object_set_new(st, "policy_version", json_integer(s->policy_version));
	}
	j = json_pack("{s:I, s:o}", "wait", (json_int_t)wait, "state", st); /* takes st */
	b = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	return b;
}

static int
handle_commands(struct state *s, struct client *c, json_t *j, int do_complete)
{
	json_t *cmd;
	size_t i;
	int rc = 0;

	json_array_foreach(json_object_get(j, "commands"), i, cmd)
	{
		printf("command %s %s (%s)\n", json_string_value(json_object_get(cmd, "id")),
		       json_string_value(json_object_get(cmd, "type")),
		       json_string_value(json_object_get(cmd, "reason")));
		save_command(s, cmd);
		if (do_complete && (ack(s, c, cmd) != 0 || finish(s, c, cmd) != 0))
			rc = 1;
	}
	apply_policy(s, json_object_get(j, "policy"));
	save_report(s);
	return rc;
}

/*
 * One signed check-in. With --complete, the commands it brings are carried out and the device
 * checks in once more at once, as the agent does, so the server sees the new state attested.
 */
static int
cmd_checkin(struct state *s, long wait, int do_complete)
{
	struct client *c;
	struct resp r;
	char *body;
	json_t *j;
	int rc = 0, again = 1;

	if (load_state(s) != 0 || (c = client_new(&s->srv, NULL)) == NULL)
		return 1;
	for (int round = 0; round < 2 && again && rc == 0; round++) {
		again = 0;
		body = checkin_body(s, round == 0 ? wait : 0);
		if (body == NULL ||
		    dev_req(&s->dev, c, "POST", "/device/v1/checkin", body, 0, &r) != 0) {
			free(body);
			rc = 1;
			break;
		}
		free(body);
		if (r.status == 204) {
			printf("nothing pending\n");
		} else if (r.status != 200) {
			fprintf(stderr, "cleave-devsim: check-in refused (HTTP %ld): %s\n",
				r.status, r.body ? r.body : "");
			rc = 1;
		} else {
			j = resp_json(&r);
			again = do_complete && json_array_size(json_object_get(j, "commands")) > 0;
			rc = handle_commands(s, c, j, do_complete);
			json_decref(j);
			if (again && rc == 0)
				printf("checking in again to report the new state\n");
		}
		resp_free(&r);
	}
	save_nonce(s);
	client_free(c);
	return rc;
}

/* ack or complete of one command received earlier. */
static int
cmd_step(struct state *s, const char *cmd, const char *id)
{
	struct client *c;
	json_t *j;
	int rc;

	if (id == NULL) {
		usage(stderr);
		return 2;
	}
	if (load_state(s) != 0 || (j = load_command(s, id)) == NULL)
		return 1;
	c = client_new(&s->srv, NULL);
	if (c == NULL) {
		json_decref(j);
		return 1;
	}
	rc = strcmp(cmd, "ack") == 0 ? ack(s, c, j) : finish(s, c, j);
	json_decref(j);
	save_nonce(s);
	client_free(c);
	return rc == 0 ? 0 : 1;
}

static int
cmd_status(struct state *s)
{
	char p[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int n = 0;

	if (load_state(s) != 0)
		return 1;
	printf("device:          %s\nserver:          %s\ncorporate half:  %s\n", s->dev.id,
	       s->srv.url, s->corporate);
	if (s->policy[0] != '\0')
		printf("applied policy:  %s v%lld\n", s->policy, s->policy_version);
	else
		printf("applied policy:  none received\n");
	printf("open commands:  ");
	if (path_in(s, "commands", p, sizeof(p)) == 0 && (d = opendir(p)) != NULL) {
		for (int i = 0; i < 1000 && (de = readdir(d)) != NULL; i++)
			if (de->d_name[0] != '.')
				printf("%s%s", n++ ? " " : "", de->d_name);
		closedir(d);
	}
	printf("%s\n", n ? "" : "none");
	return 0;
}

struct args {
	const char *server, *token, *cacert, *cmd, *state, *wait, *id;
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
		} else if ((strcmp(a, "enroll") == 0 || strcmp(a, "checkin") == 0 ||
			    strcmp(a, "status") == 0) &&
			   !o->cmd) {
			o->cmd = a;
		} else if ((strcmp(a, "ack") == 0 || strcmp(a, "complete") == 0) && !o->cmd &&
			   v != NULL) {
			o->cmd = a;
			o->id = argv[++i];
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
	else if (strcmp(o.cmd, "checkin") == 0)
		rc = cmd_checkin(&s, wait, o.complete);
	else if (strcmp(o.cmd, "status") == 0)
		rc = cmd_status(&s);
	else
		rc = cmd_step(&s, o.cmd, o.id);
	dev_fini(&s.dev);
	curl_global_cleanup();
	return rc;
}

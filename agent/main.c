/*
 * cleave-agent: the on-device agent of Cleave. Wiring only: global options, the subcommand,
 * its options, signals; the work is in enroll.c, loop.c and ops.c.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"

static volatile sig_atomic_t stop_flag;

static void
on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static const char usage_main[] =
	"usage: cleave-agent --state DIR [--log-level LEVEL] COMMAND [OPTIONS]\n"
	"\n"
	"The on-device agent of Cleave: carries the server's signed orders to cleave-hv\n"
	"(the hypervisor of the corporate half) and its signed receipts back.\n"
	"\n"
	"commands:\n"
	"  enroll     join a cleave-server with an enrollment token\n"
	"  run        the check-in loop (long poll; executes and reports commands)\n"
	"  status     what this device is: enrollment, last check-in, commands, cleave-hv\n"
	"  unenroll   leave: the corporate half is retired with a receipt\n"
	"\n"
	"  --state DIR        the agent's private state (created 0700 by enroll)\n"
	"  --log-level LEVEL  debug, info (default), warn or error; logs go to stderr\n"
	"  --version          print the version\n"
	"`cleave-agent COMMAND --help` describes each command. cleave-hv's socket is\n"
	"--hv-socket PATH, else $CLEAVE_HV_SOCKET, else the one used at enrollment, else\n" //
	"" HVLINK_DEFAULT_SOCKET ".\n"
	"\n"
	"exit codes: 0 ok, 1 failed, 2 usage, 3 refused by the server, 4 server unreachable\n"
	"or certificate mismatch, 5 cleave-hv not running or refused, 6 state directory\n"
	"(not enrolled, refused as unsafe or corrupt, in use by another agent).\n";

static const char usage_enroll[] =
	"usage: cleave-agent --state DIR enroll --server URL --token TOKEN\n"
	"                    [--ca-cert FILE] [--pin-sha256 HASH] [--hv-socket PATH] [--replace]\n"
	"\n"
	"Makes a device key, has cleave-hv attest over the server's nonce, enrolls with the\n"
	"enrollment TOKEN, pins the server's ticket key into cleave-hv and keeps the identity\n"
	"in DIR (mode 0700, files 0600). The server's certificate is trusted through\n"
	"--ca-cert FILE (copied into DIR), or --pin-sha256 HASH: the base64 SHA-256 of its\n"
	"public key, as curl's --pinnedpubkey sha256//HASH, e.g.\n"
	"  openssl x509 -in cert.pem -pubkey -noout | openssl pkey -pubin -outform der |\n"
	"  openssl dgst -sha256 -binary | base64\n"
	"or both, or else the system's CA store. --replace enrolls anew in a DIR that already\n"
	"holds an enrollment whose results are all reported (after a wipe).\n";

static const char usage_run[] =
	"usage: cleave-agent --state DIR run [--once] [--hv-socket PATH]\n"
	"\n"
	"Checks in with the server (signed long poll, 25 s), journals each command, passes\n"
	"its ticket to cleave-hv, and reports the result with cleave-hv's receipt; renews\n"
	"cleave-hv's lease and uploads the receipts of what cleave-hv did on its own. After\n"
	"a crash, each command runs at most once and its result is reported at least once.\n"
	"When the server is unreachable it backs off (0.5 s doubling to 60 s, +-25%); when\n"
	"cleave-hv is, commands wait in the journal until their ticket expires. SIGTERM or\n"
	"SIGINT stops it within about a second. --once: one check-in without waiting, then\n"
	"exit (0 when nothing is left to report, 1 when something waits, 4 when the server\n"
	"could not be reached).\n";

static const char usage_status[] =
	"usage: cleave-agent --state DIR status [--json] [--hv-socket "
	"PATH]\n"
	"\n"
	"Shows the enrollment, the last check-in, the command journal and "
	"cleave-hv's\nstate, without contacting the server.\n";

static const char usage_unenroll[] =
	"usage: cleave-agent --state DIR unenroll [--hv-socket PATH]\n"
	"\n"
	"The employee leaves: the server issues a retire order, cleave-hv wipes the\n"
	"corporate half and signs a receipt, the server gets the receipt, and the agent\n"
	"removes its state. Nothing personal is touched. Stop `cleave-agent run` first.\n";

struct opts {
	const char *state, *cmd, *server, *token, *ca, *pin, *hv;
	int once, json, replace, help, version;
};

/* Parses argv; returns 0 or AGENT_EXIT_USAGE after saying why. */
static int
parse(int argc, char **argv, struct opts *o)
{
	enum log_level lvl = LOG_LVL_INFO;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		const char **slot = NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)
			o->help = 1;
		else if (strcmp(a, "--version") == 0)
			o->version = 1;
		else if (strcmp(a, "--once") == 0)
			o->once = 1;
		else if (strcmp(a, "--json") == 0)
			o->json = 1;
		else if (strcmp(a, "--replace") == 0)
			o->replace = 1;
		else if (strcmp(a, "--state") == 0)
			slot = &o->state;
		else if (strcmp(a, "--server") == 0)
			slot = &o->server;
		else if (strcmp(a, "--token") == 0)
			slot = &o->token;
		else if (strcmp(a, "--ca-cert") == 0)
			slot = &o->ca;
		else if (strcmp(a, "--pin-sha256") == 0)
			slot = &o->pin;
		else if (strcmp(a, "--hv-socket") == 0)
			slot = &o->hv;
		else if (strcmp(a, "--log-level") == 0) {
			if (v == NULL || log_level_parse(v, &lvl) != 0) {
				fprintf(stderr, "cleave-agent: --log-level takes debug, info, warn "
						"or error\n");
				return AGENT_EXIT_USAGE;
			}
			i++;
		} else if (a[0] != '-' && o->cmd == NULL)
			o->cmd = a;
		else {
			fprintf(stderr, "cleave-agent: %s %s (see --help)\n",
				a[0] == '-' ? "unknown option" : "unexpected argument", a);
			return AGENT_EXIT_USAGE;
		}
		if (slot != NULL) {
			if (v == NULL) {
				fprintf(stderr, "cleave-agent: %s needs a value\n", a);
				return AGENT_EXIT_USAGE;
			}
			*slot = v;
			i++;
		}
	}
	log_set_level(lvl);
	return 0;
}

static const char *
usage_of(const char *cmd)
{
	static const struct {
		const char *cmd, *text;
	} u[] = {{"enroll", usage_enroll},
		 {"run", usage_run},
		 {"status", usage_status},
		 {"unenroll", usage_unenroll}};

	for (size_t i = 0; cmd != NULL && i < ARRAY_SIZE(u); i++)
		if (strcmp(cmd, u[i].cmd) == 0)
			return u[i].text;
	return NULL;
}

/* Options that only some commands take. */
static int
check_opts(const struct opts *o)
{
	int enroll = strcmp(o->cmd, "enroll") == 0;

	if ((!enroll && (o->server || o->token || o->ca || o->pin || o->replace)) ||
	    (strcmp(o->cmd, "run") != 0 && o->once) || (strcmp(o->cmd, "status") != 0 && o->json)) {
		fprintf(stderr, "cleave-agent: an option does not apply to %s\n%s", o->cmd,
			usage_of(o->cmd));
		return AGENT_EXIT_USAGE;
	}
	if (enroll && (o->server == NULL || o->token == NULL)) {
		fputs(usage_enroll, stderr);
		return AGENT_EXIT_USAGE;
	}
	return 0;
}

static int
with_agent(const struct opts *o)
{
	struct sigaction sa = {.sa_handler = on_signal};
	struct agent a;
	int rc;

	/* No SA_RESTART: a sleeping or polling call returns and sees the flag. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	rc = agent_open(&a, o->state, o->hv, &stop_flag);
	if (rc != AGENT_EXIT_OK)
		return rc;
	rc = strcmp(o->cmd, "run") == 0 ? agent_run(&a, o->once) : agent_unenroll(&a);
	agent_close(&a);
	return rc;
}

int
main(int argc, char **argv)
{
	struct opts o = {0};
	int rc = parse(argc, argv, &o);
	const char *u;

	if (rc != 0)
		return rc;
	if (o.version) {
		printf("cleave-agent %s\n", AGENT_VERSION);
		return AGENT_EXIT_OK;
	}
	u = usage_of(o.cmd);
	if (o.help) {
		fputs(u ? u : usage_main, stdout);
		return AGENT_EXIT_OK;
	}
	if (o.cmd == NULL || u == NULL || o.state == NULL) {
		if (o.cmd != NULL && u == NULL)
			fprintf(stderr, "cleave-agent: unknown command %s\n", o.cmd);
		fputs(u && o.cmd ? u : usage_main, stderr);
		return AGENT_EXIT_USAGE;
	}
	rc = check_opts(&o);
	if (rc != 0)
		return rc;
	if (http_global_init() != 0) {
		fprintf(stderr, "cleave-agent: cannot initialise libcurl\n");
		return AGENT_EXIT_FAIL;
	}
	if (strcmp(o.cmd, "enroll") == 0) {
		struct enroll_args e = {.dir = o.state,
					.server = o.server,
					.token = o.token,
					.ca_cert = o.ca,
					.pin = o.pin,
					.hv_socket = o.hv,
					.replace = o.replace};

		signal(SIGPIPE, SIG_IGN);
		return agent_enroll(&e);
	}
	if (strcmp(o.cmd, "status") == 0)
		return agent_status(o.state, o.hv, o.json);
	return with_agent(&o);
}

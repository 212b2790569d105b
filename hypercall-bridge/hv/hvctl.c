/*
 * cleave-hvctl: a command-line client of cleave-hv's bridge socket for people and tests. It
 * shows status, asks for attestations, pins the server key, and passes signed tickets for
 * lock, unlock, rekey, wipe, lease and policy, printing the receipts it gets back. Without a
 * valid ticket a state-changing call fails with cleave-hv's reason and changes nothing. It
 * also attaches a terminal (or pipes) to the corporate screen (`console`); it keeps nothing of
 * what the console shows.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "bridge_client.h"
#include "bridge_msg.h"
#include "crypto.h"
#include "fileio.h"
#include "hvctl_tpm.h"
#include "util.h"
#include "wire.h"

#ifndef CLEAVE_VERSION
#define CLEAVE_VERSION "0.1.0"
#endif

static void
usage(FILE *f)
{
	fprintf(f, "usage: cleave-hvctl --socket PATH COMMAND   (or --help, --version)\n"
		   "  status                          state, key epoch, counters, lease, calls\n"
		   "  attest NONCE_HEX                a signed attestation (base64)\n"
		   "  pubkey [--pem]                  the hypervisor's identity key (base64, or "
		   "PEM\n"
		   "                                  for `openssl pkeyutl -verify` on receipts)\n"
		   "  pin KEY_B64 DEVICE_ID           pin the server's ticket key (once)\n"
		   "  lock|unlock|rekey|wipe --ticket FILE [--receipt-out FILE]\n"
		   "  lease|policy --ticket FILE      renew the lease / set the offline policy\n"
		   "  receipts                        receipts not yet acknowledged (base64, one a "
		   "line)\n"
		   "  ack SEQ                         the server holds receipts up to SEQ\n"
		   "  tpm-identity                    (--tpm) EK certificate, EK and AK public,\n"
		   "                                  AK SubjectPublicKeyInfo (base64 lines)\n"
		   "  tpm-activate CRED_FILE          (--tpm) activate a tpm2_makecredential\n"
		   "                                  credential: an attestation over its secret,\n"
		   "                                  a quote of PCR 23 and its event log\n"
		   "  console [--console-socket PATH] attach to the corporate screen (the guest's\n"
		   "                                  serial console); PATH defaults to\n"
		   "                                  console.sock beside --socket\n"
		   "Tickets are the 256-byte signed tickets of schema/wire-formats.md (raw or "
		   "base64).\n"
		   "console: only cleave-hv's own user may attach, one client at a time. On a\n"
		   "terminal it runs in raw mode and Ctrl-] detaches. Otherwise it copies stdin\n"
		   "to the console and the console to stdout until cleave-hv closes it, or until\n"
		   "stdin ends and the console has then been quiet for 0.5 s (at most 10 s).\n");
}

static const char *const state_names[] = {"?", "active", "locked", "wipe pending", "erased"};

static int
fail(int st)
{
	fprintf(stderr, "cleave-hvctl: %s\n", bridge_strerror(st));
	return 1;
}

/*
 * The VMs' exits and guest calls by transport (CLV_FN_COUNTERS), after the status lines; left
 * out where cleave-hv lacks the function or the caller is not the agent.
 */
static void
print_counters(struct bridge_client *c)
{
	uint8_t out[64];
	struct clv_counters k;
	size_t n;

	if (bridge_call(c, CLV_FN_COUNTERS, NULL, 0, out, sizeof(out), &n) != CLV_OK || n != 64)
		return;
	clv_counters_decode(out, &k);
	printf("vm exits: %llu\nguest calls: port %llu, mmio %llu, hvc %llu\n",
	       (unsigned long long)k.exits, (unsigned long long)k.calls_port,
	       (unsigned long long)k.calls_mmio, (unsigned long long)k.calls_hvc);
}

static int
cmd_status(struct bridge_client *c)
{
	uint8_t out[64];
	struct clv_status s;
	size_t n;
	int st = bridge_call(c, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &n);

	if (st != CLV_OK)
		return fail(st);
	if (n != 64 || clv_status_decode(out, &s) != CLV_OK)
		return fail(-EPROTO);
	printf("state: %s\nabi: %u.%u\nkey epoch: %llu\nticket counter: %llu\nreceipt seq: "
	       "%llu\nlease until: %llu\nkeystore: %s\n",
	       state_names[s.state], s.abi_version >> 16, s.abi_version & 0xffff,
	       (unsigned long long)s.key_epoch, (unsigned long long)s.ticket_counter,
	       (unsigned long long)s.receipt_seq, (unsigned long long)s.lease_until,
	       s.flags & CLV_STATUS_TPM ? "tpm" : "file");
	if (s.flags & CLV_STATUS_STALE_STATE)
		printf("trust state: stale (an older copy than the TPM's state counter; tickets "
		       "are refused until the device enrolls again)\n");
	print_counters(c);
	return 0;
}

/* Reads a ticket file: 256 raw bytes, or their base64. */
static int
read_ticket(const char *path, uint8_t out[TICKET_LEN])
{
	size_t n = 0;
	char *t = file_read_all(path, 4096, &n);
	long d;

	if (t == NULL) {
		fprintf(stderr, "cleave-hvctl: cannot read %s\n", path);
		return -1;
	}
	if (n == TICKET_LEN) {
		memcpy(out, t, TICKET_LEN);
		free(t);
		return 0;
	}
	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r'))
		n--;
	d = b64_decode(out, TICKET_LEN, t, n);
	free(t);
	if (d != TICKET_LEN) {
		fprintf(stderr, "cleave-hvctl: %s is not a 256-byte ticket\n", path);
		return -1;
	}
	return 0;
}

static void
print_b64(const uint8_t *p, size_t n)
{
	char buf[1024];

	b64_encode(buf, sizeof(buf), p, n);
	printf("%s\n", buf);
}

/*
 * Prints the identity key from an attestation over a fresh nonce, after checking that the
 * attestation is signed by the key it names (so a typo'd socket cannot hand out any key).
 */
static int
cmd_pubkey(struct bridge_client *c, int pem)
{
	uint8_t nonce[32], buf[512];
	struct attestation a;
	char *text = NULL;
	size_t n = 0;
	int st;

	if (crypto_random(nonce, sizeof(nonce)) != 0)
		return fail(-EIO);
	st = bridge_call(c, CLV_FN_ATTEST, nonce, sizeof(nonce), buf, sizeof(buf), &n);
	if (st != CLV_OK)
		return fail(st);
	if (attest_decode(buf, n, &a) == 0 && memcmp(a.nonce, nonce, 32) == 0 &&
	    a.sig_alg == WIRE_SIG_ECDSA_P256)
		return hvctl_tpm_pubkey(c, buf, n, a.hv_key, pem) == 0 ? 0 : fail(-EPROTO);
	if (attest_decode(buf, n, &a) != 0 || memcmp(a.nonce, nonce, 32) != 0 ||
	    ed25519_verify(a.hv_key, buf, ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN) != 0)
		return fail(-EPROTO);
	if (!pem) {
		print_b64(a.hv_key, 32);
		return 0;
	}
	if (ed25519_pub_to_pem(a.hv_key, &text) != 0)
		return fail(-ENOMEM);
	fputs(text, stdout);
	free(text);
	return 0;
}

static int
cmd_ticket(struct bridge_client *c, uint32_t fid, const char *ticket, const char *receipt_out)
{
	uint8_t tk[TICKET_LEN], out[RECEIPT_LEN];
	size_t n;
	int st;

	if (ticket == NULL || read_ticket(ticket, tk) != 0)
		return 2;
	st = bridge_call(c, fid, tk, sizeof(tk), out, sizeof(out), &n);
	if (st != CLV_OK)
		return fail(st);
	if (n == RECEIPT_LEN) {
		struct receipt rc;

		print_b64(out, n);
		if (receipt_decode(out, n, &rc) == 0)
			fprintf(stderr,
				"receipt %llu: %s %s, state %s, key epoch %llu -> %llu, checks "
				"passed 0x%x of 0x%x\n",
				(unsigned long long)rc.seq,
				ticket_type_name(rc.type) ? ticket_type_name(rc.type) : "auto",
				rc.result == 0 ? "done" : "FAILED",
				rc.header_state < 5 ? state_names[rc.header_state] : "?",
				(unsigned long long)rc.epoch_before,
				(unsigned long long)rc.epoch_after, rc.checks_passed,
				rc.checks_run);
		if (receipt_out != NULL && file_write_atomic(receipt_out, out, n, 0644) != 0)
			return 1;
	} else {
		printf("ok\n");
	}
	return 0;
}

/* ---- console: the corporate screen (cleave-hv's console.c is the other end) ---- */

#define CONSOLE_DETACH     0x1d  /* Ctrl-] */
#define CONSOLE_QUIET_MS   500   /* not a tty: after stdin's EOF, exit once quiet this long */
#define CONSOLE_EOF_MAX_MS 10000 /* ... and at most this long after stdin's EOF */

/* What cleave-hv says, then closes, when it will not attach us (console.c). */
static const char *const console_refusals[] = {
	"cleave-hv: console busy\r\n",
	"cleave-hv: console: permission denied\r\n",
};
static const char *const console_refusal_text[] = {
	"the console is busy: another client is attached (one at a time)",
	"permission denied: only cleave-hv's own user may attach to the corporate console",
};

static volatile sig_atomic_t console_signal;
static struct termios console_tio;
static int console_raw;

struct console_session {
	int sock;
	int tty;
	int stdin_open;
	int64_t eof_ms, last_out_ms;
	/* The first bytes are held back while they may still be a refusal line. */
	char hold[64];
	size_t hold_len;
	int holding;
};

static void
on_console_signal(int sig)
{
	console_signal = sig;
}

static void
console_restore_tty(void)
{
	if (console_raw && tcsetattr(STDIN_FILENO, TCSAFLUSH, &console_tio) == 0)
		console_raw = 0;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
write_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;

	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
console_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, e;

	if (str_copy(sa.sun_path, sizeof(sa.sun_path), path) != 0) {
		fprintf(stderr, "cleave-hvctl: console socket path too long: %s\n", path);
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	e = errno;
	if (fd >= 0)
		close(fd);
	if (e == EACCES || e == EPERM)
		fprintf(stderr,
			"cleave-hvctl: cannot attach to %s: permission denied (only cleave-hv's "
			"own user may attach to the corporate console)\n",
			path);
	else if (e == ENOENT || e == ECONNREFUSED)
		fprintf(stderr, "cleave-hvctl: cannot connect to %s: %s (is cleave-hv running?)\n",
			path, strerror(e));
	else
		fprintf(stderr, "cleave-hvctl: cannot connect to %s: %s\n", path, strerror(e));
	return -1;
}

/* Index of the refusal line that hold is a prefix of (whole: equal to), or -1. */
static int
console_refusal(const struct console_session *s, int whole)
{
	for (size_t i = 0; i < ARRAY_SIZE(console_refusals); i++) {
		size_t n = strlen(console_refusals[i]);

		if ((whole ? s->hold_len == n : s->hold_len <= n) &&
		    memcmp(s->hold, console_refusals[i], s->hold_len) == 0)
			return (int)i;
	}
	return -1;
}

/* Console bytes to stdout, holding back what may still be a refusal. 0 or -1. */
static int
console_show(struct console_session *s, const char *buf, size_t n)
{
	size_t k = 0;

	while (s->holding && k < n && s->hold_len < sizeof(s->hold)) {
		s->hold[s->hold_len++] = buf[k++];
		if (console_refusal(s, 0) < 0) {
			s->holding = 0;
			if (write_all(STDOUT_FILENO, s->hold, s->hold_len) != 0)
				return -1;
		}
	}
	return s->holding || k == n ? 0 : write_all(STDOUT_FILENO, buf + k, n - k);
}

/* Keystrokes to cleave-hv; 1 when the user detached (Ctrl-] on a terminal), -1 on failure. */
static int
console_keys(struct console_session *s, const char *buf, size_t n)
{
	const char *esc = s->tty ? memchr(buf, CONSOLE_DETACH, n) : NULL;
	size_t k = esc != NULL ? (size_t)(esc - buf) : n;

	if (k > 0 && write_all(s->sock, buf, k) != 0)
		return -1;
	return esc != NULL;
}

/* The end of the session: cleave-hv closed the connection. Returns the exit code. */
static int
console_closed(struct console_session *s)
{
	int i = s->holding ? console_refusal(s, 1) : -1;

	if (i >= 0) {
		console_restore_tty();
		fprintf(stderr, "cleave-hvctl: %s\n", console_refusal_text[i]);
		return 1;
	}
	if (s->holding && s->hold_len > 0)
		(void)!write_all(STDOUT_FILENO, s->hold, s->hold_len);
	fprintf(stderr, "%s[cleave-hvctl] cleave-hv closed the console%s", s->tty ? "\r\n" : "",
		s->tty ? "\r\n" : "\n");
	return 0;
}

/* One poll round. Returns -2 to go on, or the exit code. */
static int
console_round(struct console_session *s)
{
	struct pollfd p[2] = {{.fd = s->sock, .events = POLLIN},
			      {.fd = s->stdin_open ? STDIN_FILENO : -1, .events = POLLIN}};
	char buf[4096];
	int timeout = -1;
	ssize_t n;

	if (console_signal)
		return 0;
	if (!s->stdin_open) {
		int64_t end =
			MIN(s->last_out_ms + CONSOLE_QUIET_MS, s->eof_ms + CONSOLE_EOF_MAX_MS);

		if (end <= now_ms())
			return 0;
		timeout = (int)(end - now_ms());
	}
	if (poll(p, 2, timeout) < 0)
		return errno == EINTR ? -2 : 1;
	if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
		n = read(s->sock, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			return -2;
		if (n <= 0) /* EOF, or ECONNRESET after a refusal: cleave-hv is done with us */
			return console_closed(s);
		s->last_out_ms = now_ms();
		if (console_show(s, buf, (size_t)n) != 0)
			return 1;
	}
	if (p[1].revents & (POLLIN | POLLHUP | POLLERR | POLLNVAL)) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			return -2;
		if (n > 0) {
			int r = console_keys(s, buf, (size_t)n);

			explicit_bzero(buf, sizeof(buf));
			if (r != 0)
				return r < 0 ? console_closed(s) : 0;
		} else if (s->tty) {
			return 0; /* the terminal went away */
		} else {
			s->stdin_open = 0;
			s->eof_ms = s->last_out_ms = now_ms();
		}
	}
	return -2;
}

static int
cmd_console(const char *sock, const char *csock)
{
	char path[PATH_MAX];
	struct console_session s = {.stdin_open = 1, .holding = 1};
	struct sigaction sa = {.sa_handler = on_console_signal};
	struct termios raw;
	const char *slash;
	int rc;

	if (csock == NULL) {
		slash = strrchr(sock, '/');
		snprintf(path, sizeof(path), "%.*s/console.sock",
			 slash != NULL ? (int)(slash - sock) : 1, slash != NULL ? sock : ".");
		csock = path;
	}
	s.sock = console_connect(csock);
	if (s.sock < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGTERM, &sa, NULL); /* no SA_RESTART: poll returns and the tty is restored */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	s.tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &console_tio) == 0;
	if (s.tty) {
		raw = console_tio;
		cfmakeraw(&raw);
		console_raw = tcsetattr(STDIN_FILENO, TCSAFLUSH, &raw) == 0;
		fprintf(stderr, "[cleave-hvctl] attached; Ctrl-] detaches\r\n");
	}
	while ((rc = console_round(&s)) == -2)
		;
	if (s.tty && rc == 0 && console_signal == 0)
		fprintf(stderr, "\r\n[cleave-hvctl] detached\r\n");
	console_restore_tty();
	close(s.sock);
	return rc;
}

/* 1 for the options that take a value (said "missing value" when given last). */
static int
option_takes_value(const char *a)
{
	return strcmp(a, "--socket") == 0 || strcmp(a, "--ticket") == 0 ||
	       strcmp(a, "--receipt-out") == 0 || strcmp(a, "--console-socket") == 0;
}

struct cli {
	const char *sock, *ticket, *rout, *cmd, *csock, *args[2];
	size_t na;
};

/* Reads the command line into l: -1 to go on, else the exit code (help, version, misuse). */
static int
parse_args(int argc, char **argv, struct cli *l)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--version") == 0) {
			printf("cleave-hvctl %s\n", CLEAVE_VERSION);
			return 0;
		} else if (strcmp(a, "--socket") == 0 && v) {
			l->sock = v, i++;
		} else if (strcmp(a, "--ticket") == 0 && v) {
			l->ticket = v, i++;
		} else if (strcmp(a, "--receipt-out") == 0 && v) {
			l->rout = v, i++;
		} else if (strcmp(a, "--console-socket") == 0 && v) {
			l->csock = v, i++;
		} else if (a[0] == '-' && strcmp(a, "--pem") != 0) {
			/* --pem is pubkey's flag; anything else with a dash we do not know. */
			fprintf(stderr, "cleave-hvctl: %s %s (see --help)\n",
				option_takes_value(a) ? "missing value for" : "unknown option", a);
			return 2;
		} else if (l->cmd == NULL) {
			l->cmd = a;
		} else if (l->na < 2) {
			l->args[l->na++] = a;
		} else {
			usage(stderr);
			return 2;
		}
	}
	return -1;
}

int
main(int argc, char **argv)
{
	struct cli l = {0};
	const char *sock, *ticket, *rout, *cmd, **args = l.args;
	struct bridge_client c;
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	size_t n, na;
	int st, rc = parse_args(argc, argv, &l);

	if (rc >= 0)
		return rc;
	sock = l.sock, ticket = l.ticket, rout = l.rout, cmd = l.cmd, na = l.na;
	if (cmd != NULL && strcmp(cmd, "console") == 0 && na == 0 &&
	    (sock != NULL || l.csock != NULL))
		return cmd_console(sock, l.csock);
	if (sock == NULL && cmd != NULL) {
		fprintf(stderr, "cleave-hvctl: --socket PATH is required: cleave-hv's bridge "
				"socket (by default hv.sock in its --state directory)\n");
		return 2;
	}
	if (cmd == NULL) {
		usage(stderr);
		return 2;
	}
	st = bridge_connect(&c, sock, 10000);
	if (st != 0) {
		fprintf(stderr, "cleave-hvctl: cannot connect to %s: %s (is cleave-hv running?)\n",
			sock, strerror(-st));
		return 1;
	}
	rc = 2;
	if (strcmp(cmd, "status") == 0) {
		rc = cmd_status(&c);
	} else if (strcmp(cmd, "attest") == 0 && na == 1 && strlen(args[0]) == 64) {
		uint8_t nonce[32];
		int ok = 1;

		for (int i = 0; i < 32 && ok; i++) {
			unsigned int byte;

			ok = sscanf(args[0] + 2 * i, "%2x", &byte) == 1;
			nonce[i] = (uint8_t)byte;
		}
		st = ok ? bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n)
			: CLV_E_INVALID_PARAMETER;
		rc = st == CLV_OK ? (print_b64(buf, n), 0) : fail(st);
	} else if (strcmp(cmd, "pubkey") == 0 &&
		   (na == 0 || (na == 1 && strcmp(args[0], "--pem") == 0))) {
		rc = cmd_pubkey(&c, na == 1);
	} else if (strcmp(cmd, "pin") == 0 && na == 2 && strlen(args[1]) < WIRE_ID_LEN) {
		uint8_t req[64] = {0};

		if (b64_decode(req, 32, args[0], strlen(args[0])) != 32) {
			fprintf(stderr, "cleave-hvctl: KEY_B64 must be a base64 Ed25519 key\n");
		} else {
			memcpy(req + 32, args[1], strlen(args[1]));
			st = bridge_call(&c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf),
					 &n);
			rc = st == CLV_OK || st == CLV_E_NOT_REQUIRED ? (printf("pinned\n"), 0)
								      : fail(st);
		}
	} else if (strcmp(cmd, "tpm-identity") == 0 && na == 0) {
		rc = hvctl_tpm_identity(&c);
	} else if (strcmp(cmd, "tpm-activate") == 0 && na == 1) {
		rc = hvctl_tpm_activate(&c, args[0]);
	} else if (strcmp(cmd, "receipts") == 0) {
		st = bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n);
		if (st == CLV_OK && n >= 8) {
			for (size_t k = 0; k < buf[0] && 8 + (k + 1) * RECEIPT_LEN <= n; k++)
				print_b64(buf + 8 + k * RECEIPT_LEN, RECEIPT_LEN);
			rc = 0;
		} else {
			rc = fail(st);
		}
	} else if (strcmp(cmd, "ack") == 0 && na == 1) {
		unsigned long long seq = strtoull(args[0], NULL, 10);
		uint8_t req[8];

		for (int i = 0; i < 8; i++)
			req[i] = (uint8_t)(seq >> (8 * i));
		st = bridge_call(&c, CLV_FN_RECEIPT_ACK, req, 8, buf, sizeof(buf), &n);
		rc = st == CLV_OK ? 0 : fail(st);
	} else {
		static const struct {
			const char *name;
			uint32_t fid;
		} orders[] = {
			{"lock", CLV_FN_LOCK},         {"unlock", CLV_FN_UNLOCK},
			{"rekey", CLV_FN_REKEY},       {"wipe", CLV_FN_WIPE},
			{"lease", CLV_FN_RENEW_LEASE}, {"policy", CLV_FN_SET_POLICY},
		};

		for (size_t i = 0; i < ARRAY_SIZE(orders); i++)
			if (strcmp(cmd, orders[i].name) == 0)
				rc = cmd_ticket(&c, orders[i].fid, ticket, rout);
		if (rc == 2)
			usage(stderr);
	}
	bridge_close(&c);
	return rc;
}

/*
 * An rsyslog collector for the SIEM stream tests (test_siem.c, test_siem_pg.c): Debian's
 * rsyslogd started as the test's own child process on 127.0.0.1 (as user nobody, through
 * setpriv, when the test runs as root), with a configuration, a CA and a certificate of its
 * own in a /tmp/cleave-rsyslog-XXXXXX directory removed when the case ends (imtcp with TLS
 * through the gtls driver, each message's raw text written as a line to a file); no system
 * rsyslog is touched.
 * And the check that what it received is the audit log as GET /api/v1/audit shows it.
 */
#ifndef CLEAVE_SIEMTEST_H
#define CLEAVE_SIEMTEST_H

#include <limits.h>
#include <sys/types.h>

#include "testlib.h"

struct collector {
	char dir[PATH_MAX];
	char out[PATH_MAX + 16]; /* what it received, a message a line */
	unsigned port;
	pid_t pid;
};

/* Why the collector cannot run here (rsyslog, its TLS driver or openssl missing), or NULL. */
const char *collector_skip_reason(void);
/*
 * Makes its directory with the CA, its certificate, a client certificate (client.pem and
 * client.key, signed by the same CA) and the config, on a free port: clients need no
 * certificate, or with mutual_tls one signed by the CA (gtls "x509/certvalid"). 0 or -1.
 */
int collector_init(struct collector *c, int mutual_tls);
/* Starts rsyslogd and waits (bounded, 10 s) until it listens. 0 or -1. */
int collector_start(struct collector *c);
/* SIGTERM, as an operator stopping it; waits for it. */
void collector_stop(struct collector *c);
/* The server settings that stream to c: "siem_target = tls://...\nsiem_ca = ...\n". */
void collector_settings(const struct collector *c, char *out, size_t cap);

/*
 * Checks what c received against the audit log read through admin: every entry up to the
 * head, with its hash and detail, each after the one before, except at most restarts rewinds
 * of at most window entries (the batch a killed sender had sent but not recorded as arrived;
 * window 0: no repeat); checkpoint messages anywhere after the entry they name. Polls up to
 * timeout_s; 0, or -1 with the reason printed.
 */
int collector_wait_stream(const struct collector *c, struct client *admin, int window, int restarts,
			  int timeout_s);
/*
 * Checkpoint messages are checked too: each must follow the entry it names and carry that
 * entry's hash as the API shows it. This gives the entry the newest of them names (0: none).
 */
long long collector_last_checkpoint(const struct collector *c);
/* Lines in path (0 when it does not exist). */
int collector_lines(const char *path);
/*
 * The audit entries among them: signed checkpoints, made on the server's tick, not counted;
 * -1 when a line is neither.
 */
int collector_entry_lines(const char *path);

#endif

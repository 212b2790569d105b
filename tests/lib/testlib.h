/*
 * Helpers for integration tests and benchmarks that drive the real cleave-server: start and stop
 * it in a temporary data directory on 127.0.0.1, talk HTTPS to it with libcurl, and play an
 * enrolled device (Ed25519 device key, a test hypervisor key that signs attestations and
 * receipts, RFC 9421 request signatures). The test runner itself is trun.h (included here).
 * Never used by the product itself.
 */
#ifndef CLEAVE_TESTLIB_H
#define CLEAVE_TESTLIB_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto.h"
#include "trun.h"
#include "wire.h"

/* ---- server process ---- */

struct srv {
	pid_t pid;
	char dir[PATH_MAX]; /* data directory */
	char url[128];      /* https://127.0.0.1:PORT */
	char cacert[PATH_MAX];
	char admin[128]; /* first admin token */
	char log[PATH_MAX];
	char database[512]; /* "": SQLite in dir; else passed as --database (tests/lib/pgtest.h) */
};

/* Makes a fresh data directory under $CLEAVE_TEST_OUT (or /tmp) named after tag. */
int srv_init(struct srv *s, const char *tag);
/*
 * Starts build/bin/cleave-server on 127.0.0.1 (port 0 unless already known) with s->dir and
 * waits (bounded, 15 s) until it answers /healthz. extra: NULL-terminated extra arguments.
 */
int srv_start(struct srv *s, const char *const *extra);
/* Sends sig and waits (bounded, 15 s) for exit; returns the exit status or -1. */
int srv_stop(struct srv *s, int sig);
/*
 * Stops a still running server gracefully (t_stop_graceful: the case fails unless it exits 0),
 * then removes the data directory unless the case failed (logs are kept for inspection).
 */
void srv_cleanup(struct srv *s);

struct pgtest;
/*
 * Puts the server of s on PostgreSQL: a fresh database of cluster pg (tests/lib/pgtest.h)
 * into s->database. Call between srv_init and srv_start; pg NULL: stays on SQLite. 0 or -1.
 */
int srv_use_pg(struct srv *s, struct pgtest *pg);
/*
 * Runs sql on the server's database as an outside tool would (the SQLite file in s->dir, or
 * s->database), never through the server: time passing, another phone. 0 or -1.
 */
int srv_db_exec(struct srv *s, const char *sql);
/* Runs sql the same way and returns column 0 of its first row as an integer; -1 on failure. */
long long srv_db_int(struct srv *s, const char *sql);
/*
 * t_run with every server on PostgreSQL: starts a private cluster, points *env at it (the
 * suite's servers call srv_use_pg with it), runs the cases and removes the cluster. Skips the
 * suite, with the reason, when PostgreSQL cannot run here.
 */
int t_run_pg(const struct t_case *cases, size_t n, int argc, char **argv, struct pgtest **env);

/* ---- HTTPS client ---- */

struct resp {
	long status;
	char *body;
	size_t len;
	double seconds;
	char location[2048];  /* an SSO redirect to the provider is long */
	char set_cookie[512]; /* the Set-Cookie header's value, when one came */
	char headers[2048];   /* the response's header lines as received (truncated to fit) */
};
/* The value of response header name (case-insensitive) into out; 0, or -1 when absent. */
int resp_header(const struct resp *r, const char *name, char *out, size_t cap);

struct client;
/* A keep-alive HTTPS client for s (trusts s->cacert). Bearer may be NULL. */
struct client *client_new(const struct srv *s, const char *bearer);
void client_free(struct client *c);
void client_set_bearer(struct client *c, const char *bearer);
/* Gives up on a request after seconds (default 90) and closes the connection. */
void client_set_timeout(struct client *c, long seconds);
/*
 * Sends one request. headers: NULL-terminated "Name: value" strings, may be NULL. body may be
 * NULL. r is filled (free with resp_free). Returns 0 or -1 on a transport failure.
 */
int client_req(struct client *c, const char *method, const char *path, const char *body,
	       const char *const *headers, struct resp *r);
void resp_free(struct resp *r);
/* Parses r->body as JSON (caller decrefs); NULL when not JSON. */
json_t *resp_json(const struct resp *r);
/* Convenience: the string field name of the JSON body into out; 0 or -1. */
int resp_str(const struct resp *r, const char *name, char *out, size_t cap);

/* ---- simulated device ---- */

struct device_sim {
	struct ed25519_key *key;
	struct ed25519_key *hv;
	char id[32];
	uint64_t nonce;
	uint8_t ticket_key[32];
};

/* Makes fresh device and hypervisor keys. */
int dev_init(struct device_sim *d);
void dev_fini(struct device_sim *d);
/* Builds a signed attestation over nonce with the device's hypervisor key. */
void dev_attest(struct device_sim *d, const uint8_t nonce[32], uint8_t out[ATTEST_LEN]);
/*
 * Enrolls with an enrollment token: gets a nonce, attests, POSTs /device/v1/enroll. Fills d->id
 * on 201. r gets the enroll response (free with resp_free). Returns 0 or -1 (transport).
 */
int dev_enroll(struct device_sim *d, struct client *c, const char *etoken, struct resp *r);
/* Sends a request signed by the device, with created = now + skew_s and the next nonce. */
int dev_req(struct device_sim *d, struct client *c, const char *method, const char *path,
	    const char *body, int64_t skew_s, struct resp *r);
/* Signs a request into hdrs ("Name: value" strings, NULL-terminated; 4 entries). */
void dev_sign(struct device_sim *d, const char *method, const char *path, const char *body,
	      int64_t created, uint64_t nonce, char hdrs[3][600], const char *out[4]);
/* A receipt for a command ticket, signed by the device's hypervisor key. */
void dev_receipt(struct device_sim *d, const uint8_t ticket[TICKET_LEN], int32_t result,
		 uint8_t out[RECEIPT_LEN]);

/* ---- admin shortcuts (each CHECK-free; -1 on failure) ---- */
/* Creates an enrollment token for owner; secret into out. */
int admin_etoken(struct client *admin, const char *owner, int uses, char *out, size_t cap);
/*
 * Makes d (dev_init) and enrolls it for owner with a fresh one-use enrollment token; anon is a
 * client without a token. d->id is filled. 0, or -1 (the answer printed).
 */
int admin_enroll(struct client *admin, struct client *anon, struct device_sim *d,
		 const char *owner);
/* GET path as JSON (caller decrefs): NULL unless 200; *status gets the status or -1. */
json_t *client_get_json(struct client *c, const char *path, long *status);
/* Creates an API token with role; secret into out. */
int admin_token(struct client *admin, const char *role, char *out, size_t cap);
/* The status of command id read through admin into out; "" when it cannot be read. */
void admin_command_status(struct client *admin, const char *id, char *out, size_t cap);
/* Queues a command; its id into out. Returns the HTTP status or -1. */
long admin_command(struct client *admin, const char *device, const char *type, char *out,
		   size_t cap);

#endif

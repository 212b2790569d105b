/*
 * What the agent's commands share: the enrolled session (state directory, identity, device key,
 * nonces, journal, run-time state, the HTTPS client and the bridge to cleave-hv), the signed
 * device-API request, and the entry points of each subcommand. main.c parses arguments and
 * calls these; none of them exits the process.
 */
#ifndef CLEAVE_AGENT_H
#define CLEAVE_AGENT_H

#include <signal.h>
#include <stdint.h>

#include "hvlink.h"
#include "journal.h"
#include "keystore.h"
#include "proto.h"
#include "transport.h"

#define AGENT_VERSION "0.1.0"

/* Exit codes of every subcommand (documented in --help and agent/README.md). */
enum agent_exit {
	AGENT_EXIT_OK = 0,
	AGENT_EXIT_FAIL = 1,    /* failed; the message says why */
	AGENT_EXIT_USAGE = 2,   /* bad command line */
	AGENT_EXIT_REFUSED = 3, /* the server refused (wrong or used token, retired device, ...) */
	AGENT_EXIT_SERVER = 4,  /* server unreachable, or its certificate does not match */
	AGENT_EXIT_HV = 5,      /* cleave-hv is not running or refused */
	AGENT_EXIT_STATE = 6, /* state directory: not enrolled, refused, locked by another agent */
};

struct agent {
	struct agent_dir dir;
	struct identity id;
	struct ed25519_key *key;
	struct nonce_gen nonce;
	struct journal journal;
	struct agent_state st;
	struct http_client *http;
	struct hvlink hv;
	const volatile sig_atomic_t *stop;
	int64_t st_saved_at;       /* when st was last written */
	int retired;               /* a retire was carried out and reported: purge, then stop */
	unsigned journal_gen;      /* counts results reported (prune after each) */
	int report_now;            /* a refresh asks for an immediate check-in */
	uint64_t logged_auto_seq;  /* highest autonomous receipt already logged */
	char receipt_problem[200]; /* the last reason receipts were not taken (logged once) */
	char lease_problem[200];   /* the last reason a lease was not renewed (logged once) */
	int64_t lease_at;          /* when cleave-hv's lease was last renewed (unix s), 0 never */
	int64_t lease_len;         /* how long the server's leases run (s), 0 unknown */
	int64_t attest_sent_at;    /* when an attestation last went with a check-in (unix s) */
	char policy_warned[64];    /* the pending policy last warned about (logged once) */
	int64_t policy_warned_version;
};

/*
 * The socket to use: hv_socket when not NULL, else $CLEAVE_HV_SOCKET, else stored (may be
 * NULL or empty), else HVLINK_DEFAULT_SOCKET. Borrowed.
 */
const char *agent_hv_socket(const char *hv_socket, const char *stored);

/*
 * Opens an enrolled state directory for work: locks it (one agent per directory), loads the
 * identity, device key, nonce floor, state and journal, and prepares the HTTPS client and the
 * bridge. Returns an enum agent_exit (AGENT_EXIT_OK on success) after printing why not.
 */
int agent_open(struct agent *a, const char *dir, const char *hv_socket,
	       const volatile sig_atomic_t *stop);
void agent_close(struct agent *a);
/* Saves the run-time state (DIR/state) now. */
int agent_save_state(struct agent *a);

/*
 * A signed device-API POST (RFC 9421, crypto/httpsig.h) of body to path. Same returns as
 * http_request; r must be released with http_resp_fini.
 */
int agent_post(struct agent *a, const char *path, const char *body, long timeout_s,
	       struct http_resp *r);

/* ---- command.c: the command lifecycle over the journal ---- */

/* Journals a command from the server unless known; *is_new says which. 0 or -errno. */
int command_accept(struct agent *a, const struct proto_command *pc, int *is_new);
/*
 * Moves every journal record as far as it can go now: ack, execute on cleave-hv, report.
 * Returns how many are still waiting (for cleave-hv or the server), or a negative errno when
 * the journal cannot be read or written (the agent must stop: it cannot keep its promises).
 */
int command_step_all(struct agent *a);
/* Whether any record is executing (its outcome not yet known). */
int command_any_executing(struct agent *a);
/*
 * Uploads receipts cleave-hv holds (autonomous lock/wipe and any other not yet acknowledged)
 * and acknowledges what the server accepted. 0, or 1 when something is left for later.
 */
int receipts_sync(struct agent *a);

/* ---- subcommands ---- */

struct enroll_args {
	const char *dir, *server, *token, *ca_cert, *pin, *hv_socket;
	int replace;
};
int agent_enroll(const struct enroll_args *e);
/* The check-in loop until *stop (or one round with once). */
int agent_run(struct agent *a, int once);
int agent_status(const char *dir, const char *hv_socket, int json);
int agent_unenroll(struct agent *a);

#endif

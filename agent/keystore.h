/*
 * The agent's state directory and what it keeps there: the enrolled identity (server, device
 * id, the server's ticket key, the hypervisor key, how to trust the server's TLS certificate),
 * the device's Ed25519 key, the request-signature nonce floor and a few run-time facts (last
 * check-in, applied policy). The directory must be 0700 and every file 0600, owned by us;
 * anything looser is refused, not fixed. The device key never leaves struct ed25519_key.
 * It does not talk to the network or to cleave-hv.
 */
#ifndef CLEAVE_AGENT_KEYSTORE_H
#define CLEAVE_AGENT_KEYSTORE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "util.h"

#define AGENT_URL_MAX   256
#define AGENT_ID_MAX    32 /* device and command ids: at most 31 characters */
#define AGENT_OWNER_MAX 128
#define AGENT_PIN_MAX   96  /* "sha256//" + 44 base64 characters */
#define AGENT_SPKI_MAX  128 /* crypto/hvsig.h HVSIG_SPKI_MAX */

/* The state directory, optionally locked against a second agent process. */
struct agent_dir {
	char path[PATH_MAX];
	int lock_fd; /* -1: not locked */
};

/*
 * Opens path as the state directory: with create, makes it (0700) when missing. Refuses a
 * directory that is not ours or that group or others can access (-EPERM, logged).
 */
int agent_dir_open(struct agent_dir *d, const char *path, int create) __must_check;
/* Takes the directory's lock (DIR/lock, flock). -EBUSY when another agent holds it. */
int agent_dir_lock(struct agent_dir *d) __must_check;
void agent_dir_close(struct agent_dir *d);
/* DIR/name into out; -ENAMETOOLONG when it does not fit. */
int agent_dir_file(const struct agent_dir *d, const char *name, char *out, size_t cap);

struct identity {
	char server[AGENT_URL_MAX]; /* https://host:port, no trailing slash */
	char device_id[AGENT_ID_MAX];
	char owner[AGENT_OWNER_MAX];
	uint8_t server_key[ED25519_PUB_LEN]; /* the server's ticket-signing key */
	uint8_t hv_key[ED25519_PUB_LEN];     /* cleave-hv's identity key, from the attestation */
	int has_ca;                          /* trust DIR/ca.pem (copied at enrollment) */
	char pin[AGENT_PIN_MAX];             /* "sha256//..." or empty */
	char hv_socket[PATH_MAX];            /* the socket used at enrollment */
	int64_t enrolled_at;                 /* unix seconds */
	int pinned;                          /* PIN_OWNER succeeded */
	/* A TPM-resident identity (cleave-hv --tpm): its DER SPKI, whose SHA-256 is hv_key. */
	uint8_t hv_spki[AGENT_SPKI_MAX];
	size_t hv_spki_len; /* 0: the file keystore (hv_key is an Ed25519 key) */
	/* The employee's page of this device ("https://…/portal/clv_pl_…"), or "" (issue 9). */
	char portal_url[AGENT_URL_MAX + 64];
};

/* Whether DIR holds an identity (the file exists; it may still be refused when loaded). */
int identity_exists(const struct agent_dir *d);
/*
 * Loads the identity and, when key is not NULL, the device key (*key owned by the caller, free
 * with ed25519_key_free). -ENOENT when not enrolled, -EPERM/-EBADMSG when refused (logged).
 */
int identity_load(const struct agent_dir *d, struct identity *id,
		  struct ed25519_key **key) __must_check;
/* Writes the identity (and the key, when not NULL) durably. */
int identity_save(const struct agent_dir *d, const struct identity *id,
		  const struct ed25519_key *key) __must_check;
/* Path of the CA certificate kept in DIR (DIR/ca.pem). */
int identity_ca_file(const struct agent_dir *d, char *out, size_t cap);
/*
 * Removes everything the agent keeps in DIR (identity, key, CA copy, nonce, state, journal)
 * and then DIR itself when it is empty. 0 or the first -errno (logged).
 */
int agent_dir_purge(struct agent_dir *d);
/* The same, but DIR and its lock stay (for a new enrollment in the same directory). */
int agent_dir_clear(struct agent_dir *d);

/*
 * Nonces for request signatures (RFC 9421 "nonce", a per-device counter the server accepts
 * once). They follow the wall clock in microseconds and never go below a floor kept in
 * DIR/nonce, which is moved ahead in steps so that most requests need no disk write.
 */
struct nonce_gen {
	char path[PATH_MAX];
	uint64_t last;    /* the last nonce handed out */
	uint64_t ceiling; /* every nonce handed out is below this (durable) */
};

int nonce_open(struct nonce_gen *g, const struct agent_dir *d) __must_check;
/* The next nonce for now_us (wall clock, microseconds). 0 or -errno (floor not saved). */
int nonce_next(struct nonce_gen *g, uint64_t now_us, uint64_t *out) __must_check;

/* Run-time facts the agent reports and `status` shows. */
struct agent_state {
	char policy_name[64]; /* applied policy, "" none */
	int64_t policy_version;
	int64_t last_checkin; /* unix seconds of the last answered check-in, 0 never */
	char last_error[160]; /* the last server problem, "" none */
};

/* Loads DIR/state; a missing file gives the empty state. -EPERM/-EBADMSG when refused. */
int agent_state_load(const struct agent_dir *d, struct agent_state *s) __must_check;
int agent_state_save(const struct agent_dir *d, const struct agent_state *s) __must_check;

#endif

/*
 * Test helpers that drive the real cleave-hv process: start it in a private temporary state
 * directory (with the real guest where /dev/kvm can run it), stop or kill it, play the server
 * (a test ticket key pinned through the bridge, signed tickets, verified receipts), and talk to
 * the corporate guest's console through cleave-hv's console socket. Tests and benchmarks only.
 */
#ifndef CLEAVE_TEST_HVPROC_H
#define CLEAVE_TEST_HVPROC_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "bridge_client.h"
#include "crypto.h"
#include "wire.h"

struct hvproc {
	char dir[PATH_MAX];
	char sock[PATH_MAX + 16];
	char console[PATH_MAX + 16];
	char guest[PATH_MAX + 16];
	const char *extra[8]; /* more cleave-hv arguments, NULL-terminated */
	pid_t pid;
};

/*
 * Makes a fresh private state dir under $CLEAVE_TEST_OUT and starts cleave-hv in it (the real
 * guest when KVM is available, otherwise a dummy image). 0 once its bridge socket answers.
 */
int hvp_init(struct hvproc *p);
/* hvp_init without starting: the state dir and guest image, so p->extra can be set first. */
int hvp_prepare(struct hvproc *p);
/*
 * Starts cleave-hv on p->dir again (after hvp_stop); 0 once the bridge answers (5 s bound,
 * times CLEAVE_TEST_SLOW).
 */
int hvp_start(struct hvproc *p);
/* Starts cleave-hv on p->dir (its stderr to p->dir.log) and returns at once: 0 or -1. */
int hvp_spawn(struct hvproc *p);
/* Sends sig and reaps the process. */
void hvp_stop(struct hvproc *p, int sig);
/* Kills cleave-hv and removes its files unless the current case failed. */
void hvp_cleanup(struct hvproc *p);
/* 1 when the real guest runs under KVM here (p was started with it). */
int hvp_kvm(const struct hvproc *p);

/* A signed ticket of type for device, bound to the hypervisor key hv (arg0: lease end). */
void hvp_ticket(struct ed25519_key *server, const uint8_t hv[32], const char *device, uint16_t type,
		uint64_t counter, uint64_t arg0, uint8_t out[TICKET_LEN]);
/* Sets the offline policy for dev_ord (lock after, wipe after, failed unlocks; 0 = never). */
int hvp_policy(struct bridge_client *c, struct ed25519_key *server, const uint8_t hv[32],
	       uint64_t counter, uint64_t lock_s, uint64_t wipe_s, uint64_t max_failed);
/* Pins a fresh server key for device "dev_ord" and returns the hypervisor key in hv. */
int hvp_pin_new(struct bridge_client *c, struct ed25519_key **server, uint8_t hv[32]);
/*
 * Sends an order for dev_ord with a fresh ticket; checks the receipt's signature and ticket
 * hash and decodes it into rc (raw bytes into raw when not NULL). Returns the call status, or
 * -100 when the receipt does not verify.
 */
int hvp_order(struct bridge_client *c, struct ed25519_key *server, const uint8_t hv[32],
	      uint32_t fid, uint16_t type, uint64_t counter, struct receipt *rc,
	      uint8_t raw[RECEIPT_LEN]);
/*
 * The P-256 SubjectPublicKeyInfo (DER) of a --tpm cleave-hv's identity, which hvp_order then
 * verifies receipts with (for a WIRE_SIG_ECDSA_P256 receipt; Ed25519 ones need no key).
 */
void hvp_tpm_key(const uint8_t *spki, size_t len);
/*
 * The receipts pending in cleave-hv for ticket hash th, each verified as hvp_order does (hv, and
 * the hvp_tpm_key for a P-256 one): their count, the last into *rc; all acknowledged when ack is
 * set (so a long test never fills the pending list). -1 when one does not verify, or on error.
 */
int hvp_receipts_for(struct bridge_client *c, const uint8_t hv[32], const uint8_t th[32],
		     struct receipt *rc, int ack);
/* The hypervisor's state (HV_STATE_*), and its key epoch in *epoch; 0 on error. */
uint32_t hvp_state(struct bridge_client *c, uint64_t *epoch);

/* Attaches to the guest console; waits (bounded) for the prompt. Returns the fd or -1. */
int hvp_console_open(struct hvproc *p, int timeout_ms);
/*
 * Types line into the guest console and collects what the guest prints until its next prompt
 * (without the echoed line and the prompt) into out (NUL-terminated). 0, or -1 on timeout.
 */
int hvp_console_cmd(int fd, const char *line, char *out, size_t cap, int timeout_ms);

/* Reads whatever the console prints until it has been quiet for quiet_ms (total bounded). */
int hvp_console_drain(int fd, char *out, size_t cap, int quiet_ms, int timeout_ms);

#endif

/*
 * cleave-hv's trust state: its identity key (Ed25519 in a file, or the TPM's attestation key
 * with --tpm: trust_tpm.c), the server key pinned at enrollment, the
 * highest ticket counter accepted, the journal of the one order in flight, and the receipt
 * chain. It checks tickets (signature by the pinned key, bound to this hypervisor and device,
 * counter above the last, not expired), signs attestations and receipts, and keeps all of it
 * durable in the private state directory. It does not execute orders: the caller acts between
 * trust_accept (counter and journal in one write) and trust_receipt (receipt in, journal out,
 * in one write).
 */
#ifndef CLEAVE_TRUST_H
#define CLEAVE_TRUST_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "cleave_abi.h"
#include "crypto.h"
#include "wire.h"

#define TRUST_PENDING_MAX 16 /* receipts kept until the server acknowledges them */

/*
 * The journal: the one order accepted and not yet receipted. It is written with the ticket's
 * counter (trust_accept) or alone for an action cleave-hv takes by itself (trust_begin), and
 * cleared in the same write that keeps its receipt (trust_receipt). A restart that finds it
 * carries the order out (each order's steps are idempotent) and signs its one receipt.
 */
struct trust_order {
	uint16_t type;         /* 0: none; TICKET_* of the ticket, or RECEIPT_AUTO_* */
	uint64_t epoch_before; /* the volume's key epoch when the order was accepted */
	uint64_t started_ms;
	uint8_t intent[32];         /* SHA-256 of the ticket, or of an autonomous action's reason */
	uint8_t ticket[TICKET_LEN]; /* the accepted ticket; zero for an autonomous action */
};

#define TRUST_RECEIPT_UNPIN 1u /* trust_receipt also forgets the enrollment (after a wipe) */

struct tpm;

struct trust {
	char dir[PATH_MAX];
	int dirfd;              /* the state directory, for durable_replace */
	struct ed25519_key *id; /* the file keystore's key; NULL with a TPM */
	struct tpm *tpm;        /* borrowed; NULL: the file keystore */
	uint16_t sig_alg;       /* WIRE_SIG_*: Ed25519 (file) or ECDSA P-256 (TPM) */
	uint8_t hv_key[32];     /* the Ed25519 public key, or SHA-256 of the AK's SPKI */
	/*
	 * With a TPM (TPM.md §5): the state counter value this state claims, and whether it is
	 * older than the TPM's (a restored copy): then every ticket is refused (CLV_E_DENIED).
	 */
	uint64_t state_nv;
	int stale;
	/*
	 * With a TPM (TPM.md §4): the lease's end on the TPM clock (ms; 0: no lease) and the TPM's
	 * resetCount when it was granted (another one since: lapsed); the wipe counter before
	 * the journaled wipe, plus one (0: not read yet), for its receipt.
	 */
	uint64_t lease_tpm_end;
	uint64_t lease_tpm_reset;
	uint64_t wipe_before;
	int pinned;
	uint8_t owner[32];
	char device_id[WIRE_ID_LEN];
	uint64_t counter;       /* highest ticket counter accepted (orders, policy) */
	uint64_t lease_counter; /* the same for lease tickets, which count on their own */
	uint64_t receipt_seq;   /* seq of the latest receipt */
	uint8_t last_receipt_hash[32];
	uint64_t lease_until;
	uint64_t policy[4];      /* lock after s, wipe after s, max failed unlocks, version */
	uint64_t failed_unlocks; /* refused unlock tickets while locked, since the last unlock */
	unsigned npending;
	uint8_t pending[TRUST_PENDING_MAX][RECEIPT_LEN];
	struct trust_order order; /* the journal; order.type 0 when empty */
};

/*
 * Loads (or on first use creates) the identity key and trust state in dir (which must exist,
 * mode 0700). A corrupted state file is refused (-EBADMSG), never silently reset. With tpm
 * (borrowed, open; NULL for the file keystore) the identity is the TPM's attestation key and
 * the state is checked against the TPM's state counter (a stale state opens, refusing tickets).
 */
int trust_open(struct trust *t, const char *dir, struct tpm *tpm);
void trust_close(struct trust *t);

/* Signs len bytes of body with the identity key (either algorithm) into sig. 0 or -errno. */
int trust_sign(struct trust *t, const void *body, size_t len, uint8_t sig[WIRE_SIG_LEN]);

/* Pins the server key and device id once: CLV_OK, CLV_E_NOT_REQUIRED (same again), CLV_E_DENIED. */
int trust_pin(struct trust *t, const uint8_t owner[32], const char *device_id);

/*
 * Checks a signed ticket for an order of type want at unix time now. CLV_OK and *out filled,
 * CLV_E_INVALID_STATE before pinning, CLV_E_DENIED for a stale state (TPM.md §5),
 * CLV_E_BAD_TICKET otherwise. Changes nothing.
 */
int trust_check_ticket(const struct trust *t, const uint8_t *buf, size_t len, uint16_t want,
		       uint64_t now, struct ticket *out);
/*
 * Durably records, in one atomic write, that tk was accepted (its counter becomes the floor)
 * and, when o is not NULL, the order it carries (the journal; -EBUSY if one is already in
 * flight). Callers set any values the ticket brings (lease, policy) in t before, so that they
 * become durable in the same write. On failure the counter and journal are as before (the
 * caller puts its values back) and -errno.
 */
int trust_accept(struct trust *t, const struct ticket *tk, const struct trust_order *o);
/* Durably journals an order cleave-hv takes by itself (no ticket). -EBUSY, -errno on failure. */
int trust_begin(struct trust *t, const struct trust_order *o);

/* A signed attestation over nonce. */
int trust_attest(struct trust *t, const uint8_t nonce[32], uint16_t state,
		 const uint8_t measurement[32], uint64_t key_epoch, uint64_t now_ms,
		 uint8_t out[ATTEST_LEN]);

/*
 * Signs rc (hv_key, device_id, seq and prev_hash are filled in here), appends it to the chain
 * and to the pending list and clears the journal, in one durable write; with
 * TRUST_RECEIPT_UNPIN in flags the same write forgets the pinned server key and device, and
 * with them the ticket counter, lease, policy and failed-unlock count (after a wipe the device
 * enrolls again under a new id; identity and receipts are kept). rc->command_id / ticket_hash
 * come from the caller. On failure nothing changed (in memory or on disk) and -errno.
 */
int trust_receipt(struct trust *t, struct receipt *rc, uint8_t out[RECEIPT_LEN], unsigned flags);
/* Drops pending receipts with seq <= upto (the server has them). */
int trust_receipts_ack(struct trust *t, uint64_t upto);
/* Stores lease end and policy limits (from accepted lease and policy tickets), durably. */
int trust_save(struct trust *t);

/*
 * The TPM side of the trust state (trust_tpm.c; TPM.md §5). trust_tpm_identity loads (or
 * creates) the AK and sets hv_key and sig_alg. trust_tpm_bind compares state_nv with the
 * TPM's state counter after the state was loaded: equal is current, one ahead finishes the
 * increment a crash interrupted, behind (or a pinned state never bound) marks it stale; a
 * fresh, unpinned state takes the TPM's value. trust_tpm_advance increments the counter to
 * state_nv after a write that stored it. 0 or -errno.
 */
int trust_tpm_identity(struct trust *t);
int trust_tpm_bind(struct trust *t);
int trust_tpm_advance(struct trust *t);
int trust_tpm_sign(struct trust *t, const void *body, size_t len, uint8_t sig[WIRE_SIG_LEN]);

#endif

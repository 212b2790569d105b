/*
 * cleave-hv's trust state: its Ed25519 identity key, the server key pinned at enrollment, the
 * highest ticket counter accepted, and the receipt chain. It checks tickets (signature by the
 * pinned key, bound to this hypervisor and device, counter above the last, not expired), signs
 * attestations and receipts, and keeps all of it durable in the private state directory. It
 * does not execute orders: the caller acts between trust_check_ticket and trust_receipt.
 */
#ifndef CLEAVE_TRUST_H
#define CLEAVE_TRUST_H

#include <limits.h>
#include <stdint.h>

#include "cleave_abi.h"
#include "crypto.h"
#include "wire.h"

#define TRUST_PENDING_MAX 16 /* receipts kept until the server acknowledges them */

struct trust {
	char dir[PATH_MAX];
	struct ed25519_key *id;
	uint8_t id_pub[32];
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
};

/*
 * Loads (or on first use creates) the identity key and trust state in dir (which must exist,
 * mode 0700). A corrupted state file is refused (-EBADMSG), never silently reset.
 */
int trust_open(struct trust *t, const char *dir);
void trust_close(struct trust *t);

/* Pins the server key and device id once: CLV_OK, CLV_E_NOT_REQUIRED (same again), CLV_E_DENIED. */
int trust_pin(struct trust *t, const uint8_t owner[32], const char *device_id);

/*
 * Checks a signed ticket for an order of type want at unix time now. CLV_OK and *out filled,
 * CLV_E_INVALID_STATE before pinning, CLV_E_BAD_TICKET otherwise. Changes nothing.
 */
int trust_check_ticket(const struct trust *t, const uint8_t *buf, size_t len, uint16_t want,
		       uint64_t now, struct ticket *out);
/* Durably records that tk was accepted (its counter becomes the floor) before acting on it. */
int trust_accept(struct trust *t, const struct ticket *tk);

/* A signed attestation over nonce. */
int trust_attest(struct trust *t, const uint8_t nonce[32], uint16_t state,
		 const uint8_t measurement[32], uint64_t key_epoch, uint64_t now_ms,
		 uint8_t out[ATTEST_LEN]);

/*
 * Signs rc (hv_key, device_id, seq and prev_hash are filled in here), appends it to the chain
 * and to the pending list, durably. rc->command_id / ticket_hash come from the caller.
 */
int trust_receipt(struct trust *t, struct receipt *rc, uint8_t out[RECEIPT_LEN]);
/* Drops pending receipts with seq <= upto (the server has them). */
int trust_receipts_ack(struct trust *t, uint64_t upto);
/*
 * Forgets the pinned server key and device, and with them the ticket counter, lease, policy and
 * failed-unlock count
 * (after a wipe the device enrolls again under a new id). Identity and receipts are kept.
 */
int trust_unpin(struct trust *t);
/* Stores lease end and policy limits (from accepted lease and policy tickets), durably. */
int trust_save(struct trust *t);

#endif

/*
 * Byte formats shared by cleave-server, cleave-agent and cleave-hv: the command ticket the server
 * signs, the attestation and the receipt the hypervisor signs. Fixed layouts, little-endian
 * integers, NUL-padded ASCII ids, reserved bytes that must be zero. schema/wire-formats.md is the
 * normative description; this file encodes and decodes exactly that. libc only: signing and
 * verifying happen in crypto/, over the bytes these functions produce.
 */
#ifndef CLEAVE_WIRE_H
#define CLEAVE_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_KEY_LEN  32 /* raw Ed25519 public key, or SHA-256 of a P-256 key's SPKI (below) */
#define WIRE_SIG_LEN  64 /* Ed25519 signature, or ECDSA P-256 r || s */
#define WIRE_HASH_LEN 32 /* SHA-256 */
#define WIRE_ID_LEN   32 /* ASCII id field, NUL-padded; ids are at most 31 characters */

#define TICKET_BODY_LEN  192
#define TICKET_LEN       (TICKET_BODY_LEN + WIRE_SIG_LEN) /* 256 */
#define ATTEST_BODY_LEN  192
#define ATTEST_LEN       (ATTEST_BODY_LEN + WIRE_SIG_LEN) /* 256 */
#define RECEIPT_BODY_LEN 256
#define RECEIPT_LEN      (RECEIPT_BODY_LEN + WIRE_SIG_LEN) /* 320 */

#define TICKET_MAGIC   "CLVTICK1"
#define ATTEST_MAGIC   "CLVATTS1"
#define RECEIPT_MAGIC  "CLVRCPT1"
#define WIRE_VERSION   1 /* tickets; receipts signed with Ed25519 */
#define ATTEST_VERSION 2 /* attestations: version 2 carries the applied policy's digest */
/* Versions that carry a signature algorithm (and, in receipts, the TPM wipe counter). */
#define ATTEST_VERSION_ALG  3
#define RECEIPT_VERSION_ALG 2
/*
 * A TPM device's enrollment quote (hypercall-bridge/TPM.md §3) has the qualifying data
 * SHA-256(WIRE_QUOTE_LABEL || the attestation's ATTEST_BODY_LEN bytes); the label's NUL is not
 * hashed.
 */
#define WIRE_QUOTE_LABEL "cleave-quote"

/*
 * How the hypervisor signs its attestations and receipts. Ed25519 (the file keystore): hv_key is
 * the raw public key, the records keep their first versions. ECDSA P-256 with SHA-256 (a key
 * inside a TPM, hypercall-bridge/TPM.md): hv_key is SHA-256 of the key's DER
 * SubjectPublicKeyInfo, the signature is r || s (32 bytes each, big-endian), and the records
 * use the versions above. Tickets carry hv_key the same way either way.
 */
enum {
	WIRE_SIG_ED25519 = 0,
	WIRE_SIG_ECDSA_P256 = 1,
};
#define POLICY_DIGEST_LEN 16
/*
 * Attestation flags (version 3 only, the u16 after sig_alg). STALE_STATE: the hypervisor's
 * trust state is older than its TPM's state counter (a restored copy of the state directory):
 * it refuses every ticket until the device is enrolled again (hypercall-bridge/TPM.md §5).
 */
#define ATTEST_FLAG_STALE_STATE 1u
#define ATTEST_FLAGS_KNOWN      ATTEST_FLAG_STALE_STATE

/* Ticket types. Numbers are frozen: never renumber, only add. */
enum {
	TICKET_WIPE = 1,
	TICKET_LOCK = 2,
	TICKET_UNLOCK = 3,
	TICKET_REKEY = 4,
	TICKET_RETIRE = 5,
	TICKET_REFRESH = 6,
	TICKET_POLICY = 7,
	TICKET_LEASE = 8,
};
/* Receipt types above the ticket range: actions cleave-hv took on its own (lease lapse). */
enum {
	RECEIPT_AUTO_LOCK = 0x101,
	RECEIPT_AUTO_WIPE = 0x102,
};

/* Corporate-half states as reported by attestations and receipts. */
enum {
	HV_STATE_ACTIVE = 1,
	HV_STATE_LOCKED = 2,
	HV_STATE_WIPE_PENDING = 3,
	HV_STATE_ERASED = 4,
};

/* Bits of a receipt's checks_run / checks_passed. */
enum {
	CHECK_INTENT_RECORDED = 1u << 0,
	CHECK_VM_STOPPED = 1u << 1,
	CHECK_RAM_ZEROED = 1u << 2,
	CHECK_KEYS_ZEROED = 1u << 3,
	CHECK_ROOT_EPOCH_DESTROYED = 1u << 4,
	CHECK_HEADERS_ERASED = 1u << 5,
	CHECK_OLD_KEY_REJECTED = 1u << 6,
	CHECK_NO_FOREIGN_WRITES = 1u << 7,
	CHECK_FRESH_VOLUME = 1u << 8,
};

struct ticket {
	uint16_t type;
	char device_id[WIRE_ID_LEN];  /* NUL-terminated, at most 31 characters */
	char command_id[WIRE_ID_LEN]; /* NUL-terminated, at most 31 characters */
	uint8_t hv_key[WIRE_KEY_LEN];
	uint64_t counter;
	uint64_t issued_at;  /* unix seconds */
	uint64_t expires_at; /* unix seconds */
	uint64_t args[4];    /* meaning per type, see schema/wire-formats.md; zero when unused */
	uint8_t sig[WIRE_SIG_LEN];
};

struct attestation {
	uint16_t state;
	uint8_t nonce[32];
	uint8_t hv_key[WIRE_KEY_LEN];
	uint8_t measurement[WIRE_HASH_LEN];
	uint8_t owner_key[WIRE_KEY_LEN]; /* pinned server key, all zero before enrollment */
	uint64_t key_epoch;
	uint64_t ticket_counter; /* highest ticket counter accepted */
	uint64_t receipt_seq;    /* sequence number of the latest receipt */
	uint64_t time_ms;        /* unix milliseconds */
	/* SHA-256 of the applied policy ticket's args, first 16 bytes (policy_digest()) */
	uint8_t policy_digest[POLICY_DIGEST_LEN];
	uint16_t sig_alg; /* WIRE_SIG_* */
	uint16_t flags;   /* ATTEST_FLAG_*; always 0 with Ed25519 (versions 1 and 2) */
	uint8_t sig[WIRE_SIG_LEN];
};

struct receipt {
	uint16_t type;
	int32_t result; /* 0 done, negative hypercall ABI error */
	uint8_t hv_key[WIRE_KEY_LEN];
	char device_id[WIRE_ID_LEN];
	char command_id[WIRE_ID_LEN];       /* empty for autonomous actions */
	uint8_t ticket_hash[WIRE_HASH_LEN]; /* SHA-256 of the 256-byte ticket; zero if autonomous */
	uint64_t ticket_counter;
	uint64_t seq;
	uint64_t epoch_before;
	uint64_t epoch_after;
	uint32_t header_state;
	uint32_t checks_run;
	uint32_t checks_passed;
	uint64_t started_ms;
	uint64_t finished_ms;
	uint8_t prev_hash[WIRE_HASH_LEN];
	uint16_t sig_alg; /* WIRE_SIG_* */
	/* The TPM's wipe counter before and after the action; 0 with the file keystore (Ed25519). */
	uint64_t wipe_counter_before;
	uint64_t wipe_counter_after;
	uint8_t sig[WIRE_SIG_LEN];
};

/*
 * Encoders write the full signed layout (body followed by sig) into out. They return 0, or
 * -EINVAL when an id does not fit or is not printable ASCII. Signing code encodes with a zero
 * sig, signs the first *_BODY_LEN bytes, then stores the signature in the last 64 bytes.
 */
int ticket_encode(const struct ticket *t, uint8_t out[TICKET_LEN]);
int attest_encode(const struct attestation *a, uint8_t out[ATTEST_LEN]);
int receipt_encode(const struct receipt *r, uint8_t out[RECEIPT_LEN]);

/*
 * Decoders take exactly len bytes and return 0, or -EINVAL when len is wrong, the magic or
 * version differs, a reserved field is not zero, an id is not NUL-padded printable ASCII, or a
 * type is unknown. They never verify signatures.
 */
int ticket_decode(const uint8_t *buf, size_t len, struct ticket *t);
int attest_decode(const uint8_t *buf, size_t len, struct attestation *a);
int receipt_decode(const uint8_t *buf, size_t len, struct receipt *r);

/*
 * The checks a receipt of this type must show as passed to prove the action
 * (schema/wire-formats.md 4.4): a CHECK_* bit set; 0 when the result alone is the proof.
 */
uint32_t receipt_required_checks(uint16_t type);
/* Upper-case name of one CHECK_* bit ("HEADERS_ERASED"); "?" for an unassigned bit. */
const char *check_name(uint32_t bit);

/* The 32 bytes a policy digest hashes: a policy ticket's four args, little-endian u64 each. */
void policy_args_encode(const uint64_t args[4], uint8_t out[32]);

/* Lower-case names of ticket types ("wipe", ...); NULL for an unknown number, 0 when unknown. */
const char *ticket_type_name(uint16_t type);
uint16_t ticket_type_from_name(const char *name);

#endif

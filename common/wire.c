/*
 * Encoders and decoders for the three signed byte formats of the trust chain (ticket,
 * attestation, receipt), exactly as schema/wire-formats.md lays them out. Decoders check every
 * byte that has a fixed meaning (magic, version, lengths, ids, types, states, reserved zeros) so
 * a decoded struct re-encodes to the same bytes. Signatures are neither made nor checked here.
 */
#include "wire.h"
#include "le.h"

#include <errno.h>
#include <string.h>

/* Field offsets, named as in schema/wire-formats.md. */
#define OFF_MAGIC   0
#define OFF_VERSION 8
#define OFF_TYPE    10 /* ticket and receipt type, attestation state */

#define TK_FLAGS    12
#define TK_DEVICE   16
#define TK_COMMAND  48
#define TK_HV_KEY   80
#define TK_COUNTER  112
#define TK_ISSUED   120
#define TK_EXPIRES  128
#define TK_ARGS     136
#define TK_RESERVED 168
#define TK_RES_LEN  24

#define AT_RESERVED0 12 /* version 3: u16 sig_alg, u16 flags */
#define AT_NONCE     16
#define AT_HV_KEY    48
#define AT_MEASURE   80
#define AT_OWNER     112
#define AT_EPOCH     144
#define AT_TCOUNTER  152
#define AT_RSEQ      160
#define AT_TIME      168
#define AT_POLICY    176 /* version 2: policy digest, 16 bytes */

#define RC_RESULT     12
#define RC_HV_KEY     16
#define RC_DEVICE     48
#define RC_COMMAND    80
#define RC_THASH      112
#define RC_TCOUNTER   144
#define RC_SEQ        152
#define RC_EPOCH_B    160
#define RC_EPOCH_A    168
#define RC_HSTATE     176
#define RC_CHECKS_RUN 180
#define RC_CHECKS_OK  184
#define RC_RESERVED0  188 /* version 2: u16 sig_alg, u16 reserved */
#define RC_STARTED    192
#define RC_FINISHED   200
#define RC_PREV_HASH  208
#define RC_RESERVED1  240 /* version 2: u64 wipe_counter_before, u64 wipe_counter_after */
#define RC_RES1_LEN   16

#define MAGIC_LEN 8

static const char *const type_names[] = {
	[TICKET_WIPE] = "wipe",     [TICKET_LOCK] = "lock",     [TICKET_UNLOCK] = "unlock",
	[TICKET_REKEY] = "rekey",   [TICKET_RETIRE] = "retire", [TICKET_REFRESH] = "refresh",
	[TICKET_POLICY] = "policy", [TICKET_LEASE] = "lease",
};

/* Two's complement on the wire, converted without implementation-defined casts. */
static int32_t
i32_from_u32(uint32_t v)
{
	if (v <= INT32_MAX)
		return (int32_t)v;
	return (int32_t)(v - 0x80000000u) + INT32_MIN;
}

static int
all_zero(const uint8_t *p, size_t n)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= p[i];
	return acc == 0;
}

/*
 * Length of a valid id held in a struct field: NUL-terminated within WIRE_ID_LEN, every character
 * printable ASCII without space (0x21..0x7e). Returns the length or -EINVAL.
 */
static int
id_check_str(const char *id)
{
	size_t n = strnlen(id, WIRE_ID_LEN);

	if (n == WIRE_ID_LEN)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c < 0x21 || c > 0x7e)
			return -EINVAL;
	}
	return (int)n;
}

/* Writes a validated id and its NUL padding. */
static void
id_put(uint8_t *p, const char *id, size_t n)
{
	memcpy(p, id, n);
	memset(p + n, 0, WIRE_ID_LEN - n);
}

/*
 * Validates an id field on the wire (printable characters, then only NULs, at least one NUL) and
 * copies it NUL-terminated into dst. Returns its length or -EINVAL.
 */
static int
id_get(char dst[WIRE_ID_LEN], const uint8_t *p)
{
	size_t n = 0;

	while (n < WIRE_ID_LEN && p[n] != 0) {
		if (p[n] < 0x21 || p[n] > 0x7e)
			return -EINVAL;
		n++;
	}
	if (n == WIRE_ID_LEN || !all_zero(p + n, WIRE_ID_LEN - n))
		return -EINVAL;
	memcpy(dst, p, n);
	memset(dst + n, 0, WIRE_ID_LEN - n);
	return (int)n;
}

static int
ticket_type_valid(uint16_t type)
{
	return type >= TICKET_WIPE && type <= TICKET_LEASE;
}

/* How many leading args a ticket type gives a meaning to; the rest must be zero. */
static unsigned
ticket_args_used(uint16_t type)
{
	switch (type) {
	case TICKET_POLICY:
		return 4;
	case TICKET_LEASE:
		return 1;
	default:
		return 0;
	}
}

static int
ticket_args_valid(uint16_t type, const uint64_t args[4])
{
	for (unsigned i = ticket_args_used(type); i < 4; i++) {
		if (args[i] != 0)
			return 0;
	}
	return 1;
}

static int
state_valid(uint32_t state)
{
	return state >= HV_STATE_ACTIVE && state <= HV_STATE_ERASED;
}

static int
receipt_type_auto(uint16_t type)
{
	return type == RECEIPT_AUTO_LOCK || type == RECEIPT_AUTO_WIPE;
}

static void
header_put(uint8_t *out, const char *magic, uint16_t version, uint16_t type_or_state)
{
	memcpy(out + OFF_MAGIC, magic, MAGIC_LEN);
	put16(out + OFF_VERSION, version);
	put16(out + OFF_TYPE, type_or_state);
}

/* The record's version when its length and magic are right and it is v1 or v2; else -EINVAL. */
static int
header_check(const uint8_t *buf, size_t len, size_t want, const char *magic, uint16_t v1,
	     uint16_t v2)
{
	uint16_t v;

	if (buf == NULL || len != want)
		return -EINVAL;
	v = get16(buf + OFF_VERSION);
	if (memcmp(buf + OFF_MAGIC, magic, MAGIC_LEN) != 0 || (v != v1 && v != v2))
		return -EINVAL;
	return v;
}

int
ticket_encode(const struct ticket *t, uint8_t out[TICKET_LEN])
{
	int dn = id_check_str(t->device_id), cn = id_check_str(t->command_id);

	if (dn <= 0 || cn <= 0 || !ticket_type_valid(t->type) ||
	    !ticket_args_valid(t->type, t->args))
		return -EINVAL;
	memset(out, 0, TICKET_LEN);
	header_put(out, TICKET_MAGIC, WIRE_VERSION, t->type);
	id_put(out + TK_DEVICE, t->device_id, (size_t)dn);
	id_put(out + TK_COMMAND, t->command_id, (size_t)cn);
	memcpy(out + TK_HV_KEY, t->hv_key, WIRE_KEY_LEN);
	put64(out + TK_COUNTER, t->counter);
	put64(out + TK_ISSUED, t->issued_at);
	put64(out + TK_EXPIRES, t->expires_at);
	for (int i = 0; i < 4; i++)
		put64(out + TK_ARGS + 8 * i, t->args[i]);
	memcpy(out + TICKET_BODY_LEN, t->sig, WIRE_SIG_LEN);
	return 0;
}

int
ticket_decode(const uint8_t *buf, size_t len, struct ticket *t)
{
	struct ticket tmp;

	if (header_check(buf, len, TICKET_LEN, TICKET_MAGIC, WIRE_VERSION, WIRE_VERSION) < 0)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.type = get16(buf + OFF_TYPE);
	if (!ticket_type_valid(tmp.type) || get32(buf + TK_FLAGS) != 0 ||
	    !all_zero(buf + TK_RESERVED, TK_RES_LEN))
		return -EINVAL;
	if (id_get(tmp.device_id, buf + TK_DEVICE) <= 0 ||
	    id_get(tmp.command_id, buf + TK_COMMAND) <= 0)
		return -EINVAL;
	memcpy(tmp.hv_key, buf + TK_HV_KEY, WIRE_KEY_LEN);
	tmp.counter = get64(buf + TK_COUNTER);
	tmp.issued_at = get64(buf + TK_ISSUED);
	tmp.expires_at = get64(buf + TK_EXPIRES);
	for (int i = 0; i < 4; i++)
		tmp.args[i] = get64(buf + TK_ARGS + 8 * i);
	if (!ticket_args_valid(tmp.type, tmp.args))
		return -EINVAL;
	memcpy(tmp.sig, buf + TICKET_BODY_LEN, WIRE_SIG_LEN);
	*t = tmp;
	return 0;
}

int
attest_encode(const struct attestation *a, uint8_t out[ATTEST_LEN])
{
	if (!state_valid(a->state) ||
	    (a->sig_alg != WIRE_SIG_ED25519 && a->sig_alg != WIRE_SIG_ECDSA_P256) ||
	    (a->flags & ~ATTEST_FLAGS_KNOWN) != 0 || (a->sig_alg == WIRE_SIG_ED25519 && a->flags))
		return -EINVAL;
	memset(out, 0, ATTEST_LEN);
	if (a->sig_alg == WIRE_SIG_ED25519) {
		header_put(out, ATTEST_MAGIC, ATTEST_VERSION, a->state);
	} else {
		header_put(out, ATTEST_MAGIC, ATTEST_VERSION_ALG, a->state);
		put16(out + AT_RESERVED0, a->sig_alg);
		put16(out + AT_RESERVED0 + 2, a->flags);
	}
	memcpy(out + AT_NONCE, a->nonce, sizeof(a->nonce));
	memcpy(out + AT_HV_KEY, a->hv_key, WIRE_KEY_LEN);
	memcpy(out + AT_MEASURE, a->measurement, WIRE_HASH_LEN);
	memcpy(out + AT_OWNER, a->owner_key, WIRE_KEY_LEN);
	put64(out + AT_EPOCH, a->key_epoch);
	put64(out + AT_TCOUNTER, a->ticket_counter);
	put64(out + AT_RSEQ, a->receipt_seq);
	put64(out + AT_TIME, a->time_ms);
	memcpy(out + AT_POLICY, a->policy_digest, POLICY_DIGEST_LEN);
	memcpy(out + ATTEST_BODY_LEN, a->sig, WIRE_SIG_LEN);
	return 0;
}

int
attest_decode(const uint8_t *buf, size_t len, struct attestation *a)
{
	struct attestation tmp;
	int v = header_check(buf, len, ATTEST_LEN, ATTEST_MAGIC, ATTEST_VERSION,
			     ATTEST_VERSION_ALG);

	if (v < 0)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.state = get16(buf + OFF_TYPE);
	if (!state_valid(tmp.state))
		return -EINVAL;
	/* One encoding per content: version 3 only for an algorithm other than Ed25519. */
	if (v == ATTEST_VERSION
		    ? get32(buf + AT_RESERVED0) != 0
		    : get16(buf + AT_RESERVED0) != WIRE_SIG_ECDSA_P256 ||
			      (get16(buf + AT_RESERVED0 + 2) & ~ATTEST_FLAGS_KNOWN) != 0)
		return -EINVAL;
	tmp.sig_alg = v == ATTEST_VERSION ? WIRE_SIG_ED25519 : WIRE_SIG_ECDSA_P256;
	tmp.flags = v == ATTEST_VERSION ? 0 : get16(buf + AT_RESERVED0 + 2);
	memcpy(tmp.nonce, buf + AT_NONCE, sizeof(tmp.nonce));
	memcpy(tmp.hv_key, buf + AT_HV_KEY, WIRE_KEY_LEN);
	memcpy(tmp.measurement, buf + AT_MEASURE, WIRE_HASH_LEN);
	memcpy(tmp.owner_key, buf + AT_OWNER, WIRE_KEY_LEN);
	tmp.key_epoch = get64(buf + AT_EPOCH);
	tmp.ticket_counter = get64(buf + AT_TCOUNTER);
	tmp.receipt_seq = get64(buf + AT_RSEQ);
	tmp.time_ms = get64(buf + AT_TIME);
	memcpy(tmp.policy_digest, buf + AT_POLICY, POLICY_DIGEST_LEN);
	memcpy(tmp.sig, buf + ATTEST_BODY_LEN, WIRE_SIG_LEN);
	*a = tmp;
	return 0;
}

/*
 * Rules that tie a receipt's type to its ids: a receipt for a ticket names the device and the
 * command; an autonomous one names the device only and carries no ticket hash.
 */
static int
receipt_ids_valid(uint16_t type, int dn, int cn, const uint8_t thash[WIRE_HASH_LEN])
{
	if (dn <= 0 || cn < 0)
		return 0;
	if (ticket_type_valid(type))
		return cn > 0;
	if (receipt_type_auto(type))
		return cn == 0 && all_zero(thash, WIRE_HASH_LEN);
	return 0;
}

int
receipt_encode(const struct receipt *r, uint8_t out[RECEIPT_LEN])
{
	int dn = id_check_str(r->device_id), cn = id_check_str(r->command_id);

	if (!receipt_ids_valid(r->type, dn, cn, r->ticket_hash) || !state_valid(r->header_state) ||
	    (r->checks_passed & ~r->checks_run) != 0)
		return -EINVAL;
	/* Ed25519 receipts stay version 1, which has no room for the TPM's counter. */
	if (r->sig_alg == WIRE_SIG_ED25519
		    ? r->wipe_counter_before != 0 || r->wipe_counter_after != 0
		    : r->sig_alg != WIRE_SIG_ECDSA_P256)
		return -EINVAL;
	memset(out, 0, RECEIPT_LEN);
	if (r->sig_alg == WIRE_SIG_ED25519) {
		header_put(out, RECEIPT_MAGIC, WIRE_VERSION, r->type);
	} else {
		header_put(out, RECEIPT_MAGIC, RECEIPT_VERSION_ALG, r->type);
		put16(out + RC_RESERVED0, r->sig_alg);
		put64(out + RC_RESERVED1, r->wipe_counter_before);
		put64(out + RC_RESERVED1 + 8, r->wipe_counter_after);
	}
	put32(out + RC_RESULT, (uint32_t)r->result);
	memcpy(out + RC_HV_KEY, r->hv_key, WIRE_KEY_LEN);
	id_put(out + RC_DEVICE, r->device_id, (size_t)dn);
	id_put(out + RC_COMMAND, r->command_id, (size_t)cn);
	memcpy(out + RC_THASH, r->ticket_hash, WIRE_HASH_LEN);
	put64(out + RC_TCOUNTER, r->ticket_counter);
	put64(out + RC_SEQ, r->seq);
	put64(out + RC_EPOCH_B, r->epoch_before);
	put64(out + RC_EPOCH_A, r->epoch_after);
	put32(out + RC_HSTATE, r->header_state);
	put32(out + RC_CHECKS_RUN, r->checks_run);
	put32(out + RC_CHECKS_OK, r->checks_passed);
	put64(out + RC_STARTED, r->started_ms);
	put64(out + RC_FINISHED, r->finished_ms);
	memcpy(out + RC_PREV_HASH, r->prev_hash, WIRE_HASH_LEN);
	memcpy(out + RECEIPT_BODY_LEN, r->sig, WIRE_SIG_LEN);
	return 0;
}

int
receipt_decode(const uint8_t *buf, size_t len, struct receipt *r)
{
	struct receipt tmp;
	int dn, cn;
	int v = header_check(buf, len, RECEIPT_LEN, RECEIPT_MAGIC, WIRE_VERSION,
			     RECEIPT_VERSION_ALG);

	if (v < 0)
		return -EINVAL;
	memset(&tmp, 0, sizeof(tmp));
	tmp.type = get16(buf + OFF_TYPE);
	if (v == WIRE_VERSION) {
		if (get32(buf + RC_RESERVED0) != 0 || !all_zero(buf + RC_RESERVED1, RC_RES1_LEN))
			return -EINVAL;
	} else {
		if (get16(buf + RC_RESERVED0) != WIRE_SIG_ECDSA_P256 ||
		    get16(buf + RC_RESERVED0 + 2) != 0)
			return -EINVAL;
		tmp.sig_alg = WIRE_SIG_ECDSA_P256;
		tmp.wipe_counter_before = get64(buf + RC_RESERVED1);
		tmp.wipe_counter_after = get64(buf + RC_RESERVED1 + 8);
	}
	dn = id_get(tmp.device_id, buf + RC_DEVICE);
	cn = id_get(tmp.command_id, buf + RC_COMMAND);
	memcpy(tmp.ticket_hash, buf + RC_THASH, WIRE_HASH_LEN);
	tmp.header_state = get32(buf + RC_HSTATE);
	tmp.checks_run = get32(buf + RC_CHECKS_RUN);
	tmp.checks_passed = get32(buf + RC_CHECKS_OK);
	if (!receipt_ids_valid(tmp.type, dn, cn, tmp.ticket_hash) ||
	    !state_valid(tmp.header_state) || (tmp.checks_passed & ~tmp.checks_run) != 0)
		return -EINVAL;
	tmp.result = i32_from_u32(get32(buf + RC_RESULT));
	memcpy(tmp.hv_key, buf + RC_HV_KEY, WIRE_KEY_LEN);
	tmp.ticket_counter = get64(buf + RC_TCOUNTER);
	tmp.seq = get64(buf + RC_SEQ);
	tmp.epoch_before = get64(buf + RC_EPOCH_B);
	tmp.epoch_after = get64(buf + RC_EPOCH_A);
	tmp.started_ms = get64(buf + RC_STARTED);
	tmp.finished_ms = get64(buf + RC_FINISHED);
	memcpy(tmp.prev_hash, buf + RC_PREV_HASH, WIRE_HASH_LEN);
	memcpy(tmp.sig, buf + RECEIPT_BODY_LEN, WIRE_SIG_LEN);
	*r = tmp;
	return 0;
}

const char *
ticket_type_name(uint16_t type)
{
	if (!ticket_type_valid(type))
		return NULL;
	return type_names[type];
}

uint16_t
ticket_type_from_name(const char *name)
{
	if (name == NULL)
		return 0;
	for (uint16_t t = TICKET_WIPE; t <= TICKET_LEASE; t++) {
		if (strcmp(name, type_names[t]) == 0)
			return t;
	}
	return 0;
}

/* What a crypto-erase proves, whoever ordered it (wire-formats.md 4.4). */
#define ERASE_CHECKS                                                                               \
	(CHECK_INTENT_RECORDED | CHECK_KEYS_ZEROED | CHECK_ROOT_EPOCH_DESTROYED |                  \
	 CHECK_HEADERS_ERASED | CHECK_OLD_KEY_REJECTED | CHECK_FRESH_VOLUME)

uint32_t
receipt_required_checks(uint16_t type)
{
	switch (type) {
	case TICKET_WIPE:
	case TICKET_RETIRE:
	case RECEIPT_AUTO_WIPE:
		return ERASE_CHECKS;
	case TICKET_LOCK:
	case RECEIPT_AUTO_LOCK:
		return CHECK_KEYS_ZEROED;
	default:
		return 0;
	}
}

const char *
check_name(uint32_t bit)
{
	static const char *const names[] = {
		"INTENT_RECORDED",  "VM_STOPPED",           "RAM_ZEROED",
		"KEYS_ZEROED",      "ROOT_EPOCH_DESTROYED", "HEADERS_ERASED",
		"OLD_KEY_REJECTED", "NO_FOREIGN_WRITES",    "FRESH_VOLUME",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (bit == 1u << i)
			return names[i];
	return "?";
}

void
policy_args_encode(const uint64_t args[4], uint8_t out[32])
{
	for (int i = 0; i < 4; i++)
		put64(out + 8 * i, args[i]);
}

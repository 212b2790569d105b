/*
 * Unit tests for common/wire.c against the byte layouts of schema/wire-formats.md: golden images
 * checked offset by offset, round trips, and one defect per case (every reserved byte, magic,
 * version, length, ids, types, states) that the decoders must reject. Signatures are opaque
 * bytes here; crypto is tested elsewhere.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "crypto.h"
#include "wire.h"

struct range {
	size_t off;
	size_t len;
};

static void
fill(uint8_t *p, size_t n, uint8_t start)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(start + i);
}

static uint64_t
le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static unsigned
le16(const uint8_t *p)
{
	return (unsigned)p[0] | (unsigned)p[1] << 8;
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
assert_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(p[i], 0);
}

/* Asserts that field [off, off+32) holds id followed by NUL padding. */
static void
assert_id(const uint8_t *p, const char *id)
{
	size_t n = strlen(id);

	assert_memory_equal(p, id, n);
	assert_zero(p + n, WIRE_ID_LEN - n);
}

static void
sample_ticket(struct ticket *t)
{
	memset(t, 0, sizeof(*t));
	t->type = TICKET_POLICY;
	memcpy(t->device_id, "dev_0123456789abcdef", sizeof("dev_0123456789abcdef"));
	memcpy(t->command_id, "cmd_42", sizeof("cmd_42"));
	fill(t->hv_key, sizeof(t->hv_key), 0x80);
	t->counter = 0x0102030405060708ull;
	t->issued_at = 1700000000;
	t->expires_at = 1700000600;
	t->args[0] = 3600;
	t->args[1] = 86400;
	t->args[2] = 10;
	t->args[3] = 7;
	fill(t->sig, sizeof(t->sig), 0xc0);
}

static void
sample_attest(struct attestation *a)
{
	memset(a, 0, sizeof(*a));
	a->state = HV_STATE_LOCKED;
	fill(a->nonce, sizeof(a->nonce), 0x10);
	fill(a->hv_key, sizeof(a->hv_key), 0x30);
	fill(a->measurement, sizeof(a->measurement), 0x50);
	fill(a->owner_key, sizeof(a->owner_key), 0x70);
	a->key_epoch = 3;
	a->ticket_counter = 0x1122334455667788ull;
	a->receipt_seq = 9;
	a->time_ms = 1700000000123ull;
	fill(a->policy_digest, sizeof(a->policy_digest), 0x90);
	fill(a->sig, sizeof(a->sig), 0xa0);
}

static void
sample_receipt(struct receipt *r)
{
	memset(r, 0, sizeof(*r));
	r->type = TICKET_WIPE;
	r->result = -5;
	fill(r->hv_key, sizeof(r->hv_key), 0x20);
	memcpy(r->device_id, "dev_a", sizeof("dev_a"));
	memcpy(r->command_id, "cmd_b", sizeof("cmd_b"));
	fill(r->ticket_hash, sizeof(r->ticket_hash), 0x40);
	r->ticket_counter = 17;
	r->seq = 4;
	r->epoch_before = 5;
	r->epoch_after = 6;
	r->header_state = HV_STATE_ERASED;
	r->checks_run = 0x1ff;
	r->checks_passed = 0x0ff;
	r->started_ms = 1700000000000ull;
	r->finished_ms = 1700000000042ull;
	fill(r->prev_hash, sizeof(r->prev_hash), 0x60);
	fill(r->sig, sizeof(r->sig), 0xb0);
}

static void
test_wire_ticket_golden_layout(void **state)
{
	struct ticket t;
	uint8_t b[TICKET_LEN];

	(void)state;
	sample_ticket(&t);
	assert_int_equal(TICKET_LEN, 256);
	assert_int_equal(ticket_encode(&t, b), 0);
	assert_memory_equal(b, "CLVTICK1", 8);
	assert_int_equal(b[8], 1);
	assert_int_equal(b[9], 0);
	assert_int_equal(b[10], 7);
	assert_int_equal(b[11], 0);
	assert_zero(b + 12, 4);
	assert_id(b + 16, "dev_0123456789abcdef");
	assert_id(b + 48, "cmd_42");
	assert_memory_equal(b + 80, t.hv_key, 32);
	static const uint8_t counter_le[8] = {8, 7, 6, 5, 4, 3, 2, 1};
	assert_memory_equal(b + 112, counter_le, 8);
	assert_int_equal(le64(b + 120), 1700000000);
	assert_int_equal(le64(b + 128), 1700000600);
	assert_int_equal(le64(b + 136), 3600);
	assert_int_equal(le64(b + 144), 86400);
	assert_int_equal(le64(b + 152), 10);
	assert_int_equal(le64(b + 160), 7);
	assert_zero(b + 168, 24);
	assert_memory_equal(b + 192, t.sig, 64);
}

/* The example of schema/wire-formats.md §2.5, byte for byte. */
static void
test_wire_ticket_matches_spec_example(void **state)
{
	static const char hex[] =
		"434c565449434b3101000800000000006465765f376633610000000000000000"
		"00000000000000000000000000000000636d645f303030310000000000000000"
		"00000000000000000000000000000000a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"
		"b0b1b2b3b4b5b6b7b8b9babbbcbdbebf0c0000000000000000f1536500000000"
		"10ff536500000000802b5d650000000000000000000000000000000000000000"
		"0000000000000000000000000000000000000000000000000000000000000000";
	uint8_t want[TICKET_BODY_LEN], b[TICKET_LEN];
	struct ticket t;

	(void)state;
	assert_int_equal(sizeof(hex) - 1, 2 * TICKET_BODY_LEN);
	for (size_t i = 0; i < TICKET_BODY_LEN; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char c = hex[2 * i + (size_t)j];

			v = v << 4 | (unsigned)(c <= '9' ? c - '0' : c - 'a' + 10);
		}
		want[i] = (uint8_t)v;
	}
	memset(&t, 0, sizeof(t));
	t.type = TICKET_LEASE;
	memcpy(t.device_id, "dev_7f3a", sizeof("dev_7f3a"));
	memcpy(t.command_id, "cmd_0001", sizeof("cmd_0001"));
	fill(t.hv_key, sizeof(t.hv_key), 0xa0);
	t.counter = 12;
	t.issued_at = 1700000000;
	t.expires_at = 1700003600;
	t.args[0] = 1700604800;
	assert_int_equal(ticket_encode(&t, b), 0);
	assert_memory_equal(b, want, TICKET_BODY_LEN);
}

static void
test_wire_ticket_round_trip(void **state)
{
	struct ticket t, d;
	uint8_t b[TICKET_LEN], b2[TICKET_LEN];

	(void)state;
	for (uint16_t type = TICKET_WIPE; type <= TICKET_LEASE; type++) {
		sample_ticket(&t);
		t.type = type;
		if (type != TICKET_POLICY) {
			memset(t.args, 0, sizeof(t.args));
			if (type == TICKET_LEASE)
				t.args[0] = 1700086400;
		}
		assert_int_equal(ticket_encode(&t, b), 0);
		memset(&d, 0x55, sizeof(d));
		assert_int_equal(ticket_decode(b, sizeof(b), &d), 0);
		assert_int_equal(d.type, type);
		assert_string_equal(d.device_id, t.device_id);
		assert_string_equal(d.command_id, t.command_id);
		assert_memory_equal(d.hv_key, t.hv_key, 32);
		assert_true(d.counter == t.counter);
		assert_true(d.issued_at == t.issued_at);
		assert_true(d.expires_at == t.expires_at);
		assert_memory_equal(d.args, t.args, sizeof(t.args));
		assert_memory_equal(d.sig, t.sig, 64);
		assert_int_equal(ticket_encode(&d, b2), 0);
		assert_memory_equal(b, b2, sizeof(b));
	}
}

/* Flips every byte of the given ranges, one at a time, and expects decode to fail. */
static void
expect_each_byte_rejected(uint8_t *b, size_t len, const struct range *r, size_t nr,
			  int (*decode)(const uint8_t *, size_t, void *), void *out)
{
	for (size_t i = 0; i < nr; i++) {
		for (size_t o = r[i].off; o < r[i].off + r[i].len; o++) {
			uint8_t saved = b[o];

			b[o] ^= 0x01;
			assert_int_equal(decode(b, len, out), -EINVAL);
			b[o] = saved;
		}
	}
	assert_int_equal(decode(b, len, out), 0);
}

static int
dec_ticket(const uint8_t *b, size_t n, void *out)
{
	return ticket_decode(b, n, out);
}

static int
dec_attest(const uint8_t *b, size_t n, void *out)
{
	return attest_decode(b, n, out);
}

static int
dec_receipt(const uint8_t *b, size_t n, void *out)
{
	return receipt_decode(b, n, out);
}

static void
test_wire_ticket_rejects_reserved_magic_version(void **state)
{
	static const struct range r[] = {{0, 8}, {8, 2}, {12, 4}, {168, 24}};
	struct ticket t;
	uint8_t b[TICKET_LEN];

	(void)state;
	sample_ticket(&t);
	assert_int_equal(ticket_encode(&t, b), 0);
	expect_each_byte_rejected(b, sizeof(b), r, sizeof(r) / sizeof(r[0]), dec_ticket, &t);
	/* The high byte of version too: version 0x0101 is not 1. */
	b[9] = 1;
	assert_int_equal(ticket_decode(b, sizeof(b), &t), -EINVAL);
}

static void
test_wire_ticket_rejects_length(void **state)
{
	struct ticket t;
	uint8_t b[TICKET_LEN + 1];

	(void)state;
	sample_ticket(&t);
	assert_int_equal(ticket_encode(&t, b), 0);
	b[TICKET_LEN] = 0;
	assert_int_equal(ticket_decode(b, TICKET_LEN - 1, &t), -EINVAL);
	assert_int_equal(ticket_decode(b, TICKET_LEN + 1, &t), -EINVAL);
	assert_int_equal(ticket_decode(b, 0, &t), -EINVAL);
	assert_int_equal(ticket_decode(NULL, TICKET_LEN, &t), -EINVAL);
	assert_int_equal(ticket_decode(b, TICKET_LEN, &t), 0);
}

static void
test_wire_ticket_rejects_bad_ids(void **state)
{
	struct ticket t;
	uint8_t b[TICKET_LEN], bad[TICKET_LEN];

	(void)state;
	sample_ticket(&t);
	assert_int_equal(ticket_encode(&t, b), 0);
	for (size_t field = 16; field <= 48; field += 32) {
		/* Garbage after the terminating NUL. */
		memcpy(bad, b, sizeof(b));
		bad[field + 31] = 'x';
		assert_int_equal(ticket_decode(bad, sizeof(bad), &t), -EINVAL);
		/* 32 characters, no NUL at all. */
		memset(bad + field, 'a', 32);
		assert_int_equal(ticket_decode(bad, sizeof(bad), &t), -EINVAL);
		/* 31 characters then NUL: the longest id. */
		bad[field + 31] = 0;
		assert_int_equal(ticket_decode(bad, sizeof(bad), &t), 0);
		/* Space, DEL, control and 8-bit bytes are not id characters. */
		static const uint8_t nonprint[] = {0x20, 0x7f, 0x0a, 0x80, 0xff};
		for (size_t i = 0; i < sizeof(nonprint); i++) {
			bad[field + 3] = nonprint[i];
			assert_int_equal(ticket_decode(bad, sizeof(bad), &t), -EINVAL);
		}
		/* Empty id. */
		memcpy(bad, b, sizeof(b));
		memset(bad + field, 0, 32);
		assert_int_equal(ticket_decode(bad, sizeof(bad), &t), -EINVAL);
	}
}

static void
test_wire_ticket_rejects_unknown_type(void **state)
{
	static const uint16_t bad[] = {0, 9, 0x100, RECEIPT_AUTO_LOCK, RECEIPT_AUTO_WIPE, 0xffff};
	struct ticket t;
	uint8_t b[TICKET_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		sample_ticket(&t);
		assert_int_equal(ticket_encode(&t, b), 0);
		b[10] = (uint8_t)bad[i];
		b[11] = (uint8_t)(bad[i] >> 8);
		assert_int_equal(ticket_decode(b, sizeof(b), &t), -EINVAL);
		sample_ticket(&t);
		t.type = bad[i];
		assert_int_equal(ticket_encode(&t, b), -EINVAL);
	}
}

static void
test_wire_ticket_rejects_unused_args(void **state)
{
	struct ticket t;
	uint8_t b[TICKET_LEN];

	(void)state;
	sample_ticket(&t);
	t.type = TICKET_WIPE;
	assert_int_equal(ticket_encode(&t, b), -EINVAL);
	memset(t.args, 0, sizeof(t.args));
	assert_int_equal(ticket_encode(&t, b), 0);
	for (size_t i = 0; i < 32; i++) {
		b[136 + i] = 1;
		assert_int_equal(ticket_decode(b, sizeof(b), &t), -EINVAL);
		b[136 + i] = 0;
	}
	/* A lease uses arg0 only. */
	b[10] = TICKET_LEASE;
	b[136] = 1;
	assert_int_equal(ticket_decode(b, sizeof(b), &t), 0);
	assert_int_equal(t.args[0], 1);
	b[144] = 1;
	assert_int_equal(ticket_decode(b, sizeof(b), &t), -EINVAL);
}

static void
test_wire_ticket_encode_rejects_bad_ids(void **state)
{
	struct ticket t;
	uint8_t b[TICKET_LEN];

	(void)state;
	sample_ticket(&t);
	memset(t.device_id, 'a', sizeof(t.device_id)); /* no NUL within 32 bytes */
	assert_int_equal(ticket_encode(&t, b), -EINVAL);
	sample_ticket(&t);
	t.command_id[0] = '\0';
	assert_int_equal(ticket_encode(&t, b), -EINVAL);
	sample_ticket(&t);
	t.command_id[1] = ' ';
	assert_int_equal(ticket_encode(&t, b), -EINVAL);
	/* Bytes after the NUL in the struct do not leak onto the wire. */
	sample_ticket(&t);
	t.command_id[20] = 'z';
	assert_int_equal(ticket_encode(&t, b), 0);
	assert_id(b + 48, "cmd_42");
}

static void
test_wire_attest_golden_layout(void **state)
{
	struct attestation a;
	uint8_t b[ATTEST_LEN];

	(void)state;
	sample_attest(&a);
	assert_int_equal(ATTEST_LEN, 256);
	assert_int_equal(attest_encode(&a, b), 0);
	assert_memory_equal(b, "CLVATTS1", 8);
	assert_int_equal(b[8], 2); /* version 2: the policy digest */
	assert_int_equal(b[9], 0);
	assert_int_equal(b[10], HV_STATE_LOCKED);
	assert_int_equal(b[11], 0);
	assert_zero(b + 12, 4);
	assert_memory_equal(b + 16, a.nonce, 32);
	assert_memory_equal(b + 48, a.hv_key, 32);
	assert_memory_equal(b + 80, a.measurement, 32);
	assert_memory_equal(b + 112, a.owner_key, 32);
	assert_int_equal(le64(b + 144), 3);
	static const uint8_t counter_le[8] = {0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11};
	assert_memory_equal(b + 152, counter_le, 8);
	assert_int_equal(le64(b + 160), 9);
	assert_int_equal(le64(b + 168), 1700000000123ull);
	assert_memory_equal(b + 176, a.policy_digest, 16);
	assert_memory_equal(b + 192, a.sig, 64);
}

static void
test_wire_attest_round_trip(void **state)
{
	struct attestation a, d;
	uint8_t b[ATTEST_LEN], b2[ATTEST_LEN];

	(void)state;
	for (uint16_t s = HV_STATE_ACTIVE; s <= HV_STATE_ERASED; s++) {
		sample_attest(&a);
		a.state = s;
		assert_int_equal(attest_encode(&a, b), 0);
		assert_int_equal(attest_decode(b, sizeof(b), &d), 0);
		assert_int_equal(d.state, s);
		assert_memory_equal(d.nonce, a.nonce, 32);
		assert_memory_equal(d.owner_key, a.owner_key, 32);
		assert_true(d.ticket_counter == a.ticket_counter && d.time_ms == a.time_ms);
		assert_int_equal(attest_encode(&d, b2), 0);
		assert_memory_equal(b, b2, sizeof(b));
	}
}

/* Version 1 (reserved bytes where the digest is now) is refused: a reader never guesses. */
static void
test_wire_attest_v1_refused_and_digest_vector(void **state)
{
	static const uint64_t args[4] = {3600, 86400, 5, 2};
	uint8_t b[ATTEST_LEN], enc[32], d[16];
	struct attestation a;

	(void)state;
	sample_attest(&a);
	assert_int_equal(attest_encode(&a, b), 0);
	b[8] = 1;
	assert_int_equal(attest_decode(b, sizeof(b), &a), -EINVAL);
	/* wire-formats.md 3.2: the args as four le64, SHA-256, first 16 bytes */
	policy_args_encode(args, enc);
	assert_int_equal(le64(enc), 3600);
	assert_int_equal(le64(enc + 24), 2);
	crypto_policy_digest(args, d);
	{
		uint8_t h[32];

		crypto_sha256(enc, sizeof(enc), h);
		assert_memory_equal(d, h, 16);
	}
}

static void
test_wire_attest_rejects_defects(void **state)
{
	static const struct range r[] = {{0, 8}, {8, 2}, {12, 4}};
	struct attestation a;
	uint8_t b[ATTEST_LEN];

	(void)state;
	sample_attest(&a);
	assert_int_equal(attest_encode(&a, b), 0);
	expect_each_byte_rejected(b, sizeof(b), r, sizeof(r) / sizeof(r[0]), dec_attest, &a);
	assert_int_equal(attest_decode(b, ATTEST_LEN - 1, &a), -EINVAL);
	assert_int_equal(attest_decode(b, ATTEST_LEN + 1, &a), -EINVAL);
	/* A ticket is not an attestation even though both are 256 bytes. */
	memcpy(b, TICKET_MAGIC, 8);
	assert_int_equal(attest_decode(b, sizeof(b), &a), -EINVAL);
	static const uint16_t bad_states[] = {0, 5, 0x100, 0xffff};
	for (size_t i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
		sample_attest(&a);
		a.state = bad_states[i];
		assert_int_equal(attest_encode(&a, b), -EINVAL);
		a.state = HV_STATE_ACTIVE;
		assert_int_equal(attest_encode(&a, b), 0);
		b[10] = (uint8_t)bad_states[i];
		b[11] = (uint8_t)(bad_states[i] >> 8);
		assert_int_equal(attest_decode(b, sizeof(b), &a), -EINVAL);
	}
}

static void
test_wire_receipt_golden_layout(void **state)
{
	struct receipt r;
	uint8_t b[RECEIPT_LEN];

	(void)state;
	sample_receipt(&r);
	assert_int_equal(RECEIPT_LEN, 320);
	assert_int_equal(receipt_encode(&r, b), 0);
	assert_memory_equal(b, "CLVRCPT1", 8);
	assert_int_equal(b[8], 1);
	assert_int_equal(b[9], 0);
	assert_int_equal(b[10], TICKET_WIPE);
	assert_int_equal(b[11], 0);
	static const uint8_t minus5[4] = {0xfb, 0xff, 0xff, 0xff};
	assert_memory_equal(b + 12, minus5, 4);
	assert_memory_equal(b + 16, r.hv_key, 32);
	assert_id(b + 48, "dev_a");
	assert_id(b + 80, "cmd_b");
	assert_memory_equal(b + 112, r.ticket_hash, 32);
	assert_int_equal(le64(b + 144), 17);
	assert_int_equal(le64(b + 152), 4);
	assert_int_equal(le64(b + 160), 5);
	assert_int_equal(le64(b + 168), 6);
	assert_int_equal(le32(b + 176), HV_STATE_ERASED);
	assert_int_equal(le32(b + 180), 0x1ff);
	assert_int_equal(le32(b + 184), 0x0ff);
	assert_zero(b + 188, 4);
	assert_int_equal(le64(b + 192), 1700000000000ull);
	assert_int_equal(le64(b + 200), 1700000000042ull);
	assert_memory_equal(b + 208, r.prev_hash, 32);
	assert_zero(b + 240, 16);
	assert_memory_equal(b + 256, r.sig, 64);
}

static void
test_wire_receipt_round_trip(void **state)
{
	static const int32_t results[] = {0, -1, -5, INT32_MIN, INT32_MAX};
	struct receipt r, d;
	uint8_t b[RECEIPT_LEN], b2[RECEIPT_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(results) / sizeof(results[0]); i++) {
		sample_receipt(&r);
		r.result = results[i];
		assert_int_equal(receipt_encode(&r, b), 0);
		assert_int_equal(receipt_decode(b, sizeof(b), &d), 0);
		assert_int_equal(d.result, results[i]);
		assert_int_equal(d.type, r.type);
		assert_string_equal(d.device_id, "dev_a");
		assert_string_equal(d.command_id, "cmd_b");
		assert_memory_equal(d.prev_hash, r.prev_hash, 32);
		assert_true(d.finished_ms == r.finished_ms && d.epoch_after == r.epoch_after);
		assert_int_equal(receipt_encode(&d, b2), 0);
		assert_memory_equal(b, b2, sizeof(b));
	}
	/* An autonomous wipe: no command, no ticket hash. */
	sample_receipt(&r);
	r.type = RECEIPT_AUTO_WIPE;
	memset(r.command_id, 0, sizeof(r.command_id));
	memset(r.ticket_hash, 0, sizeof(r.ticket_hash));
	assert_int_equal(receipt_encode(&r, b), 0);
	assert_int_equal(b[10], 0x02);
	assert_int_equal(b[11], 0x01);
	assert_zero(b + 80, 64);
	assert_int_equal(receipt_decode(b, sizeof(b), &d), 0);
	assert_int_equal(d.type, RECEIPT_AUTO_WIPE);
	assert_string_equal(d.command_id, "");
}

static void
test_wire_receipt_rejects_defects(void **state)
{
	static const struct range r[] = {{0, 8}, {8, 2}, {188, 4}, {240, 16}};
	struct receipt rc;
	uint8_t b[RECEIPT_LEN];

	(void)state;
	sample_receipt(&rc);
	assert_int_equal(receipt_encode(&rc, b), 0);
	expect_each_byte_rejected(b, sizeof(b), r, sizeof(r) / sizeof(r[0]), dec_receipt, &rc);
	assert_int_equal(receipt_decode(b, RECEIPT_LEN - 1, &rc), -EINVAL);
	assert_int_equal(receipt_decode(b, TICKET_LEN, &rc), -EINVAL);
	/* Empty device id, garbage after an id's NUL. */
	b[48] = 0;
	assert_int_equal(receipt_decode(b, sizeof(b), &rc), -EINVAL);
	b[48] = 'd';
	b[80 + 31] = 'x';
	assert_int_equal(receipt_decode(b, sizeof(b), &rc), -EINVAL);
	b[80 + 31] = 0;
	assert_int_equal(receipt_decode(b, sizeof(b), &rc), 0);
}

static void
test_wire_receipt_rejects_bad_semantics(void **state)
{
	static const uint16_t bad_types[] = {0, 9, 0x100, 0x103, 0xffff};
	struct receipt r;
	uint8_t b[RECEIPT_LEN];

	(void)state;
	for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
		sample_receipt(&r);
		r.type = bad_types[i];
		assert_int_equal(receipt_encode(&r, b), -EINVAL);
	}
	/* A receipt for a ticket names its command. */
	sample_receipt(&r);
	r.command_id[0] = '\0';
	assert_int_equal(receipt_encode(&r, b), -EINVAL);
	/* An autonomous receipt names none and hashes no ticket. */
	sample_receipt(&r);
	r.type = RECEIPT_AUTO_LOCK;
	assert_int_equal(receipt_encode(&r, b), -EINVAL);
	memset(r.command_id, 0, sizeof(r.command_id));
	assert_int_equal(receipt_encode(&r, b), -EINVAL);
	memset(r.ticket_hash, 0, sizeof(r.ticket_hash));
	assert_int_equal(receipt_encode(&r, b), 0);
	b[112] = 1;
	assert_int_equal(receipt_decode(b, sizeof(b), &r), -EINVAL);
	b[112] = 0;
	b[80] = 'c';
	assert_int_equal(receipt_decode(b, sizeof(b), &r), -EINVAL);
	b[80] = 0;
	assert_int_equal(receipt_decode(b, sizeof(b), &r), 0);
	/* Header state outside 1..4, in either direction. */
	sample_receipt(&r);
	r.header_state = 0;
	assert_int_equal(receipt_encode(&r, b), -EINVAL);
	r.header_state = HV_STATE_ACTIVE;
	assert_int_equal(receipt_encode(&r, b), 0);
	b[176] = 5;
	assert_int_equal(receipt_decode(b, sizeof(b), &r), -EINVAL);
	b[176] = 1;
	b[179] = 1;
	assert_int_equal(receipt_decode(b, sizeof(b), &r), -EINVAL);
	/* A check cannot pass without having run. */
	sample_receipt(&r);
	r.checks_passed = 0x200;
	assert_int_equal(receipt_encode(&r, b), -EINVAL);
	r.checks_passed = 0;
	assert_int_equal(receipt_encode(&r, b), 0);
	b[184 + 1] = 0x04; /* passed bit 10, never run */
	assert_int_equal(receipt_decode(b, sizeof(b), &r), -EINVAL);
}

/* A TPM-signed attestation: version 3, the algorithm at 12, everything else where it was. */
static void
test_wire_attest_ecdsa_version_3(void **state)
{
	struct attestation a, d;
	uint8_t b[ATTEST_LEN], b2[ATTEST_LEN];

	(void)state;
	sample_attest(&a);
	a.sig_alg = WIRE_SIG_ECDSA_P256;
	assert_int_equal(attest_encode(&a, b), 0);
	assert_int_equal(le16(b + 8), ATTEST_VERSION_ALG);
	assert_int_equal(le16(b + 12), WIRE_SIG_ECDSA_P256);
	assert_zero(b + 14, 2);
	assert_memory_equal(b + 48, a.hv_key, 32);
	assert_int_equal(attest_decode(b, sizeof(b), &d), 0);
	assert_int_equal(d.sig_alg, WIRE_SIG_ECDSA_P256);
	assert_int_equal(attest_encode(&d, b2), 0);
	assert_memory_equal(b, b2, sizeof(b));
	/* One encoding per content: v3 naming Ed25519, an unknown algorithm, reserved bytes. */
	b[12] = WIRE_SIG_ED25519;
	assert_int_equal(attest_decode(b, sizeof(b), &d), -EINVAL);
	b[12] = 2;
	assert_int_equal(attest_decode(b, sizeof(b), &d), -EINVAL);
	b[12] = WIRE_SIG_ECDSA_P256;
	/* flags: STALE_STATE is known, any other bit is refused */
	b[14] = ATTEST_FLAG_STALE_STATE;
	assert_int_equal(attest_decode(b, sizeof(b), &d), 0);
	assert_int_equal(d.flags, ATTEST_FLAG_STALE_STATE);
	assert_int_equal(attest_encode(&d, b2), 0);
	assert_memory_equal(b, b2, sizeof(b));
	b[14] = 2;
	assert_int_equal(attest_decode(b, sizeof(b), &d), -EINVAL);
	b[14] = 0;
	b[15] = 1;
	assert_int_equal(attest_decode(b, sizeof(b), &d), -EINVAL);
	b[15] = 0;
	/* v2 (Ed25519) with an algorithm in its reserved bytes */
	b[8] = ATTEST_VERSION;
	assert_int_equal(attest_decode(b, sizeof(b), &d), -EINVAL);
	a.sig_alg = 2;
	assert_int_equal(attest_encode(&a, b), -EINVAL);
	/* Ed25519 records have no room for flags */
	a.sig_alg = WIRE_SIG_ED25519;
	a.flags = ATTEST_FLAG_STALE_STATE;
	assert_int_equal(attest_encode(&a, b), -EINVAL);
}

/* A TPM-signed receipt: version 2, the algorithm at 188, the TPM's wipe counter at 240. */
static void
test_wire_receipt_ecdsa_version_2(void **state)
{
	struct receipt r, d;
	uint8_t b[RECEIPT_LEN], b2[RECEIPT_LEN];

	(void)state;
	sample_receipt(&r);
	r.sig_alg = WIRE_SIG_ECDSA_P256;
	r.wipe_counter_before = 7;
	r.wipe_counter_after = 8;
	assert_int_equal(receipt_encode(&r, b), 0);
	assert_int_equal(le16(b + 8), RECEIPT_VERSION_ALG);
	assert_int_equal(le16(b + 188), WIRE_SIG_ECDSA_P256);
	assert_zero(b + 190, 2);
	assert_int_equal(le64(b + 240), 7);
	assert_int_equal(le64(b + 248), 8);
	assert_int_equal(receipt_decode(b, sizeof(b), &d), 0);
	assert_true(d.sig_alg == WIRE_SIG_ECDSA_P256 && d.wipe_counter_before == 7 &&
		    d.wipe_counter_after == 8);
	assert_int_equal(receipt_encode(&d, b2), 0);
	assert_memory_equal(b, b2, sizeof(b));
	b[188] = WIRE_SIG_ED25519;
	assert_int_equal(receipt_decode(b, sizeof(b), &d), -EINVAL);
	b[188] = WIRE_SIG_ECDSA_P256;
	b[191] = 1;
	assert_int_equal(receipt_decode(b, sizeof(b), &d), -EINVAL);
	b[191] = 0;
	/* version 1 has no counter: one there is refused, and Ed25519 cannot carry one */
	b[8] = WIRE_VERSION;
	assert_int_equal(receipt_decode(b, sizeof(b), &d), -EINVAL);
	r.sig_alg = WIRE_SIG_ED25519;
	assert_int_equal(receipt_encode(&r, b), -EINVAL);
	r.wipe_counter_before = r.wipe_counter_after = 0;
	assert_int_equal(receipt_encode(&r, b), 0);
	assert_int_equal(le16(b + 8), WIRE_VERSION);
}

static void
test_wire_type_names(void **state)
{
	static const char *const names[] = {"wipe",   "lock",    "unlock", "rekey",
					    "retire", "refresh", "policy", "lease"};

	(void)state;
	for (uint16_t t = TICKET_WIPE; t <= TICKET_LEASE; t++) {
		assert_string_equal(ticket_type_name(t), names[t - 1]);
		assert_int_equal(ticket_type_from_name(names[t - 1]), t);
	}
	assert_null(ticket_type_name(0));
	assert_null(ticket_type_name(9));
	assert_null(ticket_type_name(RECEIPT_AUTO_WIPE));
	assert_int_equal(ticket_type_from_name("WIPE"), 0);
	assert_int_equal(ticket_type_from_name(""), 0);
	assert_int_equal(ticket_type_from_name("wipe "), 0);
	assert_int_equal(ticket_type_from_name(NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wire_ticket_golden_layout),
		cmocka_unit_test(test_wire_ticket_matches_spec_example),
		cmocka_unit_test(test_wire_ticket_round_trip),
		cmocka_unit_test(test_wire_ticket_rejects_reserved_magic_version),
		cmocka_unit_test(test_wire_ticket_rejects_length),
		cmocka_unit_test(test_wire_ticket_rejects_bad_ids),
		cmocka_unit_test(test_wire_ticket_rejects_unknown_type),
		cmocka_unit_test(test_wire_ticket_rejects_unused_args),
		cmocka_unit_test(test_wire_ticket_encode_rejects_bad_ids),
		cmocka_unit_test(test_wire_attest_golden_layout),
		cmocka_unit_test(test_wire_attest_round_trip),
		cmocka_unit_test(test_wire_attest_rejects_defects),
		cmocka_unit_test(test_wire_attest_v1_refused_and_digest_vector),
		cmocka_unit_test(test_wire_receipt_golden_layout),
		cmocka_unit_test(test_wire_receipt_round_trip),
		cmocka_unit_test(test_wire_receipt_rejects_defects),
		cmocka_unit_test(test_wire_receipt_rejects_bad_semantics),
		cmocka_unit_test(test_wire_attest_ecdsa_version_3),
		cmocka_unit_test(test_wire_receipt_ecdsa_version_2),
		cmocka_unit_test(test_wire_type_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Tests of cleave-hv's trust module: tickets that are forged, replayed, expired, for another
 * device, another hypervisor or another order are refused and change nothing; an accepted
 * counter survives a restart; receipts are signed, chained and kept until acknowledged;
 * attestations verify with the identity key; a corrupted state file is refused; an accepted
 * order is journaled with its counter and its receipt clears the journal (and, after a wipe,
 * the enrollment) in the same write.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cleave_abi.h"
#include "hypercall-bridge/hv/trust.h"

struct tfx {
	char dir[64];
	struct trust t;
	struct ed25519_key *server;
	uint8_t server_pub[32];
};

static int
setup(void **state)
{
	struct tfx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-trust-XXXXXX");
	if (mkdtemp(f->dir) == NULL || trust_open(&f->t, f->dir, NULL) != 0 ||
	    ed25519_key_generate(&f->server) != 0)
		return -1;
	ed25519_key_public(f->server, f->server_pub);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct tfx *f = *state;
	char cmd[128];

	trust_close(&f->t);
	ed25519_key_free(f->server);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	(void)!system(cmd);
	free(f);
	return 0;
}

/* A ticket for this hypervisor and device, signed by key. */
static void
make_ticket(struct tfx *f, struct ed25519_key *key, uint16_t type, uint64_t counter,
	    uint64_t expires, const char *device, uint8_t out[TICKET_LEN])
{
	struct ticket tk;

	memset(&tk, 0, sizeof(tk));
	tk.type = type;
	snprintf(tk.device_id, sizeof(tk.device_id), "%s", device);
	snprintf(tk.command_id, sizeof(tk.command_id), "cmd_%llu", (unsigned long long)counter);
	memcpy(tk.hv_key, f->t.hv_key, 32);
	tk.counter = counter;
	tk.issued_at = 1000;
	tk.expires_at = expires;
	assert_int_equal(ticket_encode(&tk, out), 0);
	assert_int_equal(ed25519_key_sign(key, out, TICKET_BODY_LEN, out + TICKET_BODY_LEN), 0);
}

static void
test_trust_refuses_bad_tickets_and_changes_nothing(void **state)
{
	struct tfx *f = *state;
	struct ed25519_key *other;
	uint8_t tk[TICKET_LEN];
	struct ticket out;

	/* nothing is accepted before a server key is pinned */
	make_ticket(f, f->server, TICKET_WIPE, 1, 5000, "dev_a", tk);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_INVALID_STATE);
	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_OK);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_OK);

	assert_int_equal(ed25519_key_generate(&other), 0);
	make_ticket(f, other, TICKET_WIPE, 2, 5000, "dev_a", tk); /* forged */
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	ed25519_key_free(other);
	make_ticket(f, f->server, TICKET_WIPE, 2, 5000, "dev_b", tk); /* another device */
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	make_ticket(f, f->server, TICKET_LOCK, 2, 5000, "dev_a", tk); /* another order */
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	make_ticket(f, f->server, TICKET_WIPE, 2, 1999, "dev_a", tk); /* expired */
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	make_ticket(f, f->server, TICKET_WIPE, 2, 5000, "dev_a", tk);
	tk[80] ^= 1; /* another hypervisor key (and so a broken signature) */
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk) - 1, TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	assert_int_equal(f->t.counter, 0); /* nothing changed */

	/* accept counter 2, then counters 1 and 2 are replays */
	make_ticket(f, f->server, TICKET_WIPE, 2, 5000, "dev_a", tk);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_OK);
	assert_int_equal(trust_accept(&f->t, &out, NULL), 0);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
	make_ticket(f, f->server, TICKET_WIPE, 1, 5000, "dev_a", tk);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_E_BAD_TICKET);
}

static void
test_trust_pin_once_and_counter_survives_restart(void **state)
{
	struct tfx *f = *state;
	uint8_t tk[TICKET_LEN], other[32] = {1};
	struct ticket out;

	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_OK);
	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_E_NOT_REQUIRED);
	assert_int_equal(trust_pin(&f->t, other, "dev_a"), CLV_E_DENIED);
	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_z"), CLV_E_DENIED);
	make_ticket(f, f->server, TICKET_LOCK, 7, 5000, "dev_a", tk);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_LOCK, 2000, &out),
			 CLV_OK);
	assert_int_equal(trust_accept(&f->t, &out, NULL), 0);
	trust_close(&f->t);
	assert_int_equal(trust_open(&f->t, f->dir, NULL), 0);
	assert_int_equal(f->t.pinned, 1);
	assert_int_equal(f->t.counter, 7);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_LOCK, 2000, &out),
			 CLV_E_BAD_TICKET);
}

static void
test_trust_receipts_chain_and_ack(void **state)
{
	struct tfx *f = *state;
	uint8_t r1[RECEIPT_LEN], r2[RECEIPT_LEN], h1[32];
	struct receipt rc, d2;

	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_OK);
	memset(&rc, 0, sizeof(rc));
	rc.type = RECEIPT_AUTO_LOCK;
	rc.header_state = HV_STATE_LOCKED;
	assert_int_equal(trust_receipt(&f->t, &rc, r1, 0), 0);
	assert_int_equal(ed25519_verify(f->t.hv_key, r1, RECEIPT_BODY_LEN, r1 + RECEIPT_BODY_LEN),
			 0);
	memset(&rc, 0, sizeof(rc));
	rc.type = RECEIPT_AUTO_WIPE;
	rc.header_state = HV_STATE_ERASED;
	assert_int_equal(trust_receipt(&f->t, &rc, r2, 0), 0);
	assert_int_equal(receipt_decode(r2, RECEIPT_LEN, &d2), 0);
	crypto_sha256(r1, RECEIPT_LEN, h1);
	assert_memory_equal(d2.prev_hash, h1, 32); /* chained */
	assert_int_equal(d2.seq, 2);
	assert_string_equal(d2.device_id, "dev_a");
	assert_int_equal(f->t.npending, 2);
	assert_int_equal(trust_receipts_ack(&f->t, 1), 0);
	assert_int_equal(f->t.npending, 1);
	trust_close(&f->t);
	assert_int_equal(trust_open(&f->t, f->dir, NULL), 0);
	assert_int_equal(f->t.npending, 1); /* kept across a restart until acknowledged */
	assert_memory_equal(f->t.pending[0], r2, RECEIPT_LEN);
	assert_int_equal(f->t.receipt_seq, 2);
}

/* The journal is durable with the counter; the receipt clears it and unpins in one write. */
static void
test_trust_order_journal_with_counter_and_receipt(void **state)
{
	struct tfx *f = *state;
	uint8_t tk[TICKET_LEN], tk2[TICKET_LEN], r1[RECEIPT_LEN];
	struct trust_order o;
	struct ticket out;
	struct receipt rc;

	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_OK);
	make_ticket(f, f->server, TICKET_WIPE, 4, 5000, "dev_a", tk);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_WIPE, 2000, &out),
			 CLV_OK);
	memset(&o, 0, sizeof(o));
	o.type = TICKET_WIPE;
	o.epoch_before = 7;
	memcpy(o.ticket, tk, sizeof(tk));
	assert_int_equal(trust_accept(&f->t, &out, &o), 0);
	/* one order at a time: a second one is refused and changes nothing */
	make_ticket(f, f->server, TICKET_LOCK, 5, 5000, "dev_a", tk2);
	assert_int_equal(trust_check_ticket(&f->t, tk2, sizeof(tk2), TICKET_LOCK, 2000, &out),
			 CLV_OK);
	assert_int_equal(trust_accept(&f->t, &out, &o), -EBUSY);
	assert_int_equal(trust_begin(&f->t, &o), -EBUSY);
	trust_close(&f->t);
	assert_int_equal(trust_open(&f->t, f->dir, NULL), 0);
	assert_int_equal(f->t.counter, 4);
	assert_int_equal(f->t.order.type, TICKET_WIPE);
	assert_int_equal(f->t.order.epoch_before, 7);
	assert_memory_equal(f->t.order.ticket, tk, sizeof(tk));
	memset(&rc, 0, sizeof(rc));
	rc.type = TICKET_WIPE;
	snprintf(rc.command_id, sizeof(rc.command_id), "cmd_4");
	rc.ticket_counter = 4;
	rc.header_state = HV_STATE_ACTIVE;
	assert_int_equal(trust_receipt(&f->t, &rc, r1, TRUST_RECEIPT_UNPIN), 0);
	trust_close(&f->t);
	assert_int_equal(trust_open(&f->t, f->dir, NULL), 0);
	assert_int_equal(f->t.order.type, 0);
	assert_int_equal(f->t.pinned, 0);
	assert_int_equal(f->t.counter, 0);
	assert_int_equal(f->t.npending, 1);
	assert_memory_equal(f->t.pending[0], r1, RECEIPT_LEN);
}

/* A state file of the previous format (no journal) is read: same counter, no order. */
static void
test_trust_reads_version_3_state(void **state)
{
	struct tfx *f = *state;
	uint8_t tk[TICKET_LEN], buf[16384];
	struct ticket out;
	char path[128];
	size_t n, v3 = 8 + 8 + 32 + 32 + 8 + 8 + 8 + 32 + 8 + 32 + 8 + 8 +
		       TRUST_PENDING_MAX * RECEIPT_LEN + 32;
	FILE *fp;

	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_OK);
	make_ticket(f, f->server, TICKET_LOCK, 9, 5000, "dev_a", tk);
	assert_int_equal(trust_check_ticket(&f->t, tk, sizeof(tk), TICKET_LOCK, 2000, &out),
			 CLV_OK);
	assert_int_equal(trust_accept(&f->t, &out, NULL), 0);
	trust_close(&f->t);
	/* rewrite it as version 3: drop the journal, old magic, new checksum */
	snprintf(path, sizeof(path), "%s/trust.state", f->dir);
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf), fp);
	fclose(fp);
	assert_true(n > v3);
	memcpy(buf, "CLVTRST3", 8);
	crypto_sha256(buf, v3 - 32, buf + v3 - 32);
	fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(buf, 1, v3, fp), v3);
	fclose(fp);
	assert_int_equal(trust_open(&f->t, f->dir, NULL), 0);
	assert_int_equal(f->t.counter, 9);
	assert_int_equal(f->t.pinned, 1);
	assert_int_equal(f->t.order.type, 0);
}

static void
test_trust_attestation_verifies(void **state)
{
	struct tfx *f = *state;
	uint8_t nonce[32], meas[32], att[ATTEST_LEN];
	struct attestation a;

	memset(nonce, 0x11, sizeof(nonce));
	memset(meas, 0x22, sizeof(meas));
	assert_int_equal(trust_attest(&f->t, nonce, HV_STATE_ACTIVE, meas, 3, 1234, att), 0);
	assert_int_equal(ed25519_verify(f->t.hv_key, att, ATTEST_BODY_LEN, att + ATTEST_BODY_LEN),
			 0);
	assert_int_equal(attest_decode(att, sizeof(att), &a), 0);
	assert_memory_equal(a.nonce, nonce, 32);
	assert_memory_equal(a.hv_key, f->t.hv_key, 32);
	assert_int_equal(a.key_epoch, 3);
}

static void
test_trust_corrupted_state_refused(void **state)
{
	struct tfx *f = *state;
	char path[128];
	FILE *fp;

	assert_int_equal(trust_pin(&f->t, f->server_pub, "dev_a"), CLV_OK);
	trust_close(&f->t);
	snprintf(path, sizeof(path), "%s/trust.state", f->dir);
	fp = fopen(path, "r+b");
	assert_non_null(fp);
	fseek(fp, 60, SEEK_SET);
	fputc(0x7f, fp);
	fclose(fp);
	assert_int_equal(trust_open(&f->t, f->dir, NULL), -EBADMSG);
	/* the identity key itself is untouched */
	snprintf(path, sizeof(path), "%s/identity.key", f->dir);
	assert_int_equal(access(path, R_OK), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_trust_refuses_bad_tickets_and_changes_nothing,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_pin_once_and_counter_survives_restart,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_receipts_chain_and_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_order_journal_with_counter_and_receipt,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_reads_version_3_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_attestation_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_trust_corrupted_state_refused, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

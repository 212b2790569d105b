/*
 * Tests of the hypercall ABI: frozen function IDs and error numbers, golden byte images of the
 * bridge message header and the status record, strict decoding of malformed messages, and the
 * dispatcher's privilege matrix (the guest can never lock, wipe, rekey or attest; other host
 * users get discovery and status only), and x86's doorbell register mapping (ABI.md §5; arm64's
 * is pinned by test_abi_arm64.c). A change that breaks one of these breaks deployed guests or
 * agents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cleave_abi.h"
#include "hypercall-bridge/hv/call.h"
#include "hypercall-bridge/hv/dispatch.h"
#include "hypercall-bridge/lib/bridge_msg.h"
#include "wire.h"

static void
test_abi_frozen_numbers(void **state)
{
	(void)state;
	assert_int_equal(CLV_ABI_VERSION, 0x00010001);
	assert_int_equal(CLV_FN_TPM_IDENTITY, 0xF201000Bu);
	assert_int_equal(CLV_FN_TPM_ACTIVATE, 0xF201000Cu);
	assert_int_equal(CLV_FN_VERSION, 0xF2000000u);
	assert_int_equal(CLV_FN_FEATURES, 0xF2000001u);
	assert_int_equal(CLV_FN_STATUS, 0xF2000002u);
	assert_int_equal(CLV_FN_ATTEST, 0xF2010000u);
	assert_int_equal(CLV_FN_LOCK, 0xF2010002u);
	assert_int_equal(CLV_FN_WIPE, 0xF2010005u);
	assert_int_equal(CLV_FN_RECEIPT_ACK, 0xF2010009u);
	assert_int_equal(CLV_FN_COUNTERS, 0xF201000Au);
	assert_int_equal(CLV_FN_BLOCK_READ, 0xF2020000u);
	assert_int_equal(CLV_FN_SHARED_PAGE, 0xF2020003u);
	assert_int_equal(CLV_E_NOT_SUPPORTED, -1);
	assert_int_equal(CLV_E_DENIED, -4);
	assert_int_equal(CLV_E_FAULT, -7);
	assert_int_equal(CLV_E_BAD_TICKET, -8);
	assert_int_equal(CLV_E_IO, -9);
	assert_int_equal(CLV_DOORBELL_PORT, 0x510);
}

static void
test_abi_header_golden_image(void **state)
{
	static const uint8_t want[32] = {
		0x43, 0x4c, 0x56, 0x42,                         /* "CLVB" */
		0x01, 0x00,                                     /* abi major 1 */
		0x00, 0x00,                                     /* request */
		0x05, 0x00, 0x01, 0xf2,                         /* CLV_FN_WIPE */
		0x00, 0x00, 0x00, 0x00,                         /* status */
		0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* request id */
		0x00, 0x01, 0x00, 0x00,                         /* payload 256 */
		0x00, 0x00, 0x00, 0x00,                         /* reserved */
	};
	struct clv_msg_hdr h = {.abi_major = CLV_ABI_MAJOR,
				.kind = CLV_MSG_REQUEST,
				.fid = CLV_FN_WIPE,
				.request_id = 0x1122334455667788ull,
				.payload_len = TICKET_LEN};
	uint8_t ticket[TICKET_LEN], buf[512];
	const uint8_t *payload;
	struct clv_msg_hdr got;

	(void)state;
	memset(ticket, 0xab, sizeof(ticket));
	assert_int_equal(clv_msg_encode(&h, ticket, buf, sizeof(buf)), 32 + TICKET_LEN);
	assert_memory_equal(buf, want, sizeof(want));
	assert_int_equal(clv_msg_decode(buf, 32 + TICKET_LEN, &got, &payload), CLV_OK);
	assert_int_equal(got.fid, CLV_FN_WIPE);
	assert_int_equal(got.request_id, 0x1122334455667788ull);
	assert_ptr_equal(payload, buf + 32);
}

static void
test_abi_status_golden_image(void **state)
{
	struct clv_status s = {.abi_version = CLV_ABI_VERSION,
			       .state = HV_STATE_LOCKED,
			       .key_epoch = 3,
			       .ticket_counter = 0x0102,
			       .receipt_seq = 9,
			       .lease_until = 1795000000};
	struct clv_status back;
	uint8_t out[64];

	(void)state;
	memset(s.measurement, 0x5a, sizeof(s.measurement));
	clv_status_encode(&s, out);
	assert_int_equal(out[0], 0x01);
	assert_int_equal(out[2], 0x01); /* version 1.1 little-endian */
	assert_int_equal(out[4], HV_STATE_LOCKED);
	assert_int_equal(out[8], 3);
	assert_int_equal(out[16], 0x02);
	assert_int_equal(out[17], 0x01);
	assert_int_equal(out[40], 0x5a);
	assert_int_equal(out[55], 0x5a);
	for (int i = 56; i < 64; i++)
		assert_int_equal(out[i], 0);
	assert_int_equal(clv_status_decode(out, &back), CLV_OK);
	assert_memory_equal(&back, &s, sizeof(s));
	out[60] = 1; /* an unknown flag */
	assert_int_equal(clv_status_decode(out, &back), CLV_E_INVALID_PARAMETER);
	out[60] = 0;
	out[56] = 4;
	assert_int_equal(clv_status_decode(out, &back), CLV_E_INVALID_PARAMETER);
	s.flags = CLV_STATUS_TPM | CLV_STATUS_STALE_STATE;
	clv_status_encode(&s, out);
	assert_int_equal(out[56], 3);
	assert_int_equal(clv_status_decode(out, &back), CLV_OK);
	assert_int_equal(back.flags, 3);
	out[4] = 9; /* no such state */
	assert_int_equal(clv_status_decode(out, &back), CLV_E_INVALID_PARAMETER);
}

/* COUNTERS' reply: four little-endian u64, then 32 reserved bytes a reader ignores. */
static void
test_abi_counters_golden_image(void **state)
{
	struct clv_counters k = {.exits = 0x0102, .calls_port = 3, .calls_mmio = 4, .calls_hvc = 5};
	struct clv_counters back;
	uint8_t out[64];

	(void)state;
	memset(out, 0xee, sizeof(out));
	clv_counters_encode(&k, out);
	assert_int_equal(out[0], 0x02);
	assert_int_equal(out[1], 0x01);
	assert_int_equal(out[8], 3);
	assert_int_equal(out[16], 4);
	assert_int_equal(out[24], 5);
	for (int i = 32; i < 64; i++)
		assert_int_equal(out[i], 0);
	out[40] = 7; /* a later minor's field: ignored, not refused */
	clv_counters_decode(out, &back);
	assert_memory_equal(&back, &k, sizeof(k));
	assert_int_equal(clv_payload_size(CLV_FN_COUNTERS, CLV_MSG_REQUEST), 0);
	assert_int_equal(clv_payload_size(CLV_FN_COUNTERS, CLV_MSG_REPLY), 64);
}

/* A valid STATUS request to mutate. */
static size_t
status_request(uint8_t *buf)
{
	struct clv_msg_hdr h = {
		.abi_major = CLV_ABI_MAJOR, .kind = CLV_MSG_REQUEST, .fid = CLV_FN_STATUS};

	return (size_t)clv_msg_encode(&h, NULL, buf, 64);
}

static void
test_abi_decode_rejects_malformed(void **state)
{
	struct clv_msg_hdr h;
	const uint8_t *p;
	uint8_t buf[64];
	size_t n;

	(void)state;
	n = status_request(buf);
	assert_int_equal(n, 32);
	assert_int_equal(clv_msg_decode(buf, n, &h, &p), CLV_OK);
	assert_int_equal(clv_msg_decode(buf, 31, &h, &p), CLV_E_INVALID_PARAMETER);
	assert_int_equal(clv_msg_decode(buf, 33, &h, &p), CLV_E_INVALID_PARAMETER);
	for (size_t off = 0; off < 32; off++) {
		uint8_t m[64];
		int r;

		memcpy(m, buf, n);
		m[off] ^= 0x40;
		r = clv_msg_decode(m, n, &h, &p);
		/* request id bytes may change freely; everything else must be refused */
		if (off >= 16 && off < 24)
			assert_int_equal(r, CLV_OK);
		else
			assert_true(r == CLV_E_INVALID_PARAMETER || r == CLV_E_NOT_SUPPORTED);
	}
}

static void
test_abi_payload_sizes_enforced(void **state)
{
	struct clv_msg_hdr h = {.abi_major = CLV_ABI_MAJOR, .kind = CLV_MSG_REQUEST};
	uint8_t payload[CLV_MSG_PAYLOAD_MAX] = {0}, buf[4096];
	const uint8_t *p;
	struct clv_msg_hdr got;

	(void)state;
	h.fid = CLV_FN_LOCK;
	h.payload_len = TICKET_LEN - 1; /* a ticket is exactly 256 bytes */
	assert_int_equal(clv_msg_encode(&h, payload, buf, sizeof(buf)), -EINVAL);
	h.payload_len = TICKET_LEN;
	assert_int_equal(clv_msg_encode(&h, payload, buf, sizeof(buf)), 32 + TICKET_LEN);
	buf[24] = (uint8_t)(TICKET_LEN + 1); /* header claims more than the message has */
	assert_int_equal(clv_msg_decode(buf, 32 + TICKET_LEN, &got, &p), CLV_E_INVALID_PARAMETER);
	/* a receipts reply holds 0..12 receipts after an 8-byte count */
	h.kind = CLV_MSG_REPLY;
	h.fid = CLV_FN_RECEIPTS;
	h.payload_len = 8 + 2 * RECEIPT_LEN;
	assert_true(clv_msg_encode(&h, payload, buf, sizeof(buf)) > 0);
	h.payload_len = 8 + RECEIPT_LEN + 1;
	assert_int_equal(clv_msg_encode(&h, payload, buf, sizeof(buf)), -EINVAL);
	/* an error reply carries no payload */
	h.fid = CLV_FN_WIPE;
	h.status = CLV_E_BAD_TICKET;
	h.payload_len = 0;
	assert_int_equal(clv_msg_encode(&h, payload, buf, sizeof(buf)), 32);
	assert_int_equal(clv_msg_decode(buf, 32, &got, &p), CLV_OK);
	assert_int_equal(got.status, CLV_E_BAD_TICKET);
	/* unknown function and other major */
	h.status = 0;
	h.kind = CLV_MSG_REQUEST;
	h.fid = CLV_FID(CLV_SVC_HOST, 0x00ff);
	assert_true(clv_msg_encode(&h, payload, buf, sizeof(buf)) == 32);
	assert_int_equal(clv_msg_decode(buf, 32, &got, &p), CLV_E_NOT_SUPPORTED);
	status_request(buf);
	buf[4] = 2;
	assert_int_equal(clv_msg_decode(buf, 32, &got, &p), CLV_E_NOT_SUPPORTED);
}

static int calls;

static int64_t
count_handler(void *ctx, struct dispatch_call *c)
{
	(void)ctx;
	(void)c;
	calls++;
	return 7;
}

static const uint32_t all_fids[] = {
	CLV_FN_VERSION,     CLV_FN_FEATURES,    CLV_FN_STATUS,       CLV_FN_ATTEST,
	CLV_FN_PIN_OWNER,   CLV_FN_LOCK,        CLV_FN_UNLOCK,       CLV_FN_REKEY,
	CLV_FN_WIPE,        CLV_FN_RENEW_LEASE, CLV_FN_SET_POLICY,   CLV_FN_RECEIPTS,
	CLV_FN_RECEIPT_ACK, CLV_FN_BLOCK_READ,  CLV_FN_BLOCK_WRITE,  CLV_FN_HEARTBEAT,
	CLV_FN_SHARED_PAGE, CLV_FN_COUNTERS,    CLV_FN_TPM_IDENTITY, CLV_FN_TPM_ACTIVATE,
};

static int
is_host_mgmt(uint32_t fid)
{
	return ((fid >> 16) & 0xff) == CLV_SVC_HOST;
}

static void
test_abi_dispatch_privilege_matrix(void **state)
{
	struct dispatch d;

	(void)state;
	dispatch_init(&d, NULL);
	for (size_t i = 0; i < sizeof(all_fids) / sizeof(all_fids[0]); i++)
		if (all_fids[i] != CLV_FN_VERSION && all_fids[i] != CLV_FN_FEATURES)
			assert_int_equal(dispatch_register(&d, all_fids[i], count_handler), 0);
	for (size_t i = 0; i < sizeof(all_fids) / sizeof(all_fids[0]); i++) {
		uint32_t f = all_fids[i];
		int guest_svc = ((f >> 16) & 0xff) == CLV_SVC_GUEST;

		for (int who = CALLER_AGENT; who <= CALLER_GUEST_USER; who++) {
			struct dispatch_call c = {.caller = (enum dispatch_caller)who, .fid = f};
			int before = calls;
			int64_t r = dispatch_call(&d, &c);
			int allowed;

			switch (who) {
			case CALLER_AGENT:
				allowed = !guest_svc;
				break;
			case CALLER_HOST_OTHER:
				allowed = !guest_svc && !is_host_mgmt(f);
				break;
			case CALLER_GUEST_KERNEL:
				allowed = !is_host_mgmt(f);
				break;
			default:
				allowed = f == CLV_FN_VERSION || f == CLV_FN_FEATURES;
			}
			if (!allowed) {
				assert_int_equal(r, CLV_E_DENIED);
				assert_int_equal(calls, before); /* the handler never ran */
			} else if (f == CLV_FN_VERSION) {
				assert_int_equal(r, CLV_ABI_VERSION);
			} else if (f != CLV_FN_FEATURES) {
				assert_int_equal(r, 7);
				assert_int_equal(calls, before + 1);
			}
		}
	}
}

static void
test_abi_dispatch_features(void **state)
{
	struct dispatch d;
	struct dispatch_call c = {.caller = CALLER_GUEST_KERNEL, .fid = CLV_FN_FEATURES};

	(void)state;
	dispatch_init(&d, NULL);
	assert_int_equal(dispatch_register(&d, CLV_FN_BLOCK_READ, count_handler), 0);
	assert_int_equal(dispatch_register(&d, 0x12345678, count_handler), -EINVAL);
	c.args[0] = CLV_FN_BLOCK_READ;
	assert_int_equal(dispatch_call(&d, &c), CLV_OK);
	c.args[0] = CLV_FN_BLOCK_WRITE; /* permitted but not implemented */
	assert_int_equal(dispatch_call(&d, &c), CLV_E_NOT_SUPPORTED);
	c.args[0] = CLV_FN_WIPE; /* exists, but never for the guest: not advertised */
	assert_int_equal(dispatch_call(&d, &c), CLV_E_NOT_SUPPORTED);
	c.args[0] = 0xdeadbeef;
	assert_int_equal(dispatch_call(&d, &c), CLV_E_NOT_SUPPORTED);
	c.fid = CLV_FID(CLV_SVC_GUEST, 0x000f); /* inside the range, not in the ABI */
	assert_int_equal(dispatch_call(&d, &c), CLV_E_NOT_SUPPORTED);
}

/*
 * x86's doorbell (hv/arch/x86/call_map.c, the code the doorbell runs): the `out` value (EAX) is
 * the function ID, RBX, RCX, RSI, RDI the arguments (RDX holds the port), RAX the status, RBX,
 * RCX, RDX the results, and CS.RPL the caller's privilege.
 */
static void
test_abi_x86_register_mapping(void **state)
{
	/* RAX, RBX, RCX, RDX, RSI, RDI; CS selector 0x10 (RPL 0) */
	struct call_regs regs = {.r = {CLV_FN_BLOCK_READ, 11, 12, CLV_DOORBELL_PORT, 13, 14},
				 .mode = 0x10};
	struct hv_call c;

	(void)state;
	memset(&c, 0xee, sizeof(c));
	call_map_in(&regs, CLV_FN_BLOCK_READ, &c);
	assert_int_equal(c.fid, CLV_FN_BLOCK_READ);
	assert_int_equal(c.args[0], 11);
	assert_int_equal(c.args[1], 12);
	assert_int_equal(c.args[2], 13);
	assert_int_equal(c.args[3], 14);
	assert_int_equal(c.cpl, 0);
	regs.mode = 0x2b; /* a user code segment, RPL 3 */
	call_map_in(&regs, CLV_FN_VERSION, &c);
	assert_int_equal(c.fid, CLV_FN_VERSION); /* the value written, as the guest's `out` */
	assert_int_equal(c.cpl, 3);
	c.status = CLV_E_FAULT;
	c.results[0] = 21, c.results[1] = 22, c.results[2] = 23;
	call_map_out(&c, &regs);
	assert_int_equal((int64_t)regs.r[0], CLV_E_FAULT); /* RAX */
	assert_int_equal(regs.r[1], 21);                   /* RBX */
	assert_int_equal(regs.r[2], 22);                   /* RCX */
	assert_int_equal(regs.r[3], 23);                   /* RDX */
	assert_int_equal(regs.r[4], 13);                   /* RSI untouched */
	assert_int_equal(regs.r[5], 14);                   /* RDI untouched */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_abi_frozen_numbers),
		cmocka_unit_test(test_abi_header_golden_image),
		cmocka_unit_test(test_abi_status_golden_image),
		cmocka_unit_test(test_abi_counters_golden_image),
		cmocka_unit_test(test_abi_decode_rejects_malformed),
		cmocka_unit_test(test_abi_payload_sizes_enforced),
		cmocka_unit_test(test_abi_dispatch_privilege_matrix),
		cmocka_unit_test(test_abi_dispatch_features),
		cmocka_unit_test(test_abi_x86_register_mapping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

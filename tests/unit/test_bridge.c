/*
 * Tests of the host bridge over a real AF_UNIX SEQPACKET socket: the caller class comes from
 * SO_PEERCRED (this process is the agent, or with another agent uid configured, a mere host
 * user whose management calls are denied before any handler runs); malformed messages get an
 * error reply and the connection stays usable; a missing cleave-hv is a clear error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hypercall-bridge/hv/bridge_server.h"
#include "hypercall-bridge/lib/bridge_client.h"
#include "hypercall-bridge/lib/bridge_msg.h"
#include "wire.h"

struct bfx {
	char dir[64];
	char path[96];
	struct bridge_server srv;
	struct dispatch d;
	pthread_t th;
	atomic_int stop;
	atomic_int locks;
};

static int64_t
h_status(void *ctx, struct dispatch_call *c)
{
	struct clv_status s = {.abi_version = CLV_ABI_VERSION, .state = HV_STATE_ACTIVE};

	(void)ctx;
	clv_status_encode(&s, c->out);
	c->out_len = 64;
	return 0;
}

static int64_t
h_lock(void *ctx, struct dispatch_call *c)
{
	struct bfx *f = ctx;

	atomic_fetch_add(&f->locks, 1);
	memset(c->out, 0, RECEIPT_LEN);
	c->out_len = RECEIPT_LEN;
	return 0;
}

static void *
serve(void *p)
{
	struct bfx *f = p;

	for (int i = 0; i < 2000 && !atomic_load(&f->stop); i++) /* at most 100 s */
		bridge_server_poll(&f->srv, &f->d, 50);
	return NULL;
}

static int
start(void **state, uid_t agent_uid)
{
	struct bfx *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-bridge-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/hv.sock", f->dir);
	dispatch_init(&f->d, f);
	dispatch_register(&f->d, CLV_FN_STATUS, h_status);
	dispatch_register(&f->d, CLV_FN_LOCK, h_lock);
	if (bridge_server_open(&f->srv, f->path, agent_uid) != 0)
		return -1;
	pthread_create(&f->th, NULL, serve, f);
	*state = f;
	return 0;
}

static int
setup_agent(void **state)
{
	return start(state, getuid());
}

static int
setup_other(void **state)
{
	return start(state, getuid() + 1);
}

static int
teardown(void **state)
{
	struct bfx *f = *state;

	atomic_store(&f->stop, 1);
	pthread_join(f->th, NULL);
	bridge_server_close(&f->srv);
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
test_bridge_agent_calls(void **state)
{
	struct bfx *f = *state;
	struct bridge_client c;
	uint8_t ticket[TICKET_LEN] = {0}, out[512];
	struct clv_status st;
	size_t n;

	assert_int_equal(bridge_connect(&c, f->path, 2000), 0);
	assert_int_equal(bridge_call(&c, CLV_FN_VERSION, NULL, 0, out, sizeof(out), &n), CLV_OK);
	assert_int_equal(n, 8);
	assert_int_equal(out[2], 1); /* 1.0 */
	assert_int_equal(bridge_call(&c, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &n), CLV_OK);
	assert_int_equal(n, 64);
	assert_int_equal(clv_status_decode(out, &st), CLV_OK);
	assert_int_equal(st.state, HV_STATE_ACTIVE);
	assert_int_equal(bridge_call(&c, CLV_FN_LOCK, ticket, sizeof(ticket), out, sizeof(out), &n),
			 CLV_OK);
	assert_int_equal(n, RECEIPT_LEN);
	assert_int_equal(atomic_load(&f->locks), 1);
	/* a ticket of the wrong size never reaches the handler */
	assert_int_equal(bridge_call(&c, CLV_FN_LOCK, ticket, 10, out, sizeof(out), &n),
			 CLV_E_INVALID_PARAMETER);
	assert_int_equal(atomic_load(&f->locks), 1);
	/* implemented nowhere yet: not supported */
	assert_int_equal(bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, out, sizeof(out), &n),
			 CLV_E_NOT_SUPPORTED);
	bridge_close(&c);
}

static void
test_bridge_other_uid_is_denied(void **state)
{
	struct bfx *f = *state;
	struct bridge_client c;
	uint8_t ticket[TICKET_LEN] = {0}, out[512];
	size_t n;

	assert_int_equal(bridge_connect(&c, f->path, 2000), 0);
	assert_int_equal(bridge_call(&c, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &n), CLV_OK);
	assert_int_equal(bridge_call(&c, CLV_FN_LOCK, ticket, sizeof(ticket), out, sizeof(out), &n),
			 CLV_E_DENIED);
	assert_int_equal(atomic_load(&f->locks), 0);
	bridge_close(&c);
}

static void
test_bridge_garbage_gets_an_error_and_the_connection_survives(void **state)
{
	struct bfx *f = *state;
	struct bridge_client c;
	uint8_t junk[40], reply[64], out[128];
	struct clv_msg_hdr h;
	const uint8_t *p;
	ssize_t n;
	size_t len;

	assert_int_equal(bridge_connect(&c, f->path, 2000), 0);
	memset(junk, 0x41, sizeof(junk));
	assert_int_equal(send(c.fd, junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	n = recv(c.fd, reply, sizeof(reply), 0);
	assert_int_equal(n, CLV_MSG_HDR_LEN);
	/* The reply echoes the junk "function", so only its header is meaningful. */
	(void)clv_msg_decode(reply, (size_t)n, &h, &p);
	assert_int_equal(h.magic, CLV_MSG_MAGIC);
	assert_int_equal(h.kind, CLV_MSG_REPLY);
	assert_int_equal(h.status, CLV_E_INVALID_PARAMETER);
	assert_int_equal(bridge_call(&c, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &len), CLV_OK);
	bridge_close(&c);
}

static void
test_bridge_no_server(void **state)
{
	struct bridge_client c;

	(void)state;
	assert_int_equal(bridge_connect(&c, "/tmp/cleave-no-such-hv.sock", 500), -ENOENT);
	assert_string_equal(bridge_strerror(CLV_E_BAD_TICKET),
			    "ticket refused (signature, device, hypervisor, counter or expiry)");
}

/* TPM_IDENTITY's and TPM_ACTIVATE's payloads (ABI.md §2): lengths inside must add up. */
static void
test_bridge_tpm_payloads(void **state)
{
	static uint8_t buf[ATTEST_LEN + 8 + 5 + 3 + 64];
	uint8_t id[8 + 2 + 1 + 3 + 4] = {2, 0, 1, 0, 3, 0, 4, 0}, req[32];
	struct clv_tpm_identity ti;
	struct clv_tpm_evidence ev;

	(void)state;
	id[8] = 0xe0, id[10] = 0xe1, id[11] = 0xa0, id[14] = 0x55;
	assert_int_equal(clv_tpm_identity_decode(id, sizeof(id), &ti), 0);
	assert_int_equal(ti.ek_cert_len, 2);
	assert_int_equal(ti.ek_public[0], 0xe1);
	assert_int_equal(ti.ak_public_len, 3);
	assert_int_equal(ti.ak_spki[0], 0x55);
	assert_int_equal(clv_tpm_identity_decode(id, sizeof(id) - 1, &ti), -EPROTO);
	assert_int_equal(clv_tpm_identity_decode(id, 7, &ti), -EPROTO);

	assert_int_equal(clv_tpm_activate_encode((const uint8_t *)"abc", 3, (const uint8_t *)"de",
						 2, req, sizeof(req)),
			 13);
	assert_memory_equal(req,
			    "\x03\x00\x02\x00\x00\x00\x00\x00"
			    "abcde",
			    13);
	assert_int_equal(clv_tpm_activate_encode(req, 0, req, 2, req, sizeof(req)), -EINVAL);
	assert_int_equal(clv_tpm_activate_encode(req, 30, req, 2, req, sizeof(req)), -ENOSPC);

	buf[ATTEST_LEN] = 5, buf[ATTEST_LEN + 2] = 3, buf[ATTEST_LEN + 4] = 2;
	buf[ATTEST_LEN + 8 + 5] = 0x77;
	assert_int_equal(clv_tpm_activate_decode(buf, sizeof(buf), &ev), 0);
	assert_int_equal(ev.quote_len, 5);
	assert_int_equal(ev.log_count, 2);
	assert_int_equal(ev.quote_sig[0], 0x77);
	assert_ptr_equal(ev.pcr_log, buf + ATTEST_LEN + 8 + 8);
	assert_int_equal(clv_tpm_activate_decode(buf, sizeof(buf) - 1, &ev), -EPROTO);
	buf[ATTEST_LEN + 6] = 1; /* the reserved u16 */
	assert_int_equal(clv_tpm_activate_decode(buf, sizeof(buf), &ev), -EPROTO);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bridge_agent_calls, setup_agent, teardown),
		cmocka_unit_test_setup_teardown(test_bridge_other_uid_is_denied, setup_other,
						teardown),
		cmocka_unit_test_setup_teardown(
			test_bridge_garbage_gets_an_error_and_the_connection_survives, setup_agent,
			teardown),
		cmocka_unit_test(test_bridge_no_server),
		cmocka_unit_test(test_bridge_tpm_payloads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * cleave-hvctl: a command-line client of cleave-hv's bridge socket for people and tests. It
 * shows status, asks for attestations, pins the server key, and passes signed tickets for
 * lock, unlock, rekey, wipe, lease and policy, printing the receipts it gets back. Without a
 * valid ticket a state-changing call fails with cleave-hv's reason and changes nothing.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "bridge_client.h"
#include "bridge_msg.h"
#include "crypto.h"
#include "fileio.h"
#include "util.h"
#include "wire.h"

static void
usage(FILE *f)
{
	fprintf(f, "usage: cleave-hvctl --socket PATH COMMAND\n"
		   "  status                          state, key epoch, counters, lease\n"
		   "  attest NONCE_HEX                a signed attestation (base64)\n"
		   "  pin KEY_B64 DEVICE_ID           pin the server's ticket key (once)\n"
		   "  lock|unlock|rekey|wipe --ticket FILE [--receipt-out FILE]\n"
		   "  lease|policy --ticket FILE      renew the lease / set the offline policy\n"
		   "  receipts                        receipts not yet acknowledged (base64, one a "
		   "line)\n"
		   "  ack SEQ                         the server holds receipts up to SEQ\n"
		   "Tickets are the 256-byte signed tickets of schema/wire-formats.md (raw or "
		   "base64).\n");
}

static const char *const state_names[] = {"?", "active", "locked", "wipe pending", "erased"};

static int
fail(int st)
{
	fprintf(stderr, "cleave-hvctl: %s\n", bridge_strerror(st));
	return 1;
}

static int
cmd_status(struct bridge_client *c)
{
	uint8_t out[64];
	struct clv_status s;
	size_t n;
	int st = bridge_call(c, CLV_FN_STATUS, NULL, 0, out, sizeof(out), &n);

	if (st != CLV_OK)
		return fail(st);
	if (n != 64 || clv_status_decode(out, &s) != CLV_OK)
		return fail(-EPROTO);
	printf("state: %s\nabi: %u.%u\nkey epoch: %llu\nticket counter: %llu\nreceipt seq: "
	       "%llu\nlease until: %llu\n",
	       state_names[s.state], s.abi_version >> 16, s.abi_version & 0xffff,
	       (unsigned long long)s.key_epoch, (unsigned long long)s.ticket_counter,
	       (unsigned long long)s.receipt_seq, (unsigned long long)s.lease_until);
	return 0;
}

/* Reads a ticket file: 256 raw bytes, or their base64. */
static int
read_ticket(const char *path, uint8_t out[TICKET_LEN])
{
	size_t n = 0;
	char *t = file_read_all(path, 4096, &n);
	long d;

	if (t == NULL) {
		fprintf(stderr, "cleave-hvctl: cannot read %s\n", path);
		return -1;
	}
	if (n == TICKET_LEN) {
		memcpy(out, t, TICKET_LEN);
		free(t);
		return 0;
	}
	while (n > 0 && (t[n - 1] == '\n' || t[n - 1] == '\r'))
		n--;
	d = b64_decode(out, TICKET_LEN, t, n);
	free(t);
	if (d != TICKET_LEN) {
		fprintf(stderr, "cleave-hvctl: %s is not a 256-byte ticket\n", path);
		return -1;
	}
	return 0;
}

static void
print_b64(const uint8_t *p, size_t n)
{
	char buf[1024];

	b64_encode(buf, sizeof(buf), p, n);
	printf("%s\n", buf);
}

static int
cmd_ticket(struct bridge_client *c, uint32_t fid, const char *ticket, const char *receipt_out)
{
	uint8_t tk[TICKET_LEN], out[RECEIPT_LEN];
	size_t n;
	int st;

	if (ticket == NULL || read_ticket(ticket, tk) != 0)
		return 2;
	st = bridge_call(c, fid, tk, sizeof(tk), out, sizeof(out), &n);
	if (st != CLV_OK)
		return fail(st);
	if (n == RECEIPT_LEN) {
		print_b64(out, n);
		if (receipt_out != NULL && file_write_atomic(receipt_out, out, n, 0644) != 0)
			return 1;
	} else {
		printf("ok\n");
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *sock = NULL, *ticket = NULL, *rout = NULL, *cmd = NULL, *args[2] = {0};
	struct bridge_client c;
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	size_t n, na = 0;
	int st, rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--socket") == 0 && v) {
			sock = v, i++;
		} else if (strcmp(a, "--ticket") == 0 && v) {
			ticket = v, i++;
		} else if (strcmp(a, "--receipt-out") == 0 && v) {
			rout = v, i++;
		} else if (cmd == NULL) {
			cmd = a;
		} else if (na < 2) {
			args[na++] = a;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (sock == NULL || cmd == NULL) {
		usage(stderr);
		return 2;
	}
	st = bridge_connect(&c, sock, 10000);
	if (st != 0) {
		fprintf(stderr, "cleave-hvctl: cannot connect to %s: %s (is cleave-hv running?)\n",
			sock, strerror(-st));
		return 1;
	}
	rc = 2;
	if (strcmp(cmd, "status") == 0) {
		rc = cmd_status(&c);
	} else if (strcmp(cmd, "attest") == 0 && na == 1 && strlen(args[0]) == 64) {
		uint8_t nonce[32];
		int ok = 1;

		for (int i = 0; i < 32 && ok; i++) {
			unsigned int byte;

			ok = sscanf(args[0] + 2 * i, "%2x", &byte) == 1;
			nonce[i] = (uint8_t)byte;
		}
		st = ok ? bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n)
			: CLV_E_INVALID_PARAMETER;
		rc = st == CLV_OK ? (print_b64(buf, n), 0) : fail(st);
	} else if (strcmp(cmd, "pin") == 0 && na == 2 && strlen(args[1]) < WIRE_ID_LEN) {
		uint8_t req[64] = {0};

		if (b64_decode(req, 32, args[0], strlen(args[0])) != 32) {
			fprintf(stderr, "cleave-hvctl: KEY_B64 must be a base64 Ed25519 key\n");
		} else {
			memcpy(req + 32, args[1], strlen(args[1]));
			st = bridge_call(&c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf),
					 &n);
			rc = st == CLV_OK || st == CLV_E_NOT_REQUIRED ? (printf("pinned\n"), 0)
								      : fail(st);
		}
	} else if (strcmp(cmd, "receipts") == 0) {
		st = bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n);
		if (st == CLV_OK && n >= 8) {
			for (size_t k = 0; k < buf[0] && 8 + (k + 1) * RECEIPT_LEN <= n; k++)
				print_b64(buf + 8 + k * RECEIPT_LEN, RECEIPT_LEN);
			rc = 0;
		} else {
			rc = fail(st);
		}
	} else if (strcmp(cmd, "ack") == 0 && na == 1) {
		unsigned long long seq = strtoull(args[0], NULL, 10);
		uint8_t req[8];

		for (int i = 0; i < 8; i++)
			req[i] = (uint8_t)(seq >> (8 * i));
		st = bridge_call(&c, CLV_FN_RECEIPT_ACK, req, 8, buf, sizeof(buf), &n);
		rc = st == CLV_OK ? 0 : fail(st);
	} else {
		static const struct {
			const char *name;
			uint32_t fid;
		} orders[] = {
			{"lock", CLV_FN_LOCK},         {"unlock", CLV_FN_UNLOCK},
			{"rekey", CLV_FN_REKEY},       {"wipe", CLV_FN_WIPE},
			{"lease", CLV_FN_RENEW_LEASE}, {"policy", CLV_FN_SET_POLICY},
		};

		for (size_t i = 0; i < ARRAY_SIZE(orders); i++)
			if (strcmp(cmd, orders[i].name) == 0)
				rc = cmd_ticket(&c, orders[i].fid, ticket, rout);
		if (rc == 2)
			usage(stderr);
	}
	bridge_close(&c);
	return rc;
}

/*
 * cleave-ticket: plays the server's ticket signer for trying cleave-hv without cleave-server.
 * It makes an owner key (the server's ticket-signing key stand-in), prints its public half for
 * `cleave-hvctl pin`, and signs tickets (schema/wire-formats.md) for one device and one
 * hypervisor. A development and test tool: in production only cleave-server holds the key.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "bridge_client.h"
#include "bridge_msg.h"
#include "cleave_abi.h"
#include "crypto.h"
#include "fileio.h"
#include "hvsig.h"
#include "util.h"
#include "wire.h"

#ifndef CLEAVE_VERSION
#define CLEAVE_VERSION "0.1.0"
#endif

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cleave-ticket keygen KEYFILE\n"
		"       cleave-ticket --version\n"
		"       cleave-ticket pubkey KEYFILE\n"
		"       cleave-ticket make --key KEYFILE (--hv-key B64 | --hv-socket PATH)\n"
		"                     --device ID --counter N [--ttl SECONDS] [--out FILE]\n"
		"                     TYPE [ARGS]\n"
		"\n"
		"Plays cleave-server's ticket signer, to try cleave-hv without a server "
		"(development\n"
		"and tests only; in production only the server holds the key).\n"
		"  keygen   makes an owner key in KEYFILE (mode 0600) and prints its public key,\n"
		"           for `cleave-hvctl pin KEY_B64 DEVICE_ID`\n"
		"  pubkey   prints the public key of KEYFILE (base64)\n"
		"  make     signs one ticket for DEVICE, bound to the hypervisor key (given, or "
		"asked\n"
		"           from cleave-hv with an attestation). COUNTER must be above every "
		"counter\n"
		"           cleave-hv accepted before. TYPE and ARGS:\n"
		"             lock | unlock | rekey | wipe | retire\n"
		"             lease UNTIL            lease end, unix seconds or +SECONDS from now\n"
		"             policy LOCK_S WIPE_S MAX_FAILED_UNLOCKS VERSION   (0: never)\n"
		"           Writes the 256-byte ticket to FILE, or base64 to stdout.\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (*s == '\0' || *s == '-' || *end != '\0' || errno != 0)
		return -1;
	*out = v;
	return 0;
}

static int
cmd_keygen(const char *path, int create)
{
	struct ed25519_key *k = NULL;
	uint8_t pub[32];
	char b64[64];
	int r;

	if (create) {
		if (access(path, F_OK) == 0) {
			fprintf(stderr, "cleave-ticket: %s exists; not overwriting a key\n", path);
			return 1;
		}
		r = ed25519_key_generate(&k);
		if (r == 0)
			r = ed25519_key_save(k, path);
	} else {
		r = ed25519_key_load(path, &k);
	}
	if (r != 0) {
		fprintf(stderr, "cleave-ticket: %s: %s\n", path, strerror(r < 0 ? -r : EIO));
		ed25519_key_free(k);
		return 1;
	}
	ed25519_key_public(k, pub);
	b64_encode(b64, sizeof(b64), pub, sizeof(pub));
	printf("%s\n", b64);
	ed25519_key_free(k);
	return 0;
}

/*
 * The hypervisor's identity key, from an attestation over a random nonce that must verify
 * under the key it names: Ed25519 (the file keystore), or ECDSA P-256 by a TPM-resident key
 * (version 3, hypercall-bridge/TPM.md), whose SubjectPublicKeyInfo TPM_IDENTITY gives and whose
 * SHA-256 must be the attestation's hv_key. So a wrong socket cannot hand out just any key.
 */
static int
hv_key_from_socket(const char *sock, uint8_t key[32])
{
	struct bridge_client c;
	uint8_t nonce[32], buf[512], idbuf[CLV_MSG_PAYLOAD_MAX];
	struct clv_tpm_identity id = {0};
	struct attestation a;
	size_t n = 0, m = 0;
	int st, ok;

	if (crypto_random(nonce, sizeof(nonce)) != 0 || bridge_connect(&c, sock, 5000) != 0) {
		fprintf(stderr, "cleave-ticket: cannot reach cleave-hv at %s\n", sock);
		return -1;
	}
	st = bridge_call(&c, CLV_FN_ATTEST, nonce, sizeof(nonce), buf, sizeof(buf), &n);
	ok = st == CLV_OK && attest_decode(buf, n, &a) == 0 && memcmp(a.nonce, nonce, 32) == 0;
	if (ok && a.sig_alg == WIRE_SIG_ECDSA_P256) {
		st = bridge_call(&c, CLV_FN_TPM_IDENTITY, NULL, 0, idbuf, sizeof(idbuf), &m);
		ok = st == CLV_OK && clv_tpm_identity_decode(idbuf, m, &id) == 0;
	}
	bridge_close(&c);
	if (!ok || hvsig_verify(a.sig_alg, a.hv_key, id.ak_spki, id.ak_spki_len, buf,
				ATTEST_BODY_LEN, buf + ATTEST_BODY_LEN) != 0) {
		fprintf(stderr, "cleave-ticket: no valid attestation from cleave-hv: %s\n",
			st != CLV_OK ? bridge_strerror(st)
				     : "its signature does not verify under the key it names");
		return -1;
	}
	memcpy(key, a.hv_key, 32);
	return 0;
}

/* Fills t->args from the type's arguments; -1 with a message when they are wrong. */
static int
type_args(struct ticket *t, int argc, char **argv)
{
	int want = t->type == TICKET_LEASE ? 1 : t->type == TICKET_POLICY ? 4 : 0;

	if (argc != want) {
		fprintf(stderr, "cleave-ticket: %s takes %d argument%s (see --help)\n",
			ticket_type_name(t->type), want, want == 1 ? "" : "s");
		return -1;
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		int rel = t->type == TICKET_LEASE && a[0] == '+';

		if (parse_u64(a + rel, &t->args[i]) != 0) {
			fprintf(stderr, "cleave-ticket: not a number: %s\n", a);
			return -1;
		}
		if (rel)
			t->args[i] += (uint64_t)time(NULL);
	}
	return 0;
}

/* 1 for the options of `make` (each takes a value). */
static int
make_option(const char *o)
{
	static const char *const opts[] = {"--key", "--hv-key",  "--hv-socket", "--device",
					   "--out", "--counter", "--ttl"};

	for (size_t k = 0; k < ARRAY_SIZE(opts); k++)
		if (strcmp(o, opts[k]) == 0)
			return 1;
	return 0;
}

static int
cmd_make(int argc, char **argv)
{
	const char *key = NULL, *hvb64 = NULL, *hvsock = NULL, *device = NULL, *out = NULL;
	uint64_t counter = 0, ttl = 600;
	struct ed25519_key *k = NULL;
	struct ticket t;
	uint8_t raw[TICKET_LEN];
	char b64[512];
	int i, r;

	memset(&t, 0, sizeof(t));
	for (i = 0; i < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!make_option(o)) {
			fprintf(stderr, "cleave-ticket: unknown option %s (see --help)\n", o);
			return 2;
		}
		if (v == NULL) {
			fprintf(stderr, "cleave-ticket: %s needs a value\n", o);
			return 2;
		}
		if (strcmp(o, "--key") == 0)
			key = v;
		else if (strcmp(o, "--hv-key") == 0)
			hvb64 = v;
		else if (strcmp(o, "--hv-socket") == 0)
			hvsock = v;
		else if (strcmp(o, "--device") == 0)
			device = v;
		else if (strcmp(o, "--out") == 0)
			out = v;
		else if (!((strcmp(o, "--counter") == 0 && parse_u64(v, &counter) == 0) ||
			   (strcmp(o, "--ttl") == 0 && parse_u64(v, &ttl) == 0 && ttl > 0))) {
			fprintf(stderr, "cleave-ticket: bad value for %s: %s\n", o, v);
			return 2;
		}
	}
	if (key == NULL || device == NULL || counter == 0 || (hvb64 == NULL) == (hvsock == NULL) ||
	    i >= argc) {
		fprintf(stderr, "cleave-ticket: make needs --key, --device, --counter (> 0), one "
				"of --hv-key and --hv-socket, and a TYPE (see --help)\n");
		return 2;
	}
	t.type = ticket_type_from_name(argv[i]);
	if (t.type == 0 || t.type == TICKET_REFRESH) {
		fprintf(stderr, "cleave-ticket: unknown ticket type %s\n", argv[i]);
		return 2;
	}
	if (type_args(&t, argc - i - 1, argv + i + 1) != 0)
		return 2;
	if (hvb64 != NULL ? b64_decode(t.hv_key, sizeof(t.hv_key), hvb64, strlen(hvb64)) != 32
			  : hv_key_from_socket(hvsock, t.hv_key) != 0) {
		if (hvb64 != NULL)
			fprintf(stderr, "cleave-ticket: --hv-key must be 32 bytes in base64\n");
		return 1;
	}
	if (str_copy(t.device_id, sizeof(t.device_id), device) != 0) {
		fprintf(stderr, "cleave-ticket: device id too long (at most 31 characters)\n");
		return 2;
	}
	snprintf(t.command_id, sizeof(t.command_id), "cli_%s_%llu", ticket_type_name(t.type),
		 (unsigned long long)counter);
	t.counter = counter;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + ttl;
	r = ed25519_key_load(key, &k);
	if (r != 0) {
		fprintf(stderr, "cleave-ticket: cannot load the key %s\n", key);
		return 1;
	}
	r = ticket_encode(&t, raw) != 0 ||
	    ed25519_key_sign(k, raw, TICKET_BODY_LEN, raw + TICKET_BODY_LEN) != 0;
	ed25519_key_free(k);
	if (r != 0) {
		fprintf(stderr, "cleave-ticket: cannot sign the ticket\n");
		return 1;
	}
	if (out != NULL) {
		if (file_write_atomic(out, raw, sizeof(raw), 0600) != 0) {
			fprintf(stderr, "cleave-ticket: cannot write %s\n", out);
			return 1;
		}
		return 0;
	}
	b64_encode(b64, sizeof(b64), raw, sizeof(raw));
	printf("%s\n", b64);
	return 0;
}

int
main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
		usage(stdout);
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
		printf("cleave-ticket %s\n", CLEAVE_VERSION);
		return 0;
	}
	if (argc >= 2 && argv[1][0] == '-') {
		fprintf(stderr, "cleave-ticket: unknown option %s (see --help)\n", argv[1]);
		return 2;
	}
	if (argc == 3 && strcmp(argv[1], "keygen") == 0)
		return cmd_keygen(argv[2], 1);
	if (argc == 3 && strcmp(argv[1], "pubkey") == 0)
		return cmd_keygen(argv[2], 0);
	if (argc >= 2 && strcmp(argv[1], "make") == 0)
		return cmd_make(argc - 2, argv + 2);
	usage(stderr);
	return 2;
}

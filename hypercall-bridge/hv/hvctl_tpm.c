/*
 * cleave-hvctl's TPM commands (see hvctl_tpm.h): thin clients of TPM_IDENTITY and TPM_ACTIVATE
 * (ABI.md §2). They check lengths against what they received and print base64; the server
 * (or a test) verifies the TPM structures themselves.
 */
#include "hvctl_tpm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "bridge_msg.h"
#include "fileio.h"
#include "hvsig.h"
#include "wire.h"

#define CRED_FILE_MAX 4096

static size_t
be16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | (size_t)p[1];
}

static int
print_field(const char *name, const uint8_t *p, size_t n)
{
	size_t cap = b64_encoded_len(n) + 1;
	char *s = malloc(cap);

	if (s == NULL || b64_encode(s, cap, p, n) < 0) {
		free(s);
		return -ENOMEM;
	}
	printf("%s: %s\n", name, s);
	free(s);
	return 0;
}

static int
fail(int st)
{
	fprintf(stderr, "cleave-hvctl: %s\n", bridge_strerror(st));
	return 1;
}

int
hvctl_tpm_identity(struct bridge_client *c)
{
	static const char *const names[4] = {"ek_cert", "ek_public", "ak_public", "ak_spki"};
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	struct clv_tpm_identity id;
	size_t n = 0;
	int st = bridge_call(c, CLV_FN_TPM_IDENTITY, NULL, 0, buf, sizeof(buf), &n);

	if (st != CLV_OK)
		return fail(st);
	if (clv_tpm_identity_decode(buf, n, &id) != 0)
		return fail(-EPROTO);
	if (print_field(names[0], id.ek_cert, id.ek_cert_len) != 0 ||
	    print_field(names[1], id.ek_public, id.ek_public_len) != 0 ||
	    print_field(names[2], id.ak_public, id.ak_public_len) != 0 ||
	    print_field(names[3], id.ak_spki, id.ak_spki_len) != 0)
		return fail(-ENOMEM);
	return 0;
}

/* The request from a tpm2_makecredential file: u16 blob, u16 secret, u32 0, blob, secret. */
static int
activate_request(const char *path, uint8_t *req, size_t cap, size_t *len)
{
	size_t n = 0, bl, sl;
	uint8_t *f = (uint8_t *)file_read_all(path, CRED_FILE_MAX, &n);
	int r = -EINVAL;

	if (f == NULL) {
		fprintf(stderr, "cleave-hvctl: cannot read %s\n", path);
		return -errno;
	}
	if (n >= 12 && f[0] == 0xba && f[1] == 0xdc && f[2] == 0xc0 && f[3] == 0xde) {
		bl = 2 + be16(f + 8);
		sl = n - 8 - bl;
		if (8 + bl + 2 <= n && 2 + be16(f + 8 + bl) == sl) {
			long l = clv_tpm_activate_encode(f + 8, bl, f + 8 + bl, sl, req, cap);

			if (l > 0) {
				*len = (size_t)l;
				r = 0;
			}
		}
	}
	if (r != 0)
		fprintf(stderr, "cleave-hvctl: %s is not a tpm2_makecredential file\n", path);
	free(f);
	return r;
}

int
hvctl_tpm_activate(struct bridge_client *c, const char *path)
{
	uint8_t req[CLV_MSG_PAYLOAD_MAX], buf[CLV_MSG_PAYLOAD_MAX];
	struct clv_tpm_evidence ev;
	size_t rl = 0, n = 0;
	int st;

	if (activate_request(path, req, sizeof(req), &rl) != 0)
		return 2;
	st = bridge_call(c, CLV_FN_TPM_ACTIVATE, req, rl, buf, sizeof(buf), &n);
	if (st != CLV_OK)
		return fail(st);
	if (clv_tpm_activate_decode(buf, n, &ev) != 0)
		return fail(-EPROTO);
	if (print_field("attestation", ev.attestation, ATTEST_LEN) != 0 ||
	    print_field("quote", ev.quote, ev.quote_len) != 0 ||
	    print_field("quote_sig", ev.quote_sig, ev.quote_sig_len) != 0 ||
	    print_field("pcr_log", ev.pcr_log, ev.log_count * 32) != 0)
		return fail(-ENOMEM);
	return 0;
}

int
hvctl_tpm_pubkey(struct bridge_client *c, const uint8_t *att, size_t n, const uint8_t hv_key[32],
		 int pem_out)
{
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	struct clv_tpm_identity id;
	size_t got = 0;
	char *pem = NULL;

	if (n != ATTEST_LEN ||
	    bridge_call(c, CLV_FN_TPM_IDENTITY, NULL, 0, buf, sizeof(buf), &got) != CLV_OK ||
	    clv_tpm_identity_decode(buf, got, &id) != 0 ||
	    hvsig_verify(WIRE_SIG_ECDSA_P256, hv_key, id.ak_spki, id.ak_spki_len, att,
			 ATTEST_BODY_LEN, att + ATTEST_BODY_LEN) != 0)
		return -EPROTO;
	if (!pem_out) {
		char b64[64];

		b64_encode(b64, sizeof(b64), hv_key, 32);
		printf("%s\n", b64);
		return 0;
	}
	if (hvsig_spki_pem(id.ak_spki, id.ak_spki_len, &pem) != 0)
		return -ENOMEM;
	fputs(pem, stdout);
	free(pem);
	return 0;
}

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
le16(const uint8_t *p)
{
	return (size_t)p[0] | (size_t)p[1] << 8;
}

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

/* Splits TPM_IDENTITY's reply into its four parts; 0, or -EPROTO when the lengths lie. */
static int
identity_parts(const uint8_t *buf, size_t n, const uint8_t *part[4], size_t len[4])
{
	size_t off = 8;

	if (n < 8)
		return -EPROTO;
	for (int i = 0; i < 4; i++) {
		len[i] = le16(buf + 2 * i);
		if (len[i] > n - off)
			return -EPROTO;
		part[i] = buf + off;
		off += len[i];
	}
	return off == n ? 0 : -EPROTO;
}

int
hvctl_tpm_identity(struct bridge_client *c)
{
	static const char *const names[4] = {"ek_cert", "ek_public", "ak_public", "ak_spki"};
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	const uint8_t *part[4];
	size_t len[4], n = 0;
	int st = bridge_call(c, CLV_FN_TPM_IDENTITY, NULL, 0, buf, sizeof(buf), &n);

	if (st != CLV_OK)
		return fail(st);
	if (identity_parts(buf, n, part, len) != 0)
		return fail(-EPROTO);
	for (int i = 0; i < 4; i++)
		if (print_field(names[i], part[i], len[i]) != 0)
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
		if (8 + bl + 2 <= n && 2 + be16(f + 8 + bl) == sl && 8 + bl + sl <= cap) {
			memset(req, 0, 8);
			req[0] = (uint8_t)bl, req[1] = (uint8_t)(bl >> 8);
			req[2] = (uint8_t)sl, req[3] = (uint8_t)(sl >> 8);
			memcpy(req + 8, f + 8, bl + sl);
			*len = 8 + bl + sl;
			r = 0;
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
	size_t rl = 0, n = 0, al, sl, nl;
	const uint8_t *p = buf + ATTEST_LEN;
	int st;

	if (activate_request(path, req, sizeof(req), &rl) != 0)
		return 2;
	st = bridge_call(c, CLV_FN_TPM_ACTIVATE, req, rl, buf, sizeof(buf), &n);
	if (st != CLV_OK)
		return fail(st);
	if (n < ATTEST_LEN + 8)
		return fail(-EPROTO);
	al = le16(p), sl = le16(p + 2), nl = le16(p + 4);
	if (ATTEST_LEN + 8 + al + sl + nl * 32 != n)
		return fail(-EPROTO);
	p += 8;
	if (print_field("attestation", buf, ATTEST_LEN) != 0 || print_field("quote", p, al) != 0 ||
	    print_field("quote_sig", p + al, sl) != 0 ||
	    print_field("pcr_log", p + al + sl, nl * 32) != 0)
		return fail(-ENOMEM);
	return 0;
}

int
hvctl_tpm_pubkey(struct bridge_client *c, const uint8_t *att, size_t n, const uint8_t hv_key[32],
		 int pem_out)
{
	uint8_t buf[CLV_MSG_PAYLOAD_MAX];
	const uint8_t *part[4];
	size_t len[4], got = 0;
	char *pem = NULL;

	if (n != ATTEST_LEN ||
	    bridge_call(c, CLV_FN_TPM_IDENTITY, NULL, 0, buf, sizeof(buf), &got) != CLV_OK ||
	    identity_parts(buf, got, part, len) != 0 ||
	    hvsig_verify(WIRE_SIG_ECDSA_P256, hv_key, part[3], len[3], att, ATTEST_BODY_LEN,
			 att + ATTEST_BODY_LEN) != 0)
		return -EPROTO;
	if (!pem_out) {
		char b64[64];

		b64_encode(b64, sizeof(b64), hv_key, 32);
		printf("%s\n", b64);
		return 0;
	}
	if (hvsig_spki_pem(part[3], len[3], &pem) != 0)
		return -ENOMEM;
	fputs(pem, stdout);
	free(pem);
	return 0;
}

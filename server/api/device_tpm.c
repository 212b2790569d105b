/*
 * The TPM parts of the device API's enrollment (hypercall-bridge/TPM.md §3, schema/api.md
 * "Enrollment with a TPM"): the `tpm` object of POST /device/v1/enroll/nonce (the TPM's
 * identity) and of POST /device/v1/enroll (the quote and its PCR log), read into bounded
 * buffers; and the credential the nonce answer carries instead of the plain nonce. Unknown
 * members are refused, as everywhere in the API; every value is bounded before it is decoded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "b64.h"
#include "device_tpm.h"

/* Base64 of at most cap bytes (b64 NUL-terminated) into out; *len its length. Else a 422. */
static int
b64_member(struct call *c, const char *name, const char *b64, uint8_t *out, size_t cap, size_t *len)
{
	char msg[128];
	long n = b64_decode(out, cap, b64, strlen(b64));

	if (n > 0) {
		*len = (size_t)n;
		return 0;
	}
	snprintf(msg, sizeof(msg), "tpm.%s must be base64 of 1 to %zu bytes", name, cap);
	reply_problem(c->rs, SVC_INVALID, msg);
	return -1;
}

int
api_tpm_id_take(struct call *c, json_t *tpm, struct api_tpm_id *b)
{
	char ekp[B64_CAP(SVC_TPM_PUBLIC_MAX)], akp[B64_CAP(SVC_TPM_PUBLIC_MAX)];
	const struct field f[] = {
		{"ek_cert", F_STR, 1, b->text, sizeof(b->text), 0, 0, NULL},
		{"ek_public", F_STR, 1, ekp, sizeof(ekp), 0, 0, NULL},
		{"ak_public", F_STR, 1, akp, sizeof(akp), 0, 0, NULL},
	};

	memset(&b->id, 0, sizeof(b->id));
	if (take_fields(c, tpm, f, ARRAY_SIZE(f), "tpm.") != 0 ||
	    b64_member(c, "ek_cert", b->text, b->ek_cert, sizeof(b->ek_cert), &b->id.ek_cert_len) !=
		    0 ||
	    b64_member(c, "ek_public", ekp, b->ek_public, sizeof(b->ek_public),
		       &b->id.ek_public_len) != 0 ||
	    b64_member(c, "ak_public", akp, b->ak_public, sizeof(b->ak_public),
		       &b->id.ak_public_len) != 0)
		return -1;
	b->id.ek_cert = b->ek_cert;
	b->id.ek_public = b->ek_public;
	b->id.ak_public = b->ak_public;
	return 0;
}

json_t *
api_credential_json(const struct enroll_credential *cred)
{
	return json_pack("{s:o, s:o}", "blob", jb64(cred->blob, cred->blob_len), "secret",
			 jb64(cred->secret, cred->secret_len));
}

/* pcr_log: 1 to SVC_PCR_LOG_MAX strings of 64 hex digits (SHA-256 digests), oldest first. */
static int
pcr_log_take(struct call *c, json_t *arr, struct api_tpm_evidence *b)
{
	char msg[128];
	size_t n = json_array_size(arr);

	if (n == 0 || n > SVC_PCR_LOG_MAX) {
		snprintf(msg, sizeof(msg), "tpm.pcr_log must list 1 to %d measurements",
			 SVC_PCR_LOG_MAX);
		reply_problem(c->rs, SVC_INVALID, msg);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const char *h = json_string_value(json_array_get(arr, i));
		int ok = h != NULL && strlen(h) == 64;

		for (size_t k = 0; ok && k < 32; k++) {
			int hi = api_hexval(h[2 * k]), lo = api_hexval(h[2 * k + 1]);

			ok = hi >= 0 && lo >= 0;
			b->log[i][k] = (uint8_t)(hi << 4 | lo);
		}
		if (!ok) {
			snprintf(msg, sizeof(msg),
				 "tpm.pcr_log[%zu] must be a SHA-256 digest in 64 hex digits", i);
			reply_problem(c->rs, SVC_INVALID, msg);
			return -1;
		}
	}
	b->ev.pcr_log = (const uint8_t(*)[32])b->log;
	b->ev.pcr_log_n = n;
	return 0;
}

int
api_tpm_evidence_take(struct call *c, json_t *tpm, struct api_tpm_evidence *b)
{
	char akp[B64_CAP(SVC_TPM_PUBLIC_MAX)], quote[B64_CAP(SVC_TPM_ATTEST_MAX)];
	char sig[B64_CAP(SVC_TPM_SIG_MAX)];
	json_t *log = NULL;
	const struct field f[] = {
		{"ak_public", F_STR, 1, akp, sizeof(akp), 0, 0, NULL},
		{"quote", F_STR, 1, quote, sizeof(quote), 0, 0, NULL},
		{"quote_sig", F_STR, 1, sig, sizeof(sig), 0, 0, NULL},
		{"pcr_log", F_ARR, 1, &log, 0, 0, 0, NULL},
	};

	memset(&b->ev, 0, sizeof(b->ev));
	if (take_fields(c, tpm, f, ARRAY_SIZE(f), "tpm.") != 0 ||
	    b64_member(c, "ak_public", akp, b->ak_public, sizeof(b->ak_public),
		       &b->ev.ak_public_len) != 0 ||
	    b64_member(c, "quote", quote, b->quote, sizeof(b->quote), &b->ev.quote_len) != 0 ||
	    b64_member(c, "quote_sig", sig, b->quote_sig, sizeof(b->quote_sig),
		       &b->ev.quote_sig_len) != 0 ||
	    pcr_log_take(c, log, b) != 0)
		return -1;
	b->ev.ak_public = b->ak_public;
	b->ev.quote = b->quote;
	b->ev.quote_sig = b->quote_sig;
	return 0;
}

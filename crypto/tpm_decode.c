/*
 * Decoders of the TPM 2.0 structures the server reads (Part 2: TPMT_PUBLIC §12.2.4,
 * TPMS_ATTEST §10.12.12, TPMT_SIGNATURE §11.3.4), from bytes a device relays. Every size is
 * checked against its structure's bound and the buffer; a structure must use its buffer exactly.
 * Unions are read only for the selectors we know; anything else is -ENOTSUP rather than a guess
 * at its length.
 */
#include "tpm_verify.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/ec.h>

#include "tpm_priv.h"

#define TPM_ALG_ECDH      0x0019u
#define TPM_ALG_SM2       0x001bu
#define TPM_ALG_ECSCHNORR 0x001cu
#define TPM_ALG_ECMQV     0x001du
#define TPM_ALG_SM4       0x0013u
#define TPM_ALG_CAMELLIA  0x0026u
#define TPM_ALG_MGF1      0x0007u
#define TPM_ALG_KDF1_56A  0x0020u
#define TPM_ALG_KDF2      0x0021u
#define TPM_ALG_KDF1_108  0x0022u

int
tpm_fail(char *why, size_t cap, int err, const char *fmt, ...)
{
	va_list ap;

	if (why != NULL && cap > 0) {
		va_start(ap, fmt);
		vsnprintf(why, cap, fmt, ap);
		va_end(ap);
	}
	return err;
}

const EVP_MD *
tpm_md(uint16_t alg)
{
	switch (alg) {
	case TPM_ALG_SHA1:
		return EVP_sha1();
	case TPM_ALG_SHA256:
		return EVP_sha256();
	case TPM_ALG_SHA384:
		return EVP_sha384();
	case TPM_ALG_SHA512:
		return EVP_sha512();
	default:
		return NULL;
	}
}

/* TPMT_SYM_DEF_OBJECT: NULL, or a block cipher with key bits and mode. */
static int
rd_sym(struct rd *r, struct tpm_public *p, char *why, size_t cap)
{
	p->sym_alg = rd_u16(r);
	if (p->sym_alg == TPM_ALG_NULL)
		return 0;
	if (p->sym_alg != TPM_ALG_AES && p->sym_alg != TPM_ALG_SM4 &&
	    p->sym_alg != TPM_ALG_CAMELLIA)
		return tpm_fail(why, cap, -ENOTSUP, "symmetric algorithm 0x%04x not supported",
				p->sym_alg);
	p->sym_bits = rd_u16(r);
	p->sym_mode = rd_u16(r);
	return 0;
}

/* Is scheme one a key of type may carry, and does it have a hash (1) or hash + more (2)? */
static int
scheme_shape(uint16_t type, uint16_t scheme)
{
	switch (type) {
	case TPM_ALG_RSA:
		if (scheme == TPM_ALG_NULL || scheme == TPM_ALG_RSAES)
			return 0;
		return scheme == TPM_ALG_RSASSA || scheme == TPM_ALG_RSAPSS ||
				       scheme == TPM_ALG_OAEP
			       ? 1
			       : -1;
	case TPM_ALG_ECC:
		if (scheme == TPM_ALG_NULL)
			return 0;
		if (scheme == TPM_ALG_ECDAA)
			return 2; /* hash and count */
		return scheme == TPM_ALG_ECDSA || scheme == TPM_ALG_ECDH || scheme == TPM_ALG_SM2 ||
				       scheme == TPM_ALG_ECSCHNORR || scheme == TPM_ALG_ECMQV
			       ? 1
			       : -1;
	case TPM_ALG_KEYEDHASH:
		if (scheme == TPM_ALG_NULL)
			return 0;
		if (scheme == TPM_ALG_XOR)
			return 2; /* hash and KDF */
		return scheme == TPM_ALG_HMAC ? 1 : -1;
	default:
		return -1;
	}
}

static int
rd_scheme(struct rd *r, struct tpm_public *p, char *why, size_t cap)
{
	int shape;

	p->scheme = rd_u16(r);
	p->scheme_hash = TPM_ALG_NULL;
	shape = scheme_shape(p->type, p->scheme);
	if (shape < 0)
		return tpm_fail(why, cap, -ENOTSUP, "scheme 0x%04x not supported for type 0x%04x",
				p->scheme, p->type);
	if (shape >= 1)
		p->scheme_hash = rd_u16(r);
	if (shape == 2)
		(void)rd_u16(r); /* ECDAA count or XOR's KDF: not used by the server */
	return 0;
}

/* TPMS_ECC_PARMS after symmetric and scheme: curve and KDF. */
static int
rd_ecc_tail(struct rd *r, struct tpm_public *p, char *why, size_t cap)
{
	p->curve = rd_u16(r);
	p->kdf = rd_u16(r);
	p->kdf_hash = TPM_ALG_NULL;
	if (p->kdf == TPM_ALG_NULL)
		return 0;
	if (p->kdf != TPM_ALG_MGF1 && p->kdf != TPM_ALG_KDF1_56A && p->kdf != TPM_ALG_KDF2 &&
	    p->kdf != TPM_ALG_KDF1_108)
		return tpm_fail(why, cap, -ENOTSUP, "ECC KDF 0x%04x not supported", p->kdf);
	p->kdf_hash = rd_u16(r);
	return 0;
}

/* parameters and unique (TPMU_PUBLIC_PARMS, TPMU_PUBLIC_ID), selected by p->type. */
static int
rd_parms_unique(struct rd *r, struct tpm_public *p, char *why, size_t cap)
{
	int e = 0;

	switch (p->type) {
	case TPM_ALG_RSA:
		if ((e = rd_sym(r, p, why, cap)) != 0 || (e = rd_scheme(r, p, why, cap)) != 0)
			return e;
		p->rsa_bits = rd_u16(r);
		p->rsa_exponent = rd_u32(r);
		rd_2b(r, p->unique, TPM_RSA_MAX, &p->unique_len);
		return 0;
	case TPM_ALG_ECC:
		if ((e = rd_sym(r, p, why, cap)) != 0 || (e = rd_scheme(r, p, why, cap)) != 0 ||
		    (e = rd_ecc_tail(r, p, why, cap)) != 0)
			return e;
		rd_2b(r, p->unique, TPM_ECC_MAX, &p->unique_len);
		rd_2b(r, p->unique_y, TPM_ECC_MAX, &p->unique_y_len);
		return 0;
	case TPM_ALG_KEYEDHASH:
		if ((e = rd_scheme(r, p, why, cap)) != 0)
			return e;
		rd_2b(r, p->unique, TPM_DIGEST_MAX, &p->unique_len);
		return 0;
	case TPM_ALG_SYMCIPHER:
		if ((e = rd_sym(r, p, why, cap)) != 0)
			return e;
		rd_2b(r, p->unique, TPM_DIGEST_MAX, &p->unique_len);
		return 0;
	default:
		return tpm_fail(why, cap, -ENOTSUP, "object type 0x%04x not supported", p->type);
	}
}

/* name = nameAlg || H_nameAlg(the TPMT_PUBLIC bytes) (Part 1 §16). */
static int
public_name(const uint8_t *tpmt, size_t len, struct tpm_public *p, char *why, size_t cap)
{
	const EVP_MD *md = tpm_md(p->name_alg);
	unsigned int dl = 0;

	if (md == NULL)
		return tpm_fail(why, cap, -ENOTSUP, "nameAlg 0x%04x not supported", p->name_alg);
	put_u16(p->name, p->name_alg);
	if (EVP_Digest(tpmt, len, p->name + 2, &dl, md, NULL) != 1)
		return tpm_fail(why, cap, -EIO, "digest of the public area failed");
	p->name_len = (uint16_t)(2 + dl);
	return 0;
}

int
tpm_public_decode_t(const uint8_t *buf, size_t len, struct tpm_public *out, char *why, size_t cap)
{
	struct rd r = {.p = buf, .n = len};
	int e;

	memset(out, 0, sizeof(*out));
	out->type = rd_u16(&r);
	out->name_alg = rd_u16(&r);
	out->attrs = rd_u32(&r);
	rd_2b(&r, out->auth_policy, TPM_DIGEST_MAX, &out->auth_policy_len);
	if (!rd_ok(&r))
		return tpm_fail(why, cap, -EINVAL, "public area: truncated header");
	if ((e = rd_parms_unique(&r, out, why, cap)) != 0)
		return e;
	if (!rd_ok(&r))
		return tpm_fail(why, cap, -EINVAL, "public area: truncated or oversized field");
	if (r.off != len)
		return tpm_fail(why, cap, -EINVAL, "public area: %zu bytes after its end",
				len - r.off);
	return public_name(buf, len, out, why, cap);
}

int
tpm_public_decode(const uint8_t *buf, size_t len, struct tpm_public *out, char *why, size_t cap)
{
	size_t size;

	if (len < 2)
		return tpm_fail(why, cap, -EINVAL, "TPM2B_PUBLIC: shorter than its size field");
	size = (size_t)buf[0] << 8 | buf[1];
	if (size != len - 2)
		return tpm_fail(why, cap, -EINVAL, "TPM2B_PUBLIC: size %zu but %zu bytes follow",
				size, len - 2);
	return tpm_public_decode_t(buf + 2, size, out, why, cap);
}

/* TPML_PCR_SELECTION then TPM2B_DIGEST pcrDigest (TPMS_QUOTE_INFO). */
static void
rd_quote_info(struct rd *r, struct tpm_attest *a)
{
	a->pcr_banks = rd_u32(r);
	if (a->pcr_banks > TPM_PCR_BANKS_MAX) {
		r->bad = 1;
		return;
	}
	for (uint32_t i = 0; i < a->pcr_banks && rd_ok(r); i++) {
		const uint8_t *sel;

		a->pcr[i].hash = rd_u16(r);
		a->pcr[i].size = rd_u8(r);
		if (a->pcr[i].size > TPM_PCR_SELECT_MAX) {
			r->bad = 1;
			return;
		}
		sel = rd_take(r, a->pcr[i].size);
		if (sel != NULL)
			memcpy(a->pcr[i].select, sel, a->pcr[i].size);
	}
	rd_2b(r, a->pcr_digest, TPM_DIGEST_MAX, &a->pcr_digest_len);
}

int
tpm_attest_decode(const uint8_t *buf, size_t len, struct tpm_attest *out, char *why, size_t cap)
{
	struct rd r = {.p = buf, .n = len};

	memset(out, 0, sizeof(*out));
	out->magic = rd_u32(&r);
	out->type = rd_u16(&r);
	rd_2b(&r, out->signer, TPM_NAME_MAX, &out->signer_len);
	rd_2b(&r, out->extra, TPM_DIGEST_MAX, &out->extra_len);
	out->clock = rd_u64(&r);
	out->reset_count = rd_u32(&r);
	out->restart_count = rd_u32(&r);
	out->safe = rd_u8(&r);
	out->firmware = rd_u64(&r);
	if (!rd_ok(&r))
		return tpm_fail(why, cap, -EINVAL, "attestation: truncated or oversized header");
	if (out->type == TPM_ST_ATTEST_QUOTE) {
		rd_quote_info(&r, out);
	} else if (out->type == TPM_ST_ATTEST_CERTIFY) {
		rd_2b(&r, out->cert_name, TPM_NAME_MAX, &out->cert_name_len);
		rd_2b(&r, out->cert_qname, TPM_NAME_MAX, &out->cert_qname_len);
	} else {
		return tpm_fail(why, cap, -ENOTSUP, "attestation type 0x%04x not supported",
				out->type);
	}
	if (!rd_ok(&r))
		return tpm_fail(why, cap, -EINVAL, "attestation: truncated or oversized field");
	if (r.off != len)
		return tpm_fail(why, cap, -EINVAL, "attestation: %zu bytes after its end",
				len - r.off);
	return 0;
}

/* r and s (big-endian, as the TPM sends them) as a DER ECDSA-Sig-Value into s->sig. */
static int
ecdsa_der(const uint8_t *rb, uint16_t rl, const uint8_t *sb, uint16_t sl, struct tpm_signature *s,
	  char *why, size_t cap)
{
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rb, rl, NULL), *sv = BN_bin2bn(sb, sl, NULL);
	unsigned char *p = s->sig;
	int n, e = -ENOMEM;

	if (es == NULL || r == NULL || sv == NULL || ECDSA_SIG_set0(es, r, sv) != 1)
		goto out;
	r = sv = NULL; /* owned by es now */
	n = i2d_ECDSA_SIG(es, NULL);
	if (n <= 0 || (size_t)n > sizeof(s->sig)) {
		e = tpm_fail(why, cap, -EINVAL, "signature: r and s do not encode");
		goto out;
	}
	n = i2d_ECDSA_SIG(es, &p);
	s->sig_len = (uint16_t)n;
	e = 0;
out:
	BN_free(r);
	BN_free(sv);
	ECDSA_SIG_free(es);
	return e;
}

int
tpm_signature_decode(const uint8_t *buf, size_t len, struct tpm_signature *out, char *why,
		     size_t cap)
{
	struct rd r = {.p = buf, .n = len};
	uint8_t er[TPM_ECC_MAX], es[TPM_ECC_MAX];
	uint16_t erl = 0, esl = 0;

	memset(out, 0, sizeof(*out));
	out->alg = rd_u16(&r);
	if (out->alg != TPM_ALG_RSASSA && out->alg != TPM_ALG_RSAPSS && out->alg != TPM_ALG_ECDSA)
		return tpm_fail(why, cap, -ENOTSUP, "signature algorithm 0x%04x not supported",
				out->alg);
	out->hash = rd_u16(&r);
	if (out->alg == TPM_ALG_ECDSA) {
		rd_2b(&r, er, sizeof(er), &erl);
		rd_2b(&r, es, sizeof(es), &esl);
	} else {
		rd_2b(&r, out->sig, sizeof(out->sig), &out->sig_len);
	}
	if (!rd_ok(&r))
		return tpm_fail(why, cap, -EINVAL, "signature: truncated or oversized field");
	if (r.off != len)
		return tpm_fail(why, cap, -EINVAL, "signature: %zu bytes after its end",
				len - r.off);
	if (tpm_md(out->hash) == NULL)
		return tpm_fail(why, cap, -ENOTSUP, "signature hash 0x%04x not supported",
				out->hash);
	if (out->alg != TPM_ALG_ECDSA)
		return out->sig_len > 0 ? 0 : tpm_fail(why, cap, -EINVAL, "signature: empty");
	if (erl == 0 || esl == 0)
		return tpm_fail(why, cap, -EINVAL, "signature: empty r or s");
	return ecdsa_der(er, erl, es, esl, out, why, cap);
}

/*
 * EK certificates (TCG EK Credential Profile 2.x) against the manufacturer CAs an admin
 * configured. OpenSSL does the X.509 path validation with every check left on (signatures,
 * validity, CA basic constraints and key usage, unhandled critical extensions). What makes the
 * certificate an EK certificate is checked here, deliberately, because no X.509 purpose covers
 * it: extendedKeyUsage (when present) must name tcg-kp-EKCertificate, and the subjectAltName,
 * which the profile makes critical when the subject is empty (swtpm's is, with subject
 * "CN=unknown"), must be a directoryName naming the TPM manufacturer (tcg-at-tpmManufacturer).
 * OpenSSL knows subjectAltName, so a critical one is "handled" and needs no flag. Finally the
 * EK public the device sent must be the certificate's key.
 *
 * Revocation: the bundle may carry the makers' CRLs (PEM "X509 CRL" blocks) beside their
 * certificates. Each must be signed by a certificate of the bundle (checked at load). An EK
 * certificate whose issuer has a CRL there is verified with OpenSSL's CRL check on, so a revoked
 * one is refused, and so is every one of that issuer once its CRL is past its nextUpdate (the
 * admin must fetch a current one). An issuer without a CRL in the bundle is not checked.
 */
#include "tpm_verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "tpm_priv.h"

#define CA_MAX               256 /* certificates in one bundle */
#define OID_EK_CERTIFICATE   "2.23.133.8.1"
#define OID_TPM_MANUFACTURER "2.23.133.2.1"
#define OID_TPM_MODEL        "2.23.133.2.2"
#define OID_TPM_VERSION      "2.23.133.2.3"

struct tpm_ca {
	X509_STORE *roots;         /* self-signed: the trust anchors */
	STACK_OF(X509) * issuers;  /* the rest: may complete a chain, never end one */
	STACK_OF(X509_CRL) * crls; /* the makers' CRLs, each signed by a certificate above */
	STACK_OF(X509) * all;      /* roots and issuers, to find a CRL's signer at load */
};

void
tpm_ca_free(struct tpm_ca *ca)
{
	if (ca == NULL)
		return;
	X509_STORE_free(ca->roots);
	sk_X509_pop_free(ca->issuers, X509_free);
	sk_X509_CRL_pop_free(ca->crls, X509_CRL_free);
	sk_X509_pop_free(ca->all, X509_free);
	free(ca);
}

/* Adds cert to roots or issuers; 1 when it was a root. Takes cert. */
static int
ca_add(struct tpm_ca *ca, X509 *cert)
{
	if (!X509_up_ref(cert)) {
		X509_free(cert);
		return -1;
	}
	if (sk_X509_push(ca->all, cert) <= 0) {
		X509_free(cert); /* the reference just taken, and the one given */
		X509_free(cert);
		return -1;
	}
	if (X509_self_signed(cert, 1) == 1) {
		int ok = X509_STORE_add_cert(ca->roots, cert) == 1;

		X509_free(cert); /* the store keeps its own reference */
		return ok ? 1 : -1;
	}
	if (sk_X509_push(ca->issuers, cert) <= 0) {
		X509_free(cert);
		return -1;
	}
	return 0;
}

/* The CA file's certificate (roots or issuers) that signed crl, or NULL. */
static X509 *
crl_signer(const struct tpm_ca *ca, X509_CRL *crl)
{
	for (int i = 0; i < sk_X509_num(ca->all); i++) {
		X509 *c = sk_X509_value(ca->all, i);

		if (X509_NAME_cmp(X509_get_subject_name(c), X509_CRL_get_issuer(crl)) == 0 &&
		    X509_CRL_verify(crl, X509_get0_pubkey(c)) == 1)
			return c;
	}
	ERR_clear_error();
	return NULL;
}

/* 1 when cert may sign CRLs: no keyUsage, or one with cRLSign (what OpenSSL will demand). */
static int
may_sign_crls(X509 *cert)
{
	return (X509_get_extension_flags(cert) & EXFLAG_KUSAGE) == 0 ||
	       (X509_get_key_usage(cert) & KU_CRL_SIGN) != 0;
}

/* Takes the certificates and CRLs out of what PEM_X509_INFO_read_bio read; 0 or -errno. */
static int
ca_take(struct tpm_ca *ca, STACK_OF(X509_INFO) * infos, const char *path, int *roots, char *why,
	size_t cap)
{
	for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *x = sk_X509_INFO_value(infos, i);
		int r;

		/* one entry may hold a certificate and the CRL (or key) that followed it */
		if (x->x_pkey != NULL)
			return tpm_fail(why, cap, -EINVAL,
					"TPM CA file %s: entry %d holds a private key: only "
					"certificates and CRLs belong there",
					path, i + 1);
		if (x->x509 == NULL && x->crl == NULL)
			return tpm_fail(
				why, cap, -EINVAL,
				"TPM CA file %s: entry %d is neither a certificate nor a CRL "
				"(a private key?)",
				path, i + 1);
		if (x->x509 != NULL) {
			r = ca_add(ca, x->x509);
			x->x509 = NULL;
			if (r < 0)
				return tpm_fail(why, cap, -ENOMEM, "TPM CA file %s: out of memory",
						path);
			*roots += r;
		}
		if (x->crl != NULL) {
			if (sk_X509_CRL_push(ca->crls, x->crl) <= 0)
				return tpm_fail(why, cap, -ENOMEM, "TPM CA file %s: out of memory",
						path);
			x->crl = NULL;
		}
	}
	return 0;
}

struct tpm_ca *
tpm_ca_load(const char *path, char *why, size_t cap)
{
	struct tpm_ca *ca = calloc(1, sizeof(*ca));
	BIO *in = BIO_new_file(path, "r");
	STACK_OF(X509_INFO) *infos = NULL;
	int roots = 0, n;

	if (ca == NULL || in == NULL || (ca->roots = X509_STORE_new()) == NULL ||
	    (ca->issuers = sk_X509_new_null()) == NULL ||
	    (ca->crls = sk_X509_CRL_new_null()) == NULL || (ca->all = sk_X509_new_null()) == NULL) {
		tpm_fail(why, cap, -EIO, "TPM CA file %s: cannot read it", path);
		goto fail;
	}
	ERR_clear_error();
	infos = PEM_X509_INFO_read_bio(in, NULL, NULL, NULL);
	n = infos != NULL ? sk_X509_INFO_num(infos) : 0;
	if (infos == NULL || n > CA_MAX) {
		tpm_fail(why, cap, -EINVAL,
			 "TPM CA file %s: not PEM certificates and CRLs (or more than %d)", path,
			 CA_MAX);
		goto fail;
	}
	if (ca_take(ca, infos, path, &roots, why, cap) != 0)
		goto fail;
	if (roots == 0) {
		tpm_fail(why, cap, -EINVAL, "TPM CA file %s: no self-signed root certificate",
			 path);
		goto fail;
	}
	for (int i = 0; i < sk_X509_CRL_num(ca->crls); i++) {
		X509_CRL *crl = sk_X509_CRL_value(ca->crls, i);

		X509 *signer = crl_signer(ca, crl);
		char issuer[160] = "";

		X509_NAME_oneline(X509_CRL_get_issuer(crl), issuer, sizeof(issuer));
		if (signer == NULL) {
			tpm_fail(why, cap, -EINVAL,
				 "TPM CA file %s: the CRL of %s is not signed by a certificate of "
				 "the file",
				 path, issuer);
			goto fail;
		}
		if (!may_sign_crls(signer)) {
			tpm_fail(why, cap, -EINVAL,
				 "TPM CA file %s: the CRL of %s is signed by a certificate whose "
				 "keyUsage lacks cRLSign: it cannot be used",
				 path, issuer);
			goto fail;
		}
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(in);
	ERR_clear_error();
	return ca;
fail:
	ERR_clear_error();
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(in);
	tpm_ca_free(ca);
	return NULL;
}

/* The text of the first entry of type oid in name into dst ("" when none). */
static void
name_entry(const X509_NAME *name, const char *oid, char *dst, size_t cap)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int i = obj ? X509_NAME_get_index_by_OBJ(name, obj, -1) : -1;
	const ASN1_STRING *s;
	int len;

	dst[0] = '\0';
	if (i >= 0 && (s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))) != NULL) {
		len = ASN1_STRING_length(s);
		if (len > 0 && (size_t)len < cap) {
			memcpy(dst, ASN1_STRING_get0_data(s), (size_t)len);
			dst[len] = '\0';
			for (int k = 0; k < len; k++) /* a reason is one printable line */
				if (dst[k] < 0x20 || dst[k] > 0x7e)
					dst[k] = '?';
		}
	}
	ASN1_OBJECT_free(obj);
}

/* subjectAltName's directoryName with the TPM's manufacturer, model and version. */
static int
ek_san(X509 *cert, struct tpm_ek_info *info, char *why, size_t cap)
{
	GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	int n = san ? sk_GENERAL_NAME_num(san) : 0, found = 0;

	for (int i = 0; i < n && !found; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(san, i);

		if (g->type != GEN_DIRNAME)
			continue;
		name_entry(g->d.directoryName, OID_TPM_MANUFACTURER, info->manufacturer,
			   sizeof(info->manufacturer));
		name_entry(g->d.directoryName, OID_TPM_MODEL, info->model, sizeof(info->model));
		name_entry(g->d.directoryName, OID_TPM_VERSION, info->version,
			   sizeof(info->version));
		found = info->manufacturer[0] != '\0';
	}
	GENERAL_NAMES_free(san);
	return found ? 0
		     : tpm_fail(why, cap, -EBADMSG,
				"EK certificate: subjectAltName names no TPM manufacturer");
}

/* extendedKeyUsage, when present, must name tcg-kp-EKCertificate; key usage fits an EK. */
static int
ek_usage(X509 *cert, char *why, size_t cap)
{
	int crit = 0, present, found = 0;
	EXTENDED_KEY_USAGE *eku = X509_get_ext_d2i(cert, NID_ext_key_usage, &crit, NULL);
	ASN1_OBJECT *want = OBJ_txt2obj(OID_EK_CERTIFICATE, 1);
	uint32_t ku = X509_get_key_usage(cert);

	present = eku != NULL;
	for (int i = 0; eku != NULL && want != NULL && i < sk_ASN1_OBJECT_num(eku); i++)
		found |= OBJ_cmp(sk_ASN1_OBJECT_value(eku, i), want) == 0;
	EXTENDED_KEY_USAGE_free(eku);
	ASN1_OBJECT_free(want);
	if (!present && crit != -1) /* there but undecodable (crit 0/1), or there twice (-2) */
		return tpm_fail(why, cap, -EBADMSG, "EK certificate: extendedKeyUsage unreadable");
	if (present && !found)
		return tpm_fail(why, cap, -EBADMSG,
				"EK certificate: extendedKeyUsage lacks tcg-kp-EKCertificate");
	if (ku != UINT32_MAX && !(ku & (KU_KEY_ENCIPHERMENT | KU_KEY_AGREEMENT)))
		return tpm_fail(why, cap, -EBADMSG,
				"EK certificate: key usage allows neither key encipherment nor "
				"key agreement");
	return 0;
}

/* 1 when the bundle holds a CRL by cert's issuer. */
static int
issuer_has_crl(const struct tpm_ca *ca, X509 *cert)
{
	for (int i = 0; i < sk_X509_CRL_num(ca->crls); i++)
		if (X509_NAME_cmp(X509_CRL_get_issuer(sk_X509_CRL_value(ca->crls, i)),
				  X509_get_issuer_name(cert)) == 0)
			return 1;
	return 0;
}

/* X.509 path validation of cert to a root of ca (and its revocation, see the top). */
static int
ek_chain(const struct tpm_ca *ca, X509 *cert, char *why, size_t cap)
{
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int ok, err = 0, depth = 0;

	ok = ctx != NULL && X509_STORE_CTX_init(ctx, ca->roots, cert, ca->issuers) == 1;
	if (ok && issuer_has_crl(ca, cert)) {
		/* the leaf's revocation status: its issuer's CRL, current, must not list it */
		X509_STORE_CTX_set0_crls(ctx, ca->crls);
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK);
	}
	if (ok) {
		ok = X509_verify_cert(ctx) == 1;
		err = X509_STORE_CTX_get_error(ctx);
		depth = X509_STORE_CTX_get_error_depth(ctx);
	}
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	if (ok)
		return 0;
	return tpm_fail(why, cap, -EBADMSG,
			"EK certificate: X.509 verification against the manufacturer CAs failed: "
			"%s (at depth %d)%s",
			err ? X509_verify_cert_error_string(err) : "cannot verify", depth,
			err == X509_V_ERR_CRL_HAS_EXPIRED
				? "; the maker's CRL in tpm_ca_file is out of date: put a current "
				  "one there"
				: "");
}

/* The EK public the device sent has the certificate's key. */
static int
ek_key_matches(X509 *cert, const struct tpm_public *ek, char *why, size_t cap)
{
	EVP_PKEY *key = NULL;
	int r = tpm_public_pkey(ek, &key, why, cap);

	if (r != 0)
		return r;
	if (EVP_PKEY_eq(key, X509_get0_pubkey(cert)) != 1)
		r = tpm_fail(why, cap, -EBADMSG,
			     "EK public does not match the EK certificate's key");
	EVP_PKEY_free(key);
	return r;
}

/* The issuer's name as one RFC 2253 line into out (cut to fit); "" when it cannot be printed. */
static void
ek_issuer(X509 *cert, char *out, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	int n;

	out[0] = '\0';
	if (b == NULL)
		return;
	/* RFC 2253 escapes control and non-ASCII bytes: one printable ASCII line */
	if (X509_NAME_print_ex(b, X509_get_issuer_name(cert), 0, XN_FLAG_RFC2253) >= 0) {
		n = BIO_read(b, out, (int)cap - 1);
		out[n > 0 ? n : 0] = '\0';
	}
	BIO_free(b);
	ERR_clear_error();
}

int
tpm_ek_verify(const struct tpm_ca *ca, const uint8_t *der, size_t der_len,
	      const struct tpm_public *ek, struct tpm_ek_info *info, char *why, size_t cap)
{
	struct tpm_ek_info scratch;
	const unsigned char *p = der;
	X509 *cert;
	int r;

	if (info == NULL)
		info = &scratch;
	memset(info, 0, sizeof(*info));
	if (der_len > 8192 || (cert = d2i_X509(NULL, &p, (long)der_len)) == NULL) {
		ERR_clear_error();
		return tpm_fail(why, cap, -EINVAL, "EK certificate: not a DER X.509 certificate");
	}
	if (p != der + der_len)
		r = tpm_fail(why, cap, -EINVAL, "EK certificate: bytes after the certificate");
	else if ((r = ek_chain(ca, cert, why, cap)) == 0 && (r = ek_usage(cert, why, cap)) == 0 &&
		 (r = ek_san(cert, info, why, cap)) == 0)
		r = ek_key_matches(cert, ek, why, cap);
	if (r == 0)
		ek_issuer(cert, info->issuer, sizeof(info->issuer));
	X509_free(cert);
	return r;
}

/*
 * Self-signed TLS certificate for cleave-server: an ECDSA P-256 key and an X.509 v3 certificate
 * naming the server's DNS names and IP addresses, written as PEM files that GnuTLS (through
 * libmicrohttpd) loads and that curl accepts with --cacert. It does not load, renew or rotate
 * certificates and never logs the private key.
 */
#include "tls_cert.h"

#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "b64.h"
#include "crypto.h"
#include "fileio.h"
#include "log.h"
#include "util.h"

#define TLS_CERT_CN       "cleave-server"
#define TLS_CERT_MAX_DAYS 36500
#define DNS_NAME_MAX      253

static void
log_ossl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		str_copy(buf, sizeof(buf), "no OpenSSL error queued");
	log_warn("tls_cert: %s: %s", what, buf);
	ERR_clear_error();
}

/* Host names as RFC 1123 labels, optionally with a leading "*." wildcard label. */
static int
dns_name_valid(const char *s)
{
	size_t n = strnlen(s, DNS_NAME_MAX + 1);

	if (n == 0 || n > DNS_NAME_MAX || s[0] == '.' || s[n - 1] == '.')
		return 0;
	if (s[0] == '*') {
		if (s[1] != '.')
			return 0;
		s += 2;
	}
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.'))
			return 0;
		if (c == '.' && s[1] == '.')
			return 0;
	}
	return 1;
}

/* Appends one GENERAL_NAME to gens; value is consumed on success and on failure. */
static int
san_push(GENERAL_NAMES *gens, int type, ASN1_STRING *value)
{
	GENERAL_NAME *g;

	if (value == NULL)
		return -EINVAL;
	g = GENERAL_NAME_new();
	if (g == NULL) {
		ASN1_STRING_free(value);
		return -ENOMEM;
	}
	GENERAL_NAME_set0_value(g, type, value);
	if (sk_GENERAL_NAME_push(gens, g) <= 0) {
		GENERAL_NAME_free(g);
		return -ENOMEM;
	}
	return 0;
}

static int
add_san(X509 *x, const char *const *dns, size_t n_dns, const char *const *ips, size_t n_ips)
{
	GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
	int r = gens == NULL ? -ENOMEM : 0;

	for (size_t i = 0; r == 0 && i < n_dns; i++) {
		ASN1_IA5STRING *s = ASN1_IA5STRING_new();

		if (s != NULL && ASN1_STRING_set(s, dns[i], (int)strlen(dns[i])) != 1) {
			ASN1_IA5STRING_free(s);
			s = NULL;
		}
		r = s == NULL ? -ENOMEM : san_push(gens, GEN_DNS, s);
	}
	for (size_t i = 0; r == 0 && i < n_ips; i++) {
		/* a2i_IPADDRESS parses IPv4 and IPv6 text into the 4 or 16 raw bytes SAN wants. */
		r = san_push(gens, GEN_IPADD, a2i_IPADDRESS(ips[i]));
	}
	if (r == 0 && X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, X509V3_ADD_DEFAULT) != 1)
		r = -EIO;
	GENERAL_NAMES_free(gens);
	ERR_clear_error();
	return r;
}

static int
add_ext(X509 *x, X509V3_CTX *ctx, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, ctx, nid, value);
	int ok = ext != NULL && X509_add_ext(x, ext, -1) == 1;

	X509_EXTENSION_free(ext);
	if (!ok) {
		log_ossl(value);
		return -EIO;
	}
	return 0;
}

/* Positive 16-byte serial from the DRBG (RFC 5280 allows up to 20 octets, positive). */
static int
set_serial(X509 *x)
{
	uint8_t s[16];
	BIGNUM *bn;
	int ok;

	if (crypto_random(s, sizeof(s)) < 0)
		return -EIO;
	s[0] = (uint8_t)((s[0] & 0x7f) | 0x40);
	bn = BN_bin2bn(s, sizeof(s), NULL);
	ok = bn != NULL && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -EIO;
}

static int
set_names_and_validity(X509 *x, int days)
{
	X509_NAME *name = X509_get_subject_name(x);

	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)TLS_CERT_CN,
				       -1, -1, 0) != 1 ||
	    X509_set_issuer_name(x, name) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(x), 0) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(x), days, 0, NULL) == NULL) {
		log_ossl("certificate fields");
		return -EIO;
	}
	return 0;
}

static int
build_cert(X509 *x, EVP_PKEY *pkey, const char *const *dns, size_t n_dns, const char *const *ips,
	   size_t n_ips, int days)
{
	X509V3_CTX ctx;
	int r;

	r = set_serial(x);
	if (r == 0)
		r = set_names_and_validity(x, days);
	if (r == 0 && X509_set_pubkey(x, pkey) != 1)
		r = -EIO;
	if (r < 0)
		return r;
	X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
	/* The subject key id goes first: the authority key id of a self-signed cert copies it. */
	if ((r = add_ext(x, &ctx, NID_basic_constraints, "critical,CA:TRUE")) < 0 ||
	    (r = add_ext(x, &ctx, NID_key_usage, "critical,digitalSignature,keyCertSign")) < 0 ||
	    (r = add_ext(x, &ctx, NID_ext_key_usage, "serverAuth")) < 0 ||
	    (r = add_ext(x, &ctx, NID_subject_key_identifier, "hash")) < 0 ||
	    (r = add_ext(x, &ctx, NID_authority_key_identifier, "keyid:always")) < 0)
		return r;
	r = add_san(x, dns, n_dns, ips, n_ips);
	if (r < 0)
		return r;
	if (X509_sign(x, pkey, EVP_sha256()) <= 0) {
		log_ossl("X509_sign");
		return -EIO;
	}
	return 0;
}

/* Replaces path with the contents of bio (borrowed), atomically and with exactly mode. */
static int
write_bio_atomic(const char *path, BIO *bio, mode_t mode)
{
	char *data;
	long len = BIO_get_mem_data(bio, &data);

	if (len <= 0)
		return -EIO;
	return file_write_atomic(path, data, (size_t)len, mode);
}

static int
args_valid(const char *cert_path, const char *key_path, const char *const *dns, size_t n_dns,
	   const char *const *ips, size_t n_ips, int days)
{
	if (cert_path == NULL || key_path == NULL || strcmp(cert_path, key_path) == 0)
		return 0;
	if (days <= 0 || days > TLS_CERT_MAX_DAYS || n_dns + n_ips == 0)
		return 0;
	if ((n_dns > 0 && dns == NULL) || (n_ips > 0 && ips == NULL))
		return 0;
	for (size_t i = 0; i < n_dns; i++) {
		if (dns[i] == NULL || !dns_name_valid(dns[i]))
			return 0;
	}
	for (size_t i = 0; i < n_ips; i++) {
		uint8_t raw[16];

		if (ips[i] == NULL ||
		    (inet_pton(AF_INET, ips[i], raw) != 1 && inet_pton(AF_INET6, ips[i], raw) != 1))
			return 0;
	}
	return 1;
}

int
tls_cert_generate(const char *cert_path, const char *key_path, const char *const *dns_names,
		  size_t n_dns, const char *const *ips, size_t n_ips, int days)
{
	EVP_PKEY *pkey = NULL;
	X509 *x = NULL;
	BIO *kbio = NULL, *cbio = NULL;
	int r;

	if (!args_valid(cert_path, key_path, dns_names, n_dns, ips, n_ips, days)) {
		log_warn("tls_cert: invalid arguments");
		return -EINVAL;
	}
	pkey = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	x = X509_new();
	if (pkey == NULL || x == NULL) {
		log_ossl("P-256 key or certificate");
		r = -EIO;
		goto out;
	}
	r = build_cert(x, pkey, dns_names, n_dns, ips, n_ips, days);
	if (r < 0)
		goto out;
	/* The key's PEM lives in the secure heap, which is wiped when the BIO is freed. */
	kbio = BIO_new(BIO_s_secmem());
	cbio = BIO_new(BIO_s_mem());
	if (kbio == NULL || cbio == NULL ||
	    PEM_write_bio_PrivateKey(kbio, pkey, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cbio, x) != 1) {
		log_ossl("PEM encoding");
		r = -EIO;
		goto out;
	}
	r = write_bio_atomic(key_path, kbio, 0600);
	if (r == 0)
		r = write_bio_atomic(cert_path, cbio, 0644);
out:
	BIO_free(kbio);
	BIO_free(cbio);
	X509_free(x);
	EVP_PKEY_free(pkey);
	return r;
}

int
tls_cert_pin_sha256(const char *cert_pem, char *out, size_t cap)
{
	BIO *bio = BIO_new_mem_buf(cert_pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;
	unsigned char *der = NULL;
	uint8_t h[32];
	int n, r = -EINVAL;

	/* The pin is over the public key (SubjectPublicKeyInfo), so it outlives a renewal that
	 * keeps the key, like curl's --pinnedpubkey and HPKP. */
	n = x ? i2d_PUBKEY(X509_get0_pubkey(x), &der) : -1;
	if (n > 0) {
		crypto_sha256(der, (size_t)n, h);
		r = b64_encode(out, cap, h, sizeof(h)) > 0 ? 0 : -ENOSPC;
	} else {
		log_ossl("reading the TLS certificate's public key");
	}
	OPENSSL_free(der);
	X509_free(x);
	BIO_free(bio);
	return r;
}

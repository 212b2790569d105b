/*
 * Thin wrappers over OpenSSL 3 for the primitives Cleave uses: DRBG bytes, SHA-256, Ed25519
 * keys, signatures and PEM files. The private key never leaves struct ed25519_key except as the
 * PKCS#8 file written by ed25519_key_save, and no function here logs key material. It does not
 * cache keys, manage key rotation or decide where key files live: callers own that policy.
 */
#include "crypto.h"
#include "wire.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <pthread.h>
#include <sodium.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "b64.h"
#include "fileio.h"
#include "log.h"
#include "util.h"

/* A PKCS#8 Ed25519 PEM is about 120 bytes; anything far larger is not ours. */
#define KEY_FILE_MAX 16384

struct ed25519_key {
	EVP_PKEY *pkey; /* owned; OpenSSL wipes the private half when it is freed */
	uint8_t pub[ED25519_PUB_LEN];
};

/* Logs the oldest queued OpenSSL error with context and empties the queue. */
static void
log_ossl(const char *what)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		str_copy(buf, sizeof(buf), "no OpenSSL error queued");
	log_warn("crypto: %s: %s", what, buf);
	ERR_clear_error();
}

int
crypto_random(void *buf, size_t n)
{
	uint8_t *p = buf;

	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;

		if (RAND_bytes(p, chunk) != 1) {
			log_ossl("RAND_bytes");
			return -EIO;
		}
		p += chunk;
		n -= (size_t)chunk;
	}
	return 0;
}

void
crypto_sha256_parts(const void *const *parts, const size_t *lens, size_t count,
		    uint8_t out[SHA256_LEN])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int outlen = 0;
	int ok = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1;

	for (size_t i = 0; ok && i < count; i++) {
		if (lens[i] > 0)
			ok = EVP_DigestUpdate(ctx, parts[i], lens[i]) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == SHA256_LEN;
	EVP_MD_CTX_free(ctx);
	if (!ok) {
		/*
		 * Only an allocation failure inside OpenSSL gets here. The API has no error return
		 * and a wrong hash would silently break ticket and receipt chains, so stop.
		 */
		log_ossl("SHA-256");
		abort();
	}
}

void
crypto_sha256(const void *data, size_t n, uint8_t out[SHA256_LEN])
{
	const void *parts[1] = {data};
	const size_t lens[1] = {n};

	crypto_sha256_parts(parts, lens, 1, out);
}

int
hex_encode(char *dst, size_t cap, const void *src, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *s = src;

	if (n > (SIZE_MAX - 1) / 2 || cap < 2 * n + 1) {
		if (cap > 0)
			dst[0] = '\0';
		return -ENOSPC;
	}
	for (size_t i = 0; i < n; i++) {
		dst[2 * i] = digits[s[i] >> 4];
		dst[2 * i + 1] = digits[s[i] & 15];
	}
	dst[2 * n] = '\0';
	return 0;
}

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;
static int sodium_ready;

static void
sodium_start(void)
{
	sodium_ready = sodium_init() >= 0;
}

/*
 * Verification is the hot path of every device request, and libsodium's Ed25519 verify is
 * 2-2.5x faster than OpenSSL 3.0's here (bench/RESULTS.md). Both follow RFC 8032 and reject a
 * non-canonical S; libsodium also rejects small-order keys. Signing stays with OpenSSL, which
 * holds the private keys.
 */
int
ed25519_verify(const uint8_t pub[ED25519_PUB_LEN], const void *msg, size_t n,
	       const uint8_t sig[ED25519_SIG_LEN])
{
	static const uint8_t empty;

	pthread_once(&sodium_once, sodium_start);
	if (!sodium_ready)
		return -EIO;
	if (crypto_sign_verify_detached(sig, n > 0 ? msg : &empty, n, pub) == 0)
		return 0;
	/* A forged signature is the expected failure; a key that is no point is the caller's. */
	return crypto_core_ed25519_is_valid_point(pub) ? -EBADMSG : -EINVAL;
}

/* Wraps pkey (consumed on success and on failure) into a new key object. */
static int
key_wrap(EVP_PKEY *pkey, struct ed25519_key **out)
{
	struct ed25519_key *k;
	size_t len = ED25519_PUB_LEN;

	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(pkey);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (k == NULL) {
		EVP_PKEY_free(pkey);
		return -ENOMEM;
	}
	k->pkey = pkey;
	if (EVP_PKEY_get_raw_public_key(pkey, k->pub, &len) != 1 || len != ED25519_PUB_LEN) {
		log_ossl("Ed25519 public key");
		ed25519_key_free(k);
		return -EINVAL;
	}
	*out = k;
	return 0;
}

int
ed25519_key_generate(struct ed25519_key **out)
{
	EVP_PKEY *pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");

	if (pkey == NULL) {
		log_ossl("Ed25519 keygen");
		return -EIO;
	}
	return key_wrap(pkey, out);
}

/* Refuses to prompt on the terminal for a passphrase: Cleave's key files are not encrypted. */
static int
no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* Reads a whole small file into buf (cap bytes). Returns its length or -errno. */
static long
read_small_file(const char *path, char *buf, size_t cap)
{
	struct stat st;
	size_t got = 0;
	int fd, r = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size >= cap) {
		r = -EINVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0)
		log_warn("crypto: key file %s is readable by group or others", path);
	while (got < cap) {
		ssize_t n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto out;
		}
		if (n == 0)
			break;
		got += (size_t)n;
	}
	if (got == cap)
		r = -EINVAL; /* grew while we read it */
out:
	close(fd);
	return r < 0 ? r : (long)got;
}

int
ed25519_key_load(const char *path, struct ed25519_key **out)
{
	char *buf;
	long len;
	BIO *bio;
	EVP_PKEY *pkey;

	buf = malloc(KEY_FILE_MAX);
	if (buf == NULL)
		return -ENOMEM;
	len = read_small_file(path, buf, KEY_FILE_MAX);
	if (len < 0) {
		if (len != -ENOENT)
			log_errno((int)len, "crypto: cannot read key file %s", path);
		free(buf);
		return (int)len;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	pkey = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL) : NULL;
	BIO_free(bio);
	secure_zero(buf, KEY_FILE_MAX);
	free(buf);
	if (pkey == NULL) {
		log_warn("crypto: key file %s is not an unencrypted PEM private key", path);
		log_ossl("PEM_read_bio_PrivateKey");
		return -EINVAL;
	}
	if (EVP_PKEY_get_id(pkey) != EVP_PKEY_ED25519)
		log_warn("crypto: key file %s does not hold an Ed25519 key", path);
	return key_wrap(pkey, out);
}

int
ed25519_key_save(const struct ed25519_key *k, const char *path)
{
	BIO *bio;
	char *pem;
	long len;
	int r;

	/* The secure-heap BIO wipes its buffer when it is freed. */
	bio = BIO_new(BIO_s_secmem());
	if (bio == NULL || PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		log_ossl("PEM_write_bio_PrivateKey");
		BIO_free(bio);
		return -EIO;
	}
	len = BIO_get_mem_data(bio, &pem);
	r = len > 0 ? file_write_atomic(path, pem, (size_t)len, 0600) : -EIO;
	BIO_free(bio);
	return r;
}

int
ed25519_key_sign(const struct ed25519_key *k, const void *msg, size_t n,
		 uint8_t sig[ED25519_SIG_LEN])
{
	static const uint8_t empty;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	size_t siglen = ED25519_SIG_LEN;
	int r = 0;

	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, k->pkey) != 1 ||
	    EVP_DigestSign(ctx, sig, &siglen, n > 0 ? msg : &empty, n) != 1 ||
	    siglen != ED25519_SIG_LEN) {
		log_ossl("Ed25519 sign");
		r = -EIO;
	}
	EVP_MD_CTX_free(ctx);
	return r;
}

void
ed25519_key_public(const struct ed25519_key *k, uint8_t pub[ED25519_PUB_LEN])
{
	memcpy(pub, k->pub, ED25519_PUB_LEN);
}

void
ed25519_key_free(struct ed25519_key *k)
{
	if (k == NULL)
		return;
	EVP_PKEY_free(k->pkey);
	secure_zero(k, sizeof(*k));
	free(k);
}

int
ed25519_pub_to_pem(const uint8_t pub[ED25519_PUB_LEN], char **pem)
{
	EVP_PKEY *pkey;
	BIO *bio = NULL;
	char *data, *s;
	long len;
	int r = -EIO;

	pkey = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, ED25519_PUB_LEN);
	if (pkey == NULL) {
		ERR_clear_error();
		return -EINVAL;
	}
	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PUBKEY(bio, pkey) != 1) {
		log_ossl("PEM_write_bio_PUBKEY");
		goto out;
	}
	len = BIO_get_mem_data(bio, &data);
	if (len <= 0)
		goto out;
	s = malloc((size_t)len + 1);
	if (s == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(s, data, (size_t)len);
	s[len] = '\0';
	*pem = s;
	r = 0;
out:
	BIO_free(bio);
	EVP_PKEY_free(pkey);
	return r;
}

int
key_fingerprint(const uint8_t pub[ED25519_PUB_LEN], char *dst, size_t cap)
{
	static const char prefix[] = "SHA256:";
	uint8_t h[SHA256_LEN];
	char b[48];
	long n;

	crypto_sha256(pub, ED25519_PUB_LEN, h);
	n = b64_encode(b, sizeof(b), h, sizeof(h));
	if (n < 0)
		return (int)n;
	/* OpenSSH shows the standard alphabet without the trailing padding. */
	while (n > 0 && b[n - 1] == '=')
		b[--n] = '\0';
	if (cap < sizeof(prefix) + (size_t)n) {
		if (cap > 0)
			dst[0] = '\0';
		return -ENOSPC;
	}
	memcpy(dst, prefix, sizeof(prefix) - 1);
	memcpy(dst + sizeof(prefix) - 1, b, (size_t)n + 1);
	return 0;
}

void
crypto_policy_digest(const uint64_t args[4], uint8_t out[16])
{
	uint8_t enc[32], h[SHA256_LEN];

	policy_args_encode(args, enc);
	crypto_sha256(enc, sizeof(enc), h);
	memcpy(out, h, 16);
}

int
ed25519_key_derive(const struct ed25519_key *k, const char *info, uint8_t *out, size_t n)
{
	uint8_t seed[32];
	size_t slen = sizeof(seed);
	EVP_PKEY_CTX *ctx = NULL;
	int r = -EIO;

	if (EVP_PKEY_get_raw_private_key(k->pkey, seed, &slen) != 1 || slen != sizeof(seed)) {
		log_ossl("cannot read the key's seed");
		goto out;
	}
	ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
	if (ctx == NULL || EVP_PKEY_derive_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_CTX_set1_hkdf_key(ctx, seed, (int)slen) != 1 ||
	    EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)strlen(info)) != 1 ||
	    EVP_PKEY_derive(ctx, out, &n) != 1) {
		log_ossl("HKDF");
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_cleanse(seed, sizeof(seed));
	return r;
}

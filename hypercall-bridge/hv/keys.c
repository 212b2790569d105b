/*
 * Key material of the corporate volume (see keys.h). The root key files are a stand-in for a
 * non-exportable, rollback-resistant key in the phone's secure hardware (TEE, secure element):
 * deleting the file plays the role of destroying the hardware key. On flash an unlinked file's
 * blocks may survive, which is exactly why real phones keep this key in hardware; the stand-in is
 * honest about that in hypercall-bridge/VOLUME.md. This file never logs key bytes.
 */
#include "keys.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "crypto.h"
#include "durable.h"
#include "log.h"

#define ROOT_NAME_CAP 48
static const char xts_info[] = "cleave corporate volume xts v1";

int
keys_secret_new(size_t len, struct keys_secret **out)
{
	long page = sysconf(_SC_PAGESIZE);
	struct keys_secret *s;
	size_t maplen;
	void *p;

	*out = NULL;
	if (len == 0 || page <= 0 || len > 65536)
		return -EINVAL;
	maplen = (len + (size_t)page - 1) / (size_t)page * (size_t)page;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	p = mmap(NULL, maplen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		free(s);
		return -ENOMEM;
	}
	if (mlock(p, maplen) != 0 || madvise(p, maplen, MADV_DONTDUMP) != 0) {
		int err = errno;

		log_errno(err, "keys: cannot lock secret memory");
		munlock(p, maplen);
		munmap(p, maplen);
		free(s);
		return -err;
	}
	s->p = p;
	s->len = len;
	s->maplen = maplen;
	*out = s;
	return 0;
}

void
keys_secret_free(struct keys_secret *s)
{
	if (s == NULL)
		return;
	explicit_bzero(s->p, s->maplen);
	munlock(s->p, s->maplen);
	munmap(s->p, s->maplen);
	free(s);
}

/* Builds "root-<epoch>.key" (or with suffix); the name never contains '/'. */
static int
root_name(char *dst, size_t cap, uint64_t epoch, const char *suffix)
{
	int n = snprintf(dst, cap, "root-%" PRIu64 "%s%s", epoch,
			 keys_tpm_active() ? ".sealed" : ".key", suffix);

	if (n < 0 || (size_t)n >= cap || strchr(dst, '/') != NULL)
		return -EINVAL;
	return 0;
}

int
keys_root_create(int dirfd, uint64_t epoch)
{
	char name[ROOT_NAME_CAP];
	struct keys_secret *key = NULL;
	int err;

	if ((err = root_name(name, sizeof(name), epoch, "")) != 0)
		return err;
	if (keys_tpm_active())
		return keys_tpm_root_create(dirfd, name);
	if ((err = keys_secret_new(KEYS_ROOT_LEN, &key)) != 0)
		return err;
	if (crypto_random(key->p, KEYS_ROOT_LEN) != 0)
		err = -EIO;
	else
		err = durable_replace(dirfd, name, key->p, KEYS_ROOT_LEN);
	keys_secret_free(key);
	return err;
}

int
keys_root_load(int dirfd, uint64_t epoch, struct keys_secret **out)
{
	char name[ROOT_NAME_CAP];
	struct keys_secret *key = NULL;
	struct stat st;
	size_t got = 0;
	int fd, err;

	*out = NULL;
	if ((err = root_name(name, sizeof(name), epoch, "")) != 0)
		return err;
	if (keys_tpm_active())
		return keys_tpm_root_load(dirfd, name, out);
	fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		if (err != -ENOENT)
			log_errno(-err, "keys: cannot open root key %s", name);
		return err;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size != KEYS_ROOT_LEN) {
		log_warn("keys: root key %s is not a %d-byte regular file", name, KEYS_ROOT_LEN);
		err = -EINVAL;
		goto out;
	}
	if ((st.st_mode & 077) != 0) {
		log_warn("keys: root key %s is readable by others (mode %03o); refusing it", name,
			 (unsigned int)(st.st_mode & 0777));
		err = -EPERM;
		goto out;
	}
	if ((err = keys_secret_new(KEYS_ROOT_LEN, &key)) != 0)
		goto out;
	while (got < KEYS_ROOT_LEN) {
		ssize_t r = read(fd, key->p + got, KEYS_ROOT_LEN - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -errno : -EINVAL;
			goto out;
		}
		got += (size_t)r;
	}
	*out = key;
	key = NULL;
out:
	keys_secret_free(key);
	close(fd);
	return err;
}

int
keys_root_reseal(int dirfd, uint64_t epoch, uint64_t deadline_ms)
{
	char name[ROOT_NAME_CAP];
	int err = root_name(name, sizeof(name), epoch, "");

	return err != 0 ? err : keys_tpm_reseal(dirfd, name, deadline_ms);
}

int
keys_root_exists(int dirfd, uint64_t epoch)
{
	char name[ROOT_NAME_CAP];
	struct stat st;
	int err;

	if ((err = root_name(name, sizeof(name), epoch, "")) != 0)
		return err;
	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return 1;
	return errno == ENOENT ? 0 : -errno;
}

/* Overwrites an existing root key file with random bytes before it is unlinked. */
static int
root_scrub(int dirfd, const char *name)
{
	uint8_t junk[KEYS_ROOT_LEN];
	ssize_t w;
	int fd, err = 0;

	fd = openat(dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	if (crypto_random(junk, sizeof(junk)) != 0)
		err = -EIO;
	if (err == 0)
		err = durable_step(name);
	if (err == 0 && (w = pwrite(fd, junk, sizeof(junk), 0)) != (ssize_t)sizeof(junk))
		err = w < 0 ? -errno : -EIO;
	if (err == 0 && fdatasync(fd) != 0)
		err = -errno;
	close(fd);
	return err;
}

int
keys_root_destroy(int dirfd, uint64_t epoch)
{
	char name[ROOT_NAME_CAP];
	int err;

	if ((err = root_name(name, sizeof(name), epoch, "")) != 0)
		return err;
	if ((err = root_scrub(dirfd, name)) != 0) {
		log_errno(-err, "keys: cannot overwrite root key %s", name);
		return err;
	}
	if ((err = durable_step(name)) != 0 || (unlinkat(dirfd, name, 0) != 0 && errno != ENOENT)) {
		err = err != 0 ? err : -errno;
		log_errno(-err, "keys: cannot unlink root key %s", name);
		return err;
	}
	if ((err = durable_step("directory sync")) != 0 || fsync(dirfd) != 0) {
		err = err != 0 ? err : -errno;
		log_errno(-err, "keys: cannot sync state dir after removing %s", name);
		return err;
	}
	return 0;
}

/* Parses "root-<digits>.key" (".sealed" with a TPM); 0 and the epoch, or -1 for another name. */
static int
parse_root_name(const char *name, uint64_t *epoch)
{
	uint64_t v = 0;
	const char *p;

	if (strncmp(name, "root-", 5) != 0)
		return -1;
	p = name + 5;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (strcmp(p, keys_tpm_active() ? ".sealed" : ".key") != 0)
		return -1;
	*epoch = v;
	return 0;
}

int
keys_root_destroy_upto(int dirfd, uint64_t max_epoch)
{
	struct dirent *de;
	DIR *d;
	int fd, err = 0;

	fd = dup(dirfd);
	if (fd < 0)
		return -errno;
	d = fdopendir(fd);
	if (d == NULL) {
		err = -errno;
		close(fd);
		return err;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		uint64_t epoch;

		if (parse_root_name(de->d_name, &epoch) != 0 || epoch > max_epoch)
			continue;
		int e = keys_root_destroy(dirfd, epoch);

		if (e != 0 && err == 0)
			err = e;
	}
	closedir(d);
	return err;
}

int
keys_wrap(const uint8_t *root, const uint8_t *vmk, const void *aad, size_t aad_len,
	  uint8_t out[KEYS_WRAPPED_LEN])
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	uint8_t *nonce = out, *ct = out + KEYS_NONCE_LEN, *tag = ct + KEYS_VMK_LEN;
	int n, err = -EIO;

	if (ctx == NULL)
		return -ENOMEM;
	if (crypto_random(nonce, KEYS_NONCE_LEN) != 0)
		goto out;
	if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, root, nonce) != 1 ||
	    EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_EncryptUpdate(ctx, ct, &n, vmk, KEYS_VMK_LEN) != 1 || n != KEYS_VMK_LEN ||
	    EVP_EncryptFinal_ex(ctx, ct + n, &n) != 1 ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, KEYS_TAG_LEN, tag) != 1)
		goto out;
	err = 0;
out:
	if (err != 0) {
		log_warn("keys: AES-256-GCM wrap failed");
		explicit_bzero(out, KEYS_WRAPPED_LEN);
	}
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

int
keys_unwrap(const uint8_t *root, const uint8_t in[KEYS_WRAPPED_LEN], const void *aad,
	    size_t aad_len, uint8_t *vmk_out)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	const uint8_t *nonce = in, *ct = in + KEYS_NONCE_LEN, *tag = ct + KEYS_VMK_LEN;
	uint8_t tagbuf[KEYS_TAG_LEN];
	int n, err = -EIO;

	if (ctx == NULL)
		return -ENOMEM;
	memcpy(tagbuf, tag, sizeof(tagbuf));
	if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, root, nonce) != 1 ||
	    EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aad_len) != 1 ||
	    EVP_DecryptUpdate(ctx, vmk_out, &n, ct, KEYS_VMK_LEN) != 1 || n != KEYS_VMK_LEN ||
	    EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, KEYS_TAG_LEN, tagbuf) != 1)
		goto out;
	err = EVP_DecryptFinal_ex(ctx, vmk_out + n, &n) == 1 ? 0 : -EKEYREJECTED;
out:
	if (err != 0)
		explicit_bzero(vmk_out, KEYS_VMK_LEN);
	EVP_CIPHER_CTX_free(ctx);
	return err;
}

int
keys_derive_xts(const uint8_t *vmk, const uint8_t uuid[16], uint8_t *out)
{
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
	EVP_KDF_CTX *kctx = kdf != NULL ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[5];
	int err = -EIO;

	if (kctx == NULL)
		goto out;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)"SHA256", 0);
	params[1] =
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)vmk, KEYS_VMK_LEN);
	params[2] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)uuid, 16);
	params[3] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *)xts_info,
						      sizeof(xts_info) - 1);
	params[4] = OSSL_PARAM_construct_end();
	if (EVP_KDF_derive(kctx, out, KEYS_XTS_LEN, params) != 1)
		goto out;
	/* OpenSSL rejects XTS keys with equal halves; so do we, before it does. */
	err = ct_memcmp(out, out + KEYS_XTS_LEN / 2, KEYS_XTS_LEN / 2) == 0 ? -EKEYREJECTED : 0;
out:
	if (err != 0) {
		log_warn("keys: HKDF-SHA-256 derivation of the data key failed");
		explicit_bzero(out, KEYS_XTS_LEN);
	}
	EVP_KDF_CTX_free(kctx);
	EVP_KDF_free(kdf);
	return err;
}

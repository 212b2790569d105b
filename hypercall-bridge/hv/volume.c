/*
 * The corporate volume's lifecycle and data path (see volume.h): create, open with header
 * recovery, sector I/O through AES-256-XTS, lock, unlock and rekey. Plaintext exists only in
 * the caller's buffers; the file sees ciphertext from a bounce buffer. The wipe steps live in
 * volume_wipe.c; the header codec in volume_hdr.c; key material in keys.c.
 */
#include "volume_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/provider.h>

#include "crypto.h"
#include "durable.h"
#include "log.h"
#include "wire.h"

#define MIB             (1024u * 1024u)
#define VOLUME_XTS_NAME "AES-256-XTS"

static int
pwrite_all(int fd, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

/* Reads exactly n bytes; a short file is -EIO. */
static int
pread_all(int fd, uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t r = pread(fd, p, n, (off_t)off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		n -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int
write_copy(struct volume *v, const struct volume_hdr *h, int copy)
{
	uint8_t img[VOLUME_HDR_SIZE];
	uint64_t off = copy == VOLUME_COPY_A ? VOLUME_HDR_A_OFF : VOLUME_HDR_B_OFF;
	int err;

	volume_hdr_encode(h, copy, img);
	err = durable_step(copy == VOLUME_COPY_A ? "volume header A" : "volume header B");
	if (err == 0)
		err = pwrite_all(v->fd, img, sizeof(img), off);
	if (err == 0 && fdatasync(v->fd) != 0)
		err = -errno;
	if (err != 0)
		log_errno(-err, "volume %s: cannot write header copy %c", v->name, "AB"[copy]);
	return err;
}

int
volume_hdr_commit(struct volume *v, struct volume_hdr *h)
{
	int err;

	h->seq = v->hdr.seq + 1;
	if ((err = write_copy(v, h, VOLUME_COPY_A)) != 0 ||
	    (err = write_copy(v, h, VOLUME_COPY_B)) != 0)
		return err;
	v->hdr = *h;
	return 0;
}

int
volume_hdr_read_both(struct volume *v, struct volume_hdr h[2], int rc[2])
{
	uint8_t img[VOLUME_HDR_SIZE];
	const uint64_t offs[2] = {VOLUME_HDR_A_OFF, VOLUME_HDR_B_OFF};
	int err;

	for (int i = 0; i < 2; i++) {
		if ((err = pread_all(v->fd, img, sizeof(img), offs[i])) != 0) {
			log_errno(-err, "volume %s: cannot read header copy %c", v->name, "AB"[i]);
			return err;
		}
		rc[i] = volume_hdr_decode(img, i, v->file_size, &h[i]);
	}
	return 0;
}

void
volume_keys_drop(struct volume *v)
{
	if (v->aes.freectx != NULL) {
		if (v->enc != NULL)
			v->aes.freectx(v->enc);
		if (v->dec != NULL)
			v->aes.freectx(v->dec);
	}
	v->enc = v->dec = NULL;
	EVP_CIPHER_free(v->aes.cipher);
	memset(&v->aes, 0, sizeof(v->aes));
	keys_secret_free(v->xts);
	v->xts = NULL;
}

/* Is name one of the colon-separated names of a provider algorithm (case-insensitive)? */
static int
names_have(const char *names, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = names; p != NULL; p = strchr(p, ':')) {
		if (*p == ':')
			p++;
		if (strncasecmp(p, name, n) == 0 && (p[n] == '\0' || p[n] == ':'))
			return 1;
	}
	return 0;
}

/*
 * Fills x with the functions of the provider that EVP_CIPHER_fetch picks for AES-256-XTS.
 * Sectors call them directly instead of EVP_CipherInit_ex + EVP_CipherUpdate because OpenSSL
 * 3.0 re-reads the IV length through its parameter lookup (string compares) on every
 * EVP_CipherInit_ex and drops the cached value each time (openssl/openssl#17064, #17862);
 * without it sectors ran 10-20% faster in memory (bench/RESULTS.md). These are the calls EVP makes
 * itself, on the same provider and context type, so key checks, the one-data-unit-per-call rule
 * and the cleansing in freectx are unchanged. On failure x may hold a cipher to free.
 */
static int
xts_impl_get(struct volume_xts_impl *x)
{
	const OSSL_PROVIDER *prov;
	const OSSL_ALGORITHM *algs, *a;
	int no_store = 0;

	memset(x, 0, sizeof(*x));
	x->cipher = EVP_CIPHER_fetch(NULL, VOLUME_XTS_NAME, NULL);
	prov = x->cipher != NULL ? EVP_CIPHER_get0_provider(x->cipher) : NULL;
	algs = prov != NULL ? OSSL_PROVIDER_query_operation(prov, OSSL_OP_CIPHER, &no_store) : NULL;
	for (a = algs; a != NULL && a->algorithm_names != NULL; a++) {
		if (!names_have(a->algorithm_names, VOLUME_XTS_NAME))
			continue;
		for (const OSSL_DISPATCH *d = a->implementation; d->function_id != 0; d++) {
			if (d->function_id == OSSL_FUNC_CIPHER_NEWCTX)
				x->newctx = OSSL_FUNC_cipher_newctx(d);
			else if (d->function_id == OSSL_FUNC_CIPHER_FREECTX)
				x->freectx = OSSL_FUNC_cipher_freectx(d);
			else if (d->function_id == OSSL_FUNC_CIPHER_ENCRYPT_INIT)
				x->einit = OSSL_FUNC_cipher_encrypt_init(d);
			else if (d->function_id == OSSL_FUNC_CIPHER_DECRYPT_INIT)
				x->dinit = OSSL_FUNC_cipher_decrypt_init(d);
			else if (d->function_id == OSSL_FUNC_CIPHER_CIPHER)
				x->run = OSSL_FUNC_cipher_cipher(d);
		}
		break;
	}
	if (algs != NULL)
		OSSL_PROVIDER_unquery_operation(prov, OSSL_OP_CIPHER, algs);
	if (x->newctx == NULL || x->freectx == NULL || x->einit == NULL || x->dinit == NULL ||
	    x->run == NULL)
		return -EIO;
	return 0;
}

/* Derives the data key from vmk (borrowed) and keys both cipher contexts. */
static int
keys_install(struct volume *v, const uint8_t *vmk)
{
	void *provctx;
	int err;

	volume_keys_drop(v);
	if ((err = keys_secret_new(KEYS_XTS_LEN, &v->xts)) != 0)
		return err;
	if ((err = keys_derive_xts(vmk, v->hdr.uuid, v->xts->p)) != 0)
		goto fail;
	err = -EIO;
	if (xts_impl_get(&v->aes) != 0) {
		log_warn("volume %s: no usable " VOLUME_XTS_NAME " implementation", v->name);
		goto fail;
	}
	provctx = OSSL_PROVIDER_get0_provider_ctx(EVP_CIPHER_get0_provider(v->aes.cipher));
	v->enc = v->aes.newctx(provctx);
	v->dec = v->aes.newctx(provctx);
	if (v->enc == NULL || v->dec == NULL ||
	    v->aes.einit(v->enc, v->xts->p, KEYS_XTS_LEN, NULL, 0, NULL) != 1 ||
	    v->aes.dinit(v->dec, v->xts->p, KEYS_XTS_LEN, NULL, 0, NULL) != 1) {
		log_warn("volume %s: cannot key " VOLUME_XTS_NAME, v->name);
		goto fail;
	}
	return 0;
fail:
	volume_keys_drop(v);
	return err;
}

/* Unwraps the VMK of v->hdr with the root key of its epoch into vmk (caller's secret). */
static int
unwrap_current(struct volume *v, struct keys_secret *vmk)
{
	struct keys_secret *root = NULL;
	uint8_t aad[VOLUME_AAD_LEN];
	size_t n = volume_hdr_aad(&v->hdr, aad);
	int err;

	if ((err = keys_root_load(v->dirfd, v->hdr.key_epoch, &root)) != 0) {
		log_warn("volume %s: root key of epoch %llu unavailable", v->name,
			 (unsigned long long)v->hdr.key_epoch);
		return err;
	}
	err = keys_unwrap(root->p, v->hdr.wrapped, aad, n, vmk->p);
	keys_secret_free(root);
	if (err == -EKEYREJECTED)
		log_warn("volume %s: root key of epoch %llu does not unwrap the volume key",
			 v->name, (unsigned long long)v->hdr.key_epoch);
	return err;
}

static int
keys_load(struct volume *v)
{
	struct keys_secret *vmk = NULL;
	int err;

	if ((err = keys_secret_new(KEYS_VMK_LEN, &vmk)) != 0)
		return err;
	if ((err = unwrap_current(v, vmk)) == 0)
		err = keys_install(v, vmk->p);
	keys_secret_free(vmk);
	return err;
}

int
volume_format(struct volume *v, uint64_t epoch)
{
	struct keys_secret *root = NULL, *vmk = NULL;
	struct volume_hdr h;
	uint8_t aad[VOLUME_AAD_LEN];
	int err;

	volume_keys_drop(v);
	memset(&h, 0, sizeof(h));
	h.version = VOLUME_FORMAT_V1;
	h.state = HV_STATE_ACTIVE;
	h.sector_size = VOLUME_SECTOR_SIZE;
	h.cipher = VOLUME_CIPHER_XTS256;
	h.data_offset = VOLUME_DATA_OFF;
	h.data_length = v->file_size - VOLUME_DATA_OFF;
	h.key_epoch = epoch;
	h.wrap_alg = VOLUME_WRAP_GCM256;
	if (crypto_random(h.uuid, sizeof(h.uuid)) != 0)
		return -EIO;
	if ((err = keys_root_create(v->dirfd, epoch)) != 0 ||
	    (err = keys_root_load(v->dirfd, epoch, &root)) != 0 ||
	    (err = keys_secret_new(KEYS_VMK_LEN, &vmk)) != 0)
		goto out;
	if (crypto_random(vmk->p, KEYS_VMK_LEN) != 0) {
		err = -EIO;
		goto out;
	}
	if ((err = keys_wrap(root->p, vmk->p, aad, volume_hdr_aad(&h, aad), h.wrapped)) != 0 ||
	    (err = volume_hdr_commit(v, &h)) != 0)
		goto out;
	err = keys_install(v, vmk->p);
out:
	keys_secret_free(root);
	keys_secret_free(vmk);
	return err;
}

static int
name_valid(const char *name)
{
	size_t n = name != NULL ? strnlen(name, VOLUME_NAME_MAX) : 0;

	return n > 0 && n < VOLUME_NAME_MAX && strchr(name, '/') == NULL &&
	       strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Allocates a handle and opens the state dir; the volume file is opened by the caller. */
static int
handle_new(const char *dir, const char *name, struct volume **out)
{
	struct volume *v;

	*out = NULL;
	if (dir == NULL || !name_valid(name))
		return -EINVAL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	v->fd = -1;
	str_copy(v->name, sizeof(v->name), name);
	/* Page-aligned: see volume_read. The size is a multiple of the alignment, as C11 asks. */
	v->bounce = aligned_alloc(4096, (size_t)VOLUME_MAX_IO_SECTORS * VOLUME_SECTOR_SIZE);
	v->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (v->bounce == NULL || v->dirfd < 0) {
		int err = v->bounce == NULL ? -ENOMEM : -errno;

		if (err != -ENOMEM)
			log_errno(-err, "volume: cannot open state dir %s", dir);
		volume_close(v);
		return err;
	}
	*out = v;
	return 0;
}

int
volume_create(const char *dir, const char *name, uint64_t mib, struct volume **out)
{
	struct volume *v;
	int err;

	*out = NULL;
	if (mib == 0 || mib > VOLUME_MAX_MIB)
		return -EINVAL;
	if ((err = handle_new(dir, name, &v)) != 0)
		return err;
	v->file_size = (uint64_t)VOLUME_DATA_OFF + mib * MIB;
	v->fd = openat(v->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (v->fd < 0) {
		err = -errno;
		log_errno(-err, "volume %s: cannot create", name);
		goto fail;
	}
	if ((err = durable_step(name)) != 0 || ftruncate(v->fd, (off_t)v->file_size) != 0 ||
	    fsync(v->dirfd) != 0) {
		err = err != 0 ? err : -errno;
		log_errno(-err, "volume %s: cannot size the file", name);
		goto fail_unlink;
	}
	if ((err = volume_format(v, 1)) != 0)
		goto fail_unlink;
	*out = v;
	return 0;
fail_unlink:
	unlinkat(v->dirfd, name, 0);
fail:
	volume_close(v);
	return err;
}

/*
 * Picks the valid copy with the highest seq into v->hdr (A on a tie, which our writer never
 * produces) and rewrites the other one from it when it is invalid, older or different.
 */
static int
recover_headers(struct volume *v)
{
	struct volume_hdr h[2];
	int rc[2], err, good, other;

	if ((err = volume_hdr_read_both(v, h, rc)) != 0)
		return err;
	if (rc[0] != 0 && rc[1] != 0) {
		log_err("volume %s: no valid header copy (A: %s, B: %s)", v->name, strerror(-rc[0]),
			strerror(-rc[1]));
		return -EBADMSG;
	}
	good = rc[0] != 0 || (rc[1] == 0 && h[1].seq > h[0].seq) ? 1 : 0;
	other = 1 - good;
	v->hdr = h[good];
	if (rc[other] == 0 && memcmp(&h[other], &h[good], sizeof(h[0])) == 0)
		return 0;
	log_warn("volume %s: header copy %c %s, rewriting it from copy %c (seq %llu)", v->name,
		 "AB"[other], rc[other] != 0 ? "invalid" : "stale", "AB"[good],
		 (unsigned long long)v -> hdr.seq);
	return write_copy(v, &v->hdr, other);
}

int
volume_open(const char *dir, const char *name, struct volume **out)
{
	struct volume *v;
	struct stat st;
	int err;

	*out = NULL;
	if ((err = handle_new(dir, name, &v)) != 0)
		return err;
	v->fd = openat(v->dirfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	if (v->fd < 0 || fstat(v->fd, &st) != 0) {
		err = -errno;
		log_errno(-err, "volume %s: cannot open", name);
		goto fail;
	}
	if (!S_ISREG(st.st_mode) || st.st_size < (off_t)VOLUME_DATA_OFF) {
		log_err("volume %s: not a volume file", name);
		err = -EBADMSG;
		goto fail;
	}
	v->file_size = (uint64_t)st.st_size;
	if ((err = recover_headers(v)) != 0)
		goto fail;
	err = v->hdr.state == HV_STATE_ACTIVE ? keys_load(v) : 0;
	if (err == -EPERM && keys_tpm_active()) {
		/* The TPM refuses the sealed root key: closed until a wipe provisions a new one. */
		log_warn("volume %s: its root key cannot be unsealed; it stays closed", name);
		err = 0;
	}
	if (err != 0)
		goto fail;
	*out = v;
	return 0;
fail:
	volume_close(v);
	return err;
}

int
volume_reload(struct volume *v)
{
	int err = recover_headers(v);

	if (err != 0 || v->hdr.state != HV_STATE_ACTIVE) {
		volume_keys_drop(v);
		return err;
	}
	return v->xts != NULL ? 0 : keys_load(v);
}

void
volume_close(struct volume *v)
{
	if (v == NULL)
		return;
	volume_keys_drop(v);
	if (v->fd >= 0)
		close(v->fd);
	if (v->dirfd >= 0)
		close(v->dirfd);
	free(v->bounce);
	explicit_bzero(v, sizeof(*v));
	free(v);
}

void
volume_info(const struct volume *v, struct volume_info *out)
{
	memset(out, 0, sizeof(*out));
	out->state = v->hdr.state;
	out->seq = v->hdr.seq;
	out->key_epoch = v->hdr.key_epoch;
	out->sectors = v->hdr.data_length / VOLUME_SECTOR_SIZE;
	memcpy(out->uuid, v->hdr.uuid, sizeof(out->uuid));
	out->keys_loaded = v->xts != NULL;
}

static int
io_check(const struct volume *v, uint64_t sector, uint32_t count, const void *buf)
{
	uint64_t sectors = v->hdr.data_length / VOLUME_SECTOR_SIZE;

	if (buf == NULL || count == 0 || count > VOLUME_MAX_IO_SECTORS)
		return -EINVAL;
	if (v->xts == NULL || v->hdr.state != HV_STATE_ACTIVE)
		return -EACCES;
	if (sector >= sectors || count > sectors - sector)
		return -ERANGE;
	return 0;
}

/*
 * One sector through XTS with tweak = LE64 sector index (IEEE 1619 data unit = sector): the
 * context enc or dec gets the sector's IV, then exactly one data unit. in and out may be the
 * same buffer or disjoint ones.
 */
static int
xts_sector(struct volume *v, int enc, uint64_t sector, const uint8_t *in, uint8_t *out)
{
	uint8_t iv[16] = {0};
	size_t n = 0;
	void *ctx = enc ? v->enc : v->dec;
	int ok;

	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(sector >> (8 * i));
	ok = enc ? v->aes.einit(ctx, NULL, 0, iv, sizeof(iv), NULL)
		 : v->aes.dinit(ctx, NULL, 0, iv, sizeof(iv), NULL);
	if (ok != 1 || v->aes.run(ctx, out, &n, VOLUME_SECTOR_SIZE, in, VOLUME_SECTOR_SIZE) != 1 ||
	    n != VOLUME_SECTOR_SIZE)
		return -EIO;
	return 0;
}

static int
sector_is_zero(const uint8_t *p)
{
	static const uint8_t zero[VOLUME_SECTOR_SIZE];

	return memcmp(p, zero, sizeof(zero)) == 0;
}

/*
 * The ciphertext is read into the page-aligned bounce buffer and decrypted from there into buf,
 * never read into buf itself: the kernel's copy out of the page cache ran at ~1.8 GB/s into a
 * destination 16 bytes past a page boundary (what malloc returns for 1 MiB) against ~12 GB/s
 * into an aligned one on the reference machine, so buf's alignment must not decide the speed.
 * On error buf holds no partial plaintext.
 */
int
volume_read(struct volume *v, uint64_t sector, uint32_t count, void *buf)
{
	uint8_t *out = buf;
	size_t len = (size_t)count * VOLUME_SECTOR_SIZE;
	int err;

	if ((err = io_check(v, sector, count, buf)) != 0)
		return err;
	err = pread_all(v->fd, v->bounce, len, VOLUME_DATA_OFF + sector * VOLUME_SECTOR_SIZE);
	if (err != 0) {
		log_errno(-err, "volume %s: read of sector %llu failed", v->name,
			  (unsigned long long)sector);
		return err;
	}
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *c = v->bounce + (size_t)i * VOLUME_SECTOR_SIZE;
		uint8_t *p = out + (size_t)i * VOLUME_SECTOR_SIZE;

		/*
		 * A hole (never written since format or provision) reads as zeros. Written
		 * ciphertext almost always differs from zero in its first bytes, where memcmp stops.
		 */
		if (sector_is_zero(c))
			memset(p, 0, VOLUME_SECTOR_SIZE);
		else if (xts_sector(v, 0, sector + i, c, p) != 0) {
			explicit_bzero(buf, len);
			return -EIO;
		}
	}
	return 0;
}

/* Encrypts all count sectors into the bounce buffer, then hands the file one pwrite. */
int
volume_write(struct volume *v, uint64_t sector, uint32_t count, const void *buf)
{
	const uint8_t *p = buf;
	int err;

	if ((err = io_check(v, sector, count, buf)) != 0)
		return err;
	for (uint32_t i = 0; i < count; i++) {
		if (xts_sector(v, 1, sector + i, p + (size_t)i * VOLUME_SECTOR_SIZE,
			       v->bounce + (size_t)i * VOLUME_SECTOR_SIZE) != 0)
			return -EIO;
	}
	err = pwrite_all(v->fd, v->bounce, (size_t)count * VOLUME_SECTOR_SIZE,
			 VOLUME_DATA_OFF + sector * VOLUME_SECTOR_SIZE);
	if (err != 0)
		log_errno(-err, "volume %s: write of sector %llu failed", v->name,
			  (unsigned long long)sector);
	return err;
}

int
volume_sync(struct volume *v)
{
	int err = durable_step("volume data");

	if (err != 0 || fdatasync(v->fd) != 0) {
		err = err != 0 ? err : -errno;
		log_errno(-err, "volume %s: fdatasync failed", v->name);
		return err;
	}
	return 0;
}

int
volume_lock(struct volume *v)
{
	struct volume_hdr h = v->hdr;

	if (v->hdr.state == HV_STATE_LOCKED)
		return 0;
	if (v->hdr.state != HV_STATE_ACTIVE)
		return -EPERM;
	/* Keys go first: a failed header write must not leave them in memory. */
	volume_keys_drop(v);
	h.state = HV_STATE_LOCKED;
	return volume_hdr_commit(v, &h);
}

int
volume_unlock(struct volume *v)
{
	struct volume_hdr h = v->hdr;
	int err;

	if (v->hdr.state == HV_STATE_ACTIVE && v->xts != NULL)
		return 0;
	if (v->hdr.state != HV_STATE_LOCKED)
		return -EPERM;
	if ((err = keys_load(v)) != 0)
		return err;
	h.state = HV_STATE_ACTIVE;
	if ((err = volume_hdr_commit(v, &h)) != 0)
		volume_keys_drop(v);
	return err;
}

/*
 * Crash windows: before the header commit the new root key file is an unused orphan (the next
 * rekey replaces it); after it, the old epoch's file is a leftover that the next rekey or wipe
 * removes with keys_root_destroy_upto.
 */
int
volume_rekey(struct volume *v)
{
	struct keys_secret *vmk = NULL, *root = NULL;
	struct volume_hdr h = v->hdr;
	uint8_t aad[VOLUME_AAD_LEN];
	uint64_t old = v->hdr.key_epoch;
	int err;

	if (v->hdr.state != HV_STATE_ACTIVE || v->xts == NULL)
		return -EPERM;
	if (old == UINT64_MAX)
		return -EOVERFLOW;
	if ((err = keys_secret_new(KEYS_VMK_LEN, &vmk)) != 0 || (err = unwrap_current(v, vmk)) != 0)
		goto out;
	h.key_epoch = old + 1;
	if ((err = keys_root_create(v->dirfd, h.key_epoch)) != 0 ||
	    (err = keys_root_load(v->dirfd, h.key_epoch, &root)) != 0 ||
	    (err = keys_wrap(root->p, vmk->p, aad, volume_hdr_aad(&h, aad), h.wrapped)) != 0 ||
	    (err = volume_hdr_commit(v, &h)) != 0)
		goto out;
	err = keys_root_destroy_upto(v->dirfd, old);
out:
	keys_secret_free(vmk);
	keys_secret_free(root);
	return err;
}

int
volume_rekey_from(struct volume *v, uint64_t from)
{
	/* Only a rekey or a wipe moves the epoch, and cleave-hv runs one order at a time. */
	if (v->hdr.key_epoch > from)
		return keys_root_destroy_upto(v->dirfd, from);
	return volume_rekey(v);
}

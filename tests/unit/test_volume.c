/*
 * Unit tests for the corporate volume (hypercall-bridge/hv/volume*.c, keys.c): XTS known-answer
 * vectors, an independent ciphertext check of a sector, data round trips across reopen, header
 * images with one defect each, lock/unlock, rekey, and the crypto-erase steps including
 * crash-resume and the untouched neighbour file. Each test works in its own temp dir under /tmp.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "crypto.h"
#include "hypercall-bridge/hv/keys.h"
#include "hypercall-bridge/hv/volume.h"
#include "hypercall-bridge/hv/volume_hdr.h"
#include "wire.h"

#define VOL "corp.vol"
#define SEC VOLUME_SECTOR_SIZE

struct fixture {
	char dir[64];
	char path[128];
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	if (f == NULL)
		return -1;
	str_copy(f->dir, sizeof(f->dir), "/tmp/cleave-vol-XXXXXX");
	if (mkdtemp(f->dir) == NULL) {
		free(f);
		return -1;
	}
	snprintf(f->path, sizeof(f->path), "%s/%s", f->dir, VOL);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	struct dirent *de;
	DIR *d = opendir(f->dir);

	if (d != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
				char p[512];

				snprintf(p, sizeof(p), "%s/%s", f->dir, de->d_name);
				unlink(p);
			}
		}
		closedir(d);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

static void
unhex(const char *hex, uint8_t *out, size_t n)
{
	assert_int_equal(strlen(hex), 2 * n);
	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		assert_int_equal(sscanf(hex + 2 * i, "%2x", &b), 1);
		out[i] = (uint8_t)b;
	}
}

static void
xts_raw(const uint8_t *key, const uint8_t iv[16], const uint8_t *in, uint8_t *out, size_t n,
	int enc)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	int len;

	assert_non_null(ctx);
	assert_int_equal(EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, iv, enc), 1);
	assert_int_equal(EVP_CipherUpdate(ctx, out, &len, in, (int)n), 1);
	assert_int_equal((size_t)len, n);
	EVP_CIPHER_CTX_free(ctx);
}

static void
le64_iv(uint64_t sector, uint8_t iv[16])
{
	memset(iv, 0, 16);
	for (int i = 0; i < 8; i++)
		iv[i] = (uint8_t)(sector >> (8 * i));
}

/* NIST CAVS 11.0 XTSGenAES256.rsp, COUNT = 1, DataUnitLen = 256 (one 32-byte data unit). */
static void
test_volume_xts_kat_cavs_32_bytes(void **state)
{
	uint8_t key[64], iv[16], pt[32], ct[32], out[32];

	(void)state;
	unhex("1ea661c58d943a0e4801e42f4b0947149e7f9f8e3e68d0c7505210bd311a0e7c"
	      "d6e13ffdf2418d8d1911c004cda58da3d619b7e2b9141e58318eea392cf41b08",
	      key, sizeof(key));
	unhex("adf8d92627464ad2f0428e84a9f87564", iv, sizeof(iv));
	unhex("2eedea52cd8215e1acc647e810bbc3642e87287f8d2e57e36c0a24fbc12a202e", pt, sizeof(pt));
	unhex("cbaad0e2f6cea3f50b37f934d46a9b130b9d54f07e34f36af793e86f73c6d7db", ct, sizeof(ct));
	xts_raw(key, iv, pt, out, sizeof(pt), 1);
	assert_memory_equal(out, ct, sizeof(ct));
	xts_raw(key, iv, ct, out, sizeof(ct), 0);
	assert_memory_equal(out, pt, sizeof(pt));

	/* OpenSSL 3's default provider refuses an XTS key whose halves are equal. */
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();

	assert_non_null(ctx);
	memcpy(key + 32, key, 32);
	assert_int_not_equal(EVP_CipherInit_ex(ctx, EVP_aes_256_xts(), NULL, key, iv, 1), 1);
	EVP_CIPHER_CTX_free(ctx);
}

/* IEEE 1619 vector 10 (XTS-AES-256, data unit 0xff, 512 bytes), also in OpenSSL's evp tests. */
static const char vec10_ct[] =
	"1c3b3a102f770386e4836c99e370cf9bea00803f5e482357a4ae12d414a3e63b5d31e276f8fe4a8d66b317f9"
	"ac683f44680a86ac35adfc3345befecb4bb188fd5776926c49a3095eb108fd1098baec70aaa66999a72a82f2"
	"7d848b21d4a741b0c5cd4d5fff9dac89aeba122961d03a757123e9870f8acf1000020887891429ca2a3e7a7d"
	"7df7b10355165c8b9a6d0a7de8b062c4500dc4cd120c0f7418dae3d0b5781c34803fa75421c790dfe1de18"
	"34f280d7667b327f6c8cd7557e12ac3a0f93ec05c52e0493ef31a12d3d9260f79a289d6a379bc70c508414"
	"73d1a8cc81ec583e9645e07b8d9670655ba5bbcfecc6dc3966380ad8fecb17b6ba02469a020a84e18e8f84"
	"252070c13e9f1f289be54fbc481457778f616015e1327a02b140f1505eb309326d68378f8374595c849d84"
	"f4c333ec4423885143cb47bd71c5edae9be69a2ffeceb1bec9de244fbe15992b11b77c040f12bd8f6a975a"
	"44a0f90c29a9abc3d4d893927284c58754cce294529f8614dcd2aba991925fedc4ae74ffac6e333b93eb4a"
	"ff0479da9a410e4450e0dd7ae4c6e2910900575da401fc07059f645e8b7e9bfdef33943054ff84011493c2"
	"7b3429eaedb4ed5376441a77ed43851ad77f16f541dfd269d50d6a5f14fb0aab1cbb4c1550be97f7ab4066"
	"193c4caa773dad38014bd2092fa755c824bb5e54c4f36ffda9fcea70b9c6e693e148c151";

/*
 * The same vector through the volume's sector convention: a 4096-byte data unit with the
 * LE64 tweak 255. XTS block j uses T * alpha^j whatever the unit length, so the first 512 bytes
 * of the 4 KiB ciphertext must equal the published 512-byte one.
 */
static void
test_volume_xts_kat_ieee_vec10_in_4k_sector(void **state)
{
	static uint8_t pt[SEC], out[SEC], back[SEC];
	uint8_t key[64], iv[16], ct[512];

	(void)state;
	unhex("2718281828459045235360287471352662497757247093699959574966967627"
	      "3141592653589793238462643383279502884197169399375105820974944592",
	      key, sizeof(key));
	unhex(vec10_ct, ct, sizeof(ct));
	for (size_t i = 0; i < SEC; i++)
		pt[i] = (uint8_t)i;
	le64_iv(255, iv);
	xts_raw(key, iv, pt, out, SEC, 1);
	assert_memory_equal(out, ct, sizeof(ct));
	xts_raw(key, iv, out, back, SEC, 0);
	assert_memory_equal(back, pt, SEC);
}

static struct volume *
make_volume(struct fixture *f, uint64_t mib)
{
	struct volume *v = NULL;

	assert_int_equal(volume_create(f->dir, VOL, mib, &v), 0);
	assert_non_null(v);
	return v;
}

static void
fill_sector(uint8_t *p, uint64_t sector)
{
	int n = snprintf((char *)p, SEC, "CORPORATE-RECORD-%08llu ", (unsigned long long)sector);

	for (size_t i = (size_t)n; i < SEC; i++)
		p[i] = (uint8_t)('a' + (i + sector) % 26);
}

static void
read_file_at(const char *path, uint64_t off, void *buf, size_t n)
{
	int fd = open(path, O_RDONLY);

	assert_true(fd >= 0);
	assert_int_equal(pread(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void
write_file_at(const char *path, uint64_t off, const void *buf, size_t n)
{
	int fd = open(path, O_WRONLY);

	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, buf, n, (off_t)off), (ssize_t)n);
	close(fd);
}

static void
read_root(struct fixture *f, uint64_t epoch, uint8_t root[KEYS_ROOT_LEN])
{
	char p[160];

	snprintf(p, sizeof(p), "%s/root-%llu.key", f->dir, (unsigned long long)epoch);
	read_file_at(p, 0, root, KEYS_ROOT_LEN);
}

/* The data key of a volume of mib MiB at epoch 1, found from its files without the library. */
static void
independent_xts_key(struct fixture *f, uint64_t mib, uint8_t xts[KEYS_XTS_LEN])
{
	uint8_t img[VOLUME_HDR_SIZE], root[KEYS_ROOT_LEN], vmk[KEYS_VMK_LEN];
	uint8_t aad[VOLUME_AAD_LEN];
	struct volume_hdr h;

	read_file_at(f->path, 0, img, sizeof(img));
	assert_int_equal(
		volume_hdr_decode(img, VOLUME_COPY_A, VOLUME_DATA_OFF + mib * 1024 * 1024, &h), 0);
	read_root(f, 1, root);
	assert_int_equal(keys_unwrap(root, h.wrapped, aad, volume_hdr_aad(&h, aad), vmk), 0);
	assert_int_equal(keys_derive_xts(vmk, h.uuid, xts), 0);
}

/* Independent check: unwrap the VMK from the raw header, derive, encrypt with raw EVP. */
static void
test_volume_sector_matches_independent_xts(void **state)
{
	struct fixture *f = *state;
	static uint8_t pt[SEC], raw[SEC], expect[SEC];
	uint8_t xts[KEYS_XTS_LEN], iv[16];
	struct volume *v = make_volume(f, 1);

	fill_sector(pt, 7);
	assert_int_equal(volume_write(v, 7, 1, pt), 0);
	assert_int_equal(volume_sync(v), 0);
	independent_xts_key(f, 1, xts);
	le64_iv(7, iv);
	xts_raw(xts, iv, pt, expect, SEC, 1);
	read_file_at(f->path, VOLUME_DATA_OFF + 7 * SEC, raw, SEC);
	assert_memory_equal(raw, expect, SEC);
	/* The same plaintext in another sector encrypts differently (tweak). */
	assert_int_equal(volume_write(v, 8, 1, pt), 0);
	read_file_at(f->path, VOLUME_DATA_OFF + 8 * SEC, raw, SEC);
	assert_memory_not_equal(raw, expect, SEC);
	volume_close(v);
}

/*
 * Full-size calls through buffers that are not even 2-byte aligned (the data path must not
 * depend on the caller's alignment): a 256-sector write of one repeated plaintext lands on disk
 * as 256 different ciphertexts, each the independent XTS of its own sector; reads that span
 * written sectors and holes return the plaintext and zeros, overwriting whatever buf held.
 */
static void
test_volume_multi_sector_holes_round_trip(void **state)
{
	struct fixture *f = *state;
	const uint32_t n = VOLUME_MAX_IO_SECTORS;
	uint8_t *wbuf = malloc(n * SEC + 1), *rbuf = malloc(n * SEC + 1);
	uint8_t *raw = malloc(n * SEC), *expect = malloc(SEC), *zero = calloc(1, SEC);
	uint8_t *w = wbuf + 1, *r = rbuf + 1;
	uint8_t xts[KEYS_XTS_LEN], iv[16];
	struct volume *v = make_volume(f, 4);

	assert_true(wbuf != NULL && rbuf != NULL && raw != NULL && expect != NULL && zero != NULL);
	/* Sectors 300..555 in one call, all with the plaintext of "sector 300". */
	for (uint32_t i = 0; i < n; i++)
		fill_sector(w + (size_t)i * SEC, 300);
	assert_int_equal(volume_write(v, 300, n, w), 0);
	/* And 10..13 and 20, each with its own plaintext. */
	for (uint64_t s = 10; s < 14; s++)
		fill_sector(w + (s - 10) * SEC, s);
	assert_int_equal(volume_write(v, 10, 4, w), 0);
	fill_sector(w, 20);
	assert_int_equal(volume_write(v, 20, 1, w), 0);
	assert_int_equal(volume_sync(v), 0);

	independent_xts_key(f, 4, xts);
	read_file_at(f->path, VOLUME_DATA_OFF + 300 * SEC, raw, (size_t)n * SEC);
	fill_sector(w, 300);
	for (uint32_t i = 0; i < n; i++) {
		le64_iv(300 + i, iv);
		xts_raw(xts, iv, w, expect, SEC, 1);
		assert_memory_equal(raw + (size_t)i * SEC, expect, SEC);
		assert_memory_not_equal(raw + (size_t)i * SEC, w, SEC);
		if (i > 0)
			assert_memory_not_equal(raw + (size_t)i * SEC, raw, SEC);
	}
	/* A hole stays a hole on disk: sector 14 was never written. */
	read_file_at(f->path, VOLUME_DATA_OFF + 14 * SEC, raw, SEC);
	assert_memory_equal(raw, zero, SEC);

	/* 0..255: holes around 10..13 and 20. */
	memset(r, 0xa5, (size_t)n * SEC);
	assert_int_equal(volume_read(v, 0, n, r), 0);
	for (uint64_t s = 0; s < n; s++) {
		if ((s >= 10 && s < 14) || s == 20) {
			fill_sector(expect, s);
			assert_memory_equal(r + s * SEC, expect, SEC);
		} else {
			assert_memory_equal(r + s * SEC, zero, SEC);
		}
	}
	/* 200..455: 100 holes, then the first 156 sectors of the big write. */
	memset(r, 0xa5, (size_t)n * SEC);
	assert_int_equal(volume_read(v, 200, n, r), 0);
	fill_sector(expect, 300);
	for (uint64_t s = 200; s < 200 + n; s++)
		assert_memory_equal(r + (s - 200) * SEC, s < 300 ? zero : expect, SEC);
	/* One sector at a time, as the block device reads, gives the same bytes. */
	for (uint64_t s = 298; s < 302; s++) {
		assert_int_equal(volume_read(v, s, 1, r), 0);
		assert_memory_equal(r, s < 300 ? zero : expect, SEC);
	}
	volume_close(v);
	free(wbuf);
	free(rbuf);
	free(raw);
	free(expect);
	free(zero);
}

static void
test_volume_write_reopen_read(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[4 * SEC], got[4 * SEC];
	struct volume *v = make_volume(f, 2);
	struct volume_info info;

	for (int i = 0; i < 4; i++)
		fill_sector(buf + i * SEC, (uint64_t)(100 + i));
	assert_int_equal(volume_write(v, 100, 4, buf), 0);
	assert_int_equal(volume_sync(v), 0);
	volume_close(v);
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	volume_info(v, &info);
	assert_int_equal(info.state, HV_STATE_ACTIVE);
	assert_int_equal(info.sectors, 2 * 256);
	assert_int_equal(volume_read(v, 100, 4, got), 0);
	assert_memory_equal(got, buf, sizeof(buf));
	/* Never-written sectors read as zeros. */
	assert_int_equal(volume_read(v, 0, 1, got), 0);
	for (size_t i = 0; i < SEC; i++)
		assert_int_equal(got[i], 0);
	volume_close(v);
}

static void
test_volume_io_bounds(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[2 * SEC];
	struct volume *v = make_volume(f, 1), *w = NULL;

	assert_int_equal(volume_read(v, 0, 0, buf), -EINVAL);
	assert_int_equal(volume_read(v, 0, VOLUME_MAX_IO_SECTORS + 1, buf), -EINVAL);
	assert_int_equal(volume_read(v, 256, 1, buf), -ERANGE);
	assert_int_equal(volume_write(v, 255, 2, buf), -ERANGE);
	assert_int_equal(volume_write(v, UINT64_MAX, 1, buf), -ERANGE);
	volume_close(v);
	assert_int_equal(volume_create(f->dir, "../evil", 1, &w), -EINVAL);
	assert_int_equal(volume_create(f->dir, "..", 1, &w), -EINVAL);
	assert_int_equal(volume_open(f->dir, "a/b", &w), -EINVAL);
	assert_int_equal(volume_create(f->dir, VOL, 1, &w), -EEXIST);
	assert_null(w);
}

/* Does the n-byte needle occur anywhere in the file? */
static int
file_contains(const char *path, const void *needle, size_t n)
{
	FILE *fp = fopen(path, "rb");
	static uint8_t buf[1 << 20];
	size_t keep = 0, got;
	int found = 0;

	assert_non_null(fp);
	while (!found && (got = fread(buf + keep, 1, sizeof(buf) - keep, fp)) > 0) {
		size_t len = keep + got;

		found = memmem(buf, len, needle, n) != NULL;
		keep = MIN(len, n - 1);
		memmove(buf, buf + len - keep, keep);
	}
	fclose(fp);
	return found;
}

static void
test_volume_file_has_no_plaintext(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[SEC];
	struct volume *v = make_volume(f, 1);

	for (uint64_t s = 0; s < 32; s++) {
		fill_sector(buf, s);
		assert_int_equal(volume_write(v, s, 1, buf), 0);
	}
	assert_int_equal(volume_sync(v), 0);
	assert_false(file_contains(f->path, "CORPORATE-RECORD", 16));
	assert_false(file_contains(f->path, "abcdefghijklmnop", 16));
	volume_close(v);
}

static void
test_volume_wrong_root_key_fails(void **state)
{
	struct fixture *f = *state;
	uint8_t junk[KEYS_ROOT_LEN];
	char p[160];
	struct volume *v = make_volume(f, 1);

	volume_close(v);
	assert_int_equal(crypto_random(junk, sizeof(junk)), 0);
	snprintf(p, sizeof(p), "%s/root-1.key", f->dir);
	write_file_at(p, 0, junk, sizeof(junk));
	assert_int_equal(volume_open(f->dir, VOL, &v), -EKEYREJECTED);
	assert_null(v);
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(volume_open(f->dir, VOL, &v), -EPERM);
	unlink(p);
	assert_int_equal(volume_open(f->dir, VOL, &v), -ENOENT);
}

static void
corrupt(struct fixture *f, uint64_t off)
{
	uint8_t b;

	read_file_at(f->path, off + 100, &b, 1);
	b ^= 0x40;
	write_file_at(f->path, off + 100, &b, 1);
}

static void
assert_copies_equal_valid(struct fixture *f)
{
	uint8_t a[VOLUME_HDR_SIZE], b[VOLUME_HDR_SIZE];
	struct volume_hdr ha, hb;
	struct stat st;

	assert_int_equal(stat(f->path, &st), 0);
	read_file_at(f->path, VOLUME_HDR_A_OFF, a, sizeof(a));
	read_file_at(f->path, VOLUME_HDR_B_OFF, b, sizeof(b));
	assert_int_equal(volume_hdr_decode(a, VOLUME_COPY_A, (uint64_t)st.st_size, &ha), 0);
	assert_int_equal(volume_hdr_decode(b, VOLUME_COPY_B, (uint64_t)st.st_size, &hb), 0);
	assert_memory_equal(&ha, &hb, sizeof(ha));
}

static void
check_one_bad_copy(struct fixture *f, uint64_t off)
{
	static uint8_t buf[SEC], got[SEC];
	struct volume *v = make_volume(f, 1);

	fill_sector(buf, 3);
	assert_int_equal(volume_write(v, 3, 1, buf), 0);
	volume_close(v);
	corrupt(f, off);
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_read(v, 3, 1, got), 0);
	assert_memory_equal(got, buf, SEC);
	volume_close(v);
	assert_copies_equal_valid(f); /* the bad copy was rewritten */
}

static void
test_volume_hdr_bad_checksum_a_repaired(void **state)
{
	check_one_bad_copy(*state, VOLUME_HDR_A_OFF);
}

static void
test_volume_hdr_bad_checksum_b_repaired(void **state)
{
	check_one_bad_copy(*state, VOLUME_HDR_B_OFF);
}

static void
test_volume_hdr_bad_both_fails(void **state)
{
	struct fixture *f = *state;
	struct volume *v = make_volume(f, 1);

	volume_close(v);
	corrupt(f, VOLUME_HDR_A_OFF);
	corrupt(f, VOLUME_HDR_B_OFF);
	assert_int_equal(volume_open(f->dir, VOL, &v), -EBADMSG);
	assert_null(v);
}

static void
test_volume_hdr_seq_rollback_ignored(void **state)
{
	struct fixture *f = *state;
	uint8_t old_a[VOLUME_HDR_SIZE];
	struct volume_info info;
	struct volume *v = make_volume(f, 1);

	read_file_at(f->path, VOLUME_HDR_A_OFF, old_a, sizeof(old_a)); /* seq 1, ACTIVE */
	assert_int_equal(volume_lock(v), 0);                           /* seq 2, LOCKED */
	volume_close(v);
	write_file_at(f->path, VOLUME_HDR_A_OFF, old_a, sizeof(old_a)); /* roll copy A back */
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	volume_info(v, &info);
	assert_int_equal(info.seq, 2);
	assert_int_equal(info.state, HV_STATE_LOCKED);
	assert_int_equal(info.keys_loaded, 0);
	volume_close(v);
	assert_copies_equal_valid(f);
}

/* Patches one little-endian field of an encoded copy and recomputes its checksum. */
static void
patch(uint8_t *img, size_t off, uint64_t val, size_t width)
{
	static const uint8_t zero[32];
	const void *parts[2] = {img, zero};
	size_t lens[2] = {VOLUME_HDR_SIZE - 32, 32};

	for (size_t i = 0; i < width; i++)
		img[off + i] = (uint8_t)(val >> (8 * i));
	crypto_sha256_parts(parts, lens, 2, img + VOLUME_HDR_SIZE - 32);
}

static void
test_volume_hdr_invalid_fields_rejected(void **state)
{
	struct fixture *f = *state;
	const uint64_t size = VOLUME_DATA_OFF + 1024 * 1024;
	uint8_t good[VOLUME_HDR_SIZE], img[VOLUME_HDR_SIZE];
	struct volume_hdr h;
	struct volume *v = make_volume(f, 1);
	static const struct {
		size_t off, width;
		uint64_t val;
	} defects[] = {
		{8, 4, 2},                  /* format version */
		{12, 4, 0},                 /* state 0 */
		{12, 4, 5},                 /* unknown state */
		{40, 4, 512},               /* sector size not 4096 */
		{44, 4, 2},                 /* unknown cipher */
		{48, 8, 4096},              /* data offset moved */
		{56, 8, 2 * 1024 * 1024},   /* data length beyond the file */
		{56, 8, UINT64_MAX - 4095}, /* data length overflowing */
		{56, 8, 1000},              /* data length not whole sectors */
		{64, 8, 0},                 /* key epoch 0 */
		{72, 4, 2},                 /* unknown wrap algorithm */
		{76, 4, 1},                 /* reserved word */
		{172, 4, 1},                /* padding of the wrapped key field */
		{176, 1, 1},                /* intent recorded while ACTIVE */
		{300, 1, 1},                /* reserved area */
		{4063, 1, 1},               /* last reserved byte */
	};

	volume_close(v);
	read_file_at(f->path, VOLUME_HDR_A_OFF, good, sizeof(good));
	assert_int_equal(volume_hdr_decode(good, VOLUME_COPY_A, size, &h), 0);
	assert_int_equal(volume_hdr_decode(good, VOLUME_COPY_B, size, &h), -EBADMSG);
	assert_int_equal(volume_hdr_decode(good, VOLUME_COPY_A, size - 4096, &h), -EINVAL);
	for (size_t i = 0; i < ARRAY_SIZE(defects); i++) {
		memcpy(img, good, sizeof(img));
		patch(img, defects[i].off, defects[i].val, defects[i].width);
		assert_int_equal(volume_hdr_decode(img, VOLUME_COPY_A, size, &h), -EINVAL);
	}
	/* A defect with a valid checksum in both copies: the file is refused as a whole. */
	memcpy(img, good, sizeof(img));
	patch(img, 40, 512, 4);
	write_file_at(f->path, VOLUME_HDR_A_OFF, img, sizeof(img));
	volume_hdr_decode(good, VOLUME_COPY_A, size, &h);
	volume_hdr_encode(&h, VOLUME_COPY_B, img);
	patch(img, 40, 512, 4);
	write_file_at(f->path, VOLUME_HDR_B_OFF, img, sizeof(img));
	assert_int_equal(volume_open(f->dir, VOL, &v), -EBADMSG);
}

static void
test_volume_lock_unlock(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[SEC], got[SEC];
	struct volume_info info;
	struct volume *v = make_volume(f, 1);

	fill_sector(buf, 5);
	assert_int_equal(volume_write(v, 5, 1, buf), 0);
	assert_int_equal(volume_lock(v), 0);
	assert_int_equal(volume_read(v, 5, 1, got), -EACCES);
	assert_int_equal(volume_write(v, 5, 1, buf), -EACCES);
	volume_close(v);
	/* Locked survives a restart. */
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	volume_info(v, &info);
	assert_int_equal(info.state, HV_STATE_LOCKED);
	assert_int_equal(volume_read(v, 5, 1, got), -EACCES);
	assert_int_equal(volume_unlock(v), 0);
	assert_int_equal(volume_read(v, 5, 1, got), 0);
	assert_memory_equal(got, buf, SEC);
	volume_info(v, &info);
	assert_int_equal(info.state, HV_STATE_ACTIVE);
	volume_close(v);
}

static int
root_exists(struct fixture *f, uint64_t epoch)
{
	char p[160];

	snprintf(p, sizeof(p), "%s/root-%llu.key", f->dir, (unsigned long long)epoch);
	return access(p, F_OK) == 0;
}

static void
test_volume_rekey_changes_epoch(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[SEC], got[SEC];
	uint8_t old_root[KEYS_ROOT_LEN];
	struct volume_info info;
	struct volume *v = make_volume(f, 1);

	fill_sector(buf, 9);
	assert_int_equal(volume_write(v, 9, 1, buf), 0);
	read_root(f, 1, old_root);
	assert_int_equal(volume_rekey(v), 0);
	volume_info(v, &info);
	assert_int_equal(info.key_epoch, 2);
	assert_false(root_exists(f, 1));
	assert_true(root_exists(f, 2));
	assert_int_equal(volume_try_root_key(v, old_root), -EKEYREJECTED);
	volume_close(v);
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_read(v, 9, 1, got), 0);
	assert_memory_equal(got, buf, SEC);
	volume_close(v);
}

/* A rekey resumed after its header commit only removes the old epoch's leftover file. */
static void
test_volume_rekey_from_resumes(void **state)
{
	struct fixture *f = *state;
	uint8_t old_root[KEYS_ROOT_LEN];
	struct volume_info info;
	struct volume *v = make_volume(f, 1), *w = NULL;
	static uint8_t buf[SEC], got[SEC];
	char p[160];
	FILE *fp;

	read_root(f, 1, old_root);
	assert_int_equal(volume_rekey_from(v, 1), 0);
	snprintf(p, sizeof(p), "%s/root-1.key", f->dir); /* the crash left the old file */
	fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(old_root, 1, sizeof(old_root), fp), sizeof(old_root));
	fclose(fp);
	assert_int_equal(volume_rekey_from(v, 1), 0); /* resumed: no second rekey */
	volume_info(v, &info);
	assert_int_equal(info.key_epoch, 2);
	assert_false(root_exists(f, 1));
	/* a second handle follows the first one's changes after volume_reload */
	assert_int_equal(volume_open(f->dir, VOL, &w), 0);
	assert_int_equal(volume_lock(v), 0);
	assert_int_equal(volume_reload(w), 0);
	volume_info(w, &info);
	assert_int_equal(info.state, HV_STATE_LOCKED);
	assert_int_equal(volume_read(w, 0, 1, got), -EACCES);
	assert_int_equal(volume_unlock(v), 0);
	fill_sector(buf, 3);
	assert_int_equal(volume_write(v, 3, 1, buf), 0);
	assert_int_equal(volume_reload(w), 0);
	assert_int_equal(volume_read(w, 3, 1, got), 0);
	assert_memory_equal(got, buf, SEC);
	volume_close(w);
	volume_close(v);
}

static const uint8_t cmd_hash[VOLUME_HASH_LEN] = {0xc0, 0xff, 0xee, 1, 2, 3, 4, 5};

static void
test_volume_wipe_destroys_and_verifies(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[SEC];
	uint8_t old_root[KEYS_ROOT_LEN];
	struct volume_info info;
	uint32_t passed;
	char p[160];
	struct volume *v = make_volume(f, 1);

	fill_sector(buf, 1);
	assert_int_equal(volume_write(v, 1, 1, buf), 0);
	read_root(f, 1, old_root);
	assert_int_equal(volume_try_root_key(v, old_root), 0);
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	assert_int_not_equal(passed, VOLUME_CHECKS_ALL);
	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	assert_int_equal(volume_read(v, 1, 1, buf), -EACCES);
	assert_int_equal(volume_unlock(v), -EPERM);
	assert_int_equal(volume_wipe_destroy(v), 0);
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	assert_int_equal(passed, VOLUME_CHECKS_ALL);
	assert_false(root_exists(f, 1));
	assert_int_equal(volume_try_root_key(v, old_root), -EKEYREJECTED);
	volume_close(v);

	/* Even with the old root key put back, nothing unwraps and nothing reads. */
	snprintf(p, sizeof(p), "%s/root-1.key", f->dir);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, old_root, sizeof(old_root)), (ssize_t)sizeof(old_root));
	close(fd);
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	volume_info(v, &info);
	assert_int_equal(info.state, HV_STATE_ERASED);
	assert_int_equal(info.keys_loaded, 0);
	assert_int_equal(volume_read(v, 1, 1, buf), -EACCES);
	assert_int_equal(volume_try_root_key(v, old_root), -EKEYREJECTED);
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	assert_int_equal(passed, VOLUME_CHECKS_ALL & ~(uint32_t)VOLUME_CHECK_KEY_GONE);
	assert_copies_equal_valid(f);
	volume_close(v);
}

static void
test_volume_wipe_crash_resume(void **state)
{
	struct fixture *f = *state;
	uint8_t got_hash[VOLUME_HASH_LEN], other[VOLUME_HASH_LEN] = {9};
	struct volume_info info;
	uint32_t passed;
	struct volume *v = make_volume(f, 1);

	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	volume_close(v); /* "crash" after the intent is durable */
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_wipe_pending(v, got_hash), 1);
	assert_memory_equal(got_hash, cmd_hash, sizeof(cmd_hash));
	volume_info(v, &info);
	assert_int_equal(info.keys_loaded, 0);
	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	assert_int_equal(volume_wipe_begin(v, other), -EBUSY);
	assert_int_equal(volume_wipe_destroy(v), 0);
	assert_int_equal(volume_wipe_destroy(v), 0);
	volume_info(v, &info);
	assert_int_equal(volume_wipe_pending(v, NULL), 0);
	volume_close(v);
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_wipe_destroy(v), 0);
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	assert_int_equal(passed, VOLUME_CHECKS_ALL);
	volume_info(v, &info);
	assert_int_equal(info.state, HV_STATE_ERASED);
	assert_int_equal(info.seq, 3); /* create, begin, one destroy: repeats wrote nothing */
	volume_close(v);
}

/*
 * Power cuts between the durable barriers, simulated on the files: copy B still old after
 * wipe_begin wrote copy A, and the root key already gone while both copies still say
 * WIPE_PENDING. Each restart must resume the wipe, never unlock.
 */
static void
test_volume_wipe_resumes_after_torn_steps(void **state)
{
	struct fixture *f = *state;
	uint8_t old_b[VOLUME_HDR_SIZE];
	struct volume_info info;
	uint32_t passed;
	char p[160];
	struct volume *v = make_volume(f, 1);

	read_file_at(f->path, VOLUME_HDR_B_OFF, old_b, sizeof(old_b));
	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	volume_close(v);
	write_file_at(f->path, VOLUME_HDR_B_OFF, old_b, sizeof(old_b)); /* B never written */
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_wipe_pending(v, NULL), 1);
	volume_info(v, &info);
	assert_int_equal(info.keys_loaded, 0);
	volume_close(v);
	assert_copies_equal_valid(f);

	snprintf(p, sizeof(p), "%s/root-1.key", f->dir);
	assert_int_equal(unlink(p), 0); /* destroy cut after the key, before the headers */
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_wipe_pending(v, NULL), 1);
	assert_int_equal(volume_wipe_destroy(v), 0);
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	assert_int_equal(passed, VOLUME_CHECKS_ALL);
	volume_close(v);
}

static void
test_volume_wipe_provision_fresh_volume(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[SEC], got[SEC];
	uint8_t uuid[VOLUME_UUID_LEN];
	struct volume_info info;
	struct volume *v = make_volume(f, 1);

	fill_sector(buf, 2);
	assert_int_equal(volume_write(v, 2, 1, buf), 0);
	volume_info(v, &info);
	memcpy(uuid, info.uuid, sizeof(uuid));
	assert_int_equal(volume_wipe_provision(v), -EPERM);
	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	assert_int_equal(volume_wipe_destroy(v), 0);
	assert_int_equal(volume_wipe_provision(v), 0);
	volume_info(v, &info);
	assert_int_equal(info.state, HV_STATE_ACTIVE);
	assert_int_equal(info.key_epoch, 2);
	assert_memory_not_equal(info.uuid, uuid, sizeof(uuid));
	assert_int_equal(volume_wipe_pending(v, NULL), 0);
	assert_int_equal(volume_read(v, 2, 1, got), 0); /* empty: old sector is gone */
	for (size_t i = 0; i < SEC; i++)
		assert_int_equal(got[i], 0);
	assert_int_equal(volume_write(v, 2, 1, buf), 0);
	volume_close(v);
	assert_int_equal(volume_open(f->dir, VOL, &v), 0);
	assert_int_equal(volume_read(v, 2, 1, got), 0);
	assert_memory_equal(got, buf, SEC);
	volume_close(v);
	assert_false(root_exists(f, 1));
	assert_true(root_exists(f, 2));
}

static void
test_volume_wipe_spares_neighbour_file(void **state)
{
	struct fixture *f = *state;
	static uint8_t personal[64 * 1024], after[64 * 1024], buf[SEC];
	uint32_t passed;
	char p[160];
	struct stat st;
	struct volume *v;
	FILE *fp;

	snprintf(p, sizeof(p), "%s/personal.txt", f->dir);
	for (size_t i = 0; i < sizeof(personal); i++)
		personal[i] = (uint8_t)("personal photo bytes "[i % 21]);
	fp = fopen(p, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(personal, 1, sizeof(personal), fp), sizeof(personal));
	fclose(fp);
	v = make_volume(f, 1);
	fill_sector(buf, 0);
	assert_int_equal(volume_write(v, 0, 1, buf), 0);
	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	assert_int_equal(volume_wipe_destroy(v), 0);
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	assert_int_equal(passed, VOLUME_CHECKS_ALL);
	assert_int_equal(volume_wipe_provision(v), 0);
	volume_close(v);
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_size, sizeof(personal));
	read_file_at(p, 0, after, sizeof(after));
	assert_memory_equal(after, personal, sizeof(personal));
}

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Not an assertion: prints the wipe critical path for a 64 MiB volume with data written. */
static void
test_volume_wipe_timing_64mib(void **state)
{
	struct fixture *f = *state;
	static uint8_t buf[VOLUME_MAX_IO_SECTORS * SEC];
	double t0, t1, t2, t3;
	uint32_t passed;
	struct volume *v = make_volume(f, 64);

	for (uint64_t s = 0; s < 64 * 256; s += VOLUME_MAX_IO_SECTORS) {
		fill_sector(buf, s);
		assert_int_equal(volume_write(v, s, VOLUME_MAX_IO_SECTORS, buf), 0);
	}
	assert_int_equal(volume_sync(v), 0);
	t0 = now_ms();
	assert_int_equal(volume_wipe_begin(v, cmd_hash), 0);
	t1 = now_ms();
	assert_int_equal(volume_wipe_destroy(v), 0);
	t2 = now_ms();
	assert_int_equal(volume_wipe_verify(v, &passed), 0);
	t3 = now_ms();
	assert_int_equal(passed, VOLUME_CHECKS_ALL);
	printf("wipe critical path, 64 MiB volume: begin %.3f ms, destroy %.3f ms, verify %.3f ms, "
	       "total %.3f ms\n",
	       t1 - t0, t2 - t1, t3 - t2, t3 - t0);
	volume_close(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_volume_xts_kat_cavs_32_bytes),
		cmocka_unit_test(test_volume_xts_kat_ieee_vec10_in_4k_sector),
		cmocka_unit_test_setup_teardown(test_volume_sector_matches_independent_xts, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_multi_sector_holes_round_trip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_write_reopen_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_io_bounds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_file_has_no_plaintext, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_wrong_root_key_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_hdr_bad_checksum_a_repaired, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_hdr_bad_checksum_b_repaired, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_hdr_bad_both_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_hdr_seq_rollback_ignored, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_hdr_invalid_fields_rejected, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_lock_unlock, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_rekey_changes_epoch, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_rekey_from_resumes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_wipe_destroys_and_verifies, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_wipe_crash_resume, setup, teardown),
		cmocka_unit_test_setup_teardown(test_volume_wipe_resumes_after_torn_steps, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_wipe_provision_fresh_volume, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_wipe_spares_neighbour_file, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_volume_wipe_timing_64mib, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

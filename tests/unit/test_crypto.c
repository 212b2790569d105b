/*
 * Unit tests for crypto/crypto.c: SHA-256 and Ed25519 known answers (FIPS 180-2, RFC 8032),
 * sign/verify with tampering, key files (round trip, mode 0600, atomic replace, bad files), and
 * interoperability with the real openssl command line, including the exact receipt check that
 * schema/wire-formats.md tells auditors to run. Each test that touches files works in its own
 * mkdtemp directory under /tmp and removes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "crypto.h"
#include "seal.h"
#include "wire.h"

/* RFC 8032 §7.1, TEST 1: empty message. */
static const uint8_t rfc8032_pub[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe,
	0xd3, 0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6,
	0x23, 0x25, 0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
};
static const uint8_t rfc8032_sig[64] = {
	0xe5, 0x56, 0x43, 0x00, 0xc3, 0x60, 0xac, 0x72, 0x90, 0x86, 0xe2, 0xcc, 0x80,
	0x6e, 0x82, 0x8a, 0x84, 0x87, 0x7f, 0x1e, 0xb8, 0xe5, 0xd9, 0x74, 0xd8, 0x73,
	0xe0, 0x65, 0x22, 0x49, 0x01, 0x55, 0x5f, 0xb8, 0x82, 0x15, 0x90, 0xa3, 0x3b,
	0xac, 0xc6, 0x1e, 0x39, 0x70, 0x1c, 0xf9, 0xb4, 0x6b, 0xd2, 0x5b, 0xf5, 0xf0,
	0x59, 0x5b, 0xbe, 0x24, 0x65, 0x51, 0x41, 0x43, 0x8e, 0x7a, 0x10, 0x0b,
};

struct tmpdir {
	char path[64];
};

static int
rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static int
setup_dir(void **state)
{
	struct tmpdir *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -1;
	memcpy(d->path, "/tmp/clv-crypto-XXXXXX", sizeof("/tmp/clv-crypto-XXXXXX"));
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	*state = d;
	return 0;
}

static int
teardown_dir(void **state)
{
	struct tmpdir *d = *state;

	nftw(d->path, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	free(d);
	return 0;
}

static void
path_in(char *dst, size_t cap, const struct tmpdir *d, const char *name)
{
	int n = snprintf(dst, cap, "%s/%s", d->path, name);

	assert_true(n > 0 && (size_t)n < cap);
}

static void
write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	assert_int_equal(fclose(f), 0);
}

/* Runs a shell command line and returns its exit status (-1 when it did not exit normally). */
static int
run(const char *cmd)
{
	int st = system(cmd);

	return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void
test_crypto_sha256_known_answers(void **state)
{
	static const uint8_t abc[32] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
		0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
		0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad,
	};
	uint8_t h[32], h2[32];
	char hex[65];
	const void *parts[3] = {"a", "", "bc"};
	const size_t lens[3] = {1, 0, 2};

	(void)state;
	crypto_sha256("abc", 3, h);
	assert_memory_equal(h, abc, 32);
	crypto_sha256_parts(parts, lens, 3, h2);
	assert_memory_equal(h2, abc, 32);
	crypto_sha256(NULL, 0, h);
	assert_int_equal(hex_encode(hex, sizeof(hex), h, sizeof(h)), 0);
	assert_string_equal(hex,
			    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(hex_encode(hex, 64, h, sizeof(h)), -ENOSPC);
	assert_string_equal(hex, "");
}

static void
test_crypto_random_fills(void **state)
{
	uint8_t a[64], b[64], zero[64] = {0};

	(void)state;
	assert_int_equal(crypto_random(a, sizeof(a)), 0);
	assert_int_equal(crypto_random(b, sizeof(b)), 0);
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(crypto_random(a, 0), 0);
}

static void
test_crypto_verify_rfc8032_vector(void **state)
{
	uint8_t sig[64];

	(void)state;
	assert_int_equal(ed25519_verify(rfc8032_pub, NULL, 0, rfc8032_sig), 0);
	assert_int_equal(ed25519_verify(rfc8032_pub, "x", 1, rfc8032_sig), -EBADMSG);
	memcpy(sig, rfc8032_sig, sizeof(sig));
	sig[63] ^= 0x10; /* S no longer canonical or no longer matching */
	assert_int_equal(ed25519_verify(rfc8032_pub, NULL, 0, sig), -EBADMSG);
}

static void
test_crypto_sign_verify_and_tamper(void **state)
{
	struct ed25519_key *k = NULL, *other = NULL;
	uint8_t pub[32], opub[32], sig[64], bad[64];
	char msg[] = "wipe dev_1 counter 7";

	(void)state;
	assert_int_equal(ed25519_key_generate(&k), 0);
	assert_int_equal(ed25519_key_generate(&other), 0);
	ed25519_key_public(k, pub);
	ed25519_key_public(other, opub);
	assert_memory_not_equal(pub, opub, 32);
	assert_int_equal(ed25519_key_sign(k, msg, strlen(msg), sig), 0);
	assert_int_equal(ed25519_verify(pub, msg, strlen(msg), sig), 0);
	assert_int_equal(ed25519_verify(opub, msg, strlen(msg), sig), -EBADMSG);
	for (size_t i = 0; i < 64; i += 7) {
		memcpy(bad, sig, sizeof(bad));
		bad[i] ^= 0x01;
		assert_int_equal(ed25519_verify(pub, msg, strlen(msg), bad), -EBADMSG);
	}
	msg[0] = 'W';
	assert_int_equal(ed25519_verify(pub, msg, strlen(msg), sig), -EBADMSG);
	assert_int_equal(ed25519_verify(pub, msg, strlen(msg) - 1, sig), -EBADMSG);
	/* Empty messages are signable too. */
	assert_int_equal(ed25519_key_sign(k, NULL, 0, sig), 0);
	assert_int_equal(ed25519_verify(pub, "", 0, sig), 0);
	ed25519_key_free(k);
	ed25519_key_free(other);
	ed25519_key_free(NULL);
}

static void
test_crypto_save_load_round_trip(void **state)
{
	struct tmpdir *d = *state;
	struct ed25519_key *k = NULL, *l = NULL;
	uint8_t pub[32], lpub[32], s1[64], s2[64];
	char path[128], head[32];
	struct stat st;
	mode_t old = umask(0);
	FILE *f;

	assert_int_equal(ed25519_key_generate(&k), 0);
	path_in(path, sizeof(path), d, "server.key");
	assert_int_equal(ed25519_key_save(k, path), 0);
	umask(old);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(head, sizeof(head), f));
	fclose(f);
	assert_string_equal(head, "-----BEGIN PRIVATE KEY-----\n");

	assert_int_equal(ed25519_key_load(path, &l), 0);
	ed25519_key_public(k, pub);
	ed25519_key_public(l, lpub);
	assert_memory_equal(pub, lpub, 32);
	/* Ed25519 is deterministic: the same key gives the same signature. */
	assert_int_equal(ed25519_key_sign(k, "m", 1, s1), 0);
	assert_int_equal(ed25519_key_sign(l, "m", 1, s2), 0);
	assert_memory_equal(s1, s2, 64);
	ed25519_key_free(l);

	/* Saving over an existing file replaces it and leaves no temp file behind. */
	ed25519_key_free(k);
	assert_int_equal(ed25519_key_generate(&k), 0);
	assert_int_equal(ed25519_key_save(k, path), 0);
	assert_int_equal(ed25519_key_load(path, &l), 0);
	ed25519_key_public(k, pub);
	ed25519_key_public(l, lpub);
	assert_memory_equal(pub, lpub, 32);
	ed25519_key_free(k);
	ed25519_key_free(l);

	DIR *dir = opendir(d->path);
	struct dirent *e;
	int files = 0;
	assert_non_null(dir);
	while ((e = readdir(dir)) != NULL) {
		if (e->d_name[0] != '.')
			files++;
	}
	closedir(dir);
	assert_int_equal(files, 1);
}

static void
test_crypto_load_rejects_bad_files(void **state)
{
	struct tmpdir *d = *state;
	struct ed25519_key *k = NULL;
	char path[128], cmd[512];

	path_in(path, sizeof(path), d, "missing.key");
	assert_int_equal(ed25519_key_load(path, &k), -ENOENT);
	path_in(path, sizeof(path), d, "junk.key");
	write_file(path, "not a key\n", 10);
	assert_int_equal(ed25519_key_load(path, &k), -EINVAL);
	/* A valid PKCS#8 key of another type. */
	path_in(path, sizeof(path), d, "p256.key");
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s' "
		 "2>/dev/null",
		 path);
	assert_int_equal(run(cmd), 0);
	assert_int_equal(ed25519_key_load(path, &k), -EINVAL);
	/* A directory is not a key file. */
	assert_int_equal(ed25519_key_load(d->path, &k), -EINVAL);
	assert_null(k);
}

static void
test_crypto_load_accepts_openssl_key(void **state)
{
	struct tmpdir *d = *state;
	struct ed25519_key *k = NULL;
	char path[128], pubpath[128], cmd[512], pem[512];
	char *ours = NULL;
	uint8_t pub[32];
	FILE *f;
	size_t n;

	path_in(path, sizeof(path), d, "cli.key");
	path_in(pubpath, sizeof(pubpath), d, "cli.pub");
	snprintf(cmd, sizeof(cmd),
		 "openssl genpkey -algorithm ED25519 -out '%s' && openssl pkey -in '%s' -pubout "
		 "-out '%s'",
		 path, path, pubpath);
	assert_int_equal(run(cmd), 0);
	assert_int_equal(ed25519_key_load(path, &k), 0);
	ed25519_key_public(k, pub);
	assert_int_equal(ed25519_pub_to_pem(pub, &ours), 0);
	f = fopen(pubpath, "r");
	assert_non_null(f);
	n = fread(pem, 1, sizeof(pem) - 1, f);
	fclose(f);
	pem[n] = '\0';
	assert_string_equal(ours, pem);
	free(ours);
	ed25519_key_free(k);
}

static void
test_crypto_pub_to_pem_known_answer(void **state)
{
	char *pem = NULL;

	(void)state;
	assert_int_equal(ed25519_pub_to_pem(rfc8032_pub, &pem), 0);
	assert_string_equal(pem, "-----BEGIN PUBLIC KEY-----\n"
				 "MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n"
				 "-----END PUBLIC KEY-----\n");
	free(pem);
}

static void
test_crypto_pub_to_pem_openssl_verifies(void **state)
{
	struct tmpdir *d = *state;
	struct ed25519_key *k = NULL;
	uint8_t pub[32], sig[64];
	char *pem = NULL;
	char pem_path[128], msg_path[128], sig_path[128], cmd[640];
	static const char msg[] = "receipt body bytes";

	assert_int_equal(ed25519_key_generate(&k), 0);
	ed25519_key_public(k, pub);
	assert_int_equal(ed25519_key_sign(k, msg, sizeof(msg) - 1, sig), 0);
	assert_int_equal(ed25519_pub_to_pem(pub, &pem), 0);
	path_in(pem_path, sizeof(pem_path), d, "pub.pem");
	path_in(msg_path, sizeof(msg_path), d, "msg.bin");
	path_in(sig_path, sizeof(sig_path), d, "sig.bin");
	write_file(pem_path, pem, strlen(pem));
	write_file(msg_path, msg, sizeof(msg) - 1);
	write_file(sig_path, sig, sizeof(sig));
	snprintf(cmd, sizeof(cmd),
		 "openssl pkeyutl -verify -pubin -inkey '%s' -rawin -in '%s' -sigfile '%s' "
		 ">/dev/null 2>&1",
		 pem_path, msg_path, sig_path);
	assert_int_equal(run(cmd), 0);
	/* The same command must fail on a tampered message. */
	write_file(msg_path, "Receipt body bytes", sizeof(msg) - 1);
	assert_int_not_equal(run(cmd), 0);
	free(pem);
	ed25519_key_free(k);
}

/* The auditor's check from schema/wire-formats.md, run verbatim inside the temp dir. */
static void
test_crypto_receipt_auditor_command(void **state)
{
	struct tmpdir *d = *state;
	struct ed25519_key *k = NULL;
	struct receipt r;
	uint8_t bin[RECEIPT_LEN];
	char *pem = NULL;
	char path[128], cmd[512];
	static const char audit[] =
		"head -c 256 receipt.bin > body.bin; tail -c 64 receipt.bin > sig.bin; "
		"openssl pkeyutl -verify -pubin -inkey hv.pem -rawin -in body.bin -sigfile sig.bin";

	assert_int_equal(ed25519_key_generate(&k), 0);
	memset(&r, 0, sizeof(r));
	r.type = TICKET_WIPE;
	ed25519_key_public(k, r.hv_key);
	memcpy(r.device_id, "dev_audit", sizeof("dev_audit"));
	memcpy(r.command_id, "cmd_1", sizeof("cmd_1"));
	crypto_sha256("ticket", 6, r.ticket_hash);
	r.ticket_counter = 1;
	r.seq = 1;
	r.epoch_before = 1;
	r.epoch_after = 2;
	r.header_state = HV_STATE_ERASED;
	r.checks_run = r.checks_passed = 0x1ff;
	assert_int_equal(receipt_encode(&r, bin), 0);
	assert_int_equal(ed25519_key_sign(k, bin, RECEIPT_BODY_LEN, bin + RECEIPT_BODY_LEN), 0);
	assert_int_equal(ed25519_pub_to_pem(r.hv_key, &pem), 0);
	path_in(path, sizeof(path), d, "receipt.bin");
	write_file(path, bin, sizeof(bin));
	path_in(path, sizeof(path), d, "hv.pem");
	write_file(path, pem, strlen(pem));

	snprintf(cmd, sizeof(cmd), "cd '%s' && { %s; } > audit.out 2>&1", d->path, audit);
	assert_int_equal(run(cmd), 0);
	snprintf(cmd, sizeof(cmd), "grep -qx 'Signature Verified Successfully' '%s/audit.out'",
		 d->path);
	assert_int_equal(run(cmd), 0);

	/* One flipped bit in the body and the auditor's check fails. */
	bin[152] ^= 1;
	path_in(path, sizeof(path), d, "receipt.bin");
	write_file(path, bin, sizeof(bin));
	snprintf(cmd, sizeof(cmd), "cd '%s' && { %s; } > audit.out 2>&1", d->path, audit);
	assert_int_not_equal(run(cmd), 0);
	free(pem);
	ed25519_key_free(k);
}

static void
test_crypto_fingerprint(void **state)
{
	char fp[64];

	(void)state;
	assert_int_equal(key_fingerprint(rfc8032_pub, fp, sizeof(fp)), 0);
	assert_string_equal(fp, "SHA256:If4x36FUomFia/hUBG/SJxt77UtqvkWqWId+9H+XIbk");
	assert_int_equal(key_fingerprint(rfc8032_pub, fp, 51), 0);
	assert_int_equal(key_fingerprint(rfc8032_pub, fp, 50), -ENOSPC);
	assert_string_equal(fp, "");
}

/* HKDF from a key's seed: the same key and info give the same bytes; anything else differs. */
static void
test_crypto_derive(void **state)
{
	struct ed25519_key *a, *b;
	uint8_t x[32], y[32], z[32], w[32];

	(void)state;
	assert_int_equal(ed25519_key_generate(&a), 0);
	assert_int_equal(ed25519_key_generate(&b), 0);
	assert_int_equal(ed25519_key_derive(a, "cleave webhook secrets v1", x, sizeof(x)), 0);
	assert_int_equal(ed25519_key_derive(a, "cleave webhook secrets v1", y, sizeof(y)), 0);
	assert_int_equal(ed25519_key_derive(a, "cleave webhook secrets v2", z, sizeof(z)), 0);
	assert_int_equal(ed25519_key_derive(b, "cleave webhook secrets v1", w, sizeof(w)), 0);
	assert_memory_equal(x, y, sizeof(x));
	assert_memory_not_equal(x, z, sizeof(x));
	assert_memory_not_equal(x, w, sizeof(x));
	ed25519_key_free(a);
	ed25519_key_free(b);
}

/* Sealed text opens with its key and associated data only; nonces differ; tampering shows. */
static void
test_crypto_seal(void **state)
{
	static const char plain[] = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
	uint8_t key[SEAL_KEY_LEN], other[SEAL_KEY_LEN];
	char s1[SEAL_TEXT_CAP(sizeof(plain) - 1)], s2[sizeof(s1)], out[128];

	(void)state;
	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	assert_int_equal(seal_text(key, "wh_1", plain, s1, sizeof(s1)), 0);
	assert_int_equal(seal_text(key, "wh_1", plain, s2, sizeof(s2)), 0);
	assert_true(seal_is_sealed(s1) && strncmp(s1, "v1:", 3) == 0);
	assert_string_not_equal(s1, s2); /* a fresh nonce each time */
	assert_null(strstr(s1, plain + 6));
	assert_int_equal(seal_open(key, "wh_1", s1, out, sizeof(out)), 0);
	assert_string_equal(out, plain);
	assert_int_equal(seal_open(key, "wh_2", s1, out, sizeof(out)), -EBADMSG);
	assert_int_equal(seal_open(other, "wh_1", s1, out, sizeof(out)), -EBADMSG);
	s1[10] = s1[10] == 'A' ? 'B' : 'A';
	assert_int_equal(seal_open(key, "wh_1", s1, out, sizeof(out)), -EBADMSG);
	assert_int_equal(seal_open(key, "wh_1", plain, out, sizeof(out)), -EINVAL);
	assert_int_equal(seal_open(key, "wh_1", "v1:AAAA", out, sizeof(out)), -EINVAL);
	assert_int_equal(seal_open(key, "wh_1", s2, out, 10), -ENOSPC);
	assert_int_equal(seal_text(key, "wh_1", plain, s2, sizeof(s2) - 1), -ENOSPC);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crypto_sha256_known_answers),
		cmocka_unit_test(test_crypto_random_fills),
		cmocka_unit_test(test_crypto_verify_rfc8032_vector),
		cmocka_unit_test(test_crypto_sign_verify_and_tamper),
		cmocka_unit_test_setup_teardown(test_crypto_save_load_round_trip, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_crypto_load_rejects_bad_files, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_crypto_load_accepts_openssl_key, setup_dir,
						teardown_dir),
		cmocka_unit_test(test_crypto_pub_to_pem_known_answer),
		cmocka_unit_test_setup_teardown(test_crypto_pub_to_pem_openssl_verifies, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_crypto_receipt_auditor_command, setup_dir,
						teardown_dir),
		cmocka_unit_test(test_crypto_fingerprint),
		cmocka_unit_test(test_crypto_derive),
		cmocka_unit_test(test_crypto_seal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

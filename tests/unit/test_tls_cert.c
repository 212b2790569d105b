/*
 * Unit tests for server/crypto/tls_cert.c: the generated certificate and key are inspected with
 * the real openssl command line (curve, names, extensions, serial, self-verification, key/cert
 * match), file modes are checked under a hostile umask, and bad arguments must create nothing.
 * The TLS handshake itself belongs to the server's integration tests.
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

#include "crypto/tls_cert.h"

struct tmpdir {
	char path[64];
	char cert[128];
	char key[128];
};

static const char *const dns[] = {"localhost", "cleave.test"};
static const char *const ips[] = {"127.0.0.1", "::1"};

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
	memcpy(d->path, "/tmp/clv-tlscert-XXXXXX", sizeof("/tmp/clv-tlscert-XXXXXX"));
	if (mkdtemp(d->path) == NULL) {
		free(d);
		return -1;
	}
	snprintf(d->cert, sizeof(d->cert), "%s/tls.crt", d->path);
	snprintf(d->key, sizeof(d->key), "%s/tls.key", d->path);
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

/* Runs cmd and returns its whole stdout (caller frees), or NULL when it did not exit with 0. */
static char *
capture(const char *cmd)
{
	FILE *f = popen(cmd, "r");
	char *buf;
	size_t n = 0, cap = 65536;
	int st;

	assert_non_null(f);
	buf = malloc(cap);
	assert_non_null(buf);
	n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	st = pclose(f);
	if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static char *capturef(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *
capturef(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(cmd));
	return capture(cmd);
}

static int
count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n;
}

static void
generate(struct tmpdir *d)
{
	assert_int_equal(tls_cert_generate(d->cert, d->key, dns, 2, ips, 2, 30), 0);
}

static void
test_tls_cert_text_shows_profile(void **state)
{
	struct tmpdir *d = *state;
	char *text;

	generate(d);
	text = capturef("openssl x509 -in '%s' -noout -text", d->cert);
	assert_non_null(text);
	static const char *const want[] = {
		"Version: 3 (0x2)",
		"Signature Algorithm: ecdsa-with-SHA256",
		"Issuer: CN = cleave-server",
		"Subject: CN = cleave-server",
		"Public-Key: (256 bit)",
		"NIST CURVE: P-256",
		"X509v3 Basic Constraints: critical",
		"CA:TRUE",
		"X509v3 Key Usage: critical",
		"Digital Signature, Certificate Sign",
		"TLS Web Server Authentication",
		"X509v3 Subject Alternative Name:",
		"DNS:localhost, DNS:cleave.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
		"X509v3 Subject Key Identifier",
		"X509v3 Authority Key Identifier",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (strstr(text, want[i]) == NULL)
			fail_msg("certificate text lacks \"%s\":\n%s", want[i], text);
	}
	free(text);
}

static void
test_tls_cert_verifies_as_own_anchor(void **state)
{
	struct tmpdir *d = *state;
	char *out;

	generate(d);
	out = capturef("openssl verify -CAfile '%s' '%s' 2>&1", d->cert, d->cert);
	assert_non_null(out);
	assert_non_null(strstr(out, ": OK"));
	free(out);
	/* As a TLS server certificate for the names it carries. */
	out = capturef("openssl verify -purpose sslserver -verify_hostname localhost -CAfile '%s' "
		       "'%s' 2>&1",
		       d->cert, d->cert);
	assert_non_null(out);
	free(out);
	out = capturef("openssl verify -verify_ip 127.0.0.1 -CAfile '%s' '%s' 2>&1", d->cert,
		       d->cert);
	assert_non_null(out);
	free(out);
	out = capturef("openssl verify -verify_hostname example.com -CAfile '%s' '%s' 2>&1",
		       d->cert, d->cert);
	assert_null(out);
}

static void
test_tls_cert_key_matches_and_is_pkcs8(void **state)
{
	struct tmpdir *d = *state;
	char *from_key, *from_cert, *pem;

	generate(d);
	pem = capturef("cat '%s'", d->key);
	assert_non_null(pem);
	assert_memory_equal(pem, "-----BEGIN PRIVATE KEY-----\n", 28);
	free(pem);
	from_key = capturef("openssl pkey -in '%s' -pubout", d->key);
	from_cert = capturef("openssl x509 -in '%s' -noout -pubkey", d->cert);
	assert_non_null(from_key);
	assert_non_null(from_cert);
	assert_string_equal(from_key, from_cert);
	free(from_key);
	free(from_cert);
}

static void
test_tls_cert_serial_is_random_16_bytes(void **state)
{
	struct tmpdir *d = *state;
	char *s1, *s2;

	generate(d);
	s1 = capturef("openssl x509 -in '%s' -noout -serial", d->cert);
	generate(d);
	s2 = capturef("openssl x509 -in '%s' -noout -serial", d->cert);
	assert_non_null(s1);
	assert_non_null(s2);
	/* "serial=" + 32 hex digits + newline. */
	assert_int_equal(strlen(s1), 7 + 32 + 1);
	assert_string_not_equal(s1, s2);
	free(s1);
	free(s2);
	/* Regenerating replaced both files and left no temp files. */
	assert_int_equal(count_entries(d->path), 2);
}

static void
test_tls_cert_file_modes(void **state)
{
	struct tmpdir *d = *state;
	struct stat st;
	mode_t old = umask(077);
	int r = tls_cert_generate(d->cert, d->key, dns, 1, NULL, 0, 1);

	umask(old);
	assert_int_equal(r, 0);
	assert_int_equal(stat(d->key, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(d->cert, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0644);
}

static void
test_tls_cert_rejects_bad_arguments(void **state)
{
	struct tmpdir *d = *state;
	static const char *const bad_ip[] = {"999.1.1.1"};
	static const char *const bad_dns[] = {"a b"};
	static const char *const dots[] = {"a..b"};
	char missing_dir[160];

	assert_int_equal(tls_cert_generate(d->cert, d->key, dns, 1, ips, 1, 0), -EINVAL);
	assert_int_equal(tls_cert_generate(d->cert, d->key, dns, 1, ips, 1, -5), -EINVAL);
	assert_int_equal(tls_cert_generate(d->cert, d->key, NULL, 0, NULL, 0, 30), -EINVAL);
	assert_int_equal(tls_cert_generate(d->cert, d->key, dns, 0, bad_ip, 1, 30), -EINVAL);
	assert_int_equal(tls_cert_generate(d->cert, d->key, bad_dns, 1, NULL, 0, 30), -EINVAL);
	assert_int_equal(tls_cert_generate(d->cert, d->key, dots, 1, NULL, 0, 30), -EINVAL);
	assert_int_equal(tls_cert_generate(d->cert, d->cert, dns, 1, NULL, 0, 30), -EINVAL);
	assert_int_equal(tls_cert_generate(NULL, d->key, dns, 1, NULL, 0, 30), -EINVAL);
	assert_int_equal(count_entries(d->path), 0);
	snprintf(missing_dir, sizeof(missing_dir), "%s/nope/tls.key", d->path);
	assert_int_equal(tls_cert_generate(d->cert, missing_dir, dns, 1, NULL, 0, 30), -ENOENT);
	assert_int_equal(count_entries(d->path), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_tls_cert_text_shows_profile, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_tls_cert_verifies_as_own_anchor, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_tls_cert_key_matches_and_is_pkcs8, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_tls_cert_serial_is_random_16_bytes, setup_dir,
						teardown_dir),
		cmocka_unit_test_setup_teardown(test_tls_cert_file_modes, setup_dir, teardown_dir),
		cmocka_unit_test_setup_teardown(test_tls_cert_rejects_bad_arguments, setup_dir,
						teardown_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

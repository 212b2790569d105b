/*
 * Tests of the agent's state directory (agent/keystore.c, agent/kvfile.c): the identity and
 * device key round-trip; a directory or file that others could read, a damaged or oversized
 * record and a missing device key are refused with an error (never repaired); signature
 * nonces keep growing across restarts even when the clock goes back; one agent per directory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/keystore.h"
#include "agent/kvfile.h"
#include "crypto.h"

struct fx {
	char dir[64];
	struct agent_dir d;
	struct identity id;
	struct ed25519_key *key;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-agent-ks-XXXXXX");
	if (mkdtemp(f->dir) == NULL || agent_dir_open(&f->d, f->dir, 0) != 0 ||
	    ed25519_key_generate(&f->key) != 0)
		return -1;
	snprintf(f->id.server, sizeof(f->id.server), "https://127.0.0.1:8443");
	snprintf(f->id.device_id, sizeof(f->id.device_id), "dev_0123");
	snprintf(f->id.owner, sizeof(f->id.owner), "alice@example.com");
	memset(f->id.server_key, 0x11, 32);
	memset(f->id.hv_key, 0x22, 32);
	f->id.has_ca = 1;
	snprintf(f->id.pin, sizeof(f->id.pin), "sha256//AAAA");
	snprintf(f->id.hv_socket, sizeof(f->id.hv_socket), "/run/cleave-hv/hv.sock");
	f->id.enrolled_at = 1795000000;
	f->id.pinned = 1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	ed25519_key_free(f->key);
	agent_dir_close(&f->d);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	(void)!system(cmd);
	free(f);
	return 0;
}

static void
path(const struct fx *f, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", f->dir, name);
}

static void
test_agent_keystore_identity_roundtrip(void **state)
{
	struct fx *f = *state;
	struct identity got;
	struct ed25519_key *k = NULL;
	uint8_t a[32], b[32];
	struct stat st;
	char p[128];

	assert_false(identity_exists(&f->d));
	assert_int_equal(identity_load(&f->d, &got, NULL), -ENOENT);
	assert_int_equal(identity_save(&f->d, &f->id, f->key), 0);
	assert_true(identity_exists(&f->d));
	assert_int_equal(identity_load(&f->d, &got, &k), 0);
	assert_string_equal(got.server, f->id.server);
	assert_string_equal(got.device_id, "dev_0123");
	assert_string_equal(got.owner, "alice@example.com");
	assert_string_equal(got.pin, "sha256//AAAA");
	assert_memory_equal(got.server_key, f->id.server_key, 32);
	assert_memory_equal(got.hv_key, f->id.hv_key, 32);
	assert_int_equal(got.pinned, 1);
	assert_int_equal(got.has_ca, 1);
	assert_int_equal(got.enrolled_at, 1795000000);
	ed25519_key_public(f->key, a);
	ed25519_key_public(k, b);
	assert_memory_equal(a, b, 32);
	ed25519_key_free(k);
	path(f, "identity", p, sizeof(p));
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	path(f, "device.key", p, sizeof(p));
	assert_int_equal(stat(p, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
}

static void
test_agent_keystore_wrong_modes_refused(void **state)
{
	struct fx *f = *state;
	struct agent_dir d2;
	struct identity got;
	struct ed25519_key *k = NULL;
	char p[128];

	assert_int_equal(identity_save(&f->d, &f->id, f->key), 0);
	path(f, "identity", p, sizeof(p));
	assert_int_equal(chmod(p, 0640), 0);
	assert_int_equal(identity_load(&f->d, &got, NULL), -EPERM);
	assert_int_equal(chmod(p, 0600), 0);
	path(f, "device.key", p, sizeof(p));
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(identity_load(&f->d, &got, &k), -EPERM);
	assert_null(k);
	assert_int_equal(chmod(p, 0600), 0);
	assert_int_equal(chmod(f->dir, 0755), 0);
	assert_int_equal(agent_dir_open(&d2, f->dir, 0), -EPERM);
	assert_int_equal(chmod(f->dir, 0700), 0);
	assert_int_equal(agent_dir_open(&d2, f->dir, 0), 0);
}

static void
test_agent_keystore_damaged_records_refused(void **state)
{
	struct fx *f = *state;
	struct identity got;
	struct ed25519_key *k = NULL;
	char p[128], big[KV_FILE_MAX + 16];
	FILE *fp;

	assert_int_equal(identity_save(&f->d, &f->id, f->key), 0);
	/* An edited field breaks the checksum. */
	path(f, "identity", p, sizeof(p));
	fp = fopen(p, "r+");
	assert_non_null(fp);
	fseek(fp, 30, SEEK_SET);
	fputc('X', fp);
	fclose(fp);
	assert_int_equal(identity_load(&f->d, &got, NULL), -EBADMSG);

	/* Oversized: refused before it is parsed. */
	memset(big, 'a', sizeof(big));
	fp = fopen(p, "w");
	assert_non_null(fp);
	fwrite(big, 1, sizeof(big), fp);
	fclose(fp);
	assert_int_equal(identity_load(&f->d, &got, NULL), -EBADMSG);

	/* A good identity without its device key cannot be used. */
	assert_int_equal(identity_save(&f->d, &f->id, NULL), 0);
	path(f, "device.key", p, sizeof(p));
	assert_int_equal(unlink(p), 0);
	assert_int_equal(identity_load(&f->d, &got, NULL), 0);
	assert_int_equal(identity_load(&f->d, &got, &k), -EBADMSG);
}

static void
test_agent_keystore_kvfile_strict(void **state)
{
	struct fx *f = *state;
	struct kv_writer w;
	struct kv kv;
	uint64_t u;
	int64_t i;
	char p[128];

	path(f, "rec", p, sizeof(p));
	kvw_init(&w, "magic 1");
	kvw_u64(&w, "n", 18446744073709551615ull);
	kvw_i64(&w, "m", -5);
	kvw_str(&w, "s", "two words");
	kvw_str(&w, "lead", "007");
	assert_int_equal(kvw_commit(&w, p), 0);
	assert_int_equal(kv_load(p, "magic 1", &kv), 0);
	assert_int_equal(kv_get_u64(&kv, "n", &u), 0);
	assert_true(u == UINT64_MAX);
	assert_int_equal(kv_get_i64(&kv, "m", &i), 0);
	assert_int_equal(i, -5);
	assert_string_equal(kv_get(&kv, "s"), "two words");
	assert_int_equal(kv_get_u64(&kv, "lead", &u), -EINVAL); /* not canonical */
	assert_int_equal(kv_get_u64(&kv, "none", &u), -ENOENT);
	kv_free(&kv);
	assert_int_equal(kv_load(p, "magic 2", &kv), -EBADMSG);

	/* A newline inside a value cannot be written. */
	kvw_init(&w, "magic 1");
	kvw_str(&w, "s", "two\nlines");
	assert_int_equal(kvw_commit(&w, p), -EINVAL);
	/* The same key twice is refused on load. */
	kvw_init(&w, "magic 1");
	kvw_str(&w, "s", "a");
	kvw_str(&w, "s", "b");
	assert_int_equal(kvw_commit(&w, p), 0);
	assert_int_equal(kv_load(p, "magic 1", &kv), -EBADMSG);
}

static void
test_agent_keystore_nonces_only_grow(void **state)
{
	struct fx *f = *state;
	struct nonce_gen g;
	uint64_t a, b, c;

	assert_int_equal(nonce_open(&g, &f->d), 0);
	assert_int_equal(nonce_next(&g, 5000000, &a), 0);
	assert_int_equal(nonce_next(&g, 5000000, &b), 0); /* same clock reading */
	assert_true(b > a);
	/* A restart with the clock set back: still above everything used before. */
	assert_int_equal(nonce_open(&g, &f->d), 0);
	assert_int_equal(nonce_next(&g, 1000, &c), 0);
	assert_true(c > b);
	/* The clock moving ahead is followed. */
	assert_int_equal(nonce_next(&g, 900000000000ull, &a), 0);
	assert_true(a == 900000000000ull);
}

static void
test_agent_keystore_state_and_lock(void **state)
{
	struct fx *f = *state;
	struct agent_state s = {0}, got;
	struct agent_dir d2;

	assert_int_equal(agent_state_load(&f->d, &got), 0); /* missing: empty state */
	assert_int_equal(got.policy_version, -1);
	snprintf(s.policy_name, sizeof(s.policy_name), "standard");
	s.policy_version = 3;
	s.last_checkin = 1795000100;
	snprintf(s.last_error, sizeof(s.last_error), "HTTP 401: stale");
	assert_int_equal(agent_state_save(&f->d, &s), 0);
	assert_int_equal(agent_state_load(&f->d, &got), 0);
	assert_string_equal(got.policy_name, "standard");
	assert_int_equal(got.policy_version, 3);
	assert_int_equal(got.last_checkin, 1795000100);
	assert_string_equal(got.last_error, "HTTP 401: stale");

	assert_int_equal(agent_dir_lock(&f->d), 0);
	assert_int_equal(agent_dir_open(&d2, f->dir, 0), 0);
	assert_int_equal(agent_dir_lock(&d2), -EBUSY);
	agent_dir_close(&f->d);
	assert_int_equal(agent_dir_lock(&d2), 0);
	agent_dir_close(&d2);
}

static void
test_agent_keystore_purge_removes_only_ours(void **state)
{
	struct fx *f = *state;
	char p[128];
	FILE *fp;

	assert_int_equal(identity_save(&f->d, &f->id, f->key), 0);
	path(f, "not-ours.txt", p, sizeof(p));
	fp = fopen(p, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(agent_dir_purge(&f->d), 0);
	assert_false(identity_exists(&f->d));
	assert_int_equal(access(p, F_OK), 0); /* a file that is not the agent's stays */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_keystore_identity_roundtrip, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_keystore_wrong_modes_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_keystore_damaged_records_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_keystore_kvfile_strict, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_keystore_nonces_only_grow, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_keystore_state_and_lock, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_keystore_purge_removes_only_ours, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

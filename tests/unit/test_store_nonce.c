/*
 * Unit tests of the store's side of enrollment nonces handed out to a TPM (migration 0024), on
 * both backends: the AK name and the EK certificate's issuer come back with the nonce exactly
 * as written (also through another connection, as another server would take it), once; a
 * nonce handed out in plain comes back with no AK; an expired one is -ETIME and gone; a name
 * longer than any TPM name is refused before it reaches the database.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "store_fixture.h"
#include "util.h"

static struct enroll_nonce
tpm_nonce(uint8_t tag, int64_t exp)
{
	struct enroll_nonce n;

	memset(&n, 0, sizeof(n));
	n.expires_at = exp;
	str_copy(n.token_id, sizeof(n.token_id), "etk_tpm");
	n.ak_name[0] = 0x00; /* nameAlg SHA-256, then the digest */
	n.ak_name[1] = 0x0b;
	memset(n.ak_name + 2, tag, 32);
	n.ak_name[33] = 0x00; /* a zero byte inside the name must survive */
	n.ak_name_len = 34;
	snprintf(n.ek_issuer, sizeof(n.ek_issuer), "CN=swtpm-localca-%u,O=Maker 'quoted' \"x\"",
		 tag);
	return n;
}

static void
test_tpm_nonce_round_trip(void **state)
{
	struct fx *fx = *state;
	struct store *st = fx->st, *other = NULL;
	uint8_t a[32], b[32];
	struct enroll_nonce n = tpm_nonce(0xa5, 100), m = tpm_nonce(0x5a, 100), got;

	memset(a, 0x11, sizeof(a));
	memset(b, 0x22, sizeof(b));
	assert_int_equal(st->ops->nonce_insert(st, a, &n), 0);
	assert_int_equal(st->ops->nonce_take(st, a, 50, &got), 0);
	assert_string_equal(got.token_id, "etk_tpm");
	assert_int_equal(got.expires_at, 100);
	assert_int_equal(got.ak_name_len, 34);
	assert_memory_equal(got.ak_name, n.ak_name, 34);
	assert_string_equal(got.ek_issuer, n.ek_issuer);
	assert_int_equal(st->ops->nonce_take(st, a, 50, &got), -ENOENT);

	/* Another server takes it: the same fields; this one then finds nothing. */
	assert_int_equal(st->ops->nonce_insert(st, b, &m), 0);
	assert_int_equal(store_fx_open(fx, &other), 0);
	assert_int_equal(other->ops->nonce_take(other, b, 50, &got), 0);
	assert_int_equal(got.ak_name_len, 34);
	assert_memory_equal(got.ak_name, m.ak_name, 34);
	assert_string_equal(got.ek_issuer, m.ek_issuer);
	assert_int_equal(st->ops->nonce_take(st, b, 50, &got), -ENOENT);
	other->ops->close(other);
}

static void
test_plain_expired_and_bounds(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	uint8_t a[32], b[32];
	struct enroll_nonce plain = {.expires_at = 100, .token_id = "etk_plain"}, got;
	struct enroll_nonce n = tpm_nonce(1, 100);

	memset(a, 0x33, sizeof(a));
	memset(b, 0x44, sizeof(b));
	/* A plain nonce after a TPM one: nothing of the TPM's is left in the answer. */
	assert_int_equal(st->ops->nonce_insert(st, a, &plain), 0);
	memset(&got, 0xee, sizeof(got));
	assert_int_equal(st->ops->nonce_take(st, a, 50, &got), 0);
	assert_string_equal(got.token_id, "etk_plain");
	assert_int_equal(got.ak_name_len, 0);
	assert_string_equal(got.ek_issuer, "");

	assert_int_equal(st->ops->nonce_insert(st, b, &n), 0);
	assert_int_equal(st->ops->nonce_take(st, b, 101, &got), -ETIME);
	assert_int_equal(st->ops->nonce_take(st, b, 50, &got), -ENOENT);

	n.ak_name_len = STORE_AK_NAME_MAX + 1;
	assert_int_equal(st->ops->nonce_insert(st, b, &n), -EINVAL);
	assert_int_equal(st->ops->nonce_take(st, b, 50, &got), -ENOENT);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_tpm_nonce_round_trip),
		T(test_plain_expired_and_bounds),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store TPM enrollment nonces", both, ARRAY_SIZE(both));
}

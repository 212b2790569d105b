/*
 * Unit tests of the store's side of single sign-on (migration 0021), on both backends: a flow
 * is taken once (a second take, also through another connection as another server would, is
 * -ENOENT), recording a flow forgets the expired ones and keeps the rest; an account is found by
 * the provider's (issuer, subject), each side links once, a subject of another issuer is
 * another person; admin_sso_update changes email, name and role, refuses another account's
 * email (without case) and an unknown id.
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

static struct oidc_flow
flow(uint8_t tag, int64_t created, int64_t expires)
{
	struct oidc_flow f;

	memset(&f, 0, sizeof(f));
	memset(f.state_hash, tag, sizeof(f.state_hash));
	snprintf(f.nonce, sizeof(f.nonce), "nonce-%u", tag);
	snprintf(f.verifier, sizeof(f.verifier), "verifier-%u", tag);
	f.created_at = created;
	f.expires_at = expires;
	return f;
}

static void
test_flow_taken_once(void **state)
{
	struct fx *fx = *state;
	struct store *st = fx->st, *other = NULL;
	struct oidc_flow f = flow(1, 100, 700), got;

	assert_int_equal(st->ops->oidc_flow_insert(st, &f), 0);
	/* The same state twice is a bug of the caller's randomness: refused. */
	assert_int_equal(st->ops->oidc_flow_insert(st, &f), -EEXIST);
	assert_int_equal(st->ops->oidc_flow_take(st, f.state_hash, &got), 0);
	assert_string_equal(got.nonce, "nonce-1");
	assert_string_equal(got.verifier, "verifier-1");
	assert_int_equal(got.created_at, 100);
	assert_int_equal(got.expires_at, 700);
	assert_memory_equal(got.state_hash, f.state_hash, 32);
	assert_int_equal(st->ops->oidc_flow_take(st, f.state_hash, &got), -ENOENT);
	/* Another server (connection) finishing the same flow finds nothing either. */
	f = flow(2, 100, 700);
	assert_int_equal(st->ops->oidc_flow_insert(st, &f), 0);
	assert_int_equal(store_fx_open(fx, &other), 0);
	assert_int_equal(other->ops->oidc_flow_take(other, f.state_hash, &got), 0);
	assert_int_equal(st->ops->oidc_flow_take(st, f.state_hash, &got), -ENOENT);
	other->ops->close(other);
}

static void
test_flow_purge(void **state)
{
	struct fx *fx = *state;
	struct store *st = fx->st;
	struct oidc_flow old = flow(3, 100, 200), live = flow(4, 150, 800),
			 later = flow(5, 300, 900);
	struct oidc_flow got;

	assert_int_equal(st->ops->oidc_flow_insert(st, &old), 0);
	assert_int_equal(st->ops->oidc_flow_insert(st, &live), 0);
	/* Begun at 300: the flow that expired at 200 goes, the one until 800 stays. */
	assert_int_equal(st->ops->oidc_flow_insert(st, &later), 0);
	assert_int_equal(st->ops->oidc_flow_take(st, old.state_hash, &got), -ENOENT);
	assert_int_equal(st->ops->oidc_flow_take(st, live.state_hash, &got), 0);
	assert_int_equal(st->ops->oidc_flow_take(st, later.state_hash, &got), 0);
}

static void
add_admin(struct store *st, const char *id, const char *email)
{
	struct admin_account a;

	memset(&a, 0, sizeof(a));
	str_copy(a.id, sizeof(a.id), id);
	str_copy(a.email, sizeof(a.email), email);
	str_copy(a.display_name, sizeof(a.display_name), email);
	str_copy(a.role, sizeof(a.role), "auditor");
	str_copy(a.created_by, sizeof(a.created_by), "oidc");
	a.created_at = 10;
	assert_int_equal(st->ops->admin_insert(st, &a), 0);
}

static void
test_identity_link(void **state)
{
	struct fx *fx = *state;
	struct store *st = fx->st;
	struct admin_account a;

	add_admin(st, "adm_a", "a@example.com");
	add_admin(st, "adm_b", "b@example.com");
	assert_int_equal(st->ops->admin_by_identity(st, "https://op", "sub-a", &a), -ENOENT);
	assert_int_equal(st->ops->admin_identity_insert(st, "https://op", "sub-a", "adm_a", 20), 0);
	assert_int_equal(st->ops->admin_by_identity(st, "https://op", "sub-a", &a), 0);
	assert_string_equal(a.id, "adm_a");
	assert_string_equal(a.email, "a@example.com");
	/* The same person twice, or a second person on one account: refused. */
	assert_int_equal(st->ops->admin_identity_insert(st, "https://op", "sub-a", "adm_b", 21),
			 -EEXIST);
	assert_int_equal(st->ops->admin_identity_insert(st, "https://op2", "sub-x", "adm_a", 21),
			 -EEXIST);
	/* The same sub at another issuer is someone else. */
	assert_int_equal(st->ops->admin_by_identity(st, "https://op2", "sub-a", &a), -ENOENT);
	assert_int_equal(st->ops->admin_identity_insert(st, "https://op2", "sub-a", "adm_b", 22),
			 0);
	assert_int_equal(st->ops->admin_by_identity(st, "https://op2", "sub-a", &a), 0);
	assert_string_equal(a.id, "adm_b");
}

static void
test_sso_update(void **state)
{
	struct fx *fx = *state;
	struct store *st = fx->st;
	struct admin_account a;

	add_admin(st, "adm_a", "a@example.com");
	add_admin(st, "adm_b", "b@example.com");
	assert_int_equal(st->ops->admin_sso_update(st, "adm_a", "a2@example.com", "A Two", "admin"),
			 0);
	assert_int_equal(st->ops->admin_get(st, "adm_a", &a), 0);
	assert_string_equal(a.email, "a2@example.com");
	assert_string_equal(a.display_name, "A Two");
	assert_string_equal(a.role, "admin");
	assert_int_equal(st->ops->admin_sso_update(st, "adm_a", "B@example.com", "A", "admin"),
			 -EEXIST);
	assert_int_equal(st->ops->admin_sso_update(st, "adm_none", "n@example.com", "N", "admin"),
			 -ENOENT);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_flow_taken_once),
		T(test_flow_purge),
		T(test_identity_link),
		T(test_sso_update),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store single sign-on", both, ARRAY_SIZE(both));
}

/*
 * Unit tests of console admin accounts and sessions (server/service/admins.c, issue 9) on a
 * real store of each backend (SQLite, then PostgreSQL when installed) with an injected clock:
 * Argon2id password hashes, one answer for every failed sign-in, session ids stored only as
 * SHA-256, idle and absolute expiry, CSRF tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "service/service.h"
#include "service/totp.h"
#include "store/store.h"
#include "store_fixture.h"

#define PASSWORD "a long enough password"

static int64_t now_ms = 1767225600000LL; /* 2026-01-01 */

static int64_t
test_clock(void)
{
	return now_ms;
}

struct afx {
	struct fx f;
	struct ed25519_key *key;
	struct service *svc;
	struct principal root;
};

static int
setup(void **state)
{
	struct service_config cfg = {.session_idle_s = 600, .session_max_s = 3600};
	struct afx *a = calloc(1, sizeof(*a));
	struct fx *f;
	struct admin_account acc;
	struct svc_error err;

	if (a == NULL || store_fx_setup(state) != 0)
		return -1;
	f = *state;
	a->f = *f;
	free(f);
	*state = a;
	a->root.role = ROLE_ADMIN;
	snprintf(a->root.id, sizeof(a->root.id), "tok_root");
	if (ed25519_key_generate(&a->key) != 0 ||
	    service_new(a->f.st, a->key, &cfg, test_clock, &a->svc) != 0)
		return -1;
	return svc_admin_create(a->svc, &a->root, "eve@example.com", "Eve", ROLE_HELPDESK, PASSWORD,
				&acc, &err);
}

static int
teardown(void **state)
{
	struct afx *a = *state;
	struct fx *f = malloc(sizeof(*f));

	service_free(a->svc);
	ed25519_key_free(a->key);
	*f = a->f;
	free(a);
	*state = f;
	return store_fx_teardown(state);
}

static void
test_password_is_argon2id_and_failures_look_alike(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct svc_error e1 = {0}, e2 = {0}, e3 = {0};
	char *sid = NULL;

	assert_int_equal(a->f.st->ops->admin_by_email(a->f.st, "EVE@example.com", &acc), 0);
	assert_memory_equal(acc.pwhash, "$argon2id$", 10);
	assert_null(strstr(acc.pwhash, PASSWORD));
	assert_int_not_equal(svc_login(a->svc, "eve@example.com", "not the password", NULL,
				       "10.0.0.1", &sid, &acc, &e1),
			     0);
	assert_int_not_equal(
		svc_login(a->svc, "who@example.com", PASSWORD, NULL, "10.0.0.1", &sid, &acc, &e2),
		0);
	assert_null(sid);
	assert_int_equal(e1.kind, SVC_UNAUTHORIZED);
	assert_int_equal(e2.kind, SVC_UNAUTHORIZED);
	assert_string_equal(e1.detail, e2.detail);
	assert_int_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "10.0.0.1", &sid, &acc, &e3),
		0);
	assert_non_null(sid);
	assert_string_equal(acc.role, "helpdesk");
	free(sid);
}

static void
test_session_stored_hashed_with_csrf(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct admin_session ss;
	struct principal p;
	struct svc_error err = {0};
	char *s1 = NULL, *s2 = NULL, c1[SVC_CSRF_LEN], c2[SVC_CSRF_LEN];
	uint8_t h[32];

	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &s1, &acc, &err),
			 0);
	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &s2, &acc, &err),
			 0);
	crypto_sha256(s1, strlen(s1), h);
	assert_int_equal(a->f.st->ops->session_get(a->f.st, h, &ss), 0);
	assert_string_equal(ss.admin_id, acc.id);
	svc_session_csrf(s1, c1);
	svc_session_csrf(s2, c2);
	assert_string_not_equal(c1, c2);
	assert_int_not_equal(svc_session_auth(a->svc, s1, 1, NULL, &p, &err), 0);
	assert_int_equal(err.kind, SVC_FORBIDDEN);
	assert_int_not_equal(svc_session_auth(a->svc, s1, 1, c2, &p, &err), 0);
	assert_int_equal(err.kind, SVC_FORBIDDEN);
	assert_int_equal(svc_session_auth(a->svc, s1, 1, c1, &p, &err), 0);
	assert_int_equal(p.role, ROLE_HELPDESK);
	assert_string_equal(p.id, acc.id);
	assert_int_equal(svc_session_auth(a->svc, s2, 0, NULL, &p, &err), 0);
	free(s1);
	free(s2);
}

static void
test_idle_expiry(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct principal p;
	struct svc_error err = {0};
	char *sid = NULL;

	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &sid, &acc, &err),
			 0);
	/* used every 9 minutes: the idle limit (10) never passes */
	for (int i = 0; i < 3; i++) {
		now_ms += 540 * 1000;
		assert_int_equal(svc_session_auth(a->svc, sid, 0, NULL, &p, &err), 0);
	}
	now_ms += 600 * 1000;
	assert_int_not_equal(svc_session_auth(a->svc, sid, 0, NULL, &p, &err), 0);
	assert_int_equal(err.kind, SVC_UNAUTHORIZED);
	/* and it stays gone when the clock is set back */
	now_ms -= 600 * 1000;
	assert_int_not_equal(svc_session_auth(a->svc, sid, 0, NULL, &p, &err), 0);
	free(sid);
}

static void
test_absolute_expiry(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct principal p;
	struct svc_error err = {0};
	char *sid = NULL;

	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &sid, &acc, &err),
			 0);
	/* busy for 59 minutes, then the hour since sign-in ends it however busy */
	for (int i = 0; i < 7; i++) {
		now_ms += 500 * 1000;
		assert_int_equal(svc_session_auth(a->svc, sid, 0, NULL, &p, &err), 0);
	}
	now_ms += 100 * 1000;
	assert_int_not_equal(svc_session_auth(a->svc, sid, 0, NULL, &p, &err), 0);
	assert_int_equal(err.kind, SVC_UNAUTHORIZED);
	free(sid);
}

static void
test_disable_ends_sessions(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct principal p;
	struct svc_error err = {0};
	char *sid = NULL;

	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &sid, &acc, &err),
			 0);
	assert_int_equal(svc_admin_disable(a->svc, &a->root, acc.id, &err), 0);
	assert_int_not_equal(svc_session_auth(a->svc, sid, 0, NULL, &p, &err), 0);
	free(sid);
	sid = NULL;
	assert_int_not_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &sid, &acc, &err), 0);
	assert_string_equal(err.detail, "email or password is wrong");
}

static void
test_totp_enrolled_then_required(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct svc_error err = {0};
	char *sid = NULL, *uri = NULL, code[16];
	uint32_t c;

	assert_int_equal(a->f.st->ops->admin_by_email(a->f.st, "eve@example.com", &acc), 0);
	assert_false(acc.has_totp);
	assert_int_equal(svc_admin_totp_enroll(a->svc, &a->root, acc.id, &uri, &err), 0);
	assert_non_null(strstr(uri, "otpauth://totp/Cleave:eve@example.com?secret="));
	assert_non_null(strstr(uri, "&digits=6&period=30"));
	free(uri);
	assert_int_equal(a->f.st->ops->admin_by_email(a->f.st, "eve@example.com", &acc), 0);
	assert_true(acc.has_totp);
	/* the password alone no longer signs in, and the answer does not say why */
	assert_int_not_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "", &sid, &acc, &err), 0);
	assert_string_equal(err.detail, "email or password is wrong");
	assert_int_equal(totp_code(acc.totp_secret, 20, now_ms / 1000, 30, 6, &c), 0);
	snprintf(code, sizeof(code), "%06u", (c + 1) % 1000000);
	assert_int_not_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, code, "", &sid, &acc, &err), 0);
	snprintf(code, sizeof(code), "%06u", c);
	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, code, "", &sid, &acc, &err),
			 0);
	free(sid);
	sid = NULL;
	/* the same code does not work twice, not even in its own 30 seconds */
	assert_int_not_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, code, "", &sid, &acc, &err), 0);
	/* the next step's code does */
	now_ms += 30 * 1000;
	assert_int_equal(totp_code(acc.totp_secret, 20, now_ms / 1000, 30, 6, &c), 0);
	snprintf(code, sizeof(code), "%06u", c);
	assert_int_equal(svc_login(a->svc, "eve@example.com", PASSWORD, code, "", &sid, &acc, &err),
			 0);
	free(sid);
}

static void
test_require_totp_setting(void **state)
{
	struct afx *a = *state;
	struct service_config cfg = {.require_totp = 1};
	struct service *strict = NULL;
	struct admin_account acc;
	struct svc_error err = {0};
	char *sid = NULL, *uri = NULL, code[16];
	uint32_t c;

	assert_int_equal(service_new(a->f.st, a->key, &cfg, test_clock, &strict), 0);
	/* an account without a second factor cannot sign in at all */
	assert_int_not_equal(
		svc_login(strict, "eve@example.com", PASSWORD, NULL, "", &sid, &acc, &err), 0);
	assert_int_equal(a->f.st->ops->admin_by_email(a->f.st, "eve@example.com", &acc), 0);
	assert_int_equal(svc_admin_totp_enroll(strict, &a->root, acc.id, &uri, &err), 0);
	free(uri);
	assert_int_equal(a->f.st->ops->admin_by_email(a->f.st, "eve@example.com", &acc), 0);
	assert_int_equal(totp_code(acc.totp_secret, 20, now_ms / 1000, 30, 6, &c), 0);
	snprintf(code, sizeof(code), "%06u", c);
	assert_int_equal(svc_login(strict, "eve@example.com", PASSWORD, code, "", &sid, &acc, &err),
			 0);
	free(sid);
	service_free(strict);
}

static void
test_account_throttled_after_failures(void **state)
{
	struct afx *a = *state;
	struct admin_account acc;
	struct svc_error err = {0};
	char *sid = NULL;

	/* five failures from five addresses: the per-address limit never triggers */
	for (int i = 0; i < 5; i++) {
		char ip[16];

		snprintf(ip, sizeof(ip), "10.0.0.%d", i + 1);
		assert_int_not_equal(svc_login(a->svc, "eve@example.com", "a wrong password", NULL,
					       ip, &sid, &acc, &err),
				     0);
	}
	/* now even the right password gets the usual answer, for a minute */
	assert_int_not_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "10.0.1.1", &sid, &acc, &err),
		0);
	assert_string_equal(err.detail, "email or password is wrong");
	now_ms += 61 * 1000;
	assert_int_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "10.0.1.1", &sid, &acc, &err),
		0);
	free(sid);
	sid = NULL;
	/* the good sign-in reset the count: one more failure does not throttle */
	assert_int_not_equal(svc_login(a->svc, "eve@example.com", "a wrong password", NULL, "x",
				       &sid, &acc, &err),
			     0);
	assert_int_equal(
		svc_login(a->svc, "eve@example.com", PASSWORD, NULL, "x", &sid, &acc, &err), 0);
	free(sid);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_password_is_argon2id_and_failures_look_alike,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_stored_hashed_with_csrf, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_idle_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_absolute_expiry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disable_ends_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_totp_enrolled_then_required, setup, teardown),
		cmocka_unit_test_setup_teardown(test_require_totp_setting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_account_throttled_after_failures, setup,
						teardown),
	};

	return store_fx_run_both("admins", tests, sizeof(tests) / sizeof(tests[0]));
}

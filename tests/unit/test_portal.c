/*
 * Unit tests of the employee portal's rules (server/service/portal.c) on a real store, SQLite
 * and then PostgreSQL (store_fx_run_both): the
 * three lists cover every host-side function of the hypervisor ABI in order and follow the
 * default policy (none, then one, then a change); device page links are stored only as their
 * hash, bound to one device and expire.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "api/api.h"
#include "cleave_abi.h"
#include "crypto.h"
#include "log.h"
#include "service/service.h"
#include "store_fixture.h"

static int64_t now_ms = 1767225600000LL; /* 2026-01-01 */

static int64_t
test_clock(void)
{
	return now_ms;
}

struct pfx {
	struct fx f;
	struct ed25519_key *key;
	struct service *svc;
	struct principal root;
};

static int
setup(void **state)
{
	struct service_config cfg = {.public_url = "https://mdm.example.com"};
	struct pfx *p = calloc(1, sizeof(*p));
	struct fx *f;

	if (p == NULL || store_fx_setup(state) != 0)
		return -1;
	f = *state;
	p->f = *f;
	free(f);
	*state = p;
	p->root.role = ROLE_ADMIN;
	snprintf(p->root.id, sizeof(p->root.id), "tok_root");
	if (ed25519_key_generate(&p->key) != 0 ||
	    service_new(p->f.st, p->key, &cfg, test_clock, &p->svc) != 0)
		return -1;
	service_set_policy_parser(p->svc, api_policy_parse);
	return 0;
}

static int
teardown(void **state)
{
	struct pfx *p = *state;
	struct fx *f = malloc(sizeof(*f));

	service_free(p->svc);
	ed25519_key_free(p->key);
	*f = p->f;
	free(p);
	*state = f;
	return store_fx_teardown(state);
}

/* 1 when some item of list contains text. */
static int
has(char (*list)[SVC_TERM_MAX], size_t n, const char *text)
{
	for (size_t i = 0; i < n; i++)
		if (strstr(list[i], text) != NULL)
			return 1;
	return 0;
}

static void
test_every_host_function_in_order(void **state)
{
	(void)state;
	/* The table is the ABI's host service, numbers 0.. without a gap, up to the last. */
	assert_int_equal(svc_hv_fn_count(), (CLV_FN_TPM_ACTIVATE & 0xffff) + 1);
	for (size_t i = 0; i < svc_hv_fn_count(); i++)
		assert_int_equal(svc_hv_fn_id(i), CLV_FID(CLV_SVC_HOST, i));
}

static void
test_lists_follow_the_policy(void **state)
{
	struct pfx *p = *state;
	struct portal_terms *t = malloc(sizeof(*t));
	struct svc_error err;
	struct policy pol;
	int changed;

	assert_int_equal(svc_portal_terms(p->svc, "<b>rita</b>@example.com", t), 0);
	assert_string_equal(t->policy, "no policy yet");
	assert_int_equal(t->n_never, 5);
	assert_true(has(t->see, t->n_see, "(<b>rita</b>@example.com)"));
	assert_true(has(t->can, t->n_can, "never locks itself"));
	assert_false(has(t->can, t->n_can, "is erased after"));
	/* Four ticket functions (lock, unlock, rekey, wipe), each with its receipt. */
	for (size_t i = 0, k = 0; i < t->n_can; i++)
		if (strstr(t->can[i], "signs a receipt") && ++k == 4)
			assert_true(strstr(t->can[i], "Erase the corporate half") != NULL);
	assert_non_null(strstr(t->interface, "attest, pin owner, lock, unlock, rekey, wipe"));

	assert_int_equal(svc_policy_put(p->svc, &p->root, "std",
					"{\"offline\":{\"lock_after_seconds\":5400,"
					"\"wipe_after_days\":3},\"max_failed_unlocks\":4}",
					&pol, &changed, &err),
			 0);
	assert_int_equal(svc_portal_terms(p->svc, "rita@example.com", t), 0);
	assert_string_equal(t->policy, "std, version 1");
	assert_true(has(t->can, t->n_can, "locks itself after 90 minutes without"));
	assert_true(has(t->can, t->n_can, "erased after 3 days without"));
	assert_true(has(t->can, t->n_can, "erased after 4 failed unlock attempts"));
	free(t);
}

static void
test_links_hashed_bound_expiring(void **state)
{
	struct pfx *p = *state;
	struct device d, got;
	struct portal_link l;
	char *url = NULL;
	const char *secret;
	uint8_t h[32];

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev_portal1");
	snprintf(d.owner, sizeof(d.owner), "rita@example.com");
	snprintf(d.status, sizeof(d.status), "active");
	assert_int_equal(p->f.st->ops->device_insert(p->f.st, &d), 0);
	assert_int_equal(svc_portal_link_create(p->svc, d.id, &url), 0);
	assert_int_equal(strncmp(url, "https://mdm.example.com/portal/clv_pl_", 38), 0);
	secret = url + strlen("https://mdm.example.com/portal/");
	/* Stored as its SHA-256 only, bound to the device. */
	crypto_sha256(secret, strlen(secret), h);
	assert_int_equal(p->f.st->ops->portal_link_get(p->f.st, h, &l), 0);
	assert_string_equal(l.device_id, d.id);
	assert_int_equal(svc_portal_open(p->svc, secret, &got), SVC_PORTAL_OK);
	assert_string_equal(got.id, d.id);
	assert_int_equal(svc_portal_open(p->svc, "clv_pl_nothing", &got), SVC_PORTAL_UNKNOWN);
	assert_int_equal(svc_portal_open(p->svc, "clv_et_other", &got), SVC_PORTAL_UNKNOWN);
	now_ms += (366LL * 86400) * 1000;
	assert_int_equal(svc_portal_open(p->svc, secret, &got), SVC_PORTAL_EXPIRED);
	now_ms -= (366LL * 86400) * 1000;
	free(url);
}

/* A device with more commands than one page: its page gets the newest, oldest of them first. */
static void
test_newest_commands(void **state)
{
	struct pfx *p = *state;
	struct command c, *out = calloc(STORE_LIST_MAX, sizeof(*out));
	struct device d;
	size_t n = 0, total = STORE_LIST_MAX + 37;

	memset(&d, 0, sizeof(d));
	snprintf(d.id, sizeof(d.id), "dev_portal2");
	snprintf(d.status, sizeof(d.status), "active");
	assert_int_equal(p->f.st->ops->device_insert(p->f.st, &d), 0);
	for (size_t i = 1; i <= total; i++) {
		memset(&c, 0, sizeof(c));
		snprintf(c.id, sizeof(c.id), "cmd_%zu", i);
		snprintf(c.device_id, sizeof(c.device_id), "%s", d.id);
		snprintf(c.type, sizeof(c.type), "lock");
		snprintf(c.status, sizeof(c.status), "completed");
		snprintf(c.created_by, sizeof(c.created_by), "system");
		c.counter = (int64_t)i;
		assert_int_equal(p->f.st->ops->command_insert(p->f.st, &c), 0);
	}
	assert_int_equal(svc_portal_commands(p->svc, d.id, out, STORE_LIST_MAX, &n), 0);
	assert_int_equal(n, STORE_LIST_MAX);
	assert_string_equal(out[0].id, "cmd_38");
	assert_string_equal(out[STORE_LIST_MAX - 1].id, "cmd_237");
	free(out);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_host_function_in_order),
		cmocka_unit_test_setup_teardown(test_lists_follow_the_policy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_links_hashed_bound_expiring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newest_commands, setup, teardown),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("portal", tests, sizeof(tests) / sizeof(tests[0]));
}

/*
 * Unit tests of the store's side of the two-person rule (migration 0019), on both backends:
 * approval_insert and approval_get (a bulk's device ids only into a caller's buffer),
 * approval_list newest first with ties on the time broken by id, keyset pages, the status and
 * device filters; approval_expired the pending ones past their expiry, oldest first;
 * approval_decide writes only a pending request (a second decision, or one of
 * an unknown id, is -ENOENT); command_set_approval records the approval on a command, which
 * every command read returns; token permissions are added once and found only for their token;
 * a console session keeps whether its sign-in checked a TOTP code; admin accounts and
 * requests keep their creation time in ms (migration 0022); a bulk inserted awaiting is
 * not claimed until bulk_release (only once), bulk_stop ends an awaiting one, and a request of
 * kind filter names its bulk.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "log.h"
#include "store_fixture.h"
#include "store_records.h"
#include "util.h"

/* A pending request id of kind and type by adm_ann, made at created, for a day. */
static void
fill(struct approval *a, const char *id, const char *kind, const char *type, int64_t created)
{
	memset(a, 0, sizeof(*a));
	str_copy(a->id, sizeof(a->id), id);
	str_copy(a->kind, sizeof(a->kind), kind);
	str_copy(a->type, sizeof(a->type), type);
	a->device_count = 1;
	str_copy(a->requested_by, sizeof(a->requested_by), "tok_ann");
	str_copy(a->requester_person, sizeof(a->requester_person), "adm_ann");
	str_copy(a->status, sizeof(a->status), "pending");
	a->created_at = created;
	a->created_ms = created * 1000 + 999; /* the same second's last ms */
	a->expires_at = created + 86400;
}

/* A pending wipe request id for device made at created. */
static void
add(struct store *st, const char *id, const char *device, int64_t created)
{
	struct approval a;

	fill(&a, id, "command", "wipe", created);
	str_copy(a.device_id, sizeof(a.device_id), device);
	str_copy(a.reason, sizeof(a.reason), "<b>stolen</b>");
	a.command_ttl_s = 600;
	assert_int_equal(st->ops->approval_insert(st, &a), 0);
}

/* The ids of one page into out ("a,b"); the page's size, its last row into *last. */
static size_t
page(struct store *st, const char *status, const char *device, const struct approval *after,
     size_t limit, char *out, size_t cap, struct approval *last)
{
	struct approval_filter f = {status, device, after ? after->created_at : 0,
				    after ? after->id : NULL, limit};
	struct approval items[8];
	size_t n = 0, k = 0;

	assert_true(limit <= 8);
	assert_int_equal(st->ops->approval_list(st, &f, items, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		assert_null(items[i].device_ids);
		k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : "", items[i].id);
	}
	if (n > 0)
		*last = items[n - 1];
	return n;
}

/* The ids of approval_expired(now, max) into out. */
static void
expired(struct store *st, int64_t now, size_t max, char *out, size_t cap)
{
	struct approval items[8];
	size_t n = 0, k = 0;

	assert_int_equal(st->ops->approval_expired(st, now, items, max, &n), 0);
	out[0] = '\0';
	for (size_t i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "," : "", items[i].id);
}

static void
test_insert_get_list(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct approval a, last;
	char ids[256], *buf = malloc(APPROVAL_IDS_MAX);

	assert_non_null(buf);
	add(st, "apr_a", "dev_1", 100);
	add(st, "apr_b", "dev_2", 200);
	add(st, "apr_c", "dev_1", 200); /* ties with apr_b: the id decides */
	fill(&a, "apr_d", "bulk", "lock", 300);
	str_copy(buf, APPROVAL_IDS_MAX, "dev_1 dev_2 dev_3");
	a.device_ids = buf;
	a.device_count = 3;
	a.expires_at = 400;
	assert_int_equal(st->ops->approval_insert(st, &a), 0);
	assert_int_equal(st->ops->approval_insert(st, &a), -EEXIST);

	memset(&a, 0, sizeof(a));
	memset(buf, 0, APPROVAL_IDS_MAX);
	a.device_ids = buf;
	assert_int_equal(st->ops->approval_get(st, "apr_d", 0, &a), 0);
	assert_string_equal(a.kind, "bulk");
	assert_string_equal(buf, "dev_1 dev_2 dev_3");
	assert_int_equal(a.device_count, 3);
	assert_int_equal(a.expires_at, 400);
	memset(&a, 0, sizeof(a));
	assert_int_equal(st->ops->approval_get(st, "apr_a", 0, &a), 0);
	assert_string_equal(a.reason, "<b>stolen</b>");
	assert_string_equal(a.requester_person, "adm_ann");
	assert_int_equal(a.command_ttl_s, 600);
	assert_int_equal(a.created_ms, 100999);
	assert_int_equal(st->ops->approval_get(st, "apr_none", 0, &a), -ENOENT);

	assert_int_equal(page(st, NULL, NULL, NULL, 2, ids, sizeof(ids), &last), 2);
	assert_string_equal(ids, "apr_d,apr_c");
	assert_int_equal(page(st, NULL, NULL, &last, 2, ids, sizeof(ids), &last), 2);
	assert_string_equal(ids, "apr_b,apr_a");
	assert_int_equal(page(st, NULL, NULL, &last, 2, ids, sizeof(ids), &last), 0);
	assert_int_equal(page(st, NULL, "dev_1", NULL, 8, ids, sizeof(ids), &last), 2);
	assert_string_equal(ids, "apr_c,apr_a");
	assert_int_equal(page(st, "approved", NULL, NULL, 8, ids, sizeof(ids), &last), 0);
	/* Past their expiry, the oldest expiry first (ties by id), at most max. */
	expired(st, 399, 8, ids, sizeof(ids));
	assert_string_equal(ids, "");
	expired(st, 400, 8, ids, sizeof(ids));
	assert_string_equal(ids, "apr_d");
	expired(st, 86600, 8, ids, sizeof(ids));
	assert_string_equal(ids, "apr_d,apr_a,apr_b,apr_c");
	expired(st, 86600, 2, ids, sizeof(ids));
	assert_string_equal(ids, "apr_d,apr_a");
	free(buf);
}

static void
test_decide_only_pending(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct approval a, got = {0};
	char ids[256];

	add(st, "apr_x", "dev_1", 100);
	memset(&a, 0, sizeof(a));
	str_copy(a.id, sizeof(a.id), "apr_x");
	str_copy(a.status, sizeof(a.status), "approved");
	str_copy(a.decided_by, sizeof(a.decided_by), "tok_bob");
	str_copy(a.decided_person, sizeof(a.decided_person), "adm_bob");
	str_copy(a.command_id, sizeof(a.command_id), "cmd_1");
	a.decided_at = 150;
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->approval_get(st, "apr_x", 1, &got), 0);
	assert_int_equal(st->ops->approval_decide(st, &a), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	/* A second decision finds it decided: the guard that keeps two approvals to one. */
	str_copy(a.status, sizeof(a.status), "rejected");
	assert_int_equal(st->ops->approval_decide(st, &a), -ENOENT);
	str_copy(a.id, sizeof(a.id), "apr_none");
	assert_int_equal(st->ops->approval_decide(st, &a), -ENOENT);
	assert_int_equal(st->ops->approval_get(st, "apr_x", 0, &got), 0);
	assert_string_equal(got.status, "approved");
	assert_string_equal(got.decided_by, "tok_bob");
	assert_string_equal(got.decided_person, "adm_bob");
	assert_string_equal(got.command_id, "cmd_1");
	assert_int_equal(got.decided_at, 150);
	assert_int_equal(page(st, "approved", NULL, NULL, 8, ids, sizeof(ids), &got), 1);
	assert_int_equal(page(st, "pending", NULL, NULL, 8, ids, sizeof(ids), &got), 0);
}

static void
test_command_approval_and_token_permission(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct command c;

	insert_device(st, "dev_1", "ann@example.com", "active");
	insert_command(st, "cmd_1", "dev_1", 1, "queued", 9000);
	assert_int_equal(st->ops->command_get(st, "cmd_1", &c), 0);
	assert_string_equal(c.approval_id, "");
	assert_string_equal(c.approved_by, "");
	assert_int_equal(st->ops->command_set_approval(st, "cmd_1", "apr_x", "tok_bob"), 0);
	assert_int_equal(st->ops->command_get(st, "cmd_1", &c), 0);
	assert_string_equal(c.approval_id, "apr_x");
	assert_string_equal(c.approved_by, "tok_bob");
	assert_string_equal(c.created_by, "tok_admin");
	assert_int_equal(st->ops->command_set_approval(st, "cmd_none", "apr_x", "tok_bob"),
			 -ENOENT);

	assert_int_equal(st->ops->token_permission_has(st, "tok_bob", "approve"), -ENOENT);
	assert_int_equal(st->ops->token_permission_add(st, "tok_bob", "approve"), 0);
	assert_int_equal(st->ops->token_permission_add(st, "tok_bob", "approve"), -EEXIST);
	assert_int_equal(st->ops->token_permission_has(st, "tok_bob", "approve"), 0);
	assert_int_equal(st->ops->token_permission_has(st, "tok_ann", "approve"), -ENOENT);
}

/* A bulk by filter (migration 0019): awaiting is never claimed; released, it is. */
static void
test_bulk_awaiting(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct bulk_op b, got;
	struct approval a = {0};

	memset(&b, 0, sizeof(b));
	str_copy(b.id, sizeof(b.id), "blk_held");
	str_copy(b.type, sizeof(b.type), "wipe");
	str_copy(b.requested_by, sizeof(b.requested_by), "adm_ann");
	str_copy(b.filter, sizeof(b.filter), "{}");
	str_copy(b.state, sizeof(b.state), "awaiting");
	b.f_compliant = -1;
	b.enrolled_until = b.created_at = b.updated_at = 100;
	b.expected_count = 3;
	b.cursor_key = -1;
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	str_copy(b.id, sizeof(b.id), "blk_held2");
	assert_int_equal(st->ops->bulk_insert(st, &b), 0);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), -ENOENT);
	st->ops->tx_rollback(st);
	assert_int_equal(st->ops->bulk_get(st, "blk_held", &got), 0);
	assert_string_equal(got.state, "awaiting");
	assert_int_equal(st->ops->bulk_release(st, "blk_held", 150), 0);
	assert_int_equal(st->ops->bulk_release(st, "blk_held", 160), -ENOENT);
	assert_int_equal(st->ops->bulk_release(st, "blk_none", 160), -ENOENT);
	assert_int_equal(st->ops->bulk_get(st, "blk_held", &got), 0);
	assert_string_equal(got.state, "running");
	assert_int_equal(got.updated_at, 150);
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(st->ops->bulk_claim(st, &got), 0);
	assert_string_equal(got.id, "blk_held");
	st->ops->tx_rollback(st);
	/* A rejected request cancels its awaiting bulk, which can then not be released. */
	assert_int_equal(
		st->ops->bulk_stop(st, "blk_held2", "canceled", "adm_bob", "rejected", 170), 0);
	assert_int_equal(st->ops->bulk_release(st, "blk_held2", 180), -ENOENT);
	/* The request names its bulk. */
	fill(&a, "apr_f", "filter", "wipe", 100);
	str_copy(a.bulk_id, sizeof(a.bulk_id), "blk_held");
	a.device_count = 3;
	assert_int_equal(st->ops->approval_insert(st, &a), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(st->ops->approval_get(st, "apr_f", 0, &a), 0);
	assert_string_equal(a.kind, "filter");
	assert_string_equal(a.bulk_id, "blk_held");
}

/* A session remembers whether its sign-in checked a TOTP code (only such a one approves). */
static void
test_session_second_factor(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct admin_session ss = {0}, got;
	struct admin_account a = {0};

	str_copy(a.id, sizeof(a.id), "adm_ann");
	str_copy(a.email, sizeof(a.email), "ann@example.com");
	str_copy(a.role, sizeof(a.role), "admin");
	str_copy(a.pwhash, sizeof(a.pwhash), "x");
	str_copy(a.created_by, sizeof(a.created_by), "system");
	a.created_at = 1700000000;
	a.created_ms = 1700000000123; /* migration 0022 */
	assert_int_equal(st->ops->admin_insert(st, &a), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(st->ops->admin_get(st, "adm_ann", &a), 0);
	assert_int_equal(a.created_ms, 1700000000123);
	memset(ss.hash, 1, sizeof(ss.hash));
	str_copy(ss.admin_id, sizeof(ss.admin_id), "adm_ann");
	ss.created_at = ss.last_seen_at = 100;
	ss.second_factor = 1;
	assert_int_equal(st->ops->session_insert(st, &ss), 0);
	memset(ss.hash, 2, sizeof(ss.hash));
	ss.second_factor = 0;
	assert_int_equal(st->ops->session_insert(st, &ss), 0);
	memset(got.hash, 1, sizeof(got.hash));
	assert_int_equal(st->ops->session_get(st, got.hash, &got), 0);
	assert_int_equal(got.second_factor, 1);
	memset(got.hash, 2, sizeof(got.hash));
	assert_int_equal(st->ops->session_get(st, got.hash, &got), 0);
	assert_int_equal(got.second_factor, 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest both[] = {
		T(test_insert_get_list),
		T(test_decide_only_pending),
		T(test_command_approval_and_token_permission),
		T(test_session_second_factor),
		T(test_bulk_awaiting),
	};

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("store approvals", both, ARRAY_SIZE(both));
}

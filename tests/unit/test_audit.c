/*
 * Unit tests for the hash-chained audit log (server/audit/audit.h) on a real store of each
 * backend (store_fixture.h: SQLite, then PostgreSQL when installed). They check that appends
 * build a chain, that audit_verify accepts an intact log and pinpoints a row edited, deleted or
 * reordered behind the server's back (edits are made through a separate connection of the
 * database's own, as an intruder would), and that the hash
 * encoding is unambiguous. Truncation and rehashing, which the chain alone cannot show, are caught
 * by signed checkpoints: test_audit_ckpt.c.
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
#include <unistd.h>

#include <sqlite3.h>

#include "audit/audit.h"
#include "log.h"
#include "store/store.h"
#include "store_fixture.h"

#define N_ENTRIES 5

/* Appends N_ENTRIES entries with distinct fields, one transaction each. */
static void
append_entries(struct store *st)
{
	static const char *const actors[] = {"tok_admin", "tok_help", "system", "tok_admin",
					     "tok_audit"};
	static const char *const actions[] = {"token.create", "command.create", "command.expire",
					      "policy.put", "device.delete"};

	for (int i = 0; i < N_ENTRIES; i++) {
		char target[32], detail[64];

		snprintf(target, sizeof(target), "target_%d", i + 1);
		snprintf(detail, sizeof(detail), "detail of entry %d", i + 1);
		assert_int_equal(st->ops->tx_begin(st), 0);
		assert_int_equal(audit_append(st, 1700000000000 + i * 1000, actors[i], actions[i],
					      target, i == 2 ? "denied" : "ok", detail),
				 0);
		assert_int_equal(st->ops->tx_commit(st), 0);
	}
}

static void
read_all(struct store *st, struct audit_entry *out, size_t max, size_t *n)
{
	struct audit_filter f = {.limit = max};

	assert_int_equal(st->ops->audit_list(st, &f, out, n), 0);
}

static void
expect_intact(struct store *st, int64_t entries)
{
	struct audit_verify_result r;

	assert_int_equal(audit_verify(st, &r), 0);
	assert_int_equal(r.first_bad_seq, 0);
	assert_int_equal(r.entries, entries);
	assert_string_equal(r.problem, "");
}

static void
expect_broken_at(struct store *st, int64_t seq)
{
	struct audit_verify_result r;

	assert_int_equal(audit_verify(st, &r), 0);
	assert_int_equal(r.first_bad_seq, seq);
	assert_true(r.problem[0] != '\0');
}

static void
test_audit_append_builds_chain(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct audit_entry e[N_ENTRIES + 1];
	uint8_t zero[32] = {0}, h[32];
	size_t n = 0;

	append_entries(st);
	read_all(st, e, N_ENTRIES + 1, &n);
	assert_int_equal(n, N_ENTRIES);
	assert_memory_equal(e[0].prev_hash, zero, 32);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(e[i].seq, (int64_t)i + 1);
		assert_int_equal(e[i].at_ms, 1700000000000 + (int64_t)i * 1000);
		if (i > 0)
			assert_memory_equal(e[i].prev_hash, e[i - 1].hash, 32);
		assert_memory_not_equal(e[i].hash, zero, 32);
		audit_hash(&e[i], h);
		assert_memory_equal(h, e[i].hash, 32);
	}
	assert_string_equal(e[2].actor, "system");
	assert_string_equal(e[2].action, "command.expire");
	assert_string_equal(e[2].target, "target_3");
	assert_string_equal(e[2].outcome, "denied");
	assert_string_equal(e[2].detail, "detail of entry 3");
}

static void
test_audit_append_truncates_and_accepts_null(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct audit_entry e;
	char longactor[200];

	memset(longactor, 'x', sizeof(longactor) - 1);
	longactor[sizeof(longactor) - 1] = '\0';
	assert_int_equal(st->ops->tx_begin(st), 0);
	assert_int_equal(audit_append(st, 5, longactor, "a", NULL, "ok", NULL), 0);
	assert_int_equal(st->ops->tx_commit(st), 0);
	assert_int_equal(st->ops->audit_last(st, &e), 0);
	assert_int_equal(strlen(e.actor), sizeof(e.actor) - 1);
	assert_string_equal(e.target, "");
	assert_string_equal(e.detail, "");
	expect_intact(st, 1);
}

static void
test_audit_verify_intact_log(void **state)
{
	struct fx *f = *state;

	expect_intact(f->st, 0);
	append_entries(f->st);
	expect_intact(f->st, N_ENTRIES);

	/* Survives a restart. */
	f->st->ops->close(f->st);
	f->st = NULL;
	assert_int_equal(store_fx_open(f, &f->st), 0);
	expect_intact(f->st, N_ENTRIES);
}

static void
test_audit_verify_detects_each_modified_field(void **state)
{
	struct fx *f = *state;
	/* Each edit of row 3 and the statement that puts it back. */
	static const struct {
		const char *edit;
		const char *restore;
	} cases[] = {
		{"UPDATE audit SET actor = 'tok_evil' WHERE seq = 3",
		 "UPDATE audit SET actor = 'system' WHERE seq = 3"},
		{"UPDATE audit SET action = 'command.create' WHERE seq = 3",
		 "UPDATE audit SET action = 'command.expire' WHERE seq = 3"},
		{"UPDATE audit SET target = 'target_9' WHERE seq = 3",
		 "UPDATE audit SET target = 'target_3' WHERE seq = 3"},
		{"UPDATE audit SET outcome = 'ok' WHERE seq = 3",
		 "UPDATE audit SET outcome = 'denied' WHERE seq = 3"},
		{"UPDATE audit SET detail = 'nothing happened' WHERE seq = 3",
		 "UPDATE audit SET detail = 'detail of entry 3' WHERE seq = 3"},
		{"UPDATE audit SET at_ms = at_ms + 1 WHERE seq = 3",
		 "UPDATE audit SET at_ms = at_ms - 1 WHERE seq = 3"},
	};

	append_entries(f->st);
	expect_intact(f->st, N_ENTRIES);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		store_fx_exec(f, cases[i].edit);
		expect_broken_at(f->st, 3);
		store_fx_exec(f, cases[i].restore);
		expect_intact(f->st, N_ENTRIES);
	}
}

static void
test_audit_verify_detects_edit_of_first_and_last(void **state)
{
	struct fx *f = *state;

	append_entries(f->st);
	store_fx_exec(f, "UPDATE audit SET actor = 'x' WHERE seq = 1");
	expect_broken_at(f->st, 1);
	store_fx_exec(f, "UPDATE audit SET actor = 'tok_admin' WHERE seq = 1");
	store_fx_exec(f, "UPDATE audit SET detail = '' WHERE seq = 5");
	expect_broken_at(f->st, 5);
}

static void
test_audit_verify_detects_rehashed_row(void **state)
{
	struct fx *f = *state;
	struct audit_entry e[N_ENTRIES];
	size_t n = 0;
	char sql[256], hex[65];

	/* An intruder who edits row 3 and recomputes its own hash still breaks row 4's link. */
	append_entries(f->st);
	read_all(f->st, e, N_ENTRIES, &n);
	snprintf(e[2].detail, sizeof(e[2].detail), "forged");
	audit_hash(&e[2], e[2].hash);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", e[2].hash[i]);
	/* A blob literal: x'..' in SQLite, '\x..'::bytea in PostgreSQL. */
	snprintf(sql, sizeof(sql),
		 fx_backend == FX_PG
			 ? "UPDATE audit SET detail = 'forged', hash = '\\x%s'::bytea WHERE seq = 3"
			 : "UPDATE audit SET detail = 'forged', hash = x'%s' WHERE seq = 3",
		 hex);
	store_fx_exec(f, sql);
	expect_broken_at(f->st, 4);
}

static void
test_audit_verify_detects_deleted_middle_row(void **state)
{
	struct fx *f = *state;
	struct audit_verify_result r;

	append_entries(f->st);
	store_fx_exec(f, "DELETE FROM audit WHERE seq = 3");
	assert_int_equal(audit_verify(f->st, &r), 0);
	assert_int_equal(r.first_bad_seq, 3);
	assert_non_null(strstr(r.problem, "missing"));
}

static void
test_audit_verify_detects_deleted_first_row(void **state)
{
	struct fx *f = *state;

	append_entries(f->st);
	store_fx_exec(f, "DELETE FROM audit WHERE seq = 1");
	expect_broken_at(f->st, 1);
}

static void
test_audit_verify_detects_swapped_rows(void **state)
{
	struct fx *f = *state;

	append_entries(f->st);
	store_fx_exec(f, "UPDATE audit SET seq = -1 WHERE seq = 2;"
			 "UPDATE audit SET seq = 2 WHERE seq = 3;"
			 "UPDATE audit SET seq = 3 WHERE seq = -1;");
	expect_broken_at(f->st, 2);
}

static void
test_audit_append_after_tamper_keeps_break_visible(void **state)
{
	struct fx *f = *state;

	/* New entries chain onto the tampered log; the old break must still be reported. */
	append_entries(f->st);
	store_fx_exec(f, "UPDATE audit SET target = 'x' WHERE seq = 2");
	assert_int_equal(f->st->ops->tx_begin(f->st), 0);
	assert_int_equal(audit_append(f->st, 1, "a", "b", "c", "ok", ""), 0);
	assert_int_equal(f->st->ops->tx_commit(f->st), 0);
	expect_broken_at(f->st, 2);
}

static void
base_entry(struct audit_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->seq = 7;
	e->at_ms = 1234;
	snprintf(e->actor, sizeof(e->actor), "ab");
	snprintf(e->action, sizeof(e->action), "c");
	snprintf(e->target, sizeof(e->target), "t");
	snprintf(e->outcome, sizeof(e->outcome), "ok");
	snprintf(e->detail, sizeof(e->detail), "d");
}

static void
test_audit_hash_is_length_prefixed(void **state)
{
	struct audit_entry a, b;
	uint8_t ha[32], hb[32];

	(void)state;
	base_entry(&a);
	base_entry(&b);
	audit_hash(&a, ha);
	audit_hash(&b, hb);
	assert_memory_equal(ha, hb, 32);

	/* "ab" + "c" against "a" + "bc": the same bytes end to end. */
	snprintf(b.actor, sizeof(b.actor), "a");
	snprintf(b.action, sizeof(b.action), "bc");
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);

	/* Moving one character across each of the other boundaries. */
	base_entry(&a);
	audit_hash(&a, ha);
	base_entry(&b);
	snprintf(b.action, sizeof(b.action), "ct");
	snprintf(b.target, sizeof(b.target), "%s", "");
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);

	base_entry(&b);
	snprintf(b.target, sizeof(b.target), "to");
	snprintf(b.outcome, sizeof(b.outcome), "k");
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);

	base_entry(&b);
	snprintf(b.outcome, sizeof(b.outcome), "o");
	snprintf(b.detail, sizeof(b.detail), "kd");
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);
}

static void
test_audit_hash_covers_seq_time_and_prev(void **state)
{
	struct audit_entry a, b;
	uint8_t ha[32], hb[32];

	(void)state;
	base_entry(&a);
	audit_hash(&a, ha);

	base_entry(&b);
	b.seq = 8;
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);

	base_entry(&b);
	b.at_ms = 1235;
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);

	base_entry(&b);
	b.prev_hash[31] = 1;
	audit_hash(&b, hb);
	assert_memory_not_equal(ha, hb, 32);

	/* The stored hash itself is not an input. */
	base_entry(&b);
	memset(b.hash, 0xff, sizeof(b.hash));
	audit_hash(&b, hb);
	assert_memory_equal(ha, hb, 32);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_audit_append_builds_chain),
		T(test_audit_append_truncates_and_accepts_null),
		T(test_audit_verify_intact_log),
		T(test_audit_verify_detects_each_modified_field),
		T(test_audit_verify_detects_edit_of_first_and_last),
		T(test_audit_verify_detects_rehashed_row),
		T(test_audit_verify_detects_deleted_middle_row),
		T(test_audit_verify_detects_deleted_first_row),
		T(test_audit_verify_detects_swapped_rows),
		T(test_audit_append_after_tamper_keeps_break_visible),
		cmocka_unit_test(test_audit_hash_is_length_prefixed),
		cmocka_unit_test(test_audit_hash_covers_seq_time_and_prev),
	};
#undef T

	log_set_level(LOG_LVL_WARN);
	return store_fx_run_both("audit", tests, sizeof(tests) / sizeof(tests[0]));
}

/*
 * Tests of the agent's command journal (agent/journal.c over agent/kvfile.c): every state
 * survives a reopen (a crash), records come back in ticket-counter order, and a record that was
 * damaged, truncated, loosened or mixed up is refused with an error and left where it is, never
 * silently reset or dropped.
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
#include <time.h>
#include <unistd.h>

#include "agent/journal.h"
#include "agent/kvfile.h"
#include "wire.h"

struct fx {
	char dir[64];
	struct agent_dir d;
	struct journal j;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/cleave-agent-journal-XXXXXX");
	if (mkdtemp(f->dir) == NULL || agent_dir_open(&f->d, f->dir, 0) != 0 ||
	    journal_open(&f->j, &f->d) != 0)
		return -1;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	(void)!system(cmd);
	free(f);
	return 0;
}

static void
make_entry(struct journal_entry *e, const char *id, const char *type, uint64_t counter)
{
	struct ticket t = {0};

	memset(e, 0, sizeof(*e));
	t.type = ticket_type_from_name(type);
	snprintf(t.device_id, sizeof(t.device_id), "dev_test");
	snprintf(t.command_id, sizeof(t.command_id), "%s", id);
	t.counter = counter;
	t.issued_at = 1700000000;
	t.expires_at = 1800000000;
	assert_int_equal(ticket_encode(&t, e->ticket), 0);
	snprintf(e->id, sizeof(e->id), "%s", id);
	snprintf(e->type, sizeof(e->type), "%s", type);
	snprintf(e->reason, sizeof(e->reason), "phone lost");
	e->counter = counter;
	e->state = JS_RECEIVED;
	e->received_at = 1700000001;
	e->updated_at = (int64_t)time(NULL);
}

static void
record_path(const struct fx *f, const char *id, char *out, size_t cap)
{
	snprintf(out, cap, "%s/journal/%s.cmd", f->dir, id);
}

static void
test_agent_journal_states_survive_reopen(void **state)
{
	struct fx *f = *state;
	struct journal_entry e, got;
	struct journal j2;

	make_entry(&e, "cmd_a", "wipe", 7);
	assert_int_equal(journal_put(&f->j, &e), 0);
	assert_int_equal(journal_get(&f->j, "cmd_a", &got), 0);
	assert_int_equal(got.state, JS_RECEIVED);
	assert_int_equal(got.acked, 0);

	e.state = JS_EXECUTING;
	e.acked = 1;
	assert_int_equal(journal_put(&f->j, &e), 0);
	/* A crash: a new process opens the same directory. */
	assert_int_equal(journal_open(&j2, &f->d), 0);
	assert_int_equal(journal_get(&j2, "cmd_a", &got), 0);
	assert_int_equal(got.state, JS_EXECUTING);
	assert_int_equal(got.acked, 1);
	assert_memory_equal(got.ticket, e.ticket, TICKET_LEN);
	assert_string_equal(got.reason, "phone lost");

	e.state = JS_DONE;
	e.completed = 1;
	e.has_receipt = 1;
	memset(e.receipt, 0xab, sizeof(e.receipt));
	snprintf(e.detail, sizeof(e.detail), "receipt seq 4");
	assert_int_equal(journal_put(&j2, &e), 0);
	assert_int_equal(journal_get(&f->j, "cmd_a", &got), 0);
	assert_int_equal(got.state, JS_DONE);
	assert_int_equal(got.completed, 1);
	assert_int_equal(got.has_receipt, 1);
	assert_memory_equal(got.receipt, e.receipt, RECEIPT_LEN);
	assert_string_equal(got.detail, "receipt seq 4");

	e.state = JS_REPORTED;
	e.completed = 0;
	e.has_receipt = 0;
	assert_int_equal(journal_put(&j2, &e), 0);
	assert_int_equal(journal_get(&f->j, "cmd_a", &got), 0);
	assert_int_equal(got.state, JS_REPORTED);
	assert_int_equal(got.completed, 0);
	assert_int_equal(got.has_receipt, 0);
	assert_int_equal(journal_get(&f->j, "cmd_missing", &got), -ENOENT);
}

static void
test_agent_journal_lists_in_counter_order(void **state)
{
	struct fx *f = *state;
	static const uint64_t counters[] = {9, 2, 5};
	struct journal_entry e, *v;
	char p[256];
	size_t n;
	FILE *fp;

	for (size_t i = 0; i < 3; i++) {
		char id[16];

		snprintf(id, sizeof(id), "cmd_%zu", i);
		make_entry(&e, id, "lock", counters[i]);
		assert_int_equal(journal_put(&f->j, &e), 0);
	}
	/* A temp file left by a write that a crash interrupted is cleaned up, not read. */
	snprintf(p, sizeof(p), "%s/journal/cmd_0.cmd.tmp-123-0", f->dir);
	fp = fopen(p, "w");
	assert_non_null(fp);
	fputs("half a record", fp);
	fclose(fp);
	assert_int_equal(journal_list(&f->j, &v, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(v[0].counter, 2);
	assert_int_equal(v[1].counter, 5);
	assert_int_equal(v[2].counter, 9);
	free(v);
	assert_int_equal(access(p, F_OK), -1);
}

/* Flips one byte of the record at offset. */
static void
damage(const char *path, long offset)
{
	FILE *fp = fopen(path, "r+b");
	int c;

	assert_non_null(fp);
	fseek(fp, offset, SEEK_SET);
	c = fgetc(fp);
	fseek(fp, offset, SEEK_SET);
	fputc(c == 'A' ? 'B' : 'A', fp);
	fclose(fp);
}

static void
test_agent_journal_corrupted_record_refused(void **state)
{
	struct fx *f = *state;
	struct journal_entry e, got, *v;
	char p[256];
	size_t n;

	make_entry(&e, "cmd_bad", "wipe", 3);
	e.state = JS_EXECUTING;
	assert_int_equal(journal_put(&f->j, &e), 0);
	record_path(f, "cmd_bad", p, sizeof(p));
	damage(p, 40);
	assert_int_equal(journal_get(&f->j, "cmd_bad", &got), -EBADMSG);
	assert_int_equal(journal_list(&f->j, &v, &n), -EBADMSG);
	assert_null(v);
	/* Refused, not reset: the damaged record is still there for a person to look at. */
	assert_int_equal(access(p, F_OK), 0);

	/* Truncated: the checksum line is gone. */
	make_entry(&e, "cmd_cut", "lock", 4);
	assert_int_equal(journal_put(&f->j, &e), 0);
	record_path(f, "cmd_cut", p, sizeof(p));
	assert_int_equal(truncate(p, 100), 0);
	assert_int_equal(journal_get(&f->j, "cmd_cut", &got), -EBADMSG);
}

static void
test_agent_journal_loose_permissions_refused(void **state)
{
	struct fx *f = *state;
	struct journal_entry e, got;
	char p[256];

	make_entry(&e, "cmd_open", "lock", 4);
	assert_int_equal(journal_put(&f->j, &e), 0);
	record_path(f, "cmd_open", p, sizeof(p));
	assert_int_equal(chmod(p, 0644), 0);
	assert_int_equal(journal_get(&f->j, "cmd_open", &got), -EPERM);
}

static void
test_agent_journal_mixed_up_record_refused(void **state)
{
	struct fx *f = *state;
	struct journal_entry e, other, got;
	struct kv_writer w;
	char p[256];

	/* A well-formed file whose ticket belongs to another command. */
	make_entry(&e, "cmd_one", "wipe", 5);
	make_entry(&other, "cmd_two", "wipe", 5);
	kvw_init(&w, "cleave-agent command 1");
	kvw_str(&w, "id", "cmd_one");
	kvw_str(&w, "type", "wipe");
	kvw_str(&w, "reason", "");
	kvw_u64(&w, "counter", 5);
	kvw_b64(&w, "ticket", other.ticket, TICKET_LEN);
	kvw_str(&w, "state", "received");
	kvw_u64(&w, "acked", 0);
	kvw_i64(&w, "received_at", 1);
	kvw_i64(&w, "updated_at", 1);
	kvw_u64(&w, "attempts", 0);
	record_path(f, "cmd_one", p, sizeof(p));
	assert_int_equal(kvw_commit(&w, p), 0);
	assert_int_equal(journal_get(&f->j, "cmd_one", &got), -EBADMSG);
	(void)e;
}

static void
test_agent_journal_ids_and_prune(void **state)
{
	struct fx *f = *state;
	struct journal_entry e, got;

	assert_false(journal_id_ok("../etc"));
	assert_false(journal_id_ok(".hidden"));
	assert_false(journal_id_ok(""));
	assert_false(journal_id_ok("a/b"));
	assert_false(journal_id_ok("0123456789012345678901234567890123"));
	assert_true(journal_id_ok("cmd_0a1b-2.c"));
	make_entry(&e, "cmd_x", "lock", 1);
	snprintf(e.id, sizeof(e.id), "../x");
	assert_int_equal(journal_put(&f->j, &e), -EINVAL);

	make_entry(&e, "cmd_old", "lock", 1);
	e.state = JS_REPORTED;
	assert_int_equal(journal_put(&f->j, &e), 0);
	make_entry(&e, "cmd_open", "lock", 2);
	e.state = JS_DONE;
	assert_int_equal(journal_put(&f->j, &e), 0);
	/* Everything was updated "now"; a prune as of a year later drops only what is reported. */
	journal_prune(&f->j, (int64_t)time(NULL) + 365 * 86400, 7 * 86400);
	assert_int_equal(journal_get(&f->j, "cmd_old", &got), -ENOENT);
	assert_int_equal(journal_get(&f->j, "cmd_open", &got), 0);
}

static void
test_agent_journal_prune_keeps_newest_reported(void **state)
{
	struct fx *f = *state;
	struct journal_entry e, *v;
	size_t n, reported = 0;

	for (int i = 1; i <= JOURNAL_KEEP_DONE + 6; i++) {
		char id[16];

		snprintf(id, sizeof(id), "cmd_%d", i);
		make_entry(&e, id, "lock", (uint64_t)i);
		e.state = i == 1 ? JS_DONE : JS_REPORTED; /* the oldest still owes its result */
		assert_int_equal(journal_put(&f->j, &e), 0);
	}
	journal_prune(&f->j, (int64_t)time(NULL), 7 * 86400);
	assert_int_equal(journal_list(&f->j, &v, &n), 0);
	for (size_t i = 0; i < n; i++)
		reported += v[i].state == JS_REPORTED;
	assert_int_equal(reported, JOURNAL_KEEP_DONE);
	assert_int_equal(n, JOURNAL_KEEP_DONE + 1);
	assert_int_equal(v[0].counter, 1);                         /* unreported: never pruned */
	assert_int_equal(v[n - 1].counter, JOURNAL_KEEP_DONE + 6); /* the newest stay */
	assert_int_equal(v[1].counter, 7);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_agent_journal_states_survive_reopen, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_journal_lists_in_counter_order, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_journal_corrupted_record_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_journal_loose_permissions_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_journal_mixed_up_record_refused, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_agent_journal_ids_and_prune, setup, teardown),
		cmocka_unit_test_setup_teardown(test_agent_journal_prune_keeps_newest_reported,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * Keyset paging while other servers write, on PostgreSQL (issue 10): which lists can lose a
 * row that commits after a reader passed its place. Three sessions, as three servers: one
 * holds a transaction open, one writes meanwhile, one pages. The audit log (and so its export)
 * and a device's commands are numbered under a lock held to commit (the audit head's advisory
 * lock; the device row, which the ticket counter locks before the command's row id is drawn),
 * so a number is never visible before every smaller one: tailing them by cursor skips nothing.
 * Row ids drawn from an identity without such a lock (enrollment tokens here; API tokens,
 * devices and commands across devices alike) can commit out of order: a cursor already past a
 * late row never sees it, which the listing's documented guarantee allows (schema/api.md).
 * SQLite has one writer at a time, so none of this can happen there: PostgreSQL only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "audit/audit.h"
#include "log.h"
#include "store/store.h"
#include "store_fixture.h"

/* A second writer, on its own session, that runs op inside a transaction of its own. */
struct second {
	struct store *st;
	int (*op)(struct store *st, const char *arg);
	const char *arg;
	volatile int done; /* set once its commit returned */
	int rc;
};

static void *
second_run(void *p)
{
	struct second *w = p;
	int r = w->st->ops->tx_begin(w->st);

	if (r == 0)
		r = w->op(w->st, w->arg);
	if (r == 0)
		r = w->st->ops->tx_commit(w->st);
	else
		w->st->ops->tx_rollback(w->st);
	w->rc = r;
	w->done = 1;
	return NULL;
}

static int
append_entry(struct store *st, const char *arg)
{
	return audit_append(st, 2000, "tok_b", "command.create", arg, "ok", "");
}

/* Audit entries after seq `after` as the reader sees them, seqs into out. */
static size_t
audit_after(struct store *st, int64_t after, int64_t out[8])
{
	struct audit_entry e[8];
	struct audit_filter f = {.after = after, .limit = 8};
	size_t n = 0;

	assert_int_equal(st->ops->audit_list(st, &f, e, &n), 0);
	for (size_t i = 0; i < n; i++)
		out[i] = e[i].seq;
	return n;
}

/*
 * Server A appends entry 2 and holds its transaction; server B's append waits for A's commit
 * (it cannot take seq 3 before 2 is visible); the reader sees neither until A commits, then
 * 2 and 3 in order, linked.
 */
static void
test_paging_audit_tail_never_skips(void **state)
{
	struct fx *f = *state;
	struct store *a = f->st, *b = NULL, *reader = NULL;
	struct second w = {0};
	struct audit_entry e[4];
	struct audit_filter all = {.limit = 4};
	pthread_t th;
	int64_t seqs[8];
	size_t n = 0;

	assert_int_equal(store_fx_open(f, &b), 0);
	assert_int_equal(store_fx_open(f, &reader), 0);
	assert_int_equal(audit_append(a, 1000, "tok_a", "token.create", "one", "ok", ""), 0);
	assert_int_equal(a->ops->tx_begin(a), 0);
	assert_int_equal(audit_append(a, 1500, "tok_a", "command.create", "held", "ok", ""), 0);
	w = (struct second){.st = b, .op = append_entry, .arg = "after"};
	assert_int_equal(pthread_create(&th, NULL, second_run, &w), 0);
	usleep(300000);
	assert_false(w.done); /* B waits for the audit head A holds */
	assert_int_equal(audit_after(reader, 1, seqs), 0);
	assert_int_equal(a->ops->tx_commit(a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(audit_after(reader, 1, seqs), 2);
	assert_int_equal(seqs[0], 2);
	assert_int_equal(seqs[1], 3);
	assert_int_equal(reader->ops->audit_list(reader, &all, e, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(e[2].prev_hash, e[1].hash, 32);
	assert_string_equal(e[1].target, "held");
	b->ops->close(b);
	reader->ops->close(reader);
}

/* Queues a command for dev_page as the service does: the counter (row lock), then the row. */
static int
queue_command(struct store *st, const char *arg)
{
	struct command c;
	int64_t counter = 0;
	int r = st->ops->device_next_counter(st, "dev_page", &counter);

	if (r != 0)
		return r;
	memset(&c, 0, sizeof(c));
	str_copy(c.id, sizeof(c.id), arg);
	str_copy(c.device_id, sizeof(c.device_id), "dev_page");
	str_copy(c.type, sizeof(c.type), "lock");
	str_copy(c.status, sizeof(c.status), "queued");
	str_copy(c.created_by, sizeof(c.created_by), "tok_page");
	c.counter = counter;
	c.created_at = 2000;
	c.expires_at = 9000;
	return st->ops->command_insert(st, &c);
}

/* The ids of dev_page's commands after row id `after`, oldest first; last row id into *last. */
static size_t
commands_after(struct store *st, int64_t after, char ids[4][STORE_ID_MAX], int64_t *last)
{
	struct command c[4];
	struct command_filter f = {.device_id = "dev_page", .after = after, .limit = 4};
	size_t n = 0;

	assert_int_equal(st->ops->command_list(st, &f, c, &n), 0);
	for (size_t i = 0; i < n; i++) {
		str_copy(ids[i], STORE_ID_MAX, c[i].id);
		*last = c[i].rowid;
	}
	return n;
}

/*
 * A device's commands: A queues one and holds its transaction; B's queue for the same device
 * waits on the device row (before it draws a row id); the reader's cursor, past everything it
 * saw, then finds A's command before B's.
 */
static void
test_paging_device_commands_never_skip(void **state)
{
	struct fx *f = *state;
	struct store *a = f->st, *b = NULL, *reader = NULL;
	struct second w = {0};
	char ids[4][STORE_ID_MAX];
	int64_t cursor = 0;
	pthread_t th;

	store_fx_add_device(a, "dev_page");
	assert_int_equal(store_fx_open(f, &b), 0);
	assert_int_equal(store_fx_open(f, &reader), 0);
	assert_int_equal(a->ops->tx_begin(a), 0);
	assert_int_equal(queue_command(a, "cmd_held"), 0);
	w = (struct second){.st = b, .op = queue_command, .arg = "cmd_later"};
	assert_int_equal(pthread_create(&th, NULL, second_run, &w), 0);
	usleep(300000);
	assert_false(w.done); /* B waits for the device row A holds */
	assert_int_equal(commands_after(reader, cursor, ids, &cursor), 0);
	assert_int_equal(a->ops->tx_commit(a), 0);
	assert_int_equal(pthread_join(th, NULL), 0);
	assert_int_equal(w.rc, 0);
	assert_int_equal(commands_after(reader, cursor, ids, &cursor), 2);
	assert_string_equal(ids[0], "cmd_held");
	assert_string_equal(ids[1], "cmd_later");
	b->ops->close(b);
	reader->ops->close(reader);
}

static int
insert_etoken(struct store *st, const char *arg)
{
	struct enroll_token t;

	memset(&t, 0, sizeof(t));
	str_copy(t.id, sizeof(t.id), arg);
	str_copy(t.owner, sizeof(t.owner), "page@example.com");
	str_copy(t.created_by, sizeof(t.created_by), "tok_page");
	memcpy(t.hash, arg, strlen(arg) < 32 ? strlen(arg) : 32);
	t.uses_max = 1;
	t.created_at = 1000;
	t.expires_at = 9000;
	return st->ops->etoken_insert(st, &t);
}

/*
 * The gap, shown: A inserts an enrollment token (drawing the smaller row id) and holds its
 * transaction; B inserts one and commits; the reader's first page holds B's token and its
 * cursor passes it; A commits; the next page after that cursor is empty: A's token is missed
 * by that paging, while a listing from the start has both, A's first.
 */
static void
test_paging_identity_rows_can_commit_behind_a_cursor(void **state)
{
	struct fx *f = *state;
	struct store *a = f->st, *b = NULL, *reader = NULL;
	struct enroll_token page[4];
	size_t n = 0;
	int64_t cursor;

	assert_int_equal(store_fx_open(f, &b), 0);
	assert_int_equal(store_fx_open(f, &reader), 0);
	assert_int_equal(a->ops->tx_begin(a), 0);
	assert_int_equal(insert_etoken(a, "etk_held"), 0);
	assert_int_equal(insert_etoken(b, "etk_later"), 0); /* no lock to wait for: commits */
	assert_int_equal(reader->ops->etoken_list(reader, 0, 4, page, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(page[0].id, "etk_later");
	cursor = page[0].rowid;
	assert_int_equal(a->ops->tx_commit(a), 0);
	assert_int_equal(reader->ops->etoken_list(reader, cursor, 4, page, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(reader->ops->etoken_list(reader, 0, 4, page, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(page[0].id, "etk_held");
	assert_true(page[0].rowid < cursor);
	b->ops->close(b);
	reader->ops->close(reader);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		T(test_paging_audit_tail_never_skips),
		T(test_paging_device_commands_never_skip),
		T(test_paging_identity_rows_can_commit_behind_a_cursor),
	};
#undef T
	int pg, failed;

	log_set_level(LOG_LVL_ERR);
	pg = store_fx_pg_start();
	if (pg != 0)
		return pg > 0 ? 77 : 1;
	failed = _cmocka_run_group_tests("store_paging on PostgreSQL", tests, ARRAY_SIZE(tests),
					 NULL, NULL);
	store_fx_pg_stop();
	return failed != 0;
}

/*
 * Conformance suite for the store interface (server/store/store.h), run against each backend:
 * SQLite on a fresh database file in a temporary directory for every test, then PostgreSQL on a
 * fresh database of a private cluster (tests/lib/pgtest.h) when PostgreSQL is installed (else
 * that run says "skipped" and why). It checks what the
 * service relies on: schema creation and versioning, unique keys, paging, filters, the rules
 * that some ops never go backwards, cascades. Commands, transactions and the audit log are
 * test_store_cmd.c's. It does not test business rules; those live in service/.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "log.h"
#include "store/migrations.h"
#include "store/store.h"
#include "store_fixture.h"

/* The schema version as the database itself records it (read as an outside tool would). */
static int64_t
raw_version(struct fx *f)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q = NULL;
	int64_t v;

	if (fx_backend == FX_PG)
		return pgtest_int(f->url, "SELECT max(version) FROM cleave_schema");
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	v = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return v;
}

/* Marks the database as migrated to version v by a newer build, behind the store's back. */
static void
raw_set_version(struct fx *f, int v)
{
	char sql[128];
	sqlite3 *db = NULL;

	if (fx_backend == FX_PG) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO cleave_schema (version, name, applied_at) "
			 "VALUES (%d, 'from_the_future', 0)",
			 v);
		assert_int_equal(pgtest_exec(f->url, sql), 0);
		return;
	}
	snprintf(sql, sizeof(sql), "PRAGMA user_version=%d;", v);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

#include "store_records.h"

/* ---- schema ---- */

/* The number of the current backend's last embedded migration: the version a database has. */
static int
newest_migration(void)
{
	if (fx_backend == FX_PG)
		return pg_migrations[pg_migrations_count - 1].number;
	return migrations[migrations_count - 1].number;
}

/*
 * Both backends' migrations are numbered alike, one file per number each, so a database of
 * either kind at version N has the same tables. A SQLite migration without its PostgreSQL
 * twin (schema/migrations/pg/NNNN_*.sql) fails here.
 */
static void
test_store_backends_number_migrations_alike(void **state)
{
	(void)state;
	assert_int_equal(pg_migrations_count, migrations_count);
	for (unsigned long i = 0; i < migrations_count; i++) {
		assert_int_equal(pg_migrations[i].number, migrations[i].number);
		assert_string_equal(pg_migrations[i].name, migrations[i].name);
	}
}

static void
test_store_open_creates_schema_and_reopen_keeps_data(void **state)
{
	struct fx *f = *state;
	struct api_token t, got;

	assert_true(migrations_count >= 1);
	assert_int_equal(store_fx_schema_version(f->st), newest_migration());
	assert_int_equal(raw_version(f), (int64_t)newest_migration());

	make_token(&t, 7);
	assert_int_equal(f->st->ops->token_insert(f->st, &t), 0);
	f->st->ops->close(f->st);
	f->st = NULL;

	assert_int_equal(store_fx_open(f, &f->st), 0);
	assert_int_equal(store_fx_schema_version(f->st), newest_migration());
	assert_int_equal(raw_version(f), (int64_t)newest_migration());
	assert_int_equal(f->st->ops->token_by_hash(f->st, t.hash, &got), 0);
	assert_string_equal(got.id, "tok_7");
}

static void
test_store_refuses_newer_schema(void **state)
{
	struct fx *f = *state;
	struct store *other = NULL;

	f->st->ops->close(f->st);
	f->st = NULL;
	raw_set_version(f, newest_migration() + 1);

	assert_true(store_fx_open(f, &other) < 0);
	assert_null(other);
	/* The refusal must not have touched the database. */
	assert_int_equal(raw_version(f), (int64_t)newest_migration() + 1);
}

/* ---- API tokens ---- */

static void
test_store_token_insert_get_list_revoke(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct api_token t, got, page[3];
	int64_t n = -1, after = 0;
	size_t k, seen = 0;

	for (int i = 0; i < 7; i++) {
		make_token(&t, i);
		assert_int_equal(st->ops->token_insert(st, &t), 0);
	}
	assert_int_equal(st->ops->token_count(st, &n), 0);
	assert_int_equal(n, 7);

	make_token(&t, 3);
	assert_int_equal(st->ops->token_by_hash(st, t.hash, &got), 0);
	assert_string_equal(got.id, t.id);
	assert_string_equal(got.name, t.name);
	assert_string_equal(got.role, t.role);
	assert_memory_equal(got.hash, t.hash, 32);
	assert_string_equal(got.created_by, t.created_by);
	assert_int_equal(got.created_at, t.created_at);
	assert_int_equal(got.expires_at, t.expires_at);
	assert_int_equal(got.revoked_at, 0);
	assert_true(got.rowid > 0);

	/* Pages of 3 after the last rowid seen: 3 + 3 + 1, in insertion order. */
	for (int round = 0; round < 5; round++) {
		assert_int_equal(st->ops->token_list(st, after, 3, page, &k), 0);
		if (k == 0)
			break;
		for (size_t i = 0; i < k; i++) {
			char want[16];

			snprintf(want, sizeof(want), "tok_%zu", seen + i);
			assert_string_equal(page[i].id, want);
			assert_true(page[i].rowid > after);
			after = page[i].rowid;
		}
		seen += k;
		assert_true(k == 3 || seen == 7);
	}
	assert_int_equal(seen, 7);

	assert_int_equal(st->ops->token_revoke(st, "tok_3", 6000), 0);
	assert_int_equal(st->ops->token_by_hash(st, t.hash, &got), 0);
	assert_int_equal(got.revoked_at, 6000);
	assert_int_equal(st->ops->token_revoke(st, "tok_3", 7000), -ENOENT);
	assert_int_equal(st->ops->token_by_hash(st, t.hash, &got), 0);
	assert_int_equal(got.revoked_at, 6000);
	assert_int_equal(st->ops->token_revoke(st, "tok_nope", 6000), -ENOENT);

	memset(t.hash, 0xee, sizeof(t.hash));
	assert_int_equal(st->ops->token_by_hash(st, t.hash, &got), -ENOENT);
}

static void
test_store_token_unique_keys(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct api_token t;
	int64_t n = 0;

	make_token(&t, 1);
	assert_int_equal(st->ops->token_insert(st, &t), 0);
	/* Same hash, new id. */
	snprintf(t.id, sizeof(t.id), "tok_other");
	assert_int_equal(st->ops->token_insert(st, &t), -EEXIST);
	/* Same id, new hash. */
	make_token(&t, 2);
	snprintf(t.id, sizeof(t.id), "tok_1");
	assert_int_equal(st->ops->token_insert(st, &t), -EEXIST);
	assert_int_equal(st->ops->token_count(st, &n), 0);
	assert_int_equal(n, 1);
}

/* ---- enrollment tokens and nonces ---- */

static void
test_store_etoken_use_until_uses_max(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct enroll_token t, got, list[4];
	size_t n = 0;

	make_etoken(&t, "etk_1", 3);
	assert_int_equal(st->ops->etoken_insert(st, &t), 0);
	make_etoken(&t, "etk_2", 1);
	assert_int_equal(st->ops->etoken_insert(st, &t), 0);
	assert_int_equal(st->ops->etoken_insert(st, &t), -EEXIST);

	for (int i = 0; i < 3; i++)
		assert_int_equal(st->ops->etoken_use(st, "etk_1"), 0);
	assert_int_equal(st->ops->etoken_use(st, "etk_1"), -ENOENT);
	assert_int_equal(st->ops->etoken_get(st, "etk_1", &got), 0);
	assert_int_equal(got.uses, 3);
	assert_int_equal(got.uses_max, 3);
	assert_string_equal(got.owner, "alice@example.com");
	assert_int_equal(got.expires_at, 900);

	/* The other token is independent. */
	assert_int_equal(st->ops->etoken_by_hash(st, t.hash, &got), 0);
	assert_string_equal(got.id, "etk_2");
	assert_int_equal(got.uses, 0);
	assert_int_equal(st->ops->etoken_use(st, "etk_2"), 0);
	assert_int_equal(st->ops->etoken_use(st, "etk_2"), -ENOENT);
	assert_int_equal(st->ops->etoken_use(st, "etk_none"), -ENOENT);

	assert_int_equal(st->ops->etoken_revoke(st, "etk_1", 950), 0);
	assert_int_equal(st->ops->etoken_revoke(st, "etk_1", 960), -ENOENT);
	assert_int_equal(st->ops->etoken_get(st, "etk_1", &got), 0);
	assert_int_equal(got.revoked_at, 950);
	assert_int_equal(st->ops->etoken_get(st, "etk_none", &got), -ENOENT);

	assert_int_equal(st->ops->etoken_list(st, 0, 4, list, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, "etk_1");
	assert_string_equal(list[1].id, "etk_2");
	assert_int_equal(st->ops->etoken_list(st, list[0].rowid, 4, list, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(list[0].id, "etk_2");
}

/* A nonce handed out in plain (no TPM) for token tok until exp. */
static struct enroll_nonce
plain_nonce(int64_t exp, const char *tok)
{
	struct enroll_nonce n = {.expires_at = exp};

	str_copy(n.token_id, sizeof(n.token_id), tok);
	return n;
}

static void
test_store_nonce_take_once_expire_and_purge(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	uint8_t a[32], b[32], c[32], d[32];
	struct enroll_nonce got, n1 = plain_nonce(100, "etk_1"), n2 = plain_nonce(100, "etk_2");
	struct enroll_nonce n10 = plain_nonce(10, "etk_1"), n1000 = plain_nonce(1000, "etk_1");

	memset(a, 1, sizeof(a));
	memset(b, 2, sizeof(b));
	memset(c, 3, sizeof(c));
	memset(d, 4, sizeof(d));
	assert_int_equal(st->ops->nonce_insert(st, a, &n1), 0);
	assert_int_equal(st->ops->nonce_insert(st, a, &n1), -EEXIST);
	assert_int_equal(st->ops->nonce_take(st, a, 50, &got), 0);
	assert_int_equal(st->ops->nonce_take(st, a, 50, &got), -ENOENT);

	/* An expired nonce is refused and gone. */
	assert_int_equal(st->ops->nonce_insert(st, b, &n1), 0);
	assert_int_equal(st->ops->nonce_take(st, b, 101, &got), -ETIME);
	assert_int_equal(st->ops->nonce_take(st, b, 50, &got), -ENOENT);

	assert_int_equal(st->ops->nonce_insert(st, c, &n10), 0);
	assert_int_equal(st->ops->nonce_insert(st, d, &n1000), 0);
	assert_int_equal(st->ops->nonce_purge(st, 500), 0);
	assert_int_equal(st->ops->nonce_take(st, c, 5, &got), -ENOENT);
	assert_int_equal(st->ops->nonce_take(st, d, 500, &got), 0);
	/* The token a nonce was handed out for comes back with it. */
	assert_string_equal(got.token_id, "etk_1");
	assert_int_equal(got.ak_name_len, 0); /* handed out in plain */
	assert_int_equal(st->ops->nonce_insert(st, a, &n2), 0);
	assert_int_equal(st->ops->nonce_take(st, a, 50, &got), 0);
	assert_string_equal(got.token_id, "etk_2");
}

/* Shared-database backends: a request nonce is claimed once, by whichever server; purge. */
static void
test_store_request_nonce_claim_once(void **state)
{
	struct store *st = ((struct fx *)*state)->st;

	if (st->ops->request_nonce_claim == NULL) {
		assert_null(st->ops->request_nonce_purge); /* both or neither */
		return;
	}
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", 7, 100), 0);
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", 7, 101), -EALREADY);
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_b", 7, 100), 0);
	/* The whole 64-bit range of the agent's counter is kept apart. */
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", UINT64_MAX, 100), 0);
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", UINT64_MAX - 1, 100), 0);
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", UINT64_MAX, 100), -EALREADY);
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", 8, 500), 0);
	assert_int_equal(st->ops->request_nonce_purge(st, 200), 0);
	/* Purged: only rows older than the cut go (their signatures are refused by time). */
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", 7, 600), 0);
	assert_int_equal(st->ops->request_nonce_claim(st, "dev_a", 8, 600), -EALREADY);
}

/* The first keys are recorded; later calls return them, or record others when replacing. */
static void
test_store_keys_pin_first_then_compare(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	uint8_t t1[32], a1[32], t2[32], a2[32], t[32], a[32];

	memset(t1, 1, 32);
	memset(a1, 2, 32);
	memset(t2, 3, 32);
	memset(a2, 4, 32);
	assert_int_equal(st->ops->keys_pin(st, t1, a1, 0, 10, t, a), 0);
	assert_memory_equal(t, t1, 32);
	assert_memory_equal(a, a1, 32);
	assert_int_equal(st->ops->keys_pin(st, t2, a2, 0, 11, t, a), 0);
	assert_memory_equal(t, t1, 32); /* still the first server's */
	assert_memory_equal(a, a1, 32);
	assert_int_equal(st->ops->keys_pin(st, t2, a2, 1, 12, t, a), 0);
	assert_memory_equal(t, t2, 32);
	assert_memory_equal(a, a2, 32);
	assert_int_equal(st->ops->keys_pin(st, t1, a1, 0, 13, t, a), 0);
	assert_memory_equal(t, t2, 32);
}

/* ---- policies ---- */

static void
test_store_policy_put_get_default_list(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct policy p, got, list[8];
	size_t n = 0, ndef = 0;

	assert_int_equal(st->ops->policy_default(st, &got), -ENOENT);
	assert_int_equal(st->ops->policy_get(st, "zeta", &got), -ENOENT);
	make_policy(&p, "zeta", 1);
	assert_int_equal(st->ops->policy_put(st, &p), 0);
	make_policy(&p, "alpha", 1);
	assert_int_equal(st->ops->policy_put(st, &p), 0);
	make_policy(&p, "mid", 1);
	assert_int_equal(st->ops->policy_put(st, &p), 0);

	assert_int_equal(st->ops->policy_get(st, "alpha", &got), 0);
	assert_string_equal(got.name, "alpha");
	assert_int_equal(got.version, 1);
	assert_string_equal(got.body, "{\"name\":\"alpha\",\"v\":1}");
	assert_int_equal(got.is_default, 0);
	assert_int_equal(got.updated_at, 2001);

	assert_int_equal(st->ops->policy_set_default(st, "alpha"), 0);
	assert_int_equal(st->ops->policy_default(st, &got), 0);
	assert_string_equal(got.name, "alpha");
	assert_int_equal(got.is_default, 1);

	/* Moving the default clears the old flag. */
	assert_int_equal(st->ops->policy_set_default(st, "zeta"), 0);
	assert_int_equal(st->ops->policy_default(st, &got), 0);
	assert_string_equal(got.name, "zeta");
	assert_int_equal(st->ops->policy_get(st, "alpha", &got), 0);
	assert_int_equal(got.is_default, 0);

	/* Replacing the default's content keeps it the default. */
	make_policy(&p, "zeta", 2);
	assert_int_equal(st->ops->policy_put(st, &p), 0);
	assert_int_equal(st->ops->policy_get(st, "zeta", &got), 0);
	assert_int_equal(got.version, 2);
	assert_string_equal(got.body, "{\"name\":\"zeta\",\"v\":2}");
	assert_int_equal(got.is_default, 1);

	assert_int_equal(st->ops->policy_list(st, list, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(list[0].name, "alpha");
	assert_string_equal(list[1].name, "mid");
	assert_string_equal(list[2].name, "zeta");
	for (size_t i = 0; i < n; i++)
		ndef += (size_t)list[i].is_default;
	assert_int_equal(ndef, 1);
	assert_int_equal(st->ops->policy_list(st, list, 2, &n), 0);
	assert_int_equal(n, 2);
}

/* Naming a policy that does not exist must fail and leave the current default in place. */
static void
test_store_policy_set_default_unknown_keeps_default(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct policy p, got;

	make_policy(&p, "base", 1);
	assert_int_equal(st->ops->policy_put(st, &p), 0);
	assert_int_equal(st->ops->policy_set_default(st, "base"), 0);

	assert_int_equal(st->ops->policy_set_default(st, "no-such-policy"), -ENOENT);
	assert_int_equal(st->ops->policy_default(st, &got), 0);
	assert_string_equal(got.name, "base");
}

/* ---- devices ---- */

static void
test_store_device_insert_get_unique(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device d, got;

	make_device(&d, "dev_a", "alice", "active");
	snprintf(d.policy_name, sizeof(d.policy_name), "strict");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	assert_int_equal(st->ops->device_get(st, "dev_a", &got), 0);
	assert_true(got.rowid > 0);
	assert_string_equal(got.id, "dev_a");
	assert_string_equal(got.owner, "alice");
	assert_string_equal(got.status, "active");
	assert_memory_equal(got.device_key, d.device_key, 32);
	assert_memory_equal(got.hv_key, d.hv_key, 32);
	assert_memory_equal(got.measurement, d.measurement, 32);
	assert_string_equal(got.enrollment_token_id, "etk_1");
	assert_string_equal(got.model, d.model);
	assert_string_equal(got.os, d.os);
	assert_string_equal(got.agent_version, "1.0.0");
	assert_string_equal(got.policy_name, "strict");
	assert_string_equal(got.applied_policy_name, "");
	assert_int_equal(got.applied_policy_version, 0);
	assert_string_equal(got.desired_state, "active");
	assert_string_equal(got.reported_state, "active");
	assert_int_equal(got.key_epoch, 1);
	assert_int_equal(got.ticket_counter, 0);
	assert_int_equal(got.sig_seq, 0);
	assert_int_equal(got.enrolled_at, 3000);
	assert_int_equal(got.last_seen_at, 3000);
	/* an Ed25519 hypervisor in a file keystore, as every device before migration 0023 */
	assert_int_equal(got.hv_sig_alg, 0);
	assert_int_equal(got.hv_spki_len, 0);
	assert_string_equal(got.hv_identity, "file");
	assert_string_equal(got.endorsement, "");

	/* a TPM-resident P-256 key: the SPKI and the endorsement come back as written */
	make_device(&d, "dev_t", "alice", "active");
	d.device_key[0] ^= 0x5a;
	d.hv_sig_alg = 1;
	d.hv_spki_len = 91;
	for (size_t i = 0; i < d.hv_spki_len; i++)
		d.hv_spki[i] = (uint8_t)(i * 7 + 1);
	snprintf(d.hv_identity, sizeof(d.hv_identity), "tpm");
	snprintf(d.endorsement, sizeof(d.endorsement), "verified");
	snprintf(d.endorsement_ca, sizeof(d.endorsement_ca), "CN=swtpm-localca");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	assert_int_equal(st->ops->device_get(st, "dev_t", &got), 0);
	assert_int_equal(got.hv_sig_alg, 1);
	assert_int_equal(got.hv_spki_len, 91);
	assert_memory_equal(got.hv_spki, d.hv_spki, 91);
	assert_string_equal(got.hv_identity, "tpm");
	assert_string_equal(got.endorsement, "verified");
	assert_string_equal(got.endorsement_ca, "CN=swtpm-localca");
	make_device(&d, "dev_a", "alice", "active");

	/* Same id; then a new id with the same device key. */
	assert_int_equal(st->ops->device_insert(st, &d), -EEXIST);
	snprintf(d.id, sizeof(d.id), "dev_b");
	assert_int_equal(st->ops->device_insert(st, &d), -EEXIST);
	assert_int_equal(st->ops->device_get(st, "dev_b", &got), -ENOENT);
}

/* Walks every page of f (limit per page) and checks the ids against want, in order. */
static void
expect_device_pages(struct store *st, struct device_filter f, const char *const *want, size_t nwant)
{
	struct device page[8];
	size_t k, seen = 0;

	assert_true(f.limit <= 8);
	for (int round = 0; round < 20; round++) {
		assert_int_equal(st->ops->device_list(st, &f, page, &k), 0);
		assert_true(k <= f.limit);
		for (size_t i = 0; i < k; i++) {
			assert_true(seen + i < nwant);
			assert_string_equal(page[i].id, want[seen + i]);
			if (f.status)
				assert_string_equal(page[i].status, f.status);
			if (f.owner)
				assert_string_equal(page[i].owner, f.owner);
			f.after = page[i].rowid;
		}
		seen += k;
		if (k < f.limit)
			break;
	}
	assert_int_equal(seen, nwant);
}

static void
test_store_device_list_filters_and_pages(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	static const char *const all[] = {"d1", "d2", "d3", "d4", "d5", "d6", "d7"};
	static const char *const alice[] = {"d1", "d3", "d4", "d6"};
	static const char *const retired[] = {"d2", "d4", "d7"};
	static const char *const alice_active[] = {"d1", "d3", "d6"};
	struct device_filter f = {0};

	insert_device(st, "d1", "alice", "active");
	insert_device(st, "d2", "bob", "retired");
	insert_device(st, "d3", "alice", "active");
	insert_device(st, "d4", "alice", "retired");
	insert_device(st, "d5", "bob", "active");
	insert_device(st, "d6", "alice", "active");
	insert_device(st, "d7", "bob", "retired");

	f.limit = 3;
	expect_device_pages(st, f, all, 7);
	f.limit = 2;
	f.owner = "alice";
	expect_device_pages(st, f, alice, 4);
	f.owner = NULL;
	f.status = "retired";
	expect_device_pages(st, f, retired, 3);
	f.owner = "alice";
	f.status = "active";
	f.limit = 1;
	expect_device_pages(st, f, alice_active, 3);
	f.owner = "carol";
	f.status = NULL;
	expect_device_pages(st, f, NULL, 0);
}

static void
test_store_device_patch_writes_only_named_columns(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device d, got, before;

	make_device(&d, "dev_u", "alice", "active");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	assert_int_equal(st->ops->device_get(st, "dev_u", &before), 0);

	/* A stale copy with every column changed: only the named ones may land. */
	d = before;
	snprintf(d.status, sizeof(d.status), "retired");
	snprintf(d.agent_version, sizeof(d.agent_version), "1.1.0");
	snprintf(d.policy_name, sizeof(d.policy_name), "strict");
	snprintf(d.applied_policy_name, sizeof(d.applied_policy_name), "strict");
	d.applied_policy_version = 4;
	snprintf(d.desired_state, sizeof(d.desired_state), "locked");
	snprintf(d.reported_state, sizeof(d.reported_state), "wiped");
	snprintf(d.attest_status, sizeof(d.attest_status), "mismatch");
	d.key_epoch = 2;
	d.ticket_counter = 17;
	d.sig_seq = 99;
	d.last_seen_at = 3500;
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_DESIRED | DEV_F_APPLIED), 0);
	assert_int_equal(st->ops->device_get(st, "dev_u", &got), 0);
	assert_string_equal(got.desired_state, "locked");
	assert_string_equal(got.applied_policy_name, "strict");
	assert_int_equal(got.applied_policy_version, 4);
	assert_string_equal(got.status, before.status);
	assert_string_equal(got.agent_version, before.agent_version);
	assert_string_equal(got.policy_name, before.policy_name);
	assert_string_equal(got.reported_state, before.reported_state);
	assert_string_equal(got.attest_status, before.attest_status);
	assert_int_equal(got.key_epoch, before.key_epoch);
	assert_int_equal(got.ticket_counter, before.ticket_counter);
	assert_int_equal(got.sig_seq, before.sig_seq);
	assert_int_equal(got.last_seen_at, before.last_seen_at);

	/* Every patchable column, each on its own bit. */
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_ALL), 0);
	assert_int_equal(st->ops->device_get(st, "dev_u", &got), 0);
	assert_string_equal(got.status, "retired");
	assert_string_equal(got.agent_version, "1.1.0");
	assert_string_equal(got.policy_name, "strict");
	assert_string_equal(got.reported_state, "wiped");
	assert_string_equal(got.attest_status, "mismatch");
	assert_int_equal(got.key_epoch, 2);
	/* Never patchable: the counter, the check-in bookkeeping and the identity. */
	assert_int_equal(got.ticket_counter, before.ticket_counter);
	assert_int_equal(got.sig_seq, before.sig_seq);
	assert_int_equal(got.last_seen_at, before.last_seen_at);
	assert_string_equal(got.owner, "alice");
	assert_memory_equal(got.device_key, before.device_key, 32);
	assert_int_equal(got.enrolled_at, 3000);

	snprintf(d.id, sizeof(d.id), "dev_none");
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_STATUS), -ENOENT);
}

static void
test_store_device_next_counter_only_grows(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device d;
	int64_t c = 0;

	insert_device(st, "dev_c", "alice", "active");
	for (int64_t want = 1; want <= 3; want++) {
		assert_int_equal(st->ops->device_next_counter(st, "dev_c", &c), 0);
		assert_int_equal(c, want);
	}
	/* A patch from a copy read before those counters cannot set it back. */
	assert_int_equal(st->ops->device_get(st, "dev_c", &d), 0);
	d.ticket_counter = 0;
	assert_int_equal(st->ops->device_patch(st, &d, DEV_F_ALL), 0);
	assert_int_equal(st->ops->device_next_counter(st, "dev_c", &c), 0);
	assert_int_equal(c, 4);
	assert_int_equal(st->ops->device_next_counter(st, "dev_none", &c), -ENOENT);
}

static void
test_store_device_touch_never_goes_back(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device got;

	insert_device(st, "dev_t", "alice", "active");
	assert_int_equal(st->ops->device_touch(st, "dev_t", 5000, 10), 0);
	assert_int_equal(st->ops->device_get(st, "dev_t", &got), 0);
	assert_int_equal(got.last_seen_at, 5000);
	assert_int_equal(got.sig_seq, 10);

	/* An older batch (both lower) changes nothing. */
	assert_int_equal(st->ops->device_touch(st, "dev_t", 4000, 5), 0);
	assert_int_equal(st->ops->device_get(st, "dev_t", &got), 0);
	assert_int_equal(got.last_seen_at, 5000);
	assert_int_equal(got.sig_seq, 10);

	/* Each column moves on its own. */
	assert_int_equal(st->ops->device_touch(st, "dev_t", 6000, 3), 0);
	assert_int_equal(st->ops->device_get(st, "dev_t", &got), 0);
	assert_int_equal(got.last_seen_at, 6000);
	assert_int_equal(got.sig_seq, 10);
	assert_int_equal(st->ops->device_touch(st, "dev_t", 5500, 20), 0);
	assert_int_equal(st->ops->device_get(st, "dev_t", &got), 0);
	assert_int_equal(got.last_seen_at, 6000);
	assert_int_equal(got.sig_seq, 20);
}

static void
test_store_device_delete_cascades_commands(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device got;
	struct command c;

	insert_device(st, "dev_x", "alice", "active");
	insert_device(st, "dev_y", "bob", "active");
	insert_command(st, "cmd_x1", "dev_x", 1, "queued", 9000);
	insert_command(st, "cmd_x2", "dev_x", 2, "completed", 9000);
	insert_command(st, "cmd_y1", "dev_y", 1, "queued", 9000);

	assert_int_equal(st->ops->device_delete(st, "dev_x"), 0);
	assert_int_equal(st->ops->device_get(st, "dev_x", &got), -ENOENT);
	assert_int_equal(st->ops->command_get(st, "cmd_x1", &c), -ENOENT);
	assert_int_equal(st->ops->command_get(st, "cmd_x2", &c), -ENOENT);
	assert_int_equal(st->ops->command_get(st, "cmd_y1", &c), 0);
	assert_int_equal(st->ops->device_get(st, "dev_y", &got), 0);
	assert_int_equal(st->ops->device_delete(st, "dev_x"), -ENOENT);
}

static void
test_store_device_ids_by_policy(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct device d;
	char ids[8][STORE_ID_MAX];
	size_t n = 0;

	make_device(&d, "f_default1", "alice", "active");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	make_device(&d, "f_p1", "alice", "active");
	snprintf(d.policy_name, sizeof(d.policy_name), "p1");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	make_device(&d, "f_p2", "bob", "active");
	snprintf(d.policy_name, sizeof(d.policy_name), "p2");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	make_device(&d, "f_default2", "bob", "active");
	assert_int_equal(st->ops->device_insert(st, &d), 0);
	/* Retired devices follow nothing. */
	make_device(&d, "f_retired", "bob", "retired");
	snprintf(d.policy_name, sizeof(d.policy_name), "p1");
	assert_int_equal(st->ops->device_insert(st, &d), 0);

	/* Explicitly named only. */
	assert_int_equal(st->ops->device_ids_by_policy(st, "p1", 0, ids, 8, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(ids[0], "f_p1");

	/* The default: its explicit followers plus those following "". */
	assert_int_equal(st->ops->device_ids_by_policy(st, "p2", 1, ids, 8, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(ids[0], "f_default1");
	assert_string_equal(ids[1], "f_p2");
	assert_string_equal(ids[2], "f_default2");

	assert_int_equal(st->ops->device_ids_by_policy(st, "p3", 0, ids, 8, &n), 0);
	assert_int_equal(n, 0);

	/* max caps the answer. */
	assert_int_equal(st->ops->device_ids_by_policy(st, "p2", 1, ids, 2, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(ids[0], "f_default1");
}

static void
test_store_device_count_by_status(void **state)
{
	struct store *st = ((struct fx *)*state)->st;
	struct status_count c[4];
	size_t n = 0;

	assert_int_equal(st->ops->device_count_by_status(st, c, 4, &n), 0);
	assert_int_equal(n, 0);
	insert_device(st, "c1", "alice", "active");
	insert_device(st, "c2", "alice", "retired");
	insert_device(st, "c3", "bob", "active");
	insert_device(st, "c4", "bob", "active");
	assert_int_equal(st->ops->device_count_by_status(st, c, 4, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(count_of(c, n, "active"), 3);
	assert_int_equal(count_of(c, n, "retired"), 1);
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, store_fx_setup, store_fx_teardown)
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store_backends_number_migrations_alike),
		T(test_store_open_creates_schema_and_reopen_keeps_data),
		T(test_store_refuses_newer_schema),
		T(test_store_token_insert_get_list_revoke),
		T(test_store_token_unique_keys),
		T(test_store_etoken_use_until_uses_max),
		T(test_store_nonce_take_once_expire_and_purge),
		T(test_store_request_nonce_claim_once),
		T(test_store_keys_pin_first_then_compare),
		T(test_store_policy_put_get_default_list),
		T(test_store_policy_set_default_unknown_keeps_default),
		T(test_store_device_insert_get_unique),
		T(test_store_device_list_filters_and_pages),
		T(test_store_device_patch_writes_only_named_columns),
		T(test_store_device_next_counter_only_grows),
		T(test_store_device_touch_never_goes_back),
		T(test_store_device_delete_cascades_commands),
		T(test_store_device_ids_by_policy),
		T(test_store_device_count_by_status),
	};
#undef T

	log_set_level(LOG_LVL_ERR);
	return store_fx_run_both("store", tests, ARRAY_SIZE(tests));
}

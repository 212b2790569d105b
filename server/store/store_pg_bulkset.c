/*
 * The PostgreSQL backend's set-based steps of a bulk's batch (issue 10 section 4). Queued one
 * device at a time, a batch cost seven or eight round trips per device (~1 ms each on this
 * machine: 104 s for 100,000 devices); here each step is one statement over the whole batch.
 * The per-row values travel as one-dimensional arrays in PostgreSQL's binary array format
 * (no quoting of the text inside), unnested WITH ORDINALITY so that rows keep the caller's
 * order. The devices are locked by the caller already (device_query FOR UPDATE, in row id
 * order), so these statements take no lock the single-command path would take in another order.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pg_conn.h"
#include "store_pg_priv.h"

#define S(st) ((struct pg_store *)(st))

/* Element type OIDs (pg_type.dat) the arrays are sent as. */
#define OID_BYTEA 17
#define OID_INT8  20
#define OID_TEXT  25

/* One array parameter in the binary format: header, then (length, bytes) per element. */
struct pg_arr {
	uint8_t *buf;
	size_t len, cap;
	int failed;
};

static void
arr_put(struct pg_arr *a, const void *p, size_t n)
{
	if (a->failed)
		return;
	if (a->len + n > a->cap) {
		size_t cap = a->cap ? a->cap : 1024;
		uint8_t *nb;

		while (cap < a->len + n)
			cap *= 2;
		nb = realloc(a->buf, cap);
		if (nb == NULL) {
			a->failed = 1;
			return;
		}
		a->buf = nb;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, n);
	a->len += n;
}

static void
arr_u32(struct pg_arr *a, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};

	arr_put(a, b, 4);
}

/* Starts an array of n elements of type oid (n > 0). */
static void
arr_start(struct pg_arr *a, uint32_t oid, size_t n)
{
	a->len = 0;
	a->failed = n > INT32_MAX;
	arr_u32(a, 1); /* dimensions */
	arr_u32(a, 0); /* no NULL elements */
	arr_u32(a, oid);
	arr_u32(a, (uint32_t)n); /* the dimension's length */
	arr_u32(a, 1);           /* its lower bound */
}

static void
arr_bytes(struct pg_arr *a, const void *p, size_t n)
{
	arr_u32(a, (uint32_t)n);
	arr_put(a, p, n);
}

static void
arr_text(struct pg_arr *a, const char *s)
{
	arr_bytes(a, s, strlen(s));
}

static void
arr_int(struct pg_arr *a, int64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	arr_bytes(a, b, 8);
}

static void
pa_arr(struct pg_args *p, const struct pg_arr *a)
{
	pa_blob(p, a->buf, a->len);
}

static int
arrs_failed(const struct pg_arr *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (a[i].failed)
			return 1;
	return 0;
}

static void
arrs_free(struct pg_arr *a, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(a[i].buf);
}

static void
ids_arr(struct pg_arr *a, const char (*ids)[STORE_ID_MAX], size_t n)
{
	arr_start(a, OID_TEXT, n);
	for (size_t i = 0; i < n; i++)
		arr_text(a, ids[i]);
}

/* Row i of r names its position (1-based, column 0) in an array of n: the index, or -1. */
static long
ord_of(const PGresult *r, int i, size_t n)
{
	int64_t ord = pg_col_int(r, i, 0);

	return ord >= 1 && (uint64_t)ord <= n ? (long)(ord - 1) : -1;
}

int
pg_command_open_of_type(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
			const char *type, char (*open_ids)[STORE_ID_MAX])
{
	struct pg_arr a = {0};
	const Oid types[] = {0};
	const char *v[1];
	int len[1], fmt[] = {1};
	PGresult *r = NULL;
	int e;

	for (size_t i = 0; i < n; i++)
		open_ids[i][0] = '\0';
	if (n == 0)
		return 0;
	ids_arr(&a, ids, n);
	if (a.failed) {
		free(a.buf);
		return -ENOMEM;
	}
	v[0] = (const char *)a.buf;
	len[0] = (int)a.len;
	/*
	 * Every open command of the batch's devices, one probe of commands_device_status per
	 * device (as command_open), the type compared here: with the type in the query, stale
	 * statistics (commands analyzed while it was small, before a bulk added thousands of
	 * wipes) made the planner AND in the commands_type index, which read every wipe of the
	 * table for each device (70 ms for 40 devices). OFFSET 0 keeps the subquery a probe per
	 * device (never a hash of every open command). Planned per call, as command_open.
	 */
	e = pg_run_adhoc(S(st),
			 "SELECT u.ord, c.id, c.type FROM unnest($1::text[]) WITH ORDINALITY AS "
			 "u(id, ord) CROSS JOIN LATERAL (SELECT c.id, c.type, c.counter FROM "
			 "commands c WHERE c.device_id = u.id AND c.status IN ('queued', "
			 "'delivered', 'acknowledged') OFFSET 0) c ORDER BY u.ord, c.counter",
			 1, types, v, len, fmt, &r, "open commands of a batch");
	free(a.buf);
	if (e != 0)
		return e;
	for (int i = 0; i < PQntuples(r); i++) {
		long k = ord_of(r, i, n);
		char t[32];

		pg_col_text(r, i, 2, t, sizeof(t));
		if (k >= 0 && open_ids[k][0] == '\0' && strcmp(t, type) == 0)
			pg_col_text(r, i, 1, open_ids[k], STORE_ID_MAX);
	}
	PQclear(r);
	return 0;
}

int
pg_device_next_counters(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
			const char *desired, int64_t *counters)
{
	struct pg_arr a = {0};
	struct pg_args p = {0};
	PGresult *r = NULL;
	size_t got = 0;
	int e;

	if (n == 0)
		return 0;
	ids_arr(&a, ids, n);
	if (a.failed) {
		free(a.buf);
		return -ENOMEM;
	}
	pa_arr(&p, &a);
	pa_text(&p, desired);
	e = pg_run(S(st),
		   "UPDATE device_orders o SET ticket_counter = o.ticket_counter + 1, "
		   "desired_state = COALESCE($2::text, o.desired_state) FROM unnest($1::text[]) "
		   "WITH ORDINALITY AS u(id, ord) WHERE o.device_id = u.id RETURNING u.ord, "
		   "o.ticket_counter",
		   &p, &r, "device next counters");
	free(a.buf);
	if (e != 0)
		return e;
	for (int i = 0; i < PQntuples(r); i++) {
		long k = ord_of(r, i, n);

		if (k >= 0) {
			counters[k] = pg_col_int(r, i, 1);
			got++;
		}
	}
	PQclear(r);
	/* Every device was locked by this transaction: one missing is a caller's mistake. */
	return got == n ? 0 : -ENOENT;
}

enum { C_ID, C_DEV, C_TYPE, C_STATUS, C_REASON, C_CTR, C_TICKET, C_BY, C_AT, C_EXP, C_N };

int
pg_command_insert_many(struct store *st, const struct command *c, size_t n)
{
	static const uint32_t oids[C_N] = {OID_TEXT, OID_TEXT,  OID_TEXT, OID_TEXT, OID_TEXT,
					   OID_INT8, OID_BYTEA, OID_TEXT, OID_INT8, OID_INT8};
	struct pg_arr a[C_N] = {{0}};
	struct pg_args p = {0};
	int e;

	if (n == 0)
		return 0;
	for (int k = 0; k < C_N; k++)
		arr_start(&a[k], oids[k], n);
	for (size_t i = 0; i < n; i++) {
		if (c[i].idempotency_key[0] != '\0') {
			arrs_free(a, C_N);
			return -EINVAL;
		}
		arr_text(&a[C_ID], c[i].id);
		arr_text(&a[C_DEV], c[i].device_id);
		arr_text(&a[C_TYPE], c[i].type);
		arr_text(&a[C_STATUS], c[i].status);
		arr_text(&a[C_REASON], c[i].reason);
		arr_int(&a[C_CTR], c[i].counter);
		arr_bytes(&a[C_TICKET], c[i].ticket, sizeof(c[i].ticket));
		arr_text(&a[C_BY], c[i].created_by);
		arr_int(&a[C_AT], c[i].created_at);
		arr_int(&a[C_EXP], c[i].expires_at);
	}
	for (int k = 0; k < C_N; k++)
		pa_arr(&p, &a[k]);
	e = arrs_failed(a, C_N)
		    ? -ENOMEM
		    : pg_run(S(st),
			     "INSERT INTO commands (id, device_id, type, status, reason, counter, "
			     "ticket, created_by, created_at, expires_at) SELECT u.cid, u.cdev, "
			     "u.ctype, u.cstatus, u.creason, u.cctr, u.cticket, u.cby, u.cat, "
			     "u.cexp "
			     "FROM "
			     "unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], "
			     "$6::bigint[], $7::bytea[], $8::text[], $9::bigint[], $10::bigint[]) "
			     "WITH ORDINALITY AS u(cid, cdev, ctype, cstatus, creason, cctr, "
			     "cticket, cby, cat, cexp, ord) ORDER BY u.ord",
			     &p, NULL, "command insert many");
	arrs_free(a, C_N);
	return e;
}

enum { A_SEQ, A_AT, A_ACTOR, A_ACTION, A_TARGET, A_OUTCOME, A_DETAIL, A_PREV, A_HASH, A_N };

int
pg_audit_insert_many(struct store *st, const struct audit_entry *e, size_t n)
{
	static const uint32_t oids[A_N] = {OID_INT8, OID_INT8, OID_TEXT,  OID_TEXT, OID_TEXT,
					   OID_TEXT, OID_TEXT, OID_BYTEA, OID_BYTEA};
	struct pg_arr a[A_N] = {{0}};
	struct pg_args p = {0};
	int r;

	if (n == 0)
		return 0;
	for (int k = 0; k < A_N; k++)
		arr_start(&a[k], oids[k], n);
	for (size_t i = 0; i < n; i++) {
		arr_int(&a[A_SEQ], e[i].seq);
		arr_int(&a[A_AT], e[i].at_ms);
		arr_text(&a[A_ACTOR], e[i].actor);
		arr_text(&a[A_ACTION], e[i].action);
		arr_text(&a[A_TARGET], e[i].target);
		arr_text(&a[A_OUTCOME], e[i].outcome);
		arr_text(&a[A_DETAIL], e[i].detail);
		arr_bytes(&a[A_PREV], e[i].prev_hash, sizeof(e[i].prev_hash));
		arr_bytes(&a[A_HASH], e[i].hash, sizeof(e[i].hash));
	}
	for (int k = 0; k < A_N; k++)
		pa_arr(&p, &a[k]);
	r = arrs_failed(a, A_N)
		    ? -ENOMEM
		    : pg_run(S(st),
			     "INSERT INTO audit (seq, at_ms, actor, action, target, outcome, "
			     "detail, "
			     "prev_hash, hash) SELECT * FROM unnest($1::bigint[], $2::bigint[], "
			     "$3::text[], $4::text[], $5::text[], $6::text[], $7::text[], "
			     "$8::bytea[], $9::bytea[])",
			     &p, NULL, "audit insert many");
	arrs_free(a, A_N);
	return r;
}

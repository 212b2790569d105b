/*
 * SQL built per call for the console's queries, shared by the SQLite and PostgreSQL backends
 * (store_sqlite_query.c, store_pg_query.c): a bounded text buffer with numbered parameters
 * "$N" (PostgreSQL's own; SQLite binds them by name), whose values are always bound, never
 * pasted, and the pieces both backends word alike: the device filters, the compliance
 * predicates (one per COMPLY_* bit, from a compliance_spec's values) and the command queue.
 * Which reason makes a device non-compliant is the service's rule; the predicates only turn
 * the spec's values into SQL. What differs (search, sort keys, how an agent version is found
 * older than a minimum, running the text) stays in each backend. Only store/ includes this.
 */
#ifndef CLEAVE_STORE_SQLQ_H
#define CLEAVE_STORE_SQLQ_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "util.h"

#define SQB_CAP        (256 * 1024)
#define SQB_BINDS      1024
#define SQB_GROUPS_MAX 200

enum sqb_kind { SQB_TEXT, SQB_BLOB, SQB_INT };

struct sqb_bind {
	enum sqb_kind kind;
	const void *p; /* text or blob, borrowed until the query ran */
	int n;         /* blob length */
	int64_t i;
};

struct sqb {
	char *buf;
	size_t len;
	int overflow; /* the text or the parameters outgrew their bound: do not run it */
	int nb;
	/*
	 * Adds the test "agent_version is older than the group's minimum", given the number of
	 * the group's agent parameter (sqb_bind_groups): each backend has its own.
	 */
	void (*agent_old)(struct sqb *b, int param);
	/*
	 * The policy groups' queries as SQL text, each bound once (their $N refer to b's
	 * parameters), pasted wherever a device's effective policy is tested (sqb_policy_is).
	 */
	const struct policy_groups *pg;
	/*
	 * The device column a label term tests ("id" when NULL). SQLite's is "+id": a plain
	 * membership test its planner cannot drive the query from, so a page walks the sort's
	 * index and stops at the limit, where driving from a common label's 20,000 rows and
	 * sorting them cost 140 ms at 100,000 devices (bench/RESULTS.md).
	 */
	const char *label_id;
	char *pg_sql[POLICY_GROUPS_MAX];
	struct sqb_bind b[SQB_BINDS];
};

int sqb_new(struct sqb **out, void (*agent_old)(struct sqb *b, int param));
void sqb_free(struct sqb *b);
void sqb_add(struct sqb *b, const char *fmt, ...) __printf(2, 3);
/* Adds a parameter; its number for "$N", or 0 when there is no room (b->overflow is set). */
int sqb_bind(struct sqb *b, enum sqb_kind kind, const void *p, int n, int64_t i);
int sqb_text(struct sqb *b, const char *t);
int sqb_int(struct sqb *b, int64_t v);

/* Parameter numbers of each compliance group's values, bound once for every predicate. */
struct sqb_group {
	int name, digest, agent; /* agent 0: the group has no minimum agent version to check */
};

/*
 * Binds each group's values; agent[i] (NULL: no check) is the value b->agent_old compares
 * group i's devices with. gb holds SQB_GROUPS_MAX entries.
 */
void sqb_bind_groups(struct sqb *b, const struct compliance_spec *spec, const char *const *agent,
		     struct sqb_group *gb);
/* "(r1 OR r2 ...)" over the COMPLY_* bits of mask. */
void sqb_reasons(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb,
		 unsigned mask);
/*
 * A prefix search for q, bound as ranges [q, q + the largest code point): the strings that
 * start with q; fp_* the same for a fingerprint (q without "SHA256:"). The values live here
 * until the query ran; p_* are their parameter numbers.
 */
struct sqb_search {
	char lo[STORE_OWNER_MAX], hi[STORE_OWNER_MAX + 8];
	char fp_lo[STORE_OWNER_MAX], fp_hi[STORE_OWNER_MAX + 8];
	int p_lo, p_hi, p_fp_lo, p_fp_hi;
};
void sqb_search(struct sqb *b, const char *q, struct sqb_search *t);
/*
 * "The device's effective policy is the one whose name is parameter param" (is_default: or the
 * default): its own policy_name, or when it has none, the first of pg's groups it matches (pg
 * NULL or empty: the default). The groups' queries are bound on first use.
 */
void sqb_policy_is(struct sqb *b, const struct policy_groups *pg, int param, int is_default);
/* " AND (q as SQL)": a label query's terms, keys and values bound (migration 0020). */
void sqb_labelq(struct sqb *b, const struct label_query *q);
/* The device query's filters but its search: " AND ..." terms. */
void sqb_filters(struct sqb *b, const struct device_query *q);
/* Its compliance terms (q->reasons, q->compliant), after sqb_bind_groups. */
void sqb_compliance(struct sqb *b, const struct device_query *q, const struct sqb_group *gb);
/*
 * The summary's query: rows (reason mask, key class, devices with them), one pass over from, what the
 * backend reads devices from (PostgreSQL: a join, the order state being in its own table).
 */
void sqb_summary(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb,
		 const char *from);
/*
 * Adds one row of that query (k devices with reason mask m whose hypervisor key is of class
 * key: 0 software, 1 TPM with a verified endorsement, 2 TPM without) to out's totals.
 */
void sqb_summary_row(struct device_summary *out, unsigned m, int64_t key, int64_t k);
/* DEV_SORT_ROWID's cursor, order and limit: a plain range of the row ids, whatever ties. */
void sqb_rowid_walk(struct sqb *b, const struct device_query *q);
/* The command queue with f's filters, newest first or oldest first after f->after. */
void sqb_commands(struct sqb *b, const struct command_filter *f, const char *cols);

#endif

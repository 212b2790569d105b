/* The console's SQL shared by both backends (store_sqlq.h). */
#include "store_sqlq.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
sqb_new(struct sqb **out, void (*agent_old)(struct sqb *b, int param))
{
	struct sqb *b = calloc(1, sizeof(*b));

	if (b != NULL)
		b->buf = malloc(SQB_CAP);
	if (b == NULL || b->buf == NULL) {
		free(b);
		return -ENOMEM;
	}
	b->buf[0] = '\0';
	b->agent_old = agent_old;
	*out = b;
	return 0;
}

void
sqb_free(struct sqb *b)
{
	for (size_t i = 0; b != NULL && i < POLICY_GROUPS_MAX; i++)
		free(b->pg_sql[i]);
	if (b != NULL)
		free(b->buf);
	free(b);
}

void
sqb_add(struct sqb *b, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (b->overflow)
		return;
	va_start(ap, fmt);
	k = vsnprintf(b->buf + b->len, SQB_CAP - b->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= SQB_CAP - b->len)
		b->overflow = 1;
	else
		b->len += (size_t)k;
}

int
sqb_bind(struct sqb *b, enum sqb_kind kind, const void *p, int n, int64_t i)
{
	if (b->nb >= SQB_BINDS) {
		b->overflow = 1;
		return 0;
	}
	b->b[b->nb].kind = kind;
	b->b[b->nb].p = p;
	b->b[b->nb].n = n;
	b->b[b->nb].i = i;
	return ++b->nb;
}

int
sqb_text(struct sqb *b, const char *t)
{
	return sqb_bind(b, SQB_TEXT, t, 0, 0);
}

int
sqb_int(struct sqb *b, int64_t v)
{
	return sqb_bind(b, SQB_INT, NULL, 0, v);
}

/* ---- compliance predicates ---- */

void
sqb_bind_groups(struct sqb *b, const struct compliance_spec *spec, const char *const *agent,
		struct sqb_group *gb)
{
	for (size_t i = 0; i < spec->n && i < SQB_GROUPS_MAX; i++) {
		const struct compliance_group *g = &spec->groups[i];

		gb[i].name = sqb_text(b, g->policy);
		gb[i].digest = sqb_bind(b, SQB_BLOB, g->digest, sizeof(g->digest), 0);
		gb[i].agent = agent != NULL && agent[i] != NULL ? sqb_text(b, agent[i]) : 0;
	}
}

static void labelq_node(struct sqb *b, const struct label_query *q, int i, int depth);

/* Binds each policy group's query once, keeping its SQL text in b->pg_sql (once per b). */
static int
pg_bind(struct sqb *b, const struct policy_groups *pg)
{
	if (b->pg == pg)
		return 0;
	if (b->pg != NULL) { /* one set of groups per query */
		b->overflow = 1;
		return -1;
	}
	b->pg = pg;
	for (size_t i = 0; i < pg->n && i < POLICY_GROUPS_MAX; i++) {
		size_t at = b->len;

		labelq_node(b, pg->q[i], pg->q[i]->root, 0);
		if (b->overflow || (b->pg_sql[i] = strndup(b->buf + at, b->len - at)) == NULL) {
			b->overflow = 1;
			return -1;
		}
		b->len = at; /* the text goes where it is used; its parameters stay bound */
		b->buf[at] = '\0';
	}
	return 0;
}

void
sqb_policy_is(struct sqb *b, const struct policy_groups *pg, int param, int is_default)
{
	const char *name = param > 0 && param <= b->nb ? b->b[param - 1].p : NULL;

	if (pg == NULL || pg->n == 0 || name == NULL || pg_bind(b, pg) != 0) {
		/* Without groups, the plain forms: each one or two ranges of devices_policy. */
		sqb_add(b, "(policy_name = $%d%s)", param,
			is_default ? " OR policy_name = ''" : "");
		return;
	}
	sqb_add(b, "(policy_name = $%d OR (policy_name = '' AND (false", param);
	/* Group i gives its policy to the devices that match it and no group before it. */
	for (size_t i = 0; i < pg->n && i < POLICY_GROUPS_MAX; i++) {
		if (strcmp(pg->policy[i], name) != 0)
			continue;
		sqb_add(b, " OR ((%s) AND NOT (false", b->pg_sql[i]);
		for (size_t j = 0; j < i; j++)
			sqb_add(b, " OR (%s)", b->pg_sql[j]);
		sqb_add(b, "))");
	}
	if (is_default) { /* and the default, those that match none */
		sqb_add(b, " OR NOT (false");
		for (size_t i = 0; i < pg->n && i < POLICY_GROUPS_MAX; i++)
			sqb_add(b, " OR (%s)", b->pg_sql[i]);
		sqb_add(b, ")");
	}
	sqb_add(b, ")))");
}

static void
group_cond(struct sqb *b, const struct compliance_spec *spec, const struct compliance_group *g,
	   const struct sqb_group *gb)
{
	sqb_policy_is(b, spec->policy_groups, gb->name, g->is_default);
}

/* "(g1 AND x1) OR (g2 AND x2) ..." over the groups with a limit of this kind; false if none. */
static void
per_group(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb,
	  unsigned bit)
{
	sqb_add(b, "(false");
	for (size_t i = 0; i < spec->n && i < SQB_GROUPS_MAX; i++) {
		const struct compliance_group *g = &spec->groups[i];

		if ((bit == COMPLY_OFFLINE && g->offline_before == 0) ||
		    (bit == COMPLY_AGENT_OLD && gb[i].agent == 0))
			continue;
		sqb_add(b, " OR (");
		group_cond(b, spec, g, &gb[i]);
		if (bit == COMPLY_NOT_APPLIED) {
			sqb_add(b, " AND attested_policy <> $%d)", gb[i].digest);
		} else if (bit == COMPLY_OFFLINE) {
			sqb_add(b, " AND last_seen_at < %lld)", (long long)g->offline_before);
		} else if (bit == COMPLY_AGENT_OLD) {
			sqb_add(b, " AND ");
			b->agent_old(b, gb[i].agent);
			sqb_add(b, ")");
		} else {
			sqb_add(b,
				" AND (CASE WHEN attested_at > 0 THEN attested_at ELSE enrolled_at "
				"END) < %lld)",
				(long long)g->attest_before);
		}
	}
	sqb_add(b, ")");
}

static void
no_policy(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb)
{
	sqb_add(b, "NOT (false");
	for (size_t i = 0; i < spec->n && i < SQB_GROUPS_MAX; i++) {
		sqb_add(b, " OR ");
		group_cond(b, spec, &spec->groups[i], &gb[i]);
	}
	sqb_add(b, ")");
}

/* The predicate "the device has reason bit" (one COMPLY_* bit). */
static void
reason_sql(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb,
	   unsigned bit)
{
	switch (bit) {
	case COMPLY_RETIRED:
		sqb_add(b, "(status <> 'active' AND superseded_by = '')");
		break;
	case COMPLY_SUPERSEDED:
		sqb_add(b, "(status <> 'active' AND superseded_by <> '')");
		break;
	case COMPLY_NO_POLICY:
		no_policy(b, spec, gb);
		break;
	case COMPLY_ATTEST_STALE:
		sqb_add(b, "(");
		per_group(b, spec, gb, bit);
		sqb_add(b, " OR (");
		no_policy(b, spec, gb);
		sqb_add(b,
			" AND (CASE WHEN attested_at > 0 THEN attested_at ELSE enrolled_at END) "
			"< %lld))",
			(long long)spec->attest_before);
		break;
	case COMPLY_MISMATCH:
		sqb_add(b, "(attest_status = 'mismatch')");
		break;
	case COMPLY_WIPED:
		sqb_add(b, "(reported_state = 'wiped')");
		break;
	case COMPLY_DIFFERS:
		sqb_add(b, "(desired_state <> reported_state)");
		break;
	default: /* NOT_APPLIED, OFFLINE, AGENT_OLD */
		per_group(b, spec, gb, bit);
		break;
	}
}

void
sqb_reasons(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb,
	    unsigned mask)
{
	sqb_add(b, "(false");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		if (!(mask & (1u << i)))
			continue;
		sqb_add(b, " OR ");
		reason_sql(b, spec, gb, 1u << i);
	}
	sqb_add(b, ")");
}

/* ---- devices and commands ---- */

void
sqb_search(struct sqb *b, const char *q, struct sqb_search *t)
{
	const char *fp = strncmp(q, "SHA256:", 7) == 0 ? q + 7 : q;

	snprintf(t->lo, sizeof(t->lo), "%s", q);
	snprintf(t->hi, sizeof(t->hi), "%s\xf4\x8f\xbf\xbf", t->lo);
	snprintf(t->fp_lo, sizeof(t->fp_lo), "%s", fp);
	snprintf(t->fp_hi, sizeof(t->fp_hi), "%s\xf4\x8f\xbf\xbf", t->fp_lo);
	t->p_lo = sqb_text(b, t->lo);
	t->p_hi = sqb_text(b, t->hi);
	t->p_fp_lo = sqb_text(b, t->fp_lo);
	t->p_fp_hi = sqb_text(b, t->fp_hi);
}

/*
 * Node i of a label query as SQL. Each label term is "id IN (the devices with that label)", one
 * range of device_labels_kv; key and value are bound. The parser made the tree (labelq.c): its
 * operands precede their operator, so the walk is bounded by the node count.
 */
static void
labelq_node(struct sqb *b, const struct label_query *q, int i, int depth)
{
	const struct labelq_node *nd;

	if (i < 0 || i >= q->n || i >= LABELQ_NODES_MAX || depth > LABELQ_NODES_MAX) {
		b->overflow = 1; /* a malformed tree: never run it */
		return;
	}
	nd = &q->node[i];
	switch (nd->op) {
	case LQ_HAS:
		sqb_add(b, "id IN (SELECT device_id FROM device_labels WHERE key = $%d)",
			sqb_text(b, nd->key));
		break;
	case LQ_EQ: {
		int k = sqb_text(b, nd->key);

		sqb_add(b,
			"id IN (SELECT device_id FROM device_labels WHERE key = $%d AND value = "
			"$%d)",
			k, sqb_text(b, nd->value));
		break;
	}
	case LQ_NOT:
		sqb_add(b, "NOT (");
		labelq_node(b, q, nd->a, depth + 1);
		sqb_add(b, ")");
		break;
	default:
		sqb_add(b, "(");
		labelq_node(b, q, nd->a, depth + 1);
		sqb_add(b, nd->op == LQ_AND ? ") AND (" : ") OR (");
		labelq_node(b, q, nd->b, depth + 1);
		sqb_add(b, ")");
		break;
	}
}

void
sqb_labelq(struct sqb *b, const struct label_query *q)
{
	sqb_add(b, " AND (");
	labelq_node(b, q, q->root, 0);
	sqb_add(b, ")");
}

void
sqb_filters(struct sqb *b, const struct device_query *q)
{
	if (q->labels != NULL)
		sqb_labelq(b, q->labels);
	if (q->group != NULL)
		sqb_labelq(b, q->group);
	if (q->status != NULL)
		sqb_add(b, " AND status = $%d", sqb_text(b, q->status));
	if (q->owner != NULL)
		sqb_add(b, " AND owner = $%d", sqb_text(b, q->owner));
	if (q->policy != NULL) {
		sqb_add(b, " AND ");
		sqb_policy_is(b, q->policy_groups, sqb_text(b, q->policy), q->policy_is_default);
	}
	if (q->applied_name != NULL)
		sqb_add(b, " AND applied_policy_name = $%d AND applied_policy_version = $%d",
			sqb_text(b, q->applied_name), sqb_int(b, q->applied_version));
	if (q->desired != NULL)
		sqb_add(b, " AND desired_state = $%d", sqb_text(b, q->desired));
	if (q->reported != NULL)
		sqb_add(b, " AND reported_state = $%d", sqb_text(b, q->reported));
	if (q->seen_before > 0)
		sqb_add(b, " AND last_seen_at < $%d", sqb_int(b, q->seen_before));
	if (q->enrolled_until > 0)
		sqb_add(b, " AND enrolled_at <= $%d", sqb_int(b, q->enrolled_until));
}

void
sqb_compliance(struct sqb *b, const struct device_query *q, const struct sqb_group *gb)
{
	if (q->reasons != 0) {
		sqb_add(b, " AND ");
		sqb_reasons(b, q->spec, gb, q->reasons);
	}
	if (q->compliant >= 0) {
		sqb_add(b, q->compliant ? " AND NOT " : " AND ");
		sqb_reasons(b, q->spec, gb, (1u << COMPLY_COUNT) - 1);
	}
}

void
sqb_summary(struct sqb *b, const struct compliance_spec *spec, const struct sqb_group *gb,
	    const char *from)
{
	/*
	 * Each device's reasons as a bit mask, and where its hypervisor key lives (k: 0 a software
	 * key, 1 in a TPM whose endorsement was verified, 2 in a TPM without it), counted per
	 * distinct pair (a handful).
	 */
	sqb_add(b, "SELECT m, k, count(*) FROM (SELECT 0");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		sqb_add(b, " + (CASE WHEN ");
		reason_sql(b, spec, gb, 1u << i);
		sqb_add(b, " THEN %u ELSE 0 END)", 1u << i);
	}
	sqb_add(b,
		" AS m, CASE WHEN hv_identity <> 'tpm' THEN 0 WHEN endorsement = 'verified' THEN 1 "
		"ELSE 2 END AS k FROM %s) AS masks GROUP BY m, k",
		from);
}

void
sqb_summary_row(struct device_summary *out, unsigned m, int64_t key, int64_t k)
{
	out->total += k;
	if (m == 0)
		out->compliant += k;
	for (int i = 0; i < COMPLY_COUNT; i++)
		if (m & (1u << i))
			out->reasons[i] += k;
	if (key == 1)
		out->tpm_endorsed += k;
	else if (key == 2)
		out->tpm_unendorsed += k;
	else
		out->software_keys += k;
}

void
sqb_rowid_walk(struct sqb *b, const struct device_query *q)
{
	if (q->has_after)
		sqb_add(b, " AND rowid %s $%d", q->desc ? "<" : ">", sqb_int(b, q->after_rowid));
	sqb_add(b, " ORDER BY rowid %s LIMIT %zu", q->desc ? "DESC" : "ASC", q->limit);
}

void
sqb_commands(struct sqb *b, const struct command_filter *f, const char *cols)
{
	sqb_add(b, "SELECT %s FROM commands WHERE true", cols);
	if (f->device_id != NULL)
		sqb_add(b, " AND device_id = $%d", sqb_text(b, f->device_id));
	if (f->status != NULL)
		sqb_add(b, " AND status = $%d", sqb_text(b, f->status));
	if (f->type != NULL)
		sqb_add(b, " AND type = $%d", sqb_text(b, f->type));
	if (f->newest_first && f->after > 0)
		sqb_add(b, " AND rowid < $%d", sqb_int(b, f->after));
	else if (!f->newest_first)
		sqb_add(b, " AND rowid > $%d", sqb_int(b, f->after));
	sqb_add(b, " ORDER BY rowid %s LIMIT %zu", f->newest_first ? "DESC" : "ASC", f->limit);
}

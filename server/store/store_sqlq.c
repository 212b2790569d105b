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

static void
group_cond(struct sqb *b, const struct compliance_group *g, const struct sqb_group *gb)
{
	if (g->is_default)
		sqb_add(b, "(policy_name = $%d OR policy_name = '')", gb->name);
	else
		sqb_add(b, "policy_name = $%d", gb->name);
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
		group_cond(b, g, &gb[i]);
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
		group_cond(b, &spec->groups[i], &gb[i]);
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

void
sqb_filters(struct sqb *b, const struct device_query *q)
{
	if (q->status != NULL)
		sqb_add(b, " AND status = $%d", sqb_text(b, q->status));
	if (q->owner != NULL)
		sqb_add(b, " AND owner = $%d", sqb_text(b, q->owner));
	if (q->policy != NULL) {
		int p = sqb_text(b, q->policy);

		if (q->policy_is_default)
			sqb_add(b, " AND (policy_name = $%d OR policy_name = '')", p);
		else
			sqb_add(b, " AND policy_name = $%d", p);
	}
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
	/* Each device's reasons as a bit mask, counted per distinct mask (a handful). */
	sqb_add(b, "SELECT m, count(*) FROM (SELECT 0");
	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		sqb_add(b, " + (CASE WHEN ");
		reason_sql(b, spec, gb, 1u << i);
		sqb_add(b, " THEN %u ELSE 0 END)", 1u << i);
	}
	sqb_add(b, " AS m FROM %s) AS masks GROUP BY m", from);
}

void
sqb_summary_row(struct device_summary *out, unsigned m, int64_t k)
{
	out->total += k;
	if (m == 0)
		out->compliant += k;
	for (int i = 0; i < COMPLY_COUNT; i++)
		if (m & (1u << i))
			out->reasons[i] += k;
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

/*
 * Device compliance, and the console's queries that filter and count by it (issue 9). One rule
 * in two forms: svc_compliance_eval() judges one record (for its JSON), and the spec built here
 * gives the store the same rule's values per policy (digest, cut-off times, minimum agent), so
 * that the list's filter and the dashboard's counts agree with what each device shows. The
 * reasons are evidence-based: corporate state and policy come from what the hypervisor signed.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ATTEST_MAX_AGE_DEFAULT_S 86400 /* without an offline lock limit in the policy */

static const struct {
	unsigned bit;
	const char *code;
	const char *text;
} reasons[COMPLY_COUNT] = {
	{COMPLY_RETIRED, "retired", "retired"},
	{COMPLY_SUPERSEDED, "superseded", "superseded by a newer enrollment"},
	{COMPLY_NO_POLICY, "no_policy", "no policy is defined"},
	{COMPLY_NOT_APPLIED, "policy_not_applied", "policy not applied"},
	{COMPLY_OFFLINE, "offline", "offline longer than the policy allows"},
	{COMPLY_AGENT_OLD, "agent_too_old", "agent too old"},
	{COMPLY_MISMATCH, "attestation_mismatch", "attestation mismatch"},
	{COMPLY_ATTEST_STALE, "attestation_stale",
	 "no attestation for longer than the policy allows"},
	{COMPLY_WIPED, "wiped", "the corporate half was wiped"},
	{COMPLY_DIFFERS, "state_differs", "corporate state differs from the desired state"},
};

const char *
svc_compliance_code(unsigned bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (reasons[i].bit == bit)
			return reasons[i].code;
	return NULL;
}

const char *
svc_compliance_text(unsigned bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (reasons[i].bit == bit)
			return reasons[i].text;
	return NULL;
}

unsigned
svc_compliance_parse(const char *code)
{
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (strcmp(reasons[i].code, code) == 0)
			return reasons[i].bit;
	return 0;
}

int
svc_version_cmp(const char *a, const char *b)
{
	while (*a || *b) {
		long x = strtol(a, (char **)&a, 10), y = strtol(b, (char **)&b, 10);

		if (x != y)
			return x < y ? -1 : 1;
		a += strspn(a, ".");
		b += strspn(b, ".");
		if (!*a || !*b)
			return (*a != '\0') - (*b != '\0');
	}
	return 0;
}

/* The limits of one policy as the rule uses them; parsed is 0 when its body is unreadable. */
struct limits {
	int parsed;
	int64_t lock_s;
	int64_t max_age;
	char min_agent[32];
};

static void
policy_limits(struct service *s, const struct policy *p, struct limits *l)
{
	struct policy_content pc;

	memset(l, 0, sizeof(*l));
	l->max_age = ATTEST_MAX_AGE_DEFAULT_S;
	if (s->parse_policy == NULL || s->parse_policy(p->body, &pc) != 0)
		return;
	l->parsed = 1;
	l->lock_s = policy_lock_s(&pc);
	if (l->lock_s > 0)
		l->max_age = l->lock_s;
	str_copy(l->min_agent, sizeof(l->min_agent), pc.min_agent_version);
}

unsigned
svc_compliance_eval(struct service *s, const struct device *d, const struct policy *p,
		    int have_policy)
{
	int64_t now = svc_now_s(s);
	int64_t attested = d->attested_at > 0 ? d->attested_at : d->enrolled_at;
	int64_t max_age = ATTEST_MAX_AGE_DEFAULT_S;
	unsigned m = 0;

	if (strcmp(d->status, "active") != 0)
		m |= d->superseded_by[0] ? COMPLY_SUPERSEDED : COMPLY_RETIRED;
	if (!have_policy) {
		m |= COMPLY_NO_POLICY;
	} else {
		struct limits l;
		uint8_t want[16];

		/* What the hypervisor attests it enforces, not what the agent says it applied. */
		svc_policy_digest(s, p, want);
		if (memcmp(want, d->attested_policy, sizeof(want)) != 0)
			m |= COMPLY_NOT_APPLIED;
		policy_limits(s, p, &l);
		if (l.lock_s > 0 && now - d->last_seen_at > l.lock_s)
			m |= COMPLY_OFFLINE;
		if (l.min_agent[0] != '\0' && svc_version_cmp(d->agent_version, l.min_agent) < 0)
			m |= COMPLY_AGENT_OLD;
		max_age = l.max_age;
	}
	if (strcmp(d->attest_status, "mismatch") == 0)
		m |= COMPLY_MISMATCH;
	if (now - attested > max_age)
		m |= COMPLY_ATTEST_STALE;
	if (strcmp(d->reported_state, "wiped") == 0)
		m |= COMPLY_WIPED;
	if (strcmp(d->desired_state, d->reported_state) != 0)
		m |= COMPLY_DIFFERS;
	return m;
}

struct svc_qmem {
	struct compliance_group *groups;
	struct svc_pgroups *pg; /* NULL: no group gives a policy */
	int pg_loaded;
};

void
svc_qmem_free(struct svc_qmem *m)
{
	if (m == NULL)
		return;
	free(m->groups);
	free(m->pg);
	free(m);
}

/* *mem, made on first use, with the policy groups loaded; their list for the store, or NULL. */
static int
qmem_groups(struct service *s, struct svc_qmem **mem, const struct policy_groups **pg)
{
	int r = 0;

	*pg = NULL;
	if (*mem == NULL && (*mem = calloc(1, sizeof(**mem))) == NULL)
		return -ENOMEM;
	if (!(*mem)->pg_loaded)
		r = svc_pgroups_load(s, &(*mem)->pg);
	(*mem)->pg_loaded = r == 0;
	if ((*mem)->pg != NULL)
		*pg = &(*mem)->pg->pg;
	return r;
}

/* The same rule, per policy, as values for the store's predicates. *mem: caller frees. */
static int
build_spec(struct service *s, struct compliance_spec *spec, struct svc_qmem **mem)
{
	struct policy *pols = malloc(STORE_LIST_MAX * sizeof(*pols));
	struct compliance_group *groups = NULL;
	int64_t now = svc_now_s(s);
	size_t n = 0;
	int r = pols ? s->st->ops->policy_list(s->st, pols, STORE_LIST_MAX, &n) : -ENOMEM;

	memset(spec, 0, sizeof(*spec));
	if (r == 0)
		r = qmem_groups(s, mem, &spec->policy_groups);
	if (r == 0 && (groups = (*mem)->groups = calloc(n ? n : 1, sizeof(*groups))) == NULL)
		r = -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct compliance_group *g = &groups[i];
		struct limits l;

		policy_limits(s, &pols[i], &l);
		str_copy(g->policy, sizeof(g->policy), pols[i].name);
		g->is_default = pols[i].is_default;
		svc_policy_digest(s, &pols[i], g->digest);
		g->offline_before = l.lock_s > 0 ? now - l.lock_s : 0;
		g->attest_before = now - l.max_age;
		str_copy(g->min_agent, sizeof(g->min_agent), l.min_agent);
	}
	spec->groups = groups;
	spec->n = n;
	spec->attest_before = now - ATTEST_MAX_AGE_DEFAULT_S;
	spec->version_cmp = svc_version_cmp;
	free(pols);
	return r;
}

int
svc_query_ready(struct service *s, struct device_query *q, struct compliance_spec *spec,
		struct svc_qmem **mem)
{
	int r;

	*mem = NULL;
	q->policy_is_default = 0;
	q->policy_groups = NULL;
	q->spec = NULL;
	if (q->policy != NULL) {
		struct policy def;

		r = s->st->ops->policy_default(s->st, &def);
		if (r != 0 && r != -ENOENT)
			return r;
		q->policy_is_default = r == 0 && strcmp(def.name, q->policy) == 0;
		r = qmem_groups(s, mem, &q->policy_groups);
		if (r != 0)
			return r;
	}
	if (q->compliant >= 0 || q->reasons != 0) {
		r = build_spec(s, spec, mem);
		if (r != 0)
			return r;
		q->spec = spec;
	}
	return 0;
}

int
svc_device_query(struct service *s, const struct principal *p, struct device_query *q,
		 struct device *out, size_t *n, struct svc_error *err)
{
	struct svc_qmem *groups = NULL;
	struct compliance_spec spec;
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = svc_query_ready(s, q, &spec, &groups);
	if (r == 0)
		r = s->st->ops->device_query(s->st, q, out, n);
	q->spec = NULL;
	svc_qmem_free(groups);
	return r == 0 ? 0 : svc_store_fail(err, r, "device");
}

int
svc_device_count(struct service *s, const struct principal *p, struct device_query *q, int64_t *n,
		 struct svc_error *err)
{
	struct svc_qmem *groups = NULL;
	struct compliance_spec spec;
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = svc_query_ready(s, q, &spec, &groups);
	if (r == 0)
		r = s->st->ops->device_count(s->st, q, n);
	q->spec = NULL;
	svc_qmem_free(groups);
	return r == 0 ? 0 : svc_store_fail(err, r, "device");
}

int
svc_device_summary(struct service *s, const struct principal *p, struct device_summary *out,
		   struct svc_error *err)
{
	struct svc_qmem *groups = NULL;
	struct compliance_spec spec;
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = build_spec(s, &spec, &groups);
	if (r == 0)
		r = s->st->ops->device_summary(s->st, &spec, out);
	svc_qmem_free(groups);
	return r == 0 ? 0 : svc_store_fail(err, r, "device");
}

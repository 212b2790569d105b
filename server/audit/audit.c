/*
 * Hash chain over the audit table: hash = SHA-256(prev_hash || seq || at_ms || each text field
 * length-prefixed). Length prefixes make the encoding unambiguous, so no two different entries
 * hash the same input. This file neither decides what gets audited (service/ does) nor stores
 * rows (store/ does).
 */
#include "audit.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "crypto.h"
#include "le.h"
#include "util.h"

void
audit_hash(const struct audit_entry *e, uint8_t out[32])
{
	const char *fields[] = {e->actor, e->action, e->target, e->outcome, e->detail};
	uint8_t head[32 + 16];
	uint8_t lens[ARRAY_SIZE(fields)][4];
	const void *parts[1 + 2 * ARRAY_SIZE(fields)];
	size_t sizes[1 + 2 * ARRAY_SIZE(fields)];
	size_t k = 0;

	memcpy(head, e->prev_hash, 32);
	put64(head + 32, (uint64_t)e->seq);
	put64(head + 40, (uint64_t)e->at_ms);
	parts[k] = head;
	sizes[k++] = sizeof(head);
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		uint32_t n = (uint32_t)strlen(fields[i]);

		for (int b = 0; b < 4; b++)
			lens[i][b] = (uint8_t)(n >> (8 * b));
		parts[k] = lens[i];
		sizes[k++] = 4;
		parts[k] = fields[i];
		sizes[k++] = n;
	}
	crypto_sha256_parts(parts, sizes, k, out);
}

int
audit_append(struct store *st, int64_t at_ms, const char *actor, const char *action,
	     const char *target, const char *outcome, const char *detail)
{
	struct audit_entry last, e;
	int r;

	memset(&e, 0, sizeof(e));
	r = st->ops->audit_last(st, &last);
	if (r == 0) {
		e.seq = last.seq + 1;
		memcpy(e.prev_hash, last.hash, 32);
	} else if (r == -ENOENT) {
		e.seq = 1;
	} else {
		return r;
	}
	e.at_ms = at_ms;
	str_copy(e.actor, sizeof(e.actor), actor ? actor : "");
	str_copy(e.action, sizeof(e.action), action ? action : "");
	str_copy(e.target, sizeof(e.target), target ? target : "");
	str_copy(e.outcome, sizeof(e.outcome), outcome ? outcome : "");
	str_copy(e.detail, sizeof(e.detail), detail ? detail : "");
	audit_hash(&e, e.hash);
	return st->ops->audit_insert(st, &e);
}

struct verify_ctx {
	struct audit_verify_result *r;
	uint8_t prev[32];
	int64_t prev_seq;
};

static int
verify_one(void *ctx, const struct audit_entry *e)
{
	struct verify_ctx *v = ctx;
	uint8_t h[32];

	v->r->entries++;
	if (e->seq != v->prev_seq + 1) {
		snprintf(v->r->problem, sizeof(v->r->problem),
			 "entry %lld follows %lld: entries are missing", (long long)e->seq,
			 (long long)v->prev_seq);
		v->r->first_bad_seq = v->prev_seq + 1;
		return 1;
	}
	if (memcmp(e->prev_hash, v->prev, 32) != 0) {
		snprintf(v->r->problem, sizeof(v->r->problem),
			 "entry %lld does not link to the entry before it", (long long)e->seq);
		v->r->first_bad_seq = e->seq;
		return 1;
	}
	audit_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0) {
		snprintf(v->r->problem, sizeof(v->r->problem),
			 "entry %lld was modified after it was written", (long long)e->seq);
		v->r->first_bad_seq = e->seq;
		return 1;
	}
	memcpy(v->prev, e->hash, 32);
	v->prev_seq = e->seq;
	return 0;
}

int
audit_verify(struct store *st, struct audit_verify_result *r)
{
	struct verify_ctx v = {.r = r};
	int rc;

	memset(r, 0, sizeof(*r));
	rc = st->ops->audit_iter(st, verify_one, &v);
	return rc < 0 ? rc : 0;
}

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

/* Takes the chain's head (and, in a transaction, its lock): the next seq and its prev_hash. */
static int
chain_head(struct store *st, int64_t *seq, uint8_t prev_hash[32])
{
	struct audit_entry last;
	int r = st->ops->audit_last(st, &last);

	if (r == 0) {
		*seq = last.seq + 1;
		memcpy(prev_hash, last.hash, 32);
	} else if (r == -ENOENT) {
		*seq = 1;
		memset(prev_hash, 0, 32);
	} else {
		return r;
	}
	return 0;
}

int
audit_append(struct store *st, int64_t at_ms, const char *actor, const char *action,
	     const char *target, const char *outcome, const char *detail)
{
	struct audit_entry e;
	int r;

	memset(&e, 0, sizeof(e));
	r = chain_head(st, &e.seq, e.prev_hash);
	if (r != 0)
		return r;
	e.at_ms = at_ms;
	str_copy(e.actor, sizeof(e.actor), actor ? actor : "");
	str_copy(e.action, sizeof(e.action), action ? action : "");
	str_copy(e.target, sizeof(e.target), target ? target : "");
	str_copy(e.outcome, sizeof(e.outcome), outcome ? outcome : "");
	str_copy(e.detail, sizeof(e.detail), detail ? detail : "");
	audit_hash(&e, e.hash);
	return st->ops->audit_insert(st, &e);
}

int
audit_append_many(struct store *st, struct audit_entry *e, size_t n)
{
	int r;

	if (n == 0)
		return 0;
	if (st->ops->audit_insert_many == NULL)
		return -ENOTSUP;
	r = chain_head(st, &e[0].seq, e[0].prev_hash);
	if (r != 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		if (i > 0) {
			e[i].seq = e[i - 1].seq + 1;
			memcpy(e[i].prev_hash, e[i - 1].hash, 32);
		}
		audit_hash(&e[i], e[i].hash);
	}
	return st->ops->audit_insert_many(st, e, n);
}

static int
verify_one(void *ctx, const struct audit_entry *e)
{
	struct audit_walk *w = ctx;
	uint8_t h[32];

	w->checked++;
	if (e->seq != w->seq + 1) {
		snprintf(w->problem, sizeof(w->problem),
			 "entry %lld follows %lld: entries are missing", (long long)e->seq,
			 (long long)w->seq);
		w->first_bad_seq = w->seq + 1;
		return 1;
	}
	if (memcmp(e->prev_hash, w->hash, 32) != 0) {
		snprintf(w->problem, sizeof(w->problem),
			 "entry %lld does not link to the entry before it", (long long)e->seq);
		w->first_bad_seq = e->seq;
		return 1;
	}
	audit_hash(e, h);
	if (memcmp(h, e->hash, 32) != 0) {
		snprintf(w->problem, sizeof(w->problem),
			 "entry %lld was modified after it was written", (long long)e->seq);
		w->first_bad_seq = e->seq;
		return 1;
	}
	memcpy(w->hash, e->hash, 32);
	w->seq = e->seq;
	return 0;
}

int
audit_walk_more(struct store *st, struct audit_walk *w, size_t max, int *done)
{
	int64_t before = w->checked;
	int rc;

	*done = w->first_bad_seq != 0;
	if (*done)
		return 0;
	rc = st->ops->audit_iter_range(st, w->seq, max, verify_one, w);
	if (rc < 0)
		return rc;
	/* A short range is the chain's end; a problem ends the walk too. */
	*done = w->first_bad_seq != 0 || (size_t)(w->checked - before) < max;
	return 0;
}

/* The anchor entry is gone: the newest entries were deleted, or that one was. */
static int
anchor_gone(struct store *st, struct audit_walk *w)
{
	struct audit_entry head;
	int r = st->ops->audit_last(st, &head);
	int64_t h = r == 0 ? head.seq : 0;

	if (r != 0 && r != -ENOENT)
		return r;
	if (h < w->seq) {
		snprintf(w->problem, sizeof(w->problem),
			 "entries after %lld were deleted: entry %lld was verified before",
			 (long long)h, (long long)w->seq);
		w->first_bad_seq = h + 1;
	} else {
		snprintf(w->problem, sizeof(w->problem), "entry %lld, verified before, was deleted",
			 (long long)w->seq);
		w->first_bad_seq = w->seq;
	}
	return 0;
}

int
audit_walk_anchor(struct store *st, struct audit_walk *w)
{
	struct audit_entry e;
	uint8_t h[32];
	int r;

	if (w->seq == 0)
		return 0; /* the start of the chain: nothing to hold on to */
	r = st->ops->audit_get(st, w->seq, &e);
	if (r == -ENOENT)
		return anchor_gone(st, w);
	if (r != 0)
		return r;
	audit_hash(&e, h);
	if (memcmp(e.hash, w->hash, 32) != 0 || memcmp(h, w->hash, 32) != 0) {
		snprintf(w->problem, sizeof(w->problem),
			 "entry %lld was modified or the chain rewritten after it was verified",
			 (long long)w->seq);
		w->first_bad_seq = w->seq;
	}
	return 0;
}

int
audit_verify(struct store *st, struct audit_verify_result *r)
{
	struct audit_walk w = {0};
	int done = 0, rc = 0;

	memset(r, 0, sizeof(*r));
	/* Bounded: every round verifies AUDIT_WALK_CHUNK entries or ends the walk. */
	while (rc == 0 && !done)
		rc = audit_walk_more(st, &w, AUDIT_WALK_CHUNK, &done);
	if (rc != 0)
		return rc;
	r->entries = w.checked;
	r->first_bad_seq = w.first_bad_seq;
	memcpy(r->problem, w.problem, sizeof(r->problem));
	return 0;
}

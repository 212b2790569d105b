/*
 * The hash-chained audit log. Every entry's hash covers the previous entry's hash and all of its
 * own fields, so editing or deleting a row breaks the chain at that point, which audit_verify
 * reports. Appending must happen inside the caller's store write transaction, so the entry
 * lands with the change it describes. Truncating the newest rows is not detectable from the
 * chain alone (see server/README.md).
 */
#ifndef CLEAVE_AUDIT_H
#define CLEAVE_AUDIT_H

#include "store/store.h"

/*
 * Appends one entry; call between tx_begin and tx_commit. Strings are borrowed and truncated
 * to their column sizes. Returns 0 or a negative errno from the store.
 */
int audit_append(struct store *st, int64_t at_ms, const char *actor, const char *action,
		 const char *target, const char *outcome, const char *detail);

/* Computes the hash of e from e->prev_hash and its fields (exposed for tests). */
void audit_hash(const struct audit_entry *e, uint8_t out[32]);

struct audit_verify_result {
	int64_t entries;
	int64_t first_bad_seq; /* 0 when the chain is intact */
	char problem[128];
};
/* Walks the whole log; returns 0 (inspect r) or a negative errno when the store failed. */
int audit_verify(struct store *st, struct audit_verify_result *r);

#endif

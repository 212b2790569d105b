/*
 * The hash-chained audit log. Every entry's hash covers the previous entry's hash and all of its
 * own fields, so editing or deleting a row breaks the chain at that point, which audit_verify
 * reports. Appending must happen inside the caller's store write transaction, so the entry
 * lands with the change it describes. The chain alone cannot show that its newest rows were
 * removed or that the whole chain was rehashed after an edit: signed checkpoints of its head
 * (audit_ckpt.c; made by service/checkpoint.c) can.
 */
#ifndef CLEAVE_AUDIT_H
#define CLEAVE_AUDIT_H

#include "crypto.h"
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

/*
 * ---- checkpoints: the chain's head signed with the audit key (wire-formats.md §6) ----
 * A checkpoint says "entry seq exists and has hash head_hash", signed by a key that is not in
 * the database. Records are AUDIT_CKPT_LEN (160) bytes: a 96-byte body and its signature.
 */
#define AUDIT_CKPT_BODY_LEN 96
#define AUDIT_CKPT_LINE_MAX 512 /* one line of the checkpoint file, with its newline */

struct audit_ckpt {
	int64_t seq;           /* the head entry's seq, which is also the number of entries */
	int64_t at_ms;         /* when the server made the checkpoint */
	uint8_t head_hash[32]; /* that entry's hash */
	uint8_t key[32];       /* the audit key's public half */
};

/* Encodes c (c->key is ignored: key's own public half is written) and signs it. 0 or -EIO. */
int audit_ckpt_sign(const struct ed25519_key *key, const struct audit_ckpt *c,
		    uint8_t out[AUDIT_CKPT_LEN]);
/*
 * Decodes rec and checks that it was signed by pub. 0 and *out filled; -EINVAL when it is not
 * a well-formed record; -EBADMSG when it names another key or its signature does not verify.
 */
int audit_ckpt_open(const uint8_t rec[AUDIT_CKPT_LEN], const uint8_t pub[32],
		    struct audit_ckpt *out);
/* The checkpoint file's line for rec: "BASE64 seq=N at=ISO-TIME head=HEX\n". 0 or -ENOSPC. */
int audit_ckpt_line(const uint8_t rec[AUDIT_CKPT_LEN], char *dst, size_t cap);
/*
 * Appends rec's line to the checkpoint file path (created with mode 0600), with O_APPEND and
 * fsync, so a line once written survives a crash. 0 or -errno (logged with the path).
 */
int audit_ckpt_file_append(const char *path, const uint8_t rec[AUDIT_CKPT_LEN]);
/*
 * Calls fn for each line of the checkpoint file in order, with the record, or NULL when the
 * line is not exactly what audit_ckpt_line writes. fn returning non-zero stops the walk and is
 * passed back. -ENOENT when the file does not exist; -EIO when it cannot be read (logged).
 */
typedef int (*audit_ckpt_line_fn)(void *ctx, long lineno, const uint8_t *rec);
int audit_ckpt_file_iter(const char *path, audit_ckpt_line_fn fn, void *ctx);

struct audit_ckpt_result {
	int ok;                 /* every checkpoint verifies and matches the chain */
	int64_t db_count;       /* checkpoints in the database */
	int64_t file_count;     /* lines in the checkpoint file */
	struct audit_ckpt last; /* the newest valid checkpoint; seq 0 when none */
	int64_t first_bad_seq;  /* when !ok: the first entry that may be wrong; 0 when unknown */
	char problem[256];      /* when !ok: what is wrong, in words */
};
/*
 * Checks every checkpoint in the database and in the checkpoint file (NULL: none): its
 * signature by pub, and that the entry it names still exists with the hash it names. A
 * missing entry means the newest entries were deleted; a different hash means the chain was
 * rewritten at or before that entry. Also reports a file that is missing while the database
 * has checkpoints, and a file newer than the database (checkpoint rows deleted). Returns 0
 * (inspect r) or a negative errno when the store or the file could not be read.
 */
int audit_verify_checkpoints(struct store *st, const uint8_t pub[32], const char *file,
			     struct audit_ckpt_result *r);

#endif

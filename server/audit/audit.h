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

/*
 * Appends the n entries of e in order, each chained to the one before it exactly as n calls of
 * audit_append would chain them: fills seq, prev_hash and hash (the callers set the text fields
 * and at_ms). Needs the store's audit_insert_many; inside the caller's write transaction.
 */
int audit_append_many(struct store *st, struct audit_entry *e, size_t n);

/* Computes the hash of e from e->prev_hash and its fields (exposed for tests). */
void audit_hash(const struct audit_entry *e, uint8_t out[32]);

struct audit_verify_result {
	int64_t entries;
	int64_t first_bad_seq; /* 0 when the chain is intact */
	char problem[128];
};
/*
 * Walks the whole log in ranges of AUDIT_WALK_CHUNK entries; returns 0 (inspect r) or a
 * negative errno when the store failed.
 */
int audit_verify(struct store *st, struct audit_verify_result *r);

/*
 * A walk of the chain that stops and goes on: the entries up to seq are verified and the last
 * of them has hash. A zeroed walk starts at the chain's start; one set to (seq, hash) of an
 * entry verified earlier goes on from there (incremental verification).
 */
#define AUDIT_WALK_CHUNK 10000
struct audit_walk {
	int64_t seq;           /* the last entry verified; 0: none */
	uint8_t hash[32];      /* its hash; zero at seq 0 */
	int64_t checked;       /* entries read by this walk */
	int64_t first_bad_seq; /* 0 while no problem was found */
	char problem[128];
};
/*
 * Verifies up to max entries after w->seq, in one read of the store. *done is set once the
 * chain's end is reached or a problem was found (w->first_bad_seq). 0 or a negative errno.
 */
int audit_walk_more(struct store *st, struct audit_walk *w, size_t max, int *done);
/*
 * Checks that entry w->seq still exists, still has hash w->hash and its fields still hash to
 * it: the anchor an incremental walk starts from. A problem is recorded in w. 0 or -errno.
 */
int audit_walk_anchor(struct store *st, struct audit_walk *w);

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
/* Where a walk of the checkpoint file stopped: the byte after its last line, and the file. */
struct audit_ckpt_file_pos {
	int64_t off;
	long line;
	uint64_t dev, ino;
};
/*
 * audit_ckpt_file_iter from pos (zeroed: the start), moving pos past the lines walked. A file
 * that is another one now (device, inode) or shorter than pos is walked from its start, and
 * *restarted set.
 */
int audit_ckpt_file_iter_from(const char *path, struct audit_ckpt_file_pos *pos, int *restarted,
			      audit_ckpt_line_fn fn, void *ctx);

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

/*
 * What walks of the checkpoints found so far, kept between calls so that each call reads only
 * the checkpoints made since (zeroed: none walked yet). Findings stay until it is zeroed.
 */
struct audit_ckpt_walk {
	int64_t db_id; /* the last checkpoint row walked */
	struct audit_ckpt_file_pos file_pos;
	int64_t db_count, file_count;
	struct audit_ckpt last;     /* the newest valid checkpoint */
	char bad[96];               /* the first record that is not a valid checkpoint */
	int64_t good_max;           /* the highest seq whose entry still had the named hash */
	struct audit_ckpt mismatch; /* the lowest seq whose entry had another hash; seq 0: none */
	struct audit_ckpt missing;  /* the highest seq whose entry was gone; seq 0: none */
	int64_t db_last_ms;         /* newest valid checkpoint in the database */
	struct audit_ckpt file_last;
};
/*
 * audit_verify_checkpoints for the checkpoints added since the walk f (rows after f->db_id,
 * file lines after f->file_pos), plus the newest checkpoint's entry again. What it cannot see:
 * an older checkpoint's entry changed or deleted after its walk, or older checkpoint rows or
 * lines changed in place; a zeroed f (a full check) sees those.
 */
int audit_verify_checkpoints_more(struct store *st, const uint8_t pub[32], const char *file,
				  struct audit_ckpt_walk *f, struct audit_ckpt_result *r);

#endif

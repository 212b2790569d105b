/*
 * The agent's small on-disk records (identity, state, journal entries): a text file of
 * "key value" lines that opens with a magic line and ends with "sha256 <hex>" over everything
 * before it. Written atomically with mode 0600 (common/fileio.h); read strictly: a file that is
 * too large, has a bad checksum, an unknown shape or loose permissions is refused with a logged
 * reason, never repaired or reset. It does not know what the keys mean.
 */
#ifndef CLEAVE_AGENT_KVFILE_H
#define CLEAVE_AGENT_KVFILE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define KV_FILE_MAX  8192 /* bytes, including the checksum line */
#define KV_PAIRS_MAX 32
#define KV_KEY_MAX   24 /* including NUL */

struct kv_pair {
	char key[KV_KEY_MAX];
	const char *val; /* points into kv->buf */
};

struct kv {
	char *buf; /* owned; freed by kv_free */
	size_t n;
	struct kv_pair p[KV_PAIRS_MAX];
};

/*
 * Checks that path is a regular file owned by us with no group or other permissions.
 * Returns 0, -ENOENT, or -EPERM (logged, with the chmod that fixes it).
 */
int kv_check_private(const char *path) __must_check;

/*
 * Loads path (see the file comment). kv is filled on success and must be released with
 * kv_free. Returns 0, -ENOENT (missing: not logged), -EPERM (permissions), -EBADMSG (corrupt:
 * logged with the reason), or another -errno.
 */
int kv_load(const char *path, const char *magic, struct kv *kv) __must_check;
void kv_free(struct kv *kv);

/* The value of key, borrowed from kv; NULL when absent. */
const char *kv_get(const struct kv *kv, const char *key);
/* Parses key as a decimal u64 / i64; -ENOENT when absent, -EINVAL when not canonical. */
int kv_get_u64(const struct kv *kv, const char *key, uint64_t *out);
int kv_get_i64(const struct kv *kv, const char *key, int64_t *out);
/* Copies key's value into out (cap bytes); -ENOENT absent, -ENOSPC too long. */
int kv_get_str(const struct kv *kv, const char *key, char *out, size_t cap);
/* Decodes key's base64 value into exactly n bytes of out; -ENOENT or -EINVAL. */
int kv_get_b64(const struct kv *kv, const char *key, void *out, size_t n);

/* Replaces every byte of s outside printable ASCII with '?', so any text can be a value. */
void kv_sanitize(char *s);

/* A record being written; lives on the caller's stack. */
struct kv_writer {
	char buf[KV_FILE_MAX];
	size_t len;
	int bad; /* a value did not fit or was not one printable line */
};

void kvw_init(struct kv_writer *w, const char *magic);
/* Adds "key value"; value must be printable ASCII without newlines (else the commit fails). */
void kvw_str(struct kv_writer *w, const char *key, const char *val);
void kvw_u64(struct kv_writer *w, const char *key, uint64_t v);
void kvw_i64(struct kv_writer *w, const char *key, int64_t v);
void kvw_b64(struct kv_writer *w, const char *key, const void *data, size_t n);
/* Appends the checksum and replaces path atomically with mode 0600. 0 or -errno. */
int kvw_commit(struct kv_writer *w, const char *path) __must_check;

#endif

/*
 * Checksummed key-value records. The checksum is there to tell a torn or edited file from a
 * good one (writes are atomic, so a torn file means a disk or a person changed it); it is not a
 * MAC and protects nothing against someone who can write the agent's directory.
 */
#include "kvfile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "b64.h"
#include "crypto.h"
#include "fileio.h"
#include "log.h"

#define SUM_KEY "sha256 "

int
kv_check_private(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		log_err("%s must be a regular file owned by uid %u", path, (unsigned)geteuid());
		return -EPERM;
	}
	if ((st.st_mode & 077) != 0) {
		log_err("%s has mode %04o; it must be private (chmod 600 %s)", path,
			(unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

static int
corrupt(const char *path, const char *why)
{
	log_err("%s is corrupt (%s); refusing to use it. It is left in place: a person must "
		"decide what it held before moving it away",
		path, why);
	return -EBADMSG;
}

static int
printable_line(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}

/* Splits the lines between the magic and the checksum into pairs (in place). */
static int
kv_split(const char *path, struct kv *kv, char *p, char *end)
{
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *sp;
		size_t klen;

		if (nl == NULL || !printable_line(p, (size_t)(nl - p)))
			return corrupt(path, "a line is not printable text");
		*nl = '\0';
		sp = strchr(p, ' ');
		klen = sp ? (size_t)(sp - p) : 0;
		if (sp == NULL || klen == 0 || klen >= KV_KEY_MAX)
			return corrupt(path, "a line is not \"key value\"");
		if (kv->n == KV_PAIRS_MAX)
			return corrupt(path, "too many lines");
		memcpy(kv->p[kv->n].key, p, klen);
		kv->p[kv->n].key[klen] = '\0';
		for (size_t i = 0; i < kv->n; i++)
			if (strcmp(kv->p[i].key, kv->p[kv->n].key) == 0)
				return corrupt(path, "a key appears twice");
		kv->p[kv->n++].val = sp + 1;
		p = nl + 1;
	}
	return 0;
}

int
kv_load(const char *path, const char *magic, struct kv *kv)
{
	size_t len = 0, mlen = strlen(magic), body;
	uint8_t sum[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	char *tail;
	int r;

	memset(kv, 0, sizeof(*kv));
	r = kv_check_private(path);
	if (r != 0)
		return r;
	kv->buf = file_read_all(path, KV_FILE_MAX, &len);
	if (kv->buf == NULL) {
		r = -errno;
		if (r == -EFBIG)
			return corrupt(path, "larger than any record the agent writes");
		log_errno(-r, "cannot read %s", path);
		return r;
	}
	if (len < mlen + 1 || memcmp(kv->buf, magic, mlen) != 0 || kv->buf[mlen] != '\n') {
		kv_free(kv);
		return corrupt(path, "it does not start with the expected header");
	}
	/* The checksum line is the last line: "sha256 " + 64 hex + "\n". */
	body = len >= sizeof(SUM_KEY) - 1 + 2 * SHA256_LEN + 1
		       ? len - (sizeof(SUM_KEY) - 1 + 2 * SHA256_LEN + 1)
		       : 0;
	tail = kv->buf + body;
	if (body <= mlen || tail[-1] != '\n' || memcmp(tail, SUM_KEY, sizeof(SUM_KEY) - 1) != 0 ||
	    kv->buf[len - 1] != '\n') {
		kv_free(kv);
		return corrupt(path, "the checksum line is missing");
	}
	crypto_sha256(kv->buf, body, sum);
	hex_encode(hex, sizeof(hex), sum, sizeof(sum));
	if (memcmp(tail + sizeof(SUM_KEY) - 1, hex, 2 * SHA256_LEN) != 0) {
		kv_free(kv);
		return corrupt(path, "the checksum does not match its contents");
	}
	r = kv_split(path, kv, kv->buf + mlen + 1, tail);
	if (r != 0)
		kv_free(kv);
	return r;
}

void
kv_free(struct kv *kv)
{
	if (kv == NULL)
		return;
	if (kv->buf != NULL)
		secure_zero(kv->buf, strlen(kv->buf));
	free(kv->buf);
	memset(kv, 0, sizeof(*kv));
}

const char *
kv_get(const struct kv *kv, const char *key)
{
	for (size_t i = 0; i < kv->n; i++)
		if (strcmp(kv->p[i].key, key) == 0)
			return kv->p[i].val;
	return NULL;
}

int
kv_get_u64(const struct kv *kv, const char *key, uint64_t *out)
{
	const char *v = kv_get(kv, key);
	uint64_t x = 0;

	if (v == NULL)
		return -ENOENT;
	if (v[0] == '\0' || (v[0] == '0' && v[1] != '\0'))
		return -EINVAL;
	for (const char *p = v; *p; p++) {
		if (*p < '0' || *p > '9' || x > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
			return -EINVAL;
		x = x * 10 + (uint64_t)(*p - '0');
	}
	*out = x;
	return 0;
}

int
kv_get_i64(const struct kv *kv, const char *key, int64_t *out)
{
	const char *v = kv_get(kv, key);
	struct kv one = {.n = 1};
	uint64_t x;
	int r;

	if (v == NULL)
		return -ENOENT;
	one.p[0].val = v[0] == '-' ? v + 1 : v;
	r = kv_get_u64(&one, "", &x);
	if (r != 0 || x > (uint64_t)INT64_MAX || (v[0] == '-' && x == 0))
		return -EINVAL;
	*out = v[0] == '-' ? -(int64_t)x : (int64_t)x;
	return 0;
}

int
kv_get_str(const struct kv *kv, const char *key, char *out, size_t cap)
{
	const char *v = kv_get(kv, key);

	if (v == NULL)
		return -ENOENT;
	return str_copy(out, cap, v) == 0 ? 0 : -ENOSPC;
}

int
kv_get_b64(const struct kv *kv, const char *key, void *out, size_t n)
{
	const char *v = kv_get(kv, key);

	if (v == NULL)
		return -ENOENT;
	return b64_decode(out, n, v, strlen(v)) == (long)n ? 0 : -EINVAL;
}

void
kv_sanitize(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

void
kvw_init(struct kv_writer *w, const char *magic)
{
	w->len = 0;
	w->bad = 0;
	kvw_str(w, NULL, magic);
}

/* Appends "key value\n" (or "value\n" without a key). */
void
kvw_str(struct kv_writer *w, const char *key, const char *val)
{
	int n;

	if (w->bad || !printable_line(val, strlen(val)) || (key && strchr(key, ' '))) {
		w->bad = 1;
		return;
	}
	n = snprintf(w->buf + w->len, sizeof(w->buf) - w->len, "%s%s%s\n", key ? key : "",
		     key ? " " : "", val);
	if (n < 0 || (size_t)n >= sizeof(w->buf) - w->len)
		w->bad = 1;
	else
		w->len += (size_t)n;
}

void
kvw_u64(struct kv_writer *w, const char *key, uint64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRIu64, v);
	kvw_str(w, key, s);
}

void
kvw_i64(struct kv_writer *w, const char *key, int64_t v)
{
	char s[24];

	snprintf(s, sizeof(s), "%" PRId64, v);
	kvw_str(w, key, s);
}

void
kvw_b64(struct kv_writer *w, const char *key, const void *data, size_t n)
{
	char s[1024];

	if (b64_encode(s, sizeof(s), data, n) < 0) {
		w->bad = 1;
		return;
	}
	kvw_str(w, key, s);
}

int
kvw_commit(struct kv_writer *w, const char *path)
{
	uint8_t sum[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1];
	int r;

	if (w->bad) {
		log_err("cannot write %s: a value does not fit the record", path);
		return -EINVAL;
	}
	crypto_sha256(w->buf, w->len, sum);
	hex_encode(hex, sizeof(hex), sum, sizeof(sum));
	kvw_str(w, "sha256", hex);
	if (w->bad) {
		log_err("cannot write %s: the record is too large", path);
		return -EINVAL;
	}
	r = file_write_atomic(path, w->buf, w->len, 0600);
	secure_zero(w->buf, w->len);
	return r;
}

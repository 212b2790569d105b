/*
 * Checkpoints of the audit chain: the 160-byte CLVCKPT1 record (schema/wire-formats.md §6)
 * that signs "entry seq has hash H" with the audit key, the checkpoint file that keeps a copy of
 * every record outside the database, and the check of both against the chain. Deciding when to
 * make a checkpoint and holding the key are the service's job (service/checkpoint.c).
 */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "le.h"
#include "log.h"

#define CKPT_MAGIC   "CLVCKPT1"
#define CKPT_VERSION 1
/* A bound on the walk of the checkpoint file: 100 years of one checkpoint a minute. */
#define CKPT_FILE_MAX_LINES 60000000L

int
audit_ckpt_sign(const struct ed25519_key *key, const struct audit_ckpt *c,
		uint8_t out[AUDIT_CKPT_LEN])
{
	memset(out, 0, AUDIT_CKPT_LEN);
	memcpy(out, CKPT_MAGIC, 8);
	put16(out + 8, CKPT_VERSION);
	put64(out + 16, (uint64_t)c->seq);
	put64(out + 24, (uint64_t)c->at_ms);
	memcpy(out + 32, c->head_hash, 32);
	ed25519_key_public(key, out + 64);
	return ed25519_key_sign(key, out, AUDIT_CKPT_BODY_LEN, out + AUDIT_CKPT_BODY_LEN) == 0
		       ? 0
		       : -EIO;
}

int
audit_ckpt_open(const uint8_t rec[AUDIT_CKPT_LEN], const uint8_t pub[32], struct audit_ckpt *out)
{
	static const uint8_t zero[6];
	uint64_t seq = get64(rec + 16), at = get64(rec + 24);

	if (memcmp(rec, CKPT_MAGIC, 8) != 0 || get16(rec + 8) != CKPT_VERSION ||
	    memcmp(rec + 10, zero, sizeof(zero)) != 0 || seq < 1 || seq > INT64_MAX ||
	    at > INT64_MAX)
		return -EINVAL;
	if (memcmp(rec + 64, pub, 32) != 0 ||
	    ed25519_verify(pub, rec, AUDIT_CKPT_BODY_LEN, rec + AUDIT_CKPT_BODY_LEN) != 0)
		return -EBADMSG;
	out->seq = (int64_t)seq;
	out->at_ms = (int64_t)at;
	memcpy(out->head_hash, rec + 32, 32);
	memcpy(out->key, rec + 64, 32);
	return 0;
}

/* "2026-12-02T17:47:05.123Z" */
static void
iso_ms(int64_t ms, char *dst, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL)
		memset(&tm, 0, sizeof(tm));
	snprintf(dst, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

int
audit_ckpt_line(const uint8_t rec[AUDIT_CKPT_LEN], char *dst, size_t cap)
{
	char b64[224], head[65], at[40]; /* 160 bytes are 216 base64 characters */
	int n;

	if (b64_encode(b64, sizeof(b64), rec, AUDIT_CKPT_LEN) < 0)
		return -ENOSPC;
	hex_encode(head, sizeof(head), rec + 32, 32);
	iso_ms((int64_t)get64(rec + 24), at, sizeof(at));
	n = snprintf(dst, cap, "%s seq=%llu at=%s head=%s\n", b64,
		     (unsigned long long)get64(rec + 16), at, head);
	return n > 0 && (size_t)n < cap ? 0 : -ENOSPC;
}

/* fsync of the directory holding path, so that a file just created there survives a crash. */
static int
sync_parent(const char *path)
{
	char dir[4096] = ".";
	const char *slash = strrchr(path, '/');
	int fd, r = 0;

	if (slash == path) {
		dir[0] = '/';
	} else if (slash != NULL) {
		if ((size_t)(slash - path) >= sizeof(dir))
			return -ENAMETOOLONG;
		memcpy(dir, path, (size_t)(slash - path));
		dir[slash - path] = '\0';
	}
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) != 0)
		r = -errno;
	if (fd >= 0)
		close(fd);
	return r;
}

/* Writes all n bytes (O_APPEND: each write lands at the end); 0 or -errno. */
static int
write_all(int fd, const char *p, size_t n)
{
	/* Bounded: every round writes at least one byte or fails. */
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/*
 * A line cut short by a crash would swallow the next one; start a new line first. The cut
 * line stays, and verification reports it as not a checkpoint.
 */
static int
end_torn_line(int fd)
{
	struct stat sb;
	char last = '\n';

	if (fstat(fd, &sb) != 0)
		return -errno;
	if (sb.st_size > 0 && pread(fd, &last, 1, sb.st_size - 1) != 1)
		return -EIO;
	return last == '\n' ? 0 : write_all(fd, "\n", 1);
}

int
audit_ckpt_file_append(const char *path, const uint8_t rec[AUDIT_CKPT_LEN])
{
	char line[AUDIT_CKPT_LINE_MAX];
	int created = access(path, F_OK) != 0, fd, r;

	r = audit_ckpt_line(rec, line, sizeof(line));
	if (r != 0)
		return r;
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		log_errno(-r, "audit: cannot open the checkpoint file %s", path);
		return r;
	}
	r = end_torn_line(fd);
	if (r == 0)
		r = write_all(fd, line, strlen(line));
	if (r == 0 && fsync(fd) != 0)
		r = -errno;
	close(fd);
	if (r == 0 && created)
		r = sync_parent(path);
	if (r != 0)
		log_errno(-r, "audit: cannot append to the checkpoint file %s", path);
	return r;
}

/* The record of one line, when the line is exactly what audit_ckpt_line makes of it. */
static int
parse_line(const char *line, uint8_t rec[AUDIT_CKPT_LEN])
{
	char again[AUDIT_CKPT_LINE_MAX];
	const char *sp = strchr(line, ' ');

	if (sp == NULL ||
	    b64_decode(rec, AUDIT_CKPT_LEN, line, (size_t)(sp - line)) != AUDIT_CKPT_LEN)
		return -EINVAL;
	if (audit_ckpt_line(rec, again, sizeof(again)) != 0 || strcmp(again, line) != 0)
		return -EINVAL;
	return 0;
}

/* Opens path at pos, or at its start when it is another file now or shorter than pos. */
static FILE *
open_at(const char *path, struct audit_ckpt_file_pos *pos, int *restarted)
{
	FILE *f = fopen(path, "re");
	struct stat sb;

	*restarted = 0;
	if (f == NULL)
		return NULL;
	if (fstat(fileno(f), &sb) != 0) {
		fclose(f);
		return NULL;
	}
	if (pos->off > 0 && ((uint64_t)sb.st_dev != pos->dev || (uint64_t)sb.st_ino != pos->ino ||
			     sb.st_size < pos->off)) {
		*restarted = 1;
		pos->off = 0;
		pos->line = 0;
	}
	pos->dev = (uint64_t)sb.st_dev;
	pos->ino = (uint64_t)sb.st_ino;
	if (pos->off > 0 && fseeko(f, (off_t)pos->off, SEEK_SET) != 0) {
		fclose(f);
		return NULL;
	}
	return f;
}

int
audit_ckpt_file_iter_from(const char *path, struct audit_ckpt_file_pos *pos, int *restarted,
			  audit_ckpt_line_fn fn, void *ctx)
{
	char line[AUDIT_CKPT_LINE_MAX];
	uint8_t rec[AUDIT_CKPT_LEN];
	FILE *f = open_at(path, pos, restarted);
	int r = 0, longline = 0;

	if (f == NULL) {
		if (errno == ENOENT)
			return -ENOENT;
		log_errno(errno, "audit: cannot read the checkpoint file %s", path);
		return -EIO;
	}
	while (r == 0 && pos->line < CKPT_FILE_MAX_LINES && fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);
		int whole = n > 0 && line[n - 1] == '\n';

		pos->off = (int64_t)ftello(f);
		/* A line longer than the buffer arrives in pieces: one bad line, not several. */
		if (longline) {
			longline = !whole;
			continue;
		}
		longline = !whole && !feof(f);
		pos->line++;
		r = fn(ctx, pos->line, parse_line(line, rec) == 0 ? rec : NULL);
	}
	if (r == 0 && ferror(f)) {
		log_err("audit: error reading the checkpoint file %s", path);
		r = -EIO;
	}
	fclose(f);
	return r;
}

int
audit_ckpt_file_iter(const char *path, audit_ckpt_line_fn fn, void *ctx)
{
	struct audit_ckpt_file_pos pos = {0};
	int restarted;

	return audit_ckpt_file_iter_from(path, &pos, &restarted, fn, ctx);
}

/* ---- verification ---- */

/* One walk: the findings kept across calls (f) and what this call needs. */
struct ckpt_walk {
	struct store *st;
	const uint8_t *pub;
	struct audit_ckpt_walk *f;
	int store_err; /* a store failure met while walking the file */
};

enum file_state { FILE_READ, FILE_MISSING, FILE_UNREADABLE };

/* Does the entry c names still exist with the hash c names? */
static int
check_entry(struct ckpt_walk *w, const struct audit_ckpt *c)
{
	struct audit_ckpt_walk *f = w->f;
	struct audit_entry e;
	int r = w->st->ops->audit_get(w->st, c->seq, &e);

	if (r == -ENOENT) {
		if (c->seq > f->missing.seq)
			f->missing = *c;
		return 0;
	}
	if (r != 0)
		return r;
	if (memcmp(e.hash, c->head_hash, 32) != 0) {
		if (f->mismatch.seq == 0 || c->seq < f->mismatch.seq)
			f->mismatch = *c;
	} else if (c->seq > f->good_max) {
		f->good_max = c->seq;
	}
	return 0;
}

static int
check_record(struct ckpt_walk *w, const uint8_t *rec, int in_file, long idx)
{
	struct audit_ckpt_walk *f = w->f;
	struct audit_ckpt c;

	if (rec == NULL || audit_ckpt_open(rec, w->pub, &c) != 0) {
		if (f->bad[0] == '\0')
			snprintf(f->bad, sizeof(f->bad),
				 in_file ? "line %ld of the checkpoint file" : "checkpoint row %ld",
				 idx);
		return 0;
	}
	if (c.at_ms >= f->last.at_ms)
		f->last = c;
	if (in_file && c.at_ms >= f->file_last.at_ms)
		f->file_last = c;
	if (!in_file && c.at_ms > f->db_last_ms)
		f->db_last_ms = c.at_ms;
	return check_entry(w, &c);
}

static int
db_one(void *ctx, const struct audit_ckpt_row *row)
{
	struct ckpt_walk *w = ctx;

	w->f->db_count++;
	w->f->db_id = row->id;
	return check_record(w, row->record, 0, (long)row->id);
}

static int
file_one(void *ctx, long lineno, const uint8_t *rec)
{
	struct ckpt_walk *w = ctx;

	w->f->file_count++;
	w->store_err = check_record(w, rec, 1, lineno);
	return w->store_err != 0;
}

/* Entries after the head were deleted (or, below it, one the chain walk also reports). */
static int
judge_missing(struct ckpt_walk *w, struct audit_ckpt_result *r)
{
	struct audit_ckpt_walk *f = w->f;
	struct audit_entry head;
	char at[40];
	int64_t h = 0;
	int rc = w->st->ops->audit_last(w->st, &head);

	if (rc == 0)
		h = head.seq;
	else if (rc != -ENOENT)
		return rc;
	iso_ms(f->missing.at_ms, at, sizeof(at));
	if (f->missing.seq > h) {
		r->first_bad_seq = h + 1;
		snprintf(r->problem, sizeof(r->problem),
			 "entries after %lld were deleted: the checkpoint of %s names entry %lld",
			 (long long)h, at, (long long)f->missing.seq);
	} else {
		r->first_bad_seq = f->missing.seq;
		snprintf(r->problem, sizeof(r->problem),
			 "entry %lld, named by the checkpoint of %s, was deleted",
			 (long long)f->missing.seq, at);
	}
	return 0;
}

static void
judge_mismatch(const struct audit_ckpt_walk *f, struct audit_ckpt_result *r)
{
	char at[40], since[64] = "";

	iso_ms(f->mismatch.at_ms, at, sizeof(at));
	r->first_bad_seq = f->good_max < f->mismatch.seq ? f->good_max + 1 : f->mismatch.seq;
	if (r->first_bad_seq > 1)
		snprintf(since, sizeof(since), " and after entry %lld",
			 (long long)r->first_bad_seq - 1);
	snprintf(r->problem, sizeof(r->problem),
		 "the chain was rewritten at or before entry %lld%s: that entry no longer "
		 "has the hash its checkpoint of %s names",
		 (long long)f->mismatch.seq, since, at);
}

static int
judge(struct ckpt_walk *w, const char *file, enum file_state fs, struct audit_ckpt_result *r)
{
	const struct audit_ckpt_walk *f = w->f;
	char at[40];

	r->ok = 0;
	r->db_count = f->db_count;
	r->file_count = f->file_count;
	r->last = f->last;
	if (f->bad[0] != '\0') {
		snprintf(r->problem, sizeof(r->problem),
			 "%s is not a checkpoint signed by the audit key", f->bad);
	} else if (f->mismatch.seq != 0) {
		judge_mismatch(f, r);
	} else if (f->missing.seq != 0) {
		return judge_missing(w, r);
	} else if (fs == FILE_MISSING && f->db_count > 0) {
		snprintf(r->problem, sizeof(r->problem), "the checkpoint file %s is missing", file);
	} else if (fs == FILE_UNREADABLE) {
		snprintf(r->problem, sizeof(r->problem), "the checkpoint file %s cannot be read",
			 file);
	} else if (f->file_last.seq != 0 && f->file_last.at_ms > f->db_last_ms) {
		iso_ms(f->file_last.at_ms, at, sizeof(at));
		snprintf(r->problem, sizeof(r->problem),
			 "the checkpoint of %s (entry %lld) is in the checkpoint file but not in "
			 "the database: checkpoint rows were deleted",
			 at, (long long)f->file_last.seq);
	} else {
		r->ok = 1;
	}
	return 0;
}

/* The file from where the last walk stopped; a file replaced or cut short is walked again. */
static enum file_state
walk_file(struct ckpt_walk *w, const char *file, int *rc)
{
	struct audit_ckpt_walk *f = w->f;
	struct audit_ckpt_file_pos pos = f->file_pos;
	int restarted = 0, r;

	if (pos.off > 0) {
		/* A restart is known only once the file is opened; count from zero then. */
		struct audit_ckpt_walk keep = *f;

		r = audit_ckpt_file_iter_from(file, &pos, &restarted, file_one, w);
		if (restarted) {
			*f = keep;
			f->file_count = 0;
			memset(&f->file_last, 0, sizeof(f->file_last));
			pos = (struct audit_ckpt_file_pos){0};
			r = audit_ckpt_file_iter_from(file, &pos, &restarted, file_one, w);
		}
	} else {
		r = audit_ckpt_file_iter_from(file, &pos, &restarted, file_one, w);
	}
	f->file_pos = pos;
	*rc = w->store_err;
	/* The file is the operator's; trouble with it is a finding, not a failure. */
	return r == 0 ? FILE_READ : r == -ENOENT ? FILE_MISSING : FILE_UNREADABLE;
}

int
audit_verify_checkpoints_more(struct store *st, const uint8_t pub[32], const char *file,
			      struct audit_ckpt_walk *f, struct audit_ckpt_result *r)
{
	struct ckpt_walk w = {.st = st, .pub = pub, .f = f};
	enum file_state fs = FILE_READ;
	int rc;

	memset(r, 0, sizeof(*r));
	rc = st->ops->audit_ckpt_iter_after(st, f->db_id, db_one, &w);
	if (rc == 0 && file != NULL)
		fs = walk_file(&w, file, &rc);
	/* The newest checkpoint is checked on every call: deleting entries after it shows. */
	if (rc == 0 && f->last.seq != 0)
		rc = check_entry(&w, &f->last);
	return rc != 0 ? rc : judge(&w, file, fs, r);
}

int
audit_verify_checkpoints(struct store *st, const uint8_t pub[32], const char *file,
			 struct audit_ckpt_result *r)
{
	struct audit_ckpt_walk f;

	memset(&f, 0, sizeof(f));
	return audit_verify_checkpoints_more(st, pub, file, &f, r);
}

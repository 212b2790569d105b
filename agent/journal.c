/*
 * Journal records as kvfiles. Each record is replaced whole (temp file, fsync, rename), so a
 * crash leaves either the previous state or the next one. Leftover temp files of a crashed
 * write are removed when the journal is listed.
 */
#include "journal.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvfile.h"
#include "log.h"

#define JOURNAL_MAGIC "cleave-agent command 1"
#define JOURNAL_EXT   ".cmd"

static const char *const state_names[] = {"?", "received", "executing", "done", "reported"};

const char *
journal_state_name(int state)
{
	return state >= JS_RECEIVED && state <= JS_REPORTED ? state_names[state] : "?";
}

int
journal_id_ok(const char *id)
{
	size_t n = strlen(id);

	if (n == 0 || n >= AGENT_ID_MAX || id[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= 'A' && id[i] <= 'Z') ||
		      (id[i] >= '0' && id[i] <= '9') || id[i] == '_' || id[i] == '-' ||
		      id[i] == '.'))
			return 0;
	return 1;
}

int
journal_open(struct journal *j, const struct agent_dir *d)
{
	struct stat st;
	int r = agent_dir_file(d, "journal", j->dir, sizeof(j->dir));

	if (r != 0)
		return r;
	if (mkdir(j->dir, 0700) != 0 && errno != EEXIST) {
		r = -errno;
		log_errno(-r, "cannot create %s", j->dir);
		return r;
	}
	if (lstat(j->dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 077) != 0) {
		log_err("%s must be a directory owned by us with mode 0700", j->dir);
		return -EPERM;
	}
	return 0;
}

static int
entry_path(const struct journal *j, const char *id, char *out, size_t cap)
{
	int n;

	if (!journal_id_ok(id))
		return -EINVAL;
	n = snprintf(out, cap, "%s/%s" JOURNAL_EXT, j->dir, id);
	return n > 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

int
journal_put(const struct journal *j, const struct journal_entry *e)
{
	struct kv_writer w;
	char p[PATH_MAX];
	int r = entry_path(j, e->id, p, sizeof(p));

	if (r != 0)
		return r;
	kvw_init(&w, JOURNAL_MAGIC);
	kvw_str(&w, "id", e->id);
	kvw_str(&w, "type", e->type);
	kvw_str(&w, "reason", e->reason);
	kvw_u64(&w, "counter", e->counter);
	kvw_b64(&w, "ticket", e->ticket, sizeof(e->ticket));
	kvw_str(&w, "state", journal_state_name(e->state));
	kvw_u64(&w, "acked", (uint64_t)(e->acked != 0));
	if (e->state >= JS_DONE) {
		kvw_str(&w, "outcome", e->completed ? "completed" : "failed");
		kvw_str(&w, "detail", e->detail);
	}
	if (e->has_receipt)
		kvw_b64(&w, "receipt", e->receipt, sizeof(e->receipt));
	kvw_i64(&w, "received_at", e->received_at);
	kvw_i64(&w, "updated_at", e->updated_at);
	kvw_u64(&w, "attempts", e->attempts);
	return kvw_commit(&w, p);
}

static int
parse_state(const char *s)
{
	for (int i = JS_RECEIVED; i <= JS_REPORTED; i++)
		if (s != NULL && strcmp(s, state_names[i]) == 0)
			return i;
	return 0;
}

static int
entry_parse(const struct kv *kv, const char *want_id, struct journal_entry *e)
{
	const char *outcome = kv_get(kv, "outcome");
	uint64_t acked = 0, attempts = 0;
	struct ticket tk;

	memset(e, 0, sizeof(*e));
	e->state = parse_state(kv_get(kv, "state"));
	if (kv_get_str(kv, "id", e->id, sizeof(e->id)) != 0 || strcmp(e->id, want_id) != 0 ||
	    kv_get_str(kv, "type", e->type, sizeof(e->type)) != 0 ||
	    kv_get_str(kv, "reason", e->reason, sizeof(e->reason)) != 0 ||
	    kv_get_u64(kv, "counter", &e->counter) != 0 ||
	    kv_get_b64(kv, "ticket", e->ticket, sizeof(e->ticket)) != 0 || e->state == 0 ||
	    kv_get_u64(kv, "acked", &acked) != 0 || acked > 1 ||
	    kv_get_i64(kv, "received_at", &e->received_at) != 0 ||
	    kv_get_i64(kv, "updated_at", &e->updated_at) != 0 ||
	    kv_get_u64(kv, "attempts", &attempts) != 0 || attempts > UINT32_MAX)
		return -EBADMSG;
	/* The ticket must be the one the record says, so a mixed-up record is refused. */
	if (ticket_decode(e->ticket, sizeof(e->ticket), &tk) != 0 ||
	    strcmp(tk.command_id, e->id) != 0 || tk.counter != e->counter ||
	    ticket_type_from_name(e->type) != tk.type)
		return -EBADMSG;
	e->acked = (int)acked;
	e->attempts = (uint32_t)attempts;
	if (e->state >= JS_DONE) {
		if (outcome == NULL ||
		    (strcmp(outcome, "completed") != 0 && strcmp(outcome, "failed") != 0) ||
		    kv_get_str(kv, "detail", e->detail, sizeof(e->detail)) != 0)
			return -EBADMSG;
		e->completed = strcmp(outcome, "completed") == 0;
	}
	if (kv_get(kv, "receipt") != NULL) {
		if (kv_get_b64(kv, "receipt", e->receipt, sizeof(e->receipt)) != 0)
			return -EBADMSG;
		e->has_receipt = 1;
	}
	return 0;
}

int
journal_get(const struct journal *j, const char *id, struct journal_entry *e)
{
	char p[PATH_MAX];
	struct kv kv;
	int r = entry_path(j, id, p, sizeof(p));

	if (r != 0)
		return r;
	r = kv_load(p, JOURNAL_MAGIC, &kv);
	if (r != 0)
		return r;
	r = entry_parse(&kv, id, e);
	kv_free(&kv);
	if (r != 0)
		log_err("%s is corrupt (a field is missing or does not match its ticket); refusing "
			"it",
			p);
	return r;
}

static int
by_counter(const void *a, const void *b)
{
	const struct journal_entry *x = a, *y = b;

	return x->counter < y->counter ? -1 : x->counter > y->counter;
}

/* The record id named by a directory entry, or 0 when the entry is not a record. */
static int
record_name(const struct journal *j, const char *name, char *id, size_t cap)
{
	size_t n = strlen(name), e = strlen(JOURNAL_EXT);
	char p[PATH_MAX + 256];

	if (name[0] == '.')
		return 0;
	if (strstr(name, JOURNAL_EXT ".tmp-") != NULL) {
		/* A write that a crash interrupted: the record itself is still the old one. */
		snprintf(p, sizeof(p), "%s/%s", j->dir, name);
		unlink(p);
		return 0;
	}
	if (n <= e || strcmp(name + n - e, JOURNAL_EXT) != 0 || n - e >= cap) {
		log_warn("%s/%s is not a journal record; ignoring it", j->dir, name);
		return 0;
	}
	memcpy(id, name, n - e);
	id[n - e] = '\0';
	return 1;
}

int
journal_list(const struct journal *j, struct journal_entry **out, size_t *n)
{
	struct journal_entry *v = NULL;
	char id[AGENT_ID_MAX];
	struct dirent *de;
	size_t k = 0, cap = 0;
	int r = 0;
	DIR *dir = opendir(j->dir);

	*out = NULL;
	*n = 0;
	if (dir == NULL) {
		r = -errno;
		log_errno(-r, "cannot open %s", j->dir);
		return r;
	}
	while (r == 0 && (de = readdir(dir)) != NULL) {
		if (!record_name(j, de->d_name, id, sizeof(id)))
			continue;
		if (k == JOURNAL_MAX) {
			log_err("%s holds more than %d records; refusing to guess which matter",
				j->dir, JOURNAL_MAX);
			r = -E2BIG;
			break;
		}
		if (k == cap) {
			struct journal_entry *nv;

			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (nv == NULL) {
				r = -ENOMEM;
				break;
			}
			v = nv;
		}
		r = journal_get(j, id, &v[k]);
		if (r == 0)
			k++;
	}
	closedir(dir);
	if (r != 0) {
		free(v);
		return r;
	}
	if (k > 0)
		qsort(v, k, sizeof(*v), by_counter);
	*out = v;
	*n = k;
	return 0;
}

int
journal_drop(const struct journal *j, const char *id)
{
	char p[PATH_MAX];
	int r = entry_path(j, id, p, sizeof(p));

	if (r != 0)
		return r;
	if (unlink(p) != 0 && errno != ENOENT) {
		r = -errno;
		log_errno(-r, "cannot remove %s", p);
	}
	return r;
}

void
journal_prune(const struct journal *j, int64_t now, int64_t keep_s)
{
	struct journal_entry *v;
	size_t n, kept = 0;

	if (journal_list(j, &v, &n) != 0)
		return;
	/* Newest first (by counter), so the count limit keeps the latest ones. */
	for (size_t i = n; i-- > 0;) {
		if (v[i].state != JS_REPORTED)
			continue;
		if (v[i].updated_at + keep_s < now || kept == JOURNAL_KEEP_DONE)
			journal_drop(j, v[i].id);
		else
			kept++;
	}
	free(v);
}

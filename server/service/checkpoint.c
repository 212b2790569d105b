/*
 * When audit checkpoints are made and where they go. Once a second (and at shutdown) the tick
 * reads the committed head of the audit chain; when it moved far or long enough since the last
 * checkpoint, the head is signed with the audit key, stored in the database and appended to the
 * checkpoint file outside it. Reading the head after its commit means a checkpoint never names
 * an entry that could still roll back. The record format and the checks are in audit/.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "log.h"

#define CKPT_DEFAULT_ENTRIES 100
#define CKPT_DEFAULT_S       300

struct svc_ckpt {
	const struct ed25519_key *key; /* borrowed */
	uint8_t pub[32];
	char *file;
	int64_t every_entries;
	int64_t every_ms;
	/* The newest checkpoint made or found at start (seq 0: none). */
	int64_t last_seq;
	int64_t last_ms;
	uint8_t last_hash[32];
	int failing; /* logged once until a checkpoint succeeds again */
	/* What checks of the checkpoints found so far: the next check reads only newer ones. */
	struct audit_ckpt_walk walk;
	/* Making a checkpoint (row, then file line) and checking them never interleave. */
	pthread_mutex_t lock;
};

static int
same_record(void *ctx, long lineno, const uint8_t *rec)
{
	(void)lineno;
	return rec != NULL && memcmp(rec, ctx, AUDIT_CKPT_LEN) == 0;
}

/*
 * Picks up the newest stored checkpoint and makes sure the file has it too: a crash between
 * the commit and the append, or a new file path, would otherwise leave the file behind. Trouble
 * with the file is logged, not fatal: the server must still start (to wipe a lost phone), and
 * verification reports a file it cannot read.
 */
static void
resume(struct svc_ckpt *k, const struct audit_ckpt_row *last)
{
	struct audit_ckpt c;
	int r;

	if (audit_ckpt_open(last->record, k->pub, &c) != 0) {
		/* Not ours: leave it for verification to report, start afresh. */
		log_warn("audit: the newest stored checkpoint is not signed by the audit key");
		return;
	}
	k->last_seq = c.seq;
	k->last_ms = c.at_ms;
	memcpy(k->last_hash, c.head_hash, 32);
	r = audit_ckpt_file_iter(k->file, same_record, (void *)last->record);
	if (r != 0 && r != -ENOENT)
		return; /* found it (1), or the file cannot be read (logged) */
	log_info("audit: adding the newest checkpoint (entry %lld) to %s", (long long)c.seq,
		 k->file);
	audit_ckpt_file_append(k->file, last->record);
}

int
service_set_audit_checkpoints(struct service *s, const struct ed25519_key *key,
			      const struct audit_ckpt_config *cfg)
{
	struct svc_ckpt *k = calloc(1, sizeof(*k));
	struct audit_ckpt_row last;
	int r;

	if (k == NULL || (k->file = strdup(cfg->file)) == NULL) {
		free(k);
		return -ENOMEM;
	}
	k->key = key;
	ed25519_key_public(key, k->pub);
	k->every_entries = cfg->every_entries > 0 ? cfg->every_entries : CKPT_DEFAULT_ENTRIES;
	k->every_ms = (cfg->every_s > 0 ? cfg->every_s : CKPT_DEFAULT_S) * 1000;
	pthread_mutex_init(&k->lock, NULL);
	svc_ckpt_free(s);
	s->ckpt = k;
	r = s->st->ops->audit_ckpt_last(s->st, &last);
	if (r == 0)
		resume(k, &last);
	return r == -ENOENT ? 0 : r;
}

int
svc_audit_key(const struct service *s, uint8_t pub[32])
{
	if (s->ckpt == NULL)
		return -ENOENT;
	memcpy(pub, s->ckpt->pub, 32);
	return 0;
}

static int
due(const struct svc_ckpt *k, const struct audit_entry *head, int64_t now, int force)
{
	if (head->seq == k->last_seq && memcmp(head->hash, k->last_hash, 32) == 0)
		return 0; /* the head did not move */
	return force || head->seq >= k->last_seq + k->every_entries ||
	       now >= k->last_ms + k->every_ms;
}

/* Signs head, stores the record, then appends it to the file. Called with k->lock held. */
static int
make(struct service *s, struct svc_ckpt *k, const struct audit_entry *head, int64_t now)
{
	struct audit_ckpt c = {.seq = head->seq, .at_ms = now};
	struct audit_ckpt_row row = {.seq = head->seq, .at_ms = now};
	int r;

	memcpy(c.head_hash, head->hash, 32);
	r = audit_ckpt_sign(k->key, &c, row.record);
	if (r == 0)
		r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return r;
	r = s->st->ops->audit_ckpt_insert(s->st, &row);
	if (r == 0)
		r = svc_ev_checkpoint(s, c.seq, c.head_hash);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		return r;
	}
	r = s->st->ops->tx_commit(s->st);
	if (r != 0)
		return r;
	/* Stored: later ticks measure from here even if the file append fails. */
	k->last_seq = c.seq;
	k->last_ms = now;
	memcpy(k->last_hash, c.head_hash, 32);
	return audit_ckpt_file_append(k->file, row.record);
}

void
svc_ckpt_tick(struct service *s, int force)
{
	struct svc_ckpt *k = s->ckpt;
	struct audit_entry head;
	int64_t now;
	int r;

	if (k == NULL)
		return;
	/*
	 * A full verification holds the lock while it checks every checkpoint (a second or so at
	 * 10,000); the tick does not wait for it: the next tick makes the checkpoint.
	 */
	if (force)
		pthread_mutex_lock(&k->lock);
	else if (pthread_mutex_trylock(&k->lock) != 0)
		return;
	now = service_now_ms(s);
	r = s->st->ops->audit_last(s->st, &head);
	if (r == 0 && due(k, &head, now, force))
		r = make(s, k, &head, now);
	if (r != 0 && r != -ENOENT && !k->failing)
		log_warn("audit: cannot make a checkpoint (%s); retrying every second",
			 strerror(-r));
	k->failing = r != 0 && r != -ENOENT;
	pthread_mutex_unlock(&k->lock);
}

int
svc_ckpt_report(struct service *s, int full, struct audit_report *rep)
{
	struct svc_ckpt *k = s->ckpt;
	struct audit_ckpt_result cr;
	int r;

	if (k == NULL)
		return 0;
	pthread_mutex_lock(&k->lock);
	if (full)
		memset(&k->walk, 0, sizeof(k->walk));
	r = audit_verify_checkpoints_more(s->st, k->pub, k->file, &k->walk, &cr);
	pthread_mutex_unlock(&k->lock);
	if (r != 0)
		return r;
	rep->checkpoints = cr.db_count;
	rep->file_checkpoints = cr.file_count;
	rep->last_ckpt_seq = cr.last.seq;
	rep->last_ckpt_ms = cr.last.at_ms;
	memcpy(rep->last_ckpt_hash, cr.last.head_hash, sizeof(rep->last_ckpt_hash));
	/* A broken link found by the chain walk is the more precise report; keep it. */
	if (rep->ok && !cr.ok) {
		rep->ok = 0;
		rep->first_bad_seq = cr.first_bad_seq;
		str_copy(rep->problem, sizeof(rep->problem), cr.problem);
	}
	return 0;
}

void
svc_ckpt_free(struct service *s)
{
	if (s->ckpt == NULL)
		return;
	pthread_mutex_destroy(&s->ckpt->lock);
	free(s->ckpt->file);
	free(s->ckpt);
	s->ckpt = NULL;
}

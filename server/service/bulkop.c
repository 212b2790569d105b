/*
 * Bulk commands by filter (issue 10 section 2): "wipe every device of this filter", for up to
 * the whole fleet. The request only records the operation (svc_bulk_start: a row and one
 * audit entry, one short transaction) and is answered at once; a worker thread then queues
 * the command for each matching device in batches, each batch one transaction that also
 * advances the operation's cursor and counts. So a batch is all or nothing, a server killed
 * mid-way leaves the cursor right after the last device whose command committed, and the next
 * worker to claim the row (this server after its restart, or another) goes on from there: no
 * device is queued twice and none is missed. Each device still gets its own counter, signed
 * ticket, command row and audit entry (svc_bulk_device_tx, as the bulk by id list).
 *
 * A batch stops taking devices after BATCH_MS, so no batch holds the write lock (SQLite's one
 * writer, PostgreSQL's audit head) for long: requests and check-ins get in between batches.
 * Several servers on one PostgreSQL database each run a worker; the claim locks the row with
 * SKIP LOCKED, so a bulk is worked by one of them at a time. The devices walked are those
 * enrolled up to the request's time, in row id order (a device's row id never changes, and a
 * range of them is one index seek however many devices tie on a time); the filter is applied
 * again at each batch, so a device that stopped matching in the meantime (retired, say) is
 * left alone.
 *
 * Wake-ups: this server resumes the parked check-ins of the devices it queued for after each
 * commit; the other servers get one notification per batch that makes each sweep its parked
 * devices against the queue once (crosswake.c), rather than one notification per device.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "audit/audit.h"
#include "log.h"

#define BATCH_ROWS  500 /* devices read per batch */
#define BATCH_MS    20  /* a batch takes no more devices after this long */
#define BULK_POLL_S 2   /* an idle worker looks for bulks others started (or a crash left) */
/*
 * After a batch, while others wait for the store's write lock (SQLite), the worker lets them
 * go first, for up to YIELD_MAX_MS. Taking turns in order was not enough: the request threads
 * are few, each waiting check-in (woken by the batch) got one turn per batch, and 200 woken
 * check-ins and a wipe POST behind them waited 3.6 s. PostgreSQL has no single write lock.
 */
#define YIELD_MAX_MS 50
#define OPEN_MAX     64
#define SET_FIRST    64 /* devices in a set-based batch before its pace is known */

struct svc_bulker {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t thread;
	int started;
	int kick; /* something to do: look for running bulks */
	atomic_int stop;
	int64_t polled_at;
	atomic_uint_fast64_t batches;     /* committed (metrics) */
	atomic_int_fast64_t batch_max_us; /* the longest, begin to commit */
	size_t last_done;                 /* devices the last batch got through */
	size_t set_fit;                   /* set-based: devices a batch does in BATCH_MS */
	/* The worker's buffers: a batch's devices, open commands, the devices to wake. */
	struct device *rows;
	struct command *scratch;
	char (*woken)[STORE_ID_MAX];
	/* Set-based batches (stores with command_insert_many, bulkset.c): NULL otherwise. */
	struct svc_bulkset *set;
	struct svc_bulk_result *results;
};

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *
or_null(const char *v)
{
	return v[0] != '\0' ? v : NULL;
}

/*
 * The device query of b's filter, after b's cursor, in the walk's order; its label query (the
 * label= filter and the group, as they were when the bulk was asked) parsed into lq.
 */
static int
bulk_query(const struct bulk_op *b, struct device_query *q, struct label_query *lq)
{
	char msg[160];

	memset(q, 0, sizeof(*q));
	if (b->f_labels[0] != '\0') {
		if (svc_labelq_parse(b->f_labels, lq, msg, sizeof(msg)) != 0) {
			log_err("bulk %s: its label query does not parse: %s", b->id, msg);
			return -EINVAL;
		}
		q->labels = lq;
	}
	q->q = or_null(b->f_q);
	q->status = or_null(b->f_status);
	q->owner = or_null(b->f_owner);
	q->policy = or_null(b->f_policy);
	q->desired = or_null(b->f_desired);
	q->reported = or_null(b->f_reported);
	q->seen_before = b->f_seen_before;
	q->compliant = b->f_compliant;
	q->reasons = b->f_reasons;
	q->enrolled_until = b->enrolled_until;
	q->sort = DEV_SORT_ROWID;
	q->desc = 0;
	q->has_after = b->cursor_key >= 0;
	q->after_rowid = b->cursor_rowid;
	q->limit = BATCH_ROWS;
	return 0;
}

/* Devices per batch: the configured number, up to the buffers' BATCH_ROWS. */
static size_t
batch_rows(const struct service *s)
{
	int n = s->cfg.bulk_batch;

	return n > 0 && n < BATCH_ROWS ? (size_t)n : BATCH_ROWS;
}

/* The device query's label queries (label=, group) as one text: "(a) AND (b)". */
static int
bulk_labels(struct bulk_op *b, const struct device_query *q)
{
	char one[GROUP_QUERY_MAX];
	size_t k = 0;

	b->f_labels[0] = '\0';
	for (int i = 0; i < 2; i++) {
		const struct label_query *lq = i == 0 ? q->labels : q->group;
		int w;

		if (lq == NULL)
			continue;
		if (svc_labelq_format(lq, one, sizeof(one)) != 0)
			return -E2BIG;
		w = snprintf(b->f_labels + k, sizeof(b->f_labels) - k, "%s(%s)", k ? " AND " : "",
			     one);
		if (w < 0 || (size_t)w >= sizeof(b->f_labels) - k)
			return -E2BIG;
		k += (size_t)w;
	}
	return 0;
}

/* The device query's filters into b's f_* columns. */
static int
bulk_filter(struct bulk_op *b, const struct device_query *q)
{
	str_copy(b->f_q, sizeof(b->f_q), q->q ? q->q : "");
	str_copy(b->f_status, sizeof(b->f_status), q->status ? q->status : "");
	str_copy(b->f_owner, sizeof(b->f_owner), q->owner ? q->owner : "");
	str_copy(b->f_policy, sizeof(b->f_policy), q->policy ? q->policy : "");
	str_copy(b->f_desired, sizeof(b->f_desired), q->desired ? q->desired : "");
	str_copy(b->f_reported, sizeof(b->f_reported), q->reported ? q->reported : "");
	b->f_seen_before = q->seen_before;
	b->f_compliant = q->compliant;
	b->f_reasons = q->reasons;
	return bulk_labels(b, q);
}

/* ---- the worker ---- */

/* Counts one device's outcome into b, and notes a queued one to wake. */
static void
tally(struct svc_bulker *bk, struct bulk_op *b, const struct svc_bulk_result *res, size_t *nq)
{
	if (res->outcome == BULK_QUEUED) {
		b->queued++;
		str_copy(bk->woken[(*nq)++], STORE_ID_MAX, res->device_id);
	} else if (res->outcome == BULK_PENDING) {
		b->already_pending++;
	} else {
		b->skipped++;
	}
}

/* The end of the bulk, audited in its last batch's transaction. */
static int
finish_tx(struct service *s, struct bulk_op *b)
{
	char detail[160];

	str_copy(b->state, sizeof(b->state), "done");
	b->finished_at = svc_now_s(s);
	snprintf(detail, sizeof(detail), "type=%s queued=%lld already_pending=%lld skipped=%lld",
		 b->type, (long long)b->queued, (long long)b->already_pending,
		 (long long)b->skipped);
	return audit_append(s->st, service_now_ms(s), b->requested_by, "command.bulk.done", b->id,
			    "ok", detail);
}

/*
 * The whole batch at once (bulkset.c): a few statements instead of several per device, so its
 * size, not a clock inside it, keeps it short: the next batch takes as many devices as this
 * one's pace fits in BATCH_MS (the batch's fixed statements, its claim, lock, progress and
 * commit, come on top).
 */
static int
batch_set(struct service *s, struct svc_bulker *bk, struct bulk_op *b, size_t n, size_t *nq)
{
	int64_t t0 = mono_us(), us;
	int r = svc_bulkset_tx(s, bk->set, b->requested_by, b->type, b->reason, bk->rows, n,
			       bk->results);

	for (size_t i = 0; r == 0 && i < n; i++)
		tally(bk, b, &bk->results[i], nq);
	if (r == 0 && n > 0) {
		b->cursor_key = 0; /* started */
		b->cursor_rowid = bk->rows[n - 1].rowid;
	}
	us = mono_us() - t0;
	if (r == 0 && n > 0) {
		/* At most twice this batch: one quick batch (a pause of the others) is no pace. */
		bk->set_fit = us > 0 ? (size_t)((int64_t)n * BATCH_MS * 1000 / us) : BATCH_ROWS;
		if (bk->set_fit > 2 * n + 16)
			bk->set_fit = 2 * n + 16;
	}
	return r;
}

/* Queues devices of b from its cursor on, inside the open transaction; *nq the queued ones. */
static int
batch_tx(struct service *s, struct svc_bulker *bk, struct bulk_op *b, size_t *nq)
{
	struct svc_qmem *groups = NULL;
	struct compliance_spec spec;
	struct label_query lq;
	struct device_query q;
	int64_t t0 = mono_us();
	size_t n = 0, i = 0;
	int r;

	if (bulk_query(b, &q, &lq) != 0)
		return -EIO;
	q.limit = batch_rows(s);
	/* About twice what the last batch got through in its time (PostgreSQL: far fewer). */
	if (bk->set == NULL && bk->last_done > 0 && 2 * bk->last_done + 16 < q.limit)
		q.limit = 2 * bk->last_done + 16;
	/* Set-based: what the last batch's pace fits; the first one, before any pace, SET_FIRST. */
	if (bk->set != NULL) {
		size_t fit = bk->set_fit > 0 ? bk->set_fit : SET_FIRST;

		if (fit < q.limit)
			q.limit = fit > 16 ? fit : 16;
	}
	/*
	 * Locks the batch's devices first: a batch that held the audit head (after its first
	 * device) and then waited for a device a single command held, while that command waited
	 * for the audit head, was a deadlock PostgreSQL broke after a second.
	 */
	q.for_update = 1;
	r = svc_query_ready(s, &q, &spec, &groups);
	if (r == 0)
		r = s->st->ops->device_query(s->st, &q, bk->rows, &n);
	if (r == 0 && bk->set != NULL) {
		r = batch_set(s, bk, b, n, nq);
		i = n;
	}
	for (; r == 0 && i < n; i++) {
		struct svc_bulk_result res = {0};

		str_copy(res.device_id, sizeof(res.device_id), bk->rows[i].id);
		r = svc_bulk_device_tx(s, b->requested_by, b->type, b->reason, bk->scratch, &res);
		if (r != 0)
			break;
		tally(bk, b, &res, nq);
		b->cursor_key = 0; /* started */
		b->cursor_rowid = bk->rows[i].rowid;
		if (mono_us() - t0 >= BATCH_MS * 1000) {
			i++;
			break;
		}
	}
	svc_qmem_free(groups);
	bk->last_done = i;
	if (r == 0 && i == n && n < q.limit)
		r = finish_tx(s, b);
	b->updated_at = svc_now_s(s);
	if (r == 0)
		r = s->st->ops->bulk_progress(s->st, b);
	if (r == 0 && *nq > 0)
		r = svc_notify_sweep_tx(s);
	return r;
}

/* One batch of the oldest running bulk: 1 done, 0 no bulk to work, or a store error. */
static int
run_batch(struct service *s, struct svc_bulker *bk)
{
	struct bulk_op *b = malloc(sizeof(*b));
	int64_t t0 = mono_us(), us;
	size_t nq = 0;
	int r = b != NULL ? s->st->ops->tx_begin(s->st) : -ENOMEM;

	if (r != 0) {
		free(b);
		return r;
	}
	r = s->st->ops->bulk_claim(s->st, b);
	if (r == 0)
		r = svc_bulk_gate_tx(s, b); /* 1: refused, ended (bulkctl.c) */
	if (r == 0)
		r = batch_tx(s, bk, b, &nq);
	else if (r == 1)
		r = 0;
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	free(b);
	if (r != 0)
		return r == -ENOENT ? 0 : r;
	us = mono_us() - t0;
	atomic_fetch_add(&bk->batches, 1);
	if (us > atomic_load(&bk->batch_max_us)) /* one worker thread writes it */
		atomic_store(&bk->batch_max_us, us);
	for (size_t i = 0; i < nq; i++) /* after the commit, as svc_notify wants */
		svc_notify(s, bk->woken[i]);
	return 1;
}

static void
yield_to_writers(struct service *s)
{
	if (s->st->ops->write_waiters == NULL)
		return;
	for (int i = 0; i < YIELD_MAX_MS && s->st->ops->write_waiters(s->st) > 0; i++)
		usleep(1000);
}

static void *
bulker_main(void *p)
{
	struct service *s = p;
	struct svc_bulker *bk = s->bulker;

	bk->rows = calloc(BATCH_ROWS, sizeof(*bk->rows));
	bk->scratch = calloc(OPEN_MAX, sizeof(*bk->scratch));
	bk->woken = calloc(BATCH_ROWS, sizeof(*bk->woken));
	if (bk->rows == NULL || bk->scratch == NULL || bk->woken == NULL) {
		log_warn("service: no memory for the bulk command worker");
		return NULL;
	}
	if (s->st->ops->command_insert_many != NULL && !s->cfg.bulk_per_device) {
		bk->set = svc_bulkset_new(BATCH_ROWS);
		bk->results = calloc(BATCH_ROWS, sizeof(*bk->results));
		if (bk->set == NULL || bk->results == NULL) {
			log_warn("service: no memory for the bulk command worker");
			return NULL;
		}
	}
	pthread_mutex_lock(&bk->lock);
	while (!atomic_load(&bk->stop)) {
		int r = 1;

		if (!bk->kick) {
			pthread_cond_wait(&bk->cond, &bk->lock);
			continue;
		}
		bk->kick = 0;
		pthread_mutex_unlock(&bk->lock);
		while (r == 1 && !atomic_load(&bk->stop)) {
			r = run_batch(s, bk);
			yield_to_writers(s);
		}
		if (r <
		    0) /* the next poll tries again: the cursor is where the last commit left it */
			log_warn("service: a bulk command batch failed (%d); it is tried again", r);
		pthread_mutex_lock(&bk->lock);
	}
	pthread_mutex_unlock(&bk->lock);
	return NULL;
}

int
svc_bulker_init(struct service *s)
{
	struct svc_bulker *bk = calloc(1, sizeof(*bk));

	if (bk == NULL)
		return -ENOMEM;
	pthread_mutex_init(&bk->lock, NULL);
	pthread_cond_init(&bk->cond, NULL);
	s->bulker = bk;
	return 0;
}

/* Starts the worker's thread on first use, and asks it to look for work. */
static void
bulker_kick(struct service *s)
{
	struct svc_bulker *bk = s->bulker;

	if (bk == NULL)
		return;
	pthread_mutex_lock(&bk->lock);
	if (!bk->started && !atomic_load(&bk->stop)) {
		bk->started = pthread_create(&bk->thread, NULL, bulker_main, s) == 0;
		if (!bk->started)
			log_warn("service: cannot start the bulk command worker");
	}
	bk->kick = 1;
	pthread_cond_signal(&bk->cond);
	pthread_mutex_unlock(&bk->lock);
}

void
svc_bulker_tick(struct service *s)
{
	struct svc_bulker *bk = s->bulker;

	if (bk == NULL || s->st->ops->bulk_claim == NULL ||
	    svc_now_s(s) - bk->polled_at < BULK_POLL_S)
		return;
	bk->polled_at = svc_now_s(s); /* the tick's own */
	bulker_kick(s);
}

void
svc_bulker_stop(struct service *s)
{
	struct svc_bulker *bk = s->bulker;
	int started;

	if (bk == NULL)
		return;
	pthread_mutex_lock(&bk->lock);
	atomic_store(&bk->stop, 1);
	started = bk->started;
	bk->started = 0;
	pthread_cond_signal(&bk->cond);
	pthread_mutex_unlock(&bk->lock);
	if (started)
		pthread_join(bk->thread, NULL);
}

void
svc_bulker_stats(struct service *s, struct svc_stats *out)
{
	struct svc_bulker *bk = s->bulker;

	out->bulk_batches = bk != NULL ? atomic_load(&bk->batches) : 0;
	out->bulk_batch_max_us = bk != NULL ? atomic_load(&bk->batch_max_us) : 0;
}

void
svc_bulker_free(struct service *s)
{
	struct svc_bulker *bk = s->bulker;

	if (bk == NULL)
		return;
	svc_bulker_stop(s);
	pthread_mutex_destroy(&bk->lock);
	pthread_cond_destroy(&bk->cond);
	free(bk->rows);
	free(bk->scratch);
	free(bk->woken);
	svc_bulkset_free(bk->set);
	free(bk->results);
	free(bk);
	s->bulker = NULL;
}

/* ---- the request ---- */

/* An Idempotency-Key seen before: the same request gets its operation back. */
static int
replayed(const struct svc_bulk_request *rq, const struct bulk_op *old, struct svc_error *err)
{
	if (memcmp(old->request_hash, rq->request_hash, sizeof(old->request_hash)) != 0)
		return svc_fail(err, SVC_IDEMPOTENCY,
				"Idempotency-Key %s was already used for a different request",
				rq->idempotency_key);
	return 0;
}

/* Counts the filter's devices now, inside the transaction; refuses 0 and a changed count. */
static int
check_count(struct service *s, struct bulk_op *b, int64_t expected, int64_t *matched,
	    struct svc_error *err)
{
	struct svc_qmem *groups = NULL;
	struct compliance_spec spec;
	struct label_query lq;
	struct device_query q;
	int r;

	if (bulk_query(b, &q, &lq) != 0)
		return svc_fail(err, SVC_INVALID, "the label query does not parse");
	r = svc_query_ready(s, &q, &spec, &groups);
	if (r == 0)
		r = s->st->ops->device_count(s->st, &q, matched);
	svc_qmem_free(groups);
	if (r != 0)
		return svc_store_fail(err, r, "device");
	if (*matched == 0)
		return svc_fail(err, SVC_INVALID, "the filter matches no devices; nothing to do");
	if (*matched != expected)
		return svc_fail(err, SVC_CONFLICT,
				"the filter now matches %lld devices, not the %lld confirmed; "
				"confirm the new count (expected_count) to go on",
				(long long)*matched, (long long)expected);
	return 0;
}

/* Checks what needs no store: the type and the caller's right to it, the reason. */
static int
check_request(struct service *s, const struct principal *p, const struct svc_bulk_request *rq,
	      struct svc_error *err)
{
	enum perm perm;
	int r;

	if (svc_command_perm(rq->type, &perm) != 0)
		return svc_fail(err, SVC_INVALID,
				"type must be one of wipe, lock, unlock, rekey, retire, refresh");
	r = svc_authorize(s, p, perm, err);
	if (r != 0)
		return r;
	if (strlen(rq->reason) >= STORE_TEXT_MAX - 64)
		return svc_fail(err, SVC_INVALID, "reason is longer than 440 characters");
	if (strlen(rq->filter_json) >= sizeof(((struct bulk_op *)0)->filter))
		return svc_fail(err, SVC_INVALID, "filter is too long");
	if (rq->expected_count < 1)
		return svc_fail(err, SVC_INVALID, "expected_count must be at least 1");
	return 0;
}

/* The new operation's row from the request. */
static int
bulk_new(struct service *s, const struct principal *p, const struct svc_bulk_request *rq,
	 struct bulk_op *b)
{
	int r;

	memset(b, 0, sizeof(*b));
	r = svc_new_id(b->id, "blk_");
	if (r != 0)
		return r;
	str_copy(b->type, sizeof(b->type), rq->type);
	str_copy(b->reason, sizeof(b->reason), rq->reason);
	str_copy(b->requested_by, sizeof(b->requested_by), p->id);
	if (rq->idempotency_key != NULL && rq->idempotency_key[0] != '\0') {
		str_copy(b->idempotency_key, sizeof(b->idempotency_key), rq->idempotency_key);
		memcpy(b->request_hash, rq->request_hash, sizeof(b->request_hash));
	}
	str_copy(b->filter, sizeof(b->filter), rq->filter_json);
	if (bulk_filter(b, rq->query) != 0)
		return -E2BIG;
	b->created_at = b->updated_at = svc_now_s(s);
	b->enrolled_until = b->created_at;
	b->expected_count = rq->expected_count;
	b->cursor_key = -1;
	str_copy(b->state, sizeof(b->state), "running");
	return 0;
}

/* The two-person rule holds bulk b (recorded awaiting): its approval request, into *pending. */
static int
hold_tx(struct service *s, const struct principal *p, const struct bulk_op *b, int64_t n,
	struct approval *pending)
{
	const struct svc_approval_ask ask = {
		.type = b->type, .reason = b->reason, .bulk_id = b->id, .n = (size_t)n};
	struct approval a;
	int reused;
	int r = svc_approval_request_tx(s, p, &ask, &a, &reused);

	if (r == 0 && pending != NULL)
		*pending = a;
	return r;
}

void
svc_bulk_kick(struct service *s)
{
	bulker_kick(s);
}

int
svc_bulk_start(struct service *s, const struct principal *p, const struct svc_bulk_request *rq,
	       struct bulk_op *out, int *created, int64_t *matched, struct svc_error *err)
{
	int has_key = rq->idempotency_key != NULL && rq->idempotency_key[0] != '\0';
	char detail[STORE_TEXT_MAX];
	int held, r = check_request(s, p, rq, err);

	*created = 0;
	*matched = 0;
	if (r != 0)
		return r;
	/*
	 * The two-person rule (issue 11 section 4, built apart) checks here, before the bulk is
	 * recorded: every bulk, by filter or by group ("group" arrives as a filter of that group),
	 * passes this one entry point, and rq->expected_count is its size.
	 */
	r = s->st->ops->tx_begin(s->st);
	if (r != 0)
		return svc_store_fail(err, r, "bulk command");
	if (has_key) {
		r = s->st->ops->bulk_by_idempotency(s->st, p->id, rq->idempotency_key, out);
		if (r == 0) {
			s->st->ops->tx_rollback(s->st);
			return replayed(rq, out, err);
		}
		if (r != -ENOENT)
			goto fail;
	}
	r = bulk_new(s, p, rq, out);
	if (r != 0)
		goto fail;
	r = check_count(s, out, rq->expected_count, matched, err);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		return r;
	}
	held = svc_approval_needed(s, out->type, (size_t)*matched);
	if (held)
		str_copy(out->state, sizeof(out->state), "awaiting");
	r = s->st->ops->bulk_insert(s->st, out);
	snprintf(detail, sizeof(detail), "type=%s devices=%lld reason=%.200s filter=%.200s",
		 out->type, (long long)*matched, out->reason, out->filter);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, "command.bulk", out->id,
				 held ? "awaiting" : "ok", detail);
	if (r == 0 && held)
		r = hold_tx(s, p, out, *matched, rq->pending);
	if (r == 0)
		r = s->st->ops->tx_commit(s->st);
	else
		s->st->ops->tx_rollback(s->st);
	if (r == -EEXIST && has_key) /* another server took the same key first: its bulk */
		return s->st->ops->bulk_by_idempotency(s->st, p->id, rq->idempotency_key, out) == 0
			       ? replayed(rq, out, err)
			       : svc_store_fail(err, -EIO, "bulk command");
	if (r != 0)
		return svc_store_fail(err, r, "bulk command");
	*created = 1;
	bulker_kick(s);
	return 0;
fail:
	s->st->ops->tx_rollback(s->st);
	return svc_store_fail(err, r, "bulk command");
}

int
svc_bulk_get(struct service *s, const struct principal *p, const char *id, struct bulk_op *out,
	     struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->bulk_get(s->st, id, out);
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "no bulk command with id %s", id);
	return r == 0 ? 0 : svc_store_fail(err, r, "bulk command");
}

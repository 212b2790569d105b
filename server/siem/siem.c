/*
 * The sender's thread. Each round: hold the stream's lease (claim it, renew it), be connected
 * (reconnect with doubling backoff), read the next batch of entries after the stored position
 * from the audit table, and the signed checkpoints made since the last one sent that name an
 * entry already sent or in the batch (so a checkpoint always follows the entries it covers),
 * send them, wait until they count as arrived (siem_conn_settle), and
 * only then move the position, in the same statement that renews the lease. A crash anywhere
 * leaves the position at the last batch that arrived; the next sender starts after it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto.h"
#include "log.h"
#include "siem.h"
#include "siem_net.h"
#include "util.h"

#define IDLE_POLL_MS 500

struct siem {
	struct store *st;
	struct siem_config cfg;
	struct siem_fmt fmt;
	char holder[SIEM_HOLDER_MAX];
	struct siem_conn conn;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	atomic_int stop;
	struct siem_status shown; /* under lock: what siem_status reports */
	/* The thread's own. */
	int held, connected;
	int64_t pos, ckpt_pos, renewed_at; /* ckpt_pos: the last checkpoint row id sent */
	unsigned backoff_s;
	char last_problem[256];
	struct audit_entry *batch;
	struct audit_ckpt_row *ckpts;
	char *buf;
	size_t cap;
};

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleeps up to ms, or less when stopped. */
static void
pause_ms(struct siem *s, int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&s->lock);
	if (!atomic_load(&s->stop))
		pthread_cond_timedwait(&s->cond, &s->lock, &ts);
	pthread_mutex_unlock(&s->lock);
}

/* Logs a problem once until it changes, so that a collector down for a day is one line. */
static void
problem(struct siem *s, const char *what)
{
	if (strcmp(s->last_problem, what) != 0)
		log_warn("siem: %s", what);
	str_copy(s->last_problem, sizeof(s->last_problem), what);
}

/*
 * Runs one store call of the stream in a write transaction of its own: on SQLite that is the
 * process's write turn, so the API's writers never meet ours in SQLite's busy wait. -EBUSY
 * from a claim (another holder) still commits the row the claim may have made.
 */
#define SIEM_TX(s, r, call)                                                                        \
	do {                                                                                       \
		(r) = (s)->st->ops->tx_begin((s)->st);                                             \
		if ((r) == 0) {                                                                    \
			(r) = (call);                                                              \
			if ((r) == 0 || (r) == -EBUSY) {                                           \
				int c_ = (s)->st->ops->tx_commit((s)->st);                         \
				(r) = c_ != 0 ? c_ : (r);                                          \
			} else {                                                                   \
				(s)->st->ops->tx_rollback((s)->st);                                \
			}                                                                          \
		}                                                                                  \
	} while (0)

static int64_t
lease_ms(const struct siem *s)
{
	return (int64_t)s->cfg.lease_s * 1000;
}

/* Takes the lease, or says who has it. 1: held now; 0: another server sends. */
static int
claim(struct siem *s)
{
	struct siem_stream row;
	int r;

	memset(&row, 0, sizeof(row));
	str_copy(row.name, sizeof(row.name), s->cfg.stream);
	SIEM_TX(s, r, s->st->ops->siem_claim(s->st, &row, s->holder, wall_ms(), lease_ms(s)));
	if (r == 0) {
		s->held = 1;
		s->pos = row.last_seq;
		s->ckpt_pos = row.last_ckpt_id;
		s->renewed_at = wall_ms();
		log_info("siem: this server streams the audit log (%s) from entry %lld",
			 s->cfg.stream, (long long)row.last_seq + 1);
		s->last_problem[0] = '\0';
		return 1;
	}
	if (r == -EBUSY)
		log_debug("siem: %s streams the audit log", row.holder);
	else
		problem(s, "cannot read the stream's position from the database");
	return 0;
}

static void
disconnect(struct siem *s)
{
	if (s->connected)
		siem_conn_close(&s->conn);
	s->connected = 0;
}

/*
 * Moves the stored position to entry `to` and checkpoint row ckpt_to (or renews the lease
 * when both stay where they are). 0 or -errno.
 */
static int
advance(struct siem *s, int64_t to, int64_t ckpt_to)
{
	int r;

	SIEM_TX(s, r,
		s->st->ops->siem_advance(s->st, s->cfg.stream, s->holder, s->pos, to, ckpt_to,
					 wall_ms(), lease_ms(s)));
	if (r == 0) {
		s->pos = to;
		s->ckpt_pos = ckpt_to;
		s->renewed_at = wall_ms();
	} else if (r == -ESTALE) {
		/* Our lease ran out and another server took over: it goes on from its position. */
		log_warn("siem: another server took over the audit stream");
		s->held = 0;
		disconnect(s);
	}
	return r;
}

static void
renew_if_due(struct siem *s)
{
	if (wall_ms() - s->renewed_at >= lease_ms(s) / 3)
		advance(s, s->pos, s->ckpt_pos);
}

static int
connect_now(struct siem *s)
{
	char err[320];
	int r = siem_conn_open(&s->conn, &s->cfg, err, sizeof(err));

	if (r != 0) {
		problem(s, err[0] ? err : "cannot reach the collector");
		s->backoff_s = s->backoff_s ? MIN(s->backoff_s * 2, s->cfg.max_backoff) : 1;
		return r;
	}
	s->connected = 1;
	s->backoff_s = 0;
	s->last_problem[0] = '\0';
	log_info("siem: connected to the collector");
	return 0;
}

struct collect {
	struct audit_entry *out;
	size_t n, max;
};

static int
collect_one(void *ctx, const struct audit_entry *e)
{
	struct collect *c = ctx;

	if (c->n >= c->max)
		return 1;
	c->out[c->n++] = *e;
	return 0;
}

struct collect_ckpt {
	struct audit_ckpt_row *out;
	size_t n, max;
	int64_t upto; /* the newest entry sent with this batch or before */
};

static int
collect_ckpt(void *ctx, const struct audit_ckpt_row *c)
{
	struct collect_ckpt *k = ctx;

	if (k->n >= k->max || c->seq > k->upto)
		return 1; /* its entries are not out yet: a later round sends it */
	k->out[k->n++] = *c;
	return 0;
}

/*
 * Formats and sends n entries, then m checkpoints; 0 once they arrived, else -errno (the
 * connection is dropped).
 */
static int
send_batch(struct siem *s, size_t n, size_t m)
{
	size_t len = 0;
	int r;

	/* Cannot fail: cap holds 2 * batch messages of SIEM_MSG_MAX. */
	for (size_t i = 0; i < n + m; i++) {
		r = i < n ? siem_format(&s->fmt, &s->batch[i], s->buf + len, s->cap - len)
			  : siem_format_ckpt(&s->fmt, &s->ckpts[i - n], s->buf + len, s->cap - len);
		if (r < 0)
			return r;
		len += (size_t)r;
	}
	r = siem_conn_send(&s->conn, s->buf, len);
	if (r == 0)
		/* Bounded by half the lease, so that a stalled collector never outlasts it. */
		r = siem_conn_settle(&s->conn, s->cfg.hold_ms, (unsigned)MAX(lease_ms(s) / 2, 1000),
				     &s->stop);
	if (r == 1) { /* arrived, and the collector closed: reconnect for the next batch */
		disconnect(s);
		r = 0;
	}
	if (r != 0) {
		char why[128];

		snprintf(why, sizeof(why),
			 "the collector did not take entries after %lld (%s); "
			 "sending them again",
			 (long long)s->pos, strerror(-r));
		problem(s, why);
		disconnect(s);
	}
	return r;
}

/* One round; returns how long to wait before the next (0: go on at once). */
static int64_t
round_once(struct siem *s)
{
	struct collect c = {s->batch, 0, s->cfg.batch};
	struct collect_ckpt k = {s->ckpts, 0, s->cfg.batch, 0};
	int r;

	if (!s->held && !claim(s))
		return lease_ms(s) / 3;
	if (!s->connected && connect_now(s) != 0) {
		renew_if_due(s); /* keep the lease: another server would meet the same collector */
		return (int64_t)s->backoff_s * 1000;
	}
	r = s->st->ops->audit_iter_range(s->st, s->pos, s->cfg.batch, collect_one, &c);
	k.upto = c.n > 0 ? c.out[c.n - 1].seq : s->pos;
	if (r >= 0)
		r = s->st->ops->audit_ckpt_iter_after(s->st, s->ckpt_pos, collect_ckpt, &k);
	if (r < 0) {
		problem(s, "cannot read the audit log");
		return 1000;
	}
	if (c.n + k.n == 0) {
		renew_if_due(s);
		return IDLE_POLL_MS;
	}
	if (send_batch(s, c.n, k.n) != 0)
		return 1000;
	r = advance(s, k.upto, k.n > 0 ? k.out[k.n - 1].id : s->ckpt_pos);
	if (r == 0)
		s->last_problem[0] = '\0'; /* whatever it was, the stream moves again */
	if (r != 0 && r != -ESTALE) {
		/* Sent but not recorded: sent again after a reconnect (the at-least-once window). */
		problem(s, "cannot store the stream's position");
		disconnect(s);
		return 1000;
	}
	return 0;
}

/* Publishes the thread's state for siem_status. */
static void
publish(struct siem *s)
{
	pthread_mutex_lock(&s->lock);
	s->shown.sending = s->held;
	s->shown.connected = s->connected;
	str_copy(s->shown.problem, sizeof(s->shown.problem), s->last_problem);
	pthread_mutex_unlock(&s->lock);
}

void
siem_status(struct siem *s, struct siem_status *out)
{
	memset(out, 0, sizeof(*out));
	out->format = "rfc5424";
	str_copy(out->stream, sizeof(out->stream), "siem");
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	*out = s->shown;
	pthread_mutex_unlock(&s->lock);
}

static void *
siem_main(void *arg)
{
	struct siem *s = arg;

	while (!atomic_load(&s->stop)) {
		int64_t wait = round_once(s);

		publish(s);
		if (wait > 0)
			pause_ms(s, wait);
	}
	disconnect(s);
	if (s->held) {
		int r;

		SIEM_TX(s, r, s->st->ops->siem_release(s->st, s->cfg.stream, s->holder));
		if (r != 0)
			log_warn("siem: cannot give up the stream's lease; another server takes it "
				 "over when it runs out");
	}
	return NULL;
}

/* Who holds the lease, for the operator: host, process and a random part for uniqueness. */
static void
make_holder(struct siem *s)
{
	uint8_t rnd[6];
	char host[64] = "", hex[13];

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	if (crypto_random(rnd, sizeof(rnd)) != 0)
		memset(rnd, 0, sizeof(rnd));
	hex_encode(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(s->holder, sizeof(s->holder), "%s/%d/%s", host, (int)getpid(), hex);
}

static void
siem_free(struct siem *s)
{
	free(s->batch);
	free(s->ckpts);
	free(s->buf);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

int
siem_start(struct store *st, const struct siem_config *c, struct siem **out)
{
	struct siem *s;

	*out = NULL;
	if (c->transport == SIEM_OFF)
		return 0;
	if (st->ops->siem_claim == NULL)
		return -ENOTSUP;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->st = st;
	s->cfg = *c;
	if (s->cfg.hostname[0] == '\0' && gethostname(s->cfg.hostname, 255) != 0)
		str_copy(s->cfg.hostname, sizeof(s->cfg.hostname), "-");
	for (char *p = s->cfg.hostname; *p; p++) /* RFC 5424: printable ASCII, no space */
		if (*p <= ' ' || *p > '~')
			*p = '-';
	s->fmt = (struct siem_fmt){s->cfg.format, s->cfg.hostname, s->cfg.sd_id};
	str_copy(s->shown.target, sizeof(s->shown.target), s->cfg.target);
	str_copy(s->shown.stream, sizeof(s->shown.stream), s->cfg.stream);
	s->shown.format = s->cfg.format == SIEM_JSON ? "json" : "rfc5424";
	s->cap = (size_t)s->cfg.batch * 2 * SIEM_MSG_MAX;
	s->batch = calloc(s->cfg.batch, sizeof(*s->batch));
	s->ckpts = calloc(s->cfg.batch, sizeof(*s->ckpts));
	s->buf = malloc(s->cap);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	siem_conn_init(&s->conn);
	make_holder(s);
	if (s->batch == NULL || s->ckpts == NULL || s->buf == NULL ||
	    pthread_create(&s->thread, NULL, siem_main, s) != 0) {
		siem_free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

void
siem_stop(struct siem *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	atomic_store(&s->stop, 1);
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
	siem_conn_abort(&s->conn);
	pthread_join(s->thread, NULL);
	pthread_mutex_destroy(&s->conn.lock);
	siem_free(s);
}

/*
 * The service object, authentication, API and enrollment tokens, the audit calls and the
 * periodic tick. Secrets (token values) exist only while a create call returns them; the store
 * sees their SHA-256. Policies and devices are in devices.c, commands in commands.c, the device
 * side of enrollment and request signatures in enroll.c.
 */
#include "service_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "audit/audit.h"
#include "b64.h"
#include "log.h"
#include "replaylog.h"

int
svc_fail(struct svc_error *err, enum svc_kind kind, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL) {
		err->kind = kind;
		va_start(ap, fmt);
		vsnprintf(err->detail, sizeof(err->detail), fmt, ap);
		va_end(ap);
	}
	switch (kind) {
	case SVC_NOT_FOUND:
		return -ENOENT;
	case SVC_UNAUTHORIZED:
	case SVC_FORBIDDEN:
	case SVC_ENROLL_DENIED:
		return -EACCES;
	case SVC_CONFLICT:
	case SVC_WIPE_PENDING:
	case SVC_IDEMPOTENCY:
		return -EBUSY;
	case SVC_UNAVAILABLE:
		return -ENOMEM;
	case SVC_INTERNAL:
		return -EIO;
	default:
		return -EINVAL;
	}
}

int
svc_store_fail(struct svc_error *err, int r, const char *what)
{
	if (r == -ENOENT)
		return svc_fail(err, SVC_NOT_FOUND, "%s not found", what);
	if (r == -ENOMEM)
		return svc_fail(err, SVC_UNAVAILABLE, "the server is out of memory; retry later");
	if (r == -ENOSPC)
		return svc_fail(err, SVC_UNAVAILABLE,
				"the server's disk is full; nothing was changed, retry later");
	if (r == -EBUSY)
		return svc_fail(err, SVC_UNAVAILABLE, "the database is busy; retry later");
	if (r == -ENOTCONN)
		return svc_fail(err, SVC_UNAVAILABLE,
				"the database cannot be reached; retry later");
	if (r == -EDEADLK) {
		/* Still -EDEADLK, so that svc_tx_again knows the caller may run it again. */
		svc_fail(err, SVC_UNAVAILABLE,
			 "the database gave the change up to a concurrent one; retry later");
		return -EDEADLK;
	}
	/* Backend failures were logged where they happened; a conflict here is a bug of ours. */
	if (r != -EIO)
		log_err("service: %s: unexpected storage result: %s", what, strerror(-r));
	return svc_fail(err, SVC_INTERNAL, "storage failure");
}

static int64_t
default_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
service_now_ms(const struct service *s)
{
	return s->clock();
}

int64_t
svc_now_s(const struct service *s)
{
	return s->clock() / 1000;
}

int
svc_new_id(char *dst, const char *prefix)
{
	uint8_t rnd[10];
	size_t pl = strlen(prefix);

	if (pl + 2 * sizeof(rnd) + 1 > STORE_ID_MAX || crypto_random(rnd, sizeof(rnd)) != 0)
		return -EIO;
	memcpy(dst, prefix, pl);
	return hex_encode(dst + pl, STORE_ID_MAX - pl, rnd, sizeof(rnd));
}

int
svc_new_secret(const char *prefix, char **out, uint8_t hash[32])
{
	uint8_t rnd[32];
	size_t pl = strlen(prefix), cap = pl + b64url_encoded_len(sizeof(rnd)) + 1;
	char *s = malloc(cap);

	if (s == NULL)
		return -ENOMEM;
	if (crypto_random(rnd, sizeof(rnd)) != 0) {
		free(s);
		return -EIO;
	}
	memcpy(s, prefix, pl);
	b64url_encode(s + pl, cap - pl, rnd, sizeof(rnd));
	secure_zero(rnd, sizeof(rnd));
	crypto_sha256(s, strlen(s), hash);
	*out = s;
	return 0;
}

const char *
service_backend(const struct service *s)
{
	return s->st->ops->name;
}

int
service_new(struct store *st, const struct ed25519_key *ticket_key,
	    const struct service_config *cfg, svc_clock_fn clock, struct service **out)
{
	struct service *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->st = st;
	atomic_init(&s->health_ok, 1); /* until the first probe says otherwise */
	s->ticket_key = ticket_key;
	ed25519_key_public(ticket_key, s->ticket_pub);
	s->cfg = *cfg;
	s->public_url = strdup(cfg->public_url ? cfg->public_url : "https://127.0.0.1:8443");
	s->cfg.public_url = s->public_url;
	s->clock = clock ? clock : default_clock;
	if (s->public_url == NULL || devstate_init(&s->dev) != 0) {
		free(s->public_url);
		free(s);
		return -ENOMEM;
	}
	if (svc_tpm_ca_init(s) != 0) { /* checked by --check-config; changed since? */
		devstate_fini(&s->dev);
		free(s->public_url);
		free(s);
		return -EINVAL;
	}
	if (svc_refusals_init(s, (uint32_t)(cfg->refusal_limit > 0 ? cfg->refusal_limit : 600)) !=
		    0 ||
	    svc_waker_init(s) != 0 || svc_verify_init(s) != 0 || svc_bulker_init(s) != 0) {
		svc_verify_free(s);
		svc_waker_free(s);
		svc_refusals_free(s);
		svc_tpm_ca_free(s);
		devstate_fini(&s->dev);
		free(s->public_url);
		free(s);
		return -ENOMEM;
	}
	*out = s;
	return 0;
}

/*
 * Logs a failure of periodic work once, not once a second: the first failure of a kind is a
 * warning, repeats are silent, and the first success after failures says so.
 */
static void
tick_outcome(struct service *s, int which, int r, const char *what)
{
	if (r != 0 && !s->tick_failing[which])
		log_warn("service: %s failed (%s); retrying every second", what, strerror(-r));
	else if (r == 0 && s->tick_failing[which])
		log_info("service: %s works again", what);
	s->tick_failing[which] = r != 0;
}

/*
 * Writes batched check-in times and signature counters; what fails stays queued for later.
 * When every dirty entry reached the store, the replay log's older file is emptied.
 */
static int
flush_checkins(struct service *s)
{
	enum { BATCH = 512 };
	char ids[BATCH][STORE_ID_MAX];
	int64_t seen[BATCH], seq[BATCH];
	int switched = s->replay ? replaylog_switch(s->replay) : 0;
	size_t n = 0;
	int r = 0;

	/* Bounded: each round takes up to BATCH devices; at most 64 rounds per tick. */
	for (int round = 0; round < 64 && r == 0; round++) {
		n = devstate_take_dirty(&s->dev, ids, seen, seq, BATCH);
		if (n == 0)
			break;
		r = s->st->ops->tx_begin(s->st);
		for (size_t i = 0; r == 0 && i < n; i++) {
			r = s->st->ops->device_touch(s->st, ids[i], seen[i], seq[i]);
			if (r == -ENOENT) /* deleted meanwhile */
				r = 0;
		}
		if (r == 0)
			r = s->st->ops->tx_commit(s->st);
		else
			s->st->ops->tx_rollback(s->st);
		if (r != 0)
			for (size_t i = 0; i < n; i++)
				devstate_mark_dirty(&s->dev, ids[i]);
	}
	if (r == 0 && n == 0 && s->replay != NULL) /* drained */
		replaylog_flushed(s->replay, switched);
	tick_outcome(s, TICK_FLUSH, r, "recording check-in times and signature counters");
	return r != 0 ? r : n == 0 ? 0 : -EAGAIN;
}

static int
raise_floor(void *ctx, const char *id, uint64_t nonce)
{
	return devstate_raise_floor(ctx, id, nonce);
}

int
service_set_replay_log(struct service *s, const char *path)
{
	size_t n = 0;
	int r;

	/* The database records every accepted nonce itself (store_pg_shared.c): no file here. */
	if (s->st->ops->request_nonce_claim != NULL)
		return 0;
	r = replaylog_open(path, raise_floor, &s->dev, &s->replay, &n);
	if (r != 0)
		return r;
	if (n > 0)
		log_warn("service: the last stop was not clean: %zu accepted request nonces "
			 "recovered from %s.0/.1; requests signed before it stay refused",
			 n, path);
	/* Into the store at once, then the files start empty. */
	for (int round = 0; round < 16 && (r = flush_checkins(s)) == -EAGAIN; round++)
		;
	if (r == 0)
		r = replaylog_reset(s->replay);
	return r;
}

/* Expires commands past their expiry, with their desired states and one audit entry. */
static int
expire_commands(struct service *s, size_t *expired)
{
	enum { BATCH = 256 };
	char devices[BATCH][STORE_ID_MAX];
	int64_t now = svc_now_s(s);
	size_t n = BATCH;
	int r;

	*expired = 0;
	r = s->st->ops->tx_begin(s->st);
	/* Bounded: at most 16 batches a tick; the rest expire at the next tick. */
	for (int round = 0; r == 0 && round < 16 && n == BATCH; round++) {
		r = s->st->ops->command_expire(s->st, now, devices, BATCH, &n);
		for (size_t i = 0; r == 0 && i < n; i++) {
			r = svc_recompute_desired(s, devices[i]);
			if (r == -ENOENT)
				r = 0;
		}
		*expired += n;
	}
	if (r == 0 && *expired > 0) {
		char detail[64];

		snprintf(detail, sizeof(detail), "%zu commands passed their expiry", *expired);
		r = audit_append(s->st, service_now_ms(s), "system", "command.expire", "", "ok",
				 detail);
	}
	if (r == 0)
		r = s->st->ops->nonce_purge(s->st, now);
	/* Twice the skew: a request signed earlier is refused by its creation time alone. */
	if (r == 0 && s->st->ops->request_nonce_purge != NULL)
		r = s->st->ops->request_nonce_purge(s->st, now - 2 * s->cfg.sig_skew_s);
	if (r == 0)
		return s->st->ops->tx_commit(s->st);
	s->st->ops->tx_rollback(s->st);
	return r;
}

#define ROTATE_SCAN_S    60
#define APPROVAL_SWEEP_S 5 /* how often pending approval requests past expiry are closed */

void
service_tick(struct service *s)
{
	size_t expired = 0;
	int r;

	flush_checkins(s);
	r = expire_commands(s, &expired);
	tick_outcome(s, TICK_EXPIRE, r, "expiring commands");
	tick_outcome(s, TICK_REFUSALS, svc_refusals_flush(s, 0), "auditing refused requests");
	if (svc_now_s(s) - s->rotate_scan_at >= ROTATE_SCAN_S) { /* the first tick, then a minute */
		s->rotate_scan_at = svc_now_s(s);
		tick_outcome(s, TICK_ROTATE, svc_rotate_keys(s), "queuing key rotations");
	}
	if (svc_now_s(s) - s->approval_sweep_at >= APPROVAL_SWEEP_S) {
		s->approval_sweep_at = svc_now_s(s);
		tick_outcome(s, TICK_APPROVALS, svc_approval_sweep(s),
			     "expiring approval requests");
	}
	if (r == 0 && expired > 0)
		log_info("service: %zu commands expired", expired);
	svc_ckpt_tick(s, 0);
	svc_cross_tick(s);
	svc_bulker_tick(s);
}

void
service_free(struct service *s)
{
	if (s == NULL)
		return;
	svc_verify_free(s);
	svc_bulker_free(s);
	svc_waker_free(s);
	svc_hookd_free(s);
	if (flush_checkins(s) == 0 && s->replay != NULL)
		replaylog_reset(s->replay); /* a clean stop: the store has every nonce */
	replaylog_close(s->replay);
	if (svc_refusals_flush(s, 1) != 0)
		log_warn("service: the last minute's refused requests are not in the audit log");
	svc_refusals_free(s);
	svc_ckpt_tick(s, 1);
	svc_ckpt_free(s);
	free(s->setup_path);
	svc_tpm_ca_free(s);
	devstate_fini(&s->dev);
	free(s->public_url);
	secure_zero(s->hook_key, sizeof(s->hook_key));
	free(s);
}

void
service_set_waker(struct service *s, svc_wake_fn fn, void *ctx)
{
	s->wake = fn;
	s->wake_ctx = ctx;
}

void
service_set_policy_parser(struct service *s, policy_parse_fn fn)
{
	s->parse_policy = fn;
}

int
service_set_public_url(struct service *s, const char *url)
{
	char *u = strdup(url);

	if (u == NULL)
		return -ENOMEM;
	free(s->public_url);
	s->public_url = u;
	s->cfg.public_url = u;
	return 0;
}

const struct service_config *
service_config(const struct service *s)
{
	return &s->cfg;
}

void
svc_notify(struct service *s, const char *device_id)
{
	/* Bump first, then wake: a poller that read the old generation will see the change. */
	devstate_bump(&s->dev, device_id);
	if (s->wake != NULL)
		s->wake(s->wake_ctx, device_id);
}

uint64_t
svc_wake_gen(struct service *s, const char *device_id)
{
	return devstate_gen(&s->dev, device_id);
}

static int
audit_event_once(struct service *s, const char *actor, const char *action, const char *target,
		 const char *outcome, const char *detail)
{
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return r;
	r = audit_append(s->st, service_now_ms(s), actor, action, target, outcome, detail);
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		return r;
	}
	return s->st->ops->tx_commit(s->st);
}

void
svc_audit_event(struct service *s, const char *actor, const char *action, const char *target,
		const char *outcome, const char *detail)
{
	int r;

	SVC_TX_RETRY(s, r, audit_event_once(s, actor, action, target, outcome, detail));
	(void)r;
}

/* ---- roles ---- */

static const char *const role_names[] = {"", "admin", "helpdesk", "auditor"};

const char *
role_name(enum role r)
{
	return (unsigned)r < ARRAY_SIZE(role_names) ? role_names[r] : "";
}

enum role
role_parse(const char *name)
{
	for (size_t i = 1; i < ARRAY_SIZE(role_names); i++)
		if (strcmp(name, role_names[i]) == 0)
			return (enum role)i;
	return ROLE_NONE;
}

/* Bit per perm, per role: the whole authorization policy of the admin API. */
#define P(x) (1u << (x))
static const unsigned role_perms[] = {
	[ROLE_NONE] = 0,
	[ROLE_ADMIN] = ~0u,
	[ROLE_HELPDESK] = P(PERM_READ) | P(PERM_ENROLL_WRITE) | P(PERM_CMD_ROUTINE),
	[ROLE_AUDITOR] = P(PERM_READ) | P(PERM_AUDIT_READ) | P(PERM_TOKENS_READ),
};
#undef P

int
svc_authorize(struct service *s, const struct principal *p, enum perm perm, struct svc_error *err)
{
	(void)s;
	if ((unsigned)p->role < ARRAY_SIZE(role_perms) && (role_perms[p->role] & (1u << perm)))
		return 0;
	return svc_fail(err, SVC_FORBIDDEN, "the %s role may not do this", role_name(p->role));
}

int
svc_authenticate(struct service *s, const char *bearer, struct principal *p, struct svc_error *err)
{
	struct api_token t;
	uint8_t h[32];
	int r;

	if (bearer == NULL || bearer[0] == '\0')
		return svc_fail(err, SVC_UNAUTHORIZED,
				"an API token is required "
				"(Authorization: Bearer <token>)");
	crypto_sha256(bearer, strlen(bearer), h);
	r = s->st->ops->token_by_hash(s->st, h, &t);
	if (r == -ENOENT)
		return svc_fail(err, SVC_UNAUTHORIZED, "the API token is not valid");
	if (r != 0)
		return svc_store_fail(err, r, "token");
	if (t.revoked_at != 0)
		return svc_fail(err, SVC_UNAUTHORIZED, "the API token has been revoked");
	if (t.expires_at != 0 && t.expires_at <= svc_now_s(s))
		return svc_fail(err, SVC_UNAUTHORIZED, "the API token has expired");
	p->role = role_parse(t.role);
	str_copy(p->id, sizeof(p->id), t.id);
	str_copy(p->name, sizeof(p->name), t.name);
	return 0;
}

/* ---- API tokens ---- */

static int
token_insert_once(struct service *s, const char *created_by, const char *name, enum role role,
		  int64_t expires_in_s, int approve, struct api_token *out, char **secret)
{
	struct api_token t;
	char detail[192];
	int r;

	memset(&t, 0, sizeof(t));
	r = svc_new_id(t.id, "tok_");
	if (r == 0)
		r = svc_new_secret("clv_at_", secret, t.hash);
	if (r != 0)
		return r;
	str_copy(t.name, sizeof(t.name), name);
	str_copy(t.role, sizeof(t.role), role_name(role));
	str_copy(t.created_by, sizeof(t.created_by), created_by);
	t.created_at = svc_now_s(s);
	t.expires_at = expires_in_s > 0 ? t.created_at + expires_in_s : 0;
	snprintf(detail, sizeof(detail), "name=%s role=%s%s", t.name, t.role,
		 approve ? " permissions=approve" : "");
	r = s->st->ops->tx_begin(s->st);
	if (r == 0) {
		r = s->st->ops->token_insert(s->st, &t);
		if (r == 0 && approve)
			r = s->st->ops->token_permission_add(s->st, t.id, "approve");
		if (r == 0)
			r = audit_append(s->st, service_now_ms(s), created_by, "token.create", t.id,
					 "ok", detail);
		if (r == 0)
			r = s->st->ops->tx_commit(s->st);
		else
			s->st->ops->tx_rollback(s->st);
	}
	if (r != 0) {
		free(*secret);
		*secret = NULL;
		return r;
	}
	*out = t;
	return 0;
}

static int
token_insert(struct service *s, const char *created_by, const char *name, enum role role,
	     int64_t expires_in_s, int approve, struct api_token *out, char **secret)
{
	int r;

	SVC_TX_RETRY(
		s, r,
		token_insert_once(s, created_by, name, role, expires_in_s, approve, out, secret));
	return r;
}

int
service_bootstrap_admin(struct service *s, char **secret)
{
	struct api_token t;
	int64_t n = 0;
	int r = s->st->ops->token_count(s->st, &n);

	*secret = NULL;
	if (r != 0 || n > 0)
		return r;
	return token_insert(s, "system", "initial admin", ROLE_ADMIN, 0, 0, &t, secret);
}

int
svc_token_create(struct service *s, const struct principal *p, const char *name, enum role role,
		 int64_t expires_in_s, struct api_token *out, char **secret, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_TOKENS_WRITE, err);

	if (r != 0)
		return r;
	if (role == ROLE_NONE)
		return svc_fail(err, SVC_INVALID, "role must be admin, helpdesk or auditor");
	r = token_insert(s, p->id, name, role, expires_in_s, 0, out, secret);
	return r == 0 ? 0 : svc_store_fail(err, r, "token");
}

int
svc_token_create_approver(struct service *s, const struct principal *p, const char *name,
			  int64_t expires_in_s, struct api_token *out, char **secret,
			  struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_TOKENS_WRITE, err);

	/* Only who may approve can mint an approver: no path around the second factor. */
	if (r == 0)
		r = svc_approver_check(s, p, err);
	if (r != 0)
		return r;
	r = token_insert(s, p->id, name, ROLE_ADMIN, expires_in_s, 1, out, secret);
	return r == 0 ? 0 : svc_store_fail(err, r, "token");
}

int
svc_token_list(struct service *s, const struct principal *p, int64_t after, size_t limit,
	       struct api_token *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_TOKENS_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->token_list(s->st, after, limit, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "token");
}

/* Runs op(id) and an audit entry in one transaction; maps -ENOENT to "not found". */
static int
revoke_tx_once(struct service *s, const struct principal *p, const char *action, const char *what,
	       int (*op)(struct store *, const char *, int64_t), const char *id,
	       struct svc_error *err)
{
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return svc_store_fail(err, r, what);
	r = op(s->st, id, svc_now_s(s));
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), p->id, action, id, "ok", "");
	if (r != 0) {
		s->st->ops->tx_rollback(s->st);
		if (r == -ENOENT)
			return svc_fail(err, SVC_NOT_FOUND, "no active %s with id %s", what, id);
		return svc_store_fail(err, r, what);
	}
	r = s->st->ops->tx_commit(s->st);
	return r == 0 ? 0 : svc_store_fail(err, r, what);
}

static int
revoke_tx(struct service *s, const struct principal *p, const char *action, const char *what,
	  int (*op)(struct store *, const char *, int64_t), const char *id, struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, revoke_tx_once(s, p, action, what, op, id, err));
	return r;
}

int
svc_token_revoke(struct service *s, const struct principal *p, const char *id,
		 struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_TOKENS_WRITE, err);

	if (r != 0)
		return r;
	return revoke_tx(s, p, "token.revoke", "token", s->st->ops->token_revoke, id, err);
}

/* ---- enrollment tokens ---- */

int
svc_enroll_url(struct service *s, const char *secret, char **url)
{
	size_t n = strlen(s->public_url) + strlen(secret) + 32;

	*url = malloc(n);
	if (*url == NULL)
		return -ENOMEM;
	snprintf(*url, n, "%s/enroll?token=%s", s->public_url, secret);
	return 0;
}

static int
etoken_create_once(struct service *s, const struct principal *p, const char *owner, int64_t uses,
		   int64_t expires_in_s, struct enroll_token *out, char **secret,
		   struct svc_error *err)
{
	struct enroll_token t;
	char detail[STORE_OWNER_MAX + 64];
	int r = svc_authorize(s, p, PERM_ENROLL_WRITE, err);

	if (r != 0)
		return r;
	if (uses < 1 || uses > 100000)
		return svc_fail(err, SVC_INVALID, "uses must be between 1 and 100000");
	if (expires_in_s < 0 || expires_in_s > 366 * 86400)
		return svc_fail(err, SVC_INVALID, "expires_in must be between 1 s and 366 days");
	memset(&t, 0, sizeof(t));
	r = svc_new_id(t.id, "etk_");
	if (r == 0)
		r = svc_new_secret("clv_et_", secret, t.hash);
	if (r != 0)
		return svc_store_fail(err, r, "enrollment token");
	str_copy(t.owner, sizeof(t.owner), owner);
	str_copy(t.created_by, sizeof(t.created_by), p->id);
	t.uses_max = uses;
	t.created_at = svc_now_s(s);
	t.expires_at = t.created_at + (expires_in_s > 0 ? expires_in_s : s->cfg.enroll_ttl_s);
	snprintf(detail, sizeof(detail), "owner=%s uses=%lld", t.owner, (long long)uses);
	r = s->st->ops->tx_begin(s->st);
	if (r == 0) {
		r = s->st->ops->etoken_insert(s->st, &t);
		if (r == 0)
			r = audit_append(s->st, service_now_ms(s), p->id, "enrollment_token.create",
					 t.id, "ok", detail);
		if (r == 0)
			r = s->st->ops->tx_commit(s->st);
		else
			s->st->ops->tx_rollback(s->st);
	}
	if (r != 0) {
		free(*secret);
		*secret = NULL;
		return svc_store_fail(err, r, "enrollment token");
	}
	*out = t;
	return 0;
}

int
svc_etoken_create(struct service *s, const struct principal *p, const char *owner, int64_t uses,
		  int64_t expires_in_s, struct enroll_token *out, char **secret,
		  struct svc_error *err)
{
	int r;

	SVC_TX_RETRY(s, r, etoken_create_once(s, p, owner, uses, expires_in_s, out, secret, err));
	return r;
}

int
svc_etoken_list(struct service *s, const struct principal *p, int64_t after, size_t limit,
		struct enroll_token *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->etoken_list(s->st, after, limit, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "enrollment token");
}

int
svc_etoken_revoke(struct service *s, const struct principal *p, const char *id,
		  struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_ENROLL_WRITE, err);

	if (r != 0)
		return r;
	return revoke_tx(s, p, "enrollment_token.revoke", "enrollment token",
			 s->st->ops->etoken_revoke, id, err);
}

/* ---- audit ---- */

int
svc_audit_list(struct service *s, const struct principal *p, const struct audit_filter *f,
	       struct audit_entry *out, size_t *n, struct svc_error *err)
{
	int r = svc_authorize(s, p, PERM_AUDIT_READ, err);

	if (r != 0)
		return r;
	r = s->st->ops->audit_list(s->st, f, out, n);
	return r == 0 ? 0 : svc_store_fail(err, r, "audit entry");
}

/* ---- metrics ---- */

void
svc_stats_get(struct service *s, struct svc_stats *out)
{
	out->checkins = atomic_load(&s->checkins);
	out->auth_failures = atomic_load(&s->auth_failures);
	out->tx_retries = atomic_load(&s->tx_retries);
	out->write_hold_max_us = -1;
	out->write_holds_over_50ms = 0;
	if (s->st->ops->tx_hold_stats != NULL &&
	    s->st->ops->tx_hold_stats(s->st, &out->write_hold_max_us,
				      &out->write_holds_over_50ms) != 0)
		out->write_hold_max_us = -1;
	svc_cross_stats(s, out);
	svc_bulker_stats(s, out);
}

int
svc_counts(struct service *s, struct status_count *devices, size_t *nd,
	   struct status_count *commands, size_t *nc, size_t max)
{
	int r = s->st->ops->device_count_by_status(s->st, devices, max, nd);

	if (r == 0)
		r = s->st->ops->command_count_by_status(s->st, commands, max, nc);
	return r;
}

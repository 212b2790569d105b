/*
 * `cleave-agent run`: the check-in loop. Each round settles the journal, uploads receipts,
 * reports the device's state in a signed long-poll check-in, and journals what comes back. A
 * server that cannot be reached (or answers 5xx) costs a jittered exponential backoff and a
 * fresh connection; cleave-hv being away only delays commands (they stay journaled). The
 * stop flag is honoured within about a second: every wait is sliced, every request watches it.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "backoff.h"
#include "crypto.h"
#include "log.h"

#define CHECKIN_WAIT_S  25 /* long-poll wait asked of the server */
#define CHECKIN_SLACK_S 15 /* the request's deadline is wait + slack */
#define STATE_SAVE_S    60 /* how often the last check-in time is written */
#define JOURNAL_KEEP_S  (7 * 24 * 3600)
#define LEASE_RENEW_S   60 /* renew cleave-hv's lease at least this often while online */

static void
sleep_ms(struct agent *a, uint32_t ms)
{
	struct timespec ts = {0, 100 * 1000000L};

	for (uint32_t t = 0; t < ms && !*a->stop; t += 100) {
		if (ms - t < 100)
			ts.tv_nsec = (long)(ms - t) * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/*
 * A fresh attestation from cleave-hv into raw. Returns 1 when cleave-hv still holds this
 * enrollment (our hypervisor key, our server key pinned), 0 when it does not, -1 when it did
 * not attest.
 */
static int
hv_attest(struct agent *a, uint8_t raw[ATTEST_LEN])
{
	uint8_t nonce[32];
	struct attestation at;

	if (crypto_random(nonce, sizeof(nonce)) != 0 ||
	    hvlink_attest(&a->hv, nonce, raw, &at, a->id.hv_spki, a->id.hv_spki_len) != CLV_OK)
		return -1;
	if (memcmp(at.hv_key, a->id.hv_key, 32) != 0)
		return 0;
	return memcmp(at.owner_key, a->id.server_key, 32) == 0;
}

/*
 * How often a check-in carries a fresh attestation. The server verifies each one (a signature
 * check on its check-in path) and accepts hypervisor clocks within 10 minutes of its own.
 */
#define ATTEST_EVERY_S 300

/* What we tell the server about ourselves; strings are static or live in a. */
static void
gather_state(struct agent *a, struct proto_state *ps)
{
	static const char *const names[] = {NULL, "active", "locked", "wiped", "wiped"};
	static uint8_t att[ATTEST_LEN];
	struct clv_status s;
	int mine;

	memset(ps, 0, sizeof(*ps));
	ps->agent_version = AGENT_VERSION;
	ps->policy_name = a->st.policy_name;
	ps->policy_version = a->st.policy_version;
	ps->key_epoch = -1;
	if (hvlink_status(&a->hv, &s) != CLV_OK || s.state < 1 || s.state > 4)
		return;
	ps->corporate_state = names[s.state];
	ps->key_epoch = (int64_t)s.key_epoch;
	mine = hv_attest(a, att);
	if (mine >= 0 && (int64_t)time(NULL) - a->attest_sent_at >= ATTEST_EVERY_S) {
		ps->attestation = att;
		a->attest_sent_at = (int64_t)time(NULL);
	}
	/*
	 * After a wipe cleave-hv releases the enrollment and offers a fresh, empty corporate half
	 * for the next one: for this device, the corporate half it managed is gone.
	 */
	if (a->id.pinned && mine == 0)
		ps->corporate_state = "wiped";
}

/* Pins the server key into cleave-hv when enrollment could not (it was down then). */
static void
ensure_pinned(struct agent *a)
{
	int st, mine;

	uint8_t raw[ATTEST_LEN];

	if (a->id.pinned)
		return;
	mine = hv_attest(a, raw);
	st = mine == 1 ? CLV_E_NOT_REQUIRED : hvlink_pin(&a->hv, a->id.server_key, a->id.device_id);
	if (st != CLV_OK && st != CLV_E_NOT_REQUIRED) {
		log_warn("cleave-hv does not hold this enrollment's server key yet: %s",
			 hvlink_strerror(&a->hv, st));
		return;
	}
	a->id.pinned = 1;
	if (identity_save(&a->dir, &a->id, NULL) != 0)
		log_warn("cannot record that cleave-hv is pinned; will check again");
	else
		log_info("cleave-hv now holds this enrollment's server key");
}

/* Logs a lease problem once per distinct reason (a wiped device keeps failing the same way). */
static void
lease_problem(struct agent *a, const char *why)
{
	if (strcmp(why, a->lease_problem) != 0)
		log_warn("cleave-hv's lease not renewed: %s", why);
	str_copy(a->lease_problem, sizeof(a->lease_problem), why);
}

static void
renew_lease(struct agent *a, const uint8_t lease[TICKET_LEN])
{
	uint8_t none[RECEIPT_LEN];
	struct ticket tk;
	int64_t now = (int64_t)time(NULL);
	int has, st = hvlink_order(&a->hv, CLV_FN_RENEW_LEASE, lease, none, &has);

	a->lease_at = now;
	if (st != CLV_OK) {
		lease_problem(a, hvlink_strerror(&a->hv, st));
		return;
	}
	if (ticket_decode(lease, TICKET_LEN, &tk) == 0 && (int64_t)tk.args[0] > now) {
		a->lease_len = (int64_t)tk.args[0] - now;
		log_debug("lease renewed until %" PRIu64, tk.args[0]);
	}
	a->lease_problem[0] = '\0';
}

/* Fetches and applies a lease when half of the last one (at most a minute) has gone by. */
static void
maybe_renew_lease(struct agent *a)
{
	int64_t now = (int64_t)time(NULL), every = LEASE_RENEW_S;
	uint8_t lease[TICKET_LEN];
	struct http_resp r;
	char why[PROTO_ERR_MAX];
	int rc;

	if (a->lease_len > 0)
		every = MIN(every, MAX(1, a->lease_len / 2));
	if (a->lease_at != 0 && now - a->lease_at < every)
		return;
	if ((rc = agent_post(a, "/device/v1/lease", "{}", 30, &r)) != 0) {
		if (rc != HTTP_E_STOPPED)
			lease_problem(a, r.error);
		return;
	}
	proto_problem(r.body, r.len, why, sizeof(why));
	if (r.status == 200 && proto_lease_parse(r.body, r.len, a->id.device_id, lease) == 0) {
		renew_lease(a, lease);
	} else {
		char msg[PROTO_ERR_MAX + 32];

		snprintf(msg, sizeof(msg), "HTTP %ld: %s", r.status, why);
		lease_problem(a, msg);
		a->lease_at = now;
	}
	http_resp_fini(&r);
}

/* Records an answered check-in; the time is written at most once a minute. */
static void
note_checkin(struct agent *a, const char *problem)
{
	int64_t now = (int64_t)time(NULL);
	int changed = strcmp(a->st.last_error, problem) != 0;

	a->st.last_checkin = now;
	str_copy(a->st.last_error, sizeof(a->st.last_error), problem);
	if (changed || now - a->st_saved_at >= STATE_SAVE_S)
		if (agent_save_state(a) != 0)
			log_warn("cannot save the agent state");
}

enum round_result {
	ROUND_OK,      /* new work arrived */
	ROUND_IDLE,    /* nothing new (204, or stopped) */
	ROUND_NOTHING, /* 200 without anything new: the server would answer again at once */
	ROUND_RETRY,   /* no usable answer: back off */
	ROUND_FATAL,   /* the journal cannot be written */
};

/* Handles a 200 check-in answer. */
static int
on_commands(struct agent *a, const struct http_resp *r)
{
	static struct checkin_reply cr;
	char err[PROTO_ERR_MAX];
	int fresh = 0, is_new;

	if (proto_checkin_parse(r->body, r->len, a->id.device_id, &cr, err, sizeof(err)) != 0) {
		log_err("the server's check-in answer is malformed (%s); ignoring it", err);
		return ROUND_RETRY;
	}
	for (size_t i = 0; i < cr.n; i++) {
		if (command_accept(a, &cr.cmd[i], &is_new) != 0)
			return ROUND_FATAL;
		fresh += is_new;
	}
	if (cr.skipped > 0)
		log_info("%zu more command(s) come with the next check-in", cr.skipped);
	if (cr.has_lease)
		renew_lease(a, cr.lease);
	/* A lease alone is no work: the server adds one to every 200, even with nothing new. */
	if (fresh > 0)
		return ROUND_OK;
	if (cr.has_policy && (strcmp(cr.policy_name, a->policy_warned) != 0 ||
			      cr.policy_version != a->policy_warned_version))
		log_warn("the server expects policy %s v%" PRId64 " but sent nothing to apply "
			 "(applied: %s v%" PRId64 "); checking again in a few seconds",
			 cr.policy_name, cr.policy_version,
			 a->st.policy_name[0] ? a->st.policy_name : "none", a->st.policy_version);
	if (cr.has_policy) {
		str_copy(a->policy_warned, sizeof(a->policy_warned), cr.policy_name);
		a->policy_warned_version = cr.policy_version;
	}
	return ROUND_NOTHING;
}

/* One check-in. *parked_logged keeps the "parked" line to once per quiet spell. */
static int
checkin(struct agent *a, int wait_s, int *parked_logged, char *err, size_t cap)
{
	struct proto_state ps;
	struct http_resp r;
	char *body, why[PROTO_ERR_MAX];
	int rc;

	gather_state(a, &ps);
	body = proto_checkin_body(wait_s, &ps);
	if (body == NULL)
		return ROUND_RETRY;
	if (wait_s > 0)
		log_msg(*parked_logged ? LOG_LVL_DEBUG : LOG_LVL_INFO,
			"check-in: parked, waiting up to %d s for commands (corporate half %s)",
			wait_s, ps.corporate_state ? ps.corporate_state : "unknown");
	*parked_logged = wait_s > 0;
	rc = agent_post(a, "/device/v1/checkin", body, wait_s + CHECKIN_SLACK_S, &r);
	free(body);
	if (rc != 0) {
		*parked_logged = 0;
		str_copy(err, cap, r.error);
		return rc == HTTP_E_STOPPED ? ROUND_IDLE : ROUND_RETRY;
	}
	proto_problem(r.body, r.len, why, sizeof(why));
	if (r.status == 204) {
		note_checkin(a, "");
		rc = ROUND_IDLE;
	} else if (r.status == 200) {
		note_checkin(a, "");
		*parked_logged = 0;
		rc = on_commands(a, &r);
	} else {
		snprintf(err, cap, "the server answered HTTP %ld: %s", r.status, why);
		if (r.status >= 400 && r.status < 500)
			note_checkin(a, err);
		*parked_logged = 0;
		rc = ROUND_RETRY;
	}
	http_resp_fini(&r);
	return rc;
}

/* After a retire: the corporate half is gone and the server has its receipt. */
static int
finish_retired(struct agent *a)
{
	char id[AGENT_ID_MAX];

	str_copy(id, sizeof(id), a->id.device_id);
	agent_close(a);
	if (agent_dir_purge(&a->dir) != 0)
		return AGENT_EXIT_FAIL;
	log_info("device %s retired: corporate half wiped with a verified receipt; this "
		 "enrollment is removed (nothing personal was touched)",
		 id);
	return AGENT_EXIT_OK;
}

/* Settles the journal and uploads receipts. Returns commands left waiting, or -errno. */
static int
settle_work(struct agent *a)
{
	int left = command_step_all(a);

	if (left < 0) {
		log_err("the command journal cannot be used (%s); stopping rather than risk "
			"running a command twice",
			strerror(-left));
		return left;
	}
	/* Receipts left in cleave-hv are retried each round; they do not hurry the loop. */
	if (!a->retired && !command_any_executing(a))
		receipts_sync(a);
	return left;
}

/*
 * How long the next check-in may park: not at all right after failures (so results and
 * receipts go out as soon as the server is back) or for a refresh; shorter while commands wait
 * for cleave-hv (their retry delay) or while leases are short (renewed while parked too).
 */
static int
next_wait(struct agent *a, int once, const struct backoff *bo, struct backoff *hv_bo, int left)
{
	int wait = CHECKIN_WAIT_S;

	if (left > 0)
		wait = (int)MAX(1, MIN(CHECKIN_WAIT_S, backoff_next(hv_bo) / 1000));
	else
		backoff_reset(hv_bo);
	if (once || a->report_now || bo->attempt > 0)
		return 0;
	if (a->lease_len > 0)
		wait = (int)MAX(1, MIN(wait, a->lease_len / 3));
	return wait;
}

/* The end of `run --once`: results and receipts out, then an exit code. */
static int
finish_once(struct agent *a)
{
	int left = settle_work(a);

	if (left < 0)
		return AGENT_EXIT_STATE;
	if (a->retired)
		return finish_retired(a);
	return left == 0 ? AGENT_EXIT_OK : AGENT_EXIT_FAIL;
}

int
agent_run(struct agent *a, int once)
{
	struct backoff bo, hv_bo;
	char err[256];
	uint64_t seed = 0;
	int parked = 0, left, rc;
	unsigned journal_gen = (unsigned)-1;

	crypto_random(&seed, sizeof(seed));
	backoff_init(&bo, 500, 60000, seed);
	backoff_init(&hv_bo, 500, 30000, seed ^ 0x5bd1e995u);
	log_info("cleave-agent %s: device %s, server %s, cleave-hv at %s", AGENT_VERSION,
		 a->id.device_id, a->id.server, a->hv.path);
	ensure_pinned(a);
	while (!*a->stop) {
		left = settle_work(a);
		if (left < 0)
			return AGENT_EXIT_STATE;
		/* Once the journal is known to be readable, and after each reported command. */
		if (journal_gen != a->journal_gen) {
			journal_prune(&a->journal, (int64_t)time(NULL), JOURNAL_KEEP_S);
			journal_gen = a->journal_gen;
		}
		if (a->retired)
			return finish_retired(a);
		if (!a->id.pinned)
			ensure_pinned(a);
		rc = checkin(a, next_wait(a, once, &bo, &hv_bo, left), &parked, err, sizeof(err));
		a->report_now = 0;
		if (rc == ROUND_FATAL)
			return AGENT_EXIT_STATE;
		if (rc == ROUND_RETRY) {
			uint32_t d = backoff_next(&bo);

			if (once) {
				log_err("check-in failed: %s", err);
				return AGENT_EXIT_SERVER;
			}
			log_warn("check-in failed: %s; retrying in %.1f s with a fresh connection",
				 err, d / 1000.0);
			http_client_reset(a->http);
			sleep_ms(a, d);
			continue;
		}
		maybe_renew_lease(a);
		if (bo.attempt > 0) {
			log_info("server reachable again");
			backoff_reset(&bo);
			continue;
		}
		if (once)
			return finish_once(a);
		/* 200 with nothing to do is how the server says "policy pending": do not spin. */
		if (rc == ROUND_NOTHING)
			sleep_ms(a, 5000);
	}
	log_info("stopping: signal received");
	return AGENT_EXIT_OK;
}

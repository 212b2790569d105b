/*
 * The command lifecycle on the device: received (journaled) -> acknowledged -> executing (the
 * ticket goes to cleave-hv) -> done (outcome and receipt journaled) -> reported (the server has
 * the result). Each arrow is written to the journal before the step it allows, so after a crash
 * a record says exactly what may already have happened. An "executing" record whose outcome is
 * unknown is settled from cleave-hv itself (its pending receipts, then its ticket counter),
 * never by passing the ticket again blindly. While cleave-hv is unreachable commands wait, for
 * as long as their ticket is valid: they are never failed for that alone, and never lost.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "crypto.h"
#include "kvfile.h"
#include "log.h"

#define WAITING 1 /* step result: try again later */

/*
 * Fault injection for crash tests: when CLEAVE_AGENT_FAULT names this point the agent kills
 * itself with SIGKILL there, as a crash or power cut would. Points: "after-received" (journaled,
 * not acknowledged), "before-order" (journaled as executing, ticket not yet sent),
 * "after-order" (cleave-hv carried it out, the outcome not journaled), "before-report" (outcome
 * journaled, result not sent).
 */
static void
fault_point(const char *name)
{
	const char *f = getenv("CLEAVE_AGENT_FAULT");

	if (f != NULL && strcmp(f, name) == 0) {
		log_warn("CLEAVE_AGENT_FAULT=%s: killing myself here", name);
		raise(SIGKILL);
	}
}

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

/* The bridge call that carries out a command type; 0 for refresh (nothing to carry out). */
static uint32_t
order_fid(const char *type)
{
	static const struct {
		const char *type;
		uint32_t fid;
	} map[] = {
		{"wipe", CLV_FN_WIPE},   {"retire", CLV_FN_WIPE},
		{"lock", CLV_FN_LOCK},   {"unlock", CLV_FN_UNLOCK},
		{"rekey", CLV_FN_REKEY}, {"policy", CLV_FN_SET_POLICY},
		{"refresh", 0},
	};

	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strcmp(type, map[i].type) == 0)
			return map[i].fid;
	return 0;
}

static int
save(struct agent *a, struct journal_entry *e)
{
	e->updated_at = now_s();
	return journal_put(&a->journal, e);
}

int
command_accept(struct agent *a, const struct proto_command *pc, int *is_new)
{
	struct journal_entry e;
	int r = journal_get(&a->journal, pc->id, &e);

	*is_new = 0;
	if (r == 0) {
		if (memcmp(e.ticket, pc->ticket, TICKET_LEN) != 0)
			log_warn("command %s came again with another ticket; keeping the first one",
				 pc->id);
		return 0;
	}
	if (r != -ENOENT)
		return r;
	memset(&e, 0, sizeof(e));
	str_copy(e.id, sizeof(e.id), pc->id);
	str_copy(e.type, sizeof(e.type), pc->type);
	str_copy(e.reason, sizeof(e.reason), pc->reason);
	e.counter = pc->counter;
	memcpy(e.ticket, pc->ticket, TICKET_LEN);
	e.state = JS_RECEIVED;
	e.received_at = now_s();
	r = save(a, &e);
	if (r != 0)
		return r;
	log_info("command %s (%s) received (ticket counter %" PRIu64 "%s%s)", e.id, e.type,
		 e.counter, e.reason[0] ? ", reason: " : "", e.reason);
	fault_point("after-received");
	*is_new = 1;
	return 0;
}

/* Best effort: the server learns that we have the command. A failure is retried later. */
static int
ack(struct agent *a, struct journal_entry *e)
{
	char path[128];
	struct http_resp r;
	int rc;

	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", e->id);
	rc = agent_post(a, path, "{}", 30, &r);
	if (rc != 0) {
		log_debug("command %s: ack not sent: %s", e->id, r.error);
		return 0;
	}
	if (r.status == 200) {
		e->acked = 1;
		rc = save(a, e);
	} else if (r.status == 409 && e->state == JS_RECEIVED) {
		char why[PROTO_ERR_MAX];

		/* Canceled before we acted: never carry it out. Nothing to report either. */
		proto_problem(r.body, r.len, why, sizeof(why));
		log_warn("command %s (%s) was withdrawn by the server (%s); not carrying it out",
			 e->id, e->type, why);
		e->acked = 1;
		e->state = JS_REPORTED;
		e->completed = 0;
		snprintf(e->detail, sizeof(e->detail), "withdrawn by the server before execution");
		rc = save(a, e);
	} else {
		log_warn("command %s: the server answered the ack with HTTP %ld", e->id, r.status);
	}
	http_resp_fini(&r);
	return rc;
}

static int
done(struct agent *a, struct journal_entry *e, int completed, const char *detail,
     const uint8_t *receipt)
{
	e->state = JS_DONE;
	e->completed = completed;
	str_copy(e->detail, sizeof(e->detail), detail);
	kv_sanitize(e->detail);
	if (receipt != NULL) {
		memcpy(e->receipt, receipt, RECEIPT_LEN);
		e->has_receipt = 1;
	}
	log_info("command %s (%s) %s: %s", e->id, e->type, completed ? "completed" : "FAILED",
		 e->detail);
	/* The next check-in shows the server what cleave-hv now holds (state, policy), signed. */
	a->attest_sent_at = 0;
	return save(a, e);
}

/*
 * Checks that a receipt answers this ticket and is signed by the hypervisor we enrolled with,
 * and describes it. Returns 1 when it says "done", 0 when it reports a failure, -1 when it is
 * not a receipt for this ticket at all.
 */
static int
receipt_describe(struct agent *a, const uint8_t raw[RECEIPT_LEN],
		 const uint8_t ticket_hash[SHA256_LEN], char *out, size_t cap)
{
	struct receipt rc;

	if (receipt_decode(raw, RECEIPT_LEN, &rc) != 0 ||
	    memcmp(rc.ticket_hash, ticket_hash, SHA256_LEN) != 0 ||
	    memcmp(rc.hv_key, a->id.hv_key, 32) != 0 ||
	    !hvlink_sig_ok(rc.sig_alg, a->id.hv_key, a->id.hv_spki, a->id.hv_spki_len, raw,
			   RECEIPT_BODY_LEN, raw + RECEIPT_BODY_LEN))
		return -1;
	snprintf(out, cap,
		 "receipt seq %" PRIu64 ", key epoch %" PRIu64 " -> %" PRIu64
		 ", checks 0x%x/0x%x%s%s",
		 rc.seq, rc.epoch_before, rc.epoch_after, rc.checks_passed, rc.checks_run,
		 rc.result ? ", cleave-hv: " : "", rc.result ? bridge_strerror(rc.result) : "");
	return rc.result == 0;
}

/* Looks for the receipt of ticket_hash among cleave-hv's pending receipts. 1 found, 0 not. */
static int
find_receipt(struct agent *a, const uint8_t hash[SHA256_LEN], uint8_t out[RECEIPT_LEN], int *st)
{
	uint8_t rc[CLV_RECEIPTS_PER_MSG][RECEIPT_LEN];
	size_t n = 0;

	*st = hvlink_receipts(&a->hv, rc, &n);
	for (size_t i = 0; *st == CLV_OK && i < n; i++) {
		if (memcmp(rc[i] + 112, hash, SHA256_LEN) == 0) {
			memcpy(out, rc[i], RECEIPT_LEN);
			return 1;
		}
	}
	return 0;
}

static int
waiting(struct agent *a, struct journal_entry *e, int st)
{
	e->attempts++;
	if (e->attempts == 1 || e->attempts % 20 == 0)
		log_warn("command %s (%s) waits: %s (attempt %" PRIu32
			 "; it stays journaled and is retried)",
			 e->id, e->type, hvlink_strerror(&a->hv, st), e->attempts);
	return save(a, e) == 0 ? WAITING : -EIO;
}

/* Records what a successful SET_POLICY means for what we report. */
static void
policy_applied(struct agent *a, const struct journal_entry *e, const struct ticket *tk)
{
	str_copy(a->st.policy_name, sizeof(a->st.policy_name), e->reason);
	a->st.policy_version = (int64_t)tk->args[3];
	if (agent_save_state(a) != 0)
		log_warn("cannot save the applied policy; it is reported from memory");
}

/* Turns cleave-hv's answer to a ticket into the record's outcome. */
static int
outcome(struct agent *a, struct journal_entry *e, const struct ticket *tk, int st,
	const uint8_t rc[RECEIPT_LEN], int has_receipt)
{
	uint8_t hash[SHA256_LEN], found[RECEIPT_LEN];
	char detail[200];
	int ok, st2;

	crypto_sha256(e->ticket, TICKET_LEN, hash);
	if (hvlink_unreached(st) || st == CLV_E_BUSY)
		return waiting(a, e, st);
	if (st < CLV_E_IO) {
		log_warn("command %s (%s): the answer of cleave-hv was lost (%s); its outcome is "
			 "settled from cleave-hv's receipts",
			 e->id, e->type, hvlink_strerror(&a->hv, st));
		return WAITING;
	}
	if (st == CLV_OK && has_receipt) {
		ok = receipt_describe(a, rc, hash, detail, sizeof(detail));
		if (ok < 0) {
			log_err("command %s: cleave-hv answered with a receipt that is not for "
				"this "
				"ticket or not signed by the enrolled hypervisor key",
				e->id);
			return done(a, e, 0, "cleave-hv's receipt does not match the ticket", rc);
		}
		return done(a, e, ok, detail, rc);
	}
	if (st == CLV_OK) {
		if (strcmp(e->type, "policy") == 0)
			policy_applied(a, e, tk);
		snprintf(detail, sizeof(detail), "applied by cleave-hv%s%s",
			 strcmp(e->type, "policy") == 0 ? ": policy " : "",
			 strcmp(e->type, "policy") == 0 ? e->reason : "");
		return done(a, e, 1, detail, NULL);
	}
	if (st == CLV_E_NOT_REQUIRED)
		return done(a, e, 1, "nothing to do: cleave-hv is already in that state", NULL);
	if (st == CLV_E_BAD_TICKET && find_receipt(a, hash, found, &st2) == 1) {
		/* Carried out before (its receipt is still pending): that is the outcome. */
		ok = receipt_describe(a, found, hash, detail, sizeof(detail));
		return done(a, e, ok == 1, detail, found);
	}
	if (st == CLV_E_BAD_TICKET) {
		struct clv_status s;

		/* Its counter is past ours: taken before (a crash), its receipt already gone. */
		if (hvlink_status(&a->hv, &s) == CLV_OK && s.ticket_counter >= tk->counter)
			return done(a, e, 0,
				    "outcome unknown: cleave-hv took the ticket but no longer "
				    "holds its receipt",
				    NULL);
	}
	snprintf(detail, sizeof(detail), "cleave-hv refused: %s", bridge_strerror(st));
	return done(a, e, 0, detail, NULL);
}

/*
 * Settles an "executing" record after a crash or a lost answer. Returns 0 when the record is
 * done, WAITING, or -EAGAIN when cleave-hv never took the ticket (it may be passed now).
 */
static int
settle(struct agent *a, struct journal_entry *e, const struct ticket *tk)
{
	uint8_t hash[SHA256_LEN], rc[RECEIPT_LEN];
	struct clv_status s;
	char detail[200];
	int st, ok;

	crypto_sha256(e->ticket, TICKET_LEN, hash);
	if (find_receipt(a, hash, rc, &st) == 1) {
		ok = receipt_describe(a, rc, hash, detail, sizeof(detail));
		log_info("command %s (%s): cleave-hv had carried it out (receipt found)", e->id,
			 e->type);
		return done(a, e, ok == 1, detail, rc);
	}
	if (st != CLV_OK)
		return waiting(a, e, st);
	st = hvlink_status(&a->hv, &s);
	if (st != CLV_OK)
		return waiting(a, e, st);
	if (s.ticket_counter < tk->counter) {
		log_info("command %s (%s): cleave-hv never took the ticket (its counter is %" PRIu64
			 ", the ticket's %" PRIu64 "); passing it now",
			 e->id, e->type, s.ticket_counter, tk->counter);
		return -EAGAIN;
	}
	if (strcmp(e->type, "policy") == 0) {
		policy_applied(a, e, tk);
		return done(a, e, 1, "applied by cleave-hv (confirmed by its ticket counter)",
			    NULL);
	}
	/*
	 * Taken but no receipt yet: cleave-hv may still be carrying it out (it journals every
	 * order and finishes it after a crash or a disk error). Passing the same ticket again is
	 * safe: it answers BUSY while the order runs, and once done refuses it as a replay, whose
	 * receipt outcome() then finds. Only without one is the outcome unknown.
	 */
	log_info("command %s (%s): cleave-hv took the ticket and has no receipt for it yet; "
		 "asking again",
		 e->id, e->type);
	return -EAGAIN;
}

static int
execute(struct agent *a, struct journal_entry *e)
{
	uint8_t rc[RECEIPT_LEN];
	uint32_t fid = order_fid(e->type);
	struct clv_status s;
	struct ticket tk;
	int st, has = 0;

	if (ticket_decode(e->ticket, TICKET_LEN, &tk) != 0)
		return done(a, e, 0, "the ticket does not decode", NULL);
	if (e->state == JS_EXECUTING) {
		st = settle(a, e, &tk);
		if (st != -EAGAIN)
			return st;
	}
	if (fid == 0) {
		a->report_now = 1;
		return done(a, e, 1, "state reported with the next check-in", NULL);
	}
	if (tk.expires_at <= (uint64_t)now_s())
		return done(a, e, 0, "the ticket expired before cleave-hv could carry it out",
			    NULL);
	/* cleave-hv must be there before the record says "executing". */
	st = hvlink_status(&a->hv, &s);
	if (st != CLV_OK)
		return waiting(a, e, st);
	if (e->state != JS_EXECUTING) {
		e->state = JS_EXECUTING;
		if (save(a, e) != 0)
			return -EIO;
	}
	log_info("command %s (%s): passing the ticket to cleave-hv", e->id, e->type);
	fault_point("before-order");
	st = hvlink_order(&a->hv, fid, e->ticket, rc, &has);
	fault_point("after-order");
	return outcome(a, e, &tk, st, rc, has);
}

/* Reports the outcome until the server has it. 0 reported, WAITING, or -errno. */
static int
report(struct agent *a, struct journal_entry *e)
{
	char path[128], why[PROTO_ERR_MAX];
	char *body = proto_result_body(e->completed, e->detail, e->has_receipt ? e->receipt : NULL);
	struct http_resp r;
	int rc, verified;

	if (body == NULL)
		return -ENOMEM;
	fault_point("before-report");
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", e->id);
	rc = agent_post(a, path, body, 30, &r);
	free(body);
	if (rc != 0) {
		log_warn("command %s: result not delivered yet: %s", e->id, r.error);
		return WAITING;
	}
	proto_problem(r.body, r.len, why, sizeof(why));
	verified = proto_result_verified(r.body, r.len);
	switch (r.status) {
	case 200:
		log_info("command %s (%s) result reported: %s%s", e->id, e->type,
			 e->completed ? "completed" : "failed",
			 verified == 1 ? ", receipt verified by the server" : "");
		break;
	case 409:
		log_warn("command %s: the server already holds a different result (%s); dropping "
			 "ours",
			 e->id, why);
		break;
	case 404:
		log_warn("command %s: the server does not know it (%s); dropping its result", e->id,
			 why);
		break;
	case 422:
		log_err("command %s: the server REJECTED our result or receipt: %s. It stays "
			"journaled and is retried",
			e->id, why);
		http_resp_fini(&r);
		return WAITING;
	default:
		log_warn("command %s: result not accepted yet (HTTP %ld: %s)", e->id, r.status,
			 why);
		http_resp_fini(&r);
		return WAITING;
	}
	http_resp_fini(&r);
	e->state = JS_REPORTED;
	if (save(a, e) != 0)
		return -EIO;
	a->journal_gen++;
	if (strcmp(e->type, "retire") == 0 && e->completed)
		a->retired = 1;
	return 0;
}

/* One record as far as it goes. exec_ok: earlier records are not waiting to execute. */
static int
step(struct agent *a, struct journal_entry *e, int exec_ok)
{
	int r = 0;

	if (e->state == JS_REPORTED)
		return 0;
	if (!e->acked && e->state <= JS_EXECUTING && (r = ack(a, e)) != 0)
		return r;
	if (e->state == JS_REPORTED) /* withdrawn */
		return 0;
	if (e->state == JS_RECEIVED || e->state == JS_EXECUTING) {
		if (!exec_ok)
			return WAITING;
		r = execute(a, e);
		if (r != 0)
			return r;
	}
	return report(a, e);
}

int
command_step_all(struct agent *a)
{
	struct journal_entry *v;
	size_t n;
	int left = 0, exec_ok = 1;
	int r = journal_list(&a->journal, &v, &n);

	if (r != 0)
		return r;
	for (size_t i = 0; i < n && !*a->stop; i++) {
		r = step(a, &v[i], exec_ok);
		if (r < 0) {
			free(v);
			return r;
		}
		if (r == WAITING) {
			left++;
			/* Tickets must reach cleave-hv in counter order, or later ones void earlier. */
			if (v[i].state <= JS_EXECUTING)
				exec_ok = 0;
		}
	}
	free(v);
	return left;
}

int
command_any_executing(struct agent *a)
{
	struct journal_entry *v;
	size_t n;
	int any = 0;

	if (journal_list(&a->journal, &v, &n) != 0)
		return 1; /* cannot tell: behave as if one were */
	for (size_t i = 0; i < n; i++)
		any |= v[i].state == JS_EXECUTING;
	free(v);
	return any;
}

/* Logs each autonomous receipt once: an operator must see that cleave-hv acted alone. */
static void
log_auto(struct agent *a, const uint8_t (*rc)[RECEIPT_LEN], size_t n)
{
	struct receipt r;

	for (size_t i = 0; i < n; i++) {
		if (receipt_decode(rc[i], RECEIPT_LEN, &r) != 0 || r.seq <= a->logged_auto_seq)
			continue;
		if (r.type == RECEIPT_AUTO_LOCK || r.type == RECEIPT_AUTO_WIPE)
			log_warn("cleave-hv %s the corporate half on its own (offline policy); "
				 "receipt seq %" PRIu64 " goes to the server",
				 r.type == RECEIPT_AUTO_LOCK ? "LOCKED" : "WIPED", r.seq);
		a->logged_auto_seq = r.seq;
	}
}

/* Logs why the server did not take receipts, once per distinct reason. */
static void
receipts_refused(struct agent *a, long status, const char *why)
{
	char msg[sizeof(a->receipt_problem)];

	snprintf(msg, sizeof(msg), "HTTP %ld: %s", status, why);
	if (strcmp(msg, a->receipt_problem) == 0)
		return;
	str_copy(a->receipt_problem, sizeof(a->receipt_problem), msg);
	if (status == 422)
		log_err("the server REJECTED a receipt from cleave-hv (%s); it is not "
			"acknowledged and stays in cleave-hv",
			msg);
	else
		log_warn("receipts not accepted by the server (%s); they stay in cleave-hv and are "
			 "offered again each round",
			 msg);
}

int
receipts_sync(struct agent *a)
{
	static uint8_t rc[CLV_RECEIPTS_PER_MSG][RECEIPT_LEN];
	char why[PROTO_ERR_MAX];
	uint64_t accepted, highest;
	struct http_resp r;
	size_t n;
	int st;

	for (int round = 0; round < 8; round++) {
		char *body;

		st = hvlink_receipts(&a->hv, rc, &n);
		if (st != CLV_OK || n == 0)
			return st == CLV_OK ? 0 : 1;
		log_auto(a, (const uint8_t(*)[RECEIPT_LEN])rc, n);
		body = proto_receipts_body((const uint8_t(*)[RECEIPT_LEN])rc, n);
		if (body == NULL)
			return 1;
		st = agent_post(a, "/device/v1/receipts", body, 30, &r);
		free(body);
		if (st != 0) {
			log_debug("receipts not uploaded yet: %s", r.error);
			return 1;
		}
		proto_problem(r.body, r.len, why, sizeof(why));
		if (r.status != 200 || proto_receipts_reply(r.body, r.len, &accepted, &highest)) {
			receipts_refused(a, r.status, why);
			http_resp_fini(&r);
			return 1;
		}
		http_resp_fini(&r);
		a->receipt_problem[0] = '\0';
		log_info("uploaded %zu receipt(s); the server holds them up to seq %" PRIu64, n,
			 highest);
		st = hvlink_receipt_ack(&a->hv, highest);
		if (st != CLV_OK) {
			log_warn("cannot acknowledge receipts to cleave-hv: %s",
				 hvlink_strerror(&a->hv, st));
			return 1;
		}
		if (n < CLV_RECEIPTS_PER_MSG)
			return 0;
	}
	return 1;
}

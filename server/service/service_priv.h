/*
 * Private to service/: the service object and helpers shared by its files.
 */
#ifndef CLEAVE_SERVICE_PRIV_H
#define CLEAVE_SERVICE_PRIV_H

#include <stdatomic.h>

#include "devstate.h"
#include "service.h"
#include "util.h"

/* Kinds of periodic work whose failures are logged once (service_tick). */
enum { TICK_FLUSH, TICK_EXPIRE, TICK_REFUSALS, TICK_ROTATE, TICK_APPROVALS, TICK_COUNT };

struct svc_tpm_cas;

struct service {
	struct store *st;
	struct svc_tpm_cas *tpm_cas; /* cfg.tpm_ca_file, reloaded when it changes; NULL: none */
	const struct ed25519_key *ticket_key;
	uint8_t ticket_pub[32];
	struct service_config cfg;
	char *public_url;
	svc_clock_fn clock;
	svc_wake_fn wake;
	void *wake_ctx;
	policy_parse_fn parse_policy;
	struct devstate dev;
	atomic_uint_fast64_t checkins;
	atomic_uint_fast64_t auth_failures;
	atomic_uint_fast64_t tx_retries; /* transactions run again after -EDEADLK (svc_tx_again) */
	/* service_store_ok's cached answer: when it was taken (monotonic ms; 0: never) and it. */
	atomic_int_fast64_t health_at;
	atomic_int health_ok;
	/* Touched by the tick only: which kinds of its work failed last, when keys were checked. */
	int tick_failing[TICK_COUNT];
	int64_t rotate_scan_at;
	int64_t approval_sweep_at; /* the last sweep of expired approval requests */
	struct svc_ckpt *ckpt;     /* NULL: audit checkpoints are off */
	struct svc_verify *verify;
	struct siem *siem; /* this server's audit stream sender; NULL: none (auditstream.c) */
	struct svc_refusals *refusals;
	struct replaylog *replay; /* NULL: nonces reach the store only by the flush */
	struct svc_waker *waker;  /* wakes a changed policy's followers (waker.c) */
	struct svc_cross *cross;  /* NULL unless listening to the other servers (crosswake.c) */
	struct svc_bulker
		*bulker;         /* bulk operations by filter (bulkop.c), made at the first tick */
	struct svc_hookd *hookd; /* webhook delivery (hookd.c); NULL until started */
	int webhook_http_any;    /* http:// subscriptions to any host (svc_webhook_config) */
	uint8_t hook_key[32];    /* seals webhook secrets at rest (hooksecret.c) */
	int hook_key_set;
	/* First-start setup (admins.c): the one-time code's SHA-256 while it is unused. */
	atomic_int setup_armed;
	uint8_t setup_hash[32];
	char *setup_path; /* the file that holds the code; removed once it is used */
};

/*
 * What a device query's policy filter and compliance spec point into (compliance.c): the
 * policies' values and the groups that give a policy. svc_qmem_free(NULL) does nothing.
 */
struct svc_qmem;
void svc_qmem_free(struct svc_qmem *m);
/*
 * Fills q's policy_is_default and policy_groups and, when its filters need one, its
 * compliance spec (spec and *mem, freed by the caller, stay in use while q is); 0 or a store
 * error (compliance.c).
 */
int svc_query_ready(struct service *s, struct device_query *q, struct compliance_spec *spec,
		    struct svc_qmem **mem);
/*
 * labels.c: the groups that give a policy, in precedence order, with their queries parsed;
 * *out is NULL when there are none (free() it otherwise).
 */
struct svc_pgroups {
	struct policy_groups pg;
	struct device_group g[POLICY_GROUPS_MAX];
	struct label_query q[POLICY_GROUPS_MAX];
};
int svc_pgroups_load(struct service *s, struct svc_pgroups **out);
/* The policy d follows through a group (its first match), into name; "" when none does. */
int svc_group_policy(struct service *s, const struct device *d, char *name, size_t cap);
/* Open commands of a device read at once when looking for one of a type (bulk.c). */
#define SVC_BULK_SCRATCH 64
/*
 * bulk.c: one device of a bulk command, inside the caller's write transaction: queues the
 * command (res->outcome BULK_QUEUED), or finds one of the type open (BULK_PENDING) or the
 * device gone or retired (BULK_REFUSED). 0, or a store error that loses the transaction.
 */
int svc_bulk_device_tx(struct service *s, const char *actor, const char *type, const char *reason,
		       struct command *scratch, struct svc_bulk_result *res);
/* bulkop.c: the worker of bulk operations by filter; the tick kicks it, quiesce stops it. */
int svc_bulker_init(struct service *s);
void svc_bulker_tick(struct service *s);
void svc_bulker_stop(struct service *s);
void svc_bulker_free(struct service *s);
void svc_bulker_stats(struct service *s, struct svc_stats *out);
/*
 * bulkctl.c: inside a batch's transaction, after the claim: 0 when b's requester may still
 * give its order; 1 when not, and b was ended as refused (audited command.bulk.refused), so
 * the batch queues nothing; or a store error.
 */
int svc_bulk_gate_tx(struct service *s, struct bulk_op *b);
/* crosswake.c: inside a write transaction, tells the other servers to sweep their parked. */
int svc_notify_sweep_tx(struct service *s);

/* waker.c: wakes the parked check-ins of policy p's followers from a background thread. */
int svc_waker_init(struct service *s);
void svc_wake_policy(struct service *s, const struct policy *p);
/* The same, by name (a change another server made, told by the store's listener). */
void svc_wake_policy_named(struct service *s, const char *name, int is_default);

/*
 * crosswake.c: inside the caller's write transaction, tells the other servers sharing the
 * store that device_id has a command queued (or that a policy changed); 0 and nothing done on
 * a store of one server. Never from a check-in. The tick's sweep; stopping the listener.
 */
int svc_notify_tx(struct service *s, const char *device_id);
int svc_notify_policy_tx(struct service *s, const char *name, int is_default);
void svc_cross_tick(struct service *s);
void svc_cross_stats(struct service *s, struct svc_stats *out);
void svc_cross_stop(struct service *s);
void svc_waker_free(struct service *s);

/* Queues rekeys for devices whose key epoch is older than key_rotation_days (devices.c). */
int svc_rotate_keys(struct service *s);

/* refusals.c: the per-source table; flush writes the window's counts when it is over. */
int svc_refusals_init(struct service *s, uint32_t limit_per_window);
int svc_refusals_flush(struct service *s, int force);
void svc_refusals_free(struct service *s);

/* Fills err and returns the errno that goes with kind. */
int svc_fail(struct svc_error *err, enum svc_kind kind, const char *fmt, ...) __printf(3, 4);
/*
 * Maps a store error to SVC_NOT_FOUND / SVC_INTERNAL / SVC_UNAVAILABLE. A transaction the store
 * gave up to a concurrent one (-EDEADLK) is SVC_UNAVAILABLE and still returns -EDEADLK.
 */
int svc_store_fail(struct svc_error *err, int r, const char *what);

/*
 * Whole-transaction retry. A service call that runs a write transaction is written as a
 * function doing one attempt (begin, reads, writes, commit, and only after the commit what may
 * be seen outside: wakes, logs, in-memory state), and its public name runs that attempt again
 * while svc_tx_again says so: r is -EDEADLK (the store rolled the attempt back as a whole, so
 * nothing it did counts) and fewer than SVC_TX_ATTEMPTS attempts ran. It pauses a few jittered
 * milliseconds before saying 1. The last attempt's -EDEADLK reaches the client as 503.
 */
#define SVC_TX_ATTEMPTS 5
int svc_tx_again(struct service *s, int r, int attempt);
#define SVC_TX_RETRY(s, r, call)                                                                   \
	do {                                                                                       \
		int attempt_ = 0;                                                                  \
		do                                                                                 \
			(r) = (call);                                                              \
		while (svc_tx_again((s), (r), ++attempt_));                                        \
	} while (0)

int64_t svc_now_s(const struct service *s);
/* prefix + 20 random hex digits, e.g. "dev_3f…"; dst must hold STORE_ID_MAX. */
int svc_new_id(char *dst, const char *prefix);
/* prefix + 43 base64url characters of 32 random bytes; *out owned by caller; hash = SHA-256. */
int svc_new_secret(const char *prefix, char **out, uint8_t hash[32]);

/* Queues a command inside the caller's transaction and fills out (counter, signed ticket). */
int svc_command_queue_tx(struct service *s, struct device *d, const char *type, const char *reason,
			 const char *created_by, int64_t expires_in_s, const char *idem_key,
			 const uint8_t *request_hash, const uint64_t args[4], struct command *out);
/*
 * The steps of svc_command_queue_tx, shared with a bulk's set-based batch (bulkset.c) so both
 * make the same rows: a new command's row for d (id, type, reason, times; no counter yet),
 * its ticket signed with c->counter, the desired state after a type (NULL: unchanged), whether
 * a type's creation is audited, and its command.create audit detail.
 */
int svc_command_new(struct service *s, const struct device *d, const char *type, const char *reason,
		    const char *created_by, int64_t expires_in_s, struct command *c);
int svc_command_sign(struct service *s, const struct device *d, struct command *c,
		     const uint64_t args[4]);
const char *svc_command_desired(const char *type);
int svc_command_audited(const char *type);
void svc_command_audit_detail(const struct command *c, char *buf, size_t cap);
/*
 * bulkset.c: a bulk's batch as a few set-based statements (stores with command_insert_many):
 * the n devices in rows, which the transaction holds locked (device_query FOR UPDATE), each
 * get what svc_bulk_device_tx would give them; res[i] is rows[i]'s outcome. 0 or a store
 * error (the transaction is then lost as a whole).
 */
struct svc_bulkset;
struct svc_bulkset *svc_bulkset_new(size_t max);
void svc_bulkset_free(struct svc_bulkset *w);
int svc_bulkset_tx(struct service *s, struct svc_bulkset *w, const char *actor, const char *type,
		   const char *reason, const struct device *rows, size_t n,
		   struct svc_bulk_result *res);
/*
 * What is held back for approval: one command (device_id), a bulk by list (ids, n) or a bulk by
 * filter (bulk_id, recorded as awaiting, of n devices).
 */
struct svc_approval_ask {
	const char *type;
	const char *reason;
	int64_t ttl_s; /* the command's lifetime once queued; 0: the default */
	const char *device_id;
	const char (*ids)[STORE_ID_MAX];
	const char *bulk_id;
	size_t n;
};
/*
 * approvals.c: inside the caller's write transaction, records an approval request instead of
 * queuing, audited approval.request, and fills out. A pending request of the same person for
 * the same device and type is returned instead of a second one (*reused = 1).
 */
int svc_approval_request_tx(struct service *s, const struct principal *p,
			    const struct svc_approval_ask *ask, struct approval *out, int *reused);
/*
 * approvals.c: a bulk by filter whose request ended without approval (rejected, canceled,
 * expired) is canceled too, by by and for why; nothing for other kinds.
 */
int svc_approval_end_bulk_tx(struct service *s, const struct approval *a, const char *by,
			     const char *why);
/*
 * approve.c: writes pending approval requests past their expiry as expired (audited
 * approval.expire; a held bulk by filter canceled), up to 20 per call; the tick runs it.
 */
int svc_approval_sweep(struct service *s);
/* bulkop.c: wakes the bulk worker at once (an approved bulk by filter starts). */
void svc_bulk_kick(struct service *s);
/* approvals.c: the admin account behind principal id (a token: the account that made it). */
int svc_person_of(struct service *s, const char *id, char person[STORE_ID_MAX]);
/*
 * approve.c: 0 when p may approve: admin role, and a console session of an account with a
 * TOTP second factor or an API token with the approve permission; else SVC_FORBIDDEN or
 * SVC_APPROVAL_FACTOR in err.
 */
int svc_approver_check(struct service *s, const struct principal *p, struct svc_error *err);
/* The permission an admin-orderable command type needs; -EINVAL for other types. */
int svc_command_perm(const char *type, enum perm *perm);
/* Recomputes a device's desired state from its commands, inside the caller's transaction. */
int svc_recompute_desired(struct service *s, const char *device_id);
/* Ticket arguments of a policy command: offline limits in seconds, unlock limit, version. */
void svc_policy_args(struct service *s, const struct policy *p, uint64_t args[4]);
/*
 * Reads d's effective policy into p and sets *due when d must be sent a policy command for it
 * (active, not applied, the newest policy command it has is for another version or expired).
 * -ENOENT when no policy exists. Outside a transaction it is only a hint.
 */
int svc_policy_check(struct service *s, const struct device *d, struct policy *p, int *due);
/*
 * Inside the caller's write transaction, with d read for update: queues d's policy command when
 * svc_policy_check says it is due (*queued = 1). The caller wakes the device after commit.
 */
int svc_policy_sync_tx(struct service *s, struct device *d, const char *actor, int *queued);
/*
 * Why a valid receipt does not prove its action (wire-formats.md 4.4), into note; "" when it
 * does: the hypervisor reports success, every check it ran passed, the checks its type
 * requires are among them, and a key epoch that had to change did.
 */
void svc_receipt_shortfall(const struct receipt *rc, char *note, size_t cap);
/* Tells waiters of device_id that something is pending (after the commit). */
void svc_notify(struct service *s, const char *device_id);
/* Makes an audit checkpoint when one is due (force: whenever the head moved); checkpoint.c. */
void svc_ckpt_tick(struct service *s, int force);
/*
 * Checks the checkpoints against the chain into rep (clears rep->ok on a problem): every one
 * when full, else those made since the last check and the newest one again.
 */
int svc_ckpt_report(struct service *s, int full, struct audit_report *rep);
/*
 * receipts.c: 1 when buf's signature (the body_len bytes before it) is the device hypervisor's,
 * made with the algorithm the device enrolled with (rec_alg is the record's WIRE_SIG_*): Ed25519
 * by hv_key, or ECDSA P-256 by the TPM key whose SPKI the device row keeps.
 */
/*
 * enroll_tpm.c (hypercall-bridge/TPM.md §3). svc_tpm_ca_init loads cfg.tpm_ca_file (0 without
 * one; -EINVAL, logged, when it cannot be loaded). svc_tpm_credential verifies id's
 * endorsement and AK and makes nonce into *cred for them, filling n's AK name and EK issuer.
 * svc_tpm_evidence_ok checks rq's TPM evidence against the attestation a (Ed25519 ones must
 * have none) and gives the AK's name, which the nonce taken must have been issued for.
 */
int svc_tpm_ca_init(struct service *s);
void svc_tpm_ca_free(struct service *s);
int svc_tpm_credential(struct service *s, const struct enroll_tpm_id *id, const uint8_t nonce[32],
		       struct enroll_nonce *n, struct enroll_credential *cred,
		       struct svc_error *err);
int svc_tpm_evidence_ok(const struct enroll_request *rq, const struct attestation *a,
			uint8_t ak_name[STORE_AK_NAME_MAX], uint16_t *ak_name_len,
			struct svc_error *err);
int svc_hv_sig_ok(const struct device *d, uint16_t rec_alg, const uint8_t *buf, size_t body_len);

/* verify.c: the state of audit verification, and the end of a full one still running. */
int svc_verify_init(struct service *s);
void svc_verify_free(struct service *s);
/* Frees the checkpoint state; call after the last svc_ckpt_tick. */
void svc_ckpt_free(struct service *s);

/* hookd.c: wakes the delivery workers (after an event commits), stops and frees them. */
void svc_hookd_kick(struct service *s);
/*
 * hooksecret.c: a subscription's secret at rest. svc_hook_seal seals plain (whsec_...) into
 * w->secret, bound to w->id; svc_hook_open gives the whsec_ text of w->secret, sealed or (a
 * row from before sealing) in the clear. 0, -ENOKEY (no key set), -EBADMSG (sealed with
 * another deployment key, or altered) or -EINVAL.
 */
int svc_hook_seal(struct service *s, struct webhook *w, const char *plain);
int svc_hook_open(struct service *s, const struct webhook *w, char *out, size_t cap);
/* Seals w's secret in place when it is still in the clear (*done 1); else leaves it. */
int svc_hook_seal_clear(struct service *s, struct webhook *w, int *done);
void svc_hookd_stop(struct service *s);
void svc_hookd_free(struct service *s);

/*
 * events.c: the service's own webhook events, inside the caller's write transaction (before
 * its audit entry, so the outbox head is taken before the audit head, as everywhere).
 * command_queued: n commands of one type (a bulk's batch: one outbox write).
 * command_completed: also wipe.verified for a verified wipe or retire. device: type is
 * device.enrolled, device.retired or compliance.changed.
 */
int svc_ev_command_queued(struct service *s, const struct command *c, size_t n);
int svc_ev_command_completed(struct service *s, const struct command *c);
int svc_ev_device(struct service *s, const char *type, const struct device *d);
int svc_ev_checkpoint(struct service *s, int64_t seq, const uint8_t head[32]);
int svc_ev_approval(struct service *s, const char *type, const struct approval *a);

#endif

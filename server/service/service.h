/*
 * The rules of cleave-server: who may do what, how tokens, enrollment, policies and commands
 * behave, and what is audited. Callers (the api/ layer) hand in decoded values and get records
 * back; nothing here knows about HTTP or JSON, and nothing here runs SQL directly (store/ does).
 * Every call returns 0 or a negative errno and, on failure, fills a struct svc_error whose kind
 * the API layer turns into a problem+json response.
 */
#ifndef CLEAVE_SERVICE_H
#define CLEAVE_SERVICE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "httpsig.h"
#include "wire.h"
#include "store/store.h"

enum role { ROLE_NONE = 0, ROLE_ADMIN, ROLE_HELPDESK, ROLE_AUDITOR };

/* What a caller wants to do; the role matrix is in authz.c. */
enum perm {
	PERM_READ,          /* devices, commands, policies, enrollment tokens */
	PERM_AUDIT_READ,    /* audit log and its verification */
	PERM_TOKENS_READ,   /* API token metadata (never secrets) */
	PERM_TOKENS_WRITE,  /* create and revoke API tokens */
	PERM_ENROLL_WRITE,  /* create and revoke enrollment tokens */
	PERM_POLICY_WRITE,  /* create, change, assign policies */
	PERM_DEVICE_DELETE, /* delete a device record */
	PERM_CMD_ROUTINE,   /* lock, unlock, refresh */
	PERM_CMD_DESTRUCT,  /* wipe, retire, rekey */
	PERM_LABELS_WRITE,  /* set device labels; create, change, delete groups (admin) */
	PERM_WEBHOOKS,      /* webhook subscriptions, their secrets and delivery logs */
};

/* Kinds of failure; api/problem.c maps each to one HTTP status and problem type. */
enum svc_kind {
	SVC_OK = 0,
	SVC_INVALID,      /* a value is wrong (detail names it) */
	SVC_UNAUTHORIZED, /* no or bad credentials */
	SVC_FORBIDDEN,    /* credentials fine, role not allowed */
	SVC_NOT_FOUND,
	SVC_CONFLICT,      /* state does not allow it (e.g. cancel after delivery) */
	SVC_WIPE_PENDING,  /* device delete refused while a wipe is open */
	SVC_ENROLL_DENIED, /* enrollment token unknown, expired, used up or revoked */
	SVC_IDEMPOTENCY,   /* same Idempotency-Key with a different request */
	SVC_UNAVAILABLE,   /* out of memory or shutting down */
	SVC_RATE_LIMITED,  /* this source was refused too often lately */
	SVC_INTERNAL,      /* storage or crypto failure (logged, never shown) */
	/* The two-person rule (approvals.c): each its own 403 problem type, for scripts. */
	SVC_APPROVAL_SELF,   /* the approver is the requester (or the same person) */
	SVC_APPROVAL_FACTOR, /* approving needs a TOTP session or a token with "approve" */
};

struct svc_error {
	enum svc_kind kind;
	char detail[256];
};

struct principal {
	enum role role;
	char id[STORE_ID_MAX];     /* token id ("system" for the server itself) */
	char name[STORE_NAME_MAX]; /* token name, for logs and audit */
	int second_factor;         /* a console session opened with a TOTP code (approvals) */
};

struct service_config {
	int64_t command_ttl_s;  /* default lifetime of a command and its ticket */
	int64_t enroll_ttl_s;   /* default lifetime of an enrollment token */
	int64_t nonce_ttl_s;    /* lifetime of an enrollment nonce */
	int64_t sig_skew_s;     /* accepted |created - now| of a device request signature */
	int max_wait_s;         /* cap on a check-in's requested wait */
	int64_t lease_s;        /* a device lease runs this long past a contact; 0: 900 s */
	int64_t refusal_limit;  /* refused requests per source and minute before 429; 0: 600 */
	const char *public_url; /* base of enrollment URLs, e.g. https://127.0.0.1:8443 */
	int64_t session_idle_s; /* a console session unused this long ends; 0: 1800 */
	int64_t session_max_s;  /* a console session ends this long after sign-in; 0: 43200 */
	int require_totp;       /* every console account needs a second factor to sign in */
	int bulk_batch;         /* devices per batch of a bulk by filter, at most; 0: 500 */
	/*
	 * 1: a bulk's batch queues device by device even where the store can do the batch in a
	 * few statements (PostgreSQL); the tests compare the two paths' rows.
	 */
	int bulk_per_device;
	/*
	 * The two-person rule (approvals.c): 1: a wipe or retire, and a bulk of more than
	 * approval_bulk_size devices, waits for a second admin's approval; approval_ttl_s is how
	 * long a request waits (0: 86400); approval_bulk_size 0: 50.
	 */
	int two_person;
	int64_t approval_bulk_size;
	int64_t approval_ttl_s;
	/*
	 * Hardware identity (hypercall-bridge/TPM.md): tpm_ca_file is the PEM bundle of TPM
	 * manufacturer CAs an endorsement certificate must chain to (NULL or "": none trusted);
	 * require_hw_identity 1: enrollment refuses a hypervisor whose key no such TPM endorsed.
	 */
	const char *tpm_ca_file;
	int require_hw_identity;
};

/* Clock in unix milliseconds; injectable for tests. */
typedef int64_t (*svc_clock_fn)(void);

/* Called (from any thread) after something became pending for device_id. */
typedef void (*svc_wake_fn)(void *ctx, const char *device_id);

struct service;

/* The store backend the service runs on ("sqlite" or "postgresql"), for /healthz. */
const char *service_backend(const struct service *s);
/*
 * 1 when the database answers a trivial query, else 0. The answer is kept for a second, so a
 * load balancer probing every few milliseconds costs one query a second per server.
 */
int service_store_ok(struct service *s);

/*
 * Creates the service. st and ticket_key are borrowed and must outlive it. cfg is copied
 * (public_url too). *out is owned by the caller (service_free).
 */
int service_new(struct store *st, const struct ed25519_key *ticket_key,
		const struct service_config *cfg, svc_clock_fn clock, struct service **out);
/* Flushes batched check-in bookkeeping and frees; NULL is ignored. */
/*
 * Stops the service's background threads that wake parked check-ins (after a policy change,
 * and the listener of service_listen); call it before the HTTP server whose long polls it wakes stops. service_free does it too.
 */
void service_quiesce(struct service *s);
void service_free(struct service *s);
void service_set_waker(struct service *s, svc_wake_fn fn, void *ctx);
/* Fills ids with the devices whose check-ins this process holds parked; returns how many. */
typedef size_t (*svc_parked_fn)(void *ctx, char (*ids)[STORE_ID_MAX], size_t max);
/*
 * On a store shared by several servers (PostgreSQL): listens for the commands and policy
 * changes the other servers make and wakes the check-ins this one holds parked (listed by
 * parked), and sweeps for what a lost notification missed (service_tick, every few seconds,
 * and at once when the listen connection comes back). Call after service_set_waker. 0 also
 * when the store has one server only (SQLite: nothing to do); else a negative errno.
 */
int service_listen(struct service *s, svc_parked_fn parked, void *ctx);
const struct service_config *service_config(const struct service *s);
/* Replaces the base of enrollment URLs (known only once the listener is bound). 0 or -ENOMEM. */
int service_set_public_url(struct service *s, const char *url);
int64_t service_now_ms(const struct service *s);

/*
 * Periodic work, called about once a second from one thread: expires commands, flushes
 * check-in times and signature counters, purges stale nonces, makes audit checkpoints.
 */
void service_tick(struct service *s);

/*
 * Makes every accepted device request nonce durable before its request is answered, in
 * PATH.0 / PATH.1, and takes back what they hold from before a crash (into the store at once).
 * 0 or -errno (the server must not serve without it). On a shared database (a store with
 * request_nonce_claim) there is no file: the database records each nonce (svc_device_auth).
 */
int service_set_replay_log(struct service *s, const char *path);

/*
 * Checks this server's public signing keys against the ones the database records for the
 * deployment (recording them when none are), before the server serves anything: a server
 * of a deployment that got other keys would sign tickets its devices reject and checkpoints
 * no one can verify. accept_new records this server's keys instead (after a deliberate
 * change of keys). 0, -EKEYREJECTED (logged with both fingerprints and what to do), or the
 * store's error. st is borrowed.
 */
int service_pin_keys(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
		     int accept_new, int64_t now);

/* Creates the first admin token when none exists; its secret goes to *secret (caller frees). */
int service_bootstrap_admin(struct service *s, char **secret);

/* ---- authentication and authorization ---- */
int svc_authenticate(struct service *s, const char *bearer, struct principal *p,
		     struct svc_error *err);
int svc_authorize(struct service *s, const struct principal *p, enum perm perm,
		  struct svc_error *err);
const char *role_name(enum role r);
enum role role_parse(const char *s);

/* ---- admin accounts and console sessions (admins.c, issue 9) ---- */
#define SVC_PASSWORD_MIN 12
#define SVC_PASSWORD_MAX 1024
/* The CSRF token of a session: 43 base64url characters and a NUL. */
#define SVC_CSRF_LEN 44
/* Creates an account (admin role only); password is hashed with Argon2id and forgotten. */
int svc_admin_create(struct service *s, const struct principal *p, const char *email,
		     const char *display_name, enum role role, const char *password,
		     struct admin_account *out, struct svc_error *err);
int svc_admin_list(struct service *s, const struct principal *p, struct admin_account *out,
		   size_t max, size_t *n, struct svc_error *err);
/* Disables an account and ends its sessions (admin role only). */
int svc_admin_disable(struct service *s, const struct principal *p, const char *id,
		      struct svc_error *err);
/*
 * Signs in: on success *session_id (caller frees) is the new session's id, for the cookie
 * only, and *out the account. totp (may be NULL) is the code of an account with a second
 * factor; without one, require_totp refuses the account. Every failure says the same "email or password is wrong",
 * costs an Argon2id verification even for an unknown email, and is counted against client
 * (refusals.c: audited, 429 past the limit).
 */
int svc_login(struct service *s, const char *email, const char *password, const char *totp,
	      const char *client, char **session_id, struct admin_account *out,
	      struct svc_error *err);
/* ---- single sign-on (OpenID Connect; sso.c) ---- */
#define SVC_SSO_FLOW_S 600 /* a sign-in at the provider must end within this */
/*
 * Begins a sign-in: a fresh state, nonce and PKCE verifier (43 base64url characters each; the
 * caller frees them), recorded by the state's hash until SVC_SSO_FLOW_S from now.
 */
int svc_sso_begin(struct service *s, char **state, char **nonce, char **verifier,
		  struct svc_error *err);
/* Takes the flow of state, once: SVC_UNAUTHORIZED when unknown, finished or expired. */
int svc_sso_take(struct service *s, const char *state, struct oidc_flow *out,
		 struct svc_error *err);
/* A person the provider vouched for (ID token verified, role claim mapped). */
struct sso_identity {
	const char *issuer, *subject; /* OpenID Connect's stable key of the person */
	const char *email, *name;
	enum role role;           /* ROLE_NONE: no or unknown claim (refused) */
	const char *email_domain; /* "" or NULL: any; else the email must be in it */
	int second_factor;        /* the provider says a second factor was used (acr) */
};
/*
 * Opens a console session for the identity, as svc_login does for a password: the account
 * linked to (issuer, subject), made on the first sign-in and brought up to date (email, name,
 * role) on the next ones; audited. SVC_FORBIDDEN (audited as admin.sso_refused, with the
 * reason) for no role, an email outside the allowed domain, no second factor where the
 * server requires one (require_totp), a disabled account, or an email that belongs to an
 * unlinked local account.
 */
int svc_sso_login(struct service *s, const struct sso_identity *id, const char *client,
		  char **session_id, struct admin_account *out, struct svc_error *err);
/* Audits a refused single sign-on (who: the email or subject claimed, if any). */
void svc_sso_refused(struct service *s, const char *client, const char *who, const char *why);
/*
 * Enrolls a new TOTP second factor (RFC 6238, SHA-1, 30 s, 6 digits) for account id, by an
 * admin or the account itself; from then on its sign-in needs a code. *uri (caller frees) is
 * the otpauth:// URI with the key, shown only here.
 */
int svc_admin_totp_enroll(struct service *s, const struct principal *p, const char *id, char **uri,
			  struct svc_error *err);
/*
 * Authenticates a console request by its session id into p, with the same roles as tokens.
 * csrf_required: the request changes something, so csrf (the X-CSRF-Token header, may be
 * NULL) must be the session's CSRF token.
 */
int svc_session_auth(struct service *s, const char *session_id, int csrf_required, const char *csrf,
		     struct principal *p, struct svc_error *err);
/* The session's CSRF token, derived from its id (HMAC-SHA256) so that it is never stored. */
void svc_session_csrf(const char *session_id, char out[SVC_CSRF_LEN]);
/* Ends the session with this id (logout); unknown ids are fine. */
int svc_logout(struct service *s, const char *session_id, struct svc_error *err);
/* Ends every session of the caller's account (sign out everywhere). */
int svc_logout_all(struct service *s, const struct principal *p, struct svc_error *err);
/* The absolute lifetime of a session, for the cookie's Max-Age. */
int64_t svc_session_max_s(const struct service *s);

/*
 * First start: while no admin account exists, makes a one-time setup code and writes it with
 * its link (base_url + "/setup#" + code) to path, mode 0600; when one exists, removes a stale
 * path. *armed says whether a code was made. 0 or a negative errno (logged).
 */
int service_arm_setup(struct service *s, const char *path, const char *base_url, int *armed);
/* Creates the first admin (role admin) with the setup code, which works once (audited). */
int svc_setup(struct service *s, const char *code, const char *email, const char *display_name,
	      const char *password, const char *client, struct admin_account *out,
	      struct svc_error *err);

/* ---- API tokens ---- */
int svc_token_create(struct service *s, const struct principal *p, const char *name, enum role role,
		     int64_t expires_in_s, struct api_token *out, char **secret,
		     struct svc_error *err);
int svc_token_list(struct service *s, const struct principal *p, int64_t after, size_t limit,
		   struct api_token *out, size_t *n, struct svc_error *err);
int svc_token_revoke(struct service *s, const struct principal *p, const char *id,
		     struct svc_error *err);

/* ---- enrollment tokens ---- */
int svc_etoken_create(struct service *s, const struct principal *p, const char *owner, int64_t uses,
		      int64_t expires_in_s, struct enroll_token *out, char **secret,
		      struct svc_error *err);
int svc_etoken_list(struct service *s, const struct principal *p, int64_t after, size_t limit,
		    struct enroll_token *out, size_t *n, struct svc_error *err);
int svc_etoken_revoke(struct service *s, const struct principal *p, const char *id,
		      struct svc_error *err);
/* What svc_etoken_check found out about an enrollment token. */
enum svc_etoken_state {
	SVC_ETOKEN_USABLE = 0,
	SVC_ETOKEN_UNKNOWN, /* empty, or no token has this secret */
	SVC_ETOKEN_REVOKED,
	SVC_ETOKEN_EXPIRED,
	SVC_ETOKEN_USED_UP,
};
/*
 * Looks up an enrollment token by its secret (borrowed) for the enrollment page: an
 * enum svc_etoken_state (t filled unless UNKNOWN), or a negative errno when the store failed
 * (logged there). Changes nothing and audits nothing: the page only tells the employee.
 */
int svc_etoken_check(struct service *s, const char *secret, struct enroll_token *t);
/* "https://…/enroll?token=…" for a secret; *url owned by the caller. */
int svc_enroll_url(struct service *s, const char *secret, char **url);

/* ---- policies ---- */
struct policy_content {
	char cipher[32];            /* corporate volume cipher, "aes-256-xts" */
	int64_t key_rotation_days;  /* 0: never */
	int64_t lock_after_hours;   /* offline this long: cleave-hv locks; 0: never */
	int64_t wipe_after_days;    /* offline this long: cleave-hv wipes; 0: never */
	int64_t lock_after_seconds; /* when > 0, replaces lock_after_hours (finer limits) */
	int64_t wipe_after_seconds; /* when > 0, replaces wipe_after_days */
	int64_t max_failed_unlocks; /* wipe after this many; 0: never */
	char min_agent_version[32]; /* "" for any */
};
/*
 * Creates or replaces policy name; body is its canonical JSON (stored as is, parsed back with
 * the policy parser when tickets need the limits).
 * A change bumps the version and queues a policy command for every device following it.
 * *changed says whether anything changed.
 */
int svc_policy_put(struct service *s, const struct principal *p, const char *name, const char *body,
		   struct policy *out, int *changed, struct svc_error *err);
int svc_policy_get(struct service *s, const struct principal *p, const char *name,
		   struct policy *out, struct svc_error *err);
int svc_policy_list(struct service *s, const struct principal *p, struct policy *out, size_t max,
		    size_t *n, struct svc_error *err);
/*
 * How far policy pol (as read from the store) has reached: the active devices that follow it
 * (assigned, or through the default) and those of them whose agent reports its current version
 * applied. Needs read permission.
 */
struct policy_reach {
	int64_t assigned;
	int64_t applied;
};
int svc_policy_reach(struct service *s, const struct principal *p, const struct policy *pol,
		     struct policy_reach *out, struct svc_error *err);
/* Makes policy name the default; *out gets it as committed. */
int svc_policy_set_default(struct service *s, const struct principal *p, const char *name,
			   struct policy *out, struct svc_error *err);
/* Assigns policy name to a device ("" = follow the default); *out gets the device as committed. */
int svc_policy_assign(struct service *s, const struct principal *p, const char *device_id,
		      const char *name, struct device *out, struct svc_error *err);
/* The policy a device follows (its own or the default); -ENOENT when none exists. */
int svc_policy_effective(struct service *s, const struct device *d, struct policy *out);
/* The digest a hypervisor that enforces policy p attests (crypto_policy_digest of its args). */
void svc_policy_digest(struct service *s, const struct policy *p, uint8_t out[16]);
/* The offline limits of c in seconds (0: never): the *_seconds fields win when set. */
int64_t policy_lock_s(const struct policy_content *c);
int64_t policy_wipe_s(const struct policy_content *c);
/* Parses a stored canonical body back into content (used for tickets); 0 or -EINVAL. */
typedef int (*policy_parse_fn)(const char *body, struct policy_content *c);
void service_set_policy_parser(struct service *s, policy_parse_fn fn);

/* ---- devices ---- */
int svc_device_list(struct service *s, const struct principal *p, const struct device_filter *f,
		    struct device *out, size_t *n, struct svc_error *err);
int svc_device_get(struct service *s, const struct principal *p, const char *id, struct device *out,
		   struct svc_error *err);
int svc_device_delete(struct service *s, const struct principal *p, const char *id,
		      struct svc_error *err);

/* ---- the console's device list, compliance and bulk commands (compliance.c, bulk.c) ---- */
/* The COMPLY_* bit's stable code ("policy_not_applied") and its sentence; NULL if not a bit. */
const char *svc_compliance_code(unsigned bit);
const char *svc_compliance_text(unsigned bit);
/* The bit of a code, or 0 when no reason has it. */
unsigned svc_compliance_parse(const char *code);
/* Every reason device d (following p when have_policy) is not compliant for, as COMPLY_* bits. */
unsigned svc_compliance_eval(struct service *s, const struct device *d, const struct policy *p,
			     int have_policy);
/* Compares dotted numeric versions: <0, 0, >0. Non-digits end a component. */
int svc_version_cmp(const char *a, const char *b);
/*
 * The console's device query. q is borrowed; the service fills in q->spec (and the policy's
 * default flag) itself, so callers set only search, filters, sort and cursor.
 */
int svc_device_query(struct service *s, const struct principal *p, struct device_query *q,
		     struct device *out, size_t *n, struct svc_error *err);
/* Counts by compliance reason and corporate state, for the dashboard. */
int svc_device_summary(struct service *s, const struct principal *p, struct device_summary *out,
		       struct svc_error *err);

/* What a bulk command did for one device. */
enum svc_bulk_outcome { BULK_QUEUED, BULK_PENDING, BULK_REFUSED };
struct svc_bulk_result {
	char device_id[STORE_ID_MAX];
	enum svc_bulk_outcome outcome;
	char command_id[STORE_ID_MAX]; /* queued, or the one already pending */
	char detail[128];              /* why it was refused */
};
#define SVC_BULK_MAX 500
/*
 * Queues one command of type for each of n device ids (at most SVC_BULK_MAX), each in its own
 * transaction and audited like a single one. A device that already has an open command of
 * this type gets none (BULK_PENDING, so retrying a bulk is harmless); one that is unknown or
 * retired is BULK_REFUSED. The role check is made once, for the type, before anything.
 */
int svc_command_bulk(struct service *s, const struct principal *p, const char *type,
		     const char *reason, const char (*ids)[STORE_ID_MAX], size_t n,
		     struct svc_bulk_result *out, struct svc_error *err);
/*
 * svc_command_bulk under the two-person rule: when the bulk needs approval (a wipe or retire,
 * or more than approval_bulk_size devices) it becomes one approval request (*pending, 1 in
 * *waits) and nothing is queued; else *waits is 0 and it runs as svc_command_bulk.
 */
int svc_command_bulk_checked(struct service *s, const struct principal *p, const char *type,
			     const char *reason, const char (*ids)[STORE_ID_MAX], size_t n,
			     struct svc_bulk_result *out, struct approval *pending, int *waits,
			     struct svc_error *err);

/*
 * How many devices q's filters match (its sort, cursor and limit are ignored): the count the
 * console shows before a bulk by filter and the admin confirms.
 */
int svc_device_count(struct service *s, const struct principal *p, struct device_query *q,
		     int64_t *n, struct svc_error *err);

/* ---- bulk commands by filter (bulkop.c, issue 10) ---- */
struct svc_bulk_request {
	const char *type;                 /* as svc_command_bulk */
	const char *reason;               /* may be "" */
	const struct device_query *query; /* the device list's filters; sort, cursor unused */
	const char *filter_json;          /* the filter as given, kept for display */
	int64_t expected_count;           /* what the admin confirmed */
	const char *idempotency_key;      /* NULL or "" for none */
	const uint8_t *request_hash;      /* SHA-256 of the request, with a key */
	/*
	 * Out, may be NULL: when the two-person rule holds the bulk (it is then recorded with
	 * state "awaiting" and runs once approved), its approval request is copied here.
	 */
	struct approval *pending;
};
/*
 * Records a durable bulk operation (and its audit entry) in one transaction; a background
 * worker, on this server or another sharing the store, then queues the command for each
 * matching device in short batches, audited one by one as single commands are. Refused
 * (SVC_CONFLICT, *matched set) when the filter now matches another number than
 * expected_count, SVC_INVALID when it matches none. *created is 0 when an Idempotency-Key
 * replay returned the operation made before. Under the two-person rule (a wipe or retire, or
 * more devices than approval_bulk_size) it is recorded "awaiting" with an approval request
 * (rq->pending) in the same transaction, and the worker leaves it until it is approved.
 */
int svc_bulk_start(struct service *s, const struct principal *p, const struct svc_bulk_request *rq,
		   struct bulk_op *out, int *created, int64_t *matched, struct svc_error *err);
int svc_bulk_get(struct service *s, const struct principal *p, const char *id, struct bulk_op *out,
		 struct svc_error *err);
/* ---- following and stopping them (bulkctl.c) ---- */
#define SVC_BULK_LIST_MAX 200
/* A page of bulk operations, newest first (f->limit 1..SVC_BULK_LIST_MAX); any role reads. */
int svc_bulk_list(struct service *s, const struct principal *p, const struct bulk_list_filter *f,
		  struct bulk_op *out, size_t *n, struct svc_error *err);
/*
 * Stops a running bulk before its next batch (state canceled, audited command.bulk.cancel);
 * what it queued stays queued. The caller's role must allow the bulk's type (SVC_FORBIDDEN);
 * SVC_CONFLICT when it is no longer running. out gets the bulk as it ended.
 */
int svc_bulk_cancel(struct service *s, const struct principal *p, const char *id,
		    struct bulk_op *out, struct svc_error *err);

/* ---- commands (admin side) ---- */
struct command_request {
	const char *device_id;
	const char *type;            /* wipe, lock, unlock, rekey, retire, refresh */
	const char *reason;          /* may be "" */
	int64_t expires_in_s;        /* 0: the configured default */
	const char *idempotency_key; /* NULL or "" for none */
	const uint8_t *request_hash; /* SHA-256 of what makes the request (with a key) */
	/*
	 * Out, may be NULL: when the two-person rule made the request an approval request, it
	 * (new, or the requester's same one still pending) is copied here.
	 */
	struct approval *pending;
};
/*
 * *created is 0 when an Idempotency-Key replay returned the existing command, 1 when queued,
 * SVC_CMD_PENDING when the two-person rule made it an approval request (rq->pending; out is
 * not filled).
 */
#define SVC_CMD_PENDING 2
int svc_command_create(struct service *s, const struct principal *p,
		       const struct command_request *rq, struct command *out, int *created,
		       struct svc_error *err);
int svc_command_get(struct service *s, const struct principal *p, const char *id,
		    struct command *out, struct svc_error *err);
int svc_command_list(struct service *s, const struct principal *p, const struct command_filter *f,
		     struct command *out, size_t *n, struct svc_error *err);
int svc_command_cancel(struct service *s, const struct principal *p, const char *id,
		       struct command *out, struct svc_error *err);

/* ---- the two-person rule (approvals.c, approve.c; issue 11 section 4) ---- */
#define SVC_APPROVAL_LIST_MAX 200
/* Whether a command of type for n devices needs a second admin under the server's setting. */
int svc_approval_needed(const struct service *s, const char *type, size_t n);
/* A page of approval requests, newest first (any role reads). */
int svc_approval_list(struct service *s, const struct principal *p, const struct approval_filter *f,
		      struct approval *out, size_t *n, struct svc_error *err);
/*
 * What a console shows for a principal id: an admin account's email (adm_…), an API token's
 * name (tok_…); "" for anything else ("system") or one that no longer exists. 0 or a store
 * error. For showing only: ids decide, never these.
 */
int svc_principal_name(struct service *s, const char *id, char *out, size_t cap);
/* One request; out->device_ids may point to a buffer of APPROVAL_IDS_MAX for a bulk's ids. */
int svc_approval_get(struct service *s, const struct principal *p, const char *id,
		     struct approval *out, struct svc_error *err);
/*
 * A second admin approves: in one transaction the request is decided and its command (or each
 * device's of a bulk) queued with the requester as creator and the approver recorded, and both
 * are audited. Refused: SVC_FORBIDDEN (not admin), SVC_APPROVAL_FACTOR (a console session
 * without TOTP, or a token without the approve permission), SVC_APPROVAL_SELF (the approver
 * is the requester's person: see person_of in approvals.c), SVC_CONFLICT (decided, expired).
 * *cmd (may be NULL) gets a single command's row.
 */
int svc_approval_approve(struct service *s, const struct principal *p, const char *id,
			 struct approval *out, struct command *cmd, struct svc_error *err);
/*
 * The emergency override (admin role, a reason of at least 10 characters): queues the request
 * at once without a second admin; audited approval.override and logged as a warning.
 */
int svc_approval_override(struct service *s, const struct principal *p, const char *id,
			  const char *reason, struct approval *out, struct command *cmd,
			  struct svc_error *err);
/* Any admin rejects (note may be ""); the requester's person cancels their own. */
int svc_approval_reject(struct service *s, const struct principal *p, const char *id,
			const char *note, struct approval *out, struct svc_error *err);
int svc_approval_cancel(struct service *s, const struct principal *p, const char *id,
			struct approval *out, struct svc_error *err);
/*
 * The state a client shows: the stored one, or "expired" for a pending request past its
 * expiry (it is written so only when someone tries to decide it).
 */
const char *svc_approval_state(const struct service *s, const struct approval *a);
/*
 * API tokens with the separate "approve" permission: only an admin token, made by a principal
 * that may approve itself (a console session with TOTP, or a token with the permission).
 */
int svc_token_create_approver(struct service *s, const struct principal *p, const char *name,
			      int64_t expires_in_s, struct api_token *out, char **secret,
			      struct svc_error *err);
/* The rule's settings as applied (defaults filled in). */
void svc_approval_settings(const struct service *s, int *on, int64_t *bulk_size, int64_t *ttl_s);
/* 1 when p may approve now (svc_approval_approve's checks of the caller), else 0. */
int svc_can_approve(struct service *s, const struct principal *p);
/* 1 when token id has the approve permission, 0 when not, or a negative store error. */
int svc_token_can_approve(struct service *s, const char *id);

/* ---- audit ---- */
/*
 * The audit stream to a SIEM (server/siem/): where it is, for GET /api/v1/audit/stream. The
 * position and lease are the database's (any server's sender); sending, connected and
 * problem are this server's.
 */
struct siem;
/* This server's sender (main.c); NULL: this server has no target. Set before serving. */
void service_set_siem(struct service *s, struct siem *siem);
struct audit_stream_view {
	char target[PATH_MAX + 16]; /* this server's; "" : none configured here */
	const char *format;
	struct siem_stream row; /* row.name "" : no server has streamed yet */
	int64_t head;           /* the newest entry's seq; 0: empty log */
	int sending, connected;
	char problem[256];
};
int svc_audit_stream(struct service *s, const struct principal *p, struct audit_stream_view *out,
		     struct svc_error *err);
/* Audit entries matching f, oldest first; f->limit is at most STORE_LIST_MAX. */
int svc_audit_list(struct service *s, const struct principal *p, const struct audit_filter *f,
		   struct audit_entry *out, size_t *n, struct svc_error *err);
struct audit_report {
	int64_t entries;
	int ok;
	int64_t first_bad_seq; /* 0 when ok, or when no entry can be named */
	char problem[256];
	/* Signed checkpoints of the chain's head (service_set_audit_checkpoints). */
	int64_t checkpoints;      /* in the database */
	int64_t file_checkpoints; /* in the checkpoint file */
	int64_t last_ckpt_seq;    /* the newest valid checkpoint; 0 when none */
	int64_t last_ckpt_ms;
	uint8_t last_ckpt_hash[32]; /* the head hash it signs */
	/* How this report was made (verify.c). */
	int full;           /* 1: from entry 1 and every checkpoint; 0: from the anchor */
	int64_t from_seq;   /* the anchor the walk started after (0: the start) */
	int64_t checked;    /* entries read */
	int64_t took_ms;    /* how long the walk took */
	int64_t full_at_ms; /* when the last full verification ended; 0: none since start */
};
/*
 * Verifies the audit chain and its checkpoints into rep. Incremental (full == 0): from the
 * anchor the last verification left, reading only the entries and checkpoints added since; a
 * full one from entry 1. Returns 0 when rep is filled; -EINPROGRESS when the work runs (or
 * already ran) on the verifier thread: wait for a wake of SVC_VERIFY_WAKE (svc_wake_gen
 * read before the call), then take the report from svc_audit_verify_result. Any other value is
 * an error described in err. What each kind can and cannot detect: verify.c.
 */
#define SVC_VERIFY_WAKE "~audit-verify"
int svc_audit_verify(struct service *s, const struct principal *p, int full,
		     struct audit_report *rep, struct svc_error *err);
/* The report of the verifier thread's last run; -EINPROGRESS while one still runs. */
int svc_audit_verify_result(struct service *s, struct audit_report *rep, struct svc_error *err);
/*
 * Ends a verification running on the verifier thread and waits for it: call before the waker
 * (service_set_waker) goes away. Later verifications that need the thread fail with 503.
 */
void svc_verify_stop(struct service *s);
/*
 * Signed checkpoints of the audit chain (issue 8): the head (seq and hash) signed with the
 * audit key, stored in the database and appended to a file outside it, made once the head moved
 * by every_entries entries or every_s seconds passed since the last one and the head moved,
 * and at shutdown. Settings are copied; 0 means the default (100 entries, 300 s).
 */
struct audit_ckpt_config {
	const char *file;      /* the checkpoint file, e.g. DATA/audit-checkpoints.log */
	int64_t every_entries; /* 0: 100 */
	int64_t every_s;       /* 0: 300 */
};
/*
 * Turns checkpoints on; key is borrowed and must outlive s. Appends the newest stored
 * checkpoint to the file when the file lacks it (a crash between commit and append); trouble
 * with the file is logged, not returned. 0, -ENOMEM, or a store error.
 */
int service_set_audit_checkpoints(struct service *s, const struct ed25519_key *key,
				  const struct audit_ckpt_config *cfg);
/* The audit key's public half; -ENOENT when checkpoints are off. */
int svc_audit_key(const struct service *s, uint8_t pub[32]);
/*
 * A request from source (a peer address) was refused before its caller proved anything (bad
 * signature, enrollment token or API token): counted, and audited per source and minute
 * (refusals.c). actor is the id it claimed, or NULL.
 */
void svc_refused(struct service *s, const char *source, const char *actor, const char *action,
		 const char *why);
/* 1 when source was refused so often in this minute that it gets 429 without a look. */
int svc_source_limited(struct service *s, const char *source);
/* 0, or (SVC_RATE_LIMITED in err) when svc_source_limited: the one answer for all callers. */
int svc_source_check(struct service *s, const char *source, struct svc_error *err);
/* Appends one audit entry in its own transaction (for denials and failures). */
void svc_audit_event(struct service *s, const char *actor, const char *action, const char *target,
		     const char *outcome, const char *detail);

/* ---- device side ---- */
/*
 * A TPM's identity, as a device sends it for an enrollment nonce (hypercall-bridge/TPM.md §3):
 * the EK certificate (DER) and the EK's and the AK's TPM2B_PUBLIC, marshalled.
 */
struct enroll_tpm_id {
	const uint8_t *ek_cert;
	size_t ek_cert_len;
	const uint8_t *ek_public;
	size_t ek_public_len;
	const uint8_t *ak_public;
	size_t ak_public_len;
};
/* The nonce as a credential for that TPM: TPM2B_ID_OBJECT and TPM2B_ENCRYPTED_SECRET. */
#define SVC_CRED_BLOB_MAX   160 /* tpm_verify.h TPM_ID_OBJECT_MAX */
#define SVC_CRED_SECRET_MAX 520 /* tpm_verify.h TPM_ENC_SECRET_MAX */
struct enroll_credential {
	uint8_t blob[SVC_CRED_BLOB_MAX];
	size_t blob_len;
	uint8_t secret[SVC_CRED_SECRET_MAX];
	size_t secret_len;
};
/*
 * A fresh enrollment nonce for the holder of etoken_secret. With tpm (else NULL): the TPM's
 * endorsement is verified first (tpm_ca_file's CAs, the EK public is the certificate's key, the
 * AK is one the hypervisor may use) and the nonce is also made into *cred, bound to the AK; the
 * caller then sends only *cred, never the nonce. client: the peer address, for refusals.
 */
int svc_enroll_nonce(struct service *s, const char *etoken_secret, const char *client,
		     const struct enroll_tpm_id *tpm, uint8_t nonce[32],
		     struct enroll_credential *cred, int64_t *expires_at, struct svc_error *err);

/* Bounds of a TPM device's enrollment evidence. */
#define SVC_TPM_PUBLIC_MAX 640  /* a TPM2B_PUBLIC (RSA 2048 EK: ~314 bytes) */
#define SVC_TPM_CERT_MAX   4096 /* an EK certificate, DER */
#define SVC_TPM_ATTEST_MAX 1024 /* a quote's TPMS_ATTEST */
#define SVC_TPM_SIG_MAX    160  /* a TPMT_SIGNATURE (ECDSA P-256) */
#define SVC_PCR_LOG_MAX    64   /* measurements extended into PCR 23 since the TPM's reset */
/*
 * The TPM part of a TPM device's enrollment (its attestation is v3, signed by the AK): the AK's
 * TPM2B_PUBLIC, a TPM2_Quote by it over PCR 23 (TPMS_ATTEST, TPMT_SIGNATURE) whose qualifying
 * data is SHA-256(WIRE_QUOTE_LABEL || attestation body), and the measurements extended into
 * PCR 23, oldest first, the last one the attestation's.
 */
struct enroll_tpm_evidence {
	const uint8_t *ak_public;
	size_t ak_public_len;
	const uint8_t *quote;
	size_t quote_len;
	const uint8_t *quote_sig;
	size_t quote_sig_len;
	const uint8_t (*pcr_log)[32];
	size_t pcr_log_n;
};

struct enroll_request {
	const char *etoken_secret;
	uint8_t nonce[32];
	uint8_t device_key[32];
	uint8_t hv_key[32];
	const uint8_t *attestation; /* ATTEST_LEN bytes */
	size_t attestation_len;
	/* The hypervisor's P-256 key (DER SPKI) when its attestation is ECDSA-signed; else NULL. */
	const uint8_t *hv_spki;
	size_t hv_spki_len;
	/* The TPM's evidence, required with (and only with) an ECDSA-signed attestation. */
	const struct enroll_tpm_evidence *tpm;
	const char *model;
	const char *os;
	const char *agent_version;
	const char *client; /* peer address, for refusals */
};
int svc_enroll(struct service *s, const struct enroll_request *rq, struct device *dev,
	       struct svc_error *err);
/* The server's ticket-signing public key. */
void svc_ticket_key(const struct service *s, uint8_t pub[32]);

/* The parts of a device request that its signature covers. */
struct signed_request {
	const char *method;
	const char *path;
	const char *query; /* raw, without '?'; NULL or "" when none */
	const void *body;
	size_t body_len;
	const char *content_digest; /* header values; NULL when absent */
	const char *signature_input;
	const char *signature;
	const char *client; /* peer address, for the audit log */
};
/* Verifies a device request: signature, time window, replay. Fills dev on success. */
int svc_device_auth(struct service *s, const struct signed_request *rq, struct device *dev,
		    struct svc_error *err);

/* What a device reports about itself at check-in; NULL fields are left unchanged. */
struct device_report {
	const char *corporate_state; /* active, locked, wiped */
	const char *policy_name;
	int64_t policy_version; /* -1: not reported */
	int64_t key_epoch;      /* -1: not reported */
	const char *agent_version;
	/*
	 * A fresh attestation from the device's hypervisor (ATTEST_LEN bytes) or NULL. It must be
	 * signed by the registered hypervisor key, show the enrolled measurement and carry a
	 * hypervisor time within 10 minutes of ours; otherwise the device is "attestation
	 * mismatch" until a good one arrives.
	 */
	const uint8_t *attestation;
};

#define CHECKIN_MAX_COMMANDS 16
struct checkin_result {
	size_t n;
	struct command commands[CHECKIN_MAX_COMMANDS];
	int policy_pending;   /* the device's applied policy differs from its effective one */
	struct policy policy; /* valid when policy_pending */
};
/*
 * One check-in pass: records the report, marks queued commands delivered and returns the open
 * ones not yet acknowledged, plus the policy when it changed. r->n == 0 and !policy_pending
 * means nothing is pending: the caller may park. *gen receives the device's wake generation
 * read before looking, for svc_wake_gen comparisons when parking.
 */
int svc_checkin(struct service *s, struct device *dev, const struct device_report *rep,
		struct checkin_result *r, uint64_t *gen, struct svc_error *err);
/* A check-in pass for a parked request that came back: no report, device looked up by id. */
int svc_checkin_again(struct service *s, const char *device_id, struct checkin_result *r,
		      uint64_t *gen, struct svc_error *err);
/* The device's wake generation: it changes whenever something becomes pending for it. */
uint64_t svc_wake_gen(struct service *s, const char *device_id);

int svc_command_ack(struct service *s, const struct device *dev, const char *cmd_id,
		    struct command *out, struct svc_error *err);
struct command_result {
	const char *status; /* completed or failed */
	const char *detail;
	const uint8_t *receipt;
	size_t receipt_len;
};
int svc_command_result(struct service *s, const struct device *dev, const char *cmd_id,
		       const struct command_result *res, struct command *out,
		       struct svc_error *err);

/*
 * A signed lease ticket for the device's hypervisor: valid until now + lease_s (*until), with
 * the server's clock in milliseconds as its counter (leases count on their own in cleave-hv).
 */
int svc_lease(struct service *s, const struct device *dev, uint8_t out[TICKET_LEN], int64_t *until,
	      struct svc_error *err);
/*
 * Receipts the device's hypervisor signed, handed in by the agent: all are verified first (one
 * bad one: -EINVAL, audited, none taken). Auto-lock/auto-wipe receipts are audited with their
 * bytes and move the reported state; a command's receipt completes that command like a result.
 * *accepted counts them, *highest is the largest receipt seq (for the hypervisor's ack).
 */
int svc_receipts_upload(struct service *s, const struct device *dev,
			const uint8_t (*bufs)[RECEIPT_LEN], size_t n, size_t *accepted,
			uint64_t *highest, struct svc_error *err);
/* The employee leaves: queues (or returns the open) retire command for the device. */
int svc_unenroll(struct service *s, const struct device *dev, struct command *out, int *created,
		 struct svc_error *err);
/* ---- employee portal (portal.c, issue 9) ---- */
#define SVC_TERMS_MAX 12
#define SVC_TERM_MAX  400
/* What an employee is told before enrolling: three lists, generated (see portal.c). */
struct portal_terms {
	char never[SVC_TERMS_MAX][SVC_TERM_MAX]; /* what the company can never see */
	char see[SVC_TERMS_MAX][SVC_TERM_MAX];   /* what it can see */
	char can[SVC_TERMS_MAX][SVC_TERM_MAX];   /* what it can do to the corporate half */
	size_t n_never, n_see, n_can;
	char interface[256]; /* the hypervisor's host functions, by name, comma separated */
	char policy[96]; /* "NAME, version N" of the policy the lists follow, or "no policy yet" */
};
/* The lists for a new enrollment for owner (borrowed), under the default policy. 0 or -errno. */
int svc_portal_terms(struct service *s, const char *owner, struct portal_terms *t);
/* The hypervisor host functions the lists cover, for tests: how many, and the i-th's id. */
size_t svc_hv_fn_count(void);
uint32_t svc_hv_fn_id(size_t i);
/* Makes a device page link ("…/portal/clv_pl_…", *url owned by the caller) for device_id. */
int svc_portal_link_create(struct service *s, const char *device_id, char **url);
enum svc_portal_state { SVC_PORTAL_OK = 0, SVC_PORTAL_UNKNOWN, SVC_PORTAL_EXPIRED };
/* Opens a device page link: an enum svc_portal_state (d filled when OK) or a negative errno. */
int svc_portal_open(struct service *s, const char *secret, struct device *d);
/* The device's newest max commands, oldest of them first, for its page. 0 or -errno. */
int svc_portal_commands(struct service *s, const char *device_id, struct command *out, size_t max,
			size_t *n);
/*
 * "Leave the company" from the device page: queues (or returns the open) retire command of the
 * link's device, audited as portal.leave by "employee:DEVICE". Unknown or expired links are
 * refused (404) and counted against client.
 */
int svc_portal_leave(struct service *s, const char *secret, const char *client, struct command *out,
		     int *created, struct svc_error *err);

/* Counters for /metrics. */
struct svc_stats {
	uint64_t checkins;
	uint64_t auth_failures;
	int64_t write_hold_max_us; /* -1 when the store does not measure it */
	int64_t write_holds_over_50ms;
	/* Wake-ups from the other servers (service_listen): -1 when not listening, else 0/1. */
	int listen_up;
	uint64_t wake_heard;  /* device notifications heard */
	uint64_t sweep_woken; /* parked devices the sweep found a queued command for */
	uint64_t tx_retries;  /* transactions run again after a deadlock or serialization failure */
	/* Bulk commands by filter (bulkop.c): batches committed, the longest one begin to commit. */
	uint64_t bulk_batches;
	int64_t bulk_batch_max_us;
};
void svc_stats_get(struct service *s, struct svc_stats *out);
int svc_counts(struct service *s, struct status_count *devices, size_t *nd,
	       struct status_count *commands, size_t *nc, size_t max);

/* ---- labels and groups (issue 11 section 5; labels.c, labelq.c) ---- */

/* A label key: 1-63 of [A-Za-z0-9._/-], starting with a letter or digit. */
int svc_label_key_ok(const char *k);
/* A label value: at most 127 bytes of UTF-8 without control characters ("" allowed). */
int svc_label_value_ok(const char *v);
/*
 * Parses a label query (labelq.c has the grammar) into out; on error -1 and msg says
 * "query: at position N: ...", N the 1-based byte where reading stopped.
 */
int svc_labelq_parse(const char *text, struct label_query *out, char *msg, size_t cap);
/* The query's canonical text (what a group stores); -1 when it does not fit. */
int svc_labelq_format(const struct label_query *q, char *buf, size_t cap);

/* Labels to set and keys to remove on a device; replace: every other label goes too (PUT). */
struct svc_label_change {
	const struct device_label *set;
	size_t nset;
	const char (*remove)[LABEL_KEY_MAX];
	size_t nremove;
	int replace;
};
/* SVC_INVALID naming the first bad key or value. */
int svc_labels_check(const struct svc_label_change *ch, struct svc_error *err);
/* The device's labels by key (out holds LABELS_PER_DEVICE); any role; 404 without a device. */
int svc_labels_get(struct service *s, const struct principal *p, const char *device_id,
		   struct device_label *out, size_t *n, struct svc_error *err);
/*
 * Applies ch to one device (admins), in one transaction with a device.labels audit entry when
 * anything changed; out gets the labels after. SVC_INVALID past LABELS_PER_DEVICE.
 */
int svc_labels_change(struct service *s, const struct principal *p, const char *device_id,
		      const struct svc_label_change *ch, struct device_label *out, size_t *n,
		      struct svc_error *err);
enum svc_label_outcome { LABEL_CHANGED, LABEL_UNCHANGED, LABEL_REFUSED };
struct svc_label_result {
	char device_id[STORE_ID_MAX];
	enum svc_label_outcome outcome;
	char detail[128]; /* why it was refused */
};
/*
 * ch on each of n devices (at most SVC_BULK_MAX), each in its own transaction: a device that
 * already had it so is LABEL_UNCHANGED (a retried request changes nothing), an unknown one or
 * one that would exceed the bound LABEL_REFUSED. The role and the labels are checked first.
 */
int svc_labels_bulk(struct service *s, const struct principal *p, const struct svc_label_change *ch,
		    const char (*ids)[STORE_ID_MAX], size_t n, struct svc_label_result *out,
		    struct svc_error *err);

/* A group with its query parsed (for the device list's group= filter and a bulk's target). */
struct group_q {
	struct device_group g;
	struct label_query q;
	char msg[200];
};
/*
 * Creates (create: SVC_CONFLICT when the name is taken) or replaces a group's query,
 * description, policy and priority (SVC_NOT_FOUND when none), admins only. The query is
 * checked (SVC_INVALID naming the position) and stored as its canonical text, written back
 * into g with the times and version.
 */
int svc_group_put(struct service *s, const struct principal *p, struct device_group *g, int create,
		  struct svc_error *err);
int svc_group_get(struct service *s, const struct principal *p, const char *name,
		  struct device_group *out, struct svc_error *err);
/* Groups by name after after ("" from the first), up to max. Any role. */
int svc_group_list(struct service *s, const struct principal *p, const char *after,
		   struct device_group *out, size_t max, size_t *n, struct svc_error *err);
int svc_group_delete(struct service *s, const struct principal *p, const char *name,
		     struct svc_error *err);
/* The group named name with its query parsed into out (SVC_NOT_FOUND when none). */
int svc_group_resolve(struct service *s, const struct principal *p, const char *name,
		      struct group_q *out, struct svc_error *err);
/*
 * ---- webhooks (issue 11 §3; webhooks.c the subscriptions and the outbox, hookd.c delivery) ----
 * Admins only (PERM_WEBHOOKS). A subscription's secret ("whsec_" + base64 of 32 random bytes,
 * Standard Webhooks) is made by the server and given out by create and rotate only.
 */
#define SVC_EVENT_TYPES_N 12
extern const char *const svc_event_types[SVC_EVENT_TYPES_N];

/* What create and update take; an update changes only what is set (has_*). */
struct svc_webhook_input {
	const char *url;
	const char *description;
	const char *const *events; /* names of svc_event_types */
	size_t nevents;
	int enabled;
	int has_url, has_description, has_events, has_enabled;
};
int svc_webhook_create(struct service *s, const struct principal *p,
		       const struct svc_webhook_input *in, struct webhook *out,
		       struct svc_error *err);
int svc_webhook_list(struct service *s, const struct principal *p, struct webhook *out, size_t max,
		     size_t *n, struct svc_error *err);
int svc_webhook_get(struct service *s, const struct principal *p, const char *id,
		    struct webhook *out, struct svc_error *err);
/* Re-enabling a disabled subscription resumes from its cursor: no event is lost. */
int svc_webhook_update(struct service *s, const struct principal *p, const char *id,
		       const struct svc_webhook_input *in, struct webhook *out,
		       struct svc_error *err);
int svc_webhook_delete(struct service *s, const struct principal *p, const char *id,
		       struct svc_error *err);
/* A new secret in out->secret; the old one stops at once. */
int svc_webhook_rotate(struct service *s, const struct principal *p, const char *id,
		       struct webhook *out, struct svc_error *err);
int svc_webhook_deliveries(struct service *s, const struct principal *p, const char *id,
			   int64_t before_id, size_t limit, struct webhook_delivery *out, size_t *n,
			   struct svc_error *err);
/*
 * Sends delivery_id's event to its subscription again (a redelivery, ahead of the events
 * still due); the subscription's backoff ends so that it is sent now. out: the delivery.
 */
int svc_webhook_redeliver(struct service *s, const struct principal *p, const char *id,
			  int64_t delivery_id, struct webhook_delivery *out, struct svc_error *err);
/* The pending events of a subscription: none delivered past its cursor yet (for display). */

/*
 * The hook for every part that reports an event: inside the caller's write transaction,
 * writes an event of type (one of svc_event_types) whose "data" is data_json (the text of a
 * JSON object, at most WEBHOOK_PAYLOAD_MAX - 1 bytes) to the outbox, so that it commits or
 * rolls back with the change it reports. Nothing is written when no subscription wants the
 * type. 0, -EINVAL (unknown type, payload too long) or a store error (the transaction is lost).
 * svc_json_str quotes s as a JSON string into dst (for building data_json); when dst is short
 * it still holds a valid string, s cut at a character boundary, and -ENOSPC is returned.
 */
int svc_event_emit(struct service *s, const char *type, const char *data_json);
int svc_json_str(char *dst, size_t cap, const char *s);

/* Delivery (hookd.c): a pool of worker threads, each with its own libcurl handle. */
struct svc_webhook_config {
	int workers;          /* concurrent deliveries of this server; 0: 4 */
	int timeout_s;        /* a receiver's whole answer, connection included; 0: 10 */
	int allow_http;       /* http:// to any host (else only to 127.0.0.1 and localhost) */
	int64_t time_divisor; /* tests: backoff, retry window and lease run this many times faster */
	const char *ca_file;  /* CA bundle for https receivers; NULL: the system's */
};
int service_start_webhooks(struct service *s, const struct svc_webhook_config *cfg);
/*
 * The key that seals webhook secrets at rest: HKDF-SHA256 of key's seed (the deployment's
 * audit checkpoint key, which every server holds), info "cleave webhook secrets v1". Then
 * seals, one transaction each, the secrets still in the clear (databases from before).
 * Call before service_start_webhooks and before the API serves. 0 or -errno (logged).
 */
int service_set_webhook_key(struct service *s, const struct ed25519_key *key);

#endif

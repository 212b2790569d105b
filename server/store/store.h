/*
 * The storage interface of cleave-server: plain records and one ops table that a backend fills.
 * The service layer composes these small operations inside a write transaction (tx_begin ..
 * tx_commit) so that a command, its counter, the device's desired state and the audit row land
 * together or not at all. No business rules live here, and nothing here knows about HTTP or JSON.
 * Every op returns 0 or a negative errno: -ENOENT (no such row), -EEXIST (unique key taken),
 * -EIO (backend failure, already logged), -ENOMEM, -EDEADLK (a multi-writer backend gave the
 * transaction up to a deadlock, a serialization failure or a concurrent writer that got there
 * first; it is rolled back as a whole, and the caller runs the whole transaction again, reads
 * included), -ENOTCONN (the database cannot be reached or the connection broke: inside a
 * transaction nothing changed; at a commit or outside a transaction the outcome is unknown;
 * retry later), -EBUSY (the database is busy: a single statement's own retries ran out, or
 * SQLite's lock wait timed out; retry later).
 */
#ifndef CLEAVE_STORE_H
#define CLEAVE_STORE_H

#include <stddef.h>
#include <stdint.h>

#define STORE_ID_MAX     32
#define STORE_NAME_MAX   128
#define STORE_OWNER_MAX  256
#define STORE_TEXT_MAX   512
#define STORE_POLICY_MAX 4096
#define STORE_LIST_MAX   200

struct api_token {
	int64_t rowid;
	char id[STORE_ID_MAX];
	char name[STORE_NAME_MAX];
	char role[16];
	uint8_t hash[32];
	char created_by[STORE_ID_MAX];
	int64_t created_at;
	int64_t expires_at; /* 0: never */
	int64_t revoked_at; /* 0: not revoked */
};

struct enroll_token {
	int64_t rowid;
	char id[STORE_ID_MAX];
	char owner[STORE_OWNER_MAX];
	uint8_t hash[32];
	int64_t uses_max;
	int64_t uses;
	char created_by[STORE_ID_MAX];
	int64_t created_at;
	int64_t expires_at;
	int64_t revoked_at;
};

#define STORE_AK_NAME_MAX 66 /* a TPM object name: nameAlg || digest (tpm_verify.h TPM_NAME_MAX) */

/* An enrollment nonce: what it was handed out for (migration 0024 for the TPM part). */
struct enroll_nonce {
	char token_id[STORE_ID_MAX];
	int64_t expires_at;
	/*
	 * Handed out to a TPM as a credential (hypercall-bridge/TPM.md §3): the name of the AK it
	 * is bound to and the subject of the CA that issued the verified EK certificate.
	 * ak_name_len 0: handed out in plain, to no TPM.
	 */
	uint8_t ak_name[STORE_AK_NAME_MAX];
	uint16_t ak_name_len;
	char ek_issuer[STORE_NAME_MAX];
};

struct policy {
	char name[64];
	int64_t version;
	char body[STORE_POLICY_MAX]; /* canonical JSON text */
	int is_default;
	int64_t updated_at;
};

#define STORE_SPKI_MAX 128 /* crypto/hvsig.h HVSIG_SPKI_MAX */

struct device {
	int64_t rowid;
	char id[STORE_ID_MAX];
	char owner[STORE_OWNER_MAX];
	char status[16];
	uint8_t device_key[32];
	uint8_t hv_key[32];
	uint8_t measurement[32];
	char enrollment_token_id[STORE_ID_MAX];
	char model[STORE_NAME_MAX];
	char os[STORE_NAME_MAX];
	char agent_version[64];
	char policy_name[64];
	char applied_policy_name[64];
	int64_t applied_policy_version;
	char desired_state[16];
	char reported_state[16];
	int64_t key_epoch;
	int64_t ticket_counter;
	int64_t sig_seq;
	int64_t enrolled_at;
	int64_t last_seen_at;
	char attest_status[16]; /* enrolled, ok, mismatch */
	int64_t attested_at;    /* last good attestation at a check-in; 0: none since enrollment */
	uint8_t attested_policy[16];      /* its policy digest; all zero when none is known */
	int64_t epoch_since;              /* when key_epoch last changed */
	char superseded_by[STORE_ID_MAX]; /* "" or the record that re-enrolled this hypervisor */
	char replaces[STORE_ID_MAX];      /* "" or the record this one superseded */
	/* The hypervisor's identity (migration 0023, hypercall-bridge/TPM.md). */
	int hv_sig_alg; /* WIRE_SIG_*: how its attestations and receipts are signed */
	uint8_t hv_spki
		[STORE_SPKI_MAX]; /* DER SPKI of a P-256 key (hv_sig_alg 1); hv_key = SHA-256 */
	uint16_t hv_spki_len;     /* 0 for Ed25519 */
	char hv_identity[8];      /* "file" or "tpm": where the hypervisor's key lives */
	char endorsement[16];     /* "verified" or "" */
	char endorsement_ca[STORE_NAME_MAX]; /* issuer of the EK certificate, for people */
};

/* Columns of struct device that device_patch can write, one bit each. */
enum {
	DEV_F_STATUS = 1u << 0,
	DEV_F_POLICY = 1u << 1,  /* policy_name */
	DEV_F_APPLIED = 1u << 2, /* applied_policy_name and applied_policy_version */
	DEV_F_DESIRED = 1u << 3,
	DEV_F_REPORTED = 1u << 4,
	DEV_F_KEY_EPOCH = 1u << 5,
	DEV_F_AGENT = 1u << 6, /* agent_version */
	DEV_F_ATTEST = 1u << 7,
	DEV_F_ATTESTED_AT = 1u << 8, /* attested_at and attested_policy */
	DEV_F_EPOCH_SINCE = 1u << 9,
	DEV_F_SUPERSEDED = 1u << 10, /* superseded_by */
	DEV_F_ALL = (1u << 11) - 1,
};

struct command {
	int64_t rowid;
	char id[STORE_ID_MAX];
	char device_id[STORE_ID_MAX];
	char type[16];
	char status[16];
	char reason[STORE_TEXT_MAX];
	int64_t counter;
	uint8_t ticket[256];
	char created_by[STORE_ID_MAX];
	char idempotency_key[STORE_NAME_MAX]; /* "" when none */
	uint8_t request_hash[32];
	int64_t created_at;
	int64_t expires_at;
	int64_t delivered_at;
	int64_t acknowledged_at;
	int64_t completed_at;
	char result_detail[STORE_TEXT_MAX];
	uint8_t receipt[512];
	size_t receipt_len; /* 0: no receipt */
	int verified;
	char verify_note[STORE_TEXT_MAX]; /* why a finished command is not verified, or "" */
	/* Under the two-person rule (migration 0019): the approval and who approved; else "". */
	char approval_id[STORE_ID_MAX];
	char approved_by[STORE_ID_MAX];
};

struct audit_entry {
	int64_t seq;
	int64_t at_ms;
	char actor[64];
	char action[64];
	char target[64];
	char outcome[16];
	char detail[STORE_TEXT_MAX];
	uint8_t prev_hash[32];
	uint8_t hash[32];
};

/*
 * Labels and groups (issue 11 section 5, migration 0020). A label is key=value; a plain name is
 * a key with the value "". A device has at most LABELS_PER_DEVICE, one value per key. The
 * charsets are the service's rule (labels.c); the store keeps what it is given.
 */
#define LABEL_KEY_MAX     64  /* bytes with the NUL */
#define LABEL_VALUE_MAX   128 /* bytes with the NUL */
#define LABELS_PER_DEVICE 32
#define GROUP_QUERY_MAX   1024 /* a group's query text, with the NUL */

struct device_label {
	char key[LABEL_KEY_MAX];
	char value[LABEL_VALUE_MAX];
};

/*
 * A parsed label query (service/labelq.c): nodes in an array, a and b the operands' indexes.
 * LQ_HAS: the device has label key (any value); LQ_EQ: has key with exactly value; LQ_NOT,
 * LQ_AND, LQ_OR the usual. The store compiles it to SQL with every key and value bound.
 */
#define LABELQ_NODES_MAX 32
enum labelq_op { LQ_HAS, LQ_EQ, LQ_NOT, LQ_AND, LQ_OR };
struct labelq_node {
	enum labelq_op op;
	int a, b;
	char key[LABEL_KEY_MAX];
	char value[LABEL_VALUE_MAX];
};
struct label_query {
	int n;    /* nodes used */
	int root; /* the whole query's node */
	struct labelq_node node[LABELQ_NODES_MAX];
};

/*
 * The groups that give a policy, in precedence order (priority, then name): a device with no
 * policy of its own follows the first whose query it matches, else the default. The service
 * hands it to the store with the policy filter and the compliance spec (policy_groups).
 */
#define POLICY_GROUPS_MAX 16
struct policy_groups {
	size_t n;
	const struct label_query *q[POLICY_GROUPS_MAX];
	const char *policy[POLICY_GROUPS_MAX];
};

/* A group: a named label query, optionally with a policy its members follow (devices.c). */
struct device_group {
	char name[64];
	char query[GROUP_QUERY_MAX]; /* canonical text (labelq_format) */
	char description[STORE_NAME_MAX * 2];
	char policy[64];  /* "" when the group names no policy */
	int64_t priority; /* lower first when several groups give a device a policy */
	char created_by[STORE_ID_MAX];
	int64_t created_at, updated_at;
	int64_t version; /* 1 on create, +1 on each change */
};

/* Filters and pages. A cursor is the rowid (seq for audit) after which a page starts; 0 = first. */
struct device_filter {
	const char *status; /* NULL: any */
	const char *owner;  /* NULL: any */
	int64_t after;
	size_t limit;
};
struct command_filter {
	const char *device_id; /* NULL: any */
	const char *status;    /* NULL: any */
	const char *type;      /* NULL: any */
	int newest_first;      /* then after (when not 0) is the rowid the page starts below */
	int64_t after;
	size_t limit;
};
struct audit_filter {
	const char *actor;  /* NULL: any */
	const char *action; /* NULL: any */
	const char *target; /* NULL: any */
	int64_t since_ms;   /* 0: any; else only entries at or after it */
	int64_t until_ms;   /* 0: any; else only entries before it */
	int64_t after;
	size_t limit;
};

/*
 * The console's device query (issue 9): search, filters, a sort and a keyset cursor. Compliance
 * is a rule of the service, which hands in a compliance_spec with the values each policy's rule
 * needs (digest, cut-off times); the store only turns them into SQL predicates, one per reason
 * bit, so the list, the filter and the counts use the same definition.
 */
enum {
	COMPLY_RETIRED = 1u << 0,      /* status is not active, not superseded */
	COMPLY_SUPERSEDED = 1u << 1,   /* status is not active, a newer enrollment replaced it */
	COMPLY_NO_POLICY = 1u << 2,    /* no effective policy exists */
	COMPLY_NOT_APPLIED = 1u << 3,  /* attested_policy is not the policy's digest */
	COMPLY_OFFLINE = 1u << 4,      /* last_seen_at before the group's offline cut-off */
	COMPLY_AGENT_OLD = 1u << 5,    /* agent_version below the group's minimum */
	COMPLY_MISMATCH = 1u << 6,     /* attest_status is mismatch */
	COMPLY_ATTEST_STALE = 1u << 7, /* last good attestation before the cut-off */
	COMPLY_WIPED = 1u << 8,        /* reported_state is wiped */
	COMPLY_DIFFERS = 1u << 9,      /* desired_state differs from reported_state */
	COMPLY_COUNT = 10,
};

/* The devices following one policy, and what the rules compare them with. */
struct compliance_group {
	char policy[64];        /* devices whose policy_name is this */
	int is_default;         /* and devices with policy_name '' */
	uint8_t digest[16];     /* what their hypervisor must attest */
	int64_t offline_before; /* last_seen_at below this is too long offline; 0: no limit */
	int64_t attest_before;  /* a last good attestation below this is too old */
	char min_agent[32];     /* "" when any agent version will do */
};
struct compliance_spec {
	const struct compliance_group *groups;
	size_t n;
	int64_t attest_before; /* for devices without a policy */
	/* Groups that give a policy: their members without one of their own follow it. */
	const struct policy_groups *policy_groups;
	/* Compares dotted versions (<0, 0, >0): the service's rule, called from SQL. */
	int (*version_cmp)(const char *a, const char *b);
};

/* DEV_SORT_ROWID: insertion order, after after_rowid alone; a bulk's walk, not the API's. */
enum device_sort { DEV_SORT_LAST_SEEN = 0, DEV_SORT_OWNER, DEV_SORT_ENROLLED, DEV_SORT_ROWID };

struct device_query {
	const char *q;         /* prefix of owner or model (ASCII case ignored), id, fingerprint */
	const char *status;    /* the filters; NULL: any */
	const char *owner;     /* exact owner */
	const char *policy;    /* effective policy name */
	int policy_is_default; /* the policy is the default: devices with '' count too */
	const struct policy_groups *policy_groups; /* NULL or none: no group gives a policy */
	const char *applied_name; /* devices that applied this policy name ... (NULL: any) */
	int64_t applied_version;  /* ... at this version */
	const char *desired;      /* corporate state desired / reported */
	const char *reported;
	int64_t seen_before;    /* last_seen_at below this (never seen: 0 counts); 0: any */
	int64_t enrolled_until; /* enrolled_at at most this; 0: any (a bulk's own bound) */
	/* Label queries the device must match (the list's label= and group=); NULL: any. */
	const struct label_query *labels;
	const struct label_query *group;
	/*
	 * Inside a write transaction, the rows read stay the caller's until it ends (PostgreSQL:
	 * FOR UPDATE; SQLite's writer lock holds them already). A bulk's batch locks its devices
	 * before the audit head, the order single commands take them in.
	 */
	int for_update;
	int compliant;                      /* -1: any, 1: compliant only, 0: not compliant only */
	unsigned reasons;                   /* COMPLY_* bits: devices with any of them; 0: any */
	const struct compliance_spec *spec; /* needed when compliant >= 0 or reasons != 0 */
	enum device_sort sort;
	int desc;
	/* Keyset cursor: the page starts after the row with this sort key and rowid. */
	int has_after;
	int64_t after_key;
	const char *after_text; /* DEV_SORT_OWNER */
	int64_t after_rowid;
	size_t limit;
};

/* GET /api/v1/commands/bulk's page (bulk_list). */
struct bulk_list_filter {
	const char *state; /* NULL: any */
	int64_t after_created;
	const char *after_id; /* "" or NULL: the first page */
	size_t limit;
};

/*
 * A durable bulk command by filter (migration 0014): the filter's parsed values (f_*, "" for
 * any), the cursor: the row id of the last device done, in row id order (cursor_key -1:
 * none done yet), and the counts so far.
 */
struct bulk_op {
	char id[STORE_ID_MAX];
	char type[16];
	char reason[STORE_TEXT_MAX];
	char requested_by[STORE_ID_MAX];
	char idempotency_key[STORE_ID_MAX * 4];
	uint8_t request_hash[32];
	char filter[STORE_TEXT_MAX * 2];
	char f_q[STORE_OWNER_MAX], f_status[16], f_owner[STORE_OWNER_MAX], f_policy[64];
	char f_desired[16], f_reported[16];
	int64_t f_seen_before;
	char f_labels[GROUP_QUERY_MAX * 2 +
		      16]; /* label query (canonical text), "" for any (0020) */
	int f_compliant;
	unsigned f_reasons;
	int64_t enrolled_until;
	int64_t expected_count;
	int64_t cursor_key, cursor_rowid;
	int64_t queued, already_pending, skipped;
	/* running, done, canceled, refused (migration 0015); awaiting approval (0019) */
	char state[16];
	int64_t created_at, updated_at, finished_at;
	char ended_by[STORE_ID_MAX]; /* canceled: who; refused: the requester */
	char ended_why[STORE_TEXT_MAX / 2];
};

/*
 * An approval request of the two-person rule (migration 0019): one command (kind "command",
 * device_id) or a bulk by device list (kind "bulk", device_ids separated by spaces) that waits
 * for a second admin. The *_person fields are the admin accounts behind the principals.
 */
#define APPROVAL_IDS_MAX (500 * STORE_ID_MAX)
struct approval {
	char id[STORE_ID_MAX];
	char kind[16];
	char type[16];
	char device_id[STORE_ID_MAX];
	char *device_ids; /* kind bulk: caller-owned buffer of APPROVAL_IDS_MAX, or NULL to skip */
	int64_t device_count;
	char reason[STORE_TEXT_MAX];
	int64_t command_ttl_s;
	char requested_by[STORE_ID_MAX];
	char requester_person[STORE_ID_MAX];
	char status[16]; /* pending, approved, rejected, canceled, expired, overridden */
	int64_t created_at;
	int64_t created_ms; /* the same in ms (migration 0022); 0 on rows from before */
	int64_t expires_at;
	char decided_by[STORE_ID_MAX];
	char decided_person[STORE_ID_MAX];
	int64_t decided_at;
	char note[STORE_TEXT_MAX]; /* why it was rejected or overridden */
	char command_id[STORE_ID_MAX];
	char bulk_id[STORE_ID_MAX]; /* kind filter: the bulk operation held as "awaiting" */
};

/* GET /api/v1/approvals's page (approval_list): newest first. */
struct approval_filter {
	const char *status;    /* NULL: any */
	const char *device_id; /* NULL: any */
	int64_t after_created;
	const char *after_id; /* "" or NULL: the first page */
	size_t limit;
};

#define SUMMARY_STATES_MAX 16
struct device_summary {
	int64_t total;
	int64_t compliant;
	int64_t reasons[COMPLY_COUNT]; /* devices with each reason */
	/* where the hypervisor keys live (issue 13): hardware-attested or software */
	int64_t tpm_endorsed;   /* in a TPM whose endorsement chain was verified */
	int64_t tpm_unendorsed; /* in a TPM, endorsement not verified */
	int64_t software_keys;  /* the file keystore */
	size_t nstates;
	struct {
		char desired[16];
		char reported[16];
		int64_t n;
	} states[SUMMARY_STATES_MAX];
};

/* Count of rows per status value, for /metrics. */
struct status_count {
	char status[16];
	int64_t n;
};

/* An admin account of the web console (issue 9); pwhash is an Argon2id crypto_pwhash_str. */
struct admin_account {
	char id[STORE_ID_MAX];
	char email[STORE_NAME_MAX];
	char display_name[STORE_NAME_MAX];
	char role[16];
	char pwhash[128];
	char created_by[STORE_ID_MAX];
	int64_t created_at;
	int64_t created_ms;  /* the same in ms (migration 0022); 0 on rows from before */
	int64_t disabled_at; /* 0: may sign in */
	int has_totp;        /* a second factor is enrolled: totp_secret holds its key */
	uint8_t totp_secret[20];
	int64_t failed_logins;  /* failed sign-ins since the last good one */
	int64_t last_failed_at; /* when the last of them was */
	int64_t totp_last_step; /* the TOTP step of the last code accepted */
};

/* A console session; only the SHA-256 of its id is stored. */
struct admin_session {
	uint8_t hash[32];
	char admin_id[STORE_ID_MAX];
	int64_t created_at;
	int64_t last_seen_at;
	int second_factor; /* a TOTP code was checked at its sign-in (migration 0019) */
};

/* A device page link of the employee portal (issue 9); only the SHA-256 of its secret. */
struct portal_link {
	uint8_t hash[32];
	char device_id[STORE_ID_MAX];
	int64_t created_at;
	int64_t expires_at;
};

/*
 * Webhooks (issue 11 §3, migration 0017): a subscription, an event of the outbox, one attempt
 * to deliver one. Events are one row each, whatever the number of subscriptions; each
 * subscription keeps a cursor (the seq of the last event it is done with) and delivers the
 * next matching event after it, so the outbox costs one row per event (see store_ops).
 */
#define WEBHOOK_EVENTS_MAX  256  /* ",type,type," */
#define WEBHOOK_PAYLOAD_MAX 2048 /* the event's "data" object, JSON text */
struct webhook {
	char id[STORE_ID_MAX];
	char url[STORE_TEXT_MAX];
	char description[STORE_NAME_MAX];
	/* As stored: sealed by the service ("v1:...", crypto/seal.h) around whsec_ + base64 of
	 * 32 random bytes; rows from before sealing hold the whsec_ text itself. */
	char secret[128];
	char events[WEBHOOK_EVENTS_MAX];
	int enabled;
	int64_t cursor;        /* events with seq up to this are done (delivered or not wanted) */
	int64_t attempts;      /* failed attempts at the event after the cursor */
	int64_t next_at_ms;    /* no attempt before this (backoff) */
	int64_t failing_since; /* ms of the first failed attempt of the run; 0: not failing */
	int64_t lease_until;   /* ms: a server is delivering until then (lease_owner) */
	char lease_owner[STORE_ID_MAX];
	char disabled_why[STORE_NAME_MAX];
	char created_by[STORE_ID_MAX];
	int64_t created_at, updated_at; /* ms */
};
struct webhook_event {
	int64_t seq; /* assigned by event_append, in commit order */
	char id[STORE_ID_MAX];
	char type[32];
	int64_t at_ms;
	char payload[WEBHOOK_PAYLOAD_MAX];
};
struct webhook_delivery {
	int64_t id;
	char webhook_id[STORE_ID_MAX];
	int64_t event_seq;
	char event_id[STORE_ID_MAX];
	char event_type[32];
	int64_t attempt; /* 1 for the first try of the event; manual ones count on */
	int manual;      /* a redelivery an admin asked for */
	int64_t at_ms;
	int64_t status; /* HTTP status; 0: none (connection failed, timeout) */
	int64_t latency_ms;
	char error[STORE_NAME_MAX];
	int ok;
};

/*
 * A single sign-on begun and not finished (issue 11, migration 0021): found by the SHA-256 of
 * its state, it holds what the ID token and the code exchange must match.
 */
struct oidc_flow {
	uint8_t state_hash[32];
	char nonce[64];
	char verifier[64]; /* the PKCE code verifier */
	int64_t created_at;
	int64_t expires_at;
};

struct store;

/*
 * What a listening server is told (store_ops.listen), on the listener's thread: a device has a
 * command queued, a policy changed, the listen connection is (again) up, after which the
 * server looks for whatever it missed while it was down, or it was lost. Notifications sent by this process's
 * own connections are not passed on: the server that queued the command woke its own already.
 */
struct store_listener {
	void (*device)(void *ctx, const char *device_id);
	void (*policy)(void *ctx, const char *name, int is_default);
	/* Many devices got commands at once (a bulk batch): check the parked ones now. */
	void (*sweep)(void *ctx);
	void (*connected)(void *ctx);
	void (*lost)(void *ctx);
	void *ctx;
};

/*
 * The audit log's stream to a SIEM (issue 11 §3, migration 0018): how far the stream name got
 * (the newest audit seq its collector acknowledged) and which server sends it until when.
 */
#define SIEM_NAME_MAX   64
#define SIEM_HOLDER_MAX 96
struct siem_stream {
	char name[SIEM_NAME_MAX];
	int64_t last_seq;
	int64_t last_ckpt_id;         /* the newest audit checkpoint row sent */
	char holder[SIEM_HOLDER_MAX]; /* "" : nobody yet */
	int64_t lease_until_ms;
	int64_t updated_at_ms;
};

/* Callbacks used by iterators; returning non-zero stops the walk and is passed back. */
typedef int (*audit_iter_fn)(void *ctx, const struct audit_entry *e);

/* A signed checkpoint of the audit chain's head (schema/wire-formats.md §6), kept as signed. */
#define AUDIT_CKPT_LEN 160
struct audit_ckpt_row {
	int64_t id;    /* insertion order */
	int64_t seq;   /* the audit entry it names */
	int64_t at_ms; /* when it was made */
	uint8_t record[AUDIT_CKPT_LEN];
};
typedef int (*audit_ckpt_iter_fn)(void *ctx, const struct audit_ckpt_row *c);

struct store_ops {
	const char *name; /* the backend: "sqlite" or "postgresql" */
	void (*close)(struct store *st);

	/*
	 * SQLite: write transactions are serialised process-wide. PostgreSQL: they overlap (READ
	 * COMMITTED), and each op that reads then writes does so in one statement or under a row
	 * lock (device_get_for_update, the audit head in audit_last); see store_pg.c for the lock
	 * order. Reads need none. A failed commit has rolled back; tx_rollback does nothing when
	 * no transaction is open.
	 */
	int (*tx_begin)(struct store *st);
	int (*tx_commit)(struct store *st);
	void (*tx_rollback)(struct store *st);
	/*
	 * Optional (NULL: not measured). How long write transactions held the write lock, since
	 * the store was opened: the longest hold in microseconds, and how many took over 50 ms.
	 */
	int (*tx_hold_stats)(struct store *st, int64_t *max_us, int64_t *over_50ms);
	/*
	 * Optional (NULL: the database is a file of this process and always answers). Runs a
	 * trivial query: 0 when the database answers, -ENOTCONN or -EIO when it does not.
	 */
	int (*ping)(struct store *st);
	/*
	 * Optional (NULL: no single write lock). How many threads wait for the write lock now,
	 * so that background work (a bulk's batches) can let them go first.
	 */
	int (*write_waiters)(struct store *st);

	int (*token_insert)(struct store *st, const struct api_token *t);
	int (*token_by_hash)(struct store *st, const uint8_t hash[32], struct api_token *out);
	int (*token_list)(struct store *st, int64_t after, size_t limit, struct api_token *out,
			  size_t *n);
	int (*token_revoke)(struct store *st, const char *id, int64_t now);
	int (*token_count)(struct store *st, int64_t *n);
	/* The token with this id, revoked or not; -ENOENT when none (a bulk's requester). */
	int (*token_get)(struct store *st, const char *id, struct api_token *out);

	int (*etoken_insert)(struct store *st, const struct enroll_token *t);
	int (*etoken_by_hash)(struct store *st, const uint8_t hash[32], struct enroll_token *out);
	int (*etoken_get)(struct store *st, const char *id, struct enroll_token *out);
	int (*etoken_list)(struct store *st, int64_t after, size_t limit, struct enroll_token *out,
			   size_t *n);
	int (*etoken_revoke)(struct store *st, const char *id, int64_t now);
	int (*etoken_use)(struct store *st, const char *id); /* uses += 1 */

	/* A nonce handed out to the holder of enrollment token n->token_id (and n's TPM, if any). */
	int (*nonce_insert)(struct store *st, const uint8_t nonce[32],
			    const struct enroll_nonce *n);
	/*
	 * Deletes the nonce and copies what it was handed out for into *out; -ENOENT when unknown,
	 * -ETIME when it had expired.
	 */
	int (*nonce_take)(struct store *st, const uint8_t nonce[32], int64_t now,
			  struct enroll_nonce *out);
	int (*nonce_purge)(struct store *st, int64_t now);

	/*
	 * Shared-database backends only (NULL on SQLite, whose one server keeps the replay window
	 * in memory and in its replay log): records that device_id's request with nonce was
	 * accepted at seen_at, in its own statement (never inside tx_begin), before the request
	 * is answered. -EALREADY when the pair was recorded before, by this server or another
	 * one: a replay. Its commit may be asynchronous (visible to every server at once, on
	 * disk within a fraction of a second: store_pg_shared.c), as SQLite's replay log is.
	 */
	int (*request_nonce_claim)(struct store *st, const char *device_id, uint64_t nonce,
				   int64_t seen_at);
	/* Forgets the nonces seen before `before` (their signatures are too old anyway). */
	int (*request_nonce_purge)(struct store *st, int64_t before);
	/*
	 * The deployment's public signing keys (migration 0013). Records ticket_pub and audit_pub
	 * when none are recorded yet, or always when replace; then copies the recorded ones into
	 * ticket_had and audit_had (the caller compares). Two servers starting together record one.
	 */
	int (*keys_pin)(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
			int replace, int64_t now, uint8_t ticket_had[32], uint8_t audit_had[32]);

	/* Inserts or replaces; a multi-writer backend replaces only with a newer version (-EDEADLK). */
	int (*policy_put)(struct store *st, const struct policy *p);
	int (*policy_get)(struct store *st, const char *name, struct policy *out);
	int (*policy_default)(struct store *st, struct policy *out);
	int (*policy_set_default)(struct store *st, const char *name);
	int (*policy_list)(struct store *st, struct policy *out, size_t max, size_t *n);
	/*
	 * Active devices following policy name (with is_default, also those that follow the
	 * default) into *assigned, and how many of them report having applied version into
	 * *applied.
	 */
	int (*policy_counts)(struct store *st, const char *name, int is_default, int64_t version,
			     int64_t *assigned, int64_t *applied);

	int (*device_insert)(struct store *st, const struct device *d);
	int (*device_get)(struct store *st, const char *id, struct device *out);
	/*
	 * device_get for a read-modify-write inside a write transaction: the row stays the
	 * caller's until the transaction ends (SQLite: the writer lock already holds it; a
	 * multi-writer backend locks the row).
	 */
	int (*device_get_for_update)(struct store *st, const char *id, struct device *out);
	int (*device_list)(struct store *st, const struct device_filter *f, struct device *out,
			   size_t *n);
	/*
	 * Writes only the columns named in fields (DEV_F_* bits) with v's values, so concurrent
	 * changes to other columns are never undone. -ENOENT when no row has v->id.
	 */
	int (*device_patch)(struct store *st, const struct device *v, unsigned fields);
	/* Takes the device's next ticket counter (the stored one plus one) into *counter. */
	int (*device_next_counter)(struct store *st, const char *id, int64_t *counter);
	int (*device_delete)(struct store *st, const char *id);
	/* Check-in bookkeeping, batched by the caller; never lowers sig_seq or last_seen_at. */
	int (*device_touch)(struct store *st, const char *id, int64_t last_seen, int64_t sig_seq);
	/* Ids of the active devices enrolled with this hypervisor key, oldest first. */
	int (*device_ids_by_hv_key)(struct store *st, const uint8_t hv_key[32],
				    char (*ids)[STORE_ID_MAX], size_t max, size_t *n);
	/*
	 * Ids of active devices following policy name (as device_ids_by_policy) whose key epoch
	 * is older than epoch_before, with no rekey open and none created since quiet_since.
	 */
	int (*device_ids_rekey_due)(struct store *st, const char *name, int is_default,
				    int64_t epoch_before, int64_t quiet_since,
				    char (*ids)[STORE_ID_MAX], size_t max, size_t *n);
	/* Ids of the devices following policy name (name "" or the default: those with ""). */
	int (*device_ids_by_policy)(struct store *st, const char *name, int is_default,
				    char (*ids)[STORE_ID_MAX], size_t max, size_t *n);
	int (*device_count_by_status)(struct store *st, struct status_count *out, size_t max,
				      size_t *n);
	/* The console's device query: up to q->limit rows in q's order into out. */
	int (*device_query)(struct store *st, const struct device_query *q, struct device *out,
			    size_t *n);
	/* How many devices q's filters match (its cursor, sort and limit are ignored). */
	int (*device_count)(struct store *st, const struct device_query *q, int64_t *n);
	/* Totals for the compliance dashboard, by reason and by corporate state. */
	int (*device_summary)(struct store *st, const struct compliance_spec *spec,
			      struct device_summary *out);

	int (*command_insert)(struct store *st, const struct command *c);
	int (*command_get)(struct store *st, const char *id, struct command *out);
	int (*command_by_idempotency)(struct store *st, const char *created_by, const char *key,
				      struct command *out);
	int (*command_list)(struct store *st, const struct command_filter *f, struct command *out,
			    size_t *n);
	/* Commands still open for a device (queued, delivered, acknowledged), oldest first. */
	int (*command_open)(struct store *st, const char *device_id, struct command *out,
			    size_t max, size_t *n);
	/*
	 * Rewrites status, times, detail, receipt and verified, only while the stored status is
	 * still from (compare-and-set): -ESTALE when it moved on, -ENOENT when there is no row.
	 */
	int (*command_update)(struct store *st, const struct command *c, const char *from);
	/*
	 * Marks up to max open commands whose expiry passed as expired; *n gets how many, and
	 * devices[i] the device of each (a device may repeat). Call again while *n == max.
	 */
	int (*command_expire)(struct store *st, int64_t now, char (*devices)[STORE_ID_MAX],
			      size_t max, size_t *n);
	int (*command_count_by_status)(struct store *st, struct status_count *out, size_t max,
				       size_t *n);

	/*
	 * Optional (NULL: a bulk's batch queues device by device). A bulk's batch in a few
	 * statements rather than several per device, over n devices the transaction holds
	 * locked already (device_query with for_update), in their order:
	 * command_open_of_type: open_ids[i] gets the oldest open command of type of ids[i], ""
	 * when none (as command_open). device_next_counters: each device's counter plus one into
	 * counters[i] (as device_next_counter) and, when desired is not NULL, its desired_state
	 * (as device_patch with DEV_F_DESIRED). command_insert_many: the n commands, in order,
	 * without idempotency keys (-EINVAL if one has one). audit_insert_many: the n entries
	 * exactly as given (as audit_insert), under the audit head lock the caller took.
	 */
	int (*command_open_of_type)(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
				    const char *type, char (*open_ids)[STORE_ID_MAX]);
	int (*device_next_counters)(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
				    const char *desired, int64_t *counters);
	int (*command_insert_many)(struct store *st, const struct command *c, size_t n);
	int (*audit_insert_many)(struct store *st, const struct audit_entry *e, size_t n);

	/* Appends e exactly as given: the caller assigns seq (the hash covers it). */
	int (*audit_insert)(struct store *st, struct audit_entry *e);
	/* Latest entry; -ENOENT when the log is empty. */
	int (*audit_last)(struct store *st, struct audit_entry *out);
	int (*audit_list)(struct store *st, const struct audit_filter *f, struct audit_entry *out,
			  size_t *n);
	/* Walks every entry in seq order. */
	int (*audit_iter)(struct store *st, audit_iter_fn fn, void *ctx);

	/* ---- audit checkpoints (issue 8) ---- */
	/* The entry with this seq; -ENOENT when there is none. */
	int (*audit_get)(struct store *st, int64_t seq, struct audit_entry *out);
	/* Appends a checkpoint (c->id is assigned, not read); call inside a write transaction. */
	int (*audit_ckpt_insert)(struct store *st, const struct audit_ckpt_row *c);
	/* Newest checkpoint (by insertion); -ENOENT when there is none. */
	int (*audit_ckpt_last)(struct store *st, struct audit_ckpt_row *out);
	/* Walks every checkpoint in insertion order. */
	int (*audit_ckpt_iter)(struct store *st, audit_ckpt_iter_fn fn, void *ctx);

	/* ---- incremental audit verification (issue 10 §0) ---- */
	/*
	 * Up to limit entries with seq > after_seq in seq order, each range in a read transaction
	 * of its own that ends before the call returns, so a long walk done as many ranges never
	 * holds one snapshot (or a connection's lock) for its whole length.
	 */
	int (*audit_iter_range)(struct store *st, int64_t after_seq, size_t limit, audit_iter_fn fn,
				void *ctx);
	/* The checkpoints with id > after_id in insertion order. */
	int (*audit_ckpt_iter_after)(struct store *st, int64_t after_id, audit_ckpt_iter_fn fn,
				     void *ctx);

	/* ---- admin accounts and console sessions (issue 9) ---- */
	/* -EEXIST when the email (compared without case) is taken. */
	int (*admin_insert)(struct store *st, const struct admin_account *a);
	int (*admin_by_email)(struct store *st, const char *email, struct admin_account *out);
	int (*admin_get)(struct store *st, const char *id, struct admin_account *out);
	int (*admin_list)(struct store *st, struct admin_account *out, size_t max, size_t *n);
	/*
	 * Inside a transaction a multi-writer backend also keeps other transactions from adding
	 * an admin until this one ends, so "none yet, make the first" is one decision.
	 */
	int (*admin_count)(struct store *st, int64_t *n);
	int (*admin_disable)(struct store *st, const char *id, int64_t now);
	int (*session_insert)(struct store *st, const struct admin_session *ss);
	int (*session_get)(struct store *st, const uint8_t hash[32], struct admin_session *out);
	int (*session_touch)(struct store *st, const uint8_t hash[32], int64_t now);
	/* -ENOENT when no such session. */
	int (*session_delete)(struct store *st, const uint8_t hash[32]);
	/* Every session of one admin (sign out everywhere); 0 even when there were none. */
	int (*session_delete_admin)(struct store *st, const char *admin_id);
	/* Sets (or replaces) the account's TOTP key; -ENOENT when no such account. */
	int (*admin_set_totp)(struct store *st, const char *id, const uint8_t secret[20]);
	/* A sign-in of the account failed at now (ok == 0: count it) or succeeded (reset). */
	int (*admin_login_result)(struct store *st, const char *id, int ok, int64_t now);
	/* Records that a TOTP code of step was used; -ENOENT unless step is newer than the last. */
	int (*admin_totp_used)(struct store *st, const char *id, int64_t step);

	/* ---- bulk operations by filter (issue 10; store_sqlite_bulk.c, store_pg_bulk.c) ---- */
	/* -EEXIST when (requested_by, idempotency_key) is taken. state "awaiting" or running. */
	int (*bulk_insert)(struct store *st, const struct bulk_op *b);
	/*
	 * An awaiting bulk (the two-person rule) starts: state running, updated_at now; -ENOENT
	 * unless it is awaiting.
	 */
	int (*bulk_release)(struct store *st, const char *id, int64_t now);
	int (*bulk_get)(struct store *st, const char *id, struct bulk_op *out);
	int (*bulk_by_idempotency)(struct store *st, const char *requested_by, const char *key,
				   struct bulk_op *out);
	/*
	 * Inside the caller's write transaction: the oldest running bulk operation no other
	 * transaction holds, locked until this one ends (SQLite: the writer lock; PostgreSQL: FOR
	 * UPDATE SKIP LOCKED, so servers never work the same bulk at once). -ENOENT when none.
	 */
	int (*bulk_claim)(struct store *st, struct bulk_op *out);
	/* Writes b's cursor, counts, state, updated_at and finished_at; -ENOENT when no row. */
	int (*bulk_progress)(struct store *st, const struct bulk_op *b);
	/*
	 * Newest first (created_at, id descending), after the keyset (after_created, after_id)
	 * when after_id is not "", of state state when not NULL; up to limit rows.
	 */
	int (*bulk_list)(struct store *st, const struct bulk_list_filter *f, struct bulk_op *out,
			 size_t *n);
	/*
	 * Ends a running (or awaiting) bulk (migration 0015): state (canceled, refused), ended_by,
	 * ended_why, finished_at and updated_at now, only while it is running or awaiting:
	 * -ENOENT when no such bulk has this id. PostgreSQL: waits for a batch that holds the row, then sees its state.
	 */
	int (*bulk_stop)(struct store *st, const char *id, const char *state, const char *by,
			 const char *why, int64_t now);

	/* ---- labels and groups (issue 11; store_sqlite_labels.c, store_pg_labels.c) ---- */
	/* The device's labels, by key; at most max. A device that does not exist has none. */
	int (*labels_get)(struct store *st, const char *device_id, struct device_label *out,
			  size_t max, size_t *n);
	/* Sets key to value on the device (insert or replace); -ENOENT when no such device. */
	int (*label_put)(struct store *st, const char *device_id, const char *key,
			 const char *value);
	/* Removes key from the device; -ENOENT when it had no such label. */
	int (*label_delete)(struct store *st, const char *device_id, const char *key);
	/* -EEXIST when the name is taken. */
	int (*group_insert)(struct store *st, const struct device_group *g);
	int (*group_get)(struct store *st, const char *name, struct device_group *out);
	/* Groups by name after after ("" or NULL: from the first), up to max. */
	int (*group_list)(struct store *st, const char *after, struct device_group *out, size_t max,
			  size_t *n);
	/*
	 * Rewrites query, description, policy, priority and updated_at, and adds 1 to version
	 * in the same statement (g->version is not read); -ENOENT when no such group.
	 */
	int (*group_update)(struct store *st, const struct device_group *g);
	int (*group_delete)(struct store *st, const char *name);
	/*
	 * Groups that give a policy (policy <> ''), by priority then name, up to max: a device's
	 * effective policy when it has none of its own is the first whose query it matches.
	 */
	int (*group_policies)(struct store *st, struct device_group *out, size_t max, size_t *n);
	/* *match = 1 when the device exists and matches q. */
	int (*device_matches)(struct store *st, const char *device_id, const struct label_query *q,
			      int *match);
	/* ---- the two-person rule (migration 0019; store_sqlite_approval.c, store_pg_approval.c) */
	int (*approval_insert)(struct store *st, const struct approval *a);
	/*
	 * The approval with this id (device_ids too when out->device_ids is a buffer). for_update:
	 * inside a write transaction, the row stays the caller's until it ends (PostgreSQL: FOR
	 * UPDATE, so concurrent deciders take turns). -ENOENT when none.
	 */
	int (*approval_get)(struct store *st, const char *id, int for_update, struct approval *out);
	/* Newest first (created_at, id descending); device_ids are not read. */
	int (*approval_list)(struct store *st, const struct approval_filter *f,
			     struct approval *out, size_t *n);
	/*
	 * Ends a pending approval: writes a's status, decided_by, decided_person, decided_at,
	 * note and command_id, only while it is pending; -ENOENT when it is not (or no such row).
	 */
	int (*approval_decide)(struct store *st, const struct approval *a);
	/* Up to max pending requests with expires_at <= now, the oldest expiry first. */
	int (*approval_expired)(struct store *st, int64_t now, struct approval *out, size_t max,
				size_t *n);
	/* Records on command id which approval let it through and who approved it. */
	int (*command_set_approval)(struct store *st, const char *id, const char *approval_id,
				    const char *approved_by);
	/* Gives token id a permission beyond its role ("approve"); -EEXIST when it has it. */
	int (*token_permission_add)(struct store *st, const char *id, const char *permission);
	/* 0 when token id has the permission, -ENOENT when not. */
	int (*token_permission_has)(struct store *st, const char *id, const char *permission);

	/* ---- employee portal links (store_sqlite_portal.c, store_pg_portal.c) ---- */
	int (*portal_link_insert)(struct store *st, const struct portal_link *l);
	/* The link with this hash, expired or not (the service decides); -ENOENT when none. */
	int (*portal_link_get)(struct store *st, const uint8_t hash[32], struct portal_link *out);

	/* ---- single sign-on (issue 11; store_sqlite_oidc.c, store_pg_oidc.c) ---- */
	/* Records a flow, and forgets those that expired before it began. */
	int (*oidc_flow_insert)(struct store *st, const struct oidc_flow *f);
	/*
	 * Deletes the flow and returns it: a flow is finished once, even by two servers at once
	 * (one gets it, the other -ENOENT). Expiry is the service's check.
	 */
	int (*oidc_flow_take)(struct store *st, const uint8_t state_hash[32],
			      struct oidc_flow *out);
	/* The admin account linked to the provider's (issuer, subject); -ENOENT when none. */
	int (*admin_by_identity)(struct store *st, const char *issuer, const char *subject,
				 struct admin_account *out);
	/* Links an account to (issuer, subject); -EEXIST when either side is linked already. */
	int (*admin_identity_insert)(struct store *st, const char *issuer, const char *subject,
				     const char *admin_id, int64_t now);
	/*
	 * Sets what the provider says of a linked account (email, display name, role) at a sign-in;
	 * -ENOENT when no such account, -EEXIST when the email belongs to another.
	 */
	int (*admin_sso_update)(struct store *st, const char *id, const char *email,
				const char *display_name, const char *role);

	/*
	 * ---- wake-ups across servers (PostgreSQL only: NULL on SQLite, whose one server wakes
	 * its own parked check-ins; store_pg_notify.c) ----
	 * notify_device: inside the caller's write transaction, tells every server listening that
	 * device_id has a command queued; sent only if the transaction commits. Never from a
	 * check-in (a notifying commit takes a database-wide lock). notify_policy: one per policy
	 * change, so that every server wakes the followers it holds.
	 */
	int (*notify_device)(struct store *st, const char *device_id);
	int (*notify_policy)(struct store *st, const char *name, int is_default);
	/* One for many devices at once (a bulk batch): each server sweeps its parked devices. */
	int (*notify_sweep)(struct store *st);
	/*
	 * Starts listening (a thread with a connection of its own, reconnecting with backoff);
	 * l must outlive unlisten. unlisten stops it and returns once no callback runs.
	 */
	int (*listen)(struct store *st, const struct store_listener *l);
	void (*unlisten)(struct store *st);
	/* Of ids[0..n), those with a queued command into out (up to n); *nout gets the count. */
	int (*devices_with_queued)(struct store *st, const char (*ids)[STORE_ID_MAX], size_t n,
				   char (*out)[STORE_ID_MAX], size_t *nout);

	/*
	 * ---- the audit stream to a SIEM (server/siem/; store_sqlite_siem.c, store_pg_siem.c) ----
	 * Each is one statement (atomic on its own), so several servers on one database never
	 * both send. siem_claim: makes holder the sender of stream s->name (the row is made at
	 * position 0 when missing) unless another holder's lease runs past now; its lease then
	 * runs until now + lease_ms and *s gets the row. -EBUSY when another holder's lease is
	 * still running (*s gets that row). siem_advance: moves holder's stream from position
	 * from to position to (and its checkpoint position to ckpt_to) and renews its lease; -ESTALE when holder no longer holds it or its
	 * position is not from (another server took over). siem_release: ends holder's lease now,
	 * so that another server takes over at once. siem_get: the row; -ENOENT when none.
	 */
	int (*siem_claim)(struct store *st, struct siem_stream *s, const char *holder, int64_t now,
			  int64_t lease_ms);
	int (*siem_advance)(struct store *st, const char *name, const char *holder, int64_t from,
			    int64_t to, int64_t ckpt_to, int64_t now, int64_t lease_ms);
	int (*siem_release)(struct store *st, const char *name, const char *holder);
	int (*siem_get)(struct store *st, const char *name, struct siem_stream *out);

	/*
	 * ---- webhooks (issue 11 §3; store_sqlite_hook.c, store_pg_hook.c) ----
	 * webhook_insert: w's cursor is set to the outbox head, so a new subscription gets the
	 * events that commit after it. webhook_get with for_update locks the row until the
	 * transaction ends. webhook_save writes every mutable column. webhook_delete removes the
	 * subscription, its delivery log and its redeliveries.
	 */
	int (*webhook_insert)(struct store *st, struct webhook *w);
	int (*webhook_get)(struct store *st, const char *id, int for_update, struct webhook *out);
	int (*webhook_list)(struct store *st, struct webhook *out, size_t max, size_t *n);
	int (*webhook_save)(struct store *st, const struct webhook *w);
	int (*webhook_delete)(struct store *st, const char *id);
	/*
	 * Inside the caller's write transaction: appends the n events (all of e[0].type) to the
	 * outbox when some subscription, enabled or not, wants that type, assigning e[i].seq in
	 * order (seqs commit in order: the outbox head stays locked until the transaction ends);
	 * when none does, writes nothing and leaves every seq 0.
	 */
	int (*event_append)(struct store *st, struct webhook_event *e, size_t n);
	/*
	 * Inside the caller's write transaction: an enabled subscription due at now_ms (backoff
	 * over, lease free) with an event or a redelivery to send, which no other transaction
	 * holds (PostgreSQL: SKIP LOCKED); leased to owner until lease_until. Of several, the
	 * earliest due, then the one whose lease ended first (a released lease keeps the time it
	 * was released at: the least recently served). -ENOENT when none.
	 */
	int (*webhook_claim)(struct store *st, int64_t now_ms, int64_t lease_until,
			     const char *owner, struct webhook *out);
	/* The first event after seq after whose type is in events (",a,b,"); -ENOENT: none. */
	int (*event_next)(struct store *st, int64_t after, const char *events,
			  struct webhook_event *out);
	int (*event_get)(struct store *st, int64_t seq, struct webhook_event *out);
	int (*delivery_insert)(struct store *st, struct webhook_delivery *d);
	/* Newest first; before_id 0: from the newest. */
	int (*delivery_list)(struct store *st, const char *webhook_id, int64_t before_id,
			     size_t limit, struct webhook_delivery *out, size_t *n);
	int (*delivery_get)(struct store *st, int64_t id, struct webhook_delivery *out);
	/* A manual redelivery of an event (one per event and subscription; again is no error). */
	int (*redeliver_add)(struct store *st, const char *webhook_id, int64_t seq);
	int (*redeliver_next)(struct store *st, const char *webhook_id, int64_t *seq);
	int (*redeliver_drop)(struct store *st, const char *webhook_id, int64_t seq);
	/*
	 * Forgets events older than before_ms that every subscription is done with and none
	 * awaits as a redelivery, and delivery log rows older than before_ms.
	 */
	int (*event_prune)(struct store *st, int64_t before_ms);
	/*
	 * Moves the cursor of each subscription with no event of its types between its cursor
	 * and the outbox head to the head (one statement, so the head it reads and the events
	 * it looks at are of one moment): claims and event_next then never walk past the events
	 * of other types again.
	 */
	int (*webhook_skip)(struct store *st);
};

struct store {
	const struct store_ops *ops;
};

/*
 * Opens (creating if needed) the SQLite database at path, in WAL mode, and applies the numbered
 * migrations that it lacks. *out is owned by the caller (close with st->ops->close).
 */
int store_sqlite_open(const char *path, struct store **out);

/* Schema version the database is at after store_sqlite_open. */
int store_sqlite_schema_version(struct store *st);

/* WAL checkpoints the store's checkpoint thread has run (commits never run one themselves). */
long store_sqlite_checkpoints(struct store *st);

/*
 * The SQL the SQLite backend runs for an audit list with the filters in f, and for policy
 * counts, so that tests can EXPLAIN QUERY PLAN them. 0, or -ENAMETOOLONG when cap is short.
 */
int store_sqlite_audit_list_sql(const struct audit_filter *f, char *sql, size_t cap);
extern const char store_sqlite_policy_counts_sql[];

/*
 * Connects to the PostgreSQL database named by url (a libpq connection URI or keyword string)
 * and applies, under an advisory lock, the numbered migrations it lacks; refuses (-EPROTO) a
 * database whose schema is newer than this build. Several servers may share the database.
 */
int store_pg_open(const char *url, struct store **out);

/* Schema version the database is at after store_pg_open. */
int store_pg_schema_version(struct store *st);

/*
 * Test builds only (CLEAVE_TEST_HOOKS): PostgreSQL's plan (EXPLAIN, lines joined by "; ") of
 * the device query or audit list the backend would run for q or f, with the same parameters.
 */
int store_pg_explain_device_query(struct store *st, const struct device_query *q, char *plan,
				  size_t cap);
int store_pg_explain_audit_list(struct store *st, const struct audit_filter *f, char *plan,
				size_t cap);

#endif

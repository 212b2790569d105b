/*
 * The JSON bodies of the device API (schema/api.md, "Device API") as the agent writes and reads
 * them: enrollment, check-in, results, receipt upload, unenroll and problem details. Pure
 * functions over buffers (Jansson inside, nothing of it in this header): they neither send nor
 * log, so every parser is testable with hostile input. Parsers are strict about what the agent
 * will act on (ids, types, tickets that decode and agree with their JSON) and ignore fields they
 * do not use, so a newer server stays compatible.
 */
#ifndef CLEAVE_AGENT_PROTO_H
#define CLEAVE_AGENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "bridge_msg.h"
#include "keystore.h"
#include "util.h"
#include "wire.h"

#define PROTO_MAX_COMMANDS 16 /* per check-in; more are taken at the next one */
#define PROTO_ERR_MAX      160

struct proto_command {
	char id[AGENT_ID_MAX];
	char type[16];
	char reason[128]; /* printable ASCII (anything else became '?'), maybe cut */
	uint64_t counter;
	uint8_t ticket[TICKET_LEN];
	struct ticket tk; /* the decoded ticket (signature not checked: cleave-hv does that) */
};

struct checkin_reply {
	size_t n;
	struct proto_command cmd[PROTO_MAX_COMMANDS];
	size_t skipped; /* commands beyond PROTO_MAX_COMMANDS */
	int has_lease;
	uint8_t lease[TICKET_LEN];
	int has_policy; /* the server's effective policy differs from what we reported */
	char policy_name[64];
	int64_t policy_version;
};

/*
 * Parses a check-in 200 body for device_id. Returns 0, or -EINVAL with err (cap bytes) saying
 * what is wrong (not JSON, a missing or mistyped field, a ticket that does not decode or does
 * not match its command or device, a duplicate id). Nothing is half-parsed: out is only valid
 * on 0.
 */
int proto_checkin_parse(const char *body, size_t len, const char *device_id,
			struct checkin_reply *out, char *err, size_t cap) __must_check;

/* Parses the unenroll 200 body {"command": {...}} into one command (checks as above). */
int proto_unenroll_parse(const char *body, size_t len, const char *device_id,
			 struct proto_command *out, char *err, size_t cap) __must_check;

/* What the agent reports of itself at check-in; NULL / negative members are left out. */
struct proto_state {
	const char *corporate_state; /* "active", "locked", "wiped" */
	const char *policy_name;
	int64_t policy_version;
	int64_t key_epoch;
	const char *agent_version;
	const uint8_t *attestation; /* a fresh ATTEST_LEN-byte attestation, or NULL */
};

/* Request bodies; each is NUL-terminated, owned by the caller (free()); NULL when out of memory. */
char *proto_checkin_body(int wait_s, const struct proto_state *s);
char *proto_result_body(int completed, const char *detail, const uint8_t *receipt);
char *proto_receipts_body(const uint8_t (*receipts)[RECEIPT_LEN], size_t n);
/* tpm: cleave-hv's TPM identity (TPM_IDENTITY), sent as "tpm" when not NULL. */
char *proto_nonce_body(const char *token, const struct clv_tpm_identity *tpm);
struct proto_enroll {
	const char *token;
	const char *nonce_b64;
	uint8_t device_key[32];
	uint8_t hv_key[32];
	uint8_t attestation[ATTEST_LEN];
	const char *model, *os, *agent_version;
	/* A TPM identity: the AK's SPKI and the evidence of TPM_ACTIVATE; NULL for the file keystore. */
	const uint8_t *hv_spki;
	size_t hv_spki_len;
	const uint8_t *ak_public;
	size_t ak_public_len;
	const struct clv_tpm_evidence *tpm;
};
char *proto_enroll_body(const struct proto_enroll *e);

/* {"nonce": b64} -> 32 bytes and its base64 (cap >= 45). 0 or -EINVAL. */
int proto_nonce_parse(const char *body, size_t len, uint8_t nonce[32], char *b64, size_t cap);
/*
 * A nonce answer for a TPM: {"credential": {"blob", "secret"}} (base64, no plain "nonce") into
 * blob and secret (cap bytes each) and their lengths. 0 or -EINVAL.
 */
int proto_credential_parse(const char *body, size_t len, uint8_t *blob, size_t *blob_len,
			   uint8_t *secret, size_t *secret_len, size_t cap);
/* The 201 enrollment answer. 0 or -EINVAL (err says which field). */
int proto_enroll_parse(const char *body, size_t len, char *device_id, size_t idcap, char *owner,
		       size_t ocap, uint8_t server_key[32], char *err, size_t cap);
/*
 * The "portal_url" of the enrollment answer into out: 0; -ENOENT when absent (an older server);
 * -EINVAL unless it is server + "/portal/" + base64url characters.
 */
int proto_enroll_portal(const char *body, size_t len, const char *server, char *out, size_t cap);
/* {"lease": b64 lease ticket, ...} for device_id -> the 256-byte ticket. 0 or -EINVAL. */
int proto_lease_parse(const char *body, size_t len, const char *device_id,
		      uint8_t lease[TICKET_LEN]);
/* {"accepted": n, "highest_seq": N}. 0 or -EINVAL. */
int proto_receipts_reply(const char *body, size_t len, uint64_t *accepted, uint64_t *highest);
/* The "verified" member of a result answer: 1, 0, or -1 when absent. */
int proto_result_verified(const char *body, size_t len);
/*
 * A person's summary of an error answer: the problem "detail" (else "title"), or the start of
 * the body. Always NUL-terminated, printable.
 */
void proto_problem(const char *body, size_t len, char *out, size_t cap);

#endif

/*
 * Handlers of the device API (/device/v1): enrollment nonce, enrollment, the long-poll check-in
 * and command acknowledgements and results. Everything after enrollment must carry a valid
 * RFC 9421 signature made with the device key; the service checks it before anything else.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "b64.h"
#include "crypto.h"
#include "device_tpm.h"
#include "log.h"
#include "wire.h"

/* Verifies the request signature; on failure fills rs and returns -1. */
static int
device_auth(struct call *c, struct device *d)
{
	const struct api_request *rq = c->rq;
	struct signed_request sr = {
		.method = rq->method,
		.path = rq->path,
		.query = rq->query,
		.body = rq->body,
		.body_len = rq->body_len,
		.content_digest = rq->header(rq->header_ctx, "Content-Digest"),
		.signature_input = rq->header(rq->header_ctx, "Signature-Input"),
		.signature = rq->header(rq->header_ctx, "Signature"),
		.client = rq->client,
	};
	struct svc_error err = {0};

	if (svc_device_auth(c->a->svc, &sr, d, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return -1;
	}
	return 0;
}

void
h_enroll_nonce(struct call *c)
{
	char token[128] = "";
	json_t *tpm = NULL;
	const struct field f[] = {
		{"enrollment_token", F_STR, 1, token, sizeof(token), 0, 0, NULL},
		{"tpm", F_OBJ, 0, &tpm, 0, 0, 0, NULL},
	};
	struct svc_error err = {0};
	struct enroll_credential cred;
	struct api_tpm_id *id = NULL;
	uint8_t nonce[32];
	int64_t exp;
	json_t *body = body_object(c);

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	if (tpm != NULL && (id = malloc(sizeof(*id))) == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		goto out;
	}
	if (id != NULL && api_tpm_id_take(c, tpm, id) != 0)
		goto out;
	if (svc_enroll_nonce(c->a->svc, token, c->rq->client, id ? &id->id : NULL, nonce, &cred,
			     &exp, &err) != 0)
		reply_svc_error(c->rs, &err);
	else if (id != NULL) /* only the TPM that holds the EK, with the AK, learns the nonce */
		reply_json(c->rs, 200,
			   json_pack("{s:o, s:o}", "credential", api_credential_json(&cred),
				     "expires_at", jtime(exp)));
	else
		reply_json(c->rs, 200,
			   json_pack("{s:o, s:o}", "nonce", jb64(nonce, 32), "expires_at",
				     jtime(exp)));
out:
	secure_zero(nonce, sizeof(nonce));
	free(id);
	json_decref(body);
}

static int
decode_key(struct call *c, const char *name, const char *b64, uint8_t out[32])
{
	char msg[96];

	if (unb64(b64, out, 32) == 0)
		return 0;
	snprintf(msg, sizeof(msg),
		 "%s must be base64 of 32 bytes (an Ed25519 public key; for a TPM key, SHA-256 "
		 "of its SubjectPublicKeyInfo)",
		 name);
	reply_problem(c->rs, SVC_INVALID, msg);
	return -1;
}

/* The decoded body of POST /device/v1/enroll, which rq points into. */
struct enroll_in {
	uint8_t attestation[ATTEST_LEN];
	uint8_t spki[STORE_SPKI_MAX];
	struct api_tpm_evidence tpm;
	struct enroll_request rq;
};

/* Decodes the binary members into in (rq's pointers set); 0, or -1 after a problem answer. */
static int
enroll_decode(struct call *c, const char *nonce, const char *dkey, const char *hkey,
	      const char *att, const char *spki, json_t *tpm, struct enroll_in *in)
{
	long n;

	if (unb64(nonce, in->rq.nonce, 32) != 0) {
		reply_problem(c->rs, SVC_INVALID,
			      "nonce must be the base64 nonce from /device/v1/enroll/nonce");
		return -1;
	}
	if (decode_key(c, "device_key", dkey, in->rq.device_key) != 0 ||
	    decode_key(c, "hypervisor_key", hkey, in->rq.hv_key) != 0)
		return -1;
	if (unb64(att, in->attestation, sizeof(in->attestation)) != 0) {
		reply_problem(
			c->rs, SVC_INVALID,
			"attestation must be base64 of the hypervisor's 256-byte attestation");
		return -1;
	}
	in->rq.attestation = in->attestation;
	in->rq.attestation_len = sizeof(in->attestation);
	if (spki[0] != '\0') {
		n = b64_decode(in->spki, sizeof(in->spki), spki, strlen(spki));
		if (n <= 0) {
			reply_problem(c->rs, SVC_INVALID,
				      "hypervisor_spki must be base64 of the hypervisor key's DER "
				      "SubjectPublicKeyInfo");
			return -1;
		}
		in->rq.hv_spki = in->spki;
		in->rq.hv_spki_len = (size_t)n;
	}
	if (tpm != NULL) {
		if (api_tpm_evidence_take(c, tpm, &in->tpm) != 0)
			return -1;
		in->rq.tpm = &in->tpm.ev;
	}
	return 0;
}

/* The answer to an enrollment: the device's id, the server's ticket key, policy, portal. */
static void
enroll_reply(struct call *c, const struct device *d)
{
	uint8_t pub[32];
	struct policy p;
	char *portal = NULL;
	json_t *j;

	svc_ticket_key(c->a->svc, pub);
	j = json_pack("{s:s, s:s, s:o, s:s}", "device_id", d->id, "owner", d->owner,
		      "server_ticket_key", jb64(pub, 32), "checkin_path", "/device/v1/checkin");
	if (svc_policy_effective(c->a->svc, d, &p) == 0)
		json_object_set_new(j, "policy", policy_json(&p));
	else
		json_object_set_new(j, "policy", json_null());
	/* The employee's own page of this device; the enrollment stands even without one. */
	if (svc_portal_link_create(c->a->svc, d->id, &portal) == 0)
		json_object_set_new(j, "portal_url", json_string(portal));
	else
		log_warn("device %s: no portal link could be made", d->id);
	free(portal);
	reply_json(c->rs, 201, j);
}

void
h_enroll(struct call *c)
{
	char token[128] = "", nonce[64] = "", dkey[64] = "", hkey[64] = "", att[512] = "";
	char model[STORE_NAME_MAX] = "", os[STORE_NAME_MAX] = "", ver[64] = "";
	char spki[B64_CAP(STORE_SPKI_MAX)] = "";
	json_t *inv = NULL, *tpm = NULL;
	const struct field f[] = {
		{"enrollment_token", F_STR, 1, token, sizeof(token), 0, 0, NULL},
		{"nonce", F_STR, 1, nonce, sizeof(nonce), 0, 0, NULL},
		{"device_key", F_STR, 1, dkey, sizeof(dkey), 0, 0, NULL},
		{"hypervisor_key", F_STR, 1, hkey, sizeof(hkey), 0, 0, NULL},
		{"hypervisor_spki", F_STR, 0, spki, sizeof(spki), 0, 0, NULL},
		{"attestation", F_STR, 1, att, sizeof(att), 0, 0, NULL},
		{"inventory", F_OBJ, 1, &inv, 0, 0, 0, NULL},
		{"tpm", F_OBJ, 0, &tpm, 0, 0, 0, NULL},
	};
	const struct field fi[] = {
		{"model", F_STR, 1, model, sizeof(model), 0, 0, NULL},
		{"os", F_STR, 1, os, sizeof(os), 0, 0, NULL},
		{"agent_version", F_STR, 1, ver, sizeof(ver), 0, 0, NULL},
	};
	struct enroll_in *in = NULL;
	struct svc_error err = {0};
	struct device d;
	json_t *body = body_object(c);

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0 ||
	    take_fields(c, inv, fi, ARRAY_SIZE(fi), "inventory.") != 0)
		goto out;
	in = calloc(1, sizeof(*in));
	if (in == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		goto out;
	}
	if (enroll_decode(c, nonce, dkey, hkey, att, spki, tpm, in) != 0)
		goto out;
	in->rq.etoken_secret = token;
	in->rq.model = model;
	in->rq.os = os;
	in->rq.agent_version = ver;
	in->rq.client = c->rq->client;
	if (svc_enroll(c->a->svc, &in->rq, &d, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		enroll_reply(c, &d);
out:
	free(in);
	json_decref(body);
}

/* Adds a fresh lease ticket to a check-in answer; a failure to sign only loses the lease. */
static void
add_lease(struct call *c, const struct device *d, json_t *j)
{
	uint8_t tk[TICKET_LEN];
	struct svc_error err = {0};
	int64_t until;

	if (svc_lease(c->a->svc, d, tk, &until, &err) == 0) {
		json_object_set_new(j, "lease", jb64(tk, sizeof(tk)));
		json_object_set_new(j, "lease_until", jtime(until));
	}
}

static json_t *
checkin_json(const struct checkin_result *r)
{
	json_t *arr = json_array(), *j;

	for (size_t i = 0; i < r->n; i++) {
		const struct command *cmd = &r->commands[i];

		json_array_append_new(arr,
				      json_pack("{s:s, s:s, s:s, s:I, s:o, s:o, s:o}", "id",
						cmd->id, "type", cmd->type, "reason", cmd->reason,
						"counter", (json_int_t)cmd->counter, "ticket",
						jb64(cmd->ticket, sizeof(cmd->ticket)),
						"created_at", jtime(cmd->created_at), "expires_at",
						jtime(cmd->expires_at)));
	}
	j = json_pack("{s:o}", "commands", arr);
	if (r->policy_pending)
		json_object_set_new(j, "policy", policy_json(&r->policy));
	return j;
}

/* Reads the check-in body: the wait asked for and the device's report of itself. */
static int
checkin_body(struct call *c, int64_t *wait, struct device_report *rep, char *state, char *pname,
	     char *ver, uint8_t attest[ATTEST_LEN])
{
	char att[512] = "";
	json_t *body = body_object(c), *st = NULL;
	int r;
	const struct field f[] = {
		{"wait", F_INT, 0, wait, 0, 0, service_config(c->a->svc)->max_wait_s, NULL},
		{"state", F_OBJ, 0, &st, 0, 0, 0, NULL},
	};
	const struct field fs[] = {
		{"corporate_state", F_STR, 0, state, 16, 0, 0, NULL},
		{"policy_name", F_STR, 0, pname, 64, 0, 0, NULL},
		{"policy_version", F_INT, 0, &rep->policy_version, 0, 0, INT32_MAX, NULL},
		{"key_epoch", F_INT, 0, &rep->key_epoch, 0, 0, INT64_MAX, NULL},
		{"agent_version", F_STR, 0, ver, 64, 0, 0, NULL},
		{"attestation", F_STR, 0, att, sizeof(att), 0, 0, NULL},
	};

	if (body == NULL)
		return -1;
	r = take_fields(c, body, f, ARRAY_SIZE(f), "");
	if (r == 0 && st != NULL)
		r = take_fields(c, st, fs, ARRAY_SIZE(fs), "state.");
	if (r == 0 && state[0] && strcmp(state, "active") && strcmp(state, "locked") &&
	    strcmp(state, "wiped")) {
		reply_problem(c->rs, SVC_INVALID,
			      "state.corporate_state must be active, locked or wiped");
		r = -1;
	}
	if (r == 0 && att[0] != '\0') {
		if (unb64(att, attest, ATTEST_LEN) != 0) {
			reply_problem(c->rs, SVC_INVALID,
				      "state.attestation must be base64 of a 256-byte attestation");
			r = -1;
		} else {
			rep->attestation = attest;
		}
	}
	rep->corporate_state = state[0] ? state : NULL;
	rep->policy_name = pname[0] ? pname : NULL;
	rep->agent_version = ver[0] ? ver : NULL;
	json_decref(body);
	return r;
}

void
h_checkin(struct call *c)
{
	struct checkin_result *r = malloc(sizeof(*r));
	struct device_report rep = {.policy_version = -1, .key_epoch = -1};
	char state[16] = "", pname[64] = "", ver[64] = "";
	uint8_t attest[ATTEST_LEN];
	struct svc_error err = {0};
	int64_t wait = 0, now;
	struct device d;
	uint64_t gen = 0;
	int rc;

	if (r == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (c->rq->resumed) {
		rc = svc_checkin_again(c->a->svc, c->rq->park_device, r, &gen, &err);
	} else {
		if (device_auth(c, &d) != 0 ||
		    checkin_body(c, &wait, &rep, state, pname, ver, attest) != 0)
			goto out;
		rc = svc_checkin(c->a->svc, &d, &rep, r, &gen, &err);
	}
	if (rc != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	if (r->n > 0 || r->policy_pending) {
		json_t *j = checkin_json(r);

		if (!c->rq->resumed)
			add_lease(c, &d, j);
		reply_json(c->rs, 200, j);
		goto out;
	}
	now = service_now_ms(c->a->svc);
	if (c->rq->resumed) {
		if (c->rq->timed_out || c->rq->park_deadline_ms <= now) {
			reply_empty(c->rs, 204);
			goto out;
		}
		c->rs->park_deadline_ms = c->rq->park_deadline_ms;
		str_copy(c->rs->park_device, sizeof(c->rs->park_device), c->rq->park_device);
	} else {
		if (wait == 0) {
			reply_empty(c->rs, 204);
			goto out;
		}
		c->rs->park_deadline_ms = now + wait * 1000;
		str_copy(c->rs->park_device, sizeof(c->rs->park_device), d.id);
	}
	c->rs->park = 1;
	c->rs->park_gen = gen;
	c->rs->status = 204;
out:
	free(r);
}

void
h_command_ack(struct call *c)
{
	struct svc_error err = {0};
	struct command cmd;
	struct device d;

	if (device_auth(c, &d) != 0)
		return;
	if (svc_command_ack(c->a->svc, &d, c->param[0], &cmd, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, json_pack("{s:s, s:s}", "id", cmd.id, "status", cmd.status));
}

void
h_command_result(struct call *c)
{
	char status[16] = "", detail[STORE_TEXT_MAX - 64] = "", receipt[1024] = "";
	int has_receipt = 0;
	const struct field f[] = {
		{"status", F_STR, 1, status, sizeof(status), 0, 0, NULL},
		{"detail", F_STR, 0, detail, sizeof(detail), 0, 0, NULL},
		{"receipt", F_STR_NULL, 0, receipt, sizeof(receipt), 0, 0, &has_receipt},
	};
	uint8_t rbuf[RECEIPT_LEN];
	struct command_result res = {.status = status, .detail = detail};
	struct svc_error err = {0};
	struct command cmd;
	struct device d;
	json_t *body;

	if (device_auth(c, &d) != 0)
		return;
	body = body_object(c);
	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	if (has_receipt) {
		if (unb64(receipt, rbuf, sizeof(rbuf)) != 0) {
			reply_problem(c->rs, SVC_INVALID,
				      "receipt must be base64 of the 320-byte signed receipt");
			goto out;
		}
		res.receipt = rbuf;
		res.receipt_len = sizeof(rbuf);
	}
	if (svc_command_result(c->a->svc, &d, c->param[0], &res, &cmd, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200,
			   json_pack("{s:s, s:s, s:b}", "id", cmd.id, "status", cmd.status,
				     "verified", cmd.verified != 0));
out:
	json_decref(body);
}

void
h_lease(struct call *c)
{
	uint8_t tk[TICKET_LEN];
	struct svc_error err = {0};
	struct device d;
	int64_t until;

	if (device_auth(c, &d) != 0)
		return;
	if (svc_lease(c->a->svc, &d, tk, &until, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200,
			   json_pack("{s:o, s:o}", "lease", jb64(tk, sizeof(tk)), "lease_until",
				     jtime(until)));
}

#define RECEIPTS_PER_UPLOAD 16

void
h_receipts(struct call *c)
{
	uint8_t(*bufs)[RECEIPT_LEN] = NULL;
	struct svc_error err = {0};
	json_t *body, *arr, *v;
	struct device d;
	size_t i, n, accepted = 0;
	uint64_t highest = 0;

	if (device_auth(c, &d) != 0)
		return;
	body = body_object(c);
	if (body == NULL)
		return;
	arr = json_object_get(body, "receipts");
	n = json_is_array(arr) ? json_array_size(arr) : 0;
	if (!json_is_array(arr) || json_object_size(body) != 1 || n == 0 ||
	    n > RECEIPTS_PER_UPLOAD) {
		reply_problem(c->rs, SVC_INVALID,
			      "the body must be {\"receipts\": [1 to 16 base64 receipts]}");
		goto out;
	}
	bufs = calloc(n, RECEIPT_LEN);
	if (bufs == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		goto out;
	}
	json_array_foreach(arr, i, v)
	{
		if (!json_is_string(v) || unb64(json_string_value(v), bufs[i], RECEIPT_LEN) != 0) {
			char msg[96];

			snprintf(msg, sizeof(msg),
				 "receipts[%zu] must be base64 of a 320-byte signed receipt", i);
			reply_problem(c->rs, SVC_INVALID, msg);
			goto out;
		}
	}
	if (svc_receipts_upload(c->a->svc, &d, (const uint8_t(*)[RECEIPT_LEN])bufs, n, &accepted,
				&highest, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200,
			   json_pack("{s:I, s:I}", "accepted", (json_int_t)accepted, "highest_seq",
				     (json_int_t)highest));
out:
	free(bufs);
	json_decref(body);
}

void
h_unenroll(struct call *c)
{
	struct svc_error err = {0};
	struct command cmd;
	struct device d;
	int created = 0;

	if (device_auth(c, &d) != 0)
		return;
	if (svc_unenroll(c->a->svc, &d, &cmd, &created, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	reply_json(c->rs, created ? 201 : 200,
		   json_pack("{s:{s:s, s:s, s:s, s:I, s:o, s:o, s:o}}", "command", "id", cmd.id,
			     "type", cmd.type, "reason", cmd.reason, "counter",
			     (json_int_t)cmd.counter, "ticket",
			     jb64(cmd.ticket, sizeof(cmd.ticket)), "created_at",
			     jtime(cmd.created_at), "expires_at", jtime(cmd.expires_at)));
}

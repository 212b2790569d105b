/*
 * What an auditor needs for one command, from the console or curl: the receipt and the ticket
 * decoded field by field (common/wire.c, the normative decoder), whether the receipt's
 * signature and bindings check out now, the verification the server recorded when it arrived,
 * and the raw bytes and the hypervisor key PEM to check it all again with openssl alone
 * (schema/wire-formats.md §5). Reading needs any role; nothing here changes state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "crypto.h"
#include "hvsig.h"
#include "wire.h"

static const char *const state_names[] = {"?", "active", "locked", "wipe_pending", "erased"};

static json_t *
jhex(const void *p, size_t n)
{
	char buf[2 * RECEIPT_LEN + 1];

	if (n > RECEIPT_LEN || hex_encode(buf, sizeof(buf), p, n) != 0)
		return json_null();
	return json_string(buf);
}

static const char *
receipt_type_name(uint16_t type)
{
	if (type == RECEIPT_AUTO_LOCK)
		return "auto-lock";
	if (type == RECEIPT_AUTO_WIPE)
		return "auto-wipe";
	return ticket_type_name(type) ? ticket_type_name(type) : "?";
}

/* One entry per assigned check bit: ran, passed, and whether this type requires it. */
static json_t *
checks_json(const struct receipt *r)
{
	uint32_t need = receipt_required_checks(r->type);
	json_t *a = json_array();

	for (unsigned b = 0; b < 9; b++) {
		uint32_t bit = 1u << b;

		json_array_append_new(
			a, json_pack("{s:I, s:s, s:b, s:b, s:b}", "bit", (json_int_t)b, "name",
				     check_name(bit), "run", (r->checks_run & bit) != 0, "passed",
				     (r->checks_passed & bit) != 0, "required", (need & bit) != 0));
	}
	return a;
}

static const char *
sig_alg_name(int alg)
{
	return alg == WIRE_SIG_ECDSA_P256 ? "ecdsa-p256-sha256" : "ed25519";
}

/*
 * The receipt's fields; the *_ok members say whether it is signed by the device's registered
 * key and answers this command's ticket, checked again now (not only when it arrived).
 */
static json_t *
receipt_fields(const struct command *c, const struct device *d, const struct receipt *r)
{
	uint8_t th[SHA256_LEN], rh[SHA256_LEN];
	int sig_ok = r->sig_alg == d->hv_sig_alg &&
		     hvsig_verify(r->sig_alg, d->hv_key, d->hv_spki, d->hv_spki_len, c->receipt,
				  RECEIPT_BODY_LEN, c->receipt + RECEIPT_BODY_LEN) == 0;
	json_t *j;

	crypto_sha256(c->ticket, sizeof(c->ticket), th);
	crypto_sha256(c->receipt, c->receipt_len, rh);
	j = json_pack(
		"{s:s, s:I, s:I, s:s, s:I, s:o, s:s, s:s, s:o, s:I, s:I, s:I, s:I}", "magic",
		RECEIPT_MAGIC, "version",
		(json_int_t)(r->sig_alg == WIRE_SIG_ED25519 ? WIRE_VERSION : RECEIPT_VERSION_ALG),
		"type", (json_int_t)r->type, "type_name", receipt_type_name(r->type), "result",
		(json_int_t)r->result, "hv_key", jhex(r->hv_key, sizeof(r->hv_key)), "device_id",
		r->device_id, "command_id", r->command_id, "ticket_hash",
		jhex(r->ticket_hash, sizeof(r->ticket_hash)), "ticket_counter",
		(json_int_t)r->ticket_counter, "seq", (json_int_t)r->seq, "epoch_before",
		(json_int_t)r->epoch_before, "epoch_after", (json_int_t)r->epoch_after);
	if (j == NULL)
		return NULL;
	json_object_set_new(j, "header_state", json_integer(r->header_state));
	json_object_set_new(j, "header_state_name",
			    json_string(state_names[r->header_state <= 4 ? r->header_state : 0]));
	json_object_set_new(j, "checks_run", json_integer(r->checks_run));
	json_object_set_new(j, "checks_passed", json_integer(r->checks_passed));
	json_object_set_new(j, "checks", checks_json(r));
	json_object_set_new(j, "started_at", jtime_ms((int64_t)r->started_ms));
	json_object_set_new(j, "finished_at", jtime_ms((int64_t)r->finished_ms));
	json_object_set_new(j, "prev_hash", jhex(r->prev_hash, sizeof(r->prev_hash)));
	json_object_set_new(j, "signature", jhex(r->sig, sizeof(r->sig)));
	json_object_set_new(j, "signature_alg", json_string(sig_alg_name(r->sig_alg)));
	if (r->sig_alg == WIRE_SIG_ECDSA_P256) {
		uint8_t der[HVSIG_DER_MAX];
		size_t n;

		/* What `openssl dgst -sha256 -verify` takes; the wire carries r || s. */
		if (hvsig_ecdsa_der(r->sig, der, sizeof(der), &n) == 0)
			json_object_set_new(j, "signature_der", jhex(der, n));
		json_object_set_new(j, "wipe_counter_before",
				    json_integer((json_int_t)r->wipe_counter_before));
		json_object_set_new(j, "wipe_counter_after",
				    json_integer((json_int_t)r->wipe_counter_after));
	}
	json_object_set_new(j, "sha256", jhex(rh, sizeof(rh)));
	json_object_set_new(j, "signature_ok", json_boolean(sig_ok));
	json_object_set_new(j, "hv_key_ok",
			    json_boolean(memcmp(r->hv_key, d->hv_key, sizeof(r->hv_key)) == 0));
	json_object_set_new(j, "ticket_hash_ok",
			    json_boolean(memcmp(r->ticket_hash, th, sizeof(th)) == 0));
	return j;
}

static json_t *
ticket_fields(const struct command *c)
{
	struct ticket t;
	uint8_t th[SHA256_LEN];
	json_t *j;

	if (ticket_decode(c->ticket, sizeof(c->ticket), &t) != 0)
		return json_null();
	crypto_sha256(c->ticket, sizeof(c->ticket), th);
	j = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:[I,I,I,I], s:o, s:o}",
		      "magic", TICKET_MAGIC, "version", (json_int_t)WIRE_VERSION, "type",
		      (json_int_t)t.type, "type_name",
		      ticket_type_name(t.type) ? ticket_type_name(t.type) : "?", "device_id",
		      t.device_id, "command_id", t.command_id, "hv_key",
		      jhex(t.hv_key, sizeof(t.hv_key)), "counter", (json_int_t)t.counter,
		      "issued_at", jtime((int64_t)t.issued_at), "expires_at",
		      jtime((int64_t)t.expires_at), "args", (json_int_t)t.args[0],
		      (json_int_t)t.args[1], (json_int_t)t.args[2], (json_int_t)t.args[3],
		      "signature", jhex(t.sig, sizeof(t.sig)), "sha256", jhex(th, sizeof(th)));
	return j ? j : json_null();
}

/* The command and its device, or a problem reply; 0 or -1. */
static int
load(struct call *c, struct command *cmd, struct device *d)
{
	struct svc_error err = {0};

	if (svc_command_get(c->a->svc, &c->who, c->param[0], cmd, &err) != 0 ||
	    svc_device_get(c->a->svc, &c->who, cmd->device_id, d, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return -1;
	}
	return 0;
}

int
hv_key_pem(const struct device *d, char **pem)
{
	if (d->hv_sig_alg == WIRE_SIG_ECDSA_P256)
		return hvsig_spki_pem(d->hv_spki, d->hv_spki_len, pem);
	return ed25519_pub_to_pem(d->hv_key, pem);
}

static json_t *
hv_key_json(const struct device *d)
{
	char fp[64], *pem = NULL;
	json_t *j;

	key_fingerprint(d->hv_key, fp, sizeof(fp));
	j = json_pack("{s:o, s:o, s:s, s:s, s:s}", "key", jb64(d->hv_key, sizeof(d->hv_key)),
		      "key_hex", jhex(d->hv_key, sizeof(d->hv_key)), "key_fingerprint", fp,
		      "signature_alg", sig_alg_name(d->hv_sig_alg), "identity",
		      d->hv_identity[0] ? d->hv_identity : "file");
	if (j == NULL)
		return NULL;
	/* key is SHA-256 of this SubjectPublicKeyInfo; the PEM is the key itself. */
	if (d->hv_sig_alg == WIRE_SIG_ECDSA_P256)
		json_object_set_new(j, "key_spki", jb64(d->hv_spki, d->hv_spki_len));
	if (hv_key_pem(d, &pem) == 0)
		json_object_set_new(j, "key_pem", json_string(pem));
	free(pem);
	return j;
}

void
h_command_receipt(struct call *c)
{
	struct command cmd;
	struct device d;
	struct receipt r;
	json_t *j;

	if (load(c, &cmd, &d) != 0)
		return;
	j = json_pack("{s:o, s:{s:s, s:s, s:s}, s:o, s:o}", "command", command_json(&cmd), "device",
		      "id", d.id, "owner", d.owner, "status", d.status, "hypervisor",
		      hv_key_json(&d), "ticket", ticket_fields(&cmd));
	if (j == NULL) {
		reply_problem(c->rs, SVC_INTERNAL, NULL);
		return;
	}
	if (cmd.receipt_len == 0) {
		json_object_set_new(j, "receipt", json_null());
	} else if (cmd.receipt_len != RECEIPT_LEN ||
		   receipt_decode(cmd.receipt, cmd.receipt_len, &r) != 0) {
		/* Stored but not a version 1 receipt: say so rather than guess at its fields. */
		json_object_set_new(
			j, "receipt",
			json_pack("{s:s}", "decode_error", "not a 320-byte CLVRCPT1 receipt"));
	} else {
		json_object_set_new(j, "receipt", receipt_fields(&cmd, &d, &r));
	}
	reply_json(c->rs, 200, j);
}

/* Sends bytes as they are, for openssl; the console names the file with <a download>. */
static void
reply_bytes(struct api_response *rs, const void *p, size_t n, const char *type)
{
	char *b = malloc(n ? n : 1);

	if (b == NULL) {
		reply_problem(rs, SVC_UNAVAILABLE, NULL);
		return;
	}
	memcpy(b, p, n);
	free(rs->body);
	rs->body = b;
	rs->len = n;
	rs->status = 200;
	rs->content_type = type;
}

void
h_command_receipt_bin(struct call *c)
{
	struct command cmd;
	struct device d;

	if (load(c, &cmd, &d) != 0)
		return;
	if (cmd.receipt_len == 0)
		reply_problem(c->rs, SVC_NOT_FOUND, "this command has no receipt (yet)");
	else
		reply_bytes(c->rs, cmd.receipt, cmd.receipt_len, "application/octet-stream");
}

void
h_command_ticket_bin(struct call *c)
{
	struct command cmd;
	struct device d;

	if (load(c, &cmd, &d) == 0)
		reply_bytes(c->rs, cmd.ticket, sizeof(cmd.ticket), "application/octet-stream");
}

void
h_device_hv_key_pem(struct call *c)
{
	struct svc_error err = {0};
	struct device d;
	char *pem = NULL;

	if (svc_device_get(c->a->svc, &c->who, c->param[0], &d, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	if (hv_key_pem(&d, &pem) != 0) {
		reply_problem(c->rs, SVC_INTERNAL, NULL);
		return;
	}
	reply_bytes(c->rs, pem, strlen(pem), "application/x-pem-file");
	free(pem);
}

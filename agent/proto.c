/*
 * Device API bodies over Jansson. Parsers copy what they keep into fixed-size fields, so no
 * Jansson object outlives a call; an answer over HTTP_BODY_MAX never gets here (transport.c).
 */
#include "proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "b64.h"
#include "journal.h"
#include "kvfile.h"

static int __printf(3, 4) perr(char *err, size_t cap, const char *fmt, ...)
{
	va_list ap;

	if (cap > 0) {
		va_start(ap, fmt);
		vsnprintf(err, cap, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static json_t *
load_object(const char *body, size_t len, char *err, size_t cap)
{
	json_error_t je;
	json_t *j = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &je) : NULL;

	if (j == NULL) {
		perr(err, cap, "not JSON: %s", body ? je.text : "empty body");
		return NULL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		perr(err, cap, "not a JSON object");
		return NULL;
	}
	return j;
}

/* Decodes a base64 ticket string into raw and its decoded form. */
static int
take_ticket(json_t *v, uint8_t raw[TICKET_LEN], struct ticket *tk)
{
	const char *s = json_string_value(v);

	if (s == NULL || b64_decode(raw, TICKET_LEN, s, strlen(s)) != TICKET_LEN)
		return -EINVAL;
	return ticket_decode(raw, TICKET_LEN, tk);
}

static int
command_parse(json_t *o, const char *device_id, struct proto_command *c, char *err, size_t cap)
{
	json_t *counter = json_object_get(o, "counter");
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *type = json_string_value(json_object_get(o, "type"));
	const char *reason = json_string_value(json_object_get(o, "reason"));

	memset(c, 0, sizeof(*c));
	if (!json_is_object(o))
		return perr(err, cap, "a command is not an object");
	if (id == NULL || !journal_id_ok(id))
		return perr(err, cap, "a command has no valid \"id\"");
	if (type == NULL || ticket_type_from_name(type) == 0 || strcmp(type, "lease") == 0)
		return perr(err, cap, "command %s has an unknown \"type\"", id);
	if (!json_is_integer(counter) || json_integer_value(counter) <= 0)
		return perr(err, cap, "command %s has no valid \"counter\"", id);
	if (take_ticket(json_object_get(o, "ticket"), c->ticket, &c->tk) != 0)
		return perr(err, cap, "command %s has no valid 256-byte \"ticket\"", id);
	if (strcmp(c->tk.command_id, id) != 0 || c->tk.type != ticket_type_from_name(type) ||
	    c->tk.counter != (uint64_t)json_integer_value(counter) ||
	    strcmp(c->tk.device_id, device_id) != 0)
		return perr(err, cap, "the ticket of command %s is for another command or device",
			    id);
	str_copy(c->id, sizeof(c->id), id);
	str_copy(c->type, sizeof(c->type), type);
	str_copy(c->reason, sizeof(c->reason), reason ? reason : "");
	kv_sanitize(c->reason);
	c->counter = c->tk.counter;
	return 0;
}

static int
policy_parse(json_t *p, struct checkin_reply *out, char *err, size_t cap)
{
	const char *name = json_string_value(json_object_get(p, "name"));
	json_t *ver = json_object_get(p, "version");

	if (json_is_null(p) || p == NULL)
		return 0;
	if (!json_is_object(p) || name == NULL || !json_is_integer(ver) ||
	    json_integer_value(ver) < 0 ||
	    str_copy(out->policy_name, sizeof(out->policy_name), name) != 0)
		return perr(err, cap, "\"policy\" needs a \"name\" and a \"version\"");
	out->has_policy = 1;
	out->policy_version = json_integer_value(ver);
	return 0;
}

static int
lease_parse(json_t *l, const char *device_id, struct checkin_reply *out, char *err, size_t cap)
{
	struct ticket tk;

	if (l == NULL || json_is_null(l))
		return 0;
	if (take_ticket(l, out->lease, &tk) != 0 || tk.type != TICKET_LEASE ||
	    strcmp(tk.device_id, device_id) != 0)
		return perr(err, cap, "\"lease\" is not a lease ticket for this device");
	out->has_lease = 1;
	return 0;
}

int
proto_checkin_parse(const char *body, size_t len, const char *device_id, struct checkin_reply *out,
		    char *err, size_t cap)
{
	json_t *j = load_object(body, len, err, cap), *cmds;
	size_t i, n;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (j == NULL)
		return -EINVAL;
	cmds = json_object_get(j, "commands");
	if (!json_is_array(cmds)) {
		json_decref(j);
		return perr(err, cap, "\"commands\" is missing or not an array");
	}
	n = json_array_size(cmds);
	for (i = 0; r == 0 && i < n && i < PROTO_MAX_COMMANDS; i++) {
		r = command_parse(json_array_get(cmds, i), device_id, &out->cmd[i], err, cap);
		for (size_t k = 0; r == 0 && k < i; k++)
			if (strcmp(out->cmd[k].id, out->cmd[i].id) == 0)
				r = perr(err, cap, "command %s appears twice", out->cmd[i].id);
	}
	out->n = i;
	out->skipped = n > PROTO_MAX_COMMANDS ? n - PROTO_MAX_COMMANDS : 0;
	if (r == 0)
		r = policy_parse(json_object_get(j, "policy"), out, err, cap);
	if (r == 0)
		r = lease_parse(json_object_get(j, "lease"), device_id, out, err, cap);
	json_decref(j);
	if (r != 0)
		memset(out, 0, sizeof(*out));
	return r;
}

int
proto_unenroll_parse(const char *body, size_t len, const char *device_id, struct proto_command *out,
		     char *err, size_t cap)
{
	json_t *j = load_object(body, len, err, cap);
	int r;

	if (j == NULL)
		return -EINVAL;
	r = command_parse(json_object_get(j, "command"), device_id, out, err, cap);
	if (r == 0 && strcmp(out->type, "retire") != 0)
		r = perr(err, cap, "the server answered with a %s command, not retire", out->type);
	json_decref(j);
	return r;
}

/* Serialises j compactly and releases it. */
static char *
dump(json_t *j)
{
	char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;

	json_decref(j);
	return s;
}

/* Base64 of n bytes as a JSON string (an EK certificate takes well over 1 KiB); NULL on error. */
static json_t *
jb64(const void *p, size_t n)
{
	size_t cap = b64_encoded_len(n) + 1;
	char *buf = malloc(cap);
	json_t *j = buf != NULL && b64_encode(buf, cap, p, n) >= 0 ? json_string(buf) : NULL;

	free(buf);
	return j;
}

/* Sets member name of j to v (stolen); on failure drops j: no body rather than one without it. */
static json_t *
with_member(json_t *j, const char *name, json_t *v)
{
	if (j != NULL && (v == NULL || json_object_set_new(j, name, v) != 0)) {
		json_decref(j);
		return NULL;
	}
	json_decref(j == NULL ? v : NULL);
	return j;
}

char *
proto_checkin_body(int wait_s, const struct proto_state *s)
{
	json_t *j = json_pack("{s:i}", "wait", wait_s), *st = json_object();

	if (j == NULL || st == NULL) {
		json_decref(st);
		return dump(j);
	}
	if (s->corporate_state)
		json_object_set_new(st, "corporate_state", json_string(s->corporate_state));
	if (s->policy_name && s->policy_name[0])
		json_object_set_new(st, "policy_name", json_string(s->policy_name));
	if (s->policy_version >= 0)
		json_object_set_new(st, "policy_version", json_integer(s->policy_version));
	if (s->key_epoch >= 0)
		json_object_set_new(st, "key_epoch", json_integer(s->key_epoch));
	if (s->agent_version)
		json_object_set_new(st, "agent_version", json_string(s->agent_version));
	if (s->attestation)
		json_object_set_new(st, "attestation", jb64(s->attestation, ATTEST_LEN));
	json_object_set_new(j, "state", st);
	return dump(j);
}

char *
proto_result_body(int completed, const char *detail, const uint8_t *receipt)
{
	json_t *j = json_pack("{s:s, s:s}", "status", completed ? "completed" : "failed", "detail",
			      detail ? detail : "");

	if (j != NULL && receipt != NULL)
		json_object_set_new(j, "receipt", jb64(receipt, RECEIPT_LEN));
	return dump(j);
}

char *
proto_receipts_body(const uint8_t (*receipts)[RECEIPT_LEN], size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; a != NULL && i < n; i++)
		json_array_append_new(a, jb64(receipts[i], RECEIPT_LEN));
	return dump(a ? json_pack("{s:o}", "receipts", a) : NULL);
}

char *
proto_nonce_body(const char *token, const struct clv_tpm_identity *tpm)
{
	json_t *j = json_pack("{s:s}", "enrollment_token", token);

	if (tpm != NULL)
		j = with_member(j, "tpm",
				json_pack("{s:o, s:o, s:o}", "ek_cert",
					  jb64(tpm->ek_cert, tpm->ek_cert_len), "ek_public",
					  jb64(tpm->ek_public, tpm->ek_public_len), "ak_public",
					  jb64(tpm->ak_public, tpm->ak_public_len)));
	return dump(j);
}

/* The enrollment's "tpm" member: the AK's public area, the quote and the PCR 23 log in hex. */
static json_t *
tpm_evidence(const struct proto_enroll *e)
{
	json_t *log = json_array();
	char hex[65];

	for (size_t i = 0; log != NULL && i < e->tpm->log_count; i++) {
		hex_encode(hex, sizeof(hex), e->tpm->pcr_log + 32 * i, 32);
		json_array_append_new(log, json_string(hex));
	}
	return json_pack("{s:o, s:o, s:o, s:o*}", "ak_public", jb64(e->ak_public, e->ak_public_len),
			 "quote", jb64(e->tpm->quote, e->tpm->quote_len), "quote_sig",
			 jb64(e->tpm->quote_sig, e->tpm->quote_sig_len), "pcr_log", log);
}

char *
proto_enroll_body(const struct proto_enroll *e)
{
	json_t *j = json_pack("{s:s, s:s, s:o, s:o, s:o, s:{s:s, s:s, s:s}}", "enrollment_token",
			      e->token, "nonce", e->nonce_b64, "device_key",
			      jb64(e->device_key, 32), "hypervisor_key", jb64(e->hv_key, 32),
			      "attestation", jb64(e->attestation, ATTEST_LEN), "inventory", "model",
			      e->model, "os", e->os, "agent_version", e->agent_version);

	if (e->tpm != NULL) {
		j = with_member(j, "hypervisor_spki", jb64(e->hv_spki, e->hv_spki_len));
		j = with_member(j, "tpm", tpm_evidence(e));
	}
	return dump(j);
}

/* Base64 member name of o into out (cap bytes): its length, or 0 when absent or malformed. */
static size_t
member_b64(json_t *o, const char *name, uint8_t *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(o, name));
	long n = s != NULL ? b64_decode(out, cap, s, strlen(s)) : -1;

	return n > 0 ? (size_t)n : 0;
}

int
proto_credential_parse(const char *body, size_t len, uint8_t *blob, size_t *blob_len,
		       uint8_t *secret, size_t *secret_len, size_t cap)
{
	char err[8];
	json_t *j = load_object(body, len, err, sizeof(err));
	json_t *cred = j ? json_object_get(j, "credential") : NULL;
	int r = -EINVAL;

	/* A plain nonce would not come from the TPM: only the credential proves the EK and AK. */
	if (json_is_object(cred) && json_object_get(j, "nonce") == NULL) {
		*blob_len = member_b64(cred, "blob", blob, cap);
		*secret_len = member_b64(cred, "secret", secret, cap);
		if (*blob_len != 0 && *secret_len != 0)
			r = 0;
	}
	json_decref(j);
	return r;
}

int
proto_nonce_parse(const char *body, size_t len, uint8_t nonce[32], char *b64, size_t cap)
{
	char err[8];
	json_t *j = load_object(body, len, err, sizeof(err));
	const char *s = j ? json_string_value(json_object_get(j, "nonce")) : NULL;
	int r = -EINVAL;

	if (s != NULL && b64_decode(nonce, 32, s, strlen(s)) == 32 && str_copy(b64, cap, s) == 0)
		r = 0;
	json_decref(j);
	return r;
}

int
proto_enroll_parse(const char *body, size_t len, char *device_id, size_t idcap, char *owner,
		   size_t ocap, uint8_t server_key[32], char *err, size_t cap)
{
	json_t *j = load_object(body, len, err, cap);
	const char *id, *own, *key;
	int r = -EINVAL;

	if (j == NULL)
		return -EINVAL;
	id = json_string_value(json_object_get(j, "device_id"));
	own = json_string_value(json_object_get(j, "owner"));
	key = json_string_value(json_object_get(j, "server_ticket_key"));
	if (id == NULL || strlen(id) >= WIRE_ID_LEN || str_copy(device_id, idcap, id) != 0)
		perr(err, cap, "the answer has no valid \"device_id\"");
	else if (key == NULL || b64_decode(server_key, 32, key, strlen(key)) != 32)
		perr(err, cap, "the answer has no valid \"server_ticket_key\"");
	else
		r = 0;
	if (r == 0) {
		str_copy(owner, ocap, own ? own : "");
		kv_sanitize(owner);
		kv_sanitize(device_id);
	}
	json_decref(j);
	return r;
}

int
proto_enroll_portal(const char *body, size_t len, const char *server, char *out, size_t cap)
{
	char err[PROTO_ERR_MAX];
	json_t *j = load_object(body, len, err, sizeof(err));
	const char *u = j ? json_string_value(json_object_get(j, "portal_url")) : NULL;
	size_t sl = strlen(server);
	int r = -ENOENT;

	if (u != NULL) {
		r = -EINVAL;
		if (strncmp(u, server, sl) == 0 && strncmp(u + sl, "/portal/", 8) == 0 &&
		    u[sl + 8] != '\0' &&
		    strspn(u + sl + 8, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				       "0123456789_-") == strlen(u + sl + 8))
			r = str_copy(out, cap, u) == 0 ? 0 : -EINVAL;
	}
	json_decref(j);
	return r;
}

int
proto_lease_parse(const char *body, size_t len, const char *device_id, uint8_t lease[TICKET_LEN])
{
	static struct checkin_reply cr;
	char err[8];
	json_t *j = load_object(body, len, err, sizeof(err));
	int r = j ? lease_parse(json_object_get(j, "lease"), device_id, &cr, err, sizeof(err))
		  : -EINVAL;

	if (r == 0 && !cr.has_lease)
		r = -EINVAL;
	if (r == 0)
		memcpy(lease, cr.lease, TICKET_LEN);
	json_decref(j);
	return r;
}

int
proto_receipts_reply(const char *body, size_t len, uint64_t *accepted, uint64_t *highest)
{
	char err[8];
	json_t *j = load_object(body, len, err, sizeof(err));
	json_t *a = j ? json_object_get(j, "accepted") : NULL;
	json_t *h = j ? json_object_get(j, "highest_seq") : NULL;
	int r = -EINVAL;

	if (json_is_integer(a) && json_is_integer(h) && json_integer_value(a) >= 0 &&
	    json_integer_value(h) >= 0) {
		*accepted = (uint64_t)json_integer_value(a);
		*highest = (uint64_t)json_integer_value(h);
		r = 0;
	}
	json_decref(j);
	return r;
}

int
proto_result_verified(const char *body, size_t len)
{
	char err[8];
	json_t *j = load_object(body, len, err, sizeof(err));
	json_t *v = j ? json_object_get(j, "verified") : NULL;
	int r = json_is_boolean(v) ? json_is_true(v) : -1;

	json_decref(j);
	return r;
}

void
proto_problem(const char *body, size_t len, char *out, size_t cap)
{
	char err[8];
	json_t *j = load_object(body, len, err, sizeof(err));
	const char *d = j ? json_string_value(json_object_get(j, "detail")) : NULL;

	if (d == NULL || d[0] == '\0')
		d = j ? json_string_value(json_object_get(j, "title")) : NULL;
	if (cap == 0)
		return;
	if (d != NULL)
		str_copy(out, cap, d);
	else
		snprintf(out, cap, "%.*s", (int)MIN(len, cap - 1), body ? body : "");
	out[strcspn(out, "\r\n")] = '\0';
	kv_sanitize(out);
	json_decref(j);
}

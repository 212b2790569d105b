/*
 * JSON encodings of the store's records as the REST API shows them: RFC 3339 UTC times, base64
 * for binary, null for "never". Secrets are never encoded here except the one-time token value
 * a create call passes in. Device compliance is computed here from the record and its policy.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_priv.h"
#include "crypto.h"
#include "wire.h"

json_t *
token_json(const struct api_token *t)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o, s:b}", "id", t->id, "name", t->name,
			 "role", t->role, "created_by", t->created_by, "created_at",
			 jtime(t->created_at), "expires_at", jtime(t->expires_at), "revoked_at",
			 jtime(t->revoked_at), "active", t->revoked_at == 0);
}

json_t *
etoken_json(struct api *a, const struct enroll_token *t, const char *secret)
{
	json_t *j = json_pack("{s:s, s:s, s:I, s:I, s:s, s:o, s:o, s:o}", "id", t->id, "owner",
			      t->owner, "uses", (json_int_t)t->uses, "uses_max",
			      (json_int_t)t->uses_max, "created_by", t->created_by, "created_at",
			      jtime(t->created_at), "expires_at", jtime(t->expires_at),
			      "revoked_at", jtime(t->revoked_at));
	char *url = NULL;

	if (j != NULL && secret != NULL) {
		json_object_set_new(j, "token", json_string(secret));
		if (svc_enroll_url(a->svc, secret, &url) == 0)
			json_object_set_new(j, "enroll_url", json_string(url));
		free(url);
	}
	return j;
}

/*
 * Whether a device is compliant, and every reason it is not (schema/api.md lists them): the
 * rule is the service's (svc_compliance_eval), shared with the device list's filters.
 */
static json_t *
compliance_json(struct api *a, const struct device *d, const struct policy *p, int have_policy)
{
	unsigned m = svc_compliance_eval(a->svc, d, p, have_policy);
	json_t *reasons = json_array(), *codes = json_array();

	for (unsigned i = 0; i < COMPLY_COUNT; i++) {
		if (!(m & (1u << i)))
			continue;
		json_array_append_new(reasons, json_string(svc_compliance_text(1u << i)));
		json_array_append_new(codes, json_string(svc_compliance_code(1u << i)));
	}
	return json_pack("{s:b, s:o, s:o}", "compliant", m == 0, "reasons", reasons, "reason_codes",
			 codes);
}

json_t *
device_json(struct api *a, const struct device *d)
{
	struct policy p;
	int have = svc_policy_effective(a->svc, d, &p) == 0;
	char fp[64], meas[65], *pem = NULL;
	json_t *j, *hv;

	key_fingerprint(d->hv_key, fp, sizeof(fp));
	hex_encode(meas, sizeof(meas), d->measurement, sizeof(d->measurement));
	j = json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:{s:s, s:s}, s:{s:o, s:o, s:I, s:o, "
		"s:I},"
		" s:{s:o, s:s, s:s, s:I}, s:o}",
		"id", d->id, "owner", d->owner, "status", d->status, "model", d->model, "os", d->os,
		"agent_version", d->agent_version, "enrolled_at", jtime(d->enrolled_at),
		"last_checkin_at", jtime(d->last_seen_at), "corporate_state", "desired",
		d->desired_state, "reported", d->reported_state, "policy", "assigned",
		d->policy_name[0] ? json_string(d->policy_name) : json_null(), "effective",
		have ? json_string(p.name) : json_null(), "effective_version",
		(json_int_t)(have ? p.version : 0), "applied",
		d->applied_policy_name[0] ? json_string(d->applied_policy_name) : json_null(),
		"applied_version", (json_int_t)d->applied_policy_version, "hypervisor", "key",
		jb64(d->hv_key, sizeof(d->hv_key)), "key_fingerprint", fp, "measurement", meas,
		"key_epoch", (json_int_t)d->key_epoch, "compliance",
		compliance_json(a, d, &p, have));
	/* PEM of the hypervisor key: what openssl's verify commands take (wire-formats.md 5). */
	hv = j ? json_object_get(j, "hypervisor") : NULL;
	if (hv != NULL && hv_key_pem(d, &pem) == 0)
		json_object_set_new(hv, "key_pem", json_string(pem));
	if (hv != NULL) {
		/* Where the key lives and whether a TPM's endorsement vouched for it at enrollment. */
		json_object_set_new(hv, "identity",
				    json_string(d->hv_identity[0] ? d->hv_identity : "file"));
		json_object_set_new(hv, "signature_alg",
				    json_string(d->hv_sig_alg == WIRE_SIG_ECDSA_P256
							? "ecdsa-p256-sha256"
							: "ed25519"));
		json_object_set_new(
			hv, "endorsement",
			json_string(strcmp(d->endorsement, "verified") == 0 ? "verified" : "none"));
		json_object_set_new(hv, "endorsement_ca",
				    d->endorsement_ca[0] ? json_string(d->endorsement_ca)
							 : json_null());
		json_object_set_new(
			hv, "attestation",
			json_string(d->attest_status[0] ? d->attest_status : "enrolled"));
		json_object_set_new(hv, "attested_at",
				    jtime(d->attested_at > 0 ? d->attested_at : d->enrolled_at));
		json_object_set_new(hv, "key_epoch_since", jtime(d->epoch_since));
	}
	if (j != NULL) {
		json_object_set_new(j, "superseded_by",
				    d->superseded_by[0] ? json_string(d->superseded_by)
							: json_null());
		json_object_set_new(j, "replaces",
				    d->replaces[0] ? json_string(d->replaces) : json_null());
	}
	free(pem);
	return j;
}

json_t *
command_json(const struct command *c)
{
	return json_pack(
		"{s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:s, s:o, "
		"s:o, s:b, s:o, s:o, s:o}",
		"id", c->id, "device_id", c->device_id, "type", c->type, "status", c->status,
		"reason", c->reason, "counter", (json_int_t)c->counter, "created_by", c->created_by,
		"created_at", jtime(c->created_at), "expires_at", jtime(c->expires_at),
		"delivered_at", jtime(c->delivered_at), "acknowledged_at",
		jtime(c->acknowledged_at), "completed_at", jtime(c->completed_at), "result_detail",
		c->result_detail, "ticket", jb64(c->ticket, sizeof(c->ticket)), "receipt",
		c->receipt_len ? jb64(c->receipt, c->receipt_len) : json_null(), "verified",
		c->verified != 0, "unverified_reason",
		c->verify_note[0] ? json_string(c->verify_note) : json_null(), "approval_id",
		c->approval_id[0] ? json_string(c->approval_id) : json_null(), "approved_by",
		c->approved_by[0] ? json_string(c->approved_by) : json_null());
}

json_t *
policy_json(const struct policy *p)
{
	json_t *content = json_loads(p->body, 0, NULL);

	return json_pack("{s:s, s:I, s:b, s:o, s:o}", "name", p->name, "version",
			 (json_int_t)p->version, "default", p->is_default != 0, "updated_at",
			 jtime(p->updated_at), "content", content ? content : json_object());
}

json_t *
audit_json(const struct audit_entry *e)
{
	char h[65];

	hex_encode(h, sizeof(h), e->hash, sizeof(e->hash));
	return json_pack("{s:I, s:o, s:s, s:s, s:s, s:s, s:s, s:s}", "seq", (json_int_t)e->seq,
			 "at", jtime_ms(e->at_ms), "actor", e->actor, "action", e->action, "target",
			 e->target, "outcome", e->outcome, "detail", e->detail, "hash", h);
}

/*
 * The device's way in: enrollment nonces, enrollment itself (token, device key, hypervisor key
 * and its attestation over the nonce), and the verification of every later signed request
 * (RFC 9421 signature, time window, replay window). A failed verification is audited and
 * counted; the caller only learns "unauthorized" plus a reason safe to show the device.
 */
#include "service_priv.h"

#include "hvsig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/audit.h"
#include "replaylog.h"
#include "log.h"
#include "wire.h"

void
svc_ticket_key(const struct service *s, uint8_t pub[32])
{
	memcpy(pub, s->ticket_pub, 32);
}

int
svc_etoken_check(struct service *s, const char *secret, struct enroll_token *t)
{
	uint8_t h[32];
	int r;

	if (secret == NULL || secret[0] == '\0')
		return SVC_ETOKEN_UNKNOWN;
	crypto_sha256(secret, strlen(secret), h);
	r = s->st->ops->etoken_by_hash(s->st, h, t);
	if (r == -ENOENT)
		return SVC_ETOKEN_UNKNOWN;
	if (r != 0)
		return r;
	if (t->revoked_at != 0)
		return SVC_ETOKEN_REVOKED;
	if (t->expires_at <= svc_now_s(s))
		return SVC_ETOKEN_EXPIRED;
	if (t->uses >= t->uses_max)
		return SVC_ETOKEN_USED_UP;
	return SVC_ETOKEN_USABLE;
}

/* Looks up an enrollment token by its secret and says why it cannot be used, if so. */
static int
etoken_usable(struct service *s, const char *secret, struct enroll_token *t, struct svc_error *err)
{
	int r;

	if (secret == NULL || secret[0] == '\0')
		return svc_fail(err, SVC_ENROLL_DENIED, "an enrollment token is required");
	r = svc_etoken_check(s, secret, t);
	switch (r) {
	case SVC_ETOKEN_USABLE:
		return 0;
	case SVC_ETOKEN_UNKNOWN:
		return svc_fail(err, SVC_ENROLL_DENIED, "the enrollment token is not valid");
	case SVC_ETOKEN_REVOKED:
		return svc_fail(err, SVC_ENROLL_DENIED, "the enrollment token has been revoked");
	case SVC_ETOKEN_EXPIRED:
		return svc_fail(err, SVC_ENROLL_DENIED, "the enrollment token has expired");
	case SVC_ETOKEN_USED_UP:
		return svc_fail(err, SVC_ENROLL_DENIED,
				"the enrollment token has been used up (%lld of %lld uses)",
				(long long)t->uses, (long long)t->uses_max);
	default:
		return svc_store_fail(err, r, "enrollment token");
	}
}

int
svc_enroll_nonce(struct service *s, const char *etoken_secret, const char *client,
		 const struct enroll_tpm_id *tpm, uint8_t nonce[32], struct enroll_credential *cred,
		 int64_t *expires_at, struct svc_error *err)
{
	struct enroll_token t;
	struct enroll_nonce n;
	int r = svc_source_check(s, client, err);

	if (r != 0)
		return r;
	r = etoken_usable(s, etoken_secret, &t, err);
	if (r != 0) {
		if (err->kind == SVC_ENROLL_DENIED) /* not a storage failure */
			svc_refused(s, client, NULL, "device.enroll", err->detail);
		return r;
	}
	if (crypto_random(nonce, 32) != 0)
		return svc_fail(err, SVC_INTERNAL, "no randomness");
	memset(&n, 0, sizeof(n));
	if (tpm != NULL) {
		r = svc_tpm_credential(s, tpm, nonce, &n, cred, err);
		if (r != 0) {
			if (err->kind == SVC_ENROLL_DENIED) /* a TPM we do not trust: on record */
				svc_refused(s, client, t.id, "device.enroll", err->detail);
			return r;
		}
	}
	str_copy(n.token_id, sizeof(n.token_id), t.id);
	n.expires_at = *expires_at = svc_now_s(s) + s->cfg.nonce_ttl_s;
	r = s->st->ops->nonce_insert(s->st, nonce, &n);
	return r == 0 ? 0 : svc_store_fail(err, r, "nonce");
}

/* Checks the hypervisor's attestation: signature by hv_key, over our nonce, about hv_key. */
static int
attestation_ok(const struct enroll_request *rq, struct attestation *a, struct svc_error *err)
{
	if (rq->attestation == NULL || attest_decode(rq->attestation, rq->attestation_len, a) != 0)
		return svc_fail(err, SVC_INVALID,
				"attestation is not a valid attestation (%d "
				"bytes expected)",
				ATTEST_LEN);
	if (memcmp(a->hv_key, rq->hv_key, 32) != 0)
		return svc_fail(err, SVC_INVALID,
				"attestation is about a different hypervisor key");
	if (memcmp(a->nonce, rq->nonce, 32) != 0)
		return svc_fail(err, SVC_INVALID, "attestation does not cover the nonce");
	if (a->sig_alg != WIRE_SIG_ED25519 && rq->hv_spki_len == 0)
		return svc_fail(err, SVC_INVALID,
				"the attestation is signed by a TPM key (version 3): enrollment "
				"needs hypervisor_spki, that key's SubjectPublicKeyInfo");
	if (rq->hv_spki_len > STORE_SPKI_MAX ||
	    hvsig_verify(a->sig_alg, rq->hv_key, rq->hv_spki, rq->hv_spki_len, rq->attestation,
			 ATTEST_BODY_LEN, rq->attestation + ATTEST_BODY_LEN) != 0)
		return svc_fail(err, SVC_INVALID, "attestation signature does not verify");
	return 0;
}

#define SUPERSEDE_MAX 8

/*
 * The same hypervisor enrolling again (after a wipe released it, or a replaced agent) makes
 * its older active records retired, each naming the new one, so an owner never collects
 * active ghosts. Inside the enrollment transaction; d->replaces must already name the newest.
 * Only the device rows (in the order the store listed them): their audit entries come at the
 * end of the transaction (supersede_audit), since the audit head is the last lock a transaction
 * takes (store_pg.c). A command being queued for an old record holds that row and then wants
 * the head; taking the head between two old rows could wait on it while it waits on us.
 */
static int
supersede_tx(struct service *s, const struct device *d, char (*old)[STORE_ID_MAX], size_t n)
{
	struct device v;
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++) {
		memset(&v, 0, sizeof(v));
		str_copy(v.id, sizeof(v.id), old[i]);
		str_copy(v.status, sizeof(v.status), "retired");
		str_copy(v.superseded_by, sizeof(v.superseded_by), d->id);
		r = s->st->ops->device_patch(s->st, &v, DEV_F_STATUS | DEV_F_SUPERSEDED);
	}
	return r;
}

/* The audit entries of supersede_tx, appended at the end of the enrollment's transaction. */
static int
supersede_audit(struct service *s, const struct device *d, char (*old)[STORE_ID_MAX], size_t n)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < n; i++)
		r = audit_append(s->st, service_now_ms(s), d->id, "device.supersede", old[i], "ok",
				 "the same hypervisor enrolled again");
	return r;
}

/* What an enrollment's transaction needs beyond the request. */
struct enroll_ctx {
	struct enroll_token t;
	struct attestation a;
	uint8_t ak_name[STORE_AK_NAME_MAX]; /* the TPM's AK; ak_name_len 0 for a software key */
	uint16_t ak_name_len;
};

static int enroll_commit(struct service *s, const struct enroll_request *rq,
			 const struct enroll_ctx *x, struct device *dev, struct svc_error *err);

/*
 * A nonce handed out as a TPM credential is good only for the AK it was bound to (whose TPM
 * alone could recover it), and a TPM device's enrollment only with such a nonce: the nonce is
 * what proves that the AK sits in the TPM whose endorsement was verified. Then d is that TPM's.
 */
static int
nonce_for_this_key(const struct enroll_nonce *n, const uint8_t *ak_name, uint16_t ak_name_len,
		   struct device *d)
{
	if (ak_name_len == 0)
		return n->ak_name_len == 0 ? 0 : -ENOTUNIQ;
	if (n->ak_name_len == 0)
		return -ENOKEY;
	if (n->ak_name_len != ak_name_len || memcmp(n->ak_name, ak_name, ak_name_len) != 0)
		return -EKEYREJECTED;
	str_copy(d->hv_identity, sizeof(d->hv_identity), "tpm");
	str_copy(d->endorsement, sizeof(d->endorsement), "verified");
	str_copy(d->endorsement_ca, sizeof(d->endorsement_ca), n->ek_issuer);
	return 0;
}

static int
enroll_tx(struct service *s, const struct enroll_request *rq, const struct enroll_token *t,
	  const struct attestation *a, const uint8_t *ak_name, uint16_t ak_name_len,
	  struct device *d)
{
	char old[SUPERSEDE_MAX][STORE_ID_MAX];
	struct enroll_nonce n;
	struct policy pol;
	struct command c;
	uint64_t args[4] = {0};
	char detail[STORE_OWNER_MAX + 64];
	size_t nold = 0;
	int r;

	r = s->st->ops->nonce_take(s->st, rq->nonce, svc_now_s(s), &n);
	if (r != 0)
		return r == -ETIME || r == -ENOENT ? -ESTALE : r;
	if (strcmp(n.token_id, t->id) != 0)
		return -EXDEV; /* fetched with another enrollment token */
	r = nonce_for_this_key(&n, ak_name, ak_name_len, d);
	if (r != 0)
		return r;
	r = s->st->ops->etoken_use(s->st, t->id);
	if (r != 0)
		return r == -ENOENT ? -EDQUOT : r;
	r = s->st->ops->device_ids_by_hv_key(s->st, d->hv_key, old, SUPERSEDE_MAX, &nold);
	if (r != 0)
		return r;
	if (nold > 0)
		str_copy(d->replaces, sizeof(d->replaces), old[nold - 1]);
	r = s->st->ops->device_insert(s->st, d);
	if (r == 0)
		r = supersede_tx(s, d, old, nold);
	if (r != 0)
		return r;
	r = s->st->ops->device_get(s->st, d->id, d);
	if (r == 0)
		r = svc_ev_device(s, "device.enrolled", d);
	/* The hypervisor needs the policy's offline limits from the start. */
	if (r == 0 && svc_policy_effective(s, d, &pol) == 0) {
		svc_policy_args(s, &pol, args);
		r = svc_command_queue_tx(s, d, "policy", pol.name, "system", 0, NULL, NULL, args,
					 &c);
	}
	snprintf(detail, sizeof(detail), "owner=%s token=%s hv_state=%u", d->owner, t->id,
		 a->state);
	if (r == 0)
		r = supersede_audit(s, d, old, nold);
	if (r == 0)
		r = audit_append(s->st, service_now_ms(s), d->id, "device.enroll", d->id, "ok",
				 detail);
	return r;
}

/* The new device row of an enrollment that passed every check. */
static int
enroll_device(struct service *s, const struct enroll_request *rq, const struct enroll_ctx *x,
	      struct device *dev)
{
	const struct attestation *a = &x->a;

	memset(dev, 0, sizeof(*dev));
	if (svc_new_id(dev->id, "dev_") != 0)
		return -EIO;
	str_copy(dev->owner, sizeof(dev->owner), x->t.owner);
	str_copy(dev->status, sizeof(dev->status), "active");
	memcpy(dev->device_key, rq->device_key, 32);
	memcpy(dev->hv_key, rq->hv_key, 32);
	dev->hv_sig_alg = a->sig_alg;
	if (a->sig_alg != WIRE_SIG_ED25519) {
		memcpy(dev->hv_spki, rq->hv_spki, rq->hv_spki_len);
		dev->hv_spki_len = (uint16_t)rq->hv_spki_len;
	}
	/* "tpm" and the endorsement only once the nonce taken proves the AK (enroll_tx) */
	str_copy(dev->hv_identity, sizeof(dev->hv_identity), "file");
	memcpy(dev->measurement, a->measurement, 32);
	str_copy(dev->enrollment_token_id, sizeof(dev->enrollment_token_id), x->t.id);
	str_copy(dev->model, sizeof(dev->model), rq->model);
	str_copy(dev->os, sizeof(dev->os), rq->os);
	str_copy(dev->agent_version, sizeof(dev->agent_version), rq->agent_version);
	dev->key_epoch = (int64_t)a->key_epoch;
	dev->enrolled_at = svc_now_s(s);
	dev->last_seen_at = dev->enrolled_at;
	dev->epoch_since = dev->enrolled_at;
	memcpy(dev->attested_policy, a->policy_digest, sizeof(dev->attested_policy));
	return 0;
}

int
svc_enroll(struct service *s, const struct enroll_request *rq, struct device *dev,
	   struct svc_error *err)
{
	struct enroll_ctx x;
	int r = svc_source_check(s, rq->client, err);

	memset(&x, 0, sizeof(x));
	if (r == 0)
		r = etoken_usable(s, rq->etoken_secret, &x.t, err);
	if (r != 0) {
		if (err->kind == SVC_ENROLL_DENIED) /* not a storage failure */
			svc_refused(s, rq->client, NULL, "device.enroll", err->detail);
		return r;
	}
	r = attestation_ok(rq, &x.a, err);
	if (r == 0)
		r = svc_tpm_evidence_ok(rq, &x.a, x.ak_name, &x.ak_name_len, err);
	if (r == 0 && s->cfg.require_hw_identity && x.ak_name_len == 0)
		/* No trust on first use: only an endorsement verified here makes a key hardware. */
		r = svc_fail(
			err, SVC_ENROLL_DENIED,
			"this deployment enrolls only devices whose hypervisor key is in a TPM "
			"with a verified endorsement (require_hardware_identity); this "
			"device's key is a software key");
	if (r != 0) {
		svc_refused(s, rq->client, x.t.id, "device.enroll", err->detail);
		return r;
	}
	if (enroll_device(s, rq, &x, dev) != 0)
		return svc_fail(err, SVC_INTERNAL, "no randomness");
	SVC_TX_RETRY(s, r, enroll_commit(s, rq, &x, dev, err));
	return r;
}

/* The refusals enroll_tx reports about the nonce, as the device is told them. */
static int
nonce_refusal(int r, struct svc_error *err)
{
	switch (r) {
	case -ESTALE:
		return svc_fail(err, SVC_INVALID,
				"the nonce is unknown, used or expired; get a new one");
	case -EDQUOT:
		return svc_fail(err, SVC_ENROLL_DENIED, "the enrollment token has been used up");
	case -EXDEV:
		return svc_fail(err, SVC_INVALID,
				"the nonce was issued for another enrollment token; get a new one "
				"with this token");
	case -ENOKEY:
		return svc_fail(err, SVC_ENROLL_DENIED,
				"the nonce was issued without a TPM identity, so it proves nothing "
				"about this TPM key; ask for one with tpm (ek_cert, ek_public, "
				"ak_public)");
	case -EKEYREJECTED:
		return svc_fail(err, SVC_ENROLL_DENIED,
				"the nonce was issued as a credential for another attestation key "
				"than tpm.ak_public");
	case -ENOTUNIQ:
		return svc_fail(err, SVC_ENROLL_DENIED,
				"the nonce was issued as a credential for a TPM's attestation key; "
				"only that key's attestation and quote enroll with it");
	case -EEXIST:
		return svc_fail(err, SVC_CONFLICT, "this device key is already enrolled");
	default:
		return 1;
	}
}

/*
 * One attempt at the enrollment's transaction. dev is as svc_enroll filled it before the
 * first attempt; an attempt that is run again starts from that copy, not from what the rolled
 * back one left in it.
 */
static int
enroll_commit(struct service *s, const struct enroll_request *rq, const struct enroll_ctx *x,
	      struct device *dev, struct svc_error *err)
{
	struct device fresh = *dev;
	int r = s->st->ops->tx_begin(s->st);

	if (r != 0)
		return svc_store_fail(err, r, "device");
	r = enroll_tx(s, rq, &x->t, &x->a, x->ak_name, x->ak_name_len, dev);
	if (r != 0) {
		int f = nonce_refusal(r, err);

		*dev = fresh;
		s->st->ops->tx_rollback(s->st);
		if (f == 1)
			return svc_store_fail(err, r, "device");
		/* a TPM key with a nonce that was not its credential: on record */
		if (r == -ENOKEY || r == -EKEYREJECTED || r == -ENOTUNIQ)
			svc_refused(s, rq->client, x->t.id, "device.enroll", err->detail);
		return f;
	}
	r = s->st->ops->tx_commit(s->st);
	if (r != 0) {
		*dev = fresh;
		return svc_store_fail(err, r, "device");
	}
	log_info("device %s enrolled for %s (%s key%s)", dev->id, dev->owner, dev->hv_identity,
		 dev->endorsement[0] ? ", endorsement verified" : "");
	return 0;
}

/* Audits and counts a rejected device request, then fails with SVC_UNAUTHORIZED. */
static int
auth_reject(struct service *s, const struct signed_request *rq, const char *keyid,
	    struct svc_error *err, const char *why)
{
	char detail[192];

	atomic_fetch_add(&s->auth_failures, 1);
	snprintf(detail, sizeof(detail), "%s %s: %s", rq->method, rq->path, why);
	svc_refused(s, rq->client, keyid, "device.auth", detail);
	return svc_fail(err, SVC_UNAUTHORIZED, "%s", why);
}

int
svc_device_auth(struct service *s, const struct signed_request *rq, struct device *dev,
		struct svc_error *err)
{
	struct httpsig_parsed sp;
	struct httpsig_params p;
	const char *why = NULL;
	char msg[192];
	int64_t now = svc_now_s(s);
	int r = svc_source_check(s, rq->client, err);

	if (r != 0)
		return r;
	if (rq->signature_input == NULL || rq->signature == NULL || rq->content_digest == NULL)
		return auth_reject(s, rq, NULL, err,
				   "request is not signed (Signature-Input, Signature and "
				   "Content-Digest are required)");
	if (httpsig_parse(rq->signature_input, rq->signature, &sp, &why) != 0) {
		snprintf(msg, sizeof(msg), "malformed request signature: %s", why ? why : "?");
		return auth_reject(s, rq, NULL, err, msg);
	}
	p = sp.p;
	r = s->st->ops->device_get(s->st, p.keyid, dev);
	if (r == -ENOENT)
		return auth_reject(s, rq, p.keyid, err, "unknown device");
	if (r != 0)
		return svc_store_fail(err, r, "device");
	if (httpsig_verify(dev->device_key, rq->method, rq->path, rq->query, rq->body, rq->body_len,
			   rq->content_digest, &sp) != 0)
		return auth_reject(s, rq, p.keyid, err, "request signature does not verify");
	if (p.created > now + s->cfg.sig_skew_s || p.created < now - s->cfg.sig_skew_s)
		return auth_reject(s, rq, p.keyid, err,
				   "request signature is stale or from the future (check the "
				   "device clock)");
	if (p.expires != 0 && now > p.expires)
		return auth_reject(s, rq, p.keyid, err, "request signature has expired");
	r = devstate_accept_nonce(&s->dev, dev->id, dev->sig_seq, p.nonce, now);
	if (r == -ENOMEM)
		return svc_fail(err, SVC_UNAVAILABLE, "out of memory");
	if (r != 0)
		return auth_reject(s, rq, p.keyid, err, "replayed request (nonce already used)");
	/* On disk before anything is answered: a crash must not make this nonce new again. */
	if (s->replay != NULL && replaylog_append(s->replay, dev->id, p.nonce) != 0)
		return svc_fail(err, SVC_UNAVAILABLE,
				"the server cannot record the request now; retry in a second");
	/*
	 * A shared database: the other servers' accepted nonces are not in this one's window,
	 * so the database's unique pair decides, committed before anything is answered.
	 */
	if (s->st->ops->request_nonce_claim != NULL) {
		r = s->st->ops->request_nonce_claim(s->st, dev->id, p.nonce, now);
		if (r == -EALREADY)
			return auth_reject(s, rq, p.keyid, err,
					   "replayed request (nonce already used)");
		if (r != 0)
			return svc_store_fail(err, r, "request nonce");
	}
	if (strcmp(dev->status, "active") != 0)
		return svc_fail(err, SVC_FORBIDDEN, "device %s is %s", dev->id, dev->status);
	return 0;
}

/*
 * `cleave-agent enroll`: joins this device to a cleave-server with an enrollment token. The
 * order avoids wasting a single-use token: cleave-hv must answer, and must not belong to
 * another enrollment, before the token is spent; the identity is saved as soon as the server
 * has accepted it, before the server key is pinned into cleave-hv (a later `run` pins it when
 * that step failed).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "b64.h"
#include "fileio.h"
#include "hvsig.h"
#include "kvfile.h"
#include "log.h"

struct enroll_ctx {
	const struct enroll_args *e;
	struct agent_dir dir;
	struct identity id;
	struct http_client *http;
	struct hvlink hv;
	struct ed25519_key *key;
	int tpm; /* cleave-hv keeps its identity in a TPM (status flag TPM) */
	/* With a TPM: TPM_IDENTITY's and TPM_ACTIVATE's replies, which id and ev point into. */
	uint8_t tpm_id_buf[CLV_MSG_PAYLOAD_MAX], tpm_ev_buf[CLV_MSG_PAYLOAD_MAX];
	struct clv_tpm_identity tpm_id;
	struct clv_tpm_evidence ev;
};

/* A person-readable model and OS for the inventory. */
static void
inventory(char *model, size_t mcap, char *os, size_t ocap)
{
	struct utsname u;
	char *dmi = file_read_all("/sys/class/dmi/id/product_name", 256, NULL);

	if (uname(&u) != 0)
		memset(&u, 0, sizeof(u));
	if (dmi != NULL && dmi[0] != '\0' && dmi[0] != '\n') {
		dmi[strcspn(dmi, "\n")] = '\0';
		snprintf(model, mcap, "%s", dmi);
	} else {
		snprintf(model, mcap, "%s", u.machine[0] ? u.machine : "unknown");
	}
	free(dmi);
	snprintf(os, ocap, "%s %s", u.sysname[0] ? u.sysname : "unknown", u.release);
	kv_sanitize(model);
	kv_sanitize(os);
}

/* Prints why the server said no, and picks the exit code. */
static int
refused(const struct http_resp *r, const char *step)
{
	char why[PROTO_ERR_MAX];

	proto_problem(r->body, r->len, why, sizeof(why));
	/* 403 is the server's "no" (a token, a TPM or a policy): its detail says which. */
	if (r->status == 403)
		log_err("the server refused the enrollment: %s", why);
	else
		log_err("%s: the server answered HTTP %ld: %s", step, r->status, why);
	return r->status >= 500 ? AGENT_EXIT_SERVER : AGENT_EXIT_REFUSED;
}

/* An unsigned JSON POST; prints transport failures. 0 or an exit code. */
static int
post(struct enroll_ctx *c, const char *path, char *body, struct http_resp *r)
{
	int rc;

	if (body == NULL)
		return AGENT_EXIT_FAIL;
	rc = http_request(c->http, "POST", path, body, strlen(body), NULL, 30, r);
	secure_zero(body, strlen(body)); /* it holds the enrollment token */
	free(body);
	if (rc != 0) {
		log_err("%s", r->error);
		return AGENT_EXIT_SERVER;
	}
	return 0;
}

/* Checks the directory and whether an existing enrollment may be replaced. */
static int
prepare_dir(struct enroll_ctx *c)
{
	const struct enroll_args *e = c->e;
	struct identity old;
	struct journal j;
	struct journal_entry *v = NULL;
	size_t n = 0;

	if (agent_dir_open(&c->dir, e->dir, 1) != 0)
		return AGENT_EXIT_STATE;
	if (agent_dir_lock(&c->dir) != 0) {
		log_err("another cleave-agent is working on %s; stop it first", e->dir);
		return AGENT_EXIT_STATE;
	}
	if (!identity_exists(&c->dir))
		return 0;
	if (identity_load(&c->dir, &old, NULL) != 0)
		return AGENT_EXIT_STATE;
	if (!e->replace) {
		log_err("%s already holds device %s (server %s); run `cleave-agent --state %s "
			"unenroll`, or pass --replace once its corporate half has been wiped",
			e->dir, old.device_id, old.server, e->dir);
		return AGENT_EXIT_STATE;
	}
	if (journal_open(&j, &c->dir) != 0 || journal_list(&j, &v, &n) != 0)
		return AGENT_EXIT_STATE;
	for (size_t i = 0; i < n; i++) {
		if (v[i].state != JS_REPORTED) {
			log_err("device %s still has command %s (%s) %s; run the agent until the "
				"server has its result before replacing the enrollment",
				old.device_id, v[i].id, v[i].type, journal_state_name(v[i].state));
			free(v);
			return AGENT_EXIT_STATE;
		}
	}
	free(v);
	return 0;
}

static int
open_transports(struct enroll_ctx *c)
{
	const struct enroll_args *e = c->e;
	struct http_opts o = {.base_url = e->server, .ca_file = e->ca_cert};
	struct clv_status s;
	int st;

	if (e->pin != NULL && http_pin_normalize(e->pin, c->id.pin, sizeof(c->id.pin)) != 0) {
		log_err("--pin-sha256 must be the base64 SHA-256 of the server's public key "
			"(optionally prefixed with sha256//)");
		return AGENT_EXIT_USAGE;
	}
	o.pin = c->id.pin[0] ? c->id.pin : NULL;
	if (http_client_new(&o, &c->http) != 0)
		return AGENT_EXIT_FAIL;
	hvlink_init(&c->hv, agent_hv_socket(e->hv_socket, NULL));
	st = hvlink_status(&c->hv, &s);
	if (st != CLV_OK) {
		log_err("%s; start cleave-hv, or name its socket with --hv-socket or "
			"CLEAVE_HV_SOCKET",
			hvlink_strerror(&c->hv, st));
		return AGENT_EXIT_HV;
	}
	c->tpm = (s.flags & CLV_STATUS_TPM) != 0;
	return 0;
}

/*
 * cleave-hv's TPM identity (TPM.md §3 step 1): the EK certificate the server checks against the
 * TPM makers it trusts, the EK and AK public areas, and the AK's SPKI, kept as the identity.
 */
static int
tpm_identity(struct enroll_ctx *c)
{
	struct clv_tpm_identity *t = &c->tpm_id;
	int st = hvlink_tpm_identity(&c->hv, c->tpm_id_buf, t);

	if (st != CLV_OK) {
		log_err("cleave-hv runs with a TPM but would not give its identity: %s",
			hvlink_strerror(&c->hv, st));
		return AGENT_EXIT_HV;
	}
	if (t->ek_cert_len == 0) {
		log_err("cleave-hv's TPM has no endorsement key certificate (NV index 0x01c00002), "
			"so no server can verify who made it");
		return AGENT_EXIT_HV;
	}
	if (t->ak_spki_len == 0 || t->ak_spki_len > sizeof(c->id.hv_spki) ||
	    hvsig_key_id(t->ak_spki, t->ak_spki_len, c->id.hv_key) != 0) {
		log_err("cleave-hv's TPM identity key is not a P-256 key");
		return AGENT_EXIT_HV;
	}
	memcpy(c->id.hv_spki, t->ak_spki, t->ak_spki_len);
	c->id.hv_spki_len = t->ak_spki_len;
	return 0;
}

/*
 * With a TPM (TPM.md §3 steps 2-3): the nonce comes as a credential only this TPM, with this
 * AK, can activate; cleave-hv activates it and attests over the recovered nonce with a quote.
 */
static int
tpm_attest(struct enroll_ctx *c, uint8_t nonce[32], uint8_t att[ATTEST_LEN], struct attestation *a)
{
	uint8_t blob[1024], secret[1024];
	size_t bl = 0, sl = 0;
	struct http_resp r;
	int rc = tpm_identity(c), st;

	if (rc == 0)
		rc = post(c, "/device/v1/enroll/nonce", proto_nonce_body(c->e->token, &c->tpm_id),
			  &r);
	if (rc != 0)
		return rc;
	if (r.status != 200)
		rc = refused(&r, "enrollment nonce");
	else if (proto_credential_parse(r.body, r.len, blob, &bl, secret, &sl, sizeof(blob)) != 0)
		rc = (log_err("the server's nonce answer carries no TPM credential"),
		      AGENT_EXIT_FAIL);
	http_resp_fini(&r);
	if (rc != 0)
		return rc;
	st = hvlink_tpm_activate(&c->hv, blob, bl, secret, sl, c->tpm_ev_buf, &c->ev, a,
				 c->id.hv_spki, c->id.hv_spki_len);
	if (st == CLV_E_BAD_TICKET) {
		log_err("cleave-hv's TPM refused the server's credential: it was not made for this "
			"TPM's endorsement key and attestation key");
		return AGENT_EXIT_HV;
	}
	if (st != CLV_OK || memcmp(a->hv_key, c->id.hv_key, 32) != 0) {
		log_err("cleave-hv would not attest with its TPM: %s",
			st != CLV_OK ? hvlink_strerror(&c->hv, st) : "another identity key");
		return AGENT_EXIT_HV;
	}
	memcpy(att, c->ev.attestation, ATTEST_LEN);
	memcpy(nonce, a->nonce, 32);
	return 0;
}

/* The file keystore: a plain nonce from the server, an attestation over it from cleave-hv. */
static int
plain_attest(struct enroll_ctx *c, uint8_t nonce[32], uint8_t att[ATTEST_LEN],
	     struct attestation *a)
{
	struct http_resp r;
	char b64[64];
	int rc, st;

	rc = post(c, "/device/v1/enroll/nonce", proto_nonce_body(c->e->token, NULL), &r);
	if (rc != 0)
		return rc;
	if (r.status != 200) {
		rc = refused(&r, "enrollment nonce");
	} else if (proto_nonce_parse(r.body, r.len, nonce, b64, sizeof(b64)) != 0) {
		log_err("the server's nonce answer is malformed");
		rc = AGENT_EXIT_FAIL;
	}
	http_resp_fini(&r);
	if (rc != 0)
		return rc;
	st = hvlink_attest(&c->hv, nonce, att, a, NULL, 0);
	if (st != CLV_OK) {
		log_err("cleave-hv would not attest: %s", hvlink_strerror(&c->hv, st));
		return AGENT_EXIT_HV;
	}
	return 0;
}

/* Nonce from the server, attestation over it from cleave-hv (with its TPM when it has one). */
static int
attest(struct enroll_ctx *c, char *nonce_b64, size_t cap, uint8_t att[ATTEST_LEN])
{
	uint8_t nonce[32], zero[32] = {0};
	struct attestation a;
	char fp[64];
	int rc = c->tpm ? tpm_attest(c, nonce, att, &a) : plain_attest(c, nonce, att, &a);

	if (rc != 0)
		return rc;
	if (b64_encode(nonce_b64, cap, nonce, 32) < 0)
		return AGENT_EXIT_FAIL;
	if (memcmp(a.owner_key, zero, 32) != 0) {
		key_fingerprint(a.owner_key, fp, sizeof(fp));
		log_err("cleave-hv already belongs to an enrollment (server key %s); unenroll that "
			"device first (cleave-agent unenroll), or have it wiped",
			fp);
		return AGENT_EXIT_HV;
	}
	memcpy(c->id.hv_key, a.hv_key, 32);
	return 0;
}

static int
enroll_request(struct enroll_ctx *c, const char *nonce_b64, const uint8_t att[ATTEST_LEN])
{
	struct proto_enroll pe = {
		.token = c->e->token, .nonce_b64 = nonce_b64, .agent_version = AGENT_VERSION};
	char model[64], os[64], err[PROTO_ERR_MAX];
	struct http_resp r;
	int rc;

	inventory(model, sizeof(model), os, sizeof(os));
	pe.model = model;
	pe.os = os;
	if (ed25519_key_generate(&c->key) != 0)
		return AGENT_EXIT_FAIL;
	ed25519_key_public(c->key, pe.device_key);
	memcpy(pe.hv_key, c->id.hv_key, 32);
	memcpy(pe.attestation, att, ATTEST_LEN);
	if (c->tpm) {
		pe.hv_spki = c->id.hv_spki;
		pe.hv_spki_len = c->id.hv_spki_len;
		pe.ak_public = c->tpm_id.ak_public;
		pe.ak_public_len = c->tpm_id.ak_public_len;
		pe.tpm = &c->ev;
	}
	rc = post(c, "/device/v1/enroll", proto_enroll_body(&pe), &r);
	if (rc != 0)
		return rc;
	if (r.status != 201) {
		rc = refused(&r, "enrollment");
	} else if (proto_enroll_parse(r.body, r.len, c->id.device_id, sizeof(c->id.device_id),
				      c->id.owner, sizeof(c->id.owner), c->id.server_key, err,
				      sizeof(err)) != 0) {
		log_err("the server's enrollment answer is malformed: %s", err);
		rc = AGENT_EXIT_FAIL;
	} else if (proto_enroll_portal(r.body, r.len, c->e->server, c->id.portal_url,
				       sizeof(c->id.portal_url)) == -EINVAL) {
		/* Not fatal: the device is enrolled; only the employee's page link is missing. */
		log_warn("the server's device page link is malformed; ignored");
		c->id.portal_url[0] = '\0';
	}
	http_resp_fini(&r);
	return rc;
}

/* Saves the new identity (and a copy of the CA certificate) in DIR. */
static int
save_identity(struct enroll_ctx *c)
{
	char ca[PATH_MAX], *pem;
	size_t n = 0;
	int r;

	if (agent_dir_clear(&c->dir) != 0)
		return AGENT_EXIT_STATE;
	if (c->e->ca_cert != NULL) {
		pem = file_read_all(c->e->ca_cert, 1u << 20, &n);
		r = pem == NULL ? -errno : identity_ca_file(&c->dir, ca, sizeof(ca));
		if (r == 0)
			r = file_write_atomic(ca, pem, n, 0600);
		free(pem);
		if (r != 0) {
			log_err("cannot keep a copy of %s: %s", c->e->ca_cert, strerror(-r));
			return AGENT_EXIT_STATE;
		}
		c->id.has_ca = 1;
	}
	str_copy(c->id.server, sizeof(c->id.server), c->e->server);
	str_copy(c->id.hv_socket, sizeof(c->id.hv_socket), c->hv.path);
	c->id.enrolled_at = (int64_t)time(NULL);
	c->id.pinned = 0;
	return identity_save(&c->dir, &c->id, c->key) == 0 ? 0 : AGENT_EXIT_STATE;
}

static int
pin(struct enroll_ctx *c)
{
	char fp[64];
	int st = hvlink_pin(&c->hv, c->id.server_key, c->id.device_id);

	if (st != CLV_OK && st != CLV_E_NOT_REQUIRED) {
		log_err("enrolled as %s, but cleave-hv did not take the server key: %s; "
			"`cleave-agent run` tries again",
			c->id.device_id, hvlink_strerror(&c->hv, st));
		return AGENT_EXIT_HV;
	}
	c->id.pinned = 1;
	if (identity_save(&c->dir, &c->id, NULL) != 0)
		return AGENT_EXIT_STATE;
	key_fingerprint(c->id.server_key, fp, sizeof(fp));
	printf("enrolled as %s (owner %s) with %s\n"
	       "cleave-hv now obeys only tickets signed by the server key %s\n"
	       "start the agent with: cleave-agent --state %s run\n",
	       c->id.device_id, c->id.owner[0] ? c->id.owner : "?", c->id.server, fp, c->e->dir);
	if (c->id.hv_spki_len != 0)
		printf("cleave-hv's identity key lives in its TPM, whose endorsement the server "
		       "verified\n");
	if (c->id.portal_url[0])
		printf("your page for this device (keep it private): %s\n", c->id.portal_url);
	log_info("enrolled as %s with %s", c->id.device_id, c->id.server);
	return AGENT_EXIT_OK;
}

int
agent_enroll(const struct enroll_args *e)
{
	struct enroll_ctx c = {.e = e};
	char nonce_b64[64], lock[PATH_MAX];
	uint8_t att[ATTEST_LEN];
	int rc, created = access(e->dir, F_OK) != 0;

	c.dir.lock_fd = -1;
	hvlink_init(&c.hv, HVLINK_DEFAULT_SOCKET);
	if (strncmp(e->server, "https://", 8) != 0) {
		log_err("--server must be an https:// URL");
		return AGENT_EXIT_USAGE;
	}
	rc = prepare_dir(&c);
	if (rc == 0)
		rc = open_transports(&c);
	if (rc == 0)
		rc = attest(&c, nonce_b64, sizeof(nonce_b64), att);
	if (rc == 0)
		rc = enroll_request(&c, nonce_b64, att);
	if (rc == 0)
		rc = save_identity(&c);
	if (rc == 0)
		rc = pin(&c);
	ed25519_key_free(c.key);
	http_client_free(c.http);
	hvlink_close(&c.hv);
	/* A directory this failed attempt created is not left behind. */
	if (rc != 0 && created && c.dir.lock_fd >= 0 && !identity_exists(&c.dir) &&
	    agent_dir_file(&c.dir, "lock", lock, sizeof(lock)) == 0) {
		unlink(lock);
		rmdir(c.dir.path);
	}
	agent_dir_close(&c.dir);
	return rc;
}

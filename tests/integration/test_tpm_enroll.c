/*
 * Enrollment with a TPM (issue 13 §2, hypercall-bridge/TPM.md §3) against the real server: this
 * test is the device, its hypervisor half on a manufactured swtpm through cleave-hv's own TPM
 * layer (hv/tpm.h: EK, EK certificate, AK, credential activation, quote, signing), its agent
 * half the simulated device's Ed25519 key (testlib). The server trusts the TPM maker's CAs
 * (tpm_ca_file) and, in the first case, requires a hardware identity.
 *
 * tpm_device_enrolls: the nonce comes back only as a credential; activated, attested (v3, the
 * AK's signature) and quoted, the device enrolls under require_hardware_identity and shows
 * identity tpm, endorsement verified, the issuing CA's subject; its check-in attestations
 * signed in the TPM are accepted, one signed by another key is not; the same nonce again is
 * refused. Refused with the reason: an EK certificate from a maker not configured, an EK public
 * that is not the certificate's, a server without tpm_ca_file (ek_refused); an AK that is not
 * restricted (made by tpm2-tools) or not fixedTPM (ak_refused); a credential activated by one AK
 * used by another AK, or by a software key, a plain nonce for a TPM attestation (nonce_bound);
 * a v3 attestation without its quote, a quote over another attestation, a wrong log, a quote by
 * another AK, an SPKI that is not the AK's (quote_refused); a log that replays but does not end
 * with the attestation's measurement, an attestation over another nonce, a malformed log entry
 * (log_ends_with_measurement). test_tpm_enroll_pg runs every case with the server on PostgreSQL.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "crypto.h"
#include "fileio.h"
#include "swtpmtest.h"
#include "testlib.h"
#include "util.h"
#include "wire.h"

static struct pgtest *env_pg; /* test_tpm_enroll_pg: the server on PostgreSQL */

#include "tpmdev.h"

/* The server and its clients of a case. */
struct env {
	struct srv s;
	struct client *admin, *dc;
	struct swtpm maker; /* the TPM of the maker whose CAs the server trusts */
	char tok[128];
};

/*
 * Manufactures and starts the maker's TPM, starts a server trusting its CAs (no_ca: trusting
 * none) with require_hardware_identity as asked and the settings in conf_more (or NULL), and
 * makes a 5-use enrollment token.
 */
static int
env_start(struct env *e, const char *tag, int require_hw, int no_ca, const char *conf_more)
{
	char cas[PATH_MAX + 16], conf[PATH_MAX + 16];
	const char *extra[] = {"--config", conf, NULL};
	FILE *f;

	memset(e, 0, sizeof(*e));
	if (swtpm_make(&e->maker, "maker") != 0 || swtpm_start(&e->maker) != 0 ||
	    swtpm_ca_bundle(&e->maker, cas, sizeof(cas)) != 0 || srv_init(&e->s, tag) != 0 ||
	    srv_use_pg(&e->s, env_pg) != 0)
		return -1;
	snprintf(conf, sizeof(conf), "%s", e->s.log); /* beside the server's log */
	str_copy(strrchr(conf, '/'), 16, "/cleave.conf");
	f = fopen(conf, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "require_hardware_identity = %d\n", require_hw);
	if (!no_ca)
		fprintf(f, "tpm_ca_file = %s\n", cas);
	if (conf_more != NULL)
		fputs(conf_more, f);
	if (fclose(f) != 0 || srv_start(&e->s, extra) != 0)
		return -1;
	e->admin = client_new(&e->s, e->s.admin);
	e->dc = client_new(&e->s, NULL);
	if (e->admin == NULL || e->dc == NULL)
		return -1;
	return admin_etoken(e->admin, "tess@example.com", 5, e->tok, sizeof(e->tok));
}

static void
env_end(struct env *e)
{
	tdev_close_any();
	client_free(e->admin);
	client_free(e->dc);
	srv_cleanup(&e->s);
	swtpm_stop(&e->maker);
}

#define START_WITH(e, tag, hw, no_ca, conf_more)                                                   \
	do {                                                                                       \
		if (swtpm_skip_reason() != NULL)                                                   \
			SKIP("%s", swtpm_skip_reason());                                           \
		CHECK(env_start((e), (tag), (hw), (no_ca), (conf_more)) == 0,                      \
		      "TPM, server and token");                                                    \
	} while (0)
#define START(e, tag, hw, no_ca) START_WITH(e, tag, hw, no_ca, NULL)

/* The response is status with a problem whose detail contains want. */
#define REFUSED(r, status, want)                                                                   \
	do {                                                                                       \
		CHECK_STATUS((r), (status));                                                       \
		CHECK(strstr((r).body, (want)) != NULL, "the reason says \"%s\": %.400s", (want),  \
		      (r).body);                                                                   \
		resp_free(&(r));                                                                   \
	} while (0)

/* A check-in carrying attestation att; the device's attestation verdict afterwards into out. */
static int
checkin_verdict(struct env *e, struct device_sim *sim, const uint8_t *att, char *out, size_t cap)
{
	char b64[400], body[600], path[128];
	struct resp r = {0};
	json_t *j;
	long st;
	int rc;

	b64_encode(b64, sizeof(b64), att, ATTEST_LEN);
	snprintf(body, sizeof(body),
		 "{\"wait\":0,\"state\":{\"corporate_state\":\"active\",\"attestation\":\"%s\"}}",
		 b64);
	rc = dev_req(sim, e->dc, "POST", "/device/v1/checkin", body, 0, &r);
	rc = rc == 0 && (r.status == 200 || r.status == 204) ? 0 : -1;
	if (rc != 0)
		fprintf(stderr, "check-in: HTTP %ld %.300s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	snprintf(path, sizeof(path), "/api/v1/devices/%s", sim->id);
	j = client_get_json(e->admin, path, &st);
	str_copy(out, cap,
		 json_string_value(json_object_get(json_object_get(j, "hypervisor"), "attestation"))
			 ?: "");
	json_decref(j);
	return rc;
}

/* The device view's hypervisor object of id (caller decrefs j). */
static json_t *
hv_view(struct env *e, const char *id, json_t **j)
{
	char path[128];
	long st;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", id);
	*j = client_get_json(e->admin, path, &st);
	return json_object_get(*j, "hypervisor");
}

static const char *
jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "(none)";
}

/* The compliance summary's count of hypervisor keys of one kind, or -1. */
static long
summary_keys(struct env *e, const char *kind)
{
	long st, n;
	json_t *j = client_get_json(e->admin, "/api/v1/devices/summary", &st);
	json_t *v = json_object_get(json_object_get(j, "hypervisor_keys"), kind);

	n = st == 200 && json_is_integer(v) ? (long)json_integer_value(v) : -1;
	json_decref(j);
	return n;
}

/* The enrollment answer's device id and ticket key into sim. 0 or -1. */
static int
enrolled_as(const struct resp *r, struct device_sim *sim)
{
	json_t *j = resp_json(r);
	const char *id = json_string_value(json_object_get(j, "device_id"));
	long n = tdev_member_b64(j, "server_ticket_key", sim->ticket_key, sizeof(sim->ticket_key));
	int rc = id != NULL && n == 32 ? str_copy(sim->id, sizeof(sim->id), id) : -1;

	json_decref(j);
	return rc;
}

static void
tpm_device_enrolls(void)
{
	struct env e;
	struct tdev d;
	struct device_sim sim, other;
	struct tpm_quote q;
	struct resp r = {0};
	uint8_t nonce[32], att[ATTEST_LEN], bad[ATTEST_LEN];
	char issuer[256], verdict[32];
	json_t *j, *hv;

	START(&e, "tpm-enroll", 1, 0);
	CHECK(swtpm_issuer_subject(&e.maker, issuer, sizeof(issuer)) == 0,
	      "the issuing CA's subject");
	CHECK(tdev_open(&d, &e.maker, "hv") == 0 && tdev_measure(&d) == 0, "the device's TPM");
	CHECK(tdev_nonce_req(e.dc, e.tok, tdev_id(&d), &r) == 0, "nonce request");
	CHECK_STATUS(r, 200);
	CHECK(strstr(r.body, "\"nonce\"") == NULL && strstr(r.body, "expires_at") != NULL,
	      "a credential, never the plain nonce: %.300s", r.body);
	CHECK(tdev_activate(&d, &r, nonce) == 0, "the TPM activates the credential");
	resp_free(&r);
	CHECK(tdev_attest(&d, nonce, NULL, att) == 0 && tdev_quote(&d, att, &q) == 0,
	      "attest, quote");
	CHECK(dev_init(&sim) == 0, "device key");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d, att, tdev_evidence(&d, &q, d.log, 2),
			      &r) == 0,
	      "enroll");
	CHECK_STATUS(r, 201);
	CHECK(enrolled_as(&r, &sim) == 0, "device id and ticket key");
	resp_free(&r);

	hv = hv_view(&e, sim.id, &j);
	CHECK(strcmp(jstr(hv, "identity"), "tpm") == 0 &&
		      strcmp(jstr(hv, "endorsement"), "verified") == 0 &&
		      strcmp(jstr(hv, "signature_alg"), "ecdsa-p256-sha256") == 0,
	      "identity tpm, endorsement verified: %s", json_dumps(hv, 0));
	CHECK(strcmp(jstr(hv, "endorsement_ca"), issuer) == 0, "endorsement_ca %s, want %s",
	      jstr(hv, "endorsement_ca"), issuer);
	json_decref(j);
	CHECK(srv_db_int(&e.s, "SELECT count(*) FROM audit WHERE action = 'device.enroll' AND "
			       "outcome = 'ok'") == 1,
	      "the enrollment is audited");
	CHECK(summary_keys(&e, "tpm_endorsed") == 1 && summary_keys(&e, "software") == 0 &&
		      summary_keys(&e, "tpm_unendorsed") == 0,
	      "compliance counts it as hardware-attested");

	/* Its check-ins: attestations signed in the TPM are accepted, a forged one is not. */
	CHECK(tdev_attest(&d, nonce, sim.ticket_key, att) == 0, "a check-in attestation");
	CHECK(checkin_verdict(&e, &sim, att, verdict, sizeof(verdict)) == 0, "check-in");
	CHECK(strcmp(verdict, "ok") == 0, "the TPM-signed attestation is accepted: %s", verdict);
	memcpy(bad, att, ATTEST_LEN);
	bad[ATTEST_BODY_LEN + 5] ^= 1;
	CHECK(checkin_verdict(&e, &sim, bad, verdict, sizeof(verdict)) == 0, "check-in");
	CHECK(strcmp(verdict, "mismatch") == 0, "a changed signature is not: %s", verdict);
	CHECK(checkin_verdict(&e, &sim, att, verdict, sizeof(verdict)) == 0 &&
		      strcmp(verdict, "ok") == 0,
	      "signed again by the TPM: ok (%s)", verdict);

	/* The same nonce again (another device key): used. */
	CHECK(dev_init(&other) == 0, "another device key");
	CHECK(tdev_attest(&d, nonce, NULL, att) == 0 && tdev_quote(&d, att, &q) == 0,
	      "attest, quote");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &other, &d, att, tdev_evidence(&d, &q, d.log, 2),
			      &r) == 0,
	      "replay");
	REFUSED(r, 422, "nonce is unknown, used or expired");
	tdev_close(&d);
	dev_fini(&sim);
	dev_fini(&other);
	env_end(&e);
}

static void
ek_refused(void)
{
	struct env e;
	struct swtpm stranger;
	struct tdev d;
	struct resp r = {0};
	json_t *id;

	START(&e, "tpm-ek", 0, 0);
	/* A TPM of another maker (its own CA, not configured). */
	CHECK(swtpm_make(&stranger, "stranger") == 0 && swtpm_start(&stranger) == 0, "TPM");
	CHECK(tdev_open(&d, &stranger, "hv") == 0, "the stranger's TPM");
	CHECK(tdev_nonce_req(e.dc, e.tok, tdev_id(&d), &r) == 0, "nonce request");
	REFUSED(r, 403, "the TPM's endorsement is not verified");
	tdev_close(&d);
	swtpm_stop(&stranger);

	/* The maker's TPM, with an EK public that is not its certificate's key. */
	CHECK(tdev_open(&d, &e.maker, "hv") == 0, "the maker's TPM");
	d.ek_pub[d.ek_pub_len - 40] ^= 0x10;
	CHECK(tdev_nonce_req(e.dc, e.tok, tdev_id(&d), &r) == 0, "nonce request");
	REFUSED(r, 403, "the TPM's endorsement is not verified");
	/* malformed: an EK public cut short, an unknown member */
	CHECK(tdev_nonce_req(e.dc, e.tok,
			     json_pack("{s:o, s:o, s:o}", "ek_cert",
				       tdev_b64(d.ek_cert, d.ek_cert_len), "ek_public",
				       tdev_b64(d.ek_pub, d.ek_pub_len - 1), "ak_public",
				       tdev_b64(d.ak_pub, d.ak_pub_len)),
			     &r) == 0,
	      "nonce request");
	REFUSED(r, 422, "tpm.ek_public is not a TPM2B_PUBLIC");
	id = tdev_id(&d);
	json_object_set_new(id, "platform_cert", json_string("AAAA"));
	CHECK(tdev_nonce_req(e.dc, e.tok, id, &r) == 0, "nonce request");
	REFUSED(r, 422, "unknown field tpm.platform_cert");
	CHECK(srv_db_int(&e.s, "SELECT count(*) FROM enroll_nonces") == 0, "no nonce was issued");
	CHECK(srv_db_int(&e.s,
			 "SELECT count(*) FROM audit WHERE action = 'device.enroll' AND "
			 "outcome = 'denied' AND detail LIKE '%endorsement is not verified%'") >= 1,
	      "the refusal is audited");
	tdev_close(&d);
	env_end(&e);

	/* A server that trusts no TPM maker says so. */
	START(&e, "tpm-noca", 0, 1);
	CHECK(tdev_open(&d, &e.maker, "hv") == 0, "the maker's TPM");
	CHECK(tdev_nonce_req(e.dc, e.tok, tdev_id(&d), &r) == 0, "nonce request");
	REFUSED(r, 403, "no tpm_ca_file is configured");
	tdev_close(&d);
	env_end(&e);
}

static void
ak_refused(void)
{
	struct env e;
	struct tdev d;
	struct resp r = {0};
	long n;

	if (system("command -v tpm2_create >/dev/null 2>&1") != 0)
		SKIP("tpm2-tools is not installed");
	START(&e, "tpm-ak", 0, 0);
	/* tpm2-tools cannot share swtpm with an open connection: made first */
	n = swtpm_unrestricted_key(&e.maker, d.ak_pub, sizeof(d.ak_pub));
	CHECK(n > 0, "tpm2-tools made a signing key that is not restricted");
	{
		uint8_t key[TPM_PUBLIC_MAX];

		memcpy(key, d.ak_pub, (size_t)n);
		CHECK(tdev_open(&d, &e.maker, "hv") == 0, "the maker's TPM");
		memcpy(d.ak_pub, key, (size_t)n);
		d.ak_pub_len = (size_t)n;
	}
	CHECK(tdev_nonce_req(e.dc, e.tok, tdev_id(&d), &r) == 0, "nonce request");
	REFUSED(r, 403, "lack 0x00010000"); /* restricted */
	/* The real AK with fixedTPM cleared (attributes: bytes 6..9 of the TPM2B_PUBLIC). */
	CHECK(tpm_ak_public(d.tpm, d.ak_pub, sizeof(d.ak_pub), &d.ak_pub_len) == 0, "the AK");
	d.ak_pub[9] &= (uint8_t)~0x02;
	CHECK(tdev_nonce_req(e.dc, e.tok, tdev_id(&d), &r) == 0, "nonce request");
	REFUSED(r, 403, "lack 0x00000002"); /* fixedTPM */
	tdev_close(&d);
	env_end(&e);
}

/* A credential for d's AK, activated: the nonce. 0 or -1. */
static int
tpm_nonce(struct env *e, struct tdev *d, uint8_t nonce[32])
{
	struct resp r = {0};
	int rc = tdev_nonce_req(e->dc, e->tok, tdev_id(d), &r) == 0 && r.status == 200 &&
				 tdev_activate(d, &r, nonce) == 0
			 ? 0
			 : -1;

	if (rc != 0)
		fprintf(stderr, "nonce: HTTP %ld %.300s\n", r.status, r.body ? r.body : "");
	resp_free(&r);
	return rc;
}

static void
nonce_bound(void)
{
	struct env e;
	struct tdev d1, d2, sw;
	struct device_sim sim;
	struct tpm_quote q;
	struct resp r = {0};
	uint8_t nonce[32], plain[32], att[ATTEST_LEN], soft[ATTEST_LEN];
	char b64[64];

	START(&e, "tpm-bound", 0, 0);
	CHECK(dev_init(&sim) == 0, "device key");
	/* AK 1 activates the credential; AK 2 (same TPM) attests and quotes with that nonce. */
	CHECK(tdev_open(&d1, &e.maker, "hv1") == 0 && tdev_measure(&d1) == 0, "AK 1");
	CHECK(tpm_nonce(&e, &d1, nonce) == 0, "AK 1's credential activated");
	tdev_close(&d1);
	CHECK(tdev_open(&d2, &e.maker, "hv2") == 0, "AK 2");
	CHECK(memcmp(d1.hv_key, d2.hv_key, 32) != 0, "two AKs");
	CHECK(tdev_attest(&d2, nonce, NULL, att) == 0 && tdev_quote(&d2, att, &q) == 0, "attest");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d2, att, tdev_evidence(&d2, &q, d2.log, 2),
			      &r) == 0,
	      "enroll");
	REFUSED(r, 403, "credential for another attestation key");

	/* A software key (the simulated hypervisor's Ed25519) with that nonce. */
	dev_attest(&sim, nonce, soft);
	memset(&sw, 0, sizeof(sw));
	ed25519_key_public(sim.hv, sw.hv_key);
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &sw, soft, NULL, &r) == 0, "enroll");
	REFUSED(r, 403, "only that key's attestation and quote enroll with it");

	/* A plain nonce (no credential) for a TPM attestation proves nothing about the TPM. */
	CHECK(tdev_nonce_req(e.dc, e.tok, NULL, &r) == 0 && r.status == 200 &&
		      resp_str(&r, "nonce", b64, sizeof(b64)) == 0 &&
		      b64_decode(plain, sizeof(plain), b64, strlen(b64)) == 32,
	      "a plain nonce");
	resp_free(&r);
	CHECK(tdev_attest(&d2, plain, NULL, att) == 0 && tdev_quote(&d2, att, &q) == 0, "attest");
	CHECK(tdev_enroll_req(e.dc, e.tok, plain, &sim, &d2, att, tdev_evidence(&d2, &q, d2.log, 2),
			      &r) == 0,
	      "enroll");
	REFUSED(r, 403, "issued without a TPM identity");
	CHECK(srv_db_int(&e.s, "SELECT count(*) FROM devices") == 0, "no device enrolled");
	CHECK(srv_db_int(&e.s, "SELECT uses FROM enrollment_tokens") == 0,
	      "the token kept its uses");
	tdev_close(&d2);
	dev_fini(&sim);
	env_end(&e);
}

static void
quote_refused(void)
{
	struct env e;
	struct tdev d1, d2, nospki;
	struct device_sim sim;
	struct tpm_quote q, q_other, q_ak2;
	struct resp r = {0};
	uint8_t nonce[32], att[ATTEST_LEN], other[ATTEST_LEN], owner[32];
	uint8_t(*log)[32];

	START(&e, "tpm-quote", 0, 0);
	CHECK(dev_init(&sim) == 0, "device key");
	CHECK(tdev_open(&d1, &e.maker, "hv1") == 0 && tdev_measure(&d1) == 0, "AK 1");
	log = d1.log;
	CHECK(tpm_nonce(&e, &d1, nonce) == 0, "credential activated");
	CHECK(tdev_attest(&d1, nonce, NULL, att) == 0 && tdev_quote(&d1, att, &q) == 0, "attest");
	memset(owner, 0x42, sizeof(owner));
	CHECK(tdev_attest(&d1, nonce, owner, other) == 0 && tdev_quote(&d1, other, &q_other) == 0,
	      "a quote over another attestation");
	tdev_close(&d1);
	CHECK(tdev_open(&d2, &e.maker, "hv2") == 0 && tdev_quote(&d2, att, &q_ak2) == 0,
	      "AK 2's quote over AK 1's attestation");
	tdev_close(&d2);

	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d1, att, NULL, &r) == 0, "enroll");
	REFUSED(r, 422, "needs its tpm part");
	nospki = d1; /* d1 without its SPKI */
	nospki.spki_len = 0;
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &nospki, att,
			      tdev_evidence(&d1, &q, log, 2), &r) == 0,
	      "enroll");
	REFUSED(r, 422, "needs hypervisor_spki");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d1, att,
			      tdev_evidence(&d1, &q_other, log, 2), &r) == 0,
	      "enroll");
	REFUSED(r, 403, "the TPM quote is refused");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d1, att,
			      tdev_evidence(&d1, &q, log + 1, 1), &r) == 0,
	      "enroll");
	REFUSED(r, 403, "the TPM quote is refused");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d1, att,
			      tdev_evidence(&d1, &q_ak2, log, 2), &r) == 0,
	      "enroll");
	REFUSED(r, 403, "the TPM quote is refused");
	/* the AK of the evidence is AK 2's, the attestation's key AK 1's */
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d1, att,
			      tdev_evidence(&d2, &q_ak2, log, 2), &r) == 0,
	      "enroll");
	REFUSED(r, 403, "hypervisor_spki is not the key of tpm.ak_public");
	CHECK(srv_db_int(&e.s, "SELECT count(*) FROM devices") == 0, "no device enrolled");
	/* the nonce is still good: the right evidence enrolls */
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d1, att, tdev_evidence(&d1, &q, log, 2),
			      &r) == 0,
	      "enroll");
	CHECK_STATUS(r, 201);
	resp_free(&r);
	dev_fini(&sim);
	env_end(&e);
}

static void
log_ends_with_measurement(void)
{
	struct env e;
	struct tdev d;
	struct device_sim sim;
	struct tpm_quote q;
	struct resp r = {0};
	uint8_t nonce[32], other[32], att[ATTEST_LEN], log3[3][32];

	START(&e, "tpm-log", 0, 0);
	CHECK(dev_init(&sim) == 0, "device key");
	/* Something extended after the guest image: the quote replays, but the image is not last. */
	CHECK(tdev_open(&d, &e.maker, "hv") == 0 && tdev_measure(&d) == 0, "the device's TPM");
	memcpy(log3, d.log, sizeof(d.log));
	crypto_sha256("loaded later", 12, log3[2]);
	CHECK(tpm_pcr_extend(d.tpm, log3[2]) == 0, "a third measurement");
	CHECK(tpm_nonce(&e, &d, nonce) == 0, "credential activated");
	CHECK(tdev_attest(&d, nonce, NULL, att) == 0 && tdev_quote(&d, att, &q) == 0, "attest");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d, att, tdev_evidence(&d, &q, log3, 3),
			      &r) == 0,
	      "enroll");
	REFUSED(r, 403, "the last measurement of tpm.pcr_log is not the attestation's");
	/* An attestation over another nonce than the one sent (and quoted for it). */
	memset(other, 0x5c, sizeof(other));
	CHECK(tdev_attest(&d, other, NULL, att) == 0 && tdev_quote(&d, att, &q) == 0, "attest");
	CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d, att, tdev_evidence(&d, &q, log3, 3),
			      &r) == 0,
	      "enroll");
	REFUSED(r, 422, "attestation does not cover the nonce");
	/* Malformed evidence: a log entry that is not 64 hex digits. */
	CHECK(tdev_attest(&d, nonce, NULL, att) == 0 && tdev_quote(&d, att, &q) == 0, "attest");
	{
		json_t *ev = tdev_evidence(&d, &q, log3, 3);

		json_array_set_new(json_object_get(ev, "pcr_log"), 1, json_string("zz"));
		CHECK(tdev_enroll_req(e.dc, e.tok, nonce, &sim, &d, att, ev, &r) == 0, "enroll");
		REFUSED(r, 422, "tpm.pcr_log[1] must be a SHA-256 digest in 64 hex digits");
	}
	CHECK(srv_db_int(&e.s, "SELECT count(*) FROM devices") == 0, "no device enrolled");
	tdev_close(&d);
	dev_fini(&sim);
	env_end(&e);
}

/* One enrollment of the race below: its own connection, device key and evidence. */
struct racer {
	struct env *e;
	struct tdev *d;
	const uint8_t *nonce, *att;
	struct device_sim sim;
	json_t *evidence;
	pthread_barrier_t *go;
	long status;
	char detail[160];
};

static void *
race_enroll(void *arg)
{
	struct racer *x = arg;
	struct client *c = client_new(&x->e->s, NULL);
	struct resp r = {0};

	pthread_barrier_wait(x->go);
	if (c != NULL &&
	    tdev_enroll_req(c, x->e->tok, x->nonce, &x->sim, x->d, x->att, x->evidence, &r) == 0) {
		x->status = r.status;
		snprintf(x->detail, sizeof(x->detail), "%s", r.body ? r.body : "");
	} else if (c == NULL) {
		json_decref(x->evidence);
	}
	resp_free(&r);
	client_free(c);
	return NULL;
}

/* Four device keys enroll at once with one activated nonce: one device, the token used once. */
static void
nonce_race(void)
{
	enum { N = 4 };
	struct env e;
	struct tdev d;
	struct tpm_quote q;
	struct racer x[N];
	pthread_t th[N];
	pthread_barrier_t go;
	uint8_t nonce[32], att[ATTEST_LEN];
	int ok = 0, used = 0;

	START(&e, "tpm-race", 1, 0);
	CHECK(tdev_open(&d, &e.maker, "hv") == 0 && tdev_measure(&d) == 0, "the device's TPM");
	CHECK(tpm_nonce(&e, &d, nonce) == 0, "the credential activated");
	CHECK(tdev_attest(&d, nonce, NULL, att) == 0 && tdev_quote(&d, att, &q) == 0,
	      "attest, quote");
	pthread_barrier_init(&go, NULL, N);
	for (int i = 0; i < N; i++) {
		x[i] = (struct racer){.e = &e, .d = &d, .nonce = nonce, .att = att, .go = &go};
		CHECK(dev_init(&x[i].sim) == 0, "device key %d", i);
		x[i].evidence = tdev_evidence(&d, &q, d.log, 2);
	}
	for (int i = 0; i < N; i++)
		CHECK(pthread_create(&th[i], NULL, race_enroll, &x[i]) == 0, "thread");
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < N; i++) {
		ok += x[i].status == 201;
		used += x[i].status == 422 &&
			strstr(x[i].detail, "nonce is unknown, used or expired") != NULL;
		if (x[i].status != 201 && x[i].status != 422)
			printf("    enrollment %d: HTTP %ld %s\n", i, x[i].status, x[i].detail);
		dev_fini(&x[i].sim);
	}
	CHECK(ok == 1 && used == N - 1, "one enrollment per nonce: %d enrolled, %d refused as used",
	      ok, used);
	CHECK(srv_db_int(&e.s, "SELECT count(*) FROM devices") == 1, "one device");
	CHECK(srv_db_int(&e.s, "SELECT uses FROM enrollment_tokens") == 1,
	      "the token counts one use");
	tdev_close(&d);
	env_end(&e);
}

/* Replaces path's content with src's (a new file renamed over it, as deployment tools do). */
static int
replace_file(const char *path, const char *src_text, const char *src_file)
{
	char tmp[PATH_MAX + 8], cmd[3 * PATH_MAX];

	snprintf(tmp, sizeof(tmp), "%s.new", path);
	if (src_file != NULL)
		snprintf(cmd, sizeof(cmd), "cp '%s' '%s' && mv '%s' '%s'", src_file, tmp, tmp,
			 path);
	else
		snprintf(cmd, sizeof(cmd), "printf '%%s' '%s' > '%s' && mv '%s' '%s'", src_text,
			 tmp, tmp, path);
	return system(cmd) == 0 ? 0 : -1;
}

/* The configured CA file, a copy of the maker's CAs in it, another maker's CAs. */
struct bundles {
	char cas[PATH_MAX + 16], saved[PATH_MAX + 32], other[PATH_MAX + 16];
};

/* Fills b (stranger: the other maker, made but not started). 0 or -1. */
static int
two_bundles(struct env *e, struct swtpm *stranger, struct bundles *b)
{
	char cmd[3 * PATH_MAX];

	if (swtpm_ca_bundle(&e->maker, b->cas, sizeof(b->cas)) != 0)
		return -1;
	snprintf(b->saved, sizeof(b->saved), "%s.saved", b->cas);
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", b->cas, b->saved);
	if (system(cmd) != 0 || swtpm_make(stranger, "stranger") != 0)
		return -1;
	return swtpm_ca_bundle(stranger, b->other, sizeof(b->other));
}

/* HTTP status of a nonce request with d's TPM identity. */
static long
nonce_status(struct env *e, struct tdev *d)
{
	struct resp r = {0};
	long st = tdev_nonce_req(e->dc, e->tok, tdev_id(d), &r) == 0 ? r.status : -1;

	resp_free(&r);
	return st;
}

/*
 * tpm_ca_file is loaded again when it changes (a maker's new CRL needs no restart): replaced by
 * another maker's CAs, the TPM is refused; replaced by a file that does not load, the last good
 * CAs stay (and the log says so); the maker's CAs written back in place, it is accepted again.
 */
static void
ca_file_reloaded(void)
{
	struct env e;
	struct swtpm stranger;
	struct tdev d;
	struct bundles b;
	char cmd[3 * PATH_MAX];
	char *log;

	START(&e, "tpm-reload", 0, 0);
	CHECK(two_bundles(&e, &stranger, &b) == 0, "the maker's and another maker's CAs");
	CHECK(tdev_open(&d, &e.maker, "hv") == 0, "the maker's TPM");
	CHECK(nonce_status(&e, &d) == 200, "the maker's TPM is accepted");

	CHECK(replace_file(b.cas, NULL, b.other) == 0, "the file now holds another maker's CAs");
	CHECK(nonce_status(&e, &d) == 403, "loaded again: the maker's TPM is refused");
	CHECK(replace_file(b.cas, "not a CA file", NULL) == 0, "a file that does not load");
	CHECK(nonce_status(&e, &d) == 403, "the last good CAs stay in use");
	log = file_read_all(e.s.log, 1 << 22, NULL);
	CHECK(log != NULL && strstr(log, "changed but cannot be used") != NULL,
	      "the log says the new file cannot be used");
	free(log);
	CHECK(unlink(b.cas) == 0 && nonce_status(&e, &d) == 403, "removed: the last good CAs stay");
	snprintf(cmd, sizeof(cmd), "cat '%s' > '%s'", b.saved, b.cas); /* a new file again */
	CHECK(system(cmd) == 0, "the maker's CAs written back");
	CHECK(nonce_status(&e, &d) == 200, "accepted again, without a restart");
	tdev_close(&d);
	env_end(&e);
}

/* One of ca_file_swapped: nonce requests until told to stop (at most 2000), counted by status. */
struct asker {
	struct env *e;
	struct tdev *d;
	atomic_int *stop;
	int ok, refused, other;
	long last_other;
};

static void *
ask_nonces(void *arg)
{
	struct asker *a = arg;
	struct client *c = client_new(&a->e->s, NULL);

	for (int i = 0; c != NULL && i < 2000 && !atomic_load(a->stop); i++) {
		struct resp r = {0};
		long st = tdev_nonce_req(c, a->e->tok, tdev_id(a->d), &r) == 0 ? r.status : -1;

		resp_free(&r);
		if (st == 200)
			a->ok++;
		else if (st == 403)
			a->refused++;
		else
			a->other++, a->last_other = st;
		if (st < 0)
			break; /* the server is gone: said once is enough */
	}
	client_free(c);
	return NULL;
}

/*
 * tpm_ca_file swapped 100 times between two makers' CAs while eight clients ask for TPM nonces
 * (eight server threads; no refusal limit):
 * every answer is the one or the other maker's (200 or 403, never an error), the server lives
 * on (and, under make asan, frees each load once, after its last request), and the maker's
 * CAs, put back, are the ones in use.
 */
static void
ca_file_swapped(void)
{
	enum { N = 8, SWAPS = 100 };
	struct env e;
	struct swtpm stranger;
	struct tdev d;
	struct asker a[N];
	pthread_t th[N];
	atomic_int stop = 0;
	struct bundles b;
	int ok = 0, refused = 0, bad = 0, swaps = 0;

	START_WITH(&e, "tpm-swap", 0, 0, "threads = 8\nrefusal_limit = 1000000\n");
	CHECK(two_bundles(&e, &stranger, &b) == 0, "the maker's and another maker's CAs");
	CHECK(tdev_open(&d, &e.maker, "hv") == 0, "the maker's TPM");
	for (int i = 0; i < N; i++) {
		a[i] = (struct asker){.e = &e, .d = &d, .stop = &stop};
		CHECK(pthread_create(&th[i], NULL, ask_nonces, &a[i]) == 0, "thread");
	}
	while (swaps < SWAPS &&
	       replace_file(b.cas, NULL, swaps % 2 == 0 ? b.other : b.saved) == 0) {
		swaps++;
		usleep(5000);
	}
	atomic_store(&stop, 1);
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		ok += a[i].ok;
		refused += a[i].refused;
		bad += a[i].other;
		if (a[i].other > 0)
			printf("    client %d: %d answers neither 200 nor 403 (the last: %ld)\n", i,
			       a[i].other, a[i].last_other);
	}
	printf("    %d accepted, %d refused over %d swaps\n", ok, refused, swaps);
	CHECK(swaps == SWAPS, "only %d of %d swaps of the file", swaps, SWAPS);
	CHECK(bad == 0 && ok > 0 && refused > 0, "every answer is one maker's or the other's");
	CHECK(replace_file(b.cas, NULL, b.saved) == 0 && nonce_status(&e, &d) == 200,
	      "the maker's CAs put back are in use");
	tdev_close(&d);
	env_end(&e);
}

static const struct t_case tpm_enroll_cases[] = {
	{"tpm_device_enrolls", tpm_device_enrolls},
	{"ek_refused", ek_refused},
	{"ak_refused", ak_refused},
	{"nonce_bound", nonce_bound},
	{"nonce_race", nonce_race},
	{"ca_file_reloaded", ca_file_reloaded},
	{"ca_file_swapped", ca_file_swapped},
	{"quote_refused", quote_refused},
	{"log_ends_with_measurement", log_ends_with_measurement},
};

#ifndef TEST_TPM_ENROLL_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(tpm_enroll_cases, ARRAY_SIZE(tpm_enroll_cases), argc, argv);
}
#endif

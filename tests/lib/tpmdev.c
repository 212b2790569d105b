/* A device's hypervisor half on a TPM, for tests: see tpmdev.h. */
#include "tpmdev.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "crypto.h"
#include "util.h"

static struct tdev *open_dev; /* the one open device: a CHECK that returned may leave it */

void
tdev_close_any(void)
{
	if (open_dev != NULL)
		tdev_close(open_dev);
}

void
tdev_close(struct tdev *d)
{
	tpm_close(d->tpm);
	d->tpm = NULL;
	if (open_dev == d)
		open_dev = NULL;
}

/* Opens t with the AK kept in t's directory ak (made there the first time). 0 or -1. */
int
tdev_open(struct tdev *d, const struct swtpm *t, const char *ak)
{
	char path[PATH_MAX + 32];
	int dirfd, r;

	if (open_dev != NULL)
		tdev_close(open_dev);
	memset(d, 0, sizeof(*d));
	snprintf(path, sizeof(path), "%s/%s", t->dir, ak);
	if ((mkdir(path, 0700) != 0 && errno != EEXIST) ||
	    (dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return -1;
	r = tpm_open(t->tcti, &d->tpm);
	open_dev = r == 0 ? d : NULL;
	if (r == 0)
		r = tpm_ak_init(d->tpm, dirfd);
	close(dirfd);
	if (r == 0)
		r = tpm_ek_public(d->tpm, d->ek_pub, sizeof(d->ek_pub), &d->ek_pub_len);
	if (r == 0)
		r = tpm_ek_cert(d->tpm, d->ek_cert, sizeof(d->ek_cert), &d->ek_cert_len);
	if (r == 0)
		r = tpm_ak_public(d->tpm, d->ak_pub, sizeof(d->ak_pub), &d->ak_pub_len);
	if (r == 0)
		r = tpm_ak_spki(d->tpm, d->spki, sizeof(d->spki), &d->spki_len);
	if (r != 0)
		return -1;
	crypto_sha256(d->spki, d->spki_len, d->hv_key);
	crypto_sha256("test vm config", 14, d->log[0]);
	crypto_sha256("test guest image", 16, d->log[1]);
	return 0;
}

/* What cleave-hv does before the first vCPU runs: extends PCR 23 with the config and image. */
int
tdev_measure(struct tdev *d)
{
	return tpm_pcr_extend(d->tpm, d->log[0]) == 0 && tpm_pcr_extend(d->tpm, d->log[1]) == 0
		       ? 0
		       : -1;
}

json_t *
tdev_b64(const void *p, size_t n)
{
	char buf[8192];

	return b64_encode(buf, sizeof(buf), p, n) < 0 ? json_null() : json_string(buf);
}

/* POSTs j (consumed) to path. 0 or -1 (transport). */
int
tdev_post(struct client *c, const char *path, json_t *j, struct resp *r)
{
	char *body = json_dumps(j, JSON_COMPACT);
	int rc = body != NULL ? client_req(c, "POST", path, body, NULL, r) : -1;

	free(body);
	json_decref(j);
	return rc;
}

/* The nonce request: tpm is the identity member (consumed), NULL for a plain nonce. */
int
tdev_nonce_req(struct client *c, const char *tok, json_t *tpm, struct resp *r)
{
	json_t *j = json_pack("{s:s}", "enrollment_token", tok);

	if (tpm != NULL)
		json_object_set_new(j, "tpm", tpm);
	return tdev_post(c, "/device/v1/enroll/nonce", j, r);
}

json_t *
tdev_id(const struct tdev *d)
{
	return json_pack("{s:o, s:o, s:o}", "ek_cert", tdev_b64(d->ek_cert, d->ek_cert_len),
			 "ek_public", tdev_b64(d->ek_pub, d->ek_pub_len), "ak_public",
			 tdev_b64(d->ak_pub, d->ak_pub_len));
}

/* Decodes base64 member name of j into out; its length, or -1. */
long
tdev_member_b64(json_t *j, const char *name, uint8_t *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(j, name));

	return s != NULL ? b64_decode(out, cap, s, strlen(s)) : -1;
}

/* Activates the credential of a nonce answer in d's TPM: the nonce. 0 or -1. */
int
tdev_activate(struct tdev *d, const struct resp *r, uint8_t nonce[32])
{
	uint8_t blob[TPM_CRED_MAX], secret[TPM_CRED_MAX], out[TPM_SECRET_MAX];
	json_t *j = resp_json(r), *cred = json_object_get(j, "credential");
	long nb = tdev_member_b64(cred, "blob", blob, sizeof(blob));
	long ns = tdev_member_b64(cred, "secret", secret, sizeof(secret));
	size_t len = 0;
	int rc = -1;

	if (nb > 0 && ns > 0 && json_object_get(j, "nonce") == NULL &&
	    tpm_activate(d->tpm, blob, (size_t)nb, secret, (size_t)ns, out, sizeof(out), &len) ==
		    0 &&
	    len == 32) {
		memcpy(nonce, out, 32);
		rc = 0;
	}
	json_decref(j);
	return rc;
}

/* A v3 attestation over nonce signed by d's AK; owner is the pinned server key (or zeros). */
int
tdev_attest(struct tdev *d, const uint8_t nonce[32], const uint8_t owner[32],
	    uint8_t out[ATTEST_LEN])
{
	struct attestation a;

	memset(&a, 0, sizeof(a));
	a.state = HV_STATE_ACTIVE;
	memcpy(a.nonce, nonce, 32);
	memcpy(a.hv_key, d->hv_key, 32);
	memcpy(a.measurement, d->log[1], 32);
	if (owner != NULL)
		memcpy(a.owner_key, owner, 32);
	a.key_epoch = 1;
	a.time_ms = (uint64_t)time(NULL) * 1000;
	a.sig_alg = WIRE_SIG_ECDSA_P256;
	if (attest_encode(&a, out) != 0)
		return -1;
	return tpm_sign(d->tpm, out, ATTEST_BODY_LEN, out + ATTEST_BODY_LEN) == 0 ? 0 : -1;
}

/* d's quote over PCR 23 for the attestation body att (qualifying data as TPM.md §3). */
int
tdev_quote(struct tdev *d, const uint8_t *att, struct tpm_quote *q)
{
	const void *parts[2] = {WIRE_QUOTE_LABEL, att};
	const size_t lens[2] = {strlen(WIRE_QUOTE_LABEL), ATTEST_BODY_LEN};
	uint8_t qual[32];

	crypto_sha256_parts(parts, lens, 2, qual);
	return tpm_quote(d->tpm, qual, sizeof(qual), q) == 0 ? 0 : -1;
}

/* The enrollment's tpm member: ak_public of d, the quote q, the first n entries of the log. */
json_t *
tdev_evidence(const struct tdev *d, const struct tpm_quote *q, uint8_t (*log)[32], size_t n)
{
	json_t *arr = json_array();
	char hex[65];

	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", log[i][k]);
		json_array_append_new(arr, json_string(hex));
	}
	return json_pack("{s:o, s:o, s:o, s:o}", "ak_public", tdev_b64(d->ak_pub, d->ak_pub_len),
			 "quote", tdev_b64(q->attest, q->attest_len), "quote_sig",
			 tdev_b64(q->sig, q->sig_len), "pcr_log", arr);
}

/*
 * POST /device/v1/enroll: the simulated device's key, d's hv_key and spki (spki NULL: d's),
 * the attestation att, tpm the evidence (consumed; NULL: none).
 */
int
tdev_enroll_req(struct client *c, const char *tok, const uint8_t nonce[32], struct device_sim *sim,
		const struct tdev *d, const uint8_t *att, json_t *tpm, struct resp *r)
{
	uint8_t dkey[32];
	json_t *j;

	ed25519_key_public(sim->key, dkey);
	j = json_pack("{s:s, s:o, s:o, s:o, s:o, s:o, s:{s:s, s:s, s:s}}", "enrollment_token", tok,
		      "nonce", tdev_b64(nonce, 32), "device_key", tdev_b64(dkey, 32),
		      "hypervisor_key", tdev_b64(d->hv_key, 32), "hypervisor_spki",
		      tdev_b64(d->spki, d->spki_len), "attestation", tdev_b64(att, ATTEST_LEN),
		      "inventory", "model", "ThinkPad X1", "os", "Linux", "agent_version", "0.1.0");
	if (tpm != NULL)
		json_object_set_new(j, "tpm", tpm);
	return tdev_post(c, "/device/v1/enroll", j, r);
}

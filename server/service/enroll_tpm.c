/*
 * Enrollment of a device whose hypervisor key lives in a TPM (hypercall-bridge/TPM.md §3). At
 * the nonce: the EK certificate must chain to a manufacturer CA the admin configured, the EK
 * public the device sent must be that certificate's key, and the AK must be a key the TPM keeps
 * to itself (tpm_ak_check); the nonce then leaves only as a credential encrypted to the EK and
 * bound to the AK's name, so only that TPM with that AK loaded recovers it. At enrollment: a
 * quote by the same AK over PCR 23 whose qualifying data covers the attestation, the PCR replayed
 * from the device's log whose last entry is the attestation's measurement, and the AK's SPKI the
 * key the attestation was verified with. That the nonce was issued for this AK is checked where
 * the nonce is taken (enroll.c), inside the enrollment's transaction. tpm_ca_file is loaded
 * again when it changes, so a maker's new CRL takes effect without a restart.
 */
#include "service_priv.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "crypto.h"
#include "hvsig.h"
#include "log.h"
#include "tpm_verify.h"
#include "wire.h"

/* One load of tpm_ca_file, and how many requests are verifying with it. */
struct ca_gen {
	struct tpm_ca *ca;
	int refs;
};

/*
 * tpm_ca_file as last loaded. The file is looked at (stat) at each TPM nonce request: when it
 * was replaced or rewritten (a maker's new CRL, a new maker), it is loaded again, and requests
 * still verifying with the previous load keep it until they are done. A file that no longer
 * loads leaves the previous CAs in use, said once in the log.
 */
struct svc_tpm_cas {
	pthread_mutex_t mu;
	struct ca_gen *cur;
	struct stat seen; /* the file when last looked at and found changed (or loaded) */
};

static struct ca_gen *
gen_load(const char *path, char *why, size_t cap)
{
	struct ca_gen *g = calloc(1, sizeof(*g));

	if (g == NULL) {
		snprintf(why, cap, "out of memory");
		return NULL;
	}
	if ((g->ca = tpm_ca_load(path, why, cap)) == NULL) {
		free(g);
		return NULL;
	}
	return g;
}

static void
gen_free(struct ca_gen *g)
{
	if (g != NULL) {
		tpm_ca_free(g->ca);
		free(g);
	}
}

int
svc_tpm_ca_init(struct service *s)
{
	struct svc_tpm_cas *c;
	char why[256] = "";

	if (s->cfg.tpm_ca_file == NULL || s->cfg.tpm_ca_file[0] == '\0')
		return 0;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return -ENOMEM;
	if (stat(s->cfg.tpm_ca_file, &c->seen) != 0 ||
	    (c->cur = gen_load(s->cfg.tpm_ca_file, why, sizeof(why))) == NULL) {
		log_err("tpm_ca_file %s: %s", s->cfg.tpm_ca_file, why[0] ? why : strerror(errno));
		free(c);
		return -EINVAL;
	}
	pthread_mutex_init(&c->mu, NULL);
	s->tpm_cas = c;
	return 0;
}

void
svc_tpm_ca_free(struct service *s)
{
	if (s->tpm_cas == NULL)
		return;
	gen_free(s->tpm_cas->cur);
	pthread_mutex_destroy(&s->tpm_cas->mu);
	free(s->tpm_cas);
	s->tpm_cas = NULL;
}

static int
same_file(const struct stat *a, const struct stat *b)
{
	return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The current load of tpm_ca_file (loaded again first if the file changed), held for the caller. */
static struct ca_gen *
ca_get(struct service *s)
{
	struct svc_tpm_cas *c = s->tpm_cas;
	struct ca_gen *g;
	struct stat st;
	char why[256] = "";

	pthread_mutex_lock(&c->mu);
	if (stat(s->cfg.tpm_ca_file, &st) != 0)
		memset(&st, 0, sizeof(st)); /* gone: said once, the loaded CAs stay */
	if (!same_file(&st, &c->seen)) {
		c->seen = st;
		if (st.st_ino != 0 &&
		    (g = gen_load(s->cfg.tpm_ca_file, why, sizeof(why))) != NULL) {
			if (c->cur->refs == 0)
				gen_free(c->cur);
			c->cur = g; /* a previous load still in use is freed by its last ca_put */
			log_info("tpm_ca_file %s changed: loaded again", s->cfg.tpm_ca_file);
		} else {
			log_err("tpm_ca_file %s changed but cannot be used (%s): the CAs loaded "
				"before stay in use",
				s->cfg.tpm_ca_file, why[0] ? why : "it cannot be read");
		}
	}
	g = c->cur;
	g->refs++;
	pthread_mutex_unlock(&c->mu);
	return g;
}

static void
ca_put(struct service *s, struct ca_gen *g)
{
	struct svc_tpm_cas *c = s->tpm_cas;

	pthread_mutex_lock(&c->mu);
	if (--g->refs == 0 && g != c->cur)
		gen_free(g);
	pthread_mutex_unlock(&c->mu);
}

/* Decodes a TPM2B_PUBLIC the device sent as field; a refusal names the field. */
static int
public_decode(const uint8_t *buf, size_t len, const char *field, struct tpm_public *out,
	      struct svc_error *err)
{
	char why[160] = "";

	if (buf == NULL || len == 0 || len > SVC_TPM_PUBLIC_MAX ||
	    tpm_public_decode(buf, len, out, why, sizeof(why)) != 0)
		return svc_fail(err, SVC_INVALID, "%s is not a TPM2B_PUBLIC: %s", field,
				why[0] ? why : "empty or too long");
	return 0;
}

int
svc_tpm_credential(struct service *s, const struct enroll_tpm_id *id, const uint8_t nonce[32],
		   struct enroll_nonce *n, struct enroll_credential *cred, struct svc_error *err)
{
	struct tpm_public ek, ak;
	struct tpm_ek_info info;
	struct ca_gen *gen;
	char why[256] = "";
	int r;

	if (s->tpm_cas == NULL)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"this server trusts no TPM manufacturer (no tpm_ca_file is "
				"configured), so it cannot verify a TPM's endorsement; ask for a "
				"nonce without tpm, or have the admin configure the CAs");
	if (id->ek_cert_len == 0 || id->ek_cert_len > SVC_TPM_CERT_MAX)
		return svc_fail(err, SVC_INVALID,
				"tpm.ek_cert must be a DER certificate of at "
				"most 4096 bytes");
	r = public_decode(id->ek_public, id->ek_public_len, "tpm.ek_public", &ek, err);
	if (r == 0)
		r = public_decode(id->ak_public, id->ak_public_len, "tpm.ak_public", &ak, err);
	if (r != 0)
		return r;
	gen = ca_get(s);
	r = tpm_ek_verify(gen->ca, id->ek_cert, id->ek_cert_len, &ek, &info, why, sizeof(why));
	ca_put(s, gen);
	if (r != 0)
		return svc_fail(err, SVC_ENROLL_DENIED, "the TPM's endorsement is not verified: %s",
				why);
	if (tpm_ak_check(&ak, why, sizeof(why)) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"tpm.ak_public is not a key the hypervisor may use: %s", why);
	r = tpm_make_credential(&ek, ak.name, ak.name_len, nonce, 32, cred->blob,
				sizeof(cred->blob), &cred->blob_len, cred->secret,
				sizeof(cred->secret), &cred->secret_len, why, sizeof(why));
	if (r == -ENOTSUP || r == -EINVAL || r == -EBADMSG)
		return svc_fail(err, SVC_INVALID, "no credential can be made for this EK: %s", why);
	if (r != 0 || ak.name_len > sizeof(n->ak_name))
		return svc_fail(err, SVC_INTERNAL, "credential: %s", why);
	memcpy(n->ak_name, ak.name, ak.name_len);
	n->ak_name_len = ak.name_len;
	str_copy(n->ek_issuer, sizeof(n->ek_issuer), info.issuer);
	return 0;
}

/* The quote's qualifying data: SHA-256(WIRE_QUOTE_LABEL || attestation body). */
static void
quote_qualifying(const uint8_t *attestation, uint8_t out[32])
{
	const void *parts[2] = {WIRE_QUOTE_LABEL, attestation};
	const size_t lens[2] = {sizeof(WIRE_QUOTE_LABEL) - 1, ATTEST_BODY_LEN};

	crypto_sha256_parts(parts, lens, 2, out);
}

int
svc_tpm_evidence_ok(const struct enroll_request *rq, const struct attestation *a,
		    uint8_t ak_name[STORE_AK_NAME_MAX], uint16_t *ak_name_len,
		    struct svc_error *err)
{
	const struct enroll_tpm_evidence *t = rq->tpm;
	struct tpm_public ak;
	uint8_t qual[32], spki[HVSIG_SPKI_MAX];
	size_t spki_len = 0;
	char why[256] = "";
	int r;

	if (a->sig_alg == WIRE_SIG_ED25519)
		return t == NULL ? 0
				 : svc_fail(err, SVC_INVALID,
					    "tpm goes with an attestation signed by a TPM (version "
					    "3); this one is signed by a software key");
	if (t == NULL)
		return svc_fail(err, SVC_INVALID,
				"the attestation is signed by a TPM key (version 3): enrollment "
				"needs its tpm part (ak_public, quote, quote_sig, pcr_log)");
	r = public_decode(t->ak_public, t->ak_public_len, "tpm.ak_public", &ak, err);
	if (r != 0)
		return r;
	if (tpm_ak_check(&ak, why, sizeof(why)) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"tpm.ak_public is not a key the hypervisor may use: %s", why);
	if (tpm_public_spki(&ak, spki, sizeof(spki), &spki_len, why, sizeof(why)) != 0 ||
	    spki_len != rq->hv_spki_len || memcmp(spki, rq->hv_spki, spki_len) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"hypervisor_spki is not the key of tpm.ak_public");
	if (t->pcr_log_n == 0 || t->pcr_log_n > SVC_PCR_LOG_MAX)
		return svc_fail(err, SVC_INVALID, "tpm.pcr_log must list 1 to %d measurements",
				SVC_PCR_LOG_MAX);
	quote_qualifying(rq->attestation, qual);
	r = tpm_quote_check(&ak, t->quote, t->quote_len, t->quote_sig, t->quote_sig_len, qual,
			    sizeof(qual), t->pcr_log, t->pcr_log_n, NULL, why, sizeof(why));
	if (r != 0)
		return svc_fail(err, SVC_ENROLL_DENIED, "the TPM quote is refused: %s", why);
	if (memcmp(t->pcr_log[t->pcr_log_n - 1], a->measurement, 32) != 0)
		return svc_fail(err, SVC_ENROLL_DENIED,
				"the last measurement of tpm.pcr_log is not the attestation's");
	memcpy(ak_name, ak.name, ak.name_len);
	*ak_name_len = ak.name_len;
	return 0;
}

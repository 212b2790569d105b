/*
 * cleave-hv's TPM layer (hypercall-bridge/hv/tpm*.c, TPM.md §2-§5) against a manufactured swtpm
 * per case (tests/lib/swtpmtest.h). Everything the layer returns is checked by someone else:
 * OpenSSL verifies the AK's signatures and quotes and compares the EK with its certificate,
 * tpm2-tools' software tpm2_makecredential makes the credential the TPM must activate, and the
 * sealed root key is tried after a wipe, past its deadline and from a kept copy. Every case ends
 * with no transient object left in the TPM beyond the ones the open handle holds, and no session.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "durable.h"
#include "swtpmtest.h"
#include "testlib.h"
#include "tpm_int.h"

#define MAKECRED "tpm2_makecredential"

/* Manufactures and starts a TPM, opens it. Skips the case when swtpm cannot run here. */
#define OPEN_TPM(s, tag, t)                                                                        \
	do {                                                                                       \
		if (swtpm_skip_reason() != NULL)                                                   \
			SKIP("%s", swtpm_skip_reason());                                           \
		CHECK(swtpm_make((s), (tag)) == 0, "manufacture a TPM");                           \
		CHECK(swtpm_start(s) == 0, "start it");                                            \
		CHECK(tpm_open((s)->tcti, (t)) == 0, "tpm_open %s", (s)->tcti);                    \
	} while (0)

/* A private state directory for cleave-hv inside the TPM's directory (removed with it). */
static int
hv_dir(const struct swtpm *s, const char *name)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", s->dir, name);
	if (mkdir(path, 0700) != 0 && errno != EEXIST)
		return -1;
	return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/* Loaded sessions (HMAC and policy): a leaked one would soon exhaust the TPM's few slots. */
static unsigned
sessions(struct tpm *t)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	unsigned n = 99;

	if (Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
			       0x02000000u, TPM2_MAX_CAP_HANDLES, &more, &cap) == 0)
		n = cap->data.handles.count;
	Esys_Free(cap);
	return n;
}

/* Transient objects loaded now, or 99 when that cannot be read or a session is left over. */
static unsigned
transients(struct tpm *t)
{
	unsigned n = 0;

	if (sessions(t) != 0)
		return 99;
	return tpm_transient_count(t, &n) == 0 ? n : 99;
}

/* Verifies sig (r || s) over msg with the P-256 key spki (DER), ECDSA with SHA-256. 1 if valid. */
static int
verify_p256(const uint8_t *spki, size_t spki_len, const void *msg, size_t len, const uint8_t *sig)
{
	const unsigned char *p = spki;
	EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)spki_len);
	ECDSA_SIG *es = ECDSA_SIG_new();
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80], *q = der;
	int ok = 0, n;

	if (key == NULL || es == NULL || md == NULL ||
	    ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)) != 1)
		goto out;
	n = i2d_ECDSA_SIG(es, &q);
	ok = n > 0 && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
	     EVP_DigestVerify(md, der, (size_t)n, msg, len) == 1;
	ok = ok && EVP_PKEY_get_bits(key) == 256 && EVP_PKEY_is_a(key, "EC");
out:
	EVP_MD_CTX_free(md);
	ECDSA_SIG_free(es);
	EVP_PKEY_free(key);
	return ok;
}

static int
write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f != NULL && fwrite(p, 1, n, f) == n;

	return (f != NULL && fclose(f) == 0 && ok) ? 0 : -1;
}

static long
read_file(const char *path, uint8_t *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return (long)n;
}

static void
tpm_open_refused(void)
{
	struct tpm *t = NULL;

	CHECK(tpm_open("swtpm:host=127.0.0.1,port=1", &t) < 0 && t == NULL,
	      "nothing listening: a clear error, no handle");
	CHECK(tpm_open("no-such-tcti-module", &t) < 0 && t == NULL, "an unknown TCTI: an error");
}

/* The EK's public area is the key of the manufacturer's certificate: the template is right. */
static void
tpm_ek_and_certificate(void)
{
	struct swtpm s;
	struct tpm *t;
	static uint8_t pub[TPM_PUBLIC_MAX], cert[TPM_CERT_MAX];
	size_t pub_len = 0, cert_len = 0, off = 0;
	TPM2B_PUBLIC ek = {0};
	const unsigned char *p = cert;
	X509 *x;
	BIGNUM *n = NULL, *ours;

	OPEN_TPM(&s, "ek", &t);
	CHECK(transients(t) == 1, "only the SRK is loaded after tpm_open");
	CHECK(tpm_ek_public(t, pub, sizeof(pub), &pub_len) == 0, "EK public");
	CHECK(Tss2_MU_TPM2B_PUBLIC_Unmarshal(pub, pub_len, &off, &ek) == 0 && off == pub_len,
	      "a marshalled TPM2B_PUBLIC");
	CHECK(ek.publicArea.type == TPM2_ALG_RSA &&
		      ek.publicArea.parameters.rsaDetail.keyBits == 2048,
	      "RSA 2048");
	CHECK(tpm_ek_cert(t, cert, sizeof(cert), &cert_len) == 0 && cert_len > 300,
	      "EK certificate read from NV (%zu bytes)", cert_len);
	x = d2i_X509(NULL, &p, (long)cert_len);
	CHECK(x != NULL && p == cert + cert_len, "the certificate is one X.509 DER structure");
	CHECK(EVP_PKEY_get_bn_param(X509_get0_pubkey(x), "n", &n) == 1, "its RSA modulus");
	ours = BN_bin2bn(ek.publicArea.unique.rsa.buffer, ek.publicArea.unique.rsa.size, NULL);
	CHECK(BN_cmp(n, ours) == 0, "the EK (template L-1) is the certificate's key");
	BN_free(n);
	BN_free(ours);
	X509_free(x);
	CHECK(tpm_ek_cert(t, cert, 100, &cert_len) == -EMSGSIZE, "a short buffer: -EMSGSIZE");
	CHECK(transients(t) == 1, "the EK was flushed");
	tpm_close(t);
	swtpm_stop(&s);
}

/* Creates the AK in a fresh state directory; fills its SPKI (91 bytes for P-256). 0 or -1. */
static int
ak_setup(struct tpm *t, int dirfd, uint8_t *spki, size_t *spki_len)
{
	if (tpm_ak_init(t, dirfd) != 0 || tpm_ak_spki(t, spki, TPM_SPKI_MAX, spki_len) != 0)
		return -1;
	return *spki_len == 91 ? 0 : -1;
}

static void
tpm_ak_sign_and_reload(void)
{
	struct swtpm s;
	struct tpm *t;
	uint8_t spki[TPM_SPKI_MAX], spki2[TPM_SPKI_MAX], sig[TPM_SIG_LEN], name[TPM_NAME_LEN];
	uint8_t pub[TPM_PUBLIC_MAX], body[256], h[32], gen[8] = {0xff, 0x54, 0x43, 0x47};
	size_t spki_len, spki2_len, pub_len;
	struct stat st;
	int dirfd;

	OPEN_TPM(&s, "ak", &t);
	CHECK((dirfd = hv_dir(&s, "hv")) >= 0, "state directory");
	CHECK(tpm_sign(t, "x", 1, sig) == -ENOKEY, "no signing before the AK is loaded");
	CHECK(ak_setup(t, dirfd, spki, &spki_len) == 0, "AK created, its SubjectPublicKeyInfo");
	CHECK(fstatat(dirfd, TPM_AK_BLOB_NAME, &st, 0) == 0 && (st.st_mode & 0777) == 0600,
	      "the AK blob is in the state directory, mode 0600");
	CHECK(tpm_ak_public(t, pub, sizeof(pub), &pub_len) == 0 && pub_len > 2, "AK public");
	CHECK(tpm_ak_name(t, name) == 0, "AK name");
	SHA256(pub + 2, pub_len - 2, h); /* the TPMT_PUBLIC inside the TPM2B */
	CHECK(name[0] == 0x00 && name[1] == 0x0b && memcmp(name + 2, h, 32) == 0,
	      "name = 0x000b || SHA-256(TPMT_PUBLIC)");
	RAND_bytes(body, sizeof(body));
	body[0] = 'C';
	CHECK(tpm_sign(t, body, sizeof(body), sig) == 0, "sign a 256-byte body");
	CHECK(verify_p256(spki, spki_len, body, sizeof(body), sig), "OpenSSL: ECDSA P-256/SHA-256");
	body[100] ^= 1;
	CHECK(!verify_p256(spki, spki_len, body, sizeof(body), sig), "a changed body fails");
	CHECK(tpm_sign(t, gen, sizeof(gen), sig) == -EINVAL, "no TPM_GENERATED_VALUE bodies");
	CHECK(transients(t) == 2, "SRK and AK only");
	tpm_close(t);

	CHECK(tpm_open(s.tcti, &t) == 0, "open again (a later start)");
	CHECK(tpm_ak_init(t, dirfd) == 0, "the AK loads from its blob");
	CHECK(tpm_ak_spki(t, spki2, sizeof(spki2), &spki2_len) == 0 && spki2_len == spki_len &&
		      memcmp(spki, spki2, spki_len) == 0,
	      "the same key as before");
	CHECK(tpm_sign(t, body, sizeof(body), sig) == 0 &&
		      verify_p256(spki, spki_len, body, sizeof(body), sig),
	      "and it still signs");
	tpm_close(t);
	close(dirfd);
	swtpm_stop(&s);
}

/* The TPMT_SIGNATURE of a quote as r || s. */
static int
quote_sig_rs(const struct tpm_quote *q, uint8_t rs[64])
{
	TPMT_SIGNATURE sig = {0};
	size_t off = 0;
	const TPM2B_ECC_PARAMETER *r = &sig.signature.ecdsa.signatureR,
				  *s = &sig.signature.ecdsa.signatureS;

	if (Tss2_MU_TPMT_SIGNATURE_Unmarshal(q->sig, q->sig_len, &off, &sig) != 0 ||
	    off != q->sig_len || sig.sigAlg != TPM2_ALG_ECDSA || r->size > 32 || s->size > 32)
		return -1;
	memset(rs, 0, 64);
	memcpy(rs + 32 - r->size, r->buffer, r->size);
	memcpy(rs + 64 - s->size, s->buffer, s->size);
	return 0;
}

static void
tpm_pcr_and_quote(void)
{
	struct swtpm s;
	struct tpm *t;
	uint8_t spki[TPM_SPKI_MAX], before[32], after[32], d[32], cat[64], want[32], rs[64];
	uint8_t qual[32];
	static struct tpm_quote q;
	TPMS_ATTEST a = {0};
	size_t spki_len, off = 0;
	int dirfd;

	OPEN_TPM(&s, "quote", &t);
	CHECK((dirfd = hv_dir(&s, "hv")) >= 0, "state directory");
	CHECK(ak_setup(t, dirfd, spki, &spki_len) == 0, "AK created, its SubjectPublicKeyInfo");
	CHECK(tpm_pcr_read(t, before) == 0, "read PCR 23");
	RAND_bytes(d, sizeof(d));
	CHECK(tpm_pcr_extend(t, d) == 0, "extend PCR 23");
	CHECK(tpm_pcr_read(t, after) == 0, "read it again");
	memcpy(cat, before, 32);
	memcpy(cat + 32, d, 32);
	SHA256(cat, sizeof(cat), want);
	CHECK(memcmp(after, want, 32) == 0, "PCR 23 = SHA-256(old || digest)");

	RAND_bytes(qual, sizeof(qual));
	CHECK(tpm_quote(t, qual, sizeof(qual), &q) == 0, "quote PCR 23");
	CHECK(Tss2_MU_TPMS_ATTEST_Unmarshal(q.attest, q.attest_len, &off, &a) == 0 &&
		      off == q.attest_len,
	      "a TPMS_ATTEST");
	CHECK(a.magic == TPM2_GENERATED_VALUE && a.type == TPM2_ST_ATTEST_QUOTE, "magic, type");
	CHECK(a.extraData.size == 32 && memcmp(a.extraData.buffer, qual, 32) == 0,
	      "qualifying data carried");
	SHA256(after, 32, want);
	CHECK(a.attested.quote.pcrDigest.size == 32 &&
		      memcmp(a.attested.quote.pcrDigest.buffer, want, 32) == 0,
	      "pcrDigest = SHA-256(PCR 23)");
	CHECK(quote_sig_rs(&q, rs) == 0, "an ECDSA TPMT_SIGNATURE");
	CHECK(verify_p256(spki, spki_len, q.attest, q.attest_len, rs),
	      "OpenSSL verifies the quote with the AK");
	CHECK(tpm_quote(t, qual, 65, &q) == -EINVAL, "qualifying data over 64 bytes refused");
	CHECK(transients(t) == 2, "SRK and AK only");
	tpm_close(t);
	close(dirfd);
	swtpm_stop(&s);
}

/* tpm2_makecredential in software: secret for the AK name, encrypted to ek_pub. */
static int
make_credential(const struct swtpm *s, const uint8_t *ek_pub, size_t ek_len,
		const uint8_t name[TPM_NAME_LEN], const uint8_t *secret, size_t slen, uint8_t *blob,
		size_t *blob_len, uint8_t *enc, size_t *enc_len)
{
	char ek[PATH_MAX + 16], sec[PATH_MAX + 16], out[PATH_MAX + 16], cmd[4 * PATH_MAX + 128];
	char hex[2 * TPM_NAME_LEN + 1];
	static uint8_t buf[4096];
	TPM2B_ID_OBJECT id = {0};
	size_t off = 8;
	long n;

	for (int i = 0; i < TPM_NAME_LEN; i++)
		snprintf(hex + 2 * i, 3, "%02x", name[i]);
	snprintf(ek, sizeof(ek), "%s/ek.pub", s->dir);
	snprintf(sec, sizeof(sec), "%s/secret", s->dir);
	snprintf(out, sizeof(out), "%s/cred", s->dir);
	if (write_file(ek, ek_pub, ek_len) != 0 || write_file(sec, secret, slen) != 0)
		return -1;
	snprintf(cmd, sizeof(cmd), MAKECRED " --tcti none -u '%s' -s '%s' -n %s -o '%s' >/dev/null",
		 ek, sec, hex, out);
	if (system(cmd) != 0 || (n = read_file(out, buf, sizeof(buf))) <= 8)
		return -1;
	/* tpm2-tools' file: magic 0xbadcc0de, version, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
	if (buf[0] != 0xba || buf[1] != 0xdc || buf[2] != 0xc0 || buf[3] != 0xde ||
	    Tss2_MU_TPM2B_ID_OBJECT_Unmarshal(buf, (size_t)n, &off, &id) != 0)
		return -1;
	*blob_len = off - 8;
	memcpy(blob, buf + 8, *blob_len);
	*enc_len = (size_t)n - off;
	memcpy(enc, buf + off, *enc_len);
	return 0;
}

static void
tpm_activate_credential(void)
{
	struct swtpm s, o;
	struct tpm *t, *other;
	static uint8_t ek[TPM_PUBLIC_MAX], oek[TPM_PUBLIC_MAX], blob[TPM_CRED_MAX],
		enc[TPM_CRED_MAX];
	uint8_t spki[TPM_SPKI_MAX], name[TPM_NAME_LEN], secret[32], got[TPM_SECRET_MAX];
	size_t ek_len, oek_len, spki_len, blob_len, enc_len, got_len = 0;
	int dirfd;

	if (system("command -v " MAKECRED " >/dev/null") != 0)
		SKIP("tpm2-tools not installed (scripts/deps.sh installs it)");
	OPEN_TPM(&s, "cred", &t);
	CHECK((dirfd = hv_dir(&s, "hv")) >= 0, "state directory");
	CHECK(ak_setup(t, dirfd, spki, &spki_len) == 0, "AK created, its SubjectPublicKeyInfo");
	CHECK(tpm_ek_public(t, ek, sizeof(ek), &ek_len) == 0, "EK public");
	CHECK(tpm_ak_name(t, name) == 0, "AK name");
	RAND_bytes(secret, sizeof(secret));
	CHECK(make_credential(&s, ek, ek_len, name, secret, 32, blob, &blob_len, enc, &enc_len) ==
		      0,
	      MAKECRED " --tcti none");
	CHECK(tpm_activate(t, blob, blob_len, enc, enc_len, got, sizeof(got), &got_len) == 0,
	      "ActivateCredential");
	CHECK(got_len == 32 && memcmp(got, secret, 32) == 0, "the secret comes back");
	CHECK(transients(t) == 2, "EK and session flushed");

	name[5] ^= 1; /* a credential for another key's name */
	CHECK(make_credential(&s, ek, ek_len, name, secret, 32, blob, &blob_len, enc, &enc_len) ==
		      0,
	      "credential for another name");
	CHECK(tpm_activate(t, blob, blob_len, enc, enc_len, got, sizeof(got), &got_len) ==
		      -EKEYREJECTED,
	      "refused: not this AK");
	name[5] ^= 1;

	CHECK(swtpm_make(&o, "other") == 0 && swtpm_start(&o) == 0, "another TPM");
	CHECK(tpm_open(o.tcti, &other) == 0, "open it");
	CHECK(tpm_ek_public(other, oek, sizeof(oek), &oek_len) == 0, "its EK");
	tpm_close(other);
	swtpm_stop(&o);
	CHECK(make_credential(&s, oek, oek_len, name, secret, 32, blob, &blob_len, enc, &enc_len) ==
		      0,
	      "credential encrypted to the other TPM's EK");
	CHECK(tpm_activate(t, blob, blob_len, enc, enc_len, got, sizeof(got), &got_len) ==
		      -EKEYREJECTED,
	      "refused: not this EK");
	CHECK(tpm_activate(t, blob, blob_len - 1, enc, enc_len, got, sizeof(got), &got_len) ==
		      -EINVAL,
	      "a truncated blob: -EINVAL");
	CHECK(transients(t) == 2, "nothing left behind by the failures");
	tpm_close(t);
	close(dirfd);
	swtpm_stop(&s);
}

/*
 * Puts the primary made from tmpl (endorsement hierarchy) at TPM_EK_PERSISTENT, after evicting
 * what is there; tmpl NULL: only evicts. 0 or -1.
 */
static int
ek_slot_set(struct tpm *t, const TPM2B_PUBLIC *tmpl)
{
	ESYS_TR cur = ESYS_TR_NONE, key = ESYS_TR_NONE, out = ESYS_TR_NONE;
	int r = 0;

	if (Esys_TR_FromTPMPublic(t->ctx, TPM_EK_PERSISTENT, ESYS_TR_NONE, ESYS_TR_NONE,
				  ESYS_TR_NONE, &cur) == TSS2_RC_SUCCESS &&
	    Esys_EvictControl(t->ctx, ESYS_TR_RH_OWNER, cur, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			      ESYS_TR_NONE, TPM_EK_PERSISTENT, &out) != TSS2_RC_SUCCESS)
		r = -1;
	/* ESYS keeps the evicted object's record (its public and names) until it is closed */
	if (cur != ESYS_TR_NONE)
		Esys_TR_Close(t->ctx, &cur);
	if (r == 0 && tmpl != NULL) {
		r = tpm_create_primary(t, ESYS_TR_RH_ENDORSEMENT, tmpl, &key, NULL);
		if (r == 0 &&
		    Esys_EvictControl(t->ctx, ESYS_TR_RH_OWNER, key, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				      ESYS_TR_NONE, TPM_EK_PERSISTENT, &out) != TSS2_RC_SUCCESS)
			r = -1;
		tpm_flush(t, &key);
		if (out != ESYS_TR_NONE)
			Esys_TR_Close(t->ctx, &out);
	}
	return r;
}

/* A credential for the AK made to ek, activated: 0 when the secret comes back. */
static int
activates(const struct swtpm *s, struct tpm *t, const uint8_t *ek, size_t ek_len)
{
	static uint8_t blob[TPM_CRED_MAX], enc[TPM_CRED_MAX];
	uint8_t name[TPM_NAME_LEN], secret[32], got[TPM_SECRET_MAX];
	size_t blob_len, enc_len, got_len = 0;

	RAND_bytes(secret, sizeof(secret));
	if (tpm_ak_name(t, name) != 0 ||
	    make_credential(s, ek, ek_len, name, secret, 32, blob, &blob_len, enc, &enc_len) != 0 ||
	    tpm_activate(t, blob, blob_len, enc, enc_len, got, sizeof(got), &got_len) != 0)
		return -1;
	return got_len == 32 && memcmp(got, secret, 32) == 0 ? 0 : -1;
}

/*
 * The manufacturer's persistent EK (swtpm_setup makes it at 0x81010001) is used for the EK
 * public and the activation, never created again; a key at that handle that is not the
 * certificate's, or none, and the EK is created from its template (the same key).
 */
static void
tpm_persistent_ek(void)
{
	struct swtpm s;
	struct tpm *t;
	static uint8_t ek[TPM_PUBLIC_MAX], again[TPM_PUBLIC_MAX];
	uint8_t spki[TPM_SPKI_MAX];
	size_t ek_len, again_len, spki_len, off = 0;
	TPM2B_PUBLIC other = {0};
	int dirfd;

	if (system("command -v " MAKECRED " >/dev/null") != 0)
		SKIP("tpm2-tools not installed (scripts/deps.sh installs it)");
	OPEN_TPM(&s, "pek", &t);
	CHECK((dirfd = hv_dir(&s, "hv")) >= 0, "state directory");
	CHECK(ak_setup(t, dirfd, spki, &spki_len) == 0, "AK");
	CHECK(tpm_ek_public(t, ek, sizeof(ek), &ek_len) == 0 && t->ek_created == 0,
	      "the EK public is the persistent EK's: none created (%u)", t->ek_created);
	CHECK(activates(&s, t, ek, ek_len) == 0 && t->ek_created == 0,
	      "activation with the persistent EK, none created (%u)", t->ek_created);
	CHECK(transients(t) == 2, "nothing left loaded (the persistent EK is not flushed)");
	CHECK(Tss2_MU_TPM2B_PUBLIC_Unmarshal(ek, ek_len, &off, &other) == 0, "EK public decodes");
	memset(other.publicArea.unique.rsa.buffer, 0x5a, other.publicArea.unique.rsa.size);
	CHECK(ek_slot_set(t, &other) == 0,
	      "another key of the EK's template put at 0x81010001 in its place");
	CHECK(tpm_ek_public(t, again, sizeof(again), &again_len) == 0 && again_len == ek_len &&
		      memcmp(again, ek, ek_len) == 0 && t->ek_created == 1,
	      "not the certificate's key: the EK is created from its template (%u)", t->ek_created);
	CHECK(activates(&s, t, ek, ek_len) == 0 && t->ek_created == 2, "and activates");
	CHECK(ek_slot_set(t, NULL) == 0, "nothing at 0x81010001");
	CHECK(tpm_ek_public(t, again, sizeof(again), &again_len) == 0 && again_len == ek_len &&
		      memcmp(again, ek, ek_len) == 0 && t->ek_created == 3,
	      "no persistent EK: created from its template (%u)", t->ek_created);
	CHECK(transients(t) == 2, "nothing left loaded");
	tpm_close(t);
	close(dirfd);
	swtpm_stop(&s);
}

static void
tpm_nv_counters(void)
{
	struct swtpm s;
	struct tpm *t;
	uint64_t w0 = 0, w1 = 0, s0 = 0, v = 0;

	OPEN_TPM(&s, "nv", &t);
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &v) == -ENOENT, "undefined at first");
	CHECK(tpm_counter_ensure(t, TPM_NV_WIPE_COUNTER) == 0, "define the wipe counter");
	CHECK(tpm_counter_ensure(t, TPM_NV_STATE_COUNTER) == 0, "define the state counter");
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &w0) == 0, "read it");
	CHECK(tpm_counter_read(t, TPM_NV_STATE_COUNTER, &s0) == 0, "read the other");
	CHECK(tpm_counter_increment(t, TPM_NV_WIPE_COUNTER) == 0, "increment");
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &w1) == 0 && w1 == w0 + 1, "+1");
	CHECK(tpm_counter_read(t, TPM_NV_STATE_COUNTER, &v) == 0 && v == s0, "the other unmoved");
	CHECK(tpm_counter_ensure(t, TPM_NV_WIPE_COUNTER) == 0, "ensure again: kept");
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &v) == 0 && v == w1, "same value");
	CHECK(tpm_counter_ensure(t, TPM_NV_EK_CERT_RSA) == -EEXIST, "not over the EK certificate");
	CHECK(tpm_counter_ensure(t, 0x81000001u) == -EINVAL, "only NV indexes");
	tpm_close(t);

	/* A power cycle (swtpm saves its state; startup-clear again) keeps the value. */
	swtpm_stop(&s);
	CHECK(swtpm_start(&s) == 0, "power on again");
	CHECK(tpm_open(s.tcti, &t) == 0, "open");
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &v) == 0 && v == w1, "still +1");
	tpm_close(t);
	swtpm_stop(&s);
}

/* With an owner password set (by someone else), the errors are clear and nothing is defined. */
static void
tpm_nv_counter_owner_auth(void)
{
	struct swtpm s;
	struct tpm *t;
	TPM2B_AUTH auth = {.size = 6, .buffer = "secret"};

	OPEN_TPM(&s, "ownerauth", &t);
	/* The test reaches into the open context to play the other party (tpm_int.h). */
	CHECK(Esys_HierarchyChangeAuth(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				       ESYS_TR_NONE, &auth) == 0,
	      "set an owner password");
	/* ESAPI remembers the new value for the handle; forget it, as another process would. */
	CHECK(Esys_TR_SetAuth(t->ctx, ESYS_TR_RH_OWNER, &(TPM2B_AUTH){0}) == 0, "forget it");
	CHECK(tpm_counter_ensure(t, TPM_NV_WIPE_COUNTER) == -EACCES, "define refused: -EACCES");
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, NULL) == -ENOENT, "nothing was defined");
	tpm_close(t);
	CHECK(tpm_open(s.tcti, &t) == -EACCES, "nor can the SRK be made: tpm_open says -EACCES");
	swtpm_stop(&s);
}

static void
tpm_clock_and_reset(void)
{
	struct swtpm s;
	struct tpm *t;
	struct tpm_clock a, b, c;

	OPEN_TPM(&s, "clock", &t);
	CHECK(tpm_read_clock(t, &a) == 0, "ReadClock");
	usleep(300 * 1000);
	CHECK(tpm_read_clock(t, &b) == 0, "again");
	CHECK(b.clock_ms >= a.clock_ms + 250 && b.clock_ms < a.clock_ms + 5000,
	      "clock moves with time (%llu -> %llu)", (unsigned long long)a.clock_ms,
	      (unsigned long long)b.clock_ms);
	CHECK(b.reset_count == a.reset_count, "no reset in between");
	tpm_close(t);
	swtpm_stop(&s);
	CHECK(swtpm_start(&s) == 0, "power on again");
	CHECK(tpm_open(s.tcti, &t) == 0, "open");
	CHECK(tpm_read_clock(t, &c) == 0, "ReadClock");
	CHECK(c.reset_count == b.reset_count + 1, "a power cycle is a TPM reset (%u -> %u)",
	      b.reset_count, c.reset_count);
	/*
	 * swtpm stopped without TPM2_Shutdown: Clock resumes from its last save to NV (at most
	 * 2^NV_CLOCK_UPDATE_INTERVAL = 4096 ms old) and says so with safe = NO (TPM.md §4).
	 */
	CHECK(c.clock_ms >= b.clock_ms || (c.safe == 0 && c.clock_ms + 4096 >= b.clock_ms),
	      "Clock back by at most 4096 ms, and then flagged unsafe (%llu -> %llu, safe %d)",
	      (unsigned long long)b.clock_ms, (unsigned long long)c.clock_ms, c.safe);
	tpm_close(t);
	swtpm_stop(&s);
}

/* TPM.md §4: the sealed root key opens only while the wipe counter and the clock allow it. */
static void
tpm_seal_wipe_and_deadline(void)
{
	struct swtpm s;
	struct tpm *t;
	uint8_t key[TPM_ROOT_LEN], got[TPM_ROOT_LEN], blob[TPM_SEALED_MAX], kept[TPM_SEALED_MAX];
	size_t len = 0, kept_len;
	struct tpm_clock c;
	uint64_t w = 0, v = 0, d = 0;

	OPEN_TPM(&s, "seal", &t);
	CHECK(tpm_seal(t, key, 1, 1, blob, sizeof(blob), &len) == -ENOENT,
	      "no wipe counter yet: -ENOENT");
	CHECK(tpm_counter_ensure(t, TPM_NV_WIPE_COUNTER) == 0, "wipe counter");
	CHECK(tpm_counter_read(t, TPM_NV_WIPE_COUNTER, &w) == 0, "its value");
	CHECK(tpm_read_clock(t, &c) == 0, "TPM clock");
	RAND_bytes(key, sizeof(key));
	CHECK(tpm_seal(t, key, w, c.clock_ms + 600000, blob, sizeof(blob), &len) == 0, "seal");
	CHECK(memmem(blob, len, key, sizeof(key)) == NULL, "the key is not in the blob");
	CHECK(tpm_unseal(t, blob, len, got) == 0 && memcmp(got, key, 32) == 0, "unseal: same key");
	CHECK(tpm_sealed_info(blob, len, &v, &d) == 0 && v == w && d == c.clock_ms + 600000,
	      "the header says what it was sealed with");
	CHECK(tpm_unseal(t, blob, len, got) == 0, "as often as needed");
	memcpy(kept, blob, len);
	kept_len = len;
	kept[12 + 7] ^= 0x40; /* the deadline in the header, moved */
	CHECK(tpm_unseal(t, kept, kept_len, got) == -EPERM, "an edited deadline: -EPERM");
	kept[12 + 7] ^= 0x40;
	CHECK(tpm_unseal(t, kept, kept_len - 1, got) == -EINVAL, "a truncated blob: -EINVAL");
	CHECK(tpm_sealed_info(kept, kept_len - 1, &v, &d) == -EINVAL, "its header too");

	CHECK(tpm_counter_increment(t, TPM_NV_WIPE_COUNTER) == 0, "a wipe increments the counter");
	CHECK(tpm_unseal(t, blob, len, got) == -EPERM, "the blob is dead: -EPERM");
	CHECK(tpm_unseal(t, kept, kept_len, got) == -EPERM, "so is the copy kept before the wipe");

	CHECK(tpm_seal(t, key, w + 1, c.clock_ms, blob, sizeof(blob), &len) == 0,
	      "seal with a deadline already past");
	CHECK(tpm_unseal(t, blob, len, got) == -EPERM, "past the deadline: -EPERM");
	CHECK(tpm_read_clock(t, &c) == 0, "TPM clock");
	CHECK(tpm_seal(t, key, w + 1, c.clock_ms + 1500, blob, sizeof(blob), &len) == 0,
	      "seal with a deadline 1.5 s away");
	CHECK(tpm_unseal(t, blob, len, got) == 0, "opens before it");
	usleep(1600 * 1000);
	CHECK(tpm_unseal(t, blob, len, got) == -EPERM, "not after it");
	CHECK(tpm_seal(t, key, w + 1, c.clock_ms + 600000, blob, 40, &len) == -EMSGSIZE,
	      "a short buffer: -EMSGSIZE");
	CHECK(transients(t) == 1, "only the SRK: sealed objects and sessions flushed");
	tpm_close(t);
	swtpm_stop(&s);
}

/*
 * A thief's copy of both the TPM's state and cleave-hv's state directory is the same TPM: the
 * AK loads there. Another manufactured TPM refuses the blob. (This is why TPM.md §1 says swtpm's
 * guarantees are as good as where its state is kept.)
 */
static void
tpm_ak_copy_and_other_tpm(void)
{
	struct swtpm a, b, c;
	struct tpm *t;
	uint8_t spki[TPM_SPKI_MAX], spki2[TPM_SPKI_MAX], sig[TPM_SIG_LEN], body[64] = "cleave";
	size_t spki_len, spki2_len;
	struct stat st;
	off_t size = -1;
	ino_t ino = 0;
	int dirfd, junk;

	OPEN_TPM(&a, "orig", &t);
	CHECK((dirfd = hv_dir(&a, "hv")) >= 0, "state directory");
	CHECK(ak_setup(t, dirfd, spki, &spki_len) == 0, "AK created, its SubjectPublicKeyInfo");
	CHECK(fstatat(dirfd, TPM_AK_BLOB_NAME, &st, 0) == 0, "its blob");
	size = st.st_size;
	ino = st.st_ino;
	tpm_close(t);
	swtpm_stop(&a);

	CHECK(swtpm_copy(&b, &a, "copy") == 0 && swtpm_start(&b) == 0, "start a copy of the TPM");
	CHECK(tpm_open(b.tcti, &t) == 0, "open the copy");
	CHECK(tpm_ak_init(t, dirfd) == 0, "the AK blob loads in the copy");
	CHECK(tpm_ak_spki(t, spki2, sizeof(spki2), &spki2_len) == 0 && spki2_len == spki_len &&
		      memcmp(spki, spki2, spki_len) == 0,
	      "the same key");
	CHECK(tpm_sign(t, body, sizeof(body), sig) == 0 &&
		      verify_p256(spki, spki_len, body, sizeof(body), sig),
	      "and it signs as the original");
	tpm_close(t);
	swtpm_stop(&b);

	CHECK(swtpm_make(&c, "other") == 0 && swtpm_start(&c) == 0, "another TPM");
	CHECK(tpm_open(c.tcti, &t) == 0, "open it");
	CHECK(tpm_ak_init(t, dirfd) == -EKEYREJECTED, "the blob does not load there");
	CHECK(fstatat(dirfd, TPM_AK_BLOB_NAME, &st, 0) == 0 && st.st_size == size &&
		      st.st_ino == ino,
	      "and is left as it was (replacing it is the caller's decision)");
	CHECK(tpm_sign(t, body, sizeof(body), sig) == -ENOKEY, "no AK, no signature");
	CHECK((junk = hv_dir(&c, "junk")) >= 0, "another state directory");
	CHECK(durable_replace(junk, TPM_AK_BLOB_NAME, body, sizeof(body)) == 0, "a junk AK blob");
	CHECK(tpm_ak_init(t, junk) == -EKEYREJECTED, "refused too");
	close(junk);
	CHECK(transients(t) == 1, "nothing left loaded");
	tpm_close(t);
	close(dirfd);
	swtpm_stop(&c);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"tpm_open_refused", tpm_open_refused},
		{"tpm_ek_and_certificate", tpm_ek_and_certificate},
		{"tpm_ak_sign_and_reload", tpm_ak_sign_and_reload},
		{"tpm_pcr_and_quote", tpm_pcr_and_quote},
		{"tpm_activate_credential", tpm_activate_credential},
		{"tpm_persistent_ek", tpm_persistent_ek},
		{"tpm_nv_counters", tpm_nv_counters},
		{"tpm_nv_counter_owner_auth", tpm_nv_counter_owner_auth},
		{"tpm_clock_and_reset", tpm_clock_and_reset},
		{"tpm_seal_wipe_and_deadline", tpm_seal_wipe_and_deadline},
		{"tpm_ak_copy_and_other_tpm", tpm_ak_copy_and_other_tpm},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

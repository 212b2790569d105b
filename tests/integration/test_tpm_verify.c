/*
 * crypto/tpm_verify.h against a real TPM 2.0: a manufactured swtpm per case (lib/swtpmtest.h)
 * driven by tpm2-tools, an independent client, whose outputs our code must read, accept and,
 * where changed, refuse. Names equal tpm2_readpublic's; keys equal the PEM tpm2-tools exports;
 * a quote verifies, and not with a flipped byte, another nonce or another PCR log; a credential
 * we make is activated by tpm2_activatecredential (the secret comes back) and not for another
 * AK; the EK certificate from NV chains to its TPM's manufacturer CA and not to another's.
 *
 * TPM_VERIFY_CORPUS=DIR also writes the structures seen here as fuzz seeds (tests/fuzz/).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "swtpmtest.h"
#include "testlib.h"
#include "tpm_verify.h"

#define FILE_MAX 4096

struct tv {
	struct swtpm t;
	char why[256];
};

/* Runs a shell command in the TPM's directory against its TCTI, then flushes transient objects
 * (swtpm has three slots and tpm2-tools leaves what it loaded). 0 when the command succeeded. */
static int
tools(const struct tv *v, const char *fmt, ...)
{
	char cmd[2048], line[3072];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(line, sizeof(line),
		 "cd '%s' && export TPM2TOOLS_TCTI='%s' && { %s ; } >>tools.log 2>&1; rc=$?; "
		 "tpm2_flushcontext -t >/dev/null 2>&1; exit $rc",
		 v->t.dir, v->t.tcti, cmd);
	return system(line) == 0 ? 0 : -1;
}

/* Reads DIR/name into buf (at most cap bytes). Length, or -1. */
static long
slurp(const struct tv *v, const char *name, uint8_t *buf, size_t cap)
{
	char path[PATH_MAX + 64];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/%s", v->t.dir, name);
	if ((f = fopen(path, "rb")) == NULL)
		return -1;
	n = fread(buf, 1, cap, f);
	fclose(f);
	return n < cap ? (long)n : -1;
}

static int
spill(const struct tv *v, const char *name, const void *buf, size_t n)
{
	char path[PATH_MAX + 64];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", v->t.dir, name);
	if ((f = fopen(path, "wb")) == NULL)
		return -1;
	ok = fwrite(buf, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* A fuzz seed: the decoder's selector byte, then the structure (TPM_VERIFY_CORPUS only). */
static void
seed(const char *name, uint8_t selector, const uint8_t *buf, size_t n)
{
	const char *dir = getenv("TPM_VERIFY_CORPUS");
	char path[PATH_MAX];
	FILE *f;

	if (dir == NULL || *dir == '\0')
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((f = fopen(path, "wb")) != NULL) {
		fputc(selector, f);
		fwrite(buf, 1, n, f);
		fclose(f);
	}
}

/* Reads a TPM2B_PUBLIC file and decodes it. 0 or -1. */
static int
load_public(struct tv *v, const char *name, struct tpm_public *p, const char *seed_name)
{
	uint8_t buf[FILE_MAX];
	long n = slurp(v, name, buf, sizeof(buf));

	if (n < 0)
		return -1;
	if (seed_name != NULL)
		seed(seed_name, 0, buf, (size_t)n);
	return tpm_public_decode(buf, (size_t)n, p, v->why, sizeof(v->why));
}

/* A manufactured, running TPM with an RSA EK (ek.ctx, ek.pub) and an ECC AK (ak.*). */
static int
tv_start(struct tv *v, const char *tag)
{
	memset(v, 0, sizeof(*v));
	if (swtpm_make(&v->t, tag) != 0 || swtpm_start(&v->t) != 0)
		return -1;
	if (tools(v, "tpm2_createek -c ek.ctx -G rsa -u ek.pub") != 0)
		return -1;
	return tools(v, "tpm2_createak -C ek.ctx -c ak.ctx -G ecc -g sha256 -s ecdsa -u ak.pub "
			"-n ak.name -r ak.priv -f tss");
}

/* A passed case's TPM: stopped and its directory removed (a failed case keeps it to look at). */
static void
tv_done(struct swtpm *t)
{
	char cmd[PATH_MAX + 16];

	swtpm_stop(t);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	if (system(cmd) != 0)
		printf("    could not remove %s\n", t->dir);
}

static const char *
skip_reason(void)
{
	if (swtpm_skip_reason() != NULL)
		return swtpm_skip_reason();
	if (system("command -v tpm2_createak >/dev/null 2>&1") != 0)
		return "tpm2-tools not installed (scripts/deps.sh installs it)";
	return NULL;
}

/* Our key of p equals the PEM tpm2_readpublic exports for ctx, and our SPKI its DER. */
static int
same_key_as_tools(struct tv *v, const char *ctx, const struct tpm_public *p)
{
	char path[PATH_MAX + 64];
	EVP_PKEY *ours = NULL, *theirs = NULL;
	uint8_t theirs_der[1024];
	FILE *f;
	int eq;

	if (tools(v, "tpm2_readpublic -c %s -f pem -o %s.pem", ctx, ctx) != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/%s.pem", v->t.dir, ctx);
	if ((f = fopen(path, "r")) == NULL)
		return 0;
	theirs = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	eq = theirs != NULL && tpm_public_pkey(p, &ours, v->why, sizeof(v->why)) == 0 &&
	     EVP_PKEY_eq(ours, theirs) == 1;
	/* ... and so does the SubjectPublicKeyInfo the server would keep. */
	if (eq) {
		uint8_t spki[1024], *q = theirs_der;
		size_t len = 0;
		int n = i2d_PUBKEY(theirs, NULL);

		eq = n > 0 && (size_t)n <= sizeof(theirs_der) && i2d_PUBKEY(theirs, &q) == n &&
		     tpm_public_spki(p, spki, sizeof(spki), &len, v->why, sizeof(v->why)) == 0 &&
		     len == (size_t)n && memcmp(spki, theirs_der, len) == 0;
	}
	EVP_PKEY_free(ours);
	EVP_PKEY_free(theirs);
	return eq;
}

/* The name tpm2_readpublic prints for ctx equals ours. */
static int
same_name_as_tools(struct tv *v, const char *ctx, const struct tpm_public *p)
{
	uint8_t name[TPM_NAME_MAX + 1];
	char file[64];
	long n;

	snprintf(file, sizeof(file), "%s.name", ctx);
	if (tools(v, "tpm2_readpublic -c %s -n %s", ctx, file) != 0)
		return 0;
	n = slurp(v, file, name, sizeof(name));
	return n == p->name_len && memcmp(name, p->name, (size_t)n) == 0;
}

static void
tpm_names_keys_and_ak(void)
{
	struct tv v;
	struct tpm_public ek, ak, rsa_ak, ecc_ek;

	if (skip_reason() != NULL)
		SKIP("%s", skip_reason());
	CHECK(tv_start(&v, "names") == 0, "a TPM with an EK and an AK (see %s)", v.t.dir);
	CHECK(load_public(&v, "ek.pub", &ek, "public_ek_rsa") == 0, "decode EK: %s", v.why);
	CHECK(load_public(&v, "ak.pub", &ak, "public_ak_ecc") == 0, "decode AK: %s", v.why);
	CHECK(ek.type == TPM_ALG_RSA && ek.rsa_bits == 2048 && ek.unique_len == 256 &&
		      ek.sym_alg == TPM_ALG_AES && ek.sym_bits == 128 && ek.sym_mode == TPM_ALG_CFB,
	      "the EK is the RSA 2048 template's");
	CHECK(ak.type == TPM_ALG_ECC && ak.curve == TPM_ECC_NIST_P256 &&
		      ak.scheme == TPM_ALG_ECDSA && ak.scheme_hash == TPM_ALG_SHA256,
	      "the AK is ECC P-256 ECDSA-SHA256");
	CHECK(same_name_as_tools(&v, "ek.ctx", &ek), "EK name equals tpm2_readpublic's");
	CHECK(same_name_as_tools(&v, "ak.ctx", &ak), "AK name equals tpm2_readpublic's");
	CHECK(same_key_as_tools(&v, "ek.ctx", &ek), "EK key equals tpm2-tools' PEM");
	CHECK(same_key_as_tools(&v, "ak.ctx", &ak), "AK key equals tpm2-tools' PEM");
	CHECK(tpm_ak_check(&ak, v.why, sizeof(v.why)) == 0, "the AK passes: %s", v.why);
	CHECK(tpm_ak_check(&ek, v.why, sizeof(v.why)) == -EBADMSG, "the EK is no AK");
	printf("    EK as an AK: %s\n", v.why);

	CHECK(tools(&v, "tpm2_createak -C ek.ctx -c rak.ctx -G rsa -g sha256 -s rsassa "
			"-u rak.pub -n rak.name -r rak.priv -f tss") == 0,
	      "an RSA AK");
	CHECK(load_public(&v, "rak.pub", &rsa_ak, "public_ak_rsa") == 0, "decode: %s", v.why);
	CHECK(same_name_as_tools(&v, "rak.ctx", &rsa_ak), "RSA AK name equals tpm2_readpublic's");
	CHECK(tpm_ak_check(&rsa_ak, v.why, sizeof(v.why)) == -EBADMSG, "an RSA AK is refused");
	CHECK(tools(&v, "tpm2_createek -c eek.ctx -G ecc -u eek.pub") == 0, "an ECC EK");
	CHECK(load_public(&v, "eek.pub", &ecc_ek, "public_ek_ecc") == 0, "decode: %s", v.why);
	CHECK(same_name_as_tools(&v, "eek.ctx", &ecc_ek), "ECC EK name equals tpm2_readpublic's");
	CHECK(same_key_as_tools(&v, "eek.ctx", &ecc_ek), "ECC EK key equals tpm2-tools' PEM");
	tv_done(&v.t);
}

/* Three measurements extended into PCR 23 as cleave-hv would, and their log. */
static int
extend_pcr23(struct tv *v, uint8_t log[3][32])
{
	static const char *const what[3] = {"guest image", "vm config", "lease"};
	char hex[65];

	for (int i = 0; i < 3; i++) {
		crypto_sha256(what[i], strlen(what[i]), log[i]);
		hex_encode(hex, sizeof(hex), log[i], 32);
		if (tools(v, "tpm2_pcrextend 23:sha256=%s", hex) != 0)
			return -1;
	}
	return 0;
}

/* tpm2_quote by ctx over pcrs with qualifying data q into PREFIX.msg / PREFIX.sig. */
static int
quote(struct tv *v, const char *ctx, const char *pcrs, const uint8_t q[32], const char *prefix)
{
	char hex[65];

	hex_encode(hex, sizeof(hex), q, 32);
	return tools(v, "tpm2_quote -c %s -l %s -q %s -m %s.msg -s %s.sig -g sha256", ctx, pcrs,
		     hex, prefix, prefix);
}

struct quote_bytes {
	uint8_t msg[FILE_MAX], sig[FILE_MAX];
	long msg_len, sig_len;
};

static int
read_quote(struct tv *v, const char *prefix, struct quote_bytes *qb)
{
	char name[64];

	snprintf(name, sizeof(name), "%s.msg", prefix);
	qb->msg_len = slurp(v, name, qb->msg, sizeof(qb->msg));
	snprintf(name, sizeof(name), "%s.sig", prefix);
	qb->sig_len = slurp(v, name, qb->sig, sizeof(qb->sig));
	return qb->msg_len > 0 && qb->sig_len > 0 ? 0 : -1;
}

static int
check(struct tv *v, const struct tpm_public *ak, const struct quote_bytes *qb, const uint8_t q[32],
      const uint8_t (*log)[32], size_t n)
{
	return tpm_quote_check(ak, qb->msg, (size_t)qb->msg_len, qb->sig, (size_t)qb->sig_len, q,
			       32, log, n, NULL, v->why, sizeof(v->why));
}

/* Every single flipped byte of the attestation or signature is refused. */
static int
flips_refused(struct tv *v, const struct tpm_public *ak, struct quote_bytes *qb,
	      const uint8_t q[32], const uint8_t (*log)[32])
{
	for (long i = 0; i < qb->msg_len + qb->sig_len; i++) {
		uint8_t *b = i < qb->msg_len ? &qb->msg[i] : &qb->sig[i - qb->msg_len];
		int r;

		*b ^= 0x01;
		r = check(v, ak, qb, q, log, 3);
		*b ^= 0x01;
		if (r == 0) {
			printf("    flipped byte %ld accepted\n", i);
			return -1;
		}
	}
	return 0;
}

/* tpm2_certify of ak2 by ak: a CERTIFY attestation naming ak2, signed by ak. 0 or -1. */
static int
certified(struct tv *v, const struct tpm_public *ak, const struct tpm_public *ak2)
{
	struct quote_bytes qb;
	struct tpm_attest a;
	struct tpm_signature s;
	EVP_PKEY *key = NULL;
	int r;

	if (tools(v, "tpm2_certify -C ak.ctx -c ak2.ctx -g sha256 -o c.msg -s c.sig") != 0 ||
	    read_quote(v, "c", &qb) != 0)
		return -1;
	seed("attest_certify", 1, qb.msg, (size_t)qb.msg_len);
	if (tpm_attest_decode(qb.msg, (size_t)qb.msg_len, &a, v->why, sizeof(v->why)) != 0 ||
	    tpm_signature_decode(qb.sig, (size_t)qb.sig_len, &s, v->why, sizeof(v->why)) != 0 ||
	    tpm_public_pkey(ak, &key, v->why, sizeof(v->why)) != 0)
		return -1;
	r = tpm_signature_verify(key, &s, qb.msg, (size_t)qb.msg_len, v->why, sizeof(v->why));
	EVP_PKEY_free(key);
	if (r != 0 || a.magic != TPM_GENERATED_VALUE || a.type != TPM_ST_ATTEST_CERTIFY ||
	    a.cert_name_len != ak2->name_len || memcmp(a.cert_name, ak2->name, ak2->name_len) != 0)
		return -1;
	/* The quote check refuses it: a certification is not a quote, signature or not. */
	return tpm_quote_check(ak, qb.msg, (size_t)qb.msg_len, qb.sig, (size_t)qb.sig_len, a.extra,
			       a.extra_len, NULL, 0, NULL, v->why, sizeof(v->why)) == -EBADMSG
		       ? 0
		       : -1;
}

static void
tpm_quote_checked(void)
{
	struct tv v;
	struct tpm_public ak, ak2, rak;
	struct tpm_attest a;
	struct quote_bytes qb, q2;
	uint8_t q[32], log[3][32], wrong[3][32];

	if (skip_reason() != NULL)
		SKIP("%s", skip_reason());
	CHECK(tv_start(&v, "quote") == 0, "a TPM with an EK and an AK (see %s)", v.t.dir);
	CHECK(load_public(&v, "ak.pub", &ak, "public_ak_of_quote") == 0, "decode AK: %s", v.why);
	CHECK(extend_pcr23(&v, log) == 0, "extend PCR 23");
	CHECK(crypto_random(q, sizeof(q)) == 0, "nonce");
	CHECK(quote(&v, "ak.ctx", "sha256:23", q, "q") == 0 && read_quote(&v, "q", &qb) == 0,
	      "tpm2_quote");
	seed("attest_quote", 1, qb.msg, (size_t)qb.msg_len);
	seed("signature_ecdsa", 2, qb.sig, (size_t)qb.sig_len);
	CHECK(tpm_quote_check(&ak, qb.msg, (size_t)qb.msg_len, qb.sig, (size_t)qb.sig_len, q, 32,
			      (const uint8_t(*)[32])log, 3, &a, v.why, sizeof(v.why)) == 0,
	      "the quote verifies: %s", v.why);
	CHECK(a.pcr_banks == 1 && a.pcr[0].select[2] == 0x80 && a.clock > 0,
	      "decoded: one bank, PCR 23, a clock");
	CHECK(flips_refused(&v, &ak, &qb, q, (const uint8_t(*)[32])log) == 0,
	      "every flipped byte is refused");
	q[5] ^= 0x40;
	CHECK(check(&v, &ak, &qb, q, (const uint8_t(*)[32])log, 3) == -EBADMSG &&
		      strstr(v.why, "qualifying") != NULL,
	      "another nonce is refused: %s", v.why);
	q[5] ^= 0x40;
	CHECK(check(&v, &ak, &qb, q, (const uint8_t(*)[32])log, 2) == -EBADMSG &&
		      strstr(v.why, "PCR digest") != NULL,
	      "a log without its last entry is refused: %s", v.why);
	memcpy(wrong[0], log[1], 32), memcpy(wrong[1], log[0], 32), memcpy(wrong[2], log[2], 32);
	CHECK(check(&v, &ak, &qb, q, (const uint8_t(*)[32])wrong, 3) == -EBADMSG,
	      "a reordered log is refused");
	printf("    wrong log: %s\n", v.why);

	CHECK(tools(&v, "tpm2_createak -C ek.ctx -c ak2.ctx -G ecc -g sha256 -s ecdsa -u ak2.pub "
			"-n ak2.name -r ak2.priv -f tss") == 0 &&
		      load_public(&v, "ak2.pub", &ak2, NULL) == 0,
	      "a second AK");
	CHECK(check(&v, &ak2, &qb, q, (const uint8_t(*)[32])log, 3) == -EBADMSG,
	      "the quote does not verify with another AK");
	CHECK(certified(&v, &ak, &ak2) == 0, "TPM2_Certify of the second AK by the first");
	CHECK(quote(&v, "ak.ctx", "sha256:16,23", q, "q2") == 0 && read_quote(&v, "q2", &q2) == 0,
	      "a quote over PCRs 16 and 23");
	CHECK(check(&v, &ak, &q2, q, (const uint8_t(*)[32])log, 3) == -EBADMSG &&
		      strstr(v.why, "selection") != NULL,
	      "another PCR selection is refused: %s", v.why);
	CHECK(tools(&v, "tpm2_createak -C ek.ctx -c rak.ctx -G rsa -g sha256 -s rsassa "
			"-u rak.pub -n rak.name -r rak.priv -f tss") == 0 &&
		      load_public(&v, "rak.pub", &rak, NULL) == 0,
	      "an RSA AK");
	CHECK(quote(&v, "rak.ctx", "sha256:23", q, "rq") == 0 && read_quote(&v, "rq", &q2) == 0,
	      "an RSASSA quote");
	seed("signature_rsassa", 2, q2.sig, (size_t)q2.sig_len);
	CHECK(check(&v, &rak, &q2, q, (const uint8_t(*)[32])log, 3) == 0,
	      "an RSASSA quote verifies with its key: %s", v.why);
	tv_done(&v.t);
}

/* tpm2-tools' credential file: magic, version 1, TPM2B_ID_OBJECT, TPM2B_ENCRYPTED_SECRET. */
static int
write_credential(struct tv *v, const char *name, const uint8_t *id, size_t id_len,
		 const uint8_t *secret, size_t secret_len)
{
	uint8_t file[8 + TPM_ID_OBJECT_MAX + TPM_ENC_SECRET_MAX] = {0xba, 0xdc, 0xc0, 0xde,
								    0,    0,    0,    1};

	memcpy(file + 8, id, id_len);
	memcpy(file + 8 + id_len, secret, secret_len);
	return spill(v, name, file, 8 + id_len + secret_len);
}

/* TPM2_ActivateCredential of file with the AK ctx and the EK ek (PolicySecret(endorsement)). */
static int
activate_with(struct tv *v, const char *ek, const char *ctx, const char *file, uint8_t got[64],
	      long *got_len)
{
	int r;

	r = tools(v,
		  "rm -f got.bin && tpm2_startauthsession --policy-session -S s.ctx && "
		  "tpm2_policysecret -S s.ctx "
		  "-c e && tpm2_activatecredential -c %s -C %s -i %s -o got.bin "
		  "-P session:s.ctx; r=$?; tpm2_flushcontext -s; (exit $r)",
		  ctx, ek, file);
	*got_len = r == 0 ? slurp(v, "got.bin", got, 64) : -1;
	return r;
}

static int
activate(struct tv *v, const char *ctx, const char *file, uint8_t got[64], long *got_len)
{
	return activate_with(v, "ek.ctx", ctx, file, got, got_len);
}

static void
tpm_credential_activated(void)
{
	struct tv v;
	struct tpm_public ek, ak, ak2, eek, hek;
	uint8_t secret[32], id[TPM_ID_OBJECT_MAX], enc[TPM_ENC_SECRET_MAX], got[64];
	size_t id_len, enc_len;
	long got_len;

	if (skip_reason() != NULL)
		SKIP("%s", skip_reason());
	CHECK(tv_start(&v, "cred") == 0, "a TPM with an EK and an AK (see %s)", v.t.dir);
	CHECK(tools(&v, "tpm2_createak -C ek.ctx -c ak2.ctx -G ecc -g sha256 -s ecdsa -u ak2.pub "
			"-n ak2.name -r ak2.priv -f tss") == 0,
	      "a second AK");
	CHECK(load_public(&v, "ek.pub", &ek, NULL) == 0 &&
		      load_public(&v, "ak.pub", &ak, NULL) == 0 &&
		      load_public(&v, "ak2.pub", &ak2, NULL) == 0,
	      "decode: %s", v.why);
	CHECK(crypto_random(secret, sizeof(secret)) == 0, "secret");
	CHECK(tpm_make_credential(&ek, ak.name, ak.name_len, secret, sizeof(secret), id, sizeof(id),
				  &id_len, enc, sizeof(enc), &enc_len, v.why, sizeof(v.why)) == 0,
	      "make the credential: %s", v.why);
	CHECK(id_len == 2 + 2 + 32 + 2 + 32 && enc_len == 2 + 256, "sizes %zu, %zu", id_len,
	      enc_len);
	CHECK(write_credential(&v, "cred.bin", id, id_len, enc, enc_len) == 0, "write it");
	CHECK(activate(&v, "ak.ctx", "cred.bin", got, &got_len) == 0, "tpm2_activatecredential");
	CHECK(got_len == 32 && memcmp(got, secret, 32) == 0, "the secret came back");
	CHECK(activate(&v, "ak2.ctx", "cred.bin", got, &got_len) != 0,
	      "refused with another AK loaded");
	id[10] ^= 0x01; /* inside the outer HMAC */
	CHECK(write_credential(&v, "bad.bin", id, id_len, enc, enc_len) == 0 &&
		      activate(&v, "ak.ctx", "bad.bin", got, &got_len) != 0,
	      "refused when the blob was changed");
	CHECK(tpm_make_credential(&ek, ak2.name, ak2.name_len, secret, 20, id, sizeof(id), &id_len,
				  enc, sizeof(enc), &enc_len, v.why, sizeof(v.why)) == 0 &&
		      write_credential(&v, "cred2.bin", id, id_len, enc, enc_len) == 0,
	      "a credential for the second AK");
	CHECK(activate(&v, "ak.ctx", "cred2.bin", got, &got_len) != 0, "refused for the first AK");
	CHECK(activate(&v, "ak2.ctx", "cred2.bin", got, &got_len) == 0 && got_len == 20 &&
		      memcmp(got, secret, 20) == 0,
	      "activated by the AK it names");
	CHECK(tools(&v, "tpm2_createek -c eek.ctx -G ecc -u eek.pub") == 0 &&
		      load_public(&v, "eek.pub", &eek, NULL) == 0,
	      "an ECC P-256 EK");
	CHECK(tpm_make_credential(&eek, ak.name, ak.name_len, secret, 32, id, sizeof(id), &id_len,
				  enc, sizeof(enc), &enc_len, v.why, sizeof(v.why)) == 0,
	      "make a credential to the ECC EK: %s", v.why);
	CHECK(enc_len == 2 + 2 + 32 + 2 + 32, "the secret is an ephemeral P-256 point");
	CHECK(write_credential(&v, "ecred.bin", id, id_len, enc, enc_len) == 0 &&
		      activate_with(&v, "eek.ctx", "ak.ctx", "ecred.bin", got, &got_len) == 0,
	      "tpm2_activatecredential with the ECC EK");
	CHECK(got_len == 32 && memcmp(got, secret, 32) == 0, "the secret came back (ECDH seed)");
	CHECK(activate_with(&v, "eek.ctx", "ak2.ctx", "ecred.bin", got, &got_len) != 0,
	      "refused with another AK loaded");
	CHECK(tools(&v, "tpm2_readpublic -c 0x81010016 -o hek.pub") == 0 &&
		      load_public(&v, "hek.pub", &hek, NULL) == 0,
	      "swtpm's P-384 EK");
	CHECK(tpm_make_credential(&hek, ak.name, ak.name_len, secret, 32, id, sizeof(id), &id_len,
				  enc, sizeof(enc), &enc_len, v.why, sizeof(v.why)) == -ENOTSUP,
	      "P-384 (nameAlg SHA-384) EKs are not supported");
	tv_done(&v.t);
}

/* Writes the PEM files in order into DIR/name (a CA bundle). */
static int
bundle(struct tv *v, const char *name, const char *a, const char *b)
{
	return tools(v, "cat '%s' %s%s%s > %s", a, b ? "'" : "", b ? b : "", b ? "'" : "", name);
}

static int
ek_verify(struct tv *v, const struct tpm_ca *ca, const char *der_file, const struct tpm_public *ek,
	  struct tpm_ek_info *info)
{
	uint8_t der[FILE_MAX];
	long n = slurp(v, der_file, der, sizeof(der));

	if (n < 0)
		return -100;
	return tpm_ek_verify(ca, der, (size_t)n, ek, info, v->why, sizeof(v->why));
}

/* Extensions of certificates the test issues with the manufacturer's own issuing key. */
static const char EXT_CNF[] =
	"[ok]\n"
	"extendedKeyUsage = 2.23.133.8.1\n"
	"subjectAltName = critical,dirName:tpm\n"
	"keyUsage = critical,keyEncipherment\n"
	"basicConstraints = critical,CA:FALSE\n"
	"[crit]\n"
	"extendedKeyUsage = 2.23.133.8.1\n"
	"subjectAltName = critical,dirName:tpm\n"
	"keyUsage = critical,keyEncipherment\n"
	"1.3.6.1.4.1.99999.1 = critical,ASN1:UTF8String:unknown\n"
	"[nosan]\n"
	"extendedKeyUsage = 2.23.133.8.1\n"
	"keyUsage = critical,keyEncipherment\n"
	"[tpm]\n" /* "1." keeps OpenSSL's config from reading 2. as an index */
	"1.2.23.133.2.1 = id:00001014\n"
	"1.2.23.133.2.2 = swtpm\n"
	"1.2.23.133.2.3 = id:20191023\n";

/* Issues DIR/NAME.der for the EK's key with the extensions of section NAME. */
static int
issue(struct tv *v, const char *name)
{
	return tools(
		v,
		"openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		"-keyout tmp.key -subj /CN=unknown -out tmp.csr && openssl x509 -req -in tmp.csr "
		"-CA ca/issuercert.pem -CAkey ca/signkey.pem -force_pubkey ek.pem -days 2 "
		"-set_serial $$ -extfile ext.cnf -extensions %s -outform der -out %s.der",
		name, name);
}

/*
 * The checks are deliberate, not disabled: a certificate of the same issuer for the same key
 * passes with the EK extensions, and is refused with an unknown critical extension added
 * (OpenSSL's check stays on) or without the subjectAltName naming the TPM manufacturer.
 */
static int
issued_certs_checked(struct tv *v, const struct tpm_ca *ca, const struct tpm_public *ek)
{
	if (spill(v, "ext.cnf", EXT_CNF, strlen(EXT_CNF)) != 0 ||
	    tools(v, "tpm2_readpublic -c ek.ctx -f pem -o ek.pem") != 0 || issue(v, "ok") != 0 ||
	    issue(v, "crit") != 0 || issue(v, "nosan") != 0)
		return -1;
	if (ek_verify(v, ca, "ok.der", ek, NULL) != 0) {
		printf("    issued with the EK extensions: %s\n", v->why);
		return -1;
	}
	if (ek_verify(v, ca, "crit.der", ek, NULL) != -EBADMSG || !strstr(v->why, "critical"))
		return -1;
	printf("    unknown critical extension: %s\n", v->why);
	if (ek_verify(v, ca, "nosan.der", ek, NULL) != -EBADMSG || !strstr(v->why, "manufacturer"))
		return -1;
	printf("    no subjectAltName: %s\n", v->why);
	return 0;
}

/* The root alone cannot verify the EK certificate; the issuing CA alone is no bundle. */
static int
partial_bundles_refused(struct tv *v, const struct tpm_public *ek)
{
	char path[PATH_MAX + 32];
	struct tpm_ca *ca;
	int r;

	if (bundle(v, "root.pem", v->t.ca_root, NULL) != 0 ||
	    bundle(v, "issuer.pem", v->t.ca_issuer, NULL) != 0)
		return -1;
	snprintf(path, sizeof(path), "%s/root.pem", v->t.dir);
	if ((ca = tpm_ca_load(path, v->why, sizeof(v->why))) == NULL)
		return -1;
	r = ek_verify(v, ca, "ek.der", ek, NULL);
	tpm_ca_free(ca);
	if (r != -EBADMSG || !strstr(v->why, "issuer"))
		return -1;
	printf("    root without the issuing CA: %s\n", v->why);
	snprintf(path, sizeof(path), "%s/issuer.pem", v->t.dir);
	if (tpm_ca_load(path, v->why, sizeof(v->why)) != NULL || !strstr(v->why, "root"))
		return -1;
	printf("    issuing CA alone: %s\n", v->why);
	return 0;
}

static void
tpm_ek_chain(void)
{
	struct tv v;
	struct swtpm other;
	struct tpm_public ek, eek, changed;
	struct tpm_ek_info info;
	struct tpm_ca *ca, *ca2;
	char path[PATH_MAX + 32];

	if (skip_reason() != NULL)
		SKIP("%s", skip_reason());
	CHECK(tv_start(&v, "ek") == 0, "a TPM with an EK (see %s)", v.t.dir);
	/* swtpm_setup certified an ECC NIST P-384 EK (high range, persistent at 0x81010016). */
	CHECK(tools(&v, "tpm2_readpublic -c 0x81010016 -o eek.pub") == 0, "the ECC EK");
	CHECK(load_public(&v, "ek.pub", &ek, NULL) == 0 &&
		      load_public(&v, "eek.pub", &eek, "public_ek_ecc384") == 0,
	      "decode: %s", v.why);
	CHECK(tools(&v,
		    "tpm2_nvread -o ek.der 0x%x && tpm2_nvread -o eek.der 0x%x && tpm2_nvread "
		    "-o plat.der 0x01c08000",
		    SWTPM_EK_CERT_RSA, SWTPM_EK_CERT_ECC) == 0,
	      "read the certificates from NV");
	CHECK(bundle(&v, "cas.pem", v.t.ca_root, v.t.ca_issuer) == 0, "bundle");
	snprintf(path, sizeof(path), "%s/cas.pem", v.t.dir);
	ca = tpm_ca_load(path, v.why, sizeof(v.why));
	CHECK(ca != NULL, "load the CA bundle: %s", v.why);
	CHECK(ek_verify(&v, ca, "ek.der", &ek, &info) == 0, "the RSA EK certificate: %s", v.why);
	printf("    TPM manufacturer %s, model %s, version %s\n", info.manufacturer, info.model,
	       info.version);
	CHECK(strcmp(info.manufacturer, "id:00001014") == 0 && strcmp(info.model, "swtpm") == 0,
	      "swtpm's manufacturer and model");
	CHECK(eek.type == TPM_ALG_ECC && eek.curve == TPM_ECC_NIST_P384, "a P-384 EK");
	CHECK(ek_verify(&v, ca, "eek.der", &eek, NULL) == 0, "the ECC EK certificate: %s", v.why);
	CHECK(ek_verify(&v, ca, "ek.der", &eek, NULL) == -EBADMSG && strstr(v.why, "match"),
	      "another EK's public is refused: %s", v.why);
	changed = ek;
	changed.unique[100] ^= 0x10;
	CHECK(ek_verify(&v, ca, "ek.der", &changed, NULL) != 0, "a changed modulus is refused");
	CHECK(ek_verify(&v, ca, "plat.der", &ek, NULL) == -EBADMSG &&
		      strstr(v.why, "EKCertificate"),
	      "the platform certificate (same CA) is no EK certificate: %s", v.why);
	CHECK(issued_certs_checked(&v, ca, &ek) == 0, "certificates issued here checked: %s",
	      v.why);
	tpm_ca_free(ca);

	CHECK(partial_bundles_refused(&v, &ek) == 0, "partial bundles: %s", v.why);

	CHECK(swtpm_make(&other, "other") == 0, "another manufactured TPM");
	CHECK(bundle(&v, "other.pem", other.ca_root, other.ca_issuer) == 0, "its CA bundle");
	snprintf(path, sizeof(path), "%s/other.pem", v.t.dir);
	CHECK((ca2 = tpm_ca_load(path, v.why, sizeof(v.why))) != NULL, "load: %s", v.why);
	CHECK(ek_verify(&v, ca2, "ek.der", &ek, NULL) == -EBADMSG && strstr(v.why, "issuer"),
	      "refused against another TPM's manufacturer CA: %s", v.why);
	printf("    another TPM's CA: %s\n", v.why);
	tpm_ca_free(ca2);
	tv_done(&other);
	tv_done(&v.t);
}

/* Loads DIR/name as the CA bundle; the result of tpm_ek_verify on DIR/der, or -100. */
static int
verify_with(struct tv *v, const char *name, const char *der, const struct tpm_public *ek)
{
	char path[PATH_MAX + 32];
	struct tpm_ca *ca;
	int r;

	snprintf(path, sizeof(path), "%s/%s", v->t.dir, name);
	if ((ca = tpm_ca_load(path, v->why, sizeof(v->why))) == NULL)
		return -100;
	r = ek_verify(v, ca, der, ek, NULL);
	tpm_ca_free(ca);
	return r;
}

/* An openssl ca of a maker's issuing CA, to revoke and publish CRLs (index.txt, crlnumber). */
static const char CA_CNF[] = "[ca]\n"
			     "default_ca = maker\n"
			     "[maker]\n"
			     "database = index.txt\n"
			     "crlnumber = crlnumber\n"
			     "default_md = sha256\n"
			     "default_crl_days = 1\n"
			     "[authority]\n"
			     "basicConstraints = critical,CA:TRUE\n"
			     "keyUsage = critical,keyCertSign,cRLSign\n";

/* openssl ca with the maker's issuing CA (iss.key, iss.pem) and ca.cnf. */
#define MAKER_CA "openssl ca -config ca.cnf -keyfile iss.key -cert iss.pem "

/*
 * A maker as TPM makers run one: a root and an issuing CA allowed to sign certificates and
 * CRLs (swtpm_localca's issuing CA may not sign CRLs), and an EK certificate it issues for this
 * TPM's EK (ekm.der). maker.pem is the bundle.
 */
static int
maker_with_crls(struct tv *v)
{
	if (spill(v, "ca.cnf", CA_CNF, strlen(CA_CNF)) != 0 ||
	    spill(v, "ext.cnf", EXT_CNF, strlen(EXT_CNF)) != 0)
		return -1;
	return tools(v,
		     "tpm2_readpublic -c ek.ctx -f pem -o ek.pem && : > index.txt && echo 01 > "
		     "crlnumber && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
		     "-nodes -keyout root.key -subj /CN=maker-root -days 2 -config ca.cnf "
		     "-extensions authority -out root.pem && openssl req -new -newkey ec -pkeyopt "
		     "ec_paramgen_curve:P-256 -nodes -keyout iss.key -subj /CN=maker-ek-ca -out "
		     "iss.csr && openssl x509 -req -in iss.csr -CA root.pem -CAkey root.key "
		     "-set_serial 2 -days 2 -extfile ca.cnf -extensions authority -out iss.pem && "
		     "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "
		     "tmp.key -subj /CN=unknown -out tmp.csr && openssl x509 -req -in tmp.csr -CA "
		     "iss.pem -CAkey iss.key -force_pubkey ek.pem -days 2 -set_serial 77 -extfile "
		     "ext.cnf -extensions ok -out ekm.pem && openssl x509 -in ekm.pem -outform der "
		     "-out ekm.der && cat root.pem iss.pem > maker.pem");
}

/*
 * Revocation: the maker's CRL in the bundle. A CRL that lists another serial lets the EK
 * certificate pass; one that lists it refuses it; an expired one refuses every certificate of
 * that issuer; a CRL signed by a stranger, or by a CA not allowed to sign CRLs, makes the
 * bundle itself refused at load (so --check-config says so).
 */
static void
tpm_ek_revoked(void)
{
	struct tv v;
	struct tpm_public ek;
	char path[PATH_MAX + 32];

	if (skip_reason() != NULL)
		SKIP("%s", skip_reason());
	CHECK(tv_start(&v, "crl") == 0, "a TPM with an EK (see %s)", v.t.dir);
	CHECK(load_public(&v, "ek.pub", &ek, NULL) == 0, "decode: %s", v.why);
	CHECK(maker_with_crls(&v) == 0, "a maker's CAs and an EK certificate for this TPM");
	CHECK(verify_with(&v, "maker.pem", "ekm.der", &ek) == 0,
	      "without a CRL the certificate passes: %s", v.why);

	/* the maker revokes another certificate it issued: this one still passes */
	CHECK(tools(&v,
		    "openssl x509 -req -in tmp.csr -CA iss.pem -CAkey iss.key -days 2 "
		    "-set_serial 4242 -out other.pem && " MAKER_CA "-revoke other.pem && " MAKER_CA
		    "-gencrl -out crl1.pem && cat maker.pem crl1.pem > m1.pem") == 0,
	      "a CRL revoking another certificate");
	CHECK(verify_with(&v, "m1.pem", "ekm.der", &ek) == 0, "not on the CRL: passes (%s)", v.why);

	/* then this TPM's EK certificate (a TPM whose keys leaked, say) */
	CHECK(tools(&v, MAKER_CA "-revoke ekm.pem -crl_reason keyCompromise && " MAKER_CA
				 "-gencrl -out crl2.pem && cat maker.pem crl2.pem > m2.pem") == 0,
	      "a CRL revoking this EK certificate");
	CHECK(verify_with(&v, "m2.pem", "ekm.der", &ek) == -EBADMSG && strstr(v.why, "revoked"),
	      "revoked: refused (%s)", v.why);
	printf("    revoked: %s\n", v.why);

	/* a CRL past its nextUpdate: the maker's current word is not known, so nothing passes */
	CHECK(tools(&v, MAKER_CA "-gencrl -crlsec 1 -out crl3.pem && cat maker.pem crl3.pem > "
				 "m3.pem && sleep 2") == 0,
	      "a CRL valid for one second, two seconds ago");
	CHECK(verify_with(&v, "m3.pem", "ekm.der", &ek) == -EBADMSG &&
		      strstr(v.why, "CRL has expired"),
	      "expired CRL: refused (%s)", v.why);
	printf("    expired CRL: %s\n", v.why);

	/* a CRL in the name of the maker's issuing CA, signed by another key */
	CHECK(tools(&v, "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
			"-keyout s.key -subj /CN=maker-ek-ca -days 2 -out s.pem && openssl ca "
			"-config ca.cnf -gencrl -keyfile s.key -cert s.pem -out crl4.pem && cat "
			"maker.pem crl4.pem > m4.pem") == 0,
	      "a CRL signed by a stranger");
	snprintf(path, sizeof(path), "%s/m4.pem", v.t.dir);
	CHECK(tpm_ca_load(path, v.why, sizeof(v.why)) == NULL && strstr(v.why, "not signed"),
	      "a CA file with a forged CRL is refused at load (%s)", v.why);
	printf("    forged CRL: %s\n", v.why);

	/* swtpm's issuing CA has keyUsage without cRLSign: OpenSSL would refuse its CRLs */
	CHECK(tools(&v,
		    "openssl ca -config ca.cnf -gencrl -keyfile ca/signkey.pem -cert "
		    "ca/issuercert.pem -out crl5.pem && cat '%s' '%s' crl5.pem > m5.pem",
		    v.t.ca_root, v.t.ca_issuer) == 0,
	      "a CRL by swtpm's issuing CA");
	snprintf(path, sizeof(path), "%s/m5.pem", v.t.dir);
	CHECK(tpm_ca_load(path, v.why, sizeof(v.why)) == NULL && strstr(v.why, "cRLSign"),
	      "a CRL its signer may not sign is refused at load (%s)", v.why);
	printf("    CRL signer without cRLSign: %s\n", v.why);

	/* a private key pasted into the bundle by mistake */
	CHECK(tools(&v, "cat maker.pem iss.key > m6.pem") == 0, "a bundle with a key in it");
	snprintf(path, sizeof(path), "%s/m6.pem", v.t.dir);
	CHECK(tpm_ca_load(path, v.why, sizeof(v.why)) == NULL && strstr(v.why, "private key"),
	      "a CA file with a private key is refused at load (%s)", v.why);
	tv_done(&v.t);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"tpm_names_keys_and_ak", tpm_names_keys_and_ak},
		{"tpm_quote_checked", tpm_quote_checked},
		{"tpm_credential_activated", tpm_credential_activated},
		{"tpm_ek_chain", tpm_ek_chain},
		{"tpm_ek_revoked", tpm_ek_revoked},
	};

	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

/*
 * The attestation key (see tpm.h): a restricted ECDSA P-256 signing key created under the SRK
 * the first time, kept as a blob only this TPM can load (TPM2B_PUBLIC || TPM2B_PRIVATE,
 * marshalled, in the state directory), and signing through TPM2_Hash's ticket.
 */
#include "tpm_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/x509.h>
#include <tss2/tss2_mu.h>

#include "durable.h"
#include "log.h"

#define AK_BLOB_MAX (sizeof(TPM2B_PUBLIC) + sizeof(TPM2B_PRIVATE))

/* TPM.md §2: restricted signing, never leaves the TPM, ECDSA with SHA-256 only. */
static const TPM2B_PUBLIC ak_template = {
	.publicArea =
		{
			.type = TPM2_ALG_ECC,
			.nameAlg = TPM2_ALG_SHA256,
			.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					    TPMA_OBJECT_SENSITIVEDATAORIGIN |
					    TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED |
					    TPMA_OBJECT_SIGN_ENCRYPT,
			.parameters.eccDetail =
				{
					.symmetric = {.algorithm = TPM2_ALG_NULL},
					.scheme = {.scheme = TPM2_ALG_ECDSA,
						   .details.ecdsa.hashAlg = TPM2_ALG_SHA256},
					.curveID = TPM2_ECC_NIST_P256,
					.kdf = {.scheme = TPM2_ALG_NULL},
				},
		},
};

/* Reads the regular file name in dirfd, at most cap bytes. -ENOENT, -EINVAL (too long or not
 * a regular file) or -errno. */
static int
read_small(int dirfd, const char *name, uint8_t *buf, size_t cap, size_t *len)
{
	struct stat st;
	ssize_t n;
	size_t got = 0;
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) != 0)
		err = -errno;
	else if (!S_ISREG(st.st_mode) || st.st_size < 0 || (size_t)st.st_size > cap)
		err = -EINVAL;
	while (err == 0 && got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? -errno : -EINVAL;
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	*len = got;
	return err;
}

/* Creates a new AK under the SRK and writes its blob durably (before it is ever used). */
static int
ak_create(struct tpm *t, int dirfd, uint8_t *blob, size_t *len)
{
	const TPM2B_SENSITIVE_CREATE sens = {0};
	const TPM2B_DATA outside = {0};
	const TPML_PCR_SELECTION pcrs = {0};
	TPM2B_PRIVATE *priv = NULL;
	TPM2B_PUBLIC *pub = NULL;
	size_t off = 0;
	TSS2_RC rc;
	int err;

	rc = Esys_Create(t->ctx, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
			 &ak_template, &outside, &pcrs, &priv, &pub, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "creating the attestation key");
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, blob, AK_BLOB_MAX, &off);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_MU_TPM2B_PRIVATE_Marshal(priv, blob, AK_BLOB_MAX, &off);
	Esys_Free(priv);
	Esys_Free(pub);
	if ((err = tpm_err(rc, "marshalling the attestation key")) != 0)
		return err;
	*len = off;
	log_info("cleave-hv: tpm: created a new attestation key (%s)", TPM_AK_BLOB_NAME);
	return durable_replace(dirfd, TPM_AK_BLOB_NAME, blob, off);
}

static int
ak_load(struct tpm *t, const uint8_t *blob, size_t len)
{
	TPM2B_PUBLIC pub = {0};
	TPM2B_PRIVATE priv = {0};
	size_t off = 0;
	TSS2_RC rc;

	rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(blob, len, &off, &pub);
	if (rc == TSS2_RC_SUCCESS)
		rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(blob, len, &off, &priv);
	if (rc != TSS2_RC_SUCCESS || off != len ||
	    memcmp(&pub.publicArea.parameters, &ak_template.publicArea.parameters,
		   sizeof(pub.publicArea.parameters)) != 0 ||
	    pub.publicArea.objectAttributes != ak_template.publicArea.objectAttributes) {
		log_err("cleave-hv: tpm: %s is not an attestation key blob", TPM_AK_BLOB_NAME);
		return -EKEYREJECTED;
	}
	rc = Esys_Load(t->ctx, t->srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &priv, &pub,
		       &t->ak);
	if (rc != TSS2_RC_SUCCESS) {
		t->ak = ESYS_TR_NONE;
		int err = tpm_err(rc, "loading the attestation key (not this TPM's?)");

		/* Out of memory or a transport failure says nothing about the blob. */
		return err == -ENOSPC || err == -EIO || err == -EAGAIN ? err : -EKEYREJECTED;
	}
	t->ak_pub = pub;
	off = 0;
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, t->ak_public, sizeof(t->ak_public), &off);
	t->ak_public_len = off;
	return tpm_err(rc, "marshalling the attestation key's public area");
}

int
tpm_ak_init(struct tpm *t, int dirfd)
{
	uint8_t blob[AK_BLOB_MAX];
	size_t len = 0;
	int err;

	if (t->ak != ESYS_TR_NONE)
		return 0;
	err = read_small(dirfd, TPM_AK_BLOB_NAME, blob, sizeof(blob), &len);
	if (err == -ENOENT)
		err = ak_create(t, dirfd, blob, &len);
	else if (err != 0)
		log_errno(-err, "cleave-hv: tpm: cannot read %s", TPM_AK_BLOB_NAME);
	if (err == 0)
		err = ak_load(t, blob, len);
	return err;
}

int
tpm_ak_public(struct tpm *t, uint8_t *out, size_t cap, size_t *len)
{
	if (t->ak == ESYS_TR_NONE)
		return -ENOKEY;
	if (cap < t->ak_public_len)
		return -EMSGSIZE;
	memcpy(out, t->ak_public, t->ak_public_len);
	*len = t->ak_public_len;
	return 0;
}

int
tpm_ak_name(struct tpm *t, uint8_t out[TPM_NAME_LEN])
{
	TPM2B_NAME *name = NULL;
	TSS2_RC rc;
	int err = 0;

	if (t->ak == ESYS_TR_NONE)
		return -ENOKEY;
	rc = Esys_TR_GetName(t->ctx, t->ak, &name);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "the attestation key's name");
	if (name->size != TPM_NAME_LEN)
		err = -EIO;
	else
		memcpy(out, name->name, TPM_NAME_LEN);
	Esys_Free(name);
	return err;
}

/* Left-pads an ECC coordinate or signature half to 32 bytes. */
static int
pad32(const TPM2B_ECC_PARAMETER *p, uint8_t out[32])
{
	if (p->size > 32)
		return -EIO;
	memset(out, 0, 32 - p->size);
	memcpy(out + 32 - p->size, p->buffer, p->size);
	return 0;
}

int
tpm_ak_spki(struct tpm *t, uint8_t *out, size_t cap, size_t *len)
{
	char group[] = "prime256v1";
	uint8_t pt[65] = {4};
	OSSL_PARAM params[] = {
		OSSL_PARAM_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
		OSSL_PARAM_octet_string(OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt)),
		OSSL_PARAM_END,
	};
	EVP_PKEY_CTX *pc;
	EVP_PKEY *key = NULL;
	unsigned char *p = out;
	int n = -1;

	if (t->ak == ESYS_TR_NONE)
		return -ENOKEY;
	if (pad32(&t->ak_pub.publicArea.unique.ecc.x, pt + 1) != 0 ||
	    pad32(&t->ak_pub.publicArea.unique.ecc.y, pt + 33) != 0)
		return -EIO;
	pc = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (pc != NULL && EVP_PKEY_fromdata_init(pc) == 1 &&
	    EVP_PKEY_fromdata(pc, &key, EVP_PKEY_PUBLIC_KEY, params) == 1)
		n = i2d_PUBKEY(key, NULL);
	if (n > 0 && (size_t)n <= cap)
		n = i2d_PUBKEY(key, &p);
	else if (n > 0)
		n = -2;
	EVP_PKEY_free(key);
	EVP_PKEY_CTX_free(pc);
	if (n <= 0) {
		log_err("cleave-hv: tpm: cannot encode the attestation key as "
			"SubjectPublicKeyInfo");
		return n == -2 ? -EMSGSIZE : -EIO;
	}
	*len = (size_t)n;
	return 0;
}

int
tpm_sign(struct tpm *t, const void *body, size_t len, uint8_t sig[TPM_SIG_LEN])
{
	const TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_ECDSA,
					.details.ecdsa.hashAlg = TPM2_ALG_SHA256};
	static const uint8_t generated[4] = {0xff, 0x54, 0x43, 0x47}; /* TPM_GENERATED_VALUE */
	TPM2B_MAX_BUFFER data = {0};
	TPM2B_DIGEST *digest = NULL;
	TPMT_TK_HASHCHECK *ticket = NULL;
	TPMT_SIGNATURE *s = NULL;
	TSS2_RC rc;
	int err;

	if (t->ak == ESYS_TR_NONE)
		return -ENOKEY;
	/* A body that looks like a TPM-made structure gets no ticket; refuse it clearly. */
	if ((body == NULL && len > 0) || len > sizeof(data.buffer) ||
	    (len >= 4 && memcmp(body, generated, 4) == 0))
		return -EINVAL;
	data.size = (UINT16)len;
	if (len > 0)
		memcpy(data.buffer, body, len);
	rc = Esys_Hash(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &data, TPM2_ALG_SHA256,
		       ESYS_TR_RH_OWNER, &digest, &ticket);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "TPM2_Hash");
	rc = Esys_Sign(t->ctx, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, digest, &scheme,
		       ticket, &s);
	err = tpm_err(rc, "TPM2_Sign");
	if (err == 0 && s->sigAlg != TPM2_ALG_ECDSA)
		err = -EIO;
	if (err == 0 && (pad32(&s->signature.ecdsa.signatureR, sig) != 0 ||
			 pad32(&s->signature.ecdsa.signatureS, sig + 32) != 0))
		err = -EIO;
	Esys_Free(digest);
	Esys_Free(ticket);
	Esys_Free(s);
	return err;
}

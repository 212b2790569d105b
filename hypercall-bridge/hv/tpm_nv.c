/*
 * TPM NV (see tpm.h): the EK certificate the manufacturer wrote, read in chunks of the TPM's
 * NV buffer size, and cleave-hv's two NV counters (TPM.md §2, §5), defined by cleave-hv in the
 * owner hierarchy with an empty index authorization and not orderly (every increment reaches
 * NV at once: a counter that could roll back across a power cut would defeat its purpose).
 */
#include "tpm_int.h"

#include <errno.h>
#include <string.h>

#include "log.h"

#define NV_CHUNK_DEFAULT 512

static const TPMA_NV counter_attrs = (TPM2_NT_COUNTER << TPMA_NV_TPM2_NT_SHIFT) | TPMA_NV_AUTHREAD |
				     TPMA_NV_AUTHWRITE | TPMA_NV_NO_DA;

/* The TPM's largest NV_Read, bounded by what a TPM2B_MAX_NV_BUFFER holds. */
static UINT16
nv_chunk(struct tpm *t)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	UINT32 v = NV_CHUNK_DEFAULT;
	TSS2_RC rc;

	rc = Esys_GetCapability(t->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
				TPM2_CAP_TPM_PROPERTIES, TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap);
	if (rc == TSS2_RC_SUCCESS && cap->data.tpmProperties.count == 1 &&
	    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX)
		v = cap->data.tpmProperties.tpmProperty[0].value;
	Esys_Free(cap);
	if (v == 0 || v > sizeof(((TPM2B_MAX_NV_BUFFER *)0)->buffer))
		v = NV_CHUNK_DEFAULT;
	return (UINT16)v;
}

static int
nv_public(struct tpm *t, ESYS_TR nv, TPMS_NV_PUBLIC *out)
{
	TPM2B_NV_PUBLIC *pub = NULL;
	TSS2_RC rc;

	rc = Esys_NV_ReadPublic(t->ctx, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return tpm_err(rc, "TPM2_NV_ReadPublic");
	*out = pub->nvPublic;
	Esys_Free(pub);
	return 0;
}

static int
nv_read_chunks(struct tpm *t, ESYS_TR nv, const TPMS_NV_PUBLIC *pub, uint8_t *out, size_t cap)
{
	ESYS_TR auth = (pub->attributes & TPMA_NV_AUTHREAD) ? nv : ESYS_TR_RH_OWNER;
	UINT16 chunk = nv_chunk(t), off = 0, n;
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TSS2_RC rc;

	if (pub->dataSize > cap)
		return -EMSGSIZE;
	while (off < pub->dataSize) {
		n = (UINT16)(pub->dataSize - off < chunk ? pub->dataSize - off : chunk);
		rc = Esys_NV_Read(t->ctx, auth, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
				  off, &data);
		if (rc != TSS2_RC_SUCCESS)
			return tpm_err(rc, "TPM2_NV_Read");
		if (data->size != n) {
			Esys_Free(data);
			return -EIO;
		}
		memcpy(out + off, data->buffer, n);
		Esys_Free(data);
		off = (UINT16)(off + n);
	}
	return 0;
}

int
tpm_ek_cert(struct tpm *t, uint8_t *out, size_t cap, size_t *len)
{
	TPMS_NV_PUBLIC pub;
	ESYS_TR nv;
	int err = tpm_nv_handle(t, TPM_NV_EK_CERT_RSA, &nv);

	if (err == -ENOENT)
		log_err("cleave-hv: tpm: this TPM has no RSA EK certificate (NV 0x%x)",
			TPM_NV_EK_CERT_RSA);
	if (err != 0)
		return err;
	err = nv_public(t, nv, &pub);
	if (err == 0)
		err = nv_read_chunks(t, nv, &pub, out, cap);
	if (err == 0)
		*len = pub.dataSize;
	Esys_TR_Close(t->ctx, &nv);
	return err;
}

/* Reads a counter; quiet about an index never incremented (tpm_counter_ensure expects one). */
static int
counter_read(struct tpm *t, ESYS_TR nv, uint64_t *out, int quiet)
{
	TPM2B_MAX_NV_BUFFER *data = NULL;
	TSS2_RC rc;
	int err;

	rc = Esys_NV_Read(t->ctx, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, 8, 0,
			  &data);
	if (quiet && rc == TPM2_RC_NV_UNINITIALIZED)
		return -ENODATA;
	if ((err = tpm_err(rc, "reading an NV counter")) != 0)
		return err;
	err = data->size == 8 ? 0 : -EIO;
	if (err == 0)
		*out = tpm_get_be64(data->buffer);
	Esys_Free(data);
	return err;
}

static int
counter_define(struct tpm *t, uint32_t index, ESYS_TR *nv)
{
	const TPM2B_AUTH auth = {0};
	TPM2B_NV_PUBLIC pub = {.nvPublic = {.nvIndex = index,
					    .nameAlg = TPM2_ALG_SHA256,
					    .attributes = counter_attrs,
					    .dataSize = 8}};
	TSS2_RC rc;
	int err;

	rc = Esys_NV_DefineSpace(t->ctx, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
				 ESYS_TR_NONE, &auth, &pub, nv);
	err = tpm_err(rc, "defining an NV counter");
	if (err == -EACCES)
		log_err("cleave-hv: tpm: the owner authorization is not empty: cleave-hv cannot "
			"define NV counter 0x%x (define it with tpm2_nvdefine, attributes "
			"nt=counter|authread|authwrite|no_da, size 8)",
			index);
	if (err == 0)
		log_info("cleave-hv: tpm: defined NV counter 0x%x", index);
	return err;
}

int
tpm_counter_ensure(struct tpm *t, uint32_t index)
{
	TPMS_NV_PUBLIC pub;
	uint64_t v;
	ESYS_TR nv;
	int err;

	if ((index >> 24) != TPM2_HT_NV_INDEX)
		return -EINVAL;
	err = tpm_nv_handle(t, index, &nv);
	if (err == -ENOENT)
		err = counter_define(t, index, &nv);
	if (err != 0)
		return err;
	err = nv_public(t, nv, &pub);
	if (err == 0 &&
	    (pub.attributes & TPMA_NV_TPM2_NT_MASK) >> TPMA_NV_TPM2_NT_SHIFT != TPM2_NT_COUNTER) {
		log_err("cleave-hv: tpm: NV index 0x%x exists and is not a counter", index);
		err = -EEXIST;
	}
	/* A counter is readable once incremented; a crash may have come between the two. */
	if (err == 0 && (err = counter_read(t, nv, &v, 1)) == -ENODATA)
		err = tpm_err(Esys_NV_Increment(t->ctx, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
						ESYS_TR_NONE),
			      "incrementing a new NV counter");
	Esys_TR_Close(t->ctx, &nv);
	return err;
}

int
tpm_counter_read(struct tpm *t, uint32_t index, uint64_t *out)
{
	ESYS_TR nv;
	int err = tpm_nv_handle(t, index, &nv);

	if (err != 0)
		return err;
	err = counter_read(t, nv, out, 0);
	Esys_TR_Close(t->ctx, &nv);
	return err;
}

int
tpm_counter_increment(struct tpm *t, uint32_t index)
{
	ESYS_TR nv;
	TSS2_RC rc;
	int err = tpm_nv_handle(t, index, &nv);

	if (err != 0)
		return err;
	rc = Esys_NV_Increment(t->ctx, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE);
	err = tpm_err(rc, "incrementing an NV counter");
	Esys_TR_Close(t->ctx, &nv);
	return err;
}

/*
 * Header codec of the corporate volume (see volume_hdr.h). Every byte of an image is either a
 * field with a checked range or reserved and checked zero; the SHA-256 checksum covers the copy
 * with the checksum field zeroed. Validation against the volume file's size is done here so that
 * no caller can forget it.
 */
#include "volume_hdr.h"
#include "le.h"

#include <errno.h>
#include <string.h>

#include "crypto.h"
#include "util.h"
#include "wire.h"

/* Byte offsets inside one 4096-byte copy. */
enum {
	OFF_MAGIC = 0,
	OFF_VERSION = 8,
	OFF_STATE = 12,
	OFF_SEQ = 16,
	OFF_UUID = 24,
	OFF_SECTOR = 40,
	OFF_CIPHER = 44,
	OFF_DATA_OFF = 48,
	OFF_DATA_LEN = 56,
	OFF_EPOCH = 64,
	OFF_WRAP_ALG = 72,
	OFF_RSV0 = 76,
	OFF_WRAPPED = 80,
	OFF_INTENT_CMD = OFF_WRAPPED + VOLUME_WRAP_FIELD,   /* 176 */
	OFF_INTENT_WRAP = OFF_INTENT_CMD + VOLUME_HASH_LEN, /* 208 */
	OFF_RSV1 = OFF_INTENT_WRAP + VOLUME_HASH_LEN,       /* 240 */
	OFF_CSUM = VOLUME_HDR_SIZE - VOLUME_HASH_LEN,       /* 4064 */
};

static const uint8_t magic[2][8] = {
	{'C', 'L', 'V', 'O', 'L', 'H', 'A', 0xa1},
	{'C', 'L', 'V', 'O', 'L', 'H', 'B', 0xb2},
};

static int
all_zero(const uint8_t *p, size_t n)
{
	uint8_t d = 0;

	for (size_t i = 0; i < n; i++)
		d |= p[i];
	return d == 0;
}

static void
checksum(const uint8_t img[VOLUME_HDR_SIZE], uint8_t out[VOLUME_HASH_LEN])
{
	static const uint8_t zero[VOLUME_HASH_LEN];
	const void *parts[2] = {img, zero};
	size_t lens[2] = {OFF_CSUM, sizeof(zero)};

	crypto_sha256_parts(parts, lens, 2, out);
}

void
volume_hdr_encode(const struct volume_hdr *h, int copy, uint8_t out[VOLUME_HDR_SIZE])
{
	memset(out, 0, VOLUME_HDR_SIZE);
	memcpy(out + OFF_MAGIC, magic[copy == VOLUME_COPY_B], 8);
	put32(out + OFF_VERSION, h->version);
	put32(out + OFF_STATE, h->state);
	put64(out + OFF_SEQ, h->seq);
	memcpy(out + OFF_UUID, h->uuid, VOLUME_UUID_LEN);
	put32(out + OFF_SECTOR, h->sector_size);
	put32(out + OFF_CIPHER, h->cipher);
	put64(out + OFF_DATA_OFF, h->data_offset);
	put64(out + OFF_DATA_LEN, h->data_length);
	put64(out + OFF_EPOCH, h->key_epoch);
	put32(out + OFF_WRAP_ALG, h->wrap_alg);
	memcpy(out + OFF_WRAPPED, h->wrapped, KEYS_WRAPPED_LEN);
	memcpy(out + OFF_INTENT_CMD, h->intent_cmd, VOLUME_HASH_LEN);
	memcpy(out + OFF_INTENT_WRAP, h->intent_wrap, VOLUME_HASH_LEN);
	checksum(out, out + OFF_CSUM);
}

static int
fields_valid(const struct volume_hdr *h, uint64_t file_size)
{
	if (h->version != VOLUME_FORMAT_V1 || h->state < HV_STATE_ACTIVE ||
	    h->state > HV_STATE_ERASED || h->sector_size != VOLUME_SECTOR_SIZE ||
	    h->cipher != VOLUME_CIPHER_XTS256 || h->wrap_alg != VOLUME_WRAP_GCM256 ||
	    h->data_offset != VOLUME_DATA_OFF || h->key_epoch == 0 || h->seq == 0)
		return 0;
	if (h->data_length == 0 || h->data_length % VOLUME_SECTOR_SIZE != 0 ||
	    h->data_length > UINT64_MAX - h->data_offset ||
	    h->data_offset + h->data_length > file_size)
		return 0;
	/* The intent record exists exactly while a wipe is pending or done. */
	if (h->state == HV_STATE_WIPE_PENDING || h->state == HV_STATE_ERASED)
		return !all_zero(h->intent_cmd, VOLUME_HASH_LEN);
	return all_zero(h->intent_cmd, VOLUME_HASH_LEN) &&
	       all_zero(h->intent_wrap, VOLUME_HASH_LEN);
}

int
volume_hdr_decode(const uint8_t in[VOLUME_HDR_SIZE], int copy, uint64_t file_size,
		  struct volume_hdr *out)
{
	uint8_t sum[VOLUME_HASH_LEN];

	memset(out, 0, sizeof(*out));
	if (memcmp(in + OFF_MAGIC, magic[copy == VOLUME_COPY_B], 8) != 0)
		return -EBADMSG;
	checksum(in, sum);
	if (memcmp(sum, in + OFF_CSUM, VOLUME_HASH_LEN) != 0)
		return -EBADMSG;
	if (!all_zero(in + OFF_RSV0, 4) ||
	    !all_zero(in + OFF_WRAPPED + KEYS_WRAPPED_LEN, VOLUME_WRAP_FIELD - KEYS_WRAPPED_LEN) ||
	    !all_zero(in + OFF_RSV1, OFF_CSUM - OFF_RSV1))
		return -EINVAL;
	out->version = get32(in + OFF_VERSION);
	out->state = get32(in + OFF_STATE);
	out->seq = get64(in + OFF_SEQ);
	memcpy(out->uuid, in + OFF_UUID, VOLUME_UUID_LEN);
	out->sector_size = get32(in + OFF_SECTOR);
	out->cipher = get32(in + OFF_CIPHER);
	out->data_offset = get64(in + OFF_DATA_OFF);
	out->data_length = get64(in + OFF_DATA_LEN);
	out->key_epoch = get64(in + OFF_EPOCH);
	out->wrap_alg = get32(in + OFF_WRAP_ALG);
	memcpy(out->wrapped, in + OFF_WRAPPED, KEYS_WRAPPED_LEN);
	memcpy(out->intent_cmd, in + OFF_INTENT_CMD, VOLUME_HASH_LEN);
	memcpy(out->intent_wrap, in + OFF_INTENT_WRAP, VOLUME_HASH_LEN);
	if (!fields_valid(out, file_size)) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	return 0;
}

size_t
volume_hdr_aad(const struct volume_hdr *h, uint8_t out[VOLUME_AAD_LEN])
{
	memset(out, 0, VOLUME_AAD_LEN);
	put32(out + 0, h->version);
	put32(out + 4, h->sector_size);
	memcpy(out + 8, h->uuid, VOLUME_UUID_LEN);
	put32(out + 24, h->cipher);
	put32(out + 28, h->wrap_alg);
	put64(out + 32, h->data_offset);
	put64(out + 40, h->data_length);
	put64(out + 48, h->key_epoch);
	memcpy(out + 56, "CLVOLAAD", 8);
	return VOLUME_AAD_LEN;
}

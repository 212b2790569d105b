/*
 * The corporate volume's fixed binary header (4096 bytes, little-endian; layout table in
 * hypercall-bridge/VOLUME.md): encode, decode with full validation, and the bytes that the
 * wrapped volume key authenticates. Pure functions over caller buffers: no I/O, no keys, no
 * logging, so the decoder can be fuzzed and tested with one defect per image.
 */
#ifndef CLEAVE_HV_VOLUME_HDR_H
#define CLEAVE_HV_VOLUME_HDR_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define VOLUME_HDR_SIZE      4096u
#define VOLUME_HDR_A_OFF     0u
#define VOLUME_HDR_B_OFF     (1024u * 1024u - VOLUME_HDR_SIZE)
#define VOLUME_DATA_OFF      (1024u * 1024u)
#define VOLUME_SECTOR_SIZE   4096u
#define VOLUME_UUID_LEN      16
#define VOLUME_HASH_LEN      32
#define VOLUME_WRAP_FIELD    96 /* KEYS_WRAPPED_LEN (92) + 4 bytes that must be zero */
#define VOLUME_FORMAT_V1     1u
#define VOLUME_CIPHER_XTS256 1u /* AES-256-XTS, tweak = LE64 4096-byte sector index */
#define VOLUME_WRAP_GCM256   1u /* AES-256-GCM under the epoch's root key */

/* Which copy a header image is: they differ only in magic and offset. */
enum { VOLUME_COPY_A = 0, VOLUME_COPY_B = 1 };

/* Decoded header; the same numbers as HV_STATE_* of common/wire.h are used for state. */
struct volume_hdr {
	uint32_t version;
	uint32_t state;
	uint64_t seq;
	uint8_t uuid[VOLUME_UUID_LEN];
	uint32_t sector_size;
	uint32_t cipher;
	uint64_t data_offset;
	uint64_t data_length;
	uint64_t key_epoch;
	uint32_t wrap_alg;
	uint8_t wrapped[KEYS_WRAPPED_LEN];
	uint8_t intent_cmd[VOLUME_HASH_LEN];  /* hash of the wipe command, zero unless wiping */
	uint8_t intent_wrap[VOLUME_HASH_LEN]; /* SHA-256 of wrapped[] when the wipe began */
};

/* Writes h as copy (VOLUME_COPY_A or _B) into out (caller storage), checksum included. */
void volume_hdr_encode(const struct volume_hdr *h, int copy, uint8_t out[VOLUME_HDR_SIZE]);

/*
 * Decodes and validates one copy from in (borrowed) read from a file of file_size bytes.
 * Returns 0, -EBADMSG for a wrong magic or checksum, or -EINVAL for a field out of range
 * (version, state, sector size, cipher, offsets beyond the file, nonzero reserved bytes).
 */
int volume_hdr_decode(const uint8_t in[VOLUME_HDR_SIZE], int copy, uint64_t file_size,
		      struct volume_hdr *out);

/*
 * The additional authenticated data bound to the wrapped VMK: version, uuid, sector size,
 * cipher, data offset, data length, key epoch, wrap algorithm (not seq, state or intent, which
 * change without a rewrap). Fills out (caller storage) and returns its length.
 */
#define VOLUME_AAD_LEN 64
size_t volume_hdr_aad(const struct volume_hdr *h, uint8_t out[VOLUME_AAD_LEN]);

#endif

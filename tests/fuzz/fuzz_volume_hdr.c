/*
 * libFuzzer target: the corporate volume header decoder, which reads a file an attacker with
 * the phone's storage could edit. The fuzzer's bytes become a header whose checksum is fixed
 * up, so mutations reach the field checks; a header that decodes must re-encode identically.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crypto.h"
#include "volume_hdr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t zero[32];
	uint8_t in[VOLUME_HDR_SIZE] = {0}, again[VOLUME_HDR_SIZE];
	const void *parts[2] = {in, zero};
	size_t lens[2] = {VOLUME_HDR_SIZE - 32, sizeof(zero)};
	uint64_t file_size = 64u << 20;
	struct volume_hdr h;
	int copy = size > 6 && data[6] == 'B'; /* the copy's magic says which it is */

	memcpy(in, data, size < sizeof(in) ? size : sizeof(in));
	(void)volume_hdr_decode(in, copy, file_size, &h); /* raw, checksum as given */
	crypto_sha256_parts(parts, lens, 2, in + VOLUME_HDR_SIZE - 32);
	if (volume_hdr_decode(in, copy, file_size, &h) == 0) {
		volume_hdr_encode(&h, copy, again);
		if (memcmp(again, in, sizeof(in)) != 0)
			__builtin_trap();
	}
	return 0;
}

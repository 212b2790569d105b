/*
 * libFuzzer target: the host bridge message decoder, which reads whatever any local process
 * sends to cleave-hv's socket. A successful decode must re-encode to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hypercall-bridge/lib/bridge_msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct clv_msg_hdr h;
	const uint8_t *p;
	uint8_t again[CLV_MSG_HDR_LEN + CLV_MSG_PAYLOAD_MAX];
	struct clv_status s;

	if (clv_msg_decode(data, size, &h, &p) == CLV_OK) {
		long n = clv_msg_encode(&h, p, again, sizeof(again));

		if (n != (long)size || memcmp(again, data, size) != 0)
			__builtin_trap();
	}
	if (size >= 64)
		(void)clv_status_decode(data, &s);
	return 0;
}

/*
 * libFuzzer target: the ticket, attestation and receipt decoders (common/wire.c), which read
 * bytes relayed by the agent from the network. A successful decode must re-encode identically.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t again[RECEIPT_LEN];
	struct ticket t;
	struct attestation a;
	struct receipt r;

	if (ticket_decode(data, size, &t) == 0 &&
	    (ticket_encode(&t, again) != 0 || memcmp(again, data, TICKET_BODY_LEN) != 0))
		__builtin_trap();
	if (attest_decode(data, size, &a) == 0 &&
	    (attest_encode(&a, again) != 0 || memcmp(again, data, ATTEST_BODY_LEN) != 0))
		__builtin_trap();
	if (receipt_decode(data, size, &r) == 0 &&
	    (receipt_encode(&r, again) != 0 || memcmp(again, data, RECEIPT_BODY_LEN) != 0))
		__builtin_trap();
	return 0;
}

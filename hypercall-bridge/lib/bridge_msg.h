/*
 * Encoding and strict decoding of host-side bridge messages (cleave_abi.h, ABI.md section 4):
 * header checks, reserved fields, and the exact payload size each function takes in a request
 * and gives in a reply. Shared by cleave-hv (decodes requests) and the bridge client (decodes
 * replies). Pure functions: no I/O, no allocation.
 */
#ifndef CLEAVE_BRIDGE_MSG_H
#define CLEAVE_BRIDGE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "cleave_abi.h"

/*
 * Expected payload size of fid's request (kind CLV_MSG_REQUEST) or successful reply; -1 when
 * the size varies (RECEIPTS reply: 8 + 320 * n, n <= CLV_RECEIPTS_PER_MSG), -2 for an unknown
 * function.
 */
long clv_payload_size(uint32_t fid, uint16_t kind);

/*
 * Writes header + payload into buf (cap bytes). Returns the message length, or -EINVAL when the
 * payload does not fit the function's size rules, -ENOSPC when cap is too small.
 */
long clv_msg_encode(const struct clv_msg_hdr *h, const void *payload, uint8_t *buf, size_t cap);

/*
 * Decodes exactly len bytes. On success *h is filled and *payload points into buf. Returns 0,
 * or a CLV_E_* code: CLV_E_INVALID_PARAMETER (bad magic, kind, reserved, length or payload
 * size), CLV_E_NOT_SUPPORTED (other ABI major, unknown function).
 */
int clv_msg_decode(const uint8_t *buf, size_t len, struct clv_msg_hdr *h, const uint8_t **payload);

/* Little-endian status record <-> struct (64 bytes). Decode rejects nonzero reserved. */
void clv_status_encode(const struct clv_status *s, uint8_t out[64]);
int clv_status_decode(const uint8_t in[64], struct clv_status *s);
/* CLV_FN_COUNTERS' reply: four little-endian u64, then 32 reserved bytes (zero, ignored). */
void clv_counters_encode(const struct clv_counters *k, uint8_t out[64]);
void clv_counters_decode(const uint8_t in[64], struct clv_counters *k);

#endif

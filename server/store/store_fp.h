/*
 * The hypervisor key fingerprint both backends store in devices.hv_fingerprint (migration
 * 0006) so that a search by fingerprint prefix is an index range: SQL cannot compute SHA-256.
 */
#ifndef CLEAVE_STORE_FP_H
#define CLEAVE_STORE_FP_H

#include <stddef.h>
#include <stdint.h>

/* The column's value for a hypervisor key: base64 of its SHA-256, without "SHA256:". */
void store_hv_fingerprint(const uint8_t key[32], char *out, size_t cap);

#endif

/*
 * HTTP Message Signatures (RFC 9421) as Cleave's devices use them, with Content-Digest (RFC 9530).
 * One profile only, so the parser can be strict:
 *
 *   Content-Digest:  sha-256=:<base64 of SHA-256(body)>:
 *   Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix s>;
 *                    keyid="<device id>";nonce="<decimal u64>";alg="ed25519"
 *   Signature:       sig1=:<base64 of the 64-byte Ed25519 signature>:
 *
 * The signature base is built exactly as RFC 9421 §2.5 says, so a proxy that terminates TLS does
 * not break it (no TLS state is covered). "@query" is "?" plus the raw query, or "?" when empty.
 * This module neither checks time windows nor replays: the caller owns that policy.
 */
#ifndef CLEAVE_HTTPSIG_H
#define CLEAVE_HTTPSIG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define HTTPSIG_KEYID_MAX 32 /* including NUL */
#define HTTPSIG_HDR_MAX   512

struct httpsig_params {
	int64_t created;
	char keyid[HTTPSIG_KEYID_MAX];
	uint64_t nonce;
};

/* Headers a client sends; all NUL-terminated. */
struct httpsig_headers {
	char content_digest[64];
	char signature_input[HTTPSIG_HDR_MAX];
	char signature[128];
};

/* Content-Digest value of body (len may be 0, body may then be NULL). 0 or -ENOSPC. */
int httpsig_content_digest(const void *body, size_t len, char *dst, size_t cap);

/*
 * Builds the RFC 9421 signature base for our profile into dst (NUL-terminated). query is the
 * raw query string without '?', or NULL/"" for none. Returns its length, -ENOSPC, or -EINVAL
 * when a value could not be one line of the base (method not a token, path not starting with
 * '/', a byte outside 0x21..0x7e) or p is invalid (created outside 0..10^15-1, bad keyid).
 */
long httpsig_base(char *dst, size_t cap, const char *method, const char *path, const char *query,
		  const char *content_digest, const struct httpsig_params *p);

/* Client side: fills h for a request, signing with k. Returns 0 or -errno. */
int httpsig_sign(const struct ed25519_key *k, const char *method, const char *path,
		 const char *query, const void *body, size_t len, const struct httpsig_params *p,
		 struct httpsig_headers *h);

/*
 * Server side, step 1: parses Signature-Input and Signature strictly: exactly the serialization
 * httpsig_sign writes (label sig1, our covered components in order, then created, keyid, nonce
 * and alg="ed25519" in that order, canonical numbers, no whitespace, nothing else), because
 * httpsig_verify rebuilds "@signature-params" from p. Returns 0 or -EINVAL; sig receives the 64
 * signature bytes. p and sig are written only on success.
 */
int httpsig_parse(const char *signature_input, const char *signature, struct httpsig_params *p,
		  uint8_t sig[ED25519_SIG_LEN]);

/*
 * Server side, step 2: checks that content_digest matches body and that sig verifies over the
 * signature base with pub. Returns 0, -EBADMSG (digest or signature wrong) or -EINVAL.
 */
int httpsig_verify(const uint8_t pub[ED25519_PUB_LEN], const char *method, const char *path,
		   const char *query, const void *body, size_t len, const char *content_digest,
		   const struct httpsig_params *p, const uint8_t sig[ED25519_SIG_LEN]);

#endif

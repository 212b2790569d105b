/*
 * HTTP Message Signatures (RFC 9421) for Cleave's device requests, with Content-Digest (RFC 9530).
 * Cleave's own signer (the agent) writes one serialization:
 *
 *   Content-Digest:  sha-256=:<base64 of SHA-256(body)>:
 *   Signature-Input: sig1=("@method" "@path" "@query" "content-digest");created=<unix s>;
 *                    keyid="<device id>";nonce="<decimal u64>";alg="ed25519"
 *   Signature:       sig1=:<base64 of the 64-byte Ed25519 signature>:
 *
 * The verifier accepts any RFC 9421 signer: both fields are parsed as RFC 8941 Dictionaries (any
 * label, parameters in any order, unknown parameters ignored, "expires" honoured by the caller),
 * and the signature base ends with the "@signature-params" text exactly as received. No TLS
 * state is covered, so a proxy that terminates TLS does not break it. This module neither checks
 * time windows nor replays: the caller owns that policy.
 */
#ifndef CLEAVE_HTTPSIG_H
#define CLEAVE_HTTPSIG_H

#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define HTTPSIG_KEYID_MAX 32   /* including NUL */
#define HTTPSIG_HDR_MAX   512  /* what httpsig_sign writes */
#define HTTPSIG_FIELD_MAX 1024 /* cap on a received Signature-Input or Signature value */
#define HTTPSIG_NCOMP     4    /* covered components: exactly Cleave's four, in any order */

struct httpsig_params {
	int64_t created;
	int64_t expires; /* 0: none; httpsig_sign ignores it */
	char keyid[HTTPSIG_KEYID_MAX];
	uint64_t nonce;
};

/* One signature taken from received Signature-Input and Signature fields (httpsig_parse). */
struct httpsig_parsed {
	struct httpsig_params p;
	uint8_t sig[ED25519_SIG_LEN];
	uint8_t comp[HTTPSIG_NCOMP];    /* covered components in the order sent (private codes) */
	char params[HTTPSIG_FIELD_MAX]; /* the "@signature-params" value as received */
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
 * Server side, step 1: parses Signature-Input and Signature (each at most HTTPSIG_FIELD_MAX - 1
 * bytes) as RFC 8941 Dictionaries and picks the first Signature-Input member that Cleave can
 * verify: an Inner List covering exactly "@method", "@path", "@query" and "content-digest" (any
 * order, no component parameters), with created (Integer >= 0), keyid (String, a device id),
 * nonce (String, canonical decimal u64), optionally alg (String "ed25519") and expires (Integer
 * > 0), no known parameter repeated; other parameters are ignored. The Signature member with
 * the same label must be a 64-byte Byte Sequence. Returns 0 or -EINVAL with *why (a static
 * string, may be NULL) saying what was wrong; out is written only on success.
 */
int httpsig_parse(const char *signature_input, const char *signature, struct httpsig_parsed *out,
		  const char **why);

/*
 * Server side, step 2: checks that content_digest matches body and that sp->sig verifies with
 * pub over the signature base of the request: sp's components in their order, then
 * "@signature-params" with sp->params. Returns 0, -EBADMSG (digest or signature wrong), -EINVAL
 * or -ENOMEM.
 */
int httpsig_verify(const uint8_t pub[ED25519_PUB_LEN], const char *method, const char *path,
		   const char *query, const void *body, size_t len, const char *content_digest,
		   const struct httpsig_parsed *sp);

#endif

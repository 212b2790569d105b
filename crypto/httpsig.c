/*
 * Cleave's single profile of HTTP Message Signatures (RFC 9421) with Content-Digest (RFC 9530):
 * building the signature base, signing a request, and parsing and verifying one. The parser
 * accepts exactly the serialization httpsig_sign produces (same components, same parameter
 * order, canonical numbers, no whitespace), because the verifier rebuilds "@signature-params"
 * from the parsed values and anything looser would make one header verify in two ways. It does
 * not look at clocks, nonces already seen or which device owns a keyid: that is the caller's job.
 */
#include "httpsig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "util.h"

#define LABEL_PREFIX  "sig1="
#define COMPONENTS    "(\"@method\" \"@path\" \"@query\" \"content-digest\")"
#define DIGEST_PREFIX "sha-256=:"
#define SIG_PREFIX    "sig1=:"
#define CREATED_MAX   INT64_C(999999999999999) /* RFC 8941 sf-integer: at most 15 digits */

/* Bounded string builder that keeps counting past its capacity, as snprintf does. */
struct sbuf {
	char *p; /* borrowed; may be NULL when cap is 0 */
	size_t cap;
	size_t len;
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->len < b->cap) {
		size_t room = b->cap - b->len;

		memcpy(b->p + b->len, s, MIN(n, room));
	}
	b->len += n;
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static void
sb_u64(struct sbuf *b, uint64_t v)
{
	char d[24];
	int n = snprintf(d, sizeof(d), "%" PRIu64, v);

	sb_add(b, d, (size_t)n);
}

/* Terminates the buffer; returns its length, or -ENOSPC (leaving "") when it did not fit. */
static long
sb_finish(struct sbuf *b)
{
	if (b->len >= b->cap) {
		if (b->cap > 0)
			b->p[0] = '\0';
		return -ENOSPC;
	}
	b->p[b->len] = '\0';
	return (long)b->len;
}

static int
visible(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

/* RFC 9110 tchar: what an HTTP method may be made of. */
static int
tchar(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int
all_visible(const char *s)
{
	for (; *s != '\0'; s++) {
		if (!visible((unsigned char)*s))
			return 0;
	}
	return 1;
}

static int
keyid_valid(const char *keyid)
{
	size_t n = strnlen(keyid, HTTPSIG_KEYID_MAX);

	if (n == 0 || n == HTTPSIG_KEYID_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)keyid[i];

		if (!visible(c) || c == '"' || c == '\\')
			return 0;
	}
	return 1;
}

static int
params_valid(const struct httpsig_params *p)
{
	return p != NULL && p->created >= 0 && p->created <= CREATED_MAX && keyid_valid(p->keyid);
}

/*
 * Every value that goes into the base must be a single line of visible ASCII, or a crafted path
 * could add lines of its own.
 */
static int
request_valid(const char *method, const char *path, const char *query, const char *digest)
{
	if (method == NULL || path == NULL || digest == NULL || method[0] == '\0' ||
	    path[0] != '/' || digest[0] == '\0')
		return 0;
	for (const char *m = method; *m != '\0'; m++) {
		if (!tchar((unsigned char)*m))
			return 0;
	}
	return all_visible(path) && (query == NULL || all_visible(query)) && all_visible(digest);
}

/* The "@signature-params" value, which is also the Signature-Input member after "sig1=". */
static void
sb_params(struct sbuf *b, const struct httpsig_params *p)
{
	sb_str(b, COMPONENTS ";created=");
	sb_u64(b, (uint64_t)p->created);
	sb_str(b, ";keyid=\"");
	sb_str(b, p->keyid);
	sb_str(b, "\";nonce=\"");
	sb_u64(b, p->nonce);
	sb_str(b, "\";alg=\"ed25519\"");
}

static void
sb_base(struct sbuf *b, const char *method, const char *path, const char *query, const char *digest,
	const struct httpsig_params *p)
{
	sb_str(b, "\"@method\": ");
	sb_str(b, method);
	sb_str(b, "\n\"@path\": ");
	sb_str(b, path);
	sb_str(b, "\n\"@query\": ?");
	if (query != NULL)
		sb_str(b, query);
	sb_str(b, "\n\"content-digest\": ");
	sb_str(b, digest);
	sb_str(b, "\n\"@signature-params\": ");
	sb_params(b, p);
}

int
httpsig_content_digest(const void *body, size_t len, char *dst, size_t cap)
{
	struct sbuf b = {dst, cap, 0};
	uint8_t h[SHA256_LEN];
	char enc[48];

	crypto_sha256(len > 0 ? body : "", len, h);
	if (b64_encode(enc, sizeof(enc), h, sizeof(h)) < 0)
		return -ENOSPC;
	sb_str(&b, DIGEST_PREFIX);
	sb_str(&b, enc);
	sb_str(&b, ":");
	return sb_finish(&b) < 0 ? -ENOSPC : 0;
}

/*
 * Returns 0 when the request and parameters may go into a base, -EINVAL otherwise; also
 * validates p.
 */
static int
base_inputs_valid(const char *method, const char *path, const char *query, const char *digest,
		  const struct httpsig_params *p)
{
	return request_valid(method, path, query, digest) && params_valid(p) ? 0 : -EINVAL;
}

long
httpsig_base(char *dst, size_t cap, const char *method, const char *path, const char *query,
	     const char *content_digest, const struct httpsig_params *p)
{
	struct sbuf b = {dst, cap, 0};
	int r = base_inputs_valid(method, path, query, content_digest, p);

	if (r < 0) {
		if (cap > 0)
			dst[0] = '\0';
		return r;
	}
	sb_base(&b, method, path, query, content_digest, p);
	return sb_finish(&b);
}

/* Builds the base in a heap buffer sized for it. *out is owned by the caller (free()). */
static long
base_alloc(char **out, const char *method, const char *path, const char *query, const char *digest,
	   const struct httpsig_params *p)
{
	struct sbuf measure = {NULL, 0, 0};
	char *buf;
	long n;

	if (base_inputs_valid(method, path, query, digest, p) < 0)
		return -EINVAL;
	sb_base(&measure, method, path, query, digest, p);
	buf = malloc(measure.len + 1);
	if (buf == NULL)
		return -ENOMEM;
	n = httpsig_base(buf, measure.len + 1, method, path, query, digest, p);
	if (n < 0) {
		free(buf);
		return n;
	}
	*out = buf;
	return n;
}

int
httpsig_sign(const struct ed25519_key *k, const char *method, const char *path, const char *query,
	     const void *body, size_t len, const struct httpsig_params *p,
	     struct httpsig_headers *h)
{
	uint8_t sig[ED25519_SIG_LEN];
	struct sbuf si = {h->signature_input, sizeof(h->signature_input), 0};
	struct sbuf sg = {h->signature, sizeof(h->signature), 0};
	char enc[96];
	char *base = NULL;
	long n;
	int r;

	memset(h, 0, sizeof(*h));
	r = httpsig_content_digest(body, len, h->content_digest, sizeof(h->content_digest));
	if (r < 0)
		goto fail;
	n = base_alloc(&base, method, path, query, h->content_digest, p);
	if (n < 0) {
		r = (int)n;
		goto fail;
	}
	r = ed25519_key_sign(k, base, (size_t)n, sig);
	free(base);
	if (r < 0)
		goto fail;
	if (b64_encode(enc, sizeof(enc), sig, sizeof(sig)) < 0) {
		r = -ENOSPC;
		goto fail;
	}
	sb_str(&si, LABEL_PREFIX);
	sb_params(&si, p);
	sb_str(&sg, SIG_PREFIX);
	sb_str(&sg, enc);
	sb_str(&sg, ":");
	if (sb_finish(&si) < 0 || sb_finish(&sg) < 0) {
		r = -ENOSPC;
		goto fail;
	}
	return 0;
fail:
	memset(h, 0, sizeof(*h));
	return r;
}

/* Consumes the literal lit at *s. Stops at the first difference, so never reads past a NUL. */
static int
eat(const char **s, const char *lit)
{
	size_t n = strlen(lit);

	if (strncmp(*s, lit, n) != 0)
		return 0;
	*s += n;
	return 1;
}

/*
 * Parses a canonical decimal (no sign, no leading zero, at most maxdigits digits, value at most
 * max) at *s. Returns 1 and advances *s, or 0.
 */
static int
eat_decimal(const char **s, unsigned maxdigits, uint64_t max, uint64_t *out)
{
	const char *c = *s;
	uint64_t v = 0;
	unsigned n = 0;

	if (c[0] == '0' && c[1] >= '0' && c[1] <= '9')
		return 0;
	while (*c >= '0' && *c <= '9') {
		unsigned d = (unsigned)(*c - '0');

		if (++n > maxdigits || v > (max - d) / 10)
			return 0;
		v = v * 10 + d;
		c++;
	}
	if (n == 0)
		return 0;
	*s = c;
	*out = v;
	return 1;
}

/* Parses the keyid sf-string body up to (not including) its closing quote. */
static int
eat_keyid(const char **s, char keyid[HTTPSIG_KEYID_MAX])
{
	const char *c = *s;
	size_t n = 0;

	while (*c != '"') {
		unsigned char ch = (unsigned char)*c;

		if (n + 1 >= HTTPSIG_KEYID_MAX || !visible(ch) || ch == '\\')
			return 0;
		keyid[n++] = *c++;
	}
	if (n == 0)
		return 0;
	memset(keyid + n, 0, HTTPSIG_KEYID_MAX - n);
	*s = c;
	return 1;
}

static int
parse_input(const char *si, struct httpsig_params *p)
{
	uint64_t created;

	if (strnlen(si, HTTPSIG_HDR_MAX) == HTTPSIG_HDR_MAX)
		return -EINVAL;
	if (!eat(&si, LABEL_PREFIX COMPONENTS ";created=") ||
	    !eat_decimal(&si, 15, (uint64_t)CREATED_MAX, &created) || !eat(&si, ";keyid=\"") ||
	    !eat_keyid(&si, p->keyid) || !eat(&si, "\";nonce=\"") ||
	    !eat_decimal(&si, 20, UINT64_MAX, &p->nonce) || !eat(&si, "\";alg=\"ed25519\"") ||
	    *si != '\0')
		return -EINVAL;
	p->created = (int64_t)created;
	return 0;
}

static int
parse_signature(const char *sg, uint8_t sig[ED25519_SIG_LEN])
{
	const char *end;
	size_t n = strnlen(sg, sizeof(((struct httpsig_headers *)0)->signature));

	if (n == sizeof(((struct httpsig_headers *)0)->signature) || !eat(&sg, SIG_PREFIX))
		return -EINVAL;
	end = strchr(sg, ':');
	if (end == NULL || end[1] != '\0')
		return -EINVAL;
	return b64_decode(sig, ED25519_SIG_LEN, sg, (size_t)(end - sg)) == ED25519_SIG_LEN
		       ? 0
		       : -EINVAL;
}

int
httpsig_parse(const char *signature_input, const char *signature, struct httpsig_params *p,
	      uint8_t sig[ED25519_SIG_LEN])
{
	struct httpsig_params tp;
	uint8_t ts[ED25519_SIG_LEN];

	if (signature_input == NULL || signature == NULL)
		return -EINVAL;
	memset(&tp, 0, sizeof(tp));
	if (parse_input(signature_input, &tp) < 0 || parse_signature(signature, ts) < 0)
		return -EINVAL;
	*p = tp;
	memcpy(sig, ts, sizeof(ts));
	return 0;
}

/* Accepts only "sha-256=:" + 44 base64 characters of 32 bytes + ":". */
static int
digest_well_formed(const char *d)
{
	uint8_t h[SHA256_LEN];
	size_t n = strnlen(d, sizeof(((struct httpsig_headers *)0)->content_digest));

	if (n != sizeof(DIGEST_PREFIX) - 1 + 44 + 1 || !eat(&d, DIGEST_PREFIX) || d[44] != ':')
		return 0;
	return b64_decode(h, sizeof(h), d, 44) == SHA256_LEN;
}

int
httpsig_verify(const uint8_t pub[ED25519_PUB_LEN], const char *method, const char *path,
	       const char *query, const void *body, size_t len, const char *content_digest,
	       const struct httpsig_params *p, const uint8_t sig[ED25519_SIG_LEN])
{
	char want[64];
	char *base = NULL;
	long n;
	int r;

	if (content_digest == NULL || !digest_well_formed(content_digest))
		return -EINVAL;
	r = httpsig_content_digest(body, len, want, sizeof(want));
	if (r < 0)
		return r;
	if (strcmp(want, content_digest) != 0)
		return -EBADMSG;
	n = base_alloc(&base, method, path, query, content_digest, p);
	if (n < 0)
		return n == -ENOMEM ? -ENOMEM : -EINVAL;
	r = ed25519_verify(pub, base, (size_t)n, sig);
	free(base);
	return r;
}

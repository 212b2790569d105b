/*
 * Cleave's RFC 9421 request signatures with Content-Digest (RFC 9530): building the signature
 * base, signing a request the one way the agent does, and taking any RFC 9421 signer's
 * Signature-Input and Signature apart (through the RFC 8941 parser in sfv.c) and verifying them.
 * The verifier signs nothing it rebuilt: the base ends with the "@signature-params" text exactly
 * as received, so one header can only ever verify one way. It does not look at clocks, nonces
 * already seen or which device owns a keyid: that is the caller's job.
 */
#include "httpsig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "sfv.h"
#include "util.h"

#define LABEL_PREFIX  "sig1="
#define COMPONENTS    "(\"@method\" \"@path\" \"@query\" \"content-digest\")"
#define MEMBERS_MAX   8  /* signatures one request may carry */
#define PARAMS_MAX    16 /* parameters of one signature */
#define ITEMS_MAX     16 /* components read from one signature (only 4 can be usable) */
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

/* Cleave's components, by the codes struct httpsig_parsed uses; also the order agents sign. */
enum { C_METHOD, C_PATH, C_QUERY, C_DIGEST };
static const char *const comp_names[HTTPSIG_NCOMP] = {"@method", "@path", "@query",
						      "content-digest"};
static const uint8_t agent_order[HTTPSIG_NCOMP] = {C_METHOD, C_PATH, C_QUERY, C_DIGEST};

/* What goes into one signature base. */
struct base_in {
	const char *method, *path, *query, *digest;
	const uint8_t *comp; /* HTTPSIG_NCOMP codes */
	const char *params;  /* the "@signature-params" value */
};

/* The agent's "@signature-params" value, which is also its Signature-Input after "sig1=". */
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

/* RFC 9421 §2.5: one line per covered component in the order covered, then the parameters. */
static void
sb_base(struct sbuf *b, const struct base_in *in)
{
	for (size_t i = 0; i < HTTPSIG_NCOMP; i++) {
		sb_str(b, "\"");
		sb_str(b, comp_names[in->comp[i]]);
		sb_str(b, "\": ");
		switch (in->comp[i]) {
		case C_METHOD:
			sb_str(b, in->method);
			break;
		case C_PATH:
			sb_str(b, in->path);
			break;
		case C_QUERY:
			sb_str(b, "?");
			if (in->query != NULL)
				sb_str(b, in->query);
			break;
		default:
			sb_str(b, in->digest);
		}
		sb_str(b, "\n");
	}
	sb_str(b, "\"@signature-params\": ");
	sb_str(b, in->params);
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

/* A received "@signature-params" value: one line of printable ASCII (sfv.c allows no more). */
static int
params_text_valid(const char *t)
{
	size_t n = strnlen(t, HTTPSIG_FIELD_MAX);

	if (n == 0 || n == HTTPSIG_FIELD_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i] < 0x20 || t[i] > 0x7e)
			return 0;
	}
	return 1;
}

/* 1 when in may go into a base: safe request values, known components, one-line parameters. */
static int
base_in_valid(const struct base_in *in)
{
	for (size_t i = 0; i < HTTPSIG_NCOMP; i++) {
		if (in->comp[i] >= HTTPSIG_NCOMP)
			return 0;
	}
	return request_valid(in->method, in->path, in->query, in->digest) &&
	       params_text_valid(in->params);
}

/* Writes the agent's "@signature-params" for p into dst (HTTPSIG_HDR_MAX); -EINVAL if p is bad. */
static int
agent_params(const struct httpsig_params *p, char dst[HTTPSIG_HDR_MAX])
{
	struct sbuf b = {dst, HTTPSIG_HDR_MAX, 0};

	if (!params_valid(p))
		return -EINVAL;
	sb_params(&b, p);
	return sb_finish(&b) < 0 ? -EINVAL : 0;
}

long
httpsig_base(char *dst, size_t cap, const char *method, const char *path, const char *query,
	     const char *content_digest, const struct httpsig_params *p)
{
	char params[HTTPSIG_HDR_MAX];
	struct base_in in = {method, path, query, content_digest, agent_order, params};
	struct sbuf b = {dst, cap, 0};

	if (agent_params(p, params) < 0 || !base_in_valid(&in)) {
		if (cap > 0)
			dst[0] = '\0';
		return -EINVAL;
	}
	sb_base(&b, &in);
	return sb_finish(&b);
}

/* Builds the base in a heap buffer sized for it. *out is owned by the caller (free()). */
static long
base_alloc(char **out, const struct base_in *in)
{
	struct sbuf measure = {NULL, 0, 0};
	struct sbuf b;
	long n;

	if (!base_in_valid(in))
		return -EINVAL;
	sb_base(&measure, in);
	b = (struct sbuf){malloc(measure.len + 1), measure.len + 1, 0};
	if (b.p == NULL)
		return -ENOMEM;
	sb_base(&b, in);
	n = sb_finish(&b);
	if (n < 0) {
		free(b.p);
		return n;
	}
	*out = b.p;
	return n;
}

int
httpsig_sign(const struct ed25519_key *k, const char *method, const char *path, const char *query,
	     const void *body, size_t len, const struct httpsig_params *p,
	     struct httpsig_headers *h)
{
	uint8_t sig[ED25519_SIG_LEN];
	char params[HTTPSIG_HDR_MAX];
	struct base_in in = {method, path, query, h->content_digest, agent_order, params};
	struct sbuf si = {h->signature_input, sizeof(h->signature_input), 0};
	struct sbuf sg = {h->signature, sizeof(h->signature), 0};
	char enc[96];
	char *base = NULL;
	long n;
	int r;

	memset(h, 0, sizeof(*h));
	r = httpsig_content_digest(body, len, h->content_digest, sizeof(h->content_digest));
	if (r == 0)
		r = agent_params(p, params);
	if (r < 0)
		goto fail;
	n = base_alloc(&base, &in);
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
	sb_str(&si, params);
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
 * The nonce contract: a String holding a canonical decimal (no sign, no leading zero, at most
 * 20 digits) of at most UINT64_MAX, because the server's replay window works on growing u64s.
 */
static int
nonce_parse(const struct sfv_item *it, uint64_t *out)
{
	uint64_t v = 0;
	size_t n = it->text.len;
	const char *c = it->text.p;

	if (it->type != SFV_STRING || n == 0 || n > 20 || (c[0] == '0' && n > 1))
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned d = (unsigned)(c[i] - '0');

		if (c[i] < '0' || c[i] > '9' || v > (UINT64_MAX - d) / 10)
			return 0;
		v = v * 10 + d;
	}
	*out = v;
	return 1;
}

/* Which of Cleave's components it names, or -1 (also for one with parameters, e.g. ;sf). */
static int
component_of(const struct sfv_item *it)
{
	if (it->type != SFV_STRING || it->nparams != 0)
		return -1;
	for (int c = 0; c < HTTPSIG_NCOMP; c++) {
		if (sfv_span_is(it->text, comp_names[c]))
			return c;
	}
	return -1;
}

static const char *
take_components(const struct sfv_item *items, size_t n, uint8_t comp[HTTPSIG_NCOMP])
{
	unsigned seen = 0;

	/* Four distinct known components fill comp, so a fifth returns before it is stored. */
	for (size_t i = 0; i < n; i++) {
		int c = component_of(&items[i]);

		if (c < 0)
			return "covers a component other than \"@method\", \"@path\", "
			       "\"@query\" and \"content-digest\" (or one with parameters)";
		if (seen & (1u << c))
			return "covers a component twice";
		seen |= 1u << c;
		comp[i] = (uint8_t)c;
	}
	if (n != HTTPSIG_NCOMP)
		return "does not cover all of \"@method\", \"@path\", \"@query\" and "
		       "\"content-digest\"";
	return NULL;
}

enum { P_CREATED, P_KEYID, P_NONCE, P_ALG, P_EXPIRES, P_KNOWN };
static const char *const known_params[P_KNOWN] = {"created", "keyid", "nonce", "alg", "expires"};

/* RFC 9421 §2.3 parameters Cleave uses; others (tag, …) are ignored. A repeat is refused. */
static const char *
take_params(const struct sfv_param *pr, size_t np, struct httpsig_params *p)
{
	const struct sfv_item *v[P_KNOWN] = {NULL};

	for (size_t i = 0; i < np; i++) {
		for (size_t k = 0; k < P_KNOWN; k++) {
			if (!sfv_span_is(pr[i].key, known_params[k]))
				continue;
			if (v[k] != NULL)
				return "repeats a signature parameter";
			v[k] = &pr[i].value;
		}
	}
	if (v[P_CREATED] == NULL || v[P_CREATED]->type != SFV_INTEGER || v[P_CREATED]->integer < 0)
		return "created is missing or not a non-negative Integer";
	if (v[P_EXPIRES] != NULL &&
	    (v[P_EXPIRES]->type != SFV_INTEGER || v[P_EXPIRES]->integer <= 0))
		return "expires is not a positive Integer";
	if (v[P_ALG] != NULL &&
	    (v[P_ALG]->type != SFV_STRING || !sfv_span_is(v[P_ALG]->text, "ed25519")))
		return "alg is not the String \"ed25519\"";
	if (v[P_KEYID] == NULL || sfv_string_copy(v[P_KEYID], p->keyid, sizeof(p->keyid)) < 0 ||
	    !keyid_valid(p->keyid))
		return "keyid is missing or not a device id String";
	if (v[P_NONCE] == NULL || !nonce_parse(v[P_NONCE], &p->nonce))
		return "nonce is missing or not a String of a decimal unsigned 64-bit integer";
	p->created = v[P_CREATED]->integer;
	p->expires = v[P_EXPIRES] != NULL ? v[P_EXPIRES]->integer : 0;
	return NULL;
}

/* NULL when member m is a signature Cleave can verify (then t is filled), else why not. */
static const char *
take_candidate(const struct sfv_member *m, struct httpsig_parsed *t)
{
	struct sfv_item items[ITEMS_MAX];
	struct sfv_param params[PARAMS_MAX];
	size_t ni, np;
	const char *why;
	int r;

	if (!m->inner_list)
		return "a Signature-Input member is not an Inner List";
	r = sfv_parse_inner_list(m->value, items, ITEMS_MAX, &ni, params, PARAMS_MAX, &np);
	if (r == -E2BIG)
		return "covers more components or has more parameters than the server takes";
	if (r < 0)
		return "malformed Signature-Input member";
	why = take_components(items, ni, t->comp);
	if (why == NULL)
		why = take_params(params, np, &t->p);
	if (why != NULL)
		return why;
	memcpy(t->params, m->value.p, m->value.len); /* < HTTPSIG_FIELD_MAX: the field was */
	t->params[m->value.len] = '\0';
	return NULL;
}

/* Why a whole field was refused, per field: too long, too many members, syntax, empty. */
enum { F_LONG, F_MANY, F_SYNTAX, F_EMPTY };
static const char *const si_why[] = {"Signature-Input is longer than the server takes",
				     "Signature-Input has more signatures than the server takes",
				     "Signature-Input is not an RFC 8941 Dictionary",
				     "Signature-Input is empty"};
static const char *const sg_why[] = {"Signature is longer than the server takes",
				     "Signature has more signatures than the server takes",
				     "Signature is not an RFC 8941 Dictionary",
				     "Signature is empty"};

/* Parses a whole field; NULL, or why not from msgs. */
static const char *
take_field(const char *v, const char *const msgs[4], struct sfv_member m[MEMBERS_MAX], size_t *n)
{
	size_t len = strnlen(v, HTTPSIG_FIELD_MAX);
	int r;

	if (len == HTTPSIG_FIELD_MAX)
		return msgs[F_LONG];
	r = sfv_parse_dictionary(v, len, m, MEMBERS_MAX, n);
	if (r == -E2BIG)
		return msgs[F_MANY];
	if (r < 0)
		return msgs[F_SYNTAX];
	return *n == 0 ? msgs[F_EMPTY] : NULL;
}

static const char *
take_signature(const char *sg, struct sfv_span label, uint8_t sig[ED25519_SIG_LEN])
{
	struct sfv_member m[MEMBERS_MAX];
	struct sfv_item it;
	const char *why;
	size_t n;

	why = take_field(sg, sg_why, m, &n);
	if (why != NULL)
		return why;
	for (size_t i = 0; i < n; i++) {
		if (m[i].key.len != label.len || memcmp(m[i].key.p, label.p, label.len) != 0)
			continue;
		if (m[i].inner_list || sfv_parse_item(m[i].value, &it) < 0 ||
		    sfv_bytes_decode(&it, sig, ED25519_SIG_LEN) != ED25519_SIG_LEN)
			return "the signature is not a 64-byte Byte Sequence";
		return NULL;
	}
	return "Signature has no member with the label chosen from Signature-Input";
}

int
httpsig_parse(const char *signature_input, const char *signature, struct httpsig_parsed *out,
	      const char **why)
{
	struct sfv_member m[MEMBERS_MAX];
	struct httpsig_parsed t;
	const char *w, *first = NULL;
	size_t n, i;

	if (signature_input == NULL || signature == NULL) {
		w = "Signature-Input or Signature missing";
		goto fail;
	}
	w = take_field(signature_input, si_why, m, &n);
	if (w != NULL)
		goto fail;
	for (i = 0; i < n; i++) {
		memset(&t, 0, sizeof(t)); /* nothing of an unusable member stays */
		w = take_candidate(&m[i], &t);
		if (w == NULL)
			break;
		if (first == NULL)
			first = w;
	}
	if (i == n) {
		w = first;
		goto fail;
	}
	w = take_signature(signature, m[i].key, t.sig);
	if (w != NULL)
		goto fail;
	*out = t;
	return 0;
fail:
	if (why != NULL)
		*why = w;
	return -EINVAL;
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
	       const struct httpsig_parsed *sp)
{
	struct base_in in = {method, path, query, content_digest, sp->comp, sp->params};
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
	n = base_alloc(&base, &in);
	if (n < 0)
		return n == -ENOMEM ? -ENOMEM : -EINVAL;
	r = ed25519_verify(pub, base, (size_t)n, sp->sig);
	free(base);
	return r;
}

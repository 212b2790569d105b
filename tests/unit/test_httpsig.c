/*
 * Unit tests for crypto/httpsig.c and the RFC 8941 parser under it (crypto/sfv.c): the RFC 9421
 * signature base compared byte for byte with a literal, the RFC 9530 Content-Digest, sign →
 * parse → verify round trips, tampering with every covered part of a request, signatures made
 * the way other RFC 9421 signers make them (other labels, parameter and component orders,
 * unknown parameters, RFC 8941 whitespace, several signatures, repeated keys), and tables of
 * Signature-Input and Signature values that must be refused. Clock and replay policy are the
 * service's, so not here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "b64.h"
#include "httpsig.h"

#define BODY     "{\"state\":\"active\"}"
#define BODY_CD  "sha-256=:VoBvbhurNyTRCwqC1228KaTqE9MWHQi6orVe2XFxDtY=:"
#define EMPTY_CD "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
#define PATH     "/device/v1/checkin"
#define C_ALL    "(\"@method\" \"@path\" \"@query\" \"content-digest\")"
#define PARAMS                                                                                     \
	"(\"@method\" \"@path\" \"@query\" "                                                       \
	"\"content-digest\");created=1700000000;keyid=\"dev_x\";"                                  \
	"nonce=\"42\";alg=\"ed25519\""

struct fixture {
	struct ed25519_key *key;
	uint8_t pub[ED25519_PUB_LEN];
	struct httpsig_params p;
	struct httpsig_headers h;
};

static struct fixture fx;

static int
setup(void **state)
{
	(void)state;
	memset(&fx, 0, sizeof(fx));
	if (ed25519_key_generate(&fx.key) < 0)
		return -1;
	ed25519_key_public(fx.key, fx.pub);
	fx.p.created = 1700000000;
	memcpy(fx.p.keyid, "dev_x", sizeof("dev_x"));
	fx.p.nonce = 42;
	return httpsig_sign(fx.key, "POST", "/device/v1/checkin", NULL, BODY, strlen(BODY), &fx.p,
			    &fx.h);
}

static int
teardown(void **state)
{
	(void)state;
	ed25519_key_free(fx.key);
	return 0;
}

static void
test_httpsig_content_digest(void **state)
{
	char d[64];

	(void)state;
	assert_int_equal(httpsig_content_digest(BODY, strlen(BODY), d, sizeof(d)), 0);
	assert_string_equal(d, BODY_CD);
	assert_int_equal(httpsig_content_digest(NULL, 0, d, sizeof(d)), 0);
	assert_string_equal(d, EMPTY_CD);
	assert_int_equal(httpsig_content_digest(NULL, 0, d, strlen(EMPTY_CD) + 1), 0);
	assert_int_equal(httpsig_content_digest(NULL, 0, d, strlen(EMPTY_CD)), -ENOSPC);
}

static void
test_httpsig_base_matches_rfc9421(void **state)
{
	static const char want[] = "\"@method\": POST\n"
				   "\"@path\": /device/v1/checkin\n"
				   "\"@query\": ?\n"
				   "\"content-digest\": " BODY_CD "\n"
				   "\"@signature-params\": " PARAMS;
	static const char want_q[] = "\"@method\": GET\n"
				     "\"@path\": /device/v1/commands\n"
				     "\"@query\": ?wait=30&since=7\n"
				     "\"content-digest\": " EMPTY_CD "\n"
				     "\"@signature-params\": " PARAMS;
	char b[1024];

	(void)state;
	assert_int_equal(
		httpsig_base(b, sizeof(b), "POST", "/device/v1/checkin", NULL, BODY_CD, &fx.p),
		(long)strlen(want));
	assert_string_equal(b, want);
	assert_int_equal(
		httpsig_base(b, sizeof(b), "POST", "/device/v1/checkin", "", BODY_CD, &fx.p),
		(long)strlen(want));
	assert_string_equal(b, want);
	assert_int_equal(httpsig_base(b, sizeof(b), "GET", "/device/v1/commands", "wait=30&since=7",
				      EMPTY_CD, &fx.p),
			 (long)strlen(want_q));
	assert_string_equal(b, want_q);
	/* Exactly enough room, then one byte short. */
	assert_int_equal(httpsig_base(b, strlen(want) + 1, "POST", "/device/v1/checkin", NULL,
				      BODY_CD, &fx.p),
			 (long)strlen(want));
	assert_int_equal(
		httpsig_base(b, strlen(want), "POST", "/device/v1/checkin", NULL, BODY_CD, &fx.p),
		-ENOSPC);
	assert_string_equal(b, "");
}

static void
test_httpsig_base_rejects_unsafe_values(void **state)
{
	struct httpsig_params p = fx.p;
	char b[1024];

	(void)state;
	assert_int_equal(
		httpsig_base(b, sizeof(b), "POST", "/a\n\"@method\": GET", NULL, BODY_CD, &p),
		-EINVAL);
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "a", NULL, BODY_CD, &p), -EINVAL);
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "", NULL, BODY_CD, &p), -EINVAL);
	assert_int_equal(httpsig_base(b, sizeof(b), "PO ST", "/", NULL, BODY_CD, &p), -EINVAL);
	assert_int_equal(httpsig_base(b, sizeof(b), "", "/", NULL, BODY_CD, &p), -EINVAL);
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", "a b", BODY_CD, &p), -EINVAL);
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", NULL, "", &p), -EINVAL);
	p.created = -1;
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", NULL, BODY_CD, &p), -EINVAL);
	p.created = 1000000000000000;
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", NULL, BODY_CD, &p), -EINVAL);
	p = fx.p;
	memcpy(p.keyid, "dev\"x", sizeof("dev\"x"));
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", NULL, BODY_CD, &p), -EINVAL);
	p.keyid[0] = '\0';
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", NULL, BODY_CD, &p), -EINVAL);
	memset(p.keyid, 'k', sizeof(p.keyid)); /* 32 characters, no NUL */
	assert_int_equal(httpsig_base(b, sizeof(b), "POST", "/", NULL, BODY_CD, &p), -EINVAL);
}

static void
test_httpsig_sign_writes_profile_headers(void **state)
{
	(void)state;
	assert_string_equal(fx.h.content_digest, BODY_CD);
	assert_string_equal(fx.h.signature_input, "sig1=" PARAMS);
	assert_int_equal(strlen(fx.h.signature), 6 + 88 + 1);
	assert_memory_equal(fx.h.signature, "sig1=:", 6);
	assert_int_equal(fx.h.signature[94], ':');
	assert_memory_equal(fx.h.signature + 92, "==", 2);
}

static void
test_httpsig_round_trip(void **state)
{
	struct httpsig_parsed sp;
	const char *why = NULL;
	char base[1024];
	long n;

	(void)state;
	memset(&sp, 0x55, sizeof(sp));
	assert_int_equal(httpsig_parse(fx.h.signature_input, fx.h.signature, &sp, &why), 0);
	assert_int_equal(sp.p.created, 1700000000);
	assert_int_equal(sp.p.expires, 0);
	assert_string_equal(sp.p.keyid, "dev_x");
	assert_int_equal(sp.p.nonce, 42);
	assert_string_equal(sp.params, PARAMS);
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, strlen(BODY),
					fx.h.content_digest, &sp),
			 0);
	/* The signature is over exactly the RFC 9421 base. */
	n = httpsig_base(base, sizeof(base), "POST", PATH, NULL, BODY_CD, &sp.p);
	assert_true(n > 0);
	assert_int_equal(ed25519_verify(fx.pub, base, (size_t)n, sp.sig), 0);
}

static void
test_httpsig_round_trip_extremes(void **state)
{
	struct httpsig_params p = {0};
	struct httpsig_parsed q;
	struct httpsig_headers h;

	(void)state;
	p.created = 999999999999999;
	p.nonce = UINT64_MAX;
	memcpy(p.keyid, "0123456789abcdefghijklmnopqrstu", 32); /* 31 characters */
	assert_int_equal(httpsig_sign(fx.key, "PUT", "/x", "a=%20b", NULL, 0, &p, &h), 0);
	assert_int_equal(httpsig_parse(h.signature_input, h.signature, &q, NULL), 0);
	assert_true(q.p.nonce == UINT64_MAX && q.p.created == p.created);
	assert_string_equal(q.p.keyid, p.keyid);
	assert_int_equal(
		httpsig_verify(fx.pub, "PUT", "/x", "a=%20b", NULL, 0, h.content_digest, &q), 0);
	p.created = 0;
	p.nonce = 0;
	assert_int_equal(httpsig_sign(fx.key, "PUT", "/x", NULL, NULL, 0, &p, &h), 0);
	assert_int_equal(httpsig_parse(h.signature_input, h.signature, &q, NULL), 0);
	assert_true(q.p.nonce == 0 && q.p.created == 0);
	/* A keyid the parser would refuse is refused when signing too. */
	memset(p.keyid, 'k', sizeof(p.keyid));
	assert_int_equal(httpsig_sign(fx.key, "PUT", "/x", NULL, NULL, 0, &p, &h), -EINVAL);
	assert_string_equal(h.signature, "");
}

static void
test_httpsig_verify_detects_tampering(void **state)
{
	struct httpsig_parsed sp, t;
	uint8_t other[ED25519_PUB_LEN];
	const size_t blen = strlen(BODY);
	char cd[64];

	(void)state;
	assert_int_equal(httpsig_parse(fx.h.signature_input, fx.h.signature, &sp, NULL), 0);
	assert_int_equal(httpsig_verify(fx.pub, "GET", PATH, NULL, BODY, blen, BODY_CD, &sp),
			 -EBADMSG);
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH "/", NULL, BODY, blen, BODY_CD, &sp),
			 -EBADMSG);
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, "x=1", BODY, blen, BODY_CD, &sp),
			 -EBADMSG);
	/* Body changed, digest header left alone: the digest no longer matches. */
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, "{\"state\":\"locked\"}", blen,
					BODY_CD, &sp),
			 -EBADMSG);
	/* Body and digest changed together: the signature no longer matches. */
	assert_int_equal(httpsig_content_digest("{}", 2, cd, sizeof(cd)), 0);
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, "{}", 2, cd, &sp), -EBADMSG);
	/* Digest changed, body left alone. */
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, cd, &sp), -EBADMSG);
	/* Malformed digest header. */
	assert_int_equal(
		httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, "sha-512=:AA==:", &sp),
		-EINVAL);
	/* The signed parameters text, the component order and the signature are all covered. */
	t = sp;
	t.params[strlen(t.params) - 2] = '8';
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, BODY_CD, &t),
			 -EBADMSG);
	t = sp;
	t.comp[0] = sp.comp[1];
	t.comp[1] = sp.comp[0];
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, BODY_CD, &t),
			 -EBADMSG);
	t.comp[0] = HTTPSIG_NCOMP;
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, BODY_CD, &t),
			 -EINVAL);
	t = sp;
	t.params[3] = '\n';
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, BODY_CD, &t),
			 -EINVAL);
	t = sp;
	t.sig[10] ^= 4;
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, BODY_CD, &t),
			 -EBADMSG);
	memcpy(other, fx.pub, sizeof(other));
	other[0] ^= 1;
	assert_int_not_equal(httpsig_verify(other, "POST", PATH, NULL, BODY, blen, BODY_CD, &sp),
			     0);
	assert_int_equal(httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, blen, BODY_CD, &sp), 0);
}

/* ---- signatures as an independent RFC 9421 signer makes them ---- */

#define SIG_MAX 2048
#define TAIL    ";created=1700000000;keyid=\"dev_x\";nonce=\"42\""

/*
 * Signs the fixture's request (POST PATH, no query, BODY) the way any RFC 9421 signer does:
 * one base line per component named in inner (in its order; inner is the exact text of the
 * Signature-Input member's value), then "@signature-params" with inner itself. b64 receives the
 * base64 signature (89 bytes).
 */
static void
ext_sign(const char *inner, char b64[89])
{
	static const char *const names[] = {"@method", "@path", "@query", "content-digest",
					    "@authority"};
	static const char *const values[] = {"POST", PATH, "?", BODY_CD, "example.com"};
	char base[SIG_MAX];
	size_t off = 0;
	uint8_t sig[ED25519_SIG_LEN];
	const char *c = inner, *close = strchr(inner, ')');

	assert_non_null(close);
	while ((c = strchr(c, '"')) != NULL && c < close) {
		const char *e = strchr(c + 1, '"');
		size_t k;

		for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			if ((size_t)(e - c - 1) == strlen(names[k]) &&
			    memcmp(c + 1, names[k], strlen(names[k])) == 0)
				break;
		}
		assert_true(k < sizeof(names) / sizeof(names[0]));
		off += (size_t)snprintf(base + off, sizeof(base) - off, "\"%s\": %s\n", names[k],
					values[k]);
		c = e + 1;
	}
	off += (size_t)snprintf(base + off, sizeof(base) - off, "\"@signature-params\": %s", inner);
	assert_true(off < sizeof(base));
	assert_int_equal(ed25519_key_sign(fx.key, base, off, sig), 0);
	assert_int_equal(b64_encode(b64, 89, sig, sizeof(sig)), 88);
}

/* Parses and verifies against the fixture's request; the first failing step's result. */
static int
check(const char *si, const char *sg, struct httpsig_parsed *sp, const char **why)
{
	int r = httpsig_parse(si, sg, sp, why);

	if (r != 0)
		return r;
	return httpsig_verify(fx.pub, "POST", PATH, NULL, BODY, strlen(BODY), BODY_CD, sp);
}

/*
 * Signs inner under label, sends it as before + label=inner + after, and checks that the pair
 * verifies and yields the fixture's values.
 */
static void
expect_accepted(const char *label, const char *inner, const char *before, const char *after)
{
	char si[SIG_MAX], sg[256], b64[89];
	struct httpsig_parsed sp;
	const char *why = "";

	ext_sign(inner, b64);
	snprintf(si, sizeof(si), "%s%s=%s%s", before, label, inner, after);
	snprintf(sg, sizeof(sg), "%s=:%s:", label, b64);
	if (check(si, sg, &sp, &why) != 0)
		fail_msg("refused (%s): %s", why, si);
	assert_string_equal(sp.params, inner);
	assert_int_equal(sp.p.created, 1700000000);
	assert_string_equal(sp.p.keyid, "dev_x");
	assert_int_equal(sp.p.nonce, 42);
}

static void
test_httpsig_accepts_independent_signers(void **state)
{
	static const char *const inners[] = {
		/* components and parameters in other orders, alg absent or present */
		"(\"content-digest\" \"@query\" \"@method\" \"@path\")" TAIL,
		"(\"@path\" \"@method\" \"@query\" "
		"\"content-digest\");nonce=\"42\";keyid=\"dev_x\";"
		"alg=\"ed25519\";created=1700000000",
		"(\"@method\" \"@path\" \"@query\" \"content-digest\");keyid=\"dev_x\";alg="
		"\"ed25519\";created=1700000000;expires=1700000300;nonce=\"42\"",
		/* unknown parameters of every RFC 8941 type are ignored */
		C_ALL TAIL ";tag=\"cleave-interop\";x=?1;y=1.5;z=tok/en:1;w=:AAEC:;v=-7;u",
		C_ALL TAIL ";d=-123456789012.123;i=-999999999999999;t=*A9!#$%&'*+-.^_`|~:/;e=\"\"",
		/* RFC 8941 whitespace: SP inside the inner list and after ";" */
		"(  \"@method\"   \"@path\" \"@query\" \"content-digest\" );  created=1700000000; "
		"keyid=\"dev_x\";nonce=\"42\"",
		/* escapes in an unknown String */
		C_ALL TAIL ";tag=\"a\\\"b\\\\c\"",
	};
	static const char *const labels[] = {"sig1", "cleave", "sig-b26", "*x.y_z-1"};

	(void)state;
	for (size_t i = 0; i < sizeof(inners) / sizeof(inners[0]); i++)
		expect_accepted(labels[i % 4], inners[i], "", "");
	/* OWS around the dictionary's commas, other members first, surrounding whitespace. */
	expect_accepted("cleave", C_ALL TAIL, "  other=(\"@authority\");created=1, \t",
			"\t,last=?0;a=1 ");
	expect_accepted("cleave", C_ALL TAIL, "flag,", ",n=12");
}

static void
test_httpsig_parse_reports_expires(void **state)
{
	char si[SIG_MAX], sg[256], b64[89];
	const char *inner = C_ALL TAIL ";expires=1700000060";
	struct httpsig_parsed sp;

	(void)state;
	ext_sign(inner, b64);
	snprintf(si, sizeof(si), "s=%s", inner);
	snprintf(sg, sizeof(sg), "s=:%s:", b64);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	assert_int_equal(sp.p.expires, 1700000060);
}

/* Several signatures: the first member Cleave can verify is the one verified, and only it. */
static void
test_httpsig_picks_first_usable_signature(void **state)
{
	const char *auth =
		"(\"@method\" \"@authority\" \"@path\" \"@query\" \"content-digest\")" TAIL;
	const char *a = C_ALL TAIL ";tag=\"a\"", *b = C_ALL TAIL ";tag=\"b\"";
	char si[SIG_MAX], sg[1024], ba[89], bb[89], bx[89];
	struct httpsig_parsed sp;

	(void)state;
	ext_sign(auth, bx);
	ext_sign(a, ba);
	ext_sign(b, bb);
	/* Skips a signature over a component the server cannot rebuild and an HMAC one. */
	snprintf(si, sizeof(si), "gw=%s, hm=" C_ALL TAIL ";alg=\"hmac-sha256\", ok=%s", auth, a);
	snprintf(sg, sizeof(sg), "gw=:%s:, hm=:AAAA:, ok=:%s:", bx, ba);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	assert_string_equal(sp.params, a);
	/* Two usable ones: the first is taken even when only the second's signature is right. */
	snprintf(si, sizeof(si), "one=%s, two=%s", a, b);
	snprintf(sg, sizeof(sg), "one=:%s:, two=:%s:", ba, bb);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	assert_string_equal(sp.params, a);
	snprintf(sg, sizeof(sg), "one=:%s:, two=:%s:", bb, bb);
	assert_int_equal(check(si, sg, &sp, NULL), -EBADMSG);
	/* The Signature field's order does not matter, its labels do. */
	snprintf(sg, sizeof(sg), "two=:%s:, one=:%s:", bb, ba);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
}

/*
 * RFC 8941 §4.2.2: a repeated dictionary key keeps its first position and takes the last value.
 * The base uses the text of the value that was taken, so a header still verifies one way only.
 */
static void
test_httpsig_repeated_keys_last_wins(void **state)
{
	const char *a = C_ALL TAIL ";tag=\"a\"", *b = C_ALL TAIL ";tag=\"b\"";
	char si[SIG_MAX], sg[1024], ba[89], bb[89];
	struct httpsig_parsed sp;
	const char *why = "";

	(void)state;
	ext_sign(a, ba);
	ext_sign(b, bb);
	snprintf(si, sizeof(si), "s=%s, s=%s", a, b);
	snprintf(sg, sizeof(sg), "s=:%s:", bb);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	assert_string_equal(sp.params, b);
	snprintf(sg, sizeof(sg), "s=:%s:", ba);
	assert_int_equal(check(si, sg, &sp, NULL), -EBADMSG);
	snprintf(sg, sizeof(sg), "s=:%s:, s=:%s:", ba, bb);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	snprintf(sg, sizeof(sg), "s=:%s:, s=:%s:", bb, ba);
	assert_int_equal(check(si, sg, &sp, NULL), -EBADMSG);
	/* A usable member replaced by an unusable one is gone. */
	snprintf(si, sizeof(si), "s=%s, s=(\"@method\")" TAIL, b);
	snprintf(sg, sizeof(sg), "s=:%s:", bb);
	assert_int_equal(check(si, sg, &sp, &why), -EINVAL);
	assert_non_null(strstr(why, "does not cover"));
	/* A repeated signature parameter is refused rather than guessed at. */
	snprintf(si, sizeof(si), "s=" C_ALL TAIL ";created=1700000001");
	assert_int_equal(check(si, sg, &sp, &why), -EINVAL);
	assert_non_null(strstr(why, "repeats"));
	snprintf(si, sizeof(si), "s=" C_ALL TAIL ";alg=\"ed25519\";alg=\"ed25519\"");
	assert_int_equal(check(si, sg, &sp, &why), -EINVAL);
}

/* Each entry: a Signature-Input that must be refused, and a piece of the reason given. */
struct refusal {
	const char *si;
	const char *why;
};

static void
test_httpsig_parse_refuses_bad_signature_input(void **state)
{
	static const struct refusal bad[] = {
		/* components: missing, extra, repeated, with parameters, differently spelled */
		{"s=(\"@method\" \"@path\" \"content-digest\")" TAIL, "does not cover"},
		{"s=(\"@method\" \"@path\" \"@query\")" TAIL, "does not cover"},
		{"s=(\"@path\" \"@query\" \"content-digest\")" TAIL, "does not cover"},
		{"s=(\"@method\" \"@query\" \"content-digest\")" TAIL, "does not cover"},
		{"s=()" TAIL, "does not cover"},
		{"s=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"@authority\")" TAIL,
		 "other than"},
		{"s=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"@method\")" TAIL,
		 "twice"},
		{"s=(\"a\" \"b\" \"c\" \"d\" \"e\" \"f\" \"g\" \"h\" \"i\" \"j\" \"k\" \"l\" \"m\" "
		 "\"n\" "
		 "\"o\" \"p\" \"q\")" TAIL,
		 "more components"},
		{"s=(\"@method\" \"@path\" \"@query\" \"@authority\")" TAIL, "other than"},
		{"s=(\"@method\" \"@path\" \"@query\" \"@query\")" TAIL, "twice"},
		{"s=(\"@method\" \"@path\" \"@query\" \"content-digest\";sf)" TAIL, "other than"},
		{"s=(\"@method\" \"@path\" \"@query\" \"Content-Digest\")" TAIL, "other than"},
		{"s=(\"@method\" \"@path\" \"@query\" content-digest)" TAIL, "other than"},
		{"s=(\"@method\" \"@path\" \"@query\" \"@signature-params\")" TAIL, "other than"},
		/* not an inner list, or nothing */
		{"s=\"x\"" TAIL, "not an Inner List"},
		{"s", "not an Inner List"},
		{"", "Signature-Input is empty"},
		{"   ", "Signature-Input is empty"},
		/* parameters: missing, wrong type, out of range */
		{"s=" C_ALL ";keyid=\"dev_x\";nonce=\"42\"", "created"},
		{"s=" C_ALL ";created=1700000000;nonce=\"42\"", "keyid"},
		{"s=" C_ALL ";created=1700000000;keyid=\"dev_x\"", "nonce"},
		{"s=" C_ALL, "created"},
		{"s=" C_ALL ";created=-1;keyid=\"dev_x\";nonce=\"42\"", "created"},
		{"s=" C_ALL ";created=\"1700000000\";keyid=\"dev_x\";nonce=\"42\"", "created"},
		{"s=" C_ALL ";created=1700000000.5;keyid=\"dev_x\";nonce=\"42\"", "created"},
		{"s=" C_ALL ";created=?1;keyid=\"dev_x\";nonce=\"42\"", "created"},
		{"s=" C_ALL ";created;keyid=\"dev_x\";nonce=\"42\"", "created"},
		{"s=" C_ALL TAIL ";expires=0", "expires"},
		{"s=" C_ALL TAIL ";expires=-5", "expires"},
		{"s=" C_ALL TAIL ";expires=\"1700000300\"", "expires"},
		{"s=" C_ALL TAIL ";alg=\"hmac-sha256\"", "alg"},
		{"s=" C_ALL TAIL ";alg=ed25519", "alg"},
		{"s=" C_ALL TAIL ";alg=\"Ed25519\"", "alg"},
		{"s=" C_ALL ";created=1;keyid=\"0123456789abcdefghijklmnopqrstuv\";nonce=\"42\"",
		 "keyid"},
		{"s=" C_ALL ";created=1;keyid=\"\";nonce=\"42\"", "keyid"},
		{"s=" C_ALL ";created=1;keyid=\"de\\\"v\";nonce=\"42\"", "keyid"},
		{"s=" C_ALL ";created=1;keyid=\"de v\";nonce=\"42\"", "keyid"},
		{"s=" C_ALL ";created=1;keyid=dev_x;nonce=\"42\"", "keyid"},
		{"s=" C_ALL ";created=1;keyid=:AAAA:;nonce=\"42\"", "keyid"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"4a\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=42", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"18446744073709551616\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"99999999999999999999\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"042\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"-1\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\" 42\"", "nonce"},
		{"s=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"gA8b-random\"", "nonce"},
		/* RFC 8941 syntax */
		{"s=" C_ALL TAIL ",", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL "x", "Signature-Input is not an RFC 8941"},
		{"s =" C_ALL TAIL, "Signature-Input is not an RFC 8941"},
		{"S=" C_ALL TAIL, "Signature-Input is not an RFC 8941"},
		{"1s=" C_ALL TAIL, "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";Tag=\"x\"", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=\"x", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=\"\\x\"", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=\"\xc3\xa9\"", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=1.", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=1.2345", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=1234567890123.1", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=1234567890123456", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=?2", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=:AA A:", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=-", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ";tag=@123", "Signature-Input is not an RFC 8941"},
		{"s=(\"@method\"\"@path\" \"@query\" \"content-digest\")" TAIL,
		 "Signature-Input is not an RFC 8941"},
		{"s=(\"@method\" \"@path\" \"@query\" \"content-digest\"" TAIL,
		 "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL ",, t=1", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL " t=1", "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL " ;created=1;keyid=\"dev_x\";nonce=\"42\"",
		 "Signature-Input is not an RFC 8941"},
		{"s=" C_ALL TAIL "\n", "Signature-Input is not an RFC 8941"},
	};
	char sg[128], b64[89];
	struct httpsig_parsed sp;

	(void)state;
	ext_sign(C_ALL TAIL, b64);
	snprintf(sg, sizeof(sg), "s=:%s:", b64);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *why = NULL;
		int r = httpsig_parse(bad[i].si, sg, &sp, &why);

		if (r != -EINVAL)
			fail_msg("accepted Signature-Input #%zu: %s", i, bad[i].si);
		if (why == NULL || strstr(why, bad[i].why) == NULL)
			fail_msg("#%zu %s: reason \"%s\", want \"%s\"", i, bad[i].si,
				 why ? why : "(none)", bad[i].why);
	}
	/* The boundary values themselves are accepted. */
	assert_int_equal(httpsig_parse("s=" C_ALL ";created=999999999999999;keyid="
				       "\"0123456789abcdefghijklmnopqrstu\";nonce="
				       "\"18446744073709551615\";expires=999999999999999",
				       sg, &sp, NULL),
			 0);
	assert_int_equal(
		httpsig_parse("s=" C_ALL ";created=0;keyid=\"d\";nonce=\"0\"", sg, &sp, NULL), 0);
	assert_int_equal(httpsig_parse(NULL, sg, &sp, NULL), -EINVAL);
}

static void
test_httpsig_parse_enforces_caps(void **state)
{
	char si[HTTPSIG_FIELD_MAX + 64], sg[HTTPSIG_FIELD_MAX + 64], b64[89];
	struct httpsig_parsed sp;
	const char *why = NULL;
	size_t off;

	(void)state;
	ext_sign(C_ALL TAIL, b64);
	snprintf(sg, sizeof(sg), "s=:%s:", b64);
	/* Unknown parameters up to the cap of 16 in all, then one more. */
	off = (size_t)snprintf(si, sizeof(si), "s=" C_ALL TAIL);
	for (int i = 0; i < 13; i++)
		off += (size_t)snprintf(si + off, sizeof(si) - off, ";u%d", i);
	assert_int_equal(httpsig_parse(si, sg, &sp, NULL), 0);
	snprintf(si + off, sizeof(si) - off, ";u99");
	assert_int_equal(httpsig_parse(si, sg, &sp, &why), -EINVAL);
	assert_non_null(strstr(why, "more parameters"));
	/* Eight signatures, then nine. */
	off = (size_t)snprintf(si, sizeof(si), "s=" C_ALL TAIL);
	for (int i = 0; i < 7; i++)
		off += (size_t)snprintf(si + off, sizeof(si) - off, ", x%d=()", i);
	assert_int_equal(httpsig_parse(si, sg, &sp, NULL), 0);
	snprintf(si + off, sizeof(si) - off, ", y=()");
	assert_int_equal(httpsig_parse(si, sg, &sp, &why), -EINVAL);
	assert_non_null(strstr(why, "more signatures"));
	/* A field of HTTPSIG_FIELD_MAX - 1 bytes is read, one byte more is not. */
	off = (size_t)snprintf(si, sizeof(si), "s=" C_ALL TAIL ";tag=\"");
	memset(si + off, 'a', HTTPSIG_FIELD_MAX - 2 - off);
	memcpy(si + HTTPSIG_FIELD_MAX - 2, "\"", 2);
	assert_int_equal(strlen(si), HTTPSIG_FIELD_MAX - 1);
	assert_int_equal(httpsig_parse(si, sg, &sp, NULL), 0);
	assert_int_equal(strlen(sp.params), HTTPSIG_FIELD_MAX - 3);
	memcpy(si + HTTPSIG_FIELD_MAX - 2, "a\"", 3);
	assert_int_equal(httpsig_parse(si, sg, &sp, &why), -EINVAL);
	assert_non_null(strstr(why, "longer"));
	/* The same cap on Signature. */
	off = (size_t)snprintf(sg, sizeof(sg), "s=:%s:, pad=\"", b64);
	memset(sg + off, 'a', HTTPSIG_FIELD_MAX - off);
	memcpy(sg + HTTPSIG_FIELD_MAX, "\"", 2);
	assert_int_equal(httpsig_parse("s=" C_ALL TAIL, sg, &sp, &why), -EINVAL);
	assert_non_null(strstr(why, "longer"));
}

static void
test_httpsig_parse_refuses_bad_signature(void **state)
{
	char b64[89], sg[512];
	const char *si = "s=" C_ALL TAIL, *why = NULL;
	struct httpsig_parsed sp;

	(void)state;
	ext_sign(C_ALL TAIL, b64);
	snprintf(sg, sizeof(sg), "s=:%s:", b64);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	/* Unpadded base64 is allowed (RFC 8941 §4.2.7), parameters on the member are ignored. */
	snprintf(sg, sizeof(sg), "s=:%.86s:", b64);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
	snprintf(sg, sizeof(sg), "x=?0, s=:%s:;k=1", b64);
	assert_int_equal(check(si, sg, &sp, NULL), 0);
#define EXPECT_BAD(reason, ...)                                                                    \
	do {                                                                                       \
		snprintf(sg, sizeof(sg), __VA_ARGS__);                                             \
		why = NULL;                                                                        \
		if (httpsig_parse(si, sg, &sp, &why) != -EINVAL)                                   \
			fail_msg("accepted Signature: %s", sg);                                    \
		if (why == NULL || strstr(why, reason) == NULL)                                    \
			fail_msg("%s: reason \"%s\", want \"%s\"", sg, why ? why : "", reason);    \
	} while (0)
	EXPECT_BAD("no member", "t=:%s:", b64);
	EXPECT_BAD("Signature is not an RFC 8941", "S=:%s:", b64);
	EXPECT_BAD("64-byte", "s=tok/en");
	EXPECT_BAD("Signature is not an RFC 8941", "s=%.88s", b64);
	EXPECT_BAD("64-byte", "s=(:%s:)", b64);
	EXPECT_BAD("64-byte", "s=\"%s\"", b64);
	EXPECT_BAD("64-byte", "s=:%.84s:", b64);     /* 63 bytes */
	EXPECT_BAD("64-byte", "s=:%.88sAAAA:", b64); /* data after the padding */
	EXPECT_BAD("64-byte", "s=:%.87s:", b64);     /* one "=" of two */
	EXPECT_BAD("64-byte", "s=::");
	EXPECT_BAD("64-byte", "s");
	EXPECT_BAD("Signature is not an RFC 8941", "s=:%.88s", b64);
	EXPECT_BAD("Signature is not an RFC 8941",
		   "s=:*%.87s:", b64 + 1); /* outside the alphabet */
	EXPECT_BAD("Signature is not an RFC 8941", "s=:%.40s %.47s:", b64,
		   b64 + 41); /* whitespace inside */
	EXPECT_BAD("Signature is not an RFC 8941", "s=:%s:,", b64);
	EXPECT_BAD("Signature is empty", "%s", "");
#undef EXPECT_BAD
	assert_int_equal(httpsig_parse(si, NULL, &sp, &why), -EINVAL);
	/* base64url is not base64. */
	snprintf(sg, sizeof(sg), "s=:%s:", b64);
	for (char *c = sg; *c != '\0'; c++) {
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	}
	if (strchr(b64, '+') != NULL || strchr(b64, '/') != NULL)
		assert_int_equal(httpsig_parse(si, sg, &sp, NULL), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_httpsig_content_digest),
		cmocka_unit_test(test_httpsig_base_matches_rfc9421),
		cmocka_unit_test(test_httpsig_base_rejects_unsafe_values),
		cmocka_unit_test(test_httpsig_sign_writes_profile_headers),
		cmocka_unit_test(test_httpsig_round_trip),
		cmocka_unit_test(test_httpsig_round_trip_extremes),
		cmocka_unit_test(test_httpsig_verify_detects_tampering),
		cmocka_unit_test(test_httpsig_accepts_independent_signers),
		cmocka_unit_test(test_httpsig_parse_reports_expires),
		cmocka_unit_test(test_httpsig_picks_first_usable_signature),
		cmocka_unit_test(test_httpsig_repeated_keys_last_wins),
		cmocka_unit_test(test_httpsig_parse_refuses_bad_signature_input),
		cmocka_unit_test(test_httpsig_parse_enforces_caps),
		cmocka_unit_test(test_httpsig_parse_refuses_bad_signature),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

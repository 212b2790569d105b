/*
 * Unit tests for crypto/httpsig.c: the RFC 9421 signature base compared byte for byte with a
 * literal, the RFC 9530 Content-Digest, sign → parse → verify round trips, tampering with every
 * covered part of a request, and a table of malformed Signature-Input and Signature headers
 * that the strict parser must refuse. Clock and replay policy are not this module's, so not here.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "httpsig.h"

#define BODY     "{\"state\":\"active\"}"
#define BODY_CD  "sha-256=:VoBvbhurNyTRCwqC1228KaTqE9MWHQi6orVe2XFxDtY=:"
#define EMPTY_CD "sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:"
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
	struct httpsig_params p;
	uint8_t sig[ED25519_SIG_LEN];
	char base[1024];
	long n;

	(void)state;
	memset(&p, 0x55, sizeof(p));
	assert_int_equal(httpsig_parse(fx.h.signature_input, fx.h.signature, &p, sig), 0);
	assert_int_equal(p.created, 1700000000);
	assert_string_equal(p.keyid, "dev_x");
	assert_int_equal(p.nonce, 42);
	assert_int_equal(httpsig_verify(fx.pub, "POST", "/device/v1/checkin", NULL, BODY,
					strlen(BODY), fx.h.content_digest, &p, sig),
			 0);
	/* The signature is over exactly the RFC 9421 base. */
	n = httpsig_base(base, sizeof(base), "POST", "/device/v1/checkin", NULL, BODY_CD, &p);
	assert_true(n > 0);
	assert_int_equal(ed25519_verify(fx.pub, base, (size_t)n, sig), 0);
}

static void
test_httpsig_round_trip_extremes(void **state)
{
	struct httpsig_params p = {0}, q;
	struct httpsig_headers h;
	uint8_t sig[ED25519_SIG_LEN];

	(void)state;
	p.created = 999999999999999;
	p.nonce = UINT64_MAX;
	memcpy(p.keyid, "0123456789abcdefghijklmnopqrstu", 32); /* 31 characters */
	assert_int_equal(httpsig_sign(fx.key, "PUT", "/x", "a=%20b", NULL, 0, &p, &h), 0);
	assert_int_equal(httpsig_parse(h.signature_input, h.signature, &q, sig), 0);
	assert_true(q.nonce == UINT64_MAX && q.created == p.created);
	assert_string_equal(q.keyid, p.keyid);
	assert_int_equal(
		httpsig_verify(fx.pub, "PUT", "/x", "a=%20b", NULL, 0, h.content_digest, &q, sig),
		0);
	p.created = 0;
	p.nonce = 0;
	assert_int_equal(httpsig_sign(fx.key, "PUT", "/x", NULL, NULL, 0, &p, &h), 0);
	assert_int_equal(httpsig_parse(h.signature_input, h.signature, &q, sig), 0);
	assert_true(q.nonce == 0 && q.created == 0);
	/* A keyid the parser would refuse is refused when signing too. */
	memset(p.keyid, 'k', sizeof(p.keyid));
	assert_int_equal(httpsig_sign(fx.key, "PUT", "/x", NULL, NULL, 0, &p, &h), -EINVAL);
	assert_string_equal(h.signature, "");
}

static void
test_httpsig_verify_detects_tampering(void **state)
{
	struct httpsig_params p, t;
	uint8_t sig[ED25519_SIG_LEN], other[ED25519_PUB_LEN];
	const char *path = "/device/v1/checkin";
	const size_t blen = strlen(BODY);
	char cd[64];

	(void)state;
	assert_int_equal(httpsig_parse(fx.h.signature_input, fx.h.signature, &p, sig), 0);
	assert_int_equal(httpsig_verify(fx.pub, "GET", path, NULL, BODY, blen, BODY_CD, &p, sig),
			 -EBADMSG);
	assert_int_equal(httpsig_verify(fx.pub, "POST", "/device/v1/checkin/", NULL, BODY, blen,
					BODY_CD, &p, sig),
			 -EBADMSG);
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, "x=1", BODY, blen, BODY_CD, &p, sig),
			 -EBADMSG);
	/* Body changed, digest header left alone: the digest no longer matches. */
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, "{\"state\":\"locked\"}", blen,
					BODY_CD, &p, sig),
			 -EBADMSG);
	/* Body and digest changed together: the signature no longer matches. */
	assert_int_equal(httpsig_content_digest("{}", 2, cd, sizeof(cd)), 0);
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, "{}", 2, cd, &p, sig),
			 -EBADMSG);
	/* Digest changed, body left alone. */
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, cd, &p, sig),
			 -EBADMSG);
	/* Malformed digest header. */
	assert_int_equal(
		httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, "sha-512=:AA==:", &p, sig),
		-EINVAL);
	t = p;
	t.created++;
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, BODY_CD, &t, sig),
			 -EBADMSG);
	t = p;
	t.nonce++;
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, BODY_CD, &t, sig),
			 -EBADMSG);
	t = p;
	t.keyid[0] = 'D';
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, BODY_CD, &t, sig),
			 -EBADMSG);
	sig[10] ^= 4;
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, BODY_CD, &p, sig),
			 -EBADMSG);
	sig[10] ^= 4;
	memcpy(other, fx.pub, sizeof(other));
	other[0] ^= 1;
	assert_int_not_equal(
		httpsig_verify(other, "POST", path, NULL, BODY, blen, BODY_CD, &p, sig), 0);
	assert_int_equal(httpsig_verify(fx.pub, "POST", path, NULL, BODY, blen, BODY_CD, &p, sig),
			 0);
}

#define C_ALL "(\"@method\" \"@path\" \"@query\" \"content-digest\")"

static void
test_httpsig_parse_rejects_bad_signature_input(void **state)
{
	static const char *const bad[] = {
		"sig2=" PARAMS,
		"sig1 =" PARAMS,
		"sig1=" PARAMS ", sig2=" PARAMS,
		" sig1=" PARAMS,
		"sig1=" PARAMS " ",
		"sig1=" PARAMS ";",
		"sig1=" PARAMS ";foo=1",
		"sig1=" PARAMS "x",
		/* components: missing, extra, reordered, differently spelled */
		"sig1=(\"@method\" \"@path\" "
		"\"content-digest\");created=1700000000;keyid=\"dev_x\";"
		"nonce=\"42\";alg=\"ed25519\"",
		"sig1=(\"@method\" \"@path\" \"@query\" \"content-digest\" \"@authority\");"
		"created=1700000000;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=(\"@path\" \"@method\" \"@query\" \"content-digest\");created=1700000000;"
		"keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=(\"@method\"  \"@path\" \"@query\" \"content-digest\");created=1700000000;"
		"keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=(\"@method\" \"@path\" \"@query\" \"Content-Digest\");created=1700000000;"
		"keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=()",
		"sig1=",
		"",
		/* parameters: missing, unknown, reordered, duplicated */
		"sig1=" C_ALL ";keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000;nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000;keyid=\"dev_x\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000;keyid=\"dev_x\";nonce=\"42\"",
		"sig1=" C_ALL,
		"sig1=" C_ALL ";created=1700000000;keyid=\"dev_x\";nonce=\"42\";expires=1;"
		"alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000;keyid=\"dev_x\";tag=\"x\";nonce=\"42\";"
		"alg=\"ed25519\"",
		"sig1=" C_ALL ";keyid=\"dev_x\";created=1700000000;nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000;created=1700000000;keyid=\"dev_x\";nonce=\"42\";"
		"alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000; keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		/* alg */
		"sig1=" C_ALL
		";created=1700000000;keyid=\"dev_x\";nonce=\"42\";alg=\"hmac-sha256\"",
		"sig1=" C_ALL ";created=1700000000;keyid=\"dev_x\";nonce=\"42\";alg=ed25519",
		/* created: sign, leading zero, quoted, too many digits, empty, not a number */
		"sig1=" C_ALL ";created=-1;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=01700000000;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL
		";created=\"1700000000\";keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL
		";created=1000000000000000;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=17e8;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1700000000.5;keyid=\"dev_x\";nonce=\"42\";alg=\"ed25519\"",
		/* keyid: too long, empty, escapes, spaces, unquoted, unterminated */
		"sig1=" C_ALL ";created=1;keyid=\"0123456789abcdefghijklmnopqrstuv\";nonce=\"42\";"
		"alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"de\\\"v\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"de\\\\v\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"de v\";nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=dev_x;nonce=\"42\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x",
		/* nonce: not numeric, unquoted, overflow, leading zero, empty, negative */
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"4a\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"abc\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=42;alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"18446744073709551616\";"
		"alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"99999999999999999999\";"
		"alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"042\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\"-1\";alg=\"ed25519\"",
		"sig1=" C_ALL ";created=1;keyid=\"dev_x\";nonce=\" 42\";alg=\"ed25519\"",
	};
	struct httpsig_params p;
	uint8_t sig[ED25519_SIG_LEN];
	char edge[600];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = httpsig_parse(bad[i], fx.h.signature, &p, sig);

		if (r != -EINVAL)
			fail_msg("accepted Signature-Input #%zu: %s", i, bad[i]);
	}
	/* The boundary values themselves are accepted. */
	assert_int_equal(httpsig_parse("sig1=" C_ALL ";created=999999999999999;keyid="
				       "\"0123456789abcdefghijklmnopqrstu\";nonce="
				       "\"18446744073709551615\";alg=\"ed25519\"",
				       fx.h.signature, &p, sig),
			 0);
	assert_int_equal(httpsig_parse("sig1=" C_ALL ";created=0;keyid=\"d\";nonce=\"0\";alg="
				       "\"ed25519\"",
				       fx.h.signature, &p, sig),
			 0);
	/* A header longer than the cap is refused without reading to its end. */
	memset(edge, 'a', sizeof(edge) - 1);
	edge[sizeof(edge) - 1] = '\0';
	memcpy(edge, "sig1=" PARAMS, strlen("sig1=" PARAMS));
	assert_int_equal(httpsig_parse(edge, fx.h.signature, &p, sig), -EINVAL);
	assert_int_equal(httpsig_parse(NULL, fx.h.signature, &p, sig), -EINVAL);
}

static void
test_httpsig_parse_rejects_bad_signature(void **state)
{
	char good[128], bad[256];
	const char *b64 = fx.h.signature + 6; /* 88 characters, then ':' */
	struct httpsig_params p;
	uint8_t sig[ED25519_SIG_LEN];

	(void)state;
	memcpy(good, fx.h.signature, sizeof(good));
	assert_int_equal(httpsig_parse(fx.h.signature_input, good, &p, sig), 0);
#define EXPECT_BAD(...)                                                                            \
	do {                                                                                       \
		snprintf(bad, sizeof(bad), __VA_ARGS__);                                           \
		if (httpsig_parse(fx.h.signature_input, bad, &p, sig) != -EINVAL)                  \
			fail_msg("accepted Signature: %s", bad);                                   \
	} while (0)
	EXPECT_BAD("sig2=:%.88s:", b64);
	EXPECT_BAD("sig1=%.88s", b64);
	EXPECT_BAD("sig1=:%.88s", b64);
	EXPECT_BAD("sig1=:%.88s: ", b64);
	EXPECT_BAD(" sig1=:%.88s:", b64);
	EXPECT_BAD("sig1=:%.88s:, sig2=:%.88s:", b64, b64);
	EXPECT_BAD("sig1=:%.86s:", b64);                 /* padding missing */
	EXPECT_BAD("sig1=:%.84s:", b64);                 /* 63 bytes */
	EXPECT_BAD("sig1=:%.88sAAAA:", b64);             /* data after the padding */
	EXPECT_BAD("sig1=:*%.87s:", b64 + 1);            /* outside the alphabet */
	EXPECT_BAD("sig1=:%.40s %.47s:", b64, b64 + 41); /* whitespace inside */
	EXPECT_BAD("sig1=::");
	EXPECT_BAD("sig1=:");
	EXPECT_BAD("%s", "");
#undef EXPECT_BAD
	assert_int_equal(httpsig_parse(fx.h.signature_input, NULL, &p, sig), -EINVAL);
	/* base64url is not base64. */
	memcpy(bad, good, sizeof(good));
	for (char *c = bad; *c != '\0'; c++) {
		if (*c == '+')
			*c = '-';
		else if (*c == '/')
			*c = '_';
	}
	if (strcmp(bad, good) != 0)
		assert_int_equal(httpsig_parse(fx.h.signature_input, bad, &p, sig), -EINVAL);
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
		cmocka_unit_test(test_httpsig_parse_rejects_bad_signature_input),
		cmocka_unit_test(test_httpsig_parse_rejects_bad_signature),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

/*
 * libFuzzer target: the RFC 9421 signature header parser (crypto/httpsig.c over the RFC 8941
 * parser in crypto/sfv.c), which reads Signature-Input and Signature from any client before the
 * server knows who sent them. The input is "<Signature-Input>\n<Signature>". A parse that
 * succeeds must describe a member of what was sent, and verifying it must not crash; the raw
 * bytes also go through the Dictionary, Inner List and Item parsers directly.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "httpsig.h"
#include "sfv.h"

#define BODY "{\"wait\":30}"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every member of a Dictionary parsed from the raw bytes, taken apart as httpsig.c would. */
static void
walk_dictionary(const uint8_t *data, size_t size)
{
	struct sfv_member m[8];
	struct sfv_item items[8], it;
	struct sfv_param params[16];
	size_t n, ni, np;
	char s[HTTPSIG_FIELD_MAX];
	uint8_t b[HTTPSIG_FIELD_MAX];

	if (sfv_parse_dictionary((const char *)data, size, m, 8, &n) != 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (m[i].value.p < (const char *)data ||
		    m[i].value.p + m[i].value.len > (const char *)data + size)
			__builtin_trap();
		if (m[i].inner_list) {
			if (sfv_parse_inner_list(m[i].value, items, 8, &ni, params, 16, &np) != 0)
				continue;
			for (size_t k = 0; k < ni; k++)
				(void)sfv_string_copy(&items[k], s, sizeof(s));
			for (size_t k = 0; k < np; k++)
				(void)sfv_bytes_decode(&params[k].value, b, sizeof(b));
		} else if (m[i].value.len > 0 && m[i].value.p[0] != ';') {
			/* A member the Dictionary parser took must parse again as an Item. */
			if (sfv_parse_item(m[i].value, &it) != 0)
				__builtin_trap();
			(void)sfv_bytes_decode(&it, b, sizeof(b));
			(void)sfv_string_copy(&it, s, sizeof(s));
		}
	}
}

/* A successful parse must name one of the members sent, with sane values. */
static void
check_parsed(const char *si, const struct httpsig_parsed *sp)
{
	static const uint8_t pub[ED25519_PUB_LEN] = {1};
	char digest[64];
	unsigned seen = 0;
	int r;

	if (strstr(si, sp->params) == NULL || sp->p.created < 0 || sp->p.expires < 0 ||
	    sp->p.keyid[0] == '\0')
		__builtin_trap();
	for (size_t i = 0; i < HTTPSIG_NCOMP; i++) {
		if (sp->comp[i] >= HTTPSIG_NCOMP || (seen & (1u << sp->comp[i])))
			__builtin_trap();
		seen |= 1u << sp->comp[i];
	}
	if (httpsig_content_digest(BODY, strlen(BODY), digest, sizeof(digest)) != 0)
		__builtin_trap();
	r = httpsig_verify(pub, "POST", "/device/v1/checkin", "", BODY, strlen(BODY), digest, sp);
	if (r != -EBADMSG && r != -EINVAL && r != 0)
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char si[HTTPSIG_FIELD_MAX + 64], sg[HTTPSIG_FIELD_MAX + 64];
	static struct httpsig_parsed sp, again;
	const uint8_t *nl = memchr(data, '\n', size);
	size_t a = nl != NULL ? (size_t)(nl - data) : size;
	size_t b = nl != NULL ? size - a - 1 : 0;
	const char *why = NULL;

	walk_dictionary(data, size);
	if (a >= sizeof(si) || b >= sizeof(sg))
		return 0;
	memcpy(si, data, a);
	si[a] = '\0';
	memcpy(sg, nl != NULL ? nl + 1 : data, b);
	sg[b] = '\0';
	if (httpsig_parse(si, sg, &sp, &why) != 0) {
		if (why == NULL)
			__builtin_trap(); /* every refusal says why */
		return 0;
	}
	check_parsed(si, &sp);
	/* Parsing is a function of the text: the same input, the same result. */
	if (httpsig_parse(si, sg, &again, NULL) != 0 || memcmp(&sp, &again, sizeof(sp)) != 0)
		__builtin_trap();
	return 0;
}

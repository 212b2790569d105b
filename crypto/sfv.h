/*
 * A bounded, allocation-free parser for RFC 8941 Structured Field Values as HTTP Message
 * Signatures (RFC 9421) use them: a Dictionary whose members are Items or Inner Lists, each
 * with Parameters, and bare items of every RFC 8941 type. Results are spans into the caller's
 * text, so nothing is copied until the caller asks. It does not serialize, and it knows nothing
 * of what the members mean.
 */
#ifndef CLEAVE_SFV_H
#define CLEAVE_SFV_H

#include <stddef.h>
#include <stdint.h>

enum sfv_type { SFV_INTEGER, SFV_DECIMAL, SFV_STRING, SFV_TOKEN, SFV_BYTES, SFV_BOOLEAN };

/* A piece of the parsed text (borrowed from it). */
struct sfv_span {
	const char *p;
	size_t len;
};

struct sfv_item {
	enum sfv_type type;
	int64_t integer; /* SFV_INTEGER: the value; SFV_BOOLEAN: 0 or 1 */
	/*
	 * SFV_STRING: between the quotes, escapes unresolved (sfv_string_copy resolves them);
	 * SFV_TOKEN: the token; SFV_BYTES: the base64 between the colons; SFV_DECIMAL: as sent.
	 */
	struct sfv_span text;
	size_t nparams; /* parameters this item carries (inner list members only) */
};

struct sfv_param {
	struct sfv_span key;
	struct sfv_item value; /* a parameter without "=" is Boolean true */
};

/* A Dictionary member; a repeated key keeps its first position and takes the last value. */
struct sfv_member {
	struct sfv_span key;
	/* The value text after "=", parameters included ("(...);a=1" or ":AAA=:;b"). */
	struct sfv_span value;
	int inner_list;
};

/*
 * Parses text (n bytes, not NUL-terminated; surrounding SP/HTAB ignored) as a Dictionary into
 * m (cap entries). Returns 0 with *count members, -E2BIG when there are more than cap distinct
 * keys, or -EINVAL when the text is not a Dictionary.
 */
int sfv_parse_dictionary(const char *text, size_t n, struct sfv_member *m, size_t cap,
			 size_t *count);

/*
 * Parses an Inner List member value (from sfv_parse_dictionary) into its items (icap entries)
 * and its own parameters (pcap entries, in the order sent, repeats kept). Returns 0, -E2BIG when
 * a cap is exceeded, or -EINVAL.
 */
int sfv_parse_inner_list(struct sfv_span value, struct sfv_item *items, size_t icap, size_t *nitems,
			 struct sfv_param *params, size_t pcap, size_t *nparams);

/* Parses an Item member value into its bare item; its parameters are checked and counted. */
int sfv_parse_item(struct sfv_span value, struct sfv_item *item);

/* Copies an SFV_STRING's characters, escapes resolved, NUL-terminated. 0, -EINVAL or -ENOSPC. */
int sfv_string_copy(const struct sfv_item *it, char *dst, size_t cap);

/*
 * Decodes an SFV_BYTES item into dst (cap bytes); "=" padding may be omitted, as RFC 8941
 * §4.2.7 asks parsers to allow. Returns the byte count, -EINVAL or -ENOSPC.
 */
long sfv_bytes_decode(const struct sfv_item *it, void *dst, size_t cap);

/* 1 when span s holds exactly the NUL-terminated string lit. */
int sfv_span_is(struct sfv_span s, const char *lit);

#endif

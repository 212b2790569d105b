/*
 * RFC 8941 Structured Field Values parser (Dictionary, Inner List, Item, Parameters and the six
 * bare item types), following the parsing algorithms of RFC 8941 §4.2 step by step. Every
 * function reads through a cursor bounded by the text's length, so input need not be
 * NUL-terminated and a NUL byte is simply an invalid character. Outputs are spans into the
 * input; the only copies are sfv_string_copy and sfv_bytes_decode, into caller buffers.
 */
#include "sfv.h"

#include <errno.h>
#include <string.h>

#include "b64.h"

#define INT_DIGITS_MAX 15 /* RFC 8941 §3.3.1 */
#define DEC_INT_MAX    12 /* §3.3.2: integer part of a Decimal */
#define DEC_FRAC_MAX   3

struct cur {
	const char *s;
	size_t i, n;
};

static int
peek(const struct cur *c)
{
	return c->i < c->n ? (unsigned char)c->s[c->i] : -1;
}

static int
is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int
is_lcalpha(int ch)
{
	return ch >= 'a' && ch <= 'z';
}

static int
is_alpha(int ch)
{
	return is_lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

/* RFC 9110 tchar, plus ":" and "/" which sf-token allows after its first character. */
static int
is_token_char(int ch)
{
	return is_alpha(ch) || is_digit(ch) || (ch > 0 && strchr("!#$%&'*+-.^_`|~:/", ch) != NULL);
}

static int
is_b64_char(int ch)
{
	return is_alpha(ch) || is_digit(ch) || ch == '+' || ch == '/' || ch == '=';
}

static void
skip_sp(struct cur *c)
{
	while (peek(c) == ' ')
		c->i++;
}

static void
skip_ows(struct cur *c)
{
	while (peek(c) == ' ' || peek(c) == '\t')
		c->i++;
}

static int
parse_key(struct cur *c, struct sfv_span *key)
{
	size_t start = c->i;
	int ch = peek(c);

	if (!is_lcalpha(ch) && ch != '*')
		return -EINVAL;
	do
		c->i++;
	while (is_lcalpha(ch = peek(c)) || is_digit(ch) || (ch > 0 && strchr("_-.*", ch) != NULL));
	key->p = c->s + start;
	key->len = c->i - start;
	return 0;
}

/* §4.2.4: an Integer of at most 15 digits or a Decimal of at most 12.3 digits. */
static int
parse_number(struct cur *c, struct sfv_item *it)
{
	size_t start = c->i, digits = 0, dot = 0;
	int neg = 0, ch;
	int64_t v = 0;

	if (peek(c) == '-') {
		neg = 1;
		c->i++;
	}
	if (!is_digit(peek(c)))
		return -EINVAL;
	for (; (ch = peek(c)) >= 0; c->i++) {
		if (is_digit(ch)) {
			digits++;
			if (dot == 0) {
				if (digits > INT_DIGITS_MAX)
					return -EINVAL;
				v = v * 10 + (ch - '0');
			} else if (digits - dot > DEC_FRAC_MAX) {
				return -EINVAL;
			}
		} else if (ch == '.' && dot == 0) {
			if (digits > DEC_INT_MAX)
				return -EINVAL;
			dot = digits;
		} else {
			break;
		}
	}
	if (dot != 0 && digits == dot)
		return -EINVAL; /* "1." */
	it->type = dot != 0 ? SFV_DECIMAL : SFV_INTEGER;
	it->integer = neg ? -v : v;
	it->text.p = c->s + start;
	it->text.len = c->i - start;
	return 0;
}

/* §4.2.5: printable ASCII, with only \" and \\ as escapes. */
static int
parse_string(struct cur *c, struct sfv_item *it)
{
	size_t start = ++c->i;
	int ch;

	while ((ch = peek(c)) >= 0) {
		c->i++;
		if (ch == '"') {
			it->type = SFV_STRING;
			it->text.p = c->s + start;
			it->text.len = c->i - 1 - start;
			return 0;
		}
		if (ch == '\\') {
			ch = peek(c);
			if (ch != '"' && ch != '\\')
				return -EINVAL;
			c->i++;
		} else if (ch < 0x20 || ch > 0x7e) {
			return -EINVAL;
		}
	}
	return -EINVAL;
}

static int
parse_bytes(struct cur *c, struct sfv_item *it)
{
	size_t start = ++c->i;
	int ch;

	while ((ch = peek(c)) >= 0 && ch != ':') {
		if (!is_b64_char(ch))
			return -EINVAL;
		c->i++;
	}
	if (ch != ':')
		return -EINVAL;
	it->type = SFV_BYTES;
	it->text.p = c->s + start;
	it->text.len = c->i - start;
	c->i++;
	return 0;
}

static int
parse_bare_item(struct cur *c, struct sfv_item *it)
{
	int ch = peek(c);

	memset(it, 0, sizeof(*it));
	if (ch == '-' || is_digit(ch))
		return parse_number(c, it);
	if (ch == '"')
		return parse_string(c, it);
	if (ch == ':')
		return parse_bytes(c, it);
	if (ch == '?') {
		c->i++;
		ch = peek(c);
		if (ch != '0' && ch != '1')
			return -EINVAL;
		c->i++;
		it->type = SFV_BOOLEAN;
		it->integer = ch == '1';
		return 0;
	}
	if (is_alpha(ch) || ch == '*') {
		size_t start = c->i;

		do
			c->i++;
		while (is_token_char(peek(c)));
		it->type = SFV_TOKEN;
		it->text.p = c->s + start;
		it->text.len = c->i - start;
		return 0;
	}
	return -EINVAL;
}

/*
 * §4.2.3.2. Stores up to cap parameters in out (which may be NULL to only count them) in the
 * order sent, repeats kept: the caller decides what a repeat means. -E2BIG past cap.
 */
static int
parse_params(struct cur *c, struct sfv_param *out, size_t cap, size_t *count)
{
	size_t n = 0;

	while (peek(c) == ';') {
		struct sfv_param p;
		int r;

		c->i++;
		skip_sp(c);
		r = parse_key(c, &p.key);
		if (r < 0)
			return r;
		if (peek(c) == '=') {
			c->i++;
			r = parse_bare_item(c, &p.value);
			if (r < 0)
				return r;
		} else {
			memset(&p.value, 0, sizeof(p.value));
			p.value.type = SFV_BOOLEAN;
			p.value.integer = 1;
		}
		if (out != NULL) {
			if (n >= cap)
				return -E2BIG;
			out[n] = p;
		}
		n++;
	}
	*count = n;
	return 0;
}

static int
parse_item(struct cur *c, struct sfv_item *it)
{
	size_t np;
	int r = parse_bare_item(c, it);

	if (r < 0)
		return r;
	r = parse_params(c, NULL, 0, &np);
	it->nparams = np;
	return r;
}

/* §4.2.1.2. items may be NULL to only validate. */
static int
parse_inner_list(struct cur *c, struct sfv_item *items, size_t icap, size_t *nitems,
		 struct sfv_param *params, size_t pcap, size_t *nparams)
{
	size_t n = 0;

	c->i++; /* "(" */
	for (;;) {
		struct sfv_item it;
		int r, ch;

		skip_sp(c);
		if (peek(c) == ')') {
			c->i++;
			*nitems = n;
			return parse_params(c, params, pcap, nparams);
		}
		r = parse_item(c, &it);
		if (r < 0)
			return r;
		if (items != NULL) {
			if (n >= icap)
				return -E2BIG;
			items[n] = it;
		}
		n++;
		ch = peek(c);
		if (ch != ' ' && ch != ')')
			return -EINVAL;
	}
}

/* Parses one member value at c (after "=", or the parameters of a bare key). */
static int
parse_member_value(struct cur *c, int has_value, struct sfv_member *m)
{
	struct sfv_item it;
	size_t start = c->i, ni, np;
	int r;

	m->inner_list = has_value && peek(c) == '(';
	if (m->inner_list)
		r = parse_inner_list(c, NULL, 0, &ni, NULL, 0, &np);
	else if (has_value)
		r = parse_item(c, &it);
	else
		r = parse_params(c, NULL, 0, &np);
	m->value.p = c->s + start;
	m->value.len = c->i - start;
	return r;
}

/* Adds m to the dictionary, or replaces the value of the member with the same key (§4.2.2). */
static int
dict_put(struct sfv_member *d, size_t cap, size_t *count, const struct sfv_member *m)
{
	for (size_t i = 0; i < *count; i++) {
		if (d[i].key.len == m->key.len && memcmp(d[i].key.p, m->key.p, m->key.len) == 0) {
			d[i].value = m->value;
			d[i].inner_list = m->inner_list;
			return 0;
		}
	}
	if (*count >= cap)
		return -E2BIG;
	d[(*count)++] = *m;
	return 0;
}

int
sfv_parse_dictionary(const char *text, size_t n, struct sfv_member *d, size_t cap, size_t *count)
{
	struct cur c = {text, 0, n};
	int r;

	*count = 0;
	while (c.n > 0 && (text[c.n - 1] == ' ' || text[c.n - 1] == '\t'))
		c.n--;
	skip_ows(&c);
	while (c.i < c.n) {
		struct sfv_member m;
		int has_value;

		r = parse_key(&c, &m.key);
		if (r < 0)
			return r;
		has_value = peek(&c) == '=';
		c.i += (size_t)has_value;
		r = parse_member_value(&c, has_value, &m);
		if (r == 0)
			r = dict_put(d, cap, count, &m);
		if (r < 0)
			return r;
		skip_ows(&c);
		if (c.i == c.n)
			return 0;
		if (peek(&c) != ',')
			return -EINVAL;
		c.i++;
		skip_ows(&c);
		if (c.i == c.n)
			return -EINVAL; /* trailing comma */
	}
	return 0;
}

int
sfv_parse_inner_list(struct sfv_span value, struct sfv_item *items, size_t icap, size_t *nitems,
		     struct sfv_param *params, size_t pcap, size_t *nparams)
{
	struct cur c = {value.p, 0, value.len};
	int r;

	if (peek(&c) != '(')
		return -EINVAL;
	r = parse_inner_list(&c, items, icap, nitems, params, pcap, nparams);
	if (r < 0)
		return r;
	return c.i == c.n ? 0 : -EINVAL;
}

int
sfv_parse_item(struct sfv_span value, struct sfv_item *item)
{
	struct cur c = {value.p, 0, value.len};
	int r = parse_item(&c, item);

	if (r < 0)
		return r;
	return c.i == c.n ? 0 : -EINVAL;
}

int
sfv_string_copy(const struct sfv_item *it, char *dst, size_t cap)
{
	size_t n = 0;

	if (it->type != SFV_STRING || cap == 0)
		return -EINVAL;
	for (size_t i = 0; i < it->text.len; i++) {
		char ch = it->text.p[i];

		if (ch == '\\')
			ch = it->text.p[++i]; /* the parser guaranteed a character follows */
		if (n + 1 >= cap) {
			dst[0] = '\0';
			return -ENOSPC;
		}
		dst[n++] = ch;
	}
	dst[n] = '\0';
	return 0;
}

long
sfv_bytes_decode(const struct sfv_item *it, void *dst, size_t cap)
{
	char padded[4];
	size_t whole, rest;
	long a, b;

	if (it->type != SFV_BYTES)
		return -EINVAL;
	rest = it->text.len % 4;
	if (rest == 0)
		return b64_decode(dst, cap, it->text.p, it->text.len);
	/* Unpadded: decode the whole quads, then the tail with its "=" restored. */
	if (rest == 1 || memchr(it->text.p, '=', it->text.len) != NULL)
		return -EINVAL;
	whole = it->text.len - rest;
	a = b64_decode(dst, cap, it->text.p, whole);
	if (a < 0)
		return a;
	memcpy(padded, it->text.p + whole, rest);
	memset(padded + rest, '=', 4 - rest);
	b = b64_decode((uint8_t *)dst + a, cap - (size_t)a, padded, 4);
	return b < 0 ? b : a + b;
}

int
sfv_span_is(struct sfv_span s, const char *lit)
{
	size_t n = strlen(lit);

	return s.len == n && memcmp(s.p, lit, n) == 0;
}

/*
 * Labels and the label query language of groups (issue 11 section 5). A label is key=value; a
 * plain name is a key whose value is "". Keys are 1-63 of [A-Za-z0-9._/-] starting with a
 * letter or digit (so they read the same in a URL, a shell and a query); values are 0-127
 * bytes of UTF-8 without control characters, and may hold anything else (markup, quotes):
 * they are data, bound into SQL and shown as text.
 *
 * A query (schema/api.md "Labels and groups"):
 *   query := or;  or := and {"OR" and};  and := unary {"AND" unary}
 *   unary := "NOT" unary | "(" or ")" | key | key "=" value | key "!=" value
 *   value := a bare word of [A-Za-z0-9._/:@+-] | "a quoted string" with \" and \\ escapes
 * AND, OR and NOT are words in any case. `key` means the device has the label (any value),
 * `key=value` that it has exactly that value, `key!=value` that it has not (with another value
 * or none). It is parsed once into a tree (struct label_query) that the store compiles to SQL
 * with every key and value bound; errors name the 1-based byte position where reading stopped.
 */
#include "service_priv.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static int key_char(char c);

int
svc_label_key_ok(const char *k)
{
	size_t n = strlen(k);

	if (n == 0 || n >= LABEL_KEY_MAX || !isalnum((unsigned char)k[0]))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!key_char(k[i]))
			return 0;
	return 1;
}

int
svc_label_value_ok(const char *v)
{
	const unsigned char *p = (const unsigned char *)v;
	size_t n = strlen(v);

	if (n >= LABEL_VALUE_MAX)
		return 0;
	while (*p) {
		int len = *p < 0x80             ? 1
			  : (*p & 0xe0) == 0xc0 ? 2
			  : (*p & 0xf0) == 0xe0 ? 3
			  : (*p & 0xf8) == 0xf0 ? 4
						: 0;

		if (len == 0 || *p < 0x20 || *p == 0x7f || (len == 2 && *p < 0xc2))
			return 0;
		for (int i = 1; i < len; i++)
			if ((p[i] & 0xc0) != 0x80)
				return 0;
		p += len;
	}
	return 1;
}

/* ---- the parser ---- */

struct lqp {
	const char *s;
	size_t pos;
	struct label_query *q;
	char *msg;
	size_t cap;
	int failed;
	int depth;
};

static int fail(struct lqp *p, const char *fmt, ...) __printf(2, 3);

static int
fail(struct lqp *p, const char *fmt, ...)
{
	char what[160];
	va_list ap;

	if (!p->failed) {
		va_start(ap, fmt);
		vsnprintf(what, sizeof(what), fmt, ap);
		va_end(ap);
		snprintf(p->msg, p->cap, "query: at position %zu: %s", p->pos + 1, what);
		p->failed = 1;
	}
	return -1;
}

static void
skip_space(struct lqp *p)
{
	while (p->s[p->pos] == ' ' || p->s[p->pos] == '\t')
		p->pos++;
}

static int
key_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("._/-", c) != NULL);
}

static int
bare_char(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' && strchr("._/:@+-", c) != NULL);
}

/* The word at pos is kw (any case) and ends there. */
static int
keyword(struct lqp *p, const char *kw)
{
	size_t n = strlen(kw);

	return strncasecmp(p->s + p->pos, kw, n) == 0 && !key_char(p->s[p->pos + n]);
}

static int
node(struct lqp *p, enum labelq_op op, int a, int b)
{
	struct labelq_node *nd;

	if (p->q->n >= LABELQ_NODES_MAX)
		return fail(p, "the query has more than %d terms and operators", LABELQ_NODES_MAX);
	nd = &p->q->node[p->q->n];
	memset(nd, 0, sizeof(*nd));
	nd->op = op;
	nd->a = a;
	nd->b = b;
	return p->q->n++;
}

static int
quoted(struct lqp *p, char *out)
{
	size_t k = 0;

	p->pos++; /* the opening quote */
	while (p->s[p->pos] != '"') {
		char c = p->s[p->pos];

		if (c == '\0')
			return fail(p, "the quoted value is not closed");
		if (c == '\\') { /* an error names the backslash */
			c = p->s[p->pos + 1];
			if (c != '"' && c != '\\')
				return fail(p, "only \\\" and \\\\ are escapes in a quoted value");
			p->pos++;
		}
		if (k + 1 >= LABEL_VALUE_MAX)
			return fail(p, "the value is longer than %d bytes", LABEL_VALUE_MAX - 1);
		out[k++] = c;
		p->pos++;
	}
	p->pos++;
	out[k] = '\0';
	return svc_label_value_ok(out) ? 0
				       : fail(p, "the value has a control character or is "
						 "not UTF-8");
}

static int
value(struct lqp *p, char *out)
{
	size_t k = 0;

	skip_space(p);
	if (p->s[p->pos] == '"')
		return quoted(p, out);
	while (bare_char(p->s[p->pos])) {
		if (k + 1 >= LABEL_VALUE_MAX)
			return fail(p, "the value is longer than %d bytes", LABEL_VALUE_MAX - 1);
		out[k++] = p->s[p->pos++];
	}
	out[k] = '\0';
	return k > 0 ? 0 : fail(p, "expected a value (a word, or text in double quotes)");
}

static int parse_or(struct lqp *p);

/* key, key=value, key!=value */
static int
term(struct lqp *p)
{
	char key[LABEL_KEY_MAX];
	size_t k = 0, start = p->pos;
	int i, ne;

	if (!isalnum((unsigned char)p->s[p->pos]))
		return fail(p, "expected a label key, NOT or \"(\"");
	while (key_char(p->s[p->pos])) {
		if (k + 1 >= LABEL_KEY_MAX) {
			p->pos = start;
			return fail(p, "the key is longer than %d characters", LABEL_KEY_MAX - 1);
		}
		key[k++] = p->s[p->pos++];
	}
	key[k] = '\0';
	skip_space(p);
	ne = p->s[p->pos] == '!' && p->s[p->pos + 1] == '=';
	if (p->s[p->pos] == '!' && !ne)
		return fail(p, "expected \"!=\"");
	if (!ne && p->s[p->pos] != '=') {
		if ((i = node(p, LQ_HAS, -1, -1)) >= 0)
			str_copy(p->q->node[i].key, LABEL_KEY_MAX, key);
		return i;
	}
	p->pos += ne ? 2 : 1;
	if ((i = node(p, LQ_EQ, -1, -1)) < 0)
		return -1;
	str_copy(p->q->node[i].key, LABEL_KEY_MAX, key);
	if (value(p, p->q->node[i].value) != 0)
		return -1;
	return ne ? node(p, LQ_NOT, i, -1) : i;
}

static int
unary(struct lqp *p)
{
	int i;

	skip_space(p);
	if (++p->depth > LABELQ_NODES_MAX)
		return fail(p, "the query nests too deeply");
	if (keyword(p, "NOT")) {
		p->pos += 3;
		i = unary(p);
		i = i < 0 ? -1 : node(p, LQ_NOT, i, -1);
	} else if (p->s[p->pos] == '(') {
		p->pos++;
		i = parse_or(p);
		skip_space(p);
		if (i >= 0 && p->s[p->pos] != ')')
			i = fail(p, "expected \")\"");
		else if (i >= 0)
			p->pos++;
	} else {
		i = term(p);
	}
	p->depth--;
	return i;
}

/* and := unary {AND unary}; or := and {OR and}: each a left-leaning chain. */
static int
chain(struct lqp *p, const char *kw, enum labelq_op op, int (*next)(struct lqp *))
{
	int left = next(p);

	while (left >= 0) {
		int right;

		skip_space(p);
		if (!keyword(p, kw))
			break;
		p->pos += strlen(kw);
		right = next(p);
		left = right < 0 ? -1 : node(p, op, left, right);
	}
	return left;
}

static int
parse_and(struct lqp *p)
{
	return chain(p, "AND", LQ_AND, unary);
}

static int
parse_or(struct lqp *p)
{
	return chain(p, "OR", LQ_OR, parse_and);
}

int
svc_labelq_parse(const char *text, struct label_query *out, char *msg, size_t cap)
{
	struct lqp p = {.s = text, .q = out, .msg = msg, .cap = cap};
	int root;

	memset(out, 0, sizeof(*out));
	msg[0] = '\0';
	if (strlen(text) >= GROUP_QUERY_MAX) {
		snprintf(msg, cap, "query: longer than %d bytes", GROUP_QUERY_MAX - 1);
		return -1;
	}
	root = parse_or(&p);
	skip_space(&p);
	if (root >= 0 && text[p.pos] != '\0')
		root = fail(&p, "expected AND, OR or the end of the query");
	if (root < 0)
		return -1;
	out->root = root;
	return 0;
}

/* ---- the canonical text ---- */

struct lqf {
	char *buf;
	size_t cap, len;
	int overflow;
};

static void put(struct lqf *f, const char *fmt, ...) __printf(2, 3);

static void
put(struct lqf *f, const char *fmt, ...)
{
	va_list ap;
	int k;

	if (f->overflow)
		return;
	va_start(ap, fmt);
	k = vsnprintf(f->buf + f->len, f->cap - f->len, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= f->cap - f->len)
		f->overflow = 1;
	else
		f->len += (size_t)k;
}

static void
put_value(struct lqf *f, const char *v)
{
	int bare = v[0] != '\0';

	for (const char *c = v; *c && bare; c++)
		bare = bare_char(*c);
	if (bare) {
		put(f, "%s", v);
		return;
	}
	put(f, "\"");
	for (const char *c = v; *c; c++)
		put(f, "%s%c", *c == '"' || *c == '\\' ? "\\" : "", *c);
	put(f, "\"");
}

static void
fmt_node(struct lqf *f, const struct label_query *q, int i, int depth)
{
	const struct labelq_node *nd = &q->node[i];

	if (depth > LABELQ_NODES_MAX || i < 0 || i >= q->n) {
		f->overflow = 1;
		return;
	}
	if (nd->op == LQ_HAS) {
		put(f, "%s", nd->key);
	} else if (nd->op == LQ_EQ) {
		put(f, "%s=", nd->key);
		put_value(f, nd->value);
	} else if (nd->op == LQ_NOT && q->node[nd->a].op == LQ_EQ) {
		put(f, "%s!=", q->node[nd->a].key);
		put_value(f, q->node[nd->a].value);
	} else if (nd->op == LQ_NOT) {
		int paren = q->node[nd->a].op == LQ_AND || q->node[nd->a].op == LQ_OR;

		put(f, paren ? "NOT (" : "NOT ");
		fmt_node(f, q, nd->a, depth + 1);
		put(f, paren ? ")" : "");
	} else {
		/* AND binds tighter than OR: an OR under an AND needs its parentheses. */
		for (int side = 0; side < 2; side++) {
			int c = side ? nd->b : nd->a;
			int paren = (nd->op == LQ_AND && q->node[c].op == LQ_OR) ||
				    (side == 1 && q->node[c].op == nd->op);

			if (side)
				put(f, nd->op == LQ_AND ? " AND " : " OR ");
			put(f, paren ? "(" : "");
			fmt_node(f, q, c, depth + 1);
			put(f, paren ? ")" : "");
		}
	}
}

int
svc_labelq_format(const struct label_query *q, char *buf, size_t cap)
{
	struct lqf f = {buf, cap, 0, 0};

	buf[0] = '\0';
	fmt_node(&f, q, q->root, 0);
	return f.overflow ? -1 : 0;
}

/* The portal's HTML buffer (html.h). */
#include "html.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for n more bytes and a NUL; 0, or -1 once anything failed. */
static int
room(struct html *h, size_t n)
{
	size_t cap = h->cap ? h->cap : 4096;
	char *p;

	if (h->failed)
		return -1;
	if (h->len + n + 1 <= h->cap)
		return 0;
	while (cap < h->len + n + 1)
		cap *= 2;
	p = cap <= HTML_MAX ? realloc(h->buf, cap) : NULL;
	if (p == NULL) {
		h->failed = 1;
		return -1;
	}
	h->buf = p;
	h->cap = cap;
	return 0;
}

void
html_raw(struct html *h, const char *s)
{
	size_t n = strlen(s);

	if (room(h, n) != 0)
		return;
	memcpy(h->buf + h->len, s, n + 1);
	h->len += n;
}

void
html_fmt(struct html *h, const char *fmt, ...)
{
	char tmp[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp))
		h->failed = 1;
	else
		html_raw(h, tmp);
}

void
html_text(struct html *h, const char *s)
{
	for (; *s != '\0'; s++) {
		const char *e = *s == '&'    ? "&amp;"
				: *s == '<'  ? "&lt;"
				: *s == '>'  ? "&gt;"
				: *s == '"'  ? "&quot;"
				: *s == '\'' ? "&#39;"
					     : NULL;
		char one[2] = {*s, '\0'};

		html_raw(h, e ? e : one);
	}
}

int
html_take(struct html *h, char **body, size_t *len)
{
	if (h->failed || h->buf == NULL) {
		free(h->buf);
		memset(h, 0, sizeof(*h));
		return -ENOMEM;
	}
	*body = h->buf;
	*len = h->len;
	memset(h, 0, sizeof(*h));
	return 0;
}

/*
 * A growing HTML buffer for the server-rendered employee portal: literal markup goes in with
 * html_raw / html_fmt (for our own text and numbers only), anything from outside with
 * html_text, which escapes & < > " ' so it stays text. Out of memory is remembered and
 * reported once, by html_take.
 */
#ifndef CLEAVE_HTML_H
#define CLEAVE_HTML_H

#include <stddef.h>

#include "util.h"

/* Pages are small; a page that would pass this is cut (and reported as out of memory). */
#define HTML_MAX (256 * 1024)

struct html {
	char *buf;
	size_t len, cap;
	int failed;
};

void html_raw(struct html *h, const char *s);
void html_fmt(struct html *h, const char *fmt, ...) __printf(2, 3);
void html_text(struct html *h, const char *s);
/* Hands over the page (caller frees *body); -ENOMEM when anything failed (and frees it). */
int html_take(struct html *h, char **body, size_t *len);

#endif

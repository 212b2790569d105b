/*
 * A QR code in the terminal: libqrencode's matrix (level M, as the server's /enroll/qr.svg)
 * drawn with UTF-8 half blocks, two module rows a text line, inside a 2-module quiet zone
 * (phone cameras read a terminal's code with that margin; the printed link is the fallback).
 * Text is light on dark in most terminals, so by default the light modules are the ones
 * drawn; invert draws the dark ones, for a light background.
 */
#include <stdio.h>
#include <string.h>

#include <qrencode.h>

#include "cli.h"

#define QUIET 2

/* 1 when module (x, y) is dark; the quiet zone is light. */
static int
dark(const QRcode *q, int x, int y)
{
	x -= QUIET;
	y -= QUIET;
	if (x < 0 || y < 0 || x >= q->width || y >= q->width)
		return 0;
	return q->data[y * q->width + x] & 1; /* the other bits are libqrencode's notes */
}

int
qr_print(FILE *f, const char *text, int invert)
{
	/* Index: top drawn, bottom drawn. */
	static const char *const glyph[4] = {" ", "\xe2\x96\x84", "\xe2\x96\x80", "\xe2\x96\x88"};
	QRcode *q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	int side;

	if (q == NULL)
		return -1;
	side = q->width + 2 * QUIET;
	for (int y = 0; y < side; y += 2) {
		for (int x = 0; x < side; x++) {
			int top = dark(q, x, y) ^ !invert;
			int bot = y + 1 < side ? dark(q, x, y + 1) ^ !invert : 0;

			fputs(glyph[top * 2 + bot], f);
		}
		fputc('\n', f);
	}
	QRcode_free(q);
	return 0;
}

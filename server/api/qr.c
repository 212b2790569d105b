/*
 * QR code rendering: libqrencode's matrix drawn as SVG or PNG. Error correction level M
 * (15 % of the symbol may be damaged) suits a link shown on a screen and scanned by a phone.
 * The PNG encoder writes only what a viewer needs: signature, IHDR, one IDAT, IEND, each chunk
 * with its CRC-32 (zlib's crc32, the same polynomial PNG names).
 */
#include "qr.h"

#include <errno.h>
#include <stdarg.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int
qr_matrix(const char *text, uint8_t **mods, int *width)
{
	QRcode *q;
	size_t n;

	if (text == NULL || text[0] == '\0' || strlen(text) > QR_TEXT_MAX)
		return -EINVAL;
	q = QRcode_encodeString(text, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	if (q == NULL)
		return errno == ENOMEM ? -ENOMEM : -EINVAL;
	n = (size_t)q->width * (size_t)q->width;
	*mods = malloc(n);
	if (*mods == NULL) {
		QRcode_free(q);
		return -ENOMEM;
	}
	/* Bit 0 of each byte is the module's colour; the other bits are libqrencode's notes. */
	for (size_t i = 0; i < n; i++)
		(*mods)[i] = q->data[i] & 1;
	*width = q->width;
	QRcode_free(q);
	return 0;
}

/* Appends printf output to a buffer of cap bytes; -ENOSPC when it does not fit. */
static int __attribute__((format(printf, 4, 5)))
put(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf + *len, cap - *len, fmt, ap);
	va_end(ap);

	if (n < 0 || (size_t)n >= cap - *len)
		return -ENOSPC;
	*len += (size_t)n;
	return 0;
}

int
qr_svg(const char *text, char **out, size_t *len)
{
	uint8_t *m;
	int w, r = qr_matrix(text, &m, &w), side;
	size_t cap, n = 0;
	char *buf;

	if (r != 0)
		return r;
	side = w + 2 * QR_QUIET;
	/* At worst every other module starts a run of one: about 24 bytes each. */
	cap = 512 + (size_t)w * (size_t)w * 13;
	buf = malloc(cap);
	if (buf == NULL) {
		free(m);
		return -ENOMEM;
	}
	r = put(buf, cap, &n,
		"<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
		"height=\"%d\" "
		"shape-rendering=\"crispEdges\"><rect width=\"100%%\" height=\"100%%\" "
		"fill=\"#fff\"/><path fill=\"#000\" d=\"",
		side, side, side * QR_PNG_SCALE, side * QR_PNG_SCALE);
	/* One rectangle per horizontal run of dark modules. */
	for (int y = 0; r == 0 && y < w; y++) {
		for (int x = 0; r == 0 && x < w;) {
			int run = 0;

			while (x + run < w && m[y * w + x + run])
				run++;
			if (run > 0)
				r = put(buf, cap, &n, "M%d %dh%dv1H%dz", x + QR_QUIET, y + QR_QUIET,
					run, x + QR_QUIET);
			x += run > 0 ? run : 1;
		}
	}
	if (r == 0)
		r = put(buf, cap, &n, "%s", "\"/></svg>\n");
	free(m);
	if (r != 0) {
		free(buf);
		return -ENOMEM;
	}
	*out = buf;
	*len = n;
	return 0;
}

static void
be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Writes one chunk (length, type, data, CRC over type and data) at p; returns its size. */
static size_t
chunk(uint8_t *p, const char *type, const uint8_t *data, size_t n)
{
	uLong crc;

	be32(p, (uint32_t)n);
	memcpy(p + 4, type, 4);
	if (n > 0)
		memcpy(p + 8, data, n);
	crc = crc32(0L, p + 4, (uInt)(n + 4));
	be32(p + 8 + n, (uint32_t)crc);
	return n + 12;
}

/* The raw scanlines: a filter byte (0, none) then one grey byte per pixel, per row. */
static uint8_t *
scanlines(const uint8_t *m, int w, size_t *size, uint32_t *px)
{
	uint32_t side = (uint32_t)(w + 2 * QR_QUIET) * QR_PNG_SCALE;
	size_t row = (size_t)side + 1;
	uint8_t *raw = malloc(row * side);

	if (raw == NULL)
		return NULL;
	for (uint32_t y = 0; y < side; y++) {
		uint8_t *line = raw + y * row;
		int my = (int)(y / QR_PNG_SCALE) - QR_QUIET;

		line[0] = 0;
		for (uint32_t x = 0; x < side; x++) {
			int mx = (int)(x / QR_PNG_SCALE) - QR_QUIET;
			int dark = my >= 0 && my < w && mx >= 0 && mx < w && m[my * w + mx];

			line[1 + x] = dark ? 0x00 : 0xff;
		}
	}
	*size = row * side;
	*px = side;
	return raw;
}

int
qr_png(const char *text, uint8_t **out, size_t *len)
{
	static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	uint8_t *m, *raw, *z = NULL, *png = NULL, ihdr[13];
	size_t raw_n = 0;
	uLongf z_n;
	uint32_t side = 0;
	int w, r = qr_matrix(text, &m, &w);

	if (r != 0)
		return r;
	raw = scanlines(m, w, &raw_n, &side);
	free(m);
	z_n = raw == NULL ? 0 : compressBound((uLong)raw_n);
	if (raw != NULL)
		z = malloc(z_n);
	if (z != NULL && compress2(z, &z_n, raw, (uLong)raw_n, Z_BEST_COMPRESSION) == Z_OK)
		png = malloc(8 + 25 + 12 + z_n + 12);
	free(raw);
	if (png == NULL) {
		free(z);
		return -ENOMEM;
	}
	be32(ihdr, side);
	be32(ihdr + 4, side);
	ihdr[8] = 8;  /* bit depth */
	ihdr[9] = 0;  /* colour type: greyscale */
	ihdr[10] = 0; /* deflate */
	ihdr[11] = 0; /* adaptive filtering (every row says "none") */
	ihdr[12] = 0; /* not interlaced */
	memcpy(png, sig, 8);
	*len = 8;
	*len += chunk(png + *len, "IHDR", ihdr, sizeof(ihdr));
	*len += chunk(png + *len, "IDAT", z, z_n);
	*len += chunk(png + *len, "IEND", NULL, 0);
	free(z);
	*out = png;
	return 0;
}

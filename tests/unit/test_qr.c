/*
 * Unit tests of the QR renderer (server/api/qr.c): the matrix is libqrencode's own for the
 * same text and level; the SVG draws exactly the dark modules, offset by the quiet zone; the
 * PNG has its signature, an IHDR of the right size, CRCs that check, and an IDAT that zlib
 * inflates to exactly the scanlines of that size. When zbarimg (zbar-tools) is installed the
 * PNG is also decoded back to the text, which is the check that matters: a phone can read it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <qrencode.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "api/qr.h"

static const char url[] = "https://127.0.0.1:8443/enroll?token=clv_et_"
			  "3q2-7wAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static uint32_t
rd32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void
test_matrix_is_libqrencodes(void **state)
{
	QRcode *q = QRcode_encodeString(url, 0, QR_ECLEVEL_M, QR_MODE_8, 1);
	uint8_t *m;
	int w, dark = 0;

	(void)state;
	assert_non_null(q);
	assert_int_equal(qr_matrix(url, &m, &w), 0);
	assert_int_equal(w, q->width);
	/* A 96-byte URL at level M needs version 5 or 6: 37 or 41 modules a side. */
	assert_true(w == 37 || w == 41);
	for (int i = 0; i < w * w; i++) {
		assert_int_equal(m[i], q->data[i] & 1);
		dark += m[i];
	}
	/* Finder pattern: the top-left 7x7 ring is dark, the square inside it light. */
	for (int i = 0; i < 7; i++)
		assert_true(m[i] && m[6 * w + i] && m[i * w] && m[i * w + 6]);
	assert_int_equal(m[1 * w + 1], 0);
	assert_true(dark > w * w / 4 && dark < w * w * 3 / 4);
	free(m);
	QRcode_free(q);
	assert_int_equal(qr_matrix("", &m, &w), -EINVAL);
}

/* Counts the modules the SVG path covers, checking each rectangle is inside the symbol. */
static void
test_svg_draws_the_dark_modules(void **state)
{
	uint8_t *m;
	char *svg, *p;
	size_t n;
	int w, covered = 0, dark = 0, x, y, run, x2, used;

	(void)state;
	assert_int_equal(qr_matrix(url, &m, &w), 0);
	assert_int_equal(qr_svg(url, &svg, &n), 0);
	assert_int_equal(strlen(svg), n);
	assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
	assert_non_null(strstr(svg, "</svg>"));
	p = strstr(svg, " d=\"");
	assert_non_null(p);
	p += 4;
	while (sscanf(p, "M%d %dh%dv1H%dz%n", &x, &y, &run, &x2, &used) == 4) {
		assert_int_equal(x, x2);
		for (int i = 0; i < run; i++) {
			int mx = x - QR_QUIET + i, my = y - QR_QUIET;

			assert_true(mx >= 0 && mx < w && my >= 0 && my < w);
			assert_int_equal(m[my * w + mx], 1);
			covered++;
		}
		p += used;
	}
	assert_int_equal(*p, '"');
	for (int i = 0; i < w * w; i++)
		dark += m[i];
	assert_int_equal(covered, dark);
	free(svg);
	free(m);
}

static void
test_png_structure(void **state)
{
	uint8_t *png, *raw;
	size_t n, off = 8;
	int w;
	uint32_t side;
	uLongf raw_n;
	uint8_t *m;

	(void)state;
	assert_int_equal(qr_matrix(url, &m, &w), 0);
	free(m);
	side = (uint32_t)(w + 2 * QR_QUIET) * QR_PNG_SCALE;
	assert_int_equal(qr_png(url, &png, &n), 0);
	assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
	for (int k = 0; k < 3; k++) {
		uint32_t len = rd32(png + off);
		const char *types[] = {"IHDR", "IDAT", "IEND"};

		assert_true(off + 12 + len <= n);
		assert_memory_equal(png + off + 4, types[k], 4);
		assert_int_equal(rd32(png + off + 8 + len), crc32(0L, png + off + 4, len + 4));
		if (k == 0) {
			assert_int_equal(len, 13);
			assert_int_equal(rd32(png + off + 8), side);
			assert_int_equal(rd32(png + off + 12), side);
			assert_int_equal(png[off + 16], 8);
			assert_int_equal(png[off + 17], 0);
		}
		if (k == 1) {
			raw_n = (uLongf)(side + 1) * side + 1;
			raw = malloc(raw_n);
			assert_int_equal(uncompress(raw, &raw_n, png + off + 8, len), Z_OK);
			assert_int_equal(raw_n, (uLongf)(side + 1) * side);
			/* Quiet zone: the first row is white; the finder's corner is black. */
			assert_int_equal(raw[0], 0);
			assert_int_equal(raw[1], 0xff);
			assert_int_equal(raw[(side + 1) * (QR_QUIET * QR_PNG_SCALE) + 1 +
					     QR_QUIET * QR_PNG_SCALE],
					 0);
			free(raw);
		}
		off += 12 + len;
	}
	assert_int_equal(off, n);
	free(png);
}

/* zbarimg, when present, reads the PNG back: the real check that it scans. */
static void
test_png_decodes(void **state)
{
	char path[] = "/tmp/cleave-qr-XXXXXX", cmd[128], got[512] = "";
	uint8_t *png;
	size_t n;
	FILE *f;
	int fd;

	(void)state;
	if (system("command -v zbarimg >/dev/null 2>&1") != 0) {
		printf("SKIP: zbarimg is not installed (scripts/deps.sh installs zbar-tools)\n");
		skip();
	}
	assert_int_equal(qr_png(url, &png, &n), 0);
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, png, n), (ssize_t)n);
	close(fd);
	free(png);
	snprintf(cmd, sizeof(cmd), "zbarimg --quiet --raw %s 2>/dev/null", path);
	f = popen(cmd, "r");
	assert_non_null(f);
	n = fread(got, 1, sizeof(got) - 1, f);
	got[n] = '\0';
	pclose(f);
	unlink(path);
	if (n > 0 && got[n - 1] == '\n')
		got[n - 1] = '\0';
	assert_string_equal(got, url);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_matrix_is_libqrencodes),
		cmocka_unit_test(test_svg_draws_the_dark_modules),
		cmocka_unit_test(test_png_structure),
		cmocka_unit_test(test_png_decodes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * QR codes for enrollment links (issue 9): libqrencode makes the module matrix; this module
 * draws it as SVG (one path of dark rectangles) or PNG (8-bit greyscale, deflated with zlib),
 * each with the four-module quiet zone scanners need. No HTTP here: the api/ handlers serve it.
 */
#ifndef CLEAVE_QR_H
#define CLEAVE_QR_H

#include <stddef.h>
#include <stdint.h>

/* Quiet zone around the symbol, in modules (ISO/IEC 18004 asks for 4). */
#define QR_QUIET 4
/* Longest text encoded (an enrollment URL is far shorter). */
#define QR_TEXT_MAX 1024
/* Pixels per module of the PNG. */
#define QR_PNG_SCALE 8

/* The module matrix of text: width*width bytes, 1 = dark, row by row (caller frees *mods). */
int qr_matrix(const char *text, uint8_t **mods, int *width);
/* An SVG document of text's QR code (caller frees *out). 0, -EINVAL or -ENOMEM. */
int qr_svg(const char *text, char **out, size_t *len);
/* A PNG image of text's QR code, QR_PNG_SCALE pixels a module (caller frees *out). */
int qr_png(const char *text, uint8_t **out, size_t *len);

#endif

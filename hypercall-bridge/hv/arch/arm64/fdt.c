/*
 * The FDT writer (fdt.h). The struct block grows from the start of the buffer; fdt_finish moves
 * it behind the 40-byte header and the 16-byte empty reservation map and appends the strings.
 * Every value is big-endian, every token and property value padded to 4 bytes.
 */
#include <errno.h>
#include <string.h>

#include "fdt.h"

#define FDT_MAGIC      0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE   2u
#define FDT_PROP       3u
#define FDT_END        9u
#define FDT_HDR_LEN    40u
#define FDT_RSV_LEN    16u /* one all-zero entry ends the reservation map */
#define FDT_MAX_DEPTH  8

static void
put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Appends len bytes (NULL: zeros) and pads to 4 bytes. */
static void
emit(struct fdt *f, const void *p, size_t len)
{
	size_t padded = (len + 3) & ~(size_t)3;

	if (f->err != 0)
		return;
	if (padded > f->cap - f->len) {
		f->err = -ENOSPC;
		return;
	}
	memset(f->buf + f->len, 0, padded);
	if (p != NULL)
		memcpy(f->buf + f->len, p, len);
	f->len += padded;
}

static void
emit_u32(struct fdt *f, uint32_t v)
{
	uint8_t b[4];

	put_be32(b, v);
	emit(f, b, 4);
}

/* The offset of name in the strings block, added when new; 0 after an error. */
static uint32_t
string_off(struct fdt *f, const char *name)
{
	size_t n = strlen(name) + 1;

	for (size_t at = 0; at < f->slen; at += strlen(f->strings + at) + 1)
		if (strcmp(f->strings + at, name) == 0)
			return (uint32_t)at;
	if (n > sizeof(f->strings) - f->slen) {
		f->err = -ENOSPC;
		return 0;
	}
	memcpy(f->strings + f->slen, name, n);
	f->slen += n;
	return (uint32_t)(f->slen - n);
}

void
fdt_begin(struct fdt *f, uint8_t *buf, size_t cap)
{
	memset(f, 0, sizeof(*f));
	f->buf = buf;
	f->cap = cap;
}

void
fdt_node(struct fdt *f, const char *name)
{
	if (++f->depth > FDT_MAX_DEPTH && f->err == 0)
		f->err = -EINVAL;
	emit_u32(f, FDT_BEGIN_NODE);
	emit(f, name, strlen(name) + 1);
}

void
fdt_end_node(struct fdt *f)
{
	if (--f->depth < 0 && f->err == 0)
		f->err = -EINVAL;
	emit_u32(f, FDT_END_NODE);
}

void
fdt_prop(struct fdt *f, const char *name, const void *val, size_t len)
{
	uint32_t off = string_off(f, name);

	emit_u32(f, FDT_PROP);
	emit_u32(f, (uint32_t)len);
	emit_u32(f, off);
	emit(f, val, len);
}

void
fdt_prop_cells(struct fdt *f, const char *name, const uint32_t *cells, size_t n)
{
	uint8_t b[4 * 16];

	if (n > 16) {
		f->err = -EINVAL;
		return;
	}
	for (size_t i = 0; i < n; i++)
		put_be32(b + 4 * i, cells[i]);
	fdt_prop(f, name, b, 4 * n);
}

void
fdt_prop_u32(struct fdt *f, const char *name, uint32_t v)
{
	fdt_prop_cells(f, name, &v, 1);
}

void
fdt_prop_u64(struct fdt *f, const char *name, uint64_t v)
{
	uint32_t c[2] = {(uint32_t)(v >> 32), (uint32_t)v};

	fdt_prop_cells(f, name, c, 2);
}

void
fdt_prop_str(struct fdt *f, const char *name, const char *s)
{
	fdt_prop(f, name, s, strlen(s) + 1);
}

void
fdt_prop_empty(struct fdt *f, const char *name)
{
	fdt_prop(f, name, NULL, 0);
}

long
fdt_finish(struct fdt *f)
{
	size_t struct_len, total;
	uint8_t *h = f->buf;

	emit_u32(f, FDT_END);
	if (f->err == 0 && f->depth != 0)
		f->err = -EINVAL;
	if (f->err != 0)
		return f->err;
	struct_len = f->len;
	total = FDT_HDR_LEN + FDT_RSV_LEN + struct_len + f->slen;
	if (total > f->cap)
		return -ENOSPC;
	memmove(h + FDT_HDR_LEN + FDT_RSV_LEN, h, struct_len);
	memset(h, 0, FDT_HDR_LEN + FDT_RSV_LEN);
	memcpy(h + FDT_HDR_LEN + FDT_RSV_LEN + struct_len, f->strings, f->slen);
	put_be32(h + 0, FDT_MAGIC);
	put_be32(h + 4, (uint32_t)total);
	put_be32(h + 8, FDT_HDR_LEN + FDT_RSV_LEN);                           /* off_dt_struct */
	put_be32(h + 12, (uint32_t)(FDT_HDR_LEN + FDT_RSV_LEN + struct_len)); /* off_dt_strings */
	put_be32(h + 16, FDT_HDR_LEN);                                        /* off_mem_rsvmap */
	put_be32(h + 20, 17);                                                 /* version */
	put_be32(h + 24, 16);                                                 /* last compatible */
	put_be32(h + 28, 0);                                                  /* boot cpu */
	put_be32(h + 32, (uint32_t)f->slen);
	put_be32(h + 36, (uint32_t)struct_len);
	return (long)total;
}

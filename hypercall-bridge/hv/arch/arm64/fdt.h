/*
 * A small flattened device tree writer (the devicetree specification's FDT format, version 17)
 * for the Linux corporate half's boot (linux_boot.c): nodes and properties appended in order
 * into caller storage, strings deduplicated, everything bounded. No reading, no editing, no
 * phandle bookkeeping. Not for use outside hypercall-bridge/hv/.
 */
#ifndef CLEAVE_ARM64_FDT_H
#define CLEAVE_ARM64_FDT_H

#include <stddef.h>
#include <stdint.h>

#define FDT_STRINGS_CAP 512

struct fdt {
	uint8_t *buf; /* borrowed: the struct block is built here, then the blob */
	size_t cap, len;
	char strings[FDT_STRINGS_CAP];
	size_t slen;
	int depth;
	int err; /* sticky: -ENOSPC or -EINVAL once anything did not fit or nest */
};

/* Starts a blob in buf (cap bytes, borrowed until fdt_finish). */
void fdt_begin(struct fdt *f, uint8_t *buf, size_t cap);
void fdt_node(struct fdt *f, const char *name);
void fdt_end_node(struct fdt *f);
void fdt_prop(struct fdt *f, const char *name, const void *val, size_t len);
void fdt_prop_u32(struct fdt *f, const char *name, uint32_t v);
/* A list of n big-endian 32-bit cells. */
void fdt_prop_cells(struct fdt *f, const char *name, const uint32_t *cells, size_t n);
/* Two cells: a 64-bit value as #address-cells = 2 wants it. */
void fdt_prop_u64(struct fdt *f, const char *name, uint64_t v);
void fdt_prop_str(struct fdt *f, const char *name, const char *s);
/* A property with no value (a flag such as interrupt-controller). */
void fdt_prop_empty(struct fdt *f, const char *name);
/*
 * Closes the tree and lays the blob out in buf: header, an empty reservation map, the struct
 * block, the strings. Returns the blob's size, or a negative errno when anything failed.
 */
long fdt_finish(struct fdt *f);

#endif

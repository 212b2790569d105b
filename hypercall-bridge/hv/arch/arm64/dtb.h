/*
 * The device tree of a Linux corporate half on arm64 (dtb.c). Not for use outside
 * hypercall-bridge/hv/ and its unit test.
 */
#ifndef CLEAVE_ARM64_DTB_H
#define CLEAVE_ARM64_DTB_H

#include <stddef.h>
#include <stdint.h>

struct arm64_dtb {
	uint64_t ram_size;   /* bytes of RAM from ARM64_RAM_BASE */
	int has_disk;        /* describe the virtio-mmio disk */
	const char *cmdline; /* borrowed */
	uint64_t initrd;     /* guest physical address of the initramfs */
	size_t initrd_len;   /* 0: none */
};

/* Writes the blob into buf (cap bytes); its size, or a negative errno when it does not fit. */
long arm64_dtb_write(uint8_t *buf, size_t cap, const struct arm64_dtb *d);

#endif

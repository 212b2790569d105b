/*
 * The port I/O bus of one VM: devices register a port range with a handler, the exit decoder
 * looks ports up, and devices undo their registration on exit. A fixed-size table, no
 * allocation and no locking: it is filled before the vCPU starts and only read while it runs.
 */
#ifndef CLEAVE_BUS_PIO_H
#define CLEAVE_BUS_PIO_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

#define BUS_PIO_MAX_DEVS 8

/* The device needs the vCPU's argument registers (the doorbell); see struct bus_io.regs. */
#define BUS_F_REGS 0x1

/*
 * One guest port access, already copied out of the shared kvm_run page and validated
 * (size 1, 2 or 4, one repetition, inside the device's range). For an `in` the handler sets
 * value; only the low size bytes are given to the guest. regs is filled for BUS_F_REGS
 * devices only; a handler that changes it sets regs_dirty so the vCPU writes them back. via is
 * the exit decoder's: how a doorbell call arrived (CALL_VIA_PORT, 0, for every port access).
 */
struct bus_io {
	uint16_t port;
	uint8_t size;
	uint8_t is_write;
	uint32_t value;
	uint8_t via; /* enum call_via */
	struct call_regs regs;
	int regs_dirty;
};

struct bus_dev {
	const char *name; /* borrowed, static */
	uint16_t base;
	uint16_t len;
	unsigned flags;
	/* Handles one access; returns 0 or a negative errno (logged, the guest continues). */
	int (*io)(void *ctx, struct bus_io *io);
	void *ctx; /* borrowed: must outlive the registration */
};

struct bus_pio {
	struct bus_dev devs[BUS_PIO_MAX_DEVS];
	size_t n;
};

/* Empties b (caller storage). */
void bus_pio_init(struct bus_pio *b);
/*
 * Registers a copy of *d (d is borrowed; d->name and d->ctx must outlive the registration).
 * Returns 0, -EINVAL (empty or wrapping range, no handler), -EEXIST (overlap) or -ENOSPC.
 */
int bus_register_pio(struct bus_pio *b, const struct bus_dev *d);
/* Removes the device registered at base; returns 0 or -ENOENT. */
int bus_unregister_pio(struct bus_pio *b, uint16_t base);
/*
 * The device whose range holds all size bytes starting at port, or NULL. The pointer is
 * borrowed from b and valid until the next register/unregister.
 */
const struct bus_dev *bus_find_pio(const struct bus_pio *b, uint16_t port, uint8_t size);

#endif

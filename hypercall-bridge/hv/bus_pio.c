/*
 * The port I/O bus: a small table of non-overlapping port ranges (kvmtool's ioport bus, cut
 * down). Lookups are linear: a VM has a handful of devices. No locking (see bus_pio.h).
 */
#include <errno.h>
#include <string.h>

#include "bus_pio.h"

void
bus_pio_init(struct bus_pio *b)
{
	memset(b, 0, sizeof(*b));
}

int
bus_register_pio(struct bus_pio *b, const struct bus_dev *d)
{
	uint32_t end = (uint32_t)d->base + d->len;

	if (d->len == 0 || end > 0x10000 || d->io == NULL)
		return -EINVAL;
	for (size_t i = 0; i < b->n; i++) {
		const struct bus_dev *o = &b->devs[i];

		if (d->base < (uint32_t)o->base + o->len && o->base < end)
			return -EEXIST;
	}
	if (b->n == BUS_PIO_MAX_DEVS)
		return -ENOSPC;
	b->devs[b->n++] = *d;
	return 0;
}

int
bus_unregister_pio(struct bus_pio *b, uint16_t base)
{
	for (size_t i = 0; i < b->n; i++) {
		if (b->devs[i].base == base) {
			b->devs[i] = b->devs[b->n - 1];
			memset(&b->devs[--b->n], 0, sizeof(b->devs[0]));
			return 0;
		}
	}
	return -ENOENT;
}

const struct bus_dev *
bus_find_pio(const struct bus_pio *b, uint16_t port, uint8_t size)
{
	uint32_t end = (uint32_t)port + size;

	for (size_t i = 0; i < b->n; i++) {
		const struct bus_dev *d = &b->devs[i];

		if (port >= d->base && end <= (uint32_t)d->base + d->len)
			return d;
	}
	return NULL;
}

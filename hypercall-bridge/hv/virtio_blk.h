/*
 * A small virtio-mmio block device (virtio 1.x, MMIO transport version 2) for a Linux corporate
 * half: one request queue, read, write, flush; 4096-byte logical blocks (VIRTIO_BLK_F_BLK_SIZE)
 * whose contents come from a backend, the encrypted corporate volume in cleave-hv. Requests are
 * served on the vCPU thread during the QueueNotify exit (the guest's one vCPU is in the exit, so
 * the rings cannot change under us); completion raises the device's interrupt line. Registers
 * reach it through the bus as offsets from VIRTIO_BUS_BASE (the architecture's decoder maps its
 * MMIO window there). Not for use outside hypercall-bridge/hv/.
 */
#ifndef CLEAVE_VIRTIO_BLK_H
#define CLEAVE_VIRTIO_BLK_H

#include <stddef.h>
#include <stdint.h>

#include "bus_pio.h"
#include "vmm.h"

#define VIRTIO_BUS_BASE  0x1000u /* bus number of the window's offset 0 */
#define VIRTIO_MMIO_LEN  0x200u  /* registers 0x000-0x0ff, device config from 0x100 */
#define VIRTIO_QUEUE_MAX 128u

/* The guest RAM at gpa, len bytes, or NULL when not all inside RAM. */
typedef uint8_t *(*virtio_mem_fn)(void *ctx, uint64_t gpa, size_t len);
/* Sets the device's interrupt line high (1) or low (0). */
typedef void (*virtio_irq_fn)(void *ctx, int level);

struct virtio_blk;

/* A device over disk (copied; its ctx borrowed), guest memory and irq (ctx borrowed). */
struct virtio_blk *virtio_blk_new(const struct vmm_disk *disk, virtio_mem_fn mem, virtio_irq_fn irq,
				  void *ctx);
void virtio_blk_free(struct virtio_blk *b);
/* The bus handler (struct bus_dev.io); ctx is the struct virtio_blk. */
int virtio_blk_io(void *ctx, struct bus_io *io);
/* Requests served and failed so far, for the log. */
void virtio_blk_counts(const struct virtio_blk *b, uint64_t *done, uint64_t *failed);

#endif

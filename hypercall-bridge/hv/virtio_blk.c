/*
 * The virtio-mmio block device (virtio_blk.h). Register layout: virtio 1.2 §4.2.2 (MMIO
 * version 2); requests: §5.2.6 (a 16-byte header, data, a status byte). Only what Linux's
 * virtio_mmio and virtio_blk drivers use: no indirect descriptors, no event index, no legacy
 * interface. Guest memory is reached through the mem callback, which bounds every range; a
 * request the device cannot parse is completed with VIRTIO_BLK_S_IOERR when it has a status
 * byte and with length 0 otherwise; a ring outside RAM puts the device in NEEDS_RESET.
 */
#include "virtio_blk.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define VIRTIO_MAGIC     0x74726976u /* "virt" */
#define VIRTIO_ID_BLOCK  2u
#define VIRTIO_VENDOR    0x56454c43u /* "CLEV" */
#define F_SEG_MAX        (1ull << 2)
#define F_BLK_SIZE       (1ull << 6)
#define F_FLUSH          (1ull << 9)
#define F_VERSION_1      (1ull << 32)
#define DEV_FEATURES     (F_SEG_MAX | F_BLK_SIZE | F_FLUSH | F_VERSION_1)
#define SEG_MAX          64u
#define STATUS_NEEDS_RST 0x40u
#define DESC_F_NEXT      1u
#define DESC_F_WRITE     2u
#define T_IN             0u
#define T_OUT            1u
#define T_FLUSH          4u
#define S_OK             0u
#define S_IOERR          1u
#define S_UNSUPP         2u
#define BLOCK            4096u
#define BOUNCE_BLOCKS    16u
#define CFG_LEN          0x40u

struct seg {
	uint64_t gpa;
	uint32_t len;
	int write;
};

struct virtio_blk {
	struct vmm_disk disk;
	virtio_mem_fn mem;
	virtio_irq_fn irq;
	void *ctx;
	uint32_t status, dev_sel, drv_sel, isr;
	uint64_t drv_features;
	uint32_t qnum, qready;
	uint64_t desc, avail, used;
	uint16_t last_avail, used_idx; /* ours: the guest's copies in its rings are not trusted */
	uint64_t done, failed;
	uint8_t cfg[CFG_LEN];
	struct seg segs[SEG_MAX + 2];
	uint8_t bounce[BOUNCE_BLOCKS * BLOCK];
};

static uint16_t
le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t
le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

struct virtio_blk *
virtio_blk_new(const struct vmm_disk *disk, virtio_mem_fn mem, virtio_irq_fn irq, void *ctx)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	uint64_t cap512;

	if (b == NULL)
		return NULL;
	b->disk = *disk;
	b->mem = mem;
	b->irq = irq;
	b->ctx = ctx;
	/* Config space: capacity in 512-byte units, seg_max, blk_size (virtio 1.2 §5.2.4). */
	cap512 = disk->sectors * (BLOCK / 512);
	put_le32(b->cfg + 0x00, (uint32_t)cap512);
	put_le32(b->cfg + 0x04, (uint32_t)(cap512 >> 32));
	put_le32(b->cfg + 0x0c, SEG_MAX);
	put_le32(b->cfg + 0x14, BLOCK);
	return b;
}

void
virtio_blk_free(struct virtio_blk *b)
{
	if (b == NULL)
		return;
	explicit_bzero(b->bounce, sizeof(b->bounce)); /* plaintext of the corporate disk */
	free(b);
}

void
virtio_blk_counts(const struct virtio_blk *b, uint64_t *done, uint64_t *failed)
{
	*done = b->done;
	*failed = b->failed;
}

static void
set_irq(struct virtio_blk *b, uint32_t isr)
{
	int was = b->isr != 0;

	b->isr = isr;
	if ((b->isr != 0) != was)
		b->irq(b->ctx, b->isr != 0);
}

static void
reset(struct virtio_blk *b)
{
	b->status = b->dev_sel = b->drv_sel = 0;
	b->drv_features = 0;
	b->qnum = b->qready = 0;
	b->desc = b->avail = b->used = 0;
	b->last_avail = b->used_idx = 0;
	set_irq(b, 0);
}

/* Copies len bytes between buf and the segments from (*si, *off) on, advancing them. */
static int
seg_copy(struct virtio_blk *b, unsigned n, unsigned *si, uint32_t *off, uint8_t *buf, size_t len,
	 int to_guest)
{
	while (len > 0) {
		if (*si >= n)
			return -EINVAL;
		struct seg *s = &b->segs[*si];
		size_t k = s->len - *off < len ? s->len - *off : len;
		uint8_t *g = b->mem(b->ctx, s->gpa + *off, k);

		if (g == NULL)
			return -EFAULT;
		if (to_guest)
			memcpy(g, buf, k);
		else
			memcpy(buf, g, k);
		buf += k, len -= k, *off += (uint32_t)k;
		if (*off == s->len)
			(*si)++, *off = 0;
	}
	return 0;
}

/* Reads or writes the data segments 1..n-2 at 512-byte sector; the status to report. */
static uint8_t
rw(struct virtio_blk *b, unsigned n, uint64_t sector, int is_read, uint32_t *written)
{
	uint64_t total = 0, blk;
	unsigned si = 1;
	uint32_t off = 0;

	for (unsigned i = 1; i + 1 < n; i++) {
		if (b->segs[i].write != is_read)
			return S_IOERR;
		total += b->segs[i].len;
	}
	if (sector % (BLOCK / 512) != 0 || total % BLOCK != 0)
		return S_IOERR;
	blk = sector / (BLOCK / 512);
	if (blk > b->disk.sectors || total / BLOCK > b->disk.sectors - blk)
		return S_IOERR;
	/* Bounded by the segments' total, at most SEG_MAX times 4 GiB; in bounce-sized steps. */
	for (uint64_t done = 0; done < total;) {
		uint32_t cnt =
			(uint32_t)((total - done) / BLOCK < BOUNCE_BLOCKS ? (total - done) / BLOCK
									  : BOUNCE_BLOCKS);
		size_t bytes = (size_t)cnt * BLOCK;
		int r = is_read ? b->disk.read(b->disk.ctx, blk, cnt, b->bounce)
				: seg_copy(b, n - 1, &si, &off, b->bounce, bytes, 0);

		if (r == 0)
			r = is_read ? seg_copy(b, n - 1, &si, &off, b->bounce, bytes, 1)
				    : b->disk.write(b->disk.ctx, blk, cnt, b->bounce);
		if (r != 0)
			return S_IOERR;
		blk += cnt, done += bytes;
	}
	*written = is_read ? (uint32_t)total : 0;
	return S_OK;
}

/* Collects the chain from head into b->segs; the number of segments, or 0 if malformed. */
static unsigned
chain(struct virtio_blk *b, const uint8_t *desc, uint16_t head)
{
	unsigned n = 0;
	uint16_t i = head;

	for (;;) {
		const uint8_t *d;

		if (i >= b->qnum || n >= SEG_MAX + 2)
			return 0;
		d = desc + 16 * (size_t)i;
		b->segs[n].gpa = le32(d) | (uint64_t)le32(d + 4) << 32;
		b->segs[n].len = le32(d + 8);
		b->segs[n].write = (le16(d + 12) & DESC_F_WRITE) != 0;
		n++;
		if (!(le16(d + 12) & DESC_F_NEXT))
			return n;
		i = le16(d + 14);
	}
}

/* Serves one request; returns the bytes written into the guest's buffers. */
static uint32_t
serve(struct virtio_blk *b, const uint8_t *desc, uint16_t head)
{
	unsigned n = chain(b, desc, head);
	uint32_t written = 0;
	uint8_t hdr[16], st = S_IOERR, *status;
	unsigned si = 0;
	uint32_t off = 0;

	if (n < 2 || b->segs[0].write || b->segs[0].len != 16 || !b->segs[n - 1].write ||
	    b->segs[n - 1].len != 1 || seg_copy(b, 1, &si, &off, hdr, 16, 0) != 0) {
		b->failed++;
		return 0;
	}
	switch (le32(hdr)) {
	case T_IN:
	case T_OUT:
		st = rw(b, n, le32(hdr + 8) | (uint64_t)le32(hdr + 12) << 32, le32(hdr) == T_IN,
			&written);
		break;
	case T_FLUSH:
		st = b->disk.flush(b->disk.ctx) == 0 ? S_OK : S_IOERR;
		break;
	default:
		st = S_UNSUPP;
		break;
	}
	status = b->mem(b->ctx, b->segs[n - 1].gpa, 1);
	if (status == NULL) {
		b->failed++;
		return written;
	}
	*status = st;
	b->done += st == S_OK;
	b->failed += st != S_OK;
	return written + 1;
}

/* Serves every request the driver made available, then interrupts once. */
static void
notify(struct virtio_blk *b)
{
	uint8_t *desc = b->mem(b->ctx, b->desc, 16 * (size_t)b->qnum);
	uint8_t *avail = b->mem(b->ctx, b->avail, 4 + 2 * (size_t)b->qnum);
	uint8_t *used = b->mem(b->ctx, b->used, 4 + 8 * (size_t)b->qnum);
	uint16_t idx;
	unsigned served = 0;

	if (!b->qready || b->qnum == 0 || desc == NULL || avail == NULL || used == NULL) {
		b->status |= STATUS_NEEDS_RST;
		return;
	}
	idx = le16(avail + 2);
	atomic_thread_fence(memory_order_acquire);
	/* At most one ring's worth per notification: a driver cannot keep us here. */
	while (b->last_avail != idx && served < b->qnum) {
		uint16_t head = le16(avail + 4 + 2 * (size_t)(b->last_avail % b->qnum));
		uint32_t len = serve(b, desc, head);
		uint8_t *e = used + 4 + 8 * (size_t)(b->used_idx % b->qnum);

		put_le32(e, head);
		put_le32(e + 4, len);
		b->used_idx++, b->last_avail++, served++;
	}
	atomic_thread_fence(memory_order_release);
	used[2] = (uint8_t)b->used_idx;
	used[3] = (uint8_t)(b->used_idx >> 8);
	if (served > 0)
		set_irq(b, b->isr | 1u);
}

static uint32_t
reg_read(struct virtio_blk *b, unsigned off)
{
	switch (off) {
	case 0x000:
		return VIRTIO_MAGIC;
	case 0x004:
		return 2;
	case 0x008:
		return VIRTIO_ID_BLOCK;
	case 0x00c:
		return VIRTIO_VENDOR;
	case 0x010:
		return b->dev_sel < 2 ? (uint32_t)(DEV_FEATURES >> (32 * b->dev_sel)) : 0;
	case 0x034:
		return VIRTIO_QUEUE_MAX;
	case 0x044:
		return b->qready;
	case 0x060:
		return b->isr;
	case 0x070:
		return b->status;
	default:
		return 0; /* ConfigGeneration (0x0fc) among them: the config never changes */
	}
}

/* The 64-bit queue addresses are written as two halves. */
static void
set_half(uint64_t *a, int high, uint32_t v)
{
	*a = high ? (*a & 0xffffffffull) | (uint64_t)v << 32 : (*a & ~0xffffffffull) | v;
}

static void
reg_write(struct virtio_blk *b, unsigned off, uint32_t v)
{
	switch (off) {
	case 0x014:
		b->dev_sel = v;
		break;
	case 0x020:
		if (b->drv_sel < 2)
			set_half(&b->drv_features, (int)b->drv_sel,
				 v & (uint32_t)(DEV_FEATURES >> (32 * b->drv_sel)));
		break;
	case 0x024:
		b->drv_sel = v;
		break;
	case 0x038:
		b->qnum = v <= VIRTIO_QUEUE_MAX && (v & (v - 1)) == 0 ? v : 0;
		break;
	case 0x044:
		b->qready = v & 1;
		break;
	case 0x050:
		if (v == 0)
			notify(b);
		break;
	case 0x064:
		set_irq(b, b->isr & ~v);
		break;
	case 0x070:
		if (v == 0)
			reset(b);
		else
			b->status = v;
		break;
	case 0x080:
	case 0x084:
		set_half(&b->desc, off == 0x084, v);
		break;
	case 0x090:
	case 0x094:
		set_half(&b->avail, off == 0x094, v);
		break;
	case 0x0a0:
	case 0x0a4:
		set_half(&b->used, off == 0x0a4, v);
		break;
	default:
		break; /* QueueSel: there is one queue, 0; writes to read-only registers vanish */
	}
}

int
virtio_blk_io(void *ctx, struct bus_io *io)
{
	struct virtio_blk *b = ctx;
	unsigned off = (unsigned)(io->port - VIRTIO_BUS_BASE);

	if (off >= 0x100) {
		/* Device config: read-only bytes, any width the driver likes. */
		off -= 0x100;
		io->value = 0;
		for (unsigned i = 0; !io->is_write && i < io->size && off + i < CFG_LEN; i++)
			io->value |= (uint32_t)b->cfg[off + i] << (8 * i);
		return 0;
	}
	if (io->size != 4 || off % 4 != 0) {
		io->value = 0;
		return io->is_write ? -EINVAL : 0;
	}
	if (io->is_write)
		reg_write(b, off, io->value);
	else
		io->value = reg_read(b, off);
	return 0;
}

/*
 * Unit tests for the virtio-mmio block device (hypercall-bridge/hv/virtio_blk.c) that a Linux
 * corporate half reaches its disk through: the identification registers, feature selection,
 * a queue set up in a fake guest RAM, a write then a read of 4096-byte blocks spread over
 * segments that do not follow block boundaries, a flush, and the requests the device must
 * refuse (unaligned, past the end, malformed chains, unknown types), with the interrupt line
 * raised on completion and lowered by the acknowledgement. No KVM, no volume: a RAM disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "hypercall-bridge/hv/virtio_blk.h"

#define GPA_BASE  0x40000000ull
#define RAM_LEN   (256 * 1024)
#define QN        8u
#define DESC_GPA  (GPA_BASE + 0x1000)
#define AVAIL_GPA (GPA_BASE + 0x2000)
#define USED_GPA  (GPA_BASE + 0x3000)
#define HDR_GPA   (GPA_BASE + 0x4000)
#define DATA_GPA  (GPA_BASE + 0x10000)
#define STAT_GPA  (GPA_BASE + 0x5000)
#define DISK_SECS 8u

static uint8_t ram[RAM_LEN];
static uint8_t disk[DISK_SECS * 4096];
static int irq_level, flushes;
static uint16_t avail_idx;

static uint8_t *
mem(void *ctx, uint64_t gpa, size_t len)
{
	(void)ctx;
	if (gpa < GPA_BASE || gpa - GPA_BASE > RAM_LEN || len > RAM_LEN - (gpa - GPA_BASE))
		return NULL;
	return ram + (gpa - GPA_BASE);
}

static void
irq(void *ctx, int level)
{
	(void)ctx;
	irq_level = level;
}

static int
d_read(void *ctx, uint64_t sector, uint32_t count, void *buf)
{
	(void)ctx;
	memcpy(buf, disk + sector * 4096, (size_t)count * 4096);
	return 0;
}

static int
d_write(void *ctx, uint64_t sector, uint32_t count, const void *buf)
{
	(void)ctx;
	memcpy(disk + sector * 4096, buf, (size_t)count * 4096);
	return 0;
}

static int
d_flush(void *ctx)
{
	(void)ctx;
	flushes++;
	return 0;
}

static uint32_t
rd(struct virtio_blk *b, unsigned off, uint8_t size)
{
	struct bus_io io = {.port = (uint16_t)(VIRTIO_BUS_BASE + off), .size = size};

	virtio_blk_io(b, &io);
	return io.value;
}

static void
wr(struct virtio_blk *b, unsigned off, uint32_t v)
{
	struct bus_io io = {
		.port = (uint16_t)(VIRTIO_BUS_BASE + off), .size = 4, .is_write = 1, .value = v};

	virtio_blk_io(b, &io);
}

static struct virtio_blk *
device(void)
{
	struct vmm_disk d = {
		.sectors = DISK_SECS, .read = d_read, .write = d_write, .flush = d_flush};
	struct virtio_blk *b;

	memset(ram, 0, sizeof(ram));
	memset(disk, 0, sizeof(disk));
	irq_level = flushes = 0;
	avail_idx = 0;
	b = virtio_blk_new(&d, mem, irq, NULL);
	assert_non_null(b);
	/* What Linux's virtio_mmio does: status, features, one queue of QN entries. */
	wr(b, 0x070, 1 | 2);
	wr(b, 0x024, 1);
	wr(b, 0x020, 1); /* VERSION_1 */
	wr(b, 0x030, 0);
	wr(b, 0x038, QN);
	wr(b, 0x080, (uint32_t)DESC_GPA);
	wr(b, 0x084, 0);
	wr(b, 0x090, (uint32_t)AVAIL_GPA);
	wr(b, 0x094, 0);
	wr(b, 0x0a0, (uint32_t)USED_GPA);
	wr(b, 0x0a4, 0);
	wr(b, 0x044, 1);
	wr(b, 0x070, 1 | 2 | 8 | 4);
	return b;
}

static void
desc(unsigned i, uint64_t gpa, uint32_t len, uint16_t flags, uint16_t next)
{
	uint8_t *d = ram + 0x1000 + 16 * i;

	memcpy(d, &gpa, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &next, 2);
}

/* Makes the chain at head available, notifies, and returns the status byte written. */
static uint8_t
submit(struct virtio_blk *b, uint32_t type, uint64_t sector, uint16_t head)
{
	memcpy(ram + 0x4000, &type, 4);
	memset(ram + 0x4004, 0, 4);
	memcpy(ram + 0x4008, &sector, 8);
	ram[0x5000] = 0xff;
	memcpy(ram + 0x2000 + 4 + 2 * (avail_idx % QN), &head, 2);
	avail_idx++;
	memcpy(ram + 0x2002, &avail_idx, 2);
	wr(b, 0x050, 0);
	return ram[0x5000];
}

static uint32_t
used_len(uint16_t idx)
{
	uint32_t len;

	memcpy(&len, ram + 0x3000 + 4 + 8 * (idx % QN) + 4, 4);
	return len;
}

static void
test_virtio_blk_registers(void **state)
{
	struct virtio_blk *b = device();

	(void)state;
	assert_int_equal(rd(b, 0x000, 4), 0x74726976); /* "virt" */
	assert_int_equal(rd(b, 0x004, 4), 2);
	assert_int_equal(rd(b, 0x008, 4), 2); /* block */
	wr(b, 0x014, 0);
	assert_int_equal(rd(b, 0x010, 4), (1u << 2) | (1u << 6) | (1u << 9));
	wr(b, 0x014, 1);
	assert_int_equal(rd(b, 0x010, 4), 1); /* VERSION_1 */
	assert_int_equal(rd(b, 0x034, 4), VIRTIO_QUEUE_MAX);
	assert_int_equal(rd(b, 0x100, 4), DISK_SECS * 8); /* capacity, 512-byte units */
	assert_int_equal(rd(b, 0x104, 4), 0);
	assert_int_equal(rd(b, 0x114, 4), 4096); /* blk_size */
	assert_int_equal(rd(b, 0x114, 2), 4096);
	assert_int_equal(rd(b, 0x044, 4), 1);
	assert_int_equal(rd(b, 0x001, 1), 0); /* a narrow register access reads 0 */
	wr(b, 0x070, 0);                      /* reset */
	assert_int_equal(rd(b, 0x044, 4), 0);
	virtio_blk_free(b);
}

static void
test_virtio_blk_write_read_flush(void **state)
{
	struct virtio_blk *b = device();
	uint64_t done, failed;

	(void)state;
	for (unsigned i = 0; i < 8192; i++)
		ram[0x10000 + i] = (uint8_t)(i * 7 + 1);
	/* Two blocks at sector 8 (512-byte units: block 1) in segments of 1000 and 7192 bytes. */
	desc(0, HDR_GPA, 16, 1, 1);
	desc(1, DATA_GPA, 1000, 1, 2);
	desc(2, DATA_GPA + 1000, 7192, 1, 3);
	desc(3, STAT_GPA, 1, 2 | 0, 0);
	assert_int_equal(submit(b, 1, 8, 0), 0);
	assert_int_equal(used_len(0), 1);
	assert_int_equal(irq_level, 1);
	assert_int_equal(rd(b, 0x060, 4), 1);
	wr(b, 0x064, 1);
	assert_int_equal(irq_level, 0);
	assert_memory_equal(disk + 4096, ram + 0x10000, 8192);
	/* Read them back elsewhere, in one segment. */
	desc(1, DATA_GPA + 0x8000, 8192, 2 | 1, 3);
	assert_int_equal(submit(b, 0, 8, 0), 0);
	assert_int_equal(used_len(1), 8192 + 1);
	assert_memory_equal(ram + 0x18000, ram + 0x10000, 8192);
	/* A flush: header and status only. */
	desc(0, HDR_GPA, 16, 1, 3);
	assert_int_equal(submit(b, 4, 0, 0), 0);
	assert_int_equal(flushes, 1);
	virtio_blk_counts(b, &done, &failed);
	assert_int_equal(done, 3);
	assert_int_equal(failed, 0);
	virtio_blk_free(b);
}

static void
test_virtio_blk_refusals(void **state)
{
	struct virtio_blk *b = device();
	uint64_t done, failed;

	(void)state;
	desc(0, HDR_GPA, 16, 1, 1);
	desc(1, DATA_GPA, 4096, 1, 2);
	desc(2, STAT_GPA, 1, 2, 0);
	assert_int_equal(submit(b, 1, 1, 0), 1);             /* not on a 4096-byte block */
	assert_int_equal(submit(b, 1, DISK_SECS * 8, 0), 1); /* past the end */
	assert_int_equal(submit(b, 0, 0, 0), 1);             /* a read into a read-only buffer */
	assert_int_equal(submit(b, 8, 0, 0), 2);             /* GET_ID: unsupported */
	desc(1, DATA_GPA, 4000, 1, 2);
	assert_int_equal(submit(b, 1, 0, 0), 1); /* not a whole block */
	desc(1, GPA_BASE + RAM_LEN - 100, 4096, 1, 2);
	assert_int_equal(submit(b, 1, 0, 0), 1);    /* buffer outside RAM */
	desc(2, STAT_GPA, 1, 2 | 1, 0);             /* a loop: 0 -> 1 -> 2 -> 0 */
	assert_int_equal(submit(b, 1, 0, 0), 0xff); /* malformed: no status written */
	assert_int_equal(used_len(6), 0);
	virtio_blk_counts(b, &done, &failed);
	assert_int_equal(done, 0);
	assert_int_equal(failed, 7);
	/* A ring outside RAM: the device asks for a reset and serves nothing. */
	wr(b, 0x080, 0xfffff000u);
	wr(b, 0x050, 0);
	assert_true(rd(b, 0x070, 4) & 0x40);
	virtio_blk_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_virtio_blk_registers),
		cmocka_unit_test(test_virtio_blk_write_read_flush),
		cmocka_unit_test(test_virtio_blk_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

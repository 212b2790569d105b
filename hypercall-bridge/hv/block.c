/*
 * The corporate VM's disk: the guest-kernel calls SHARED_PAGE, BLOCK_READ, BLOCK_WRITE and
 * HEARTBEAT. The guest registers one 4 KiB page of its RAM; BLOCK_READ decrypts one volume
 * sector into that page and BLOCK_WRITE encrypts the page into one sector, durably (synced)
 * before the call returns, so a record the guest was told is saved survives a crash of
 * cleave-hv. These run on the vCPU thread; vol_lock keeps them apart from orders that change
 * the volume's keys on the main thread.
 */
#include <errno.h>

#include "hv.h"
#include "log.h"
#include "vmm.h"
#include "volume.h"

static int64_t
h_shared_page(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	uint64_t gpa = c->args[0];

	if (h->vm == NULL)
		return CLV_E_INVALID_STATE;
	if (gpa == 0 || vmm_guest_page(h->vm, gpa) == NULL)
		return CLV_E_FAULT;
	h->shared_gpa = gpa;
	return CLV_OK;
}

/* Checks a block call's arguments; returns the shared page or NULL with *err set. */
static uint8_t *
block_args(struct hv *h, const struct dispatch_call *c, int64_t *err)
{
	uint8_t *page;

	*err = CLV_E_INVALID_PARAMETER;
	if (c->args[1] != 1) /* the shared page holds exactly one sector */
		return NULL;
	*err = CLV_E_FAULT;
	if (h->vm == NULL || h->shared_gpa == 0)
		return NULL;
	page = vmm_guest_page(h->vm, h->shared_gpa);
	if (page == NULL)
		return NULL;
	*err = CLV_OK;
	return page;
}

static int64_t
io_status(int r)
{
	switch (r) {
	case 0:
		return CLV_OK;
	case -ERANGE:
	case -EINVAL:
		return CLV_E_INVALID_PARAMETER;
	case -EACCES:
		return CLV_E_INVALID_STATE; /* locked, wiping or erased */
	default:
		return CLV_E_IO;
	}
}

static int64_t
h_block_read(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	int64_t err;
	uint8_t *page = block_args(h, c, &err);
	int r;

	if (page == NULL)
		return err;
	pthread_mutex_lock(&h->vol_lock);
	r = volume_read(h->vol, c->args[0], 1, page); /* decrypted straight into guest RAM */
	pthread_mutex_unlock(&h->vol_lock);
	return io_status(r);
}

static int64_t
h_block_write(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	int64_t err;
	uint8_t *page = block_args(h, c, &err);
	int r;

	if (page == NULL)
		return err;
	/* One read of the page, by the cipher: the vCPU is in this exit, so it cannot change. */
	pthread_mutex_lock(&h->vol_lock);
	r = volume_write(h->vol, c->args[0], 1, page);
	if (r == 0)
		r = volume_sync(h->vol);
	pthread_mutex_unlock(&h->vol_lock);
	if (r != 0 && r != -EACCES && r != -ERANGE)
		log_err("cleave-hv: the corporate disk write of sector %llu failed (%d)",
			(unsigned long long)c->args[0], r);
	return io_status(r);
}

static int64_t
h_heartbeat(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;

	(void)c;
	h->heartbeat_ms = h->clock();
	return CLV_OK;
}

void
hv_block_register(struct hv *h)
{
	dispatch_register(&h->d, CLV_FN_SHARED_PAGE, h_shared_page);
	dispatch_register(&h->d, CLV_FN_BLOCK_READ, h_block_read);
	dispatch_register(&h->d, CLV_FN_BLOCK_WRITE, h_block_write);
	dispatch_register(&h->d, CLV_FN_HEARTBEAT, h_heartbeat);
}

/*
 * A Linux guest's virtio disk (virtio_blk.c) over the same volume: the sectors go through the
 * XTS code as the block calls' do, under vol_lock; a flush makes them durable (the write path
 * leaves that to the guest's flushes, as a disk with a volatile cache does).
 */
static int
disk_read(void *ctx, uint64_t sector, uint32_t count, void *buf)
{
	struct hv *h = ctx;
	int r;

	pthread_mutex_lock(&h->vol_lock);
	r = volume_read(h->vol, sector, count, buf);
	pthread_mutex_unlock(&h->vol_lock);
	return r;
}

static int
disk_write(void *ctx, uint64_t sector, uint32_t count, const void *buf)
{
	struct hv *h = ctx;
	int r;

	pthread_mutex_lock(&h->vol_lock);
	r = volume_write(h->vol, sector, count, buf);
	pthread_mutex_unlock(&h->vol_lock);
	return r;
}

static int
disk_flush(void *ctx)
{
	struct hv *h = ctx;
	int r;

	pthread_mutex_lock(&h->vol_lock);
	r = volume_sync(h->vol);
	pthread_mutex_unlock(&h->vol_lock);
	if (r != 0)
		log_err("cleave-hv: the corporate disk flush failed (%d)", r);
	return r;
}

void
hv_disk_backend(struct hv *h, struct vmm_disk *d)
{
	struct volume_info vi = {0};

	if (h->vol != NULL)
		volume_info(h->vol, &vi);
	d->sectors = vi.sectors;
	d->read = disk_read;
	d->write = disk_write;
	d->flush = disk_flush;
	d->ctx = h;
}

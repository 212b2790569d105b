/*
 * VM setup and teardown for cleave-hv (see vmm.h): KVM handles, guest RAM, the guest image and
 * the order of setup; the architecture's boot state, devices and doorbell are behind arch.h
 * (arch/<arch>/). The run loop lives in vcpu.c. Memory slot 0 is created
 * right after the VM and before anything else (an irqchip first is 5x slower on this host).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "vmm_priv.h"

int64_t
vmm_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int
vmm_kvm_available(void)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

int
vmm_kvm_ioctl(int fd, unsigned long req, void *arg, const char *what)
{
	int r = ioctl(fd, req, arg);

	if (r < 0) {
		r = -errno;
		log_errno(errno, "vmm: %s", what);
	}
	return r;
}

/* Reads the flat image at path into guest RAM at VMM_GUEST_LOAD. */
static int
vmm_load_image(struct vmm *vm, const char *path)
{
	struct stat st;
	size_t got = 0;
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		log_errno(errno, "vmm: open guest image %s", path);
		return rc;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_warn("vmm: guest image %s is not a regular file", path);
		rc = -EINVAL;
	} else if (st.st_size == 0 || (uint64_t)st.st_size > VMM_GUEST_MAX) {
		log_warn("vmm: guest image %s has %lld bytes (1..%u allowed)", path,
			 (long long)st.st_size, VMM_GUEST_MAX);
		rc = -EFBIG;
	}
	/* Bounded: at most VMM_GUEST_MAX bytes, and a short read ends the loop. */
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t n = read(fd, vm->ram + VMM_GUEST_LOAD + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -errno : -EIO;
			log_warn("vmm: short read of guest image %s", path);
			break;
		}
		got += (size_t)n;
	}
	close(fd);
	return rc;
}

/* /dev/kvm, API version, VM, and memory slot 0 (before any other VM state). */
static int
vmm_open_kvm(struct vmm *vm)
{
	struct kvm_userspace_memory_region slot;
	int rc;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		rc = -errno;
		log_errno(errno, "vmm: open /dev/kvm");
		return rc;
	}
	rc = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (rc != KVM_API_VERSION) {
		log_warn("vmm: KVM API version %d, want %d", rc, KVM_API_VERSION);
		return -ENOTSUP;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, arch_vm_type(vm->kvm_fd));
	if (vm->vm_fd < 0) {
		rc = -errno;
		log_errno(errno, "vmm: KVM_CREATE_VM");
		return rc;
	}
	vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->ram == MAP_FAILED) {
		vm->ram = NULL;
		rc = -errno;
		log_errno(errno, "vmm: mmap %zu bytes of guest RAM", vm->ram_size);
		return rc;
	}
	/* Guest memory must never end up in a core dump of cleave-hv, nor in swap. */
	if (madvise(vm->ram, vm->ram_size, MADV_DONTDUMP) < 0)
		log_errno(errno, "vmm: madvise MADV_DONTDUMP");
	/* Locked as the guest touches it, so creating the VM stays fast. */
	if (mlock2(vm->ram, vm->ram_size, MLOCK_ONFAULT) < 0)
		log_errno(errno, "vmm: mlock2 of guest RAM (it may be swapped)");
	memset(&slot, 0, sizeof(slot));
	slot.slot = 0;
	slot.guest_phys_addr = arch_ram_base();
	slot.memory_size = vm->ram_size;
	slot.userspace_addr = (uint64_t)(uintptr_t)vm->ram;
	return vmm_kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot,
			     "KVM_SET_USER_MEMORY_REGION");
}

static int
vmm_create_vcpu(struct vmm *vm)
{
	int sz, rc;

	vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu_fd < 0) {
		rc = -errno;
		log_errno(errno, "vmm: KVM_CREATE_VCPU");
		return rc;
	}
	sz = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (sz < (int)sizeof(struct kvm_run)) {
		log_warn("vmm: KVM_GET_VCPU_MMAP_SIZE returned %d", sz);
		return -EIO;
	}
	vm->run = mmap(NULL, (size_t)sz, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		rc = -errno;
		log_errno(errno, "vmm: mmap kvm_run");
		return rc;
	}
	vm->run_size = (size_t)sz;
	return 0;
}

/* The lock and both condition variables; the latter time out on CLOCK_MONOTONIC. */
static int
vmm_sync_init(struct vmm *vm)
{
	pthread_condattr_t ca;
	int rc = -ENOMEM;

	if (pthread_condattr_init(&ca) != 0)
		return -ENOMEM;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_mutex_init(&vm->lock, NULL) != 0)
		goto out;
	if (pthread_cond_init(&vm->wake, &ca) != 0) {
		pthread_mutex_destroy(&vm->lock);
		goto out;
	}
	if (pthread_cond_init(&vm->done, &ca) != 0) {
		pthread_cond_destroy(&vm->wake);
		pthread_mutex_destroy(&vm->lock);
		goto out;
	}
	rc = 0;
out:
	pthread_condattr_destroy(&ca);
	return rc;
}

int
vmm_new(const struct vmm_config *cfg, struct vmm **out)
{
	struct vmm *vm;
	size_t ram = cfg->ram_size != 0 ? cfg->ram_size : VMM_RAM_DEFAULT;
	int64_t t0 = vmm_now_ns();
	int rc;

	*out = NULL;
	if (cfg->guest_path == NULL || ram < VMM_RAM_MIN || ram > VMM_RAM_MAX ||
	    ram % (2u << 20) != 0)
		return -EINVAL;
	rc = vcpu_kick_init();
	if (rc < 0)
		return rc;
	vm = calloc(1, sizeof(*vm));
	if (vm == NULL)
		return -ENOMEM;
	vm->kvm_fd = vm->vm_fd = vm->vcpu_fd = -1;
	vm->ram_size = ram;
	vm->stats.created_ns = t0;
	vm->dispatch = cfg->dispatch != NULL ? cfg->dispatch : vmm_dispatch_default;
	vm->dispatch_ctx = cfg->dispatch_ctx;
	rc = vmm_sync_init(vm);
	if (rc < 0) {
		free(vm);
		return rc;
	}
	vm->linux_guest = cfg->linux_guest != 0;
	vm->disk = cfg->disk;
	rc = serial_init(&vm->serial, cfg->serial, cfg->serial_ctx);
	if (rc < 0)
		goto fail_sync;
	bus_pio_init(&vm->bus);
	rc = vm->linux_guest && !arch_linux_supported() ? -EOPNOTSUPP : 0;
	if (rc == 0)
		rc = arch_devices_register(vm);
	if (rc == 0)
		rc = vmm_open_kvm(vm);
	if (rc == 0)
		rc = vm->linux_guest ? arch_linux_load(vm, cfg)
				     : vmm_load_image(vm, cfg->guest_path);
	if (rc == 0)
		rc = arch_vm_setup(vm);
	if (rc == 0)
		rc = vmm_create_vcpu(vm);
	if (rc == 0)
		rc = arch_vcpu_setup(vm);
	if (rc < 0)
		goto fail_vm;
	*out = vm;
	return 0;

fail_vm:
	vmm_free(vm);
	return rc;
fail_sync:
	pthread_cond_destroy(&vm->done);
	pthread_cond_destroy(&vm->wake);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
	return rc;
}

uint8_t *
vmm_guest_range(struct vmm *vm, uint64_t gpa, size_t len)
{
	uint64_t base = arch_ram_base();

	if (gpa < base || gpa - base > vm->ram_size || len > vm->ram_size - (gpa - base))
		return NULL;
	return vm->ram + (gpa - base);
}

uint8_t *
vmm_guest_page(struct vmm *vm, uint64_t gpa)
{
	uint64_t base = arch_ram_base();

	if (vm == NULL || gpa % 4096 != 0 || gpa < base || gpa - base >= vm->ram_size ||
	    vm->ram_size - (gpa - base) < 4096)
		return NULL;
	return vm->ram + (gpa - base);
}

/* Zeroes every resident page of guest RAM; untouched pages hold nothing and stay untouched. */
static void
vmm_wipe_ram(struct vmm *vm)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), npages = vm->ram_size / page;
	unsigned char *vec = malloc(npages);

	if (vec == NULL || mincore(vm->ram, vm->ram_size, vec) < 0) {
		explicit_bzero(vm->ram, vm->ram_size); /* slower, same result */
		free(vec);
		return;
	}
	for (size_t i = 0; i < npages; i++)
		if (vec[i] & 1)
			explicit_bzero(vm->ram + i * page, page);
	free(vec);
}

void
vmm_free(struct vmm *vm)
{
	if (vm == NULL)
		return;
	if (vm->thread_live) {
		vmm_stop(vm);
		if (vmm_join(vm, 5000) < 0) {
			/* The thread still uses vm: leaking it is the only safe choice. */
			log_err("vmm: vCPU thread did not stop; leaking the VM");
			return;
		}
	}
	if (vm->run != NULL)
		munmap(vm->run, vm->run_size);
	if (vm->vcpu_fd >= 0)
		close(vm->vcpu_fd);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->ram != NULL) {
		vmm_wipe_ram(vm);
		munmap(vm->ram, vm->ram_size);
	}
	virtio_blk_free(vm->blk);
	serial_fini(&vm->serial);
	pthread_cond_destroy(&vm->done);
	pthread_cond_destroy(&vm->wake);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}

size_t
vmm_serial_feed(struct vmm *vm, const uint8_t *buf, size_t len)
{
	size_t n = serial_feed(&vm->serial, buf, len);

	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->wake);
	pthread_mutex_unlock(&vm->lock);
	return n;
}

void
vmm_get_stats(struct vmm *vm, struct vmm_stats *out)
{
	pthread_mutex_lock(&vm->lock);
	*out = vm->stats;
	pthread_mutex_unlock(&vm->lock);
}

int
vmm_doorbell_io(void *ctx, struct bus_io *io)
{
	struct vmm *vm = ctx;
	struct hv_call c = {.via = io->via < CALL_VIA_COUNT ? (enum call_via)io->via
							    : CALL_VIA_PORT};

	if (!io->is_write || io->size != 4) {
		/* Reads and narrow writes are not calls: reads see all ones, writes vanish. */
		io->value = 0xffffffffu;
		return io->is_write ? -EINVAL : 0;
	}
	call_map_in(&io->regs, io->value, &c);
	c.status = vm->dispatch(vm->dispatch_ctx, c.fid, c.cpl, c.args, c.results);
	call_map_out(&c, &io->regs);
	io->regs_dirty = 1;
	pthread_mutex_lock(&vm->lock);
	vm->stats.doorbells++;
	vm->stats.calls_by[c.via]++;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int64_t
vmm_dispatch_default(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4], uint64_t results[3])
{
	(void)ctx;
	(void)cpl;
	(void)results;
	switch (fid) {
	case CLV_FN_VERSION:
		return CLV_ABI_VERSION;
	case CLV_FN_FEATURES:
		return (args[0] == CLV_FN_VERSION || args[0] == CLV_FN_FEATURES)
			       ? CLV_OK
			       : CLV_E_NOT_SUPPORTED;
	default:
		return CLV_E_NOT_SUPPORTED;
	}
}

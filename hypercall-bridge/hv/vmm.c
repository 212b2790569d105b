/*
 * VM setup and teardown for cleave-hv (see vmm.h): KVM handles, guest RAM, the guest image,
 * the boot page tables and GDT, the vCPU's long-mode registers, and the device registrations.
 * The run loop lives in vcpu.c and the doorbell in vmm_doorbell.c. Memory slot 0 is created
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

/* Guest physical layout of the boot structures (hypercall-bridge/VMM.md). */
#define GPA_GDT       0x1000u
#define GPA_PML4      0x2000u
#define GPA_PDPT      0x3000u
#define GPA_PD        0x4000u
#define GPA_TSS       0x5000u
#define TSS_RSP0      0x1f0000u /* kernel stack for events taken at CPL 3 (unused under kvm_pvm) */
#define TSS_IOMAP     0x68u     /* I/O bitmap offset inside the TSS */
#define TSS_IOMAP_LEN 0x100u    /* bitmap bytes: ports 0..0x7ff; the rest fault at CPL 3 */
#define TSS_LIMIT     (TSS_IOMAP + TSS_IOMAP_LEN) /* includes the 0xff terminator byte */

#define PTE_P    0x1ull
#define PTE_RW   0x2ull
#define PTE_US   0x4ull
#define PTE_PS   0x80ull
#define CR0_PE   0x1ull
#define CR0_ET   0x10ull
#define CR0_PG   0x80000000ull
#define CR4_PAE  0x20ull
#define EFER_SCE 0x1ull
#define EFER_LME 0x100ull
#define EFER_LMA 0x400ull

#define SEL_CODE 0x08
#define SEL_DATA 0x10
#define SEL_TSS  0x28
_Static_assert(CLV_DOORBELL_PORT % 8 == 0, "the TSS bitmap opens 4 ports from a byte boundary");
#define GDT_ENTRIES 7 /* null, kernel code/data, user data/code (sysret order), TSS (2) */

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

/* An ioctl that logs its failure once, with context; returns its result or -errno. */
static int
kvm_ioctl(int fd, unsigned long req, void *arg, const char *what)
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

/* GDT (null, 64-bit code and data at DPL 0 and 3) and page tables identity-mapping 0..1 GiB with 2 MiB pages. */
static void
vmm_write_boot_tables(struct vmm *vm)
{
	uint64_t *gdt = (uint64_t *)(vm->ram + GPA_GDT);
	uint64_t *pml4 = (uint64_t *)(vm->ram + GPA_PML4);
	uint64_t *pdpt = (uint64_t *)(vm->ram + GPA_PDPT);
	uint64_t *pd = (uint64_t *)(vm->ram + GPA_PD);

	gdt[0] = 0;
	gdt[SEL_CODE / 8] = 0x00af9b000000ffffull; /* P, DPL 0, code exec/read accessed, L, G */
	gdt[SEL_DATA / 8] = 0x00cf93000000ffffull; /* P, DPL 0, data read/write accessed, D/B, G */
	gdt[3] = 0x00cff3000000ffffull;            /* the same data segment at DPL 3 */
	gdt[4] = 0x00affb000000ffffull;            /* the same code segment at DPL 3 */
	/*
	 * 64-bit TSS at GPA_TSS (base under 16 MiB): RSP0 for interrupts taken at CPL 3, and an
	 * I/O permission bitmap that lets CPL 3 reach the doorbell and nothing else.
	 */
	gdt[5] = 0x0000890000000000ull | TSS_LIMIT | ((uint64_t)GPA_TSS << 16);
	gdt[6] = 0;
	memcpy(vm->ram + GPA_TSS + 4, &(uint64_t){TSS_RSP0}, 8);
	memcpy(vm->ram + GPA_TSS + 0x66, &(uint16_t){TSS_IOMAP}, 2);
	memset(vm->ram + GPA_TSS + TSS_IOMAP, 0xff, TSS_IOMAP_LEN + 1);
	vm->ram[GPA_TSS + TSS_IOMAP + CLV_DOORBELL_PORT / 8] &= (uint8_t)~0x0f;
	/* User-accessible: the test guest runs its timing loop at CPL 3 in its own image. */
	pml4[0] = GPA_PDPT | PTE_P | PTE_RW | PTE_US;
	pdpt[0] = GPA_PD | PTE_P | PTE_RW | PTE_US;
	for (uint64_t i = 0; i < 512; i++)
		pd[i] = (i << 21) | PTE_P | PTE_RW | PTE_US | PTE_PS;
}

static void
seg_flat(struct kvm_segment *s, uint16_t sel, uint8_t type, int code)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = 0;
	s->s = 1;
	s->g = 1;
	s->l = code ? 1 : 0;
	s->db = code ? 0 : 1;
}

/* Puts the vCPU in 64-bit long mode at the image's first byte (reference section 4.1). */
static int
vmm_setup_long_mode(struct vmm *vm)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int rc;

	rc = kvm_ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS");
	if (rc < 0)
		return rc;
	seg_flat(&sregs.cs, SEL_CODE, 0xb, 1);
	seg_flat(&sregs.ds, SEL_DATA, 0x3, 0);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = GPA_TSS;
	sregs.tr.limit = TSS_LIMIT;
	sregs.tr.selector = SEL_TSS;
	sregs.tr.type = 0xb; /* busy 64-bit TSS */
	sregs.tr.present = 1;
	sregs.gdt.base = GPA_GDT;
	sregs.gdt.limit = GDT_ENTRIES * 8 - 1;
	sregs.cr3 = GPA_PML4;
	sregs.cr4 = CR4_PAE;
	sregs.cr0 = CR0_PE | CR0_ET | CR0_PG;
	sregs.efer = EFER_LME | EFER_LMA | EFER_SCE;
	rc = kvm_ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS");
	if (rc < 0)
		return rc;
	memset(&regs, 0, sizeof(regs));
	regs.rip = VMM_GUEST_LOAD;
	regs.rsp = VMM_STACK_TOP;
	regs.rflags = 0x2;
	return kvm_ioctl(vm->vcpu_fd, KVM_SET_REGS, &regs, "KVM_SET_REGS");
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
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
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
	slot.guest_phys_addr = 0;
	slot.memory_size = vm->ram_size;
	slot.userspace_addr = (uint64_t)(uintptr_t)vm->ram;
	return kvm_ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot,
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
	/* Saves two ioctls per hypercall (several microseconds each on this host). */
	sz = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS);
	vm->sync_regs = sz > 0 && (sz & KVM_SYNC_X86_REGS) != 0;
	return 0;
}

static int
vmm_add_devices(struct vmm *vm)
{
	struct bus_dev com1 = {
		.name = "com1",
		.base = CLV_SERIAL_PORT,
		.len = SERIAL_NPORTS,
		.io = serial_io,
		.ctx = &vm->serial,
	};
	int rc;

	bus_pio_init(&vm->bus);
	rc = bus_register_pio(&vm->bus, &com1);
	if (rc == 0)
		rc = vmm_doorbell_register(vm);
	return rc;
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
	rc = serial_init(&vm->serial, cfg->serial, cfg->serial_ctx);
	if (rc < 0)
		goto fail_sync;
	rc = vmm_add_devices(vm);
	if (rc == 0)
		rc = vmm_open_kvm(vm);
	if (rc == 0)
		rc = vmm_load_image(vm, cfg->guest_path);
	if (rc == 0) {
		vmm_write_boot_tables(vm);
		rc = vmm_create_vcpu(vm);
	}
	if (rc == 0)
		rc = vmm_setup_long_mode(vm);
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
vmm_guest_page(struct vmm *vm, uint64_t gpa)
{
	if (vm == NULL || gpa % 4096 != 0 || gpa >= vm->ram_size || vm->ram_size - gpa < 4096)
		return NULL;
	return vm->ram + gpa;
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

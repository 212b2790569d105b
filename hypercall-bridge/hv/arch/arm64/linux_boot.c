/*
 * A Linux corporate half on arm64 (issue 12 §4): the kernel's boot protocol
 * (Documentation/arch/arm64/booting.rst) in place of the freestanding image. The Image (not
 * compressed: its 64-byte header has "ARM\x64" at 0x38) goes at the start of RAM, which is
 * 2 MiB aligned, plus its text_offset; the device tree this file writes goes in the last 2 MiB
 * of RAM, the initramfs just below it. The vCPU starts at the Image's first byte at EL1h with
 * the MMU off and DAIF masked, x0 = the device tree, x1..x3 = 0. The tree describes exactly
 * what this VMM provides: RAM, one CPU brought up by PSCI over HVC (KVM's own), a GICv3 (the
 * in-kernel vGIC), the architected timer, the 16550 at ARM64_UART_BASE as "ns16550a" with
 * reg-shift 2 and its interrupt, the virtio-mmio disk when there is one, and /chosen.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "le.h"
#include "../../vmm_priv.h"
#include "dtb.h"
#include "log.h"

#define IMAGE_HDR_LEN   64u
#define IMAGE_MAGIC     0x644d5241u /* "ARM\x64", little-endian at 0x38 */
#define DTB_CAP         0x10000u    /* our tree is a few KiB */
#define TOP_RESERVED    (2u << 20)  /* the device tree's own 2 MiB block at the end of RAM */
#define DEFAULT_CMDLINE "console=ttyS0 earlycon"
#define VGIC_NR_IRQS    128u

/* Reads the regular file path (at most cap bytes) into dst; its size into *len. 0 or -errno. */
static int
load_file(const char *path, uint8_t *dst, size_t cap, size_t *len)
{
	struct stat st;
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;

	if (fd < 0) {
		log_errno(errno, "vmm: open %s", path);
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
		rc = -EINVAL;
	else if ((uint64_t)st.st_size > cap)
		rc = -EFBIG;
	/* Bounded by the file's size, itself at most cap. */
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t n = read(fd, dst + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			rc = n < 0 ? -errno : -EIO;
		else
			got += (size_t)n;
	}
	close(fd);
	if (rc != 0)
		log_warn("vmm: cannot load %s (%d; room for %zu bytes)", path, rc, cap);
	*len = got;
	return rc;
}

/* Checks the Image header at the start of RAM; the kernel's footprint (image_size) or 0. */
static uint64_t
image_check(const uint8_t *h, size_t file_len)
{
	uint64_t text_offset = get64(h + 8), image_size = get64(h + 16);

	if (file_len < IMAGE_HDR_LEN || get32(h + 56) != IMAGE_MAGIC) {
		log_warn("vmm: not an arm64 Image (no ARM\\x64 magic; a compressed vmlinuz must be "
			 "decompressed first)");
		return 0;
	}
	if (text_offset != 0 || image_size < file_len) {
		log_warn("vmm: Image with text_offset 0x%llx, image_size 0x%llx: not supported",
			 (unsigned long long)text_offset, (unsigned long long)image_size);
		return 0;
	}
	return image_size;
}

int
arch_linux_load(struct vmm *vm, const struct vmm_config *cfg)
{
	size_t top = vm->ram_size - TOP_RESERVED, klen = 0, rlen = 0, rd_off = top;
	uint64_t footprint;
	long dtb;
	int rc = load_file(cfg->guest_path, vm->ram, top, &klen);

	if (rc != 0)
		return rc;
	footprint = image_check(vm->ram, klen);
	if (footprint == 0 || footprint > top)
		return -ENOEXEC;
	if (cfg->linux_initrd != NULL) {
		/* Loaded high, then moved down to sit page-aligned right under the device tree. */
		rc = load_file(cfg->linux_initrd, vm->ram + footprint, top - footprint, &rlen);
		if (rc != 0)
			return rc;
		rd_off = (top - rlen) & ~(size_t)0xfff;
		if (rd_off < footprint)
			return -EFBIG;
		memmove(vm->ram + rd_off, vm->ram + footprint, rlen);
	}
	struct arm64_dtb spec = {
		.ram_size = vm->ram_size,
		.has_disk = vm->blk != NULL,
		.cmdline = cfg->linux_cmdline ? cfg->linux_cmdline : DEFAULT_CMDLINE,
		.initrd = ARM64_RAM_BASE + rd_off,
		.initrd_len = rlen,
	};
	dtb = arm64_dtb_write(vm->ram + top, DTB_CAP, &spec);
	if (dtb < 0) {
		log_warn("vmm: the device tree does not fit (%ld)", dtb);
		return (int)dtb;
	}
	vm->arch.linux_entry = ARM64_RAM_BASE;
	vm->arch.linux_dtb = ARM64_RAM_BASE + top;
	log_info("vmm: Linux Image %zu bytes (footprint %llu), initramfs %zu bytes at 0x%llx, "
		 "device tree %ld bytes at 0x%llx",
		 klen, (unsigned long long)footprint, rlen,
		 (unsigned long long)(ARM64_RAM_BASE + rd_off), dtb,
		 (unsigned long long)vm->arch.linux_dtb);
	return 0;
}

static int
vgic_attr(int fd, uint32_t group, uint64_t attr, void *val, const char *what)
{
	struct kvm_device_attr a = {.group = group, .attr = attr, .addr = (uint64_t)(uintptr_t)val};

	return vmm_kvm_ioctl(fd, KVM_SET_DEVICE_ATTR, &a, what);
}

/*
 * The in-kernel GICv3 at the tree's addresses, initialised once the vCPU exists. Its fd is
 * closed at once: the vGIC belongs to the VM, and interrupts go through KVM_IRQ_LINE.
 */
static int
vgic_create(struct vmm *vm)
{
	struct kvm_create_device cd = {.type = KVM_DEV_TYPE_ARM_VGIC_V3};
	uint64_t dist = ARM64_GICD_BASE, redist = ARM64_GICR_BASE;
	uint32_t nirqs = VGIC_NR_IRQS;
	int rc = vmm_kvm_ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &cd, "KVM_CREATE_DEVICE vGICv3");

	if (rc < 0)
		return rc;
	rc = vgic_attr((int)cd.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
		       "vGIC distributor address");
	if (rc == 0)
		rc = vgic_attr((int)cd.fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST,
			       &redist, "vGIC redistributor address");
	if (rc == 0)
		rc = vgic_attr((int)cd.fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nirqs, "vGIC irqs");
	if (rc == 0)
		rc = vgic_attr((int)cd.fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT,
			       NULL, "vGIC init");
	close((int)cd.fd);
	return rc;
}

int
arm64_linux_vcpu(struct vmm *vm)
{
	int rc = vgic_create(vm);

	for (unsigned i = 0; rc == 0 && i < 4; i++)
		rc = arm64_set_reg(vm->vcpu_fd,
				   arm64_core_reg(offsetof(struct kvm_regs, regs.regs) + 8 * i),
				   i == 0 ? vm->arch.linux_dtb : 0, "set x0..x3");
	if (rc == 0)
		rc = arm64_set_reg(vm->vcpu_fd, arm64_core_reg(offsetof(struct kvm_regs, regs.pc)),
				   vm->arch.linux_entry, "set PC");
	return rc;
}

int
arch_linux_supported(void)
{
	return 1;
}

int
arch_irq_line(struct vmm *vm, unsigned line, int level)
{
	struct kvm_irq_level l = {
		.irq = (KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT) | (32 + line),
		.level = (uint32_t)level,
	};

	return vmm_kvm_ioctl(vm->vm_fd, KVM_IRQ_LINE, &l, "KVM_IRQ_LINE");
}

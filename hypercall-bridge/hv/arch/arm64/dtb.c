/*
 * The device tree of a Linux corporate half on arm64 (linux_boot.c), as a pure function of what
 * the VMM provides, so it also builds on x86 for its unit test (tests/unit/test_fdt.c): RAM,
 * one CPU brought up by PSCI over HVC (KVM's own), a GICv3 (the in-kernel vGIC), the
 * architected timer (PPIs 13, 14, 11, 10), the 16550 at ARM64_UART_BASE as "ns16550a" with
 * reg-shift 2 and SPI ARM64_UART_SPI, the virtio-mmio disk at ARM64_VIRTIO_BASE with SPI
 * ARM64_VIRTIO_SPI when there is one, and /chosen (command line, initramfs, stdout-path).
 */
#include "dtb.h"

#include "fdt.h"
#include "layout.h"
#include "virtio_blk.h"

#define GIC_PHANDLE    1u
#define IRQ_SPI        0u
#define IRQ_PPI        1u
#define IRQ_LEVEL_HIGH 4u

/* /, /chosen, /memory, /cpus, /psci and /timer. */
static void
fdt_core(struct fdt *f, const struct arm64_dtb *d)
{
	static const char psci[] = "arm,psci-1.0\0arm,psci-0.2";
	uint32_t timer[12] = {IRQ_PPI, 13, IRQ_LEVEL_HIGH, IRQ_PPI, 14, IRQ_LEVEL_HIGH,
			      IRQ_PPI, 11, IRQ_LEVEL_HIGH, IRQ_PPI, 10, IRQ_LEVEL_HIGH};
	uint32_t mem[4] = {(uint32_t)(ARM64_RAM_BASE >> 32), (uint32_t)ARM64_RAM_BASE,
			   (uint32_t)(d->ram_size >> 32), (uint32_t)d->ram_size};

	fdt_prop_u32(f, "#address-cells", 2);
	fdt_prop_u32(f, "#size-cells", 2);
	fdt_prop_str(f, "compatible", "linux,dummy-virt");
	fdt_prop_str(f, "model", "cleave-hv corporate half");
	fdt_prop_u32(f, "interrupt-parent", GIC_PHANDLE);
	fdt_node(f, "chosen");
	fdt_prop_str(f, "bootargs", d->cmdline);
	fdt_prop_str(f, "stdout-path", "/uart@9000000");
	if (d->initrd_len > 0) {
		fdt_prop_u64(f, "linux,initrd-start", d->initrd);
		fdt_prop_u64(f, "linux,initrd-end", d->initrd + d->initrd_len);
	}
	fdt_end_node(f);
	fdt_node(f, "memory@40000000");
	fdt_prop_str(f, "device_type", "memory");
	fdt_prop_cells(f, "reg", mem, 4);
	fdt_end_node(f);
	fdt_node(f, "cpus");
	fdt_prop_u32(f, "#address-cells", 1);
	fdt_prop_u32(f, "#size-cells", 0);
	fdt_node(f, "cpu@0");
	fdt_prop_str(f, "device_type", "cpu");
	fdt_prop_str(f, "compatible", "arm,armv8");
	fdt_prop_u32(f, "reg", 0);
	fdt_prop_str(f, "enable-method", "psci");
	fdt_end_node(f);
	fdt_end_node(f);
	fdt_node(f, "psci");
	fdt_prop(f, "compatible", psci, sizeof(psci));
	fdt_prop_str(f, "method", "hvc");
	fdt_end_node(f);
	fdt_node(f, "timer");
	fdt_prop_str(f, "compatible", "arm,armv8-timer");
	fdt_prop_cells(f, "interrupts", timer, 12);
	fdt_prop_empty(f, "always-on");
	fdt_end_node(f);
}

/* The GICv3, the UART and the virtio disk. */
static void
fdt_devices(struct fdt *f, const struct arm64_dtb *d)
{
	uint32_t gic[8] = {0, (uint32_t)ARM64_GICD_BASE, 0, (uint32_t)ARM64_GICD_LEN,
			   0, (uint32_t)ARM64_GICR_BASE, 0, (uint32_t)ARM64_GICR_LEN};
	uint32_t uart[4] = {0, (uint32_t)ARM64_UART_BASE, 0, 0x1000};
	uint32_t uart_irq[3] = {IRQ_SPI, ARM64_UART_SPI, IRQ_LEVEL_HIGH};
	uint32_t blk[4] = {0, (uint32_t)ARM64_VIRTIO_BASE, 0, VIRTIO_MMIO_LEN};
	uint32_t blk_irq[3] = {IRQ_SPI, ARM64_VIRTIO_SPI, IRQ_LEVEL_HIGH};

	fdt_node(f, "intc@8000000");
	fdt_prop_str(f, "compatible", "arm,gic-v3");
	fdt_prop_u32(f, "#interrupt-cells", 3);
	fdt_prop_empty(f, "interrupt-controller");
	fdt_prop_u32(f, "#redistributor-regions", 1);
	fdt_prop_cells(f, "reg", gic, 8);
	fdt_prop_u32(f, "phandle", GIC_PHANDLE);
	fdt_end_node(f);
	fdt_node(f, "uart@9000000");
	fdt_prop_str(f, "compatible", "ns16550a");
	fdt_prop_cells(f, "reg", uart, 4);
	fdt_prop_u32(f, "reg-shift", 2);
	fdt_prop_u32(f, "clock-frequency", 1843200);
	fdt_prop_cells(f, "interrupts", uart_irq, 3);
	fdt_end_node(f);
	if (d->has_disk) {
		fdt_node(f, "virtio_mmio@a000000");
		fdt_prop_str(f, "compatible", "virtio,mmio");
		fdt_prop_cells(f, "reg", blk, 4);
		fdt_prop_cells(f, "interrupts", blk_irq, 3);
		fdt_prop_empty(f, "dma-coherent");
		fdt_end_node(f);
	}
}

long
arm64_dtb_write(uint8_t *buf, size_t cap, const struct arm64_dtb *d)
{
	struct fdt f;

	fdt_begin(&f, buf, cap);
	fdt_node(&f, "");
	fdt_core(&f, d);
	fdt_devices(&f, d);
	fdt_end_node(&f);
	return fdt_finish(&f);
}

/*
 * arm64's devices (arch.h): the 16550 memory-mapped at ARM64_UART_BASE (its status read is the
 * guest's idle wait) and the hypercall
 * doorbell, a 4-byte store of the function ID (w0) to ARM64_DOORBELL (ARM64.md §4). The
 * decoder maps both windows onto the bus numbers registered here, and an HVC forwarded by the
 * SMCCC filter onto the same doorbell. The shared vmm_doorbell_io maps the registers by
 * call_map.c (arguments x1..x4, status x0, results x1..x3; vcpu_regs.c reads and writes them).
 */
#include <errno.h>

#include "../../vmm_priv.h"

/*
 * The 16550, with one arm64 twist: WFI never reaches userspace (KVM blocks it in the kernel), so
 * the guest idles by reading the line status register, and a read that finds no input waits
 * here (one 200 ms slice at most, woken by input or a stop) before answering, as hlt does on
 * x86. Bounded, because a driver that polls LSR for the transmitter must not stall for long.
 */
static int
uart_io(void *ctx, struct bus_io *io)
{
	struct vmm *vm = ctx;

	/* A Linux guest polls LSR to transmit and waits for input on the interrupt (WFI). */
	if (!vm->linux_guest && !io->is_write && io->port == CLV_SERIAL_PORT + SERIAL_REG_LSR &&
	    !serial_has_input(&vm->serial))
		vmm_wait_input(vm, 1);
	return serial_io(&vm->serial, io);
}

static void
uart_irq(void *ctx, int level)
{
	arch_irq_line(ctx, ARM64_UART_SPI, level);
}

static void
virtio_irq(void *ctx, int level)
{
	arch_irq_line(ctx, ARM64_VIRTIO_SPI, level);
}

static uint8_t *
guest_mem(void *ctx, uint64_t gpa, size_t len)
{
	return vmm_guest_range(ctx, gpa, len);
}

/* A Linux guest's extra devices: the UART's interrupt and the virtio disk, when it has one. */
static int
linux_devices(struct vmm *vm)
{
	struct bus_dev blk = {
		.name = "virtio-blk",
		.base = VIRTIO_BUS_BASE,
		.len = VIRTIO_MMIO_LEN,
	};

	serial_set_irq(&vm->serial, uart_irq, vm);
	if (vm->disk.read == NULL)
		return 0;
	vm->blk = virtio_blk_new(&vm->disk, guest_mem, virtio_irq, vm);
	if (vm->blk == NULL)
		return -ENOMEM;
	blk.io = virtio_blk_io;
	blk.ctx = vm->blk;
	return bus_register_pio(&vm->bus, &blk);
}

int
arch_devices_register(struct vmm *vm)
{
	struct bus_dev uart = {
		.name = "uart",
		.base = CLV_SERIAL_PORT,
		.len = SERIAL_NPORTS,
		.io = uart_io,
		.ctx = vm,
	};
	struct bus_dev d = {
		.name = "doorbell",
		.base = CLV_DOORBELL_PORT,
		.len = 4,
		.flags = BUS_F_REGS,
		.io = vmm_doorbell_io,
		.ctx = vm,
	};
	int rc = bus_register_pio(&vm->bus, &uart);

	if (rc == 0)
		rc = bus_register_pio(&vm->bus, &d);
	return rc == 0 && vm->linux_guest ? linux_devices(vm) : rc;
}

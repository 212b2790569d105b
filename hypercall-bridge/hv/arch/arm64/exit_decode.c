/*
 * arm64's pure exit decoder (see exit_decode.h). arm64 has no ports: the 16550 and the doorbell
 * are MMIO windows outside every memslot, and this decoder maps them onto the shared bus's
 * numbers (the UART's register i at ARM64_UART_BASE + 4 i is bus number CLV_SERIAL_PORT + i,
 * a store at ARM64_DOORBELL is the doorbell at CLV_DOORBELL_PORT, the virtio-mmio window of a
 * Linux guest's disk is VIRTIO_BUS_BASE onwards), so devices and the run loop
 * stay shared. Other MMIO reads see all ones and writes vanish, as unknown ports on x86. A
 * store to the doorbell page's fault word is the guest's vector table reporting an exception:
 * the VM stops as faulted. PSCI SYSTEM_OFF (KVM_EXIT_SYSTEM_EVENT) is a clean power-off; RESET
 * and the rest stop the VM as faulted (no reboot yet). An HVC forwarded by the SMCCC filter is a
 * doorbell call like the store. WFI never exits (KVM blocks it), so there
 * is no HALT here: the guest waits by reading the UART's status, which the device holds.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include <linux/kvm.h>

#include "../../exit_decode.h"
#include "layout.h"
#include "cleave_abi.h"
#include "serial_16550.h"
#include "virtio_blk.h"

void
exit_info_copy(const struct kvm_run *run, size_t map_size, struct exit_info *out)
{
	const volatile struct kvm_run *r = run;

	(void)map_size; /* the MMIO data lies inside struct kvm_run itself */
	memset(out, 0, sizeof(*out));
	out->reason = r->exit_reason;
	switch (out->reason) {
	case KVM_EXIT_MMIO: {
		const volatile uint8_t *p = r->mmio.data;

		out->mmio_addr = r->mmio.phys_addr;
		out->mmio_len = r->mmio.len;
		out->mmio_write = r->mmio.is_write;
		out->io_data_ok = 1;
		out->io_data_off = (uint32_t)offsetof(struct kvm_run, mmio.data);
		out->io_value = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
				(uint32_t)p[3] << 24;
		break;
	}
	case KVM_EXIT_SYSTEM_EVENT:
		out->event_type = r->system_event.type;
		break;
	case KVM_EXIT_HYPERCALL:
		out->hypercall_nr = r->hypercall.nr;
		/* the flags' low half; older headers name it longmode */
		out->hypercall_flags = r->hypercall.longmode;
		break;
	case KVM_EXIT_FAIL_ENTRY:
		out->fail_reason = r->fail_entry.hardware_entry_failure_reason;
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		out->suberror = r->internal.suberror;
		break;
	default:
		break;
	}
}

static void
stop(struct exit_action *out, int err, const char *why)
{
	out->act = EXIT_ACT_STOP;
	out->err = err;
	out->why = why;
}

/* The bus number of an MMIO address, or -1 when no window holds it. */
static int
mmio_to_bus(uint64_t addr)
{
	if (addr >= ARM64_UART_BASE && addr - ARM64_UART_BASE < SERIAL_NPORTS * ARM64_UART_STRIDE &&
	    (addr - ARM64_UART_BASE) % ARM64_UART_STRIDE == 0)
		return CLV_SERIAL_PORT + (int)((addr - ARM64_UART_BASE) / ARM64_UART_STRIDE);
	if (addr == ARM64_DOORBELL)
		return CLV_DOORBELL_PORT;
	if (addr >= ARM64_VIRTIO_BASE && addr - ARM64_VIRTIO_BASE < VIRTIO_MMIO_LEN)
		return (int)(VIRTIO_BUS_BASE + (addr - ARM64_VIRTIO_BASE));
	return -1;
}

static void
decode_mmio(const struct bus_pio *bus, const struct exit_info *in, struct exit_action *out)
{
	uint32_t mask;
	int port;

	if (in->mmio_len != 1 && in->mmio_len != 2 && in->mmio_len != 4) {
		/* 8-byte accesses: no device of ours has 64-bit registers. */
		stop(out, -EPROTO, "MMIO with a size no device takes");
		return;
	}
	mask = in->mmio_len == 4 ? 0xffffffffu : (1u << (8 * in->mmio_len)) - 1;
	if (in->mmio_addr == ARM64_DOORBELL_FAULT && in->mmio_write) {
		stop(out, -EFAULT, "the guest took an exception (vector table)");
		return;
	}
	port = mmio_to_bus(in->mmio_addr);
	out->io.port = port < 0 ? 0xffff : (uint16_t)port;
	out->io.size = (uint8_t)in->mmio_len;
	out->io.is_write = in->mmio_write != 0;
	out->io.value = out->io.is_write ? in->io_value & mask : mask;
	out->io.via = CALL_VIA_MMIO;
	/* Each UART register is one byte on the bus, whatever width the guest used to reach it. */
	out->dev = port < 0 ? NULL
			    : bus_find_pio(bus, (uint16_t)port,
					   in->mmio_addr < ARM64_UART_BASE + 0x1000 &&
							   in->mmio_addr >= ARM64_UART_BASE
						   ? 1
						   : out->io.size);
	if (out->dev == NULL) {
		out->act = EXIT_ACT_PIO_UNKNOWN;
		out->why = "MMIO to no device";
		return;
	}
	out->act = EXIT_ACT_PIO;
	out->why = out->dev->name;
}

/*
 * An HVC in the ABI's range, forwarded by the SMCCC filter (arch_vcpu_setup): the same doorbell
 * call as a store of the function ID, registers read and written by the doorbell device. KVM
 * has already stepped past an HVC; an SMC it has not, and the ABI forbids these IDs by SMC
 * (ARM64.md §2), so an SMC stops the VM.
 */
static void
decode_hypercall(const struct bus_pio *bus, const struct exit_info *in, struct exit_action *out)
{
	if (in->hypercall_flags & ARM64_HYPERCALL_SMC) {
		stop(out, -EPERM, "SMC with an ABI function ID");
		return;
	}
	if (in->hypercall_nr > 0xffffffffull) {
		stop(out, -EPROTO, "hypercall ID wider than 32 bits");
		return;
	}
	out->io.port = CLV_DOORBELL_PORT;
	out->io.size = 4;
	out->io.is_write = 1;
	out->io.value = (uint32_t)in->hypercall_nr;
	out->io.via = CALL_VIA_HVC;
	out->dev = bus_find_pio(bus, CLV_DOORBELL_PORT, 4);
	if (out->dev == NULL) {
		stop(out, -EPROTO, "hypercall without a doorbell device");
		return;
	}
	out->act = EXIT_ACT_PIO;
	out->why = "hypercall (HVC)";
}

void
exit_decode(const struct bus_pio *bus, const struct exit_info *in, struct exit_action *out)
{
	memset(out, 0, sizeof(*out));
	out->act = EXIT_ACT_RESUME;
	out->why = "resume";
	switch (in->reason) {
	case KVM_EXIT_MMIO:
		decode_mmio(bus, in, out);
		break;
	case KVM_EXIT_HYPERCALL:
		decode_hypercall(bus, in, out);
		break;
	case KVM_EXIT_INTR:
		out->act = EXIT_ACT_INTR;
		out->why = "interrupted";
		break;
	case KVM_EXIT_SYSTEM_EVENT:
		if (in->event_type == KVM_SYSTEM_EVENT_SHUTDOWN) {
			out->act = EXIT_ACT_POWER_OFF;
			out->why = "guest powered off (PSCI)";
		} else {
			stop(out, -ESHUTDOWN,
			     in->event_type == KVM_SYSTEM_EVENT_RESET
				     ? "guest asked for a reset (PSCI)"
				     : "unexpected system event");
		}
		break;
	case KVM_EXIT_FAIL_ENTRY:
		stop(out, -EIO, "VM entry failed");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		stop(out, -EIO, "KVM internal error");
		break;
	default:
		stop(out, -EOPNOTSUPP, "unexpected exit reason");
		break;
	}
}

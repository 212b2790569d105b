/*
 * x86's pure exit decoder (see exit_decode.h; moved unchanged from hv/exit_decode.c). Policy:
 * port I/O goes to the device that owns the whole access, else reads see 0xff.. and writes
 * vanish; MMIO is not emulated by this VMM (no MMIO devices yet), so it stops the VM rather than
 * guess; HLT waits; SHUTDOWN (triple fault), FAIL_ENTRY and INTERNAL_ERROR (the emulator gave
 * up) stop the VM with an error.
 */
#include <errno.h>
#include <string.h>

#include <linux/kvm.h>

#include "../../exit_decode.h"

void
exit_info_copy(const struct kvm_run *run, size_t map_size, struct exit_info *out)
{
	const volatile struct kvm_run *r = run;

	memset(out, 0, sizeof(*out));
	out->reason = r->exit_reason;
	switch (out->reason) {
	case KVM_EXIT_IO: {
		uint64_t off = r->io.data_offset;

		out->io_dir = r->io.direction;
		out->io_size = r->io.size;
		out->io_port = r->io.port;
		out->io_count = r->io.count;
		if (map_size >= 4 && off >= sizeof(struct kvm_run) && off <= map_size - 4) {
			const volatile uint8_t *p = (const volatile uint8_t *)run + off;

			out->io_data_ok = 1;
			out->io_data_off = (uint32_t)off;
			out->io_value = (uint32_t)p[0] | (uint32_t)p[1] << 8 |
					(uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
		}
		break;
	}
	case KVM_EXIT_MMIO:
		out->mmio_addr = r->mmio.phys_addr;
		out->mmio_len = r->mmio.len;
		out->mmio_write = r->mmio.is_write;
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

static void
decode_io(const struct bus_pio *bus, const struct exit_info *in, struct exit_action *out)
{
	uint32_t mask;

	if (in->io_size != 1 && in->io_size != 2 && in->io_size != 4) {
		stop(out, -EPROTO, "port I/O with an impossible size");
		return;
	}
	if (in->io_dir != KVM_EXIT_IO_IN && in->io_dir != KVM_EXIT_IO_OUT) {
		stop(out, -EPROTO, "port I/O with an impossible direction");
		return;
	}
	if (!in->io_data_ok) {
		stop(out, -EPROTO, "port I/O data outside the kvm_run mapping");
		return;
	}
	mask = in->io_size == 4 ? 0xffffffffu : (1u << (8 * in->io_size)) - 1;
	out->io.port = in->io_port;
	out->io.size = in->io_size;
	out->io.is_write = in->io_dir == KVM_EXIT_IO_OUT;
	out->io.value = out->io.is_write ? in->io_value & mask : mask;
	if (in->io_count != 1) {
		/* String I/O (rep ins/outs) is not emulated: no device of ours needs it. */
		out->act = EXIT_ACT_PIO_UNKNOWN;
		out->why = "string port I/O ignored";
		return;
	}
	out->dev = bus_find_pio(bus, in->io_port, in->io_size);
	if (out->dev == NULL) {
		out->act = EXIT_ACT_PIO_UNKNOWN;
		out->why = "port I/O to no device";
		return;
	}
	out->act = EXIT_ACT_PIO;
	out->why = out->dev->name;
}

void
exit_decode(const struct bus_pio *bus, const struct exit_info *in, struct exit_action *out)
{
	memset(out, 0, sizeof(*out));
	out->act = EXIT_ACT_RESUME;
	out->why = "resume";
	switch (in->reason) {
	case KVM_EXIT_IO:
		decode_io(bus, in, out);
		break;
	case KVM_EXIT_HLT:
		out->act = EXIT_ACT_HALT;
		out->why = "hlt";
		break;
	case KVM_EXIT_INTR:
		out->act = EXIT_ACT_INTR;
		out->why = "interrupted";
		break;
	case KVM_EXIT_MMIO:
		stop(out, -EOPNOTSUPP, "MMIO is not emulated");
		break;
	case KVM_EXIT_SHUTDOWN:
		stop(out, -ECONNRESET, "guest shutdown (triple fault)");
		break;
	case KVM_EXIT_FAIL_ENTRY:
		stop(out, -EIO, "VM entry failed");
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		stop(out, -EIO, "KVM internal error (emulation failure?)");
		break;
	default:
		stop(out, -EOPNOTSUPP, "unexpected exit reason");
		break;
	}
}

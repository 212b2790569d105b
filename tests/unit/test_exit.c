/*
 * Unit tests for the pure KVM exit decoder (hypercall-bridge/hv/exit_decode.c) with synthetic
 * kvm_run pages: port I/O to the serial port and the doorbell, unknown ports, malformed I/O
 * exits, MMIO, HLT, SHUTDOWN, FAIL_ENTRY and INTERNAL_ERROR. Also the port bus it relies on,
 * the 16550's registers and the default dispatcher. No KVM is needed or touched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include <linux/kvm.h>

#include "cleave_abi.h"
#include "hypercall-bridge/hv/bus_pio.h"
#include "hypercall-bridge/hv/exit_decode.h"
#include "hypercall-bridge/hv/serial_16550.h"
#include "hypercall-bridge/hv/vmm.h"

#define MAP_SIZE 8192

static _Alignas(64) uint8_t page[MAP_SIZE];

static int
dummy_io(void *ctx, struct bus_io *io)
{
	(void)ctx;
	(void)io;
	return 0;
}

static void
two_devices(struct bus_pio *b)
{
	struct bus_dev com1 = {.name = "com1", .base = 0x3f8, .len = 8, .io = dummy_io};
	struct bus_dev bell = {
		.name = "doorbell", .base = 0x510, .len = 4, .flags = BUS_F_REGS, .io = dummy_io};

	bus_pio_init(b);
	assert_int_equal(bus_register_pio(b, &com1), 0);
	assert_int_equal(bus_register_pio(b, &bell), 0);
}

static struct kvm_run *
fresh_run(uint32_t reason)
{
	struct kvm_run *run = (struct kvm_run *)page;

	memset(page, 0, sizeof(page));
	run->exit_reason = reason;
	return run;
}

/* Decodes a synthetic KVM_EXIT_IO. */
static void
decode_io(uint8_t dir, uint8_t size, uint16_t port, uint32_t count, uint32_t value,
	  struct exit_info *info, struct exit_action *a)
{
	struct kvm_run *run = fresh_run(KVM_EXIT_IO);
	struct bus_pio b;

	run->io.direction = dir;
	run->io.size = size;
	run->io.port = port;
	run->io.count = count;
	run->io.data_offset = 4096;
	memcpy(page + 4096, &value, sizeof(value));
	two_devices(&b);
	exit_info_copy(run, MAP_SIZE, info);
	exit_decode(&b, info, a);
}

static void
test_exit_io_out_serial(void **state)
{
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_io(KVM_EXIT_IO_OUT, 1, 0x3f8, 1, 0x41, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_string_equal(a.dev->name, "com1");
	assert_true(a.io.is_write);
	assert_int_equal(a.io.value, 0x41);
	assert_int_equal(a.io.size, 1);
	assert_int_equal(info.io_data_off, 4096);
}

static void
test_exit_io_in_serial_lsr(void **state)
{
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_io(KVM_EXIT_IO_IN, 1, 0x3fd, 1, 0, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_string_equal(a.dev->name, "com1");
	assert_false(a.io.is_write);
	assert_int_equal(a.io.port, 0x3fd);
}

static void
test_exit_io_doorbell(void **state)
{
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_io(KVM_EXIT_IO_OUT, 4, CLV_DOORBELL_PORT, 1, CLV_FN_VERSION, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_string_equal(a.dev->name, "doorbell");
	assert_true(a.dev->flags & BUS_F_REGS);
	assert_int_equal(a.io.value, CLV_FN_VERSION);
	assert_int_equal(a.io.via, CALL_VIA_PORT); /* counted as a port I/O call */
}

static void
test_exit_io_unknown_port(void **state)
{
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_io(KVM_EXIT_IO_IN, 1, 0x60, 1, 0, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
	assert_null(a.dev);
	assert_int_equal(a.io.value, 0xff);
	decode_io(KVM_EXIT_IO_IN, 2, 0x60, 1, 0, &info, &a);
	assert_int_equal(a.io.value, 0xffff);
	decode_io(KVM_EXIT_IO_OUT, 1, 0x80, 1, 0x12, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
	assert_true(a.io.is_write);
	/* An access that runs past the end of a device belongs to nobody. */
	decode_io(KVM_EXIT_IO_IN, 2, 0x3ff, 1, 0, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
	/* String I/O is not emulated. */
	decode_io(KVM_EXIT_IO_OUT, 1, 0x3f8, 4, 0x41, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
}

static void
test_exit_io_out_masks_value(void **state)
{
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_io(KVM_EXIT_IO_OUT, 1, 0x3f8, 1, 0xdeadbe41, &info, &a);
	assert_int_equal(a.io.value, 0x41);
	decode_io(KVM_EXIT_IO_OUT, 2, 0x3f8, 1, 0xdeadbe41, &info, &a);
	assert_int_equal(a.io.value, 0xbe41);
}

static void
test_exit_io_malformed(void **state)
{
	struct kvm_run *run;
	struct exit_info info;
	struct exit_action a;
	struct bus_pio b;

	(void)state;
	two_devices(&b);
	decode_io(KVM_EXIT_IO_OUT, 3, 0x3f8, 1, 0, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EPROTO);
	decode_io(7, 1, 0x3f8, 1, 0, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	/* The data offset must stay inside the mapping (and past the fixed header). */
	run = fresh_run(KVM_EXIT_IO);
	run->io.direction = KVM_EXIT_IO_IN;
	run->io.size = 1;
	run->io.port = 0x3f8;
	run->io.count = 1;
	run->io.data_offset = MAP_SIZE - 2;
	exit_info_copy(run, MAP_SIZE, &info);
	assert_false(info.io_data_ok);
	exit_decode(&b, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EPROTO);
	run->io.data_offset = 8;
	exit_info_copy(run, MAP_SIZE, &info);
	assert_false(info.io_data_ok);
}

/* Decodes a synthetic exit of a reason that carries no I/O. */
static void
decode_reason(struct kvm_run *run, struct exit_info *info, struct exit_action *a)
{
	struct bus_pio b;

	two_devices(&b);
	exit_info_copy(run, MAP_SIZE, info);
	exit_decode(&b, info, a);
	assert_non_null(a->why);
}

static void
test_exit_mmio_unsupported(void **state)
{
	struct kvm_run *run = fresh_run(KVM_EXIT_MMIO);
	struct exit_info info;
	struct exit_action a;

	(void)state;
	run->mmio.phys_addr = 0xfee00000;
	run->mmio.len = 4;
	run->mmio.is_write = 1;
	decode_reason(run, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EOPNOTSUPP);
	assert_int_equal(info.mmio_addr, 0xfee00000);
	assert_int_equal(info.mmio_len, 4);
}

static void
test_exit_hlt_and_intr(void **state)
{
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_reason(fresh_run(KVM_EXIT_HLT), &info, &a);
	assert_int_equal(a.act, EXIT_ACT_HALT);
	decode_reason(fresh_run(KVM_EXIT_INTR), &info, &a);
	assert_int_equal(a.act, EXIT_ACT_INTR);
}

static void
test_exit_fatal_reasons(void **state)
{
	struct kvm_run *run;
	struct exit_info info;
	struct exit_action a;

	(void)state;
	decode_reason(fresh_run(KVM_EXIT_SHUTDOWN), &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -ECONNRESET);
	run = fresh_run(KVM_EXIT_FAIL_ENTRY);
	run->fail_entry.hardware_entry_failure_reason = 0x21;
	decode_reason(run, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EIO);
	assert_int_equal(info.fail_reason, 0x21);
	run = fresh_run(KVM_EXIT_INTERNAL_ERROR);
	run->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
	decode_reason(run, &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EIO);
	assert_int_equal(info.suberror, KVM_INTERNAL_ERROR_EMULATION);
	decode_reason(fresh_run(9999), &info, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EOPNOTSUPP);
}

static void
test_exit_bus_register_rules(void **state)
{
	struct bus_dev d = {.name = "x", .base = 0x3fc, .len = 8, .io = dummy_io};
	struct bus_pio b;

	(void)state;
	two_devices(&b);
	assert_int_equal(bus_register_pio(&b, &d), -EEXIST);
	d.base = 0xfffc;
	assert_int_equal(bus_register_pio(&b, &d), -EINVAL);
	d.base = 0x100;
	d.io = NULL;
	assert_int_equal(bus_register_pio(&b, &d), -EINVAL);
	d.io = dummy_io;
	for (int i = 0; i < BUS_PIO_MAX_DEVS - 2; i++) {
		d.base = (uint16_t)(0x100 + 0x10 * i);
		assert_int_equal(bus_register_pio(&b, &d), 0);
	}
	d.base = 0x800;
	assert_int_equal(bus_register_pio(&b, &d), -ENOSPC);
	assert_int_equal(bus_unregister_pio(&b, 0x3f8), 0);
	assert_null(bus_find_pio(&b, 0x3f8, 1));
	assert_int_equal(bus_unregister_pio(&b, 0x3f8), -ENOENT);
	assert_non_null(bus_find_pio(&b, 0x513, 1));
}

static void
test_serial_registers(void **state)
{
	struct serial_16550 s;
	struct bus_io io = {.port = 0x3fd, .size = 1};

	(void)state;
	assert_int_equal(serial_init(&s, NULL, NULL), 0);
	serial_io(&s, &io);
	assert_int_equal(io.value, 0x60); /* transmitter empty, no data */
	assert_int_equal(serial_feed(&s, (const uint8_t *)"hi", 2), 2);
	serial_io(&s, &io);
	assert_int_equal(io.value, 0x61);
	io.port = 0x3f8;
	serial_io(&s, &io);
	assert_int_equal(io.value, 'h');
	serial_io(&s, &io);
	assert_int_equal(io.value, 'i');
	serial_io(&s, &io);
	assert_int_equal(io.value, 0); /* empty queue reads as 0 */
	serial_fini(&s);
}

static int serial_line = -1;

static void
serial_irq(void *ctx, int level)
{
	(void)ctx;
	serial_line = level;
}

/* The interrupt a Linux guest's 8250 driver uses: IIR and the line follow IER, THR and input. */
static void
test_serial_irq(void **state)
{
	struct serial_16550 s;
	struct bus_io io = {.port = 0x3fa, .size = 1}; /* IIR */
	struct bus_io ier = {.port = 0x3f9, .size = 1, .is_write = 1};
	struct bus_io thr = {.port = 0x3f8, .size = 1, .is_write = 1, .value = 'x'};

	(void)state;
	assert_int_equal(serial_init(&s, NULL, NULL), 0);
	serial_set_irq(&s, serial_irq, NULL);
	serial_io(&s, &io);
	assert_int_equal(io.value, 0x01); /* nothing enabled, nothing pending */
	ier.value = 0x02;                 /* THRI: the empty transmitter interrupts at once */
	serial_io(&s, &ier);
	assert_int_equal(serial_line, 1);
	serial_io(&s, &io);
	assert_int_equal(io.value, 0x02); /* reading IIR acknowledges it */
	assert_int_equal(serial_line, 0);
	serial_io(&s, &thr); /* a byte sent: empty again, interrupt again */
	assert_int_equal(serial_line, 1);
	ier.value = 0x01; /* RDI only: the transmitter is quiet, input raises the line */
	serial_io(&s, &ier);
	assert_int_equal(serial_line, 0);
	assert_int_equal(serial_feed(&s, (const uint8_t *)"k", 1), 1);
	assert_int_equal(serial_line, 1);
	io.value = 0;
	serial_io(&s, &io);
	assert_int_equal(io.value, 0x04);
	io.port = 0x3f8;
	serial_io(&s, &io); /* the byte read: the line drops */
	assert_int_equal(io.value, 'k');
	assert_int_equal(serial_line, 0);
	serial_fini(&s);
}

static void
test_exit_default_dispatch(void **state)
{
	uint64_t args[4] = {0, 0, 0, 0}, res[3] = {0, 0, 0};

	(void)state;
	assert_int_equal(vmm_dispatch_default(NULL, CLV_FN_VERSION, 0, args, res), CLV_ABI_VERSION);
	args[0] = CLV_FN_VERSION;
	assert_int_equal(vmm_dispatch_default(NULL, CLV_FN_FEATURES, 0, args, res), CLV_OK);
	args[0] = CLV_FN_WIPE;
	assert_int_equal(vmm_dispatch_default(NULL, CLV_FN_FEATURES, 0, args, res),
			 CLV_E_NOT_SUPPORTED);
	assert_int_equal(vmm_dispatch_default(NULL, CLV_FN_WIPE, 0, args, res),
			 CLV_E_NOT_SUPPORTED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exit_io_out_serial),
		cmocka_unit_test(test_exit_io_in_serial_lsr),
		cmocka_unit_test(test_exit_io_doorbell),
		cmocka_unit_test(test_exit_io_unknown_port),
		cmocka_unit_test(test_exit_io_out_masks_value),
		cmocka_unit_test(test_exit_io_malformed),
		cmocka_unit_test(test_exit_mmio_unsupported),
		cmocka_unit_test(test_exit_hlt_and_intr),
		cmocka_unit_test(test_exit_fatal_reasons),
		cmocka_unit_test(test_exit_bus_register_rules),
		cmocka_unit_test(test_serial_registers),
		cmocka_unit_test(test_serial_irq),
		cmocka_unit_test(test_exit_default_dispatch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

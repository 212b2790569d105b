/*
 * Unit tests for arm64's pure exit decoder (hypercall-bridge/hv/arch/arm64/exit_decode.c),
 * built on this x86 host with synthetic kvm_run pages: the memory-mapped 16550 and the MMIO
 * doorbell mapped onto the bus's numbers, the vectors' fault word, unknown and malformed MMIO,
 * PSCI SYSTEM_OFF as a clean power-off and RESET as a stop, an HVC forwarded by the SMCCC
 * filter as a doorbell call and an SMC refused. No KVM is needed or touched.
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
#include "hypercall-bridge/hv/arch/arm64/layout.h"
#include "hypercall-bridge/hv/bus_pio.h"
#include "hypercall-bridge/hv/exit_decode.h"

static _Alignas(64) uint8_t page[8192];
static struct bus_pio bus;

static int
dummy_io(void *ctx, struct bus_io *io)
{
	(void)ctx;
	(void)io;
	return 0;
}

/* The devices arm64's arch_devices_register puts on the bus: the UART and the doorbell. */
static int
setup(void **state)
{
	struct bus_dev uart = {.name = "uart", .base = CLV_SERIAL_PORT, .len = 8, .io = dummy_io};
	struct bus_dev bell = {.name = "doorbell",
			       .base = CLV_DOORBELL_PORT,
			       .len = 4,
			       .flags = BUS_F_REGS,
			       .io = dummy_io};

	(void)state;
	bus_pio_init(&bus);
	assert_int_equal(bus_register_pio(&bus, &uart), 0);
	assert_int_equal(bus_register_pio(&bus, &bell), 0);
	return 0;
}

static struct kvm_run *
fresh_run(uint32_t reason)
{
	struct kvm_run *run = (struct kvm_run *)page;

	memset(page, 0, sizeof(page));
	run->exit_reason = reason;
	return run;
}

static void
decode(const struct kvm_run *run, struct exit_action *a)
{
	struct exit_info in;

	exit_info_copy(run, sizeof(page), &in);
	exit_decode(&bus, &in, a);
}

static void
mmio(uint64_t addr, uint32_t len, int write, uint32_t value, struct exit_action *a)
{
	struct kvm_run *run = fresh_run(KVM_EXIT_MMIO);

	run->mmio.phys_addr = addr;
	run->mmio.len = len;
	run->mmio.is_write = (uint8_t)write;
	memcpy(run->mmio.data, &value, sizeof(value));
	decode(run, a);
}

static void
test_uart_registers_map_to_bus(void **state)
{
	struct exit_action a;
	struct exit_info in;

	(void)state;
	mmio(ARM64_UART_BASE, 1, 1, 'A', &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_int_equal(a.io.port, CLV_SERIAL_PORT);
	assert_int_equal(a.io.value, 'A');
	assert_string_equal(a.dev->name, "uart");
	/* the line status register, read 4 bytes wide: still the one-byte register 5 */
	mmio(ARM64_UART_BASE + 5 * ARM64_UART_STRIDE, 4, 0, 0, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_int_equal(a.io.port, CLV_SERIAL_PORT + 5);
	assert_false(a.io.is_write);
	assert_string_equal(a.dev->name, "uart");
	/* a read's value goes back into kvm_run's MMIO data */
	exit_info_copy((struct kvm_run *)page, sizeof(page), &in);
	assert_true(in.io_data_ok);
	assert_int_equal(in.io_data_off, offsetof(struct kvm_run, mmio.data));
	/* between two registers: no device */
	mmio(ARM64_UART_BASE + 1, 1, 0, 0, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
	assert_int_equal(a.io.value, 0xff);
}

static void
test_doorbell_store_is_a_call(void **state)
{
	struct exit_action a;

	(void)state;
	mmio(ARM64_DOORBELL, 4, 1, CLV_FN_STATUS, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_int_equal(a.io.port, CLV_DOORBELL_PORT);
	assert_int_equal(a.io.value, CLV_FN_STATUS);
	assert_true(a.io.is_write);
	assert_int_equal(a.io.via, CALL_VIA_MMIO); /* counted as an MMIO call */
	assert_string_equal(a.dev->name, "doorbell");
	/* elsewhere in the page: no device, nothing called */
	mmio(ARM64_DOORBELL + 0x100, 4, 1, CLV_FN_STATUS, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
}

static void
test_fault_word_stops_the_vm(void **state)
{
	struct exit_action a;

	(void)state;
	mmio(ARM64_DOORBELL_FAULT, 4, 1, 4, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EFAULT);
	/* a read of the fault word is not a report */
	mmio(ARM64_DOORBELL_FAULT, 4, 0, 0, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO_UNKNOWN);
}

static void
test_wide_mmio_stops(void **state)
{
	struct exit_action a;

	(void)state;
	mmio(ARM64_DOORBELL, 8, 1, CLV_FN_VERSION, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EPROTO);
}

static void
test_psci_off_is_power_off_reset_stops(void **state)
{
	struct kvm_run *run = fresh_run(KVM_EXIT_SYSTEM_EVENT);
	struct exit_action a;

	(void)state;
	run->system_event.type = KVM_SYSTEM_EVENT_SHUTDOWN;
	decode(run, &a);
	assert_int_equal(a.act, EXIT_ACT_POWER_OFF);
	run = fresh_run(KVM_EXIT_SYSTEM_EVENT);
	run->system_event.type = KVM_SYSTEM_EVENT_RESET;
	decode(run, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -ESHUTDOWN);
}

static void
test_hvc_is_a_doorbell_call_smc_is_refused(void **state)
{
	struct kvm_run *run = fresh_run(KVM_EXIT_HYPERCALL);
	struct exit_action a;

	(void)state;
	run->hypercall.nr = CLV_FN_BLOCK_READ;
	decode(run, &a);
	assert_int_equal(a.act, EXIT_ACT_PIO);
	assert_int_equal(a.io.port, CLV_DOORBELL_PORT);
	assert_int_equal(a.io.value, CLV_FN_BLOCK_READ);
	assert_true(a.io.is_write);
	assert_int_equal(a.io.via, CALL_VIA_HVC); /* counted as an HVC call */
	assert_string_equal(a.dev->name, "doorbell");
	run = fresh_run(KVM_EXIT_HYPERCALL);
	run->hypercall.nr = CLV_FN_VERSION;
	run->hypercall.longmode = ARM64_HYPERCALL_SMC;
	decode(run, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
	assert_int_equal(a.err, -EPERM);
	run = fresh_run(KVM_EXIT_HYPERCALL);
	run->hypercall.nr = 0x1f2000000ull;
	decode(run, &a);
	assert_int_equal(a.act, EXIT_ACT_STOP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_uart_registers_map_to_bus, setup),
		cmocka_unit_test_setup(test_doorbell_store_is_a_call, setup),
		cmocka_unit_test_setup(test_fault_word_stops_the_vm, setup),
		cmocka_unit_test_setup(test_wide_mmio_stops, setup),
		cmocka_unit_test_setup(test_psci_off_is_power_off_reset_stops, setup),
		cmocka_unit_test_setup(test_hvc_is_a_doorbell_call_smc_is_refused, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * arm64: the memory-mapped 16550 console and the hypercall doorbell, as seen from inside the
 * corporate guest (hypercall-bridge/ARM64.md §4). The same uart_put, uart_has_input, uart_get,
 * idle and hv_call as arch/x86/guest_io.h. The MMU is off, so addresses are physical and every
 * access is Device memory; each MMIO access is one plain load or store without writeback, so
 * KVM can decode it (ISV) and hand it to the VMM.
 */
#ifndef CLEAVE_GUEST_IO_H
#define CLEAVE_GUEST_IO_H

#include <stdint.h>

#include "cleave_abi.h"

#define UART_BASE 0x09000000ul /* register i at UART_BASE + 4 i */
#define UART_LSR  (UART_BASE + 4 * 5)
#define LSR_DATA  0x01

static inline void
mmio_write8(uintptr_t addr, uint8_t v)
{
	__asm__ volatile("strb %w0, [%1]" : : "r"(v), "r"(addr) : "memory");
}

static inline uint8_t
mmio_read8(uintptr_t addr)
{
	uint32_t v;

	__asm__ volatile("ldrb %w0, [%1]" : "=r"(v) : "r"(addr) : "memory");
	return (uint8_t)v;
}

static inline void
uart_put(uint8_t c)
{
	mmio_write8(UART_BASE, c);
}

/* The VMM holds this read (up to 200 ms) while no input is queued: WFI never reaches it. */
static inline int
uart_has_input(void)
{
	return (mmio_read8(UART_LSR) & LSR_DATA) != 0;
}

static inline uint8_t
uart_get(void)
{
	return mmio_read8(UART_BASE);
}

/* Nothing: the status read in uart_has_input is already the wait. */
static inline void
idle(void)
{
	__asm__ volatile("" ::: "memory");
}

/*
 * One hypercall (hvcall.c): by HVC when the VMM answers VERSION that way (the SMCCC filter),
 * else by a 4-byte store of the function ID to the doorbell page. Arguments in x1..x4, status
 * in x0, results in x1..x3; the compiler keeps the caller's state in x19..x28 across it.
 */
int64_t hv_call(uint32_t fid, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t res[3]);

#endif

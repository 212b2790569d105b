/*
 * x86: port I/O, the 16550 console at COM1 and the hypercall doorbell port, as seen from inside
 * the corporate guest. Each architecture's guest_io.h offers the same uart_put, uart_has_input,
 * uart_get, idle and hv_call to the shared guest.c and workspace.c. Freestanding: only
 * <stdint.h> and the ABI header. Nothing here knows about commands.
 */
#ifndef CLEAVE_GUEST_IO_H
#define CLEAVE_GUEST_IO_H

#include <stdint.h>

#include "cleave_abi.h"

#define COM1_LSR (CLV_SERIAL_PORT + 5)
#define LSR_DATA 0x01

static inline void
outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t
inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Waits for the VMM: each hlt exits, and the VMM resumes the guest when console input arrives. */
static inline void
idle(void)
{
	__asm__ volatile("hlt" ::: "memory");
}

static inline void
uart_put(uint8_t c)
{
	outb(CLV_SERIAL_PORT, c);
}

static inline int
uart_has_input(void)
{
	return (inb(COM1_LSR) & LSR_DATA) != 0;
}

static inline uint8_t
uart_get(void)
{
	return inb(CLV_SERIAL_PORT);
}

/*
 * One hypercall: a 4-byte `out` of the function ID to the doorbell port (whose number is in
 * DX). Arguments go in RBX, RCX, RSI, RDI; results come back in RBX/RCX/RDX, status in RAX.
 */
static inline int64_t
hv_call(uint32_t fid, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t res[3])
{
	uint64_t rax = fid, rbx = a0, rcx = a1, rdx = CLV_DOORBELL_PORT, rsi = a2, rdi = a3;

	__asm__ volatile("outl %%eax, %%dx"
			 : "+a"(rax), "+b"(rbx), "+c"(rcx), "+d"(rdx), "+S"(rsi), "+D"(rdi)
			 :
			 : "memory");
	res[0] = rbx;
	res[1] = rcx;
	res[2] = rdx;
	return (int64_t)rax;
}

#endif

/*
 * Port I/O, the 16550 console and the hypercall doorbell, as seen from inside the corporate
 * guest. Freestanding: only <stdint.h> and the ABI header. Nothing here knows about commands.
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

static inline void
halt(void)
{
	__asm__ volatile("hlt" ::: "memory");
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

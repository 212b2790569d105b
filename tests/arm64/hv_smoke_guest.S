/*
 * The smallest guest for cleave-hv's arm64 VMM (hv_smoke.c): entered at EL1h with the MMU off
 * at RAM + 0x10000. Prints "ok" on the memory-mapped 16550, makes the ABI's VERSION by the MMIO
 * doorbell (function ID stored from w0, the answer comes back in x0), prints Y when x0 is 1.1
 * (0x00010001) and N otherwise, then PSCI SYSTEM_OFF by HVC, which KVM turns into
 * KVM_EXIT_SYSTEM_EVENT. No vectors: nothing here can fault.
 */
	.text
	.globl	_start
_start:
	movz	x9, #0x0900, lsl #16	/* the UART's data register */
	mov	w10, #'o'
	strb	w10, [x9]
	mov	w10, #'k'
	strb	w10, [x9]
	mov	w10, #'\n'
	strb	w10, [x9]
	movz	x11, #0x0b00, lsl #16	/* the doorbell page */
	movz	w0, #0xf200, lsl #16	/* CLV_FN_VERSION */
	str	w0, [x11]
	movz	x12, #0x1, lsl #16	/* CLV_ABI_VERSION 1.1 */
	movk	x12, #0x1
	cmp	x0, x12
	mov	w10, #'Y'
	mov	w13, #'N'
	csel	w10, w10, w13, eq
	strb	w10, [x9]
	mov	w10, #'\n'
	strb	w10, [x9]
	movz	w0, #0x8400, lsl #16	/* PSCI SYSTEM_OFF, 0x84000008 */
	movk	w0, #0x0008
	hvc	#0
1:	b	1b

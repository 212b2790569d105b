/*
 * The reference guest of bench/arm64_bench.c, run by cleave-hv's arm64 VMM with a dispatcher
 * that only timestamps each doorbell call: exits without cleave-hv's work, to set the real
 * guest's figures against. Entered at EL1h, MMU off. Each phase is LOOPS calls between two
 * doorbell calls the bench times:
 *   1. PSCI_VERSION by HVC: KVM answers it in the kernel, no userspace exit (the floor);
 *   2. VERSION by a store to the doorbell page: an MMIO exit to the VMM and back;
 *   3. VERSION by HVC: forwarded to the VMM where the SMCCC filter is set (6.4+), else
 *      answered -1 by KVM in the kernel like phase 1.
 * Then PSCI SYSTEM_OFF. State lives in x19-x21: KVM's SMCCC handling clobbers x0-x3.
 */
#define LOOPS 2000

	.text
	.globl	_start
_start:
	movz	x19, #0x0b00, lsl #16	/* the doorbell page */
	movz	w20, #0xf200, lsl #16	/* CLV_FN_VERSION */
	str	w20, [x19]		/* mark: phase 1 starts */
	mov	x21, #LOOPS
1:	movz	w0, #0x8400, lsl #16	/* PSCI_VERSION, 0x84000000 */
	hvc	#0
	subs	x21, x21, #1
	b.ne	1b
	str	w20, [x19]		/* mark: phase 1 ends, phase 2 starts */
	mov	x21, #LOOPS
2:	mov	w0, w20
	str	w0, [x19]
	subs	x21, x21, #1
	b.ne	2b
	mov	x21, #LOOPS
3:	mov	w0, w20
	hvc	#0
	subs	x21, x21, #1
	b.ne	3b
	str	w20, [x19]		/* mark: phase 3 ends */
	movz	w0, #0x8400, lsl #16	/* PSCI SYSTEM_OFF, 0x84000008 */
	movk	w0, #0x0008
	hvc	#0
4:	b	4b

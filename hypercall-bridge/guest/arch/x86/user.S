/*
 * Guest user mode (CPL 3), where this host runs guest code natively instead of emulating it.
 * user_bench(n) drops to CPL 3 with sysretq, makes n VERSION hypercalls through the doorbell
 * (the VMM's TSS I/O bitmap opens that port and no other to CPL 3), then spins until the host
 * stops the vCPU. It never returns: under kvm_pvm neither syscall nor an IDT gate brings a
 * non-PVM-aware guest back to CPL 0 (see hypercall-bridge/VMM.md), so this is a one-way
 * benchmark. Segments (set by the VMM): 0x08/0x10 kernel, 0x18 user data, 0x20 user code.
 */
#define MSR_STAR    0xc0000081
#define USER_STACK  0x180000
#define FN_VERSION  0xF2000000

	.text
	.globl user_bench
user_bench:
	mov	%rdi, %r12
	mov	$MSR_STAR, %ecx
	xor	%eax, %eax
	mov	$0x00100008, %edx	/* sysret base 0x10 (SS 0x1b, CS 0x23), syscall CS 0x08 */
	wrmsr
	lea	user_loop(%rip), %rcx
	mov	$0x2, %r11d		/* RFLAGS: IOPL 0, interrupts off */
	mov	$USER_STACK, %rsp
	sysretq

user_loop:				/* CPL 3 from here on */
	test	%r12, %r12
	jz	2f
	mov	$FN_VERSION, %eax
	mov	$0x510, %edx
	outl	%eax, %dx
	dec	%r12
	jmp	user_loop
2:	pause
	jmp	2b
	.section .note.GNU-stack, "", @progbits

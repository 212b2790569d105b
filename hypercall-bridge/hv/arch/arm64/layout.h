/*
 * arm64's guest physical layout (QEMU virt's, hypercall-bridge/ARM64.md §4) and the exit
 * constants the pure decoder needs. No arm64-only kernel types here, so exit_decode.c also
 * compiles on x86 for its unit test (tests/unit/test_exit_arm64.c). Not for use outside
 * hypercall-bridge/hv/ and that test.
 */
#ifndef CLEAVE_ARM64_LAYOUT_H
#define CLEAVE_ARM64_LAYOUT_H

#define ARM64_RAM_BASE     0x40000000ull /* guest RAM, memory slot 0 */
#define ARM64_UART_BASE    0x09000000ull /* the 16550's registers, one per 4 bytes */
#define ARM64_UART_STRIDE  4u
#define ARM64_DOORBELL     0x0b000000ull /* a page outside every memslot: stores exit as MMIO */
#define ARM64_DOORBELL_LEN 0x1000u
/* The doorbell page's fault word: the guest's vectors store the vector's number here. */
#define ARM64_DOORBELL_FAULT (ARM64_DOORBELL + 8)
/* A Linux guest's devices (linux_boot.c writes them into its device tree; QEMU virt's places). */
#define ARM64_GICD_BASE   0x08000000ull /* GICv3 distributor, 64 KiB */
#define ARM64_GICD_LEN    0x10000ull
#define ARM64_GICR_BASE   0x080a0000ull /* GICv3 redistributor of vCPU 0, 128 KiB */
#define ARM64_GICR_LEN    0x20000ull
#define ARM64_VIRTIO_BASE 0x0a000000ull /* the virtio-mmio block device's registers */
#define ARM64_UART_SPI    1u            /* shared peripheral interrupts: INTID 32 + n */
#define ARM64_VIRTIO_SPI  16u
/* KVM_EXIT_HYPERCALL's flags: the call was an SMC (Linux 6.4+; the cross headers are 6.1). */
#define ARM64_HYPERCALL_SMC 0x1u

#endif

/*
 * cleave-hv's virtual machine monitor: one corporate VM on KVM with one vCPU, guest RAM, a
 * COM1 console and the hypercall doorbell (port CLV_DOORBELL_PORT). The vCPU runs in its own
 * thread; another thread can stop it at any time (the lock path) and start it again. It does
 * not decide what hypercalls mean: the caller passes a dispatch callback. No irqchip, no
 * interrupts, no MMIO devices yet. Memory map and boot state: hypercall-bridge/VMM.md.
 */
#ifndef CLEAVE_VMM_H
#define CLEAVE_VMM_H

#include <stddef.h>
#include <stdint.h>

#include "call.h"

#define VMM_RAM_DEFAULT        (64u << 20)
#define VMM_RAM_MIN            (4u << 20)
#define VMM_RAM_MAX            (1u << 30) /* the boot page tables map the first 1 GiB */
#define VMM_GUEST_LOAD         0x10000u   /* GPA of the flat guest image and its entry point */
#define VMM_GUEST_MAX          0x70000u   /* image cap: it must end below the stack */
#define VMM_STACK_TOP          0x100000u  /* initial RSP */
#define VMM_KICK_SIGNAL_OFFSET 1          /* the kick signal is SIGRTMIN + this */

/*
 * Hypercall dispatcher: fid and args (RBX, RCX, RDX, RSI; copied out of the vCPU, borrowed for
 * the call) in, results (RBX, RCX, RDX; zeroed beforehand) out; the return value is the guest's
 * RAX: >= 0 a result, < 0 a CLV_E_* code. Runs on the vCPU thread.
 */
/* cpl: the guest's privilege level at the call (0 kernel, 3 user). */
typedef int64_t (*vmm_dispatch_fn)(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4],
				   uint64_t results[3]);
/* Receives bytes the guest wrote to COM1, on the vCPU thread; buf is borrowed for the call. */
typedef void (*vmm_serial_fn)(void *ctx, const uint8_t *buf, size_t len);

/*
 * The disk a Linux guest sees (a virtio-mmio block device, virtio_blk.h): sectors of 4096
 * bytes. read/write move count sectors to or from buf (borrowed), flush makes written sectors
 * durable; each returns 0 or a negative errno and runs on the vCPU thread.
 */
struct vmm_disk {
	uint64_t sectors;
	int (*read)(void *ctx, uint64_t sector, uint32_t count, void *buf);
	int (*write)(void *ctx, uint64_t sector, uint32_t count, const void *buf);
	int (*flush)(void *ctx);
	void *ctx; /* borrowed */
};

struct vmm_config {
	size_t ram_size;          /* bytes, multiple of 2 MiB; 0: VMM_RAM_DEFAULT */
	const char *guest_path;   /* borrowed: flat guest image */
	vmm_serial_fn serial;     /* NULL: console output is discarded */
	void *serial_ctx;         /* borrowed */
	vmm_dispatch_fn dispatch; /* NULL: vmm_dispatch_default */
	void *dispatch_ctx;       /* borrowed */
	/*
	 * A Linux guest instead of the freestanding one (where arch_linux_supported(): arm64):
	 * guest_path is then the kernel's Image, booted with a device tree of the VMM's own.
	 */
	int linux_guest;
	const char *linux_initrd;  /* borrowed: the initramfs, NULL for none */
	const char *linux_cmdline; /* borrowed: the kernel command line, NULL for none */
	struct vmm_disk disk;      /* Linux only: the virtio disk; read NULL for none */
};

/* Why the run loop ended (struct vmm_stats.stop_reason). */
enum vmm_stop_reason {
	VMM_NOT_STARTED = 0,
	VMM_RUNNING,
	VMM_STOPPED, /* vmm_stop(), or the guest powered off */
	VMM_FAULTED, /* the guest or KVM made continuing impossible; see stop_err */
};

struct vmm_stats {
	uint64_t exits, pio, doorbells, unknown_pio, halts;
	uint64_t calls_by[CALL_VIA_COUNT]; /* doorbells by transport (enum call_via) */
	enum vmm_stop_reason state;
	int stop_err;         /* negative errno when VMM_FAULTED */
	int64_t created_ns;   /* CLOCK_MONOTONIC when vmm_new began */
	int64_t first_run_ns; /* when the first KVM_RUN was issued, 0 before */
};

struct vmm;

/* 1 when /dev/kvm can be opened read-write, else 0. */
int vmm_kvm_available(void);
/*
 * Creates the VM: opens /dev/kvm, checks the API version, creates the VM, maps guest RAM
 * (anonymous, MADV_DONTDUMP) into memory slot 0 before anything else, loads the guest image,
 * writes the boot page tables and GDT, creates the vCPU in 64-bit long mode and registers the
 * serial port and the doorbell. The vCPU does not run yet. cfg is borrowed (its callbacks and
 * contexts must outlive the VM). On success *out is owned by the caller (free with vmm_free).
 * Returns 0 or a negative errno (-ENOENT no guest image, -EFBIG image too large, -EINVAL config).
 */
int vmm_new(const struct vmm_config *cfg, struct vmm **out);
/* Starts (or restarts after vmm_stop) the vCPU thread. 0, -EALREADY or -errno. */
int vmm_start(struct vmm *vm);
/*
 * Asks the vCPU to leave KVM_RUN and its thread to end: sets the stop flag, sets
 * kvm_run.immediate_exit and signals the thread. Returns at once; see vmm_join. Safe from any
 * thread, but not concurrently with vmm_start, vmm_join or vmm_free on the same VM.
 */
void vmm_stop(struct vmm *vm);
/*
 * Logs where the running guest is (arch_log_state: its PC and fault registers) by kicking the
 * vCPU out of KVM_RUN once and letting it go on: how a guest that makes no exits is found.
 * Same threading rules as vmm_stop.
 */
void vmm_sample(struct vmm *vm);
/* Waits at most timeout_ms for the vCPU thread to end. 0, -ETIMEDOUT or -ESRCH (not started). */
int vmm_join(struct vmm *vm, int timeout_ms);
/* Queues console input for the guest (buf borrowed) and wakes a halted vCPU; returns bytes taken. */
size_t vmm_serial_feed(struct vmm *vm, const uint8_t *buf, size_t len);
/*
 * The host address of the 4 KiB guest page at gpa, or NULL when gpa is not 4 KiB aligned or
 * the page is not inside guest RAM. Valid until vmm_free; for the dispatcher's bulk transfers.
 */
uint8_t *vmm_guest_page(struct vmm *vm, uint64_t gpa);
/* Copies the counters into *out. Thread-safe. */
void vmm_get_stats(struct vmm *vm, struct vmm_stats *out);
/*
 * Stops and joins the vCPU (bounded), closes the vCPU and VM, zeroes every resident page of
 * guest RAM, then unmaps it. NULL is ignored.
 */
void vmm_free(struct vmm *vm);
/* The built-in dispatcher: VERSION and FEATURES; everything else CLV_E_NOT_SUPPORTED. ctx unused. */
int64_t vmm_dispatch_default(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4],
			     uint64_t results[3]);

#endif

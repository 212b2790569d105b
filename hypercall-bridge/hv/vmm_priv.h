/*
 * The insides of struct vmm, shared by vmm.c (setup and teardown), vcpu.c (the run loop) and
 * the architecture's files under arch/ (arch.h). Not for use outside hypercall-bridge/hv/.
 */
#ifndef CLEAVE_VMM_PRIV_H
#define CLEAVE_VMM_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/kvm.h>

#include "arch.h"
#include "arch_vmm.h"
#include "bus_pio.h"
#include "cleave_abi.h"
#include "serial_16550.h"
#include "virtio_blk.h"
#include "vmm.h"

struct vmm {
	int kvm_fd, vm_fd, vcpu_fd;
	uint8_t *ram; /* guest RAM at GPA arch_ram_base(), ram_size bytes */
	size_t ram_size;
	struct kvm_run *run; /* the vCPU's shared page, run_size bytes */
	size_t run_size;
	struct arch_vmm arch; /* the architecture's own state (arch/<arch>/arch_vmm.h) */
	struct bus_pio bus;
	struct serial_16550 serial;
	vmm_dispatch_fn dispatch;
	void *dispatch_ctx;
	int linux_guest;        /* booted a Linux Image (vmm_config.linux_guest) */
	struct vmm_disk disk;   /* Linux guests: the backend of blk (vmm_config.disk) */
	struct virtio_blk *blk; /* Linux guests with a disk: the virtio block device, else NULL */

	pthread_t thread;
	int thread_live;      /* started and not yet joined */
	atomic_int stop;      /* vmm_stop() was called */
	atomic_int running;   /* the thread function has not returned */
	atomic_int sample;    /* vmm_sample() asked for the guest's state in the log */
	pthread_mutex_t lock; /* guards wake and stats */
	pthread_cond_t wake;  /* input or stop while the guest halts */
	pthread_cond_t done;  /* the thread is about to return */
	struct vmm_stats stats;
	unsigned unknown_logged;
};

/* The vCPU thread (vcpu.c); arg is the struct vmm. */
void *vcpu_thread(void *arg);
/*
 * Waits for console input or a stop request: at most slices * 200 ms, or unbounded when
 * slices <= 0. Called on the vCPU thread without vm->lock held.
 */
void vmm_wait_input(struct vmm *vm, int slices);
/* Installs the no-op handler for the kick signal once per process. 0 or -errno. */
int vcpu_kick_init(void);
/* An ioctl on fd that logs its failure (what names it); returns its result or -errno. */
int vmm_kvm_ioctl(int fd, unsigned long req, void *arg, const char *what);
/*
 * The hypercall doorbell's bus handler (ctx: the struct vmm), registered by each architecture's
 * arch_devices_register with BUS_F_REGS: maps the registers to the ABI's call by the
 * architecture's call_map_in (call.h), runs the VM's dispatcher, writes status and results back
 * by call_map_out and counts the call by transport. Not a call: reads (all ones) and writes
 * other than 4 bytes (-EINVAL, dropped).
 */
int vmm_doorbell_io(void *ctx, struct bus_io *io);
/* The host address of len bytes of guest RAM at gpa, or NULL when not all inside RAM. */
uint8_t *vmm_guest_range(struct vmm *vm, uint64_t gpa, size_t len);
/* Monotonic nanoseconds. */
int64_t vmm_now_ns(void);

#endif

/*
 * The KVM exit decoder, one per architecture (arch/<arch>/exit_decode.c): a pure function from a copy of the exit fields of kvm_run (plus the
 * read-only port bus) to one small action for the vCPU loop. It makes no ioctl, takes no lock
 * and never touches guest memory, so it is tested with synthetic exits (tests/unit/test_exit.c).
 * Treat every field as written by a hostile guest or a buggy kernel: all are validated here.
 */
#ifndef CLEAVE_EXIT_DECODE_H
#define CLEAVE_EXIT_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "bus_pio.h"

struct kvm_run;

/* What the exit was, copied once out of the shared kvm_run page. */
struct exit_info {
	uint32_t reason; /* KVM_EXIT_* */
	/* KVM_EXIT_IO (the io_data fields also carry an arm64 MMIO access's data) */
	uint8_t io_dir; /* KVM_EXIT_IO_IN / KVM_EXIT_IO_OUT */
	uint8_t io_size;
	uint16_t io_port;
	uint32_t io_count;
	int io_data_ok;       /* the data offset lay inside the kvm_run mapping */
	uint32_t io_data_off; /* valid when io_data_ok: where in kvm_run the bytes are */
	uint32_t io_value;    /* first repetition's bytes for an out, little-endian */
	/* KVM_EXIT_MMIO */
	uint64_t mmio_addr;
	uint32_t mmio_len;
	uint8_t mmio_write;
	/* KVM_EXIT_FAIL_ENTRY */
	uint64_t fail_reason;
	/* KVM_EXIT_INTERNAL_ERROR */
	uint32_t suberror;
	/* KVM_EXIT_SYSTEM_EVENT (arm64: PSCI SYSTEM_OFF, RESET) */
	uint32_t event_type;
	/* KVM_EXIT_HYPERCALL (arm64: HVC/SMC forwarded by the SMCCC filter) */
	uint64_t hypercall_nr;
	uint32_t hypercall_flags;
};

enum exit_act {
	EXIT_ACT_RESUME,      /* nothing to do: run again */
	EXIT_ACT_PIO,         /* call dev->io with io, then run again */
	EXIT_ACT_PIO_UNKNOWN, /* no device: reads see all ones, writes are dropped; logged */
	EXIT_ACT_HALT,        /* the guest waits: resume when input arrives or stop */
	EXIT_ACT_INTR,        /* KVM_RUN interrupted (a kick): check the stop flag */
	EXIT_ACT_STOP,        /* the VM cannot continue: stop with err */
	EXIT_ACT_POWER_OFF,   /* the guest asked to power off (arm64 PSCI): stop cleanly */
};

struct exit_action {
	enum exit_act act;
	const struct bus_dev *dev; /* EXIT_ACT_PIO: borrowed from the bus */
	struct bus_io io;          /* EXIT_ACT_PIO and _PIO_UNKNOWN: the access */
	int err;                   /* EXIT_ACT_STOP: negative errno for the caller */
	const char *why;           /* static text for the log, never NULL */
};

/*
 * Copies the exit fields out of run (borrowed; the kvm_run mapping of map_size bytes) into
 * *out, reading each shared field exactly once.
 */
void exit_info_copy(const struct kvm_run *run, size_t map_size, struct exit_info *out);

/* Decides what to do about in (borrowed) with the devices on bus (borrowed) into *out. */
void exit_decode(const struct bus_pio *bus, const struct exit_info *in, struct exit_action *out);

#endif

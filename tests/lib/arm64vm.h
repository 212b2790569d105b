/*
 * QEMU's emulated arm64 machine for the host tests (test_arm64_kvm, test_arm64_tpm): boots
 * `qemu-system-aarch64 -M virt,virtualization=on` with a Debian arm64 kernel and one of the
 * initramfs images under BUILD/arm64 (tests/arm64/README.md), bounded and niced, killed by its
 * pid, and keeps the serial console for the test to read.
 */
#ifndef CLEAVE_ARM64VM_H
#define CLEAVE_ARM64VM_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#ifndef RUN_LIMIT_S
#define RUN_LIMIT_S 300 /* one boot takes 2-25 s here, a Linux guest's 50-150 s; a hang ends */
#endif
#define LOG_CAP (256 * 1024)

extern char arm64_dir[PATH_MAX]; /* BUILD/arm64, from $CLEAVE_BIN (arm64vm_init) */
extern char qemu_path[PATH_MAX]; /* qemu-system-aarch64 on PATH, or "" */

struct boot {
	const char *kernel;           /* "6.1" or "6.12": BUILD/arm64/vmlinuz-KERNEL */
	const char *cpu;              /* QEMU -cpu */
	const char *extra;            /* extra kernel parameters, "" for none */
	const char *image;            /* BUILD/arm64/IMAGE: the initramfs */
	const char *progs;            /* what init runs, after "--" on the kernel command line */
	int limit_s;                  /* QEMU killed after this; 0: RUN_LIMIT_S */
	const char *const *qemu_args; /* more QEMU arguments (NULL-terminated), or NULL */
	char log[LOG_CAP + 1];
	double boot_s, result_s, exit_s; /* from spawn: init started, result line, QEMU gone */
	int status;                      /* QEMU's wait status; -1 when it had to be killed */
	pid_t pid;                       /* QEMU while it runs (boot_start), else 0 */
	double t0;                       /* when it was spawned */
	char log_path[PATH_MAX];         /* its console, until boot_finish */
};

/* Sets arm64_dir from $CLEAVE_BIN (BUILD/bin -> BUILD/arm64) and finds QEMU. */
void arm64vm_init(void);
/* Boots b, waits (bounded) for QEMU to end, and keeps its console and timings in b. 0 or -1. */
int boot_run(struct boot *b, const char *tag);
/*
 * boot_run in three steps, for a test that talks to the machine while it runs: boot_start
 * spawns QEMU (0 or -1), boot_poll reads the console so far into b->log (1 once QEMU has ended),
 * boot_finish waits for the end (bounded by the limit, then killed) and keeps the console.
 */
int boot_start(struct boot *b, const char *tag);
int boot_poll(struct boot *b);
int boot_finish(struct boot *b);
/* Why b cannot boot on this machine (QEMU or the kernel missing), or NULL. */
const char *boot_skip_reason(const struct boot *b);
/* After boot_finish: prints the console and timings, checks QEMU's end and KVM's mode line. */
void boot_end_checked(struct boot *b, const char *mode_line);
/* Prints the console lines that are not the kernel's own ("[    1.234] ..."), and kvm's. */
void print_console(const struct boot *b);
/* Each of want[] must appear in the log after the previous one; names the first that did not. */
const char *missing_in_order(const char *log, const char *const *want, size_t n);
/*
 * Boots b and checks that the machine came up, ran and powered off with KVM in the mode
 * mode_line names (CHECK/SKIP of the running case). Skips only when QEMU or the kernel is
 * missing; a missing image is a broken build.
 */
void boot_checked(struct boot *b, const char *tag, const char *mode_line);
/* The line of log just before the first line that starts with marker, into out; 0 or -1. */
int line_before(const char *log, const char *marker, char *out, size_t cap);
/*
 * Whether BUILD/arm64/image is there to boot: NULL when it is; else why not, with *broken set
 * when the build failed (what it needs from the network, BUILD/arm64/needs, was fetched: the
 * case fails) rather than this machine lacking the network (it skips). target builds it.
 */
const char *image_missing(const char *image, const char *needs, const char *target, int *broken);
/* 1 when what `make arm64-hv-full` fetches into arm64_dir/what (.done) is there. */
int fetched(const char *what);

#endif

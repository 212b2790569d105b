/*
 * The hypervisor object of cleave-hv: its private state directory, trust state, the measured
 * corporate VM image, the corporate half's state, and the handlers it registers with the
 * dispatcher. Calls that only involve trust (status, attest, pin, lease, policy, receipts) live
 * here; orders that touch the volume and the VM are added by the files that own those.
 */
#ifndef CLEAVE_HV_H
#define CLEAVE_HV_H

#include <limits.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "call.h"
#include "dispatch.h"
#include "trust.h"

struct console;
struct volume;
struct vmm;
struct vmm_disk;

typedef uint64_t (*hv_clock_fn)(void); /* unix milliseconds */

#define HV_PCR_LOG_MAX 4 /* measurements one cleave-hv extends into PCR 23 */
/* The longest cleave-hv --tpm trusts a TPM clock reading when no deadline is near. */
#define HV_TPM_CLOCK_MAX_AGE_MS 60000
struct tpm;

struct hv {
	char state_dir[PATH_MAX];
	struct trust trust;
	struct dispatch d;
	uint8_t measurement[32];
	struct tpm *tpm; /* borrowed (main owns it); NULL: the file keystore */
	/* What this process extended into PCR 23 (after resetting it): the quote's event log. */
	uint8_t pcr_log[HV_PCR_LOG_MAX][32];
	unsigned npcr;
	/*
	 * The TPM clock's last reading (hv_tpm.c) and when it was taken (CLOCK_BOOTTIME ms; 0:
	 * none yet): the lease is decided on it, and it is read again only near the next deadline.
	 */
	uint64_t tpm_clock_at;
	uint64_t tpm_clock_ms;
	uint32_t tpm_reset_count, tpm_restart_count;
	int tpm_clock_safe;
	uint64_t tpm_clock_reads; /* since start, for the log (tests bound it) */
	uint32_t state;           /* HV_STATE_* */
	uint64_t key_epoch;
	hv_clock_fn clock;
	struct volume *vol;
	/*
	 * The corporate VM (vm.c); NULL while stopped, or when /dev/kvm is unavailable. vm_lock
	 * guards the pointer against the console thread (hv_vm_feed); the main thread changes it.
	 */
	struct vmm *vm;
	pthread_mutex_t vm_lock;
	/* VMs already destroyed (wipes): their exits and calls, for CLV_FN_COUNTERS (vm.c). */
	uint64_t past_exits;
	uint64_t past_calls[CALL_VIA_COUNT];
	struct console *console; /* the corporate screen (console.h); NULL: none attached */
	uint64_t shared_gpa;     /* the guest's registered shared page, 0: none (block.c) */
	uint64_t heartbeat_ms;   /* the guest's last HEARTBEAT, 0: none yet */
	/* Held around volume I/O (vCPU thread) and around changes to the volume's keys. */
	pthread_mutex_t vol_lock;
	char guest_path[PATH_MAX];
	/* A Linux guest (arm64, --linux): guest_path is its Image; initramfs and command line. */
	int linux_guest;
	const char *linux_initrd, *linux_cmdline; /* borrowed from the command line; NULL: none */
	size_t ram_bytes;
	int kvm;
	/* Follow-up work of orders (orders.c), retried by hv_orders_tick until it succeeds. */
	uint64_t retry_ms;    /* backoff of a journaled order that failed; 0: none failing */
	uint64_t retry_at;    /* when to run it again (h->clock) */
	int vm_due;           /* the VM should run (after an unlock or a wipe) */
	uint64_t vm_retry_at; /* when to try starting it again; 0: not failing */
};

/*
 * Opens the state directory (must exist and be private: mode 0700, owned by us), loads trust,
 * measures the guest image at guest_path (SHA-256 of the image and the VM config string), and
 * registers the trust handlers. With tpm (open, borrowed until hv_close; NULL: the file
 * keystore) the identity is the TPM's AK, and the measurement is extended into PCR 23 here,
 * before any vCPU can run (hv_tpm.c). 0 or -errno.
 */
int hv_open(struct hv *h, const char *state_dir, const char *guest_path, const char *vm_config,
	    hv_clock_fn clock, struct tpm *tpm);
/*
 * The TPM glue of hv_open (hv_tpm.c): resets PCR 23, extends it with the measurement, keeps
 * that as the event log, and registers TPM_IDENTITY and TPM_ACTIVATE. 0 or -errno.
 */
int hv_tpm_open(struct hv *h);
/*
 * The sealed root key and the lease on the TPM clock (hv_tpm.c, TPM.md §4); only with h->tpm.
 * hv_tpm_lease converts a lease end (unix s) granted now into TPM clock ms and records the
 * TPM's resetCount, in h->trust (the caller's trust_accept makes them durable). hv_tpm_reseal
 * seals the current root key again with the deadline the lease and policy give (lease end +
 * wipe-after, or far). hv_tpm_offline: seconds past the lease on the TPM clock into *offline;
 * 1 when the TPM was reset (or its clock is not safe) since the lease: lapsed. It reads the TPM
 * clock only when its last reading (kept in h) may have reached the next lock or wipe deadline
 * or is HV_TPM_CLOCK_MAX_AGE_MS old; lease renewal and start read it anyway. hv_tpm_wipe_begin
 * records the wipe counter before a wipe's erase, durably; hv_tpm_receipt fills a receipt's
 * wipe counters.
 */
int hv_tpm_lease(struct hv *h, uint64_t lease_until);
void hv_tpm_reseal(struct hv *h);
int hv_tpm_offline(struct hv *h, int64_t *offline);
int hv_tpm_wipe_begin(struct hv *h);
void hv_tpm_receipt(struct hv *h, struct receipt *rc);
/* Connects to the TPM named by tcti (tpm.h syntax), or closes it; -ENOTSUP without tpm2-tss. */
int hv_tpm_connect(const char *tcti, struct tpm **out);
void hv_tpm_disconnect(struct tpm *t);
void hv_close(struct hv *h);

/*
 * Opens (or creates, volume_mib large) the corporate volume, registers lock, unlock, rekey and
 * wipe, and finishes a wipe a crash interrupted. 0 or -errno. (orders.c)
 */
int hv_orders_open(struct hv *h, uint64_t volume_mib);
void hv_orders_close(struct hv *h);
/* Registers CLV_FN_COUNTERS: the VMs' exits and guest calls by transport (vm.c). */
void hv_vm_register(struct hv *h);
/* Registers the guest's disk calls: shared page, block read/write, heartbeat (block.c). */
void hv_block_register(struct hv *h);
/* The corporate volume as a Linux guest's virtio disk (block.c): fills *d for vmm_config. */
void hv_disk_backend(struct hv *h, struct vmm_disk *d);
/*
 * Finishes the order a crash interrupted, if any (the journal in the trust state, or a wipe
 * intent in the volume headers), before anything else (called by hv_orders_open). An order
 * that fails again stays journaled for hv_orders_tick. 0, or -errno when it cannot be journaled.
 */
int hv_resume_order(struct hv *h);
/*
 * The main loop's periodic work (about every 200 ms): retries a journaled order that failed
 * (backoff 1 s doubling to 64 s, logged once) and a VM start that failed (every 5 s), then
 * enforces the offline policy (hv_lease_check).
 */
void hv_orders_tick(struct hv *h);

/*
 * The corporate VM (vm.c). hv_vm_boot creates and starts it when KVM is available and the
 * corporate half is active (0 when it needs not or cannot run: logged). hv_vm_pause stops the
 * vCPU and returns 1 when it stopped (0 when nothing ran); hv_vm_resume restarts it.
 * hv_vm_destroy stops it and zeroes its RAM; returns 1 when a VM was destroyed.
 */
int hv_vm_boot(struct hv *h, size_t ram_mib);

/*
 * Enforces the offline policy (orders.c): past the lease by the policy's lock limit, locks the
 * corporate half; past the wipe limit, wipes it; each with a receipt kept for the server.
 * Returns 1 when it acted, 0 when nothing was due, -EIO on failure. Called about every 200 ms.
 */
int hv_lease_check(struct hv *h);
int hv_vm_pause(struct hv *h);
int hv_vm_resume(struct hv *h);
int hv_vm_destroy(struct hv *h);
/* Logs where the corporate VM's guest is (vmm_sample), when one runs. */
void hv_vm_sample(struct hv *h);
/* Console keystrokes for the guest (console_input_fn; ctx is the hv): dropped without a VM. */
size_t hv_vm_feed(void *ctx, const uint8_t *buf, size_t len);

#endif

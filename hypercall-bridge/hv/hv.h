/*
 * The hypervisor object of cleave-hv: its private state directory, trust state, the measured
 * corporate VM image, the corporate half's state, and the handlers it registers with the
 * dispatcher. Calls that only involve trust (status, attest, pin, lease, policy, receipts) live
 * here; orders that touch the volume and the VM are added by the files that own those.
 */
#ifndef CLEAVE_HV_H
#define CLEAVE_HV_H

#include <limits.h>
#include <stdint.h>

#include "dispatch.h"
#include "trust.h"

struct volume;

typedef uint64_t (*hv_clock_fn)(void); /* unix milliseconds */

struct hv {
	char state_dir[PATH_MAX];
	struct trust trust;
	struct dispatch d;
	uint8_t measurement[32];
	uint32_t state; /* HV_STATE_* */
	uint64_t key_epoch;
	hv_clock_fn clock;
	struct volume *vol;
};

/*
 * Opens the state directory (must exist and be private: mode 0700, owned by us), loads trust,
 * measures the guest image at guest_path (SHA-256 of the image and the VM config string), and
 * registers the trust handlers. 0 or -errno.
 */
int hv_open(struct hv *h, const char *state_dir, const char *guest_path, const char *vm_config,
	    hv_clock_fn clock);
void hv_close(struct hv *h);

/*
 * Opens (or creates, volume_mib large) the corporate volume, registers lock, unlock, rekey and
 * wipe, and finishes a wipe a crash interrupted. 0 or -errno. (orders.c)
 */
int hv_orders_open(struct hv *h, uint64_t volume_mib);
void hv_orders_close(struct hv *h);
/* Finishes an interrupted wipe, if any (called by hv_orders_open). */
int hv_resume_wipe(struct hv *h);

#endif

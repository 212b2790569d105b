/*
 * The corporate VM inside cleave-hv: booting it with the measured guest image, routing its
 * doorbell into the dispatcher as the guest-kernel caller class, pausing it for a lock and
 * destroying it (RAM zeroed by the VMM) for a wipe. Its console output is kept only in memory:
 * the corporate half's screen never reaches a file or the log.
 */
#include <errno.h>
#include <string.h>

#include "console.h"
#include "hv.h"
#include "hypercall-bridge/lib/bridge_msg.h"
#include "log.h"
#include "vmm.h"

static int64_t
guest_call(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4], uint64_t results[3])
{
	struct hv *h = ctx;
	struct dispatch_call c;
	int64_t r;

	/* Guest user mode may only discover; guest kernel mode gets the guest functions. */
	memset(&c, 0, sizeof(c));
	c.caller = cpl == 0 ? CALLER_GUEST_KERNEL : CALLER_GUEST_USER;
	c.fid = fid;
	memcpy(c.args, args, sizeof(c.args));
	r = dispatch_call(&h->d, &c);
	memcpy(results, c.results, sizeof(c.results));
	return r;
}

static void
console_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct hv *h = ctx;

	console_output(h->console, buf, len); /* memory and the attached client only */
}

size_t
hv_vm_feed(void *ctx, const uint8_t *buf, size_t len)
{
	struct hv *h = ctx;
	size_t n = 0;

	pthread_mutex_lock(&h->vm_lock);
	/* Keys typed at a locked screen are dropped, not run at the next unlock. */
	if (h->vm != NULL && h->state == HV_STATE_ACTIVE)
		n = vmm_serial_feed(h->vm, buf, len);
	else
		n = len;
	pthread_mutex_unlock(&h->vm_lock);
	return n;
}

int
hv_vm_boot(struct hv *h, size_t ram_mib)
{
	struct vmm_config cfg = {
		.ram_size = ram_mib << 20,
		.guest_path = h->guest_path,
		.serial = console_out,
		.serial_ctx = h,
		.dispatch = guest_call,
		.dispatch_ctx = h,
	};
	int r;

	if (h->linux_guest) {
		cfg.linux_guest = 1;
		cfg.linux_initrd = h->linux_initrd;
		cfg.linux_cmdline = h->linux_cmdline;
		hv_disk_backend(h, &cfg.disk);
	}
	h->ram_bytes = cfg.ram_size;
	h->kvm = vmm_kvm_available();
	if (!h->kvm) {
		log_warn("cleave-hv: /dev/kvm cannot be opened: the corporate VM does not run "
			 "(orders on the volume still work)");
		return 0;
	}
	if (h->vm != NULL || h->state != HV_STATE_ACTIVE)
		return 0;
	h->shared_gpa = 0;
	pthread_mutex_lock(&h->vm_lock);
	r = vmm_new(&cfg, &h->vm);
	if (r == 0)
		r = vmm_start(h->vm);
	if (r != 0) {
		vmm_free(h->vm);
		h->vm = NULL;
	}
	pthread_mutex_unlock(&h->vm_lock);
	if (r != 0) {
		log_err("cleave-hv: cannot start the corporate VM (%d)", r);
		return r;
	}
	log_info("cleave-hv: corporate VM running (%zu MiB)", ram_mib);
	return 0;
}

int
hv_vm_pause(struct hv *h)
{
	if (h->vm == NULL)
		return 0;
	vmm_stop(h->vm);
	return vmm_join(h->vm, 1000) == 0 ? 1 : -ETIMEDOUT;
}

int
hv_vm_resume(struct hv *h)
{
	if (h->vm == NULL)
		return hv_vm_boot(h, h->ram_bytes >> 20);
	return vmm_start(h->vm);
}

int
hv_vm_destroy(struct hv *h)
{
	struct vmm_stats st;

	if (h->vm == NULL)
		return 0;
	pthread_mutex_lock(&h->vm_lock);
	vmm_get_stats(h->vm, &st); /* CLV_FN_COUNTERS counts over every VM */
	h->past_exits += st.exits;
	for (unsigned i = 0; i < CALL_VIA_COUNT; i++)
		h->past_calls[i] += st.calls_by[i];
	vmm_free(h->vm); /* stops and joins the vCPU, zeroes guest RAM, unmaps it */
	h->vm = NULL;
	pthread_mutex_unlock(&h->vm_lock);
	h->shared_gpa = 0;
	console_clear(h->console);
	console_notice(h->console, "[cleave-hv] the corporate VM has stopped");
	return 1;
}

/*
 * The host's view of the VMs' work (agent only): exits and guest calls by transport since
 * cleave-hv started, so a test or an operator sees which transport the guest uses (ARM64.md).
 * On the main thread, which alone replaces h->vm; the VMM's own lock guards its counts.
 */
static int64_t
h_counters(void *ctx, struct dispatch_call *c)
{
	struct hv *h = ctx;
	struct clv_counters k = {.exits = h->past_exits,
				 .calls_port = h->past_calls[CALL_VIA_PORT],
				 .calls_mmio = h->past_calls[CALL_VIA_MMIO],
				 .calls_hvc = h->past_calls[CALL_VIA_HVC]};
	struct vmm_stats st;

	if (c->out == NULL || c->out_cap < 64)
		return CLV_E_INVALID_PARAMETER;
	if (h->vm != NULL) {
		vmm_get_stats(h->vm, &st);
		k.exits += st.exits;
		k.calls_port += st.calls_by[CALL_VIA_PORT];
		k.calls_mmio += st.calls_by[CALL_VIA_MMIO];
		k.calls_hvc += st.calls_by[CALL_VIA_HVC];
	}
	clv_counters_encode(&k, c->out);
	c->out_len = 64;
	return CLV_OK;
}

void
hv_vm_register(struct hv *h)
{
	dispatch_register(&h->d, CLV_FN_COUNTERS, h_counters);
}

void
hv_vm_sample(struct hv *h)
{
	pthread_mutex_lock(&h->vm_lock);
	if (h->vm != NULL)
		vmm_sample(h->vm);
	pthread_mutex_unlock(&h->vm_lock);
}

/*
 * cleave-hv's arm64 VMM (hypercall-bridge/hv/arch/arm64/ with the shared vmm.c and vcpu.c),
 * run once inside the emulated machine: boots /bin/hv_smoke_guest.bin with the built-in
 * dispatcher, copies the guest's console to stdout and prints one `hv_smoke:` line with how
 * the VM ended. The guest prints "ok", then Y when VERSION by the MMIO doorbell answered 1.0,
 * then powers off by PSCI, a clean stop. test_arm64_kvm runs it; the host decides.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

#define GUEST   "/bin/hv_smoke_guest.bin"
#define WAIT_MS 10000

static void
console_out(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	fwrite(buf, 1, len, stdout);
	fflush(stdout);
}

int
main(void)
{
	struct vmm_config cfg = {.guest_path = GUEST, .serial = console_out};
	struct vmm_stats st;
	struct vmm *vm;
	int rc = vmm_new(&cfg, &vm);

	if (rc < 0) {
		printf("hv_smoke: vmm_new: %s\n", strerror(-rc));
		return 1;
	}
	rc = vmm_start(vm);
	if (rc == 0)
		rc = vmm_join(vm, WAIT_MS);
	vmm_get_stats(vm, &st);
	printf("hv_smoke: join %d state %d stop_err %d exits %llu doorbells %llu\n", rc,
	       (int)st.state, st.stop_err, (unsigned long long)st.exits,
	       (unsigned long long)st.doorbells);
	vmm_free(vm);
	/* SYSTEM_OFF is a clean power-off (stopped, no error): the expected end of this guest. */
	return rc == 0 && st.state == VMM_STOPPED && st.stop_err == 0 && st.doorbells == 1 ? 0 : 1;
}

/*
 * cleave-hv's arm64 VMM (hypercall-bridge/hv/arch/arm64/ with the shared vmm.c and vcpu.c),
 * run once inside the emulated machine: boots /bin/hv_smoke_guest.bin with the built-in
 * dispatcher, copies the guest's console to stdout and prints one `hv_smoke:` line with how
 * the VM ended. The guest prints "ok", then Y when VERSION by the MMIO doorbell answered 1.0,
 * then powers off by PSCI, a clean stop. Then /bin/hv_fault_guest.bin, which faults on purpose
 * under the corporate guest's vector table: the VM must end as faulted. test_arm64_kvm runs it;
 * the host decides.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

#define GUEST       "/bin/hv_smoke_guest.bin"
#define FAULT_GUEST "/bin/hv_fault_guest.bin"
#define WAIT_MS     10000

static void
console_out(void *ctx, const uint8_t *buf, size_t len)
{
	(void)ctx;
	fwrite(buf, 1, len, stdout);
	fflush(stdout);
}

/* Runs the guest at path to its end; prints one `hv_smoke:` line; 0 when it ended as wanted. */
static int
run_guest(const char *path, const char *label, int want_state, int want_err, unsigned want_db)
{
	struct vmm_config cfg = {.guest_path = path, .serial = console_out};
	struct vmm_stats st;
	struct vmm *vm;
	int rc = vmm_new(&cfg, &vm);

	if (rc < 0) {
		printf("hv_smoke: %svmm_new: %s\n", label, strerror(-rc));
		return 1;
	}
	rc = vmm_start(vm);
	if (rc == 0)
		rc = vmm_join(vm, WAIT_MS);
	vmm_get_stats(vm, &st);
	printf("hv_smoke: %sjoin %d state %d stop_err %d exits %llu doorbells %llu\n", label, rc,
	       (int)st.state, st.stop_err, (unsigned long long)st.exits,
	       (unsigned long long)st.doorbells);
	vmm_free(vm);
	return rc == 0 && (int)st.state == want_state && st.stop_err == want_err &&
			       st.doorbells == want_db
		       ? 0
		       : 1;
}

int
main(void)
{
	/* SYSTEM_OFF is a clean power-off (stopped, no error): the expected end of this guest. */
	int rc = run_guest(GUEST, "", VMM_STOPPED, 0, 1);

	/* The fault guest's undefined instruction: the vectors end the VM as faulted (-EFAULT). */
	return rc | run_guest(FAULT_GUEST, "fault guest: ", VMM_FAULTED, -EFAULT, 0);
}

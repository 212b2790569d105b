/*
 * Boots the corporate test guest (build/guest/guest.bin) under the cleave-hv VMM library on
 * real KVM: banner and ABI check on the serial console, the line console's version command,
 * stopping the vCPU from another thread (the lock path) and starting it again, and teardown.
 * Prints, never asserts, start-to-first-byte time and the doorbell round trip. Skips (exit 77)
 * where /dev/kvm cannot be opened; fails without the guest image. It does not test the real
 * hypercall dispatcher.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "hypercall-bridge/hv/vmm.h"
#include "testlib.h"

#define CONSOLE_CAP 65536

struct console {
	pthread_mutex_t lock;
	pthread_cond_t grew;
	char buf[CONSOLE_CAP + 1];
	size_t len;
	int64_t first_ns; /* CLOCK_MONOTONIC of the first byte, 0 before */
};

static struct console con = {.lock = PTHREAD_MUTEX_INITIALIZER, .grew = PTHREAD_COND_INITIALIZER};
static char guest_path[PATH_MAX];

static int64_t
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
console_out(void *ctx, const uint8_t *buf, size_t len)
{
	struct console *c = ctx;

	pthread_mutex_lock(&c->lock);
	if (c->first_ns == 0)
		c->first_ns = mono_ns();
	for (size_t i = 0; i < len && c->len < CONSOLE_CAP; i++)
		c->buf[c->len++] = (char)buf[i];
	c->buf[c->len] = '\0';
	pthread_cond_broadcast(&c->grew);
	pthread_mutex_unlock(&c->lock);
}

static void
console_reset(void)
{
	pthread_mutex_lock(&con.lock);
	con.len = 0;
	con.buf[0] = '\0';
	con.first_ns = 0;
	pthread_mutex_unlock(&con.lock);
}

/* Waits (bounded by timeout_ms) for want to appear at or after offset from; returns its end. */
static long
console_wait(const char *want, size_t from, int timeout_ms)
{
	int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
	long end = -1;

	pthread_mutex_lock(&con.lock);
	for (;;) {
		const char *hit = from <= con.len ? strstr(con.buf + from, want) : NULL;
		struct timespec ts;

		if (hit != NULL) {
			end = (long)(hit - con.buf) + (long)strlen(want);
			break;
		}
		if (mono_ns() >= deadline)
			break;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 20000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&con.grew, &con.lock, &ts);
	}
	pthread_mutex_unlock(&con.lock);
	return end;
}

static size_t
console_len(void)
{
	size_t n;

	pthread_mutex_lock(&con.lock);
	n = con.len;
	pthread_mutex_unlock(&con.lock);
	return n;
}

static void
feed(struct vmm *vm, const char *s)
{
	vmm_serial_feed(vm, (const uint8_t *)s, strlen(s));
}

/* Creates and starts a VM on the test guest and waits for its prompt; NULL on failure. */
/* Doorbell calls by the guest privilege level the VMM reported. */
static atomic_long calls_cpl0, calls_cpl3;

static int64_t
counting_dispatch(void *ctx, uint32_t fid, unsigned cpl, uint64_t args[4], uint64_t results[3])
{
	atomic_fetch_add(cpl == 0 ? &calls_cpl0 : &calls_cpl3, 1);
	return vmm_dispatch_default(ctx, fid, cpl, args, results);
}

static struct vmm *
boot(void)
{
	struct vmm_config cfg = {
		.guest_path = guest_path,
		.serial = console_out,
		.serial_ctx = &con,
		.dispatch = counting_dispatch,
	};

	atomic_store(&calls_cpl0, 0);
	atomic_store(&calls_cpl3, 0);
	struct vmm *vm;
	int rc;

	console_reset();
	rc = vmm_new(&cfg, &vm);
	if (rc < 0) {
		t_fail(__FILE__, __LINE__, "vmm_new: %s", strerror(-rc));
		return NULL;
	}
	rc = vmm_start(vm);
	if (rc < 0) {
		t_fail(__FILE__, __LINE__, "vmm_start: %s", strerror(-rc));
		vmm_free(vm);
		return NULL;
	}
	if (console_wait("corp> ", 0, 10000) < 0) {
		t_fail(__FILE__, __LINE__, "no prompt within 10 s; console: %s", con.buf);
		vmm_free(vm);
		return NULL;
	}
	return vm;
}

static void
test_kvm_boot_banner(void)
{
	struct vmm_stats st;
	int64_t t_abi;
	struct vmm *vm = boot();

	if (vm == NULL)
		return;
	t_abi = mono_ns();
	vmm_get_stats(vm, &st);
	printf("    timing: vmm_new -> first KVM_RUN %.3f ms, -> first serial byte %.3f ms, "
	       "-> prompt %.3f ms (%llu exits)\n",
	       (double)(st.first_run_ns - st.created_ns) / 1e6,
	       (double)(con.first_ns - st.created_ns) / 1e6, (double)(t_abi - st.created_ns) / 1e6,
	       (unsigned long long)st.exits);
	if (strstr(con.buf, "cleave corporate guest") == NULL ||
	    strstr(con.buf, "abi 1.1") == NULL) {
		vmm_free(vm);
		CHECK(0, "banner or abi line missing: %s", con.buf);
	}
	vmm_get_stats(vm, &st);
	vmm_free(vm);
	CHECK(st.doorbells >= 1, "the guest made no hypercall");
	CHECK(st.unknown_pio == 0, "%llu accesses to unknown ports",
	      (unsigned long long)st.unknown_pio);
}

static void
test_kvm_boot_console_version(void)
{
	struct vmm *vm = boot();
	size_t from;
	long v, h;

	if (vm == NULL)
		return;
	from = console_len();
	feed(vm, "version\n");
	v = console_wait("version: abi 1.1", from, 10000);
	from = console_len();
	feed(vm, "help\n");
	h = console_wait("ping - ", from, 10000);
	from = console_len();
	feed(vm, "bogus\n");
	long u = console_wait("unknown command: bogus", from, 10000);
	vmm_free(vm);
	CHECK(v >= 0, "no version reply: %s", con.buf);
	CHECK(h >= 0, "no help reply: %s", con.buf);
	CHECK(u >= 0, "no unknown-command reply: %s", con.buf);
}

/* Stops the vCPU while the guest is busy in hypercalls, then lets it finish. */
static void
test_kvm_boot_stop_and_resume(void)
{
	struct vmm_stats before, after;
	struct vmm *vm = boot();
	int64_t t0;
	size_t from;
	long pong;
	int rc, rc2;

	if (vm == NULL)
		return;
	from = console_len();
	feed(vm, "ping 20000\n");
	console_wait("ping 20000", from, 5000); /* the echo: the guest is now in the loop */
	t0 = mono_ns();
	vmm_stop(vm);
	rc = vmm_join(vm, 1000);
	printf("    timing: stop -> run loop exited %.3f ms\n", (double)(mono_ns() - t0) / 1e6);
	vmm_get_stats(vm, &before);
	rc2 = rc == 0 ? vmm_start(vm) : rc;
	pong = rc2 == 0 ? console_wait("pong 20000", from, 20000) : -1;
	vmm_get_stats(vm, &after);
	vmm_free(vm);
	CHECK(rc == 0, "run loop did not exit within 1 s: %s", strerror(-rc));
	CHECK(before.state == VMM_STOPPED, "state %d after stop", before.state);
	CHECK(rc2 == 0, "restart: %s", strerror(-rc2));
	CHECK(pong >= 0, "guest did not finish its calls after the restart: %s",
	      con.buf + (from < con.len ? from : 0));
	CHECK(after.doorbells > before.doorbells, "no hypercall after the restart");
}

/* Stops a vCPU that never leaves KVM_RUN by itself: only the kick signal can get it out. */
static void
test_kvm_boot_stop_spinning(void)
{
	struct vmm_stats st;
	struct vmm *vm = boot();
	int64_t t0;
	size_t from;
	long spin;
	int rc;

	if (vm == NULL)
		return;
	from = console_len();
	feed(vm, "spin\n");
	spin = console_wait("spinning\r\n", from, 5000);
	t0 = mono_ns();
	vmm_stop(vm);
	rc = vmm_join(vm, 1000);
	printf("    timing: stop of a spinning vCPU -> run loop exited %.3f ms\n",
	       (double)(mono_ns() - t0) / 1e6);
	vmm_get_stats(vm, &st);
	vmm_free(vm);
	CHECK(spin >= 0, "the guest did not start spinning: %s", con.buf);
	CHECK(rc == 0, "run loop did not exit within 1 s: %s", strerror(-rc));
	CHECK(st.state == VMM_STOPPED, "state %d after stop", st.state);
}

static void
test_kvm_boot_doorbell_round_trip(void)
{
	struct vmm *vm = boot();
	int64_t t0, t1, t2;
	size_t from;
	long a, b;

	if (vm == NULL)
		return;
	/* ping 1 measures the console round trip alone; ping 201 adds 200 calls. */
	from = console_len();
	t0 = mono_ns();
	feed(vm, "ping 1\n");
	a = console_wait("pong 1\r", from, 10000);
	t1 = mono_ns();
	from = console_len();
	feed(vm, "ping 201\n");
	b = console_wait("pong 201", from, 20000);
	t2 = mono_ns();
	vmm_free(vm);
	/* the console's calls come from guest kernel mode, and the VMM must say so */
	CHECK(atomic_load(&calls_cpl0) >= 202 && atomic_load(&calls_cpl3) == 0,
	      "kernel-mode calls reported as cpl0 %ld cpl3 %ld", atomic_load(&calls_cpl0),
	      atomic_load(&calls_cpl3));
	CHECK(a >= 0 && b >= 0, "no pong: %s", con.buf);
	printf("    timing: doorbell round trip %.1f us (200 calls from guest CPL 0)\n",
	       (double)((t2 - t1) - (t1 - t0)) / 200 / 1e3);
}

/* Polls (50 us) until the VM has answered at least want doorbells; 0 or -1 after timeout_ms. */
static int
wait_doorbells(struct vmm *vm, uint64_t want, int timeout_ms, int64_t *when)
{
	int64_t deadline = mono_ns() + (int64_t)timeout_ms * 1000000;
	struct timespec nap = {0, 50000};
	struct vmm_stats st;

	do {
		vmm_get_stats(vm, &st);
		if (st.doorbells >= want) {
			*when = mono_ns();
			return 0;
		}
		nanosleep(&nap, NULL);
	} while (mono_ns() < deadline && st.state == VMM_RUNNING);
	return -1;
}

/* The doorbell from guest user mode, which runs natively here; the guest never comes back. */
static void
test_kvm_boot_user_mode_doorbell(void)
{
	struct vmm_stats st;
	struct vmm *vm = boot();
	int64_t t1 = 0, t2 = 0;
	int a, b, rc;

	if (vm == NULL)
		return;
	vmm_get_stats(vm, &st);
	feed(vm, "ubench 1001\n");
	a = wait_doorbells(vm, st.doorbells + 1, 10000, &t1);
	b = a == 0 ? wait_doorbells(vm, st.doorbells + 1001, 20000, &t2) : -1;
	vmm_stop(vm);
	rc = vmm_join(vm, 1000);
	vmm_get_stats(vm, &st);
	vmm_free(vm);
	CHECK(a == 0 && b == 0, "user-mode calls did not all arrive (state %d, err %d)", st.state,
	      st.stop_err);
	CHECK(atomic_load(&calls_cpl3) >= 1001, "user-mode calls must be reported as CPL 3 (%ld)",
	      atomic_load(&calls_cpl3));
	CHECK(rc == 0, "run loop did not exit within 1 s");
	printf("    timing: doorbell round trip %.1f us (1000 calls from guest CPL 3)\n",
	       (double)(t2 - t1) / 1000 / 1e3);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"boot_banner", test_kvm_boot_banner},
		{"console_version", test_kvm_boot_console_version},
		{"stop_and_resume", test_kvm_boot_stop_and_resume},
		{"stop_spinning", test_kvm_boot_stop_spinning},
		{"doorbell_round_trip", test_kvm_boot_doorbell_round_trip},
		{"user_mode_doorbell", test_kvm_boot_user_mode_doorbell},
	};
	const char *env = getenv("CLEAVE_GUEST");
	const char *bin = getenv("CLEAVE_BIN");

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (env != NULL)
		snprintf(guest_path, sizeof(guest_path), "%s", env);
	else if (bin != NULL)
		snprintf(guest_path, sizeof(guest_path), "%s/../guest/guest.bin", bin);
	else
		snprintf(guest_path, sizeof(guest_path), "build/guest/guest.bin");
	/* `make all` builds the guest everywhere: without it the build is broken, not the host */
	if (access(guest_path, R_OK) != 0) {
		printf("FAIL: no guest image at %s (make all builds it)\n", guest_path);
		return 1;
	}
	if (!vmm_kvm_available()) {
		printf("skipped: /dev/kvm unavailable\n");
		return T_EXIT_SKIP;
	}
	return t_run(cases, sizeof(cases) / sizeof(cases[0]), argc, argv);
}

/*
 * The vCPU thread: KVM_RUN, copy the exit out of kvm_run, decode it (exit_decode.c), carry out
 * the action, repeat until stopped or the guest faults. Stopping from another thread uses the
 * documented KVM pattern: set kvm_run.immediate_exit, then signal the thread so that a KVM_RUN
 * in progress returns -EINTR and one about to start returns at once. This file does not decide
 * what any port means; devices do.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include "exit_decode.h"
#include "log.h"
#include "vmm_priv.h"

#define UNKNOWN_LOG_MAX 16 /* log this many unknown-port accesses per VM, then only count */
#define HALT_SLICE_MS   200

static int
kick_signal(void)
{
	return SIGRTMIN + VMM_KICK_SIGNAL_OFFSET;
}

static void
kick_handler(int sig)
{
	(void)sig; /* its only job is to interrupt KVM_RUN */
}

int
vcpu_kick_init(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = kick_handler;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must return -EINTR */
	if (sigaction(kick_signal(), &sa, NULL) < 0) {
		log_errno(errno, "vmm: sigaction for the vCPU kick signal");
		return -errno;
	}
	return 0;
}

static void
deadline_after_ms(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/*
 * An access to a device; the doorbell gets the call registers read and written back by the
 * architecture (arch_call_read/write). A read's value goes where the exit decoder found the
 * data slot inside kvm_run.
 */
static int
vcpu_do_pio(struct vmm *vm, struct exit_action *a, uint32_t data_off)
{
	int want_regs = (a->dev->flags & BUS_F_REGS) != 0;
	int rc;

	if (want_regs) {
		rc = arch_call_read(vm, &a->io);
		if (rc < 0)
			return rc;
	}
	rc = a->dev->io(a->dev->ctx, &a->io);
	if (rc < 0)
		log_warn("vmm: %s port 0x%x: error %d", a->dev->name, a->io.port, rc);
	if (want_regs && a->io.regs_dirty) {
		rc = arch_call_write(vm, &a->io);
		if (rc < 0)
			return rc;
	}
	if (!a->io.is_write)
		memcpy((uint8_t *)vm->run + data_off, &a->io.value, a->io.size);
	return 0;
}

static void
vcpu_unknown_pio(struct vmm *vm, struct exit_action *a, uint32_t data_off)
{
	if (vm->unknown_logged < UNKNOWN_LOG_MAX) {
		vm->unknown_logged++;
		log_warn("vmm: %s: %s port 0x%x size %u%s", a->why, a->io.is_write ? "out" : "in",
			 a->io.port, a->io.size,
			 vm->unknown_logged == UNKNOWN_LOG_MAX ? " (no more such logs)" : "");
	}
	if (!a->io.is_write)
		memcpy((uint8_t *)vm->run + data_off, &a->io.value, a->io.size);
}

/*
 * Sleeps until console input arrives or a stop is requested; slices > 0 bounds the wait to that
 * many HALT_SLICE_MS slices (arm64's UART status read, which may also be a transmitter poll),
 * slices <= 0 waits as long as it takes (x86's hlt).
 */
void
vmm_wait_input(struct vmm *vm, int slices)
{
	struct timespec ts;

	pthread_mutex_lock(&vm->lock);
	while (!atomic_load(&vm->stop) && !serial_has_input(&vm->serial)) {
		deadline_after_ms(&ts, HALT_SLICE_MS);
		pthread_cond_timedwait(&vm->wake, &vm->lock, &ts);
		if (slices > 0 && --slices == 0)
			break;
	}
	pthread_mutex_unlock(&vm->lock);
}

/* Carries out one decoded exit. Returns 0 to keep running or a negative errno to fault. */
static int
vcpu_handle(struct vmm *vm, const struct exit_info *info, struct exit_action *a)
{
	int rc = 0;

	pthread_mutex_lock(&vm->lock);
	vm->stats.exits++;
	vm->stats.pio += a->act == EXIT_ACT_PIO || a->act == EXIT_ACT_PIO_UNKNOWN;
	vm->stats.unknown_pio += a->act == EXIT_ACT_PIO_UNKNOWN;
	vm->stats.halts += a->act == EXIT_ACT_HALT;
	pthread_mutex_unlock(&vm->lock);
	switch (a->act) {
	case EXIT_ACT_PIO:
		rc = vcpu_do_pio(vm, a, info->io_data_off);
		break;
	case EXIT_ACT_PIO_UNKNOWN:
		vcpu_unknown_pio(vm, a, info->io_data_off);
		break;
	case EXIT_ACT_HALT:
		vmm_wait_input(vm, 0);
		break;
	case EXIT_ACT_POWER_OFF:
		/* The guest asked to end (arm64 PSCI SYSTEM_OFF): a clean stop, not a fault. */
		log_info("vmm: the guest powered off");
		atomic_store(&vm->stop, 1);
		break;
	case EXIT_ACT_STOP:
		log_warn("vmm: stopping the VM: %s (exit %u, hw 0x%llx, suberror %u, mmio 0x%llx)",
			 a->why, info->reason, (unsigned long long)info->fail_reason,
			 info->suberror, (unsigned long long)info->mmio_addr);
		arch_log_state(vm);
		rc = a->err;
		break;
	case EXIT_ACT_RESUME:
	case EXIT_ACT_INTR:
		break;
	}
	return rc;
}

static void
vcpu_finish(struct vmm *vm, int err)
{
	pthread_mutex_lock(&vm->lock);
	vm->stats.state = err < 0 ? VMM_FAULTED : VMM_STOPPED;
	vm->stats.stop_err = err;
	atomic_store(&vm->running, 0);
	pthread_cond_broadcast(&vm->done);
	pthread_mutex_unlock(&vm->lock);
}

void *
vcpu_thread(void *arg)
{
	struct vmm *vm = arg;
	struct exit_info info;
	struct exit_action act;
	sigset_t set;
	int err = 0;

	sigemptyset(&set);
	sigaddset(&set, kick_signal());
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	pthread_mutex_lock(&vm->lock);
	if (vm->stats.first_run_ns == 0)
		vm->stats.first_run_ns = vmm_now_ns();
	pthread_mutex_unlock(&vm->lock);
	/* Ends only on a stop request or a fault: a running guest is not bounded by us. */
	while (!atomic_load(&vm->stop)) {
		if (ioctl(vm->vcpu_fd, KVM_RUN, 0) < 0) {
			if ((errno == EINTR || errno == EAGAIN) &&
			    atomic_exchange(&vm->sample, 0)) {
				arch_log_state(vm); /* vmm_sample: where the guest is */
				if (!atomic_load(&vm->stop))
					vm->run->immediate_exit = 0;
			}
			if (errno == EINTR || errno == EAGAIN)
				continue;
			log_errno(errno, "vmm: KVM_RUN");
			err = -errno;
			break;
		}
		exit_info_copy(vm->run, vm->run_size, &info);
		exit_decode(&vm->bus, &info, &act);
		err = vcpu_handle(vm, &info, &act);
		if (err < 0)
			break;
	}
	vcpu_finish(vm, err);
	return NULL;
}

int
vmm_start(struct vmm *vm)
{
	int rc;

	if (vm->thread_live) {
		if (atomic_load(&vm->running))
			return -EALREADY;
		vmm_join(vm, 1000);
	}
	if (vm->stats.state == VMM_FAULTED)
		return -EIO;
	atomic_store(&vm->stop, 0);
	vm->run->immediate_exit = 0;
	arch_run_prepare(vm);
	vm->stats.state = VMM_RUNNING;
	atomic_store(&vm->running, 1);
	rc = pthread_create(&vm->thread, NULL, vcpu_thread, vm);
	if (rc != 0) {
		atomic_store(&vm->running, 0);
		vm->stats.state = VMM_STOPPED;
		log_errno(rc, "vmm: pthread_create");
		return -rc;
	}
	vm->thread_live = 1;
	return 0;
}

void
vmm_stop(struct vmm *vm)
{
	atomic_store(&vm->stop, 1);
	vm->run->immediate_exit = 1;
	pthread_mutex_lock(&vm->lock);
	pthread_cond_broadcast(&vm->wake);
	pthread_mutex_unlock(&vm->lock);
	if (vm->thread_live && atomic_load(&vm->running))
		pthread_kill(vm->thread, kick_signal());
}

void
vmm_sample(struct vmm *vm)
{
	if (!vm->thread_live || !atomic_load(&vm->running))
		return;
	atomic_store(&vm->sample, 1);
	vm->run->immediate_exit = 1;
	pthread_kill(vm->thread, kick_signal());
}

int
vmm_join(struct vmm *vm, int timeout_ms)
{
	struct timespec ts;
	int alive;

	if (!vm->thread_live)
		return -ESRCH;
	deadline_after_ms(&ts, timeout_ms);
	pthread_mutex_lock(&vm->lock);
	while (atomic_load(&vm->running)) {
		if (pthread_cond_timedwait(&vm->done, &vm->lock, &ts) == ETIMEDOUT)
			break;
	}
	alive = atomic_load(&vm->running);
	pthread_mutex_unlock(&vm->lock);
	if (alive)
		return -ETIMEDOUT;
	pthread_join(vm->thread, NULL);
	vm->thread_live = 0;
	return 0;
}

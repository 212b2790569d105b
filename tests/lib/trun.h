/*
 * The minimal test runner every integration test uses (cases, CHECK/SKIP, child processes that
 * a failing case leaves behind, a line per case and "N passed, N failed, N skipped"), apart from
 * testlib.h's server and HTTPS helpers so that it needs nothing but libc: the hypervisor suites
 * are also cross-built for arm64 with it (tests/arm64/README.md). Tests and benchmarks only.
 */
#ifndef CLEAVE_TEST_TRUN_H
#define CLEAVE_TEST_TRUN_H

#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

/*
 * A suite that cannot run at all here prints "skipped: REASON" and exits T_EXIT_SKIP (77, as
 * automake does); tests/run.sh counts it as skipped and shows the reason. A case that cannot run
 * calls SKIP(reason): t_run reports it as skipped, and exits T_EXIT_SKIP when every case did.
 * Only a missing facility of the machine (/dev/kvm, root) is a reason to skip; anything the
 * build should have made (the guest image, a binary) missing is a failure.
 */
#define T_EXIT_SKIP 77

extern int t_failed_now;
void t_fail(const char *file, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			t_fail(__FILE__, __LINE__, __VA_ARGS__);                                   \
			return;                                                                    \
		}                                                                                  \
	} while (0)
#define SKIP(...)                                                                                  \
	do {                                                                                       \
		t_skip(__VA_ARGS__);                                                               \
		return;                                                                            \
	} while (0)
#define CHECK_STATUS(resp, want)                                                                   \
	CHECK((resp).status == (want), "HTTP %ld, want %d: %.300s", (resp).status, (want),         \
	      (resp).body ? (resp).body : "")

struct t_case {
	const char *name;
	void (*fn)(void);
};
/*
 * Registers (add=1) or forgets (add=0) a child process; whatever is still registered when a
 * case ends is killed and reaped by t_run, so a failing case never leaves processes behind.
 */
void t_track_child(pid_t pid, int add);
/*
 * Removes path (rm -rf) when the current case ends, passed or failed. For what a case must put
 * outside $CLEAVE_TEST_OUT (a directory another uid can reach), so that nothing is left there.
 */
void t_remove_after_case(const char *path);
/*
 * Sends sig to a tracked child and reaps it (bounded by timeout_ms; then SIGKILL). Returns its
 * exit code, 128 + the signal that ended it, or -1 when it had to be killed or was not ours.
 */
int t_stop_child(pid_t pid, int sig, int timeout_ms);
/*
 * Stops *pid (if running) with SIGTERM as a supervisor would, and fails the current case unless
 * it exits 0: a crash, a hang, or (under `make asan`) a leak or sanitizer report at exit. what
 * names the process in the message; log (may be NULL) is where its output went. Exit status.
 */
int t_stop_graceful(pid_t *pid, const char *what, const char *log);
/*
 * Runs every case (or those named in argv), prints a line each and "N passed, N failed,
 * N skipped". Exit code: 0, 1 when a case failed, T_EXIT_SKIP when every case skipped.
 * "--list" alone prints the case names, one a line, and runs nothing (test_arm64_kvm compares
 * the x86 build's list with what the arm64 build of the same suite ran).
 */
int t_run(const struct t_case *cases, size_t n, int argc, char **argv);

/* Monotonic seconds. */
double now_s(void);
/*
 * A TCP port free on 127.0.0.1 a moment ago (its user binds it right after), below the kernel's
 * ephemeral range so that no outgoing connection takes it meanwhile; 0 on failure.
 */
unsigned t_free_port(void);

/*
 * The factor timeouts that wait for cleave-hv or its guest are multiplied by: CLEAVE_TEST_SLOW
 * (a whole number 1..50; 1 when unset or invalid). The arm64 suites set it inside QEMU's
 * emulated machine, where everything runs tens of times slower; x86 runs leave it unset.
 */
int t_slow(void);

#endif

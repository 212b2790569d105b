/* QEMU's emulated arm64 machine for the host tests (arm64vm.h). */
#include "arm64vm.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

char arm64_dir[PATH_MAX];
char qemu_path[PATH_MAX];

/* The first executable qemu-system-aarch64 on PATH, into qemu_path; 0 or -1. */
static int
find_qemu(void)
{
	const char *path = getenv("PATH");
	char buf[4096];

	snprintf(buf, sizeof(buf), "%s", path != NULL ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		snprintf(qemu_path, sizeof(qemu_path), "%s/qemu-system-aarch64", d);
		if (access(qemu_path, X_OK) == 0)
			return 0;
	}
	return -1;
}

/* Reads the whole log file (at most LOG_CAP bytes) into b->log, serial CRs dropped. */
static void
read_log(struct boot *b, const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = 0;
	int c;

	while (f != NULL && n < LOG_CAP && (c = getc(f)) != EOF)
		if (c != '\r')
			b->log[n++] = (char)c;
	if (f != NULL)
		fclose(f);
	b->log[n] = '\0';
}

static pid_t
spawn_qemu(const struct boot *b, const char *log_path)
{
	char kernel[PATH_MAX], initrd[PATH_MAX], append[512];

	snprintf(kernel, sizeof(kernel), "%s/vmlinuz-%s", arm64_dir, b->kernel);
	snprintf(initrd, sizeof(initrd), "%s/%s", arm64_dir, b->image);
	/* panic=-1 with -no-reboot: a kernel panic ends QEMU at once instead of hanging. */
	snprintf(append, sizeof(append), "console=ttyAMA0 panic=-1 %s -- %s", b->extra, b->progs);
	const char *argv[40] = {qemu_path,   "-M",      "virt,virtualization=on,gic-version=3",
				"-cpu",      b->cpu,    "-smp",
				"1",         "-m",      "512",
				"-nic",      "none",    "-kernel",
				kernel,      "-initrd", initrd,
				"-append",   append,    "-nographic",
				"-no-reboot"};
	size_t n = 19;

	for (size_t i = 0; b->qemu_args != NULL && b->qemu_args[i] != NULL && n < 39; i++)
		argv[n++] = b->qemu_args[i];
	argv[n] = NULL;
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	/* The child: the CPU is shared with the rest of the suite, so QEMU runs niced. */
	setpriority(PRIO_PROCESS, 0, 10);
	int in = open("/dev/null", O_RDONLY);
	int out = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	execv(qemu_path, (char *const *)argv);
	_exit(127);
}

/* Starts QEMU for b in the background (boot_poll, boot_finish follow). 0 or -1. */
int
boot_start(struct boot *b, const char *tag)
{
	const char *out = getenv("CLEAVE_TEST_OUT");

	snprintf(b->log_path, sizeof(b->log_path), "%s/arm64-%s.log", out != NULL ? out : "/tmp",
		 tag);
	b->t0 = now_s();
	b->status = -1;
	b->pid = spawn_qemu(b, b->log_path);
	if (b->pid < 0)
		return -1;
	t_track_child(b->pid, 1);
	return 0;
}

/* Reads the console so far into b->log (and the timings); 1 once QEMU has ended, else 0. */
int
boot_poll(struct boot *b)
{
	int st;
	pid_t w;
	double t = now_s() - b->t0;

	if (b->pid <= 0)
		return 1;
	w = waitpid(b->pid, &st, WNOHANG);
	read_log(b, b->log_path);
	if (b->boot_s == 0 && strstr(b->log, "cleave-init: start") != NULL)
		b->boot_s = t;
	if (b->result_s == 0 && strstr(b->log, "result: ") != NULL)
		b->result_s = t;
	if (w == b->pid) {
		b->status = st;
		b->exit_s = t;
		t_track_child(b->pid, 0);
		b->pid = 0;
	}
	return b->pid == 0;
}

/* Waits for QEMU to end (killed past the limit), keeps its console, removes its log. 0. */
int
boot_finish(struct boot *b)
{
	int limit = b->limit_s > 0 ? b->limit_s : RUN_LIMIT_S;

	while (!boot_poll(b) && now_s() - b->t0 < limit)
		usleep(50 * 1000);
	if (b->pid > 0) { /* still running: ours to kill, by its pid */
		t_stop_child(b->pid, SIGKILL, 5000);
		b->pid = 0;
	}
	read_log(b, b->log_path);
	unlink(b->log_path);
	return 0;
}

/* Boots b, waits (bounded) for QEMU to end, and keeps its console and timings in b. 0 or -1. */
int
boot_run(struct boot *b, const char *tag)
{
	return boot_start(b, tag) == 0 ? boot_finish(b) : -1;
}

/* Prints the console lines that are not the kernel's own ("[    1.234] ..."), and kvm's. */
void
print_console(const struct boot *b)
{
	const char *p = b->log;

	while (*p != '\0') {
		const char *nl = strchr(p, '\n');
		int len = nl != NULL ? (int)(nl - p) : (int)strlen(p);
		if (p[0] != '[' || memmem(p, (size_t)len, "kvm [", 5) != NULL ||
		    memmem(p, (size_t)len, "Kernel panic", 12) != NULL)
			printf("    | %.*s\n", len, p);
		p += len + (nl != NULL);
	}
}

/* Each of want[] must appear in the log after the previous one; names the first that did not. */
const char *
missing_in_order(const char *log, const char *const *want, size_t n)
{
	const char *at = log;

	for (size_t i = 0; i < n; i++) {
		const char *hit = strstr(at, want[i]);
		if (hit == NULL)
			return want[i];
		at = hit + strlen(want[i]);
	}
	return NULL;
}

/* Why b cannot boot on this machine (QEMU or the kernel missing), or NULL. */
const char *
boot_skip_reason(const struct boot *b)
{
	static char why[PATH_MAX + 128];
	char path[PATH_MAX];

	if (qemu_path[0] == '\0')
		return "qemu-system-aarch64 not installed (scripts/deps.sh installs "
		       "qemu-system-arm)";
	snprintf(path, sizeof(path), "%s/vmlinuz-%s", arm64_dir, b->kernel);
	if (access(path, R_OK) == 0)
		return NULL;
	snprintf(why, sizeof(why),
		 "no %s: `make arm64` fetches Debian's arm64 %s kernel with apt (network)", path,
		 b->kernel);
	return why;
}

/* After boot_finish: prints the console and timings, checks QEMU's end and KVM's mode line. */
void
boot_end_checked(struct boot *b, const char *mode_line)
{
	print_console(b);
	printf("    time: init started %.1f s, result %.1f s, QEMU ended %.1f s after spawn\n",
	       b->boot_s, b->result_s, b->exit_s);
	CHECK(b->status != -1, "QEMU did not end within %d s (killed)",
	      b->limit_s > 0 ? b->limit_s : RUN_LIMIT_S);
	CHECK(WIFEXITED(b->status) && WEXITSTATUS(b->status) == 0,
	      "QEMU ended with wait status 0x%x", b->status);
	CHECK(strstr(b->log, mode_line) != NULL, "the kernel did not report \"%s\"", mode_line);
}

/*
 * Boots b (kernel, cpu, extra, image and progs set) and checks that the machine came up, ran and
 * powered off with KVM in the mode mode_line names. Skips only when QEMU or the kernel is
 * missing; a missing image is a broken build.
 */
void
boot_checked(struct boot *b, const char *tag, const char *mode_line)
{
	char path[PATH_MAX];
	const char *why = boot_skip_reason(b);

	if (why != NULL)
		SKIP("%s", why);
	snprintf(path, sizeof(path), "%s/%s", arm64_dir, b->image);
	CHECK(access(path, R_OK) == 0, "no %s: `make all` builds it (gcc-aarch64-linux-gnu)", path);
	CHECK(boot_run(b, tag) == 0, "could not start %s", qemu_path);
	boot_end_checked(b, mode_line);
}

/* The line of log just before the first line that starts with marker, into out; 0 or -1. */
int
line_before(const char *log, const char *marker, char *out, size_t cap)
{
	const char *hit = strstr(log, marker), *start;

	if (hit == NULL || hit - log < 2 || hit[-1] != '\n')
		return -1;
	for (start = hit - 2; start > log && start[-1] != '\n'; start--)
		;
	if ((size_t)(hit - 1 - start) >= cap)
		return -1;
	memcpy(out, start, (size_t)(hit - 1 - start));
	out[hit - 1 - start] = '\0';
	return 0;
}

/*
 * Whether BUILD/arm64/image is there to boot: NULL when it is; else why not, with *broken set
 * when the build failed (what it needs from the network, BUILD/arm64/needs, was fetched: the
 * case fails) rather than this machine lacking the network (it skips). target builds it.
 */
const char *
image_missing(const char *image, const char *needs, const char *target, int *broken)
{
	static char why[2 * PATH_MAX];
	char path[PATH_MAX + 64];

	snprintf(path, sizeof(path), "%s/%s", arm64_dir, image);
	*broken = 0;
	if (access(path, R_OK) == 0)
		return NULL;
	*broken = fetched(needs);
	snprintf(why, sizeof(why), "no %s%s: `make %s` builds it (with apt: network)", path,
		 *broken ? " although what it needs was fetched" : "", target);
	return why;
}

/*
 * 1 when what `make arm64-hv-full` fetches from the network into arm64_dir/what is there: an
 * image missing then is a build failure (a failed case), not a machine without the network.
 */
int
fetched(const char *what)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s/.done", arm64_dir, what);
	return access(path, R_OK) == 0;
}

void
arm64vm_init(void)
{
	const char *bin = getenv("CLEAVE_BIN");

	/* BUILD/bin -> BUILD/arm64, without needing BUILD/bin to exist for a "..". */
	snprintf(arm64_dir, sizeof(arm64_dir), "%s", bin != NULL ? bin : "build/bin");
	char *slash = strrchr(arm64_dir, '/');
	snprintf(slash != NULL ? slash + 1 : arm64_dir,
		 sizeof(arm64_dir) - (size_t)(slash != NULL ? slash + 1 - arm64_dir : 0), "arm64");
	if (find_qemu() != 0)
		qemu_path[0] = '\0';
}

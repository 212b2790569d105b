/*
 * The corporate screen end to end: console.c in-process (socket file rules, replay, a slow
 * client, partial and refused input, clear, busy), then the real cleave-hv with the real
 * `cleave-hvctl console` on pipes: the guest banner replayed on attach, a command typed and
 * answered, a second client told busy, reattaching, another uid refused, the notice and the
 * socket file removed when cleave-hv exits, and a console without a VM. Cases that need
 * /dev/kvm, or root to act as another uid, say so and skip; a missing guest image fails. What
 * runs as nobody is exec'd from a descriptor opened as root (the checkout may be where nobody
 * cannot go, e.g. under /root) and keeps its files in a /tmp directory removed after the case.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bridge_client.h"
#include "bridge_msg.h"
#include "console.h"
#include "crypto.h"
#include "trun.h"
#include "util.h"
#include "vmm.h"
#include "wire.h"

#define NOBODY      65534
#define BOOT_MS     (15000 * t_slow()) /* cleave-hv up and the guest at its prompt */
#define REPLY_MS    (10000 * t_slow()) /* a guest command answered */
#define CTL_EXIT_MS (5000 * t_slow())  /* cleave-hvctl gone after stdin's EOF or cleave-hv's exit */

static const char *
bin_dir(void)
{
	const char *b = getenv("CLEAVE_BIN");

	return b != NULL && *b != '\0' ? b : "build/bin";
}

static int64_t
mono_ms(void)
{
	return (int64_t)(now_s() * 1000);
}

/* Drops to uid/gid (a child about to exec); returns -1 when it cannot. */
static int
become(uid_t uid)
{
	if (uid == (uid_t)-1)
		return 0;
	return setgroups(0, NULL) == 0 && setgid(uid) == 0 && setuid(uid) == 0 ? 0 : -1;
}

/* Opens bin_dir()/name for fexecve, while we can still reach it. fd or -1. */
static int
open_exe(const char *name)
{
	char exe[PATH_MAX];

	snprintf(exe, sizeof(exe), "%s/%s", bin_dir(), name);
	return open(exe, O_RDONLY | O_CLOEXEC);
}

/*
 * In a forked child: drops to uid and runs the binary open as fd. By descriptor, because uid may
 * not be able to reach the checkout's build directory by path.
 */
static _Noreturn void
exec_as(int fd, uid_t uid, const char *const *argv)
{
	extern char **environ;

	if (become(uid) != 0)
		_exit(126);
	fexecve(fd, (char *const *)argv, environ);
	_exit(127);
}

/* ---- console.c in-process ---- */

/* An input callback that takes at most `per_call` bytes each time (0: takes nothing). */
struct sink {
	pthread_mutex_t lock;
	char buf[4096];
	size_t len;
	size_t per_call;
	unsigned calls;
};

static size_t
sink_input(void *ctx, const uint8_t *buf, size_t len)
{
	struct sink *s = ctx;
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = MIN(len, s->per_call);
	n = MIN(n, sizeof(s->buf) - 1 - s->len);
	memcpy(s->buf + s->len, buf, n);
	s->len += n;
	s->buf[s->len] = '\0';
	s->calls++;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static int
sink_has(struct sink *s, const char *want, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	int hit;

	do {
		pthread_mutex_lock(&s->lock);
		hit = strstr(s->buf, want) != NULL;
		pthread_mutex_unlock(&s->lock);
		if (hit)
			return 1;
		usleep(5000);
	} while (mono_ms() < end);
	return 0;
}

static void
tmp_path(char *out, size_t cap, const char *name)
{
	const char *base = getenv("CLEAVE_TEST_OUT");

	snprintf(out, cap, "%s/con-%ld-%s", base && *base ? base : "/tmp", (long)getpid(), name);
}

static int
unix_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	str_copy(sa.sun_path, sizeof(sa.sun_path), path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/*
 * Reads from fd into buf (NUL-terminated, cap bytes) until want appears (want NULL: until EOF
 * or quiet_ms without data), at most timeout_ms. Returns the bytes read; *eof set on EOF.
 */
static size_t
read_until(int fd, char *buf, size_t cap, const char *want, int quiet_ms, int timeout_ms, int *eof)
{
	int64_t end = mono_ms() + timeout_ms;
	size_t len = 0;

	*eof = 0;
	buf[0] = '\0';
	while (len < cap - 1 && mono_ms() < end) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int wait = want != NULL ? (int)(end - mono_ms()) : quiet_ms;
		ssize_t n;

		if (poll(&p, 1, wait > 0 ? wait : 0) <= 0) {
			if (want == NULL)
				break;
			continue;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n <= 0) {
			*eof = 1;
			break;
		}
		len += (size_t)n;
		buf[len] = '\0';
		if (want != NULL && strstr(buf, want) != NULL)
			break;
	}
	return len;
}

static void
test_console_socket_file_rules(void)
{
	char path[PATH_MAX];
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct console *c = NULL;
	struct stat st;
	int fd, r;
	FILE *f;

	/* every call ignores a NULL console */
	console_output(NULL, (const uint8_t *)"x", 1);
	console_clear(NULL);
	console_notice(NULL, "x");
	console_set_status(NULL, "x");
	console_close(NULL);

	tmp_path(path, sizeof(path), "file.sock");
	f = fopen(path, "w");
	CHECK(f != NULL, "create %s", path);
	fputs("not a socket\n", f);
	fclose(f);
	r = console_open(path, getuid(), NULL, NULL, &c);
	CHECK(r == -EEXIST && c == NULL, "a regular file at the path must be refused (%d)", r);
	CHECK(stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == 13,
	      "the regular file must be left alone");
	unlink(path);

	/* a stale socket file (nobody listening) is replaced; the new one is 0600 */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	str_copy(sa.sun_path, sizeof(sa.sun_path), path);
	CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "stale socket");
	close(fd);
	r = console_open(path, getuid(), NULL, NULL, &c);
	CHECK(r == 0 && c != NULL, "stale socket not replaced (%d)", r);
	CHECK(stat(path, &st) == 0 && S_ISSOCK(st.st_mode) && (st.st_mode & 0777) == 0600,
	      "socket mode %o, want 0600", st.st_mode & 0777);
	fd = unix_connect(path);
	console_close(c);
	CHECK(fd >= 0, "connect");
	close(fd);
	CHECK(access(path, F_OK) != 0 && errno == ENOENT, "console_close must remove %s", path);
}

static void
test_console_replay_input_and_clear(void)
{
	static struct sink s = {.lock = PTHREAD_MUTEX_INITIALIZER};
	char path[PATH_MAX], buf[8192];
	struct console *c = NULL;
	int fd, fd2, eof;
	size_t n;

	s.len = 0;
	s.buf[0] = '\0';
	s.per_call = 1; /* the guest takes one byte at a time: the rest must be retried */
	tmp_path(path, sizeof(path), "replay.sock");
	CHECK(console_open(path, getuid(), sink_input, &s, &c) == 0, "console_open");
	console_output(c, (const uint8_t *)"before attach\r\ncorp> ", 21);
	console_notice(c, "[cleave-hv] nobody sees this"); /* no client: not kept */
	console_set_status(c, "[cleave-hv] status line");
	fd = unix_connect(path);
	CHECK(fd >= 0, "connect");
	n = read_until(fd, buf, sizeof(buf), "status line\r\n", 0, 5000, &eof);
	CHECK(strstr(buf, "before attach\r\ncorp> \r\n[cleave-hv] status line\r\n") != NULL &&
		      strstr(buf, "nobody sees") == NULL,
	      "replay then status on a line of its own, got %zu bytes: %s", n, buf);
	/* live output and a notice, in order */
	console_output(c, (const uint8_t *)"live", 4);
	console_notice(c, "[cleave-hv] hello");
	read_until(fd, buf, sizeof(buf), "hello\r\n", 0, 5000, &eof);
	CHECK(strcmp(buf, "live\r\n[cleave-hv] hello\r\n") == 0, "live + notice: %s", buf);
	/* keystrokes reach the callback in order even one byte per call */
	CHECK(write(fd, "version\n", 8) == 8, "send");
	CHECK(sink_has(&s, "version\n", 5000), "input: %s", s.buf);
	/* a second client is told busy and closed */
	fd2 = unix_connect(path);
	CHECK(fd2 >= 0, "second connect");
	read_until(fd2, buf, sizeof(buf), NULL, 3000, 5000, &eof);
	close(fd2);
	CHECK(strcmp(buf, "cleave-hv: console busy\r\n") == 0 && eof, "busy: %s", buf);
	/* input the guest never takes is dropped after a bounded time, and the client told */
	s.per_call = 0;
	CHECK(write(fd, "xyz", 3) == 3, "send");
	read_until(fd, buf, sizeof(buf), "dropped", 0, 5000, &eof);
	CHECK(strstr(buf, "3 keystrokes dropped") != NULL, "input drop notice: %s", buf);
	/* clear erases the scrollback: a new client sees nothing from before */
	console_clear(c);
	close(fd);
	console_output(c, (const uint8_t *)"after", 5);
	fd = -1;
	for (int i = 0; i < 100 && fd < 0; i++) { /* the old client may not be detached yet */
		fd = unix_connect(path);
		n = fd >= 0 ? read_until(fd, buf, sizeof(buf), NULL, 300, 2000, &eof) : 0;
		if (fd >= 0 && strstr(buf, "busy") != NULL) {
			close(fd);
			fd = -1;
			usleep(20000);
		}
	}
	CHECK(fd >= 0, "reattach");
	CHECK(strstr(buf, "after") != NULL && strstr(buf, "before") == NULL &&
		      strstr(buf, "live") == NULL,
	      "after console_clear the replay must hold only new output: %s", buf);
	close(fd);
	console_close(c);
}

static void
test_console_slow_client_never_blocks(void)
{
	char path[PATH_MAX], line[128];
	static char buf[1 << 20];
	struct console *c = NULL;
	int64_t t0, took;
	int fd, eof;
	size_t n;

	tmp_path(path, sizeof(path), "slow.sock");
	CHECK(console_open(path, getuid(), NULL, NULL, &c) == 0, "console_open");
	fd = unix_connect(path);
	CHECK(fd >= 0, "connect");
	usleep(50000);
	/* 4 MiB while the client reads nothing: far more than any socket buffer and the queue */
	t0 = mono_ms();
	for (int i = 0; i < 65536; i++) {
		n = (size_t)snprintf(line, sizeof(line), "%08d %s\r\n", i,
				     "-------------------------------------------------------");
		console_output(c, (const uint8_t *)line, MIN(n, sizeof(line) - 1));
	}
	took = mono_ms() - t0;
	console_output(c, (const uint8_t *)"THE END\r\n", 9);
	n = read_until(fd, buf, sizeof(buf), "THE END", 0, 10000, &eof);
	close(fd);
	console_close(c);
	CHECK(took < 2000, "console_output blocked: 4 MiB took %lld ms", (long long)took);
	CHECK(strstr(buf, "THE END") != NULL, "the newest output must arrive (%zu bytes)", n);
	CHECK(strstr(buf, "bytes of output dropped") != NULL,
	      "the client must be told that output was dropped");
	CHECK(strstr(buf, "00065535 ") != NULL, "the last lines must be kept, the oldest dropped");
	CHECK(n < 512 * 1024, "the queue must be bounded (%zu bytes arrived)", n);
	printf("    4 MiB to a stalled client: %lld ms in console_output, %zu bytes delivered\n",
	       (long long)took, n);
}

/* ---- the real binaries ---- */

struct hvcon {
	char dir[PATH_MAX]; /* under $CLEAVE_TEST_OUT, or /tmp when another uid must reach it */
	char sock[PATH_MAX + 16];
	char csock[PATH_MAX + 16];
	char guest[PATH_MAX + 16];
	char log[PATH_MAX + 16]; /* always under $CLEAVE_TEST_OUT */
	uid_t uid;               /* (uid_t)-1: ours */
	pid_t pid;
};

/* A fake guest image for cleave-hv runs that will have no VM. */
static int
fake_guest(struct hvcon *p)
{
	FILE *f;

	snprintf(p->guest, sizeof(p->guest), "%s.guest", p->dir);
	f = fopen(p->guest, "w");
	if (f == NULL)
		return -1;
	fputs("test guest image\n", f);
	fclose(f);
	return chmod(p->guest, 0644);
}

/*
 * A fresh state dir owned by uid (under $CLEAVE_TEST_OUT for us, else in /tmp, removed when the
 * case ends), with the real guest where KVM can run it. csock NULL: the default console socket.
 */
static int
hv_prepare(struct hvcon *p, uid_t uid, const char *csock)
{
	const char *out = getenv("CLEAVE_TEST_OUT");

	memset(p, 0, sizeof(*p));
	p->uid = uid;
	out = out && *out ? out : "/tmp";
	snprintf(p->dir, sizeof(p->dir), "%s/hvcon-XXXXXX", uid == (uid_t)-1 ? out : "/tmp");
	if (mkdtemp(p->dir) == NULL)
		return -1;
	if (uid != (uid_t)-1) {
		char guest[PATH_MAX + 16];

		snprintf(guest, sizeof(guest), "%s.guest", p->dir);
		t_remove_after_case(p->dir);
		t_remove_after_case(guest);
	}
	if (chmod(p->dir, 0700) != 0 || (uid != (uid_t)-1 && chown(p->dir, uid, uid) != 0))
		return -1;
	snprintf(p->sock, sizeof(p->sock), "%s/hv.sock", p->dir);
	snprintf(p->csock, sizeof(p->csock), "%s/console.sock", p->dir);
	if (csock != NULL)
		str_copy(p->csock, sizeof(p->csock), csock);
	snprintf(p->log, sizeof(p->log), "%s/%s.log", out, strrchr(p->dir, '/') + 1);
	snprintf(p->guest, sizeof(p->guest), "%s/../guest/guest.bin", bin_dir());
	if (!vmm_kvm_available() || access(p->guest, R_OK) != 0)
		return fake_guest(p);
	return 0;
}

static int
hv_start(struct hvcon *p, int custom_csock)
{
	const char *argv[] = {"cleave-hv", "--state",          p->dir,   "--guest",
			      p->guest,    "--console-socket", p->csock, NULL};
	int exe = open_exe("cleave-hv");
	struct stat st;

	if (!custom_csock)
		argv[5] = NULL;
	p->pid = exe >= 0 ? fork() : -1;
	if (p->pid == 0) {
		int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

		if (fd < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(126);
		exec_as(exe, p->uid, argv);
	}
	if (exe >= 0)
		close(exe);
	if (p->pid < 0)
		return -1;
	t_track_child(p->pid, 1);
	for (int i = 0; i < 500 * t_slow(); i++) { /* 5 s (x CLEAVE_TEST_SLOW); the console first */
		struct bridge_client c;

		if (bridge_connect(&c, p->sock, 1000) == 0) {
			bridge_close(&c);
			return stat(p->csock, &st) == 0 && S_ISSOCK(st.st_mode) ? 0 : -1;
		}
		usleep(10000);
	}
	return -1;
}

/* Stops cleave-hv with sig; its exit status, or -1 when it did not exit within 10 s. */
static int
hv_stop(struct hvcon *p, int sig)
{
	int rc = t_stop_child(p->pid, sig, 10000);

	p->pid = 0;
	return rc;
}

/* Stops cleave-hv if it still runs (the case fails unless it exits 0) and removes its files. */
static void
hv_cleanup(struct hvcon *p)
{
	char cmd[PATH_MAX * 4];

	t_stop_graceful(&p->pid, "cleave-hv", p->log);
	if (!t_failed_now && p->dir[0] != '\0') {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.guest' '%s'", p->dir, p->dir, p->log);
		(void)!system(cmd);
	} else if (t_failed_now) {
		printf("    (cleave-hv log kept: %s)\n", p->log);
	}
}

/* `cleave-hvctl console` on pipes. */
struct ctl {
	pid_t pid;
	int in, out, err;
	char buf[65536]; /* its stdout so far, NUL-terminated */
	size_t len;
	char ebuf[4096]; /* its stderr so far */
	size_t elen;
};

/* Starts it as uid ((uid_t)-1: us) with --socket (csock NULL) or --console-socket. */
static int
ctl_start(struct ctl *c, const struct hvcon *p, const char *csock, uid_t uid)
{
	const char *argv[] = {"cleave-hvctl", csock ? "--console-socket" : "--socket",
			      csock ? csock : p->sock, "console", NULL};
	int in[2], out[2], err[2], exe;

	memset(c, 0, sizeof(*c));
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0)
		return -1;
	exe = open_exe("cleave-hvctl");
	c->pid = exe >= 0 ? fork() : -1;
	if (c->pid == 0) {
		if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || dup2(err[1], 2) < 0)
			_exit(126);
		exec_as(exe, uid, argv);
	}
	if (exe >= 0)
		close(exe);
	close(in[0]);
	close(out[1]);
	close(err[1]);
	c->in = in[1];
	c->out = out[0];
	c->err = err[0];
	if (c->pid < 0)
		return -1;
	t_track_child(c->pid, 1);
	fcntl(c->out, F_SETFL, O_NONBLOCK);
	fcntl(c->err, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Collects what it wrote within timeout_ms; 1 when both pipes are at EOF. */
static int
ctl_pump(struct ctl *c, int timeout_ms)
{
	struct pollfd p[2] = {{.fd = c->out, .events = POLLIN}, {.fd = c->err, .events = POLLIN}};
	ssize_t n;

	if (c->out < 0 && c->err < 0)
		return 1;
	if (poll(p, 2, timeout_ms) <= 0)
		return 0;
	if (c->out >= 0 && (p[0].revents & (POLLIN | POLLHUP))) {
		n = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n > 0)
			c->len += (size_t)n;
		else if (n == 0 || sizeof(c->buf) - 1 == c->len) {
			close(c->out);
			c->out = -1;
		}
		c->buf[c->len] = '\0';
	}
	if (c->err >= 0 && (p[1].revents & (POLLIN | POLLHUP))) {
		n = read(c->err, c->ebuf + c->elen, sizeof(c->ebuf) - 1 - c->elen);
		if (n > 0)
			c->elen += (size_t)n;
		else if (n == 0 || sizeof(c->ebuf) - 1 == c->elen) {
			close(c->err);
			c->err = -1;
		}
		c->ebuf[c->elen] = '\0';
	}
	return c->out < 0 && c->err < 0;
}

/* Waits until want is on its stdout at or after from; 1 found, 0 not within timeout_ms. */
static int
ctl_wait(struct ctl *c, const char *want, size_t from, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;

	for (;;) {
		if (from <= c->len && strstr(c->buf + from, want) != NULL)
			return 1;
		if (mono_ms() >= end || (ctl_pump(c, 20) && strstr(c->buf + from, want) == NULL))
			return from <= c->len && strstr(c->buf + from, want) != NULL;
	}
}

static int
ctl_send(struct ctl *c, const char *s)
{
	return write(c->in, s, strlen(s)) == (ssize_t)strlen(s) ? 0 : -1;
}

/* Closes its stdin (if still open) and waits for its exit; its status, or -1 (killed). */
static int
ctl_finish(struct ctl *c, int timeout_ms)
{
	int64_t end = mono_ms() + timeout_ms;
	int status;

	if (c->in >= 0)
		close(c->in);
	c->in = -1;
	while (mono_ms() < end) {
		int done = ctl_pump(c, 20);

		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			while (!done && ctl_pump(c, 100) == 0 && mono_ms() < end)
				;
			t_track_child(c->pid, 0);
			if (c->out >= 0)
				close(c->out);
			if (c->err >= 0)
				close(c->err);
			c->out = c->err = -1;
			return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		}
	}
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	t_track_child(c->pid, 0);
	return -1;
}

/*
 * 1 when the real guest can run here. Otherwise 0 after skipping the case (no /dev/kvm) or
 * failing it (no guest image: `make all` builds it everywhere, so it missing is a bug).
 */
static int
kvm_ready(void)
{
	char guest[PATH_MAX];

	snprintf(guest, sizeof(guest), "%s/../guest/guest.bin", bin_dir());
	if (access(guest, R_OK) != 0) {
		t_fail(__FILE__, __LINE__, "no guest image at %s (make all builds it)", guest);
		return 0;
	}
	if (!vmm_kvm_available()) {
		t_skip("/dev/kvm unavailable");
		return 0;
	}
	return 1;
}

/*
 * cleave-hv with the real guest, and `cleave-hvctl console` attached to it showing the
 * prompt. 0, or -1 after saying which step failed.
 */
static int
boot_attached(struct hvcon *p, struct ctl *a)
{
	if (hv_prepare(p, (uid_t)-1, NULL) != 0 || hv_start(p, 0) != 0) {
		printf("    cleave-hv did not start (log %s)\n", p->log);
		return -1;
	}
	if (ctl_start(a, p, NULL, (uid_t)-1) != 0) {
		printf("    cannot start cleave-hvctl\n");
		return -1;
	}
	if (!ctl_wait(a, "corp> ", 0, BOOT_MS)) {
		printf("    no prompt; got: %s | %s\n", a->buf, a->ebuf);
		return -1;
	}
	return 0;
}

static void
test_console_attach_replay_and_command(void)
{
	struct hvcon p;
	struct ctl a, b;
	size_t from;
	int rc;

	if (!kvm_ready())
		return;
	/* the console socket beside --socket; the banner comes from the scrollback */
	CHECK(boot_attached(&p, &a) == 0, "cleave-hv with an attached console");
	CHECK(strstr(a.buf, "cleave corporate guest") != NULL, "no banner: %s", a.buf);
	from = a.len;
	CHECK(ctl_send(&a, "version\n") == 0, "type");
	CHECK(ctl_wait(&a, "version: abi 1.1", from, REPLY_MS), "no answer to version: %s",
	      a.buf + from);
	/* a second client while the first is attached */
	CHECK(ctl_start(&b, &p, p.csock, (uid_t)-1) == 0, "start second cleave-hvctl");
	rc = ctl_finish(&b, CTL_EXIT_MS);
	CHECK(rc == 1 && strstr(b.ebuf, "busy") != NULL && b.len == 0,
	      "second client: exit %d, stdout '%s', stderr '%s'", rc, b.buf, b.ebuf);
	/* the first one is still served */
	from = a.len;
	CHECK(ctl_send(&a, "help\n") == 0, "type");
	CHECK(ctl_wait(&a, "version - ", from, REPLY_MS), "first client lost: %s", a.buf + from);
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 0, "cleave-hvctl after stdin's EOF: exit %d (%s)", rc, a.ebuf);
	/* detached: a new client attaches (the old one may take a moment to be noticed) */
	for (int i = 0; i < 50; i++) {
		CHECK(ctl_start(&b, &p, NULL, (uid_t)-1) == 0, "reattach");
		if (ctl_wait(&b, "corp> ", 0, 2000))
			break;
		ctl_finish(&b, CTL_EXIT_MS);
		usleep(50000);
	}
	CHECK(strstr(b.buf, "version: abi 1.1") != NULL && strstr(b.buf, "version - ") != NULL,
	      "the replay must show the earlier session: %s", b.buf);
	from = b.len;
	CHECK(ctl_send(&b, "version\n") == 0, "type");
	CHECK(ctl_wait(&b, "version: abi 1.1", from, REPLY_MS), "no answer after reattach: %s",
	      b.buf + from);
	rc = ctl_finish(&b, CTL_EXIT_MS);
	CHECK(rc == 0, "exit %d", rc);
	hv_cleanup(&p);
}

static void
test_console_closed_when_hv_exits(void)
{
	struct hvcon p;
	struct ctl a;
	int rc, st;

	if (!kvm_ready())
		return;
	CHECK(boot_attached(&p, &a) == 0, "cleave-hv with an attached console");
	/* stdin stays open: only cleave-hv's exit ends the session */
	st = hv_stop(&p, SIGTERM);
	CHECK(st == 0, "cleave-hv exit status %d", st);
	CHECK(ctl_wait(&a, "the corporate VM has stopped", 0, CTL_EXIT_MS),
	      "the client must be told: %s", a.buf);
	for (int i = 0; i < CTL_EXIT_MS / 20 && !ctl_pump(&a, 20); i++)
		;
	CHECK(a.out < 0, "cleave-hvctl must exit when cleave-hv closes the console");
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 0 && strstr(a.ebuf, "closed the console") != NULL, "exit %d: %s", rc, a.ebuf);
	CHECK(access(p.csock, F_OK) != 0 && errno == ENOENT, "%s must be gone", p.csock);
	/* and cleave-hvctl says clearly that nothing is there */
	CHECK(ctl_start(&a, &p, NULL, (uid_t)-1) == 0, "start cleave-hvctl");
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 1 && strstr(a.ebuf, "is cleave-hv running?") != NULL, "exit %d: %s", rc,
	      a.ebuf);
	hv_cleanup(&p);
}

/* Pins a fresh server key for "dev_con" and sends it a signed lock ticket. CLV_OK or status. */
static int
pin_and_lock(const char *sock)
{
	uint8_t nonce[32] = {7}, buf[512], req[64] = {0}, tk[TICKET_LEN];
	struct ed25519_key *server = NULL;
	struct bridge_client c;
	struct attestation a;
	struct ticket t;
	size_t n;
	int st = -1;

	if (bridge_connect(&c, sock, 5000) != 0)
		return -1;
	if (bridge_call(&c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) != CLV_OK ||
	    attest_decode(buf, n, &a) != 0 || ed25519_key_generate(&server) != 0)
		goto out;
	ed25519_key_public(server, req);
	memcpy(req + 32, "dev_con", 7);
	st = bridge_call(&c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf), &n);
	if (st != CLV_OK)
		goto out;
	memset(&t, 0, sizeof(t));
	t.type = TICKET_LOCK;
	str_copy(t.device_id, sizeof(t.device_id), "dev_con");
	str_copy(t.command_id, sizeof(t.command_id), "cmd_lock");
	memcpy(t.hv_key, a.hv_key, 32);
	t.counter = 1;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + 600;
	ticket_encode(&t, tk);
	ed25519_key_sign(server, tk, TICKET_BODY_LEN, tk + TICKET_BODY_LEN);
	st = bridge_call(&c, CLV_FN_LOCK, tk, sizeof(tk), buf, sizeof(buf), &n);
out:
	ed25519_key_free(server);
	bridge_close(&c);
	return st;
}

/* A lock erases the screen: the attached client is told, a later one sees nothing from before. */
static void
test_console_lock_erases_screen(void)
{
	struct hvcon p;
	struct ctl a;
	size_t from;
	int rc;

	if (!kvm_ready())
		return;
	CHECK(boot_attached(&p, &a) == 0, "cleave-hv with an attached console");
	from = a.len;
	CHECK(ctl_send(&a, "version\n") == 0, "type");
	CHECK(ctl_wait(&a, "version: abi 1.1", from, REPLY_MS), "no answer: %s", a.buf + from);
	rc = pin_and_lock(p.sock);
	CHECK(rc == CLV_OK, "lock: %d", rc);
	CHECK(ctl_wait(&a, "[cleave-hv] the corporate half is locked", from, CTL_EXIT_MS),
	      "the attached client must be told: %s", a.buf + from);
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 0, "exit %d: %s", rc, a.ebuf);
	for (int i = 0; i < 50; i++) { /* until the first client's detach is noticed */
		CHECK(ctl_start(&a, &p, NULL, (uid_t)-1) == 0, "reattach");
		rc = ctl_finish(&a, CTL_EXIT_MS);
		if (rc == 0)
			break;
		usleep(50000);
	}
	CHECK(rc == 0, "reattach: exit %d: %s", rc, a.ebuf);
	CHECK(strstr(a.buf, "corporate guest") == NULL && strstr(a.buf, "abi 1.1") == NULL &&
		      strstr(a.buf, "corp> ") == NULL,
	      "a locked screen must replay nothing from before the lock: %s", a.buf);
	hv_cleanup(&p);
}

/* cleave-hv (as root) with its console socket in a world-searchable directory. */
static void
test_console_refuses_other_uid(void)
{
	char pub[PATH_MAX], csock[PATH_MAX + 16];
	struct hvcon p;
	struct ctl a;
	int rc;

	if (geteuid() != 0)
		SKIP("acting as another uid needs root");
	/* a directory nobody can reach, unlike the checkout (which may be under /root) */
	snprintf(pub, sizeof(pub), "/tmp/cleave-con-pub-XXXXXX");
	CHECK(mkdtemp(pub) != NULL, "mkdtemp");
	t_remove_after_case(pub);
	CHECK(chmod(pub, 0755) == 0, "chmod");
	snprintf(csock, sizeof(csock), "%s/console.sock", pub);
	CHECK(hv_prepare(&p, (uid_t)-1, csock) == 0 && hv_start(&p, 1) == 0,
	      "cleave-hv did not start (log %s)", p.log);
	/* the file mode stops another uid first ... */
	CHECK(ctl_start(&a, &p, csock, NOBODY) == 0, "start cleave-hvctl");
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 1 && strstr(a.ebuf, "permission denied") != NULL, "0600 socket: exit %d: %s",
	      rc, a.ebuf);
	/* ... and SO_PEERCRED if the file were opened up */
	CHECK(chmod(csock, 0666) == 0, "chmod");
	CHECK(ctl_start(&a, &p, csock, NOBODY) == 0, "start cleave-hvctl");
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 1 && strstr(a.ebuf, "permission denied") != NULL && a.len == 0,
	      "peer credentials: exit %d, stdout '%s', stderr '%s'", rc, a.buf, a.ebuf);
	CHECK(hv_stop(&p, SIGTERM) == 0, "cleave-hv exit");
	CHECK(access(csock, F_OK) != 0, "the socket file must be gone");
	hv_cleanup(&p);
}

/*
 * Without /dev/kvm: naturally where it cannot be opened, else as nobody (not in group kvm),
 * when we are root. The console still attaches and says why it shows nothing.
 */
static void
test_console_without_vm(void)
{
	uid_t uid = (uid_t)-1;
	struct hvcon p;
	struct ctl a;
	int rc;

	if (vmm_kvm_available()) {
		if (geteuid() != 0)
			SKIP("/dev/kvm is available and we cannot drop to another uid to run "
			     "without it");
		uid = NOBODY;
	}
	/* as nobody, the state dir is in /tmp rather than the test output tree */
	CHECK(hv_prepare(&p, uid, NULL) == 0, "prepare");
	CHECK(fake_guest(&p) == 0 && hv_start(&p, 0) == 0, "cleave-hv did not start (log %s)",
	      p.log);
	CHECK(ctl_start(&a, &p, NULL, uid) == 0, "start cleave-hvctl");
	CHECK(ctl_wait(&a, "no corporate VM", 0, CTL_EXIT_MS), "no status line: %s | %s", a.buf,
	      a.ebuf);
	/* keys typed with no VM go nowhere (hv_vm_feed drops them); the session goes on */
	CHECK(ctl_send(&a, "version\n") == 0, "type");
	rc = ctl_finish(&a, CTL_EXIT_MS);
	CHECK(rc == 0, "exit %d: %s", rc, a.ebuf);
	CHECK(hv_stop(&p, SIGTERM) == 0, "cleave-hv exit");
	CHECK(access(p.csock, F_OK) != 0, "the socket file must be gone");
	hv_cleanup(&p);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"console_socket_file_rules", test_console_socket_file_rules},
		{"console_replay_input_and_clear", test_console_replay_input_and_clear},
		{"console_slow_client_never_blocks", test_console_slow_client_never_blocks},
		{"console_attach_replay_and_command", test_console_attach_replay_and_command},
		{"console_closed_when_hv_exits", test_console_closed_when_hv_exits},
		{"console_lock_erases_screen", test_console_lock_erases_screen},
		{"console_refuses_other_uid", test_console_refuses_other_uid},
		{"console_without_vm", test_console_without_vm},
	};

	setvbuf(stdout, NULL, _IOLBF, 0);
	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

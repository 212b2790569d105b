/*
 * Driving the real cleave-hv for tests: process control, a test server key and its tickets,
 * and the guest console over cleave-hv's console socket. See hvproc.h.
 */
#include "hvproc.h"

#include <errno.h>
#include <poll.h>
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

#include "bridge_msg.h"
#include "hvsig.h"
#include "trun.h"
#include "util.h"
#include "vmm.h"

static const char *
bin_dir(void)
{
	const char *bin = getenv("CLEAVE_BIN");

	return bin && *bin ? bin : "build/bin";
}

int
hvp_spawn(struct hvproc *p)
{
	char exe[PATH_MAX];
	const char *argv[24];
	int n = 0;

	snprintf(exe, sizeof(exe), "%s/cleave-hv", bin_dir());
	unlink(p->sock); /* a killed cleave-hv leaves its socket file; wait for the new one */
	argv[n++] = exe;
	argv[n++] = "--state";
	argv[n++] = p->dir;
	argv[n++] = "--guest";
	argv[n++] = p->guest;
	for (int i = 0; i < 8 && p->extra[i] != NULL; i++)
		argv[n++] = p->extra[i];
	argv[n] = NULL;
	p->pid = fork();
	if (p->pid == 0) {
		char log[PATH_MAX + 16];
		FILE *f;

		snprintf(log, sizeof(log), "%s.log", p->dir);
		f = freopen(log, "a", stderr);
		(void)f;
		execv(exe, (char **)argv);
		_exit(127);
	}
	if (p->pid < 0)
		return -1;
	t_track_child(p->pid, 1);
	return 0;
}

int
hvp_start(struct hvproc *p)
{
	if (hvp_spawn(p) != 0)
		return -1;
	/* 5 s, CLEAVE_TEST_SLOW times that under TCG; 2 ms steps so bench/tpm_bench can time starts */
	for (int i = 0; i < 2500 * t_slow(); i++) {
		struct bridge_client c;

		if (bridge_connect(&c, p->sock, 1000) == 0) {
			bridge_close(&c);
			return 0;
		}
		usleep(2000);
	}
	return -1;
}

void
hvp_stop(struct hvproc *p, int sig)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, sig);
	waitpid(p->pid, NULL, 0);
	t_track_child(p->pid, 0);
	p->pid = 0;
}

int
hvp_kvm(const struct hvproc *p)
{
	size_t n = strlen(p->guest);

	return !(n > 6 && strcmp(p->guest + n - 6, ".guest") == 0);
}

int
hvp_init(struct hvproc *p)
{
	return hvp_prepare(p) == 0 ? hvp_start(p) : -1;
}

int
hvp_prepare(struct hvproc *p)
{
	const char *base = getenv("CLEAVE_TEST_OUT");
	FILE *f;

	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/hv-XXXXXX", base && *base ? base : "/tmp");
	if (mkdtemp(p->dir) == NULL || chmod(p->dir, 0700) != 0)
		return -1;
	snprintf(p->sock, sizeof(p->sock), "%s/hv.sock", p->dir);
	snprintf(p->console, sizeof(p->console), "%s/console.sock", p->dir);
	/* The real guest where KVM can run it; otherwise any bytes do for the trust tests. */
	snprintf(p->guest, sizeof(p->guest), "%s/../guest/guest.bin", bin_dir());
	if (!vmm_kvm_available() || access(p->guest, R_OK) != 0) {
		snprintf(p->guest, sizeof(p->guest), "%s.guest", p->dir);
		f = fopen(p->guest, "w");
		if (f == NULL)
			return -1;
		fputs("test guest image\n", f);
		fclose(f);
	}
	return 0;
}

void
hvp_cleanup(struct hvproc *p)
{
	char cmd[PATH_MAX * 3 + 64], log[PATH_MAX + 8];

	/* As a supervisor stops it: the case fails unless it exits 0 (leaks under make asan). */
	snprintf(log, sizeof(log), "%s.log", p->dir);
	t_stop_graceful(&p->pid, "cleave-hv", log);
	if (!t_failed_now) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s.guest' '%s.log'", p->dir, p->dir,
			 p->dir);
		(void)!system(cmd);
	}
}

void
hvp_ticket(struct ed25519_key *server, const uint8_t hv[32], const char *device, uint16_t type,
	   uint64_t counter, uint64_t arg0, uint8_t out[TICKET_LEN])
{
	struct ticket t;

	memset(&t, 0, sizeof(t));
	t.type = type;
	str_copy(t.device_id, sizeof(t.device_id), device);
	snprintf(t.command_id, sizeof(t.command_id), "cmd_%llu", (unsigned long long)counter);
	memcpy(t.hv_key, hv, 32);
	t.counter = counter;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + 3600;
	if (type == TICKET_LEASE)
		t.args[0] = arg0;
	ticket_encode(&t, out);
	ed25519_key_sign(server, out, TICKET_BODY_LEN, out + TICKET_BODY_LEN);
}

int
hvp_policy(struct bridge_client *c, struct ed25519_key *server, const uint8_t hv[32],
	   uint64_t counter, uint64_t lock_s, uint64_t wipe_s, uint64_t max_failed)
{
	uint8_t tk[TICKET_LEN], buf[64];
	struct ticket t;
	size_t n;

	memset(&t, 0, sizeof(t));
	t.type = TICKET_POLICY;
	str_copy(t.device_id, sizeof(t.device_id), "dev_ord");
	snprintf(t.command_id, sizeof(t.command_id), "cmd_policy_%llu",
		 (unsigned long long)counter);
	memcpy(t.hv_key, hv, 32);
	t.counter = counter;
	t.issued_at = (uint64_t)time(NULL);
	t.expires_at = t.issued_at + 600;
	t.args[0] = lock_s;
	t.args[1] = wipe_s;
	t.args[2] = max_failed;
	t.args[3] = counter; /* policy version */
	ticket_encode(&t, tk);
	ed25519_key_sign(server, tk, TICKET_BODY_LEN, tk + TICKET_BODY_LEN);
	return bridge_call(c, CLV_FN_SET_POLICY, tk, sizeof(tk), buf, sizeof(buf), &n);
}

int
hvp_pin_new(struct bridge_client *c, struct ed25519_key **server, uint8_t hv[32])
{
	uint8_t nonce[32] = {1}, buf[512], req[64] = {0};
	struct attestation a;
	size_t n;

	if (bridge_call(c, CLV_FN_ATTEST, nonce, 32, buf, sizeof(buf), &n) != CLV_OK ||
	    attest_decode(buf, n, &a) != 0 || ed25519_key_generate(server) != 0)
		return -1;
	memcpy(hv, a.hv_key, 32);
	ed25519_key_public(*server, req);
	memcpy(req + 32, "dev_ord", 7);
	return bridge_call(c, CLV_FN_PIN_OWNER, req, sizeof(req), buf, sizeof(buf), &n);
}

/* The P-256 key a --tpm cleave-hv signs with (hvp_tpm_key); Ed25519 needs none. */
static uint8_t tpm_spki[HVSIG_SPKI_MAX];
static size_t tpm_spki_len;

void
hvp_tpm_key(const uint8_t *spki, size_t len)
{
	tpm_spki_len = len <= sizeof(tpm_spki) ? len : 0;
	memcpy(tpm_spki, spki, tpm_spki_len);
}

int
hvp_order(struct bridge_client *c, struct ed25519_key *server, const uint8_t hv[32], uint32_t fid,
	  uint16_t type, uint64_t counter, struct receipt *rc, uint8_t raw[RECEIPT_LEN])
{
	uint8_t tk[TICKET_LEN], out[RECEIPT_LEN], th[32];
	size_t n = 0;
	int st;

	hvp_ticket(server, hv, "dev_ord", type, counter, 0, tk);
	st = bridge_call(c, fid, tk, sizeof(tk), out, sizeof(out), &n);
	if (st != CLV_OK)
		return st;
	crypto_sha256(tk, sizeof(tk), th);
	if (n != RECEIPT_LEN || receipt_decode(out, n, rc) != 0 ||
	    hvsig_verify(rc->sig_alg, hv, tpm_spki, tpm_spki_len, out, RECEIPT_BODY_LEN,
			 out + RECEIPT_BODY_LEN) != 0 ||
	    memcmp(rc->ticket_hash, th, 32) != 0)
		return -100;
	if (raw != NULL)
		memcpy(raw, out, RECEIPT_LEN);
	return CLV_OK;
}

int
hvp_receipts_for(struct bridge_client *c, const uint8_t hv[32], const uint8_t th[32],
		 struct receipt *rc, int ack)
{
	uint8_t buf[8 + RECEIPT_LEN * CLV_RECEIPTS_PER_MSG], up[8];
	uint64_t top = 0;
	size_t n = 0;
	int count = 0;

	if (bridge_call(c, CLV_FN_RECEIPTS, NULL, 0, buf, sizeof(buf), &n) != CLV_OK || n < 8)
		return -1;
	for (unsigned i = 0; i < buf[0] && 8 + (i + 1) * RECEIPT_LEN <= n; i++) {
		const uint8_t *raw = buf + 8 + (size_t)i * RECEIPT_LEN;
		struct receipt r;

		if (receipt_decode(raw, RECEIPT_LEN, &r) != 0 ||
		    hvsig_verify(r.sig_alg, hv, tpm_spki, tpm_spki_len, raw, RECEIPT_BODY_LEN,
				 raw + RECEIPT_BODY_LEN) != 0)
			return -1;
		top = r.seq > top ? r.seq : top;
		if (memcmp(r.ticket_hash, th, 32) == 0) {
			count++;
			*rc = r;
		}
	}
	for (int i = 0; i < 8; i++)
		up[i] = (uint8_t)(top >> (8 * i));
	if (ack && top > 0 &&
	    bridge_call(c, CLV_FN_RECEIPT_ACK, up, sizeof(up), buf, sizeof(buf), &n) != CLV_OK)
		return -1;
	return count;
}

uint32_t
hvp_state(struct bridge_client *c, uint64_t *epoch)
{
	uint8_t buf[64];
	struct clv_status st;
	size_t n;

	if (bridge_call(c, CLV_FN_STATUS, NULL, 0, buf, sizeof(buf), &n) != CLV_OK ||
	    clv_status_decode(buf, &st) != CLV_OK)
		return 0;
	*epoch = st.key_epoch;
	return st.state;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
ends_with(const char *s, size_t n, const char *tail)
{
	size_t t = strlen(tail);

	return n >= t && memcmp(s + n - t, tail, t) == 0;
}

/*
 * Reads into buf (cap, NUL-terminated) until, after the first occurrence of mark (NULL: from
 * the start), the output ends with the prompt; returns the offset just after mark, or -1.
 */
static ssize_t
read_to_prompt(int fd, const char *mark, char *buf, size_t cap, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	size_t n = 0;

	buf[0] = '\0';
	while (n + 1 < cap) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = end - now_ms();
		const char *m = mark != NULL ? strstr(buf, mark) : buf;
		ssize_t r;

		if (m != NULL && ends_with(buf, n, "corp> ") &&
		    (size_t)(m - buf) + (mark ? strlen(mark) : 0) <= n - strlen("corp> "))
			return (m - buf) + (ssize_t)(mark ? strlen(mark) : 0);
		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			break;
		r = read(fd, buf + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		buf[n] = '\0';
	}
	return -1;
}

int
hvp_console_open(struct hvproc *p, int timeout_ms)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char buf[8192];
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || str_copy(sa.sun_path, sizeof(sa.sun_path), p->console) != 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* Once the guest has booted, an empty line always answers with a prompt. */
	if (hvp_console_cmd(fd, "", buf, sizeof(buf), timeout_ms) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int
hvp_console_cmd(int fd, const char *line, char *out, size_t cap, int timeout_ms)
{
	char buf[16384], mark[512], *body, *w;
	size_t len = strlen(line);
	ssize_t at;

	/* Forget output nobody asked for (the replayed screen, notices). */
	hvp_console_drain(fd, buf, sizeof(buf), 0, 1000);
	if (write(fd, line, len) != (ssize_t)len || write(fd, "\r", 1) != 1)
		return -1;
	/* The guest echoes the line, ends it with CR LF, prints the answer and a new prompt. */
	snprintf(mark, sizeof(mark), "%s\r\n", line);
	at = read_to_prompt(fd, mark, buf, sizeof(buf), timeout_ms);
	if (at < 0) {
		snprintf(out, cap, "(timeout; got: %.300s)", buf);
		return -1;
	}
	body = buf + at;
	buf[strlen(buf) - strlen("corp> ")] = '\0';
	for (w = out; *body != '\0' && (size_t)(w - out) + 1 < cap; body++)
		if (*body != '\r')
			*w++ = *body;
	*w = '\0';
	return 0;
}

int
hvp_console_drain(int fd, char *out, size_t cap, int quiet_ms, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;
	size_t n = 0;

	while (n + 1 < cap && now_ms() < end) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		ssize_t r;

		if (poll(&pfd, 1, quiet_ms) <= 0)
			break;
		r = read(fd, out + n, cap - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	out[n] = '\0';
	return (int)n;
}

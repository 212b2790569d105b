/*
 * The corporate workspace on the real corporate VM, as an employee and the MDM see it: records
 * typed into the guest's console (cleave-hv's console socket) live on the encrypted volume,
 * survive restarts and kill -9 of cleave-hv, never appear in the volume file in plaintext, are
 * unreachable while locked, and are gone after a wipe, while a neighbouring "personal" folder
 * stays byte-identical. Needs /dev/kvm; every case skips with a message where it cannot be
 * opened (so the suite exits 77), and fails when the guest image is missing.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cleave_abi.h"
#include "fileio.h"
#include "hvproc.h"
#include "keys.h"
#include "trun.h"
#include "util.h"
#include "vmm.h"
#include "volume.h"

/* One console command, generous; t_slow(): CLEAVE_TEST_SLOW, set in the emulated arm64 machine. */
#define CMD_MS (10000 * t_slow())

static const char *const secrets[] = {
	"Q3-revenue-is-48.2M-CONFIDENTIAL",
	"merger with Northwind closes on the 14th",
	"door code 7481",
};

/*
 * 0 when the corporate VM can run here. Otherwise 1 after failing the case (no guest image:
 * `make all` builds it everywhere) or skipping it (no /dev/kvm).
 */
static int
skip_without_kvm(void)
{
	const char *bin = getenv("CLEAVE_BIN");
	char guest[PATH_MAX];

	snprintf(guest, sizeof(guest), "%s/../guest/guest.bin", bin && *bin ? bin : "build/bin");
	if (access(guest, R_OK) != 0) {
		t_fail(__FILE__, __LINE__, "no guest image at %s (make all builds it)", guest);
		return 1;
	}
	if (vmm_kvm_available())
		return 0;
	t_skip("/dev/kvm cannot be opened here; the corporate VM cannot run");
	return 1;
}

/* Types a command and checks that its output contains want. */
#define EXPECT(fd, line, want)                                                                     \
	do {                                                                                       \
		char out_[8192];                                                                   \
		CHECK(hvp_console_cmd((fd), (line), out_, sizeof(out_), CMD_MS) == 0,              \
		      "console: %s: %s", (line), out_);                                            \
		CHECK(strstr(out_, (want)) != NULL, "console: %s: want \"%s\", got \"%s\"",        \
		      (line), (want), out_);                                                       \
	} while (0)

/* 1 when the file at path contains needle anywhere. */
static int
file_contains(const char *path, const char *needle)
{
	size_t nlen = strlen(needle), n;
	FILE *f = fopen(path, "rb");
	char *buf = malloc(1 << 20);
	size_t keep = 0;
	int found = 0;

	if (f == NULL || buf == NULL) {
		if (f != NULL)
			fclose(f);
		free(buf);
		return -1;
	}
	while (!found && (n = fread(buf + keep, 1, (1 << 20) - keep, f)) > 0) {
		n += keep;
		found = memmem(buf, n, needle, nlen) != NULL;
		keep = n >= nlen ? nlen - 1 : n;
		memmove(buf, buf + n - keep, keep);
	}
	fclose(f);
	free(buf);
	return found;
}

static int
volume_has_plaintext(const struct hvproc *p)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/corporate", p->dir);
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++)
		if (file_contains(path, secrets[i]) != 0)
			return 1;
	return 0;
}

static int
put_secrets(int fd)
{
	char line[256], out[4096];

	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++) {
		snprintf(line, sizeof(line), "put memo%zu %s", i, secrets[i]);
		if (hvp_console_cmd(fd, line, out, sizeof(out), CMD_MS) != 0 ||
		    strstr(out, "saved") == NULL)
			return -1;
	}
	return 0;
}

static void
test_workspace_records_persist_encrypted(void)
{
	struct hvproc p;
	int fd;

	if (skip_without_kvm())
		return;
	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	fd = hvp_console_open(&p, CMD_MS);
	CHECK(fd >= 0, "console attach");
	EXPECT(fd, "list", "0 records");
	CHECK(put_secrets(fd) == 0, "put");
	EXPECT(fd, "get memo0", secrets[0]);
	EXPECT(fd, "list", "3 records");
	EXPECT(fd, "put bad/name x", "usage: put NAME TEXT");
	EXPECT(fd, "get nothing", "no record nothing");
	EXPECT(fd, "del memo2", "deleted memo2");
	EXPECT(fd, "get memo2", "no record memo2");
	EXPECT(fd, "put memo1 replaced text", "saved memo1");
	close(fd);
	CHECK(volume_has_plaintext(&p) == 0, "plaintext found in the corporate volume file");

	/* an orderly restart, then kill -9: the records are on the disk each time */
	hvp_stop(&p, SIGTERM);
	CHECK(hvp_start(&p) == 0, "restart");
	fd = hvp_console_open(&p, CMD_MS);
	CHECK(fd >= 0, "console attach after restart");
	EXPECT(fd, "get memo0", secrets[0]);
	EXPECT(fd, "get memo1", "replaced text");
	EXPECT(fd, "list", "2 records");
	EXPECT(fd, "put memo3 written just before a kill -9", "saved memo3");
	close(fd);
	hvp_stop(&p, SIGKILL);
	CHECK(hvp_start(&p) == 0, "restart after kill -9");
	fd = hvp_console_open(&p, CMD_MS);
	CHECK(fd >= 0, "console attach after kill -9");
	EXPECT(fd, "get memo3", "written just before a kill -9");
	close(fd);
	CHECK(volume_has_plaintext(&p) == 0, "plaintext found in the corporate volume file");
	hvp_cleanup(&p);
}

static void
test_workspace_locked_until_unlocked(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	struct receipt rc;
	uint8_t hv[32];
	char out[4096];
	uint64_t e;
	int fd;

	if (skip_without_kvm())
		return;
	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0 && hvp_pin_new(&c, &server, hv) == CLV_OK,
	      "pin");
	fd = hvp_console_open(&p, CMD_MS);
	CHECK(fd >= 0, "console attach");
	CHECK(put_secrets(fd) == 0, "put");
	CHECK(hvp_order(&c, server, hv, CLV_FN_LOCK, TICKET_LOCK, 1, &rc, NULL) == CLV_OK &&
		      (rc.checks_passed & CHECK_VM_STOPPED),
	      "lock");
	CHECK(hvp_state(&c, &e) == HV_STATE_LOCKED, "locked");
	/* the screen says why it went quiet, and the corporate half does not answer */
	hvp_console_drain(fd, out, sizeof(out), 500, CMD_MS);
	CHECK(strstr(out, "locked") != NULL, "no lock notice on the console: %s", out);
	CHECK(hvp_console_cmd(fd, "get memo0", out, sizeof(out), 1500) != 0 &&
		      strstr(out, secrets[0]) == NULL,
	      "the locked guest answered: %s", out);
	CHECK(hvp_order(&c, server, hv, CLV_FN_UNLOCK, TICKET_UNLOCK, 2, &rc, NULL) == CLV_OK,
	      "unlock");
	/* what was typed at the locked screen was dropped; then the workspace works as before */
	hvp_console_drain(fd, out, sizeof(out), 1000, CMD_MS);
	CHECK(strstr(out, secrets[0]) == NULL, "a command typed while locked ran: %s", out);
	EXPECT(fd, "get memo1", secrets[1]);
	close(fd);
	bridge_close(&c);
	ed25519_key_free(server);
	hvp_cleanup(&p);
}

/* A small "personal" folder beside the state dir, and a fingerprint of all of it. */
static int
personal_make(const char *dir)
{
	char path[PATH_MAX + 32];
	static const char *const files[] = {"photo.jpg", "notes.txt", "music.mp3"};

	if (mkdir(dir, 0700) != 0)
		return -1;
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		uint8_t data[20000];

		for (size_t k = 0; k < sizeof(data); k++)
			data[k] = (uint8_t)(k * 31 + i * 7);
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		if (file_write_atomic(path, data, sizeof(data), 0644) != 0)
			return -1;
	}
	return 0;
}

static int
cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * SHA-256 over every file's name, size, mtime (to the nanosecond) and bytes, in name order. In
 * C rather than find -printf and sha256sum, which the arm64 image's busybox does not have.
 */
static int
personal_fingerprint(const char *dir, uint8_t out[32])
{
	char *names[32], list[8192], path[PATH_MAX * 2];
	size_t n = 0, len = 0;
	struct dirent *e;
	DIR *d = opendir(dir);
	int rc = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL && n < ARRAY_SIZE(names))
		if (e->d_name[0] != '.')
			names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_names);
	for (size_t i = 0; i < n; i++) {
		struct stat st;
		uint8_t h[32];
		size_t size = 0;
		char *data;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		data = names[i] != NULL && stat(path, &st) == 0 && S_ISREG(st.st_mode)
			       ? file_read_all(path, 1 << 20, &size)
			       : NULL;
		if (data == NULL || len + 200 > sizeof(list)) {
			rc = -1;
		} else {
			crypto_sha256(data, size, h);
			len += (size_t)snprintf(list + len, sizeof(list) - len,
						"%s %zu %lld.%09ld ", names[i], size,
						(long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
			for (size_t k = 0; k < sizeof(h); k++)
				len += (size_t)snprintf(list + len, sizeof(list) - len, "%02x",
							h[k]);
			list[len++] = '\n';
		}
		free(data);
		free(names[i]);
	}
	if (rc == 0 && n > 0)
		crypto_sha256(list, len, out);
	return rc == 0 && n > 0 ? 0 : -1;
}

static void
test_workspace_wiped_personal_untouched(void)
{
	struct hvproc p;
	struct bridge_client c;
	struct ed25519_key *server = NULL;
	struct receipt rc;
	uint8_t hv[32], before[32], after[32], old_root[KEYS_ROOT_LEN];
	char personal[PATH_MAX + 16], path[PATH_MAX + 32], *key;
	struct volume *v;
	size_t n = 0;
	uint64_t epoch;
	int fd;

	if (skip_without_kvm())
		return;
	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	snprintf(personal, sizeof(personal), "%s.personal", p.dir);
	CHECK(personal_make(personal) == 0 && personal_fingerprint(personal, before) == 0,
	      "personal folder");
	CHECK(bridge_connect(&c, p.sock, 5000) == 0 && hvp_pin_new(&c, &server, hv) == CLV_OK,
	      "pin");
	fd = hvp_console_open(&p, CMD_MS);
	CHECK(fd >= 0, "console attach");
	CHECK(put_secrets(fd) == 0, "put");
	/* keep the current root key, as a thief who copied it would */
	CHECK(hvp_state(&c, &epoch) == HV_STATE_ACTIVE, "active");
	snprintf(path, sizeof(path), "%s/root-%llu.key", p.dir, (unsigned long long)epoch);
	key = file_read_all(path, 64, &n);
	CHECK(key != NULL && n == KEYS_ROOT_LEN, "read the root key");
	memcpy(old_root, key, sizeof(old_root));
	explicit_bzero(key, n);
	free(key);

	CHECK(hvp_order(&c, server, hv, CLV_FN_WIPE, TICKET_WIPE, 1, &rc, NULL) == CLV_OK, "wipe");
	CHECK(rc.result == 0 && rc.checks_run == rc.checks_passed &&
		      (rc.checks_passed & CHECK_RAM_ZEROED) &&
		      (rc.checks_passed & CHECK_OLD_KEY_REJECTED),
	      "wipe receipt checks run 0x%x passed 0x%x", rc.checks_run, rc.checks_passed);
	close(fd);
	/* a fresh corporate VM with an empty workspace */
	fd = hvp_console_open(&p, CMD_MS);
	CHECK(fd >= 0, "console attach after the wipe");
	EXPECT(fd, "list", "0 records");
	EXPECT(fd, "get memo0", "no record memo0");
	close(fd);
	bridge_close(&c);
	hvp_stop(&p, SIGTERM);
	/* the old key opens nothing; no plaintext anywhere; the personal half is untouched */
	CHECK(volume_open(p.dir, "corporate", &v) == 0, "open the volume");
	CHECK(volume_try_root_key(v, old_root) == -EKEYREJECTED, "the old root key still works");
	volume_close(v);
	explicit_bzero(old_root, sizeof(old_root));
	CHECK(volume_has_plaintext(&p) == 0, "plaintext in the volume file after the wipe");
	CHECK(personal_fingerprint(personal, after) == 0 && memcmp(before, after, 32) == 0,
	      "the personal folder changed during the wipe");
	ed25519_key_free(server);
	snprintf(path, sizeof(path), "rm -rf '%s'", personal);
	if (!t_failed_now)
		(void)!system(path);
	hvp_cleanup(&p);
}

/* kill -9 inside the wipe (fault injection), then restart: finished, receipt kept, data gone. */
static void
test_workspace_wipe_survives_kill9(void)
{
	static const char *const points[] = {"wipe-after-intent", "wipe-after-destroy"};

	if (skip_without_kvm())
		return;
	for (size_t i = 0; i < ARRAY_SIZE(points); i++) {
		struct hvproc p;
		struct bridge_client c;
		struct ed25519_key *server = NULL;
		struct receipt got;
		uint8_t hv[32], tk[TICKET_LEN], out[RECEIPT_LEN * 16], th[32];
		char fault[64];
		size_t n = 0;
		uint64_t e;
		int fd;

		CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
		CHECK(bridge_connect(&c, p.sock, 5000) == 0 &&
			      hvp_pin_new(&c, &server, hv) == CLV_OK,
		      "pin");
		fd = hvp_console_open(&p, CMD_MS);
		CHECK(fd >= 0 && put_secrets(fd) == 0, "put");
		close(fd);
		bridge_close(&c);
		/* restart with the fault armed; the wipe kills cleave-hv half-way */
		hvp_stop(&p, SIGTERM);
		snprintf(fault, sizeof(fault), "CLEAVE_HV_FAULT=%s", points[i]);
		putenv(fault);
		CHECK(hvp_start(&p) == 0, "start with the fault armed");
		unsetenv("CLEAVE_HV_FAULT");
		CHECK(bridge_connect(&c, p.sock, 5000) == 0, "connect");
		hvp_ticket(server, hv, "dev_ord", TICKET_WIPE, 1, 0, tk);
		CHECK(bridge_call(&c, CLV_FN_WIPE, tk, sizeof(tk), out, sizeof(out), &n) < 0,
		      "%s: the wipe call should have died with cleave-hv", points[i]);
		bridge_close(&c);
		hvp_stop(&p, SIGKILL); /* reap it: it is already dead */
		CHECK(hvp_start(&p) == 0, "restart after the crash");
		CHECK(bridge_connect(&c, p.sock, 5000) == 0, "reconnect");
		CHECK(hvp_state(&c, &e) == HV_STATE_ACTIVE, "%s: not a fresh volume", points[i]);
		CHECK(bridge_call(&c, CLV_FN_RECEIPTS, NULL, 0, out, sizeof(out), &n) == CLV_OK &&
			      n >= RECEIPT_LEN,
		      "%s: no receipt kept", points[i]);
		crypto_sha256(tk, sizeof(tk), th);
		CHECK(receipt_decode(out + n - RECEIPT_LEN, RECEIPT_LEN, &got) == 0 &&
			      ed25519_verify(hv, out + n - RECEIPT_LEN, RECEIPT_BODY_LEN,
					     out + n - RECEIPT_LEN + RECEIPT_BODY_LEN) == 0 &&
			      memcmp(got.ticket_hash, th, 32) == 0 && got.result == 0 &&
			      got.checks_run == got.checks_passed,
		      "%s: the kept receipt is not the wipe's", points[i]);
		fd = hvp_console_open(&p, CMD_MS);
		CHECK(fd >= 0, "console attach after recovery");
		EXPECT(fd, "list", "0 records");
		close(fd);
		CHECK(volume_has_plaintext(&p) == 0, "plaintext after the wipe");
		bridge_close(&c);
		ed25519_key_free(server);
		hvp_cleanup(&p);
	}
}

/* Runs a shell command line in dir; its exit status. */
static int sh(const char *dir, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
sh(const char *dir, const char *fmt, ...)
{
	char cmd[PATH_MAX * 4], line[PATH_MAX * 2], bindir[PATH_MAX];
	const char *bin = getenv("CLEAVE_BIN");
	va_list ap;

	if (realpath(bin && *bin ? bin : "build/bin", bindir) == NULL)
		return -1;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd '%s' && B='%s' && S=hv.sock && { %s ; } >>cli.out 2>&1", dir,
		 bindir, line);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * The walkthrough of hypercall-bridge/README.md, with the real command-line tools only:
 * records typed at the console, not in the volume file; a stand-in owner key pinned; a lock
 * and a wipe by ticket; the wipe receipt verified by the openssl command line.
 */
static void
test_workspace_cli_walkthrough(void)
{
	struct hvproc p;

	if (skip_without_kvm())
		return;
	CHECK(hvp_init(&p) == 0, "cleave-hv did not start");
	CHECK(sh(p.dir, "printf 'put memo1 %s\\r' | $B/cleave-hvctl --socket $S console",
		 secrets[0]) == 0,
	      "console put (see %s/cli.out)", p.dir);
	CHECK(sh(p.dir,
		 "printf 'get memo1\\r' | $B/cleave-hvctl --socket $S console | grep -q '%s'",
		 secrets[0]) == 0,
	      "console get");
	/* The file scan in C: busybox's grep (the arm64 image's) reads the 256 MiB volume as one
	 * line. */
	CHECK(volume_has_plaintext(&p) == 0, "plaintext in the volume");
	CHECK(sh(p.dir,
		 "$B/cleave-ticket keygen owner.key > owner.pub && $B/cleave-hvctl --socket "
		 "$S pin $(cat owner.pub) %s",
		 "demo-phone") == 0,
	      "pin");
	CHECK(sh(p.dir,
		 "$B/cleave-ticket make --key owner.key --hv-socket $S --device %s "
		 "--counter 1 --out lock.tk lock && $B/cleave-hvctl --socket $S lock --ticket "
		 "lock.tk && $B/cleave-hvctl --socket $S status | grep -q 'state: locked'",
		 "demo-phone") == 0,
	      "lock by ticket");
	CHECK(sh(p.dir,
		 "$B/cleave-ticket make --key owner.key --hv-socket $S --device %s "
		 "--counter 1 --out replay.tk unlock && ! $B/cleave-hvctl --socket $S unlock "
		 "--ticket replay.tk",
		 "demo-phone") == 0,
	      "a replayed counter must be refused");
	CHECK(sh(p.dir,
		 "$B/cleave-ticket make --key owner.key --hv-socket $S --device %s "
		 "--counter 2 --out wipe.tk wipe && $B/cleave-hvctl --socket $S wipe --ticket "
		 "wipe.tk --receipt-out wipe.rc",
		 "demo-phone") == 0,
	      "wipe by ticket");
	CHECK(sh(p.dir,
		 "$B/cleave-hvctl --socket $S pubkey --pem > hv.pem && head -c 256 wipe.rc "
		 "> body.bin && tail -c 64 wipe.rc > sig.bin && openssl pkeyutl -verify "
		 "-pubin -inkey hv.pem -rawin -in body.bin -sigfile sig.bin | grep -q '%s'",
		 "Signature Verified Successfully") == 0,
	      "openssl must verify the wipe receipt");
	CHECK(sh(p.dir,
		 "printf '\\001' | dd of=body.bin bs=1 seek=%s conv=notrunc 2>/dev/null "
		 "&& ! openssl pkeyutl -verify -pubin -inkey hv.pem -rawin -in body.bin "
		 "-sigfile sig.bin",
		 "100") == 0,
	      "openssl must reject an altered receipt");
	CHECK(sh(p.dir,
		 "printf 'get memo1\\r' | $B/cleave-hvctl --socket $S console | grep -q '%s'",
		 "no record memo1") == 0,
	      "the record must be gone after the wipe");
	hvp_cleanup(&p);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"workspace_records_persist_encrypted", test_workspace_records_persist_encrypted},
		{"workspace_locked_until_unlocked", test_workspace_locked_until_unlocked},
		{"workspace_wiped_personal_untouched", test_workspace_wiped_personal_untouched},
		{"workspace_wipe_survives_kill9", test_workspace_wipe_survives_kill9},
		{"workspace_cli_walkthrough", test_workspace_cli_walkthrough},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

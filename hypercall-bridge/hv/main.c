/*
 * cleave-hv: wiring only. Parses the command line, opens the hypervisor state (trust, measured
 * guest image), opens the corporate volume (finishing an interrupted wipe first), and serves
 * the host bridge socket until SIGTERM or SIGINT, while the corporate VM runs in its own
 * thread (when /dev/kvm can be opened) and the console (the corporate screen) in another.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch.h"
#include "bridge_server.h"
#include "console.h"
#include "crypto.h"
#include "fileio.h"
#include "hv.h"
#include "log.h"
#include "util.h"

#ifndef CLEAVE_VERSION
#define CLEAVE_VERSION "0.1.0"
#endif

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: cleave-hv --state DIR [--socket PATH] [--agent-uid UID] [--guest FILE]\n"
		"                 [--memory MiB] [--volume-size MiB] [--log-level LEVEL]\n"
		"                 [--console-socket PATH] [--bridge-idle SECONDS] [--tpm TCTI]\n"
		"                 [--version] [--linux KERNEL [--initrd FILE] [--cmdline TEXT]]\n"
		"\n"
		"The thin hypervisor of Cleave's corporate half. DIR is its private state (mode\n"
		"0700, created when missing): identity key, trust state, corporate volume. The\n"
		"bridge socket (default DIR/hv.sock) takes management calls only from\n"
		"--agent-uid (default: our uid); other callers get discovery and status, hold at\n"
		"most 12 connections (4 stay for the agent), each closed after --bridge-idle\n"
		"seconds of silence (default 30). The console socket (default console.sock\n"
		"beside the bridge socket) is the corporate half's screen: the guest's serial\n"
		"console, attached with `cleave-hvctl console`. Only cleave-hv's own user may\n"
		"attach, one client at a time; what it shows is kept\n"
		"only in memory (a 4 KiB scrollback, erased on lock and wipe).\n"
		"\n"
		"--linux (arm64 only; issue 12's stretch) boots KERNEL, an uncompressed arm64\n"
		"Image, as the corporate half instead of the freestanding --guest, with the\n"
		"initramfs FILE and the command line TEXT (default \"console=ttyS0 earlycon\"),\n"
		"a device tree of cleave-hv's own, and the corporate volume as its virtio disk\n"
		"(/dev/vda, 4096-byte blocks). The measurement covers the kernel, the\n"
		"initramfs and the command line.\n"
		"--tpm TCTI keeps the identity and the trust state's counters in a TPM 2.0\n"
		"(hypercall-bridge/TPM.md): TCTI is tpm2-tss's, such as device:/dev/tpmrm0 or\n"
		"swtpm:host=127.0.0.1,port=2321. The identity is then a TPM-resident P-256 key\n"
		"(its blob in DIR/tpm-ak.blob loads only in that TPM). Without --tpm the\n"
		"identity is an Ed25519 key in DIR/identity.key (the file keystore). A state\n"
		"directory belongs to one keystore: switching means enrolling again.\n");
}

static int
parse_uint(const char *v, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long x = strtoul(v, &end, 10);

	if (*v == '\0' || *end != '\0' || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

/* The guest image beside the binary: BIN/../guest/guest.bin (as built by make). */
static void
default_guest(char *out, size_t cap)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *slash;

	exe[n > 0 ? n : 0] = '\0';
	slash = strrchr(exe, '/');
	if (slash != NULL)
		*slash = '\0';
	snprintf(out, cap, "%s/../guest/guest.bin", exe);
}

struct opts {
	const char *state, *sock, *guest, *csock, *linux, *initrd, *cmdline, *tcti;
	unsigned long uid, mem, vol, idle;
	enum log_level lvl;
};

/* Sets the option a to v; 0, or -1 when a takes no such value. */
static int
set_opt(struct opts *o, const char *a, const char *v)
{
	if (strcmp(a, "--state") == 0)
		o->state = v;
	else if (strcmp(a, "--socket") == 0)
		o->sock = v;
	else if (strcmp(a, "--console-socket") == 0)
		o->csock = v;
	else if (strcmp(a, "--guest") == 0)
		o->guest = v;
	else if (strcmp(a, "--linux") == 0)
		o->linux = v;
	else if (strcmp(a, "--initrd") == 0)
		o->initrd = v;
	else if (strcmp(a, "--cmdline") == 0)
		o->cmdline = v;
	else if (strcmp(a, "--tpm") == 0)
		o->tcti = v;
	else if (strcmp(a, "--agent-uid") == 0)
		return parse_uint(v, 0, 1u << 30, &o->uid);
	else if (strcmp(a, "--memory") == 0)
		return parse_uint(v, 2, 4096, &o->mem);
	else if (strcmp(a, "--volume-size") == 0)
		return parse_uint(v, 4, 1u << 20, &o->vol);
	else if (strcmp(a, "--bridge-idle") == 0)
		return parse_uint(v, 1, 86400, &o->idle);
	else if (strcmp(a, "--log-level") == 0)
		return log_level_parse(v, &o->lvl);
	return 0;
}

/* --linux and its companions: arm64 only, not with --guest. 0 or 2 (said on stderr). */
static int
linux_args_check(const struct opts *o)
{
	if (o->linux == NULL && (o->initrd != NULL || o->cmdline != NULL)) {
		fprintf(stderr, "cleave-hv: --initrd and --cmdline go with --linux (see --help)\n");
		return 2;
	}
	if (o->linux != NULL && o->guest != NULL) {
		fprintf(stderr, "cleave-hv: --linux and --guest exclude each other\n");
		return 2;
	}
	if (o->linux != NULL && !arch_linux_supported()) {
		fprintf(stderr, "cleave-hv: --linux: this architecture boots only the freestanding "
				"guest (arm64 boots Linux)\n");
		return 2;
	}
	return 0;
}

/* 0 to run, 1 when done (help, version), 2 on a usage error (said on stderr). */
static int
parse_args(int argc, char **argv, struct opts *o)
{
	static const char *const known[] = {
		"--state",     "--socket", "--console-socket", "--guest",
		"--agent-uid", "--memory", "--volume-size",    "--bridge-idle",
		"--log-level", "--linux",  "--initrd",         "--cmdline",
		"--tpm",
	};

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int found = 0;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 1;
		}
		if (strcmp(a, "--version") == 0) {
			printf("cleave-hv %s\n", CLEAVE_VERSION);
			return 1;
		}
		for (size_t k = 0; k < ARRAY_SIZE(known); k++)
			found |= strcmp(a, known[k]) == 0;
		if (!found) {
			fprintf(stderr, "cleave-hv: unknown option %s (see --help)\n", a);
			return 2;
		}
		if (v == NULL || set_opt(o, a, v) != 0) {
			fprintf(stderr, "cleave-hv: %s needs a valid value (see --help)\n", a);
			return 2;
		}
		i++;
	}
	if (o->state == NULL) {
		fprintf(stderr, "cleave-hv: --state DIR is required (see --help)\n");
		return 2;
	}
	return linux_args_check(o);
}

/*
 * Creates the state directory (mode 0700) when it is missing; its parent must exist. An
 * existing one is left as it is: hv_open refuses it unless it is private.
 */
static int
state_dir_make(const char *dir)
{
	if (mkdir(dir, 0700) == 0) {
		log_info("cleave-hv: created the state directory %s (mode 0700)", dir);
		return 0;
	}
	if (errno == EEXIST)
		return 0;
	log_errno(errno, "cleave-hv: cannot create the state directory %s", dir);
	return -1;
}

/* The console socket's default, beside the bridge socket (cleave-hvctl uses the same rule). */
static void
default_console(const char *sock, char *out, size_t cap)
{
	const char *slash = strrchr(sock, '/');

	snprintf(out, cap, "%.*s/console.sock", slash != NULL ? (int)(slash - sock) : 1,
		 slash != NULL ? sock : ".");
}

/* Fills the paths the command line left out: bridge and console sockets, guest image. */
static void
paths_default(struct opts *o, char sock[PATH_MAX], char csock[PATH_MAX], char guest[PATH_MAX])
{
	if (o->sock == NULL) {
		snprintf(sock, PATH_MAX, "%s/hv.sock", o->state);
		o->sock = sock;
	}
	if (o->csock == NULL) {
		default_console(o->sock, csock, PATH_MAX);
		o->csock = csock;
	}
	if (o->guest == NULL) {
		default_guest(guest, PATH_MAX);
		o->guest = guest;
	}
}

/*
 * Opens the volume (finishing an interrupted order), the console, the VM and the bridge. The
 * console opens before the VM boots, so that the boot banner reaches the scrollback. Like a VM
 * that cannot start, a console that cannot open must not stop cleave-hv: a remote wipe must
 * still be possible. Console input goes to the guest (hv_vm_feed). 0 or -errno.
 */
static int
serve_open(struct hv *h, const struct opts *o, struct bridge_server *srv)
{
	int r = hv_orders_open(h, o->vol);

	if (r == 0 && console_open(o->csock, geteuid(), hv_vm_feed, h, &h->console) != 0)
		log_warn("cleave-hv: serving without a console");
	if (r == 0 && hv_vm_boot(h, o->mem) != 0)
		log_warn("cleave-hv: serving orders without a running corporate VM");
	if (r == 0 && !h->kvm)
		console_set_status(h->console, "[cleave-hv] no corporate VM on this machine "
					       "(/dev/kvm cannot be opened): nothing to show");
	if (r == 0)
		r = bridge_server_open(srv, o->sock, (uid_t)o->uid);
	srv->idle_ms = (uint64_t)o->idle * 1000;
	return r;
}

static void
serve_close(struct hv *h)
{
	struct tpm *tpm = h->tpm;

	hv_vm_destroy(h); /* the vCPU is gone: nothing writes to the console any more */
	console_close(h->console);
	h->console = NULL;
	hv_orders_close(h);
	hv_close(h);
	hv_tpm_disconnect(tpm);
}

/*
 * The measurement's part for a Linux guest: the SHA-256 of the initramfs and the command line
 * (the kernel itself is the measured image). Empty without --linux. 0 or -1 (logged).
 */
static int
linux_tag(const struct opts *o, char *out, size_t cap)
{
	static const uint8_t none = 0;
	const char *cmd = o->cmdline != NULL ? o->cmdline : "";
	size_t n = 0;
	uint8_t *rd = NULL, md[32];
	const void *parts[3];
	size_t lens[3];

	out[0] = '\0';
	if (o->linux == NULL)
		return 0;
	if (o->initrd != NULL &&
	    (rd = (uint8_t *)file_read_all(o->initrd, 256u << 20, &n)) == NULL) {
		log_errno(errno, "cleave-hv: cannot read the initramfs %s", o->initrd);
		return -1;
	}
	parts[0] = rd != NULL ? (const void *)rd : &none, lens[0] = n;
	parts[1] = &none, lens[1] = 1; /* separates the initramfs from the command line */
	parts[2] = cmd, lens[2] = strlen(cmd);
	crypto_sha256_parts(parts, lens, 3, md);
	free(rd);
	snprintf(out, cap, " linux=");
	for (size_t i = 0; i < sizeof(md); i++)
		snprintf(out + strlen(out), cap - strlen(out), "%02x", md[i]);
	return 0;
}

int
main(int argc, char **argv)
{
	struct opts o = {.uid = getuid(),
			 .mem = 64,
			 .vol = 256,
			 .idle = BRIDGE_IDLE_DEFAULT,
			 .lvl = LOG_LVL_INFO};
	char sockbuf[PATH_MAX], csockbuf[PATH_MAX], guestbuf[PATH_MAX], config[256], ltag[96];
	struct bridge_server srv;
	struct tpm *tpm = NULL;
	struct hv h;
	int r = parse_args(argc, argv, &o);

	if (r != 0)
		return r == 1 ? 0 : 2;
	log_set_level(o.lvl);
	/*
	 * Before anything is opened: a SIGTERM from whoever saw the bridge socket appear (it exists
	 * before the loop below runs) must stop cleave-hv cleanly, not kill it with the default
	 * action. Set during start-up, stop ends the loop at once.
	 */
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	umask(077);
	if (state_dir_make(o.state) != 0)
		return 1;
	if (o.linux != NULL)
		o.guest = o.linux; /* the kernel is the measured image */
	paths_default(&o, sockbuf, csockbuf, guestbuf);
	if (linux_tag(&o, ltag, sizeof(ltag)) != 0)
		return 1;
	/* The architecture's tag keeps an image measured on one from matching another's enrollment. */
	snprintf(config, sizeof(config), "cleave-vm v1 memory=%luM vcpus=1 volume=%luM%s%s", o.mem,
		 o.vol, arch_config_tag(), ltag);
	if (o.tcti != NULL && hv_tpm_connect(o.tcti, &tpm) != 0)
		return 1;
	if (hv_open(&h, o.state, o.guest, config, NULL, tpm) != 0) {
		hv_tpm_disconnect(tpm);
		return 1;
	}
	h.linux_guest = o.linux != NULL;
	h.linux_initrd = o.initrd;
	h.linux_cmdline = o.cmdline;
	if (serve_open(&h, &o, &srv) != 0) {
		serve_close(&h);
		return 1;
	}
	log_info("cleave-hv: state %s, bridge %s (agent uid %lu), console %s, keystore %s", o.state,
		 o.sock, o.uid, h.console != NULL ? o.csock : "none",
		 tpm != NULL ? o.tcti : "file");
	/* Bounded only by the signal: the server's loop. */
	for (uint64_t n = 1; !stop; n++) {
		if (bridge_server_poll(&srv, &h.d, 200) != 0)
			break;
		hv_orders_tick(&h);
		/* A Linux guest that goes quiet is found by its PC, logged every 10 s at debug. */
		if (h.linux_guest && o.lvl == LOG_LVL_DEBUG && n % 50 == 0)
			hv_vm_sample(&h);
	}
	log_info("cleave-hv: shutting down");
	bridge_server_close(&srv);
	serve_close(&h);
	return 0;
}

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

#include "bridge_server.h"
#include "console.h"
#include "hv.h"
#include "log.h"
#include "util.h"

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
		"                 [--console-socket PATH]\n"
		"\n"
		"The thin hypervisor of Cleave's corporate half. DIR is its private state (mode\n"
		"0700): identity key, trust state, corporate volume. The bridge socket (default\n"
		"DIR/hv.sock) takes management calls only from --agent-uid (default: our uid).\n"
		"The console socket (default DIR/console.sock) is the corporate half's screen:\n"
		"the guest's serial console, attached with `cleave-hvctl console`. Only\n"
		"cleave-hv's own user may attach, one client at a time; what it shows is kept\n"
		"only in memory (a 4 KiB scrollback, erased on lock and wipe).\n");
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

int
main(int argc, char **argv)
{
	const char *state = NULL, *sock = NULL, *guest = NULL, *csock = NULL;
	unsigned long uid = getuid(), mem = 64, vol = 256;
	char sockbuf[PATH_MAX], csockbuf[PATH_MAX], guestbuf[PATH_MAX], config[128];
	enum log_level lvl = LOG_LVL_INFO;
	struct bridge_server srv;
	struct hv h;
	int r;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		}
		if (v == NULL) {
			fprintf(stderr, "cleave-hv: %s needs a value (see --help)\n", a);
			return 2;
		}
		i++;
		if (strcmp(a, "--state") == 0)
			state = v;
		else if (strcmp(a, "--socket") == 0)
			sock = v;
		else if (strcmp(a, "--console-socket") == 0)
			csock = v;
		else if (strcmp(a, "--guest") == 0)
			guest = v;
		else if (strcmp(a, "--agent-uid") == 0 && parse_uint(v, 0, 1u << 30, &uid) == 0)
			;
		else if (strcmp(a, "--memory") == 0 && parse_uint(v, 2, 4096, &mem) == 0)
			;
		else if (strcmp(a, "--volume-size") == 0 && parse_uint(v, 4, 1u << 20, &vol) == 0)
			;
		else if (strcmp(a, "--log-level") == 0 && log_level_parse(v, &lvl) == 0)
			;
		else {
			fprintf(stderr, "cleave-hv: bad option or value: %s %s (see --help)\n", a,
				v);
			return 2;
		}
	}
	if (state == NULL) {
		usage(stderr);
		return 2;
	}
	log_set_level(lvl);
	umask(077);
	if (sock == NULL) {
		snprintf(sockbuf, sizeof(sockbuf), "%s/hv.sock", state);
		sock = sockbuf;
	}
	if (csock == NULL) {
		snprintf(csockbuf, sizeof(csockbuf), "%s/console.sock", state);
		csock = csockbuf;
	}
	if (guest == NULL) {
		default_guest(guestbuf, sizeof(guestbuf));
		guest = guestbuf;
	}
	snprintf(config, sizeof(config), "cleave-vm v1 memory=%luM vcpus=1 volume=%luM", mem, vol);
	r = hv_open(&h, state, guest, config, NULL);
	if (r != 0)
		return 1;
	r = hv_orders_open(&h, vol);
	/*
	 * The console opens before the VM boots, so that the boot banner reaches the scrollback.
	 * Like a VM that cannot start, a console that cannot open must not stop cleave-hv: a
	 * remote wipe must still be possible. Console input goes to the guest (hv_vm_feed).
	 */
	if (r == 0 && console_open(csock, geteuid(), hv_vm_feed, &h, &h.console) != 0)
		log_warn("cleave-hv: serving without a console");
	if (r == 0 && hv_vm_boot(&h, mem) != 0)
		log_warn("cleave-hv: serving orders without a running corporate VM");
	if (r == 0 && !h.kvm)
		console_set_status(h.console, "[cleave-hv] no corporate VM on this machine "
					      "(/dev/kvm cannot be opened): nothing to show");
	if (r == 0)
		r = bridge_server_open(&srv, sock, (uid_t)uid);
	if (r != 0) {
		hv_vm_destroy(&h);
		console_close(h.console);
		h.console = NULL;
		hv_orders_close(&h);
		hv_close(&h);
		return 1;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	log_info("cleave-hv: state %s, bridge %s (agent uid %lu), console %s", state, sock, uid,
		 h.console != NULL ? csock : "none");
	while (!stop) {
		if (bridge_server_poll(&srv, &h.d, 200) != 0)
			break;
		hv_orders_tick(&h);
	}
	log_info("cleave-hv: shutting down");
	bridge_server_close(&srv);
	hv_vm_destroy(&h); /* the vCPU is gone: nothing writes to the console any more */
	console_close(h.console);
	h.console = NULL;
	hv_orders_close(&h);
	hv_close(&h);
	return 0;
}

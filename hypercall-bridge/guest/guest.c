/*
 * The corporate VM's small guest: prints a banner on COM1, checks the hypercall ABI version
 * through the doorbell, loads the workspace index from its disk, then runs a line console.
 * Commands live in one table; the workspace ones (put/get/list/del) are in workspace.c. It runs at
 * CPL 0 / EL1, where the x86 host emulates every instruction, so it stays short and waits with
 * idle() (the VMM wakes it when console input arrives) instead of spinning on the status
 * register. The same C builds for x86 and arm64; arch/<arch>/ holds start code and guest_io.h.
 */
#include <stddef.h>
#include <stdint.h>

#include "cleave_abi.h"
#include "guest_io.h"
#include "tty.h"

#define LINE_MAX 80

struct cmd {
	const char *name;
	const char *help;
	void (*fn)(char *arg);
};

void guest_main(void);
/* arch/<arch>/user.S: n doorbell calls from guest user mode (CPL 3, EL0), then spins for good. */
void user_bench(uint64_t n) __attribute__((noreturn));

void
put_char(char c)
{
	if (c == '\n')
		uart_put('\r');
	uart_put((uint8_t)c);
}

void
put_str(const char *s)
{
	while (*s != '\0')
		put_char(*s++);
}

void
put_dec(uint64_t v)
{
	char buf[21];
	int i = (int)sizeof(buf);

	buf[--i] = '\0';
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0 && i > 0);
	put_str(&buf[i]);
}

int
str_eq(const char *a, const char *b)
{
	while (*a != '\0' && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

int
mem_eq(const void *a, const void *b, size_t n)
{
	const uint8_t *p = a, *q = b;

	for (size_t i = 0; i < n; i++)
		if (p[i] != q[i])
			return 0;
	return 1;
}

/* Parses a decimal number of at most 9 digits; returns -1 when s is not one. */
static int64_t
parse_dec(const char *s)
{
	int64_t v = 0;
	int n = 0;

	while (*s >= '0' && *s <= '9' && n < 9) {
		v = v * 10 + (*s++ - '0');
		n++;
	}
	return (n == 0 || *s != '\0') ? -1 : v;
}

/* Prints "abi M.m" and returns 0 when the hypervisor's major matches ours, else -1. */
static int
check_abi(void)
{
	uint64_t res[3];
	int64_t v = hv_call(CLV_FN_VERSION, 0, 0, 0, 0, res);

	if (v < 0 || ((uint64_t)v >> 16) != CLV_ABI_MAJOR) {
		put_str("abi mismatch: hv returned ");
		put_dec((uint64_t)v);
		put_char('\n');
		return -1;
	}
	put_str("abi ");
	put_dec((uint64_t)v >> 16);
	put_char('.');
	put_dec((uint64_t)v & 0xffff);
	put_char('\n');
	return 0;
}

static void cmd_help(char *arg);

static void
cmd_version(char *arg)
{
	(void)arg;
	put_str("version: ");
	check_abi();
}

/* ping N: N back-to-back VERSION hypercalls, for round-trip timing from the host. */
static void
cmd_ping(char *arg)
{
	uint64_t res[3];
	int64_t n = parse_dec(arg), ok = 0;

	if (n < 1 || n > 100000) {
		put_str("usage: ping N (1..100000)\n");
		return;
	}
	for (int64_t i = 0; i < n; i++)
		ok += hv_call(CLV_FN_VERSION, 0, 0, 0, 0, res) == (int64_t)CLV_ABI_VERSION;
	put_str("pong ");
	put_dec((uint64_t)ok);
	put_char('\n');
}

/* spin: loop forever without exits, so the host can test stopping a vCPU that never exits. */
static void
cmd_spin(char *arg)
{
	(void)arg;
	put_str("spinning\n");
	for (;;)
		__asm__ volatile("" ::: "memory");
}

/* ubench N: N VERSION calls from guest user mode (CPL 3 / EL0); the console is gone afterwards. */
static void
cmd_ubench(char *arg)
{
	int64_t n = parse_dec(arg);

	if (n < 1 || n > 100000) {
		put_str("usage: ubench N (1..100000)\n");
		return;
	}
	put_str("ubench: entering user mode for good\n");
	user_bench((uint64_t)n);
}

static const char *const state_names[] = {"?", "active", "locked", "wipe pending", "erased"};

static void
cmd_status(char *arg)
{
	uint64_t res[3];
	int64_t r = hv_call(CLV_FN_STATUS, 0, 0, 0, 0, res);

	(void)arg;
	if (r != CLV_OK) {
		put_str("status: error ");
		put_dec((uint64_t)-r);
		put_char('\n');
		return;
	}
	put_str("corporate half ");
	put_str(res[0] < 5 ? state_names[res[0]] : "?");
	put_str(", key epoch ");
	put_dec(res[1]);
	put_str(", disk ");
	put_dec(res[2] * 4);
	put_str(" KiB\n");
}

static const struct cmd cmds[] = {
	{"help", "list commands", cmd_help},
	{"put", "put NAME TEXT: save a record", cmd_put},
	{"get", "get NAME: show a record", cmd_get},
	{"list", "list the records", cmd_list},
	{"del", "del NAME: delete a record", cmd_del},
	{"status", "corporate state, key epoch, disk size", cmd_status},
	{"version", "hypercall ABI version", cmd_version},
	{"ping", "ping N: N hypercalls, then pong N", cmd_ping},
	{"ubench", "ubench N: N hypercalls from CPL 3, then spin", cmd_ubench},
	{"spin", "loop forever without exits (stop test)", cmd_spin},
};

static void
cmd_help(char *arg)
{
	(void)arg;
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		put_str(cmds[i].name);
		put_str(" - ");
		put_str(cmds[i].help);
		put_char('\n');
	}
}

/* Splits line at the first space into command and argument and runs the command. */
static void
run_line(char *line)
{
	char *arg;
	size_t i;

	for (i = 0; line[i] != '\0' && line[i] != ' '; i++)
		;
	arg = &line[i]; /* "" unless a space follows the command */
	if (line[i] == ' ') {
		line[i] = '\0';
		arg = &line[i + 1];
	}
	if (line[0] == '\0')
		return;
	for (size_t c = 0; c < sizeof(cmds) / sizeof(cmds[0]); c++) {
		if (str_eq(line, cmds[c].name)) {
			cmds[c].fn(arg);
			return;
		}
	}
	put_str("unknown command: ");
	put_str(line);
	put_str(" (try help)\n");
}

/*
 * Waits for one byte of console input; idle() hands the CPU back to the VMM until there is one
 * (x86: hlt; arm64: the status read itself waits in the VMM, as WFI never exits there).
 */
static char
get_char(void)
{
	while (!uart_has_input())
		idle();
	return (char)uart_get();
}

void
guest_main(void)
{
	char line[LINE_MAX + 1];
	size_t len = 0;

	put_str("cleave corporate guest\n");
	if (check_abi() == 0)
		ws_init();
	put_str("corp> ");
	for (;;) {
		char c = get_char();

		if (c == '\r' || c == '\n') {
			put_char('\n');
			line[len] = '\0';
			run_line(line);
			len = 0;
			put_str("corp> ");
		} else if ((c == 0x7f || c == '\b') && len > 0) {
			len--;
			put_str("\b \b");
		} else if (c >= ' ' && c < 0x7f && len < LINE_MAX) {
			line[len++] = c;
			put_char(c);
		}
	}
}

/*
 * cleavectl's administration commands against the real cleave-server: bulk commands by
 * filter (the confirmed count, 409 when it changed), enrollment tokens with the QR code drawn
 * in the terminal, policies from a file, the audit log (list, tail --follow, verify, export),
 * console accounts and API tokens, each with its errors and exit codes. test_cleavectl.c has
 * login, devices, commands, --wait and receipts.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

/* bulk create by filter with the confirmed count; list, get, cancel. */
static void
t_bulk(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	struct device_sim a, b;
	char id[64], state[32] = "";

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-bulk");
	CHECK(admin_enroll(e->admin, e->anon, &a, "alice@example.com") == 0, "enroll a");
	CHECK(admin_enroll(e->admin, e->anon, &b, "bob@example.com") == 0, "enroll b");
	/* No count and no terminal to type it on: refused, nothing queued. */
	RUN(1, e, "bulk", "create", "--type", "refresh", "--status", "active");
	CHECK(strstr(e->err, "matches 2 devices") != NULL, "%s", e->err);
	/* A count that is not the filter's: 409, exit 3, with the current count. */
	RUN(3, e, "bulk", "create", "--type", "refresh", "--status", "active", "--expected-count",
	    "5");
	CHECK(strstr(e->err, "now matches 2 devices") != NULL, "%s", e->err);
	RUN(1, e, "bulk", "create", "--type", "refresh", "--sort", "owner", "--expected-count",
	    "2");
	RUN(1, e, "bulk", "create", "--type", "refresh", "--status", "lost", "--expected-count",
	    "2");
	RUN(0, e, "--json", "bulk", "create", "--type", "refresh", "--status", "active",
	    "--expected-count", "2", "--reason", "check <all>", "--idempotency-key", "b-1");
	CHECK(ctl_out_str(e, "id", id, sizeof(id)) == 0, "%s", e->out);
	for (int i = 0; i < 100 && strcmp(state, "done") != 0; i++) {
		RUN(0, e, "--json", "bulk", "get", id);
		ctl_out_str(e, "state", state, sizeof(state));
		usleep(100000);
	}
	CHECK(strcmp(state, "done") == 0, "bulk state %s", state);
	RUN(0, e, "bulk", "get", id);
	CHECK(strstr(e->out, "queued: 2") != NULL, "%s", e->out);
	RUN(0, e, "bulk", "list", "--state", "done");
	CHECK(strstr(e->out, id) != NULL && strstr(e->out, "check <all>") != NULL, "%s", e->out);
	RUN(1, e, "bulk", "list", "--state", "sleeping");
	RUN(3, e, "bulk", "cancel", id);
	RUN(2, e, "bulk", "get", "blk_nosuch");
	dev_fini(&a);
	dev_fini(&b);
	ctl_down(e);
	free(e);
}

#define QR_SCALE 6
#define QR_EDGE  4 /* modules of extra light margin in the image */

/*
 * Turns the half-block QR text at qr (lines up to an empty line) into a PGM image, light
 * where a half is drawn (or, inverted, where it is not), and reads it with zbarimg into out.
 * 0 when zbarimg decoded something, 1 when zbarimg is not installed, -1 otherwise.
 */
static int
qr_decode(const char *home, const char *qr, int invert, char *out, size_t cap)
{
	char img[PATH_MAX + 16], cmd[PATH_MAX + 64], bits[128][128];
	int rows = 0, cols = 0, side;
	FILE *f, *p;

	if (system("command -v zbarimg >/dev/null 2>&1") != 0)
		return 1;
	memset(bits, 0, sizeof(bits));
	for (const char *l = qr; *l && *l != '\n' && rows < 126; l = strchr(l, '\n') + 1) {
		int x = 0;

		for (const char *q = l; *q && *q != '\n' && x < 128; x++) {
			int top = 0, bot = 0;

			if (strncmp(q, "\xe2\x96\x88", 3) == 0)
				top = bot = 1;
			else if (strncmp(q, "\xe2\x96\x80", 3) == 0)
				top = 1;
			else if (strncmp(q, "\xe2\x96\x84", 3) == 0)
				bot = 1;
			q += *q == ' ' ? 1 : 3;
			bits[rows][x] = (char)(top ^ invert);
			bits[rows + 1][x] = (char)(bot ^ invert);
		}
		cols = x;
		rows += 2;
	}
	side = (cols > rows ? cols : rows) + 2 * QR_EDGE;
	snprintf(img, sizeof(img), "%s/qr.pgm", home);
	if ((f = fopen(img, "wb")) == NULL)
		return -1;
	fprintf(f, "P5 %d %d 255\n", side * QR_SCALE, side * QR_SCALE);
	for (int y = 0; y < side * QR_SCALE; y++)
		for (int x = 0; x < side * QR_SCALE; x++) {
			int my = y / QR_SCALE - QR_EDGE, mx = x / QR_SCALE - QR_EDGE;
			int light = my < 0 || mx < 0 || my >= rows || mx >= cols || bits[my][mx];

			fputc(light ? 255 : 0, f);
		}
	fclose(f);
	snprintf(cmd, sizeof(cmd), "zbarimg -q --raw '%s' 2>/dev/null", img);
	if ((p = popen(cmd, "r")) == NULL)
		return -1;
	if (fgets(out, (int)cap, p) == NULL)
		out[0] = '\0';
	pclose(p);
	unlink(img);
	out[strcspn(out, "\n")] = '\0';
	return out[0] ? 0 : -1;
}

/* The QR code: equal-width lines of half blocks, and the link printed after it. */
static void
t_enrollment_tokens(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	char id[64], *qr, *link, decoded[512] = "";
	size_t lines = 0, width = 0;
	int rc;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-etokens");
	RUN(0, e, "enrollment-tokens", "create", "--owner", "carol@example.com", "--uses", "2");
	printf("    the enrollment QR code as cleavectl draws it:\n%s", e->out);
	link = strstr(e->out, "Open on the phone (shown only now): https://");
	CHECK(link != NULL && strstr(link, "/enroll?token=") != NULL, "no link: %s", e->out);
	qr = strstr(e->out, "\n\n");
	CHECK(qr != NULL, "no QR block: %s", e->out);
	for (char *p = qr + 2; *p && *p != '\n'; p = strchr(p, '\n') + 1) {
		size_t cols = 0;

		for (char *q = p; *q && *q != '\n'; q++)
			cols += ((unsigned char)*q & 0xc0) != 0x80;
		CHECK(width == 0 || cols == width, "line %zu has %zu columns, not %zu", lines, cols,
		      width);
		width = cols;
		lines++;
	}
	/* Version 3 or more (29+ modules) and 2 of quiet zone each side; two rows a line. */
	CHECK(width >= 33 && lines == (width + 1) / 2, "QR %zu x %zu lines", width, lines);
	CHECK(strstr(e->out, "\xe2\x96\x80") && strstr(e->out, "\xe2\x96\x84"), "no half blocks");
	/* zbar reads it as the link (when Debian's zbar-tools is installed). */
	link += strlen("Open on the phone (shown only now): ");
	link[strcspn(link, "\n")] = '\0';
	rc = qr_decode(e->home, qr + 2, 0, decoded, sizeof(decoded));
	CHECK(rc == 1 || (rc == 0 && strcmp(decoded, link) == 0), "zbarimg read \"%s\", not %s",
	      decoded, link);
	printf("    zbarimg: %s\n", rc == 1 ? "not installed (zbar-tools)" : decoded);
	RUN(0, e, "enrollment-tokens", "create", "--owner", "carol@example.com", "--invert");
	qr = strstr(e->out, "\n\n");
	link = strstr(e->out, "https://");
	CHECK(qr && link, "%s", e->out);
	link[strcspn(link, "\n")] = '\0';
	rc = qr_decode(e->home, qr + 2, 1, decoded, sizeof(decoded));
	CHECK(rc == 1 || (rc == 0 && strcmp(decoded, link) == 0), "inverted: zbarimg read \"%s\"",
	      decoded);
	RUN(0, e, "enrollment-tokens", "create", "--owner", "carol@example.com", "--no-qr");
	CHECK(strstr(e->out, "\xe2\x96") == NULL && strstr(e->out, "https://"), "%s", e->out);
	RUN(0, e, "--json", "enrollment-tokens", "create", "--owner", "dave@example.com");
	CHECK(ctl_out_str(e, "id", id, sizeof(id)) == 0, "%s", e->out);
	RUN(1, e, "enrollment-tokens", "create", "--owner", "not an email");
	RUN(1, e, "enrollment-tokens", "create", "--owner", "x@example.com", "--uses", "0");
	RUN(0, e, "enrollment-tokens", "list");
	CHECK(strstr(e->out, "carol@example.com") && strstr(e->out, id), "%s", e->out);
	RUN(0, e, "enrollment-tokens", "revoke", id);
	RUN(2, e, "enrollment-tokens", "revoke", "etk_nosuch");
	ctl_down(e);
	free(e);
}

static void
t_policies(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	char file[PATH_MAX + 16], bad[PATH_MAX + 16];
	static const char pol[] = "{\"offline\": {\"lock_after_hours\": 48}, "
				  "\"max_failed_unlocks\": 5}\n";

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-policies");
	snprintf(file, sizeof(file), "%s/strict.json", e->home);
	snprintf(bad, sizeof(bad), "%s/bad.json", e->home);
	CHECK(file_write_atomic(file, pol, strlen(pol), 0600) == 0 &&
		      file_write_atomic(bad, "{\"max_failed_unlocks\": \"x\"}", 27, 0600) == 0,
	      "write");
	RUN(0, e, "policies", "put", "strict", "--file", file);
	CHECK(strstr(e->out, "policy strict version 1 (new)") != NULL, "%s", e->out);
	RUN(0, e, "policies", "put", "relaxed", "--file", file);
	RUN(1, e, "policies", "put", "broken", "--file", bad);
	RUN(1, e, "policies", "put", "strict");
	RUN(0, e, "policies", "get", "strict");
	CHECK(strstr(e->out, "content.max_failed_unlocks: 5") != NULL, "%s", e->out);
	RUN(2, e, "policies", "get", "nosuch");
	RUN(0, e, "policies", "list");
	CHECK(strstr(e->out, "strict") && strstr(e->out, "relaxed"), "%s", e->out);
	RUN(0, e, "policies", "default", "relaxed");
	RUN(0, e, "--json", "policies", "default");
	CHECK(strstr(e->out, "\"relaxed\"") != NULL, "%s", e->out);
	ctl_down(e);
	free(e);
}

/* Waits (at most 15 s) until the file at path holds want. */
static int
file_shows(const char *path, const char *want)
{
	for (int i = 0; i < 150; i++) {
		size_t n;
		char *s = file_read_all(path, 1 << 20, &n);
		int found = s != NULL && strstr(s, want) != NULL;

		free(s);
		if (found)
			return 1;
		usleep(100000);
	}
	return 0;
}

/* Console accounts: create from a password file, the same email again, list, TOTP, disable. */
static void
accounts(struct ctl_env *e)
{
	char acct[64], pw[PATH_MAX + 16];

	snprintf(pw, sizeof(pw), "%s/pw", e->home);
	CHECK(file_write_atomic(pw, "correct horse battery\n", 22, 0600) == 0, "write");
	RUN(0, e, "--json", "admins", "create", "--email", "erin@example.com", "--name", "Erin",
	    "--role", "helpdesk", "--password-file", pw);
	CHECK(ctl_out_str(e, "id", acct, sizeof(acct)) == 0, "%s", e->out);
	RUN(3, e, "admins", "create", "--email", "erin@example.com", "--name", "Erin", "--role",
	    "helpdesk", "--password-file", pw);
	RUN(1, e, "admins", "create", "--email", "f@example.com", "--name", "F", "--role", "admin");
	RUN(0, e, "admins", "list");
	CHECK(strstr(e->out, "erin@example.com") != NULL, "%s", e->out);
	RUN(0, e, "admins", "totp", acct);
	CHECK(strstr(e->out, "otpauth://totp/") != NULL, "%s", e->out);
	RUN(0, e, "admins", "disable", acct);
	RUN(2, e, "admins", "disable", "adm_nosuch");
}

/* audit list, tail -n, tail --follow, verify, export; tokens and accounts on the way. */
static void
t_audit_tokens_admins(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	const char *follow[] = {"audit", "tail", "-n", "2", "--follow", "--interval", "1", NULL};
	char tok[64], secret[128], exp[PATH_MAX + 16], outp[PATH_MAX + 16];
	size_t n;
	char *s;
	pid_t pid;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-audit");
	/* tokens */
	RUN(0, e, "--json", "tokens", "create", "--name", "reader <i>", "--role", "auditor");
	CHECK(ctl_out_str(e, "id", tok, sizeof(tok)) == 0 &&
		      ctl_out_str(e, "token", secret, sizeof(secret)) == 0,
	      "%s", e->out);
	RUN(1, e, "tokens", "create", "--name", "x", "--role", "superuser");
	RUN(0, e, "tokens", "list");
	CHECK(strstr(e->out, "reader <i>") != NULL, "%s", e->out);
	snprintf(e->token_env, sizeof(e->token_env), "CLEAVE_TOKEN=%s", secret);
	RUN(0, e, "audit", "verify");
	RUN(4, e, "tokens", "create", "--name", "y", "--role", "admin"); /* an auditor may not */
	CHECK(strstr(e->err, "403") != NULL, "%s", e->err);
	e->token_env[0] = '\0';
	/* audit tail --follow shows an entry written after it started. */
	pid = ctl_spawn(e, NULL, follow);
	snprintf(outp, sizeof(outp), "%s/out", e->home);
	CHECK(pid > 0 && file_shows(outp, "token.create"), "tail: no first entries");
	CHECK(admin_token(e->admin, "helpdesk", secret, sizeof(secret)) == 0, "token");
	CHECK(file_shows(outp, "helpdesk"), "tail --follow did not show the new entry");
	t_stop_child(pid, SIGTERM, 5000);
	RUN(0, e, "tokens", "revoke", tok);
	RUN(2, e, "tokens", "revoke", "tok_nosuch");
	accounts(e);
	if (t_failed_now)
		return;
	/* audit */
	RUN(0, e, "audit", "list", "--action", "token.revoke");
	CHECK(strstr(e->out, tok) != NULL, "%s", e->out);
	RUN(1, e, "audit", "list", "--since", "yesterday");
	RUN(0, e, "audit", "tail", "-n", "3");
	CHECK(strstr(e->out, "admin.disable") || strstr(e->out, "admin"), "%s", e->out);
	RUN(0, e, "audit", "verify", "--full");
	CHECK(strncmp(e->out, "ok: ", 4) == 0, "%s", e->out);
	snprintf(exp, sizeof(exp), "%s/audit.jsonl", e->home);
	RUN(0, e, "audit", "export", "--output", exp);
	s = file_read_all(exp, 1 << 20, &n);
	CHECK(s != NULL && strstr(s, "\"prev_hash\"") && strstr(s, "token.revoke"), "export: %s",
	      s ? s : "(none)");
	free(s);
	ctl_down(e);
	free(e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"bulk", t_bulk},
		{"enrollment_tokens", t_enrollment_tokens},
		{"policies", t_policies},
		{"audit_tokens_admins", t_audit_tokens_admins},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

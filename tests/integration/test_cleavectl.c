/*
 * cleavectl against the real cleave-server: every subcommand, with its table and --json
 * output and its exit codes for errors (bad token, unknown record, a token on the command
 * line, a wrong pin, a conflict). Simulated devices (testlib device_sim) check in and complete
 * their commands with signed receipts, so `commands wipe --wait` sees a verified receipt; one
 * that never checks in makes `--wait --timeout` fail with exit 6. `receipts verify` passes on
 * the fetched files and fails on a flipped byte. Each case has its own HOME and
 * XDG_CONFIG_HOME inside the server's data directory.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "b64.h"
#include "ctl.h"
#include "fileio.h"
#include "testlib.h"
#include "util.h"

/* The newest command of type for device into out: 0, or -1 when there is none. */
static int
admin_last_command(struct client *admin, const char *device, const char *type, char *out,
		   size_t cap)
{
	char path[256];
	json_t *j;
	long st;
	const char *id;

	out[0] = '\0';
	snprintf(path, sizeof(path), "/api/v1/commands?device_id=%s&type=%s&limit=1", device, type);
	j = client_get_json(admin, path, &st);
	id = json_string_value(
		json_object_get(json_array_get(json_object_get(j, "items"), 0), "id"));
	if (id != NULL)
		str_copy(out, cap, id);
	json_decref(j);
	return out[0] ? 0 : -1;
}

/* login stores a private profile; bad tokens, wrong pins and tokens on the line are refused. */
static void
t_login(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	char path[PATH_MAX + 64], bad[PATH_MAX + 16], wrongpin[64];
	struct stat st;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-login");
	snprintf(path, sizeof(path), "%s/xdg/cleave", e->home);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0700, "dir mode %o", st.st_mode);
	snprintf(path, sizeof(path), "%s/xdg/cleave/default.profile", e->home);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "profile mode %o", st.st_mode);
	RUN(0, e, "server");
	CHECK(strstr(e->out, "role: admin") != NULL, "%s", e->out);
	RUN(0, e, "--json", "server");
	/* A token on the command line is refused before anything is sent. */
	RUN(1, e, "--token", "tok_whatever", "devices", "list");
	CHECK(strstr(e->err, "--token-file") != NULL, "%s", e->err);
	RUN(1, e, "devices", "list", "--token=tok_whatever");
	/* A typed token (stdin) is stored 0600 in the profile directory; the CA file works. */
	CHECK(ctl_in(e, e->s.admin, "--profile", "typed", "login", "--server", e->s.url, "--ca",
		     e->s.cacert, (const char *)NULL) == 0,
	      "typed login: %s", e->err);
	snprintf(path, sizeof(path), "%s/xdg/cleave/typed.token", e->home);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "token mode %o", st.st_mode);
	RUN(0, e, "--profile", "typed", "devices", "list");
	RUN(0, e, "profiles");
	CHECK(strstr(e->out, "typed") != NULL && strstr(e->out, "* default") != NULL, "%s", e->out);
	/* A bad token: login saves nothing; an API call with it is exit 4. */
	snprintf(bad, sizeof(bad), "%s/bad-token", e->home);
	CHECK(file_write_atomic(bad, "tok_nope\n", 9, 0600) == 0, "write");
	RUN(4, e, "--profile", "bad", "login", "--server", e->s.url, "--pin", e->pin,
	    "--token-file", bad);
	snprintf(path, sizeof(path), "%s/xdg/cleave/bad.profile", e->home);
	CHECK(access(path, F_OK) != 0, "a failed login saved a profile");
	RUN(4, e, "devices", "list", "--token-file", bad);
	snprintf(e->token_env, sizeof(e->token_env), "CLEAVE_TOKEN=tok_nope");
	RUN(4, e, "devices", "list");
	CHECK(strstr(e->err, "401") != NULL, "%s", e->err);
	e->token_env[0] = '\0';
	/* A pin of another key: exit 4, whatever the token. */
	snprintf(wrongpin, sizeof(wrongpin), "%c%s", e->pin[0] == 'A' ? 'B' : 'A', e->pin + 1);
	RUN(4, e, "--profile", "pinned", "login", "--server", e->s.url, "--pin", wrongpin,
	    "--token-file", bad);
	CHECK(strstr(e->err, "pinned") != NULL, "%s", e->err);
	RUN(4, e, "devices", "list", "--pin", wrongpin);
	RUN(1, e, "devices", "list", "--pin", "not-a-pin");
	RUN(1, e, "--profile", "nosuch", "devices", "list");
	RUN(5, e, "devices", "list", "--server", "https://127.0.0.1:1");
	ctl_down(e);
	free(e);
}

/* --help everywhere, usage errors, and bash completion from the command table. */
static void
t_help_completion(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	char script[4096], repo[PATH_MAX];
	const char *bin = getenv("CLEAVE_BIN");
	FILE *p;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-help");
	RUN(0, e, "--help");
	CHECK(strstr(e->out, "Exit codes") != NULL && strstr(e->out, "commands wipe") != NULL, "%s",
	      e->out);
	RUN(0, e, "devices", "--help");
	RUN(0, e, "commands", "wipe", "--help");
	CHECK(strstr(e->out, "--wait") != NULL, "%s", e->out);
	RUN(1, e, "frobnicate");
	RUN(1, e, "devices", "frobnicate");
	RUN(1, e, "devices", "get");
	RUN(1, e, "devices", "list", "--bogus");
	RUN(1, e, "commands", "lock", "dev_x", "--timeout", "5");
	/* The completion script asks cleavectl itself, so it knows every row of the table. */
	snprintf(repo, sizeof(repo), "%s/../..", bin && *bin ? bin : "build/bin");
	snprintf(script, sizeof(script),
		 "PATH=%s:$PATH; source %s/cli/cleavectl.bash; "
		 "c() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _cleavectl; "
		 "echo \"${COMPREPLY[*]}\"; }; "
		 "c cleavectl dev; c cleavectl commands wi; c cleavectl --json re; "
		 "c cleavectl commands wipe dev_1 --wa; c cleavectl enrollment-tokens ''",
		 bin && *bin ? bin : "build/bin", repo);
	{
		const char *argv[] = {"bash", "-c", script, NULL};
		char line[5][512] = {{0}};
		int pfd[2], st, n = 0;
		pid_t pid;

		CHECK(pipe(pfd) == 0, "pipe");
		if ((pid = fork()) == 0) {
			dup2(pfd[1], 1);
			execvp("bash", (char *const *)argv);
			_exit(127);
		}
		close(pfd[1]);
		p = fdopen(pfd[0], "r");
		while (p && n < 5 && fgets(line[n], sizeof(line[n]), p) != NULL)
			line[n][strcspn(line[n], "\n")] = '\0', n++;
		if (p)
			fclose(p);
		waitpid(pid, &st, 0);
		CHECK(n == 5, "completion printed %d lines", n);
		CHECK(strcmp(line[0], "devices") == 0, "dev -> \"%s\"", line[0]);
		CHECK(strcmp(line[1], "wipe") == 0, "commands wi -> \"%s\"", line[1]);
		CHECK(strcmp(line[2], "receipts") == 0, "--json re -> \"%s\"", line[2]);
		CHECK(strcmp(line[3], "--wait") == 0, "--wa -> \"%s\"", line[3]);
		CHECK(strcmp(line[4], "create list revoke") == 0, "verbs -> \"%s\"", line[4]);
	}
	ctl_down(e);
	free(e);
}

/* devices list (filters, table, --json), search, get, count, set-policy, delete. */
static void
t_devices(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	struct device_sim a, b, c;
	json_t *j;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-devices");
	CHECK(admin_enroll(e->admin, e->anon, &a, "alice@example.com") == 0, "enroll a");
	CHECK(admin_enroll(e->admin, e->anon, &b, "<b>bob</b>&amp;@example.com") == 0, "enroll b");
	/* An owner holding terminal escapes (ESC ] 0 ; ... BEL retitles a terminal). */
	CHECK(admin_enroll(e->admin, e->anon, &c, "\\u001b]0;pwned\\u0007eve@example.com") == 0,
	      "enroll c");
	RUN(0, e, "devices", "list");
	CHECK(strstr(e->out, "OWNER") && strstr(e->out, a.id) && strstr(e->out, b.id) &&
		      strstr(e->out, "<b>bob</b>&amp;@example.com") &&
		      strstr(e->out, "?]0;pwned?eve@"),
	      "%s", e->out);
	CHECK(strchr(e->out, 0x1b) == NULL && strchr(e->out, 0x07) == NULL, "escape printed");
	RUN(0, e, "--json", "devices", "get", c.id);
	CHECK(strcasestr(e->out, "\\u001b]0;pwned") != NULL, "--json changed the value: %s",
	      e->out);
	RUN(0, e, "devices", "delete", c.id);
	RUN(0, e, "--json", "devices", "list", "--owner", "alice@example.com");
	j = ctl_json(e);
	CHECK(json_array_size(json_object_get(j, "items")) == 1, "owner filter: %s", e->out);
	json_decref(j);
	RUN(0, e, "devices", "search", "ali", "--json");
	j = ctl_json(e);
	CHECK(json_array_size(json_object_get(j, "items")) == 1, "search: %s", e->out);
	json_decref(j);
	RUN(0, e, "devices", "list", "--sort", "owner", "--order", "asc");
	CHECK(strstr(e->out, "<b>bob") < strstr(e->out, "alice@"), "owner order: %s", e->out);
	RUN(0, e, "devices", "list", "--limit", "1");
	CHECK(strstr(e->err, "more: --cursor") != NULL, "no cursor: %s", e->err);
	RUN(1, e, "devices", "list", "--status", "lost");
	CHECK(strstr(e->err, "status") != NULL, "%s", e->err);
	RUN(0, e, "devices", "get", a.id);
	CHECK(strstr(e->out, "owner: alice@example.com") != NULL, "%s", e->out);
	RUN(2, e, "devices", "get", "dev_nosuch");
	CHECK(strstr(e->err, "404") != NULL, "%s", e->err);
	RUN(0, e, "devices", "count", "--status", "active");
	CHECK(strcmp(e->out, "2\n") == 0, "count: %s", e->out);
	RUN(1, e, "devices", "set-policy", a.id, "nosuch"); /* 422 */
	RUN(0, e, "devices", "set-policy", a.id, "--default");
	RUN(0, e, "devices", "delete", b.id);
	RUN(2, e, "devices", "get", b.id);
	dev_fini(&a);
	dev_fini(&b);
	dev_fini(&c);
	ctl_down(e);
	free(e);
}

/*
 * An auto-wipe receipt (cleave-hv acting on its own) signed by d's hypervisor key, next to
 * hv.pem in dir: it verifies without a ticket.
 */
static void
check_auto_receipt(struct ctl_env *e, struct device_sim *d, const char *pem)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 32];
	uint8_t out[RECEIPT_LEN];
	struct receipt rc;
	size_t n;
	char *key = file_read_all(pem, 4096, &n);

	memset(&rc, 0, sizeof(rc));
	rc.type = RECEIPT_AUTO_WIPE;
	ed25519_key_public(d->hv, rc.hv_key);
	snprintf(rc.device_id, sizeof(rc.device_id), "%s", d->id);
	rc.seq = 7;
	rc.epoch_before = 2;
	rc.epoch_after = 3;
	rc.header_state = HV_STATE_ERASED;
	rc.checks_run = rc.checks_passed = receipt_required_checks(RECEIPT_AUTO_WIPE);
	rc.started_ms = rc.finished_ms = (uint64_t)time(NULL) * 1000;
	receipt_encode(&rc, out);
	ed25519_key_sign(d->hv, out, RECEIPT_BODY_LEN, out + RECEIPT_BODY_LEN);
	snprintf(dir, sizeof(dir), "%s/auto", e->home);
	CHECK(key != NULL && mkdir(dir, 0700) == 0, "hv.pem or mkdir");
	snprintf(path, sizeof(path), "%s/hv.pem", dir);
	CHECK(file_write_atomic(path, key, n, 0600) == 0, "write");
	free(key);
	snprintf(path, sizeof(path), "%s/receipt.bin", dir);
	CHECK(file_write_atomic(path, out, sizeof(out), 0600) == 0, "write");
	RUN(0, e, "receipts", "verify", dir);
	CHECK(strstr(e->out,
		     "ok   ticket          none: the hypervisor acted on its own (auto-wipe)"),
	      "%s", e->out);
}

/* receipts fetch, verify (ok), get; then one byte flipped: verify fails with exit 6. */
static void
check_receipt_offline(struct ctl_env *e, struct device_sim *d, const char *id)
{
	char dir[PATH_MAX + 16], rpath[PATH_MAX + 32];
	uint8_t *rb;
	size_t n;

	snprintf(dir, sizeof(dir), "%s/rcpt", e->home);
	CHECK(mkdir(dir, 0700) == 0, "mkdir");
	RUN(0, e, "receipts", "fetch", id, "--dir", dir);
	RUN(0, e, "receipts", "verify", dir);
	CHECK(strstr(e->out, "ok   signature") && strstr(e->out, "ok   ticket hash") &&
		      strstr(e->out, "\nverified\n"),
	      "%s", e->out);
	snprintf(rpath, sizeof(rpath), "%s/hv.pem", dir);
	check_auto_receipt(e, d, rpath);
	if (t_failed_now)
		return;
	RUN(0, e, "receipts", "get", id);
	CHECK(strstr(e->out, "receipt.signature_ok: true") != NULL, "%s", e->out);
	snprintf(rpath, sizeof(rpath), "%s/ticket.bin", dir);
	CHECK(unlink(rpath) == 0, "unlink");
	RUN(6, e, "receipts", "verify", dir); /* a command's receipt needs its ticket */
	CHECK(strstr(e->out, "FAIL ticket") && strstr(e->out, "is missing"), "%s", e->out);
	snprintf(rpath, sizeof(rpath), "%s/receipt.bin", dir);
	rb = (uint8_t *)file_read_all(rpath, 1024, &n);
	CHECK(rb != NULL && n == RECEIPT_LEN, "receipt.bin %zu bytes", n);
	rb[200] ^= 0x01; /* inside the signed body, in a reserved or check field */
	CHECK(file_write_atomic(rpath, rb, n, 0600) == 0, "write");
	free(rb);
	RUN(6, e, "receipts", "verify", dir);
	CHECK(strstr(e->out, "FAIL signature") && strstr(e->out, "NOT VERIFIED"), "%s", e->out);
	RUN(6, e, "--json", "receipts", "verify", "--receipt", rpath, "--ticket", "/dev/null",
	    "--key", "/dev/null");
}

/*
 * A wipe with --wait against a device that completes it: exit 0, verified; the receipt
 * fetched and verified offline, then refused with one byte flipped. A lock on a device that
 * never checks in: --wait --timeout exits 6. Commands list, get, cancel, idempotency.
 */
static void
t_commands_wait_receipts(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	char id[64], id2[64], lock[64], dir[PATH_MAX + 16];
	const char *args[] = {"commands", "wipe",      NULL, "--reason", "lost <phone>",
			      "--wait",   "--timeout", "30", NULL};
	struct device_sim a, b;
	pid_t pid;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-wait");
	CHECK(admin_enroll(e->admin, e->anon, &a, "alice@example.com") == 0, "enroll a");
	CHECK(admin_enroll(e->admin, e->anon, &b, "bob@example.com") == 0, "enroll b");
	args[2] = a.id;
	pid = ctl_spawn(e, NULL, args);
	CHECK(pid > 0, "spawn");
	/* The device takes whatever is queued; the wipe is the newest of a's commands. */
	for (int i = 0; i < 100 && admin_last_command(e->admin, a.id, "wipe", id, sizeof(id)); i++)
		usleep(100000);
	CHECK(id[0] != '\0', "the wipe was not queued");
	CHECK(ctl_device_serve(e, &a, id, 20) == 0, "device did not get the wipe");
	CHECK(ctl_wait(e, pid) == 0, "wipe --wait: %s / %s", e->out, e->err);
	CHECK(strstr(e->out, "receipt is verified") != NULL, "%s", e->out);
	check_receipt_offline(e, &a, id);
	RUN(0, e, "commands", "wait", id, "--timeout", "5");
	if (t_failed_now)
		return;
	/* A device that never checks in: the wait ends at its timeout with exit 6. */
	RUN(6, e, "commands", "lock", b.id, "--wait", "--timeout", "2");
	CHECK(strstr(e->err, "no verified receipt within 2 s") != NULL, "%s", e->err);
	CHECK(admin_last_command(e->admin, b.id, "lock", lock, sizeof(lock)) == 0, "lock id");
	RUN(6, e, "commands", "wait", lock, "--timeout", "1");
	RUN(2, e, "commands", "wait", "cmd_nosuch");
	snprintf(dir, sizeof(dir), "%s", e->home);
	RUN(2, e, "receipts", "fetch", lock, "--dir", dir);
	/* The same Idempotency-Key returns the same command. */
	RUN(0, e, "--json", "commands", "refresh", b.id, "--idempotency-key", "k-1");
	CHECK(ctl_out_str(e, "id", id2, sizeof(id2)) == 0, "%s", e->out);
	RUN(0, e, "--json", "commands", "refresh", b.id, "--idempotency-key", "k-1");
	CHECK(strstr(e->out, id2) != NULL, "another command for the same key: %s", e->out);
	RUN(1, e, "commands", "lock", b.id, "--idempotency-key", "k-1");
	RUN(0, e, "commands", "list", "--device", b.id);
	CHECK(strstr(e->out, lock) && strstr(e->out, id2), "%s", e->out);
	RUN(0, e, "commands", "get", id);
	CHECK(strstr(e->out, "verified: true") != NULL, "%s", e->out);
	RUN(0, e, "commands", "cancel", lock);
	RUN(3, e, "commands", "cancel", lock);
	RUN(2, e, "commands", "cancel", "cmd_nosuch");
	RUN(2, e, "commands", "wipe", "dev_nosuch");
	/* The other types queue as well (b never runs them); retire last, it ends the record. */
	RUN(0, e, "commands", "unlock", b.id);
	RUN(0, e, "commands", "rekey", b.id, "--expires-in", "600");
	RUN(0, e, "commands", "retire", b.id, "--reason", "left the company");
	CHECK(strstr(e->out, "queued retire cmd_") != NULL, "%s", e->out);
	RUN(1, e, "commands", "unlock", b.id, "--expires-in", "soon");
	dev_fini(&a);
	dev_fini(&b);
	ctl_down(e);
	free(e);
}

/*
 * The README's cleavectl block, run as pasted: its first line (the exports) pointed at this
 * server, HOME fresh (so the profile goes to the default ~/.config/cleave), PATH with the
 * built binaries. It must log in, draw the QR code, wait for the verified wipe, and verify the
 * receipt offline.
 */
static void
t_readme_block(void)
{
	static const char *const want[] = {
		"Logged in to",   "Open on the phone", "queued wipe", "receipt is verified",
		"ok   signature", "\nverified\n",      "ok: ",        NULL,
	};
	struct ctl_env *e = calloc(1, sizeof(*e));
	const char *bin = getenv("CLEAVE_BIN"), *sec, *b, *end, *line2, *at;
	char path[PATH_MAX + 32], *text, *script = NULL, cmd[3 * PATH_MAX + 64];
	int rc;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-readme");
	bin = bin && *bin ? bin : "build/bin";
	snprintf(path, sizeof(path), "%s/../../README.md", bin);
	text = file_read_all(path, 1 << 20, NULL);
	CHECK(text != NULL, "cannot read %s", path);
	sec = strstr(text, "\n## cleavectl\n");
	b = sec ? strstr(sec, "\n```sh\nexport CLEAVE=") : NULL;
	end = b ? strstr(b + 7, "\n```\n") : NULL;
	line2 = b ? strchr(b + 7, '\n') : NULL;
	if (end != NULL && line2 != NULL && line2 < end &&
	    (script = malloc((size_t)(end - line2) + 2 * PATH_MAX)) != NULL)
		sprintf(script,
			"export CLEAVE=%s DATA=%s PHONE=%s/phone HOME=%s PATH=%s:$PATH%.*s\n",
			e->s.url, e->s.dir, e->home, e->home, bin, (int)(end - line2), line2);
	free(text);
	CHECK(script != NULL, "README.md has no ```sh block starting with export CLEAVE= under "
			      "\"## cleavectl\"");
	snprintf(path, sizeof(path), "%s/readme.sh", e->home);
	rc = file_write_atomic(path, script, strlen(script), 0600);
	free(script);
	CHECK(rc == 0, "write %s", path);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && env -u XDG_CONFIG_HOME -u CLEAVE_TOKEN timeout 120 "
		 "bash -e -o pipefail readme.sh >readme.out 2>&1",
		 e->home);
	rc = system(cmd);
	snprintf(path, sizeof(path), "%s/readme.out", e->home);
	text = file_read_all(path, 1 << 20, NULL);
	at = text;
	for (size_t i = 0; at != NULL && want[i] != NULL; i++)
		if ((at = strstr(at, want[i])) == NULL)
			printf("    missing: %s\n", want[i]);
	if (rc != 0 || at == NULL)
		printf("    the block exited %d and printed:\n%s\n", rc, text ? text : "");
	free(text);
	CHECK(rc == 0 && at != NULL, "the README's cleavectl block did not run as documented");
	snprintf(path, sizeof(path), "%s/.config/cleave/default.profile", e->home);
	CHECK(access(path, F_OK) == 0, "login did not use ~/.config/cleave");
	ctl_down(e);
	free(e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"login", t_login},
		{"help_completion", t_help_completion},
		{"devices", t_devices},
		{"commands_wait_receipts", t_commands_wait_receipts},
		{"readme_block", t_readme_block},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

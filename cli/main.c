/*
 * cleavectl's entry: the command table, option parsing, help and dispatch. Every subcommand is
 * one row of cmds[] (its options, positional arguments and help live there, so --help and the
 * bash completion come from the same row) and one function.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"
#include "util.h"

#define GLOBAL_OPTS "profile= server= ca= pin= token-file= json help"
#define LIST_OPTS   "limit= cursor="
#define BASE_FILTERS                                                                               \
	"q= status= owner= compliant= reason-code= desired= reported= policy= not-seen-days= "     \
	"label="
#define FILTER_OPTS BASE_FILTERS " group="
#define WAIT_OPTS   "reason= expires-in= idempotency-key= wait timeout="

#define CMD(g, v, fn, usage, help, opts, lo, hi)                                                   \
	{                                                                                          \
		g, v, fn, usage, help, opts, lo, hi                                                \
	}

static const struct cmd cmds[] = {
	CMD("login", NULL, cmd_login, "--server URL [--ca FILE | --pin SHA256] [--token-file FILE]",
	    "Stores a profile (server, trust, token) after checking it with GET /api/v1/server. "
	    "The token is read from --token-file, CLEAVE_TOKEN, or asked for without echo; it is "
	    "saved as PROFILE.token (mode 0600) next to the profile.",
	    "", 0, 0),
	CMD("profiles", NULL, cmd_profiles, "", "Lists the stored profiles.", "", 0, 0),
	CMD("server", NULL, cmd_server, "", "Shows the server's keys and who you are.", "", 0, 0),
	CMD("devices", "list", cmd_devices_list, "[filters] [--sort S] [--order O]",
	    "Lists devices, filtered as GET /api/v1/devices (see schema/api.md); --label takes a "
	    "label query ('dept=sales AND NOT lost'), --group a group's name.",
	    FILTER_OPTS " sort= order= " LIST_OPTS, 0, 0),
	CMD("devices", "search", cmd_devices_search, "TEXT",
	    "Devices whose owner, model, id or key fingerprint starts with TEXT.", LIST_OPTS, 1, 1),
	CMD("devices", "get", cmd_devices_get, "DEVICE", "Shows one device.", "", 1, 1),
	CMD("devices", "count", cmd_devices_count, "[filters]",
	    "How many devices the filters match (the number a bulk command must confirm).",
	    FILTER_OPTS, 0, 0),
	CMD("devices", "delete", cmd_devices_delete, "DEVICE", "Deletes a device record.", "", 1,
	    1),
	CMD("devices", "set-policy", cmd_devices_policy, "DEVICE (POLICY | --default)",
	    "Assigns a policy to a device, or makes it follow the default policy.", "default", 1,
	    2),
	CMD("commands", "wipe", cmd_command_new, "DEVICE [--reason TEXT] [--wait [--timeout S]]",
	    "Wipes the device's corporate half. --wait follows the command until its receipt is "
	    "verified (exit 0) or not (exit 6), at most --timeout seconds (300). Under the "
	    "two-person rule the wipe waits for a second admin: exit 7 with the approval's id, "
	    "or with --wait the decision is followed too (rejected, canceled, expired: exit 6).",
	    WAIT_OPTS, 1, 1),
	CMD("commands", "lock", cmd_command_new, "DEVICE [--reason TEXT] [--wait]",
	    "Locks the corporate half.", WAIT_OPTS, 1, 1),
	CMD("commands", "unlock", cmd_command_new, "DEVICE [--reason TEXT] [--wait]",
	    "Unlocks the corporate half.", WAIT_OPTS, 1, 1),
	CMD("commands", "rekey", cmd_command_new, "DEVICE [--reason TEXT] [--wait]",
	    "Rotates the corporate half's keys.", WAIT_OPTS, 1, 1),
	CMD("commands", "retire", cmd_command_new, "DEVICE [--reason TEXT] [--wait]",
	    "Retires the device (wipes and releases its corporate half). Held by the two-person "
	    "rule as wipe is (exit 7, or --wait follows the approval).",
	    WAIT_OPTS, 1, 1),
	CMD("commands", "refresh", cmd_command_new, "DEVICE [--reason TEXT] [--wait]",
	    "Asks the device for a fresh attestation.", WAIT_OPTS, 1, 1),
	CMD("commands", "list", cmd_commands_list, "[--device ID] [--status S] [--type T]",
	    "Lists commands, newest first.", "device= status= type= " LIST_OPTS, 0, 0),
	CMD("commands", "get", cmd_commands_get, "COMMAND", "Shows one command.", "", 1, 1),
	CMD("commands", "wait", cmd_commands_wait, "COMMAND [--timeout S]",
	    "Follows a command already queued, as --wait does: exit 0 once its receipt is "
	    "verified, 6 when it ends otherwise or --timeout seconds (300) pass.",
	    "timeout=", 1, 1),
	CMD("commands", "cancel", cmd_commands_cancel, "COMMAND",
	    "Cancels a command that is still queued.", "", 1, 1),
	CMD("bulk", "create", cmd_bulk_create,
	    "--type T [filters | --group NAME] [--expected-count N] [--reason TEXT] "
	    "[--idempotency-key K] [--wait [--timeout S]]",
	    "Queues one command for every device the filters (or a group: --group, its query "
	    "read once, when the bulk starts) match. The number of devices must "
	    "be confirmed: --expected-count N, or typed when asked on a terminal. A filter that "
	    "now matches another number is refused (exit 3) and nothing is queued. A bulk held "
	    "by the two-person rule exits 7 with its approval's id; --wait follows the approval "
	    "until it is decided (at most --timeout seconds, 300).",
	    "type= expected-count= reason= idempotency-key= wait timeout= " FILTER_OPTS, 0, 0),
	CMD("bulk", "list", cmd_bulk_list, "[--state S]", "Lists bulk operations, newest first.",
	    "state= " LIST_OPTS, 0, 0),
	CMD("bulk", "get", cmd_bulk_get, "BULK", "Shows one bulk operation and its counts.", "", 1,
	    1),
	CMD("bulk", "cancel", cmd_bulk_cancel, "BULK",
	    "Stops a running bulk before its next batch (what it queued stays queued).", "", 1, 1),
	CMD("receipts", "get", cmd_receipts_get, "COMMAND",
	    "The command's receipt and ticket as the server decodes and checks them.", "", 1, 1),
	CMD("receipts", "fetch", cmd_receipts_fetch, "COMMAND [--dir DIR]",
	    "Writes receipt.bin, ticket.bin and hv.pem (the device's hypervisor key) into DIR "
	    "(default .), for `receipts verify` or openssl.",
	    "dir=", 1, 1),
	CMD("receipts", "verify", cmd_receipts_verify,
	    "[DIR] [--receipt FILE] [--ticket FILE] [--key PEM]",
	    "Checks a receipt offline, without the server: the hypervisor's signature, its key, "
	    "that it answers the ticket, the result, the checks its type requires and the key "
	    "epoch. Files default to DIR/receipt.bin, DIR/ticket.bin, DIR/hv.pem. Exit 6 when "
	    "any check fails.",
	    "receipt= ticket= key=", 0, 1),
	CMD("enrollment-tokens", "create", cmd_etokens_create,
	    "--owner EMAIL [--uses N] [--expires-in S] [--no-qr] [--invert]",
	    "Makes an enrollment token and draws its link's QR code (for a dark terminal; "
	    "--invert for a light one).",
	    "owner= uses= expires-in= no-qr invert", 0, 0),
	CMD("enrollment-tokens", "list", cmd_etokens_list, "", "Lists enrollment tokens.",
	    LIST_OPTS, 0, 0),
	CMD("enrollment-tokens", "revoke", cmd_etokens_revoke, "TOKEN_ID",
	    "Revokes an enrollment token (enrolled devices stay).", "", 1, 1),
	CMD("policies", "list", cmd_policies_list, "", "Lists policies.", "", 0, 0),
	CMD("policies", "get", cmd_policies_get, "NAME", "Shows a policy.", "", 1, 1),
	CMD("policies", "put", cmd_policies_put, "NAME --file FILE",
	    "Creates or changes a policy from a JSON file (- for stdin).", "file=", 1, 1),
	CMD("policies", "default", cmd_policies_default, "[NAME]",
	    "Shows the default policy, or makes NAME the default.", "", 0, 1),
	CMD("audit", "list", cmd_audit_list, "[--actor A] [--action A] [--target T] [--since T]",
	    "Lists audit entries, oldest first.", "actor= action= target= since= until= " LIST_OPTS,
	    0, 0),
	CMD("audit", "tail", cmd_audit_tail, "[-n N] [--since TIME] [--follow [--interval S]]",
	    "The newest entries since TIME (default: the last 24 hours); --follow keeps printing "
	    "new ones as they are written.",
	    "n= since= follow interval= actor= action= target=", 0, 0),
	CMD("audit", "verify", cmd_audit_verify, "[--full]",
	    "Checks the audit chain and its signed checkpoints; exit 6 when it is broken.", "full",
	    0, 0),
	CMD("audit", "export", cmd_audit_export, "[filters] [--output FILE]",
	    "Every matching entry as JSON lines (with prev_hash), following the export's pieces.",
	    "actor= action= target= since= until= output=", 0, 0),
	CMD("audit", "stream", cmd_audit_stream, "",
	    "Where the audit stream to the SIEM stands: its position, the head, the lag, the "
	    "server sending and this server's connection.",
	    "", 0, 0),
	CMD("admins", "list", cmd_admins_list, "", "Lists console accounts.", "", 0, 0),
	CMD("admins", "create", cmd_admins_create,
	    "--email E --name N --role R [--password-file F]",
	    "Makes a console account; the password is asked for without echo unless given in a "
	    "file.",
	    "email= name= role= password-file=", 0, 0),
	CMD("admins", "disable", cmd_admins_disable, "ACCOUNT",
	    "Disables an account and ends its sessions.", "", 1, 1),
	CMD("admins", "totp", cmd_admins_totp, "ACCOUNT [--invert]",
	    "Enrolls a new second-factor key and draws its otpauth QR code.", "invert", 1, 1),
	CMD("tokens", "list", cmd_tokens_list, "", "Lists API tokens.", LIST_OPTS, 0, 0),
	CMD("tokens", "create", cmd_tokens_create, "--name N --role R [--expires-in S] [--approve]",
	    "Makes an API token and prints its secret (shown only once). --approve (role admin "
	    "only) lets it approve two-person rule requests; only a token that may approve "
	    "itself can make one.",
	    "name= role= expires-in= approve", 0, 0),
	CMD("tokens", "revoke", cmd_tokens_revoke, "TOKEN_ID", "Revokes an API token at once.", "",
	    1, 1),
	CMD("labels", "get", cmd_labels_get, "DEVICE", "Shows a device's labels.", "", 1, 1),
	CMD("labels", "set", cmd_labels_set, "DEVICE KEY[=VALUE]...",
	    "Sets labels on a device (a plain KEY has the value \"\"), the others unchanged.", "",
	    2, ARGS_MAX),
	CMD("labels", "remove", cmd_labels_remove, "DEVICE KEY...",
	    "Removes labels from a device by key, the others unchanged.", "", 2, ARGS_MAX),
	CMD("labels", "replace", cmd_labels_replace, "DEVICE [KEY[=VALUE]...]",
	    "Makes the device's labels exactly these (none: removes them all).", "", 1, ARGS_MAX),
	CMD("labels", "bulk", cmd_labels_bulk,
	    "[KEY[=VALUE]...] [--remove KEY]... (--device ID... | --devices-from FILE | --group "
	    "NAME | filters)",
	    "One label change on many devices: the --device ids (repeated) or those of "
	    "--devices-from FILE (one a line, - for stdin; up to 500), a group's devices or those "
	    "the device list's filters match (at most 500). Prints each device's outcome "
	    "(changed, unchanged, refused with why) and the counts; sending it again changes "
	    "nothing. Exit 0 even when some are refused: read the table or --json.",
	    "remove= device= devices-from= " FILTER_OPTS, 0, ARGS_MAX),
	CMD("groups", "list", cmd_groups_list, "[--after NAME] [--limit N]",
	    "Lists groups by name, with their queries, policies and member counts.",
	    "after= limit=", 0, 0),
	CMD("groups", "get", cmd_groups_get, "NAME", "Shows a group.", "", 1, 1),
	CMD("groups", "create", cmd_groups_create,
	    "NAME --query Q [--description D] [--policy P] [--priority N]",
	    "Makes a group: the devices whose labels match the label query Q (for example "
	    "'dept=sales AND NOT lost'). --policy gives its devices that policy unless they have "
	    "their own; lower --priority (default 100) wins when several groups give one. A query "
	    "that does not parse is refused with its position (exit 1).",
	    "query= description= policy= priority=", 1, 1),
	CMD("groups", "update", cmd_groups_update,
	    "NAME --query Q [--description D] [--policy P] [--priority N]",
	    "Replaces a group's query, description, policy and priority; one not given takes "
	    "its default (no description, no policy, priority 100).",
	    "query= description= policy= priority=", 1, 1),
	CMD("groups", "delete", cmd_groups_delete, "NAME",
	    "Deletes a group (its devices and their labels stay).", "", 1, 1),
	CMD("groups", "devices", cmd_groups_devices, "NAME [filters] [--sort S] [--order O]",
	    "Lists a group's devices, as devices list does (its other filters apply too).",
	    BASE_FILTERS " sort= order= " LIST_OPTS, 1, 1),
	CMD("webhooks", "list", cmd_webhooks_list, "",
	    "Lists the webhook subscriptions: URL, events, enabled, failures.", "", 0, 0),
	CMD("webhooks", "get", cmd_webhooks_get, "WEBHOOK",
	    "Shows a subscription and where its delivery stands.", "", 1, 1),
	CMD("webhooks", "create", cmd_webhooks_create,
	    "--url URL --event TYPE [--event TYPE]... [--description D] [--disable]",
	    "Subscribes URL to the event types (--event once per type; see webhooks "
	    "event-types). Prints the signing secret: it is shown only this once.",
	    "url= event= description= disable", 0, 0),
	CMD("webhooks", "update", cmd_webhooks_update,
	    "WEBHOOK [--url URL] [--event TYPE]... [--description D] [--enable | --disable]",
	    "Changes a subscription; --event given replaces the whole list. --enable on a "
	    "disabled one delivers every event it kept meanwhile, in order.",
	    "url= event= description= enable disable", 1, 1),
	CMD("webhooks", "delete", cmd_webhooks_delete, "WEBHOOK",
	    "Deletes a subscription and its delivery log.", "", 1, 1),
	CMD("webhooks", "rotate-secret", cmd_webhooks_rotate, "WEBHOOK",
	    "Makes a new signing secret and prints it (shown only this once); the old one stops "
	    "at once.",
	    "", 1, 1),
	CMD("webhooks", "deliveries", cmd_webhooks_deliveries, "WEBHOOK [--limit N] [--cursor C]",
	    "The delivery attempts, newest first: attempt (0 for a manual redelivery), time, "
	    "HTTP status, latency, error.",
	    LIST_OPTS, 1, 1),
	CMD("webhooks", "redeliver", cmd_webhooks_redeliver, "WEBHOOK DELIVERY",
	    "Sends a delivery's event again, once, ahead of the ones waiting.", "", 2, 2),
	CMD("webhooks", "event-types", cmd_webhooks_types, "",
	    "The event types a subscription can ask for.", "", 0, 0),
	CMD("approvals", "list", cmd_approvals_list, "[--status S] [--device ID]",
	    "Two-person rule requests, newest first; --status pending, approved, rejected, "
	    "canceled, expired or overridden.",
	    "status= device= " LIST_OPTS, 0, 0),
	CMD("approvals", "get", cmd_approvals_get, "APPROVAL",
	    "Shows a request: what, who asked, its expiry, the decision.", "", 1, 1),
	CMD("approvals", "approve", cmd_approvals_approve, "APPROVAL",
	    "Approves another admin's request; its command is queued at once. Needs a token "
	    "with the approve permission (schema/api.md \"Getting the approve permission\").",
	    "", 1, 1),
	CMD("approvals", "reject", cmd_approvals_reject, "APPROVAL [--note TEXT]",
	    "Rejects a pending request; nothing is queued.", "note=", 1, 1),
	CMD("approvals", "cancel", cmd_approvals_cancel, "APPROVAL",
	    "Withdraws your own pending request.", "", 1, 1),
	CMD("approvals", "override", cmd_approvals_override, "APPROVAL --reason TEXT",
	    "Emergency: queues a request without a second admin. The reason (10 to 380 "
	    "characters) is required; the override is audited loudly and sent as an event.",
	    "reason=", 1, 1),
};

static const char *prog = "cleavectl";

int
fail(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return code;
}

const char *
opt(const struct ctx *c, const char *name)
{
	for (int i = c->a.nkv - 1; i >= 0; i--)
		if (strcmp(c->a.kv[i].name, name) == 0)
			return c->a.kv[i].val;
	return NULL;
}

int
opt_long(const struct ctx *c, const char *name, long def, long min, long max, long *out)
{
	const char *v = opt(c, name);
	char *end;

	*out = def;
	if (v == NULL)
		return EX_OK;
	*out = strtol(v, &end, 10);
	if (*v == '\0' || *end != '\0' || *out < min || *out > max)
		return fail(EX_USAGE, "--%s must be a number from %ld to %ld", name, min, max);
	return EX_OK;
}

/* 1 when name is in the space-separated spec; *takes set when it is "name=". */
static int
spec_has(const char *spec, const char *name, size_t n, int *takes)
{
	const char *p = spec;

	while (p != NULL && *p != '\0') {
		size_t w = strcspn(p, " ");
		size_t k = w > 0 && p[w - 1] == '=' ? w - 1 : w;

		if (k == n && strncmp(p, name, n) == 0) {
			*takes = k != w;
			return 1;
		}
		p += w;
		p += strspn(p, " ");
	}
	return 0;
}

static int
has_verbs(const char *group)
{
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(cmds[i].group, group) == 0)
			return cmds[i].verb != NULL;
	return -1;
}

static const struct cmd *
find_cmd(const char *group, const char *verb)
{
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++)
		if (strcmp(cmds[i].group, group) == 0 &&
		    (cmds[i].verb == NULL || (verb && strcmp(cmds[i].verb, verb) == 0)))
			return &cmds[i];
	return NULL;
}

static const char exit_codes[] =
	"Exit codes:\n"
	"  0  ok\n"
	"  1  usage: a bad command line, or the server refused the request as invalid (400, 422)\n"
	"  2  not found (404)\n"
	"  3  conflict: the state does not allow it (409, 410)\n"
	"  4  authentication: no token, a bad or revoked one, a role that may not (401, 403),\n"
	"     or the server's key does not match the pin\n"
	"  5  server or network: 5xx, 429, unreachable, TLS failure\n"
	"  6  not verified: a receipt check failed, `--wait` saw no verified receipt in time,\n"
	"     the audit chain is broken, or a held request was rejected, canceled or expired\n"
	"  7  waiting for approval: the two-person rule holds the wipe, retire or bulk until\n"
	"     a second admin approves it (`--wait` follows it; exit 7 if --timeout ends first)\n";

/* Prints text wrapped at about 92 columns, each line indented by two spaces. */
static void
wrap(FILE *f, const char *text)
{
	size_t col = 2;

	fputs("  ", f);
	for (int words = 0; words < 400; words++) {
		size_t w;

		text += strspn(text, " ");
		if (*text == '\0')
			break;
		w = strcspn(text, " ");
		if (col > 2 && col + 1 + w > 92) {
			fputs("\n  ", f);
			col = 2;
		} else if (col > 2) {
			fputc(' ', f);
			col++;
		}
		fprintf(f, "%.*s", (int)w, text);
		col += w;
		text += w;
	}
	fputc('\n', f);
}

static void
help_cmd(FILE *f, const struct cmd *m)
{
	char spec[512], opts[1024] = "";
	size_t n = 0;

	fprintf(f, "usage: %s %s%s%s %s\n\n", prog, m->group, m->verb ? " " : "",
		m->verb ? m->verb : "", m->usage);
	wrap(f, m->help);
	snprintf(spec, sizeof(spec), "%s", m->opts);
	for (char *t = strtok(spec, " "); t != NULL && n < sizeof(opts); t = strtok(NULL, " "))
		n += (size_t)snprintf(opts + n, sizeof(opts) - n, " --%s%s", t,
				      t[strlen(t) - 1] == '=' ? "VALUE" : "");
	if (opts[0] != '\0') {
		fputs("\nOptions:\n", f);
		wrap(f, opts);
	}
	fprintf(f, "\nGlobal options and exit codes: %s --help\n", prog);
}

static void
list_cmds(FILE *f, const char *group)
{
	for (size_t i = 0; i < ARRAY_SIZE(cmds); i++) {
		const struct cmd *m = &cmds[i];
		char name[64];

		if (group != NULL && strcmp(m->group, group) != 0)
			continue;
		snprintf(name, sizeof(name), "%s%s%s", m->group, m->verb ? " " : "",
			 m->verb ? m->verb : "");
		fprintf(f, "  %-26s %s\n", name, m->usage);
	}
}

static int
help_all(FILE *f, const char *group, int code)
{
	if (group != NULL) {
		fprintf(f, "usage: %s %s VERB [arguments] [options]\n\n", prog, group);
		list_cmds(f, group);
		fprintf(f,
			"\n%s %s VERB --help for one of them; %s --help for global options and "
			"exit codes\n",
			prog, group, prog);
		return code;
	}
	fprintf(f, "usage: %s [global options] COMMAND [VERB] [arguments] [options]\n\n", prog);
	fprintf(f,
		"Global options (anywhere on the line):\n"
		"  --profile NAME     profile in $XDG_CONFIG_HOME/cleave (default: CLEAVE_PROFILE, "
		"else \"default\")\n"
		"  --server URL       --ca FILE  --pin SHA256  override the profile\n"
		"  --token-file FILE  the API token (else CLEAVE_TOKEN, else the profile's); a "
		"token is never\n"
		"                     taken on the command line\n"
		"  --json             the API's JSON as is, one document, for scripts\n"
		"  --help             help for any command\n\nCommands:\n");
	list_cmds(f, NULL);
	fprintf(f, "\n%s", exit_codes);
	return code;
}

/* Adds argv[*i] (an option) to a; EX_OK or a usage failure. */
static int
take_option(struct args *a, const char *spec, int argc, char **argv, int *i)
{
	const char *s = argv[*i] + 2, *eq = strchr(s, '=');
	size_t n = eq ? (size_t)(eq - s) : strlen(s);
	int takes = 0;

	if (strncmp(s, "token", n) == 0 && n == 5)
		return fail(EX_USAGE,
			    "refusing --token: a token on the command line is seen by "
			    "other users (ps) and kept in shell history; use --token-file "
			    "FILE or the CLEAVE_TOKEN environment variable");
	if (!spec_has(GLOBAL_OPTS, s, n, &takes) && !spec_has(spec, s, n, &takes))
		return fail(EX_USAGE, "unknown option --%.*s (see --help)", (int)n, s);
	if (a->nkv >= ARGS_MAX)
		return fail(EX_USAGE, "too many options");
	argv[*i][2 + n] = '\0'; /* the name alone; the value follows the '=' */
	a->kv[a->nkv].name = s;
	if (!takes) {
		if (eq != NULL)
			return fail(EX_USAGE, "--%s takes no value", s);
		a->kv[a->nkv++].val = "";
		return EX_OK;
	}
	if (eq == NULL && *i + 1 >= argc)
		return fail(EX_USAGE, "--%s needs a value", s);
	a->kv[a->nkv++].val = eq ? eq + 1 : argv[++*i];
	return EX_OK;
}

static int
parse(struct args *a, const char *spec, int argc, char **argv, int i)
{
	int rest = 0, rc, takes;

	for (; i < argc; i++) {
		if (!rest && strcmp(argv[i], "--") == 0) {
			rest = 1;
		} else if (!rest && strcmp(argv[i], "-n") == 0 && i + 1 < argc &&
			   spec_has(spec, "n", 1, &takes)) {
			a->kv[a->nkv].name = "n";
			a->kv[a->nkv++].val = argv[++i];
		} else if (!rest && strncmp(argv[i], "--", 2) == 0) {
			if ((rc = take_option(a, spec, argc, argv, &i)) != EX_OK)
				return rc;
		} else if (a->npos < ARGS_MAX) {
			a->pos[a->npos++] = argv[i];
		} else {
			return fail(EX_USAGE, "too many arguments");
		}
		if (a->nkv >= ARGS_MAX)
			return fail(EX_USAGE, "too many options");
	}
	return EX_OK;
}

/* `cleavectl __complete WORD...`: candidates for the last word (cli/cleavectl.bash). */
static int
complete(int argc, char **argv)
{
	int i = 2, takes;
	const char *group = NULL, *verb = NULL, *cur = argc > 2 ? argv[argc - 1] : "";

	/* Skip global options (and their values) before the command. */
	while (i < argc - 1 && strncmp(argv[i], "--", 2) == 0) {
		if (spec_has(GLOBAL_OPTS, argv[i] + 2, strlen(argv[i] + 2), &takes) && takes)
			i++;
		i++;
	}
	if (i < argc - 1)
		group = argv[i++];
	if (group != NULL && has_verbs(group) == 1 && i < argc - 1)
		verb = argv[i];
	if (cur[0] == '-') {
		const struct cmd *m = group ? find_cmd(group, verb) : NULL;
		char spec[512];

		snprintf(spec, sizeof(spec), "%s %s", GLOBAL_OPTS, m ? m->opts : "");
		for (char *t = strtok(spec, " "); t != NULL; t = strtok(NULL, " "))
			printf("--%.*s\n", (int)strcspn(t, "="), t);
		return EX_OK;
	}
	for (size_t k = 0; k < ARRAY_SIZE(cmds); k++) {
		if (group == NULL && (k == 0 || strcmp(cmds[k].group, cmds[k - 1].group) != 0))
			printf("%s\n", cmds[k].group);
		else if (group != NULL && verb == NULL && cmds[k].verb != NULL &&
			 strcmp(cmds[k].group, group) == 0 && i == argc - 1)
			printf("%s\n", cmds[k].verb);
	}
	return EX_OK;
}

static int
run(int argc, char **argv)
{
	struct ctx c = {0};
	const char *group, *verb = NULL, *p;
	int i = 1, rc;

	if (argc > 1 && strcmp(argv[1], "__complete") == 0)
		return complete(argc, argv);
	/* Global options before the command. */
	while (i < argc && strncmp(argv[i], "--", 2) == 0 && strcmp(argv[i], "--") != 0) {
		if ((rc = take_option(&c.a, "", argc, argv, &i)) != EX_OK)
			return rc;
		i++;
	}
	if (i >= argc)
		return opt(&c, "help") ? help_all(stdout, NULL, EX_OK)
				       : help_all(stderr, NULL, EX_USAGE);
	group = argv[i++];
	if (has_verbs(group) < 0)
		return fail(EX_USAGE, "unknown command \"%s\" (see --help)", group);
	if (has_verbs(group) == 1) {
		if (i >= argc || argv[i][0] == '-')
			return (i < argc && strcmp(argv[i], "--help") == 0) || opt(&c, "help")
				       ? help_all(stdout, group, EX_OK)
				       : help_all(stderr, group, EX_USAGE);
		verb = argv[i++];
	}
	if ((c.cmd = find_cmd(group, verb)) == NULL)
		return fail(EX_USAGE, "unknown command \"%s %s\" (see %s %s --help)", group, verb,
			    prog, group);
	if ((rc = parse(&c.a, c.cmd->opts, argc, argv, i)) != EX_OK)
		return rc;
	if (opt(&c, "help")) {
		help_cmd(stdout, c.cmd);
		return EX_OK;
	}
	if (c.a.npos < c.cmd->min_pos || c.a.npos > c.cmd->max_pos) {
		help_cmd(stderr, c.cmd);
		return EX_USAGE;
	}
	c.json = opt(&c, "json") != NULL;
	p = opt(&c, "profile");
	if (p == NULL)
		p = getenv("CLEAVE_PROFILE");
	str_copy(c.profile, sizeof(c.profile), p && *p ? p : "default");
	rc = c.cmd->fn(&c);
	http_free(c.h);
	return rc;
}

int
main(int argc, char **argv)
{
	int rc;

	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
		return fail(EX_SERVER, "cannot initialise libcurl");
	rc = run(argc, argv);
	curl_global_cleanup();
	return rc;
}

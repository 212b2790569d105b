/*
 * cleavectl, the admin command line: what every part of it shares. main.c parses the command
 * line and dispatches through one table (adding a subcommand is one entry there plus one
 * function); http.c talks to cleave-server (libcurl) and turns problem+json answers into exit
 * codes; profile.c keeps profiles; out.c prints tables and records for people; cmd_*.c are the
 * subcommands. Only http.c includes curl/curl.h, only cmd_receipts.c OpenSSL, only qr.c
 * libqrencode.
 */
#ifndef CLEAVE_CLI_H
#define CLEAVE_CLI_H

#include <jansson.h>
#include <limits.h>
#include <stddef.h>

/* Exit codes: stable, documented in `cleavectl --help` and cli/README.md. */
enum {
	EX_OK = 0,
	EX_USAGE = 1,      /* bad command line, or the server refused the request as invalid */
	EX_NOTFOUND = 2,   /* 404: no such record */
	EX_CONFLICT = 3,   /* 409/410: the state does not allow it */
	EX_AUTH = 4,       /* 401/403, no token, or the server's key does not match the pin */
	EX_SERVER = 5,     /* 5xx, 429, network or TLS failure, unreadable answer */
	EX_UNVERIFIED = 6, /* not verified: a receipt check failed, --wait timed out or failed */
	EX_PENDING = 7,    /* held by the two-person rule: waiting for a second admin */
};

#define ARGS_MAX 32

struct args {
	const char *pos[ARGS_MAX];
	int npos;
	struct {
		const char *name;
		const char *val; /* "" for a flag */
	} kv[ARGS_MAX];
	int nkv;
};

struct http;
struct cmd;

struct ctx {
	struct args a;
	const struct cmd *cmd;
	int json;         /* --json: the API's JSON as is */
	long req_timeout; /* seconds one request may take; 0: the default (120) */
	struct http *h;   /* connected on first use (ctx_http) */
	char profile[64]; /* --profile, CLEAVE_PROFILE, or "default" */
};

typedef int (*cmd_fn)(struct ctx *c);

struct cmd {
	const char *group; /* "devices" */
	const char *verb;  /* "list"; NULL for a command without one ("login") */
	cmd_fn fn;
	const char *usage; /* what follows "cleavectl GROUP VERB" */
	const char *help;  /* one paragraph */
	const char *opts;  /* its options, space separated; "name=" takes a value */
	int min_pos, max_pos;
};

/* ---- main.c ---- */
/* The option's value (a flag gives ""), or NULL when absent. */
const char *opt(const struct ctx *c, const char *name);
/* Prints "cleavectl: MSG" on stderr; returns code. */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A positive integer option (or def when absent) into *out; EX_USAGE when malformed. */
int opt_long(const struct ctx *c, const char *name, long def, long min, long max, long *out);

/* ---- http.c ---- */
struct reply {
	long status;
	char *body; /* NUL-terminated; owned (reply_free) */
	size_t len;
	char location[512];
	char next_cursor[512]; /* Cleave-Next-Cursor */
	char content_type[128];
};

/* The connection of this invocation (profile, options, environment); NULL with *code set. */
struct http *ctx_http(struct ctx *c, int *code);
void http_free(struct http *h);
/*
 * One request to the server. Returns EX_OK for a 2xx answer; otherwise prints the problem's
 * detail (or the transport error) on stderr and returns its exit code. hdrs: NULL-terminated
 * "Name: value" lines, may be NULL. r is always initialised (reply_free).
 */
int api(struct ctx *c, const char *method, const char *path, const char *body,
	const char *const *hdrs, struct reply *r);
/* api() for a JSON answer: parsed into *out (caller decrefs) when it returns EX_OK. */
int api_json(struct ctx *c, const char *method, const char *path, const char *body,
	     const char *const *hdrs, json_t **out, struct reply *r);
void reply_free(struct reply *r);
/* Exit code for an HTTP status. */
int status_code(long status);
/* Appends "?name=value" or "&name=value" (value URL-escaped) to buf; -1 when it does not fit. */
int query_add(char *buf, size_t cap, const char *name, const char *value);
/* Adds --limit and --cursor as query parameters; EX_OK or EX_USAGE (printed). */
int paging_query(const struct ctx *c, char *q, size_t cap);
/* Appends a path segment, URL-escaped; -1 when it does not fit. */
int path_add(char *buf, size_t cap, const char *segment);
/* A request once without any profile: for login's check. */
int http_probe(const char *server, const char *ca, const char *pin, const char *token,
	       struct reply *r, char *err, size_t cap);

/* "/api/v1/WHAT/ID-escaped" followed by tail into path; EX_OK or EX_USAGE (printed). */
int id_path(char *path, size_t cap, const char *what, const char *id, const char *tail);

/* ---- profile.c ---- */
struct profile {
	char server[512];
	char ca_file[PATH_MAX];
	char pin[128]; /* "sha256//BASE64" */
	char token_file[PATH_MAX];
};
/* 0, or -1 (message printed) when the profile exists but cannot be read; absent: 1. */
int profile_load(const char *name, struct profile *p);
/* $XDG_CONFIG_HOME/cleave or ~/.config/cleave into out. 0 or -1. */
int profile_dir(char *out, size_t cap);
/* Reads a token (first line, trimmed) from path into out. 0 or -1 (message printed). */
int token_read_file(const char *path, char *out, size_t cap);
int cmd_login(struct ctx *c);
int cmd_profiles(struct ctx *c);

/* ---- out.c ---- */
struct col {
	const char *title;
	const char *path; /* member, "a.b" for a nested one */
	int max;          /* widest a cell gets before it is cut with "…" */
};
/* Prints items (a JSON array of objects) as aligned columns on stdout. */
void print_table(const json_t *items, const struct col *cols, size_t ncols);
/* Prints one object as a row of fixed-width columns (each col.max wide): streamed output. */
void print_row(const json_t *obj, const struct col *cols, size_t ncols);
/* Prints an object as "key: value" lines, nested members flattened as a.b. */
void print_record(const json_t *obj);
/* The member at path ("a.b") as text for a person into out. */
void cell_text(const json_t *obj, const char *path, char *out, size_t cap);
/* Writes s with control characters replaced, so no value can drive the terminal. */
void put_safe(FILE *f, const char *s);
/* The body of r as is, ending in a newline: --json output. */
void print_raw(const struct reply *r);
/* A list answer: --json as is; else a table of items and the next cursor on stderr. */
int print_list(struct ctx *c, const char *path, const struct col *cols, size_t ncols);
/* The same for a list paged by another member (next_after), its option (after) in the hint. */
int print_list_by(struct ctx *c, const char *path, const struct col *cols, size_t ncols,
		  const char *member, const char *option);
/* A record answer: --json as is, else print_record. */
int print_get(struct ctx *c, const char *path);
/* The same for METHOD path with body (may be NULL) whose answer is a record. */
int print_call(struct ctx *c, const char *method, const char *path, const char *body);
/* A change whose answer is a record or nothing: --json prints the record, else done. */
int act(struct ctx *c, const char *method, const char *path, const char *body,
	const char *const *hdrs, const char *done);
/* a, or b when a is NULL. */
static inline const char *
str_or(const char *a, const char *b)
{
	return a != NULL ? a : b;
}
/* GET /api/v1/WHAT/ID (the first argument) TAIL, printed as a record. */
int get_id(struct ctx *c, const char *what, const char *tail);
/* METHOD /api/v1/WHAT/ID TAIL (POST with "{}"); prints "DONE ID" or, with --json, the answer. */
int act_id(struct ctx *c, const char *method, const char *what, const char *tail, const char *done);
/* GET base with --limit and --cursor, printed as a list. */
int list_paged(struct ctx *c, const char *base, const struct col *cols, size_t ncols);
/* Reads a secret from the terminal without echo (or a line of stdin). 0 or -1. */
int read_secret(const char *prompt, char *out, size_t cap);

/* ---- qr.c ---- */
/* Draws text's QR code (level M) with UTF-8 half blocks; invert for a light terminal. 0/-1. */
int qr_print(FILE *f, const char *text, int invert);

/* ---- the subcommands ---- */
int cmd_server(struct ctx *c);
int cmd_devices_list(struct ctx *c);
int cmd_devices_search(struct ctx *c);
int cmd_devices_get(struct ctx *c);
int cmd_devices_count(struct ctx *c);
int cmd_devices_delete(struct ctx *c);
int cmd_devices_policy(struct ctx *c);
int cmd_command_new(struct ctx *c);
int cmd_commands_list(struct ctx *c);
int cmd_commands_get(struct ctx *c);
int cmd_commands_cancel(struct ctx *c);
int cmd_commands_wait(struct ctx *c);
int cmd_bulk_create(struct ctx *c);
int cmd_bulk_list(struct ctx *c);
int cmd_bulk_get(struct ctx *c);
int cmd_bulk_cancel(struct ctx *c);
int cmd_receipts_get(struct ctx *c);
int cmd_receipts_fetch(struct ctx *c);
int cmd_receipts_verify(struct ctx *c);
int cmd_etokens_create(struct ctx *c);
int cmd_etokens_list(struct ctx *c);
int cmd_etokens_revoke(struct ctx *c);
int cmd_policies_list(struct ctx *c);
int cmd_policies_get(struct ctx *c);
int cmd_policies_put(struct ctx *c);
int cmd_policies_default(struct ctx *c);
int cmd_audit_list(struct ctx *c);
int cmd_audit_tail(struct ctx *c);
int cmd_audit_verify(struct ctx *c);
int cmd_audit_export(struct ctx *c);
int cmd_admins_list(struct ctx *c);
int cmd_admins_create(struct ctx *c);
int cmd_admins_disable(struct ctx *c);
int cmd_admins_totp(struct ctx *c);
int cmd_tokens_list(struct ctx *c);
int cmd_tokens_create(struct ctx *c);
int cmd_tokens_revoke(struct ctx *c);
int cmd_labels_get(struct ctx *c);
int cmd_labels_set(struct ctx *c);
int cmd_labels_remove(struct ctx *c);
int cmd_labels_replace(struct ctx *c);
int cmd_labels_bulk(struct ctx *c);
int cmd_groups_list(struct ctx *c);
int cmd_groups_get(struct ctx *c);
int cmd_groups_create(struct ctx *c);
int cmd_groups_update(struct ctx *c);
int cmd_groups_delete(struct ctx *c);
int cmd_groups_devices(struct ctx *c);
int cmd_audit_stream(struct ctx *c);
int cmd_webhooks_list(struct ctx *c);
int cmd_webhooks_get(struct ctx *c);
int cmd_webhooks_create(struct ctx *c);
int cmd_webhooks_update(struct ctx *c);
int cmd_webhooks_delete(struct ctx *c);
int cmd_webhooks_rotate(struct ctx *c);
int cmd_webhooks_deliveries(struct ctx *c);
int cmd_webhooks_redeliver(struct ctx *c);
int cmd_webhooks_types(struct ctx *c);
int cmd_approvals_list(struct ctx *c);
int cmd_approvals_get(struct ctx *c);
int cmd_approvals_approve(struct ctx *c);
int cmd_approvals_reject(struct ctx *c);
int cmd_approvals_cancel(struct ctx *c);
int cmd_approvals_override(struct ctx *c);

/*
 * A request's answer j held by the two-person rule (202 "pending_approval"): prints the
 * approval and what to do next (--json: the answer, unless wait) and returns EX_PENDING;
 * -1 when j is not such an answer.
 */
int approval_answer(struct ctx *c, const json_t *j, const struct reply *r, int wait);
/*
 * Follows approval id until it is decided or the monotonic deadline passes. EX_OK when
 * approved or overridden (the approval into *out, caller decrefs); EX_UNVERIFIED when
 * rejected, canceled or expired (why on stderr); EX_PENDING at the deadline; else the error.
 */
int approval_follow(struct ctx *c, const char *id, double deadline, json_t **out);
/* CLOCK_MONOTONIC in seconds. */
double mono_s(void);

/* The device-list filters (devices list, devices count, bulk create) as query parameters. */
extern const char *const device_filters[];
int filters_query(const struct ctx *c, char *q, size_t cap);
/* Adds the filters, --sort and --order to path (a device list) and prints that page. */
int devices_page(struct ctx *c, char *path, size_t cap);
/*
 * How many device-list filters the options give; with req, sets its target: "group" when
 * --group is the only one, else "filter" (nothing when none).
 */
int target_filters(const struct ctx *c, json_t *req);

#endif

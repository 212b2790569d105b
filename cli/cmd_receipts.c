/*
 * receipts: fetch a command's receipt, ticket and the device's hypervisor key, and verify a
 * receipt offline with OpenSSL, trusting nothing the server says: the same checks as the
 * README's "For auditors: checking a wipe receipt with openssl alone" (signature over bytes
 * 0..255 by the hypervisor key, the ticket's SHA-256 at bytes 112..143, the result and the
 * checks), plus what the server itself requires before it calls a receipt verified (the key
 * inside the receipt, the ids, the checks the type requires, an advanced key epoch).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "cli.h"
#include "util.h"
#include "wire.h"

#define PATH_CAP 2048

int
cmd_receipts_get(struct ctx *c)
{
	return get_id(c, "commands", "/receipt");
}

static int
write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char path[PATH_MAX];
	int fd, ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return fail(EX_USAGE, "cannot write %s: %s", path, strerror(errno));
	ok = write(fd, data, len) == (ssize_t)len;
	if (close(fd) != 0 || !ok)
		return fail(EX_USAGE, "cannot write %s: %s", path, strerror(errno));
	fprintf(stderr, "wrote %s (%zu bytes)\n", path, len);
	return EX_OK;
}

/* GETs path and writes its body to DIR/name. */
static int
fetch_to(struct ctx *c, const char *path, const char *dir, const char *name)
{
	struct reply r;
	int rc = api(c, "GET", path, NULL, NULL, &r);

	if (rc == EX_OK)
		rc = write_file(dir, name, r.body ? r.body : "", r.len);
	reply_free(&r);
	return rc;
}

int
cmd_receipts_fetch(struct ctx *c)
{
	const char *dir = str_or(opt(c, "dir"), ".");
	char path[PATH_CAP], dev[64];
	struct reply r;
	json_t *j;
	int rc;

	if (id_path(path, sizeof(path), "commands", c->a.pos[0], "") != EX_OK)
		return EX_USAGE;
	if ((rc = api_json(c, "GET", path, NULL, NULL, &j, &r)) != EX_OK)
		return rc;
	str_copy(dev, sizeof(dev), str_or(json_string_value(json_object_get(j, "device_id")), ""));
	json_decref(j);
	reply_free(&r);
	if (id_path(path, sizeof(path), "commands", c->a.pos[0], "/receipt.bin") != EX_OK ||
	    (rc = fetch_to(c, path, dir, "receipt.bin")) != EX_OK)
		return rc;
	if (id_path(path, sizeof(path), "commands", c->a.pos[0], "/ticket.bin") != EX_OK ||
	    (rc = fetch_to(c, path, dir, "ticket.bin")) != EX_OK)
		return rc;
	if (id_path(path, sizeof(path), "devices", dev, "/hypervisor-key.pem") != EX_OK)
		return EX_USAGE;
	return fetch_to(c, path, dir, "hv.pem");
}

/* Reads exactly want bytes of path (a longer or shorter file is refused). */
static int
read_exact(const char *path, uint8_t *out, size_t want)
{
	FILE *f = fopen(path, "rb");
	size_t n;
	int more;

	if (f == NULL)
		return fail(EX_USAGE, "cannot read %s: %s", path, strerror(errno));
	n = fread(out, 1, want, f);
	more = fgetc(f) != EOF;
	fclose(f);
	if (n != want || more)
		return fail(EX_UNVERIFIED, "%s is not %zu bytes long", path, want);
	return EX_OK;
}

/* The Ed25519 public key of a PEM file (raw 32 bytes into raw). */
static EVP_PKEY *
load_key(const char *path, uint8_t raw[WIRE_KEY_LEN])
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PUBKEY(f, NULL, NULL, NULL) : NULL;
	size_t n = WIRE_KEY_LEN;

	if (f != NULL)
		fclose(f);
	if (k == NULL || EVP_PKEY_id(k) != EVP_PKEY_ED25519 ||
	    EVP_PKEY_get_raw_public_key(k, raw, &n) != 1 || n != WIRE_KEY_LEN) {
		EVP_PKEY_free(k);
		fail(EX_USAGE, "%s is not an Ed25519 public key in PEM", path);
		return NULL;
	}
	return k;
}

static int
ed25519_ok(EVP_PKEY *k, const uint8_t *msg, size_t len, const uint8_t *sig)
{
	EVP_MD_CTX *m = EVP_MD_CTX_new();
	int ok = m != NULL && EVP_DigestVerifyInit(m, NULL, NULL, NULL, k) == 1 &&
		 EVP_DigestVerify(m, sig, WIRE_SIG_LEN, msg, len) == 1;

	EVP_MD_CTX_free(m);
	return ok;
}

struct verdict {
	json_t *checks; /* [{"check", "ok", "detail"}] */
	int bad;
};

static void note(struct verdict *v, int ok, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
note(struct verdict *v, int ok, const char *check, const char *fmt, ...)
{
	char detail[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	v->bad += !ok;
	json_array_append_new(v->checks, json_pack("{s:s, s:b, s:s}", "check", check, "ok", ok,
						   "detail", detail));
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

/* What was done: result, the checks run and passed, those the type requires, the epoch. */
static void
check_outcome(struct verdict *v, const struct receipt *rc)
{
	uint32_t need = receipt_required_checks(rc->type);
	uint32_t failed = rc->checks_run & ~rc->checks_passed, missing = need & ~rc->checks_passed;
	int moves = rc->type == TICKET_WIPE || rc->type == TICKET_RETIRE ||
		    rc->type == TICKET_REKEY || rc->type == RECEIPT_AUTO_WIPE;
	char names[256] = "";

	note(v, rc->result == 0, "result", "%d (%s)", rc->result,
	     rc->result == 0 ? "done" : "the hypervisor reports a failure");
	for (uint32_t bit = 1, n = 0; bit != 0 && bit <= CHECK_FRESH_VOLUME; bit <<= 1)
		if ((failed | missing) & bit)
			n += (uint32_t)snprintf(names + n, sizeof(names) - n, "%s%s %s",
						n ? "; " : "", check_name(bit),
						failed & bit ? "failed" : "not shown");
	note(v, (failed | missing) == 0, "checks", "run 0x%03x, passed 0x%03x, required 0x%03x%s%s",
	     rc->checks_run, rc->checks_passed, need, names[0] ? ": " : "", names);
	if (moves)
		note(v, rc->epoch_after > rc->epoch_before, "key epoch", "%llu -> %llu",
		     (unsigned long long)rc->epoch_before, (unsigned long long)rc->epoch_after);
}

/* The receipt answers this ticket: its hash, ids, counter and hypervisor key. */
static void
check_ticket(struct verdict *v, const struct receipt *rc, const uint8_t *tb, const uint8_t *key)
{
	uint8_t h[SHA256_DIGEST_LENGTH];
	char want[65], got[65];
	struct ticket t;

	SHA256(tb, TICKET_LEN, h);
	hex(h, sizeof(h), want);
	hex(rc->ticket_hash, sizeof(h), got);
	note(v, memcmp(h, rc->ticket_hash, sizeof(h)) == 0, "ticket hash",
	     "receipt bytes 112..143 %s, SHA-256 of the ticket %s", got, want);
	if (ticket_decode(tb, TICKET_LEN, &t) != 0) {
		note(v, 0, "ticket", "the ticket does not decode (magic, version or fields)");
		return;
	}
	note(v,
	     strcmp(t.command_id, rc->command_id) == 0 && strcmp(t.device_id, rc->device_id) == 0 &&
		     t.type == rc->type && t.counter == rc->ticket_counter,
	     "ticket fields", "command %s, device %s, type %s, counter %llu", t.command_id,
	     t.device_id, str_or(ticket_type_name(t.type), "?"), (unsigned long long)t.counter);
	note(v, memcmp(t.hv_key, key, WIRE_KEY_LEN) == 0, "ticket key",
	     "the ticket was issued for %s hypervisor key",
	     memcmp(t.hv_key, key, WIRE_KEY_LEN) == 0 ? "this" : "another");
}

/* Prints the verdict (a line a check, or --json one document); the exit code. */
static int
report(const struct ctx *c, struct verdict *v)
{
	size_t i;
	json_t *e;

	if (c->json) {
		json_t *out = json_pack("{s:b, s:O}", "verified", v->bad == 0, "checks", v->checks);
		char *s = out ? json_dumps(out, JSON_COMPACT) : NULL;

		printf("%s\n", s ? s : "{}");
		free(s);
		json_decref(out);
	} else {
		json_array_foreach(v->checks, i, e)
		{
			printf("%-4s %-15s ",
			       json_is_true(json_object_get(e, "ok")) ? "ok" : "FAIL",
			       json_string_value(json_object_get(e, "check")));
			put_safe(stdout, json_string_value(json_object_get(e, "detail")));
			putchar('\n');
		}
		printf(v->bad ? "NOT VERIFIED: %d check(s) failed\n" : "verified\n", v->bad);
	}
	json_decref(v->checks);
	return v->bad ? EX_UNVERIFIED : EX_OK;
}

/*
 * A receipt the hypervisor made on its own (auto-lock, auto-wipe: its lease lapsed or too
 * many unlocks failed) answers no ticket: it must name none.
 */
static void
check_no_ticket(struct verdict *v, const struct receipt *rc, const char *tpath)
{
	static const uint8_t zero[WIRE_HASH_LEN];
	int autonomous = rc->type == RECEIPT_AUTO_LOCK || rc->type == RECEIPT_AUTO_WIPE;

	if (autonomous)
		note(v, memcmp(rc->ticket_hash, zero, sizeof(zero)) == 0 && rc->command_id[0] == 0,
		     "ticket", "none: the hypervisor acted on its own (%s)",
		     rc->type == RECEIPT_AUTO_WIPE ? "auto-wipe" : "auto-lock");
	else
		note(v, 0, "ticket",
		     "%s is missing: a command's receipt is checked against its ticket", tpath);
}

static int
verify(struct ctx *c, const char *rpath, const char *tpath, const char *kpath)
{
	uint8_t rb[RECEIPT_LEN], tb[TICKET_LEN], key[WIRE_KEY_LEN];
	struct verdict v = {json_array(), 0};
	int have_ticket = access(tpath, F_OK) == 0, code;
	struct receipt rc;
	EVP_PKEY *k;

	if ((code = read_exact(rpath, rb, sizeof(rb))) != EX_OK ||
	    (have_ticket && (code = read_exact(tpath, tb, sizeof(tb))) != EX_OK) ||
	    (k = load_key(kpath, key)) == NULL) {
		json_decref(v.checks);
		return code != EX_OK ? code : EX_USAGE;
	}
	note(&v, ed25519_ok(k, rb, RECEIPT_BODY_LEN, rb + RECEIPT_BODY_LEN), "signature",
	     "Ed25519 over bytes 0..255 by %s", kpath);
	EVP_PKEY_free(k);
	if (receipt_decode(rb, sizeof(rb), &rc) != 0) {
		note(&v, 0, "format", "not a receipt (magic, version or reserved bytes)");
		return report(c, &v);
	}
	note(&v, memcmp(rc.hv_key, key, sizeof(key)) == 0, "hypervisor key",
	     "the key inside the receipt is %s key",
	     memcmp(rc.hv_key, key, 32) ? "another" : "this");
	if (have_ticket)
		check_ticket(&v, &rc, tb, key);
	else
		check_no_ticket(&v, &rc, tpath);
	check_outcome(&v, &rc);
	return report(c, &v);
}

int
cmd_receipts_verify(struct ctx *c)
{
	const char *dir = c->a.npos > 0 ? c->a.pos[0] : ".";
	char r[PATH_MAX], t[PATH_MAX], k[PATH_MAX];

	snprintf(r, sizeof(r), "%s/receipt.bin", dir);
	snprintf(t, sizeof(t), "%s/ticket.bin", dir);
	snprintf(k, sizeof(k), "%s/hv.pem", dir);
	return verify(c, str_or(opt(c, "receipt"), r), str_or(opt(c, "ticket"), t),
		      str_or(opt(c, "key"), k));
}

/*
 * One audit entry as one message for a SIEM: RFC 5424 with the entry in structured data
 * (every field, the chain hash and the previous hash, so a SIEM can check the chain itself),
 * framed by octet counting (RFC 6587 §3.4.1, which RFC 5425 requires over TLS); or a JSON
 * object per line with the fields of GET /api/v1/audit/export. No field is altered beyond the
 * escaping each format needs, so the hashes can be recomputed from what the SIEM received.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "b64.h"
#include "crypto.h"
#include "siem.h"

#define FACILITY_LOG_AUDIT 13
#define SEV_WARNING        4
#define SEV_NOTICE         5
#define SEV_INFO           6

struct out {
	char *p;
	size_t len, cap;
	int full;
};

static void
put(struct out *o, const char *s, size_t n)
{
	if (o->full || n >= o->cap - o->len) {
		o->full = 1;
		return;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
	o->p[o->len] = '\0';
}

static void
puts_(struct out *o, const char *s)
{
	put(o, s, strlen(s));
}

/* RFC 5424 §6.3.3: in a PARAM-VALUE, '"', '\' and ']' are escaped with a backslash. */
static void
put_sd_value(struct out *o, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '"' || *s == '\\' || *s == ']')
			put(o, "\\", 1);
		put(o, s, 1);
	}
}

/* A JSON string: quotes, backslashes and control characters escaped; other bytes as they are. */
static void
put_json_string(struct out *o, const char *s)
{
	char u[8];

	put(o, "\"", 1);
	for (; *s != '\0'; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			put(o, "\\", 1);
			put(o, s, 1);
		} else if (ch < 0x20 || ch == 0x7f) {
			snprintf(u, sizeof(u), "\\u%04x", ch);
			puts_(o, u);
		} else {
			put(o, s, 1);
		}
	}
	put(o, "\"", 1);
}

static void
iso_ms(int64_t ms, char *buf, size_t cap)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
		 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static void
format_5424(const struct siem_fmt *f, const struct audit_entry *e, struct out *o)
{
	const char *names[] = {"actor", "action", "target", "outcome", "detail"};
	const char *vals[] = {e->actor, e->action, e->target, e->outcome, e->detail};
	char head[128], at[40], hash[65], prev[65];
	int sev = strcmp(e->outcome, "ok") == 0 ? SEV_NOTICE : SEV_WARNING;

	iso_ms(e->at_ms, at, sizeof(at));
	hex_encode(hash, sizeof(hash), e->hash, 32);
	hex_encode(prev, sizeof(prev), e->prev_hash, 32);
	snprintf(head, sizeof(head), "<%d>1 %s ", FACILITY_LOG_AUDIT * 8 + sev, at);
	puts_(o, head);
	puts_(o, f->hostname);
	puts_(o, " cleave - audit [");
	puts_(o, f->sd_id);
	snprintf(head, sizeof(head), " seq=\"%lld\" at=\"%s\"", (long long)e->seq, at);
	puts_(o, head);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		put(o, " ", 1);
		puts_(o, names[i]);
		puts_(o, "=\"");
		put_sd_value(o, vals[i]);
		put(o, "\"", 1);
	}
	puts_(o, " hash=\"");
	puts_(o, hash);
	puts_(o, "\" prev_hash=\"");
	puts_(o, prev);
	puts_(o, "\"] ");
	/* MSG: a line for people; the structured data above is what a SIEM should parse. */
	snprintf(head, sizeof(head), "audit %lld: ", (long long)e->seq);
	puts_(o, head);
	for (size_t i = 0; i < 4; i++) {
		puts_(o, i ? " " : "");
		puts_(o, vals[i][0] ? vals[i] : "-");
	}
}

static void
format_json(const struct audit_entry *e, struct out *o)
{
	const char *names[] = {"actor", "action", "target", "outcome", "detail"};
	const char *vals[] = {e->actor, e->action, e->target, e->outcome, e->detail};
	char head[96], at[40], hash[65], prev[65];

	iso_ms(e->at_ms, at, sizeof(at));
	hex_encode(hash, sizeof(hash), e->hash, 32);
	hex_encode(prev, sizeof(prev), e->prev_hash, 32);
	snprintf(head, sizeof(head), "{\"seq\":%lld,\"at\":\"%s\"", (long long)e->seq, at);
	puts_(o, head);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		put(o, ",\"", 2);
		puts_(o, names[i]);
		put(o, "\":", 2);
		put_json_string(o, vals[i]);
	}
	puts_(o, ",\"hash\":\"");
	puts_(o, hash);
	puts_(o, "\",\"prev_hash\":\"");
	puts_(o, prev);
	puts_(o, "\"}\n");
}

/* Frames msg (len bytes) for the transport: octet counting for RFC 5424, as is for JSON. */
static int
frame(const struct siem_fmt *f, const char *msg, size_t len, char *dst, size_t cap)
{
	int n = f->format == SIEM_JSON ? snprintf(dst, cap, "%s", msg)
				       : snprintf(dst, cap, "%zu %s", len, msg);

	return n < 0 || (size_t)n >= cap ? -ENOSPC : n;
}

int
siem_format_ckpt(const struct siem_fmt *f, const struct audit_ckpt_row *c, char *dst, size_t cap)
{
	char msg[1024], at[40], head[65], rec[256];
	int n;

	iso_ms(c->at_ms, at, sizeof(at));
	hex_encode(head, sizeof(head), c->record + 32, 32); /* the body's head hash (§6) */
	if (b64_encode(rec, sizeof(rec), c->record, AUDIT_CKPT_LEN) < 0)
		return -ENOSPC;
	if (f->format == SIEM_JSON)
		n = snprintf(msg, sizeof(msg),
			     "{\"checkpoint\":{\"seq\":%lld,\"at\":\"%s\",\"head_hash\":\"%s\","
			     "\"record\":\"%s\"}}\n",
			     (long long)c->seq, at, head, rec);
	else
		n = snprintf(msg, sizeof(msg),
			     "<%d>1 %s %s cleave - checkpoint [%s seq=\"%lld\" at=\"%s\" "
			     "head_hash=\"%s\" record=\"%s\"] checkpoint of entry %lld",
			     FACILITY_LOG_AUDIT * 8 + SEV_INFO, at, f->hostname, f->sd_id,
			     (long long)c->seq, at, head, rec, (long long)c->seq);
	if (n < 0 || (size_t)n >= sizeof(msg))
		return -ENOSPC;
	return frame(f, msg, (size_t)n, dst, cap);
}

int
siem_format(const struct siem_fmt *f, const struct audit_entry *e, char *dst, size_t cap)
{
	char msg[SIEM_MSG_MAX];
	struct out o = {msg, 0, sizeof(msg), 0};

	msg[0] = '\0';
	if (f->format == SIEM_JSON)
		format_json(e, &o);
	else
		format_5424(f, e, &o);
	if (o.full)
		return -ENOSPC;
	return frame(f, msg, o.len, dst, cap);
}

/*
 * The audit log as a stream for a SIEM (issue 11 §3): one thread per server reads the audit
 * table from the stream's stored position and sends each entry, with its chain hash, to a
 * collector as an RFC 5424 syslog message (octet-counted, RFC 6587) or a JSON line, over TLS
 * (RFC 5425), plain TCP, or into a file. The position moves only after the collector's TCP has
 * acknowledged every byte of a batch and the connection stayed up a moment longer; so nothing
 * is held in memory that a crash would lose, and a restart sends again at most the one batch
 * whose position was not yet stored (at-least-once: each message carries its seq, so a SIEM
 * can drop the repeat). With several servers on one database, a lease row makes one of them
 * the sender; another takes over when its lease runs out. The API never waits for any of it.
 */
#ifndef CLEAVE_SIEM_H
#define CLEAVE_SIEM_H

#include <limits.h>
#include <stddef.h>

#include "store/store.h"

enum siem_transport { SIEM_OFF, SIEM_TLS, SIEM_TCP, SIEM_FILE };
enum siem_format { SIEM_RFC5424, SIEM_JSON };

#define SIEM_SD_ID_DEFAULT "cleave@32473" /* RFC 5612's documentation PEN: see server/README */
#define SIEM_MSG_MAX       8192           /* one message, framing included */

struct siem_config {
	char target[PATH_MAX + 16]; /* as configured, for people (no secrets in it) */
	enum siem_transport transport;
	enum siem_format format;
	char host[256];
	unsigned port;
	char path[PATH_MAX];        /* SIEM_FILE */
	char ca_file[PATH_MAX];     /* TLS: the collector's CA (required) */
	char server_name[256];      /* TLS: the name its certificate must carry; "" : host */
	char client_cert[PATH_MAX]; /* TLS: optional client certificate and key */
	char client_key[PATH_MAX];
	unsigned allow_plain; /* plain TCP to another host than the loopback */
	char sd_id[64];       /* RFC 5424 SD-ID of the entry's structured data */
	char hostname[256];   /* RFC 5424 HOSTNAME; "" : gethostname() */
	char stream[64];      /* the position's name in the database; default "siem" */
	unsigned batch;       /* entries per batch, default 100 */
	unsigned hold_ms;     /* after the peer acknowledged a batch: quiet time before it counts */
	unsigned lease_s;     /* the sender's lease, default 15 */
	unsigned max_backoff; /* seconds between reconnects at most, default 60 */
};

/* The defaults (transport SIEM_OFF). */
void siem_config_init(struct siem_config *c);
/*
 * Applies the setting key (siem_*) = val. 0; -1 with the reason on stderr when val is wrong
 * (where names the file and line or flag); 1 when key is not a siem setting.
 */
int siem_set_option(struct siem_config *c, const char *key, const char *val, const char *where);
/* Checks the settings together (TLS needs a CA, plain TCP needs loopback or allow). 0 or -1. */
int siem_config_check(const struct siem_config *c);

/* ---- formatting (siem_format.c; exposed for tests) ---- */
struct siem_fmt {
	enum siem_format format;
	const char *hostname; /* already printable ASCII */
	const char *sd_id;
};
/*
 * Writes e as one framed message into dst: "LEN SP <PRI>1 ..." for RFC 5424 (octet counting),
 * or one JSON object and "\n". Returns its length, or -ENOSPC when cap is too small.
 */
int siem_format(const struct siem_fmt *f, const struct audit_entry *e, char *dst, size_t cap);
/*
 * A signed audit checkpoint (audit/audit.h) as one message: MSGID "checkpoint" with seq, at,
 * head_hash and the signed record in base64, or the JSON line {"checkpoint": {...}}. Its
 * length, or -ENOSPC.
 */
int siem_format_ckpt(const struct siem_fmt *f, const struct audit_ckpt_row *c, char *dst,
		     size_t cap);

/* ---- the sender ---- */
struct siem;
/*
 * Starts the sender's thread for c (copied) on st, which must outlive siem_stop; nothing when
 * c's transport is SIEM_OFF (*out NULL). Everything that must survive a crash is in the
 * database, nothing in files of the server's. 0 or -errno.
 */
int siem_start(struct store *st, const struct siem_config *c, struct siem **out);
/* Stops the thread (interrupting a blocked send), gives up the lease, frees s. NULL is fine. */
void siem_stop(struct siem *s);

/* What this server's sender is doing, for GET /api/v1/audit/stream. */
struct siem_status {
	char target[PATH_MAX + 16];
	const char *format; /* "rfc5424" or "json" */
	char stream[64];
	int sending;       /* holds the lease */
	int connected;     /* to the collector */
	char problem[256]; /* the last problem while it lasts; "" : none */
};
/* s may be NULL: then out says nothing is configured (target ""). */
void siem_status(struct siem *s, struct siem_status *out);

#endif

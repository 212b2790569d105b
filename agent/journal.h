/*
 * The command journal: one durable record per server command in DIR/journal/<id>.cmd, written
 * before each step that cannot be taken back (received before the ack, executing before the
 * ticket goes to cleave-hv, done with the outcome and receipt before the result is reported).
 * It is what makes execution at most once and reporting at least once across crashes. A record
 * that cannot be read is an error for the caller, never silently dropped or reset. It does not
 * decide what a state means for the next step (command.c does).
 */
#ifndef CLEAVE_AGENT_JOURNAL_H
#define CLEAVE_AGENT_JOURNAL_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "keystore.h"
#include "util.h"
#include "wire.h"

#define JOURNAL_MAX       4096 /* records listed at most; more is refused as corrupt state */
#define JOURNAL_KEEP_DONE 64   /* reported records kept (newest first) by journal_prune */

enum journal_state {
	JS_RECEIVED = 1,  /* journaled, not yet given to cleave-hv */
	JS_EXECUTING = 2, /* given (or about to be given) to cleave-hv: outcome not yet known */
	JS_DONE = 3,      /* outcome and receipt known; result not yet accepted by the server */
	JS_REPORTED = 4,  /* the server has the result; kept a while to recognise re-deliveries */
};

struct journal_entry {
	char id[AGENT_ID_MAX];
	char type[16]; /* ticket type name: wipe, lock, ... */
	char reason[128];
	uint64_t counter;
	uint8_t ticket[TICKET_LEN];
	int state;     /* enum journal_state */
	int acked;     /* the server acknowledged our ack */
	int completed; /* JS_DONE/JS_REPORTED: 1 completed, 0 failed */
	char detail[200];
	int has_receipt;
	uint8_t receipt[RECEIPT_LEN];
	int64_t received_at; /* unix seconds */
	int64_t updated_at;
	uint32_t attempts; /* times cleave-hv could not be asked (unreachable, busy) */
};

struct journal {
	char dir[PATH_MAX];
};

/* Opens DIR/journal, creating it (0700) when missing; refuses loose permissions. */
int journal_open(struct journal *j, const struct agent_dir *d) __must_check;
/* Writes e durably (replaces the record of e->id). 0 or -errno. */
int journal_put(const struct journal *j, const struct journal_entry *e) __must_check;
/* Reads the record of id. -ENOENT when absent; -EBADMSG/-EPERM when refused (logged). */
int journal_get(const struct journal *j, const char *id, struct journal_entry *e) __must_check;
/*
 * Every record, sorted by ticket counter. *out is owned by the caller (free()); *n entries.
 * Fails with -EBADMSG/-EPERM (logged, naming the file) when any record is refused.
 */
int journal_list(const struct journal *j, struct journal_entry **out, size_t *n) __must_check;
/* Removes the record of id (missing is fine). */
int journal_drop(const struct journal *j, const char *id);
/*
 * Removes reported records last updated more than keep_s before now, and all but the newest
 * JOURNAL_KEEP_DONE reported records.
 */
void journal_prune(const struct journal *j, int64_t now, int64_t keep_s);

/* "received", "executing", "done", "reported"; "?" otherwise. */
const char *journal_state_name(int state);
/* Whether id may name a record: 1-31 of [A-Za-z0-9_.-], not starting with '.'. */
int journal_id_ok(const char *id);

#endif

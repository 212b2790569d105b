/*
 * The replay log of accepted device request nonces (replaylog.c): written before a request is
 * answered, emptied once the store holds the same. Private to service/.
 */
#ifndef CLEAVE_REPLAYLOG_H
#define CLEAVE_REPLAYLOG_H

#include <stddef.h>
#include <stdint.h>

struct replaylog;

/* Called for each record found at open; non-zero stops and fails the open. */
typedef int (*replaylog_fn)(void *ctx, const char *device_id, uint64_t nonce);

/*
 * Opens (creating) PATH.0 and PATH.1, passing every record in them to fn; *records counts
 * them. *out is owned by the caller (replaylog_close).
 */
int replaylog_open(const char *path, replaylog_fn fn, void *ctx, struct replaylog **out,
		   size_t *records);
/* Empties both files (after the store took what open found). */
int replaylog_reset(struct replaylog *l);
/*
 * Appends one accepted nonce (written before this returns; synced to the disk at the next
 * switch). 0, or -errno: the request must not be answered as accepted.
 */
int replaylog_append(struct replaylog *l, const char *device_id, uint64_t nonce);
/*
 * Before a flush of nonces to the store: syncs the current file to the disk; 1 when appends
 * moved to the other (empty) file.
 */
int replaylog_switch(struct replaylog *l);
/* After a flush that put every dirty nonce in the store; switched is replaylog_switch's. */
void replaylog_flushed(struct replaylog *l, int switched);
/* NULL is ignored. */
void replaylog_close(struct replaylog *l);

#endif

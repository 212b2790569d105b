/*
 * In-memory, per-device state that is too hot to write on every request: the wake generation
 * (bumped when something becomes pending), the request-signature replay window, and check-in
 * times waiting to be flushed to the store. One mutex guards the table; every operation is
 * O(1) expected. Nothing here is the source of truth except the replay window between flushes.
 */
#ifndef CLEAVE_DEVSTATE_H
#define CLEAVE_DEVSTATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define REPLAY_WINDOW 64

struct devstate_entry {
	char id[STORE_ID_MAX];
	uint64_t wake_gen;
	int replay_loaded; /* highest/bitmap initialised from the store */
	uint64_t highest;  /* highest signature nonce accepted */
	uint64_t bitmap;   /* bit i: highest - i was accepted */
	uint64_t floor;    /* recovered from the replay log: everything up to it counts as used */
	int64_t last_seen; /* unix seconds, pending flush when dirty */
	int dirty;
	struct devstate_entry *next;
};

struct devstate {
	pthread_mutex_t lock;
	struct devstate_entry **buckets;
	size_t nbuckets;
	size_t count;
};

int devstate_init(struct devstate *t);
void devstate_fini(struct devstate *t);

uint64_t devstate_bump(struct devstate *t, const char *id);
uint64_t devstate_gen(struct devstate *t, const char *id);
/*
 * devstate_bump for a device this process has seen a request of (it has an entry); 0 and no
 * entry made for any other. Every check-in that could be parked was authenticated here first,
 * which made its entry, so a device without one has nothing to wake: a fleet-wide wake costs no
 * memory for the devices that talk to another server or are offline.
 */
uint64_t devstate_bump_known(struct devstate *t, const char *id);

/*
 * Checks nonce against the device's window (floor: stored_seq, the value persisted in the
 * store, used the first time this device is seen) and records it. Returns 0 when fresh,
 * -EALREADY when replayed or older than the window, -ENOMEM.
 */
int devstate_accept_nonce(struct devstate *t, const char *id, int64_t stored_seq, uint64_t nonce,
			  int64_t now_s);

/* Snapshot of dirty entries for flushing: fills ids/seen/seq, clears dirty. */
size_t devstate_take_dirty(struct devstate *t, char (*ids)[STORE_ID_MAX], int64_t *seen,
			   int64_t *seq, size_t max);
/* Every nonce up to nonce counts as used for device id (recovered after a crash); marks it dirty. */
int devstate_raise_floor(struct devstate *t, const char *id, uint64_t nonce);
/* Marks a device's entry for flushing again (its last flush did not reach the store). */
void devstate_mark_dirty(struct devstate *t, const char *id);
/* Forgets a device (after delete). */
void devstate_forget(struct devstate *t, const char *id);

#endif

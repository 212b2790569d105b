/*
 * Jittered exponential backoff for the check-in loop: base, 2 x base, 4 x base, ... up to a cap,
 * each delay moved by up to +-25% at random so that many agents that lost the same server do
 * not come back in step. Pure: the random source is a seeded xorshift, so tests can replay it.
 */
#ifndef CLEAVE_AGENT_BACKOFF_H
#define CLEAVE_AGENT_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint32_t base_ms;
	uint32_t max_ms;
	uint32_t attempt; /* failures since the last success */
	uint64_t rng;     /* xorshift64 state, never 0 */
};

/* seed 0 is replaced by a fixed nonzero value. */
void backoff_init(struct backoff *b, uint32_t base_ms, uint32_t max_ms, uint64_t seed);
/*
 * The delay before the next attempt, in milliseconds: min(max, base << attempt) scaled by a
 * random factor in [0.75, 1.25], then capped at max_ms. Counts one more failure.
 */
uint32_t backoff_next(struct backoff *b);
/* A success: the next failure starts again at base. */
void backoff_reset(struct backoff *b);

#endif

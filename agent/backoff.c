/*
 * Backoff arithmetic in 64 bits, so no shift or product can overflow whatever the attempt.
 */
#include "backoff.h"

void
backoff_init(struct backoff *b, uint32_t base_ms, uint32_t max_ms, uint64_t seed)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->max_ms = max_ms >= b->base_ms ? max_ms : b->base_ms;
	b->attempt = 0;
	b->rng = seed != 0 ? seed : 0x9e3779b97f4a7c15ull;
}

static uint64_t
xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*s = x;
	return x;
}

uint32_t
backoff_next(struct backoff *b)
{
	uint64_t d = b->base_ms;
	/* A factor in [750, 1250] per mille, uniform over 501 values. */
	uint64_t permille = 750 + xorshift64(&b->rng) % 501;

	for (uint32_t i = 0; i < b->attempt && d < b->max_ms; i++)
		d <<= 1;
	if (d > b->max_ms)
		d = b->max_ms;
	if (b->attempt < UINT32_MAX)
		b->attempt++;
	d = d * permille / 1000;
	return (uint32_t)(d > b->max_ms ? b->max_ms : d);
}

void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}

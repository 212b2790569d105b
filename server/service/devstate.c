/*
 * Chained hash table of struct devstate_entry keyed by device id, growing by doubling. The
 * replay check is the sliding-window scheme of IPsec/WireGuard: a 64-bit bitmap below the
 * highest nonce seen, so requests that race on two connections may arrive out of order.
 */
#include "devstate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

static uint64_t
hash_id(const char *s)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ULL;
	return h;
}

int
devstate_init(struct devstate *t)
{
	memset(t, 0, sizeof(*t));
	t->nbuckets = 1024;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (t->buckets == NULL)
		return -ENOMEM;
	pthread_mutex_init(&t->lock, NULL);
	return 0;
}

void
devstate_fini(struct devstate *t)
{
	if (t->buckets == NULL)
		return;
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct devstate_entry *e = t->buckets[i], *n;

		for (; e != NULL; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(t->buckets);
	t->buckets = NULL;
	pthread_mutex_destroy(&t->lock);
}

static void
grow(struct devstate *t)
{
	size_t nb = t->nbuckets * 2;
	struct devstate_entry **b = calloc(nb, sizeof(*b));

	if (b == NULL)
		return; /* keep the longer chains; still correct */
	for (size_t i = 0; i < t->nbuckets; i++) {
		struct devstate_entry *e = t->buckets[i], *n;

		for (; e != NULL; e = n) {
			size_t k = hash_id(e->id) & (nb - 1);

			n = e->next;
			e->next = b[k];
			b[k] = e;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

/* Finds or creates the entry for id; call with the lock held. NULL when out of memory. */
static struct devstate_entry *
lookup(struct devstate *t, const char *id, int create)
{
	size_t k = hash_id(id) & (t->nbuckets - 1);
	struct devstate_entry *e;

	for (e = t->buckets[k]; e != NULL; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	if (!create)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	str_copy(e->id, sizeof(e->id), id);
	e->next = t->buckets[k];
	t->buckets[k] = e;
	if (++t->count > t->nbuckets * 2)
		grow(t);
	return e;
}

uint64_t
devstate_bump(struct devstate *t, const char *id)
{
	struct devstate_entry *e;
	uint64_t g = 0;

	pthread_mutex_lock(&t->lock);
	e = lookup(t, id, 1);
	if (e != NULL)
		g = ++e->wake_gen;
	pthread_mutex_unlock(&t->lock);
	return g;
}

uint64_t
devstate_bump_known(struct devstate *t, const char *id)
{
	struct devstate_entry *e;
	uint64_t g = 0;

	pthread_mutex_lock(&t->lock);
	e = lookup(t, id, 0);
	if (e != NULL)
		g = ++e->wake_gen;
	pthread_mutex_unlock(&t->lock);
	return g;
}

uint64_t
devstate_gen(struct devstate *t, const char *id)
{
	struct devstate_entry *e;
	uint64_t g = 0;

	pthread_mutex_lock(&t->lock);
	e = lookup(t, id, 0);
	if (e != NULL)
		g = e->wake_gen;
	pthread_mutex_unlock(&t->lock);
	return g;
}

int
devstate_accept_nonce(struct devstate *t, const char *id, int64_t stored_seq, uint64_t nonce,
		      int64_t now_s)
{
	struct devstate_entry *e;
	int r = 0;

	if (nonce == 0)
		return -EALREADY;
	pthread_mutex_lock(&t->lock);
	e = lookup(t, id, 1);
	if (e == NULL) {
		pthread_mutex_unlock(&t->lock);
		return -ENOMEM;
	}
	if (!e->replay_loaded) {
		/* After a restart only nonces above the persisted (or recovered) one are accepted. */
		e->highest = MAX(stored_seq > 0 ? (uint64_t)stored_seq : 0, e->floor);
		e->bitmap = ~0ULL; /* everything at or below the floor counts as used */
		e->replay_loaded = 1;
	}
	if (nonce > e->highest) {
		uint64_t shift = nonce - e->highest;

		e->bitmap = shift >= REPLAY_WINDOW ? 1 : (e->bitmap << shift) | 1;
		e->highest = nonce;
	} else {
		uint64_t back = e->highest - nonce;

		if (back >= REPLAY_WINDOW || (e->bitmap & (1ULL << back)))
			r = -EALREADY;
		else
			e->bitmap |= 1ULL << back;
	}
	if (r == 0) {
		e->last_seen = now_s;
		e->dirty = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return r;
}

size_t
devstate_take_dirty(struct devstate *t, char (*ids)[STORE_ID_MAX], int64_t *seen, int64_t *seq,
		    size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t i = 0; i < t->nbuckets && n < max; i++) {
		for (struct devstate_entry *e = t->buckets[i]; e != NULL && n < max; e = e->next) {
			if (!e->dirty)
				continue;
			str_copy(ids[n], STORE_ID_MAX, e->id);
			seen[n] = e->last_seen;
			seq[n] = (int64_t)MAX(e->highest, e->floor);
			e->dirty = 0;
			n++;
		}
	}
	pthread_mutex_unlock(&t->lock);
	return n;
}

int
devstate_raise_floor(struct devstate *t, const char *id, uint64_t nonce)
{
	struct devstate_entry *e;

	pthread_mutex_lock(&t->lock);
	e = lookup(t, id, 1);
	if (e != NULL) {
		e->floor = MAX(e->floor, nonce);
		if (e->replay_loaded && nonce > e->highest) {
			e->highest = nonce;
			e->bitmap = ~0ULL;
		}
		e->dirty = 1;
	}
	pthread_mutex_unlock(&t->lock);
	return e != NULL ? 0 : -ENOMEM;
}

void
devstate_mark_dirty(struct devstate *t, const char *id)
{
	struct devstate_entry *e;

	pthread_mutex_lock(&t->lock);
	e = lookup(t, id, 0);
	if (e != NULL)
		e->dirty = 1; /* its values only grew since they were taken */
	pthread_mutex_unlock(&t->lock);
}

void
devstate_forget(struct devstate *t, const char *id)
{
	size_t k;
	struct devstate_entry **pp;

	pthread_mutex_lock(&t->lock);
	k = hash_id(id) & (t->nbuckets - 1);
	for (pp = &t->buckets[k]; *pp != NULL; pp = &(*pp)->next) {
		if (strcmp((*pp)->id, id) == 0) {
			struct devstate_entry *e = *pp;

			*pp = e->next;
			free(e);
			t->count--;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

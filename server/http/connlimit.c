/*
 * Connection admission for the HTTPS daemon: one client address may hold at most per_address
 * connections (IPv6 counted per /64, the block one subscriber usually gets), and the last
 * `reserve` slots of the daemon's limit are kept for trusted addresses so an admin or a health
 * check still gets in while the rest is full. Counts live in a tsearch tree keyed by address
 * under one mutex; only untrusted addresses get an entry.
 */
#include "connlimit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <search.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct cl_entry {
	uint8_t key[16];
	unsigned count;
};

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* The client's address as 16 bytes, IPv4 mapped into IPv6; -1 for other families. */
static int
addr16(const struct sockaddr *sa, uint8_t out[16])
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in4 = (const void *)sa;

		memcpy(out, v4_mapped, 12);
		memcpy(out + 12, &in4->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;

		memcpy(out, &in6->sin6_addr, 16);
		return 0;
	}
	return -1;
}

static int
in_net(const uint8_t a[16], const struct cl_net *n)
{
	unsigned full = n->prefix / 8, rest = n->prefix % 8;

	if (memcmp(a, n->addr, full) != 0)
		return 0;
	if (rest == 0)
		return 1;
	return ((a[full] ^ n->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

static int
parse_one(const char *item, struct cl_net *n)
{
	char host[64], *slash, *end;
	unsigned long prefix;
	int v4;

	if (str_copy(host, sizeof(host), item) != 0)
		return -EINVAL;
	slash = strchr(host, '/');
	if (slash != NULL)
		*slash++ = '\0';
	memset(n, 0, sizeof(*n));
	v4 = inet_pton(AF_INET, host, n->addr + 12) == 1;
	if (v4)
		memcpy(n->addr, v4_mapped, 12);
	else if (inet_pton(AF_INET6, host, n->addr) != 1)
		return -EINVAL;
	prefix = v4 ? 32 : 128;
	if (slash != NULL) {
		unsigned long p = strtoul(slash, &end, 10);

		if (*slash == '\0' || *end != '\0' || p > prefix)
			return -EINVAL;
		prefix = p;
	}
	n->prefix = (unsigned)prefix + (v4 ? 96 : 0);
	return 0;
}

int
connlimit_parse_trusted(const char *list, struct cl_policy *pol, char *bad, size_t badcap)
{
	const char *p = list;

	pol->ntrusted = 0;
	if (strcmp(list, "none") == 0)
		return 0;
	while (*p != '\0') {
		size_t len = strcspn(p, ", \t");
		char item[64];

		if (len == 0) {
			p++;
			continue;
		}
		if (pol->ntrusted == CL_TRUSTED_MAX)
			return -E2BIG;
		memcpy(item, p, MIN(len, sizeof(item) - 1));
		item[MIN(len, sizeof(item) - 1)] = '\0';
		if (len >= sizeof(item) || parse_one(item, &pol->trusted[pol->ntrusted]) != 0) {
			str_copy(bad, badcap, item);
			return -EINVAL;
		}
		pol->ntrusted++;
		p += len;
	}
	return 0;
}

void
connlimit_init(struct connlimit *cl, const struct cl_policy *pol)
{
	memset(cl, 0, sizeof(*cl));
	cl->pol = *pol;
	pthread_mutex_init(&cl->lock, NULL);
}

void
connlimit_fini(struct connlimit *cl)
{
	tdestroy(cl->tree, free);
	cl->tree = NULL;
	pthread_mutex_destroy(&cl->lock);
}

int
connlimit_in_list(const struct cl_policy *pol, const struct sockaddr *sa)
{
	uint8_t a[16];

	if (addr16(sa, a) != 0)
		return 0;
	for (size_t i = 0; i < pol->ntrusted; i++)
		if (in_net(a, &pol->trusted[i]))
			return 1;
	return 0;
}

int
connlimit_trusted(const struct connlimit *cl, const struct sockaddr *sa)
{
	return connlimit_in_list(&cl->pol, sa);
}

static int
entry_cmp(const void *x, const void *y)
{
	return memcmp(((const struct cl_entry *)x)->key, ((const struct cl_entry *)y)->key, 16);
}

/* The counting key: the address, IPv6 (not IPv4-mapped) cut to its /64. */
static void
count_key(const struct sockaddr *sa, uint8_t key[16])
{
	memset(key, 0, 16);
	if (addr16(sa, key) != 0)
		return; /* not IP (cannot happen on a TCP listener): all such share one key */
	if (memcmp(key, v4_mapped, 12) != 0)
		memset(key + 8, 0, 8);
}

int
connlimit_check(struct connlimit *cl, const struct sockaddr *sa)
{
	struct cl_entry probe, **found;
	int r = 0;

	if (connlimit_trusted(cl, sa))
		return 0;
	count_key(sa, probe.key);
	pthread_mutex_lock(&cl->lock);
	if (cl->active + cl->pol.reserve >= cl->pol.total) {
		cl->refused_reserve++;
		r = -ENOSPC;
	} else if (cl->pol.per_address > 0) {
		found = tfind(&probe, &cl->tree, entry_cmp);
		if (found != NULL && (*found)->count >= cl->pol.per_address) {
			cl->refused_address++;
			r = -EMFILE;
		}
	}
	pthread_mutex_unlock(&cl->lock);
	return r;
}

int
connlimit_add(struct connlimit *cl, const struct sockaddr *sa, struct cl_entry **slot)
{
	struct cl_entry *e = NULL, **found;
	int trusted = connlimit_trusted(cl, sa), r = 0;

	*slot = NULL;
	if (!trusted) {
		e = calloc(1, sizeof(*e));
		if (e != NULL)
			count_key(sa, e->key);
	}
	pthread_mutex_lock(&cl->lock);
	cl->active++;
	if (!trusted && e == NULL) {
		r = -ENOMEM;
	} else if (e != NULL) {
		found = tsearch(e, &cl->tree, entry_cmp);
		if (found == NULL) {
			r = -ENOMEM;
		} else {
			(*found)->count++;
			*slot = *found;
		}
	}
	pthread_mutex_unlock(&cl->lock);
	/* tsearch kept the entry only when the address was new. */
	if (e != NULL && *slot != e)
		free(e);
	return r;
}

void
connlimit_del(struct connlimit *cl, struct cl_entry *slot)
{
	pthread_mutex_lock(&cl->lock);
	if (cl->active > 0)
		cl->active--;
	if (slot != NULL && --slot->count == 0) {
		tdelete(slot, &cl->tree, entry_cmp);
		free(slot);
	}
	pthread_mutex_unlock(&cl->lock);
}

/*
 * Who may hold a connection: a cap per client address, a reserve of slots only trusted
 * addresses (loopback, a load balancer, an admin network) may use, and the accounting behind
 * both. Plain C over struct sockaddr; it knows nothing of HTTP or TLS, and never closes a
 * socket itself: http/ asks it before a connection is taken and tells it when one ends.
 */
#ifndef CLEAVE_CONNLIMIT_H
#define CLEAVE_CONNLIMIT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define CL_TRUSTED_MAX 32

/* One trusted network; IPv4 is held as ::ffff:a.b.c.d with its prefix raised by 96. */
struct cl_net {
	uint8_t addr[16];
	unsigned prefix;
};

struct cl_policy {
	unsigned total;       /* the daemon's connection limit */
	unsigned per_address; /* untrusted connections per address (IPv6: per /64); 0: no cap */
	unsigned reserve;     /* of total, the slots only trusted addresses may take */
	size_t ntrusted;
	struct cl_net trusted[CL_TRUSTED_MAX];
};

struct cl_entry;

struct connlimit {
	struct cl_policy pol;
	pthread_mutex_t lock;
	void *tree;      /* tsearch tree of struct cl_entry, one per untrusted address */
	unsigned active; /* connections counted by connlimit_add */
	uint64_t refused_address, refused_reserve;
};

/*
 * Parses a list of addresses and CIDR networks separated by commas or spaces ("none" or an
 * empty list trusts nothing). Returns 0, or -EINVAL (with the bad item copied to bad) or -E2BIG.
 */
int connlimit_parse_trusted(const char *list, struct cl_policy *pol, char *bad, size_t badcap);

/* Caller storage; pol is copied. */
void connlimit_init(struct connlimit *cl, const struct cl_policy *pol);
void connlimit_fini(struct connlimit *cl);

/* True when sa (borrowed) is in a trusted network. */
int connlimit_trusted(const struct connlimit *cl, const struct sockaddr *sa);
/* True when sa (borrowed) is in one of pol's networks (its trusted list). */
int connlimit_in_list(const struct cl_policy *pol, const struct sockaddr *sa);

/*
 * The accept decision for a connection from sa: 0 to take it, -EMFILE when its address is at
 * its cap, -ENOSPC when only the reserve is left and sa is not trusted. Counts nothing; a refusal
 * is counted for metrics.
 */
int connlimit_check(struct connlimit *cl, const struct sockaddr *sa);

/*
 * Counts a connection that was taken. *slot receives what connlimit_del needs (NULL for a
 * trusted address). Returns 0 or -ENOMEM (then the connection is counted in the total only).
 */
int connlimit_add(struct connlimit *cl, const struct sockaddr *sa, struct cl_entry **slot);
/* Forgets a connection counted by connlimit_add; slot is what it returned (may be NULL). */
void connlimit_del(struct connlimit *cl, struct cl_entry *slot);

#endif

/*
 * The client address of a request that came through a trusted reverse proxy (proxy.c): the
 * address the proxy appended to X-Forwarded-For, for refusal budgets and audit rows that
 * would otherwise all name the balancer. Private to http/.
 */
#ifndef CLEAVE_HTTP_PROXY_H
#define CLEAVE_HTTP_PROXY_H

#include <microhttpd.h>
#include <stddef.h>

#include "connlimit.h"

/*
 * When peer (borrowed) is one of proxies' networks and the last X-Forwarded-For header's last
 * entry is a numeric IPv4 or IPv6 address, copies it into client (cap bytes); otherwise leaves
 * client as it is (the peer's own address). Entries before the last are the client's word,
 * never trusted.
 */
void proxy_client(struct MHD_Connection *con, const struct cl_policy *proxies,
		  const struct sockaddr *peer, char *client, size_t cap);

#endif

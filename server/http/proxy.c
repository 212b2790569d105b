/*
 * Behind a TLS-terminating load balancer every connection comes from the balancer, so one
 * client's garbage would spend every device's refusal budget. With trusted_proxies set, the
 * balancer's own entry in X-Forwarded-For (the last one: the balancer appends the address it
 * saw) names the client instead. Only the peers listed are believed; a client that sends its
 * own X-Forwarded-For straight to the server changes nothing, and one that sends it through
 * the balancer only adds entries before the balancer's.
 */
#include "proxy.h"

#include <arpa/inet.h>
#include <string.h>

#include "util.h"

struct last_xff {
	const char *value;
};

static enum MHD_Result
keep_last(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct last_xff *x = cls;

	(void)kind;
	if (key != NULL && value != NULL && strcasecmp(key, "X-Forwarded-For") == 0)
		x->value = value; /* headers come in order: the balancer's is the last */
	return MHD_YES;
}

void
proxy_client(struct MHD_Connection *con, const struct cl_policy *proxies,
	     const struct sockaddr *peer, char *client, size_t cap)
{
	struct last_xff x = {NULL};
	char entry[64];
	uint8_t bin[16];
	const char *p;
	size_t n;

	if (proxies->ntrusted == 0 || !connlimit_in_list(proxies, peer))
		return;
	MHD_get_connection_values(con, MHD_HEADER_KIND, keep_last, &x);
	if (x.value == NULL)
		return;
	p = strrchr(x.value, ',');
	p = p ? p + 1 : x.value;
	p += strspn(p, " \t");
	n = strcspn(p, " \t");
	if (n == 0 || n >= sizeof(entry))
		return;
	memcpy(entry, p, n);
	entry[n] = '\0';
	if (inet_pton(AF_INET, entry, bin) == 1 || inet_pton(AF_INET6, entry, bin) == 1)
		str_copy(client, cap, entry);
}

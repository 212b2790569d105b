/*
 * Privilege matrix and routing of hypercalls. The matrix is data: one row per function with the
 * set of caller classes allowed, so the whole policy reads in one table and a test can walk it.
 * The guest can read status and use its block and heartbeat calls, never lock, wipe, rekey,
 * attest or read keys; other host users get discovery and status only.
 */
#include "dispatch.h"

#include <errno.h>
#include <string.h>

#define A (1u << CALLER_AGENT)
#define O (1u << CALLER_HOST_OTHER)
#define K (1u << CALLER_GUEST_KERNEL)
#define U (1u << CALLER_GUEST_USER)

static const struct {
	uint32_t fid;
	unsigned allowed;
} matrix[] = {
	{CLV_FN_VERSION, A | O | K | U},
	{CLV_FN_FEATURES, A | O | K | U},
	{CLV_FN_STATUS, A | O | K},
	{CLV_FN_ATTEST, A},
	{CLV_FN_PIN_OWNER, A},
	{CLV_FN_LOCK, A},
	{CLV_FN_UNLOCK, A},
	{CLV_FN_REKEY, A},
	{CLV_FN_WIPE, A},
	{CLV_FN_RENEW_LEASE, A},
	{CLV_FN_SET_POLICY, A},
	{CLV_FN_RECEIPTS, A},
	{CLV_FN_RECEIPT_ACK, A},
	{CLV_FN_COUNTERS, A},
	{CLV_FN_TPM_IDENTITY, A},
	{CLV_FN_TPM_ACTIVATE, A},
	{CLV_FN_BLOCK_READ, K},
	{CLV_FN_BLOCK_WRITE, K},
	{CLV_FN_HEARTBEAT, K},
	{CLV_FN_SHARED_PAGE, K},
};

#undef A
#undef O
#undef K
#undef U

/* Splits a fid into service and number; -1 when it is not one of ours. */
static int
fid_slot(uint32_t fid, unsigned *service, unsigned *number)
{
	if ((fid & 0xFF000000u) != 0xF2000000u)
		return -1;
	*service = (fid >> 16) & 0xFF;
	*number = fid & 0xFFFF;
	return *service < 3 && *number < 16 ? 0 : -1;
}

void
dispatch_init(struct dispatch *d, void *ctx)
{
	memset(d, 0, sizeof(*d));
	d->ctx = ctx;
}

int
dispatch_register(struct dispatch *d, uint32_t fid, dispatch_fn fn)
{
	unsigned svc, num;

	if (fid_slot(fid, &svc, &num) != 0)
		return -EINVAL;
	d->handler[num][svc] = fn;
	return 0;
}

int
dispatch_allowed(enum dispatch_caller caller, uint32_t fid)
{
	for (size_t i = 0; i < sizeof(matrix) / sizeof(matrix[0]); i++)
		if (matrix[i].fid == fid)
			return (matrix[i].allowed & (1u << caller)) ? CLV_OK : CLV_E_DENIED;
	return CLV_E_NOT_SUPPORTED;
}

int64_t
dispatch_call(struct dispatch *d, struct dispatch_call *c)
{
	unsigned svc, num;
	int r = dispatch_allowed(c->caller, c->fid);

	c->out_len = 0;
	memset(c->results, 0, sizeof(c->results));
	if (r != CLV_OK)
		return r;
	if (c->fid == CLV_FN_VERSION)
		return CLV_ABI_VERSION;
	if (c->fid == CLV_FN_FEATURES) {
		/* Guests pass the fid in RBX; host callers in the first 4 payload bytes. */
		uint32_t q = (uint32_t)c->args[0];

		if (c->in != NULL && c->in_len >= 4)
			q = (uint32_t)c->in[0] | (uint32_t)c->in[1] << 8 |
			    (uint32_t)c->in[2] << 16 | (uint32_t)c->in[3] << 24;
		if (fid_slot(q, &svc, &num) != 0 || dispatch_allowed(c->caller, q) != CLV_OK)
			return CLV_E_NOT_SUPPORTED;
		return q == CLV_FN_VERSION || q == CLV_FN_FEATURES || d->handler[num][svc] != NULL
			       ? CLV_OK
			       : CLV_E_NOT_SUPPORTED;
	}
	if (fid_slot(c->fid, &svc, &num) != 0 || d->handler[num][svc] == NULL)
		return CLV_E_NOT_SUPPORTED;
	return d->handler[num][svc](d->ctx, c);
}

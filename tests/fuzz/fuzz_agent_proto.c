/*
 * libFuzzer target: the agent's device-API decoders (agent/proto.c), which read what comes back
 * from the network: check-in and unenroll answers (commands with their tickets), the enrollment
 * nonce and answer, lease, receipt-upload and result answers, and problem details. The same
 * bytes go to every parser. A check-in the agent accepts must only hold commands for this
 * device whose tickets agree with their JSON; texts it keeps must be printable.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "agent/proto.h"
#include "log.h"

#define DEV "dev_fuzz" /* the device id the seeds' tickets are bound to */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			return 0;
	return 1;
}

/* What the agent will act on must be what the parser promises (proto.h). */
static void
check_command(const struct proto_command *c)
{
	if (strcmp(c->tk.device_id, DEV) != 0 || strcmp(c->tk.command_id, c->id) != 0 ||
	    c->tk.counter != c->counter || c->counter == 0 ||
	    c->tk.type != ticket_type_from_name(c->type) || !printable(c->reason))
		__builtin_trap();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct checkin_reply r;
	struct proto_command c;
	char err[PROTO_ERR_MAX], nb64[64], id[64], owner[128], prob[200];
	uint8_t nonce[32], key[32], lease[TICKET_LEN];
	uint64_t accepted, highest;
	const char *body = (const char *)data; /* not NUL-terminated: parsers must use size */

	/* refusals are logged; keep the fuzzer's output readable */
	log_set_level((enum log_level)(LOG_LVL_ERR + 1));
	if (proto_checkin_parse(body, size, DEV, &r, err, sizeof(err)) == 0) {
		if (r.n > PROTO_MAX_COMMANDS)
			__builtin_trap();
		for (size_t i = 0; i < r.n; i++)
			check_command(&r.cmd[i]);
	}
	if (proto_unenroll_parse(body, size, DEV, &c, err, sizeof(err)) == 0)
		check_command(&c);
	(void)proto_nonce_parse(body, size, nonce, nb64, sizeof(nb64));
	(void)proto_enroll_parse(body, size, id, sizeof(id), owner, sizeof(owner), key, err,
				 sizeof(err));
	(void)proto_lease_parse(body, size, DEV, lease);
	(void)proto_receipts_reply(body, size, &accepted, &highest);
	(void)proto_result_verified(body, size);
	proto_problem(body, size, prob, sizeof(prob));
	if (memchr(prob, '\0', sizeof(prob)) == NULL || !printable(prob))
		__builtin_trap();
	return 0;
}

/*
 * The deployment's signing keys as the database knows them. Every server of a deployment must
 * hold the same ticket key (the devices pin its public half at enrollment and reject tickets
 * signed by another) and the same audit checkpoint key (verification checks every checkpoint
 * with one key). The private halves are files (keys_dir) copied to each server; the database
 * holds only the public halves, recorded by the first server, so a server started with other
 * keys stops before it signs anything.
 */
#include <errno.h>
#include <string.h>

#include "audit/audit.h"
#include "crypto.h"
#include "log.h"
#include "service.h"
#include "store/store.h"

static void
report(const char *what, const char *file, const uint8_t mine[32], const uint8_t theirs[32])
{
	char a[64] = "?", b[64] = "?";

	key_fingerprint(mine, a, sizeof(a));
	key_fingerprint(theirs, b, sizeof(b));
	log_err("this server's %s key (%s, %s) is not the deployment's (%s, recorded in the "
		"database by the first server): copy the keys directory of the other servers here "
		"(keys_dir), or, after a deliberate change of keys, start once with "
		"--accept-new-keys",
		what, file, a, b);
}

/*
 * The newest audit checkpoint was signed by audit_pub (or there is none). It catches a replaced
 * audit key on a database from before the keys were recorded; later ones the record catches.
 */
static int
newest_checkpoint_ours(struct store *st, const uint8_t audit_pub[32])
{
	struct audit_ckpt_row last;
	struct audit_ckpt c;
	char mine[64] = "?";
	int r = st->ops->audit_ckpt_last(st, &last);

	if (r == -ENOENT)
		return 0;
	if (r != 0) {
		log_errno(-r, "cannot read the newest audit checkpoint");
		return r;
	}
	if (audit_ckpt_open(last.record, audit_pub, &c) == 0)
		return 0;
	key_fingerprint(audit_pub, mine, sizeof(mine));
	log_err("the newest audit checkpoint (entry %lld) is not signed by this server's audit "
		"checkpoint key (audit.key, %s): copy the deployment's keys directory here "
		"(keys_dir), or, after a deliberate change of keys, start once with "
		"--accept-new-keys",
		(long long)last.seq, mine);
	return -EKEYREJECTED;
}

int
service_pin_keys(struct store *st, const uint8_t ticket_pub[32], const uint8_t audit_pub[32],
		 int accept_new, int64_t now)
{
	uint8_t t[32], a[32];
	int r, bad = 0;

	if (st->ops->keys_pin == NULL)
		return 0;
	r = st->ops->keys_pin(st, ticket_pub, audit_pub, accept_new, now, t, a);
	if (r != 0) {
		log_errno(-r, "cannot read the deployment's keys from the database");
		return r;
	}
	if (memcmp(t, ticket_pub, 32) != 0) {
		report("ticket-signing", "ticket.key", ticket_pub, t);
		bad = 1;
	}
	if (memcmp(a, audit_pub, 32) != 0) {
		report("audit checkpoint", "audit.key", audit_pub, a);
		bad = 1;
	}
	/* Also when the record is new or matches: it may be younger than the checkpoints. */
	if (!accept_new && newest_checkpoint_ours(st, audit_pub) != 0)
		bad = 1;
	if (accept_new)
		log_warn("recorded this server's keys as the deployment's (--accept-new-keys): "
			 "devices enrolled under the old ticket key refuse its tickets until they "
			 "enroll again");
	return bad ? -EKEYREJECTED : 0;
}

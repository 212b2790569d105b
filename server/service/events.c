/*
 * The events the service itself reports to webhooks (issue 11 §3): each builder writes the
 * event's "data" object and hands it to the outbox inside the caller's write transaction, so
 * an event exists exactly when the change it reports committed. Payloads are documented in
 * schema/api.md ("Webhooks"). Strings are quoted by svc_json_str; the service has no JSON
 * library (only api/ does).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service_priv.h"

/* v quoted into buf, cut to fit (the buffers below keep every payload under its limit). */
#define Q(buf, v) (svc_json_str((buf), sizeof(buf), (v)), (buf))

static int
command_data(const struct command *c, char *dst, size_t cap)
{
	char id[80], dev[80], type[40], reason[STORE_TEXT_MAX + 400], by[80];
	int n = snprintf(dst, cap,
			 "{\"command_id\":%s,\"device_id\":%s,\"type\":%s,\"reason\":%s,"
			 "\"created_by\":%s}",
			 Q(id, c->id), Q(dev, c->device_id), Q(type, c->type), Q(reason, c->reason),
			 Q(by, c->created_by));

	return n < 0 || (size_t)n >= cap ? -EINVAL : 0;
}

int
svc_ev_command_queued(struct service *s, const struct command *c, size_t n)
{
	struct webhook_event *e;
	size_t k = 0;
	int r = 0;

	if (n == 0 || !svc_command_audited(c[0].type))
		return 0; /* policy commands: the policy change is the news */
	e = calloc(n, sizeof(*e));
	if (e == NULL)
		return -ENOMEM;
	for (size_t i = 0; r == 0 && i < n; i++, k++) {
		r = svc_new_id(e[k].id, "msg_");
		if (r == 0)
			r = command_data(&c[i], e[k].payload, sizeof(e[k].payload));
		str_copy(e[k].type, sizeof(e[k].type), "command.queued");
		e[k].at_ms = service_now_ms(s);
	}
	if (r == 0)
		r = s->st->ops->event_append(s->st, e, k);
	if (r == 0 && e[0].seq > 0)
		svc_hookd_kick(s);
	free(e);
	return r;
}

int
svc_ev_command_completed(struct service *s, const struct command *c)
{
	char data[WEBHOOK_PAYLOAD_MAX], id[80], dev[80], type[40], st[40], det[720], note[720];
	int r;

	if (strcmp(c->type, "policy") == 0)
		return 0;
	snprintf(data, sizeof(data),
		 "{\"command_id\":%s,\"device_id\":%s,\"type\":%s,\"status\":%s,"
		 "\"verified\":%s,\"detail\":%s,\"verify_note\":%s}",
		 Q(id, c->id), Q(dev, c->device_id), Q(type, c->type), Q(st, c->status),
		 c->verified ? "true" : "false", Q(det, c->result_detail), Q(note, c->verify_note));
	r = svc_event_emit(s, "command.completed", data);
	if (r == 0 && c->verified && strcmp(c->status, "completed") == 0 &&
	    (strcmp(c->type, "wipe") == 0 || strcmp(c->type, "retire") == 0)) {
		snprintf(data, sizeof(data), "{\"command_id\":%s,\"device_id\":%s,\"type\":%s}",
			 Q(id, c->id), Q(dev, c->device_id), Q(type, c->type));
		r = svc_event_emit(s, "wipe.verified", data);
	}
	return r;
}

int
svc_ev_device(struct service *s, const char *type, const struct device *d)
{
	char data[WEBHOOK_PAYLOAD_MAX], id[80], owner[STORE_OWNER_MAX * 2], st[40], at[40], rep[40];
	char des[40], model[STORE_NAME_MAX * 2]; /* all quoted together stay under 1,400 bytes */

	snprintf(data, sizeof(data),
		 "{\"device_id\":%s,\"owner\":%s,\"model\":%s,\"status\":%s,"
		 "\"attest_status\":%s,\"reported_state\":%s,\"desired_state\":%s}",
		 Q(id, d->id), Q(owner, d->owner), Q(model, d->model), Q(st, d->status),
		 Q(at, d->attest_status), Q(rep, d->reported_state), Q(des, d->desired_state));
	return svc_event_emit(s, type, data);
}

int
svc_ev_checkpoint(struct service *s, int64_t seq, const uint8_t head[32])
{
	char data[160], hex[65];

	hex_encode(hex, sizeof(hex), head, 32);
	snprintf(data, sizeof(data), "{\"seq\":%lld,\"head_hash\":\"%s\"}", (long long)seq, hex);
	return svc_event_emit(s, "audit.checkpoint", data);
}

/*
 * approval.requested / .approved / .rejected / .canceled / .overridden: the request as the
 * deciding transaction committed it (the two-person rule, approvals.c and approve.c).
 * Times are Unix seconds, as the other payloads' numbers are.
 */
int
svc_ev_approval(struct service *s, const char *type, const struct approval *a)
{
	char data[WEBHOOK_PAYLOAD_MAX], id[80], kind[40], ctype[40], dev[80], reason[400];
	char by[80], st[40], dby[80], note[400], cmd[80], bulk[80];

	snprintf(data, sizeof(data),
		 "{\"approval_id\":%s,\"kind\":%s,\"type\":%s,\"device_id\":%s,"
		 "\"device_count\":%lld,\"reason\":%s,\"requested_by\":%s,\"status\":%s,"
		 "\"created_at\":%lld,\"expires_at\":%lld,\"decided_by\":%s,\"note\":%s,"
		 "\"command_id\":%s,\"bulk_id\":%s}",
		 Q(id, a->id), Q(kind, a->kind), Q(ctype, a->type), Q(dev, a->device_id),
		 (long long)a->device_count, Q(reason, a->reason), Q(by, a->requested_by),
		 Q(st, a->status), (long long)a->created_at, (long long)a->expires_at,
		 Q(dby, a->decided_by), Q(note, a->note), Q(cmd, a->command_id),
		 Q(bulk, a->bulk_id));
	return svc_event_emit(s, type, data);
}

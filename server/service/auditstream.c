/*
 * What the audit stream to a SIEM is doing, for auditors and operators: the stream's stored
 * position and lease (shared by every server of a deployment) next to the audit head, and
 * what this server's own sender says (server/siem/).
 */
#include <errno.h>
#include <string.h>

#include "service_priv.h"
#include "siem/siem.h"

void
service_set_siem(struct service *s, struct siem *siem)
{
	s->siem = siem;
}

int
svc_audit_stream(struct service *s, const struct principal *p, struct audit_stream_view *out,
		 struct svc_error *err)
{
	struct siem_status st;
	struct audit_entry head;
	int r = svc_authorize(s, p, PERM_AUDIT_READ, err);

	if (r != 0)
		return r;
	memset(out, 0, sizeof(*out));
	siem_status(s->siem, &st);
	str_copy(out->target, sizeof(out->target), st.target);
	out->format = st.format;
	out->sending = st.sending;
	out->connected = st.connected;
	str_copy(out->problem, sizeof(out->problem), st.problem);
	r = s->st->ops->siem_get(s->st, st.stream, &out->row);
	if (r == -ENOENT) {
		memset(&out->row, 0, sizeof(out->row));
		r = 0;
	}
	if (r == 0) {
		r = s->st->ops->audit_last(s->st, &head);
		if (r == 0)
			out->head = head.seq;
		else if (r == -ENOENT)
			r = 0;
	}
	return r == 0 ? 0 : svc_store_fail(err, r, "audit stream");
}

/*
 * RFC 9457 problem details. Every failure of every route ends here, and this table is the only
 * place that chooses an HTTP status. Types are stable URNs; titles are fixed; details say what
 * to fix. Internal failures never show their cause (it is in the server log).
 */
#include <string.h>

#include "api_priv.h"

static const struct {
	int kind;
	int status;
	const char *slug;
	const char *title;
} problems[] = {
	{SVC_INVALID, 422, "invalid-request", "The request is not valid"},
	{SVC_UNAUTHORIZED, 401, "unauthorized", "Authentication is required"},
	{SVC_FORBIDDEN, 403, "forbidden", "Not allowed"},
	{SVC_NOT_FOUND, 404, "not-found", "Not found"},
	{SVC_CONFLICT, 409, "conflict", "The current state does not allow this"},
	{SVC_WIPE_PENDING, 409, "wipe-pending", "A wipe is pending"},
	{SVC_ENROLL_DENIED, 403, "enrollment-denied", "Enrollment is not allowed"},
	{SVC_IDEMPOTENCY, 422, "idempotency-key-reused", "Idempotency-Key reused"},
	{SVC_UNAVAILABLE, 503, "unavailable", "Temporarily unavailable"},
	{SVC_RATE_LIMITED, 429, "too-many-requests", "Too many refused requests"},
	{SVC_APPROVAL_SELF, 403, "approval-by-requester",
	 "The requester cannot approve their own request"},
	{SVC_APPROVAL_FACTOR, 403, "approval-needs-second-factor",
	 "Approving needs a second factor or an approve token"},
	{SVC_INTERNAL, 500, "internal", "Internal error"},
	{P_MALFORMED, 400, "malformed-json", "The body is not valid JSON"},
	{P_BAD_REQUEST, 400, "bad-request", "Bad request"},
	{P_NO_ROUTE, 404, "no-such-endpoint", "No such endpoint"},
	{P_METHOD, 405, "method-not-allowed", "Method not allowed"},
	{P_TOO_LARGE, 413, "body-too-large", "The request body is too large"},
	{P_MEDIA_TYPE, 415, "unsupported-media-type", "Send application/json"},
	{P_BUSY, 503, "unavailable", "Temporarily unavailable"},
};

void
reply_problem(struct api_response *rs, int kind, const char *detail)
{
	reply_problem_with(rs, kind, detail, NULL);
}

void
reply_problem_with(struct api_response *rs, int kind, const char *detail, json_t *extra)
{
	size_t i = 0;
	char type[96];
	json_t *j;

	while (i < ARRAY_SIZE(problems) - 1 && problems[i].kind != kind)
		i++;
	if (problems[i].kind != kind) /* not in the table: a bug of ours, shown as internal */
		for (i = 0; problems[i].kind != SVC_INTERNAL; i++)
			;
	if (problems[i].kind == SVC_INTERNAL)
		detail = "the server could not complete the request; the server log has details";
	snprintf(type, sizeof(type), "urn:cleave:problem:%s", problems[i].slug);
	j = json_pack("{s:s, s:s, s:i, s:s}", "type", type, "title", problems[i].title, "status",
		      problems[i].status, "detail", detail ? detail : "");
	if (extra != NULL && problems[i].kind != SVC_INTERNAL)
		json_object_update_missing(j, extra);
	json_decref(extra);
	reply_json(rs, problems[i].status, j);
	rs->content_type = "application/problem+json";
}

void
reply_svc_error(struct api_response *rs, const struct svc_error *err)
{
	reply_problem(rs, err->kind == SVC_OK ? SVC_INTERNAL : (int)err->kind, err->detail);
}

void
api_transport_error(int status, const char *detail, struct api_response *rs)
{
	int kind = status == 413 ? P_TOO_LARGE : status == 503 ? P_BUSY : P_BAD_REQUEST;

	rs->route = "transport";
	reply_problem(rs, kind, detail);
}

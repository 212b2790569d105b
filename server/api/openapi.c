/*
 * GET /api/v1/openapi.json: the OpenAPI 3.1 document of this API (schema/openapi.json), compiled
 * in by scripts/embed-text.sh so the answer never depends on files beside the binary. Public:
 * a script author's client generator fetches it before it has a token, and it says nothing the
 * README and schema/api.md do not.
 */
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

extern const char openapi_json[];
extern const size_t openapi_json_len;

void
h_openapi(struct call *c)
{
	char *body = malloc(openapi_json_len);

	if (body == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	memcpy(body, openapi_json, openapi_json_len);
	c->rs->status = 200;
	c->rs->body = body;
	c->rs->len = openapi_json_len;
	c->rs->content_type = "application/json";
}

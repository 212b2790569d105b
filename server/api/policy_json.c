/*
 * The policy document: decoding a PUT body strictly, filling defaults, checking that the limits
 * make sense together, and producing the canonical JSON that is stored and versioned (sorted
 * keys, compact), so that the same content always yields the same text and an unchanged PUT
 * does not bump the version. Policy replies also carry how many devices follow the policy and
 * how many applied its current version.
 */
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"

#define POLICY_DEFAULTS                                                                            \
	{                                                                                          \
		"aes-256-xts", 90, 72, 0, 0, 0, 10, ""                                             \
	}

/* "1", "1.2", "1.2.3": digit groups joined by single dots. */
static int
version_ok(const char *v)
{
	int digits = 0;

	for (; *v; v++) {
		if (*v >= '0' && *v <= '9')
			digits++;
		else if (*v == '.' && digits > 0)
			digits = 0;
		else
			return 0;
	}
	return digits > 0;
}

/* Decodes obj into c (defaults first). On failure fills c->rs via take_fields, returns -1. */
static int
policy_decode(struct call *call, json_t *obj, struct policy_content *c)
{
	json_t *enc = NULL, *off = NULL;
	struct policy_content d = POLICY_DEFAULTS;
	const struct field top[] = {
		{"encryption", F_OBJ, 0, &enc, 0, 0, 0, NULL},
		{"offline", F_OBJ, 0, &off, 0, 0, 0, NULL},
		{"max_failed_unlocks", F_INT, 0, &d.max_failed_unlocks, 0, 0, 1000, NULL},
		{"min_agent_version", F_STR, 0, d.min_agent_version, sizeof(d.min_agent_version), 0,
		 0, NULL},
	};
	const struct field encf[] = {
		{"cipher", F_STR, 0, d.cipher, sizeof(d.cipher), 0, 0, NULL},
		{"key_rotation_days", F_INT, 0, &d.key_rotation_days, 0, 0, 3650, NULL},
	};
	const struct field offf[] = {
		{"lock_after_hours", F_INT, 0, &d.lock_after_hours, 0, 0, 24 * 3650, NULL},
		{"wipe_after_days", F_INT, 0, &d.wipe_after_days, 0, 0, 3650, NULL},
		{"lock_after_seconds", F_INT, 0, &d.lock_after_seconds, 0, 0, 86400 * 3650, NULL},
		{"wipe_after_seconds", F_INT, 0, &d.wipe_after_seconds, 0, 0, 86400 * 3650, NULL},
	};

	if (take_fields(call, obj, top, ARRAY_SIZE(top), "") != 0)
		return -1;
	if (enc && take_fields(call, enc, encf, ARRAY_SIZE(encf), "encryption.") != 0)
		return -1;
	if (off && take_fields(call, off, offf, ARRAY_SIZE(offf), "offline.") != 0)
		return -1;
	if (strcmp(d.cipher, "aes-256-xts") != 0) {
		reply_problem(call->rs, SVC_INVALID,
			      "encryption.cipher: only aes-256-xts is supported");
		return -1;
	}
	if (policy_wipe_s(&d) > 0 && policy_lock_s(&d) > 0 &&
	    policy_wipe_s(&d) <= policy_lock_s(&d)) {
		reply_problem(call->rs, SVC_INVALID,
			      "offline: the wipe limit must come after the lock limit");
		return -1;
	}
	if (d.min_agent_version[0] != '\0' && !version_ok(d.min_agent_version)) {
		reply_problem(call->rs, SVC_INVALID, "min_agent_version must look like 1.2.3");
		return -1;
	}
	*c = d;
	return 0;
}

/* Canonical text of c; owned by the caller (free()). NULL when out of memory. */
static char *
policy_canonical(const struct policy_content *c)
{
	json_t *j = json_pack("{s:{s:s, s:I}, s:{s:I, s:I}, s:I, s:s}", "encryption", "cipher",
			      c->cipher, "key_rotation_days", (json_int_t)c->key_rotation_days,
			      "offline", "lock_after_hours", (json_int_t)c->lock_after_hours,
			      "wipe_after_days", (json_int_t)c->wipe_after_days,
			      "max_failed_unlocks", (json_int_t)c->max_failed_unlocks,
			      "min_agent_version", c->min_agent_version);
	json_t *off = j ? json_object_get(j, "offline") : NULL;
	char *s;

	/* Only when set, so that policies without them keep their canonical text. */
	if (off != NULL && c->lock_after_seconds > 0)
		json_object_set_new(off, "lock_after_seconds", json_integer(c->lock_after_seconds));
	if (off != NULL && c->wipe_after_seconds > 0)
		json_object_set_new(off, "wipe_after_seconds", json_integer(c->wipe_after_seconds));
	s = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;

	json_decref(j);
	return s;
}

json_t *
policy_reach_json(struct call *c, const struct policy *p)
{
	struct policy_reach reach;
	struct svc_error err = {0};
	json_t *j = policy_json(p);

	/* Counts are a view, not part of the policy: when they cannot be had the policy is
	 * still shown, with null, and the store has logged why. */
	if (j != NULL && svc_policy_reach(c->a->svc, &c->who, p, &reach, &err) == 0)
		json_object_set_new(j, "devices",
				    json_pack("{s:I, s:I}", "assigned", (json_int_t)reach.assigned,
					      "applied", (json_int_t)reach.applied));
	else if (j != NULL)
		json_object_set_new(j, "devices", json_null());
	return j;
}

int
api_policy_parse(const char *body, struct policy_content *c)
{
	struct api_response rs = {0};
	struct api_request rq = {0};
	struct call call = {.rq = &rq, .rs = &rs};
	json_t *j = json_loads(body, 0, NULL);
	int r = -1;

	if (j != NULL && json_is_object(j))
		r = policy_decode(&call, j, c);
	json_decref(j);
	free(rs.body);
	return r;
}

void
h_policy_put(struct call *c)
{
	struct policy_content pc;
	struct policy p;
	struct svc_error err = {0};
	int changed = 0;
	json_t *body = body_object(c);
	char *canon;

	if (body == NULL)
		return;
	if (policy_decode(c, body, &pc) != 0) {
		json_decref(body);
		return;
	}
	json_decref(body);
	canon = policy_canonical(&pc);
	if (canon == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	if (svc_policy_put(c->a->svc, &c->who, c->param[0], canon, &p, &changed, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, p.version == 1 && changed ? 201 : 200, policy_reach_json(c, &p));
	free(canon);
}

/*
 * Handlers of the admin REST API (/api/v1, bearer tokens): tokens, enrollment tokens, devices,
 * commands, policies, audit, plus /healthz and /metrics. Each decodes its input strictly, calls
 * one service function and encodes the result; authorization is the service's decision.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_priv.h"
#include "crypto.h"

/* A zeroed buffer for one page of records; replies 503 and returns NULL when out of memory. */
static void *
list_buffer(struct call *c, size_t size)
{
	void *p = calloc(STORE_LIST_MAX, size);

	if (p == NULL)
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
	return p;
}

/* Encodes one record of a page and gives its paging key. */
typedef json_t *(*item_json_fn)(struct call *c, const void *item, int64_t *key);

/* Replies 200 {"items": [...], "next_cursor": ...} for n records of size bytes at items. */
static void
reply_page(struct call *c, const void *items, size_t size, size_t n, size_t limit, item_json_fn fn)
{
	json_t *arr = json_array();
	int64_t key = 0;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, fn(c, (const char *)items + i * size, &key));
	reply_json(
		c->rs, 200,
		json_pack("{s:o, s:o}", "items", arr, "next_cursor", page_cursor(key, n, limit)));
}

static json_t *
token_item(struct call *c, const void *p, int64_t *key)
{
	const struct api_token *t = p;

	(void)c;
	*key = t->rowid;
	return token_json(t);
}

static json_t *
etoken_item(struct call *c, const void *p, int64_t *key)
{
	const struct enroll_token *t = p;

	*key = t->rowid;
	return etoken_json(c->a, t, NULL);
}

static json_t *
command_item(struct call *c, const void *p, int64_t *key)
{
	const struct command *cmd = p;

	(void)c;
	*key = cmd->rowid;
	return command_json(cmd);
}

void
h_healthz(struct call *c)
{
	int ok = service_store_ok(c->a->svc);

	/* A balancer takes a server whose database does not answer out of rotation (503). */
	reply_json(c->rs, ok ? 200 : 503,
		   json_pack("{s:s, s:s, s:s}", "status", ok ? "ok" : "unavailable", "store",
			     service_backend(c->a->svc), "database", ok ? "ok" : "unavailable"));
}

void
h_metrics(struct call *c)
{
	struct status_count dev[16], cmd[16];
	struct svc_stats st;
	size_t nd = 0, nc = 0, cap = 64 * 1024, n = 0;
	char *buf = malloc(cap);
	int r;

	if (buf == NULL) {
		reply_problem(c->rs, SVC_UNAVAILABLE, "out of memory");
		return;
	}
	svc_stats_get(c->a->svc, &st);
	r = snprintf(buf, cap,
		     "# HELP cleave_checkins_total Device check-ins served.\n"
		     "# TYPE cleave_checkins_total counter\ncleave_checkins_total %llu\n"
		     "# HELP cleave_device_auth_failures_total Rejected device requests.\n"
		     "# TYPE cleave_device_auth_failures_total counter\n"
		     "cleave_device_auth_failures_total %llu\n",
		     (unsigned long long)st.checkins, (unsigned long long)st.auth_failures);
	n = r > 0 ? (size_t)r : 0;
	if (st.write_hold_max_us >= 0 && n < cap)
		n += (size_t)snprintf(buf + n, cap - n,
				      "# HELP cleave_store_write_hold_max_seconds Longest hold of "
				      "the store's write "
				      "lock since start.\n"
				      "# TYPE cleave_store_write_hold_max_seconds gauge\n"
				      "cleave_store_write_hold_max_seconds %.6f\n"
				      "# HELP cleave_store_write_holds_over_50ms_total Write "
				      "transactions that held "
				      "the lock over 50 ms.\n"
				      "# TYPE cleave_store_write_holds_over_50ms_total counter\n"
				      "cleave_store_write_holds_over_50ms_total %lld\n",
				      (double)st.write_hold_max_us / 1e6,
				      (long long)st.write_holds_over_50ms);
	if (n < cap)
		n += (size_t)snprintf(buf + n, cap - n,
				      "# HELP cleave_tx_retries_total Transactions run again after "
				      "a deadlock or serialization failure.\n"
				      "# TYPE cleave_tx_retries_total counter\n"
				      "cleave_tx_retries_total %llu\n",
				      (unsigned long long)st.tx_retries);
	if (st.listen_up >= 0 && n < cap)
		n += (size_t)snprintf(
			buf + n, cap - n,
			"# HELP cleave_wake_listener_up The connection that hears "
			"the other servers' wake-ups is open.\n"
			"# TYPE cleave_wake_listener_up gauge\n"
			"cleave_wake_listener_up %d\n"
			"# HELP cleave_wake_notifications_total Wake-ups heard from "
			"the other servers.\n"
			"# TYPE cleave_wake_notifications_total counter\n"
			"cleave_wake_notifications_total %llu\n"
			"# HELP cleave_wake_sweep_woken_total Parked devices the sweep "
			"found a queued command for.\n"
			"# TYPE cleave_wake_sweep_woken_total counter\n"
			"cleave_wake_sweep_woken_total %llu\n",
			st.listen_up, (unsigned long long)st.wake_heard,
			(unsigned long long)st.sweep_woken);
	if (n < cap)
		n += (size_t)snprintf(
			buf + n, cap - n,
			"# HELP cleave_bulk_batches_total Batches of bulk commands "
			"by filter committed.\n"
			"# TYPE cleave_bulk_batches_total counter\n"
			"cleave_bulk_batches_total %llu\n"
			"# HELP cleave_bulk_batch_max_seconds Longest batch of a bulk "
			"command, its transaction's begin to commit.\n"
			"# TYPE cleave_bulk_batch_max_seconds gauge\n"
			"cleave_bulk_batch_max_seconds %.6f\n",
			(unsigned long long)st.bulk_batches, (double)st.bulk_batch_max_us / 1e6);
	if (svc_counts(c->a->svc, dev, &nd, cmd, &nc, 16) == 0) {
		n += (size_t)snprintf(buf + n, cap - n,
				      "# HELP cleave_devices Devices by status.\n"
				      "# TYPE cleave_devices gauge\n");
		for (size_t i = 0; i < nd && n < cap; i++)
			n += (size_t)snprintf(buf + n, cap - n,
					      "cleave_devices{status=\"%s\"} %lld\n", dev[i].status,
					      (long long)dev[i].n);
		n += (size_t)snprintf(buf + n, cap - n,
				      "# HELP cleave_commands Commands by state.\n"
				      "# TYPE cleave_commands gauge\n");
		for (size_t i = 0; i < nc && n < cap; i++)
			n += (size_t)snprintf(buf + n, cap - n,
					      "cleave_commands{state=\"%s\"} %lld\n", cmd[i].status,
					      (long long)cmd[i].n);
	}
	if (c->a->metrics != NULL && n < cap)
		n += c->a->metrics(c->a->metrics_ctx, buf + n, cap - n);
	c->rs->status = 200;
	c->rs->body = buf;
	c->rs->len = MIN(n, cap - 1);
	c->rs->content_type = "text/plain; version=0.0.4";
}

void
h_server(struct call *c)
{
	uint8_t pub[32];
	char *pem = NULL;
	json_t *j;

	svc_ticket_key(c->a->svc, pub);
	ed25519_pub_to_pem(pub, &pem);
	j = json_pack("{s:s, s:o, s:s?, s:s, s:s}", "name", "cleave-server", "ticket_key",
		      jb64(pub, 32), "ticket_key_pem", pem, "role", role_name(c->who.role),
		      "token_id", c->who.id);
	free(pem);
	pem = NULL;
	/* The key that signs audit checkpoints, for auditors to pin (README "For auditors"). */
	if (j != NULL && svc_audit_key(c->a->svc, pub) == 0 && ed25519_pub_to_pem(pub, &pem) == 0) {
		json_object_set_new(j, "audit_key", jb64(pub, 32));
		json_object_set_new(j, "audit_key_pem", json_string(pem));
	}
	free(pem);
	/* The two-person rule as this server applies it, and whether the caller may approve. */
	if (j != NULL) {
		int64_t size, ttl;
		int on;

		svc_approval_settings(c->a->svc, &on, &size, &ttl);
		json_object_set_new(j, "two_person_rule",
				    json_pack("{s:b, s:I, s:I}", "enabled", on, "bulk_size",
					      (json_int_t)size, "expiry_seconds", (json_int_t)ttl));
		json_object_set_new(j, "can_approve",
				    json_boolean(svc_can_approve(c->a->svc, &c->who)));
	}
	reply_json(c->rs, 200, j);
}

/* ---- tokens ---- */

/*
 * A token's separate permissions: absent or [], or ["approve"] (the two-person rule), which
 * only an admin token may carry. 0, or -1 after a 422.
 */
static int
token_permissions(struct call *c, json_t *perms, const char *role, int *approve)
{
	size_t i;
	json_t *v;

	*approve = 0;
	if (perms == NULL)
		return 0;
	if (!json_is_array(perms)) {
		reply_problem(c->rs, SVC_INVALID, "permissions must be a list, e.g. [\"approve\"]");
		return -1;
	}
	json_array_foreach(perms, i, v)
	{
		if (!json_is_string(v) || strcmp(json_string_value(v), "approve") != 0) {
			reply_problem(c->rs, SVC_INVALID, "permissions may hold only \"approve\"");
			return -1;
		}
		*approve = 1;
	}
	if (*approve && strcmp(role, "admin") != 0) {
		reply_problem(c->rs, SVC_INVALID, "only an admin token may carry \"approve\"");
		return -1;
	}
	return 0;
}

void
h_tokens_create(struct call *c)
{
	char name[STORE_NAME_MAX] = "", role[16] = "";
	int64_t expires_in = 0;
	const struct field f[] = {
		{"name", F_STR, 1, name, sizeof(name), 0, 0, NULL},
		{"role", F_STR, 1, role, sizeof(role), 0, 0, NULL},
		{"expires_in", F_INT, 0, &expires_in, 0, 60, 10LL * 366 * 86400, NULL},
	};
	json_t *perms = NULL;
	int approve = 0;
	struct api_token t;
	struct svc_error err = {0};
	char *secret = NULL;
	json_t *body = body_object(c), *j;

	if (body == NULL)
		return;
	perms = json_incref(json_object_get(body, "permissions"));
	json_object_del(body, "permissions");
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	if (name[0] == '\0') {
		reply_problem(c->rs, SVC_INVALID, "name must not be empty");
		goto out;
	}
	if (token_permissions(c, perms, role, &approve) != 0)
		goto out;
	if ((approve ? svc_token_create_approver(c->a->svc, &c->who, name, expires_in, &t, &secret,
						 &err)
		     : svc_token_create(c->a->svc, &c->who, name, role_parse(role), expires_in, &t,
					&secret, &err)) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	j = token_json(&t);
	json_object_set_new(j, "permissions", approve ? json_pack("[s]", "approve") : json_array());
	json_object_set_new(j, "token", json_string(secret));
	reply_json(c->rs, 201, j);
	snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/tokens/%s", t.id);
	secure_zero(secret, strlen(secret));
	free(secret);
out:
	json_decref(perms);
	json_decref(body);
}

void
h_tokens_list(struct call *c)
{
	struct api_token *items = list_buffer(c, sizeof(*items));
	struct svc_error err = {0};
	size_t limit, n = 0;
	int64_t after;
	if (items == NULL)
		return;
	if (page_params(c, &limit, &after) == 0) {
		if (svc_token_list(c->a->svc, &c->who, after, limit, items, &n, &err) != 0) {
			reply_svc_error(c->rs, &err);
		} else {
			reply_page(c, items, sizeof(*items), n, limit, token_item);
		}
	}
	free(items);
}

void
h_tokens_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_token_revoke(c->a->svc, &c->who, c->param[0], &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_empty(c->rs, 204);
}

/* ---- enrollment tokens ---- */

void
h_etokens_create(struct call *c)
{
	char owner[STORE_OWNER_MAX] = "";
	int64_t uses = 1, expires_in = 0;
	const struct field f[] = {
		{"owner", F_STR, 1, owner, sizeof(owner), 0, 0, NULL},
		{"uses", F_INT, 0, &uses, 0, 1, 100000, NULL},
		{"expires_in", F_INT, 0, &expires_in, 0, 60, 366 * 86400, NULL},
	};
	struct enroll_token t;
	struct svc_error err = {0};
	char *secret = NULL;
	json_t *body = body_object(c);

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	if (owner[0] == '\0' || strchr(owner, '@') == NULL || strchr(owner, ' ') != NULL) {
		reply_problem(c->rs, SVC_INVALID, "owner must be the employee's email address");
		goto out;
	}
	if (svc_etoken_create(c->a->svc, &c->who, owner, uses, expires_in, &t, &secret, &err) !=
	    0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	reply_json(c->rs, 201, etoken_json(c->a, &t, secret));
	snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/enrollment-tokens/%s", t.id);
	secure_zero(secret, strlen(secret));
	free(secret);
out:
	json_decref(body);
}

void
h_etokens_list(struct call *c)
{
	struct enroll_token *items = list_buffer(c, sizeof(*items));
	struct svc_error err = {0};
	size_t limit, n = 0;
	int64_t after;
	if (items == NULL)
		return;
	if (page_params(c, &limit, &after) == 0) {
		if (svc_etoken_list(c->a->svc, &c->who, after, limit, items, &n, &err) != 0) {
			reply_svc_error(c->rs, &err);
		} else {
			reply_page(c, items, sizeof(*items), n, limit, etoken_item);
		}
	}
	free(items);
}

void
h_etokens_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_etoken_revoke(c->a->svc, &c->who, c->param[0], &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_empty(c->rs, 204);
}

/* ---- devices ---- */

void
h_device_get(struct call *c)
{
	struct device d;
	struct svc_error err = {0};

	json_t *j;

	if (svc_device_get(c->a->svc, &c->who, c->param[0], &d, &err) != 0) {
		reply_svc_error(c->rs, &err);
		return;
	}
	/* One device's record also carries its labels (a list's rows do not). */
	j = device_json(c->a, &d);
	if (j != NULL)
		json_object_set_new(j, "labels", api_labels_of(c, d.id));
	reply_json(c->rs, 200, j);
}

void
h_device_delete(struct call *c)
{
	struct svc_error err = {0};

	if (svc_device_delete(c->a->svc, &c->who, c->param[0], &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_empty(c->rs, 204);
}

void
h_device_policy(struct call *c)
{
	char name[64] = "";
	int given = 0;
	const struct field f[] = {
		{"policy", F_STR_NULL, 1, name, sizeof(name), 0, 0, &given},
	};
	struct svc_error err = {0};
	struct device d;
	json_t *body = body_object(c);

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") == 0) {
		if (svc_policy_assign(c->a->svc, &c->who, c->param[0], given ? name : "", &d,
				      &err) != 0)
			reply_svc_error(c->rs, &err);
		else
			reply_json(c->rs, 200, device_json(c->a, &d));
	}
	json_decref(body);
}

/* ---- commands ---- */

void
h_commands_create(struct call *c)
{
	char type[16] = "", reason[STORE_TEXT_MAX] = "";
	int64_t expires_in = 0;
	const struct field f[] = {
		{"type", F_STR, 1, type, sizeof(type), 0, 0, NULL},
		{"reason", F_STR, 0, reason, 440, 0, 0, NULL},
		{"expires_in", F_INT, 0, &expires_in, 0, 60, 366 * 86400, NULL},
	};
	const char *key = c->rq->header(c->rq->header_ctx, "Idempotency-Key");
	struct command_request rq = {0};
	struct command cmd;
	struct approval pending;
	struct svc_error err = {0};
	uint8_t hash[32];
	int created = 0;
	json_t *body;

	if (key != NULL && (strlen(key) == 0 || strlen(key) >= STORE_NAME_MAX)) {
		reply_problem(c->rs, P_BAD_REQUEST, "Idempotency-Key must be 1-127 characters");
		return;
	}
	body = body_object(c);
	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") != 0)
		goto out;
	{
		const void *parts[] = {c->rq->path, c->rq->body ? c->rq->body : ""};
		size_t lens[] = {strlen(c->rq->path) + 1, c->rq->body_len};

		crypto_sha256_parts(parts, lens, 2, hash);
	}
	rq.device_id = c->param[0];
	rq.type = type;
	rq.reason = reason;
	rq.expires_in_s = expires_in;
	rq.idempotency_key = key;
	rq.request_hash = hash;
	rq.pending = &pending;
	if (svc_command_create(c->a->svc, &c->who, &rq, &cmd, &created, &err) != 0) {
		reply_svc_error(c->rs, &err);
		goto out;
	}
	if (created == SVC_CMD_PENDING) {
		pending_reply(c, &pending, NULL);
		goto out;
	}
	reply_json(c->rs, 202, command_json(&cmd));
	snprintf(c->rs->location, sizeof(c->rs->location), "/api/v1/commands/%s", cmd.id);
out:
	json_decref(body);
}

static void
command_list(struct call *c, const char *device_id)
{
	struct command *items = list_buffer(c, sizeof(*items));
	struct command_filter f = {.device_id = device_id};
	struct svc_error err = {0};
	struct device d;
	char status[16];
	size_t n = 0;
	int rs_;
	if (items == NULL)
		return;
	rs_ = query_get(c->rq->query, "status", status, sizeof(status));
	if (rs_ < 0) {
		reply_problem(c->rs, P_BAD_REQUEST, "status is malformed");
	} else if (device_id && svc_device_get(c->a->svc, &c->who, device_id, &d, &err) != 0) {
		reply_svc_error(c->rs, &err);
	} else if (page_params(c, &f.limit, &f.after) == 0) {
		f.status = rs_ == 1 ? status : NULL;
		if (svc_command_list(c->a->svc, &c->who, &f, items, &n, &err) != 0) {
			reply_svc_error(c->rs, &err);
		} else {
			reply_page(c, items, sizeof(*items), n, f.limit, command_item);
		}
	}
	free(items);
}

void
h_commands_of_device(struct call *c)
{
	command_list(c, c->param[0]);
}

void
h_command_get(struct call *c)
{
	struct command cmd;
	struct svc_error err = {0};

	if (svc_command_get(c->a->svc, &c->who, c->param[0], &cmd, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, command_json(&cmd));
}

void
h_command_cancel(struct call *c)
{
	struct command cmd;
	struct svc_error err = {0};

	if (svc_command_cancel(c->a->svc, &c->who, c->param[0], &cmd, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, command_json(&cmd));
}

/* ---- policies ---- */

void
h_policies_list(struct call *c)
{
	struct policy *items = list_buffer(c, sizeof(*items));
	struct svc_error err = {0};
	size_t n = 0;
	json_t *arr;

	if (items == NULL)
		return;
	if (svc_policy_list(c->a->svc, &c->who, items, STORE_LIST_MAX, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
	} else {
		arr = json_array();
		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, policy_reach_json(c, &items[i]));
		reply_json(c->rs, 200, json_pack("{s:o, s:n}", "items", arr, "next_cursor"));
	}
	free(items);
}

void
h_policy_get(struct call *c)
{
	struct policy p;
	struct svc_error err = {0};

	if (svc_policy_get(c->a->svc, &c->who, c->param[0], &p, &err) != 0)
		reply_svc_error(c->rs, &err);
	else
		reply_json(c->rs, 200, policy_reach_json(c, &p));
}

void
h_default_policy_get(struct call *c)
{
	struct policy *items = list_buffer(c, sizeof(*items));
	struct svc_error err = {0};
	size_t n = 0, i;

	if (items == NULL)
		return;
	if (svc_policy_list(c->a->svc, &c->who, items, STORE_LIST_MAX, &n, &err) != 0) {
		reply_svc_error(c->rs, &err);
	} else {
		for (i = 0; i < n && !items[i].is_default; i++)
			;
		if (i == n)
			reply_problem(c->rs, SVC_NOT_FOUND, "no policy exists yet; PUT one first");
		else
			reply_json(c->rs, 200, policy_reach_json(c, &items[i]));
	}
	free(items);
}

void
h_default_policy_put(struct call *c)
{
	char name[64] = "";
	const struct field f[] = {{"name", F_STR, 1, name, sizeof(name), 0, 0, NULL}};
	struct svc_error err = {0};
	struct policy p;
	json_t *body = body_object(c);

	if (body == NULL)
		return;
	if (take_fields(c, body, f, ARRAY_SIZE(f), "") == 0) {
		if (svc_policy_set_default(c->a->svc, &c->who, name, &p, &err) != 0)
			reply_svc_error(c->rs, &err);
		else
			reply_json(c->rs, 200, policy_reach_json(c, &p));
	}
	json_decref(body);
}

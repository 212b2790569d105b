/*
 * Records for the store conformance suites (test_store.c, test_store_cmd.c): each make_* fills
 * one with a test's values, each insert_* puts one in the store and fails the test when the
 * store refuses.
 */
#ifndef CLEAVE_TEST_STORE_RECORDS_H
#define CLEAVE_TEST_STORE_RECORDS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "store/store.h"

/* ---- record builders ---- */

static inline void
make_token(struct api_token *t, int i)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "tok_%d", i);
	snprintf(t->name, sizeof(t->name), "token %d", i);
	snprintf(t->role, sizeof(t->role), "%s", i % 2 ? "auditor" : "admin");
	memset(t->hash, 0xa5, sizeof(t->hash));
	t->hash[0] = (uint8_t)i;
	t->hash[1] = (uint8_t)(i >> 8);
	snprintf(t->created_by, sizeof(t->created_by), "system");
	t->created_at = 1000 + i;
	t->expires_at = i % 3 ? 0 : 5000 + i;
}

static inline void
make_etoken(struct enroll_token *t, const char *id, int64_t uses_max)
{
	memset(t, 0, sizeof(*t));
	snprintf(t->id, sizeof(t->id), "%s", id);
	snprintf(t->owner, sizeof(t->owner), "alice@example.com");
	memset(t->hash, 0x3c, sizeof(t->hash));
	t->hash[0] = (uint8_t)id[strlen(id) - 1];
	t->uses_max = uses_max;
	snprintf(t->created_by, sizeof(t->created_by), "tok_admin");
	t->created_at = 100;
	t->expires_at = 900;
}

static inline void
make_policy(struct policy *p, const char *name, int64_t version)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->version = version;
	snprintf(p->body, sizeof(p->body), "{\"name\":\"%s\",\"v\":%lld}", name,
		 (long long)version);
	p->updated_at = 2000 + version;
}

static inline void
make_device(struct device *d, const char *id, const char *owner, const char *status)
{
	size_t n = strlen(id);

	memset(d, 0, sizeof(*d));
	snprintf(d->id, sizeof(d->id), "%s", id);
	snprintf(d->owner, sizeof(d->owner), "%s", owner);
	snprintf(d->status, sizeof(d->status), "%s", status);
	/* device_key is unique: derive it from the id. */
	memcpy(d->device_key, id, n < sizeof(d->device_key) ? n : sizeof(d->device_key));
	memset(d->hv_key, 0x11, sizeof(d->hv_key));
	memset(d->measurement, 0x22, sizeof(d->measurement));
	snprintf(d->enrollment_token_id, sizeof(d->enrollment_token_id), "etk_1");
	snprintf(d->model, sizeof(d->model), "ThinkPad X1");
	snprintf(d->os, sizeof(d->os), "Linux 6.8");
	snprintf(d->agent_version, sizeof(d->agent_version), "1.0.0");
	d->key_epoch = 1;
	d->enrolled_at = 3000;
	d->last_seen_at = 3000;
}

static inline void
make_command(struct command *c, const char *id, const char *device, int64_t counter,
	     const char *status, int64_t expires_at)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->id, sizeof(c->id), "%s", id);
	snprintf(c->device_id, sizeof(c->device_id), "%s", device);
	snprintf(c->type, sizeof(c->type), "lock");
	snprintf(c->status, sizeof(c->status), "%s", status);
	snprintf(c->reason, sizeof(c->reason), "reason for %s", id);
	c->counter = counter;
	for (size_t i = 0; i < sizeof(c->ticket); i++)
		c->ticket[i] = (uint8_t)(i + (size_t)counter);
	snprintf(c->created_by, sizeof(c->created_by), "tok_admin");
	c->created_at = 4000;
	c->expires_at = expires_at;
}

static inline void
make_audit(struct audit_entry *e, int64_t seq, const char *actor, const char *action,
	   const char *target, int64_t at_ms)
{
	memset(e, 0, sizeof(*e));
	e->seq = seq;
	e->at_ms = at_ms;
	snprintf(e->actor, sizeof(e->actor), "%s", actor);
	snprintf(e->action, sizeof(e->action), "%s", action);
	snprintf(e->target, sizeof(e->target), "%s", target);
	snprintf(e->outcome, sizeof(e->outcome), "ok");
	snprintf(e->detail, sizeof(e->detail), "detail %lld", (long long)seq);
	memset(e->prev_hash, (int)seq - 1, sizeof(e->prev_hash));
	memset(e->hash, (int)seq, sizeof(e->hash));
}

static inline void
insert_device(struct store *st, const char *id, const char *owner, const char *status)
{
	struct device d;

	make_device(&d, id, owner, status);
	assert_int_equal(st->ops->device_insert(st, &d), 0);
}

static inline void
insert_command(struct store *st, const char *id, const char *device, int64_t counter,
	       const char *status, int64_t expires_at)
{
	struct command c;

	make_command(&c, id, device, counter, status, expires_at);
	assert_int_equal(st->ops->command_insert(st, &c), 0);
}

static inline int64_t
count_of(const struct status_count *c, size_t n, const char *status)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(c[i].status, status) == 0)
			return c[i].n;
	return 0;
}

#endif

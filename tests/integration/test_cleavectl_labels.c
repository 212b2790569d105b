/*
 * cleavectl's labels and groups against the real cleave-server: a device's labels (get, set,
 * remove, replace) shown as text whatever they hold; the device list by --label and --group;
 * groups (create, list, get, update, devices, delete) with a bad query refused at its position;
 * one label change on many devices with a result per device (labels bulk by ids, filter and
 * group); a bulk command by group. Each error with its exit code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"
#include "testlib.h"
#include "util.h"

/* A device's labels: set, remove, replace, and what the other commands show of them. */
static void
t_labels(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	struct device_sim a, b;
	char secret[128];

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-labels");
	CHECK(admin_enroll(e->admin, e->anon, &a, "alice@example.com") == 0, "enroll a");
	CHECK(admin_enroll(e->admin, e->anon, &b, "bob@example.com") == 0, "enroll b");
	RUN(0, e, "labels", "get", a.id);
	CHECK(strstr(e->out, "(no labels)") != NULL, "%s", e->out);
	RUN(0, e, "labels", "set", a.id, "dept=sales", "vip", "note=<b>bold</b> \"q\"");
	CHECK(strstr(e->out, "KEY") && strstr(e->out, "dept") && strstr(e->out, "sales") &&
		      strstr(e->out, "<b>bold</b> \"q\""),
	      "%s", e->out);
	RUN(0, e, "--json", "labels", "get", a.id);
	{
		json_t *j = ctl_json(e), *l = json_object_get(j, "labels");

		CHECK(json_object_size(l) == 3 &&
			      strcmp(json_string_value(json_object_get(l, "vip")), "") == 0,
		      "%s", e->out);
		json_decref(j);
	}
	RUN(0, e, "labels", "remove", a.id, "note");
	CHECK(strstr(e->out, "note") == NULL && strstr(e->out, "vip"), "%s", e->out);
	RUN(0, e, "devices", "get", a.id);
	CHECK(strstr(e->out, "labels.dept: sales") != NULL, "%s", e->out);
	/* A bad key is the server's 422 naming it: exit 1; an unknown device exit 2. */
	RUN(1, e, "labels", "set", a.id, "-bad=x");
	CHECK(strstr(e->err, "-bad") != NULL, "%s", e->err);
	RUN(2, e, "labels", "set", "dev_nosuch", "dept=sales");
	RUN(1, e, "labels", "set", a.id);
	RUN(0, e, "labels", "replace", b.id, "dept=ops", "os=android");
	RUN(0, e, "devices", "list", "--label", "dept=sales OR os=android");
	CHECK(strstr(e->out, a.id) && strstr(e->out, b.id), "%s", e->out);
	RUN(0, e, "devices", "list", "--label=dept=ops AND NOT vip");
	CHECK(!strstr(e->out, a.id) && strstr(e->out, b.id), "%s", e->out);
	RUN(0, e, "devices", "count", "--label", "vip");
	CHECK(strcmp(e->out, "1\n") == 0, "%s", e->out);
	/* A query that does not parse: 400 with its position, exit 1. */
	RUN(1, e, "devices", "list", "--label", "dept=sales AND");
	CHECK(strstr(e->err, "position 15") != NULL, "%s", e->err);
	RUN(0, e, "labels", "replace", b.id);
	CHECK(strstr(e->out, "(no labels)") != NULL, "%s", e->out);
	/* Reading is every role's; writing the admin's only (403, exit 4). */
	CHECK(admin_token(e->admin, "helpdesk", secret, sizeof(secret)) == 0, "token");
	snprintf(e->token_env, sizeof(e->token_env), "CLEAVE_TOKEN=%s", secret);
	RUN(0, e, "labels", "get", a.id);
	RUN(4, e, "labels", "set", a.id, "x");
	e->token_env[0] = '\0';
	dev_fini(&a);
	dev_fini(&b);
	ctl_down(e);
	free(e);
}

/* Groups: create (a bad query at its position), list, get, update, devices, delete. */
static void
groups(struct ctl_env *e, const struct device_sim *a, const struct device_sim *b)
{
	RUN(1, e, "groups", "create", "broken", "--query", "dept=sales AND (vip");
	CHECK(strstr(e->err, "position") != NULL, "%s", e->err);
	RUN(1, e, "groups", "create", "nameless");
	RUN(1, e, "groups", "create", "ghost", "--query", "vip", "--policy", "nosuch");
	RUN(0, e, "groups", "create", "sales", "--query", "dept = sales and not lost",
	    "--description", "Sales <i>team</i>", "--priority", "5");
	CHECK(strstr(e->out, "query: dept=sales AND NOT lost") &&
		      strstr(e->out, "member_count: 1") && strstr(e->out, "Sales <i>team</i>"),
	      "%s", e->out);
	RUN(3, e, "groups", "create", "sales", "--query", "vip");
	RUN(0, e, "groups", "create", "everyone", "--query", "dept");
	RUN(0, e, "groups", "list");
	CHECK(strstr(e->out, "NAME") && strstr(e->out, "everyone") && strstr(e->out, "sales"), "%s",
	      e->out);
	RUN(0, e, "groups", "list", "--limit", "1");
	CHECK(strstr(e->out, "everyone") && !strstr(e->out, "sales") &&
		      strstr(e->err, "more: --after everyone"),
	      "out %s err %s", e->out, e->err);
	RUN(0, e, "groups", "list", "--after", "everyone");
	CHECK(!strstr(e->out, "everyone") && strstr(e->out, "sales"), "%s", e->out);
	RUN(1, e, "groups", "list", "--limit", "0");
	RUN(0, e, "--json", "groups", "get", "everyone");
	{
		json_t *j = ctl_json(e);

		CHECK(json_integer_value(json_object_get(j, "member_count")) == 2, "%s", e->out);
		json_decref(j);
	}
	RUN(2, e, "groups", "get", "nosuch");
	RUN(0, e, "groups", "devices", "sales");
	CHECK(strstr(e->out, a->id) && !strstr(e->out, b->id), "%s", e->out);
	RUN(0, e, "devices", "list", "--group", "everyone", "--label", "dept=ops");
	CHECK(!strstr(e->out, a->id) && strstr(e->out, b->id), "%s", e->out);
	RUN(2, e, "devices", "list", "--group", "nosuch");
	RUN(2, e, "groups", "devices", "nosuch");
	RUN(0, e, "groups", "update", "sales", "--query", "dept=ops");
	CHECK(strstr(e->out, "version: 2") && strstr(e->out, "priority: 100"), "%s", e->out);
	RUN(0, e, "groups", "devices", "sales");
	CHECK(!strstr(e->out, a->id) && strstr(e->out, b->id), "%s", e->out);
	RUN(1, e, "groups", "update", "sales", "--query", "NOT");
	RUN(2, e, "groups", "update", "nosuch", "--query", "vip");
}

/* labels bulk by ids (an unknown one refused), by filter, by group; a bulk command by group. */
static void
bulks(struct ctl_env *e, const struct device_sim *a, const struct device_sim *b)
{
	char id[64], state[32] = "", in[128];
	int rc;

	RUN(0, e, "labels", "bulk", "region=eu", "--device", a->id, "--device", "dev_nosuch");
	CHECK(strstr(e->out, "DEVICE") && strstr(e->out, "changed") && strstr(e->out, "refused") &&
		      strstr(e->out, "changed 1, unchanged 0, refused 1"),
	      "%s", e->out);
	RUN(0, e, "labels", "bulk", "region=eu", "--device", a->id);
	CHECK(strstr(e->out, "changed 0, unchanged 1, refused 0"), "%s", e->out);
	RUN(0, e, "labels", "bulk", "region=us", "--label", "dept");
	CHECK(strstr(e->out, "changed 2, unchanged 0, refused 0"), "%s", e->out);
	RUN(0, e, "--json", "labels", "bulk", "--remove", "region", "--group", "sales");
	{
		json_t *j = ctl_json(e);
		json_t *r0 = json_array_get(json_object_get(j, "results"), 0);

		CHECK(json_integer_value(json_object_get(j, "changed")) == 1 &&
			      strcmp(json_string_value(json_object_get(r0, "device_id")), b->id) ==
				      0,
		      "%s", e->out);
		json_decref(j);
	}
	/* Ids from stdin, one a line (blank lines skipped); a file that cannot be read. */
	snprintf(in, sizeof(in), "%s\n\n%s\n", a->id, b->id);
	rc = ctl_in(e, in, "labels", "bulk", "batch=1", "--devices-from", "-", (const char *)NULL);
	CHECK(rc == 0 && strstr(e->out, "changed 2, unchanged 0, refused 0"), "exit %d: %s%s", rc,
	      e->out, e->err);
	RUN(1, e, "labels", "bulk", "batch=1", "--devices-from", "/nonexistent/ids");
	RUN(1, e, "labels", "bulk", "region=eu");
	RUN(1, e, "labels", "bulk", "--device", a->id);
	RUN(1, e, "labels", "bulk", "x", "--device", a->id, "--group", "sales");
	RUN(2, e, "labels", "bulk", "x", "--group", "nosuch");
	RUN(1, e, "labels", "bulk", "x", "--label", "(vip");
	/* A bulk command by group: the count confirmed, then queued on the group's devices. */
	RUN(3, e, "bulk", "create", "--type", "refresh", "--group", "everyone", "--expected-count",
	    "5");
	RUN(0, e, "--json", "bulk", "create", "--type", "refresh", "--group", "everyone",
	    "--expected-count", "2");
	CHECK(ctl_out_str(e, "id", id, sizeof(id)) == 0, "%s", e->out);
	CHECK(strstr(e->out, "\"group\":\"everyone\"") || strstr(e->out, "\"group\": \"everyone\""),
	      "%s", e->out);
	for (int i = 0; i < 100 && strcmp(state, "done") != 0; i++) {
		RUN(0, e, "--json", "bulk", "get", id);
		ctl_out_str(e, "state", state, sizeof(state));
		usleep(100000);
	}
	CHECK(strcmp(state, "done") == 0, "bulk state %s", state);
	RUN(0, e, "bulk", "get", id);
	CHECK(strstr(e->out, "queued: 2") != NULL, "%s", e->out);
	RUN(0, e, "groups", "delete", "everyone");
	CHECK(strstr(e->out, "deleted group everyone") != NULL, "%s", e->out);
	RUN(2, e, "groups", "delete", "everyone");
	RUN(0, e, "labels", "get", a->id);
	CHECK(strstr(e->out, "dept") != NULL, "labels stay with the group gone: %s", e->out);
}

static void
t_groups_bulk(void)
{
	struct ctl_env *e = calloc(1, sizeof(*e));
	struct device_sim a, b;

	CHECK(e != NULL, "oom");
	CTL_UP(e, "ctl-groups");
	CHECK(admin_enroll(e->admin, e->anon, &a, "alice@example.com") == 0, "enroll a");
	CHECK(admin_enroll(e->admin, e->anon, &b, "bob@example.com") == 0, "enroll b");
	RUN(0, e, "labels", "set", a.id, "dept=sales");
	RUN(0, e, "labels", "set", b.id, "dept=ops");
	groups(e, &a, &b);
	if (!t_failed_now)
		bulks(e, &a, &b);
	/* The command table gives completion its words. */
	RUN(0, e, "__complete", "gro");
	CHECK(strstr(e->out, "groups\n") && strstr(e->out, "labels\n"), "%s", e->out);
	RUN(0, e, "__complete", "labels", "");
	CHECK(strstr(e->out, "bulk\n") && strstr(e->out, "replace\n"), "%s", e->out);
	RUN(0, e, "__complete", "devices", "list", "--");
	CHECK(strstr(e->out, "--label\n") && strstr(e->out, "--group\n"), "%s", e->out);
	dev_fini(&a);
	dev_fini(&b);
	ctl_down(e);
	free(e);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"labels", t_labels},
		{"groups_bulk", t_groups_bulk},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

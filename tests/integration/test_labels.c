/*
 * Labels and groups (issue 11 section 5) against the real cleave-server: labels set with PUT
 * and PATCH on a device, read by helpdesk, refused to helpdesk for writing, bad keys and values
 * refused, a hostile value (markup, quotes, SQL) kept exactly and found by the label filter
 * only as itself; one label on many devices with a result per device, idempotent when sent
 * again; the device list's label= filter (and a bad query's 400 naming the position); groups
 * created, listed with their member count, their members paged, changed and deleted, a bad
 * query's 400 with its position, a taken name's 409; and a bulk lock by "group", with an
 * Idempotency-Key, that locks each member once. test_labels_pg.c runs it on PostgreSQL.
 */
#define TEST_BULK_NO_MAIN
#include "test_bulk.c"

#define HOSTILE_JSON "<b>x</b>' OR '1'='1; DROP TABLE devices; --\\\""
#define HOSTILE      "<b>x</b>' OR '1'='1; DROP TABLE devices; --\""

/* method path body as c; the status, the JSON answer into *out when given. */
static long
req(struct client *c, const char *method, const char *path, const char *body, json_t **out)
{
	struct resp r;
	long st;

	if (out != NULL)
		*out = NULL;
	if (client_req(c, method, path, body, NULL, &r) != 0)
		return -1;
	st = r.status;
	if (out != NULL)
		*out = resp_json(&r);
	resp_free(&r);
	return st;
}

static const char *
detail(json_t *j)
{
	return json_string_value(json_object_get(j, "detail")) ?: "";
}

/* The number of items of GET path (a device list page), or -1. */
static long long
items(struct client *c, const char *path)
{
	json_t *j = NULL;
	long long n = req(c, "GET", path, NULL, &j) == 200
			      ? (long long)json_array_size(json_object_get(j, "items"))
			      : -1;

	json_decref(j);
	return n;
}

static void
test_labels(void)
{
	struct env e;
	struct device_sim d;
	struct client *dc, *hd;
	char path[160], body[1024], hdtok[128];
	json_t *j = NULL, *l;

	CHECK(env_up(&e, "labels") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, TEAM) == 0, "enroll");
	CHECK(import(&e, d.id, 20) == 0, "import 20 devices");
	CHECK(admin_token(e.admin, "helpdesk", hdtok, sizeof(hdtok)) == 0, "helpdesk token");
	hd = client_new(&e.s, hdtok);
	snprintf(path, sizeof(path), "/api/v1/devices/%s/labels", d.id);

	/* PUT replaces all; the hostile value comes back byte for byte. */
	CHECK(req(e.admin, "PUT", path,
		  "{\"labels\":{\"dept\":\"sales\",\"vip\":\"\",\"note\":\"" HOSTILE_JSON "\"}}",
		  NULL) == 200,
	      "PUT labels");
	CHECK(req(hd, "GET", path, NULL, &j) == 200, "helpdesk reads labels");
	l = json_object_get(j, "labels");
	CHECK(json_object_size(l) == 3, "three labels");
	CHECK(strcmp(jstr(l, "note"), HOSTILE) == 0, "hostile value kept: %s", jstr(l, "note"));
	CHECK(strcmp(jstr(l, "vip"), "") == 0, "a plain name");
	json_decref(j);
	CHECK(req(hd, "PUT", path, "{\"labels\":{}}", NULL) == 403, "helpdesk may not write");
	snprintf(body, sizeof(body), "/api/v1/devices/%s", d.id);
	CHECK(req(hd, "GET", body, NULL, &j) == 200 &&
		      strcmp(jstr(json_object_get(j, "labels"), "note"), HOSTILE) == 0,
	      "the device's record carries its labels");
	json_decref(j);
	CHECK(req(e.admin, "PATCH", path, "{\"set\":{\"os\":\"android\"},\"remove\":[\"vip\"]}",
		  &j) == 200,
	      "PATCH");
	l = json_object_get(j, "labels");
	CHECK(json_object_size(l) == 3 && strcmp(jstr(l, "os"), "android") == 0 &&
		      json_object_get(l, "vip") == NULL,
	      "PATCH set one, removed one");
	json_decref(j);
	CHECK(req(e.admin, "PATCH", path, "{\"set\":{\"bad key\":\"x\"}}", &j) == 422 &&
		      strstr(detail(j), "bad key") != NULL,
	      "a bad key is refused naming it");
	json_decref(j);
	CHECK(req(e.admin, "PATCH", path, "{\"set\":{\"k\":\"a\\u0001b\"}}", NULL) == 422,
	      "a control character is refused");
	CHECK(req(e.admin, "PUT", "/api/v1/devices/dev_none/labels", "{\"labels\":{}}", NULL) ==
		      404,
	      "unknown device");

	/* One label on many devices; sent again it changes nothing. */
	snprintf(body, sizeof(body),
		 "{\"set\":{\"dept\":\"sales\"},\"device_ids\":[\"dev_bulk00001\","
		 "\"dev_bulk00002\",\"dev_bulk00003\",\"%s\",\"dev_none\"]}",
		 d.id);
	CHECK(req(e.admin, "POST", "/api/v1/labels/bulk", body, &j) == 200, "bulk labels");
	CHECK(jint(j, "changed") == 3 && jint(j, "unchanged") == 1 && jint(j, "refused") == 1,
	      "3 changed, 1 had it, 1 unknown");
	json_decref(j);
	CHECK(req(e.admin, "POST", "/api/v1/labels/bulk", body, &j) == 200 &&
		      jint(j, "changed") == 0 && jint(j, "unchanged") == 4,
	      "sent again: nothing changes");
	json_decref(j);
	CHECK(req(hd, "POST", "/api/v1/labels/bulk", body, NULL) == 403, "helpdesk bulk");
	CHECK(req(e.admin, "POST", "/api/v1/labels/bulk",
		  "{\"set\":{\"fleet\":\"b\"},\"filter\":{\"label\":\"dept=sales\"}}", &j) == 200 &&
		      jint(j, "changed") == 4,
	      "bulk by filter");
	json_decref(j);

	/* The list's label filter; the hostile value finds itself only. */
	CHECK(items(e.admin, "/api/v1/devices?label=dept%3Dsales") == 4, "label=dept=sales");
	CHECK(items(hd, "/api/v1/devices?label=fleet%3Db%20AND%20NOT%20os") == 3, "and not");
	CHECK(items(e.admin, "/api/v1/devices?label=note%3D%22%3Cb%3Ex%3C%2Fb%3E'%20OR%20'1'%3D'"
			     "1%3B%20DROP%20TABLE%20devices%3B%20--%5C%22%22") == 1,
	      "the hostile value as a filter");
	CHECK(items(e.admin, "/api/v1/devices?label=note%3D%22'%20OR%20'1'%3D'1%22") == 0,
	      "an injection finds nothing");
	CHECK(req(e.admin, "GET", "/api/v1/devices?label=dept%3D", NULL, &j) == 400 &&
		      strstr(detail(j), "position 6") != NULL,
	      "bad label query: %s", detail(j));
	json_decref(j);
	CHECK(db_int(&e, "SELECT count(*) FROM audit WHERE action = 'device.labels'") >= 7,
	      "label changes audited");
	client_free(hd);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

/* The effective policy of device id as GET /api/v1/devices/{id} says; "" when none. */
static void
effective(struct env *e, const char *id, char *out, size_t cap)
{
	char path[128];
	json_t *j = NULL;

	snprintf(path, sizeof(path), "/api/v1/devices/%s", id);
	out[0] = '\0';
	if (req(e->admin, "GET", path, NULL, &j) == 200)
		str_copy(out, cap,
			 json_string_value(
				 json_object_get(json_object_get(j, "policy"), "effective"))
				 ?: "");
	json_decref(j);
}

/*
 * Group "sales" (29 devices, not the lost two) gives policy strict; standard is the default.
 * Checks the precedence (own assignment, first group, default) in the device, the policy
 * filter and the compliance count, and that a label change queues the new policy at once.
 */
static void
policies_and_group(struct env *e, struct device_sim *d)
{
	char pol[64], path[128], sql[256];
	json_t *j = NULL;
	int ok = 1;

	ok &= req(e->admin, "PUT", "/api/v1/policies/standard",
		  "{\"offline\":{\"lock_after_hours\":72}}", NULL) == 201;
	ok &= req(e->admin, "PUT", "/api/v1/default-policy", "{\"name\":\"standard\"}", NULL) ==
	      200;
	ok &= req(e->admin, "PUT", "/api/v1/policies/strict",
		  "{\"offline\":{\"lock_after_hours\":8}}", NULL) == 201;
	ok &= req(e->admin, "POST", "/api/v1/groups",
		  "{\"name\":\"any-sales\",\"query\":\"dept=sales\",\"policy\":\"standard\","
		  "\"priority\":50}",
		  NULL) == 201;
	ok &= req(e->admin, "PUT", "/api/v1/groups/sales",
		  "{\"query\":\"dept=sales AND NOT lost\",\"policy\":\"strict\",\"priority\":10}",
		  &j) == 200 &&
	      strcmp(jstr(j, "policy"), "strict") == 0;
	json_decref(j);
	CHECK(ok, "policies and the group's policy");
	effective(e, "dev_bulk00005", pol, sizeof(pol));
	CHECK(strcmp(pol, "strict") == 0, "a member follows the group's policy: %s", pol);
	effective(e, "dev_bulk00001", pol, sizeof(pol));
	CHECK(strcmp(pol, "standard") == 0, "a lost device follows the next group's: %s", pol);
	CHECK(items(e->admin, "/api/v1/devices?policy=strict&limit=200") == 29, "policy=strict");
	CHECK(req(e->admin, "GET", "/api/v1/policies/strict", NULL, &j) == 200 &&
		      jint(json_object_get(j, "devices"), "assigned") == 29,
	      "the policy's count follows the group");
	json_decref(j);
	CHECK(items(e->admin, "/api/v1/devices?policy=standard&limit=200") == 2, "policy=standard");
	CHECK(req(e->admin, "GET", "/api/v1/devices/count?compliant=false", NULL, &j) == 200 &&
		      jint(j, "count") == 31,
	      "the compliance filter reads group policies");
	json_decref(j);
	CHECK(req(e->admin, "PUT", "/api/v1/devices/dev_bulk00005/policy",
		  "{\"policy\":\"standard\"}", NULL) == 200,
	      "own assignment");
	effective(e, "dev_bulk00005", pol, sizeof(pol));
	CHECK(strcmp(pol, "standard") == 0, "its own assignment comes first: %s", pol);
	CHECK(items(e->admin, "/api/v1/devices?policy=strict&limit=200") == 28, "28 strict now");
	/* A label change that moves the enrolled device queues its new policy at once. */
	snprintf(path, sizeof(path), "/api/v1/devices/%s/labels", d->id);
	CHECK(req(e->admin, "PATCH", path, "{\"set\":{\"lost\":\"\"}}", NULL) == 200, "lost");
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM commands WHERE device_id = '%s' AND type = 'policy' AND "
		 "reason = 'standard'",
		 d->id);
	CHECK(db_int(e, sql) == 1, "the new policy was queued with the label change");
	CHECK(req(e->admin, "PUT", "/api/v1/groups/sales",
		  "{\"query\":\"dept=sales\",\"policy\":\"nope\"}", NULL) == 422,
	      "a group's policy must exist");
	CHECK(req(e->admin, "DELETE", "/api/v1/groups/any-sales", NULL, NULL) == 204, "delete");
}

static void
test_groups(void)
{
	struct env e;
	struct device_sim d;
	struct client *dc, *hd;
	char body[512], hdtok[128], id[64];
	struct resp r;
	json_t *j = NULL, *b;

	CHECK(env_up(&e, "groups") == 0, "server did not start");
	dc = client_new(&e.s, NULL);
	CHECK(enroll_one(&e, dc, &d, TEAM) == 0, "enroll");
	CHECK(import(&e, d.id, 30) == 0, "import 30 devices");
	CHECK(admin_token(e.admin, "helpdesk", hdtok, sizeof(hdtok)) == 0, "helpdesk token");
	hd = client_new(&e.s, hdtok);
	CHECK(req(e.admin, "POST", "/api/v1/labels/bulk",
		  "{\"set\":{\"dept\":\"sales\"},\"filter\":{\"owner\":\"" TEAM "\"}}",
		  NULL) == 200,
	      "label all");
	CHECK(req(e.admin, "POST", "/api/v1/labels/bulk",
		  "{\"set\":{\"lost\":\"\"},\"device_ids\":[\"dev_bulk00001\",\"dev_bulk00002\"]}",
		  NULL) == 200,
	      "two lost");

	CHECK(req(e.admin, "POST", "/api/v1/groups",
		  "{\"name\":\"sales\",\"query\":\"dept = sales and not lost\","
		  "\"description\":\"<i>Sales</i> phones\"}",
		  &j) == 201,
	      "create");
	CHECK(strcmp(jstr(j, "query"), "dept=sales AND NOT lost") == 0, "canonical query: %s",
	      jstr(j, "query"));
	CHECK(jint(j, "member_count") == 29, "member count %lld", jint(j, "member_count"));
	json_decref(j);
	CHECK(req(e.admin, "POST", "/api/v1/groups",
		  "{\"name\":\"bad\",\"query\":\"dept=sales AND (\"}", &j) == 400 &&
		      strstr(detail(j), "position 17") != NULL,
	      "bad syntax: 400 naming the position: %s", detail(j));
	json_decref(j);
	CHECK(req(e.admin, "POST", "/api/v1/groups", "{\"name\":\"sales\",\"query\":\"x\"}",
		  NULL) == 409,
	      "a taken name");
	CHECK(req(hd, "POST", "/api/v1/groups", "{\"name\":\"h\",\"query\":\"x\"}", NULL) == 403,
	      "helpdesk may not create");
	CHECK(req(hd, "GET", "/api/v1/groups", NULL, &j) == 200 &&
		      json_array_size(json_object_get(j, "items")) == 1,
	      "helpdesk lists");
	json_decref(j);

	/* Members, paged as the device list; the same through group=. */
	CHECK(items(hd, "/api/v1/groups/sales/devices?limit=200") == 29, "members");
	CHECK(items(e.admin, "/api/v1/devices?group=sales&limit=200") == 29, "group=");
	CHECK(req(e.admin, "GET", "/api/v1/groups/sales/devices?limit=10", NULL, &j) == 200 &&
		      json_is_string(json_object_get(j, "next_cursor")),
	      "a page of 10 has a next cursor");
	json_decref(j);
	CHECK(req(e.admin, "GET", "/api/v1/devices?group=nope", NULL, NULL) == 404, "no group");

	/* A bulk lock by group: each member once; the same key gives the same bulk. */
	snprintf(body, sizeof(body),
		 "{\"type\":\"lock\",\"group\":\"sales\",\"expected_count\":29}");
	CHECK(bulk_post(e.admin, body, "grp-lock-1", &r) == 202 &&
		      resp_str(&r, "id", id, sizeof(id)) == 0,
	      "bulk by group: %ld %s", r.status, r.body ?: "");
	resp_free(&r);
	b = bulk_wait(e.admin, id);
	CHECK(b != NULL && jint(b, "queued") == 29, "queued 29");
	json_decref(b);
	CHECK(once_each(&e, "lock", 29) == 0, "each member locked once");
	CHECK(db_int(&e, "SELECT count(*) FROM commands c JOIN device_labels l ON l.device_id = "
			 "c.device_id AND l.key = 'lost'") == 0,
	      "no lost device locked");
	CHECK(bulk_post(e.admin, body, "grp-lock-1", &r) < 300 && strstr(r.body ?: "", id) != NULL,
	      "same key, same bulk: %s", r.body ?: "");
	resp_free(&r);
	CHECK(once_each(&e, "lock", 29) == 0, "still once each");

	/* A group's policy: the members without their own follow it; their own comes first. */
	policies_and_group(&e, &d);

	/* Change, then delete. */
	CHECK(req(e.admin, "PUT", "/api/v1/groups/sales", "{\"query\":\"lost\"}", &j) == 200 &&
		      jint(j, "version") == 3 && jint(j, "member_count") == 3,
	      "changed");
	json_decref(j);
	CHECK(req(e.admin, "DELETE", "/api/v1/groups/sales", NULL, NULL) == 204, "delete");
	CHECK(req(e.admin, "GET", "/api/v1/groups/sales", NULL, NULL) == 404, "gone");
	client_free(hd);
	client_free(dc);
	dev_fini(&d);
	env_down(&e);
}

static const struct t_case labels_cases[] = {
	{"labels", test_labels},
	{"groups", test_groups},
};

#ifndef TEST_LABELS_NO_MAIN
int
main(int argc, char **argv)
{
	return t_run(labels_cases, ARRAY_SIZE(labels_cases), argc, argv);
}
#endif

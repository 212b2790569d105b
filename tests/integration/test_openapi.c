/*
 * The OpenAPI contract (issue 11 §1): schema/openapi.json against the real cleave-server.
 *
 * contract: starts a server and gives it real data through the device API as a phone would
 * (tests/lib device_sim: enrollments, a check-in, an acknowledged lock whose completed result
 * carries a hypervisor-signed receipt, a lease, a receipt upload, an unenroll; with swtpm, a
 * device whose key is in a TPM enrolling with its credential and quote), recording every
 * device answer (status, type, body) in OUT/device.json, because only a holder of the device
 * and hypervisor keys can make those requests. It writes the route table as the server itself
 * lists it (`cleave-server --list-routes`) to OUT/routes.jsonl and runs
 * tests/contract/openapi.test.mjs, which validates the document against the OpenAPI 3.1
 * schema, compares its paths, methods and query parameters with the route table both ways,
 * walks every admin operation against the server validating each answer (errors included),
 * validates the recorded device answers the same way, and drives a short flow through a
 * client generated from the served document (openapi-client-axios). A second server
 * (rule_server) has the two-person rule on and single sign-on through the test OpenID provider
 * (a sign-in begun and finished there for the walk's callback), for the walk's approvals,
 * webhooks and single sign-on part.
 *
 * unknown_query: any query parameter a route does not read is a 400 naming it, on admin,
 * public and signed device routes alike, and the known ones still work.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "b64.h"
#include "browser.h"
#include "oidcop.h"
#include "testlib.h"
#include "tpmdev.h"
#include "util.h"
#include "wire.h"

#define NODE_SECONDS 90   /* about 10 s here */
#define FLEET_N      1000 /* at 5 a batch, a bulk that is still running when it is canceled */
#define FLEET_OWNER  "fleet@example.com"

/* Appends {"op": path template, "method", "status", "type", "body"} for r to arr. */
static void
record(json_t *arr, const char *method, const char *tmpl, const struct resp *r)
{
	char type[128] = "";

	resp_header(r, "Content-Type", type, sizeof(type));
	json_array_append_new(arr, json_pack("{s:s, s:s, s:I, s:s, s:s%}", "method", method, "path",
					     tmpl, "status", (json_int_t)r->status, "type", type,
					     "body", r->body ? r->body : "", r->body ? r->len : 0));
}

/* A signed device request, recorded under tmpl; its status, or -1. */
static long
dev_call(json_t *arr, struct device_sim *d, struct client *c, const char *path, const char *tmpl,
	 const char *body, struct resp *keep)
{
	struct resp r;
	long st;

	if (dev_req(d, c, "POST", path, body, 0, &r) != 0)
		return -1;
	record(arr, "POST", tmpl, &r);
	st = r.status;
	if (keep != NULL)
		*keep = r;
	else
		resp_free(&r);
	return st;
}

/* An unsigned device request (enrollment), recorded under tmpl; its status, or -1. */
static long
anon_call(json_t *arr, struct client *c, const char *path, const char *body)
{
	struct resp r;
	long st;

	if (client_req(c, "POST", path, body, NULL, &r) != 0)
		return -1;
	record(arr, "POST", path, &r);
	st = r.status;
	resp_free(&r);
	return st;
}

/* Enrolls d for owner with a fresh token, recording the nonce and enroll answers. 0 or -1. */
static int
enroll(json_t *arr, struct client *admin, struct client *anon, struct device_sim *d,
       const char *owner)
{
	char tok[128], body[256];
	struct resp r;
	int ok;

	if (dev_init(d) != 0 || admin_etoken(admin, owner, 1, tok, sizeof(tok)) != 0)
		return -1;
	snprintf(body, sizeof(body), "{\"enrollment_token\":\"%s\"}", tok);
	if (anon_call(arr, anon, "/device/v1/enroll/nonce", body) != 200 ||
	    dev_enroll(d, anon, tok, &r) != 0)
		return -1;
	record(arr, "POST", "/device/v1/enroll", &r);
	ok = r.status == 201 ? 0 : -1;
	resp_free(&r);
	return ok;
}

/*
 * Enrolls a device whose hypervisor key is in maker's TPM (tpmdev.h), recording the nonce
 * answer (a credential) and the enrollment with the TPM's evidence (issue 13). 0 or -1.
 */
static int
tpm_enroll(json_t *arr, struct client *admin, struct client *anon, const struct swtpm *maker,
	   struct device_sim *sim)
{
	struct tdev d = {0};
	struct tpm_quote q;
	struct resp r;
	uint8_t nonce[32], att[ATTEST_LEN];
	char tok[128];
	int ok = -1;

	if (dev_init(sim) != 0 ||
	    admin_etoken(admin, "tpm@example.com", 1, tok, sizeof(tok)) != 0 ||
	    tdev_open(&d, maker, "hv") != 0 || tdev_measure(&d) != 0 ||
	    tdev_nonce_req(anon, tok, tdev_id(&d), &r) != 0)
		goto out;
	record(arr, "POST", "/device/v1/enroll/nonce", &r);
	ok = r.status == 200 && tdev_activate(&d, &r, nonce) == 0 ? 0 : -1;
	resp_free(&r);
	if (ok != 0 || tdev_attest(&d, nonce, NULL, att) != 0 || tdev_quote(&d, att, &q) != 0 ||
	    tdev_enroll_req(anon, tok, nonce, sim, &d, att, tdev_evidence(&d, &q, d.log, 2), &r) !=
		    0) {
		ok = -1;
		goto out;
	}
	record(arr, "POST", "/device/v1/enroll", &r);
	ok = r.status == 201 ? 0 : -1;
	if (ok != 0)
		fprintf(stderr, "TPM enrollment: HTTP %ld %.300s\n", r.status,
			r.body ? r.body : "");
	resp_free(&r);
out:
	tdev_close(&d);
	return ok;
}

/* Checks d in, acknowledges and completes its lock cmd with a signed receipt. 0 or -1. */
static int
lock_and_report(json_t *arr, struct device_sim *d, struct client *c, const char *cmd)
{
	uint8_t ticket[TICKET_LEN], receipt[RECEIPT_LEN];
	char path[160], b64[600], body[700];
	json_t *j, *list;
	struct resp r;
	int ok = -1;

	if (dev_call(arr, d, c, "/device/v1/checkin", "/device/v1/checkin", "{\"wait\":0}", &r) !=
	    200)
		return -1;
	j = resp_json(&r);
	resp_free(&r);
	list = json_object_get(j, "commands");
	for (size_t i = 0; i < json_array_size(list); i++) {
		json_t *e = json_array_get(list, i);

		if (strcmp(json_string_value(json_object_get(e, "id")), cmd) == 0) {
			const char *t = json_string_value(json_object_get(e, "ticket"));

			ok = t && b64_decode(ticket, sizeof(ticket), t, strlen(t)) == TICKET_LEN
				     ? 0
				     : -1;
		}
	}
	json_decref(j);
	if (ok != 0)
		return -1;
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", cmd);
	if (dev_call(arr, d, c, path, "/device/v1/commands/{id}/ack", "{}", NULL) != 200)
		return -1;
	dev_receipt(d, ticket, 0, receipt);
	b64_encode(b64, sizeof(b64), receipt, sizeof(receipt));
	snprintf(body, sizeof(body), "{\"status\":\"completed\",\"receipt\":\"%s\"}", b64);
	snprintf(path, sizeof(path), "/device/v1/commands/%s/result", cmd);
	if (dev_call(arr, d, c, path, "/device/v1/commands/{id}/result", body, NULL) != 200)
		return -1;
	/* The same receipt again, as cleave-hv's kept receipts: taken, the command left as is. */
	snprintf(body, sizeof(body), "{\"receipts\":[\"%s\"]}", b64);
	return dev_call(arr, d, c, "/device/v1/receipts", "/device/v1/receipts", body, NULL) == 200
		       ? 0
		       : -1;
}

/* Writes text to dir/name. 0 or -1. */
static int
write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX + 64];
	FILE *f;
	int ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (f == NULL)
		return -1;
	ok = fputs(text, f) >= 0;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* `cleave-server --list-routes` into dir/routes.jsonl. 0 or -1. */
static int
list_routes(const char *dir)
{
	char cmd[2 * PATH_MAX + 64];
	const char *bin = getenv("CLEAVE_BIN");

	snprintf(cmd, sizeof(cmd), "'%s/cleave-server' --list-routes > '%s/routes.jsonl'",
		 bin && *bin ? bin : "build/bin", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* Why the node side cannot run here, or NULL. */
static const char *
contract_skip_reason(void)
{
	static char why[PATH_MAX + 80];
	char p[PATH_MAX + 64];

	if (system("node --version >/dev/null 2>&1") != 0)
		return "node is not installed (scripts/deps.sh installs it)";
	snprintf(p, sizeof(p), "%s/tests/contract/node_modules/openapi-client-axios/package.json",
		 browser_repo());
	if (access(p, R_OK) == 0)
		return NULL;
	snprintf(why, sizeof(why), "npm package missing: %s (scripts/deps.sh runs npm ci there)",
		 p);
	return why;
}

/*
 * FLEET_N copies of device tmpl (owner FLEET_OWNER, ids dev_fleetNNNNN) written into the
 * database as an import would, so that a bulk by filter has enough to work on to be canceled
 * mid-way (the server runs with bulk_batch = 5). 0 or -1.
 */
static int
import_fleet(struct srv *s, const char *tmpl)
{
	char sql[1024];

	snprintf(sql, sizeof(sql),
		 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d) "
		 "INSERT INTO devices (id, owner, status, device_key, hv_key, measurement, "
		 "enrollment_token_id, model, os, agent_version, enrolled_at) "
		 "SELECT printf('dev_fleet%%05d', i), '%s', 'active', randomblob(32), t.hv_key, "
		 "t.measurement, t.enrollment_token_id, t.model, t.os, t.agent_version, "
		 "t.enrolled_at FROM n, devices t WHERE t.id = '%s'",
		 FLEET_N, FLEET_OWNER, tmpl);
	return srv_db_exec(s, sql);
}

#define RULE_CONF                                                                                  \
	"two_person_rule = 1\napproval_bulk_size = 2\noidc_provider_name = Example <SSO>\n"

/*
 * A sign-in begun at /api/v1/oidc/login and finished at the provider as dwho (role admin): the
 * callback's path and query, and the browser's state cookie, into fx as "sso", for the walk to
 * call the callback with. 0 or -1.
 */
static int
sso_begun(struct srv *s, const struct oidcop *op, json_t *fx)
{
	struct client *web = client_new(s, NULL);
	struct resp r = {0};
	char back[4096];
	int rc = -1;

	if (web != NULL && client_req(web, "GET", "/api/v1/oidc/login", NULL, NULL, &r) == 0 &&
	    r.status == 303 && strncmp(r.set_cookie, "cleave_sso=", 11) == 0 &&
	    oidcop_login(op, r.location, "dwho", "dwho", back, sizeof(back)) == 0 &&
	    strncmp(back, s->url, strlen(s->url)) == 0)
		rc = json_object_set_new(fx, "sso",
					 json_pack("{s:s, s:s%}", "callback", back + strlen(s->url),
						   "cookie", r.set_cookie,
						   strcspn(r.set_cookie, ";")));
	else
		printf("    sign-in at the provider: HTTP %ld\n", r.status);
	resp_free(&r);
	client_free(web);
	return rc;
}

/*
 * The second server of the walk (the approvals, webhooks and single sign-on part): the
 * two-person rule on with approval_bulk_size = 2, and single sign-on through the test OpenID
 * provider (tests/lib/oidcop.h, about a second to start) with a sign-in already made there;
 * without the provider's packages, single sign-on configured with a provider nobody answers
 * for (127.0.0.1:9), so that the walk reaches the refusal pages at least. Three enrolled
 * devices. Its part of the fixture goes into fx as "rule". 0 or -1.
 */
static int
rule_server(struct srv *s, struct oidcop *op, const char *out, struct device_sim *d, json_t *fx)
{
	char conf[PATH_MAX + 32], text[PATH_MAX + 400];
	const char *extra[] = {"--config", conf, NULL};
	struct client *admin, *anon;
	json_t *rule = json_object();
	int ok = -1;

	if (oidcop_skip_reason() == NULL) {
		if (oidcop_server(s, op, "openapi-rule", RULE_CONF) != 0 ||
		    sso_begun(s, op, rule) != 0)
			return -1;
	} else {
		printf("    no OpenID provider here (%s): single sign-on's refusals only\n",
		       oidcop_skip_reason());
		snprintf(conf, sizeof(conf), "%s/rule.conf", out);
		snprintf(text, sizeof(text),
			 RULE_CONF "oidc_issuer = https://127.0.0.1:9\noidc_client_id = cleave\n"
				   "oidc_client_secret_file = %s/sso-secret\n",
			 out);
		if (srv_init(s, "openapi-rule") != 0 ||
		    write_file(out, "sso-secret", "not-used\n") != 0 ||
		    write_file(out, "rule.conf", text) != 0 || srv_start(s, extra) != 0)
			return -1;
	}
	admin = client_new(s, s->admin);
	anon = client_new(s, NULL);
	if (admin != NULL && anon != NULL &&
	    admin_enroll(admin, anon, &d[0], "rule-a@example.com") == 0 &&
	    admin_enroll(admin, anon, &d[1], "rule-b@example.com") == 0 &&
	    admin_enroll(admin, anon, &d[2], "rule-c@example.com") == 0 &&
	    json_object_update_new(rule, json_pack("{s:s, s:s, s:s, s:[s,s,s]}", "url", s->url,
						   "cacert", s->cacert, "admin", s->admin,
						   "devices", d[0].id, d[1].id, d[2].id)) == 0)
		ok = json_object_set(fx, "rule", rule);
	json_decref(rule);
	client_free(admin);
	client_free(anon);
	return ok;
}

/* The device side of the data: three phones, a verified lock, a lease, an unenroll. */
static int
device_data(json_t *arr, struct client *admin, struct client *anon, struct device_sim *d)
{
	char cmd[64], path[160];

	if (enroll(arr, admin, anon, &d[0], "alice@example.com") != 0 ||
	    enroll(arr, admin, anon, &d[1], "bob@example.com") != 0 ||
	    enroll(arr, admin, anon, &d[2], "carol@example.com") != 0)
		return -1;
	/* Errors a device meets: a token that cannot enroll, an unsigned or unknown request. */
	if (anon_call(arr, anon, "/device/v1/enroll/nonce",
		      "{\"enrollment_token\":\"clv_et_nope\"}") != 403 ||
	    anon_call(arr, anon, "/device/v1/enroll", "{\"enrollment_token\":\"x\"}") != 422 ||
	    anon_call(arr, anon, "/device/v1/checkin", "{}") != 401 ||
	    admin_command(admin, d[0].id, "lock", cmd, sizeof(cmd)) != 202 ||
	    lock_and_report(arr, &d[0], anon, cmd) != 0)
		return -1;
	snprintf(path, sizeof(path), "/device/v1/commands/%s/ack", "cmd_unknown");
	if (dev_call(arr, &d[0], anon, path, "/device/v1/commands/{id}/ack", "{}", NULL) != 404 ||
	    dev_call(arr, &d[0], anon, "/device/v1/checkin", "/device/v1/checkin", "{\"wait\":0}",
		     NULL) != 200 ||
	    dev_call(arr, &d[0], anon, "/device/v1/lease", "/device/v1/lease", "{}", NULL) != 200 ||
	    dev_call(arr, &d[0], anon, "/device/v1/receipts", "/device/v1/receipts",
		     "{\"receipts\":[\"AAAA\"]}", NULL) != 422 ||
	    dev_call(arr, &d[1], anon, "/device/v1/unenroll", "/device/v1/unenroll", "{}", NULL) !=
		    201 ||
	    dev_call(arr, &d[1], anon, "/device/v1/unenroll", "/device/v1/unenroll", "{}", NULL) !=
		    200)
		return -1;
	return 0;
}

static void
contract(void)
{
	struct srv s, rs;
	struct oidcop op = {0};
	struct client *admin = NULL, *anon = NULL;
	struct device_sim d[3] = {0}, rd[3] = {0}, td = {0};
	struct swtpm maker;
	struct resp r;
	json_t *observed = json_array(), *fx = NULL;
	char out[PATH_MAX], conf[PATH_MAX + 32], *text = NULL;
	char cas[PATH_MAX + 16], conftext[PATH_MAX + 64] = "bulk_batch = 5\n";
	int with_tpm = swtpm_skip_reason() == NULL;
	const char *extra[] = {"--config", conf, NULL};
	const char *why = contract_skip_reason();

	if (why != NULL)
		SKIP("%s", why);
	CHECK(browser_outdir("openapi", out, sizeof(out)) == 0, "output folder");
	CHECK(srv_init(&s, "openapi") == 0, "data folder");
	snprintf(conf, sizeof(conf), "%s/contract.conf", out);
	/* A TPM maker's CAs, so that a TPM device's enrollment is recorded too (else skipped). */
	if (with_tpm) {
		CHECK(swtpm_make(&maker, "openapi") == 0 && swtpm_start(&maker) == 0 &&
			      swtpm_ca_bundle(&maker, cas, sizeof(cas)) == 0,
		      "a manufactured TPM");
		snprintf(conftext, sizeof(conftext), "bulk_batch = 5\ntpm_ca_file = %s\n", cas);
	}
	CHECK(write_file(out, "contract.conf", conftext) == 0 && srv_start(&s, extra) == 0,
	      "server starts");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(client_req(admin, "PUT", "/api/v1/policies/base", "{\"max_failed_unlocks\":5}", NULL,
			 &r) == 0 &&
		      r.status == 201,
	      "a policy");
	resp_free(&r);
	CHECK(device_data(observed, admin, anon, d) == 0, "device data (see above)");
	if (with_tpm)
		CHECK(tpm_enroll(observed, admin, anon, &maker, &td) == 0, "a TPM device enrolls");
	else
		printf("    (no TPM device: %s)\n", swtpm_skip_reason());
	CHECK(import_fleet(&s, d[0].id) == 0, "%d devices imported", FLEET_N);
	text = json_dumps(observed, JSON_INDENT(1));
	CHECK(text != NULL && write_file(out, "device.json", text) == 0, "device.json written");
	free(text);
	fx = json_pack("{s:s, s:s, s:s, s:s, s:[s,s,s], s:s, s:i}", "url", s.url, "cacert",
		       s.cacert, "admin", s.admin, "data", s.dir, "devices", d[0].id, d[1].id,
		       d[2].id, "fleet_owner", FLEET_OWNER, "fleet_n", FLEET_N);
	CHECK(rule_server(&rs, &op, out, rd, fx) == 0, "the second server (two-person rule, SSO)");
	text = json_dumps(fx, JSON_INDENT(1));
	CHECK(text != NULL && write_file(out, "fixture.json", text) == 0, "fixture.json written");
	free(text);
	CHECK(list_routes(out) == 0, "cleave-server --list-routes");
	{
		const char *args[] = {out, NULL};

		CHECK(browser_run("../contract/openapi.test.mjs", out, NODE_SECONDS, args) == 0,
		      "contract script (log above)");
	}
	json_decref(fx);
	json_decref(observed);
	for (int i = 0; i < 3; i++) {
		dev_fini(&d[i]);
		dev_fini(&rd[i]);
	}
	dev_fini(&td);
	if (with_tpm)
		swtpm_stop(&maker);
	client_free(admin);
	client_free(anon);
	oidcop_stop(&op);
	srv_cleanup(&rs);
	srv_cleanup(&s);
}

/* GET path as c: status, and the problem's detail into detail. */
static long
get_detail(struct client *c, const char *path, char *detail, size_t cap)
{
	struct resp r;
	long st;

	detail[0] = '\0';
	if (client_req(c, "GET", path, NULL, NULL, &r) != 0)
		return -1;
	st = r.status;
	resp_str(&r, "detail", detail, cap);
	resp_free(&r);
	return st;
}

static void
unknown_query(void)
{
	struct srv s;
	struct client *admin, *anon;
	struct device_sim d;
	struct resp r;
	char detail[256], tok[128], page[256];

	CHECK(srv_init(&s, "openapi-query") == 0 && srv_start(&s, NULL) == 0, "server starts");
	admin = client_new(&s, s.admin);
	anon = client_new(&s, NULL);
	CHECK(get_detail(admin, "/api/v1/devices?stauts=retired", detail, sizeof(detail)) == 400 &&
		      strcmp(detail, "unknown query parameter: stauts") == 0,
	      "a misspelt filter is named: %s", detail);
	CHECK(get_detail(admin, "/api/v1/commands?status=queued&x=1&limit=5&y", detail,
			 sizeof(detail)) == 400 &&
		      strcmp(detail, "unknown query parameter: x, y") == 0,
	      "every unknown one is named: %s", detail);
	CHECK(get_detail(admin, "/api/v1/server?full=1", detail, sizeof(detail)) == 400,
	      "a route without parameters takes none");
	CHECK(get_detail(admin, "/api/v1/devices?status=active&limit=5&sort=owner", detail,
			 sizeof(detail)) == 200,
	      "known parameters still work");
	CHECK(get_detail(admin, "/api/v1/audit/verify?full=1", detail, sizeof(detail)) == 200,
	      "audit verify takes full");
	CHECK(get_detail(anon, "/healthz?probe=1", detail, sizeof(detail)) == 400,
	      "public routes too");
	CHECK(admin_etoken(admin, "page@example.com", 1, tok, sizeof(tok)) == 0, "a token");
	snprintf(page, sizeof(page), "/enroll?token=%s&utm_source=mail", tok);
	CHECK(get_detail(anon, page, detail, sizeof(detail)) == 200,
	      "pages for people ignore parameters mail gateways add");
	CHECK(get_detail(anon, "/api/v1/devices?x=1", detail, sizeof(detail)) == 401,
	      "credentials are checked first");
	CHECK(get_detail(anon, "/api/v1/openapi.json?v=2", detail, sizeof(detail)) == 400,
	      "the document's route too");
	CHECK(get_detail(anon, "/api/v1/openapi.json", detail, sizeof(detail)) == 200,
	      "the document is public");
	CHECK(admin_enroll(admin, anon, &d, "dave@example.com") == 0, "a device");
	CHECK(dev_req(&d, anon, "POST", "/device/v1/lease?debug=1", "{}", 0, &r) == 0 &&
		      r.status == 400,
	      "signed device requests too: %ld", r.status);
	resp_free(&r);
	CHECK(dev_req(&d, anon, "POST", "/device/v1/lease", "{}", 0, &r) == 0 && r.status == 200,
	      "and without it the lease is granted: %ld", r.status);
	resp_free(&r);
	dev_fini(&d);
	client_free(admin);
	client_free(anon);
	srv_cleanup(&s);
}

int
main(int argc, char **argv)
{
	static const struct t_case cases[] = {
		{"unknown_query", unknown_query},
		{"contract", contract},
	};

	return t_run(cases, ARRAY_SIZE(cases), argc, argv);
}

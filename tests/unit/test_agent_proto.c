/*
 * Tests of the agent's device-API bodies (agent/proto.c): a check-in answer is taken only when
 * every command's ticket decodes and agrees with its JSON and with this device; malformed JSON,
 * missing or mistyped fields, foreign or mismatched tickets, duplicates and hostile text are
 * refused or neutralised; more commands than one answer holds are left for the next check-in;
 * and the request bodies the agent writes carry exactly what schema/api.md asks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "agent/proto.h"
#include "b64.h"
#include "wire.h"

#define DEV "dev_test"

/* base64 of a ticket for (device, id, type, counter). */
static void
ticket_b64(const char *dev, const char *id, uint16_t type, uint64_t counter, uint64_t arg0,
	   char *out, size_t cap)
{
	struct ticket t = {0};
	uint8_t raw[TICKET_LEN];

	t.type = type;
	snprintf(t.device_id, sizeof(t.device_id), "%s", dev);
	snprintf(t.command_id, sizeof(t.command_id), "%s", id);
	t.counter = counter;
	t.issued_at = 1700000000;
	t.expires_at = 1800000000;
	t.args[0] = arg0;
	if (type == TICKET_POLICY)
		t.args[3] = 2;
	assert_int_equal(ticket_encode(&t, raw), 0);
	assert_true(b64_encode(out, cap, raw, sizeof(raw)) > 0);
}

/* One command object as the server writes it. */
static void
command_json(char *out, size_t cap, const char *id, const char *type, uint64_t counter,
	     const char *ticket_dev, const char *ticket_id)
{
	char tk[400];

	ticket_b64(ticket_dev, ticket_id, ticket_type_from_name(type), counter, 0, tk, sizeof(tk));
	snprintf(out, cap,
		 "{\"id\":\"%s\",\"type\":\"%s\",\"reason\":\"lost\",\"counter\":%llu,"
		 "\"ticket\":\"%s\",\"created_at\":\"2026-01-01T00:00:00Z\","
		 "\"expires_at\":\"2026-01-08T00:00:00Z\"}",
		 id, type, (unsigned long long)counter, tk);
}

static int
parse(const char *body, struct checkin_reply *r, char *err)
{
	return proto_checkin_parse(body, strlen(body), DEV, r, err, PROTO_ERR_MAX);
}

static void
test_agent_proto_checkin_valid(void **state)
{
	static struct checkin_reply r;
	char a[800], b[800], lease[400], body[3000], err[PROTO_ERR_MAX];

	(void)state;
	command_json(a, sizeof(a), "cmd_1", "wipe", 4, DEV, "cmd_1");
	command_json(b, sizeof(b), "cmd_2", "policy", 5, DEV, "cmd_2");
	ticket_b64(DEV, "lease_1", TICKET_LEASE, 1, 1800000000, lease, sizeof(lease));
	snprintf(body, sizeof(body),
		 "{\"commands\":[%s,%s],\"policy\":{\"name\":\"standard\",\"version\":2,"
		 "\"content\":{}},\"lease\":\"%s\",\"future_field\":1}",
		 a, b, lease);
	assert_int_equal(parse(body, &r, err), 0);
	assert_int_equal(r.n, 2);
	assert_string_equal(r.cmd[0].id, "cmd_1");
	assert_string_equal(r.cmd[0].type, "wipe");
	assert_int_equal(r.cmd[0].counter, 4);
	assert_string_equal(r.cmd[0].reason, "lost");
	assert_int_equal(r.cmd[1].tk.args[3], 2);
	assert_int_equal(r.has_policy, 1);
	assert_string_equal(r.policy_name, "standard");
	assert_int_equal(r.policy_version, 2);
	assert_int_equal(r.has_lease, 1);

	assert_int_equal(parse("{\"commands\":[]}", &r, err), 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(r.has_policy, 0);
	assert_int_equal(parse("{\"commands\":[],\"policy\":null,\"lease\":null}", &r, err), 0);
}

static void
test_agent_proto_checkin_malformed(void **state)
{
	static struct checkin_reply r;
	static const char *const bad[] = {
		"",
		"not json",
		"[1,2]",
		"{\"commands\":{}}",
		"{}",
		"{\"commands\":[1]}",
		"{\"commands\":[{}]}",
		"{\"commands\":[{\"id\":\"cmd_1\",\"type\":\"wipe\",\"counter\":1}]}",
		"{\"commands\":[{\"id\":\"cmd_1\",\"type\":\"wipe\",\"counter\":1,\"ticket\":"
		"\"AAAA\"}]}",
		"{\"commands\":[{\"id\":\"cmd_1\",\"type\":\"wipe\",\"counter\":1,\"ticket\":7}]}",
		"{\"commands\":[],\"policy\":{\"name\":\"x\"}}",
		"{\"commands\":[],\"policy\":\"standard\"}",
		"{\"commands\":[],\"lease\":\"!!\"}",
		"{\"commands\":[]} trailing",
		"{\"commands\":[],\"commands\":[]}",
	};
	char err[PROTO_ERR_MAX];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(parse(bad[i], &r, err), -EINVAL);
		assert_true(strlen(err) > 0);
		assert_int_equal(r.n, 0);
	}
	assert_int_equal(proto_checkin_parse(NULL, 0, DEV, &r, err, sizeof(err)), -EINVAL);
}

static void
test_agent_proto_checkin_ticket_must_match(void **state)
{
	static struct checkin_reply r;
	char c[800], body[2000], err[PROTO_ERR_MAX], lease[400];

	(void)state;
	/* For another device. */
	command_json(c, sizeof(c), "cmd_1", "wipe", 4, "dev_other", "cmd_1");
	snprintf(body, sizeof(body), "{\"commands\":[%s]}", c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	/* For another command. */
	command_json(c, sizeof(c), "cmd_1", "wipe", 4, DEV, "cmd_9");
	snprintf(body, sizeof(body), "{\"commands\":[%s]}", c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	/* JSON says lock, the ticket says wipe. */
	command_json(c, sizeof(c), "cmd_1", "wipe", 4, DEV, "cmd_1");
	memcpy(strstr(c, "\"wipe\""), "\"lock\"", 6);
	snprintf(body, sizeof(body), "{\"commands\":[%s]}", c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	/* JSON counter differs from the ticket's. */
	command_json(c, sizeof(c), "cmd_1", "wipe", 4, DEV, "cmd_1");
	memcpy(strstr(c, "\"counter\":4"), "\"counter\":5", 11);
	snprintf(body, sizeof(body), "{\"commands\":[%s]}", c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	/* An id that would escape the journal directory. */
	command_json(c, sizeof(c), "../x", "wipe", 4, DEV, "../x");
	snprintf(body, sizeof(body), "{\"commands\":[%s]}", c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	/* A lease is not a command; a command ticket is not a lease. */
	command_json(c, sizeof(c), "cmd_1", "lease", 4, DEV, "cmd_1");
	snprintf(body, sizeof(body), "{\"commands\":[%s]}", c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	ticket_b64(DEV, "cmd_1", TICKET_LOCK, 1, 0, lease, sizeof(lease));
	snprintf(body, sizeof(body), "{\"commands\":[],\"lease\":\"%s\"}", lease);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	/* The same command twice. */
	command_json(c, sizeof(c), "cmd_1", "wipe", 4, DEV, "cmd_1");
	snprintf(body, sizeof(body), "{\"commands\":[%s,%s]}", c, c);
	assert_int_equal(parse(body, &r, err), -EINVAL);
	assert_non_null(strstr(err, "twice"));
}

static void
test_agent_proto_checkin_oversized(void **state)
{
	static struct checkin_reply r;
	size_t cap = 64 * 1024;
	char *body = malloc(cap), c[800], err[PROTO_ERR_MAX], *p;
	int n;

	(void)state;
	/* More commands than one answer holds: the first ones are taken, the rest counted. */
	n = snprintf(body, cap, "{\"commands\":[");
	for (int i = 0; i < PROTO_MAX_COMMANDS + 4; i++) {
		char id[16];

		snprintf(id, sizeof(id), "cmd_%d", i);
		command_json(c, sizeof(c), id, "lock", (uint64_t)i + 1, DEV, id);
		n += snprintf(body + n, cap - (size_t)n, "%s%s", i ? "," : "", c);
	}
	snprintf(body + n, cap - (size_t)n, "]}");
	assert_int_equal(parse(body, &r, err), 0);
	assert_int_equal(r.n, PROTO_MAX_COMMANDS);
	assert_int_equal(r.skipped, 4);

	/* A huge reason with control characters is cut and made printable. */
	command_json(c, sizeof(c), "cmd_1", "wipe", 4, DEV, "cmd_1");
	p = strstr(c, "\"lost\"");
	n = snprintf(body, cap, "{\"commands\":[%.*s\"", (int)(p - c), c);
	for (int i = 0; i < 5000; i++)
		body[n++] = i % 7 ? 'r' : 'x';
	memcpy(body + n, "\\u0007\\n\\u00e9", 14);
	n += 14;
	snprintf(body + n, cap - (size_t)n, "\"%s]}", p + 6);
	assert_int_equal(parse(body, &r, err), 0);
	assert_int_equal(strlen(r.cmd[0].reason), sizeof(r.cmd[0].reason) - 1);
	for (size_t i = 0; r.cmd[0].reason[i]; i++)
		assert_true(r.cmd[0].reason[i] >= 0x20 && r.cmd[0].reason[i] <= 0x7e);
	free(body);
}

static void
test_agent_proto_unenroll(void **state)
{
	struct proto_command pc;
	char c[800], body[1000], err[PROTO_ERR_MAX];

	(void)state;
	command_json(c, sizeof(c), "cmd_r", "retire", 9, DEV, "cmd_r");
	snprintf(body, sizeof(body), "{\"command\":%s}", c);
	assert_int_equal(proto_unenroll_parse(body, strlen(body), DEV, &pc, err, sizeof(err)), 0);
	assert_string_equal(pc.type, "retire");
	assert_int_equal(pc.counter, 9);
	command_json(c, sizeof(c), "cmd_w", "wipe", 9, DEV, "cmd_w");
	snprintf(body, sizeof(body), "{\"command\":%s}", c);
	assert_int_equal(proto_unenroll_parse(body, strlen(body), DEV, &pc, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(proto_unenroll_parse("{}", 2, DEV, &pc, err, sizeof(err)), -EINVAL);
}

static void
test_agent_proto_request_bodies(void **state)
{
	struct proto_state s = {.corporate_state = "locked",
				.policy_name = "standard",
				.policy_version = 2,
				.key_epoch = 3,
				.agent_version = "0.1.0"};
	uint8_t receipt[RECEIPT_LEN] = {1, 2, 3};
	uint8_t two[2][RECEIPT_LEN] = {{0}};
	char *b;

	(void)state;
	b = proto_checkin_body(25, &s);
	assert_string_equal(b, "{\"wait\":25,\"state\":{\"corporate_state\":\"locked\","
			       "\"policy_name\":\"standard\",\"policy_version\":2,"
			       "\"key_epoch\":3,\"agent_version\":\"0.1.0\"}}");
	free(b);
	s = (struct proto_state){.policy_version = -1, .key_epoch = -1, .agent_version = "0.1.0"};
	b = proto_checkin_body(0, &s);
	assert_string_equal(b, "{\"wait\":0,\"state\":{\"agent_version\":\"0.1.0\"}}");
	free(b);
	b = proto_result_body(1, "done", receipt);
	assert_non_null(strstr(b, "\"status\":\"completed\""));
	assert_non_null(strstr(b, "\"receipt\":\"AQID"));
	free(b);
	b = proto_result_body(0, "cleave-hv refused", NULL);
	assert_string_equal(b, "{\"status\":\"failed\",\"detail\":\"cleave-hv refused\"}");
	free(b);
	b = proto_receipts_body((const uint8_t(*)[RECEIPT_LEN])two, 2);
	assert_int_equal(strncmp(b, "{\"receipts\":[\"AAAA", 18), 0);
	free(b);
}

static void
test_agent_proto_answers(void **state)
{
	char out[64], b64[64], id[32], owner[64], err[PROTO_ERR_MAX];
	uint8_t nonce[32], key[32];
	uint64_t acc, hi;
	const char *ok = "{\"device_id\":\"dev_1\",\"owner\":\"a@b\",\"server_ticket_key\":"
			 "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}";
	const char *problem = "{\"type\":\"urn:cleave:problem:x\",\"title\":\"T\",\"detail\":"
			      "\"the token is used\\nup\"}";

	(void)state;
	proto_problem(problem, strlen(problem), out, sizeof(out));
	assert_string_equal(out, "the token is used");
	proto_problem("<html>gateway\x01 down</html>", 27, out, sizeof(out));
	assert_string_equal(out, "<html>gateway? down</html>");
	proto_problem(NULL, 0, out, sizeof(out));
	assert_string_equal(out, "");
	assert_int_equal(proto_receipts_reply("{\"accepted\":2,\"highest_seq\":9}", 30, &acc, &hi),
			 0);
	assert_true(acc == 2 && hi == 9);
	assert_int_equal(proto_receipts_reply("{\"accepted\":-1,\"highest_seq\":9}", 31, &acc, &hi),
			 -EINVAL);
	assert_int_equal(proto_result_verified("{\"verified\":true}", 17), 1);
	assert_int_equal(proto_result_verified("{}", 2), -1);
	assert_int_equal(
		proto_nonce_parse("{\"nonce\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
				  "\"}",
				  56, nonce, b64, sizeof(b64)),
		0);
	assert_int_equal(proto_nonce_parse("{\"nonce\":\"AAAA\"}", 16, nonce, b64, sizeof(b64)),
			 -EINVAL);
	assert_int_equal(proto_enroll_parse(ok, strlen(ok), id, sizeof(id), owner, sizeof(owner),
					    key, err, sizeof(err)),
			 0);
	assert_string_equal(id, "dev_1");
	assert_int_equal(proto_enroll_parse("{\"device_id\":\"dev_1\"}", 21, id, sizeof(id), owner,
					    sizeof(owner), key, err, sizeof(err)),
			 -EINVAL);
}

/*
 * The TPM enrollment bodies (schema/api.md "Enrollment with a TPM"): the nonce request carries
 * the identity in full (an EK certificate is well over 1 KiB), the enrollment the evidence; the
 * credential answer is taken only without a plain nonce.
 */
static void
test_agent_proto_tpm_bodies(void **state)
{
	static uint8_t cert[1500], buf[3000];
	uint8_t pub[300], quote[150], sig[70], log[64], blob[1024], secret[1024];
	struct clv_tpm_identity id = {.ek_cert = cert,
				      .ek_cert_len = sizeof(cert),
				      .ek_public = pub,
				      .ek_public_len = sizeof(pub),
				      .ak_public = pub,
				      .ak_public_len = 90};
	struct clv_tpm_evidence ev = {.quote = quote,
				      .quote_len = sizeof(quote),
				      .quote_sig = sig,
				      .quote_sig_len = sizeof(sig),
				      .pcr_log = log,
				      .log_count = 2};
	struct proto_enroll pe = {.token = "tok",
				  .nonce_b64 = "bm9uY2U=",
				  .model = "m",
				  .os = "o",
				  .agent_version = "1",
				  .hv_spki = pub,
				  .hv_spki_len = 91,
				  .ak_public = pub,
				  .ak_public_len = 90,
				  .tpm = &ev};
	const char *cred;
	char *body;
	json_t *j;
	size_t bl, sl;

	(void)state;
	memset(cert, 0xc5, sizeof(cert));
	memset(log, 0xab, 32);
	memset(log + 32, 0x01, 32);
	body = proto_nonce_body("tok", &id);
	assert_non_null(body);
	j = json_loads(body, 0, NULL);
	assert_int_equal(
		b64_decode(buf, sizeof(buf),
			   json_string_value(json_object_get(json_object_get(j, "tpm"), "ek_cert")),
			   2000),
		sizeof(cert));
	assert_memory_equal(buf, cert, sizeof(cert));
	json_decref(j);
	free(body);

	body = proto_enroll_body(&pe);
	assert_non_null(body);
	j = json_loads(body, 0, NULL);
	assert_non_null(json_object_get(j, "hypervisor_spki"));
	assert_string_equal(json_string_value(json_array_get(
				    json_object_get(json_object_get(j, "tpm"), "pcr_log"), 1)),
			    "0101010101010101010101010101010101010101010101010101010101010101");
	assert_non_null(json_object_get(json_object_get(j, "tpm"), "quote_sig"));
	json_decref(j);
	free(body);

	cred = "{\"credential\":{\"blob\":\"AAEC\",\"secret\":\"AwQF\"},\"expires_at\":\"x\"}";
	assert_int_equal(
		proto_credential_parse(cred, strlen(cred), blob, &bl, secret, &sl, sizeof(blob)),
		0);
	assert_int_equal(bl, 3);
	assert_int_equal(sl, 3);
	assert_int_equal(secret[2], 5);
	cred = "{\"nonce\":\"AAEC\",\"credential\":{\"blob\":\"AAEC\",\"secret\":\"AwQF\"}}";
	assert_int_equal(
		proto_credential_parse(cred, strlen(cred), blob, &bl, secret, &sl, sizeof(blob)),
		-EINVAL);
	cred = "{\"nonce\":\"AAEC\"}";
	assert_int_equal(
		proto_credential_parse(cred, strlen(cred), blob, &bl, secret, &sl, sizeof(blob)),
		-EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_proto_checkin_valid),
		cmocka_unit_test(test_agent_proto_checkin_malformed),
		cmocka_unit_test(test_agent_proto_checkin_ticket_must_match),
		cmocka_unit_test(test_agent_proto_checkin_oversized),
		cmocka_unit_test(test_agent_proto_unenroll),
		cmocka_unit_test(test_agent_proto_request_bodies),
		cmocka_unit_test(test_agent_proto_answers),
		cmocka_unit_test(test_agent_proto_tpm_bodies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/*
 * The employee-facing subcommands: `status` (what this device is, read from the state
 * directory and cleave-hv, without contacting the server) and `unenroll` (the employee leaves:
 * the server issues a retire ticket, cleave-hv wipes the corporate half and signs a receipt,
 * the server gets it, and only then does the agent forget the enrollment). Neither reaches
 * anything personal: cleave-hv has no call that could.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent.h"
#include "crypto.h"
#include "log.h"

static const char *
when(int64_t t, char *buf, size_t cap)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || gmtime_r(&tt, &tm) == NULL)
		return "never";
	strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* Whether a `run` holds DIR/lock right now. */
static int
agent_running(const struct agent_dir *d)
{
	char p[PATH_MAX];
	int fd, busy = 0;

	if (agent_dir_file(d, "lock", p, sizeof(p)) != 0 ||
	    (fd = open(p, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0)
		busy = errno == EWOULDBLOCK;
	close(fd);
	return busy;
}

static json_t *
hv_json(struct hvlink *hv, const struct identity *id)
{
	static const char *const names[] = {"?", "active", "locked", "wipe pending", "erased"};
	uint8_t nonce[32], raw[ATTEST_LEN];
	struct attestation at;
	struct clv_status s;
	int st = hvlink_status(hv, &s);
	json_t *j;

	if (st != CLV_OK)
		return json_pack("{s:s, s:b, s:s}", "socket", hv->path, "reachable", 0, "error",
				 hvlink_strerror(hv, st));
	j = json_pack("{s:s, s:b, s:s, s:s, s:I, s:I, s:I, s:I}", "socket", hv->path, "reachable",
		      1, "state", names[s.state <= 4 ? s.state : 0], "keystore",
		      (s.flags & CLV_STATUS_TPM) != 0 ? "tpm" : "file", "key_epoch",
		      (json_int_t)s.key_epoch, "ticket_counter", (json_int_t)s.ticket_counter,
		      "receipt_seq", (json_int_t)s.receipt_seq, "lease_until",
		      (json_int_t)s.lease_until);
	if (j != NULL && crypto_random(nonce, sizeof(nonce)) == 0 &&
	    hvlink_attest(hv, nonce, raw, &at, id->hv_spki, id->hv_spki_len) == CLV_OK)
		json_object_set_new(j, "holds_this_enrollment",
				    json_boolean(memcmp(at.hv_key, id->hv_key, 32) == 0 &&
						 memcmp(at.owner_key, id->server_key, 32) == 0));
	return j;
}

static json_t *
journal_json(const struct agent_dir *d, int *open_n)
{
	struct journal j;
	struct journal_entry *v = NULL;
	size_t n = 0;
	char t[32];
	json_t *a = json_array();

	*open_n = 0;
	if (journal_open(&j, d) != 0 || journal_list(&j, &v, &n) != 0) {
		json_decref(a);
		return json_pack("{s:s}", "error",
				 "the journal cannot be read (see the log above)");
	}
	for (size_t i = 0; i < n; i++) {
		*open_n += v[i].state != JS_REPORTED;
		json_array_append_new(
			a,
			json_pack("{s:s, s:s, s:I, s:s, s:s?, s:s, s:s, s:b}", "id", v[i].id,
				  "type", v[i].type, "counter", (json_int_t)v[i].counter, "state",
				  journal_state_name(v[i].state), "outcome",
				  v[i].state >= JS_DONE ? (v[i].completed ? "completed" : "failed")
							: NULL,
				  "detail", v[i].detail, "received_at",
				  when(v[i].received_at, t, sizeof(t)), "receipt",
				  v[i].has_receipt));
	}
	free(v);
	return a;
}

static void
print_text(json_t *j)
{
	json_t *hv = json_object_get(j, "cleave_hv"), *cmds = json_object_get(j, "commands");
	size_t i;
	json_t *c;

	printf("device:        %s (owner %s)\n", json_string_value(json_object_get(j, "device_id")),
	       json_string_value(json_object_get(j, "owner")));
	printf("server:        %s\n", json_string_value(json_object_get(j, "server")));
	printf("enrolled:      %s\n", json_string_value(json_object_get(j, "enrolled_at")));
	printf("agent:         %s\n",
	       json_is_true(json_object_get(j, "running")) ? "running" : "not running");
	printf("last check-in: %s\n", json_string_value(json_object_get(j, "last_checkin")));
	if (json_string_length(json_object_get(j, "last_problem")) > 0)
		printf("last problem:  %s\n",
		       json_string_value(json_object_get(j, "last_problem")));
	printf("policy:        %s\n", json_string_value(json_object_get(j, "policy")));
	if (json_string_length(json_object_get(j, "portal_url")) > 0)
		printf("your page:     %s\n", json_string_value(json_object_get(j, "portal_url")));
	if (json_is_true(json_object_get(hv, "reachable")))
		printf("cleave-hv:     %s at %s (keystore %s), key epoch %" JSON_INTEGER_FORMAT
		       ", ticket counter %" JSON_INTEGER_FORMAT
		       ", receipt seq %" JSON_INTEGER_FORMAT "%s\n",
		       json_string_value(json_object_get(hv, "state")),
		       json_string_value(json_object_get(hv, "socket")),
		       json_string_value(json_object_get(hv, "keystore")),
		       json_integer_value(json_object_get(hv, "key_epoch")),
		       json_integer_value(json_object_get(hv, "ticket_counter")),
		       json_integer_value(json_object_get(hv, "receipt_seq")),
		       json_is_false(json_object_get(hv, "holds_this_enrollment"))
			       ? " (it no longer holds this enrollment: wiped or re-enrolled)"
			       : "");
	else
		printf("cleave-hv:     %s\n", json_string_value(json_object_get(hv, "error")));
	if (!json_is_array(cmds)) {
		printf("commands:      UNREADABLE: %s\n",
		       json_string_value(json_object_get(cmds, "error")));
		return;
	}
	printf("commands:      %" JSON_INTEGER_FORMAT " open\n",
	       json_integer_value(json_object_get(j, "open_commands")));
	json_array_foreach(cmds, i, c)
	{
		printf("  %-24s %-8s %-10s %s %s\n", json_string_value(json_object_get(c, "id")),
		       json_string_value(json_object_get(c, "type")),
		       json_string_value(json_object_get(c, "state")),
		       json_string_value(json_object_get(c, "received_at")),
		       json_string_value(json_object_get(c, "detail")));
	}
}

int
agent_status(const char *dir, const char *hv_socket, int as_json)
{
	struct agent_dir d;
	struct identity id;
	struct agent_state st;
	struct hvlink hv;
	char t1[32], t2[32], pol[96];
	int open_n = 0, r = agent_dir_open(&d, dir, 0);
	json_t *j;

	if (r == 0 && !identity_exists(&d))
		r = -ENOENT;
	if (r == -ENOENT) {
		if (as_json)
			printf("{\"enrolled\": false}\n");
		else
			printf("not enrolled (%s holds no enrollment)\n", dir);
		return AGENT_EXIT_STATE;
	}
	if (r != 0 || identity_load(&d, &id, NULL) != 0 || agent_state_load(&d, &st) != 0)
		return AGENT_EXIT_STATE;
	hvlink_init(&hv, agent_hv_socket(hv_socket, id.hv_socket));
	if (st.policy_name[0])
		snprintf(pol, sizeof(pol), "%s v%" PRId64, st.policy_name, st.policy_version);
	else
		snprintf(pol, sizeof(pol), "none applied");
	j = json_pack("{s:b, s:s, s:s, s:s, s:s, s:b, s:s, s:s, s:s, s:o, s:o}", "enrolled", 1,
		      "device_id", id.device_id, "owner", id.owner, "server", id.server,
		      "enrolled_at", when(id.enrolled_at, t1, sizeof(t1)), "running",
		      agent_running(&d), "last_checkin", when(st.last_checkin, t2, sizeof(t2)),
		      "last_problem", st.last_error, "policy", pol, "cleave_hv", hv_json(&hv, &id),
		      "commands", journal_json(&d, &open_n));
	hvlink_close(&hv);
	if (j == NULL)
		return AGENT_EXIT_FAIL;
	json_object_set_new(j, "open_commands", json_integer(open_n));
	json_object_set_new(j, "portal_url", json_string(id.portal_url));
	if (as_json) {
		char *s = json_dumps(j, JSON_INDENT(2));

		if (s != NULL)
			printf("%s\n", s);
		free(s);
	} else {
		print_text(j);
	}
	r = json_is_array(json_object_get(j, "commands")) ? AGENT_EXIT_OK : AGENT_EXIT_STATE;
	json_decref(j);
	return r;
}

/* The retire record in the journal, if any: fills e and returns 1. */
static int
find_retire(struct agent *a, struct journal_entry *e)
{
	struct journal_entry *v;
	size_t n;
	int found = 0;

	if (journal_list(&a->journal, &v, &n) != 0)
		return -1;
	for (size_t i = n; i-- > 0 && !found;)
		if (strcmp(v[i].type, "retire") == 0) {
			*e = v[i];
			found = 1;
		}
	free(v);
	return found;
}

/* Asks the server for the retire command and journals it. 0 or an exit code. */
static int
request_retire(struct agent *a)
{
	struct proto_command pc;
	struct http_resp r;
	char why[PROTO_ERR_MAX], err[PROTO_ERR_MAX];
	int rc = agent_post(a, "/device/v1/unenroll", "{}", 30, &r), is_new;

	if (rc != 0) {
		log_err("%s", r.error);
		return AGENT_EXIT_SERVER;
	}
	proto_problem(r.body, r.len, why, sizeof(why));
	if (r.status != 200 && r.status != 201) {
		log_err("the server refused to unenroll device %s (HTTP %ld): %s", a->id.device_id,
			r.status, why);
		rc = r.status >= 500 ? AGENT_EXIT_SERVER : AGENT_EXIT_REFUSED;
	} else if (proto_unenroll_parse(r.body, r.len, a->id.device_id, &pc, err, sizeof(err)) !=
		   0) {
		log_err("the server's unenroll answer is malformed: %s", err);
		rc = AGENT_EXIT_FAIL;
	} else if (command_accept(a, &pc, &is_new) != 0) {
		rc = AGENT_EXIT_STATE;
	}
	http_resp_fini(&r);
	return rc;
}

int
agent_unenroll(struct agent *a)
{
	struct journal_entry e;
	char id[AGENT_ID_MAX];
	int rc, found;

	/* Results still owed to the server go first; they are part of this device's record. */
	if (command_step_all(a) < 0)
		return AGENT_EXIT_STATE;
	found = find_retire(a, &e);
	if (found < 0)
		return AGENT_EXIT_STATE;
	if ((!found || (e.state == JS_REPORTED && !e.completed)) && (rc = request_retire(a)) != 0)
		return rc;
	if (command_step_all(a) < 0 || find_retire(a, &e) != 1)
		return AGENT_EXIT_STATE;
	if (e.state == JS_REPORTED && e.completed) {
		str_copy(id, sizeof(id), a->id.device_id);
		agent_close(a);
		if (agent_dir_purge(&a->dir) != 0)
			return AGENT_EXIT_STATE;
		printf("unenrolled device %s: the corporate half was wiped by cleave-hv (%s) and "
		       "the server has the receipt.\nNothing personal was touched. The enrollment "
		       "is removed from this device.\n",
		       id, e.detail);
		return AGENT_EXIT_OK;
	}
	if (e.state >= JS_DONE && !e.completed) {
		log_err("the retire of device %s failed: %s; the device stays enrolled",
			a->id.device_id, e.detail);
		return AGENT_EXIT_HV;
	}
	log_err("the retire of device %s is journaled as %s and not finished (cleave-hv or the "
		"server could not be reached); run `cleave-agent unenroll` again",
		a->id.device_id, journal_state_name(e.state));
	return e.state >= JS_DONE ? AGENT_EXIT_SERVER : AGENT_EXIT_HV;
}
